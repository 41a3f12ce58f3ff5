//! The edge cases a moka or quick_cache user meets, checked for their bookkeeping: what the
//! listener hears (and with which cause), what the statistics count, and that every value
//! instance is dropped once: zero bounds, a bound of one entry, weights of 0 and `u64::MAX`, an
//! expiry of `Duration::MAX`, a clock at `u64::MAX`, `close` racing a loader, use after close.

mod support;

use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use epochcache::{
    CacheBuilder, CacheError, Computed, Expires, MockClock, Op, RemovalCause, ShardedCache,
};
use support::{flush_until, turn};

/// A value that counts the live instances of its kind (clones included).
#[derive(Debug)]
struct V(u64, Arc<AtomicI64>);

impl V {
    fn new(n: u64, live: &Arc<AtomicI64>) -> V {
        live.fetch_add(1, SeqCst);
        V(n, Arc::clone(live))
    }
}

impl Clone for V {
    fn clone(&self) -> V {
        V::new(self.0, &self.1)
    }
}

impl Drop for V {
    fn drop(&mut self) {
        self.1.fetch_sub(1, SeqCst);
    }
}

type Heard = Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

struct Rig {
    live: Arc<AtomicI64>,
    heard: Heard,
    clock: MockClock,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            live: Arc::default(),
            heard: Arc::default(),
            clock: MockClock::new(),
        }
    }

    fn builder(&self) -> CacheBuilder<u64, V> {
        let heard = Arc::clone(&self.heard);
        ShardedCache::builder()
            .shards(1)
            .clock(Arc::new(self.clock.clone()))
            .eviction_listener(move |k: &u64, v: &V, c| heard.lock().unwrap().push((*k, v.0, c)))
    }

    fn v(&self, n: u64) -> V {
        V::new(n, &self.live)
    }

    fn heard(&self) -> Vec<(u64, u64, RemovalCause)> {
        std::mem::take(&mut *self.heard.lock().unwrap())
    }

    /// Drops the cache and checks that no value instance is left.
    fn finish(&self, cache: ShardedCache<u64, V>) {
        drop(cache);
        assert!(
            flush_until(|| self.live.load(SeqCst) == 0),
            "{} value instances left",
            self.live.load(SeqCst)
        );
    }
}

/// The statistics' removal counts, in the order expired, evicted, replaced, deleted, closed,
/// and inserts and entries.
fn counts(cache: &ShardedCache<u64, V>) -> [u64; 7] {
    let s = cache.stats();
    [
        s.expired, s.evicted, s.replaced, s.deleted, s.closed, s.inserts, s.entries,
    ]
}

#[test]
fn a_zero_entry_bound_stores_nothing_and_tells_nothing() {
    let _turn = turn();
    let rig = Rig::new();
    let cache = rig.builder().max_entries(0).build();
    assert!(matches!(
        cache.insert(1, rig.v(1)),
        Err(CacheError::TooLarge { .. })
    ));
    let loaded = cache.get_or_insert_with(1, || rig.v(2)).unwrap();
    assert_eq!(loaded.0, 2, "the loader's value is returned, unstored");
    drop(loaded);
    let r = cache.compute(1, |_| Op::Put(rig.v(3)));
    assert!(matches!(r, Err(CacheError::TooLarge { .. })), "{r:?}");
    // An already-expired write needs no room: counted as inserted and expired.
    cache
        .insert_with_expiry(1, rig.v(4), Some(Expires::At(UNIX_EPOCH)))
        .unwrap();
    assert_eq!(rig.heard(), [(1, 4, RemovalCause::Expired)]);
    assert_eq!(counts(&cache), [1, 0, 0, 0, 0, 1, 0]);
    assert_eq!(cache.iter().count(), 0);
    rig.finish(cache);
}

#[test]
fn a_zero_weight_bound_stores_nothing() {
    let _turn = turn();
    let rig = Rig::new();
    let cache = rig
        .builder()
        .max_weight(0)
        .weigher(|_: &u64, _: &V| 0)
        .build();
    let r = cache.insert(1, rig.v(1));
    // A weightless entry holds no room; the cache may take it or refuse it, but must agree
    // with itself.
    match r {
        Ok(()) => assert_eq!(cache.get(&1).map(|v| v.0), Some(1)),
        Err(_) => assert_eq!(cache.get(&1).map(|v| v.0), None),
    }
    assert_eq!(cache.weight(), 0);
    let s = cache.stats();
    assert_eq!(s.inserts, s.entries);
    assert_eq!(cache.iter().count() as u64, s.entries);
    rig.finish(cache);
}

