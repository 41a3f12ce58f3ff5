//! `compute`: each answer, what the listener and the statistics hear of it, a function that
//! writes its own key (so that the first answer conflicts and the function runs again), one that
//! panics, refusals (too large, closed), expiry, increments from several threads that must lose
//! none, and drop counting.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use epochcache::{CacheError, Computed, MockClock, Op, RemovalCause, ShardedCache};
use support::{flush_until, quiet, stats_add_up, turn, unless_deadlocked, Counted, SplitMix};

type Heard = Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

/// A cache of one shard whose listener records every removal.
fn heard_cache(max_entries: Option<u64>) -> (ShardedCache<u64, u64>, Heard) {
    let heard: Heard = Arc::default();
    let log = Arc::clone(&heard);
    let builder =
        ShardedCache::builder()
            .shards(2)
            .eviction_listener(move |k: &u64, v: &u64, cause| {
                log.lock().unwrap().push((*k, *v, cause))
            });
    let builder = match max_entries {
        Some(n) => builder.max_entries(n),
        None => builder,
    };
    (builder.build(), heard)
}

fn add_one(v: Option<&u64>) -> Op<u64> {
    Op::Put(v.map_or(1, |v| v + 1))
}

#[test]
fn each_answer_does_what_it_says_and_is_heard_and_counted() {
    let (cache, heard) = heard_cache(None);
    assert_eq!(
        cache.compute(1, |_| Op::Nop).ok(),
        Some(Computed::StillNone)
    );
    assert_eq!(
        cache.compute(1, |_| Op::Remove).ok(),
        Some(Computed::StillNone)
    );
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.compute(1, add_one).ok(), Some(Computed::Inserted(1)));
    assert_eq!(
        cache.compute(1, add_one).ok(),
        Some(Computed::Updated { old: 1, new: 2 })
    );
    assert_eq!(
        cache.compute(1, |_| Op::Nop).ok(),
        Some(Computed::Unchanged(2))
    );
    assert_eq!(cache.get(&1), Some(2));
    assert_eq!(
        cache.compute(1, |_| Op::Remove).ok(),
        Some(Computed::Removed(2))
    );
    assert_eq!(cache.get(&1), None);
    assert!(cache.is_empty());

    assert_eq!(
        *heard.lock().unwrap(),
        [
            (1, 1, RemovalCause::Replaced),
            (1, 2, RemovalCause::Deleted)
        ]
    );
    let stats = cache.stats();
    assert_eq!((stats.inserts, stats.replaced, stats.deleted), (2, 1, 1));
    stats_add_up(&cache);
    cache.validate().unwrap();
}

#[test]
fn a_function_that_writes_its_own_key_runs_again_on_the_value_it_wrote() {
    // Bounded, so that the refused put's reservation must be given back for `validate` (which
    // compares the entries reserved with the entries linked) to pass.
    let (cache, heard) = heard_cache(Some(100));
    let mut calls = 0;
    let got = cache.compute(7, |v| {
        calls += 1;
        if calls == 1 {
            assert_eq!(v, None);
            cache.insert(7, 100).unwrap();
        }
        add_one(v)
    });
    assert_eq!(
        calls, 2,
        "the first answer was made on a value that changed"
    );
    assert_eq!(got.ok(), Some(Computed::Updated { old: 100, new: 101 }));
    assert_eq!(cache.get(&7), Some(101));
    cache.validate().unwrap();

    // The same for a removal: the entry the function saw was replaced before it answered.
    let mut calls = 0;
    let got = cache.compute(7, |v| {
        calls += 1;
        if calls == 1 {
            cache.insert(7, 5).unwrap();
        }
        let _ = v;
        Op::Remove
    });
    assert_eq!((got.ok(), calls), (Some(Computed::Removed(5)), 2));
    assert_eq!(cache.get(&7), None);
    assert_eq!(
        *heard.lock().unwrap(),
        [
            (7, 100, RemovalCause::Replaced),
            (7, 101, RemovalCause::Replaced),
            (7, 5, RemovalCause::Deleted),
        ]
    );
    assert_eq!(cache.len(), 0);

    // And for a put over a value removed before the function answered: the refused put had
    // reserved a whole entry, which must go back to the budget.
    cache.insert(7, 50).unwrap();
    let mut calls = 0;
    let got = cache.compute(7, |v| {
        calls += 1;
        if calls == 1 {
            assert!(cache.remove(&7));
        }
        add_one(v)
    });
    assert_eq!((got.ok(), calls), (Some(Computed::Inserted(1)), 2));
    assert_eq!(cache.len(), 1);
    stats_add_up(&cache);
    cache.validate().unwrap();
}

