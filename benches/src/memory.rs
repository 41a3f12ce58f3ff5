//! Heap memory per entry, counted by a global allocator that tracks live heap bytes.
//!
//! The comparison binary installs [`CountingAlloc`] as its `#[global_allocator]`; it forwards to
//! the system allocator and keeps two running totals of what is allocated and not yet freed: the
//! bytes requested, and the bytes glibc's malloc spends on them (each allocation rounded up to
//! its chunk: an 8-byte header, 16-byte granules, 32 bytes at least). Each system is built for
//! [`ENTRIES`] entries with `u64` keys and `u64` values, filled, and measured:
//!
//! ```text
//! overhead per entry = (live bytes after filling - live bytes before) / entries held - 16
//! ```
//!
//! 16 is the key and the value themselves, so the figure is what the system spends on top of the
//! data: table slots left empty, per-entry nodes, hashes, pointers, eviction bookkeeping. Both
//! counts matter: a system that allocates each entry on its own (epochcache, papaya, moka) pays a
//! chunk header and rounding per entry under glibc, which an allocator with size classes and no
//! headers (mimalloc, jemalloc) would mostly not charge, while one that stores entries inline in
//! its table or in a slab (dashmap, scc, `std`, quick_cache) pays the same under either. Where no
//! counting allocator is installed (the criterion benches), the figures are `None`.

use std::alloc::{GlobalAlloc, Layout, System as SystemAlloc};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::systems::System;

/// Entries inserted for the measurement.
pub const ENTRIES: usize = 1_000_000;

/// Live requested and allocated bytes, striped by thread: a counter shared by every thread would
/// put one contended cache line into every allocation of the throughput workloads and slow down
/// most the systems that allocate most (two threads inserting lost up to half their speed to it).
static LIVE: [Stripe; STRIPES] = [const {
    Stripe {
        requested: AtomicI64::new(0),
        allocated: AtomicI64::new(0),
    }
}; STRIPES];
const STRIPES: usize = 16;
static INSTALLED: AtomicBool = AtomicBool::new(false);
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// One thread's counters, on a cache line of their own.
#[repr(align(128))]
struct Stripe {
    requested: AtomicI64,
    allocated: AtomicI64,
}

/// What glibc's malloc (x86_64) spends on a request of `size` bytes: the chunk holding it, the
/// request plus an 8-byte header rounded up to 16, at least 32. (Requests it serves with `mmap`,
/// from 128 KiB, are rounded to pages instead; those are the tables, a few KiB off in megabytes.)
fn chunk(size: usize) -> i64 {
    ((size + 8 + 15) & !15).max(32) as i64
}

std::thread_local! {
    /// The calling thread's stripe (`usize::MAX` until first asked).
    static MY_STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Adds an allocation of `size` bytes (`sign` 1) or its release (`sign` -1) to the calling
/// thread's stripe.
#[inline]
fn count(size: usize, sign: i64) {
    let stripe = MY_STRIPE
        .try_with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES);
            }
            s.get()
        })
        // A thread being torn down has no thread-locals left; any stripe will do.
        .unwrap_or(0);
    let stripe = &LIVE[stripe];
    stripe
        .requested
        .fetch_add(sign * size as i64, Ordering::Relaxed);
    stripe
        .allocated
        .fetch_add(sign * chunk(size), Ordering::Relaxed);
}

