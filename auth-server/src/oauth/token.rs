//! `POST /oauth2/token`: the `refresh_token` and `client_credentials` grants.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use shared_auth::time::unix_now_i64;
use sqlx::Row as _;

use super::{OAuthBody, OAuthError, OAuthErrorBody, OAuthForm, client_auth, scope_set};
use crate::routes::login::TokenResponse;
use crate::routes::no_store_headers;
use crate::sessions;
use crate::state::AppState;
use crate::store::{self, hash_token, new_refresh_token};
use crate::tokens::TokenRequest;

/// The grants this server offers.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // For the OpenAPI document only: the body is read by `OAuthForm`.
enum GrantType {
    /// Rotate a refresh token (RFC 6749 §6).
    RefreshToken,
    /// A service token for an authenticated client (RFC 6749 §4.4).
    ClientCredentials,
}

/// The form of a token request, for the OpenAPI document only: the body is read by `OAuthForm`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TokenForm {
    /// Which grant.
    grant_type: GrantType,
    /// With `refresh_token`: the refresh token to redeem.
    refresh_token: Option<String>,
    /// Space-separated; may only narrow what was granted or registered.
    scope: Option<String>,
    /// With `client_credentials`: space-separated audiences, among those registered.
    audience: Option<String>,
    /// Client authentication in the form (`client_secret_post`) instead of HTTP Basic.
    client_id: Option<String>,
    /// Client authentication in the form (`client_secret_post`) instead of HTTP Basic.
    client_secret: Option<String>,
}

/// Issues tokens (RFC 6749 §4.4, §6).
///
/// - `grant_type=refresh_token&refresh_token=...[&scope=...]`: rotates the refresh token.
///   Presenting a used one is reuse: the whole session is revoked (RFC 9700 §4.14.2). The scope
///   can only narrow.
/// - `grant_type=client_credentials[&scope=...][&audience=...]`: a service token, client
///   authenticated by HTTP Basic or form fields; no refresh token.
///
/// `password` and every other grant type are `unsupported_grant_type` (RFC 9700 §2.4).
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth2",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens (Cache-Control: no-store)", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, invalid_scope, unsupported_grant_type", body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable", body = OAuthErrorBody)))]
pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthBody(body): OAuthBody,
) -> Response {
    match grant(&state, &headers, &body).await {
        Ok(response) => (no_store_headers(), axum::Json(response)).into_response(),
        Err(error) => {
            metrics::counter!("token_requests_total", "outcome" => "error").increment(1);
            error.into_response()
        }
    }
}

