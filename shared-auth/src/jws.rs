//! Compact JWS signing and verification with keys parsed once and bound to one algorithm.
//!
//! We sign and verify with the RustCrypto primitives directly instead of through a general JWT
//! library for three reasons: the parsed key is kept for the life of the process (no key parsing
//! per token), every key carries exactly one algorithm so an `alg` swap cannot select another
//! verification routine (RFC 8725 §3.1), and the header rules of RFC 9068 (`typ`, `crit`) are ours
//! to enforce, byte for byte.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::{RandomizedSigner as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The signature algorithms this platform issues and accepts. Anything else (`none`, `HS256`,
/// `PS256`, ...) has no variant and therefore no code path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037), the default: small keys, fast, deterministic.
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for verifiers that only know RSA.
    RS256,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// Parses an `alg` value exactly (JOSE names are case-sensitive).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "EdDSA" => Some(Self::EdDSA),
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| format!("unsupported algorithm {s:?} (EdDSA, ES256 or RS256)"))
    }
}

/// Why a key could not be created, parsed or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key material does not decode as the expected type.
    #[error("invalid key material: {0}")]
    Invalid(String),
    /// Signing failed in the underlying primitive.
    #[error("signing failed")]
    Signing,
}

/// A private signing key bound to its algorithm. Its `Debug` output never shows key material.
pub enum SigningKey {
    /// Ed25519.
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// P-256.
    Es256(Box<p256::ecdsa::SigningKey>),
    /// RSA 2048+.
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, [redacted])", self.algorithm())
    }
}

impl SigningKey {
    /// Generates a fresh key. RSA generation takes about a second: call from a blocking thread.
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        let mut rng = rand_core::OsRng;
        Ok(match algorithm {
            Algorithm::EdDSA => Self::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(&mut rng))),
            Algorithm::ES256 => Self::Es256(Box::new(p256::ecdsa::SigningKey::random(&mut rng))),
            Algorithm::RS256 => {
                let private = rsa::RsaPrivateKey::new(&mut rng, 2048)
                    .map_err(|error| KeyError::Invalid(error.to_string()))?;
                Self::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(private)))
            }
        })
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::EdDSA,
            Self::Es256(_) => Algorithm::ES256,
            Self::Rs256(_) => Algorithm::RS256,
        }
    }

    /// PKCS#8 DER encoding of the private key, for storage (encrypted) only.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        use pkcs8::EncodePrivateKey as _;
        let document = match self {
            Self::Ed25519(key) => key.to_pkcs8_der(),
            Self::Es256(key) => key.to_pkcs8_der(),
            Self::Rs256(key) => {
                let private: &rsa::RsaPrivateKey = (**key).as_ref();
                private.to_pkcs8_der()
            }
        }
        .map_err(|error| KeyError::Invalid(error.to_string()))?;
        Ok(document.as_bytes().to_vec())
    }

    /// Parses a PKCS#8 DER private key for the given algorithm.
    pub fn from_pkcs8_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        use pkcs8::DecodePrivateKey as _;
        let invalid = |error: pkcs8::Error| KeyError::Invalid(error.to_string());
        Ok(match algorithm {
            Algorithm::EdDSA => {
                Self::Ed25519(Box::new(ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(invalid)?))
            }
            Algorithm::ES256 => {
                Self::Es256(Box::new(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(invalid)?))
            }
            Algorithm::RS256 => {
                let private = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(invalid)?;
                Self::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(private)))
            }
        })
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            Self::Ed25519(key) => VerifyingKey::Ed25519(key.verifying_key()),
            Self::Es256(key) => VerifyingKey::Es256(*key.verifying_key()),
            Self::Rs256(key) => {
                let private: &rsa::RsaPrivateKey = (**key).as_ref();
                VerifyingKey::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::new(rsa::RsaPublicKey::from(
                    private,
                ))))
            }
        }
    }

    /// Signs `message` and returns the raw JWS signature bytes.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            Self::Ed25519(key) => Ok(key.sign(message).to_bytes().to_vec()),
            Self::Es256(key) => {
                let signature: p256::ecdsa::Signature =
                    key.try_sign(message).map_err(|_| KeyError::Signing)?;
                Ok(signature.to_bytes().to_vec())
            }
            Self::Rs256(key) => {
                // Randomized signing blinds the private-key operation against timing attacks.
                let signature =
                    key.try_sign_with_rng(&mut rand_core::OsRng, message).map_err(|_| KeyError::Signing)?;
                Ok(rsa::signature::SignatureEncoding::to_vec(&signature))
            }
        }
    }
}

/// A public key bound to exactly one algorithm.
#[derive(Clone)]
pub enum VerifyingKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// P-256.
    Es256(p256::ecdsa::VerifyingKey),
    /// RSA.
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.algorithm())
    }
}

/// Smallest RSA modulus accepted from a key set (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, to bound verification cost.
const MAX_RSA_BITS: usize = 4096;

