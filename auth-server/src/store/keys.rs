//! `signing_keys`: the key ring every replica shares (see `keyring.rs` for the lifecycle).

use serde::Serialize;
use sqlx::{AnyPool, Row as _};

/// A stored key. `private_key` is sealed (`v1:`) or, without a key encryption key, `plain:`.
pub struct KeyRow {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// JWS algorithm name.
    pub algorithm: String,
    /// The private key in its storage form.
    pub private_key: String,
    /// The public JWK, as JSON.
    pub public_jwk: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Signs from this time on (until a newer key activates).
    pub activates_at: i64,
    /// Unpublished from this time on, once scheduled.
    pub unpublish_at: Option<i64>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("activates_at", &self.activates_at)
            .field("unpublish_at", &self.unpublish_at)
            .finish_non_exhaustive()
    }
}

/// Where a key is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// Signing.
    Active,
    /// Published, no longer signing: tokens it signed may still be live.
    Retired,
    /// No longer published.
    Expired,
}

impl KeyRow {
    /// Whether the key is in the JWKS at `now`.
    pub fn is_published(&self, now: i64) -> bool {
        self.unpublish_at.is_none_or(|at| at > now)
    }

    /// The key's state at `now`, given which keys sign (one per algorithm).
    pub fn state(&self, signing_kids: &[&str], now: i64) -> KeyState {
        if !self.is_published(now) {
            KeyState::Expired
        } else if signing_kids.contains(&self.kid.as_str()) {
            KeyState::Active
        } else if self.activates_at > now {
            KeyState::Pending
        } else {
            KeyState::Retired
        }
    }
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<KeyRow, sqlx::Error> {
    Ok(KeyRow {
        kid: row.try_get("kid")?,
        algorithm: row.try_get("algorithm")?,
        private_key: row.try_get("private_key")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: row.try_get("created_at")?,
        activates_at: row.try_get("activates_at")?,
        unpublish_at: row.try_get("unpublish_at")?,
    })
}

/// The keys published at `now`.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn published(pool: &AnyPool, now: i64) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM signing_keys WHERE unpublish_at IS NULL OR unpublish_at > $1")
        .bind(now)
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Every stored key, oldest first.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn all(pool: &AnyPool) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid").fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// The latest activation time of any key of `algorithm`.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn latest_activation(pool: &AnyPool, algorithm: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MAX(activates_at) FROM signing_keys WHERE algorithm = $1")
        .bind(algorithm)
        .fetch_one(pool)
        .await
}

/// Stores a new key.
#[tracing::instrument(skip_all, fields(kid = key.kid), err(level = "debug"))]
pub async fn insert(pool: &AnyPool, key: &KeyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, private_key, public_jwk, created_at, activates_at, unpublish_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.kid)
    .bind(&key.algorithm)
    .bind(&key.private_key)
    .bind(&key.public_jwk)
    .bind(key.created_at)
    .bind(key.activates_at)
    .bind(key.unpublish_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Which keys a rotation replaces.
#[derive(Debug, Clone, Copy)]
pub enum Replaced<'a> {
    /// The keys of this algorithm (the id_token key of a second algorithm).
    Of(&'a str),
    /// Every key but those of this algorithm (the access-token key replaces keys of any
    /// earlier `SIGNING_ALG`, but not the id_token key of the second algorithm).
    AllBut(&'a str),
    /// Every other key.
    All,
}

/// Schedules the unpublication of the `replaced` keys but `kept` that have none scheduled yet.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn schedule_unpublish(
    pool: &AnyPool,
    kept: &str,
    replaced: Replaced<'_>,
    unpublish_at: i64,
) -> Result<(), sqlx::Error> {
    let base = "UPDATE signing_keys SET unpublish_at = $1 WHERE kid <> $2 AND unpublish_at IS NULL";
    let sql = match replaced {
        Replaced::Of(_) => format!("{base} AND algorithm = $3"),
        Replaced::AllBut(_) => format!("{base} AND algorithm <> $3"),
        Replaced::All => base.to_owned(),
    };
    let mut query = sqlx::query(&sql).bind(unpublish_at).bind(kept);
    if let Replaced::Of(algorithm) | Replaced::AllBut(algorithm) = replaced {
        query = query.bind(algorithm);
    }
    query.execute(pool).await?;
    Ok(())
}
