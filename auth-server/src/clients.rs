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
use crate::store::clients::{self as store, Inserted, NewClient};
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

/// What a client is registered with.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Scopes it may request.
    pub scopes: Vec<String>,
    /// Audiences its tokens are for (at least one).
    pub audiences: Vec<String>,
    /// May introspect every token.
    pub introspect_any: bool,
}

/// Registers a client with the given secret, scopes and audiences (see [`register`]).
pub async fn create(
    pool: &AnyPool,
    client_id: &str,
    secret: &SecretString,
    scopes: &[String],
    audiences: &[String],
) -> anyhow::Result<()> {
    let registration =
        Registration { scopes: scopes.to_vec(), audiences: audiences.to_vec(), introspect_any: false };
    register(pool, client_id, secret, &registration).await
}

/// Registers a client, created now (by the system clock: nothing expires by a client's
/// creation date). Fails if the id exists.
pub async fn register(
    pool: &AnyPool,
    client_id: &str,
    secret: &SecretString,
    registration: &Registration,
) -> anyhow::Result<()> {
    anyhow::ensure!(valid_id(client_id), "client id must be 1-128 characters of A-Z a-z 0-9 . _ - :");
    anyhow::ensure!(!registration.audiences.is_empty(), "a client needs at least one audience");
    for value in registration.scopes.iter().chain(&registration.audiences) {
        anyhow::ensure!(valid_id(value), "invalid scope or audience {value:?}");
    }
    let secret_hash = hash_token(secret.expose_secret());
    let client = NewClient {
        client_id,
        secret_hash: &secret_hash,
        scopes: &registration.scopes,
        audiences: &registration.audiences,
        introspect_any: registration.introspect_any,
    };
    match store::insert(pool, &client, unix_now_i64()).await? {
        Inserted::Created => Ok(()),
        Inserted::Exists => anyhow::bail!("client {client_id:?} already exists"),
    }
}

/// Whether `caller` may learn that a token is active (DESIGN.md's rule, RFC 7662 §4): the
/// token's own client, a client its `aud` names (a resource server checking what it was sent),
/// or one registered with `--introspect`.
pub fn may_introspect(caller: &Client, token_client: &str, token_audiences: &[String]) -> bool {
    caller.introspect_any || caller.client_id == token_client || token_audiences.contains(&caller.client_id)
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
