//! The authorization endpoint (RFC 6749 §4.1, OpenID Connect Core §3.1.2) and the hosted pages
//! behind it: `GET`/`POST /oauth2/authorize`, the login form's `POST /oauth2/login` and the
//! consent form's `POST /oauth2/consent`.
//!
//! Every request is validated in the same order ([`validate`]):
//! 1. the client and its exact redirect URI. Failing these is a 400 page, never a redirect:
//!    the target is not known to be the client's (open redirector, RFC 9700 §4.11);
//! 2. everything else, answered by a redirect to that URI with `error`, `state` and `iss`
//!    (RFC 9207, the mix-up defence): PKCE S256 required for every client, `response_type=code`
//!    only, scopes the client registered, `prompt`, `max_age`.
//!
//! Then [`proceed`] decides: the login page (no session, `prompt=login`, `max_age` exceeded),
//! the consent page, or a code. The forms post the pending request back as hidden inputs, and
//! each post is validated again from scratch: nothing of the pending request lives on the
//! server, so every replica can take any step.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::browser::{self, BrowserCookies, SET_COOKIE};
use super::pages::{self, LoginPage, Page};
use crate::clients::Client;
use crate::routes::login::{CredentialCheck, check_credentials};
use crate::state::{AppState, ClientAddress};
use crate::store::browser_sessions::BrowserSession;
use crate::store::codes::{self, AuthorizationCode};
use crate::store::{User, consents};
use crate::tokens::OpaqueToken;

/// How long a code lives.
pub(crate) const CODE_TTL_SECS: i64 = 60;

/// The parameters of an authorization request (query of a GET, form of a POST). Unknown
/// parameters are ignored; empty ones count as absent (RFC 6749 §3.1).
#[derive(Debug, Default, Clone, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeParams {
    /// `code`, the only response type.
    pub response_type: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// One of the client's registered redirect URIs, exactly.
    pub redirect_uri: Option<String>,
    /// Space-separated; `openid` for an id_token. Default: every scope the client registered.
    pub scope: Option<String>,
    /// Opaque value returned unchanged with the response.
    pub state: Option<String>,
    /// Copied into the id_token.
    pub nonce: Option<String>,
    /// PKCE (RFC 7636): base64url(SHA-256(code_verifier)), required.
    pub code_challenge: Option<String>,
    /// `S256`, required (`plain` is refused).
    pub code_challenge_method: Option<String>,
    /// `none`, `login`, `consent`, space-separated.
    pub prompt: Option<String>,
    /// Seconds since the last password entry beyond which the user logs in again.
    pub max_age: Option<String>,
    /// Pre-fills the username.
    pub login_hint: Option<String>,
    /// Request objects are not supported (`request_not_supported`).
    pub request: Option<String>,
    /// Request objects by reference are not supported (`request_uri_not_supported`).
    pub request_uri: Option<String>,
}

/// The names of [`AuthorizeParams`] echoed back by the forms, in page order.
const ECHOED: [&str; 11] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
];

impl AuthorizeParams {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "response_type" => &mut self.response_type,
            "client_id" => &mut self.client_id,
            "redirect_uri" => &mut self.redirect_uri,
            "scope" => &mut self.scope,
            "state" => &mut self.state,
            "nonce" => &mut self.nonce,
            "code_challenge" => &mut self.code_challenge,
            "code_challenge_method" => &mut self.code_challenge_method,
            "prompt" => &mut self.prompt,
            "max_age" => &mut self.max_age,
            "login_hint" => &mut self.login_hint,
            "request" => &mut self.request,
            "request_uri" => &mut self.request_uri,
            _ => return None,
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "response_type" => self.response_type.as_deref(),
            "client_id" => self.client_id.as_deref(),
            "redirect_uri" => self.redirect_uri.as_deref(),
            "scope" => self.scope.as_deref(),
            "state" => self.state.as_deref(),
            "nonce" => self.nonce.as_deref(),
            "code_challenge" => self.code_challenge.as_deref(),
            "code_challenge_method" => self.code_challenge_method.as_deref(),
            "prompt" => self.prompt.as_deref(),
            "max_age" => self.max_age.as_deref(),
            "login_hint" => self.login_hint.as_deref(),
            _ => None,
        }
    }

    /// The parameters the forms carry back, as hidden inputs.
    pub(crate) fn echoed(&self) -> Vec<(&'static str, String)> {
        ECHOED.iter().filter_map(|&name| self.get(name).map(|value| (name, value.to_owned()))).collect()
    }
}

