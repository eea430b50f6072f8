//! `clients`: OAuth clients and the SHA-256 of their secrets.

use serde::Serialize;
use sqlx::{AnyPool, Row as _};

/// A registered client, without its secret.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    /// Client id.
    pub client_id: String,
    /// Scopes it may request.
    pub scopes: Vec<String>,
    /// Audiences its tokens are for.
    pub audiences: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A client row with the hash of its secret, for authentication only.
pub struct StoredClient {
    /// The client.
    pub client: Client,
    /// SHA-256 hex of the secret.
    pub secret_hash: String,
}

impl std::fmt::Debug for StoredClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("StoredClient").field("client", &self.client).finish_non_exhaustive()
    }
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredClient, sqlx::Error> {
    let scopes: String = row.try_get("scopes")?;
    let audiences: String = row.try_get("audiences")?;
    Ok(StoredClient {
        client: Client {
            client_id: row.try_get("client_id")?,
            scopes: super::split_list(&scopes),
            audiences: super::split_list(&audiences),
            created_at: row.try_get("created_at")?,
        },
        secret_hash: row.try_get("secret_hash")?,
    })
}

/// Whether the insert stored the client or found its id taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored.
    Created,
    /// A client with this id exists.
    Exists,
}

/// Inserts a client.
#[tracing::instrument(skip(pool, secret_hash), err(level = "debug"))]
pub async fn insert(
    pool: &AnyPool,
    client_id: &str,
    secret_hash: &str,
    scopes: &[String],
    audiences: &[String],
    now: i64,
) -> Result<Inserted, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, scopes, audiences, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(client_id)
    .bind(secret_hash)
    .bind(scopes.join(" "))
    .bind(audiences.join(" "))
    .bind(now)
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(Inserted::Created),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(Inserted::Exists),
        Err(error) => Err(error),
    }
}

/// One client with its secret hash.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn find(pool: &AnyPool, client_id: &str) -> Result<Option<StoredClient>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// All clients, by id.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn list(pool: &AnyPool) -> Result<Vec<Client>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM clients ORDER BY client_id").fetch_all(pool).await?;
    rows.iter().map(|row| from_row(row).map(|stored| stored.client)).collect()
}

/// Deletes a client; returns whether it existed.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn delete(pool: &AnyPool, client_id: &str) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(client_id).execute(pool).await?;
    Ok(result.rows_affected() > 0)
}
