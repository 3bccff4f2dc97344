//! Datasets lth draws itself from a fixed seed, so that they need no files: two moons, the 2-D
//! toy problem of the tropical-geometry pictures (Alfarra et al.).
//!
//! They go through the same pipeline as image datasets: each example is a `1×1×2` "image" of
//! `u8` values, normalised on the device by the registry's mean and standard deviation. The
//! coordinates are stored on a grid of 4/255 ≈ 0.016 over [−1.5, 2.5], which the normalisation
//! maps back to the plane: `x = u8 / 255 · 4 − 1.5`. The grid step is a sixth of the moons' noise
//! (σ = 0.1), so the stored points are the drawn ones to within a rounding a picture cannot show.

use tch::Tensor;

use crate::Split;

/// What a generated dataset is drawn by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// Two interleaved half circles (as scikit-learn's `make_moons`), with Gaussian noise.
    TwoMoons,
}

/// Where the stored coordinates start, and the width of their range.
pub const LOW: f64 = -1.5;
pub const SPAN: f64 = 4.0;
/// The registry's normalisation that maps a stored `u8` back to its coordinate:
/// `(u8 / 255 − MEAN) / STD = u8 / 255 · SPAN + LOW`.
pub const MEAN: f64 = -LOW / SPAN;
pub const STD: f64 = 1.0 / SPAN;

/// The moons' noise: the standard deviation of the Gaussian added to each coordinate.
pub const NOISE: f64 = 0.1;
/// Training and test examples (half of each moon in each split).
pub const TRAIN: usize = 2000;
pub const TEST: usize = 1000;
/// The fixed seed of the draws: the data never change.
const SEED: u64 = 0x5eed_0003;

/// The stored `u8` of a coordinate.
pub fn encode(v: f64) -> u8 {
    ((v - LOW) / SPAN * 255.0).round().clamp(0.0, 255.0) as u8
}

/// The coordinate a stored `u8` stands for (what the network sees after normalisation).
pub fn decode(u: u8) -> f64 {
    f64::from(u) / 255.0 * SPAN + LOW
}

/// `n` points of two moons, alternating between the outer moon (label 0) and the inner one
/// (label 1), from stream `split` of the fixed seed: (x, y, label) before storage.
pub fn two_moons(n: usize, split: &str) -> Vec<(f64, f64, i64)> {
    let mut angle = lth_rng::Stream::named(SEED, "two_moons_angle", split);
    let mut noise = lth_rng::Stream::named(SEED, "two_moons_noise", split);
    let jitter = noise.normal(2 * n, NOISE);
    (0..n)
        .map(|i| {
            let t = std::f64::consts::PI * angle.unit();
            let label = (i % 2) as i64;
            let (x, y) = if label == 0 {
                (t.cos(), t.sin())
            } else {
                (1.0 - t.cos(), 0.5 - t.sin())
            };
            (
                x + f64::from(jitter[2 * i]),
                y + f64::from(jitter[2 * i + 1]),
                label,
            )
        })
        .collect()
}

/// The generator's training and test splits, stored as the pipeline stores images.
pub fn load(g: Generator) -> (Split, Split) {
    match g {
        Generator::TwoMoons => {
            let split = |n: usize, name: &str| {
                let points = two_moons(n, name);
                let bytes: Vec<u8> = points
                    .iter()
                    .flat_map(|&(x, y, _)| [encode(x), encode(y)])
                    .collect();
                let labels: Vec<i64> = points.iter().map(|p| p.2).collect();
                Split {
                    images: Tensor::from_slice(&bytes).view([n as i64, 1, 1, 2]),
                    labels: Tensor::from_slice(&labels),
                }
            };
            (split(TRAIN, "train"), split(TEST, "test"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored grid is within half a step of every coordinate in range, and the registry's
    /// normalisation is its inverse.
    #[test]
    fn storage_rounds_to_the_grid_and_normalisation_undoes_it() {
        let step = SPAN / 255.0;
        for i in 0..=400 {
            let v = LOW + SPAN * f64::from(i) / 400.0;
            assert!((decode(encode(v)) - v).abs() <= step / 2.0 + 1e-12, "{v}");
            let normalised = (f64::from(encode(v)) / 255.0 - MEAN) / STD;
            assert!((normalised - decode(encode(v))).abs() < 1e-12);
        }
        assert_eq!(encode(-9.0), 0);
        assert_eq!(encode(9.0), 255);
    }

    /// Two moons: balanced labels, each moon's points near its half circle (radius 1 about its
    /// centre, to within a few noise deviations), fixed by the seed, and different per split.
    #[test]
    fn moons_lie_on_their_half_circles_and_never_change() {
        let points = two_moons(1000, "train");
        assert_eq!(points.iter().filter(|p| p.2 == 1).count(), 500);
        let mut far = 0;
        for &(x, y, label) in &points {
            let (cx, cy) = if label == 0 { (0.0, 0.0) } else { (1.0, 0.5) };
            let r = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
            if (r - 1.0).abs() > 3.0 * NOISE * std::f64::consts::SQRT_2 {
                far += 1;
            }
        }
        // Beyond 3σ of a 2-D Gaussian's radius: about 1% of points.
        assert!(far < 30, "{far} points far from their moon");
        assert_eq!(points, two_moons(1000, "train"));
        assert_ne!(points[..10], two_moons(10, "test")[..]);
        // Every stored coordinate is inside the stored range (none clamped).
        assert!(
            points
                .iter()
                .all(|&(x, y, _)| (LOW..LOW + SPAN).contains(&x) && (LOW..LOW + SPAN).contains(&y))
        );
    }
}
