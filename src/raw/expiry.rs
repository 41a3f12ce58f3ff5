//! The expiry order of a shard: its entries with a deadline, earliest first.
//!
//! A min-heap of `(deadline, hash)` pairs, so that the writer that needs room, or the expiry
//! sweep each write does, finds the expired entries directly instead of walking the table. Like
//! the eviction queues it holds hashes, not pointers: an entry replaced or removed leaves a stale
//! pair behind, recognised when popped (no entry has that hash any more, or its deadline differs)
//! and dropped. Each write's sweep rebuilds the heap from the table once stale pairs outnumber
//! the live ones by more than an eighth of the table's slots plus 64 (see
//! `Shard::sweep_expired`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::entry::Entry;
use super::table::{SlotRef, Table};
use crate::sync::epoch::Guard;

/// Deadlines of a shard's entries, earliest first.
#[derive(Debug, Default)]
pub(crate) struct ExpiryOrder {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
}

impl ExpiryOrder {
    /// Records that the entry with `hash` expires at `deadline` (as the entry stores it).
    pub(crate) fn push(&mut self, deadline: u64, hash: u64) {
        self.heap.push(Reverse((deadline, hash)));
    }

    /// The earliest recorded deadline (`u64::MAX` if none); it may belong to a stale pair.
    pub(crate) fn earliest(&self) -> u64 {
        self.heap.peek().map_or(u64::MAX, |Reverse((d, _))| *d)
    }

    /// Pairs recorded, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether the pair `(deadline, hash)` is recorded; for `validate`.
    pub(crate) fn contains(&self, deadline: u64, hash: u64) -> bool {
        self.heap
            .iter()
            .any(|&Reverse(pair)| pair == (deadline, hash))
    }

    /// The slot of an entry whose deadline is at or before `now`, if any, dropping stale pairs
    /// on the way.
    pub(crate) fn pop_expired<'g, K, V>(
        &mut self,
        table: &Table<K, V>,
        now: u64,
        hash_of: &dyn Fn(&K) -> u64,
        guard: &'g Guard,
    ) -> Option<(SlotRef, &'g Entry<K, V>)> {
        while let Some(&Reverse((deadline, hash))) = self.heap.peek() {
            if deadline > now {
                return None;
            }
            // Looked up before it is popped, so that a panic in `hash_of` (user code) loses
            // no pair; any entry with this hash and deadline will do (hashes can collide).
            let found = table.find_hash(hash, hash_of, |e, _| e.deadline() == deadline, guard);
            self.heap.pop();
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Rebuilds the heap from the entries of `table`. The new heap replaces the old one only
    /// once every key is hashed: `hash_of` is user code, and a panic halfway must not lose the
    /// deadlines of the entries not yet hashed.
    pub(crate) fn rebuild<K, V>(
        &mut self,
        table: &Table<K, V>,
        hash_of: &dyn Fn(&K) -> u64,
        guard: &Guard,
    ) {
        let pairs: Vec<_> = table
            .linked(guard)
            .filter(|entry| entry.deadline() != 0)
            .map(|entry| Reverse((entry.deadline(), hash_of(&entry.key))))
            .collect();
        self.heap = BinaryHeap::from(pairs);
    }
}
