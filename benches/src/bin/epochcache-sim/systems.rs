//! The systems the simulator replays a workload against, and the cache-aside replay itself.
//!
//! Every cache is the thread-safe one a service would use (epochcache's `ShardedCache`,
//! `moka::sync::Cache`, `quick_cache::sync::Cache`), keyed by `u64` with a `u64` value, built
//! with its bound in entries and a fixed-seed hasher, so that a run is repeatable. The replay is
//! single-threaded: for each key a `get`, and on a miss an `insert`.
//!
//! The three caches take their sketches' and ghosts' slots from the keys' hashes, so where two
//! keys collide depends on the hasher's seed, and on a short trace that moves a hit ratio by 2
//! points or more (moka on lirs-ps at 500 entries: 55.80 to 57.88 over 20 seeds). In a service
//! each cache gets a random seed. So a row can replay them with several fixed seeds
//! ([`hasher`]'s index, `--hasher-seeds`), and the report gives the mean.
//!
//! Beside them, simulated directly on the keys: the published policies ARC, S3-FIFO and LIRS
//! (in `arc`, `s3fifo` and `lirs`, written from their papers), a plain LRU and Belady's optimum
//! (in `opt`).
//!
//! moka applies reads and writes to its policy in batches ("pending tasks"); by default the
//! replay runs them after every insert, so that moka holds no more than its bound and has seen
//! every earlier request when it decides what to evict, as it would in a service with a steady
//! trickle of requests. `--moka-pending N` runs them every N requests instead (0: only when moka
//! decides to).

use serde::Serialize;

use crate::{arc, lirs, opt, replay, s3fifo};

/// The seeds of every cache's first hasher (index 0); the others are derived from them.
const SEEDS: [u64; 4] = [
    0x243F_6A88_85A3_08D3,
    0x1319_8A2E_0370_7344,
    0xA409_3822_299F_31D0,
    0x082E_FA98_EC4E_6C89,
];

/// How many requests the replay runs between two progress reports.
pub const PROGRESS_STEP: usize = 1 << 16;

/// A system the simulator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// epochcache's `ShardedCache<u64, u64>`.
    Epochcache,
    /// `moka::sync::Cache<u64, u64>` (W-TinyLFU).
    Moka,
    /// `quick_cache::sync::Cache<u64, u64>` (S3-FIFO).
    #[value(name = "quick_cache", alias = "quick-cache")]
    #[serde(rename = "quick_cache")]
    QuickCache,
    /// ARC (Megiddo and Modha 2003), simulated: a published policy.
    Arc,
    /// S3-FIFO (Yang et al. 2023), simulated: a published policy.
    #[value(name = "s3fifo", alias = "s3-fifo")]
    #[serde(rename = "s3fifo")]
    S3Fifo,
    /// LIRS (Jiang and Zhang 2002), simulated: a published policy.
    Lirs,
    /// A plain least-recently-used cache: the baseline.
    Lru,
    /// Belady's optimum: knows the future; the ceiling.
    Opt,
}

impl System {
    /// Every system, in table order.
    pub const ALL: [System; 8] = [
        System::Epochcache,
        System::Moka,
        System::QuickCache,
        System::Arc,
        System::S3Fifo,
        System::Lirs,
        System::Lru,
        System::Opt,
    ];

    /// The peers epochcache must match: the best of them is the bar.
    pub const PEERS: [System; 2] = [System::Moka, System::QuickCache];

    /// The published policies, simulated from their papers: the best of them is the second bar.
    pub const PUBLISHED: [System; 3] = [System::Arc, System::S3Fifo, System::Lirs];

    /// Whether its hit ratio depends on the hasher's seed: the real caches hash keys into
    /// sketches, ghosts and tables; the simulated policies keep keys as they are.
    pub fn hashes_keys(self) -> bool {
        matches!(self, System::Epochcache | System::Moka | System::QuickCache)
    }

