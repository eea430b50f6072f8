//! Test helpers shared by the crates' tests (a dev-dependency only):
//!
//! - [`TestDatabase`] and [`on_both_backends!`]: the same test on SQLite and on PostgreSQL.
//!   PostgreSQL comes from `TEST_DATABASE_URL` (a fresh database per test is created on that
//!   server) or, without it, from a testcontainers container when Docker runs. With neither the
//!   PostgreSQL variant prints a loud SKIPPED line, or fails when `REQUIRE_POSTGRES=1` (CI sets
//!   it, so a missing database can never pass silently).
//! - [`FakeIssuer`]: an auth server stand-in that publishes a key set and signs any claims,
//!   for testing resource services without the real auth server.
//! - [`serve`]: runs a router on a free loopback port; [`start_resource_service`]: any resource
//!   service built by its `service-kit` recipe, on a fresh database, trusting a given issuer;
//!   [`count_rows`]: what a request stored, or did not.
//! - [`services`]: the platform's services as `services.toml` lists them, and [`launch`]: the
//!   launcher of the real binaries that `platform` and the end-to-end tests share.
//! - [`federation`]: a second auth server, "Acme ID", as the upstream OpenID provider of a
//!   stack (`platform` and the end-to-end tests register the two servers at each other).
//! - [`browser`]: a scripted browser (cookie jar, no redirect following, HTML forms) and the
//!   authorize → hosted login → consent walk of the authorization code tests.
//!
//! The default feature `databases` brings [`TestDatabase`] and what needs one; `platform` uses
//! only [`services`] and [`launch`] and turns it off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod federation;
mod issuer;
pub mod launch;
pub mod scopes;
pub mod services;

#[cfg(feature = "databases")]
use std::str::FromStr as _;

pub use issuer::FakeIssuer;
pub use services::Services;
#[cfg(feature = "databases")]
use sqlx::ConnectOptions as _;
#[cfg(feature = "databases")]
use sqlx::Connection as _;
#[cfg(feature = "databases")]
use sqlx::Executor as _;

#[cfg(feature = "databases")]
/// Environment variable with a PostgreSQL URL for tests.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";
#[cfg(feature = "databases")]
/// When set to `1`, a PostgreSQL test without a database fails instead of skipping.
pub const REQUIRE_POSTGRES: &str = "REQUIRE_POSTGRES";

#[cfg(feature = "databases")]
/// A database for one test: a SQLite file in a temporary directory, or a fresh PostgreSQL
/// database.
#[derive(Debug)]
pub struct TestDatabase {
    /// The `DATABASE_URL` to give the service.
    pub url: String,
    /// A temporary directory the test may use as `DATA_DIR` (removed on drop).
    pub dir: tempfile::TempDir,
    /// Which backend this is.
    pub backend: &'static str,
    /// The container serving this database, if testcontainers started one.
    _container: Option<PostgresContainer>,
}

#[cfg(feature = "databases")]
impl TestDatabase {
    /// The same database for a second server (a replica), with its own data dir. The original
    /// keeps the database (and any container) alive.
    pub fn same_database(&self) -> Self {
        Self {
            url: self.url.clone(),
            dir: tempfile::tempdir().unwrap(),
            backend: self.backend,
            _container: None,
        }
    }

    /// A fresh SQLite database.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = service_kit::db::sqlite_url(&dir.path().join("test.sqlite"));
        Self { url, dir, backend: "sqlite", _container: None }
    }

    /// A fresh PostgreSQL database: on the `TEST_DATABASE_URL` server when it is set, else in a
    /// container started with testcontainers when Docker is available (image and tag from
    /// `TEST_POSTGRES_IMAGE` / `TEST_POSTGRES_TAG`, default `postgres:15`, the major version every
    /// deployment file and the air-gapped image use; a local image
    /// is never pulled). Neither: a loud SKIPPED line and `None`, or a panic when
    /// `REQUIRE_POSTGRES=1`.
    pub async fn postgres() -> Option<Self> {
        let (admin_url, container) = match std::env::var(TEST_DATABASE_URL) {
            Ok(url) => (url, None),
            Err(_) => match start_container().await {
                Ok((url, container)) => (url, Some(container)),
                Err(why) => {
                    if std::env::var(REQUIRE_POSTGRES).is_ok_and(|value| value == "1") {
                        panic!(
                            "REQUIRE_POSTGRES=1 but no PostgreSQL: TEST_DATABASE_URL is not set and {why}"
                        );
                    }
                    eprintln!(
                        "SKIPPED (PostgreSQL): TEST_DATABASE_URL is not set and {why}; this test ran on SQLite \
                         only. Set TEST_DATABASE_URL=postgres://... or start Docker to run it on PostgreSQL."
                    );
                    return None;
                }
            },
        };
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let options = sqlx::postgres::PgConnectOptions::from_str(&admin_url)
            .expect("TEST_DATABASE_URL is not a valid PostgreSQL URL");
        let mut admin = sqlx::postgres::PgConnection::connect_with(&options)
            .await
            .expect("cannot connect to the test PostgreSQL server");
        admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
        let url = options.database(&name).to_url_lossy().to_string();
        Some(Self { url, dir: tempfile::tempdir().unwrap(), backend: "postgres", _container: container })
    }
}

