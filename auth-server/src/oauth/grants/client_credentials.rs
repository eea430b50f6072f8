//! `grant_type=client_credentials` (RFC 6749 §4.4): a service token for an authenticated client,
//! with no refresh token; DPoP-bound when the request carried a proof.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::clients::Client;
use crate::oauth::{OAuthError, TokenResponse, scope_set};
use crate::state::AppState;
use crate::tokens::TokenRequest;

/// Parameters of the client credentials grant.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientCredentialsParams {
    /// Space-separated, among the client's registered scopes (default: all of them).
    scope: Option<String>,
    /// Space-separated audiences, among the client's registered ones (default: all of them).
    audience: Option<String>,
}

/// Issues a token to `client`, which must have authenticated.
#[tracing::instrument(skip_all, fields(client_id = client.as_ref().map(|client| client.client_id.as_str())))]
pub(crate) async fn grant(
    state: &AppState,
    client: Option<Client>,
    params: ClientCredentialsParams,
    dpop_key: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let client = client.ok_or(OAuthError::InvalidClient { basic: false })?;
    let registered: std::collections::BTreeSet<&str> = client.scopes.iter().map(String::as_str).collect();
    let granted = match params.scope.as_deref() {
        None => registered.clone(),
        Some(requested) => {
            let requested = scope_set(requested);
            if !requested.is_subset(&registered) {
                return Err(OAuthError::InvalidScope("scope not registered for this client".into()));
            }
            requested
        }
    };
    let audiences = match params.audience.as_deref() {
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
        idp: None,
        bound_key: dpop_key,
    })?;
    Ok(TokenResponse::issued(issued, scope, None))
}
