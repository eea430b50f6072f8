//! OAuth clients (service-to-service credentials): registration and authentication.
//!
//! A client secret is 256 bits from the OS random generator and is stored as its SHA-256.
//! A fast hash is right here and wrong for passwords: Argon2's slowness exists to make guessing
//! a low-entropy human password expensive, but nobody can enumerate 2^256 random secrets, so a
//! preimage-resistant hash already protects a leaked table completely, and verifying costs
//! microseconds instead of 19 MiB and tens of milliseconds per service token.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use shared_auth::time::unix_now_i64;
use sqlx::{AnyPool, Row as _};
use subtle::ConstantTimeEq as _;

use crate::store::hash_token;

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

/// The one moment a secret exists in plain form: right after creation.
#[derive(Serialize)]
pub struct CreatedClient {
    /// Client id.
    pub client_id: String,
    /// The secret; shown once, stored only hashed.
    pub client_secret: String,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CreatedClient").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A fresh 256-bit secret.
pub fn generate_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

fn valid_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"._-:".contains(&byte))
}

/// Registers a client with the given secret. Fails if the id exists.
pub async fn create(
    pool: &AnyPool,
    client_id: &str,
    secret: &SecretString,
    scopes: &[String],
    audiences: &[String],
) -> anyhow::Result<()> {
    anyhow::ensure!(valid_id(client_id), "client id must be 1-128 characters of A-Z a-z 0-9 . _ - :");
    anyhow::ensure!(!audiences.is_empty(), "a client needs at least one audience");
    for value in scopes.iter().chain(audiences) {
        anyhow::ensure!(valid_id(value), "invalid scope or audience {value:?}");
    }
    let result = sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, scopes, audiences, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(client_id)
    .bind(hash_token(secret.expose_secret()))
    .bind(scopes.join(" "))
    .bind(audiences.join(" "))
    .bind(unix_now_i64())
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            anyhow::bail!("client {client_id:?} already exists")
        }
        Err(error) => Err(error).context("failed to store client"),
    }
}

fn client_from_row(row: &sqlx::any::AnyRow) -> Result<(Client, String), sqlx::Error> {
    let split = |value: String| value.split_whitespace().map(str::to_owned).collect();
    Ok((
        Client {
            client_id: row.try_get("client_id")?,
            scopes: split(row.try_get("scopes")?),
            audiences: split(row.try_get("audiences")?),
            created_at: row.try_get("created_at")?,
        },
        row.try_get("secret_hash")?,
    ))
}

/// All clients, by id.
pub async fn list(pool: &AnyPool) -> anyhow::Result<Vec<Client>> {
    let rows = sqlx::query("SELECT * FROM clients ORDER BY client_id").fetch_all(pool).await?;
    Ok(rows.iter().map(client_from_row).collect::<Result<Vec<_>, _>>()?.into_iter().map(|(c, _)| c).collect())
}

/// Deletes a client; returns whether it existed.
pub async fn delete(pool: &AnyPool, client_id: &str) -> anyhow::Result<bool> {
    let result =
        sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(client_id).execute(pool).await?;
    Ok(result.rows_affected() > 0)
}

/// Checks a client's credentials in constant time. `None` for an unknown id or wrong secret.
pub async fn authenticate(pool: &AnyPool, client_id: &str, secret: &str) -> anyhow::Result<Option<Client>> {
    let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(pool)
        .await
        .context("failed to read client")?;
    // Hash even for unknown ids, so both paths cost the same.
    let presented = hash_token(secret);
    let Some(row) = row else {
        let _ = presented.as_bytes().ct_eq(hash_token("").as_bytes());
        return Ok(None);
    };
    let (client, stored) = client_from_row(&row)?;
    Ok(bool::from(presented.as_bytes().ct_eq(stored.as_bytes())).then_some(client))
}
