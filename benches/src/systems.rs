//! The systems under test, each behind one small adapter trait, [`Contender`].
//!
//! Every system is driven through the same trait object, so that each pays the same dynamic call
//! per operation and no system gets a code path the others lack. A get returns an owned
//! `Bytes` (a reference-count increment), which is what a caller of any of these caches gets.
//! A borrowing read ([`Contender::read_len`]) reads the value in place where the system lends a
//! reference (epochcache's `get_with`, papaya, dashmap, scc's `HashMap`, the baseline); moka,
//! quick_cache and scc's `HashCache` only hand out clones, so theirs is a get. A walk over every
//! entry ([`Contender::walk`]) likewise lends where it can (epochcache's `pin().iter()`, papaya,
//! dashmap, scc, the baseline) and clones where the system only offers clones (moka, quick_cache,
//! epochcache's own `iter()` in the copy-out variant); `ByteCache` has no iteration.
//!
//! Three kinds of system take part (see [`Kind`]): caches with a bound and eviction (epochcache,
//! moka, quick_cache, scc's `HashCache`), concurrent maps without eviction (papaya, dashmap, scc's
//! `HashMap`), and one baseline that is not a cache at all: a read-only
//! `std::collections::HashMap` shared by the threads, which shows how far reads can scale when
//! nothing is ever written.

use std::collections::HashMap;
use std::hash::BuildHasher;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The hasher every system is built with: epochcache's own default, randomly seeded per map.
/// Left to their defaults, moka, papaya, dashmap, scc and `std`'s `HashMap` hash with SipHash-1-3
/// (20 to 25 ns for the benchmarks' 20-40 byte keys, against about 4 ns), and quick_cache with
/// foldhash; one hasher for all measures the engines, not their hashers.
type Hasher = ahash::RandomState;

/// One system under test, as the workloads see it: string keys, `Bytes` values.
pub trait Contender: Send + Sync {
    /// The value stored under `key`, cloned out of the system.
    fn get(&self, key: &str) -> Option<Bytes>;
    /// Stores `value` under `key`, replacing an older value. The key is borrowed: a system whose
    /// API takes an owned key copies it (as its caller would have to), one that takes `&str`
    /// (`ByteCache`) does not.
    fn set(&self, key: &str, value: Bytes);
    /// The length of the value stored under `key`, read in place where the system can lend a
    /// reference (no reference count touched); by default through [`get`](Self::get).
    fn read_len(&self, key: &str) -> Option<usize> {
        self.get(key).map(|v| v.len())
    }
    /// Visits every entry once, through the system's own full scan, and says what it saw;
    /// `None` for a system that cannot iterate (see [`System::iterates`]). Values are read in
    /// place where the system lends them and cloned where its scan only yields clones. Only each
    /// value's length is read (the sum is returned, so the walk cannot be optimised away), not
    /// its bytes: what is timed is reaching the entries.
    fn walk(&self) -> Option<Walked> {
        None
    }
    /// Replaces the value of `key`, if it has one, with [`bumped`] of it, atomically (no write
    /// of the key by another thread lost in between), through the system's own read-modify-write;
    /// says whether the key was there. Only for systems that have one (see
    /// [`System::updates`]): a get then a set would not be atomic.
    fn update(&self, _key: &str) -> bool {
        unreachable!("the update workload runs on systems with an atomic update")
    }
}

/// The fewest entries scc's `HashCache` keeps, whatever bound it is given: below it, scc has
/// more room than the other caches in the eviction workloads (the comparison says so).
pub const SCC_SMALLEST_BOUND: usize = 64;

/// The two values the update workload alternates between: static, so that making one costs
/// neither an allocation nor a reference count, and what is timed is the update itself.
static UPDATED: [[u8; 64]; 2] = [[b'a'; 64], [b'b'; 64]];

/// The value an update writes over `old`: depends on `old`'s first byte, so that it must be read.
pub fn bumped(old: &Bytes) -> Bytes {
    let next = usize::from(old.first() == Some(&UPDATED[0][0]));
    Bytes::from_static(&UPDATED[next])
}

/// What one walk over every entry of a system saw ([`Contender::walk`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walked {
    /// Entries the scan yielded.
    pub entries: u64,
    /// The sum of their values' lengths.
    pub value_bytes: u64,
}

