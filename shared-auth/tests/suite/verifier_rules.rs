//! The verifier's rejection rules (RFC 8725, RFC 9068 §4), checked with tokens forged by keys
//! the tests hold: everything a service must refuse is refused, for the right reason.
use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ALGORITHMS, AUDIENCE, Forger, UNREACHABLE_ISSUER as ISSUER};
use serde_json::json;
use shared_auth::jws::{self, Algorithm, JwkSet};
use shared_auth::time::{ManualClock, unix_now_i64};
use shared_auth::{KeyCache, VerifierSettings, VerifyError};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn eddsa() -> &'static Forger {
    Forger::shared(Algorithm::EdDSA)
}

#[tokio::test]
async fn valid_tokens_of_every_algorithm_are_accepted_with_their_claims() {
    let verifier = common::offline_verifier_for_all_algorithms();
    for algorithm in ALGORITHMS {
        let claims = common::user_claims(ISSUER);
        let token = Forger::shared(algorithm).sign(&claims);

        let verified = verifier.verify(&token).await;

        let verified = verified.unwrap_or_else(|error| panic!("{algorithm}: {error}"));
        assert_eq!(verified.sub, "user-1");
        assert_eq!(verified.jti, claims["jti"].as_str().unwrap());
        assert_eq!(verified.sid.as_deref(), claims["sid"].as_str());
        assert!(verified.aud.iter().any(|audience| audience == AUDIENCE));
        assert_eq!(verified.preferred_username.as_deref(), Some("alice"));
    }
}

#[tokio::test]
async fn a_token_made_by_the_auth_servers_signing_helper_is_accepted() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let claims: shared_auth::AccessClaims = serde_json::from_value(common::user_claims(ISSUER)).unwrap();
    let token = jws::sign_compact(&forger.key, &forger.kid, "at+jwt", &claims).unwrap();

    let verified = verifier.verify(&token).await.unwrap();

    assert_eq!(*verified, claims);
}

#[tokio::test]
async fn alg_none_in_every_spelling_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let claims = common::user_claims(ISSUER);
    let genuine = forger.sign(&claims);
    let genuine_signature = URL_SAFE_NO_PAD.decode(genuine.rsplit('.').next().unwrap()).unwrap();

    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": forger.kid });
        for signature in [Vec::new(), genuine_signature.clone()] {
            let token = common::compact(&header, &claims, &signature);

            let result = verifier.verify(&token).await;

            assert_eq!(result.unwrap_err(), VerifyError::AlgorithmMismatch, "alg {alg:?}");
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_as_secret_is_rejected() {
    let verifier = common::offline_verifier_for_all_algorithms();
    for algorithm in ALGORITHMS {
        let forger = Forger::shared(algorithm);
        let jwk = forger.jwk();
        let raw_public_key = jwk.x.clone().or(jwk.n.clone()).unwrap();
        // What an attacker might feed an HMAC: the published JWK, its key bytes, both encodings.
        let secrets: Vec<Vec<u8>> = vec![
            serde_json::to_vec(&jwk).unwrap(),
            raw_public_key.clone().into_bytes(),
            URL_SAFE_NO_PAD.decode(&raw_public_key).unwrap(),
        ];
        for secret in secrets {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.typ = Some("at+jwt".into());
            header.kid = Some(forger.kid.clone());
            let token = jsonwebtoken::encode(
                &header,
                &common::user_claims(ISSUER),
                &jsonwebtoken::EncodingKey::from_secret(&secret),
            )
            .unwrap();

            let result = verifier.verify(&token).await;

            assert_eq!(result.unwrap_err(), VerifyError::AlgorithmMismatch, "{algorithm} key");
        }
    }
}

#[tokio::test]
async fn a_header_naming_another_algorithm_than_the_kids_key_is_rejected() {
    let verifier = common::offline_verifier_for_all_algorithms();
    for published in ALGORITHMS {
        for attacker in ALGORITHMS.into_iter().filter(|other| *other != published) {
            // Signed with a genuine key of the claimed algorithm, but under another key's kid.
            let header = json!({
                "alg": attacker.as_str(), "typ": "at+jwt", "kid": Forger::shared(published).kid
            });
            let token = Forger::shared(attacker).sign_with_header(&header, &common::user_claims(ISSUER));

            let result = verifier.verify(&token).await;

            assert_eq!(
                result.unwrap_err(),
                VerifyError::AlgorithmMismatch,
                "{attacker} header on a {published} key"
            );
        }
    }
}

#[tokio::test]
async fn a_token_without_the_access_token_type_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let headers = [
        json!({ "alg": "EdDSA", "kid": forger.kid }),
        json!({ "alg": "EdDSA", "kid": forger.kid, "typ": "JWT" }),
        json!({ "alg": "EdDSA", "kid": forger.kid, "typ": "jwt" }),
        json!({ "alg": "EdDSA", "kid": forger.kid, "typ": "revocations+jwt" }),
        json!({ "alg": "EdDSA", "kid": forger.kid, "typ": "id_token+jwt" }),
        json!({ "alg": "EdDSA", "kid": forger.kid, "typ": "" }),
        json!({ "alg": "EdDSA", "kid": forger.kid, "typ": null }),
    ];
    for header in headers {
        let token = forger.sign_with_header(&header, &common::user_claims(ISSUER));

        let result = verifier.verify(&token).await;

        assert_eq!(result.unwrap_err(), VerifyError::WrongType, "{header}");
    }
}

