//! Fused CPU kernels for steps that would otherwise chain many element-wise libtorch operations.
//!
//! A learned-supermask step on LeNet-300-100 adds per-weight work that does not shrink with the
//! batch: a hash per weight for Bernoulli draws, or an exact top-k per layer for edge-popup. As
//! chains of ATen operations these cost 15 or more passes over the scores per step. Each kernel here
//! is one pass (C++ over ATen's tensors, on libtorch's intra-op threads through `at::parallel_for`)
//! that performs the same IEEE operations in the same order as the chain it replaces, so its
//! results are the chain's bit for bit; the tests of `lth-train`'s supermask compare the two.
//!
//! The kernels take contiguous float32 CPU tensors and check that before calling into C++; CUDA
//! keeps the chains of ATen operations, which run as device kernels there anyway.
//!
//! Besides `lth-amp`, this is the only crate with `unsafe` code: foreign calls whose tensor
//! arguments are checked (device, dtype, layout, size) before the call and outlive it.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_void};

use tch::{Device, Kind, Tensor};

unsafe extern "C" {
    fn lth_kernels_last_error() -> *const c_char;
    fn lth_bernoulli_mask(
        y: *const c_void,
        key: i32,
        first: i64,
        m: *const c_void,
        w: *const c_void,
        k: *const c_void,
    ) -> i32;
    fn lth_bernoulli_grad(
        g: *const c_void,
        w: *const c_void,
        y: *const c_void,
        gs: *const c_void,
    ) -> i32;
    #[allow(clippy::too_many_arguments, reason = "a C signature")]
    fn lth_edge_popup_mask(
        s: *const c_void,
        keep: i64,
        margin: i64,
        m: *const c_void,
        w: *const c_void,
        k: *const c_void,
        lo: *mut f32,
        hi: *mut f32,
        prev: *mut f32,
        full: *mut i32,
    ) -> i32;
    fn lth_edge_popup_grad(
        g: *const c_void,
        w: *const c_void,
        s: *const c_void,
        gs: *const c_void,
    ) -> i32;
    #[allow(clippy::too_many_arguments, reason = "a C signature")]
    fn lth_score_sgd(
        edge_popup: i32,
        g: *const c_void,
        w: *const c_void,
        y: *const c_void,
        p: *const c_void,
        buf: *const c_void,
        lr: f32,
        momentum: f32,
        decay: i32,
        weight_decay: f32,
        nesterov: i32,
    ) -> i32;
    #[allow(clippy::too_many_arguments, reason = "a C signature")]
    fn lth_sgd_step(
        p: *const c_void,
        g: *const c_void,
        mask: *const c_void,
        buf: *const c_void,
        lr: f32,
        momentum: f32,
        decay: i32,
        weight_decay: f32,
        nesterov: i32,
    ) -> i32;
    fn lth_adam_available() -> i32;
    #[allow(clippy::too_many_arguments, reason = "a C signature")]
    fn lth_adam_step(
        p: *const c_void,
        g: *const c_void,
        mask: *const c_void,
        exp_avg: *const c_void,
        exp_avg_sq: *const c_void,
        scratch: *const c_void,
        decay: i32,
        weight_decay: f32,
        lerp_weight: f32,
        beta2: f32,
        one_minus_beta2: f32,
        bias2_sqrt: f32,
        eps: f32,
        step_size: f32,
    ) -> i32;
}

/// Why a kernel was not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// An argument the kernel cannot take (named, with what was wrong).
    #[error("{0}")]
    Invalid(String),
    /// The C++ side threw.
    #[error("fused kernel failed: {0}")]
    Failed(String),
}

/// The kernels' result.
pub type Result<T> = std::result::Result<T, KernelError>;

/// Checks that `t` (called `name`) is a contiguous float32 CPU tensor of `numel` elements, and
/// returns the pointer the C++ side reads as an `at::Tensor`.
fn arg(name: &str, t: &Tensor, numel: usize) -> Result<*const c_void> {
    let wrong = |what: String| Err(KernelError::Invalid(format!("{name}: {what}")));
    if t.device() != Device::Cpu {
        return wrong(format!(
            "on {:?}; the fused kernels run on the CPU",
            t.device()
        ));
    }
    if t.kind() != Kind::Float {
        return wrong(format!("{:?}, not float32", t.kind()));
    }
    if !t.is_contiguous() {
        return wrong("not contiguous".into());
    }
    if t.numel() != numel {
        return wrong(format!("{} elements, not {numel}", t.numel()));
    }
    Ok(t.as_ptr().cast())
}

