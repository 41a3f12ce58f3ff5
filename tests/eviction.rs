//! The eviction policy as a user sees it: scan resistance, loops larger than the cache, hot
//! entries kept, and expiry that frees memory without reads.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use epochcache::{BaseCache, ByteCache, MockClock, SeparateBodyCache, ShardedCache};

/// Cache-aside: get, and insert on a miss. Returns whether it hit.
fn access(cache: &ShardedCache<u64, u64>, key: u64) -> bool {
    if cache.get(&key).is_some() {
        return true;
    }
    cache.insert(key, key).unwrap();
    false
}

fn bounded(entries: u64) -> ShardedCache<u64, u64> {
    ShardedCache::builder().max_entries(entries).build()
}

#[test]
fn a_one_time_scan_does_not_flush_the_hot_set() {
    let cache = bounded(1_000);
    for _ in 0..20 {
        for k in 0..500 {
            access(&cache, k);
        }
    }
    for k in 1_000_000..1_020_000 {
        access(&cache, k); // each scanned key once, never again
    }
    let hits = (0..500).filter(|&k| cache.get(&k).is_some()).count();
    assert!(
        hits >= 450,
        "{hits} of 500 hot keys survived a 20,000-key scan"
    );
    cache.validate().unwrap();
}

#[test]
fn a_loop_slightly_larger_than_the_cache_still_hits() {
    // LRU and FIFO hit nothing here: each key is evicted just before it comes round again.
    let cache = bounded(1_000);
    let (mut hits, mut total) = (0, 0);
    for round in 0..30 {
        for k in 0..1_100 {
            let hit = access(&cache, k);
            if round >= 10 {
                hits += usize::from(hit);
                total += 1;
            }
        }
    }
    let ratio = hits as f64 / total as f64;
    // The optimum keeps 999 of the 1,100 keys: 90.8%.
    assert!(
        ratio > 0.75,
        "hit ratio {ratio:.3} on a loop of 1,100 keys through 1,000 entries"
    );
}

#[test]
fn frequently_read_entries_outlive_new_ones() {
    let cache = bounded(2_000);
    for k in 0..200 {
        cache.insert(k, k).unwrap();
    }
    for round in 0..50u64 {
        for k in 0..200 {
            assert!(cache.get(&k).is_some() || round == 0 || cache.len() == 2_000);
            cache.get(&k);
        }
        for k in 0..400 {
            cache.insert(10_000 + round * 400 + k, 0).unwrap(); // churn, never read
        }
    }
    let kept = (0..200).filter(|&k| cache.get(&k).is_some()).count();
    assert!(
        kept >= 190,
        "{kept} of 200 read keys kept under 20,000 unread inserts"
    );
    assert!(cache.len() <= 2_000);
    let stats = cache.stats();
    assert!(stats.evicted >= 20_000 + 200 - 2_000 - 10, "{stats:?}");
}

#[test]
fn short_lived_entries_release_memory_without_reads() {
    let clock = MockClock::new();
    let cache = ByteCache::builder()
        .max_weight(64 << 20)
        .clock(Arc::new(clock.clone()))
        .build();
    let value = Bytes::from(vec![0u8; 1024]);
    let mut peak = 0;
    for i in 0..20_000 {
        cache
            .set(
                &format!("session:{i}"),
                value.clone(),
                Some(Duration::from_secs(1).into()),
            )
            .unwrap();
        if i % 100 == 99 {
            clock.advance(Duration::from_millis(100)); // 1,000 sets a second: about 1,000 live
        }
        if i > 2_000 {
            peak = peak.max(cache.len());
        }
    }
    // Each write removes up to two expired entries, so nothing piles up toward the budget.
    assert!(
        peak <= 1_200,
        "{peak} entries resident for about 1,000 live ones"
    );
    assert!(
        cache.weight() < 4 << 20,
        "{} bytes resident",
        cache.weight()
    );
}

#[test]
fn purge_expired_frees_an_idle_cache() {
    let clock = MockClock::new();
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .max_entries(10_000)
        .clock(Arc::new(clock.clone()))
        .build();
    for k in 0..5_000 {
        let ttl = Duration::from_secs(if k % 2 == 0 { 1 } else { 100 });
        cache.insert_with_expiry(k, k, Some(ttl.into())).unwrap();
    }
    clock.advance(Duration::from_secs(2));
    cache.purge_expired();
    assert_eq!(cache.len(), 2_500);
    assert_eq!(cache.stats().expired, 2_500);
    assert!((1..5_000).step_by(2).all(|k| cache.get(&k) == Some(k)));
    cache.validate().unwrap();
}

