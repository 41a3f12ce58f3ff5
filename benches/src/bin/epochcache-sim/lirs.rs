//! LIRS, the Low Inter-reference Recency Set policy (Jiang and Zhang, "LIRS: An Efficient Low
//! Inter-reference Recency Set Replacement Policy to Improve Buffer Cache Performance",
//! SIGMETRICS 2002), written from the paper's description.
//!
//! With room for `c` entries, `max(1, c / 100)` of them (1%) hold resident HIR keys and the rest
//! LIR keys. Every key is LIR, resident HIR or non-resident HIR. The stack S holds LIR keys and
//! HIR keys (resident or not) by recency, its bottom always an LIR key ("stack pruning" removes
//! the HIR keys below the lowest LIR key, forgetting the non-resident ones). The queue Q holds
//! the resident HIR keys, first in first out. On a request of key `x`:
//!
//! - `x` LIR: a hit; `x` moves to S's top, and S is pruned if `x` was its bottom;
//! - `x` resident HIR: a hit; `x` moves to S's top. If it was in S, it becomes LIR and leaves Q,
//!   S's bottom LIR key becomes resident HIR and goes to Q's end, and S is pruned; otherwise it
//!   stays HIR and moves to Q's end;
//! - a miss: while the LIR keys are fewer than their share, `x` becomes LIR (pushed on S); while
//!   the cache has room, it becomes resident HIR (pushed on S, put on Q). Otherwise Q's front
//!   key is evicted (left in S as non-resident HIR if it is there, forgotten if not), and `x`
//!   becomes LIR as above if it was in S (a non-resident HIR key), else resident HIR, pushed on S
//!   and put at Q's end.
//!
//! The non-resident HIR keys in S are not bounded other than by pruning, as in the paper. With
//! room for a single entry there is no LIR key, and the cache holds the last key requested.
//!
//! Single-threaded, keyed by `u64`, replayed cache-aside: [`Lirs::access`] is a `get` and, on a
//! miss, an insert.

use std::collections::HashMap;

use crate::recency::RecencySet;
use crate::replay::Policy;

/// A key's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Low inter-reference recency: resident, in S.
    Lir,
    /// High inter-reference recency, resident: in Q, maybe in S.
    HirResident,
    /// High inter-reference recency, not resident: in S only.
    HirGhost,
}

/// A LIRS cache of keys.
#[derive(Debug)]
pub struct Lirs {
    /// LIR keys' share, in entries.
    lir_cap: usize,
    /// Room, in entries.
    capacity: usize,
    /// Every key the policy knows: those in S or Q.
    status: HashMap<u64, Status>,
    /// The LIR keys held.
    lirs: usize,
    /// The stack S: top is the most recent.
    stack: RecencySet,
    /// The queue Q: its bottom is the front (next to evict), its top the end.
    queue: RecencySet,
}

impl Lirs {
    /// An empty cache with room for `capacity` entries.
    pub fn new(capacity: usize) -> Lirs {
        let hir_cap = (capacity / 100).max(1).min(capacity);
        Lirs {
            lir_cap: capacity - hir_cap,
            capacity,
            status: HashMap::new(),
            lirs: 0,
            stack: RecencySet::new(),
            queue: RecencySet::new(),
        }
    }

    /// Resident entries.
    pub fn len(&self) -> usize {
        self.lirs + self.queue.len()
    }

    /// Requests `key`: returns whether it hit, and on a miss admits it.
    pub fn access(&mut self, key: u64) -> bool {
        if self.capacity == 0 {
            return false;
        }
        if self.lir_cap == 0 {
            // Room for one entry, the HIR one: no LIR set, so the cache is that one key.
            if self.queue.contains(key) {
                return true;
            }
            self.queue.pop_bottom();
            self.queue.push_top(key);
            return false;
        }
        match self.status.get(&key).copied() {
            Some(Status::Lir) => {
                let was_bottom = self.stack.bottom() == Some(key);
                self.stack.push_top(key);
                if was_bottom {
                    self.prune();
                }
                true
            }
            Some(Status::HirResident) => {
                if self.stack.contains(key) {
                    self.stack.push_top(key);
                    self.queue.remove(key);
                    self.promote(key);
                } else {
                    self.stack.push_top(key);
                    self.queue.push_top(key);
                }
                true
            }
            ghost => {
                if self.lirs < self.lir_cap {
                    // Warming up: the first keys fill the LIR set.
                    self.status.insert(key, Status::Lir);
                    self.lirs += 1;
                    self.stack.push_top(key);
                    return false;
                }
                if self.len() >= self.capacity {
                    let victim = self.queue.pop_bottom().expect("a full cache has HIR keys");
                    if self.stack.contains(victim) {
                        self.status.insert(victim, Status::HirGhost);
                    } else {
                        self.status.remove(&victim);
                    }
                }
                self.stack.push_top(key);
                if ghost == Some(Status::HirGhost) {
                    self.promote(key);
                } else {
                    self.status.insert(key, Status::HirResident);
                    self.queue.push_top(key);
                }
                false
            }
        }
    }

