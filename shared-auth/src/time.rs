//! Wall-clock time as Unix seconds, the unit of every JWT date, and a [`Clock`] that tests can
//! move.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before 1970, which nothing here expects).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

/// [`unix_now`] as the signed integer JWT claims use.
pub fn unix_now_i64() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}

/// Where "now" comes from: the system clock in production, a [`ManualClock`] in tests, so that
/// expiry, throttle windows and key rotation can be tested without sleeping. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<ManualTime>>,
}

/// The time a [`ManualClock`] shows, and a wake-up for [`Clock::sleep_until`] when it moves.
#[derive(Debug)]
struct ManualTime {
    seconds: AtomicI64,
    advanced: tokio::sync::Notify,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        match &self.manual {
            None => unix_now_i64(),
            Some(time) => time.seconds.load(Ordering::SeqCst),
        }
    }

    /// Waits until this clock reads `unix_seconds` or later: a timer on the system clock, and
    /// on a [`ManualClock`] until a test advances it that far (so work scheduled for a moment
    /// runs when the test's time gets there, not after a real wait).
    pub async fn sleep_until(&self, unix_seconds: i64) {
        match &self.manual {
            None => loop {
                let left = unix_seconds.saturating_sub(self.now());
                if left <= 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(left.unsigned_abs())).await;
            },
            Some(time) => loop {
                // Registered before the check, so an advance in between is not missed.
                let advanced = time.advanced.notified();
                tokio::pin!(advanced);
                advanced.as_mut().enable();
                if time.seconds.load(Ordering::SeqCst) >= unix_seconds {
                    return;
                }
                advanced.await;
            },
        }
    }

    /// [`Clock::now`] as the unsigned seconds of on-disk stamps (0 before 1970).
    pub fn now_u64(&self) -> u64 {
        u64::try_from(self.now()).unwrap_or(0)
    }
}

/// A clock that stands still until a test moves it. Every [`Clock`] made by
/// [`ManualClock::clock`] reads the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    time: Arc<ManualTime>,
}

impl ManualClock {
    /// A clock stopped at the current system time.
    pub fn starting_now() -> Self {
        Self::at(unix_now_i64())
    }

    /// A clock stopped at `unix_seconds`.
    pub fn at(unix_seconds: i64) -> Self {
        Self {
            time: Arc::new(ManualTime {
                seconds: AtomicI64::new(unix_seconds),
                advanced: tokio::sync::Notify::new(),
            }),
        }
    }

    /// A [`Clock`] reading this one.
    pub fn clock(&self) -> Clock {
        Clock { manual: Some(Arc::clone(&self.time)) }
    }

    /// Moves time forward by whole seconds (fractions are dropped: every date here is in
    /// seconds), and wakes whatever [`Clock::sleep_until`] waits for.
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.time
            .seconds
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| Some(now.saturating_add(seconds)))
            .ok();
        self.time.advanced.notify_waiters();
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        self.time.seconds.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let manual = ManualClock::at(1_000);
        let clock = manual.clock();
        assert_eq!(clock.now(), 1_000);
        manual.advance(Duration::from_millis(61_900));
        assert_eq!(clock.now(), 1_061);
        assert_eq!(clock.clone().now(), manual.now());
    }

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let before = unix_now_i64();
        let read = Clock::system().now();
        assert!(read >= before && read <= unix_now_i64());
    }

    #[tokio::test]
    async fn sleeping_on_a_manual_clock_ends_when_the_clock_gets_there() {
        let manual = ManualClock::at(1_000);
        let sleeper = tokio::spawn({
            let clock = manual.clock();
            async move { clock.sleep_until(1_030).await }
        });
        manual.advance(Duration::from_secs(29));
        tokio::task::yield_now().await;
        let finished_early = sleeper.is_finished();

        manual.advance(Duration::from_secs(1));
        sleeper.await.unwrap();

        assert!(!finished_early, "woke before the clock read 1030");
    }

    #[test]
    fn advancing_saturates_instead_of_overflowing() {
        let manual = ManualClock::at(i64::MAX - 1);
        manual.advance(Duration::from_secs(u64::MAX));
        assert_eq!(manual.now(), i64::MAX);
    }
}
