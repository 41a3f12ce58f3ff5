//! The comparison run: every chosen workload on every chosen system, in one process.
//!
//! Workloads that share a data set run on one instance of each system, built and prefilled once
//! (the prefill is never timed): the hot set; the full data set (get, zipf-get, miss, iterate,
//! mix, replace, latency); an empty bounded cache over the full key space (cache-aside); an empty
//! system per insert run; the trace. The data and the streams are made once and shared by every
//! system. Rows come out sorted by workload, thread count and system.
//!
//! A hit ratio is measured once per system, on a fixed pass of requests after a warm-up, so that
//! every system answers the same requests; the throughput of the eviction workloads is timed
//! afterwards, on the warm cache.

use std::time::Duration;

use crate::latency;
use crate::memory;
use crate::report::{LatencyRow, MemoryRow, Report, ThroughputRow};
use crate::runner::{self, Measurement, Plan, Until};
use crate::systems::{Contender, Kind, Sizing, System};
use crate::trace::Trace;
use crate::workload::{Config, DataSet, Workload, MISS_KEYS};

/// Requests of the pass that measures the cache-aside hit ratio.
pub const HIT_RATIO_PASS: usize = 500_000;

/// What to run.
pub struct Options {
    /// The systems, epochcache normally first.
    pub systems: Vec<System>,
    /// The workloads, in the order their tables are printed.
    pub workloads: Vec<Workload>,
    /// The thread counts of the throughput workloads.
    pub threads: Vec<usize>,
    /// How long each throughput and latency measurement runs.
    pub duration: Duration,
    /// How many times each throughput measurement is repeated; the median (by ops/s) is kept.
    pub repeat: usize,
    /// The system that runs first in the first round of a throughput measurement, as an index
    /// into `systems`; each later round starts one system later.
    pub rotate: usize,
    /// Sizes and mix.
    pub config: Config,
    /// The trace of the trace workload.
    pub trace: Option<Trace>,
}

impl Options {
    fn wants(&self, w: Workload) -> bool {
        self.workloads.contains(&w)
    }

    /// The indices of `systems` in the order round `round` runs them.
    fn turn_order(&self, round: usize) -> impl Iterator<Item = usize> {
        let n = self.systems.len().max(1);
        let first = (self.rotate % n + round % n) % n;
        (0..self.systems.len()).map(move |k| (first + k) % n)
    }

    fn max_threads(&self) -> usize {
        self.threads.iter().copied().max().unwrap_or(1)
    }

    /// How many measurements the run makes (for a progress bar).
    pub fn steps(&self) -> u64 {
        let mut n = 0;
        for &w in &self.workloads {
            let systems = self
                .systems
                .iter()
                .filter(|&&s| w.applies_to(s) || w == Workload::Memory)
                .count();
            let timed = systems * self.threads.len() * self.repeat.max(1);
            n += match w {
                Workload::Latency | Workload::Memory => systems,
                Workload::Trace if self.trace.is_none() => 0,
                // One more step per cache: its warm-up and hit-ratio pass.
                Workload::CacheAside | Workload::Trace => systems + timed,
                _ => timed,
            };
        }
        n as u64
    }
}

/// Runs the comparison; `progress` is called before each measurement with what it is.
///
/// # Errors
///
/// When the threads of a measurement cannot be spawned (the system's limit on threads or
/// memory): the measurements after it are skipped.
pub fn run(opts: &Options, progress: &dyn Fn(&str)) -> Result<Report, String> {
    let mut s = Session {
        opts,
        progress,
        report: Report::new(opts.config.clone(), opts.duration.as_secs_f64()),
        failed: None,
    };
    // After a measurement whose threads could not be spawned, nothing more is built or run.
    s.hot_set();
    if s.failed.is_none() {
        s.data_set();
    }
    if s.failed.is_none() {
        s.cache_aside();
    }
    if s.failed.is_none() {
        s.inserts();
    }
    if s.failed.is_none() {
        s.trace();
    }
    if s.failed.is_none() {
        s.memory();
    }
    if let Some(e) = s.failed {
        return Err(e);
    }
    let order = |w: Workload| opts.workloads.iter().position(|&x| x == w);
    let sys = |x: System| opts.systems.iter().position(|&y| y == x);
    s.report
        .throughput
        .sort_by_key(|r| (order(r.workload), r.threads, sys(r.system)));
    s.report.latency.sort_by_key(|r| sys(r.system));
    s.report.compute_ratios();
    Ok(s.report)
}

