//! HTTP routes, one module per resource; [`api`] merges them.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub mod accounts;
pub mod discovery;
pub mod login;
pub mod revocations;

/// The paths that answer CORS for `CORS_ALLOWED_ORIGINS` (DESIGN.md "CORS"): discovery, the
/// key set, token, both revocation endpoints and userinfo, and `/readyz` for the demo app's
/// status strip. The pages, introspection and the account API do not.
pub const CORS_PATHS: &[&str] =
    &["/.well-known/", "/oauth2/token", "/oauth2/revoke", "/oauth2/userinfo", "/v1/revocations", "/readyz"];

/// Every documented route of the auth server, with its state.
pub fn api(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(accounts::router())
        .merge(login::router())
        .merge(discovery::router())
        .merge(crate::oauth::router())
        .merge(revocations::router())
        .merge(crate::federation::router())
        .with_state(state)
}

/// `Cache-Control: no-store` and `Pragma: no-cache` for responses carrying tokens
/// (RFC 6749 §5.1).
pub fn no_store_headers() -> [(axum::http::HeaderName, &'static str); 2] {
    [(axum::http::header::CACHE_CONTROL, "no-store"), (axum::http::header::PRAGMA, "no-cache")]
}
