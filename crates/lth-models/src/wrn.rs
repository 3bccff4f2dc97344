//! Wide residual networks for CIFAR (Zagoruyko & Komodakis, 2016): `cifar_wrn_D_K`, the network of
//! the rigl authors' CIFAR-10 numbers (WRN-22-2).
//!
//! A 3×3 convolution of 16 filters, three groups of n = (D − 4)/6 pre-activation basic blocks with
//! 16K, 32K and 64K filters (BN-ReLU-conv3×3-BN-ReLU-conv3×3; the first block of groups 2 and 3
//! downsamples by 2; a block that changes the width has a 1×1 convolution shortcut, taken from the
//! pre-activated input), a final BN-ReLU, global average pooling and one linear layer. Names are
//! those of the common PyTorch port (xternalz/WideResNet-pytorch): `conv1`,
//! `block<g>.layer.<i>.{bn1,conv1,bn2,conv2,convShortcut}`, `bn1`, `fc`. WRN-22-2 has 1,079,642
//! parameters for 10 classes (convolutions without bias).

use tch::Tensor;
use tch::nn::{self, ModuleT};

use crate::resnet::{ConvShape, conv};
use crate::{BatchNorm, BnControl, Conv2d, Linear, Pack, batch_norm, linear};
use crate::{Built, Init, Kernels, ModelError, Result};

#[derive(Debug)]
struct Block {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let pre = self.bn1.forward_t(x, train).relu();
        let out = self.bn2.forward_t(&self.conv1.forward(&pre), train).relu();
        let out = self.conv2.forward(&out);
        match &self.shortcut {
            // A width change: the shortcut sees the pre-activated input.
            Some(s) => s.forward(&pre) + out,
            None => x + out,
        }
    }
}

#[derive(Debug)]
struct Wrn {
    conv1: Conv2d,
    blocks: Vec<Block>,
    bn1: BatchNorm,
    fc: Linear,
    pack: Pack,
}

impl ModuleT for Wrn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = self.conv1.forward(xs);
        for b in &self.blocks {
            x = b.forward_t(&x, train);
        }
        let x = self.bn1.forward_t(&x, train).relu();
        let x = self.pack.flatten(&x.adaptive_avg_pool2d([1, 1]));
        self.fc.forward(&x)
    }
}

/// Parses `cifar_wrn_D_K` into (blocks per group, widening factor K).
pub fn parse(name: &str) -> Option<(i64, i64)> {
    let mut parts = name.strip_prefix("cifar_wrn_")?.split('_');
    let depth: i64 = parts.next()?.parse().ok()?;
    let k: i64 = parts.next()?.parse().ok().filter(|&k| k > 0)?;
    if parts.next().is_some() || depth <= 4 || (depth - 4) % 6 != 0 {
        return None;
    }
    Some(((depth - 4) / 6, k))
}

pub(crate) fn build(
    name: &str,
    p: &nn::Path,
    input: [i64; 3],
    classes: i64,
    pack: Pack,
) -> Result<Built> {
    let (n, k) = parse(name).ok_or_else(|| ModelError::BadName {
        name: name.into(),
        expected: "cifar_wrn_D_K with D = 6n + 4 (16, 22, 28, 40) and K > 0 (WRN-22-2: \
                   cifar_wrn_22_2)"
            .into(),
    })?;
    let control = BnControl::default();
    let mut kernels = Kernels::default();
    let shape = |c_in, c_out, k, stride| ConvShape {
        c_in,
        c_out,
        k,
        stride,
    };
    let (conv1, mut side) = conv(
        p / "conv1",
        shape(input[0], 16, 3, 1),
        [input[1], input[2]],
        &mut kernels,
        pack,
    );
    let mut blocks = Vec::new();
    let mut c = 16;
    for (g, filters) in [16 * k, 32 * k, 64 * k].into_iter().enumerate() {
        for i in 0..n {
            let at = p / format!("block{}", g + 1) / "layer" / i;
            let stride = if g > 0 && i == 0 { 2 } else { 1 };
            let bn1 = batch_norm(&at / "bn1", c, &control, pack);
            let (conv1, out) = conv(
                &at / "conv1",
                shape(c, filters, 3, stride),
                side,
                &mut kernels,
                pack,
            );
            let bn2 = batch_norm(&at / "bn2", filters, &control, pack);
            let (conv2, _) = conv(
                &at / "conv2",
                shape(filters, filters, 3, 1),
                out,
                &mut kernels,
                pack,
            );
            let shortcut = (c != filters).then(|| {
                conv(
                    &at / "convShortcut",
                    shape(c, filters, 1, stride),
                    side,
                    &mut kernels,
                    pack,
                )
                .0
            });
            blocks.push(Block {
                bn1,
                conv1,
                bn2,
                conv2,
                shortcut,
            });
            c = filters;
            side = out;
        }
    }
    let bn1 = batch_norm(p / "bn1", c, &control, pack);
    let fc = linear(p / "fc", c, classes, pack);
    kernels.linear("fc.weight");
    Ok(Built {
        net: Box::new(Wrn {
            conv1,
            blocks,
            bn1,
            fc,
            pack,
        }),
        kernels,
        output: "fc.weight".into(),
        init: Init::KaimingNormal,
        batchnorm: Some(control),
    })
}
