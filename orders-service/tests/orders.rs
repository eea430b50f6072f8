//! orders-service endpoints on both backends, with users-service and a fake issuer running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::{FakeIssuer, TestDatabase};

struct TestApp {
    url: String,
    issuer: FakeIssuer,
    client: reqwest::Client,
    _databases: Vec<TestDatabase>,
}

async fn start_users_service(issuer: &FakeIssuer, database: &TestDatabase) -> String {
    testkit::start_resource_service(
        &users_service::SERVICE,
        users_service::api,
        &issuer.url,
        database,
        |_| {},
    )
    .await
    .url
}

impl TestApp {
    /// orders-service plus, when `with_users` is set, a users-service; otherwise
    /// USERS_SERVICE_URL points at a closed port.
    async fn start(database: TestDatabase, with_users: bool) -> Self {
        let issuer = FakeIssuer::start().await;
        let users_database = TestDatabase::sqlite();
        let users_url = if with_users {
            start_users_service(&issuer, &users_database).await
        } else {
            "http://127.0.0.1:9".to_owned()
        };
        let url = testkit::start_resource_service(
            &orders_service::SERVICE,
            orders_service::api,
            &issuer.url,
            &database,
            |config| {
                config.service.users_service_url = users_url;
                config.service.client_secret = Some(SecretString::from("test-secret".to_owned()));
                config.service.users_service_timeout_ms = 500;
            },
        )
        .await
        .url;
        Self { url, issuer, client: reqwest::Client::new(), _databases: vec![database, users_database] }
    }

    fn user(&self, sub: &str, name: &str) -> String {
        self.issuer.user_token(sub, name, "orders-service")
    }

    async fn create(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/orders", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap()
    }
}

testkit::on_both_backends! {
    async fn an_order_is_created_with_the_customer_name_from_users_service_and_listed(database) {
        let app = TestApp::start(database, true).await;
        let token = app.user("cust-1", "carla");

        let created = app.create(&token, &json!({"item": "coffee beans", "quantity": 2})).await;
        assert_eq!(created.status(), 201);
        let order: Value = created.json().await.unwrap();
        assert_eq!(order["user_id"], "cust-1");
        assert_eq!(order["quantity"], 2);
        assert_eq!(order["customer_name"], "carla");
        assert_eq!(app.issuer.exchange_requests(), 1, "orders-service exchanged the customer's token");
        assert_eq!(app.issuer.token_requests(), 0, "and needed no service token of its own");

        app.create(&token, &json!({"item": "tea", "quantity": 1})).await;
        assert_eq!(app.issuer.exchange_requests(), 1, "the exchanged token is cached per user token");
        let other = app.create(&app.user("cust-2", "colin"), &json!({"item": "tea", "quantity": 1})).await;
        assert_eq!(other.json::<Value>().await.unwrap()["customer_name"], "colin");
        assert_eq!(app.issuer.exchange_requests(), 2, "another customer's token is exchanged for them");
        let list: Vec<Value> = app.get("/v1/orders", &token).await.json().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["item"], "tea", "newest first");
        let one: Value = app.get(&format!("/v1/orders/{}", order["id"].as_str().unwrap()), &token).await.json().await.unwrap();
        assert_eq!(one["item"], "coffee beans");
    }

    async fn another_users_order_is_a_404_unless_admin(database) {
        let app = TestApp::start(database, true).await;
        let order: Value = app.create(&app.user("owner", "owner"), &json!({"item": "book", "quantity": 1})).await.json().await.unwrap();
        let path = format!("/v1/orders/{}", order["id"].as_str().unwrap());

        assert_eq!(app.get(&path, &app.user("other", "other")).await.status(), 404);
        assert_eq!(app.get("/v1/orders/does-not-exist", &app.user("owner", "owner")).await.status(), 404);
        let others: Vec<Value> = app.get("/v1/orders", &app.user("other", "other")).await.json().await.unwrap();
        assert!(others.is_empty());

        let mut admin = app.issuer.user_claims("boss", "boss", "orders-service");
        admin.roles = vec!["admin".into()];
        assert_eq!(app.get(&path, &app.issuer.sign(&admin)).await.status(), 200);
    }

    async fn invalid_items_and_quantities_are_422_and_nothing_is_stored(database) {
        let app = TestApp::start(database, true).await;
        let token = app.user("v", "val");
        for body in [json!({"item": "", "quantity": 1}), json!({"item": "x", "quantity": 0}), json!({"item": "x", "quantity": 1001}),
                     json!({"item": "x".repeat(201), "quantity": 1}), json!({"item": "tea\u{202E}eeffoc", "quantity": 1}),
                     json!({"item": "pi\u{200D}zza", "quantity": 1})] {
            assert_eq!(app.create(&token, &body).await.status(), 422, "{body}");
        }
        for body in [json!({"item": "x"}), json!({"item": "x", "quantity": "two"}), json!({"item": "x", "quantity": 1e30})] {
            assert_eq!(app.create(&token, &body).await.status(), 422, "{body}");
        }
        let list: Vec<Value> = app.get("/v1/orders", &token).await.json().await.unwrap();
        assert!(list.is_empty());
    }
}

#[tokio::test]
async fn with_users_service_down_the_order_is_still_created_without_a_name() {
    let app = TestApp::start(TestDatabase::sqlite(), false).await;
    let created = app.create(&app.user("d", "dana"), &json!({"item": "umbrella", "quantity": 1})).await;
    assert_eq!(created.status(), 201);
    let order: Value = created.json().await.unwrap();
    assert_eq!(order["customer_name"], Value::Null);
}

#[tokio::test]
async fn when_the_exchange_is_refused_the_order_is_still_created_without_a_name() {
    let app = TestApp::start(TestDatabase::sqlite(), true).await;
    app.issuer.refuse_exchanges(true);

    let created = app.create(&app.user("f", "fred"), &json!({"item": "kettle", "quantity": 1})).await;

    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["customer_name"], Value::Null);
    assert_eq!(app.issuer.exchange_requests(), 1);
    assert_eq!(app.issuer.token_requests(), 0, "no fallback to a service token of its own");
}

#[tokio::test]
async fn a_service_token_cannot_place_or_list_orders() {
    let app = TestApp::start(TestDatabase::sqlite(), false).await;
    let service = app.issuer.sign(&app.issuer.service_claims("reports", "orders:read", "orders-service"));
    let created = app.create(&service, &json!({"item": "x", "quantity": 1})).await;
    assert_eq!(created.status(), 403);
    assert!(created.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    assert_eq!(app.get("/v1/orders", &service).await.status(), 403);
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_4xx_problems() {
    let app = TestApp::start(TestDatabase::sqlite(), false).await;
    let token = app.user("e", "eve");
    let url = format!("{}/v1/orders", app.url);
    let huge = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!("{{\"item\":\"{}\",\"quantity\":1}}", "x".repeat(70_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let malformed = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.headers()["content-type"], "application/problem+json");
}

/// Each operation declares its scope in the OpenAPI document and its extractor enforces it: a
/// token narrowed to the profile scopes cannot place orders, and so on.
#[tokio::test]
async fn every_operation_requires_the_scope_its_openapi_security_names() {
    let app = TestApp::start(TestDatabase::sqlite(), false).await;

    let mut checked =
        testkit::scopes::assert_documented_scopes_are_enforced(&app.url, &app.issuer, "orders-service").await;

    checked.sort();
    assert_eq!(
        checked,
        ["GET /v1/orders orders:read", "GET /v1/orders/{id} orders:read", "POST /v1/orders orders:write"]
    );
}
