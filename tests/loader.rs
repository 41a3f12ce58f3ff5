//! `get_or_insert_with`: single flight, failing and panicking loaders and their waiters, a loader
//! that asks for its own key, a value written while the loader runs, and loads into a closed cache.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use bytes::Bytes;
use epochcache::{BaseCache, ByteCache, CacheError, Computed, Op, ShardedCache};

mod support;
use support::{quiet, unless_deadlocked};

#[test]
fn many_threads_missing_one_key_run_the_loader_once() {
    for round in 0..50 {
        let cache: ShardedCache<u64, Arc<String>> = ShardedCache::new();
        let calls = AtomicUsize::new(0);
        let start = Barrier::new(8);
        let values: Vec<Arc<String>> = thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (cache, calls, start) = (&cache, &calls, &start);
                    s.spawn(move || {
                        start.wait();
                        cache
                            .get_or_insert_with(round, || {
                                calls.fetch_add(1, Ordering::SeqCst);
                                thread::yield_now();
                                Arc::new(format!("loaded by {t}"))
                            })
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1, "round {round}");
        assert!(values.iter().all(|v| Arc::ptr_eq(v, &values[0])));
        assert_eq!(cache.get(&round).as_deref(), Some(&*values[0]));
    }
}

#[test]
fn a_failing_loader_inserts_nothing_and_the_next_caller_loads() {
    let cache: ShardedCache<&'static str, u32> = ShardedCache::new();
    let err = cache
        .try_get_or_insert_with("k", || Err(std::io::Error::other("backend down")))
        .unwrap_err();
    assert!(matches!(&err, CacheError::Loader(e) if e.to_string() == "backend down"));
    assert_eq!(cache.get("k"), None);
    assert_eq!(
        cache
            .try_get_or_insert_with("k", || Ok::<_, CacheError>(7))
            .unwrap(),
        7
    );
    assert_eq!(cache.get("k"), Some(7));
}

#[test]
fn a_panicking_loader_leaves_no_stuck_waiter() {
    let cache: ShardedCache<u8, u32> = ShardedCache::new();
    let leader_running = Barrier::new(2);
    thread::scope(|s| {
        let leader = s.spawn(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                cache.get_or_insert_with(1, || {
                    leader_running.wait();
                    panic!("loader failed");
                })
            }))
        });
        let follower = s.spawn(|| {
            leader_running.wait();
            cache.get_or_insert_with(1, || 99)
        });
        assert!(
            leader.join().unwrap().is_err(),
            "the panic stays in its thread"
        );
        assert_eq!(follower.join().unwrap().unwrap(), 99);
    });
    assert_eq!(cache.get(&1), Some(99));
}

#[test]
fn a_loader_that_asks_for_its_own_key_gets_an_error() {
    let cache: ShardedCache<u8, u32> = ShardedCache::new();
    let inner = std::cell::Cell::new(None);
    let v = cache
        .get_or_insert_with(5, || {
            inner.set(Some(cache.get_or_insert_with(5, || 1)));
            2
        })
        .unwrap();
    assert_eq!(v, 2);
    assert!(matches!(
        inner.take(),
        Some(Err(CacheError::LoaderReentered))
    ));
    // Another key from inside a loader is fine.
    let w = cache
        .get_or_insert_with(6, || cache.get_or_insert_with(7, || 70).unwrap() + 1)
        .unwrap();
    assert_eq!((w, cache.get(&7)), (71, Some(70)));
}

#[test]
fn loading_into_a_closed_cache_fails() {
    let cache: ShardedCache<u8, u32> = ShardedCache::new();
    cache.close();
    assert!(matches!(
        cache.get_or_insert_with(1, || 1),
        Err(CacheError::Closed)
    ));
}

/// A key whose `Clone` runs this thread's hook once, if one is set.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CallsOnClone(u64);
type Hook = Box<dyn FnOnce()>;
thread_local! {
    static ON_CLONE: std::cell::RefCell<Option<Hook>> = const { std::cell::RefCell::new(None) };
}
impl Clone for CallsOnClone {
    fn clone(&self) -> Self {
        if let Some(hook) = ON_CLONE.with(|h| h.borrow_mut().take()) {
            hook();
        }
        CallsOnClone(self.0)
    }
}

/// The key's `Clone` is user code, and it runs outside the loader's own lock: a `Clone` that
/// loads another key through the same cache finishes instead of deadlocking on it.
#[test]
fn a_key_whose_clone_loads_through_the_same_cache_does_not_deadlock() {
    let loaded = unless_deadlocked(|| {
        let cache: Arc<ShardedCache<CallsOnClone, u64>> = Arc::new(ShardedCache::new());
        let inner = Arc::clone(&cache);
        ON_CLONE.with(|h| {
            *h.borrow_mut() = Some(Box::new(move || {
                inner.get_or_insert_with(CallsOnClone(2), || 2).unwrap();
            }))
        });
        let one = cache.get_or_insert_with(CallsOnClone(1), || 1).unwrap();
        (one, cache.get(&CallsOnClone(2)))
    });
    assert_eq!(
        loaded,
        Some((1, Some(2))),
        "the key's Clone ran under the loader's lock"
    );
}

