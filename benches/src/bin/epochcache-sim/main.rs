//! `epochcache-sim`: the hit-ratio simulator. Replays trace files or synthetic workloads
//! cache-aside against epochcache, moka, quick_cache, the published policies ARC, S3-FIFO and
//! LIRS, an LRU and Belady's optimum at one or several cache sizes, and prints one Markdown
//! table: each system's hit ratio, the best of moka and quick_cache, epochcache's distance to it
//! and to the optimum, and the best published policy and epochcache's distance to it.
//!
//! ```sh
//! cargo run --release --bin epochcache-sim -- --all               # the standard suite
//! cargo run --release --bin epochcache-sim -- --trace ../shared/traces/lirs-sprite.txt \
//!     --sizes 100,250,500,1000,2500 --chart hitratio-lirs-sprite.svg
//! cargo run --release --bin epochcache-sim -- --workload zipf:0.9 --sizes 10000,100000
//! ```
//!
//! # Modules
//!
//! - `workload`: trace files and the synthetic generators (Zipf, scan-polluted Zipf, loop).
//! - `systems`: the caches and the cache-aside replay.
//! - `arc`, `s3fifo`, `lirs`: the published policies ARC, S3-FIFO and LIRS, written from their
//!   papers and simulated on the keys directly; `recency`: the recency-ordered set ARC and LIRS
//!   are built on.
//! - `opt`: Belady's optimum and the LRU baseline, simulated on the keys directly.
//! - `report`: rows, the table and the JSON report.
//! - `chart`: the hit-ratio curve as SVG.
//!
//! epochcache, moka and quick_cache hash keys into their sketches and ghosts, so each is replayed
//! with several fixed hasher seeds (`--hasher-seeds`, 8 unless told) and the table gives the
//! mean, with a line on how the rows fare seed by seed; the simulated policies run once.
//!
//! Only hit ratios are measured; nothing here is timed.

mod arc;
mod chart;
mod lirs;
mod opt;
mod recency;
mod replay;
mod report;
mod s3fifo;
mod systems;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use report::{Machine, Report, Row};
use systems::{Outcome, ReplayOptions, System};
use workload::{Defaults, Spec};

/// Replay traces or synthetic workloads against epochcache and its peers and compare hit ratios.
///
/// Each request is a `get`, and on a miss an `insert` (cache-aside), single-threaded, so a run is
/// repeatable. Prints, per workload and cache size, each system's hit ratio in percent, the best
/// of moka and quick_cache, epochcache minus that best peer, and Belady's optimum minus
/// epochcache (in points), and the best of the published policies ARC, S3-FIFO and LIRS with
/// epochcache's distance to it; rows where epochcache is more than 0.5 points below the best
/// peer are marked.
#[derive(Parser, Debug)]
#[command(name = "epochcache-sim", version, about, long_about)]
struct Args {
    /// The standard suite: every trace in --traces-dir at its telling size (from the README.md
    /// there; 500 and 1,000 for a trace it does not name), then Zipf 0.7, 0.9
    /// and 1.1 over 1M keys at 10k and 100k entries, a scan-polluted Zipf hot set and two loops
    /// 10% larger than the cache.
    #[arg(long)]
    all: bool,

    /// A trace file to replay (one unsigned integer key a line); may be repeated.
    #[arg(short, long)]
    trace: Vec<PathBuf>,

    /// A synthetic workload: zipf:S, scan, scan:PERIOD:BURST or loop:N; may be repeated.
    #[arg(short, long)]
    workload: Vec<String>,

    /// Cache sizes in entries, for --trace and --workload (--all has its own) [default for a
    /// trace: its telling size, from the README.md beside it].
    #[arg(short, long, value_delimiter = ',')]
    sizes: Vec<usize>,

    /// Key space of zipf:S and scan (the hot set).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,

    /// Requests of a synthetic workload.
    #[arg(long, default_value_t = 2_000_000)]
    accesses: usize,

    /// Seed of the synthetic workloads.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Systems to replay against [default: all of them].
    #[arg(long, value_enum, value_delimiter = ',')]
    systems: Vec<System>,

    /// Where --all finds the trace files (`*.txt`).
    #[arg(long, default_value = "../shared/traces")]
    traces_dir: PathBuf,

    /// epochcache's shard count [default: the builder's default for this machine].
    #[arg(long)]
    shards: Option<usize>,

    /// Run moka's pending tasks after every insert (1), every N requests, or never (0: moka
    /// decides).
    #[arg(long, default_value_t = 1)]
    moka_pending: usize,

