//! The unsafe core: the open-addressed table, its entries and its shards.
//!
//! Every `unsafe` block of the crate lives in this module, each with a `// SAFETY:` comment that
//! names the invariant it relies on. The layer above (`sharded`, `byte_cache`) sees only safe
//! functions that take a pinned [`Guard`](crossbeam_epoch::Guard) and return references bounded
//! by it.
//!
//! - [`tag`]: control bytes, the one-word compare of a group's seven tags, and the spread
//!   of a hash into shard, group and tag bits.
//! - [`entry`]: the immutable entry and its metadata word (deadline and access counter).
//! - [`table`]: groups, probing, and the store orderings readers rely on.
//! - [`expiry`]: each shard's deadlines, earliest first.
//! - [`policy`]: eviction over queues of hashes: a probationary FIFO, a main CLOCK queue,
//!   TinyLFU admission and two ghost histories that size the probationary queue.
//! - [`sketch`]: the policy's frequency sketch.
//! - [`shard`]: the lock, insert/remove/rebuild, eviction and expiry hands, retirement.

pub(crate) mod entry;
pub(crate) mod expiry;
pub(crate) mod policy;
pub(crate) mod shard;
pub(crate) mod sketch;
pub(crate) mod table;
pub(crate) mod tag;

pub(crate) use entry::{stored_deadline, Entry};
pub(crate) use policy::Verdict;
pub(crate) use shard::Shard;
pub(crate) use table::{alloc_entry, alloc_entry_exempt, NewEntry};
pub use tag::hash_spreading_to;
pub(crate) use tag::spread;
