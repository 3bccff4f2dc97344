//! Hyperparameters of a training run, and each model's default recipe.
//!
//! Every struct has neutral defaults (`Default`): the run store hashes only the fields that differ
//! from them, so adding a field with a neutral default renames no stored run. Recipes fill in the
//! papers' settings per model; the command line overrides single fields.

use serde::{Deserialize, Serialize};

use lth_models::Init;

use crate::{Result, Steps, TrainError};

/// Which dataset, how it is batched and held out, and the seeds of its randomness.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetHparams {
    /// Registry name (`fashion-mnist`).
    pub dataset: String,
    pub batch_size: u64,
    /// Training examples held out as a validation split (a fixed seeded choice).
    pub validation: u64,
    /// Train on this many examples only (0: all); a fixed seeded choice, for smoke runs.
    pub subset: u64,
    /// Seed of the data order; `None` uses the replicate number.
    pub data_order_seed: Option<u64>,
    /// Apply the dataset's standard training augmentation (CIFAR: pad 4, random crop, flip).
    pub augment: bool,
    /// Seed of the augmentation draws; `None` uses the replicate number.
    pub augment_seed: Option<u64>,
}

/// Which network and how it is initialised.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelHparams {
    /// Registry name (`lenet_300_100`).
    pub model: String,
    /// Initialiser of prunable kernels; `None` uses the model family's default.
    pub init: Option<Init>,
    /// Seed of the initial weights; `None` uses the replicate number.
    pub init_seed: Option<u64>,
    /// The initial value of every BatchNorm scale γ; `None` keeps the family's (OpenLTH's draw
    /// from U(0, 1)). The Early-Bird and network-slimming references use 0.5: channel masks
    /// ranked by |γ| then reflect training, not the initial draw.
    pub bn_init: Option<f64>,
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Stochastic gradient descent, with optional (Nesterov) momentum, PyTorch's formulation.
    #[default]
    Sgd,
    /// Adam (β = 0.9, 0.999; ε = 1e-8), PyTorch's formulation; weight decay is an L2 term.
    Adam,
}

impl OptimizerKind {
    /// Every kind.
    pub const ALL: [OptimizerKind; 2] = [OptimizerKind::Sgd, OptimizerKind::Adam];

    /// The name flags and messages use (`sgd`, `adam`).
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        OptimizerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown optimiser `{s}`: expected sgd or adam"))
    }
}

impl TrainingHparams {
    /// Whether the optimiser's numbers make sense (a non-negative rate and weight decay, momentum
    /// in [0, 1), Nesterov only with momentum, neither with Adam); the reason, naming each flag
    /// with `prefix` (`--`, or a spec row's `--target-`), if not.
    pub fn check_optimizer(&self, prefix: &str) -> std::result::Result<(), String> {
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(format!(
                "{prefix}lr must be a non-negative number, got {}",
                self.lr
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(format!(
                "{prefix}momentum must be in [0, 1), got {}",
                self.momentum
            ));
        }
        if self.optimizer == OptimizerKind::Adam && (self.momentum != 0.0 || self.nesterov) {
            return Err(format!(
                "{prefix}momentum and {prefix}nesterov apply to {prefix}optimizer sgd, not adam"
            ));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(format!("{prefix}nesterov needs a {prefix}momentum above 0"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "{prefix}weight-decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        Ok(())
    }
}

/// The arithmetic of the training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Single precision throughout (the default, and what reproductions use).
    #[default]
    Fp32,
    /// The forward pass under bfloat16 autocast (matrix products and convolutions in bf16;
    /// weights, gradients and optimiser state in f32). Faster on GPUs with bf16 units; results
    /// differ from f32 runs, so it is part of the run's identity.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("unknown precision `{s}`: expected fp32 or bf16")),
        }
    }
}

/// The optimisation recipe.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingHparams {
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Linear warmup from 0 to `lr` over this many steps.
    pub warmup: Steps,
    /// The learning rate is multiplied by `gamma` at each of these steps.
    pub milestones: Vec<Steps>,
    pub gamma: f64,
    /// Training length.
    pub steps: Steps,
    /// Evaluate every this many steps (zero: once per epoch), and at the end.
    pub eval_every: Steps,
    /// f32, or bf16 autocast (an explicit choice, never a recipe's default).
    pub precision: Precision,
    /// Adversarial training: train on PGD examples and measure robust accuracy (`None`: clean
    /// training, the default; left out of the stored hyperparameters then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adversarial: Option<crate::adversarial::AdversarialHparams>,
}

