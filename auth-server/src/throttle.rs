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
//! An attempt is counted *before* its password is checked, in one conditional upsert per bucket
//! that refuses while the bucket is locked, and the attempt that reaches a threshold sets a short
//! provisional lock in that same statement. So concurrent attempts cannot all slip past the check
//! while the first ones are still hashing: a burst of 100 parallel guesses gets exactly
//! `threshold` password checks, on every replica together. The attempt is then settled: a failure
//! turns the provisional lock into the real one, a success (or an attempt that ended in an error
//! or was abandoned before any verdict) takes its count back.
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
/// How far the end of a trust may lag behind the latest login before it is moved forward.
const TRUST_REFRESH_SECS: i64 = 24 * 3600;

/// How long the provisional lock set by the attempt that reaches a threshold holds off the others
/// while that attempt is being checked (it is replaced or lifted when the attempt is settled).
const PROVISIONAL_LOCK_SECS: i64 = 2;

/// Whether a login attempt may proceed.
#[derive(Debug)]
pub enum Decision {
    /// Check the password, then settle the attempt.
    Allow(Attempt),
    /// Refuse with 429 for this many seconds.
    Locked {
        /// Seconds until the lock ends.
        retry_after: u64,
    },
}

/// A login attempt counted in every bucket that applies to it. Settle it with exactly one of
/// [`LoginThrottle::record_failure`], [`LoginThrottle::record_success`] or
/// [`LoginThrottle::release`]. One dropped unsettled (the client went away mid-check, which
/// cancels the handler) is released in the background: its client never saw a verdict.
#[derive(Debug)]
#[must_use = "an attempt is settled by record_failure, record_success or release"]
pub struct Attempt {
    throttle: LoginThrottle,
    username: String,
    address: Option<IpAddr>,
    /// Until when the address was already trusted for the account, if it was.
    trusted_until: Option<i64>,
    counted: Vec<Counted>,
}

#[derive(Debug)]
struct Counted {
    key: String,
    threshold: i64,
    /// The bucket's count including this attempt.
    failures: i64,
    /// The provisional lock this attempt set, when it reached the threshold.
    provisional_until: Option<i64>,
}

