//! `login_failures` and `trusted_addresses`: what the login throttle counts and remembers (the
//! rules are in `throttle.rs`; this module only stores them).
//!
//! A login runs as few statements as the rules allow: one [`lookup`] (the user and whether the
//! address is trusted), one [`count_attempt`] over every bucket, and after the password check
//! one transaction that settles the attempt ([`take_back`], [`trust`]) and creates the session.

use sqlx::{AnyConnection, AnyPool, Row as _};

use super::users::{self, User};
use crate::domain::Username;

/// What a login needs to know before it is counted.
#[derive(Debug)]
pub struct LoginLookup {
    /// The account, if the name is valid and taken.
    pub user: Option<User>,
    /// Until when the address is trusted for the name, if it ever was.
    pub trusted_until: Option<i64>,
}

/// The user of `username` and the trust of `address` for `throttle_name`, in one query.
#[tracing::instrument(skip_all, fields(username = throttle_name), err(level = "debug"))]
pub async fn lookup(
    pool: &AnyPool,
    throttle_name: &str,
    address: Option<&str>,
    username: Option<&Username>,
) -> Result<LoginLookup, sqlx::Error> {
    // One row always: the probe row, with the user (if any) joined to it.
    let sql = format!(
        "SELECT (SELECT t.trusted_until FROM trusted_addresses t WHERE t.username = $1 AND t.address = $2) \
         AS trusted_until, u.id AS found_user, {} FROM (SELECT 1 AS probe) AS probe \
         LEFT JOIN users u ON u.username = $3",
        users::COLUMNS
    );
    // No stored name or address is empty, so "" matches nothing.
    let row = sqlx::query(&sql)
        .bind(throttle_name)
        .bind(address.unwrap_or_default())
        .bind(username.map_or("", Username::as_str))
        .fetch_one(pool)
        .await?;
    let found_user: Option<String> = row.try_get("found_user")?;
    Ok(LoginLookup {
        user: found_user.map(|_| User::from_row(&row)).transpose()?,
        trusted_until: row.try_get("trusted_until")?,
    })
}

/// A counter an attempt goes into.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// `pair:…`, `address:…` or `account:…`.
    pub key: String,
    /// Failures that lock it.
    pub threshold: i64,
}

/// A bucket after an attempt was counted in it.
#[derive(Debug, Clone)]
pub struct Counted {
    /// The bucket.
    pub key: String,
    /// Its count including this attempt.
    pub failures: i64,
    /// Its lock (a provisional one when this attempt reached the threshold).
    pub locked_until: i64,
}

/// The window and provisional lock of [`count_attempt`].
#[derive(Debug, Clone, Copy)]
pub struct CountRules {
    /// Now.
    pub now: i64,
    /// Counts whose first failure is at or before this start again from one.
    pub window_start: i64,
    /// The lock set by the attempt that reaches a threshold, until it is settled.
    pub provisional_until: i64,
}

/// Counts an attempt in every bucket, in one statement, unless one of them is locked: then
/// nothing is counted or inserted (an attacker at a locked address adds no rows, whatever
/// names they try). Returns the buckets counted, so none or all of them. Check, count and
/// provisional lock happen in that statement, so concurrent attempts cannot interleave between
/// them.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn count_attempt(
    pool: &AnyPool,
    buckets: &[Bucket],
    rules: CountRules,
) -> Result<Vec<Counted>, sqlx::Error> {
    if buckets.is_empty() {
        return Ok(Vec::new());
    }
    // $1 now, $2 window start, $3 provisional lock; then key and threshold of each bucket.
    let key = |index: usize| 4 + 2 * index;
    let values: Vec<String> = (0..buckets.len())
        .map(|index| {
            let (key, threshold) = (key(index), key(index) + 1);
            format!("(${key}, ${threshold}, 1, $1, CASE WHEN 1 >= ${threshold} THEN $3 ELSE 0 END)")
        })
        .collect();
    let keys: Vec<String> = (0..buckets.len()).map(|index| format!("${}", key(index))).collect();
    // VALUES columns are column1..column5 in SQLite and PostgreSQL alike.
    let sql = format!(
        "INSERT INTO login_failures (bucket, threshold, failures, first_failed, locked_until) \
         SELECT column1, column2, column3, column4, column5 FROM (VALUES {}) AS attempt \
         WHERE NOT EXISTS (SELECT 1 FROM login_failures WHERE bucket IN ({}) AND locked_until > $1) \
         ON CONFLICT (bucket) DO UPDATE SET \
           threshold = excluded.threshold, \
           failures = CASE WHEN login_failures.first_failed <= $2 THEN 1 ELSE login_failures.failures + 1 END, \
           first_failed = CASE WHEN login_failures.first_failed <= $2 THEN $1 ELSE login_failures.first_failed END, \
           locked_until = CASE WHEN (CASE WHEN login_failures.first_failed <= $2 THEN 1 \
                                          ELSE login_failures.failures + 1 END) >= excluded.threshold THEN $3 \
                               ELSE login_failures.locked_until END \
         WHERE login_failures.locked_until <= $1 \
         RETURNING bucket, failures, locked_until",
        values.join(", "),
        keys.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(rules.now).bind(rules.window_start).bind(rules.provisional_until);
    for bucket in buckets {
        query = query.bind(&bucket.key).bind(bucket.threshold);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(Counted {
                key: row.try_get("bucket")?,
                failures: row.try_get("failures")?,
                locked_until: row.try_get("locked_until")?,
            })
        })
        .collect()
}

