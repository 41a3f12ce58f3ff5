//! The workloads: what each one does, on which data, and which systems it applies to.
//!
//! The read, mixed and iterate workloads run on a data set prefilled into the system; the set
//! workloads write into it; the eviction workloads start empty with a bound smaller than the key space. The
//! streams of key indices each workload's threads walk are made here, once, and shared by every
//! system.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::data;
use crate::runner::Mode;
use crate::systems::{Kind, System};

/// A workload of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Gets that hit, uniform over a hot set of 1,000 keys (fits in cache).
    HotGet,
    /// Like hot-get, but a borrowing read (the value read in place, no reference count touched)
    /// where the system can lend a reference.
    HotRead,
    /// Gets that hit, uniform over the whole data set (1M keys: DRAM-bound).
    Get,
    /// Gets that hit, Zipf 0.99 over the whole data set.
    ZipfGet,
    /// Gets of keys that are not there.
    Miss,
    /// Sets of fresh keys into an empty system.
    Insert,
    /// Sets of keys already there (replacing their values).
    Replace,
    /// Zipf 0.99 over the data set, 90% gets and 10% sets.
    Mix,
    /// Cache-aside with eviction: Zipf 0.99 over the key space, a bound of `capacity` entries,
    /// get and on a miss set. Reports the hit ratio.
    CacheAside,
    /// Cache-aside replay of a trace file (`--trace`), with the bound of `capacity` entries.
    Trace,
    /// Latency percentiles of get and set under a concurrent writer.
    Latency,
    /// Heap bytes per entry beyond the keys and values (1M `u64` to `u64` entries).
    Memory,
    /// Full walks over the whole data set, each thread walking on its own; an operation is one
    /// entry visited. Only for systems that can iterate.
    // (Each walk is one `Contender::walk`: no link here, since clap shows this text in --help.)
    Iterate,
    /// Atomic read-modify-writes of keys already there, Zipf 0.99 over the data set: each
    /// system's own update of one key from its current value. Only for systems that have one.
    // (Each update is one `Contender::update`.)
    Update,
}

/// The sizes and mix of the workloads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Keys in the data set (and the key space of the eviction workload).
    pub keys: usize,
    /// Keys in the hot set.
    pub hot_keys: usize,
    /// The bound of the eviction workloads, in entries.
    pub capacity: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Zipf exponent of the skewed workloads.
    pub zipf: f64,
    /// Fraction of sets in the mixed workload.
    pub set_ratio: f64,
    /// Length of each thread's stream of key indices (it wraps around).
    pub stream_len: usize,
    /// Fresh keys inserted by the insert workload, all threads together.
    pub inserts: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keys: 1_000_000,
            hot_keys: 1_000,
            capacity: 1 << 17,
            value_size: 64,
            zipf: 0.99,
            set_ratio: 0.1,
            stream_len: 1 << 20,
            inserts: 500_000,
            seed: 0x5eed,
        }
    }
}

/// Keys of the miss workload (absent from every data set).
pub const MISS_KEYS: usize = 1 << 16;

impl Workload {
    /// The workloads of the default comparison run.
    pub const DEFAULT: [Workload; 9] = [
        Workload::HotGet,
        Workload::Get,
        Workload::ZipfGet,
        Workload::Mix,
        Workload::Replace,
        Workload::Insert,
        Workload::CacheAside,
        Workload::Latency,
        Workload::Memory,
    ];

