//! `POST /oauth2/revoke` (RFC 7009).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use shared_auth::time::unix_now_i64;
use sqlx::Row as _;

use super::{OAuthBody, OAuthError, OAuthErrorBody, OAuthForm, TokenReference, client_auth};
use crate::routes::login::FIRST_PARTY_CLIENT;
use crate::routes::no_store_headers;
use crate::sessions;
use crate::state::AppState;
use crate::store::hash_token;

/// Revokes a refresh token (ending its whole session) or an access token (listing its `jti`
/// as revoked until it expires). Unknown, invalid or already-revoked tokens also get 200, as
/// RFC 7009 §2.2 requires. Tokens of the first-party login client need no client
/// authentication; a confidential client's tokens can only be revoked by that client.
#[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth2",
    request_body(content = TokenReference, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "invalid_request", body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthBody(body): OAuthBody,
) -> Response {
    match revoke_token(&state, &headers, &body).await {
        Ok(()) => (StatusCode::OK, no_store_headers()).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn revoke_token(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let form = OAuthForm::parse(headers, body)?;
    let client = client_auth::authenticate(state, headers, &form).await?;
    let caller = client.as_ref().map_or(FIRST_PARTY_CLIENT, |client| client.client_id.as_str());
    let token = form.require("token")?;

    // A refresh token?
    let row = sqlx::query(
        "SELECT r.sid, s.client_id FROM refresh_tokens r JOIN sessions s ON s.sid = r.sid WHERE r.token_hash = $1",
    )
    .bind(hash_token(token))
    .fetch_optional(&state.pool)
    .await?;
    if let Some(row) = row {
        let sid: String = row.try_get("sid")?;
        let owner: String = row.try_get("client_id")?;
        if owner == caller {
            sessions::end_session(state, &sid).await?;
        }
        return Ok(());
    }

    // An access token we issued?
    if let Some(claims) = state.verify_unrevoked(token).await? {
        if claims.client_id == caller || (claims.client_id == FIRST_PARTY_CLIENT && client.is_none()) {
            let mut connection = state.pool.acquire().await?;
            sessions::upsert_revocation(
                &mut connection,
                "token",
                &claims.jti,
                unix_now_i64(),
                claims.exp + 60,
            )
            .await?;
        } else {
            tracing::info!(caller, "refused to revoke another client's token");
        }
    }
    Ok(())
}