/// The latest lock end among `keys` (0 when none is stored).
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn latest_lock_end(pool: &AnyPool, keys: &[&str]) -> Result<i64, sqlx::Error> {
    if keys.is_empty() {
        return Ok(0);
    }
    let placeholders: Vec<String> = (1..=keys.len()).map(|index| format!("${index}")).collect();
    let sql =
        format!("SELECT MAX(locked_until) FROM login_failures WHERE bucket IN ({})", placeholders.join(", "));
    let mut query = sqlx::query_scalar::<_, Option<i64>>(&sql);
    for key in keys {
        query = query.bind(*key);
    }
    Ok(query.fetch_one(pool).await?.unwrap_or(0))
}

/// Locks a bucket until `until`, unless it is already locked longer.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn lock(pool: &AnyPool, key: &str, until: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE login_failures SET locked_until = $1 WHERE bucket = $2 AND locked_until < $1")
        .bind(until)
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// A bucket to take an attempt back from.
#[derive(Debug, Clone)]
pub struct TakeBack {
    /// The bucket.
    pub key: String,
    /// The provisional lock the attempt set there, to lift with it.
    pub provisional_until: Option<i64>,
}

/// Takes an attempt back from `buckets` in one statement: each count goes down by one and a
/// provisional lock the attempt set is lifted; the `cleared` bucket (the account and address of
/// a successful login) starts again from zero.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn take_back(
    connection: &mut AnyConnection,
    buckets: &[TakeBack],
    cleared: Option<&str>,
) -> Result<(), sqlx::Error> {
    if buckets.is_empty() {
        return Ok(());
    }
    // $1 the cleared bucket ("" for none: no key is empty); then key and lock of each bucket.
    let lock_cases: String =
        (0..buckets.len()).map(|index| format!(" WHEN ${} THEN ${}", 2 + 2 * index, 3 + 2 * index)).collect();
    let keys: Vec<String> = (0..buckets.len()).map(|index| format!("${}", 2 + 2 * index)).collect();
    let sql = format!(
        "UPDATE login_failures SET \
           failures = CASE WHEN bucket = $1 OR failures <= 0 THEN 0 ELSE failures - 1 END, \
           locked_until = CASE WHEN bucket = $1 OR locked_until = (CASE bucket{lock_cases} END) THEN 0 \
                               ELSE locked_until END \
         WHERE bucket IN ({})",
        keys.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(cleared.unwrap_or_default());
    for bucket in buckets {
        // -1 never matches a stored lock: nothing to lift when the attempt set none.
        query = query.bind(&bucket.key).bind(bucket.provisional_until.unwrap_or(-1));
    }
    query.execute(connection).await?;
    Ok(())
}

/// Trusts `address` for `username` until `until`.
#[tracing::instrument(skip(connection), err(level = "debug"))]
pub async fn trust(
    connection: &mut AnyConnection,
    username: &str,
    address: &str,
    until: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO trusted_addresses (username, address, trusted_until) VALUES ($1, $2, $3) \
         ON CONFLICT (username, address) DO UPDATE SET trusted_until = excluded.trusted_until",
    )
    .bind(username)
    .bind(address)
    .bind(until)
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes counts that no longer matter at `now` (window over, not locked) and ended trusts;
/// returns how many rows went.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn prune(pool: &AnyPool, now: i64, window_start: i64) -> Result<u64, sqlx::Error> {
    let failures = sqlx::query("DELETE FROM login_failures WHERE first_failed <= $1 AND locked_until <= $2")
        .bind(window_start)
        .bind(now)
        .execute(pool)
        .await?;
    let trusts = sqlx::query("DELETE FROM trusted_addresses WHERE trusted_until <= $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(failures.rows_affected() + trusts.rows_affected())
}
