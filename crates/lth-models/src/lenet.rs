//! LeNet-300-100 and its relatives: fully connected networks for 28×28 images.
//!
//! LeCun et al. (1998); the network of the Lottery Ticket Hypothesis paper (Frankle & Carbin, ICLR
//! 2019) and of "Stabilizing the LTH" Figure 3. Parameter names follow OpenLTH's
//! `mnist_lenet_300_100`: `fc_layers.<i>.{weight,bias}` for the hidden layers, `fc.{weight,bias}`
//! for the output layer.

use tch::Tensor;
use tch::nn;

use crate::{Built, Init, Kernels, Linear, ModelError, Pack, Result, linear};

#[derive(Debug)]
struct Lenet {
    hidden: Vec<Linear>,
    fc: Linear,
    pack: Pack,
}

impl nn::ModuleT for Lenet {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let x = self
            .hidden
            .iter()
            .fold(self.pack.flatten(xs), |x, layer| layer.forward(&x).relu());
        self.fc.forward(&x)
    }
}

/// Parses `lenet_<w1>_<w2>…` into its hidden widths.
pub fn parse(name: &str) -> Option<Vec<i64>> {
    let widths: Option<Vec<i64>> = name
        .strip_prefix("lenet_")?
        .split('_')
        .map(|w| w.parse().ok().filter(|&w| w > 0))
        .collect();
    widths.filter(|w| !w.is_empty())
}

/// The weights of a one-hidden-layer LeNet (`lenet_<width>`) by PyTorch name, as
/// `[W₁, b₁, W₂, b₂]` = `fc_layers.0.{weight,bias}`, `fc.{weight,bias}`: an error names the
/// weight that is missing, or says the network has a second hidden layer. `what` names the use in
/// the error ("greedy forward selection").
pub fn one_hidden_layer(weights: &[(String, Tensor)], what: &str) -> Result<[Tensor; 4]> {
    let mismatch = |problem: String| ModelError::StateMismatch {
        name: "lenet_<width>".into(),
        problem: format!("{what} needs a network with one hidden layer; {problem}"),
    };
    if weights.iter().any(|(n, _)| n.starts_with("fc_layers.1.")) {
        return Err(mismatch("this one has more".into()));
    }
    let get = |name: &str| -> Result<Tensor> {
        weights
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.shallow_clone())
            .ok_or_else(|| mismatch(format!("the weights lack {name}")))
    };
    Ok([
        get("fc_layers.0.weight")?,
        get("fc_layers.0.bias")?,
        get("fc.weight")?,
        get("fc.bias")?,
    ])
}

pub(crate) fn build(
    name: &str,
    p: &nn::Path,
    input: [i64; 3],
    classes: i64,
    pack: Pack,
) -> Result<Built> {
    let widths = parse(name).ok_or_else(|| ModelError::BadName {
        name: name.to_owned(),
        expected: "lenet_<width>_<width>… with positive widths, e.g. lenet_300_100".into(),
    })?;
    let mut fan_in = input.iter().product::<i64>();
    let mut hidden = Vec::new();
    let mut kernels = Kernels::default();
    let layers = p / "fc_layers";
    for (i, &w) in widths.iter().enumerate() {
        hidden.push(linear(&layers / i, fan_in, w, pack));
        kernels.linear(format!("fc_layers.{i}.weight"));
        fan_in = w;
    }
    let fc = linear(p / "fc", fan_in, classes, pack);
    kernels.linear("fc.weight");
    Ok(Built {
        net: Box::new(Lenet { hidden, fc, pack }),
        kernels,
        output: "fc.weight".to_owned(),
        init: Init::KaimingNormal,
        batchnorm: None,
    })
}