impl Walked {
    /// What a scan yielding these value lengths, one per entry, saw.
    fn of_lengths(lengths: impl Iterator<Item = usize>) -> Self {
        let mut walked = Walked::default();
        for len in lengths {
            walked.visit(len);
        }
        walked
    }

    /// What a scan that lends each value to a closure (scc's `iter_sync`, which goes on while
    /// the closure returns `true`) saw.
    fn lent_to(scan: impl FnOnce(&mut dyn FnMut(&Bytes) -> bool)) -> Self {
        let mut walked = Walked::default();
        scan(&mut |value| {
            walked.visit(value.len());
            true
        });
        walked
    }

    /// Counts one entry whose value is `len` bytes long.
    fn visit(&mut self, len: usize) {
        self.entries += 1;
        self.value_bytes += len as u64;
    }
}

/// What a system is, which decides the workloads it takes part in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A cache with a bound and eviction: every workload applies.
    Cache,
    /// A concurrent map without eviction: everything but the eviction workload.
    Map,
    /// A read-only baseline, not a cache: the read workloads only.
    Baseline,
}

/// The systems the comparison knows, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// epochcache's `ShardedCache<String, Bytes>`.
    Epochcache,
    /// epochcache's `ByteCache` (the cache object API: `str` keys, `Bytes` values), through its
    /// `BaseCache` trait.
    EpochcacheBytes,
    /// epochcache's `ShardedCache<String, Bytes>` returning a copy of the value (a fresh
    /// allocation) instead of a handle that shares it, to measure whether small values are better
    /// copied out or shared. Only run when asked for with `-s`.
    EpochcacheCopy,
    /// epochcache's `ShardedCache<String, Bytes>` bounded by weight instead of entry count, with
    /// a weigher of one per entry (as quick_cache is built here): the path a byte budget takes,
    /// which counts retired weight until the collector frees it. Only run when asked for with
    /// `-s`.
    EpochcacheWeighted,
    /// epochcache's `ShardedCache<String, Bytes>` with `record_stats()`: hits and misses counted
    /// on per-thread stripes, to measure whether the statistics are cheap enough to leave on.
    /// Only run when asked for with `-s`.
    EpochcacheStats,
    /// `moka::sync::Cache`.
    Moka,
    /// `quick_cache::sync::Cache`.
    QuickCache,
    /// `papaya::HashMap`: a lock-free map, no eviction.
    Papaya,
    /// `dashmap::DashMap`: a sharded locked map, no eviction.
    Dashmap,
    /// `scc::HashMap`, or `scc::HashCache` where a bound is asked for.
    Scc,
    /// A read-only `std::collections::HashMap<String, Bytes>`: a scaling baseline, not a cache.
    StdHashmap,
}

/// How big a system is made for a workload.
#[derive(Clone, Copy, Debug)]
pub struct Sizing {
    /// About how many entries it will hold (a capacity hint).
    pub entries: usize,
    /// The most entries it may hold; `None` means room for all of them (no eviction).
    pub bound: Option<usize>,
}

impl Sizing {
    /// The bound a cache is built with: `bound`, or where none is asked for (the cache must not
    /// evict) a quarter more room than it will hold; 16 at least.
    pub fn capacity(self) -> usize {
        self.bound
            .unwrap_or(self.entries + self.entries / 4)
            .max(16)
    }
}

/// epochcache's engine as the comparison builds it for `sizing` (and its copy-out and statistics
/// variants on top): bounded at [`Sizing::capacity`] entries, with room for what it will hold.
fn engine(sizing: Sizing) -> epochcache::CacheBuilder<String, Bytes> {
    let capacity = sizing.capacity();
    epochcache::ShardedCache::<String, Bytes>::builder()
        .max_entries(capacity as u64)
        .initial_capacity(sizing.entries.min(capacity))
}

