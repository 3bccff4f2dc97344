//! Learned supermasks: the weights stay frozen at their initial values (or signed constants) and
//! only a score per prunable weight trains, through a binary mask in the forward pass.
//!
//! - **Bernoulli** (Zhou et al., "Deconstructing Lottery Tickets", `masked_networks.py`): scores
//!   start at 0; each forward pass uses a sample m ~ Bernoulli(σ(s)) with the straight-through
//!   gradient of `m + σ(s) − stop_gradient(σ(s))`, so ∂L/∂s = ∂L/∂m · σ'(s). Evaluation uses a
//!   sample too, as the reference does.
//! - **edge-popup** (Ramanujan et al., allenai/hidden-networks `utils/conv_type.py`): scores start
//!   at U(−1/√fan_in, 1/√fan_in) (PyTorch's `kaiming_uniform_(a=√5)`); each layer keeps the
//!   `keep` fraction of its weights with the largest |s| (`numel − ⌊(1 − keep)·numel⌋` of them)
//!   and the gradient goes straight through the top-k to |s|: ∂L/∂s = ∂L/∂m · sign(s).
//!
//! **How the mask reaches the forward pass, for every family at once.** The network computes
//! with the effective kernel w ⊙ m: before each step the hook writes w ⊙ m into the model's
//! kernels (which every family's layers read), and after backward, autograd's gradient with
//! respect to that kernel, ∂L/∂(w ⊙ m), is carried through the product by the chain rule:
//! ∂L/∂m = ∂L/∂(w ⊙ m) ⊙ w, then through the estimator to the scores. This is exactly the
//! gradient of a layer that multiplies w by a differentiable m in its own forward pass, with no
//! masked copy of any family. The model's own update is skipped on every step
//! ([`Update::Skip`]): weights, biases and BatchNorm affine parameters stay frozen (BatchNorm's
//! running statistics still track the batches). Only the scores train, with the run's optimiser,
//! learning-rate schedule and weight decay (weight decay on scores is `--weight-decay`).
//!
//! The Bernoulli draws come from a counter-based hash of (seed, step, index) computed on the
//! device in int32 (products wrap, as they do on libtorch's vector units and on CUDA; a test
//! compares vectorised and scalar elements with the host's hash): the same masks on every device
//! and thread count, any step's draw without replaying earlier ones, and no host synchronisation.
//! The hook's state (scores and their optimiser state) goes into resume checkpoints; the model's
//! checkpointed kernels already hold w ⊙ m for the next step, so a resumed run continues
//! bit-identically.
//!
//! **Two paths, the same bits.** On CUDA the masks and gradients are chains of libtorch
//! operations (each a device kernel). On the CPU such a chain is 15 or more passes over the scores
//! per step, which on LeNet-300-100 cost more than the step's matrix products; there
//! `lth_kernels`' fused passes compute the same IEEE operations in the same order, with w ⊙ m
//! written in the mask's pass ([`LearnedMask::set_fused`]; a test holds the two paths equal bit
//! for bit over training steps of both methods).

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use lth_models::{Model, Named};
use lth_prune::Mask;
use lth_rng::Stream;
use lth_store::{RunDir, RunKind};

#[cfg(feature = "clap")]
use crate::method::set;
use crate::method::Method;
use crate::{
    Hook, Hooks, Optimizer, Progress, Result, RunSummary, Schedule, Setup, StepContext, TrainError,
    TrainHparams, TrainingHparams, Update, run_resumable,
};

/// How the mask is drawn from the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupermaskMethod {
    /// A Bernoulli(σ(s)) sample per forward pass, straight-through to σ (Zhou et al.).
    #[default]
    Bernoulli,
    /// The top `keep` fraction of |s| per layer, straight-through (Ramanujan et al.).
    EdgePopup,
}

impl SupermaskMethod {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SupermaskMethod::Bernoulli => "bernoulli",
            SupermaskMethod::EdgePopup => "edge-popup",
        }
    }
}

impl std::fmt::Display for SupermaskMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SupermaskMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bernoulli" => Ok(SupermaskMethod::Bernoulli),
            "edge-popup" | "edge_popup" => Ok(SupermaskMethod::EdgePopup),
            _ => Err(format!(
                "unknown supermask method `{s}`; expected bernoulli or edge-popup"
            )),
        }
    }
}

/// The frozen values the mask selects from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrozenWeights {
    /// The initial weights W0.
    #[default]
    Init,
    /// sign(W0) × the layer's init std ([`lth_models::Init::signed_constant`]; with Kaiming
    /// normal, edge-popup's signed Kaiming constant).
    SignedConstant,
}

impl std::fmt::Display for FrozenWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrozenWeights::Init => "init",
            FrozenWeights::SignedConstant => "signed-constant",
        })
    }
}

