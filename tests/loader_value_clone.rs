//! The loader runs no user code under a flight's own lock: a value's `Clone` taken by a waiter
//! may use the cache (a review found it run under the lock, where a wait on it was one the
//! record of waits could not see, and two waiters deadlocked). Alone in its binary: it counts
//! a first clone in a static.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread;

use epochcache::ShardedCache;

mod support;

thread_local! {
    /// 0: not a waiter of F; 2 or 3: a waiter that leads key 2 or 3.
    static ROLE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static CACHE: std::cell::RefCell<Option<Arc<ShardedCache<K2, V2>>>> =
        const { std::cell::RefCell::new(None) };
}

#[derive(Clone)]
struct K2(u64, Sender<u64>);
impl PartialEq for K2 {
    fn eq(&self, other: &Self) -> bool {
        let role = ROLE.with(|r| r.get());
        if self.0 == 1 && role != 0 {
            let _ = self.1.send(role); // a waiter is joining F, under the flights lock
        }
        self.0 == other.0
    }
}
impl Eq for K2 {}
impl Hash for K2 {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}

static FIRST_CLONE: AtomicBool = AtomicBool::new(false);

/// A value whose first `Clone` by a waiter of F (once F has ended) asks the cache for the
/// other waiter's key (a value built from a shared, cached config, say).
struct V2(u64, Sender<u64>);
impl Clone for V2 {
    fn clone(&self) -> Self {
        let role = ROLE.with(|r| r.get());
        if role != 0 && !FIRST_CLONE.swap(true, Ordering::SeqCst) {
            let other = 5 - role; // 2 <-> 3
            let cache = CACHE.with(|c| c.borrow().clone()).unwrap();
            let _ =
                cache.get_or_insert_with(K2(other, self.1.clone()), || V2(other, self.1.clone()));
        }
        V2(self.0, self.1.clone())
    }
}

/// Threads A and B lead keys 2 and 3, and their loaders both wait for F (key 1, led by L). F
/// ends; whichever wakes first clones F's value, and that `Clone` asks for the other's key,
/// whose loader waits for F too. Had the clone run holding F's outcome lock, the other waiter
/// would wait for that lock while the first waited for it: a deadlock the cycle check cannot
/// see. Cloned with the lock released, both finish.
#[test]
fn a_waiters_value_clone_may_use_the_cache() {
    let done = support::unless_deadlocked(|| {
        let (tx, rx) = channel::<u64>();
        let (lead_tx, lead_rx) = channel::<()>();
        let cache: Arc<ShardedCache<K2, V2>> = Arc::new(ShardedCache::new());
        let l = {
            let (cache, tx) = (Arc::clone(&cache), tx.clone());
            thread::spawn(move || {
                cache
                    .get_or_insert_with(K2(1, tx.clone()), || {
                        lead_tx.send(()).unwrap(); // L leads F
                                                   // Both waiters are joining F (each under the flights lock).
                        let mut seen = [rx.recv().unwrap(), rx.recv().unwrap()];
                        seen.sort();
                        assert_eq!(seen, [2, 3]);
                        V2(1, tx.clone())
                    })
                    .unwrap();
            })
        };
        lead_rx.recv().unwrap();
        let waiters: Vec<_> = [2u64, 3]
            .into_iter()
            .map(|role| {
                let (cache, tx) = (Arc::clone(&cache), tx.clone());
                thread::spawn(move || {
                    ROLE.with(|r| r.set(role));
                    CACHE.with(|c| *c.borrow_mut() = Some(Arc::clone(&cache)));
                    let c2 = Arc::clone(&cache);
                    let t2 = tx.clone();
                    cache
                        .get_or_insert_with(K2(role, tx.clone()), move || {
                            c2.get_or_insert_with(K2(1, t2.clone()), || unreachable!())
                                .unwrap();
                            V2(role, t2)
                        })
                        .unwrap();
                    CACHE.with(|c| *c.borrow_mut() = None);
                })
            })
            .collect();
        l.join().unwrap();
        for w in waiters {
            w.join().unwrap();
        }
    });
    assert!(
        done.is_some(),
        "deadlock: a waiter's V::clone ran under F's outcome lock"
    );
}