    /// Makes `key` (resident, at S's top, not in Q) LIR, and S's bottom LIR key resident HIR at
    /// Q's end; then prunes S.
    fn promote(&mut self, key: u64) {
        self.status.insert(key, Status::Lir);
        self.lirs += 1;
        if self.lirs > self.lir_cap {
            let bottom = self.stack.pop_bottom().expect("S holds LIR keys");
            debug_assert_eq!(self.status.get(&bottom), Some(&Status::Lir));
            self.status.insert(bottom, Status::HirResident);
            self.lirs -= 1;
            self.queue.push_top(bottom);
            self.prune();
        }
    }

    /// Removes HIR keys from S's bottom until an LIR key is there; non-resident ones are
    /// forgotten.
    fn prune(&mut self) {
        while let Some(bottom) = self.stack.bottom() {
            match self.status.get(&bottom) {
                Some(Status::Lir) => break,
                Some(Status::HirGhost) => {
                    self.status.remove(&bottom);
                }
                _ => {}
            }
            self.stack.pop_bottom();
        }
    }
}

impl Policy for Lirs {
    fn with_capacity(capacity: usize) -> Self {
        Lirs::new(capacity)
    }
    fn access(&mut self, key: u64) -> bool {
        Lirs::access(self, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::check_against_references;

    fn status(l: &Lirs, key: u64) -> Option<Status> {
        l.status.get(&key).copied()
    }

    #[test]
    fn by_hand() {
        // c = 3: two LIR keys, one resident HIR key.
        let mut l = Lirs::new(3);
        assert_eq!(l.lir_cap, 2);
        // 1 and 2 become LIR, 3 resident HIR. S (bottom to top): 1 2 3; Q: 3.
        for k in [1, 2, 3] {
            assert!(!l.access(k));
        }
        assert_eq!(status(&l, 3), Some(Status::HirResident));
        // 4: evicts 3 (Q's front; left in S as a ghost), 4 resident HIR. S: 1 2 3 4; Q: 4.
        assert!(!l.access(4));
        assert_eq!(status(&l, 3), Some(Status::HirGhost));
        // 3 again: a miss; evicts 4 (a ghost in S), 3 is in S so it becomes LIR, and S's bottom
        // LIR key 1 becomes resident HIR in Q and leaves S. S: 2 3 4 3 -> 2 4 3; Q: 1.
        assert!(!l.access(3));
        assert_eq!(status(&l, 3), Some(Status::Lir));
        assert_eq!(status(&l, 1), Some(Status::HirResident));
        assert_eq!(status(&l, 4), Some(Status::HirGhost));
        assert!(!l.stack.contains(1) && l.queue.contains(1));
        assert_eq!(l.stack.bottom(), Some(2));
        // 2 hits at the bottom: moves to the top, pruning ghost 4. S: 3 2.
        assert!(l.access(2));
        assert_eq!(l.stack.bottom(), Some(3));
        assert_eq!(status(&l, 4), None);
        // 1 hits as resident HIR not in S: stays HIR, pushed on S. S: 3 2 1; Q: 1.
        assert!(l.access(1));
        assert_eq!(status(&l, 1), Some(Status::HirResident));
        // 1 hits again, now in S: becomes LIR; 3 (bottom) becomes resident HIR. S: 2 1; Q: 3.
        assert!(l.access(1));
        assert_eq!(status(&l, 1), Some(Status::Lir));
        assert_eq!(status(&l, 3), Some(Status::HirResident));
        assert_eq!(l.stack.bottom(), Some(2));
        assert_eq!(l.len(), 3);
        assert!(l.access(3) && l.access(2));
    }

    #[test]
    fn keeps_most_of_a_loop() {
        // A loop of 11 keys in a cache of 10: LRU keeps nothing; LIRS keeps its 9 LIR keys.
        let keys: Vec<u64> = (0..1100).map(|i| i % 11).collect();
        let hits = crate::replay::hits::<Lirs>(&keys, 10);
        assert!(hits >= 9 * 99 - 9, "{hits}");
        let mut l = Lirs::new(10);
        for &k in &keys {
            l.access(k);
            assert!(l.len() <= 10);
        }
        assert_eq!(crate::replay::hits::<Lirs>(&[7, 7, 7], 0), 0);
    }

    #[test]
    fn invariants_hold_and_opt_bounds_it() {
        check_against_references(|l: &Lirs, capacity| {
            assert!(l.lirs <= l.lir_cap && l.len() <= capacity);
            if capacity == 1 {
                return;
            }
            let bottom = l.stack.bottom().expect("S is never empty once used");
            assert_eq!(status(l, bottom), Some(Status::Lir));
            let count = |s| l.status.values().filter(|&&x| x == s).count();
            assert_eq!(count(Status::Lir), l.lirs);
            assert_eq!(count(Status::HirResident), l.queue.len());
            assert!(l.status.len() >= l.stack.len());
        });
    }
}
