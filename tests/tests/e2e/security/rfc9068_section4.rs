//! RFC 9068 §4, validating JWT access tokens, step by step: the `typ` (step 1), JWS validation
//! per RFC 7515 (step 5: compact serialization, base64url, `crit`), `iss` (step 3), `aud`
//! (step 4), and the claims §2.2 makes required, with their types (RFC 7519 §4.1).

use serde_json::{Value, json};
use shared_auth::VerifyError;

use super::harness::{
    Case, Expect, KID_EDDSA, UsersApp, check, header_for, sign_raw, trusted_keys, with, without,
};

/// RFC 9068 §4 step 1 (and §2.1): "Resource servers ... MUST verify that the 'typ' header value
/// is 'at+jwt' or 'application/at+jwt' and reject tokens carrying any other value". Media type
/// names are case-insensitive (RFC 7515 §4.1.9), so `AT+JWT` is the same type.
#[tokio::test]
async fn typ_must_be_at_jwt() {
    let app = UsersApp::start().await;
    let with_typ = |typ: Option<Value>| {
        let mut header = header_for(KID_EDDSA);
        match typ {
            Some(typ) => header["typ"] = typ,
            None => {
                header.as_object_mut().unwrap().remove("typ");
            }
        }
        app.sign_header(&header)
    };
    let wrong = Expect::Rejected(VerifyError::WrongType);
    let mut cases = vec![Case::token("typ missing", with_typ(None), wrong)];
    for typ in [
        "JWT",
        "jwt",
        "application/jwt",
        "JOSE",
        "JOSE+JSON",
        "at+jws",
        "at+jwt ",
        " at+jwt",
        "at+jwt\u{0}",
        "application/at+jwt; x=1",
        "revocations+jwt",
        "logout+jwt",
        "secevent+jwt",
        "id_token",
        "dpop+jwt",
        "",
    ] {
        cases.push(Case::token(format!("typ {typ:?}"), with_typ(Some(json!(typ))), wrong));
    }
    cases.push(Case::token("typ null", with_typ(Some(Value::Null)), wrong));
    for typ in [json!(1), json!(["at+jwt"]), json!({"typ": "at+jwt"})] {
        cases.push(Case::token(
            format!("typ {typ} (not a string)"),
            with_typ(Some(typ)),
            Expect::Rejected(VerifyError::BadHeader),
        ));
    }
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
        cases.push(Case::token(
            format!("typ {typ:?} is accepted"),
            with_typ(Some(json!(typ))),
            Expect::Accepted,
        ));
    }
    check(&app, "RFC 9068 §4 step 1: typ", cases).await;
}

/// RFC 9068 §4 step 5 ("validate the signature ... according to RFC 7515") with RFC 7515
/// §4.1.11: a `crit` header names extensions the recipient must understand; this verifier
/// understands none, so any `crit` means rejection, whatever it lists.
#[tokio::test]
async fn any_crit_header_is_rejected() {
    let app = UsersApp::start().await;
    let cases = [
        json!(["exp"]),
        json!(["b64"]),
        json!(["http://example.invalid/x"]),
        json!([]),
        json!("exp"),
        json!({"exp": true}),
        json!(1),
    ]
    .into_iter()
    .map(|crit| {
        let mut header = header_for(KID_EDDSA);
        header["crit"] = crit.clone();
        header["exp"] = json!(1);
        Case::token(
            format!("crit {crit}"),
            app.sign_header(&header),
            Expect::Rejected(VerifyError::CriticalHeader),
        )
    })
    .collect();
    check(&app, "RFC 9068 §4 step 5, RFC 7515 §4.1.11: crit", cases).await;
}