/// The pointer of an optional tensor, checked as [`arg`]; null for none.
fn optional(name: &str, t: Option<&Tensor>, numel: usize) -> Result<*const c_void> {
    t.map_or(Ok(std::ptr::null()), |t| arg(name, t, numel))
}

/// The pointers of an optional (weights, kernel) pair, null for none.
fn applied(apply: Option<(&Tensor, &Tensor)>, n: usize) -> Result<(*const c_void, *const c_void)> {
    match apply {
        Some((w, k)) => Ok((arg("weights", w, n)?, arg("kernel", k, n)?)),
        None => Ok((std::ptr::null(), std::ptr::null())),
    }
}

fn status(code: i32) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    // SAFETY: the C++ side returns a pointer to its thread-local, NUL-terminated message, valid
    // until this thread's next call; it is copied at once.
    let message = unsafe { CStr::from_ptr(lth_kernels_last_error()) };
    Err(KernelError::Failed(message.to_string_lossy().into_owned()))
}

/// Bernoulli draws of a learned supermask: `mask[i] = [sigma[i] > u_i]` (1.0 or 0.0), where
/// `u_i = (hash32((first + i) ^ key) & (2²⁴ − 1)) / 2²⁴` and `hash32` is
/// `lth_train::supermask::hash32` (Wellons' lowbias32). With `apply = Some((weights, kernel))`,
/// the same pass writes `kernel = weights ⊙ mask`.
pub fn bernoulli_mask(
    sigma: &Tensor,
    key: i32,
    first: i64,
    mask: &Tensor,
    apply: Option<(&Tensor, &Tensor)>,
) -> Result<()> {
    let n = sigma.numel();
    let (y, m) = (arg("sigma", sigma, n)?, arg("mask", mask, n)?);
    let (w, k) = applied(apply, n)?;
    // SAFETY: contiguous float CPU tensors of n elements (checked), alive for the call; w and k
    // are both null or both such tensors.
    status(unsafe { lth_bernoulli_mask(y, key, first, m, w, k) })
}

/// The scores' gradient through a Bernoulli mask: `out = ((grad ⊙ weights) ⊙ (1 − sigma)) ⊙ sigma`,
/// libtorch's `sigmoid_backward` of `grad ⊙ weights`.
pub fn bernoulli_grad(grad: &Tensor, weights: &Tensor, sigma: &Tensor, out: &Tensor) -> Result<()> {
    let n = grad.numel();
    let g = arg("gradient", grad, n)?;
    let w = arg("weights", weights, n)?;
    let y = arg("sigma", sigma, n)?;
    let o = arg("output", out, n)?;
    // SAFETY: four contiguous float CPU tensors of n elements (checked), alive for the call.
    status(unsafe { lth_bernoulli_grad(g, w, y, o) })
}

/// Where the previous [`edge_popup_mask`] of a layer found its threshold: a range of |score|
/// values that should hold the next one. A fresh window is empty, and the first call searches
/// every score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    lo: f32,
    hi: f32,
    /// The previous threshold (inside [lo, hi]).
    t: f32,
    full: i32,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            lo: 1.0,
            hi: 0.0,
            t: 0.0,
            full: 0,
        }
    }
}

impl Window {
    /// Whether the last search went over every score (the window did not hold the threshold).
    pub fn searched_all(&self) -> bool {
        self.full != 0
    }
}

