//! The single-flight loader and user code that runs inside it: a key's `Drop` that panics as a
//! thread joins a flight, and a value's `Drop` run while a leader stores its value (both found
//! by a review of this stop's loader); and `retain` against a panicking listener.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use epochcache::{CacheError, ShardedCache};

mod support;
use support::unless_deadlocked;

// ---------------------------------------------------------------------------------------------
// A key whose `Drop` panics while a thread joins a flight leaves no stale `waiting` record.

thread_local! {
    /// Set on a thread: the key clones it makes panic when dropped.
    static ARM: Cell<bool> = const { Cell::new(false) };
    /// Set on the leader L: tells when a clone of key 2 is dropped there.
    static WATCH: Cell<bool> = const { Cell::new(false) };
}

static EVENTS: Mutex<Option<Sender<&'static str>>> = Mutex::new(None);

fn event(what: &'static str) {
    if let Some(tx) = EVENTS.lock().unwrap().as_ref() {
        let _ = tx.send(what);
    }
}

struct K {
    id: u64,
    bomb: bool,
}
impl K {
    fn new(id: u64) -> Self {
        K { id, bomb: false }
    }
}
impl Clone for K {
    fn clone(&self) -> Self {
        K {
            id: self.id,
            bomb: ARM.with(|a| a.get()),
        }
    }
}
impl Drop for K {
    fn drop(&mut self) {
        if self.id == 2 && WATCH.with(|w| w.get()) {
            event("L dropped a clone of key 2: it joined T's flight as a waiter");
        }
        if self.bomb && !thread::panicking() {
            panic!("key drop");
        }
    }
}
impl PartialEq for K {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for K {}
impl Hash for K {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.id.hash(h)
    }
}

/// L leads key 1. T joins that flight, and the clone of its key that joining made (and drops,
/// unused, after recording T as waiting) panics in its `Drop`: T's call unwinds, and its record
/// "T waits for F(1)" must go with it (it used to stay). T then leads key 2, and L's loader asks
/// for key 2. No cycle exists (T waits for nothing), so L waits for T's load; with the stale
/// record L saw L -> F(2) -> T -> F(1) -> L, loaded key 2 itself, and key 2's loader ran twice.
#[test]
fn a_key_drop_panicking_as_a_thread_joins_leaves_no_stale_wait_record() {
    let (tx, rx) = channel();
    *EVENTS.lock().unwrap() = Some(tx);
    let first = unless_deadlocked(move || {
        let cache: Arc<ShardedCache<K, u64>> = Arc::new(ShardedCache::new());
        let (go_l, go_l_rx) = channel::<()>();
        let (release_t, release_t_rx) = channel::<()>();
        let (started_tx, started) = channel::<&'static str>();

        let c = Arc::clone(&cache);
        let s = started_tx.clone();
        let l = thread::spawn(move || {
            c.get_or_insert_with(K::new(1), || {
                s.send("F1 running").unwrap();
                go_l_rx.recv().unwrap();
                WATCH.with(|w| w.set(true));
                let v = c.get_or_insert_with(K::new(2), || {
                    event("L ran its own loader for key 2 while T was loading it");
                    99
                });
                WATCH.with(|w| w.set(false));
                v.unwrap()
            })
        });
        assert_eq!(started.recv().unwrap(), "F1 running");

        let c = Arc::clone(&cache);
        let s = started_tx.clone();
        let t = thread::spawn(move || {
            ARM.with(|a| a.set(true));
            let joined = support::quiet(|| c.get_or_insert_with(K::new(1), || unreachable!()));
            ARM.with(|a| a.set(false));
            assert!(joined.is_err(), "the key's Drop panicked");
            c.get_or_insert_with(K::new(2), || {
                s.send("F2 running").unwrap();
                release_t_rx.recv().unwrap();
                2
            })
        });
        assert_eq!(started.recv().unwrap(), "F2 running");
        go_l.send(()).unwrap();
        let what = rx.recv().unwrap();
        release_t.send(()).unwrap();
        let _ = l.join();
        let _ = t.join();
        what
    });
    *EVENTS.lock().unwrap() = None;
    let first = first.expect("deadlocked");
    assert_eq!(
        first, "L dropped a clone of key 2: it joined T's flight as a waiter",
        "single flight broken with no cycle of waits"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A value's `Drop` run by storing the loaded value, asking for the key being loaded, gets
//    `LoaderReentered`: the docs promise that error only to `init`.

thread_local! {
    static CACHE: std::cell::RefCell<Option<Arc<ShardedCache<u64, Heavy>>>> =
        const { std::cell::RefCell::new(None) };
    static SEEN: std::cell::RefCell<Option<Result<usize, String>>> =
        const { std::cell::RefCell::new(None) };
}

#[derive(Clone)]
struct Heavy(Vec<u8>);
impl Drop for Heavy {
    fn drop(&mut self) {
        let Some(cache) = CACHE.with(|c| c.borrow_mut().take()) else {
            return;
        };
        let got = cache.get_or_insert_with(1, || Heavy(vec![1; 10]));
        SEEN.with(|s| *s.borrow_mut() = Some(got.map(|v| v.0.len()).map_err(|e| format!("{e:?}"))));
    }
}

/// The loaded value is too heavy to store; the copy the leader tried to put is dropped inside
/// its store, on the leader's thread, while its flight is still listed. That `Drop` asks for
/// key 1 (not `init`, which has returned): it loads the key outside the flight, as the docs
/// say, where it used to get `LoaderReentered`, which is for a loader asking for its own key.
#[test]
fn a_value_drop_run_by_storing_it_is_not_refused_as_a_reentered_loader() {
    let cache: Arc<ShardedCache<u64, Heavy>> = Arc::new(
        ShardedCache::builder()
            .max_weight(1_000)
            .weigher(|_, v: &Heavy| v.0.len() as u64)
            .build(),
    );
    let c = Arc::clone(&cache);
    let got = cache.get_or_insert_with(1, move || {
        CACHE.with(|slot| *slot.borrow_mut() = Some(c));
        Heavy(vec![7; 4_000])
    });
    CACHE.with(|slot| slot.borrow_mut().take());
    assert_eq!(got.map(|v| v.0.len()).ok(), Some(4_000));
    let seen = SEEN
        .with(|s| s.borrow_mut().take())
        .expect("the Drop asked");
    assert!(
        !matches!(seen, Err(ref e) if e.contains("LoaderReentered")),
        "a value's Drop got {seen:?}; docs: {:?} is for init only",
        CacheError::LoaderReentered
    );
}

// ---------------------------------------------------------------------------------------------
// `retain` sweeps every shard past a listener's panic; a `keep` panic stops at once.

#[test]
fn retain_sweeps_past_a_listener_panic_and_stops_at_a_keep_panic() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(8)
        .eviction_listener(|_k: &u64, _v: &u64, _c| panic!("listener"))
        .build();
    for k in 0..1_000 {
        cache.insert(k, k).unwrap();
    }
    assert!(support::quiet(|| cache.retain(|_, v| v % 2 == 0)).is_err());
    assert_eq!(cache.len(), 500, "every shard swept");
    assert!(cache.iter().all(|(_, v)| v % 2 == 0));
    let mut seen = 0;
    let r = support::quiet(|| {
        cache.retain(|_, _| {
            seen += 1;
            if seen == 1 {
                panic!("keep");
            }
            false
        })
    });
    assert!(r.is_err());
    assert_eq!(seen, 1);
    assert_eq!(cache.len(), 500, "a keep panic stops at once");
}
