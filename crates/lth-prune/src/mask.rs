//! `Mask`: one boolean tensor per prunable parameter, with sparsity accounting and files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::{PruneError, Result};

/// The file name of the mask a unit of the run store trained with.
pub const MASK_FILE: &str = "mask.safetensors";
/// The file name of a unit's per-layer kept counts ([`LayerCount`] rows).
pub const LAYERS_FILE: &str = "layers.csv";

/// Kept and total weights of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCount {
    pub name: String,
    pub kept: i64,
    pub total: i64,
}

impl LayerCount {
    /// Fraction of the layer's weights kept.
    pub fn density(&self) -> f64 {
        self.kept as f64 / self.total.max(1) as f64
    }
}

/// Which weights of each prunable parameter survive (`true`) and which are pruned (`false`).
#[derive(Debug)]
pub struct Mask {
    layers: BTreeMap<String, Tensor>,
}

impl Clone for Mask {
    fn clone(&self) -> Self {
        Mask {
            layers: self
                .layers
                .iter()
                .map(|(n, t)| (n.clone(), t.copy()))
                .collect(),
        }
    }
}

impl Mask {
    /// A mask keeping every weight of `weights` (named kernels, e.g. `Model::prunable_tensors`).
    pub fn ones(weights: &[(String, Tensor)]) -> Mask {
        Mask {
            layers: weights
                .iter()
                .map(|(n, w)| (n.clone(), w.ones_like().to_kind(Kind::Bool)))
                .collect(),
        }
    }

    /// A mask from named boolean tensors.
    pub fn from_named(named: Vec<(String, Tensor)>) -> Result<Mask> {
        if let Some((n, t)) = named.iter().find(|(_, t)| t.kind() != Kind::Bool) {
            return Err(PruneError::Mismatch(format!(
                "mask of `{n}` has dtype {:?}, expected Bool",
                t.kind()
            )));
        }
        Ok(Mask {
            layers: named.into_iter().collect(),
        })
    }