/// quick_cache as the comparison builds it for `sizing`, in `shards` shards (`None`: its default,
/// four per core, as [`System::build`] leaves it).
///
/// quick_cache bounds each shard on its own (the weight bound over the shard count, at least 32
/// items a shard), so where no eviction is wanted the quarter more room the other caches get is
/// not enough: the hot set's 1,250 over 32 shards (on 16 cores) is 40 a shard for about 31
/// entries each, and the 16-core run's quick_cache held 99.0 to 99.9% of the hot set, missing
/// where the others hit. There it is given twice the entries in weight; its item estimate, and so
/// its shard count and table sizes, stay at the others' bound, and with no eviction its hit path
/// is the same. A bounded quick_cache gets the bound, as the others do.
pub fn quick_cache_for(
    sizing: Sizing,
    shards: Option<usize>,
) -> quick_cache::sync::Cache<String, Bytes, quick_cache::UnitWeighter, Hasher> {
    let capacity = sizing.capacity();
    let weight = match sizing.bound {
        Some(_) => capacity,
        None => capacity.max(2 * sizing.entries),
    };
    let mut options = quick_cache::OptionsBuilder::new();
    options
        .estimated_items_capacity(capacity)
        .weight_capacity(weight as u64);
    if let Some(shards) = shards {
        options.shards(shards);
    }
    quick_cache::sync::Cache::with_options(
        options.build().expect("valid quick_cache options"),
        quick_cache::UnitWeighter,
        Hasher::new(),
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

impl System {
    /// Every system, epochcache first (the one the others are compared with).
    pub const ALL: [System; 11] = [
        System::Epochcache,
        System::EpochcacheBytes,
        System::EpochcacheCopy,
        System::EpochcacheWeighted,
        System::EpochcacheStats,
        System::Moka,
        System::QuickCache,
        System::Papaya,
        System::Dashmap,
        System::Scc,
        System::StdHashmap,
    ];

    /// The systems a run compares unless told otherwise: all but the copy-out, weighted and
    /// statistics variants, which answer one question each and are only run when asked for.
    pub fn defaults() -> Vec<System> {
        Self::ALL
            .into_iter()
            .filter(|&s| {
                !matches!(
                    s,
                    System::EpochcacheCopy | System::EpochcacheWeighted | System::EpochcacheStats
                )
            })
            .collect()
    }

    /// The name printed in tables, charts and JSON.
    pub fn name(self) -> &'static str {
        match self {
            System::Epochcache => "epochcache",
            System::EpochcacheBytes => "epochcache ByteCache",
            System::EpochcacheCopy => "epochcache copy-out",
            System::EpochcacheWeighted => "epochcache weighted",
            System::EpochcacheStats => "epochcache stats on",
            System::Moka => "moka",
            System::QuickCache => "quick_cache",
            System::Papaya => "papaya",
            System::Dashmap => "dashmap",
            System::Scc => "scc",
            System::StdHashmap => "std HashMap (baseline)",
        }
    }

    /// A name without spaces, for benchmark ids and file names.
    pub fn id(self) -> &'static str {
        match self {
            System::Epochcache => "epochcache",
            System::EpochcacheBytes => "epochcache-bytes",
            System::EpochcacheCopy => "epochcache-copy",
            System::EpochcacheWeighted => "epochcache-weighted",
            System::EpochcacheStats => "epochcache-stats",
            System::Moka => "moka",
            System::QuickCache => "quick_cache",
            System::Papaya => "papaya",
            System::Dashmap => "dashmap",
            System::Scc => "scc",
            System::StdHashmap => "std-hashmap-baseline",
        }
    }

    /// Whether it can walk its entries ([`Contender::walk`] returns `Some`): all but `ByteCache`,
    /// whose object API has no iteration.
    pub fn iterates(self) -> bool {
        self != System::EpochcacheBytes
    }

    /// Whether it has an atomic update of one key ([`Contender::update`]): all but `ByteCache`,
    /// whose object API has none, and the read-only baseline.
    pub fn updates(self) -> bool {
        !matches!(self, System::EpochcacheBytes | System::StdHashmap)
    }

    /// Whether it is a cache, a map or the baseline.
    pub fn kind(self) -> Kind {
        match self {
            System::Epochcache
            | System::EpochcacheBytes
            | System::EpochcacheCopy
            | System::EpochcacheWeighted
            | System::EpochcacheStats => Kind::Cache,
            System::Moka | System::QuickCache => Kind::Cache,
            // scc is a map by default and becomes scc::HashCache when a bound is asked for.
            System::Scc => Kind::Cache,
            System::Papaya | System::Dashmap => Kind::Map,
            System::StdHashmap => Kind::Baseline,
        }
    }

    /// A note printed beside the system's name in the legend.
    pub fn note(self) -> &'static str {
        match self {
            System::Epochcache => "ShardedCache<String, Bytes>",
            System::EpochcacheBytes => "ByteCache via BaseCache (get/set return Result)",
            System::EpochcacheCopy => {
                "ShardedCache<String, Bytes>, get copies the value out, iter() clones"
            }
            System::EpochcacheWeighted => "ShardedCache<String, Bytes>, max_weight, one per entry",
            System::EpochcacheStats => "ShardedCache<String, Bytes>, record_stats (hits, misses)",
            System::Moka => "moka::sync::Cache (TinyLFU)",
            System::QuickCache => "quick_cache::sync::Cache (CLOCK-Pro)",
            System::Papaya => "papaya::HashMap: not a cache, no eviction",
            System::Dashmap => "dashmap::DashMap: not a cache, no eviction",
            System::Scc => "scc::HashMap; scc::HashCache (per-bucket LRU) when bounded",
            System::StdHashmap => "read-only std HashMap shared by the threads: not a cache",
        }
    }

    /// Builds the system, sized by `sizing`, holding `prefill`.
    ///
    /// Prefilling is never timed. A bounded cache given more than its bound evicts as it fills.
    pub fn build(
        self,
        sizing: Sizing,
        prefill: impl IntoIterator<Item = (String, Bytes)>,
    ) -> Box<dyn Contender> {
        let capacity = sizing.capacity();
        let contender: Box<dyn Contender> = match self {
            System::Epochcache => Box::new(engine(sizing).build()),
            System::EpochcacheBytes => Box::new(
                epochcache::ByteCache::builder()
                    .max_entries(capacity as u64)
                    .initial_capacity(sizing.entries.min(capacity))
                    .build(),
            ),
            System::EpochcacheCopy => Box::new(CopyOut(engine(sizing).build())),
            System::EpochcacheWeighted => Box::new(
                epochcache::ShardedCache::<String, Bytes>::builder()
                    .max_weight(capacity as u64)
                    .weigher(|_, _| 1)
                    .initial_capacity(sizing.entries.min(capacity))
                    .build(),
            ),
            System::EpochcacheStats => Box::new(engine(sizing).record_stats().build()),
            System::Moka => Box::new(
                moka::sync::Cache::<String, Bytes>::builder()
                    .max_capacity(capacity as u64)
                    .initial_capacity(sizing.entries.min(capacity))
                    .build_with_hasher(Hasher::new()),
            ),
            System::QuickCache => Box::new(quick_cache_for(sizing, None)),
            System::Papaya => Box::new(
                papaya::HashMap::<String, Bytes>::builder()
                    .capacity(sizing.entries)
                    .hasher(Hasher::new())
                    .build(),
            ),
            System::Dashmap => Box::new(
                dashmap::DashMap::<String, Bytes, Hasher>::with_capacity_and_hasher(
                    sizing.entries,
                    Hasher::new(),
                ),
            ),
            // The same bound as the others (floored like theirs); scc rounds it up to a power of
            // two and keeps at least `SCC_SMALLEST_BOUND`, which the comparison notes.
            System::Scc => match sizing.bound {
                Some(_) => Box::new(
                    scc::HashCache::<String, Bytes, Hasher>::with_capacity_and_hasher(
                        capacity,
                        capacity,
                        Hasher::new(),
                    ),
                ),
                None => Box::new(
                    scc::HashMap::<String, Bytes, Hasher>::with_capacity_and_hasher(
                        sizing.entries,
                        Hasher::new(),
                    ),
                ),
            },
            System::StdHashmap => {
                let mut map = HashMap::with_hasher(Hasher::new());
                map.extend(prefill);
                return Box::new(Baseline(map));
            }
        };
        for (k, v) in prefill {
            contender.set(&k, v);
        }
        contender
    }
}

