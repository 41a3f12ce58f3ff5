//! What a cache tells its user: why an entry left (`RemovalCause`, given to the eviction
//! listener) and what the cache did (`CacheStats`).
//!
//! Write counters are kept per shard, under the shard's lock, by the writers that already hold
//! it, so they cost writers no extra shared line. Hits and misses are counted only when the cache
//! is built with [`record_stats`](crate::CacheBuilder::record_stats): then each thread counts in
//! one of a few cache-padded stripes with a relaxed load and store, never a read-modify-write, so
//! no reader writes a line other readers write. Threads are dealt stripes in turn, in the order
//! they first count in the process, so two live threads can share one even when there are fewer
//! threads than stripes (after other threads came and went). Two threads sharing a stripe may
//! lose an increment now and then: the counts are approximate, as read counts in a concurrent
//! cache usually are (a probe of two threads that shared one lost about 3% of a million hits).

use std::ops::AddAssign;

use crossbeam_utils::CachePadded;

use crate::sync::{thread_stripe, AtomicU64, Ordering};

/// Why an entry left the cache.
///
/// ```
/// use epochcache::RemovalCause;
/// assert!(RemovalCause::Evicted.was_evicted());
/// assert!(!RemovalCause::Replaced.was_evicted());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Its deadline passed and a write, a removal, a `clear` or
    /// [`purge_expired`](crate::ShardedCache::purge_expired) met it: an expired value that a
    /// write replaces or a `remove` takes out is reported as expired, not as replaced or
    /// deleted, as moka and Caffeine report it.
    Expired,
    /// The cache needed room for another entry.
    Evicted,
    /// A write of the same key replaced it (before it expired).
    Replaced,
    /// It was removed or deleted ([`remove`](crate::ShardedCache::remove), `delete`,
    /// [`retain`](crate::ShardedCache::retain) or [`clear`](crate::ShardedCache::clear))
    /// before it expired.
    Deleted,
    /// The cache was closed.
    Closed,
}

impl RemovalCause {
    /// Whether the cache chose to remove the entry (for room or expiry), not the user.
    ///
    /// ```
    /// # use epochcache::RemovalCause;
    /// assert!(RemovalCause::Expired.was_evicted());
    /// ```
    pub fn was_evicted(self) -> bool {
        matches!(self, RemovalCause::Expired | RemovalCause::Evicted)
    }
}

/// Counts of what a cache did since it was built. `hits` and `misses` stay 0 unless the cache
/// was built with [`record_stats`](crate::CacheBuilder::record_stats).
///
/// ```
/// use epochcache::ShardedCache;
///
/// let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(1).build();
/// cache.insert(1, 1).unwrap();
/// cache.insert(2, 2).unwrap();
/// let stats = cache.stats();
/// assert_eq!(stats.inserts, 2);
/// assert_eq!(stats.evicted, 1);
/// assert_eq!(stats.entries, 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads that found a live entry (approximate; see the module docs).
    pub hits: u64,
    /// Reads that found nothing, or an expired entry.
    pub misses: u64,
    /// Successful writes (new keys and replacements).
    pub inserts: u64,
    /// Entries replaced by a write of the same key.
    pub replaced: u64,
    /// Entries removed by the user.
    pub deleted: u64,
    /// Entries evicted for room.
    pub evicted: u64,
    /// Expired entries removed.
    pub expired: u64,
    /// Entries removed by `close`.
    pub closed: u64,
    /// Resident entries now.
    pub entries: u64,
    /// Resident weight now (0 without a weight bound).
    pub weight: u64,
    /// Weight of entries unlinked but not yet freed by the epoch collector (0 without a weight
    /// bound). It is kept small: writers flush when it passes one entry's maximum weight.
    pub garbage_weight: u64,
}

impl CacheStats {
    /// Hits over reads (`hits / (hits + misses)`), 1.0 when no read was counted, as Caffeine's
    /// `hitRate` gives it: so always 1.0 for a cache built without
    /// [`record_stats`](crate::CacheBuilder::record_stats).
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().record_stats().build();
    /// cache.insert(1, 1).unwrap();
    /// cache.get(&1);
    /// cache.get(&2);
    /// assert_eq!(cache.stats().hit_rate(), 0.5);
    /// ```
    pub fn hit_rate(&self) -> f64 {
        let reads = self.hits.saturating_add(self.misses);
        if reads == 0 {
            1.0
        } else {
            self.hits as f64 / reads as f64
        }
    }

    /// Counts one removal.
    pub(crate) fn count_removal(&mut self, cause: RemovalCause) {
        self.count_removals(cause, 1);
    }

    /// Counts `n` removals for the same cause.
    pub(crate) fn count_removals(&mut self, cause: RemovalCause, n: usize) {
        let counter = match cause {
            RemovalCause::Expired => &mut self.expired,
            RemovalCause::Evicted => &mut self.evicted,
            RemovalCause::Replaced => &mut self.replaced,
            RemovalCause::Deleted => &mut self.deleted,
            RemovalCause::Closed => &mut self.closed,
        };
        *counter += n as u64;
    }
}

impl AddAssign for CacheStats {
    fn add_assign(&mut self, other: CacheStats) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.inserts += other.inserts;
        self.replaced += other.replaced;
        self.deleted += other.deleted;
        self.evicted += other.evicted;
        self.expired += other.expired;
        self.closed += other.closed;
        self.entries += other.entries;
        self.weight += other.weight;
        self.garbage_weight += other.garbage_weight;
    }
}

/// One thread's (or a few threads') read counts, on a line of their own.
#[derive(Debug, Default)]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Hit and miss counters striped by thread.
#[derive(Debug)]
pub(crate) struct ReadCounters {
    stripes: Box<[CachePadded<Stripe>]>,
}

impl ReadCounters {
    /// Two stripes per available core, a power of two between 4 and 64.
    pub(crate) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, usize::from);
        let n = (cores * 2).clamp(4, 64).next_power_of_two();
        ReadCounters {
            stripes: (0..n)
                .map(|_| CachePadded::new(Stripe::default()))
                .collect(),
        }
    }

    /// Counts one read; a plain load and store on the thread's stripe, not a read-modify-write.
    #[inline]
    pub(crate) fn record(&self, hit: bool) {
        let stripe = &self.stripes[thread_stripe() & (self.stripes.len() - 1)];
        let counter = if hit { &stripe.hits } else { &stripe.misses };
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// The sums over all stripes: (hits, misses).
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.stripes.iter().fold((0, 0), |(h, m), s| {
            (
                h + s.hits.load(Ordering::Relaxed),
                m + s.misses.load(Ordering::Relaxed),
            )
        })
    }
}
