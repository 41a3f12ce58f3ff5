//! The hit-ratio curve: hit ratio against cache size, one line per system, drawn as SVG with
//! plotters (the kind of chart Caffeine's simulator draws).

use std::path::Path;

use plotters::prelude::*;

use crate::report::{thousands, Row};
use crate::systems::System;

/// A colour per system, in [`System::ALL`] order: epochcache red, OPT grey.
const COLOURS: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(255, 127, 14),
    RGBColor(127, 127, 127),
];

/// One system's points: (cache size, hit ratio in percent), by increasing size.
type Curve = (System, Vec<(f64, f64)>);

/// Checks that `path` names a file this module can draw: an `.svg` (the package has plotters'
/// SVG backend only, not the bitmap one a PNG would need).
pub fn check_path(path: &Path) -> Result<(), String> {
    let svg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if svg {
        Ok(())
    } else {
        Err(format!(
            "{}: only SVG charts are drawn (name the file *.svg)",
            path.display()
        ))
    }
}

/// Draws the rows (one workload at several sizes) to `path`, which must end in `.svg`.
pub fn draw(rows: &[Row], title: &str, path: &Path) -> Result<(), String> {
    check_path(path)?;
    let curves: Vec<Curve> = System::ALL
        .into_iter()
        .map(|s| {
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|r| Some((r.size as f64, r.pct(s)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (s, points)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if curves.is_empty() {
        return Err("nothing to draw".into());
    }
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    draw_on(&root, &curves, title).map_err(|e| format!("{}: {e}", path.display()))?;
    root.present()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The colour of `system`'s line.
fn colour(system: System) -> RGBColor {
    let i = System::ALL.iter().position(|&s| s == system).unwrap_or(0);
    COLOURS[i % COLOURS.len()]
}

/// Draws the axes, one line with dots per curve, and the legend. The size axis is
/// logarithmic, labelled at the sizes measured, when they span more than a factor of four.
fn draw_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[Curve],
    title: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let xs = curves.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x));
    let (lo, hi) = xs.fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let top = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(0.0f64, f64::max);
    let y_range = 0.0..(top * 1.08).clamp(1.0, 100.0);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(56);
    let size_label = |x: &f64| thousands(x.round().max(0.0) as u64);
    if hi > lo * 4.0 {
        let mut sizes: Vec<f64> = curves
            .iter()
            .flat_map(|(_, p)| p.iter().map(|&(x, _)| x))
            .collect();
        sizes.sort_by(f64::total_cmp);
        sizes.dedup();
        let x_range = (lo / 1.15..hi * 1.15).log_scale().with_key_points(sizes);
        let mut chart = builder.build_cartesian_2d(x_range, y_range)?;
        chart
            .configure_mesh()
            .x_desc("cache size (entries, log scale)")
            .y_desc("hit ratio (%)")
            .max_light_lines(1)
            .x_label_formatter(&size_label)
            .draw()?;
        draw_curves(&mut chart, curves)
    } else {
        let pad = ((hi - lo) * 0.05).max(1.0);
        let mut chart = builder.build_cartesian_2d(lo - pad..hi + pad, y_range)?;
        chart
            .configure_mesh()
            .x_desc("cache size (entries)")
            .y_desc("hit ratio (%)")
            .max_light_lines(1)
            .x_label_formatter(&size_label)
            .draw()?;
        draw_curves(&mut chart, curves)
    }
}

/// The lines, their dots and the legend, on axes of either kind.
fn draw_curves<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    curves: &[Curve],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
{
    for (system, points) in curves {
        let style = colour(*system).stroke_width(if *system == System::Epochcache { 3 } else { 2 });
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))?
            .label(system.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
        chart.draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, 3, colour(*system).filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
