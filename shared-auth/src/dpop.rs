//! DPoP proofs (RFC 9449): the checks a resource service and the token endpoint make on the
//! `DPoP` header, and the per-process `jti` replay cache.
//!
//! A proof is a JWS its client signs with a key it keeps (in a browser, a non-extractable Web
//! Crypto key). It names the request it was made for (`htm`, `htu`), when (`iat`), once (`jti`),
//! and, sent to a resource, the access token it accompanies (`ath`). The key travels in the
//! proof's own header (`jwk`); its RFC 7638 thumbprint is what an access token's `cnf.jkt` pins.
//!
//! [`ProofVerifier::verify`] checks, in this order, and stops at the first failure:
//! size; `typ: dpop+jwt`; `alg` ES256 or EdDSA (never `none`, HMAC or RSA); a public `jwk` of
//! that algorithm (a private member is refused, RFC 9449 §4.3 point 7); the signature; `htm`;
//! `htu`, compared without query and fragment after RFC 3986 normalisation (§4.3 point 9);
//! `iat` within the window; `ath` when a token is presented; the expected thumbprint; and last
//! the `jti`, so that only a proof that passed every other check takes a place in the replay
//! cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::jws::{Algorithm, Jwk, KeyError, SigningKey, VerifyingKey};
use crate::time::Clock;

/// The `typ` header of a DPoP proof (RFC 9449 §4.2).
pub const PROOF_TYPE: &str = "dpop+jwt";

/// The proof algorithms accepted, as listed in `dpop_signing_alg_values_supported` and in the
/// `algs` of a `WWW-Authenticate: DPoP` challenge.
pub const SUPPORTED_ALGORITHMS: [Algorithm; 2] = [Algorithm::ES256, Algorithm::EdDSA];

/// The `algs` parameter of a `DPoP` challenge: the supported algorithms, space-separated.
pub fn supported_algorithms() -> String {
    SUPPORTED_ALGORITHMS.iter().map(|algorithm| algorithm.as_str()).collect::<Vec<_>>().join(" ")
}

/// What a proof verifier accepts.
#[derive(Debug, Clone)]
pub struct ProofSettings {
    /// How far a proof's `iat` may lie from now, either way. A proof is also remembered this
    /// long past its `iat`, so it can never be replayed while it is still fresh.
    pub iat_window: Duration,
    /// How many `jti` values are remembered. When that many proofs are still fresh, new proofs
    /// are refused with a 503 rather than forgetting one that could then be replayed.
    pub replay_capacity: u64,
    /// Proofs longer than this are refused before any decoding.
    pub max_proof_bytes: usize,
}

impl Default for ProofSettings {
    /// A 60 s window, 200,000 remembered proofs (about 3,300 requests a second sustained), 4 KiB
    /// proofs.
    fn default() -> Self {
        Self { iat_window: Duration::from_secs(60), replay_capacity: 200_000, max_proof_bytes: 4096 }
    }
}

/// Why a proof was refused: each is a 401 with `error="invalid_dpop_proof"` (RFC 9449 §7.1), or
/// `invalid_dpop_proof` at the token endpoint (§5), except [`ProofError::ReplayCacheFull`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// No `DPoP` header, or more than one (§4.3 point 1).
    #[error("exactly one DPoP proof header is required")]
    Missing,
    /// Longer than the configured cap.
    #[error("DPoP proof too large")]
    TooLarge,
    /// Not a compact JWS of base64url parts, or its header or claims are not the JSON expected.
    #[error("malformed DPoP proof")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("DPoP proof typ must be dpop+jwt")]
    WrongType,
    /// `alg` is not ES256 or EdDSA.
    #[error("DPoP proof algorithm not supported")]
    UnsupportedAlgorithm,
    /// `jwk` is missing, not a public key of `alg`, or carries private key members.
    #[error("DPoP proof jwk is not a public key of its algorithm")]
    BadKey,
    /// The signature does not verify with `jwk`.
    #[error("DPoP proof signature invalid")]
    BadSignature,
    /// `htm` is not this request's method.
    #[error("DPoP proof htm does not match the request method")]
    WrongMethod,
    /// `htu` is not this request's URI.
    #[error("DPoP proof htu does not match the request URI")]
    WrongUri,
    /// `iat` is outside the window around now.
    #[error("DPoP proof iat is outside the acceptable window")]
    Stale,
    /// `ath` is missing or is not the hash of the presented access token.
    #[error("DPoP proof ath does not match the access token")]
    WrongTokenHash,
    /// The proof's key is not the one the access token (or refresh token) is bound to.
    #[error("DPoP proof key does not match the token's binding")]
    WrongKey,
    /// This `jti` was seen before: a replay.
    #[error("DPoP proof replayed")]
    Replayed,
    /// The replay cache holds as many fresh proofs as it may: a 503, not a 401, since the
    /// proof may be perfectly good.
    #[error("DPoP replay cache full")]
    ReplayCacheFull,
}

