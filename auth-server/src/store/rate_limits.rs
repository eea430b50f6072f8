//! `rate_limits`: fixed-window counters shared by every replica.

use sqlx::AnyPool;

/// A fixed window: `limit` events per `window_secs`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Events allowed per window.
    pub limit: i64,
    /// Its length.
    pub window_secs: i64,
}

/// Counts one event in `bucket` at `now`. `Ok(None)` when it was within the limit; otherwise
/// nothing is counted and the answer is the seconds until the window ends.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn take(
    pool: &AnyPool,
    bucket: &str,
    window: Window,
    now: i64,
) -> Result<Option<u64>, sqlx::Error> {
    // A window that started at or before `expired` is over: the count starts again.
    let expired = now - window.window_secs;
    let counted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO rate_limits (bucket, count, window_start) VALUES ($1, 1, $2) \
         ON CONFLICT (bucket) DO UPDATE SET \
           count = CASE WHEN rate_limits.window_start <= $3 THEN 1 ELSE rate_limits.count + 1 END, \
           window_start = CASE WHEN rate_limits.window_start <= $3 THEN $2 ELSE rate_limits.window_start END \
         WHERE rate_limits.window_start <= $3 OR rate_limits.count < $4 \
         RETURNING count",
    )
    .bind(bucket)
    .bind(now)
    .bind(expired)
    .bind(window.limit)
    .fetch_optional(pool)
    .await?;
    if counted.is_some() {
        return Ok(None);
    }
    let started: Option<i64> = sqlx::query_scalar("SELECT window_start FROM rate_limits WHERE bucket = $1")
        .bind(bucket)
        .fetch_optional(pool)
        .await?;
    Ok(Some(started.map_or(1, |started| (started + window.window_secs - now).max(1).unsigned_abs())))
}

/// Deletes the counters whose window is over at `now` for windows of `window_secs`.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn prune(pool: &AnyPool, now: i64, window_secs: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM rate_limits WHERE window_start <= $1")
        .bind(now - window_secs)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected())
}
