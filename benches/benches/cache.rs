//! The criterion suite: every workload of the issue, every system, the same keys and streams.
//!
//! Groups are named `workload/value size` and benchmarks `system/threads`; throughput is in
//! elements (operations, all threads together). One criterion iteration is one operation on each
//! thread, timed by the shared runner (`iter_custom`), so that every system runs exactly the code
//! the comparison command runs.
//!
//! ```sh
//! cargo bench -p epochcache-bench                               # the full suite, ~10 min on 2 cores
//! EPOCHCACHE_BENCH_QUICK=1 cargo bench -p epochcache-bench      # a quick pass, ~2 min
//! EPOCHCACHE_BENCH_PLOTS=1 cargo bench -p epochcache-bench      # with criterion's HTML plots
//! cargo bench -p epochcache-bench -- 'get_hot/64B/epochcache'   # criterion's filter
//! ```
//!
//! The DRAM-bound get (`get_1000k`) and the miss group use 64-byte values only: 1M values of
//! 4 KiB would be 4 GiB per system. Other 4 KiB groups use an eighth of the keys (and of the
//! cache-aside capacity), about 512 MiB of values.
//!
//! Speed is never asserted: these benches only measure.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use epochcache_bench::runner::{self, Plan, Until};
use epochcache_bench::workload::MISS_KEYS;
use epochcache_bench::{Config, Contender, DataSet, Sizing, System, Workload};

/// The suite's sizes, shrunk in quick mode.
struct Suite {
    quick: bool,
    threads: Vec<usize>,
    config: Config,
}

impl Suite {
    fn new() -> Self {
        let quick = std::env::var_os("EPOCHCACHE_BENCH_QUICK").is_some_and(|v| v != "0");
        let mut config = Config::default();
        if quick {
            config.keys = 100_000;
            config.capacity = 1 << 14;
            config.stream_len = 1 << 16;
        }
        Suite {
            quick,
            threads: if quick { vec![1, 2] } else { vec![1, 2, 4] },
            config,
        }
    }

    /// Short samples and fewer bootstrap resamples keep the whole suite near ten minutes on two
    /// cores; criterion's own flags (`--measurement-time`, `--sample-size`, ...) still override.
    /// Plots (criterion's HTML report) are drawn only with `EPOCHCACHE_BENCH_PLOTS=1`: drawing
    /// them costs about as much as measuring.
    fn criterion(&self) -> Criterion {
        let c = Criterion::default().nresamples(10_000);
        let c = if self.quick {
            c.sample_size(10)
                .warm_up_time(Duration::from_millis(50))
                .measurement_time(Duration::from_millis(150))
        } else {
            c.sample_size(15)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_millis(1000))
        };
        let plots = std::env::var_os("EPOCHCACHE_BENCH_PLOTS").is_some_and(|v| v != "0");
        let c = if plots { c } else { c.without_plots() };
        c.configure_from_args()
    }

    /// The config for values of `size` bytes: 4 KiB values get an eighth of the keys, so that a
    /// data set stays near 512 MiB.
    fn sized(&self, size: usize) -> Config {
        let mut cfg = self.config.clone();
        cfg.value_size = size;
        if size > 256 {
            cfg.keys /= 8;
            cfg.capacity /= 8;
        }
        cfg
    }
}

const VALUE_SIZES: [usize; 2] = [64, 4096];

/// One benchmark group: a workload on its data, for every system it applies to.
struct Case<'a> {
    name: String,
    w: Workload,
    data: &'a DataSet,
    streams: &'a [Vec<u32>],
    sizing: Sizing,
    /// Whether the system starts holding `data` (otherwise it starts empty).
    prefill: bool,
}

/// Benchmarks a case for every system and thread count.
fn group(c: &mut Criterion, case: Case<'_>, threads: &[usize]) {
    let Case {
        name,
        w,
        data,
        streams,
        sizing,
        prefill,
    } = case;
    let mut g = c.benchmark_group(&name);
    for system in System::defaults() {
        if !w.applies_to(system) {
            continue;
        }
        let cache: Box<dyn Contender> = if prefill {
            system.build(sizing, data.entries())
        } else {
            system.build(sizing, std::iter::empty())
        };
        if w.mode() == runner::Mode::CacheAside {
            // Warm up with the requests of the last thread stream (not timed).
            let warm = &streams[streams.len() - 1..];
            let ops = (4 * sizing.entries as u64).min(warm[0].len() as u64);
            runner::run(&*cache, Plan::new(data, warm, w), 1, Until::Ops(ops));
            // Criterion reports time only: the hit ratio of a steady-state pass goes to stderr.
            let m = runner::run(&*cache, Plan::new(data, streams, w), 1, Until::Ops(ops));
            let hits = 100.0 * m.hit_ratio().unwrap_or(0.0);
            eprintln!("{name}/{}: hit ratio {hits:.1}%", system.id());
        }
        for &t in threads {
            g.throughput(Throughput::Elements(t as u64));
            g.bench_with_input(BenchmarkId::new(system.id(), t), &t, |b, &t| {
                b.iter_custom(|iters| {
                    runner::run(&*cache, Plan::new(data, streams, w), t, Until::Ops(iters)).elapsed
                });
            });
        }
    }
    g.finish();
}

