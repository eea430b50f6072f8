//! The back channel to one upstream OpenID provider: its discovery document, the code
//! exchange at its token endpoint, and the verification of its id_tokens.
//!
//! Every call is bounded by `UPSTREAM_TIMEOUT_MS` and a body cap, and follows no redirects. The
//! key set is shared-auth's [`KeyCache`]: cached, refetched once per cooldown window for an
//! unknown `kid` (single flight), bounded in size and time, exactly as the services hold our
//! own keys.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use shared_auth::KeyCacheSettings;
use shared_auth::fetch::{self, FetchError};
use shared_auth::jws::{self, Algorithm};
use shared_auth::keys::{KeyCache, KeyLookupError};
use shared_auth::time::Clock;

/// Largest discovery document, token response or key set accepted from an upstream.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// A discovery document is read again after this long.
const METADATA_TTL_SECS: i64 = 300;
/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECS: i64 = 60;
/// An id_token issued longer ago than this is refused, whatever its `exp`.
const MAX_ID_TOKEN_AGE_SECS: i64 = 600;

/// Why a call to the upstream failed; each is a page the user sees (502 or 504).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Connection refused or reset, DNS failure: 502.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// No answer within the timeout: 504.
    #[error("upstream timed out")]
    Timeout,
    /// An HTTP status other than 200: 502.
    #[error("upstream answered HTTP {0}")]
    Status(u16),
    /// An answer that does not parse or does not pass the checks: 502.
    #[error("invalid upstream answer: {0}")]
    Invalid(String),
}

impl UpstreamError {
    fn from_reqwest(error: &reqwest::Error) -> Self {
        if error.is_timeout() { Self::Timeout } else { Self::Unreachable(error.to_string()) }
    }
}

/// The members of an OpenID provider's discovery document the relying party uses.
#[derive(Debug, Clone, Deserialize)]
pub struct OpenIdMetadata {
    /// Must equal the registered issuer exactly (OpenID Connect Discovery §4.3).
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The key set of its id_tokens.
    pub jwks_uri: String,
    /// RFC 9207: the provider sends `iss` with its authorization responses, so we require it.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// What discovery found, with the key cache over the `jwks_uri` it names.
#[derive(Debug, Clone)]
struct Discovered {
    metadata: Arc<OpenIdMetadata>,
    keys: KeyCache,
    fetched_at: i64,
}

/// One upstream provider as the server knows it at run time. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Upstream {
    issuer: String,
    client_id: String,
    http: reqwest::Client,
    timeout: Duration,
    clock: Clock,
    discovered: Arc<Mutex<Option<Discovered>>>,
    /// Whether the last attempt to read discovery failed (the login page says "unavailable").
    last_failed: Arc<std::sync::atomic::AtomicBool>,
}

/// The verified claims of an upstream id_token that the login uses.
#[derive(Debug, Clone)]
pub struct UpstreamIdentity {
    /// The upstream's stable id of the user: half of the link key.
    pub subject: String,
    /// The name the upstream suggests, only for naming a new account.
    pub preferred_username: Option<String>,
}

