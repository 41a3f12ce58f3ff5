//! Values whose `Drop` panics, met where no collection catches them: when the cache itself is
//! dropped rather than closed, and when a later write of the same thread meets the panic a
//! collection kept. The tests take turns (`turn()`), so that no other test's thread collects the
//! value one of them retires.

mod support;
use support::turn;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use epochcache::ShardedCache;

/// Counts its drops; the first drop of any value after `armed` is set panics.
struct ArmedDrop {
    drops: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
}

impl Clone for ArmedDrop {
    fn clone(&self) -> Self {
        ArmedDrop {
            drops: Arc::clone(&self.drops),
            armed: Arc::clone(&self.armed),
        }
    }
}

impl Drop for ArmedDrop {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("armed drop");
        }
    }
}

#[test]
fn dropping_a_cache_drops_every_value_even_when_one_drop_panics() {
    let _turn = turn();
    for shards in [1, 4] {
        let drops = Arc::new(AtomicUsize::new(0));
        let armed = Arc::new(AtomicBool::new(false));
        let cache: ShardedCache<u64, ArmedDrop> = ShardedCache::builder().shards(shards).build();
        for k in 0..100 {
            let v = ArmedDrop {
                drops: Arc::clone(&drops),
                armed: Arc::clone(&armed),
            };
            cache.insert(k, v).unwrap();
        }
        armed.store(true, Ordering::SeqCst);
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| drop(cache)));
        assert!(dropped.is_err(), "{shards} shards: the panic goes on");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            100,
            "{shards} shards: every value dropped once"
        );
    }
}

/// Panics in `Drop`, whether or not its thread is already unwinding.
#[derive(Clone)]
struct AlwaysPanics(Arc<AtomicUsize>);

impl Drop for AlwaysPanics {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("always");
    }
}

/// Every value panics as it is dropped, in every shard: the drop of the cache must neither
/// abort the process (a second panic while the first unwinds through the other shards) nor
/// leave any value undropped.
#[test]
fn dropping_a_cache_whose_every_drop_panics_neither_aborts_nor_leaks() {
    let _turn = turn();
    let drops = Arc::new(AtomicUsize::new(0));
    let cache: ShardedCache<u64, AlwaysPanics> = ShardedCache::builder().shards(4).build();
    for k in 0..200 {
        cache.insert(k, AlwaysPanics(Arc::clone(&drops))).unwrap();
    }
    let dropped = panic::catch_unwind(AssertUnwindSafe(|| drop(cache)));
    assert!(dropped.is_err(), "one panic goes on");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        200,
        "every value dropped once"
    );
}

/// A cache dropped by a panic's unwinding drops its values without a second panic.
#[test]
fn a_cache_dropped_while_its_thread_unwinds_drops_its_values_quietly() {
    let _turn = turn();
    let drops = Arc::new(AtomicUsize::new(0));
    let unwound = panic::catch_unwind(AssertUnwindSafe(|| {
        let cache: ShardedCache<u64, AlwaysPanics> = ShardedCache::builder().shards(2).build();
        for k in 0..50 {
            cache.insert(k, AlwaysPanics(Arc::clone(&drops))).unwrap();
        }
        panic!("the caller's own panic");
    }));
    let payload = unwound.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the caller's own panic")
    );
    assert_eq!(drops.load(Ordering::SeqCst), 50);
}

static BOMB_ARMED: AtomicBool = AtomicBool::new(false);

#[derive(Clone)]
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() && BOMB_ARMED.swap(false, Ordering::SeqCst) {
            panic!("bomb");
        }
    }
}

/// The crate guide: a `Drop` panic the collector caught goes on at the thread's next write that
/// removes an entry. An insert of a new key, into another cache, removes none: it must not raise
/// it, and then the next replacement does.
#[test]
fn a_caught_drop_panic_goes_on_only_at_a_write_that_removes_an_entry() {
    let _turn = turn();
    let a: ShardedCache<u64, Bomb> = ShardedCache::builder().shards(1).build();
    a.insert(1, Bomb).unwrap();
    BOMB_ARMED.store(true, Ordering::SeqCst);
    a.insert(1, Bomb).unwrap(); // retires the first bomb, which goes off when collected
    let went_off = support::flush_until(|| !BOMB_ARMED.load(Ordering::SeqCst));
    assert!(went_off, "the bomb went off in a collection");
    let b: ShardedCache<u64, u64> = ShardedCache::new();
    let insert = support::quiet(|| b.insert(7, 7));
    assert!(
        matches!(insert, Ok(Ok(()))),
        "a write that removed nothing raised another value's panic"
    );
    assert_eq!(b.get(&7), Some(7));
    let replace = support::quiet(|| b.insert(7, 8));
    assert!(
        replace.is_err(),
        "the next write that removes an entry raises it"
    );
    assert_eq!(b.get(&7), Some(8), "after storing its value");
}
