//! Loom models of the engine, `ShardedCache` (with one shard in all but one model), driven
//! through its public API, so that loom explores the interleavings of the real table code: its
//! atomics and shard locks are loom's under `--cfg epochcache_loom`, and so are
//! crossbeam-epoch's. The loader's and the separate-body cache's models are in
//! `loader_and_body.rs`; what both files share is in this package's library.
//!
//! Every value is a heap `String` (or, where drops are counted, a `Tracked` holding one) whose
//! contents the readers check, so that a read of an entry the epoch collector already freed
//! shows up under AddressSanitizer (see the README). Writers flush their epoch bag after they
//! retire something, and `crossbeam_sanitize` makes the collector free garbage eagerly, so frees
//! really happen inside these small models.
//!
//! Each model has two threads and two or three operations; `LOOM_MAX_PREEMPTIONS` bounds the
//! search (2 in `tests/all.sh`, and 2 when unset), except that the resize model and the walk
//! racing a resize always run with at least 3.

#![cfg(epochcache_loom)]

use std::time::Duration;

use epochcache::{CacheError, MockClock, ShardedCache};
use epochcache_loom_tests::{
    builder, cache, collect_all_garbage, flush, model, model_with_at_least, model_with_exactly,
    on_another_thread, s, Cache, Counts, ShardByParity, Tracked,
};
use loom::sync::Arc;
use loom::thread;

/// Model 1: a reader racing an insert that replaces the value of its key sees the old value or
/// the new one, intact, and once it saw the new one it never sees the old one again.
#[test]
fn get_racing_a_replacing_insert() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        cache.insert(1, s("old")).unwrap();

        let writer = on_another_thread(&cache, 2, move |cache| {
            cache.insert(1, s("new")).unwrap();
        });

        let first = cache.get(&1);
        let second = cache.get(&1);
        for seen in [&first, &second] {
            let seen = seen.as_deref();
            assert!(
                seen == Some("old") || seen == Some("new"),
                "read {seen:?} while key 1 held \"old\" then \"new\""
            );
        }
        assert!(
            !(first.as_deref() == Some("new") && second.as_deref() == Some("old")),
            "the value went back from \"new\" to \"old\""
        );

        writer.join().unwrap();
        assert_eq!(cache.get(&1).as_deref(), Some("new"));
        assert_eq!(cache.len(), 1);
        cache.validate().unwrap();
    });
}

/// Model 2: a reader racing a remove sees the value, intact, or nothing.
#[test]
fn get_racing_remove() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        cache.insert(1, s("one")).unwrap();

        let writer = on_another_thread(&cache, 2, move |cache| {
            assert!(cache.remove(&1));
        });

        let seen = cache.get_with(&1, |v| v.clone());
        assert!(
            seen.is_none() || seen.as_deref() == Some("one"),
            "read {seen:?} while key 1 was being removed"
        );

        writer.join().unwrap();
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.len(), 0);
        cache.validate().unwrap();
    });
}

/// Model 3: a reader racing a table rebuild always finds a key that was there before it, with
/// its value. Six entries fill the one group; the seventh insert rebuilds the table into a
/// larger one, publishes it and retires the old one while the reader may still be probing it.
///
/// Runs with at least 3 preemptions: the window where the reader has loaded the old table's
/// pointer, the writer publishes the new table and retires the old one, and the reader then
/// reads the old one, takes three. With two, loom never runs a read of the old table after its
/// retirement (a rebuild that freed the old table in place passed 856 executions at 2 and
/// failed under AddressSanitizer at 3).
#[test]
fn get_racing_a_resize() {
    model_with_at_least(3, || {
        let cache = one_group_full();

        let writer = on_another_thread(&cache, 2, move |cache| {
            cache.insert(6, s("v6")).unwrap();
        });

        for k in [0, 5] {
            let seen = cache.get(&k);
            assert_eq!(
                seen.as_deref(),
                Some(format!("v{k}").as_str()),
                "key {k} during the rebuild"
            );
        }

        writer.join().unwrap();
        assert_eq!(cache.len(), 7);
        for k in 0..7 {
            assert_eq!(cache.get(&k), Some(format!("v{k}")));
        }
        cache.validate().unwrap();
    });
}

