//! N copies of one network packed into one (HFTA, Wang et al., MLSys 2021): each variable holds
//! every copy's value along a leading dimension, and one forward pass runs all copies (linear
//! layers as batched matrix products, convolutions as grouped convolutions, BatchNorm over the
//! copies' channels with per-copy statistics; [`crate::layers`]).
//!
//! Copy i is an ordinary network: [`PackedModel::copy_state`] gives its variables under PyTorch's
//! names with the plain network's shapes (views of the packed variables), so masks, checkpoints
//! and metrics see N normal models. Copy i starts from exactly the W0 that [`Model::new`] draws
//! for its seed.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor, nn};

use crate::{BnControl, Init, Model, ModelError, Named, Pack, Result, family};

/// N same-shape networks trained as one.
#[derive(Debug)]
pub struct PackedModel {
    name: String,
    copies: i64,
    vs: nn::VarStore,
    net: Box<dyn nn::ModuleT>,
    prunable: Vec<String>,
    batchnorm: Option<BnControl>,
}

impl PackedModel {
    /// `seeds.len()` copies of `name` (images of shape `input`, `classes` outputs), copy i
    /// initialised exactly as `Model::new(name, input, classes, init, seeds[i], device)` is.
    pub fn new(
        name: &str,
        input: [i64; 3],
        classes: i64,
        init: Option<Init>,
        seeds: &[u64],
        device: Device,
    ) -> Result<PackedModel> {
        let copies = seeds.len() as i64;
        if copies < 2 {
            return Err(ModelError::BadName {
                name: name.into(),
                expected: format!("at least 2 copies to pack, not {copies}"),
            });
        }
        let mut vs = nn::VarStore::new(Device::Cpu);
        let built = (family(name)?.build)(name, &vs.root(), input, classes, Pack(copies))?;
        let singles: Vec<HashMap<String, Tensor>> = seeds
            .iter()
            .map(|&s| {
                Model::new(name, input, classes, init, s, Device::Cpu)
                    .map(|m| m.state().into_iter().collect())
            })
            .collect::<Result<_>>()?;
        tch::no_grad(|| -> Result<()> {
            for (var, t) in vs.variables().iter_mut() {
                let parts: Vec<&Tensor> = singles
                    .iter()
                    .map(|m| {
                        m.get(var).ok_or_else(|| ModelError::StateMismatch {
                            name: name.into(),
                            problem: format!("the packed network has `{var}`, a copy does not"),
                        })
                    })
                    .collect::<Result<_>>()?;
                t.copy_(&Tensor::stack(&parts, 0));
            }
            Ok(())
        })?;
        vs.set_device(device);
        Ok(PackedModel {
            name: name.to_owned(),
            copies,
            vs,
            net: built.net,
            prunable: built.kernels.names().to_vec(),
            batchnorm: built.batchnorm,
        })
    }

    /// The registry name of every copy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of copies.
    pub fn copies(&self) -> i64 {
        self.copies
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Names of the prunable kernels, as for one copy.
    pub fn prunable(&self) -> &[String] {
        &self.prunable
    }

    /// Whether the network has BatchNorm layers.
    pub fn has_batchnorm(&self) -> bool {
        self.batchnorm.is_some()
    }

    /// Runs every copy: images `[N, B, C, H, W]` (copy i's batch at index i) to logits
    /// `[N, B, classes]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(&Pack(self.copies).input(xs), train)
    }

    /// Every variable, packed (`[N, …]`), sorted by name.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        crate::model::sorted_state(&self.vs)
    }

    /// The trainable variables, packed: what one optimiser updates for all copies.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        crate::model::trainable(self.state())
    }

    /// The BatchNorm scales γ of every copy (`[N, C]` each), sorted by name, as
    /// `Model::batchnorm_scales` finds them.
    pub fn batchnorm_scales(&self) -> Vec<(String, Tensor)> {
        crate::model::batchnorm_scales(&self.state())
    }

    /// Copy `i`'s variables under PyTorch's names and the plain network's shapes: views of the
    /// packed variables (writing them writes the copy).
    pub fn copy_state(&self, i: i64) -> Named {
        self.state()
            .into_iter()
            .map(|(n, t)| (n, t.select(0, i)))
            .collect()
    }

    /// Loads copy `i` from an ordinary model's state (every variable, plain shapes).
    pub fn load_copy_state(&self, i: i64, state: &Named) -> Result<()> {
        tch::no_grad(|| {
            for (name, mut dst) in self.copy_state(i) {
                let src = state.get(&name).ok_or_else(|| ModelError::StateMismatch {
                    name: self.name.clone(),
                    problem: format!("copy {i} lacks `{name}`"),
                })?;
                if src.size() != dst.size() {
                    return Err(ModelError::StateMismatch {
                        name: self.name.clone(),
                        problem: format!(
                            "`{name}` has shape {:?}, a copy's is {:?}",
                            src.size(),
                            dst.size()
                        ),
                    });
                }
                dst.copy_(&src.to_device(dst.device()).to_kind(Kind::Float));
            }
            Ok(())
        })
    }
}
