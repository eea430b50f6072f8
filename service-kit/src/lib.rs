//! The HTTP plumbing every binary of the platform shares, and the one recipe for a protected
//! resource service.
//!
//! - [`ResourceService`]: the whole wiring of a protected service (config, database, token
//!   verification, routes, serve), used as it is by users-service and orders-service.
//! - [`App`]: any binary's API turned into the whole application: `/healthz`, `/readyz`,
//!   `/metrics` (on a management listener with `MANAGEMENT_ADDR`), `/openapi.json`, Swagger UI
//!   at `/docs`, problem fallbacks, request ids, tracing, body limits, timeouts and the
//!   [`headers`] (nosniff, referrer policy, CSP, HSTS for an https public URL).
//! - [`ServerArgs::serve`] (and [`serve`]): connection cap, header-read and idle timeouts,
//!   the open-file limit raised, graceful shutdown; the [`healthcheck()`] subcommand,
//!   [`init_telemetry`] (text logs escape control characters), [`db`] (SQLite or PostgreSQL by
//!   URL), [`ServiceError`], and the clap arguments [`AuthArgs`], [`ServerArgs`] and
//!   [`StorageArgs`](db::StorageArgs).
//!
//! Token verification itself is `shared-auth`, which depends on none of this.
//!
//! # A new protected service
//!
//! This is a complete service, exactly as users-service is written: tokens verified locally
//! with keys cached in memory and on disk (it keeps working while the auth server is down), its
//! own database, the operational routes and graceful shutdown. Set `AUTH_ISSUER` to the auth
//! server's URL and register `hello-service` as an audience. A service with tables adds
//! `.migrations(&MIGRATOR)` (a `sqlx::migrate!()` static); one with settings of its own names a
//! `clap::Args` struct as `ResourceService<MySettings>` and reads it in `api`.
//!
//! ```no_run
//! use service_kit::{NoSettings, ProtectedResponses, ResourceService, Resources};
//! use shared_auth::Authenticated;
//! use utoipa_axum::{router::OpenApiRouter, routes};
//!
//! /// The service: its name (also its token audience) and default address.
//! pub static SERVICE: ResourceService = ResourceService::new("hello-service", "127.0.0.1:8090");
//!
//! /// Its routes, built from the verifier and the database.
//! pub fn api(resources: Resources, _settings: &NoSettings) -> anyhow::Result<OpenApiRouter> {
//!     Ok(OpenApiRouter::new().routes(routes!(hello)).with_state(resources))
//! }
//!
//! /// Greets the caller; any valid access token for `hello-service` will do.
//! #[utoipa::path(get, path = "/v1/hello", security(("bearer" = [])),
//!     responses((status = 200, description = "A greeting", body = String), ProtectedResponses))]
//! async fn hello(caller: Authenticated) -> String {
//!     format!("hello, {}", caller.preferred_username.as_deref().unwrap_or(&caller.sub))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     SERVICE.main(api)
//! }
//! ```

mod app;
pub mod auth_args;
mod connection;
pub mod cors;
pub mod db;
mod docs;
pub mod error;
mod file_limit;
pub mod files;
pub mod headers;
pub mod healthcheck;
mod layers;
pub mod metrics;
pub mod problem;
pub mod readiness;
pub mod resource;
mod serve;
mod server;
mod settings;
pub mod telemetry;
pub mod text;

pub use app::{App, BuiltApp};
pub use auth_args::AuthArgs;
pub use error::ServiceError;
pub use file_limit::raise_file_limit;
pub use healthcheck::{ServiceCommand, healthcheck};
pub use layers::{MAX_BODY_BYTES, REQUEST_TIMEOUT};
pub use readiness::{Readiness, ReadinessCheck, ReadyStatus};
pub use resource::{BuiltService, NoSettings, ResourceConfig, ResourceService, Resources};
pub use serve::{ConnectionLimits, serve, serve_with, shutdown_signal};
pub use server::{MANAGEMENT_MAX_CONNECTIONS, ServerArgs};
pub use settings::{MAX_SECONDS, Seconds};
pub use shared_auth::ProtectedResponses;
pub use telemetry::init_telemetry;
