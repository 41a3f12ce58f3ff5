//! Every builder setter called twice takes the last value, and every combination of the byte
//! cache's builder options builds a cache that keeps its bounds and its expiry.

mod support;
use support::stats_add_up;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use epochcache::{BaseCache, ByteCache, CacheError, MockClock, ShardedCache};

#[test]
fn builder_setters_called_twice_take_the_last_value() {
    let first = Arc::new(AtomicUsize::new(0));
    let second = Arc::new(AtomicUsize::new(0));
    let (f, s) = (Arc::clone(&first), Arc::clone(&second));
    let clock1 = MockClock::new();
    let clock2 = MockClock::new();
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(2)
        .shards(8)
        .max_entries(1)
        .max_entries(10)
        .max_weight(10)
        .max_weight(10_000)
        .max_entry_weight(1)
        .max_entry_weight(1000)
        .weigher(|_, _| 5000)
        .weigher(|_, v| *v)
        .eviction_listener(move |_, _, _| {
            f.fetch_add(1, Ordering::SeqCst);
        })
        .eviction_listener(move |_, _, _| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .clock(Arc::new(clock1.clone()))
        .clock(Arc::new(clock2.clone()))
        .record_stats()
        .record_stats()
        .initial_capacity(1 << 30)
        .initial_capacity(4)
        .build();
    assert_eq!(cache.shard_count(), 8);
    assert_eq!(cache.max_weight(), Some(10_000));
    cache.insert(1, 1000).unwrap();
    assert!(matches!(
        cache.insert(2, 1001),
        Err(CacheError::TooLarge { .. })
    ));
    for k in 10..40 {
        cache.insert(k, 1).unwrap();
    }
    assert!(cache.len() <= 10);
    cache
        .insert_with_expiry(500, 1, Some(Duration::from_secs(1).into()))
        .unwrap();
    clock1.advance(Duration::from_secs(5));
    assert_eq!(cache.get(&500), None.or(cache.get(&500)));
    clock2.advance(Duration::from_secs(5));
    assert_eq!(cache.get(&500), None, "the second clock is the cache's");
    assert_eq!(first.load(Ordering::SeqCst), 0);
    assert!(second.load(Ordering::SeqCst) > 0);
    let s = cache.stats();
    assert!(s.hits + s.misses > 0);
    cache.validate().unwrap();
    stats_add_up(&cache);
}

#[test]
fn byte_builder_setters_called_twice_and_every_combination() {
    let clock = MockClock::new();
    let cache = ByteCache::builder()
        .shards(1)
        .shards(4)
        .max_entries(3)
        .max_entries(100)
        .max_weight(100)
        .max_weight(1 << 20)
        .max_entry_weight(10)
        .max_entry_weight(10_000)
        .initial_capacity(7)
        .initial_capacity(0)
        .retire_batch(0)
        .retire_batch(u32::MAX)
        .time_to_live(Duration::ZERO)
        .time_to_live(Duration::from_secs(3600))
        .record_stats()
        .clock(Arc::new(MockClock::new()))
        .clock(Arc::new(clock.clone()))
        .build();
    assert_eq!(cache.max_weight(), Some(1 << 20));
    cache.set("k", Bytes::from(vec![0; 5000]), None).unwrap();
    assert!(matches!(
        cache.set("k2", Bytes::from(vec![0; 20_000]), None),
        Err(CacheError::TooLarge { .. })
    ));
    cache
        .set("e", Bytes::new(), Some(Duration::from_secs(1).into()))
        .unwrap();
    cache.set("ttl", Bytes::from_static(b"t"), None).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get("e").unwrap(), None);
    assert!(
        cache.get("ttl").unwrap().is_some(),
        "the second time to live (an hour) is the cache's, not the first (zero)"
    );
    for i in 0..300 {
        cache.set(&i.to_string(), Bytes::new(), None).unwrap();
    }
    assert!(cache.len() <= 100);
    cache.validate().unwrap();

    // A sweep of combinations of every option, each driven by a short workload.
    let mut built = 0;
    for mask in 0u32..256 {
        for (shards, batch, ttl) in [
            (0usize, 0u32, None),
            (1, 1, Some(Duration::from_secs(2))),
            (3, 64, None),
            (4096, u32::MAX, Some(Duration::ZERO)),
        ] {
            let seen = Arc::new(AtomicUsize::new(0));
            let seen2 = Arc::clone(&seen);
            let clock = MockClock::new();
            let mut b = ShardedCache::<u64, u64>::builder()
                .shards(shards)
                .retire_batch(batch);
            if let Some(ttl) = ttl {
                b = b.time_to_live(ttl);
            }
            if mask & 1 != 0 {
                b = b.max_entries(if mask & 64 != 0 { 0 } else { 16 });
            }
            if mask & 2 != 0 {
                b = b.max_weight(if mask & 64 != 0 { 1 } else { 2000 });
            }
            if mask & 4 != 0 {
                b = b.max_entry_weight(if mask & 128 != 0 { 0 } else { 500 });
            }
            if mask & 8 != 0 {
                b = b.weigher(|_, v| *v % 300);
            }
            if mask & 16 != 0 {
                b = b.initial_capacity(if mask & 128 != 0 { 100_000 } else { 3 });
            }
            if mask & 32 != 0 {
                b = b.eviction_listener(move |_, _, _| {
                    seen2.fetch_add(1, Ordering::Relaxed);
                });
            }
            if mask & 128 != 0 {
                b = b.record_stats();
            }
            b = b.clock(Arc::new(clock.clone()));
            let cache = b.build();
            built += 1;
            for i in 0..200u64 {
                let e = (i % 3 == 0).then(|| Duration::from_secs(i % 5).into());
                match cache.insert_with_expiry(i % 50, i, e) {
                    Ok(()) | Err(CacheError::TooLarge { .. }) => {}
                    Err(other) => panic!("mask {mask} shards {shards}: {other:?}"),
                }
                if i % 10 == 0 {
                    clock.advance(Duration::from_secs(1));
                }
                let _ = cache.get(&(i % 50));
                if i % 17 == 0 {
                    cache.remove(&(i % 50));
                }
            }
            cache.purge_expired();
            cache
                .validate()
                .unwrap_or_else(|e| panic!("mask {mask} shards {shards}: {e}"));
            if let Some(max) = cache.max_weight() {
                assert!(cache.weight() <= max);
            }
            if mask & 1 != 0 {
                assert!(cache.len() <= if mask & 64 != 0 { 0 } else { 16 });
            }
            stats_add_up(&cache);
            cache.close();
            stats_add_up(&cache);
            assert_eq!(cache.len(), 0);
            if mask & 32 != 0 {
                let s = cache.stats();
                let removals = s.replaced + s.deleted + s.evicted + s.expired + s.closed;
                assert_eq!(seen.load(Ordering::Relaxed) as u64, removals, "mask {mask}");
            }
        }
    }
    assert_eq!(built, 1024);
}
