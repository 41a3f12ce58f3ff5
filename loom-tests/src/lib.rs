//! Loom models of epochcache's engine and of its loader: the models are in `tests/` and run
//! only under `--cfg epochcache_loom` (see this package's README). This library holds what the
//! model files share: the engine built the way every model builds it, loom's search bounds, the
//! collector's flushes, the drop-counting value and a hasher that places keys in one of two
//! shards by parity. It is empty without that cfg.

#![cfg(epochcache_loom)]

use epochcache::{CacheBuilder, ShardedCache};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// The engine with a fixed-seed hasher, so that every execution of a model places its keys in
/// the same slots.
pub type Cache<V> = ShardedCache<u64, V, ahash::RandomState>;

/// The builder of every model's engine but one: one shard, the default (smallest) table (one
/// group of seven slots, rebuilt on the seventh insert) and fixed hash seeds.
pub fn builder<V: Clone + Send + Sync + 'static>() -> CacheBuilder<u64, V, ahash::RandomState> {
    ShardedCache::<u64, V>::builder()
        .shards(1)
        .initial_capacity(0)
        .hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))
}

/// The engine as [`builder`] makes it. `max_entries` bounds the cache, which then evicts to
/// stay within it.
pub fn cache<V: Clone + Send + Sync + 'static>(max_entries: Option<u64>) -> Cache<V> {
    let builder = builder();
    match max_entries {
        Some(n) => builder.max_entries(n).build(),
        None => builder.build(),
    }
}

/// Places a key by its parity: the top bit of the spread hash picks one of two shards (odd keys
/// in the second), the rest is the key mixed, so that a model knows which shard each key lives
/// in (models 11 and 30). The engine spreads every hash (a fold, a multiply by
/// `0x9E37_79B9_7F4A_7C15`, a fold) before taking the shard from its top bits, so `finish`
/// undoes that spread.
#[derive(Default)]
pub struct ShardByParity(u64);

impl std::hash::Hasher for ShardByParity {
    fn finish(&self) -> u64 {
        let spread = (self.0 & 1) << 63 | (self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1);
        epochcache::hash_spreading_to(spread)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0 << 8 | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The preemption bound when `LOOM_MAX_PREEMPTIONS` is unset (loom's own default is no bound,
/// an exhaustive search far longer than a test run).
pub const DEFAULT_PREEMPTIONS: usize = 2;

/// Runs `f` under loom with the bounds from the environment (`LOOM_MAX_PREEMPTIONS`, ...), and
/// prints how many executions loom explored (shown with `--nocapture`).
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    model_with_at_least(0, f);
}

/// As [`model`], with at least `min_preemptions` preemptions whatever the environment says: for
/// a model whose race window loom reaches only with that many.
pub fn model_with_at_least(min_preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    let bound = builder
        .preemption_bound
        .unwrap_or(DEFAULT_PREEMPTIONS)
        .max(min_preemptions);
    builder.preemption_bound = Some(bound);
    check(builder, f);
}

/// As [`model`], with room for at least `max_branches` steps in one execution (loom's default
/// is 1,000): for a model whose setup, which runs in every execution, takes many steps itself.
pub fn model_with_room_for(max_branches: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(DEFAULT_PREEMPTIONS));
    builder.max_branches = builder.max_branches.max(max_branches);
    check(builder, f);
}

/// As [`model`], with exactly `preemptions` preemptions whatever the environment says and room
/// for `max_branches` steps in one execution (loom's default is 1,000): for a model whose race
/// needs few preemptions, where more would take far longer, but whose threads may wait,
/// yielding, for each other.
pub fn model_with_exactly(
    preemptions: usize,
    max_branches: usize,
    f: impl Fn() + Sync + Send + 'static,
) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.max_branches = builder.max_branches.max(max_branches);
    check(builder, f);
}

/// Runs `f` under `builder` and prints how many executions loom explored.
pub fn check(builder: loom::model::Builder, f: impl Fn() + Sync + Send + 'static) {
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    let bound = builder.preemption_bound.unwrap_or(0);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{} executions explored with at most {bound} preemptions",
        executions.load(std::sync::atomic::Ordering::Relaxed),
    );
}

/// Pushes this thread's bag of retired objects to the collector and lets it advance the epoch
/// and free what no pinned thread can still see. Called by a writer after it retired something,
/// so that a reader still pinned races with real frees.
pub fn flush() {
    crossbeam_epoch::pin().flush();
}

/// Runs `write` on a new thread against `cache`; the thread then flushes its garbage `flushes`
/// times, so that what `write` retired is freed while this thread may still be reading it.
pub fn on_another_thread<V: Send + Sync + 'static>(
    cache: &Arc<Cache<V>>,
    flushes: usize,
    write: impl FnOnce(&Cache<V>) + Send + 'static,
) -> thread::JoinHandle<()> {
    let cache = Arc::clone(cache);
    thread::spawn(move || {
        write(&cache);
        for _ in 0..flushes {
            flush();
        }
    })
}

/// Runs the collector until `done` says every retired object it waits for was freed, and
/// gives up after a bounded number of rounds. Call it once every spawned thread has been joined.
///
/// A bag of retired objects sealed in epoch `e` is freed once the global epoch reaches `e + 2`,
/// and a flush advances the epoch by at most one, and only while no thread is pinned in an older
/// epoch. Under loom, `join` returns before the joined thread's thread locals are dropped, and
/// dropping its epoch handle pins it once more to hand its last bag to the collector; loom may
/// pause it there, so each round yields to let it finish before flushing again. Two rounds have
/// sufficed in every execution so far; 8 leave a margin, and running out means a leak.
pub fn collect_all_garbage(done: impl Fn() -> bool) {
    for _ in 0..8 {
        if done() {
            return;
        }
        thread::yield_now();
        crossbeam_epoch::pin().flush();
    }
}

/// `text` as a heap `String`, the value most models store.
pub fn s(text: &str) -> String {
    text.to_string()
}

/// How many tracked values were made and how many dropped.
#[derive(Default)]
pub struct Counts {
    pub created: AtomicUsize,
    pub dropped: AtomicUsize,
}

impl Counts {
    /// How many values were made so far.
    pub fn created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
    }

    /// Runs the collector until every value made was dropped (see [`collect_all_garbage`]),
    /// then checks that each was dropped exactly once. Call it once the cache is dropped and
    /// every spawned thread joined.
    pub fn assert_every_value_dropped_once(&self) {
        let created = self.created();
        collect_all_garbage(|| self.dropped.load(Ordering::Relaxed) >= created);
        assert_eq!(
            self.dropped.load(Ordering::Relaxed),
            created,
            "values dropped != values created"
        );
    }
}

/// A value that counts its drops; clones count as new values.
pub struct Tracked {
    pub text: String,
    counts: Arc<Counts>,
}

impl Tracked {
    /// A value holding `text`, counted as made in `counts`.
    pub fn new(text: &str, counts: &Arc<Counts>) -> Self {
        counts.created.fetch_add(1, Ordering::Relaxed);
        Tracked {
            text: text.to_string(),
            counts: counts.clone(),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(&self.text, &self.counts)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert!(!self.text.is_empty(), "a value dropped twice or never set");
        self.text.clear();
        self.counts.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps the panic hook from printing panics whose message is `expected` (one for each of a
/// model's thousands of executions), and prints every other panic as before.
pub fn silence_panics_saying(expected: &'static str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied());
            if message != Some(expected) {
                default(info);
            }
        }));
    });
}
