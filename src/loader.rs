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
//! # No cycle of waits
//!
//! A leader may itself ask for other keys while its flight is open: its loader may (a user's
//! loader that fetches the user's organisation through the cache), and so may a listener or a
//! value's `Drop` that storing its value runs. Two leaders that each wait for the other's
//! flight would wait for ever (two listeners asking for each other's keys did, once). So the
//! map of flights also records which flight each waiting thread waits for, and a thread about
//! to wait follows that chain from the flight's leader (the flight its leader waits for, that
//! flight's leader, ...): if it comes back to the thread itself, waiting would close a cycle,
//! and the thread loads the key itself instead, outside any flight, storing the value only if
//! the key is still missing. The check and the record are made under the map's lock, so
//! whichever thread would close a cycle sees the rest of it. Every other wait stays a wait,
//! so nested loads of a shared key still load it once. A wait the cache cannot see (a loader
//! that joins a thread it spawned, which waits for a flight) can still deadlock.
//!
//! A thread loading a key outside a flight is recorded too, so that its loader asking for the
//! same key gets [`CacheError::LoaderReentered`] as a leader's would, instead of recursing. A
//! leader's own key asked for while it settles the value (by a listener or a value's `Drop`
//! that storing it runs, not by its loader) is loaded outside the flight the same way, since
//! the leader's loader is done.
//!
//! Flights live in one small map per cache, touched only on misses that load; hits never see it.
//! Of user code only the key's `Eq` runs under the map's lock: the key is cloned for a new
//! flight before the lock is taken, and a flight record is dropped (with its key) only after
//! the lock is released, so a `Clone` or `Drop` that calls back into the cache cannot deadlock.
//! No user code runs under a flight's own lock either: its value is shared behind an `Arc`, and
//! each waiter clones it after letting go of the lock.

use std::collections::HashMap;
use std::error::Error;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crate::sharded::ShardedCache;
use crate::sync::{current_thread, lock, AtomicBool, Condvar, Mutex, Ordering, ThreadId};
use crate::CacheError;
use crate::{Computed, Op};

/// How a flight ended, as its waiters see it.
///
/// A value is kept behind an `Arc`, so that a waiter takes its own clone (user code) after
/// releasing the outcome's lock: a `Clone` that asks the cache for a key whose load waits for
/// another waiter of this flight would otherwise hold that waiter at the lock, in a wait the
/// record of waits cannot see.
enum Outcome<V> {
    Running,
    Loaded(Arc<V>),
    /// The value was loaded but the cache could not keep it (`TooLarge`, `NoRoom`): every
    /// waiter takes it, however late it joined, since it was never in the cache to be removed.
    Unstored(Arc<V>),
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
    /// Set, under the flights lock, when the flight is unlisted: a thread recorded as waiting
    /// for it has been woken, or is about to be, and waits for no one through it.
    ended: AtomicBool,
    outcome: Mutex<Outcome<V>>,
    done: Condvar,
}

/// The flights of one cache, and who waits for which (see the module docs).
pub(crate) type Flights<K, V> = Mutex<FlightMap<K, V>>;

/// What [`Flights`] guards.
pub(crate) struct FlightMap<K, V> {
    /// The flights in progress, by key hash.
    by_hash: HashMap<u64, Vec<Arc<Flight<K, V>>>>,
    /// The flight each waiting thread waits for.
    waiting: HashMap<ThreadId, Arc<Flight<K, V>>>,
    /// Loads outside any flight, each as a record (never waited for) of its key and thread.
    unshared: Vec<Arc<Flight<K, V>>>,
}

impl<K, V> Default for FlightMap<K, V> {
    fn default() -> Self {
        FlightMap {
            by_hash: HashMap::new(),
            waiting: HashMap::new(),
            unshared: Vec::new(),
        }
    }
}

impl<K, V> FlightMap<K, V> {
    /// Whether `me` waiting for `flight` would close a cycle of waits: the chain from its leader
    /// through the flights each leader waits for comes back to `me`. Each waiting thread waits
    /// for one flight, and no cycle exists yet (each wait was checked when recorded), so the
    /// chain is at most as long as the record.
    fn closes_cycle(&self, me: ThreadId, flight: &Flight<K, V>) -> bool {
        let mut leader = flight.leader;
        for _ in 0..=self.waiting.len() {
            if leader == me {
                return true;
            }
            match self.waiting.get(&leader) {
                // A waiter's record outlives its wait by a moment (it is removed once the
                // waiter runs again): an ended flight links to no one.
                Some(next) if !next.ended.load(Ordering::Relaxed) => leader = next.leader,
                _ => return false,
            }
        }
        false
    }

