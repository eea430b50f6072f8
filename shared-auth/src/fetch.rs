//! Bounded HTTP fetches from the auth server: discovery metadata, key sets, revocation lists.
//!
//! Everything the services fetch from the auth server goes through here, so the same limits
//! hold everywhere: a total timeout per call and a cap on the body size. A server that hangs,
//! streams forever or answers with garbage costs one bounded failed call, nothing more.

use std::time::Duration;

use serde::Deserialize;

/// Why a fetch failed. The variant names are the `outcome` label of `jwks_refresh_total`.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connection refused, reset, DNS failure or timeout.
    #[error("auth server unreachable: {0}")]
    Unreachable(String),
    /// An HTTP status other than 200 (or 304 where allowed).
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// The body exceeded the size cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The body did not parse or did not pass validation.
    #[error("invalid response: {0}")]
    Invalid(String),
}

impl FetchError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Status(_) => "bad_status",
            Self::TooLarge(_) => "too_large",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// A body fetched within the limits, with the caching headers we honour.
#[derive(Debug)]
pub struct Fetched {
    /// The body, at most the configured cap.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, when the server sent one.
    pub max_age: Option<Duration>,
    /// The `ETag`, when the server sent one.
    pub etag: Option<String>,
    /// True when the server answered 304 Not Modified to our `If-None-Match`.
    pub not_modified: bool,
}

/// Fetches `url` with a total timeout (set on `client`) and a body cap.
#[tracing::instrument(level = "debug", skip_all, fields(url = %url))]
pub async fn fetch_capped(
    client: &reqwest::Client,
    url: &str,
    max_bytes: usize,
    if_none_match: Option<&str>,
) -> Result<Fetched, FetchError> {
    let mut request = client.get(url);
    if let Some(etag) = if_none_match {
        request = request.header(http::header::IF_NONE_MATCH, etag);
    }
    let response =
        request.send().await.map_err(|error| FetchError::Unreachable(error.without_url().to_string()))?;
    let header = |name: http::HeaderName| {
        response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
    };
    let max_age = header(http::header::CACHE_CONTROL).and_then(|value| parse_max_age(&value));
    let etag = header(http::header::ETAG);
    if response.status() == http::StatusCode::NOT_MODIFIED && if_none_match.is_some() {
        return Ok(Fetched { body: Vec::new(), max_age, etag, not_modified: true });
    }
    if response.status() != http::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let body = read_capped(response, max_bytes).await?;
    Ok(Fetched { body, max_age, etag, not_modified: false })
}

/// Reads a response body of at most `max_bytes`: refused at once when `Content-Length` says it
/// is larger, and abandoned as soon as the streamed body passes the cap (so a server that
/// streams forever costs `max_bytes` of memory, not more).
pub async fn read_capped(mut response: reqwest::Response, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    if response.content_length().is_some_and(|length| length > max_bytes as u64) {
        return Err(FetchError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|error| FetchError::Unreachable(error.without_url().to_string()))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Extracts `max-age` from a `Cache-Control` value; `no-store`/`no-cache` mean zero.
pub fn parse_max_age(cache_control: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    max_age
}

/// The subset of RFC 8414 authorization-server metadata the services use.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerMetadata {
    /// Must equal the configured issuer exactly (RFC 8414 §3.3).
    pub issuer: String,
    /// Where the public keys are.
    pub jwks_uri: String,
    /// Where client-credentials tokens are issued.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Where the signed revocation list is (platform extension).
    #[serde(default)]
    pub revocation_list_uri: Option<String>,
}

/// Largest discovery document accepted.
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Fetches and checks the discovery document of `issuer`: RFC 8414 metadata
/// (`/.well-known/oauth-authorization-server`), or, where the issuer serves only OpenID Connect
/// Discovery 1.0 (`/.well-known/openid-configuration`, as Google and most OpenID providers do),
/// that document. Only an HTTP error status moves on to the second location: an unreachable
/// issuer is unreachable at both.
#[tracing::instrument(level = "debug", skip_all, fields(issuer = %issuer))]
pub async fn discover(client: &reqwest::Client, issuer: &str) -> Result<ServerMetadata, FetchError> {
    let base = issuer.trim_end_matches('/');
    let rfc8414 = format!("{base}/.well-known/oauth-authorization-server");
    let fetched = match fetch_capped(client, &rfc8414, MAX_METADATA_BYTES, None).await {
        Err(FetchError::Status(_)) => {
            let openid = format!("{base}/.well-known/openid-configuration");
            fetch_capped(client, &openid, MAX_METADATA_BYTES, None).await?
        }
        other => other?,
    };
    let metadata: ServerMetadata = serde_json::from_slice(&fetched.body)
        .map_err(|error| FetchError::Invalid(format!("discovery document: {error}")))?;
    if metadata.issuer != issuer {
        return Err(FetchError::Invalid(format!(
            "discovery names issuer {:?}, expected {issuer:?}",
            metadata.issuer
        )));
    }
    metadata.check_same_origin()?;
    Ok(metadata)
}

impl ServerMetadata {
    /// Every URL the services fetch from or post credentials to must be on the issuer's own
    /// origin (scheme, host and port). Discovery is fetched from the issuer, but a document
    /// that someone could change there (or a proxy in front of it) must not send the key
    /// fetch, the revocation poll or our client secret anywhere else.
    pub fn check_same_origin(&self) -> Result<(), FetchError> {
        let issuer = origin_of(&self.issuer)
            .ok_or_else(|| FetchError::Invalid(format!("issuer {:?} is not an http(s) URL", self.issuer)))?;
        let named = [
            ("jwks_uri", Some(&self.jwks_uri)),
            ("revocation_list_uri", self.revocation_list_uri.as_ref()),
            ("token_endpoint", self.token_endpoint.as_ref()),
        ];
        for (member, url) in named {
            let Some(url) = url else { continue };
            if origin_of(url).as_ref() != Some(&issuer) {
                return Err(FetchError::Invalid(format!(
                    "discovery names {member} {url:?}, which is not on the issuer's origin"
                )));
            }
        }
        Ok(())
    }
}

/// Scheme, host and port (the default one when none is written), for http(s) URLs only.
fn origin_of(url: &str) -> Option<(String, String, u16)> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?.to_ascii_lowercase();
    Some((parsed.scheme().to_owned(), host, parsed.port_or_known_default()?))
}

