//! The application state shared by every handler.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use shared_auth::revocation::{RevocationSettings, Revocations};
use shared_auth::{Verifier, VerifierSettings};
use sqlx::AnyPool;

use crate::config::Config;
use crate::keyring::KeyRing;
use crate::password::PasswordHasher;
use crate::tokens::TokenIssuer;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The auth database.
    pub pool: AnyPool,
    /// Settings.
    pub config: Arc<Config>,
    /// Argon2id with bounded concurrency and memory.
    pub hasher: PasswordHasher,
    /// Signs access tokens.
    pub tokens: TokenIssuer,
    /// Verifies our own access tokens (logout), with shared-auth's rules and any audience.
    pub verifier: Verifier,
}

impl AppState {
    /// Wires the state from its parts.
    pub fn new(pool: AnyPool, config: Config, hasher: PasswordHasher, keyring: KeyRing) -> Self {
        let issuer = config.issuer();
        let tokens = TokenIssuer::new(keyring.clone(), issuer.clone(), config.access_token_ttl());
        let keys = keyring.verifier_keys();
        let revocations = Revocations::new(RevocationSettings::default(), keys.clone());
        let mut settings = VerifierSettings::new(issuer, "");
        settings.check_audience = false;
        settings.leeway = Duration::from_secs(30);
        let verifier = Verifier::new(settings, keys, revocations);
        Self { pool, config: Arc::new(config), hasher, tokens, verifier }
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