/// A form or query, split into the authorization parameters (with the first repeated one, if
/// any: RFC 6749 §3.1 forbids repeating a parameter) and the rest.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) params: AuthorizeParams,
    repeated: Option<String>,
    other: Vec<(String, String)>,
}

impl Parsed {
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        let mut parsed = Self::default();
        for (name, value) in form_urlencoded::parse(bytes) {
            if value.is_empty() {
                continue;
            }
            match parsed.params.slot(&name) {
                Some(slot) if slot.is_some() => {
                    parsed.repeated.get_or_insert_with(|| name.clone().into_owned());
                }
                Some(slot) => *slot = Some(value.into_owned()),
                None => parsed.other.push((name.into_owned(), value.into_owned())),
            }
        }
        parsed
    }

    /// A non-authorization field of the form (`csrf_token`, `username`, `decision`), if sent
    /// once.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        let mut values = self.other.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str());
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value),
            _ => None,
        }
    }
}

/// `prompt`, parsed.
#[derive(Debug, Default, Clone, Copy)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

/// A request that passed every check.
#[derive(Debug)]
pub(crate) struct Validated {
    client: Client,
    redirect_uri: String,
    scopes: BTreeSet<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    prompt: Prompt,
    max_age: Option<i64>,
    pub(crate) params: AuthorizeParams,
}

/// Why a request stopped.
#[derive(Debug)]
pub(crate) enum Rejected {
    /// A page for the user, no redirect: the client or its redirect URI is unknown.
    Page(Page),
    /// An error for the client, redirected to its URI.
    Redirect(Response),
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        match self {
            Self::Page(page) => page.into_response(),
            Self::Redirect(response) => response,
        }
    }
}

/// A `302 Found` to `target` with the page headers (`no-store`: a code must not be cached).
pub(crate) fn found(target: &str) -> Response {
    let mut headers = pages::page_headers();
    headers.remove(header::CONTENT_TYPE);
    match HeaderValue::from_str(target) {
        Ok(location) => {
            headers.insert(header::LOCATION, location);
            (StatusCode::FOUND, headers).into_response()
        }
        Err(_) => {
            pages::error_page(StatusCode::BAD_REQUEST, "Invalid request", "The redirect URI is invalid.")
                .into_response()
        }
    }
}

/// `redirect_uri` with `pairs` appended to its query (keeping any query it has).
pub(crate) fn with_query(redirect_uri: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    url.to_string()
}

/// The error redirect of RFC 6749 §4.1.2.1, with `iss` (RFC 9207).
fn error_redirect(state: &AppState, request: &Validated, error: &str, description: &str) -> Response {
    redirect_error(state, &request.redirect_uri, request.state.as_deref(), error, description)
}

fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    metrics::counter!("authorization_requests_total", "outcome" => error.to_owned()).increment(1);
    found(&with_query(
        redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", client_state),
            ("iss", Some(state.tokens.issuer())),
        ],
    ))
}

