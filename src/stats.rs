//! What a cache tells its user: why an entry left (`RemovalCause`, given to the eviction
//! listener) and what the cache did (`CacheStats`).
//!
//! Counters are kept per shard, under the shard's lock, by the writers that already hold it, so
//! keeping statistics costs the read path nothing and writers no extra shared line. Reads are not
//! counted: a hit or miss counter shared by readers would be a line every reader writes.

use std::ops::AddAssign;

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
    /// Its deadline passed and a write or [`purge_expired`](crate::ShardedCache::purge_expired)
    /// met it.
    Expired,
    /// The cache needed room for another entry.
    Evicted,
    /// A write of the same key replaced it.
    Replaced,
    /// It was removed or deleted.
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

/// Counts of what a cache did since it was built.
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
    /// Counts one removal.
    pub(crate) fn count_removal(&mut self, cause: RemovalCause) {
        let counter = match cause {
            RemovalCause::Expired => &mut self.expired,
            RemovalCause::Evicted => &mut self.evicted,
            RemovalCause::Replaced => &mut self.replaced,
            RemovalCause::Deleted => &mut self.deleted,
            RemovalCause::Closed => &mut self.closed,
        };
        *counter += 1;
    }
}

impl AddAssign for CacheStats {
    fn add_assign(&mut self, other: CacheStats) {
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
