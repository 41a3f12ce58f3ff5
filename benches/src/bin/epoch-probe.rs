//! What crossbeam-epoch itself costs as threads are added, with no cache around it: the floor
//! under epochcache's per-operation reads (one pin each) and replacing writes (one pin and one
//! retired entry each, the thread's garbage flushed every few retirements).
//!
//! Each line is one loop run for a fixed time on every thread at once; the figures are total
//! and per-thread operations per second. A loop that scales stays level per thread; one that
//! meets a shared line falls as threads are added.
//!
//! The last three loops put the same lookup under each way of protecting it: a `get` of a hot
//! set of 1,000 string keys (17 to 37 bytes) in a `std` `HashMap` of 64-byte `Bytes`, whose
//! value is cloned out and dropped, as the hot-get workload does, bare, under a pin (what
//! epochcache pays) and under a `parking_lot` read lock (what quick_cache pays). The lookup is
//! the same in all three and shorter than either cache's (no entry behind the slot), so the
//! read lock's figure over the pin's is the most a pinned cache can gain over a read-locked one
//! from the protection alone: the ceiling on the engine issue's hot-get ratio.
//!
//! ```text
//! cargo run --release -p epochcache-bench --bin epoch-probe -- -t 1,2,4,8,16
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use crossbeam_epoch as epoch;

#[derive(Parser)]
#[command(about = "Measure crossbeam-epoch's pin and retire costs from 1 to N threads")]
struct Args {
    /// Thread counts to run each loop on (1 to 1024).
    #[arg(short, long, value_delimiter = ',', default_values_t = [1, 2, 4, 8, 16],
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    threads: Vec<usize>,
    /// Seconds each loop runs per thread count.
    #[arg(short, long, default_value_t = 0.3)]
    duration: f64,
    /// Rounds of every line, one line after another in each round; each line prints its median
    /// over the rounds (with its lowest and highest), so that a noisy machine's drift falls on
    /// every line alike.
    #[arg(short, long, default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    rounds: usize,
    /// Only the three hot-map loops, and for each thread count their ratios round by round.
    #[arg(long)]
    hot_map: bool,
}

/// The loops measured; each iteration is one "operation".
#[derive(Clone, Copy, PartialEq)]
enum Probe {
    /// A pin and an unpin: what every `get` pays.
    Pin,
    /// Nested pins inside one outer pin held for 64 of them: at most what a batch (`cache.pin()`)
    /// pays, whose reads reuse the outer guard without even the nested pin's thread-local lookup.
    PinNested,
    /// A heap block allocated and freed at once: the allocator alone.
    AllocFree,
    /// A pin and a heap block retired to the collector, in crossbeam's own bags of 64.
    Retire,
    /// As `Retire`, with the thread's bag flushed every 4 retirements (epochcache's pacing).
    RetireFlush4,
    /// As `Retire`, flushed every 16.
    RetireFlush16,
    /// A hot-set `get` of a `HashMap`, its `Bytes` cloned and dropped, unprotected.
    HotMapBare,
    /// The same under a pin and an unpin.
    HotMapPinned,
    /// The same under a `parking_lot` read lock.
    HotMapReadLocked,
}

impl Probe {
    const ALL: [Probe; 9] = [
        Probe::Pin,
        Probe::PinNested,
        Probe::AllocFree,
        Probe::Retire,
        Probe::RetireFlush4,
        Probe::RetireFlush16,
        Probe::HotMapBare,
        Probe::HotMapPinned,
        Probe::HotMapReadLocked,
    ];

    fn name(self) -> &'static str {
        match self {
            Probe::Pin => "pin per op",
            Probe::PinNested => "pin nested in a 64-op pin",
            Probe::AllocFree => "malloc + free, no epoch",
            Probe::Retire => "pin + retire",
            Probe::RetireFlush4 => "pin + retire, flush every 4",
            Probe::RetireFlush16 => "pin + retire, flush every 16",
            Probe::HotMapBare => "hot map get + clone, unprotected",
            Probe::HotMapPinned => "hot map get + clone, pinned",
            Probe::HotMapReadLocked => "hot map get + clone, read-locked",
        }
    }

    /// Runs 64 operations; `n` counts operations so far on this thread.
    fn run_64(self, n: u64) {
        match self {
            Probe::Pin => {
                for _ in 0..64 {
                    black_box(&epoch::pin());
                }
            }
            Probe::PinNested => {
                let outer = epoch::pin();
                for _ in 0..64 {
                    black_box(&epoch::pin());
                }
                drop(outer);
            }
            Probe::AllocFree => {
                for i in 0..64 {
                    drop(black_box(Box::new([n + i; 12])));
                }
            }
            Probe::Retire | Probe::RetireFlush4 | Probe::RetireFlush16 => {
                let every = match self {
                    Probe::RetireFlush4 => 4,
                    Probe::RetireFlush16 => 16,
                    _ => u64::MAX,
                };
                for i in 0..64 {
                    let guard = epoch::pin();
                    let block = Box::new([n + i; 12]);
                    // The safe form of retiring: the block is freed when the collector runs.
                    guard.defer(move || drop(block));
                    if (n + i + 1) % every == 0 {
                        guard.flush();
                    }
                }
            }
            Probe::HotMapBare | Probe::HotMapPinned | Probe::HotMapReadLocked => {
                let hot = HotMap::get();
                for i in 0..64 {
                    // A cheap scramble of the operation's number picks the key, about uniformly
                    // over the hot set as the hot-get workload's pre-generated streams do, with no
                    // state shared between threads.
                    let at = ((n + i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize;
                    let key = hot.keys[at % hot.keys.len()].as_str();
                    let value = match self {
                        Probe::HotMapBare => hot.unprotected.get(key).cloned(),
                        Probe::HotMapPinned => {
                            let _guard = epoch::pin();
                            hot.unprotected.get(key).cloned()
                        }
                        _ => hot.map.read().get(key).cloned(),
                    };
                    drop(black_box(value));
                }
            }
        }
    }
}

/// The hot set the map loops read: 1,000 keys of 17 to 37 bytes to 64-byte values, in a map
/// read bare or under a pin, and the same behind a read-write lock.
struct HotMap {
    keys: Vec<String>,
    unprotected: HashMap<String, Bytes, ahash::RandomState>,
    map: parking_lot::RwLock<HashMap<String, Bytes, ahash::RandomState>>,
}

impl HotMap {
    fn get() -> &'static HotMap {
        static HOT: OnceLock<HotMap> = OnceLock::new();
        HOT.get_or_init(|| {
            let keys: Vec<String> = (0..1_000u64)
                .map(|i| {
                    let pad = "x".repeat((i % 21) as usize);
                    format!("key:{i:012}:{pad}")
                })
                .collect();
            let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
            let mut map = HashMap::with_hasher(hasher);
            for key in &keys {
                map.insert(key.clone(), Bytes::from(vec![7u8; 64]));
            }
            HotMap {
                keys,
                unprotected: map.clone(),
                map: parking_lot::RwLock::new(map),
            }
        })
    }
}

