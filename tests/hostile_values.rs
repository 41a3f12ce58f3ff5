//! Hostile keys and values: zero-sized and very large keys, a `Clone`, a `Drop` or a `get_with`
//! closure that panics (nothing stored is lost, no budget leaks, no pin is left behind, `close`
//! still empties every shard), a pinned handle held while other threads write and evict, a weigher
//! that writes to its own cache, and keys that panic in an insert or a rebuild. Tests that depend
//! on the process-wide epoch collector take turns (`turn()`).

mod support;
use support::{flush_until, quiet, stats_add_up, turn, unless_deadlocked, Counted};

use std::cell::RefCell;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use epochcache::{BaseCache, ByteCache, MockClock, RemovalCause, SeparateBodyCache, ShardedCache};

// =============================================================================================
// 3. Unusual types.
// =============================================================================================

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Unit;

#[test]
fn zero_sized_keys_and_values() {
    let cache: ShardedCache<Unit, ()> = ShardedCache::builder().max_entries(4).build();
    assert_eq!(cache.get(&Unit), None);
    cache.insert(Unit, ()).unwrap();
    cache.insert(Unit, ()).unwrap();
    assert_eq!(cache.get(&Unit), Some(()));
    assert_eq!(cache.len(), 1);
    assert!(cache.remove(&Unit));
    assert!(!cache.remove(&Unit));
    cache.validate().unwrap();
    let units: ShardedCache<u64, ()> = ShardedCache::builder().max_weight(4000).build();
    for k in 0..10_000 {
        units.insert(k, ()).unwrap();
    }
    assert!(units.weight() <= 4000);
    units.validate().unwrap();
    let unbounded: ShardedCache<u64, ()> = ShardedCache::new();
    for k in 0..10_000 {
        unbounded.insert(k, ()).unwrap();
    }
    assert_eq!(unbounded.len(), 10_000);
    assert_eq!(unbounded.get_or_insert_with(5, || ()).unwrap(), ());
    unbounded.validate().unwrap();
    stats_add_up(&units);
}

#[test]
fn very_large_keys() {
    let cache: ShardedCache<[u8; 4096], u32> = ShardedCache::builder().max_weight(1 << 20).build();
    for i in 0..2000u32 {
        let mut k = [0u8; 4096];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k[4095] = 1;
        cache.insert(k, i).unwrap();
        assert_eq!(cache.get(&k), Some(i));
    }
    assert!(cache.weight() <= 1 << 20);
    cache.validate().unwrap();
    let strings: ShardedCache<String, u32> = ShardedCache::builder()
        .max_weight(1 << 22)
        .weigher(|k: &String, _| k.len() as u64)
        .build();
    for i in 0..200u32 {
        let k = format!("{i}:{}", "z".repeat(64 << 10));
        strings.insert(k.clone(), i).unwrap();
        assert_eq!(strings.get(k.as_str()), Some(i));
    }
    assert!(strings.weight() <= 1 << 22);
    strings.validate().unwrap();
    let bytes = ByteCache::builder().max_weight(1 << 24).build();
    let big = "q".repeat(64 << 10);
    bytes.set(&big, Bytes::from_static(b"v"), None).unwrap();
    bytes.set_body(&big, Bytes::from_static(b"b")).unwrap();
    assert_eq!(bytes.get(&big).unwrap(), Some(Bytes::from_static(b"v")));
    bytes.delete(&big).unwrap();
    assert_eq!(bytes.get(&big).unwrap(), None);
    assert!(bytes.get_body(&big).unwrap().is_none());
    bytes.validate().unwrap();
}

static CLONE_PANICS: AtomicBool = AtomicBool::new(false);

#[derive(Debug, PartialEq)]
struct TouchyClone(u64);

impl Clone for TouchyClone {
    fn clone(&self) -> Self {
        if CLONE_PANICS.load(Ordering::SeqCst) {
            panic!("clone refused");
        }
        TouchyClone(self.0)
    }
}

