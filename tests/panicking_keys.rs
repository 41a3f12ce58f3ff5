//! Keys whose `Hash` or `Eq` panics partway through an operation, after the cache has already
//! changed something: what was unlinked is still told, counted and given back to the budget,
//! and what was reserved is given back. (Hostile keys that panic at once are in
//! `hostile_values.rs`.)

use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epochcache::{MockClock, RemovalCause, ShardedCache};

/// The key whose `Hash` panics: `u64::MAX` for none.
static PANIC_ON: AtomicU64 = AtomicU64::new(u64::MAX);

/// A key whose `Hash` panics while `PANIC_ON` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HashOnce(u64);

impl Hash for HashOnce {
    fn hash<H: Hasher>(&self, h: &mut H) {
        if PANIC_ON.load(Ordering::SeqCst) == self.0 {
            panic!("hash of key {}", self.0);
        }
        h.write_u64(self.0);
    }
}

/// `purge_expired` unlinks key 1, then key 2's `Hash` panics in the same shard's sweep.
#[test]
fn a_hash_panic_in_purge_expired_loses_no_notice_no_count_and_no_budget() {
    let clock = MockClock::new();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache: ShardedCache<HashOnce, u64> = ShardedCache::builder()
        .shards(1)
        .max_entries(10)
        .clock(Arc::new(clock.clone()))
        .eviction_listener(move |k: &HashOnce, _v: &u64, c| log.lock().unwrap().push((k.0, c)))
        .build();
    cache
        .insert_with_expiry(HashOnce(1), 1, Some(Duration::from_secs(1).into()))
        .unwrap();
    cache
        .insert_with_expiry(HashOnce(2), 2, Some(Duration::from_secs(2).into()))
        .unwrap();
    clock.advance(Duration::from_secs(3));
    PANIC_ON.store(2, Ordering::SeqCst);
    let purged = catch_unwind(AssertUnwindSafe(|| cache.purge_expired()));
    PANIC_ON.store(u64::MAX, Ordering::SeqCst);
    assert!(purged.is_err(), "key 2's Hash panicked in the sweep");

    let stats = cache.stats();
    assert!(
        !cache.contains_key(&HashOnce(1)) && cache.len() == 1,
        "key 1 was unlinked by the sweep"
    );
    assert_eq!(
        *heard.lock().unwrap(),
        vec![(1, RemovalCause::Expired)],
        "the listener hears of key 1"
    );
    assert_eq!(stats.expired, 1, "key 1's expiry is counted");
    cache.validate().unwrap(); // entries reserved == entries linked
}

static ARMED: AtomicBool = AtomicBool::new(false);
static EQ_PANICS: AtomicBool = AtomicBool::new(false);

/// A key whose `Eq` panics while `EQ_PANICS` is set.
#[derive(Clone, Debug)]
struct EqOnce(u64);

impl Hash for EqOnce {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.0);
    }
}
impl PartialEq for EqOnce {
    fn eq(&self, other: &Self) -> bool {
        if EQ_PANICS.load(Ordering::SeqCst) {
            panic!("Eq panics");
        }
        self.0 == other.0
    }
}
impl Eq for EqOnce {}

/// A write reserves its room with the lock released (a caller's weigher), then its key's `Eq`
/// panics in the lookup under the lock that checks the reservation.
#[test]
fn an_eq_panic_under_the_lock_gives_back_the_reserved_weight() {
    let cache: ShardedCache<EqOnce, u64> = ShardedCache::builder()
        .shards(1)
        .max_weight(10)
        .max_entry_weight(10)
        // A caller's weigher: the reservation is made with the lock released. Weighing the old
        // value stands for any user code between the reservation and the lock (here it arms Eq).
        .weigher(|_k: &EqOnce, v: &u64| {
            if ARMED.load(Ordering::SeqCst) && *v == 1 {
                EQ_PANICS.store(true, Ordering::SeqCst);
            }
            *v
        })
        .build();
    cache.insert(EqOnce(1), 1).unwrap();
    assert_eq!(cache.weight(), 1);

    ARMED.store(true, Ordering::SeqCst);
    let write = catch_unwind(AssertUnwindSafe(|| cache.insert(EqOnce(1), 3)));
    ARMED.store(false, Ordering::SeqCst);
    EQ_PANICS.store(false, Ordering::SeqCst);
    assert!(write.is_err(), "the key's Eq panicked");

    assert_eq!(cache.get(&EqOnce(1)), Some(1), "the old value stays");
    assert_eq!(
        cache.weight(),
        1,
        "the reservation of the failed write is given back"
    );
}
