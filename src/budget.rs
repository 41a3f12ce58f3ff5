//! The cache-wide bounds: total weight and entry count, shared by every shard.
//!
//! A bound split per shard refuses or evicts early when keys hash unevenly, so the budget is one
//! pair of counters for the whole cache. A writer reserves its entry's weight before it links the
//! entry and gives back the weight of what it unlinks. A reservation succeeds only if it keeps the
//! counter within the bound, so the resident weight never exceeds the budget, even for a moment;
//! when it would, the writer evicts until it fits.

use std::sync::Arc;

use crate::sync::epoch::Guard;
use crate::sync::{AtomicU64, Ordering};

/// One bounded quantity: its maximum and how much is reserved now.
#[derive(Debug)]
pub(crate) struct Bound {
    max: u64,
    used: AtomicU64,
}

impl Bound {
    pub(crate) fn new(max: u64) -> Self {
        Bound {
            max,
            used: AtomicU64::new(0),
        }
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Adds `amount` if the total stays within the maximum.
    ///
    /// Nothing is written for an amount of zero (a replacement under an entry bound, or of no
    /// more weight): the counter is one line for the whole cache, and every thread writing it on
    /// every replacement cost 16 threads on 16 cores 13-18% of their replaces (3.95 M/s, median
    /// of three runs, against 4.56 and 4.79 M/s in two later runs without the write, in which the
    /// peers ran 9-23% slower than in the first) and a fifth of the Zipf 90/10 mix (22.4 against
    /// 29.0 and 28.6 M/s); `benches/results/device-16core/`.
    fn try_reserve(&self, amount: u64) -> bool {
        if amount == 0 {
            return self.used() <= self.max;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                used.checked_add(amount).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn release(&self, amount: u64) {
        if amount == 0 {
            return;
        }
        self.used.fetch_sub(amount, Ordering::AcqRel);
    }
}

/// The weight and entry-count bounds of a cache; `None` where unbounded (nothing is counted).
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) weight: Option<Bound>,
    pub(crate) entries: Option<Bound>,
}

impl Budget {
    pub(crate) fn is_bounded(&self) -> bool {
        self.weight.is_some() || self.entries.is_some()
    }

    /// Whether an entry of `weight` fits an empty cache: a bound of zero entries, or a weight
    /// over the whole budget, can never be met however much is evicted.
    pub(crate) fn could_ever_fit(&self, weight: u64) -> bool {
        self.entries.as_ref().map_or(true, |e| e.max() > 0) && weight <= self.largest_entry()
    }

    /// What is reserved now, entries and weight: a writer waiting for room watches it move.
    pub(crate) fn used(&self) -> (u64, u64) {
        (
            self.entries.as_ref().map_or(0, Bound::used),
            self.weight.as_ref().map_or(0, Bound::used),
        )
    }

    /// The heaviest entry the budget could hold alone.
    pub(crate) fn largest_entry(&self) -> u64 {
        self.weight.as_ref().map_or(u64::MAX, Bound::max)
    }

    /// Reserves `entries` entries (one for a new key, none for a replacement) and `weight`, all
    /// or nothing.
    pub(crate) fn try_reserve(&self, entries: u64, weight: u64) -> bool {
        if let Some(bound) = &self.entries {
            if !bound.try_reserve(entries) {
                return false;
            }
        }
        if let Some(w) = &self.weight {
            if !w.try_reserve(weight) {
                if let Some(bound) = &self.entries {
                    bound.release(entries);
                }
                return false;
            }
        }
        true
    }

