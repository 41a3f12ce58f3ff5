//! Operations over every entry: iteration, `retain` and `clear`.
//!
//! They are built from the two protocols the engine already has, not a third: a walk is a
//! reader (it pins, loads each shard's current table and reads its slots as `get` probes them,
//! taking no lock), and a removal is a writer (it takes one shard's lock at a time). So:
//!
//! - Iteration never blocks a writer and no writer blocks it. It walks one table per shard, so a
//!   key present for the whole walk is yielded exactly once, and one written or removed during
//!   it may be yielded or not, with its old value or its new one (weakly consistent, as
//!   `ConcurrentHashMap`'s iterators are). A key removed and written again during the walk may
//!   be yielded twice, once with each value: a write goes to the first free slot on its probe
//!   sequence, which may lie ahead of the walk. Removing such repeats would cost a set of the
//!   keys seen, and `Pinned::iter`, which lends entries lazily, could not keep one. Expired
//!   entries are skipped.
//! - `retain` runs the caller's predicate during the walk, with no lock held (it is user code),
//!   and only then takes the shard's lock to unlink what the predicate rejected. It finds those
//!   entries by address, not by key: an entry replaced meanwhile is not the one the predicate
//!   saw, so its new value stays; and the walk's pin keeps any address from being reused before
//!   the lock is taken.
//! - Each shard is walked under a pin of its own, so a long walk over a large cache holds back
//!   the epoch collector for one shard's walk at a time, not for the whole cache.
//!   [`Pinned::iter`] is the exception: it lends references, which live as long as its pin.

use std::hash::{BuildHasher, Hash};
use std::panic;

use crate::pinned::Pinned;
use crate::raw::shard::Walk;
use crate::raw::{Entry, Shard};
use crate::room::{keep_panic, Panic};
use crate::sharded::ShardedCache;
use crate::stats::RemovalCause;
use crate::sweep::free_retired;
use crate::sync::epoch::{self, Guard};

impl<K, V, S> ShardedCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Every live entry's key and value, cloned, shard by shard. Takes no lock.
    ///
    /// Weakly consistent: a key present for the whole iteration is yielded exactly once; one
    /// inserted, replaced or removed during it may be yielded or not, with either value, and one
    /// removed and written again during it may be yielded twice, once with each value. Expired
    /// entries are skipped. Each shard's entries are cloned under one short pin when the
    /// iteration reaches that shard, so holding the iterator holds back no memory reclamation.
    /// [`Pinned::iter`] lends the entries instead of cloning them.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// for k in 0..3 {
    ///     cache.insert(k, k * 10).unwrap();
    /// }
    /// let mut all: Vec<(u64, u64)> = cache.iter().collect();
    /// all.sort();
    /// assert_eq!(all, [(0, 0), (1, 10), (2, 20)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, S>
    where
        K: Clone,
    {
        Iter {
            cache: self,
            next_shard: 0,
            batch: Vec::new().into_iter(),
        }
    }

    /// Removes every entry for which `keep` returns `false`, telling the listener with
    /// [`RemovalCause::Deleted`].
    ///
    /// `keep` sees each live entry once, shard by shard, with no lock held (it may use the
    /// cache). An entry replaced or removed after `keep` saw it is left alone: the verdict was
    /// on a value the key no longer holds. Entries written during the call may or may not be
    /// seen. If `keep` panics, the panic goes on after the removals already made are settled
    /// and told; the shards not yet reached are untouched. If the listener panics, every shard
    /// is still swept, and the first such panic goes on at the end. The removed values are
    /// dropped before `retain` returns, as [`close`](Self::close)'s are, unless a thread stays
    /// pinned meanwhile.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// for k in 0..10 {
    ///     cache.insert(k, k).unwrap();
    /// }
    /// cache.retain(|_, v| v % 2 == 0);
    /// assert_eq!(cache.len(), 5);
    /// assert_eq!(cache.get(&3), None);
    /// assert_eq!(cache.get(&4), Some(4));
    /// ```
    pub fn retain(&self, keep: impl FnMut(&K, &V) -> bool) {
        let (retired, listener_panic) = self.retain_counting(keep);
        free_retired(retired);
        if let Some(payload) = listener_panic {
            panic::resume_unwind(payload);
        }
    }

    /// [`retain`](Self::retain), saying how many entries it removed, and handing back the
    /// first panic of a listener instead of resuming it (every shard is swept all the same).
    pub(crate) fn retain_counting(
        &self,
        mut keep: impl FnMut(&K, &V) -> bool,
    ) -> (usize, Option<Panic>) {
        let mut retired = 0;
        let mut first_panic = None;
        for shard in self.shards.iter() {
            let guard = epoch::pin();
            let rejected = self.walk_rejecting(shard, &mut keep, &guard);
            if rejected.is_empty() {
                continue;
            }
            let mut removed = Vec::with_capacity(rejected.len());
            let mut state = shard.lock();
            for (hash, entry) in rejected {
                if let Some(entry) = shard.remove_entry(&mut state, hash, entry, &guard) {
                    removed.push((entry, RemovalCause::Deleted));
                }
            }
            state
                .stats
                .count_removals(RemovalCause::Deleted, removed.len());
            drop(state);
            let settled = self.settle(removed.iter().copied(), &guard);
            retired += removed.len();
            keep_panic(&mut first_panic, || {
                self.finish(removed.len(), removed, settled, &guard)
            });
        }
        (retired, first_panic)
    }

    /// The entries of `shard` that `keep` rejects, with their keys' hashes, read under `guard`
    /// without the lock. `keep` and the keys' `Hash` are user code: if either panics, nothing has
    /// been removed from this shard yet and no lock is held, so the panic simply goes on.
    fn walk_rejecting<'g>(
        &self,
        shard: &'g Shard<K, V>,
        keep: &mut impl FnMut(&K, &V) -> bool,
        guard: &'g Guard,
    ) -> Vec<(u64, &'g Entry<K, V>)> {
        Walk::new(
            std::slice::from_ref(shard),
            || self.now_if_expiring(),
            guard,
        )
        .filter(|entry| !keep(&entry.key, &entry.value))
        .map(|entry| (self.hash(&entry.key), entry))
        .collect()
    }

    /// Removes every entry, telling the listener with [`RemovalCause::Deleted`] (or
    /// [`RemovalCause::Expired`] for an entry already expired); the cache stays
    /// open (unlike [`close`](Self::close)) and each shard starts over with the smallest table.
    /// The removed values, and the old tables, are freed before `clear` returns unless a thread
    /// stays pinned meanwhile (the caller too, if it clears from a listener or a `get_with`
    /// closure); then the epoch collector frees them later, as it runs.
    ///
    /// Shards are cleared one at a time: a write to a shard already cleared stays, so `clear`
    /// is not atomic across the cache, but every entry present before the call and not written
    /// during it is gone when it returns.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, u64> = ShardedCache::new();
    /// cache.insert(1, 1).unwrap();
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// cache.insert(2, 2).unwrap();
    /// assert_eq!(cache.get(&2), Some(2));
    /// ```
    pub fn clear(&self) {
        self.clear_every_shard(RemovalCause::Deleted);
    }
}

