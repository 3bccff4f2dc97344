//! Pruning criteria: pure functions from weights and a mask to a new mask.

use tch::{Kind, Tensor};

use crate::{Mask, PruneError, Result};

/// The `lth-rng` domain of random masks.
pub const RANDOM_MASK: &str = "random_mask";

/// How many of `remaining` weights pruning a fraction `fraction` removes: ⌈fraction · remaining⌉
/// (OpenLTH's rule), computed so that floating-point noise in the product (0.2 · 235200 is not
/// exactly 47040 in binary) never adds a weight.
pub fn prune_count(remaining: i64, fraction: f64) -> i64 {
    let exact = fraction * remaining as f64;
    ((exact - 1e-9 * exact.abs().max(1.0)).ceil().max(0.0) as i64).min(remaining)
}

fn check_fraction(name: &str, fraction: f64) -> Result<()> {
    if (0.0..=1.0).contains(&fraction) {
        Ok(())
    } else {
        Err(PruneError::Invalid(format!(
            "pruning fraction for `{name}` must be in [0, 1], got {fraction}"
        )))
    }
}

/// The kept positions of a layer (flat indices, ascending) and their scores.
fn kept_scores(name: &str, weight: &Tensor, keep: &Tensor) -> Result<(Tensor, Tensor)> {
    if weight.size() != keep.size() {
        return Err(PruneError::Mismatch(format!(
            "mask of `{name}` has shape {:?}, the weight {:?}",
            keep.size(),
            weight.size()
        )));
    }
    let w = weight
        .detach()
        .to_device(keep.device())
        .to_kind(Kind::Float);
    let finite = w.isfinite().all().int64_value(&[]) == 1;
    if !finite {
        return Err(PruneError::Invalid(format!(
            "weights of `{name}` are not all finite; training diverged, so magnitudes mean nothing"
        )));
    }
    let idx = keep.flatten(0, -1).nonzero().squeeze_dim(1);
    let scores = w.abs().flatten(0, -1).index_select(0, &idx);
    Ok((idx, scores))
}

/// `keep` with the given flat positions cleared.
fn clear(keep: &Tensor, positions: &Tensor) -> Tensor {
    let mut flat = keep.flatten(0, -1).copy();
    let _ = flat.index_fill_(0, positions, 0);
    flat.view(keep.size().as_slice())
}

/// Prunes from each layer its own fraction of its remaining weights, those of smallest magnitude.
/// `fraction(name, weight)` gives each layer's fraction; layers absent from `mask` are ignored, and
/// every layer of `mask` must be among `weights`.
pub fn magnitude_layerwise(
    weights: &[(String, Tensor)],
    mask: &Mask,
    fraction: impl Fn(&str, &Tensor) -> f64,
) -> Result<Mask> {
    let mut out = Vec::new();
    for (name, keep) in mask.iter() {
        let (_, w) = weights
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| PruneError::Mismatch(format!("no weights for masked layer `{name}`")))?;
        let p = fraction(name, w);
        check_fraction(name, p)?;
        let (idx, scores) = kept_scores(name, w, keep)?;
        let n = prune_count(idx.size()[0], p);
        // Stable ascending sort: equal magnitudes leave in order of position.
        let (_, order) = scores.sort_stable(true, 0, false);
        let drop = idx.index_select(0, &order.narrow(0, 0, n));
        out.push((name.to_owned(), clear(keep, &drop)));
    }
    Mask::from_named(out)
}

/// Prunes a fraction of the remaining weights of the `included` layers (in that order), those of
/// smallest magnitude across all of them: one global threshold. Layers of `mask` not included keep
/// their mask.
pub fn magnitude_global(
    weights: &[(String, Tensor)],
    mask: &Mask,
    included: &[String],
    fraction: f64,
) -> Result<Mask> {
    check_fraction("the global threshold", fraction)?;
    let mut positions = Vec::new();
    let mut scores = Vec::new();
    let mut owners = Vec::new();
    for (layer, name) in included.iter().enumerate() {
        let keep = mask
            .get(name)
            .ok_or_else(|| PruneError::Mismatch(format!("no mask for included layer `{name}`")))?;
        let (_, w) = weights.iter().find(|(n, _)| n == name).ok_or_else(|| {
            PruneError::Mismatch(format!("no weights for included layer `{name}`"))
        })?;
        let (idx, s) = kept_scores(name, w, keep)?;
        owners.push(Tensor::full(
            [idx.size()[0]],
            layer as i64,
            (Kind::Int64, idx.device()),
        ));
        positions.push(idx);
        scores.push(s);
    }
    let mut out: Vec<(String, Tensor)> = mask
        .iter()
        .filter(|(n, _)| !included.iter().any(|i| i == n))
        .map(|(n, t)| (n.to_owned(), t.copy()))
        .collect();
    if included.is_empty() {
        return Mask::from_named(out);
    }
    let (positions, scores, owners) = (
        Tensor::cat(&positions, 0),
        Tensor::cat(&scores, 0),
        Tensor::cat(&owners, 0),
    );
    let n = prune_count(scores.size()[0], fraction);
    let (_, order) = scores.sort_stable(true, 0, false);
    let chosen = order.narrow(0, 0, n);
    let (drop, drop_owner) = (
        positions.index_select(0, &chosen),
        owners.index_select(0, &chosen),
    );
    for (layer, name) in included.iter().enumerate() {
        let mine = drop.masked_select(&drop_owner.eq(layer as i64));
        let keep = mask.get(name).expect("checked above");
        out.push((name.clone(), clear(keep, &mine)));
    }
    Mask::from_named(out)
}

/// A random mask keeping, in each layer, as many weights as `mask` does, at positions drawn
/// uniformly from the whole layer (the random-pruning baseline). Each layer draws from its own
/// `lth-rng` stream, named after it.
pub fn random_like(mask: &Mask, seed: u64) -> Mask {
    let layers = mask
        .iter()
        .map(|(name, keep)| {
            let n = keep.numel();
            let kept = keep.sum(Kind::Int64).int64_value(&[]) as usize;
            let perm = lth_rng::Stream::named(seed, RANDOM_MASK, name).permutation(n);
            let chosen = Tensor::from_slice(&perm[..kept]);
            let mut flat = Tensor::zeros([n as i64], (Kind::Bool, tch::Device::Cpu));
            let _ = flat.index_fill_(0, &chosen, 1);
            (
                name.to_owned(),
                flat.view(keep.size().as_slice()).to_device(keep.device()),
            )
        })
        .collect();
    Mask::from_named(layers).expect("boolean tensors")
}
