//! `ServiceTokenClient` against a mock token endpoint: one request serves every caller until
//! shortly before expiry, renewal happens early, and an outage is ridden out on the token in
//! hand until it really expires. Time passes on a [`ManualClock`], never by sleeping.
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use shared_auth::client::ServiceTokenError;
use shared_auth::fetch::FetchError;
use shared_auth::time::ManualClock;
use shared_auth::{ServiceTokenClient, ServiceTokenSettings};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN_PATH: &str = "/oauth2/token";
const CLIENT_ID: &str = "orders-service";
/// Characters that RFC 6749 §2.3.1 says must be form-urlencoded before Basic encoding.
const CLIENT_SECRET: &str = "p@ss word:/&=";

async fn mount_discovery(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": server.uri(),
            "jwks_uri": format!("{}/jwks.json", server.uri()),
            "token_endpoint": format!("{}{TOKEN_PATH}", server.uri()),
        })))
        .expect(1)
        .named("discovery")
        .mount(server)
        .await;
}

fn token_response(access_token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "users:read",
    }))
}

/// Serves `access_token` for the next `times` token requests.
async fn mount_token(server: &MockServer, access_token: &str, expires_in: u64, times: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_response(access_token, expires_in))
        .up_to_n_times(times)
        .mount(server)
        .await;
}

fn settings_for(server: &MockServer) -> ServiceTokenSettings {
    ServiceTokenSettings {
        issuer: server.uri(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
        scope: Some("users:read".to_owned()),
        timeout: Duration::from_secs(2),
    }
}

fn client_for(server: &MockServer) -> ServiceTokenClient {
    ServiceTokenClient::new(settings_for(server)).unwrap()
}

/// A client whose renewal and expiry decisions follow the returned clock.
fn client_on_manual_clock(settings: ServiceTokenSettings) -> (ServiceTokenClient, ManualClock) {
    let manual = ManualClock::starting_now();
    (ServiceTokenClient::with_clock(settings, manual.clock()).unwrap(), manual)
}

async fn token_requests(server: &MockServer) -> Vec<wiremock::Request> {
    let requests = server.received_requests().await.unwrap();
    requests.into_iter().filter(|request| request.url.path() == TOKEN_PATH).collect()
}

async fn wait_until_down(uri: &str) {
    let address = uri.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    while std::net::TcpStream::connect(&address).is_ok() {
        assert!(started.elapsed() < Duration::from_secs(5), "{uri} still accepts connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_token_is_requested_once_and_then_served_from_the_cache() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_token(&server, "token-1", 900, 1).await;
    let client = client_for(&server);

    let first = client.token().await.unwrap();
    let second = client.token().await.unwrap();

    assert_eq!(first.expose_secret(), "token-1");
    assert_eq!(second.expose_secret(), "token-1");
    assert_eq!(token_requests(&server).await.len(), 1);
    server.verify().await;
}

#[tokio::test]
async fn credentials_go_in_http_basic_form_urlencoded_with_the_client_credentials_grant() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_token(&server, "token-1", 900, 1).await;
    let client = client_for(&server);

    client.token().await.unwrap();

    let requests = token_requests(&server).await;
    let request = &requests[0];
    let expected_credentials = STANDARD.encode(format!("{CLIENT_ID}:p%40ss+word%3A%2F%26%3D"));
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.headers["authorization"], format!("Basic {expected_credentials}").as_str());
    assert_eq!(request.headers["content-type"], "application/x-www-form-urlencoded");
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&request.body).unwrap();
    assert!(form.contains(&("grant_type".into(), "client_credentials".into())), "{form:?}");
    assert!(form.contains(&("scope".into(), "users:read".into())), "{form:?}");
    assert!(
        form.iter().all(|(name, _)| name != "client_secret" && name != "client_id"),
        "credentials must not also travel in the body: {form:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_on_an_empty_cache_share_one_token_request() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        // Slow enough that every caller arrives while the first request is in flight.
        .respond_with(token_response("shared-token", 900).set_delay(Duration::from_millis(300)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server);

    let callers: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap().expose_secret().to_owned());
    }

    assert_eq!(tokens.len(), 20);
    assert!(tokens.iter().all(|token| token == "shared-token"));
    server.verify().await;
}