/// An iterator over a cache's entries, cloned: see [`ShardedCache::iter`].
pub struct Iter<'c, K, V, S = ahash::RandomState> {
    cache: &'c ShardedCache<K, V, S>,
    next_shard: usize,
    batch: std::vec::IntoIter<(K, V)>,
}

impl<K, V, S> Iterator for Iter<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            let shard = self.cache.shards.get(self.next_shard)?;
            self.next_shard += 1;
            let guard = epoch::pin();
            self.batch = Walk::new(
                std::slice::from_ref(shard),
                || self.cache.now_if_expiring(),
                &guard,
            )
            .map(|entry| (entry.key.clone(), entry.value.clone()))
            .collect::<Vec<_>>()
            .into_iter();
        }
    }

    /// The entries of the shard reached last that are not yet yielded: a lower bound, since the
    /// shards ahead are counted only when the walk reaches them (taking no lock until then).
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.batch.len(), None)
    }
}

/// Past the last shard `next` finds no shard to read, however the cache has changed since.
impl<K, V, S> std::iter::FusedIterator for Iter<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
}

impl<K, V, S> std::fmt::Debug for Iter<'_, K, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("next_shard", &self.next_shard)
            .finish_non_exhaustive()
    }
}

impl<K, V, S> Pinned<'_, K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Every live entry's key and value, lent for as long as this handle stays pinned, shard by
    /// shard, without cloning either. Takes no lock. Consistent as [`ShardedCache::iter`] is.
    /// Expiry is judged as the walk reaches each shard, by one reading of the clock: an entry
    /// that expires while a lazy walk is still inside its shard may yet be lent.
    ///
    /// Memory that any thread retires cannot be freed while the handle lives: walk and drop it.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<u64, String> = ShardedCache::new();
    /// cache.insert(1, "one".into()).unwrap();
    /// cache.insert(2, "two".into()).unwrap();
    /// let pinned = cache.pin();
    /// let letters: usize = pinned.iter().map(|(_, v)| v.len()).sum();
    /// assert_eq!(letters, 6);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        let cache = self.cache;
        Walk::new(&cache.shards, move || cache.now_if_expiring(), &self.guard)
            .map(|entry| (&entry.key, &entry.value))
    }
}
