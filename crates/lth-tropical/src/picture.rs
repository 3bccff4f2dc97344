//! Networks side by side: each one's decision boundary on the input plane, drawn from its tropical
//! polynomials, above its Newton polygon and the two zonotopes it is the hull of.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{OneHidden, Point, Result, TropicalError, write};

/// One network of a picture.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub net: OneHidden,
}

/// A square grid of `n × n` points over `[lo, hi]²`, row by row from the bottom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl Grid {
    /// The point at column `i`, row `k`.
    pub fn at(&self, i: usize, k: usize) -> Point {
        let step = (self.hi - self.lo) / (self.n - 1) as f64;
        [self.lo + step * i as f64, self.lo + step * k as f64]
    }

    /// Every point, row by row.
    pub fn points(&self) -> Vec<Point> {
        (0..self.n)
            .flat_map(|k| (0..self.n).map(move |i| (i, k)))
            .map(|(i, k)| self.at(i, k))
            .collect()
    }

    /// The cells `(i, k)` (lower-left corner) whose corners' `values` (one per point, row by
    /// row) do not all have the same sign: the cells a boundary crosses.
    pub fn crossed(&self, values: &[f64]) -> Vec<(usize, usize)> {
        let v = |i: usize, k: usize| values[k * self.n + i] > 0.0;
        let mut out = Vec::new();
        for k in 0..self.n - 1 {
            for i in 0..self.n - 1 {
                let c = [v(i, k), v(i + 1, k), v(i + 1, k + 1), v(i, k + 1)];
                if c.iter().any(|&s| s != c[0]) {
                    out.push((i, k));
                }
            }
        }
        out
    }

    /// The zero line of `values` as segments, one or two per crossed cell, each end placed on its
    /// cell edge by linear interpolation (marching squares).
    pub fn contour(&self, values: &[f64]) -> Vec<[Point; 2]> {
        let val = |i: usize, k: usize| values[k * self.n + i];
        let mut out = Vec::new();
        for (i, k) in self.crossed(values) {
            let corners = [(i, k), (i + 1, k), (i + 1, k + 1), (i, k + 1)];
            let mut ends = Vec::with_capacity(4);
            for e in 0..4 {
                let (a, b) = (corners[e], corners[(e + 1) % 4]);
                let (va, vb) = (val(a.0, a.1), val(b.0, b.1));
                if (va > 0.0) != (vb > 0.0) {
                    let t = va / (va - vb);
                    let (pa, pb) = (self.at(a.0, a.1), self.at(b.0, b.1));
                    ends.push([pa[0] + t * (pb[0] - pa[0]), pa[1] + t * (pb[1] - pa[1])]);
                }
            }
            for pair in ends.chunks(2).filter(|p| p.len() == 2) {
                out.push([pair[0], pair[1]]);
            }
        }
        out
    }
}

/// The input plane every picture shows: the range two-moons is stored in.
pub const PLANE: Grid = Grid {
    lo: -1.5,
    hi: 2.5,
    n: 161,
};

const CLASS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];

/// Draws `panels` side by side into an SVG file at `path` (written atomically): in the top row
/// each network's decision boundary (the zero line of `H₁ + Q₂ − (H₂ + Q₁)` on [`PLANE`]) over
/// the `points` (x, y, class), in the bottom row its Newton polygon (black) with its zonotopes
/// (the class colours: Z₁ blue, Z₂ orange). Each polygon is drawn in its own frame, centred, so
/// that shapes of different sizes can be compared.
pub fn picture(panels: &[Panel], points: &[(f64, f64, i64)], path: &Path) -> Result<()> {
    let fail = |e: String| TropicalError::Picture {
        path: path.to_owned(),
        problem: e,
    };
    let mut svg = String::new();
    {
        let n = panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (360 * n, 720)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let rows = root.split_evenly((2, n as usize));
        let (top, bottom) = rows.split_at(n as usize);
        for ((panel, plane), poly) in panels.iter().zip(top).zip(bottom) {
            draw_plane(panel, points, plane).map_err(fail)?;
            draw_polygon(panel, poly).map_err(fail)?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    write(path, &svg)
}

fn draw_plane(
    panel: &Panel,
    points: &[(f64, f64, i64)],
    area: &DrawingArea<SVGBackend, Shift>,
) -> std::result::Result<(), String> {
    let g = PLANE;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(32)
        .build_cartesian_2d(g.lo..g.hi, g.lo..g.hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(5)
        .y_labels(5)
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(points.iter().map(|&(x, y, c)| {
            Circle::new((x, y), 1.5, CLASS[c.clamp(0, 1) as usize].mix(0.6).filled())
        }))
        .map_err(|e| e.to_string())?;
    let values: Vec<f64> = g
        .points()
        .iter()
        .map(|&x| {
            let t = panel.net.terms(x);
            t[0] - t[1]
        })
        .collect();
    chart
        .draw_series(g.contour(&values).into_iter().map(|[a, b]| {
            PathElement::new(vec![(a[0], a[1]), (b[0], b[1])], BLACK.stroke_width(2))
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn draw_polygon(
    panel: &Panel,
    area: &DrawingArea<SVGBackend, Shift>,
) -> std::result::Result<(), String> {
    let poly = panel.net.polygon();
    let all: Vec<Point> = poly
        .hull
        .iter()
        .chain(&poly.z1)
        .chain(&poly.z2)
        .copied()
        .collect();
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in &all {
        for d in 0..2 {
            lo[d] = lo[d].min(p[d]);
            hi[d] = hi[d].max(p[d]);
        }
    }
    // A square frame around the polygon with a margin, so that shapes are not stretched.
    let half = 0.55 * (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-9);
    let mid = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Newton polygon, {} vertices", poly.hull.len()),
            ("sans-serif", 14),
        )
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(40)
        .build_cartesian_2d(mid[0] - half..mid[0] + half, mid[1] - half..mid[1] + half)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(4)
        .y_labels(4)
        .draw()
        .map_err(|e| e.to_string())?;
    let closed = |v: &[Point]| -> Vec<(f64, f64)> {
        v.iter().chain(v.first()).map(|p| (p[0], p[1])).collect()
    };
    for (z, colour) in [(&poly.z1, CLASS[0]), (&poly.z2, CLASS[1])] {
        chart
            .draw_series(std::iter::once(Polygon::new(
                closed(z),
                colour.mix(0.25).filled(),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                closed(z),
                colour.stroke_width(1),
            )))
            .map_err(|e| e.to_string())?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            closed(&poly.hull),
            BLACK.stroke_width(2),
        )))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            poly.hull
                .iter()
                .map(|p| Circle::new((p[0], p[1]), 2.5, BLACK.filled())),
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A straight boundary x = 0.3: the crossed cells are one column, and the contour lies on the
    /// line.
    #[test]
    fn the_contour_of_a_plane_is_its_line() {
        let g = Grid {
            lo: 0.0,
            hi: 1.0,
            n: 11,
        };
        let values: Vec<f64> = g.points().iter().map(|p| p[0] - 0.35).collect();
        let crossed = g.crossed(&values);
        assert_eq!(crossed, (0..10).map(|k| (3, k)).collect::<Vec<_>>());
        for [a, b] in g.contour(&values) {
            assert!((a[0] - 0.35).abs() < 1e-12 && (b[0] - 0.35).abs() < 1e-12);
        }
    }
}