/// The epochcache side: the engine's `ShardedCache<String, Bytes>`, bounded by entry count.
///
/// A failed insert (the engine refuses an entry, for instance after `close`) is counted as done,
/// as it is for the peers, whose inserts cannot fail.
impl<S: BuildHasher + Send + Sync + 'static> Contender
    for epochcache::ShardedCache<String, Bytes, S>
{
    fn get(&self, key: &str) -> Option<Bytes> {
        epochcache::ShardedCache::get(self, key)
    }
    fn set(&self, key: &str, value: Bytes) {
        let _ = self.insert(key.to_owned(), value);
    }
    fn read_len(&self, key: &str) -> Option<usize> {
        self.get_with(key, Bytes::len)
    }
    /// Lends the entries: one pin for the whole walk, nothing cloned.
    fn walk(&self) -> Option<Walked> {
        Some(Walked::of_lengths(self.pin().iter().map(|(_, v)| v.len())))
    }
    /// `compute`, which runs the function unlocked and applies its answer under the shard's
    /// lock if the entry is unchanged; its result holds clones of the old and the new value.
    fn update(&self, key: &str) -> bool {
        let bump =
            |v: Option<&Bytes>| v.map_or(epochcache::Op::Nop, |v| epochcache::Op::Put(bumped(v)));
        matches!(
            self.compute(key.to_owned(), bump),
            Ok(epochcache::Computed::Updated { .. })
        )
    }
}