impl std::str::FromStr for FrozenWeights {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "init" => Ok(FrozenWeights::Init),
            "signed-constant" | "signed_constant" => Ok(FrozenWeights::SignedConstant),
            _ => Err(format!(
                "unknown frozen weights `{s}`; expected init or signed-constant"
            )),
        }
    }
}

/// A learned supermask's settings; the scores' optimiser is the run's. The default is Bernoulli's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupermaskHparams {
    pub method: SupermaskMethod,
    /// edge-popup: the fraction of each layer's weights kept (k). `None` for Bernoulli.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<f64>,
    pub weights: FrozenWeights,
}

impl SupermaskHparams {
    /// The references' defaults: Bernoulli on W0; edge-popup keeping half of each layer, on
    /// signed constants.
    pub fn new(method: SupermaskMethod) -> SupermaskHparams {
        match method {
            SupermaskMethod::Bernoulli => SupermaskHparams {
                method,
                keep: None,
                weights: FrozenWeights::Init,
            },
            SupermaskMethod::EdgePopup => SupermaskHparams {
                method,
                keep: Some(0.5),
                weights: FrozenWeights::SignedConstant,
            },
        }
    }

    /// Whether the settings make sense together.
    pub fn validate(&self) -> Result<()> {
        match (self.method, self.keep) {
            (SupermaskMethod::Bernoulli, Some(k)) => Err(TrainError::Invalid(format!(
                "--keep {k}: a Bernoulli supermask learns its own density; --keep is edge-popup's"
            ))),
            (SupermaskMethod::EdgePopup, None) => Err(TrainError::Invalid(
                "an edge-popup supermask needs --keep (the fraction of each layer kept)".into(),
            )),
            (SupermaskMethod::EdgePopup, Some(k)) if !(k > 0.0 && k <= 1.0) => {
                Err(TrainError::Invalid(format!(
                    "--keep {k}: the fraction of each layer kept must be in (0, 1]"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A run that learns a supermask: what `lth train --supermask` stores (folder
/// `supermask_<hash>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupermaskRun {
    pub train: TrainHparams,
    pub supermask: SupermaskHparams,
}

/// One prunable kernel: where it sits in the flat score buffer, and how many of its weights
/// edge-popup keeps.
#[derive(Debug)]
struct Layer {
    name: String,
    shape: Vec<i64>,
    offset: i64,
    numel: i64,
    keep: i64,
}

/// The hook that trains a supermask (see the module's documentation).
#[derive(Debug)]
pub struct LearnedMask {
    method: SupermaskMethod,
    seed: u64,
    layers: Vec<Layer>,
    /// The frozen values of every prunable weight, flat in the scores' order.
    frozen: Tensor,
    scores: Optimizer,
    schedule: Schedule,
    /// Workspace, flat over all prunable weights and allocated once (a step allocates nothing
    /// of the model's size: on the CPU a fresh buffer of that size costs more in page faults than
    /// the arithmetic on it). `mask`: the mask of `chain_step` as 0/1 floats; `chain`: what the
    /// backward pass needs of it, σ(s) for Bernoulli (∂m/∂s = σ(s)(1 − σ(s))), w ⊙ sign(s) for
    /// edge-popup on the chained path.
    mask: Tensor,
    chain: Tensor,
    /// The chained path's own buffers, allocated at its first step (the fused path, the CPU's
    /// default, never needs them).
    chained: Option<Chained>,
    /// The step whose mask `mask` and `chain` hold.
    chain_step: Option<u64>,
    /// Whether the mask and the scores' gradient come from `lth_kernels`' fused passes (on the
    /// CPU) rather than chains of libtorch operations (on CUDA, where each is a device kernel);
    /// the two give the same bits.
    fused: bool,
    /// Per layer, where edge-popup's previous threshold lay (the fused search starts there).
    windows: Vec<lth_kernels::Window>,
}

/// The chained path's buffers, flat over all prunable weights: `counters`, 0..n (int32), the
/// counters of the Bernoulli draws; `float`, `int`, `flags`: scratch.
#[derive(Debug)]
struct Chained {
    counters: Tensor,
    float: Tensor,
    int: Tensor,
    flags: Tensor,
}

impl Chained {
    fn new(n: i64, device: Device) -> Chained {
        Chained {
            counters: Tensor::arange(n, (Kind::Int, device)),
            float: Tensor::zeros([n], (Kind::Float, device)),
            int: Tensor::zeros([n], (Kind::Int, device)),
            flags: Tensor::zeros([n], (Kind::Bool, device)),
        }
    }

    /// The same buffers (shallow copies, which share their storage).
    fn share(&self) -> Chained {
        Chained {
            counters: self.counters.shallow_clone(),
            float: self.float.shallow_clone(),
            int: self.int.shallow_clone(),
            flags: self.flags.shallow_clone(),
        }
    }
}

const HASH_DOMAIN: u32 = 0x5eed_3a5c;

/// A 32-bit integer hash (Wellons' `lowbias32` constants) in signed 32-bit arithmetic (wrapping
/// products, arithmetic shifts), the host's version of [`hash_tensor`].
pub fn hash32(x: i32) -> i32 {
    let mut x = x;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b_u32 as i32);
    x ^= x >> 16;
    x
}

/// [`hash32`] of every element of an int32 tensor, on its device. libtorch's int32 products wrap
/// on every backend (vector units and CUDA alike), and shifts of signed values are arithmetic.
pub fn hash_tensor(x: &Tensor) -> Tensor {
    let x = x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(16));
    let x = x * 0x7feb_352d_i64;
    let x = x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(15));
    let x = x * i64::from(0x846c_a68b_u32 as i32);
    x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(16))
}

/// The key of step `step`'s draws under `seed`.
fn step_key(seed: u64, step: u64) -> i32 {
    let s = hash32((seed as i32) ^ hash32((seed >> 32) as i32 ^ HASH_DOMAIN as i32));
    hash32(s ^ hash32(step as i32 ^ hash32((step >> 32) as i32)))
}

/// 24-bit uniform integers (in [0, 2²⁴)) for int32 counters `counters` at step `step` under
/// `seed`: the same values on every device. u = value / 2²⁴ is a uniform draw in [0, 1).
pub fn uniform_draws(seed: u64, step: u64, counters: &Tensor) -> Tensor {
    let key = i64::from(step_key(seed, step));
    hash_tensor(&counters.bitwise_xor(key)).bitwise_and(0xff_ffff)
}

/// The host's version of [`uniform_draws`] for one counter (what the tests compare against).
pub fn uniform_draw(seed: u64, step: u64, counter: i32) -> i32 {
    hash32(counter ^ step_key(seed, step)) & 0xff_ffff
}

/// 2²⁴: the draws are integers below it.
const DRAW_SCALE: f64 = 16_777_216.0;

impl LearnedMask {
    /// The hook for `model` (whose prunable kernels hold W0), with scores initialised as the
    /// method's reference does (edge-popup's from `seed`'s stream of each kernel) and trained by
    /// `training`'s optimiser along `schedule`.
    pub fn new(
        hp: &SupermaskHparams,
        training: &TrainingHparams,
        model: &Model,
        schedule: Schedule,
        seed: u64,
    ) -> Result<LearnedMask> {
        hp.validate()?;
        let device = model.device();
        let mut layers = Vec::new();
        let mut scores = Vec::new();
        let mut frozen = Vec::new();
        let mut offset = 0;
        for (name, w) in model.prunable_tensors() {
            let w = w.detach().contiguous();
            frozen.push(match hp.weights {
                FrozenWeights::Init => w.copy().reshape([-1]),
                FrozenWeights::SignedConstant => model.init().signed_constant(&w).reshape([-1]),
            });
            let numel = w.numel() as i64;
            let keep = match hp.keep {
                Some(k) => numel - ((1.0 - k) * numel as f64).floor() as i64,
                None => numel,
            };
            let shape = w.size();
            let s = match hp.method {
                SupermaskMethod::Bernoulli => {
                    Tensor::zeros(shape.as_slice(), (Kind::Float, device))
                }
                SupermaskMethod::EdgePopup => {
                    let fan_in: i64 = shape.iter().skip(1).product();
                    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
                    let v = Stream::named(seed, "supermask-scores", &name).uniform(
                        numel as usize,
                        -bound,
                        bound,
                    );
                    Tensor::from_slice(&v)
                        .view(shape.as_slice())
                        .to_device(device)
                }
            };
            scores.push((name.clone(), s));
            layers.push(Layer {
                name,
                shape,
                offset,
                numel,
                keep,
            });
            offset += numel;
        }
        if offset > i64::from(i32::MAX) {
            return Err(TrainError::Invalid(format!(
                "a learned supermask counts its draws in 31 bits; this model has {offset} prunable \
                 weights"
            )));
        }
        let n_layers = layers.len();
        let mut scores = Optimizer::over(training, scores, device);
        scores.bind_zero_grads();
        Ok(LearnedMask {
            method: hp.method,
            seed,
            layers,
            frozen: Tensor::cat(&frozen, 0),
            scores,
            schedule,
            mask: Tensor::zeros([offset], (Kind::Float, device)),
            chain: Tensor::zeros([offset], (Kind::Float, device)),
            chained: None,
            chain_step: None,
            fused: device == Device::Cpu,
            windows: vec![lth_kernels::Window::default(); n_layers],
        })
    }

    /// Computes masks and gradients with `lth_kernels`' fused passes (`true`, the default on the
    /// CPU) or with chains of libtorch operations (`false`, what CUDA runs). Both give the same
    /// bits; tests and `lth bench --suite supermask` compare them. The fused passes run on the CPU
    /// only.
    pub fn set_fused(&mut self, fused: bool) -> Result<()> {
        let device = self.frozen.device();
        if fused && device != Device::Cpu {
            return Err(TrainError::Invalid(format!(
                "the fused supermask kernels run on the CPU, not on {device:?}"
            )));
        }
        self.fused = fused;
        self.chain_step = None;
        Ok(())
    }

    /// The scores by kernel name (views: the hook's own).
    pub fn scores(&self) -> Named {
        self.scores.weights()
    }

    /// The frozen values of each kernel, by name.
    pub fn frozen(&self) -> Named {
        self.layers
            .iter()
            .map(|l| (l.name.clone(), self.layer(&self.frozen, l)))
            .collect()
    }

    /// The chained path's buffers, allocated the first time.
    fn chained(&mut self) -> Chained {
        let (n, device) = (self.frozen.size()[0], self.frozen.device());
        self.chained
            .get_or_insert_with(|| Chained::new(n, device))
            .share()
    }

    /// Each layer's kernel gradient from the model's optimiser (views of its flat buffer, in the
    /// kernels' layouts).
    fn kernel_grads(&self, ctx: &StepContext<'_>) -> Result<Vec<Tensor>> {
        self.layers
            .iter()
            .map(|l| {
                ctx.optimizer.grad(&l.name).ok_or_else(|| {
                    TrainError::Invalid(format!("no gradient for kernel `{}`", l.name))
                })
            })
            .collect()
    }

    /// Layer `l`'s part of a flat tensor, in its shape.
    fn layer(&self, flat: &Tensor, l: &Layer) -> Tensor {
        flat.narrow(0, l.offset, l.numel).view(l.shape.as_slice())
    }

    /// Computes, into the workspace, the mask the forward pass of step `step` uses and the
    /// backward pass's part of it (Bernoulli's σ(s) in `chain`; edge-popup's w ⊙ sign(s) on the
    /// tensor path only, since the fused gradient reads s). With `kernels` (each layer's kernel in
    /// the model), the fused path also writes w ⊙ m into them in the same pass; returns whether
    /// it did.
    fn compute_mask(&mut self, step: u64, kernels: Option<&[Tensor]>) -> Result<bool> {
        if self.chain_step == Some(step) {
            return Ok(false);
        }
        let s = self.scores.values();
        let _guard = tch::no_grad_guard();
        let applied = |i: usize, l: &Layer| {
            kernels.map(|k| {
                (
                    self.frozen.narrow(0, l.offset, l.numel),
                    k[i].shallow_clone(),
                )
            })
        };
        match (self.method, self.fused) {
            (SupermaskMethod::Bernoulli, true) => {
                let _ = s.sigmoid_out(&self.chain);
                let key = step_key(self.seed, step);
                for (i, l) in self.layers.iter().enumerate() {
                    let part = |t: &Tensor| t.narrow(0, l.offset, l.numel);
                    let apply = applied(i, l);
                    lth_kernels::bernoulli_mask(
                        &part(&self.chain),
                        key,
                        l.offset,
                        &part(&self.mask),
                        apply.as_ref().map(|(w, k)| (w, k)),
                    )?;
                }
            }
            (SupermaskMethod::EdgePopup, true) => {
                for (i, (l, window)) in self.layers.iter().zip(&mut self.windows).enumerate() {
                    let part = |t: &Tensor| t.narrow(0, l.offset, l.numel);
                    let apply = applied(i, l);
                    lth_kernels::edge_popup_mask(
                        &part(&s),
                        l.keep,
                        &part(&self.mask),
                        apply.as_ref().map(|(w, k)| (w, k)),
                        window,
                    )?;
                }
            }
            (SupermaskMethod::Bernoulli, false) => {
                let _ = s.sigmoid_out(&self.chain);
                let Chained {
                    counters,
                    mut float,
                    int,
                    ..
                } = self.chained();
                let scratch = float.view_dtype(Kind::Int);
                uniform_draws_into(self.seed, step, &counters, &int, &scratch);
                float.copy_(&int);
                let _ = float.g_mul_scalar_(1.0 / DRAW_SCALE);
                // m = [u < σ(s)] as 0/1: sign(σ(s) − u) clamped at 0 (equality gives 0).
                let _ = self.chain.sub_out(&self.mask, &float);
                let _ = self.mask.sign_();
                let _ = self.mask.clamp_min_(0.0);
            }
            (SupermaskMethod::EdgePopup, false) => {
                let Chained {
                    float, int, flags, ..
                } = self.chained();
                for l in &self.layers {
                    let part = |t: &Tensor| t.narrow(0, l.offset, l.numel);
                    top_k_into(
                        &part(&s),
                        l.keep,
                        &part(&self.mask),
                        &part(&float),
                        &part(&int),
                        &part(&flags),
                    );
                }
                self.chain.copy_(&s);
                let _ = self.chain.sign_();
                let _ = self.chain.g_mul_(&self.frozen);
            }
        }
        self.chain_step = Some(step);
        Ok(self.fused && kernels.is_some())
    }

    /// The binary masks (float 0/1) the forward pass of step `step` uses, by kernel name.
    pub fn masks(&mut self, step: u64) -> Result<Vec<(String, Tensor)>> {
        self.compute_mask(step, None)?;
        Ok(self
            .layers
            .iter()
            .map(|l| (l.name.clone(), self.layer(&self.mask, l).copy()))
            .collect())
    }

    /// Writes w ⊙ m of step `step` into `weights` (the model's kernels by name).
    pub fn apply(&mut self, step: u64, weights: &Named) -> Result<()> {
        let kernels = self
            .layers
            .iter()
            .map(|l| {
                weights
                    .get(&l.name)
                    .map(Tensor::shallow_clone)
                    .ok_or_else(|| {
                        TrainError::Invalid(format!("the model lost its kernel `{}`", l.name))
                    })
            })
            .collect::<Result<Vec<Tensor>>>()?;
        if self.compute_mask(step, Some(&kernels))? {
            return Ok(());
        }
        for (l, w) in self.layers.iter().zip(&kernels) {
            let _ = tch::no_grad(|| {
                self.layer(&self.frozen, l)
                    .mul_out(w, &self.layer(&self.mask, l))
            });
        }
        Ok(())
    }
}

/// [`uniform_draws`] written into `out` with `scratch` (int32, the counters' size), allocating
/// nothing.
fn uniform_draws_into(seed: u64, step: u64, counters: &Tensor, out: &Tensor, scratch: &Tensor) {
    let key = i64::from(step_key(seed, step));
    let mut x = counters.bitwise_xor_scalar_out(out, key);
    let shift_xor = |x: &mut Tensor, by: i64| {
        let _ = x.bitwise_right_shift_tensor_scalar_out(scratch, by);
        let _ = x.bitwise_xor_tensor_(scratch);
    };
    shift_xor(&mut x, 16);
    let _ = x.g_mul_scalar_(0x7feb_352d_i64);
    shift_xor(&mut x, 15);
    let _ = x.g_mul_scalar_(i64::from(0x846c_a68b_u32 as i32));
    shift_xor(&mut x, 16);
    let _ = x.bitwise_and_(0xff_ffff);
}

/// Flat bool: true at the `keep` entries of largest |s| (of a flat `s`).
///
/// An exact radix select on the device, with no host synchronisation and a fixed number of
/// operations: |s| ≥ 0 as f32 bits orders like the integers of those bits, so histograms of
/// their digits (10, 11 and 10 bits from the top), each over the values that match the digits
/// chosen so far, find the `keep`-th largest value one digit at a time; the mask keeps everything
/// at or above it. Counting is integer arithmetic, so the result is the same on every device (a
/// sort's order among equal values is not); weights whose |s| ties the threshold exactly are all
/// kept (the scores are continuous, so ties have probability zero). Histograms of at most 2¹¹
/// bins keep the fixed cost per layer small. On two CPU cores it takes about a third of a `topk`
/// over LeNet-300-100's first layer.
#[cfg(test)]
fn top_k(s: &Tensor, keep: i64) -> Tensor {
    let n = s.numel() as i64;
    let f = |k| Tensor::zeros([n], (k, s.device()));
    let out = f(Kind::Float);
    top_k_into(
        s,
        keep,
        &out,
        &f(Kind::Float),
        &f(Kind::Int),
        &f(Kind::Bool),
    );
    out.to_kind(Kind::Bool)
}

/// [`top_k`] as 0/1 floats into `out`, with scratch buffers of `s`'s size (`float`: f32; `int`:
/// int32; `flags`: bool), allocating nothing of that size.
fn top_k_into(s: &Tensor, keep: i64, out: &Tensor, float: &Tensor, int: &Tensor, flags: &Tensor) {
    let n = s.numel() as i64;
    let device = s.device();
    if keep >= n {
        let _ = out.shallow_clone().fill_(1.0);
        return;
    }
    let bits = s.abs_out(float).view_dtype(Kind::Int);
    let mut need = Tensor::from_slice(&[keep]).to_device(device);
    let mut threshold = Tensor::zeros([1], (Kind::Int64, device));
    for (level, (shift, width)) in [(21, 10), (10, 11), (0, 10)].into_iter().enumerate() {
        let bins = 1i64 << width;
        let mut digit = bits.bitwise_right_shift_tensor_scalar_out(int, shift);
        let _ = digit.bitwise_and_(bins - 1);
        if level > 0 {
            // Values off the prefix chosen so far count in an extra bin, past the others.
            let _ = digit.masked_fill_(flags, bins);
        }
        // On the CPU `bincount` counts fastest; on CUDA it reads its input's maximum back to the
        // host, so `index_add` counts there.
        let hist = if device == Device::Cpu {
            digit
                .bincount::<Tensor>(None, bins + 1)
                .to_kind(Kind::Int64)
        } else {
            let ones = Tensor::ones([1], (Kind::Int64, device)).expand([n], false);
            Tensor::zeros([bins + 1], (Kind::Int64, device)).index_add(0, &digit, &ones)
        }
        .narrow(0, 0, bins);
        // The digit d: the largest with at least `need` matching values at or above it.
        let at_least = hist.flip([0]).cumsum(0, Kind::Int64).flip([0]);
        let d = at_least.ge_tensor(&need).sum(Kind::Int64).view([1]) - 1;
        need -= at_least.index_select(0, &d) - hist.index_select(0, &d);
        threshold += d.g_mul_scalar(1i64 << shift);
        let _ = digit.ne_tensor_out(flags, &d.to_kind(Kind::Int));
    }
    let _ = bits.ge_tensor_out(out, &threshold.to_kind(Kind::Int));
}

impl Hook for LearnedMask {
    fn name(&self) -> &str {
        "supermask"
    }

    /// The scores' step: ∂L/∂s from the kernels' gradients, then the model's own update is
    /// skipped (its weights are frozen).
    fn after_backward(&mut self, step: u64, ctx: &mut StepContext<'_>) -> Result<Update> {
        // The workspace holds this step's mask since it was applied; the first step of a resumed
        // run (whose kernels came from the checkpoint) computes it again from the same scores.
        self.compute_mask(step, None)?;
        let lr = self.schedule.lr_at(step);
        if self.fused {
            // Plain SGD (what both references train scores with): the gradient goes straight
            // into the update, one pass per layer, and is never stored.
            // The fused kernels take contiguous tensors (a copy only for a channels-last kernel).
            let grads: Vec<Tensor> = self
                .kernel_grads(ctx)?
                .iter()
                .map(Tensor::contiguous)
                .collect();
            let (layers, frozen, chain, method) =
                (&self.layers, &self.frozen, &self.chain, self.method);
            let fused = self.scores.fused_sgd_step(lr, |flat, sgd| {
                for (l, g) in layers.iter().zip(&grads) {
                    let part = |t: &Tensor| t.narrow(0, l.offset, l.numel);
                    let buf = sgd.momentum_buffer.map(part);
                    let sigma = part(chain);
                    let mask = match method {
                        SupermaskMethod::Bernoulli => {
                            lth_kernels::ScoreGrad::Bernoulli { sigma: &sigma }
                        }
                        SupermaskMethod::EdgePopup => lth_kernels::ScoreGrad::EdgePopup,
                    };
                    let sgd = lth_kernels::Sgd {
                        momentum_buffer: buf.as_ref(),
                        ..*sgd
                    };
                    lth_kernels::score_sgd(
                        mask,
                        &g.reshape([-1]),
                        &part(frozen),
                        &part(flat),
                        &sgd,
                    )?;
                }
                Ok::<(), lth_kernels::KernelError>(())
            });
            if let Some(done) = fused {
                done?;
                self.chain_step = None;
                return Ok(Update::Skip);
            }
        }
        #[allow(clippy::expect_used, reason = "bound at construction")]
        let gs = self.scores.gradients().expect("bound gradients");
        let s = self.scores.values();
        let float = if self.fused {
            None
        } else {
            Some(self.chained().float)
        };
        let grads = self.kernel_grads(ctx)?;
        tch::no_grad(|| -> Result<()> {
            for (l, g) in self.layers.iter().zip(&grads) {
                let (gs, c) = (self.layer(&gs, l), self.layer(&self.chain, l));
                if self.fused {
                    let (g, w) = (g.contiguous(), self.layer(&self.frozen, l));
                    match self.method {
                        SupermaskMethod::Bernoulli => lth_kernels::bernoulli_grad(&g, &w, &c, &gs)?,
                        SupermaskMethod::EdgePopup => {
                            lth_kernels::edge_popup_grad(&g, &w, &self.layer(&s, l), &gs)?
                        }
                    }
                    continue;
                }
                let _ = match self.method {
                    // ∂L/∂s = (∂L/∂(w ⊙ m) ⊙ w) ⊙ σ(s)(1 − σ(s)), the last product fused.
                    SupermaskMethod::Bernoulli => {
                        #[allow(clippy::expect_used, reason = "allocated above when chained")]
                        let float = float.as_ref().expect("the chained path's buffers");
                        let gw = g.mul_out(&self.layer(float, l), &self.layer(&self.frozen, l));
                        Tensor::sigmoid_backward_grad_input(&gs, &gw, &c)
                    }
                    // ∂L/∂s = ∂L/∂(w ⊙ m) ⊙ (w ⊙ sign(s)).
                    SupermaskMethod::EdgePopup => g.mul_out(&gs, &c),
                };
            }
            Ok(())
        })?;
        self.scores.step(lr);
        // The scores moved: the workspace no longer holds any step's mask.
        self.chain_step = None;
        Ok(Update::Skip)
    }

    /// The mask of the next step goes into the kernels (what evaluations after this step see).
    fn after_step(&mut self, step: u64, ctx: &mut StepContext<'_>) -> Result<()> {
        self.apply(step + 1, &ctx.optimizer.weights())
    }

    /// The final mask, `mask.safetensors`.
    fn finish(&mut self, dir: &std::path::Path, model: &Model) -> Result<()> {
        mask_in(model)?.save(&dir.join(lth_prune::MASK_FILE))?;
        Ok(())
    }

    fn state(&self) -> Named {
        let mut out = self.scores.weights().prefixed("scores.");
        for (n, t) in self.scores.state() {
            out.insert(format!("scores_{n}"), t);
        }
        out
    }

    fn load_state(&mut self, state: &Named) -> Result<()> {
        let saved = state.strip_prefix("scores.");
        let scores = self.scores.weights();
        for l in &self.layers {
            let src = saved.get(&l.name).ok_or_else(|| {
                TrainError::Invalid(format!("supermask state lacks the scores of `{}`", l.name))
            })?;
            #[allow(clippy::expect_used, reason = "scores are built per layer")]
            let mut dst = scores
                .get(&l.name)
                .expect("a score per layer")
                .shallow_clone();
            tch::no_grad(|| dst.copy_(src));
        }
        let opt = state
            .strip_prefix("scores_")
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        self.scores.load_state(&opt)
    }
}

/// The mask a model's kernels hold: 1 where the kernel is non-zero. After a learned-supermask run
/// the kernels are w ⊙ m with w non-zero, so this is m.
pub fn mask_in(model: &Model) -> Result<Mask> {
    let named = model
        .prunable_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.ne(0.0).to_device(Device::Cpu)))
        .collect();
    Mask::from_named(named).map_err(|e| TrainError::Invalid(format!("supermask: {e}")))
}

/// Trains replicate `replicate` of `run` in `dir`: the scores of a supermask over the frozen
/// weights of the replicate's W0, resumable. Returns the summary (test accuracy of the network
/// with the mask in force, a sample for Bernoulli) and the final mask, saved as
/// `mask.safetensors` before the run is marked done.
pub fn train_supermask(
    dir: &RunDir,
    run: &SupermaskRun,
    replicate: u64,
    data: &crate::Data,
    progress: &mut dyn Progress,
) -> Result<(RunSummary, Mask)> {
    let hp = &run.train;
    let mut setup = Setup::new(hp, replicate, data)?;
    let plan = setup.plan(hp);
    let mut hook = LearnedMask::new(
        &run.supermask,
        &hp.training,
        &setup.model,
        setup.schedule.clone(),
        hp.init_seed(replicate),
    )?;
    // The first forward pass's mask; a resumed or finished run loads its own kernels over it.
    hook.apply(0, &setup.optimizer.weights())?;
    let summary = {
        let mut hooks = Hooks::new(vec![&mut hook])?;
        run_resumable(dir, &mut setup, &plan, &mut hooks, progress)?
    };
    Ok((summary, mask_in(&setup.model)?))
}

/// The test accuracy of replicate `replicate`'s frozen weights (as `run` freezes them) under
/// `mask`, without training: how a random mask with a learned one's per-layer counts is scored.
pub fn evaluate_supermask(
    run: &SupermaskRun,
    replicate: u64,
    data: &crate::Data,
    mask: &Mask,
) -> Result<crate::Evaluation> {
    let setup = Setup::new(&run.train, replicate, data)?;
    let hook = LearnedMask::new(
        &run.supermask,
        &run.train.training,
        &setup.model,
        setup.schedule.clone(),
        run.train.init_seed(replicate),
    )?;
    let frozen = hook.frozen();
    let weights = setup.optimizer.weights();
    for (name, m) in mask.iter() {
        let (Some(w), Some(f)) = (weights.get(name), frozen.get(name)) else {
            return Err(TrainError::Invalid(format!(
                "mask for `{name}`, which is not a prunable kernel of {}",
                run.train.model.model
            )));
        };
        let m = m.to_device(f.device()).to_kind(Kind::Float);
        let _ = tch::no_grad(|| f.mul_out(w, &m));
    }
    crate::evaluate(&setup.model, &data.eval.test)
}

// The method's flags and its place in the registry.

#[cfg(feature = "clap")]
/// Flags of a learned supermask (`lth train --supermask`): the weights stay frozen and only a
/// score per prunable weight trains, with the run's optimiser (`--lr`, `--weight-decay` on the
/// scores, the schedule).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SupermaskFlags {
    /// Learn a supermask: bernoulli (Zhou et al.: a Bernoulli(σ(s)) sample per step,
    /// straight-through) or edge-popup (Ramanujan et al.: each layer's top --keep of |s|).
    #[arg(long, value_name = "METHOD")]
    pub supermask: Option<SupermaskMethod>,
    /// edge-popup: the fraction of each layer's weights kept (default 0.5).
    #[arg(long, value_name = "K")]
    pub keep: Option<f64>,
    /// The frozen weights: init (W0; Bernoulli's default) or signed-constant (sign(W0) × the
    /// layer's init std; edge-popup's default).
    #[arg(long, value_name = "W")]
    pub supermask_weights: Option<FrozenWeights>,
}

