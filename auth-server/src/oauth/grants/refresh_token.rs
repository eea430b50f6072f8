//! `grant_type=refresh_token` (RFC 6749 §6): rotates a refresh token. Presenting a used one is
//! reuse: the whole session is revoked (RFC 9700 §4.14.2). The scope can only narrow. A
//! session bound to a DPoP key refreshes only with a proof of that key (RFC 9449 §5).

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::clients::Client;
use crate::oauth::{OAuthError, TokenResponse, scope_set};
use crate::sessions;
use crate::state::AppState;
use crate::store::sessions::{self as store, NextRefreshToken, RefreshTokenState};
use crate::tokens::{OpaqueToken, TokenRequest, hash_token};

/// Parameters of the refresh token grant.
#[derive(Deserialize, ToSchema)]
pub struct RefreshTokenParams {
    /// The refresh token to redeem.
    #[schema(value_type = String)]
    refresh_token: SecretString,
    /// Space-separated; may only narrow what was granted.
    scope: Option<String>,
}

impl std::fmt::Debug for RefreshTokenParams {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RefreshTokenParams").field("scope", &self.scope).finish_non_exhaustive()
    }
}

/// Redeems the refresh token for a new access token and a new refresh token.
///
/// Login tokens belong to the first-party public client, which has no secret, so `client` may
/// be `None` for them; a client that authenticated or named itself may only redeem tokens
/// issued to it.
#[tracing::instrument(skip_all, fields(client_id = client.as_ref().map(|client| client.client_id.as_str()), sid))]
pub(crate) async fn grant(
    state: &AppState,
    client: Option<Client>,
    params: RefreshTokenParams,
    dpop_key: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let token_hash = hash_token(params.refresh_token.expose_secret());
    let now = state.clock.now();
    let record = store::find_refresh_token(&state.pool, &token_hash)
        .await?
        .ok_or(OAuthError::InvalidGrant("unknown refresh token"))?;
    tracing::Span::current().record("sid", record.sid.as_str());
    match record.state(now) {
        RefreshTokenState::SessionEnded => return Err(OAuthError::InvalidGrant("session ended")),
        RefreshTokenState::Used => return Err(reuse_detected(state, &record.sid).await),
        RefreshTokenState::Expired | RefreshTokenState::Active => {}
    }
    // RFC 6749 §6: an authenticated client may only redeem refresh tokens issued to it.
    if client.as_ref().is_some_and(|client| client.client_id != record.client_id) {
        return Err(OAuthError::InvalidGrant("refresh token was issued to another client"));
    }
    // Only the first-party login client refreshes anonymously; every registered client names
    // (public) or authenticates (confidential) itself (DESIGN.md "Codes and refresh").
    if client.is_none() && record.client_id != crate::oauth::FIRST_PARTY_CLIENT {
        return Err(OAuthError::InvalidClient { basic: false });
    }
    // A bound refresh token only works with a proof of its key (RFC 9449 §5), checked before
    // anything is rotated: without the key, a stolen token is not even a reuse.
    if let Some(bound) = record.dpop_jkt.as_deref() {
        match dpop_key.as_deref() {
            None => {
                return Err(OAuthError::InvalidDpopProof("this refresh token requires a DPoP proof".into()));
            }
            Some(key) if key != bound => {
                return Err(OAuthError::InvalidDpopProof(
                    "DPoP proof key does not match the refresh token".into(),
                ));
            }
            Some(_) => {}
        }
    }
    if record.state(now) == RefreshTokenState::Expired {
        return Err(OAuthError::InvalidGrant("refresh token expired"));
    }
    let scope = match params.scope.as_deref() {
        None => record.scope.clone(),
        Some(requested) => {
            let requested = scope_set(requested);
            if !requested.is_subset(&scope_set(&record.scope)) {
                return Err(OAuthError::InvalidScope("scope can only narrow on refresh".into()));
            }
            requested.into_iter().collect::<Vec<_>>().join(" ")
        }
    };
    let user = record.user.as_ref().ok_or(OAuthError::InvalidGrant("user no longer exists"))?;
    if user.disabled_at.is_some() {
        return Err(OAuthError::InvalidGrant("account disabled"));
    }

    let next = OpaqueToken::generate();
    let idle_ttl = state.config.refresh_idle_ttl_secs.as_i64();
    let rotation = NextRefreshToken {
        hash: &next.hash,
        sid: &record.sid,
        scope: &scope,
        idle_expires_at: now.saturating_add(idle_ttl).min(record.session_expires_at),
    };
    if !store::rotate_refresh_token(&state.pool, &token_hash, &rotation, now).await? {
        // Another refresh with this token won the race: this one is the reuse it is.
        return Err(reuse_detected(state, &record.sid).await);
    }
    let issued = state.tokens.issue(TokenRequest {
        subject: user.id.clone(),
        client_id: record.client_id.clone(),
        scope: scope.clone(),
        audiences: super::authorization_code::user_token_audiences(state, client.as_ref()),
        roles: user.roles.clone(),
        username: Some(user.username.clone()),
        sid: Some(record.sid.clone()),
        idp: user.idp.clone(),
        bound_key: dpop_key,
    })?;
    Ok(TokenResponse::issued(issued, scope, Some(next.plain.expose_secret().to_owned())))
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