impl ProofError {
    /// A short label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "dpop_missing",
            Self::TooLarge => "dpop_too_large",
            Self::Malformed => "dpop_malformed",
            Self::WrongType => "dpop_wrong_type",
            Self::UnsupportedAlgorithm => "dpop_unsupported_alg",
            Self::BadKey => "dpop_bad_key",
            Self::BadSignature => "dpop_bad_signature",
            Self::WrongMethod => "dpop_wrong_htm",
            Self::WrongUri => "dpop_wrong_htu",
            Self::Stale => "dpop_stale",
            Self::WrongTokenHash => "dpop_wrong_ath",
            Self::WrongKey => "dpop_wrong_key",
            Self::Replayed => "dpop_replayed",
            Self::ReplayCacheFull => "dpop_replay_cache_full",
        }
    }
}

/// The request a proof must have been made for.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// The request's absolute URI as the client addressed it: the public base URL plus the
    /// path. A query or fragment is ignored.
    pub uri: &'a str,
    /// The access token the proof accompanies (resource requests): `ath` must be its hash.
    /// `None` at the token endpoint, where there is none yet.
    pub access_token: Option<&'a str>,
    /// The thumbprint the proof's key must have: the token's `cnf.jkt`, or the key a refresh
    /// token is bound to. `None` when any key may be used (a first token request).
    pub expected_thumbprint: Option<&'a str>,
}

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key: the `cnf.jkt` to bind a token to.
    pub thumbprint: String,
}

/// Verifies DPoP proofs and remembers their `jti`s. Cheap to clone; clones share the replay
/// cache, so one verifier per process (per service) is the replay boundary.
#[derive(Clone)]
pub struct ProofVerifier {
    settings: ProofSettings,
    clock: Clock,
    seen: moka::sync::Cache<[u8; 32], ()>,
    /// How many entries `seen` holds: counted on insert and on removal, since the cache's
    /// own count lags until its housekeeping runs.
    remembered: Arc<AtomicU64>,
}

impl std::fmt::Debug for ProofVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ProofVerifier").field("settings", &self.settings).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
}