#[test]
fn one_entry_bound_evicts_the_other_key_and_never_its_own() {
    let _turn = turn();
    let rig = Rig::new();
    let cache = rig.builder().max_entries(1).build();
    cache.insert(1, rig.v(10)).unwrap();
    cache.insert(1, rig.v(11)).unwrap();
    assert_eq!(rig.heard(), [(1, 10, RemovalCause::Replaced)]);
    cache.insert(2, rig.v(20)).unwrap();
    assert_eq!(rig.heard(), [(1, 11, RemovalCause::Evicted)]);
    // An expired resident goes as expired, not evicted, when the next key needs its room.
    cache
        .insert_with_expiry(3, rig.v(30), Some(Duration::from_secs(1).into()))
        .unwrap();
    assert_eq!(rig.heard(), [(2, 20, RemovalCause::Evicted)]);
    rig.clock.advance(Duration::from_secs(1));
    assert!(cache.get(&3).is_none());
    cache.insert(4, rig.v(40)).unwrap();
    assert_eq!(rig.heard(), [(3, 30, RemovalCause::Expired)]);
    assert_eq!(counts(&cache), [1, 2, 1, 0, 0, 5, 1]);
    assert_eq!(
        cache.iter().map(|(k, v)| (k, v.0)).collect::<Vec<_>>(),
        [(4, 40)]
    );
    rig.finish(cache);
}

#[test]
fn weights_of_zero_and_max() {
    let _turn = turn();
    let rig = Rig::new();
    let cache = rig
        .builder()
        .max_weight(10)
        .max_entry_weight(u64::MAX)
        .weigher(|_: &u64, v: &V| match v.0 % 10 {
            0 => 0,
            9 => u64::MAX,
            n => n,
        })
        .build();
    cache.insert(1, rig.v(5)).unwrap();
    cache.insert(2, rig.v(5)).unwrap();
    // Weightless entries are exempt from size eviction and hold no room.
    for k in 10..20 {
        cache.insert(k, rig.v(10 * k)).unwrap();
    }
    assert_eq!(cache.weight(), 10);
    let r = cache.insert(1, rig.v(9));
    assert!(matches!(r, Err(CacheError::TooLarge { .. })), "{r:?}");
    assert_eq!(cache.get(&1).map(|v| v.0), Some(5), "the old value stays");
    // A heavy write evicts only weighed entries.
    cache.insert(3, rig.v(8)).unwrap();
    assert!(rig
        .heard()
        .iter()
        .all(|&(k, _, c)| k < 10 && c == RemovalCause::Evicted));
    for k in 10..20 {
        assert_eq!(cache.get(&k).map(|v| v.0), Some(10 * k));
    }
    let resident: u64 = cache.iter().map(|(_, v)| v.0 % 10).sum();
    assert_eq!(cache.weight(), resident);
    assert!(cache.weight() <= 10);
    let s = cache.stats();
    assert_eq!(s.inserts, s.entries + s.evicted);
    // Replacing a weightless entry by a weighed one makes room for it.
    cache.insert(10, rig.v(7)).unwrap();
    let resident: u64 = cache.iter().map(|(_, v)| v.0 % 10).sum();
    assert_eq!(cache.weight(), resident);
    assert!(cache.weight() <= 10);
    rig.finish(cache);
}

#[test]
fn an_expiry_of_duration_max_and_a_clock_at_u64_max() {
    let _turn = turn();
    let rig = Rig::new();
    let cache = rig.builder().build();
    cache
        .insert_with_expiry(1, rig.v(1), Some(Duration::MAX.into()))
        .unwrap();
    cache
        .insert_with_expiry(2, rig.v(2), Some(Duration::MAX.into()))
        .unwrap();
    cache
        .insert_with_expiry(3, rig.v(3), Some(Duration::MAX.into()))
        .unwrap();
    cache.insert(4, rig.v(4)).unwrap();
    rig.clock.advance(Duration::from_secs(400 * 365 * 86400));
    assert_eq!(cache.get(&1).map(|v| v.0), Some(1));
    rig.clock.set(UNIX_EPOCH + Duration::from_nanos(u64::MAX));
    // The end of time: every deadline has passed.
    assert!(cache.get(&1).is_none());
    assert!(cache.peek(&2).is_none());
    assert!(!cache.contains_key(&3));
    assert_eq!(cache.get(&4).map(|v| v.0), Some(4));
    assert!(cache.remove(&1), "an expired entry is still removed");
    // The write meets key 2's expired value, and sweeps key 3's.
    cache.insert(2, rig.v(22)).unwrap();
    assert_eq!(
        rig.heard(),
        [
            (1, 1, RemovalCause::Expired),
            (2, 2, RemovalCause::Expired),
            (3, 3, RemovalCause::Expired)
        ]
    );
    // Any expiry has passed too: the write stores nothing and takes the old value.
    cache
        .insert_with_expiry(4, rig.v(44), Some(Duration::MAX.into()))
        .unwrap();
    assert!(cache.get(&4).is_none());
    assert_eq!(
        rig.heard(),
        [
            (4, 4, RemovalCause::Replaced),
            (4, 44, RemovalCause::Expired)
        ]
    );
    cache.purge_expired();
    assert!(rig.heard().is_empty());
    assert_eq!(
        cache.iter().map(|(k, v)| (k, v.0)).collect::<Vec<_>>(),
        [(2, 22)]
    );
    assert_eq!(counts(&cache), [4, 0, 1, 0, 0, 6, 1]);
    rig.finish(cache);
}

