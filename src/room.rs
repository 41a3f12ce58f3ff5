//! Room in a bounded cache: what a write reserves of the budget, how it evicts until the
//! reservation fits, and what every removal gives back, then tells the listener.
//!
//! Kept apart from `sharded` because it is one protocol with one invariant: once a write returns,
//! the budget counts exactly the linked entries (one entry and its weight each), whether the
//! write was new, a replacement, refused, or raced by another writer of the same key, and
//! whatever a listener does (a weigher too, but for one that panics as an entry leaves, which
//! loses that entry's weight: the engine does not store it). So:
//!
//! - A replacement reserves only the weight its value adds, never a new entry; a new key
//!   reserves one entry and its weight. A writer never evicts to make room it does not need.
//! - A write looks the key up under its shard's lock and reserves there when that runs no user
//!   code (the budget counts entries only, or the weigher is the engine's own), evicting from
//!   that shard under the same lock if it must: the common write then costs one lookup and one
//!   lock. One that shard cannot make room for, one that expired entries elsewhere must make
//!   room for first, or one that must run the caller's weigher on the old entry, is made with
//!   the lock released, and the write checks under the lock that the entry it reserved against
//!   is still the key's.
//! - A removal's budget is settled before any user code runs but the weigher: the collector
//!   (values' `Drop`) and the listener come after, each step taken even if one panics, so user
//!   code can lose neither the budget nor another removal's notice.
//! - A write whose expiry has already passed needs no room at all: its value could never be
//!   read, so it is not stored, and only the key's old value goes
//!   ([`write_expired`](ShardedCache::write_expired)). Storing it would evict a live entry for it.

use std::hash::{BuildHasher, Hash};
use std::panic::{self, AssertUnwindSafe};

use crate::compute::Replacing;
use crate::raw::shard::ShardState;
use crate::raw::{Entry, NewEntry, Shard, Verdict};
use crate::sharded::ShardedCache;
use crate::stats::RemovalCause;
use crate::sync::epoch::{self, Guard};
use crate::sync::{MutexGuard, Ordering};
use crate::CacheError;

/// A caught panic's payload, resumed later.
pub(crate) type Panic = Box<dyn std::any::Any + Send>;

/// How many policy steps one eviction takes in one shard before it moves to the next.
const EVICTION_STEPS: usize = 256;

/// How many rounds a writer that finds nothing to evict waits, yielding, for the budget to move
/// before it starts sleeping between rounds.
const STILL_YIELDS: u32 = 1000;
/// How many more rounds, a millisecond's sleep each, it waits before it gives up with `NoRoom`:
/// 1,000 yields alone were sometimes shorter than the time a writer holding a reservation stayed
/// descheduled (eight writers on two cores sharing a budget of one entry, in a debug build:
/// 5 refusals in 240,000 writes, once in many runs).
const STILL_SLEEPS: u32 = 200;

