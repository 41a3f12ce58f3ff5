//! `epochcache-bench`: the main job. Runs epochcache and its peers on the same workloads, in one
//! process, and prints a table of ops/s, the ratio of each system to epochcache and the hit ratio
//! where it applies; then latency percentiles and memory per entry.
//!
//! ```sh
//! cargo run --release --bin epochcache-bench                    # about a minute on 2 cores
//! cargo run --release --bin epochcache-bench -- --quick         # about 30 s, a smoke test
//! cargo run --release --bin epochcache-bench -- --help
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use epochcache_bench::memory::CountingAlloc;
use epochcache_bench::report::{latency_table, memory_table, throughput_table, Report};
use epochcache_bench::suite::{self, Options};
use epochcache_bench::systems::SCC_SMALLEST_BOUND;
use epochcache_bench::trace::Trace;
use epochcache_bench::{chart, merge, Config, System, Workload};
use indicatif::{ProgressBar, ProgressStyle};

/// The most threads a measurement runs: each has its own stream (4 MiB by default) and a copy of
/// a trace's, and the system refuses to spawn some thousands.
const MAX_THREADS: usize = 1024;

/// Parses a thread count of 1 to [`MAX_THREADS`].
/// The longest `--duration` taken: a day.
const MAX_DURATION: Duration = Duration::from_secs(86_400);

fn thread_count() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=MAX_THREADS as u64)
}

/// The flags of a run, which --median-of (no run) refuses.
const RUN_FLAGS: [&str; 11] = [
    "threads",
    "duration",
    "repeat",
    "rotate",
    "workloads",
    "systems",
    "keys",
    "capacity",
    "value_size",
    "trace",
    "quick",
];

/// Parses a count of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Counts live heap bytes, for the memory workload.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Compare epochcache with moka, quick_cache, papaya, dashmap and scc on the same workloads.
///
/// Prints, per workload and thread count, each system's ops/s, its ratio to epochcache
/// (above 1: the peer is faster) and the hit ratio where one applies; then get and set latency
/// under a concurrent writer, and heap bytes per entry.
#[derive(Parser, Debug)]
#[command(name = "epochcache-bench", version, about, long_about)]
struct Args {
    /// Thread counts of the throughput workloads (1 to 1024).
    #[arg(short, long, value_delimiter = ',', default_value = "1,2", value_parser = thread_count())]
    threads: Vec<usize>,

    /// Seconds each measurement runs (per system, workload and thread count).
    #[arg(short, long, default_value_t = 0.4)]
    duration: f64,

    /// Repeat each throughput measurement this many times and keep the median (for noisy
    /// machines; the run takes about that many times longer).
    #[arg(short, long, default_value_t = 1, value_parser = at_least_one)]
    repeat: usize,

    /// Which system runs first in each round of a throughput measurement (0: epochcache); each
    /// repeat starts one system later. The three-run sets give each run its own, so that no
    /// system always finds the heap and the CPU in the state the same neighbour leaves behind.
    #[arg(long, default_value_t = 0)]
    rotate: usize,

    /// Workloads to run [default: every one but hot-read, miss, iterate, update and trace; trace too with --trace].
    #[arg(short, long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,

    /// Systems to run (epochcache is always added, first: the ratios are against it).
    #[arg(short, long, value_enum, value_delimiter = ',')]
    systems: Vec<System>,

    /// Keys in the data set and the key space of cache-aside.
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,

    /// Bound, in entries, of the eviction workloads (cache-aside, trace). A power of two, since
    /// scc's `HashCache` rounds its bound up to one: any other bound gives scc more room than the
    /// others.
    #[arg(short, long, default_value_t = 131_072)]
    capacity: usize,

    /// Bytes per value (64 and 4096 are the usual ones; at most 1,073,741, a thousandth of
    /// 1 GiB). Large values shrink the data set to 1 GiB of values.
    #[arg(short = 'v', long, default_value_t = 64)]
    value_size: usize,

    /// A trace file (one key per line, the first field) to replay cache-aside.
    #[arg(long)]
    trace: Option<PathBuf>,

    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Draw the throughput results as a bar chart to this SVG file.
    #[arg(long)]
    chart: Option<PathBuf>,

    /// A smoke test: 0.05 s per measurement, a data set of 100,000 keys, a bound of 16,384
    /// entries for the eviction workloads, and shorter streams. The memory table still builds
    /// every system at 1M entries (its figures are per entry at that size), which takes most of
    /// the about 30 s.
    #[arg(long)]
    quick: bool,

