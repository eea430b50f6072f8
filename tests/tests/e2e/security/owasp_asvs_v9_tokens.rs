//! OWASP ASVS 5.0 chapter V9, self-contained tokens: integrity (9.1.1), the algorithm allow-list
//! (9.1.2), key material only from pre-configured sources (9.1.3), the validity time span
//! (9.2.1), token type and purpose (9.2.2), audience (9.2.3, 9.2.4).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use shared_auth::VerifyError;
use shared_auth::jws::Algorithm;
use shared_auth::revocation::{REVOCATION_LIST_TYPE, RevocationList, RevokedEntry};
use shared_auth::time::unix_now_i64;

use super::harness::{
    AuthApp, Case, Expect, KID_EDDSA, KID_ES256, KID_RS256, UsersApp, attacker_key, b64, check, header_for,
    sign_json, trusted_keys, user_claims, with, without,
};

/// ASVS 9.1.1: "self-contained tokens are validated using their digital signature ... before
/// accepting the token's contents". Claims changed after signing (sub, roles, exp, aud), the
/// payload re-serialised, the signature of another genuine token, a flipped bit, no signature,
/// and signatures by attacker keys under each trusted `kid`.
#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let app = UsersApp::start().await;
    let genuine = app.token();
    let (header, rest) = genuine.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let resigned =
        |claims: &Value| format!("{header}.{}.{signature}", b64(serde_json::to_vec(claims).unwrap()));
    let claims = app.claims();
    let flipped = {
        let mut bytes = base64_url_decode(signature);
        bytes[10] ^= 0x01;
        b64(bytes)
    };
    let other_signature = app.token().rsplit('.').next().unwrap().to_owned();
    let bad = Expect::Rejected(VerifyError::BadSignature);
    let mut cases = vec![
        Case::token(
            "sub changed to another user",
            resigned(&with(claims.clone(), "sub", json!("admin-1"))),
            bad,
        ),
        Case::token(
            "roles extended with admin",
            resigned(&with(claims.clone(), "roles", json!(["admin"]))),
            bad,
        ),
        Case::token(
            "exp extended by a year",
            resigned(&with(claims.clone(), "exp", json!(unix_now_i64() + 365 * 86_400))),
            bad,
        ),
        Case::token(
            "scope extended with users:read",
            resigned(&with(
                claims.clone(),
                "scope",
                json!("profile:read profile:write orders:read orders:write users:read"),
            )),
            bad,
        ),
        Case::token(
            "payload re-serialised with spaces",
            format!("{header}.{}.{signature}", b64(serde_json::to_string_pretty(&claims).unwrap())),
            bad,
        ),
        Case::token(
            "signature of another genuine token",
            format!("{}.{other_signature}", genuine.rsplit_once('.').unwrap().0),
            bad,
        ),
        Case::token(
            "one bit of the signature flipped",
            format!("{}.{flipped}", genuine.rsplit_once('.').unwrap().0),
            bad,
        ),
        Case::token("signature removed", format!("{}.", genuine.rsplit_once('.').unwrap().0), bad),
    ];
    for (kid, algorithm) in
        [(KID_EDDSA, Algorithm::EdDSA), (KID_ES256, Algorithm::ES256), (KID_RS256, Algorithm::RS256)]
    {
        let token = sign_json(attacker_key(algorithm), &header_for(kid), &claims);
        cases.push(Case::token(
            format!("signed by an attacker's {algorithm} key under kid {kid}"),
            token,
            bad,
        ));
    }
    check(&app, "ASVS 9.1.1: integrity", cases).await;
}

