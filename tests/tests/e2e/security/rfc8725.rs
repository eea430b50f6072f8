//! RFC 8725, JSON Web Token Best Current Practices: algorithm verification (§2.1, §3.1),
//! validation of every cryptographic operation and input (§3.3, §3.4, with the Wycheproof
//! vectors), UTF-8 and JSON encodings (§2.6, §3.7), and claims that must not be trusted before
//! verification (§2.9, §3.10: `kid`).

use std::collections::HashMap;

use serde_json::{Value, json};
use shared_auth::VerifyError;
use shared_auth::jws::{self, Algorithm, Jwk, VerifyingKey};

use super::harness::{
    Case, Expect, KID_EDDSA, KID_ES256, KID_RS256, UsersApp, b64, check, header_for, sign_json, sign_raw,
    trusted_jwk, trusted_keys, trusted_public,
};

const RULE_ALG_NONE: &str = "RFC 8725 §2.1, §3.1: alg none";
const RULE_HMAC_CONFUSION: &str = "RFC 8725 §2.1, §3.1: HMAC with the public key";
const RULE_ECDSA_INPUTS: &str = "RFC 8725 §3.3, §3.4: malformed ES256 signatures";
const RULE_ENCODINGS: &str = "RFC 8725 §2.6, §3.7: UTF-8 and JSON encodings";
const RULE_KID: &str = "RFC 8725 §2.9, §3.10: kid is untrusted input";

/// RFC 8725 §2.1 (the `none` attack) and §3.1 ("libraries MUST ... NOT use any other
/// algorithms" than the caller's allow-list): `alg: none` in every capitalisation and the empty
/// string, with an empty signature, with a real signature left in place, and without the third
/// part; with and without a trusted `kid`. The algorithm comes from the key, never the header.
#[tokio::test]
async fn alg_none_in_every_spelling_is_rejected() {
    let app = UsersApp::start().await;
    let genuine_signature = app.token().rsplit('.').next().unwrap().to_owned();
    let payload = b64(serde_json::to_vec(&app.claims()).unwrap());
    let mut cases = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        for (kid_label, kid, missing_kid) in [
            ("trusted kid", Some(KID_EDDSA), VerifyError::AlgorithmMismatch),
            ("no kid", None, VerifyError::BadHeader),
        ] {
            let mut header = json!({"alg": alg, "typ": "at+jwt"});
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let header = b64(serde_json::to_vec(&header).unwrap());
            let name = |what: &str| format!("alg {alg:?}, {kid_label}, {what}");
            cases.push(Case::token(
                name("empty signature"),
                format!("{header}.{payload}."),
                Expect::Rejected(missing_kid),
            ));
            cases.push(Case::token(
                name("genuine EdDSA signature kept"),
                format!("{header}.{payload}.{genuine_signature}"),
                Expect::Rejected(missing_kid),
            ));
            cases.push(Case::token(
                name("no signature part"),
                format!("{header}.{payload}"),
                Expect::Rejected(VerifyError::Malformed),
            ));
        }
    }
    for header in
        [json!({"typ": "at+jwt", "kid": KID_EDDSA}), json!({"alg": null, "typ": "at+jwt", "kid": KID_EDDSA})]
    {
        let token = format!("{}.{payload}.", b64(serde_json::to_vec(&header).unwrap()));
        cases.push(Case::token(
            format!("header {header} (alg absent or null)"),
            token,
            Expect::Rejected(VerifyError::BadHeader),
        ));
    }
    check(&app, RULE_ALG_NONE, cases).await;
}

/// The HMAC algorithms JWS defines.
#[derive(Debug, Clone, Copy)]
enum Hmac {
    Hs256,
    Hs384,
    Hs512,
}

impl Hmac {
    fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }

    /// HMAC (RFC 2104) over SHA-2, written out so the forge needs no MAC crate; checked against
    /// RFC 4231 below.
    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            Self::Hs256 => hmac::<sha2::Sha256>(64, key, message),
            Self::Hs384 => hmac::<sha2::Sha384>(128, key, message),
            Self::Hs512 => hmac::<sha2::Sha512>(128, key, message),
        }
    }
}