/// JWK members that only a private (or symmetric) key has: a proof carrying one has leaked its
/// key, or is trying to be verified with a shared secret.
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl ProofVerifier {
    /// A verifier reading the time from `clock`.
    pub fn new(settings: ProofSettings, clock: Clock) -> Self {
        // Room above the capacity so the cache's own eviction never runs before our check
        // refuses new proofs: an evicted `jti` could be replayed.
        let headroom = settings.replay_capacity / 4 + 16;
        let remembered = Arc::new(AtomicU64::new(0));
        let forgotten = remembered.clone();
        let seen = moka::sync::Cache::builder()
            .max_capacity(settings.replay_capacity.saturating_add(headroom))
            // A proof is fresh from `iat - window` to `iat + window`: remembered from its first
            // use until it can no longer pass the `iat` check.
            .time_to_live(settings.iat_window.saturating_mul(2).saturating_add(Duration::from_secs(1)))
            .eviction_listener(move |_, (), cause| {
                if cause != moka::notification::RemovalCause::Replaced {
                    forgotten.fetch_sub(1, Ordering::Relaxed);
                }
            })
            .build();
        Self { settings, clock, seen, remembered }
    }

    /// The settings in force.
    pub fn settings(&self) -> &ProofSettings {
        &self.settings
    }

    /// Checks `proof` against `request` and records its `jti`.
    pub fn verify(&self, proof: &str, request: &ProofRequest<'_>) -> Result<VerifiedProof, ProofError> {
        let result = self.verify_uncounted(proof, request);
        if let Err(error) = &result {
            metrics::counter!("dpop_proof_rejections_total", "reason" => error.reason()).increment(1);
        }
        result
    }

    fn verify_uncounted(&self, proof: &str, request: &ProofRequest<'_>) -> Result<VerifiedProof, ProofError> {
        if proof.len() > self.settings.max_proof_bytes {
            return Err(ProofError::TooLarge);
        }
        let (header, claims, signing_input, signature) = split(proof)?;
        if !header.typ.as_deref().is_some_and(|typ| typ.eq_ignore_ascii_case(PROOF_TYPE)) {
            return Err(ProofError::WrongType);
        }
        let algorithm = Algorithm::parse(&header.alg)
            .filter(|algorithm| SUPPORTED_ALGORITHMS.contains(algorithm))
            .ok_or(ProofError::UnsupportedAlgorithm)?;
        let key = public_key(header.jwk, algorithm)?;
        if !key.verify(signing_input, &signature) {
            return Err(ProofError::BadSignature);
        }
        let claims: ProofClaims = serde_json::from_slice(&claims).map_err(|_| ProofError::Malformed)?;
        if claims.jti.is_empty() || claims.jti.len() > 256 {
            return Err(ProofError::Malformed);
        }
        if claims.htm != request.method {
            return Err(ProofError::WrongMethod);
        }
        if !same_target_uri(&claims.htu, request.uri) {
            return Err(ProofError::WrongUri);
        }
        let window = i64::try_from(self.settings.iat_window.as_secs()).unwrap_or(i64::MAX);
        if claims.iat.saturating_sub(self.clock.now()).saturating_abs() > window {
            return Err(ProofError::Stale);
        }
        if let Some(token) = request.access_token
            && claims.ath.as_deref() != Some(token_hash(token).as_str())
        {
            return Err(ProofError::WrongTokenHash);
        }
        let thumbprint = key.thumbprint();
        if request.expected_thumbprint.is_some_and(|expected| expected != thumbprint) {
            return Err(ProofError::WrongKey);
        }
        self.remember(&thumbprint, &claims.jti)?;
        Ok(VerifiedProof { thumbprint })
    }

    /// Records a proof's `jti` (per key, so one client cannot burn another's), refusing one
    /// seen before and refusing everything while the cache is full.
    fn remember(&self, thumbprint: &str, jti: &str) -> Result<(), ProofError> {
        let mut hasher = Sha256::new();
        hasher.update(thumbprint.as_bytes());
        hasher.update([0]);
        hasher.update(jti.as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        if self.seen.contains_key(&key) {
            return Err(ProofError::Replayed);
        }
        if self.remembered.load(Ordering::Relaxed) >= self.settings.replay_capacity {
            // Expired entries leave at the cache's housekeeping: let it run before refusing.
            self.seen.run_pending_tasks();
            if self.remembered.load(Ordering::Relaxed) >= self.settings.replay_capacity {
                return Err(ProofError::ReplayCacheFull);
            }
        }
        // Counted before the insert, so the listener's decrement can never run first.
        self.remembered.fetch_add(1, Ordering::Relaxed);
        if self.seen.entry(key).or_insert(()).is_fresh() {
            Ok(())
        } else {
            self.remembered.fetch_sub(1, Ordering::Relaxed);
            Err(ProofError::Replayed)
        }
    }
}

/// A client's DPoP key: makes the proofs a Rust client sends with its token requests and its
/// calls to resources. (A browser makes them with Web Crypto instead; see the demo app.)
pub struct ProofKey {
    key: SigningKey,
}

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ProofKey").field("thumbprint", &self.thumbprint()).finish_non_exhaustive()
    }
}