#[tokio::test]
async fn both_spellings_of_the_access_token_type_are_accepted() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    for typ in ["at+jwt", "application/at+jwt"] {
        let header = json!({ "alg": "EdDSA", "kid": forger.kid, "typ": typ });
        let token = forger.sign_with_header(&header, &common::user_claims(ISSUER));

        let result = verifier.verify(&token).await;

        assert_eq!(result.unwrap().sub, "user-1", "typ {typ}");
    }
}

#[tokio::test]
async fn a_token_from_another_issuer_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    for issuer in ["http://evil.example", "http://127.0.0.1:9/", "HTTP://127.0.0.1:9", ""] {
        let token = forger.sign(&common::user_claims(issuer));

        let result = verifier.verify(&token).await;

        assert_eq!(result.unwrap_err(), VerifyError::WrongIssuer, "iss {issuer:?}");
    }
}

#[tokio::test]
async fn a_token_whose_audience_does_not_name_this_service_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    for audience in [json!(["orders-service"]), json!("orders-service"), json!([]), json!(["users"])] {
        let mut claims = common::user_claims(ISSUER);
        claims["aud"] = audience.clone();
        let token = forger.sign(&claims);

        let result = verifier.verify(&token).await;

        assert_eq!(result.unwrap_err(), VerifyError::WrongAudience, "aud {audience}");
    }
}

#[tokio::test]
async fn an_audience_given_as_a_single_string_naming_this_service_is_accepted() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let mut claims = common::user_claims(ISSUER);
    claims["aud"] = json!(AUDIENCE);

    let result = verifier.verify(&forger.sign(&claims)).await;

    assert_eq!(result.unwrap().aud, vec![AUDIENCE.to_owned()]);
}

#[tokio::test]
async fn a_token_expired_beyond_the_leeway_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    assert_eq!(verifier.settings().leeway, Duration::from_secs(30));
    let now = unix_now_i64();
    let mut claims = common::user_claims(ISSUER);
    claims["iat"] = json!(now - 960);
    claims["nbf"] = json!(now - 960);
    claims["exp"] = json!(now - 60);

    let result = verifier.verify(&forger.sign(&claims)).await;

    assert_eq!(result.unwrap_err(), VerifyError::Expired);
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_still_accepted() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let now = unix_now_i64();
    let mut claims = common::user_claims(ISSUER);
    claims["iat"] = json!(now - 910);
    claims["nbf"] = json!(now - 910);
    claims["exp"] = json!(now - 10);

    let result = verifier.verify(&forger.sign(&claims)).await;

    assert_eq!(result.unwrap().exp, now - 10);
}