    /// Unlists `flight` from wherever it is recorded, and gives it back to be dropped once the
    /// lock is released.
    fn unlist(&mut self, hash: u64, flight: &Arc<Flight<K, V>>) {
        if let Some(list) = self.by_hash.get_mut(&hash) {
            list.retain(|f| !Arc::ptr_eq(f, flight));
            if list.is_empty() {
                self.by_hash.remove(&hash);
            }
        }
        self.unshared.retain(|f| !Arc::ptr_eq(f, flight));
    }
}

/// What a thread that missed does about a key (see [`ShardedCache::join_or_lead`]).
enum Role<'c, K, V, S>
where
    K: Hash + Eq,
{
    /// Load it, leading this new flight.
    Lead(Arc<Flight<K, V>>),
    /// Wait for the recorded flight.
    Wait(Recorded<'c, K, V, S>),
    /// Load it outside any flight (waiting would close a cycle, or the thread is settling
    /// its own load of the key), as recorded.
    Unshared(Recorded<'c, K, V, S>),
    /// The thread's loader asked for the key it is loading.
    Reentered,
}

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
            flights.unlist(self.hash, &self.flight);
            self.flight.ended.store(true, Ordering::Relaxed);
        }
        *lock(&self.flight.outcome) = self.outcome.take().unwrap_or(Outcome::Failed);
        self.flight.done.notify_all();
    }
}

/// Removes a thread's record (of a wait, or of a load outside any flight) when it is done, by
/// success, error or panic. The record's `Arc` is dropped after the lock is released.
struct Recorded<'c, K, V, S>
where
    K: Hash + Eq,
{
    cache: &'c ShardedCache<K, V, S>,
    hash: u64,
    /// The flight waited for (`waiting`), or the record of an unshared load (`unshared`).
    flight: Arc<Flight<K, V>>,
    waiting: bool,
}

