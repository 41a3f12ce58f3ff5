//! Invariants under concurrency and churn, from a second adversarial review: bounded caches
//! written, read, loaded, purged and closed by several threads keep their budget, their counts
//! and their entries consistent; a growing replacement never evicts its own key; `ByteCache`'s
//! metadata and bodies never interfere; `close` racing writers leaks and double-drops nothing.
//! Every check is made after the threads are joined (or sampled during the run for the weight
//! bound); waits on the epoch collector are bounded hang detectors, never timers.

mod support;
use support::{flush_until, stats_add_up, turn};

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use epochcache::{
    BaseCache, ByteCache, CacheError, MockClock, RemovalCause, SeparateBodyCache, ShardedCache,
};

/// A tiny xorshift so that threads do different things without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Replacement that grows in a full weight-bounded cache.
// ---------------------------------------------------------------------------------------------

/// lib.rs: "A write of a key already stored reserves only the weight its value adds, so it never
/// evicts its own key or a neighbour to make room it does not need."
#[test]
fn a_growing_replacement_first_inserted_key_ok() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(1)
        .max_weight(300)
        .max_entry_weight(300)
        .weigher(|_, v: &u64| *v)
        .eviction_listener(move |k: &u64, v: &u64, cause| l.lock().unwrap().push((*k, *v, cause)))
        .build();
    cache.insert(0, 100).unwrap();
    cache.insert(1, 100).unwrap();
    cache.insert(2, 100).unwrap();
    cache.insert(0, 150).unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(cache.get(&0), Some(150));
    assert!(cache.weight() <= 300);
    // Needs 50 more: evicting one neighbour (100) is enough; the old value of key 0 is replaced.
    assert!(
        log.contains(&(0, 100, RemovalCause::Replaced)),
        "the old value of key 0 should leave as Replaced: {log:?}"
    );
    assert_eq!(
        log.len(),
        2,
        "one replacement and one eviction were enough: {log:?}"
    );
    cache.validate().unwrap();
    stats_add_up(&cache);
}

// ---------------------------------------------------------------------------------------------
// 1. Multi-threaded invariants.
// ---------------------------------------------------------------------------------------------

fn weigh(_k: &u64, v: &u64) -> u64 {
    // Values encode their weight in the low bits: 10..=109.
    10 + v % 100
}

