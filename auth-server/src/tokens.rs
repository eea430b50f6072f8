//! Tokens: RFC 9068 JWT access tokens signed with the key ring's current key, and the opaque
//! random values (refresh tokens, client secrets) stored only as their SHA-256.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use service_kit::Seconds;
use sha2::{Digest as _, Sha256};
use shared_auth::claims::{ACCESS_TOKEN_TYPE, AccessClaims, Actor, Confirmation};
use shared_auth::jws;
use shared_auth::time::Clock;

use crate::keyring::KeyRing;

/// Who a token is for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// User id or client id.
    pub subject: String,
    /// The OAuth client.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Audiences.
    pub audiences: Vec<String>,
    /// User roles (empty for clients).
    pub roles: Vec<String>,
    /// Login name (users only).
    pub username: Option<String>,
    /// Login session (users only).
    pub sid: Option<String>,
    /// The upstream provider a federated user logged in through (`idp` claim).
    pub idp: Option<String>,
    /// The thumbprint of the client's DPoP key, for a DPoP-bound token (`cnf.jkt`).
    pub bound_key: Option<String>,
}

/// A signed access token and what the token response needs to say about it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Bound to a DPoP key (`cnf.jkt`): its `token_type` is `DPoP`.
    pub bound: bool,
}

/// Signs access tokens. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    keyring: KeyRing,
    issuer: String,
    ttl: Seconds,
    clock: Clock,
}

impl TokenIssuer {
    /// An issuer for `issuer` with the given lifetime, dating tokens by `clock`.
    pub fn new(keyring: KeyRing, issuer: String, ttl: Seconds, clock: Clock) -> Self {
        Self { keyring, issuer, ttl, clock }
    }

    /// The `iss` value.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key ring.
    pub fn keyring(&self) -> &KeyRing {
        &self.keyring
    }

    /// Signs a token. Signing uses the in-memory parsed key: no key parsing per token.
    pub fn issue(&self, request: TokenRequest) -> anyhow::Result<IssuedToken> {
        self.sign(request, None, self.clock.now())
    }

    /// Signs a token that `delegation.actor` obtained for the request's subject by token
    /// exchange (RFC 8693): it carries `act`, and lives no longer than `delegation.not_after`
    /// (the subject token's `exp`) nor than a token of the normal lifetime. `None` when
    /// `not_after` has passed by the time of signing.
    pub fn issue_delegated(
        &self,
        request: TokenRequest,
        delegation: Delegation,
    ) -> anyhow::Result<Option<IssuedToken>> {
        let now = self.clock.now();
        if delegation.not_after <= now {
            return Ok(None);
        }
        self.sign(request, Some(delegation), now).map(Some)
    }

    fn sign(
        &self,
        request: TokenRequest,
        delegation: Option<Delegation>,
        now: i64,
    ) -> anyhow::Result<IssuedToken> {
        // The lifetime is at most ten years: no overflow for any clock reading before year 292e9.
        let normal_exp = now.saturating_add(self.ttl.as_i64());
        let (exp, act) = match delegation {
            None => (normal_exp, None),
            Some(delegation) => (normal_exp.min(delegation.not_after), Some(delegation.actor)),
        };
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let idp = request.idp;
        let bound = request.bound_key.is_some();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: request.subject,
            aud: request.audiences,
            exp,
            iat: now,
            nbf: Some(now),
            jti,
            client_id: request.client_id,
            scope: Some(request.scope),
            roles: request.roles,
            preferred_username: request.username,
            sid: request.sid,
            act,
            cnf: request.bound_key.map(|jkt| Confirmation { jkt }),
        };
        let signing = self.keyring.signing_key()?;
        let claims = WithIdp { claims: &claims, idp: idp.as_deref() };
        let token = jws::sign_compact(&signing.key, &signing.kid, ACCESS_TOKEN_TYPE, &claims)
            .context("failed to sign access token")?;
        Ok(IssuedToken { token, expires_in: exp.saturating_sub(now).unsigned_abs(), bound })
    }
}

/// The claims as signed: shared-auth's, plus `idp` for a federated user (services need not
/// read it, and those that do find the provider's name).
#[derive(serde::Serialize)]
struct WithIdp<'a> {
    #[serde(flatten)]
    claims: &'a AccessClaims,
    #[serde(skip_serializing_if = "Option::is_none")]
    idp: Option<&'a str>,
}

/// What makes an exchanged token different from the subject token it replaces.
#[derive(Debug, Clone)]
pub struct Delegation {
    /// `act`: the exchanging client, with the subject token's own `act` nested inside.
    pub actor: Actor,
    /// The subject token's `exp`: the exchanged token must not outlive it.
    pub not_after: i64,
}

/// An opaque token in plain form (given to the client once) and its storage hash.
#[derive(Debug)]
pub struct OpaqueToken {
    /// The value the client holds.
    pub plain: SecretString,
    /// What the database stores: [`hash_token`] of `plain`.
    pub hash: String,
}

impl OpaqueToken {
    /// 256 random bits, base64url. Stored only as SHA-256: a fast hash is right for a random
    /// 256-bit value (nothing to brute-force), unlike for a password.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        let plain = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_token(&plain);
        Self { plain: SecretString::from(plain), hash }
    }
}

/// SHA-256 hex of an opaque token.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}
