//! What a cache tells its user: statistics by cause, hit and miss counts, and the eviction
//! listener's causes.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use epochcache::{CacheStats, Computed, MockClock, Op, RemovalCause, ShardedCache};

#[test]
fn every_removal_is_counted_and_heard_with_its_cause() {
    let clock = MockClock::new();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache: ShardedCache<u32, u32> = ShardedCache::builder()
        .shards(1)
        .max_entries(3)
        .clock(Arc::new(clock.clone()))
        .eviction_listener(move |k: &u32, _v: &u32, cause| log.lock().unwrap().push((*k, cause)))
        .build();
    cache.insert(1, 1).unwrap();
    cache.insert(1, 10).unwrap(); // replaced
    cache
        .insert_with_expiry(2, 2, Some(Duration::from_secs(1).into()))
        .unwrap();
    cache.insert(3, 3).unwrap();
    cache.remove(&3); // deleted
    clock.advance(Duration::from_secs(1));
    cache.insert(4, 4).unwrap(); // sweeps 2 (expired)
    cache.insert(5, 5).unwrap();
    cache.insert(6, 6).unwrap(); // full: one evicted
    cache.close(); // the rest: closed
    let heard = heard.lock().unwrap().clone();
    let count = |cause| heard.iter().filter(|(_, c)| *c == cause).count() as u64;
    assert!(heard.contains(&(1, RemovalCause::Replaced)));
    assert!(heard.contains(&(3, RemovalCause::Deleted)));
    assert!(heard.contains(&(2, RemovalCause::Expired)));
    let stats = cache.stats();
    assert_eq!(stats.inserts, 7);
    assert_eq!(
        (
            stats.replaced,
            stats.deleted,
            stats.expired,
            stats.evicted,
            stats.closed
        ),
        (
            count(RemovalCause::Replaced),
            count(RemovalCause::Deleted),
            count(RemovalCause::Expired),
            count(RemovalCause::Evicted),
            count(RemovalCause::Closed),
        )
    );
    assert_eq!(stats.evicted, 1);
    assert_eq!(stats.closed, 3);
    assert_eq!(stats.entries, 0);
}

#[test]
fn hits_and_misses_are_counted_only_when_asked() {
    let quiet: ShardedCache<u32, u32> = ShardedCache::new();
    quiet.insert(1, 1).unwrap();
    quiet.get(&1);
    quiet.get(&2);
    assert_eq!((quiet.stats().hits, quiet.stats().misses), (0, 0));

    let counted: ShardedCache<u32, u32> = ShardedCache::builder().record_stats().build();
    for k in 0..100 {
        counted.insert(k, k).unwrap();
    }
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for k in 0..10_000 {
                    counted.get(&(k % 200)); // half hit, half miss
                }
            });
        }
    });
    let stats = counted.stats();
    // Each thread counts on its own stripe unless two share one; shared stripes may lose counts.
    assert!(stats.hits <= 10_000 && stats.misses <= 10_000, "{stats:?}");
    assert!(stats.hits >= 5_000 && stats.misses >= 5_000, "{stats:?}");
}

/// What the listener hears, sorted, and the statistics, after `op` runs on a cache holding key 1
/// (value 1, expired a second ago) and key 9 (value 9, no expiry).
fn heard_after(
    op: impl FnOnce(&ShardedCache<u32, u32>),
) -> (Vec<(u32, u32, RemovalCause)>, CacheStats) {
    let clock = MockClock::new();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache: ShardedCache<u32, u32> = ShardedCache::builder()
        .shards(1)
        .clock(Arc::new(clock.clone()))
        .eviction_listener(move |k: &u32, v: &u32, cause| log.lock().unwrap().push((*k, *v, cause)))
        .build();
    cache
        .insert_with_expiry(1, 1, Some(Duration::from_secs(1).into()))
        .unwrap();
    cache.insert(9, 9).unwrap();
    clock.advance(Duration::from_secs(2));
    op(&cache);
    let mut heard = heard.lock().unwrap().clone();
    heard.sort_unstable_by_key(|&(k, v, _)| (k, v));
    (heard, cache.stats())
}

/// An expired value that a write replaces, a `remove` takes out, a `compute` overwrites or a
/// `clear` empties is heard and counted as expired, as moka and Caffeine report it; a live one
/// as replaced or deleted.
#[test]
fn an_expired_value_met_by_a_write_or_a_removal_goes_as_expired() {
    use RemovalCause::{Deleted, Expired, Replaced};
    let (heard, stats) = heard_after(|c| c.insert(1, 10).unwrap());
    assert_eq!(heard, [(1, 1, Expired)], "insert");
    assert_eq!((stats.expired, stats.replaced), (1, 0), "insert");

    let (heard, stats) = heard_after(|c| assert!(c.remove(&1), "an expired entry counts"));
    assert_eq!(heard, [(1, 1, Expired)], "remove");
    assert_eq!((stats.expired, stats.deleted), (1, 0), "remove");

    let (heard, _) = heard_after(|c| {
        let computed = c.compute(1, |v| Op::Put(v.map_or(30, |v| v + 1))).unwrap();
        assert_eq!(
            computed,
            Computed::Inserted(30),
            "compute saw no live value"
        );
    });
    assert_eq!(heard, [(1, 1, Expired)], "compute");

    let (heard, stats) = heard_after(|c| c.clear());
    assert_eq!(heard, [(1, 1, Expired), (9, 9, Deleted)], "clear");
    assert_eq!((stats.expired, stats.deleted), (1, 1), "clear");

    let (heard, _) = heard_after(|c| {
        c.insert(9, 90).unwrap();
        c.remove(&9);
    });
    // (The write's sweep takes key 1, expired, as well.)
    assert_eq!(
        heard,
        [(1, 1, Expired), (9, 9, Replaced), (9, 90, Deleted)],
        "live values"
    );
}
