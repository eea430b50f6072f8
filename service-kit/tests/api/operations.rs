//! `/healthz`, `/readyz`, `/metrics`, the documents and the fallbacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use service_kit::{App, Readiness, ReadinessCheck, ReadyStatus};
use utoipa_axum::router::OpenApiRouter;

/// A readiness check that counts how often it runs, answering `status`.
pub(crate) fn counting_readiness(status: ReadyStatus) -> (ReadinessCheck, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let check: ReadinessCheck = Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready(Readiness::from_checks([("database", status)])))
    });
    (check, runs)
}

#[tokio::test]
async fn a_metrics_scrape_runs_no_readiness_probe_but_refreshes_the_gauges() {
    let (readiness, probes) = counting_readiness(ReadyStatus::Ready);
    let refreshes = Arc::new(AtomicUsize::new(0));
    let counter = refreshes.clone();
    let (router, _) = App::new("test-service", OpenApiRouter::new(), readiness)
        .refresh_gauges(Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }))
        .build();
    let url = crate::serve(router).await;

    for _ in 0..3 {
        let scrape = reqwest::get(format!("{url}/metrics")).await.unwrap();
        assert_eq!(scrape.status(), 200);
        assert!(scrape.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    }

    assert_eq!(probes.load(Ordering::SeqCst), 0, "a scrape must not probe the database");
    assert_eq!(refreshes.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn readyz_answers_503_only_when_a_check_is_unavailable() {
    for (status, expected_code, expected_body) in [
        (ReadyStatus::Ready, 200, "ready"),
        (ReadyStatus::Degraded, 200, "degraded"),
        (ReadyStatus::Unavailable, 503, "unavailable"),
    ] {
        let (readiness, probes) = counting_readiness(status);
        let (router, _) = App::new("test-service", OpenApiRouter::new(), readiness).build();
        let url = crate::serve(router).await;

        let answer = reqwest::get(format!("{url}/readyz")).await.unwrap();

        assert_eq!(answer.status(), expected_code);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["status"], expected_body);
        assert_eq!(body["checks"]["database"], expected_body);
        assert_eq!(probes.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_get_problem_documents_and_the_document_is_served() {
    let (readiness, _) = counting_readiness(ReadyStatus::Ready);
    let (router, openapi) = App::new("test-service", OpenApiRouter::new(), readiness).build();
    let url = crate::serve(router).await;
    let client = reqwest::Client::new();

    let missing = client.get(format!("{url}/nothing-here")).send().await.unwrap();
    let wrong_method = client.post(format!("{url}/healthz")).send().await.unwrap();
    let document: serde_json::Value =
        client.get(format!("{url}/openapi.json")).send().await.unwrap().json().await.unwrap();

    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(document["info"]["title"], "test-service");
    assert_eq!(openapi.info.title, "test-service");
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(document["paths"].get(path).is_some(), "{path} undocumented");
    }
    assert!(document["components"]["securitySchemes"].get("bearer").is_some());
}
