//! Everything a service needs to trust the platform's access tokens on its own: no database,
//! no web framework beyond axum's extractor traits, no command-line parsing.
//!
//! - [`Verifier`]: checks signature, `alg` against the key's one algorithm, `typ`, `iss`, `aud`,
//!   `exp`/`nbf` and the revocation list, with a verified-token cache in front.
//! - [`dpop`]: DPoP proofs (RFC 9449) and their replay cache; [`Verifier::verify_dpop`] takes a
//!   bound token with its proof, and the extractors take `Authorization: DPoP` as well as
//!   `Bearer`.
//! - [`KeyCache`]: the issuer's public keys, found through RFC 8414 or OpenID Connect
//!   discovery, in memory and on disk, refreshed in the background, so a service keeps working
//!   while the auth server is down, even across a restart.
//! - [`Revocations`]: the signed revocation list, polled and cached the same way.
//! - [`Authenticated`] / [`AuthenticatedUser`]: axum extractors with RFC 6750 rejections, and
//!   [`ProtectedResponses`], the OpenAPI description of those rejections.
//! - [`ServiceTokenClient`]: tokens for calls to other services: the service's own (client
//!   credentials) and, for a call on a user's behalf, the user's token exchanged for one meant
//!   for the other service (RFC 8693), cached per user token.
//!
//! The platform's services wire this up through the `service-kit` crate; see the README of this
//! crate and `examples/` for using it alone.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use shared_auth::{KeyCache, KeyCacheSettings, Revocations, Verifier, VerifierSettings};
//! use shared_auth::revocation::RevocationSettings;
//!
//! let issuer = "https://auth.example.com";
//! let keys = KeyCache::new(KeyCacheSettings::new(issuer))?;
//! let revocations = Revocations::new(RevocationSettings::default(), keys.clone());
//! let verifier = Verifier::new(VerifierSettings::new(issuer, "my-service"), keys, revocations);
//! verifier.start_background_refresh();
//! let claims = verifier.verify("eyJ...").await?;
//! println!("{} may call with scope {:?}", claims.sub, claims.scope);
//! # Ok(()) }
//! ```

pub mod claims;
pub mod client;
pub mod dpop;
pub mod extract;
pub mod fetch;
pub mod jws;
pub mod keys;
pub mod persist;
pub mod problem;
pub mod revocation;
pub mod time;
pub mod verifier;

pub use claims::AccessClaims;
pub use client::{ServiceTokenClient, ServiceTokenSettings};
pub use extract::{
    AuthError, Authenticated, AuthenticatedUser, ProtectedResponses, RequiredScope, Scoped, UserScoped,
};
pub use keys::{KeyCache, KeyCacheSettings, KeyStatus};
pub use revocation::Revocations;
pub use verifier::{DpopRejection, Verifier, VerifierSettings, VerifyError};
