//! Drop accounting: every key and value the engine is given is dropped exactly once, and never
//! while the cache still holds it.
//!
//! Keys and values are [`Tracked`]: each instance (clones included) takes a unique id from its
//! test's [`Tracker`], which records the ids created and the ids dropped, and counts a second drop
//! of one id. The engine retires unlinked entries to crossbeam-epoch's global collector, which
//! drops them later, so a test that expects drops calls [`settle`]: it pins and flushes until
//! every created instance is dropped (or gives up after many rounds), then the test asserts.
//! A test that expects an instance to stay alive flushes just as hard first, so that an early
//! drop would have happened by the time it looks.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use epochcache::{CacheError, MockClock, ShardedCache};

/// What one test created and dropped.
#[derive(Default, Debug)]
struct Tracker {
    next_id: AtomicU64,
    created: AtomicUsize,
    dropped: Mutex<HashSet<u64>>,
    double_drops: AtomicUsize,
}

impl Tracker {
    fn new() -> Arc<Self> {
        Arc::new(Tracker::default())
    }

    fn make(self: &Arc<Self>, n: u32) -> Tracked {
        self.created.fetch_add(1, Ordering::SeqCst);
        Tracked {
            n,
            id: self.next_id.fetch_add(1, Ordering::SeqCst),
            tracker: Arc::clone(self),
        }
    }

    fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.lock().unwrap().len()
    }

    fn is_dropped(&self, id: u64) -> bool {
        self.dropped.lock().unwrap().contains(&id)
    }

    fn alive(&self) -> usize {
        self.created() - self.dropped()
    }

    fn assert_no_double_drop(&self) {
        assert_eq!(
            self.double_drops.load(Ordering::SeqCst),
            0,
            "an instance was dropped twice"
        );
    }
}

/// A key or value that reports its drop. Equality and hashing look only at `n`, so a key can be
/// looked up by a plain `u32`.
#[derive(Debug)]
struct Tracked {
    n: u32,
    id: u64,
    tracker: Arc<Tracker>,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.tracker.make(self.n)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Never panic here: this may run inside the epoch collector.
        if !self.tracker.dropped.lock().unwrap().insert(self.id) {
            self.tracker.double_drops.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}

impl Eq for Tracked {}

impl Hash for Tracked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.n.hash(state);
    }
}

impl Borrow<u32> for Tracked {
    fn borrow(&self) -> &u32 {
        &self.n
    }
}

type Cache = ShardedCache<Tracked, Tracked>;

/// Runs the epoch collector until `done` holds; returns whether it held.
///
/// The collector frees a retired entry only once every thread pinned at the time has unpinned,
/// and the tests of this file run in parallel on few cores, so a thread of another test may be
/// descheduled while pinned: each round yields, so that such a thread runs and unpins. The
/// rounds are many (10 000 at least) and bounded by a generous wall-clock limit, not sleeps.
fn flush_until(done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    let mut rounds = 0u64;
    while !done() {
        if rounds >= 10_000 && start.elapsed() > Duration::from_secs(20) {
            return false;
        }
        crossbeam_epoch::pin().flush();
        thread::yield_now();
        rounds += 1;
    }
    true
}

/// Flushes until every instance the tracker made is dropped, then asserts it and that none was
/// dropped twice.
fn settle(tracker: &Tracker) {
    let all = flush_until(|| tracker.dropped() == tracker.created());
    assert!(
        all,
        "{} instances created, {} dropped",
        tracker.created(),
        tracker.dropped()
    );
    tracker.assert_no_double_drop();
}

/// Flushes hard (as many rounds as [`settle`] would take at most, or until `expected_alive`
/// instances are left), so that any pending drop has run.
fn flush_hard(tracker: &Tracker, expected_alive: usize) {
    flush_until(|| tracker.alive() <= expected_alive);
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
        thread::yield_now();
    }
}

/// The id of the value stored under `n`, without cloning it.
fn stored_id(cache: &Cache, n: u32) -> Option<u64> {
    cache.get_with(&n, |v| v.id)
}

