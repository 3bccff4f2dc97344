//! Residual networks: the CIFAR ResNet-D of He et al. (2016) as OpenLTH's `cifar_resnet_D[_W]`, and
//! the ImageNet ResNet-18/34/50 as torchvision's `resnet18/34/50`.
//!
//! CIFAR: a 3×3 convolution of W filters, three stages of n = (D − 2)/6 basic blocks with W, 2W and
//! 4W filters (the first block of stages 2 and 3 downsamples by 2, with a 1×1 convolution + BatchNorm
//! shortcut), global average pooling, one linear layer. Names: `conv`, `bn`,
//! `blocks.<i>.{conv1,bn1,conv2,bn2}`, `blocks.<i>.shortcut.{0,1}`, `fc`. ResNet-20 (W = 16) has
//! 272,474 parameters, 270,896 prunable.
//!
//! ImageNet: torchvision's layout (ResNet v1.5: the stride of a bottleneck sits on its 3×3
//! convolution). Names: `conv1`, `bn1`, `layer<s>.<b>.{conv1,bn1,conv2,bn2[,conv3,bn3]}`,
//! `layer<s>.<b>.downsample.{0,1}`, `fc`. ResNet-18 has 11,689,512 parameters, ResNet-50
//! 25,557,032 (25,502,912 prunable).

use tch::Tensor;
use tch::nn::{self, ModuleT};

use crate::{BatchNorm, BnControl, Conv2d, Linear, Pack, Window, batch_norm, conv2d, linear};
use crate::{Built, Init, Kernels, ModelError, Result, conv_output};

/// Where a convolution sits: its input and output channels, kernel side and stride.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvShape {
    pub c_in: i64,
    pub c_out: i64,
    pub k: i64,
    pub stride: i64,
}

/// A bias-free convolution with "same" padding over maps of side `side`, its kernel registered
/// as prunable (by PyTorch name, with its output positions); the unit of the residual families
/// (ResNet, Wide ResNet). Returns the convolution and its output side.
pub(crate) fn conv(
    p: nn::Path,
    shape: ConvShape,
    side: [i64; 2],
    kernels: &mut Kernels,
    pack: Pack,
) -> (Conv2d, [i64; 2]) {
    let ConvShape {
        c_in,
        c_out,
        k,
        stride,
    } = shape;
    let name = format!("{}.weight", p.components().collect::<Vec<_>>().join("."));
    let out = conv_output(side, k, stride, k / 2);
    kernels.conv(name, out);
    let conv = conv2d(
        p,
        c_in,
        c_out,
        Window {
            k,
            stride,
            padding: k / 2,
        },
        false,
        pack,
    );
    (conv, out)
}

/// A convolution followed by BatchNorm (the unit every residual block is made of).
#[derive(Debug)]
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
}

/// A conv-BN unit over maps of side `side` (the convolution at `at`, its BatchNorm at `bn`), and
/// its output side.
fn conv_bn(
    at: nn::Path,
    bn: nn::Path,
    shape: ConvShape,
    side: [i64; 2],
    kernels: &mut Kernels,
    control: &BnControl,
    pack: Pack,
) -> (ConvBn, [i64; 2]) {
    let c_out = shape.c_out;
    let (conv, out) = conv(at, shape, side, kernels, pack);
    let bn = batch_norm(bn, c_out, control, pack);
    (ConvBn { conv, bn }, out)
}

impl ConvBn {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&self.conv.forward(x), train)
    }
}

/// Two or three conv-BN units with a shortcut: basic blocks (3×3, 3×3) and bottlenecks (1×1, 3×3,
/// 1×1); the shortcut is the identity or a 1×1 conv-BN.
#[derive(Debug)]
struct Block {
    units: Vec<ConvBn>,
    shortcut: Option<ConvBn>,
}

