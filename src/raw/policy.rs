//! The eviction policy of a bounded shard: a small probationary FIFO, a main CLOCK queue, a
//! frequency sketch that decides who may enter the main queue, and two ghost histories that size
//! the probationary queue. It is driven only by the four-bit access counter readers raise in each
//! entry and by the writes (misses) themselves.
//!
//! # Why this shape
//!
//! A hit must stay one relaxed store (see [`entry`](super::entry)), so the policy learns only
//! "was this entry read since the evictor last looked, and about how often" from an entry; it
//! cannot reorder entries on a hit as LRU does. So the queues are FIFOs with a second chance:
//!
//! - Every new key enters the small queue. An entry read while there moves to the main queue
//!   when the small queue overflows; one that was not read is a candidate, and it enters the main
//!   queue only if the sketch rates it more popular than the main queue's own CLOCK victim (by a
//!   margin of one, since a resident's reads reach the sketch only when the hand passes it, up to
//!   fifteen at a time), else it is dropped. This is TinyLFU's admission, and it is what keeps a
//!   loop or a scan larger than the cache from flushing the entries that earn hits.
//! - A dropped candidate that returns while the small queue's ghost still remembers it goes
//!   straight into the main queue (as a ghost hit does in S3-FIFO): it came back within a few
//!   small-queue lengths, so recency vouches for it where the sketch would still rate it low.
//! - The main queue is CLOCK: an entry read since the hand last passed goes round again, its
//!   reads counted into the sketch.
//! - How large the small queue should be depends on the workload (recency-heavy traces want a
//!   large one, loops a tiny one), so it adapts as ARC's target does: a key that returns after
//!   the small queue dropped it grows the target, one that returns after the main queue evicted
//!   it shrinks it, between 0.1% (at least one entry) and 50% of the shard.
//!
//! Measured with `cargo run --release --bin epochcache-sim -- --all` (see `HITRATIO.md`), on the
//! six LIRS traces and ten synthetic workloads together, never on one alone: a floor of 1% for
//! the small queue cost a point on loops against 0.1%; an admission margin of 0 lost 25 points on
//! lirs-loop; a small-queue ghost a whole shard long let Zipf's middling keys grow the queue (2
//! points on Zipf 0.9); steps of two beat one and four.
//!
//! Issue #4 (every row within 0.5 points of the better of moka and quick_cache, and within 2 of
//! the best of ARC, S3-FIFO and LIRS), measured the same way, with the lirs-sprite curve (100 to
//! 3,000 entries) beside the table; figures are epochcache's hit ratio in percent, or its change
//! in points:
//!
//! - Kept: a small-queue ghost hit enters the main queue instead of the small one: lirs-sprite
//!   +0.23 at 500 entries (76.30 to 76.53), +1.24 at 100, +0.86 at 250, +0.5 at 750 and 1,000, at
//!   most -0.1 from 1,500 up; lirs-multi3 +0.12; no other row moved by more than 0.05. The same
//!   for a main-queue ghost hit cost 47 points on lirs-loop and 12 on lirs-cs (a loop's keys all
//!   return from the main ghost).
//! - Kept: the small queue's ceiling lowered from 80% to 50% of the shard (see the constant), and
//!   the sketch's sample from 20 to 25 additions per tracked entry (see `sketch.rs`). Together
//!   with the ghost change: lirs-sprite 76.77 at 500 entries, 30.87 at 100, 55.39 at 250; the
//!   1,000-entry scan 32.57 (from 32.39); Zipf 0.7 at 10k 21.70 (from 21.52); no row lower by
//!   more than 0.1.
//! - Tried, not kept (each against the rule it would replace, the ghost change in place): an
//!   admission margin of 0 (lirs-loop -8.3, the 1,000-entry scan -1.7) or 2 (scan +0.9 but Zipf
//!   at 100k entries -0.5 to -0.6, lirs-sprite at 100 entries 27.94 against 30.44); a margin
//!   that depends on the victim's estimate (0 below 2 to 4, else 1: Zipf 0.7 at 10k -0.4 to
//!   -1.1, scan -1.0 to -1.7, loop 11k -0.85; 2 above 4 or 8, else 1: lirs-sprite at 500 -0.1 and
//!   -0.6, nothing gained); a rejected victim sent to the back of the main queue instead of kept
//!   at the hand (lirs-ps +0.15, scan at 1,000 -1.5, lirs-sprite -0.7 at 500 and -1.5 at 750);
//!   after a rejection, a second victim tried (lirs-ps +0.07, scan -0.13); a sketch that keeps
//!   its counts when it grows instead of starting empty (Zipf at 100k entries -0.4 to -0.6); a
//!   doorkeeper (a Bloom filter that takes a key's first sighting, cleared at each halving; one or
//!   two bits a counter column: the scan unchanged, lirs-sprite at 500 +0.1 and -0.3); a floor of
//!   1% or 5% for the small queue (lirs-sprite at 500 +1.0 and +1.6, but the 1,000-entry scan
//!   -0.1 and -7.9, lirs-ps -0.05 and -0.4); ghost lengths of 2 or 8 small queues (lirs-sprite
//!   -0.9 at 500; 2_pools -4.2, Zipf 0.7 at 100k -2.2); a main ghost a whole shard long (no row
//!   better by 0.2) or a quarter (6 points lower summed over the table and the curve); promoting
//!   at two reads (3 points lower summed); a sketch twice as wide (scan +0.5, but eight more bytes
//!   an entry) or half as wide (scan -0.5).
//! - Left short: lirs-ps at 500 entries, 56.91 against moka's 57.88, moved by none of the above
//!   by more than 0.3 and none to moka's figure less 0.5 without costing more elsewhere (a
//!   margin of 0 against a victim rated 0, with a rejected victim sent to the back when it is
//!   rated 2 to 6 above the candidate: lirs-ps 57.21 at 2 but the 1,000-entry scan -0.7, 57.12
//!   at 3 to 6 with the scan within 0.1; not counting the reads a key made before the shard
//!   first filled, as moka's sketch does not count them before it is half full, plus that
//!   margin of 0: lirs-ps 58.08, but Zipf at 100k entries -0.5 to -0.9, lirs-multi3 -1.0, loop
//!   11k -0.85; decrementing a victim's estimate every 4 to 64 candidates it repels: the scan
//!   -1.0 to -5.8, lirs-ps no better; halving it every 1/8 to one shard's length of candidates
//!   repelled in a row: lirs-ps 56.92 to 57.13; folding at most three or one of a resident's
//!   reads into the sketch a pass: lirs-ps 56.91 and 57.12, but lirs-sprite at 500 -0.5 and -0.7,
//!   more than 2 below S3-FIFO; a floor of a quarter or an eighth of the shard on the small
//!   queue's ghost: lirs-ps unchanged, the loops -8 to -15; halving the whole sketch after one to
//!   four shards' lengths of candidates rejected in a row: lirs-ps 56.89 to 56.91). Replayed against Belady's optimum,
//!   all but one of the hits lost there are later visits of keys first seen between requests
//!   951 and 1,282, while the cache first fills: the
//!   hand then rests on keys seen once at the start, which the sketch rates 0, and the margin
//!   keeps newcomers seen once from displacing them (moka's sketch rates everything before the
//!   cache was half full 0, and moka has no margin). From request 2,612 on the hand rests on a
//!   key requested eight times among the first 18 requests and never again, rated 7, which
//!   repels all 3,400 later candidates: the sketch, fed by misses alone while the hand is still,
//!   never halves. The scan workload depends on the same stillness (a hot, idle victim repels a
//!   20k-key scan), which is why unsticking the hand costs there.
//!
//! # What the queues hold
//!
//! The queues hold 64-bit hashes, not pointers: an entry can be replaced, removed or expired by
//! any writer without touching the queues, and the evictor finds a popped hash's entry in the
//! table (comparing full hashes), skipping hashes whose entry is gone. A replaced entry keeps its
//! place and inherits its counter. Stale hashes are dropped as they are popped, and the queues are
//! compacted if they ever hold twice as many hashes as the shard has entries.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::entry::Entry;
use super::sketch::FrequencySketch;
use super::table::{SlotRef, Table};
use crate::sync::epoch::Guard;

