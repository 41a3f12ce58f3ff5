//! An entry: one immutable allocation holding a key, its value and one word of metadata.
//!
//! A slot of the table points at an entry. An entry never changes after it is published, except
//! for the small access counter in its metadata word: a `set` of an existing key publishes a new
//! entry and retires the old one, so a reader that holds a reference sees one consistent pair.
//!
//! The metadata word packs the deadline and the access counter, so that expiry and eviction cost
//! eight bytes an entry together:
//!
//! ```text
//!  63                                  4 3    0
//! [ deadline in units of 16 ns, 0 = never | freq ]
//! ```
//!
//! The deadline bits are written once, before the entry is published. The four `freq` bits are
//! raised by readers with a plain relaxed store (never a read-modify-write) and only when the
//! counter is below its maximum, so a hot entry's line stops being written once it is hot; the
//! evictor lowers them under the shard lock. A reader's store may race with the evictor's and undo
//! it; that costs the entry at most one extra round in the cache, never consistency, because the
//! deadline bits in both stores are the same.

use crate::sync::{AtomicU64, Ordering};

/// The largest value of the access counter.
pub(crate) const MAX_FREQ: u64 = 15;
const FREQ_MASK: u64 = 0b1111;
/// Bits of the counter, below the deadline.
const FREQ_BITS: u32 = 4;
/// Nanoseconds in one deadline unit.
const UNIT: u64 = 1 << FREQ_BITS;
/// The largest deadline unit that survives the shift left past the counter bits.
const MAX_UNITS: u64 = (1 << (64 - FREQ_BITS)) - 1;

/// A key, its value and its metadata word.
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    meta: AtomicU64,
}

impl<K, V> Entry<K, V> {
    /// An entry expiring at `deadline` (nanoseconds since the Unix epoch, 0 for never), with its
    /// access counter at `freq`.
    pub(crate) fn new(key: K, value: V, deadline: u64, freq: u64) -> Self {
        // Rounded down, so that an entry has expired once its deadline has passed, whatever
        // the clock's alignment; it may expire up to 15 ns before its deadline, never after
        // it. A deadline below 16 ns becomes 16 ns, since 0 means never: up to 15 ns late, but
        // only for a clock within 16 ns of the Unix epoch (a `MockClock` set there), and never
        // for a deadline already past when written, which is not stored at all
        // (`write_expired`).
        let units = deadline_units(deadline);
        Entry {
            key,
            value,
            meta: AtomicU64::new(units << FREQ_BITS | freq.min(MAX_FREQ)),
        }
    }

    /// The entry's address, compared (never read) to tell whether a slot still holds the entry
    /// a writer saw; an equal address is the same entry while the writer stays pinned.
    #[inline]
    pub(crate) fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// The key and the value, for a write that gives them back unlinked.
    pub(crate) fn into_parts(self) -> (K, V) {
        (self.key, self.value)
    }

    /// The deadline in nanoseconds since the Unix epoch (0 for never), rounded down to 16 ns.
    #[inline]
    pub(crate) fn deadline(&self) -> u64 {
        (self.meta.load(Ordering::Relaxed) >> FREQ_BITS) << FREQ_BITS
    }

    /// Whether the entry has expired at `now`; `now` is only called for entries with a deadline,
    /// so that entries without one never read the clock.
    #[inline]
    pub(crate) fn is_expired(&self, now: impl FnOnce() -> u64) -> bool {
        let deadline = self.deadline();
        deadline != 0 && deadline <= now()
    }

    /// The access counter.
    #[inline]
    pub(crate) fn freq(&self) -> u64 {
        self.meta.load(Ordering::Relaxed) & FREQ_MASK
    }

    /// Records a read: raises the counter by one unless it is at its maximum, in which case the
    /// line is not written at all.
    #[inline]
    pub(crate) fn record_hit(&self) {
        let meta = self.meta.load(Ordering::Relaxed);
        if meta & FREQ_MASK < MAX_FREQ {
            self.meta.store(meta + 1, Ordering::Relaxed);
        }
    }

    /// Sets the counter (the evictor, under the shard lock).
    #[inline]
    pub(crate) fn set_freq(&self, freq: u64) {
        let meta = self.meta.load(Ordering::Relaxed);
        self.meta
            .store((meta & !FREQ_MASK) | freq.min(MAX_FREQ), Ordering::Relaxed);
    }
}

/// The deadline an entry made with `deadline` keeps (see [`Entry::new`]): what decides whether
/// a write would be stored already expired.
pub(crate) fn stored_deadline(deadline: u64) -> u64 {
    deadline_units(deadline) << FREQ_BITS
}

/// A deadline in nanoseconds as the units the metadata word keeps: 0 for never, else rounded
/// down and at least 1.
fn deadline_units(deadline: u64) -> u64 {
    if deadline == 0 {
        0
    } else {
        (deadline / UNIT).clamp(1, MAX_UNITS)
    }
}

#[cfg(all(test, not(epochcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_down_and_never_become_never() {
        assert_eq!(Entry::new((), (), 0, 0).deadline(), 0);
        assert_eq!(Entry::new((), (), 1, 0).deadline(), 16);
        assert_eq!(Entry::new((), (), 32, 0).deadline(), 32);
        assert_eq!(Entry::new((), (), 47, 0).deadline(), 32);
        assert!(
            Entry::new((), (), 1_003, 0).is_expired(|| 1_003),
            "expired at its deadline"
        );
        assert_eq!(
            Entry::new((), (), u64::MAX, 0).deadline(),
            MAX_UNITS << FREQ_BITS
        );
    }

    #[test]
    fn expiry_reads_the_clock_only_with_a_deadline() {
        let never = Entry::new((), (), 0, 0);
        assert!(!never.is_expired(|| unreachable!("no deadline, no clock")));
        let e = Entry::new((), (), 1_008, 0);
        assert!(!e.is_expired(|| 1_007));
        assert!(e.is_expired(|| 1_008));
    }

    #[test]
    fn the_counter_saturates_and_keeps_the_deadline() {
        let e = Entry::new((), (), 480, 0);
        for want in (1..=MAX_FREQ).chain([MAX_FREQ]) {
            e.record_hit();
            assert_eq!(e.freq(), want);
        }
        e.set_freq(1);
        assert_eq!(e.freq(), 1);
        assert_eq!(e.deadline(), 480);
        assert_eq!(Entry::new((), (), 0, 99).freq(), MAX_FREQ);
    }
}