/// The engine returning a copy of the value instead of sharing it: a get reads the value in
/// place and copies its bytes into a new allocation, so no reference count is written. Its walk
/// is the cloning `iter()` (each shard's entries cloned under one short pin: a `String` key
/// copied and a `Bytes` value shared per entry), set beside the lending `pin().iter()` of
/// [`System::Epochcache`].
struct CopyOut(epochcache::ShardedCache<String, Bytes>);

impl Contender for CopyOut {
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.get_with(key, |v| Bytes::copy_from_slice(v))
    }
    fn set(&self, key: &str, value: Bytes) {
        Contender::set(&self.0, key, value);
    }
    fn read_len(&self, key: &str) -> Option<usize> {
        Contender::read_len(&self.0, key)
    }
    fn walk(&self) -> Option<Walked> {
        Some(Walked::of_lengths(self.0.iter().map(|(_, v)| v.len())))
    }
    fn update(&self, key: &str) -> bool {
        Contender::update(&self.0, key)
    }
}

/// The cache object API on the engine: `ByteCache` through `BaseCache`.
impl Contender for epochcache::ByteCache {
    fn get(&self, key: &str) -> Option<Bytes> {
        epochcache::BaseCache::get(self, key).ok().flatten()
    }
    fn set(&self, key: &str, value: Bytes) {
        let _ = epochcache::BaseCache::set(self, key, value, None);
    }
    fn read_len(&self, key: &str) -> Option<usize> {
        self.get_with(key, <[u8]>::len).ok().flatten()
    }
}

impl<S: BuildHasher + Clone + Send + Sync + 'static> Contender
    for moka::sync::Cache<String, Bytes, S>
{
    fn get(&self, key: &str) -> Option<Bytes> {
        moka::sync::Cache::get(self, key)
    }
    fn set(&self, key: &str, value: Bytes) {
        self.insert(key.to_owned(), value);
    }
    /// Clones: moka's `iter()` copies out each segment's keys (as `Arc<K>`) and then looks each
    /// one up, yielding a clone of its value.
    fn walk(&self) -> Option<Walked> {
        Some(Walked::of_lengths(
            moka::sync::Cache::iter(self).map(|(_, v)| v.len()),
        ))
    }
    /// `and_compute_with`, which serialises calls on one key with a per-key lock and hands the
    /// function an entry holding a clone of the value.
    fn update(&self, key: &str) -> bool {
        use moka::ops::compute::{CompResult, Op};
        let result = self
            .entry_by_ref(key)
            .and_compute_with(|entry| match entry {
                Some(entry) => Op::Put(bumped(entry.value())),
                None => Op::Nop,
            });
        matches!(result, CompResult::ReplacedWith(_))
    }
}

impl<S: BuildHasher + Clone + Send + Sync> Contender
    for quick_cache::sync::Cache<String, Bytes, quick_cache::UnitWeighter, S>
{
    fn get(&self, key: &str) -> Option<Bytes> {
        quick_cache::sync::Cache::get(self, key)
    }
    fn set(&self, key: &str, value: Bytes) {
        self.insert(key.to_owned(), value);
    }
    /// Clones: quick_cache's `iter()` takes its shard's read lock for each entry and yields
    /// clones of the key and the value.
    fn walk(&self) -> Option<Walked> {
        Some(Walked::of_lengths(
            quick_cache::sync::Cache::iter(self).map(|(_, v)| v.len()),
        ))
    }
    /// `entry`, which runs the function on the value in place under the shard's write lock. A
    /// missing key gets a placeholder guard, dropped unfilled.
    fn update(&self, key: &str) -> bool {
        let result = self.entry(key, None, |_, v| {
            *v = bumped(v);
            quick_cache::sync::EntryAction::Retain(())
        });
        matches!(result, quick_cache::sync::EntryResult::Retained(()))
    }
}

