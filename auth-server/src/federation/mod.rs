//! "Login with …": the auth server as a relying party of upstream OpenID providers (DESIGN.md
//! "Upstream providers").
//!
//! 1. The login page links each provider to `GET /federation/NAME/start` with the pending
//!    authorization request. That validates the request as the authorization endpoint does,
//!    stores a pending login (the SHA-256 of a fresh `state`, a `nonce`, a PKCE verifier, the
//!    request, and the SHA-256 of this browser's CSRF cookie) and sends the browser to the
//!    upstream's `authorization_endpoint` with code + PKCE S256 + `state` + `nonce`.
//! 2. `GET /federation/NAME/callback` consumes the pending login of its `state` once, only from
//!    the browser that started it, checks the RFC 9207 `iss` parameter, exchanges the code and
//!    verifies the id_token ([`upstream`]).
//! 3. The login is linked to a local account by (provider, upstream `sub`) only, never by email
//!    or username. The first login creates an account without a password named
//!    `NAME:<preferred_username>`; `:` is not a username character, so no local registration
//!    can take or collide with that name. Then the authorization continues as after the
//!    password form: consent, code, redirect to the client.
//!
//! Every failure is an HTML page and creates nothing: 4xx for what the browser brought (an
//! unknown, replayed, stale or foreign `state`, a `nonce` or `iss` mismatch), 502/504 for an
//! upstream that is down, slow or answers something unusable.

pub mod cli;
pub mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use shared_auth::time::Clock;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::oauth::authorize::{self, JustNow, Parsed};
use crate::oauth::browser::{self, BrowserCookies, SET_COOKIE};
use crate::oauth::pages;
use crate::state::{AppState, ClientAddress};
use crate::store::federation::{self as store, Consumed, Linked, PendingLogin, Provider};
use crate::store::rate_limits::{self, Window};
use crate::store::users::User;
use crate::tokens::{OpaqueToken, hash_token};
use upstream::{IdTokenError, Upstream, UpstreamError};

/// How long a login may stay at the upstream before its callback is refused.
const PENDING_TTL_SECS: i64 = 600;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start)).routes(routes!(callback))
}

/// Whether `name` is a valid provider name: 1 to 32 of `a-z 0-9 -`, starting with a letter.
/// It appears in the callback path, in account names and in the `idp` claim.
pub fn valid_provider_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().next().is_some_and(|byte| byte.is_ascii_lowercase())
        && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// The redirect URI to register at the upstream for provider `name`.
pub fn redirect_uri(issuer: &str, name: &str) -> String {
    format!("{issuer}/federation/{name}/callback")
}

/// The upstreams the server has talked to, by provider name. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Federation {
    upstreams: Arc<Mutex<HashMap<String, Upstream>>>,
    timeout: Duration,
    clock: Clock,
}

impl Federation {
    /// A registry whose calls to each upstream end within `timeout`.
    pub fn new(timeout: Duration, clock: Clock) -> Self {
        Self { upstreams: Arc::default(), timeout, clock }
    }

    /// The run-time upstream of a provider row, the cached one while its issuer and client id
    /// stay the same (a provider deleted and added again with another issuer gets a new one).
    pub fn upstream(&self, provider: &Provider) -> Result<Upstream, UpstreamError> {
        let mut upstreams =
            self.upstreams.lock().map_err(|_| UpstreamError::Invalid("registry poisoned".into()))?;
        if let Some(existing) = upstreams.get(&provider.name)
            && existing.is_for(&provider.issuer, &provider.client_id)
        {
            return Ok(existing.clone());
        }
        let created = Upstream::new(&provider.issuer, &provider.client_id, self.timeout, self.clock.clone())?;
        upstreams.insert(provider.name.clone(), created.clone());
        Ok(created)
    }

    fn seems_unavailable(&self, name: &str) -> bool {
        self.upstreams
            .lock()
            .ok()
            .and_then(|upstreams| upstreams.get(name).map(Upstream::seems_unavailable))
            .unwrap_or(false)
    }