#[test]
fn a_panicking_clone_corrupts_nothing() {
    let _t = turn();
    let cache: ShardedCache<u64, TouchyClone> = ShardedCache::builder()
        .shards(2)
        .max_entries(100)
        .record_stats()
        .build();
    for k in 0..100 {
        cache.insert(k, TouchyClone(k)).unwrap();
    }
    CLONE_PANICS.store(true, Ordering::SeqCst);
    for k in 0..100 {
        assert!(quiet(|| cache.get(&k)).is_err());
        assert!(quiet(|| cache.pin().get(&k)).is_err());
        assert!(quiet(|| cache.get_or_insert_with(k, || TouchyClone(0))).is_err());
    }
    // A loader whose value's clone (made for the insert) panics: nothing is stored.
    assert!(quiet(|| cache.get_or_insert_with(1000, || TouchyClone(1000))).is_err());
    CLONE_PANICS.store(false, Ordering::SeqCst);
    // Everything still works; a new flight for a key whose leader panicked is not stuck.
    assert_eq!(
        cache.get_or_insert_with(1000, || TouchyClone(9)).unwrap(),
        TouchyClone(9)
    );
    assert_eq!(cache.get(&1000), Some(TouchyClone(9)));
    for k in 0..100 {
        cache.insert(k + 200, TouchyClone(k)).unwrap();
    }
    cache.validate().unwrap();
    assert!(cache.len() <= 100);
    stats_add_up(&cache);
}

#[test]
fn a_panicking_get_with_closure_leaks_no_pin() {
    let _t = turn();
    let cache: ShardedCache<u64, Arc<Vec<u8>>> = ShardedCache::builder()
        .shards(2)
        .max_weight(1 << 20)
        .weigher(|_, v: &Arc<Vec<u8>>| v.len() as u64 + 64)
        .build();
    for k in 0..50 {
        cache.insert(k, Arc::new(vec![0; 1000])).unwrap();
    }
    for k in 0..50 {
        assert!(quiet(|| cache.get_with(&k, |_| panic!("reader"))).is_err());
        let p = cache.pin();
        assert!(quiet(|| p.get_with(&k, |_| panic!("reader"))).is_err());
    }
    // Churn, then everything retired must be freed: no pin leaked.
    for i in 0..5000u64 {
        cache.insert(i % 200, Arc::new(vec![1; 1000])).unwrap();
    }
    assert!(
        flush_until(|| cache.stats().garbage_weight == 0),
        "{:?}",
        cache.stats()
    );
    cache.validate().unwrap();
}

#[test]
fn a_pinned_handle_held_while_others_write_and_evict() {
    let _t = turn();
    let cache = Arc::new(
        ShardedCache::<u64, Arc<Vec<u8>>>::builder()
            .shards(4)
            .max_weight(1 << 18)
            .weigher(|_, v: &Arc<Vec<u8>>| v.len() as u64 + 64)
            .build(),
    );
    for k in 0..100 {
        cache.insert(k, Arc::new(vec![k as u8; 500])).unwrap();
    }
    let pinned = cache.pin();
    let writer = {
        let cache = Arc::clone(&cache);
        thread::spawn(move || {
            for i in 0..20_000u64 {
                let k = i % 2000;
                cache.insert(k, Arc::new(vec![k as u8; 500])).unwrap();
                if i % 7 == 0 {
                    cache.remove(&(i % 1500));
                }
                assert!(cache.weight() <= 1 << 18);
            }
        })
    };
    let mut hits = 0;
    while !writer.is_finished() {
        for k in 0..2000u64 {
            if let Some(len) = pinned.get_with(&k, |v| {
                assert!(v.iter().all(|&b| b == k as u8));
                v.len()
            }) {
                assert_eq!(len, 500);
                hits += 1;
            }
        }
    }
    writer.join().unwrap();
    drop(pinned);
    assert!(hits > 0);
    assert!(
        flush_until(|| cache.stats().garbage_weight == 0),
        "{:?}",
        cache.stats()
    );
    cache.validate().unwrap();
    stats_add_up(&cache);
}

// ---- Values whose Drop panics -----------------------------------------------------------------

/// Panics in its Drop once, when armed.
static DROP_ARMED: AtomicBool = AtomicBool::new(false);
static DROPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct Grenade(u64);

impl Clone for Grenade {
    fn clone(&self) -> Self {
        Grenade(self.0)
    }
}

impl Drop for Grenade {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
        if !std::thread::panicking() && DROP_ARMED.swap(false, Ordering::SeqCst) {
            panic!("grenade {} went off in Drop", self.0);
        }
    }
}

/// Retires one value (replaced) and hands it to the global queue sealed in an older epoch, so
/// that the next operation's flush collects it: a value's Drop then runs inside that operation.
fn retire_one_grenade(cache: &ShardedCache<u64, Grenade>, key: u64) {
    cache.insert(key, Grenade(key)).unwrap();
    cache.insert(key, Grenade(key + 1)).unwrap();
    crossbeam_epoch::pin().flush();
    DROP_ARMED.store(true, Ordering::SeqCst);
}

