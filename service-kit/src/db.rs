//! Database connection for every service: SQLite under the data dir by default, PostgreSQL when
//! `DATABASE_URL` says `postgres://`. Migrations are embedded in each binary and run at start.
//!
//! We use sqlx's `Any` driver so one set of queries and one set of migrations serve both
//! backends. Migrations therefore stick to the SQL both understand (TEXT, BIGINT, no booleans,
//! times as Unix seconds), and queries use `$1` placeholders, which SQLite also accepts.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor as _};

/// Where a service keeps its data.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Directory for the SQLite database and caches; created on first start.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: std::path::PathBuf,
    /// `postgres://user:pass@host/db` for PostgreSQL; unset means SQLite under the data dir.
    #[arg(long, env = "DATABASE_URL", value_parser = parse_secret, hide_env_values = true)]
    pub database_url: Option<SecretString>,
}

/// Parses a command-line value into a secret, so clap never keeps it in plain form.
pub fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

/// Which backend a URL selects.
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the pool and runs the embedded migrations. `sqlite_file` is the file name used under
/// the data dir when no URL is given.
pub async fn connect(
    storage: &StorageArgs,
    sqlite_file: &str,
    migrator: &Migrator,
) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let url = match &storage.database_url {
        Some(url) => url.expose_secret().to_owned(),
        None => {
            // The database holds credentials: only this service's user may read it (see
            // `files`). SQLite gives its -wal and -shm files the database file's mode.
            crate::files::private_dir(&storage.data_dir)
                .with_context(|| format!("failed to prepare data dir {}", storage.data_dir.display()))?;
            let database = storage.data_dir.join(sqlite_file);
            crate::files::private_file(&database)?;
            for suffix in ["-wal", "-shm"] {
                let companion = storage.data_dir.join(format!("{sqlite_file}{suffix}"));
                if companion.exists() {
                    crate::files::private_file(&companion)?;
                }
            }
            sqlite_url(&database)
        }
    };
    connect_url(&url, migrator).await
}

/// `sqlite://` URL that creates the file if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Opens a pool for an explicit URL (tests use this) and migrates it.
pub async fn connect_url(url: &str, migrator: &Migrator) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let postgres = is_postgres(url);
    let options = AnyConnectOptions::from_str(url).context("failed to parse DATABASE_URL")?;
    let pool = AnyPoolOptions::new()
        // SQLite serialises writers anyway; a few connections avoid lock convoys.
        .max_connections(if postgres { 10 } else { 4 })
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |connection, _meta| {
            Box::pin(async move {
                if !postgres {
                    // WAL lets readers proceed during a write; busy_timeout queues writers
                    // instead of failing them with SQLITE_BUSY.
                    connection
                        .execute(
                            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL;",
                        )
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .context("failed to connect to the database")?;
    migrator.run(&pool).await.context("failed to run database migrations")?;
    Ok(pool)
}
