//! The management listener (`MANAGEMENT_ADDR`): `/metrics` there and not on the API port, and
//! probes that answer while the API port is saturated.

use std::time::Duration;

use service_kit::{App, ConnectionLimits};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use utoipa_axum::router::OpenApiRouter;

use crate::connections::start;
use crate::operations::counting_readiness;

fn separated() -> service_kit::BuiltApp {
    let (readiness, _) = counting_readiness(service_kit::ReadyStatus::Ready);
    App::new("test-service", OpenApiRouter::new(), readiness).management_listener(true).build_all()
}

#[tokio::test]
async fn with_a_management_listener_metrics_leave_the_api_port_and_its_document() {
    let built = separated();
    let management = built.management.expect("asked for a management router");
    let api = crate::serve(built.router).await;
    let operator = crate::serve(management).await;

    let api_metrics = reqwest::get(format!("{api}/metrics")).await.unwrap();
    let document: serde_json::Value =
        reqwest::get(format!("{api}/openapi.json")).await.unwrap().json().await.unwrap();
    let scrape = reqwest::get(format!("{operator}/metrics")).await.unwrap();

    assert_eq!(api_metrics.status(), 404);
    assert!(document["paths"].get("/metrics").is_none(), "the API document still lists /metrics");
    assert!(document["paths"].get("/healthz").is_some());
    assert!(!built.openapi.paths.paths.contains_key("/metrics"));
    assert_eq!(scrape.status(), 200);
    assert!(scrape.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    for (base, path) in
        [(&api, "/healthz"), (&api, "/readyz"), (&operator, "/healthz"), (&operator, "/readyz")]
    {
        let probe = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(probe.status(), 200, "{base}{path}");
        assert_eq!(probe.headers()["x-content-type-options"], "nosniff", "{base}{path}");
    }
    let elsewhere = reqwest::get(format!("{operator}/openapi.json")).await.unwrap();
    assert_eq!(elsewhere.status(), 404, "the management listener serves only the operational routes");
}

#[tokio::test]
async fn without_a_management_listener_metrics_stay_on_the_api_port() {
    let (readiness, _) = counting_readiness(service_kit::ReadyStatus::Ready);
    let built = App::new("test-service", OpenApiRouter::new(), readiness).build_all();

    let url = crate::serve(built.router).await;
    let scrape = reqwest::get(format!("{url}/metrics")).await.unwrap();

    assert!(built.management.is_none());
    assert_eq!(scrape.status(), 200);
}

#[tokio::test]
async fn the_management_listener_answers_while_the_api_port_is_saturated() {
    let built = separated();
    let saturated = ConnectionLimits { max_connections: 5, ..ConnectionLimits::default() };
    let api = start(built.router, saturated).await;
    let operator = start(built.management.unwrap(), ConnectionLimits::default()).await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(api).await.unwrap();
        stream.write_all(b"GET /heal").await.unwrap();
        stalled.push(stream);
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();

    let api_probe =
        tokio::time::timeout(Duration::from_millis(500), client.get(format!("http://{api}/healthz")).send())
            .await;
    let operator_probe = client.get(format!("http://{operator}/healthz")).send().await.unwrap();

    assert!(api_probe.is_err(), "the API port was not saturated, so this shows nothing");
    assert_eq!(operator_probe.status(), 200);
}