#[test]
fn a_function_that_panics_changes_nothing_and_holds_no_lock() {
    let cache = Arc::new(ShardedCache::<u64, u64>::builder().max_entries(10).build());
    cache.insert(1, 10).unwrap();
    let panicked = quiet(|| cache.compute(1, |_| -> Op<u64> { panic!("boom") }));
    assert!(panicked.is_err());
    assert_eq!(cache.get(&1), Some(10));
    let writer = Arc::clone(&cache);
    let wrote = unless_deadlocked(move || writer.compute(1, add_one).ok());
    assert_eq!(wrote, Some(Some(Computed::Updated { old: 10, new: 11 })));
    cache.validate().unwrap();
}

#[test]
fn a_put_too_large_is_refused_and_the_old_value_stays() {
    let cache: ShardedCache<u64, Vec<u8>> = ShardedCache::builder()
        .max_weight(1_000)
        .max_entry_weight(100)
        .weigher(|_, v: &Vec<u8>| v.len() as u64)
        .build();
    cache.insert(1, vec![1; 10]).unwrap();
    let got = cache.compute(1, |_| Op::Put(vec![2; 101]));
    assert!(
        matches!(
            got,
            Err(CacheError::TooLarge {
                size: 101,
                max: 100
            })
        ),
        "{got:?}"
    );
    assert_eq!(cache.get(&1), Some(vec![1; 10]));
    assert_eq!(cache.weight(), 10);
    cache.validate().unwrap();
}

#[test]
fn a_closed_cache_refuses_without_calling_the_function() {
    let cache: ShardedCache<u64, u64> = ShardedCache::new();
    cache.insert(1, 1).unwrap();
    cache.close();
    let got = cache.compute(1, |_| unreachable!("a closed cache calls no function"));
    assert!(matches!(got, Err(CacheError::Closed)), "{got:?}");
}

#[test]
fn an_expired_value_is_seen_as_none_and_a_put_takes_the_expiry_it_is_given() {
    let clock = MockClock::new();
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .clock(Arc::new(clock.clone()))
        .time_to_live(Duration::from_secs(60))
        .build();
    cache
        .insert_with_expiry(1, 10, Some(Duration::from_secs(1).into()))
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let mut seen = Some(0);
    assert_eq!(
        cache
            .compute(1, |v| {
                seen = v.copied();
                Op::PutWithExpiry(5, Duration::from_secs(2).into())
            })
            .ok(),
        Some(Computed::Inserted(5))
    );
    assert_eq!(seen, None, "the expired value is not shown");
    assert_eq!(
        cache.len(),
        1,
        "the expired entry was replaced, not added to"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), Some(5));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), None, "the put's own expiry");

    // A plain put takes the builder's time to live, counted from the put.
    assert_eq!(cache.compute(1, add_one).ok(), Some(Computed::Inserted(1)));
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        cache.compute(1, add_one).ok(),
        Some(Computed::Updated { old: 1, new: 2 })
    );
    clock.advance(Duration::from_secs(59));
    assert_eq!(cache.get(&1), Some(2));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), None);
}

