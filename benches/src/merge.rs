//! Several runs of the comparison combined into one report of medians (`--median-of`).
//!
//! On a small shared machine one run is noisy; the published tables are the medians of a few
//! whole runs. A row's ops/s and hit ratio are the medians of that row over the runs, its ratio
//! to epochcache is the median of the runs' ratios, and the lowest and highest ratio are kept
//! beside it, so that the spread is shown, not hidden.

use std::collections::BTreeSet;

use crate::latency::{Latency, Percentiles};
use crate::report::{LatencyRow, Report, ThroughputRow};

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// The medians of `reports`, row by row. The runs must be of the same comparison: the same
/// sizes, seconds per measurement, workloads, thread counts and systems; a median over runs that
/// differ would mix what they measured, so they are refused.
pub fn medians(reports: &[Report]) -> Result<Report, String> {
    let first = reports.first().ok_or("no reports to combine")?;
    for (i, run) in reports.iter().enumerate().skip(1) {
        let differs = if run.config != first.config {
            Some("sizes (keys, values, capacity, ...)")
        } else if run.seconds_per_measurement != first.seconds_per_measurement {
            Some("seconds per measurement")
        } else if rows_of(run) != rows_of(first) {
            Some("workloads, thread counts or systems")
        } else {
            None
        };
        if let Some(what) = differs {
            return Err(format!(
                "run {} differs from run 1 in its {what}: medians would mix what they measured",
                i + 1
            ));
        }
    }
    let mut out = first.clone();
    for row in &mut out.throughput {
        let same: Vec<&ThroughputRow> = reports
            .iter()
            .filter_map(|r| {
                r.throughput.iter().find(|x| {
                    (x.workload, x.threads, x.system) == (row.workload, row.threads, row.system)
                })
            })
            .collect();
        let pick = |f: fn(&ThroughputRow) -> Option<f64>| {
            median(same.iter().filter_map(|r| f(r)).collect())
        };
        row.ops_per_sec = pick(|r| r.ops_per_sec);
        row.hit_ratio = pick(|r| r.hit_ratio);
        row.vs_epochcache = pick(|r| r.vs_epochcache);
        let ratios: Vec<f64> = same.iter().filter_map(|r| r.vs_epochcache).collect();
        row.vs_epochcache_range = (ratios.len() > 1).then(|| {
            let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            [lo, hi]
        });
    }
    for row in &mut out.latency {
        let same: Vec<Latency> = reports
            .iter()
            .filter_map(|r| r.latency.iter().find(|x| x.system == row.system))
            .map(|x: &LatencyRow| x.latency)
            .collect();
        let of = |f: fn(&Latency) -> Percentiles| {
            let p: Vec<Percentiles> = same.iter().map(f).collect();
            let m = |g: fn(&Percentiles) -> u64| {
                median(p.iter().map(|x| g(x) as f64).collect()).unwrap_or(0.0) as u64
            };
            Percentiles {
                count: m(|x| x.count),
                p50: m(|x| x.p50),
                p99: m(|x| x.p99),
                p999: m(|x| x.p999),
                max: m(|x| x.max),
            }
        };
        let writer_ops = median(same.iter().map(|l| l.writer_ops as f64).collect());
        row.latency = Latency {
            get: of(|l| l.get),
            set: of(|l| l.set),
            writer_ops: writer_ops.unwrap_or(0.0) as u64,
        };
    }
    Ok(out)
}

/// What a report measured: its throughput rows and latency rows, by what they are, not by
/// their figures.
fn rows_of(report: &Report) -> (BTreeSet<String>, BTreeSet<String>) {
    let throughput = report.throughput.iter();
    let throughput = throughput.map(|r| format!("{:?} {} {:?}", r.workload, r.threads, r.system));
    let latency = report.latency.iter().map(|r| format!("{:?}", r.system));
    (throughput.collect(), latency.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::System;
    use crate::workload::{Config, Workload};

    fn report(epoch: f64, moka: f64) -> Report {
        let row = |system, ops| ThroughputRow {
            workload: Workload::HotGet,
            threads: 1,
            system,
            ops_per_sec: Some(ops),
            vs_epochcache: None,
            vs_epochcache_range: None,
            hit_ratio: None,
            note: None,
        };
        let mut r = Report::new(Config::default(), 0.4);
        r.throughput = vec![row(System::Epochcache, epoch), row(System::Moka, moka)];
        r.compute_ratios();
        r
    }

    #[test]
    fn medians_of_rows_and_ratios_with_their_spread() {
        let runs = [report(10.0, 5.0), report(20.0, 4.0), report(30.0, 30.0)];
        let m = medians(&runs).unwrap();
        let moka = &m.throughput[1];
        assert_eq!(moka.ops_per_sec, Some(5.0));
        assert_eq!(moka.vs_epochcache, Some(0.5));
        assert_eq!(moka.vs_epochcache_range, Some([0.2, 1.0]));
        assert!(medians(&[]).is_err());
    }

    #[test]
    fn runs_of_different_comparisons_are_refused() {
        let base = report(10.0, 5.0);
        let mut other_sizes = report(10.0, 5.0);
        other_sizes.config.value_size = 4096;
        let mut other_seconds = report(10.0, 5.0);
        other_seconds.seconds_per_measurement = 1.0;
        let mut other_rows = report(10.0, 5.0);
        other_rows.throughput[1].system = System::Papaya;
        let mut fewer_rows = report(10.0, 5.0);
        fewer_rows.throughput.pop();
        for (other, what) in [
            (other_sizes, "sizes"),
            (other_seconds, "seconds"),
            (other_rows, "systems"),
            (fewer_rows, "systems"),
        ] {
            let refused = medians(&[base.clone(), other]).unwrap_err();
            assert!(refused.contains(what), "{refused}");
        }
        assert!(medians(&[base.clone(), base]).is_ok());
    }
}
