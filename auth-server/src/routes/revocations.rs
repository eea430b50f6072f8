//! `GET /v1/revocations`: the signed list of revoked sessions, tokens and subject cut-offs
//! that every service polls and applies on each request.

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use service_kit::problem::Problem;
use sha2::{Digest as _, Sha256};
use shared_auth::jws;
use shared_auth::revocation::{REVOCATION_LIST_TYPE, RevocationList, RevokedEntry, SubjectCutoff};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::revocations::{self, Revocation, RevocationKind};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(revocations))
}

/// The current revocation list as a compact JWS (`typ: revocations+jwt`) signed with the
/// current signing key; its payload is a `RevocationList`. Entries disappear once every token
/// they cover has expired. Supports `If-None-Match`: the `ETag` covers the entries, not the
/// signing time, so an unchanged list is a cheap 304.
#[utoipa::path(get, path = "/v1/revocations", tag = "revocations",
    responses(
        (status = 200, description = "Signed list (application/jwt) whose payload is a RevocationList",
            body = String, content_type = "application/jwt"),
        (status = 304, description = "Unchanged since the ETag sent"),
        (status = 500, description = "Database unavailable, or an entry of an unknown kind", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn revocations(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let mut list = RevocationList { iss: state.tokens.issuer().to_owned(), iat: now, ..Default::default() };
    for revocation in revocations::live(&state.pool, now).await.context("failed to read revocations")? {
        let Revocation { kind, id, not_before, expires_at: exp } = revocation;
        match kind {
            RevocationKind::Session => list.sessions.push(RevokedEntry { id, exp }),
            RevocationKind::Token => list.tokens.push(RevokedEntry { id, exp }),
            RevocationKind::Subject => list.subjects.push(SubjectCutoff { id, not_before, exp }),
        }
    }
    let entries =
        serde_json::to_vec(&(&list.sessions, &list.tokens, &list.subjects)).context("serialise list")?;
    let etag = format!("\"{}\"", hex(&Sha256::digest(entries))[..32].to_owned());
    let cache_headers = [(header::CACHE_CONTROL, "no-cache".to_owned()), (header::ETAG, etag.clone())];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    let signing = state.tokens.keyring().signing_key()?;
    let signed = jws::sign_compact(&signing.key, &signing.kid, REVOCATION_LIST_TYPE, &list)
        .context("failed to sign revocation list")?;
    let mut response = (cache_headers, signed).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwt"));
    Ok(response)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
