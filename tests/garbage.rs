//! Retired but not yet freed memory stays bounded: writers flush the epoch garbage once it passes
//! one entry's maximum weight, and resident memory follows the budget, not the write volume. Even
//! without a bound, a writer hands its garbage to the collector every few retirements, so replaced
//! values are dropped promptly.

use std::sync::{Arc, Mutex};
use std::thread;

use epochcache::ShardedCache;

mod support;
use support::Counted;

type Blobs = ShardedCache<u64, Arc<Vec<u8>>>;

/// The epoch collector is shared by the whole process: garbage retired by one test would wait
/// behind the other's in the global queue, so the tests of this file take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Four shards of blobs weighed by their length plus 64, retiring in batches of `batch`.
fn blobs(max_weight: u64, max_entry: u64, batch: u32) -> Blobs {
    ShardedCache::builder()
        .shards(4)
        .max_weight(max_weight)
        .max_entry_weight(max_entry)
        .weigher(|_k: &u64, v: &Arc<Vec<u8>>| v.len() as u64 + 64)
        .retire_batch(batch)
        .build()
}

/// Replaces entries of 4 KiB in a cache whose heaviest entry may weigh `max_entry`, handing
/// retirements to the collector every `batch`; returns the most garbage counted after a write.
fn worst_garbage(max_entry: u64, batch: u32) -> u64 {
    let cache = blobs(1 << 20, max_entry, batch);
    let mut worst = 0;
    for i in 0..20_000u64 {
        cache.insert(i % 4_000, Arc::new(vec![1; 4096])).unwrap();
        worst = worst.max(cache.stats().garbage_weight);
        assert!(cache.weight() <= 1 << 20);
    }
    worst
}

#[test]
fn garbage_stays_within_a_few_flushes_of_its_limit() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // With the default batch and with one of 64, which alone would let 64 entries' worth (260
    // KiB) wait in the writer's bag: the limit, not the batch, is what flushes then.
    for (max_entry, batch) in [(64 * 1024, 4), (16 * 1024, 64)] {
        let worst = worst_garbage(max_entry, batch);
        // A flush frees what was retired two epochs ago, so a few limits' worth may wait.
        assert!(
            worst <= 4 * max_entry,
            "batch {batch}: up to {worst} bytes waited to be freed"
        );
        assert!(
            worst > 0,
            "replaced and evicted entries are counted as garbage"
        );
    }
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
    let limit = budget / 8;
    let cache = blobs(budget, limit, 4);
    let before = rss();
    thread::scope(|s| {
        for t in 0..2u64 {
            let cache = &cache;
            s.spawn(move || {
                // 2 x 10,000 x 4 KiB = 80 MiB written through an 8 MiB budget.
                for i in 0..10_000u64 {
                    cache.insert(t << 32 | i, Arc::new(vec![7; 4096])).unwrap();
                    assert!(cache.weight() <= budget, "resident weight over the budget");
                    let garbage = cache.stats().garbage_weight;
                    assert!(
                        garbage <= 4 * limit,
                        "{garbage} bytes wait to be freed, limit {limit}"
                    );
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

/// `retire_batch` decides when a writer hands its retirements over: with a batch of 64 the values
/// a thread replaced stay in its own bag, out of every other thread's reach, until it retires
/// more or exits; with a batch of 1 another thread's flushes free them while the writer idles.
#[test]
fn the_retire_batch_sets_when_a_writer_hands_its_garbage_over() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let replaced = 10;
    for batch in [64, 1] {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cache: ShardedCache<u64, Counted> = ShardedCache::builder()
            .shards(1)
            .retire_batch(batch)
            .build();
        let (done, wait_done) = std::sync::mpsc::channel();
        let (exit, wait_exit) = std::sync::mpsc::channel::<()>();
        thread::scope(|s| {
            let (cache, writer_drops) = (&cache, drops.clone());
            let writer = s.spawn(move || {
                for _ in 0..=replaced {
                    cache.insert(7, Counted(writer_drops.clone())).unwrap();
                }
                done.send(()).unwrap();
                let _ = wait_exit.recv();
            });
            wait_done.recv().unwrap();
            let dropped = || drops.load(std::sync::atomic::Ordering::Relaxed);
            let all_freed = flush_until(|| dropped() == replaced, 2_000);
            let while_idle = dropped();
            // Let the writer go before asserting, so that a failure cannot hang the scope.
            exit.send(()).unwrap();
            writer.join().unwrap();
            if batch == 1 {
                assert!(all_freed, "{while_idle} of {replaced} dropped");
            } else {
                assert_eq!(while_idle, 0, "the writer's bag was flushed early");
            }
        });
        // Once the writer has exited its bag goes to the collector whatever the batch.
        assert!(flush_until(
            || drops.load(std::sync::atomic::Ordering::Relaxed) == replaced,
            100_000
        ));
        drop(cache);
    }
}

/// Flushes this thread's bag and collects, up to `rounds` times, until `done`.
fn flush_until(done: impl Fn() -> bool, rounds: usize) -> bool {
    for _ in 0..rounds {
        if done() {
            return true;
        }
        crossbeam_epoch::pin().flush();
        thread::yield_now();
    }
    done()
}