impl ProofKey {
    /// A fresh key of `algorithm`, which must be one of [`SUPPORTED_ALGORITHMS`].
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        if !SUPPORTED_ALGORITHMS.contains(&algorithm) {
            return Err(KeyError::Invalid(format!("DPoP keys are ES256 or EdDSA, not {algorithm}")));
        }
        Ok(Self { key: SigningKey::generate(algorithm)? })
    }

    /// The key as PKCS#8 DER, to keep it (e.g. in a file only its owner can read).
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        self.key.to_pkcs8_der()
    }

    /// A key kept with [`to_pkcs8_der`](Self::to_pkcs8_der).
    pub fn from_pkcs8_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        if !SUPPORTED_ALGORITHMS.contains(&algorithm) {
            return Err(KeyError::Invalid(format!("DPoP keys are ES256 or EdDSA, not {algorithm}")));
        }
        Ok(Self { key: SigningKey::from_pkcs8_der(algorithm, der)? })
    }

    /// The RFC 7638 thumbprint: the `cnf.jkt` of the tokens bound to this key.
    pub fn thumbprint(&self) -> String {
        self.key.verifying_key().thumbprint()
    }

    /// The public key as a proof's `jwk` header carries it: no `kid`, `alg` or `use`.
    pub fn public_jwk(&self) -> Jwk {
        Jwk { kid: None, alg: None, key_use: None, ..self.key.verifying_key().to_jwk("") }
    }

    /// The algorithm of its proofs.
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// A proof for a request of `method` to `uri`, made at `iat` (Unix seconds), with a fresh
    /// random `jti`, and `ath` when it accompanies `access_token`.
    pub fn proof(
        &self,
        method: &str,
        uri: &str,
        access_token: Option<&str>,
        iat: i64,
    ) -> Result<String, KeyError> {
        let mut jti = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut jti);
        let mut claims = serde_json::json!({
            "jti": URL_SAFE_NO_PAD.encode(jti), "htm": method, "htu": uri, "iat": iat,
        });
        if let Some(token) = access_token {
            claims["ath"] = serde_json::Value::String(token_hash(token));
        }
        self.sign(&self.header(), &claims)
    }

    /// The header of its proofs: `typ`, `alg` and the public `jwk`.
    pub fn header(&self) -> serde_json::Value {
        serde_json::json!({ "typ": PROOF_TYPE, "alg": self.algorithm().as_str(), "jwk": self.public_jwk() })
    }

    /// A compact JWS of exactly `header` and `claims`, signed with this key: for tests that
    /// need a proof some rule refuses.
    pub fn sign(&self, header: &serde_json::Value, claims: &serde_json::Value) -> Result<String, KeyError> {
        let encode = |value: &serde_json::Value| {
            serde_json::to_vec(value)
                .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
                .map_err(|error| KeyError::Invalid(error.to_string()))
        };
        let mut proof = format!("{}.{}", encode(header)?, encode(claims)?);
        let signature = self.key.sign(proof.as_bytes())?;
        proof.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut proof);
        Ok(proof)
    }
}

/// The `DPoP` proof header of a request: `Ok(None)` without one, [`ProofError::Missing`] with
/// more than one (RFC 9449 §4.3 point 1), [`ProofError::Malformed`] when it is not visible ASCII.
pub fn proof_in(headers: &http::HeaderMap) -> Result<Option<&str>, ProofError> {
    let mut values = headers.get_all("dpop").iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value.to_str().map(Some).map_err(|_| ProofError::Malformed),
        (Some(_), Some(_)) => Err(ProofError::Missing),
    }
}

/// `ath`: the base64url SHA-256 of the access token (RFC 9449 §4.2).
pub fn token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

type Split<'a> = (ProofHeader, Vec<u8>, &'a [u8], Vec<u8>);

fn split(proof: &str) -> Result<Split<'_>, ProofError> {
    let mut parts = proof.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| ProofError::Malformed);
    let parsed: ProofHeader = serde_json::from_slice(&decode(header)?).map_err(|_| ProofError::Malformed)?;
    let signing_input = &proof.as_bytes()[..header.len() + 1 + payload.len()];
    Ok((parsed, decode(payload)?, signing_input, decode(signature)?))
}

/// The proof's `jwk` as a key of `algorithm`, refusing private members and a JWK naming
/// another algorithm.
fn public_key(
    jwk: Option<serde_json::Map<String, serde_json::Value>>,
    algorithm: Algorithm,
) -> Result<VerifyingKey, ProofError> {
    let members = jwk.ok_or(ProofError::BadKey)?;
    if PRIVATE_JWK_MEMBERS.iter().any(|member| members.contains_key(*member)) {
        return Err(ProofError::BadKey);
    }
    let mut jwk: Jwk =
        serde_json::from_value(serde_json::Value::Object(members)).map_err(|_| ProofError::BadKey)?;
    // The key is used with the header's algorithm only; a JWK that names another is refused.
    if jwk.alg.as_deref().is_some_and(|alg| alg != algorithm.as_str()) {
        return Err(ProofError::BadKey);
    }
    jwk.alg = Some(algorithm.as_str().to_owned());
    VerifyingKey::from_jwk(&jwk).map_err(|_| ProofError::BadKey)
}

/// Whether two URIs name the same target, ignoring query and fragment, after RFC 3986 §6.2.2
/// and §6.2.3 normalisation (case of scheme and host, default port, percent-encoding case, dot
/// segments, an empty path as `/`).
pub fn same_target_uri(claimed: &str, actual: &str) -> bool {
    match (target(claimed), target(actual)) {
        (Some(claimed), Some(actual)) => claimed == actual,
        _ => false,
    }
}