impl Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.units.len() - 1;
        let mut out = x.shallow_clone();
        for (i, u) in self.units.iter().enumerate() {
            out = u.forward_t(&out, train);
            if i < last {
                out = out.relu();
            }
        }
        let skip = match &self.shortcut {
            Some(s) => s.forward_t(x, train),
            None => x.shallow_clone(),
        };
        (out + skip).relu()
    }
}

#[derive(Debug)]
struct ResNet {
    stem: ConvBn,
    /// ImageNet stems add a 3×3 max pool of stride 2.
    stem_pool: bool,
    blocks: Vec<Block>,
    fc: Linear,
    pack: Pack,
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = self.stem.forward_t(xs, train).relu();
        if self.stem_pool {
            x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for b in &self.blocks {
            x = b.forward_t(&x, train);
        }
        let x = self.pack.flatten(&x.adaptive_avg_pool2d([1, 1]));
        self.fc.forward(&x)
    }
}

/// The output layer and the network around the stem and blocks.
#[allow(clippy::too_many_arguments)]
fn finish(
    p: &nn::Path,
    stem: ConvBn,
    stem_pool: bool,
    blocks: Vec<Block>,
    channels: i64,
    classes: i64,
    mut kernels: Kernels,
    control: BnControl,
    pack: Pack,
) -> Built {
    let fc = linear(p / "fc", channels, classes, pack);
    kernels.linear("fc.weight");
    Built {
        net: Box::new(ResNet {
            stem,
            stem_pool,
            blocks,
            fc,
            pack,
        }),
        kernels,
        output: "fc.weight".into(),
        init: Init::KaimingNormal,
        batchnorm: Some(control),
    }
}

/// Parses `cifar_resnet_D[_W]` into (blocks per stage, width).
pub fn parse_cifar(name: &str) -> Option<(i64, i64)> {
    let mut parts = name.strip_prefix("cifar_resnet_")?.split('_');
    let depth: i64 = parts.next()?.parse().ok()?;
    let width: i64 = match parts.next() {
        Some(w) => w.parse().ok().filter(|&w| w > 0)?,
        None => 16,
    };
    if parts.next().is_some() || depth <= 2 || (depth - 2) % 6 != 0 {
        return None;
    }
    Some(((depth - 2) / 6, width))
}

pub(crate) fn build_cifar(
    name: &str,
    p: &nn::Path,
    input: [i64; 3],
    classes: i64,
    pack: Pack,
) -> Result<Built> {
    let (base, inner) = crate::built::split_channels(name)?;
    let (n, w) = parse_cifar(base).ok_or_else(|| ModelError::BadName {
        name: name.into(),
        expected:
            "cifar_resnet_D or cifar_resnet_D_W with D = 6n + 2 (20, 32, 44, 56, 110) and W > 0 \
             (narrowed: cifar_resnet_20:channels=<one inner width per block>)"
                .into(),
    })?;
    // A narrow member (crate::slim) gives each block's inner width (conv1's output).
    if let Some(inner) = &inner {
        crate::built::check_count(name, inner, 3 * n as usize, "block")?;
    }
    let control = BnControl::default();
    let mut kernels = Kernels::default();
    let unit = |at: nn::Path, bn: nn::Path, shape: ConvShape, side, kernels: &mut Kernels| {
        conv_bn(at, bn, shape, side, kernels, &control, pack)
    };
    let (stem, mut side) = unit(
        p / "conv",
        p / "bn",
        ConvShape {
            c_in: input[0],
            c_out: w,
            k: 3,
            stride: 1,
        },
        [input[1], input[2]],
        &mut kernels,
    );
    let mut blocks = Vec::new();
    let mut c = w;
    for (stage, filters) in [w, 2 * w, 4 * w].into_iter().enumerate() {
        for i in 0..n {
            let at = p / "blocks" / blocks.len();
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let width = inner.as_ref().map_or(filters, |inner| inner[blocks.len()]);
            let shape = |c_in, k, stride| ConvShape {
                c_in,
                c_out: filters,
                k,
                stride,
            };
            let (first, out) = unit(
                &at / "conv1",
                &at / "bn1",
                ConvShape {
                    c_out: width,
                    ..shape(c, 3, stride)
                },
                side,
                &mut kernels,
            );
            let (second, _) = unit(
                &at / "conv2",
                &at / "bn2",
                shape(width, 3, 1),
                out,
                &mut kernels,
            );
            let shortcut = (stride != 1 || c != filters).then(|| {
                unit(
                    &at / "shortcut" / 0,
                    &at / "shortcut" / 1,
                    shape(c, 1, 2),
                    side,
                    &mut kernels,
                )
                .0
            });
            blocks.push(Block {
                units: vec![first, second],
                shortcut,
            });
            c = filters;
            side = out;
        }
    }
    Ok(finish(
        p, stem, false, blocks, c, classes, kernels, control, pack,
    ))
}

