//! `revocations`: what the signed revocation list publishes, and its sequence number.
//!
//! # The sequence number
//!
//! Services refuse a list whose `seq` is lower than the one in force, so a replayed older list
//! is refused. `seq` must therefore only grow, whichever replica signs the list and across
//! restarts; and it must not depend on replicas' clocks agreeing. So it comes from the shared
//! database, not from a process:
//!
//! - Every write of an entry stamps it with a `seq` one higher than the highest the database
//!   knows, and at least the revocation's own time in milliseconds (its `not_before`, the
//!   moment it was made). Concurrent writers may stamp the same number; nothing needs them
//!   to differ. An entry's `seq` never goes down.
//! - Pruning first records the highest `seq` it may delete in `revocation_sequence`, and only
//!   deletes entries at or below it, so deleting the newest expired entry never lowers it.
//! - The list publishes the highest of both, read before the entries: a list with a given
//!   `seq` holds at least every entry written up to it.
//!
//! The number needs no lock of its own (a counter row updated by every write would be held by
//! each logout's transaction until it commits, and `users disable`, which ends several sessions
//! in one transaction, could deadlock against a concurrent logout on PostgreSQL). The time
//! floor makes a database restored from a backup, or created afresh, overtake the numbers
//! published before with its first revocation.

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

/// The highest sequence number the database knows: of the entries, and of those pruned.
const HIGHEST_SEQ: &str = "SELECT MAX(known.seq) AS seq FROM (\
     SELECT COALESCE(MAX(seq), 0) AS seq FROM revocations \
     UNION ALL SELECT value AS seq FROM revocation_sequence) AS known";

/// Adds an entry, or extends the one of the same kind and id (its expiry never shortens: a
/// service may already hold the longer one, and a token it covers may live that long), and
/// stamps it with the next sequence number (see the module documentation).
#[tracing::instrument(skip(connection), err(level = "debug"))]
pub async fn upsert(connection: &mut AnyConnection, revocation: &Revocation) -> Result<(), sqlx::Error> {
    // One atomic statement (SQLite and PostgreSQL both speak ON CONFLICT): a delete + insert
    // pair lets concurrent ends of one session (reuse detected by parallel refreshes) both
    // insert, and the loser fails on the primary key with a 500.
    let statement = format!(
        "INSERT INTO revocations (kind, id, not_before, expires_at, seq) VALUES ($1, $2, $3, $4, \
           (SELECT CASE WHEN highest.seq + 1 > $5 THEN highest.seq + 1 ELSE $5 END FROM ({HIGHEST_SEQ}) AS highest)) \
         ON CONFLICT (kind, id) DO UPDATE SET not_before = excluded.not_before, \
           expires_at = CASE WHEN excluded.expires_at > revocations.expires_at \
             THEN excluded.expires_at ELSE revocations.expires_at END, \
           seq = CASE WHEN excluded.seq > revocations.seq THEN excluded.seq ELSE revocations.seq END"
    );
    sqlx::query(&statement)
        .bind(revocation.kind.as_str())
        .bind(&revocation.id)
        .bind(revocation.not_before)
        .bind(revocation.expires_at)
        .bind(revocation.not_before.saturating_mul(1000))
        .execute(connection)
        .await?;
    Ok(())
}