impl<K, V, S> ShardedCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Locks the shard of `hash` for a write of `key` (hashed to `hash`, weighing `weight`) with
    /// its reservation taken, evicting as needed; returns the lock and what was reserved.
    ///
    /// The reservation depends on the key's current entry. Looked up under the lock, the answer
    /// cannot go stale: a reservation that fits (a replacement that adds no weight, a new key
    /// while there is room, or one for which this shard's policy evicts, as the writer's own
    /// shard is asked first anyway) costs no other lookup and no second lock. Only where that
    /// would run the caller's weigher, or where expired entries of other shards must go first,
    /// is the room made with the lock released and the reservation checked under it afterwards.
    /// Entries evicted under the lock are settled there and left in `made` for the caller to
    /// [`finish`](Self::finish). Entries evicted with the lock released are told to the
    /// listener (and the collector paced) at once; a panic there, of the listener or of a
    /// value's `Drop`, is kept in `made`, not resumed: the write goes on, and resumes it once
    /// its value is stored (or at once, if it stores none), as a listener's panic during a
    /// write goes on after it.
    ///
    /// A write that may replace only a given entry (`replacing`, from `compute`) is checked
    /// before any room is made: if the key's entry is another, this returns `Ok(None)`, with no
    /// lock held, nothing reserved and nothing evicted for it (unless the key changes between
    /// the check and the lock of the unlocked path, when the check under the lock refuses it
    /// after its room was made).
    pub(crate) fn lock_with_room<'s, 'g>(
        &'s self,
        hash: u64,
        key: &K,
        weight: u64,
        replacing: Replacing,
        made: &mut RoomMade<'g, K, V>,
        guard: &'g Guard,
    ) -> Result<Option<(MutexGuard<'s, ShardState>, Reserved)>, CacheError> {
        let RoomMade {
            evicted,
            kept_panic,
        } = made;
        let home = self.shard_index(hash);
        let shard = &self.shards[home];
        let current_entry = || shard.get(hash, |k| k == key, guard);
        let mut known = None;
        if self.reserves_under_lock() {
            let mut state = shard.lock_for(hash, guard);
            if self.is_closed() {
                return Err(CacheError::Closed);
            }
            let current = if self.budget.is_bounded() || replacing.is_conditional() {
                current_entry()
            } else {
                None
            };
            if !replacing.allows(|| current) {
                return Ok(None);
            }
            let reserved = self.reservation(current, weight);
            // A key's `Hash` may panic in the policy's lookups: the victims already evicted are
            // settled, and their listener and collector still run, outside the lock.
            let made = panic::catch_unwind(AssertUnwindSafe(|| {
                self.make_room_locked(shard, &mut state, &reserved, evicted, guard)
            }));
            match made {
                Ok(true) => return Ok(Some((state, reserved))),
                Ok(false) => {}
                Err(payload) => {
                    self.abandon(state, None, std::mem::take(evicted), None, payload, guard)
                }
            }
            drop(state);
            let told = std::mem::take(evicted);
            keep_panic(kept_panic, || self.finish(told.len(), told, None, guard));
            known = Some(reserved);
        }
        loop {
            let reserved = match known.take() {
                Some(reserved) => reserved,
                None => {
                    let current = current_entry();
                    if !replacing.allows(|| current) {
                        return Ok(None);
                    }
                    self.reservation(current, weight)
                }
            };
            self.reserve(&reserved, home, weight, kept_panic, guard)?;
            let state = shard.lock_for(hash, guard);
            if self.is_closed() {
                drop(state);
                self.unreserve(&reserved);
                return Err(CacheError::Closed);
            }
            // At most one lookup under the lock answers both checks, and none where neither
            // depends on the key's entry (an insert that reserved a whole entry).
            // The lookup runs the key's `Eq` under the lock: if it panics, the reservation
            // just taken is given back before the panic goes on.
            let checked = panic::catch_unwind(AssertUnwindSafe(|| {
                let mut looked_up = None;
                let mut current = || *looked_up.get_or_insert_with(current_entry);
                let conflict = !replacing.allows(&mut current);
                (conflict, !conflict && reserved.still_holds(&mut current))
            }));
            let (conflict, holds) = match checked {
                Ok(checked) => checked,
                Err(payload) => {
                    drop(state);
                    self.unreserve(&reserved);
                    panic::resume_unwind(payload)
                }
            };
            if holds {
                return Ok(Some((state, reserved)));
            }
            // The key's entry changed meanwhile: a replacement's reservation no longer fits, or
            // a conditional write (`compute`) is refused.
            drop(state);
            self.unreserve(&reserved);
            if conflict {
                return Ok(None);
            }
        }
    }

    /// Writes a value whose expiry has passed when it is written (an expiry at or before now):
    /// it could never be read, so it is not stored and takes no room, which would otherwise
    /// evict a live entry for it. The key's old value is removed, as the write would have
    /// replaced it. The statistics and the listener hear what they would have heard had the
    /// value been stored and then swept: one insert, the old value `Replaced` (`Expired` if it
    /// had expired already), the new one `Expired`. A conditional write (`compute`) whose key's
    /// entry is not the one it read
    /// changes nothing and gives back the key and the value, as in
    /// [`write_if`](Self::write_if).
    pub(crate) fn write_expired(
        &self,
        hash: u64,
        key: K,
        value: V,
        replacing: Replacing,
        now: u64,
    ) -> Result<Result<(), (K, V)>, CacheError> {
        let guard = &epoch::pin();
        let shard = self.shard(hash);
        // Never linked: it only carries the key and the value to the listener.
        let new = Entry::new(key, value, 0, 0);
        let mut state = shard.lock_for(hash, guard);
        if self.is_closed() {
            drop(state);
            return Err(CacheError::Closed);
        }
        // The key's `Eq` runs under the lock here, as in every write's probe: if it panics,
        // nothing has changed yet.
        let found = panic::catch_unwind(AssertUnwindSafe(|| {
            shard.get(hash, |k| *k == new.key, guard)
        }));
        let current = match found {
            Ok(current) => current,
            Err(payload) => {
                drop(state);
                drop_quietly(new);
                panic::resume_unwind(payload)
            }
        };
        if !replacing.allows(|| current) {
            drop(state);
            return Ok(Err(new.into_parts()));
        }
        let old = current.and_then(|entry| shard.remove_entry(&mut state, hash, entry, guard));
        state.stats.inserts += 1;
        state.stats.count_removal(RemovalCause::Expired);
        let replaced = old.map(|old| (old, cause_met_by(old, now, RemovalCause::Replaced)));
        if let Some((_, cause)) = replaced {
            state.stats.count_removal(cause);
        }
        drop(state);
        let settled = self.settle(replaced, guard);
        let told = replaced.into_iter().chain([(&new, RemovalCause::Expired)]);
        let finished = panic::catch_unwind(AssertUnwindSafe(|| {
            self.finish(usize::from(old.is_some()), told, settled, guard)
        }));
        if let Err(payload) = finished {
            drop_quietly(new);
            panic::resume_unwind(payload);
        }
        Ok(Ok(()))
    }

    /// Ends a write that user code (a key's `Hash` or `Eq`) panicked in, under the lock `state`:
    /// releases the lock, gives back `reserved` (nothing of it was linked), finishes the
    /// removals the write already settled, drops the write's own entry if it was never linked
    /// (`unlinked`), then resumes the panic.
    pub(crate) fn abandon(
        &self,
        state: MutexGuard<'_, ShardState>,
        reserved: Option<&Reserved>,
        evicted: Vec<(&Entry<K, V>, RemovalCause)>,
        unlinked: Option<NewEntry<K, V>>,
        payload: Box<dyn std::any::Any + Send>,
        guard: &Guard,
    ) -> ! {
        drop(state);
        if let Some(reserved) = reserved {
            self.unreserve(reserved);
        }
        self.finish(evicted.len(), evicted, None, guard);
        drop_quietly(unlinked);
        panic::resume_unwind(payload)
    }

    /// What writing an entry of `weight` needs of the budget when the key's entry is now
    /// `current`: for a replacement only the weight the new value adds (it takes no new entry, so
    /// it never evicts to make room it does not need, least of all its own key's entry); for a new
    /// key one entry and its weight. Runs the weigher on `current` when the cache counts weight.
    fn reservation(&self, current: Option<&Entry<K, V>>, weight: u64) -> Reserved {
        if !self.budget.is_bounded() {
            return Reserved::Unbounded;
        }
        match current {
            Some(old) => {
                let old_weight = self.weight_of(old);
                Reserved::Replacing {
                    old: old.address(),
                    old_weight,
                    extra: weight.saturating_sub(old_weight),
                }
            }
            None => Reserved::Entry { weight },
        }
    }

    /// Whether [`reservation`](Self::reservation) may run under a shard lock: it runs no user
    /// code there when the budget counts entries only or the weigher is the engine's own.
    fn reserves_under_lock(&self) -> bool {
        self.budget.weight.is_none() || self.engine_weigher
    }

    /// Takes `reserved` from the budget if it fits now; evicts nothing.
    fn try_take(&self, reserved: &Reserved) -> bool {
        let (entries, weight) = reserved.amounts();
        self.budget.try_reserve(entries, weight)
    }

    /// Under `shard`'s lock (`state`), evicts from that shard until `reserved` fits and takes it
    /// from the budget; returns whether it did. Each eviction is counted and settled at once
    /// (the weigher that settles it is the engine's: call this only where
    /// [`reserves_under_lock`](Self::reserves_under_lock) holds), and pushed to `evicted` for
    /// [`finish`](Self::finish) once the lock is released.
    ///
    /// Only where no entry ever had a deadline: expired entries of any shard go first (see
    /// [`evict_one`](Self::evict_one)), and another shard's lock cannot be taken here. Otherwise,
    /// or when this shard has no victim, the caller makes room with the lock released.
    fn make_room_locked<'g>(
        &self,
        shard: &Shard<K, V>,
        state: &mut ShardState,
        reserved: &Reserved,
        evicted: &mut Vec<(&'g Entry<K, V>, RemovalCause)>,
        guard: &'g Guard,
    ) -> bool {
        let hash_of = |k: &K| self.hash(k);
        while !self.try_take(reserved) {
            if self.expiring.load(Ordering::Relaxed) {
                return false;
            }
            let keep = reserved.taking_over();
            let Some((victim, verdict)) =
                shard.evict(state, EVICTION_STEPS, &hash_of, 0, keep, guard)
            else {
                return false;
            };
            let cause = cause_of(verdict);
            state.stats.count_removal(cause);
            // The engine's own weigher, which runs no user code, so nothing to resume.
            let _never = self.settle([(victim, cause)], guard);
            evicted.push((victim, cause));
        }
        true
    }

    /// Takes `reserved` (for an entry of `weight` whose key hashes to shard `home`) from the
    /// budget, evicting until it fits. Call with no lock held.
    fn reserve(
        &self,
        reserved: &Reserved,
        home: usize,
        weight: u64,
        kept_panic: &mut Option<Panic>,
        guard: &Guard,
    ) -> Result<(), CacheError> {
        let keep = reserved.taking_over();
        let (mut still_rounds, mut last_seen) = (0, self.budget.used());
        let mut stepped_rounds = 0;
        while !self.try_take(reserved) {
            let eviction = self.evict_one(home, keep, kept_panic, guard);
            if eviction == Eviction::Evicted {
                still_rounds = 0;
            } else if matches!(eviction, Eviction::Stepped { live } if stepped_rounds < live / 64 + 64)
            {
                // No victim yet, but the policy moved: every entry read while its shard filled
                // takes about two steps before it can be chosen (out of the small queue, then
                // its counter reset), so a large shard of read entries needs about live / 256
                // rounds of these steps. Going on without waiting, up to four times that; a
                // writer that stopped counting these as progress refused a fitting write in a
                // shard of 310,000 read entries.
                stepped_rounds += 1;
            } else {
                // Nothing evictable: the budget is held by other writers' reservations whose
                // entries are about to be linked. Let them run. Only a budget that stays still
                // for many rounds says this write cannot get in; while other writers move it,
                // this one waits its turn (a count of rounds alone refused a fitting write when
                // eight writers shared two cores and a budget of one entry).
                if self.is_closed() {
                    return Err(CacheError::Closed);
                }
                let seen = self.budget.used();
                if seen == last_seen {
                    still_rounds += 1;
                } else {
                    (still_rounds, last_seen) = (0, seen);
                }
                if still_rounds > STILL_YIELDS + STILL_SLEEPS {
                    return Err(CacheError::NoRoom {
                        size: usize::try_from(weight).unwrap_or(usize::MAX),
                    });
                }
                crate::sync::pause(still_rounds > STILL_YIELDS);
            }
        }
        Ok(())
    }

    /// Gives back a reservation that was not used.
    pub(crate) fn unreserve(&self, reserved: &Reserved) {
        let (entries, weight) = reserved.amounts();
        self.budget.release(entries, weight);
    }

    /// Evicts one entry: an expired one from any shard if there is one, else the victim of the
    /// writer's own shard's policy, else of the next shards in turn (so an entry that fits the
    /// cache is admitted whichever shard it hashes to). Says whether it evicted anything, and if not, whether a policy stepped.
    ///
    /// The home shard goes first because its policy has just seen the key that needs the room;
    /// going round the shards from a shared cursor instead cost 5 points of hit ratio on Zipf 0.9
    /// at 10,000 entries in 8 shards (44.2% against 49.4%). `keep` is the entry a replacement
    /// is taking over, never chosen (see [`Shard::evict`](crate::raw::Shard::evict)).
    fn evict_one(
        &self,
        home: usize,
        keep: Option<usize>,
        kept_panic: &mut Option<Panic>,
        guard: &Guard,
    ) -> Eviction {
        // Expired entries go first, but only a cache that was ever given an expiry looks for them
        // (or reads the clock: 0 then, which no deadline is at or before).
        let now = self.now_if_expiring();
        if now != 0 && self.evict_expired(now, kept_panic, guard) {
            return Eviction::Evicted;
        }
        let n = self.shards.len();
        let start = home;
        let mut stepped = None;
        for i in 0..2 * n {
            let shard = &self.shards[(start + i) % n];
            let mut state = shard.lock();
            let hash_of = |k: &K| self.hash(k);
            let victim = shard.evict(&mut state, EVICTION_STEPS, &hash_of, now, keep, guard);
            let Some((victim, verdict)) = victim else {
                // Evictable entries there besides the one a replacement keeps: its policy
                // stepped.
                let live = Shard::<K, V>::evictable(&state);
                if live > usize::from(keep.is_some()) {
                    stepped = Some(live.max(stepped.unwrap_or(0)));
                }
                continue;
            };
            let cause = cause_of(verdict);
            state.stats.count_removal(cause);
            drop(state);
            keep_panic(kept_panic, || self.release_entry(victim, cause, guard));
            return Eviction::Evicted;
        }
        stepped.map_or(Eviction::Nothing, |live| Eviction::Stepped { live })
    }

    /// Removes one expired entry from the first shard that has one, found through the shards'
    /// published earliest deadlines (no lock is taken for a shard without one). Expired entries
    /// make room before any live entry is evicted.
    fn evict_expired(&self, now: u64, kept_panic: &mut Option<Panic>, guard: &Guard) -> bool {
        for shard in self.shards.iter() {
            if shard.earliest_deadline() > now {
                continue;
            }
            let hash_of = |k: &K| self.hash(k);
            let mut expired = None;
            let mut state = shard.lock();
            shard.sweep_expired(&mut state, 1, now, &hash_of, guard, |e| expired = Some(e));
            if expired.is_some() {
                state.stats.count_removal(RemovalCause::Expired);
            }
            drop(state);
            if let Some(old) = expired {
                keep_panic(kept_panic, || {
                    self.release_entry(old, RemovalCause::Expired, guard)
                });
                return true;
            }
        }
        false
    }

    /// The weight the budget counts for `entry` (0 when only entries are counted).
    fn weight_of(&self, entry: &Entry<K, V>) -> u64 {
        if self.budget.weight.is_some() {
            (self.weigher)(&entry.key, &entry.value)
        } else {
            0
        }
    }

    /// Gives back what unlinked entries held of the budget (one entry and its weight each) and
    /// counts their weight as garbage until the collector frees it; called while pinned, after
    /// the shard lock is released, or under it where the weigher is the engine's own (see
    /// [`make_room_locked`](Self::make_room_locked)). Runs no user code but the weigher: the
    /// collector, which runs values' `Drop`, and the listener come after, in
    /// [`finish`](Self::finish), so that a panic in either cannot keep any removal's budget from
    /// being settled.
    #[must_use = "a weigher's panic is to be resumed after `finish`"]
    pub(crate) fn settle<'g>(
        &self,
        removed: impl IntoIterator<Item = (&'g Entry<K, V>, RemovalCause)>,
        guard: &Guard,
    ) -> Option<Panic>
    where
        K: 'g,
        V: 'g,
    {
        if !self.budget.is_bounded() {
            return None;
        }
        // A caller's weigher that panics loses that entry's weight from the budget (the engine
        // does not store it), but not its entry count nor the other removals' settling. The
        // first panic is returned, for the caller to resume after `finish`, so that the
        // collector and the listener still run.
        let mut first_panic = None;
        for (entry, _) in removed {
            let weight = self.weight_or_panic(entry, &mut first_panic);
            self.budget.release(1, weight);
            self.garbage.count(weight, guard);
        }
        first_panic
    }

    /// The weight of an entry leaving the cache, or 0 if the weigher panics, whose payload is
    /// kept in `first_panic` unless an earlier one is.
    fn weight_or_panic(&self, entry: &Entry<K, V>, first_panic: &mut Option<Panic>) -> u64 {
        match panic::catch_unwind(AssertUnwindSafe(|| self.weight_of(entry))) {
            Ok(weight) => weight,
            Err(payload) => {
                first_panic.get_or_insert(payload);
                0
            }
        }
    }

    /// As [`settle`](Self::settle) for the entry a write of `weight` replaced, which gives back
    /// only what its reservation took beyond the change in weight.
    #[must_use = "a weigher's panic is to be resumed after `finish`"]
    pub(crate) fn settle_replaced(
        &self,
        old: &Entry<K, V>,
        reserved: &Reserved,
        weight: u64,
        guard: &Guard,
    ) -> Option<Panic> {
        let mut first_panic = None;
        let old_weight = match *reserved {
            Reserved::Unbounded => 0,
            Reserved::Replacing { old_weight, .. } => {
                self.budget.release(0, old_weight.saturating_sub(weight));
                old_weight
            }
            // The key was written by another thread between the reservation and the lock: this
            // write reserved a whole entry, and the one it replaced gives back its own.
            Reserved::Entry { .. } => {
                let old_weight = self.weight_or_panic(old, &mut first_panic);
                self.budget.release(1, old_weight);
                old_weight
            }
        };
        self.garbage.count(old_weight, guard);
        first_panic
    }

    /// After [`settle`](Self::settle): paces the collector for the `retired` entries (which may
    /// run values' `Drop`), then tells the listener of each removal. Every step is taken even if
    /// one panics; the first panic is resumed after the last, `settled` (the panic settling
    /// these removals returned, if any) first of all.
    pub(crate) fn finish<'g>(
        &self,
        retired: usize,
        removed: impl IntoIterator<Item = (&'g Entry<K, V>, RemovalCause)>,
        settled: Option<Panic>,
        guard: &Guard,
    ) where
        K: 'g,
        V: 'g,
    {
        // A panic from settling these removals (a caller's weigher) goes on first.
        let mut first_panic = settled;
        keep_panic(&mut first_panic, || {
            crate::budget::pace_reclamation(guard, retired, self.retire_batch);
            self.garbage.flush_if_over(guard);
            // A value's `Drop` that panicked in a collection (this one, or an earlier one of
            // this thread's) goes on here, in a write that removed an entry: one that removed
            // none (an insert of a new key) does not raise a panic that is not its own.
            if retired > 0 {
                if let Some(payload) = crate::raw::shard::take_drop_panic() {
                    panic::resume_unwind(payload);
                }
            }
        });
        if let Some(listener) = &self.listener {
            for (entry, cause) in removed {
                keep_panic(&mut first_panic, || {
                    listener(&entry.key, &entry.value, cause)
                });
            }
        }
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }

    /// As [`settle`](Self::settle) then [`finish`](Self::finish), for one entry.
    pub(crate) fn release_entry(&self, entry: &Entry<K, V>, cause: RemovalCause, guard: &Guard) {
        let settled = self.settle([(entry, cause)], guard);
        self.finish(1, [(entry, cause)], settled, guard);
    }
}

