//! Unit tests of a shard: growth and tombstones, and the bounds on its eviction queues and
//! expiry order under writes that never evict or expire, or whose keys' `Hash` panics.

use super::*;
use crate::raw::table::alloc_entry;
use crate::sync::epoch;

fn hash(key: &u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn insert(shard: &Shard<u64, ()>, key: u64) {
    insert_hashed_by(shard, key, hash);
}

/// Inserts `key` with `hash_of` as the keys' hash.
fn insert_hashed_by(shard: &Shard<u64, ()>, key: u64, hash_of: fn(&u64) -> u64) {
    let guard = epoch::pin();
    let mut state = shard.lock();
    shard.insert(
        &mut state,
        hash_of(&key),
        &mut Some(alloc_entry(Entry::new(key, (), 0, 0))),
        &hash_of,
        &guard,
    );
}

/// A bounded shard of 64 entries, some read, with 64 more keys inserted through evictions,
/// so that both eviction queues hold entries.
fn bounded_and_churned() -> Shard<u64, ()> {
    let shard: Shard<u64, ()> = Shard::new(64, true);
    let guard = epoch::pin();
    for key in 0..128u64 {
        let mut state = shard.lock();
        if Shard::<u64, ()>::live(&state) == 64 {
            assert!(shard
                .evict(&mut state, 256, &hash, 0, None, &guard)
                .is_some());
        }
        drop(state);
        insert(&shard, key);
        if key % 3 == 0 {
            if let Some(entry) = shard.get(hash(&key), |k| *k == key, &guard) {
                entry.record_hit();
            }
        }
    }
    shard
}

#[test]
fn a_hash_that_panics_in_an_eviction_leaves_every_entry_evictable() {
    // The `n`th hash of the eviction panics, for every `n` an eviction reaches; afterwards
    // the shard must still evict every entry it holds (one left in no queue never would).
    for n in 1..=40 {
        let shard = bounded_and_churned();
        let guard = epoch::pin();
        let calls = std::cell::Cell::new(0);
        let bomb = |key: &u64| {
            calls.set(calls.get() + 1);
            assert_ne!(calls.get(), n, "the hash gives up");
            hash(key)
        };
        let mut state = shard.lock();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shard.evict(&mut state, 256, &bomb, 0, None, &guard)
        }));
        while Shard::<u64, ()>::live(&state) > 0 {
            let live = Shard::<u64, ()>::live(&state);
            assert!(
                shard
                    .evict(&mut state, 1_000, &hash, 0, None, &guard)
                    .is_some(),
                "panic at hash {n}: {live} entries left and none evictable"
            );
        }
    }
}

#[test]
fn a_hash_that_panics_in_an_expiry_rebuild_loses_no_deadline() {
    let shard: Shard<u64, ()> = Shard::new(0, false);
    let guard = epoch::pin();
    for key in 0..50u64 {
        let mut state = shard.lock();
        let entry = alloc_entry(Entry::new(key, (), 1_000 + key, 0));
        shard.insert(&mut state, hash(&key), &mut Some(entry), &hash, &guard);
    }
    let calls = std::cell::Cell::new(0);
    let bomb = |key: &u64| {
        calls.set(calls.get() + 1);
        assert_ne!(calls.get(), 20, "the hash gives up");
        hash(key)
    };
    let mut state = shard.lock();
    let table = shard.table(&guard);
    let rebuilt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        state.expiry.rebuild(table, &bomb, &guard)
    }));
    assert!(rebuilt.is_err());
    drop(state);
    shard.validate(&hash).unwrap(); // every deadline still in the expiry order
}

#[test]
fn a_bounded_shard_that_never_evicts_keeps_its_queues_near_its_entries() {
    // Every new key queues its hash; a shard that removes what it inserts never evicts, so
    // only the writes themselves can drop the stale hashes.
    let shard: Shard<u64, ()> = Shard::new(1_000, true);
    let guard = epoch::pin();
    for key in 0..100_000u64 {
        insert(&shard, key);
        let mut state = shard.lock();
        assert!(shard
            .remove(&mut state, hash(&key), |k| *k == key, &guard)
            .is_some());
        let queued = state.policy.as_ref().map_or(0, Policy::queued);
        assert!(
            queued <= 2 + 64 + 1,
            "{queued} hashes queued for 0 entries after {key}"
        );
        if key % 1_000 == 0 {
            drop(state);
            guard.flush();
        }
    }
}