    /// Reads every registered provider's discovery (cached ones only when due) and forgets
    /// deleted providers: what the login page says about availability follows within one run.
    pub async fn check_all(&self, pool: &sqlx::AnyPool) -> anyhow::Result<()> {
        let providers = store::list_providers(pool).await?;
        if let Ok(mut upstreams) = self.upstreams.lock() {
            upstreams.retain(|name, _| providers.iter().any(|provider| &provider.name == name));
        }
        for provider in &providers {
            if let Err(error) = self.upstream(provider)?.metadata().await {
                tracing::warn!(provider = provider.name, %error, "upstream provider unavailable");
            }
        }
        Ok(())
    }

    /// Runs [`Self::check_all`] every `interval`.
    pub fn spawn_checks(&self, pool: sqlx::AnyPool, interval: Duration) {
        let federation = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = federation.check_all(&pool).await {
                    tracing::warn!(error = format!("{error:#}"), "failed to check the upstream providers");
                }
                tokio::time::sleep(interval).await;
            }
        });
    }
}

/// A provider as the login page shows it.
#[derive(Debug, Clone)]
pub(crate) struct ProviderButton {
    /// "Continue with DISPLAY NAME".
    pub(crate) display_name: String,
    /// Where the link starts the login; `None` while the upstream is unavailable.
    pub(crate) href: Option<String>,
}

/// The login page's provider buttons, read from the database on every page: an added or
/// deleted provider shows at once, on every replica.
pub(crate) async fn buttons(
    state: &AppState,
    fields: &[(&'static str, String)],
) -> anyhow::Result<Vec<ProviderButton>> {
    let providers = store::list_providers(&state.pool).await?;
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields.iter()).finish();
    Ok(providers
        .into_iter()
        .map(|provider| ProviderButton {
            href: (!state.federation.seems_unavailable(&provider.name))
                .then(|| format!("/federation/{}/start?{query}", provider.name)),
            display_name: provider.display_name,
        })
        .collect())
}

/// 256 random bits, base64url.
fn random_value() -> String {
    OpaqueToken::generate().plain.expose_secret().to_owned()
}

fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    pages::error_page(status, title, detail).into_response()
}

/// The page of an upstream that failed: 504 for a timeout, else 502.
fn upstream_failed(provider: &Provider, error: &UpstreamError) -> Response {
    tracing::warn!(provider = provider.name, %error, "upstream provider failed");
    let (status, detail) = match error {
        UpstreamError::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "{} did not answer in time. Please try again later, or log in with your username and password.",
                provider.display_name
            ),
        ),
        // A gateway in front of a stopped upstream answers 502 or 503 for it.
        UpstreamError::Unreachable(_) | UpstreamError::Status(500..) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "{} cannot be reached right now. Please try again later, or log in with your username and password.",
                provider.display_name
            ),
        ),
        UpstreamError::Status(_) | UpstreamError::Invalid(_) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "{} sent an answer that could not be used. Please try again later, or log in with your username and password.",
                provider.display_name
            ),
        ),
    };
    error_page(status, "Sign-in failed", &detail)
}

fn unknown_provider() -> Response {
    error_page(StatusCode::NOT_FOUND, "Unknown provider", "This sign-in provider is not registered.")
}

/// Starts a login at an upstream provider.
///
/// The query is the pending authorization request, validated as `/oauth2/authorize` does.
/// Answers 302 to the upstream's authorization endpoint with code + PKCE S256 + `state` +
/// `nonce`, bound to this browser; 400 for an invalid request, 404 for an unknown provider,
/// 502/504 when the upstream's discovery cannot be read.
#[utoipa::path(get, path = "/federation/{name}/start", tag = "federation",
    params(("name" = String, Path, description = "The provider"), authorize::AuthorizeParams),
    responses(
        (status = 302, description = "Redirect to the upstream provider, or to the client with an error"),
        (status = 400, description = "Unknown client or redirect URI", content_type = "text/html", body = String),
        (status = 404, description = "Unknown provider", content_type = "text/html", body = String),
        (status = 429, description = "Too many starts from this address (FEDERATION_START_LIMIT_PER_MINUTE); Retry-After says when to try again",
            content_type = "text/html", body = String),
        (status = 502, description = "The upstream cannot be reached or answered badly", content_type = "text/html", body = String),
        (status = 504, description = "The upstream did not answer in time", content_type = "text/html", body = String)))]