/// Everything that determines one training run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainHparams {
    pub dataset: DatasetHparams,
    pub model: ModelHparams,
    pub training: TrainingHparams,
}

impl TrainHparams {
    /// The default recipe of `model` (the papers' settings), or an error naming the known ones.
    ///
    /// - LeNet: the LTH and "Stabilizing the LTH" papers' MNIST recipe: Adam 1.2e-3, batch 60,
    ///   50,000 iterations, 5,000 training examples held out for validation.
    /// - Conv-2/4/6: the LTH paper: Adam 2e-4 / 3e-4 / 3e-4, batch 60, 20K / 25K / 30K iterations,
    ///   CIFAR-10, 5,000 validation examples.
    /// - CIFAR ResNets and VGGs: OpenLTH's: SGD with momentum 0.9, lr 0.1, ×0.1 at epochs 80 and
    ///   120, weight decay 1e-4, 160 epochs, batch 128, CIFAR-10 with augmentation.
    /// - ImageNet ResNets: batch 1024, lr 0.4 with 5 warmup epochs, ×0.1 at epochs 30, 60, 80,
    ///   weight decay 1e-4, 90 epochs, with augmentation.
    pub fn recipe(model: &str) -> Result<TrainHparams> {
        lth_models::family(model)?;
        let model_hp = ModelHparams {
            model: model.into(),
            ..Default::default()
        };
        let dataset = |name: &str, batch_size, validation, augment| DatasetHparams {
            dataset: name.into(),
            batch_size,
            validation,
            augment,
            ..Default::default()
        };
        let adam = |lr, iterations| TrainingHparams {
            optimizer: OptimizerKind::Adam,
            lr,
            gamma: 0.1,
            steps: Steps::it(iterations),
            ..Default::default()
        };
        let sgd = |lr, milestones: &[u64], epochs, warmup| TrainingHparams {
            optimizer: OptimizerKind::Sgd,
            lr,
            momentum: 0.9,
            weight_decay: 1e-4,
            warmup: Steps::ep(warmup),
            milestones: milestones.iter().map(|&m| Steps::ep(m)).collect(),
            gamma: 0.1,
            steps: Steps::ep(epochs),
            ..Default::default()
        };
        let (dataset, training) = if model.starts_with("lenet_") {
            (dataset("mnist", 60, 5000, false), adam(1.2e-3, 50_000))
        } else if model.starts_with("conv_") {
            let (lr, its) = match model {
                "conv_2" => (2e-4, 20_000),
                "conv_4" => (3e-4, 25_000),
                _ => (3e-4, 30_000),
            };
            (dataset("cifar10", 60, 5000, false), adam(lr, its))
        } else if model.starts_with("cifar_resnet_") || model.starts_with("cifar_vgg_") {
            (
                dataset("cifar10", 128, 0, true),
                sgd(0.1, &[80, 120], 160, 0),
            )
        } else if model.starts_with("cifar_wrn_") {
            // Zagoruyko & Komodakis: 200 epochs, Nesterov momentum, weight decay 5e-4, the rate
            // multiplied by 0.2 at epochs 60, 120 and 160.
            let mut t = sgd(0.1, &[60, 120, 160], 200, 0);
            (t.nesterov, t.weight_decay, t.gamma) = (true, 5e-4, 0.2);
            (dataset("cifar10", 128, 0, true), t)
        } else if model.starts_with("imagenet_resnet_") {
            (
                dataset("imagenet", 1024, 0, true),
                sgd(0.4, &[30, 60, 80], 90, 5),
            )
        } else {
            return Err(TrainError::Invalid(format!(
                "no default recipe for model `{model}`"
            )));
        };
        Ok(TrainHparams {
            dataset,
            model: model_hp,
            training,
        })
    }

