//! `get_or_insert_with`: load a missing value once, however many threads miss it at once.
//!
//! # Single flight
//!
//! A thread that misses looks for a flight (a load in progress) of its key. If there is none it
//! becomes the leader: it records a flight, runs the loader with no lock held, stores the value
//! unless the key was written meanwhile (through `compute`, so that no write is lost to a load;
//! then the written value is the flight's), and hands it to every thread that waited on the
//! flight. If there is one it waits for it. A thread that joins while the leader is settling
//! the value (looking the key up, or storing it) may have missed the key after that value was
//! stored and then removed: it reads the cache itself once the flight ends, and starts over if
//! the value is gone, so that no call returns a value removed before it began. A
//! leader whose loader fails or panics marks the flight failed on its way out (a drop guard, so a
//! panic cannot skip it); its waiters then start over, and one of them leads a new load. If the
//! cache cannot keep the loaded value (heavier than an entry may be, or no room could be made),
//! it is returned all the same, to the leader and every waiter, without being stored, as moka,
//! Caffeine and quick_cache return it. If the cache was closed meanwhile, every waiter gets
//! `Closed` instead of loading again only to be refused in turn. A loader
//! that asks for its own key finds its own thread leading that key's flight and gets
//! [`CacheError::LoaderReentered`] instead of waiting for itself forever.
//!
//! A thread that leads a flight never waits for another: if its loader, or a listener or a
//! value's `Drop` that its store runs, asks for a key another thread is loading, it loads that
//! key itself and stores it only if still missing. Only threads that lead nothing wait, and a
//! leader waits for no one, so loads cannot wait on each other in a cycle (two leaders whose
//! listeners each asked for the other's key did, before). The price is a second load of a key
//! in that case only.
//!
//! Flights live in one small map per cache, touched only on misses that load; hits never see it.
//! Of user code only the key's `Eq` runs under the map's lock: the key is cloned for a new
//! flight before the lock is taken, so a `Clone` that calls back into the cache cannot deadlock.

use std::cell::Cell;
use std::collections::HashMap;
use std::error::Error;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crate::sharded::ShardedCache;
use crate::sync::{current_thread, lock, AtomicBool, Condvar, Mutex, Ordering, ThreadId};
use crate::CacheError;
use crate::{Computed, Op};

/// How a flight ended, as its waiters see it.
enum Outcome<V> {
    Running,
    Loaded(V),
    /// The value was loaded but the cache was closed meanwhile; every waiter gets the same
    /// error rather than loading it again, one after another, only to be refused in turn.
    Closed,
    Failed,
}

/// A load in progress.
pub(crate) struct Flight<K, V> {
    key: K,
    leader: ThreadId,
    /// Whether the leader is settling the flight's value now: looking the key up, or storing
    /// what it loaded. A caller that joins meanwhile may have missed the key after that value
    /// was stored (and then removed, evicted or expired), so it does not take the value but
    /// reads the cache itself once the flight ends (see [`ShardedCache::try_get_or_insert_with`]).
    settling: AtomicBool,
    outcome: Mutex<Outcome<V>>,
    done: Condvar,
}

/// The flights of one cache, by key hash.
pub(crate) type Flights<K, V> = Mutex<HashMap<u64, Vec<Arc<Flight<K, V>>>>>;

/// Ends a flight when the leader leaves, by success, error or panic.
struct Leading<'c, K, V, S>
where
    K: Hash + Eq,
{
    cache: &'c ShardedCache<K, V, S>,
    flight: Arc<Flight<K, V>>,
    hash: u64,
    /// How the flight ended, once the leader knows; `None` (the loader failed or panicked)
    /// tells the waiters to start over.
    outcome: Option<Outcome<V>>,
}

impl<K: Hash + Eq, V, S> Drop for Leading<'_, K, V, S> {
    fn drop(&mut self) {
        // Unlisted first, so that a caller arriving from now on (after a `remove` of the key,
        // say) starts a flight of its own instead of joining one that already ended.
        {
            let mut flights = lock(&self.cache.flights);
            if let Some(list) = flights.get_mut(&self.hash) {
                list.retain(|f| !Arc::ptr_eq(f, &self.flight));
                if list.is_empty() {
                    flights.remove(&self.hash);
                }
            }
        }
        *lock(&self.flight.outcome) = self.outcome.take().unwrap_or(Outcome::Failed);
        self.flight.done.notify_all();
        LEADING.with(|n| n.set(n.get() - 1));
    }
}

