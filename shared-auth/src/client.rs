//! `ServiceTokenClient`: OAuth2 tokens for calls between services: the service's own
//! (client credentials, for calls made with no user) and, by token exchange (RFC 8693), one
//! for a call made on behalf of the user whose request is being served.
//!
//! The token endpoint is found through discovery. A token is reused until shortly before it
//! expires; one request serves every concurrent caller of the same token; and while the auth
//! server is down the client keeps using the token it has until that token really expires.
//! Exchanged tokens are cached per user token and audience, keyed by a SHA-256 of both (the
//! user's token is never kept as a key), in a bounded cache.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::fetch::{self, FetchError, HttpClientError};
use crate::time::Clock;

/// After a failed renewal, how long (in clock seconds) the current token is used before
/// renewal is tried again.
const RENEWAL_RETRY_SECS: i64 = 2;

/// How many exchanged tokens are kept, one per user token and audience: about a request's
/// worth of users at once. Beyond it the least used go, and are exchanged again when needed.
const EXCHANGED_TOKENS_CAPACITY: u64 = 10_000;

/// The grant type of token exchange (RFC 8693 §2.1).
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token type of an access token (RFC 8693 §3).
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Largest token-endpoint response read, success or error. An access token is a few KiB; a
/// server (or something in its place) that streams more costs this much memory, no more.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// Why no service token could be obtained.
#[derive(Debug, thiserror::Error)]
pub enum ServiceTokenError {
    /// Discovery or the token endpoint could not be reached or answered badly.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The token endpoint refused our credentials, the scope, or the token to exchange.
    #[error("token endpoint refused the request: {0}")]
    Refused(String),
}

/// What a failed renewal may fall back on while the token in hand is still valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// Any failure: the service's own token stays good whatever the auth server says now.
    AnyFailure,
    /// Only an auth server that could not be reached: a refusal of the exchange means the
    /// user's token no longer counts, and neither does what it was exchanged for.
    Unreachable,
}

/// Settings of a [`ServiceTokenClient`].
#[derive(Debug, Clone)]
pub struct ServiceTokenSettings {
    /// The auth server's issuer URL (discovery base).
    pub issuer: String,
    /// Our client id.
    pub client_id: String,
    /// Our client secret.
    pub client_secret: SecretString,
    /// Scopes to ask for (space-separated); `None` asks for the client's registered scopes.
    pub scope: Option<String>,
    /// Total time a call to the auth server may take.
    pub timeout: Duration,
}

/// Times are Unix seconds of the client's [`Clock`]: whole seconds, like `expires_in`.
struct CachedToken {
    token: SecretString,
    /// Renew from here on.
    renew_at: i64,
    /// Unusable from here on.
    expires_at: i64,
}

