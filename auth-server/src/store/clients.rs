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
    /// May introspect every token, not only those issued to it or naming it in `aud`.
    pub introspect_any: bool,
    /// Where the authorization endpoint may send the browser back (exact strings); empty for a
    /// client without the authorization code grant.
    pub redirect_uris: Vec<String>,
    /// Where logout may send the browser back.
    pub post_logout_redirect_uris: Vec<String>,
    /// Has no secret: authenticates with `client_id` alone (`token_endpoint_auth_method=none`).
    pub public: bool,
    /// Is not asked for consent.
    pub first_party: bool,
    /// The `alg` of its id_tokens: `EdDSA` or `RS256`.
    pub id_token_alg: String,
    /// The audiences it may obtain by token exchange; empty: it may not exchange tokens.
    pub exchange_audiences: Vec<String>,
    /// Must send a DPoP proof with every token request (`--dpop`).
    pub dpop_required: bool,
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
            introspect_any: row.try_get::<i64, _>("introspect_any")? != 0,
            redirect_uris: super::split_list(&row.try_get::<String, _>("redirect_uris")?),
            post_logout_redirect_uris: super::split_list(
                &row.try_get::<String, _>("post_logout_redirect_uris")?,
            ),
            public: row.try_get::<i64, _>("public_client")? != 0,
            first_party: row.try_get::<i64, _>("first_party")? != 0,
            id_token_alg: row.try_get("id_token_alg")?,
            exchange_audiences: super::split_list(&row.try_get::<String, _>("exchange_audiences")?),
            dpop_required: row.try_get::<i64, _>("dpop_required")? != 0,
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

/// A client to insert.
#[derive(Debug)]
pub struct NewClient<'a> {
    /// Its id.
    pub client_id: &'a str,
    /// SHA-256 hex of its secret.
    pub secret_hash: &'a str,
    /// Scopes it may request.
    pub scopes: &'a [String],
    /// Audiences of its tokens.
    pub audiences: &'a [String],
    /// May introspect every token.
    pub introspect_any: bool,
    /// Redirect URIs.
    pub redirect_uris: &'a [String],
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: &'a [String],
    /// Public (no secret).
    pub public: bool,
    /// Not asked for consent.
    pub first_party: bool,
    /// The `alg` of its id_tokens.
    pub id_token_alg: &'a str,
    /// Audiences it may obtain by token exchange.
    pub exchange_audiences: &'a [String],
    /// Must send DPoP proofs.
    pub dpop_required: bool,
}

/// Inserts a client.
#[tracing::instrument(skip_all, fields(client_id = client.client_id), err(level = "debug"))]
pub async fn insert(pool: &AnyPool, client: &NewClient<'_>, now: i64) -> Result<Inserted, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, scopes, audiences, introspect_any, created_at, \
         redirect_uris, post_logout_redirect_uris, public_client, first_party, id_token_alg, \
         exchange_audiences, dpop_required) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13)",
    )
    .bind(client.client_id)
    .bind(client.secret_hash)
    .bind(client.scopes.join(" "))
    .bind(client.audiences.join(" "))
    .bind(i64::from(client.introspect_any))
    .bind(now)
    .bind(client.redirect_uris.join(" "))
    .bind(client.post_logout_redirect_uris.join(" "))
    .bind(i64::from(client.public))
    .bind(i64::from(client.first_party))
    .bind(client.id_token_alg)
    .bind(client.exchange_audiences.join(" "))
    .bind(i64::from(client.dpop_required))
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

/// Deletes a client and, in the same transaction, ends its sessions and cuts off every token
/// issued to it up to `now` (its service tokens have `sub` = its id). Returns whether it
/// existed.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn delete(
    pool: &AnyPool,
    client_id: &str,
    now: i64,
    revoked_until: i64,
) -> Result<bool, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *transaction)
        .await?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    super::sessions::end_all_of_client(&mut transaction, client_id, now, revoked_until).await?;
    transaction.commit().await?;
    Ok(true)
}
