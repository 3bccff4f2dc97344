//! Sparsity in another basis of parameter space (Alabdulmohsin, Markeeva, Keysers & Tolstikhin, "A
//! Generalized Lottery Ticket Hypothesis", arXiv:2107.06825, 2021).
//!
//! A linear layer's weight `W` (out × in) is written in orthonormal bases `B_out` and `B_in` as
//! `W = B_out Z B_inᵀ`, and a ticket keeps some coefficients of `Z` rather than some entries of
//! `W`. [`LayerBasis::coefficients`] gives `Z`, [`LayerBasis::weights`] gives `W` back, and
//! [`LayerBasis::project`] keeps a mask's coefficients: `P(X) = B_out (M ⊙ B_outᵀ X B_in) B_inᵀ`.
//! Because the bases are orthonormal, `P` is the orthogonal projection onto the kept subspace, and
//! stochastic gradient descent (with momentum and L2 weight decay, both linear) on `Z` under the
//! mask is the same as SGD on `W` with every gradient projected by `P` and `W` starting in the
//! subspace (a test): training in the pruned basis needs no second parameterisation of the network.
//!
//! The canonical basis is the identity: its coefficients are the weights themselves, and pruning
//! by their magnitudes is ordinary magnitude pruning, mask for mask (a test).

use tch::{Kind, Tensor};

use crate::{PruneError, Result};

/// Which orthonormal basis a layer's coefficients are taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The identity: coefficients are weights (ordinary pruning).
    Canonical,
    /// The orthonormal DCT-II on the rows and on the columns of the matrix.
    Dct,
    /// A random orthogonal matrix per side: the Q of a QR factorisation of a Gaussian matrix
    /// drawn from the seed, its columns' signs fixed so that R has a positive diagonal (the Haar
    /// measure).
    Random(u64),
}

impl Basis {
    /// The basis's n × n orthonormal matrix (its columns are the basis vectors), in float64;
    /// `side` separates the draws of a layer's two random matrices.
    pub fn matrix(self, n: i64, side: &str) -> Tensor {
        match self {
            Basis::Canonical => Tensor::eye(n, (Kind::Double, tch::Device::Cpu)),
            Basis::Dct => dct(n),
            Basis::Random(seed) => random_orthogonal(n, seed, side),
        }
    }

    /// The name flags and files use.
    pub fn name(self) -> String {
        match self {
            Basis::Canonical => "canonical".into(),
            Basis::Dct => "dct".into(),
            Basis::Random(seed) => format!("random:{seed}"),
        }
    }
}

/// The orthonormal DCT-II as columns: column k is `c_k cos(π (2i + 1) k / 2n)` over i, with
/// `c_0 = √(1/n)` and `c_k = √(2/n)`.
pub fn dct(n: i64) -> Tensor {
    let nf = n as f64;
    let mut v = Vec::with_capacity((n * n) as usize);
    for i in 0..n {
        for k in 0..n {
            let c = if k == 0 {
                (1.0 / nf).sqrt()
            } else {
                (2.0 / nf).sqrt()
            };
            v.push(c * (std::f64::consts::PI * (2 * i + 1) as f64 * k as f64 / (2.0 * nf)).cos());
        }
    }
    Tensor::from_slice(&v).view([n, n])
}

/// A random orthogonal n × n matrix from `seed` (see [`Basis::Random`]).
pub fn random_orthogonal(n: i64, seed: u64, side: &str) -> Tensor {
    let g = lth_rng::Stream::new(seed, &format!("basis_{side}"), n as u64)
        .normal((n * n) as usize, 1.0);
    let a = Tensor::from_slice(&g).to_kind(Kind::Double).view([n, n]);
    let (q, r) = Tensor::linalg_qr(&a, "reduced");
    let signs = r.diagonal(0, 0, 1).sign();
    q * signs.unsqueeze(0)
}

/// The bases of one linear layer, as float32 matrices on the weight's device.
#[derive(Debug)]
pub struct LayerBasis {
    out: Tensor,
    inp: Tensor,
    canonical: bool,
}

