//! A recency-ordered set of keys, the building block of the published policies ([`crate::arc`],
//! [`crate::lirs`]): push a key at the top (most recent), remove any key, read or pop the bottom
//! (least recent).
//!
//! Each key carries the stamp of its last push; a `BTreeMap` from stamp to key keeps the order.
//! Every operation is O(log n), which is plenty for a simulator.

use std::collections::{BTreeMap, HashMap};

/// Keys ordered by when they were last pushed.
#[derive(Debug, Default)]
pub struct RecencySet {
    /// Each key's stamp.
    stamp_of: HashMap<u64, u64>,
    /// Keys by stamp: the first is the bottom (least recent), the last the top.
    by_stamp: BTreeMap<u64, u64>,
    /// The next stamp.
    clock: u64,
}

impl RecencySet {
    /// An empty set.
    pub fn new() -> RecencySet {
        RecencySet::default()
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.stamp_of.len()
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: u64) -> bool {
        self.stamp_of.contains_key(&key)
    }

    /// Puts `key` at the top, moving it there if it was already in the set.
    pub fn push_top(&mut self, key: u64) {
        self.clock += 1;
        if let Some(old) = self.stamp_of.insert(key, self.clock) {
            self.by_stamp.remove(&old);
        }
        self.by_stamp.insert(self.clock, key);
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: u64) -> bool {
        match self.stamp_of.remove(&key) {
            Some(stamp) => {
                self.by_stamp.remove(&stamp);
                true
            }
            None => false,
        }
    }

    /// The least recent key.
    pub fn bottom(&self) -> Option<u64> {
        self.by_stamp.first_key_value().map(|(_, &k)| k)
    }

    /// Removes and returns the least recent key.
    pub fn pop_bottom(&mut self) -> Option<u64> {
        let (_, key) = self.by_stamp.pop_first()?;
        self.stamp_of.remove(&key);
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recency_order() {
        let mut s = RecencySet::new();
        for k in [1, 2, 3] {
            s.push_top(k);
        }
        s.push_top(1);
        assert_eq!(s.bottom(), Some(2));
        assert!(s.remove(2));
        assert!(!s.remove(2));
        assert_eq!(s.pop_bottom(), Some(3));
        assert_eq!(s.pop_bottom(), Some(1));
        assert_eq!(s.pop_bottom(), None);
        assert_eq!(s.len(), 0);
    }
}