    /// The seed of the augmentation draws for `replicate`.
    pub fn augment_seed(&self, replicate: u64) -> u64 {
        self.dataset.augment_seed.unwrap_or(replicate)
    }

    /// Checks what no training could work with, naming the field: the dataset and the model
    /// (built on the CPU for the dataset's shape, without initialising it), the optimiser's
    /// numbers, and the schedule where it can be compared without the data.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        let t = &self.training;
        let info = lth_data::info(&self.dataset.dataset)?;
        let outline = lth_models::outline(&self.model.model, info.shape, info.num_classes)?;
        if self.dataset.augment && info.augment.is_none() {
            return bad(format!(
                "--augment: {} has no standard augmentation (the {} recipe asks for one; pass \
                 --augment false)",
                info.name, self.model.model
            ));
        }
        if let Some(g) = self.model.bn_init {
            if !g.is_finite() {
                return bad(format!("--bn-init {g}: a finite value"));
            }
            if outline.batchnorm_scales.is_empty() {
                return bad(format!(
                    "--bn-init {g}: {} has no BatchNorm layers",
                    self.model.model
                ));
            }
        }
        if self.dataset.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        t.check_optimizer("--").map_err(TrainError::Invalid)?;
        if let Some(a) = &t.adversarial {
            a.validate()?;
        }
        if !(t.gamma.is_finite() && t.gamma > 0.0) {
            return bad(format!("--gamma must be above 0, got {}", t.gamma));
        }
        if t.steps.is_zero() {
            return bad("--steps must be more than zero (for example 2ep or 500it)".into());
        }
        // Without the data, step counts compare when they are in the same unit.
        self.check_schedule(|a, b| match (a, b) {
            (Steps { epochs: 0, .. }, Steps { epochs: 0, .. }) => {
                Some(a.iterations.cmp(&b.iterations))
            }
            (Steps { iterations: 0, .. }, Steps { iterations: 0, .. }) => {
                Some(a.epochs.cmp(&b.epochs))
            }
            _ => None,
        })
        .map_err(|e| TrainError::Invalid(e.to_string()))
    }

    /// Checks what depends on the size of the training split (`examples`, after the validation
    /// split and any subset): the batch fits in it, the step counts fit in a `u64`, and the
    /// schedule's warmup and milestones fall inside training. Milestones or a warmup past the end
    /// would never apply; those of the model's recipe are let be (a shortened run just does not
    /// reach them), any other is refused.
    pub fn check_data(&self, examples: u64) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        let t = &self.training;
        let batch = self.dataset.batch_size;
        if batch > examples {
            return bad(format!(
                "--batch-size {batch} is larger than the {examples} training examples of {} \
                 (after the validation split and --subset)",
                self.dataset.dataset
            ));
        }
        let per_epoch = examples.div_ceil(batch.max(1));
        let iterations = |what: &str, s: Steps| {
            s.checked_iterations(per_epoch).ok_or_else(|| {
                TrainError::Invalid(format!(
                    "{what} {s} is too long: {per_epoch} iterations per epoch make it more \
                     than 2^64 iterations"
                ))
            })
        };
        let total = iterations("--steps", t.steps)?;
        iterations("--warmup", t.warmup)?;
        for &m in &t.milestones {
            iterations("--milestones", m)?;
        }
        self.check_schedule(|a, b| Some(a.iterations(per_epoch).cmp(&b.iterations(per_epoch))))
            .map_err(|e| e.with_total(total))
    }

    /// Refuses a warmup longer than training and milestones at or past its end, unless they are
    /// the model's recipe's (a shortened run just does not reach those). `cmp` orders two step
    /// counts, or says it cannot (`None`: units that need the epoch length).
    fn check_schedule(
        &self,
        cmp: impl Fn(Steps, Steps) -> Option<std::cmp::Ordering>,
    ) -> std::result::Result<(), ScheduleError> {
        use std::cmp::Ordering::{Equal, Greater};
        let t = &self.training;
        let recipe = TrainHparams::recipe(&self.model.model)
            .ok()
            .map(|r| r.training);
        if cmp(t.warmup, t.steps) == Some(Greater)
            && recipe.as_ref().is_none_or(|r| r.warmup != t.warmup)
        {
            return Err(ScheduleError::Warmup(t.warmup, t.steps, None));
        }
        for &m in &t.milestones {
            if matches!(cmp(m, t.steps), Some(Greater | Equal))
                && recipe.as_ref().is_none_or(|r| r.milestones != t.milestones)
            {
                return Err(ScheduleError::Milestone(m, t.steps, None));
            }
        }
        Ok(())
    }

    /// The seed of the initial weights for `replicate`.
    pub fn init_seed(&self, replicate: u64) -> u64 {
        self.model.init_seed.unwrap_or(replicate)
    }

    /// The seed of the data order for `replicate`.
    pub fn data_order_seed(&self, replicate: u64) -> u64 {
        self.dataset.data_order_seed.unwrap_or(replicate)
    }
}

