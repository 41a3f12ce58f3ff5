//! The open-addressed table of one shard: groups of seven slots, each slot a pointer to an entry.
//!
//! ```text
//!  group 0                     group 1
//! [tags: u64][ptr x 7]  ...   [tags: u64][ptr x 7]     one 64-byte line a group
//!                |
//!                v
//!           Entry { key, value, meta }                  one allocation an entry
//! ```
//!
//! A lookup hashes the key, starts at the group named by the hash's low bits, compares the
//! group's control word against the key's tag (see [`super::tag`]), follows only the
//! pointers whose tag matches, and stops at the first group with an empty slot. On a hit that is
//! two cache lines: the group and the entry.
//!
//! # Probing
//!
//! A key's home group is the low 32 bits of its hash scaled onto the group count (a multiply and
//! a shift, not a mask), so the count need not be a power of two: a shard grows by half rather
//! than doubling, and a presized table is as large as asked, which keeps a table between 58% and
//! 7/8 full instead of between 44% and 7/8. (The shard index takes the hash's top bits and the tag
//! bits 32..38, so the three are independent; a weak hasher's hashes are spread first, see
//! [`tag::spread`].)
//!
//! From the home group, groups are visited in order, wrapping at the end (linear probing over
//! whole groups: seven slots a step, and the next group is the next cache line). The first `n`
//! steps visit every group exactly once, so a probe that has not met an empty slot has seen the
//! whole table; the table always keeps at least one empty slot (the shard grows it before it
//! fills), so every probe ends.
//!
//! # Concurrency
//!
//! Only the holder of the shard's lock writes a table; readers take no lock. The writer orders
//! its stores so that a reader never follows a control byte to the wrong memory:
//! - insert: store the slot's pointer, then its control byte (both `Release`);
//! - delete: store `TOMBSTONE` in the control byte (`EMPTY` in a group that still has an empty
//!   slot, see [`vacate`](Table::vacate)), then null in the pointer;
//! - replace: swap the pointer; the control byte stays, since the key (and its hash) is the same.
//!
//! A reader loads the control word and then the pointer (both `Acquire`), checks the pointer for
//! null and the key for equality, so a stale control byte costs it at most a wasted compare.
//! Entries are freed only through the epoch collector after they are unlinked, and a table
//! replaced by a resize is freed the same way, so whatever a pinned reader loaded stays valid
//! until it unpins.
//!
//! # The exempt bit
//!
//! A slot's pointer carries one tag bit in its alignment bits, [`EXEMPT`]: the entry weighs
//! nothing under a weight bound alone, so the eviction policy never picks it for size (it still
//! expires). The writer sets it on the allocation before linking it ([`alloc_entry_exempt`]),
//! a resize moves it with the pointer, and only the evictor, under the lock, reads it
//! ([`find_hash`](Table::find_hash), [`evictable`](Table::evictable)); readers
//! dereference through crossbeam-epoch, which masks tag bits, and never look at it. It lives in
//! the link rather than in the entry's metadata word because that word's bits are all taken by
//! the deadline (to 16 ns until 2554) and the access counter.

use std::fmt;
use std::panic::AssertUnwindSafe;

use super::entry::Entry;
use super::tag::{self, Tag, GROUP_SLOTS};
use crate::sync::epoch::{Atomic, Guard, Owned, Shared};
use crate::sync::{AtomicU64, Ordering};

/// The tag bit of a slot's pointer that marks an entry never evicted for size (see the module
/// docs).
pub(crate) const EXEMPT: usize = 1;

/// Whether a linked pointer carries the [`EXEMPT`] bit.
pub(crate) fn is_exempt<K, V>(ptr: Shared<'_, Entry<K, V>>) -> bool {
    ptr.tag() & EXEMPT != 0
}

/// Whether a new entry carries the [`EXEMPT`] bit.
pub(crate) fn is_new_exempt<K, V>(entry: &NewEntry<K, V>) -> bool {
    entry.tag() & EXEMPT != 0
}

/// Seven slots and their control bytes: one cache line.
#[repr(C, align(64))]
pub(crate) struct Group<K, V> {
    tags: AtomicU64,
    slots: [Atomic<Entry<K, V>>; GROUP_SLOTS],
}

impl<K, V> Group<K, V> {
    fn new() -> Self {
        Group {
            tags: AtomicU64::new(0),
            slots: std::array::from_fn(|_| Atomic::null()),
        }
    }
}