#[tokio::test]
async fn the_token_is_renewed_shortly_before_it_expires() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    // 900 s lifetime, renewal margin 10% capped at 60 s: renew from 840 s on.
    mount_token(&server, "token-1", 900, 1).await;
    mount_token(&server, "token-2", 900, 1).await;
    let (client, manual) = client_on_manual_clock(settings_for(&server));
    let first = client.token().await.unwrap();

    manual.advance(Duration::from_secs(839));
    let before_renewal = client.token().await.unwrap();
    manual.advance(Duration::from_secs(1));
    let renewed = client.token().await.unwrap();

    assert_eq!(first.expose_secret(), "token-1");
    assert_eq!(before_renewal.expose_secret(), "token-1");
    assert_eq!(renewed.expose_secret(), "token-2");
    assert_eq!(token_requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_short_lived_token_is_renewed_once_five_seconds_are_left() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    // 10% of 20 s is 2 s, below the 5 s floor of the margin: renew from 15 s on.
    mount_token(&server, "token-1", 20, 1).await;
    mount_token(&server, "token-2", 20, 1).await;
    let (client, manual) = client_on_manual_clock(settings_for(&server));
    client.token().await.unwrap();

    manual.advance(Duration::from_secs(14));
    let before_renewal = client.token().await.unwrap();
    manual.advance(Duration::from_secs(1));
    let renewed = client.token().await.unwrap();

    assert_eq!(before_renewal.expose_secret(), "token-1");
    assert_eq!(renewed.expose_secret(), "token-2");
    assert_eq!(token_requests(&server).await.len(), 2);
}

#[tokio::test]
async fn when_renewal_fails_the_still_valid_token_is_used() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_token(&server, "token-1", 900, 1).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let (client, manual) = client_on_manual_clock(settings_for(&server));
    client.token().await.unwrap();

    // Past the renewal time (840 s), before the expiry (900 s).
    manual.advance(Duration::from_secs(850));
    let during_outage = client.token().await;

    assert_eq!(during_outage.unwrap().expose_secret(), "token-1");
    assert_eq!(token_requests(&server).await.len(), 2, "renewal must have been attempted");
}

#[tokio::test]
async fn after_a_failed_renewal_the_next_attempt_waits_two_seconds() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_token(&server, "token-1", 900, 1).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let (client, manual) = client_on_manual_clock(settings_for(&server));
    client.token().await.unwrap();
    manual.advance(Duration::from_secs(850));
    client.token().await.unwrap();

    manual.advance(Duration::from_secs(1));
    let within_retry_delay = client.token().await.unwrap();
    let requests_within_delay = token_requests(&server).await.len();
    manual.advance(Duration::from_secs(1));
    let after_retry_delay = client.token().await.unwrap();

    assert_eq!(within_retry_delay.expose_secret(), "token-1");
    assert_eq!(after_retry_delay.expose_secret(), "token-1");
    assert_eq!(requests_within_delay, 2, "no new attempt within the retry delay");
    assert_eq!(token_requests(&server).await.len(), 3, "a new attempt after it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_token_endpoint_holds_callers_up_for_at_most_one_timeout() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_token(&server, "token-1", 6, 1).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_response("token-2", 6).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let timeout = Duration::from_millis(300);
    let (client, manual) = client_on_manual_clock(ServiceTokenSettings { timeout, ..settings_for(&server) });
    client.token().await.unwrap();
    // 6 s lifetime, renewal margin at least 5 s: renew from 1 s on.
    manual.advance(Duration::from_secs(1));

    let started = Instant::now();
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap().expose_secret().to_owned());
    }
    let elapsed = started.elapsed();

    assert!(tokens.iter().all(|token| token == "token-1"));
    // Ten renewals queued one behind the other would take ten timeouts; one is the bound.
    assert!(elapsed < timeout * 3, "callers held up for {elapsed:?}");
    assert_eq!(token_requests(&server).await.len(), 2, "one renewal attempt, not one per caller");
}

#[tokio::test]
async fn once_the_token_has_expired_an_outage_is_an_error() {
    // A server of its own (not from wiremock's pool), so dropping it really stops it.
    let server = MockServer::builder().start().await;
    let uri = server.uri();
    mount_discovery(&server).await;
    // 900 s lifetime: renewal from 840 s on, expiry at 900 s.
    mount_token(&server, "token-1", 900, 1).await;
    let (client, manual) = client_on_manual_clock(settings_for(&server));
    client.token().await.unwrap();
    drop(server);
    wait_until_down(&uri).await;

    manual.advance(Duration::from_secs(899));
    let while_valid = client.token().await;
    manual.advance(Duration::from_secs(1));
    let after_expiry = client.token().await;

    assert_eq!(while_valid.unwrap().expose_secret(), "token-1");
    assert!(
        matches!(after_expiry, Err(ServiceTokenError::Fetch(FetchError::Unreachable(_)))),
        "{:?}",
        after_expiry.map(|_| "a token")
    );
}

