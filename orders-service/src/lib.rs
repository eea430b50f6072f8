//! orders-service: a user's orders. Tokens are verified locally with shared-auth; the
//! customer's display name comes from users-service, called on the customer's behalf with the
//! customer's token exchanged for one meant for users-service (RFC 8693 token exchange), and
//! is optional: with users-service or the auth server down, orders still work.

pub mod orders;
pub mod settings;
pub mod users_client;

use std::time::Duration;

use axum::extract::FromRef;
use service_kit::{ResourceService, Resources};
use shared_auth::Verifier;
use sqlx::AnyPool;
use utoipa_axum::router::OpenApiRouter;

use crate::settings::Settings;
use crate::users_client::UsersClient;

/// Embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service: name (and token audience), default address, migrations.
pub static SERVICE: ResourceService<Settings> = ResourceService::new("orders-service", "127.0.0.1:8082")
    .about("Orders, protected by access tokens verified locally; asks users-service for display names.")
    .migrations(&MIGRATOR);

/// Everything a handler needs.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    /// The orders database.
    pub pool: AnyPool,
    /// Verifies access tokens.
    pub verifier: Verifier,
    /// Display names from users-service.
    pub users: UsersClient,
}

/// The service's routes.
pub fn api(resources: Resources, settings: &Settings) -> anyhow::Result<OpenApiRouter> {
    let users = UsersClient::new(
        &settings.users_service_url,
        &resources.verifier.settings().issuer,
        &settings.client_id,
        settings.client_secret.clone(),
        Duration::from_millis(settings.users_service_timeout_ms),
    )?;
    Ok(orders::router().with_state(AppState { pool: resources.pool, verifier: resources.verifier, users }))
}
