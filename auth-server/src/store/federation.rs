//! `identity_providers`, `federated_identities` and `federation_logins`: the upstream OpenID
//! providers, the local accounts linked to their users, and the logins under way there.

use serde::Serialize;
use sqlx::{AnyPool, Row as _};

use super::users::User;

/// A registered upstream provider, its client secret still sealed.
#[derive(Clone, Serialize)]
pub struct Provider {
    /// Our name for it: the `idp` claim and the path of its callback.
    pub name: String,
    /// Its issuer, exactly as its id_tokens name it.
    pub issuer: String,
    /// Our client id at the upstream.
    pub client_id: String,
    /// The sealed client secret (see [`crate::keyring::KeyRing::seal`]); '' for a public client.
    #[serde(skip)]
    pub sealed_secret: String,
    /// What the login page's button says: "Continue with DISPLAY NAME".
    pub display_name: String,
    /// Scopes asked of the upstream, space-separated.
    pub scope: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Provider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn provider_from_row(row: &sqlx::any::AnyRow) -> Result<Provider, sqlx::Error> {
    Ok(Provider {
        name: row.try_get("name")?,
        issuer: row.try_get("issuer")?,
        client_id: row.try_get("client_id")?,
        sealed_secret: row.try_get("client_secret")?,
        display_name: row.try_get("display_name")?,
        scope: row.try_get("scope")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Stores a provider; `false` when the name is taken.
#[tracing::instrument(skip_all, fields(name = provider.name), err(level = "debug"))]
pub async fn insert_provider(pool: &AnyPool, provider: &Provider) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO identity_providers (name, issuer, client_id, client_secret, display_name, scope, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&provider.name)
    .bind(&provider.issuer)
    .bind(&provider.client_id)
    .bind(&provider.sealed_secret)
    .bind(&provider.display_name)
    .bind(&provider.scope)
    .bind(provider.created_at)
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
        Err(error) => Err(error),
    }
}

/// Every provider, by name.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn list_providers(pool: &AnyPool) -> Result<Vec<Provider>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM identity_providers ORDER BY name").fetch_all(pool).await?;
    rows.iter().map(provider_from_row).collect()
}

/// One provider.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn find_provider(pool: &AnyPool, name: &str) -> Result<Option<Provider>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM identity_providers WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(provider_from_row).transpose()
}

/// Deletes a provider and the logins under way there; `false` when there was none. The
/// accounts linked to it stay (disable them with `users disable`): re-adding the provider under
/// the same name and issuer finds them again, and under another issuer never does.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn delete_provider(pool: &AnyPool, name: &str) -> Result<bool, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM identity_providers WHERE name = $1")
        .bind(name)
        .execute(&mut *transaction)
        .await?;
    sqlx::query("DELETE FROM federation_logins WHERE provider = $1")
        .bind(name)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(deleted.rows_affected() > 0)
}

/// A login sent to an upstream.
#[derive(Clone)]
pub struct PendingLogin {
    /// SHA-256 of the `state` sent upstream.
    pub state_hash: String,
    /// The provider it went to.
    pub provider: String,
    /// SHA-256 of the CSRF cookie of the browser that started it.
    pub browser_hash: String,
    /// The `nonce` the id_token must carry.
    pub nonce: String,
    /// The PKCE verifier of the code the upstream returns.
    pub code_verifier: String,
    /// Our own client's pending authorization request, form-encoded.
    pub request: String,
    /// Unix seconds after which the callback is refused.
    pub expires_at: i64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("PendingLogin").field("provider", &self.provider).finish_non_exhaustive()
    }
}

