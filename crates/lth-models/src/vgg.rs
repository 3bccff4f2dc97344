//! VGG-11/13/16/19 with BatchNorm for CIFAR, as OpenLTH's `cifar_vgg_<n>` (after Simonyan &
//! Zisserman 2015): 3×3 convolutions with bias, BatchNorm and ReLU, 2×2 max pooling between stages,
//! 2×2 average pooling at the end, one linear output layer of 512 inputs. It also takes 28×28
//! images (Fashion-MNIST), whose last map is already 1×1. Names:
//! `layers.<i>.conv.{weight,bias}`, `layers.<i>.bn.*` (i counts pooling layers too, as PyTorch's
//! `Sequential` does), `fc.{weight,bias}`. VGG-19 has 20,040,522 parameters, 20,024,000 prunable.

use tch::Tensor;
use tch::nn::{self, ModuleT};

use crate::{
    BatchNorm, BnControl, Built, Conv2d, Init, Kernels, Linear, ModelError, Pack, Result, Window,
    batch_norm, conv2d, linear,
};

#[derive(Debug)]
enum Layer {
    Conv(Conv2d, BatchNorm),
    Pool,
}

#[derive(Debug)]
struct Vgg {
    layers: Vec<Layer>,
    fc: Linear,
    pack: Pack,
}

impl ModuleT for Vgg {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for layer in &self.layers {
            x = match layer {
                Layer::Conv(conv, bn) => bn.forward_t(&conv.forward(&x), train).relu(),
                Layer::Pool => x.max_pool2d_default(2),
            };
        }
        // 32×32 inputs end at 2×2 (pooled to 1×1, as OpenLTH); 28×28 ones already at 1×1.
        let x = if x.size()[2] >= 2 {
            x.avg_pool2d_default(2)
        } else {
            x
        };
        self.fc.forward(&self.pack.flatten(&x))
    }
}

/// The layer plan of VGG-`depth` (`0` marks a max-pooling layer).
fn plan(depth: u32) -> Option<&'static [i64]> {
    Some(match depth {
        11 => &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512],
        13 => &[64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512],
        16 => &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512,
        ],
        19 => &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512,
            512,
        ],
        _ => return None,
    })
}

pub(crate) fn build(
    name: &str,
    p: &nn::Path,
    input: [i64; 3],
    classes: i64,
    pack: Pack,
) -> Result<Built> {
    let (base, widths) = crate::built::split_channels(name)?;
    let depth = base.strip_prefix("cifar_vgg_").and_then(|d| d.parse().ok());
    let plan = depth.and_then(plan).ok_or_else(|| ModelError::BadName {
        name: name.into(),
        expected: "cifar_vgg_11, cifar_vgg_13, cifar_vgg_16 or cifar_vgg_19 (narrowed: \
                   cifar_vgg_16:channels=<one width per convolution>)"
            .into(),
    })?;
    // A narrow member (crate::slim) replaces each convolution's width.
    let mut plan = plan.to_vec();
    if let Some(w) = widths {
        let convs = plan.iter().filter(|&&f| f != 0).count();
        crate::built::check_count(name, &w, convs, "convolution")?;
        let mut w = w.into_iter();
        for f in plan.iter_mut().filter(|f| **f != 0) {
            *f = w.next().unwrap_or(*f);
        }
    }
    // The output layer sees one position per channel: the maps must end at 2×2 (pooled) or 1×1.
    let pools = plan.iter().filter(|&&f| f == 0).count() as u32;
    let end = |side: i64| side / 2i64.pow(pools);
    if input[1] != input[2] || !(1..=2).contains(&end(input[1])) || ![28, 32].contains(&input[1]) {
        return Err(ModelError::Incompatible {
            name: name.into(),
            what: format!(
                "{}×{} images (CIFAR VGG takes 32×32, or 28×28 where the last map is 1×1)",
                input[1], input[2]
            ),
        });
    }
    let control = BnControl::default();
    let mut kernels = Kernels::default();
    let mut c = input[0];
    let mut side = [input[1], input[2]];
    let layers = plan
        .iter()
        .enumerate()
        .map(|(i, &f)| {
            if f == 0 {
                side = side.map(|s| s / 2);
                return Layer::Pool;
            }
            let at = p / "layers" / i;
            let conv = conv2d(&at / "conv", c, f, Window::same(3), true, pack);
            kernels.conv(format!("layers.{i}.conv.weight"), side);
            c = f;
            Layer::Conv(conv, batch_norm(&at / "bn", f, &control, pack))
        })
        .collect();
    let fc = linear(p / "fc", c, classes, pack);
    kernels.linear("fc.weight");
    Ok(Built {
        net: Box::new(Vgg { layers, fc, pack }),
        kernels,
        output: "fc.weight".into(),
        init: Init::KaimingNormal,
        batchnorm: Some(control),
    })
}
