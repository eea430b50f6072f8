//! Secrets never reach the logs. Alone in its test binary: `tracing` caches per call site
//! whether anyone listens, so a thread-local subscriber in a binary whose other tests run on
//! threads without one can miss events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "suite/common.rs"]
mod common;

use common::TestApp;

#[tokio::test(flavor = "current_thread")]
async fn authorization_headers_passwords_and_tokens_never_reach_the_logs() {
    use std::sync::{Arc, Mutex};
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
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        // Span closes are printed too, so a span's fields show even when nothing inside it logs.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let body = app.registered_login("olga", "olga-secret-password").await;
    let token = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    app.client.post(format!("{}/v1/auth/logout", app.url)).bearer_auth(token).send().await.unwrap();
    app.post_form("/oauth2/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    // A client by HTTP Basic and by form fields, and the endpoints that take a token.
    let secret = app.create_client("gateway", &["users:read"], &["users-service"]).await;
    let service_token =
        app.client_token("gateway", &secret).await["access_token"].as_str().unwrap().to_owned();
    let form_auth =
        [("grant_type", "client_credentials"), ("client_id", "gateway"), ("client_secret", &secret)];
    assert_eq!(app.post_form("/oauth2/token", &form_auth).await.status(), 200);
    app.introspect("gateway", &secret, &service_token).await;
    app.post_form_as("/oauth2/revoke", "gateway", &secret, &[("token", &service_token)]).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("login succeeded"), "the capture did not see the server's logs");
    assert!(
        logs.contains("WARN") && logs.contains("KEY_ENCRYPTION_KEY is not set"),
        "no warning about plain keys"
    );
    for secret in ["olga-secret-password", token, refresh, &secret, &service_token] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    // The spans name who acted: the user of the login, the client of the grants.
    let user_id = common::decode_part(token, 1)["sub"].as_str().unwrap().to_owned();
    assert!(logs.contains(&format!("login{{user_id=\"{user_id}\"}}")), "no user id on the login span");
    assert!(logs.contains("grant{client_id=\"gateway\"}"), "no client id on the grant span");
    assert!(logs.contains("introspect_token{client_id=\"gateway\"}"), "no client id on introspection");
}