#[test]
fn close_racing_a_loader_and_its_waiter() {
    let _turn = turn();
    let rig = Rig::new();
    let cache = rig.builder().max_entries(4).build();
    cache.insert(1, rig.v(1)).unwrap();
    let (started, wait_started) = mpsc::channel();
    let (go, wait_go) = mpsc::channel::<()>();
    thread::scope(|s| {
        let (cache, rig) = (&cache, &rig);
        let leader = s.spawn(move || {
            cache.get_or_insert_with(2, || {
                started.send(()).unwrap();
                wait_go.recv().unwrap();
                rig.v(2)
            })
        });
        wait_started.recv().unwrap();
        let waiter = s.spawn(move || cache.get_or_insert_with(2, || rig.v(3)));
        // The waiter may not have joined yet; either way it must not store after close.
        cache.close();
        go.send(()).unwrap();
        assert!(matches!(leader.join().unwrap(), Err(CacheError::Closed)));
        assert!(matches!(waiter.join().unwrap(), Err(CacheError::Closed)));
    });
    assert_eq!(rig.heard(), [(1, 1, RemovalCause::Closed)]);
    assert_eq!(counts(&cache), [0, 0, 0, 0, 1, 1, 0]);
    rig.finish(cache);
}

#[test]
fn every_operation_after_close() {
    let _turn = turn();
    let rig = Rig::new();
    let cache = rig.builder().max_entries(4).record_stats().build();
    cache.insert(1, rig.v(1)).unwrap();
    cache
        .insert_with_expiry(2, rig.v(2), Some(Duration::from_secs(1).into()))
        .unwrap();
    rig.clock.advance(Duration::from_secs(2));
    cache.close();
    let mut heard = rig.heard();
    heard.sort_by_key(|h| h.0);
    assert_eq!(
        heard,
        [(1, 1, RemovalCause::Closed), (2, 2, RemovalCause::Closed)]
    );
    assert!(matches!(cache.insert(1, rig.v(3)), Err(CacheError::Closed)));
    assert!(matches!(
        cache.compute(1, |_| Op::Put(rig.v(4))),
        Err(CacheError::Closed)
    ));
    assert!(matches!(
        cache.get_or_insert_with(1, || rig.v(5)),
        Err(CacheError::Closed)
    ));
    assert!(cache.get(&1).is_none());
    assert!(!cache.remove(&1));
    cache.retain(|_, _| false);
    cache.purge_expired();
    cache.clear();
    cache.close();
    assert_eq!(cache.iter().count(), 0);
    assert!(rig.heard().is_empty());
    assert_eq!(counts(&cache), [0, 0, 0, 0, 2, 2, 0]);
    assert_eq!(cache.weight(), 0);
    assert!(!matches!(
        cache.compute(1, |_| Op::Nop),
        Ok(Computed::Unchanged(_))
    ));
    rig.finish(cache);
}

/// Where a thread's user code (a weigher, a listener) stops once: it tells another thread it got
/// there, then waits to be let go. Armed with the two channel ends; taken on first use, so later
/// calls pass straight through.
type Pause = Mutex<Option<(mpsc::SyncSender<()>, mpsc::Receiver<()>)>>;

/// Stops at `pause` if it is still armed, running `first` just before telling the other thread.
fn stop_at(pause: &Pause, first: impl FnOnce()) {
    let armed = pause.lock().unwrap().take();
    if let Some((reached, go)) = armed {
        first();
        reached.send(()).unwrap();
        go.recv().unwrap();
    }
}

