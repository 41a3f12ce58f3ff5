//! The results of a comparison run, as data (for `--json`) and as plain-text tables.
//!
//! Ratios are always "this system's ops/s divided by epochcache's" in the same workload and
//! thread count: above 1 the peer is faster, below 1 epochcache is.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::latency::Latency;
use crate::memory::Footprint;
use crate::systems::System;
use crate::workload::{Config, Workload};

/// The machine a run happened on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model, from `/proc/cpuinfo` where there is one.
    pub cpu: String,
    /// Hardware threads available to the process.
    pub threads: usize,
    /// Operating system and architecture.
    pub os: String,
}

impl Machine {
    /// The machine this process runs on.
    pub fn current() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// One system's throughput in one workload at one thread count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ThroughputRow {
    /// The workload.
    pub workload: Workload,
    /// Threads running it.
    pub threads: usize,
    /// The system.
    pub system: System,
    /// Operations per second, all threads together; `None` where the workload does not apply.
    pub ops_per_sec: Option<f64>,
    /// `ops_per_sec` divided by epochcache's in the same workload and thread count.
    pub vs_epochcache: Option<f64>,
    /// The lowest and highest ratio among the runs, when this row is a median of several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_epochcache_range: Option<[f64; 2]>,
    /// Fraction of gets that hit, where the workload has a hit ratio.
    pub hit_ratio: Option<f64>,
    /// Why there is no figure, where there is none.
    pub note: Option<String>,
}

/// One system's latency percentiles.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyRow {
    /// The system.
    pub system: System,
    /// Its percentiles.
    pub latency: Latency,
}

/// One system's memory figure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemoryRow {
    /// The system.
    pub system: System,
    /// Its footprint; `None` when it could not be measured.
    pub footprint: Option<Footprint>,
    /// Its footprint after twice as many distinct keys as its bound: a cache in steady state,
    /// with whatever history (ghosts, sketch) it keeps of what it evicted. Maps hold them all.
    #[serde(default)]
    pub steady: Option<Footprint>,
}

/// Everything a comparison run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The workload sizes.
    pub config: Config,
    /// Seconds each measurement ran.
    pub seconds_per_measurement: f64,
    /// Throughput rows, in the order they ran.
    pub throughput: Vec<ThroughputRow>,
    /// Latency rows.
    pub latency: Vec<LatencyRow>,
    /// Memory rows.
    pub memory: Vec<MemoryRow>,
    /// epochcache's engine without a bound (no eviction queues, sketch or ghosts), filled the
    /// same way: the figure to set beside the maps that never evict.
    #[serde(default)]
    pub memory_epochcache_map: Option<Footprint>,
    /// The same engine grown from empty rather than presized.
    #[serde(default)]
    pub memory_epochcache_grown: Option<Footprint>,
    /// epochcache bounded, after a churn that fills its ghosts (see
    /// [`epochcache_churned_footprint`](crate::memory::epochcache_churned_footprint)).
    #[serde(default)]
    pub memory_epochcache_churned: Option<Footprint>,
}

impl Report {
    /// A report of a run on this machine with `config`, each measurement lasting
    /// `seconds_per_measurement`, before anything is measured.
    pub fn new(config: Config, seconds_per_measurement: f64) -> Self {
        Report {
            machine: Machine::current(),
            config,
            seconds_per_measurement,
            throughput: Vec::new(),
            latency: Vec::new(),
            memory: Vec::new(),
            memory_epochcache_map: None,
            memory_epochcache_grown: None,
            memory_epochcache_churned: None,
        }
    }

    /// Fills in every row's ratio to epochcache in the same workload and thread count.
    pub fn compute_ratios(&mut self) {
        let rows = self.throughput.clone();
        for row in &mut self.throughput {
            let base = rows.iter().find(|r| {
                r.system == System::Epochcache
                    && r.workload == row.workload
                    && r.threads == row.threads
            });
            row.vs_epochcache = match (row.ops_per_sec, base.and_then(|b| b.ops_per_sec)) {
                (Some(x), Some(b)) if b > 0.0 => Some(x / b),
                _ => None,
            };
        }
    }
}

/// `x` with an SI suffix and three significant digits: `35.2 M`.
pub fn si(x: f64) -> String {
    let (v, unit) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, " G"),
        a if a >= 1e6 => (x / 1e6, " M"),
        a if a >= 1e3 => (x / 1e3, " k"),
        _ => (x, ""),
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{unit}")
}

