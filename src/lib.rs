//! epochcache: a concurrent in-memory cache for high-throughput services.
//!
//! # Usage
//!
//! Every cache implements [`BaseCache`] (get, set with an optional expiry, delete, close) and
//! [`SeparateBodyCache`] (metadata and a large body stored apart, the body read as a stream).
//! [`DictCache`] is a simple dictionary cache, the reference the others are tested against.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use epochcache::{BaseCache, DictCache};
//!
//! let cache = DictCache::new();
//! cache.set("user:42", Bytes::from_static(b"{\"name\":\"Ada\"}"), Some(Duration::from_secs(60).into()))?;
//! assert_eq!(cache.get("user:42")?.as_deref(), Some(&b"{\"name\":\"Ada\"}"[..]));
//! cache.delete("user:42")?;
//! assert_eq!(cache.get("user:42")?, None);
//! # Ok::<(), epochcache::CacheError>(())
//! ```
//!
//! # Time
//!
//! Expiry decisions read a [`Clock`]; tests give caches a [`MockClock`] and advance it, so that
//! no test sleeps.

#![warn(missing_docs)]

mod body;
mod budget;
mod builder;
mod byte_cache;
mod clock;
mod dict;
mod equivalent;
mod error;
mod expires;
mod raw;
mod sharded;
mod sync;
mod traits;

pub use body::BodyReader;
pub use builder::CacheBuilder;
pub use byte_cache::{ByteCache, ByteCacheBuilder};
pub use clock::{Clock, MockClock, SystemClock};
pub use dict::DictCache;
pub use equivalent::Equivalent;
pub use error::CacheError;
pub use expires::Expires;
pub use sharded::{Pinned, ShardedCache};
pub use traits::{BaseCache, SeparateBodyCache};
