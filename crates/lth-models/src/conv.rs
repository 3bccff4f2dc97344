//! Conv-2, Conv-4 and Conv-6: the VGG-like CIFAR-10 networks of the Lottery Ticket Hypothesis paper.
//!
//! Frankle & Carbin (ICLR 2019), Figure 2: 3×3 convolutions with "same" padding and ReLU, 2×2 max
//! pooling after each pair, then fully connected layers of 256, 256 and the outputs; Gaussian Glorot
//! initialisation. Weights: Conv-2 4,300,992 (the paper: 4.3M), Conv-4 2,425,024 (2.4M), Conv-6
//! 2,261,184 (the paper's table says 1.7M, which no reading of its architecture gives; we follow the
//! architecture). Names: `convs.<i>.{weight,bias}`, `fc_layers.<i>.{weight,bias}`, `fc.{weight,bias}`.

use tch::Tensor;
use tch::nn;

use crate::{
    Built, Conv2d, Init, Kernels, Linear, ModelError, Pack, Result, Window, conv2d, linear,
};

#[derive(Debug)]
struct ConvNet {
    convs: Vec<Conv2d>,
    hidden: Vec<Linear>,
    fc: Linear,
    pack: Pack,
}

impl nn::ModuleT for ConvNet {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for pair in self.convs.chunks(2) {
            for conv in pair {
                x = conv.forward(&x).relu();
            }
            x = x.max_pool2d_default(2);
        }
        let x = self
            .hidden
            .iter()
            .fold(self.pack.flatten(&x), |x, layer| layer.forward(&x).relu());
        self.fc.forward(&x)
    }
}

pub(crate) fn build(
    name: &str,
    p: &nn::Path,
    input: [i64; 3],
    classes: i64,
    pack: Pack,
) -> Result<Built> {
    let filters: &[i64] = match name {
        "conv_2" => &[64, 64],
        "conv_4" => &[64, 64, 128, 128],
        "conv_6" => &[64, 64, 128, 128, 256, 256],
        _ => {
            return Err(ModelError::BadName {
                name: name.to_owned(),
                expected: "conv_2, conv_4 or conv_6".into(),
            });
        }
    };
    let pools = filters.len() as i64 / 2;
    let side = 1 << pools;
    if input[1] % side != 0 || input[2] % side != 0 {
        return Err(ModelError::Incompatible {
            name: name.into(),
            what: format!(
                "{}×{} images (needs sides divisible by {side})",
                input[1], input[2]
            ),
        });
    }
    let mut kernels = Kernels::default();
    let mut c = input[0];
    let convs = filters
        .iter()
        .enumerate()
        .map(|(i, &f)| {
            let conv = conv2d(p / "convs" / i, c, f, Window::same(3), true, pack);
            // Pair j works on maps halved j times by the pooling after each pair.
            let halved = 1 << (i / 2);
            kernels.conv(
                format!("convs.{i}.weight"),
                [input[1] / halved, input[2] / halved],
            );
            c = f;
            conv
        })
        .collect();
    let mut fan_in = c * (input[1] / side) * (input[2] / side);
    let hidden = (0..2)
        .map(|i| {
            let l = linear(p / "fc_layers" / i, fan_in, 256, pack);
            kernels.linear(format!("fc_layers.{i}.weight"));
            fan_in = 256;
            l
        })
        .collect();
    let fc = linear(p / "fc", fan_in, classes, pack);
    kernels.linear("fc.weight");
    Ok(Built {
        net: Box::new(ConvNet {
            convs,
            hidden,
            fc,
            pack,
        }),
        kernels,
        output: "fc.weight".into(),
        init: Init::GlorotNormal,
        batchnorm: None,
    })
}
