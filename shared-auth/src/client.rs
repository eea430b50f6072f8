//! `ServiceTokenClient`: OAuth2 client-credentials tokens for calls between services.
//!
//! The token endpoint is found through discovery. A token is reused until shortly before it
//! expires; one refresh serves every concurrent caller; and while the auth server is down the
//! client keeps using the token it has until that token really expires.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::fetch::{self, FetchError, HttpClientError};
use crate::time::Clock;

/// After a failed renewal, how long (in clock seconds) the current token is used before
/// renewal is tried again.
const RENEWAL_RETRY_SECS: i64 = 2;

/// Largest token-endpoint response read, success or error. An access token is a few KiB; a
/// server (or something in its place) that streams more costs this much memory, no more.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// Why no service token could be obtained.
#[derive(Debug, thiserror::Error)]
pub enum ServiceTokenError {
    /// Discovery or the token endpoint could not be reached or answered badly.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The token endpoint refused our credentials or scope.
    #[error("token endpoint refused the request: {0}")]
    Refused(String),
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

/// A client-credentials token source. Cheap to clone.
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
        if let Some(current) = cached.as_ref()
            && self.inner.clock.now() < current.renew_at
        {
            return Ok(current.token.clone());
        }
        match self.fetch().await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                *cached = Some(fresh);
                Ok(token)
            }
            // The auth server is down but our token is still valid: keep using it, and let the
            // callers queued behind this attempt use it too instead of each waiting out another
            // failing call (with a hanging auth server, one timeout each, one after the other).
            Err(error) => {
                let now = self.inner.clock.now();
                match cached.as_mut() {
                    Some(current) if now < current.expires_at => {
                        tracing::warn!(%error, "service token renewal failed; using the current token");
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
        let settings = &self.inner.settings;
        let endpoint = self.token_endpoint().await?;
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = settings.scope.as_deref() {
            form.push(("scope", scope));
        }
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
            .form(&form)
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

fn form_urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|encoded| encoded.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_form_urlencoded_before_basic_encoding() {
        assert_eq!(form_urlencode("a b:c/d"), "a+b%3Ac%2Fd");
        assert_eq!(form_urlencode("plain-id"), "plain-id");
    }
}