struct Session<'a> {
    opts: &'a Options,
    progress: &'a dyn Fn(&str),
    report: Report,
    /// Why a measurement could not run; the ones after it are skipped.
    failed: Option<String>,
}

impl Session<'_> {
    fn step(&self, system: System, w: Workload, threads: usize) {
        (self.progress)(&format!("{:<12} {} x{threads}", w.name(), system.name()));
    }

    fn row(&mut self, w: Workload, threads: usize, system: System, m: Option<Measurement>) {
        let note = match (m.is_none(), system.kind()) {
            (false, _) => None,
            (true, _) if w == Workload::Iterate && !system.iterates() => {
                Some("no iteration in its API".into())
            }
            (true, _) if w == Workload::Update && !system.updates() => {
                Some("no atomic update in its API".into())
            }
            (true, Kind::Map) => Some("not a cache: no eviction".into()),
            (true, Kind::Baseline) => Some("read-only baseline".into()),
            (true, Kind::Cache) => Some("not measured".into()),
        };
        self.report.throughput.push(ThroughputRow {
            workload: w,
            threads,
            system,
            ops_per_sec: m.map(|m| m.ops_per_sec()),
            vs_epochcache: None,
            vs_epochcache_range: None,
            hit_ratio: m.and_then(|m| m.hit_ratio()),
            note,
        });
    }

    /// Measures `w` on every built system for every thread count.
    ///
    /// The systems take turns: for each thread count, each repeat runs every system once before
    /// the next repeat starts, so that a burst of background load falls on all of them rather
    /// than on one, and each repeat starts one system later (see [`Options::turn_order`]).
    /// Each system keeps the median of its repeats.
    fn measure_round(&mut self, built: &[Built], w: Workload, plan: Plan) {
        let repeat = self.opts.repeat.max(1);
        if self.failed.is_some() {
            return;
        }
        for &t in &self.opts.threads {
            let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); built.len()];
            for round in 0..repeat {
                for i in self.opts.turn_order(round) {
                    let b = &built[i];
                    if let Some(c) = &b.cache {
                        self.step(b.system, w, t);
                        let until = Until::Elapsed(self.opts.duration);
                        match runner::try_run(&**c, plan, t, until) {
                            Ok(m) => runs[i].push(m),
                            Err(e) => {
                                self.failed = Some(e);
                                return;
                            }
                        }
                    }
                }
            }
            for (b, r) in built.iter().zip(runs) {
                let m = (!r.is_empty()).then(|| median(r));
                self.row(w, t, b.system, m);
                if let (Some(row), Some(h)) = (self.report.throughput.last_mut(), b.hit_ratio) {
                    row.hit_ratio = Some(h);
                }
            }
        }
    }

    /// Every chosen system that `w` applies to, built by `build`; the others as `None`.
    fn build_all(&self, w: Workload, build: impl Fn(System) -> Box<dyn Contender>) -> Vec<Built> {
        self.opts
            .systems
            .iter()
            .map(|&system| Built {
                system,
                cache: w.applies_to(system).then(|| Shared::from(build(system))),
                hit_ratio: None,
            })
            .collect()
    }

    fn hot_set(&mut self) {
        let opts = self.opts;
        let chosen: Vec<Workload> = [Workload::HotGet, Workload::HotRead]
            .into_iter()
            .filter(|&w| opts.wants(w))
            .collect();
        if chosen.is_empty() {
            return;
        }
        let cfg = &opts.config;
        let data = DataSet::generate(0, cfg.hot_keys, cfg.value_size);
        // Both workloads walk the same requests: they differ only in how a value is read.
        let streams = Workload::HotGet.streams(cfg, data.len(), opts.max_threads());
        let sizing = Sizing {
            entries: data.len(),
            bound: None,
        };
        let built = self.build_all(Workload::HotGet, |s| s.build(sizing, data.entries()));
        for w in chosen {
            self.measure_round(&built, w, Plan::new(&data, &streams, w));
        }
    }

    fn data_set(&mut self) {
        let opts = self.opts;
        // Iterate before mix and replace, which replace entries: the walks then find each
        // system's entries as the prefill laid them out, whichever workloads run with them.
        // Update last of all, after latency: it leaves the values it wrote (static ones, whose
        // clones touch no reference count) in the systems that have an update, and not in the
        // others, so a workload after it would not read the same values in every system.
        let reads = [
            Workload::Get,
            Workload::ZipfGet,
            Workload::Miss,
            Workload::Iterate,
            Workload::Mix,
            Workload::Replace,
        ];
        let chosen: Vec<Workload> = reads.into_iter().filter(|&w| opts.wants(w)).collect();
        let latency = opts.wants(Workload::Latency);
        let update = opts.wants(Workload::Update);
        if chosen.is_empty() && !latency && !update {
            return;
        }
        let cfg = &opts.config;
        let data = DataSet::generate(0, cfg.keys, cfg.value_size);
        // Keys that are never stored, so their values are empty: only the miss workload uses
        // them, and at large value sizes real values would take gigabytes.
        let misses = chosen
            .contains(&Workload::Miss)
            .then(|| DataSet::generate(cfg.keys as u64, MISS_KEYS, 0));
        let sizing = Sizing {
            entries: data.len(),
            bound: None,
        };
        // Built once for all these workloads; the baseline only where it takes part.
        let built = self.build_all(Workload::Get, |s| s.build(sizing, data.entries()));
        for &w in &chosen {
            let (d, n) = match (w, &misses) {
                (Workload::Miss, Some(misses)) => (misses, MISS_KEYS),
                _ => (&data, cfg.keys),
            };
            self.measure_those_taking_part(&built, w, d, n);
        }
        if latency {
            let timed = Workload::Latency.stream(cfg, cfg.keys, 0, 1);
            let writer = Workload::Replace.stream(cfg, cfg.keys, 1, 2);
            for i in opts.turn_order(0) {
                let b = &built[i];
                let Some(c) = b
                    .cache
                    .as_ref()
                    .filter(|_| Workload::Latency.applies_to(b.system))
                else {
                    continue;
                };
                self.step(b.system, Workload::Latency, 2);
                let l = latency::measure(&**c, &data, &timed, &writer, opts.duration);
                self.report.latency.push(LatencyRow {
                    system: b.system,
                    latency: l,
                });
            }
        }
        if update {
            self.measure_those_taking_part(&built, Workload::Update, &data, cfg.keys);
        }
    }

    /// Measures `w` on those of `built` it applies to, over the first `n` keys of `data`.
    fn measure_those_taking_part(
        &mut self,
        built: &[Built],
        w: Workload,
        data: &DataSet,
        n: usize,
    ) {
        let streams = w.streams(&self.opts.config, n, self.opts.max_threads());
        let taking_part: Vec<Built> = built
            .iter()
            .map(|b| Built {
                system: b.system,
                cache: b.cache.as_ref().filter(|_| w.applies_to(b.system)).cloned(),
                hit_ratio: None,
            })
            .collect();
        self.measure_round(&taking_part, w, Plan::new(data, &streams, w));
    }

    fn cache_aside(&mut self) {
        let (opts, w) = (self.opts, Workload::CacheAside);
        if !opts.wants(w) {
            return;
        }
        let cfg = &opts.config;
        let data = DataSet::generate(0, cfg.keys, cfg.value_size);
        let streams = w.streams(cfg, cfg.keys, opts.max_threads());
        // The same hot keys (the permutation depends on `seed`), a different request sequence.
        let warm = vec![crate::data::zipf_stream(
            cfg.keys,
            cfg.zipf,
            cfg.stream_len,
            cfg.seed,
            cfg.seed ^ 0xa11ce,
        )];
        self.bounded_replay(w, &data, &warm, &streams);
    }

    /// Cache-aside on empty caches bounded by `capacity`: warms each up and measures its hit
    /// ratio on one fixed pass, then measures throughput.
    fn bounded_replay(
        &mut self,
        w: Workload,
        data: &DataSet,
        warm: &[Vec<u32>],
        streams: &[Vec<u32>],
    ) {
        let cfg = &self.opts.config;
        let sizing = Sizing {
            entries: cfg.capacity,
            bound: Some(cfg.capacity),
        };
        // Untimed warm-up until the cache has seen a few times its capacity in requests.
        let warm_ops = (4 * cfg.capacity as u64).min(warm[0].len() as u64);
        // The hit ratio comes from one fixed pass, the same requests for every system: a timed
        // run does as many requests as the system manages, so its hit ratio would depend on
        // speed. A trace is replayed whole; cache-aside takes the first requests of its stream.
        let pass = match w {
            Workload::Trace => streams[0].len(),
            _ => streams[0].len().min(HIT_RATIO_PASS),
        };
        let mut built = self.build_all(w, |s| s.build(sizing, std::iter::empty()));
        for b in &mut built {
            if let Some(c) = &b.cache {
                (self.progress)(&format!("{:<12} {} warm-up", w.name(), b.system.name()));
                runner::run(&**c, Plan::new(data, warm, w), 1, Until::Ops(warm_ops));
                let m = runner::run(
                    &**c,
                    Plan::new(data, streams, w),
                    1,
                    Until::Ops(pass as u64),
                );
                b.hit_ratio = m.hit_ratio();
            }
        }
        self.measure_round(&built, w, Plan::new(data, streams, w));
    }

    fn inserts(&mut self) {
        let (opts, w) = (self.opts, Workload::Insert);
        if !opts.wants(w) {
            return;
        }
        if self.failed.is_some() {
            return;
        }
        let cfg = &opts.config;
        let start = (cfg.keys + MISS_KEYS) as u64;
        let data = DataSet::generate(start, cfg.inserts, cfg.value_size);
        let sizing = Sizing {
            entries: data.len(),
            bound: None,
        };
        for &t in &opts.threads {
            let streams = w.streams(cfg, data.len(), t);
            let per_thread = Until::Ops(streams[0].len() as u64);
            let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); opts.systems.len()];
            // Systems take turns, as in `measure_round`; each run starts from an empty system.
            for round in 0..opts.repeat.max(1) {
                for i in opts.turn_order(round) {
                    let system = opts.systems[i];
                    if w.applies_to(system) {
                        self.step(system, w, t);
                        let c = system.build(sizing, std::iter::empty());
                        let plan = Plan::new(&data, &streams, w);
                        match runner::try_run(&*c, plan, t, per_thread) {
                            Ok(m) => runs[i].push(m),
                            Err(e) => {
                                self.failed = Some(e);
                                return;
                            }
                        }
                    }
                }
            }
            for (&system, r) in opts.systems.iter().zip(runs) {
                self.row(w, t, system, (!r.is_empty()).then(|| median(r)));
            }
        }
    }

    fn trace(&mut self) {
        let (opts, w) = (self.opts, Workload::Trace);
        let Some(trace) = opts.trace.as_ref().filter(|_| opts.wants(w)) else {
            return;
        };
        let streams = trace.streams(opts.max_threads());
        // The first pass over the trace warms the caches up.
        self.bounded_replay(w, &trace.data, &streams[..1], &streams);
    }

    fn memory(&mut self) {
        if !self.opts.wants(Workload::Memory) {
            return;
        }
        for &system in &self.opts.systems {
            (self.progress)(&format!("{:<12} {}", "memory", system.name()));
            let footprint = memory::footprint(system, 1);
            let steady = memory::footprint(system, 2);
            self.report.memory.push(MemoryRow {
                system,
                footprint,
                steady,
            });
            if system == System::Epochcache {
                self.report.memory_epochcache_map = memory::epochcache_map_footprint(true);
                self.report.memory_epochcache_grown = memory::epochcache_map_footprint(false);
                self.report.memory_epochcache_churned = memory::epochcache_churned_footprint();
            }
        }
    }
}

