//! The results of a run: one row per workload and cache size, as data (for `--json`) and as a
//! Markdown table (what the command prints, and what `HITRATIO.md` quotes).

use std::fmt::Write as _;

use serde::Serialize;

use crate::systems::{Outcome, System};

/// How far below the best peer epochcache may be, in points of hit ratio, before a row is
/// marked.
pub const TOLERANCE: f64 = 0.5;

/// How far below the best published policy (ARC, S3-FIFO, LIRS) epochcache may be, in points,
/// before the summary counts the row: the aim.
pub const PUBLISHED_TOLERANCE: f64 = 2.0;

pub use epochcache_bench::report::Machine;

/// One system's result on one workload at one size, over its replays (one per hasher seed for
/// a system that hashes keys, else one).
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// The system.
    pub system: System,
    /// How many times the system was replayed (one per hasher seed, or one).
    pub replays: usize,
    /// Requests that hit, summed over the replays (`replays` times the row's `accesses` asked).
    pub hits: u64,
    /// Hits per request, in percent: the mean over the replays.
    pub hit_pct: f64,
    /// Each replay's hit ratio, in percent, in the hashers' order.
    pub per_seed_pct: Vec<f64>,
    /// The most entries the cache held after an insert (by its own count), over the replays;
    /// `None` for the simulated policies.
    pub peak: Option<u64>,
}

/// One workload at one cache size: every system's hit ratio and the comparisons.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The workload's name.
    pub workload: String,
    /// The cache size, in entries.
    pub size: usize,
    /// Requests replayed.
    pub accesses: usize,
    /// Distinct keys requested.
    pub distinct: usize,
    /// Each system that ran, in [`System::ALL`] order.
    pub cells: Vec<Cell>,
    /// The better of moka and quick_cache, where either ran.
    pub best_peer: Option<System>,
    /// epochcache's hit ratio minus the best peer's, in points (their means).
    pub vs_best_peer: Option<f64>,
    /// Seed by seed, epochcache's hit ratio minus the better of moka's and quick_cache's with
    /// the same hasher, in points.
    pub per_seed_vs_best_peer: Vec<f64>,
    /// OPT's hit ratio minus epochcache's, in points.
    pub to_opt: Option<f64>,
    /// epochcache is more than [`TOLERANCE`] points below the best peer.
    pub below_peer: bool,
    /// The best of the published policies (ARC, S3-FIFO, LIRS), where any ran.
    pub best_published: Option<System>,
    /// epochcache's hit ratio minus the best published policy's, in points.
    pub vs_best_published: Option<f64>,
}

