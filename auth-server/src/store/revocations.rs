//! `revocations`: what the signed revocation list publishes.

use sqlx::{AnyConnection, AnyPool, Row as _};

/// What an entry revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationKind {
    /// Every token of a login session (`sid`).
    Session,
    /// One access token (`jti`).
    Token,
    /// Every token of a subject issued before `not_before`.
    Subject,
}

impl RevocationKind {
    /// The value of the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Token => "token",
            Self::Subject => "subject",
        }
    }
}

impl std::str::FromStr for RevocationKind {
    type Err = UnknownKind;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "session" => Ok(Self::Session),
            "token" => Ok(Self::Token),
            "subject" => Ok(Self::Subject),
            other => Err(UnknownKind(other.to_owned())),
        }
    }
}

/// A `kind` this server never writes: corrupt data. Skipping the row would silently un-revoke
/// whatever it covers, so reading it is an error.
#[derive(Debug, thiserror::Error)]
#[error("unknown revocation kind {0:?} in the database")]
pub struct UnknownKind(pub String);

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// What it revokes.
    pub kind: RevocationKind,
    /// The `sid`, `jti` or `sub`.
    pub id: String,
    /// For [`RevocationKind::Subject`]: tokens issued before this are revoked.
    pub not_before: i64,
    /// Dropped from the list after this: every token it covers has expired.
    pub expires_at: i64,
}

/// Adds an entry, or extends the one of the same kind and id.
#[tracing::instrument(skip(connection), err(level = "debug"))]
pub async fn upsert(connection: &mut AnyConnection, revocation: &Revocation) -> Result<(), sqlx::Error> {
    // One atomic statement (SQLite and PostgreSQL both speak ON CONFLICT): a delete + insert
    // pair lets concurrent ends of one session (reuse detected by parallel refreshes) both
    // insert, and the loser fails on the primary key with a 500.
    sqlx::query(
        "INSERT INTO revocations (kind, id, not_before, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, id) DO UPDATE SET not_before = excluded.not_before, expires_at = excluded.expires_at",
    )
    .bind(revocation.kind.as_str())
    .bind(&revocation.id)
    .bind(revocation.not_before)
    .bind(revocation.expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// What a check needs to know about an access token.
#[derive(Debug, Clone, Copy)]
pub struct TokenIds<'a> {
    /// Its `jti`.
    pub jti: &'a str,
    /// Its `sid`, if it belongs to a session.
    pub sid: Option<&'a str>,
    /// Its `sub`.
    pub sub: &'a str,
    /// Its `iat`.
    pub iat: i64,
}

/// Whether an entry covers the token: its `jti`, its session, or a cut-off for its subject.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn covers(pool: &AnyPool, token: TokenIds<'_>) -> Result<bool, sqlx::Error> {
    let hits: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM revocations WHERE (kind = 'token' AND id = $1) OR (kind = 'session' AND id = $2) \
         OR (kind = 'subject' AND id = $3 AND not_before > $4)",
    )
    .bind(token.jti)
    .bind(token.sid.unwrap_or_default())
    .bind(token.sub)
    .bind(token.iat)
    .fetch_one(pool)
    .await?;
    Ok(hits > 0)
}

/// Why the live entries could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Database failure.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A row of a kind this server never writes.
    #[error(transparent)]
    Corrupt(#[from] UnknownKind),
}

/// Every entry that still covers a live token at `now`, by kind and id. Reads only: deleting
/// the expired ones is [`prune`]'s job.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn live(pool: &AnyPool, now: i64) -> Result<Vec<Revocation>, ReadError> {
    let rows = sqlx::query(
        "SELECT kind, id, not_before, expires_at FROM revocations WHERE expires_at > $1 ORDER BY kind, id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(Revocation {
                kind: kind.parse()?,
                id: row.try_get("id")?,
                not_before: row.try_get("not_before")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .collect()
}

/// Deletes the entries whose every covered token has expired at `now`; returns how many.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn prune(pool: &AnyPool, now: i64) -> Result<u64, sqlx::Error> {
    let deleted =
        sqlx::query("DELETE FROM revocations WHERE expires_at <= $1").bind(now).execute(pool).await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_itself_and_others_are_refused() {
        for kind in [RevocationKind::Session, RevocationKind::Token, RevocationKind::Subject] {
            assert_eq!(kind.as_str().parse::<RevocationKind>().unwrap(), kind);
        }
        assert!("sesion".parse::<RevocationKind>().is_err());
    }
}
