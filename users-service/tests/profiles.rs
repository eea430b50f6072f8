//! users-service endpoints on both backends, with tokens from a fake issuer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::{FakeIssuer, TestDatabase};

struct TestApp {
    url: String,
    issuer: FakeIssuer,
    client: reqwest::Client,
    _database: TestDatabase,
}

impl TestApp {
    async fn start(database: TestDatabase) -> Self {
        let issuer = FakeIssuer::start().await;
        let service = testkit::start_resource_service(
            &users_service::SERVICE,
            users_service::api,
            &issuer.url,
            &database,
            |_| {},
        )
        .await;
        let url = service.url;
        Self { url, issuer, client: reqwest::Client::new(), _database: database }
    }

    fn user(&self, sub: &str, name: &str) -> String {
        self.issuer.user_token(sub, name, "users-service")
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap()
    }
}

testkit::on_both_backends! {
    async fn the_first_authenticated_request_creates_the_profile_from_the_token(database) {
        let app = TestApp::start(database).await;
        let token = app.user("u-1", "alice");
        let me: Value = app.get("/v1/users/me", &token).await.json().await.unwrap();
        assert_eq!(me["id"], "u-1");
        assert_eq!(me["username"], "alice");
        assert_eq!(me["display_name"], "alice");
        // Idempotent: the second call reads the same row.
        let again: Value = app.get("/v1/users/me", &token).await.json().await.unwrap();
        assert_eq!(again["created_at"], me["created_at"]);
    }

    async fn a_user_changes_their_display_name_and_invalid_names_are_422(database) {
        let app = TestApp::start(database).await;
        let token = app.user("u-2", "bob");
        let url = format!("{}/v1/users/me", app.url);
        let updated = app.client.patch(&url).bearer_auth(&token).json(&json!({"display_name": "  Bob B.  "})).send().await.unwrap();
        assert_eq!(updated.status(), 200);
        assert_eq!(updated.json::<Value>().await.unwrap()["display_name"], "Bob B.");
        // Bidirectional overrides ("Bob" + RLO + "nimda" shows as "Bobadmin") and zero-width
        // characters would let one name pass for another.
        for bad in ["", "   ", "line\nbreak", &"x".repeat(101), "Bob\u{202E}nimda", "ad\u{200B}min", "a\u{2066}b"] {
            let response = app.client.patch(&url).bearer_auth(&token).json(&json!({"display_name": bad})).send().await.unwrap();
            assert_eq!(response.status(), 422, "{bad:?}");
        }
        let me: Value = app.get("/v1/users/me", &token).await.json().await.unwrap();
        assert_eq!(me["display_name"], "Bob B.");
    }

    async fn another_users_profile_needs_admin_or_the_users_read_scope(database) {
        let app = TestApp::start(database).await;
        app.get("/v1/users/me", &app.user("owner", "owner")).await;

        let stranger = app.get("/v1/users/owner", &app.user("stranger", "stranger")).await;
        assert_eq!(stranger.status(), 403);
        assert!(stranger.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));

        let mut admin = app.issuer.user_claims("boss", "boss", "users-service");
        admin.roles = vec!["admin".into()];
        assert_eq!(app.get("/v1/users/owner", &app.issuer.sign(&admin)).await.status(), 200);

        let service = app.issuer.sign(&app.issuer.service_claims("orders-service", "users:read", "users-service"));
        let profile: Value = app.get("/v1/users/owner", &service).await.json().await.unwrap();
        assert_eq!(profile["username"], "owner");
        assert_eq!(app.get("/v1/users/nobody", &service).await.status(), 404);

        let own = app.get("/v1/users/owner", &app.user("owner", "owner")).await;
        assert_eq!(own.status(), 200);
    }

    async fn listing_users_is_for_admins_only(database) {
        let app = TestApp::start(database).await;
        for (sub, name) in [("a", "anna"), ("b", "ben"), ("c", "cleo")] {
            app.get("/v1/users/me", &app.user(sub, name)).await;
        }
        assert_eq!(app.get("/v1/users", &app.user("a", "anna")).await.status(), 403);
        let mut admin = app.issuer.user_claims("boss", "boss", "users-service");
        admin.roles = vec!["admin".into()];
        let token = app.issuer.sign(&admin);
        let all: Vec<Value> = app.get("/v1/users", &token).await.json().await.unwrap();
        assert_eq!(all.len(), 3);
        let page: Vec<Value> = app.get("/v1/users?limit=2&offset=2", &token).await.json().await.unwrap();
        assert_eq!(page.len(), 1);
        let bad = app.get("/v1/users?limit=abc", &token).await;
        assert_eq!(bad.status(), 400);
        assert_eq!(bad.headers()["content-type"], "application/problem+json");
    }
}