/// Drains earlier garbage so that nothing else explodes.
fn drain_garbage() {
    DROP_ARMED.store(false, Ordering::SeqCst);
    for _ in 0..64 {
        crossbeam_epoch::pin().flush();
    }
}

/// A value's `Drop` that panicked inside crossbeam-epoch's collection unwound out of the bag
/// of deferred functions, skipping the rest: the garbage count's decrement for that value (and
/// every other entry deferred after it, never freed). `garbage_weight` stayed at 1000 for good,
/// and every later write flushed for it. The panic is caught there now, and goes on at that
/// thread's next write.
#[test]
fn a_panicking_drop_in_a_collection_leaks_no_garbage_weight() {
    let _t = turn();
    drain_garbage();
    let cache: ShardedCache<u64, Grenade> = ShardedCache::builder()
        .shards(1)
        .max_weight(1 << 20)
        .max_entry_weight(1000)
        .weigher(|_, _| 1000)
        .build();
    retire_one_grenade(&cache, 1); // retires a value with 1000 of garbage weight, and arms
    let _ = quiet(|| {
        for _ in 0..64 {
            crossbeam_epoch::pin().flush();
        }
    });
    // The panic goes on at the next write of the thread whose collection caught it: this one's,
    // unless another test's thread collected the grenade.
    let _ = quiet(|| cache.insert(2, Grenade(3)));
    drain_garbage();
    assert!(
        flush_until(|| cache.stats().garbage_weight == 0),
        "garbage weight leaked: {}",
        cache.stats().garbage_weight
    );
    cache.validate().unwrap();
}

#[test]
fn a_panicking_drop_during_purge_leaks_no_budget() {
    let _t = turn();
    drain_garbage();
    let clock = MockClock::new();
    let cache: ShardedCache<u64, Grenade> = ShardedCache::builder()
        .shards(1)
        .max_entries(20)
        .clock(Arc::new(clock.clone()))
        .build();
    for k in 0..12 {
        cache
            .insert_with_expiry(k, Grenade(k), Some(Duration::from_secs(1).into()))
            .unwrap();
    }
    retire_one_grenade(&cache, 100);
    clock.advance(Duration::from_secs(1));
    // The armed Drop panics here or in the drain below, wherever the collector reaches it.
    let _ = quiet(|| cache.purge_expired());
    drain_garbage();
    // The 12 expired entries are gone; key 100 is the only one left.
    assert_eq!(cache.len(), 1);
    // A cache of 20 holding 1 entry must take 19 more keys without evicting any.
    for k in 200..219 {
        cache.insert(k, Grenade(k)).unwrap();
    }
    let s = cache.stats();
    assert_eq!(
        (cache.len(), s.evicted),
        (20, 0),
        "capacity lost to a panicking Drop: stored entries evicted early"
    );
    // The budget counts exactly the linked entries.
    cache.validate().unwrap();
}

#[test]
fn a_panicking_drop_during_a_write_leaks_no_budget() {
    let _t = turn();
    drain_garbage();
    let clock = MockClock::new();
    let cache: ShardedCache<u64, Grenade> = ShardedCache::builder()
        .shards(1)
        .max_entries(20)
        .max_weight(1 << 20)
        .max_entry_weight(100)
        .weigher(|_, _| 100)
        .clock(Arc::new(clock.clone()))
        .build();
    for k in 0..2 {
        cache
            .insert_with_expiry(k, Grenade(k), Some(Duration::from_secs(1).into()))
            .unwrap();
    }
    cache.insert(50, Grenade(50)).unwrap();
    retire_one_grenade(&cache, 100);
    clock.advance(Duration::from_secs(1));
    // A replacement of key 50 that also sweeps the two expired entries.
    // The armed Drop panics here or in the drain below, wherever the collector reaches it.
    let _ = quiet(|| cache.insert(50, Grenade(51)));
    drain_garbage();
    cache.validate().unwrap();
    let used = cache.weight();
    let linked = cache.len() as u64 * 100;
    assert_eq!(
        used,
        linked,
        "weight budget {used} for {} entries",
        cache.len()
    );
}

#[test]
fn a_panicking_drop_during_close_leaves_nothing_readable() {
    let _t = turn();
    drain_garbage();
    let cache: ShardedCache<u64, Grenade> =
        ShardedCache::builder().shards(8).max_entries(1000).build();
    for k in 0..400 {
        cache.insert(k, Grenade(k)).unwrap();
    }
    retire_one_grenade(&cache, 5000);
    // The armed Drop panics here or in the drain below, wherever the collector reaches it.
    let _ = quiet(|| cache.close());
    drain_garbage();
    let readable = (0..400).filter(|k| cache.get(k).is_some()).count();
    assert_eq!(readable, 0, "{readable} entries readable after close");
    cache.validate().unwrap();
}

