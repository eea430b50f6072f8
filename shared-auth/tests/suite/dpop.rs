//! DPoP-bound tokens at a resource, rule by rule (RFC 9449 §4.3 proof checks, §7 the `DPoP`
//! scheme and its challenges, §11 the attacks they stop), through the extractors a service
//! uses: every refusal is a 401 with a `DPoP` challenge naming the error, except a full replay
//! cache (503).
use crate::common;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use common::{Forger, UNREACHABLE_ISSUER as ISSUER};
use serde_json::{Value, json};
use shared_auth::dpop::{ProofKey, ProofSettings, token_hash};
use shared_auth::jws::{Algorithm, JwkSet};
use shared_auth::time::unix_now_i64;
use shared_auth::{Authenticated, KeyCache, Verifier, VerifierSettings};
use tower::ServiceExt as _;

/// Where the service is reached from outside, as `PUBLIC_URL` says: behind a proxy, with a
/// path prefix, on another host than the one the request's `Host` header names.
const PUBLIC_URL: &str = "https://api.example.com/users";
const WHOAMI: &str = "https://api.example.com/users/whoami";

#[derive(Clone, FromRef)]
struct AppState {
    verifier: Verifier,
}

async fn whoami(auth: Authenticated) -> String {
    auth.sub.clone()
}

fn verifier_with(dpop: ProofSettings) -> Verifier {
    let keys = KeyCache::new(common::key_cache_settings(ISSUER)).unwrap();
    keys.replace_keys(JwkSet { keys: vec![forger().jwk()] }).unwrap();
    let mut settings = VerifierSettings::new(ISSUER, common::AUDIENCE).with_public_url(PUBLIC_URL);
    settings.dpop = dpop;
    common::verifier_with_settings(keys, settings)
}

fn app(verifier: Verifier) -> Router {
    Router::new().route("/whoami", get(whoami)).with_state(AppState { verifier })
}

fn forger() -> &'static Forger {
    Forger::shared(Algorithm::EdDSA)
}

fn client_key(algorithm: Algorithm) -> ProofKey {
    ProofKey::generate(algorithm).unwrap()
}

/// A user token bound to `key`.
fn bound_token(key: &ProofKey) -> String {
    let mut claims = common::user_claims(ISSUER);
    claims["cnf"] = json!({ "jkt": key.thumbprint() });
    forger().sign(&claims)
}

fn proof(key: &ProofKey, method: &str, uri: &str, token: &str) -> String {
    key.proof(method, uri, Some(token), unix_now_i64()).unwrap()
}

