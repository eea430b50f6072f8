//! What a browser on another origin sees: CORS for `CORS_ALLOWED_ORIGINS` (DESIGN.md "CORS"),
//! and Swagger UI's "Authorize" through the auth server (authorization code with PKCE).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use testkit::{FakeIssuer, TestDatabase};

const APP_ORIGIN: &str = "http://127.0.0.1:8083";

async fn start() -> (String, FakeIssuer, TestDatabase) {
    let issuer = FakeIssuer::start().await;
    let database = TestDatabase::sqlite();
    let service = testkit::start_resource_service(
        &users_service::SERVICE,
        users_service::api,
        &issuer.url,
        &database,
        |config| config.server.cors_allowed_origins = vec![APP_ORIGIN.to_owned()],
    )
    .await;
    (service.url, issuer, database)
}

#[tokio::test]
async fn the_demo_apps_origin_may_call_the_api_and_another_origin_gets_no_cors_headers() {
    let (url, issuer, _database) = start().await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{url}/v1/users/me"))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight(APP_ORIGIN).await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], APP_ORIGIN);
    assert!(allowed.headers().get("access-control-max-age").is_some(), "preflights are cached");
    assert!(allowed.headers().get("access-control-allow-credentials").is_none());
    let refused = preflight("http://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());

    let token = issuer.user_token("u-1", "alice", "users-service");
    let response = client
        .get(format!("{url}/v1/users/me"))
        .header("origin", APP_ORIGIN)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], APP_ORIGIN);
}

#[tokio::test]
async fn swagger_ui_can_log_in_at_the_auth_server_and_try_protected_operations() {
    let (url, issuer, _database) = start().await;
    let document: Value = reqwest::get(format!("{url}/openapi.json")).await.unwrap().json().await.unwrap();
    let flow = &document["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    assert_eq!(flow["authorizationUrl"], format!("{}/oauth2/authorize", issuer.url));
    assert_eq!(flow["tokenUrl"], format!("{}/oauth2/token", issuer.url));
    assert!(flow["scopes"].get("profile:read").is_some() && flow["scopes"].get("openid").is_some(), "{flow}");
    // `GET /v1/users/me` takes the Authorize dialog's token as well as a pasted bearer token,
    // with the same scope.
    let security = document["paths"]["/v1/users/me"]["get"]["security"].as_array().unwrap();
    let scopes_of = |scheme: &str| security.iter().find_map(|requirement| requirement.get(scheme)).cloned();
    assert!(scopes_of("bearer").is_some());
    assert_eq!(scopes_of("oauth2"), scopes_of("bearer"), "{security:?}");

    // Swagger UI is configured for the public client with PKCE, and its page may post the code
    // to the auth server.
    let initializer =
        reqwest::get(format!("{url}/docs/swagger-initializer.js")).await.unwrap().text().await.unwrap();
    assert!(
        initializer.contains("swagger-ui") && initializer.contains("usePkceWithAuthorizationCodeGrant"),
        "{initializer}"
    );
    let page = reqwest::get(format!("{url}/docs/")).await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains(&format!("connect-src 'self' {}", issuer.url)), "{policy}");
    let redirect = reqwest::get(format!("{url}/docs/oauth2-redirect.html")).await.unwrap();
    assert_eq!(redirect.status(), 200, "the redirect page Swagger UI returns to");
}
