//! A value's `Drop` may use the cache, writes included (crate docs, "User code"): it never runs
//! under a shard lock, so a write from it cannot wait for a lock its own thread holds.

mod support;

use std::cell::Cell;
use std::sync::OnceLock;

use epochcache::ShardedCache;
use support::unless_deadlocked;

static CACHE: OnceLock<ShardedCache<u64, Rewrites>> = OnceLock::new();

thread_local! {
    /// Set while this thread runs `validate`.
    static IN_VALIDATE: Cell<bool> = const { Cell::new(false) };
    /// Set once a value's `Drop` wrote to the cache from inside `validate`.
    static REWROTE: Cell<bool> = const { Cell::new(false) };
}

/// A value whose `Drop`, run inside `validate`, writes to the cache once.
#[derive(Clone)]
struct Rewrites;

impl Drop for Rewrites {
    fn drop(&mut self) {
        if IN_VALIDATE.with(Cell::get) && !REWROTE.with(Cell::get) {
            REWROTE.with(|r| r.set(true));
            if let Some(cache) = CACHE.get() {
                cache.insert(1_000, Rewrites).unwrap();
            }
        }
    }
}

/// `validate` pins, and a pin runs a collection now and then, which drops retired values. It
/// used to pin after taking each shard's lock, so such a `Drop` ran under the lock and its write
/// to the same (single) shard waited for ever for its own thread.
#[test]
fn a_drop_run_inside_validate_may_write_to_the_cache() {
    let rewrote = unless_deadlocked(|| {
        let cache =
            CACHE.get_or_init(|| ShardedCache::builder().shards(1).retire_batch(64).build());
        for round in 0..20_000u64 {
            cache.insert(round % 8, Rewrites).unwrap(); // a replacement retires the old value
            if round % 3 == 0 {
                let _ = cache.get(&0); // one more pin now and then, so collections fall anywhere
            }
            IN_VALIDATE.with(|f| f.set(true));
            let valid = cache.validate();
            IN_VALIDATE.with(|f| f.set(false));
            valid.unwrap();
            if REWROTE.with(Cell::get) {
                return true;
            }
        }
        false
    });
    assert_eq!(
        rewrote,
        Some(true),
        "None: the write waited for its own lock"
    );
    assert!(CACHE.get().unwrap().contains_key(&1_000));
}