fn bounded_mix(max_entries: Option<u64>, max_weight: Option<u64>, threads: usize, seed: u64) {
    let clock = MockClock::new();
    let mut b = ShardedCache::builder()
        .shards(4)
        .clock(Arc::new(clock.clone()))
        .weigher(weigh)
        .record_stats();
    if let Some(n) = max_entries {
        b = b.max_entries(n);
    }
    if let Some(w) = max_weight {
        b = b.max_weight(w).max_entry_weight(200);
    }
    let cache: ShardedCache<u64, u64> = b.build();
    let stop = AtomicBool::new(false);
    let worst = AtomicU64::new(0);
    let worst_len = AtomicUsize::new(0);
    let gets = AtomicU64::new(0);
    let keys = 200u64;
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                worst.fetch_max(cache.weight(), Ordering::Relaxed);
                thread::yield_now();
            }
        });
        let mut handles = Vec::new();
        for t in 0..threads {
            let cache = &cache;
            let clock = &clock;
            let gets = &gets;
            handles.push(s.spawn(move || {
                let mut rng = Rng(seed * 7919 + t as u64 * 104_729 + 1);
                for _ in 0..60_000 {
                    let op = rng.below(100);
                    let key = if rng.below(4) == 0 {
                        0
                    } else {
                        rng.below(keys)
                    };
                    let value = rng.next() % 1_000_000;
                    match op {
                        0..=39 => {
                            let r = if rng.below(3) == 0 {
                                cache.insert_with_expiry(
                                    key,
                                    value,
                                    Some(Duration::from_millis(1 + rng.below(50)).into()),
                                )
                            } else {
                                cache.insert(key, value)
                            };
                            r.unwrap_or_else(|e| panic!("insert {key}: {e:?}"));
                        }
                        40..=49 => {
                            cache.remove(&key);
                        }
                        50..=79 => {
                            gets.fetch_add(1, Ordering::Relaxed);
                            if let Some(v) = cache.get(&key) {
                                assert!(v < 1_000_000);
                            }
                        }
                        80..=91 => {
                            gets.fetch_add(1, Ordering::Relaxed);
                            cache
                                .get_or_insert_with(key, || value)
                                .unwrap_or_else(|e| panic!("load {key}: {e:?}"));
                        }
                        92..=94 => cache.purge_expired(),
                        95..=97 => clock.advance(Duration::from_millis(1)),
                        _ => {
                            // a hot key hammered with replacements of changing weight
                            cache.insert(0, value).unwrap();
                        }
                    }
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let _ = &worst_len;
    });
    if let Some(w) = max_weight {
        assert!(
            worst.load(Ordering::Relaxed) <= w,
            "weight reached {} over {w}",
            worst.load(Ordering::Relaxed)
        );
        assert!(cache.weight() <= w);
    }
    cache.validate().unwrap();
    stats_add_up(&cache);
    // Expire nothing more: purge what has expired, then every linked entry is reachable.
    cache.purge_expired();
    let mut reachable = 0;
    let mut weight = 0;
    for k in 0..keys {
        if let Some(v) = cache.get(&k) {
            reachable += 1;
            weight += weigh(&k, &v);
        }
    }
    assert_eq!(cache.len(), reachable, "len against reachable entries");
    if max_weight.is_some() {
        assert_eq!(
            cache.weight(),
            weight,
            "budget against the weights of the linked entries"
        );
    }
    if let Some(n) = max_entries {
        assert!(cache.len() as u64 <= n);
    }
    stats_add_up(&cache);
    let s = cache.stats();
    assert_eq!(s.entries as usize, reachable);
    // Read counts are approximate (two threads sharing a stripe can lose an increment), but a
    // count is never made up, and losses stay rare.
    let reads = gets.load(Ordering::Relaxed) + keys;
    assert!(
        s.hits + s.misses <= reads && s.hits + s.misses >= reads / 2,
        "{} reads counted of {reads}: {s:?}",
        s.hits + s.misses
    );
    cache.close();
    assert_eq!(cache.weight(), 0, "close gives everything back");
    assert_eq!(cache.len(), 0);
    cache.validate().unwrap();
    stats_add_up(&cache);
}

#[test]
fn mt_weight_bound_two_threads() {
    for seed in 0..3 {
        bounded_mix(None, Some(3_000), 2, seed);
    }
}

#[test]
fn mt_weight_bound_four_threads() {
    for seed in 0..3 {
        bounded_mix(None, Some(2_000), 4, seed);
    }
}

#[test]
fn mt_entry_bound_four_threads() {
    for seed in 0..3 {
        bounded_mix(Some(40), None, 4, seed);
    }
}

#[test]
fn mt_both_bounds_three_threads() {
    for seed in 0..3 {
        bounded_mix(Some(30), Some(2_500), 3, seed);
    }
}

/// Tiny entry bound, more writers than entries: a write that fits must never be refused.
#[test]
fn mt_tiny_entry_bound_never_refuses_a_fitting_write() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(2).max_entries(2).build();
    let refused = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..4u64 {
            let cache = &cache;
            let refused = &refused;
            s.spawn(move || {
                for i in 0..50_000u64 {
                    if cache.insert(t * 1_000_000 + i, i).is_err() {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(refused.load(Ordering::Relaxed), 0, "fitting writes refused");
    cache.validate().unwrap();
    stats_add_up(&cache);
}

/// One hot key in a full cache, writers alternating weights: no livelock, no leak.
#[test]
fn mt_hot_key_in_a_full_cache() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(4)
        .max_weight(1_000)
        .max_entry_weight(200)
        .max_entries(12)
        .weigher(|_, v: &u64| *v)
        .build();
    for k in 1..=12 {
        cache.insert(k, 80).unwrap();
    }
    let done = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..4u64 {
            let cache = &cache;
            let done = &done;
            s.spawn(move || {
                for i in 0..40_000u64 {
                    let w = [10, 200, 80, 150][((t + i) % 4) as usize];
                    cache.insert(0, w).unwrap();
                    if i % 97 == 0 {
                        cache.insert(1 + i % 12, 50 + t).unwrap();
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), 4);
    assert!(cache.weight() <= 1_000);
    cache.validate().unwrap();
    let mut weight = 0;
    for k in 0..=12 {
        if let Some(v) = cache.get(&k) {
            weight += v;
        }
    }
    assert_eq!(cache.weight(), weight);
    stats_add_up(&cache);
}

// ---------------------------------------------------------------------------------------------
// 2. ByteCache namespaces.
// ---------------------------------------------------------------------------------------------

fn key_of_len(len: usize, salt: u8) -> String {
    (0..len)
        .map(|i| char::from(b'a' + ((i as u8 + salt) % 26)))
        .collect()
}

#[test]
fn byte_cache_namespaces_do_not_interfere_at_every_key_length() {
    let cache = ByteCache::builder().max_weight(1 << 24).build();
    for len in 0..=60 {
        let k = key_of_len(len, len as u8);
        cache
            .set(&k, Bytes::from(format!("meta{len}")), None)
            .unwrap();
        cache
            .set_body(&k, Bytes::from(format!("body{len}")))
            .unwrap();
    }
    for len in 0..=60 {
        let k = key_of_len(len, len as u8);
        assert_eq!(
            cache.get(&k).unwrap(),
            Some(Bytes::from(format!("meta{len}")))
        );
        let mut body = String::new();
        cache
            .get_body(&k)
            .unwrap()
            .unwrap()
            .read_to_string(&mut body)
            .unwrap();
        assert_eq!(body, format!("body{len}"));
        // set of metadata leaves the body alone
        cache.set(&k, Bytes::from_static(b"m2"), None).unwrap();
        assert!(cache.get_body(&k).unwrap().is_some(), "len {len}");
        // set_body leaves the metadata alone
        cache.set_body(&k, Bytes::from_static(b"b2")).unwrap();
        assert_eq!(cache.get(&k).unwrap(), Some(Bytes::from_static(b"m2")));
    }
    assert_eq!(cache.len(), 122);
    for len in 0..=60 {
        let k = key_of_len(len, len as u8);
        let mut reader = cache.get_body(&k).unwrap().unwrap();
        cache.delete(&k).unwrap();
        assert_eq!(cache.get(&k).unwrap(), None, "len {len}");
        assert!(cache.get_body(&k).unwrap().is_none(), "len {len}");
        let mut body = Vec::new();
        reader.read_to_end(&mut body).unwrap();
        assert_eq!(body, b"b2");
    }
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.weight(), 0);
    cache.validate().unwrap();
}

#[test]
fn byte_cache_metadata_expiry_leaves_the_body() {
    let clock = MockClock::new();
    let cache = ByteCache::builder().clock(Arc::new(clock.clone())).build();
    cache
        .set(
            "k",
            Bytes::from_static(b"m"),
            Some(Duration::from_secs(1).into()),
        )
        .unwrap();
    cache.set_body("k", Bytes::from_static(b"b")).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.get("k").unwrap(), None);
    cache.purge_expired();
    assert!(
        cache.get_body("k").unwrap().is_some(),
        "a body has no expiry of its own"
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn byte_cache_get_or_set_with_reads_and_writes_metadata_only() {
    let cache = ByteCache::new();
    cache.set_body("k", Bytes::from_static(b"body")).unwrap();
    let v = cache
        .get_or_set_with("k", || {
            Ok::<_, std::io::Error>(Bytes::from_static(b"loaded"))
        })
        .unwrap();
    assert_eq!(v, Bytes::from_static(b"loaded"), "a body is not metadata");
    assert_eq!(cache.get("k").unwrap(), Some(Bytes::from_static(b"loaded")));
    let mut body = String::new();
    cache
        .get_body("k")
        .unwrap()
        .unwrap()
        .read_to_string(&mut body)
        .unwrap();
    assert_eq!(body, "body");
    // a second call does not run the loader
    let v = cache
        .get_or_set_with("k", || -> Result<Bytes, std::io::Error> { unreachable!() })
        .unwrap();
    assert_eq!(v, Bytes::from_static(b"loaded"));
    // a failing loader stores nothing
    let r = cache.get_or_set_with("x", || Err::<Bytes, _>(std::io::Error::other("down")));
    assert!(matches!(r, Err(CacheError::Loader(_))));
    assert_eq!(cache.get("x").unwrap(), None);
    cache.close().unwrap();
    let r = cache.get_or_set_with("y", || -> Result<Bytes, std::io::Error> { unreachable!() });
    assert!(matches!(r, Err(CacheError::Closed)));
}

#[test]
fn byte_cache_oversized_body_refused_and_old_body_kept() {
    let cache = ByteCache::builder().max_weight(8_000).build(); // 1000 per entry
    cache.set_body("k", Bytes::from(vec![1; 100])).unwrap();
    cache.set("k", Bytes::from(vec![2; 100]), None).unwrap();
    let r = cache.set_body("k", Bytes::from(vec![3; 5_000]));
    assert!(matches!(r, Err(CacheError::TooLarge { .. })), "{r:?}");
    assert_eq!(cache.get_body("k").unwrap().unwrap().remaining(), 100);
    assert_eq!(cache.get("k").unwrap().unwrap().len(), 100);
}

#[test]
fn byte_cache_concurrent_writers_of_both_namespaces_keep_the_budget() {
    let cache = ByteCache::builder().shards(4).max_weight(64 * 1024).build();
    thread::scope(|s| {
        for t in 0..3u64 {
            let cache = &cache;
            s.spawn(move || {
                let mut rng = Rng(t + 11);
                for _ in 0..30_000 {
                    let len = 34 + rng.below(12) as usize; // around the inline limit (39 bytes)
                    let k = key_of_len(len, (rng.below(8)) as u8);
                    match rng.below(5) {
                        0 => cache
                            .set(&k, Bytes::from(vec![0; rng.below(2_000) as usize]), None)
                            .unwrap(),
                        1 => cache
                            .set_body(&k, Bytes::from(vec![1; rng.below(6_000) as usize]))
                            .unwrap(),
                        2 => cache.delete(&k).unwrap(),
                        3 => {
                            if let Some(mut b) = cache.get_body(&k).unwrap() {
                                let mut v = Vec::new();
                                b.read_to_end(&mut v).unwrap();
                                assert!(v.iter().all(|&x| x == 1));
                            }
                        }
                        _ => {
                            if let Some(m) = cache.get(&k).unwrap() {
                                assert!(m.iter().all(|&x| x == 0));
                            }
                        }
                    }
                    assert!(cache.weight() <= 64 * 1024);
                }
            });
        }
    });
    cache.validate().unwrap();
    cache.close().unwrap();
    assert_eq!(cache.weight(), 0);
}

// ---------------------------------------------------------------------------------------------
// 3. close racing writers and loaders, with drop counting.
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Counted {
    id: u64,
    live: Arc<Mutex<HashMap<u64, i64>>>,
}

impl Counted {
    fn new(id: u64, live: &Arc<Mutex<HashMap<u64, i64>>>) -> Self {
        *live.lock().unwrap().entry(id).or_insert(0) += 1;
        Counted {
            id,
            live: Arc::clone(live),
        }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new(self.id, &self.live)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut live = self.live.lock().unwrap();
        let n = live
            .get_mut(&self.id)
            .expect("dropped a value never created");
        *n -= 1;
        assert!(*n >= 0, "value {} dropped twice", self.id);
    }
}

fn alive(live: &Arc<Mutex<HashMap<u64, i64>>>) -> i64 {
    live.lock().unwrap().values().sum()
}

fn close_race(bounded: bool, seed: u64) {
    let live = Arc::new(Mutex::new(HashMap::new()));
    let mut b = ShardedCache::builder().shards(4);
    if bounded {
        b = b.max_entries(50);
    }
    let cache: Arc<ShardedCache<u64, Counted>> = Arc::new(b.build());
    let ids = Arc::new(AtomicU64::new(0));
    let after_close_ok = Arc::new(AtomicUsize::new(0));
    let closed_seen = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..3u64 {
        let cache = Arc::clone(&cache);
        let live = Arc::clone(&live);
        let ids = Arc::clone(&ids);
        let after = Arc::clone(&after_close_ok);
        let closed_seen = Arc::clone(&closed_seen);
        handles.push(thread::spawn(move || {
            let mut rng = Rng(seed * 31 + t + 1);
            for _ in 0..20_000 {
                let was_closed = closed_seen.load(Ordering::SeqCst);
                let key = rng.below(100);
                let id = ids.fetch_add(1, Ordering::Relaxed);
                let op = rng.below(3);
                let r = match op {
                    0 => cache.insert(key, Counted::new(id, &live)),
                    1 => cache
                        .get_or_insert_with(key, || Counted::new(id, &live))
                        .map(drop),
                    _ => {
                        cache.remove(&key);
                        Ok(())
                    }
                };
                if was_closed {
                    match r {
                        Err(CacheError::Closed) => {}
                        Ok(()) if op == 2 => {}
                        other => panic!("after close: {other:?}"),
                    }
                    if !cache.is_empty() {
                        after.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Let the writers run a while, then close.
    while ids.load(Ordering::Relaxed) < 10_000 {
        thread::yield_now();
    }
    cache.close();
    closed_seen.store(true, Ordering::SeqCst);
    assert_eq!(cache.len(), 0, "resident right after close");
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        after_close_ok.load(Ordering::Relaxed),
        0,
        "entries resident after close"
    );
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.weight(), 0);
    cache.validate().unwrap();
    stats_add_up(&cache);
    let r = cache.insert(1, Counted::new(u64::MAX, &live));
    assert!(matches!(r, Err(CacheError::Closed)));
    assert!(
        flush_until(|| alive(&live) == 0),
        "values still alive after close: {}",
        alive(&live)
    );
    drop(cache);
    assert_eq!(alive(&live), 0);
}

#[test]
fn close_racing_writers_and_loaders_unbounded() {
    let _t = turn();
    for seed in 0..3 {
        close_race(false, seed);
    }
}

#[test]
fn close_racing_writers_and_loaders_bounded() {
    let _t = turn();
    for seed in 0..3 {
        close_race(true, seed);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Statistics.
// ---------------------------------------------------------------------------------------------

#[test]
fn garbage_weight_returns_to_zero() {
    let _t = turn();
    let cache: ShardedCache<u64, Vec<u8>> = ShardedCache::builder()
        .shards(4)
        .max_weight(100_000)
        .weigher(|_, v: &Vec<u8>| v.len() as u64 + 1)
        .build();
    thread::scope(|s| {
        for t in 0..3u64 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..20_000u64 {
                    cache
                        .insert((t * 7 + i) % 500, vec![0; (i % 1000) as usize])
                        .unwrap();
                    if i % 5 == 0 {
                        cache.remove(&(i % 500));
                    }
                }
            });
        }
    });
    assert!(
        flush_until(|| cache.stats().garbage_weight == 0),
        "garbage stuck at {}",
        cache.stats().garbage_weight
    );
    cache.close();
    assert!(
        flush_until(|| cache.stats().garbage_weight == 0),
        "garbage after close stuck at {}",
        cache.stats().garbage_weight
    );
    assert_eq!(cache.weight(), 0);
}

/// After churn, writes of resident keys with a heavier value: lib.rs promises such a write "never
/// evicts its own key or a neighbour to make room it does not need"; the listener sees the old
/// value leave as Evicted (not Replaced), followed by a neighbour.
#[test]
fn a_growing_replacement_never_evicts_its_own_key() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(1)
        .max_weight(1_000)
        .max_entry_weight(1_000)
        .weigher(|_, v: &u64| *v % 1_000)
        .eviction_listener(move |k: &u64, v: &u64, cause| l.lock().unwrap().push((*k, *v, cause)))
        .build();
    let mut rng = Rng(5);
    let mut own = Vec::new();
    let mut model: HashMap<u64, u64> = HashMap::new();
    for round in 0..20_000u64 {
        let k = rng.below(40);
        if rng.below(3) == 0 {
            let _ = cache.get(&rng.below(40));
        }
        let old = model.get(&k).copied();
        let w = 20 + rng.below(80);
        log.lock().unwrap().clear();
        cache.insert(k, round * 1_000 + w).unwrap();
        let l = log.lock().unwrap().clone();
        for &(kk, _, _) in &l {
            model.remove(&kk);
        }
        if let Some(old) = old {
            if l.iter()
                .any(|&(kk, v, c)| kk == k && v == old && c != RemovalCause::Replaced)
            {
                own.push((round, k, old % 1000, w, l.clone()));
            }
        }
        model.insert(k, round * 1_000 + w);
    }
    assert!(
        own.is_empty(),
        "{} writes evicted their own key, e.g. {:?}",
        own.len(),
        &own[..own.len().min(3)]
    );
}

/// A write that fits an empty cache must not be refused as TooLarge because other writers hold
/// reservations for a moment (more writers than the bound, two cores).
#[test]
fn many_writers_tiny_weight_budget_never_refuse_a_fitting_write() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(2)
        .max_weight(100)
        .max_entry_weight(60)
        .weigher(|_, _| 60)
        .build();
    let refused = AtomicUsize::new(0);
    let first = Mutex::new(None);
    thread::scope(|s| {
        for t in 0..8u64 {
            let cache = &cache;
            let refused = &refused;
            let first = &first;
            s.spawn(move || {
                for i in 0..30_000u64 {
                    if let Err(e) = cache.insert(t * 1_000_000 + i, i) {
                        refused.fetch_add(1, Ordering::Relaxed);
                        first.lock().unwrap().get_or_insert(format!("{e:?}"));
                    }
                }
            });
        }
    });
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "fitting writes refused, first: {:?}",
        first.lock().unwrap()
    );
    cache.validate().unwrap();
    stats_add_up(&cache);
}