#[tokio::test]
async fn a_token_living_longer_than_the_maximum_lifetime_is_rejected_however_well_signed() {
    let forger = eddsa();
    let keys = KeyCache::new(common::key_cache_settings(ISSUER)).unwrap();
    keys.replace_keys(forger.jwks()).unwrap();
    let mut settings = VerifierSettings::new(ISSUER, AUDIENCE);
    settings.max_token_lifetime = Duration::from_secs(3600);
    let verifier = common::verifier_with_settings(keys, settings);
    let now = unix_now_i64();
    let mut at_the_maximum = common::user_claims(ISSUER);
    at_the_maximum["exp"] = json!(now + 3600);
    let mut one_second_longer = common::user_claims(ISSUER);
    one_second_longer["exp"] = json!(now + 3601);
    let mut issued_long_ago = common::user_claims(ISSUER);
    issued_long_ago["iat"] = json!(now - 3000);
    issued_long_ago["nbf"] = json!(now - 3000);
    issued_long_ago["exp"] = json!(now + 601);

    let accepted = verifier.verify(&forger.sign(&at_the_maximum)).await;
    let too_long = verifier.verify(&forger.sign(&one_second_longer)).await;
    let too_long_from_iat = verifier.verify(&forger.sign(&issued_long_ago)).await;

    assert!(accepted.is_ok(), "{accepted:?}");
    assert_eq!(too_long.unwrap_err(), VerifyError::LifetimeTooLong);
    assert_eq!(too_long_from_iat.unwrap_err(), VerifyError::LifetimeTooLong);
}

#[test]
fn the_default_maximum_token_lifetime_is_a_day() {
    let settings = VerifierSettings::new(ISSUER, AUDIENCE);

    assert_eq!(settings.max_token_lifetime, Duration::from_secs(24 * 3600));
}

#[tokio::test]
async fn a_token_not_valid_before_a_future_time_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let now = unix_now_i64();
    let mut future_nbf = common::user_claims(ISSUER);
    future_nbf["nbf"] = json!(now + 120);
    let mut future_iat = common::user_claims(ISSUER);
    future_iat["iat"] = json!(now + 120);
    future_iat["nbf"] = json!(now);

    for claims in [future_nbf, future_iat] {
        let result = verifier.verify(&forger.sign(&claims)).await;

        assert_eq!(result.unwrap_err(), VerifyError::NotYetValid, "{claims}");
    }
}

#[tokio::test]
async fn a_token_missing_any_required_claim_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    for required in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] {
        let mut claims = common::user_claims(ISSUER);
        claims.as_object_mut().unwrap().remove(required);

        let result = verifier.verify(&forger.sign(&claims)).await;

        assert_eq!(result.unwrap_err(), VerifyError::BadClaims, "without {required}");
    }
}

#[tokio::test]
async fn a_token_with_an_empty_or_mistyped_required_claim_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let cases = [
        ("sub", json!("")),
        ("jti", json!("")),
        ("client_id", json!("")),
        ("exp", json!("9999999999")),
        ("exp", json!(null)),
        ("iat", json!(1.5)),
        ("aud", json!(42)),
    ];
    for (claim, value) in cases {
        let mut claims = common::user_claims(ISSUER);
        claims[claim] = value.clone();

        let result = verifier.verify(&forger.sign(&claims)).await;

        assert_eq!(result.unwrap_err(), VerifyError::BadClaims, "{claim} = {value}");
    }
}

#[tokio::test]
async fn a_token_with_a_crit_header_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    for crit in [json!(["exp"]), json!(["b64"]), json!([])] {
        let mut header = forger.header();
        header["crit"] = crit.clone();
        let token = forger.sign_with_header(&header, &common::user_claims(ISSUER));

        let result = verifier.verify(&token).await;

        assert_eq!(result.unwrap_err(), VerifyError::CriticalHeader, "crit {crit}");
    }
}

