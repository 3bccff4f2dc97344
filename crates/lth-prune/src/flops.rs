//! FLOPs of sparse networks, counted as the RigL paper counts them (Evci et al., ICML 2020, §4 and
//! appendix H).
//!
//! - **Inference** of one example, as rigl's `get_stats` counts it with the MicroNet challenge's
//!   rules: a prunable kernel with `kept` active weights and `c_out` output channels, applied at
//!   `P` output positions (`lth_models::Model::positions`), computes `c_out · P` outputs, each a
//!   sparse dot product (`kept / c_out` multiplies and one add fewer), a bias add and an
//!   activation: `(2 · kept + c_out) · P` FLOPs. The network costs the sum over its kernels,
//!   `f_S`; the dense network `f_D` (every weight kept). Pooling and residual additions are not
//!   counted, as in rigl.
//! - **A training step** costs `3 f_S` per example: the forward pass, and a backward pass of twice
//!   its cost (the gradients of the activations and of the weights). A step that needs the dense
//!   gradient (RigL's mask update) costs `2 f_S + f_D`: its weight gradient is dense. Dense
//!   training costs `3 f_D`.
//!
//! These are the FLOPs that sparse kernels would execute; lth simulates sparsity with dense
//! kernels and masks, so they say nothing about lth's own speed. The paper averages the update
//! steps into every step, `(3 f_S ΔT + 2 f_S + f_D) / (ΔT + 1)`, for updates throughout training;
//! [`Flops::training`] counts a run's actual steps instead: updates stop at `T_end`.

use serde::{Deserialize, Serialize};

use crate::LayerSparsity;

/// Forward FLOPs of one example through one kernel: `kept` active weights, `outputs` output
/// channels (or units), applied at `positions` output positions.
pub fn kernel(kept: i64, outputs: i64, positions: i64) -> f64 {
    (2.0 * kept as f64 + outputs as f64) * positions as f64
}

/// Forward FLOPs of one example through the network whose kernels are `layers`, applied at
/// `positions` (in the same order): `(f_S, f_D)`, with the layers' kept weights and with all.
pub fn inference(layers: &[LayerSparsity], positions: &[i64]) -> (f64, f64) {
    debug_assert_eq!(layers.len(), positions.len());
    layers
        .iter()
        .zip(positions)
        .fold((0.0, 0.0), |(s, d), (l, &p)| {
            let outputs = l.shape.first().copied().unwrap_or(1);
            (
                s + kernel(l.kept, outputs, p),
                d + kernel(l.total, outputs, p),
            )
        })
}

/// Forward FLOPs of one example through a dense network (every kernel whole): what a narrow
/// network of channel pruning is compared by.
pub fn network(model: &lth_models::Model) -> f64 {
    model
        .prunable_tensors()
        .iter()
        .zip(model.positions())
        .map(|((_, t), &p)| kernel(t.numel() as i64, t.size()[0], p))
        .sum()
}

/// The FLOPs of a training run and of its network, next to the dense network's (`done.json`'s
/// `flops`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flops {
    /// Forward FLOPs of one example through the sparse network (`f_S`).
    pub inference: f64,
    /// The same through the dense network (`f_D`).
    pub dense_inference: f64,
    /// `inference / dense_inference`.
    pub inference_relative: f64,
    /// FLOPs of the whole run: every example of every step.
    pub training: f64,
    /// Dense training of the same steps and batch size.
    pub dense_training: f64,
    /// `training / dense_training`.
    pub training_relative: f64,
    /// Training steps.
    pub steps: u64,
    /// Of those, the steps that computed the dense gradient (RigL's mask updates).
    pub dense_gradient_steps: u64,
}

impl Flops {
    /// A run of `steps` steps of `batch` examples through a network of forward cost `f_s` (dense:
    /// `f_d`), `dense_gradient_steps` of which computed the dense weight gradient.
    pub fn training(
        f_s: f64,
        f_d: f64,
        steps: u64,
        dense_gradient_steps: u64,
        batch: u64,
    ) -> Flops {
        let plain = steps.saturating_sub(dense_gradient_steps) as f64;
        let updates = dense_gradient_steps.min(steps) as f64;
        let examples = batch as f64;
        let training = examples * (plain * 3.0 * f_s + updates * (2.0 * f_s + f_d));
        let dense_training = examples * steps as f64 * 3.0 * f_d;
        Flops::of(
            f_s,
            f_d,
            training,
            dense_training,
            steps,
            dense_gradient_steps.min(steps),
        )
    }

