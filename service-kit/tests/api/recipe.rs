//! The configuration of a service built with [`ResourceService`].

use std::time::Duration;

use service_kit::{ConnectionLimits, NoSettings, ResourceService, ServerArgs};
use tokio::io::AsyncWriteExt as _;
use utoipa_axum::router::OpenApiRouter;

static SERVICE: ResourceService = ResourceService::new("hello-service", "127.0.0.1:8090");

/// Settings of a service with a flag of its own.
#[derive(Debug, Clone, clap::Args)]
struct GreeterSettings {
    /// The greeting.
    #[arg(long, default_value = "hello")]
    greeting: String,
}

static GREETER: ResourceService<GreeterSettings> = ResourceService::new("greeter-service", "127.0.0.1:8091");

#[test]
fn the_address_and_audience_default_to_the_recipes_and_flags_override_them() {
    let defaults = SERVICE.config_from(["hello-service"]).unwrap();
    let overridden = SERVICE
        .config_from(["hello-service", "--listen-addr", "127.0.0.1:9999", "--audience", "other"])
        .unwrap();

    assert_eq!(defaults.listen_addr.to_string(), "127.0.0.1:8090");
    assert_eq!(defaults.audience, "hello-service");
    assert_eq!(overridden.listen_addr.to_string(), "127.0.0.1:9999");
    assert_eq!(overridden.audience, "other");
    let _: NoSettings = defaults.service;
}

#[test]
fn a_services_own_settings_are_flattened_into_its_command_line() {
    let config = GREETER.config_from(["greeter-service", "--greeting", "good day"]).unwrap();

    assert_eq!(config.service.greeting, "good day");
    assert_eq!(config.audience, "greeter-service");
}

#[test]
fn a_bad_flag_is_a_clear_error_not_a_panic() {
    let error = SERVICE.config_from(["hello-service", "--listen-addr", "not-an-address"]).unwrap_err();

    assert!(error.to_string().contains("--listen-addr"), "{error}");
}

#[test]
fn absurd_durations_are_refused_when_the_flags_are_parsed() {
    for flag in [
        "--jwks-refresh-min-secs",
        "--jwks-refresh-max-secs",
        "--jwks-max-age-secs",
        "--unknown-kid-cooldown-secs",
        "--revocation-poll-secs",
        "--token-leeway-secs",
        "--auth-fetch-timeout-ms",
        "--max-connections",
        "--header-read-timeout-secs",
        "--idle-timeout-secs",
    ] {
        let error = SERVICE.config_from(["hello-service", flag, "18446744073709551615"]).unwrap_err();

        assert!(error.to_string().contains(flag), "{flag}: {error}");
    }
}

#[test]
fn connection_limits_and_listeners_are_flags_with_environment_fallbacks() {
    let help = SERVICE.config_from(["hello-service", "--help"]).unwrap_err().to_string();
    let defaults = SERVICE.config_from(["hello-service"]).unwrap();
    let set = SERVICE
        .config_from([
            "hello-service",
            "--max-connections",
            "50",
            "--header-read-timeout-secs",
            "2",
            "--idle-timeout-secs",
            "30",
            "--management-addr",
            "127.0.0.1:9090",
            "--public-url",
            "https://hello.example/",
        ])
        .unwrap();

    for variable in
        ["MAX_CONNECTIONS", "HEADER_READ_TIMEOUT_SECS", "IDLE_TIMEOUT_SECS", "MANAGEMENT_ADDR", "PUBLIC_URL"]
    {
        assert!(help.contains(&format!("[env: {variable}")), "{variable} is not in --help:\n{help}");
    }
    assert_eq!(defaults.server, ServerArgs::default());
    assert_eq!(defaults.server.limits(), ConnectionLimits::default());
    assert_eq!(defaults.public_url(), "http://127.0.0.1:8090");
    let limits = set.server.limits();
    assert_eq!(limits.max_connections, 50);
    assert_eq!(limits.header_read_timeout, Duration::from_secs(2));
    assert_eq!(limits.idle_timeout, Duration::from_secs(30));
    assert_eq!(set.server.management_addr, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(set.public_url(), "https://hello.example");
}

#[test]
fn a_zero_timeout_or_connection_cap_is_refused() {
    for flag in ["--max-connections", "--header-read-timeout-secs", "--idle-timeout-secs"] {
        let error = SERVICE.config_from(["hello-service", flag, "0"]).unwrap_err();

        assert!(error.to_string().contains(flag), "{flag}: {error}");
    }
}

/// A loopback address nothing listens on (yet).
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn a_service_run_from_its_command_line_applies_its_connection_limits_and_management_listener() {
    let data = tempfile::tempdir().unwrap();
    let (listen, management, no_issuer) = (free_address(), free_address(), free_address());
    let config = SERVICE
        .config_from([
            "hello-service",
            "--listen-addr",
            &listen,
            "--management-addr",
            &management,
            "--auth-issuer",
            &format!("http://{no_issuer}"),
            "--data-dir",
            data.path().to_str().unwrap(),
            "--max-connections",
            "10",
            "--header-read-timeout-secs",
            "1",
        ])
        .unwrap();
    tokio::spawn(
        SERVICE.run(config, |resources, _: &NoSettings| Ok(OpenApiRouter::new().with_state(resources))),
    );
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while client.get(format!("http://{listen}/healthz")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the service never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&listen).await.unwrap();
        stream.write_all(b"GET /heal").await.unwrap();
        stalled.push(stream);
    }
    let scrape = client.get(format!("http://{management}/metrics")).send().await.unwrap();
    let healthz = client.get(format!("http://{listen}/healthz")).send().await.unwrap();
    let api_metrics = client.get(format!("http://{listen}/metrics")).send().await.unwrap();

    assert_eq!(scrape.status(), 200);
    assert!(scrape.text().await.unwrap().contains("http_connections_open"));
    assert_eq!(healthz.status(), 200, "healthz after the stalled connections timed out");
    assert_eq!(api_metrics.status(), 404);
}