#[test]
fn a_panicking_drop_during_remove_keeps_other_entries() {
    let _t = turn();
    drain_garbage();
    let cache: ShardedCache<u64, Grenade> =
        ShardedCache::builder().shards(2).max_entries(100).build();
    for k in 0..50 {
        cache.insert(k, Grenade(k)).unwrap();
    }
    for round in 0..20 {
        retire_one_grenade(&cache, 1000 + round);
        let _ = quiet(|| {
            for k in 0..4 {
                cache.remove(&(900 + k));
                cache.insert(900 + k, Grenade(k)).unwrap();
                cache.remove(&(900 + k));
            }
        });
        drain_garbage();
    }
    for k in 0..50 {
        assert_eq!(cache.get(&k).map(|g| g.0), Some(k), "stored entry {k} lost");
    }
    cache.validate().unwrap();
}

thread_local! {
    static WEIGHER_CACHE: RefCell<Option<Arc<ShardedCache<u64, u64>>>> =
        const { RefCell::new(None) };
}

/// A caller's weigher is user code and runs with no shard lock held: one that writes to the
/// cache it weighs for (here a removal, which takes the shard's lock) neither deadlocks a new key
/// nor a replacement, whose old entry it weighs too.
#[test]
fn a_weigher_that_writes_to_the_cache_does_not_deadlock() {
    let got = unless_deadlocked(|| {
        let cache: Arc<ShardedCache<u64, u64>> = Arc::new(
            ShardedCache::builder()
                .shards(1)
                .max_weight(1000)
                .max_entry_weight(1000)
                .weigher(|_, v| {
                    WEIGHER_CACHE.with(|c| {
                        if let Some(cache) = c.borrow().as_ref() {
                            cache.remove(&u64::MAX);
                        }
                    });
                    *v
                })
                .build(),
        );
        cache.insert(1, 10).unwrap();
        WEIGHER_CACHE.with(|c| *c.borrow_mut() = Some(Arc::clone(&cache)));
        cache.insert(1, 20).unwrap();
        cache.insert(2, 30).unwrap();
        // Over the budget: the write evicts, and the evicted entry is weighed too.
        cache.insert(3, 990).unwrap();
        WEIGHER_CACHE.with(|c| *c.borrow_mut() = None);
        (cache.get(&3), cache.len(), cache.weight())
    });
    assert_eq!(
        got,
        Some((Some(990), 1, 990)),
        "a write deadlocked on its own shard lock"
    );
}

/// Every key hashes alike, so every probe compares keys; once armed on a thread, the `Eq` of that
/// thread's `TOUCHY_AFTER`-th comparison panics (per thread, so tests running at once do not
/// arm each other's keys).
#[derive(Debug, Clone)]
struct Touchy(u64);
thread_local! {
    static TOUCHY_AFTER: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}
impl Hash for Touchy {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(7);
    }
}
impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        let left = TOUCHY_AFTER.get();
        TOUCHY_AFTER.set(left.saturating_sub(1));
        if left == 1 {
            panic!("Eq panics");
        }
        self.0 == other.0
    }
}
impl Eq for Touchy {}