impl<K: Hash + Eq, V, S> Drop for Recorded<'_, K, V, S> {
    fn drop(&mut self) {
        let mut flights = lock(&self.cache.flights);
        let mine = if self.waiting {
            let me = current_thread().id();
            let is_this = |f: &Arc<Flight<K, V>>| Arc::ptr_eq(f, &self.flight);
            if flights.waiting.get(&me).is_some_and(is_this) {
                flights.waiting.remove(&me)
            } else {
                None
            }
        } else {
            flights.unlist(self.hash, &self.flight);
            None
        };
        drop(flights);
        drop(mine);
    }
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
    /// thread is loading, it waits for that load as any caller does, unless the other thread is
    /// itself waiting, directly or along a chain of loads, for this one: then it loads the key
    /// itself instead, so that loads never wait on each other in a cycle.
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
            let flight = match self.join_or_lead(&key, hash) {
                Role::Lead(flight) => flight,
                Role::Reentered => return Err(CacheError::LoaderReentered),
                Role::Unshared(_recorded) => {
                    // Waiting would close a cycle of waits (or this thread is settling its
                    // own load of the key): loaded here, outside any flight, recorded until
                    // done so that `init` asking for this key is refused.
                    if let Some(v) = self.peek(&key) {
                        return Ok(v);
                    }
                    let Some(init) = init.take() else {
                        return Err(CacheError::LoaderReentered);
                    };
                    let value = init().map_err(|e| CacheError::Loader(e.into()))?;
                    return self.store_loaded(key, value).map(|(v, _)| v);
                }
                Role::Wait(recorded) => {
                    // Read after this call's miss: if the leader had not begun to settle the
                    // value then, it settles it after the miss, within this call, and the value
                    // is this call's to return. Otherwise the value may have been stored before
                    // the miss and be gone since: this call reads the cache itself once the
                    // flight ends.
                    let late = recorded.flight.settling.load(Ordering::SeqCst);
                    let outcome = wait(&recorded.flight);
                    drop(recorded);
                    match outcome {
                        Outcome::Loaded(v) if !late => return Ok(V::clone(&v)),
                        Outcome::Loaded(_) => match self.peek(&key) {
                            Some(v) => return Ok(v),
                            None => continue, // gone again: start over
                        },
                        Outcome::Unstored(v) => return Ok(V::clone(&v)),
                        Outcome::Closed => return Err(CacheError::Closed),
                        // The leader failed: start over.
                        Outcome::Failed | Outcome::Running => continue,
                    }
                }
            };
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
                leading.outcome = Some(Outcome::Loaded(Arc::new(v.clone())));
                return Ok(v);
            }
            settling.store(false, Ordering::SeqCst);
            let Some(init) = init.take() else {
                // Only a leader runs `init`, and a thread leads at most once: it returns below.
                return Err(CacheError::LoaderReentered);
            };
            let value = init().map_err(|e| CacheError::Loader(e.into()))?;
            settling.store(true, Ordering::SeqCst);
            let (value, stored) = match self.store_loaded(key, value) {
                Ok(loaded) => loaded,
                Err(error) => {
                    if matches!(error, CacheError::Closed) {
                        leading.outcome = Some(Outcome::Closed);
                    }
                    return Err(error);
                }
            };
            leading.outcome = Some(if stored {
                Outcome::Loaded(Arc::new(value.clone()))
            } else {
                Outcome::Unstored(Arc::new(value.clone()))
            });
            return Ok(value);
        }
    }

    /// Stores a loaded value only if the key is still missing: a value another thread wrote
    /// while the loader ran stays, and is the one returned. A value the cache cannot keep
    /// (`TooLarge`, `NoRoom`) is returned unstored (`false`); only `Closed` is an error.
    fn store_loaded(&self, key: K, value: V) -> Result<(V, bool), CacheError> {
        let stored = self.compute(key, |current| match current {
            Some(_) => Op::Nop,
            None => Op::Put(value.clone()),
        });
        match stored {
            Ok(Computed::Inserted(v) | Computed::Unchanged(v)) => Ok((v, true)),
            Ok(_) => unreachable!("the function puts on a miss and does nothing on a hit"),
            Err(CacheError::TooLarge { .. } | CacheError::NoRoom { .. }) => Ok((value, false)),
            Err(error) => Err(error),
        }
    }

    /// What the calling thread does about `key`, which it missed: lead a new flight, wait for
    /// the running one, load it outside any flight (if waiting would close a cycle, or if it is
    /// settling its own load of the key: a listener or a value's `Drop` that storing it runs),
    /// or refuse (its loader asked for the key it is loading). Decided, and recorded, under the
    /// flights lock; the record's guard exists before anything of the caller's is dropped.
    fn join_or_lead(&self, key: &K, hash: u64) -> Role<'_, K, V, S> {
        let me = current_thread().id();
        // Made before the lock, since the key's `Clone` is user code: only its `Eq` runs under
        // the flights lock. A thread that joins a flight drops its own, unused, after the lock.
        let mine = Arc::new(Flight {
            key: key.clone(),
            leader: me,
            settling: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            outcome: Mutex::new(Outcome::Running),
            done: Condvar::new(),
        });
        let mut flights = lock(&self.flights);
        let loading_unshared = flights
            .unshared
            .iter()
            .any(|f| f.leader == me && f.key == *key);
        if loading_unshared {
            return Role::Reentered;
        }
        let list = flights.by_hash.entry(hash).or_default();
        let Some(running) = list.iter().find(|f| f.key == *key).map(Arc::clone) else {
            list.push(Arc::clone(&mine));
            return Role::Lead(mine);
        };
        let settling_its_own = running.leader == me && running.settling.load(Ordering::SeqCst);
        if running.leader == me && !settling_its_own {
            return Role::Reentered;
        }
        if settling_its_own || flights.closes_cycle(me, &running) {
            flights.unshared.push(Arc::clone(&mine));
            return Role::Unshared(Recorded {
                cache: self,
                hash,
                flight: mine,
                waiting: false,
            });
        }
        let stale = flights.waiting.insert(me, Arc::clone(&running));
        let recorded = Recorded {
            cache: self,
            hash,
            flight: running,
            waiting: true,
        };
        // Dropped with the lock released, and with the guard in place: the key's `Drop` is
        // user code, and if it panics the guard still removes the record as it unwinds.
        drop(flights);
        drop(stale);
        drop(mine);
        Role::Wait(recorded)
    }
}

/// Waits for a flight to end, and says how it ended (never `Running`). Runs no user code: the
/// value is shared, for the caller to clone with the lock released.
fn wait<K, V>(flight: &Flight<K, V>) -> Outcome<V> {
    let mut outcome = lock(&flight.outcome);
    loop {
        match &*outcome {
            Outcome::Running => {
                outcome = match flight.done.wait(outcome) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                }
            }
            Outcome::Loaded(v) => return Outcome::Loaded(Arc::clone(v)),
            Outcome::Unstored(v) => return Outcome::Unstored(Arc::clone(v)),
            Outcome::Closed => return Outcome::Closed,
            Outcome::Failed => return Outcome::Failed,
        }
    }
}