/// A value written while the loader runs was written after the call's miss: it stays, and the
/// call returns it, as if it had come after that write. Storing the loaded value over it lost
/// the write (a `compute` that had returned `Inserted(1)` was undone).
#[test]
fn a_value_written_while_the_loader_runs_is_kept_and_returned() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .eviction_listener(move |k: &u64, v: &u64, cause| log.lock().unwrap().push((*k, *v, cause)))
        .build();
    let got = cache.get_or_insert_with(0, || {
        let put = cache.compute(0, |v| Op::Put(v.map_or(1, |v| v + 1)));
        assert_eq!(put.ok(), Some(Computed::Inserted(1)));
        7
    });
    assert_eq!(got.ok(), Some(1));
    assert_eq!(cache.get(&0), Some(1));
    assert!(
        heard.lock().unwrap().is_empty(),
        "nothing was replaced: {heard:?}"
    );

    // The same for a plain insert while loading another key, and for `ByteCache`.
    let got = cache.get_or_insert_with(5, || {
        cache.insert(5, 50).unwrap();
        9
    });
    assert_eq!((got.ok(), cache.get(&5)), (Some(50), Some(50)));
    let bytes = ByteCache::new();
    let got = bytes.get_or_set_with("k", || {
        bytes
            .set("k", Bytes::from_static(b"written"), None)
            .unwrap();
        Ok::<_, CacheError>(Bytes::from_static(b"loaded"))
    });
    assert_eq!(got.unwrap(), Bytes::from_static(b"written"));
    assert_eq!(
        bytes.get("k").unwrap(),
        Some(Bytes::from_static(b"written"))
    );
}

/// Two loads never wait on each other in a cycle. A leads key 1 and B key 2; once both are in
/// their loaders, each asks for the other's key. Before, each waited for the other's flight for
/// ever (a bug hunt found it with two listeners asking for each other's keys). Now the thread
/// whose wait would close the cycle loads the key itself, outside any flight, and stores it
/// only if still missing; the other waits as usual. That outside load asks for its own key
/// again and is refused with `LoaderReentered`, as a leader's would be, instead of loading it
/// again and again.
#[test]
fn two_leaders_asking_for_each_others_keys_do_not_wait_for_each_other() {
    let done = unless_deadlocked(|| {
        let cache: Arc<ShardedCache<u64, u64>> = Arc::new(ShardedCache::new());
        let barrier = Arc::new(Barrier::new(2));
        let outside_loads = Arc::new(AtomicUsize::new(0));
        let asked_again: Arc<Mutex<Vec<String>>> = Arc::default();
        let lead = |mine: u64, theirs: u64| {
            let cache = Arc::clone(&cache);
            let barrier = Arc::clone(&barrier);
            let outside_loads = Arc::clone(&outside_loads);
            let asked_again = Arc::clone(&asked_again);
            thread::spawn(move || {
                cache.get_or_insert_with(mine, || {
                    barrier.wait(); // both flights are open
                    let theirs_value = cache.get_or_insert_with(theirs, || {
                        outside_loads.fetch_add(1, Ordering::SeqCst);
                        let again = cache.get_or_insert_with(theirs, || 0);
                        asked_again.lock().unwrap().push(format!("{again:?}"));
                        theirs * 100
                    });
                    mine * 10 + theirs_value.map_or(0, |v| v % 10)
                })
            })
        };
        let (a, b) = (lead(1, 2), lead(2, 1));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let outside = outside_loads.load(Ordering::SeqCst);
        let again = asked_again.lock().unwrap().clone();
        (a.is_ok() && b.is_ok(), outside, again)
    });
    let (both_ok, outside, again) = done.expect("two loads waited on each other");
    assert!(both_ok);
    assert_eq!(
        outside, 1,
        "exactly one thread loaded the other's key itself"
    );
    assert_eq!(again, ["Err(LoaderReentered)"]);
}

/// Nested loads of one shared key still load it once: eight leaders, each loading its own key,
/// all ask for one shared key from their loaders; none of their waits closes a cycle, so they
/// wait for one flight (a first version of the cycle rule, "a leader never waits", loaded it
/// once per leader).
#[test]
fn nested_loads_of_one_shared_key_load_it_once() {
    let cache: Arc<ShardedCache<u64, u64>> = Arc::new(ShardedCache::new());
    let shared_loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8u64)
        .map(|user| {
            let (cache, loads, barrier) = (
                Arc::clone(&cache),
                Arc::clone(&shared_loads),
                Arc::clone(&barrier),
            );
            thread::spawn(move || {
                cache.get_or_insert_with(user, || {
                    barrier.wait(); // every leader is in its loader
                    let shared = cache.get_or_insert_with(1_000, || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        7
                    });
                    shared.unwrap() * 100 + user
                })
            })
        })
        .collect();
    for (user, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap().unwrap(), 700 + user as u64);
    }
    assert_eq!(shared_loads.load(Ordering::SeqCst), 1);
}

