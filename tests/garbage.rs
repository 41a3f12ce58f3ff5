//! Retired but not yet freed memory stays bounded: writers flush the epoch garbage once it passes
//! one entry's maximum weight, and resident memory follows the budget, not the write volume. Even
//! without a bound, a writer hands its garbage to the collector every few retirements, so replaced
//! values are dropped promptly.

use std::sync::{Arc, Mutex};
use std::thread;

use epochcache::ShardedCache;

type Blobs = ShardedCache<u64, Arc<Vec<u8>>>;

/// The epoch collector is shared by the whole process: garbage retired by one test would wait
/// behind the other's in the global queue, so the tests of this file take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn blobs(max_weight: u64, max_entry: u64) -> Blobs {
    ShardedCache::builder()
        .shards(4)
        .max_weight(max_weight)
        .max_entry_weight(max_entry)
        .weigher(|_k: &u64, v: &Arc<Vec<u8>>| v.len() as u64 + 64)
        .build()
}

#[test]
fn garbage_stays_within_a_few_flushes_of_its_limit() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let max_entry = 64 * 1024;
    let cache = blobs(1 << 20, max_entry);
    let mut worst = 0;
    for i in 0..20_000u64 {
        cache.insert(i % 4_000, Arc::new(vec![1; 4096])).unwrap();
        worst = worst.max(cache.stats().garbage_weight);
        assert!(cache.weight() <= 1 << 20);
    }
    // A flush frees what was retired two epochs ago, so a few limits' worth may wait.
    assert!(
        worst <= 4 * max_entry,
        "up to {worst} bytes waited to be freed"
    );
    assert!(
        worst > 0,
        "replaced and evicted entries are counted as garbage"
    );
}

/// Resident set size in bytes, from /proc (Linux).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn two_writers_of_ten_times_the_budget_keep_memory_near_it() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let budget = 8u64 << 20;
    let cache = blobs(budget, budget / 8);
    let before = rss();
    thread::scope(|s| {
        for t in 0..2u64 {
            let cache = &cache;
            s.spawn(move || {
                // 2 x 10,000 x 4 KiB = 80 MiB written through an 8 MiB budget.
                for i in 0..10_000u64 {
                    cache.insert(t << 32 | i, Arc::new(vec![7; 4096])).unwrap();
                    assert!(cache.weight() <= budget, "resident weight over the budget");
                }
            });
        }
    });
    if let (Some(before), Some(after)) = (before, rss()) {
        let grown = after.saturating_sub(before);
        assert!(
            grown < 6 * budget,
            "RSS grew by {grown} bytes for an {budget}-byte budget"
        );
    }
}

/// A value that counts its drops.
#[derive(Clone)]
struct Counted(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn an_unbounded_writer_frees_what_it_replaced_within_a_few_writes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // No bound, so no garbage limit forces a flush: only the writer's own pacing frees memory.
    let cache: ShardedCache<u64, Counted> = ShardedCache::builder().shards(1).build();
    let replaced = 48;
    for _ in 0..=replaced {
        cache.insert(7, Counted(drops.clone())).unwrap();
    }
    // Left to itself, crossbeam-epoch keeps up to 64 retired values in the thread's bag and
    // collects every 128th pin: after 48 replacements by one thread, none would be freed.
    let freed = drops.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        freed >= replaced / 2,
        "only {freed} of {replaced} replaced values were dropped"
    );
}
