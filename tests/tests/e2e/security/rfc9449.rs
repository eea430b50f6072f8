//! RFC 9449 (DPoP) at a real service: users-service, in-process, behind a "proxy" (its
//! `PUBLIC_URL` is another origin than the one the test connects to). §4.3 the proof checks, §7.1
//! the `DPoP` scheme, §7.2 a bound token sent as a bearer token, §11.1 replay, §11.2 a proof made
//! ahead of time. Every refusal must be a 401 with a `DPoP` challenge naming the error.

use serde_json::{Value, json};
use shared_auth::dpop::{ProofKey, token_hash};
use shared_auth::jws::Algorithm;
use shared_auth::time::unix_now_i64;

use super::harness::{KID_EDDSA, header_for, sign_json, trusted_issuer, trusted_keys, user_claims};

/// The URL clients use, as a proxy in front of the service would publish it.
const PUBLIC_URL: &str = "https://api.example.test/users";
const ME: &str = "https://api.example.test/users/v1/users/me";

struct DpopUsersApp {
    url: String,
    http: reqwest::Client,
    issuer: String,
    _database: testkit::TestDatabase,
    _issuer: testkit::FakeIssuer,
}

impl DpopUsersApp {
    async fn start() -> Self {
        let issuer = trusted_issuer().await;
        let database = testkit::TestDatabase::sqlite();
        let started = testkit::start_resource_service(
            &users_service::SERVICE,
            users_service::api,
            &issuer.url,
            &database,
            |config| config.public_url = Some(PUBLIC_URL.to_owned()),
        )
        .await;
        Self {
            url: started.url,
            http: reqwest::Client::new(),
            issuer: issuer.url.clone(),
            _database: database,
            _issuer: issuer,
        }
    }

    fn bound_token(&self, key: &ProofKey) -> String {
        let mut claims = user_claims(&self.issuer, "users-service");
        claims["cnf"] = json!({ "jkt": key.thumbprint() });
        sign_json(&trusted_keys().eddsa, &header_for(KID_EDDSA), &claims)
    }

    fn unbound_token(&self) -> String {
        sign_json(&trusted_keys().eddsa, &header_for(KID_EDDSA), &user_claims(&self.issuer, "users-service"))
    }

    /// `GET /v1/users/me` with `authorization` and these proofs; the status and the challenge.
    async fn get(&self, authorization: &str, proofs: &[&str]) -> (u16, String) {
        let mut request =
            self.http.get(format!("{}/v1/users/me", self.url)).header("Authorization", authorization);
        for proof in proofs {
            request = request.header("DPoP", *proof);
        }
        let response = request.send().await.unwrap();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (response.status().as_u16(), challenge)
    }
}

/// A `jti` no other proof of this test binary has: the verifier's replay cache is per service.
fn fresh_jti() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("crafted-{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn proof_claims(token: &str) -> Value {
    json!({ "jti": fresh_jti(), "htm": "GET", "htu": ME, "iat": unix_now_i64(), "ath": token_hash(token) })
}

fn crafted(key: &ProofKey, token: &str, adjust: impl FnOnce(&mut Value, &mut Value)) -> String {
    let (mut header, mut claims) = (key.header(), proof_claims(token));
    adjust(&mut header, &mut claims);
    key.sign(&header, &claims).unwrap()
}