fn gets(c: &mut Criterion, suite: &Suite) {
    for size in VALUE_SIZES {
        let cfg = suite.sized(size);
        let w = Workload::HotGet;
        let hot = DataSet::generate(0, cfg.hot_keys, size);
        let streams = w.streams(&cfg, hot.len(), 4);
        let sizing = Sizing {
            entries: hot.len(),
            bound: None,
        };
        let name = format!("get_hot/{size}B");
        let case = Case {
            name,
            w,
            data: &hot,
            streams: &streams,
            sizing,
            prefill: true,
        };
        group(c, case, &suite.threads);
    }
    // DRAM-bound gets, and misses, on the full data set of 64-byte values.
    let cfg = suite.sized(64);
    let data = DataSet::generate(0, cfg.keys, 64);
    let sizing = Sizing {
        entries: data.len(),
        bound: None,
    };
    let w = Workload::Get;
    let streams = w.streams(&cfg, data.len(), 4);
    let name = format!("get_{}k/64B", cfg.keys / 1000);
    let case = Case {
        name,
        w,
        data: &data,
        streams: &streams,
        sizing,
        prefill: true,
    };
    group(c, case, &suite.threads);

    let misses = DataSet::generate(cfg.keys as u64, MISS_KEYS, 64);
    let streams = Workload::Miss.streams(&cfg, MISS_KEYS, 1);
    // The system holds the data set; the stream asks for the absent keys of `misses`.
    let mut g = c.benchmark_group("get_miss/64B");
    g.throughput(Throughput::Elements(1));
    for system in System::defaults() {
        let cache = system.build(sizing, data.entries());
        g.bench_function(system.id(), |b| {
            b.iter_custom(|iters| {
                let p = Plan::new(&misses, &streams, Workload::Miss);
                runner::run(&*cache, p, 1, Until::Ops(iters)).elapsed
            });
        });
    }
    g.finish();
}

fn sets(c: &mut Criterion, suite: &Suite) {
    for size in VALUE_SIZES {
        let cfg = suite.sized(size);
        // Inserts: a fresh, empty system per sample; keys wrap (and become replaces) only if a
        // sample asks for more operations than the pool holds.
        let w = Workload::Insert;
        let fresh = DataSet::generate((cfg.keys + MISS_KEYS) as u64, cfg.keys, size);
        let stream = vec![(0..fresh.len() as u32).collect::<Vec<u32>>()];
        let sizing = Sizing {
            entries: fresh.len(),
            bound: None,
        };
        let mut g = c.benchmark_group(format!("set_insert/{size}B"));
        g.throughput(Throughput::Elements(1));
        for system in System::defaults().into_iter().filter(|&s| w.applies_to(s)) {
            g.bench_function(system.id(), |b| {
                b.iter_custom(|iters| {
                    let cache = system.build(sizing, std::iter::empty());
                    runner::run(&*cache, Plan::new(&fresh, &stream, w), 1, Until::Ops(iters))
                        .elapsed
                });
            });
        }
        g.finish();
        drop(fresh);

        let w = Workload::Replace;
        let data = DataSet::generate(0, cfg.keys, size);
        let streams = w.streams(&cfg, data.len(), 1);
        let name = format!("set_replace/{size}B");
        let case = Case {
            name,
            w,
            data: &data,
            streams: &streams,
            sizing,
            prefill: true,
        };
        group(c, case, &[1]);
    }
}

fn mixed(c: &mut Criterion, suite: &Suite) {
    for size in VALUE_SIZES {
        let cfg = suite.sized(size);
        let data = DataSet::generate(0, cfg.keys, size);
        let w = Workload::Mix;
        let streams = w.streams(&cfg, data.len(), 4);
        let sizing = Sizing {
            entries: data.len(),
            bound: None,
        };
        let name = format!("zipf_mix/{size}B");
        let case = Case {
            name,
            w,
            data: &data,
            streams: &streams,
            sizing,
            prefill: true,
        };
        group(c, case, &suite.threads);

        // Cache-aside with eviction: an empty cache bounded at `capacity`, Zipf over the keys.
        let w = Workload::CacheAside;
        // Five streams: four for the threads, the last one to warm up with.
        let streams = w.streams(&cfg, data.len(), 5);
        let sizing = Sizing {
            entries: cfg.capacity,
            bound: Some(cfg.capacity),
        };
        let name = format!("cache_aside/{size}B");
        let case = Case {
            name,
            w,
            data: &data,
            streams: &streams,
            sizing,
            prefill: false,
        };
        group(c, case, &suite.threads);
    }
}

/// Atomic read-modify-writes of one key, Zipf over the prefilled keys: each system's own
/// (epochcache's `compute`, moka's `and_compute_with`, papaya's `compute`, ...), for the systems
/// that have one. Last, as in the comparison command: it leaves the values it wrote.
fn updates(c: &mut Criterion, suite: &Suite) {
    for size in VALUE_SIZES {
        let cfg = suite.sized(size);
        let data = DataSet::generate(0, cfg.keys, size);
        let w = Workload::Update;
        let most_threads = suite.threads.iter().copied().max().unwrap_or(1);
        let streams = w.streams(&cfg, data.len(), most_threads);
        let sizing = Sizing {
            entries: data.len(),
            bound: None,
        };
        let case = Case {
            name: format!("update/{size}B"),
            w,
            data: &data,
            streams: &streams,
            sizing,
            prefill: true,
        };
        group(c, case, &suite.threads);
    }
}

fn main() {
    let suite = Suite::new();
    let mut c = suite.criterion();
    gets(&mut c, &suite);
    sets(&mut c, &suite);
    mixed(&mut c, &suite);
    updates(&mut c, &suite);
    c.final_summary();
}
