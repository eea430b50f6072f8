//! Test kit shared by the integration tests and the benchmarks: a token forger holding its own
//! keys, the claims of a typical token, and verifiers wired the way services wire them.
//!
//! Every test binary uses a different part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shared_auth::jws::{Algorithm, Jwk, JwkSet, SigningKey};
use shared_auth::revocation::{REVOCATION_LIST_TYPE, RevocationSettings};
use shared_auth::time::unix_now_i64;
use shared_auth::{KeyCache, KeyCacheSettings, Revocations, Verifier, VerifierSettings};

/// An issuer nobody listens on (the discard port): any fetch from it fails at once.
pub(crate) const UNREACHABLE_ISSUER: &str = "http://127.0.0.1:9";
/// The audience of the verifiers under test.
pub(crate) const AUDIENCE: &str = "users-service";

pub(crate) const ALGORITHMS: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// Signs whatever header and claims a test asks for, with a key of its own.
pub(crate) struct Forger {
    pub key: SigningKey,
    pub kid: String,
}

impl Forger {
    /// A forger with a fresh key whose `kid` is its thumbprint, as the auth server names keys.
    pub(crate) fn new(algorithm: Algorithm) -> Self {
        let key = SigningKey::generate(algorithm).unwrap();
        let kid = key.verifying_key().thumbprint();
        Self { key, kid }
    }

    /// One forger per algorithm for the whole test binary: RSA key generation is slow.
    pub(crate) fn shared(algorithm: Algorithm) -> &'static Forger {
        static FORGERS: [OnceLock<Forger>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let slot = match algorithm {
            Algorithm::EdDSA => &FORGERS[0],
            Algorithm::ES256 => &FORGERS[1],
            Algorithm::RS256 => &FORGERS[2],
        };
        slot.get_or_init(|| Forger::new(algorithm))
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// The public key as the auth server publishes it.
    pub(crate) fn jwk(&self) -> Jwk {
        self.key.verifying_key().to_jwk(&self.kid)
    }

    /// A key set holding only this forger's public key.
    pub(crate) fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.jwk()] }
    }

    /// The header the auth server puts on access tokens.
    pub(crate) fn header(&self) -> Value {
        json!({ "alg": self.algorithm().as_str(), "typ": "at+jwt", "kid": self.kid })
    }

    /// An access token with the standard header.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&self.header(), claims)
    }

    /// A compact JWS with exactly this header and payload, signed with this forger's key.
    pub(crate) fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let signing_input = signing_input(header, claims);
        let signature = self.key.sign(signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A signed revocation list (`typ: revocations+jwt`), as `GET /v1/revocations` serves it.
    pub(crate) fn sign_revocations(&self, list: &Value) -> String {
        let header =
            json!({ "alg": self.algorithm().as_str(), "typ": REVOCATION_LIST_TYPE, "kid": self.kid });
        self.sign_with_header(&header, list)
    }
}

/// `base64url(header).base64url(payload)`.
pub(crate) fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
    )
}

/// A compact JWS from its three parts, the signature given as raw bytes.
pub(crate) fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}", signing_input(header, claims), URL_SAFE_NO_PAD.encode(signature))
}

/// A unique id, for `jti` and `sid`.
pub(crate) fn unique_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Claims of a user's access token issued by `issuer` just now, for 15 minutes.
pub(crate) fn user_claims(issuer: &str) -> Value {
    let now = unix_now_i64();
    json!({
        "iss": issuer,
        "sub": "user-1",
        "aud": ["users-service", "orders-service"],
        "exp": now + 900,
        "iat": now,
        "nbf": now,
        "jti": unique_id(),
        "client_id": "web",
        "scope": "openid profile",
        "roles": ["member"],
        "preferred_username": "alice",
        "sid": unique_id(),
    })
}

/// Claims of a client-credentials token: no `sid`, no username, the client as subject.
pub(crate) fn service_claims(issuer: &str) -> Value {
    let now = unix_now_i64();
    json!({
        "iss": issuer,
        "sub": "orders-service",
        "aud": ["users-service"],
        "exp": now + 900,
        "iat": now,
        "jti": unique_id(),
        "client_id": "orders-service",
        "scope": "users:read",
    })
}

/// Key-cache settings for a test: production defaults but a short fetch timeout.
pub(crate) fn key_cache_settings(issuer: &str) -> KeyCacheSettings {
    let mut settings = KeyCacheSettings::new(issuer);
    settings.fetch_timeout = Duration::from_millis(200);
    settings
}

/// A verifier for `issuer` and [`AUDIENCE`] over `keys`, with an empty revocation list.
pub(crate) fn verifier_over(keys: KeyCache, issuer: &str) -> Verifier {
    verifier_with_settings(keys, VerifierSettings::new(issuer, AUDIENCE))
}

/// A verifier with explicit settings over `keys`, with an empty revocation list.
pub(crate) fn verifier_with_settings(keys: KeyCache, settings: VerifierSettings) -> Verifier {
    let revocations = Revocations::new(RevocationSettings::default(), keys.clone());
    Verifier::new(settings, keys, revocations)
}

/// A verifier whose keys were installed directly and whose issuer is unreachable, so nothing
/// it does can leave the machine: what a service looks like while the auth server is down.
pub(crate) fn offline_verifier(jwks: JwkSet) -> Verifier {
    let keys = KeyCache::new(key_cache_settings(UNREACHABLE_ISSUER)).unwrap();
    keys.replace_keys(jwks).unwrap();
    verifier_over(keys, UNREACHABLE_ISSUER)
}

/// [`offline_verifier`] trusting the shared forger of each algorithm.
pub(crate) fn offline_verifier_for_all_algorithms() -> Verifier {
    let keys = ALGORITHMS.iter().map(|algorithm| Forger::shared(*algorithm).jwk()).collect();
    offline_verifier(JwkSet { keys })
}
