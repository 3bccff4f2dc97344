//! How far two evaluation orders of the same floating-point computation can disagree: the one
//! home of the tolerances with which tests compare two computations of a network (packed copies
//! against each network alone, a narrow network against its zeroed wide one, channels-last
//! against contiguous, a packed optimiser step against the same step alone).
//!
//! The libraries underneath (MKL, oneDNN, cuBLAS, cuDNN) choose their kernels by processor, thread
//! count and problem shape, so the same product is summed in another order on an AVX2 machine, an
//! AVX-512 one and a GPU. A tolerance read off one machine fails on another; these are derived from
//! the operation instead.
//!
//! **The law.** A sum of n terms, computed in any order (blocked, pairwise, with fused
//! multiply-adds) in arithmetic of unit roundoff u, errs by at most λ·√n·u·Σ|terms| except with
//! probability 2n·exp(−λ²/2) (Higham and Mary, "A new approach to probabilistic rounding error
//! analysis", SIAM J. Sci. Comput. 41(5), 2019, Theorem 2.4). Two orders of it differ by at most
//! twice that. Along a network the relative errors of successive reductions add, to first order, so
//! a value reached through reductions of lengths n₁, n₂, … differs between two orders by at most
//! 2·λ·u·Σᵢ√nᵢ of its scale ([`Reductions::bound`]; where results are stored in a narrower type,
//! as bfloat16 autocast stores products, each reduction adds one unit in that type's last place). With λ = [`LAMBDA`] = 8, one value exceeds
//! it with probability below 2·10⁵·e⁻³² ≈ 3·10⁻⁹ for reductions of up to 10⁵ terms.
//!
//! **The scale.** The law is relative to Σ|terms|, which libtorch does not expose. [`relative`]
//! measures a difference against the largest magnitude of the compared tensor instead: where an
//! element's terms cancel, its own value is small but its error stays of the size of its terms,
//! which are of the size of the tensor's largest values (weights, activations and gradients of a
//! layer share one scale at these initialisations).
//!
//! **What it does not cover.** Functions whose output is not Lipschitz in their input at the
//! scale of rounding: Adam's first step, `lr·g/(|g|+ε)`, has slope `lr/ε` at g = 0, so a rounding
//! difference in a gradient near zero moves the weight by up to 2·lr; a ReLU or a max-pool whose
//! inputs are within rounding of a tie routes a gradient elsewhere, moving one term of a reduction
//! whole; an argmax (accuracy) flips where two logits are within rounding. In float32 such ties
//! happen at every step of a large network. Tests therefore compare gradients in float64 ([`F64`],
//! where the bound is about 1e-13 and ties practically never happen), and float32 training as
//! trajectories.
//! Nor does it cover training dynamics: after a few steps a flipped ReLU or max-pool choice grows,
//! and differences measure the dynamics, not the arithmetic.
//!
//! **Trajectories.** Two trainings of the same run in other floating-point orders are compared by
//! where they end against how far they trained ([`Trajectory`]): the same steps from another start
//! or on other data end about √2 times the distance trained apart (their moves are nearly
//! orthogonal in hundreds of thousands of dimensions), while rounding that flips a few ReLUs,
//! max-pool choices or Adam signs grows with the dynamics but stays an order of magnitude below
//! that over the tens of steps of a test ([`TRAJECTORY`]). The bound is on the dynamics' own
//! scale, so it holds whatever kernels a machine runs.

use tch::Tensor;

use crate::{Model, Named};

/// How far a trajectory may stray from the same run computed in another floating-point order, as
/// a fraction of the distance it trained (see the module documentation).
pub const TRAJECTORY: f64 = 0.1;

/// Where two trainings of one run ended against each other and against where they started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trajectory {
    /// ‖b − a‖ over the compared parameters.
    pub apart: f64,
    /// ‖a − start‖: the distance `a` trained.
    pub trained: f64,
}

