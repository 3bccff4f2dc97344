//! SGD and Adam over a model's parameters held in one flat buffer, with state that is saved and
//! restored exactly.
//!
//! libtorch's C++ optimisers keep their state out of reach of the Rust API, so a run could not
//! resume bit-for-bit; these follow PyTorch's formulations (`torch.optim.SGD` with dampening 0,
//! `torch.optim.Adam` without amsgrad) and expose every buffer under a per-parameter name.
//!
//! Every trainable parameter is re-pointed to a view of one flat buffer (with its own strides, so
//! channels-last kernels stay channels-last), and after the first backward pass every gradient to a
//! view of a second one, into which autograd then accumulates in place. An update is then a
//! handful of element-wise operations over the whole model, whatever its number of parameters (as
//! PyTorch's multi-tensor `foreach` optimisers do), which matters on a GPU where each operation is
//! a kernel launch. The arithmetic per element is the same as parameter by parameter.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use lth_models::{Model, Named};
use lth_prune::Mask;

use crate::{OptimizerKind, Result, TrainError, TrainingHparams};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// One parameter: its variable (a view of the flat buffer) and where it sits there.
#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    offset: i64,
}

impl Param {
    /// The view of a flat buffer that has this parameter's shape and layout.
    fn view(&self, flat: &Tensor) -> Tensor {
        flat.as_strided(self.tensor.size(), self.tensor.stride(), self.offset)
    }
}

/// An optimiser bound to a model's trainable parameters.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    /// Optimiser steps taken since creation (Adam's bias correction counts them).
    steps: i64,
    params: Vec<Param>,
    /// The parameters' values; the model's variables are views of it.
    flat: Tensor,
    /// The gradients, once bound after the first backward pass.
    grads: Option<Tensor>,
    /// SGD: `momentum_buffer` (when momentum > 0). Adam: `exp_avg`, `exp_avg_sq`. Flat.
    buffers: Vec<(&'static str, Tensor)>,
    /// The mask, and its flat float form (1 where a weight is kept or not masked, 0 where
    /// pruned). `None` without pruning.
    mask: Option<(Mask, Tensor)>,
    /// The update's temporaries, flat.
    scratch: Tensor,
    /// Whether [`Optimizer::step`] runs as one fused pass (`lth_kernels::sgd_step`,
    /// `lth_kernels::adam_step`) rather than as a chain of libtorch operations: on the CPU, where
    /// the kernel gives the chain's bits (see [`Optimizer::set_fused`]).
    fused: bool,
}

/// Whether `kind`'s step on `device` has a fused kernel that gives the chain's bits.
fn fusable(kind: OptimizerKind, device: Device) -> bool {
    device == Device::Cpu
        && match kind {
            OptimizerKind::Sgd => true,
            OptimizerKind::Adam => lth_kernels::adam_available(),
        }
}

/// Prefix of the mask's entries in [`Optimizer::state`].
const MASK_PREFIX: &str = "optimizer.mask.";

/// Whether `t` covers exactly `numel` consecutive elements of its storage (contiguous, or
/// contiguous in another dimension order such as channels-last).
fn dense(t: &Tensor) -> bool {
    let mut dims: Vec<(i64, i64)> = t.size().into_iter().zip(t.stride()).collect();
    dims.sort_by_key(|&(_, stride)| stride);
    let mut expected = 1;
    for (size, stride) in dims {
        if size != 1 && stride != expected {
            return false;
        }
        expected *= size;
    }
    true
}

impl Optimizer {
    /// A fresh optimiser (zero buffers) for the trainable parameters of `model`, which it
    /// re-points to views of its flat buffer (values unchanged).
    pub fn new(hp: &TrainingHparams, model: &Model) -> Optimizer {
        Optimizer::over(hp, model.parameters(), model.device())
    }

