//! A network together with its variable store, its prunable parameters and its output layer.

use std::collections::{BTreeMap, HashMap};

use tch::{Device, Tensor, nn};

use lth_rng::Stream;

use crate::{BnControl, Init, Kernels, ModelError, Result, family};

/// The prunable kernels of model `name` for images of shape `input` and `classes` outputs, without
/// initialising a model: what a command checks layer names against before it trains.
pub fn kernels(name: &str, input: [i64; 3], classes: i64) -> Result<Kernels> {
    Ok(outline(name, input, classes)?.kernels)
}

/// What checking hyperparameters needs of a network, without its weights: its prunable kernels
/// and the names of its BatchNorm scales.
#[derive(Debug)]
pub struct Outline {
    pub kernels: Kernels,
    /// `<layer>.weight` of every layer with running statistics, sorted (none: no BatchNorm).
    pub batchnorm_scales: Vec<String>,
}

/// The [`Outline`] of network `name` for inputs `input` and `classes` classes (built on the CPU,
/// as [`kernels`] builds it).
pub fn outline(name: &str, input: [i64; 3], classes: i64) -> Result<Outline> {
    let vs = nn::VarStore::new(Device::Cpu);
    let built = (family(name)?.build)(name, &vs.root(), input, classes, crate::Pack::ONE)?;
    Ok(Outline {
        kernels: built.kernels,
        batchnorm_scales: batchnorm_scales(&sorted_state(&vs))
            .into_iter()
            .map(|(n, _)| n)
            .collect(),
    })
}

/// A network with its weights. All weights live in one `VarStore`, under PyTorch names.
#[derive(Debug)]
pub struct Model {
    name: String,
    vs: nn::VarStore,
    net: Box<dyn nn::ModuleT>,
    prunable: Vec<String>,
    positions: Vec<i64>,
    output: String,
    init: Init,
    batchnorm: Option<BnControl>,
    channels_last: bool,
}

/// `t` (N×C×H×W) with channels-last strides (NHWC in memory), as PyTorch's
/// `t.contiguous(memory_format=torch.channels_last)`.
pub fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Examples used to re-estimate BatchNorm statistics, and the batch size of that pass.
const BN_EXAMPLES: i64 = 10_000;
const BN_BATCH: i64 = 500;

