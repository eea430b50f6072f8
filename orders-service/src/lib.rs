//! orders-service: a user's orders. Tokens are verified locally with shared-auth; the
//! customer's display name comes from users-service, called with this service's own
//! client-credentials token, and is optional: with users-service down, orders still work.

pub mod config;
pub mod error;
pub mod orders;
pub mod users_client;

use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use shared_auth::Verifier;
use shared_auth::service;
use sqlx::AnyPool;

use crate::config::Config;
use crate::users_client::UsersClient;

/// Embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Everything a handler needs.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The orders database.
    pub pool: AnyPool,
    /// Verifies access tokens.
    pub verifier: Verifier,
    /// Display names from users-service.
    pub users: UsersClient,
}

/// Connects and migrates the database and builds the verifier and the users-service client.
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let pool = shared_auth::db::connect(&config.storage, "orders.sqlite", &MIGRATOR).await?;
    let verifier = config.auth.verifier(&config.audience, &config.storage.data_dir);
    let users = UsersClient::new(
        &config.users_service_url,
        &config.auth.auth_issuer,
        &config.client_id,
        config.client_secret.clone(),
        Duration::from_millis(config.users_service_timeout_ms),
    );
    Ok(AppState { pool, verifier, users })
}

/// The full HTTP application.
pub fn router(state: AppState) -> Router {
    let readiness = service::resource_readiness(state.pool.clone(), state.verifier.clone());
    service::finish_router("orders-service", orders::router().with_state(state), readiness).0
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