/// A write that evicts under its shard's lock and then fails in user code (here the key's `Eq`
/// in the insert's probe, after the lookup and the eviction) loses nothing: the evicted entry's
/// listener still hears of it, the write's reservation is given back, and the bound still
/// admits as many entries as before.
#[test]
fn a_key_that_panics_after_an_eviction_loses_no_notice_and_no_budget() {
    let heard = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&heard);
    let cache: ShardedCache<Touchy, u64> = ShardedCache::builder()
        .shards(1)
        .max_entries(2)
        .eviction_listener(move |_, _, cause| {
            if cause == RemovalCause::Evicted {
                h.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build();
    cache.insert(Touchy(1), 1).unwrap();
    cache.insert(Touchy(2), 2).unwrap();
    // The write of key 3 compares it with keys 1 and 2 in its lookup, evicts one of them, then
    // compares it with the other in the insert's probe: the third comparison panics.
    TOUCHY_AFTER.set(3);
    assert!(quiet(|| cache.insert(Touchy(3), 3)).is_err());
    TOUCHY_AFTER.set(usize::MAX);
    let stats = cache.stats();
    assert_eq!(stats.evicted, 1, "the write evicted before it failed");
    assert_eq!(heard.load(Ordering::SeqCst), 1, "the listener heard of it");
    assert_eq!(cache.len(), 1);
    cache.validate().unwrap();
    stats_add_up(&cache);
    for k in 10..20 {
        cache.insert(Touchy(k), k).unwrap();
    }
    assert_eq!(
        cache.len(),
        2,
        "the failed write's reservation was given back"
    );
}

/// A value that counts its drops and, as it is dropped, reads the cache it was written to: a
/// drop made under that cache's shard lock would deadlock.
struct ReadsItsCache {
    drops: Arc<AtomicUsize>,
    cache: std::sync::Weak<ShardedCache<Touchy, ReadsItsCache>>,
}
impl Clone for ReadsItsCache {
    fn clone(&self) -> Self {
        ReadsItsCache {
            drops: Arc::clone(&self.drops),
            cache: self.cache.clone(),
        }
    }
}
impl Drop for ReadsItsCache {
    fn drop(&mut self) {
        if let Some(cache) = self.cache.upgrade() {
            let _ = cache.len();
        }
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// A write whose key's `Eq` panics in the insert's probe fails without leaking what it
/// allocated: the entry it never linked is freed, its value dropped exactly once, after the
/// shard's lock is released; what the cache held stays.
#[test]
fn a_key_that_panics_in_the_insert_leaks_neither_its_key_nor_its_value() {
    let outcome = unless_deadlocked(|| {
        let cache: Arc<ShardedCache<Touchy, ReadsItsCache>> =
            Arc::new(ShardedCache::builder().shards(1).build());
        let value = |drops: &Arc<AtomicUsize>| ReadsItsCache {
            drops: Arc::clone(drops),
            cache: Arc::downgrade(&cache),
        };
        let (kept, failed) = (Arc::default(), Arc::default());
        cache.insert(Touchy(1), value(&kept)).unwrap();
        // The write of key 2 compares it with key 1 in its probe, and that comparison panics.
        TOUCHY_AFTER.set(1);
        assert!(quiet(|| cache.insert(Touchy(2), value(&failed))).is_err());
        TOUCHY_AFTER.set(usize::MAX);
        let failed_drops = failed.load(Ordering::SeqCst);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get_with(&Touchy(1), |_| ()), Some(()));
        cache.validate().unwrap();
        (failed_drops, kept.load(Ordering::SeqCst))
    });
    let (failed_drops, kept_drops) =
        outcome.expect("the failed write's value was dropped under the shard lock");
    assert_eq!(
        failed_drops, 1,
        "the failed write's value was leaked or dropped twice"
    );
    assert_eq!(kept_drops, 0, "the stored value was dropped");
}

/// A key whose `Hash`, once armed on a thread, panics at that thread's `BOMB_AFTER`-th call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HashBomb(u64);
thread_local! {
    static BOMB_AFTER: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}
impl Hash for HashBomb {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let left = BOMB_AFTER.get();
        BOMB_AFTER.set(left.saturating_sub(1));
        if left == 1 {
            panic!("Hash panics");
        }
        self.0.hash(h);
    }
}

/// A write whose key's `Hash` panics in the table's rebuild (which rehashes every stored key)
/// fails without leaking its entry, and the table it was rebuilding from stays whole.
#[test]
fn a_key_that_panics_in_a_rebuild_leaks_nothing_and_loses_nothing() {
    let cache: ShardedCache<HashBomb, Counted> = ShardedCache::builder()
        .shards(1)
        .initial_capacity(0)
        .build();
    let (kept, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // The smallest table is one group of seven slots: six entries fill it.
    for k in 0..6 {
        cache
            .insert(HashBomb(k), Counted(Arc::clone(&kept)))
            .unwrap();
    }
    // The seventh write hashes its own key, then rebuilds the table, rehashing the six stored
    // keys: the second call panics.
    BOMB_AFTER.set(2);
    let write = quiet(|| cache.insert(HashBomb(6), Counted(Arc::clone(&failed))));
    BOMB_AFTER.set(usize::MAX);
    assert!(write.is_err(), "the rebuild did not hash the stored keys");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        1,
        "the failed write's value was leaked or dropped twice"
    );
    assert_eq!(kept.load(Ordering::SeqCst), 0, "a stored value was dropped");
    assert_eq!(cache.len(), 6);
    for k in 0..6 {
        assert!(
            cache.get_with(&HashBomb(k), |_| ()).is_some(),
            "key {k} lost"
        );
    }
    cache.validate().unwrap();
    cache.insert(HashBomb(6), Counted(failed)).unwrap();
    assert_eq!(cache.len(), 7, "the table grows on the next write");
}
