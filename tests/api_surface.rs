//! The public surface a user of moka, quick_cache or Caffeine expects of every type: `Send` and
//! `Sync` where a cache is shared between threads, `Debug` without asking `K` or `V` for it,
//! `Default` for builders and caches, and an error type that is a `std::error::Error`.

use epochcache::{
    BodyReader, ByteCache, ByteCacheBuilder, CacheBuilder, CacheError, CacheStats, Computed,
    DictCache, Expires, Iter, MockClock, Pinned, RemovalCause, ShardedCache,
};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_debug<T: std::fmt::Debug>() {}
fn assert_default<T: Default>() {}
fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}

/// A key and a value with no `Debug` of their own.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Opaque;

#[test]
fn every_public_type_has_the_traits_a_user_expects() {
    assert_send_sync::<ShardedCache<u64, u64>>();
    assert_send_sync::<ByteCache>();
    assert_send_sync::<DictCache>();
    assert_send_sync::<CacheBuilder<u64, u64>>();
    assert_send_sync::<ByteCacheBuilder>();
    assert_send_sync::<CacheError>();
    assert_send_sync::<BodyReader>();
    assert_send_sync::<CacheStats>();
    assert_send_sync::<RemovalCause>();
    assert_send_sync::<Expires>();
    assert_send_sync::<MockClock>();
    assert_send_sync::<Computed<u64>>();
    assert_send_sync::<Iter<'static, u64, u64>>();

    assert_debug::<ShardedCache<Opaque, Opaque>>();
    assert_debug::<CacheBuilder<Opaque, Opaque>>();
    assert_debug::<Iter<'static, Opaque, Opaque>>();
    assert_debug::<Pinned<'static, Opaque, Opaque>>();
    assert_debug::<ByteCache>();
    assert_debug::<ByteCacheBuilder>();
    assert_debug::<DictCache>();

    assert_default::<CacheBuilder<u64, u64>>();
    assert_default::<ByteCacheBuilder>();
    assert_default::<ShardedCache<u64, u64>>();
    assert_default::<ByteCache>();
    assert_default::<DictCache>();

    assert_error::<CacheError>();
}

#[test]
fn a_default_byte_cache_builder_is_the_builder_of_a_default_cache() {
    // Every option as `ByteCache::builder` sets it (no bound, no expiry, the system clock).
    assert_eq!(
        format!("{:?}", ByteCacheBuilder::default()),
        format!("{:?}", ByteCache::builder())
    );
    let cache = ByteCacheBuilder::default().build();
    assert_eq!((cache.max_weight(), cache.max_entries()), (None, None));
    assert!(cache.is_empty());
}

/// `iter` clones a shard's entries when it reaches that shard: those not yet yielded are a lower
/// bound on what is left, which `collect` and `extend` use to reserve room.
#[test]
fn iter_size_hint_counts_the_entries_already_cloned() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(1).build();
    for k in 0..100 {
        cache.insert(k, k).unwrap();
    }
    let mut iter = cache.iter();
    assert_eq!(iter.size_hint(), (0, None), "no shard reached yet");
    iter.next().unwrap();
    assert_eq!(iter.size_hint(), (99, None));
    assert_eq!(iter.by_ref().count(), 99);
    assert_eq!(iter.size_hint(), (0, None));
}

/// Once it has returned `None`, the iterator keeps returning `None`: it is fused.
#[test]
fn iter_is_fused() {
    fn assert_fused<I: std::iter::FusedIterator>(_: &I) {}
    let cache: ShardedCache<u64, u64> = ShardedCache::new();
    cache.insert(1, 1).unwrap();
    let mut iter = cache.iter();
    assert_fused(&iter);
    assert_eq!(iter.next(), Some((1, 1)));
    assert_eq!(iter.next(), None);
    cache.insert(2, 2).unwrap();
    assert_eq!(iter.next(), None);
}

