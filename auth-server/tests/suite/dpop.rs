//! DPoP at the token endpoint (RFC 9449 §5), by rule: a valid proof binds the access token
//! (`token_type: DPoP`, `cnf.jkt`) for every grant, a public client's refresh tokens are bound to
//! the same key, a `--dpop` client must send a proof, and every proof check of §4.3 refuses with
//! `invalid_dpop_proof`. Also: discovery, userinfo with the DPoP scheme (§7), introspection
//! showing `cnf` (§6.2).
use crate::common;

use auth_server::clients::{Registration, generate_secret, register};
use common::{TestApp, decode_part, status_and_json};
use reqwest::Url;
use serde_json::{Value, json};
use shared_auth::dpop::ProofKey;
use shared_auth::jws::Algorithm;
use shared_auth::time::unix_now_i64;
use testkit::browser::{BrowserAgent, Pkce, authorize_and_login};

const SPA: &str = "spa";
const SPA_CALLBACK: &str = "http://127.0.0.1:9/spa/callback";
const SERVICE: &str = "billing";
const STRICT: &str = "strict-service";
const USER: &str = "dpop-user";
const PASSWORD: &str = "dpop-user-password";

struct Fixture {
    app: TestApp,
    service_secret: String,
    strict_secret: String,
}

async fn fixture() -> Fixture {
    let app = TestApp::start_with(testkit::TestDatabase::sqlite(), |config| {
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
    })
    .await;
    let spa = Registration {
        scopes: vec!["profile:read".into()],
        redirect_uris: vec![SPA_CALLBACK.into()],
        public: true,
        first_party: true,
        ..Registration::default()
    };
    register(&app.state.pool, SPA, &generate_secret(), &spa).await.unwrap();
    let service_secret = app.create_client(SERVICE, &["users:read"], &["users-service"]).await;
    let strict_secret = generate_secret();
    let strict = Registration {
        scopes: vec!["users:read".into()],
        audiences: vec!["users-service".into()],
        dpop_required: true,
        ..Registration::default()
    };
    register(&app.state.pool, STRICT, &strict_secret, &strict).await.unwrap();
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let strict_secret = secrecy::ExposeSecret::expose_secret(&strict_secret).to_owned();
    Fixture { app, service_secret, strict_secret }
}

fn token_endpoint(app: &TestApp) -> String {
    format!("{}/oauth2/token", app.url)
}

fn proof(app: &TestApp, key: &ProofKey) -> String {
    key.proof("POST", &token_endpoint(app), None, unix_now_i64()).unwrap()
}

/// POST the token endpoint with `form`, a `DPoP` header per proof, and Basic credentials when
/// given.
async fn token_request(
    app: &TestApp,
    form: &[(&str, &str)],
    proofs: &[&str],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = app.client.post(token_endpoint(app)).form(form);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    if let Some((client_id, secret)) = basic {
        request = request.basic_auth(client_id, Some(secret));
    }
    status_and_json(request.send().await.unwrap()).await
}

/// Logs the user in through the SPA and returns the code and its PKCE verifier.
async fn authorization_code(app: &TestApp) -> (String, Pkce) {
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", SPA),
        ("redirect_uri", SPA_CALLBACK),
        ("scope", "openid profile:read"),
        ("state", "s"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let url = Url::parse_with_params(&format!("{}/oauth2/authorize", app.url), &params).unwrap();
    let redirect = authorize_and_login(&BrowserAgent::new(), url.as_str(), USER, PASSWORD).await;
    let code = redirect.location_param("code").unwrap_or_else(|| panic!("{}", redirect.describe()));
    (code, pkce)
}

/// The SPA's code redeemed with `proofs`.
async fn redeem(app: &TestApp, proofs: &[&str]) -> (u16, Value) {
    let (code, pkce) = authorization_code(app).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", SPA_CALLBACK),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_id", SPA),
    ];
    token_request(app, &form, proofs, None).await
}

async fn refresh(app: &TestApp, refresh_token: &str, proofs: &[&str]) -> (u16, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", SPA)];
    token_request(app, &form, proofs, None).await
}

fn assert_bound_to(body: &Value, key: &ProofKey) {
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let claims = decode_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["cnf"], json!({ "jkt": key.thumbprint() }), "{claims}");
}

fn assert_dpop_refusal(status: u16, body: &Value) {
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");
}

#[tokio::test]
async fn discovery_lists_both_proof_algorithms() {
    let Fixture { app, .. } = fixture().await;

    let metadata: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();

    assert_eq!(metadata["dpop_signing_alg_values_supported"], json!(["ES256", "EdDSA"]));
}