/// Edge-popup's mask of one layer: `mask[i] = [|scores[i]| ≥ t]`, where t is the `keep`-th largest
/// |score| (every weight kept when `keep` ≥ the layer's size). With `apply = Some((weights,
/// kernel))`, the same pass writes `kernel = weights ⊙ mask`.
///
/// The threshold is exact, the same as a sort's, whatever the window: `window` only makes the
/// search short when scores move little between steps. One pass writes the mask under the previous
/// threshold, counts the |scores| above the window and gathers the positions inside it; t is
/// selected among those, and only their entries are rewritten (outside the window both thresholds
/// give the same mask). If t lies outside, every score is searched and the mask written again. The
/// window is then recentred on t with `max(256, n/128)` ranks on each side.
pub fn edge_popup_mask(
    scores: &Tensor,
    keep: i64,
    mask: &Tensor,
    apply: Option<(&Tensor, &Tensor)>,
    window: &mut Window,
) -> Result<()> {
    let n = scores.numel();
    if keep < 1 {
        return Err(KernelError::Invalid(format!(
            "keep: {keep}; edge-popup keeps at least one weight"
        )));
    }
    let s = arg("scores", scores, n)?;
    let m = arg("mask", mask, n)?;
    let (w, k) = applied(apply, n)?;
    let margin = (n as i64 / 128).max(256);
    // SAFETY: contiguous float CPU tensors of n elements (checked), alive for the call; w and k
    // are both null or both such tensors; the window's fields are valid for writes.
    let Window { lo, hi, t, full } = window;
    status(unsafe { lth_edge_popup_mask(s, keep, margin, m, w, k, lo, hi, t, full) })
}

/// The scores' gradient through edge-popup's mask: `out = grad ⊙ (sign(scores) ⊙ weights)`, with
/// libtorch's sign (0 at ±0). The straight-through estimator passes the kernel's gradient to |s|.
pub fn edge_popup_grad(
    grad: &Tensor,
    weights: &Tensor,
    scores: &Tensor,
    out: &Tensor,
) -> Result<()> {
    let n = grad.numel();
    let g = arg("gradient", grad, n)?;
    let w = arg("weights", weights, n)?;
    let s = arg("scores", scores, n)?;
    let o = arg("output", out, n)?;
    // SAFETY: four contiguous float CPU tensors of n elements (checked), alive for the call.
    status(unsafe { lth_edge_popup_grad(g, w, s, o) })
}

/// Which mask the scores' gradient goes through in [`score_sgd`].
#[derive(Debug, Clone, Copy)]
pub enum ScoreGrad<'a> {
    /// A Bernoulli mask, with σ(scores) as the mask pass computed it.
    Bernoulli { sigma: &'a Tensor },
    /// Edge-popup's top-k mask (straight through to the scores).
    EdgePopup,
}

/// An SGD step's terms, as `lth_train::Optimizer` holds them (PyTorch's `torch.optim.SGD` with
/// dampening 0).
#[derive(Debug, Clone, Copy)]
pub struct Sgd<'a> {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    /// The momentum buffer, updated in place; `None` without momentum.
    pub momentum_buffer: Option<&'a Tensor>,
}

/// The scores' gradient through a supermask and their SGD step, in one pass that never stores the
/// gradient: per element, `gs` as [`bernoulli_grad`] or [`edge_popup_grad`] computes it from
/// `grad` (the kernel's gradient) and `weights`, then the update of `lth_train::Optimizer::step`
/// with the same operations in the same order (`d = gs + scores·wd` when wd ≠ 0;
/// `buf = buf·momentum + d`; `u = buf·momentum + d` with Nesterov, else `buf`; `scores −= u·lr`),
/// its scalars rounded to float32 as libtorch's CPU kernels round a scalar operand. So the scores
/// and buffer equal the unfused gradient-then-step bit for bit.
pub fn score_sgd(
    mask: ScoreGrad<'_>,
    grad: &Tensor,
    weights: &Tensor,
    scores: &Tensor,
    sgd: &Sgd<'_>,
) -> Result<()> {
    let n = grad.numel();
    let g = arg("gradient", grad, n)?;
    let w = arg("weights", weights, n)?;
    let p = arg("scores", scores, n)?;
    let (edge_popup, y) = match mask {
        ScoreGrad::Bernoulli { sigma } => (0, arg("sigma", sigma, n)?),
        ScoreGrad::EdgePopup => (1, std::ptr::null()),
    };
    let buf = optional("momentum buffer", sgd.momentum_buffer, n)?;
    // SAFETY: contiguous float CPU tensors of n elements (checked), alive for the call; y is null
    // only for edge-popup, buf only without momentum.
    status(unsafe {
        lth_score_sgd(
            edge_popup,
            g,
            w,
            y,
            p,
            buf,
            sgd.lr as f32,
            sgd.momentum as f32,
            i32::from(sgd.weight_decay != 0.0),
            sgd.weight_decay as f32,
            i32::from(sgd.nesterov),
        )
    })
}

