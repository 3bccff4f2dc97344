//! Real channel pruning: a narrower network of the same family, with the surviving channels'
//! weights and BatchNorm statistics copied (network slimming; the Early-Bird tickets of You et al.,
//! 2020).
//!
//! A narrow member of a family is named `<name>:channels=<list>` (e.g.
//! `cifar_vgg_16:channels=40,64,…`), so it is an ordinary model of the registry: trainable,
//! savable with PyTorch names, and hashed into run folders like any other. Which channels can go:
//! - **CIFAR VGG (with BN):** every convolution's output channels (one width per convolution, in
//!   order); the next convolution (or the output layer, after the last) loses the matching input
//!   channels.
//! - **CIFAR ResNets:** the channels *inside* each basic block (the output of `conv1`, i.e. `bn1`,
//!   and the input of `conv2`; one width per block). The stem, every block's output (`bn2`) and the
//!   shortcuts keep their widths: a block's output is added to its shortcut, so those widths are
//!   tied across a whole stage, and pruning them would need one mask shared by the stage.
//!
//! [`slimmable`] names the BatchNorm layers whose channels can go (in network order) and
//! [`narrow`] builds the narrow network from the channels kept in each.

use tch::{Kind, Tensor};

use crate::built::SUFFIX;
use crate::{Model, ModelError, Result};

/// The family a model's channels are pruned as.
enum Layout {
    Vgg,
    CifarResNet,
}

fn layout(model: &Model) -> Result<Layout> {
    let base = model.name().split(SUFFIX).next().unwrap_or_default();
    if base.starts_with("cifar_vgg_") {
        Ok(Layout::Vgg)
    } else if base.starts_with("cifar_resnet_") {
        Ok(Layout::CifarResNet)
    } else {
        Err(ModelError::Incompatible {
            name: model.name().into(),
            what: "channel pruning (implemented for cifar_vgg_* and cifar_resnet_*)".into(),
        })
    }
}

/// The index `i` of names `<prefix><i><suffix>` in a model's state, sorted numerically.
fn indexed(model: &Model, prefix: &str, suffix: &str) -> Vec<usize> {
    let mut found: Vec<usize> = model
        .state()
        .iter()
        .filter_map(|(n, _)| n.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok())
        .collect();
    found.sort_unstable();
    found
}

/// The BatchNorm scales (γ) whose channels can be removed, in network order: one per VGG
/// convolution (`layers.<i>.bn.weight`), one per ResNet block (`blocks.<i>.bn1.weight`).
pub fn slimmable(model: &Model) -> Result<Vec<String>> {
    Ok(match layout(model)? {
        Layout::Vgg => indexed(model, "layers.", ".bn.weight")
            .into_iter()
            .map(|i| format!("layers.{i}.bn.weight"))
            .collect(),
        Layout::CifarResNet => indexed(model, "blocks.", ".bn1.weight")
            .into_iter()
            .map(|i| format!("blocks.{i}.bn1.weight"))
            .collect(),
    })
}

/// Every tensor that loses entries when slimmable layer `j` loses channels: `(tensor, dim, j)`.
fn consumers(model: &Model) -> Result<Vec<(String, i64, usize)>> {
    let mut rules = Vec::new();
    match layout(model)? {
        Layout::Vgg => {
            let layers = indexed(model, "layers.", ".bn.weight");
            for (j, i) in layers.iter().enumerate() {
                let at = format!("layers.{i}");
                rules.push((format!("{at}.conv.weight"), 0, j));
                rules.push((format!("{at}.conv.bias"), 0, j));
                for s in ["weight", "bias", "running_mean", "running_var"] {
                    rules.push((format!("{at}.bn.{s}"), 0, j));
                }
                match layers.get(j + 1) {
                    Some(next) => rules.push((format!("layers.{next}.conv.weight"), 1, j)),
                    None => rules.push(("fc.weight".into(), 1, j)),
                }
            }
        }
        Layout::CifarResNet => {
            for (j, b) in indexed(model, "blocks.", ".bn1.weight").iter().enumerate() {
                let at = format!("blocks.{b}");
                rules.push((format!("{at}.conv1.weight"), 0, j));
                for s in ["weight", "bias", "running_mean", "running_var"] {
                    rules.push((format!("{at}.bn1.{s}"), 0, j));
                }
                rules.push((format!("{at}.conv2.weight"), 1, j));
            }
        }
    }
    Ok(rules)
}