/// The small queue holds at least this share of a shard's entries, as a divisor: 1/1000.
const MIN_SMALL_SHARE: usize = 1000;
/// The small queue holds at most this share of a shard's entries, in thousandths: half. 80% let
/// it crowd out the main queue on lirs-sprite: 0.80 points lower at 500 entries (2.5 below
/// S3-FIFO) and 1.02 lower at 250, though 0.50 higher at 100; no other row moved.
const MAX_SMALL_PERMILLE: usize = 500;
/// Reads while probationary that promote an entry to the main queue.
const PROMOTE_AT: u64 = 1;
/// How much more popular than the main queue's victim a candidate must be to replace it.
const ADMIT_MARGIN: u64 = 1;
/// How many dropped candidates the small queue's ghost remembers, in small-queue lengths: only a
/// key that returns soon after the small queue dropped it says the queue is too small (in
/// frequency-skewed workloads, rejected keys of middling popularity return too, but later).
const SMALL_GHOST_FACTOR: usize = 4;
/// How many evicted keys the main queue's ghost remembers, as a divisor of the shard's entries:
/// half as many (a whole shard's worth measured no better, at twice the memory).
const MAIN_GHOST_SHARE: usize = 2;
/// How far one ghost hit moves the small queue's target, in entries.
const TARGET_STEP: usize = 2;