#[test]
fn rewrites_that_never_expire_leave_a_bounded_expiry_order() {
    // Ten keys with a deadline far ahead, rewritten 100,000 times: each rewrite leaves a
    // stale pair, and the sweep each write makes (which finds nothing expired) drops them.
    let shard: Shard<u64, ()> = Shard::new(0, false);
    let guard = epoch::pin();
    let far = u64::MAX / 2;
    for round in 0..100_000u64 {
        let key = round % 10;
        let mut state = shard.lock();
        let entry = alloc_entry(Entry::new(key, (), far, 0));
        shard.insert(&mut state, hash(&key), &mut Some(entry), &hash, &guard);
        shard.sweep_expired(&mut state, 2, 1, &hash, &guard, |_| panic!("none expired"));
        assert!(
            state.expiry.len() <= 2 * 10 + 64 + 1,
            "{} pairs for 10 entries after {round} rewrites",
            state.expiry.len()
        );
        if round % 1_000 == 0 {
            drop(state);
            guard.flush();
        }
    }
}

fn slots(shard: &Shard<u64, ()>) -> usize {
    shard.table(&epoch::pin()).slots()
}

#[test]
fn a_growing_table_stays_between_half_and_seven_eighths_full() {
    let shard = Shard::new(0, false);
    let mut grown = 0;
    for key in 0..50_000u64 {
        let before = slots(&shard);
        insert(&shard, key);
        let (live, after) = (key as usize + 1, slots(&shard));
        assert!(live * 8 <= after * 7, "{live} entries in {after} slots");
        if after != before {
            grown += 1;
            // Grown by about half, not doubled: at least 55% full right after.
            assert!(
                after * 2 < before * 3 + 2 * 7 * GROUP_SLOTS,
                "{before} -> {after}"
            );
            assert!(live * 100 >= after * 55 || live < 100, "{live} in {after}");
        }
    }
    assert!(grown > 10, "grew only {grown} times");
    shard.validate(&hash).unwrap();
}

#[test]
fn a_presized_table_takes_its_capacity_without_a_rebuild_and_is_7_8_full() {
    let shard = Shard::new(10_000, false);
    let at_start = slots(&shard);
    for key in 0..10_000u64 {
        insert(&shard, key);
    }
    assert_eq!(slots(&shard), at_start);
    assert!(
        10_000 * 100 >= at_start * 87,
        "10,000 entries in {at_start} slots"
    );
    shard.validate(&hash).unwrap();
}

/// Inserts and removes a sliding window of `window` fresh keys `ops` times in a shard sized
/// for `capacity`; returns how many rebuilds kept the size, and the largest table, in slots.
fn churn(capacity: usize, window: u64, ops: u64) -> (usize, usize) {
    let shard: Shard<u64, ()> = Shard::new(capacity, false);
    let (mut same_size, mut largest) = (0, 0);
    for next in 0..ops {
        let guard = epoch::pin();
        let mut state = shard.lock();
        let before: *const Table<u64, ()> = shard.table(&guard);
        let slots_before = shard.table(&guard).slots();
        let entry = alloc_entry(Entry::new(next, (), 0, 0));
        shard.insert(&mut state, hash(&next), &mut Some(entry), &hash, &guard);
        if next >= window {
            let old = next - window;
            shard.remove(&mut state, hash(&old), |k| *k == old, &guard);
        }
        let table = shard.table(&guard);
        if !std::ptr::eq(table, before) && table.slots() == slots_before {
            same_size += 1;
        }
        largest = largest.max(table.slots());
    }
    shard.validate(&hash).unwrap();
    (same_size, largest)
}

#[test]
fn churn_just_under_the_growth_point_never_grows_the_table() {
    // 200 entries take 33 groups, 231 slots; the table grows once more than 7/12 of its
    // slots are live, so a window of 133 keys (134 live for a moment) stays just under that
    // while every removal may leave a tombstone. `validate` checks that live entries and
    // tombstones stay within 7/8 of the slots.
    let slots = groups_for(200) * GROUP_SLOTS;
    let window = (slots * 7 / 12 - 1) as u64;
    let (_, largest) = churn(200, window, 100_000);
    assert_eq!(largest, slots, "the table grew under churn");
}

#[test]
fn churn_that_fills_a_table_with_tombstones_rebuilds_it_in_place() {
    // Grown from empty, a window of 295 keys sits just under the growth point of the table
    // it reaches (511 slots), and its tombstones fill that table to 7/8 again and again.
    let (same_size, largest) = churn(0, 295, 100_000);
    assert!(
        same_size > 10,
        "{same_size} same-size rebuilds in {largest} slots"
    );
}

