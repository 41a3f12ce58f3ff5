//! Removals from every shard at once: `close`, `clear` and `purge_expired` (and `ByteCache`'s
//! `clear`, through [`free_retired`]).
//!
//! Kept apart from `room` because these are not writes looking for room but sweeps that must
//! finish whatever user code does: every shard is visited, one lock at a time, every removal is
//! settled before the next shard is locked, and the listener and the collector run once, at the
//! end. And a sweep, unlike a write, is often the last thing a cache sees for a while (a cache
//! closed, or cleared and left idle), so it frees what it removed before it returns rather than
//! leave the values to some later collection.

use std::hash::{BuildHasher, Hash};
use std::panic::{self, AssertUnwindSafe};

use crate::raw::shard::{FreshParts, ShardState};
use crate::raw::{Entry, Shard};
use crate::room::{cause_met_by, keep_panic, Panic};
use crate::sharded::ShardedCache;
use crate::stats::RemovalCause;
use crate::sync::epoch::{self, Guard};

impl<K, V, S> ShardedCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Removes every expired entry now. Writes already sweep a little on every call; an idle
    /// cache calls this (from a timer of its own) to free expired memory without writes.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use epochcache::{MockClock, ShardedCache};
    /// let clock = MockClock::new();
    /// let cache: ShardedCache<u64, u64> =
    ///     ShardedCache::builder().clock(Arc::new(clock.clone())).build();
    /// cache.insert_with_expiry(1, 1, Some(Duration::from_secs(1).into())).unwrap();
    /// clock.advance(Duration::from_secs(1));
    /// cache.purge_expired();
    /// assert_eq!(cache.len(), 0);
    /// ```
    pub fn purge_expired(&self) {
        let now = self.clock.now_nanos();
        let hash_of = |k: &K| self.hash(k);
        // Unpinned before the frees below: a pin held would keep the epoch from advancing.
        let (retired, user_panic) = {
            let guard = epoch::pin();
            self.remove_from_every_shard(
                |_| RemovalCause::Expired,
                &guard,
                |shard, state, expired| {
                    shard.sweep_expired(state, usize::MAX, now, &hash_of, &guard, expired)
                },
            )
        };
        // An idle cache has no writes to run the collector: the expired values are dropped
        // before this returns (and before a panic of user code goes on).
        free_retired(retired);
        if let Some(payload) = user_panic {
            panic::resume_unwind(payload);
        }
    }

    /// Removes from every shard, one shard lock at a time, what `take` unlinks there (passing
    /// each unlinked entry to its last argument), each for the cause `cause_of` gives it. Each
    /// shard's removals are counted and settled before the next shard is locked, and the
    /// collector and the listener run once at the end, so a panic in user code cannot leave a
    /// shard untouched or a removal unsettled (`close`, `clear`, `purge_expired`): a shard's
    /// removals are all settled even if a caller's weigher or a key's `Hash` panics (see
    /// [`settle`](ShardedCache::settle)). Returns how many entries it removed, and the first
    /// panic of user code, for the caller to resume once it has freed them ([`free_retired`]).
    pub(crate) fn remove_from_every_shard<'g>(
        &self,
        cause_of: impl Fn(&Entry<K, V>) -> RemovalCause,
        guard: &'g Guard,
        mut take: impl FnMut(&Shard<K, V>, &mut ShardState, &mut dyn FnMut(&'g Entry<K, V>)),
    ) -> (usize, Option<Panic>) {
        let mut removed = Vec::new();
        let mut first_panic = None;
        for shard in self.shards.iter() {
            let first = removed.len();
            let mut state = shard.lock();
            // A key's `Hash` may panic in `purge_expired`'s sweep after it unlinked some of
            // this shard's entries: those are still counted, settled and told, and the panic
            // goes on after the last step, as a weigher's does.
            let took = panic::catch_unwind(AssertUnwindSafe(|| {
                take(shard, &mut state, &mut |entry| {
                    removed.push((entry, cause_of(entry)))
                })
            }));
            for &(_, cause) in &removed[first..] {
                state.stats.count_removal(cause);
            }
            drop(state);
            if let Some(payload) = self.settle(removed[first..].iter().copied(), guard) {
                first_panic.get_or_insert(payload);
            }
            if let Err(payload) = took {
                first_panic.get_or_insert(payload);
            }
        }
        let count = removed.len();
        let mut user_panic = None;
        keep_panic(&mut user_panic, || {
            self.finish(count, removed, first_panic, guard)
        });
        (count, user_panic)
    }

    /// Empties every shard, one lock at a time, for `cause` (`close`, `clear`): each shard
    /// starts over with parts allocated before the locks are taken, and the parts they replace
    /// are dropped after the last lock is released. Then has the collector free what it
    /// removed (see [`free_retired`]) before it returns, or resumes a panic of user code.
    pub(crate) fn clear_every_shard(&self, cause: RemovalCause) {
        // A `clear` meets expired entries as a write does: they go as expired (see
        // `cause_met_by`). `close` removes everything as closed.
        let now = if cause == RemovalCause::Closed {
            0
        } else {
            self.now_if_expiring()
        };
        let cause_of = |entry: &Entry<K, V>| cause_met_by(entry, now, cause);
        let (retired, user_panic) = {
            let guard = &epoch::pin();
            let mut fresh: Vec<FreshParts<K, V>> =
                self.shards.iter().map(|_| FreshParts::new()).collect();
            let mut stale = Vec::with_capacity(fresh.len());
            let removed = self.remove_from_every_shard(cause_of, guard, |shard, state, taken| {
                if let Some(parts) = fresh.pop() {
                    stale.push(shard.clear(state, parts, guard, taken));
                }
            });
            drop(stale);
            removed
        };
        // Every shard's old table was retired too, whether or not it held an entry.
        free_retired(retired + self.shards.len());
        if let Some(payload) = user_panic {
            panic::resume_unwind(payload);
        }
    }
}