/// A global allocator that forwards to the system allocator and counts live heap bytes.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: epochcache_bench::memory::CountingAlloc = epochcache_bench::memory::CountingAlloc;
/// ```
pub struct CountingAlloc;

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged,
// so the caller's contract is the system allocator's; the counters are only bookkeeping, and
// counting allocates nothing.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        mark_installed();
        count(layout.size(), 1);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { SystemAlloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        mark_installed();
        count(layout.size(), 1);
        // SAFETY: as for `alloc`.
        unsafe { SystemAlloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        // SAFETY: `ptr` was allocated by this allocator (so by the system one) with `layout`.
        unsafe { SystemAlloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's, valid by its contract.
        unsafe { SystemAlloc.realloc(ptr, layout, new_size) }
    }
}

/// Records that the counting allocator is in use: a load, and a store only the first time, so
/// that the line stays shared between cores.
#[inline]
fn mark_installed() {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

/// Live heap bytes: requested, and allocated (glibc's chunks).
#[derive(Clone, Copy, Debug)]
pub struct Live {
    /// What the program asked for.
    pub requested: i64,
    /// What glibc's malloc spends on it (see [`CountingAlloc`]'s module).
    pub allocated: i64,
}

/// Live heap bytes, or `None` when [`CountingAlloc`] is not the global allocator.
pub fn live_bytes() -> Option<Live> {
    INSTALLED.load(Ordering::Relaxed).then(|| Live {
        requested: LIVE
            .iter()
            .map(|s| s.requested.load(Ordering::Relaxed))
            .sum(),
        allocated: LIVE
            .iter()
            .map(|s| s.allocated.load(Ordering::Relaxed))
            .sum(),
    })
}

/// The memory figure of one system.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Footprint {
    /// Entries the system held after the inserts (a bounded cache may hold fewer than it got).
    pub entries: usize,
    /// Live heap bytes the filled system holds.
    pub bytes: i64,
    /// Bytes per entry beyond the 16 bytes of key and value.
    pub overhead_per_entry: f64,
    /// As `bytes`, counting glibc's chunks instead of the requests (absent from reports made
    /// before it was measured).
    #[serde(default)]
    pub allocated_bytes: Option<i64>,
    /// As `overhead_per_entry`, from `allocated_bytes`.
    #[serde(default)]
    pub allocated_overhead_per_entry: Option<f64>,
}

impl Footprint {
    /// The figure for `held` entries, from the live bytes before building and after filling.
    fn new(held: usize, before: Live, after: Live) -> Self {
        let per_entry = |bytes: i64| bytes as f64 / held.max(1) as f64 - 16.0;
        let (bytes, allocated) = (
            after.requested - before.requested,
            after.allocated - before.allocated,
        );
        Footprint {
            entries: held,
            bytes,
            overhead_per_entry: per_entry(bytes),
            allocated_bytes: Some(allocated),
            allocated_overhead_per_entry: Some(per_entry(allocated)),
        }
    }
}

/// epochcache's engine with no bound, filled like the maps: its table and entries alone, without
/// the eviction policy's queues, sketch and ghosts. `presized`: built with room for every entry,
/// as the maps are (`with_capacity`); else grown from empty, as most caches are built.
pub fn epochcache_map_footprint(presized: bool) -> Option<Footprint> {
    let before = live_bytes()?;
    let n = ENTRIES;
    let c = epochcache::ShardedCache::<u64, u64>::builder()
        .initial_capacity(if presized { n } else { 0 })
        .build();
    for i in 0..n as u64 {
        let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let _ = c.insert(k, k);
    }
    collect_retired();
    let (held, after) = (c.len(), live_bytes()?);
    drop(c);
    Some(Footprint::new(held, before, after))
}

/// epochcache bounded at [`ENTRIES`] after a churn that fills its eviction policy's ghosts in
/// part: cache-aside (a get, and an insert on a miss) of `4 * ENTRIES` keys drawn uniformly from
/// `3 * ENTRIES / 2`, so that entries are read, promoted to the main queue and evicted from it,
/// and the main queue's ghost fills to about a third of its half a shard (counted once, at
/// stop 13). The rows above insert distinct keys that never return, which leaves the ghosts
/// nearly empty.
pub fn epochcache_churned_footprint() -> Option<Footprint> {
    let before = live_bytes()?;
    let n = ENTRIES as u64;
    let c = epochcache::ShardedCache::<u64, u64>::builder()
        .max_entries(n)
        .initial_capacity(ENTRIES)
        .build();
    // xorshift64: the same keys in every run.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..4 * n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x % (n * 3 / 2)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if c.get(&k).is_none() {
            let _ = c.insert(k, k);
        }
    }
    collect_retired();
    let (held, after) = (c.len(), live_bytes()?);
    drop(c);
    Some(Footprint::new(held, before, after))
}

/// Lets the epoch collector free what epochcache retired while filling (the tables a growing shard
/// replaced), as the peers free theirs at once: the figure is of what the cache holds, not of
/// garbage waiting for the next collection.
fn collect_retired() {
    for _ in 0..4 {
        crossbeam_epoch::pin().flush();
    }
}

/// Builds `system` for [`ENTRIES`] `u64` to `u64` entries, inserts `rounds` times as many
/// distinct keys (a bounded cache evicts the surplus) and counts its heap bytes.
///
/// Returns `None` when no counting allocator is installed.
pub fn footprint(system: System, rounds: usize) -> Option<Footprint> {
    let before = live_bytes()?;
    let n = ENTRIES;
    let keys = (0..(n * rounds) as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (held, after, keep) = match system {
        System::Epochcache => {
            let c = epochcache::ShardedCache::<u64, u64>::builder()
                .max_entries(n as u64)
                .initial_capacity(n)
                .build();
            keys.for_each(|k| {
                let _ = c.insert(k, k);
            });
            collect_retired();
            (c.len(), live_bytes()?, Box::new(c) as Box<dyn Send>)
        }
        // ByteCache has `str` keys only, and the copy-out, weighted and statistics variants
        // store what epochcache stores: their figure is the engine's, measured above.
        System::EpochcacheBytes
        | System::EpochcacheCopy
        | System::EpochcacheWeighted
        | System::EpochcacheStats => return None,
        System::Moka => {
            let c = moka::sync::Cache::<u64, u64>::new(n as u64);
            keys.for_each(|k| c.insert(k, k));
            c.run_pending_tasks();
            (c.entry_count() as usize, live_bytes()?, Box::new(c) as _)
        }
        System::QuickCache => {
            let c = quick_cache::sync::Cache::<u64, u64>::new(n);
            keys.for_each(|k| c.insert(k, k));
            (c.len(), live_bytes()?, Box::new(c) as _)
        }
        System::Papaya => {
            let c = papaya::HashMap::<u64, u64>::with_capacity(n);
            keys.for_each(|k| {
                c.pin().insert(k, k);
            });
            (c.len(), live_bytes()?, Box::new(c) as _)
        }
        System::Dashmap => {
            let c = dashmap::DashMap::<u64, u64>::with_capacity(n);
            keys.for_each(|k| {
                c.insert(k, k);
            });
            (c.len(), live_bytes()?, Box::new(c) as _)
        }
        System::Scc => {
            let c = scc::HashMap::<u64, u64>::with_capacity(n);
            keys.for_each(|k| {
                c.upsert_sync(k, k);
            });
            (c.len(), live_bytes()?, Box::new(c) as _)
        }
        System::StdHashmap => {
            let mut c = HashMap::<u64, u64>::with_capacity(n);
            keys.for_each(|k| {
                c.insert(k, k);
            });
            (c.len(), live_bytes()?, Box::new(c) as _)
        }
    };
    drop(keep);
    Some(Footprint::new(held, before, after))
}