    /// The name in tables, charts and JSON.
    pub fn name(self) -> &'static str {
        match self {
            System::Epochcache => "epochcache",
            System::Moka => "moka",
            System::QuickCache => "quick_cache",
            System::Arc => "arc",
            System::S3Fifo => "s3fifo",
            System::Lirs => "lirs",
            System::Lru => "lru",
            System::Opt => "opt",
        }
    }

    /// A rough cost per request, relative to the others: the replays are started in decreasing
    /// order of cost so that the threads finish together.
    pub fn cost(self) -> u32 {
        match self {
            System::Moka => 8,
            System::Opt | System::Lru | System::Arc | System::Lirs => 2,
            System::Epochcache | System::QuickCache | System::S3Fifo => 1,
        }
    }
}

/// Options of the replay that are not the workload or the cache size.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ReplayOptions {
    /// epochcache's shard count; `None` is the builder's default.
    pub shards: Option<usize>,
    /// Run moka's pending tasks every this many requests, and after every insert when 1
    /// (`0`: only when moka itself decides to).
    pub moka_pending: usize,
    /// Which of the fixed-seed hashers the caches get (see [`hasher`]).
    pub hasher: u64,
}

/// The fixed-seed hasher number `index`, the same for every cache: index 0 has [`SEEDS`], and
/// each other index those seeds with a multiple of the golden ratio mixed in.
pub fn hasher(index: u64) -> ahash::RandomState {
    let mix = index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ahash::RandomState::with_seeds(
        SEEDS[0] ^ mix,
        SEEDS[1] ^ mix.rotate_left(17),
        SEEDS[2] ^ mix.rotate_left(31),
        SEEDS[3] ^ mix.rotate_left(47),
    )
}

/// What one replay found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Requests that hit.
    pub hits: u64,
    /// The most entries the cache held after any insert, as its own count says; `None` for the
    /// simulated policies (ARC, S3-FIFO, LIRS, LRU, OPT), which never hold more than their size.
    pub peak: Option<u64>,
}

/// Replays `keys` on `system` with room for `size` entries. `next` is [`opt::next_uses`] of
/// `keys` (only OPT reads it); `progress` is called with the requests done since its last call.
pub fn replay_on(
    system: System,
    keys: &[u64],
    next: &[usize],
    size: usize,
    opts: &ReplayOptions,
    progress: &dyn Fn(u64),
) -> Outcome {
    let simulated = |hits| {
        progress(keys.len() as u64);
        Outcome { hits, peak: None }
    };
    match system {
        System::Epochcache => epochcache_replay(keys, size, opts, progress),
        System::Moka => moka_replay(keys, size, opts, progress),
        System::QuickCache => quick_cache_replay(keys, size, opts, progress),
        System::Arc => simulated(replay::hits::<arc::Arc>(keys, size)),
        System::S3Fifo => simulated(replay::hits::<s3fifo::S3Fifo>(keys, size)),
        System::Lirs => simulated(replay::hits::<lirs::Lirs>(keys, size)),
        System::Lru => simulated(opt::lru_hits(keys, size)),
        System::Opt => simulated(opt::opt_hits(keys, next, size)),
    }
}

/// Replays `keys` cache-aside: `get(key)` says whether it hit, and on a miss `insert(key)`, after
/// which `len()` is read to track the peak. Reports progress every [`PROGRESS_STEP`] requests.
fn replay(
    keys: &[u64],
    progress: &dyn Fn(u64),
    mut get: impl FnMut(u64) -> bool,
    mut insert: impl FnMut(u64),
    len: impl Fn() -> u64,
) -> Outcome {
    let (mut hits, mut peak) = (0, 0);
    for chunk in keys.chunks(PROGRESS_STEP) {
        for &key in chunk {
            if get(key) {
                hits += 1;
            } else {
                insert(key);
                peak = peak.max(len());
            }
        }
        progress(chunk.len() as u64);
    }
    Outcome {
        hits,
        peak: Some(peak),
    }
}

/// epochcache's engine for `size` entries: `max_entries(size)` and the options. This is the one
/// place the engine is built: further builder options go here, through [`ReplayOptions`].
fn epochcache_cache(
    size: usize,
    opts: &ReplayOptions,
) -> epochcache::ShardedCache<u64, u64, ahash::RandomState> {
    let mut builder = epochcache::ShardedCache::<u64, u64>::builder().max_entries(size as u64);
    if let Some(shards) = opts.shards {
        builder = builder.shards(shards);
    }
    builder.hasher(hasher(opts.hasher)).build()
}

