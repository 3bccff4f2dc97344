//! Training a ticket that is sparse in another basis ([`lth_prune::basis`]): a hook that keeps
//! each listed linear layer's weight in the subspace its kept coefficients span.
//!
//! Why a projection rather than a second parameterisation: with orthonormal bases, SGD (momentum
//! and L2 weight decay included, both linear) on the kept coefficients `Z` is exactly SGD on `W`
//! with each gradient projected by `P` (`lth_prune::basis` tests it), so the network, its
//! optimiser state, its checkpoints and every measurement stay those of an ordinary network. Adam
//! scales each coordinate of `W`, not of `Z`, so under Adam the hook also projects the weights
//! after each step: projected Adam, not Adam on `Z` (an approximation it names, not hides).

use lth_models::Named;
use lth_prune::basis::{Basis, LayerBasis};
use tch::Tensor;

use crate::{Hook, Result, StepContext, TrainError, Update};

/// The layers trained in a basis: per layer its bases and the coefficients kept.
#[derive(Debug)]
pub struct InBasis {
    layers: Vec<(String, LayerBasis, Tensor)>,
}

impl InBasis {
    /// `basis` for each `(name, keep)`: `keep` a boolean mask of the layer's coefficients, of
    /// the weight's shape, on its device.
    pub fn new(basis: Basis, keep: &[(String, Tensor)]) -> Result<InBasis> {
        let layers = keep
            .iter()
            .map(|(n, k)| {
                let l = LayerBasis::new(basis, &k.size(), k.device())
                    .map_err(|e| TrainError::Invalid(format!("layer `{n}`: {e}")))?;
                Ok((n.clone(), l, k.shallow_clone()))
            })
            .collect::<Result<_>>()?;
        Ok(InBasis { layers })
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
        // Exact already under SGD (rounding aside); under Adam this is what keeps the subspace.
        self.project(&ctx.optimizer.weights())
    }
}
