//! Prometheus metrics: the process-wide recorder, the per-request counters and `/metrics`.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Brings gauges that are derived from state up to date just before a scrape renders them: for
/// a resource service, `jwks_age_seconds` and `revocation_list_age_seconds`, both set by
/// `Verifier::status`. It must be cheap and do no I/O: a scrape never probes a database.
pub type GaugeRefresh = Arc<dyn Fn() + Send + Sync>;

/// The process-wide Prometheus recorder. `metrics` keeps one global recorder per process, so it
/// is installed once here and every router in the process renders the same registry.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const LATENCY_BUCKETS: &[f64] =
                &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map(|builder| builder.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours still renders then.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// What `/metrics` needs: the registry and the service's gauge refresh.
#[derive(Clone)]
pub(crate) struct MetricsState {
    pub(crate) handle: PrometheusHandle,
    pub(crate) refresh: Option<GaugeRefresh>,
}

impl std::fmt::Debug for MetricsState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("MetricsState").field("refresh", &self.refresh.is_some()).finish()
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String)))]
pub(crate) async fn metrics_endpoint(State(state): State<MetricsState>) -> Response {
    if let Some(refresh) = &state.refresh {
        refresh();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.handle.render()).into_response()
}

/// Records `http_requests_total` and `http_request_duration_seconds` by route and status.
/// The route is the matched pattern (never the raw path), so cardinality stays bounded.
pub(crate) async fn track_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use shared_auth::revocation::{RevocationSettings, Revocations};
    use shared_auth::{KeyCache, KeyCacheSettings};

    use super::*;

    #[tokio::test]
    async fn a_failed_revocation_poll_is_counted_by_outcome_and_the_list_age_is_a_gauge() {
        let handle = metrics_handle();
        let keys = KeyCache::new(KeyCacheSettings::new("http://127.0.0.1:9")).unwrap();
        let revocations = Revocations::new(RevocationSettings::default(), keys);

        let polled = revocations.poll().await;
        let rendered = handle.render();

        assert!(polled.is_err());
        assert!(rendered.contains(r#"revocation_poll_total{outcome="unreachable"}"#), "{rendered}");
        assert!(rendered.contains("revocation_list_age_seconds"), "{rendered}");
    }
}
