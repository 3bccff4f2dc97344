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
//!
//! The paper's two structured cases are bases too, with their coefficients selected in groups
//! ([`Grouping`]): the units basis is the identity pruned a row (a unit) at a time, and the
//! low-rank basis is the singular vectors of the weights being pruned, pruned on the diagonal
//! (singular values), so that what is kept is a rank-r factorisation.

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
    /// The identity, its coefficients selected a row at a time: a row of a linear layer's weight
    /// is one unit's incoming weights, so pruning rows prunes units (structured pruning as an
    /// instance of the generalized hypothesis). A unit whose row is pruned outputs the constant
    /// `relu(bias)`, which the next layer's bias absorbs: the network computes what the narrower
    /// network without the unit computes.
    Units,
    /// The rank-one basis `u_i v_jᵀ` of the singular value decomposition `W = U Σ Vᵀ` of the
    /// weights it is built from ([`LayerBasis::for_weights`]); its coefficients are selected on
    /// the diagonal only, largest singular value first, so keeping `r` of them keeps the rank-`r`
    /// factorisation `U_r Z_r V_rᵀ` (two thin factors and `r` coefficients). The basis depends on
    /// the weights, so it must be stored with what is kept.
    LowRank,
}

/// How a basis's coefficients are grouped for selection: one score and one keep-or-drop per
/// group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Each coefficient alone, scored by its magnitude.
    Entries,
    /// Each row (a unit's incoming weights), scored by its Euclidean norm.
    Rows,
    /// The diagonal only, each entry alone, scored by its magnitude; every other coefficient is
    /// dropped.
    Diagonal,
}

impl Basis {
    /// The basis's n × n orthonormal matrix (its columns are the basis vectors), in float64;
    /// `side` separates the draws of a layer's two random matrices. `None` for a basis built from
    /// weights ([`Basis::LowRank`]).
    pub fn matrix(self, n: i64, side: &str) -> Option<Tensor> {
        match self {
            Basis::Canonical | Basis::Units => {
                Some(Tensor::eye(n, (Kind::Double, tch::Device::Cpu)))
            }
            Basis::Dct => Some(dct(n)),
            Basis::Random(seed) => Some(random_orthogonal(n, seed, side)),
            Basis::LowRank => None,
        }
    }

    /// How the basis's coefficients are selected.
    pub fn grouping(self) -> Grouping {
        match self {
            Basis::Canonical | Basis::Dct | Basis::Random(_) => Grouping::Entries,
            Basis::Units => Grouping::Rows,
            Basis::LowRank => Grouping::Diagonal,
        }
    }

