//! A listener that panics on an eviction made while a write looks for room: the crate guide
//! promises that a listener's panic during a write goes on after the write's value is stored.
//! Room is made with the shard's lock released when the cache runs the caller's weigher, or once
//! it has held a deadline (expired entries of other shards go first); each eviction is told on
//! the spot there, before the write's entry is linked.

mod support;
use support::{quiet, stats_add_up};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use epochcache::{CacheBuilder, MockClock, Op, RemovalCause, ShardedCache};

/// A listener that panics on every eviction for size.
fn panics_on_evictions(builder: CacheBuilder<u64, u64>) -> ShardedCache<u64, u64> {
    builder
        .shards(1)
        .eviction_listener(|_, _, cause| {
            if cause == RemovalCause::Evicted {
                panic!("listener panics on an eviction");
            }
        })
        .build()
}

#[test]
fn a_weighed_write_whose_eviction_panics_the_listener_is_stored() {
    let cache = panics_on_evictions(
        ShardedCache::builder()
            .max_weight(100)
            .max_entry_weight(100)
            .weigher(|_, _| 60),
    );
    cache.insert(1, 1).unwrap();
    assert!(quiet(|| cache.insert(2, 2)).is_err(), "the panic goes on");
    assert_eq!(cache.get(&1), None, "key 1 was evicted for it");
    assert_eq!(cache.get(&2), Some(2), "the write's value is stored");
    assert_eq!(cache.weight(), 60, "one entry's weight");
    cache.validate().unwrap();
    stats_add_up(&cache);
}

#[test]
fn a_write_to_a_cache_that_held_a_deadline_is_stored_when_its_eviction_panics_the_listener() {
    let cache = panics_on_evictions(
        ShardedCache::builder()
            .max_entries(1)
            .clock(Arc::new(MockClock::new())),
    );
    cache
        .insert_with_expiry(1, 1, Some(Duration::from_secs(3600).into()))
        .unwrap();
    assert!(quiet(|| cache.insert(2, 2)).is_err(), "the panic goes on");
    assert_eq!(cache.get(&1), None, "key 1 was evicted for it");
    assert_eq!(cache.get(&2), Some(2), "the write's value is stored");
    assert_eq!(cache.len(), 1);
    cache.validate().unwrap();
}

#[test]
fn a_computed_put_whose_eviction_panics_the_listener_is_stored_once() {
    let cache = panics_on_evictions(
        ShardedCache::builder()
            .max_weight(100)
            .max_entry_weight(100)
            .weigher(|_, _| 60),
    );
    cache.insert(1, 1).unwrap();
    let runs = AtomicUsize::new(0);
    let computed = quiet(|| {
        cache.compute(2, |current| {
            runs.fetch_add(1, Ordering::SeqCst);
            assert!(current.is_none());
            Op::Put(20)
        })
    });
    assert!(computed.is_err(), "the panic goes on");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get(&2), Some(20), "the computed value is stored");
    cache.validate().unwrap();
}