#[tokio::test]
async fn key_location_headers_are_never_fetched_nor_trusted() {
    let genuine = eddsa();
    let attacker = Forger::new(Algorithm::EdDSA);
    let attacker_server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(attacker.jwks()))
        .expect(0)
        .mount(&attacker_server)
        .await;
    let verifier = common::offline_verifier(genuine.jwks());
    let key_location_headers = |kid: &str| {
        json!({
            "alg": "EdDSA", "typ": "at+jwt", "kid": kid,
            "jku": format!("{}/jwks.json", attacker_server.uri()),
            "x5u": format!("{}/cert.pem", attacker_server.uri()),
            "jwk": attacker.jwk(),
        })
    };
    let claims = common::user_claims(ISSUER);
    let attacker_under_genuine_kid = attacker.sign_with_header(&key_location_headers(&genuine.kid), &claims);
    let attacker_under_own_kid = attacker.sign_with_header(&key_location_headers(&attacker.kid), &claims);
    let genuine_with_headers = genuine.sign_with_header(&key_location_headers(&genuine.kid), &claims);

    let under_genuine_kid = verifier.verify(&attacker_under_genuine_kid).await;
    let under_own_kid = verifier.verify(&attacker_under_own_kid).await;
    let genuine_result = verifier.verify(&genuine_with_headers).await;

    assert_eq!(under_genuine_kid.unwrap_err(), VerifyError::BadSignature);
    assert_eq!(under_own_kid.unwrap_err(), VerifyError::UnknownKid);
    assert_eq!(genuine_result.unwrap().sub, "user-1");
    assert!(attacker_server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_token_longer_than_the_cap_is_rejected_before_any_decoding() {
    let forger = eddsa();
    let keys = KeyCache::new(common::key_cache_settings(ISSUER)).unwrap();
    keys.replace_keys(forger.jwks()).unwrap();
    let token = forger.sign(&common::user_claims(ISSUER));
    let mut at_cap = VerifierSettings::new(ISSUER, AUDIENCE);
    at_cap.max_token_bytes = token.len();
    let mut below = at_cap.clone();
    below.max_token_bytes = token.len() - 1;
    let at_cap = common::verifier_with_settings(keys.clone(), at_cap);
    let below = common::verifier_with_settings(keys, below);
    let default_verifier = common::offline_verifier(forger.jwks());
    let garbage = "x".repeat(default_verifier.settings().max_token_bytes + 1);

    assert_eq!(at_cap.verify(&token).await.unwrap().sub, "user-1");
    assert_eq!(below.verify(&token).await.unwrap_err(), VerifyError::TooLarge);
    assert_eq!(default_verifier.verify(&garbage).await.unwrap_err(), VerifyError::TooLarge);
}

#[tokio::test]
async fn a_token_naming_an_unpublished_kid_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "not-a-published-key" });
    let token = forger.sign_with_header(&header, &common::user_claims(ISSUER));

    let result = verifier.verify(&token).await;

    assert_eq!(result.unwrap_err(), VerifyError::UnknownKid);
}

#[tokio::test]
async fn a_token_without_a_kid_or_with_a_broken_structure_is_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let without_kid =
        forger.sign_with_header(&json!({ "alg": "EdDSA", "typ": "at+jwt" }), &common::user_claims(ISSUER));
    let encoded_header = URL_SAFE_NO_PAD.encode(forger.header().to_string());
    let cases = [
        (without_kid, VerifyError::BadHeader),
        ("".to_owned(), VerifyError::Malformed),
        ("a.b".to_owned(), VerifyError::Malformed),
        ("a.b.c.d".to_owned(), VerifyError::Malformed),
        (format!("{encoded_header}.e30.!!"), VerifyError::Malformed),
        (format!("!!.e30.{encoded_header}"), VerifyError::Malformed),
        (format!("{}.e30.", URL_SAFE_NO_PAD.encode("[1]")), VerifyError::BadHeader),
    ];
    for (token, expected) in cases {
        let result = verifier.verify(&token).await;

        assert_eq!(result.unwrap_err(), expected, "{token:?}");
    }
}

#[tokio::test]
async fn a_tampered_payload_or_signature_is_rejected() {
    let verifier = common::offline_verifier_for_all_algorithms();
    for algorithm in ALGORITHMS {
        let forger = Forger::shared(algorithm);
        let claims = common::user_claims(ISSUER);
        let token = forger.sign(&claims);
        let signature = URL_SAFE_NO_PAD.decode(token.rsplit('.').next().unwrap()).unwrap();
        let mut escalated = claims.clone();
        escalated["roles"] = json!(["admin"]);
        let mut flipped = signature.clone();
        *flipped.last_mut().unwrap() ^= 0x01;
        let impostor = Forger::new(algorithm);
        let tampered = [
            common::compact(&forger.header(), &escalated, &signature),
            common::compact(&forger.header(), &claims, &flipped),
            common::compact(&forger.header(), &claims, &signature[..signature.len() - 1]),
            common::compact(&forger.header(), &claims, &[signature.clone(), vec![0]].concat()),
            impostor.sign_with_header(&forger.header(), &claims),
        ];

        for token in &tampered {
            let result = verifier.verify(token).await;

            assert_eq!(result.unwrap_err(), VerifyError::BadSignature, "{algorithm}");
        }
    }
}

