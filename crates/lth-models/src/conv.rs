//! Conv-2, Conv-4 and Conv-6: the VGG-like CIFAR-10 networks of the Lottery Ticket Hypothesis paper.
//!
//! Frankle & Carbin (ICLR 2019), Figure 2: 3×3 convolutions with "same" padding and ReLU, 2×2 max
//! pooling after each pair, then fully connected layers of 256, 256 and the outputs; Gaussian Glorot
//! initialisation. Weights: Conv-2 4,300,992 (the paper: 4.3M), Conv-4 2,425,024 (2.4M), Conv-6
//! 2,261,184 (the paper's table says 1.7M, which no reading of its architecture gives; we follow the
//! architecture). Names: `convs.<i>.{weight,bias}`, `fc_layers.<i>.{weight,bias}`, `fc.{weight,bias}`.

use tch::Tensor;
use tch::nn::{self, Module};

use crate::{Built, Init, Kernels, ModelError, Result};

#[derive(Debug)]
struct ConvNet {
    convs: Vec<nn::Conv2D>,
    hidden: Vec<nn::Linear>,
    fc: nn::Linear,
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
            .fold(x.flatten(1, -1), |x, layer| layer.forward(&x).relu());
        self.fc.forward(&x)
    }
}

pub(crate) fn build(name: &str, p: &nn::Path, input: [i64; 3], classes: i64) -> Result<Built> {
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
    let cfg = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let mut kernels = Kernels::default();
    let mut c = input[0];
    let convs = filters
        .iter()
        .enumerate()
        .map(|(i, &f)| {
            let conv = nn::conv2d(p / "convs" / i, c, f, 3, cfg);
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
            let l = nn::linear(p / "fc_layers" / i, fan_in, 256, Default::default());
            kernels.linear(format!("fc_layers.{i}.weight"));
            fan_in = 256;
            l
        })
        .collect();
    let fc = nn::linear(p / "fc", fan_in, classes, Default::default());
    kernels.linear("fc.weight");
    Ok(Built {
        net: Box::new(ConvNet { convs, hidden, fc }),
        kernels,
        output: "fc.weight".into(),
        init: Init::GlorotNormal,
        batchnorm: None,
    })
}