    /// Gives back `entries` entries and `weight`.
    pub(crate) fn release(&self, entries: u64, weight: u64) {
        if let Some(bound) = &self.entries {
            bound.release(entries);
        }
        if let Some(w) = &self.weight {
            w.release(weight);
        }
    }
}

/// How many entries a thread retires between two flushes of its epoch bag unless the builder
/// says otherwise (`retire_batch`); see [`pace_reclamation`].
pub(crate) const DEFAULT_RETIRE_BATCH: u32 = 4;

/// The most a batch may hold: crossbeam-epoch seals a thread's bag by itself at 64 deferred
/// functions, so a larger batch would change nothing.
pub(crate) const MAX_RETIRE_BATCH: u32 = 64;

/// Called with no lock held after a thread unlinked `retired` entries: once the thread has
/// retired `batch` entries (counted across every cache it writes) since its last flush, it
/// flushes its garbage bag to the collector, which also collects.
///
/// Why: crossbeam-epoch seals a thread's bag only when it holds 64 deferred frees, and a
/// collection (every 128th pin, by whichever thread pins, a reader too) runs up to eight sealed
/// bags: 512 entry destructors, some 10 to 15 microseconds, taken by one unlucky `get` or `set`.
/// Flushing smaller bags bounds what one collection can run to eight bags of this many entries,
/// at the price of one bag hand-off per this many retirements. Measured with
/// `epochcache-bench -w latency,replace` (get p99.9 / set p99 under a concurrent writer, two
/// runs each): 64 (crossbeam's own) 18-25 / 18-27 us; 32: 9-11 / 12 us; 16: 4.6-5.3 / 6-7 us;
/// 8: 2.7-5.8 / 5-10 us; 4: 2.1-2.8 / 4.0-4.3 us (quick_cache: 2.5-3.6 / 1.6-2.2 us), with
/// replace throughput level across all of them on 2 cores (on 16, not: every 16 replaced 1.6x as
/// fast as every 4 at two to three times the tail; `BENCHMARKS.md`, "Thread scaling"). Below 4
/// the tail shortens further but throughput pays: five runs each of `-w latency -s epochcache`
/// gave, for 4, get p99.9 2.9-4.5 us, set p99 3.4-11.2 us and set p99.9 24-40 us; for 2,
/// 1.8-2.0, 2.5-2.7 and 6.5-13.5 us; for 1, 1.8-3.9, 2.4-4.7 and 10-43 us. But four alternating
/// runs of `-w replace -t 1,2 -r 3` read 0.92-0.95 M replaces/s on one thread at 2 against
/// 1.00-1.05 M at 4, and lower on two. Much of the set tail is glibc's: every flush allocates
/// crossbeam's 2 KiB bag node, a large-bin request that makes glibc consolidate the fast bins the
/// entry frees filled. With mimalloc under the benchmark (a trial, not kept) the set p99.9 at 4
/// was 9.6-9.9 us, and 2 or 1 gained nothing.
///
/// The default, [`DEFAULT_RETIRE_BATCH`], favours the tail; a cache that mostly writes, on many
/// cores, may choose a larger batch through the builder.
pub(crate) fn pace_reclamation(guard: &Guard, retired: usize, batch: u32) {
    if retired == 0 {
        return;
    }
    use std::cell::Cell;
    // loom's thread-locals start afresh in every execution, so a model replays the same flushes.
    #[cfg(epochcache_loom)]
    loom::thread_local! {
        static RETIRED: Cell<u32> = Cell::new(0);
    }
    #[cfg(not(epochcache_loom))]
    std::thread_local! {
        static RETIRED: Cell<u32> = const { Cell::new(0) };
    }
    if RETIRED.with(|count| flush_due(count, retired, batch)) {
        guard.flush();
    }
}

/// Adds `retired` to a thread's count since its last flush; whether a flush is due (the count
/// then restarts). Every retirement counts towards the next flush, whichever cache it came from.
fn flush_due(count: &std::cell::Cell<u32>, retired: usize, batch: u32) -> bool {
    let retired = u32::try_from(retired).unwrap_or(u32::MAX);
    let n = count.get().saturating_add(retired);
    let due = n >= batch.clamp(1, MAX_RETIRE_BATCH);
    count.set(if due { 0 } else { n });
    due
}

/// The most one retired entry adds to the garbage count: 1 TiB.
const MAX_COUNTED_WEIGHT: u64 = 1 << 40;

/// How many times one write flushes the epoch garbage at most.
const MAX_FLUSH_ROUNDS: usize = 16;

/// How many limits' worth of garbage a write leaves waiting before, done and unpinned, it waits
/// for the collector (see [`Garbage::wait_for_collector`]).
const WAIT_PAST_LIMITS: u64 = 2;

/// How many times one write waits for the collector at most: a thread that stays pinned (a
/// [`Pinned`](crate::Pinned) handle held for long) keeps garbage from being freed however long
/// writers wait, so they slow down rather than stop.
const MAX_WAIT_ROUNDS: usize = 64;

/// The weight of entries unlinked from a bounded cache but not yet freed: the epoch collector
/// frees an entry only once every thread pinned when it was retired has unpinned, so under
/// write pressure retired memory can pile up beyond the budget. It is counted here, and when it
/// passes its limit the writer flushes its thread's garbage to the collector and collects.
#[derive(Debug)]
pub(crate) struct Garbage {
    weight: Arc<AtomicU64>,
    limit: u64,
}

impl Garbage {
    /// Flushes once more than `limit` weight waits to be freed (at least one entry's worth).
    pub(crate) fn new(limit: u64) -> Self {
        Garbage {
            weight: Arc::new(AtomicU64::new(0)),
            limit: limit.max(1),
        }
    }

    /// The weight past which a writer flushes.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// The weight waiting to be freed.
    pub(crate) fn weight(&self) -> u64 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Counts `weight` just retired under `guard` until the collector runs the retirement. Runs
    /// no user code (see [`flush_if_over`](Self::flush_if_over) for the part that does).
    pub(crate) fn count(&self, weight: u64, guard: &Guard) {
        if weight == 0 {
            return;
        }
        // Capped, so that a caller's weigher that weighs entries near `u64::MAX` cannot wrap the
        // count (it would take 2^24 such entries waiting at once), while one atomic add each way
        // keeps the count exact for every entry lighter than the cap.
        let weight = weight.min(MAX_COUNTED_WEIGHT);
        self.weight.fetch_add(weight, Ordering::Relaxed);
        let counter = Arc::clone(&self.weight);
        // Deferred after the entry's own destruction in the same thread-local bag, so the two
        // run in the same collection.
        guard.defer(move || {
            counter.fetch_sub(weight, Ordering::Relaxed);
        });
    }

