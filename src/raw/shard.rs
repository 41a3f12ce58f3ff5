//! One shard: a table pointer that readers load without a lock, and a lock that writers take.
//!
//! The shard owns the entries its current table points at. Every change goes through the
//! shard's lock, so writers of one shard are serialised and the table code needs no
//! read-modify-write on control words. Readers never take the lock: they pin an epoch, load the
//! table pointer and read (see [`table`](super::table)).
//!
//! # Retirement
//!
//! An entry leaves the table in one of three ways (replaced, removed, evicted); each time it is
//! unlinked under the lock and handed to `Guard::defer_destroy`, never freed in place. A resize
//! builds a new table pointing at the same entries, publishes it, and retires the old table
//! (whose drop frees only its arrays). A reader pinned before a retirement keeps what it loaded
//! until it unpins. Deferred destructors run when the epoch collector runs, which happens when a
//! thread pins from unpinned or flushes; the engine pins before it locks and never flushes under
//! a lock, so no value's `Drop` runs while a shard lock is held.
//!
//! # Growth and tombstones
//!
//! A deleted slot becomes empty again if its group still has an empty slot (no probe goes past
//! such a group, see `Table::vacate`), else a tombstone, so that probes pass over it. When live
//! entries plus tombstones would exceed 7/8 of the slots, the writer rebuilds the table: half as
//! large again if the live entries alone fill more than two thirds of that limit, else the same
//! size, which clears every tombstone. Tombstones therefore never make up more than 7/8 of a
//! table, and a table that grew is at least 58% full.

use std::fmt;

use crossbeam_utils::CachePadded;

use super::entry::Entry;
use super::expiry::ExpiryOrder;
use super::policy::{Policy, Verdict};
use super::table::{is_exempt, is_new_exempt, Linked, NewEntry, Probe, SlotRef, Table};
use super::tag::{self, Tag, GROUP_SLOTS};
use crate::stats::CacheStats;
use crate::sync::epoch::{Atomic, Guard, Owned, Shared};
use crate::sync::{lock, AtomicU64, Mutex, MutexGuard, Ordering};

/// What [`Shard::insert`] says if it were given nothing to insert: a caller's bug.
const NO_ENTRY: &str = "Shard::insert is given an entry to link";

/// What a writer keeps about a shard, under the shard's lock.
#[derive(Debug, Default)]
pub(crate) struct ShardState {
    /// Linked entries.
    live: usize,
    /// Linked entries whose pointer carries the EXEMPT bit.
    exempt: usize,
    /// Tombstone slots in the current table.
    tombstones: usize,
    /// Linked entries that have a deadline.
    with_deadline: usize,
    /// The deadlines of those entries, earliest first.
    expiry: ExpiryOrder,
    /// What the writers of this shard did; kept here so that counting needs no atomic.
    pub(crate) stats: CacheStats,
    /// The eviction policy's queues; only bounded caches keep them.
    policy: Option<Policy>,
}

/// A shard of the cache.
pub(crate) struct Shard<K, V> {
    table: CachePadded<Atomic<Table<K, V>>>,
    state: CachePadded<Mutex<ShardState>>,
    /// The earliest deadline in the shard's expiry order (`u64::MAX` if none), written under the
    /// lock and read without it, so that a writer that needs room finds the shards that hold
    /// expired entries without locking each one.
    earliest: CachePadded<AtomicU64>,
}

/// A walk over the live entries of a run of shards, read without their locks: each shard's
/// table is loaded when the walk reaches it, and `now_at_shard` then gives the time its entries
/// are judged expired at (0: none is). One plain loop rather than an adapter chain over the
/// shards, since a walk over a large cache waits on each entry it yields, and the fewer
/// instructions between two entries, the more of those misses the processor overlaps.
pub(crate) struct Walk<'g, K, V, F> {
    shards: std::slice::Iter<'g, Shard<K, V>>,
    entries: Option<Linked<'g, K, V>>,
    now: u64,
    now_at_shard: F,
    guard: &'g Guard,
}

impl<'g, K, V, F: FnMut() -> u64> Walk<'g, K, V, F> {
    /// A walk over `shards` under `guard`.
    pub(crate) fn new(shards: &'g [Shard<K, V>], now_at_shard: F, guard: &'g Guard) -> Self {
        Walk {
            shards: shards.iter(),
            entries: None,
            now: 0,
            now_at_shard,
            guard,
        }
    }
}

