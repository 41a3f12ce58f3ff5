//! `DictCache`: the seed's thread-safe dictionary cache, and the reference the engine is tested
//! against.
//!
//! It is a `HashMap` behind one `RwLock`, simple on purpose: every behaviour of the API is easy to
//! read off it, so the property tests of [`ShardedCache`](crate::ShardedCache) compare against it.
//! Unlike the seed it honours `expires` (with an injectable [`Clock`]), and like every cache here
//! it never drops a value while holding its lock: replaced values are dropped after the lock is
//! released, so a value's `Drop` never runs under the lock.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use crate::body::BodyReader;
use crate::clock::{default_clock, Clock};
use crate::expires::{deadline_of, has_passed, is_expired};
use crate::{BaseCache, CacheError, Expires, SeparateBodyCache};

/// A thread-safe dictionary cache that honours expiry: the seed's `DictCache`.
///
/// Memory is not bounded: it holds what it is given. Expired values are not returned; they are
/// removed when the key is written again.
///
/// ```
/// use bytes::Bytes;
/// use epochcache::{BaseCache, DictCache};
///
/// let cache = DictCache::with_data([("existing_key".to_string(), Bytes::from_static(b"v"))]);
/// assert_eq!(cache.get("existing_key")?, Some(Bytes::from_static(b"v")));
/// cache.set("key1", Bytes::from_static(b"value1"), None)?;
/// assert_eq!(cache.len(), 2);
/// # Ok::<(), epochcache::CacheError>(())
/// ```
pub struct DictCache {
    state: RwLock<State>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct State {
    closed: bool,
    /// Metadata values and their deadlines (0 for never).
    values: HashMap<String, (Bytes, u64)>,
    bodies: HashMap<String, Bytes>,
}

impl DictCache {
    /// An empty cache on the system clock.
    ///
    /// ```
    /// # use epochcache::DictCache;
    /// assert!(DictCache::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_data(std::iter::empty())
    }

    /// A cache holding `data`, none of it expiring: the seed's `init_dict`.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::DictCache;
    /// let cache = DictCache::with_data(vec![("a".to_string(), Bytes::new())]);
    /// assert_eq!(cache.len(), 1);
    /// ```
    pub fn with_data<I: IntoIterator<Item = (String, Bytes)>>(data: I) -> Self {
        let values = data.into_iter().map(|(k, v)| (k, (v, 0))).collect();
        DictCache {
            state: RwLock::new(State {
                values,
                ..State::default()
            }),
            clock: default_clock(),
        }
    }

    /// The same cache, reading time from `clock` (a [`MockClock`](crate::MockClock) in tests).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, DictCache, MockClock};
    /// let clock = MockClock::new();
    /// let cache = DictCache::new().with_clock(Arc::new(clock.clone()));
    /// cache.set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(1).into()))?;
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.get("k")?, None);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many metadata values are stored, expired ones not yet removed included.
    ///
    /// ```
    /// # use epochcache::DictCache;
    /// assert_eq!(DictCache::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.read().values.len()
    }

    /// Whether no metadata value is stored.
    ///
    /// ```
    /// # use epochcache::DictCache;
    /// assert!(DictCache::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic elsewhere while holding the lock leaves the maps consistent (every update is one
    // map call), so a poisoned lock is used as it is rather than turned into a panic here.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_read(&self) -> Result<RwLockReadGuard<'_, State>, CacheError> {
        let state = self.read();
        if state.closed {
            return Err(CacheError::Closed);
        }
        Ok(state)
    }

    fn open_write(&self) -> Result<RwLockWriteGuard<'_, State>, CacheError> {
        let state = self.write();
        if state.closed {
            return Err(CacheError::Closed);
        }
        Ok(state)
    }
}

impl Default for DictCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DictCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DictCache")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl BaseCache for DictCache {
    fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        // Read before the lock: a clock is user code.
        let now = self.clock.now_nanos();
        let state = self.open_read()?;
        Ok(state
            .values
            .get(key)
            .filter(|(_, deadline)| !is_expired(*deadline, now))
            .map(|(value, _)| value.clone()))
    }

    fn set(&self, key: &str, value: Bytes, expires: Option<Expires>) -> Result<(), CacheError> {
        let now = self.clock.now_nanos();
        // Judged before the deadline is kept from 0 (see `has_passed`): to a clock at the epoch
        // an expiry at or before it has passed, though its deadline (1) is after now (0).
        let old = if has_passed(expires, now) {
            // Stored as already expired: the old value goes and nothing is served.
            drop(value);
            self.open_write()?.values.remove(key)
        } else {
            let deadline = deadline_of(expires, now);
            self.open_write()?
                .values
                .insert(key.to_owned(), (value, deadline))
        };
        drop(old); // after the lock guard, a temporary of the statement above, is gone
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut state = self.open_write()?;
        let old = (state.values.remove(key), state.bodies.remove(key));
        drop(state);
        drop(old);
        Ok(())
    }

    fn close(&self) -> Result<(), CacheError> {
        let mut state = self.write();
        state.closed = true;
        let old = (
            std::mem::take(&mut state.values),
            std::mem::take(&mut state.bodies),
        );
        drop(state);
        drop(old);
        Ok(())
    }
}

impl SeparateBodyCache for DictCache {
    type Body = BodyReader;

    fn set_body(&self, key: &str, body: Bytes) -> Result<(), CacheError> {
        let old = self.open_write()?.bodies.insert(key.to_owned(), body);
        drop(old);
        Ok(())
    }

    fn get_body(&self, key: &str) -> Result<Option<BodyReader>, CacheError> {
        let state = self.open_read()?;
        Ok(state.bodies.get(key).cloned().map(BodyReader::new))
    }
}