impl Upstream {
    /// An upstream for `issuer` and our `client_id` there; nothing is fetched yet.
    pub fn new(
        issuer: &str,
        client_id: &str,
        timeout: Duration,
        clock: Clock,
    ) -> Result<Self, UpstreamError> {
        let http =
            fetch::bounded_client(timeout).map_err(|error| UpstreamError::Invalid(error.to_string()))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            http,
            timeout,
            clock,
            discovered: Arc::new(Mutex::new(None)),
            last_failed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// Whether this upstream is the one registered as `issuer` with `client_id`.
    pub fn is_for(&self, issuer: &str, client_id: &str) -> bool {
        self.issuer == issuer && self.client_id == client_id
    }

    /// Whether the last attempt to read its discovery failed.
    pub fn seems_unavailable(&self) -> bool {
        self.last_failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached(&self) -> Option<Discovered> {
        self.discovered.lock().ok().and_then(|slot| slot.clone())
    }

    /// The discovery document: cached for a few minutes; a failed re-read keeps the last good
    /// one, as the key cache keeps its keys.
    pub async fn metadata(&self) -> Result<Arc<OpenIdMetadata>, UpstreamError> {
        Ok(self.discover().await?.metadata)
    }

    async fn discover(&self) -> Result<Discovered, UpstreamError> {
        let now = self.clock.now();
        let cached = self.cached();
        if let Some(cached) = &cached
            && now.saturating_sub(cached.fetched_at) < METADATA_TTL_SECS
        {
            return Ok(cached.clone());
        }
        let result = self.fetch_metadata().await;
        self.last_failed.store(result.is_err(), std::sync::atomic::Ordering::Relaxed);
        let metadata = match (result, cached) {
            (Ok(metadata), _) => metadata,
            (Err(error), Some(cached)) => {
                tracing::warn!(issuer = %self.issuer, %error, "upstream discovery failed; keeping the last one");
                return Ok(cached);
            }
            (Err(error), None) => return Err(error),
        };
        let keys = match self.cached() {
            Some(previous) if previous.metadata.jwks_uri == metadata.jwks_uri => previous.keys,
            _ => {
                let settings = KeyCacheSettings {
                    fetch_timeout: self.timeout,
                    max_body_bytes: MAX_BODY_BYTES,
                    jwks_uri: Some(metadata.jwks_uri.clone()),
                    ..KeyCacheSettings::new(&self.issuer)
                };
                KeyCache::with_clock(settings, self.clock.clone())
                    .map_err(|error| UpstreamError::Invalid(error.to_string()))?
            }
        };
        let discovered = Discovered { metadata: Arc::new(metadata), keys, fetched_at: now };
        if let Ok(mut slot) = self.discovered.lock() {
            *slot = Some(discovered.clone());
        }
        Ok(discovered)
    }

    async fn fetch_metadata(&self) -> Result<OpenIdMetadata, UpstreamError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let response =
            self.http.get(&url).send().await.map_err(|error| UpstreamError::from_reqwest(&error))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(UpstreamError::Status(response.status().as_u16()));
        }
        let body = read_body(response).await?;
        let metadata: OpenIdMetadata = serde_json::from_slice(&body)
            .map_err(|error| UpstreamError::Invalid(format!("discovery document: {error}")))?;
        if metadata.issuer != self.issuer {
            return Err(UpstreamError::Invalid(format!(
                "discovery names issuer {:?}, expected {:?}",
                metadata.issuer, self.issuer
            )));
        }
        for (member, url) in [
            ("authorization_endpoint", &metadata.authorization_endpoint),
            ("token_endpoint", &metadata.token_endpoint),
            ("jwks_uri", &metadata.jwks_uri),
        ] {
            let scheme = url::Url::parse(url).map(|url| url.scheme().to_owned());
            if !matches!(scheme.as_deref(), Ok("https" | "http")) {
                return Err(UpstreamError::Invalid(format!(
                    "discovery names {member} that is not an http(s) URL"
                )));
            }
        }
        Ok(metadata)
    }

