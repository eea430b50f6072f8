//! Database access for users, sessions and refresh tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use shared_auth::time::unix_now_i64;
use sqlx::{AnyPool, Row as _};

use crate::domain::Username;

/// A stored user.
#[derive(Debug, Clone)]
pub struct User {
    /// Stable id (the `sub` of their tokens).
    pub id: String,
    /// Normalised login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Granted roles.
    pub roles: Vec<String>,
    /// When the account was disabled, if it was.
    pub disabled_at: Option<i64>,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The username exists.
    #[error("username taken")]
    Taken,
    /// Database failure.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let roles: String = row.try_get("roles")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        roles: roles.split_whitespace().map(str::to_owned).collect(),
        disabled_at: row.try_get("disabled_at")?,
    })
}

/// Inserts a user; a taken username is [`CreateUserError::Taken`] (the unique index decides,
/// so two concurrent registrations cannot both succeed).
pub async fn create_user(
    pool: &AnyPool,
    username: &Username,
    password_hash: &str,
    roles: &[String],
) -> Result<User, CreateUserError> {
    let id = uuid::Uuid::now_v7().to_string();
    let result = sqlx::query(
        "INSERT INTO users (id, username, password_hash, roles, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(username.as_str())
    .bind(password_hash)
    .bind(roles.join(" "))
    .bind(unix_now_i64())
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(User {
            id,
            username: username.as_str().to_owned(),
            password_hash: password_hash.to_owned(),
            roles: roles.to_vec(),
            disabled_at: None,
        }),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Err(CreateUserError::Taken),
        Err(error) => Err(error.into()),
    }
}

/// Looks a user up by login name.
pub async fn find_user(pool: &AnyPool, username: &Username) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM users WHERE username = $1")
        .bind(username.as_str())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Looks a user up by id.
pub async fn find_user_by_id(pool: &AnyPool, id: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(id).fetch_optional(pool).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Replaces a password hash (re-hash with stronger parameters after a successful login).
pub async fn update_password_hash(pool: &AnyPool, id: &str, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A refresh token in plain form (given to the client once) and its storage hash.
#[derive(Debug)]
pub struct NewRefreshToken {
    /// The opaque token the client holds.
    pub plain: SecretString,
    /// What the database stores.
    pub hash: String,
}

/// 256 random bits, base64url. Stored only as SHA-256: a fast hash is right for a random
/// 256-bit value (nothing to brute-force), unlike for a password.
pub fn new_refresh_token() -> NewRefreshToken {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let plain = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&plain);
    NewRefreshToken { plain: SecretString::from(plain), hash }
}

/// SHA-256 hex of an opaque token.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What a new login session needs.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// The user.
    pub user_id: &'a str,
    /// The client logging in.
    pub client_id: &'a str,
    /// Granted scope.
    pub scope: &'a str,
    /// Absolute lifetime (seconds).
    pub absolute_ttl: i64,
    /// Idle lifetime of each refresh token (seconds).
    pub idle_ttl: i64,
}

/// Creates a session and its first refresh token, in one transaction.
pub async fn create_session(
    pool: &AnyPool,
    session: NewSession<'_>,
) -> Result<(String, SecretString), sqlx::Error> {
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let now = unix_now_i64();
    let refresh = new_refresh_token();
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "INSERT INTO sessions (sid, user_id, client_id, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&sid)
    .bind(session.user_id)
    .bind(session.client_id)
    .bind(session.scope)
    .bind(now)
    .bind(now + session.absolute_ttl)
    .execute(&mut *transaction)
    .await?;
    insert_refresh_token(&mut transaction, &refresh.hash, &sid, session.scope, now + session.idle_ttl)
        .await?;
    transaction.commit().await?;
    Ok((sid, refresh.plain))
}

/// Stores a refresh token of session `sid`.
pub async fn insert_refresh_token(
    connection: &mut sqlx::AnyConnection,
    hash: &str,
    sid: &str,
    scope: &str,
    idle_expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, sid, scope, issued_at, idle_expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(sid)
    .bind(scope)
    .bind(unix_now_i64())
    .bind(idle_expires_at)
    .execute(connection)
    .await?;
    Ok(())
}
