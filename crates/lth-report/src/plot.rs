//! An SVG figure of a run: one panel per group of metrics. A bar panel draws one bar per row and
//! metric with ± one standard deviation over replicates; a line panel draws one line per metric
//! through the rows, placed at their value of the panel's `x` metric. Series are labelled with the
//! table's column headers. Where a row ran on the paper's own dataset, the paper's value of a
//! metric is marked (a black diamond) beside ours.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::spec::{Panel, PanelKind, Spec};
use crate::{Cell, ReportError, Result, RowResult, RowStatus, Source, Summary};

const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

type Ran<'a> = (&'a RowResult, &'a BTreeMap<String, Summary>);

/// One line of a line panel: its metric, our points (x, mean, sd) by increasing x, and the
/// paper's points (x, value).
type Line<'a> = (&'a String, Vec<(f64, f64, f64)>, Vec<(f64, f64)>);

/// The paper's value of `metric` for a row that ran on the paper's dataset.
fn paper_value(cells: &[Cell], r: &RowResult, metric: &str) -> Option<f64> {
    if r.is_variant() {
        return None;
    }
    cells
        .iter()
        .find(|c| {
            c.source == Source::Paper
                && c.row == r.row
                && c.dataset == r.dataset
                && c.metric == metric
        })
        .and_then(|c| c.mean)
}

