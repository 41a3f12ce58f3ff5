//! Where caches read the time, so that tests can replace it.
//!
//! Every expiry decision goes through a [`Clock`]. Production code uses [`SystemClock`]; tests use
//! [`MockClock`] and move time forward by hand, so that no test sleeps and every expiry test is
//! deterministic. Time is a `u64` of nanoseconds since the Unix epoch: one integer compare decides
//! whether an entry has expired, and it fits in one word of the entry (it lasts until the year
//! 2554).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time for expiry decisions.
///
/// Expiry follows the wall clock, because an absolute expiry ([`Expires::At`](crate::Expires::At))
/// is itself a wall-clock instant. So when the clock steps back, an entry that had expired but was
/// not yet removed (no read, write or sweep had met it) is live again until its deadline comes
/// round once more; moka and Caffeine, which read a monotonic clock, never see that.
///
/// ```
/// use epochcache::{Clock, SystemClock};
///
/// let now = SystemClock.now_nanos();
/// assert!(now > 1_600_000_000 * 1_000_000_000);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64;
}

/// The real clock: [`SystemTime::now`].
///
/// ```
/// use epochcache::{Clock, SystemClock};
/// assert!(SystemClock.now_nanos() > 0);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> u64 {
        system_time_to_nanos(SystemTime::now())
    }
}

/// A clock that only moves when told to; clones share one time.
///
/// ```
/// use std::time::Duration;
/// use epochcache::{Clock, MockClock};
///
/// let clock = MockClock::new();
/// let start = clock.now_nanos();
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_nanos() - start, 2_000_000_000);
/// ```
#[derive(Debug, Clone)]
pub struct MockClock {
    nanos: Arc<AtomicU64>,
}

impl MockClock {
    /// A mock clock at 2024-01-01T00:00:00Z, a fixed and realistic instant.
    ///
    /// ```
    /// use epochcache::{Clock, MockClock};
    /// assert_eq!(MockClock::new().now_nanos(), 1_704_067_200 * 1_000_000_000);
    /// ```
    pub fn new() -> Self {
        Self::at(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
    }

    /// A mock clock reading `time`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use epochcache::{Clock, MockClock};
    /// let clock = MockClock::at(UNIX_EPOCH + Duration::from_secs(5));
    /// assert_eq!(clock.now_nanos(), 5_000_000_000);
    /// ```
    pub fn at(time: SystemTime) -> Self {
        MockClock {
            nanos: Arc::new(AtomicU64::new(system_time_to_nanos(time))),
        }
    }

    /// Moves the clock forward by `by`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use epochcache::{Clock, MockClock};
    /// let clock = MockClock::new();
    /// let before = clock.now_nanos();
    /// clock.advance(Duration::from_nanos(7));
    /// assert_eq!(clock.now_nanos(), before + 7);
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `time`, earlier or later than now (a wall clock may step back; times
    /// before the Unix epoch read as the epoch).
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use epochcache::{Clock, MockClock};
    /// let clock = MockClock::new();
    /// clock.set(UNIX_EPOCH);
    /// assert_eq!(clock.now_nanos(), 0);
    /// ```
    pub fn set(&self, time: SystemTime) {
        self.nanos
            .store(system_time_to_nanos(time), Ordering::SeqCst);
    }

    /// The clock's time as a [`SystemTime`].
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use epochcache::MockClock;
    /// let t = UNIX_EPOCH + Duration::from_secs(9);
    /// assert_eq!(MockClock::at(t).now(), t);
    /// ```
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.now_nanos())
    }
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MockClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

/// Nanoseconds since the Unix epoch; times before it read as 0, times past 2554 as `u64::MAX`.
pub(crate) fn system_time_to_nanos(time: SystemTime) -> u64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

/// The clock a cache uses when none is given.
pub(crate) fn default_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_the_epoch_read_as_zero() {
        assert_eq!(system_time_to_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }

    #[test]
    fn advance_saturates() {
        let clock = MockClock::new();
        clock.advance(Duration::MAX);
        assert_eq!(clock.now_nanos(), u64::MAX);
    }
}
