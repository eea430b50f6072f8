//! `sessions` and `refresh_tokens`: a login session is one `sid` and one family of rotating
//! refresh tokens, stored as SHA-256 hashes.

use sqlx::{AnyConnection, AnyPool, Row as _};

use super::revocations::{self, Revocation, RevocationKind};
use super::users::{self, User};

/// A session to create, with its first refresh token.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// The user.
    pub user_id: &'a str,
    /// The client logging in.
    pub client_id: &'a str,
    /// Granted scope.
    pub scope: &'a str,
    /// Absolute end of the session.
    pub expires_at: i64,
    /// SHA-256 hex of the first refresh token.
    pub refresh_token_hash: &'a str,
    /// Idle expiry of the first refresh token.
    pub idle_expires_at: i64,
    /// The browser session it was authorized through (`None` for `/v1/auth/login`).
    pub browser_sid: Option<&'a str>,
    /// The DPoP key thumbprint its refresh tokens are bound to (public clients' sessions).
    pub dpop_jkt: Option<&'a str>,
}

/// Creates a session and its first refresh token on `connection` (in the caller's transaction,
/// so a login's writes commit together). Returns the new `sid`.
#[tracing::instrument(skip_all, fields(user_id = session.user_id, client_id = session.client_id), err(level = "debug"))]
pub async fn create(
    connection: &mut AnyConnection,
    session: NewSession<'_>,
    now: i64,
) -> Result<String, sqlx::Error> {
    let sid = new_sid();
    create_with_sid(connection, &sid, session, now).await?;
    Ok(sid)
}

/// A new random session id.
pub fn new_sid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// [`create`] with a `sid` chosen before (the authorization code names its family when it is
/// consumed).
pub async fn create_with_sid(
    connection: &mut AnyConnection,
    sid: &str,
    session: NewSession<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (sid, user_id, client_id, scope, created_at, expires_at, browser_sid, \
         dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(sid)
    .bind(session.user_id)
    .bind(session.client_id)
    .bind(session.scope)
    .bind(now)
    .bind(session.expires_at)
    .bind(session.browser_sid)
    .bind(session.dpop_jkt)
    .execute(&mut *connection)
    .await?;
    insert_refresh_token(
        connection,
        &NextRefreshToken {
            hash: session.refresh_token_hash,
            sid,
            scope: session.scope,
            idle_expires_at: session.idle_expires_at,
        },
        now,
    )
    .await?;
    Ok(())
}

/// A refresh token as stored, with its session and the session's user.
#[derive(Debug)]
pub struct RefreshTokenRecord {
    /// Session id.
    pub sid: String,
    /// Scope granted to this token.
    pub scope: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unused until this, the token dies.
    pub idle_expires_at: i64,
    /// When it was redeemed (or its session ended); a second use is reuse.
    pub used_at: Option<i64>,
    /// The session's client.
    pub client_id: String,
    /// The session's user id.
    pub user_id: String,
    /// Absolute end of the session.
    pub session_expires_at: i64,
    /// When the session ended, if it did.
    pub session_revoked_at: Option<i64>,
    /// The DPoP key thumbprint the session's refresh tokens are bound to.
    pub dpop_jkt: Option<String>,
    /// The user, unless the account no longer exists.
    pub user: Option<User>,
}

/// What a refresh token is good for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenState {
    /// Redeemable.
    Active,
    /// Its session ended (logout, revocation, disabled account).
    SessionEnded,
    /// Already redeemed: presenting it again is reuse.
    Used,
    /// Idle or absolute lifetime over.
    Expired,
}

impl RefreshTokenRecord {
    /// The token's state at `now`; an ended session outranks reuse, which outranks expiry.
    pub fn state(&self, now: i64) -> RefreshTokenState {
        if self.session_revoked_at.is_some() {
            RefreshTokenState::SessionEnded
        } else if self.used_at.is_some() {
            RefreshTokenState::Used
        } else if self.expires_at() <= now {
            RefreshTokenState::Expired
        } else {
            RefreshTokenState::Active
        }
    }

    /// When the token stops working if unused: the earlier of its idle and its session's end.
    pub fn expires_at(&self) -> i64 {
        self.idle_expires_at.min(self.session_expires_at)
    }
}

/// Finds a refresh token by its hash, with its session and user, in one query. The token
/// endpoint, introspection and revocation all read refresh tokens through this.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn find_refresh_token(
    pool: &AnyPool,
    token_hash: &str,
) -> Result<Option<RefreshTokenRecord>, sqlx::Error> {
    let sql = format!(
        "SELECT r.sid, r.scope, r.issued_at, r.idle_expires_at, r.used_at, s.client_id, s.user_id, \
         s.expires_at AS session_expires_at, s.revoked_at AS session_revoked_at, s.dpop_jkt, \
         u.id AS found_user, {} \
         FROM refresh_tokens r JOIN sessions s ON s.sid = r.sid LEFT JOIN users u ON u.id = s.user_id \
         WHERE r.token_hash = $1",
        users::COLUMNS
    );
    let Some(row) = sqlx::query(&sql).bind(token_hash).fetch_optional(pool).await? else {
        return Ok(None);
    };
    let found_user: Option<String> = row.try_get("found_user")?;
    Ok(Some(RefreshTokenRecord {
        sid: row.try_get("sid")?,
        scope: row.try_get("scope")?,
        issued_at: row.try_get("issued_at")?,
        idle_expires_at: row.try_get("idle_expires_at")?,
        used_at: row.try_get("used_at")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        session_expires_at: row.try_get("session_expires_at")?,
        session_revoked_at: row.try_get("session_revoked_at")?,
        dpop_jkt: row.try_get("dpop_jkt")?,
        user: found_user.map(|_| User::from_row(&row)).transpose()?,
    }))
}