/// The engine with keys 0 to 5 holding "v0" to "v5": its one group full, so that the next
/// insert rebuilds the table (models 3 and 18).
fn one_group_full() -> Arc<Cache<String>> {
    let cache = Arc::new(cache::<String>(None));
    for k in 0..6 {
        cache.insert(k, format!("v{k}")).unwrap();
    }
    cache
}

/// Model 4: two writers on one shard, one key in common and one key each, with the table
/// already holding four entries so that the last of the three new keys rebuilds it. Afterwards
/// the shard's invariants hold and the contents are one of the two serial outcomes.
#[test]
fn two_writers_on_one_shard() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        for k in 10..14 {
            cache.insert(k, format!("v{k}")).unwrap();
        }

        let other = on_another_thread(&cache, 0, move |cache| {
            cache.insert(1, s("a2")).unwrap();
            cache.insert(3, s("c")).unwrap();
        });
        cache.insert(1, s("a1")).unwrap();
        cache.insert(2, s("b")).unwrap();
        other.join().unwrap();

        cache.validate().unwrap();
        assert_eq!(cache.len(), 7);
        let one = cache.get(&1);
        assert!(
            matches!(one.as_deref(), Some("a1" | "a2")),
            "key 1 holds {one:?}"
        );
        assert_eq!(cache.get(&2).as_deref(), Some("b"));
        assert_eq!(cache.get(&3).as_deref(), Some("c"));
        for k in 10..14 {
            assert_eq!(cache.get(&k), Some(format!("v{k}")));
        }
    });
}

/// Model 5: every value is dropped exactly once, whichever way it leaves: replaced, removed,
/// evicted (the cache holds at most two entries) or still linked when the cache is dropped.
/// The values are made before the threads start, so counting them adds no interleavings.
#[test]
fn every_value_is_dropped_exactly_once() {
    model(|| {
        let counts = Arc::new(Counts::default());
        let cache = Arc::new(cache::<Tracked>(Some(2)));
        cache.insert(1, Tracked::new("one", &counts)).unwrap();
        let (one_b, three) = (
            Tracked::new("one-b", &counts),
            Tracked::new("three", &counts),
        );
        let two = Tracked::new("two", &counts);

        let other = on_another_thread(&cache, 0, move |cache| {
            cache.insert(1, one_b).unwrap(); // replaces, or re-inserts if 1 was evicted
            cache.insert(3, three).unwrap(); // evicts when the cache is full
        });
        cache.insert(2, two).unwrap();
        cache.remove(&1);
        other.join().unwrap();

        cache.validate().unwrap();
        assert!(cache.len() <= 2);
        drop(cache);
        assert_eq!(counts.created(), 4);
        counts.assert_every_value_dropped_once();
    });
}

/// Model 6: a reader racing an eviction (the cache holds one entry, a second insert evicts it)
/// reads the evicted value intact or not at all; the evicted entry is freed only after the
/// reader unpins.
#[test]
fn get_racing_eviction() {
    model(|| {
        let cache = Arc::new(cache::<String>(Some(1)));
        cache.insert(1, s("one")).unwrap();

        read_key_1_while_a_write_of_key_2_removes_it(&cache, "evicted", || {});
    });
}

/// Reads key 1 (holding "one") while another thread runs `before`, then inserts key 2, which
/// removes key 1 (evicting it, or sweeping it once expired), and flushes: the reader sees "one"
/// intact or nothing; afterwards key 2 is the one entry and the shard's invariants hold.
fn read_key_1_while_a_write_of_key_2_removes_it(
    cache: &Arc<Cache<String>>,
    removal: &str,
    before: impl FnOnce() + Send + 'static,
) {
    let writer = on_another_thread(cache, 2, move |cache| {
        before();
        cache.insert(2, s("two")).unwrap();
    });

    let seen = cache.get_with(&1, |v| v.clone());
    assert!(
        seen.is_none() || seen.as_deref() == Some("one"),
        "read {seen:?} while key 1 was being {removal}"
    );

    writer.join().unwrap();
    assert_eq!(cache.get(&1), None, "key 1 was not {removal}");
    assert_eq!(cache.get(&2).as_deref(), Some("two"));
    assert_eq!(cache.len(), 1);
    cache.validate().unwrap();
}

