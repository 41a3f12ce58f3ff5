//! `CacheBuilder`: every option of a [`ShardedCache`], checked once, with defaults that suit a
//! service.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use crate::budget::{Bound, Budget, DEFAULT_RETIRE_BATCH, MAX_RETIRE_BATCH};
use crate::clock::{default_clock, Clock};
use crate::sharded::{Listener, ShardedCache, Weigher};
use crate::stats::{ReadCounters, RemovalCause};
use crate::Expires;

/// The fraction of the weight budget one entry may take at most, unless set: 1/8.
const DEFAULT_MAX_ENTRY_SHARE: u64 = 8;

/// Options for a [`ShardedCache`].
///
/// ```
/// use bytes::Bytes;
/// use epochcache::ShardedCache;
///
/// let cache: ShardedCache<String, Bytes> = ShardedCache::builder()
///     .shards(8)
///     .max_entries(10_000)
///     .build();
/// assert_eq!(cache.shard_count(), 8);
/// ```
pub struct CacheBuilder<K, V, S = ahash::RandomState> {
    pub(crate) shards: Option<usize>,
    pub(crate) initial_capacity: usize,
    pub(crate) max_entries: Option<u64>,
    pub(crate) max_weight: Option<u64>,
    pub(crate) max_entry_weight: Option<u64>,
    pub(crate) weigher: Option<Weigher<K, V>>,
    /// Whether `weigher` is the engine's own (see [`engine_weigher`](Self::engine_weigher)).
    pub(crate) weigher_is_engines: bool,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) record_stats: bool,
    pub(crate) retire_batch: u32,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) hasher: S,
}

impl<K, V> CacheBuilder<K, V> {
    /// Default options: shards from the available parallelism, no bound, the system clock, a
    /// randomly seeded hasher.
    ///
    /// ```
    /// # use epochcache::{CacheBuilder, ShardedCache};
    /// let cache: ShardedCache<u64, u64> = CacheBuilder::new().build();
    /// assert!(cache.is_empty());
    /// ```
    pub fn new() -> Self {
        CacheBuilder {
            shards: None,
            initial_capacity: 0,
            max_entries: None,
            max_weight: None,
            max_entry_weight: None,
            weigher: None,
            weigher_is_engines: false,
            listener: None,
            record_stats: false,
            retire_batch: DEFAULT_RETIRE_BATCH,
            time_to_live: None,
            clock: None,
            hasher: ahash::RandomState::new(),
        }
    }
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> CacheBuilder<K, V, S> {
    /// The number of shards, rounded up to a power of two (1 to 4096). Default: four per
    /// available core, but for a small entry bound no more than the bound over 512, that count
    /// then rounded up like any other: a shard holds at least 256 entries of the bound
    /// (`max_entries(1536)`: 4 shards of 384).
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(3).build();
    /// assert_eq!(cache.shard_count(), 4);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Room for this many entries before the first table rebuild: each shard is sized for its
    /// share plus three standard deviations of how keys spread over shards, so with uniform
    /// hashes a shard rebuilds early only rarely.
    ///
    /// It is a hint: capped at [`max_entries`](Self::max_entries) when that is set, and allocated
    /// when the cache is built, so a capacity larger than the memory the system can give fails
    /// as any allocation does (the process aborts), never on arithmetic overflow.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().initial_capacity(1000).build();
    /// # drop(cache);
    /// ```
    pub fn initial_capacity(mut self, entries: usize) -> Self {
        self.initial_capacity = entries;
        self
    }

    /// Bounds the number of entries; the cache evicts to stay within it. A bound of 0 holds
    /// nothing: every write is refused with [`CacheError::TooLarge`](crate::CacheError::TooLarge)
    /// with `max: 0` (moka would accept it and keep nothing), but for a write whose expiry has
    /// already passed, which stores nothing and so succeeds.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(2).build();
    /// for i in 0..10 { cache.insert(i, i).unwrap(); }
    /// assert!(cache.len() <= 2);
    /// ```
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = Some(entries);
        self
    }

    /// Bounds the total weight (see [`weigher`](Self::weigher)); the cache evicts to stay within
    /// it. An entry heavier than the bound, or than [`max_entry_weight`](Self::max_entry_weight)
    /// (an eighth of the bound unless set), is refused with
    /// [`CacheError::TooLarge`](crate::CacheError::TooLarge), so a small bound refuses most
    /// writes.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, Vec<u8>> = ShardedCache::builder()
    ///     .max_weight(1000)
    ///     .weigher(|_k, v: &Vec<u8>| v.len() as u64)
    ///     .build();
    /// for i in 0..100 { cache.insert(i, vec![0; 100]).unwrap(); }
    /// assert!(cache.weight() <= 1000);
    /// ```
    pub fn max_weight(mut self, weight: u64) -> Self {
        self.max_weight = Some(weight);
        self
    }

