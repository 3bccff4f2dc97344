//! Masks for training: which weights of which parameters are pruned.
//!
//! The optimiser keeps pruned weights at exactly zero ([`crate::Optimizer::set_masking`]):
//! gradients are masked before the update, so neither the update nor the optimiser's buffers
//! (momentum, Adam's moments) ever see a pruned weight's gradient; the weights are masked again
//! after it, so nothing (weight decay on a −0.0, a loaded checkpoint) can revive them.

use tch::{Kind, Tensor};

use lth_models::Model;

use crate::{Result, TrainError};

/// Named float (0/1) masks, checked against a model's parameters.
#[derive(Debug)]
pub struct Masking {
    masks: Vec<(String, Tensor)>,
}

impl Masking {
    /// Checks named boolean (or 0/1) masks against the parameters of `model` of the same names.
    pub fn new(model: &Model, masks: &[(String, Tensor)]) -> Result<Masking> {
        let params = model.parameters();
        let masks = masks
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
                Ok((
                    name.clone(),
                    mask.to_device(p.device()).to_kind(Kind::Float),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Masking { masks })
    }

    /// The masks as float tensors on the model's device.
    pub fn masks(&self) -> &[(String, Tensor)] {
        &self.masks
    }
}