/// ASVS 9.1.2: "only algorithms on an allowlist can be used ... must not include the 'None'
/// algorithm". EdDSA, ES256, RS256 only, and only the one the named key is published for: every
/// other JWS algorithm name (and near-miss spelling) under the trusted EdDSA kid is refused, as
/// is an `alg` that is not a string. (`none` and HMAC: rfc8725.)
#[tokio::test]
async fn algorithms_off_the_allow_list_are_rejected() {
    let app = UsersApp::start().await;
    let with_alg = |alg: Value| {
        let mut header = header_for(KID_EDDSA);
        header["alg"] = alg;
        app.sign_header(&header)
    };
    let mut cases: Vec<Case> = [
        "PS256",
        "PS384",
        "PS512",
        "RS384",
        "RS512",
        "ES384",
        "ES512",
        "ES256K",
        "ES256",
        "RS256",
        "Ed25519",
        "Ed448",
        "eddsa",
        "EDDSA",
        "EdDSA ",
        " EdDSA",
        "EdDSA\u{0}",
        "RSA-OAEP",
        "RSA1_5",
        "dir",
        "A128KW",
        "ECDH-ES",
    ]
    .into_iter()
    .map(|alg| {
        Case::token(
            format!("alg {alg:?}"),
            with_alg(json!(alg)),
            Expect::Rejected(VerifyError::AlgorithmMismatch),
        )
    })
    .collect();
    for alg in [json!(1), json!(["EdDSA"]), json!({"EdDSA": true}), json!(true)] {
        cases.push(Case::token(
            format!("alg {alg} (not a string)"),
            with_alg(alg),
            Expect::Rejected(VerifyError::BadHeader),
        ));
    }
    check(&app, "ASVS 9.1.2: algorithm allow-list", cases).await;
}