/// Draws the spec's panels for the rows that ran into an SVG file at `path`, written atomically
/// (drawn in memory, then renamed into place): a reader never sees half a plot.
pub fn plot_svg(spec: &Spec, results: &[RowResult], cells: &[Cell], path: &Path) -> Result<()> {
    let fail = |e: String| ReportError::Plot {
        path: path.to_owned(),
        problem: e,
    };
    let ran: Vec<Ran> = results
        .iter()
        .filter_map(|r| match &r.status {
            RowStatus::Ran { metrics } => Some((r, metrics)),
            RowStatus::Skipped { .. } => None,
        })
        .collect();
    let panels = spec.plot.len().max(1);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (520 * panels as u32, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        for (panel, area) in spec.plot.iter().zip(root.split_evenly((1, panels))) {
            let ran: Vec<Ran> = ran
                .iter()
                .filter(|(r, _)| panel.rows.is_empty() || panel.rows.contains(&r.row))
                .copied()
                .collect();
            match panel.kind {
                PanelKind::Bars => bars(spec, panel, &ran, cells, &area),
                PanelKind::Lines => lines(spec, panel, &ran, cells, &area),
            }
            .map_err(fail)?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    lth_store::write_atomic(path, svg.as_bytes()).map_err(|e| fail(e.to_string()))
}

fn bars(
    spec: &Spec,
    panel: &Panel,
    ran: &[Ran],
    cells: &[Cell],
    area: &DrawingArea<SVGBackend, Shift>,
) -> std::result::Result<(), String> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    let top = ran
        .iter()
        .flat_map(|(r, m)| {
            panel.metrics.iter().flat_map(move |metric| {
                let ours = m.get(metric).map(|s| s.mean + s.sd);
                ours.into_iter().chain(paper_value(cells, r, metric))
            })
        })
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let groups = ran.len().max(1);
    let per = panel.metrics.len().max(1) as f64;
    let names: Vec<String> = ran
        .iter()
        .map(|(r, _)| format!("{} ({})", r.row, r.dataset))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..groups as f64, 0f64..top)
        .map_err(|e| s(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups)
        .x_label_formatter(&|x| names.get(x.floor() as usize).cloned().unwrap_or_default())
        .y_desc(panel.y_label.as_str())
        .draw()
        .map_err(|e| s(&e))?;
    let w = 0.8 / per;
    let x0 = |g: usize, i: usize| g as f64 + 0.1 + 0.8 * i as f64 / per;
    let mut marked = false;
    for (i, metric) in panel.metrics.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mine: Vec<(usize, Summary)> = ran
            .iter()
            .enumerate()
            .filter_map(|(g, (_, m))| m.get(metric).map(|s| (g, *s)))
            .collect();
        chart
            .draw_series(mine.iter().map(|&(g, sm)| {
                Rectangle::new(
                    [(x0(g, i), 0.0), (x0(g, i) + w * 0.9, sm.mean)],
                    color.filled(),
                )
            }))
            .map_err(|e| s(&e))?
            .label(spec.header_of(metric))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart
            .draw_series(mine.iter().map(|&(g, sm)| {
                let x = x0(g, i) + w * 0.45;
                PathElement::new(
                    vec![(x, (sm.mean - sm.sd).max(0.0)), (x, sm.mean + sm.sd)],
                    BLACK,
                )
            }))
            .map_err(|e| s(&e))?;
        let papers: Vec<(f64, f64)> = ran
            .iter()
            .enumerate()
            .filter_map(|(g, (r, _))| {
                paper_value(cells, r, metric).map(|v| (x0(g, i) + w * 0.45, v))
            })
            .collect();
        if !papers.is_empty() {
            let series = chart
                .draw_series(
                    papers
                        .iter()
                        .map(|&p| Cross::new(p, 5, BLACK.stroke_width(2))),
                )
                .map_err(|e| s(&e))?;
            if !marked {
                series
                    .label("the paper")
                    .legend(|(x, y)| Cross::new((x + 5, y), 5, BLACK.stroke_width(2)));
                marked = true;
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| s(&e))?;
    Ok(())
}

/// A tick label with at most three significant digits and no trailing zeros.
/// A tick label: at most two decimals above 1, and below 1 the decimals that show three
/// significant digits (so the ticks 0.015 and 0.02 of a narrow axis stay distinct: not 0.02 and
/// 0.02).
fn short(v: f64) -> String {
    let a = v.abs();
    let digits = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if !(1e-9..1.0).contains(&a) {
        2
    } else {
        (2.0 + (-a.log10()).ceil()).min(9.0) as usize
    };
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn lines(
    spec: &Spec,
    panel: &Panel,
    ran: &[Ran],
    cells: &[Cell],
    area: &DrawingArea<SVGBackend, Shift>,
) -> std::result::Result<(), String> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    let x_metric = panel.x.as_deref().unwrap_or("weights_remaining");
    // Points of each metric: (x, mean, sd) by increasing x, and the paper's (x, value).
    let series: Vec<Line> = panel
        .metrics
        .iter()
        .map(|metric| {
            let mut pts: Vec<(f64, f64, f64)> = ran
                .iter()
                .filter_map(|(_, m)| {
                    let x = m.get(x_metric)?.mean;
                    let y = m.get(metric)?;
                    Some((x, y.mean, y.sd))
                })
                // A logarithmic axis has no place for x ≤ 0 (a rewind point k = 0): such a row
                // is in the table, not on the line.
                .filter(|p| !panel.x_log || p.0 > 0.0)
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let papers = ran
                .iter()
                .filter_map(|(r, m)| Some((m.get(x_metric)?.mean, paper_value(cells, r, metric)?)))
                .filter(|p: &(f64, f64)| !panel.x_log || p.0 > 0.0)
                .collect();
            (metric, pts, papers)
        })
        .collect();
    let all = || series.iter().flat_map(|(_, p, _)| p.iter());
    let (mut x_lo, mut x_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let (mut y_lo, mut y_hi) = all()
        .map(|p| (p.1 - p.2, p.1 + p.2))
        .chain(
            series
                .iter()
                .flat_map(|(_, _, q)| q.iter().map(|q| (q.1, q.1))),
        )
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, b)| {
            (lo.min(a), hi.max(b))
        });
    if !x_lo.is_finite() || x_lo <= 0.0 || x_hi <= x_lo {
        (x_lo, x_hi) = (0.01, 1.0);
    }
    if !y_lo.is_finite() || y_hi <= y_lo {
        (y_lo, y_hi) = (0.0, 1.0);
    }
    let pad = (y_hi - y_lo) * 0.1;
    let (y_lo, y_hi) = (y_lo - pad, y_hi + pad);
    let x_percent = x_hi <= 1.0 && x_lo >= 0.0;
    let (x_lo, x_hi) = if panel.x_log {
        (x_lo * 0.8, x_hi * 1.25)
    } else {
        let pad = (x_hi - x_lo) * 0.05;
        (x_lo - pad, x_hi + pad)
    };
    let x_desc = if panel.x_label.is_empty() {
        spec.header_of(x_metric).to_owned()
    } else {
        panel.x_label.clone()
    };
    macro_rules! draw {
        ($chart:ident) => {{
            $chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_labels(8)
                .x_label_formatter(&|x: &f64| {
                    // Fractions such as weights remaining read best as short percentages.
                    if x_percent {
                        format!("{}%", short(100.0 * x))
                    } else {
                        short(*x)
                    }
                })
                .x_desc(x_desc.as_str())
                .y_desc(panel.y_label.as_str())
                .draw()
                .map_err(|e| s(&e))?;
            let mut marked = false;
            for (i, (metric, pts, papers)) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                $chart
                    .draw_series(LineSeries::new(
                        pts.iter().map(|p| (p.0, p.1)),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| s(&e))?
                    .label(spec.header_of(metric))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                    });
                $chart
                    .draw_series(
                        pts.iter().map(|p| {
                            PathElement::new(vec![(p.0, p.1 - p.2), (p.0, p.1 + p.2)], color)
                        }),
                    )
                    .map_err(|e| s(&e))?;
                $chart
                    .draw_series(
                        pts.iter()
                            .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
                    )
                    .map_err(|e| s(&e))?;
                if !papers.is_empty() {
                    let ann = $chart
                        .draw_series(
                            papers
                                .iter()
                                .map(|&p| Cross::new(p, 5, BLACK.stroke_width(2))),
                        )
                        .map_err(|e| s(&e))?;
                    if !marked {
                        ann.label("the paper")
                            .legend(|(x, y)| Cross::new((x + 5, y), 5, BLACK.stroke_width(2)));
                        marked = true;
                    }
                }
            }
            $chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| s(&e))?;
        }};
    }
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    if panel.x_log {
        let mut chart = builder
            .build_cartesian_2d((x_lo..x_hi).log_scale(), y_lo..y_hi)
            .map_err(|e| s(&e))?;
        draw!(chart);
    } else {
        let mut chart = builder
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(|e| s(&e))?;
        draw!(chart);
    }
    Ok(())
}