#[tokio::test]
async fn revoked_sessions_tokens_and_subjects_are_rejected() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let now = unix_now_i64();
    let session_token = common::user_claims(ISSUER);
    let listed_token = common::user_claims(ISSUER);
    let mut before_cutoff = common::user_claims(ISSUER);
    before_cutoff["sub"] = json!("disabled-user");
    before_cutoff["iat"] = json!(now - 60);
    let mut after_cutoff = common::user_claims(ISSUER);
    after_cutoff["sub"] = json!("disabled-user");
    let untouched = common::user_claims(ISSUER);
    let list = forger.sign_revocations(&json!({
        "iss": ISSUER,
        "iat": now,
        "sessions": [{ "id": session_token["sid"], "exp": now + 900 }],
        "tokens": [{ "id": listed_token["jti"], "exp": now + 900 }],
        "subjects": [{ "id": "disabled-user", "not_before": now - 30, "exp": now + 900 }],
    }));

    let changed = verifier.revocations().apply_signed(&list).await.unwrap();

    assert!(changed);
    for revoked in [&session_token, &listed_token, &before_cutoff] {
        assert_eq!(verifier.verify(&forger.sign(revoked)).await.unwrap_err(), VerifyError::Revoked);
    }
    assert_eq!(verifier.verify(&forger.sign(&after_cutoff)).await.unwrap().sub, "disabled-user");
    assert_eq!(verifier.verify(&forger.sign(&untouched)).await.unwrap().sub, "user-1");
}

#[tokio::test]
async fn a_revocation_list_is_refused_unless_signed_as_one_by_a_known_key() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let now = unix_now_i64();
    let list = json!({ "iss": ISSUER, "iat": now, "tokens": [{ "id": "j", "exp": now + 60 }] });
    let as_access_token = forger.sign(&list);
    let by_stranger = Forger::new(Algorithm::EdDSA).sign_revocations(&list);
    let mut foreign = list.clone();
    foreign["iss"] = json!("http://evil.example");
    let from_other_issuer = forger.sign_revocations(&foreign);

    for refused in [as_access_token, by_stranger, from_other_issuer] {
        assert!(verifier.revocations().apply_signed(&refused).await.is_err());
    }
    assert_eq!(verifier.revocations().generation(), 0);
}

#[tokio::test]
async fn a_cached_token_is_rechecked_when_the_revocation_list_changes() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let claims = common::user_claims(ISSUER);
    let token = forger.sign(&claims);
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok(), "second verification, from the cache");
    let generation = verifier.revocations().generation();
    let now = unix_now_i64();
    let list = forger.sign_revocations(&json!({
        "iss": ISSUER, "iat": now, "sessions": [{ "id": claims["sid"], "exp": now + 900 }],
    }));

    verifier.revocations().apply_signed(&list).await.unwrap();
    let result = verifier.verify(&token).await;

    assert!(verifier.revocations().generation() > generation);
    assert_eq!(result.unwrap_err(), VerifyError::Revoked);
}

#[tokio::test]
async fn a_cached_token_is_rechecked_when_the_keys_change() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let token = forger.sign(&common::user_claims(ISSUER));
    assert!(verifier.verify(&token).await.is_ok());
    let generation = verifier.keys().generation();

    verifier.keys().replace_keys(Forger::new(Algorithm::EdDSA).jwks()).unwrap();
    let result = verifier.verify(&token).await;

    assert!(verifier.keys().generation() > generation);
    assert_eq!(result.unwrap_err(), VerifyError::UnknownKid);
}

/// A verifier with the default settings over the forger's keys, reading time from `manual`.
fn verifier_on(manual: &ManualClock) -> shared_auth::Verifier {
    let keys = KeyCache::with_clock(common::key_cache_settings(ISSUER), manual.clock()).unwrap();
    keys.replace_keys(eddsa().jwks()).unwrap();
    common::verifier_over(keys, ISSUER)
}