/// A loopback listener that counts every connection made to it (and answers with an attacker's
/// key set, should anything ever ask).
struct Tripwire {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl Tripwire {
    async fn start(attacker_jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let body = attacker_jwks.to_string();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt as _;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { url, connections }
    }
}

/// ASVS 9.1.3: "key material ... is from trusted pre-configured sources ... headers such as
/// 'jku', 'x5u', and 'jwk' must be validated against an allowlist" (also RFC 8725 §3.10). Tokens
/// signed by an attacker's key that they embed (`jwk`), point to (`jku`, `x5u` on a loopback
/// listener the test owns), or chain (`x5c`), under the attacker's own kid and under a trusted
/// kid, are refused; and nothing ever connects to the attacker's URLs.
#[tokio::test]
async fn embedded_or_referenced_keys_are_never_used_or_fetched() {
    let app = UsersApp::start().await;
    let attacker = attacker_key(Algorithm::EdDSA);
    let attacker_jwk = serde_json::to_value(attacker.verifying_key().to_jwk("attacker")).unwrap();
    let tripwire = Tripwire::start(json!({"keys": [attacker_jwk.clone()]})).await;
    let jku = format!("{}/.well-known/jwks.json", tripwire.url);
    let x5u = format!("{}/cert.pem", tripwire.url);
    let self_signed_chain =
        json!([b64_standard(b"not really a certificate, but the verifier must not look")]);
    let mut trusted_jwk_copy = attacker_jwk.clone();
    trusted_jwk_copy["kid"] = json!(KID_EDDSA);
    let mut cases = Vec::new();
    for (label, member, value) in [
        ("jwk", "jwk", attacker_jwk.clone()),
        ("jwk relabelled with the trusted kid", "jwk", trusted_jwk_copy),
        ("jku", "jku", json!(jku)),
        ("x5u", "x5u", json!(x5u)),
        ("x5c", "x5c", self_signed_chain),
    ] {
        for (kid_label, kid, expect) in [
            ("attacker's kid", "attacker", VerifyError::UnknownKid),
            ("trusted kid", KID_EDDSA, VerifyError::BadSignature),
        ] {
            let mut header = header_for(KID_EDDSA);
            header["kid"] = json!(kid);
            header[member] = value.clone();
            let token = sign_json(attacker, &header, &app.claims());
            cases.push(Case::token(format!("{label}, {kid_label}"), token, Expect::Rejected(expect)));
        }
    }
    let mut no_kid = header_for(KID_EDDSA);
    no_kid.as_object_mut().unwrap().remove("kid");
    no_kid["jwk"] = attacker_jwk;
    no_kid["jku"] = json!(jku);
    cases.push(Case::token(
        "jwk and jku without any kid",
        sign_json(attacker, &no_kid, &app.claims()),
        Expect::Rejected(VerifyError::BadHeader),
    ));
    let count = check(&app, "ASVS 9.1.3: key sources", cases).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connections = tripwire.connections.load(Ordering::SeqCst);
    assert_eq!(
        connections, 0,
        "{count} tokens pointing at the attacker's URLs caused {connections} connections"
    );
}

/// ASVS 9.2.1: "the token and its content are accepted only if the verification time is within
/// this validity time span ... 'nbf' and 'exp' must be verified" (RFC 9068 §4 step 6, RFC 7519
/// §4.1.4-6 with a 30 s leeway). Dates are integers: strings, fractions, exponents, huge values,
/// null and other types are invalid claims, never "no limit". A null `nbf` counts as absent
/// (`iat` still bounds the start).
#[tokio::test]
async fn only_tokens_inside_their_validity_window_are_accepted() {
    let app = UsersApp::start().await;
    let now = unix_now_i64();
    let sign_raw_claim = |claim: &str, literal: &str| {
        let claims = serde_json::to_string(&without(app.claims(), claim)).unwrap();
        let claims = format!(r#"{{"{claim}":{literal},{}"#, &claims[1..]);
        super::harness::sign_raw(
            &trusted_keys().eddsa,
            &serde_json::to_vec(&header_for(KID_EDDSA)).unwrap(),
            claims.as_bytes(),
        )
    };
    let set = |claim: &str, value: Value| app.sign_claims(&with(app.claims(), claim, value));
    let expired = Expect::Rejected(VerifyError::Expired);
    let early = Expect::Rejected(VerifyError::NotYetValid);
    let bad = Expect::Rejected(VerifyError::BadClaims);
    let cases = vec![
        Case::token("exp an hour ago", set("exp", json!(now - 3600)), expired),
        Case::token("exp 31 s ago (past the leeway)", set("exp", json!(now - 31)), expired),
        Case::token("exp 30 s ago (exactly the leeway)", set("exp", json!(now - 30)), expired),
        Case::token("exp 0", set("exp", json!(0)), expired),
        Case::token("exp negative", set("exp", json!(-1)), expired),
        Case::token("exp i64::MIN", set("exp", json!(i64::MIN)), expired),
        Case::token("exp \"9999999999\" (string)", set("exp", json!("9999999999")), bad),
        Case::token("exp 9999999999.5 (float)", set("exp", json!(9_999_999_999.5)), bad),
        Case::token("exp 9999999999.0 (integral float)", sign_raw_claim("exp", "9999999999.0"), bad),
        Case::token("exp 1e10 (exponent)", sign_raw_claim("exp", "1e10"), bad),
        Case::token("exp 1e300", sign_raw_claim("exp", "1e300"), bad),
        Case::token("exp 1e400 (overflows f64)", sign_raw_claim("exp", "1e400"), bad),
        Case::token("exp 2^64 - 1 (beyond i64)", sign_raw_claim("exp", "18446744073709551615"), bad),
        Case::token("exp 10^30", sign_raw_claim("exp", "1000000000000000000000000000000"), bad),
        Case::token("exp null", set("exp", Value::Null), bad),
        Case::token("exp true", set("exp", json!(true)), bad),
        Case::token("exp [9999999999]", set("exp", json!([9_999_999_999_i64])), bad),
        Case::token("nbf in an hour", set("nbf", json!(now + 3600)), early),
        // `now` is read once, before every case is signed and sent: a margin of 10 s over the
        // 30 s leeway, so a slow run cannot bring `nbf` back inside it (one did at 31 s).
        Case::token("nbf 40 s ahead (past the leeway)", set("nbf", json!(now + 40)), early),
        Case::token("nbf i64::MAX", set("nbf", json!(i64::MAX)), early),
        Case::token("nbf \"0\" (string)", set("nbf", json!("0")), bad),
        Case::token("nbf 0.5 (float)", set("nbf", json!(0.5)), bad),
        Case::token("nbf 1e300", sign_raw_claim("nbf", "1e300"), bad),
        Case::token("nbf -1e300", sign_raw_claim("nbf", "-1e300"), bad),
        Case::token("iat in an hour", set("iat", json!(now + 3600)), early),
        Case::token(
            "iat in an hour, nbf now",
            app.sign_claims(&with(with(app.claims(), "iat", json!(now + 3600)), "nbf", json!(now))),
            early,
        ),
        Case::token("iat \"now\" (string)", set("iat", json!(now.to_string())), bad),
        Case::token("exp 10 s ago is inside the leeway", set("exp", json!(now - 10)), Expect::Accepted),
        Case::token("nbf 10 s ahead is inside the leeway", set("nbf", json!(now + 10)), Expect::Accepted),
        Case::token("nbf negative (long past)", set("nbf", json!(-1)), Expect::Accepted),
        Case::token("nbf null counts as absent", set("nbf", Value::Null), Expect::Accepted),
        Case::token("nbf absent", app.sign_claims(&without(app.claims(), "nbf")), Expect::Accepted),
    ];
    check(&app, "ASVS 9.2.1: validity time span", cases).await;
}

/// ASVS 9.2.2: "the service receiving a token validates the token to be the correct type and is
/// meant for the intended purpose" (also RFC 8725 §3.11-3.12, explicit typing and mutually
/// exclusive validation): the issuer's own signed revocation list, an ID token, a logout token
/// and an opaque refresh token presented as access tokens; an ID-token-shaped payload under an
/// access-token header; a service token on a route for people.
#[tokio::test]
async fn only_access_tokens_are_accepted_for_access() {
    let app = UsersApp::start().await;
    let now = unix_now_i64();
    let key = &trusted_keys().eddsa;
    let revocation_list = RevocationList {
        iss: app.issuer.url.clone(),
        iat: now,
        sessions: vec![RevokedEntry { id: "other".into(), exp: now + 60 }],
        ..RevocationList::default()
    };
    let revocation_jwt =
        shared_auth::jws::sign_compact(key, KID_EDDSA, REVOCATION_LIST_TYPE, &revocation_list).unwrap();
    let typed = |typ: &str, claims: &Value| {
        let mut header = header_for(KID_EDDSA);
        header["typ"] = json!(typ);
        sign_json(key, &header, claims)
    };
    let id_token_claims = without(with(app.claims(), "nonce", json!("n-0S6_WzA2Mj")), "client_id");
    let refresh_token_like = b64([7u8; 32]);
    let service_token = sign_json(
        key,
        &header_for(KID_EDDSA),
        &super::harness::service_claims(&app.issuer.url, "users-service", "users:read"),
    );
    let wrong_type = Expect::Rejected(VerifyError::WrongType);
    let cases = vec![
        Case::token("the signed revocation list (typ revocations+jwt)", revocation_jwt, wrong_type),
        Case::token("an ID token (typ JWT, nonce, no client_id)", typed("JWT", &id_token_claims), wrong_type),
        Case::token(
            "a logout token (typ logout+jwt)",
            typed(
                "logout+jwt",
                &with(
                    app.claims(),
                    "events",
                    json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
                ),
            ),
            wrong_type,
        ),
        Case::token(
            "ID-token claims under an at+jwt header (no client_id)",
            app.sign_claims(&id_token_claims),
            Expect::Rejected(VerifyError::BadClaims),
        ),
        Case::token("an opaque refresh token", refresh_token_like, Expect::Rejected(VerifyError::Malformed)),
        Case::token("a service token on a route for users", service_token, Expect::InsufficientScope),
    ];
    check(&app, "ASVS 9.2.2: token type and purpose", cases).await;
}

/// ASVS 9.2.3: "the service only accepts tokens which are intended for use with that service
/// (audience)": genuine tokens issued for the platform's other service, or for a service this
/// one has never heard of, are replayed here and refused. (Spellings and types of `aud`:
/// rfc9068_section4.)
#[tokio::test]
async fn tokens_for_another_service_are_rejected() {
    let app = UsersApp::start().await;
    let issuer = app.issuer.url.clone();
    let for_audience = |audience: &str| {
        sign_json(&trusted_keys().eddsa, &header_for(KID_EDDSA), &user_claims(&issuer, audience))
    };
    let wrong = Expect::Rejected(VerifyError::WrongAudience);
    let cases = vec![
        Case::token("a genuine orders-service token", for_audience("orders-service"), wrong),
        Case::token("a genuine token for an unknown service", for_audience("billing-service"), wrong),
        Case::token("a genuine token for the auth server itself", for_audience(&issuer), wrong),
    ];
    check(&app, "ASVS 9.2.3: audience", cases).await;
}

/// ASVS 9.2.4: "if a token issuer uses the same private key for issuing tokens to different
/// audiences, the issued tokens contain an audience restriction that uniquely identifies the
/// intended audiences". The real auth server: a login token names exactly the configured
/// services; a client-credentials token only the audiences its client is registered for; asking
/// for any other audience is `invalid_scope`.
#[tokio::test]
async fn the_issuer_restricts_every_token_to_named_audiences() {
    let auth = AuthApp::start().await;
    let login = auth.registered_login("audience-user", "audience-password").await;
    let user_audience = claims_of(login["access_token"].as_str().unwrap())["aud"].clone();
    assert_eq!(user_audience, json!(["users-service", "orders-service"]));

    let secret = auth_server::clients::generate_secret();
    auth_server::clients::create(
        &auth.state.pool,
        "reporter",
        &secret,
        &["users:read".into()],
        &["users-service".into()],
    )
    .await
    .unwrap();
    let secret = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    let token_request = |audience: Option<&'static str>| {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(audience) = audience {
            form.push(("audience", audience));
        }
        auth.http
            .post(format!("{}/oauth2/token", auth.url))
            .basic_auth("reporter", Some(&secret))
            .form(&form)
            .send()
    };
    let granted: Value = token_request(None).await.unwrap().json().await.unwrap();
    assert_eq!(claims_of(granted["access_token"].as_str().unwrap())["aud"], json!(["users-service"]));
    for audience in ["orders-service", "users-service orders-service", "*"] {
        let response = token_request(Some(audience)).await.unwrap();
        assert_eq!(response.status(), 400, "audience {audience:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_scope", "audience {audience:?}");
    }
    println!("[ASVS 9.2.4: audience restriction at the issuer] 5 cases: all as required");
}