    /// Replay epochcache, moka and quick_cache with this many fixed hasher seeds each and give
    /// their mean: where keys collide in a cache's sketch depends on the seed, and on a short
    /// trace one seed moves a hit ratio by 2 points or more. 1 replays with the first seed only.
    #[arg(long, default_value_t = DEFAULT_HASHER_SEEDS, value_parser = at_least_one_u64)]
    hasher_seeds: u64,

    /// Draw the hit-ratio curve (hit ratio against cache size, one line per system) to this SVG
    /// file; with several workloads, one file each, named after the workload.
    #[arg(long)]
    chart: Option<PathBuf>,

    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Replays run at once [default: the available cores].
    #[arg(short, long, value_parser = at_least_one)]
    jobs: Option<usize>,

    /// Exit with status 2 when epochcache is more than 0.5 points below the best peer on any
    /// row (after printing everything).
    #[arg(long)]
    strict: bool,
}

/// How many hasher seeds a row is replayed with unless `--hasher-seeds` says otherwise. Over 20
/// seeds moka's hit ratio on lirs-ps at 500 entries spread from 55.80 to 57.88 (the first seed
/// gave 57.88, its best) with a standard deviation of 0.52, so the mean of eight has a standard
/// error of about 0.2; `--all` takes four to five times as long as with one (about 4 minutes on
/// two cores: the simulated policies run once).
const DEFAULT_HASHER_SEEDS: u64 = 8;

/// The most requests a synthetic workload makes.
const MAX_ACCESSES: usize = 1_000_000_000;

/// Parses a count of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses a count of at least 1, as a `u64`.
fn at_least_one_u64(text: &str) -> Result<u64, String> {
    at_least_one(text).map(|n| n as u64)
}

/// A workload with its keys, made once, and the sizes to replay it at.
struct Job {
    /// The workload's name in the table.
    name: String,
    /// The requests.
    keys: Vec<u64>,
    /// The next request of the same key, per position (for OPT; empty without OPT).
    next: Vec<usize>,
    /// Distinct keys requested.
    distinct: usize,
    /// Cache sizes, in entries.
    sizes: Vec<usize>,
}

