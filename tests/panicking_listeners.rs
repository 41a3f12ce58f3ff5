//! A listener that panics on an eviction made while a write looks for room: the crate guide
//! promises that a listener's panic during a write goes on after the write's value is stored.
//! Room is made with the shard's lock released when the cache runs the caller's weigher, or once
//! it has held a deadline (expired entries of other shards go first); each eviction is told on
//! the spot there, before the write's entry is linked.

mod support;
use support::{quiet, stats_add_up};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use epochcache::{CacheBuilder, Computed, MockClock, Op, RemovalCause, ShardedCache};

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

/// A cache of room 100 whose every entry weighs 60 (so room is made with the lock released, for
/// the caller's weigher), holding key 1, and whose listener panics on every eviction.
fn one_entry_of_60_in_100() -> ShardedCache<u64, u64> {
    let cache = panics_on_evictions(
        ShardedCache::builder()
            .max_weight(100)
            .max_entry_weight(100)
            .weigher(|_, _| 60),
    );
    cache.insert(1, 1).unwrap();
    cache
}

#[test]
fn a_weighed_write_whose_eviction_panics_the_listener_is_stored() {
    let cache = one_entry_of_60_in_100();
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
    let cache = one_entry_of_60_in_100();
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

/// A cache of room 100 (a value weighs itself) holding key 1 at 60. Its listener, told of the
/// first eviction (which a write of key 2 at 50 makes), writes key 2 at 10 itself, so that the
/// write meets a conflict, then panics with `on_evict` if given; told of a `Deleted` removal, it
/// panics with `on_delete` if given.
fn cache_whose_eviction_writes_key_2(
    on_evict: Option<&'static str>,
    on_delete: Option<&'static str>,
) -> Arc<ShardedCache<u64, u64>> {
    let first = AtomicBool::new(true);
    let this_cache: Arc<OnceLock<Arc<ShardedCache<u64, u64>>>> = Arc::new(OnceLock::new());
    let cache_in = Arc::clone(&this_cache);
    let cache = Arc::new(
        ShardedCache::builder()
            .shards(1)
            .max_weight(100)
            .max_entry_weight(100)
            .weigher(|_, v: &u64| *v)
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Evicted && first.swap(false, Ordering::SeqCst) {
                    cache_in.get().unwrap().insert(2, 10).unwrap();
                    if let Some(message) = on_evict {
                        panic!("{message}");
                    }
                }
                if let (RemovalCause::Deleted, Some(message)) = (cause, on_delete) {
                    panic!("{message}");
                }
            })
            .build(),
    );
    this_cache.set(Arc::clone(&cache)).ok().unwrap();
    cache.insert(1, 60).unwrap();
    cache
}

/// The payload of a panic raised with a formatted message.
fn message(payload: &Box<dyn std::any::Any + Send>) -> Option<&str> {
    payload.downcast_ref::<String>().map(String::as_str)
}

/// `compute` whose answer meets a conflict (the listener, told of an eviction made for it,
/// writes the key) runs again and applies its next answer, whether or not the listener then
/// panicked; the panic goes on after that answer is stored.
#[test]
fn a_computed_put_that_meets_a_conflict_after_a_panicking_eviction_still_applies_its_answer() {
    for listener_panics in [false, true] {
        let on_evict = listener_panics.then_some("listener panics after writing key 2");
        let cache = cache_whose_eviction_writes_key_2(on_evict, None);
        let runs = AtomicUsize::new(0);
        let computed = quiet(|| {
            cache.compute(2, |current| {
                runs.fetch_add(1, Ordering::SeqCst);
                Op::Put(current.map_or(50, |v| v + 40))
            })
        });
        assert_eq!(runs.load(Ordering::SeqCst), 2, "panics: {listener_panics}");
        if listener_panics {
            assert!(computed.is_err(), "the listener's panic goes on");
        } else {
            let updated = computed.unwrap().unwrap();
            assert_eq!(updated, Computed::Updated { old: 10, new: 50 });
        }
        assert_eq!(cache.get(&2), Some(50), "panics: {listener_panics}");
        assert_eq!(cache.weight(), 50);
        cache.validate().unwrap();
    }
}

/// A key whose `Eq` panics in the insert, after a listener panicked on an eviction made for the
/// same write: the write fails with nothing lost, and the first panic, the listener's, goes on.
#[test]
fn a_key_that_panics_after_a_kept_listener_panic_lets_the_first_panic_go_on() {
    static EQ_ARMED: AtomicBool = AtomicBool::new(false);
    #[derive(Clone, Debug)]
    struct SameHash(u64);
    impl std::hash::Hash for SameHash {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            h.write_u64(7);
        }
    }
    impl PartialEq for SameHash {
        fn eq(&self, other: &SameHash) -> bool {
            if EQ_ARMED.load(Ordering::SeqCst) {
                panic!("eq");
            }
            self.0 == other.0
        }
    }
    impl Eq for SameHash {}
    let cache: ShardedCache<SameHash, u64> = ShardedCache::builder()
        .shards(1)
        .max_weight(100)
        .max_entry_weight(100)
        .weigher(|_, _| 40)
        .eviction_listener(|_, _, cause| {
            if cause == RemovalCause::Evicted {
                EQ_ARMED.store(true, Ordering::SeqCst);
                panic!("listener");
            }
        })
        .build();
    cache.insert(SameHash(1), 1).unwrap();
    cache.insert(SameHash(2), 2).unwrap();
    let payload = quiet(|| cache.insert(SameHash(3), 3)).unwrap_err();
    EQ_ARMED.store(false, Ordering::SeqCst);
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"listener"));
    assert_eq!((cache.len(), cache.weight()), (1, 40), "one entry left");
    cache.validate().unwrap();
}

/// `compute` whose first answer met a conflict after a listener panicked on an eviction made for
/// it: when its function panics on the next run, the listener's panic, which came first, goes on.
#[test]
fn a_kept_listener_panic_goes_on_ahead_of_a_panic_of_computes_function_on_its_next_run() {
    let cache = cache_whose_eviction_writes_key_2(Some("listener"), None);
    let runs = AtomicUsize::new(0);
    let payload = quiet(|| {
        cache.compute(2, |_| {
            if runs.fetch_add(1, Ordering::SeqCst) == 1 {
                panic!("f");
            }
            Op::Put(50)
        })
    })
    .unwrap_err();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        message(&payload),
        Some("listener"),
        "the first panic goes on"
    );
}

/// The same when the next answer is a remove, and the listener panics again on its `Deleted`:
/// the remove is applied, and the first panic goes on.
#[test]
fn a_kept_listener_panic_goes_on_ahead_of_the_listeners_panic_on_the_next_answer() {
    let cache =
        cache_whose_eviction_writes_key_2(Some("listener (first)"), Some("listener (deleted)"));
    let payload = quiet(|| {
        cache.compute(2, |current| match current {
            None => Op::Put(50),
            Some(_) => Op::Remove,
        })
    })
    .unwrap_err();
    assert_eq!(cache.get(&2), None, "the remove was applied");
    assert_eq!(
        message(&payload),
        Some("listener (first)"),
        "the first panic goes on"
    );
}
