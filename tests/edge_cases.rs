//! Edge cases of the public API, each once a bug or a promise worth pinning down: user code
//! that panics or re-enters, replacements in a full cache, deadlines on unaligned clocks,
//! colliding hashes, degenerate bounds and sizes, use after close. Each test is small and fast;
//! time is a `MockClock`, and the re-entrance test gives up after five seconds instead of hanging
//! if the cache waits for itself.

mod support;
use support::{quiet, stats_add_up, unless_deadlocked};

use std::cell::RefCell;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use epochcache::{
    BaseCache, ByteCache, CacheError, Clock, Expires, MockClock, RemovalCause, SeparateBodyCache,
    ShardedCache,
};

// ---------------------------------------------------------------------------------------------
// A listener that panics loses neither the budget nor the cache's usability.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_panicking_listener_does_not_leak_the_entry_budget() {
    let boom = Arc::new(AtomicBool::new(false));
    let b = Arc::clone(&boom);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(1)
        .max_entries(1)
        .eviction_listener(move |_k, _v, _cause| {
            if b.swap(false, Ordering::SeqCst) {
                panic!("listener panics once");
            }
        })
        .build();
    cache.insert(1, 1).unwrap();
    boom.store(true, Ordering::SeqCst);
    assert!(
        quiet(|| cache.insert(1, 2)).is_err(),
        "the listener panicked"
    );
    // It must still take writes: a cache of one entry.
    let r = cache.insert(2, 2);
    assert!(
        r.is_ok(),
        "insert after a listener panic: {r:?}, len {}",
        cache.len()
    );
    // The panic came from user code; the cache's own state must still be whole.
    cache
        .validate()
        .expect("budget and table agree after a listener panic");
}

#[test]
fn a_panicking_listener_does_not_leak_the_weight_budget() {
    let boom = Arc::new(AtomicBool::new(false));
    let b = Arc::clone(&boom);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(1)
        .max_weight(100)
        .max_entry_weight(100)
        .weigher(|_, _| 60)
        .eviction_listener(move |_k, _v, cause| {
            if cause == RemovalCause::Deleted && b.swap(false, Ordering::SeqCst) {
                panic!("listener panics once");
            }
        })
        .build();
    cache.insert(1, 1).unwrap();
    boom.store(true, Ordering::SeqCst);
    assert!(quiet(|| cache.remove(&1)).is_err());
    assert_eq!(cache.len(), 0);
    assert_eq!(
        cache.weight(),
        0,
        "nothing is resident, so nothing is weighed"
    );
    cache
        .insert(2, 2)
        .expect("an empty cache takes a 60-of-100 entry");
}

// ---------------------------------------------------------------------------------------------
// An expiry at or before now is expired at once, on any clock alignment.
// ---------------------------------------------------------------------------------------------

#[test]
fn an_expiry_of_now_is_already_expired_when_now_is_not_a_multiple_of_16ns() {
    let clock = MockClock::new();
    clock.advance(Duration::from_nanos(1));
    let cache = ByteCache::builder().clock(Arc::new(clock.clone())).build();
    cache.set("k", Bytes::from_static(b"old"), None).unwrap();
    cache
        .set("k", Bytes::from_static(b"new"), Some(Duration::ZERO.into()))
        .unwrap();
    // BaseCache::set: "An expiry at or before now stores the value as already expired: the old
    // value is replaced and get returns None."
    assert_eq!(cache.get("k").unwrap(), None);
}

#[test]
fn an_absolute_expiry_at_now_is_already_expired() {
    let clock = MockClock::new();
    clock.advance(Duration::from_nanos(5));
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .clock(Arc::new(clock.clone()))
        .build();
    cache
        .insert_with_expiry(1, 1, Some(Expires::At(clock.now())))
        .unwrap();
    assert_eq!(cache.get(&1), None);
}

// ---------------------------------------------------------------------------------------------
// A presize far beyond any bound is capped, not overflowed.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_huge_initial_capacity_is_capped_at_the_entry_bound() {
    let built = quiet(|| {
        let cache: ShardedCache<u64, u64> = ShardedCache::builder()
            .shards(1)
            .max_entries(1_000)
            .initial_capacity(usize::MAX)
            .build();
        cache.insert(1, 1).unwrap();
        cache.get(&1)
    });
    assert_eq!(built.ok(), Some(Some(1)), "build() panicked");
}

