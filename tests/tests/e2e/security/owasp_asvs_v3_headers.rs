//! OWASP ASVS 5.0 chapter V3, web frontend security: the browser security mechanism headers of
//! V3.4 on the responses of every binary. Every response says `X-Content-Type-Options: nosniff`
//! (3.4.4), sets a `Referrer-Policy` (3.4.5) and a `Content-Security-Policy` with
//! `frame-ancestors 'none'` (3.4.6, "for every HTTP response"); Swagger UI's page at `/docs`
//! too, under its own policy. `Strict-Transport-Security` (3.4.1, a max-age of at least a year)
//! comes exactly when the binary's public URL is https: RFC 6797 §7.2 forbids it over plain
//! HTTP.

use serde_json::json;
use testkit::TestDatabase;

use super::harness::{AuthApp, trusted_issuer};

/// A year, the least max-age ASVS 3.4.1 accepts.
const YEAR_SECS: u64 = 365 * 24 * 3600;

/// One request: method, path and an optional JSON body.
type Probe = (reqwest::Method, &'static str, Option<serde_json::Value>);

/// What every binary answers, whatever its routes: probes, metrics, documents, Swagger UI (the
/// redirect, the page, an asset), an unknown path and a wrong method.
fn common_probes() -> Vec<Probe> {
    use reqwest::Method;
    vec![
        (Method::GET, "/healthz", None),
        (Method::GET, "/readyz", None),
        (Method::GET, "/metrics", None),
        (Method::GET, "/openapi.json", None),
        (Method::GET, "/docs", None),
        (Method::GET, "/docs/", None),
        (Method::GET, "/docs/swagger-ui.css", None),
        (Method::GET, "/no-such-path", None),
        (Method::DELETE, "/healthz", None),
    ]
}

/// The auth server's own routes, answered with success and with errors.
fn auth_probes() -> Vec<Probe> {
    use reqwest::Method;
    let mut probes = common_probes();
    probes.extend([
        (Method::GET, "/.well-known/openid-configuration", None),
        (Method::GET, "/.well-known/oauth-authorization-server", None),
        (Method::GET, "/.well-known/jwks.json", None),
        (Method::GET, "/v1/revocations", None),
        (Method::POST, "/v1/auth/login", Some(json!({"username": "nobody", "password": "wrong-password"}))),
        (Method::POST, "/v1/users", Some(json!({"username": "x"}))),
        (Method::POST, "/oauth2/token", Some(json!({}))),
        (Method::POST, "/oauth2/introspect", Some(json!({}))),
        (Method::POST, "/v1/auth/logout", None),
    ]);
    probes
}

/// A resource service's routes, with a token that fails verification (401).
fn resource_probes(paths: [&'static str; 2]) -> Vec<Probe> {
    use reqwest::Method;
    let mut probes = common_probes();
    for path in paths {
        probes.push((Method::GET, path, None));
    }
    probes
}

/// Sends every probe to `base_url` (redirects not followed: a redirect is a response too) and
/// returns the failures; `https` says whether Strict-Transport-Security is required or
/// forbidden. Counts the responses checked by status in `checked`.
async fn header_failures(
    binary: &str,
    base_url: &str,
    probes: &[Probe],
    https: bool,
    checked: &mut std::collections::BTreeMap<u16, usize>,
) -> Vec<String> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut failures = Vec::new();
    for (method, path, body) in probes {
        let mut request = http.request(method.clone(), format!("{base_url}{path}"));
        // Protected routes get a token that fails verification: the 401 path.
        if ["/v1/users/", "/v1/orders", "/v1/auth/logout"].iter().any(|prefix| path.starts_with(prefix)) {
            request = request.bearer_auth("not-a-token");
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let header =
            |name: &str| response.headers().get(name).map(|value| value.to_str().unwrap_or("").to_owned());
        let mut wrong = Vec::new();
        if header("x-content-type-options").as_deref() != Some("nosniff") {
            wrong.push(format!("X-Content-Type-Options {:?}", header("x-content-type-options")));
        }
        if !header("referrer-policy")
            .is_some_and(|policy| policy == "no-referrer" || policy == "strict-origin")
        {
            wrong.push(format!("Referrer-Policy {:?}", header("referrer-policy")));
        }
        let policy = header("content-security-policy").unwrap_or_default();
        if !policy.split(';').any(|directive| directive.trim() == "frame-ancestors 'none'") {
            wrong.push(format!("Content-Security-Policy {policy:?} lacks frame-ancestors 'none'"));
        }
        let is_page = header("content-type").is_some_and(|media_type| media_type.starts_with("text/html"));
        if is_page && !policy.contains("script-src 'self'") {
            wrong.push(format!("the HTML page's policy {policy:?} is not Swagger UI's"));
        }
        let max_age = header("strict-transport-security").map(|value| {
            value
                .split(';')
                .find_map(|part| part.trim().strip_prefix("max-age="))
                .and_then(|seconds| seconds.parse::<u64>().ok())
                .unwrap_or(0)
        });
        match (https, max_age) {
            (true, Some(seconds)) if seconds >= YEAR_SECS => {}
            (false, None) => {}
            (_, other) => {
                wrong.push(format!("Strict-Transport-Security max-age {other:?} (public URL https: {https})"))
            }
        }
        if status >= 500 {
            wrong.push("a server error".into());
        }
        if !wrong.is_empty() {
            failures.push(format!("  - {binary} {method} {path} -> {status}: {}", wrong.join("; ")));
        }
        *checked.entry(status).or_insert(0) += 1;
    }
    failures
}

/// ASVS 3.4.4, 3.4.5, 3.4.6 and RFC 6797 §7.2 on the real binaries, started by the end-to-end
/// harness as an operator runs them (plain HTTP on loopback): every response of each has the
/// headers and none has Strict-Transport-Security. `/docs` serves Swagger UI under its own
/// policy, which also forbids framing.
#[tokio::test]
async fn every_response_of_every_real_binary_carries_the_browser_security_headers() {
    let stack = e2e::Stack::start(e2e::StackOptions::default()).await;
    let mut checked = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    failures
        .extend(header_failures("auth-server", &stack.auth_url(), &auth_probes(), false, &mut checked).await);
    let users = resource_probes(["/v1/users/me", "/v1/users/someone"]);
    failures.extend(header_failures("users-service", &stack.users_url(), &users, false, &mut checked).await);
    let orders = resource_probes(["/v1/orders", "/v1/orders/some-order"]);
    failures
        .extend(header_failures("orders-service", &stack.orders_url(), &orders, false, &mut checked).await);
    let docs = reqwest::get(format!("{}/docs/", stack.users_url())).await.unwrap();
    assert!(
        docs.headers()["content-type"].to_str().unwrap().starts_with("text/html"),
        "/docs/ is the Swagger UI page, so its policy was checked"
    );
    let count: usize = checked.values().sum();
    assert!(
        failures.is_empty(),
        "[ASVS 3.4] {} of {count} responses failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "[ASVS 3.4.4-3.4.6, RFC 6797 §7.2: headers of the real binaries] {count} responses: all as required, \
         statuses {checked:?}"
    );
}

/// ASVS 3.4.1: with an https public URL (the auth server's `ISSUER`, a resource service's
/// `PUBLIC_URL`: what a TLS-terminating proxy in front of it serves) every response carries
/// `Strict-Transport-Security` with a max-age of at least a year, beside the other headers.
#[tokio::test]
async fn an_https_public_url_adds_strict_transport_security_to_every_response() {
    let auth = AuthApp::start_with(|config| {
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
        config.issuer = "https://127.0.0.1:8443".into();
    })
    .await;
    let issuer = trusted_issuer().await;
    let users_database = TestDatabase::sqlite();
    let users = testkit::start_resource_service(
        &users_service::SERVICE,
        users_service::api,
        &issuer.url,
        &users_database,
        |config| {
            config.public_url = Some("https://127.0.0.1:9443".into());
        },
    )
    .await;
    let orders_database = TestDatabase::sqlite();
    let orders = testkit::start_resource_service(
        &orders_service::SERVICE,
        orders_service::api,
        &issuer.url,
        &orders_database,
        |config| {
            config.public_url = Some("https://127.0.0.1:9444".into());
            config.service.users_service_url = "http://127.0.0.1:9".into();
            config.service.client_secret = None;
        },
    )
    .await;
    let mut checked = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    failures.extend(header_failures("auth-server", &auth.url, &auth_probes(), true, &mut checked).await);
    let probes = resource_probes(["/v1/users/me", "/v1/users/someone"]);
    failures.extend(header_failures("users-service", &users.url, &probes, true, &mut checked).await);
    let probes = resource_probes(["/v1/orders", "/v1/orders/some-order"]);
    failures.extend(header_failures("orders-service", &orders.url, &probes, true, &mut checked).await);
    let count: usize = checked.values().sum();
    assert!(
        failures.is_empty(),
        "[ASVS 3.4.1] {} of {count} responses failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "[ASVS 3.4.1: Strict-Transport-Security for an https public URL] {count} responses: all as required, \
         statuses {checked:?}"
    );
}
