//! The layers every family is built from, for one network or for N copies of it packed into one.
//!
//! Packing (HFTA, Wang et al., MLSys 2021; docs/METHODS.md §8) trains N same-shape networks
//! in one step: each variable gains a leading dimension of N copies (copy i's slice has the plain
//! network's shape and name), and the operations act on all copies at once:
//! - a linear layer is a batched matrix product over activations laid out `[N, B, features]`;
//! - a convolution is a grouped convolution (N groups) over activations laid out
//!   `[B, N·C, H, W]`, copy i's channels at `i·C..(i+1)·C`;
//! - BatchNorm normalises the N·C channels, which are each copy's own, with per-copy statistics;
//! - element-wise operations, pooling and residual sums need nothing: they act per channel.
//!
//! With one copy ([`Pack::ONE`]) the layers are exactly PyTorch's (the same variables, shapes and
//! operations as `tch::nn`'s), so a plain model is what it always was.

use tch::Tensor;
use tch::nn::{self, Init};

use crate::BnControl;
use crate::norm::EPS;

/// How many copies a network's variables and activations hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pack(pub i64);

impl Pack {
    /// A plain network.
    pub const ONE: Pack = Pack(1);

    /// The number of copies.
    pub fn copies(self) -> i64 {
        self.0
    }

    /// Whether the variables carry a leading copy dimension.
    pub fn packed(self) -> bool {
        self.0 > 1
    }

    /// `shape` with the copy dimension in front when packed.
    pub fn shape(self, shape: &[i64]) -> Vec<i64> {
        if self.packed() {
            std::iter::once(self.0)
                .chain(shape.iter().copied())
                .collect()
        } else {
            shape.to_vec()
        }
    }

    /// Images `[N, B, C, H, W]` (packed) or `[B, C, H, W]` (one copy) in the layout of a network's
    /// first layer: `[B, N·C, H, W]`.
    pub fn input(self, xs: &Tensor) -> Tensor {
        if self.packed() {
            let s = xs.size();
            xs.transpose(0, 1).reshape([s[1], s[0] * s[2], s[3], s[4]])
        } else {
            xs.shallow_clone()
        }
    }

    /// Maps `[B, N·C, H, W]` (or any `[B, N·F…]`) to the features of a linear layer: `[N, B, C·H·W]`
    /// packed, `[B, C·H·W]` for one copy (`flatten(1, -1)`).
    pub fn flatten(self, xs: &Tensor) -> Tensor {
        if self.packed() {
            let b = xs.size()[0];
            xs.reshape([b, self.0, -1]).transpose(0, 1)
        } else {
            xs.flatten(1, -1)
        }
    }
}

/// A linear layer, `weight` `[out, in]` and `bias` `[out]` (PyTorch's defaults: bias
/// U(±1/√in), kernel Kaiming-uniform; `Model::new` redraws both from seeded streams).
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pack: Pack,
}

/// A linear layer at `p` from `input` to `output` features, with a bias. Its variables start at
/// zero: construction only lays a network out, and [`crate::Model::new`] draws every trainable
/// variable from its own seeded stream (a draw here from libtorch's generator would be thrown
/// away, and building a network only to read its outline cost seconds for ResNet-50).
pub fn linear(p: nn::Path, input: i64, output: i64, pack: Pack) -> Linear {
    Linear {
        weight: p.var("weight", &pack.shape(&[output, input]), UNDRAWN),
        bias: Some(p.var("bias", &pack.shape(&[output]), UNDRAWN)),
        pack,
    }
}

/// The value weights and biases are built with, before [`crate::Model::new`] draws them.
const UNDRAWN: Init = Init::Const(0.0);

impl Linear {
    /// `[B, in]` → `[B, out]`; packed, `[N, B, in]` → `[N, B, out]`.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        if self.pack.packed() {
            let wt = self.weight.transpose(1, 2);
            match &self.bias {
                Some(b) => b.unsqueeze(1).baddbmm(xs, &wt, 1.0, 1.0),
                None => xs.bmm(&wt),
            }
        } else {
            xs.linear(&self.weight, self.bias.as_ref())
        }
    }
}

/// A 2-D convolution, `weight` `[out, in, k, k]`, optional `bias` `[out]`.
#[derive(Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    stride: i64,
    padding: i64,
    pack: Pack,
}

/// A square kernel's side, stride and zero padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub k: i64,
    pub stride: i64,
    pub padding: i64,
}

impl Window {
    /// A `k`×`k` kernel of stride 1 with "same" padding (k / 2).
    pub fn same(k: i64) -> Window {
        Window {
            k,
            stride: 1,
            padding: k / 2,
        }
    }
}

/// A convolution at `p` from `input` to `output` channels over `window`, with a bias or not; its
/// variables start at zero, as [`linear`]'s do.
pub fn conv2d(
    p: nn::Path,
    input: i64,
    output: i64,
    window: Window,
    bias: bool,
    pack: Pack,
) -> Conv2d {
    let Window { k, stride, padding } = window;
    Conv2d {
        weight: p.var("weight", &pack.shape(&[output, input, k, k]), UNDRAWN),
        bias: bias.then(|| p.var("bias", &pack.shape(&[output]), UNDRAWN)),
        stride,
        padding,
        pack,
    }
}

impl Conv2d {
    /// `[B, N·in, H, W]` → `[B, N·out, H', W']` (N = 1 for one copy).
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let (w, b) = if self.pack.packed() {
            (
                self.weight.flatten(0, 1),
                self.bias.as_ref().map(|b| b.flatten(0, 1)),
            )
        } else {
            (
                self.weight.shallow_clone(),
                self.bias.as_ref().map(Tensor::shallow_clone),
            )
        };
        xs.conv2d(
            &w,
            b.as_ref(),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.pack.copies(),
        )
    }
}

/// A BatchNorm layer: `weight` (γ), `bias` (β), and the buffers `running_mean`, `running_var`,
/// each `[C]` (packed: `[N, C]`, normalised as N·C channels).
#[derive(Debug)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    control: BnControl,
    pack: Pack,
}

/// A BatchNorm layer over `channels` channels at path `p`, sharing `control`.
pub fn batch_norm(p: nn::Path, channels: i64, control: &BnControl, pack: Pack) -> BatchNorm {
    let shape = pack.shape(&[channels]);
    BatchNorm {
        weight: p.var("weight", &shape, Init::Const(1.0)),
        bias: p.var("bias", &shape, Init::Const(0.0)),
        running_mean: p.zeros_no_train("running_mean", &shape),
        running_var: p.ones_no_train("running_var", &shape),
        control: control.clone(),
        pack,
    }
}

impl nn::ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // Flattening a contiguous [N, C] is a view: the running statistics update in place.
        let flat = |t: &Tensor| {
            if self.pack.packed() {
                t.flatten(0, 1)
            } else {
                t.shallow_clone()
            }
        };
        xs.batch_norm(
            Some(&flat(&self.weight)),
            Some(&flat(&self.bias)),
            Some(&flat(&self.running_mean)),
            Some(&flat(&self.running_var)),
            train,
            self.control.momentum(),
            EPS,
            true,
        )
    }
}