impl Model {
    /// Builds `name` for images of shape `input` (C, H, W) and `classes` outputs, initialised
    /// from `seed` (prunable kernels with `init`, or the family's default), on `device`.
    ///
    /// Every trainable variable is drawn on the host from its own `lth-rng` stream, named after the
    /// variable: the result depends only on the seed, the name and the shape, not on the device,
    /// the thread, libtorch's global generator, or which other layers the network has.
    pub fn new(
        name: &str,
        input: [i64; 3],
        classes: i64,
        init: Option<Init>,
        seed: u64,
        device: Device,
    ) -> Result<Model> {
        let fam = family(name)?;
        let mut vs = nn::VarStore::new(Device::Cpu);
        let built = (fam.build)(name, &vs.root(), input, classes, crate::Pack::ONE)?;
        let prunable = built.kernels.names().to_vec();
        let init = init.unwrap_or(built.init);
        let mut vars = vs.variables();
        let shapes: HashMap<String, Vec<i64>> =
            vars.iter().map(|(n, t)| (n.clone(), t.size())).collect();
        let norms: Vec<&str> = vars
            .iter()
            .filter(|(n, t)| is_norm_scale(n, &prunable, t))
            .filter_map(|(n, _)| n.strip_suffix(".weight"))
            .collect();
        let mut fresh: Vec<(String, Tensor)> = Vec::new();
        for (name, shape) in &shapes {
            let numel = shape.iter().product::<i64>() as usize;
            let mut stream = Stream::named(seed, crate::init::INIT, name);
            let owner = name.rsplit_once('.').map_or("", |(prefix, _)| prefix);
            let values = if prunable.contains(name) {
                fresh.push((name.clone(), init.draw(shape, seed, name)));
                continue;
            } else if norms.contains(&owner) && name.ends_with(".weight") {
                stream.uniform(numel, 0.0, 1.0)
            } else if norms.contains(&owner) && name.ends_with(".bias") {
                vec![0.0; numel]
            } else if let Some(kernel) = shapes.get(&format!("{owner}.weight"))
                && name.ends_with(".bias")
            {
                // PyTorch's default bias: U(−1/√fan_in, 1/√fan_in).
                let fan_in = kernel.iter().skip(1).product::<i64>() as f64;
                let bound = 1.0 / fan_in.sqrt();
                stream.uniform(numel, -bound, bound)
            } else {
                // Buffers (running statistics) keep their deterministic construction values.
                continue;
            };
            fresh.push((
                name.clone(),
                Tensor::from_slice(&values).view(shape.as_slice()),
            ));
        }
        tch::no_grad(|| {
            for (name, t) in &fresh {
                #[allow(
                    clippy::expect_used,
                    reason = "the names come from the same variable store"
                )]
                vars.get_mut(name).expect("listed above").copy_(t);
            }
        });
        vs.set_device(device);
        Ok(Model {
            name: name.to_owned(),
            vs,
            net: built.net,
            prunable,
            positions: built.kernels.positions().to_vec(),
            output: built.output,
            init,
            batchnorm: built.batchnorm,
            channels_last: false,
        })
    }

    /// Lays out every 4-D variable (convolution kernels) channels-last, and from now on hands
    /// 4-D inputs to the network channels-last too. Values, names and checkpoints are unchanged.
    pub fn use_channels_last(&mut self) {
        tch::no_grad(|| {
            for (_, mut t) in self.vs.variables() {
                if t.dim() == 4 {
                    t.set_data(&channels_last(&t));
                }
            }
        });
        self.channels_last = true;
    }

    /// Whether the network has BatchNorm layers.
    pub fn has_batchnorm(&self) -> bool {
        self.batchnorm.is_some()
    }

    /// Re-estimates every BatchNorm layer's running statistics from the first 10,000 examples of
    /// `data` (in order, batches of 500), as an exact average over those batches (PyTorch's
    /// `momentum=None`), without touching any parameter. Does nothing for networks without
    /// BatchNorm.
    pub fn recompute_batchnorm(&mut self, data: &lth_data::Source) -> Result<()> {
        let Some(control) = &self.batchnorm else {
            return Ok(());
        };
        let _eval = lth_store::ledger::span(lth_store::ledger::Activity::Evaluation);
        let mut vars = self.vs.variables();
        let result = tch::no_grad(|| -> Result<()> {
            for (name, t) in vars.iter_mut() {
                if name.ends_with(".running_mean") {
                    let _ = t.zero_();
                } else if name.ends_with(".running_var") {
                    let _ = t.fill_(1.0);
                }
            }
            let batches = (BN_EXAMPLES.min(data.len()) + BN_BATCH - 1) / BN_BATCH;
            for (i, b) in data.sequential(BN_BATCH).take(batches as usize).enumerate() {
                let b = b.map_err(|e| ModelError::Data(e.to_string()))?;
                // With momentum 1/(i+1), the running value after batch i is the mean of batches 0..=i.
                control.set_momentum(1.0 / (i as f64 + 1.0));
                let _ = self.net.forward_t(&b.x, true);
            }
            Ok(())
        });
        control.set_momentum(crate::norm::MOMENTUM);
        result
    }

    /// The registry name (`lenet_300_100`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The initialiser the prunable kernels were drawn with.
    pub fn init(&self) -> Init {
        self.init
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The variable store.
    pub fn vs(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Runs the network; `train` selects batch statistics in BatchNorm.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if self.channels_last && xs.dim() == 4 {
            self.net.forward_t(&channels_last(xs), train)
        } else {
            self.net.forward_t(xs, train)
        }
    }

    /// Names of the prunable kernels (conv and linear weights), in the network's order.
    pub fn prunable(&self) -> &[String] {
        &self.prunable
    }

    /// The output positions per example at which each prunable kernel is applied (H_out × W_out
    /// for a convolution, 1 for a linear layer), in the order of [`Model::prunable`].
    pub fn positions(&self) -> &[i64] {
        &self.positions
    }

    /// Name of the output layer's kernel.
    pub fn output_layer(&self) -> &str {
        &self.output
    }

    /// Every variable (parameters and buffers such as BatchNorm running statistics), sorted by
    /// name. The tensors share storage with the model.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        sorted_state(&self.vs)
    }

    /// The trainable parameters, sorted by name, sharing storage with the model.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        trainable(self.state())
    }

    /// The BatchNorm scales γ (`<layer>.weight` of every layer with running statistics), sorted by
    /// name, sharing storage with the model: what network slimming penalises and Early-Bird
    /// thresholds.
    pub fn batchnorm_scales(&self) -> Vec<(String, Tensor)> {
        batchnorm_scales(&self.state())
    }

    /// The prunable kernels in the network's order, sharing storage with the model.
    pub fn prunable_tensors(&self) -> Vec<(String, Tensor)> {
        let vars = self.vs.variables();
        self.prunable
            .iter()
            .map(|n| (n.clone(), vars[n].shallow_clone()))
            .collect()
    }

    /// Number of trainable parameters.
    pub fn num_parameters(&self) -> i64 {
        self.parameters()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }

    /// Number of prunable weights.
    pub fn num_prunable(&self) -> i64 {
        self.prunable_tensors()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }

    /// Overwrites every variable with the tensor of the same name (copied to this model's device).
    /// The names must match exactly: a missing or an unexpected name is an error, and then no
    /// variable has been changed.
    pub fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        let given: BTreeMap<&str, &Tensor> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut vars: HashMap<String, Tensor> = self.vs.variables();
        let mismatch = |problem: String| ModelError::StateMismatch {
            name: self.name.clone(),
            problem,
        };
        let mut missing: Vec<&str> = vars
            .keys()
            .map(String::as_str)
            .filter(|n| !given.contains_key(n))
            .collect();
        missing.sort_unstable();
        if !missing.is_empty() {
            return Err(mismatch(format!("missing {}", missing.join(", "))));
        }
        if let Some(extra) = given.keys().find(|n| !vars.contains_key(**n)) {
            return Err(mismatch(format!("unexpected tensor {extra}")));
        }
        let mut sorted: Vec<(&String, &Tensor)> = vars.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (name, var) in sorted {
            let src = given[name.as_str()];
            if src.size() != var.size() {
                return Err(mismatch(format!(
                    "{name} has shape {:?}, the model's is {:?}",
                    src.size(),
                    var.size()
                )));
            }
        }
        tch::no_grad(|| {
            for (name, var) in vars.iter_mut() {
                var.copy_(given[name.as_str()]);
            }
        });
        Ok(())
    }

    /// Copies every variable of `other` (a model of the same architecture) into this one.
    pub fn copy_from(&mut self, other: &Model) -> Result<()> {
        self.load_state(&other.state())
    }
}

/// A trainable 1-D `*.weight` that is not a prunable kernel is a normalisation scale
/// (BatchNorm's γ); its sibling `*.bias` is the shift β.
/// Every variable of `vs`, sorted by name (sharing storage).
pub(crate) fn sorted_state(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The trainable ones of `state`.
pub(crate) fn trainable(state: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    state
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect()
}

/// The BatchNorm scales of `state`: `<layer>.weight` of every layer with running statistics.
pub(crate) fn batchnorm_scales(state: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    let has = |n: &str| state.iter().any(|(m, _)| m == n);
    state
        .iter()
        .filter_map(|(n, t)| {
            let layer = n.strip_suffix(".weight")?;
            has(&format!("{layer}.running_mean")).then(|| (n.clone(), t.shallow_clone()))
        })
        .collect()
}

fn is_norm_scale(name: &str, prunable: &[String], t: &Tensor) -> bool {
    name.ends_with(".weight")
        && !prunable.iter().any(|p| p == name)
        && t.dim() == 1
        && t.requires_grad()
}