/// A schedule step that can never apply.
#[derive(Debug)]
enum ScheduleError {
    /// Warmup, steps, and the training length in iterations when known.
    Warmup(Steps, Steps, Option<u64>),
    /// A milestone, steps, and the training length in iterations when known.
    Milestone(Steps, Steps, Option<u64>),
}

impl ScheduleError {
    fn with_total(self, total: u64) -> TrainError {
        TrainError::Invalid(
            match self {
                ScheduleError::Warmup(w, s, _) => ScheduleError::Warmup(w, s, Some(total)),
                ScheduleError::Milestone(m, s, _) => ScheduleError::Milestone(m, s, Some(total)),
            }
            .to_string(),
        )
    }
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let length = |s: &Steps, total: &Option<u64>| match total {
            Some(n) => format!("--steps {s} ({n} iterations)"),
            None => format!("--steps {s}"),
        };
        match self {
            ScheduleError::Warmup(w, s, total) => write!(
                f,
                "--warmup {w} is longer than training, {}: the learning rate would never reach \
                 --lr",
                length(s, total)
            ),
            ScheduleError::Milestone(m, s, total) => write!(
                f,
                "--milestones {m} is not before the end of training, {}: it would never apply \
                 (give milestones inside training, or --milestones none)",
                length(s, total)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet_recipe_is_the_papers() {
        let r = TrainHparams::recipe("lenet_300_100").unwrap();
        assert_eq!(r.training.optimizer, OptimizerKind::Adam);
        assert_eq!(
            (r.dataset.batch_size, r.training.steps),
            (60, Steps::it(50_000))
        );
        r.validate().unwrap();
        assert!(TrainHparams::recipe("nope").is_err());
        let r = TrainHparams::recipe("cifar_resnet_20").unwrap();
        assert_eq!(r.training.milestones, [Steps::ep(80), Steps::ep(120)]);
        assert!(r.dataset.augment);
        r.validate().unwrap();
        for m in ["conv_6", "cifar_vgg_16", "imagenet_resnet_50"] {
            TrainHparams::recipe(m).unwrap().validate().unwrap();
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut r = TrainHparams::recipe("lenet_300_100").unwrap();
        r.training.momentum = 0.9;
        assert!(r.validate().unwrap_err().to_string().contains("not adam"));
        r.training.optimizer = OptimizerKind::Sgd;
        r.validate().unwrap();
        r.training.steps = Steps::default();
        assert!(r.validate().unwrap_err().to_string().contains("steps"));
    }
}