/// Hashes are already uniformly random; hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashSetOfHashes = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// Keys recently dropped by one of the queues, by hash, oldest first.
#[derive(Default)]
struct Ghost {
    order: VecDeque<u64>,
    members: HashSetOfHashes,
}

impl Ghost {
    fn insert(&mut self, hash: u64, capacity: usize) {
        if self.members.insert(hash) {
            self.order.push_back(hash);
        }
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front() {
                self.members.remove(&old);
            }
        }
    }

    /// Whether `hash` was evicted recently; forgets it if so.
    fn take(&mut self, hash: u64) -> bool {
        // Its place in `order` stays until it ages out; it is only a hash.
        self.members.remove(&hash)
    }
}

/// Why the policy picked a victim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Expired,
    Evicted,
}

/// The state of one shard's policy.
pub(crate) struct Policy {
    small: VecDeque<u64>,
    main: VecDeque<u64>,
    /// Keys the small queue dropped without admitting them: one that returns says the small
    /// queue is too small.
    small_ghost: Ghost,
    /// Keys the main queue evicted: one that returns says the small queue is too large.
    main_ghost: Ghost,
    /// How many entries the small queue should hold, moved by the ghosts (as in ARC).
    small_target: usize,
    sketch: FrequencySketch,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            small: VecDeque::new(),
            main: VecDeque::new(),
            small_ghost: Ghost::default(),
            main_ghost: Ghost::default(),
            small_target: 1,
            sketch: FrequencySketch::new(64),
        }
    }
}

/// A queued hash whose entry is still linked, found in the table.
struct Found<'g, K, V> {
    hash: u64,
    at: SlotRef,
    entry: &'g Entry<K, V>,
}

impl Policy {
    /// Files a new key (not a replacement): into the main queue if the small queue dropped it
    /// recently (it came back soon: it has earned its place, as in S3-FIFO), else into the small
    /// queue. Every miss that inserts counts as a sighting.
    pub(crate) fn admit(&mut self, hash: u64, live: usize) {
        if live > self.sketch.entries() {
            self.sketch = FrequencySketch::new(live * 2);
        }
        self.sketch.increment(hash);
        let (min, max) = (live / MIN_SMALL_SHARE, live * MAX_SMALL_PERMILLE / 1000);
        let returned_soon = self.small_ghost.take(hash);
        if returned_soon {
            self.small_target = (self.small_target + TARGET_STEP).min(max.max(1));
        } else if self.main_ghost.take(hash) {
            self.small_target = self.small_target.saturating_sub(TARGET_STEP);
        }
        self.small_target = self.small_target.clamp(min.max(1), max.max(1));
        if returned_soon {
            self.main.push_back(hash);
        } else {
            self.small.push_back(hash);
        }
    }