// ---------------------------------------------------------------------------------------------
// TooLarge says what the entry weighs and the most the cache takes.
// ---------------------------------------------------------------------------------------------

#[test]
fn too_large_reports_a_max_below_the_size() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(0).build();
    match cache.insert(1, 1) {
        Err(CacheError::TooLarge { size, max }) => {
            assert!(size > max, "TooLarge {{ size: {size}, max: {max} }}")
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// One loading miss counts one miss.
// ---------------------------------------------------------------------------------------------

#[test]
fn one_loading_miss_counts_one_miss() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().record_stats().build();
    cache.get_or_insert_with(1, || 1).unwrap();
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (0, 1));
    cache.get_or_insert_with(1, || unreachable!()).unwrap();
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (1, 1));
}

// ---------------------------------------------------------------------------------------------
// A degenerate hasher: every expired entry is still purged, and eviction still works.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct ConstHasher;
impl Hasher for ConstHasher {
    fn finish(&self) -> u64 {
        0x1234_5678_9abc_def0
    }
    fn write(&mut self, _: &[u8]) {}
}
type Const = BuildHasherDefault<ConstHasher>;

#[test]
fn purge_expired_removes_every_expired_entry_even_when_hashes_collide() {
    let clock = MockClock::new();
    let cache: ShardedCache<u64, u64, Const> = ShardedCache::builder()
        .clock(Arc::new(clock.clone()))
        .hasher(Const::default())
        .build();
    for k in 0..5 {
        // Later keys expire first: the expiry order pops key 4's deadline first, but a lookup by
        // hash finds key 0 (first on the probe sequence), whose deadline differs.
        cache
            .insert_with_expiry(k, k, Some(Duration::from_secs(10 - k).into()))
            .unwrap();
    }
    clock.advance(Duration::from_secs(100));
    cache.purge_expired();
    assert_eq!(cache.len(), 0, "purge_expired removes all of them");
    stats_add_up(&cache);
}

#[test]
fn a_bounded_cache_with_colliding_hashes_keeps_taking_writes() {
    let cache: ShardedCache<u64, u64, Const> = ShardedCache::builder()
        .shards(1)
        .max_entries(4)
        .hasher(Const::default())
        .build();
    for k in 0..200 {
        cache
            .insert(k, k)
            .unwrap_or_else(|e| panic!("insert {k}: {e}"));
        cache.remove(&(k / 2));
        assert!(cache.len() <= 4);
    }
    cache.validate().unwrap();
}

// ---------------------------------------------------------------------------------------------
// User code: a Hash that panics during eviction leaves every entry evictable; a clock that
// reads the cache is called with no lock held.
// ---------------------------------------------------------------------------------------------

static PANIC_HASHING: AtomicUsize = AtomicUsize::new(usize::MAX);

#[derive(Debug, Clone, PartialEq, Eq)]
struct FragileKey(usize);
impl Hash for FragileKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        if PANIC_HASHING.load(Ordering::SeqCst) == self.0 {
            panic!("hash of {} panics", self.0);
        }
        self.0.hash(h)
    }
}

#[test]
fn a_hash_that_panics_once_during_eviction_does_not_wedge_the_cache() {
    let cache: ShardedCache<FragileKey, u64> =
        ShardedCache::builder().shards(1).max_entries(1).build();
    cache.insert(FragileKey(1), 1).unwrap();
    PANIC_HASHING.store(1, Ordering::SeqCst);
    // Inserting key 2 evicts key 1, and eviction re-hashes key 1 under the shard lock.
    assert!(quiet(|| cache.insert(FragileKey(2), 2)).is_err());
    PANIC_HASHING.store(usize::MAX, Ordering::SeqCst);
    // Key 1's Hash works again: the cache must be able to evict it.
    cache
        .insert(FragileKey(3), 3)
        .expect("a max_entries(1) cache takes a new key");
    cache.validate().unwrap();
}