#[test]
fn overwritten_values_are_dropped_once_and_the_current_one_is_kept() {
    let t = Tracker::new();
    let cache: Cache = ShardedCache::builder().shards(2).build();
    let mut old_ids = Vec::new();
    for round in 0..50 {
        for n in 0..20 {
            let v = t.make(round);
            if round > 0 {
                old_ids.push(stored_id(&cache, n).unwrap());
            }
            cache.insert(t.make(n), v).unwrap();
        }
    }
    // 20 keys live, each with its latest value: every key instance but the first one per key,
    // and every value but the latest, must go.
    flush_hard(&t, 40);
    assert_eq!(t.alive(), 40, "20 keys and 20 values stay");
    for id in &old_ids {
        assert!(t.is_dropped(*id), "replaced value {id} not dropped");
    }
    for n in 0..20 {
        let id = stored_id(&cache, n).unwrap();
        assert!(!t.is_dropped(id), "a stored value was dropped");
        assert_eq!(cache.get_with(&n, |v| v.n), Some(49));
    }
    t.assert_no_double_drop();
    drop(cache);
    settle(&t);
}

#[test]
fn removed_entries_are_dropped_once() {
    let t = Tracker::new();
    let cache: Cache = ShardedCache::builder().shards(4).build();
    for n in 0..100 {
        cache.insert(t.make(n), t.make(n)).unwrap();
    }
    let removed_ids: Vec<u64> = (0..100)
        .step_by(2)
        .map(|n| stored_id(&cache, n).unwrap())
        .collect();
    for n in (0..100).step_by(2) {
        assert!(cache.remove(&n));
        assert!(!cache.remove(&n), "removed twice");
    }
    flush_hard(&t, 100);
    assert_eq!(t.alive(), 100, "50 keys and 50 values stay");
    for id in removed_ids {
        assert!(t.is_dropped(id));
    }
    for n in (1..100).step_by(2) {
        assert!(!t.is_dropped(stored_id(&cache, n).unwrap()));
    }
    drop(cache);
    settle(&t);
}

#[test]
fn clones_handed_out_by_get_are_the_callers() {
    let t = Tracker::new();
    let cache: Cache = ShardedCache::builder().shards(1).build();
    cache.insert(t.make(1), t.make(10)).unwrap();
    let stored = stored_id(&cache, 1).unwrap();
    let copies: Vec<Tracked> = (0..10).map(|_| cache.get(&1).unwrap()).collect();
    assert!(copies.iter().all(|c| c.n == 10 && c.id != stored));
    drop(copies);
    flush_hard(&t, 2);
    assert_eq!(
        t.alive(),
        2,
        "the copies are dropped by the caller, the entry stays"
    );
    assert!(!t.is_dropped(stored));
    drop(cache);
    settle(&t);
}

#[test]
fn evicted_entries_are_dropped_once_and_the_resident_ones_kept() {
    let t = Tracker::new();
    let cache: Cache = ShardedCache::builder().shards(4).max_entries(32).build();
    for n in 0..320 {
        cache.insert(t.make(n), t.make(n)).unwrap();
        if n % 7 == 0 {
            // Reads raise access counters, so eviction has to pass over some entries.
            let _ = cache.get_with(&(n / 2), |v| v.n);
        }
    }
    let len = cache.len();
    assert!(len <= 32 && len > 0);
    flush_hard(&t, 2 * len);
    // Exactly the resident entries are alive: every evicted key and value was dropped.
    assert_eq!(t.alive(), 2 * len);
    let resident: Vec<u32> = (0..320)
        .filter(|n| stored_id(&cache, *n).is_some())
        .collect();
    assert_eq!(resident.len(), len);
    for n in resident {
        assert!(!t.is_dropped(stored_id(&cache, n).unwrap()));
    }
    t.assert_no_double_drop();
    drop(cache);
    settle(&t);
}

#[test]
fn expired_entries_swept_by_writes_are_dropped_once() {
    let t = Tracker::new();
    let clock = MockClock::new();
    let cache: Cache = ShardedCache::builder()
        .shards(1)
        .clock(Arc::new(clock.clone()))
        .build();
    for n in 0..64 {
        let expiry = Some(Duration::from_secs(1).into());
        cache
            .insert_with_expiry(t.make(n), t.make(n), expiry)
            .unwrap();
    }
    clock.advance(Duration::from_secs(2));
    // Writes sweep expired entries out group by group.
    for round in 0..200 {
        cache.insert(t.make(1_000), t.make(round)).unwrap();
    }
    for n in 0..64 {
        assert_eq!(stored_id(&cache, n), None, "expired");
    }
    // 200 writes sweep the table's groups several times over: only key 1000 is left.
    assert_eq!(cache.len(), 1);
    flush_hard(&t, 2);
    assert_eq!(
        t.alive(),
        2,
        "every expired entry and replaced value was dropped"
    );
    drop(cache);
    settle(&t);
}

