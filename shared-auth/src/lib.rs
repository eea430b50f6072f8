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

pub mod claims;
pub mod client;
pub mod config;
pub mod db;
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
