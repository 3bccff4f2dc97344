//! Distances between networks and masks, and linear interpolation between two networks.
//!
//! Networks are named tensors (`Model::state`, a checkpoint); distances are taken over the
//! prunable weights that a mask keeps, as in the Stabilizing paper: d(W, W') = ‖m⊙W − m⊙W'‖₂.

use tch::{Kind, Tensor};

use lth_data::Source;
use lth_models::Model;
use lth_prune::Mask;

use crate::{Result, StabilityError};

fn find<'a>(w: &'a [(String, Tensor)], name: &str) -> Result<&'a Tensor> {
    w.iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| StabilityError::Invalid(format!("the network has no `{name}` to compare")))
}

/// The kept prunable weights of `w` as one flat `f64` vector, in the mask's (sorted) name order.
fn masked_flat(w: &[(String, Tensor)], mask: &Mask) -> Result<Tensor> {
    let parts = mask
        .iter()
        .map(|(name, m)| {
            let t = find(w, name)?;
            if t.size() != m.size() {
                return Err(StabilityError::Invalid(format!(
                    "`{name}` has shape {:?}, its mask {:?}",
                    t.size(),
                    m.size()
                )));
            }
            let t = t.detach().to_device(tch::Device::Cpu).to_kind(Kind::Double);
            Ok(t.masked_select(&m.to_device(tch::Device::Cpu)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0))
}

/// Stabilizing the LTH, section 2: d(W, W') = ‖m⊙W − m⊙W'‖₂ over the prunable weights `mask` keeps.
pub fn l2_distance(a: &[(String, Tensor)], b: &[(String, Tensor)], mask: &Mask) -> Result<f64> {
    let d = masked_flat(a, mask)? - masked_flat(b, mask)?;
    Ok(d.norm().double_value(&[]))
}

/// The angle, in degrees, between the masked prunable weight vectors of two networks (the
/// Stabilizing paper's appendix measures stability with it as well as with the L2 distance).
pub fn angle(a: &[(String, Tensor)], b: &[(String, Tensor)], mask: &Mask) -> Result<f64> {
    let (x, y) = (masked_flat(a, mask)?, masked_flat(b, mask)?);
    let norms = x.norm().double_value(&[]) * y.norm().double_value(&[]);
    if norms == 0.0 {
        return Ok(0.0);
    }
    let cos = (x.dot(&y).double_value(&[]) / norms).clamp(-1.0, 1.0);
    Ok(cos.acos().to_degrees())
}

/// α·W1 + (1−α)·W2 for every floating-point tensor of two networks with the same names
/// (non-floating tensors are taken from `a`). α = 1 gives `a`, α = 0 gives `b`.
pub fn interpolate(
    a: &[(String, Tensor)],
    b: &[(String, Tensor)],
    alpha: f64,
) -> Result<Vec<(String, Tensor)>> {
    a.iter()
        .map(|(name, ta)| {
            let tb = find(b, name)?;
            let value = if ta.is_floating_point() {
                if alpha == 1.0 {
                    ta.copy()
                } else if alpha == 0.0 {
                    tb.to_device(ta.device()).copy()
                } else {
                    ta * alpha + tb.to_device(ta.device()) * (1.0 - alpha)
                }
            } else {
                ta.copy()
            };
            Ok((name.clone(), value))
        })
        .collect()
}

/// The error barrier of an interpolation curve (Linear Mode Connectivity, eq. 1):
/// max over α of the error, minus the mean of the errors at the two ends.
pub fn barrier(errors: &[f64]) -> f64 {
    match (errors.first(), errors.last()) {
        (Some(first), Some(last)) => {
            errors.iter().copied().fold(f64::MIN, f64::max) - (first + last) / 2.0
        }
        _ => 0.0,
    }
}

/// What BatchNorm running statistics an interpolated network evaluates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BnStats {
    /// Recompute them for each interpolated network from training batches (the sound choice: the
    /// interpolation of two networks' statistics is not the statistics of the interpolated network).
    #[default]
    Recompute,
    /// Use the interpolation of the two networks' running statistics.
    Interpolate,
}

/// Evaluates α·W1 + (1−α)·W2 on `eval` at `points` evenly spaced α from 0 to 1 (inclusive), with
/// `model` (an instance of the architecture) as the vessel. Returns (α, error, loss) per point.
///
/// Networks without BatchNorm (LeNet) evaluate the same under both [`BnStats`]; for networks with
/// BatchNorm, `BnStats::Recompute` resets each interpolated network's running statistics and
/// re-estimates them from `train` batches before evaluating.
pub fn interpolation_curve(
    model: &mut Model,
    a: &[(String, Tensor)],
    b: &[(String, Tensor)],
    points: usize,
    eval: &Source,
    bn: BnStats,
    train: &Source,
) -> Result<Vec<(f64, f64, f64)>> {
    interpolation_curve_with(a, b, points, |weights| {
        model.load_state(weights)?;
        if bn == BnStats::Recompute {
            model.recompute_batchnorm(train)?;
        }
        let e =
            lth_train::evaluate(model, eval).map_err(|e| StabilityError::Invalid(e.to_string()))?;
        Ok((1.0 - e.accuracy, e.loss))
    })
}

/// The interpolation curve of any network: `evaluate` receives α·W1 + (1−α)·W2 (named tensors)
/// at `points` evenly spaced α from 0 to 1 and returns its (error, loss), however the caller
/// evaluates it (a plain `tch` network: copy the tensors into its `VarStore`). Returns
/// (α, error, loss) per point.
pub fn interpolation_curve_with(
    a: &[(String, Tensor)],
    b: &[(String, Tensor)],
    points: usize,
    mut evaluate: impl FnMut(&[(String, Tensor)]) -> Result<(f64, f64)>,
) -> Result<Vec<(f64, f64, f64)>> {
    if points < 2 {
        return Err(StabilityError::Invalid(format!(
            "an interpolation needs at least 2 points (the two ends), got {points}"
        )));
    }
    let mut out = Vec::with_capacity(points);
    for i in 0..points {
        let alpha = i as f64 / (points - 1) as f64;
        let (error, loss) = evaluate(&interpolate(a, b, alpha)?)?;
        out.push((alpha, error, loss));
    }
    Ok(out)
}