/// The narrow member of `model`'s family keeping, in slimmable layer `j` ([`slimmable`]), the
/// channels `keep[j]` (distinct indices, at least one per layer), for inputs of shape `input`:
/// every surviving weight, bias and BatchNorm statistic is copied, on `model`'s device. Before any
/// training it computes what `model` computes once the removed channels' BatchNorm scale and shift
/// are zeroed ([`zero_channels`]).
pub fn narrow(model: &Model, input: [i64; 3], keep: &[Vec<i64>]) -> Result<Model> {
    let layers = slimmable(model)?;
    let state = model.state();
    let bad = |problem: String| ModelError::StateMismatch {
        name: model.name().into(),
        problem,
    };
    if keep.len() != layers.len() {
        return Err(bad(format!(
            "{} lists of kept channels for {} slimmable layers",
            keep.len(),
            layers.len()
        )));
    }
    let mut index = Vec::new();
    for (name, k) in layers.iter().zip(keep) {
        let channels = state
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, t)| t.size()[0]);
        let mut sorted = k.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.is_empty() || sorted.len() != k.len() || sorted[sorted.len() - 1] >= channels {
            return Err(bad(format!(
                "the channels kept in {name} must be distinct indices below {channels}, at \
                 least one"
            )));
        }
        index.push(Tensor::from_slice(&sorted).to_device(model.device()));
    }
    let rules = consumers(model)?;
    let narrowed: Vec<(String, Tensor)> = tch::no_grad(|| {
        state
            .iter()
            .map(|(name, t)| {
                let mut t = t.shallow_clone();
                for (_, dim, j) in rules.iter().filter(|(n, ..)| n == name) {
                    t = t.index_select(*dim, &index[*j]);
                }
                (name.clone(), t.copy())
            })
            .collect()
    });
    let base = model.name().split(SUFFIX).next().unwrap_or_default();
    let widths: Vec<String> = keep.iter().map(|k| k.len().to_string()).collect();
    let name = format!("{base}{SUFFIX}{}", widths.join(","));
    let classes = state
        .iter()
        .find(|(n, _)| n == model.output_layer())
        .map_or(0, |(_, t)| t.size()[0]);
    let mut out = Model::new(&name, input, classes, Some(model.init()), 0, model.device())?;
    out.load_state(&narrowed)?;
    Ok(out)
}

/// Zeroes the BatchNorm scale and shift of the channels not in `keep[j]` of each slimmable layer,
/// in place: the wide network then computes what [`narrow`] builds (a removed channel contributes
/// exactly 0 after its BatchNorm and ReLU).
pub fn zero_channels(model: &Model, keep: &[Vec<i64>]) -> Result<()> {
    let layers = slimmable(model)?;
    let state = model.state();
    for (name, k) in layers.iter().zip(keep) {
        let layer = name.trim_end_matches(".weight");
        for s in ["weight", "bias"] {
            let full = format!("{layer}.{s}");
            let Some((_, t)) = state.iter().find(|(n, _)| *n == full) else {
                continue;
            };
            let mut keep_mask = Tensor::zeros([t.size()[0]], (Kind::Float, t.device()));
            let idx = Tensor::from_slice(k).to_device(t.device());
            tch::no_grad(|| {
                let _ = keep_mask.index_fill_(0, &idx, 1.0);
                let _ = t.shallow_clone().g_mul_(&keep_mask.to_kind(t.kind()));
            });
        }
    }
    Ok(())
}