impl Trajectory {
    /// The trajectories of `a` and `b` from `start`, over the parameters `names` (every one must
    /// be in all three).
    pub fn of(names: &[String], start: &Named, a: &Named, b: &Named) -> Result<Trajectory, String> {
        let flat = |w: &Named, which: &str| -> Result<Tensor, String> {
            let parts = names
                .iter()
                .map(|n| {
                    w.get(n)
                        .map(|t| t.flatten(0, -1))
                        .ok_or_else(|| format!("{which} has no `{n}`"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Tensor::cat(&parts, 0))
        };
        let (s, a, b) = (flat(start, "start")?, flat(a, "a")?, flat(b, "b")?);
        Ok(Trajectory {
            apart: (&b - &a).norm().double_value(&[]),
            trained: (&a - &s).norm().double_value(&[]),
        })
    }

    /// Whether `b` repeated `a`'s trajectory: ended within [`TRAJECTORY`] of the distance trained
    /// (and something was trained).
    pub fn repeated(&self) -> bool {
        self.trained > 0.0 && self.apart <= TRAJECTORY * self.trained
    }
}

/// Unit roundoff of IEEE single precision (float32): 2⁻²⁴.
pub const F32: f64 = 5.960_464_477_539_063e-8;

/// Unit roundoff of IEEE double precision (float64): 2⁻⁵³.
pub const F64: f64 = 1.110_223_024_625_156_5e-16;

/// Unit roundoff of bfloat16: 2⁻⁸ (8 bits of significand).
pub const BF16: f64 = 3.906_25e-3;

/// The probabilistic bound's λ (see the module documentation).
pub const LAMBDA: f64 = 8.0;

/// The lengths of the reductions on the longest path to a network's outputs and to its
/// gradients, for one batch: what [`Reductions::bound`] turns into a tolerance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reductions {
    /// Forward pass: each kernel's fan-in, each BatchNorm's statistics (batch × positions), the
    /// softmax over classes and the loss's mean over the batch.
    pub forward: Vec<usize>,
    /// Gradients: the forward pass, then back through each kernel (its fan-out) and each
    /// BatchNorm (batch × positions again), and the final reduction of a weight's gradient over
    /// the batch and its output positions.
    pub gradient: Vec<usize>,
}

impl Reductions {
    /// The reductions of `model` for batches of `batch` examples with `classes` outputs.
    pub fn of(model: &Model, batch: usize, classes: usize) -> Reductions {
        let bn = model.has_batchnorm();
        let mut forward = Vec::new();
        let mut backward = Vec::new();
        let mut widest = batch;
        for ((_, w), &positions) in model.prunable_tensors().iter().zip(model.positions()) {
            let size = w.size();
            let numel: i64 = size.iter().product();
            let (out, inp) = (size[0], size.get(1).copied().unwrap_or(1));
            let spread = batch * positions as usize;
            forward.push((numel / out) as usize);
            backward.push((numel / inp) as usize);
            // A convolution's output is normalised over the batch and its positions.
            if bn && size.len() > 2 {
                forward.push(spread);
                backward.push(spread);
            }
            widest = widest.max(spread);
        }
        forward.extend([classes, batch]);
        let mut gradient = forward.clone();
        gradient.extend(backward);
        gradient.push(widest);
        Reductions { forward, gradient }
    }

    /// Σᵢ 2·(λ·√nᵢ·`accumulate` + `store`) over `lengths`: how far two evaluation orders of a
    /// value reached through them can differ, relative to its scale, when each reduction sums in
    /// arithmetic of unit roundoff `accumulate` and stores its result rounded to `store` (two
    /// nearly equal sums may round to neighbouring values: one unit in the last place, 2·`store`).
    pub fn bound(lengths: &[usize], accumulate: f64, store: f64) -> f64 {
        lengths
            .iter()
            .map(|&n| 2.0 * (LAMBDA * (n as f64).sqrt() * accumulate + store))
            .sum()
    }

    /// [`Reductions::bound`] of the forward pass in float32.
    pub fn forward_bound(&self) -> f64 {
        Reductions::bound(&self.forward, F32, F32)
    }

    /// [`Reductions::bound`] of the gradients in float32.
    pub fn gradient_bound(&self) -> f64 {
        Reductions::bound(&self.gradient, F32, F32)
    }

    /// [`Reductions::bound`] of the forward pass under bfloat16 autocast: products accumulate in
    /// float32 and their results are stored in bfloat16 (counted for every reduction, which
    /// over-counts the softmax and BatchNorm statistics that autocast keeps in float32).
    pub fn forward_bound_bf16(&self) -> f64 {
        Reductions::bound(&self.forward, F32, BF16)
    }

    /// [`Reductions::bound`] of the gradients under bfloat16 autocast (as
    /// [`Reductions::forward_bound_bf16`]).
    pub fn gradient_bound_bf16(&self) -> f64 {
        Reductions::bound(&self.gradient, F32, BF16)
    }
}

/// Largest |a − b| over the largest |b|, or over `floor` where every |b| is smaller: a difference
/// on the tensor's own scale. The floor is for tensors that start at zero (BatchNorm shifts, running
/// means), whose values after a step are sums of nearly cancelling terms of order `floor`.
pub fn relative(a: &Tensor, b: &Tensor, floor: f64) -> f64 {
    let diff = (a - b).abs().max().double_value(&[]);
    diff / b.abs().max().double_value(&[]).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_grows_with_the_square_root_of_each_reduction() {
        // Two reductions of 100 terms: 2·(8·10·u + u) each.
        let b = Reductions::bound(&[100, 100], F32, F32);
        assert!((b - 324.0 * F32).abs() < 1e-18);
        // One of 400 accumulates as much as two of 100, and is stored once.
        let one = Reductions::bound(&[400], F32, F32);
        assert!((one - 322.0 * F32).abs() < 1e-18);
        // Stored in bfloat16: one unit of 2⁻⁸ in the last place per reduction.
        let bf = Reductions::bound(&[100, 100], F32, BF16);
        assert!((bf - (320.0 * F32 + 4.0 * BF16)).abs() < 1e-15);
    }

    #[test]
    fn reductions_follow_the_network() {
        let m = Model::new("lenet_300_100", [1, 28, 28], 10, None, 1, tch::Device::Cpu).unwrap();
        let r = Reductions::of(&m, 50, 10);
        // Fan-ins 784, 300, 100; softmax over 10; the loss's mean over 50.
        assert_eq!(r.forward, [784, 300, 100, 10, 50]);
        // Then fan-outs 300, 100, 10, and a weight's gradient over the batch.
        assert_eq!(r.gradient, [784, 300, 100, 10, 50, 300, 100, 10, 50]);
        let c = Model::new(
            "cifar_resnet_20",
            [3, 32, 32],
            10,
            None,
            1,
            tch::Device::Cpu,
        )
        .unwrap();
        let r = Reductions::of(&c, 2, 10);
        // The stem: 27 in, normalised over 2 × 32 × 32.
        assert_eq!(r.forward[..2], [27, 2048]);
        assert!(r.gradient.len() > r.forward.len());
        assert_eq!(r.gradient.last(), Some(&2048));
    }

    #[test]
    fn a_trajectory_repeats_within_a_tenth_of_the_distance_trained() {
        let named = |v: &[f32]| -> Named { vec![("w".to_owned(), Tensor::from_slice(v))].into() };
        let names = ["w".to_owned()];
        let (start, a) = (named(&[0.0, 0.0]), named(&[3.0, 4.0]));
        let close = Trajectory::of(&names, &start, &a, &named(&[3.0, 4.4])).unwrap();
        assert_eq!(close.trained, 5.0);
        assert!((close.apart - 0.4).abs() < 1e-6 && close.repeated());
        // Another direction of the same length: √2 × 5 apart.
        let other = Trajectory::of(&names, &start, &a, &named(&[4.0, -3.0])).unwrap();
        assert!(!other.repeated());
        assert!(
            !Trajectory::of(&names, &start, &start, &start)
                .unwrap()
                .repeated()
        );
        assert!(Trajectory::of(&["v".to_owned()], &start, &a, &a).is_err());
    }

    #[test]
    fn relative_divides_by_the_scale_or_the_floor() {
        let a = Tensor::from_slice(&[1.0f32, 2.0]);
        let b = Tensor::from_slice(&[1.0f32, 4.0]);
        assert_eq!(relative(&a, &b, 1.0), 0.5);
        let small = Tensor::from_slice(&[0.0f32, 0.001]);
        assert!(
            (relative(&small, &Tensor::from_slice(&[0.0f32, 0.002]), 1.0) - 0.001).abs() < 1e-9
        );
    }
}