#[test]
fn a_time_to_live_covers_every_write_without_an_expiry_of_its_own() {
    let clock = MockClock::new();
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .max_entries(1_000)
        .time_to_live(Duration::from_secs(10))
        .clock(Arc::new(clock.clone()))
        .build();
    cache.insert(1, 1).unwrap();
    cache.insert_with_expiry(2, 2, None).unwrap();
    assert_eq!(cache.get_or_insert_with(3, || 3).unwrap(), 3);
    cache
        .insert_with_expiry(4, 4, Some(Duration::from_secs(100).into()))
        .unwrap(); // its own, longer
    cache
        .insert_with_expiry(5, 5, Some(Duration::from_secs(5).into()))
        .unwrap(); // its own, shorter
    clock.advance(Duration::from_secs(5));
    assert_eq!(cache.get(&5), None);
    cache.insert(1, 10).unwrap(); // a rewrite starts its time to live again
    assert!([2, 3, 4].iter().all(|k| cache.get(k) == Some(*k)));
    clock.advance(Duration::from_secs(5));
    assert_eq!((cache.get(&2), cache.get(&3)), (None, None));
    assert_eq!((cache.get(&1), cache.get(&4)), (Some(10), Some(4)));
    cache.purge_expired(); // expired entries free their room without reads
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.stats().expired, 3);
    cache.validate().unwrap();

    let bytes = ByteCache::builder()
        .time_to_live(Duration::from_secs(10))
        .clock(Arc::new(clock.clone()))
        .build();
    bytes.set("meta", Bytes::from_static(b"m"), None).unwrap();
    bytes.set_body("meta", Bytes::from_static(b"body")).unwrap();
    bytes
        .set(
            "kept",
            Bytes::from_static(b"k"),
            Some(Duration::from_secs(60).into()),
        )
        .unwrap();
    clock.advance(Duration::from_secs(10));
    assert_eq!(bytes.get("meta").unwrap(), None);
    assert!(bytes.get_body("meta").unwrap().is_none());
    assert_eq!(bytes.get("kept").unwrap(), Some(Bytes::from_static(b"k")));
}

#[test]
fn a_time_to_live_of_zero_or_of_forever_is_taken_as_said() {
    let clock = MockClock::new();
    let cache_with = |ttl| -> ShardedCache<u64, u64> {
        ShardedCache::builder()
            .time_to_live(ttl)
            .clock(Arc::new(clock.clone()))
            .build()
    };
    let at_once = cache_with(Duration::ZERO);
    at_once.insert(1, 1).unwrap(); // stored already expired, as a past expiry is
    assert_eq!(at_once.get(&1), None);
    at_once.purge_expired();
    assert_eq!(at_once.len(), 0);

    let forever = cache_with(Duration::MAX);
    forever.insert(1, 1).unwrap();
    clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    assert_eq!(forever.get(&1), Some(1));
}

/// A shard of entries that were all read while it filled needs about two policy steps per entry
/// before its first victim (each leaves the small queue, then has its counter reset). A writer
/// that counted only evictions as progress gave up after 1,200 rounds of 512 steps and refused
/// a fitting write with `TooLarge` once a shard held about 310,000 such entries.
#[test]
fn an_insert_into_a_full_shard_of_entries_all_read_is_admitted() {
    const N: u64 = 400_000;
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(1).max_entries(N).build();
    for k in 0..N {
        cache.insert(k, k).unwrap();
    }
    for k in 0..N {
        assert_eq!(cache.get(&k), Some(k));
    }
    cache
        .insert(N, N)
        .expect("an entry fits a cache of entries");
    assert_eq!(cache.len() as u64, N);
    assert_eq!(cache.get(&N), Some(N));
    cache.validate().unwrap();
}

/// A cache bounded by weight alone, where a value weighs what it says.
fn weighed_by_value(
    max_weight: u64,
    max_entries: Option<u64>,
    clock: &MockClock,
) -> ShardedCache<u64, u64> {
    let builder = ShardedCache::builder()
        .shards(2)
        .max_weight(max_weight)
        .max_entry_weight(max_weight)
        .weigher(|_k: &u64, v: &u64| *v)
        .clock(Arc::new(clock.clone()));
    match max_entries {
        Some(n) => builder.max_entries(n).build(),
        None => builder.build(),
    }
}