#[tokio::test]
async fn refused_credentials_are_an_error_when_no_token_is_cached() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "error": "invalid_client" })))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server);

    let result = client.token().await;

    match result {
        Err(ServiceTokenError::Refused(detail)) => assert!(detail.contains("invalid_client"), "{detail}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| "a token")),
    }
    server.verify().await;
}

#[tokio::test]
async fn authorize_sends_the_service_token_as_a_bearer_header() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_token(&server, "token-1", 900, 1).await;
    Mock::given(method("GET"))
        .and(path("/v1/users/u1"))
        .and(header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server);
    let http = reqwest::Client::new();

    let request = client.authorize(http.get(format!("{}/v1/users/u1", server.uri()))).await.unwrap();
    let response = request.send().await.unwrap();

    assert_eq!(response.status(), 200);
    server.verify().await;
}

#[tokio::test]
async fn a_token_response_larger_than_the_cap_is_refused_without_reading_it_all() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    let huge = "A".repeat(shared_auth::client::MAX_TOKEN_RESPONSE_BYTES + 1);
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_response(&huge, 900))
        .mount(&server)
        .await;

    let result = client_for(&server).token().await;

    assert!(
        matches!(result, Err(ServiceTokenError::Fetch(FetchError::TooLarge(max)))
            if max == shared_auth::client::MAX_TOKEN_RESPONSE_BYTES),
        "{:?}",
        result.map(|_| ())
    );
}

#[tokio::test]
async fn a_token_endpoint_on_another_origin_never_gets_the_credentials() {
    let issuer = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": issuer.uri(),
            "jwks_uri": format!("{}/jwks.json", issuer.uri()),
            "token_endpoint": format!("{}{TOKEN_PATH}", elsewhere.uri()),
        })))
        .mount(&issuer)
        .await;
    mount_token(&elsewhere, "stolen", 900, 1).await;

    let result = client_for(&issuer).token().await;

    assert!(
        matches!(result, Err(ServiceTokenError::Fetch(FetchError::Invalid(_)))),
        "{:?}",
        result.map(|_| ())
    );
    assert!(token_requests(&elsewhere).await.is_empty(), "the secret went to another origin");
}

// Token exchange (RFC 8693): `exchange(user_token, audience)`.

const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Serves `access_token` to the next `times` exchanges of `user_token`.
async fn mount_exchange(
    server: &MockServer,
    user_token: &str,
    access_token: &str,
    expires_in: u64,
    times: u64,
) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(wiremock::matchers::body_string_contains(format!("subject_token={user_token}&")))
        .respond_with(token_response(access_token, expires_in))
        .up_to_n_times(times)
        .mount(server)
        .await;
}

fn form_of(request: &wiremock::Request) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(&request.body).unwrap()
}

#[tokio::test]
async fn an_exchange_sends_the_user_token_as_subject_with_the_clients_credentials() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_exchange(&server, "user-token-1", "exchanged-1", 900, 1).await;
    let client = client_for(&server);

    let token = client.exchange("user-token-1", "users-service").await.unwrap();

    assert_eq!(token.expose_secret(), "exchanged-1");
    let requests = token_requests(&server).await;
    let form = form_of(&requests[0]);
    let expected_credentials = STANDARD.encode(format!("{CLIENT_ID}:p%40ss+word%3A%2F%26%3D"));
    assert_eq!(requests[0].headers["authorization"], format!("Basic {expected_credentials}").as_str());
    for (name, value) in [
        ("grant_type", EXCHANGE_GRANT),
        ("subject_token", "user-token-1"),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("audience", "users-service"),
    ] {
        assert!(form.contains(&(name.into(), value.into())), "{name}: {form:?}");
    }
    assert!(
        form.iter().all(|(name, _)| name != "scope" && name != "client_secret"),
        "the scope is the server's to cut down; the secret goes only in Basic: {form:?}"
    );
}

