//! Loom models of `compute`, the engine's read-modify-write: it reads a key's entry with no
//! lock, runs the caller's function, and applies the answer under the shard's lock only if the
//! key's entry is still the one it read (by address, its pin keeping that address from being
//! reused), else runs the function again. Numbered on from `loader_and_body.rs`.

#![cfg(epochcache_loom)]

use epochcache::{Computed, Op};
use epochcache_loom_tests::{cache, flush, model, on_another_thread, s};
use loom::sync::Arc;
use loom::thread;

/// Appends "+" to a value, or starts one at `start`.
fn appended(v: Option<&String>, start: &str) -> Op<String> {
    Op::Put(v.map_or_else(|| s(start), |v| format!("{v}+")))
}

/// Model 21: two threads `compute` on one key at once, each appending "+" to its value. Both
/// appends survive, in some order: the key ends as "0++" and the two saw different values. A
/// `compute` that applied its answer without checking that the entry it read is still the key's
/// loses one of the appends ("0+"). The other thread flushes, so the entry its compute replaced
/// may be freed while this thread's compute still holds it: under ASan, a read of it after this
/// thread's pin would fail.
#[test]
fn two_computes_on_one_key_lose_no_update() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        cache.insert(1, s("0")).unwrap();
        let theirs = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                let got = cache.compute(1, |v| appended(v, "?")).unwrap();
                flush();
                flush();
                got
            })
        };
        let mine = cache.compute(1, |v| appended(v, "?")).unwrap();
        let theirs = theirs.join().unwrap();

        let mut seen = [mine, theirs].map(|got| match got {
            Computed::Updated { old, .. } => old,
            other => panic!("an append on a stored key did {other:?}"),
        });
        seen.sort();
        assert_eq!(
            seen,
            [s("0"), s("0+")],
            "each compute saw the other's value or none of it"
        );
        assert_eq!(cache.get(&1).as_deref(), Some("0++"));
        cache.validate().unwrap();
    });
}

/// Model 22: `compute` on a missing key racing an `insert` of it. The compute starts the value
/// at "a" when it finds none, else appends "+". Either it lands first and the insert replaces it
/// ("b"), or the insert does and the compute appends to it ("b+"); a compute that applied its
/// "none there" answer over the insert would leave "a", losing the insert. The inserter does not
/// flush: the compute never reads an entry the insert retires (it reads "b" or nothing), and
/// flushes only multiplied the interleavings (12,587 executions with two, 3,889 without).
#[test]
fn compute_on_a_missing_key_racing_its_insert() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        let inserter = on_another_thread(&cache, 0, |cache| cache.insert(1, s("b")).unwrap());

        let got = cache.compute(1, |v| appended(v, "a")).unwrap();

        inserter.join().unwrap();
        let now = cache.get(&1).unwrap();
        match now.as_str() {
            "b" => assert_eq!(got, Computed::Inserted(s("a"))),
            "b+" => assert_eq!(
                got,
                Computed::Updated {
                    old: s("b"),
                    new: s("b+")
                }
            ),
            _ => panic!("key 1 holds {now} after compute did {got:?}: the insert was lost"),
        }
        cache.validate().unwrap();
    });
}

/// Model 23: `compute` removing a value it judged ("old") racing a replacement of the key
/// ("new"). The removal is applied only to the entry the function saw: the new value stays,
/// whichever lands first, and if the replacement came first the function, run again, keeps it.
#[test]
fn a_computed_removal_racing_a_replacement() {
    model(|| {
        let cache = Arc::new(cache::<String>(None));
        cache.insert(1, s("old")).unwrap();
        let writer = on_another_thread(&cache, 2, |cache| cache.insert(1, s("new")).unwrap());

        let got = cache
            .compute(1, |v| {
                if v.map(String::as_str) == Some("old") {
                    Op::Remove
                } else {
                    Op::Nop
                }
            })
            .unwrap();

        writer.join().unwrap();
        assert!(
            got == Computed::Removed(s("old")) || got == Computed::Unchanged(s("new")),
            "compute did {got:?}"
        );
        assert_eq!(
            cache.get(&1).as_deref(),
            Some("new"),
            "compute removed a value its function never saw"
        );
        assert_eq!(cache.len(), 1);
        cache.validate().unwrap();
    });
}

/// Model 24: in a cache of one entry, `compute` appending to key 1 races an `insert` of key 2,
/// which evicts key 1. Whichever lands first, one entry stays: key 2 (the compute appended to
/// "0" and was then evicted) or key 1 (the compute, finding it evicted, started it at "a" and
/// evicted key 2), never key 1 holding an append to a value it no longer had, and the budget
/// counts exactly the entry linked. A compute that applied its answer to a key evicted under it
/// brings key 1 back as "0+" (with the check under the lock removed, the model fails so).
#[test]
fn a_compute_racing_the_eviction_of_its_key() {
    model(|| {
        let cache = Arc::new(cache::<String>(Some(1)));
        cache.insert(1, s("0")).unwrap();
        let writer = on_another_thread(&cache, 2, |cache| cache.insert(2, s("two")).unwrap());

        let got = cache.compute(1, |v| appended(v, "a")).unwrap();

        writer.join().unwrap();
        assert_eq!(cache.len(), 1);
        match (cache.get(&1), cache.get(&2)) {
            (None, Some(two)) => {
                assert_eq!(two, "two");
                assert_eq!(
                    got,
                    Computed::Updated {
                        old: s("0"),
                        new: s("0+")
                    }
                );
            }
            (Some(one), None) => {
                assert_eq!(
                    one, "a",
                    "key 1 came back with an append to its evicted value"
                );
                assert_eq!(got, Computed::Inserted(s("a")));
            }
            other => panic!("the cache of one entry holds {other:?}"),
        }
        cache.validate().unwrap();
    });
}
