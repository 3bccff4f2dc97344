//! IMP's criteria: magnitude scores with OpenLTH's selection, and the random baseline.

use tch::{Kind, Tensor};

use crate::{Count, Keep, Mask, Result, score, select_global, select_layerwise};

/// The `lth-rng` domain of random masks.
pub const RANDOM_MASK: &str = "random_mask";

/// Prunes from each layer its own fraction of its remaining weights, those of smallest magnitude.
/// `fraction(name, weight)` gives each layer's fraction; layers absent from `mask` are ignored, and
/// every layer of `mask` must be among `weights`.
pub fn magnitude_layerwise(
    weights: &[(String, Tensor)],
    mask: &Mask,
    fraction: impl Fn(&str, &Tensor) -> f64,
) -> Result<Mask> {
    let scores = score::magnitude(weights);
    select_layerwise(&scores, mask, Keep::Largest, |name| {
        #[allow(
            clippy::expect_used,
            reason = "scores are computed for every weight just above"
        )]
        let w = scores.get(name).expect("scores of every weight");
        Count::PruneFraction(fraction(name, w))
    })
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
    let scores = score::magnitude(weights);
    select_global(
        &scores,
        mask,
        included,
        Keep::Largest,
        Count::PruneFraction(fraction),
    )
}

/// A random mask keeping, in each layer, as many weights as `mask` does, at positions drawn
/// uniformly from the whole layer (the random-pruning baseline). Each layer draws from its own
/// `lth-rng` stream, named after it.
pub fn random_like(mask: &Mask, seed: u64) -> Mask {
    let layers = mask
        .iter()
        .map(|(name, keep)| {
            let kept = keep.sum(Kind::Int64).int64_value(&[]);
            let layer = random_layer(seed, RANDOM_MASK, name, &keep.size(), kept);
            (name.to_owned(), layer.to_device(keep.device()))
        })
        .collect();
    #[allow(clippy::expect_used, reason = "the tensors are built boolean here")]
    Mask::from_named(layers).expect("boolean tensors")
}

/// A boolean tensor of `shape` (on the CPU) with `kept` ones at uniformly drawn positions: the
/// first `kept` of a permutation from the `lth-rng` stream `(seed, domain, name)`.
pub fn random_layer(seed: u64, domain: &str, name: &str, shape: &[i64], kept: i64) -> Tensor {
    let n = shape.iter().product::<i64>() as usize;
    let perm = lth_rng::Stream::named(seed, domain, name).permutation(n);
    let chosen = Tensor::from_slice(&perm[..(kept.clamp(0, n as i64) as usize)]);
    let mut flat = Tensor::zeros([n as i64], (Kind::Bool, tch::Device::Cpu));
    let _ = flat.index_fill_(0, &chosen, 1);
    flat.view(shape)
}

/// The `lth-rng` domain of reshuffled weights.
pub const RESHUFFLE: &str = "reshuffle";

/// Zhou et al.'s "reshuffle": within each layer of `mask`, the values of `weights` at the kept
/// positions trade places by a permutation from the layer's own `lth-rng` stream; pruned positions
/// keep their values. Returns new tensors, one per layer of `mask`.
pub fn reshuffle(
    weights: &[(String, Tensor)],
    mask: &Mask,
    seed: u64,
) -> Result<Vec<(String, Tensor)>> {
    mask.iter()
        .map(|(name, keep)| {
            let w = weights
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, w)| w.detach())
                .ok_or_else(|| crate::PruneError::Mismatch(format!("no weights for `{name}`")))?;
            if w.size() != keep.size() {
                return Err(crate::PruneError::Mismatch(format!(
                    "mask of `{name}` has shape {:?}, its weights {:?}",
                    keep.size(),
                    w.size()
                )));
            }
            let at = keep
                .flatten(0, -1)
                .to_device(w.device())
                .nonzero()
                .squeeze_dim(1);
            let order =
                lth_rng::Stream::named(seed, RESHUFFLE, name).permutation(at.size()[0] as usize);
            let order = Tensor::from_slice(&order).to_device(w.device());
            let mut flat = w.flatten(0, -1).copy();
            let values = flat.index_select(0, &at).index_select(0, &order);
            let _ = flat.index_copy_(0, &at, &values);
            Ok((name.to_owned(), flat.view(w.size().as_slice())))
        })
        .collect()
}
