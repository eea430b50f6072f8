//! `POST /oauth2/introspect` (RFC 7662), for authenticated clients.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared_auth::time::unix_now_i64;
use sqlx::Row as _;
use utoipa::ToSchema;

use super::{OAuthBody, OAuthError, OAuthErrorBody, OAuthForm, TokenReference, client_auth};
use crate::routes::no_store_headers;
use crate::state::AppState;
use crate::store::hash_token;

/// RFC 7662 §2.2 response; only `active` when the token is not active.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(super) struct Introspection {
    /// Whether the token is currently valid.
    pub active: bool,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Login name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Tells an authenticated client whether a token is active. Revoked, expired, unknown and
/// malformed tokens are all just `{"active": false}`.
#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth2",
    request_body(content = TokenReference, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Token state", body = Introspection),
        (status = 400, description = "invalid_request", body = OAuthErrorBody),
        (status = 401, description = "invalid_client (client authentication is required)", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody)))]
pub(crate) async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthBody(body): OAuthBody,
) -> Response {
    match introspect_token(&state, &headers, &body).await {
        Ok(result) => (no_store_headers(), axum::Json(result)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn introspect_token(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Introspection, OAuthError> {
    let form = OAuthForm::parse(headers, body)?;
    let presented_basic = headers.contains_key(axum::http::header::AUTHORIZATION);
    client_auth::authenticate(state, headers, &form)
        .await?
        .ok_or(OAuthError::InvalidClient { basic: presented_basic })?;
    let token = form.require("token")?;
    let now = unix_now_i64();

    if let Some(claims) = state.verify_unrevoked(token).await? {
        return Ok(Introspection {
            active: true,
            token_type: Some("access_token".into()),
            scope: claims.scope.clone(),
            client_id: Some(claims.client_id.clone()),
            username: claims.preferred_username.clone(),
            sub: Some(claims.sub.clone()),
            aud: Some(claims.aud.clone()),
            iss: Some(claims.iss.clone()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            jti: Some(claims.jti.clone()),
            sid: claims.sid.clone(),
        });
    }

    let row = sqlx::query(
        "SELECT r.scope, r.issued_at, r.idle_expires_at, r.used_at, s.user_id, s.client_id, s.sid, s.revoked_at, \
         s.expires_at FROM refresh_tokens r JOIN sessions s ON s.sid = r.sid WHERE r.token_hash = $1",
    )
    .bind(hash_token(token))
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = row else {
        return Ok(Introspection::default());
    };
    let used_at: Option<i64> = row.try_get("used_at")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let idle_expires_at: i64 = row.try_get("idle_expires_at")?;
    let session_expires_at: i64 = row.try_get("expires_at")?;
    if used_at.is_some() || revoked_at.is_some() || idle_expires_at <= now || session_expires_at <= now {
        return Ok(Introspection::default());
    }
    Ok(Introspection {
        active: true,
        token_type: Some("refresh_token".into()),
        scope: Some(row.try_get("scope")?),
        client_id: Some(row.try_get("client_id")?),
        sub: Some(row.try_get("user_id")?),
        iss: Some(state.tokens.issuer().to_owned()),
        exp: Some(idle_expires_at.min(session_expires_at)),
        iat: Some(row.try_get("issued_at")?),
        sid: Some(row.try_get("sid")?),
        ..Introspection::default()
    })
}