impl Row {
    /// A row from each system's outcomes (several for a system replayed with several hashers,
    /// in the hashers' order), filling in the comparisons.
    pub fn new(
        workload: String,
        size: usize,
        accesses: usize,
        distinct: usize,
        outcomes: &[(System, Outcome)],
    ) -> Row {
        let cells: Vec<Cell> = System::ALL
            .iter()
            .filter_map(|&system| {
                let mine: Vec<Outcome> = outcomes
                    .iter()
                    .filter(|(s, _)| *s == system)
                    .map(|&(_, out)| out)
                    .collect();
                if mine.is_empty() {
                    return None;
                }
                let per_seed_pct: Vec<f64> = mine
                    .iter()
                    .map(|out| 100.0 * out.hits as f64 / accesses.max(1) as f64)
                    .collect();
                Some(Cell {
                    system,
                    replays: mine.len(),
                    hits: mine.iter().map(|out| out.hits).sum(),
                    hit_pct: per_seed_pct.iter().sum::<f64>() / mine.len() as f64,
                    peak: mine.iter().filter_map(|out| out.peak).max(),
                    per_seed_pct,
                })
            })
            .collect();
        let per_seed_vs_best_peer = per_seed_differences(&cells);
        let pct = |s: System| cells.iter().find(|c| c.system == s).map(|c| c.hit_pct);
        let best_peer = System::PEERS
            .into_iter()
            .filter_map(|s| Some((s, pct(s)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let best_published = System::PUBLISHED
            .into_iter()
            .filter_map(|s| Some((s, pct(s)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let epoch = pct(System::Epochcache);
        let vs_best_peer = epoch.zip(best_peer).map(|(e, (_, p))| e - p);
        let vs_best_published = epoch.zip(best_published).map(|(e, (_, p))| e - p);
        let to_opt = epoch.zip(pct(System::Opt)).map(|(e, o)| o - e);
        Row {
            workload,
            size,
            accesses,
            distinct,
            best_peer: best_peer.map(|(s, _)| s),
            vs_best_peer,
            per_seed_vs_best_peer,
            to_opt,
            below_peer: vs_best_peer.is_some_and(|d| d < -TOLERANCE),
            best_published: best_published.map(|(s, _)| s),
            vs_best_published,
            cells,
        }
    }

    /// This row's hit ratio of `system`, in percent.
    pub fn pct(&self, system: System) -> Option<f64> {
        self.cells
            .iter()
            .find(|c| c.system == system)
            .map(|c| c.hit_pct)
    }
}

/// Seed by seed, epochcache's hit ratio minus the better peer's with the same hasher; empty
/// where epochcache or no peer ran. (The caches use a hash differently, so the same seed draws
/// independent collisions in each: this pairs draws, it is not a controlled comparison, and the
/// better peer taken seed by seed is a harder bar than the better mean.)
fn per_seed_differences(cells: &[Cell]) -> Vec<f64> {
    let seeds = |s: System| {
        cells
            .iter()
            .find(|c| c.system == s)
            .map(|c| &c.per_seed_pct)
    };
    let Some(mine) = seeds(System::Epochcache) else {
        return Vec::new();
    };
    let peers: Vec<&Vec<f64>> = System::PEERS.into_iter().filter_map(seeds).collect();
    if peers.is_empty() {
        return Vec::new();
    }
    // `tasks` replays every system that hashes keys with the same hashers.
    debug_assert!(peers.iter().all(|p| p.len() == mine.len()));
    mine.iter()
        .enumerate()
        .map(|(i, e)| {
            let best = peers
                .iter()
                .filter_map(|p| p.get(i).copied())
                .fold(f64::NEG_INFINITY, f64::max);
            e - best
        })
        .collect()
}

/// The whole run, as `--json` writes it.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// epochcache's shard count (`None`: the builder's default for this machine).
    pub shards: Option<usize>,
    /// How often moka's pending tasks ran (see `--moka-pending`).
    pub moka_pending: usize,
    /// The seed of the synthetic workloads.
    pub seed: u64,
    /// How many hashers epochcache, moka and quick_cache were replayed with (see
    /// `--hasher-seeds`).
    pub hasher_seeds: u64,
    /// One row per workload and size.
    pub rows: Vec<Row>,
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed number of points, `+0.12` or `-3.40` (`+0.00` for anything that rounds to zero,
/// never `-0.00`).
fn points(x: Option<f64>) -> String {
    x.map_or_else(
        || "-".into(),
        |x| format!("{:+.2}", if x.abs() < 0.005 { 0.0 } else { x }),
    )
}

/// The rows as a Markdown table: hit ratios in percent, the best peer, epochcache's distance
/// to it and to OPT, the best published policy and epochcache's distance to it (those two
/// columns only when a published policy ran), and a note on every row where epochcache is more
/// than [`TOLERANCE`] points below the best peer.
pub fn table(rows: &[Row]) -> String {
    let systems: Vec<System> = System::ALL
        .into_iter()
        .filter(|&s| rows.iter().any(|r| r.pct(s).is_some()))
        .collect();
    let published = rows.iter().any(|r| r.best_published.is_some());
    let mut out = String::from("| workload | size | accesses |");
    for s in &systems {
        let _ = write!(out, " {} |", s.name());
    }
    out.push_str(" best peer | epochcache − best peer | OPT − epochcache |");
    if published {
        out.push_str(" best published | epochcache − best published |");
    }
    out.push_str(" note |\n|---|--:|--:|");
    out.push_str(&"--:|".repeat(systems.len()));
    out.push_str("---|--:|--:|");
    if published {
        out.push_str("---|--:|");
    }
    out.push_str("---|\n");
    for row in rows {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            row.workload,
            thousands(row.size as u64),
            thousands(row.accesses as u64)
        );
        for &s in &systems {
            match row.pct(s) {
                Some(p) => {
                    let _ = write!(out, " {p:.2} |");
                }
                None => out.push_str(" - |"),
            }
        }
        let mut notes = Vec::new();
        if row.below_peer {
            notes.push(format!("**below the best peer by more than {TOLERANCE}**"));
        }
        for c in row.cells.iter().filter(|c| c.peak > Some(row.size as u64)) {
            let peak = thousands(c.peak.unwrap_or_default());
            notes.push(format!("{} held up to {peak}", c.system.name()));
        }
        let note = notes.join("; ");
        let _ = write!(
            out,
            " {} | {} | {} |",
            row.best_peer.map_or("-", System::name),
            points(row.vs_best_peer),
            points(row.to_opt),
        );
        if published {
            let _ = write!(
                out,
                " {} | {} |",
                row.best_published.map_or("-", System::name),
                points(row.vs_best_published),
            );
        }
        let _ = writeln!(out, " {note} |");
    }
    out
}

/// A one-line summary: how many rows fall short of the best peer, and the worst of them.
pub fn summary(rows: &[Row]) -> String {
    let compared: Vec<&Row> = rows.iter().filter(|r| r.vs_best_peer.is_some()).collect();
    let below = compared.iter().filter(|r| r.below_peer).count();
    let worst = compared
        .iter()
        .filter_map(|r| Some((r, r.vs_best_peer?)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match worst {
        None => "no row compares epochcache with a peer".into(),
        Some((r, d)) => format!(
            "{below} of {} rows have epochcache more than {TOLERANCE} points below the best of \
             moka and quick_cache; the lowest is {} @ {}: {d:+.2} points",
            compared.len(),
            r.workload,
            thousands(r.size as u64)
        ),
    }
}

/// With more than one hasher seed, a line that says the table gives means, and how the rows
/// fare seed by seed: how many replays put epochcache more than [`TOLERANCE`] points below the
/// better peer with the same hasher, on which rows, and the lowest; `None` with one seed.
pub fn per_seed_summary(rows: &[Row], hasher_seeds: u64) -> Option<String> {
    if hasher_seeds < 2 {
        return None;
    }
    let compared: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.per_seed_vs_best_peer.is_empty())
        .collect();
    let seeded: Vec<&str> = System::ALL
        .into_iter()
        .filter(|&s| s.hashes_keys() && rows.iter().any(|r| r.pct(s).is_some()))
        .map(System::name)
        .collect();
    if seeded.is_empty() {
        return None;
    }
    let mut line = format!(
        "{}: means over {hasher_seeds} hasher seeds each (the simulated policies do not hash \
         keys)",
        seeded.join(", ")
    );
    let below_in = |r: &Row| {
        r.per_seed_vs_best_peer
            .iter()
            .filter(|&&d| d < -TOLERANCE)
            .count()
    };
    let replays: usize = compared.iter().map(|r| r.per_seed_vs_best_peer.len()).sum();
    let below: usize = compared.iter().map(|r| below_in(r)).sum();
    let lowest = compared
        .iter()
        .flat_map(|r| r.per_seed_vs_best_peer.iter().map(move |&d| (r, d)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((r, d)) = lowest {
        let _ = write!(
            line,
            "; seed by seed, {below} of {replays} replays have epochcache more than {TOLERANCE} \
             points below the better peer with the same seed"
        );
        let rows_below: Vec<String> = compared
            .iter()
            .filter(|r| below_in(r) > 0)
            .map(|r| {
                let n = below_in(r);
                format!("{} @ {}: {n}", r.workload, thousands(r.size as u64))
            })
            .collect();
        if !rows_below.is_empty() {
            let _ = write!(line, " ({})", rows_below.join(", "));
        }
        let _ = write!(
            line,
            "; the lowest: {} @ {}, {d:+.2}",
            r.workload,
            thousands(r.size as u64)
        );
    }
    Some(line)
}

/// A one-line summary against the published policies: how many rows have epochcache more than
/// [`PUBLISHED_TOLERANCE`] points below the best of them, and which; `None` when none ran.
pub fn published_summary(rows: &[Row]) -> Option<String> {
    let compared: Vec<&Row> = rows
        .iter()
        .filter(|r| r.vs_best_published.is_some())
        .collect();
    if compared.is_empty() {
        return None;
    }
    let behind: Vec<String> = compared
        .iter()
        .filter_map(|r| Some((r, r.vs_best_published?)))
        .filter(|(_, d)| *d < -PUBLISHED_TOLERANCE)
        .map(|(r, d)| {
            format!(
                "{} @ {} ({d:+.2} against {})",
                r.workload,
                thousands(r.size as u64),
                r.best_published.map_or("-", System::name)
            )
        })
        .collect();
    let mut line = format!(
        "{} of {} rows have epochcache more than {PUBLISHED_TOLERANCE} points below the best of \
         ARC, S3-FIFO and LIRS",
        behind.len(),
        compared.len()
    );
    if !behind.is_empty() {
        line.push_str(": ");
        line.push_str(&behind.join(", "));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_with_the_best_peer_and_opt() {
        let out = |hits, peak| Outcome { hits, peak };
        let outcomes = [
            (System::Opt, out(80, None)),
            (System::Epochcache, out(50, Some(10))),
            (System::Moka, out(51, Some(12))),
            (System::QuickCache, out(60, Some(9))),
        ];
        let row = Row::new("w".into(), 10, 100, 20, &outcomes);
        assert_eq!(row.best_peer, Some(System::QuickCache));
        assert!((row.vs_best_peer.unwrap() + 10.0).abs() < 1e-9);
        assert!((row.to_opt.unwrap() - 30.0).abs() < 1e-9);
        assert!(row.below_peer);
        let t = table(&[row]);
        assert!(
            t.contains("| w | 10 | 100 | 50.00 | 51.00 | 60.00 | 80.00 |"),
            "{t}"
        );
        assert!(t.contains("quick_cache | -10.00 | +30.00 | **below"), "{t}");
        assert!(t.contains("0.5**; moka held up to 12 |"), "{t}");
        assert!(!t.contains("best published"), "{t}");
        assert!(published_summary(&[]).is_none());
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(points(Some(-0.004)), "+0.00");
        assert_eq!(points(Some(-0.006)), "-0.01");
    }

    #[test]
    fn averages_replays_over_hasher_seeds_and_pairs_them_seed_by_seed() {
        let out = |hits| Outcome {
            hits,
            peak: Some(hits / 10),
        };
        // In the hashers' order, as `replay_all` passes them; OPT replayed once.
        let outcomes = [
            (System::Epochcache, out(50)),
            (System::Moka, out(60)),
            (System::QuickCache, out(52)),
            (System::Epochcache, out(54)),
            (System::Moka, out(44)),
            (System::QuickCache, out(52)),
            (
                System::Opt,
                Outcome {
                    hits: 70,
                    peak: None,
                },
            ),
        ];
        let row = Row::new("w".into(), 10, 100, 20, &outcomes);
        let cell = |s| row.cells.iter().find(|c| c.system == s).unwrap();
        assert_eq!(cell(System::Epochcache).hits, 104);
        assert_eq!(cell(System::Epochcache).per_seed_pct, [50.0, 54.0]);
        assert!((cell(System::Epochcache).hit_pct - 52.0).abs() < 1e-9);
        assert_eq!(cell(System::Moka).peak, Some(6));
        assert_eq!(cell(System::Opt).per_seed_pct, [70.0]);
        // Means: epochcache 52, moka 52, quick_cache 52: level. Seed by seed: 50 against 60,
        // then 54 against 52.
        assert!(row.vs_best_peer.unwrap().abs() < 1e-9, "{row:?}");
        assert!(!row.below_peer);
        assert_eq!(row.per_seed_vs_best_peer, [-10.0, 2.0]);
        assert!((row.to_opt.unwrap() - 18.0).abs() < 1e-9);
        let line = per_seed_summary(std::slice::from_ref(&row), 2).unwrap();
        assert!(line.contains("means over 2 hasher seeds"), "{line}");
        assert!(
            line.contains("1 of 2 replays have epochcache more"),
            "{line}"
        );
        assert!(
            line.contains("(w @ 10: 1); the lowest: w @ 10, -10.00"),
            "{line}"
        );
        assert!(per_seed_summary(&[row], 1).is_none());
    }

    #[test]
    fn compares_with_the_best_published_policy() {
        let out = |hits| Outcome { hits, peak: None };
        let outcomes = [
            (System::Epochcache, out(50)),
            (System::Moka, out(49)),
            (System::Arc, out(51)),
            (System::S3Fifo, out(55)),
            (System::Lirs, out(53)),
        ];
        let row = Row::new("w".into(), 10, 100, 20, &outcomes);
        assert_eq!(row.best_published, Some(System::S3Fifo));
        assert!((row.vs_best_published.unwrap() + 5.0).abs() < 1e-9);
        assert!(!row.below_peer);
        let t = table(std::slice::from_ref(&row));
        assert!(
            t.contains("| w | 10 | 100 | 50.00 | 49.00 | 51.00 | 55.00 | 53.00 |"),
            "{t}"
        );
        assert!(
            t.contains("| moka | +1.00 | - | s3fifo | -5.00 |  |"),
            "{t}"
        );
        assert!(t.contains("epochcache − best published | note |"), "{t}");
        let line = published_summary(&[row]).unwrap();
        assert!(line.starts_with("1 of 1 rows"), "{line}");
        assert!(line.ends_with("w @ 10 (-5.00 against s3fifo)"), "{line}");
    }
}
