//! `ByteCache`: the engine instantiated for the cache object API (`str` keys, `Bytes` values),
//! implementing [`BaseCache`] and [`SeparateBodyCache`].
//!
//! Metadata and bodies live in one [`ShardedCache`] under two namespaces: a stored key is the
//! namespace and the key's bytes, packed into the entry when short (see [`ByteKey`]), else one
//! allocation of its own. So a body is an entry of its own:
//! `set` of metadata never reads, copies or touches it, `delete` removes both, and one budget
//! bounds both. A body is returned as a [`BodyReader`] over a shared `Bytes`, so a reader keeps a
//! valid stream whatever happens to the entry while it reads.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use bytes::Bytes;

use crate::body::BodyReader;
use crate::builder::CacheBuilder;
use crate::clock::Clock;
use crate::room::keep_panic;
use crate::sharded::ShardedCache;
use crate::stats::RemovalCause;
use crate::{BaseCache, CacheError, CacheStats, Expires, SeparateBodyCache};

mod key;

use key::{body_key, meta_key, ByteKey, BODY, METADATA};
#[cfg(test)]
use key::{KeyRef, INLINE_KEY};

/// What a stored entry costs beyond its value bytes and any out-of-line key, as the budget counts
/// it: the entry (inline key words, `Bytes` handle, metadata word: 80 bytes, a 96-byte block with
/// the allocator's header), its slot and control byte at the table's typical fill (about 13 bytes),
/// rounded up to 16.
const BYTE_ENTRY_OVERHEAD: u64 = 112;

/// The engine as a [`BaseCache`] and [`SeparateBodyCache`]: `str` keys, `Bytes` values.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use epochcache::{BaseCache, ByteCache};
///
/// let cache = ByteCache::builder().max_weight(64 << 20).build();
/// cache.set("user:1", Bytes::from_static(b"ada"), Some(Duration::from_secs(60).into()))?;
/// assert_eq!(cache.get("user:1")?, Some(Bytes::from_static(b"ada")));
/// assert_eq!(cache.get_with("user:1", |v| v.len())?, Some(3));
/// # Ok::<(), epochcache::CacheError>(())
/// ```
///
/// It is not `Clone` (moka's caches are handles that clone to the same store; quick_cache's, like
/// this one, are the store): every method takes `&self`, so threads share one by reference, or
/// through an `Arc` (an `Arc<ByteCache>` is a [`BaseCache`] and a [`SeparateBodyCache`] too).
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use epochcache::{BaseCache, ByteCache};
///
/// let cache = Arc::new(ByteCache::new());
/// let writer = Arc::clone(&cache);
/// std::thread::spawn(move || writer.set("k", Bytes::from_static(b"v"), None))
///     .join()
///     .unwrap()?;
/// assert_eq!(cache.get("k")?, Some(Bytes::from_static(b"v")));
/// # Ok::<(), epochcache::CacheError>(())
/// ```
pub struct ByteCache {
    inner: ShardedCache<ByteKey, Bytes>,
}

/// Options for a [`ByteCache`].
///
/// ```
/// # use epochcache::ByteCache;
/// let cache = ByteCache::builder().shards(4).max_entries(1000).build();
/// # drop(cache);
/// ```
pub struct ByteCacheBuilder {
    inner: CacheBuilder<ByteKey, Bytes>,
}