/// The claims of a token, unverified (the issuer's own output, read back).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64_url_decode(payload)).unwrap()
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn b64_standard(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// ASVS 9.2.1 ("the token and its content are accepted only if the verification time is within
/// this validity time span") with RFC 8725 §3.10's distrust of what a token says about itself:
/// a validity span longer than the verifier's maximum lifetime (`TOKEN_MAX_LIFETIME_SECS`,
/// default 24 h) is refused 401 for that reason, however well signed, by each trusted key, and
/// whether `exp` is far ahead or `iat` far back. Exactly the maximum is accepted. A service
/// configured with 1 h holds tokens to that.
#[tokio::test]
async fn tokens_living_longer_than_the_maximum_lifetime_are_rejected() {
    const DAY: i64 = 24 * 3600;
    let app = UsersApp::start().await;
    let now = unix_now_i64();
    let span = |iat: i64, exp: i64| with(with(app.claims(), "iat", json!(iat)), "exp", json!(exp));
    let too_long = Expect::Rejected(VerifyError::LifetimeTooLong);
    let mut cases = vec![
        Case::token("exp a day and a second after iat", app.sign_claims(&span(now, now + DAY + 1)), too_long),
        Case::token("exp a year ahead", app.sign_claims(&span(now, now + 365 * DAY)), too_long),
        Case::token("exp i64::MAX", app.sign_claims(&span(now, i64::MAX)), too_long),
        Case::token(
            "iat a year back, exp in 15 min",
            app.sign_claims(&span(now - 365 * DAY, now + 900)),
            too_long,
        ),
        Case::token("iat 0, exp in 15 min", app.sign_claims(&span(0, now + 900)), too_long),
        Case::token(
            "iat i64::MIN, exp in 15 min (the span overflows)",
            app.sign_claims(&span(i64::MIN, now + 900)),
            too_long,
        ),
        Case::token(
            "nbf now does not shorten a long span",
            app.sign_claims(&with(span(now - 2 * DAY, now + 900), "nbf", json!(now))),
            too_long,
        ),
        Case::token("exactly 24 h is accepted", app.sign_claims(&span(now, now + DAY)), Expect::Accepted),
    ];
    for (kid, key) in trusted_keys().all() {
        cases.push(Case::token(
            format!("a 48 h token signed by the trusted {kid}"),
            sign_json(key, &header_for(kid), &span(now, now + 2 * DAY)),
            too_long,
        ));
    }
    check(&app, "ASVS 9.2.1: maximum lifetime (default 24 h)", cases).await;

    let strict = UsersApp::start_with_max_lifetime(Some(3600)).await;
    let span = |seconds: i64| with(with(strict.claims(), "iat", json!(now)), "exp", json!(now + seconds));
    let cases = vec![
        Case::token("3601 s with TOKEN_MAX_LIFETIME_SECS=3600", strict.sign_claims(&span(3601)), too_long),
        Case::token("a day with TOKEN_MAX_LIFETIME_SECS=3600", strict.sign_claims(&span(DAY)), too_long),
        Case::token("3600 s is accepted", strict.sign_claims(&span(3600)), Expect::Accepted),
    ];
    check(&strict, "ASVS 9.2.1: maximum lifetime (TOKEN_MAX_LIFETIME_SECS)", cases).await;
}