    /// A fresh optimiser over any named tensors on `device` (a method's own trainable tensors,
    /// such as the scores of a learned supermask), re-pointed to views of its flat buffer.
    pub fn over(hp: &TrainingHparams, tensors: Vec<(String, Tensor)>, device: Device) -> Optimizer {
        let names: &[&'static str] = match (hp.optimizer, hp.momentum > 0.0) {
            (OptimizerKind::Sgd, false) => &[],
            (OptimizerKind::Sgd, true) => &["momentum_buffer"],
            (OptimizerKind::Adam, _) => &["exp_avg", "exp_avg_sq"],
        };
        let mut offset = 0;
        let mut params = Vec::new();
        for (name, tensor) in tensors {
            assert!(dense(&tensor), "parameter {name} is not densely laid out");
            let n = tensor.numel() as i64;
            params.push(Param {
                name,
                tensor,
                offset,
            });
            offset += n;
        }
        let flat = Tensor::zeros([offset], (Kind::Float, device));
        tch::no_grad(|| {
            for p in &mut params {
                let view = p.view(&flat);
                let mut view_mut = view.shallow_clone();
                view_mut.copy_(&p.tensor);
                p.tensor.set_data(&view);
            }
        });
        Optimizer {
            kind: hp.optimizer,
            momentum: hp.momentum,
            nesterov: hp.nesterov,
            weight_decay: hp.weight_decay,
            steps: 0,
            buffers: names.iter().map(|b| (*b, flat.zeros_like())).collect(),
            params,
            scratch: flat.zeros_like(),
            fused: fusable(hp.optimizer, device),
            flat,
            grads: None,
            mask: None,
        }
    }

    /// Runs [`Optimizer::step`] as one fused pass (`true`, the default where it is exact: SGD on
    /// the CPU, and Adam on an x86-64 CPU with AVX2 and FMA) or as the chain of libtorch
    /// operations it replaces (`false`). The two give the same bits; tests and `lth bench
    /// --suite loop` compare them. Asking for the fused pass where it would not be exact is an
    /// error.
    pub fn set_fused(&mut self, fused: bool) -> Result<()> {
        if fused && !fusable(self.kind, self.flat.device()) {
            return Err(TrainError::Invalid(format!(
                "the fused {:?} step runs on the CPU only (Adam's on x86-64 with AVX2 and FMA), \
                 not here ({:?})",
                self.kind,
                self.flat.device()
            )));
        }
        self.fused = fused;
        Ok(())
    }

    /// Keeps the pruned weights of `mask` at zero from now on: their gradients are zeroed before
    /// every update (so the update and the buffers never see them) and the weights after it.
    /// Zeroes them now. Every masked name must be a trainable parameter of the same shape. A hook
    /// may call this between steps to change the mask (weights it newly keeps start from their
    /// current value, zero if they were pruned).
    pub fn set_mask(&mut self, mask: &Mask) -> Result<()> {
        let flat = self.flat.ones_like();
        let device = self.flat.device();
        tch::no_grad(|| -> Result<()> {
            for (name, m) in mask.iter() {
                let p = self.params.iter().find(|p| p.name == name).ok_or_else(|| {
                    TrainError::Invalid(format!(
                        "mask for `{name}`, which is not a trainable parameter"
                    ))
                })?;
                if m.size() != p.tensor.size() {
                    return Err(TrainError::Invalid(format!(
                        "mask for `{name}` has shape {:?}, the parameter {:?}",
                        m.size(),
                        p.tensor.size()
                    )));
                }
                p.view(&flat).copy_(m);
            }
            Ok(())
        })?;
        self.mask = Some((mask.to_device(device), flat));
        self.mask_weights();
        Ok(())
    }

    /// The mask in force, on the training device.
    pub fn mask(&self) -> Option<&Mask> {
        self.mask.as_ref().map(|(m, _)| m)
    }

    /// Zeroes the pruned weights (nothing without a mask).
    pub fn mask_weights(&self) {
        if let Some((_, m)) = &self.mask {
            tch::no_grad(|| {
                let _ = self.flat.shallow_clone().g_mul_(m);
            });
        }
    }