/// One cached token, and the lock that makes its callers share one request.
type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// A source of service tokens: client credentials, and token exchange. Cheap to clone.
#[derive(Clone)]
pub struct ServiceTokenClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ServiceTokenClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServiceTokenClient")
            .field("client_id", &self.inner.settings.client_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: ServiceTokenSettings,
    http: reqwest::Client,
    token_endpoint: RwLock<Option<String>>,
    /// Held while fetching, so concurrent callers share one request.
    cached: tokio::sync::Mutex<Option<CachedToken>>,
    /// Exchanged tokens, by [`exchange_key`] of the user token and audience; each slot's lock
    /// is held while exchanging, so concurrent calls for one user share one request.
    exchanged: moka::sync::Cache<[u8; 32], TokenSlot>,
    /// Decides when the cached token is renewed and when it has expired.
    clock: Clock,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl ServiceTokenClient {
    /// Creates the client; nothing is fetched until the first call.
    pub fn new(settings: ServiceTokenSettings) -> Result<Self, HttpClientError> {
        Self::with_clock(settings, Clock::system())
    }

    /// [`ServiceTokenClient::new`] deciding renewal and expiry by `clock`. Tests pass a
    /// [`ManualClock`](crate::time::ManualClock)'s clock to reach a token's renewal time or
    /// expiry without waiting for it.
    pub fn with_clock(settings: ServiceTokenSettings, clock: Clock) -> Result<Self, HttpClientError> {
        let http = fetch::bounded_client(settings.timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                http,
                token_endpoint: RwLock::new(None),
                cached: tokio::sync::Mutex::new(None),
                exchanged: moka::sync::Cache::builder()
                    .max_capacity(EXCHANGED_TOKENS_CAPACITY)
                    // Each entry is checked against its own expiry on use (by the clock);
                    // this only bounds how long a dead one occupies space.
                    .time_to_live(Duration::from_secs(3600))
                    .build(),
                clock,
            }),
        })
    }

    /// A valid access token: the cached one, or a fresh one when it is about to expire.
    // Called for every outbound request, so only at debug; the secret and the token stay out.
    #[tracing::instrument(level = "debug", name = "service_token", skip_all,
        fields(client_id = %self.inner.settings.client_id))]
    pub async fn token(&self) -> Result<SecretString, ServiceTokenError> {
        let mut cached = self.inner.cached.lock().await;
        self.current_or_renewed(&mut cached, Fallback::AnyFailure, || self.fetch()).await
    }

    /// A token for calling `audience` on behalf of the user whose access token is `user_token`
    /// (the one the current request came with), obtained by token exchange (RFC 8693): the
    /// user's identity, `act` naming this client, at most the user token's lifetime and
    /// scope, cut down to what this client is registered for. It is cached per user token and
    /// audience until shortly before it expires, and concurrent calls for one user token share
    /// one exchange. While the auth server is unreachable a cached token is used until it
    /// really expires; a refused exchange (the user's token revoked or expired, say) is an
    /// error, whatever is cached.
    ///
    /// The client must be registered with `--exchange-audience AUDIENCE`, and be in the user
    /// token's `aud`. For calls made with no user, use [`token`](Self::token).
    // Called for every outbound request on a user's behalf, so only at debug; the tokens stay
    // out.
    #[tracing::instrument(level = "debug", name = "exchanged_token", skip_all,
        fields(client_id = %self.inner.settings.client_id, audience = %audience))]
    pub async fn exchange(
        &self,
        user_token: &str,
        audience: &str,
    ) -> Result<SecretString, ServiceTokenError> {
        let slot = self.inner.exchanged.get_with(exchange_key(user_token, audience), TokenSlot::default);
        let mut cached = slot.lock().await;
        self.current_or_renewed(&mut cached, Fallback::Unreachable, || {
            self.fetch_exchanged(user_token, audience)
        })
        .await
    }

    /// The token in `cached` until its renewal time, then a fresh one from `fetch`. If that
    /// fails as `fallback` allows and the token in hand is still valid, that one, retried
    /// after a short delay.
    async fn current_or_renewed<Fetch, Fetched>(
        &self,
        cached: &mut Option<CachedToken>,
        fallback: Fallback,
        fetch: Fetch,
    ) -> Result<SecretString, ServiceTokenError>
    where
        Fetch: FnOnce() -> Fetched,
        Fetched: Future<Output = Result<CachedToken, ServiceTokenError>>,
    {
        if let Some(current) = cached.as_ref()
            && self.inner.clock.now() < current.renew_at
        {
            return Ok(current.token.clone());
        }
        match fetch().await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                *cached = Some(fresh);
                Ok(token)
            }
            Err(error @ ServiceTokenError::Refused(_)) if fallback == Fallback::Unreachable => {
                *cached = None;
                Err(error)
            }
            // The auth server is down but our token is still valid: keep using it, and let the
            // callers queued behind this attempt use it too instead of each waiting out another
            // failing call (with a hanging auth server, one timeout each, one after the other).
            Err(error) => {
                let now = self.inner.clock.now();
                match cached.as_mut() {
                    Some(current) if now < current.expires_at => {
                        tracing::warn!(%error, "token renewal failed; using the current token");
                        current.renew_at = now.saturating_add(RENEWAL_RETRY_SECS).min(current.expires_at);
                        Ok(current.token.clone())
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// Adds `Authorization: Bearer <service token>` to a request.
    pub async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ServiceTokenError> {
        let token = self.token().await?;
        Ok(request.bearer_auth(token.expose_secret()))
    }

    async fn token_endpoint(&self) -> Result<String, ServiceTokenError> {
        if let Some(endpoint) = self.inner.token_endpoint.read().ok().and_then(|slot| slot.clone()) {
            return Ok(endpoint);
        }
        let metadata = fetch::discover(&self.inner.http, &self.inner.settings.issuer).await?;
        let endpoint = metadata
            .token_endpoint
            .ok_or_else(|| FetchError::Invalid("discovery has no token_endpoint".into()))?;
        if let Ok(mut slot) = self.inner.token_endpoint.write() {
            *slot = Some(endpoint.clone());
        }
        Ok(endpoint)
    }

    /// One client-credentials request. Its span carries the client id, never the secret.
    #[tracing::instrument(name = "fetch_service_token", skip_all,
        fields(client_id = %self.inner.settings.client_id))]
    async fn fetch(&self) -> Result<CachedToken, ServiceTokenError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = self.inner.settings.scope.as_deref() {
            form.push(("scope", scope));
        }
        self.request_token(&form).await
    }

    /// One token exchange (RFC 8693 §2.1). Its span carries the client id and the audience,
    /// never the user's token.
    #[tracing::instrument(name = "exchange_token", skip_all,
        fields(client_id = %self.inner.settings.client_id, audience = %audience))]
    async fn fetch_exchanged(
        &self,
        user_token: &str,
        audience: &str,
    ) -> Result<CachedToken, ServiceTokenError> {
        let form = [
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("subject_token", user_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", audience),
        ];
        self.request_token(&form).await
    }

    /// POSTs `form` to the token endpoint, authenticated by HTTP Basic.
    async fn request_token(&self, form: &[(&str, &str)]) -> Result<CachedToken, ServiceTokenError> {
        let settings = &self.inner.settings;
        let endpoint = self.token_endpoint().await?;
        let requested_at = self.inner.clock.now();
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        let response = self
            .inner
            .http
            .post(&endpoint)
            .basic_auth(
                form_urlencode(&settings.client_id),
                Some(form_urlencode(settings.client_secret.expose_secret())),
            )
            .form(form)
            .send()
            .await
            .map_err(|error| FetchError::Unreachable(error.without_url().to_string()))?;
        let status = response.status();
        let body = fetch::read_capped(response, MAX_TOKEN_RESPONSE_BYTES).await?;
        if !status.is_success() {
            let detail = String::from_utf8_lossy(&body).chars().take(200).collect::<String>();
            return Err(ServiceTokenError::Refused(format!("{status}: {detail}")));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|error| FetchError::Invalid(format!("token response: {error}")))?;
        let lifetime = i64::try_from(parsed.expires_in).unwrap_or(i64::MAX);
        // Renew when 10% of the lifetime (at least 5 s, at most 60 s) is left.
        let margin = (lifetime / 10).clamp(5, 60);
        Ok(CachedToken {
            token: SecretString::from(parsed.access_token),
            renew_at: requested_at.saturating_add(lifetime.saturating_sub(margin).max(0)),
            expires_at: requested_at.saturating_add(lifetime),
        })
    }
}

/// The cache key of an exchanged token: a SHA-256 of the audience and the user token, so the
/// cache holds no user token in the clear and two users' tokens never share an entry.
fn exchange_key(user_token: &str, audience: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(audience.as_bytes());
    // The audience has no NUL, so where it ends is unambiguous.
    hasher.update([0]);
    hasher.update(user_token.as_bytes());
    hasher.finalize().into()
}

fn form_urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|encoded| encoded.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanged_tokens_are_keyed_by_audience_and_user_token_together() {
        let key = exchange_key("token", "users-service");
        assert_eq!(key, exchange_key("token", "users-service"));
        assert_ne!(key, exchange_key("token", "orders-service"));
        assert_ne!(key, exchange_key("other-token", "users-service"));
        assert_ne!(exchange_key("ab", "c"), exchange_key("b", "ca"));
    }

    #[test]
    fn credentials_are_form_urlencoded_before_basic_encoding() {
        assert_eq!(form_urlencode("a b:c/d"), "a+b%3Ac%2Fd");
        assert_eq!(form_urlencode("plain-id"), "plain-id");
    }
}