/// Found by `concurrent_bookkeeping` (release, a few seeds in hundreds): a write or removal
/// judges the entries it meets at a clock reading taken before the shard's lock, but takes none
/// (judging at 0, by which nothing has expired) when the shard holds no deadline at that moment.
/// An entry with a deadline linked by a concurrent write between that look and the lock was then
/// reported `Replaced` (or `Deleted`) though its deadline had passed before the operation
/// began. Made deterministic here by the user code each side runs in that window: the writer
/// of the expiring value has read the clock and waits in the weigher; the replacing write has
/// looked at the shard and waits in the listener of an eviction it makes for room.
#[test]
fn an_entry_linked_between_the_look_and_the_lock_is_judged_by_the_clock() {
    let _turn = turn();
    let clock = MockClock::new();
    let tick = Duration::from_micros(1);
    let heard: Arc<Mutex<Vec<(u64, u64, RemovalCause)>>> = Arc::default();
    // B, weighing its value 100, signals that it has read the clock and waits for A to have
    // looked at the shard; A, told of the eviction it makes for room, signals that and waits
    // for B to be done.
    let (b_weighing, b_is_weighing) = mpsc::sync_channel::<()>(1);
    let (a_looked, a_has_looked) = mpsc::sync_channel::<()>(1);
    let (b_done, b_is_done) = mpsc::sync_channel::<()>(1);
    let weighing: Pause = Mutex::new(Some((b_weighing, a_has_looked)));
    let evicting: Pause = Mutex::new(Some((a_looked, b_is_done)));
    let weigher_clock = clock.clone();
    let listened = Arc::clone(&heard);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(1)
        .clock(Arc::new(clock.clone()))
        .max_weight(2)
        .max_entry_weight(2)
        .weigher(move |_: &u64, v: &u64| {
            if *v == 100 {
                // B's deadline (one tick after its reading) passes before A begins.
                stop_at(&weighing, || weigher_clock.advance(2 * tick));
            }
            if *v == 200 {
                2
            } else {
                1
            }
        })
        .eviction_listener(move |k: &u64, v: &u64, cause| {
            listened.lock().unwrap().push((*k, *v, cause));
            if *k == 2 {
                stop_at(&evicting, || {});
            }
        })
        .build();
    cache.insert(1, 10).unwrap();
    cache.insert(2, 20).unwrap();
    thread::scope(|s| {
        let cache = &cache;
        let b = s.spawn(move || {
            cache.insert_with_expiry(1, 100, Some(tick.into())).unwrap();
            b_done.send(()).unwrap();
        });
        b_is_weighing.recv().unwrap();
        // A: replaces key 1, needing one more unit of weight, so it evicts key 2 first.
        cache.insert(1, 200).unwrap();
        b.join().unwrap();
    });
    let heard = std::mem::take(&mut *heard.lock().unwrap());
    assert_eq!(
        heard,
        [
            (2, 20, RemovalCause::Evicted),
            (1, 10, RemovalCause::Replaced),
            (1, 100, RemovalCause::Expired)
        ],
        "B's value had expired before the write that replaced it began"
    );
    let s = cache.stats();
    assert_eq!((s.replaced, s.expired, s.evicted), (1, 1, 1), "{s:?}");
    assert_eq!(cache.get(&1), Some(200));
}

/// Sends key `k` to shard `k % 2` of a two-shard cache: the hash is the inverse of the engine's
/// spread of `(k % 2) << 63 | k << 32` (top bit: the shard), as `HomeGroupZero` in the loom
/// models does.
#[derive(Default)]
struct ShardByParity(u64);