/// Model 7: the reader's hit counter (a relaxed load and store on the entry's metadata word)
/// racing the evictor, whose policy reads and lowers the counter under the shard lock (a second
/// chance) before it unlinks the entry. The reader may store into an entry already unlinked but never into freed memory; the
/// eviction terminates whatever the reader's stores undo, and the budget stays exact.
#[test]
fn hit_counter_racing_eviction() {
    model(|| {
        let cache = Arc::new(cache::<String>(Some(1)));
        cache.insert(1, s("one")).unwrap();

        let writer = on_another_thread(&cache, 1, move |cache| {
            cache.insert(2, s("two")).unwrap();
        });

        let first = cache.get_with(&1, |v| v.clone());
        let second = cache.get_with(&1, |v| v.clone());
        for seen in [&first, &second] {
            assert!(
                seen.is_none() || seen.as_deref() == Some("one"),
                "read {seen:?} while key 1 was being evicted"
            );
        }
        assert!(
            !(first.is_none() && second.is_some()),
            "key 1 came back after its eviction"
        );

        writer.join().unwrap();
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&2).as_deref(), Some("two"));
        assert_eq!(cache.len(), 1);
        cache.validate().unwrap();
    });
}

/// Model 8: in a full bounded cache, a reader racing an insert that replaces its key's value
/// never finds the key missing: a replacement reserves no new entry, so it evicts nothing, least
/// of all its own key, and the budget stays exact.
#[test]
fn get_racing_a_replacement_in_a_full_cache() {
    model(|| {
        let cache = Arc::new(cache::<String>(Some(1)));
        cache.insert(1, s("old")).unwrap();

        let writer = on_another_thread(&cache, 2, move |cache| {
            cache.insert(1, s("new")).unwrap();
        });

        for _ in 0..2 {
            let seen = cache.get_with(&1, |v| v.clone());
            assert!(
                seen.as_deref() == Some("old") || seen.as_deref() == Some("new"),
                "read {seen:?} while key 1 was only ever replaced"
            );
        }

        writer.join().unwrap();
        assert_eq!(cache.get(&1).as_deref(), Some("new"));
        assert_eq!(cache.len(), 1);
        cache.validate().unwrap();
    });
}

/// Model 9: a replacement racing an insert that evicts the key being replaced (a full cache of
/// one entry). The replacement looks the key up under its shard's lock and reserves nothing
/// there; the insert must evict around it. Whatever the order, exactly one entry stays and the
/// budget counts exactly it (model 10 races the same eviction against a reservation made
/// before the lock).
#[test]
fn a_replacement_racing_the_eviction_of_its_key() {
    model(|| {
        let cache = Arc::new(cache::<String>(Some(1)));
        replace_while_another_write_evicts(&cache, "new");
        cache.validate().unwrap();
    });
}

/// Writes key 1 ("old"), then replaces it with `new` while another thread inserts key 2 into a
/// cache with room for one of them, which evicts key 1. Checks that exactly one entry stays, one
/// of the two writes', never the replaced value; returns the value that stayed.
fn replace_while_another_write_evicts(cache: &Arc<Cache<String>>, new: &str) -> String {
    cache.insert(1, s("old")).unwrap();
    let writer = on_another_thread(cache, 2, move |cache| {
        cache.insert(2, s("two")).unwrap();
    });
    cache.insert(1, s(new)).unwrap();
    writer.join().unwrap();

    assert_eq!(cache.len(), 1);
    let one = cache.get(&1);
    let two = cache.get(&2);
    assert!(
        one.as_deref() == Some(new) || two.as_deref() == Some("two"),
        "neither write's value stayed: {one:?} {two:?}"
    );
    assert_ne!(one.as_deref(), Some("old"), "the replaced value came back");
    one.or(two).expect("one entry stays")
}