    /// Names of the masked parameters, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.layers.keys().map(String::as_str)
    }

    /// The mask of one parameter.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.layers.get(name)
    }

    /// The masks by name, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.layers.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Named tensors sharing storage with this mask .
    pub fn to_named(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    }

    /// The same mask on `device`.
    pub fn to_device(&self, device: Device) -> Mask {
        Mask {
            layers: self
                .layers
                .iter()
                .map(|(n, t)| (n.clone(), t.to_device(device)))
                .collect(),
        }
    }

    /// The mask that keeps exactly what this one prunes.
    pub fn complement(&self) -> Mask {
        Mask {
            layers: self
                .layers
                .iter()
                .map(|(n, t)| (n.clone(), t.logical_not()))
                .collect(),
        }
    }

    /// Kept and total weights per layer, sorted by name.
    pub fn counts(&self) -> Vec<LayerCount> {
        self.layers
            .iter()
            .map(|(n, t)| LayerCount {
                name: n.clone(),
                kept: t.sum(Kind::Int64).int64_value(&[]),
                total: t.numel() as i64,
            })
            .collect()
    }

    /// [`Mask::counts`] in the network's order: the layers named in `order` first, as they come
    /// there, then any others by name (what tables and `layers.csv` show).
    pub fn counts_in(&self, order: &[String]) -> Vec<LayerCount> {
        let mut counts = self.counts();
        let place = |name: &str| order.iter().position(|o| o == name).unwrap_or(order.len());
        // A stable sort keeps the name order among layers `order` does not list.
        counts.sort_by_key(|c| place(&c.name));
        counts
    }

    /// Weights kept over all layers.
    pub fn kept(&self) -> i64 {
        self.counts().iter().map(|c| c.kept).sum()
    }

    /// Weights over all layers.
    pub fn total(&self) -> i64 {
        self.layers.values().map(|t| t.numel() as i64).sum()
    }

    /// Fraction of weights kept over all layers ("weights remaining").
    pub fn density(&self) -> f64 {
        self.kept() as f64 / self.total().max(1) as f64
    }

    /// Fraction of weights pruned over all layers.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.density()
    }

    /// The normalised Hamming distance to another mask over the same layers (same names, same
    /// shapes): the fraction of positions where they differ, 0 for equal masks and 1 for
    /// complements. Distances between IMP masks (stability) and between Early-Bird channel masks
    /// (a mask over BatchNorm layers) are both this one.
    pub fn hamming(&self, other: &Mask) -> Result<f64> {
        let names_a: Vec<&str> = self.names().collect();
        let names_b: Vec<&str> = other.names().collect();
        if names_a != names_b {
            return Err(PruneError::Mismatch(format!(
                "masks over different layers: {names_a:?} and {names_b:?}"
            )));
        }
        let mut differ: Option<Tensor> = None;
        let mut total = 0i64;
        for (name, a) in self.iter() {
            let b = &other.layers[name];
            if a.size() != b.size() {
                return Err(PruneError::Mismatch(format!(
                    "masks of `{name}` differ in shape: {:?} and {:?}",
                    a.size(),
                    b.size()
                )));
            }
            let d = a.logical_xor(&b.to_device(a.device())).sum(Kind::Int64);
            differ = Some(match differ {
                None => d,
                Some(acc) => {
                    let d = d.to_device(acc.device());
                    acc + d
                }
            });
            total += a.numel() as i64;
        }
        // One read of the device for the whole mask.
        let differ = differ.map_or(0, |d| d.int64_value(&[]));
        Ok(differ as f64 / total.max(1) as f64)
    }

    /// Zeroes the pruned weights of `weights` in place (tensors sharing storage with a model).
    /// Every masked name must be among `weights`, with the same shape.
    pub fn apply(&self, weights: &[(String, Tensor)]) -> Result<()> {
        let mut pairs = Vec::new();
        for (name, m) in &self.layers {
            let (_, w) = weights.iter().find(|(n, _)| n == name).ok_or_else(|| {
                PruneError::Mismatch(format!("the mask has `{name}`, the weights do not"))
            })?;
            if w.size() != m.size() {
                return Err(PruneError::Mismatch(format!(
                    "mask of `{name}` has shape {:?}, the weight {:?}",
                    m.size(),
                    w.size()
                )));
            }
            pairs.push((w.shallow_clone(), m.to_device(w.device())));
        }
        tch::no_grad(|| {
            for (mut w, m) in pairs {
                let _ = w.g_mul_(&m.to_kind(w.kind()));
            }
        });
        Ok(())
    }

    /// Checks that this mask covers exactly the named weights, with the same shapes.
    pub fn check_fits(&self, weights: &[(String, Tensor)]) -> Result<()> {
        if weights.len() != self.layers.len() {
            return Err(PruneError::Mismatch(format!(
                "the mask has {} layers, the weights {}",
                self.layers.len(),
                weights.len()
            )));
        }
        for (name, w) in weights {
            match self.layers.get(name) {
                None => {
                    return Err(PruneError::Mismatch(format!(
                        "the weights have `{name}`, the mask does not"
                    )));
                }
                Some(m) if m.size() != w.size() => {
                    return Err(PruneError::Mismatch(format!(
                        "mask of `{name}` has shape {:?}, the weight {:?}",
                        m.size(),
                        w.size()
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Writes the mask as a safetensors file of booleans under the parameters' names, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        Ok(lth_models::save_tensors(path, &self.to_named())?)
    }

    /// Reads a mask written by [`Mask::save`] (onto the CPU).
    pub fn load(path: &Path) -> Result<Mask> {
        let named = lth_models::load_tensors(path)?;
        Mask::from_named(named)
            .map_err(|e| PruneError::Mismatch(format!("{}: not a mask file ({e})", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(bits: &[(&str, &[bool])]) -> Mask {
        Mask::from_named(
            bits.iter()
                .map(|(n, b)| ((*n).to_owned(), Tensor::from_slice(b)))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn hamming_is_the_fraction_of_positions_that_differ() {
        let a = mask(&[("a", &[true, false, true]), ("b", &[true])]);
        let b = mask(&[("a", &[true, true, true]), ("b", &[false])]);
        assert_eq!(a.hamming(&a).unwrap(), 0.0);
        assert_eq!(a.hamming(&a.complement()).unwrap(), 1.0);
        assert_eq!(a.hamming(&b).unwrap(), 0.5);
        let c = mask(&[("a", &[true, false, true])]);
        assert!(
            a.hamming(&c)
                .unwrap_err()
                .to_string()
                .contains("different layers")
        );
        let d = mask(&[("a", &[true, false]), ("b", &[true])]);
        assert!(
            a.hamming(&d)
                .unwrap_err()
                .to_string()
                .contains("differ in shape")
        );
    }
}