/// The median run by ops/s (the upper one of an even count).
fn median(mut runs: Vec<Measurement>) -> Measurement {
    runs.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
    runs[runs.len() / 2]
}

/// A system built for a group of workloads: `None` where it takes no part.
struct Built {
    system: System,
    cache: Option<Shared>,
    /// The hit ratio measured on the fixed pass, for the eviction workloads.
    hit_ratio: Option<f64>,
}

/// A built system, shared between the workloads of a group.
type Shared = std::sync::Arc<dyn Contender>;

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn each_round_runs_every_system_once_starting_one_later() {
        let opts = |rotate| Options {
            systems: vec![System::Epochcache, System::Moka, System::Papaya],
            workloads: vec![],
            threads: vec![1],
            duration: Duration::ZERO,
            repeat: 3,
            rotate,
            config: Config::default(),
            trace: None,
        };
        let order = |o: &Options, round| o.turn_order(round).collect::<Vec<_>>();
        assert_eq!(order(&opts(0), 0), [0, 1, 2]);
        assert_eq!(order(&opts(0), 1), [1, 2, 0]);
        assert_eq!(order(&opts(2), 0), [2, 0, 1]);
        assert_eq!(order(&opts(2), 2), [1, 2, 0]);
        assert_eq!(
            order(&opts(6), 1),
            order(&opts(0), 1),
            "counts round the systems"
        );
        assert_eq!(order(&opts(usize::MAX), 1).len(), 3, "any value is taken");
    }

    #[test]
    fn every_step_is_announced_and_every_row_is_there() {
        let workloads: Vec<Workload> = Workload::DEFAULT
            .into_iter()
            .chain([
                Workload::HotRead,
                Workload::Miss,
                Workload::Iterate,
                Workload::Update,
                Workload::Trace,
            ])
            .filter(|&w| w != Workload::Memory)
            .collect();
        let trace = Trace::read("a\nb\na\nc\na\n".as_bytes(), 8).unwrap();
        let opts = Options {
            systems: System::ALL.to_vec(),
            workloads: workloads.clone(),
            threads: vec![1, 2],
            duration: Duration::from_millis(1),
            repeat: 2,
            rotate: 1,
            config: Config {
                keys: 2_000,
                hot_keys: 100,
                capacity: 100,
                stream_len: 4_096,
                inserts: 1_000,
                ..Config::default()
            },
            trace: Some(trace),
        };
        let steps = Cell::new(0u64);
        let report = run(&opts, &|_| steps.set(steps.get() + 1)).unwrap();
        assert_eq!(steps.get(), opts.steps());
        let throughput = workloads.len() - 1; // all but latency
        assert_eq!(report.throughput.len(), throughput * 2 * System::ALL.len());
        let caches = System::ALL.iter().filter(|s| s.kind() != Kind::Baseline);
        assert_eq!(report.latency.len(), caches.count());
        // Ratios are against epochcache, and rows are sorted by workload, threads, system.
        assert_eq!(report.throughput[0].system, System::Epochcache);
        assert_eq!(report.throughput[0].vs_epochcache, Some(1.0));
    }
}