#[tracing::instrument(skip_all, fields(provider = %name))]
pub(crate) async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = async {
        let query = query.unwrap_or_default();
        let request = match authorize::validate(&state, Parsed::from_bytes(query.as_bytes())).await? {
            Ok(request) => request,
            Err(rejected) => return Ok(rejected.into_response()),
        };
        let Some(provider) = store::find_provider(&state.pool, &name).await? else {
            return Ok(unknown_provider());
        };
        if let Some(retry_after) = start_limited(&state, address).await? {
            metrics::counter!("federated_logins_total", "outcome" => "throttled").increment(1);
            let detail = "Too many sign-ins were started from your network. Please wait and try again.";
            let page = pages::error_page(StatusCode::TOO_MANY_REQUESTS, "Please wait", detail);
            return Ok(page.with_header(header::RETRY_AFTER, retry_after.into()).into_response());
        }
        let upstream = state.federation.upstream(&provider)?;
        let metadata = match upstream.metadata().await {
            Ok(metadata) => metadata,
            Err(error) => return Ok(upstream_failed(&provider, &error)),
        };
        let cookies = BrowserCookies::new(&state, &headers);
        let (csrf_token, csrf_cookie) = cookies.csrf_token();
        let (state_value, nonce, code_verifier) = (random_value(), random_value(), random_value());
        let now = state.clock.now();
        let pending = PendingLogin {
            state_hash: hash_token(&state_value),
            provider: provider.name.clone(),
            browser_hash: hash_token(&csrf_token),
            nonce: nonce.clone(),
            code_verifier: code_verifier.clone(),
            request: form_urlencoded::Serializer::new(String::new())
                .extend_pairs(request.params.echoed().iter())
                .finish(),
            expires_at: now + PENDING_TTL_SECS,
        };
        store::insert_pending(&state.pool, &pending, now).await?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()));
        let scope = scope_with_openid(&provider.scope);
        let callback = redirect_uri(state.tokens.issuer(), &provider.name);
        let target = authorize::with_query(
            &metadata.authorization_endpoint,
            &[
                ("response_type", Some("code")),
                ("client_id", Some(&provider.client_id)),
                ("redirect_uri", Some(&callback)),
                ("scope", Some(&scope)),
                ("state", Some(&state_value)),
                ("nonce", Some(&nonce)),
                ("code_challenge", Some(&challenge)),
                ("code_challenge_method", Some("S256")),
            ],
        );
        metrics::counter!("federated_logins_total", "outcome" => "started").increment(1);
        let mut response = authorize::found(&target);
        if let Some(cookie) = csrf_cookie {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        Ok(response)
    };
    outcome.await.unwrap_or_else(|error: anyhow::Error| pages::internal_error("federation start", &error))
}

/// Counts a start from `address`; the seconds to wait when it is over
/// `FEDERATION_START_LIMIT_PER_MINUTE`.
async fn start_limited(state: &AppState, address: Option<std::net::IpAddr>) -> anyhow::Result<Option<u64>> {
    let limit = i64::from(state.config.federation_start_limit_per_minute);
    let Some(address) = address.filter(|_| limit > 0) else {
        return Ok(None);
    };
    let window = Window { limit, window_secs: 60 };
    let bucket = format!("federation-start:{address}");
    Ok(rate_limits::take(&state.pool, &bucket, window, state.clock.now()).await?)
}

/// `openid` and the provider's scopes, once each.
fn scope_with_openid(scope: &str) -> String {
    let mut scopes: Vec<&str> = vec!["openid"];
    scopes.extend(scope.split_whitespace().filter(|scope| *scope != "openid"));
    scopes.join(" ")
}