impl VerifyingKey {
    /// The only algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::EdDSA,
            Self::Es256(_) => Algorithm::ES256,
            Self::Rs256(_) => Algorithm::RS256,
        }
    }

    /// Checks a raw signature over `message`. Any malformed signature is simply `false`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Ed25519(key) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                // `verify_strict` also rejects small-order keys and non-canonical encodings.
                key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
            }
            Self::Es256(key) => {
                // JWS uses the fixed 64-byte r||s form; DER or any other length is invalid, and
                // `from_slice` rejects r or s equal to zero or not below the group order.
                if signature.len() != 64 {
                    return false;
                }
                match p256::ecdsa::Signature::from_slice(signature) {
                    Ok(parsed) => key.verify(message, &parsed).is_ok(),
                    Err(_) => false,
                }
            }
            Self::Rs256(key) => {
                let public: &rsa::RsaPublicKey = (**key).as_ref();
                let modulus_len = public.size();
                if signature.len() != modulus_len {
                    return false;
                }
                match rsa::pkcs1v15::Signature::try_from(signature) {
                    Ok(parsed) => key.verify(message, &parsed).is_ok(),
                    Err(_) => false,
                }
            }
        }
    }

    /// The public JWK for this key (RFC 7517, RFC 8037), with `kid`, `alg` and `use`.
    pub fn to_jwk(&self, kid: &str) -> Jwk {
        let mut jwk = Jwk {
            kid: Some(kid.to_owned()),
            alg: Some(self.algorithm().as_str().to_owned()),
            key_use: Some("sig".to_owned()),
            ..Jwk::default()
        };
        match self {
            Self::Ed25519(key) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(URL_SAFE_NO_PAD.encode(key.as_bytes()));
            }
            Self::Es256(key) => {
                let point = key.to_encoded_point(false);
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = point.x().map(|x| URL_SAFE_NO_PAD.encode(x));
                jwk.y = point.y().map(|y| URL_SAFE_NO_PAD.encode(y));
            }
            Self::Rs256(key) => {
                let public: &rsa::RsaPublicKey = (**key).as_ref();
                jwk.kty = "RSA".into();
                jwk.n = Some(URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()));
                jwk.e = Some(URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()));
            }
        }
        jwk
    }

    /// Builds a key from a JWK. The JWK must name its `alg`, and `kty`/`crv` must agree with it:
    /// a key is never used with an algorithm it was not published for.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let invalid = |why: &str| KeyError::Invalid(why.to_owned());
        let alg = jwk.alg.as_deref().ok_or_else(|| invalid("JWK without alg"))?;
        let algorithm = Algorithm::parse(alg).ok_or_else(|| invalid("unsupported alg"))?;
        if jwk.key_use.as_deref().is_some_and(|key_use| key_use != "sig") {
            return Err(invalid("JWK not for signatures"));
        }
        let member = |value: &Option<String>, name: &str| -> Result<Vec<u8>, KeyError> {
            let encoded = value.as_deref().ok_or_else(|| KeyError::Invalid(format!("missing {name}")))?;
            URL_SAFE_NO_PAD.decode(encoded).map_err(|_| KeyError::Invalid(format!("{name} is not base64url")))
        };
        match (algorithm, jwk.kty.as_str(), jwk.crv.as_deref()) {
            (Algorithm::EdDSA, "OKP", Some("Ed25519")) => {
                let x = member(&jwk.x, "x")?;
                let bytes = <[u8; 32]>::try_from(x.as_slice()).map_err(|_| invalid("x length"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| invalid("not an Ed25519 point"))?;
                if key.is_weak() {
                    return Err(invalid("weak Ed25519 key"));
                }
                Ok(Self::Ed25519(key))
            }
            (Algorithm::ES256, "EC", Some("P-256")) => {
                let x = member(&jwk.x, "x")?;
                let y = member(&jwk.y, "y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(invalid("P-256 coordinates must be 32 bytes"));
                }
                let point = p256::EncodedPoint::from_affine_coordinates(
                    p256::FieldBytes::from_slice(&x),
                    p256::FieldBytes::from_slice(&y),
                    false,
                );
                let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| invalid("not a P-256 point"))?;
                Ok(Self::Es256(key))
            }
            (Algorithm::RS256, "RSA", None) => {
                let n = rsa::BigUint::from_bytes_be(&member(&jwk.n, "n")?);
                let e = rsa::BigUint::from_bytes_be(&member(&jwk.e, "e")?);
                let bits = n.bits();
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(invalid("RSA modulus size"));
                }
                let public = rsa::RsaPublicKey::new(n, e).map_err(|_| invalid("RSA key"))?;
                Ok(Self::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::new(public))))
            }
            _ => Err(invalid("kty/crv do not match alg")),
        }
    }

    /// A key id derived from the public key (RFC 7638 thumbprint), stable across restarts.
    pub fn thumbprint(&self) -> String {
        // Members in lexicographic order, no whitespace, as RFC 7638 §3 requires.
        let jwk = self.to_jwk("");
        let canonical = match self {
            Self::Ed25519(_) => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, jwk.x.unwrap_or_default())
            }
            Self::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk.x.unwrap_or_default(),
                jwk.y.unwrap_or_default()
            ),
            Self::Rs256(_) => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                jwk.e.unwrap_or_default(),
                jwk.n.unwrap_or_default()
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// One public key as published in a JWKS. Private members (`d`, `p`, ...) have no field, so a
/// key set can never carry them out of the auth server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    /// Key type: `OKP`, `EC` or `RSA`.
    pub kty: String,
    /// Key id, matched against the token header's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The one algorithm this key is used with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Always `sig` here.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Curve for `OKP` and `EC` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public point (OKP) or x coordinate (EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// y coordinate (EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JwkSet {
    /// The published keys.
    pub keys: Vec<Jwk>,
}

