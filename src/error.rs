//! The one error type of every cache operation.
//!
//! Caches fail for few reasons, and a caller wants to match on them, so `CacheError` is a small
//! enum rather than a boxed trait object; `#[non_exhaustive]` leaves room for later variants, and
//! [`CacheError::Backend`] carries any error of a backend that is not an in-memory table.

use std::error::Error;
use std::fmt;

/// Why a cache operation failed.
///
/// Every operation of [`BaseCache`](crate::BaseCache) returns `Result<_, CacheError>`. A failed
/// `set` leaves whatever was stored under the key before exactly as it was.
///
/// ```
/// use epochcache::{BaseCache, CacheError, DictCache};
///
/// let cache = DictCache::new();
/// cache.close().unwrap();
/// assert!(matches!(cache.get("k"), Err(CacheError::Closed)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CacheError {
    /// The cache was closed; no operation is served after [`close`](crate::BaseCache::close).
    Closed,
    /// The entry is larger than the cache accepts for one entry.
    TooLarge {
        /// The weight of the refused entry as the cache's weigher gives it (for `ByteCache`, in
        /// bytes: the value, the per-entry overhead, and, for a key longer than the 39 bytes the
        /// overhead already covers, the key's length plus one).
        size: usize,
        /// The largest weight the cache accepts for one entry.
        max: usize,
    },
    /// The entry fits the cache, but no room could be made for it: for a long while (about a
    /// fifth of a second of waiting) nothing could be evicted and the budget did not move, as
    /// when other writers hold the room in reservations they do not use, or the policy found
    /// no victim it may evict. The old value of the key stays. Trying again later may succeed.
    NoRoom {
        /// The weight of the refused entry as the weigher gives it (0 where the cache weighs
        /// nothing: no weight bound and no limit for one entry).
        size: usize,
    },
    /// An error of a backend that stores entries outside this process's memory.
    Backend(Box<dyn Error + Send + Sync + 'static>),
    /// The loader given to
    /// [`try_get_or_insert_with`](crate::ShardedCache::try_get_or_insert_with) failed.
    Loader(Box<dyn Error + Send + Sync + 'static>),
    /// A loader asked for the key it is loading, which would wait for itself forever.
    LoaderReentered,
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Closed => f.write_str("the cache is closed"),
            // In the weigher's unit, which is bytes only for `ByteCache` and the default weigher.
            CacheError::TooLarge { size, max } => write!(
                f,
                "the entry weighs {size}, more than the {max} one entry may weigh"
            ),
            CacheError::NoRoom { size } => write!(
                f,
                "no room could be made for an entry of weight {size}: nothing could be evicted"
            ),
            CacheError::Backend(e) => write!(f, "cache backend error: {e}"),
            CacheError::Loader(e) => write!(f, "the loader failed: {e}"),
            CacheError::LoaderReentered => f.write_str("a loader asked for the key it is loading"),
        }
    }
}

impl Error for CacheError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CacheError::Backend(e) | CacheError::Loader(e) => Some(&**e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_cause() {
        assert_eq!(CacheError::Closed.to_string(), "the cache is closed");
        let too_large = CacheError::TooLarge { size: 10, max: 4 };
        assert_eq!(
            too_large.to_string(),
            "the entry weighs 10, more than the 4 one entry may weigh"
        );
        let no_room = CacheError::NoRoom { size: 7 }.to_string();
        assert!(
            no_room.contains("no room") && no_room.contains("weight 7"),
            "{no_room}"
        );
        let io = std::io::Error::other("disk gone");
        let backend = CacheError::Backend(Box::new(io));
        assert!(backend.to_string().contains("disk gone"));
        assert!(backend.source().is_some());
        assert!(CacheError::Closed.source().is_none());
    }
}