#[cfg(feature = "databases")]
type PostgresContainer =
    testcontainers_modules::testcontainers::ContainerAsync<testcontainers_modules::postgres::Postgres>;

#[cfg(feature = "databases")]
/// Starts a PostgreSQL container for one test (removed when the test's database is dropped).
async fn start_container() -> Result<(String, PostgresContainer), String> {
    use testcontainers_modules::testcontainers::ImageExt as _;
    use testcontainers_modules::testcontainers::runners::AsyncRunner as _;
    if !std::path::Path::new("/var/run/docker.sock").exists() && std::env::var_os("DOCKER_HOST").is_none() {
        return Err("Docker is not available".into());
    }
    let image = std::env::var("TEST_POSTGRES_IMAGE").unwrap_or_else(|_| "postgres".into());
    let tag = std::env::var("TEST_POSTGRES_TAG").unwrap_or_else(|_| "15".into());
    let container = testcontainers_modules::postgres::Postgres::default()
        .with_name(image.clone())
        .with_tag(tag.clone())
        .start()
        .await
        .map_err(|error| format!("the {image}:{tag} container could not start ({error})"))?;
    let port = container.get_host_port_ipv4(5432).await.map_err(|error| error.to_string())?;
    Ok((format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"), container))
}

/// Defines one test that runs on both backends, as `NAME::sqlite` and `NAME::postgres`:
///
/// ```ignore
/// testkit::on_both_backends! {
///     async fn duplicate_usernames_are_rejected(database) {
///         let app = TestApp::start(&database).await;
///         // ...
///     }
/// }
/// ```
#[cfg(feature = "databases")]
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($database:ident) $body:block)+) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($database: $crate::TestDatabase) $body

                #[tokio::test]
                async fn sqlite() {
                    run($crate::TestDatabase::sqlite()).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(database) = $crate::TestDatabase::postgres().await {
                        run(database).await;
                    }
                }
            }
        )+
    };
}

/// Serves `router` on a free loopback port; returns its base URL. The server runs until the
/// test's runtime ends.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .await
            .unwrap();
    });
    format!("http://{address}")
}

#[cfg(feature = "databases")]
/// The number of rows in `table`: for a test that asserts what a request stored, or did not.
pub async fn count_rows(pool: &sqlx::AnyPool, table: &str) -> i64 {
    assert!(
        !table.is_empty() && table.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_'),
        "{table:?} is not a table name"
    );
    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(pool).await.unwrap()
}

#[cfg(feature = "databases")]
/// A resource service started in-process for a test.
#[derive(Debug)]
pub struct StartedService {
    /// Base URL.
    pub url: String,
    /// The router, for `oneshot` calls that skip the socket.
    pub router: axum::Router,
    /// Its verifier, keys already fetched.
    pub verifier: shared_auth::Verifier,
}

#[cfg(feature = "databases")]
/// Starts `service` (its `service-kit` recipe and `api`) on a free port, on `database`,
/// trusting `issuer`, with its keys fetched before it answers. `configure` adjusts the
/// configuration first (the service's own settings, say).
pub async fn start_resource_service<Settings: clap::Args>(
    service: &service_kit::ResourceService<Settings>,
    api: impl FnOnce(service_kit::Resources, &Settings) -> anyhow::Result<utoipa_axum::router::OpenApiRouter>,
    issuer: &str,
    database: &TestDatabase,
    configure: impl FnOnce(&mut service_kit::ResourceConfig<Settings>),
) -> StartedService {
    let mut config = service.config_from([service.name()]).unwrap();
    config.auth.auth_issuer = issuer.to_owned();
    config.storage.database_url = Some(secrecy::SecretString::from(database.url.clone()));
    config.storage.data_dir = database.dir.path().to_path_buf();
    configure(&mut config);
    let built = service.build(&config, api).await.unwrap();
    built.verifier.keys().refresh().await.unwrap();
    let url = serve(built.router.clone()).await;
    StartedService { url, router: built.router, verifier: built.verifier }
}