/// `ByteCacheBuilder::max_weight`'s promise: a key of up to 39 bytes is covered by the 112 bytes
/// of overhead, and a longer one counts its length plus the byte that tells metadata from body.
#[test]
fn a_long_key_weighs_its_length_plus_one() {
    use bytes::Bytes;
    use epochcache::BaseCache;
    let cache = ByteCache::builder().max_weight(1 << 20).build();
    cache.set(&"a".repeat(39), Bytes::new(), None).unwrap();
    assert_eq!(cache.weight(), 112);
    cache
        .set(&"b".repeat(40), Bytes::from_static(b"xyz"), None)
        .unwrap();
    assert_eq!(cache.weight(), 112 + 112 + 40 + 1 + 3);
    let small = ByteCache::builder().max_entry_weight(152).build();
    match small.set(&"c".repeat(40), Bytes::new(), None) {
        Err(CacheError::TooLarge {
            size: 153,
            max: 152,
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// `TooLarge` carries weights in the weigher's unit, which is bytes only for `ByteCache` and the
/// default weigher: its message must not call a count of items bytes.
#[test]
fn too_large_says_weight_in_the_weighers_unit() {
    let cache: ShardedCache<u64, Vec<String>> = ShardedCache::builder()
        .weigher(|_, names: &Vec<String>| names.len() as u64)
        .max_entry_weight(2)
        .build();
    let err = cache.insert(1, vec![String::new(); 3]).unwrap_err();
    assert!(
        matches!(err, CacheError::TooLarge { size: 3, max: 2 }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(!message.contains("bytes"), "{message}");
    assert!(message.contains('3') && message.contains('2'), "{message}");
}

/// What `ShardedCache` answers a moka user asks `ByteCache` too: whether a key is there without
/// reading it (and without counting a read), and whether the cache is closed.
#[test]
fn byte_cache_contains_key_and_is_closed() {
    use bytes::Bytes;
    use epochcache::{BaseCache, SeparateBodyCache};
    use std::{sync::Arc, time::Duration};
    let clock = MockClock::new();
    let cache = ByteCache::builder()
        .record_stats()
        .clock(Arc::new(clock.clone()))
        .build();
    cache
        .set("meta", Bytes::new(), Some(Duration::from_secs(1).into()))
        .unwrap();
    cache.set_body("body only", Bytes::new()).unwrap();
    assert_eq!(cache.contains_key("meta").ok(), Some(true));
    assert_eq!(
        cache.contains_key("body only").ok(),
        Some(false),
        "metadata only"
    );
    assert_eq!(cache.contains_key("missing").ok(), Some(false));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.contains_key("meta").ok(), Some(false), "expired");
    assert_eq!((cache.stats().hits, cache.stats().misses), (0, 0));
    assert!(!cache.is_closed());
    cache.close().unwrap();
    assert!(cache.is_closed());
    assert!(matches!(
        cache.contains_key("meta"),
        Err(CacheError::Closed)
    ));
}

/// The entry bound reads back as the weight bound does (quick_cache's `capacity`, moka's
/// `policy().max_capacity()`).
#[test]
fn the_entry_bound_reads_back() {
    let bounded: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(100).build();
    assert_eq!(bounded.max_entries(), Some(100));
    assert_eq!(ShardedCache::<u64, u64>::new().max_entries(), None);
    assert_eq!(
        ByteCache::builder().max_entries(7).build().max_entries(),
        Some(7)
    );
    assert_eq!(ByteCache::new().max_entries(), None);
}

/// Caffeine's `hitRate`: hits over reads, and 1.0 before any read (or without `record_stats`).
#[test]
fn stats_give_the_hit_rate() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().record_stats().build();
    assert_eq!(cache.stats().hit_rate(), 1.0);
    cache.insert(1, 1).unwrap();
    for k in [1, 1, 1, 2] {
        cache.get(&k);
    }
    assert_eq!(cache.stats().hit_rate(), 0.75);
    let unrecorded: ShardedCache<u64, u64> = ShardedCache::new();
    unrecorded.get(&1);
    assert_eq!(unrecorded.stats().hit_rate(), 1.0);
}

/// A weigher with no weight bound and no `max_entry_weight` has nothing to weigh against: it is
/// never called, and `weight` stays 0. With `max_entry_weight` alone it judges each write.
#[test]
fn a_weigher_without_a_weight_bound_is_called_only_for_max_entry_weight() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let counting = |calls: &Arc<AtomicUsize>| {
        let calls = Arc::clone(calls);
        move |_: &u64, v: &u64| {
            calls.fetch_add(1, Ordering::Relaxed);
            *v
        }
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let entries: ShardedCache<u64, u64> = ShardedCache::builder()
        .max_entries(2)
        .weigher(counting(&calls))
        .build();
    for k in 0..10 {
        entries.insert(k, 1_000).unwrap();
    }
    entries.remove(&9);
    assert_eq!((calls.load(Ordering::Relaxed), entries.weight()), (0, 0));

    let per_entry: ShardedCache<u64, u64> = ShardedCache::builder()
        .max_entry_weight(10)
        .weigher(counting(&calls))
        .build();
    per_entry.insert(1, 10).unwrap();
    assert!(matches!(
        per_entry.insert(2, 11),
        Err(CacheError::TooLarge { .. })
    ));
    assert!(calls.load(Ordering::Relaxed) >= 2);
    assert_eq!(per_entry.weight(), 0);
}