pub(super) fn hmac<D: sha2::Digest>(block_size: usize, key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = if key.len() > block_size { D::digest(key).to_vec() } else { key.to_vec() };
    block.resize(block_size, 0);
    let pad = |byte: u8| block.iter().map(|key_byte| key_byte ^ byte).collect::<Vec<u8>>();
    let inner = D::new().chain_update(pad(0x36)).chain_update(message).finalize();
    D::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

/// The forge's HMAC is the real one: RFC 4231 test case 2 for all three hashes.
#[test]
fn the_forges_hmac_matches_rfc_4231() {
    let (key, data) = (b"Jefe".as_slice(), b"what do ya want for nothing?".as_slice());
    assert_eq!(
        hex_string(&Hmac::Hs256.mac(key, data)),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex_string(&Hmac::Hs384.mac(key, data)),
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
    );
    assert_eq!(
        hex_string(&Hmac::Hs512.mac(key, data)),
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
    );
}

/// Every encoding of a trusted public key an attacker could use as an HMAC secret.
fn public_key_encodings(kid: &str) -> Vec<(&'static str, Vec<u8>)> {
    use pkcs8::EncodePublicKey as _;
    let line_ending = pkcs8::LineEnding::LF;
    let (pem, der) = match trusted_public(kid) {
        VerifyingKey::Ed25519(key) => (key.to_public_key_pem(line_ending), key.to_public_key_der()),
        VerifyingKey::Es256(key) => (key.to_public_key_pem(line_ending), key.to_public_key_der()),
        VerifyingKey::Rs256(key) => {
            let public: &rsa::RsaPublicKey = (*key).as_ref();
            (public.to_public_key_pem(line_ending), public.to_public_key_der())
        }
    };
    let pem = pem.unwrap();
    let jwk = trusted_jwk(kid);
    let member = jwk.x.clone().or(jwk.n.clone()).unwrap();
    vec![
        ("PEM SPKI", pem.clone().into_bytes()),
        ("PEM SPKI without the final newline", pem.trim_end().as_bytes().to_vec()),
        ("DER SPKI", der.unwrap().as_bytes().to_vec()),
        ("JWK x (or n), base64url text", member.clone().into_bytes()),
        ("JWK x (or n), decoded bytes", base64_url_decode(&member)),
        ("JWK JSON as published", serde_json::to_vec(&jwk).unwrap()),
    ]
}

/// RFC 8725 §2.1 ("an attacker ... change the 'alg' to 'HS256' and use the public key as the
/// HMAC secret") and §3.1: HS256, HS384 and HS512 tokens keyed with each trusted public key in
/// each encoding it is published or commonly stored in. The verifier has no HMAC code path; the
/// `kid` names an asymmetric key, so the `alg` disagrees with the key.
#[tokio::test]
async fn hmac_signed_with_the_public_key_in_any_encoding_is_rejected() {
    let app = UsersApp::start().await;
    let claims = b64(serde_json::to_vec(&app.claims()).unwrap());
    let mut cases = Vec::new();
    for kid in [KID_EDDSA, KID_ES256, KID_RS256] {
        for (encoding, secret) in public_key_encodings(kid) {
            for algorithm in [Hmac::Hs256, Hmac::Hs384, Hmac::Hs512] {
                let header =
                    b64(serde_json::to_vec(&json!({"alg": algorithm.name(), "typ": "at+jwt", "kid": kid}))
                        .unwrap());
                let input = format!("{header}.{claims}");
                let token = format!("{input}.{}", b64(algorithm.mac(&secret, input.as_bytes())));
                cases.push(Case::token(
                    format!("{} keyed with {kid} as {encoding}", algorithm.name()),
                    token,
                    Expect::Rejected(VerifyError::AlgorithmMismatch),
                ));
            }
        }
    }
    assert_eq!(check(&app, RULE_HMAC_CONFUSION, cases).await, 3 * 6 * 3);
}

/// The order of the P-256 group.
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

/// RFC 8725 §3.3 ("validate all cryptographic operations") and §3.4 ("validate cryptographic
/// inputs"), over HTTP with the trusted ES256 key: r or s zero, r or s equal to or above the group
/// order, all-ones, swapped, the signature DER-encoded instead of JWS's fixed r‖s, and every
/// wrong length.
#[tokio::test]
async fn malformed_es256_signatures_are_rejected() {
    let app = UsersApp::start().await;
    let genuine = app.token_signed_by(KID_ES256);
    let (input, signature) = genuine.rsplit_once('.').unwrap();
    let signature = base64_url_decode(signature);
    let (r, s) = signature.split_at(32);
    let order = hex(P256_ORDER);
    let order_plus_one = {
        let mut bytes = order.clone();
        *bytes.last_mut().unwrap() += 1;
        bytes
    };
    let zero = [0u8; 32].to_vec();
    let ones = [0xffu8; 32].to_vec();
    let one = {
        let mut bytes = zero.clone();
        bytes[31] = 1;
        bytes
    };
    let join = |a: &[u8], b: &[u8]| [a, b].concat();
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("r = 0, s = 0", join(&zero, &zero)),
        ("r = 0, genuine s", join(&zero, s)),
        ("genuine r, s = 0", join(r, &zero)),
        ("r = 1, s = 1", join(&one, &one)),
        ("r = n, genuine s", join(&order, s)),
        ("genuine r, s = n", join(r, &order)),
        ("r = n + 1, genuine s", join(&order_plus_one, s)),
        ("genuine r, s = n + 1", join(r, &order_plus_one)),
        ("r = 2^256 - 1, genuine s", join(&ones, s)),
        ("genuine r, s = 2^256 - 1", join(r, &ones)),
        ("r and s swapped", join(s, r)),
        ("DER-encoded genuine signature", der_signature(r, s)),
        ("empty", Vec::new()),
        ("r only (32 bytes)", r.to_vec()),
        ("truncated to 63 bytes", signature[..63].to_vec()),
        ("a zero byte appended (65 bytes)", join(&signature, &[0])),
        ("a zero byte prepended (65 bytes)", join(&[0], &signature)),
        ("doubled (128 bytes)", join(&signature, &signature)),
        ("r and s each left-padded to 33 bytes", [&[0][..], r, &[0][..], s].concat()),
    ];
    let cases = variants
        .into_iter()
        .map(|(name, bytes)| {
            Case::token(name, format!("{input}.{}", b64(bytes)), Expect::Rejected(VerifyError::BadSignature))
        })
        .collect();
    check(&app, RULE_ECDSA_INPUTS, cases).await;
}

