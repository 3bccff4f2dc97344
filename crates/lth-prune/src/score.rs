//! Scorers: one score per weight, as named tensors, higher meaning "more worth keeping" unless the
//! method says otherwise ([`crate::Keep`]).
//!
//! The data-driven scorers run a network (any [`Network`]) with its prunable kernels multiplied by
//! the current mask. They swap the variables' data for the duration of the pass and put the very
//! same tensors back afterwards (even on error), so the network ends bit-identical, and they take
//! gradients with `autograd.grad` semantics: no `.grad` field is touched.

use tch::{Kind, Tensor};

use lth_models::Named;

use crate::{Mask, Network, PruneError, Result};

/// The `lth-rng` domain of random scores.
pub const RANDOM_SCORE: &str = "random_score";
/// GraSP's temperature: logits are divided by it (Wang et al., 2020).
pub const GRASP_TEMPERATURE: f64 = 200.0;

/// |w|: the magnitude score of IMP and of one-shot magnitude pruning.
pub fn magnitude(weights: &[(String, Tensor)]) -> Named {
    weights
        .iter()
        .map(|(n, w)| (n.clone(), w.detach().abs()))
        .collect()
}

/// Uniform scores in [0, 1), each layer from its own `lth-rng` stream named after it: global
/// selection on them is random pruning with (in expectation) the same density in every layer.
pub fn random(weights: &[(String, Tensor)], seed: u64) -> Named {
    weights
        .iter()
        .map(|(n, w)| {
            let v = lth_rng::Stream::named(seed, RANDOM_SCORE, n).uniform(w.numel(), 0.0, 1.0);
            let t = Tensor::from_slice(&v)
                .view(w.size().as_slice())
                .to_device(w.device());
            (n.clone(), t)
        })
        .collect()
}

/// Restores the data of swapped variables when dropped.
struct Swapped {
    originals: Vec<(Tensor, Tensor)>,
}

impl Drop for Swapped {
    fn drop(&mut self) {
        for (var, data) in &mut self.originals {
            var.set_data(data);
        }
    }
}

/// Replaces, for the guard's lifetime, the data of every variable for which `replace` gives a
/// tensor. The variables keep their identity (and `requires_grad`), so the network uses the new
/// values and gradients can be taken with respect to them.
fn swap(net: &dyn Network, replace: impl Fn(&str, &Tensor) -> Option<Tensor>) -> Swapped {
    let mut originals = Vec::new();
    tch::no_grad(|| {
        for (name, var) in net.variables() {
            if let Some(new) = replace(&name, &var) {
                let mut var = var;
                let old = var.detach();
                var.set_data(&new.detach());
                originals.push((var, old));
            }
        }
    });
    Swapped { originals }
}

/// The prunable kernels, multiplied by `mask` (checked to fit them).
fn masked_swap(net: &dyn Network, mask: &Mask) -> Result<(Swapped, Named)> {
    let prunable = net.prunable();
    mask.check_fits(&prunable)?;
    let guard = swap(net, |name, var| {
        mask.get(name)
            .map(|m| var * m.to_device(var.device()).to_kind(var.kind()))
    });
    Ok((guard, prunable))
}

fn grads(of: &Tensor, wrt: &Named, create_graph: bool) -> Vec<Tensor> {
    let inputs: Vec<&Tensor> = wrt.iter().map(|(_, t)| t).collect();
    Tensor::run_backward(&[of], &inputs, create_graph, create_graph)
}

/// Divides every score by `norm` (a scalar tensor), keeping names.
fn normalised(names: &Named, scores: Vec<Tensor>, norm: &Tensor) -> Named {
    names
        .iter()
        .zip(scores)
        .map(|((n, _), s)| (n.clone(), s / norm))
        .collect()
}

fn total(scores: &[Tensor]) -> Tensor {
    scores
        .iter()
        .map(|s| s.to_kind(Kind::Double).sum(Kind::Double))
        .fold(
            Tensor::zeros([], (Kind::Double, scores[0].device())),
            |a, b| a + b,
        )
}

/// Mean cross-entropy in the logits' own precision (tch's `cross_entropy_for_logits` computes in
/// float32 whatever the input).
fn cross_entropy(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .log_softmax(-1, logits.kind())
        .g_nll_loss::<Tensor>(y, None, tch::Reduction::Mean, -100)
}

fn check_batch(x: &Tensor, y: &Tensor) -> Result<()> {
    if x.size().first() != y.size().first() || x.numel() == 0 {
        return Err(PruneError::Invalid(format!(
            "a scoring batch needs as many labels as examples, at least one: got inputs {:?}, labels {:?}",
            x.size(),
            y.size()
        )));
    }
    Ok(())
}

