//! Login: tokens per the contract, identical failures, re-hashing, independent verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "suite/common.rs"]
mod common;

use common::{TestApp, decode_part};
use serde_json::Value;

testkit::on_both_backends! {
    async fn login_returns_a_bearer_token_with_the_contract_claims(database) {
        let app = TestApp::start(database).await;
        let body = app.registered_login("dora", "dora-password").await;

        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["scope"], "profile:read profile:write orders:read orders:write");
        assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
        let token = body["access_token"].as_str().unwrap();
        let header = decode_part(token, 0);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "EdDSA");
        assert!(header["kid"].is_string());
        let claims = decode_part(token, 1);
        for claim in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "roles", "preferred_username", "sid"] {
            if claim != "roles" {
                assert!(!claims[claim].is_null(), "missing {claim}");
            }
        }
        assert_eq!(claims["iss"], app.url.as_str());
        assert_eq!(claims["aud"], serde_json::json!(["users-service", "orders-service"]));
        assert_eq!(claims["preferred_username"], "dora");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
        // A session row and a refresh-token row exist, the token stored only as a hash.
        let refresh = body["refresh_token"].as_str().unwrap();
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens").fetch_one(&app.state.pool).await.unwrap();
        assert_ne!(stored, refresh);
        assert_eq!(stored, auth_server::tokens::hash_token(refresh));
    }

    async fn unknown_user_and_wrong_password_get_byte_identical_responses(database) {
        let app = TestApp::start(database).await;
        app.registered_login("erin", "erin-password").await;

        let wrong = app.login("erin", "not-the-password").await;
        let unknown = app.login("nobody-here", "not-the-password").await;
        let malformed = app.login("x", "short").await;
        let describe = |response: &reqwest::Response| {
            (response.status(), response.headers()["content-type"].clone(), response.headers().get("www-authenticate").cloned())
        };
        assert_eq!(describe(&wrong), describe(&unknown));
        assert_eq!(describe(&wrong), describe(&malformed));
        assert_eq!(wrong.status(), 401);
        let (wrong, unknown, malformed) = (wrong.bytes().await.unwrap(), unknown.bytes().await.unwrap(), malformed.bytes().await.unwrap());
        assert_eq!(wrong, unknown);
        assert_eq!(wrong, malformed);
    }
}

fn hash_count(metrics: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with("password_hash_duration_seconds_count"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_unknown_user_costs_one_argon2_hash_like_a_wrong_password() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    app.registered_login("frank", "frank-password").await;
    // Warm the dummy hash so the measurement below counts the login's own work only.
    app.login("warmup-unknown", "whatever-password").await;

    let before = hash_count(&app.get("/metrics").await.text().await.unwrap());
    assert_eq!(app.login("ghost-user", "whatever-password").await.status(), 401);
    let after_unknown = hash_count(&app.get("/metrics").await.text().await.unwrap());
    assert_eq!(app.login("frank", "wrong-password").await.status(), 401);
    let after_wrong = hash_count(&app.get("/metrics").await.text().await.unwrap());

    // Metrics are process-wide; other tests in this binary may hash concurrently, so these are
    // lower bounds that still fail if the unknown-user path skipped hashing.
    assert!(after_unknown - before >= 1.0, "unknown user did not hash");
    assert!(after_wrong - after_unknown >= 1.0, "wrong password did not hash");
}

#[tokio::test]
async fn tokens_verify_against_the_published_jwks_with_an_independent_library_and_tampering_fails() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let body = app.registered_login("gina", "gina-password").await;
    let token = body["access_token"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(app.jwks().await).unwrap();
    let kid = decode_part(token, 0)["kid"].as_str().unwrap().to_owned();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["orders-service"]);
    validation.set_issuer(&[app.url.as_str()]);

    let decoded = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap();
    assert_eq!(decoded.claims["preferred_username"], "gina");

    // Flip one character of the payload: the signature no longer matches.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let claims = decode_part(token, 1);
    let mut forged = claims.clone();
    forged["roles"] = serde_json::json!(["admin"]);
    use base64::Engine as _;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());
}

#[tokio::test]
async fn es256_and_rs256_are_selectable_and_verify_independently() {
    for (name, algorithm, jwt_algorithm) in [
        ("ES256", shared_auth::jws::Algorithm::ES256, jsonwebtoken::Algorithm::ES256),
        ("RS256", shared_auth::jws::Algorithm::RS256, jsonwebtoken::Algorithm::RS256),
    ] {
        let app =
            TestApp::start_with(testkit::TestDatabase::sqlite(), |config| config.signing_alg = algorithm)
                .await;
        let body = app.registered_login("hank", "hank-password").await;
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(decode_part(token, 0)["alg"], name);
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(app.jwks().await).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jwt_algorithm);
        validation.set_audience(&["users-service"]);
        assert!(jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok(), "{name}");
    }
}

#[tokio::test]
async fn a_login_with_weaker_stored_parameters_rehashes_the_password() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let weak = auth_server::password::PasswordHasher::new(auth_server::password::HashSettings {
        memory_kib: 1024,
        iterations: 1,
        ..Default::default()
    })
    .unwrap();
    let hash = weak.hash(&secrecy::SecretString::from("legacy-password".to_owned())).await.unwrap();
    let username = auth_server::domain::Username::try_from("legacy").unwrap();
    auth_server::store::users::create(&app.state.pool, &username, &hash, &[], app.state.clock.now())
        .await
        .unwrap();

    assert_eq!(app.login("legacy", "legacy-password").await.status(), 200);

    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(&app.state.pool).await.unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    assert_eq!(app.login("legacy", "legacy-password").await.status(), 200);
}

#[tokio::test]
async fn a_disabled_user_cannot_log_in_and_gets_the_same_401() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    app.registered_login("ivan", "ivan-password").await;
    let wrong = app.login("ivan", "bad-password").await.bytes().await.unwrap();
    auth_server::cli::disable_user(&app.state, "ivan").await.unwrap();
    let disabled = app.login("ivan", "ivan-password").await;
    assert_eq!(disabled.status(), 401);
    assert_eq!(disabled.bytes().await.unwrap(), wrong);
}
