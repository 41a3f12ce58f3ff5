//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// SplitMix64: a tiny deterministic generator whose outputs for different seeds are
/// uncorrelated (a linear generator such as xorshift would make threads seeded one apart choose
/// keys in step).
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (slightly biased; fine for tests).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Asserts that a cache's write counters add up: every insert is still an entry, or left it for
/// one of the counted causes.
pub fn stats_add_up<K, V, S>(cache: &epochcache::ShardedCache<K, V, S>)
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: std::hash::BuildHasher,
{
    let s = cache.stats();
    let left = s.replaced + s.deleted + s.evicted + s.expired + s.closed;
    assert_eq!(
        s.inserts,
        s.entries + left,
        "inserts = entries + every removal: {s:?}"
    );
}

/// Runs `f`, catching a panic it meant to raise.
pub fn quiet<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
}

/// Flushes the process-wide epoch collector until `done`; gives up after ten seconds (a hang
/// detector, not a timer) and says whether `done` came true.
pub fn flush_until(done: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        if done() {
            return true;
        }
        crossbeam_epoch::pin().flush();
        std::thread::yield_now();
    }
    done()
}

/// Tests of one binary that depend on the process-wide epoch collector take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for this test's turn (see [`ONE_AT_A_TIME`]).
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on a thread of its own and returns what it returns, or `None` if it has not
/// returned after five seconds (a deadlock detector: the thread is left behind, blocked).
pub fn unless_deadlocked<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(5)).ok()
}

/// A value that counts its drops (clones share the count).
#[derive(Clone)]
pub struct Counted(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A count from the environment variable `name`, else `default`: how a stress test is made
/// longer (`EPOCHCACHE_MIXED_SEEDS`, `EPOCHCACHE_MIXED_OPS`).
pub fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `run` for each seed below `seeds`, each on a thread of its own (a run that has not
/// returned after five seconds counts as a deadlock), prints the first errors of each run that
/// reported any, and returns the seeds of those runs.
pub fn failing_seeds(
    seeds: u64,
    run: impl Fn(u64) -> Vec<String> + Clone + Send + 'static,
) -> Vec<u64> {
    let mut failed = Vec::new();
    for seed in 0..seeds {
        let run = run.clone();
        let errors =
            unless_deadlocked(move || run(seed)).unwrap_or_else(|| vec!["deadlock".into()]);
        if !errors.is_empty() {
            eprintln!(
                "seed {seed}: {} errors, first: {:#?}",
                errors.len(),
                &errors[..errors.len().min(6)]
            );
            failed.push(seed);
        }
    }
    failed
}