/// SNIP (Lee et al., 2019): |∂L/∂c| at c = 1 for a multiplicative mask c, that is |g ⊙ w|,
/// divided by its sum over all layers. L is the mean cross-entropy of one batch `(x, y)` with the
/// network in inference mode (BatchNorm uses running statistics), as in the authors' code, whose
/// scoring loss has no weight-decay term. Scores are float64.
pub fn snip(net: &dyn Network, mask: &Mask, x: &Tensor, y: &Tensor) -> Result<Named> {
    check_batch(x, y)?;
    let (_guard, w) = masked_swap(net, mask)?;
    let loss = cross_entropy(&net.forward_t(x, false), y);
    let g = grads(&loss, &w, false);
    let s: Vec<Tensor> = w
        .iter()
        .zip(&g)
        .map(|((_, w), g)| (g * w).abs().to_kind(Kind::Double))
        .collect();
    let norm = total(&s);
    Ok(normalised(&w, s, &norm))
}

/// GraSP (Wang et al., 2020): −θ ⊙ Hg, where g is the gradient of the mean cross-entropy of the
/// batch `(x, y)` with logits divided by `temperature` (200 in the paper), and Hg the product of
/// the Hessian of that loss with g (the gradient of g_stopped · ∇L). Divided by |Σ| + 1e-10 as in
/// the authors' code. The weights of *largest* score are removed: select with
/// [`crate::Keep::Smallest`]. Inference mode, like SNIP here; the batch should be class-balanced
/// (10 examples per class in the paper). Scores are float64.
pub fn grasp(
    net: &dyn Network,
    mask: &Mask,
    x: &Tensor,
    y: &Tensor,
    temperature: f64,
) -> Result<Named> {
    check_batch(x, y)?;
    if temperature.is_nan() || temperature <= 0.0 {
        return Err(PruneError::Invalid(format!(
            "GraSP's temperature must be positive, got {temperature}"
        )));
    }
    let (_guard, w) = masked_swap(net, mask)?;
    let loss = |()| cross_entropy(&(net.forward_t(x, false) / temperature), y);
    let stopped: Vec<Tensor> = grads(&loss(()), &w, false);
    let g = grads(&loss(()), &w, true);
    let z = g
        .iter()
        .zip(&stopped)
        .map(|(g, s)| (g * s).sum(g.kind()))
        .reduce(|a, b| a + b)
        .ok_or_else(|| PruneError::Invalid("the network has no prunable kernels".into()))?;
    let hg = grads(&z, &w, false);
    let s: Vec<Tensor> = w
        .iter()
        .zip(&hg)
        .map(|((_, w), hg)| -(w.detach() * hg).to_kind(Kind::Double))
        .collect();
    let norm = total(&s).abs() + 1e-10;
    Ok(normalised(&w, s, &norm))
}

/// One round of SynFlow (Tanaka et al., 2020), data-free: every floating-point variable
/// (parameters and buffers) replaced by its absolute value in float64, prunable kernels multiplied
/// by `mask`, one all-ones input of shape `input` (C, H, W), inference mode; R = the sum of the
/// output; score = |θ ⊙ ∂R/∂θ|. Float64 because R is a product over layers that overflows or
/// underflows float32 in deep networks (the published code uses float32).
pub fn synflow(net: &dyn Network, mask: &Mask, input: &[i64]) -> Result<Named> {
    let prunable = net.prunable();
    mask.check_fits(&prunable)?;
    let device = prunable
        .first()
        .map(|(_, t)| t.device())
        .ok_or_else(|| PruneError::Invalid("the network has no prunable kernels".into()))?;
    let _guard = swap(net, |name, var| {
        if !var.is_floating_point() {
            return None;
        }
        let v = var.abs().to_kind(Kind::Double);
        Some(match mask.get(name) {
            Some(m) => v * m.to_device(var.device()).to_kind(Kind::Double),
            None => v,
        })
    });
    let w = net.prunable();
    let mut shape = vec![1];
    shape.extend_from_slice(input);
    let ones = Tensor::ones(shape.as_slice(), (Kind::Double, device));
    let r = net.forward_t(&ones, false).sum(Kind::Double);
    let g = grads(&r, &w, false);
    Ok(w.iter()
        .zip(g)
        .map(|((n, w), g)| (n.clone(), (g * w.detach()).abs()))
        .collect())
}

/// The density SynFlow's schedule reaches after round `round` of `rounds` toward a final density
/// `density`: density^(round/rounds) (exponential in the round).
pub fn synflow_density(density: f64, round: u32, rounds: u32) -> f64 {
    density.powf(f64::from(round) / f64::from(rounds.max(1)))
}