impl LayerBasis {
    /// The bases of a weight of shape `[out, in]` on `device`.
    pub fn new(basis: Basis, shape: &[i64], device: tch::Device) -> Result<LayerBasis> {
        let &[out, inp] = shape else {
            return Err(PruneError::Mismatch(format!(
                "a basis is for a linear layer's matrix, not a tensor of shape {shape:?}"
            )));
        };
        let m = |n, side| basis.matrix(n, side).to_kind(Kind::Float).to_device(device);
        Ok(LayerBasis {
            out: m(out, "out"),
            inp: m(inp, "in"),
            canonical: basis == Basis::Canonical,
        })
    }

    /// `Z = B_outᵀ W B_in` (the weights themselves in the canonical basis).
    pub fn coefficients(&self, w: &Tensor) -> Tensor {
        if self.canonical {
            return w.copy();
        }
        self.out.tr().matmul(w).matmul(&self.inp)
    }

    /// `W = B_out Z B_inᵀ`.
    pub fn weights(&self, z: &Tensor) -> Tensor {
        if self.canonical {
            return z.copy();
        }
        self.out.matmul(z).matmul(&self.inp.tr())
    }

    /// `P(X) = B_out (M ⊙ B_outᵀ X B_in) B_inᵀ`: `x` with only the coefficients `keep` (a boolean
    /// mask of Z's shape) kept.
    pub fn project(&self, x: &Tensor, keep: &Tensor) -> Tensor {
        self.weights(&(self.coefficients(x) * keep.to_kind(x.kind())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Criterion, Keep, Mask, PruningHparams, Strategy, select_layerwise};

    /// A seeded standard-normal float32 tensor of `shape` (tests never read the global generator).
    fn randn(shape: &[i64], seed: u64) -> Tensor {
        let n: i64 = shape.iter().product();
        let v = lth_rng::Stream::new(seed, "basis_test", 0).normal(n as usize, 1.0);
        Tensor::from_slice(&v).view(shape)
    }

    fn max_abs(t: &Tensor) -> f64 {
        t.abs().max().double_value(&[])
    }

    /// Every basis is orthonormal in float64, to n rounding errors of a length-n dot product.
    #[test]
    fn the_bases_are_orthonormal() {
        for n in [1, 2, 7, 64, 300] {
            for basis in [Basis::Canonical, Basis::Dct, Basis::Random(3)] {
                let b = basis.matrix(n, "out");
                let eye = Tensor::eye(n, (Kind::Double, tch::Device::Cpu));
                let err = max_abs(&(b.tr().matmul(&b) - &eye));
                assert!(
                    err <= 4.0 * n as f64 * f64::EPSILON,
                    "{basis:?} n = {n}: {err}"
                );
                let err = max_abs(&(b.matmul(&b.tr()) - eye));
                assert!(
                    err <= 4.0 * n as f64 * f64::EPSILON,
                    "{basis:?} n = {n}: {err}"
                );
            }
        }
        // Seeds and sides draw other matrices; the same ones draw the same.
        let a = Basis::Random(3).matrix(5, "out");
        assert!(a.equal(&Basis::Random(3).matrix(5, "out")));
        assert!(!a.equal(&Basis::Random(4).matrix(5, "out")));
        assert!(!a.equal(&Basis::Random(3).matrix(5, "in")));
    }

    /// The 4-point DCT-II worked by hand: column 0 is constant 1/2, column 1 is
    /// √(1/2)·cos(π(2i+1)/8), column 2 alternates ±1/2 in pairs.
    #[test]
    fn the_dct_is_the_hand_worked_one() {
        let d = Vec::<f64>::try_from(dct(4).flatten(0, -1)).unwrap();
        let (a, b) = (0.653_281_482_438_188_3, 0.270_598_050_073_098_5);
        #[rustfmt::skip]
        let hand = [
            0.5,  a,  0.5,  b,
            0.5,  b, -0.5, -a,
            0.5, -b, -0.5,  a,
            0.5, -a,  0.5, -b,
        ];
        for (i, (x, y)) in d.iter().zip(hand).enumerate() {
            assert!((x - y).abs() < 1e-15, "entry {i}: {x} against {y}");
        }
    }

    /// Coefficients and weights are inverse maps (to float32 rounding of two products of
    /// length n), and a projection keeps what it keeps: projecting twice is projecting once, and
    /// the projected matrix's coefficients vanish off the mask.
    #[test]
    fn coefficients_invert_and_projection_is_idempotent() {
        let w = randn(&[30, 20], 1);
        let keep = randn(&[30, 20], 2).gt(0.0);
        for basis in [Basis::Canonical, Basis::Dct, Basis::Random(1)] {
            let l = LayerBasis::new(basis, &[30, 20], tch::Device::Cpu).unwrap();
            let tol = 8.0 * 30.0 * f64::from(f32::EPSILON) * max_abs(&w);
            let back = l.weights(&l.coefficients(&w));
            assert!(max_abs(&(back - &w)) <= tol, "{basis:?}");
            let p = l.project(&w, &keep);
            assert!(max_abs(&(l.project(&p, &keep) - &p)) <= tol, "{basis:?}");
            let off = l.coefficients(&p) * keep.logical_not().to_kind(Kind::Float);
            assert!(max_abs(&off) <= tol, "{basis:?}");
        }
        assert!(LayerBasis::new(Basis::Dct, &[3, 3, 3], tch::Device::Cpu).is_err());
    }

    /// In the canonical basis, pruning by coefficient magnitude is IMP's layerwise magnitude
    /// pruning: the same mask, position by position.
    #[test]
    fn canonical_coefficient_pruning_is_magnitude_pruning() {
        let weights: Vec<(String, Tensor)> = [("a", [40i64, 30]), ("b", [10, 40])]
            .iter()
            .zip(3..)
            .map(|((n, s), seed)| ((*n).to_owned(), randn(s, seed)))
            .collect();
        let hp = PruningHparams {
            strategy: Strategy::Layerwise,
            rate: 0.2,
            output_rate: Some(0.1),
            criterion: Criterion::default(),
            ..PruningHparams::default()
        };
        let mut imp = Mask::ones(&weights);
        let mut ours = Mask::ones(&weights);
        for _ in 0..3 {
            imp = hp.prune_from(&weights, &weights, &imp, "b").unwrap();
            let scores: Vec<(String, Tensor)> = weights
                .iter()
                .map(|(n, w)| {
                    let l = LayerBasis::new(Basis::Canonical, &w.size(), tch::Device::Cpu).unwrap();
                    (n.clone(), l.coefficients(w).abs())
                })
                .collect();
            ours = select_layerwise(&scores, &ours, Keep::Largest, |n| {
                crate::Count::PruneFraction(if n == "b" { 0.1 } else { 0.2 })
            })
            .unwrap();
            for ((n, a), (_, b)) in imp.iter().zip(ours.iter()) {
                assert!(a.equal(b), "layer {n}");
            }
        }
        assert!(imp.kept() < 40 * 30 + 10 * 40);
    }

    /// SGD with momentum and weight decay on the kept coefficients Z is SGD on W with each
    /// gradient projected, from W = P(W0): the two trajectories agree (to float32 rounding) over
    /// steps of random gradients, in every basis.
    #[test]
    fn sgd_on_coefficients_is_projected_sgd_on_weights() {
        let (lr, momentum, decay) = (0.1, 0.9, 0.01);
        let keep = randn(&[12, 9], 5).gt(0.25);
        let keepf = keep.to_kind(Kind::Float);
        for basis in [Basis::Canonical, Basis::Dct, Basis::Random(5)] {
            let l = LayerBasis::new(basis, &[12, 9], tch::Device::Cpu).unwrap();
            let w0 = randn(&[12, 9], 6);
            let mut z = l.coefficients(&w0) * &keepf;
            let mut w = l.weights(&z);
            let (mut vz, mut vw) = (z.zeros_like(), w.zeros_like());
            for step in 0..20 {
                // A loss's gradient with respect to W; Z's is B_outᵀ g B_in (chain rule).
                let g = randn(&[12, 9], 100 + step);
                let gz = (l.coefficients(&g) + &z * decay) * &keepf;
                vz = &vz * momentum + gz;
                z = &z - &vz * lr;
                let gw = l.project(&(g + &w * decay), &keep);
                vw = &vw * momentum + gw;
                w = &w - &vw * lr;
            }
            // Each step adds two float32 products of length ≤ 12 (a few ulps each, 4·12 bounds
            // them), momentum sums up to 1 / (1 − 0.9) = 10 of them, over 20 steps.
            let tol = 20.0 * 10.0 * 4.0 * 12.0 * f64::from(f32::EPSILON) * max_abs(&w);
            assert!(max_abs(&(l.weights(&z) - &w)) <= tol, "{basis:?}");
        }
    }
}