#[tokio::test]
async fn a_code_redeemed_with_a_proof_gives_a_dpop_token_bound_to_that_key() {
    let Fixture { app, .. } = fixture().await;
    for algorithm in [Algorithm::ES256, Algorithm::EdDSA] {
        let key = ProofKey::generate(algorithm).unwrap();

        let (status, body) = redeem(&app, &[&proof(&app, &key)]).await;

        assert_eq!(status, 200, "{body}");
        assert_bound_to(&body, &key);
    }
    let (status, body) = redeem(&app, &[]).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("Bearer")), "no proof, no binding");
    assert!(decode_part(body["access_token"].as_str().unwrap(), 1).get("cnf").is_none());
}

#[tokio::test]
async fn a_public_clients_bound_refresh_token_needs_a_proof_of_the_same_key() {
    let Fixture { app, .. } = fixture().await;
    let key = ProofKey::generate(Algorithm::ES256).unwrap();
    let thief = ProofKey::generate(Algorithm::ES256).unwrap();
    let (_, tokens) = redeem(&app, &[&proof(&app, &key)]).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let (without, without_body) = refresh(&app, refresh_token, &[]).await;
    let (other_key, other_key_body) = refresh(&app, refresh_token, &[&proof(&app, &thief)]).await;
    let (status, refreshed) = refresh(&app, refresh_token, &[&proof(&app, &key)]).await;

    assert_dpop_refusal(without, &without_body);
    assert_dpop_refusal(other_key, &other_key_body);
    assert_eq!(status, 200, "the refused attempts did not use the token up: {refreshed}");
    assert_bound_to(&refreshed, &key);
    let next = refreshed["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, next, &[]).await;
    assert_dpop_refusal(status, &body);
    let (status, _) = refresh(&app, next, &[&proof(&app, &key)]).await;
    assert_eq!(status, 200, "the rotated refresh token is bound to the same key");
}

#[tokio::test]
async fn client_credentials_with_a_proof_are_bound_and_a_dpop_client_must_send_one() {
    let Fixture { app, service_secret, strict_secret } = fixture().await;
    let key = ProofKey::generate(Algorithm::EdDSA).unwrap();
    let form = [("grant_type", "client_credentials")];

    let (status, bound) =
        token_request(&app, &form, &[&proof(&app, &key)], Some((SERVICE, &service_secret))).await;
    let (_, bearer) = token_request(&app, &form, &[], Some((SERVICE, &service_secret))).await;
    let (strict_without, strict_body) = token_request(&app, &form, &[], Some((STRICT, &strict_secret))).await;
    let (strict_with, strict_bound) =
        token_request(&app, &form, &[&proof(&app, &key)], Some((STRICT, &strict_secret))).await;

    assert_eq!(status, 200, "{bound}");
    assert_bound_to(&bound, &key);
    assert_eq!(bearer["token_type"], "Bearer");
    assert_dpop_refusal(strict_without, &strict_body);
    assert_eq!(strict_with, 200, "{strict_bound}");
    assert_bound_to(&strict_bound, &key);
}

/// A proof for the token endpoint built from `claims` and `header` adjusted by the caller.
fn crafted(app: &TestApp, key: &ProofKey, adjust: impl FnOnce(&mut Value, &mut Value)) -> String {
    let mut header = key.header();
    let mut claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(), "htm": "POST", "htu": token_endpoint(app), "iat": unix_now_i64(),
    });
    adjust(&mut header, &mut claims);
    key.sign(&header, &claims).unwrap()
}

