//! `ShardedCache`: the engine, generic over key and value.
//!
//! A cache is a power-of-two array of [`Shard`]s, a hasher, a clock and a budget. An operation
//! hashes its key once (spreading the hash over all 64 bits, by folds and a multiply, unless the
//! hasher is the default ahash, so that a weak hasher still spreads keys): the top bits choose
//! the shard, the low 32 bits the group in the shard's table and bits 32..38 the tag, so the
//! three choices are independent.
//!
//! - `get` pins the epoch once, loads the shard's table, probes, and on a hit raises the entry's
//!   access counter with a relaxed store when it is not yet at its maximum. It takes no lock and
//!   writes no line shared with other readers (the counter stops being written once an entry is
//!   hot).
//! - `insert` and `remove` pin, take their shard's lock, change the table, and release the lock
//!   before anything else: unlinked entries are retired to the epoch collector, which drops them
//!   later, outside every lock.
//! - A bounded cache reserves an entry's weight in the cache-wide [`Budget`] before linking it;
//!   when the budget is full the writer evicts (see `room`), taking one shard lock at a time
//!   and never while holding another.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::budget::{Budget, Garbage};
use crate::builder::CacheBuilder;
use crate::clock::Clock;
use crate::compute::Replacing;
use crate::equivalent::Equivalent;
use crate::expires::{deadline_of, has_passed, is_expired};
use crate::loader::Flights;
use crate::raw::{alloc_entry, alloc_entry_exempt, spread, stored_deadline, Entry, Shard};
use crate::room::{cause_met_by, drop_quietly, Panic, RoomMade};
use crate::stats::{CacheStats, ReadCounters, RemovalCause};
use crate::sync::epoch::{self, Guard};
use crate::sync::{AtomicBool, Ordering};
use crate::{CacheError, Expires};

/// The engine's own memory for one entry beyond its key and value, as the default weigher
/// counts it: the metadata word, the slot pointer and control byte at the table's typical fill,
/// and the allocator's header.
pub(crate) const ENTRY_OVERHEAD: u64 = 40;

/// How many expired entries each write removes from its shard, at most.
const SWEEP_PER_WRITE: usize = 2;

/// A conditional write that found the key's entry changed: its key and value, given back, and
/// the first panic of user code told of an eviction made for it, for the caller to resume once
/// it has tried again (see [`ShardedCache::write_if`]).
pub(crate) type Conflict<K, V> = (K, V, Option<Panic>);

/// How an entry is weighed against the budget.
pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u64 + Send + Sync>;

/// What is told of every entry that leaves the cache.
pub(crate) type Listener<K, V> = Arc<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;

/// A concurrent cache: a sharded open-addressed table with lock-free reads and epoch-based
/// reclamation.
///
/// `K` is looked up by any [`Equivalent`] form (a `&str` for `String` keys); `V` is cloned out
/// by [`get`](Self::get), or lent by [`get_with`](Self::get_with) without a clone.
///
/// ```
/// use epochcache::ShardedCache;
///
/// let cache: ShardedCache<String, u32> = ShardedCache::new();
/// cache.insert("a".to_string(), 1).unwrap();
/// assert_eq!(cache.get("a"), Some(1));
/// assert_eq!(cache.get_with("a", |v| v * 10), Some(10));
/// assert!(cache.remove("a"));
/// assert_eq!(cache.get("a"), None);
/// ```
///
/// It is not `Clone` (moka's caches are handles that clone to the same store; quick_cache's, like
/// this one, are the store): every method takes `&self`, so threads share one by reference
/// (`std::thread::scope`) or through an `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use epochcache::ShardedCache;
///
/// let cache: Arc<ShardedCache<u64, u64>> = Arc::new(ShardedCache::new());
/// let writer = Arc::clone(&cache);
/// std::thread::spawn(move || writer.insert(1, 10)).join().unwrap().unwrap();
/// assert_eq!(cache.get(&1), Some(10));
/// ```
pub struct ShardedCache<K, V, S = ahash::RandomState> {
    pub(crate) shards: Box<[Shard<K, V>]>,
    shard_shift: u32,
    hasher: S,
    /// Whether [`hash`](Self::hash) spreads the hasher's output (see [`spread`]): every hasher
    /// but the default ahash, whose hashes are already uniform in every bit.
    spread_hashes: bool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) budget: Budget,
    pub(crate) max_entry_weight: u64,
    pub(crate) weigher: Weigher<K, V>,
    closed: AtomicBool,
    /// Set by the first write given an expiry, before it reads the clock for the deadline (and
    /// never cleared): until then no operation reads the clock to judge the entries it meets
    /// (see [`now_if_expiring`](Self::now_if_expiring)), and an eviction does not look through
    /// the shards for expired entries.
    pub(crate) expiring: AtomicBool,
    pub(crate) listener: Option<Listener<K, V>>,
    /// Loads in progress (see `loader`).
    pub(crate) flights: Flights<K, V>,
    /// Weight unlinked but not yet freed by the epoch collector.
    pub(crate) garbage: Garbage,
    /// Whether the weigher is the engine's own (the default, or `ByteCache`'s), which may run
    /// under a shard lock; a caller's weigher never does.
    pub(crate) engine_weigher: bool,
    /// How many retirements a writing thread gathers before it flushes its epoch bag.
    pub(crate) retire_batch: u32,
    /// The expiry of a write that gives none (the builder's `time_to_live`).
    pub(crate) time_to_live: Option<Expires>,
    /// Hit and miss counters, when the builder asked for them.
    pub(crate) reads: Option<ReadCounters>,
}