    /// Exchanges the code at the token endpoint (with the client secret, HTTP Basic, when there
    /// is one, and the PKCE verifier) and returns the id_token.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        client_secret: Option<&SecretString>,
    ) -> Result<String, UpstreamError> {
        let metadata = self.metadata().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ];
        let mut request = self.http.post(&metadata.token_endpoint);
        match client_secret {
            // RFC 6749 §2.3.1: both halves form-encoded before Basic.
            Some(secret) => {
                let encode =
                    |value: &str| form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
                request = request.basic_auth(encode(&self.client_id), Some(encode(secret.expose_secret())));
            }
            None => form.push(("client_id", &self.client_id)),
        }
        let response =
            request.form(&form).send().await.map_err(|error| UpstreamError::from_reqwest(&error))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(UpstreamError::Status(response.status().as_u16()));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
        }
        let body = read_body(response).await?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|error| UpstreamError::Invalid(format!("token response: {error}")))?;
        parsed.id_token.ok_or_else(|| UpstreamError::Invalid("the token response has no id_token".into()))
    }

    /// Verifies an id_token (OpenID Connect Core §3.1.3.7): signed by a key of the upstream's
    /// key set with that key's own algorithm (EdDSA, ES256 or RS256: never `none` or HMAC),
    /// then `iss`, `aud`, `azp`, `nonce`, `exp` and `iat`.
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<UpstreamIdentity, IdTokenError> {
        let keys = self.discover().await.map_err(IdTokenError::Upstream)?.keys;
        let parts = jws::split_compact(token).map_err(|_| IdTokenError::Invalid("malformed"))?;
        if parts.header.crit.is_some() {
            return Err(IdTokenError::Invalid("critical header"));
        }
        // The allow-list: only asymmetric algorithms we implement. `none`, `HS256` and anything
        // else stop here, before any key is looked up.
        if Algorithm::parse(&parts.header.alg).is_none() {
            return Err(IdTokenError::Invalid("algorithm not allowed"));
        }
        let kid = parts.header.kid.as_deref().ok_or(IdTokenError::Invalid("no kid"))?;
        let stale = keys.age().is_none_or(|age| age > keys.settings().refresh_max);
        if stale {
            // A key set older than the refresh bound (or none yet) is read again; if that fails,
            // the keys we have still count until their maximum age.
            let _ = keys.refresh().await;
        }
        let key = keys.key_for(kid).await.map_err(|error| match error {
            KeyLookupError::UnknownKid => IdTokenError::UnknownKey,
            KeyLookupError::NoKeys | KeyLookupError::TooStale => IdTokenError::KeysUnavailable,
        })?;
        // The key decides the algorithm; the header may only agree (RFC 8725 §3.1).
        if key.algorithm().as_str() != parts.header.alg {
            return Err(IdTokenError::Invalid("algorithm differs from the key's"));
        }
        if !key.verify(parts.signing_input, &parts.signature) {
            return Err(IdTokenError::Invalid("bad signature"));
        }
        let claims: UpstreamClaims = serde_json::from_slice(&parts.payload)
            .map_err(|_| IdTokenError::Invalid("claims do not parse"))?;
        self.check_claims(&claims, nonce)?;
        Ok(UpstreamIdentity { subject: claims.sub, preferred_username: claims.preferred_username })
    }

    fn check_claims(&self, claims: &UpstreamClaims, nonce: &str) -> Result<(), IdTokenError> {
        if claims.iss != self.issuer {
            return Err(IdTokenError::Invalid("another issuer"));
        }
        let audiences: Vec<&str> = match &claims.aud {
            Audience::One(audience) => vec![audience.as_str()],
            Audience::Many(audiences) => audiences.iter().map(String::as_str).collect(),
        };
        if !audiences.contains(&self.client_id.as_str()) {
            return Err(IdTokenError::Invalid("for another client"));
        }
        // Core §3.1.3.7 (4, 5): with several audiences `azp` must name us; when present, always.
        match claims.azp.as_deref() {
            Some(azp) if azp != self.client_id => return Err(IdTokenError::Invalid("azp is another client")),
            None if audiences.len() > 1 => return Err(IdTokenError::Invalid("several audiences and no azp")),
            _ => {}
        }
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(IdTokenError::NonceMismatch);
        }
        let now = self.clock.now();
        if claims.exp.saturating_add(LEEWAY_SECS) <= now {
            return Err(IdTokenError::Invalid("expired"));
        }
        if claims.iat.saturating_sub(LEEWAY_SECS) > now
            || now.saturating_sub(claims.iat) > MAX_ID_TOKEN_AGE_SECS
        {
            return Err(IdTokenError::Invalid("iat out of range"));
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(IdTokenError::Invalid("bad sub"));
        }
        Ok(())
    }
}

/// Why an id_token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The key set could not be read.
    #[error(transparent)]
    Upstream(UpstreamError),
    /// No key of the upstream's key set has the token's `kid`, even after a refetch.
    #[error("signed by an unknown key")]
    UnknownKey,
    /// No usable key set (never fetched, or past its maximum age).
    #[error("the upstream's keys are unavailable")]
    KeysUnavailable,
    /// The `nonce` is not this login's: a code injected from another login.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// Anything else: the reason, for the log.
    #[error("invalid id_token: {0}")]
    Invalid(&'static str),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct UpstreamClaims {
    iss: String,
    sub: String,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    exp: i64,
    iat: i64,
    #[serde(default)]
    preferred_username: Option<String>,
}

async fn read_body(response: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
    fetch::read_capped(response, MAX_BODY_BYTES).await.map_err(|error| match error {
        FetchError::TooLarge(limit) => UpstreamError::Invalid(format!("answer larger than {limit} bytes")),
        FetchError::Unreachable(detail) if detail.contains("timed out") => UpstreamError::Timeout,
        other => UpstreamError::Unreachable(other.to_string()),
    })
}