#[tokio::test]
async fn exchanged_tokens_are_cached_per_user_token_and_audience_apart_from_the_service_token() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_exchange(&server, "alice", "for-alice", 900, 1).await;
    mount_exchange(&server, "bob", "for-bob", 900, 1).await;
    mount_exchange(&server, "alice", "for-alice-at-billing", 900, 1).await;
    mount_token(&server, "own-token", 900, 1).await;
    let client = client_for(&server);

    let alice = client.exchange("alice", "users-service").await.unwrap();
    let alice_again = client.exchange("alice", "users-service").await.unwrap();
    let bob = client.exchange("bob", "users-service").await.unwrap();
    let alice_billing = client.exchange("alice", "billing").await.unwrap();
    let own = client.token().await.unwrap();

    assert_eq!(alice.expose_secret(), "for-alice");
    assert_eq!(alice_again.expose_secret(), "for-alice", "served from the cache");
    assert_eq!(bob.expose_secret(), "for-bob");
    assert_eq!(alice_billing.expose_secret(), "for-alice-at-billing");
    assert_eq!(own.expose_secret(), "own-token");
    assert_eq!(token_requests(&server).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_of_one_user_token_share_one_request() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_response("shared-exchanged", 900).set_delay(Duration::from_millis(300)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server);

    let callers: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.exchange("user-token", "users-service").await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap().expose_secret().to_owned());
    }

    assert!(tokens.iter().all(|token| token == "shared-exchanged"), "{tokens:?}");
    server.verify().await;
}

#[tokio::test]
async fn an_exchanged_token_is_renewed_shortly_before_it_expires() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    // A user token with 100 s left: the exchanged one lives 100 s, renewed from 90 s on.
    mount_exchange(&server, "user-token", "exchanged-1", 100, 1).await;
    mount_exchange(&server, "user-token", "exchanged-2", 10, 1).await;
    let (client, manual) = client_on_manual_clock(settings_for(&server));
    client.exchange("user-token", "users-service").await.unwrap();

    manual.advance(Duration::from_secs(89));
    let before_renewal = client.exchange("user-token", "users-service").await.unwrap();
    manual.advance(Duration::from_secs(1));
    let renewed = client.exchange("user-token", "users-service").await.unwrap();

    assert_eq!(before_renewal.expose_secret(), "exchanged-1");
    assert_eq!(renewed.expose_secret(), "exchanged-2");
}

#[tokio::test]
async fn while_the_auth_server_is_unreachable_a_cached_exchanged_token_is_used_until_it_expires() {
    let server = MockServer::builder().start().await;
    let uri = server.uri();
    mount_discovery(&server).await;
    mount_exchange(&server, "user-token", "exchanged-1", 900, 1).await;
    let (client, manual) = client_on_manual_clock(settings_for(&server));
    client.exchange("user-token", "users-service").await.unwrap();
    drop(server);
    wait_until_down(&uri).await;

    // Past the renewal time (840 s), before the expiry (900 s).
    manual.advance(Duration::from_secs(850));
    let during_outage = client.exchange("user-token", "users-service").await;
    let never_exchanged = client.exchange("another-user-token", "users-service").await;
    manual.advance(Duration::from_secs(50));
    let after_expiry = client.exchange("user-token", "users-service").await;

    assert_eq!(during_outage.unwrap().expose_secret(), "exchanged-1");
    assert!(matches!(never_exchanged, Err(ServiceTokenError::Fetch(FetchError::Unreachable(_)))));
    assert!(matches!(after_expiry, Err(ServiceTokenError::Fetch(FetchError::Unreachable(_)))));
}

#[tokio::test]
async fn a_refused_exchange_is_an_error_even_while_an_exchanged_token_is_cached() {
    let server = MockServer::start().await;
    mount_discovery(&server).await;
    mount_exchange(&server, "user-token", "exchanged-1", 900, 1).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": "invalid_grant" })))
        .mount(&server)
        .await;
    let (client, manual) = client_on_manual_clock(settings_for(&server));
    client.exchange("user-token", "users-service").await.unwrap();

    // The user logged out: at renewal the auth server refuses their token.
    manual.advance(Duration::from_secs(850));
    let refused = client.exchange("user-token", "users-service").await;
    let next = client.exchange("user-token", "users-service").await;

    assert!(matches!(&refused, Err(ServiceTokenError::Refused(detail)) if detail.contains("invalid_grant")));
    assert!(matches!(next, Err(ServiceTokenError::Refused(_))), "the refused token is not served again");
    assert_eq!(token_requests(&server).await.len(), 3, "each call after the refusal asks again");
}
