//! `/oauth2/logout`, the `end_session_endpoint` (OpenID Connect RP-Initiated Logout 1.0).
//!
//! Logging out ends the browser session and every refresh family started through it; their
//! `sid`s are published in `/v1/revocations`, so services refuse the access tokens within one
//! poll. With a valid `id_token_hint` a GET logs out at once; without one it only asks the
//! user to confirm (a GET must not be a CSRF logout), and the confirmation posts back with the
//! CSRF token. Redirects go only to a `post_logout_redirect_uri` registered for the client.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::browser::{BrowserCookies, SET_COOKIE};
use super::id_token;
use super::pages::{self, Page};
use crate::sessions;
use crate::state::AppState;
use crate::store::browser_sessions;

/// Parameters of a logout request.
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct LogoutParams {
    /// An id_token this server issued (expired ones too): names the browser session and the
    /// client.
    pub id_token_hint: Option<String>,
    /// The client asking; must be the hint's audience when both are sent.
    pub client_id: Option<String>,
    /// Where to go afterwards; only a URI registered for the client is followed.
    pub post_logout_redirect_uri: Option<String>,
    /// Returned with the redirect.
    pub state: Option<String>,
}

/// The confirmation form: the logout parameters and this browser's CSRF token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutForm {
    /// The CSRF token of the confirmation page.
    pub csrf_token: String,
    /// The parameters of the logout request.
    #[serde(flatten)]
    pub request: LogoutParams,
}

fn parse(bytes: &[u8]) -> (LogoutParams, Option<String>) {
    let mut params = LogoutParams::default();
    let mut csrf_token = None;
    for (name, value) in form_urlencoded::parse(bytes) {
        if value.is_empty() {
            continue;
        }
        let slot = match name.as_ref() {
            "id_token_hint" => &mut params.id_token_hint,
            "client_id" => &mut params.client_id,
            "post_logout_redirect_uri" => &mut params.post_logout_redirect_uri,
            "state" => &mut params.state,
            "csrf_token" => &mut csrf_token,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    (params, csrf_token)
}

/// `post_logout_redirect_uri`, if `client_id` registered it: the only place logout redirects to.
async fn registered_target(
    state: &AppState,
    client_id: Option<&str>,
    params: &LogoutParams,
) -> anyhow::Result<Option<String>> {
    Ok(match (client_id, params.post_logout_redirect_uri.as_deref()) {
        (Some(client_id), Some(uri)) => crate::store::clients::find(&state.pool, client_id)
            .await?
            .filter(|stored| stored.client.allows_post_logout_redirect(uri))
            .map(|_| uri.to_owned()),
        _ => None,
    })
}

/// Ends `sid` (a browser session) and what it started; clears the cookie when it is this
/// browser's; then redirects to `post_logout_redirect_uri` if `client_id` registered it, else
/// shows "logged out".
async fn log_out(
    state: &AppState,
    cookies: &BrowserCookies,
    sid: Option<&str>,
    client_id: Option<&str>,
    params: &LogoutParams,
) -> anyhow::Result<Response> {
    let now = state.clock.now();
    let cookie_sid = cookies.session_sid(state).await?;
    if let Some(sid) = sid {
        browser_sessions::end(&state.pool, sid, now, sessions::revoked_until(state, now)).await?;
        tracing::info!(sid, "browser session ended");
    }
    let clear = cookie_sid.is_some() && cookie_sid.as_deref() == sid;
    let target = registered_target(state, client_id, params).await?;
    let mut response = match target.and_then(|uri| url::Url::parse(&uri).ok()) {
        Some(mut url) => {
            if let Some(client_state) = &params.state {
                url.query_pairs_mut().append_pair("state", client_state);
            }
            let mut headers = pages::page_headers();
            headers.remove(header::CONTENT_TYPE);
            match HeaderValue::from_str(url.as_str()) {
                Ok(location) => {
                    headers.insert(header::LOCATION, location);
                    (StatusCode::FOUND, headers).into_response()
                }
                Err(_) => Page::new(StatusCode::OK, pages::logged_out()).into_response(),
            }
        }
        None => Page::new(StatusCode::OK, pages::logged_out()).into_response(),
    };
    if clear {
        response.headers_mut().append(SET_COOKIE, cookies.clear_session_cookie());
    }
    Ok(response)
}

/// Logs out of the browser session (RP-Initiated Logout).
///
/// With a valid `id_token_hint`: ends the hint's browser session and its refresh families,
/// then redirects to a registered `post_logout_redirect_uri` (with `state`) or shows
/// "logged out". Without one: a confirmation page whose form posts here.
#[utoipa::path(get, path = "/oauth2/logout", tag = "oauth2",
    params(LogoutParams),
    responses(
        (status = 200, description = "Confirmation or logged-out page", content_type = "text/html", body = String),
        (status = 302, description = "Logged out; back to the client")))]
#[tracing::instrument(skip_all)]
pub(crate) async fn logout_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (params, _) = parse(query.unwrap_or_default().as_bytes());
    let cookies = BrowserCookies::new(&state, &headers);
    let hint = params.id_token_hint.as_deref().and_then(|hint| id_token::verify_hint(&state, hint));
    // A hint for one client with another client_id is no valid hint.
    let hint =
        hint.filter(|claims| params.client_id.as_deref().is_none_or(|client_id| client_id == claims.aud));
    if let Some(claims) = hint {
        return log_out(&state, &cookies, Some(&claims.sid), Some(&claims.aud), &params)
            .await
            .unwrap_or_else(|error| pages::internal_error("logout", &error));
    }
    let (csrf_token, csrf_cookie) = cookies.csrf_token();
    let fields: Vec<(&'static str, String)> = [
        ("client_id", params.client_id.clone()),
        ("post_logout_redirect_uri", params.post_logout_redirect_uri.clone()),
        ("state", params.state.clone()),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|value| (name, value)))
    .collect();
    let mut page = Page::new(StatusCode::OK, pages::logout_confirmation(&fields, &csrf_token));
    match registered_target(&state, params.client_id.as_deref(), &params).await {
        Ok(Some(target)) => page = page.redirecting_to(&target),
        Ok(None) => {}
        Err(error) => return pages::internal_error("logout", &error),
    }
    if let Some(cookie) = csrf_cookie {
        page = page.with_header(SET_COOKIE, cookie);
    }
    page.into_response()
}

/// The confirmation form: logs this browser out, then redirects only when `client_id` is given
/// and registered the `post_logout_redirect_uri`.
#[utoipa::path(post, path = "/oauth2/logout", tag = "oauth2",
    request_body(content = LogoutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Logged-out page", content_type = "text/html", body = String),
        (status = 302, description = "Logged out; back to the client"),
        (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html", body = String)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn logout_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (params, csrf_token) = parse(&body);
    let cookies = BrowserCookies::new(&state, &headers);
    if !cookies.csrf_matches(csrf_token.as_deref()) {
        return pages::forbidden().into_response();
    }
    let outcome = async {
        let sid = cookies.session_sid(&state).await?;
        log_out(&state, &cookies, sid.as_deref(), params.client_id.as_deref(), &params).await
    };
    outcome.await.unwrap_or_else(|error| pages::internal_error("logout", &error))
}
