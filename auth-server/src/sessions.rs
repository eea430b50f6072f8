//! Ending sessions: logout, reuse detection, user disable. Each end publishes a revocation so the
//! services stop accepting the session's access tokens within one poll interval.

use anyhow::Context as _;
use shared_auth::time::Clock;

use crate::state::AppState;
use crate::store::{browser_sessions, codes, logins, rate_limits, revocations, sessions};
use crate::throttle;

/// How long past the access-token lifetime a revocation stays listed, for clock skew.
const REVOCATION_MARGIN_SECS: i64 = 60;

/// Until when a revocation made at `now` must stay listed: every access token it covers has
/// expired by then.
pub fn revoked_until(state: &AppState, now: i64) -> i64 {
    // Both terms are bounded (the lifetime by ten years): no overflow.
    now + state.config.access_token_ttl_secs.as_i64() + REVOCATION_MARGIN_SECS
}

/// Ends one session: refresh tokens die, and its `sid` is listed as revoked until every access
/// token of the session has expired.
#[tracing::instrument(skip(state), err)]
pub async fn end_session(state: &AppState, sid: &str) -> anyhow::Result<()> {
    let now = state.clock.now();
    sessions::end(&state.pool, sid, now, revoked_until(state, now)).await.context("failed to end session")
}

/// Whether an access token is revoked by what the database knows now: its `jti`, its session,
/// or a cut-off for its subject.
pub async fn is_revoked(pool: &sqlx::AnyPool, claims: &shared_auth::AccessClaims) -> anyhow::Result<bool> {
    let token = revocations::TokenIds {
        jti: &claims.jti,
        sid: claims.sid.as_deref(),
        sub: &claims.sub,
        iat: claims.iat,
    };
    revocations::covers(pool, token).await.context("failed to check revocations")
}

/// Deletes what no longer matters: revocations whose every covered token has expired, login
/// counts and rate-limit windows that are over, ended trusts, old authorization codes, ended
/// browser sessions. Returns how many rows went.
pub async fn prune(pool: &sqlx::AnyPool, now: i64) -> anyhow::Result<u64> {
    let revocations = revocations::prune(pool, now).await.context("failed to prune revocations")?;
    let logins = logins::prune(pool, now, now - throttle::WINDOW_SECS)
        .await
        .context("failed to prune login counts")?;
    let limits = rate_limits::prune(pool, now, crate::routes::accounts::REGISTRATION_WINDOW_SECS)
        .await
        .context("failed to prune rate limits")?;
    // Codes stay a day past their 60 s, so a late replay is still recognised and revokes.
    let codes = codes::prune(pool, now - 86_400).await.context("failed to prune authorization codes")?;
    let browser = browser_sessions::prune(pool, now).await.context("failed to prune browser sessions")?;
    Ok(revocations + logins + limits + codes + browser)
}

/// Runs [`prune`] every `interval` until the runtime stops, so that no request pays for it.
pub fn spawn_pruning(pool: sqlx::AnyPool, clock: Clock, interval: std::time::Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            if let Err(error) = prune(&pool, clock.now()).await {
                tracing::warn!(error = format!("{error:#}"), "failed to prune expired rows");
            }
        }
    });
}