/// Signs a compact JWS: `base64url(header).base64url(payload).base64url(signature)`.
pub fn sign_compact(
    key: &SigningKey,
    kid: &str,
    typ: &str,
    payload: &impl Serialize,
) -> Result<String, KeyError> {
    #[derive(Serialize)]
    struct Header<'a> {
        alg: &'static str,
        typ: &'a str,
        kid: &'a str,
    }
    let header = serde_json::to_vec(&Header { alg: key.algorithm().as_str(), typ, kid })
        .map_err(|error| KeyError::Invalid(error.to_string()))?;
    let payload = serde_json::to_vec(payload).map_err(|error| KeyError::Invalid(error.to_string()))?;
    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 100);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}

/// The header members a verifier looks at. Unknown members are allowed by RFC 7515 and ignored,
/// which is how `jku`, `x5u`, `x5c` and `jwk` are never used; `crit` is captured to be refused.
#[derive(Debug, Deserialize)]
pub struct JoseHeader {
    /// Signature algorithm named by the token.
    pub alg: String,
    /// Media type of the whole token.
    #[serde(default)]
    pub typ: Option<String>,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Critical extensions: we understand none, so any value means rejection (RFC 7515 §4.1.11).
    #[serde(default)]
    pub crit: Option<serde::de::IgnoredAny>,
}

/// A compact JWS split into its parts, with header and payload decoded but nothing verified.
#[derive(Debug)]
pub struct UnverifiedJws<'a> {
    /// The parsed protected header.
    pub header: JoseHeader,
    /// The decoded payload bytes.
    pub payload: Vec<u8>,
    /// `header.payload`: the bytes the signature covers.
    pub signing_input: &'a [u8],
    /// The decoded signature.
    pub signature: Vec<u8>,
}

/// Why a compact JWS could not even be split and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// Not three dot-separated base64url parts.
    Malformed,
    /// The header is not the JSON object we expect.
    BadHeader,
}

/// Splits and decodes a compact JWS without verifying it.
pub fn split_compact(token: &str) -> Result<UnverifiedJws<'_>, SplitError> {
    let mut parts = token.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SplitError::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| SplitError::Malformed);
    let header_bytes = decode(header)?;
    let header_json: JoseHeader = serde_json::from_slice(&header_bytes).map_err(|_| SplitError::BadHeader)?;
    let signing_input = &token.as_bytes()[..header.len() + 1 + payload.len()];
    Ok(UnverifiedJws {
        header: header_json,
        payload: decode(payload)?,
        signing_input,
        signature: decode(signature)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_its_jwk_and_pkcs8() {
        for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
            let key = SigningKey::generate(algorithm).unwrap();
            let restored = SigningKey::from_pkcs8_der(algorithm, &key.to_pkcs8_der().unwrap()).unwrap();
            let token = sign_compact(&restored, "k1", "at+jwt", &serde_json::json!({"a": 1})).unwrap();
            let public = VerifyingKey::from_jwk(&key.verifying_key().to_jwk("k1")).unwrap();
            let parts = split_compact(&token).unwrap();
            assert_eq!(parts.header.alg, algorithm.as_str());
            assert!(public.verify(parts.signing_input, &parts.signature));
            assert!(!public.verify(b"other message", &parts.signature));
        }
    }

    #[test]
    fn a_jwk_whose_alg_disagrees_with_its_key_type_is_rejected() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let mut jwk = key.verifying_key().to_jwk("k");
        jwk.alg = Some("ES256".into());
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
        jwk.alg = None;
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
        jwk.alg = Some("HS256".into());
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
    }

    #[test]
    fn thumbprints_are_stable_and_distinct() {
        let a = SigningKey::generate(Algorithm::EdDSA).unwrap().verifying_key();
        let b = SigningKey::generate(Algorithm::EdDSA).unwrap().verifying_key();
        assert_eq!(a.thumbprint(), a.thumbprint());
        assert_ne!(a.thumbprint(), b.thumbprint());
    }

    #[test]
    fn split_rejects_wrong_part_counts_and_bad_base64() {
        assert_eq!(split_compact("a.b").unwrap_err(), SplitError::Malformed);
        assert_eq!(split_compact("a.b.c.d").unwrap_err(), SplitError::Malformed);
        assert_eq!(split_compact("!!.e30.AA").unwrap_err(), SplitError::Malformed);
        assert_eq!(split_compact("bm90anNvbg.e30.AA").unwrap_err(), SplitError::BadHeader);
    }
}