/// Checks a request, in the order of the module documentation.
pub(crate) async fn validate(
    state: &AppState,
    parsed: Parsed,
) -> anyhow::Result<Result<Validated, Rejected>> {
    let params = parsed.params;
    let bad = |detail: &str| {
        Ok(Err(Rejected::Page(pages::error_page(StatusCode::BAD_REQUEST, "Invalid request", detail))))
    };
    if matches!(parsed.repeated.as_deref(), Some("client_id" | "redirect_uri")) {
        return bad("client_id and redirect_uri may be sent only once.");
    }
    let Some(client_id) = params.client_id.as_deref() else {
        return bad("The request has no client_id.");
    };
    let client = crate::store::clients::find(&state.pool, client_id).await?.map(|stored| stored.client);
    let Some(client) = client.filter(Client::uses_authorization_code) else {
        return bad("The application is not registered for browser login.");
    };
    let Some(redirect_uri) = params.redirect_uri.clone().filter(|uri| client.allows_redirect(uri)) else {
        return bad("The redirect URI is not registered for this application.");
    };
    let client_state = params.state.clone();
    let refuse = |error: &str, description: &str| {
        Ok(Err(Rejected::Redirect(redirect_error(
            state,
            &redirect_uri,
            client_state.as_deref(),
            error,
            description,
        ))))
    };
    if let Some(name) = parsed.repeated.as_deref() {
        return refuse("invalid_request", &format!("parameter {name} repeated"));
    }
    if params.request.is_some() {
        return refuse("request_not_supported", "request objects are not supported");
    }
    if params.request_uri.is_some() {
        return refuse("request_uri_not_supported", "request_uri is not supported");
    }
    match params.response_type.as_deref() {
        None => return refuse("invalid_request", "missing response_type"),
        Some("code") => {}
        Some(_) => return refuse("unsupported_response_type", "only response_type=code is supported"),
    }
    let Some(code_challenge) = params.code_challenge.clone() else {
        return refuse("invalid_request", "PKCE is required: missing code_challenge");
    };
    if params.code_challenge_method.as_deref() != Some("S256") {
        return refuse("invalid_request", "code_challenge_method must be S256");
    }
    // An S256 challenge is base64url(SHA-256): 43 characters.
    if code_challenge.len() != 43
        || !code_challenge.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    {
        return refuse("invalid_request", "code_challenge is not an S256 challenge");
    }
    let Some(scopes) = granted_scopes(state, &client, params.scope.as_deref()) else {
        return refuse("invalid_scope", "a requested scope is not registered for this application");
    };
    let mut prompt = Prompt::default();
    for value in params.prompt.as_deref().unwrap_or("").split(' ').filter(|value| !value.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // There is one account per browser session: nothing to select.
            "select_account" => {}
            _ => return refuse("invalid_request", "unsupported prompt value"),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return refuse("invalid_request", "prompt=none cannot be combined with other values");
    }
    let max_age = match params.max_age.as_deref().map(str::parse::<u32>) {
        None => None,
        Some(Ok(seconds)) => Some(i64::from(seconds)),
        Some(Err(_)) => return refuse("invalid_request", "max_age must be a non-negative integer"),
    };
    Ok(Ok(Validated {
        client,
        redirect_uri,
        scopes,
        state: params.state.clone(),
        nonce: params.nonce.clone(),
        code_challenge,
        prompt,
        max_age,
        params,
    }))
}

/// The scopes a request gets: `openid` always (the client has a redirect URI), anything else
/// only when the client registered it and users can hold it (`USER_SCOPE`, plus `profile`).
/// An omitted scope means every scope the client registered. `None` when one is refused.
fn granted_scopes(state: &AppState, client: &Client, requested: Option<&str>) -> Option<BTreeSet<String>> {
    let user_may_hold = |scope: &str| {
        scope == "profile" || state.config.user_scope.split_whitespace().any(|held| held == scope)
    };
    let allowed = |scope: &str| {
        scope == "openid"
            || (client.scopes.iter().any(|registered| registered == scope) && user_may_hold(scope))
    };
    match requested {
        None => Some(client.scopes.iter().filter(|scope| allowed(scope)).cloned().collect()),
        Some(requested) => {
            let requested: BTreeSet<String> =
                super::scope_set(requested).into_iter().map(str::to_owned).collect();
            requested.iter().all(|scope| allowed(scope)).then_some(requested)
        }
    }
}

/// What the user did in this very request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JustNow {
    /// The user has just logged in (password form or upstream provider).
    pub(crate) logged_in: bool,
    /// The user has just consented.
    pub(crate) consented: bool,
}