pub(crate) fn build_imagenet(
    name: &str,
    p: &nn::Path,
    input: [i64; 3],
    classes: i64,
    pack: Pack,
) -> Result<Built> {
    let (stages, bottleneck): (&[i64], bool) = match name {
        "imagenet_resnet_18" => (&[2, 2, 2, 2], false),
        "imagenet_resnet_34" => (&[3, 4, 6, 3], false),
        "imagenet_resnet_50" => (&[3, 4, 6, 3], true),
        _ => {
            return Err(ModelError::BadName {
                name: name.into(),
                expected: "imagenet_resnet_18, imagenet_resnet_34 or imagenet_resnet_50".into(),
            });
        }
    };
    let expansion = if bottleneck { 4 } else { 1 };
    let control = BnControl::default();
    let mut kernels = Kernels::default();
    let unit = |at: nn::Path, bn: nn::Path, shape: ConvShape, side, kernels: &mut Kernels| {
        conv_bn(at, bn, shape, side, kernels, &control, pack)
    };
    let (stem, side) = unit(
        p / "conv1",
        p / "bn1",
        ConvShape {
            c_in: input[0],
            c_out: 64,
            k: 7,
            stride: 2,
        },
        [input[1], input[2]],
        &mut kernels,
    );
    let mut side = conv_output(side, 3, 2, 1);
    let mut blocks = Vec::new();
    let mut c = 64;
    for (s, &count) in stages.iter().enumerate() {
        let width = 64 << s;
        for b in 0..count {
            let at = p / format!("layer{}", s + 1) / b;
            let stride = if s > 0 && b == 0 { 2 } else { 1 };
            let out = width * expansion;
            let shape = |c_in, c_out, k, stride| ConvShape {
                c_in,
                c_out,
                k,
                stride,
            };
            let mut units = Vec::new();
            let mut at_side = side;
            let plan: &[(&str, &str, ConvShape)] = if bottleneck {
                &[
                    ("conv1", "bn1", shape(c, width, 1, 1)),
                    ("conv2", "bn2", shape(width, width, 3, stride)),
                    ("conv3", "bn3", shape(width, out, 1, 1)),
                ]
            } else {
                &[
                    ("conv1", "bn1", shape(c, width, 3, stride)),
                    ("conv2", "bn2", shape(width, width, 3, 1)),
                ]
            };
            for &(name, bn, sh) in plan {
                let (u, o) = unit(&at / name, &at / bn, sh, at_side, &mut kernels);
                units.push(u);
                at_side = o;
            }
            let shortcut = (stride != 1 || c != out).then(|| {
                unit(
                    &at / "downsample" / 0,
                    &at / "downsample" / 1,
                    shape(c, out, 1, stride),
                    side,
                    &mut kernels,
                )
                .0
            });
            blocks.push(Block { units, shortcut });
            c = out;
            side = at_side;
        }
    }
    Ok(finish(
        p, stem, true, blocks, c, classes, kernels, control, pack,
    ))
}