/// One replay: a job, a size and a system.
#[derive(Clone, Copy)]
struct Task {
    /// Index into the jobs.
    job: usize,
    /// The cache size.
    size: usize,
    /// The system.
    system: System,
    /// The hasher's index (see [`systems::hasher`]).
    hasher: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(below) if below > 0 && args.strict => ExitCode::from(2),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("epochcache-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the jobs, replays them, prints the table and writes the chart and JSON asked for;
/// returns the number of rows where epochcache is below the best peer by more than the
/// tolerance.
fn run(args: &Args) -> Result<usize, String> {
    let systems = if args.systems.is_empty() {
        System::ALL.to_vec()
    } else {
        System::ALL
            .into_iter()
            .filter(|s| args.systems.contains(s))
            .collect()
    };
    // Checked before the replay, which takes a while, rather than after it.
    if let Some(path) = &args.chart {
        chart::check_path(path)?;
        epochcache_bench::chart::check_output(path)?;
    }
    if let Some(path) = &args.json {
        epochcache_bench::chart::check_output(path)?;
    }
    let specs = specs(args)?;
    let jobs = make_jobs(&specs, args.seed, systems.contains(&System::Opt))?;
    // Checked now, so that a file that cannot be written is found before the replay.
    let charts: Vec<PathBuf> = match &args.chart {
        Some(path) => jobs
            .iter()
            .map(|job| chart_file(&jobs, job, path))
            .collect(),
        None => Vec::new(),
    };
    for path in args.json.iter().chain(&charts) {
        epochcache_bench::check_writable(path)?;
    }
    let opts = ReplayOptions {
        shards: args.shards,
        moka_pending: args.moka_pending,
        hasher: 0,
    };
    let threads = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rows = replay_all(&jobs, &systems, &opts, args.hasher_seeds, threads);
    let report = Report {
        machine: Machine::current(),
        shards: args.shards,
        moka_pending: args.moka_pending,
        seed: args.seed,
        hasher_seeds: args.hasher_seeds,
        rows,
    };
    // The files are written before anything is printed, so that a reader that stops early
    // (`| head`) loses none of them.
    if args.chart.is_some() {
        draw_charts(&jobs, &report.rows, &charts)?;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    let mut text = report::table(&report.rows);
    text += &format!("\n{}\n", report::summary(&report.rows));
    if let Some(line) = report::per_seed_summary(&report.rows, args.hasher_seeds) {
        text += &format!("{line}\n");
    }
    if let Some(line) = report::published_summary(&report.rows) {
        text += &format!("{line}\n");
    }
    epochcache_bench::print_stdout(&text)?;
    Ok(report.rows.iter().filter(|r| r.below_peer).count())
}

/// The workloads the arguments name, each with its sizes.
fn specs(args: &Args) -> Result<Vec<(Spec, Vec<usize>)>, String> {
    let defaults = Defaults {
        keys: args.keys,
        accesses: args.accesses,
    };
    if args.sizes.contains(&0) {
        return Err("--sizes: a cache holds at least one entry".into());
    }
    if args.keys == 0 || args.accesses == 0 {
        return Err(
            "--keys and --accesses: a synthetic workload needs at least one of each".into(),
        );
    }
    if args.accesses > MAX_ACCESSES {
        return Err(format!(
            "--accesses {}: at most {MAX_ACCESSES} (8 bytes a request, 16 with OPT, all in memory)",
            args.accesses
        ));
    }
    let mut specs = Vec::new();
    if args.all {
        for path in trace_files(&args.traces_dir)? {
            let sizes = match workload::telling_size(&path) {
                Some(size) => vec![size],
                None => vec![500, 1_000],
            };
            specs.push((Spec::Trace(path), sizes));
        }
        specs.extend(workload::standard_synthetic());
    }
    for path in &args.trace {
        let sizes = match (&args.sizes[..], workload::telling_size(path)) {
            ([], Some(size)) => vec![size],
            ([], None) => return Err(format!("{}: give --sizes", path.display())),
            (sizes, _) => sizes.to_vec(),
        };
        specs.push((Spec::Trace(path.clone()), sizes));
    }
    for text in &args.workload {
        if args.sizes.is_empty() {
            return Err(format!("{text}: give --sizes"));
        }
        specs.push((Spec::parse(text, defaults)?, args.sizes.clone()));
    }
    if specs.is_empty() {
        return Err("nothing to replay: give --all, --trace FILE or --workload SPEC".into());
    }
    Ok(specs)
}

/// The `*.txt` files of `dir`, sorted; `dir` may also be found relative to this package's
/// directory's parent, so the default works from the workspace root or from `benches/`.
fn trace_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let dir = if dir.is_dir() || dir.is_absolute() {
        dir.to_path_buf()
    } else {
        fallback
    };
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no *.txt trace files", dir.display()));
    }
    Ok(files)
}

/// Makes each workload's keys (and next uses, for OPT).
fn make_jobs(specs: &[(Spec, Vec<usize>)], seed: u64, opt: bool) -> Result<Vec<Job>, String> {
    let mut jobs = Vec::with_capacity(specs.len());
    for (spec, sizes) in specs {
        let keys = spec.keys(seed).map_err(|e| e.to_string())?;
        let next = if opt {
            opt::next_uses(&keys)
        } else {
            Vec::new()
        };
        let distinct = if opt {
            next.iter().filter(|&&n| n == usize::MAX).count()
        } else {
            keys.iter().collect::<std::collections::HashSet<_>>().len()
        };
        let mut sizes = sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        jobs.push(Job {
            name: spec.to_string(),
            keys,
            next,
            distinct,
            sizes,
        });
    }
    Ok(jobs)
}

/// Replays every job at every size on every system (with `hasher_seeds` hashers each where the
/// system hashes keys), `threads` replays at a time, the costliest first; returns one row per job
/// and size, in the jobs' order.
fn replay_all(
    jobs: &[Job],
    systems: &[System],
    opts: &ReplayOptions,
    hasher_seeds: u64,
    threads: usize,
) -> Vec<Row> {
    let tasks = tasks(jobs, systems, hasher_seeds);
    let total: u64 = tasks.iter().map(|t| jobs[t.job].keys.len() as u64).sum();
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent}% {msg}")
            .expect("a valid template"),
    );
    let next_task = AtomicUsize::new(0);
    let results: Mutex<Vec<(Task, Outcome)>> = Mutex::new(Vec::with_capacity(tasks.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.min(tasks.len()) {
            scope.spawn(|| {
                while let Some(&task) = tasks.get(next_task.fetch_add(1, Ordering::Relaxed)) {
                    let job = &jobs[task.job];
                    let what = format!("{} @ {} {}", job.name, task.size, task.system.name());
                    bar.set_message(what);
                    let progress = |n: u64| bar.inc(n);
                    let (keys, next) = (&job.keys, &job.next);
                    let opts = ReplayOptions {
                        hasher: task.hasher,
                        ..*opts
                    };
                    let out =
                        systems::replay_on(task.system, keys, next, task.size, &opts, &progress);
                    results.lock().expect("no replay panics").push((task, out));
                }
            });
        }
    });
    bar.finish_and_clear();
    rows_from(jobs, results.into_inner().expect("no replay panics"))
}