/// Login page, consent page or code, for a validated request.
pub(crate) async fn proceed(
    state: &AppState,
    cookies: &BrowserCookies,
    request: Validated,
    session: Option<(BrowserSession, User)>,
    just_now: JustNow,
    set_cookie: Option<HeaderValue>,
) -> anyhow::Result<Response> {
    let now = state.clock.now();
    let session = session.filter(|(session, _)| {
        just_now.logged_in
            || (!request.prompt.login
                && request.max_age.is_none_or(|max_age| now.saturating_sub(session.auth_time) <= max_age))
    });
    let Some((session, user)) = session else {
        if request.prompt.none {
            return Ok(error_redirect(state, &request, "login_required", "the user is not logged in"));
        }
        let username = request.params.login_hint.clone().unwrap_or_default();
        return Ok(login_page(state, cookies, &request, &username, None, StatusCode::OK)
            .await?
            .into_response());
    };
    if !just_now.consented && needs_consent(state, &request, &user).await? {
        if request.prompt.none {
            return Ok(error_redirect(state, &request, "consent_required", "the user has not consented"));
        }
        let (csrf_token, csrf_cookie) = cookies.csrf_token();
        let scopes: Vec<&str> = request.scopes.iter().map(String::as_str).collect();
        let mut page = Page::new(
            StatusCode::OK,
            pages::consent(&request.client.client_id, &scopes, &request.params.echoed(), &csrf_token),
        )
        .redirecting_to(&request.redirect_uri);
        for cookie in [set_cookie, csrf_cookie].into_iter().flatten() {
            page = page.with_header(SET_COOKIE, cookie);
        }
        return Ok(page.into_response());
    }
    let mut response = issue_code(state, &request, &session, &user).await?;
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Consent is asked of every client but first-party ones, and of those too with
/// `prompt=consent`; a remembered grant covering the scopes answers it.
async fn needs_consent(state: &AppState, request: &Validated, user: &User) -> anyhow::Result<bool> {
    if request.prompt.consent {
        return Ok(true);
    }
    if request.client.first_party {
        return Ok(false);
    }
    let granted = consents::granted(&state.pool, &user.id, &request.client.client_id).await?;
    Ok(!request.scopes.iter().all(|scope| granted.contains(scope)))
}

/// Stores a code and redirects to the client with `code`, `state` and `iss`.
async fn issue_code(
    state: &AppState,
    request: &Validated,
    session: &BrowserSession,
    user: &User,
) -> anyhow::Result<Response> {
    let code = OpaqueToken::generate();
    let now = state.clock.now();
    let stored = AuthorizationCode {
        client_id: request.client.client_id.clone(),
        user_id: user.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        browser_sid: session.sid.clone(),
        auth_time: session.auth_time,
        expires_at: now + CODE_TTL_SECS,
    };
    codes::insert(&state.pool, &code.hash, &stored).await?;
    metrics::counter!("authorization_requests_total", "outcome" => "code").increment(1);
    tracing::info!(user_id = %user.id, client_id = %request.client.client_id, "authorization code issued");
    Ok(found(&with_query(
        &request.redirect_uri,
        &[
            ("code", Some(code.plain.expose_secret())),
            ("state", request.state.as_deref()),
            ("iss", Some(state.tokens.issuer())),
        ],
    )))
}

/// The login page for `request`, with this browser's CSRF token (set as a cookie when new).
async fn login_page(
    state: &AppState,
    cookies: &BrowserCookies,
    request: &Validated,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> anyhow::Result<Page> {
    let (csrf_token, csrf_cookie) = cookies.csrf_token();
    let fields = request.params.echoed();
    let providers = crate::federation::buttons(state, &fields).await?;
    let markup = pages::login(&LoginPage {
        client_id: &request.client.client_id,
        fields: &fields,
        providers: &providers,
        csrf_token: &csrf_token,
        username,
        error,
    });
    let mut page = Page::new(status, markup).redirecting_to(&request.redirect_uri);
    if let Some(cookie) = csrf_cookie {
        page = page.with_header(SET_COOKIE, cookie);
    }
    Ok(page)
}

async fn authorize(state: &AppState, headers: &HeaderMap, parsed: Parsed) -> Response {
    let outcome = async {
        let request = match validate(state, parsed).await? {
            Ok(request) => request,
            Err(rejected) => return Ok(rejected.into_response()),
        };
        let cookies = BrowserCookies::new(state, headers);
        let session = cookies.session(state).await?;
        proceed(state, &cookies, request, session, JustNow::default(), None).await
    };
    outcome.await.unwrap_or_else(|error| pages::internal_error("authorization endpoint", &error))
}

/// Starts a browser login (authorization code flow with PKCE).
///
/// Answers with the hosted login page (200) when the browser has no session, with
/// `prompt=login` or past `max_age`; with the consent page (200) when needed; else with 302 to
/// `redirect_uri` carrying `code`, `state` and `iss`. An unknown client or unregistered
/// redirect URI gets a 400 page and no redirect; every other error redirects with `error`,
/// `state` and `iss`.
#[utoipa::path(get, path = "/oauth2/authorize", tag = "oauth2",
    params(AuthorizeParams),
    responses(
        (status = 200, description = "Login or consent page", content_type = "text/html", body = String),
        (status = 302, description = "Redirect to the client with a code or an error"),
        (status = 400, description = "Unknown client or redirect URI", content_type = "text/html", body = String)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&state, &headers, Parsed::from_bytes(query.unwrap_or_default().as_bytes())).await
}

/// The authorization request as a form post (OpenID Connect Core §3.1.2.1); as the GET.
#[utoipa::path(post, path = "/oauth2/authorize", tag = "oauth2",
    request_body(content = AuthorizeParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Login or consent page", content_type = "text/html", body = String),
        (status = 302, description = "Redirect to the client with a code or an error"),
        (status = 400, description = "Unknown client or redirect URI", content_type = "text/html", body = String)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorize(&state, &headers, Parsed::from_bytes(&body)).await
}

/// The login form's fields beside the pending authorization request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginForm {
    /// The CSRF token of the page.
    pub csrf_token: String,
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// The pending authorization request, as hidden inputs.
    #[serde(flatten)]
    pub request: AuthorizeParams,
}

