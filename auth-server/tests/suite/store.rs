//! The store's schema changes: a database written by an older release keeps its data.
use sqlx::migrate::Migrator;

testkit::on_both_backends! {
    async fn trusted_addresses_of_the_old_schema_move_to_their_own_table(database) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&database.url).await.unwrap();
        // The schema as the first release left it, with trusts stored as login_failures rows.
        let first_only = tempfile::tempdir().unwrap();
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_init.sql"),
            first_only.path().join("0001_init.sql"),
        )
        .unwrap();
        Migrator::new(first_only.path()).await.unwrap().run(&pool).await.unwrap();
        for (bucket, until) in [
            ("trusted:bob|198.51.100.7", 1_000),
            ("trusted:cafe.b0b|2001:db8::1", 2_000),
            ("trusted:ab1|::ffff:192.0.2.1", 3_000),
            ("pair:bob|198.51.100.7", 0),
        ] {
            sqlx::query("INSERT INTO login_failures (bucket, failures, first_failed, locked_until) VALUES ($1, 0, 0, $2)")
                .bind(bucket)
                .bind(until)
                .execute(&pool)
                .await
                .unwrap();
        }

        auth_server::MIGRATOR.run(&pool).await.unwrap();

        let mut trusted: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT username, address, trusted_until FROM trusted_addresses")
                .fetch_all(&pool)
                .await
                .unwrap();
        trusted.sort();
        assert_eq!(
            trusted,
            [
                ("ab1".to_owned(), "::ffff:192.0.2.1".to_owned(), 3_000),
                ("bob".to_owned(), "198.51.100.7".to_owned(), 1_000),
                ("cafe.b0b".to_owned(), "2001:db8::1".to_owned(), 2_000),
            ]
        );
        let left: Vec<String> = sqlx::query_scalar("SELECT bucket FROM login_failures").fetch_all(&pool).await.unwrap();
        assert_eq!(left, ["pair:bob|198.51.100.7"], "only the failure counts stay");
    }
}

/// The data directory and the SQLite files in it are the service user's alone: they hold
/// password hashes and, without a key encryption key, the private signing keys.
#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_is_0700_and_the_database_files_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let mut config = <auth_server::config::Cli as clap::Parser>::parse_from(["auth-server"]).config;
    config.storage.data_dir = data_dir.clone();
    config.storage.database_url = None;

    let state = auth_server::build_state(config).await.unwrap();
    // A write, so that SQLite has its -wal and -shm files.
    sqlx::query("DELETE FROM rate_limits").execute(&state.pool).await.unwrap();

    assert_eq!(mode(&data_dir), 0o700);
    for file in ["auth.sqlite", "auth.sqlite-wal", "auth.sqlite-shm"] {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
}