/// Frees what the calling thread retired so far (`retired` entries and tables) before returning: it
/// hands the thread's garbage to the collector, and, unless nothing was retired, runs the
/// collector until a marker deferred after those retirements has run (see [`collect_until`]). A
/// cache that is closed, cleared or purged and then left alone would otherwise keep its values
/// until some later pin of some thread collects them. Called with no pin of its own held.
///
/// The collector frees the queued bags first in, first out, so once the marker has run every
/// entry this thread retired before it has been freed (its value dropped), or is being freed by
/// another thread's collection. Each round frees up to eight bags of 64, so about
/// `retired / 512` rounds suffice, plus a few to advance the epoch twice; when the rounds run
/// out, the rest is freed by later collections.
pub(crate) fn free_retired(retired: usize) {
    if retired == 0 || !collecting_helps() {
        epoch::pin().flush();
        return;
    }
    let freed = std::sync::Arc::new(crate::sync::AtomicBool::new(false));
    {
        let guard = epoch::pin();
        let marker = std::sync::Arc::clone(&freed);
        guard.defer(move || marker.store(true, crate::sync::Ordering::Release));
        guard.flush();
    }
    let rounds = retired.div_ceil(512).saturating_mul(2).saturating_add(64);
    collect_until(rounds, || freed.load(crate::sync::Ordering::Acquire));
}

/// Runs the collector until `done`, `rounds` times at most: each round pins only to flush and
/// collect, and from the eighth on lets other threads run (another thread that stays pinned
/// holds the collector back, and may be descheduled). Does nothing where no round could free
/// anything (see [`collecting_helps`]).
pub(crate) fn collect_until(rounds: usize, done: impl Fn() -> bool) {
    if !collecting_helps() {
        return;
    }
    for round in 0..rounds {
        if done() {
            return;
        }
        epoch::pin().flush();
        if round >= 8 {
            crate::sync::pause(false);
        }
    }
}

/// Whether running the collector from the calling thread can free anything: not while the
/// thread is pinned itself (a listener, a `get_with` closure, a [`Pinned`](crate::Pinned)
/// handle, a value's `Drop`), which keeps the epoch from advancing twice; and not under loom,
/// where the models free garbage promptly (`crossbeam_sanitize`) and would explore every
/// operation of each round.
fn collecting_helps() -> bool {
    #[cfg(not(epochcache_loom))]
    return !epoch::is_pinned();
    #[cfg(epochcache_loom)]
    return false;
}
