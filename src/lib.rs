//! epochcache: a concurrent in-memory cache for high-throughput services.
//!
//! # Usage
//!
//! The caches of the object API, [`DictCache`] and [`ByteCache`], implement [`BaseCache`] (get,
//! set with an optional expiry, delete, close) and [`SeparateBodyCache`] (metadata and a large
//! body stored apart, the body read as a stream); the generic engine, [`ShardedCache`], has
//! methods of its own. [`DictCache`] is a simple dictionary cache, the reference the others are
//! tested against.
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
//! # The engine
//!
//! [`ShardedCache`] is the store that makes the crate worth choosing: a power-of-two array of
//! shards, each an open-addressed table of 64-byte groups (seven control bytes and seven entry
//! pointers a group), with memory reclaimed by crossbeam-epoch. It is generic over key and value;
//! [`ByteCache`] is its instantiation for the cache object API (`str` keys, `Bytes` values), with
//! short keys stored inside the entry.
//!
//! ```
//! use bytes::Bytes;
//! use epochcache::{BaseCache, ByteCache, SeparateBodyCache};
//!
//! let cache = ByteCache::builder().max_weight(256 << 20).build();
//! cache.set("page:/", Bytes::from_static(b"{\"etag\":\"x\"}"), None)?;
//! cache.set_body("page:/", Bytes::from(vec![b'.'; 1 << 20]))?;
//! assert_eq!(cache.get_with("page:/", |meta| meta.len())?, Some(12));
//! assert_eq!(cache.get_body("page:/")?.unwrap().remaining(), 1 << 20);
//! # Ok::<(), epochcache::CacheError>(())
//! ```
//!
//! # Consistency
//!
//! - Single-key operations are linearizable. A `set` (or `insert`) or `delete` (or `remove`) is
//!   visible to every `get` that starts after it returns, on any thread.
//! - A `get` running at the same time as a write of its key returns the old value or the new one,
//!   never a mix, and never memory that was freed: a reader is pinned, and a replaced or removed
//!   entry is retired to the epoch collector, not freed in place.
//! - A `get` during a table rebuild reads the old table, which still points at every live entry,
//!   until it unpins.
//! - `len` counts shard by shard, so under concurrent writes it is approximate.
//! - Iteration ([`ShardedCache::iter`], [`Pinned::iter`]) is weakly consistent: it takes no
//!   lock and blocks no writer; a key present for the whole iteration is yielded exactly once,
//!   and one inserted, replaced or removed during it may be yielded or not, with either value.
//!   A key removed and written again during it may even be yielded twice, once with each value:
//!   its new entry can land in a slot the walk has not reached yet.
//!   [`ShardedCache::retain`] judges each entry with no lock held and removes it only if it is
//!   still the entry judged, so a value written after the verdict stays.
//!   [`ShardedCache::clear`] clears one shard at a time.
//! - [`ShardedCache::compute`] is an atomic read-modify-write of one key: its answer is applied
//!   only if the key's entry is still the one its function saw (compared under the shard's lock),
//!   else the function runs again on the new value, so no concurrent write is lost.
//! - A value is dropped exactly once: after it is replaced, removed, evicted or expired and every
//!   reader pinned at that moment has moved on, or when the cache is dropped. Drops never run
//!   under a shard lock.
//! - A bounded cache reserves an entry's weight before linking it, so its resident weight (what
//!   [`ShardedCache::weight`] reports) never exceeds the bound. A write of a key already stored
//!   reserves only the weight its value adds, so it never evicts its own key or a neighbour to
//!   make room it does not need.
//!
//! # User code
//!
//! Listeners, loaders, the clock and values' `Drop` run with no lock of the cache held, and may
//! use the cache; a load that asks for a key whose load waits, directly or along a chain of
//! loads, for its own, loads that key itself rather than wait, so loads never wait on each other
//! in a cycle. A listener that panics loses nothing: the budget is settled before listeners
//! run, every other removal is still told, and the first panic is resumed afterwards. Two kinds
//! of user code do run under a shard's lock, as they do in every hash table: the key's `Hash` and
//! `Eq` (and the weigher, outside it, but trusted the same way). They must not call into the
//! same cache, which would wait for itself, and they must give the same answer for the same key
//! every time. A `Hash` that panics fails the operation that called it and leaves the shard
//! consistent, its budget settled and every removal it already made told to the listener; a
//! weigher that panics when an entry leaves loses that entry's weight from the budget, since the
//! engine does not store it. A listener that panics during a write panics after the write's
//! value is stored.
//!
//! A value's `Drop` runs when the epoch collector frees it: inside whichever operation, of any
//! cache on any thread, next runs a collection (crossbeam-epoch collects on pins and flushes). A
//! `Drop` that panics there is caught, so that the rest of the collection still runs
//! (crossbeam-epoch would not go on with a batch after a panic: the other values freed with it
//! would never be dropped, and the count of unfreed weight would stay up for good). The panic
//! goes on at that thread's next write or removal of an epochcache cache that removes an entry;
//! a thread that never makes one never sees it. The engine settles every removal's budget, and
//! `close` clears every shard, before it lets the collector run, so such a panic loses nothing
//! stored and no budget. Dropping a `ShardedCache` or a `ByteCache` drops every value it still
//! holds, even if some of their `Drop`s panic, and then resumes the first of those panics (unless
//! the cache is dropped while its thread is already unwinding); a `DictCache`, a `HashMap`
//! inside, stops at the first, as a `HashMap` does.
//!
//! # Bounded memory and eviction
//!
//! A cache built with [`CacheBuilder::max_weight`] (bytes, counted by a weigher) or
//! [`CacheBuilder::max_entries`] holds one budget for all its shards: a writer reserves its
//! entry's weight before linking it and evicts until the reservation fits, so
//! [`ShardedCache::weight`] never exceeds the bound, whichever shard the entry hashes to. An
//! entry heavier than [`CacheBuilder::max_entry_weight`] (default: 1/8 of the budget) is refused
//! with [`CacheError::TooLarge`] and the key keeps its old value (as it does in the rare case that
//! nothing could be evicted for a fitting entry for a long while: [`CacheError::NoRoom`]). A
//! write whose expiry has already passed stores nothing, so it is never refused: it removes the
//! key's old value. Under a
//! weight bound alone an entry that weighs nothing holds no room and is never evicted for size, as
//! in Caffeine and quick_cache.
//!
//! Eviction takes expired entries first, then asks the writer's own shard's policy: new keys wait
//! in a small probationary queue; a key read there moves to a main CLOCK queue; one not read must
//! be rated more popular than the main queue's victim by a frequency sketch to enter it, unless it
//! returns soon after the probationary queue dropped it (a ghost hit), which lets it in. Ghost
//! histories size the probationary queue to the workload. A hit only raises a 4-bit counter in
//! the entry with a relaxed store, and only while it is below its maximum. `HITRATIO.md` has the
//! measured hit ratios.
//!
//! Expired entries free their memory without being read: each write that stores a value removes
//! up to two expired entries of its shard (earliest deadline first; a write whose expiry has
//! already passed stores nothing and sweeps nothing), and [`ShardedCache::purge_expired`] removes
//! all of them for an idle cache. Memory unlinked but not yet freed by the epoch collector is counted
//! too ([`CacheStats::garbage_weight`]); writers flush it once it passes one entry's maximum, and
//! every writer hands its garbage to the collector every few entries it unlinks, so replaced and
//! removed values are dropped promptly even without a bound. The collector frees an entry only
//! once every thread pinned when it was unlinked has unpinned, and a thread descheduled while
//! pinned holds that back until it runs again, so a write that leaves more than twice the limit
//! waiting then waits for the collector, unpinned, a bounded number of times (two writers of
//! 4 KiB values on two busy cores: at most twice the limit waiting, against up to 12 times with
//! flushing alone; `tests/garbage.rs`). A thread that stays pinned for long (a held
//! [`Pinned`]) holds garbage back however long writers wait, and they slow down meanwhile.
//! Resident weight itself never passes the budget.
//!
//! [`CacheBuilder::eviction_listener`] is told of every entry that leaves, with its
//! [`RemovalCause`], outside any lock. [`ShardedCache::stats`] counts inserts and removals by
//! cause, kept under the shard locks writers already hold. Hits and misses are counted only with
//! [`CacheBuilder::record_stats`] (off by default, as in Caffeine), on per-thread stripes, since
//! one counter shared by readers would be a line every reader writes.
//! [`ShardedCache::get_or_insert_with`] loads a missing value once, however many threads miss it.
//!
//! # Performance
//!
//! `get` pins the epoch once, hashes once, reads one group line and one entry, and writes
//! nothing shared but the entry's own 4-bit access counter (only until it reaches 15, so a hot
//! entry's line is no longer written), the calling thread's stripe of the hit and miss counters
//! when [`CacheBuilder::record_stats`] is on, and, for [`ShardedCache::get`] and
//! [`BaseCache::get`], the returned value's reference count. [`ShardedCache::get_with`] and
//! [`ByteCache::get_with`] lend the value instead and do not write its reference count; [`ShardedCache::pin`] shares one pin across a batch
//! of reads. Writes take one shard's lock. `BENCHMARKS.md` has the measured ratios against the
//! peers.
//!
//! What limits it on many cores is the epoch collector, not the table. A pin writes only the
//! thread's own epoch word, but every 128th pin of a thread runs crossbeam-epoch's collection,
//! which reads every thread's epoch word; and every replacement or removal retires an entry to
//! the thread's bag, which is handed to the collector's global queue every fourth retirement
//! (the builder's `retire_batch`: a larger batch writes faster on many cores, with a longer
//! tail).
//! On 16 cores (`BENCHMARKS.md`, "Thread scaling") per-operation reads of a small hot set scale
//! about 5x from one thread to 16 (the pin, and for `get` the values' reference counts) and
//! replacing writes 4x to 5x, while reads spread over a large table scale 13x to 17.5x. A batch
//! of reads under one [`ShardedCache::pin`] pays the pin once.
//!
//! # Time
//!
//! Expiry decisions read a [`Clock`]; tests give caches a [`MockClock`] and advance it, so that
//! no test sleeps. A write's expiry is its own, else the builder's
//! [`time_to_live`](CacheBuilder::time_to_live), else none. A write whose expiry has already
//! passed is not stored (it could never be read, and storing it would take room from live
//! entries): it removes the key's old value, and the listener hears of both. Deadlines are kept
//! to 16 ns, rounded down, so a value is never served after its expiry (but to a clock within
//! 16 ns of the Unix epoch; see [`Expires`]).

#![warn(missing_docs)]

mod body;
mod budget;
mod builder;
mod bulk;
mod byte_cache;
mod clock;
mod compute;
mod dict;
mod equivalent;
mod error;
mod expires;
mod loader;
mod pinned;
mod raw;
mod room;
mod sharded;
mod stats;
mod sweep;
mod sync;
mod traits;

pub use body::BodyReader;
pub use builder::CacheBuilder;
pub use bulk::Iter;
pub use byte_cache::{ByteCache, ByteCacheBuilder};
pub use clock::{Clock, MockClock, SystemClock};
pub use compute::{Computed, Op};
pub use dict::DictCache;
pub use equivalent::Equivalent;
pub use error::CacheError;
pub use expires::Expires;
pub use pinned::Pinned;
pub use sharded::ShardedCache;
pub use stats::{CacheStats, RemovalCause};
pub use traits::{BaseCache, SeparateBodyCache};

/// For tests and loom models that place keys by their hash (not part of the API).
#[doc(hidden)]
pub use raw::hash_spreading_to;

/// The README's code blocks run as doctests, so its quick start cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