/// The walk behind [`Table::occupied`] and [`Table::linked`]: one control word a group, then
/// only the full slots' pointers.
struct FullSlots<'a, 'g, K, V> {
    groups: std::slice::Iter<'a, Group<K, V>>,
    group: Option<&'a Group<K, V>>,
    slots: tag::SlotIter,
    order: Ordering,
    guard: &'g Guard,
}

impl<'g, K: 'g, V: 'g> Iterator for FullSlots<'_, 'g, K, V> {
    type Item = Shared<'g, Entry<K, V>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(group) = self.group {
                for slot in self.slots.by_ref() {
                    let ptr = group.slots[slot].load(self.order, self.guard);
                    if !ptr.is_null() {
                        return Some(ptr);
                    }
                }
            }
            let group = self.groups.next()?;
            self.slots = tag::full_slots(group.tags.load(self.order));
            self.group = Some(group);
        }
    }
}

/// The entries of [`Table::linked`].
pub(crate) struct Linked<'g, K, V>(FullSlots<'g, 'g, K, V>);

impl<'g, K: 'g, V: 'g> Iterator for Linked<'g, K, V> {
    type Item = &'g Entry<K, V>;

    #[inline]
    fn next(&mut self) -> Option<&'g Entry<K, V>> {
        let ptr = self.0.next()?;
        // SAFETY: as in `probe`: entries are freed only through `Guard::defer_destroy` after
        // being unlinked from every table still reachable, and the walk's guard was pinned
        // before this table was loaded, so every entry it points at outlives `'g`; `FullSlots`
        // yields no null pointer.
        Some(unsafe { ptr.deref() })
    }
}

/// Where a slot is: a group index and a slot index within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRef {
    pub(crate) group: usize,
    pub(crate) slot: usize,
}

/// The result of a writer's probe for a key.
pub(crate) enum Probe<'g, K, V> {
    /// The key is in the table, at this slot.
    Found(SlotRef, Shared<'g, Entry<K, V>>),
    /// The key is absent; it would go in this slot, which is empty or a tombstone.
    Vacant(SlotRef, Tag),
}

/// An array of groups, of any length from one up.
pub(crate) struct Table<K, V> {
    groups: Box<[Group<K, V>]>,
}

impl<K, V> Table<K, V> {
    /// A table of `groups` groups (at least one).
    pub(crate) fn with_groups(groups: usize) -> Self {
        Table {
            groups: (0..groups.max(1)).map(|_| Group::new()).collect(),
        }
    }

    /// The number of slots.
    pub(crate) fn slots(&self) -> usize {
        self.groups.len() * GROUP_SLOTS
    }