#[cfg(feature = "clap")]
impl SupermaskFlags {
    /// The supermask these flags ask for (`None`: none), checked.
    pub fn resolve(&self) -> Result<Option<SupermaskHparams>> {
        let Some(method) = self.supermask else {
            if self.keep.is_some() || self.supermask_weights.is_some() {
                return Err(TrainError::Invalid(
                    "--keep and --supermask-weights need --supermask bernoulli|edge-popup".into(),
                ));
            }
            return Ok(None);
        };
        let mut hp = SupermaskHparams::new(method);
        if self.keep.is_some() {
            hp.keep = self.keep;
        }
        set(&mut hp.weights, self.supermask_weights);
        hp.validate()?;
        Ok(Some(hp))
    }
}

#[cfg(feature = "clap")]
impl crate::method::MethodFlags for SupermaskFlags {
    fn asked(&self) -> Option<String> {
        self.supermask.map(|m| format!("--supermask {m}"))
    }

    fn method(
        &self,
        _shared: crate::method::Shared,
        hp: &TrainHparams,
    ) -> Result<Option<Box<dyn Method>>> {
        Ok(self.resolve()?.map(|supermask| {
            Box::new(SupermaskRun {
                train: hp.clone(),
                supermask,
            }) as Box<dyn Method>
        }))
    }
}