/// Total operations per second of `probe` on `threads` threads for `duration`, timed from the
/// moment every thread is ready.
fn measure(probe: Probe, threads: usize, duration: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, total, ready) = (Arc::clone(&stop), Arc::clone(&total), Arc::clone(&ready));
            std::thread::spawn(move || {
                ready.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    probe.run_64(n);
                    n += 64;
                }
                total.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("a probe thread panicked");
    }
    let rate = total.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    drain_collector();
    rate
}

/// For each thread count, the pinned and the bare loop's ops/s over the read-locked loop's in the
/// same round: the median over the rounds and the range.
fn print_hot_map_ratios(lines: &[(Probe, usize)], rates: &[Vec<f64>]) {
    let rates_of = |probe: Probe, threads: usize| {
        lines
            .iter()
            .position(|&line| line == (probe, threads))
            .map(|at| &rates[at])
    };
    for &(probe, threads) in lines {
        if !matches!(probe, Probe::HotMapBare | Probe::HotMapPinned) {
            continue;
        }
        let (Some(these), Some(locked)) = (
            rates_of(probe, threads),
            rates_of(Probe::HotMapReadLocked, threads),
        ) else {
            continue;
        };
        let mut ratios: Vec<f64> = these.iter().zip(locked).map(|(a, b)| a / b).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{:36} {threads:2} threads: {:.2}x read-locked, round by round (median of {}: {:.2}-{:.2})",
            probe.name(),
            ratios[ratios.len() / 2],
            ratios.len(),
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
}

/// Frees what the finished threads left in the collector's queue, so that the next line does
/// not pay for this one's garbage: each flush collects up to eight bags, and 16 threads leave
/// some 200,000 bags in 0.3 s (an empty round costs about a tenth of a microsecond).
fn drain_collector() {
    for _ in 0..100_000 {
        epoch::pin().flush();
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let duration = match Duration::try_from_secs_f64(args.duration) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            eprintln!(
                "epoch-probe: --duration {}: the duration must be above 0 and finite",
                args.duration
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "epoch-probe: {cores} hardware threads, {:.1} s per line",
        args.duration
    );
    // Built before the first line, so that no line's time includes it.
    HotMap::get();
    let probes: &[Probe] = if args.hot_map {
        &Probe::ALL[6..]
    } else {
        &Probe::ALL
    };
    let lines: Vec<(Probe, usize)> = probes
        .iter()
        .flat_map(|&probe| args.threads.iter().map(move |&threads| (probe, threads)))
        .collect();
    let mut rates = vec![Vec::with_capacity(args.rounds); lines.len()];
    for _ in 0..args.rounds {
        for (&(probe, threads), rates) in lines.iter().zip(&mut rates) {
            rates.push(measure(probe, threads, duration));
        }
    }
    if args.hot_map {
        print_hot_map_ratios(&lines, &rates);
    }
    for (&(probe, threads), rates) in lines.iter().zip(&mut rates) {
        rates.sort_by(f64::total_cmp);
        let rate = rates[rates.len() / 2];
        let range = if rates.len() > 1 {
            format!(
                " (median of {}: {:.1}-{:.1})",
                rates.len(),
                rates[0] / 1e6,
                rates[rates.len() - 1] / 1e6
            )
        } else {
            String::new()
        };
        println!(
            "{:36} {threads:2} threads: {:8.1} M ops/s total, {:6.1} M per thread{range}",
            probe.name(),
            rate / 1e6,
            rate / 1e6 / threads as f64
        );
    }
    std::process::ExitCode::SUCCESS
}
