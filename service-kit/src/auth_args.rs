//! Command-line and environment settings every resource service shares for token verification.

use std::path::Path;
use std::time::Duration;

use shared_auth::dpop::ProofSettings;
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
    /// after that, protected routes fail closed with 503. The age of the disk copy under
    /// DATA_DIR/auth-cache/ counts from the older of the time recorded in it and the file's
    /// modification time, so a copied or edited file cannot extend it.
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
    /// Past this age the revocation list is stale and /readyz says `degraded` (seconds). The
    /// age counts from the time the auth server signed the list (its `iat`, so auth server and
    /// services need synchronised clocks), also for the disk copy; without any list, from the
    /// start of the service. A list past the `exp` the auth server gave it is stale too.
    #[arg(long, env = "REVOCATION_MAX_AGE_SECS", default_value = "120")]
    pub revocation_max_age_secs: Seconds,
    /// Past this age of the revocation list (seconds, counted as for REVOCATION_MAX_AGE_SECS)
    /// protected routes fail closed with 503 and /readyz says `unavailable`: a logged-out
    /// token can no longer be told apart. 0 never fails closed. Keep it above the access-token
    /// lifetime, so an auth-server outage ends no session before its tokens expire anyway.
    #[arg(long, env = "REVOCATION_FAIL_CLOSED_SECS", default_value = "3600")]
    pub revocation_fail_closed_secs: Seconds,
    /// Clock skew tolerated on `exp`/`nbf`/`iat` (seconds).
    #[arg(long, env = "TOKEN_LEEWAY_SECS", default_value = "30")]
    pub token_leeway_secs: Seconds,
    /// Refuse access tokens whose lifetime (`exp - iat`) is longer than this (seconds).
    #[arg(long, env = "TOKEN_MAX_LIFETIME_SECS", default_value = "86400")]
    pub token_max_lifetime_secs: Seconds,
    /// How far a DPoP proof's `iat` may lie from now, either way (seconds).
    #[arg(long, env = "DPOP_IAT_WINDOW_SECS", default_value = "60")]
    pub dpop_iat_window_secs: Seconds,
    /// How many DPoP proofs (`jti`) are remembered against replay, each for twice the `iat`
    /// window. When that many are still fresh, DPoP requests get 503 rather than a replay
    /// becoming possible.
    #[arg(long, env = "DPOP_REPLAY_CAPACITY", default_value_t = 200_000,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub dpop_replay_capacity: u64,
}

impl AuthArgs {
    /// Builds the verifier for `audience`, keeping key and revocation copies under
    /// `data_dir/auth-cache/` (created 0700, files 0600). DPoP proofs must name `public_url`
    /// plus the request path. Loads the disk copies; starts nothing.
    pub fn verifier(
        &self,
        audience: &str,
        data_dir: &Path,
        public_url: &str,
    ) -> Result<Verifier, HttpClientError> {
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
                max_age: self.revocation_max_age_secs.duration(),
                fail_closed_after: (self.revocation_fail_closed_secs > Seconds::new(0))
                    .then(|| self.revocation_fail_closed_secs.duration()),
                ..RevocationSettings::default()
            },
            keys.clone(),
        );
        let mut settings = VerifierSettings::new(&self.auth_issuer, audience).with_public_url(public_url);
        settings.leeway = self.token_leeway_secs.duration();
        settings.max_token_lifetime = self.token_max_lifetime_secs.duration();
        settings.dpop = ProofSettings {
            iat_window: self.dpop_iat_window_secs.duration(),
            replay_capacity: self.dpop_replay_capacity,
            ..ProofSettings::default()
        };
        Ok(Verifier::new(settings, keys, revocations))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        auth: AuthArgs,
    }

    fn verifier_from(args: &[&str]) -> Verifier {
        let dir = tempfile::tempdir().unwrap();
        let command =
            Command::try_parse_from(std::iter::once("service").chain(args.iter().copied())).unwrap();
        command.auth.verifier("users-service", dir.path(), "https://api.example.com/users").unwrap()
    }

    #[tokio::test]
    async fn the_revocation_age_bounds_and_the_token_lifetime_reach_the_verifier() {
        let defaults = verifier_from(&[]);
        let configured = verifier_from(&[
            "--revocation-max-age-secs",
            "60",
            "--revocation-fail-closed-secs",
            "0",
            "--token-max-lifetime-secs",
            "3600",
        ]);

        let revocations = defaults.revocations().settings();
        assert_eq!(revocations.max_age, Duration::from_secs(120));
        assert_eq!(revocations.fail_closed_after, Some(Duration::from_secs(3600)));
        assert_eq!(defaults.settings().max_token_lifetime, Duration::from_secs(86_400));
        assert_eq!(configured.revocations().settings().max_age, Duration::from_secs(60));
        assert_eq!(configured.revocations().settings().fail_closed_after, None, "0 never fails closed");
        assert_eq!(configured.settings().max_token_lifetime, Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn the_public_url_and_the_dpop_limits_reach_the_verifier() {
        let defaults = verifier_from(&[]);
        let configured = verifier_from(&["--dpop-iat-window-secs", "10", "--dpop-replay-capacity", "500"]);

        assert_eq!(defaults.settings().public_url.as_deref(), Some("https://api.example.com/users"));
        assert_eq!(defaults.proofs().settings().iat_window, Duration::from_secs(60));
        assert_eq!(defaults.proofs().settings().replay_capacity, 200_000);
        assert_eq!(configured.proofs().settings().iat_window, Duration::from_secs(10));
        assert_eq!(configured.proofs().settings().replay_capacity, 500);
    }
}
