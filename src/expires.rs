//! When an entry stops being served: the seed's `expires: int | datetime`.
//!
//! A caller says "in 30 seconds" ([`Expires::After`]), "at this instant" ([`Expires::At`]) or "at
//! this Unix timestamp" ([`Expires::UnixSeconds`], the seed's `int`). Caches turn each into one
//! deadline, a `u64` of nanoseconds since the Unix epoch read from their [`Clock`](crate::Clock),
//! when the entry is written; a deadline at or before now means the entry is already expired.

use std::time::{Duration, SystemTime};

use crate::clock::system_time_to_nanos;

/// When a value set in a cache expires.
///
/// An expiry at or before the current time is not an error: `set` takes the value as expired at
/// once, which removes any older value, and `get` returns `None` for it (the engines,
/// [`ShardedCache`](crate::ShardedCache) and [`ByteCache`](crate::ByteCache), do not store it at
/// all).
///
/// [`ShardedCache`](crate::ShardedCache) and [`ByteCache`](crate::ByteCache) keep a deadline to
/// 16 ns, rounded down: a value is never served after its expiry, and may stop being served up
/// to 15 ns before it. The one exception is a deadline within the first 16 ns after the Unix
/// epoch, which is kept as 16 ns (0 means never): only a clock set there (a `MockClock`) can
/// see it served up to 15 ns late.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use epochcache::Expires;
///
/// let in_a_minute: Expires = Duration::from_secs(60).into();
/// let at_the_epoch: Expires = SystemTime::UNIX_EPOCH.into();
/// let timestamp = Expires::UnixSeconds(1_900_000_000);
/// assert_eq!(in_a_minute, Expires::After(Duration::from_secs(60)));
/// # let _ = (at_the_epoch, timestamp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expires {
    /// This long after the value is set.
    After(Duration),
    /// At this wall-clock instant.
    At(SystemTime),
    /// At this Unix timestamp, in whole seconds (absolute, as the seed's "integer timestamps":
    /// 0 is long past, so an entry given it is already expired; no expiry is `None`).
    UnixSeconds(u64),
}

impl Expires {
    /// The deadline in nanoseconds since the Unix epoch, given the time `now` in the same unit.
    ///
    /// The result is never 0, which caches use to mean "never expires": an instant before the
    /// epoch becomes 1, still long past. (A cache judges whether an expiry has passed before
    /// this clamp, so to a clock that reads the epoch itself, such as a `MockClock` set there,
    /// an expiry at or before the epoch has passed too.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use epochcache::Expires;
    /// assert_eq!(Expires::After(Duration::from_nanos(5)).deadline_nanos(100), 105);
    /// assert_eq!(Expires::UnixSeconds(2).deadline_nanos(0), 2_000_000_000);
    /// ```
    pub fn deadline_nanos(&self, now: u64) -> u64 {
        self.unclamped_nanos(now).max(1)
    }

    /// The deadline before it is kept from 0: the epoch itself for an instant before it.
    fn unclamped_nanos(&self, now: u64) -> u64 {
        match *self {
            Expires::After(d) => {
                now.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            }
            Expires::At(t) => system_time_to_nanos(t),
            Expires::UnixSeconds(s) => s.saturating_mul(1_000_000_000),
        }
    }
}

impl From<Duration> for Expires {
    fn from(d: Duration) -> Self {
        Expires::After(d)
    }
}

impl From<SystemTime> for Expires {
    fn from(t: SystemTime) -> Self {
        Expires::At(t)
    }
}

/// A deadline as stored in an entry: 0 is "never", anything else nanoseconds since the epoch.
pub(crate) fn deadline_of(expires: Option<Expires>, now: u64) -> u64 {
    expires.map_or(0, |e| e.deadline_nanos(now))
}

/// Whether an expiry has passed at `now`, judged before its deadline is kept from 0: to a clock
/// that reads the epoch itself, an expiry at the epoch has passed.
pub(crate) fn has_passed(expires: Option<Expires>, now: u64) -> bool {
    expires.is_some_and(|e| e.unclamped_nanos(now) <= now)
}

/// Whether a stored deadline (0 for never) has passed at `now`.
#[inline]
pub(crate) fn is_expired(deadline: u64, now: u64) -> bool {
    deadline != 0 && deadline <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn deadlines() {
        assert_eq!(deadline_of(None, 50), 0);
        assert_eq!(deadline_of(Some(Expires::At(UNIX_EPOCH)), 50), 1);
        let before_epoch = UNIX_EPOCH - Duration::from_secs(3);
        assert_eq!(Expires::At(before_epoch).deadline_nanos(50), 1);
        assert_eq!(Expires::After(Duration::MAX).deadline_nanos(50), u64::MAX);
        assert_eq!(Expires::UnixSeconds(u64::MAX).deadline_nanos(0), u64::MAX);
    }

    #[test]
    fn an_expiry_at_the_epoch_has_passed_for_a_clock_there() {
        assert!(has_passed(Some(Expires::At(UNIX_EPOCH)), 0));
        assert!(has_passed(Some(Expires::After(Duration::ZERO)), 0));
        assert!(!has_passed(
            Some(Expires::After(Duration::from_nanos(1))),
            0
        ));
        assert!(!has_passed(None, u64::MAX));
    }

    #[test]
    fn expiry_is_at_or_before_now() {
        assert!(!is_expired(0, u64::MAX));
        assert!(is_expired(10, 10));
        assert!(!is_expired(11, 10));
    }
}
