//! The axum extractors as a service uses them, answering the RFC 6750 way: 401 with a bare or
//! `invalid_token` challenge, 400 for a malformed header, 403 `insufficient_scope`, 503 without
//! keys; every body a problem document.
use crate::common;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use common::{Forger, UNREACHABLE_ISSUER as ISSUER};
use serde_json::{Value, json};
use shared_auth::jws::Algorithm;
use shared_auth::problem::PROBLEM_JSON;
use shared_auth::time::unix_now_i64;
use shared_auth::{AuthError, Authenticated, AuthenticatedUser, KeyCache, Verifier};
use tower::ServiceExt as _;

#[derive(Clone, FromRef)]
struct AppState {
    verifier: Verifier,
}

async fn whoami(auth: Authenticated) -> String {
    auth.sub.clone()
}

async fn greeting(auth: Option<Authenticated>) -> String {
    auth.map_or_else(|| "anonymous".to_owned(), |auth| auth.sub.clone())
}

async fn my_profile(user: AuthenticatedUser) -> String {
    user.preferred_username.clone().unwrap_or_default()
}

async fn list_users(auth: Authenticated) -> Result<&'static str, AuthError> {
    auth.require_scope("users:read")?;
    Ok("all users")
}

async fn admin_panel(auth: Authenticated) -> Result<&'static str, AuthError> {
    auth.require_role("admin")?;
    Ok("admin panel")
}

fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/greeting", get(greeting))
        .route("/me", get(my_profile))
        .route("/users", get(list_users))
        .route("/admin", get(admin_panel))
        .with_state(AppState { verifier })
}

fn forger() -> &'static Forger {
    Forger::shared(Algorithm::EdDSA)
}