// A clock is user code too: a Clock that reads the cache (e.g. a metrics clock).
thread_local! {
    static CLOCK_CACHE: RefCell<Option<Arc<ShardedCache<u64, u64>>>> = const { RefCell::new(None) };
}
#[derive(Debug)]
struct ReenteringClock(MockClock);
impl Clock for ReenteringClock {
    fn now_nanos(&self) -> u64 {
        CLOCK_CACHE.with(|c| {
            if let Some(cache) = c.borrow().as_ref() {
                let _ = cache.len();
            }
        });
        self.0.now_nanos()
    }
}

#[test]
fn a_clock_that_reads_the_cache_does_not_deadlock() {
    let got = unless_deadlocked(|| {
        let cache: Arc<ShardedCache<u64, u64>> = Arc::new(
            ShardedCache::builder()
                .shards(1)
                .clock(Arc::new(ReenteringClock(MockClock::new())))
                .build(),
        );
        cache
            .insert_with_expiry(1, 1, Some(Duration::from_secs(9).into()))
            .unwrap();
        CLOCK_CACHE.with(|c| *c.borrow_mut() = Some(Arc::clone(&cache)));
        cache.insert(2, 2).unwrap(); // the shard holds a deadline: the sweep reads the clock
        CLOCK_CACHE.with(|c| *c.borrow_mut() = None);
        cache.get(&2)
    });
    assert_eq!(
        got,
        Some(Some(2)),
        "insert deadlocked on its own shard lock"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input, bounds, close, loaders, listeners.
// ---------------------------------------------------------------------------------------------

#[test]
fn shard_counts_round_and_clamp() {
    let n = |s| {
        ShardedCache::<u64, u64>::builder()
            .shards(s)
            .build()
            .shard_count()
    };
    assert_eq!(n(0), 1);
    assert_eq!(n(1), 1);
    assert_eq!(n(3), 4);
    assert_eq!(n(4097), 4096);
    assert_eq!(n(usize::MAX), 4096);
    let c: ShardedCache<u64, u64> = ShardedCache::builder().shards(0).build();
    for k in 0..1000 {
        c.insert(k, k).unwrap();
    }
    assert_eq!(c.len(), 1000);
}

#[test]
fn byte_cache_keys_of_every_awkward_shape() {
    let cache = ByteCache::builder().max_weight(64 << 20).build();
    let long = "x".repeat(1 << 20);
    let keys: Vec<String> = vec![
        String::new(),
        "\0".into(),
        "\0\0".into(),
        "a".repeat(38),
        "a".repeat(39),
        "a".repeat(40),
        "a".repeat(41),
        "é".repeat(20),
        "a".to_string() + &"é".repeat(19), // 39 bytes: multi-byte at the inline limit
        "日本語".into(),
        long.clone(),
    ];
    for (i, k) in keys.iter().enumerate() {
        cache.set(k, Bytes::from(vec![i as u8; i]), None).unwrap();
        cache
            .set_body(k, Bytes::from(vec![i as u8; 2 * i]))
            .unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(cache.get(k).unwrap().unwrap().len(), i, "{i}");
        assert_eq!(
            cache.get_body(k).unwrap().unwrap().remaining(),
            2 * i,
            "{i}"
        );
    }
    // 39 and 40 bytes straddle the inline limit; 1 MiB is refused or stored, never confused.
    cache.delete(&"a".repeat(39)).unwrap();
    assert!(cache.get(&"a".repeat(40)).unwrap().is_some());
    assert!(cache.get(&"a".repeat(39)).unwrap().is_none());
    assert!(cache.get_body(&"a".repeat(39)).unwrap().is_none());
    cache.validate().unwrap();
}

#[test]
fn huge_values_are_refused_and_the_old_value_stays() {
    let cache = ByteCache::builder().max_weight(1 << 20).build();
    cache.set("k", Bytes::from_static(b"old"), None).unwrap();
    let err = cache
        .set("k", Bytes::from(vec![0; 1 << 20]), None)
        .unwrap_err();
    assert!(matches!(err, CacheError::TooLarge { .. }), "{err}");
    assert_eq!(cache.get("k").unwrap(), Some(Bytes::from_static(b"old")));
    let err = cache
        .set_body("k", Bytes::from(vec![0; 2 << 20]))
        .unwrap_err();
    assert!(matches!(err, CacheError::TooLarge { .. }));
    let key = "k".repeat(1 << 20);
    assert!(matches!(
        cache.set(&key, Bytes::new(), None),
        Err(CacheError::TooLarge { .. })
    ));
}

#[test]
fn weighers_returning_zero_and_max() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .max_weight(1000)
        .weigher(|k, _| if *k == 0 { u64::MAX } else { 0 })
        .build();
    cache.insert(1, 1).unwrap();
    assert!(matches!(
        cache.insert(0, 0),
        Err(CacheError::TooLarge { .. })
    ));
    for k in 1..2000 {
        cache.insert(k, k).unwrap();
    }
    assert_eq!(cache.weight(), 0);
    assert_eq!(cache.len(), 1999);
    // max_weight(0) with weightless entries; and u64::MAX budget with u64::MAX entry.
    let zero: ShardedCache<u64, u64> = ShardedCache::builder()
        .max_weight(0)
        .weigher(|_, _| 0)
        .build();
    zero.insert(1, 1).unwrap();
    let max: ShardedCache<u64, u64> = ShardedCache::builder()
        .max_weight(u64::MAX)
        .max_entry_weight(u64::MAX)
        .weigher(|_, _| u64::MAX)
        .build();
    max.insert(1, 1).unwrap();
    max.insert(2, 2).unwrap();
    assert_eq!(max.len(), 1);
    assert_eq!(max.weight(), u64::MAX);
    max.remove(&2);
    assert_eq!(max.weight(), 0);
    stats_add_up(&max);
}

#[test]
fn max_entry_weight_over_the_budget_and_zero_bounds() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .max_weight(100)
        .max_entry_weight(1000)
        .weigher(|_, v| *v)
        .build();
    cache.insert(1, 10).unwrap();
    match cache.insert(1, 500) {
        Err(CacheError::TooLarge {
            size: 500,
            max: 100,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.get(&1), Some(10));
    cache.insert(2, 100).unwrap();
    assert!(cache.weight() <= 100);
    let none: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(0).build();
    assert!(matches!(
        none.insert(1, 1),
        Err(CacheError::TooLarge { .. })
    ));
    let tiny: ShardedCache<u64, u64> = ShardedCache::builder().max_weight(0).build();
    assert!(matches!(
        tiny.insert(1, 1),
        Err(CacheError::TooLarge { .. })
    ));
}

#[test]
fn expiries_in_the_past_and_absurdly_far_away() {
    let clock = MockClock::new();
    let cache = ByteCache::builder().clock(Arc::new(clock.clone())).build();
    let v = || Bytes::from_static(b"v");
    cache.set("past", v(), None).unwrap();
    cache
        .set("past", v(), Some(Expires::UnixSeconds(0)))
        .unwrap();
    assert_eq!(
        cache.get("past").unwrap(),
        None,
        "replaced by an expired value"
    );
    cache
        .set("epoch", v(), Some(SystemTime::UNIX_EPOCH.into()))
        .unwrap();
    assert_eq!(cache.get("epoch").unwrap(), None);
    cache
        .set(
            "before-epoch",
            v(),
            Some((UNIX_EPOCH - Duration::from_secs(5)).into()),
        )
        .unwrap();
    assert_eq!(cache.get("before-epoch").unwrap(), None);
    cache.set("far", v(), Some(Duration::MAX.into())).unwrap();
    cache
        .set("far2", v(), Some(Expires::UnixSeconds(u64::MAX)))
        .unwrap();
    cache
        .set(
            "far3",
            v(),
            Some((UNIX_EPOCH + Duration::from_secs(1 << 40)).into()),
        )
        .unwrap();
    clock.advance(Duration::from_secs(500 * 365 * 86400));
    assert!(cache.get("far").unwrap().is_some());
    assert!(cache.get("far2").unwrap().is_some());
    assert!(cache.get("far3").unwrap().is_some());
    cache.purge_expired();
    assert_eq!(cache.len(), 3);
    let s = cache.stats();
    assert_eq!(s.inserts, s.entries + s.replaced + s.expired);
}

#[test]
fn expired_entries_make_room_first_and_stats_add_up() {
    let clock = MockClock::new();
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(2)
        .max_entries(10)
        .clock(Arc::new(clock.clone()))
        .build();
    for k in 0..5 {
        cache
            .insert_with_expiry(k, k, Some(Duration::from_secs(1).into()))
            .unwrap();
    }
    for k in 5..10 {
        cache.insert(k, k).unwrap();
    }
    clock.advance(Duration::from_secs(1));
    for k in 10..15 {
        cache.insert(k, k).unwrap();
    }
    for k in 5..15 {
        assert_eq!(
            cache.get(&k),
            Some(k),
            "live entries are kept while expired ones go"
        );
    }
    cache.insert(5, 50).unwrap();
    cache.remove(&6);
    cache.insert(100, 100).unwrap();
    cache.insert(101, 101).unwrap();
    stats_add_up(&cache);
    cache.close();
    stats_add_up(&cache);
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn use_after_close() {
    let cache = ByteCache::new();
    cache.set("k", Bytes::new(), None).unwrap();
    cache.close().unwrap();
    cache.close().unwrap();
    assert!(matches!(cache.get("k"), Err(CacheError::Closed)));
    assert!(matches!(
        cache.set("k", Bytes::new(), None),
        Err(CacheError::Closed)
    ));
    assert!(matches!(
        cache.set_body("k", Bytes::new()),
        Err(CacheError::Closed)
    ));
    assert!(matches!(cache.get_body("k"), Err(CacheError::Closed)));
    assert!(matches!(cache.delete("k"), Err(CacheError::Closed)));
    assert!(matches!(
        cache.get_with("k", |_| ()),
        Err(CacheError::Closed)
    ));
    assert!(matches!(
        cache.get_or_set_with("k", || Ok::<_, std::io::Error>(Bytes::new())),
        Err(CacheError::Closed)
    ));
    cache.purge_expired();
    assert_eq!(cache.len(), 0);

    let sharded: ShardedCache<u64, u64> = ShardedCache::new();
    sharded.close();
    assert!(matches!(sharded.insert(1, 1), Err(CacheError::Closed)));
    assert!(!sharded.remove(&1));
    let ran = AtomicBool::new(false);
    let r = sharded.get_or_insert_with(1, || {
        ran.store(true, Ordering::SeqCst);
        1
    });
    assert!(matches!(r, Err(CacheError::Closed)), "{r:?}");
}

#[test]
fn a_listener_that_reenters_the_cache_works() {
    type C = ShardedCache<u64, u64>;
    let slot: Arc<Mutex<Option<std::sync::Weak<C>>>> = Arc::new(Mutex::new(None));
    let s = Arc::clone(&slot);
    let cache: Arc<C> = Arc::new(
        ShardedCache::builder()
            .shards(1)
            .max_entries(4)
            .eviction_listener(move |k: &u64, _v: &u64, cause| {
                let Some(c) = s.lock().unwrap().as_ref().and_then(|w| w.upgrade()) else {
                    return;
                };
                let _ = c.get(k);
                let _ = c.len();
                let _ = c.stats();
                if cause == RemovalCause::Evicted && *k < 1000 {
                    let _ = c.insert(k + 1000, 0); // re-enters: insert (maybe evicting)
                }
                c.remove(&(k + 2000));
            })
            .build(),
    );
    *slot.lock().unwrap() = Some(Arc::downgrade(&cache));
    for k in 0..50 {
        cache.insert(k, k).unwrap();
        cache.insert(k, k + 1).unwrap();
        if k % 3 == 0 {
            cache.remove(&k);
        }
    }
    assert!(cache.len() <= 4);
    cache.validate().unwrap();
    stats_add_up(&cache);
    cache.close();
    stats_add_up(&cache);
}

#[test]
fn budget_holds_with_many_shards_and_replacements() {
    let cache: ShardedCache<u64, Vec<u8>> = ShardedCache::builder()
        .shards(64)
        .max_weight(10_000)
        .weigher(|_, v: &Vec<u8>| v.len() as u64 + 1)
        .build();
    for i in 0..5_000u64 {
        let len = (i * 7919 % 1200) as usize;
        let r = cache.insert(i % 300, vec![0; len]);
        if len + 1 > 1250 {
            assert!(r.is_err());
        } else {
            r.unwrap();
        }
        assert!(cache.weight() <= 10_000);
    }
    cache.validate().unwrap();
    stats_add_up(&cache);
}

#[test]
fn body_reader_edge_cases() {
    use std::io::{BufRead, Read};
    let mut r = epochcache::BodyReader::new(Bytes::from_static(b"abc"));
    assert_eq!(r.read(&mut []).unwrap(), 0);
    r.consume(100);
    assert_eq!(r.remaining(), 0);
    let mut buf = [0u8; 4];
    assert_eq!(r.read(&mut buf).unwrap(), 0);
}

#[test]
fn zero_durations_and_mock_clock_saturation() {
    let clock = MockClock::new();
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .clock(Arc::new(clock.clone()))
        .max_entries(100)
        .build();
    cache
        .insert_with_expiry(1, 1, Some(Duration::from_secs(1).into()))
        .unwrap();
    cache.insert(2, 2).unwrap();
    clock.advance(Duration::MAX);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), Some(2));
    cache
        .insert_with_expiry(3, 3, Some(Duration::MAX.into()))
        .unwrap();
    cache.purge_expired();
    assert_eq!(cache.get(&2), Some(2));
    cache.validate().unwrap();
    stats_add_up(&cache);
}

#[test]
fn a_get_concurrent_with_a_replacement_sees_the_old_or_the_new_value() {
    // lib.rs: "A get running at the same time as a write of its key returns the old value or
    // the new one". In a full bounded cache, the write's reservation evicts the key itself
    // before the new value is linked, so a reader can see the key absent.
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(1).max_entries(1).build();
    cache.insert(1, 0).unwrap();
    let stop = AtomicBool::new(false);
    let misses = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            for v in 1..200_000 {
                cache.insert(1, v).unwrap();
            }
            stop.store(true, Ordering::SeqCst);
        });
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                if cache.get(&1).is_none() {
                    misses.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    });
    assert_eq!(
        misses.load(Ordering::SeqCst),
        0,
        "key 1 was never deleted, yet get saw None"
    );
}