async fn grant(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, OAuthError> {
    let form = OAuthForm::parse(headers, body)?;
    let grant_type = form.require("grant_type")?;
    let response = match grant_type {
        "client_credentials" => client_credentials(state, headers, &form).await?,
        "refresh_token" => refresh(state, headers, &form).await?,
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    metrics::counter!("token_requests_total", "outcome" => "success", "grant_type" => grant_type.to_owned())
        .increment(1);
    Ok(response)
}

async fn client_credentials(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    let client = client_auth::authenticate(state, headers, form)
        .await?
        .ok_or(OAuthError::InvalidClient { basic: false })?;
    let registered: std::collections::BTreeSet<&str> = client.scopes.iter().map(String::as_str).collect();
    let granted = match form.get("scope") {
        None => registered.clone(),
        Some(requested) => {
            let requested = scope_set(requested);
            if !requested.is_subset(&registered) {
                return Err(OAuthError::InvalidScope("scope not registered for this client".into()));
            }
            requested
        }
    };
    let audiences = match form.get("audience") {
        None => client.audiences.clone(),
        Some(requested) => {
            let requested: Vec<String> = scope_set(requested).into_iter().map(str::to_owned).collect();
            if !requested.iter().all(|audience| client.audiences.contains(audience)) {
                return Err(OAuthError::InvalidScope("audience not registered for this client".into()));
            }
            requested
        }
    };
    let scope = granted.into_iter().collect::<Vec<_>>().join(" ");
    let issued = state.tokens.issue(TokenRequest {
        subject: client.client_id.clone(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        audiences,
        roles: Vec::new(),
        username: None,
        sid: None,
    })?;
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        refresh_token: None,
        scope,
    })
}

async fn refresh(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    // Login tokens belong to the first-party public client, which has no secret; a confidential
    // client that does authenticate must still authenticate correctly.
    let authenticated = client_auth::authenticate(state, headers, form).await?;
    let presented = form.require("refresh_token")?;
    let token_hash = hash_token(presented);
    let now = unix_now_i64();
    let row = sqlx::query(
        "SELECT r.sid, r.scope, r.idle_expires_at, r.used_at, s.user_id, s.expires_at, s.revoked_at, s.client_id \
         FROM refresh_tokens r JOIN sessions s ON s.sid = r.sid WHERE r.token_hash = $1",
    )
    .bind(&token_hash)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(OAuthError::InvalidGrant("unknown refresh token"))?;
    let sid: String = row.try_get("sid")?;
    let granted_scope: String = row.try_get("scope")?;
    let used_at: Option<i64> = row.try_get("used_at")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let user_id: String = row.try_get("user_id")?;
    let client_id: String = row.try_get("client_id")?;
    let session_expires_at: i64 = row.try_get("expires_at")?;
    let idle_expires_at: i64 = row.try_get("idle_expires_at")?;

    if revoked_at.is_some() {
        return Err(OAuthError::InvalidGrant("session ended"));
    }
    if used_at.is_some() {
        return Err(reuse_detected(state, &sid).await);
    }
    // RFC 6749 §6: an authenticated client may only redeem refresh tokens issued to it.
    if authenticated.is_some_and(|client| client.client_id != client_id) {
        return Err(OAuthError::InvalidGrant("refresh token was issued to another client"));
    }
    if idle_expires_at <= now || session_expires_at <= now {
        return Err(OAuthError::InvalidGrant("refresh token expired"));
    }
    let scope = match form.get("scope") {
        None => granted_scope.clone(),
        Some(requested) => {
            let requested = scope_set(requested);
            if !requested.is_subset(&scope_set(&granted_scope)) {
                return Err(OAuthError::InvalidScope("scope can only narrow on refresh".into()));
            }
            requested.into_iter().collect::<Vec<_>>().join(" ")
        }
    };
    let user = store::find_user_by_id(&state.pool, &user_id)
        .await?
        .ok_or(OAuthError::InvalidGrant("user no longer exists"))?;
    if user.disabled_at.is_some() {
        return Err(OAuthError::InvalidGrant("account disabled"));
    }

    // Consume atomically: of two concurrent refreshes with one token, exactly one updates the
    // row; the other sees zero rows and is treated as the reuse it is.
    let next = new_refresh_token();
    let idle_ttl = state.config.refresh_idle_ttl_secs.as_i64();
    let mut transaction = state.pool.begin().await?;
    let consumed =
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
            .bind(now)
            .bind(&token_hash)
            .execute(&mut *transaction)
            .await?;
    if consumed.rows_affected() != 1 {
        drop(transaction);
        return Err(reuse_detected(state, &sid).await);
    }
    store::insert_refresh_token(
        &mut transaction,
        &next.hash,
        &sid,
        &scope,
        (now.saturating_add(idle_ttl)).min(session_expires_at),
    )
    .await?;
    transaction.commit().await?;

    let issued = state.tokens.issue(TokenRequest {
        subject: user.id,
        client_id,
        scope: scope.clone(),
        audiences: state.config.token_audiences.clone(),
        roles: user.roles,
        username: Some(user.username),
        sid: Some(sid),
    })?;
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        refresh_token: Some(next.plain.expose_secret().to_owned()),
        scope,
    })
}

/// A refresh token was presented twice: someone else may hold it. End the whole session.
async fn reuse_detected(state: &AppState, sid: &str) -> OAuthError {
    tracing::warn!(sid, "refresh token reuse detected; revoking the session");
    metrics::counter!("refresh_token_reuse_total").increment(1);
    match sessions::end_session(state, sid).await {
        Ok(()) => OAuthError::InvalidGrant("refresh token already used; session revoked"),
        Err(error) => OAuthError::Internal(error),
    }
}