/// Model 10: as model 9, but the replacement's value is heavier and the cache weighs with the
/// caller's weigher, which never runs under a shard lock: so the replacement weighs the old
/// entry and reserves the weight it adds before it locks, and an insert that evicts the key in
/// between must make it notice under the lock, give the reservation back and reserve a whole
/// entry. Whatever the order, exactly one entry stays and the budget counts exactly it.
///
/// One preemption reaches the race (the insert running between the replacement's reservation
/// and its lock; a replacement that skipped the check under the lock fails here) and explores
/// 12,832 executions in 2 s, where two explore 282,054 in 40 s. An execution may take more than
/// loom's default 1,000 steps: after the race the replacement needs a whole entry, and waits,
/// yielding, for the insert to link the entry it must then evict.
#[test]
fn a_growing_replacement_racing_the_eviction_of_its_key() {
    model_with_exactly(1, 2_000, || {
        let cache: Arc<Cache<String>> = Arc::new(
            builder::<String>()
                .max_weight(5)
                .max_entry_weight(5)
                .weigher(|_, v: &String| v.len() as u64)
                .build(),
        );
        let stayed = replace_while_another_write_evicts(&cache, "newer");
        assert_eq!(
            cache.weight(),
            stayed.len() as u64,
            "the budget counts exactly the entry that stayed"
        );
        cache.validate().unwrap();
    });
}

/// Model 11: a new key whose own shard has nothing to evict, racing a replacement in the other
/// shard, in a full cache of one entry. The insert reserves under its shard's lock, finds no
/// victim there, releases the lock, evicts from the other shard (the replaced key, or its new
/// value) and links; the replacement reserves nothing and replaces under its own lock. Whatever
/// the order, exactly one entry stays, the replaced value never comes back, and no reader of the
/// evicted entry touches freed memory.
#[test]
fn an_insert_that_evicts_from_another_shard_racing_a_replacement_there() {
    model(|| {
        let cache: Arc<ShardedCache<u64, String, _>> = Arc::new(
            ShardedCache::<u64, String>::builder()
                .shards(2)
                .initial_capacity(0)
                .hasher(std::hash::BuildHasherDefault::<ShardByParity>::default())
                .max_entries(1)
                .build(),
        );
        cache.insert(2, s("old")).unwrap();

        let writer = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.insert(3, s("three")).unwrap();
                flush();
            })
        };
        cache.insert(2, s("new")).unwrap();
        let seen = cache.get(&2);
        assert!(
            seen.is_none() || seen.as_deref() == Some("new"),
            "read {seen:?}"
        );
        writer.join().unwrap();

        assert_eq!(cache.len(), 1);
        let two = cache.get(&2);
        let three = cache.get(&3);
        assert!(
            two.as_deref() == Some("new") || three.as_deref() == Some("three"),
            "neither write's value stayed: {two:?} {three:?}"
        );
        assert_ne!(two.as_deref(), Some("old"), "the replaced value came back");
        cache.validate().unwrap();
    });
}

/// Model 12: a reader racing a write that sweeps the key's expired entry. The writer moves the
/// clock past the entry's deadline, then inserts another key, and the insert's sweep unlinks and
/// retires the expired entry. The reader sees the value intact (read before the deadline
/// passed) or nothing, never freed memory; afterwards the expired key is gone and the budget
/// counts only the new one.
#[test]
fn get_racing_an_expiry_sweep() {
    model(|| {
        let clock = MockClock::new();
        let cache: Arc<Cache<String>> = Arc::new(
            builder::<String>()
                .max_entries(2)
                .clock(std::sync::Arc::new(clock.clone()))
                .build(),
        );
        let ttl = Duration::from_secs(1);
        cache
            .insert_with_expiry(1, s("one"), Some(ttl.into()))
            .unwrap();

        read_key_1_while_a_write_of_key_2_removes_it(&cache, "swept", move || clock.advance(ttl));
    });
}