/// A GET of `/whoami` with `authorization` and each of `proofs` as a `DPoP` header.
async fn call(app: &Router, authorization: &str, proofs: &[&str]) -> (StatusCode, Vec<String>) {
    let mut request = Request::get("/whoami").header(header::HOST, "localhost:8081");
    request = request.header(header::AUTHORIZATION, authorization);
    for proof in proofs {
        request = request.header("dpop", *proof);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let challenges = response
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    (response.status(), challenges)
}

/// The status of a call that should be refused for its proof, with that challenge checked.
async fn refused_proof(app: &Router, token: &str, proof: &str) -> StatusCode {
    let (status, challenges) = call(app, &format!("DPoP {token}"), &[proof]).await;
    if status == StatusCode::UNAUTHORIZED {
        assert!(challenges[0].starts_with(r#"DPoP error="invalid_dpop_proof""#), "{challenges:?}");
        assert!(challenges[0].contains(r#"algs="ES256 EdDSA""#), "{challenges:?}");
    }
    status
}

#[tokio::test]
async fn a_bound_token_with_a_fresh_proof_of_its_key_is_accepted_for_either_algorithm() {
    let app = app(verifier_with(ProofSettings::default()));
    for algorithm in [Algorithm::ES256, Algorithm::EdDSA] {
        let key = client_key(algorithm);
        let token = bound_token(&key);

        let first = call(&app, &format!("DPoP {token}"), &[&proof(&key, "GET", WHOAMI, &token)]).await;
        let again = call(&app, &format!("DPoP {token}"), &[&proof(&key, "GET", WHOAMI, &token)]).await;

        assert_eq!(first.0, StatusCode::OK, "{algorithm}: {:?}", first.1);
        assert_eq!(again.0, StatusCode::OK, "{algorithm}: the same token with a new proof");
    }
}

#[tokio::test]
async fn a_proof_is_accepted_once_and_its_replay_is_refused() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::ES256);
    let token = bound_token(&key);
    let proof = proof(&key, "GET", WHOAMI, &token);

    let first = call(&app, &format!("DPoP {token}"), &[&proof]).await;
    let replay = refused_proof(&app, &token, &proof).await;

    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(replay, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_proof_for_another_method_or_uri_is_refused_but_a_query_is_ignored() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::EdDSA);
    let token = bound_token(&key);

    for (method, uri) in [
        ("POST", WHOAMI),
        ("get", WHOAMI),
        ("GET", "https://api.example.com/users/orders"),
        ("GET", "http://api.example.com/users/whoami"),
        // What the Host header alone would suggest: not the public URL.
        ("GET", "http://localhost:8081/whoami"),
    ] {
        let status = refused_proof(&app, &token, &proof(&key, method, uri, &token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    let with_query = proof(&key, "GET", "https://API.example.com:443/users/whoami?page=2#top", &token);
    assert_eq!(call(&app, &format!("DPoP {token}"), &[&with_query]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_proof_without_the_hash_of_this_token_is_refused() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::EdDSA);
    let token = bound_token(&key);
    let other_token = bound_token(&key);
    let now = unix_now_i64();

    let for_other_token = proof(&key, "GET", WHOAMI, &other_token);
    let without_ath = key.proof("GET", WHOAMI, None, now).unwrap();

    assert_eq!(refused_proof(&app, &token, &for_other_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(refused_proof(&app, &token, &without_ath).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_proof_signed_by_another_key_than_the_bound_one_is_refused() {
    let app = app(verifier_with(ProofSettings::default()));
    let victim = client_key(Algorithm::ES256);
    let thief = client_key(Algorithm::ES256);
    let stolen = bound_token(&victim);

    let status = refused_proof(&app, &stolen, &proof(&thief, "GET", WHOAMI, &stolen)).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn claims_for(token: &str) -> Value {
    json!({ "jti": common::unique_id(), "htm": "GET", "htu": WHOAMI, "iat": unix_now_i64(), "ath": token_hash(token) })
}

#[tokio::test]
async fn a_proof_whose_jwk_carries_a_private_key_is_refused() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::ES256);
    let token = bound_token(&key);
    let mut header = key.header();
    // Any private member will do: the point is that it is there at all.
    header["jwk"]["d"] = json!("bm90LWEtcmVhbC1rZXk");

    let status = refused_proof(&app, &token, &key.sign(&header, &claims_for(&token)).unwrap()).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_proof_with_alg_none_or_hmac_keyed_with_the_public_key_is_refused() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::EdDSA);
    let token = bound_token(&key);
    let claims = claims_for(&token);

    let mut header = key.header();
    header["alg"] = json!("none");
    let unsigned = format!("{}.", common::signing_input(&header, &claims));
    // HS256 keyed with the public key the proof carries: an algorithm-confusion attempt.
    let mut hmac_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hmac_header.typ = Some("dpop+jwt".into());
    hmac_header.jwk = Some(serde_json::from_value(serde_json::to_value(key.public_jwk()).unwrap()).unwrap());
    let public_key = serde_json::to_vec(&key.public_jwk()).unwrap();
    let hmac =
        jsonwebtoken::encode(&hmac_header, &claims, &jsonwebtoken::EncodingKey::from_secret(&public_key))
            .unwrap();
    let mut header = key.header();
    header["alg"] = json!("RS256");
    let rsa_named = key.sign(&header, &claims).unwrap();

    for (name, proof) in [("none", unsigned), ("HS256", hmac), ("RS256 on an OKP key", rsa_named)] {
        assert_eq!(refused_proof(&app, &token, &proof).await, StatusCode::UNAUTHORIZED, "{name}");
    }
}

#[tokio::test]
async fn a_proof_of_another_type_or_without_a_key_is_refused() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::ES256);
    let token = bound_token(&key);

    let mut typ_jwt = key.header();
    typ_jwt["typ"] = json!("JWT");
    let mut no_jwk = key.header();
    no_jwk.as_object_mut().unwrap().remove("jwk");

    for header in [typ_jwt, no_jwk] {
        let proof = key.sign(&header, &claims_for(&token)).unwrap();
        assert_eq!(refused_proof(&app, &token, &proof).await, StatusCode::UNAUTHORIZED, "{header}");
    }
}

#[tokio::test]
async fn a_proof_made_outside_the_iat_window_is_refused() {
    let window = 60;
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::EdDSA);
    let token = bound_token(&key);
    let now = unix_now_i64();

    for (skew, expected) in [
        (-2 * window, StatusCode::UNAUTHORIZED),
        (2 * window, StatusCode::UNAUTHORIZED),
        (-window / 2, StatusCode::OK),
        (window / 2, StatusCode::OK),
    ] {
        let proof = key.proof("GET", WHOAMI, Some(&token), now + skew).unwrap();
        assert_eq!(refused_proof(&app, &token, &proof).await, expected, "iat {skew:+} s");
    }
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_refused_with_a_dpop_challenge() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::ES256);
    let token = bound_token(&key);

    let (status, challenges) = call(&app, &format!("Bearer {token}"), &[]).await;
    let with_proof = call(&app, &format!("Bearer {token}"), &[&proof(&key, "GET", WHOAMI, &token)]).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenges[0].starts_with(r#"DPoP error="invalid_token""#), "{challenges:?}");
    assert_eq!(with_proof.0, StatusCode::UNAUTHORIZED, "a proof does not make the Bearer scheme right");
}

#[tokio::test]
async fn an_unbound_token_sent_with_the_dpop_scheme_is_refused() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::ES256);
    let unbound = forger().sign(&common::user_claims(ISSUER));

    let (status, challenges) =
        call(&app, &format!("DPoP {unbound}"), &[&proof(&key, "GET", WHOAMI, &unbound)]).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenges[0].starts_with(r#"DPoP error="invalid_token""#), "{challenges:?}");
}

#[tokio::test]
async fn the_dpop_scheme_needs_exactly_one_proof_header() {
    let app = app(verifier_with(ProofSettings::default()));
    let key = client_key(Algorithm::ES256);
    let token = bound_token(&key);
    let (one, two) = (proof(&key, "GET", WHOAMI, &token), proof(&key, "GET", WHOAMI, &token));

    let none = call(&app, &format!("DPoP {token}"), &[]).await;
    let both = call(&app, &format!("DPoP {token}"), &[&one, &two]).await;

    for (status, challenges) in [none, both] {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenges[0].starts_with(r#"DPoP error="invalid_dpop_proof""#), "{challenges:?}");
    }
}

#[tokio::test]
async fn without_a_token_both_schemes_are_offered() {
    let app = app(verifier_with(ProofSettings::default()));

    let response = app.oneshot(Request::get("/whoami").body(Body::empty()).unwrap()).await.unwrap();

    let challenges: Vec<_> = response.headers().get_all(header::WWW_AUTHENTICATE).iter().collect();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenges, ["Bearer", r#"DPoP algs="ES256 EdDSA""#]);
}

#[tokio::test]
async fn a_full_replay_cache_fails_closed_with_503() {
    let app = app(verifier_with(ProofSettings { replay_capacity: 2, ..ProofSettings::default() }));
    let key = client_key(Algorithm::EdDSA);
    let token = bound_token(&key);

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(call(&app, &format!("DPoP {token}"), &[&proof(&key, "GET", WHOAMI, &token)]).await.0);
    }

    assert_eq!(statuses, [StatusCode::OK, StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE]);
}

#[tokio::test]
async fn a_verifier_without_a_public_url_takes_no_dpop_tokens() {
    let keys = KeyCache::new(common::key_cache_settings(ISSUER)).unwrap();
    keys.replace_keys(JwkSet { keys: vec![forger().jwk()] }).unwrap();
    let app = app(common::verifier_with_settings(keys, VerifierSettings::new(ISSUER, common::AUDIENCE)));
    let key = client_key(Algorithm::EdDSA);
    let token = bound_token(&key);

    let (status, _) = call(&app, &format!("DPoP {token}"), &[&proof(&key, "GET", WHOAMI, &token)]).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