impl ByteCacheBuilder {
    /// The number of shards (see [`CacheBuilder::shards`]).
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().shards(2).build();
    /// # drop(cache);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.inner = self.inner.shards(shards);
        self
    }

    /// Room for this many entries before the first table rebuild (see
    /// [`CacheBuilder::initial_capacity`]); metadata and bodies each count.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().initial_capacity(10_000).build();
    /// # drop(cache);
    /// ```
    pub fn initial_capacity(mut self, entries: usize) -> Self {
        self.inner = self.inner.initial_capacity(entries);
        self
    }

    /// How long metadata or a body written without an expiry of its own lives (see
    /// [`CacheBuilder::time_to_live`]); a `set` with an expiry keeps its own. A body, which never
    /// has one, then expires on its own clock: metadata set with a longer expiry outlives it.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache, MockClock};
    /// let clock = MockClock::new();
    /// let cache = ByteCache::builder()
    ///     .time_to_live(Duration::from_secs(30))
    ///     .clock(Arc::new(clock.clone()))
    ///     .build();
    /// cache.set("k", Bytes::from_static(b"v"), None)?;
    /// clock.advance(Duration::from_secs(30));
    /// assert_eq!(cache.get("k")?, None);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn time_to_live(mut self, ttl: std::time::Duration) -> Self {
        self.inner = self.inner.time_to_live(ttl);
        self
    }

    /// Bounds the total bytes: keys, values and per-entry overhead (112 bytes an entry, which
    /// covers a key of up to 39 bytes kept in the entry; a longer key, kept in an allocation of
    /// its own with the byte that tells metadata from body, counts its length plus one). A
    /// value counts its length, not the allocation it shares: a `Bytes` sliced from a larger
    /// buffer keeps that whole buffer alive, which the bound does not see. One
    /// entry may take at most an eighth of the bound unless
    /// [`max_entry_weight`](Self::max_entry_weight) says otherwise, so a bound below about
    /// 900 bytes refuses every write with [`CacheError::TooLarge`].
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().max_weight(1 << 20).build();
    /// assert_eq!(cache.max_weight(), Some(1 << 20));
    /// ```
    pub fn max_weight(mut self, bytes: u64) -> Self {
        self.inner = self.inner.max_weight(bytes);
        self
    }

    /// Bounds the number of entries (metadata and bodies each count).
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().max_entries(10).build();
    /// # drop(cache);
    /// ```
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.inner = self.inner.max_entries(entries);
        self
    }

    /// The largest entry accepted, in bytes (see [`CacheBuilder::max_entry_weight`]).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::builder().max_entry_weight(200).build();
    /// assert!(cache.set("k", Bytes::from(vec![0; 500]), None).is_err());
    /// ```
    pub fn max_entry_weight(mut self, bytes: u64) -> Self {
        self.inner = self.inner.max_entry_weight(bytes);
        self
    }

    /// Called with the key, the value and the cause for every entry that leaves the cache, after
    /// the shard lock is released (see [`CacheBuilder::eviction_listener`]). `is_body` tells a
    /// body from metadata.
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache, RemovalCause};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let cache = ByteCache::builder()
    ///     .eviction_listener(move |key: &str, _value: &Bytes, _is_body, cause| {
    ///         log.lock().unwrap().push((key.to_string(), cause))
    ///     })
    ///     .build();
    /// cache.set("k", Bytes::new(), None)?;
    /// cache.delete("k")?;
    /// assert_eq!(*seen.lock().unwrap(), [("k".to_string(), RemovalCause::Deleted)]);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&str, &Bytes, bool, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.inner = self
            .inner
            .eviction_listener(move |key: &ByteKey, value: &Bytes, cause| {
                let mut buf = [0u8; 40];
                let (namespace, bytes) = key.parts(&mut buf);
                // Keys are stored from `&str`s, so they are UTF-8.
                let key = std::str::from_utf8(bytes).unwrap_or_default();
                listener(key, value, namespace == BODY, cause);
            });
        self
    }

    /// Counts hits and misses in [`ByteCache::stats`] (see [`CacheBuilder::record_stats`]).
    /// Metadata reads (`get`) and body reads (`get_body`) are counted together.
    ///
    /// ```
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::builder().record_stats().build();
    /// cache.get("missing")?;
    /// assert_eq!(cache.stats().misses, 1);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn record_stats(mut self) -> Self {
        self.inner = self.inner.record_stats();
        self
    }

    /// How many removed entries a writing thread gathers before it hands them to the epoch
    /// collector (see [`CacheBuilder::retire_batch`]): a larger batch for write-heavy caches on
    /// many cores, at the price of a longer tail.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().retire_batch(16).build();
    /// # drop(cache);
    /// ```
    pub fn retire_batch(mut self, entries: u32) -> Self {
        self.inner = self.inner.retire_batch(entries);
        self
    }

    /// Where expiry reads the time.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use epochcache::{ByteCache, MockClock};
    /// let cache = ByteCache::builder().clock(Arc::new(MockClock::new())).build();
    /// # drop(cache);
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.inner = self.inner.clock(clock);
        self
    }

    /// Hashes with these fixed seeds instead of random ones, so that every execution of a loom
    /// model places its keys in the same slots. Only in loom builds (`--cfg epochcache_loom`):
    /// a cache seeded by its caller is open to hash flooding.
    #[cfg(epochcache_loom)]
    #[doc(hidden)]
    pub fn fixed_hash_seeds(mut self, seeds: [u64; 4]) -> Self {
        let [a, b, c, d] = seeds;
        self.inner = self
            .inner
            .hasher(ahash::RandomState::with_seeds(a, b, c, d));
        self
    }

    /// Builds the cache.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().build();
    /// assert_eq!(cache.len(), 0);
    /// ```
    pub fn build(self) -> ByteCache {
        ByteCache {
            inner: self
                .inner
                .engine_weigher(|k: &ByteKey, v: &Bytes| {
                    (k.weight() + v.len()) as u64 + BYTE_ENTRY_OVERHEAD
                })
                .build(),
        }
    }
}

