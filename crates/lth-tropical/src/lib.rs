//! Tropical geometry of a one-hidden-layer ReLU network on the plane: the view of lottery tickets
//! in Alfarra, Bibi, Hammoud, Gaafar & Ghanem, "On the Decision Boundaries of Neural Networks: A
//! Tropical Geometry Perspective" (IEEE TPAMI, 2023; arXiv:2002.08838).
//!
//! A network `f(x) = B·max(Ax + c₁, 0) + c₂` with `A ∈ R^{p×2}` and two classes writes each logit
//! as a difference of tropical (max-plus) polynomials, `f_i = H_i − Q_i`, by splitting
//! `A = A⁺ − A⁻` and `B = B⁺ − B⁻` into their positive and negative parts:
//!
//! ```text
//! H_i(x) = Σ_j B⁺_ij · max(A⁺_j·x + c₁_j, A⁻_j·x) + Σ_j B⁻_ij · A⁻_j·x + c₂_i
//! Q_i(x) = Σ_j B⁻_ij · max(A⁺_j·x + c₁_j, A⁻_j·x) + Σ_j B⁺_ij · A⁻_j·x
//! ```
//!
//! The decision boundary `f₁ = f₂` is where the two terms of `R = max(H₁ + Q₂, H₂ + Q₁)` are equal.
//! `R`'s Newton polygon (the convex hull of its monomials' exponents) is the convex hull of two
//! zonotopes with generators `(B⁺_1j + B⁻_2j)·A_j` and `(B⁺_2j + B⁻_1j)·A_j`, both translated by
//! `Σ_j (|B_1j| + |B_2j|)·A⁻_j`. The biases change the subdivision inside the polygon, not the
//! polygon: the pictures draw the polygon and its two zonotopes, as the paper's figures do.
//!
//! - [`OneHidden`] holds the parameters and evaluates the network both ways.
//! - [`zonotope`], [`convex_hull`] and [`OneHidden::polygon`] build the polygons.
//! - [`shape_distance`] compares two polygons' shapes up to position and scale: the paper's
//!   observation is that a lottery ticket's initialisation keeps the trained network's polygon's
//!   shape, and a random reinitialisation under the same mask does not.
//! - [`picture`] draws networks side by side: each decision boundary over the data, above its
//!   polygon.
//!
//! Tests check the law that defines the polygon: a tropical polynomial's growth along a direction
//! `u`, `lim R(t·u)/t`, is the support function of its Newton polygon in `u`.

use std::path::Path;

use tch::Tensor;

mod picture;

pub use picture::{Grid, PLANE, Panel, picture};