#[test]
fn a_hash_that_panics_as_an_insert_compacts_the_queues_leaves_the_write_undone() {
    // Ten keys stay; others are inserted and removed until the queues are compacted, by a
    // `hash_of` that panics (compaction hashes the live keys its queued hashes lead to). The
    // write must fail with nothing linked: its entry still pending, the shard's counts right.
    let shard: Shard<u64, ()> = Shard::new(1_000, true);
    let guard = epoch::pin();
    (0..10).for_each(|key| insert(&shard, key));
    let bomb = |_: &u64| -> u64 { panic!("the hash gives up") };
    let mut panicked = 0;
    for key in 100..300u64 {
        let mut state = shard.lock();
        let mut pending = Some(alloc_entry(Entry::new(key, (), 0, 0)));
        let inserted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shard.insert(&mut state, hash(&key), &mut pending, &bomb, &guard)
        }));
        if inserted.is_err() {
            panicked += 1;
            assert!(
                pending.is_some(),
                "the write's entry was linked before the panic"
            );
            assert_eq!(Shard::<u64, ()>::live(&state), 10);
            drop(state);
            shard.validate(&hash).unwrap();
            continue;
        }
        assert!(shard
            .remove(&mut state, hash(&key), |k| *k == key, &guard)
            .is_some());
    }
    assert!(panicked > 0, "no insert compacted the queues");
}

#[test]
fn the_expiry_order_is_rebuilt_once_per_eighth_of_the_table_however_empty_it_is() {
    // A table grown for 10,000 entries and then emptied; keys with a deadline are inserted and
    // removed. Each rebuild walks every slot, so it must wait for about an eighth of them in
    // stale pairs: counting live entries instead would rebuild every 64 writes.
    let shard: Shard<u64, ()> = Shard::new(0, false);
    let guard = epoch::pin();
    (0..10_000).for_each(|key| insert(&shard, key));
    let slots = shard.table(&guard).slots();
    for key in 0..10_000u64 {
        let mut state = shard.lock();
        assert!(shard
            .remove(&mut state, hash(&key), |k| *k == key, &guard)
            .is_some());
    }
    let (mut rebuilds, mut before) = (0, 0);
    let writes = 4 * slots as u64;
    for key in 100_000..100_000 + writes {
        let mut state = shard.lock();
        let entry = alloc_entry(Entry::new(key, (), u64::MAX / 2, 0));
        shard.insert(&mut state, hash(&key), &mut Some(entry), &hash, &guard);
        shard.sweep_expired(&mut state, 2, 1, &hash, &guard, |_| panic!("none expired"));
        assert!(shard
            .remove(&mut state, hash(&key), |k| *k == key, &guard)
            .is_some());
        let len = state.expiry.len();
        rebuilds += usize::from(len < before);
        before = len;
    }
    assert!(
        rebuilds <= 4 * 8 + 1,
        "{rebuilds} rebuilds of a {slots}-slot table in {writes} writes"
    );
    assert!(rebuilds > 0, "the stale pairs were never dropped");
}

/// Keys 2k and 2k+1 share a full 64-bit hash (legal: `Hash` need not tell unequal keys apart).
/// A compaction that kept one queued hash per distinct hash left a pair one queue slot for two
/// entries: once the evictor spent it on one twin, the other was in no queue and could never be
/// evicted. Each live entry keeps a queued copy of its hash, and no more: a compaction that kept
/// every copy of a live hash let the twin's removals and rewrites queue one more each time.
#[test]
fn compaction_keeps_a_queue_slot_for_every_entry_sharing_a_hash() {
    fn paired(key: &u64) -> u64 {
        hash(&(key >> 1))
    }
    let shard: Shard<u64, ()> = Shard::new(64, true);
    let guard = epoch::pin();
    let put = |key: u64| insert_hashed_by(&shard, key, paired);
    for key in 0..64u64 {
        put(key);
    }
    // Remove and reinsert one key until the queues are compacted (more than 2 * 64 + 64).
    for _ in 0..200 {
        let mut state = shard.lock();
        assert!(shard
            .remove(&mut state, paired(&0), |k| *k == 0, &guard)
            .is_some());
        drop(state);
        put(0);
        let state = shard.lock();
        let queued = state.policy.as_ref().map_or(0, Policy::queued);
        assert!(
            queued <= 2 * 64 + 64 + 1,
            "{queued} hashes queued for 64 entries"
        );
    }
    let mut state = shard.lock();
    let queued = state.policy.as_ref().map_or(0, Policy::queued);
    while Shard::<u64, ()>::live(&state) > 0 {
        let live = Shard::<u64, ()>::live(&state);
        // (Asked up to three times: a small queue whose hashes are all stale answers `None`
        // once, as it drains, before the main queue is asked.)
        let v = (0..3).find_map(|_| shard.evict(&mut state, 10_000, &paired, 0, None, &guard));
        assert!(
            v.is_some(),
            "{live} entries left and none evictable ({queued} hashes queued)"
        );
    }
}
