//! users-service: user profiles. A profile is created on the user's first authenticated
//! request, from the token's `sub` and `preferred_username`. Tokens are verified locally with
//! shared-auth, so this service keeps working while the auth server is down.

pub mod profiles;

use service_kit::{NoSettings, ResourceService, Resources};
use utoipa_axum::router::OpenApiRouter;

/// Embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service: name (and token audience), default address, migrations.
pub static SERVICE: ResourceService = ResourceService::new("users-service", "127.0.0.1:8081")
    .about("User profiles, protected by access tokens verified locally.")
    .migrations(&MIGRATOR);

/// The service's routes.
pub fn api(resources: Resources, _settings: &NoSettings) -> anyhow::Result<OpenApiRouter> {
    Ok(profiles::router().with_state(resources))
}
