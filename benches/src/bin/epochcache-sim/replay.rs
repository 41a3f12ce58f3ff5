//! What the simulated published policies ([`crate::arc`], [`crate::s3fifo`], [`crate::lirs`])
//! share: each takes one request at a time on a `u64` key and says whether it hit. So one replay
//! loop serves all three, and one test checks each against the reference policies of
//! [`crate::opt`].

/// A simulated replacement policy.
pub trait Policy {
    /// An empty cache with room for `capacity` entries.
    fn with_capacity(capacity: usize) -> Self;
    /// Requests `key`; whether it was resident.
    fn access(&mut self, key: u64) -> bool;
}

/// The number of hits of `P` with room for `capacity` entries, replaying `keys`.
pub fn hits<P: Policy>(keys: &[u64], capacity: usize) -> u64 {
    let mut cache = P::with_capacity(capacity);
    keys.iter().filter(|&&k| cache.access(k)).count() as u64
}

/// Replays a Zipf 0.8 stream into `P` at several capacities, calling `invariants` with the cache
/// and its capacity after every request, and checks that `P` hits no more often than OPT and at
/// least half as often as LRU.
#[cfg(test)]
pub fn check_against_references<P: Policy>(invariants: impl Fn(&P, usize)) {
    let keys = crate::workload::zipf_keys(0.8, 400, 6_000, 5);
    for capacity in [1, 2, 7, 50, 150] {
        let mut cache = P::with_capacity(capacity);
        let mut hits = 0;
        for &k in &keys {
            hits += u64::from(cache.access(k));
            invariants(&cache, capacity);
        }
        let opt = crate::opt::opt_hits(&keys, &crate::opt::next_uses(&keys), capacity);
        assert!(hits <= opt, "{capacity}: {hits} > {opt}");
        assert!(hits >= crate::opt::lru_hits(&keys, capacity) / 2);
    }
}
