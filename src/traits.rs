//! The cache object API of the seed, as Rust traits.
//!
//! [`BaseCache`] is the seed's `BaseCache` (get, set with an optional expiry, delete, close) and
//! [`SeparateBodyCache`] its `SeparateBodyBaseCache`. Both are object-safe, so that a service can
//! hold an `Arc<dyn BaseCache>` and change backends without changing code. Every method returns a
//! `Result`, because backends fail (and every cache fails after `close`).

use bytes::Bytes;

use crate::{CacheError, Expires};

/// A key-value cache of byte strings: the seed's `BaseCache`.
///
/// Keys are any `&str`, the empty string and very long strings included. A cache is shared between
/// threads by reference, so every method takes `&self`.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use epochcache::{BaseCache, DictCache};
///
/// let cache: Arc<dyn BaseCache> = Arc::new(DictCache::new());
/// cache.set("greeting", Bytes::from_static(b"hello"), None)?;
/// assert_eq!(cache.get("greeting")?, Some(Bytes::from_static(b"hello")));
/// cache.delete("greeting")?;
/// assert_eq!(cache.get("greeting")?, None);
/// # Ok::<(), epochcache::CacheError>(())
/// ```
pub trait BaseCache: Send + Sync {
    /// The value stored under `key`, or `None` when there is none or it has expired.
    ///
    /// ```
    /// # use epochcache::{BaseCache, DictCache};
    /// assert_eq!(DictCache::new().get("missing")?, None);
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError>;

    /// Stores `value` under `key`, replacing any older value, until `expires` (never if `None`).
    ///
    /// An expiry at or before now stores the value as already expired: the old value is replaced
    /// and `get` returns `None`. (The engine's caches do not store such a value at all, so that
    /// it takes no room from live ones; the listener hears of it as expired.)
    ///
    /// `ByteCache` keeps deadlines to 16 ns, rounded down, so that a value is never served after
    /// its expiry: it may stop being served up to 15 ns before it (see [`Expires`] for the one
    /// exception, a clock within 16 ns of the Unix epoch). `DictCache` keeps them exactly.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, DictCache};
    /// let cache = DictCache::new();
    /// cache.set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(60).into()))?;
    /// assert!(cache.get("k")?.is_some());
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    fn set(&self, key: &str, value: Bytes, expires: Option<Expires>) -> Result<(), CacheError>;

    /// Removes the value (and, in a [`SeparateBodyCache`], the body) stored under `key`.
    ///
    /// Deleting a key that holds nothing is not an error.
    ///
    /// ```
    /// # use epochcache::{BaseCache, DictCache};
    /// DictCache::new().delete("never set")?;
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    fn delete(&self, key: &str) -> Result<(), CacheError>;

    /// Releases the cache's resources; afterwards every operation returns
    /// [`CacheError::Closed`]. Closing twice is fine.
    ///
    /// ```
    /// # use epochcache::{BaseCache, DictCache};
    /// let cache = DictCache::new();
    /// cache.close()?;
    /// cache.close()?;
    /// assert!(cache.delete("k").is_err());
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    fn close(&self) -> Result<(), CacheError>;
}

/// A cache that stores a small metadata value and a large body apart: the seed's
/// `SeparateBodyBaseCache`.
///
/// Metadata is written with [`BaseCache::set`] and read with [`BaseCache::get`]; the body is
/// written with [`set_body`](SeparateBodyCache::set_body) and read as a stream with
/// [`get_body`](SeparateBodyCache::get_body). The semantics every implementation keeps (the
/// conformance suite checks them):
///
/// - metadata and body are two records under one key, written independently: `set` never reads,
///   copies or replaces the body, and `set_body` never touches the metadata;
/// - `get` returns the metadata whether or not a body exists, and `get_body` returns the body
///   whether or not metadata exists (writers store them in two steps, so either may be alone for
///   a moment; a reader that needs both checks both);
/// - the expiry given to `set` applies to the metadata; a body has no expiry of its own and lives
///   until it is replaced, deleted or evicted, or, in a cache built with a time to live for
///   writes that give no expiry ([`time_to_live`]), until that time has passed since it was set
///   (metadata set with a longer expiry of its own may then outlive its body);
/// - `delete` removes both;
/// - a stream returned by `get_body` stays valid and unchanged if the body is replaced or deleted
///   while it is read.
///
/// [`time_to_live`]: crate::ByteCacheBuilder::time_to_live
///
/// ```
/// use std::io::Read;
/// use bytes::Bytes;
/// use epochcache::{BaseCache, DictCache, SeparateBodyCache};
///
/// let cache = DictCache::new();
/// cache.set("page", Bytes::from_static(b"{\"status\":200}"), None)?;
/// cache.set_body("page", Bytes::from_static(b"<html>...</html>"))?;
/// let mut body = String::new();
/// cache.get_body("page")?.unwrap().read_to_string(&mut body).unwrap();
/// assert_eq!(body, "<html>...</html>");
/// # Ok::<(), epochcache::CacheError>(())
/// ```
pub trait SeparateBodyCache: BaseCache {
    /// The stream `get_body` returns.
    type Body: std::io::Read + Send;

    /// Stores `body` under `key`, replacing any older body; the metadata is left as it is.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::{BaseCache, DictCache, SeparateBodyCache};
    /// let cache = DictCache::new();
    /// cache.set_body("k", Bytes::from_static(b"body"))?;
    /// assert_eq!(cache.get("k")?, None); // no metadata was set
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    fn set_body(&self, key: &str, body: Bytes) -> Result<(), CacheError>;

    /// A stream over the body stored under `key`, or `None` when there is none.
    ///
    /// ```
    /// # use epochcache::{DictCache, SeparateBodyCache};
    /// assert!(DictCache::new().get_body("missing")?.is_none());
    /// # Ok::<(), epochcache::CacheError>(())
    /// ```
    fn get_body(&self, key: &str) -> Result<Option<Self::Body>, CacheError>;
}

/// Forwards every method of both traits, so that `Arc<C>`, `Box<C>` and `&C` are caches
/// wherever `C` is (`Arc<dyn BaseCache>` included), and separate-body caches wherever `C` is one.
macro_rules! forward_base_cache {
    ($($ptr:ty),*) => {$(
        impl<C: BaseCache + ?Sized> BaseCache for $ptr {
            fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
                (**self).get(key)
            }
            fn set(&self, key: &str, value: Bytes, expires: Option<Expires>) -> Result<(), CacheError> {
                (**self).set(key, value, expires)
            }
            fn delete(&self, key: &str) -> Result<(), CacheError> {
                (**self).delete(key)
            }
            fn close(&self) -> Result<(), CacheError> {
                (**self).close()
            }
        }

        impl<C: SeparateBodyCache + ?Sized> SeparateBodyCache for $ptr {
            type Body = C::Body;

            fn set_body(&self, key: &str, body: Bytes) -> Result<(), CacheError> {
                (**self).set_body(key, body)
            }
            fn get_body(&self, key: &str) -> Result<Option<Self::Body>, CacheError> {
                (**self).get_body(key)
            }
        }
    )*};
}

forward_base_cache!(std::sync::Arc<C>, Box<C>, &C);