#[tokio::test]
async fn a_cached_token_is_rejected_once_it_expires() {
    let forger = eddsa();
    let manual = ManualClock::starting_now();
    let keys = KeyCache::with_clock(common::key_cache_settings(ISSUER), manual.clock()).unwrap();
    keys.replace_keys(forger.jwks()).unwrap();
    let mut settings = VerifierSettings::new(ISSUER, AUDIENCE);
    settings.leeway = Duration::ZERO;
    let verifier = common::verifier_with_settings(keys, settings);
    let mut claims = common::user_claims(ISSUER);
    claims["exp"] = json!(manual.now() + 900);
    let token = forger.sign(&claims);
    assert!(verifier.verify(&token).await.is_ok());

    manual.advance(Duration::from_secs(899));
    let before_expiry = verifier.verify(&token).await;
    manual.advance(Duration::from_secs(1));
    let at_expiry = verifier.verify(&token).await;

    assert!(before_expiry.is_ok(), "{before_expiry:?}");
    assert_eq!(at_expiry.unwrap_err(), VerifyError::Expired);
}

#[tokio::test]
async fn a_cached_token_is_accepted_through_the_leeway_and_rejected_after_it() {
    let manual = ManualClock::starting_now();
    let verifier = verifier_on(&manual);
    let leeway = verifier.settings().leeway;
    let mut claims = common::user_claims(ISSUER);
    claims["exp"] = json!(manual.now() + 900);
    let token = eddsa().sign(&claims);
    assert!(verifier.verify(&token).await.is_ok());

    manual.advance(Duration::from_secs(900) + leeway - Duration::from_secs(1));
    let within_leeway = verifier.verify(&token).await;
    manual.advance(Duration::from_secs(1));
    let past_leeway = verifier.verify(&token).await;

    assert!(within_leeway.is_ok(), "{within_leeway:?}");
    assert_eq!(past_leeway.unwrap_err(), VerifyError::Expired);
}

#[tokio::test]
async fn a_token_issued_for_the_future_becomes_valid_when_its_time_comes() {
    let manual = ManualClock::starting_now();
    let verifier = verifier_on(&manual);
    let leeway = i64::try_from(verifier.settings().leeway.as_secs()).unwrap();
    let mut claims = common::user_claims(ISSUER);
    let not_before = manual.now() + 120;
    claims["nbf"] = json!(not_before);
    claims["exp"] = json!(not_before + 900);
    let token = eddsa().sign(&claims);

    let too_early = verifier.verify(&token).await;
    manual.advance(Duration::from_secs(u64::try_from(120 - leeway).unwrap()));
    let within_leeway_of_nbf = verifier.verify(&token).await;

    assert_eq!(too_early.unwrap_err(), VerifyError::NotYetValid);
    assert_eq!(within_leeway_of_nbf.unwrap().nbf, Some(not_before));
}

#[tokio::test]
async fn keys_installed_with_nothing_usable_are_refused_and_the_old_keys_stay() {
    let forger = eddsa();
    let verifier = common::offline_verifier(forger.jwks());
    let mut private_use = Forger::new(Algorithm::EdDSA).jwk();
    private_use.key_use = Some("enc".into());
    let mut without_alg = Forger::new(Algorithm::EdDSA).jwk();
    without_alg.alg = None;

    let result = verifier.keys().replace_keys(JwkSet { keys: vec![private_use, without_alg] });

    assert!(result.is_err());
    assert!(verifier.verify(&forger.sign(&common::user_claims(ISSUER))).await.is_ok());
}

#[test]
fn every_rejection_reason_has_its_own_metric_label() {
    let all = [
        VerifyError::TooLarge,
        VerifyError::Malformed,
        VerifyError::BadHeader,
        VerifyError::WrongType,
        VerifyError::CriticalHeader,
        VerifyError::UnknownKid,
        VerifyError::AlgorithmMismatch,
        VerifyError::BadSignature,
        VerifyError::BadClaims,
        VerifyError::WrongIssuer,
        VerifyError::WrongAudience,
        VerifyError::Expired,
        VerifyError::NotYetValid,
        VerifyError::Revoked,
        VerifyError::LifetimeTooLong,
        VerifyError::KeysUnavailable,
        VerifyError::RevocationsUnavailable,
    ];

    let labels: HashSet<&str> = all.iter().map(|error| error.reason()).collect();

    assert_eq!(labels.len(), all.len());
    assert!(labels.iter().all(|label| {
        !label.is_empty() && label.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_')
    }));
}