/// A model's flat parameters and gradients for [`sgd_step`] and [`adam_step`], with the flat mask
/// (1.0 where a weight is kept, 0.0 where pruned).
#[derive(Debug, Clone, Copy)]
pub struct Flat<'a> {
    pub params: &'a Tensor,
    pub grads: &'a Tensor,
    pub mask: Option<&'a Tensor>,
}

impl Flat<'_> {
    /// The pointers of params, grads and mask (null for none), checked.
    fn args(&self) -> Result<(usize, *const c_void, *const c_void, *const c_void)> {
        let n = self.params.numel();
        let p = arg("parameters", self.params, n)?;
        let g = arg("gradients", self.grads, n)?;
        Ok((n, p, g, optional("mask", self.mask, n)?))
    }
}

/// `lth_train::Optimizer`'s SGD step (PyTorch's `torch.optim.SGD`, dampening 0) in one pass over
/// the flat buffers, with the operations of its chain in the same order: `g = g ⊙ mask`,
/// `g = g + p·wd` (both left in `grads`, as the chain leaves them); `buf = buf·μ + g`,
/// `u = buf·μ + g` (Nesterov) or `buf`, else `u = g`; `p = (p − u·lr) ⊙ mask`. Scalars are rounded
/// to float32 as libtorch's CPU kernels round a scalar operand, so the results are the chain's bit
/// for bit.
pub fn sgd_step(flat: &Flat<'_>, sgd: &Sgd<'_>) -> Result<()> {
    let (n, p, g, m) = flat.args()?;
    let buf = optional("momentum buffer", sgd.momentum_buffer, n)?;
    // SAFETY: contiguous float CPU tensors of n elements (checked), alive for the call; mask and
    // buf may be null.
    status(unsafe {
        lth_sgd_step(
            p,
            g,
            m,
            buf,
            sgd.lr as f32,
            sgd.momentum as f32,
            i32::from(sgd.weight_decay != 0.0),
            sgd.weight_decay as f32,
            i32::from(sgd.nesterov),
        )
    })
}

/// An Adam step's terms (PyTorch's `torch.optim.Adam` without amsgrad), as `lth_train::Optimizer`
/// computes them in float64 before libtorch rounds each to float32.
#[derive(Debug, Clone, Copy)]
pub struct Adam<'a> {
    /// The step size, lr / (1 − β1^t).
    pub step_size: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// √(1 − β2^t).
    pub bias2_sqrt: f64,
    pub exp_avg: &'a Tensor,
    pub exp_avg_sq: &'a Tensor,
    /// A buffer of the same size for √v.
    pub scratch: &'a Tensor,
}

/// Whether [`adam_step`] runs on this machine: an x86-64 CPU with AVX2 and FMA, on which libtorch
/// dispatches its element-wise kernels to AVX2 or AVX-512 (there, its `lerp` is one fused
/// multiply-add, which the kernel must repeat). Elsewhere the caller keeps the chain of operations.
pub fn adam_available() -> bool {
    // SAFETY: no arguments.
    unsafe { lth_adam_available() != 0 }
}

