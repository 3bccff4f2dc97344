//! Distributions: how much of a sparsity budget each layer gets (uniform, Erdős–Rényi, ERK), as
//! in rigl's `sparse_utils.get_sparsities` (Evci et al., 2020).
//!
//! A distribution turns a target sparsity `S` and the prunable layers' shapes into one sparsity
//! per layer. A layer of `N` weights at sparsity `s` keeps `N − ⌊s·N⌋` (rigl's counting rule, the
//! same as [`Count::SparsityFloor`]).
//!
//! **The budget.** The weights kept by the layers in the budget add up to what every such layer
//! would keep at the uniform sparsity `S`: `K = Σ (N − ⌊S·N⌋)`.
//! - Layers with a **custom sparsity** ([`Distribution::custom`]) are outside the budget: they get
//!   exactly their sparsity, and the other layers meet the target among themselves (rigl's
//!   `custom_sparsity_map`; "uniform with the first layer dense" is the first layer at custom
//!   sparsity 0, so the whole network is slightly denser than `S`).
//! - Layers **left dense** ([`Distribution::dense`]) are inside the budget: their `N` weights count
//!   against `K`, and the other layers get sparser so that the network's total stays at `S` (how
//!   rigl counts the layers its ERK loop makes dense).
//!
//! **ER and ERK.** A layer's raw density is `(Σ dims) / (Π dims)` raised to `power` (ERK, every
//! dimension of the kernel), or `(n_out + n_in) / (n_out · n_in)` (ER, the two channel dimensions,
//! PyTorch's first two). A scale ε solves `ε · Σ raw_l · N_l = K − dense`; if any layer's
//! `ε · raw_l` exceeds 1, every layer tied at the largest raw density is made dense (inside the
//! budget) and ε is solved again, until none exceeds 1. Ports that skip this loop give such layers a
//! density above 1 and the network less density than the target.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::{Count, Mask, PruneError, Result, random_layer};

/// The `lth-rng` domain of the random masks drawn from a distribution.
pub const SPARSE_INIT: &str = "sparse_init";

/// How the density is spread over the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Spread {
    /// Every layer at the same sparsity.
    #[serde(rename = "uniform")]
    Uniform,
    /// Erdős–Rényi: density ∝ (n_out + n_in) / (n_out · n_in).
    #[serde(rename = "er")]
    ErdosRenyi,
    /// Erdős–Rényi-kernel: density ∝ ((Σ dims) / (Π dims))^power.
    #[serde(rename = "erk")]
    ErdosRenyiKernel,
}

impl Spread {
    /// Every spread, as the command line names them.
    pub const ALL: [Spread; 3] = [
        Spread::Uniform,
        Spread::ErdosRenyi,
        Spread::ErdosRenyiKernel,
    ];

    /// The command line's name: `uniform`, `er`, `erk`.
    pub fn name(self) -> &'static str {
        match self {
            Spread::Uniform => "uniform",
            Spread::ErdosRenyi => "er",
            Spread::ErdosRenyiKernel => "erk",
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Spread {
    type Err = PruneError;
    fn from_str(s: &str) -> Result<Spread> {
        Spread::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                PruneError::Invalid(format!(
                    "unknown distribution `{s}` (known: uniform, er, erk)"
                ))
            })
    }
}

/// A distribution of a target sparsity over layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    pub spread: Spread,
    /// The network's target sparsity, in [0, 1].
    pub sparsity: f64,
    /// ERK's power on the raw density (1 in rigl; below 1 makes ERK closer to uniform).
    pub power: f64,
    /// Layers at their own sparsity, outside the budget.
    pub custom: BTreeMap<String, f64>,
    /// Layers left dense, inside the budget.
    pub dense: Vec<String>,
}

/// One layer's share of a distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSparsity {
    pub name: String,
    pub shape: Vec<i64>,
    /// The layer's sparsity.
    pub sparsity: f64,
    /// Weights it keeps: `N − ⌊sparsity · N⌋`.
    pub kept: i64,
    /// Its weights, `N`.
    pub total: i64,
}

fn numel(shape: &[i64]) -> i64 {
    shape.iter().product()
}