/// Several threads add one to a few counters many times; whatever interleaving the scheduler
/// makes, every increment must be in the final counts. A `compute` that applied an answer made
/// on a value replaced meanwhile would lose the replacing thread's increment.
#[test]
fn increments_from_several_threads_lose_none() {
    const THREADS: u64 = 4;
    const KEYS: u64 = 4;
    let cache = Arc::new(ShardedCache::<u64, u64>::builder().shards(2).build());
    let calls = Arc::new(AtomicUsize::new(0));
    let per_thread: Vec<Vec<u64>> = (0..THREADS)
        .map(|t| {
            let cache = Arc::clone(&cache);
            let calls = Arc::clone(&calls);
            thread::spawn(move || {
                let mut rng = SplitMix(t);
                let mut added = vec![0; KEYS as usize];
                for _ in 0..20_000 {
                    let k = rng.below(KEYS);
                    cache
                        .compute(k, |v| {
                            calls.fetch_add(1, Ordering::Relaxed);
                            add_one(v)
                        })
                        .unwrap();
                    added[k as usize] += 1;
                }
                added
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for k in 0..KEYS {
        let total: u64 = per_thread.iter().map(|added| added[k as usize]).sum();
        assert_eq!(cache.get(&k), Some(total), "key {k}");
    }
    // How often a function ran again: informative, since two cores may or may not interleave.
    eprintln!(
        "{} calls for {} increments",
        calls.load(Ordering::Relaxed),
        THREADS * 20_000
    );
    stats_add_up(&cache);
    cache.validate().unwrap();
}

#[test]
fn every_value_compute_stores_is_dropped_once_the_cache_is() {
    let _turn = turn();
    let dropped = Arc::new(AtomicUsize::new(0));
    let made = AtomicUsize::new(0);
    let counted = || {
        made.fetch_add(1, Ordering::SeqCst);
        Arc::new(Counted(Arc::clone(&dropped)))
    };
    {
        let cache: ShardedCache<u64, Arc<Counted>> = ShardedCache::builder().max_entries(8).build();
        for round in 0..200u64 {
            let k = round % 12;
            let got = match round % 3 {
                0 => cache.compute(k, |_| Op::Put(counted())),
                1 => cache.compute(k, |v| if v.is_some() { Op::Remove } else { Op::Nop }),
                _ => cache.compute(k, |_| Op::Nop),
            };
            drop(got.unwrap());
        }
        cache.validate().unwrap();
    }
    assert!(
        flush_until(|| dropped.load(Ordering::SeqCst) == made.load(Ordering::SeqCst)),
        "{} of {} values dropped",
        dropped.load(Ordering::SeqCst),
        made.load(Ordering::SeqCst)
    );
}

/// A value whose `Clone` panics while its flag is up.
struct CloneTrap(u64, Arc<AtomicBool>);

impl Clone for CloneTrap {
    fn clone(&self) -> Self {
        assert!(!self.1.load(Ordering::SeqCst), "clone trap");
        CloneTrap(self.0, Arc::clone(&self.1))
    }
}

/// `compute` clones the value it removes for its result. If that clone panics, the removal must
/// not be half done: here it is not done at all (the clone comes first), where after the unlink
/// it skipped giving the entry back to the budget, and a cache of one entry stayed full for good.
#[test]
fn a_clone_that_panics_in_a_computed_removal_loses_nothing() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache: ShardedCache<u64, CloneTrap> = ShardedCache::builder()
        .max_entries(1)
        .eviction_listener(move |k: &u64, _: &CloneTrap, cause| {
            log.lock().unwrap().push((*k, cause))
        })
        .build();
    let trap = Arc::new(AtomicBool::new(false));
    cache.insert(1, CloneTrap(1, Arc::clone(&trap))).unwrap();
    trap.store(true, Ordering::SeqCst);
    assert!(quiet(|| cache.compute(1, |_| Op::Remove)).is_err());
    trap.store(false, Ordering::SeqCst);
    cache.validate().unwrap();
    assert_eq!(cache.get_with(&1, |v| v.0), Some(1), "nothing was removed");
    assert!(matches!(
        cache.compute(1, |_| Op::Remove),
        Ok(Computed::Removed(_))
    ));
    assert_eq!(*heard.lock().unwrap(), [(1, RemovalCause::Deleted)]);
    cache.insert(2, CloneTrap(2, trap)).unwrap();
    cache.validate().unwrap();
}

/// A key whose `Hash` gives one value on its first call and another on every later one.
struct Fickle(u64, AtomicUsize);

impl std::hash::Hash for Fickle {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let first = self.1.fetch_add(1, Ordering::SeqCst) == 0;
        h.write_u64(if first { self.0 } else { self.0 + 1_000_000 });
    }
}

impl PartialEq for Fickle {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Fickle {}

/// A key's `Hash` must be stable, but one that is not must not hang `compute`: it hashes once
/// and checks its answer with that hash. When it hashed again for the check, it looked for the
/// entry it had read in another place, found a conflict every time, and ran for ever.
#[test]
fn a_key_whose_hash_changes_cannot_make_compute_retry_for_ever() {
    let cache = Arc::new(ShardedCache::<Fickle, u64>::new());
    cache.insert(Fickle(1, AtomicUsize::new(0)), 1).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, n) = (Arc::clone(&cache), Arc::clone(&calls));
    let done = unless_deadlocked(move || {
        c.compute(Fickle(1, AtomicUsize::new(0)), |v| {
            n.fetch_add(1, Ordering::SeqCst);
            add_one(v)
        })
        .ok()
    });
    assert_eq!(
        done,
        Some(Some(Computed::Updated { old: 1, new: 2 })),
        "the function ran {} times",
        calls.load(Ordering::SeqCst)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// An answer refused because the key changed must not have evicted anything to make room for
/// itself. Here the function, on its first run, removes key 3 and fills the cache with key 2;
/// its put of key 3 is refused, and on its second run it leaves the key alone. Done in that
/// order by hand, nothing is evicted, so nothing must be here either.
#[test]
fn a_refused_answer_evicts_nothing() {
    let (cache, heard) = heard_cache(Some(2));
    cache.insert(1, 1).unwrap();
    cache.insert(3, 3).unwrap();
    let mut calls = 0;
    let got = cache.compute(3, |_| {
        calls += 1;
        if calls == 1 {
            assert!(cache.remove(&3));
            cache.insert(2, 2).unwrap();
            return Op::Put(30);
        }
        Op::Nop
    });
    assert_eq!((got.ok(), calls), (Some(Computed::StillNone), 2));
    assert_eq!(*heard.lock().unwrap(), [(3, 3, RemovalCause::Deleted)]);
    assert_eq!((cache.get(&1), cache.get(&2)), (Some(1), Some(2)));
    stats_add_up(&cache);
    cache.validate().unwrap();
}

/// Four threads insert, remove and compute over ten keys in a cache of six entries (counted, and
/// weighed by the caller's weigher, which makes writes reserve with the lock released): the
/// budget matches the entries linked, and the counters add up.
#[test]
fn computes_mixed_with_writes_keep_a_bounded_cache_exact() {
    for weighed in [false, true] {
        let builder = ShardedCache::<u64, u64>::builder().shards(2);
        let cache = Arc::new(if weighed {
            builder
                .max_weight(40)
                .weigher(|_, v: &u64| 1 + v % 7)
                .build()
        } else {
            builder.max_entries(6).build()
        });
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || {
                    let mut rng = SplitMix(t);
                    for i in 0..20_000 {
                        let k = rng.below(10);
                        match rng.below(4) {
                            0 => drop(cache.insert(k, i)),
                            1 => drop(cache.remove(&k)),
                            2 => drop(cache.compute(k, |v| Op::Put(v.map_or(i, |v| v + 1)))),
                            _ => drop(cache.compute(k, |v| match v {
                                Some(v) if v % 2 == 0 => Op::Remove,
                                _ => Op::Put(i),
                            })),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        cache.validate().unwrap();
        stats_add_up(&cache);
    }
}

/// Each run of the function on a live value is a use of the entry, as a read is: keys only ever
/// computed on outlive keys inserted and never used.
#[test]
fn computed_on_entries_outlive_new_ones() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(2_000).build();
    for k in 0..200 {
        cache.insert(k, k).unwrap();
    }
    for round in 0..50u64 {
        for k in 0..200 {
            cache.compute(k, |_| Op::Nop).unwrap();
        }
        for k in 0..400 {
            cache.insert(10_000 + round * 400 + k, 0).unwrap(); // churn, never used
        }
    }
    let kept = (0..200).filter(|&k| cache.peek(&k).is_some()).count();
    assert!(
        kept >= 190,
        "{kept} of 200 computed keys kept under 20,000 unused inserts"
    );
}