    /// The largest weight of one entry; heavier ones are refused with
    /// [`CacheError::TooLarge`](crate::CacheError::TooLarge). Default: 1/8 of the weight
    /// budget, or no limit without one.
    ///
    /// ```
    /// # use epochcache::{CacheError, ShardedCache};
    /// let cache: ShardedCache<u64, Vec<u8>> = ShardedCache::builder()
    ///     .weigher(|_k, v: &Vec<u8>| v.len() as u64)
    ///     .max_entry_weight(10)
    ///     .build();
    /// assert!(matches!(cache.insert(1, vec![0; 11]), Err(CacheError::TooLarge { .. })));
    /// ```
    pub fn max_entry_weight(mut self, weight: u64) -> Self {
        self.max_entry_weight = Some(weight);
        self
    }

    /// How much an entry weighs against [`max_weight`](Self::max_weight). Default: the sizes of
    /// the key and value types plus the engine's per-entry overhead.
    ///
    /// Without a weight bound it judges only [`max_entry_weight`](Self::max_entry_weight), if
    /// set; with neither it is never called (an entry bound counts entries, not weight), and
    /// [`ShardedCache::weight`] stays 0.
    ///
    /// Under a weight bound alone (no [`max_entries`](Self::max_entries)), an entry that weighs 0
    /// holds no room, so it is never evicted for size, as in Caffeine and quick_cache: only its
    /// expiry, a removal, a replacement, `retain`, `clear` or `close` takes it out. Under an
    /// entry bound it is evicted as any other.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<String, String> = ShardedCache::builder()
    ///     .weigher(|k: &String, v: &String| (k.len() + v.len()) as u64)
    ///     .max_weight(100)
    ///     .build();
    /// cache.insert("ab".into(), "cde".into()).unwrap();
    /// assert_eq!(cache.weight(), 5);
    /// ```
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u64 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self.weigher_is_engines = false;
        self
    }

    /// A weigher written in this crate (`ByteCache`'s): it calls nothing outside the engine,
    /// never panics and never blocks, so a write may weigh under its shard's lock.
    pub(crate) fn engine_weigher(
        mut self,
        weigher: impl Fn(&K, &V) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self.weigher_is_engines = true;
        self
    }

    /// Called for every entry that leaves the cache, with the cause. It runs on the thread whose
    /// operation removed the entry, after the shard lock is released (never under a lock), so it
    /// may use the cache; keep it short, as that operation waits for it.
    ///
    /// Dropping the cache frees what it still holds without calling the listener (a drop is
    /// not a removal); [`close`](ShardedCache::close) it first to hear of every entry, as
    /// [`RemovalCause::Closed`].
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use epochcache::{RemovalCause, ShardedCache};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder()
    ///     .eviction_listener(move |k: &u64, _v: &u64, cause| log.lock().unwrap().push((*k, cause)))
    ///     .build();
    /// cache.insert(1, 1).unwrap();
    /// cache.insert(1, 2).unwrap();
    /// cache.remove(&1);
    /// assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Replaced), (1, RemovalCause::Deleted)]);
    /// ```
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Counts hits and misses in [`ShardedCache::stats`]. Off by default, as in Caffeine: it
    /// costs every read a thread-local lookup and a store to the thread's own counter line.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().record_stats().build();
    /// cache.insert(1, 1).unwrap();
    /// cache.get(&1);
    /// cache.get(&2);
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses), (1, 1));
    /// ```
    pub fn record_stats(mut self) -> Self {
        self.record_stats = true;
        self
    }

    /// How many replaced, removed or evicted entries a writing thread gathers before it hands
    /// them to the epoch collector, 1 to 64 (a value outside is taken as the nearer end).
    /// Default: 4.
    ///
    /// A collection runs up to eight of these batches of destructors at once, inside whichever
    /// operation triggers it, so small batches keep the tail short; each hand-off costs a copy of
    /// crossbeam-epoch's 2 KiB bag and a shared step, so large batches write faster on many
    /// cores. On 16 cores, 16 replaced 1.6x as fast as 4 with a get p99.9 and a set p99 two to
    /// three times as long (`BENCHMARKS.md`, "Thread scaling on 16 cores"); on 2 cores it was
    /// level over 1M keys and 10% faster over 1,000. A write-heavy cache on a large machine may
    /// want 16. A weight-bounded cache defers two functions a retirement (the entry and its
    /// weight's count), so crossbeam-epoch seals its bag by itself every 32 and a batch above 32
    /// acts as 32. The count is the thread's, across every cache it writes: each write compares
    /// it with its own cache's batch.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().retire_batch(16).build();
    /// cache.insert(1, 1).unwrap();
    /// cache.insert(1, 2).unwrap(); // the first value waits in a batch of up to 16
    /// assert_eq!(cache.get(&1), Some(2));
    /// ```
    pub fn retire_batch(mut self, entries: u32) -> Self {
        self.retire_batch = entries.clamp(1, MAX_RETIRE_BATCH);
        self
    }

    /// How long an entry written without an expiry of its own lives: Caffeine's
    /// `expireAfterWrite`, moka's `time_to_live`. It applies to `insert`, to a write with
    /// `None` for its expiry and to loaded values; an expiry given with a write wins over it,
    /// shorter or longer. Default: none (entries live until removed or evicted).
    ///
    /// There is no time-to-idle: it would make every hit write the entry's deadline, where a
    /// hit now writes at most a 4-bit counter, and only until it saturates.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use epochcache::{MockClock, ShardedCache};
    /// let clock = MockClock::new();
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .clock(Arc::new(clock.clone()))
    ///     .build();
    /// cache.insert(1, 1).unwrap();
    /// cache.insert_with_expiry(2, 2, Some(Duration::from_secs(600).into())).unwrap();
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(cache.get(&1), None);
    /// assert_eq!(cache.get(&2), Some(2));
    /// ```
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// Where expiry reads the time; a [`MockClock`](crate::MockClock) in tests.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use epochcache::{MockClock, ShardedCache};
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder()
    ///     .clock(Arc::new(MockClock::new()))
    ///     .build();
    /// # drop(cache);
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The hasher. The default is ahash seeded randomly per cache, which resists HashDoS; a fixed
    /// seed makes runs repeatable (the loom models use one). A hasher need not mix its output:
    /// the cache spreads the hashes of any hasher but ahash over all 64 bits (a multiply and two
    /// shifts) before choosing a shard, a group and a tag, so an identity hash of integer keys
    /// (as `nohash-hasher` gives) spreads them too.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64, _> = ShardedCache::builder()
    ///     .hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))
    ///     .build();
    /// cache.insert(7, 49).unwrap();
    /// assert_eq!(cache.get(&7), Some(49));
    /// ```
    pub fn hasher<S2>(self, hasher: S2) -> CacheBuilder<K, V, S2> {
        CacheBuilder {
            shards: self.shards,
            initial_capacity: self.initial_capacity,
            max_entries: self.max_entries,
            max_weight: self.max_weight,
            max_entry_weight: self.max_entry_weight,
            weigher: self.weigher,
            weigher_is_engines: self.weigher_is_engines,
            listener: self.listener,
            record_stats: self.record_stats,
            retire_batch: self.retire_batch,
            time_to_live: self.time_to_live,
            clock: self.clock,
            hasher,
        }
    }

    /// Builds the cache.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().build();
    /// cache.insert(1, 2).unwrap();
    /// assert_eq!(cache.get(&1), Some(2));
    /// ```
    pub fn build(self) -> ShardedCache<K, V, S>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        S: BuildHasher,
    {
        let shards = self
            .shards
            .unwrap_or_else(|| default_shards(self.max_entries))
            .clamp(1, 4096)
            .next_power_of_two();
        let budget = Budget {
            weight: self.max_weight.map(Bound::new),
            entries: self.max_entries.map(Bound::new),
        };
        let max_entry_weight = self.max_entry_weight.unwrap_or_else(|| {
            self.max_weight
                .map_or(u64::MAX, |w| (w / DEFAULT_MAX_ENTRY_SHARE).max(1))
        });
        let engine_weigher = self.weigher.is_none() || self.weigher_is_engines;
        let weigher = self.weigher.unwrap_or_else(|| {
            let size = (std::mem::size_of::<K>() + std::mem::size_of::<V>()) as u64;
            Arc::new(move |_: &K, _: &V| size + crate::sharded::ENTRY_OVERHEAD)
        });
        let mut cache = ShardedCache::from_parts(
            shards,
            self.initial_capacity,
            budget,
            max_entry_weight,
            weigher,
            self.clock.unwrap_or_else(default_clock),
            self.hasher,
        );
        cache.listener = self.listener;
        cache.reads = self.record_stats.then(ReadCounters::new);
        cache.retire_batch = self.retire_batch;
        cache.time_to_live = self.time_to_live.map(Expires::After);
        cache.engine_weigher = engine_weigher;
        cache
    }
}