impl Distribution {
    /// `spread` at `sparsity`, power 1, no custom or dense layers.
    pub fn new(spread: Spread, sparsity: f64) -> Distribution {
        Distribution {
            spread,
            sparsity,
            power: 1.0,
            custom: BTreeMap::new(),
            dense: Vec::new(),
        }
    }

    /// Each layer's sparsity, in the order of `layers` (name and shape, PyTorch's layout:
    /// `[out, in, kh, kw]` or `[out, in]`). Errors name what is wrong: a sparsity outside [0, 1],
    /// a custom or dense layer that is not among `layers`, dense layers that hold more than the
    /// budget.
    pub fn sparsities(&self, layers: &[(String, Vec<i64>)]) -> Result<Vec<LayerSparsity>> {
        Count::SparsityFloor(self.sparsity).check("the sparsity")?;
        for (name, s) in &self.custom {
            Count::SparsityFloor(*s).check(&format!("the sparsity of layer `{name}`"))?;
        }
        if !(self.power.is_finite() && self.power >= 0.0) {
            return Err(PruneError::Invalid(format!(
                "the ERK power must be finite and at least 0, got {}",
                self.power
            )));
        }
        let known = |n: &str| layers.iter().any(|(l, _)| l == n);
        for n in self.custom.keys().chain(&self.dense) {
            if !known(n) {
                return Err(PruneError::Mismatch(format!(
                    "no prunable layer is called `{n}` (layers: {})",
                    layers
                        .iter()
                        .map(|(l, _)| l.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if !layers.is_empty() && layers.iter().all(|(n, _)| self.custom.contains_key(n)) {
            return Err(PruneError::Invalid(format!(
                "every prunable layer has its own sparsity (--layer-sparsity, --first-layer-dense), \
                 so the overall sparsity {} would apply to none of them; leave at least one layer \
                 to it",
                self.sparsity
            )));
        }
        if let Some(n) = self.dense.iter().find(|n| self.custom.contains_key(*n)) {
            return Err(PruneError::Invalid(format!(
                "layer `{n}` is both left dense and given a custom sparsity"
            )));
        }
        for (name, shape) in layers {
            if shape.is_empty() || shape.iter().any(|&d| d <= 0) {
                return Err(PruneError::Invalid(format!(
                    "layer `{name}` has shape {shape:?}: every dimension must be positive"
                )));
            }
            if self.spread == Spread::ErdosRenyi && shape.len() < 2 {
                return Err(PruneError::Invalid(format!(
                    "ER needs two channel dimensions; layer `{name}` has shape {shape:?}"
                )));
            }
        }

        // The budget: what the layers outside the custom map keep at the target sparsity.
        let in_budget: Vec<&(String, Vec<i64>)> = layers
            .iter()
            .filter(|(n, _)| !self.custom.contains_key(n))
            .collect();
        let budget: i64 = in_budget
            .iter()
            .map(|(_, s)| Count::SparsityFloor(self.sparsity).kept(numel(s), numel(s)))
            .sum();
        let mut dense: Vec<String> = self.dense.clone();
        let held = |dense: &[String]| -> i64 {
            in_budget
                .iter()
                .filter(|(n, _)| dense.contains(n))
                .map(|(_, s)| numel(s))
                .sum()
        };
        if held(&dense) > budget {
            return Err(PruneError::Invalid(format!(
                "the layers left dense hold {} weights, more than the {budget} that sparsity {} \
                 keeps",
                held(&dense),
                self.sparsity
            )));
        }
        let raw = |shape: &[i64]| -> f64 {
            let n = numel(shape) as f64;
            match self.spread {
                Spread::Uniform => 1.0,
                Spread::ErdosRenyi => (shape[0] + shape[1]) as f64 / (shape[0] * shape[1]) as f64,
                Spread::ErdosRenyiKernel => (shape.iter().sum::<i64>() as f64 / n).powf(self.power),
            }
        };
        // Solve for ε; make the layers tied at the largest raw density dense while ε·raw > 1.
        let eps = loop {
            let free: Vec<&&(String, Vec<i64>)> = in_budget
                .iter()
                .filter(|(n, _)| !dense.contains(n))
                .collect();
            if free.is_empty() {
                break 0.0;
            }
            let rhs = (budget - held(&dense)) as f64;
            let divisor: f64 = free.iter().map(|(_, s)| raw(s) * numel(s) as f64).sum();
            let eps = rhs / divisor;
            let max_raw = free.iter().map(|(_, s)| raw(s)).fold(0.0, f64::max);
            if eps * max_raw > 1.0 {
                for (n, s) in &free {
                    if raw(s) == max_raw {
                        dense.push(n.clone());
                    }
                }
            } else {
                break eps;
            }
        };
        Ok(layers
            .iter()
            .map(|(name, shape)| {
                let total = numel(shape);
                let sparsity = if let Some(s) = self.custom.get(name) {
                    *s
                } else if dense.contains(name) {
                    0.0
                } else if self.spread == Spread::Uniform && self.dense.is_empty() {
                    // rigl's uniform: the target itself (ε·1 would be the budget's rounding).
                    self.sparsity
                } else {
                    (1.0 - eps * raw(shape)).clamp(0.0, 1.0)
                };
                LayerSparsity {
                    name: name.clone(),
                    shape: shape.clone(),
                    sparsity,
                    kept: Count::SparsityFloor(sparsity).kept(total, total),
                    total,
                }
            })
            .collect())
    }
}

/// A random mask with each layer's kept count at uniformly drawn positions, each layer from its own
/// `lth-rng` stream (domain [`SPARSE_INIT`]): static sparse training's mask, and the initial mask of
/// SET and RigL.
pub fn random_mask(layers: &[LayerSparsity], seed: u64, device: Device) -> Mask {
    let named = layers
        .iter()
        .map(|l| {
            let t = random_layer(seed, SPARSE_INIT, &l.name, &l.shape, l.kept);
            (l.name.clone(), t.to_device(device))
        })
        .collect();
    #[allow(clippy::expect_used, reason = "the tensors are built boolean here")]
    Mask::from_named(named).expect("boolean tensors")
}

/// Name and shape of each weight: what [`Distribution::sparsities`] takes.
pub fn shapes(weights: &[(String, tch::Tensor)]) -> Vec<(String, Vec<i64>)> {
    weights.iter().map(|(n, w)| (n.clone(), w.size())).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn layers(shapes: &[&[i64]]) -> Vec<(String, Vec<i64>)> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("l{i}"), s.to_vec()))
            .collect()
    }

    fn rounded(d: &Distribution, l: &[(String, Vec<i64>)], digits: i32) -> Vec<f64> {
        let f = 10f64.powi(digits);
        d.sparsities(l)
            .unwrap()
            .iter()
            .map(|s| (s.sparsity * f).round() / f)
            .collect()
    }

    /// jaxpruner's `sparsity_distributions_test.py`: shapes (2,4), (3,6), (2,4,6) at 0.5 (in
    /// PyTorch's layout the channel dimensions come first: (6,4,2) for the last).
    #[test]
    fn erk_and_er_match_jaxprunes_vectors() {
        let l = layers(&[&[4, 2], &[6, 3], &[6, 4, 2]]);
        let erk = Distribution::new(Spread::ErdosRenyiKernel, 0.5);
        // The reference states 0.655 and checks two places (0.65476 here).
        assert_eq!(rounded(&erk, &l, 3), vec![0.0, 0.31, 0.655]);
        let er = Distribution::new(Spread::ErdosRenyi, 0.5);
        assert_eq!(rounded(&er, &l, 2), vec![0.21, 0.47, 0.56]);
    }

    /// The kept count over all layers matches the target to within one weight per layer, for
    /// every spread, with dense layers inside the budget.
    #[test]
    fn the_total_meets_the_budget_within_a_weight_per_layer() {
        let l = layers(&[&[16, 3, 3, 3], &[32, 16, 3, 3], &[64, 32, 3, 3], &[10, 64]]);
        let total: i64 = l.iter().map(|(_, s)| numel(s)).sum();
        for spread in Spread::ALL {
            for s in [0.0, 0.5, 0.8, 0.9, 0.95, 0.99] {
                let mut d = Distribution::new(spread, s);
                let with_dense = if s <= 0.95 { 2 } else { 1 };
                for dense in [vec![], vec!["l3".to_owned()]].into_iter().take(with_dense) {
                    d.dense = dense;
                    let out = d.sparsities(&l).unwrap();
                    let kept: i64 = out.iter().map(|x| x.kept).sum();
                    let target = total - (s * total as f64).floor() as i64;
                    assert!(
                        (kept - target).abs() <= l.len() as i64,
                        "{spread} at {s}: kept {kept}, target {target}"
                    );
                    assert!(out.iter().all(|x| (0.0..=1.0).contains(&x.sparsity)));
                }
            }
        }
    }

    /// A custom sparsity is outside the budget: the other layers keep the uniform target, as in
    /// rigl's "uniform, first layer dense".
    #[test]
    fn a_custom_layer_is_outside_the_budget_and_a_dense_one_inside() {
        let l = layers(&[&[8, 1, 3, 3], &[16, 8, 3, 3], &[10, 16]]);
        let mut d = Distribution::new(Spread::Uniform, 0.9);
        d.custom.insert("l0".into(), 0.0);
        let out = d.sparsities(&l).unwrap();
        assert_eq!(out[0].sparsity, 0.0);
        // Every layer custom: the overall sparsity would apply to none, and is refused.
        let mut all = d.clone();
        all.custom.insert("l1".into(), 0.5);
        all.custom.insert("l2".into(), 0.5);
        let e = all.sparsities(&l).unwrap_err().to_string();
        assert!(
            e.contains("overall sparsity 0.9 would apply to none"),
            "{e}"
        );
        assert_eq!(out[1].sparsity, 0.9);
        assert_eq!(out[1].kept, 1152 - 1036);
        let mut d = Distribution::new(Spread::Uniform, 0.9);
        d.dense = vec!["l0".into()];
        let out = d.sparsities(&l).unwrap();
        assert_eq!(out[0].kept, 72);
        let kept: i64 = out.iter().map(|x| x.kept).sum();
        assert!((kept - (1384 - 1245)).abs() <= 3, "kept {kept}");
        assert!(out[1].sparsity > 0.9);
    }

    /// ERK makes dense every layer whose density would exceed 1, tied ones together.
    #[test]
    fn erk_makes_small_layers_dense_and_keeps_others_below_one() {
        let l = layers(&[&[4, 2], &[4, 2], &[600, 400]]);
        let out = Distribution::new(Spread::ErdosRenyiKernel, 0.5)
            .sparsities(&l)
            .unwrap();
        assert_eq!((out[0].sparsity, out[1].sparsity), (0.0, 0.0));
        // The two dense layers spend 16 weights of the budget: the large one is a bit sparser.
        assert!(out[2].sparsity > 0.5 && out[2].sparsity < 0.5001);
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let l = layers(&[&[4, 2], &[10]]);
        let err = |d: Distribution| d.sparsities(&l).unwrap_err().to_string();
        assert!(err(Distribution::new(Spread::Uniform, 1.5)).contains("sparsity"));
        assert!(err(Distribution::new(Spread::ErdosRenyi, 0.5)).contains("`l1`"));
        let mut d = Distribution::new(Spread::Uniform, 0.5);
        d.dense = vec!["fc".into()];
        assert!(err(d).contains("`fc`"));
        let mut d = Distribution::new(Spread::Uniform, 0.9);
        d.dense = vec!["l0".into(), "l1".into()];
        assert!(err(d).contains("more than"));
    }

    /// rigl's `sparse_utils_test.py`: random masks keep N − ⌊S·N⌋.
    #[test]
    fn random_masks_keep_rigls_counts() {
        for (shape, s, ones) in [
            (vec![30, 4], 0.5, 60),
            (vec![1, 2, 1, 4], 0.8, 2),
            (vec![30], 0.1, 27),
        ] {
            let l = vec![("w".to_owned(), shape)];
            let d = Distribution::new(Spread::Uniform, s)
                .sparsities(&l)
                .unwrap();
            let m = random_mask(&d, 7, Device::Cpu);
            assert_eq!(m.kept(), ones);
            assert_eq!(d[0].kept, ones);
        }
    }
}
