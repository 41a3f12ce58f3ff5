//! `ByteCache`: the engine instantiated for the cache object API (`str` keys, `Bytes` values),
//! implementing [`BaseCache`] and [`SeparateBodyCache`].
//!
//! Metadata and bodies live in one [`ShardedCache`] under two namespaces: a stored key is one
//! allocation holding a namespace byte and the key's bytes. So a body is an entry of its own:
//! `set` of metadata never reads, copies or touches it, `delete` removes both, and one budget
//! bounds both. A body is returned as a [`BodyReader`] over a shared `Bytes`, so a reader keeps a
//! valid stream whatever happens to the entry while it reads.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;

use crate::body::BodyReader;
use crate::builder::CacheBuilder;
use crate::clock::Clock;
use crate::equivalent::Equivalent;
use crate::sharded::ShardedCache;
use crate::{BaseCache, CacheError, Expires, SeparateBodyCache};

/// What a stored entry costs beyond its key and value bytes, as the budget counts it: the entry
/// (key handle, `Bytes` handle, metadata word), its slot and control byte, and two allocator
/// headers.
const BYTE_ENTRY_OVERHEAD: u64 = 96;

const METADATA: u8 = 0;
const BODY: u8 = 1;

/// A stored key: the namespace byte, then the key's UTF-8 bytes.
#[derive(PartialEq, Eq)]
pub(crate) struct ByteKey(Box<[u8]>);

impl ByteKey {
    fn new(namespace: u8, key: &str) -> Self {
        let mut bytes = Vec::with_capacity(key.len() + 1);
        bytes.push(namespace);
        bytes.extend_from_slice(key.as_bytes());
        ByteKey(bytes.into_boxed_slice())
    }
}

impl Hash for ByteKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.0[0]);
        state.write(&self.0[1..]);
    }
}

impl fmt::Debug for ByteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0[0], String::from_utf8_lossy(&self.0[1..]))
    }
}

/// A borrowed key for lookups, hashing exactly as the [`ByteKey`] it stands for.
struct KeyRef<'a> {
    namespace: u8,
    key: &'a str,
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.namespace);
        state.write(self.key.as_bytes());
    }
}

impl Equivalent<ByteKey> for KeyRef<'_> {
    fn equivalent(&self, stored: &ByteKey) -> bool {
        stored.0[0] == self.namespace && &stored.0[1..] == self.key.as_bytes()
    }
}

/// The engine as a [`BaseCache`] and [`SeparateBodyCache`]: `str` keys, `Bytes` values.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use epochcache::{BaseCache, ByteCache};
///
/// let cache = ByteCache::builder().max_weight(64 << 20).build();
/// cache.set("user:1", Bytes::from_static(b"ada"), Some(Duration::from_secs(60).into()))?;
/// assert_eq!(cache.get("user:1")?, Some(Bytes::from_static(b"ada")));
/// assert_eq!(cache.get_with("user:1", |v| v.len())?, Some(3));
/// # Ok::<(), epochcache::CacheError>(())
/// ```
pub struct ByteCache {
    inner: ShardedCache<ByteKey, Bytes>,
    copy_up_to: usize,
}

/// Options for a [`ByteCache`].
///
/// ```
/// # use epochcache::ByteCache;
/// let cache = ByteCache::builder().shards(4).max_entries(1000).build();
/// # drop(cache);
/// ```
pub struct ByteCacheBuilder {
    inner: CacheBuilder<ByteKey, Bytes>,
    copy_up_to: usize,
}

impl ByteCacheBuilder {
    /// The number of shards (see [`CacheBuilder::shards`]).
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().shards(2).build();
    /// # drop(cache);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.inner = self.inner.shards(shards);
        self
    }

    /// Bounds the total bytes: keys, values and per-entry overhead.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().max_weight(1 << 20).build();
    /// assert_eq!(cache.max_weight(), Some(1 << 20));
    /// ```
    pub fn max_weight(mut self, bytes: u64) -> Self {
        self.inner = self.inner.max_weight(bytes);
        self
    }

    /// Bounds the number of entries (metadata and bodies each count).
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().max_entries(10).build();
    /// # drop(cache);
    /// ```
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.inner = self.inner.max_entries(entries);
        self
    }

    /// The largest entry accepted, in bytes (see [`CacheBuilder::max_entry_weight`]).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::builder().max_entry_weight(200).build();
    /// assert!(cache.set("k", Bytes::from(vec![0; 500]), None).is_err());
    /// ```
    pub fn max_entry_weight(mut self, bytes: u64) -> Self {
        self.inner = self.inner.max_entry_weight(bytes);
        self
    }

    /// Where expiry reads the time.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use epochcache::{ByteCache, MockClock};
    /// let cache = ByteCache::builder().clock(Arc::new(MockClock::new())).build();
    /// # drop(cache);
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.inner = self.inner.clock(clock);
        self
    }

    /// `get` returns a fresh copy of values up to this many bytes instead of sharing the stored
    /// one (which writes its reference count, a line other readers of the same value also
    /// write). Default 0: always share.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::builder().copy_values_up_to(64).build();
    /// cache.set("k", Bytes::from_static(b"small"), None)?;
    /// assert_eq!(cache.get("k")?, Some(Bytes::from_static(b"small")));
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn copy_values_up_to(mut self, bytes: usize) -> Self {
        self.copy_up_to = bytes;
        self
    }

    /// Builds the cache.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().build();
    /// assert_eq!(cache.len(), 0);
    /// ```
    pub fn build(self) -> ByteCache {
        ByteCache {
            inner: self
                .inner
                .weigher(|k: &ByteKey, v: &Bytes| {
                    (k.0.len() + v.len()) as u64 + BYTE_ENTRY_OVERHEAD
                })
                .build(),
            copy_up_to: self.copy_up_to,
        }
    }
}

