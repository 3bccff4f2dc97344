//! An SVG bar chart of a run: one panel per group of metrics, one bar per row and metric, with
//! ± one standard deviation.

use std::path::Path;

use plotters::prelude::*;

use crate::spec::Spec;
use crate::{ReportError, Result, RowResult, RowStatus};

const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Draws the spec's panels for the rows that ran into an SVG file at `path`.
pub fn plot_svg(spec: &Spec, results: &[RowResult], path: &Path) -> Result<()> {
    let fail = |e: String| ReportError::Plot {
        path: path.to_owned(),
        problem: e,
    };
    let ran: Vec<(
        &RowResult,
        &std::collections::BTreeMap<String, crate::Summary>,
    )> = results
        .iter()
        .filter_map(|r| match &r.status {
            RowStatus::Ran { metrics } => Some((r, metrics)),
            RowStatus::Skipped { .. } => None,
        })
        .collect();
    let panels = spec.plot.len().max(1);
    let root = SVGBackend::new(path, (480 * panels as u32, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    for (panel, area) in spec.plot.iter().zip(root.split_evenly((1, panels))) {
        let bars: Vec<(String, usize, f64, f64)> = ran
            .iter()
            .flat_map(|(r, m)| {
                panel
                    .metrics
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, metric)| {
                        m.get(metric)
                            .map(|s| (format!("{} ({})", r.row, r.dataset), i, s.mean, s.sd))
                    })
            })
            .collect();
        let top = bars
            .iter()
            .map(|b| b.2 + b.3)
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.15;
        let groups = ran.len().max(1);
        let per = panel.metrics.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..groups as f64, 0f64..top)
            .map_err(|e| fail(e.to_string()))?;
        let names: Vec<String> = ran
            .iter()
            .map(|(r, _)| format!("{} ({})", r.row, r.dataset))
            .collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                names.get(i).cloned().unwrap_or_default()
            })
            .y_desc(panel.y_label.as_str())
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        for (i, metric) in panel.metrics.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let mine: Vec<(usize, f64, f64)> = bars
                .iter()
                .filter(|b| b.1 == i)
                .map(|b| (names.iter().position(|n| *n == b.0).unwrap_or(0), b.2, b.3))
                .collect();
            let x0 = |g: usize| g as f64 + 0.1 + 0.8 * i as f64 / per;
            let w = 0.8 / per;
            chart
                .draw_series(mine.iter().map(|&(g, mean, _)| {
                    Rectangle::new([(x0(g), 0.0), (x0(g) + w * 0.9, mean)], color.filled())
                }))
                .map_err(|e| fail(e.to_string()))?
                .label(metric.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
            chart
                .draw_series(mine.iter().map(|&(g, mean, sd)| {
                    let x = x0(g) + w * 0.45;
                    PathElement::new(vec![(x, (mean - sd).max(0.0)), (x, mean + sd)], BLACK)
                }))
                .map_err(|e| fail(e.to_string()))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(e.to_string()))?;
    }
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}
