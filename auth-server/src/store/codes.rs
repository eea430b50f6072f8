//! `authorization_codes`: single-use codes of the authorization code grant, stored as their
//! SHA-256. The first redemption attempt consumes a code whatever its outcome; a later one
//! finds the refresh family it issued, which the caller then ends (RFC 6749 §4.1.2).

use sqlx::{AnyConnection, AnyPool, Row as _};

/// A code as issued at the authorization endpoint.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    /// The client it was issued to.
    pub client_id: String,
    /// The user who authorized it.
    pub user_id: String,
    /// The `redirect_uri` of the authorization request, which the token request must repeat.
    pub redirect_uri: String,
    /// Granted scope.
    pub scope: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The relying party's nonce, for the id_token.
    pub nonce: Option<String>,
    /// The browser session it came through (the id_token's `sid`).
    pub browser_sid: String,
    /// When the user entered the password.
    pub auth_time: i64,
    /// End of its 60 s.
    pub expires_at: i64,
}

/// Stores a code.
#[tracing::instrument(skip_all, fields(client_id = code.client_id, user_id = code.user_id), err(level = "debug"))]
pub async fn insert(pool: &AnyPool, code_hash: &str, code: &AuthorizationCode) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, scope, code_challenge, \
         nonce, browser_sid, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(code_hash)
    .bind(&code.client_id)
    .bind(&code.user_id)
    .bind(&code.redirect_uri)
    .bind(&code.scope)
    .bind(&code.code_challenge)
    .bind(code.nonce.as_deref())
    .bind(&code.browser_sid)
    .bind(code.auth_time)
    .bind(code.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a redemption attempt found.
#[derive(Debug)]
pub enum Redemption {
    /// No such code.
    Unknown,
    /// This attempt consumed it: the caller checks it and may issue tokens, creating the named
    /// refresh family on the same transaction.
    First(AuthorizationCode),
    /// It was consumed before: the refresh family issued from it, if any, must end.
    Reused {
        /// The family issued by the first redemption.
        issued_sid: Option<String>,
    },
}

/// Consumes the code on the caller's transaction and names the refresh family it will issue
/// (`issued_sid`), in one statement. Of two concurrent attempts exactly one updates the row;
/// the other waits for its commit and sees a reuse. A first attempt that is then refused
/// issues nothing: ending its named family later ends nothing.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn redeem(
    connection: &mut AnyConnection,
    code_hash: &str,
    issued_sid: &str,
    now: i64,
) -> Result<Redemption, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE authorization_codes SET consumed_at = $1, issued_sid = $2 \
         WHERE code_hash = $3 AND consumed_at IS NULL \
         RETURNING client_id, user_id, redirect_uri, scope, code_challenge, nonce, browser_sid, auth_time, expires_at",
    )
    .bind(now)
    .bind(issued_sid)
    .bind(code_hash)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else {
        let issued: Option<Option<String>> =
            sqlx::query_scalar("SELECT issued_sid FROM authorization_codes WHERE code_hash = $1")
                .bind(code_hash)
                .fetch_optional(&mut *connection)
                .await?;
        return Ok(match issued {
            None => Redemption::Unknown,
            Some(issued_sid) => Redemption::Reused { issued_sid },
        });
    };
    Ok(Redemption::First(AuthorizationCode {
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        scope: row.try_get("scope")?,
        code_challenge: row.try_get("code_challenge")?,
        nonce: row.try_get("nonce")?,
        browser_sid: row.try_get("browser_sid")?,
        auth_time: row.try_get("auth_time")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Deletes codes that expired before `before` (kept a while after use, so that a late reuse is
/// still recognised and revokes). Returns how many went.
pub async fn prune(pool: &AnyPool, before: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM authorization_codes WHERE expires_at < $1")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected())
}
