//! The comparison run: every chosen workload on every chosen system, in one process.
//!
//! Workloads that share a data set run on one instance of each system, built and prefilled once
//! (the prefill is never timed): the hot set; the full data set (get, zipf-get, miss, mix,
//! replace, latency); an empty bounded cache over the full key space (cache-aside); an empty
//! system per insert run; the trace. The data and the streams are made once and shared by every
//! system. Rows come out sorted by workload, thread count and system.
//!
//! A hit ratio is measured once per system, on a fixed pass of requests after a warm-up, so that
//! every system answers the same requests; the throughput of the eviction workloads is timed
//! afterwards, on the warm cache.

use std::time::Duration;

use crate::latency;
use crate::memory;
use crate::report::{LatencyRow, Machine, MemoryRow, Report, ThroughputRow};
use crate::runner::{self, Measurement, Plan, Until};
use crate::systems::{Kind, Sizing, System};
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
    /// Sizes and mix.
    pub config: Config,
    /// The trace of the trace workload.
    pub trace: Option<Trace>,
}

impl Options {
    fn wants(&self, w: Workload) -> bool {
        self.workloads.contains(&w)
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
                .filter(|s| w.applies_to(s.kind()) || w == Workload::Memory)
                .count();
            n += match w {
                Workload::Latency | Workload::Memory => systems,
                Workload::Trace if self.trace.is_none() => 0,
                _ => systems * self.threads.len(),
            };
        }
        n as u64
    }
}

/// Runs the comparison; `progress` is called before each measurement with what it is.
pub fn run(opts: &Options, progress: &dyn Fn(&str)) -> Report {
    let mut s = Session {
        opts,
        progress,
        report: Report {
            machine: Machine::current(),
            config: opts.config.clone(),
            seconds_per_measurement: opts.duration.as_secs_f64(),
            throughput: Vec::new(),
            latency: Vec::new(),
            memory: Vec::new(),
        },
    };
    s.hot_set();
    s.data_set();
    s.cache_aside();
    s.inserts();
    s.trace();
    s.memory();
    let order = |w: Workload| opts.workloads.iter().position(|&x| x == w);
    let sys = |x: System| opts.systems.iter().position(|&y| y == x);
    s.report
        .throughput
        .sort_by_key(|r| (order(r.workload), r.threads, sys(r.system)));
    s.report.compute_ratios();
    s.report
}

struct Session<'a> {
    opts: &'a Options,
    progress: &'a dyn Fn(&str),
    report: Report,
}

