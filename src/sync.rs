//! The one place that chooses between `std`'s synchronisation primitives and loom's.
//!
//! Under `--cfg epochcache_loom` (set together with crossbeam-epoch's `crossbeam_loom` cfg and its
//! `loom` feature, see `loom-tests/`), every atomic and lock the engine uses is loom's, so the loom
//! models in `loom-tests/` explore the interleavings of the real table code. Nothing else in the
//! engine imports `std::sync::atomic`, `std::sync::Mutex` or thread ids; the engine's
//! thread-locals switch to loom's under the same cfg where they are declared. `DictCache`'s
//! `RwLock`, `MockClock`'s atomic and the statistics' stripe numbering ([`thread_stripe`], its
//! counter and thread-local) are `std`'s: no model explores them.

#[cfg(epochcache_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(epochcache_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
/// Which thread is running: loom's model threads are coroutines on one OS thread, so `std`
/// would give them all one id.
#[cfg(epochcache_loom)]
pub(crate) use loom::thread::{current as current_thread, ThreadId};

#[cfg(not(epochcache_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(epochcache_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(epochcache_loom))]
pub(crate) use std::thread::{current as current_thread, ThreadId};

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

/// Waits a little for other threads to move: a yield, or with `long` (after many yields went
/// by) a sleep of a millisecond, since the thread waited for may be descheduled for longer than
/// any number of yields lasts when threads outnumber cores. Under loom, always a yield.
pub(crate) fn pause(long: bool) {
    #[cfg(epochcache_loom)]
    {
        let _ = long;
        loom::thread::yield_now();
    }
    #[cfg(not(epochcache_loom))]
    if long {
        std::thread::sleep(std::time::Duration::from_millis(1));
    } else {
        std::thread::yield_now();
    }
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
