//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): a service that
//! received a user's access token exchanges it for one meant for the next service it calls on
//! the user's behalf. The new token is still the user's (`sub`, `sid`), names the service as
//! actor (`act`), is for one audience, can only narrow the scope, and lives no longer than
//! the token it replaces. It carries the subject token's `sid`, so ending that session (logout,
//! refresh-token reuse, `users disable`) revokes it at every service with the rest of the
//! session, through the same revocation list.
//!
//! The rules (DESIGN.md "Token exchange"), each with its error:
//!
//! - the client authenticates (`invalid_client`) and was registered with
//!   `--exchange-audience` (`unauthorized_client`: deny by default);
//! - `subject_token_type` is `urn:ietf:params:oauth:token-type:access_token`, the only type
//!   accepted (`invalid_request`);
//! - `audience`, or its RFC 8707 synonym `resource` (the same value), names one of the
//!   client's exchange audiences (`invalid_target`);
//! - `subject_token` is a user's access token of this server (signature, `typ`, `iss`, not
//!   expired, not revoked, its session live) whose `aud` names the client (`invalid_grant`);
//! - `scope` (default: the subject token's) lies within the subject token's scope
//!   (`invalid_scope`); the token gets that, cut down to the client's registered scopes.

use std::collections::BTreeSet;
use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use shared_auth::AccessClaims;
use shared_auth::claims::Actor;
use utoipa::ToSchema;

use crate::clients::Client;
use crate::oauth::{OAuthError, TokenResponse, scope_set};
use crate::state::AppState;
use crate::store::sessions;
use crate::tokens::{Delegation, TokenRequest};

/// The `grant_type` of token exchange (RFC 8693 §2.1).
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token type of an access token (RFC 8693 §3): the only subject token type accepted and
/// the only type issued.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Parameters of the token exchange grant (RFC 8693 §2.1).
#[derive(Deserialize, ToSchema)]
pub struct TokenExchangeParams {
    /// The access token of the user the client acts for, one whose `aud` names the client
    /// (the token the client was called with).
    #[schema(value_type = String)]
    subject_token: SecretString,
    /// `urn:ietf:params:oauth:token-type:access_token`, the only type accepted.
    #[schema(example = "urn:ietf:params:oauth:token-type:access_token")]
    subject_token_type: String,
    /// The one service the new token is for: one of the client's `--exchange-audience`.
    #[schema(example = "users-service")]
    audience: Option<String>,
    /// Synonym of `audience` (RFC 8707); when both are sent they must be equal.
    resource: Option<String>,
    /// Space-separated, within the subject token's scope (default: all of it). The token gets
    /// the part of it that is also among the client's registered scopes.
    scope: Option<String>,
    /// `urn:ietf:params:oauth:token-type:access_token` if sent: the only type issued.
    requested_token_type: Option<String>,
    /// Not supported: the authenticated client is the actor.
    #[schema(value_type = Option<String>)]
    actor_token: Option<SecretString>,
}

impl std::fmt::Debug for TokenExchangeParams {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenExchangeParams")
            .field("subject_token_type", &self.subject_token_type)
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenExchangeParams {
    /// The one audience asked for: `audience`, or `resource`, or both when they agree.
    fn target(&self) -> Result<&str, OAuthError> {
        match (self.audience.as_deref(), self.resource.as_deref()) {
            (None, None) => Err(OAuthError::InvalidTarget("audience (or resource) is required".into())),
            (Some(audience), Some(resource)) if audience != resource => {
                Err(OAuthError::InvalidTarget("audience and resource name different targets".into()))
            }
            (Some(target), _) | (None, Some(target)) => Ok(target),
        }
    }
}

/// Checks made on the raw form: RFC 8693 allows several `audience` and `resource` values, and
/// this server issues a token for one, so more than one is `invalid_target` rather than the
/// `invalid_request` of a repeated parameter.
pub(super) fn precheck(pairs: &[(String, String)]) -> Result<(), OAuthError> {
    for name in ["audience", "resource"] {
        if pairs.iter().filter(|(key, _)| key == name).count() > 1 {
            return Err(OAuthError::InvalidTarget(format!(
                "one {name} per exchange: a token is for one service"
            )));
        }
    }
    Ok(())
}

/// Exchanges the subject token for `client`, which must have authenticated.
#[tracing::instrument(skip_all, fields(client_id = client.as_ref().map(|client| client.client_id.as_str()), audience, user_id, sid))]
pub(crate) async fn grant(
    state: &AppState,
    client: Option<Client>,
    params: TokenExchangeParams,
    dpop_key: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let client = client.ok_or(OAuthError::InvalidClient { basic: false })?;
    if !client.may_exchange() {
        return Err(OAuthError::UnauthorizedClient("client is not registered for token exchange"));
    }
    if params.subject_token_type != ACCESS_TOKEN_TYPE {
        return Err(OAuthError::InvalidRequest(format!("subject_token_type must be {ACCESS_TOKEN_TYPE}")));
    }
    if params.requested_token_type.as_deref().is_some_and(|requested| requested != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::InvalidRequest(format!("requested_token_type must be {ACCESS_TOKEN_TYPE}")));
    }
    if params.actor_token.is_some() {
        return Err(OAuthError::InvalidRequest(
            "actor_token is not supported: the authenticated client is the actor".into(),
        ));
    }
    let audience = params.target()?;
    if !client.may_exchange_for(audience) {
        return Err(OAuthError::InvalidTarget("audience not registered for exchange by this client".into()));
    }
    let span = tracing::Span::current();
    span.record("audience", audience);