/// Replays on epochcache's engine (see [`epochcache_cache`]).
fn epochcache_replay(
    keys: &[u64],
    size: usize,
    opts: &ReplayOptions,
    progress: &dyn Fn(u64),
) -> Outcome {
    let cache = epochcache_cache(size, opts);
    replay(
        keys,
        progress,
        |k| cache.get(&k).is_some(),
        |k| {
            // A refused insert (none is expected for fixed-size entries) is a miss next time too.
            let _ = cache.insert(k, k);
        },
        || cache.len() as u64,
    )
}

/// Replays on `moka::sync::Cache` with `max_capacity(size)`, running its pending tasks as
/// `opts.moka_pending` says (see the module's documentation), with hasher `opts.hasher`.
fn moka_replay(keys: &[u64], size: usize, opts: &ReplayOptions, progress: &dyn Fn(u64)) -> Outcome {
    let pending = opts.moka_pending;
    let cache: moka::sync::Cache<u64, u64, ahash::RandomState> = moka::sync::Cache::builder()
        .max_capacity(size as u64)
        .build_with_hasher(hasher(opts.hasher));
    let mut count = 0usize;
    replay(
        keys,
        progress,
        |k| {
            count += 1;
            if pending > 1 && count % pending == 0 {
                cache.run_pending_tasks();
            }
            cache.get(&k).is_some()
        },
        |k| {
            cache.insert(k, k);
            if pending == 1 {
                cache.run_pending_tasks();
            }
        },
        || cache.entry_count(),
    )
}

/// Replays on `quick_cache::sync::Cache` with room for `size` entries, split into as many shards
/// as epochcache's engine splits the same bound into (one below 1,024 entries): left to its
/// default (four per core), quick_cache would be eight independent caches of 63 entries at size
/// 500 here, and more on a larger machine, which measures its sharding more than its policy.
fn quick_cache_replay(
    keys: &[u64],
    size: usize,
    opts: &ReplayOptions,
    progress: &dyn Fn(u64),
) -> Outcome {
    let shards = epochcache_cache(size, opts).shard_count();
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(size)
        .weight_capacity(size as u64)
        .shards(shards)
        .build()
        .expect("valid quick_cache options");
    let cache = quick_cache::sync::Cache::<u64, u64, _, ahash::RandomState>::with_options(
        options,
        quick_cache::UnitWeighter,
        hasher(opts.hasher),
        quick_cache::sync::DefaultLifecycle::default(),
    );
    replay(
        keys,
        progress,
        |k| cache.get(&k).is_some(),
        |k| cache.insert(k, k),
        || cache.len() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hasher 0 is the one every table before `--hasher-seeds` used; the others differ from it
    /// and from each other.
    #[test]
    fn hasher_zero_has_the_fixed_seeds_and_the_others_differ() {
        let first = ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3]);
        assert_eq!(hasher(0).hash_one(42u64), first.hash_one(42u64));
        let hashes: std::collections::HashSet<u64> =
            (0..20).map(|i| hasher(i).hash_one(42u64)).collect();
        assert_eq!(hashes.len(), 20);
    }

    #[test]
    fn every_cache_hits_a_key_that_fits() {
        let keys: Vec<u64> = (0..200).map(|i| i % 10).collect();
        let next = opt::next_uses(&keys);
        let opts = ReplayOptions {
            shards: Some(1),
            moka_pending: 1,
            hasher: 0,
        };
        for system in System::ALL {
            let out = replay_on(system, &keys, &next, 100, &opts, &|_| {});
            assert!(out.hits >= 180, "{}: {out:?}", system.name());
            assert!(out.hits <= 190, "{}: {out:?}", system.name());
            assert!(
                out.peak.map_or(true, |p| p == 10),
                "{}: {out:?}",
                system.name()
            );
        }
    }
}