    /// Forgets everything (the shard was cleared).
    pub(crate) fn clear(&mut self) {
        *self = Policy::default();
    }

    /// Hashes queued, stale ones included.
    pub(crate) fn queued(&self) -> usize {
        self.small.len() + self.main.len()
    }

    /// Pops hashes from `main` (or `small`) until one whose entry is linked.
    fn pop_live<'g, K, V>(
        queue: &mut VecDeque<u64>,
        table: &Table<K, V>,
        hash_of: &dyn Fn(&K) -> u64,
        steps: &mut usize,
        guard: &'g Guard,
    ) -> Option<Found<'g, K, V>> {
        while *steps > 0 {
            *steps -= 1;
            let hash = queue.pop_front()?;
            if let Some((at, entry)) = table.find_hash(hash, hash_of, guard) {
                return Some(Found { hash, at, entry });
            }
        }
        None
    }

    /// The main queue's CLOCK victim: entries read since the hand last passed get another round.
    fn main_victim<'g, K, V>(
        &mut self,
        table: &Table<K, V>,
        hash_of: &dyn Fn(&K) -> u64,
        is_expired: &dyn Fn(&Entry<K, V>) -> bool,
        steps: &mut usize,
        guard: &'g Guard,
    ) -> Option<Found<'g, K, V>> {
        loop {
            let found = Self::pop_live(&mut self.main, table, hash_of, steps, guard)?;
            let freq = found.entry.freq();
            if freq == 0 || is_expired(found.entry) {
                return Some(found);
            }
            for _ in 0..freq {
                self.sketch.increment(found.hash);
            }
            found.entry.set_freq(0);
            self.main.push_back(found.hash);
        }
    }

    /// Picks the next victim among `live` entries of `table`, or `None` after `max_steps` hashes
    /// popped without one. `is_expired` decides expiry, `hash_of` hashes a stored key.
    pub(crate) fn victim<K, V>(
        &mut self,
        table: &Table<K, V>,
        live: usize,
        max_steps: usize,
        hash_of: &dyn Fn(&K) -> u64,
        is_expired: &dyn Fn(&Entry<K, V>) -> bool,
        guard: &Guard,
    ) -> Option<(SlotRef, Verdict)> {
        let mut steps = max_steps;
        let verdict = |entry: &Entry<K, V>| {
            if is_expired(entry) {
                Verdict::Expired
            } else {
                Verdict::Evicted
            }
        };
        loop {
            let small_full = self.small.len() >= self.small_target;
            if !small_full && !self.main.is_empty() {
                let v = self.main_victim(table, hash_of, is_expired, &mut steps, guard)?;
                self.main_ghost.insert(v.hash, live / MAIN_GHOST_SHARE);
                return Some((v.at, verdict(v.entry)));
            }
            let c = Self::pop_live(&mut self.small, table, hash_of, &mut steps, guard)?;
            if is_expired(c.entry) {
                return Some((c.at, Verdict::Expired));
            }
            let freq = c.entry.freq();
            if freq >= PROMOTE_AT {
                // Read while probationary: it has proved itself, and its reads count.
                for _ in 0..freq {
                    self.sketch.increment(c.hash);
                }
                c.entry.set_freq(0);
                self.main.push_back(c.hash);
                continue;
            }
            // Not read while probationary: it enters the main queue only if the sketch says it
            // is more popular than the main queue's own victim.
            let main_room = self.main.len() + self.small_target < live;
            if main_room {
                self.main.push_back(c.hash);
                continue;
            }
            let Some(v) = self.main_victim(table, hash_of, is_expired, &mut steps, guard) else {
                return Some((c.at, Verdict::Evicted));
            };
            if is_expired(v.entry)
                || self.sketch.frequency(c.hash) > self.sketch.frequency(v.hash) + ADMIT_MARGIN
            {
                self.main.push_back(c.hash);
                self.main_ghost.insert(v.hash, live / MAIN_GHOST_SHARE);
                return Some((v.at, verdict(v.entry)));
            }
            self.main.push_front(v.hash);
            self.small_ghost
                .insert(c.hash, self.small_target * SMALL_GHOST_FACTOR);
            return Some((c.at, Verdict::Evicted));
        }
    }

    /// Drops stale and duplicate hashes from both queues, keeping their order.
    pub(crate) fn compact<K, V>(
        &mut self,
        table: &Table<K, V>,
        hash_of: &dyn Fn(&K) -> u64,
        guard: &Guard,
    ) {
        let mut seen = HashSetOfHashes::default();
        for queue in [&mut self.small, &mut self.main] {
            queue.retain(|&h| table.find_hash(h, hash_of, guard).is_some() && seen.insert(h));
        }
    }
}

