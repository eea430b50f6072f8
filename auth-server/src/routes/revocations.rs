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

/// How long a list stays current after it was signed (its `exp` is `iat` plus this). Services
/// report a list past its `exp` as stale, and fetch a whole fresh list (not a 304) once it is
/// past half of it, so a list in force is never older than this without it showing. Polls
/// come every 15 s by default: this leaves room for several failed ones.
pub const LIST_LIFETIME_SECS: i64 = 300;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(revocations))
}

/// The current revocation list as a compact JWS (`typ: revocations+jwt`) signed with the
/// current signing key; its payload is a `RevocationList` with `iat`, `exp` (`iat` + 300 s)
/// and `seq` (never lower in a later list, on any replica). Entries disappear once every token
/// they cover has expired. Supports `If-None-Match`: the `ETag` covers `seq` and the entries,
/// not the signing time, so an unchanged list is a cheap 304.
#[utoipa::path(get, path = "/v1/revocations", tag = "revocations",
    responses(
        (status = 200, description = "Signed list (application/jwt) whose payload is a RevocationList",
            body = String, content_type = "application/jwt"),
        (status = 304, description = "Unchanged since the ETag sent"),
        (status = 500, description = "Database unavailable, or an entry of an unknown kind", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn revocations(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let list = current_list(&state.pool, state.tokens.issuer(), now).await?;
    let entries = serde_json::to_vec(&(&list.seq, &list.sessions, &list.tokens, &list.subjects))
        .context("serialise list")?;
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

/// The list as the database has it at `now`: the sequence number first, then the entries, so
/// that they hold at least every entry written up to that number.
async fn current_list(pool: &sqlx::AnyPool, issuer: &str, now: i64) -> anyhow::Result<RevocationList> {
    let seq = revocations::sequence(pool).await.context("failed to read the revocation sequence")?;
    let mut list = RevocationList {
        iss: issuer.to_owned(),
        iat: now,
        exp: Some(now.saturating_add(LIST_LIFETIME_SECS)),
        seq: Some(seq),
        ..RevocationList::default()
    };
    for revocation in revocations::live(pool, now).await.context("failed to read revocations")? {
        let Revocation { kind, id, not_before, expires_at: exp } = revocation;
        match kind {
            RevocationKind::Session => list.sessions.push(RevokedEntry { id, exp }),
            RevocationKind::Token => list.tokens.push(RevokedEntry { id, exp }),
            RevocationKind::Subject => list.subjects.push(SubjectCutoff { id, not_before, exp }),
        }
    }
    Ok(list)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    testkit::on_both_backends! {
        async fn the_list_expires_five_minutes_after_signing_and_its_seq_follows_the_writes(database) {
            let pool = service_kit::db::connect_url(&database.url, &crate::MIGRATOR).await.unwrap();
            let now = 1_800_000_000;
            let before = current_list(&pool, "http://127.0.0.1:8080", now).await.unwrap();
            let revocation = Revocation {
                kind: RevocationKind::Session,
                id: "s1".into(),
                not_before: now,
                expires_at: now + 960,
            };
            revocations::upsert(&mut pool.acquire().await.unwrap(), &revocation).await.unwrap();

            let after = current_list(&pool, "http://127.0.0.1:8080", now + 1).await.unwrap();

            assert_eq!(before.exp, Some(now + LIST_LIFETIME_SECS));
            assert_eq!(after.exp, Some(now + 1 + LIST_LIFETIME_SECS));
            assert!(after.seq > before.seq, "{:?} after {:?}", after.seq, before.seq);
            assert_eq!(after.sessions, vec![RevokedEntry { id: "s1".into(), exp: now + 960 }]);
        }
    }
}