    /// The name flags and files use.
    pub fn name(self) -> String {
        match self {
            Basis::Canonical => "canonical".into(),
            Basis::Dct => "dct".into(),
            Basis::Random(seed) => format!("random:{seed}"),
            Basis::Units => "units".into(),
            Basis::LowRank => "low-rank".into(),
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

/// The bases of one linear layer, as float32 matrices on the weight's device, and how their
/// coefficients are selected.
#[derive(Debug)]
pub struct LayerBasis {
    out: Tensor,
    inp: Tensor,
    identity: bool,
    grouping: Grouping,
}

fn matrix_shape(shape: &[i64]) -> Result<(i64, i64)> {
    match *shape {
        [out, inp] => Ok((out, inp)),
        _ => Err(PruneError::Mismatch(format!(
            "a basis is for a linear layer's matrix, not a tensor of shape {shape:?}"
        ))),
    }
}

impl LayerBasis {
    /// The bases of a weight of shape `[out, in]` on `device`, for a basis that does not depend
    /// on the weights (every one but [`Basis::LowRank`], which [`LayerBasis::for_weights`]
    /// builds).
    pub fn new(basis: Basis, shape: &[i64], device: tch::Device) -> Result<LayerBasis> {
        let (out, inp) = matrix_shape(shape)?;
        let m = |n, side| {
            basis
                .matrix(n, side)
                .map(|b| b.to_kind(Kind::Float).to_device(device))
                .ok_or_else(|| {
                    PruneError::Invalid(format!(
                        "the {} basis is built from a layer's weights, not its shape",
                        basis.name()
                    ))
                })
        };
        Ok(LayerBasis {
            out: m(out, "out")?,
            inp: m(inp, "in")?,
            identity: matches!(basis, Basis::Canonical | Basis::Units),
            grouping: basis.grouping(),
        })
    }

    /// The bases of `w` in `basis`: for [`Basis::LowRank`] the full singular vectors of `w`
    /// (computed in float64, so that `Z = Uᵀ W V` is diagonal to float32 rounding), for any other
    /// basis [`LayerBasis::new`] at `w`'s shape and device.
    pub fn for_weights(basis: Basis, w: &Tensor) -> Result<LayerBasis> {
        if basis != Basis::LowRank {
            return LayerBasis::new(basis, &w.size(), w.device());
        }
        matrix_shape(&w.size())?;
        // `torch.svd` (V, not Vᵀ): tch passes `linalg_svd`'s driver always, which the CPU refuses.
        let (u, _, v) = w
            .to_kind(Kind::Double)
            .f_svd(false, true)
            .map_err(|e| PruneError::Invalid(format!("singular value decomposition: {e}")))?;
        let f = |t: Tensor| t.to_kind(Kind::Float).to_device(w.device());
        Ok(LayerBasis {
            out: f(u),
            inp: f(v),
            identity: false,
            grouping: Grouping::Diagonal,
        })
    }

    /// A basis from its two matrices (their columns the basis vectors, as [`LayerBasis::matrices`]
    /// gives them: a stored basis read back).
    pub fn from_matrices(out: Tensor, inp: Tensor, grouping: Grouping) -> Result<LayerBasis> {
        for (side, m) in [("out", &out), ("in", &inp)] {
            let s = m.size();
            if s.len() != 2 || s[0] != s[1] {
                return Err(PruneError::Mismatch(format!(
                    "the {side} basis has shape {s:?}, not a square matrix's"
                )));
            }
        }
        Ok(LayerBasis {
            out: out.to_kind(Kind::Float),
            inp: inp.to_kind(Kind::Float),
            identity: false,
            grouping,
        })
    }

    /// The two matrices, `(B_out, B_in)`.
    pub fn matrices(&self) -> (&Tensor, &Tensor) {
        (&self.out, &self.inp)
    }

    /// How the coefficients are selected.
    pub fn grouping(&self) -> Grouping {
        self.grouping
    }

    /// The same basis on `device` (sharing its matrices when they are there already).
    pub fn to_device(&self, device: tch::Device) -> LayerBasis {
        LayerBasis {
            out: self.out.to_device(device),
            inp: self.inp.to_device(device),
            identity: self.identity,
            grouping: self.grouping,
        }
    }

    /// The same basis, sharing its matrices.
    pub fn shallow_clone(&self) -> LayerBasis {
        LayerBasis {
            out: self.out.shallow_clone(),
            inp: self.inp.shallow_clone(),
            identity: self.identity,
            grouping: self.grouping,
        }
    }

    /// `Z = B_outᵀ W B_in` (the weights themselves in an identity basis).
    pub fn coefficients(&self, w: &Tensor) -> Tensor {
        if self.identity {
            return w.copy();
        }
        self.out.tr().matmul(w).matmul(&self.inp)
    }

    /// `W = B_out Z B_inᵀ`.
    pub fn weights(&self, z: &Tensor) -> Tensor {
        if self.identity {
            return z.copy();
        }
        self.out.matmul(z).matmul(&self.inp.tr())
    }

    /// `P(X) = B_out (M ⊙ B_outᵀ X B_in) B_inᵀ`: `x` with only the coefficients `keep` (a boolean
    /// mask of Z's shape) kept.
    pub fn project(&self, x: &Tensor, keep: &Tensor) -> Tensor {
        self.weights(&(self.coefficients(x) * keep.to_kind(x.kind())))
    }

    /// One score per group of `w`'s coefficients (see [`Grouping`]): `|Z|` for entries, each
    /// row's norm for rows (shape `[out]`), `|diag Z|` for the diagonal (shape `[min(out, in)]`).
    pub fn group_scores(&self, w: &Tensor) -> Tensor {
        let z = self.coefficients(w);
        match self.grouping {
            Grouping::Entries => z.abs(),
            Grouping::Rows => z.square().sum_dim_intlist(1, false, Kind::Float).sqrt(),
            Grouping::Diagonal => z.diagonal(0, 0, 1).abs(),
        }
    }

    /// The groups a coefficient mask `keep` keeps (any of a row for rows; the diagonal for the
    /// diagonal), in [`LayerBasis::group_scores`]'s shape.
    pub fn kept_groups(&self, keep: &Tensor) -> Tensor {
        match self.grouping {
            Grouping::Entries => keep.shallow_clone(),
            Grouping::Rows => keep.any_dim(1, false),
            Grouping::Diagonal => keep.diagonal(0, 0, 1).contiguous(),
        }
    }

    /// The coefficient mask of shape `shape` that keeps the groups `groups` keeps (the inverse
    /// of [`LayerBasis::kept_groups`] on masks it made).
    pub fn expand(&self, groups: &Tensor, shape: &[i64]) -> Tensor {
        match self.grouping {
            Grouping::Entries => groups.shallow_clone(),
            Grouping::Rows => groups.unsqueeze(1).expand(shape, false).contiguous(),
            Grouping::Diagonal => {
                let m = Tensor::zeros(shape, (Kind::Bool, groups.device()));
                m.diagonal(0, 0, 1).copy_(groups);
                m
            }
        }
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

    /// Every basis, the random one drawn from `seed`.
    fn every_basis(seed: u64) -> [Basis; 5] {
        [
            Basis::Canonical,
            Basis::Dct,
            Basis::Random(seed),
            Basis::Units,
            Basis::LowRank,
        ]
    }

    fn max_abs(t: &Tensor) -> f64 {
        t.abs().max().double_value(&[])
    }

    /// Every basis is orthonormal in float64, to n rounding errors of a length-n dot product.
    #[test]
    fn the_bases_are_orthonormal() {
        for n in [1, 2, 7, 64, 300] {
            for basis in [Basis::Canonical, Basis::Dct, Basis::Random(3), Basis::Units] {
                let b = basis.matrix(n, "out").unwrap();
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
        let m = |b: Basis, side| b.matrix(5, side).unwrap();
        let a = m(Basis::Random(3), "out");
        assert!(a.equal(&m(Basis::Random(3), "out")));
        assert!(!a.equal(&m(Basis::Random(4), "out")));
        assert!(!a.equal(&m(Basis::Random(3), "in")));
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
        for basis in every_basis(1) {
            let l = LayerBasis::for_weights(basis, &w).unwrap();
            let tol = 8.0 * 30.0 * f64::from(f32::EPSILON) * max_abs(&w);
            let back = l.weights(&l.coefficients(&w));
            assert!(max_abs(&(back - &w)) <= tol, "{basis:?}");
            let p = l.project(&w, &keep);
            assert!(max_abs(&(l.project(&p, &keep) - &p)) <= tol, "{basis:?}");
            let off = l.coefficients(&p) * keep.logical_not().to_kind(Kind::Float);
            assert!(max_abs(&off) <= tol, "{basis:?}");
        }
        assert!(LayerBasis::new(Basis::Dct, &[3, 3, 3], tch::Device::Cpu).is_err());
        assert!(LayerBasis::for_weights(Basis::LowRank, &randn(&[3, 3, 3], 1)).is_err());
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
        for basis in every_basis(5) {
            let w0 = randn(&[12, 9], 6);
            // The low-rank basis is built from other weights than the start's (as IMP does).
            let l = LayerBasis::for_weights(basis, &randn(&[12, 9], 13)).unwrap();
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

    /// The low-rank basis of W is its singular vectors: W's coefficients are diagonal, the
    /// diagonal is the singular values in descending order, and keeping the leading r of them
    /// gives the best rank-r approximation (Eckart–Young: the squared error is the sum of the
    /// dropped σ²). Grouping and expanding are inverse on the diagonal.
    #[test]
    fn the_low_rank_basis_diagonalises_its_weights_and_keeps_the_best_rank_r_part() {
        let w = randn(&[30, 20], 7);
        let l = LayerBasis::for_weights(Basis::LowRank, &w).unwrap();
        assert_eq!(l.grouping(), Grouping::Diagonal);
        // An entry of Uᵀ W V in float32: two products of length ≤ 30, each entry's error at most
        // 30·ε times Σ|u_k||w_kl||v_l| ≤ ‖u‖₁‖v‖₁ max|W| ≤ √(30·20) max|W| (unit columns), with
        // a factor 8 for the float32 copies of U and V.
        let tol = 8.0 * 30.0 * f64::from(f32::EPSILON) * 600f64.sqrt() * max_abs(&w);
        // A matrix whose entries are each within `tol` is within tol·√600 in Frobenius norm (and
        // so in every singular value).
        let fro = tol * 600f64.sqrt();
        let z = l.coefficients(&w);
        let sigma = w.to_kind(Kind::Double).svd(true, false).1;
        let diag = z.diagonal(0, 0, 1).to_kind(Kind::Double);
        assert!(max_abs(&(&diag - &sigma)) <= tol, "{diag} against {sigma}");
        let off = &z
            - Tensor::zeros([30, 20], (Kind::Float, tch::Device::Cpu)).diagonal_scatter(
                &z.diagonal(0, 0, 1),
                0,
                0,
                1,
            );
        assert!(max_abs(&off) <= tol, "off the diagonal: {}", max_abs(&off));
        assert!(l.group_scores(&w).size() == [20]);
        let r = 5;
        let groups = Tensor::arange(20, (Kind::Int64, tch::Device::Cpu)).lt(r);
        let keep = l.expand(&groups, &[30, 20]);
        assert_eq!(keep.sum(Kind::Int64).int64_value(&[]), r);
        assert!(l.kept_groups(&keep).equal(&groups));
        let p = l.project(&w, &keep).to_kind(Kind::Double);
        let err = (w.to_kind(Kind::Double) - &p)
            .square()
            .sum(Kind::Double)
            .double_value(&[]);
        let dropped = sigma
            .narrow(0, r, 20 - r)
            .square()
            .sum(Kind::Double)
            .double_value(&[]);
        // |‖a‖² − ‖b‖²| ≤ ‖a − b‖ (‖a‖ + ‖b‖), the projection's error being a few such products.
        let bound = 4.0 * fro * (2.0 * dropped.sqrt() + fro);
        assert!((err - dropped).abs() <= bound, "{err} against {dropped}");
        let rank = p
            .svd(true, false)
            .1
            .gt(fro)
            .sum(Kind::Int64)
            .int64_value(&[]);
        assert_eq!(rank, r);
        // A basis built from weights cannot be built from a shape.
        assert!(LayerBasis::new(Basis::LowRank, &[30, 20], tch::Device::Cpu).is_err());
        // A stored basis reads back as the same one.
        let (out, inp) = l.matrices();
        let back = LayerBasis::from_matrices(out.copy(), inp.copy(), Grouping::Diagonal).unwrap();
        assert!(back.coefficients(&w).equal(&z));
        assert!(LayerBasis::from_matrices(out.copy(), w.copy(), Grouping::Diagonal).is_err());
    }

    /// The units basis scores each row by its norm and keeps or drops it whole; a hidden unit
    /// whose row is dropped outputs the constant relu(b), and the network then computes what
    /// the narrower network without the unit computes once the next layer's bias absorbs it.
    #[test]
    fn the_units_basis_prunes_whole_rows_and_leaves_a_narrower_network() {
        let (w1, b1) = (randn(&[6, 4], 8), randn(&[6], 9));
        let (w2, b2) = (randn(&[3, 6], 10), randn(&[3], 11));
        let l = LayerBasis::new(Basis::Units, &[6, 4], tch::Device::Cpu).unwrap();
        let norms = l.group_scores(&w1);
        let by_hand = w1.square().sum_dim_intlist(1, false, Kind::Float).sqrt();
        assert!(max_abs(&(&norms - by_hand)) <= 4.0 * f64::from(f32::EPSILON) * max_abs(&norms));
        // Keep the 3 rows of largest norm.
        let prev = l.kept_groups(&Tensor::ones([6, 4], (Kind::Bool, tch::Device::Cpu)));
        let rows = Mask::from_named(vec![("a".into(), prev)]).unwrap();
        let groups = select_layerwise(
            &[("a".to_owned(), norms.shallow_clone())],
            &rows,
            Keep::Largest,
            |_| crate::Count::PruneFraction(0.5),
        )
        .unwrap();
        let g = groups.get("a").unwrap();
        let keep = l.expand(g, &[6, 4]);
        assert!(l.kept_groups(&keep).equal(g));
        let third = norms.sort(0, true).0.double_value(&[2]);
        for j in 0..6 {
            let kept_row = keep.get(j);
            let whole = kept_row.all().int64_value(&[]) == 1;
            let none = kept_row.any().int64_value(&[]) == 0;
            assert!(whole || none, "row {j} split");
            assert_eq!(whole, norms.double_value(&[j]) >= third, "row {j}");
        }
        let pruned = l.project(&w1, &keep);
        let x = randn(&[5, 4], 12);
        let net = x.matmul(&pruned.tr()).g_add(&b1).relu().matmul(&w2.tr()) + &b2;
        let alive: Vec<i64> = (0..6).filter(|&j| g.int64_value(&[j]) == 1).collect();
        let dead: Vec<i64> = (0..6).filter(|&j| g.int64_value(&[j]) == 0).collect();
        let idx = |v: &[i64]| Tensor::from_slice(v);
        let narrow_b2 = &b2
            + w2.index_select(1, &idx(&dead))
                .matmul(&b1.index_select(0, &idx(&dead)).relu());
        let narrow = x
            .matmul(&w1.index_select(0, &idx(&alive)).tr())
            .g_add(&b1.index_select(0, &idx(&alive)))
            .relu()
            .matmul(&w2.index_select(1, &idx(&alive)).tr())
            + narrow_b2;
        // Two float32 products of length ≤ 6 and a few sums, on the outputs' scale.
        let tol = 4.0 * 12.0 * f64::from(f32::EPSILON) * max_abs(&net).max(1.0);
        assert!(max_abs(&(net - narrow)) <= tol);
    }
}