/// One row per job and size, in the jobs' order, from the replays' outcomes in any order (the
/// threads finish them as they come).
fn rows_from(jobs: &[Job], mut results: Vec<(Task, Outcome)>) -> Vec<Row> {
    // Each system's replays in the hashers' order, so that a row pairs them seed by seed.
    results.sort_by_key(|(t, _)| t.hasher);
    let mut rows = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for &size in &job.sizes {
            let outcomes: Vec<(System, Outcome)> = results
                .iter()
                .filter(|(t, _)| t.job == j && t.size == size)
                .map(|(t, h)| (t.system, *h))
                .collect();
            let name = job.name.clone();
            rows.push(Row::new(
                name,
                size,
                job.keys.len(),
                job.distinct,
                &outcomes,
            ));
        }
    }
    rows
}

/// Every replay to run, the costliest first (so that no thread is left with a long one at the
/// end): one per job, size and system, and `hasher_seeds` of them where the system hashes keys.
fn tasks(jobs: &[Job], systems: &[System], hasher_seeds: u64) -> Vec<Task> {
    let mut tasks: Vec<Task> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for &size in &job.sizes {
            for &system in systems {
                let hashers = if system.hashes_keys() {
                    hasher_seeds
                } else {
                    1
                };
                tasks.extend((0..hashers).map(|hasher| Task {
                    job: j,
                    size,
                    system,
                    hasher,
                }));
            }
        }
    }
    let cost = |t: &Task| jobs[t.job].keys.len() as u64 * u64::from(t.system.cost());
    tasks.sort_by_key(|t| std::cmp::Reverse(cost(t)));
    tasks
}

/// The chart file of `job`: `path` when there is one job, else `path`'s stem followed by the
/// workload's name.
fn chart_file(jobs: &[Job], job: &Job, path: &Path) -> PathBuf {
    if jobs.len() == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("chart");
    let slug: String = job
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    path.with_file_name(format!("{stem}-{slug}.svg"))
}

/// Draws one chart per job, to `files` (one per job, from [`chart_file`]).
fn draw_charts(jobs: &[Job], rows: &[Row], files: &[PathBuf]) -> Result<(), String> {
    for (job, file) in jobs.iter().zip(files) {
        let mine: Vec<Row> = rows
            .iter()
            .filter(|r| r.workload == job.name)
            .cloned()
            .collect();
        let title = format!(
            "{}: hit ratio by cache size ({} requests)",
            job.name,
            report::thousands(job.keys.len() as u64)
        );
        chart::draw(&mine, &title, file)?;
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every system that hashes keys is replayed once per hasher and the others once; whatever
    /// order the replays finish in, a row holds each system's results in the hashers' order.
    #[test]
    fn rows_pair_each_systems_replays_by_hasher_in_any_order_of_finishing() {
        let job = Job {
            name: "w".into(),
            keys: vec![0; 100],
            next: Vec::new(),
            distinct: 1,
            sizes: vec![10],
        };
        let systems = [System::Epochcache, System::Moka, System::Opt];
        let jobs = [job];
        let tasks = tasks(&jobs, &systems, 3);
        assert_eq!(tasks.len(), 3 + 3 + 1);
        // Hits that say which hasher ran: 10 + hasher for epochcache, 20 + hasher for moka.
        let mut results: Vec<(Task, Outcome)> = tasks
            .iter()
            .map(|&t| {
                let base = match t.system {
                    System::Epochcache => 10,
                    System::Moka => 20,
                    _ => 50,
                };
                let hits = base + t.hasher;
                (t, Outcome { hits, peak: None })
            })
            .collect();
        results.reverse();
        results.swap(0, 4);
        let rows = rows_from(&jobs, results);
        assert_eq!(rows.len(), 1);
        let pcts = |s| rows[0].cells.iter().find(|c| c.system == s).unwrap();
        assert_eq!(pcts(System::Epochcache).per_seed_pct, [10.0, 11.0, 12.0]);
        assert_eq!(pcts(System::Moka).per_seed_pct, [20.0, 21.0, 22.0]);
        assert_eq!(pcts(System::Opt).per_seed_pct, [50.0]);
        assert_eq!(rows[0].per_seed_vs_best_peer, [-10.0, -10.0, -10.0]);
    }
}