/// Stores a pending login, and drops those long expired.
#[tracing::instrument(skip_all, fields(provider = login.provider), err(level = "debug"))]
pub async fn insert_pending(pool: &AnyPool, login: &PendingLogin, now: i64) -> Result<(), sqlx::Error> {
    // An hour past expiry a login can only be a replay, which an unknown state refuses too.
    sqlx::query("DELETE FROM federation_logins WHERE expires_at < $1").bind(now - 3600).execute(pool).await?;
    sqlx::query(
        "INSERT INTO federation_logins (state_hash, provider, browser_hash, nonce, code_verifier, request, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&login.state_hash)
    .bind(&login.provider)
    .bind(&login.browser_hash)
    .bind(&login.nonce)
    .bind(&login.code_verifier)
    .bind(&login.request)
    .bind(login.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a callback's `state` found.
#[derive(Debug)]
pub enum Consumed {
    /// No login has this state.
    Unknown,
    /// The state was already used by an earlier callback.
    Replayed,
    /// Consumed now, by this callback.
    First(PendingLogin),
}

/// Consumes the pending login of `state_hash`, atomically: of two callbacks with one state,
/// exactly one gets [`Consumed::First`].
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn consume_pending(pool: &AnyPool, state_hash: &str, now: i64) -> Result<Consumed, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let updated =
        sqlx::query("UPDATE federation_logins SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL")
            .bind(now)
            .bind(state_hash)
            .execute(&mut *transaction)
            .await?;
    let row = sqlx::query("SELECT * FROM federation_logins WHERE state_hash = $1")
        .bind(state_hash)
        .fetch_optional(&mut *transaction)
        .await?;
    transaction.commit().await?;
    let Some(row) = row else {
        return Ok(Consumed::Unknown);
    };
    if updated.rows_affected() == 0 {
        return Ok(Consumed::Replayed);
    }
    Ok(Consumed::First(PendingLogin {
        state_hash: row.try_get("state_hash")?,
        provider: row.try_get("provider")?,
        browser_hash: row.try_get("browser_hash")?,
        nonce: row.try_get("nonce")?,
        code_verifier: row.try_get("code_verifier")?,
        request: row.try_get("request")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Who an upstream identity is: the provider it logs in through, its issuer, and its `sub`
/// there.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamSubject<'a> {
    /// The provider's name here.
    pub provider: &'a str,
    /// The provider's issuer, the one the id_token was verified for.
    pub issuer: &'a str,
    /// The upstream `sub`.
    pub subject: &'a str,
}

/// The local account linked to this upstream identity, if any.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn find_linked(pool: &AnyPool, identity: UpstreamSubject<'_>) -> Result<Option<User>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM federated_identities f JOIN users u ON u.id = f.user_id \
         WHERE f.provider = $1 AND f.issuer = $2 AND f.subject = $3",
        super::users::COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(identity.provider)
        .bind(identity.issuer)
        .bind(identity.subject)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// What creating a linked account did.
#[derive(Debug)]
pub enum Linked {
    /// Created under this name.
    Created(User),
    /// The name is taken: try the next one.
    NameTaken,
    /// Another login of the same upstream user linked an account first: use that one.
    AlreadyLinked,
}

/// Creates an account without a password for this upstream identity and links it, in one
/// transaction: the unique keys decide races on the name and on the link.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn create_linked(
    pool: &AnyPool,
    identity: UpstreamSubject<'_>,
    name: &str,
    now: i64,
) -> Result<Linked, sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let mut transaction = pool.begin().await?;
    // '' is no Argon2 hash: no password ever matches it, and the login path refuses accounts
    // with an `idp` before looking at one.
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, password_hash, roles, created_at, idp) VALUES ($1, $2, '', '', $3, $4)",
    )
    .bind(&id)
    .bind(name)
    .bind(now)
    .bind(identity.provider)
    .execute(&mut *transaction)
    .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => return Ok(Linked::NameTaken),
        Err(error) => return Err(error),
    }
    let linked = sqlx::query(
        "INSERT INTO federated_identities (provider, issuer, subject, user_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(identity.provider)
    .bind(identity.issuer)
    .bind(identity.subject)
    .bind(&id)
    .bind(now)
    .execute(&mut *transaction)
    .await;
    match linked {
        Ok(_) => {}
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => return Ok(Linked::AlreadyLinked),
        Err(error) => return Err(error),
    }
    transaction.commit().await?;
    Ok(Linked::Created(User {
        id,
        username: name.to_owned(),
        password_hash: String::new(),
        roles: Vec::new(),
        disabled_at: None,
        idp: Some(identity.provider.to_owned()),
    }))
}