impl<'g, K: 'g, V: 'g, F: FnMut() -> u64> Iterator for Walk<'g, K, V, F> {
    type Item = &'g Entry<K, V>;

    #[inline]
    fn next(&mut self) -> Option<&'g Entry<K, V>> {
        loop {
            if let Some(entries) = &mut self.entries {
                let now = self.now;
                // At 0 nothing is expired, and the entry's metadata word is not read.
                if let Some(entry) = entries.find(|e| now == 0 || !e.is_expired(|| now)) {
                    return Some(entry);
                }
            }
            let shard = self.shards.next()?;
            self.now = (self.now_at_shard)();
            self.entries = Some(shard.linked(self.guard));
        }
    }
}

/// A panic a value's `Drop` raised, caught.
type Caught = std::cell::RefCell<Option<Box<dyn std::any::Any + Send>>>;

// The first panic of a retired entry's `Drop` that this thread's collections caught, not yet
// resumed (see [`retire_entry`]). loom's model threads share one OS thread, so under loom the
// slot is loom's thread-local: a panic caught in one model thread must not surface in another.
#[cfg(not(epochcache_loom))]
std::thread_local! {
    static DROP_PANIC: Caught = const { std::cell::RefCell::new(None) };
}
#[cfg(epochcache_loom)]
loom::thread_local! {
    static DROP_PANIC: Caught = std::cell::RefCell::new(None);
}

/// Retires an unlinked entry: the collector frees it once no pinned reader can hold it. Its
/// key's or value's `Drop` is user code and may panic there, inside crossbeam-epoch's bag: a
/// panic unwinding out of the bag would skip every function deferred after it (other entries,
/// never dropped, and the garbage count's decrements, lost for good). So the panic is caught
/// and kept, for the thread's next write that removes an entry to resume ([`take_drop_panic`]).
///
/// # Safety
///
/// As for `Guard::defer_destroy`: `entry` is unlinked, unreachable by threads pinned later, and
/// retired once.
pub(crate) unsafe fn retire_entry<K, V>(guard: &Guard, entry: Shared<'_, Entry<K, V>>) {
    // SAFETY: the caller's promise, as for `defer_destroy`, which this mirrors.
    unsafe {
        guard.defer_unchecked(move || {
            let owned = entry.into_owned();
            let dropped =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(owned)));
            if let Err(payload) = dropped {
                let _ = DROP_PANIC.try_with(|slot| {
                    slot.borrow_mut().get_or_insert(payload);
                });
            }
        })
    }
}

/// The panic a retired entry's `Drop` raised in this thread's collections, if any (see
/// [`retire_entry`]).
pub(crate) fn take_drop_panic() -> Option<Box<dyn std::any::Any + Send>> {
    DROP_PANIC
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
}

/// What [`Shard::clear`] starts a shard over with, allocated before the shard's lock is taken.
pub(crate) struct FreshParts<K, V> {
    table: Owned<Table<K, V>>,
    policy: Policy,
    expiry: ExpiryOrder,
}

impl<K, V> FreshParts<K, V> {
    /// The smallest table, an empty policy (used only by a bounded shard) and expiry order.
    pub(crate) fn new() -> Self {
        FreshParts {
            table: Owned::new(Table::with_groups(1)),
            policy: Policy::default(),
            expiry: ExpiryOrder::default(),
        }
    }
}

/// What [`Shard::clear`] replaced, dropped by its owner once the shard's lock is released.
pub(crate) struct StaleParts {
    _policy: Policy,
    _expiry: ExpiryOrder,
}

/// An entry that left a shard: still readable until the guard it was returned under is dropped.
pub(crate) type Unlinked<'g, K, V> = &'g Entry<K, V>;

/// The fewest groups in which `entries` fill at most 7/8 of the slots.
fn groups_for(entries: usize) -> usize {
    // At most as many groups as an allocation can count (`isize::MAX` bytes): a larger request
    // then fails as any allocation the system cannot serve does, not on arithmetic overflow.
    let most = isize::MAX as usize / std::mem::size_of::<super::table::Group<(), ()>>();
    entries
        .saturating_mul(8)
        .div_ceil(7 * GROUP_SLOTS)
        .clamp(1, most)
}

