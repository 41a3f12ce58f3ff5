//! ARC, the Adaptive Replacement Cache (Megiddo and Modha, "ARC: A Self-Tuning, Low Overhead
//! Replacement Cache", FAST 2003), written from the paper's description (its Figure 4).
//!
//! With room for `c` entries, ARC keeps four recency lists: T1 (resident, seen once recently),
//! T2 (resident, seen at least twice), and their ghosts B1 and B2 (keys only, recently evicted
//! from T1 and T2). The target size `p` of T1 adapts: a hit in B1 grows it by
//! max(|B2| / |B1|, 1), a hit in B2 shrinks it by max(|B1| / |B2|, 1) (integer division, as
//! most implementations do), clamped to 0..=c. REPLACE evicts T1's least recent key into B1 when
//! |T1| > p, or |T1| = p and the missed key is in B2, and T1 is not empty; otherwise T2's least
//! recent key into B2. |T1| + |B1| ≤ c and |T1| + |T2| + |B1| + |B2| ≤ 2c, as in the paper.
//!
//! Single-threaded, keyed by `u64`, replayed cache-aside: [`Arc::access`] is a `get` and, on a
//! miss, an insert.

use crate::recency::RecencySet;
use crate::replay::Policy;

/// An ARC cache of keys.
#[derive(Debug)]
pub struct Arc {
    /// Room, in entries.
    c: usize,
    /// T1's target size.
    p: usize,
    /// Resident, requested once since entering.
    t1: RecencySet,
    /// Resident, requested at least twice.
    t2: RecencySet,
    /// Ghosts of T1.
    b1: RecencySet,
    /// Ghosts of T2.
    b2: RecencySet,
}

impl Arc {
    /// An empty cache with room for `capacity` entries.
    pub fn new(capacity: usize) -> Arc {
        Arc {
            c: capacity,
            p: 0,
            t1: RecencySet::new(),
            t2: RecencySet::new(),
            b1: RecencySet::new(),
            b2: RecencySet::new(),
        }
    }

    /// Resident entries.
    pub fn len(&self) -> usize {
        self.t1.len() + self.t2.len()
    }

    /// Requests `key`: returns whether it hit, and on a miss admits it.
    pub fn access(&mut self, key: u64) -> bool {
        if self.c == 0 {
            return false;
        }
        // Case I: a hit in T1 or T2 moves the key to T2's top.
        if self.t1.remove(key) || self.t2.contains(key) {
            self.t2.push_top(key);
            return true;
        }
        // Case II: a ghost hit in B1; favour recency.
        if self.b1.contains(key) {
            let delta = (self.b2.len() / self.b1.len()).max(1);
            self.p = (self.p + delta).min(self.c);
            self.replace(false);
            self.b1.remove(key);
            self.t2.push_top(key);
            return false;
        }
        // Case III: a ghost hit in B2; favour frequency.
        if self.b2.contains(key) {
            let delta = (self.b1.len() / self.b2.len()).max(1);
            self.p = self.p.saturating_sub(delta);
            self.replace(true);
            self.b2.remove(key);
            self.t2.push_top(key);
            return false;
        }
        // Case IV: a key in no list.
        let l1 = self.t1.len() + self.b1.len();
        let total = l1 + self.t2.len() + self.b2.len();
        if l1 == self.c {
            if self.t1.len() < self.c {
                self.b1.pop_bottom();
                self.replace(false);
            } else {
                self.t1.pop_bottom();
            }
        } else if total >= self.c {
            if total == 2 * self.c {
                self.b2.pop_bottom();
            }
            self.replace(false);
        }
        self.t1.push_top(key);
        false
    }

    /// The paper's REPLACE: makes room for one entry by moving T1's or T2's least recent key to
    /// its ghost list. Does nothing while the cache has room (the paper calls it only once full).
    fn replace(&mut self, in_b2: bool) {
        if self.len() < self.c {
            return;
        }
        let t1 = self.t1.len();
        if t1 >= 1 && ((in_b2 && t1 == self.p) || t1 > self.p) {
            let victim = self.t1.pop_bottom().expect("T1 is not empty");
            self.b1.push_top(victim);
        } else {
            let victim = self
                .t2
                .pop_bottom()
                .expect("a full cache with an empty T1 fills T2");
            self.b2.push_top(victim);
        }
    }
}

impl Policy for Arc {
    fn with_capacity(capacity: usize) -> Self {
        Arc::new(capacity)
    }
    fn access(&mut self, key: u64) -> bool {
        Arc::access(self, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::check_against_references;

    #[test]
    fn by_hand() {
        let mut a = Arc::new(2);
        // 1, 2 fill T1; 1 again moves to T2.
        assert!(!a.access(1));
        assert!(!a.access(2));
        assert!(a.access(1));
        assert_eq!((a.t1.len(), a.t2.len()), (1, 1));
        // 3: |T1|+|B1| = 1 < c, total = 2 ≥ c: REPLACE with p = 0 evicts T1's 2 into B1.
        assert!(!a.access(3));
        assert!(a.b1.contains(2) && a.t1.contains(3) && a.t2.contains(1));
        // 2 hits the ghost B1: p grows to 1, REPLACE: |T1| = 1 = p, not in B2, so T2's 1 goes
        // to B2; 2 enters T2.
        assert!(!a.access(2));
        assert_eq!(a.p, 1);
        assert!(a.b2.contains(1) && a.t2.contains(2) && a.t1.contains(3));
        // 1 hits the ghost B2: p shrinks to 0, REPLACE evicts T1's 3 (|T1| = 1 > p).
        assert!(!a.access(1));
        assert_eq!(a.p, 0);
        assert!(a.b1.contains(3) && a.t2.contains(1) && a.t2.contains(2));
        assert!(a.access(1) && a.access(2));
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn resists_a_scan_and_stays_in_bounds() {
        // A hot pair requested twice, then a long one-time scan: ARC keeps the pair in T2.
        let mut keys = vec![1, 2, 1, 2];
        keys.extend(100..200);
        keys.extend([1, 2]);
        let mut a = Arc::new(4);
        let mut hits = 0;
        for &k in &keys {
            hits += u64::from(a.access(k));
            assert!(a.len() <= 4);
            assert!(a.t1.len() + a.b1.len() <= 4);
            assert!(a.len() + a.b1.len() + a.b2.len() <= 8);
        }
        assert_eq!(hits, 4);
        assert_eq!(crate::replay::hits::<Arc>(&[7, 7, 7], 0), 0);
    }

    #[test]
    fn invariants_hold_and_opt_bounds_it() {
        check_against_references(|a: &Arc, capacity| {
            assert!(a.len() <= capacity && a.p <= capacity);
            assert!(a.t1.len() + a.b1.len() <= capacity);
            assert!(a.len() + a.b1.len() + a.b2.len() <= 2 * capacity);
        });
    }
}