/// A plain line figure: one line per named series of (x, y) points, a dashed horizontal line at
/// `reference` (a ratio's 1, say), written as SVG to `path`.
pub fn lines_svg(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    reference: Option<f64>,
) -> Result<()> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    let draw = || -> std::result::Result<(), String> {
        let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| s(&e))?;
        let points = || series.iter().flat_map(|(_, p)| p.iter());
        let (x_lo, x_hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        let (y_lo, y_hi) = points()
            .map(|p| p.1)
            .chain(reference)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
                (lo.min(y), hi.max(y))
            });
        let (x_lo, x_hi) = if x_hi > x_lo {
            (x_lo, x_hi)
        } else {
            (0.0, 1.0)
        };
        let (y_lo, y_hi) = if y_hi > y_lo {
            (y_lo, y_hi)
        } else {
            (0.0, 1.0)
        };
        let pad = (y_hi - y_lo) * 0.08;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x_lo..x_hi, (y_lo - pad)..(y_hi + pad))
            .map_err(|e| s(&e))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|x: &f64| short(*x))
            .y_label_formatter(&|y: &f64| short(*y))
            .draw()
            .map_err(|e| s(&e))?;
        if let Some(r) = reference {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_lo, r), (x_hi, r)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| s(&e))?;
        }
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| s(&e))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| s(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| s(&e))?;
        root.present().map_err(|e| s(&e))
    };
    draw().map_err(|problem| ReportError::Plot {
        path: path.to_owned(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::short;

    /// Tick labels of a narrow axis stay distinct, and round ones stay short.
    #[test]
    fn tick_labels_keep_three_significant_digits_below_one() {
        let labels: Vec<String> = [0.01, 0.015, 0.02, 0.025, 0.03].map(short).to_vec();
        assert_eq!(labels, ["0.01", "0.015", "0.02", "0.025", "0.03"]);
        assert_eq!(short(0.855), "0.855");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(25.0), "25");
        assert_eq!(short(6.25), "6.25");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(-0.0125), "-0.0125");
    }
}