impl std::hash::Hasher for ShardByParity {
    fn finish(&self) -> u64 {
        epochcache::hash_spreading_to((self.0 & 1) << 63 | self.0 << 32)
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A cache whose keys `H` places in chosen shards and groups.
type Placed<H> = ShardedCache<u64, u64, std::hash::BuildHasherDefault<H>>;

/// The choreography the two tests below share, on a cache of `builder`'s shards and hasher
/// holding key 0: writer B stores key 1 = 100 with a deadline one tick after its clock reading,
/// and stops in the weigher, having moved the clock past that deadline; then `op` runs the
/// operation under test, which must call [`stop_at`] on the pause it is given where it meets
/// key 0 (`weigher_stops_at_0`: the weigher does, as `clear` weighs key 0 to settle it), letting
/// B link its entry and waiting for B to be done. Returns the cache and what the listener heard.
fn race_an_expiring_write<H: std::hash::Hasher + Default>(
    builder: CacheBuilder<u64, u64, std::hash::BuildHasherDefault<H>>,
    weigher_stops_at_0: bool,
    op: impl FnOnce(&Placed<H>, &Pause),
) -> (Placed<H>, Vec<(u64, u64, RemovalCause)>) {
    let clock = MockClock::new();
    let tick = Duration::from_micros(1);
    let heard: Heard = Arc::default();
    let (b_weighing, b_is_weighing) = mpsc::sync_channel::<()>(1);
    let (op_met_0, op_has_met_0) = mpsc::sync_channel::<()>(1);
    let (b_done, b_is_done) = mpsc::sync_channel::<()>(1);
    let b_waits: Pause = Mutex::new(Some((b_weighing, op_has_met_0)));
    let op_waits: Arc<Pause> = Arc::default();
    let weigher_waits = Arc::clone(&op_waits);
    let weigher_clock = clock.clone();
    let listened = Arc::clone(&heard);
    let cache = builder
        .clock(Arc::new(clock.clone()))
        .max_weight(100)
        .weigher(move |_: &u64, v: &u64| {
            if *v == 100 {
                // B's deadline (one tick after its reading) passes before the operation begins.
                stop_at(&b_waits, || weigher_clock.advance(2 * tick));
            }
            if *v == 0 && weigher_stops_at_0 {
                stop_at(&weigher_waits, || {});
            }
            1
        })
        .eviction_listener(move |k: &u64, v: &u64, cause| {
            listened.lock().unwrap().push((*k, *v, cause))
        })
        .build();
    cache.insert(0, 0).unwrap();
    // Armed once key 0 is in, for the operation to stop at as it meets key 0.
    *op_waits.lock().unwrap() = Some((op_met_0, b_is_done));
    thread::scope(|s| {
        let cache = &cache;
        let b = s.spawn(move || {
            cache.insert_with_expiry(1, 100, Some(tick.into())).unwrap();
            b_done.send(()).unwrap();
        });
        b_is_weighing.recv().unwrap();
        op(cache, &op_waits);
        b.join().unwrap();
    });
    let heard = std::mem::take(&mut *heard.lock().unwrap());
    (cache, heard)
}

/// As the test above, for `clear`: it judged every shard's entries at 0 when no entry of the
/// cache had a deadline as it began, so an entry linked into a shard it had not reached yet,
/// with a deadline passed before `clear` began, was told `Deleted`. Key 0 lies in shard 0 and
/// key 1 in shard 1, so B links key 1 while `clear` settles key 0 (weighing it).
#[test]
fn an_entry_linked_ahead_of_a_clear_is_judged_by_the_clock() {
    let _turn = turn();
    let builder = ShardedCache::builder()
        .shards(2)
        .hasher(std::hash::BuildHasherDefault::<ShardByParity>::default());
    let (cache, heard) = race_an_expiring_write(builder, true, |cache, _| cache.clear());
    assert_eq!(
        heard,
        [
            (0, 0, RemovalCause::Deleted),
            (1, 100, RemovalCause::Expired)
        ],
        "key 1's value had expired before the clear began"
    );
    let s = cache.stats();
    assert_eq!((s.deleted, s.expired, s.entries), (1, 1, 0), "{s:?}");
}

/// Homes key 1 in the second group of a two-group shard and every other key in the first, so
/// that a walk meets key 0 before key 1's slot.
#[derive(Default)]
struct KeyOneInGroupTwo(u64);

impl std::hash::Hasher for KeyOneInGroupTwo {
    fn finish(&self) -> u64 {
        let group = if self.0 == 1 { 0x8000_0000 } else { 0 };
        epochcache::hash_spreading_to(self.0 << 32 | group)
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// As the two tests above, for a walk (`retain`, `iter`): it judged entries at 0 while no write
/// had yet stored a deadline, so an entry linked ahead of the walk, with a deadline that passed
/// before the walk began, was shown to `keep` (promised only live entries) and told `Deleted`.
/// The cache's first write with a deadline now marks the cache as expiring before it reads the
/// clock. B links key 1, in the second group, while `keep` is called for key 0, in the first.
#[test]
fn an_entry_linked_ahead_of_a_walk_is_judged_by_the_clock() {
    let _turn = turn();
    let builder = ShardedCache::builder()
        .shards(1)
        .initial_capacity(7) // two groups of seven slots
        .hasher(std::hash::BuildHasherDefault::<KeyOneInGroupTwo>::default());
    let mut seen = Vec::new();
    let (cache, heard) = race_an_expiring_write(builder, false, |cache, met_0| {
        cache.retain(|k, v| {
            seen.push((*k, *v));
            stop_at(met_0, || {});
            false
        })
    });
    assert_eq!(seen, [(0, 0)], "keep is shown live entries only");
    assert!(
        !heard.contains(&(1, 100, RemovalCause::Deleted)),
        "key 1's value had expired before the walk began: {heard:?}"
    );
    assert_eq!(cache.iter().count(), 0, "an expired entry is never yielded");
}