/// A point or vector of the plane.
pub type Point = [f64; 2];

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum TropicalError {
    /// The weights are not those of a one-hidden-layer network from the plane to two classes.
    #[error("{0}")]
    Shape(String),
    #[error("cannot draw {path}: {problem}")]
    Picture {
        path: std::path::PathBuf,
        problem: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = TropicalError> = std::result::Result<T, E>;

/// The parameters of `f(x) = B·max(Ax + c₁, 0) + c₂` from the plane to two logits.
#[derive(Debug, Clone, PartialEq)]
pub struct OneHidden {
    /// Rows of A: the hidden units' input weights.
    pub a: Vec<Point>,
    pub c1: Vec<f64>,
    /// Rows of B: each class's weights over the hidden units.
    pub b: [Vec<f64>; 2],
    pub c2: [f64; 2],
}

fn pos(v: f64) -> f64 {
    v.max(0.0)
}

fn neg(v: f64) -> f64 {
    (-v).max(0.0)
}

fn dot(a: Point, b: Point) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

impl OneHidden {
    /// The network of a one-hidden-layer LeNet (`lenet_<p>` on a 2-D dataset of two classes), from
    /// its weights by PyTorch name: `fc_layers.0.{weight,bias}` and `fc.{weight,bias}`. Pass the
    /// weights under their mask (pruned entries zero).
    pub fn from_named(weights: &[(String, Tensor)]) -> Result<OneHidden> {
        let [w1, c1, w2, c2] = lth_models::lenet::one_hidden_layer(
            weights,
            "the tropical view (on a 2-D dataset of two classes, e.g. two-moons)",
        )
        .map_err(|e| TropicalError::Shape(e.to_string()))?
        .map(|t| {
            Vec::<f64>::try_from(t.to_kind(tch::Kind::Double).flatten(0, -1))
                .map_err(|e| TropicalError::Shape(e.to_string()))
        });
        let (w1, c1, w2, c2) = (w1?, c1?, w2?, c2?);
        let p = c1.len();
        if w1.len() != 2 * p || c2.len() != 2 || w2.len() != 2 * p {
            return Err(TropicalError::Shape(format!(
                "expected a network from 2 inputs through {p} hidden units to 2 classes; its \
                 weights have {} input weights per unit and {} outputs",
                w1.len() as f64 / p.max(1) as f64,
                c2.len()
            )));
        }
        Ok(OneHidden {
            a: w1.chunks(2).map(|r| [r[0], r[1]]).collect(),
            c1,
            b: [w2[..p].to_vec(), w2[p..].to_vec()],
            c2: [c2[0], c2[1]],
        })
    }

    /// The two logits, computed as the network computes them.
    pub fn logits(&self, x: Point) -> [f64; 2] {
        let h: Vec<f64> = self
            .a
            .iter()
            .zip(&self.c1)
            .map(|(&a, &c)| (dot(a, x) + c).max(0.0))
            .collect();
        [0, 1].map(|i| self.b[i].iter().zip(&h).map(|(b, h)| b * h).sum::<f64>() + self.c2[i])
    }

    /// `(H, Q)`: the tropical polynomials of both logits at `x`, with `f_i = H_i − Q_i`.
    pub fn tropical(&self, x: Point) -> ([f64; 2], [f64; 2]) {
        let mut h = self.c2;
        let mut q = [0.0; 2];
        for (j, (&a, &c)) in self.a.iter().zip(&self.c1).enumerate() {
            let a_pos = [pos(a[0]), pos(a[1])];
            let a_neg = [neg(a[0]), neg(a[1])];
            let hinge = (dot(a_pos, x) + c).max(dot(a_neg, x));
            let linear = dot(a_neg, x);
            for i in 0..2 {
                let (bp, bn) = (pos(self.b[i][j]), neg(self.b[i][j]));
                h[i] += bp * hinge + bn * linear;
                q[i] += bn * hinge + bp * linear;
            }
        }
        (h, q)
    }

    /// The two terms of `R = max(H₁ + Q₂, H₂ + Q₁)`: the network says class 0 where the first is
    /// larger, and its decision boundary is where they are equal.
    pub fn terms(&self, x: Point) -> [f64; 2] {
        let (h, q) = self.tropical(x);
        [h[0] + q[1], h[1] + q[0]]
    }

    /// `(shift, G₁, G₂)`: the zonotopes' common translation and their generators, one per hidden
    /// unit (a pruned unit's are zero).
    pub fn generators(&self) -> (Point, Vec<Point>, Vec<Point>) {
        let mut shift = [0.0; 2];
        let mut g1 = Vec::with_capacity(self.a.len());
        let mut g2 = Vec::with_capacity(self.a.len());
        for (j, &a) in self.a.iter().enumerate() {
            let (b1, b2) = (self.b[0][j], self.b[1][j]);
            let w = b1.abs() + b2.abs();
            shift[0] += w * neg(a[0]);
            shift[1] += w * neg(a[1]);
            let w1 = pos(b1) + neg(b2);
            let w2 = pos(b2) + neg(b1);
            g1.push([w1 * a[0], w1 * a[1]]);
            g2.push([w2 * a[0], w2 * a[1]]);
        }
        (shift, g1, g2)
    }

    /// The Newton polygon of `R` and its two zonotopes.
    pub fn polygon(&self) -> Polygon {
        let (shift, g1, g2) = self.generators();
        let z1 = zonotope(shift, &g1);
        let z2 = zonotope(shift, &g2);
        let both: Vec<Point> = z1.iter().chain(&z2).copied().collect();
        Polygon {
            hull: convex_hull(&both),
            z1,
            z2,
        }
    }
}

/// A network's Newton polygon (`hull`) and the zonotopes it is the hull of; each a list of
/// vertices, counter-clockwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    pub hull: Vec<Point>,
    pub z1: Vec<Point>,
    pub z2: Vec<Point>,
}

/// The vertices, counter-clockwise, of the zonotope `shift + Σ_j [0, g_j]`.
///
/// Each generator is turned to point into the upper half-plane (a segment `[0, g]` is `g + [0, −g]`,
/// so the base moves by `g`); walking the generators in order of angle from the base traces the
/// right-hand chain to the top, and walking them again backwards traces the left-hand chain.
pub fn zonotope(shift: Point, generators: &[Point]) -> Vec<Point> {
    let mut base = shift;
    let mut up: Vec<Point> = Vec::with_capacity(generators.len());
    for &g in generators {
        if g == [0.0, 0.0] {
            continue;
        }
        if g[1] < 0.0 || (g[1] == 0.0 && g[0] < 0.0) {
            base[0] += g[0];
            base[1] += g[1];
            up.push([-g[0], -g[1]]);
        } else {
            up.push(g);
        }
    }
    up.sort_by(|a, b| a[1].atan2(a[0]).total_cmp(&b[1].atan2(b[0])));
    let mut walk = vec![base];
    let mut p = base;
    for sign in [1.0, -1.0] {
        for g in &up {
            p = [p[0] + sign * g[0], p[1] + sign * g[1]];
            walk.push(p);
        }
    }
    convex_hull(&walk)
}

/// The convex hull of `points`, counter-clockwise from the lowest (then leftmost) vertex, without
/// collinear points (Andrew's monotone chain). One point for a point, its two ends (lowest
/// first) for a segment.
pub fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut p: Vec<Point> = points.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    let lowest_first = |mut v: Vec<Point>| {
        v.sort_by(|a, b| a[1].total_cmp(&b[1]).then(a[0].total_cmp(&b[0])));
        v
    };
    if p.len() < 3 {
        return lowest_first(p);
    }
    let cross = |o: Point, a: Point, b: Point| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<Point> = Vec::with_capacity(2 * p.len());
    for pass in [&p[..], &p.iter().rev().copied().collect::<Vec<_>>()[..]] {
        let start = hull.len();
        for &q in pass {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    if hull.len() < 3 {
        // Every point on one line: its two ends.
        return lowest_first(vec![p[0], p[p.len() - 1]]);
    }
    // Start at the lowest, then leftmost, vertex.
    let first = (0..hull.len())
        .min_by(|&i, &j| {
            hull[i][1]
                .total_cmp(&hull[j][1])
                .then(hull[i][0].total_cmp(&hull[j][0]))
        })
        .unwrap_or(0);
    hull.rotate_left(first);
    hull
}

/// `max_v v·u` over the vertices: the support function of their convex hull in direction `u`.
pub fn support(vertices: &[Point], u: Point) -> f64 {
    vertices
        .iter()
        .map(|&v| dot(v, u))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The area centroid of a convex polygon (counter-clockwise vertices); the mean of the vertices
/// for a segment or a point.
pub fn centroid(vertices: &[Point]) -> Point {
    let n = vertices.len();
    let mut area = 0.0;
    let mut c = [0.0; 2];
    for i in 0..n {
        let (p, q) = (vertices[i], vertices[(i + 1) % n]);
        let w = p[0] * q[1] - q[0] * p[1];
        area += w;
        c[0] += (p[0] + q[0]) * w;
        c[1] += (p[1] + q[1]) * w;
    }
    let scale = vertices
        .iter()
        .map(|v| v[0].abs().max(v[1].abs()))
        .fold(0.0, f64::max);
    if n >= 3 && area.abs() > 1e-12 * scale * scale {
        [c[0] / (3.0 * area), c[1] / (3.0 * area)]
    } else {
        let m = n.max(1) as f64;
        [
            vertices.iter().map(|v| v[0]).sum::<f64>() / m,
            vertices.iter().map(|v| v[1]).sum::<f64>() / m,
        ]
    }
}

/// Directions at which [`shape_distance`] compares support functions: one per degree.
const DIRECTIONS: usize = 360;

/// How far apart two convex polygons' shapes are, up to position and scale, keeping orientation:
/// each polygon is centred on its centroid, its support function `h(θ)` is taken at one direction
/// per degree and divided by its root mean square, and the distance is the root mean square of
/// the difference. 0 for the same shape at any position and size; at most 2. `None` when either
/// polygon is a single point (no shape).
pub fn shape_distance(p: &[Point], q: &[Point]) -> Option<f64> {
    let normalised = |v: &[Point]| -> Option<Vec<f64>> {
        let c = centroid(v);
        let centred: Vec<Point> = v.iter().map(|p| [p[0] - c[0], p[1] - c[1]]).collect();
        let h: Vec<f64> = (0..DIRECTIONS)
            .map(|k| {
                let t = std::f64::consts::TAU * k as f64 / DIRECTIONS as f64;
                support(&centred, [t.cos(), t.sin()])
            })
            .collect();
        let rms = (h.iter().map(|x| x * x).sum::<f64>() / DIRECTIONS as f64).sqrt();
        (rms > 0.0 && rms.is_finite()).then(|| h.iter().map(|x| x / rms).collect())
    };
    let (hp, hq) = (normalised(p)?, normalised(q)?);
    let sq = hp
        .iter()
        .zip(&hq)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>();
    Some((sq / DIRECTIONS as f64).sqrt())
}

/// Writes `svg` to `path` atomically.
fn write(path: &Path, svg: &str) -> Result<()> {
    lth_store::write_atomic(path, svg.as_bytes()).map_err(|e| TropicalError::Picture {
        path: path.to_owned(),
        problem: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn close(a: Point, b: Point, tol: f64) -> bool {
        (a[0] - b[0]).abs() <= tol && (a[1] - b[1]).abs() <= tol
    }

    /// A hand-worked network of two hidden units:
    /// A = [[1, 1], [−1, 2]], B = [[1, −1], [0, 2]].
    /// |B| summed over classes is (1, 3) by unit, A⁻ is (0, 0) and (1, 0), so the shift is
    /// 3·(1, 0) = (3, 0). G₁ = (B⁺₁ + B⁻₂)·A = 1·(1, 1) and 0; G₂ = (B⁺₂ + B⁻₁)·A = 0 and
    /// (2 + 1)·(−1, 2) = (−3, 6). So Z₁ is the segment (3, 0)–(4, 1), Z₂ the segment (3, 0)–(0, 6),
    /// and the Newton polygon is the triangle (3, 0), (4, 1), (0, 6).
    #[test]
    fn a_hand_worked_two_unit_network_has_the_hand_computed_polygon() {
        let net = OneHidden {
            a: vec![[1.0, 1.0], [-1.0, 2.0]],
            c1: vec![0.5, -0.25],
            b: [vec![1.0, -1.0], vec![0.0, 2.0]],
            c2: [0.1, -0.2],
        };
        let (shift, g1, g2) = net.generators();
        assert_eq!(shift, [3.0, 0.0]);
        assert_eq!(g1, vec![[1.0, 1.0], [0.0, 0.0]]);
        assert_eq!(g2, vec![[0.0, 0.0], [-3.0, 6.0]]);
        let poly = net.polygon();
        assert_eq!(poly.z1, vec![[3.0, 0.0], [4.0, 1.0]]);
        assert_eq!(poly.z2, vec![[3.0, 0.0], [0.0, 6.0]]);
        assert_eq!(poly.hull, vec![[3.0, 0.0], [4.0, 1.0], [0.0, 6.0]]);
    }

    /// A square's zonotope: two generators give a parallelogram, counter-clockwise from the lowest
    /// vertex, whatever their signs and order; parallel generators merge into one edge.
    #[test]
    fn zonotopes_of_hand_made_generators() {
        let square = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert_eq!(zonotope([0.0, 0.0], &[[0.0, 1.0], [1.0, 0.0]]), square);
        // −(1, 0) moves the base to (−1, 0): the same square one step left.
        assert_eq!(
            zonotope([0.0, 0.0], &[[-1.0, 0.0], [0.0, 1.0]]),
            vec![[-1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [-1.0, 1.0]]
        );
        assert_eq!(
            zonotope([0.0, 0.0], &[[1.0, 0.0], [0.5, 0.0], [0.0, 1.0]]),
            vec![[0.0, 0.0], [1.5, 0.0], [1.5, 1.0], [0.0, 1.0]]
        );
        // A hexagon: three generators at 0°, 60° and 120°.
        let s = 3f64.sqrt() / 2.0;
        let hex = zonotope([0.0, 0.0], &[[1.0, 0.0], [0.5, s], [-0.5, s]]);
        assert_eq!(hex.len(), 6);
        assert!(close(hex[0], [0.0, 0.0], 1e-12));
        assert!(close(hex[3], [1.0, 2.0 * s], 1e-12));
        assert_eq!(zonotope([2.0, 3.0], &[]), vec![[2.0, 3.0]]);
    }

    /// Shape distance: zero for the same polygon moved and scaled, positive for a rotated or
    /// different one, symmetric.
    #[test]
    fn shape_distance_ignores_position_and_scale_but_not_orientation() {
        let tri = vec![[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]];
        let moved: Vec<Point> = tri
            .iter()
            .map(|p| [3.0 * p[0] + 5.0, 3.0 * p[1] - 1.0])
            .collect();
        assert!(shape_distance(&tri, &moved).unwrap() < 1e-12);
        let turned: Vec<Point> = tri.iter().map(|p| [-p[1], p[0]]).collect();
        let d = shape_distance(&tri, &turned).unwrap();
        assert!(d > 0.1, "{d}");
        assert!((d - shape_distance(&turned, &tri).unwrap()).abs() < 1e-12);
        assert_eq!(shape_distance(&tri, &[[1.0, 1.0]]), None);
    }

    fn network(p: usize) -> impl Strategy<Value = OneHidden> {
        (
            proptest::collection::vec((-2.0..2.0f64, -2.0..2.0f64, -1.0..1.0f64), p),
            proptest::collection::vec((-2.0..2.0f64, -2.0..2.0f64), p),
            (-1.0..1.0f64, -1.0..1.0f64),
        )
            .prop_map(|(first, second, c2)| OneHidden {
                a: first.iter().map(|&(x, y, _)| [x, y]).collect(),
                c1: first.iter().map(|f| f.2).collect(),
                b: [
                    second.iter().map(|s| s.0).collect(),
                    second.iter().map(|s| s.1).collect(),
                ],
                c2: [c2.0, c2.1],
            })
    }

    proptest! {
        /// The tropical form is the network: H − Q equals each logit, and the side of the
        /// boundary `R`'s terms give is the network's class.
        #[test]
        fn the_tropical_polynomials_are_the_network(
            net in network(7),
            x in (-3.0..3.0f64, -3.0..3.0f64),
        ) {
            let x = [x.0, x.1];
            let (h, q) = net.tropical(x);
            let f = net.logits(x);
            let scale = 1.0 + h.iter().chain(&q).map(|v| v.abs()).fold(0.0, f64::max);
            for i in 0..2 {
                prop_assert!((h[i] - q[i] - f[i]).abs() <= 1e-12 * scale);
            }
            let t = net.terms(x);
            prop_assert!(((t[0] - t[1]) - (f[0] - f[1])).abs() <= 1e-12 * scale);
        }

        /// The law that defines a Newton polygon: a tropical polynomial grows along a direction
        /// `u` as the polygon's support function, `R(t·u) / t → max_v v·u`. Evaluated from the
        /// network at t = 10⁶, against the hull built from the zonotopes; the biases add
        /// `O(|c| / t)`.
        #[test]
        fn the_polygon_is_the_newton_polygon_of_the_boundary_polynomial(
            net in network(6),
            angle in 0.0..std::f64::consts::TAU,
        ) {
            let u = [angle.cos(), angle.sin()];
            let t = 1e6;
            let terms = net.terms([t * u[0], t * u[1]]);
            let growth = terms[0].max(terms[1]) / t;
            let hull = net.polygon().hull;
            let h = support(&hull, u);
            prop_assert!((growth - h).abs() <= 1e-5 * (1.0 + h.abs()), "{growth} vs {h}");
            // Each zonotope is the Newton polygon of its own term.
            let z1 = support(&net.polygon().z1, u);
            prop_assert!((terms[0] / t - z1).abs() <= 1e-5 * (1.0 + z1.abs()));
        }

        /// The hull holds every point it is built from, and is convex and counter-clockwise.
        #[test]
        fn hulls_are_convex_and_hold_their_points(
            pts in proptest::collection::vec((-5.0..5.0f64, -5.0..5.0f64), 3..40),
        ) {
            let pts: Vec<Point> = pts.iter().map(|&(x, y)| [x, y]).collect();
            let hull = convex_hull(&pts);
            let n = hull.len();
            prop_assume!(n >= 3);
            for i in 0..n {
                let (o, a) = (hull[i], hull[(i + 1) % n]);
                for &p in pts.iter().chain(&hull) {
                    let c = (a[0] - o[0]) * (p[1] - o[1]) - (a[1] - o[1]) * (p[0] - o[0]);
                    prop_assert!(c >= -1e-9, "{p:?} outside edge {o:?}-{a:?}");
                }
            }
        }
    }
}