#[test]
fn a_refused_insert_drops_its_key_and_value() {
    let t = Tracker::new();
    let cache: Cache = ShardedCache::builder()
        .weigher(|_, v: &Tracked| u64::from(v.n))
        .max_entry_weight(10)
        .build();
    cache.insert(t.make(1), t.make(5)).unwrap();
    let kept = stored_id(&cache, 1).unwrap();
    assert!(matches!(
        cache.insert(t.make(1), t.make(11)),
        Err(CacheError::TooLarge { .. })
    ));
    flush_hard(&t, 2);
    assert_eq!(
        t.alive(),
        2,
        "the refused key and value are dropped, the old entry stays"
    );
    assert!(!t.is_dropped(kept));
    cache.close();
    assert!(matches!(
        cache.insert(t.make(2), t.make(1)),
        Err(CacheError::Closed)
    ));
    settle(&t);
    drop(cache);
}

#[test]
fn close_drops_everything_while_the_cache_lives() {
    let t = Tracker::new();
    let cache: Cache = ShardedCache::builder().shards(4).build();
    for n in 0..500 {
        cache.insert(t.make(n), t.make(n)).unwrap();
    }
    for n in (0..500).step_by(3) {
        cache.remove(&n);
    }
    cache.close();
    assert_eq!(cache.len(), 0);
    settle(&t);
    cache.close();
    settle(&t);
    drop(cache);
    settle(&t);
}

#[test]
fn dropping_the_cache_drops_every_entry_once() {
    let t = Tracker::new();
    // Growth retires old tables that point at live entries: their drop must not drop those
    // entries, and the last table's must. The listener hears of removals, not of the drop.
    let heard = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&heard);
    let cache: Cache = ShardedCache::builder()
        .shards(2)
        .eviction_listener(move |_, _, _| {
            count.fetch_add(1, Ordering::SeqCst);
        })
        .build();
    for n in 0..2_000 {
        cache.insert(t.make(n), t.make(n)).unwrap();
    }
    for n in (0..2_000).step_by(2) {
        cache.remove(&n);
    }
    for n in 0..500 {
        cache.insert(t.make(n), t.make(n + 1)).unwrap();
    }
    let live = cache.len();
    flush_hard(&t, 2 * live);
    assert_eq!(
        t.alive(),
        2 * live,
        "rebuilds drop nothing that is still stored"
    );
    cache.validate().unwrap();
    let removals = heard.load(Ordering::SeqCst);
    assert_eq!(removals, 1_000 + 250, "1,000 removed, 250 replaced");
    drop(cache);
    settle(&t);
    assert_eq!(
        heard.load(Ordering::SeqCst),
        removals,
        "a drop is not a removal"
    );
}

#[test]
fn concurrent_writers_drop_everything_exactly_once() {
    concurrent_writers_with_retire_batch(4);
}

/// A thread that hands each retirement over alone, or gathers as many as crossbeam-epoch's bag
/// holds, still frees every value exactly once.
#[test]
fn every_retire_batch_drops_everything_exactly_once() {
    for batch in [1, 64] {
        concurrent_writers_with_retire_batch(batch);
    }
}

fn concurrent_writers_with_retire_batch(batch: u32) {
    let t = Tracker::new();
    let cache: Cache = ShardedCache::builder()
        .shards(4)
        .max_entries(64)
        .retire_batch(batch)
        .build();
    thread::scope(|s| {
        for th in 0..3u32 {
            let (cache, t) = (&cache, &t);
            s.spawn(move || {
                for i in 0..3_000u32 {
                    let n = (i * 7 + th * 13) % 200;
                    match i % 5 {
                        0 => {
                            cache.remove(&n);
                        }
                        1 => {
                            let _ = cache.get(&n);
                        }
                        _ => cache.insert(t.make(n), t.make(i)).unwrap(),
                    }
                }
            });
        }
    });
    cache.validate().unwrap();
    let len = cache.len();
    flush_hard(&t, 2 * len);
    assert_eq!(t.alive(), 2 * len, "exactly the resident entries are alive");
    drop(cache);
    settle(&t);
}
