//! What a cache tells its user: statistics by cause, hit and miss counts, and the eviction
//! listener's causes.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use epochcache::{MockClock, RemovalCause, ShardedCache};

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
