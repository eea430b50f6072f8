//! The authorization server: accounts (Argon2id), login, signed JWT access tokens, rotating
//! refresh tokens, OAuth2 client credentials, signing keys and discovery.
//!
//! `main.rs` is thin: it parses [`config::Cli`] and calls [`run`] or a [`cli`] subcommand, so
//! tests and the all-in-one runner start the same code production runs.

pub mod cli;
pub mod clients;
pub mod config;
pub mod domain;
pub mod error;
pub mod federation;
pub mod keyring;
pub mod oauth;
pub mod password;
pub mod routes;
pub mod sessions;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tokens;

use anyhow::Context as _;
use axum::Router;
use service_kit::App;
use service_kit::readiness::database_readiness;
use shared_auth::time::Clock;

use crate::config::Config;
use crate::keyring::KeyRing;
use crate::password::PasswordHasher;
use crate::state::AppState;

/// Migrations of the auth database, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// File name of the SQLite database under the data dir.
pub const SQLITE_FILE: &str = "auth.sqlite";

/// Connects the database, runs migrations, loads (or creates) the signing keys.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    build_state_with_clock(config, Clock::system()).await
}

/// [`build_state`] with time read from `clock` (tests pass a [`shared_auth::time::ManualClock`]'s).
pub async fn build_state_with_clock(config: Config, clock: Clock) -> anyhow::Result<AppState> {
    let pool = service_kit::db::connect(&config.storage, SQLITE_FILE, &MIGRATOR).await?;
    let keyring =
        KeyRing::load_or_init(pool.clone(), config.key_ring_settings()?, &config.issuer(), clock.clone())
            .await
            .context("failed to load signing keys")?;
    let hasher = PasswordHasher::new(config.hash_settings()).context("invalid Argon2 settings")?;
    Ok(AppState::new(pool, config, hasher, keyring, clock))
}

/// The full HTTP application for a state.
pub fn router(state: AppState) -> Router {
    app(state).build().0
}

/// The application; its public URL, for Strict-Transport-Security, is the issuer.
fn app(state: AppState) -> App {
    let readiness = database_readiness(state.pool.clone());
    let issuer = state.config.issuer();
    let cors_origins = state.config.server.cors_allowed_origins.clone();
    App::new("auth-server", routes::api(state), readiness)
        .public_url(&issuer)
        .swagger_login(&issuer)
        .cors_on(&cors_origins, routes::CORS_PATHS)
}

/// Runs the server until SIGTERM or Ctrl-C, with the connection limits and management
/// listener of [`service_kit::ServerArgs`].
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listen_addr = config.listen_addr;
    let server = config.server.clone();
    let key_reload = config.key_reload_secs.max(service_kit::Seconds::new(1)).duration();
    let state = build_state(config).await?;
    state.tokens.keyring().spawn_reload(key_reload);
    sessions::spawn_pruning(state.pool.clone(), state.clock.clone(), std::time::Duration::from_secs(60));
    // Within 5 s of `providers add`, the login page says whether the upstream can be reached.
    state.federation.spawn_checks(state.pool.clone(), std::time::Duration::from_secs(5));
    let built = app(state).management_listener(server.management_addr.is_some()).build_all();
    server.serve(listen_addr, built.router, built.management).await
}
