//! `POST /oauth2/token`: every grant of [`GrantRequest`].

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::dpop::ProofRefusal;

use super::grants::GrantRequest;
use super::request::{OAuthForm, OAuthRequest};
use super::{OAuthErrorBody, TokenResponse};
use crate::routes::no_store_headers;
use crate::state::AppState;

/// Issues tokens (RFC 6749 §4.1.3, §4.4, §6; RFC 8693).
///
/// - `grant_type=authorization_code&code=...&redirect_uri=...&code_verifier=...`: redeems a
///   code of `/oauth2/authorize` once, with its PKCE verifier; a public client sends
///   `client_id`, a confidential one authenticates. Adds an `id_token` when `openid` was
///   granted. A second use of a code revokes what it issued.
/// - `grant_type=refresh_token&refresh_token=...[&scope=...]`: rotates the refresh token.
///   Presenting a used one is reuse: the whole session is revoked (RFC 9700 §4.14.2). The scope
///   can only narrow.
/// - `grant_type=client_credentials[&scope=...][&audience=...]`: a service token, client
///   authenticated by HTTP Basic or form fields; no refresh token.
/// - `grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=...&subject_token_type=urn:ietf:params:oauth:token-type:access_token&audience=...[&scope=...]`
///   (RFC 8693): an authenticated client registered with `--exchange-audience` exchanges a
///   user's access token that names it in `aud` for one to call `audience` (or `resource`,
///   the same value) on the user's behalf: the user's `sub` and `sid`, `aud` = that one
///   audience, `act: {"sub": CLIENT_ID}` (nesting the subject token's own `act`), a scope that
///   only narrows, `exp` no later than the subject token's; `issued_token_type` in the
///   response, no refresh token. Errors: `unauthorized_client` (not registered for exchange),
///   `invalid_target` (audience missing or not registered), `invalid_grant` (subject token
///   invalid, expired, revoked, not a user's, or not meant for the client), `invalid_scope`,
///   `invalid_request` (another `subject_token_type`).
///
/// With a `DPoP` proof header (RFC 9449 §5: `typ` dpop+jwt, ES256 or EdDSA with its public
/// `jwk`, `htm` POST, `htu` this endpoint, a fresh `iat` and an unseen `jti`), every grant
/// issues `token_type: DPoP` and an access token with `cnf.jkt`, the key's thumbprint; a public
/// client's refresh tokens are then bound to the same key. A bad proof, none from a client
/// registered with `--dpop`, or none (or another key's) for a bound refresh token is
/// `invalid_dpop_proof`.
///
/// `password` and every other grant type are `unsupported_grant_type` (RFC 9700 §2.4).
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth2",
    request_body(content = OAuthForm<GrantRequest>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens (Cache-Control: no-store)", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, invalid_scope, invalid_target, unauthorized_client, unsupported_grant_type, invalid_dpop_proof", body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable", body = OAuthErrorBody)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<OAuthRequest<GrantRequest>, super::OAuthError>,
) -> Response {
    let outcome = match (request, proven_key(&state, &headers)) {
        (Ok(OAuthRequest { params, client, public_client }), Ok(dpop_key)) => {
            let grant_type = params.grant_type();
            params.grant(&state, client, public_client, dpop_key).await.map(|response| (grant_type, response))
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    match outcome {
        Ok((grant_type, response)) => {
            metrics::counter!("token_requests_total", "outcome" => "success", "grant_type" => grant_type)
                .increment(1);
            (no_store_headers(), axum::Json(response)).into_response()
        }
        Err(error) => {
            metrics::counter!("token_requests_total", "outcome" => "error").increment(1);
            error.into_response()
        }
    }
}

/// The thumbprint of the request's DPoP proof key, as the grants want it.
fn proven_key(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, super::OAuthError> {
    super::dpop::proven_key(state, headers, "/oauth2/token").map_err(|refusal| match refusal {
        ProofRefusal::Invalid(error) => super::OAuthError::InvalidDpopProof(error.to_string()),
        ProofRefusal::Unavailable => super::OAuthError::Unavailable,
    })
}
