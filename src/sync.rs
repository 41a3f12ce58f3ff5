//! The one place that chooses between `std`'s synchronisation primitives and loom's.
//!
//! Under `--cfg epochcache_loom` (set together with crossbeam-epoch's `crossbeam_loom` cfg and its
//! `loom` feature, see `loom-tests/`), every atomic and lock the engine uses is loom's, so the loom
//! models in `loom-tests/` explore the interleavings of the real table code. Nothing else in the
//! crate imports `std::sync::atomic` or `std::sync::Mutex` for the engine.

#[cfg(epochcache_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(epochcache_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(epochcache_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(epochcache_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

pub(crate) use crossbeam_epoch as epoch;

/// Locks `mutex`, taking over a lock poisoned by a panic in user code (a key's `Hash` or `Eq`):
/// the engine changes shared state only after every call into user code of an operation, so a
/// poisoned shard is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Lets other threads run (loom's scheduler under loom).
pub(crate) fn yield_now() {
    #[cfg(epochcache_loom)]
    loom::thread::yield_now();
    #[cfg(not(epochcache_loom))]
    std::thread::yield_now();
}
