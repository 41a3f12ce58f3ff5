//! Loom models of two protocols that no other model reaches: `Pinned::iter`, which lends
//! references to entries under its handle's pin instead of cloning them, racing a writer that
//! replaces and removes what it lends and flushes the collector; and `purge_expired`, which
//! removes every expired entry shard by shard and frees what it removed before it returns,
//! racing a `get` of the expired key and a write of a live one.

#![cfg(epochcache_loom)]

use std::time::Duration;

use epochcache::MockClock;
use epochcache_loom_tests::{
    builder, cache, collect_all_garbage, model, on_another_thread, s, Cache, Counts, Tracked,
};
use loom::sync::atomic::Ordering;
use loom::sync::Arc;
use loom::thread;

/// Model 31: a `Pinned::iter` walk racing a replacement and a removal of keys it lends. Keys 0,
/// 1 and 2 hold "v0", "v1" and "v2"; the reader takes a `pin()` handle and collects every
/// reference its `iter` lends (no clone), yields, and only then reads them; the writer replaces
/// key 1 with "new" and removes key 0, retiring both old entries, then flushes twice (with
/// `crossbeam_sanitize` the collector frees eagerly). Every reference lent stays valid as long
/// as the handle lives: each value read through it is one its key held, intact (key 1 "v1" or
/// "new"), before and after the writer is joined with the handle still held. Key 2 (present
/// throughout) is lent exactly once, key 1 (replaced, never absent) exactly once, key 0
/// (removed) at most once. Afterwards key 0 is gone, key 1 holds "new", and `validate()` agrees.
///
/// A removal that freed the entry in place, once the remove was done with it, instead of
/// retiring it fails here under AddressSanitizer (the reader's read of key 0's lent value).
#[test]
fn a_pinned_walk_racing_a_replacement_and_a_removal_of_what_it_lends() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        for k in 0..3 {
            cache.insert(k, format!("v{k}")).unwrap();
        }

        let writer = on_another_thread(&cache, 2, |cache| {
            cache.insert(1, s("new")).unwrap();
            assert!(cache.remove(&0));
        });

        let pinned = cache.pin();
        let lent: Vec<(&u64, &String)> = pinned.iter().collect();
        // Lets the writer retire (and, were the pin not kept, free) what was lent before any
        // of it is read.
        thread::yield_now();
        let check = |lent: &[(&u64, &String)]| {
            let times = |k: u64| lent.iter().filter(|(key, _)| **key == k).count();
            assert_eq!(times(1), 1, "key 1, replaced, lent as {lent:?}");
            assert_eq!(times(2), 1, "key 2, present throughout, lent as {lent:?}");
            assert!(times(0) <= 1, "key 0 lent twice: {lent:?}");
            assert_eq!(lent.len(), times(0) + 2, "{lent:?}");
            for &(&k, v) in lent {
                let held = *v == format!("v{k}") || (k == 1 && v == "new");
                assert!(held, "key {k} lent with {v:?}");
            }
        };
        check(&lent);
        // The writer finishes and flushes while the handle still lends: nothing it lent may be
        // freed until the handle is dropped.
        writer.join().unwrap();
        check(&lent);
        drop(lent);
        drop(pinned);

        assert_eq!(cache.get(&0), None);
        assert_eq!(cache.get(&1).as_deref(), Some("new"));
        assert_eq!(cache.get(&2).as_deref(), Some("v2"));
        assert_eq!(cache.len(), 2);
        cache.validate().unwrap();
    });
}

/// Model 32: `purge_expired` racing a `get` of an expired key and a write of a live one. One
/// shard, a mock clock, drop-counting values: key 1 ("one") expires in 1 s, key 2 ("two") has no
/// deadline, and the clock is moved past key 1's deadline before the threads start. One thread
/// purges (unlinking key 1 under the shard's lock, then handing what it removed to the
/// collector, which under loom is one flush), then flushes once more, which frees key 1 inside
/// the model in some executions; the other reads key 1 (`get_with`), then replaces key 2 with
/// "two-b", a write that sweeps a little itself, so key 1 may go by either thread (by the purge
/// in about 4 executions of 5, by the write in the rest; the reader finds key 1's entry and
/// judges it expired in about as many). The reader never sees key 1: the clock was past its
/// deadline before the read began. Afterwards key 1 is gone and key 2 holds "two-b"; `len()`,
/// the stats (one expired, one replaced, three inserts, one entry) and `validate()` agree; once
/// the collector has run, every value but "two-b" has been dropped (key 1's once, whichever
/// thread removed it), and dropping the cache drops that one too.
///
/// A `get` that ignored deadlines (no expiry filter in `live_entry`) returns the expired "one"
/// here, and a purge that unlinked key 1 without retiring it leaves "one" never dropped; both
/// fail. A purge that freed key 1 in place once done with it passes, even under
/// AddressSanitizer: the reader reads the entry's key and loads its metadata word, and the
/// purge only loads that word too, so no access orders the free between the reader's load of
/// the slot and those reads, and loom never runs it there (see the README's known limits;
/// model 31's reader, which holds what it was lent across a yield, catches such a free).
#[test]
fn purge_expired_racing_a_get_of_the_expired_key_and_a_write_of_a_live_one() {
    model(|| {
        let counts = Arc::new(Counts::default());
        let clock = MockClock::new();
        let cache: Arc<Cache<Tracked>> = Arc::new(
            builder::<Tracked>()
                .clock(std::sync::Arc::new(clock.clone()))
                .build(),
        );
        let ttl = Duration::from_secs(1);
        cache
            .insert_with_expiry(1, Tracked::new("one", &counts), Some(ttl.into()))
            .unwrap();
        cache.insert(2, Tracked::new("two", &counts)).unwrap();
        clock.advance(ttl);
        let two_b = Tracked::new("two-b", &counts);

        let purger = on_another_thread(&cache, 1, |cache| cache.purge_expired());

        let seen = cache.get_with(&1, |v| v.text.clone());
        assert_eq!(seen, None, "read key 1 after its deadline");
        cache.insert(2, two_b).unwrap();

        purger.join().unwrap();
        assert!(!cache.contains_key(&1), "key 1 outlived purge_expired");
        assert_eq!(
            cache.get_with(&2, |v| v.text.clone()).as_deref(),
            Some("two-b"),
            "the live key 2 lost its write"
        );
        assert_eq!(cache.len(), 1);
        let stats = cache.stats();
        assert_eq!(stats.expired, 1, "{stats:?}");
        assert_eq!(stats.replaced, 1, "{stats:?}");
        assert_eq!(stats.inserts, 3, "{stats:?}");
        assert_eq!(stats.entries, 1, "{stats:?}");
        cache.validate().unwrap();

        // "one" (expired) and "two" (replaced) are freed once the collector runs; "two-b"
        // stays with the cache.
        let created = counts.created();
        collect_all_garbage(|| counts.dropped.load(Ordering::Relaxed) >= created - 1);
        assert_eq!(
            counts.dropped.load(Ordering::Relaxed),
            created - 1,
            "the removed values were not dropped exactly once each"
        );
        drop(cache);
        counts.assert_every_value_dropped_once();
    });
}