    let subject = verified_subject(state, params.subject_token.expose_secret(), &client).await?;
    span.record("user_id", subject.sub.as_str());
    span.record("sid", subject.sid.as_deref());
    let scope = exchanged_scope(&subject, params.scope.as_deref(), &client)?;
    let request = TokenRequest {
        subject: subject.sub.clone(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        audiences: vec![audience.to_owned()],
        roles: subject.roles.clone(),
        username: subject.preferred_username.clone(),
        sid: subject.sid.clone(),
        idp: idp_of(params.subject_token.expose_secret()),
        // The subject token's own binding is the user's client's key, which this caller does
        // not hold: the exchanged token is bound only to a proof the caller sent itself.
        bound_key: dpop_key,
    };
    // RFC 8693 §4.1: the current actor outermost, the earlier ones nested inside it.
    let actor = Actor { sub: client.client_id.clone(), act: subject.act.clone().map(Box::new) };
    let issued = state
        .tokens
        .issue_delegated(request, Delegation { actor, not_after: subject.exp })?
        .ok_or(OAuthError::InvalidGrant("subject_token expired"))?;
    tracing::info!("token exchanged on behalf of the user");
    let mut response = TokenResponse::issued(issued, scope, None);
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE.to_owned());
    Ok(response)
}

/// The subject token's claims, if it is a live user token of this server meant for `client`.
async fn verified_subject(
    state: &AppState,
    token: &str,
    client: &Client,
) -> Result<Arc<AccessClaims>, OAuthError> {
    // Signature with our keys, `typ` at+jwt (so no id_token), `iss`, lifetime, and the
    // revocations in the database. A refresh token is no JWS and fails here too.
    let claims = state
        .verify_unrevoked(token)
        .await?
        .ok_or(OAuthError::InvalidGrant("subject_token is not a valid access token"))?;
    let now = state.clock.now();
    // The verifier allows a little clock skew past `exp`; a token made from this one must not
    // start out expired.
    if claims.exp <= now {
        return Err(OAuthError::InvalidGrant("subject_token expired"));
    }
    // On-behalf-of means a user: a service token has no one to act for.
    let Some(sid) = claims.sid.as_deref() else {
        return Err(OAuthError::InvalidGrant("subject_token is not a user's token"));
    };
    if !claims.aud.contains(&client.client_id) {
        return Err(OAuthError::InvalidGrant("subject_token is not meant for this client"));
    }
    if !sessions::is_live(&state.pool, sid, now).await? {
        return Err(OAuthError::InvalidGrant("the subject token's session has ended"));
    }
    Ok(claims)
}

/// The scope of the exchanged token: the requested one (default: the subject token's), which
/// must lie within the subject token's, cut down to the client's registered scopes.
fn exchanged_scope(
    subject: &AccessClaims,
    requested: Option<&str>,
    client: &Client,
) -> Result<String, OAuthError> {
    let held = scope_set(subject.scope.as_deref().unwrap_or_default());
    let requested = match requested {
        None => held,
        Some(requested) => {
            let requested = scope_set(requested);
            if !requested.is_subset(&held) {
                return Err(OAuthError::InvalidScope("scope can only narrow the subject token's".into()));
            }
            requested
        }
    };
    let registered: BTreeSet<&str> = client.scopes.iter().map(String::as_str).collect();
    let granted: Vec<&str> = requested.intersection(&registered).copied().collect();
    if granted.is_empty() {
        return Err(OAuthError::InvalidScope("none of that scope is registered for this client".into()));
    }
    Ok(granted.join(" "))
}

/// The `idp` of an access token this server signed (and the caller verified): the exchanged
/// token names the same upstream provider.
fn idp_of(token: &str) -> Option<String> {
    let parts = shared_auth::jws::split_compact(token).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&parts.payload).ok()?;
    claims.get("idp")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(audience: Option<&str>, resource: Option<&str>) -> TokenExchangeParams {
        TokenExchangeParams {
            subject_token: SecretString::from("t"),
            subject_token_type: ACCESS_TOKEN_TYPE.into(),
            audience: audience.map(str::to_owned),
            resource: resource.map(str::to_owned),
            scope: None,
            requested_token_type: None,
            actor_token: None,
        }
    }

    #[test]
    fn audience_and_resource_are_one_target() {
        assert_eq!(params(Some("a"), None).target().unwrap(), "a");
        assert_eq!(params(None, Some("a")).target().unwrap(), "a");
        assert_eq!(params(Some("a"), Some("a")).target().unwrap(), "a");
        assert!(matches!(params(Some("a"), Some("b")).target(), Err(OAuthError::InvalidTarget(_))));
        assert!(matches!(params(None, None).target(), Err(OAuthError::InvalidTarget(_))));
    }

    #[test]
    fn more_than_one_audience_or_resource_is_an_invalid_target() {
        let pairs = |form: &[(&str, &str)]| -> Vec<(String, String)> {
            form.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
        };
        assert!(precheck(&pairs(&[("audience", "a"), ("resource", "a")])).is_ok());
        for repeated in ["audience", "resource"] {
            let form = pairs(&[(repeated, "a"), (repeated, "b")]);
            assert!(matches!(precheck(&form), Err(OAuthError::InvalidTarget(_))), "{repeated}");
        }
    }

    #[test]
    fn the_debug_form_leaves_the_subject_token_out() {
        let mut with_secret = params(Some("users-service"), None);
        with_secret.subject_token = SecretString::from("eyJ.secret.token");
        assert!(!format!("{with_secret:?}").contains("secret"));
    }
}