    /// Run nothing: read these JSON results (of earlier runs with --json) and print the medians,
    /// row by row, with each ratio's lowest and highest value.
    #[arg(long, num_args = 1.., value_name = "FILE", conflicts_with_all = RUN_FLAGS)]
    median_of: Vec<PathBuf>,

    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("epochcache-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    // Checked before the run, which takes minutes, rather than after it.
    if let Some(path) = &args.json {
        chart::check_output(path)?;
    }
    if let Some(path) = &args.chart {
        chart::check_path(path)?;
    }
    let (report, how) = if args.median_of.is_empty() {
        let opts = options(&args)?;
        if args.chart.is_some()
            && !opts
                .workloads
                .iter()
                .any(|w| !matches!(w, Workload::Latency | Workload::Memory))
        {
            return Err("--chart draws the throughput workloads, and none is selected".into());
        }
        // Created now, so that a file that cannot be written is found before the run.
        create_outputs(&args)?;
        let bar = progress_bar(opts.steps(), args.no_progress);
        let report = suite::run(&opts, &|what| {
            bar.set_message(what.to_string());
            bar.inc(1);
        });
        bar.finish_and_clear();
        (report?, format!("median of {}", opts.repeat.max(1)))
    } else {
        let reports = args
            .median_of
            .iter()
            .map(|p| {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
            })
            .collect::<Result<Vec<Report>, String>>()?;
        // After the inputs are read: the output may be one of them.
        create_outputs(&args)?;
        let report = merge::medians(&reports)?;
        (report, format!("medians of {} runs", reports.len()))
    };
    // The files are written before anything is printed, so that a reader that stops early
    // (`| head`) loses none of them.
    let mut text = report_text(&report, &how);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.chart {
        chart::draw(&report, path)?;
    }
    let _ = writeln!(
        text,
        "\nfinished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        let _ = writeln!(text, "results written to {}", path.display());
    }
    if let Some(path) = &args.chart {
        let _ = writeln!(text, "chart drawn to {}", path.display());
    }
    epochcache_bench::print_stdout(&text)
}

/// Checks that the --json and --chart files can be written, so that a path that cannot be is
/// refused before the run rather than after it (without emptying a file an earlier run left).
fn create_outputs(args: &Args) -> Result<(), String> {
    for path in args.json.iter().chain(&args.chart) {
        epochcache_bench::check_writable(path)?;
    }
    Ok(())
}

/// The report's header, legend and tables.
fn report_text(report: &Report, how: &str) -> String {
    let m = &report.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "epochcache-bench: {} ({} hardware threads, {}), {} s per measurement ({how}), \
         values of {} B",
        m.cpu, m.threads, m.os, report.seconds_per_measurement, report.config.value_size
    );
    out.push_str(
        "x epochcache = the system's ops/s / epochcache's (above 1: the system is faster)\n",
    );
    let mut systems: Vec<System> = report.throughput.iter().map(|r| r.system).collect();
    systems.extend(report.latency.iter().map(|r| r.system));
    systems.extend(report.memory.iter().map(|r| r.system));
    for s in System::ALL.into_iter().filter(|s| systems.contains(s)) {
        let _ = writeln!(out, "  {:<24} {}", s.name(), s.note());
    }
    out.push_str(&throughput_table(report));
    out.push_str(&latency_table(report));
    out.push_str(&memory_table(report));
    out
}