/// Model 13: `close` racing a write and a read. The write is refused with `Closed` or lands
/// before `close` empties its shard, so nothing is left afterwards; the reader sees the value
/// intact or nothing; and every value, the refused write's included, is dropped exactly once.
#[test]
fn close_racing_a_write_and_a_read() {
    model(|| {
        let counts = Arc::new(Counts::default());
        let cache = Arc::new(cache::<Tracked>(Some(2)));
        cache.insert(1, Tracked::new("one", &counts)).unwrap();
        let two = Tracked::new("two", &counts);

        let closer = on_another_thread(&cache, 2, |cache| cache.close());

        let wrote = cache.insert(2, two);
        assert!(
            matches!(wrote, Ok(()) | Err(CacheError::Closed)),
            "a write racing close returned {wrote:?}"
        );
        let seen = cache.get_with(&1, |v| v.text.clone());
        assert!(
            seen.is_none() || seen.as_deref() == Some("one"),
            "read {seen:?} while the cache was closing"
        );

        closer.join().unwrap();
        assert_eq!(cache.len(), 0, "a write outlived close");
        assert!(matches!(
            cache.insert(3, Tracked::new("three", &counts)),
            Err(CacheError::Closed)
        ));
        cache.validate().unwrap();
        drop(cache);
        counts.assert_every_value_dropped_once();
    });
}

/// Model 17: the byte budget's count of retired weight. In a weight-bounded cache every
/// replaced entry's weight is counted as garbage until the collector frees it, and a deferred
/// closure takes it off. A reader pinned (a `pin()` handle) before a writer replaces the key
/// twice holds all of that garbage back: the second replacement finds 6 retired against the
/// limit of 5 and flushes, which must end though nothing can be freed, and once the writer is
/// done exactly 6 is counted. When the reader unpins and the collector runs, the count is
/// exactly 0 and the budget holds the last value alone.
#[test]
fn retired_weight_is_counted_until_freed() {
    model(|| {
        let cache: Arc<Cache<String>> = Arc::new(
            builder::<String>()
                .max_weight(16)
                .max_entry_weight(5)
                .weigher(|_, v: &String| v.len() as u64)
                .build(),
        );
        cache.insert(1, s("one")).unwrap();
        let pinned = cache.pin();

        let writer = on_another_thread(&cache, 1, move |cache| {
            cache.insert(1, s("two")).unwrap();
            cache.insert(1, s("three")).unwrap();
        });

        let seen = pinned.get_with(&1, |v| v.clone());
        assert!(
            matches!(seen.as_deref(), Some("one" | "two" | "three")),
            "read {seen:?}"
        );

        writer.join().unwrap();
        assert_eq!(
            cache.stats().garbage_weight,
            6,
            "\"one\" and \"two\", retired while a reader was pinned, not counted"
        );
        drop(pinned);
        assert_eq!(cache.get(&1).as_deref(), Some("three"));
        assert_eq!(cache.weight(), 5, "the budget holds the last value alone");
        collect_all_garbage(|| cache.stats().garbage_weight == 0);
        assert_eq!(
            cache.stats().garbage_weight,
            0,
            "retired weight still counted after the collector freed it"
        );
        cache.validate().unwrap();
    });
}

/// Model 18: a walk racing a rebuild, a removal and a replacement. Six entries fill the one
/// group; the walker clones every entry (`iter`), reading the slots without a lock, while the
/// writer inserts a seventh key (which rebuilds the table and retires the old one), removes key
/// 0 and replaces key 1. Every key present for the whole walk is yielded exactly once with a
/// value it held, intact (key 1 with either value); keys 0 and 6 at most once. Runs with at
/// least 3 preemptions, as the resize model does, so that the walk reads the old table after
/// its retirement.
#[test]
fn a_walk_racing_a_resize_a_remove_and_a_replacement() {
    model_with_at_least(3, || {
        let cache = one_group_full();

        let writer = on_another_thread(&cache, 2, move |cache| {
            cache.insert(6, s("v6")).unwrap();
            assert!(cache.remove(&0));
            cache.insert(1, s("new")).unwrap();
        });

        let mut seen: Vec<(u64, String)> = cache.iter().collect();
        seen.sort();
        let times = |k: u64| seen.iter().filter(|(key, _)| *key == k).count();
        for k in 1..6 {
            assert_eq!(times(k), 1, "key {k}, present throughout, in {seen:?}");
        }
        assert!(times(0) <= 1 && times(6) <= 1, "{seen:?}");
        for (k, v) in &seen {
            let held = *v == format!("v{k}") || (*k == 1 && v == "new");
            assert!(held, "key {k} yielded with {v:?}");
        }

        writer.join().unwrap();
        let mut after: Vec<u64> = cache.pin().iter().map(|(k, _)| *k).collect();
        after.sort_unstable();
        assert_eq!(after, [1, 2, 3, 4, 5, 6]);
        cache.validate().unwrap();
    });
}

