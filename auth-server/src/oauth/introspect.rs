//! `POST /oauth2/introspect` (RFC 7662), for authenticated clients.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::request::{OAuthForm, OAuthRequest};
use super::revoke::TokenReference;
use super::{OAuthError, OAuthErrorBody};
use crate::clients::may_introspect;
use crate::routes::no_store_headers;
use crate::state::AppState;
use crate::store::sessions::{self as store, RefreshTokenState};
use crate::tokens::hash_token;

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
    /// The DPoP key a bound access token is bound to (RFC 9449 §6.2): a resource that
    /// introspects must check the request's proof against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<shared_auth::claims::Confirmation>,
}

/// Tells an authenticated client whether a token is active. Revoked, expired, unknown and
/// malformed tokens are all just `{"active": false}`, and so is every token the caller may not
/// know about: only the token's own client, a client its `aud` names, or one registered with
/// `clients create --introspect` learns that it is active.
#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth2",
    request_body(content = OAuthForm<TokenReference>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Token state", body = Introspection),
        (status = 400, description = "invalid_request", body = OAuthErrorBody),
        (status = 401, description = "invalid_client (client authentication is required)", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody)))]
pub(crate) async fn introspect(
    State(state): State<AppState>,
    request: Result<OAuthRequest<TokenReference>, OAuthError>,
) -> Response {
    match introspect_token(&state, request).await {
        Ok(result) => (no_store_headers(), axum::Json(result)).into_response(),
        Err(error) => error.into_response(),
    }
}

#[tracing::instrument(skip_all, fields(client_id), err(level = "debug"))]
async fn introspect_token(
    state: &AppState,
    request: Result<OAuthRequest<TokenReference>, OAuthError>,
) -> Result<Introspection, OAuthError> {
    let request = request?;
    let caller = request.require_client()?;
    tracing::Span::current().record("client_id", caller.client_id.as_str());
    let token = request.params.token();

    if let Some(claims) = state.verify_unrevoked(token).await? {
        if !may_introspect(caller, &claims.client_id, &claims.aud) {
            tracing::info!("introspection of a token not issued to or meant for the caller");
            return Ok(Introspection::default());
        }
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
            cnf: claims.cnf.clone(),
        });
    }

    let Some(record) = store::find_refresh_token(&state.pool, &hash_token(token)).await? else {
        return Ok(Introspection::default());
    };
    // A refresh token is for its client alone: it has no audience.
    if record.state(state.clock.now()) != RefreshTokenState::Active
        || !may_introspect(caller, &record.client_id, &[])
    {
        return Ok(Introspection::default());
    }
    Ok(Introspection {
        active: true,
        token_type: Some("refresh_token".into()),
        exp: Some(record.expires_at()),
        iat: Some(record.issued_at),
        scope: Some(record.scope),
        client_id: Some(record.client_id),
        sub: Some(record.user_id),
        iss: Some(state.tokens.issuer().to_owned()),
        sid: Some(record.sid),
        ..Introspection::default()
    })
}