impl<K, V> ShardedCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An unbounded cache with default options.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// assert!(cache.is_empty());
    /// ```
    pub fn new() -> Self {
        CacheBuilder::new().build()
    }

    /// A builder of options.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(100).build();
    /// # drop(cache);
    /// ```
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::new()
    }
}

impl<K, V> Default for ShardedCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> ShardedCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    pub(crate) fn from_parts(
        shards: usize,
        initial_capacity: usize,
        budget: Budget,
        max_entry_weight: u64,
        weigher: Weigher<K, V>,
        clock: Arc<dyn Clock>,
        hasher: S,
    ) -> Self {
        // A bounded cache never holds more than its entry bound, so a presize beyond it is waste.
        let entry_bound = budget.entries.as_ref().map_or(u64::MAX, |b| b.max());
        let initial_capacity =
            initial_capacity.min(usize::try_from(entry_bound).unwrap_or(usize::MAX));
        // Keys spread over shards binomially: a shard's share plus three standard deviations
        // (about the square root of the share) holds it with high probability.
        let share = initial_capacity.div_ceil(shards);
        let per_shard = if shards > 1 {
            share.saturating_add(3 * (share as f64).sqrt() as usize)
        } else {
            share
        };
        let largest_stored = max_entry_weight.min(budget.largest_entry());
        ShardedCache {
            shards: (0..shards)
                .map(|_| Shard::new(per_shard, budget.is_bounded()))
                .collect(),
            shard_shift: 64 - shards.trailing_zeros(),
            spread_hashes: std::any::type_name::<S>()
                != std::any::type_name::<ahash::RandomState>(),
            hasher,
            clock,
            budget,
            max_entry_weight,
            weigher,
            closed: AtomicBool::new(false),
            expiring: AtomicBool::new(false),
            listener: None,
            flights: Flights::default(),
            // The heaviest entry that can be stored, not the setting, which may be far above
            // the budget (`u64::MAX` would never flush).
            garbage: Garbage::new(largest_stored),
            retire_batch: crate::budget::DEFAULT_RETIRE_BATCH,
            time_to_live: None,
            engine_weigher: false,
            reads: None,
        }
    }

    /// The hash the cache uses for `key`: the hasher's, spread over all 64 bits unless the
    /// hasher is the default ahash (a branch that always goes the same way for a cache). The
    /// shard, the home group, the tag, the policy's queues and sketch all take this value.
    #[inline]
    pub(crate) fn hash<Q: ?Sized + Hash>(&self, key: &Q) -> u64 {
        let hash = self.hasher.hash_one(key);
        if self.spread_hashes {
            spread(hash)
        } else {
            hash
        }
    }

    /// Whether this cache spreads its hasher's output before using it; for tests.
    #[doc(hidden)]
    pub fn spreads_hashes(&self) -> bool {
        self.spread_hashes
    }

    #[inline]
    pub(crate) fn shard(&self, hash: u64) -> &Shard<K, V> {
        &self.shards[self.shard_index(hash)]
    }

    /// The heaviest entry the cache could ever accept: 0 if it may hold no entry at all.
    pub(crate) fn largest_entry(&self) -> u64 {
        if !self.budget.could_ever_fit(0) {
            return 0;
        }
        self.max_entry_weight.min(self.budget.largest_entry())
    }

    /// Whether an entry of `weight` is exempt from eviction for size: under a weight bound
    /// alone, an entry that weighs nothing holds no room, so evicting it would make none (as in
    /// Caffeine and quick_cache). It still expires. Under an entry bound it holds an entry's room
    /// and is evicted as any other.
    fn exempts(&self, weight: u64) -> bool {
        weight == 0 && self.budget.weight.is_some() && self.budget.entries.is_none()
    }

    #[inline]
    pub(crate) fn shard_index(&self, hash: u64) -> usize {
        // `checked_shr` gives 0 for one shard (a shift by 64).
        hash.checked_shr(self.shard_shift).unwrap_or(0) as usize
    }

    /// The number of shards.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(16).build();
    /// assert_eq!(cache.shard_count(), 16);
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// A clone of the value for `key`, or `None` if absent or expired. Takes no lock.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, String> = ShardedCache::new();
    /// cache.insert(7, "seven".into()).unwrap();
    /// assert_eq!(cache.get(&7).as_deref(), Some("seven"));
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        self.get_with(key, V::clone)
    }

    /// Calls `f` with a reference to the value for `key` and returns what it returns; the value
    /// is not cloned (a `Bytes` value's reference count is not touched). Takes no lock.
    ///
    /// `f` runs while the calling thread is pinned: keep it short, or memory that other threads
    /// retire waits for it.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, Vec<u8>> = ShardedCache::new();
    /// cache.insert(1, vec![1, 2, 3]).unwrap();
    /// assert_eq!(cache.get_with(&1, |v| v.len()), Some(3));
    /// ```
    #[inline]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        let guard = epoch::pin();
        self.get_pinned(key, f, &guard)
    }

    /// Whether `key` has a live value. Neither counted in the statistics nor recorded as a read
    /// by the eviction policy, as moka's `contains_key` is not. Takes no lock.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 1).unwrap();
    /// assert!(cache.contains_key(&1));
    /// assert!(!cache.contains_key(&2));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        let guard = epoch::pin();
        self.live_entry(key, &guard).is_some()
    }

    /// As [`get`](Self::get), but neither counted in the statistics nor recorded as a read by
    /// the eviction policy (quick_cache's `peek`): a look that should not keep the entry
    /// cached, such as a debugging or admin read. The loader's second look uses it too.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().record_stats().build();
    /// cache.insert(1, 10).unwrap();
    /// assert_eq!(cache.peek(&1), Some(10));
    /// assert_eq!(cache.peek(&2), None);
    /// assert_eq!((cache.stats().hits, cache.stats().misses), (0, 0));
    /// ```
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        let guard = epoch::pin();
        self.live_entry(key, &guard)
            .map(|entry| entry.value.clone())
    }

    /// The entry for `key` unless it has expired: the lookup every read makes.
    #[inline]
    fn live_entry<'g, Q>(&self, key: &Q, guard: &'g Guard) -> Option<&'g Entry<K, V>>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        let hash = self.hash(key);
        self.shard(hash)
            .get(hash, |k| key.equivalent(k), guard)
            .filter(|entry| !entry.is_expired(|| self.clock.now_nanos()))
    }

    #[inline]
    pub(crate) fn get_pinned<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&V) -> R,
        guard: &Guard,
    ) -> Option<R>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        let live = self.live_entry(key, guard);
        if let Some(reads) = &self.reads {
            reads.record(live.is_some());
        }
        let entry = live?;
        entry.record_hit();
        Some(f(&entry.value))
    }

    /// Stores `value` under `key` with no expiry (or the builder's
    /// [`time_to_live`](CacheBuilder::time_to_live)), replacing any older value.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 1).unwrap();
    /// cache.insert(1, 2).unwrap();
    /// assert_eq!(cache.get(&1), Some(2));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Result<(), CacheError> {
        self.insert_with_expiry(key, value, None)
    }

    /// Stores `value` under `key` until `expires` (`None`: no expiry, or the builder's
    /// [`time_to_live`](CacheBuilder::time_to_live)), replacing any older value.
    ///
    /// Fails with [`CacheError::TooLarge`] if the entry weighs more than one entry may (the old
    /// value stays), with [`CacheError::NoRoom`] in the rare case that nothing could be evicted
    /// for it for a long while (the old value stays), and with [`CacheError::Closed`] after
    /// [`close`](Self::close). A value whose expiry has already passed is never stored, so it
    /// needs no room and is never refused: the write succeeds and removes the key's old value,
    /// as storing it and then sweeping it would.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use epochcache::{MockClock, ShardedCache};
    /// let clock = MockClock::new();
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().clock(Arc::new(clock.clone())).build();
    /// cache.insert_with_expiry(1, 1, Some(Duration::from_secs(5).into())).unwrap();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn insert_with_expiry(
        &self,
        key: K,
        value: V,
        expires: Option<Expires>,
    ) -> Result<(), CacheError> {
        let hash = self.hash(&key);
        let written = self.write_if(hash, key, value, expires, Replacing::Any)?;
        debug_assert!(written.is_ok(), "an unconditional write never conflicts");
        Ok(())
    }

    /// Writes `value` under `key` (whose hash is `hash`) as
    /// [`insert_with_expiry`](Self::insert_with_expiry) does, if the key's entry under its
    /// shard's lock is the one `replacing` names; otherwise changes nothing, evicts nothing for
    /// it (see [`lock_with_room`](Self::lock_with_room)), and gives the key and value back
    /// (`Ok(Err(..))`) for the caller to try again, with the panic of user code told of an
    /// eviction made for it meanwhile, if any, for the caller to resume once it is done (see
    /// [`Conflict`]). Every write goes through here;
    /// [`compute`](Self::compute) passes the entry it read, and the hash it read it with, so
    /// that a key whose `Hash` is not stable cannot make it look in one place and check in
    /// another for ever.
    pub(crate) fn write_if(
        &self,
        hash: u64,
        key: K,
        value: V,
        expires: Option<Expires>,
        replacing: Replacing,
    ) -> Result<Result<(), Conflict<K, V>>, CacheError> {
        if self.is_closed() {
            return Err(CacheError::Closed);
        }
        let expires = expires.or(self.time_to_live);
        if expires.is_some() && !self.expiring.load(Ordering::Relaxed) {
            // Marked before the clock is read for the deadline: a walk, sweep or eviction that
            // begins once the deadline has passed, so after this store, judges the entries it
            // meets by the clock, not at 0, at which this one would pass for live.
            self.expiring.store(true, Ordering::SeqCst);
        }
        let written_at = expires.map_or(0, |_| self.clock.now_nanos());
        let deadline = deadline_of(expires, written_at);
        // Judged on the deadline as the entry would keep it, rounded down to 16 ns, as well as
        // on the expiry itself: a value that no read could return is not stored,
        // so it is not weighed either: it takes no room and is never `TooLarge`.
        if has_passed(expires, written_at) || is_expired(stored_deadline(deadline), written_at) {
            let judged_at = replacing.judged_at(written_at);
            let written = self.write_expired(hash, key, value, replacing, judged_at)?;
            return Ok(written.map_err(|(key, value)| (key, value, None)));
        }
        let weight = if self.budget.weight.is_some() || self.max_entry_weight < u64::MAX {
            (self.weigher)(&key, &value)
        } else {
            0
        };
        if !self.budget.could_ever_fit(weight) || weight > self.max_entry_weight {
            // Refused before anything is touched: the old value of the key stays. The error
            // says what the entry weighs even where the budget counts only entries.
            let size = (self.weigher)(&key, &value);
            return Err(CacheError::TooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                max: usize::try_from(self.largest_entry()).unwrap_or(usize::MAX),
            });
        }
        let guard = epoch::pin();
        let shard = self.shard(hash);
        // A write given an expiry has read the clock already.
        let now = if expires.is_some() {
            written_at
        } else {
            self.now_if_expiring()
        };
        // Allocated before the lock, and the lock taken after reading the group to probe: the
        // lock is held for the table update, not for the allocator or a cache miss.
        let entry = Entry::new(key, value, deadline, 0);
        let entry = if self.exempts(weight) {
            alloc_entry_exempt(entry)
        } else {
            alloc_entry(entry)
        };
        // Entries evicted under the lock to make room (settled there, finished after it), and a
        // panic of user code told of evictions made with the lock released (resumed below).
        let mut made = RoomMade::default();
        // A key's `Hash` that panics in the eviction (after which the lock is released and the
        // panic resumed) leaves the entry to drop here, where a second panic in its `Drop`
        // must not abort the process either.
        let locked = panic::catch_unwind(AssertUnwindSafe(|| {
            let key = &entry.key;
            self.lock_with_room(hash, key, weight, replacing, &mut made, &guard)
        }));
        // A panic kept while room was made (a listener's, or a value's `Drop`) goes on after the
        // write's value is stored, or from the caller that tries again after a conflict; a
        // write refused or failed resumes it now.
        if !matches!(locked, Ok(Ok(_))) {
            if let Some(payload) = made.kept_panic.take() {
                drop_quietly(locked);
                drop_quietly(entry);
                panic::resume_unwind(payload);
            }
        }
        let (mut state, reserved) = match locked {
            Ok(Ok(Some(locked))) => locked,
            // The key's entry is not the one `compute` read: nothing was reserved or linked,
            // and no room made for it.
            Ok(Ok(None)) => {
                debug_assert!(made.evicted.is_empty(), "a refused write evicted nothing");
                let (key, value) = entry.into_box().into_parts();
                return Ok(Err((key, value, made.kept_panic)));
            }
            Ok(Err(error)) => return Err(error),
            Err(payload) => {
                drop_quietly(entry);
                panic::resume_unwind(payload)
            }
        };
        // Taken by the insert as it links the entry; still here if user code panics first.
        let mut entry = Some(entry);
        let hash_of = |k: &K| self.hash(k);
        // A key's `Hash` or `Eq` that panics in the insert (a rebuild rehashes every key) or
        // in the sweep fails the write, but nothing it already did is lost: the reservation is
        // given back if nothing was linked, and every removal made so far is settled and
        // finished, with the lock released.
        let inserted = panic::catch_unwind(AssertUnwindSafe(|| {
            shard.insert(&mut state, hash, &mut entry, &hash_of, &guard)
        }));
        let replaced = match inserted {
            Ok(replaced) => replaced,
            Err(payload) => {
                // The first panic goes on: one kept while room was made came before this one.
                let payload = match made.kept_panic.take() {
                    Some(first) => {
                        drop_quietly(payload);
                        first
                    }
                    None => payload,
                };
                self.abandon(state, Some(&reserved), made.evicted, entry, payload, &guard)
            }
        };
        state.stats.inserts += 1;
        let judged_at = replacing.judged_at(now);
        let replaced_as = replaced.map(|old| cause_met_by(old, judged_at, RemovalCause::Replaced));
        if let Some(cause) = replaced_as {
            state.stats.count_removal(cause);
        }
        let mut expired = Vec::new();
        let swept = panic::catch_unwind(AssertUnwindSafe(|| {
            shard.sweep_expired(&mut state, SWEEP_PER_WRITE, now, &hash_of, &guard, |e| {
                expired.push((e, RemovalCause::Expired))
            })
        }));
        state
            .stats
            .count_removals(RemovalCause::Expired, expired.len());
        drop(state);
        let settled_replaced =
            replaced.and_then(|old| self.settle_replaced(old, &reserved, weight, &guard));
        let settled_expired = self.settle(expired.iter().copied(), &guard);
        let removed = replaced.zip(replaced_as);
        // A panic kept while room was made, or one of the sweep's `Hash` or of the weigher,
        // goes on once the listener was told.
        let RoomMade {
            evicted,
            kept_panic,
        } = made;
        let first_panic = kept_panic
            .or(swept.err())
            .or(settled_replaced)
            .or(settled_expired);
        self.finish(
            usize::from(replaced.is_some()) + expired.len() + evicted.len(),
            evicted.into_iter().chain(removed).chain(expired),
            first_panic,
            &guard,
        );
        drop(guard);
        self.garbage.wait_for_collector();
        Ok(Ok(()))
    }

    /// Removes the value for `key`; returns whether there was one (expired ones count, and the
    /// listener hears of them as [`RemovalCause::Expired`], as a write that meets one does).
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 1).unwrap();
    /// assert!(cache.remove(&1));
    /// assert!(!cache.remove(&1));
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        let hash = self.hash(key);
        let guard = epoch::pin();
        let shard = self.shard(hash);
        let now = self.now_if_expiring();
        let mut state = shard.lock_for(hash, &guard);
        let removed = shard.remove(&mut state, hash, |k| key.equivalent(k), &guard);
        // An expired value goes as expired (as moka and Caffeine report it), a live one as
        // deleted.
        let removed = removed.map(|old| (old, cause_met_by(old, now, RemovalCause::Deleted)));
        if let Some((_, cause)) = removed {
            state.stats.count_removal(cause);
        }
        drop(state);
        removed
            .map(|(old, cause)| self.release_entry(old, cause, &guard))
            .is_some()
    }

    /// The time an operation judges the entries it meets by (a write or removal before it
    /// locks, a walk as it reaches a shard, an eviction looking for expired entries): the
    /// clock's reading once the cache has been given an expiry, else 0, by which nothing has
    /// expired, and no clock (user code) is read. A write given an expiry sets `expiring` before
    /// it reads the clock for its deadline, so an entry whose deadline passed before an
    /// operation began was written by a write that set the flag before that operation looked.
    /// A walk reads it as it reaches each shard (an iterator may be held a long time before it
    /// is drained); at 0 it reads no entry's metadata word, so a walk over a large table of a
    /// cache that never expires reads only what its caller reads of each entry.
    pub(crate) fn now_if_expiring(&self) -> u64 {
        if self.expiring.load(Ordering::SeqCst) {
            self.clock.now_nanos()
        } else {
            0
        }
    }

    /// Removes every entry and refuses every later write with [`CacheError::Closed`]; reads
    /// return `None`. Closing twice is fine. Every entry is told to the listener as
    /// [`RemovalCause::Closed`], expired ones included. The values are dropped before `close`
    /// returns, unless a thread stays pinned meanwhile (another thread's read in progress or
    /// [`Pinned`](crate::Pinned) handle, or the caller's own: `close` called from a listener, a `get_with`
    /// closure or a value's `Drop`): then the epoch collector drops them later, as it runs.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 1).unwrap();
    /// cache.close();
    /// assert_eq!(cache.get(&1), None);
    /// assert!(cache.insert(2, 2).is_err());
    /// ```
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.clear_every_shard(RemovalCause::Closed);
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// assert!(!cache.is_closed());
    /// ```
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// The number of entries, expired ones not yet removed included. Shards are counted one at
    /// a time, so under concurrent writes this is approximate.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 1).unwrap();
    /// assert_eq!(cache.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| Shard::<K, V>::live(&s.lock()))
            .sum()
    }

    /// Whether the cache holds no entry.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// assert!(ShardedCache::<u64, u64>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The total weight of the entries. Without a weight bound the weight is not counted and
    /// this returns 0.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_weight(1 << 20).build();
    /// cache.insert(1, 1).unwrap();
    /// assert!(cache.weight() > 0);
    /// ```
    pub fn weight(&self) -> u64 {
        self.budget.weight.as_ref().map_or(0, |b| b.used())
    }

    /// The weight bound, if any.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_weight(100).build();
    /// assert_eq!(cache.max_weight(), Some(100));
    /// ```
    pub fn max_weight(&self) -> Option<u64> {
        self.budget.weight.as_ref().map(|b| b.max())
    }

    /// The entry bound, if any (quick_cache's `capacity`, moka's `policy().max_capacity()`).
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(100).build();
    /// assert_eq!(cache.max_entries(), Some(100));
    /// ```
    pub fn max_entries(&self) -> Option<u64> {
        self.budget.entries.as_ref().map(|b| b.max())
    }

    /// What the cache did since it was built, summed over the shards (one lock at a time, so
    /// approximate under concurrent writes).
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 1).unwrap();
    /// cache.insert(1, 2).unwrap();
    /// cache.remove(&1);
    /// let stats = cache.stats();
    /// assert_eq!((stats.inserts, stats.replaced, stats.deleted), (2, 1, 1));
    /// ```
    pub fn stats(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for shard in self.shards.iter() {
            let state = shard.lock();
            let mut stats = state.stats;
            stats.entries = Shard::<K, V>::live(&state) as u64;
            total += stats;
        }
        total.weight = self.weight();
        total.garbage_weight = self.garbage.weight();
        if let Some(reads) = &self.reads {
            (total.hits, total.misses) = reads.totals();
        }
        total
    }

    /// Checks every internal invariant of every shard (counts, tags, reachability, fill); for
    /// tests. Takes each shard's lock in turn.
    #[doc(hidden)]
    pub fn validate(&self) -> Result<(), String>
    where
        K: fmt::Debug,
    {
        let hash_of = |k: &K| self.hash(k);
        for (i, shard) in self.shards.iter().enumerate() {
            shard
                .validate(&hash_of)
                .map_err(|e| format!("shard {i}: {e}"))?;
        }
        if let Some(entries) = &self.budget.entries {
            let (used, len) = (entries.used(), self.len() as u64);
            if used != len {
                return Err(format!("{used} entries reserved, {len} linked"));
            }
        }
        Ok(())
    }
}

impl<K, V, S> fmt::Debug for ShardedCache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedCache")
            .field("shards", &self.shards.len())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}
