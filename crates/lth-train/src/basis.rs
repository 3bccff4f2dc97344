//! Training a ticket that is sparse in another basis ([`lth_prune::basis`]): a hook that keeps
//! each listed linear layer's weight in the subspace its kept coefficients span.
//!
//! Why a projection rather than a second parameterisation: with orthonormal bases, SGD (momentum
//! and L2 weight decay included, both linear) on the kept coefficients `Z` is exactly SGD on `W`
//! with each gradient projected by `P` (`lth_prune::basis` tests it), so the network, its
//! optimiser state, its checkpoints and every measurement stay those of an ordinary network. Adam
//! scales each coordinate of `W`, not of `Z`, so under Adam the hook must also project the weights
//! after each step (`every_step`): projected Adam, not Adam on `Z` (an approximation it names, not
//! hides). Under SGD the update stays in the subspace but for rounding, which the hook removes at
//! each evaluation (before the checkpoint), so every stored weight is in the subspace; a
//! projection of LeNet-300-100's first layer costs about five of its training steps, which is why
//! it is not done at every step when it need not be.

use lth_models::Named;
use lth_prune::basis::{Basis, LayerBasis};
use tch::Tensor;

use crate::{Control, Hook, MetricsRow, Result, StepContext, TrainError, Update};

/// The layers trained in a basis: per layer its bases and the coefficients kept.
#[derive(Debug)]
pub struct InBasis {
    layers: Vec<(String, LayerBasis, Tensor)>,
    every_step: bool,
}

impl InBasis {
    /// For each `(name, basis, keep)`: the layer's bases and `keep`, a boolean mask of its
    /// coefficients of the weight's shape, on its device. `every_step`: project the weights after
    /// every step (needed for any optimiser but SGD), not only at evaluations.
    pub fn new(layers: Vec<(String, LayerBasis, Tensor)>, every_step: bool) -> Result<InBasis> {
        for (n, l, k) in &layers {
            let (out, inp) = l.matrices();
            if k.size() != [out.size()[0], inp.size()[0]] {
                return Err(TrainError::Invalid(format!(
                    "layer `{n}`: kept coefficients of shape {:?} for bases of {} and {}",
                    k.size(),
                    out.size()[0],
                    inp.size()[0]
                )));
            }
        }
        Ok(InBasis { layers, every_step })
    }

    /// [`InBasis::new`] for a basis that does not depend on the weights, built at each kept
    /// mask's shape and device.
    pub fn fixed(basis: Basis, keep: &[(String, Tensor)], every_step: bool) -> Result<InBasis> {
        let layers = keep
            .iter()
            .map(|(n, k)| {
                let l = LayerBasis::new(basis, &k.size(), k.device())
                    .map_err(|e| TrainError::Invalid(format!("layer `{n}`: {e}")))?;
                Ok((n.clone(), l, k.shallow_clone()))
            })
            .collect::<Result<_>>()?;
        InBasis::new(layers, every_step)
    }

    /// Projects the named tensors (weights or gradients) in place.
    fn project(&self, named: &Named) -> Result<()> {
        tch::no_grad(|| {
            for (name, l, keep) in &self.layers {
                let t = named.get(name).ok_or_else(|| {
                    TrainError::Invalid(format!("no parameter `{name}` to train in a basis"))
                })?;
                let p = l.project(t, keep);
                t.shallow_clone().copy_(&p);
            }
            Ok(())
        })
    }

    /// Moves `weights` into the subspace (the start of a ticket: its rewound coefficients).
    pub fn project_weights(&self, weights: &Named) -> Result<()> {
        self.project(weights)
    }
}

impl Hook for InBasis {
    fn name(&self) -> &str {
        "basis"
    }

    fn after_backward(&mut self, _step: u64, ctx: &mut StepContext<'_>) -> Result<Update> {
        self.project(&ctx.optimizer.grads())?;
        Ok(Update::Apply)
    }

    fn after_step(&mut self, _step: u64, ctx: &mut StepContext<'_>) -> Result<()> {
        if self.every_step {
            self.project(&ctx.optimizer.weights())?;
        }
        Ok(())
    }

    fn on_eval(&mut self, _row: &MetricsRow, ctx: &mut StepContext<'_>) -> Result<Control> {
        // The row was measured on these weights less a rounding-sized drift; what is
        // checkpointed and kept is exactly in the subspace.
        self.project(&ctx.optimizer.weights())?;
        Ok(Control::Continue)
    }
}
