//! A grouped bar chart of the throughput rows, drawn as SVG with plotters.
//!
//! One group of bars per workload and thread count, one bar per system, on a logarithmic axis of
//! operations per second (the workloads span three orders of magnitude, from DRAM-bound inserts
//! to hot gets).

use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;
use crate::systems::System;

/// A colour per system, in [`System::ALL`] order.
const COLOURS: [RGBColor; System::ALL.len()] = [
    RGBColor(214, 39, 40),
    RGBColor(240, 120, 120),
    RGBColor(150, 20, 60),
    RGBColor(250, 170, 150),
    RGBColor(120, 20, 20),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

fn colour(system: System) -> RGBColor {
    let i = System::ALL.iter().position(|&s| s == system).unwrap_or(0);
    COLOURS[i % COLOURS.len()]
}

/// Whether `path` can take a chart: an `.svg` name, not a folder, in an existing folder. Checked
/// before a run, so that a wrong name is not found only after the run's minutes.
pub fn check_path(path: &Path) -> Result<(), String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => {}
        _ => {
            return Err(format!(
                "{}: only SVG charts are drawn (name the file *.svg)",
                path.display()
            ))
        }
    }
    check_output(path)
}

/// Whether a file can be written at `path`: it is not a folder, and the folder it would be
/// written in exists.
pub fn check_output(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{}: a folder, not a file", path.display()));
    }
    check_folder(path)
}

/// Whether the folder `path` would be written in exists.
pub fn check_folder(path: &Path) -> Result<(), String> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if folder.is_dir() {
        Ok(())
    } else {
        Err(format!("{}: no such folder", folder.display()))
    }
}

/// Draws the report's throughput rows to `path` (an `.svg` file).
pub fn draw(report: &Report, path: &Path) -> Result<(), String> {
    check_path(path)?;
    let mut groups: Vec<(String, Vec<(System, f64)>)> = Vec::new();
    for row in &report.throughput {
        let label = format!("{} {}t", row.workload.name(), row.threads);
        if groups.last().map(|(l, _)| l) != Some(&label) {
            groups.push((label, Vec::new()));
        }
        if let Some(ops) = row.ops_per_sec {
            groups.last_mut().expect("pushed").1.push((row.system, ops));
        }
    }
    let systems: Vec<System> = System::ALL
        .into_iter()
        .filter(|s| groups.iter().any(|(_, g)| g.iter().any(|(x, _)| x == s)))
        .collect();
    if systems.is_empty() {
        return Err("no throughput figures to draw".into());
    }
    let max = groups
        .iter()
        .flat_map(|(_, g)| g.iter().map(|&(_, v)| v))
        .fold(1.0, f64::max);
    let width = (groups.len() as u32 * 110 + 220).max(800);
    let root = SVGBackend::new(path, (width, 560)).into_drawing_area();
    draw_on(&root, &groups, &systems, max).map_err(|e| format!("{}: {e}", path.display()))?;
    root.present()
        .map_err(|e| format!("{}: {e}", path.display()))
}

type Groups = [(String, Vec<(System, f64)>)];

fn draw_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    groups: &Groups,
    systems: &[System],
    max: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let n = groups.len();
    let mut chart = ChartBuilder::on(root)
        .caption("ops/s per workload and thread count", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, (1e4f64..max * 2.0).log_scale())?;
    let labels: Vec<&str> = groups.iter().map(|(l, _)| l.as_str()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_desc("ops/s (log scale)")
        .y_label_formatter(&|y| crate::report::si(*y))
        .draw()?;
    let bar = 0.84 / systems.len() as f64;
    for (si, &system) in systems.iter().enumerate() {
        let style = colour(system).filled();
        let bars = groups.iter().enumerate().filter_map(|(gi, (_, g))| {
            let &(_, ops) = g.iter().find(|(s, _)| *s == system)?;
            let x0 = gi as f64 - 0.42 + si as f64 * bar;
            Some(Rectangle::new([(x0, 1e4), (x0 + bar * 0.9, ops)], style))
        });
        chart
            .draw_series(bars)?
            .label(system.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
