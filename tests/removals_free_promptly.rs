//! `close`, `clear`, `retain` and `purge_expired` free what they remove before they return: a
//! cache closed, cleared or purged and then left alone used to keep every removed value until
//! some later pin of some thread ran the epoch collector (found by a bug hunt: close then drop
//! dropped none of 1,000 values; a later hunt found `retain` and `clear`'s old tables left the
//! same way). One test, alone in its binary: another test's thread pinned at the wrong moment
//! could hold the collector back, which the docs allow. The binary counts the bytes it has
//! allocated and not freed, to see tables go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::AtomicIsize;

use epochcache::{MockClock, ShardedCache};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the count is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's promise for `GlobalAlloc::alloc`, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's promise for `GlobalAlloc::dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static DROPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
struct Counted(#[allow(dead_code)] Vec<u8>);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

type Cache = ShardedCache<u64, Counted>;

/// A way to remove every entry, by name.
type RemoveAll = (&'static str, fn(&Cache, &MockClock));

fn filled(clock: &MockClock) -> Cache {
    let cache = ShardedCache::builder()
        .shards(4)
        .clock(Arc::new(clock.clone()))
        .build();
    for k in 0..1_000 {
        let ttl = Some(Duration::from_secs(1).into());
        cache
            .insert_with_expiry(k, Counted(vec![0; 256]), ttl)
            .unwrap();
    }
    cache
}

/// The values each call removed are dropped by the time it returns, with no read, write or pin
/// after it.
#[test]
fn close_clear_and_purge_drop_the_values_they_remove_before_returning() {
    let clock = MockClock::new();
    let removals: [RemoveAll; 4] = [
        ("close", |cache, _| cache.close()),
        ("clear", |cache, _| cache.clear()),
        ("retain", |cache, _| cache.retain(|_, _| false)),
        ("purge_expired", |cache, clock| {
            clock.advance(Duration::from_secs(1));
            cache.purge_expired();
        }),
    ];
    for (name, remove_all) in removals {
        let cache = filled(&clock);
        let before = DROPS.load(Ordering::SeqCst);
        remove_all(&cache, &clock);
        let dropped = DROPS.load(Ordering::SeqCst) - before;
        assert_eq!(dropped, 1_000, "{name}: values dropped when it returned");
        assert_eq!(cache.len(), 0, "{name}");
    }

    // A listener that panics does not keep `close` (or `clear`) from freeing what it removed:
    // the panic goes on after the frees.
    for (name, closes) in [("close", true), ("clear", false)] {
        let cache: Cache = ShardedCache::builder()
            .shards(4)
            .eviction_listener(|_, _, _| panic!("listener"))
            .build();
        for k in 0..1_000 {
            cache.insert(k, Counted(vec![0; 256])).unwrap();
        }
        let before = DROPS.load(Ordering::SeqCst);
        let removed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if closes {
                cache.close()
            } else {
                cache.clear()
            }
        }));
        assert!(removed.is_err(), "{name}: the listener's panic goes on");
        let dropped = DROPS.load(Ordering::SeqCst) - before;
        assert_eq!(
            dropped, 1_000,
            "{name} with a panicking listener: values dropped"
        );
    }

    // `clear` retires each shard's table as well: freed before it returns even when no entry
    // was left in it to retire (200,000 removed one by one first, their garbage collected).
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(1).build();
    for k in 0..200_000 {
        cache.insert(k, k).unwrap();
    }
    for k in 0..200_000 {
        cache.remove(&k);
    }
    for _ in 0..64 {
        crossbeam_epoch::pin().flush();
    }
    let before = LIVE_BYTES.load(Ordering::SeqCst);
    cache.clear();
    let freed = before - LIVE_BYTES.load(Ordering::SeqCst);
    assert!(
        freed > 1 << 20,
        "clear freed {freed} bytes of a table that held 200,000 entries"
    );
}
