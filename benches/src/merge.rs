//! Several runs of the comparison combined into one report of medians (`--median-of`).
//!
//! On a small shared machine one run is noisy; the published tables are the medians of a few
//! whole runs. A row's ops/s and hit ratio are the medians of that row over the runs, its ratio
//! to epochcache is the median of the runs' ratios, and the lowest and highest ratio are kept
//! beside it, so that the spread is shown, not hidden.

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

/// The medians of `reports`, row by row; rows are those of the first report.
pub fn medians(reports: &[Report]) -> Result<Report, String> {
    let first = reports.first().ok_or("no reports to combine")?;
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
}
