//! Greedy forward selection of hidden neurons (Ye, Gong, Nie, Zhou, Klivans & Liu, "Good
//! Subnetworks Provably Exist: Pruning via Greedy Forward Selection", ICML 2020), for a network
//! with one hidden layer: the pruning rule whose pre-training requirement Wolfe, Wang, Kim,
//! Kyrillidis & Liao bound ("How Much Pre-training Is Enough to Discover a Good Subnetwork?",
//! TMLR 2024; arXiv:2108.00259).
//!
//! The network `f(x) = W₂·relu(W₁x + b₁) + b₂` of `N` hidden units is written as `N` times the
//! average of its units' contributions `c_j(x) = W₂[:, j]·relu(W₁[j]·x + b₁[j])`, plus `b₂`. A
//! subnetwork is the same with the average over a set `S` of units: `f_S(x) = (N / |S|)·Σ_{j ∈ S}
//! c_j(x) + b₂` (the reference's `N·(α ⊙ h)` with `α` uniform over `S`; the full set gives the
//! network back). Selection starts from the empty set and adds, at each step, the unit whose
//! addition gives the lowest cross-entropy on that step's minibatch: the reference's convex update
//! `α ← (1 − 1/(n+1))·α + e_j/(n+1)` with step `1/(n+1)`. Units are chosen without replacement, as
//! in the reference code (`decide_candidate`); the reference also scores only 50 sampled candidates
//! per step (`num_evaluate`) to save time, where this scores every unselected unit, which is the
//! rule itself. Each step reads its choice back to the host: the method needs it to build the
//! next step's sum.

use tch::{Kind, Tensor};

use crate::{PruneError, Result};

/// A network with one hidden ReLU layer: `W₁` (N × D), `b₁` (N), `W₂` (C × N), `b₂` (C).
#[derive(Debug)]
pub struct TwoLayer {
    pub w1: Tensor,
    pub b1: Tensor,
    pub w2: Tensor,
    pub b2: Tensor,
}

impl TwoLayer {
    /// The network of a one-hidden-layer LeNet's weights by PyTorch name (`fc_layers.0.*`,
    /// `fc.*`).
    pub fn from_named(weights: &[(String, Tensor)]) -> Result<TwoLayer> {
        let [w1, b1, w2, b2] =
            lth_models::lenet::one_hidden_layer(weights, "greedy forward selection")?
                .map(|t| t.detach().to_kind(Kind::Float));
        Ok(TwoLayer { w1, b1, w2, b2 })
    }

    /// The number of hidden units N.
    pub fn width(&self) -> i64 {
        self.b1.size()[0]
    }

    /// The hidden activations of a batch (B × N).
    pub fn hidden(&self, x: &Tensor) -> Tensor {
        x.flatten(1, -1).linear(&self.w1, Some(&self.b1)).relu()
    }

    /// The logits of the subnetwork that averages the units `selected` (repeats count, as in the
    /// theory's selection with replacement), scaled by N: all N units once give the network.
    pub fn logits(&self, x: &Tensor, selected: &[i64]) -> Tensor {
        self.logits_of_hidden(&self.hidden(x), selected)
    }

    /// [`TwoLayer::logits`] from the batch's hidden activations (so that several subnetworks of
    /// one network share them).
    pub fn logits_of_hidden(&self, hidden: &Tensor, selected: &[i64]) -> Tensor {
        let idx = Tensor::from_slice(selected).to_device(self.b1.device());
        let h = hidden.index_select(1, &idx);
        let w = self.w2.index_select(1, &idx);
        let scale = self.width() as f64 / selected.len().max(1) as f64;
        h.matmul(&w.tr()) * scale + &self.b2
    }
}

