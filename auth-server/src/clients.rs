//! OAuth clients (service-to-service credentials): registration and authentication.
//!
//! A client secret is 256 bits from the OS random generator and is stored as its SHA-256.
//! A fast hash is right here and wrong for passwords: Argon2's slowness exists to make guessing
//! a low-entropy human password expensive, but nobody can enumerate 2^256 random secrets, so a
//! preimage-resistant hash already protects a leaked table completely, and verifying costs
//! microseconds instead of 19 MiB and tens of milliseconds per service token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use shared_auth::time::unix_now_i64;
use sqlx::AnyPool;
use subtle::ConstantTimeEq as _;

pub use crate::store::clients::Client;
use crate::store::clients::{self as store, Inserted};
use crate::tokens::hash_token;

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

/// Registers a client with the given secret, created now (by the system clock: nothing expires
/// by a client's creation date). Fails if the id exists.
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
    let secret_hash = hash_token(secret.expose_secret());
    match store::insert(pool, client_id, &secret_hash, scopes, audiences, unix_now_i64()).await? {
        Inserted::Created => Ok(()),
        Inserted::Exists => anyhow::bail!("client {client_id:?} already exists"),
    }
}

/// Checks a client's credentials in constant time. `None` for an unknown id or wrong secret.
#[tracing::instrument(skip(pool, secret), err(level = "debug"))]
pub async fn authenticate(pool: &AnyPool, client_id: &str, secret: &str) -> anyhow::Result<Option<Client>> {
    let stored = store::find(pool, client_id).await?;
    // Hash even for unknown ids, so both paths cost the same.
    let presented = hash_token(secret);
    let Some(stored) = stored else {
        let _ = presented.as_bytes().ct_eq(hash_token("").as_bytes());
        return Ok(None);
    };
    Ok(bool::from(presented.as_bytes().ct_eq(stored.secret_hash.as_bytes())).then_some(stored.client))
}