/// The sequence number of a list built from what the database holds now. Read it before the
/// entries: the entries read after it hold at least everything written up to it.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn sequence(pool: &AnyPool) -> Result<u64, ReadError> {
    let highest: i64 = sqlx::query_scalar(HIGHEST_SEQ).fetch_one(pool).await?;
    u64::try_from(highest).map_err(|_| ReadError::NegativeSeq(highest))
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
    /// A sequence number this server never writes.
    #[error("negative revocation sequence number {0} in the database")]
    NegativeSeq(i64),
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
/// The highest sequence number among the entries is recorded first, and only entries at or
/// below it go, so the published number never drops.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn prune(pool: &AnyPool, now: i64) -> Result<u64, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "UPDATE revocation_sequence SET value = (SELECT COALESCE(MAX(seq), 0) FROM revocations) \
         WHERE id = 1 AND value < (SELECT COALESCE(MAX(seq), 0) FROM revocations)",
    )
    .execute(&mut *transaction)
    .await?;
    let deleted = sqlx::query(
        "DELETE FROM revocations WHERE expires_at <= $1 \
         AND seq <= (SELECT value FROM revocation_sequence WHERE id = 1)",
    )
    .bind(now)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A migrated pool on `database`; a second call is a second replica on the same database.
    async fn replica(database: &testkit::TestDatabase) -> AnyPool {
        service_kit::db::connect_url(&database.url, &crate::MIGRATOR).await.unwrap()
    }

    async fn revoke(pool: &AnyPool, id: &str, at: i64, expires_at: i64) {
        let revocation =
            Revocation { kind: RevocationKind::Session, id: id.to_owned(), not_before: at, expires_at };
        upsert(&mut pool.acquire().await.unwrap(), &revocation).await.unwrap();
    }

    const NOW: i64 = 1_800_000_000;

    testkit::on_both_backends! {
        async fn every_write_on_any_replica_raises_the_sequence_that_every_replica_reads(database) {
            let first = replica(&database).await;
            let second = replica(&database).await;
            let empty = sequence(&first).await.unwrap();

            revoke(&first, "s1", NOW, NOW + 900).await;
            let after_first = sequence(&second).await.unwrap();
            // The same second, the same entry again, from the other replica.
            revoke(&second, "s1", NOW, NOW + 900).await;
            let after_second = sequence(&first).await.unwrap();
            revoke(&first, "s2", NOW, NOW + 900).await;

            assert_eq!(empty, 0);
            assert!(after_first > empty);
            assert!(after_second > after_first, "{after_second} after {after_first}");
            assert!(sequence(&second).await.unwrap() > after_second);
            assert_eq!(sequence(&first).await.unwrap(), sequence(&second).await.unwrap());
        }

        async fn pruning_the_newest_entry_does_not_lower_the_sequence(database) {
            let pool = replica(&database).await;
            revoke(&pool, "old", NOW - 2_000, NOW - 1_000).await;
            revoke(&pool, "newest-but-expired", NOW - 500, NOW - 100).await;
            let before = sequence(&pool).await.unwrap();

            let deleted = prune(&pool, NOW).await.unwrap();
            let after_pruning = sequence(&pool).await.unwrap();
            revoke(&pool, "next", NOW - 600, NOW + 900).await;

            assert_eq!(deleted, 2);
            assert_eq!(after_pruning, before);
            assert!(sequence(&pool).await.unwrap() > before, "the next write still goes past it");
            assert!(live(&pool, NOW).await.unwrap().iter().all(|entry| entry.id == "next"));
        }

        async fn a_new_database_overtakes_what_an_old_one_published_with_its_first_revocation(database) {
            let old = replica(&database).await;
            for index in 0..5 {
                revoke(&old, &format!("s{index}"), NOW, NOW + 900).await;
            }
            let published_before = sequence(&old).await.unwrap();
            let restored = testkit::TestDatabase::sqlite();
            let restored = replica(&restored).await;

            revoke(&restored, "after-restore", NOW + 1, NOW + 900).await;

            assert!(sequence(&restored).await.unwrap() > published_before);
        }

        async fn a_second_revocation_never_shortens_an_entry(database) {
            let pool = replica(&database).await;
            revoke(&pool, "s1", NOW, NOW + 3_600).await;

            revoke(&pool, "s1", NOW + 10, NOW + 900).await;

            let entries = live(&pool, NOW).await.unwrap();
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].expires_at, NOW + 3_600);
        }
    }

    #[test]
    fn every_kind_reads_back_as_itself_and_others_are_refused() {
        for kind in [RevocationKind::Session, RevocationKind::Token, RevocationKind::Subject] {
            assert_eq!(kind.as_str().parse::<RevocationKind>().unwrap(), kind);
        }
        assert!("sesion".parse::<RevocationKind>().is_err());
    }
}
