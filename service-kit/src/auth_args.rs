//! Command-line and environment settings every resource service shares for token verification.

use std::path::Path;
use std::time::Duration;

use shared_auth::fetch::HttpClientError;

use crate::Seconds;
use shared_auth::keys::{KeyCache, KeyCacheSettings};
use shared_auth::revocation::{RevocationSettings, Revocations};
use shared_auth::verifier::{Verifier, VerifierSettings};

/// How a service finds and trusts the auth server. Flatten into a service's clap config.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Base URL of the auth server; tokens must carry exactly this `iss`.
    #[arg(long, env = "AUTH_ISSUER", default_value = "http://127.0.0.1:8080")]
    pub auth_issuer: String,
    /// Refresh the key set at most this often (seconds), whatever Cache-Control says.
    #[arg(long, env = "JWKS_REFRESH_MIN_SECS", default_value = "30")]
    pub jwks_refresh_min_secs: Seconds,
    /// Refresh the key set at least this often (seconds).
    #[arg(long, env = "JWKS_REFRESH_MAX_SECS", default_value = "300")]
    pub jwks_refresh_max_secs: Seconds,
    /// Serve on cached keys for at most this long without a successful refresh (seconds);
    /// after that, protected routes fail closed with 503.
    #[arg(long, env = "JWKS_MAX_AGE_SECS", default_value = "86400")]
    pub jwks_max_age_secs: Seconds,
    /// After refetching keys for an unknown `kid`, wait this long before another such refetch.
    #[arg(long, env = "UNKNOWN_KID_COOLDOWN_SECS", default_value = "30")]
    pub unknown_kid_cooldown_secs: Seconds,
    /// Total time allowed for one call to the auth server (milliseconds).
    #[arg(long, env = "AUTH_FETCH_TIMEOUT_MS", default_value_t = 2_000,
        value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub auth_fetch_timeout_ms: u64,
    /// How often to poll the revocation list (seconds).
    #[arg(long, env = "REVOCATION_POLL_SECS", default_value = "15")]
    pub revocation_poll_secs: Seconds,
    /// Clock skew tolerated on `exp`/`nbf`/`iat` (seconds).
    #[arg(long, env = "TOKEN_LEEWAY_SECS", default_value = "30")]
    pub token_leeway_secs: Seconds,
}

impl AuthArgs {
    /// Builds the verifier for `audience`, keeping key and revocation copies under
    /// `data_dir/auth-cache/`. Loads the disk copies; starts nothing.
    pub fn verifier(&self, audience: &str, data_dir: &Path) -> Result<Verifier, HttpClientError> {
        let cache_dir = data_dir.join("auth-cache");
        let keys = KeyCache::new(KeyCacheSettings {
            issuer: self.auth_issuer.clone(),
            refresh_min: self.jwks_refresh_min_secs.duration(),
            refresh_max: self.jwks_refresh_max_secs.max(self.jwks_refresh_min_secs).duration(),
            max_age: self.jwks_max_age_secs.duration(),
            unknown_kid_cooldown: self.unknown_kid_cooldown_secs.duration(),
            fetch_timeout: Duration::from_millis(self.auth_fetch_timeout_ms),
            cache_file: Some(cache_dir.join("jwks.json")),
            ..KeyCacheSettings::new(&self.auth_issuer)
        })?;
        let revocations = Revocations::new(
            RevocationSettings {
                poll_interval: self.revocation_poll_secs.max(Seconds::new(1)).duration(),
                cache_file: Some(cache_dir.join("revocations.jwt")),
                ..RevocationSettings::default()
            },
            keys.clone(),
        );
        let mut settings = VerifierSettings::new(&self.auth_issuer, audience);
        settings.leeway = self.token_leeway_secs.duration();
        Ok(Verifier::new(settings, keys, revocations))
    }
}