impl std::fmt::Debug for Policy {
    // (the sketch is not shown: it is only counters)
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("small", &self.small.len())
            .field("main", &self.main.len())
            .field("small_target", &self.small_target)
            .finish()
    }
}

#[cfg(all(test, not(epochcache_loom)))]
mod tests {
    use super::*;
    use crate::raw::table::Probe;
    use crate::sync::epoch::{self, Owned};

    fn hash_of(key: &u64) -> u64 {
        key.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// A table and a policy driven the way a shard drives them, single-threaded.
    struct Harness {
        table: Table<u64, u64>,
        policy: Policy,
        live: usize,
        capacity: usize,
    }

    impl Harness {
        fn new(capacity: usize) -> Self {
            Harness {
                table: Table::with_groups(capacity.div_ceil(3)),
                policy: Policy::default(),
                live: 0,
                capacity,
            }
        }

        /// A cache-aside access: a read on a hit, an insert (evicting first if full) on a miss.
        /// Returns the evicted key, if any.
        fn access(&mut self, key: u64) -> Option<u64> {
            let guard = &epoch::pin();
            let hash = hash_of(&key);
            if let Some(entry) = self.table.find(hash, |k| *k == key, guard) {
                entry.record_hit();
                return None;
            }
            let evicted = (self.live == self.capacity).then(|| self.evict());
            let Some(Probe::Vacant(at, _)) = self.table.probe_for_write(hash, |k| *k == key, guard)
            else {
                panic!("the harness table never fills");
            };
            let entry = Owned::new(Entry::new(key, key, 0, 0)).into_shared(guard);
            self.table.occupy(at, hash, entry);
            self.policy.admit(hash, self.live);
            self.live += 1;
            evicted
        }

        fn evict(&mut self) -> u64 {
            let guard = &epoch::pin();
            let never_expired = |_: &Entry<u64, u64>| false;
            let (at, verdict) = self
                .policy
                .victim(
                    &self.table,
                    self.live,
                    10_000,
                    &hash_of,
                    &never_expired,
                    guard,
                )
                .expect("a full cache has a victim");
            assert_eq!(verdict, Verdict::Evicted);
            let (entry, _) = self.table.vacate(at, guard);
            self.live -= 1;
            // SAFETY: single-threaded test: no reader can hold the entry just unlinked.
            unsafe { entry.into_owned() }.key
        }

        fn remove_behind_the_policys_back(&mut self, key: u64) {
            let guard = &epoch::pin();
            let Some(Probe::Found(at, _)) =
                self.table
                    .probe_for_write(hash_of(&key), |k| *k == key, guard)
            else {
                panic!("{key} is resident");
            };
            let (entry, _) = self.table.vacate(at, guard);
            self.live -= 1;
            // SAFETY: single-threaded test: no reader can hold the entry just unlinked.
            drop(unsafe { entry.into_owned() });
        }

        fn resident(&self, key: u64) -> bool {
            self.table
                .find(hash_of(&key), |k| *k == key, &epoch::pin())
                .is_some()
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            // SAFETY: the harness owns its table and no thread reads it any more.
            unsafe { self.table.drop_entries() };
        }
    }

    #[test]
    fn entries_read_while_probationary_are_kept() {
        let mut cache = Harness::new(100);
        (0..100).for_each(|k| _ = cache.access(k));
        (0..10).for_each(|k| _ = cache.access(k)); // hits
        (1_000..1_300).for_each(|k| _ = cache.access(k)); // one-time keys
        assert!(
            (0..10).all(|k| cache.resident(k)),
            "read keys survive 300 one-time keys"
        );
    }

    #[test]
    fn a_candidate_that_returns_soon_grows_the_small_queue() {
        let mut cache = Harness::new(200);
        (0..200).for_each(|k| _ = cache.access(k));
        let before = cache.policy.small_target;
        // Keys that come back right after the small queue drops them: recency matters.
        for round in 0..20u64 {
            for k in 0..40 {
                cache.access(10_000 + round * 7 + k);
            }
        }
        assert!(
            cache.policy.small_target > before,
            "{} -> {}",
            before,
            cache.policy.small_target
        );
    }

    #[test]
    fn a_dropped_candidate_that_returns_soon_enters_the_main_queue() {
        let mut cache = Harness::new(200);
        (0..400).for_each(|k| _ = cache.access(k));
        // Keys read once are in the main queue; a fresh key, never read, is a candidate that the
        // main queue's victims (seen twice) outrank, so the small queue drops it.
        (0..200).for_each(|k| _ = cache.access(k));
        let dropped = (1_000..1_100)
            .find_map(|k| {
                let gone = cache.access(k)?;
                cache
                    .policy
                    .small_ghost
                    .members
                    .contains(&hash_of(&gone))
                    .then_some(gone)
            })
            .expect("the small queue drops an unread candidate");
        let main_before = cache.policy.main.len();
        cache.access(dropped);
        assert_eq!(cache.policy.main.back(), Some(&hash_of(&dropped)));
        assert!(cache.policy.main.len() > main_before);
    }

    #[test]
    fn a_key_evicted_from_main_that_returns_shrinks_the_small_queue() {
        let mut cache = Harness::new(200);
        for k in 0..400 {
            // Every key read once, so that the evicted ones went through the main queue.
            _ = cache.access(k);
            _ = cache.access(k);
        }
        cache.policy.small_target = 100;
        let mut evicted_from_main = None;
        for k in 1_000..2_000 {
            _ = cache.access(k);
            _ = cache.access(k);
            if let Some(gone) = cache.access(k + 1_000_000) {
                if cache.policy.main_ghost.members.contains(&hash_of(&gone)) {
                    evicted_from_main = Some(gone);
                    break;
                }
            }
        }
        let before = cache.policy.small_target;
        cache.access(evicted_from_main.unwrap());
        assert!(
            cache.policy.small_target < before,
            "{} -> {}",
            before,
            cache.policy.small_target
        );
    }

    #[test]
    fn stale_hashes_are_skipped() {
        let mut cache = Harness::new(50);
        (0..50).for_each(|k| _ = cache.access(k));
        for k in 0..10 {
            cache.remove_behind_the_policys_back(k);
        }
        (100..110).for_each(|k| _ = cache.access(k)); // fills the ten free places
        let evicted = cache.access(200).expect("full again");
        assert!(
            evicted >= 10,
            "{evicted} was removed already and cannot be evicted"
        );
        cache.policy.compact(&cache.table, &hash_of, &epoch::pin());
        assert_eq!(
            cache.policy.queued(),
            cache.live,
            "compaction drops stale hashes"
        );
    }
}