    /// A short name (the CLI's).
    pub fn name(self) -> &'static str {
        match self {
            Workload::HotGet => "hot-get",
            Workload::HotRead => "hot-read",
            Workload::Get => "get",
            Workload::ZipfGet => "zipf-get",
            Workload::Miss => "miss",
            Workload::Insert => "insert",
            Workload::Replace => "replace",
            Workload::Mix => "mix",
            Workload::CacheAside => "cache-aside",
            Workload::Trace => "trace",
            Workload::Latency => "latency",
            Workload::Memory => "memory",
            Workload::Iterate => "iterate",
            Workload::Update => "update",
        }
    }

    /// A line saying what the workload does with this configuration.
    pub fn describe(self, cfg: &Config) -> String {
        let k = thousands(cfg.keys as u64);
        match self {
            Workload::HotGet => format!(
                "get, hit, uniform over {} hot keys",
                thousands(cfg.hot_keys as u64)
            ),
            Workload::HotRead => format!(
                "borrowing read, hit, uniform over {} hot keys",
                thousands(cfg.hot_keys as u64)
            ),
            Workload::Get => format!("get, hit, uniform over {k} keys"),
            Workload::ZipfGet => format!("get, hit, Zipf {} over {k} keys", cfg.zipf),
            Workload::Miss => format!("get, miss, on {k} keys"),
            Workload::Insert => format!("set of {} fresh keys", thousands(cfg.inserts as u64)),
            Workload::Replace => format!("set, replace, uniform over {k} keys"),
            Workload::Mix => format!(
                "Zipf {} over {k} keys, {:.0}% get / {:.0}% set",
                cfg.zipf,
                100.0 * (1.0 - cfg.set_ratio),
                100.0 * cfg.set_ratio
            ),
            Workload::CacheAside => format!(
                "cache-aside, Zipf {} over {k} keys, capacity {}",
                cfg.zipf,
                thousands(cfg.capacity as u64)
            ),
            Workload::Trace => {
                format!("cache-aside replay of the trace, capacity {}", cfg.capacity)
            }
            Workload::Latency => "get and set latency under a concurrent writer".into(),
            Workload::Memory => "heap bytes per entry, 1M u64 -> u64".into(),
            Workload::Iterate => {
                format!("full walks over {k} keys, each thread its own; ops = entries visited")
            }
            Workload::Update => {
                format!("atomic read-modify-write, Zipf {} over {k} keys", cfg.zipf)
            }
        }
    }

    /// Whether the workload applies to `system`: decided by its kind (see [`Kind`]), except for
    /// iterate, which needs a system that can walk its entries ([`System::iterates`]), and
    /// update, which needs an atomic update of one key ([`System::updates`]).
    pub fn applies_to(self, system: System) -> bool {
        let kind = system.kind();
        match self {
            Workload::HotGet | Workload::HotRead | Workload::Get => true,
            Workload::ZipfGet | Workload::Miss => true,
            // Walks only read, so the read-only baseline takes part.
            Workload::Iterate => system.iterates(),
            Workload::Update => system.updates(),
            Workload::CacheAside | Workload::Trace => kind == Kind::Cache,
            _ => kind != Kind::Baseline,
        }
    }

    /// Whether the workload reports a hit ratio.
    pub fn has_hit_ratio(self) -> bool {
        matches!(self, Workload::CacheAside | Workload::Trace)
    }

    /// What the threads do with their streams.
    pub fn mode(self) -> Mode {
        match self {
            Workload::Insert | Workload::Replace => Mode::Set,
            Workload::Mix | Workload::Latency => Mode::Mixed,
            Workload::CacheAside | Workload::Trace => Mode::CacheAside,
            Workload::HotRead => Mode::Read,
            Workload::Iterate => Mode::Walk,
            Workload::Update => Mode::Update,
            _ => Mode::Get,
        }
    }

    /// The stream of thread `thread` (of `threads`) over a key space of `n` keys.
    ///
    /// The insert workload splits its fresh keys between the threads; iterate, trace and memory
    /// use no stream (an empty one); every other workload gives each thread a stream of its own
    /// over the whole key space.
    pub fn stream(self, cfg: &Config, n: usize, thread: usize, threads: usize) -> Vec<u32> {
        let seed = cfg.seed ^ (self as u64) << 40 ^ (thread as u64) << 20;
        let len = cfg.stream_len;
        match self {
            Workload::Insert => {
                let per = n / threads;
                (per * thread..per * (thread + 1))
                    .map(|i| i as u32)
                    .collect()
            }
            Workload::HotGet
            | Workload::HotRead
            | Workload::Get
            | Workload::Miss
            | Workload::Replace => data::uniform_stream(n, len, seed),
            Workload::ZipfGet | Workload::CacheAside | Workload::Update => {
                data::zipf_stream(n, cfg.zipf, len, cfg.seed, seed)
            }
            Workload::Mix | Workload::Latency => {
                let mut s = data::zipf_stream(n, cfg.zipf, len, cfg.seed, seed);
                let ratio = if self == Workload::Latency {
                    0.25
                } else {
                    cfg.set_ratio
                };
                data::mark_sets(&mut s, ratio, seed);
                s
            }
            Workload::Trace | Workload::Memory | Workload::Iterate => Vec::new(),
        }
    }

    /// Streams for `threads` threads.
    pub fn streams(self, cfg: &Config, n: usize, threads: usize) -> Vec<Vec<u32>> {
        (0..threads)
            .map(|t| self.stream(cfg, n, t, threads))
            .collect()
    }
}

/// Keys and the value of each: a data set.
pub struct DataSet {
    /// The keys.
    pub keys: Vec<String>,
    /// One value per key.
    pub values: Vec<Bytes>,
}

impl DataSet {
    /// The keys with indices `start..start + n` and a value of `value_size` bytes for each.
    pub fn generate(start: u64, n: usize, value_size: usize) -> Self {
        DataSet {
            keys: data::keys(start, n),
            values: data::values(n, value_size),
        }
    }

    /// The data set's keys and values, to prefill a system with.
    pub fn entries(&self) -> impl Iterator<Item = (String, Bytes)> + '_ {
        self.keys.iter().cloned().zip(self.values.iter().cloned())
    }

    /// How many keys it has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// `n` with thousands separators: `1,000,000`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn insert_streams_split_the_fresh_keys() {
        let cfg = Config::default();
        let s = Workload::Insert.streams(&cfg, 1_000, 4);
        let all: Vec<u32> = s.concat();
        assert_eq!(all, (0..1_000).collect::<Vec<u32>>());
    }

    #[test]
    fn eviction_only_for_caches_and_reads_only_for_the_baseline() {
        assert!(!Workload::CacheAside.applies_to(System::Papaya));
        assert!(Workload::CacheAside.applies_to(System::Moka));
        assert!(Workload::HotGet.applies_to(System::StdHashmap));
        assert!(!Workload::Mix.applies_to(System::StdHashmap));
    }

    #[test]
    fn iterate_only_for_systems_that_walk_and_not_by_default() {
        assert!(Workload::Iterate.applies_to(System::Epochcache));
        assert!(Workload::Iterate.applies_to(System::StdHashmap));
        assert!(!Workload::Iterate.applies_to(System::EpochcacheBytes));
        assert!(!Workload::DEFAULT.contains(&Workload::Iterate));
    }

    #[test]
    fn update_only_for_systems_with_an_atomic_update_and_not_by_default() {
        assert!(Workload::Update.applies_to(System::Epochcache));
        assert!(Workload::Update.applies_to(System::Moka));
        assert!(!Workload::Update.applies_to(System::EpochcacheBytes));
        assert!(!Workload::Update.applies_to(System::StdHashmap));
        assert!(!Workload::DEFAULT.contains(&Workload::Update));
    }
}