impl fmt::Debug for ByteCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteCacheBuilder")
            .field("inner", &self.inner)
            .finish()
    }
}

impl ByteCache {
    /// An unbounded cache with default options.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// assert!(ByteCache::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder of options.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// let cache = ByteCache::builder().max_weight(1 << 30).build();
    /// # drop(cache);
    /// ```
    pub fn builder() -> ByteCacheBuilder {
        ByteCacheBuilder {
            inner: CacheBuilder::new(),
            copy_up_to: 0,
        }
    }

    /// Calls `f` with the stored value for `key` without cloning it or touching its reference
    /// count. `f` runs while the thread is pinned: keep it short.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::new();
    /// cache.set("k", Bytes::from_static(b"abc"), None)?;
    /// assert_eq!(cache.get_with("k", |v| v[0])?, Some(b'a'));
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn get_with<R>(
        &self,
        key: &str,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, CacheError> {
        self.check_open()?;
        Ok(self.inner.get_with(&meta_key(key), |v| f(v)))
    }

    /// The number of stored entries (metadata and bodies each count); approximate under
    /// concurrent writes.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache, SeparateBodyCache};
    /// let cache = ByteCache::new();
    /// cache.set("k", Bytes::new(), None)?;
    /// cache.set_body("k", Bytes::new())?;
    /// assert_eq!(cache.len(), 2);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether nothing is stored.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// assert!(ByteCache::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The bytes stored, as the budget counts them (0 without a weight bound).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, ByteCache};
    /// let cache = ByteCache::builder().max_weight(1 << 20).build();
    /// cache.set("k", Bytes::from(vec![0; 100]), None)?;
    /// assert!(cache.weight() >= 101);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }

    /// The weight bound, if any.
    ///
    /// ```
    /// # use epochcache::ByteCache;
    /// assert_eq!(ByteCache::new().max_weight(), None);
    /// ```
    pub fn max_weight(&self) -> Option<u64> {
        self.inner.max_weight()
    }

    /// Checks every internal invariant; for tests.
    #[doc(hidden)]
    pub fn validate(&self) -> Result<(), String> {
        self.inner.validate()
    }

    fn check_open(&self) -> Result<(), CacheError> {
        if self.inner.is_closed() {
            return Err(CacheError::Closed);
        }
        Ok(())
    }
}

impl Default for ByteCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ByteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteCache")
            .field("inner", &self.inner)
            .finish()
    }
}

fn meta_key(key: &str) -> KeyRef<'_> {
    KeyRef {
        namespace: METADATA,
        key,
    }
}

fn body_key(key: &str) -> KeyRef<'_> {
    KeyRef {
        namespace: BODY,
        key,
    }
}

impl BaseCache for ByteCache {
    #[inline]
    fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        self.check_open()?;
        let copy_up_to = self.copy_up_to;
        Ok(self.inner.get_with(&meta_key(key), |v| {
            if v.len() <= copy_up_to {
                Bytes::copy_from_slice(v)
            } else {
                v.clone()
            }
        }))
    }

    fn set(&self, key: &str, value: Bytes, expires: Option<Expires>) -> Result<(), CacheError> {
        self.inner
            .insert_with_expiry(ByteKey::new(METADATA, key), value, expires)
    }

    fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.check_open()?;
        self.inner.remove(&meta_key(key));
        self.inner.remove(&body_key(key));
        Ok(())
    }

    fn close(&self) -> Result<(), CacheError> {
        self.inner.close();
        Ok(())
    }
}

impl SeparateBodyCache for ByteCache {
    type Body = BodyReader;

    fn set_body(&self, key: &str, body: Bytes) -> Result<(), CacheError> {
        self.inner.insert(ByteKey::new(BODY, key), body)
    }

    fn get_body(&self, key: &str) -> Result<Option<BodyReader>, CacheError> {
        self.check_open()?;
        Ok(self
            .inner
            .get_with(&body_key(key), |v| BodyReader::new(v.clone())))
    }
}
