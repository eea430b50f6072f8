//! The application state shared by every handler.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use shared_auth::revocation::{RevocationSettings, Revocations};
use shared_auth::time::Clock;
use shared_auth::{Verifier, VerifierSettings};
use sqlx::AnyPool;

use crate::config::Config;
use crate::keyring::KeyRing;
use crate::password::PasswordHasher;
use crate::throttle::LoginThrottle;
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
    /// Counts failed logins and locks guessing.
    pub throttle: LoginThrottle,
    /// Serialises registrations of the same name.
    pub registrations: RegistrationLocks,
    /// What "now" is: the system clock, or a test's.
    pub clock: Clock,
    /// The upstream OpenID providers ("Login with …") the server has talked to.
    pub federation: crate::federation::Federation,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AppState").field("config", &self.config).finish_non_exhaustive()
    }
}

impl AppState {
    /// Wires the state from its parts.
    pub fn new(
        pool: AnyPool,
        config: Config,
        hasher: PasswordHasher,
        keyring: KeyRing,
        clock: Clock,
    ) -> Self {
        let issuer = config.issuer();
        let tokens =
            TokenIssuer::new(keyring.clone(), issuer.clone(), config.access_token_ttl_secs, clock.clone());
        let keys = keyring.verifier_keys();
        // This list stays empty: the auth server owns the revocations, so it checks them in its
        // database (`AppState::verify_unrevoked`) instead of polling its own feed.
        let revocations = Revocations::new(RevocationSettings::default(), keys.clone());
        // DPoP proofs sent to its own resource (userinfo) name the issuer's URL.
        let mut settings = VerifierSettings::new(issuer.clone(), "").with_public_url(issuer);
        settings.check_audience = false;
        settings.leeway = Duration::from_secs(30);
        let verifier = Verifier::new(settings, keys, revocations);
        let throttle = LoginThrottle::new(pool.clone(), config.login_failure_threshold);
        let registrations = RegistrationLocks::default();
        let federation = crate::federation::Federation::new(
            Duration::from_millis(config.upstream_timeout_ms.max(1)),
            clock.clone(),
        );
        Self {
            pool,
            config: Arc::new(config),
            hasher,
            tokens,
            verifier,
            throttle,
            registrations,
            clock,
            federation,
        }
    }
}

impl AppState {
    /// Verifies an access token as the services do, then against the revocations in the
    /// database, where logout, `/oauth2/revoke` and `users disable` write them: no poll delay,
    /// and the same answer on every replica. `Ok(None)` for a token that is not (or no longer)
    /// valid. A DPoP-bound token is taken as it is: the endpoints that call this look at a
    /// token (introspection, revocation, token exchange's subject), they are not called with it.
    pub async fn verify_unrevoked(
        &self,
        token: &str,
    ) -> anyhow::Result<Option<std::sync::Arc<shared_auth::AccessClaims>>> {
        let Ok(claims) = self.verifier.verify_ignoring_binding(token).await else {
            return Ok(None);
        };
        if crate::sessions::is_revoked(&self.pool, &claims).await? {
            return Ok(None);
        }
        Ok(Some(claims))
    }
}

/// Registrations of one username run one at a time on a replica. Without this, a burst of
/// identical registrations all pass the "is the name taken?" check before the first has stored
/// its account, and all queue for a password hash that only one can use: the rest would wait for
/// hashing slots, or be shed with 503, instead of getting the 409 they are due. A fixed set of
/// striped locks bounds memory whatever names are tried; two names that share a stripe merely
/// take turns. Across replicas the unique index still decides a race.
#[derive(Debug, Clone)]
pub struct RegistrationLocks {
    stripes: Arc<[tokio::sync::Mutex<()>]>,
    hasher: std::hash::RandomState,
}

impl RegistrationLocks {
    const STRIPES: usize = 64;

    /// Waits for the lock of `username`'s stripe.
    pub async fn lock(&self, username: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::BuildHasher as _;
        // Truncating the hash is fine: any bits pick a stripe.
        #[allow(clippy::cast_possible_truncation)]
        let index = self.hasher.hash_one(username) as usize % self.stripes.len();
        self.stripes[index].lock().await
    }
}

impl Default for RegistrationLocks {
    fn default() -> Self {
        Self {
            stripes: (0..Self::STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }
}

/// The address a request came from: the TCP peer, or the last `X-Forwarded-For` entry when the
/// server is configured to trust it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl axum::extract::FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.trust_x_forwarded_for
            && let Some(forwarded) =
                parts.headers.get("x-forwarded-for").and_then(|value| value.to_str().ok())
            && let Some(last) = forwarded.rsplit(',').next().and_then(|last| last.trim().parse().ok())
        {
            return Ok(Self(Some(last)));
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|connect| connect.0.ip());
        Ok(Self(peer))
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