    /// Runs the collector while more than `WAIT_PAST_LIMITS` limits' worth waits to be freed,
    /// `MAX_WAIT_ROUNDS` times at most (see [`collect_until`](crate::sweep::collect_until)).
    /// Called by a write once it has unpinned and let go of every lock.
    ///
    /// [`flush_if_over`](Self::flush_if_over) runs while the writer is still pinned, and the
    /// collector frees nothing retired since the oldest pin of any thread: the writer's own, or
    /// that of a thread descheduled while pinned, which then holds every collection back until it
    /// runs again. Two writers of 4 KiB values on two cores shared with other work left up to 13
    /// MB waiting against a 1 MiB limit with flushing alone, 2 MB with this
    /// (`tests/garbage.rs`).
    pub(crate) fn wait_for_collector(&self) {
        let enough = self.limit.saturating_mul(WAIT_PAST_LIMITS);
        crate::sweep::collect_until(MAX_WAIT_ROUNDS, || self.weight() <= enough);
    }

    /// Flushes while too much waits to be freed. Call with no lock held: flushing runs deferred
    /// destructors, values' `Drop` among them.
    pub(crate) fn flush_if_over(&self, guard: &Guard) {
        // Each flush collects a few bags of the process-wide collector, whose queue other caches
        // and threads share, so a few rounds may be needed to reach ours; the rounds are bounded.
        let mut rounds = 0;
        while self.weight() > self.limit && rounds < MAX_FLUSH_ROUNDS {
            guard.flush();
            rounds += 1;
        }
    }
}

#[cfg(all(test, not(epochcache_loom)))]
mod tests {
    use super::*;

    /// The garbage limit is the heaviest entry the cache can store, not the setting: with
    /// `max_entry_weight(u64::MAX)` over a 1 MiB budget, a limit of `u64::MAX` never flushed.
    #[test]
    fn the_garbage_limit_is_the_heaviest_entry_that_can_be_stored() {
        let limit = |max_entry: u64| {
            let cache: crate::ShardedCache<u64, u64> = crate::ShardedCache::builder()
                .max_weight(1 << 20)
                .max_entry_weight(max_entry)
                .build();
            cache.garbage.limit()
        };
        assert_eq!(limit(u64::MAX), 1 << 20);
        assert_eq!(limit(1 << 10), 1 << 10);
    }

    #[test]
    fn a_reservation_never_exceeds_either_bound() {
        let budget = Budget {
            weight: Some(Bound::new(100)),
            entries: Some(Bound::new(2)),
        };
        assert!(budget.try_reserve(1, 60));
        assert!(!budget.try_reserve(1, 41), "weight would be 101");
        assert_eq!(budget.entries.as_ref().unwrap().used(), 1, "all or nothing");
        assert!(budget.try_reserve(1, 40));
        assert!(!budget.try_reserve(1, 0), "a third entry");
        assert!(
            budget.try_reserve(0, 0),
            "a replacement of the same weight needs nothing"
        );
        budget.release(1, 60);
        assert!(budget.try_reserve(1, 10));
        assert_eq!(budget.weight.as_ref().unwrap().used(), 50);
    }

    #[test]
    fn the_retired_weight_is_capped_instead_of_wrapping() {
        // A collector of its own, which no other test's pin can hold back.
        let collector = crossbeam_epoch::Collector::new();
        let handle = collector.register();
        let garbage = Garbage::new(1);
        let guard = handle.pin(); // nothing counted can be freed while it lives
        for _ in 0..3 {
            garbage.count(u64::MAX / 2, &guard);
        }
        assert_eq!(
            garbage.weight(),
            3 * MAX_COUNTED_WEIGHT,
            "{}",
            garbage.weight()
        );
        drop(guard);
        for _ in 0..8 {
            handle.pin().flush();
        }
        assert_eq!(
            garbage.weight(),
            0,
            "each deferred decrement takes off what was added"
        );
    }

    #[test]
    fn a_flush_is_due_once_a_batch_has_been_retired() {
        let count = std::cell::Cell::new(0);
        let flushes = |retired: &[usize], batch| {
            retired
                .iter()
                .map(|&r| flush_due(&count, r, batch))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            flushes(&[1, 1, 1, 1, 1, 1, 1, 1], 4),
            [false, false, false, true, false, false, false, true]
        );
        assert_eq!(
            flushes(&[1, 5, 1], 4),
            [false, true, false],
            "one flush for many"
        );
        count.set(0);
        assert_eq!(flushes(&[1, 1], 1), [true, true]);
        assert_eq!(flushes(&[1, 1], 0), [true, true], "0 is taken as 1");
        assert_eq!(
            flushes(&[63, 1, usize::MAX], u32::MAX),
            [false, true, true],
            "at most 64, never an overflow"
        );
        count.set(3);
        assert_eq!(
            flushes(&[1], 16),
            [false],
            "another cache's retirements count too"
        );
        assert_eq!(count.get(), 4);
    }
}