/// A token orders-service obtained by token exchange: the customer's, with `act` naming the
/// service, and only `profile:read` (what orders-service's client is registered for).
fn exchanged_for(app: &TestApp, sub: &str, name: &str) -> String {
    let mut claims = app.issuer.user_claims(sub, name, "users-service");
    claims.client_id = "orders-service".into();
    claims.scope = Some("profile:read".into());
    claims.act = Some(shared_auth::claims::Actor { sub: "orders-service".into(), act: None });
    app.issuer.sign(&claims)
}

#[tokio::test]
async fn an_exchanged_token_reads_its_users_own_profile_and_nobody_elses() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    app.get("/v1/users/me", &app.user("other", "otto")).await;
    let token = exchanged_for(&app, "cust-1", "carla");

    let own = app.get("/v1/users/cust-1", &token).await;
    let someone_else = app.get("/v1/users/other", &token).await;
    let list = app.get("/v1/users", &token).await;

    assert_eq!(own.status(), 200);
    let profile: Value = own.json().await.unwrap();
    assert_eq!((&profile["id"], &profile["display_name"]), (&json!("cust-1"), &json!("carla")));
    assert_eq!(someone_else.status(), 403, "acting for carla gives no right to otto's profile");
    assert_eq!(list.status(), 403);
}

#[tokio::test]
async fn a_service_token_has_no_profile_of_its_own() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let service =
        app.issuer.sign(&app.issuer.service_claims("orders-service", "users:read", "users-service"));
    let response = app.get("/v1/users/me", &service).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn tokens_for_another_audience_or_without_a_token_are_401() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let for_orders = app.issuer.user_token("u", "u", "orders-service");
    let response = app.get("/v1/users/me", &for_orders).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
    let anonymous = app.client.get(format!("{}/v1/users/me", app.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn readiness_reports_keys_and_database() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let ready: Value =
        app.client.get(format!("{}/readyz", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["keys"], "ready");
    let spec: Value =
        app.client.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    for path in ["/v1/users/me", "/v1/users/{id}", "/v1/users", "/healthz", "/readyz", "/metrics"] {
        assert!(spec["paths"].get(path).is_some(), "{path} undocumented");
    }
}

#[tokio::test]
async fn without_any_keys_the_service_starts_but_answers_503_not_401() {
    let database = TestDatabase::sqlite();
    let mut config = users_service::SERVICE.config_from(["users-service"]).unwrap();
    config.auth.auth_issuer = "http://127.0.0.1:9".into(); // nothing listens there
    config.auth.auth_fetch_timeout_ms = 200;
    config.storage.database_url = Some(SecretString::from(database.url.clone()));
    config.storage.data_dir = database.dir.path().to_path_buf();
    let service = users_service::SERVICE.build(&config, users_service::api).await.unwrap();
    assert!(service.verifier.keys().refresh().await.is_err());
    let url = testkit::serve(service.router).await;
    let issuer = FakeIssuer::start().await;
    let client = reqwest::Client::new();

    let ready = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let protected = client
        .get(format!("{url}/v1/users/me"))
        .bearer_auth(issuer.user_token("u", "u", "users-service"))
        .send()
        .await
        .unwrap();
    assert_eq!(protected.status(), 503);
    assert!(protected.headers().contains_key("retry-after"));
}

/// Each operation declares its scope in the OpenAPI document and its extractor enforces it: a
/// token narrowed to the orders scopes cannot change the profile, and so on.
#[tokio::test]
async fn every_operation_requires_the_scope_its_openapi_security_names() {
    let app = TestApp::start(TestDatabase::sqlite()).await;

    let mut checked =
        testkit::scopes::assert_documented_scopes_are_enforced(&app.url, &app.issuer, "users-service").await;

    checked.sort();
    assert_eq!(
        checked,
        [
            "GET /v1/users profile:read",
            "GET /v1/users/me profile:read",
            "GET /v1/users/{id} profile:read|users:read",
            "PATCH /v1/users/me profile:write",
        ]
    );
}

#[tokio::test]
async fn a_token_narrowed_to_the_orders_scopes_cannot_change_the_profile() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let mut claims = app.issuer.user_claims("nina", "nina", "users-service");
    claims.scope = Some("orders:read orders:write".into());
    let narrowed = app.issuer.sign(&claims);

    let response = app
        .client
        .patch(format!("{}/v1/users/me", app.url))
        .bearer_auth(&narrowed)
        .json(&json!({"display_name": "Mallory"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="profile:write""#
    );
    let profile: Value = app.get("/v1/users/me", &app.user("nina", "nina")).await.json().await.unwrap();
    assert_eq!(profile["display_name"], "nina", "unchanged");
}
