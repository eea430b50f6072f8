//! The DPoP proof (RFC 9449 §5) of a request that asks for tokens: `POST /oauth2/token` and the
//! first-party `POST /v1/auth/login`. The proof must name the endpoint under the issuer's URL,
//! whatever `Host` the request came with; its key's thumbprint is what the tokens are bound to.

use axum::http::HeaderMap;
use shared_auth::dpop::{ProofError, ProofRequest};

use crate::state::AppState;

/// Why a token request's proof was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProofRefusal {
    /// A check failed: 400 `invalid_dpop_proof` (or a problem document at `/v1/auth/login`).
    Invalid(ProofError),
    /// The replay cache is full: 503, the proof may be fine.
    Unavailable,
}

/// The thumbprint of the key of the request's DPoP proof for `path` on this server, `None`
/// without a proof.
pub(crate) fn proven_key(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Result<Option<String>, ProofRefusal> {
    let uri = format!("{}{path}", state.tokens.issuer());
    let request = ProofRequest { method: "POST", uri: &uri, access_token: None, expected_thumbprint: None };
    let verified = match shared_auth::dpop::proof_in(headers) {
        Ok(None) => return Ok(None),
        Ok(Some(proof)) => state.verifier.proofs().verify(proof, &request),
        Err(error) => Err(error),
    };
    match verified {
        Ok(verified) => Ok(Some(verified.thumbprint)),
        Err(ProofError::ReplayCacheFull) => Err(ProofRefusal::Unavailable),
        Err(error) => {
            tracing::info!(reason = error.reason(), "DPoP proof refused");
            Err(ProofRefusal::Invalid(error))
        }
    }
}
