//! Access-token issuing: RFC 9068 JWTs signed with the key ring's current key.

use anyhow::Context as _;
use service_kit::Seconds;
use shared_auth::claims::{ACCESS_TOKEN_TYPE, AccessClaims};
use shared_auth::jws;
use shared_auth::time::unix_now_i64;

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
}

/// A signed access token and what the token response needs to say about it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Signs access tokens. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    keyring: KeyRing,
    issuer: String,
    ttl: Seconds,
}

impl TokenIssuer {
    /// An issuer for `issuer` with the given lifetime.
    pub fn new(keyring: KeyRing, issuer: String, ttl: Seconds) -> Self {
        Self { keyring, issuer, ttl }
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
        let now = unix_now_i64();
        // `now` is a clock reading and the lifetime at most ten years: no overflow.
        let exp = now + self.ttl.as_i64();
        let jti = uuid::Uuid::new_v4().simple().to_string();
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
        };
        let signing = self.keyring.signing_key()?;
        let token = jws::sign_compact(&signing.key, &signing.kid, ACCESS_TOKEN_TYPE, &claims)
            .context("failed to sign access token")?;
        Ok(IssuedToken { token, expires_in: self.ttl.as_u64() })
    }
}