impl<S: BuildHasher + Send + Sync> Contender for papaya::HashMap<String, Bytes, S> {
    fn get(&self, key: &str) -> Option<Bytes> {
        self.pin().get(key).cloned()
    }
    fn set(&self, key: &str, value: Bytes) {
        self.pin().insert(key.to_owned(), value);
    }
    fn read_len(&self, key: &str) -> Option<usize> {
        self.pin().get(key).map(Bytes::len)
    }
    /// Lends the entries: one guard for the whole walk.
    fn walk(&self) -> Option<Walked> {
        Some(Walked::of_lengths(self.pin().iter().map(|(_, v)| v.len())))
    }
    /// `update`, a compare-and-swap loop on the key's slot (its `compute` is the same loop with
    /// more choices).
    fn update(&self, key: &str) -> bool {
        self.pin().update(key.to_owned(), bumped).is_some()
    }
}

impl<S: BuildHasher + Clone + Send + Sync> Contender for dashmap::DashMap<String, Bytes, S> {
    fn get(&self, key: &str) -> Option<Bytes> {
        dashmap::DashMap::get(self, key).map(|r| r.value().clone())
    }
    fn set(&self, key: &str, value: Bytes) {
        self.insert(key.to_owned(), value);
    }
    fn read_len(&self, key: &str) -> Option<usize> {
        dashmap::DashMap::get(self, key).map(|r| r.value().len())
    }
    /// Lends the entries, each shard under its read lock while the walk is in it.
    fn walk(&self) -> Option<Walked> {
        Some(Walked::of_lengths(
            dashmap::DashMap::iter(self).map(|r| r.value().len()),
        ))
    }
    /// `get_mut`: the value changed in place under the shard's write lock.
    fn update(&self, key: &str) -> bool {
        dashmap::DashMap::get_mut(self, key)
            .map(|mut r| *r = bumped(&r))
            .is_some()
    }
}

impl<S: BuildHasher + Send + Sync> Contender for scc::HashMap<String, Bytes, S> {
    fn get(&self, key: &str) -> Option<Bytes> {
        self.read_sync(key, |_, v| v.clone())
    }
    fn set(&self, key: &str, value: Bytes) {
        self.upsert_sync(key.to_owned(), value);
    }
    fn read_len(&self, key: &str) -> Option<usize> {
        self.read_sync(key, |_, v| v.len())
    }
    /// Lends the entries to a closure (`iter_sync`), bucket by bucket under a shared lock.
    fn walk(&self) -> Option<Walked> {
        Some(Walked::lent_to(|visit| {
            self.iter_sync(|_, v| visit(v));
        }))
    }
    /// `update_sync`: the value changed in place under the bucket's lock.
    fn update(&self, key: &str) -> bool {
        self.update_sync(key, |_, v| *v = bumped(v)).is_some()
    }
}

impl<S: BuildHasher + Send + Sync> Contender for scc::HashCache<String, Bytes, S> {
    fn get(&self, key: &str) -> Option<Bytes> {
        // `get_sync` (not `read_sync`) so that a hit refreshes the entry's place in its bucket's
        // LRU list, as a cache read should.
        self.get_sync(key).map(|e| e.get().clone())
    }
    fn set(&self, key: &str, value: Bytes) {
        match self.entry_sync(key.to_owned()) {
            scc::hash_cache::Entry::Occupied(mut o) => {
                o.put(value);
            }
            scc::hash_cache::Entry::Vacant(v) => {
                v.put_entry(value);
            }
        }
    }
    /// Lends the entries, as scc's `HashMap` does (`iter_sync`, which does not touch the LRU
    /// order).
    fn walk(&self) -> Option<Walked> {
        Some(Walked::lent_to(|visit| {
            self.iter_sync(|_, v| visit(v));
        }))
    }
    /// `get_sync`, which locks the key's bucket, then the value changed in place.
    fn update(&self, key: &str) -> bool {
        self.get_sync(key)
            .map(|mut e| {
                let v = e.get_mut();
                *v = bumped(v);
            })
            .is_some()
    }
}

/// The read-only baseline: a plain `HashMap` that the threads share by reference.
struct Baseline(HashMap<String, Bytes, Hasher>);