/// The upstream's authorization response (RFC 6749 §4.1.2, RFC 9207).
#[derive(Debug, Default)]
struct CallbackParams {
    code: Option<SecretString>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

impl CallbackParams {
    fn parse(query: &str) -> Self {
        let mut params = Self::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "code" => params.code = Some(SecretString::from(value.into_owned())),
                "state" => params.state = Some(value.into_owned()),
                "iss" => params.iss = Some(value.into_owned()),
                "error" => params.error = Some(value.into_owned()),
                _ => {}
            }
        }
        params
    }
}

/// The upstream provider sends the browser back here (register
/// `<ISSUER>/federation/NAME/callback` there).
///
/// Consumes the pending login of `state` once and only in the browser that started it, checks
/// `iss` (RFC 9207), exchanges the code, verifies the id_token, finds or creates the linked
/// account, and continues the authorization: consent page (200) or 302 to the client with a
/// code. 400/403 for a foreign, unknown, replayed or stale `state`, a `nonce` or `iss`
/// mismatch or a cancelled sign-in; 502/504 for an upstream that fails.
#[utoipa::path(get, path = "/federation/{name}/callback", tag = "federation",
    params(("name" = String, Path, description = "The provider")),
    responses(
        (status = 200, description = "Consent page", content_type = "text/html", body = String),
        (status = 302, description = "Redirect to the client with a code"),
        (status = 400, description = "Unknown, replayed, stale or foreign state; nonce or iss mismatch", content_type = "text/html", body = String),
        (status = 403, description = "Sign-in cancelled at the upstream, or account disabled", content_type = "text/html", body = String),
        (status = 404, description = "Unknown provider", content_type = "text/html", body = String),
        (status = 502, description = "The upstream failed, or its id_token did not verify", content_type = "text/html", body = String),
        (status = 504, description = "The upstream did not answer in time", content_type = "text/html", body = String)))]
#[tracing::instrument(skip_all, fields(provider = %name, user_id))]
pub(crate) async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = CallbackParams::parse(&query.unwrap_or_default());
    let outcome = finish(&state, &name, &headers, params);
    outcome.await.unwrap_or_else(|error| pages::internal_error("federation callback", &error))
}

/// A callback refused for what the browser brought (4xx).
fn refused(status: StatusCode, detail: &str, reason: &'static str) -> Response {
    tracing::info!(reason, "federated login refused");
    metrics::counter!("federated_logins_total", "outcome" => reason).increment(1);
    error_page(status, "Sign-in failed", detail)
}