fn working_app() -> Router {
    app(common::offline_verifier(forger().jwks()))
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn problem(&self) -> Value {
        assert_eq!(self.content_type.as_deref(), Some(PROBLEM_JSON));
        let problem: Value = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(problem["status"], self.status.as_u16());
        problem
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

async fn call(app: Router, uri: &str, authorization: Option<&str>) -> Answer {
    let mut request = Request::builder().uri(uri);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response: Response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let header_text = |name| {
        response.headers().get(name).map(|value: &header::HeaderValue| value.to_str().unwrap().to_owned())
    };
    let challenge = header_text(header::WWW_AUTHENTICATE);
    let content_type = header_text(header::CONTENT_TYPE);
    let retry_after = header_text(header::RETRY_AFTER);
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec();
    Answer { status, challenge, content_type, retry_after, body }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn user_token_with(changes: Value) -> String {
    let mut claims = common::user_claims(ISSUER);
    for (name, value) in changes.as_object().unwrap() {
        claims[name] = value.clone();
    }
    forger().sign(&claims)
}

#[tokio::test]
async fn a_request_without_a_token_gets_401_with_a_bare_bearer_challenge() {
    let answer = call(working_app(), "/whoami", None).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge.as_deref(), Some("Bearer"));
    assert_eq!(answer.problem()["title"], "Unauthorized");
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_with_its_claims() {
    let token = user_token_with(json!({ "sub": "user-42" }));

    let answer = call(working_app(), "/whoami", Some(&bearer(&token))).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "user-42");
    assert_eq!(answer.challenge, None);
}

#[tokio::test]
async fn a_malformed_bearer_header_gets_400_invalid_request() {
    let token = user_token_with(json!({}));
    let malformed = [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {token} extra"),
        "Bearer a b".to_owned(),
        format!("Bearer\t{token}"),
    ];
    for authorization in malformed {
        let answer = call(working_app(), "/whoami", Some(&authorization)).await;

        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{authorization}");
        assert_eq!(answer.challenge.as_deref(), Some(r#"Bearer error="invalid_request""#));
        answer.problem();
    }
}

/// RFC 6750 §3 and RFC 9110 §11.6.1: credentials of a scheme this resource does not take are
/// answered like no credentials, with the challenge that names the scheme it does take.
#[tokio::test]
async fn credentials_of_another_scheme_get_401_with_a_bearer_challenge() {
    let token = user_token_with(json!({}));
    let other_schemes = ["Basic dXNlcjpwYXNzd29yZA==".to_owned(), format!("Token {token}"), token.clone()];
    for authorization in other_schemes {
        let answer = call(working_app(), "/whoami", Some(&authorization)).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{authorization}");
        assert_eq!(answer.challenge.as_deref(), Some("Bearer"));
        answer.problem();
    }
}

#[tokio::test]
async fn an_invalid_token_gets_401_invalid_token() {
    let expired = user_token_with(json!({ "exp": unix_now_i64() - 3600, "iat": unix_now_i64() - 7200 }));
    let foreign = user_token_with(json!({ "aud": ["orders-service"] }));
    let stranger = Forger::new(Algorithm::EdDSA).sign(&common::user_claims(ISSUER));
    for token in ["not.a.token".to_owned(), expired, foreign, stranger] {
        let answer = call(working_app(), "/whoami", Some(&bearer(&token))).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token}");
        let challenge = answer.challenge.clone().unwrap();
        assert!(challenge.starts_with(r#"Bearer error="invalid_token""#), "{challenge}");
        answer.problem();
    }
}

#[tokio::test]
async fn an_optional_extractor_lets_anonymous_requests_through() {
    let answer = call(working_app(), "/greeting", None).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "anonymous");
}

#[tokio::test]
async fn an_optional_extractor_still_rejects_an_invalid_token() {
    let expired = user_token_with(json!({ "exp": unix_now_i64() - 3600, "iat": unix_now_i64() - 7200 }));

    let answer = call(working_app(), "/greeting", Some(&bearer(&expired))).await;
    let malformed = call(working_app(), "/greeting", Some("Bearer a b")).await;
    let basic = call(working_app(), "/greeting", Some("Basic dXNlcjpwYXNz")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenge.unwrap().starts_with(r#"Bearer error="invalid_token""#));
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_optional_extractor_passes_a_valid_token_on() {
    let token = user_token_with(json!({ "sub": "user-7" }));

    let answer = call(working_app(), "/greeting", Some(&bearer(&token))).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "user-7");
}

#[tokio::test]
async fn a_service_token_on_a_route_for_people_gets_403() {
    let service_token = forger().sign(&common::service_claims(ISSUER));
    let user_token = user_token_with(json!({ "preferred_username": "bob" }));

    let service = call(working_app(), "/me", Some(&bearer(&service_token))).await;
    let user = call(working_app(), "/me", Some(&bearer(&user_token))).await;

    assert_eq!(service.status, StatusCode::FORBIDDEN);
    assert!(service.challenge.clone().unwrap().starts_with(r#"Bearer error="insufficient_scope""#));
    service.problem();
    assert_eq!(user.status, StatusCode::OK);
    assert_eq!(user.text(), "bob");
}

#[tokio::test]
async fn a_token_without_the_required_scope_gets_403_insufficient_scope() {
    let without = user_token_with(json!({ "scope": "openid users:write users:readall" }));
    let with = forger().sign(&common::service_claims(ISSUER));

    let refused = call(working_app(), "/users", Some(&bearer(&without))).await;
    let allowed = call(working_app(), "/users", Some(&bearer(&with))).await;

    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.challenge.as_deref(),
        Some(r#"Bearer error="insufficient_scope", scope="users:read""#)
    );
    refused.problem();
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.text(), "all users");
}

#[tokio::test]
async fn a_token_without_the_required_role_gets_403_insufficient_scope() {
    let member = user_token_with(json!({ "roles": ["member", "administrator"] }));
    let admin = user_token_with(json!({ "roles": ["member", "admin"] }));

    let refused = call(working_app(), "/admin", Some(&bearer(&member))).await;
    let allowed = call(working_app(), "/admin", Some(&bearer(&admin))).await;

    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.challenge.clone().unwrap().contains(r#"error="insufficient_scope""#));
    refused.problem();
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.text(), "admin panel");
}

#[tokio::test]
async fn without_keys_a_protected_route_answers_503_not_401() {
    let keys = KeyCache::new(common::key_cache_settings(ISSUER)).unwrap();
    let app = app(common::verifier_over(keys, ISSUER));
    let token = user_token_with(json!({}));

    let with_token = call(app.clone(), "/whoami", Some(&bearer(&token))).await;
    let optional = call(app.clone(), "/greeting", Some(&bearer(&token))).await;
    let without_token = call(app, "/whoami", None).await;

    assert_eq!(with_token.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(with_token.challenge, None);
    assert!(with_token.retry_after.is_some());
    with_token.problem();
    assert_eq!(optional.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(without_token.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_a_revocation_list_past_its_fail_closed_age_a_protected_route_answers_503() {
    use shared_auth::revocation::{RevocationSettings, Revocations};
    use shared_auth::time::ManualClock;
    let manual = ManualClock::starting_now();
    let keys = KeyCache::with_clock(common::key_cache_settings(ISSUER), manual.clock()).unwrap();
    keys.replace_keys(forger().jwks()).unwrap();
    let settings = RevocationSettings {
        fail_closed_after: Some(std::time::Duration::from_secs(3600)),
        ..RevocationSettings::default()
    };
    let revocations = Revocations::new(settings, keys.clone());
    let list = forger().sign_revocations(&json!({ "iss": ISSUER, "iat": manual.now() - 3601, "seq": 1 }));
    revocations.apply_signed(&list).await.unwrap();
    let verifier =
        Verifier::new(shared_auth::VerifierSettings::new(ISSUER, common::AUDIENCE), keys, revocations);
    let token =
        user_token_with(json!({ "iat": manual.now(), "nbf": manual.now(), "exp": manual.now() + 900 }));

    let answer = call(app(verifier), "/whoami", Some(&bearer(&token))).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.challenge, None, "not a token problem: no invalid_token challenge");
    assert!(answer.problem()["detail"].as_str().unwrap().contains("revocation list"));
}
