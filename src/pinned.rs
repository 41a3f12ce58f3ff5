//! `Pinned`: a read handle that keeps its thread pinned, so that a batch of reads pays for one
//! pin instead of one a read.
//!
//! A pin is the one fixed cost of a `get` beyond the lookup itself (see the crate's performance
//! notes); a caller that reads many keys in a row can hold one. Its reads are the cache's own
//! (`ShardedCache::get_pinned`), so they count hits and misses and raise access counters the
//! same way. The cost is the one every pin has: while the handle lives, nothing retired by any
//! thread can be freed, so it is for batches, not to keep.

use std::fmt;
use std::hash::{BuildHasher, Hash};

use crate::equivalent::Equivalent;
use crate::sharded::ShardedCache;
use crate::sync::epoch::{self, Guard};

impl<K, V, S> ShardedCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// A handle that keeps the calling thread pinned across many reads, so that a batch pays for
    /// one pin instead of one a read.
    ///
    /// While the handle lives, memory retired by any thread cannot be freed: drop it soon.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 10).unwrap();
    /// let pinned = cache.pin();
    /// let sum: u64 = (0..4).filter_map(|k| pinned.get(&k)).sum();
    /// assert_eq!(sum, 10);
    /// ```
    pub fn pin(&self) -> Pinned<'_, K, V, S> {
        Pinned {
            cache: self,
            guard: epoch::pin(),
        }
    }
}

/// A cache handle that stays pinned: reads through it share one pin. See
/// [`ShardedCache::pin`].
pub struct Pinned<'c, K, V, S = ahash::RandomState> {
    pub(crate) cache: &'c ShardedCache<K, V, S>,
    pub(crate) guard: Guard,
}

impl<K, V, S> Pinned<'_, K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// As [`ShardedCache::get`], without pinning again.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// assert_eq!(cache.pin().get(&1), None);
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        self.cache.get_pinned(key, V::clone, &self.guard)
    }

    /// As [`ShardedCache::get_with`], without pinning again.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 5).unwrap();
    /// assert_eq!(cache.pin().get_with(&1, |v| v + 1), Some(6));
    /// ```
    #[inline]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        self.cache.get_pinned(key, f, &self.guard)
    }
}

impl<K, V, S> fmt::Debug for Pinned<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned").finish_non_exhaustive()
    }
}