/// The hosted login page's form: checks the password through the same throttle as
/// `/v1/auth/login`, starts a browser session (a new cookie value) and continues the
/// authorization.
#[utoipa::path(post, path = "/oauth2/login", tag = "oauth2",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Consent page", content_type = "text/html", body = String),
        (status = 302, description = "Redirect to the client with a code"),
        (status = 400, description = "Unknown client or redirect URI", content_type = "text/html", body = String),
        (status = 401, description = "Wrong username or password: the form again", content_type = "text/html", body = String),
        (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html", body = String),
        (status = 429, description = "Too many failed attempts", content_type = "text/html", body = String),
        (status = 503, description = "Password hashing saturated", content_type = "text/html", body = String)))]
#[tracing::instrument(skip_all, fields(user_id))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = Parsed::from_bytes(&body);
    let cookies = BrowserCookies::new(&state, &headers);
    if !cookies.csrf_matches(parsed.field("csrf_token")) {
        return pages::forbidden().into_response();
    }
    let username = parsed.field("username").unwrap_or("").to_owned();
    let password = parsed.field("password").unwrap_or("").to_owned();
    let outcome = async {
        let request = match validate(&state, parsed).await? {
            Ok(request) => request,
            Err(rejected) => return Ok(rejected.into_response()),
        };
        let (user, attempt) = match check_credentials(&state, address, &username, &password).await {
            Ok(CredentialCheck::Valid { user, attempt }) => (*user, attempt),
            Ok(CredentialCheck::Invalid) => {
                let page = login_page(
                    &state,
                    &cookies,
                    &request,
                    &username,
                    Some("Invalid username or password."),
                    StatusCode::UNAUTHORIZED,
                )
                .await?;
                return Ok(page.into_response());
            }
            Ok(CredentialCheck::Locked { retry_after }) => {
                let page = login_page(
                    &state,
                    &cookies,
                    &request,
                    &username,
                    Some("Too many failed attempts. Please wait and try again."),
                    StatusCode::TOO_MANY_REQUESTS,
                )
                .await?;
                return Ok(page
                    .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after))
                    .into_response());
            }
            Err(crate::error::ApiError::Busy) => {
                let page = pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Busy",
                    "The server is busy checking other logins. Please try again in a moment.",
                );
                return Ok(page.with_header(header::RETRY_AFTER, HeaderValue::from(1)).into_response());
            }
            Err(error) => return Err(anyhow::Error::new(error)),
        };
        tracing::Span::current().record("user_id", user.id.as_str());
        let now = state.clock.now();
        let mut transaction = state.pool.begin().await?;
        state.throttle.record_success(&mut transaction, attempt, now).await?;
        let (session, cookie) = browser::start_session(&state, &cookies, &user, &mut transaction).await?;
        transaction.commit().await?;
        metrics::counter!("logins_total", "outcome" => "success").increment(1);
        tracing::info!(user_id = %user.id, "browser login succeeded");
        let just_now = JustNow { logged_in: true, consented: false };
        proceed(&state, &cookies, request, Some((session, user)), just_now, Some(cookie)).await
    };
    outcome.await.unwrap_or_else(|error| pages::internal_error("authorization endpoint", &error))
}