/// The HTTP client could not be built (no TLS backend, an unusable system configuration).
/// Services fail at start with it rather than fall back to a client without timeouts.
#[derive(Debug, thiserror::Error)]
#[error("failed to build the HTTP client: {0}")]
pub struct HttpClientError(#[from] reqwest::Error);

/// An HTTP client whose every call ends within `timeout`, connection set-up included, and
/// that follows no redirects.
pub fn bounded_client(timeout: Duration) -> Result<reqwest::Client, HttpClientError> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("shared-auth/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(issuer: &str, jwks_uri: &str, token_endpoint: Option<&str>) -> ServerMetadata {
        ServerMetadata {
            issuer: issuer.into(),
            jwks_uri: jwks_uri.into(),
            token_endpoint: token_endpoint.map(Into::into),
            revocation_list_uri: Some(format!("{issuer}/v1/revocations")),
        }
    }

    #[test]
    fn urls_on_the_issuers_origin_are_accepted_whatever_their_path() {
        let same =
            metadata("http://127.0.0.1:8080", "http://127.0.0.1:8080/keys", Some("http://127.0.0.1:8080/t"));
        let default_port = metadata("https://127.0.0.1", "https://127.0.0.1:443/jwks.json", None);
        let issuer_with_path =
            metadata("http://127.0.0.1:8080/realm", "http://127.0.0.1:8080/other/jwks", None);

        for accepted in [same, default_port, issuer_with_path] {
            assert!(accepted.check_same_origin().is_ok(), "{accepted:?}");
        }
    }

    #[test]
    fn a_url_on_another_scheme_host_or_port_is_refused() {
        let issuer = "http://127.0.0.1:8080";
        let refused = [
            metadata(issuer, "https://127.0.0.1:8080/jwks.json", None),
            metadata(issuer, "http://127.0.0.2:8080/jwks.json", None),
            metadata(issuer, "http://127.0.0.1:8081/jwks.json", None),
            metadata(issuer, "http://127.0.0.1:8080/jwks.json", Some("http://127.0.0.1:9/token")),
            metadata(issuer, "file:///etc/jwks.json", None),
            ServerMetadata {
                revocation_list_uri: Some("http://127.0.0.1:9/v1/revocations".into()),
                ..metadata(issuer, "http://127.0.0.1:8080/jwks.json", None)
            },
        ];

        for metadata in refused {
            assert!(matches!(metadata.check_same_origin(), Err(FetchError::Invalid(_))), "{metadata:?}");
        }
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(parse_max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }
}
