//! OpenID Connect id_tokens (Core §2, §3.1.3.6): signed with the client's `--id-token-alg`
//! from the same key set, header `typ: JWT` so that no service takes one for an access token
//! (those are `at+jwt`, RFC 9068), and with `aud` = the client.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};
use shared_auth::jws::{self, Algorithm, Jwk, VerifyingKey};

use crate::state::AppState;

/// The `typ` of id_tokens.
pub const ID_TOKEN_TYPE: &str = "JWT";

/// The claims of an id_token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The client.
    pub aud: String,
    /// The client (authorized party).
    pub azp: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// When the user entered the password.
    pub auth_time: i64,
    /// The relying party's nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The browser session (what `/oauth2/logout` ends).
    pub sid: String,
    /// Half of the access token's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Login name, with scope `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The upstream provider a federated user logged in through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
}

/// `at_hash` (Core §3.1.3.6): the left half of the access token's hash, by the hash of the
/// id_token's algorithm: SHA-256 for RS256 and ES256, SHA-512 for EdDSA with Ed25519 (as the
/// Ed25519 signature itself uses).
pub fn at_hash(access_token: &str, algorithm: Algorithm) -> String {
    let digest = match algorithm {
        Algorithm::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
        Algorithm::ES256 | Algorithm::RS256 => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Signs an id_token with the newest key of `algorithm`.
pub async fn sign(state: &AppState, algorithm: Algorithm, claims: &IdTokenClaims) -> anyhow::Result<String> {
    let key = state.tokens.keyring().signing_key_for(algorithm).await?;
    jws::sign_compact(&key.key, &key.kid, ID_TOKEN_TYPE, claims).context("failed to sign the id_token")
}

/// The claims of an id_token this server signed, checked for signature (by a published key),
/// `typ` and `iss`, but not for expiry: an `id_token_hint` may have expired (RP-Initiated
/// Logout §2). `None` for anything else.
pub fn verify_hint(state: &AppState, token: &str) -> Option<IdTokenClaims> {
    let parts = jws::split_compact(token).ok()?;
    if parts.header.typ.as_deref() != Some(ID_TOKEN_TYPE) || parts.header.crit.is_some() {
        return None;
    }
    let kid = parts.header.kid.as_deref()?;
    let jwks = state.tokens.keyring().jwks().ok()?;
    let jwk: &Jwk = jwks.keys.iter().find(|jwk| jwk.kid.as_deref() == Some(kid))?;
    let key = VerifyingKey::from_jwk(jwk).ok()?;
    // The token's `alg` must be the key's: no algorithm confusion.
    if key.algorithm().as_str() != parts.header.alg || !key.verify(parts.signing_input, &parts.signature) {
        return None;
    }
    let claims: IdTokenClaims = serde_json::from_slice(&parts.payload).ok()?;
    (claims.iss == state.tokens.issuer()).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core's example hash length: 16 bytes for SHA-256, base64url.
        assert_eq!(at_hash("token", Algorithm::RS256).len(), 22);
        assert_eq!(at_hash("token", Algorithm::EdDSA).len(), 43);
        assert_ne!(at_hash("token", Algorithm::RS256), at_hash("other", Algorithm::RS256));
    }
}