/// The throughput table: one block per workload and thread count, one line per system.
pub fn throughput_table(report: &Report) -> String {
    let mut out = String::new();
    let mut last = None;
    // Wider when the ratios carry their range (a median of several runs).
    let ranged = report
        .throughput
        .iter()
        .any(|r| r.vs_epochcache_range.is_some());
    let rw = if ranged { 18 } else { 13 };
    for row in &report.throughput {
        if last != Some((row.workload, row.threads)) {
            last = Some((row.workload, row.threads));
            let t = if row.threads == 1 {
                "thread"
            } else {
                "threads"
            };
            let _ = writeln!(
                out,
                "\n{} ({}), {} {t}",
                row.workload.name(),
                row.workload.describe(&report.config),
                row.threads
            );
            let _ = writeln!(
                out,
                "  {:<24} {:>10} {:>rw$} {:>10}",
                "system", "ops/s", "x epochcache", "hit ratio"
            );
        }
        let ops = row.ops_per_sec.map_or("n/a".into(), si);
        let ratio = match (row.vs_epochcache, row.vs_epochcache_range) {
            (Some(r), Some([lo, hi])) => format!("{r:.2} ({lo:.2}-{hi:.2})"),
            (Some(r), None) => format!("{r:.2}"),
            (None, _) => String::new(),
        };
        let hit = row
            .hit_ratio
            .filter(|_| row.workload.has_hit_ratio())
            .map_or(String::new(), |h| format!("{:.1}%", 100.0 * h));
        let note = row
            .note
            .as_deref()
            .map_or(String::new(), |n| format!("  ({n})"));
        let line = format!(
            "  {:<24} {ops:>10} {ratio:>rw$} {hit:>10}{note}",
            row.system.name()
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The latency table, in nanoseconds.
pub fn latency_table(report: &Report) -> String {
    let mut out = String::new();
    if report.latency.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nlatency (ns) of one thread's Zipf gets and sets while another thread writes {} times \
         a second (\"writes/s\": what it managed)",
        crate::latency::WRITER_RATE
    );
    let _ = writeln!(
        out,
        "  {:<24} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "system", "get p50", "p99", "p99.9", "max", "set p50", "p99", "p99.9", "max", "writes/s"
    );
    for row in &report.latency {
        let (g, s) = (row.latency.get, row.latency.set);
        let writes = row.latency.writer_ops as f64 / report.seconds_per_measurement;
        let _ = writeln!(
            out,
            "  {:<24} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9}",
            row.system.name(),
            g.p50,
            g.p99,
            g.p999,
            g.max,
            s.p50,
            s.p99,
            s.p999,
            s.max,
            format!("{:.0} k", writes / 1e3)
        );
    }
    out
}

/// The memory table.
pub fn memory_table(report: &Report) -> String {
    let mut out = String::new();
    if report.memory.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nmemory: heap bytes per entry beyond the 16 B of key and value (1M u64 -> u64; \
         \"after 2M\": 2M distinct keys inserted, so a cache has evicted half); each as \
         requested / as glibc's malloc allocates it (headers and rounding included)"
    );
    let _ = writeln!(
        out,
        "  {:<24} {:>10} {:>12} {:>16} {:>12} {:>16}",
        "system", "entries", "heap bytes", "overhead/entry", "after 2M", "overhead/entry"
    );
    for row in &report.memory {
        let mut line = match row.footprint {
            Some(f) => format!(
                "  {:<24} {:>10} {:>12} {:>16}",
                row.system.name(),
                f.entries,
                si(f.bytes as f64),
                per_entry(&f)
            ),
            // Only the engine's variants have no row of their own.
            None => {
                let why = if row.system == System::EpochcacheBytes {
                    "(str keys only: no u64 -> u64 figure)"
                } else {
                    "(stores what epochcache stores: its row)"
                };
                format!("  {:<24} {:>10}  {why}", row.system.name(), "n/a")
            }
        };
        if let Some(f) = row.steady {
            line += &format!(" {:>12} {:>16}", f.entries, per_entry(&f));
        }
        let _ = writeln!(out, "{line}");
    }
    for (name, footprint) in [
        ("epochcache (unbounded)", report.memory_epochcache_map),
        ("epochcache (unb., grown)", report.memory_epochcache_grown),
        ("epochcache (churned)", report.memory_epochcache_churned),
    ] {
        if let Some(f) = footprint {
            let _ = writeln!(
                out,
                "  {:<24} {:>10} {:>12} {:>16}",
                name,
                f.entries,
                si(f.bytes as f64),
                per_entry(&f)
            );
        }
    }
    out
}

/// A footprint's overhead per entry, requested / allocated ("18.5 / 26.6").
fn per_entry(f: &Footprint) -> String {
    match f.allocated_overhead_per_entry {
        Some(allocated) => format!("{:.1} / {:.1}", f.overhead_per_entry, allocated),
        None => format!("{:.1}", f.overhead_per_entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: System, threads: usize, ops: Option<f64>) -> ThroughputRow {
        ThroughputRow {
            workload: Workload::CacheAside,
            threads,
            system,
            ops_per_sec: ops,
            vs_epochcache: None,
            vs_epochcache_range: None,
            hit_ratio: ops.map(|_| 0.5),
            note: ops.is_none().then(|| "no eviction".into()),
        }
    }

    fn report() -> Report {
        let mut r = Report::new(Config::default(), 1.0);
        r.throughput = vec![
            row(System::Epochcache, 1, Some(2e6)),
            row(System::Moka, 1, Some(1e6)),
            row(System::Papaya, 1, None),
            row(System::Epochcache, 2, Some(4e6)),
            row(System::Moka, 2, Some(6e6)),
        ];
        r.compute_ratios();
        r
    }

    #[test]
    fn ratios_are_against_epochcache_at_the_same_thread_count() {
        let r = report();
        let ratios: Vec<_> = r.throughput.iter().map(|r| r.vs_epochcache).collect();
        assert_eq!(ratios, [Some(1.0), Some(0.5), None, Some(1.0), Some(1.5)]);
    }

    #[test]
    fn table_has_a_block_per_thread_count_and_marks_na() {
        let t = throughput_table(&report());
        assert_eq!(t.matches("cache-aside (").count(), 2, "{t}");
        assert!(t.contains("1 thread\n") && t.contains("2 threads\n"), "{t}");
        assert!(
            t.contains("moka") && t.contains("0.50") && t.contains("50.0%"),
            "{t}"
        );
        assert!(t.contains("n/a") && t.contains("(no eviction)"), "{t}");
    }

    #[test]
    fn si_suffixes() {
        assert_eq!(si(35_210_000.0), "35.2 M");
        assert_eq!(si(1_500.0), "1.50 k");
        assert_eq!(si(123_000_000_000.0), "123 G");
        assert_eq!(si(12.0), "12.0");
    }
}