async fn finish(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    params: CallbackParams,
) -> anyhow::Result<Response> {
    let start_again = "Go back to the application and start the login again.";
    let Some(state_value) = params.state.as_deref() else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            &format!("The answer has no state. {start_again}"),
            "no_state",
        ));
    };
    let now = state.clock.now();
    let pending = match store::consume_pending(&state.pool, &hash_token(state_value), now).await? {
        Consumed::Unknown => {
            let detail = format!("This sign-in is unknown. {start_again}");
            return Ok(refused(StatusCode::BAD_REQUEST, &detail, "unknown_state"));
        }
        Consumed::Replayed => {
            let detail = format!("This sign-in has already been used. {start_again}");
            return Ok(refused(StatusCode::BAD_REQUEST, &detail, "replayed_state"));
        }
        Consumed::First(pending) => pending,
    };
    let cookies = BrowserCookies::new(state, headers);
    let same_browser = cookies.csrf_cookie().is_some_and(|value| hash_token(value) == pending.browser_hash);
    if pending.provider != name || !same_browser {
        let detail =
            format!("This sign-in was started in another browser or for another provider. {start_again}");
        return Ok(refused(StatusCode::BAD_REQUEST, &detail, "foreign_state"));
    }
    if pending.expires_at <= now {
        let detail = format!("This sign-in took too long and has expired. {start_again}");
        return Ok(refused(StatusCode::BAD_REQUEST, &detail, "stale_state"));
    }
    let Some(provider) = store::find_provider(&state.pool, name).await? else {
        return Ok(unknown_provider());
    };
    let upstream = state.federation.upstream(&provider)?;
    let metadata = match upstream.metadata().await {
        Ok(metadata) => metadata,
        Err(error) => return Ok(upstream_failed(&provider, &error)),
    };
    // RFC 9207 §2.4: the `iss` a provider advertises must come back and be its own; one sent
    // by any provider must match.
    let iss_ok = match params.iss.as_deref() {
        Some(iss) => iss == provider.issuer,
        None => !metadata.authorization_response_iss_parameter_supported,
    };
    if !iss_ok {
        let detail = format!("The answer did not come from {}. {start_again}", provider.display_name);
        return Ok(refused(StatusCode::BAD_REQUEST, &detail, "iss_mismatch"));
    }
    if let Some(error) = params.error.as_deref() {
        // The upstream's (or anybody's) text on our page: an error code is short and plain.
        let error: String = error.chars().filter(char::is_ascii_graphic).take(64).collect();
        let error = error.as_str();
        tracing::info!(error, "upstream provider returned an error");
        metrics::counter!("federated_logins_total", "outcome" => "upstream_error").increment(1);
        if error == "access_denied" {
            let detail = format!("The sign-in was cancelled at {}. {start_again}", provider.display_name);
            return Ok(error_page(StatusCode::FORBIDDEN, "Sign-in cancelled", &detail));
        }
        let detail = format!(
            "{} could not sign you in (error: {error}). Please try again later, or log in with your username and password.",
            provider.display_name
        );
        return Ok(error_page(StatusCode::BAD_GATEWAY, "Sign-in failed", &detail));
    }
    let Some(code) = params.code else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            &format!("The answer has no code. {start_again}"),
            "no_code",
        ));
    };
    let secret = open_secret(state, &provider)?;
    let callback = redirect_uri(state.tokens.issuer(), &provider.name);
    let id_token = match upstream
        .exchange_code(code.expose_secret(), &callback, &pending.code_verifier, secret.as_ref())
        .await
    {
        Ok(id_token) => id_token,
        Err(error) => return Ok(upstream_failed(&provider, &error)),
    };
    let identity = match upstream.verify_id_token(&id_token, &pending.nonce).await {
        Ok(identity) => identity,
        Err(IdTokenError::Upstream(error)) => return Ok(upstream_failed(&provider, &error)),
        Err(IdTokenError::NonceMismatch) => {
            let detail = format!("The answer belongs to another sign-in. {start_again}");
            return Ok(refused(StatusCode::BAD_REQUEST, &detail, "nonce_mismatch"));
        }
        Err(error) => {
            tracing::warn!(provider = provider.name, %error, "upstream id_token refused");
            metrics::counter!("federated_logins_total", "outcome" => "bad_id_token").increment(1);
            let detail = format!(
                "The identity {} sent could not be verified. Please try again later, or log in with your username and password.",
                provider.display_name
            );
            return Ok(error_page(StatusCode::BAD_GATEWAY, "Sign-in failed", &detail));
        }
    };
    let user = linked_account(state, &provider, &identity).await?;
    if user.disabled_at.is_some() {
        return Ok(refused(StatusCode::FORBIDDEN, "This account is disabled.", "disabled"));
    }
    tracing::Span::current().record("user_id", user.id.as_str());
    // The pending authorization request of our client, checked again from scratch.
    let request = match authorize::validate(state, Parsed::from_bytes(pending.request.as_bytes())).await? {
        Ok(request) => request,
        Err(rejected) => return Ok(rejected.into_response()),
    };
    let mut transaction = state.pool.begin().await?;
    let (session, cookie) = browser::start_session(state, &cookies, &user, &mut transaction).await?;
    transaction.commit().await?;
    metrics::counter!("federated_logins_total", "outcome" => "success").increment(1);
    tracing::info!(user_id = %user.id, provider = provider.name, "federated login succeeded");
    let just_now = JustNow { logged_in: true, consented: false };
    let response =
        authorize::proceed(state, &cookies, request, Some((session, user)), just_now, Some(cookie)).await?;
    Ok(continue_outside_the_upstream_chain(response, &provider.display_name))
}