    /// The number of groups.
    pub(crate) fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The group a probe for `hash` starts at: Lemire's multiply-shift range reduction of the
    /// hash's low 32 bits, below the group count and uniform when the bits are (the cache
    /// spreads a weak hasher's hashes first, see [`spread`](tag::spread)).
    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((u64::from(hash as u32) * self.groups.len() as u64) >> 32) as usize
    }

    /// Reads the home group of `hash` and discards what it read: a writer calls it before taking
    /// its shard's lock, so that the lock is not held across the group's cache miss. A hint only:
    /// it changes nothing, so loom models skip it rather than explore its interleavings.
    #[inline]
    pub(crate) fn warm(&self, hash: u64) {
        #[cfg(not(epochcache_loom))]
        std::hint::black_box(self.groups[self.home(hash)].tags.load(Ordering::Relaxed));
        #[cfg(epochcache_loom)]
        let _ = hash;
    }

    /// The groups a probe for `hash` visits, in order; every group once.
    #[inline]
    fn probe_seq(&self, hash: u64) -> impl Iterator<Item = usize> {
        let n = self.groups.len();
        let mut pos = self.home(hash);
        (0..n).map(move |_| {
            let at = pos;
            pos += 1;
            if pos == n {
                pos = 0;
            }
            at
        })
    }

    /// The one probe loop: visits, in probe order, every entry whose tag matches `hash`, until
    /// `visit` returns something or a group with an empty slot ends the probe. `on_group` sees
    /// each group's control word before its entries. Readers load with `Acquire`; writers, who
    /// hold the shard lock, with `Relaxed`.
    #[inline]
    fn probe<'g, R>(
        &self,
        hash: u64,
        order: Ordering,
        guard: &'g Guard,
        mut on_group: impl FnMut(usize, u64),
        mut visit: impl FnMut(SlotRef, Shared<'g, Entry<K, V>>, &'g Entry<K, V>) -> Option<R>,
    ) -> Option<R>
    where
        K: 'g,
        V: 'g,
    {
        let tag = Tag::full(hash);
        for g in self.probe_seq(hash) {
            let group = &self.groups[g];
            let word = group.tags.load(order);
            on_group(g, word);
            for slot in tag::matching(word, tag) {
                let ptr = group.slots[slot].load(order, guard);
                // SAFETY: entries are freed only through `Guard::defer_destroy` after being
                // unlinked from every table still reachable (invariant of `Shard`), and `guard`
                // was pinned before this table was loaded, so the entry outlives `'g`.
                if let Some(entry) = unsafe { ptr.as_ref() } {
                    if let Some(found) = visit(SlotRef { group: g, slot }, ptr, entry) {
                        return Some(found);
                    }
                }
            }
            if tag::has_empty(word) {
                return None;
            }
        }
        None
    }

    /// The entry whose key satisfies `eq`, if any: the reader's lookup. Takes no lock.
    #[inline]
    pub(crate) fn find<'g>(
        &'g self,
        hash: u64,
        mut eq: impl FnMut(&K) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g Entry<K, V>> {
        self.probe(
            hash,
            Ordering::Acquire,
            guard,
            |_, _| {},
            |_, _, entry| eq(&entry.key).then_some(entry),
        )
    }

    /// The first entry whose key hashes to exactly `hash` and that `wanted` accepts (given the
    /// entry and whether its link carries the [`EXEMPT`] bit), and its slot: how the eviction
    /// policy and the expiry order find the entry of a queued hash (two keys may share a full
    /// hash). Call with the shard lock held.
    pub(crate) fn find_hash<'g>(
        &self,
        hash: u64,
        hash_of: &dyn Fn(&K) -> u64,
        wanted: impl Fn(&Entry<K, V>, bool) -> bool,
        guard: &'g Guard,
    ) -> Option<(SlotRef, &'g Entry<K, V>)> {
        self.probe(
            hash,
            Ordering::Relaxed,
            guard,
            |_, _| {},
            |at, ptr, entry| {
                (wanted(entry, is_exempt(ptr)) && hash_of(&entry.key) == hash)
                    .then_some((at, entry))
            },
        )
    }

    /// The writer's probe: where `eq`'s key is, or where it would go (the first empty or
    /// tombstone slot on the probe sequence). Call with the shard lock held.
    pub(crate) fn probe_for_write<'g>(
        &self,
        hash: u64,
        mut eq: impl FnMut(&K) -> bool,
        guard: &'g Guard,
    ) -> Option<Probe<'g, K, V>> {
        let mut vacant = None;
        let note_vacant = |g: usize, word: u64| {
            if vacant.is_none() {
                vacant = tag::first_vacant(word)
                    .map(|slot| (SlotRef { group: g, slot }, tag::tag_at(word, slot)));
            }
        };
        let found = self.probe(
            hash,
            Ordering::Relaxed,
            guard,
            note_vacant,
            |at, ptr, entry| eq(&entry.key).then_some(Probe::Found(at, ptr)),
        );
        found.or_else(|| vacant.map(|(at, was)| Probe::Vacant(at, was)))
    }

    /// Publishes `entry` in a vacant slot with its full tag: pointer first, then tag.
    pub(crate) fn occupy(&self, at: SlotRef, hash: u64, entry: Shared<'_, Entry<K, V>>) {
        let group = &self.groups[at.group];
        group.slots[at.slot].store(entry, Ordering::Release);
        let word = group.tags.load(Ordering::Relaxed);
        group.tags.store(
            tag::with_tag(word, at.slot, Tag::full(hash)),
            Ordering::Release,
        );
    }

    /// Puts `entry` in place of the one in an occupied slot and returns the old one.
    pub(crate) fn replace<'g>(
        &self,
        at: SlotRef,
        entry: Shared<'g, Entry<K, V>>,
        guard: &'g Guard,
    ) -> Shared<'g, Entry<K, V>> {
        self.groups[at.group].slots[at.slot].swap(entry, Ordering::AcqRel, guard)
    }

    /// Unlinks the entry of an occupied slot and returns it, which the caller must retire, with
    /// the control byte written: EMPTY if the group still has an empty slot, else TOMBSTONE.
    ///
    /// EMPTY is safe in a group that still has an empty slot. A slot becomes empty only in a
    /// rebuild or by this rule, which needs an empty slot already there, so a group with one has
    /// never been full since the table was built. An insert that reached such a group landed in
    /// it, so no entry lies beyond it on a probe sequence through it, and every probe stops there
    /// anyway. Only a group that once filled up needs a tombstone. This keeps tombstones, and so
    /// same-size rebuilds, rare. The control byte is written first, then the pointer is nulled.
    pub(crate) fn vacate<'g>(
        &self,
        at: SlotRef,
        guard: &'g Guard,
    ) -> (Shared<'g, Entry<K, V>>, Tag) {
        let group = &self.groups[at.group];
        let word = group.tags.load(Ordering::Relaxed);
        let freed = if tag::has_empty(word) {
            Tag::EMPTY
        } else {
            Tag::TOMBSTONE
        };
        group
            .tags
            .store(tag::with_tag(word, at.slot, freed), Ordering::Release);
        let entry = group.slots[at.slot].swap(Shared::null(), Ordering::AcqRel, guard);
        (entry, freed)
    }

    /// Puts an entry into a table nobody else sees yet (a resize target): the first vacant slot
    /// on its probe sequence.
    pub(crate) fn place_unpublished(&self, hash: u64, entry: Shared<'_, Entry<K, V>>) {
        for g in self.probe_seq(hash) {
            let word = self.groups[g].tags.load(Ordering::Relaxed);
            if let Some(slot) = tag::first_vacant(word) {
                self.occupy(SlotRef { group: g, slot }, hash, entry);
                return;
            }
        }
        unreachable!("a resize target always has room for every live entry");
    }

    /// The pointer of every occupied slot, in table order. Call with the shard lock held.
    pub(crate) fn occupied<'a, 'g>(
        &'a self,
        guard: &'g Guard,
    ) -> impl Iterator<Item = Shared<'g, Entry<K, V>>> + 'a
    where
        'g: 'a,
        K: 'g,
        V: 'g,
    {
        self.full_slots(Ordering::Relaxed, guard)
    }

    /// The non-null pointer of every slot whose control byte is full, group by group, loaded
    /// with `order` (control word, then pointer, as a probe loads them).
    fn full_slots<'a, 'g>(&'a self, order: Ordering, guard: &'g Guard) -> FullSlots<'a, 'g, K, V>
    where
        K: 'g,
        V: 'g,
    {
        FullSlots {
            groups: self.groups.iter(),
            group: None,
            slots: tag::full_slots(0),
            order,
            guard,
        }
    }

    /// Every entry linked in this table, read as a reader probes: takes no lock (the expiry
    /// order's rebuild, under the shard lock, uses it too).
    ///
    /// Each slot is read once, so an entry linked in this table for the whole walk is yielded
    /// exactly once (a replacement in its slot yields the old entry or the new one); one linked
    /// or unlinked during the walk may or may not be.
    pub(crate) fn linked<'g>(&'g self, guard: &'g Guard) -> Linked<'g, K, V> {
        Linked(self.full_slots(Ordering::Acquire, guard))
    }

    /// Every linked entry the policy may evict for size (no [`EXEMPT`] bit). Call with the shard
    /// lock held.
    pub(crate) fn evictable<'g>(
        &'g self,
        guard: &'g Guard,
    ) -> impl Iterator<Item = &'g Entry<K, V>> {
        self.full_slots(Ordering::Relaxed, guard)
            .filter(|&ptr| !is_exempt(ptr))
            // SAFETY: as in `Linked`: the lock holder's guard was pinned before this table was
            // loaded, entries are freed only after being unlinked, and `FullSlots` yields no
            // null pointer.
            .map(|ptr| unsafe { ptr.deref() })
    }

    /// The slot on `hash`'s probe sequence that holds exactly `target` (compared by address,
    /// so no key's `Eq` runs), if it is still linked here. Call with the shard lock held.
    pub(crate) fn slot_of(
        &self,
        hash: u64,
        target: &Entry<K, V>,
        guard: &Guard,
    ) -> Option<SlotRef> {
        self.probe(
            hash,
            Ordering::Relaxed,
            guard,
            |_, _| {},
            |at, _, entry| std::ptr::eq(entry, target).then_some(at),
        )
    }

    /// The control word of group `g` and its seven pointers, for `validate`.
    pub(crate) fn group_state<'g>(
        &self,
        g: usize,
        guard: &'g Guard,
    ) -> (u64, [Shared<'g, Entry<K, V>>; GROUP_SLOTS]) {
        let group = &self.groups[g];
        let word = group.tags.load(Ordering::Relaxed);
        (
            word,
            std::array::from_fn(|s| group.slots[s].load(Ordering::Relaxed, guard)),
        )
    }

    /// Drops every entry still linked in this table, all of them even if a key's or a value's
    /// `Drop` panics: the first panic is returned, for the caller to resume once it is done (as
    /// a `Vec` does), and any later one is dropped.
    ///
    /// # Safety
    ///
    /// - No other thread can reach this table or its entries any more (the cache is being
    ///   dropped), and no entry of it is also retired or linked in another live table.
    pub(crate) unsafe fn drop_entries(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        // SAFETY: the caller guarantees exclusive access, so the unprotected guard is enough.
        let guard = unsafe { crate::sync::epoch::unprotected() };
        let mut first_panic = None;
        for group in self.groups.iter() {
            for slot in &group.slots {
                let ptr = slot.swap(Shared::null(), Ordering::Relaxed, guard);
                if !ptr.is_null() {
                    // SAFETY: by the caller's guarantee this table holds the only link to the
                    // entry, and the slot was emptied above, so it is dropped exactly once, here.
                    let owned = unsafe { ptr.into_owned() };
                    let dropped = std::panic::catch_unwind(AssertUnwindSafe(move || drop(owned)));
                    if let Err(payload) = dropped {
                        first_panic.get_or_insert(payload);
                    }
                }
            }
            group.tags.store(0, Ordering::Relaxed);
        }
        first_panic
    }
}