    /// The parameters by name (views of the flat buffer: writing them writes the model).
    pub fn weights(&self) -> Named {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.view(&self.flat)))
            .collect()
    }

    /// The flat buffer every parameter is a view of (in the order given at construction, each
    /// parameter's elements in its memory order).
    pub fn values(&self) -> Tensor {
        self.flat.shallow_clone()
    }

    /// The flat gradient buffer, once bound.
    pub fn gradients(&self) -> Option<Tensor> {
        self.grads.as_ref().map(Tensor::shallow_clone)
    }

    /// The dense gradient of `name` from the last backward pass, before masking (during
    /// [`crate::Hook::after_backward`]; the update masks it in place afterwards). `None` before
    /// the first backward pass or for an unknown name.
    pub fn grad(&self, name: &str) -> Option<Tensor> {
        let g = self.grads.as_ref()?;
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.view(g))
    }

    /// Every gradient by name, as [`Optimizer::grad`].
    pub fn grads(&self) -> Named {
        match &self.grads {
            Some(g) => self
                .params
                .iter()
                .map(|p| (p.name.clone(), p.view(g)))
                .collect(),
            None => Named::new(),
        }
    }

    /// Zeroes every state buffer (momentum, Adam's moments) at the entries `entries` keeps, for
    /// the parameters it names: what a method does to weights it has just regrown.
    pub fn reset_state(&mut self, entries: &Mask) -> Result<()> {
        for (name, e) in entries.iter() {
            let p = self.params.iter().find(|p| p.name == name).ok_or_else(|| {
                TrainError::Invalid(format!("cannot reset state of unknown parameter `{name}`"))
            })?;
            let keep = e
                .logical_not()
                .to_device(self.flat.device())
                .to_kind(Kind::Float);
            for (_, buf) in &self.buffers {
                tch::no_grad(|| {
                    let _ = p.view(buf).g_mul_(&keep);
                });
            }
        }
        Ok(())
    }

    /// Clears the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        match &self.grads {
            Some(g) => {
                let _ = g.shallow_clone().zero_();
            }
            None => {
                for p in &mut self.params {
                    p.tensor.zero_grad();
                }
            }
        }
    }

    /// Gradients written by hand rather than by autograd: binds a zero flat gradient buffer (if
    /// none is bound), whose views [`Optimizer::grad`] then returns for writing.
    pub fn bind_zero_grads(&mut self) {
        if self.grads.is_none() {
            self.grads = Some(self.flat.zeros_like());
        }
    }

    /// After the first backward pass, moves the gradients into the flat buffer (see
    /// [`Optimizer::grad`]); does nothing afterwards.
    pub fn bind_grads(&mut self) {
        if self.grads.is_none() {
            self.grads = Some(self.flat_grads());
        }
    }

    /// Moves every defined gradient into a view of one flat buffer; autograd accumulates into the
    /// same tensors from then on. Parameters without a gradient keep a zero segment.
    fn flat_grads(&mut self) -> Tensor {
        let grads = self.flat.zeros_like();
        tch::no_grad(|| {
            for p in &self.params {
                let mut g = p.tensor.grad();
                if g.defined() {
                    let view = p.view(&grads);
                    view.shallow_clone().copy_(&g);
                    g.set_data(&view);
                }
            }
        });
        grads
    }

    /// Updates every parameter from its gradient with learning rate `lr`: the masked gradient
    /// (plus p·wd) is left in the gradient buffer, then the update of PyTorch's SGD or Adam, then
    /// the pruned weights are zeroed. On the CPU one fused pass does it (a dozen passes over the
    /// model as a chain of libtorch operations, a third of a LeNet step at one thread).
    pub fn step(&mut self, lr: f64) {
        self.bind_grads();
        self.steps += 1;
        #[allow(clippy::expect_used, reason = "bound above")]
        let grads = self.grads.as_ref().expect("bound above").shallow_clone();
        if self.fused {
            let flat = lth_kernels::Flat {
                params: &self.flat,
                grads: &grads,
                mask: self.mask.as_ref().map(|(_, m)| m),
            };
            let done = tch::no_grad(|| match self.kind {
                OptimizerKind::Sgd => lth_kernels::sgd_step(
                    &flat,
                    &lth_kernels::Sgd {
                        lr,
                        momentum: self.momentum,
                        weight_decay: self.weight_decay,
                        nesterov: self.nesterov,
                        momentum_buffer: self.buffers.first().map(|(_, b)| b),
                    },
                ),
                OptimizerKind::Adam => {
                    let t = self.steps as i32;
                    lth_kernels::adam_step(
                        &flat,
                        &lth_kernels::Adam {
                            step_size: lr / (1.0 - BETA1.powi(t)),
                            beta1: BETA1,
                            beta2: BETA2,
                            eps: EPS,
                            weight_decay: self.weight_decay,
                            bias2_sqrt: (1.0 - BETA2.powi(t)).sqrt(),
                            exp_avg: &self.buffers[0].1,
                            exp_avg_sq: &self.buffers[1].1,
                            scratch: &self.scratch,
                        },
                    )
                }
            });
            #[allow(
                clippy::expect_used,
                reason = "the buffers are contiguous float CPU tensors of one size by construction, \
                          and `fused` is set only where the kernel runs"
            )]
            done.expect("the fused optimiser step takes the optimiser's own buffers");
            return;
        }
        let t = self.steps as i32;
        let mut p = self.flat.shallow_clone();
        // Every temporary goes into `scratch`: an update allocates nothing of the model's size
        // (on the CPU, a fresh buffer that size costs more in page faults than the arithmetic).
        // Each operation is the one the expression form would run, so the results are the same.
        let scratch = &self.scratch;
        tch::no_grad(|| {
            let mut g = grads;
            if let Some((_, m)) = &self.mask {
                let _ = g.g_mul_(m);
            }
            if self.weight_decay != 0.0 {
                let _ = g.g_add_(&p.mul_scalar_out(scratch, self.weight_decay));
            }
            match self.kind {
                OptimizerKind::Sgd => {
                    let mut update = match self.buffers.first_mut() {
                        Some((_, buf)) => {
                            let _ = buf.g_mul_scalar_(self.momentum).g_add_(&g);
                            if self.nesterov {
                                buf.mul_scalar_out(scratch, self.momentum).g_add_(&g)
                            } else {
                                buf.mul_scalar_out(scratch, 1.0)
                            }
                        }
                        None => g.mul_scalar_out(scratch, 1.0),
                    };
                    let _ = p.g_sub_(&update.g_mul_scalar_(lr));
                }
                OptimizerKind::Adam => {
                    let [(_, m), (_, v)] = &mut self.buffers[..] else {
                        unreachable!("Adam holds two buffers")
                    };
                    let _ = m.lerp_(&g, 1.0 - BETA1);
                    let mut sq = g.mul_out(scratch, &g);
                    let _ = v
                        .g_mul_scalar_(BETA2)
                        .g_add_(&sq.g_mul_scalar_(1.0 - BETA2));
                    let bias1 = 1.0 - BETA1.powi(t);
                    let bias2 = 1.0 - BETA2.powi(t);
                    let mut denom = v.sqrt_out(scratch);
                    let _ = denom.g_div_scalar_(bias2.sqrt()).g_add_scalar_(EPS);
                    let mut step = m.div_out(scratch, scratch);
                    let _ = p.g_sub_(&step.g_mul_scalar_(lr / bias1));
                }
            }
            if let Some((_, m)) = &self.mask {
                let _ = p.g_mul_(m);
            }
        });
    }

    /// One SGD step whose gradient `update` computes inside the update itself (a fused kernel
    /// such as `lth_kernels::score_sgd`), given the flat values and the step's terms; the gradient
    /// buffer is neither read nor written. `None`, without calling `update`, where the optimiser
    /// is not plain SGD (Adam, or a mask in force): the caller then writes the gradients and
    /// calls [`Optimizer::step`].
    pub fn fused_sgd_step<E>(
        &mut self,
        lr: f64,
        update: impl FnOnce(&Tensor, &lth_kernels::Sgd<'_>) -> std::result::Result<(), E>,
    ) -> Option<std::result::Result<(), E>> {
        if self.kind != OptimizerKind::Sgd || self.mask.is_some() {
            return None;
        }
        self.steps += 1;
        let sgd = lth_kernels::Sgd {
            lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
            momentum_buffer: self.buffers.first().map(|(_, b)| b),
        };
        Some(tch::no_grad(|| update(&self.flat, &sgd)))
    }

    /// The optimiser's state as named tensors: `optimizer.<param>.<buffer>`, `optimizer.steps`,
    /// and the mask in force as `optimizer.mask.<param>` (so a run whose mask changes resumes
    /// with the mask it had).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            "optimizer.steps".to_owned(),
            Tensor::from_slice(&[self.steps]),
        )];
        for p in &self.params {
            for (b, t) in &self.buffers {
                out.push((format!("optimizer.{}.{b}", p.name), p.view(t)));
            }
        }
        if let Some((m, _)) = &self.mask {
            out.extend(
                m.iter()
                    .map(|(n, t)| (format!("{MASK_PREFIX}{n}"), t.shallow_clone())),
            );
        }
        out
    }

    /// Restores state written by [`Optimizer::state`]; every buffer must be present. A saved mask
    /// replaces the one in force (checkpoints written before masks were saved keep it).
    pub fn load_state(&mut self, named: &HashMap<String, Tensor>) -> Result<()> {
        let mut saved: Vec<(String, Tensor)> = named
            .iter()
            .filter_map(|(n, t)| Some((n.strip_prefix(MASK_PREFIX)?.to_owned(), t.shallow_clone())))
            .collect();
        if !saved.is_empty() {
            saved.sort_by(|a, b| a.0.cmp(&b.0));
            let mask = Mask::from_named(saved)
                .map_err(|e| TrainError::Invalid(format!("optimizer state: {e}")))?;
            self.set_mask(&mask)?;
        }
        let missing = |n: &str| TrainError::Invalid(format!("optimizer state lacks {n}"));
        let steps = named
            .get("optimizer.steps")
            .ok_or_else(|| missing("optimizer.steps"))?;
        self.steps = steps.to_kind(Kind::Int64).int64_value(&[0]);
        for p in &self.params {
            for (b, t) in &self.buffers {
                let key = format!("optimizer.{}.{b}", p.name);
                let src = named.get(&key).ok_or_else(|| missing(&key))?;
                if src.size() != p.tensor.size() {
                    return Err(TrainError::Invalid(format!(
                        "optimizer state {key} has shape {:?}, expected {:?}",
                        src.size(),
                        p.tensor.size()
                    )));
                }
                tch::no_grad(|| p.view(t).copy_(src));
            }
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A one-parameter "model" is not available without a registry entry, so these tests drive
    /// the update rules through a LeNet and check one coordinate by hand.
    fn model() -> Model {
        Model::new("lenet_2", [1, 1, 2], 2, None, 0, Device::Cpu).unwrap()
    }

    fn check(hp: TrainingHparams, grads: [f64; 2], expect: impl Fn(f64, &[f64]) -> f64) {
        let m = model();
        let mut opt = Optimizer::new(&hp, &m);
        let (_, p) = m
            .parameters()
            .into_iter()
            .find(|(n, _)| n == "fc.bias")
            .unwrap();
        let p0 = p.double_value(&[0]);
        let mut prev = p0;
        for (i, g) in grads.iter().enumerate() {
            opt.zero_grad();
            (&p * *g).sum(Kind::Float).backward();
            opt.step(0.1);
            let got = p.double_value(&[0]);
            let want = expect(p0, &grads[..=i]);
            assert!(
                (got - want).abs() < 1e-6,
                "step {i}: {got} vs {want} (prev {prev})"
            );
            prev = got;
        }
    }

    #[test]
    fn parameters_and_gradients_live_in_the_flat_buffers() {
        let m = model();
        let mut opt = Optimizer::new(&TrainingHparams::default(), &m);
        let x = Tensor::ones([3, 1, 1, 2], (Kind::Float, Device::Cpu));
        for _ in 0..3 {
            opt.zero_grad();
            m.forward_t(&x, true).sum(Kind::Float).backward();
            opt.step(0.1);
        }
        let grads = opt.grads.as_ref().unwrap();
        for p in &opt.params {
            assert_eq!(
                p.tensor.data_ptr(),
                p.view(&opt.flat).data_ptr(),
                "{} moved",
                p.name
            );
            // Autograd accumulated this step's gradient in place, into the flat buffer.
            assert_eq!(
                p.tensor.grad().data_ptr(),
                p.view(grads).data_ptr(),
                "{}",
                p.name
            );
            assert!(p.view(grads).equal(&p.tensor.grad()));
        }
        assert!(grads.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    #[test]
    fn sgd_with_nesterov_momentum_and_decay_follows_pytorch() {
        let hp = TrainingHparams {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.0,
            ..Default::default()
        };
        // buf1 = g1; p1 = p0 − lr(g1 + 0.9 g1). buf2 = 0.9 g1 + g2; p2 = p1 − lr(g2 + 0.9 buf2).
        check(hp, [1.0, 2.0], |p0, g| match g.len() {
            1 => p0 - 0.1 * (g[0] + 0.9 * g[0]),
            _ => p0 - 0.1 * (g[0] + 0.9 * g[0]) - 0.1 * (g[1] + 0.9 * (0.9 * g[0] + g[1])),
        });
    }

    #[test]
    fn adam_first_steps_follow_pytorch() {
        let hp = TrainingHparams {
            optimizer: OptimizerKind::Adam,
            ..Default::default()
        };
        // With bias correction, Adam's first step moves by lr · g / (|g| + ε) ≈ lr · sign(g).
        check(hp, [0.5, -0.5], |p0, g| match g.len() {
            1 => p0 - 0.1,
            _ => {
                let m = 0.1 * 0.9 * 0.5 + 0.1 * -0.5;
                let v = 0.001 * 0.999 * 0.25 + 0.001 * 0.25;
                let (b1, b2) = (1.0 - 0.81, 1.0 - 0.999f64.powi(2));
                p0 - 0.1 - 0.1 * (m / b1) / ((v / b2).sqrt() + 1e-8)
            }
        });
    }

    /// The fused step against the chain it replaces: the same parameters, gradients, buffers and
    /// mask after every step, bit for bit (signed zeros included), for SGD (plain, momentum,
    /// Nesterov with weight decay) and Adam (with and without weight decay), each with and without
    /// a mask, on LeNet-300-100's parameter count (266,610: at two threads two chunks, neither a
    /// multiple of the vector width), on a size just over two chunks' grain and on a size below one
    /// vector, at one and two intra-op threads.
    #[test]
    fn fused_steps_give_the_bits_of_the_chained_operations() {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            assert!(
                lth_kernels::adam_available(),
                "an AVX2 CPU whose libtorch does not run its AVX2 kernels (ATEN_CPU_CAPABILITY?)"
            );
        }
        let bits = |t: &Tensor| t.view_dtype(Kind::Int);
        let recipes = [
            (OptimizerKind::Sgd, 0.0, false, 0.0),
            (OptimizerKind::Sgd, 0.9, false, 0.0),
            (OptimizerKind::Sgd, 0.9, true, 1e-4),
            (OptimizerKind::Adam, 0.0, false, 0.0),
            (OptimizerKind::Adam, 0.0, false, 5e-4),
        ];
        for threads in [1, 2] {
            tch::set_num_threads(threads);
            for n in [266_610, 65_547, 5] {
                for (kind, momentum, nesterov, weight_decay) in recipes {
                    for masked in [false, true] {
                        if kind == OptimizerKind::Adam && !lth_kernels::adam_available() {
                            continue;
                        }
                        let hp = TrainingHparams {
                            optimizer: kind,
                            momentum,
                            nesterov,
                            weight_decay,
                            ..Default::default()
                        };
                        tch::manual_seed(n + 7);
                        let w0 = Tensor::randn([n], (Kind::Float, Device::Cpu));
                        let keep = Tensor::rand([n], (Kind::Float, Device::Cpu)).gt(0.3);
                        let mut opts = [true, false].map(|fused| {
                            let mut o =
                                Optimizer::over(&hp, vec![("w".into(), w0.copy())], Device::Cpu);
                            o.set_fused(fused).unwrap();
                            if masked {
                                let m = Mask::from_named(vec![("w".into(), keep.copy())]).unwrap();
                                o.set_mask(&m).unwrap();
                            }
                            o.bind_zero_grads();
                            o
                        });
                        let what = format!(
                            "{kind:?}, momentum {momentum}, Nesterov {nesterov}, decay \
                             {weight_decay}, mask {masked}, {n} values, {threads} threads"
                        );
                        for step in 0..6 {
                            // Gradients over several scales, with exact zeros.
                            let g = Tensor::randn([n], (Kind::Float, Device::Cpu))
                                * (Tensor::rand([n], (Kind::Float, Device::Cpu)) * 8.0 - 6.0)
                                    .exp2()
                                * Tensor::rand([n], (Kind::Float, Device::Cpu)).gt(0.05);
                            for o in &mut opts {
                                o.grad("w").unwrap().copy_(&g);
                                o.step(0.01 * (step + 1) as f64);
                            }
                            let [a, b] = &opts;
                            let same = |x: &Tensor, y: &Tensor| bits(x).equal(&bits(y));
                            assert!(
                                same(&a.values(), &b.values()),
                                "weights, step {step}: {what}"
                            );
                            assert!(
                                same(&a.gradients().unwrap(), &b.gradients().unwrap()),
                                "gradients, step {step}: {what}"
                            );
                            for ((name, x), (_, y)) in a.state().iter().zip(b.state()) {
                                if x.kind() == Kind::Float {
                                    assert!(same(x, &y), "{name}, step {step}: {what}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
