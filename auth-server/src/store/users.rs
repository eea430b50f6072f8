//! `users`: accounts and their Argon2id hashes.

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
    /// The upstream provider a federated account logs in through (it has no password);
    /// `None` for a local account.
    pub idp: Option<String>,
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

/// The columns [`User::from_row`] reads.
pub(super) const COLUMNS: &str = "u.id, u.username, u.password_hash, u.roles, u.disabled_at, u.idp";

impl User {
    /// Decodes [`COLUMNS`] of a row (from `users u`, alone or joined).
    pub(super) fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let roles: String = row.try_get("roles")?;
        Ok(Self {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
            roles: super::split_list(&roles),
            disabled_at: row.try_get("disabled_at")?,
            idp: row.try_get("idp")?,
        })
    }
}

/// Inserts a user; a taken username is [`CreateUserError::Taken`] (the unique index decides,
/// so two concurrent registrations cannot both succeed).
#[tracing::instrument(skip_all, fields(username = username.as_str()), err(level = "debug"))]
pub async fn create(
    pool: &AnyPool,
    username: &Username,
    password_hash: &str,
    roles: &[String],
    now: i64,
) -> Result<User, CreateUserError> {
    let id = uuid::Uuid::now_v7().to_string();
    let result = sqlx::query(
        "INSERT INTO users (id, username, password_hash, roles, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(username.as_str())
    .bind(password_hash)
    .bind(roles.join(" "))
    .bind(now)
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(User {
            id,
            username: username.as_str().to_owned(),
            password_hash: password_hash.to_owned(),
            roles: roles.to_vec(),
            disabled_at: None,
            idp: None,
        }),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Err(CreateUserError::Taken),
        Err(error) => Err(error.into()),
    }
}

/// Looks a user up by login name.
#[tracing::instrument(skip_all, fields(username = username.as_str()), err(level = "debug"))]
pub async fn find_by_username(pool: &AnyPool, username: &Username) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users u WHERE u.username = $1");
    let row = sqlx::query(&sql).bind(username.as_str()).fetch_optional(pool).await?;
    row.as_ref().map(User::from_row).transpose()
}

/// Looks a user up by its stored name exactly, local (`alice`) or federated (`acme:alice`,
/// which no local registration can take: `:` is not a username character).
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn find_by_name(pool: &AnyPool, name: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users u WHERE u.username = $1");
    let row = sqlx::query(&sql).bind(name).fetch_optional(pool).await?;
    row.as_ref().map(User::from_row).transpose()
}

/// Looks a user up by id.
#[tracing::instrument(skip(executor), err(level = "debug"))]
pub async fn find_by_id<'e, E>(executor: E, user_id: &str) -> Result<Option<User>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM users u WHERE u.id = $1");
    let row = sqlx::query(&sql).bind(user_id).fetch_optional(executor).await?;
    row.as_ref().map(User::from_row).transpose()
}

/// Replaces a password hash (re-hash with stronger parameters after a successful login).
#[tracing::instrument(skip(pool, hash), err(level = "debug"))]
pub async fn update_password_hash(pool: &AnyPool, user_id: &str, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Marks a user disabled (a no-op when already disabled).
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn disable(pool: &AnyPool, user_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}