/// Turns the command line into what the suite runs.
fn options(args: &Args) -> Result<Options, String> {
    let mut config = Config {
        keys: args.keys,
        capacity: args.capacity,
        value_size: args.value_size,
        ..Config::default()
    };
    let mut duration = args.duration;
    if args.quick {
        duration = 0.05;
        config.keys = config.keys.min(100_000);
        config.capacity = config.capacity.min(1 << 14);
        config.inserts = 50_000;
        config.stream_len = 1 << 16;
    }
    // At least 1,000 keys, so values of up to 1 MiB keep the data set at 1 GiB; larger values
    // would need more than that, and are refused rather than allocated.
    const DATA_SET: usize = 1 << 30;
    const MIN_KEYS: usize = 1_000;
    if args.value_size > DATA_SET / MIN_KEYS {
        return Err(format!(
            "values of {} B are over the largest measured ({} B: 1 GiB over {MIN_KEYS} keys)",
            args.value_size,
            DATA_SET / MIN_KEYS
        ));
    }
    let max_keys = (DATA_SET / args.value_size.max(1)).max(MIN_KEYS);
    if config.keys > max_keys {
        eprintln!(
            "note: {} B values: the data set is cut to {max_keys} keys (1 GiB of values)",
            args.value_size
        );
        config.keys = max_keys;
        config.inserts = config.inserts.min(max_keys);
    }
    if args.threads.is_empty()
        || args.threads.contains(&0)
        || !duration.is_finite()
        || duration <= 0.0
    {
        return Err("threads must be positive and the duration above 0".into());
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if let Some(&most) = args.threads.iter().max().filter(|&&t| t > cores) {
        eprintln!(
            "note: {most} threads on {cores} hardware threads: the threads take turns on the \
             cores, so the figures measure the systems under preemption, not more parallelism"
        );
    }
    if config.keys == 0 || config.capacity == 0 || config.keys > u32::MAX as usize / 4 {
        return Err("keys and capacity must be positive (and keys below 2^30)".into());
    }
    if config.capacity < SCC_SMALLEST_BOUND {
        eprintln!(
            "note: scc's HashCache keeps at least {SCC_SMALLEST_BOUND} entries, so in the eviction \
             workloads it has more room than the others (bound {})",
            config.capacity
        );
    } else if !config.capacity.is_power_of_two() {
        eprintln!(
            "note: scc's HashCache rounds its bound up to a power of two ({}), so in the eviction \
             workloads it has more room than the others",
            config.capacity.next_power_of_two()
        );
    }
    // Refused before the file is read, which can take a while.
    if args.trace.is_some()
        && !args.workloads.is_empty()
        && !args.workloads.contains(&Workload::Trace)
    {
        return Err("--trace is replayed by the trace workload, which -w does not select".into());
    }
    let trace = match &args.trace {
        Some(p) => {
            Some(Trace::load(p, args.value_size).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let mut workloads = first_of_each(&args.workloads);
    if workloads.is_empty() {
        workloads = Workload::DEFAULT.to_vec();
        if trace.is_some() {
            workloads.insert(workloads.len() - 2, Workload::Trace);
        }
    }
    if workloads.contains(&Workload::Trace) && trace.is_none() {
        return Err("the trace workload needs --trace FILE".into());
    }
    let mut systems = if args.systems.is_empty() {
        System::defaults()
    } else {
        first_of_each(&args.systems)
    };
    systems.retain(|&s| s != System::Epochcache);
    systems.insert(0, System::Epochcache);
    let duration =
        Duration::try_from_secs_f64(duration).map_err(|e| format!("--duration {duration}: {e}"))?;
    // A deadline is the start plus the duration, which an `Instant` may not hold for much more.
    if duration > MAX_DURATION {
        return Err(format!(
            "--duration {}: at most {} s (a day)",
            duration.as_secs_f64(),
            MAX_DURATION.as_secs()
        ));
    }
    Ok(Options {
        systems,
        workloads,
        threads: first_of_each(&args.threads),
        duration,
        repeat: args.repeat,
        rotate: args.rotate,
        config,
        trace,
    })
}

/// `items` without repeats, each where it first appears.
fn first_of_each<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for &x in items {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

fn progress_bar(steps: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("epochcache-bench").chain(args.iter().copied()))
    }

    #[test]
    fn thread_counts_are_one_to_the_cap() {
        assert!(parse(&["-t", "0"]).is_err());
        assert!(parse(&["-t", "5000"]).is_err());
        assert_eq!(parse(&["-t", "1,1024"]).unwrap().threads, [1, MAX_THREADS]);
    }

    #[test]
    fn counts_of_zero_are_refused() {
        assert!(parse(&["--repeat", "0"]).is_err());
        assert_eq!(parse(&["--repeat", "3"]).unwrap().repeat, 3);
    }

    #[test]
    fn median_of_refuses_the_flags_of_a_run() {
        assert!(parse(&["--median-of", "a.json", "-t", "2"]).is_err());
        assert!(parse(&["--median-of", "a.json", "--quick"]).is_err());
        assert!(parse(&["--median-of", "a.json", "b.json", "--json", "m.json"]).is_ok());
    }

    #[test]
    fn repeats_run_once_in_the_order_given() {
        let args = parse(&["-t", "2,1,2", "-w", "get,hot-get,get", "-s", "moka,moka"]).unwrap();
        let opts = options(&args).unwrap();
        assert_eq!(opts.threads, [2, 1]);
        assert_eq!(opts.workloads, [Workload::Get, Workload::HotGet]);
        assert_eq!(opts.systems, [System::Epochcache, System::Moka]);
    }

    #[test]
    fn a_trace_needs_the_trace_workload_selected() {
        let file = std::env::temp_dir().join(format!("bench-trace-{}.txt", std::process::id()));
        std::fs::write(&file, "a\nb\na\n").unwrap();
        let path = file.to_str().unwrap();
        let refused = options(&parse(&["--trace", path, "-w", "get"]).unwrap());
        let taken = options(&parse(&["--trace", path, "-w", "trace"]).unwrap());
        let default = options(&parse(&["--trace", path]).unwrap());
        std::fs::remove_file(&file).unwrap();
        assert!(refused.is_err());
        assert_eq!(taken.unwrap().workloads, [Workload::Trace]);
        assert!(default.unwrap().workloads.contains(&Workload::Trace));
    }
}