/// `lth_train::Optimizer`'s Adam step in three passes over the flat buffers instead of a dozen,
/// with the operations of its chain in the same order: `g = g ⊙ mask`, `g = g + p·wd` (left in
/// `grads`); `m = lerp(m, g, 1 − β1)` (one fused multiply-add, as libtorch's);
/// `v = v·β2 + (g·g)·(1 − β2)`; then libtorch's own `sqrt` of v into `scratch` (MKL's square root
/// is not always correctly rounded, so only the same call gives the same bits); then
/// `d = √v / bias2_sqrt + ε`, `p = (p − (m / d)·step_size) ⊙ mask`. Its results are the chain's bit
/// for bit where [`adam_available`]; elsewhere it fails.
pub fn adam_step(flat: &Flat<'_>, adam: &Adam<'_>) -> Result<()> {
    let (n, p, g, m) = flat.args()?;
    let m1 = arg("exp_avg", adam.exp_avg, n)?;
    let m2 = arg("exp_avg_sq", adam.exp_avg_sq, n)?;
    let r = arg("scratch", adam.scratch, n)?;
    // SAFETY: contiguous float CPU tensors of n elements (checked), alive for the call; the mask
    // may be null.
    status(unsafe {
        lth_adam_step(
            p,
            g,
            m,
            m1,
            m2,
            r,
            i32::from(adam.weight_decay != 0.0),
            adam.weight_decay as f32,
            (1.0 - adam.beta1) as f32,
            adam.beta2 as f32,
            (1.0 - adam.beta2) as f32,
            adam.bias2_sqrt as f32,
            adam.eps as f32,
            adam.step_size as f32,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(n: i64, seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::rand([n], (Kind::Float, Device::Cpu)) * 2.0 - 1.0
    }

    /// The k-th largest |s| by a full sort.
    fn kth(s: &Tensor, keep: i64) -> f64 {
        let (sorted, _) = s.abs().sort(0, true);
        sorted.double_value(&[keep - 1])
    }

    #[test]
    fn edge_popup_keeps_the_exact_top_k_whether_the_window_holds_it_or_not() {
        let n = 50_000;
        let w = uniform(n, 1);
        let (m, k, g) = (w.zeros_like(), w.zeros_like(), uniform(n, 3));
        let mut window = Window::default();
        let mut s = uniform(n, 2);
        // (keep, whether every score must be searched): the first call, small moves (the window
        // holds t), a jump (it does not), other counts, and every weight kept (no search).
        let calls = [
            (25_000, true),
            (25_000, false),
            (25_000, true),
            (25_000, false),
            (10, true),
            (n - 3, true),
            (n, false),
            // The window still sits at n - 3's threshold: correct, by a full search.
            (25_000, true),
        ];
        for (step, (keep, all)) in calls.into_iter().enumerate() {
            let step = step as i64;
            // Small moves; at step 2 every score doubles, so t leaves the window.
            s += uniform(n, 10 + step) * 1e-4;
            if step == 2 {
                s *= 2.0;
            }
            edge_popup_mask(&s, keep, &m, Some((&w, &k)), &mut window).unwrap();
            let t = if keep >= n { 0.0 } else { kth(&s, keep) };
            let expected = s.abs().ge(t).to_kind(Kind::Float);
            assert!(m.equal(&expected), "step {step}: not the top {keep}");
            assert_eq!(m.sum(Kind::Int64).int64_value(&[]), keep.min(n));
            assert!(k.equal(&(&w * &m)), "step {step}: kernel");
            assert_eq!(window.searched_all(), all, "step {step}: searched all");
        }
        assert!(window.lo <= window.hi);
        let out = w.zeros_like();
        edge_popup_grad(&g, &w, &s, &out).unwrap();
        assert!(out.equal(&(&g * (s.sign() * &w))), "gradient");
    }

    #[test]
    fn arguments_are_checked_before_the_call() {
        let a = Tensor::zeros([4], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([5], (Kind::Float, Device::Cpu));
        let d = Tensor::zeros([4], (Kind::Double, Device::Cpu));
        let strided = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu)).select(1, 0);
        let e = |r: Result<()>| r.unwrap_err().to_string();
        assert_eq!(
            e(bernoulli_mask(&a, 1, 0, &b, None)),
            "mask: 5 elements, not 4"
        );
        assert_eq!(
            e(bernoulli_mask(&d, 1, 0, &a, None)),
            "sigma: Double, not float32"
        );
        let applied = Some((&a, &b));
        assert_eq!(
            e(bernoulli_mask(&a, 1, 0, &a, applied)),
            "kernel: 5 elements, not 4"
        );
        assert_eq!(
            e(bernoulli_grad(&a, &strided, &a, &a)),
            "weights: not contiguous"
        );
        let mut w = Window::default();
        assert!(e(edge_popup_mask(&a, 0, &a, None, &mut w)).starts_with("keep: 0"));
    }
}
