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
//!
//! The SQL is in [`crate::store::logins`]; times come from the caller's clock.

use std::net::IpAddr;

use sqlx::{AnyConnection, AnyPool};

use crate::store::logins::{self, Bucket, CountRules, TakeBack};

/// Seconds after the first failure of a window when its count resets.
pub const WINDOW_SECS: i64 = 15 * 60;
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

impl Counted {
    fn take_back(&self) -> TakeBack {
        TakeBack { key: self.key.clone(), provisional_until: self.provisional_until }
    }
}

/// The throttle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LoginThrottle {
    pool: AnyPool,
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

    /// Decides before any password work and, when the attempt may go ahead, counts it.
    /// `trusted_until` is the address's trust for the name ([`logins::lookup`] reads it
    /// together with the user).
    pub async fn begin(
        &self,
        username: &str,
        address: Option<IpAddr>,
        trusted_until: Option<i64>,
        now: i64,
    ) -> anyhow::Result<Decision> {
        let trusted_until = trusted_until.filter(|until| *until > now);
        let buckets = self.buckets(username, address, trusted_until.is_some());
        let rules = CountRules {
            now,
            window_start: now - WINDOW_SECS,
            provisional_until: now + PROVISIONAL_LOCK_SECS,
        };
        let counted = logins::count_attempt(&self.pool, &buckets, rules).await?;
        let mut attempt = Attempt {
            throttle: self.clone(),
            username: username.to_owned(),
            address,
            trusted_until,
            counted: Vec::with_capacity(buckets.len()),
        };
        for bucket in &buckets {
            if let Some(count) = counted.iter().find(|count| count.key == bucket.key) {
                attempt.counted.push(Counted {
                    key: bucket.key.clone(),
                    threshold: bucket.threshold,
                    failures: count.failures,
                    provisional_until: (count.failures >= bucket.threshold).then_some(count.locked_until),
                });
            }
        }
        if attempt.counted.len() < buckets.len() {
            // A bucket is locked: take back what this attempt counted in the others.
            self.release(attempt).await?;
            let keys: Vec<&str> = buckets.iter().map(|bucket| bucket.key.as_str()).collect();
            let longest = logins::latest_lock_end(&self.pool, &keys).await? - now;
            return Ok(Decision::Locked { retry_after: longest.max(1).unsigned_abs() });
        }
        Ok(Decision::Allow(attempt))
    }

    /// Settles a failed attempt: every bucket it brought to or past its threshold locks.
    pub async fn record_failure(&self, mut attempt: Attempt, now: i64) -> anyhow::Result<()> {
        let counted = std::mem::take(&mut attempt.counted);
        for counted in counted.iter().filter(|counted| counted.failures >= counted.threshold) {
            let exponent = u32::try_from(counted.failures - counted.threshold).unwrap_or(u32::MAX).min(20);
            let lock = (1_i64 << exponent).min(MAX_LOCK_SECS);
            // Times are whole seconds: a 1 s lock set late in second `now` would end when the
            // clock next ticks, milliseconds later. One more second makes every lock last at
            // least its length, and Retry-After stays truthful.
            logins::lock(&self.pool, &counted.key, now + lock + 1).await?;
            metrics::counter!("login_lockouts_total").increment(1);
        }
        Ok(())
    }

    /// Settles a successful attempt on `connection` (the login's transaction): clears the
    /// account+address count, takes the attempt back from the other buckets and trusts the
    /// address for this account.
    pub async fn record_success(
        &self,
        connection: &mut AnyConnection,
        mut attempt: Attempt,
        now: i64,
    ) -> anyhow::Result<()> {
        let counted = std::mem::take(&mut attempt.counted);
        let take_back: Vec<TakeBack> = counted.iter().map(Counted::take_back).collect();
        let Some(address) = attempt.address else {
            logins::take_back(connection, &take_back, None).await?;
            return Ok(());
        };
        let pair = Self::pair_key(&attempt.username, address);
        logins::take_back(connection, &take_back, Some(&pair)).await?;
        // Trust lasts 30 days from the latest login; its end is moved at most once a day.
        if attempt.trusted_until.is_some_and(|until| until > now + TRUST_SECS - TRUST_REFRESH_SECS) {
            return Ok(());
        }
        logins::trust(connection, &attempt.username, &address.to_string(), now + TRUST_SECS).await?;
        Ok(())
    }

    /// Settles an attempt that reached no verdict (an error while checking it): it no longer
    /// counts, and any provisional lock it set is lifted.
    pub async fn release(&self, mut attempt: Attempt) -> anyhow::Result<()> {
        let counted = std::mem::take(&mut attempt.counted);
        self.take_back(&counted).await
    }

    async fn take_back(&self, counted: &[Counted]) -> anyhow::Result<()> {
        let take_back: Vec<TakeBack> = counted.iter().map(Counted::take_back).collect();
        let mut connection = self.pool.acquire().await?;
        logins::take_back(&mut connection, &take_back, None).await?;
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
            if let Err(error) = throttle.take_back(&counted).await {
                tracing::warn!(error = %error, "failed to release an abandoned login attempt");
            }
        });
    }
}