/// The consent form's fields beside the pending authorization request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConsentForm {
    /// The CSRF token of the page.
    pub csrf_token: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// The pending authorization request, as hidden inputs.
    #[serde(flatten)]
    pub request: AuthorizeParams,
}

/// The consent page's form: `allow` remembers the grant and redirects with a code, `deny`
/// redirects with `access_denied`.
#[utoipa::path(post, path = "/oauth2/consent", tag = "oauth2",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Login page: the browser session is gone", content_type = "text/html", body = String),
        (status = 302, description = "Redirect to the client with a code or access_denied"),
        (status = 400, description = "Unknown client or redirect URI, or no decision", content_type = "text/html", body = String),
        (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html", body = String)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = Parsed::from_bytes(&body);
    let cookies = BrowserCookies::new(&state, &headers);
    if !cookies.csrf_matches(parsed.field("csrf_token")) {
        return pages::forbidden().into_response();
    }
    let decision = parsed.field("decision").map(str::to_owned);
    let outcome = async {
        let request = match validate(&state, parsed).await? {
            Ok(request) => request,
            Err(rejected) => return Ok(rejected.into_response()),
        };
        let Some((session, user)) = cookies.session(&state).await? else {
            let username = request.params.login_hint.clone().unwrap_or_default();
            return Ok(login_page(&state, &cookies, &request, &username, None, StatusCode::OK)
                .await?
                .into_response());
        };
        match decision.as_deref() {
            Some("allow") => {
                let mut scopes: BTreeSet<String> =
                    consents::granted(&state.pool, &user.id, &request.client.client_id)
                        .await?
                        .into_iter()
                        .collect();
                scopes.extend(request.scopes.iter().cloned());
                let scopes = scopes.into_iter().collect::<Vec<_>>().join(" ");
                consents::grant(&state.pool, &user.id, &request.client.client_id, &scopes, state.clock.now())
                    .await?;
                // The consent page was shown after `prompt=login` and `max_age` were satisfied,
                // and the consent just given answers `prompt=consent`.
                let just_now = JustNow { logged_in: true, consented: true };
                proceed(&state, &cookies, request, Some((session, user)), just_now, None).await
            }
            Some("deny") => Ok(error_redirect(&state, &request, "access_denied", "the user denied access")),
            _ => Ok(pages::error_page(StatusCode::BAD_REQUEST, "Invalid request", "No decision was made.")
                .into_response()),
        }
    };
    outcome.await.unwrap_or_else(|error| pages::internal_error("authorization endpoint", &error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_noted_and_empty_values_are_absent() {
        let parsed = Parsed::from_bytes(b"client_id=a&state=&scope=x&scope=y&csrf_token=t&other=1");
        assert_eq!(parsed.params.client_id.as_deref(), Some("a"));
        assert_eq!(parsed.params.state, None);
        assert_eq!(parsed.repeated.as_deref(), Some("scope"));
        assert_eq!(parsed.field("csrf_token"), Some("t"));
    }

    #[test]
    fn responses_keep_the_registered_query_and_encode_values() {
        let target = with_query("https://app.example/cb?x=1", &[("state", Some("a b&c")), ("none", None)]);
        assert_eq!(target, "https://app.example/cb?x=1&state=a+b%26c");
    }
}