/// RFC 9068 §4 step 5 with RFC 7515 §3.1/§5.2 and RFC 7519 §7.2: a compact JWS is exactly three
/// base64url parts without padding; the header and claims are JSON objects. Characters outside
/// RFC 6750's b64token never reach the verifier (400 `invalid_request`); `=`, `+`, `/` and `~`
/// do, and fail base64url decoding (401).
#[tokio::test]
async fn malformed_compact_serializations_are_rejected() {
    let app = UsersApp::start().await;
    let genuine = app.token();
    let parts: Vec<&str> = genuine.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    // A genuine token whose base64url uses '-' or '_', to re-spell in the '+/' alphabet.
    let url_alphabet =
        std::iter::repeat_with(|| app.token()).find(|token| token.contains(['-', '_'])).unwrap();
    let key = &trusted_keys().eddsa;
    let real_header = serde_json::to_vec(&header_for(KID_EDDSA)).unwrap();
    let claims = serde_json::to_vec(&app.claims()).unwrap();
    let signed_claims = |bytes: &[u8]| sign_raw(key, &real_header, bytes);
    let signed_header = |bytes: &[u8]| sign_raw(key, bytes, &claims);
    let malformed = Expect::Rejected(VerifyError::Malformed);
    let bad_header = Expect::Rejected(VerifyError::BadHeader);
    let bad_claims = Expect::Rejected(VerifyError::BadClaims);
    let mut cases = vec![
        Case::token("padding '=' on the header", format!("{header}=.{payload}.{signature}"), malformed),
        Case::token("padding '==' on the signature", format!("{header}.{payload}.{signature}=="), malformed),
        Case::token("standard alphabet '+' '/'", url_alphabet.replace('-', "+").replace('_', "/"), malformed),
        Case::token(
            "'~' inside the payload",
            format!("{header}.{}~.{signature}", &payload[..payload.len() - 1]),
            malformed,
        ),
        Case::token("two parts", format!("{header}.{payload}"), malformed),
        Case::token("one part", header.to_owned(), malformed),
        Case::token("four parts (trailing dot)", format!("{genuine}."), malformed),
        Case::token(
            "four parts (doubled dot after the header)",
            format!("{header}..{payload}.{signature}"),
            malformed,
        ),
        Case::token(
            "four parts (doubled dot after the payload)",
            format!("{header}.{payload}..{signature}"),
            malformed,
        ),
        Case::token(
            "five parts (JWE shape)",
            format!("{header}.{payload}.{payload}.{payload}.{signature}"),
            malformed,
        ),
        Case::token("only dots", "..", bad_header),
        Case::token("empty header", format!(".{payload}.{signature}"), bad_header),
        Case::token(
            "empty payload",
            format!("{header}..{signature}"),
            Expect::Rejected(VerifyError::BadSignature),
        ),
        Case::token("header bytes that are not JSON", signed_header(b"not json"), bad_header),
        Case::token(
            "header is a JSON array",
            signed_header(br#"[{"alg":"EdDSA","typ":"at+jwt","kid":"trusted-eddsa"}]"#),
            bad_header,
        ),
        Case::token("header is a JSON string", signed_header(br#""EdDSA""#), bad_header),
        Case::token("header is null", signed_header(b"null"), bad_header),
        Case::token("header is an empty object", signed_header(b"{}"), bad_header),
        Case::token("claims are not JSON", signed_claims(b"not json"), bad_claims),
        Case::token(
            "claims are a JSON array of the genuine object",
            signed_claims(&[b"[", &claims[..], b"]"].concat()),
            bad_claims,
        ),
        Case::token("claims are a JSON string", signed_claims(br#""user-1""#), bad_claims),
        Case::token("claims are null", signed_claims(b"null"), bad_claims),
        Case::token("claims are a number", signed_claims(b"42"), bad_claims),
        Case::token("claims are an empty object", signed_claims(b"{}"), bad_claims),
        Case::token("claims are empty", signed_claims(b""), bad_claims),
    ];
    for character in ["!", "*", "#", "?", "$", "%", "\"", ",", ";", "\\", "(", "@"] {
        cases.push(Case::token(
            format!("{character:?} inside the token"),
            format!("{header}.{payload}{character}.{signature}"),
            Expect::InvalidRequest,
        ));
    }
    check(&app, "RFC 9068 §4 step 5, RFC 7515 §5.2: compact serialization", cases).await;
}

/// RFC 9068 §4 step 3: "The issuer identifier for the authorization server ... MUST exactly
/// match the value of the 'iss' claim". Exactly: no trailing slash, no case folding, no
/// prefix match; a missing or non-string `iss` is invalid claims.
#[tokio::test]
async fn iss_must_match_exactly() {
    let app = UsersApp::start().await;
    let issuer = app.issuer.url.clone();
    let wrong = Expect::Rejected(VerifyError::WrongIssuer);
    let mut cases: Vec<Case> = [
        format!("{issuer}/"),
        issuer.to_uppercase(),
        issuer.replace("http://", "https://"),
        issuer.replace("127.0.0.1", "localhost"),
        format!("{issuer}/evil"),
        format!("{issuer}.evil.example"),
        format!(" {issuer}"),
        issuer[..issuer.len() - 1].to_owned(),
        "http://127.0.0.1:1".to_owned(),
        String::new(),
    ]
    .into_iter()
    .map(|iss| {
        Case::token(format!("iss {iss:?}"), app.sign_claims(&with(app.claims(), "iss", json!(iss))), wrong)
    })
    .collect();
    cases.push(Case::token(
        "iss missing",
        app.sign_claims(&without(app.claims(), "iss")),
        Expect::Rejected(VerifyError::BadClaims),
    ));
    for iss in [json!(null), json!(1), json!([issuer]), json!({"iss": issuer})] {
        cases.push(Case::token(
            format!("iss {iss} (not a string)"),
            app.sign_claims(&with(app.claims(), "iss", iss)),
            Expect::Rejected(VerifyError::BadClaims),
        ));
    }
    check(&app, "RFC 9068 §4 step 3: iss", cases).await;
}

/// RFC 9068 §4 step 4: "The resource server MUST validate that the 'aud' claim contains a
/// resource indicator value corresponding to an identifier the resource server expects". A
/// string or an array of strings (RFC 7519 §4.1.3); the match is exact.
#[tokio::test]
async fn aud_must_name_this_service() {
    let app = UsersApp::start().await;
    let sign_aud = |aud: Value| app.sign_claims(&with(app.claims(), "aud", aud));
    let wrong = Expect::Rejected(VerifyError::WrongAudience);
    let bad = Expect::Rejected(VerifyError::BadClaims);
    let mut cases: Vec<Case> = [
        json!(["orders-service"]),
        json!("orders-service"),
        json!(["Users-Service"]),
        json!(["users-service "]),
        json!(["users"]),
        json!(["users-service-evil"]),
        json!(["users-service,orders-service"]),
        json!(["users-service orders-service"]),
        json!(["*"]),
        json!([]),
        json!(""),
    ]
    .into_iter()
    .map(|aud| Case::token(format!("aud {aud}"), sign_aud(aud), wrong))
    .collect();
    cases.push(Case::token("aud missing", app.sign_claims(&without(app.claims(), "aud")), bad));
    for aud in [
        json!(null),
        json!(1),
        json!({"users-service": true}),
        json!([1]),
        json!([["users-service"]]),
        json!(["users-service", 1]),
        json!(true),
    ] {
        cases.push(Case::token(format!("aud {aud} (wrong type)"), sign_aud(aud), bad));
    }
    cases.push(Case::token(
        "aud \"users-service\" as a string is accepted",
        sign_aud(json!("users-service")),
        Expect::Accepted,
    ));
    cases.push(Case::token(
        "aud listing users-service among others is accepted",
        sign_aud(json!(["orders-service", "users-service"])),
        Expect::Accepted,
    ));
    check(&app, "RFC 9068 §4 step 4: aud", cases).await;
}

/// RFC 9068 §2.2: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti` are REQUIRED. Each
/// one missing, and the string ones empty, is an invalid token.
#[tokio::test]
async fn every_required_claim_must_be_present() {
    let app = UsersApp::start().await;
    let bad = Expect::Rejected(VerifyError::BadClaims);
    let mut cases: Vec<Case> = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]
        .into_iter()
        .map(|claim| {
            Case::token(format!("{claim} missing"), app.sign_claims(&without(app.claims(), claim)), bad)
        })
        .collect();
    for claim in ["sub", "jti", "client_id"] {
        cases.push(Case::token(
            format!("{claim} empty"),
            app.sign_claims(&with(app.claims(), claim, json!(""))),
            bad,
        ));
    }
    check(&app, "RFC 9068 §2.2: required claims", cases).await;
}

/// RFC 9068 §2.2 with RFC 7519 §4.1 and the platform's claims: every claim must have its type
/// (`sub`, `jti`, `client_id`, `scope`, `sid`, `preferred_username` strings; `roles` an array of
/// strings; dates integers). A wrong type is an invalid token, never a default value.
#[tokio::test]
async fn claims_of_the_wrong_type_are_rejected() {
    let app = UsersApp::start().await;
    let bad = Expect::Rejected(VerifyError::BadClaims);
    let cases = [
        ("sub", json!(123)),
        ("sub", json!(null)),
        ("sub", json!(["user-1"])),
        ("sub", json!({"id": "user-1"})),
        ("jti", json!(7)),
        ("client_id", json!(null)),
        ("client_id", json!(["platform"])),
        ("scope", json!(["profile", "orders"])),
        ("scope", json!(1)),
        ("roles", json!("admin")),
        ("roles", json!([1])),
        ("roles", json!({"admin": true})),
        ("roles", json!([["admin"]])),
        ("preferred_username", json!(42)),
        ("sid", json!(1)),
        ("sid", json!(["session-1"])),
        ("iat", json!("1700000000")),
    ]
    .into_iter()
    .map(|(claim, value)| {
        Case::token(format!("{claim}: {value}"), app.sign_claims(&with(app.claims(), claim, value)), bad)
    })
    .collect();
    check(&app, "RFC 9068 §2.2, RFC 7519 §4.1: claim types", cases).await;
}