#[test]
fn a_replacement_in_a_weight_bounded_cache_keeps_its_neighbours() {
    // Replacing a value with one of the same weight needs no room, yet the writer reserves
    // the whole new weight first and evicts another key to get it.
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(1)
        .max_weight(300)
        .max_entry_weight(100)
        .weigher(|_, _| 100)
        .build();
    for k in 0..3 {
        cache.insert(k, k).unwrap();
    }
    cache.insert(0, 10).unwrap();
    let resident: Vec<u64> = (0..3).filter(|k| cache.get(k).is_some()).collect();
    assert_eq!(
        resident,
        [0, 1, 2],
        "a same-weight replacement evicted a neighbour"
    );
}

#[test]
fn an_entry_expires_at_its_deadline_on_an_unaligned_clock() {
    // The insert_with_expiry doc example, with the mock clock 3 ns later.
    let clock = MockClock::new();
    clock.advance(Duration::from_nanos(3));
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .clock(Arc::new(clock.clone()))
        .build();
    cache
        .insert_with_expiry(1, 1, Some(Duration::from_secs(5).into()))
        .unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(cache.get(&1), None);
}

// ---------------------------------------------------------------------------------------------
// Forwarding and defaults the docs state.
// ---------------------------------------------------------------------------------------------

/// Stores and reads back a body through any separate-body cache.
fn round_trip_body<C: SeparateBodyCache>(cache: C) -> Vec<u8> {
    cache.set_body("k", Bytes::from_static(b"body")).unwrap();
    let mut read = Vec::new();
    std::io::Read::read_to_end(&mut cache.get_body("k").unwrap().unwrap(), &mut read).unwrap();
    read
}

#[test]
fn separate_body_caches_forward_through_arc_box_and_references() {
    let cache = Arc::new(ByteCache::new());
    assert_eq!(round_trip_body(&*cache), b"body");
    assert_eq!(round_trip_body(Arc::clone(&cache)), b"body");
    assert_eq!(round_trip_body(Box::new(ByteCache::new())), b"body");
}

#[test]
fn a_default_shard_holds_at_least_256_entries_of_the_bound() {
    for max in [1u64, 511, 512, 1_000, 1_536, 2_560, 4_097, 100_000] {
        let cache: ShardedCache<u64, u64> = ShardedCache::builder().max_entries(max).build();
        let shards = cache.shard_count() as u64;
        assert!(
            shards == 1 || max / shards >= 256,
            "max_entries({max}) gave {shards} shards"
        );
    }
}
