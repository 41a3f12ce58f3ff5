//! The unsafe core: the open-addressed table, its entries and its shards.
//!
//! Every `unsafe` block of the crate lives in this module, each with a `// SAFETY:` comment that
//! names the invariant it relies on. The layer above (`sharded`, `byte_cache`) sees only safe
//! functions that take a pinned [`Guard`](crossbeam_epoch::Guard) and return references bounded
//! by it.
//!
//! - [`tag`]: control bytes and the eight-at-a-time compare.
//! - [`entry`]: the immutable entry and its metadata word (deadline and access counter).
//! - [`table`]: groups, probing, and the store orderings readers rely on.
//! - [`expiry`]: each shard's deadlines, earliest first.
//! - [`policy`]: S3-FIFO eviction over queues of hashes, with a ghost history.
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
pub(crate) use tag::spread;