/// The builder [`ByteCache::builder`] gives: no bound, the system clock.
impl Default for ByteCacheBuilder {
    fn default() -> Self {
        ByteCache::builder()
    }
}

impl fmt::Debug for ByteCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteCacheBuilder")
            .field("inner", &self.inner)
            .finish()
    }
}

impl ByteCache {
    /// An unbounded cache with default options.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// assert!(ByteCache::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder of options.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().max_weight(1 << 30).build();
    /// # drop(cache);
    /// ```
    pub fn builder() -> ByteCacheBuilder {
        ByteCacheBuilder {
            inner: CacheBuilder::new(),
        }
    }

    /// Calls `f` with the stored value for `key` without cloning it or touching its reference
    /// count. `f` runs while the thread is pinned: keep it short.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::new();
    /// cache.set("k", Bytes::from_static(b"abc"), None)?;
    /// assert_eq!(cache.get_with("k", |v| v[0])?, Some(b'a'));
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn get_with<R>(
        &self,
        key: &str,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, CacheError> {
        self.check_open()?;
        Ok(self.inner.get_with(&meta_key(key), |v| f(v)))
    }

    /// The number of stored entries (metadata and bodies each count), expired ones not yet
    /// removed included; approximate under concurrent writes.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache, SeparateBodyCache};
    /// let cache = ByteCache::new();
    /// cache.set("k", Bytes::new(), None)?;
    /// cache.set_body("k", Bytes::new())?;
    /// assert_eq!(cache.len(), 2);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether nothing is stored.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// assert!(ByteCache::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The bytes stored, as the budget counts them (0 without a weight bound).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::builder().max_weight(1 << 20).build();
    /// cache.set("k", Bytes::from(vec![0; 100]), None)?;
    /// assert!(cache.weight() >= 101);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }

    /// The weight bound, if any.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// assert_eq!(ByteCache::new().max_weight(), None);
    /// ```
    pub fn max_weight(&self) -> Option<u64> {
        self.inner.max_weight()
    }

    /// The entry bound, if any (metadata and bodies each count against it).
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// assert_eq!(ByteCache::builder().max_entries(10).build().max_entries(), Some(10));
    /// ```
    pub fn max_entries(&self) -> Option<u64> {
        self.inner.max_entries()
    }

    /// Whether `key` has live metadata (a body alone does not count), without reading it: not
    /// counted in the statistics nor recorded as a read by the eviction policy, as
    /// [`ShardedCache::contains_key`]. Fails with [`CacheError::Closed`] after `close`.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::new();
    /// cache.set("k", Bytes::from_static(b"v"), None)?;
    /// assert!(cache.contains_key("k")?);
    /// assert!(!cache.contains_key("other")?);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn contains_key(&self, key: &str) -> Result<bool, CacheError> {
        self.check_open()?;
        Ok(self.inner.contains_key(&meta_key(key)))
    }

    /// Whether [`close`](BaseCache::close) was called: every operation of [`BaseCache`] and
    /// [`SeparateBodyCache`] then fails with [`CacheError::Closed`].
    ///
    /// ```
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::new();
    /// assert!(!cache.is_closed());
    /// cache.close()?;
    /// assert!(cache.is_closed());
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The value for `key`; on a miss, the loader's value, stored with no expiry of its own (the
    /// builder's time to live, if it has one). One thread
    /// per key runs the loader when many miss at once (see
    /// [`ShardedCache::try_get_or_insert_with`]). A value too heavy to store is returned all
    /// the same, unstored.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::new();
    /// let v = cache.get_or_set_with("k", || Ok::<_, std::io::Error>(Bytes::from_static(b"loaded")))?;
    /// assert_eq!(v, Bytes::from_static(b"loaded"));
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn get_or_set_with<E>(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, CacheError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.check_open()?;
        self.inner
            .try_get_or_insert_with(ByteKey::new(METADATA, key), load)
    }