#[tokio::test]
async fn section_4_3_every_proof_check_refuses_with_invalid_dpop_proof() {
    let app = DpopUsersApp::start().await;
    let key = ProofKey::generate(Algorithm::ES256).unwrap();
    let other = ProofKey::generate(Algorithm::ES256).unwrap();
    let token = app.bound_token(&key);
    let used = key.proof("GET", ME, Some(&token), unix_now_i64()).unwrap();
    let control = app.get(&format!("DPoP {token}"), &[&used]).await;
    assert_eq!(control.0, 200, "control: a fresh proof of the bound key is accepted: {control:?}");
    let unsigned = format!(
        "{}.",
        crafted(&key, &token, |header, _| header["alg"] = json!("none")).rsplit_once('.').unwrap().0
    );
    let local_url = format!("{}/v1/users/me", app.url);

    let cases = [
        ("§11.1 the same proof again", used.clone()),
        ("point 2: not a JWS", "not.a.proof".to_owned()),
        ("point 4: typ JWT", crafted(&key, &token, |header, _| header["typ"] = json!("JWT"))),
        ("point 5: alg none", unsigned),
        ("point 5: alg HS256", crafted(&key, &token, |header, _| header["alg"] = json!("HS256"))),
        ("point 6: signed by another key than its jwk", {
            let mut header = key.header();
            header["jwk"] = serde_json::to_value(other.public_jwk()).unwrap();
            key.sign(&header, &proof_claims(&token)).unwrap()
        }),
        (
            "point 7: a private key in jwk",
            crafted(&key, &token, |header, _| header["jwk"]["d"] = json!("c2VjcmV0")),
        ),
        ("point 8: htm POST", crafted(&key, &token, |_, claims| claims["htm"] = json!("POST"))),
        (
            "point 9: htu the address connected to, not PUBLIC_URL",
            crafted(&key, &token, |_, claims| claims["htu"] = json!(local_url)),
        ),
        (
            "point 9: htu another path",
            crafted(&key, &token, |_, claims| claims["htu"] = json!(format!("{PUBLIC_URL}/v1/users"))),
        ),
        (
            "point 11 / §11.2: iat 5 minutes ahead",
            crafted(&key, &token, |_, claims| claims["iat"] = json!(unix_now_i64() + 300)),
        ),
        (
            "point 11: iat 5 minutes old",
            crafted(&key, &token, |_, claims| claims["iat"] = json!(unix_now_i64() - 300)),
        ),
        (
            "point 12: ath missing",
            crafted(&key, &token, |_, claims| {
                claims.as_object_mut().unwrap().remove("ath");
            }),
        ),
        (
            "point 12: ath of another token",
            crafted(&key, &token, |_, claims| claims["ath"] = json!(token_hash("other"))),
        ),
        (
            "point 12: a proof of another key than cnf.jkt",
            other.proof("GET", ME, Some(&token), unix_now_i64()).unwrap(),
        ),
    ];
    for (name, proof) in &cases {
        let (status, challenge) = app.get(&format!("DPoP {token}"), &[proof]).await;
        assert_eq!(status, 401, "{name}: {challenge}");
        assert!(challenge.starts_with(r#"DPoP error="invalid_dpop_proof""#), "{name}: {challenge}");
    }
    let (a, b) = (
        key.proof("GET", ME, Some(&token), unix_now_i64()).unwrap(),
        key.proof("GET", ME, Some(&token), unix_now_i64()).unwrap(),
    );
    let (status, challenge) = app.get(&format!("DPoP {token}"), &[&a, &b]).await;
    assert_eq!(status, 401, "point 1: two DPoP headers");
    assert!(challenge.starts_with(r#"DPoP error="invalid_dpop_proof""#), "{challenge}");
    println!("[rfc9449 §4.3] {} cases refused, the control accepted", cases.len() + 1);
}

#[tokio::test]
async fn section_7_a_bound_token_needs_the_dpop_scheme_and_the_scheme_needs_a_bound_token() {
    let app = DpopUsersApp::start().await;
    let key = ProofKey::generate(Algorithm::EdDSA).unwrap();
    let bound = app.bound_token(&key);
    let unbound = app.unbound_token();

    let as_bearer = app.get(&format!("Bearer {bound}"), &[]).await;
    let unbound_as_dpop = app
        .get(&format!("DPoP {unbound}"), &[&key.proof("GET", ME, Some(&unbound), unix_now_i64()).unwrap()])
        .await;
    let unbound_as_bearer = app.get(&format!("Bearer {unbound}"), &[]).await;

    assert_eq!(as_bearer.0, 401, "§7.2: a bound token downgraded to Bearer");
    assert!(as_bearer.1.starts_with(r#"DPoP error="invalid_token""#), "{}", as_bearer.1);
    assert_eq!(unbound_as_dpop.0, 401, "§7.1: an unbound token under the DPoP scheme");
    assert!(unbound_as_dpop.1.starts_with(r#"DPoP error="invalid_token""#), "{}", unbound_as_dpop.1);
    assert_eq!(unbound_as_bearer.0, 200, "control: the unbound token as Bearer");
}