impl Contender for Baseline {
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.get(key).cloned()
    }
    fn read_len(&self, key: &str) -> Option<usize> {
        self.0.get(key).map(Bytes::len)
    }
    fn set(&self, _key: &str, _value: Bytes) {
        // The runner never gives the baseline a write (its kind is `Baseline`).
        unreachable!("the std HashMap baseline is read-only")
    }
    fn walk(&self) -> Option<Walked> {
        Some(Walked::of_lengths(self.0.values().map(Bytes::len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_stores_and_returns_values() {
        // Room for far more than the 100 entries stored: quick_cache splits its capacity over
        // shards and hashes with a random seed, so at 125 for 100 a shard now and then overflows
        // and evicts one (this test failed once that way).
        let sizing = Sizing {
            entries: 2_000,
            bound: None,
        };
        let data = || (0..100u64).map(|i| (crate::data::key(i), crate::data::value(i, 64)));
        for system in System::ALL {
            let c = system.build(sizing, data());
            for (k, v) in data() {
                assert_eq!(c.read_len(&k), Some(v.len()), "{}", system.name());
                assert_eq!(c.get(&k), Some(v), "{}", system.name());
            }
            assert_eq!(c.read_len("absent:key:0000000000"), None);
            assert_eq!(c.get("absent:key:0000000000"), None, "{}", system.name());
            if system.kind() != Kind::Baseline {
                c.set("fresh:key:00000000000", Bytes::from_static(b"v"));
                assert_eq!(c.get("fresh:key:00000000000").as_deref(), Some(&b"v"[..]));
            }
        }
    }

    #[test]
    fn every_system_that_iterates_walks_each_entry_once() {
        let sizing = Sizing {
            entries: 2_000,
            bound: None,
        };
        // Values of several lengths, so that a walk that skipped or repeated entries would show
        // in the sum as well as in the count.
        let data =
            || (0..100u64).map(|i| (crate::data::key(i), crate::data::value(i, 1 + i as usize)));
        let stored = Walked {
            entries: 100,
            value_bytes: data().map(|(_, v)| v.len() as u64).sum(),
        };
        for system in System::ALL {
            let c = system.build(sizing, data());
            let walked = c.walk();
            assert_eq!(walked.is_some(), system.iterates(), "{}", system.name());
            if let Some(walked) = walked {
                assert_eq!(walked, stored, "{}", system.name());
            }
        }
    }

    /// scc's `HashCache` keeps `SCC_SMALLEST_BOUND` entries below that bound (the comparison
    /// notes it), and its bound at a power of two at or above it, as the other caches do.
    #[test]
    fn scc_holds_its_bound_from_its_smallest_one_up() {
        let held = |system: System, bound: usize| {
            let sizing = Sizing {
                entries: bound,
                bound: Some(bound),
            };
            let c = system.build(sizing, std::iter::empty());
            for i in 0..1_000u64 {
                c.set(&crate::data::key(i), crate::data::value(i, 8));
            }
            (0..1_000u64)
                .filter(|&i| c.get(&crate::data::key(i)).is_some())
                .count()
        };
        assert_eq!(held(System::Scc, 32), SCC_SMALLEST_BOUND);
        assert_eq!(held(System::Scc, SCC_SMALLEST_BOUND), SCC_SMALLEST_BOUND);
        assert_eq!(held(System::Scc, 128), 128);
        assert_eq!(held(System::Epochcache, 32), 32);
    }

    #[test]
    fn every_system_that_updates_changes_the_value_from_the_old_one_and_adds_no_key() {
        let sizing = Sizing {
            entries: 2_000,
            bound: None,
        };
        let data = || (0..100u64).map(|i| (crate::data::key(i), crate::data::value(i, 64)));
        for system in System::ALL.into_iter().filter(|s| s.updates()) {
            let c = system.build(sizing, data());
            for (k, v) in data() {
                let once = bumped(&v);
                assert!(c.update(&k), "{}", system.name());
                assert_eq!(c.get(&k), Some(once.clone()), "{}", system.name());
                assert!(c.update(&k), "{}", system.name());
                assert_eq!(c.get(&k), Some(bumped(&once)), "{}", system.name());
                assert_ne!(bumped(&once), once);
            }
            assert!(!c.update("absent:key:0000000000"), "{}", system.name());
            assert_eq!(c.get("absent:key:0000000000"), None, "{}", system.name());
        }
    }
}