#[test]
fn entries_that_weigh_nothing_are_not_evicted_under_a_weight_bound_alone() {
    let clock = MockClock::new();
    let cache = weighed_by_value(100, None, &clock);
    for k in 0..10_000 {
        cache.insert(k, 0).unwrap();
    }
    for k in (0..10_000).step_by(3) {
        cache.get(&k); // read or not, they stay
    }
    // Heavy entries come and go past them: each takes the room the one before it held.
    for k in 10_000..10_050 {
        cache.insert(k, 60).unwrap();
        assert!(cache.weight() <= 100, "{}", cache.weight());
        assert_eq!(cache.get(&k), Some(60), "the heavy entry {k} was admitted");
    }
    let kept = (0..10_000).filter(|k| cache.contains_key(k)).count();
    assert_eq!(kept, 10_000, "entries that weigh nothing were evicted");
    // A replacement that gives a key weight makes it evictable; one that takes it away, exempt.
    cache.insert(10_049, 0).unwrap();
    cache.insert(5, 50).unwrap();
    cache.insert(20_000, 60).unwrap();
    assert!(
        !cache.contains_key(&5),
        "the key that gained weight was the one to go"
    );
    assert!(cache.contains_key(&10_049));
    assert_eq!(cache.stats().evicted, 50, "{:?}", cache.stats());
    cache.validate().unwrap();
}

#[test]
fn entries_that_weigh_nothing_still_expire_and_still_count_against_an_entry_bound() {
    let clock = MockClock::new();
    let cache = weighed_by_value(100, None, &clock);
    for k in 0..100 {
        cache
            .insert_with_expiry(k, 0, Some(Duration::from_secs(1).into()))
            .unwrap();
    }
    clock.advance(Duration::from_secs(2));
    cache.purge_expired();
    assert_eq!(cache.len(), 0, "weightless entries expire as any other");

    let counted = weighed_by_value(100, Some(50), &clock);
    for k in 0..1_000 {
        counted.insert(k, 0).unwrap();
        assert!(counted.len() <= 50, "{} entries", counted.len());
    }
    counted.validate().unwrap();
}

/// How many of 50 hot keys, read between writes, survive a scan of 5,000 one-time keys in one
/// shard bounded at weight 100 that also holds `weightless` entries of weight 0 (fixed hash
/// seeds, so the run is the same every time).
fn hot_keys_kept_through_a_scan(weightless: u64) -> usize {
    let cache: ShardedCache<u64, u64, ahash::RandomState> = ShardedCache::builder()
        .shards(1)
        .max_weight(100)
        .max_entry_weight(100)
        .weigher(|_k: &u64, v: &u64| *v)
        .hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))
        .build();
    for k in 0..weightless {
        cache.insert(1_000_000 + k, 0).unwrap();
    }
    for round in 0..20 {
        for k in 0..50 {
            if cache.get(&k).is_none() {
                cache.insert(k, 1).unwrap();
            }
        }
        for j in 0..100 {
            cache.insert(10_000 + round * 100 + j, 1).unwrap();
        }
    }
    for k in 0..50 {
        cache.get(&k);
    }
    for k in 100_000..105_000 {
        cache.insert(k, 1).unwrap(); // each scanned key once
    }
    cache.validate().unwrap();
    (0..50).filter(|k| cache.contains_key(k)).count()
}

/// Entries that weigh nothing do not blunt the policy: it sizes its queues by the entries it
/// may evict, so a scan flushes no more of a hot set from a shard that also holds thousands of
/// exempt entries than from one without. (Counted among the evictable, 500 of them already let
/// every new key into the main queue, and the scan flushed all 50 hot keys.)
#[test]
fn a_scan_does_not_flush_the_hot_set_of_a_shard_full_of_weightless_entries() {
    let alone = hot_keys_kept_through_a_scan(0);
    assert!(alone >= 25, "{alone} of 50 hot keys survived the scan");
    for weightless in [500, 5_000] {
        let kept = hot_keys_kept_through_a_scan(weightless);
        assert!(
            kept + 5 >= alone,
            "{kept} of 50 hot keys survived beside {weightless} weightless entries, {alone} alone"
        );
    }
}

/// A replacement inherits its entry's access counter: a new key read and then rewritten while
/// probationary has been read, and enters the main queue, where keys never read are turned away.
#[test]
fn a_probationary_entry_read_then_rewritten_keeps_its_read() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(1).max_entries(100).build();
    for k in 0..1_100 {
        cache.insert(k, k).unwrap(); // fills the cache, then churns it: never read
    }
    for k in 5_000..5_010 {
        cache.insert(k, 0).unwrap();
        cache.get(&k);
        cache.insert(k, 1).unwrap(); // a replacement of a read entry
    }
    for k in 10_000..10_200 {
        cache.insert(k, k).unwrap(); // more churn, never read
    }
    let kept = (5_000..5_010).filter(|k| cache.peek(k).is_some()).count();
    assert_eq!(
        kept, 10,
        "read and rewritten keys turned away as if never read"
    );
}