impl Session<'_> {
    fn step(&self, system: System, w: Workload, threads: usize) {
        (self.progress)(&format!("{:<12} {} x{threads}", w.name(), system.name()));
    }

    fn row(&mut self, w: Workload, threads: usize, system: System, m: Option<Measurement>) {
        let note = match (m.is_none(), system.kind()) {
            (false, _) => None,
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

    /// Measures `w` on a built system for every thread count.
    fn measure_all(&mut self, c: &dyn crate::Contender, system: System, w: Workload, plan: Plan) {
        for &t in &self.opts.threads {
            self.step(system, w, t);
            let m = median_of(self.opts.repeat, || {
                runner::run(c, plan, t, Until::Elapsed(self.opts.duration))
            });
            self.row(w, t, system, Some(m));
        }
    }

    fn skip_all(&mut self, system: System, w: Workload) {
        for &t in &self.opts.threads {
            self.row(w, t, system, None);
        }
    }

    fn hot_set(&mut self) {
        let (opts, w) = (self.opts, Workload::HotGet);
        if !opts.wants(w) {
            return;
        }
        let cfg = &opts.config;
        let data = DataSet::generate(0, cfg.hot_keys, cfg.value_size);
        let streams = w.streams(cfg, data.len(), opts.max_threads());
        let plan = plan(&data, &streams, w);
        for &system in &opts.systems {
            let sizing = Sizing {
                entries: data.len(),
                bound: None,
            };
            let c = system.build(sizing, data.entries());
            self.measure_all(&*c, system, w, plan);
        }
    }

    fn data_set(&mut self) {
        let opts = self.opts;
        let reads = [
            Workload::Get,
            Workload::ZipfGet,
            Workload::Miss,
            Workload::Mix,
            Workload::Replace,
        ];
        let chosen: Vec<Workload> = reads.into_iter().filter(|&w| opts.wants(w)).collect();
        let latency = opts.wants(Workload::Latency);
        if chosen.is_empty() && !latency {
            return;
        }
        let cfg = &opts.config;
        let data = DataSet::generate(0, cfg.keys, cfg.value_size);
        let misses = DataSet::generate(cfg.keys as u64, MISS_KEYS, cfg.value_size);
        let streams: Vec<(Workload, Vec<Vec<u32>>)> = chosen
            .iter()
            .map(|&w| {
                let n = if w == Workload::Miss {
                    MISS_KEYS
                } else {
                    cfg.keys
                };
                (w, w.streams(cfg, n, opts.max_threads()))
            })
            .collect();
        let timed = Workload::Latency.stream(cfg, cfg.keys, 0, 1);
        let writer = Workload::Replace.stream(cfg, cfg.keys, 1, 2);
        for &system in &opts.systems {
            let sizing = Sizing {
                entries: data.len(),
                bound: None,
            };
            let c = system.build(sizing, data.entries());
            for (w, s) in &streams {
                let d = if *w == Workload::Miss { &misses } else { &data };
                match w.applies_to(system.kind()) {
                    true => self.measure_all(&*c, system, *w, plan(d, s, *w)),
                    false => self.skip_all(system, *w),
                }
            }
            if latency && Workload::Latency.applies_to(system.kind()) {
                self.step(system, Workload::Latency, 2);
                let l = latency::measure(&*c, &data, &timed, &writer, opts.duration);
                self.report.latency.push(LatencyRow { system, latency: l });
            }
        }
    }

    fn cache_aside(&mut self) {
        let (opts, w) = (self.opts, Workload::CacheAside);
        if !opts.wants(w) {
            return;
        }
        let cfg = &opts.config;
        let data = DataSet::generate(0, cfg.keys, cfg.value_size);
        let streams = w.streams(cfg, cfg.keys, opts.max_threads());
        let mut warm_cfg = cfg.clone();
        warm_cfg.seed ^= 0xa11ce;
        // The same hot keys (the permutation depends on `seed`), a different request sequence.
        let warm = vec![crate::data::zipf_stream(
            cfg.keys,
            cfg.zipf,
            cfg.stream_len,
            cfg.seed,
            warm_cfg.seed,
        )];
        for &system in &opts.systems {
            if !w.applies_to(system.kind()) {
                self.skip_all(system, w);
                continue;
            }
            self.bounded_replay(system, w, &data, &warm, &streams);
        }
    }

    /// Cache-aside on an empty cache bounded by `capacity`: warms it up, then measures.
    fn bounded_replay(
        &mut self,
        system: System,
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
        let c = system.build(sizing, std::iter::empty());
        // Untimed warm-up until the cache has seen a few times its capacity in requests.
        let warm_ops = (4 * cfg.capacity as u64).min(warm[0].len() as u64);
        runner::run(&*c, plan(data, warm, w), 1, Until::Ops(warm_ops));
        // The hit ratio comes from one fixed pass, the same requests for every system: a timed
        // run does as many requests as the system manages, so its hit ratio would depend on
        // speed. A trace is replayed whole; cache-aside takes the first requests of its stream.
        let pass = match w {
            Workload::Trace => streams[0].len(),
            _ => streams[0].len().min(HIT_RATIO_PASS),
        };
        let hit_ratio =
            runner::run(&*c, plan(data, streams, w), 1, Until::Ops(pass as u64)).hit_ratio();
        let first = self.report.throughput.len();
        self.measure_all(&*c, system, w, plan(data, streams, w));
        for row in &mut self.report.throughput[first..] {
            row.hit_ratio = hit_ratio;
        }
    }

    fn inserts(&mut self) {
        let (opts, w) = (self.opts, Workload::Insert);
        if !opts.wants(w) {
            return;
        }
        let cfg = &opts.config;
        let start = (cfg.keys + MISS_KEYS) as u64;
        let data = DataSet::generate(start, cfg.inserts, cfg.value_size);
        for &system in &opts.systems {
            if !w.applies_to(system.kind()) {
                self.skip_all(system, w);
                continue;
            }
            for &t in &opts.threads {
                let streams = w.streams(cfg, data.len(), t);
                let sizing = Sizing {
                    entries: data.len(),
                    bound: None,
                };
                self.step(system, w, t);
                let per_thread = Until::Ops(streams[0].len() as u64);
                let m = median_of(opts.repeat, || {
                    let c = system.build(sizing, std::iter::empty());
                    runner::run(&*c, plan(&data, &streams, w), t, per_thread)
                });
                self.row(w, t, system, Some(m));
            }
        }
    }

    fn trace(&mut self) {
        let (opts, w) = (self.opts, Workload::Trace);
        let Some(trace) = opts.trace.as_ref().filter(|_| opts.wants(w)) else {
            return;
        };
        let streams = trace.streams(opts.max_threads());
        for &system in &opts.systems {
            if !w.applies_to(system.kind()) {
                self.skip_all(system, w);
                continue;
            }
            // The first pass over the trace warms the cache up.
            self.bounded_replay(system, w, &trace.data, &streams[..1], &streams);
        }
    }

    fn memory(&mut self) {
        if !self.opts.wants(Workload::Memory) {
            return;
        }
        for &system in &self.opts.systems {
            (self.progress)(&format!("{:<12} {}", "memory", system.name()));
            let footprint = memory::footprint(system);
            self.report.memory.push(MemoryRow { system, footprint });
        }
    }
}

/// Runs `measure` `repeat` times (at least once) and keeps the median run by ops/s.
fn median_of(repeat: usize, mut measure: impl FnMut() -> Measurement) -> Measurement {
    let mut runs: Vec<Measurement> = (0..repeat.max(1)).map(|_| measure()).collect();
    runs.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
    runs[runs.len() / 2]
}

fn plan<'a>(data: &'a DataSet, streams: &'a [Vec<u32>], w: Workload) -> Plan<'a> {
    Plan {
        keys: &data.keys,
        values: &data.values,
        streams,
        mode: w.mode(),
    }
}