/// Why an entry that an operation for `cause` (a replacement, a removal, a `clear`) meets at
/// `now` leaves the cache: [`RemovalCause::Expired`] if it had expired by then, as moka and
/// Caffeine report it, else `cause`. `now` is 0 where the caller read no clock (its shard held
/// no deadline), and then nothing has expired.
pub(crate) fn cause_met_by<K, V>(
    entry: &Entry<K, V>,
    now: u64,
    cause: RemovalCause,
) -> RemovalCause {
    if entry.is_expired(|| now) {
        RemovalCause::Expired
    } else {
        cause
    }
}

/// What one round of [`evict_one`](ShardedCache::evict_one) did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Eviction {
    /// It evicted an entry.
    Evicted,
    /// No victim, but a shard holding `live` entries (the most of those asked) stepped its
    /// policy.
    Stepped { live: usize },
    /// No shard had an entry it could evict.
    Nothing,
}

/// The removal cause of a victim the policy picked for `verdict`.
fn cause_of(verdict: Verdict) -> RemovalCause {
    match verdict {
        Verdict::Expired => RemovalCause::Expired,
        Verdict::Evicted => RemovalCause::Evicted,
    }
}

/// What a write reserved of the budget.
pub(crate) enum Reserved {
    /// The cache has no bound.
    Unbounded,
    /// A new key: one entry and its weight.
    Entry { weight: u64 },
    /// A key whose entry (its address, compared, never read) weighed `old_weight`: the weight
    /// the new value adds, if any.
    Replacing {
        old: usize,
        old_weight: u64,
        extra: u64,
    },
}