/// Whether session `sid` is live at `now`: not ended (logout, reuse, revocation, a disabled
/// account) and within its absolute lifetime.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn is_live(pool: &AnyPool, sid: &str, now: i64) -> Result<bool, sqlx::Error> {
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE sid = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(sid)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(live > 0)
}

/// The refresh token that replaces a redeemed one.
#[derive(Debug)]
pub struct NextRefreshToken<'a> {
    /// SHA-256 hex of the new token.
    pub hash: &'a str,
    /// Its session.
    pub sid: &'a str,
    /// Its scope (the redeemed one's, or narrower).
    pub scope: &'a str,
    /// Its idle expiry.
    pub idle_expires_at: i64,
}

async fn insert_refresh_token(
    connection: &mut AnyConnection,
    token: &NextRefreshToken<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, sid, scope, issued_at, idle_expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token.hash)
    .bind(token.sid)
    .bind(token.scope)
    .bind(now)
    .bind(token.idle_expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Redeems `used_hash` and stores `next` in one transaction. `false` when the token had already
/// been redeemed: of two concurrent refreshes with one token exactly one updates the row, and
/// the other is the reuse it is.
#[tracing::instrument(skip_all, fields(sid = next.sid), err(level = "debug"))]
pub async fn rotate_refresh_token(
    pool: &AnyPool,
    used_hash: &str,
    next: &NextRefreshToken<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let consumed =
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
            .bind(now)
            .bind(used_hash)
            .execute(&mut *transaction)
            .await?;
    if consumed.rows_affected() != 1 {
        return Ok(false);
    }
    insert_refresh_token(&mut transaction, next, now).await?;
    transaction.commit().await?;
    Ok(true)
}

/// Ends a session in one transaction: it is marked revoked, its refresh tokens stop working and
/// its `sid` is listed as revoked until `revoked_until`.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn end(pool: &AnyPool, sid: &str, now: i64, revoked_until: i64) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    end_on(&mut transaction, sid, now, revoked_until).await?;
    transaction.commit().await
}

pub(super) async fn end_on(
    connection: &mut AnyConnection,
    sid: &str,
    now: i64,
    revoked_until: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(sid)
        .execute(&mut *connection)
        .await?;
    sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE sid = $2 AND used_at IS NULL")
        .bind(now)
        .bind(sid)
        .execute(&mut *connection)
        .await?;
    let revocation = Revocation {
        kind: RevocationKind::Session,
        id: sid.to_owned(),
        not_before: now,
        expires_at: revoked_until,
    };
    revocations::upsert(connection, &revocation).await
}

/// Ends every live session of a user and cuts off every token of the subject issued up to
/// `now`, in one transaction. Returns how many sessions were live.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn end_all_of_user(
    pool: &AnyPool,
    user_id: &str,
    now: i64,
    revoked_until: i64,
) -> Result<usize, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let sids: Vec<String> =
        sqlx::query_scalar("SELECT sid FROM sessions WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .fetch_all(&mut *transaction)
            .await?;
    for sid in &sids {
        end_on(&mut transaction, sid, now, revoked_until).await?;
    }
    // Single sign-on ends too: the next authorization asks for the password (and is refused).
    super::browser_sessions::end_all_of_user(&mut transaction, user_id, now).await?;
    // Client tokens have no session; the subject cut-off covers every token up to `now`.
    let cutoff = Revocation {
        kind: RevocationKind::Subject,
        id: user_id.to_owned(),
        not_before: now + 1,
        expires_at: revoked_until,
    };
    revocations::upsert(&mut transaction, &cutoff).await?;
    transaction.commit().await?;
    Ok(sids.len())
}

/// Ends every live session of a client and cuts off every token of the subject `client_id`
/// issued up to `now`, on the caller's transaction (see [`super::clients::delete`]).
pub(super) async fn end_all_of_client(
    connection: &mut AnyConnection,
    client_id: &str,
    now: i64,
    revoked_until: i64,
) -> Result<(), sqlx::Error> {
    let sids: Vec<String> =
        sqlx::query_scalar("SELECT sid FROM sessions WHERE client_id = $1 AND revoked_at IS NULL")
            .bind(client_id)
            .fetch_all(&mut *connection)
            .await?;
    for sid in &sids {
        end_on(connection, sid, now, revoked_until).await?;
    }
    let cutoff = Revocation {
        kind: RevocationKind::Subject,
        id: client_id.to_owned(),
        not_before: now + 1,
        expires_at: revoked_until,
    };
    revocations::upsert(connection, &cutoff).await
}