impl Method for SupermaskRun {
    fn flag(&self) -> String {
        format!("--supermask {}", self.supermask.method)
    }

    fn kind(&self) -> RunKind {
        RunKind::Supermask
    }

    fn train_hparams(&self) -> &TrainHparams {
        &self.train
    }

    fn describe(&self) -> String {
        let sm = &self.supermask;
        let keep = sm
            .keep
            .map_or(String::new(), |k| format!(", keeping {k} of each layer"));
        format!(
            ", learning a {} supermask over frozen {} weights{keep}",
            sm.method, sm.weights
        )
    }

    fn train(
        &self,
        dir: &RunDir,
        replicate: u64,
        data: &crate::Data,
        progress: &mut dyn Progress,
    ) -> Result<(RunSummary, Option<Mask>)> {
        train_supermask(dir, self, replicate, data, progress).map(|(s, m)| (s, Some(m)))
    }

    fn report(&self, dir: &RunDir, _summary: &RunSummary) -> Vec<String> {
        let Ok(mask) = Mask::load(&dir.join(lth_prune::MASK_FILE)) else {
            return Vec::new();
        };
        vec![
            format!(
                "  learned supermask: {} of {} prunable weights kept ({:.2}%); the weights never \
                 trained",
                mask.kept(),
                mask.total(),
                100.0 * mask.density()
            ),
            "  files: mask.safetensors (the final mask; final.safetensors holds w ⊙ m)".into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_top_k_selects_what_a_sort_selects() {
        tch::manual_seed(11);
        for (n, keep) in [
            (10, 1),
            (10, 9),
            (1000, 500),
            (235_200, 117_600),
            (4_097, 3),
        ] {
            for scale in [1e-6, 1.0, 3e4] {
                let s = Tensor::randn([n], (Kind::Float, Device::Cpu)) * scale;
                let m = top_k(&s, keep);
                assert_eq!(
                    m.sum(Kind::Int64).int64_value(&[]),
                    keep,
                    "n {n} keep {keep}"
                );
                let (_, idx) = s.abs().topk(keep, 0, true, false);
                let expected = s.zeros_like().to_kind(Kind::Bool).index_fill(0, &idx, 1);
                assert!(m.equal(&expected), "n {n} keep {keep} scale {scale}");
            }
        }
        let s = Tensor::from_slice(&[0.5f32, -2.0, 0.0, 1.0]);
        assert!(top_k(&s, 4).all().int64_value(&[]) == 1);
        assert_eq!(
            Vec::<bool>::try_from(top_k(&s, 2)).unwrap(),
            [false, true, false, true]
        );
    }
}
