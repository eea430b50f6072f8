//! Login throttling against password guessing.
//!
//! Failures are counted in the database (so every replica sees them) in three buckets:
//!
//! | bucket | threshold | stops |
//! |---|---|---|
//! | account + address | `T` (default 5) | one source guessing one account |
//! | address | `10 × T` | one source spraying many accounts |
//! | account | `4 × T` | many sources guessing one account |
//!
//! Past its threshold a bucket locks for a growing delay (1 s, 2 s, 4 s, ... capped at 15 min);
//! counts reset 15 minutes after the first failure of a window. A locked attempt is answered 429
//! with `Retry-After` *before* the password is looked at, so the right password during a lock
//! reveals nothing, and unknown usernames are throttled exactly like real ones.
//!
//! The account-wide bucket is what an attacker could use to lock a victim out, so it never
//! applies to an address the account has logged in from successfully in the last 30 days: an
//! attacker elsewhere cannot keep the victim out of their own address.

use std::net::IpAddr;

use anyhow::Context as _;
use shared_auth::time::unix_now_i64;
use sqlx::AnyPool;

/// Seconds after the first failure of a window when its count resets.
const WINDOW_SECS: i64 = 15 * 60;
/// Longest single lock.
const MAX_LOCK_SECS: i64 = 15 * 60;
/// How long a successful login makes an address trusted for the account.
const TRUST_SECS: i64 = 30 * 24 * 3600;

/// Whether a login attempt may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Check the password.
    Allow,
    /// Refuse with 429 for this many seconds.
    Locked {
        /// Seconds until the lock ends.
        retry_after: u64,
    },
}

/// The throttle. Cheap to clone.
#[derive(Clone)]
pub struct LoginThrottle {
    pool: AnyPool,
    threshold: i64,
}

struct Bucket {
    key: String,
    threshold: i64,
}

impl LoginThrottle {
    /// A throttle with `threshold` failures per account and address before locking.
    pub fn new(pool: AnyPool, threshold: u32) -> Self {
        Self { pool, threshold: i64::from(threshold.max(1)) }
    }

    fn buckets(&self, username: &str, address: Option<IpAddr>, trusted: bool) -> Vec<Bucket> {
        let mut buckets = Vec::with_capacity(3);
        if let Some(address) = address {
            buckets.push(Bucket { key: format!("pair:{username}|{address}"), threshold: self.threshold });
            buckets.push(Bucket { key: format!("address:{address}"), threshold: self.threshold * 10 });
        }
        if !trusted {
            buckets.push(Bucket { key: format!("account:{username}"), threshold: self.threshold * 4 });
        }
        buckets
    }

    fn trust_key(username: &str, address: IpAddr) -> String {
        format!("trusted:{username}|{address}")
    }

    async fn is_trusted(&self, username: &str, address: Option<IpAddr>, now: i64) -> anyhow::Result<bool> {
        let Some(address) = address else {
            return Ok(false);
        };
        let until: Option<i64> =
            sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE bucket = $1")
                .bind(Self::trust_key(username, address))
                .fetch_optional(&self.pool)
                .await
                .context("failed to read trusted address")?;
        Ok(until.is_some_and(|until| until > now))
    }

    /// Decides before any password work.
    pub async fn check(&self, username: &str, address: Option<IpAddr>) -> anyhow::Result<Decision> {
        let now = unix_now_i64();
        let trusted = self.is_trusted(username, address, now).await?;
        let mut longest = 0;
        for bucket in self.buckets(username, address, trusted) {
            let until: Option<i64> =
                sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE bucket = $1")
                    .bind(&bucket.key)
                    .fetch_optional(&self.pool)
                    .await
                    .context("failed to read login failures")?;
            longest = longest.max(until.unwrap_or(0) - now);
        }
        Ok(if longest > 0 {
            Decision::Locked { retry_after: u64::try_from(longest).unwrap_or(1) }
        } else {
            Decision::Allow
        })
    }

    /// Counts a failed attempt in every bucket and locks those past their threshold.
    pub async fn record_failure(&self, username: &str, address: Option<IpAddr>) -> anyhow::Result<()> {
        let now = unix_now_i64();
        let trusted = self.is_trusted(username, address, now).await?;
        for bucket in self.buckets(username, address, trusted) {
            let failures: i64 = sqlx::query_scalar(
                "INSERT INTO login_failures (bucket, failures, first_failed, locked_until) VALUES ($1, 1, $2, 0) \
                 ON CONFLICT (bucket) DO UPDATE SET \
                   failures = CASE WHEN login_failures.first_failed <= $3 THEN 1 ELSE login_failures.failures + 1 END, \
                   first_failed = CASE WHEN login_failures.first_failed <= $3 THEN $2 ELSE login_failures.first_failed END \
                 RETURNING failures",
            )
            .bind(&bucket.key)
            .bind(now)
            .bind(now - WINDOW_SECS)
            .fetch_one(&self.pool)
            .await
            .context("failed to count login failure")?;
            if failures >= bucket.threshold {
                let exponent = u32::try_from(failures - bucket.threshold).unwrap_or(u32::MAX).min(20);
                let lock = (1_i64 << exponent).min(MAX_LOCK_SECS);
                // Times are whole seconds: a 1 s lock set late in second `now` would end when the
                // clock next ticks, milliseconds later. One more second makes every lock last at
                // least its length, and Retry-After stays truthful.
                sqlx::query("UPDATE login_failures SET locked_until = $1 WHERE bucket = $2")
                    .bind(now + lock + 1)
                    .bind(&bucket.key)
                    .execute(&self.pool)
                    .await
                    .context("failed to lock login bucket")?;
                metrics::counter!("login_lockouts_total").increment(1);
            }
        }
        Ok(())
    }

    /// Clears the account+address count and trusts the address for this account.
    pub async fn record_success(&self, username: &str, address: Option<IpAddr>) -> anyhow::Result<()> {
        let Some(address) = address else {
            return Ok(());
        };
        sqlx::query("DELETE FROM login_failures WHERE bucket = $1")
            .bind(format!("pair:{username}|{address}"))
            .execute(&self.pool)
            .await
            .context("failed to clear login failures")?;
        sqlx::query(
            "INSERT INTO login_failures (bucket, failures, first_failed, locked_until) VALUES ($1, 0, $2, $3) \
             ON CONFLICT (bucket) DO UPDATE SET locked_until = $3",
        )
        .bind(Self::trust_key(username, address))
        .bind(unix_now_i64())
        .bind(unix_now_i64() + TRUST_SECS)
        .execute(&self.pool)
        .await
        .context("failed to trust address")?;
        Ok(())
    }
}
