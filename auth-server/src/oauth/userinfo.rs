//! `GET` and `POST /oauth2/userinfo` (OpenID Connect Core §5.3): who the access token's user
//! is. The token comes as `Authorization: Bearer`, or in a POST body as `access_token`
//! (RFC 6750 §2.2), never both; a DPoP-bound token as `Authorization: DPoP` with its proof
//! (RFC 9449 §7). It must carry `openid`. Errors are RFC 6750 (and RFC 9449) challenges.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use service_kit::problem::Problem;
use shared_auth::extract::{Credentials, credentials_in, verify_dpop_request};
use shared_auth::{AuthError, VerifyError};
use utoipa::ToSchema;

use crate::routes::no_store_headers;
use crate::state::AppState;

/// The optional form body of `POST /oauth2/userinfo` (RFC 6750 §2.2).
#[derive(Debug, ToSchema)]
pub struct UserInfoForm {
    /// The access token, when it is not in the `Authorization` header.
    #[schema(value_type = Option<String>)]
    pub access_token: Option<String>,
}

/// The claims userinfo returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo {
    /// The user's id (the id_token's `sub`).
    pub sub: String,
    /// Login name.
    pub preferred_username: Option<String>,
}

async fn userinfo(
    state: &AppState,
    method: &str,
    headers: &HeaderMap,
    body_token: Option<String>,
) -> Response {
    let header_credentials = match credentials_in(headers) {
        Ok(credentials) => credentials,
        Err(error) => return error.into_response(),
    };
    let verified = match (header_credentials, body_token) {
        (Some(_), Some(_)) => return AuthError::InvalidRequest.into_response(),
        (None, None) => return AuthError::MissingToken.into_response(),
        (Some(Credentials::Bearer(token)), None) => {
            state.verifier.verify(token).await.map_err(AuthError::InvalidToken)
        }
        (None, Some(token)) => state.verifier.verify(&token).await.map_err(AuthError::InvalidToken),
        (Some(Credentials::Dpop(token)), None) => {
            verify_dpop_request(&state.verifier, token, headers, method, "/oauth2/userinfo").await
        }
    };
    let claims = match verified {
        Ok(claims) => claims,
        Err(error) => return error.into_response(),
    };
    // Revocations are read from the database, where logout writes them: no poll delay.
    match crate::sessions::is_revoked(&state.pool, &claims).await {
        Ok(false) => {}
        Ok(true) => return AuthError::InvalidToken(VerifyError::Revoked).into_response(),
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "userinfo failed");
            return Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR).into_response();
        }
    }
    if !claims.is_user() {
        return AuthError::NotAUser.into_response();
    }
    if !claims.has_scope("openid") {
        return AuthError::InsufficientScope("openid".into()).into_response();
    }
    let info = UserInfo { sub: claims.sub.clone(), preferred_username: claims.preferred_username.clone() };
    (no_store_headers(), axum::Json(info)).into_response()
}

/// The user of an access token with scope `openid`.
#[utoipa::path(get, path = "/oauth2/userinfo", tag = "oauth2",
    security(("bearer" = ["openid"])),
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 400, description = "Malformed Authorization header", body = Problem),
        (status = 401, description = "Missing or invalid token (WWW-Authenticate: Bearer)", body = Problem),
        (status = 403, description = "insufficient_scope: the token lacks openid", body = Problem)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(&state, "GET", &headers, None).await
}

/// As the GET; the token may also come as the form field `access_token`.
#[utoipa::path(post, path = "/oauth2/userinfo", tag = "oauth2",
    security(("bearer" = ["openid"])),
    request_body(content = UserInfoForm, description = "The token as access_token, unless it is in the Authorization header", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 400, description = "Malformed header or token sent twice", body = Problem),
        (status = 401, description = "Missing or invalid token (WWW-Authenticate: Bearer)", body = Problem),
        (status = 403, description = "insufficient_scope: the token lacks openid", body = Problem)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut tokens =
        form_urlencoded::parse(&body).filter(|(name, value)| name == "access_token" && !value.is_empty());
    let body_token = match (tokens.next(), tokens.next()) {
        (None, _) => None,
        (Some(token), None) => Some(token.1.into_owned()),
        (Some(_), Some(_)) => return AuthError::InvalidRequest.into_response(),
    };
    userinfo(&state, "POST", &headers, body_token).await
}