/// The throttle. Cheap to clone.
#[derive(Clone, Debug)]
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
            buckets.push(Bucket { key: Self::pair_key(username, address), threshold: self.threshold });
            buckets.push(Bucket { key: format!("address:{address}"), threshold: self.threshold * 10 });
        }
        if !trusted {
            buckets.push(Bucket { key: format!("account:{username}"), threshold: self.threshold * 4 });
        }
        buckets
    }

    fn pair_key(username: &str, address: IpAddr) -> String {
        format!("pair:{username}|{address}")
    }

    fn trust_key(username: &str, address: IpAddr) -> String {
        format!("trusted:{username}|{address}")
    }

    /// Until when `address` is trusted for `username`, if it is now.
    async fn trusted_until(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: i64,
    ) -> anyhow::Result<Option<i64>> {
        let Some(address) = address else {
            return Ok(None);
        };
        let until: Option<i64> =
            sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE bucket = $1")
                .bind(Self::trust_key(username, address))
                .fetch_optional(&self.pool)
                .await
                .context("failed to read trusted address")?;
        Ok(until.filter(|until| *until > now))
    }

    /// Seconds until the longest lock among `buckets` ends (0 when none is locked).
    async fn longest_lock(&self, buckets: &[Bucket], now: i64) -> anyhow::Result<i64> {
        let mut longest = 0;
        for bucket in buckets {
            let until: Option<i64> =
                sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE bucket = $1")
                    .bind(&bucket.key)
                    .fetch_optional(&self.pool)
                    .await
                    .context("failed to read login failures")?;
            longest = longest.max(until.unwrap_or(0) - now);
        }
        Ok(longest)
    }

    /// Decides before any password work and, when the attempt may go ahead, counts it.
    pub async fn begin(&self, username: &str, address: Option<IpAddr>) -> anyhow::Result<Decision> {
        let now = unix_now_i64();
        let trusted_until = self.trusted_until(username, address, now).await?;
        let buckets = self.buckets(username, address, trusted_until.is_some());
        let provisional_until = now + PROVISIONAL_LOCK_SECS;
        let mut attempt = Attempt {
            throttle: self.clone(),
            username: username.to_owned(),
            address,
            trusted_until,
            counted: Vec::new(),
        };
        for bucket in &buckets {
            // Counts the attempt unless the bucket is locked (then no row comes back), and sets
            // the provisional lock when this attempt reaches the threshold: check, count and
            // lock in one statement, so concurrent attempts cannot interleave between them.
            let counted: Option<(i64, i64)> = sqlx::query_as(
                "INSERT INTO login_failures (bucket, failures, first_failed, locked_until) \
                 VALUES ($1, 1, $2, CASE WHEN 1 >= $4 THEN $5 ELSE 0 END) \
                 ON CONFLICT (bucket) DO UPDATE SET \
                   failures = CASE WHEN login_failures.first_failed <= $3 THEN 1 \
                                   ELSE login_failures.failures + 1 END, \
                   first_failed = CASE WHEN login_failures.first_failed <= $3 THEN $2 \
                                       ELSE login_failures.first_failed END, \
                   locked_until = CASE WHEN (CASE WHEN login_failures.first_failed <= $3 THEN 1 \
                                                  ELSE login_failures.failures + 1 END) >= $4 THEN $5 \
                                       ELSE login_failures.locked_until END \
                 WHERE login_failures.locked_until <= $2 \
                 RETURNING failures, locked_until",
            )
            .bind(&bucket.key)
            .bind(now)
            .bind(now - WINDOW_SECS)
            .bind(bucket.threshold)
            .bind(provisional_until)
            .fetch_optional(&self.pool)
            .await
            .context("failed to count login attempt")?;
            let Some((failures, until)) = counted else {
                // Locked: take back what this attempt counted in the buckets before this one.
                self.release(attempt).await?;
                let longest = self.longest_lock(&buckets, now).await?;
                return Ok(Decision::Locked { retry_after: u64::try_from(longest).unwrap_or(1).max(1) });
            };
            attempt.counted.push(Counted {
                key: bucket.key.clone(),
                threshold: bucket.threshold,
                failures,
                provisional_until: (failures >= bucket.threshold).then_some(until),
            });
        }
        Ok(Decision::Allow(attempt))
    }

    /// Settles a failed attempt: every bucket it brought to or past its threshold locks.
    pub async fn record_failure(&self, mut attempt: Attempt) -> anyhow::Result<()> {
        let now = unix_now_i64();
        let counted = std::mem::take(&mut attempt.counted);
        for counted in counted.iter().filter(|counted| counted.failures >= counted.threshold) {
            let exponent = u32::try_from(counted.failures - counted.threshold).unwrap_or(u32::MAX).min(20);
            let lock = (1_i64 << exponent).min(MAX_LOCK_SECS);
            // Times are whole seconds: a 1 s lock set late in second `now` would end when the
            // clock next ticks, milliseconds later. One more second makes every lock last at
            // least its length, and Retry-After stays truthful.
            sqlx::query(
                "UPDATE login_failures SET locked_until = $1 WHERE bucket = $2 AND locked_until < $1",
            )
            .bind(now + lock + 1)
            .bind(&counted.key)
            .execute(&self.pool)
            .await
            .context("failed to lock login bucket")?;
            metrics::counter!("login_lockouts_total").increment(1);
        }
        Ok(())
    }

    /// Settles a successful attempt: clears the account+address count, takes the attempt back
    /// from the other buckets and trusts the address for this account.
    pub async fn record_success(&self, mut attempt: Attempt) -> anyhow::Result<()> {
        let Some(address) = attempt.address else {
            return self.release(attempt).await;
        };
        let counted = std::mem::take(&mut attempt.counted);
        let pair = Self::pair_key(&attempt.username, address);
        sqlx::query("DELETE FROM login_failures WHERE bucket = $1")
            .bind(&pair)
            .execute(&self.pool)
            .await
            .context("failed to clear login failures")?;
        for counted in counted.iter().filter(|counted| counted.key != pair) {
            self.uncount(counted).await?;
        }
        // Trust lasts 30 days from the latest login; its end is moved at most once a day.
        let now = unix_now_i64();
        if attempt.trusted_until.is_some_and(|until| until > now + TRUST_SECS - TRUST_REFRESH_SECS) {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO login_failures (bucket, failures, first_failed, locked_until) VALUES ($1, 0, $2, $3) \
             ON CONFLICT (bucket) DO UPDATE SET locked_until = $3",
        )
        .bind(Self::trust_key(&attempt.username, address))
        .bind(now)
        .bind(now + TRUST_SECS)
        .execute(&self.pool)
        .await
        .context("failed to trust address")?;
        Ok(())
    }

    /// Settles an attempt that reached no verdict (an error while checking it): it no longer
    /// counts, and any provisional lock it set is lifted.
    pub async fn release(&self, mut attempt: Attempt) -> anyhow::Result<()> {
        for counted in std::mem::take(&mut attempt.counted) {
            self.uncount(&counted).await?;
        }
        Ok(())
    }

    async fn uncount(&self, counted: &Counted) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE login_failures SET \
               failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END, \
               locked_until = CASE WHEN locked_until = $2 THEN 0 ELSE locked_until END \
             WHERE bucket = $1",
        )
        .bind(&counted.key)
        // -1 never matches a stored lock: nothing to lift when this attempt set none.
        .bind(counted.provisional_until.unwrap_or(-1))
        .execute(&self.pool)
        .await
        .context("failed to take back a login attempt")?;
        Ok(())
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        // Settling takes `counted` out; anything left means the attempt was abandoned.
        let counted = std::mem::take(&mut self.counted);
        if counted.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let throttle = self.throttle.clone();
        runtime.spawn(async move {
            for counted in &counted {
                if let Err(error) = throttle.uncount(counted).await {
                    tracing::warn!(error = %error, "failed to release an abandoned login attempt");
                }
            }
        });
    }
}
