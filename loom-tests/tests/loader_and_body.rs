//! Loom models of the single-flight loader (`get_or_insert_with`) and of the separate-body
//! cache (`ByteCache`), driven through the public API: the loader's locks and condition
//! variables are loom's under `--cfg epochcache_loom`, and so is the thread id it tells a
//! reentrant loader by (loom's threads share one OS thread, so `std` would give them one id).
//! Numbered on from the engine's models in `models.rs`.

#![cfg(epochcache_loom)]

use std::io::Read;

use bytes::Bytes;
use epochcache::{BaseCache, ByteCache, SeparateBodyCache};
use epochcache_loom_tests::{cache, flush, model, s, silence_panics_saying, Cache};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Model 14: two threads miss one key at once and call `get_or_insert_with`. One leads the
/// load and the other waits for it (or, arriving after it ended, hits the value it inserted):
/// the loader runs once, both threads get its value, and no thread waits forever (loom fails a
/// model whose threads all block).
#[test]
fn two_threads_missing_one_key_load_it_once() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        let loads = Arc::new(AtomicUsize::new(0));
        let load = |cache: &Cache<String>, loads: &AtomicUsize| {
            cache
                .get_or_insert_with(1, || {
                    loads.fetch_add(1, Ordering::Relaxed);
                    s("loaded")
                })
                .unwrap()
        };
        let other = {
            let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
            thread::spawn(move || load(&cache, &loads))
        };
        assert_eq!(load(&cache, &loads), "loaded");
        assert_eq!(other.join().unwrap(), "loaded");
        assert_eq!(
            loads.load(Ordering::Relaxed),
            1,
            "the loader ran more than once"
        );
        assert_eq!(cache.get(&1).as_deref(), Some("loaded"));
    });
}

/// Model 15: a loader that panics while another thread may be waiting on its flight. The panic
/// goes on in its own thread; a waiter is woken, starts over, leads a load of its own and gets
/// its value, which stays. (When the other thread loads first, the would-be panicking one just
/// hits its value.) No thread waits forever.
#[test]
fn a_loader_that_panics_leaves_no_waiter_stuck() {
    silence_panics_saying(BACKEND_DOWN);
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        let panicky = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    cache
                        .get_or_insert_with(1, || panic!("{BACKEND_DOWN}"))
                        .unwrap()
                }))
                .ok()
            })
        };
        let got = cache.get_or_insert_with(1, || s("second try"));
        assert_eq!(got.unwrap(), "second try");
        let other = panicky.join().unwrap();
        assert!(
            other.is_none() || other.as_deref() == Some("second try"),
            "the other thread got {other:?}"
        );
        assert_eq!(cache.get(&1).as_deref(), Some("second try"));
    });
}

/// Model 25: a load racing a removal of its value and a later call for the key. One thread loads
/// "first" into the missing key; the other removes the key and, if that removed "first", calls
/// `get_or_insert_with` itself, which began after "first" was gone and so must never return it:
/// it loads "second" (or hits it). The leader's flight stays listed for a while after its value
/// is stored; a call that joined it then took the stored value even when it had been removed
/// before the call began (with the leader's `settling` check removed, the model fails so).
#[test]
fn a_call_after_a_loaded_value_was_removed_does_not_get_it() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        let other = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                if cache.remove(&1) {
                    let got = cache.get_or_insert_with(1, || s("second")).unwrap();
                    assert_eq!(got, "second", "a call after the removal of first got it");
                }
            })
        };
        let got = cache.get_or_insert_with(1, || s("first")).unwrap();
        assert!(got == "first" || got == "second", "the load got {got:?}");
        other.join().unwrap();
        cache.validate().unwrap();
    });
}

/// Model 27: two leaders whose loaders each ask for the other's key. In every interleaving
/// in which both flights are open when they ask, one thread's wait would close a cycle: it
/// loads the other's key itself, outside any flight, and the other waits for it as usual, so
/// no thread waits forever (loom fails a model whose threads all block; before the wait-for
/// record, both waited). Each gets its own key's value or, where the other's outside load
/// stored first, that one; each key ends with one value, read back.
#[test]
fn two_leaders_asking_for_each_others_keys_never_wait_for_each_other() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        let load = |cache: &Cache<String>, mine: u64, theirs: u64| {
            cache
                .get_or_insert_with(mine, || {
                    let other = cache.get_or_insert_with(theirs, || s("outside")).unwrap();
                    s(&format!("{mine} saw {other}"))
                })
                .unwrap()
        };
        let other = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || load(&cache, 2, 1))
        };
        let one = load(&cache, 1, 2);
        let two = other.join().unwrap();
        assert!(
            one.starts_with("1 saw") || one == "outside",
            "key 1 gave {one:?}"
        );
        assert!(
            two.starts_with("2 saw") || two == "outside",
            "key 2 gave {two:?}"
        );
        assert_eq!(cache.get(&1).as_deref(), Some(one.as_str()));
        assert_eq!(cache.get(&2).as_deref(), Some(two.as_str()));
    });
}

/// Model 16: the separate-body cache (`ByteCache`, one shard, fixed hash seeds). A reader of a
/// body racing the body's replacement and then the key's delete keeps a valid stream: the
/// body it got reads to its end, intact, the old one or the new one, whatever happens to the
/// entry meanwhile (the writer flushes, so the entries it retires are freed while the reader
/// may still hold what it read from them). Afterwards metadata and body are both gone.
#[test]
fn a_body_read_racing_its_replacement_and_delete() {
    model(|| {
        let cache = Arc::new(
            ByteCache::builder()
                .shards(1)
                .initial_capacity(0)
                .max_weight(1 << 20)
                .fixed_hash_seeds([1, 2, 3, 4])
                .build(),
        );
        cache.set("k", Bytes::from(s("meta")), None).unwrap();
        cache.set_body("k", Bytes::from(s("old body"))).unwrap();

        let writer = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.set_body("k", Bytes::from(s("new body"))).unwrap();
                cache.delete("k").unwrap();
                flush();
                flush();
            })
        };

        if let Some(mut body) = cache.get_body("k").unwrap() {
            let mut read = String::new();
            body.read_to_string(&mut read).unwrap();
            assert!(
                read == "old body" || read == "new body",
                "read {read:?} from a body being replaced and deleted"
            );
        }

        writer.join().unwrap();
        assert!(cache.get("k").unwrap().is_none());
        assert!(cache.get_body("k").unwrap().is_none());
        assert_eq!(cache.len(), 0);
        cache.validate().unwrap();
    });
}

/// What the panicking loader of model 15 says.
const BACKEND_DOWN: &str = "the backend is down";
