//! `POST /oauth2/revoke` (RFC 7009).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use super::request::{OAuthForm, OAuthParams, OAuthRequest};
use super::{FIRST_PARTY_CLIENT, OAuthError, OAuthErrorBody};
use crate::routes::no_store_headers;
use crate::sessions;
use crate::state::AppState;
use crate::store::revocations::{self, Revocation, RevocationKind};
use crate::store::sessions as store;
use crate::tokens::hash_token;

/// The form of a revocation (RFC 7009 §2.1) or introspection (RFC 7662 §2.1) request.
#[derive(Deserialize, ToSchema)]
pub(crate) struct TokenReference {
    /// The access or refresh token.
    #[schema(value_type = String)]
    token: SecretString,
    /// `access_token` or `refresh_token`; a hint only, which this server does not need: it
    /// tells the two apart itself.
    token_type_hint: Option<String>,
}

impl TokenReference {
    /// The token.
    pub(super) fn token(&self) -> &str {
        self.token.expose_secret()
    }
}

impl std::fmt::Debug for TokenReference {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenReference")
            .field("token_type_hint", &self.token_type_hint)
            .finish_non_exhaustive()
    }
}

impl OAuthParams for TokenReference {}

/// Revokes a refresh token (ending its whole session) or an access token (listing its `jti`
/// as revoked until it expires). Unknown, invalid or already-revoked tokens also get 200, as
/// RFC 7009 §2.2 requires. Tokens of the first-party login client need no client
/// authentication; a confidential client's tokens can only be revoked by that client.
#[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth2",
    request_body(content = OAuthForm<TokenReference>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "invalid_request", body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    request: Result<OAuthRequest<TokenReference>, OAuthError>,
) -> Response {
    match revoke_token(&state, request).await {
        Ok(()) => (StatusCode::OK, no_store_headers()).into_response(),
        Err(error) => error.into_response(),
    }
}

#[tracing::instrument(skip_all, fields(client_id), err(level = "debug"))]
async fn revoke_token(
    state: &AppState,
    request: Result<OAuthRequest<TokenReference>, OAuthError>,
) -> Result<(), OAuthError> {
    let request = request?;
    let caller = request.client.as_ref().map_or(FIRST_PARTY_CLIENT, |client| client.client_id.as_str());
    tracing::Span::current().record("client_id", caller);
    let token = request.params.token();

    // A refresh token?
    if let Some(record) = store::find_refresh_token(&state.pool, &hash_token(token)).await? {
        if record.client_id == caller {
            sessions::end_session(state, &record.sid).await?;
        }
        return Ok(());
    }

    // An access token we issued?
    if let Some(claims) = state.verify_unrevoked(token).await? {
        let own = claims.client_id == caller;
        let first_party = claims.client_id == FIRST_PARTY_CLIENT && request.client.is_none();
        if own || first_party {
            let revocation = Revocation {
                kind: RevocationKind::Token,
                id: claims.jti.clone(),
                not_before: state.clock.now(),
                // `exp` was verified: a date that signing put at most ten years ahead.
                expires_at: claims.exp.saturating_add(60),
            };
            let mut connection = state.pool.acquire().await?;
            revocations::upsert(&mut connection, &revocation).await?;
        } else {
            tracing::info!(caller, "refused to revoke another client's token");
        }
    }
    Ok(())
}
