//! `consents`: what a user allowed a client, remembered per (user, client) as the union of the
//! scopes granted. Denials are not stored.

use sqlx::AnyPool;

/// The scopes `user_id` has granted `client_id` (empty when none).
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn granted(pool: &AnyPool, user_id: &str, client_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let scopes: Option<String> =
        sqlx::query_scalar("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await?;
    Ok(scopes.as_deref().map(super::split_list).unwrap_or_default())
}

/// Records a grant of `scopes` (space-separated, the union with what was granted before).
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn grant(
    pool: &AnyPool,
    user_id: &str,
    client_id: &str,
    scopes: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(scopes)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}
