//! Ending sessions: logout, user disable. Each end publishes a revocation so the services stop
//! accepting the session's access tokens within one poll interval.

use anyhow::Context as _;
use shared_auth::time::unix_now_i64;

use crate::state::AppState;

/// Ends one session: refresh tokens die, and its `sid` is listed as revoked until every access
/// token of the session has expired.
pub async fn end_session(state: &AppState, sid: &str) -> anyhow::Result<()> {
    let now = unix_now_i64();
    let revoked_until = now + state.config.access_token_ttl_secs.as_i64() + 60;
    let mut transaction = state.pool.begin().await.context("failed to start transaction")?;
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(sid)
        .execute(&mut *transaction)
        .await
        .context("failed to revoke session")?;
    sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE sid = $2 AND used_at IS NULL")
        .bind(now)
        .bind(sid)
        .execute(&mut *transaction)
        .await
        .context("failed to revoke refresh tokens")?;
    upsert_revocation(&mut transaction, "session", sid, now, revoked_until).await?;
    transaction.commit().await.context("failed to commit session end")?;
    Ok(())
}

/// Adds or extends an entry of the revocation list.
pub async fn upsert_revocation(
    connection: &mut sqlx::AnyConnection,
    kind: &str,
    id: &str,
    not_before: i64,
    expires_at: i64,
) -> anyhow::Result<()> {
    // One atomic statement (SQLite and PostgreSQL both speak ON CONFLICT): a delete + insert
    // pair lets concurrent ends of one session (reuse detected by parallel refreshes) both
    // insert, and the loser fails on the primary key with a 500.
    sqlx::query(
        "INSERT INTO revocations (kind, id, not_before, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, id) DO UPDATE SET not_before = excluded.not_before, expires_at = excluded.expires_at",
    )
    .bind(kind)
    .bind(id)
    .bind(not_before)
    .bind(expires_at)
    .execute(&mut *connection)
    .await
    .context("failed to upsert revocation")?;
    Ok(())
}

/// Whether an access token is revoked by what the database knows now: its `jti`, its session,
/// or a cut-off for its subject.
pub async fn is_revoked(pool: &sqlx::AnyPool, claims: &shared_auth::AccessClaims) -> anyhow::Result<bool> {
    let sid = claims.sid.clone().unwrap_or_default();
    let hits: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM revocations WHERE (kind = 'token' AND id = $1) OR (kind = 'session' AND id = $2) \
         OR (kind = 'subject' AND id = $3 AND not_before > $4)",
    )
    .bind(&claims.jti)
    .bind(&sid)
    .bind(&claims.sub)
    .bind(claims.iat)
    .fetch_one(pool)
    .await
    .context("failed to check revocations")?;
    Ok(hits > 0)
}

/// Deletes the revocations whose every covered token has expired.
pub async fn prune_expired_revocations(pool: &sqlx::AnyPool) -> anyhow::Result<u64> {
    let deleted = sqlx::query("DELETE FROM revocations WHERE expires_at <= $1")
        .bind(unix_now_i64())
        .execute(pool)
        .await
        .context("failed to prune expired revocations")?;
    Ok(deleted.rows_affected())
}

/// Prunes expired revocations every `interval` until the runtime stops.
pub fn spawn_revocation_pruning(pool: sqlx::AnyPool, interval: std::time::Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            if let Err(error) = prune_expired_revocations(&pool).await {
                tracing::warn!(error = format!("{error:#}"), "failed to prune expired revocations");
            }
        }
    });
}
