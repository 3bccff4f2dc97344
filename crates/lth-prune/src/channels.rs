//! Channel masks from BatchNorm scales (network slimming, Early-Bird tickets): which channels of a
//! network's slimmable layers ([`lth_models::slim::slimmable`]) survive a global threshold on |γ|,
//! and the narrow network that keeps them ([`narrow`]).
//!
//! A channel mask is an ordinary [`Mask`] over the slimmable BatchNorm scales (one boolean per
//! channel), so distances between channel masks are [`Mask::hamming`], as between weight masks.

use lth_models::Model;
use tch::Tensor;

use crate::{Mask, PruneError, Result};

/// The channel mask at ratio `p` (Early-Bird's `pruning(model, percent)`): all slimmable layers'
/// |γ| sorted together, the threshold is the value at index ⌊p·total⌋, and a channel is kept when
/// its |γ| is strictly above it. Computed on the device without reading it.
pub fn channel_mask(model: &Model, p: f64) -> Result<Mask> {
    if !(0.0..1.0).contains(&p) {
        return Err(PruneError::Invalid(format!(
            "channel pruning ratio {p}: expected a fraction in [0, 1)"
        )));
    }
    let names = lth_models::slim::slimmable(model)?;
    let state = model.state();
    let scales: Vec<(String, Tensor)> = names
        .iter()
        .filter_map(|n| {
            let (_, t) = state.iter().find(|(m, _)| m == n)?;
            Some((n.clone(), t.detach().abs()))
        })
        .collect();
    let all = Tensor::cat(
        &scales
            .iter()
            .map(|(_, t)| t.shallow_clone())
            .collect::<Vec<_>>(),
        0,
    );
    let total = all.size()[0];
    let (sorted, _) = all.sort(0, false);
    let index = ((total as f64 * p).floor() as i64).min(total - 1);
    let threshold = sorted.get(index);
    Mask::from_named(
        scales
            .into_iter()
            .map(|(n, t)| (n, t.gt_tensor(&threshold)))
            .collect(),
    )
}

/// The channels a channel mask keeps in each slimmable layer, in network order, as indices. A
/// layer the mask empties keeps its channel of largest |γ| (a network needs a path through every
/// layer; the reference implementation would fail there instead).
pub fn kept_channels(model: &Model, mask: &Mask) -> Result<Vec<Vec<i64>>> {
    let names = lth_models::slim::slimmable(model)?;
    let state = model.state();
    names
        .iter()
        .map(|n| {
            let m = mask.get(n).ok_or_else(|| {
                PruneError::Mismatch(format!("the channel mask has no layer `{n}`"))
            })?;
            let kept: Vec<i64> = Vec::try_from(m.nonzero().view([-1]).to_device(tch::Device::Cpu))
                .map_err(PruneError::from)?;
            if !kept.is_empty() {
                return Ok(kept);
            }
            let (_, gamma) = state
                .iter()
                .find(|(name, _)| name == n)
                .ok_or_else(|| PruneError::Mismatch(format!("the model has no `{n}`")))?;
            Ok(vec![gamma.abs().argmax(0, false).int64_value(&[])])
        })
        .collect()
}

/// The narrow network keeping the channels of `mask` ([`kept_channels`]), its weights copied from
/// `model` ([`lth_models::slim::narrow`]).
pub fn narrow(model: &Model, input: [i64; 3], mask: &Mask) -> Result<Model> {
    Ok(lth_models::slim::narrow(
        model,
        input,
        &kept_channels(model, mask)?,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn the_threshold_is_global_and_strict() {
        let model = Model::new("cifar_resnet_8", [1, 8, 8], 10, None, 1, Device::Cpu).unwrap();
        // γ of the three blocks: 0..16, 16..48 and 48..112 scaled, all distinct.
        let names = lth_models::slim::slimmable(&model).unwrap();
        assert_eq!(names.len(), 3);
        let mut next = 0.0;
        for (n, mut t) in model.state() {
            if names.contains(&n) {
                let c = t.size()[0];
                let values = Tensor::arange(c, (Kind::Float, Device::Cpu)) + next;
                next += c as f64;
                tch::no_grad(|| {
                    t.copy_(&values);
                });
            }
        }
        // 112 channels: p = 0.5 gives the threshold 56 (index 56), so 57..111 are kept: 55.
        let m = channel_mask(&model, 0.5).unwrap();
        assert_eq!(m.kept(), 55);
        assert_eq!(
            m.get(&names[0]).unwrap().sum(Kind::Int64).int64_value(&[]),
            0
        );
        let kept = kept_channels(&model, &m).unwrap();
        assert_eq!(kept[0], vec![15], "an emptied layer keeps its largest |γ|");
        assert_eq!(kept[2].len(), 55);
        let small = narrow(&model, [1, 8, 8], &m).unwrap();
        assert_eq!(kept[1], vec![31]);
        assert_eq!(small.name(), "cifar_resnet_8:channels=1,1,55");
        assert!(channel_mask(&model, 1.0).is_err());
    }
}