    /// What the cache did since it was built (see [`CacheStats`]).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::new();
    /// cache.set("k", Bytes::new(), None)?;
    /// assert_eq!(cache.stats().inserts, 1);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.inner.stats()
    }

    /// Removes every key's metadata and body; the cache stays open. Fails with
    /// [`CacheError::Closed`] after `close`.
    ///
    /// Bodies go first, in a sweep of every shard, then metadata, in a second: a writer that
    /// stores metadata then body (the seed's `set` then `set_body`) while it runs leaves both,
    /// or its body alone, never metadata without its body, as with [`delete`](BaseCache::delete).
    /// (A key's metadata and body live in different shards, so clearing shard by shard, as
    /// [`ShardedCache::clear`] does, could keep the one and drop the other.) Unlike that
    /// `clear`, the tables keep their size. Expired entries go too, told as
    /// [`RemovalCause::Expired`]. The values are dropped before it returns, as there.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache, SeparateBodyCache};
    /// let cache = ByteCache::new();
    /// cache.set("k", Bytes::from_static(b"meta"), None)?;
    /// cache.set_body("k", Bytes::from_static(b"body"))?;
    /// cache.clear()?;
    /// assert!(cache.is_empty());
    /// cache.set("k", Bytes::from_static(b"again"), None)?;
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn clear(&self) -> Result<(), CacheError> {
        self.check_open()?;
        // A listener's panic (the first) goes on once both sweeps and the purge are done, so
        // that it cannot leave metadata without its body.
        let (bodies, panicked) = self.inner.retain_counting(|k, _| k.namespace() != BODY);
        let (metadata, then) = self.inner.retain_counting(|k, _| k.namespace() == BODY);
        crate::sweep::free_retired(bodies + metadata);
        // The sweeps pass over expired entries (no read returns them): they go as expired.
        let purged = panic::catch_unwind(AssertUnwindSafe(|| self.inner.purge_expired()));
        if let Some(payload) = panicked.or(then).or(purged.err()) {
            panic::resume_unwind(payload);
        }
        Ok(())
    }

    /// Removes every expired entry now (see [`ShardedCache::purge_expired`]).
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// ByteCache::new().purge_expired();
    /// ```
    pub fn purge_expired(&self) {
        self.inner.purge_expired();
    }

    /// Checks every internal invariant; for tests.
    #[doc(hidden)]
    pub fn validate(&self) -> Result<(), String> {
        self.inner.validate()
    }

    #[inline(always)]
    fn check_open(&self) -> Result<(), CacheError> {
        if self.inner.is_closed() {
            return Err(CacheError::Closed);
        }
        Ok(())
    }
}

impl Default for ByteCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ByteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteCache")
            .field("inner", &self.inner)
            .finish()
    }
}

impl BaseCache for ByteCache {
    // Always inlined: called out of line, the clone was written to a temporary and copied into
    // the `Result` with wide loads that stalled on the clone's narrow stores. Inlined into a
    // caller that uses the value, a hit took 27.8 ns instead of 32.2 (scratch benchmark, three
    // alternating runs each). A caller that moves the value out of the `Result` (the benchmark's
    // `.ok().flatten()`) still copies it once, right after the clone, and stalls the same way:
    // about 5 ns of a hot hit, the gap left to `ShardedCache::get`, whose `Option` lets the
    // clone write straight into its caller's slot. Nothing here removes that copy: with the
    // lookup out of line returning an `Option`, the caller still copied it (and ran slower,
    // 25.0 against 27.6 M ops/s, nine alternating runs).
    #[inline(always)]
    fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        self.check_open()?;
        Ok(self.inner.get(&meta_key(key)))
    }

    fn set(&self, key: &str, value: Bytes, expires: Option<Expires>) -> Result<(), CacheError> {
        self.inner
            .insert_with_expiry(ByteKey::new(METADATA, key), value, expires)
    }

    fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.check_open()?;
        // Two removals, the body's first: writers store metadata then body, so a writer that
        // runs between the two leaves no metadata without its body. A listener that panics on
        // the first must not keep the second from happening, so its panic goes on after both
        // (the first of two, as everywhere in the crate).
        let mut kept = None;
        keep_panic(&mut kept, || {
            self.inner.remove(&body_key(key));
        });
        keep_panic(&mut kept, || {
            self.inner.remove(&meta_key(key));
        });
        if let Some(payload) = kept {
            panic::resume_unwind(payload);
        }
        Ok(())
    }

    fn close(&self) -> Result<(), CacheError> {
        self.inner.close();
        Ok(())
    }
}

impl SeparateBodyCache for ByteCache {
    type Body = BodyReader;

    fn set_body(&self, key: &str, body: Bytes) -> Result<(), CacheError> {
        self.inner.insert(ByteKey::new(BODY, key), body)
    }

    fn get_body(&self, key: &str) -> Result<Option<BodyReader>, CacheError> {
        self.check_open()?;
        Ok(self
            .inner
            .get_with(&body_key(key), |v| BodyReader::new(v.clone())))
    }
}

#[cfg(all(test, not(epochcache_loom)))]
mod tests;