/// RFC 8725 §3.7 ("use UTF-8"; anything else is invalid) and §2.6 (multiplicity of JSON
/// encodings: duplicate members, byte-order marks, other encodings must not parse into a
/// different meaning). Payloads are signed with the trusted key, so only the encoding is wrong.
#[tokio::test]
async fn non_utf8_and_ambiguous_json_encodings_are_rejected() {
    let app = UsersApp::start().await;
    let key = &trusted_keys().eddsa;
    let header = serde_json::to_vec(&header_for(KID_EDDSA)).unwrap();
    let claims = serde_json::to_string(&app.claims()).unwrap();
    let claims_with = |old: &str, new: &str| claims.replacen(old, new, 1).into_bytes();
    let utf16 = |text: &str| text.encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<u8>>();
    let with_bom = |bytes: &[u8]| [&[0xef, 0xbb, 0xbf][..], bytes].concat();
    let header_text = String::from_utf8(header.clone()).unwrap();
    let bad_header = |bytes: Vec<u8>| sign_raw(key, &bytes, claims.as_bytes());
    let bad_claims = |bytes: Vec<u8>| sign_raw(key, &header, &bytes);
    let rejected_header = Expect::Rejected(VerifyError::BadHeader);
    let rejected_claims = Expect::Rejected(VerifyError::BadClaims);
    let cases = vec![
        Case::token(
            "header with an invalid UTF-8 byte in kid",
            bad_header(splice(&header_text, "eddsa", &[b'e', 0xff])),
            rejected_header,
        ),
        Case::token("header with a UTF-8 byte-order mark", bad_header(with_bom(&header)), rejected_header),
        Case::token("header in UTF-16", bad_header(utf16(&header_text)), rejected_header),
        Case::token(
            "header with a duplicate alg (EdDSA, then none)",
            bad_header(header_text.replacen('{', r#"{"alg":"none","#, 1).into_bytes()),
            rejected_header,
        ),
        Case::token(
            "header with trailing bytes after the JSON",
            bad_header([&header[..], b"x"].concat()),
            rejected_header,
        ),
        Case::token(
            "claims with an invalid UTF-8 byte in sub",
            bad_claims(splice(&claims, "user-1", b"user-\xff")),
            rejected_claims,
        ),
        Case::token(
            "claims with an overlong UTF-8 '/' in sub",
            bad_claims(splice(&claims, "user-1", b"user\xc0\xaf1")),
            rejected_claims,
        ),
        Case::token(
            "claims with a lone surrogate escape in sub",
            bad_claims(claims_with("user-1", r"user-\ud800")),
            rejected_claims,
        ),
        Case::token(
            "claims with a UTF-8 byte-order mark",
            bad_claims(with_bom(claims.as_bytes())),
            rejected_claims,
        ),
        Case::token("claims in UTF-16", bad_claims(utf16(&claims)), rejected_claims),
        Case::token(
            "claims with a duplicate sub",
            bad_claims(claims.replacen('{', r#"{"sub":"admin","#, 1).into_bytes()),
            rejected_claims,
        ),
        Case::token(
            "claims with a duplicate aud",
            bad_claims(claims.replacen('{', r#"{"aud":"orders-service","#, 1).into_bytes()),
            rejected_claims,
        ),
        Case::token(
            "claims with a duplicate exp",
            bad_claims(claims.replacen('{', r#"{"exp":99999999999,"#, 1).into_bytes()),
            rejected_claims,
        ),
        Case::token(
            "claims with trailing bytes after the JSON",
            bad_claims([claims.as_bytes(), b"{}"].concat()),
            rejected_claims,
        ),
        // The same strings spelled with JSON escapes are the same strings (RFC 8259 §7): they
        // must verify, or the check would compare bytes rather than values.
        Case::token(
            "header alg spelled with \\u escapes",
            bad_header(header_text.replacen("EdDSA", r"\u0045\u0064DSA", 1).into_bytes()),
            Expect::Accepted,
        ),
    ];
    check(&app, RULE_ENCODINGS, cases).await;
}

/// RFC 8725 §2.9 (indirect attacks on the server: "kid" as SQL or path injection) and §3.10
/// (do not trust received claims): a `kid` is only ever a key into the cached key set. Path
/// traversal, SQL, LDAP/JNDI and format strings, NUL bytes, 200 B, 5 KB and 10 KB kids, a kid
/// naming a key of another algorithm, empty and non-string kids. Afterwards the issuer's JWKS
/// endpoint must have been asked at most once more (unknown-kid refetches are rate-limited).
#[tokio::test]
async fn hostile_kid_values_are_only_lookups_and_cannot_hammer_the_issuer() {
    let app = UsersApp::start().await;
    let fetches_before = app.issuer.jwks_fetches();
    let unknown = Expect::Rejected(VerifyError::UnknownKid);
    let mismatch = Expect::Rejected(VerifyError::AlgorithmMismatch);
    let bad_header = Expect::Rejected(VerifyError::BadHeader);
    let with_kid = |kid: Value| {
        let mut header = header_for(KID_EDDSA);
        header["kid"] = kid;
        app.sign_header(&header)
    };
    let mut cases: Vec<Case> = [
        "../../etc/passwd",
        "../../../../../../dev/null",
        "/dev/null",
        "file:///etc/passwd",
        "' OR 1=1--",
        "\" OR \"\"=\"",
        "x'; DROP TABLE profiles;--",
        "*",
        "%s%s%s%n",
        "${jndi:ldap://127.0.0.1:1/a}",
        "*)(uid=*))(|(uid=*",
        "trusted-eddsa\u{0}",
        "\u{0}",
        "TRUSTED-EDDSA",
        "trusted-eddsa ",
        "",
    ]
    .into_iter()
    .map(|kid| Case::token(format!("kid {kid:?}"), with_kid(json!(kid)), unknown))
    .collect();
    cases.push(Case::token("kid of 200 bytes", with_kid(json!("k".repeat(200))), unknown));
    cases.push(Case::token("kid of 5 KB", with_kid(json!("k".repeat(5 * 1024))), unknown));
    cases.push(Case::token(
        "kid of 10 KB (token over the size cap)",
        with_kid(json!("k".repeat(10 * 1024))),
        Expect::Rejected(VerifyError::TooLarge),
    ));
    for value in [json!(123), json!(null), json!(true), json!([KID_EDDSA]), json!({"kid": KID_EDDSA})] {
        cases.push(Case::token(format!("non-string kid {value}"), with_kid(value), bad_header));
    }
    let mut no_kid = header_for(KID_EDDSA);
    no_kid.as_object_mut().unwrap().remove("kid");
    cases.push(Case::token("no kid", app.sign_header(&no_kid), bad_header));
    // A kid naming a published key of another algorithm: the key's algorithm wins.
    for (alg, signer, kid) in [
        (Algorithm::EdDSA, KID_EDDSA, KID_ES256),
        (Algorithm::EdDSA, KID_EDDSA, KID_RS256),
        (Algorithm::ES256, KID_ES256, KID_EDDSA),
        (Algorithm::ES256, KID_ES256, KID_RS256),
        (Algorithm::RS256, KID_RS256, KID_EDDSA),
        (Algorithm::RS256, KID_RS256, KID_ES256),
    ] {
        let header = json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid});
        let token = sign_json(trusted_keys().by_kid(signer), &header, &app.claims());
        cases.push(Case::token(format!("{alg} token naming the {kid} key"), token, mismatch));
    }
    let count = check(&app, RULE_KID, cases).await;
    let refetches = app.issuer.jwks_fetches() - fetches_before;
    assert!(
        refetches <= 1,
        "{count} hostile kids caused {refetches} JWKS fetches; at most 1 is allowed per cooldown"
    );
}

// ---- Wycheproof vectors at the primitive level (RFC 8725 §3.3) ----

fn wycheproof(file: &str) -> Value {
    let path = format!("{}/testdata/wycheproof/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))).unwrap()
}

/// Tallies of one vector file.
#[derive(Debug, Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, id: &Value, comment: &Value, result: &str, accepted: bool) {
        match result {
            "valid" => self.valid += 1,
            "invalid" => self.invalid += 1,
            _ => {
                self.acceptable += 1;
                return;
            }
        }
        if accepted != (result == "valid") {
            self.failures.push(format!("tcId {id} ({comment}): {result} but accepted = {accepted}"));
        }
    }

    fn assert_clean(&self, rule: &str, file: &str) {
        assert!(
            self.failures.is_empty(),
            "[{rule}] {file}: {} wrong:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        println!(
            "[{rule}] {file}: {} valid accepted, {} invalid rejected, {} acceptable not judged",
            self.valid, self.invalid, self.acceptable
        );
    }
}

/// The public JWK of a Wycheproof test group, built from its raw public key: the uncompressed
/// point for P-256 (some groups have no JWK member), the 32-byte key for Ed25519, the JWK for
/// RSA. `alg` is set, as the issuer's key set sets it.
fn group_jwk(group: &Value, algorithm: Algorithm) -> Jwk {
    let public = &group["publicKey"];
    let mut jwk = match algorithm {
        Algorithm::ES256 => {
            let point = hex(public["uncompressed"].as_str().unwrap());
            assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
            Jwk {
                kty: "EC".into(),
                crv: Some("P-256".into()),
                x: Some(b64(&point[1..33])),
                y: Some(b64(&point[33..])),
                ..Jwk::default()
            }
        }
        Algorithm::EdDSA => Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(b64(hex(public["pk"].as_str().unwrap()))),
            ..Jwk::default()
        },
        Algorithm::RS256 => serde_json::from_value(group["keyJwk"].clone()).unwrap(),
    };
    jwk.alg = Some(algorithm.as_str().to_owned());
    jwk
}

/// Runs every test of a signature vector file against the key of its group.
fn signature_vectors(file: &str, algorithm: Algorithm) -> Tally {
    let vectors = wycheproof(file);
    let mut tally = Tally::default();
    for group in vectors["testGroups"].as_array().unwrap() {
        let key = VerifyingKey::from_jwk(&group_jwk(group, algorithm)).ok();
        for test in group["tests"].as_array().unwrap() {
            let message = hex(test["msg"].as_str().unwrap());
            let signature = hex(test["sig"].as_str().unwrap());
            let accepted = key.as_ref().is_some_and(|key| key.verify(&message, &signature));
            tally.record(&test["tcId"], &test["comment"], test["result"].as_str().unwrap(), accepted);
        }
    }
    tally
}

/// RFC 8725 §3.3: `VerifyingKey::verify` for ES256 (P-256, SHA-256, IEEE P1363 r‖s, the JWS
/// encoding) against every Wycheproof vector: valid ones verify, invalid ones (r or s zero or
/// ≥ n, DER, wrong lengths, arithmetic edge cases) do not. Keys come from each group's
/// uncompressed point.
#[test]
fn wycheproof_ecdsa_p256_sha256_p1363_vectors() {
    let file = "ecdsa_secp256r1_sha256_p1363_test.json";
    signature_vectors(file, Algorithm::ES256).assert_clean("RFC 8725 §3.3: Wycheproof", file);
}

/// RFC 8725 §3.3: EdDSA (Ed25519, verified strictly) against every Wycheproof vector.
#[test]
fn wycheproof_ed25519_vectors() {
    let file = "ed25519_test.json";
    signature_vectors(file, Algorithm::EdDSA).assert_clean("RFC 8725 §3.3: Wycheproof", file);
}

/// RFC 8725 §3.3: RS256 (RSASSA-PKCS1-v1_5, SHA-256, 2048-bit keys) against every Wycheproof
/// vector: forged paddings, wrong DigestInfo encodings, wrong lengths.
#[test]
fn wycheproof_rsa_pkcs1_2048_sha256_vectors() {
    let file = "rsa_signature_2048_sha256_test.json";
    signature_vectors(file, Algorithm::RS256).assert_clean("RFC 8725 §3.3: Wycheproof", file);
}

/// What the verifier does with a compact JWS before looking at claims: split and decode, refuse
/// `crit`, find the key by `kid`, require the header's `alg` to be the key's, verify.
fn jws_signature_accepted(keys: &HashMap<String, VerifyingKey>, token: &str) -> bool {
    let Ok(parts) = jws::split_compact(token) else {
        return false;
    };
    let Some(key) = parts.header.kid.as_deref().and_then(|kid| keys.get(kid)) else {
        return false;
    };
    parts.header.crit.is_none()
        && key.algorithm().as_str() == parts.header.alg
        && key.verify(parts.signing_input, &parts.signature)
}

/// The keys a JWKS of `jwks` yields, as the key cache builds them (unusable keys dropped).
fn usable_keys(jwks: &[Value]) -> HashMap<String, VerifyingKey> {
    jwks.iter()
        .filter_map(|jwk| serde_json::from_value::<Jwk>(jwk.clone()).ok())
        .filter_map(|jwk| Some((jwk.kid.clone()?, VerifyingKey::from_jwk(&jwk).ok()?)))
        .collect()
}

/// RFC 8725 §3.1 and §3.3 on whole tokens: Wycheproof's JSON Web Signature vectors. Groups whose
/// key is ES256 or RS256 run exactly as labelled (alg confusion with the EC and RSA keys, an
/// embedded attacker `jwk`, modified or missing parts, ASN.1 games in PKCS#1 paddings, r/s edge
/// cases). Groups whose key is outside the allow-list (HS*, PS*, RS384/512, ES521, encryption
/// keys) have no usable key: their invalid tokens count as labelled, and those Wycheproof labels
/// valid must be rejected all the same.
#[test]
fn wycheproof_json_web_signature_vectors() {
    let file = "json_web_signature_test.json";
    let vectors = wycheproof(file);
    let mut applicable = Tally::default();
    let mut outside_allow_list = 0;
    for group in vectors["testGroups"].as_array().unwrap() {
        let keys = match group.get("public") {
            Some(public) => usable_keys(std::slice::from_ref(public)),
            None => HashMap::new(),
        };
        for test in group["tests"].as_array().unwrap() {
            let accepted = jws_signature_accepted(&keys, test["jws"].as_str().unwrap());
            let result = test["result"].as_str().unwrap();
            if keys.is_empty() && result == "valid" {
                outside_allow_list += 1;
                if accepted {
                    applicable.failures.push(format!("tcId {} accepted with no usable key", test["tcId"]));
                }
            } else {
                applicable.record(&test["tcId"], &test["comment"], result, accepted);
            }
        }
    }
    applicable.assert_clean("RFC 8725 §3.1, §3.3: Wycheproof", file);
    println!(
        "[RFC 8725 §3.1: Wycheproof] {file}: {outside_allow_list} tokens labelled valid for keys outside the allow-list, all rejected"
    );
}

/// Wycheproof JWK cases whose point is a property of the issuer's key generation, which a
/// verifier cannot see in a well-formed public key.
const JWK_NOT_APPLICABLE: &[(u64, &str)] = &[(
    7,
    "ROCA-weak RSA modulus: a key-generation flaw (Infineon RSALib); the rsa crate's keys do not have it",
)];

/// RFC 8725 §3.1 and §3.4 on key sets: Wycheproof's JSON Web Key vectors through the key set
/// path (`VerifyingKey::from_jwk`, unusable keys dropped): mixed symmetric/asymmetric sets, a
/// 1024-bit RSA key, public exponent 1, wrong `use`, `alg` and curve disagreeing, points off the
/// curve, `kty` lying about the key.
#[test]
fn wycheproof_json_web_key_vectors() {
    let file = "json_web_key_test.json";
    let vectors = wycheproof(file);
    let mut tally = Tally::default();
    let mut skipped = 0;
    let mut outside_allow_list = 0;
    for group in vectors["testGroups"].as_array().unwrap() {
        let set = group.get("public").unwrap_or(&group["private"]);
        let members = set["keys"].as_array().cloned().unwrap_or_else(|| vec![set.clone()]);
        let keys = usable_keys(&members);
        for test in group["tests"].as_array().unwrap() {
            if JWK_NOT_APPLICABLE.iter().any(|(id, _)| test["tcId"] == *id) {
                skipped += 1;
                continue;
            }
            let accepted = jws_signature_accepted(&keys, test["jws"].as_str().unwrap());
            let result = test["result"].as_str().unwrap();
            if keys.is_empty() && result == "valid" {
                outside_allow_list += 1;
                if accepted {
                    tally.failures.push(format!("tcId {} accepted with no usable key", test["tcId"]));
                }
            } else {
                tally.record(&test["tcId"], &test["comment"], result, accepted);
            }
        }
    }
    tally.assert_clean("RFC 8725 §3.4: Wycheproof", file);
    println!(
        "[RFC 8725 §3.4: Wycheproof] {file}: {outside_allow_list} HMAC tokens labelled valid, rejected (no HMAC in the allow-list)"
    );
    println!("[RFC 8725 §3.4: Wycheproof] {file}: {skipped} not applicable: {JWK_NOT_APPLICABLE:?}");
}

// ---- small helpers ----

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap()).collect()
}

/// `text` with the first `old` replaced by raw `new` bytes (which need not be UTF-8).
fn splice(text: &str, old: &str, new: &[u8]) -> Vec<u8> {
    let at = text.find(old).unwrap();
    [&text.as_bytes()[..at], new, &text.as_bytes()[at + old.len()..]].concat()
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`, the X.509 form JWS does not use.
fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let start = bytes.iter().position(|byte| *byte != 0).unwrap_or(bytes.len() - 1);
        let mut value = bytes[start..].to_vec();
        if value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        [vec![0x02, u8::try_from(value.len()).unwrap()], value].concat()
    };
    let body = [integer(r), integer(s)].concat();
    [vec![0x30, u8::try_from(body.len()).unwrap()], body].concat()
}
