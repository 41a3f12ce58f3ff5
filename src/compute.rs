//! `compute`: an atomic read-modify-write of one key, with no user code under a lock.
//!
//! # Why optimistic
//!
//! moka's `and_compute_with` and Caffeine's `compute` run the caller's function while they hold
//! the key (a per-key lock, or the map's bin lock). Here no user code may run under a shard lock,
//! so `compute` works as a compare-and-swap on the key's entry, as papaya's `compute` does:
//!
//! 1. Pinned, with no lock, it reads the key's entry (the same lookup `get` makes) and calls the
//!    function with its value, or with `None` when the key has no live value.
//! 2. Under the shard's lock it applies the function's answer only if the key's entry is still
//!    the one it read, compared by address. The pin taken in step 1 is still held, so that
//!    address cannot have been freed and reused meanwhile: an equal address is the same entry.
//! 3. Otherwise some other operation changed the key in between (a write, a removal, an
//!    eviction, an expiry sweep, `clear`), and it starts over from step 1 with the key's new
//!    state. The function may therefore run more than once (it is `FnMut`); only its last answer
//!    takes effect.
//!
//! A retry follows a change of the key that another operation completed, so retries go on only
//! while other operations keep changing the key, and no compute ever waits for another's
//! function (none runs under a lock). The hash is computed once, and the check under the lock
//! uses it, so a key whose `Hash` is not stable cannot make the read and the check look in
//! different places. A put goes through the one write path every insert takes
//! ([`ShardedCache::write_if`]), with its budget, eviction and expiry; its condition is checked
//! before any room is made for it, so a put refused there evicts nothing. A remove unlinks the
//! entry it read by address, as `retain` does.

use std::hash::{BuildHasher, Hash};
use std::panic::{self, AssertUnwindSafe};

use crate::raw::Entry;
use crate::room::{drop_quietly, Panic};
use crate::sharded::ShardedCache;
use crate::stats::RemovalCause;
use crate::sync::epoch;
use crate::{CacheError, Expires};

/// What [`ShardedCache::compute`]'s function asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<V> {
    /// Leave the key as it is.
    Nop,
    /// Store this value, as [`insert`](ShardedCache::insert) does (the builder's
    /// [`time_to_live`](crate::CacheBuilder::time_to_live), if any, counts from now).
    Put(V),
    /// Store this value until `Expires`, as
    /// [`insert_with_expiry`](ShardedCache::insert_with_expiry) does.
    PutWithExpiry(V, Expires),
    /// Remove the key's value.
    Remove,
}

/// What [`ShardedCache::compute`] did, with clones of the values involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Computed<V> {
    /// The key had no live value, and still has none.
    StillNone,
    /// The key keeps its value.
    Unchanged(V),
    /// The key had no live value; this one was written. A value whose expiry had already passed
    /// when it was written is not kept (as with [`insert_with_expiry`](ShardedCache::insert_with_expiry)):
    /// the key then has none.
    Inserted(V),
    /// The key's value `old` was replaced by `new` (which, if it had already expired when
    /// written, is not kept).
    Updated {
        /// The value the function saw.
        old: V,
        /// The value stored.
        new: V,
    },
    /// The key's value was removed.
    Removed(V),
}

/// Which entry a write may replace: any (`insert`), or only the one `compute` read (its
/// `address`, compared and never read; `None` when the key had no entry). An expired entry
/// counts: its address is what `compute` read, although its function saw `None`. `judged_at` is
/// the time `compute` judged that entry's expiry by (0 if it read no clock), so that the entry
/// it replaces leaves as what its function was told it was: replaced if live, expired if not.
#[derive(Clone, Copy)]
pub(crate) enum Replacing {
    Any,
    Only {
        address: Option<usize>,
        judged_at: u64,
    },
}

impl Replacing {
    fn only<K, V>(entry: Option<&Entry<K, V>>, judged_at: u64) -> Self {
        Replacing::Only {
            address: entry.map(Entry::address),
            judged_at,
        }
    }

    /// Whether the write is conditional (a lookup of the key's entry is needed to decide).
    pub(crate) fn is_conditional(self) -> bool {
        matches!(self, Replacing::Only { .. })
    }

    /// The time to judge the replaced entry's expiry by: `compute`'s, or `now` for an insert.
    pub(crate) fn judged_at(self, now: u64) -> u64 {
        match self {
            Replacing::Any => now,
            Replacing::Only { judged_at, .. } => judged_at,
        }
    }

    /// Whether a write may go ahead when the key's entry, under the shard's lock, is the one
    /// `current` looks up (called only for [`Replacing::Only`], so an insert probes once).
    pub(crate) fn allows<'g, K: 'g, V: 'g>(
        self,
        current: impl FnOnce() -> Option<&'g Entry<K, V>>,
    ) -> bool {
        match self {
            Replacing::Any => true,
            Replacing::Only { address, .. } => current().map(Entry::address) == address,
        }
    }
}

