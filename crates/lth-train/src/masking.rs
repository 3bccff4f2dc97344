//! The hook that keeps pruned weights at exactly zero through training.
//!
//! Gradients are masked before the optimiser step, so neither the update nor the optimiser's buffers
//! (momentum, Adam's moments) ever see a pruned weight's gradient; the weights are masked again
//! after the step, so nothing (weight decay on a −0.0, a loaded checkpoint) can revive them.

use tch::{Kind, Tensor};

use lth_models::Model;

use crate::{Result, TrainError};

/// Float masks paired with the parameters they mask, on the model's device.
#[derive(Debug)]
pub struct Masking {
    pairs: Vec<(String, Tensor, Tensor)>,
}

impl Masking {
    /// Pairs named boolean (or 0/1) masks with the parameters of `model` of the same names.
    pub fn new(model: &Model, masks: &[(String, Tensor)]) -> Result<Masking> {
        let params = model.parameters();
        let pairs = masks
            .iter()
            .map(|(name, mask)| {
                let (_, p) = params.iter().find(|(n, _)| n == name).ok_or_else(|| {
                    TrainError::Invalid(format!(
                        "mask for `{name}`, which is not a parameter of {}",
                        model.name()
                    ))
                })?;
                if mask.size() != p.size() {
                    return Err(TrainError::Invalid(format!(
                        "mask for `{name}` has shape {:?}, the parameter {:?}",
                        mask.size(),
                        p.size()
                    )));
                }
                let m = mask.to_device(p.device()).to_kind(Kind::Float);
                Ok((name.clone(), p.shallow_clone(), m))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Masking { pairs })
    }

    /// Zeroes the gradients of pruned weights.
    pub fn mask_grads(&self) {
        for (_, p, m) in &self.pairs {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.g_mul_(m);
            }
        }
    }

    /// Zeroes pruned weights.
    pub fn mask_weights(&self) {
        tch::no_grad(|| {
            for (_, p, m) in &self.pairs {
                let _ = p.shallow_clone().g_mul_(m);
            }
        });
    }
}
