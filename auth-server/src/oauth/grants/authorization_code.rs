//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636, OpenID Connect Core §3.1.3):
//! a code from the authorization endpoint, redeemed once with its PKCE verifier, for an access
//! token, a refresh token that starts its own family, and an id_token when `openid` was granted.
//!
//! Any redemption attempt consumes the code. A second one is `invalid_grant` and ends the
//! family the first one issued, published in `/v1/revocations` (RFC 6749 §4.1.2): whoever
//! replays a stolen code also kills what the legitimate client got.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use utoipa::ToSchema;

use crate::clients::Client;
use crate::oauth::id_token::{self, IdTokenClaims};
use crate::oauth::{OAuthError, TokenResponse, scope_set};
use crate::sessions;
use crate::state::AppState;
use crate::store::codes::{self, Redemption};
use crate::store::sessions::NewSession;
use crate::store::users;
use crate::tokens::{OpaqueToken, TokenRequest, hash_token};

/// Parameters of the authorization code grant.
#[derive(Deserialize, ToSchema)]
pub struct AuthorizationCodeParams {
    /// The code from the authorization response.
    #[schema(value_type = String)]
    code: SecretString,
    /// The `redirect_uri` sent to the authorization endpoint, exactly.
    redirect_uri: String,
    /// The PKCE verifier whose S256 hash was the `code_challenge`.
    #[schema(value_type = String)]
    code_verifier: SecretString,
}

impl std::fmt::Debug for AuthorizationCodeParams {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AuthorizationCodeParams")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Whether `verifier` hashes to `challenge` (RFC 7636 §4.6), compared in constant time.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    // §4.1: 43 to 128 unreserved characters.
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// Redeems the code for `client` (a confidential client that authenticated, or a public one
/// that named itself).
#[tracing::instrument(skip_all, fields(client_id = client.as_ref().map(|client| client.client_id.as_str()), user_id, sid))]
pub(crate) async fn grant(
    state: &AppState,
    client: Option<Client>,
    params: AuthorizationCodeParams,
    dpop_key: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let client = client.ok_or(OAuthError::InvalidClient { basic: false })?;
    let code_hash = hash_token(params.code.expose_secret());
    let now = state.clock.now();
    let sid = crate::store::sessions::new_sid();
    let mut transaction = state.pool.begin().await?;
    let code = match codes::redeem(&mut transaction, &code_hash, &sid, now).await? {
        Redemption::Unknown => return Err(OAuthError::InvalidGrant("unknown authorization code")),
        Redemption::Reused { issued_sid } => {
            transaction.commit().await?;
            return Err(reuse_detected(state, issued_sid.as_deref()).await);
        }
        Redemption::First(code) => code,
    };
    // From here on the code is consumed whatever happens: each refusal commits that.
    let refusal = if code.client_id != client.client_id {
        Some("authorization code was issued to another client")
    } else if code.expires_at <= now {
        Some("authorization code expired")
    } else if code.redirect_uri != params.redirect_uri {
        Some("redirect_uri differs from the authorization request")
    } else if !pkce_matches(params.code_verifier.expose_secret(), &code.code_challenge) {
        Some("code_verifier does not match the code_challenge")
    } else {
        None
    };
    if let Some(reason) = refusal {
        transaction.commit().await?;
        tracing::info!(reason, "authorization code refused");
        return Err(OAuthError::InvalidGrant(reason));
    }
    let Some(user) =
        users::find_by_id(&mut *transaction, &code.user_id).await?.filter(|user| user.disabled_at.is_none())
    else {
        transaction.commit().await?;
        return Err(OAuthError::InvalidGrant("account disabled"));
    };
    tracing::Span::current().record("user_id", user.id.as_str());

    let config = &state.config;
    let refresh_token = OpaqueToken::generate();
    let session = NewSession {
        user_id: &user.id,
        client_id: &client.client_id,
        scope: &code.scope,
        // Both lifetimes are at most ten years: no overflow.
        expires_at: now + config.refresh_token_ttl_secs.as_i64(),
        refresh_token_hash: &refresh_token.hash,
        idle_expires_at: now + config.refresh_idle_ttl_secs.as_i64(),
        browser_sid: Some(&code.browser_sid),
        // A public client's refresh tokens are bound to its DPoP key (RFC 9449 §5): whoever
        // steals one cannot refresh without the key. A confidential client's are bound to its
        // credentials already.
        dpop_jkt: dpop_key.as_deref().filter(|_| client.public),
    };
    crate::store::sessions::create_with_sid(&mut transaction, &sid, session, now).await?;
    transaction.commit().await?;
    tracing::Span::current().record("sid", sid.as_str());

    let scopes = scope_set(&code.scope);
    let issued = state.tokens.issue(TokenRequest {
        subject: user.id.clone(),
        client_id: client.client_id.clone(),
        scope: code.scope.clone(),
        audiences: user_token_audiences(state, Some(&client)),
        roles: user.roles.clone(),
        username: Some(user.username.clone()),
        sid: Some(sid),
        idp: user.idp.clone(),
        bound_key: dpop_key,
    })?;
    let id_token = if scopes.contains("openid") {
        let algorithm = client.id_token_algorithm();
        let claims = IdTokenClaims {
            iss: state.tokens.issuer().to_owned(),
            sub: user.id.clone(),
            aud: client.client_id.clone(),
            azp: client.client_id.clone(),
            exp: now.saturating_add(config.access_token_ttl_secs.as_i64()),
            iat: now,
            auth_time: code.auth_time,
            nonce: code.nonce.clone(),
            sid: code.browser_sid.clone(),
            at_hash: Some(id_token::at_hash(&issued.token, algorithm)),
            preferred_username: scopes.contains("profile").then(|| user.username.clone()),
            idp: user.idp.clone(),
        };
        Some(id_token::sign(state, algorithm, &claims).await?)
    } else {
        None
    };
    metrics::counter!("authorization_codes_redeemed_total").increment(1);
    let mut response = TokenResponse::issued(
        issued,
        code.scope.clone(),
        Some(refresh_token.plain.expose_secret().to_owned()),
    );
    response.id_token = id_token;
    Ok(response)
}

/// The audiences of a user's access token issued through `client`: its `--audience` list when
/// it has one, else `TOKEN_AUDIENCES` (as for `/v1/auth/login`).
pub(crate) fn user_token_audiences(state: &AppState, client: Option<&Client>) -> Vec<String> {
    match client {
        Some(client) if !client.audiences.is_empty() => client.audiences.clone(),
        _ => state.config.token_audiences.clone(),
    }
}

/// A code came back: end the family it issued.
async fn reuse_detected(state: &AppState, issued_sid: Option<&str>) -> OAuthError {
    tracing::warn!(sid = issued_sid, "authorization code reuse detected; revoking what it issued");
    metrics::counter!("authorization_code_reuse_total").increment(1);
    if let Some(sid) = issued_sid
        && let Err(error) = sessions::end_session(state, sid).await
    {
        return OAuthError::Internal(error);
    }
    OAuthError::InvalidGrant("authorization code already used; the tokens issued from it are revoked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_accepts_only_the_verifier_of_the_challenge() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", challenge));
        // A "plain" downgrade: the challenge itself as the verifier.
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches("short", challenge));
    }
}