    /// A run of `steps` steps of `batch` examples whose density changes (gradual pruning): each
    /// `(from, f_s)` of `phases` (by increasing `from`) costs 3 f_S per example from step `from`
    /// to the next phase's (the last to `steps`); before the first phase the network is dense
    /// (`f_d`). The inference cost is the last phase's.
    pub fn phased(f_d: f64, phases: &[(u64, f64)], steps: u64, batch: u64) -> Flops {
        let examples = batch as f64;
        let start = phases.first().map_or(steps, |p| p.0).min(steps);
        let mut training = examples * start as f64 * 3.0 * f_d;
        for (i, &(from, f)) in phases.iter().enumerate() {
            let to = phases.get(i + 1).map_or(steps, |p| p.0).min(steps);
            training += examples * to.saturating_sub(from.min(steps)) as f64 * 3.0 * f;
        }
        let dense_training = examples * steps as f64 * 3.0 * f_d;
        let f_s = phases.last().map_or(f_d, |p| p.1);
        Flops::of(f_s, f_d, training, dense_training, steps, 0)
    }

    fn of(
        f_s: f64,
        f_d: f64,
        training: f64,
        dense_training: f64,
        steps: u64,
        dense_gradient_steps: u64,
    ) -> Flops {
        Flops {
            inference: f_s,
            dense_inference: f_d,
            inference_relative: ratio(f_s, f_d),
            training,
            dense_training,
            training_relative: ratio(training, dense_training),
            steps,
            dense_gradient_steps,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phased_run_is_dense_until_its_first_phase_then_at_each_phases_cost() {
        // 10 steps of 2 examples, f_D = 8: dense for 4 steps, at 4 for 3, at 2 for the last 3.
        let f = Flops::phased(8.0, &[(4, 4.0), (7, 2.0)], 10, 2);
        assert_eq!(f.training, 2.0 * 3.0 * (4.0 * 8.0 + 3.0 * 4.0 + 3.0 * 2.0));
        assert_eq!(f.dense_training, 2.0 * 3.0 * 10.0 * 8.0);
        assert_eq!((f.inference, f.inference_relative), (2.0, 0.25));
        assert_eq!(f.dense_gradient_steps, 0);
        // No phase: dense throughout.
        assert_eq!(Flops::phased(8.0, &[], 10, 2).training_relative, 1.0);
    }

    #[test]
    fn static_training_costs_three_forward_passes_and_rigl_adds_its_dense_gradients() {
        // Two kernels: 4×25 weights at 10 positions, 5×10 weights once; half of each kept.
        let layer = |shape: &[i64], kept| LayerSparsity {
            name: String::new(),
            shape: shape.to_vec(),
            sparsity: 0.5,
            kept,
            total: shape.iter().product(),
        };
        let (f_s, f_d) = inference(&[layer(&[4, 25], 50), layer(&[5, 10], 25)], &[10, 1]);
        assert_eq!(f_d, (2.0 * 100.0 + 4.0) * 10.0 + (2.0 * 50.0 + 5.0));
        assert_eq!(f_s, (2.0 * 50.0 + 4.0) * 10.0 + (2.0 * 25.0 + 5.0));
        let stat = Flops::training(f_s, f_d, 1000, 0, 4);
        assert_eq!(stat.training, 4.0 * 1000.0 * 3.0 * f_s);
        assert_eq!(stat.training_relative, f_s / f_d);
        assert_eq!(stat.inference_relative, f_s / f_d);
        // The paper's per-step average with ΔT = 100, when every 101st step updates.
        let rigl = Flops::training(f_s, f_d, 101 * 10, 10, 1);
        let paper = (3.0 * f_s * 100.0 + 2.0 * f_s + f_d) / 101.0;
        assert!((rigl.training / 1010.0 - paper).abs() < 1e-9 * paper);
        assert!(rigl.training_relative > stat.training_relative);
        // A dense run costs what dense training costs.
        let dense = Flops::training(f_d, f_d, 7, 0, 3);
        assert_eq!(dense.training_relative, 1.0);
    }
}
