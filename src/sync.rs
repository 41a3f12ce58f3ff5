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

/// A small number that stays the same for the calling thread and differs between the first
/// threads that ask: which stripe of a striped counter the thread writes. Not part of any
/// synchronisation protocol (a stripe shared by two threads only makes counts approximate), so
/// it uses `std` even under loom.
#[inline]
pub(crate) fn thread_stripe() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, StdOrdering::Relaxed);
    }
    STRIPE.with(|s| *s)
}