impl<K, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("groups", &self.groups.len())
            .finish()
    }
}

/// An entry allocated for a write and not yet linked: dropping it frees it at once.
pub(crate) type NewEntry<K, V> = Owned<Entry<K, V>>;

/// A new entry, allocated.
pub(crate) fn alloc_entry<K, V>(entry: Entry<K, V>) -> NewEntry<K, V> {
    Owned::new(entry)
}

/// A new entry, allocated, that the eviction policy will never pick for size: its pointer
/// carries the [`EXEMPT`] bit into the table.
pub(crate) fn alloc_entry_exempt<K, V>(entry: Entry<K, V>) -> NewEntry<K, V> {
    Owned::new(entry).with_tag(EXEMPT)
}

#[cfg(all(test, not(epochcache_loom)))]
mod tests {
    use super::super::tag::spread;
    use super::*;

    /// Hashes a weak hasher gives: small integers as themselves, and the same shifted into the
    /// high half (or to the very top), where the raw low or high bits are all alike.
    type Family = (&'static str, fn(u64) -> u64);

    fn weak_hash_families() -> [Family; 4] {
        [
            ("identity", |k| k),
            ("shifted by 32", |k| k << 32),
            ("shifted by 50", |k| k << 50),
            ("equal halves", |k| k << 32 | k),
        ]
    }

    /// Each family spreads over the home groups, the tags and the shards (the spread hash's top
    /// three bits, as `shard_index` takes them for eight shards). Unspread, the identity family
    /// put all 12,000 keys in group 0 with one tag and in shard 0, and probes grew with the
    /// table: quadratic inserts; spread by one fold and a multiply only, the equal halves did.
    #[test]
    fn weak_hashes_spread_over_groups_tags_and_shards() {
        let table: Table<u64, ()> = Table::with_groups(2048);
        let keys = 12_000;
        for (family, hash_of) in weak_hash_families() {
            let mut per_group = vec![0u32; table.group_count()];
            let mut tags = [false; 128];
            let mut per_shard = [0u32; 8];
            for k in 0..keys {
                // As the cache hashes a key when its hasher is not ahash.
                let hash = spread(hash_of(k));
                per_group[table.home(hash)] += 1;
                tags[usize::from(Tag::full(hash).0 & 0x7f)] = true;
                per_shard[(hash >> 61) as usize] += 1;
            }
            let mean = keys as u32 / table.group_count() as u32;
            let fullest = per_group.iter().copied().max().unwrap_or(0);
            // A random hash's fullest group holds about 16 here; unspread, one held all 12,000.
            assert!(
                fullest <= 6 * mean,
                "{family}: a home group of {fullest} keys"
            );
            let tag_values = tags.iter().filter(|&&seen| seen).count();
            assert!(tag_values >= 100, "{family}: {tag_values} tag values");
            assert!(
                per_shard.iter().all(|&n| n >= keys as u32 / 16),
                "{family}: shards {per_shard:?}"
            );
        }
    }
}
