//! The eviction policy of a bounded shard: S3-FIFO (a small and a main FIFO queue and a ghost
//! history), driven by the two-bit access counter that readers raise in each entry.
//!
//! # Why this shape
//!
//! A hit must stay one relaxed store (see [`entry`](super::entry)), so the policy can learn only
//! "how often was this entry read since the evictor last looked" from an entry; it cannot move
//! entries on a hit as LRU does. FIFO queues with a per-entry counter need nothing more, and
//! S3-FIFO adds what plain CLOCK lacks: most new entries are read once or never, so they enter a
//! small probationary queue (10% of the shard) and leave it quickly unless read again; entries
//! read while probationary move to the main queue, which evicts with a second chance (CLOCK); and
//! a ghost history of recently evicted probationary keys sends a key that returns soon straight
//! to the main queue, which keeps loops and scans from flushing the frequently used set.
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
use super::table::{SlotRef, Table};
use crate::sync::epoch::Guard;

/// The small queue's share of a shard's entries, as a divisor: 1/10.
const SMALL_SHARE: usize = 10;
/// How many evicted keys the ghost remembers, as a multiple of the shard's entries. Twice the
/// entries keeps a loop up to twice the cache's size recognisable (measured on lirs-loop: 0% hits
/// with 1x, 44% with 2x, worse again with 3x and 4x).
const GHOST_FACTOR: usize = 2;
/// Reads while probationary that promote an entry to the main queue.
const PROMOTE_AT: u64 = 1;

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

/// Keys recently evicted from the small queue, by hash, oldest first.
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

/// The S3-FIFO state of one shard.
#[derive(Default)]
pub(crate) struct Policy {
    small: VecDeque<u64>,
    main: VecDeque<u64>,
    ghost: Ghost,
}

impl Policy {
    /// Files a new key (not a replacement): into the main queue if it was evicted recently, else
    /// into the small queue.
    pub(crate) fn admit(&mut self, hash: u64) {
        if self.ghost.take(hash) {
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

    /// Picks the next victim among `live` entries of `table`, or `None` after `budget` steps
    /// without one (every step pops one hash). `is_expired` decides expiry, `hash_of` hashes a
    /// stored key.
    pub(crate) fn victim<K, V>(
        &mut self,
        table: &Table<K, V>,
        live: usize,
        mut budget: usize,
        hash_of: &dyn Fn(&K) -> u64,
        is_expired: &dyn Fn(&Entry<K, V>) -> bool,
        guard: &Guard,
    ) -> Option<(SlotRef, Verdict)> {
        while budget > 0 {
            budget -= 1;
            let from_small = self.small.len() * SMALL_SHARE >= live.max(1) || self.main.is_empty();
            let queue = if from_small {
                &mut self.small
            } else {
                &mut self.main
            };
            let hash = queue.pop_front()?;
            let Some((at, entry)) = table.find_hash(hash, hash_of, guard) else {
                continue; // removed, replaced under another key's hash, or expired: stale
            };
            if is_expired(entry) {
                return Some((at, Verdict::Expired));
            }
            let freq = entry.freq();
            if from_small {
                if freq >= PROMOTE_AT {
                    entry.set_freq(0);
                    self.main.push_back(hash);
                } else {
                    self.ghost.insert(hash, (live * GHOST_FACTOR).max(16));
                    return Some((at, Verdict::Evicted));
                }
            } else if freq > 0 {
                entry.set_freq(freq - 1);
                self.main.push_back(hash);
            } else {
                return Some((at, Verdict::Evicted));
            }
        }
        None
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
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("small", &self.small.len())
            .field("main", &self.main.len())
            .field("ghost", &self.ghost.order.len())
            .finish()
    }
}