impl<K, V, S> ShardedCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Reads `key`'s value, asks `f` what to do with it, and does it atomically: if another
    /// write changes the key in between, nothing is applied and `f` runs again on the new value.
    /// This is moka's `and_compute_with` and Caffeine's `compute`, for counters, appends and
    /// other updates that must not lose a concurrent write.
    ///
    /// `f` sees `None` when the key has no live value (an expired one counts as none). It runs
    /// with no lock held, so it may use the cache, but it runs again whenever the key changed
    /// before its answer could be applied, and only its last answer counts: keep side effects
    /// out of it. While it runs the thread is pinned, as in [`get_with`](Self::get_with): keep
    /// it short.
    ///
    /// A put is a write like [`insert`](Self::insert): it may evict, the listener hears of the
    /// value it replaces ([`RemovalCause::Replaced`], or [`RemovalCause::Expired`] for an expired
    /// one, which `f` was told was none) and it counts in `inserts`; a remove is told as
    /// [`RemovalCause::Deleted`]. The read counts as neither a hit nor a miss, but the
    /// eviction policy sees each run of `f` on a live value as a use of the entry.
    ///
    /// Fails with [`CacheError::Closed`] after [`close`](Self::close), and with
    /// [`CacheError::TooLarge`] if the value to put is too heavy, or [`CacheError::NoRoom`] if no
    /// room could be made for it (the old value stays either way). If `f`
    /// panics, nothing changes and the panic goes on.
    ///
    /// ```
    /// # use epochcache::{Computed, Op, ShardedCache};
    /// let hits: ShardedCache<&str, u64> = ShardedCache::new();
    /// let add_one = |n: Option<&u64>| Op::Put(n.map_or(1, |n| n + 1));
    /// assert_eq!(hits.compute("/", add_one).unwrap(), Computed::Inserted(1));
    /// assert_eq!(
    ///     hits.compute("/", add_one).unwrap(),
    ///     Computed::Updated { old: 1, new: 2 }
    /// );
    /// let drop_at_two = |n: Option<&u64>| if n == Some(&2) { Op::Remove } else { Op::Nop };
    /// assert_eq!(hits.compute("/", drop_at_two).unwrap(), Computed::Removed(2));
    /// assert_eq!(hits.compute("/", drop_at_two).unwrap(), Computed::StillNone);
    /// ```
    pub fn compute(
        &self,
        key: K,
        f: impl FnMut(Option<&V>) -> Op<V>,
    ) -> Result<Computed<V>, CacheError> {
        // A panic of user code told of an eviction made for an answer that then met a conflict:
        // resumed once the answer that follows it is applied (or refused), and ahead of any
        // later panic of user code in the rounds after it, since it came first.
        let mut kept_panic = None;
        let computed = panic::catch_unwind(AssertUnwindSafe(|| {
            self.compute_keeping_panics(key, f, &mut kept_panic)
        }));
        match kept_panic {
            None => computed.unwrap_or_else(|later| panic::resume_unwind(later)),
            Some(first) => {
                drop_quietly(computed);
                panic::resume_unwind(first)
            }
        }
    }

    /// [`compute`](Self::compute), keeping in `kept_panic` the first panic its writes handed
    /// back with a conflict instead of resuming it.
    fn compute_keeping_panics(
        &self,
        key: K,
        mut f: impl FnMut(Option<&V>) -> Op<V>,
        kept_panic: &mut Option<Panic>,
    ) -> Result<Computed<V>, CacheError> {
        let hash = self.hash(&key);
        let shard = self.shard(hash);
        let mut key = key;
        loop {
            if self.is_closed() {
                return Err(CacheError::Closed);
            }
            // Held until the answer is applied or refused: it keeps the address compared under
            // the lock from being reused by another entry.
            let guard = epoch::pin();
            let current = shard.get(hash, |k| *k == key, &guard);
            let mut judged_at = 0;
            let live = current.filter(|entry| {
                !entry.is_expired(|| {
                    judged_at = self.clock.now_nanos();
                    judged_at
                })
            });
            if let Some(entry) = live {
                entry.record_hit();
            }
            let (value, expires) = match f(live.map(|entry| &entry.value)) {
                Op::Nop => {
                    return Ok(live.map_or(Computed::StillNone, |entry| {
                        Computed::Unchanged(entry.value.clone())
                    }))
                }
                Op::Remove => {
                    let Some(entry) = live else {
                        return Ok(Computed::StillNone);
                    };
                    // Cloned before anything changes: a `Clone` that panics then loses nothing,
                    // where after the unlink it would skip settling the removal.
                    let old_value = entry.value.clone();
                    let mut state = shard.lock_for(hash, &guard);
                    let removed = shard.remove_entry(&mut state, hash, entry, &guard);
                    if removed.is_some() {
                        state.stats.count_removal(RemovalCause::Deleted);
                    }
                    drop(state);
                    if let Some(old) = removed {
                        self.release_entry(old, RemovalCause::Deleted, &guard);
                        return Ok(Computed::Removed(old_value));
                    }
                    continue;
                }
                Op::Put(value) => (value, None),
                Op::PutWithExpiry(value, expires) => (value, Some(expires)),
            };
            let new = value.clone();
            let old = live.map(|entry| entry.value.clone());
            match self.write_if(
                hash,
                key,
                value,
                expires,
                Replacing::only(current, judged_at),
            )? {
                Ok(()) => {
                    return Ok(match old {
                        Some(old) => Computed::Updated { old, new },
                        None => Computed::Inserted(new),
                    })
                }
                Err((back, _, panicked)) => {
                    key = back;
                    if let Some(payload) = panicked {
                        kept_panic.get_or_insert(payload);
                    }
                }
            }
        }
    }
}