/// Selects `n` units of `net` greedily: step `k` (from 0) scores every unit not yet selected on
/// the minibatch `batch(k)` (inputs, labels; an error stops the selection) and adds the one whose addition gives the lowest
/// mean cross-entropy. Returns the units in the order chosen.
pub fn greedy_forward_selection(
    net: &TwoLayer,
    n: usize,
    mut batch: impl FnMut(usize) -> Result<(Tensor, Tensor)>,
) -> Result<Vec<i64>> {
    let width = net.width();
    if n == 0 || n as i64 > width {
        return Err(PruneError::Invalid(format!(
            "greedy forward selection of {n} units out of {width}: choose 1 to {width}"
        )));
    }
    let _pruning = lth_store::ledger::span(lth_store::ledger::Activity::Pruning);
    tch::no_grad(|| {
        let mut selected: Vec<i64> = Vec::with_capacity(n);
        let device = net.b1.device();
        let taken = Tensor::zeros([width], (Kind::Bool, device));
        for k in 0..n {
            let (x, y) = batch(k)?;
            let h = net.hidden(&x); // B × N
            let b = h.size()[0];
            let classes = net.b2.size()[0];
            // The sum of the selected units' contributions (B × C).
            let sum = if selected.is_empty() {
                Tensor::zeros([b, classes], (Kind::Float, device))
            } else {
                let idx = Tensor::from_slice(&selected).to_device(device);
                h.index_select(1, &idx)
                    .matmul(&net.w2.index_select(1, &idx).tr())
            };
            // Every candidate's logits at once (B × N × C): (N / (k + 1))·(sum + c_j) + b₂, and
            // its cross-entropy as logsumexp over classes minus the label's logit, the latter
            // computed directly in B × N.
            let scale = width as f64 / (k + 1) as f64;
            let contributions = h.unsqueeze(2) * net.w2.tr().unsqueeze(0);
            let logits = (sum.unsqueeze(1) + contributions) * scale + &net.b2;
            let label_w = net.w2.index_select(0, &y); // B × N: W₂[y_b, j]
            let label_sum = sum.gather(1, &y.unsqueeze(1), false); // B × 1
            let label_b = net.b2.index_select(0, &y).unsqueeze(1); // B × 1
            let label_logit = (label_sum + h * label_w) * scale + label_b; // B × N
            let loss = (logits.logsumexp([2], false) - label_logit).mean_dim(0, false, Kind::Float);
            let loss = loss.masked_fill(&taken, f64::INFINITY);
            let best = loss.argmin(0, false).int64_value(&[]);
            let _ = taken.get(best).fill_(1);
            selected.push(best);
        }
        Ok(selected)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn net(seed: i64, d: i64, n: i64, c: i64) -> TwoLayer {
        tch::manual_seed(seed);
        TwoLayer {
            w1: Tensor::randn([n, d], (Kind::Float, tch::Device::Cpu)),
            b1: Tensor::randn([n], (Kind::Float, tch::Device::Cpu)) * 0.1,
            w2: Tensor::randn([c, n], (Kind::Float, tch::Device::Cpu)) * 0.3,
            b2: Tensor::randn([c], (Kind::Float, tch::Device::Cpu)) * 0.1,
        }
    }

    /// All N units once give the network itself: the subnetwork parameterisation is exact.
    #[test]
    fn the_full_average_is_the_network() {
        let net = net(1, 5, 12, 3);
        let x = Tensor::randn([7, 5], (Kind::Float, tch::Device::Cpu));
        let all: Vec<i64> = (0..12).collect();
        let direct = net.hidden(&x).linear(&net.w2, Some(&net.b2));
        let diff = (net.logits(&x, &all) - direct)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
    }

    /// Each step's choice is the unit whose addition gives the lowest minibatch loss, against a
    /// brute force over every unselected unit with the subnetwork's own logits; no unit twice.
    #[test]
    fn each_step_adds_the_unit_with_the_lowest_loss() {
        let net = net(2, 6, 20, 4);
        let batches: Vec<(Tensor, Tensor)> = (0..8)
            .map(|_| {
                (
                    Tensor::randn([32, 6], (Kind::Float, tch::Device::Cpu)),
                    Tensor::randint(4, [32], (Kind::Int64, tch::Device::Cpu)),
                )
            })
            .collect();
        let chosen = greedy_forward_selection(&net, 8, |k| {
            Ok((batches[k].0.shallow_clone(), batches[k].1.shallow_clone()))
        })
        .unwrap();
        let mut sorted = chosen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 8);
        for (k, &pick) in chosen.iter().enumerate() {
            let (x, y) = &batches[k];
            let loss = |j: i64| {
                let mut s = chosen[..k].to_vec();
                s.push(j);
                net.logits(x, &s)
                    .cross_entropy_for_logits(y)
                    .double_value(&[])
            };
            let best = loss(pick);
            for j in (0..20).filter(|j| !chosen[..k].contains(j)) {
                // float32 sums of the same terms in another order: 1e-5 relative.
                assert!(
                    best <= loss(j) + 1e-5 * best.abs().max(1.0),
                    "step {k}: {pick} vs {j}"
                );
            }
        }
    }

    #[test]
    fn sizes_outside_the_layer_are_refused() {
        let net = net(3, 2, 4, 2);
        let b = |_| {
            Ok((
                Tensor::zeros([1, 2], (Kind::Float, tch::Device::Cpu)),
                Tensor::zeros([1], (Kind::Int64, tch::Device::Cpu)),
            ))
        };
        assert!(greedy_forward_selection(&net, 0, b).is_err());
        assert!(
            greedy_forward_selection(&net, 5, b)
                .unwrap_err()
                .to_string()
                .contains("5 units out of 4")
        );
    }
}