impl<K, V, S> fmt::Debug for CacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("shards", &self.shards)
            .field("max_entries", &self.max_entries)
            .field("max_weight", &self.max_weight)
            .field("retire_batch", &self.retire_batch)
            .field("time_to_live", &self.time_to_live)
            .finish_non_exhaustive()
    }
}

/// Entries a shard should have, when the entry bound is known: each shard runs its own eviction
/// policy, and a policy with a handful of entries decides on noise. The count it gives is rounded
/// up to a power of two, so a shard gets between half this and this. Rounding it down instead
/// (a shard between this and twice this) moved rows beyond the hit-ratio table by up to 0.2
/// points either way (the 5k-key scan at 2,000 entries 31.20 to 31.05, lirs-sprite at 2,000
/// 92.86 to 93.04 and at 3,000 93.30 to 93.11), no better on the whole, so it was not taken.
const MIN_ENTRIES_PER_SHARD: u64 = 512;

/// Four shards per available core, rounded up; fewer for a small entry bound.
fn default_shards(max_entries: Option<u64>) -> usize {
    let by_cores = std::thread::available_parallelism().map_or(4, usize::from) * 4;
    match max_entries {
        Some(max) => by_cores.min(
            usize::try_from(max / MIN_ENTRIES_PER_SHARD)
                .unwrap_or(usize::MAX)
                .max(1),
        ),
        None => by_cores,
    }
}