#[tokio::test]
async fn every_proof_rule_of_section_4_3_is_enforced_at_the_token_endpoint() {
    let Fixture { app, service_secret, .. } = fixture().await;
    let key = ProofKey::generate(Algorithm::ES256).unwrap();
    let replayed = proof(&app, &key);
    let form = [("grant_type", "client_credentials")];
    let basic = Some((SERVICE, service_secret.as_str()));
    assert_eq!(token_request(&app, &form, &[&replayed], basic).await.0, 200);
    let unsigned = {
        let proof = crafted(&app, &key, |header, _| header["alg"] = json!("none"));
        format!("{}.", proof.rsplit_once('.').unwrap().0)
    };

    let cases = [
        ("replayed jti", replayed.clone()),
        ("htm GET", crafted(&app, &key, |_, claims| claims["htm"] = json!("GET"))),
        (
            "htu of another endpoint",
            crafted(&app, &key, |_, claims| claims["htu"] = json!(format!("{}/oauth2/revoke", app.url))),
        ),
        (
            "htu of another host",
            crafted(&app, &key, |_, claims| claims["htu"] = json!("https://evil.example/oauth2/token")),
        ),
        ("iat two minutes old", crafted(&app, &key, |_, claims| claims["iat"] = json!(unix_now_i64() - 120))),
        (
            "iat two minutes ahead",
            crafted(&app, &key, |_, claims| claims["iat"] = json!(unix_now_i64() + 120)),
        ),
        ("typ JWT", crafted(&app, &key, |header, _| header["typ"] = json!("JWT"))),
        ("a private key in jwk", crafted(&app, &key, |header, _| header["jwk"]["d"] = json!("c2VjcmV0"))),
        ("alg HS256", crafted(&app, &key, |header, _| header["alg"] = json!("HS256"))),
        ("alg none", unsigned),
        (
            "no jti",
            crafted(&app, &key, |_, claims| {
                claims.as_object_mut().unwrap().remove("jti");
            }),
        ),
        ("not a JWS", "not-a-proof".to_owned()),
    ];
    for (name, bad) in cases {
        let (status, body) = token_request(&app, &form, &[&bad], basic).await;
        assert_dpop_refusal(status, &body);
        assert!(body["error_description"].is_string(), "{name}: {body}");
    }
    let (first, second) = (proof(&app, &key), proof(&app, &key));
    let (status, body) = token_request(&app, &form, &[&first, &second], basic).await;
    assert_dpop_refusal(status, &body);
}

#[tokio::test]
async fn userinfo_takes_a_bound_token_with_the_dpop_scheme_only() {
    let Fixture { app, .. } = fixture().await;
    let key = ProofKey::generate(Algorithm::EdDSA).unwrap();
    let (_, tokens) = redeem(&app, &[&proof(&app, &key)]).await;
    let token = tokens["access_token"].as_str().unwrap();
    let userinfo = format!("{}/oauth2/userinfo", app.url);
    let resource_proof = key.proof("GET", &userinfo, Some(token), unix_now_i64()).unwrap();

    let with_dpop = app
        .client
        .get(&userinfo)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", &resource_proof)
        .send()
        .await
        .unwrap();
    let as_bearer = app.client.get(&userinfo).bearer_auth(token).send().await.unwrap();

    assert_eq!(with_dpop.status(), 200);
    assert_eq!(with_dpop.json::<Value>().await.unwrap()["preferred_username"], USER);
    assert_eq!(as_bearer.status(), 401);
    let challenge = as_bearer.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with(r#"DPoP error="invalid_token""#), "{challenge}");
}

#[tokio::test]
async fn introspection_shows_the_key_a_token_is_bound_to() {
    let Fixture { app, service_secret, .. } = fixture().await;
    let key = ProofKey::generate(Algorithm::ES256).unwrap();
    let (_, bound) = token_request(
        &app,
        &[("grant_type", "client_credentials")],
        &[&proof(&app, &key)],
        Some((SERVICE, &service_secret)),
    )
    .await;

    let introspection =
        app.introspect(SERVICE, &service_secret, bound["access_token"].as_str().unwrap()).await;

    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["cnf"], json!({ "jkt": key.thumbprint() }));
}

#[tokio::test]
async fn a_login_with_a_proof_binds_the_token_and_its_refresh_tokens() {
    let Fixture { app, .. } = fixture().await;
    let key = ProofKey::generate(Algorithm::EdDSA).unwrap();
    let login_url = format!("{}/v1/auth/login", app.url);
    let credentials = json!({ "username": USER, "password": PASSWORD });
    let login_proof = key.proof("POST", &login_url, None, unix_now_i64()).unwrap();
    let wrong_endpoint = proof(&app, &key);

    let bad =
        app.client.post(&login_url).header("DPoP", &wrong_endpoint).json(&credentials).send().await.unwrap();
    let (status, tokens) = status_and_json(
        app.client.post(&login_url).header("DPoP", &login_proof).json(&credentials).send().await.unwrap(),
    )
    .await;

    assert_eq!(bad.status(), 400, "a proof for the token endpoint does not log in");
    assert_eq!(status, 200, "{tokens}");
    assert_bound_to(&tokens, &key);
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let (without, body) = token_request(&app, &form, &[], None).await;
    assert_dpop_refusal(without, &body);
    let (status, refreshed) = token_request(&app, &form, &[&proof(&app, &key)], None).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_bound_to(&refreshed, &key);
}
