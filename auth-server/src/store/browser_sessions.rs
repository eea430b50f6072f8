//! `browser_sessions`: single sign-on. The cookie holds a 256-bit random value; the row is
//! keyed by its SHA-256, so a leaked table names no live cookie.

use sqlx::{AnyConnection, AnyPool, Row as _};

/// A live browser session.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// Its public id: the `sid` of the id_tokens issued through it.
    pub sid: String,
    /// The user.
    pub user_id: String,
    /// When the user last entered a password (OIDC `auth_time`).
    pub auth_time: i64,
    /// Absolute end.
    pub expires_at: i64,
}

/// Stores a new browser session.
#[tracing::instrument(skip_all, fields(user_id = session.user_id), err(level = "debug"))]
pub async fn create(
    connection: &mut AnyConnection,
    id_hash: &str,
    session: &BrowserSession,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO browser_sessions (id_hash, sid, user_id, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(&session.sid)
    .bind(&session.user_id)
    .bind(session.auth_time)
    .bind(session.expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// The live session whose cookie hashes to `id_hash`, if it has neither ended nor expired.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn find_live(
    pool: &AnyPool,
    id_hash: &str,
    now: i64,
) -> Result<Option<BrowserSession>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT sid, user_id, auth_time, expires_at FROM browser_sessions \
         WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(BrowserSession {
            sid: row.try_get("sid")?,
            user_id: row.try_get("user_id")?,
            auth_time: row.try_get("auth_time")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Ends the browser session `sid` and every refresh family authorized through it, publishing
/// each family's `sid` as revoked until `revoked_until`, in one transaction. Returns whether a
/// live browser session ended.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn end(pool: &AnyPool, sid: &str, now: i64, revoked_until: i64) -> Result<bool, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let ended = sqlx::query("UPDATE browser_sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(sid)
        .execute(&mut *transaction)
        .await?;
    let families: Vec<String> =
        sqlx::query_scalar("SELECT sid FROM sessions WHERE browser_sid = $1 AND revoked_at IS NULL")
            .bind(sid)
            .fetch_all(&mut *transaction)
            .await?;
    for family in &families {
        super::sessions::end_on(&mut transaction, family, now, revoked_until).await?;
    }
    transaction.commit().await?;
    Ok(ended.rows_affected() == 1)
}

/// Ends every browser session of a user, on the caller's transaction (`users disable`).
pub(super) async fn end_all_of_user(
    connection: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE browser_sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(connection)
        .await?;
    Ok(())
}

/// Deletes sessions that ended or expired before `before`. Returns how many went.
pub async fn prune(pool: &AnyPool, before: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM browser_sessions WHERE expires_at < $1 OR ended_at < $1")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected())
}