/// The browser came here by a redirect from the upstream's login form, and browsers apply that
/// form's CSP `form-action` to every redirect that follows it: the upstream allows its own
/// origin and ours, not our client's, so a 302 to the client would be blocked. A page that
/// moves on by `<meta http-equiv="refresh">` (no script: our CSP forbids inline script) starts a
/// new navigation; its link is there for a browser that does not refresh. Cookies are kept.
fn continue_outside_the_upstream_chain(response: Response, display_name: &str) -> Response {
    if !response.status().is_redirection() {
        return response;
    }
    let Some(target) = response.headers().get(header::LOCATION).and_then(|value| value.to_str().ok()) else {
        return response;
    };
    let markup = pages::continue_to(&format!("Signed in with {display_name}"), target);
    let mut page = pages::Page::new(StatusCode::OK, markup);
    for cookie in response.headers().get_all(SET_COOKIE) {
        page = page.with_header(SET_COOKIE, cookie.clone());
    }
    page.into_response()
}

fn open_secret(state: &AppState, provider: &Provider) -> anyhow::Result<Option<SecretString>> {
    if provider.sealed_secret.is_empty() {
        return Ok(None);
    }
    let bytes = state.tokens.keyring().open(&secret_label(&provider.name), &provider.sealed_secret)?;
    let secret = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the client secret of {} is not UTF-8", provider.name))?;
    Ok(Some(SecretString::from(secret)))
}

/// What a provider's sealed client secret is bound to.
pub fn secret_label(name: &str) -> String {
    format!("identity provider {name}")
}

/// The account linked to the upstream identity, created at its first login.
async fn linked_account(
    state: &AppState,
    provider: &Provider,
    identity: &upstream::UpstreamIdentity,
) -> anyhow::Result<User> {
    let linked = store::UpstreamSubject {
        provider: &provider.name,
        issuer: &provider.issuer,
        subject: &identity.subject,
    };
    if let Some(user) = store::find_linked(&state.pool, linked).await? {
        return Ok(user);
    }
    let base = account_name(&provider.name, identity.preferred_username.as_deref(), &identity.subject);
    for attempt in 1..=100u32 {
        let name = if attempt == 1 { base.clone() } else { format!("{base}-{attempt}") };
        match store::create_linked(&state.pool, linked, &name, state.clock.now()).await? {
            Linked::Created(user) => {
                tracing::info!(user_id = %user.id, provider = provider.name, "federated account created");
                return Ok(user);
            }
            Linked::NameTaken => {}
            Linked::AlreadyLinked => break,
        }
    }
    store::find_linked(&state.pool, linked)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no free account name for a new {} account", provider.name))
}

/// `NAME:<preferred_username>`, or `NAME:<sub>` without one: lower case, at most 64 characters
/// after the colon, anything but `a-z 0-9 . _ - @` replaced by `_`.
pub fn account_name(provider: &str, preferred_username: Option<&str>, subject: &str) -> String {
    let chosen = preferred_username.filter(|name| !name.trim().is_empty()).unwrap_or(subject);
    let cleaned: String = chosen
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c) { c } else { '_' })
        .take(64)
        .collect();
    format!("{provider}:{cleaned}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_take_the_upstream_username_or_else_the_subject() {
        assert_eq!(account_name("acme", Some("Acme-User"), "s1"), "acme:acme-user");
        assert_eq!(account_name("acme", None, "1234"), "acme:1234");
        assert_eq!(account_name("acme", Some("  "), "1234"), "acme:1234");
        assert_eq!(account_name("acme", Some("<b>x y</b>"), "s"), "acme:_b_x_y__b_");
    }

    #[test]
    fn provider_names_are_short_lowercase_words() {
        assert!(valid_provider_name("acme"));
        assert!(valid_provider_name("acme-2"));
        for bad in ["", "Acme", "2acme", "a/b", "a:b", &"a".repeat(33)] {
            assert!(!valid_provider_name(bad), "{bad}");
        }
    }

    #[test]
    fn openid_is_asked_for_once_and_first() {
        assert_eq!(scope_with_openid("openid profile"), "openid profile");
        assert_eq!(scope_with_openid("profile email"), "openid profile email");
    }
}
