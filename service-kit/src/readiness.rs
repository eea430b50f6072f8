//! `/healthz` and `/readyz`: liveness, and readiness as the worst of the service's checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use serde::Serialize;
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

/// The readiness of a resource service: its database and its token-verification keys
/// (`degraded` while serving on stale keys, `unavailable` with none).
pub fn resource_readiness(pool: sqlx::AnyPool, verifier: Verifier) -> ReadinessCheck {
    Arc::new(move || {
        let pool = pool.clone();
        let verifier = verifier.clone();
        Box::pin(async move {
            let keys = ReadyStatus::from(verifier.status());
            Readiness::from_checks([("database", database_status(&pool).await), ("keys", keys)])
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
