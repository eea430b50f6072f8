//! Everything a service of the platform needs to trust access tokens on its own, and the
//! plumbing every binary shares.
//!
//! - [`Verifier`]: checks signature, `alg` against the key's one algorithm, `typ`, `iss`, `aud`,
//!   `exp`/`nbf` and the revocation list, with a verified-token cache in front.
//! - [`KeyCache`]: the auth server's public keys, in memory and on disk, refreshed in the
//!   background, so a service keeps working while the auth server is down, even across a
//!   restart.
//! - [`Authenticated`] / [`AuthenticatedUser`]: axum extractors with RFC 6750 rejections.
//! - [`ServiceTokenClient`]: client-credentials tokens for calls to other services.
//! - [`service`]: health, readiness, metrics, OpenAPI and Swagger UI, layers, graceful shutdown.
//!
//! # A new protected service
//!
//! This is a complete service: tokens verified locally with keys cached in memory and on disk
//! (it keeps working while the auth server is down), its own database, `/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`, `/docs`, request ids, tracing and graceful shutdown. Set
//! `AUTH_ISSUER` to the auth server's URL and register `hello-service` as an audience.
//!
//! ```no_run
//! use axum::extract::FromRef;
//! use clap::Parser as _;
//! use shared_auth::{AuthArgs, Authenticated, Verifier, db::StorageArgs, service};
//! use utoipa_axum::{router::OpenApiRouter, routes};
//!
//! /// Greets the caller; any valid access token for `hello-service` will do.
//! #[utoipa::path(get, path = "/v1/hello", security(("bearer" = [])),
//!     responses((status = 200, body = String), (status = 401, description = "No valid token")))]
//! async fn hello(caller: Authenticated) -> String {
//!     format!("hello, {}", caller.preferred_username.as_deref().unwrap_or(&caller.sub))
//! }
//!
//! #[derive(Clone, FromRef)]
//! struct AppState { verifier: Verifier, pool: sqlx::AnyPool }
//!
//! #[derive(clap::Parser)]
//! struct Config {
//!     #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8090")]
//!     listen_addr: std::net::SocketAddr,
//!     #[command(flatten)]
//!     storage: StorageArgs,
//!     #[command(flatten)]
//!     auth: AuthArgs,
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     service::init_telemetry();
//!     let config = Config::parse();
//!     let pool = shared_auth::db::connect(&config.storage, "hello.sqlite", &sqlx::migrate::Migrator::DEFAULT).await?;
//!     let verifier = config.auth.verifier("hello-service", &config.storage.data_dir);
//!     verifier.start_background_refresh();
//!     let readiness = service::resource_readiness(pool.clone(), verifier.clone());
//!     let api = OpenApiRouter::new().routes(routes!(hello)).with_state(AppState { verifier, pool });
//!     let (app, _openapi) = service::finish_router("hello-service", api, readiness);
//!     service::serve(tokio::net::TcpListener::bind(config.listen_addr).await?, app).await
//! }
//! ```

pub mod claims;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod jws;
pub mod keys;
pub mod persist;
pub mod problem;
pub mod revocation;
pub mod service;
pub mod time;
pub mod verifier;

pub use claims::AccessClaims;
pub use client::{ServiceTokenClient, ServiceTokenSettings};
pub use config::AuthArgs;
pub use extract::{AuthError, Authenticated, AuthenticatedUser};
pub use keys::{KeyCache, KeyCacheSettings, KeyStatus};
pub use revocation::Revocations;
pub use verifier::{Verifier, VerifierSettings, VerifyError};
