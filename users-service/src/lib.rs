//! users-service: user profiles. A profile is created on the user's first authenticated
//! request, from the token's `sub` and `preferred_username`. Tokens are verified locally with
//! shared-auth, so this service keeps working while the auth server is down.

pub mod config;
pub mod error;
pub mod profiles;

use axum::Router;
use axum::extract::FromRef;
use shared_auth::Verifier;
use shared_auth::service;
use sqlx::AnyPool;

use crate::config::Config;

/// Embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Everything a handler needs.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The profiles database.
    pub pool: AnyPool,
    /// Verifies access tokens.
    pub verifier: Verifier,
}

/// Connects and migrates the database and builds the verifier (loading its disk cache).
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let pool = shared_auth::db::connect(&config.storage, "users.sqlite", &MIGRATOR).await?;
    let verifier = config.auth.verifier(&config.audience, &config.storage.data_dir);
    Ok(AppState { pool, verifier })
}

/// The full HTTP application.
pub fn router(state: AppState) -> Router {
    let readiness = service::resource_readiness(state.pool.clone(), state.verifier.clone());
    service::finish_router("users-service", profiles::router().with_state(state), readiness).0
}

/// Runs the binary: serve (default) or health check.
pub async fn run(config: Config) -> anyhow::Result<bool> {
    let build = async {
        let state = build_state(&config).await?;
        let verifier = state.verifier.clone();
        Ok((router(state), verifier))
    };
    service::run_resource_service(config.command, config.listen_addr, build).await
}