impl Reserved {
    /// The entries and the weight reserved.
    fn amounts(&self) -> (u64, u64) {
        match *self {
            Reserved::Unbounded => (0, 0),
            Reserved::Entry { weight } => (1, weight),
            Reserved::Replacing { extra, .. } => (0, extra),
        }
    }

    /// The address of the entry a replacement takes over.
    fn taking_over(&self) -> Option<usize> {
        match *self {
            Reserved::Replacing { old, .. } => Some(old),
            _ => None,
        }
    }

    /// Whether the reservation still fits the key, under its shard's lock: a replacement's holds
    /// only while the entry it was made against is the key's entry (`current` looks it up).
    fn still_holds<'g, K: 'g, V: 'g>(
        &self,
        current: impl FnOnce() -> Option<&'g Entry<K, V>>,
    ) -> bool {
        match self.taking_over() {
            Some(old) => current().is_some_and(|e| e.address() == old),
            None => true,
        }
    }
}

/// What making room for a write leaves for the write to finish once its entry is linked (see
/// [`ShardedCache::lock_with_room`]).
pub(crate) struct RoomMade<'g, K, V> {
    /// Entries evicted under the shard's lock, settled there, not yet told to the listener.
    pub(crate) evicted: Vec<(&'g Entry<K, V>, RemovalCause)>,
    /// The first panic of user code told of an eviction made with the lock released.
    pub(crate) kept_panic: Option<Panic>,
}

impl<K, V> Default for RoomMade<'_, K, V> {
    fn default() -> Self {
        RoomMade {
            evicted: Vec::new(),
            kept_panic: None,
        }
    }
}

/// Drops `value` while a panic from user code is about to resume: its `Drop` is user code too,
/// and a second panic there, unwinding during the first, would abort the process.
pub(crate) fn drop_quietly<T>(value: T) {
    let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(value)));
}

/// Runs `step` (user code: a removal told to the listener, or a collection running values'
/// `Drop`), keeping its panic in `kept` unless an earlier one is there, for the caller to resume
/// once it is done.
pub(crate) fn keep_panic(kept: &mut Option<Panic>, step: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(step)) {
        kept.get_or_insert(payload);
    }
}
