//! orders-service's client secret and the tokens it handles (the customer's, and the one it
//! exchanges it for) never reach the logs, with every event and every span (fields included)
//! captured at TRACE. Alone in its test binary:
//! `tracing` caches per call site whether anyone listens, so a thread-local subscriber in a
//! binary whose other tests run on threads without one can miss events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::{FakeIssuer, TestDatabase};
use tracing_subscriber::fmt::format::FmtSpan;

/// Only URL-unreserved characters, so its HTTP Basic form is plain base64 of `id:secret`.
const CLIENT_SECRET: &str = "orders-client-secret-7f3a9c";

/// Everything the subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_client_secret_and_the_tokens_never_reach_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        // A line per closed span, with its fields: a secret recorded as a span field shows too.
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let issuer = FakeIssuer::start().await;
    let users_database = TestDatabase::sqlite();
    let users = testkit::start_resource_service(
        &users_service::SERVICE,
        users_service::api,
        &issuer.url,
        &users_database,
        |_| {},
    )
    .await;
    let orders_database = TestDatabase::sqlite();
    let orders = testkit::start_resource_service(
        &orders_service::SERVICE,
        orders_service::api,
        &issuer.url,
        &orders_database,
        |config| {
            config.service.users_service_url = users.url.clone();
            config.service.client_secret = Some(SecretString::from(CLIENT_SECRET.to_owned()));
        },
    )
    .await;
    let token = issuer.user_token("cust-1", "carla", "orders-service");
    let client = reqwest::Client::new();

    let created = client
        .post(format!("{}/v1/orders", orders.url))
        .bearer_auth(&token)
        .json(&json!({"item": "tea", "quantity": 1}))
        .send()
        .await
        .unwrap();
    let order: Value = created.json().await.unwrap();
    let order_path = format!("{}/v1/orders/{}", orders.url, order["id"].as_str().unwrap());
    let fetched = client.get(order_path).bearer_auth(&token).send().await.unwrap();

    assert_eq!(order["customer_name"], "carla", "the name came from users-service: {order}");
    assert_eq!(issuer.exchange_requests(), 1, "the customer's token was exchanged once");
    assert_eq!(fetched.status(), 200);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for span in [
        "create_order{user_id=cust-1",
        "fetch_display_name{user_id=cust-1}",
        "exchange_token{client_id=orders-service audience=users-service}",
        // users-service serves the customer, and names the service acting for them.
        "get_user{user_id=cust-1 client_id=orders-service",
        "request on behalf of the user actor=\"orders-service\"",
        "get_order{user_id=cust-1",
    ] {
        assert!(logs.contains(span), "the capture did not see the span {span}");
    }
    let basic_credentials = STANDARD.encode(format!("orders-service:{CLIENT_SECRET}"));
    let secrets = [
        ("the client secret", CLIENT_SECRET),
        ("the HTTP Basic credentials", basic_credentials.as_str()),
        ("the user's access token", token.as_str()),
        // Every JWT starts so: this catches the exchanged token too, whose value the test never sees.
        ("a JWT", "eyJ"),
    ];
    for (what, secret) in secrets {
        assert!(!logs.contains(secret), "{what} reached the logs");
    }
}