impl<K, V> Shard<K, V> {
    /// An empty shard sized for `capacity` entries; `bounded` shards keep eviction queues.
    pub(crate) fn new(capacity: usize, bounded: bool) -> Self {
        let state = ShardState {
            policy: bounded.then(Policy::default),
            ..ShardState::default()
        };
        Shard {
            table: CachePadded::new(Atomic::new(Table::with_groups(groups_for(capacity)))),
            state: CachePadded::new(Mutex::new(state)),
            earliest: CachePadded::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// The current table.
    #[inline]
    fn table<'g>(&self, guard: &'g Guard) -> &'g Table<K, V> {
        let table = self.table.load(Ordering::Acquire, guard);
        // SAFETY: the table pointer is never null (set in `with_capacity`, replaced only by
        // another table), and a replaced table is retired with `defer_destroy`, so it lives at
        // least as long as `guard`, which was pinned before this load.
        unsafe { table.deref() }
    }

    /// The entry for a key, if any: takes no lock.
    #[inline]
    pub(crate) fn get<'g>(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g Entry<K, V>> {
        self.table(guard).find(hash, eq, guard)
    }

    /// Every entry of the current table, read without the lock (see [`Table::linked`]).
    pub(crate) fn linked<'g>(&'g self, guard: &'g Guard) -> Linked<'g, K, V> {
        self.table(guard).linked(guard)
    }

    /// Takes the shard's lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ShardState> {
        lock(&self.state)
    }

    /// Takes the shard's lock for a write of `hash`, first reading the group the write will
    /// probe so that the lock is not held across that cache miss.
    pub(crate) fn lock_for(&self, hash: u64, guard: &Guard) -> MutexGuard<'_, ShardState> {
        self.table(guard).warm(hash);
        lock(&self.state)
    }

    /// Inserts or replaces the entry in `pending` (which holds one), taking it; returns the
    /// replaced entry, retired. The entry comes allocated (see
    /// [`alloc_entry`](super::table::alloc_entry)), so that no allocation happens under the lock.
    ///
    /// A key's `Eq` that panics in a probe, or its `Hash` in a rebuild, unwinds with the entry
    /// still in `pending`: it is not linked anywhere, and the caller drops it (its key and value
    /// are user code) once the lock is released, rather than leaking it.
    ///
    /// `hash_of` recomputes the hash of a key already in the table when the table is rebuilt.
    pub(crate) fn insert<'g>(
        &self,
        state: &mut ShardState,
        hash: u64,
        pending: &mut Option<NewEntry<K, V>>,
        hash_of: &dyn Fn(&K) -> u64,
        guard: &'g Guard,
    ) -> Option<Unlinked<'g, K, V>>
    where
        K: Eq,
    {
        // First, while nothing of this write is linked: `compact` runs keys' `Hash`, and a
        // panic there must leave the write failed, not half done.
        self.compact_policy_if_stale(state, self.table(guard), hash_of, guard);
        let deadline = pending.as_ref().expect(NO_ENTRY).deadline();
        let has_deadline = deadline != 0;
        if has_deadline {
            state.expiry.push(deadline, hash);
            self.publish_earliest(state);
        }
        loop {
            let table = self.table(guard);
            let new = pending.as_ref().expect(NO_ENTRY);
            match table.probe_for_write(hash, |k| *k == new.key, guard) {
                Some(Probe::Found(at, old)) => {
                    // SAFETY: `old` is linked in the current table and we hold the lock.
                    let old_ref = unsafe { old.deref() };
                    new.set_freq(old_ref.freq());
                    state.exempt += usize::from(is_new_exempt(new));
                    state.exempt -= usize::from(is_exempt(old));
                    if is_exempt(old) && !is_new_exempt(new) {
                        // The policy dropped the key's hash when it met the exempt entry (or
                        // never had it): the key is evictable again, so it is queued anew.
                        let evictable = Self::evictable(state);
                        if let Some(policy) = &mut state.policy {
                            policy.admit(hash, evictable);
                        }
                    }
                    // The entry leaves `pending` only here and below, as it is linked.
                    let linked = pending.take().expect(NO_ENTRY).into_shared(guard);
                    table.replace(at, linked, guard);
                    state.with_deadline += usize::from(has_deadline);
                    state.with_deadline -= usize::from(old_ref.deadline() != 0);
                    // SAFETY: `old` was just unlinked from the current table (older tables were
                    // retired before it and readers of them are pinned), so retiring it once is
                    // sound.
                    unsafe { retire_entry(guard, old) };
                    return Some(old_ref);
                }
                Some(Probe::Vacant(at, was)) if !self.must_rebuild(state, table, was) => {
                    let exempt = is_new_exempt(new);
                    let linked = pending.take().expect(NO_ENTRY).into_shared(guard);
                    table.occupy(at, hash, linked);
                    let evictable = Self::evictable(state);
                    match &mut state.policy {
                        // An exempt entry is never a victim for size: not queued.
                        Some(policy) if !exempt => policy.admit(hash, evictable),
                        _ => {}
                    }
                    state.live += 1;
                    state.exempt += usize::from(exempt);
                    state.tombstones -= usize::from(was == Tag::TOMBSTONE);
                    state.with_deadline += usize::from(has_deadline);
                    return None;
                }
                _ => self.rebuild(state, hash_of, guard),
            }
        }
    }

    /// Drops the eviction queues' stale hashes once they hold twice as many as the shard has
    /// evictable entries (and 64 more): every new key queues its hash, and only the evictor
    /// pops them, so a bounded shard that removes or expires what it inserts, and never has to
    /// evict, would otherwise queue a hash a key for good. Amortised O(1) a write.
    fn compact_policy_if_stale(
        &self,
        state: &mut ShardState,
        table: &Table<K, V>,
        hash_of: &dyn Fn(&K) -> u64,
        guard: &Guard,
    ) {
        let evictable = Self::evictable(state);
        if let Some(policy) = &mut state.policy {
            if policy.queued() > 2 * evictable + 64 {
                policy.compact(table, hash_of, guard);
            }
        }
    }

    /// Whether taking one more slot (empty, or a tombstone) would fill the table past 7/8.
    fn must_rebuild(&self, state: &ShardState, table: &Table<K, V>, taking: Tag) -> bool {
        let used_after = state.live + 1 + state.tombstones - usize::from(taking == Tag::TOMBSTONE);
        used_after * 8 > table.slots() * 7
    }

    /// Rebuilds the table without tombstones, growing it by half when the live entries need it,
    /// and publishes it; readers of the old table go on reading it until they unpin.
    #[cold] // once per growth, or once per 7/8 of a table in tombstones
    fn rebuild(&self, state: &mut ShardState, hash_of: &dyn Fn(&K) -> u64, guard: &Guard) {
        let old = self.table.load(Ordering::Relaxed, guard);
        // SAFETY: we hold the lock, so `old` is the current table and stays linked until the
        // store below; it is never null.
        let old_ref = unsafe { old.deref() };
        // Grow by half when the live entries alone fill 2/3 of the 7/8 limit; else keep the size,
        // which clears the tombstones. Either way the table is at most 7/12 (58%) full
        // afterwards, so at least 7/24 of its slots take inserts and tombstones before the next
        // rebuild: amortised O(1) a write, and a grown table is never below 58% full.
        let old_groups = old_ref.group_count();
        let groups = if (state.live + 1) * 12 > old_ref.slots() * 7 {
            groups_for((state.live + 1) * 3 / 2).max(old_groups + 1)
        } else {
            old_groups
        };
        let new = Table::with_groups(groups);
        for entry in old_ref.occupied(guard) {
            // SAFETY: every entry linked in the current table is alive while we hold the lock.
            let key = unsafe { &entry.deref().key };
            new.place_unpublished(hash_of(key), entry);
        }
        self.table.store(Owned::new(new), Ordering::Release);
        state.tombstones = 0;
        // SAFETY: the old table is no longer reachable from the shard; pinned readers may still
        // read it, so it is retired, not freed. Its drop frees only its arrays: the entries moved
        // to the new table.
        unsafe { guard.defer_destroy(old) };
    }

    /// Removes the entry for a key; returns it, retired.
    pub(crate) fn remove<'g>(
        &self,
        state: &mut ShardState,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        guard: &'g Guard,
    ) -> Option<Unlinked<'g, K, V>> {
        let table = self.table(guard);
        match table.probe_for_write(hash, eq, guard)? {
            Probe::Found(at, _) => Some(self.unlink(state, table, at, guard)),
            Probe::Vacant(..) => None,
        }
    }

    /// Removes `target`, an entry read under `guard` whose key hashes to `hash`, if it is still
    /// linked in the current table; returns it, retired. It is found by address, not by key, so
    /// no key's `Eq` runs under the lock, and an entry replaced or removed since it was read is
    /// left alone (`guard` keeps its address from being reused meanwhile).
    pub(crate) fn remove_entry<'g>(
        &self,
        state: &mut ShardState,
        hash: u64,
        target: &'g Entry<K, V>,
        guard: &'g Guard,
    ) -> Option<Unlinked<'g, K, V>> {
        let table = self.table(guard);
        let at = table.slot_of(hash, target, guard)?;
        Some(self.unlink(state, table, at, guard))
    }

    /// Unlinks and retires the entry of an occupied slot of the current table.
    fn unlink<'g>(
        &self,
        state: &mut ShardState,
        table: &Table<K, V>,
        at: SlotRef,
        guard: &'g Guard,
    ) -> Unlinked<'g, K, V> {
        let (old, freed) = table.vacate(at, guard);
        // SAFETY: the slot was occupied (the caller found it under the lock), so `old` is a
        // live entry, and it has just been unlinked from the current table.
        let old_ref = unsafe { old.deref() };
        state.live -= 1;
        state.exempt -= usize::from(is_exempt(old));
        state.tombstones += usize::from(freed == Tag::TOMBSTONE);
        state.with_deadline -= usize::from(old_ref.deadline() != 0);
        // SAFETY: unlinked just above, retired once.
        unsafe { retire_entry(guard, old) };
        old_ref
    }

    /// Unlinks the entry the eviction policy picks, after at most `max_steps` steps of it;
    /// `None` if the shard keeps no policy (unbounded) or found no victim in that many steps.
    ///
    /// `keep` is the address of an entry that must not be evicted (the one a replacement is
    /// taking over, which would otherwise make room it never needed by evicting its own key);
    /// the policy is asked again if it picks that one, and the shard gives up if it picks it
    /// twice.
    pub(crate) fn evict<'g>(
        &self,
        state: &mut ShardState,
        max_steps: usize,
        hash_of: &dyn Fn(&K) -> u64,
        now: u64,
        keep: Option<usize>,
        guard: &'g Guard,
    ) -> Option<(Unlinked<'g, K, V>, Verdict)> {
        let table = self.table(guard);
        // The policy sizes its queues by what it may evict: exempt entries counted there would
        // let every candidate into the main queue, and a scan flush the hot set.
        let live = Self::evictable(state);
        self.compact_policy_if_stale(state, table, hash_of, guard);
        let policy = state.policy.as_mut()?;
        let is_expired = |e: &Entry<K, V>| e.is_expired(|| now);
        for _ in 0..2 {
            let (victim, verdict) =
                policy.victim(table, live, max_steps, hash_of, &is_expired, guard)?;
            if keep == Some(victim.entry.address()) {
                // Requeued before the twin lookup below runs keys' `Hash`, so a panic there
                // loses no queued hash.
                policy.keep(victim.hash);
                // The copy popped may be a twin's (another key with the same full hash): a
                // lookup by hash finds the kept entry first every time, so the twin is taken
                // here, or it could never make room for this replacement.
                let twin = table.find_hash(
                    victim.hash,
                    hash_of,
                    |e, exempt| !exempt && keep != Some(e.address()),
                    guard,
                );
                if let Some((at, entry)) = twin {
                    let verdict = Verdict::of(is_expired(entry));
                    return Some((self.unlink(state, table, at, guard), verdict));
                }
                continue;
            }
            return Some((self.unlink(state, table, victim.at, guard), verdict));
        }
        None
    }

    /// Unlinks up to `max` entries whose deadline is at or before `now`, earliest first.
    pub(crate) fn sweep_expired<'g>(
        &self,
        state: &mut ShardState,
        max: usize,
        now: u64,
        hash_of: &dyn Fn(&K) -> u64,
        guard: &'g Guard,
        mut on_expired: impl FnMut(Unlinked<'g, K, V>),
    ) where
        K: 'g,
        V: 'g,
    {
        // Before the early return below, so that stale pairs are dropped even while nothing
        // expires: rewrites of keys with a deadline (every write, under a time to live) leave
        // one each. A rebuild walks the table, so it waits for an eighth of the table's slots'
        // worth of stale pairs too, which keeps it amortised O(1) a write however few of the
        // entries have a deadline and however empty a once-large table has become.
        let table = self.table(guard);
        if state.expiry.len() > 2 * state.with_deadline + table.slots() / 8 + 64 {
            state.expiry.rebuild(table, hash_of, guard);
            self.publish_earliest(state);
        }
        if state.expiry.earliest() > now {
            return;
        }
        // A key's `Hash` may panic in a lookup after earlier pairs were popped: the earliest
        // deadline is published on the way out all the same.
        let swept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..max {
                let Some((at, _)) = state.expiry.pop_expired(table, now, hash_of, guard) else {
                    break;
                };
                on_expired(self.unlink(state, table, at, guard));
            }
        }));
        self.publish_earliest(state);
        if let Err(payload) = swept {
            std::panic::resume_unwind(payload);
        }
    }

    /// The earliest deadline recorded in the shard, without its lock (`u64::MAX` if none).
    pub(crate) fn earliest_deadline(&self) -> u64 {
        self.earliest.load(Ordering::Relaxed)
    }

    fn publish_earliest(&self, state: &ShardState) {
        let earliest = state.expiry.earliest();
        if self.earliest.load(Ordering::Relaxed) != earliest {
            self.earliest.store(earliest, Ordering::Relaxed);
        }
    }

    /// Unlinks every entry and starts over with `fresh` parts (an empty table, policy and expiry
    /// order); calls `on_removed` for each entry. Returns the policy and expiry order replaced,
    /// for the caller to drop once the lock is released: `clear` allocates and frees nothing
    /// under the lock (the old table is retired).
    pub(crate) fn clear<'g>(
        &self,
        state: &mut ShardState,
        fresh: FreshParts<K, V>,
        guard: &'g Guard,
        mut on_removed: impl FnMut(Unlinked<'g, K, V>),
    ) -> StaleParts
    where
        K: 'g,
        V: 'g,
    {
        let old = self.table.swap(fresh.table, Ordering::AcqRel, guard);
        // SAFETY: `old` was the current table until the swap; nothing frees it before `guard`.
        let old_ref = unsafe { old.deref() };
        for entry in old_ref.occupied(guard) {
            // SAFETY: linked in the table we just unpublished, under the lock; retired once.
            on_removed(unsafe { entry.deref() });
            // SAFETY: the entry is no longer reachable from the shard.
            unsafe { retire_entry(guard, entry) };
        }
        let stale = StaleParts {
            // The policy replaced, or the fresh one itself if the shard keeps none (unbounded).
            _policy: match &mut state.policy {
                Some(policy) => std::mem::replace(policy, fresh.policy),
                None => fresh.policy,
            },
            _expiry: std::mem::replace(&mut state.expiry, fresh.expiry),
        };
        state.live = 0;
        state.exempt = 0;
        state.tombstones = 0;
        state.with_deadline = 0;
        self.publish_earliest(state);
        // SAFETY: unreachable from the shard since the swap; its drop frees only its arrays.
        unsafe { guard.defer_destroy(old) };
        stale
    }

    /// The number of linked entries (under the lock).
    pub(crate) fn live(state: &ShardState) -> usize {
        state.live
    }

    /// The number of linked entries the policy may evict for size: all but the exempt ones.
    pub(crate) fn evictable(state: &ShardState) -> usize {
        state.live - state.exempt
    }

    /// Checks every invariant of the shard; for tests. `hash_of` hashes a stored key.
    pub(crate) fn validate(&self, hash_of: &dyn Fn(&K) -> u64) -> Result<(), String>
    where
        K: Eq + fmt::Debug,
    {
        // Pinned before the lock: a pin may run a collection, and values' `Drop` must not run
        // under the lock. A key's `Debug` is user code too: a broken invariant names its key
        // only once the lock is released.
        let guard = &crate::sync::epoch::pin();
        let state = self.lock();
        let found = self.check(&state, hash_of, guard);
        drop(state);
        found.map_err(|(key, what)| match key {
            Some(key) => format!("{key:?}: {what}"),
            None => what,
        })
    }

    /// [`validate`](Self::validate)'s checks, under the lock: what is wrong, and the key it is
    /// about if any.
    fn check<'g>(
        &self,
        state: &ShardState,
        hash_of: &dyn Fn(&K) -> u64,
        guard: &'g Guard,
    ) -> Result<(), (Option<&'g K>, String)>
    where
        K: Eq + 'g,
        V: 'g,
    {
        let table = self.table(guard);
        let (mut live, mut tombstones, mut deadlines, mut empty, mut exempt) = (0, 0, 0, 0, 0);
        // How many queued copies of each hash the policy must hold: one per evictable entry.
        let mut must_queue = std::collections::HashMap::<u64, usize>::new();
        for g in 0..table.group_count() {
            let (word, ptrs) = table.group_state(g, guard);
            for (slot, ptr) in ptrs.iter().enumerate() {
                let t = tag::tag_at(word, slot);
                // SAFETY: linked in the current table, under the lock.
                match (t, unsafe { ptr.as_ref() }) {
                    (Tag::EMPTY, None) => empty += 1,
                    (Tag::TOMBSTONE, None) => tombstones += 1,
                    (t, Some(e)) if t.is_full() => {
                        live += 1;
                        deadlines += usize::from(e.deadline() != 0);
                        let hash = hash_of(&e.key);
                        if is_exempt(*ptr) {
                            exempt += 1;
                        } else {
                            *must_queue.entry(hash).or_default() += 1;
                        }
                        if e.deadline() != 0 && !state.expiry.contains(e.deadline(), hash) {
                            let what = "deadline missing from the expiry order";
                            return Err((Some(&e.key), what.to_string()));
                        }
                        if Tag::full(hash) != t {
                            return Err((Some(&e.key), format!("tag {t:?} is not its hash's")));
                        }
                        let found = table.find(hash, |k| *k == e.key, guard);
                        if !found.is_some_and(|f| std::ptr::eq(f, e)) {
                            let what = "not found by its own probe";
                            return Err((Some(&e.key), what.to_string()));
                        }
                    }
                    (t, p) => {
                        let null = p.is_none();
                        return Err((
                            None,
                            format!("group {g} slot {slot}: tag {t:?}, null pointer: {null}"),
                        ));
                    }
                }
            }
        }
        if self.earliest_deadline() != state.expiry.earliest() {
            return Err((None, "the published earliest deadline is stale".to_string()));
        }
        let counted = (
            state.live,
            state.tombstones,
            state.with_deadline,
            state.exempt,
        );
        if counted != (live, tombstones, deadlines, exempt) {
            return Err((
                None,
                format!(
                    "counted (live, tombstones, deadlines, exempt) {counted:?}, found {:?}",
                    (live, tombstones, deadlines, exempt)
                ),
            ));
        }
        if empty == 0 || (live + tombstones) * 8 > table.slots() * 7 {
            return Err((
                None,
                format!("table over-full: {live} live, {tombstones} tombstones, {empty} empty"),
            ));
        }
        if let Some(policy) = &state.policy {
            for hash in policy.queued_hashes() {
                must_queue
                    .entry(hash)
                    .and_modify(|n| *n = n.saturating_sub(1));
            }
            if let Some((hash, n)) = must_queue.iter().find(|(_, n)| **n > 0) {
                return Err((
                    None,
                    format!(
                        "{n} entries of hash {hash:#x} are in no eviction queue, never evicted"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl<K, V> Drop for Shard<K, V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach the shard, so the unprotected guard is
        // enough to take the table out.
        let guard = unsafe { crate::sync::epoch::unprotected() };
        let table = self.table.swap(Shared::null(), Ordering::Relaxed, guard);
        if table.is_null() {
            return;
        }
        // SAFETY: the shard held the only link to its current table; earlier tables and every
        // unlinked entry were retired to the collector, which frees them on its own, and no live
        // entry is linked from them alone.
        let mut table = unsafe { table.into_owned() };
        // SAFETY: as above: exclusive access, and these entries are linked nowhere else that
        // will free them.
        let first_panic = unsafe { table.drop_entries() };
        // Every entry was dropped, whatever panicked; the first panic goes on, unless this
        // drop is part of an unwinding already (the cache dropped by a panic, or another shard
        // of it that resumed its own), where a second panic would abort the process.
        if let Some(payload) = first_panic {
            if !std::thread::panicking() {
                std::panic::resume_unwind(payload);
            }
        }
    }
}

impl<K, V> fmt::Debug for Shard<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(epochcache_loom)))]
mod tests;