/// Model 19: `retain` racing a replacement of the key it rejects. The predicate runs with no
/// lock held and rejects the value "old"; the entry is then removed under the lock only if it
/// is still the very entry the predicate judged. Whatever the order, the new value stays (a
/// `retain` that removed by key removes it when the replacement lands between the verdict and
/// the lock, and the model fails), and the other key, kept, stays too.
#[test]
fn retain_racing_a_replacement_of_the_key_it_rejects() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        cache.insert(1, s("old")).unwrap();
        cache.insert(2, s("two")).unwrap();

        let writer = on_another_thread(&cache, 2, move |cache| {
            cache.insert(1, s("new")).unwrap();
        });

        cache.retain(|_, v| v != "old");

        writer.join().unwrap();
        assert_eq!(
            cache.get(&1).as_deref(),
            Some("new"),
            "retain removed a value it never judged"
        );
        assert_eq!(cache.get(&2).as_deref(), Some("two"));
        assert_eq!(cache.len(), 2);
        cache.validate().unwrap();
    });
}

/// Model 20: `clear` racing a write and a read. `clear` swaps each shard's table for an empty
/// one under the lock and retires the old table and its entries while a reader may still be in
/// them; unlike `close` it leaves the cache open. The reader sees key 1's value intact or
/// nothing; key 1 is gone afterwards; the write of key 2 lands before the clear (and is
/// cleared) or after it (and stays), never half; and every value is dropped exactly once.
#[test]
fn clear_racing_a_write_and_a_read() {
    model(|| {
        let counts = Arc::new(Counts::default());
        let cache = Arc::new(cache::<Tracked>(Some(2)));
        cache.insert(1, Tracked::new("one", &counts)).unwrap();
        let two = Tracked::new("two", &counts);

        let clearer = on_another_thread(&cache, 2, |cache| cache.clear());

        cache.insert(2, two).unwrap();
        let seen = cache.get_with(&1, |v| v.text.clone());
        assert!(
            seen.is_none() || seen.as_deref() == Some("one"),
            "read {seen:?} while the cache was cleared"
        );

        clearer.join().unwrap();
        assert!(!cache.contains_key(&1), "key 1 outlived clear");
        let two = cache.get_with(&2, |v| v.text.clone());
        assert!(
            two.is_none() || two.as_deref() == Some("two"),
            "key 2 holds {two:?}"
        );
        assert_eq!(cache.len(), usize::from(two.is_some()));
        cache.validate().unwrap();
        drop(cache);
        counts.assert_every_value_dropped_once();
    });
}

/// Model 26: an entry that weighs nothing under a weight bound alone is never evicted for size;
/// its slot pointer carries the exempt tag bit, which a rebuild must carry along and a reader
/// must never follow unmasked. Key 0 weighs nothing and keys 1 to 5 weigh one each in a cache
/// of weight 6; a reader reads key 0 while an insert of key 6 fills the group and rebuilds the
/// table. The reader sees "v0" intact; afterwards an insert that needs room evicts a weighed
/// key, never key 0, and `validate` finds every weighed entry queued and key 0 in no queue.
#[test]
fn a_weightless_entry_read_across_a_rebuild_is_never_evicted() {
    model(|| {
        let cache: Arc<Cache<String>> = Arc::new(
            builder::<String>()
                .max_weight(6)
                .max_entry_weight(6)
                .weigher(|k, _| u64::from(*k != 0))
                .build(),
        );
        for k in 0..6 {
            cache.insert(k, format!("v{k}")).unwrap();
        }

        let writer = on_another_thread(&cache, 2, move |cache| {
            cache.insert(6, s("v6")).unwrap();
        });
        assert_eq!(
            cache.get(&0).as_deref(),
            Some("v0"),
            "key 0 during the rebuild"
        );
        writer.join().unwrap();

        cache.insert(7, s("v7")).unwrap();
        assert_eq!(cache.get(&0).as_deref(), Some("v0"), "key 0 was evicted");
        assert_eq!((cache.len(), cache.weight()), (7, 6));
        cache.validate().unwrap();
    });
}
