//! `/healthz` and `/readyz`: liveness, and readiness as the worst of the service's checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use serde::Serialize;
use shared_auth::revocation::RevocationStatus;
use shared_auth::{KeyStatus, Verifier};

/// Overall readiness as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadyStatus {
    /// Everything is fine.
    Ready,
    /// Serving, but on stale data (e.g. keys not refreshed because the auth server is down).
    Degraded,
    /// Cannot serve: a dependency is missing.
    Unavailable,
}

impl From<KeyStatus> for ReadyStatus {
    fn from(status: KeyStatus) -> Self {
        match status {
            KeyStatus::Ready => Self::Ready,
            KeyStatus::Degraded => Self::Degraded,
            KeyStatus::Unavailable => Self::Unavailable,
        }
    }
}

impl From<RevocationStatus> for ReadyStatus {
    fn from(status: RevocationStatus) -> Self {
        match status {
            RevocationStatus::Ready => Self::Ready,
            RevocationStatus::Degraded => Self::Degraded,
            RevocationStatus::Unavailable => Self::Unavailable,
        }
    }
}

/// The `/readyz` body: the overall status and one line per check.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// The worst status of all checks.
    pub status: ReadyStatus,
    /// Each check's own status, by name.
    pub checks: BTreeMap<String, ReadyStatus>,
}

impl Readiness {
    /// Builds a report from named checks; the overall status is the worst one.
    pub fn from_checks(checks: impl IntoIterator<Item = (&'static str, ReadyStatus)>) -> Self {
        let checks: BTreeMap<String, ReadyStatus> =
            checks.into_iter().map(|(name, status)| (name.to_owned(), status)).collect();
        let status = if checks.values().any(|status| *status == ReadyStatus::Unavailable) {
            ReadyStatus::Unavailable
        } else if checks.values().any(|status| *status == ReadyStatus::Degraded) {
            ReadyStatus::Degraded
        } else {
            ReadyStatus::Ready
        };
        Self { status, checks }
    }
}

/// A readiness probe supplied by the service.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Readiness> + Send + Sync>;

/// Checks a database pool with a trivial query.
pub async fn database_status(pool: &sqlx::AnyPool) -> ReadyStatus {
    match sqlx::query("SELECT 1").execute(pool).await {
        Ok(_) => ReadyStatus::Ready,
        Err(error) => {
            tracing::warn!(%error, "database not reachable");
            ReadyStatus::Unavailable
        }
    }
}

/// The readiness of a service whose only dependency is its database.
pub fn database_readiness(pool: sqlx::AnyPool) -> ReadinessCheck {
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move { Readiness::from_checks([("database", database_status(&pool).await)]) })
    })
}

/// The readiness of a resource service: its database, its token-verification keys
/// (`degraded` while serving on stale keys, `unavailable` with none) and its revocation list
/// (`degraded` while it is stale or missing, so revoked tokens may pass; `unavailable` past
/// `REVOCATION_FAIL_CLOSED_SECS`, when protected routes answer 503).
pub fn resource_readiness(pool: sqlx::AnyPool, verifier: Verifier) -> ReadinessCheck {
    Arc::new(move || {
        let pool = pool.clone();
        let verifier = verifier.clone();
        Box::pin(async move {
            Readiness::from_checks([
                ("database", database_status(&pool).await),
                ("keys", verifier.status().into()),
                ("revocations", verifier.revocation_status().into()),
            ])
        })
    })
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: dependencies reachable; `degraded` still serves.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready or degraded", body = Readiness),
        (status = 503, description = "Unavailable", body = Readiness)))]
pub(crate) async fn readyz(State(readiness): State<ReadinessCheck>) -> Response {
    let readiness = readiness().await;
    let status = if readiness.status == ReadyStatus::Unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(readiness)).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use shared_auth::jws::{self, Algorithm, JwkSet, SigningKey};
    use shared_auth::revocation::{REVOCATION_LIST_TYPE, RevocationSettings, Revocations};
    use shared_auth::time::ManualClock;
    use shared_auth::{KeyCache, KeyCacheSettings, VerifierSettings};

    use super::*;

    const ISSUER: &str = "http://127.0.0.1:9";

    /// A verifier holding keys and a list signed now, on a clock the test moves.
    async fn verifier_with_fresh_list() -> (Verifier, ManualClock) {
        let manual = ManualClock::starting_now();
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let keys = KeyCache::with_clock(KeyCacheSettings::new(ISSUER), manual.clock()).unwrap();
        keys.replace_keys(JwkSet { keys: vec![key.verifying_key().to_jwk("k1")] }).unwrap();
        let settings = RevocationSettings {
            max_age: Duration::from_secs(120),
            fail_closed_after: Some(Duration::from_secs(3600)),
            ..RevocationSettings::default()
        };
        let revocations = Revocations::new(settings, keys.clone());
        let list =
            serde_json::json!({ "iss": ISSUER, "iat": manual.now(), "exp": manual.now() + 300, "seq": 1 });
        let signed = jws::sign_compact(&key, "k1", REVOCATION_LIST_TYPE, &list).unwrap();
        revocations.apply_signed(&signed).await.unwrap();
        (Verifier::new(VerifierSettings::new(ISSUER, "users-service"), keys, revocations), manual)
    }

    async fn memory_pool() -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect("sqlite::memory:").await.unwrap()
    }

    #[tokio::test]
    async fn a_stale_revocation_list_turns_readyz_degraded_and_past_the_hard_bound_unavailable() {
        let (verifier, manual) = verifier_with_fresh_list().await;
        let check = resource_readiness(memory_pool().await, verifier);

        let fresh = check().await;
        manual.advance(Duration::from_secs(121));
        let stale = check().await;
        manual.advance(Duration::from_secs(3600));
        let too_old = check().await;

        assert_eq!(fresh.status, ReadyStatus::Ready);
        assert_eq!(fresh.checks["revocations"], ReadyStatus::Ready);
        assert_eq!((stale.status, stale.checks["keys"]), (ReadyStatus::Degraded, ReadyStatus::Ready));
        assert_eq!(stale.checks["revocations"], ReadyStatus::Degraded);
        assert_eq!(too_old.status, ReadyStatus::Unavailable);
        assert_eq!(too_old.checks["revocations"], ReadyStatus::Unavailable);
        assert_eq!(too_old.checks["keys"], ReadyStatus::Degraded, "the keys are within their maximum age");
    }
}
