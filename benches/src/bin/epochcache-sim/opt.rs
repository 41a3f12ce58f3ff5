//! Belady's optimum (OPT, MIN) and a plain LRU: the two reference policies, simulated directly
//! on the key sequence rather than through a cache crate.
//!
//! OPT knows the future: on a miss with a full cache it evicts the resident key whose next
//! request is furthest away, and it does not admit the missed key at all when that key's own
//! next request is no sooner (admitting and evicting it at once). No online policy can do
//! better, so the distance from a cache's hit ratio to OPT's is the room left.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// "Never requested again".
const NEVER: usize = usize::MAX;

/// For each position of `keys`, the position of the next request of the same key, or [`NEVER`].
pub fn next_uses(keys: &[u64]) -> Vec<usize> {
    let mut next = vec![NEVER; keys.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, &k) in keys.iter().enumerate().rev() {
        if let Some(later) = seen.insert(k, i) {
            next[i] = later;
        }
    }
    next
}

/// The number of hits of Belady's optimum with room for `capacity` keys; `next` is
/// [`next_uses`] of `keys`.
///
/// The resident keys sit in a max-heap by next use. A hit pushes the key again with its new next
/// use and leaves the old heap entry stale; stale entries are skipped when they surface, and the
/// heap is rebuilt from the resident set whenever they outnumber the live ones three to one.
pub fn opt_hits(keys: &[u64], next: &[usize], capacity: usize) -> u64 {
    assert_eq!(keys.len(), next.len());
    if capacity == 0 {
        return 0;
    }
    // No more keys are ever resident than there are requests: a larger size reserves no more.
    let room = capacity.min(keys.len());
    let mut resident: HashMap<u64, usize> = HashMap::with_capacity(room + 1);
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::with_capacity(room * 4 + 16);
    let mut hits = 0;
    for (&key, &next_use) in keys.iter().zip(next) {
        if let Some(slot) = resident.get_mut(&key) {
            hits += 1;
            *slot = next_use;
            heap.push((next_use, key));
            if heap.len() > capacity * 4 + 16 {
                heap = resident.iter().map(|(&k, &n)| (n, k)).collect();
            }
            continue;
        }
        if resident.len() == capacity {
            let (furthest, victim) = loop {
                let &(n, k) = heap.peek().expect("a full cache has heap entries");
                if resident.get(&k) == Some(&n) {
                    break (n, k);
                }
                heap.pop();
            };
            if next_use >= furthest {
                continue; // Bypass: the missed key is needed no sooner than any resident.
            }
            heap.pop();
            resident.remove(&victim);
        }
        resident.insert(key, next_use);
        heap.push((next_use, key));
    }
    hits
}

/// The number of hits of a least-recently-used cache with room for `capacity` keys.
pub fn lru_hits(keys: &[u64], capacity: usize) -> u64 {
    if capacity == 0 {
        return 0;
    }
    let mut stamp_of: HashMap<u64, u64> = HashMap::with_capacity(capacity.min(keys.len()) + 1);
    let mut by_stamp: BTreeMap<u64, u64> = BTreeMap::new();
    let mut hits = 0;
    for (now, &key) in (0u64..).zip(keys) {
        match stamp_of.entry(key) {
            Entry::Occupied(mut e) => {
                hits += 1;
                by_stamp.remove(e.get());
                e.insert(now);
            }
            Entry::Vacant(e) => {
                e.insert(now);
            }
        }
        by_stamp.insert(now, key);
        if by_stamp.len() > capacity {
            let (_, old) = by_stamp.pop_first().expect("over capacity");
            stamp_of.remove(&old);
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(keys: &[u64], capacity: usize) -> u64 {
        opt_hits(keys, &next_uses(keys), capacity)
    }

    #[test]
    fn next_uses_by_hand() {
        assert_eq!(next_uses(&[1, 2, 1, 1, 3]), [2, NEVER, 3, NEVER, NEVER]);
    }

    #[test]
    fn opt_by_hand() {
        // 1 2 | 3 bypassed (needed after 1 and 2) | 1 hit, 2 hit | 3 miss.
        assert_eq!(opt(&[1, 2, 3, 1, 2, 3], 2), 2);
        // 3 is never needed again: bypassed, so 1 and 2 both hit after it.
        assert_eq!(opt(&[1, 2, 1, 3, 1, 2], 2), 3);
        // 1 2 3 | 4 evicts 3 (needed last) | 1 2 hit | 3 miss evicts 1 or 2 ... | 4 hit.
        assert_eq!(opt(&[1, 2, 3, 4, 1, 2, 4, 3], 3), 3);
        assert_eq!(opt(&[1, 1, 1], 0), 0);
        // A loop of 5 keys in a cache of 4: OPT keeps 3 and rotates one slot.
        let lp: Vec<u64> = (0..50).map(|i| i % 5).collect();
        assert!(opt(&lp, 4) >= 30, "{}", opt(&lp, 4));
    }

    /// The most hits any policy can get on `keys` (each below 8) with room for `capacity`: an
    /// exhaustive search over the resident sets, a miss either admitting the key (evicting any
    /// resident one when full) or bypassing it, as [`opt_hits`] may.
    fn exhaustive_best(keys: &[u64], capacity: usize) -> u64 {
        // best[set] = the most hits from the current position on, holding `set` (a bitmask).
        let mut best = vec![0u64; 256];
        for &k in keys.iter().rev() {
            let bit = 1usize << k;
            let next = best.clone();
            for (set, slot) in best.iter_mut().enumerate() {
                if (set.count_ones() as usize) > capacity {
                    continue;
                }
                *slot = if set & bit != 0 {
                    1 + next[set]
                } else if (set.count_ones() as usize) < capacity {
                    next[set].max(next[set | bit])
                } else {
                    (0..8)
                        .filter(|v| set & (1 << v) != 0)
                        .map(|v| next[(set & !(1 << v)) | bit])
                        .fold(next[set], u64::max)
                };
            }
        }
        best[0]
    }

    #[test]
    fn opt_equals_an_exhaustive_search_on_small_traces() {
        // The hand-computed loop: 5 keys in turn, room for 4. The first round misses 5 times;
        // after it, each round of 5 requests misses once (the evicted or bypassed key is the one
        // needed last), so 50 requests hit 50 - 5 - 9 = 36 times.
        let lp: Vec<u64> = (0..50).map(|i| i % 5).collect();
        assert_eq!(exhaustive_best(&lp, 4), 36);
        assert_eq!(opt(&lp, 4), 36);
        // Random traces over 3 to 7 keys (xorshift: the same every run).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..300 {
            let alphabet = 3 + round % 5;
            let len = 5 + round % 40;
            let keys: Vec<u64> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % alphabet as u64
                })
                .collect();
            for capacity in 1..alphabet {
                assert_eq!(
                    opt(&keys, capacity),
                    exhaustive_best(&keys, capacity),
                    "{keys:?} at {capacity}"
                );
            }
        }
    }

    #[test]
    fn opt_bounds_lru_and_lru_by_hand() {
        assert_eq!(lru_hits(&[1, 2, 3, 1, 2, 3], 2), 0);
        assert_eq!(lru_hits(&[1, 2, 1, 3, 1, 2], 2), 2);
        let keys = crate::workload::zipf_keys(0.9, 500, 20_000, 3);
        for capacity in [1, 10, 100, 600] {
            assert!(opt(&keys, capacity) >= lru_hits(&keys, capacity));
        }
        assert_eq!(opt(&keys, 600), lru_hits(&keys, 600));
    }
}
