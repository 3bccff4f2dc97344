//! Evaluation: a model's loss and accuracy on a split ([`evaluate`]), the splits a run is
//! evaluated on, and the row each evaluation writes to `metrics.csv` ([`MetricsRow`]). The step
//! loop, the hooks and the attacks import these; this module imports none of them.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use lth_data::Source;
use lth_models::Model;

use crate::Result;

/// Batch size of evaluation passes, packed or not (no gradients, so larger than training batches).
/// 500 rather than 1000: on a 2-core CPU a VGG-11/8 line of 42 interpolated networks, each
/// evaluated on 10,000 Fashion-MNIST images, took 34-49 s at 1000 and 22-28 s at 500 (23 s at 250);
/// at 1000 the allocator maps and unmaps each batch's activations (an `lmc` run spent 4 minutes in
/// system time, 6 s at 500). The measurement is in the README's `lmc` section.
pub(crate) const EVAL_BATCH: i64 = 500;

/// Loss and accuracy of a model on a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction correct, in [0, 1].
    pub accuracy: f64,
}

/// Evaluates `model` on `data` in evaluation mode, without gradients; reads the device once.
pub fn evaluate(model: &Model, data: &Source) -> Result<Evaluation> {
    let _eval = lth_store::ledger::span(lth_store::ledger::Activity::Evaluation);
    tch::no_grad(|| {
        let device = data.device();
        let mut loss = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        for b in data.sequential(EVAL_BATCH) {
            let b = b?;
            let logits = model.forward_t(&b.x, false);
            let summed =
                logits.cross_entropy_loss::<Tensor>(&b.y, None, tch::Reduction::Sum, -100, 0.0);
            loss += summed.to_kind(Kind::Double);
            correct += logits.argmax(-1, false).eq_tensor(&b.y).sum(Kind::Int64);
        }
        let n = data.len().max(1) as f64;
        let both = Tensor::stack(&[loss, correct.to_kind(Kind::Double)], 0);
        #[allow(
            clippy::expect_used,
            reason = "a two-element float64 tensor built just above"
        )]
        let v = Vec::<f64>::try_from(&both).expect("two doubles");
        Ok(Evaluation {
            loss: v[0] / n,
            accuracy: v[1] / n,
        })
    })
}

/// The splits a run is evaluated on (clones share device memory).
#[derive(Debug, Clone)]
pub struct EvalSets {
    pub test: Source,
    /// Held-out training examples; `None` when no validation split was asked for.
    pub validation: Option<Source>,
}

/// One row of a run's `metrics.csv`: the state after `step` steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    pub step: u64,
    /// `step` in epochs.
    pub epoch: f64,
    /// The learning rate of the last step taken (of the first, for the starting row).
    pub lr: f64,
    /// Mean training loss over the steps since the previous row (empty for the starting row).
    pub train_loss: Option<f64>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Accuracy under the evaluation attack on the first test examples (adversarial training
    /// only: the column is absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robust_accuracy: Option<f64>,
}
