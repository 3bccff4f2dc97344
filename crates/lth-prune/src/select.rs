//! Selection: which weights a score keeps, globally or per layer, with exact counts.
//!
//! A selection ranks only the weights the current mask keeps (pruned weights are never revived)
//! and removes the worst-scored ones. **Tie rule:** among equal scores, the weight earlier in
//! position goes first: earlier layer (in the order the layers are given), then lower flat index.
//! The ranking is a stable sort, so the result is deterministic on every device.

use tch::{Kind, Tensor};

use crate::{Mask, PruneError, Result};

/// Which end of the ranking survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep the highest scores (magnitude, SNIP, SynFlow).
    Largest,
    /// Keep the lowest scores (GraSP, whose score −θ⊙Hg removes the largest).
    Smallest,
}

/// How many weights a selection keeps, each method's own counting rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    /// Remove ⌈p·r⌉ of the r weights still kept (IMP; OpenLTH's rule).
    PruneFraction(f64),
    /// Keep round(N·(1−S)) of all N weights in scope (SNIP's rule).
    SparsityRound(f64),
    /// Keep N − ⌊S·N⌋ of all N weights in scope (RigL's, GraSP's and Synaptic-Flow's rule).
    SparsityFloor(f64),
}

/// `x` with floating-point noise of the last bits removed before rounding, so that 0.95 · 1000
/// counts as 950 and not 950.0000000000001.
fn denoise(x: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() <= 1e-9 * x.abs().max(1.0) {
        r
    } else {
        x
    }
}

/// How many of `remaining` weights pruning a fraction `fraction` removes: ⌈fraction · remaining⌉
/// (OpenLTH's rule), computed so that floating-point noise in the product (0.2 · 235200 is not
/// exactly 47040 in binary) never adds a weight.
pub fn prune_count(remaining: i64, fraction: f64) -> i64 {
    (denoise(fraction * remaining as f64).ceil().max(0.0) as i64).min(remaining)
}

impl Count {
    /// Checks the fraction: in [0, 1] (a sparsity of 1 empties the layers, which a caller may
    /// forbid earlier with a better message).
    pub fn check(&self, what: &str) -> Result<()> {
        let (Count::PruneFraction(f) | Count::SparsityRound(f) | Count::SparsityFloor(f)) = *self;
        if (0.0..=1.0).contains(&f) {
            Ok(())
        } else {
            Err(PruneError::Invalid(format!(
                "{what} must be in [0, 1], got {f}"
            )))
        }
    }

    /// Weights kept out of `total` in scope, of which `remaining` are still kept. A sparsity
    /// target below the current sparsity keeps every remaining weight.
    pub fn kept(&self, total: i64, remaining: i64) -> i64 {
        match *self {
            Count::PruneFraction(p) => remaining - prune_count(remaining, p),
            Count::SparsityRound(s) => {
                (denoise(total as f64 * (1.0 - s)).round() as i64).clamp(0, remaining)
            }
            Count::SparsityFloor(s) => {
                (total - denoise(s * total as f64).floor() as i64).clamp(0, remaining)
            }
        }
    }
}

/// The positions a layer's mask keeps (flat, ascending) and their scores there (as f64).
fn kept_scores(name: &str, score: &Tensor, keep: &Tensor) -> Result<(Tensor, Tensor)> {
    if score.size() != keep.size() {
        return Err(PruneError::Mismatch(format!(
            "mask of `{name}` has shape {:?}, its scores {:?}",
            keep.size(),
            score.size()
        )));
    }
    let s = score
        .detach()
        .to_device(keep.device())
        .to_kind(Kind::Double);
    if s.isfinite().all().int64_value(&[]) != 1 {
        return Err(PruneError::Invalid(format!(
            "scores of `{name}` are not all finite (weights or gradients that diverged?)"
        )));
    }
    let idx = keep.flatten(0, -1).nonzero().squeeze_dim(1);
    Ok((idx.shallow_clone(), s.flatten(0, -1).index_select(0, &idx)))
}

/// `keep` with the given flat positions cleared.
fn clear(keep: &Tensor, positions: &Tensor) -> Tensor {
    let mut flat = keep.flatten(0, -1).copy();
    let _ = flat.index_fill_(0, positions, 0);
    flat.view(keep.size().as_slice())
}

/// The order in which candidates leave: worst first, ties by position.
fn leaving_order(scores: &Tensor, keep: Keep) -> Tensor {
    let descending = keep == Keep::Smallest;
    scores.sort_stable(true, 0, descending).1
}

fn score_of<'a>(scores: &'a [(String, Tensor)], name: &str) -> Result<&'a Tensor> {
    scores
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| PruneError::Mismatch(format!("no scores for masked layer `{name}`")))
}

/// Selects within each layer of `mask` separately: `count(name)` says how many of that layer's
/// weights survive, ranked by its scores.
pub fn select_layerwise(
    scores: &[(String, Tensor)],
    mask: &Mask,
    keep: Keep,
    count: impl Fn(&str) -> Count,
) -> Result<Mask> {
    let mut out = Vec::new();
    for (name, m) in mask.iter() {
        let c = count(name);
        c.check(&format!("pruning fraction for `{name}`"))?;
        let (idx, s) = kept_scores(name, score_of(scores, name)?, m)?;
        let remaining = idx.size()[0];
        let drop = remaining - c.kept(m.numel() as i64, remaining);
        let order = leaving_order(&s, keep);
        out.push((
            name.to_owned(),
            clear(m, &idx.index_select(0, &order.narrow(0, 0, drop))),
        ));
    }
    Mask::from_named(out)
}

/// Selects across the `included` layers together (one threshold; ties in the order of
/// `included`). Layers of `mask` not included keep their mask.
pub fn select_global(
    scores: &[(String, Tensor)],
    mask: &Mask,
    included: &[String],
    keep: Keep,
    count: Count,
) -> Result<Mask> {
    count.check("the global pruning fraction")?;
    let mut out: Vec<(String, Tensor)> = mask
        .iter()
        .filter(|(n, _)| !included.iter().any(|i| i == n))
        .map(|(n, t)| (n.to_owned(), t.copy()))
        .collect();
    if included.is_empty() {
        return Mask::from_named(out);
    }
    let (mut positions, mut all, mut owners, mut total) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for (layer, name) in included.iter().enumerate() {
        let m = mask
            .get(name)
            .ok_or_else(|| PruneError::Mismatch(format!("no mask for included layer `{name}`")))?;
        let (idx, s) = kept_scores(name, score_of(scores, name)?, m)?;
        owners.push(Tensor::full(
            [idx.size()[0]],
            layer as i64,
            (Kind::Int64, idx.device()),
        ));
        positions.push(idx);
        all.push(s);
        total += m.numel() as i64;
    }
    let (positions, all, owners) = (
        Tensor::cat(&positions, 0),
        Tensor::cat(&all, 0),
        Tensor::cat(&owners, 0),
    );
    let remaining = all.size()[0];
    let drop = remaining - count.kept(total, remaining);
    let chosen = leaving_order(&all, keep).narrow(0, 0, drop);
    let (drop, drop_owner) = (
        positions.index_select(0, &chosen),
        owners.index_select(0, &chosen),
    );
    for (layer, name) in included.iter().enumerate() {
        let mine = drop.masked_select(&drop_owner.eq(layer as i64));
        let m = mask.get(name).expect("checked above");
        out.push((name.clone(), clear(m, &mine)));
    }
    Mask::from_named(out)
}