// How many flights the calling thread leads now: more than one while a leader's loader, or
// what its store runs (a listener, a value's `Drop`), loads other keys. loom's thread-locals
// start afresh in every execution of a model.
#[cfg(epochcache_loom)]
loom::thread_local! {
    static LEADING: Cell<usize> = Cell::new(0);
}
#[cfg(not(epochcache_loom))]
std::thread_local! {
    static LEADING: Cell<usize> = const { Cell::new(0) };
}

impl<K, V, S> ShardedCache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The value for `key`; on a miss, `init`'s value, inserted. When several threads miss the
    /// same key at once, one runs `init` and the others wait for its value.
    ///
    /// `init`'s value is stored only if the key is still missing when it is ready: a value
    /// written by another thread while `init` ran is kept, and returned, instead (as if this
    /// call had come after that write), so no write is lost to a load. A value the cache cannot
    /// keep (heavier than [`max_entry_weight`](crate::CacheBuilder::max_entry_weight) or the
    /// whole budget, or one for which no room could be made) is returned all the same, to every
    /// waiting thread, without being stored, as moka, Caffeine and quick_cache return it; only a
    /// closed cache makes the call fail ([`CacheError::Closed`]).
    ///
    /// If `init` panics, the panic goes on in its thread and the waiting threads start over
    /// (one of them runs its own `init`). If `init` asks the cache for its own key through this
    /// method, that inner call fails with [`CacheError::LoaderReentered`]. If `init` (or a
    /// listener or a value's `Drop` that storing its value runs) asks for a key that another
    /// thread is loading, it does not wait for that thread but loads the key itself, so that two
    /// loads never wait on each other.
    ///
    /// ```
    /// # use epochcache::ShardedCache;
    /// let cache: ShardedCache<String, usize> = ShardedCache::new();
    /// let v = cache.get_or_insert_with("answer".to_string(), || 42).unwrap();
    /// assert_eq!(v, 42);
    /// assert_eq!(cache.get_or_insert_with("answer".to_string(), || unreachable!()).unwrap(), 42);
    /// ```
    pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> Result<V, CacheError> {
        self.try_get_or_insert_with(key, || Ok::<V, CacheError>(init()))
    }

    /// As [`get_or_insert_with`](Self::get_or_insert_with) with a loader that can fail: its
    /// error comes back as [`CacheError::Loader`] to the thread that ran it, nothing is inserted,
    /// and threads that waited on it start over.
    ///
    /// ```
    /// # use epochcache::{CacheError, ShardedCache};
    /// let cache: ShardedCache<u64, String> = ShardedCache::new();
    /// let err = cache.try_get_or_insert_with(1, || Err("backend down")).unwrap_err();
    /// assert!(matches!(err, CacheError::Loader(_)));
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn try_get_or_insert_with<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, CacheError>
    where
        E: Into<Box<dyn Error + Send + Sync>>,
    {
        if self.is_closed() {
            return Err(CacheError::Closed);
        }
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let hash = self.hash(&key);
        let mut init = Some(init);
        loop {
            // Checked again on every round: a waiter whose leader failed because the cache was
            // closed meanwhile must not go on to load.
            if self.is_closed() {
                return Err(CacheError::Closed);
            }
            let (flight, leading) = self.join_or_lead(&key, hash);
            if !leading {
                if flight.leader == current_thread().id() {
                    return Err(CacheError::LoaderReentered);
                }
                if LEADING.with(Cell::get) > 0 {
                    // This thread leads a flight of its own (its loader, a listener or a
                    // value's `Drop` run by its store asks): waiting here could close a cycle
                    // of loads waiting on each other, so it loads the key itself instead.
                    let Some(init) = init.take() else {
                        return Err(CacheError::LoaderReentered);
                    };
                    let value = init().map_err(|e| CacheError::Loader(e.into()))?;
                    return self.store_loaded(key, value);
                }
                // Read after this call's miss: if the leader had not begun to settle the value
                // then, it settles it after the miss, within this call, and the value is this
                // call's to return. Otherwise the value may have been stored before the miss
                // and be gone since: this call reads the cache itself once the flight ends.
                let late = flight.settling.load(Ordering::SeqCst);
                match wait(&flight) {
                    Outcome::Loaded(v) if !late => return Ok(v),
                    Outcome::Loaded(_) => match self.peek(&key) {
                        Some(v) => return Ok(v),
                        None => continue, // gone again: start over
                    },
                    Outcome::Closed => return Err(CacheError::Closed),
                    // The leader failed: start over.
                    Outcome::Failed | Outcome::Running => continue,
                }
            }
            LEADING.with(|n| n.set(n.get() + 1));
            let mut leading = Leading {
                cache: self,
                flight,
                hash,
                outcome: None,
            };
            // A flight that ended just before ours began may have inserted the value already.
            // Not counted: this call's miss was counted above.
            let settling = &leading.flight.settling;
            settling.store(true, Ordering::SeqCst);
            if let Some(v) = self.peek(&key) {
                leading.outcome = Some(Outcome::Loaded(v.clone()));
                return Ok(v);
            }
            settling.store(false, Ordering::SeqCst);
            let Some(init) = init.take() else {
                // Only a leader runs `init`, and a thread leads at most once: it returns below.
                return Err(CacheError::LoaderReentered);
            };
            let value = init().map_err(|e| CacheError::Loader(e.into()))?;
            settling.store(true, Ordering::SeqCst);
            let value = match self.store_loaded(key, value) {
                Ok(v) => v,
                Err(error) => {
                    if matches!(error, CacheError::Closed) {
                        leading.outcome = Some(Outcome::Closed);
                    }
                    return Err(error);
                }
            };
            leading.outcome = Some(Outcome::Loaded(value.clone()));
            return Ok(value);
        }
    }

    /// Stores a loaded value only if the key is still missing: a value another thread wrote
    /// while the loader ran stays, and is the one returned. A value the cache cannot keep
    /// (`TooLarge`, `NoRoom`) is returned unstored; only `Closed` is an error.
    fn store_loaded(&self, key: K, value: V) -> Result<V, CacheError> {
        let stored = self.compute(key, |current| match current {
            Some(_) => Op::Nop,
            None => Op::Put(value.clone()),
        });
        match stored {
            Ok(Computed::Inserted(v) | Computed::Unchanged(v)) => Ok(v),
            Ok(_) => unreachable!("the function puts on a miss and does nothing on a hit"),
            Err(CacheError::TooLarge { .. } | CacheError::NoRoom { .. }) => Ok(value),
            Err(error) => Err(error),
        }
    }

    /// The flight of `key`, and whether the caller leads it (it did not exist).
    fn join_or_lead(&self, key: &K, hash: u64) -> (Arc<Flight<K, V>>, bool) {
        // Made before the lock, since the key's `Clone` is user code: only its `Eq` runs under
        // the flights lock. A thread that joins a flight drops its own, unused, after the lock.
        let mine = Arc::new(Flight {
            key: key.clone(),
            leader: current_thread().id(),
            settling: AtomicBool::new(false),
            outcome: Mutex::new(Outcome::Running),
            done: Condvar::new(),
        });
        let running = {
            let mut flights = lock(&self.flights);
            let list = flights.entry(hash).or_default();
            let running = list.iter().find(|f| f.key == *key).map(Arc::clone);
            if running.is_none() {
                list.push(Arc::clone(&mine));
            }
            running
        };
        match running {
            Some(flight) => (flight, false),
            None => (mine, true),
        }
    }
}

/// Waits for a flight to end, and says how it ended (never `Running`).
fn wait<K, V: Clone>(flight: &Flight<K, V>) -> Outcome<V> {
    let mut outcome = lock(&flight.outcome);
    loop {
        match &*outcome {
            Outcome::Running => {
                outcome = match flight.done.wait(outcome) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                }
            }
            Outcome::Loaded(v) => return Outcome::Loaded(v.clone()),
            Outcome::Closed => return Outcome::Closed,
            Outcome::Failed => return Outcome::Failed,
        }
    }
}