fn target(uri: &str) -> Option<String> {
    let mut parsed = url::Url::parse(uri).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return None;
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    // `url` keeps percent-escapes as written; their hex digits are case-insensitive.
    let mut normalised = String::with_capacity(uri.len());
    let mut rest = parsed.as_str();
    while let Some(index) = rest.find('%') {
        normalised.push_str(&rest[..index]);
        let escape = rest.get(index..index + 3).unwrap_or(&rest[index..]);
        normalised.push_str(&escape.to_ascii_uppercase());
        rest = &rest[index + escape.len()..];
    }
    normalised.push_str(rest);
    Some(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_uris_compare_after_normalisation_and_without_query_or_fragment() {
        let same = [
            ("https://API.example.com/orders", "https://api.example.com/orders"),
            ("HTTPS://api.example.com:443/orders", "https://api.example.com/orders"),
            ("http://127.0.0.1:80", "http://127.0.0.1/"),
            ("https://a.example/x?y=1#z", "https://a.example/x"),
            ("https://a.example/a/../orders", "https://a.example/orders"),
            ("https://a.example/%7euser", "https://a.example/%7Euser"),
        ];
        for (claimed, actual) in same {
            assert!(same_target_uri(claimed, actual), "{claimed} vs {actual}");
        }
        let different = [
            ("https://a.example/orders", "http://a.example/orders"),
            ("https://a.example:8443/orders", "https://a.example/orders"),
            ("https://a.example/orders/", "https://a.example/orders"),
            ("https://b.example/orders", "https://a.example/orders"),
            ("https://a.example/Orders", "https://a.example/orders"),
            ("/orders", "/orders"),
            ("ftp://a.example/orders", "ftp://a.example/orders"),
        ];
        for (claimed, actual) in different {
            assert!(!same_target_uri(claimed, actual), "{claimed} vs {actual}");
        }
    }

    #[test]
    fn the_token_hash_is_base64url_sha256_of_the_token() {
        // SHA-256("abc") from FIPS 180-2, base64url without padding.
        assert_eq!(token_hash("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }

    fn verifier(capacity: u64) -> ProofVerifier {
        ProofVerifier::new(
            ProofSettings { replay_capacity: capacity, ..ProofSettings::default() },
            Clock::system(),
        )
    }

    fn request<'a>(token: Option<&'a str>, thumbprint: Option<&'a str>) -> ProofRequest<'a> {
        ProofRequest {
            method: "POST",
            uri: "https://as.example/oauth2/token",
            access_token: token,
            expected_thumbprint: thumbprint,
        }
    }

    #[test]
    fn a_proof_verifies_once_and_yields_its_key_thumbprint() {
        for algorithm in SUPPORTED_ALGORITHMS {
            let key = ProofKey::generate(algorithm).unwrap();
            let verifier = verifier(10);
            let now = crate::time::unix_now_i64();
            let proof = key.proof("POST", "https://as.example/oauth2/token", None, now).unwrap();

            let verified = verifier.verify(&proof, &request(None, None)).unwrap();

            assert_eq!(verified.thumbprint, key.thumbprint());
            assert_eq!(verifier.verify(&proof, &request(None, None)), Err(ProofError::Replayed));
        }
        assert!(ProofKey::generate(Algorithm::RS256).is_err());
    }

    #[test]
    fn a_kept_key_comes_back_with_the_same_thumbprint() {
        let key = ProofKey::generate(Algorithm::ES256).unwrap();

        let restored = ProofKey::from_pkcs8_der(Algorithm::ES256, &key.to_pkcs8_der().unwrap()).unwrap();

        assert_eq!(restored.thumbprint(), key.thumbprint());
        assert!(ProofKey::from_pkcs8_der(Algorithm::EdDSA, &key.to_pkcs8_der().unwrap()).is_err());
    }

    #[test]
    fn a_full_replay_cache_refuses_new_proofs_instead_of_forgetting_old_ones() {
        let key = ProofKey::generate(Algorithm::EdDSA).unwrap();
        let verifier = verifier(2);
        let now = crate::time::unix_now_i64();
        let proof = || key.proof("POST", "https://as.example/oauth2/token", None, now).unwrap();
        let (first, second) = (proof(), proof());

        assert!(verifier.verify(&first, &request(None, None)).is_ok());
        assert!(verifier.verify(&second, &request(None, None)).is_ok());
        assert_eq!(verifier.verify(&proof(), &request(None, None)), Err(ProofError::ReplayCacheFull));
        assert_eq!(verifier.verify(&first, &request(None, None)), Err(ProofError::Replayed));
    }

    #[test]
    fn the_challenge_lists_both_algorithms() {
        assert_eq!(supported_algorithms(), "ES256 EdDSA");
    }
}