/// A loaded value the cache cannot keep is still the caller's, as moka, Caffeine and quick_cache
/// return it: it used to come back as `TooLarge`, the loaded value thrown away. Nothing is
/// stored, and the next call loads again.
#[test]
fn a_loaded_value_too_heavy_to_store_is_returned_unstored() {
    let cache: ShardedCache<u64, Vec<u8>> = ShardedCache::builder()
        .max_weight(1_000)
        .weigher(|_, v: &Vec<u8>| v.len() as u64)
        .build();
    let loads = AtomicUsize::new(0);
    let load = || {
        loads.fetch_add(1, Ordering::SeqCst);
        vec![7; 4_000]
    };
    assert_eq!(cache.get_or_insert_with(1, load).unwrap().len(), 4_000);
    assert_eq!(cache.get(&1), None, "not stored");
    assert_eq!(cache.get_or_insert_with(1, load).unwrap().len(), 4_000);
    assert_eq!(
        loads.load(Ordering::SeqCst),
        2,
        "loaded again, since nothing was stored"
    );
    let bytes = ByteCache::builder().max_weight(4_096).build();
    let big = Bytes::from(vec![1; 10_000]);
    let got = bytes.get_or_set_with("k", || Ok::<_, std::io::Error>(big.clone()));
    assert_eq!(got.unwrap(), big);
    assert_eq!(bytes.get("k").unwrap(), None);
    cache.close();
    assert!(matches!(
        cache.get_or_insert_with(2, || vec![1]),
        Err(CacheError::Closed)
    ));
}

#[test]
fn loaders_reentering_failing_and_panicking() {
    let cache: ShardedCache<u64, u64> = ShardedCache::new();
    let inner = cache.get_or_insert_with(1, || {
        let r = cache.get_or_insert_with(1, || 7);
        assert!(matches!(r, Err(CacheError::LoaderReentered)), "{r:?}");
        // A loader may use the cache for other keys, and insert its own key: that write came
        // after the miss, so it stays and is what the call returns.
        cache.get_or_insert_with(2, || 2).unwrap();
        cache.insert(1, 99).unwrap();
        10
    });
    assert_eq!(inner.unwrap(), 99);
    assert_eq!(cache.get(&1), Some(99));
    assert!(quiet(|| cache.get_or_insert_with(3, || panic!("loader"))).is_err());
    assert_eq!(cache.get_or_insert_with(3, || 3).unwrap(), 3);
    let b = ByteCache::new();
    let r = b.get_or_set_with("k", || {
        let inner = b.get_or_set_with("k", || Ok::<_, std::io::Error>(Bytes::new()));
        assert!(matches!(inner, Err(CacheError::LoaderReentered)));
        Ok::<_, std::io::Error>(Bytes::from_static(b"v"))
    });
    assert_eq!(r.unwrap(), Bytes::from_static(b"v"));
}

#[test]
fn waiters_on_a_panicking_or_failing_leader_are_not_stuck() {
    for fail_by_panic in [true, false] {
        let cache: ShardedCache<u64, u64> = ShardedCache::new();
        let started = Barrier::new(2);
        let release = Barrier::new(2);
        let loads = AtomicUsize::new(0);
        thread::scope(|s| {
            let leader = s.spawn(|| {
                quiet(|| {
                    cache.try_get_or_insert_with(1, || {
                        started.wait();
                        release.wait();
                        if fail_by_panic {
                            panic!("leader");
                        }
                        Err("leader fails")
                    })
                })
            });
            started.wait();
            let waiter = s.spawn(|| {
                cache.get_or_insert_with(1, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    5
                })
            });
            // Give the waiter a chance to join the flight (not needed for correctness).
            thread::yield_now();
            release.wait();
            let _ = leader.join().unwrap();
            assert_eq!(waiter.join().unwrap().unwrap(), 5);
        });
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(cache.get(&1), Some(5));
    }
}

#[test]
fn a_closed_sharded_cache_does_not_run_the_loader() {
    let cache: ShardedCache<u64, u64> = ShardedCache::new();
    cache.close();
    let ran = AtomicBool::new(false);
    let r = cache.get_or_insert_with(1, || {
        ran.store(true, Ordering::SeqCst);
        1
    });
    assert!(matches!(r, Err(CacheError::Closed)));
    assert!(
        !ran.load(Ordering::SeqCst),
        "the loader ran against a closed cache"
    );
}
