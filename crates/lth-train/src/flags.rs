//! Command-line flags of [`TrainHparams`] (feature `clap`): each overrides one field of the model's
//! recipe. The `lth` binary and the reproduction harness parse the same flags, so a spec row's
//! flags mean exactly what they mean on the command line.

use clap::Args;

use lth_models::Init;

use crate::{OptimizerKind, Precision, Result, Steps, TrainError, TrainHparams};

/// Flags for the hyperparameters of a training run; unset flags keep the model's recipe.
#[derive(Args, Debug, Clone, Default)]
pub struct TrainFlags {
    /// Model name from the registry (see `lth models`), e.g. lenet_300_100.
    // An `Option` that clap requires: `lth lottery branch` negates the parent's requirements.
    #[arg(long, required = true)]
    pub model: Option<String>,
    /// Dataset name (see `lth datasets`); default: the model's.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Training length, e.g. 2ep, 50000it, 2ep100it.
    #[arg(long)]
    pub steps: Option<Steps>,
    #[arg(long)]
    pub batch_size: Option<u64>,
    /// sgd or adam.
    #[arg(long)]
    pub optimizer: Option<OptimizerKind>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub momentum: Option<f64>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub nesterov: Option<bool>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Linear learning-rate warmup length, e.g. 500it.
    #[arg(long)]
    pub warmup: Option<Steps>,
    /// Steps at which the rate is multiplied by --gamma, comma-separated (80ep,120ep).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<Steps>>,
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Evaluate every this many steps (default: every epoch).
    #[arg(long)]
    pub eval_every: Option<Steps>,
    /// Training examples held out for validation.
    #[arg(long)]
    pub validation: Option<u64>,
    /// Train on a fixed subset of this many examples.
    #[arg(long)]
    pub subset: Option<u64>,
    /// kaiming_normal or glorot_normal.
    #[arg(long)]
    pub init: Option<Init>,
    /// Seed of the initial weights (default: the replicate number).
    #[arg(long)]
    pub init_seed: Option<u64>,
    /// Seed of the data order (default: the replicate number).
    #[arg(long)]
    pub data_order_seed: Option<u64>,
    /// Apply the dataset's standard training augmentation (true/false; default: the recipe's).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub augment: Option<bool>,
    /// Seed of the augmentation draws (default: the replicate number).
    #[arg(long)]
    pub augment_seed: Option<u64>,
    /// fp32, or bf16 (the forward pass under bfloat16 autocast; never a recipe's default).
    #[arg(long)]
    pub precision: Option<Precision>,
}

impl TrainFlags {
    /// The `--model` given.
    pub fn model_name(&self) -> Result<&str> {
        self.model
            .as_deref()
            .ok_or_else(|| TrainError::Invalid("--model is required".into()))
    }

    /// The model's recipe with these flags applied, validated.
    pub fn resolve(&self) -> Result<TrainHparams> {
        let mut hp = TrainHparams::recipe(self.model_name()?)?;
        let (d, m, t) = (&mut hp.dataset, &mut hp.model, &mut hp.training);
        set(&mut d.dataset, self.dataset.clone());
        set(&mut d.batch_size, self.batch_size);
        set(&mut d.validation, self.validation);
        set(&mut d.subset, self.subset);
        d.data_order_seed = self.data_order_seed.or(d.data_order_seed);
        set(&mut d.augment, self.augment);
        d.augment_seed = self.augment_seed.or(d.augment_seed);
        m.init = self.init.or(m.init);
        m.init_seed = self.init_seed.or(m.init_seed);
        set(&mut t.steps, self.steps);
        set(&mut t.optimizer, self.optimizer);
        set(&mut t.lr, self.lr);
        set(&mut t.momentum, self.momentum);
        set(&mut t.nesterov, self.nesterov);
        set(&mut t.weight_decay, self.weight_decay);
        set(&mut t.warmup, self.warmup);
        set(&mut t.milestones, self.milestones.clone());
        set(&mut t.gamma, self.gamma);
        set(&mut t.eval_every, self.eval_every);
        set(&mut t.precision, self.precision);
        hp.validate()?;
        Ok(hp)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// Flags of pruning at initialisation (`lth train`, and `lth lottery` for its level 1).
#[derive(Args, Debug, Clone, Default)]
pub struct PaiFlags {
    /// Prune once at initialisation: snip, grasp, synflow, magnitude or random.
    #[arg(long)]
    pub prune_at_init: Option<lth_prune::Method>,
    /// Fraction of the prunable weights --prune-at-init removes, in [0, 1).
    #[arg(long)]
    pub sparsity: Option<f64>,
    /// Examples in the scoring batch of snip (default: the batch size) and grasp (default: 10 per
    /// class; class-balanced).
    #[arg(long)]
    pub prune_batch: Option<u64>,
    /// Rounds of iterative pruning at initialisation (synflow; default 100; one-shot methods
    /// ignore it).
    #[arg(long)]
    pub prune_rounds: Option<u32>,
}

impl PaiFlags {
    /// The pruning these flags ask for (`None`: no pruning at initialisation), checked against
    /// the run.
    pub fn resolve(&self, hp: &TrainHparams) -> Result<Option<crate::PaiHparams>> {
        match (self.prune_at_init, self.sparsity) {
            (None, None) if self.prune_batch.is_none() && self.prune_rounds.is_none() => Ok(None),
            (None, _) => Err(TrainError::Invalid(
                "--sparsity, --prune-batch and --prune-rounds need --prune-at-init".into(),
            )),
            (Some(m), None) => Err(TrainError::Invalid(format!(
                "--prune-at-init {m} needs --sparsity (the fraction of weights removed)"
            ))),
            (Some(m), Some(s)) => {
                let mut pai = crate::PaiHparams {
                    batch: self.prune_batch,
                    ..crate::PaiHparams::new(m, s)
                };
                if let Some(r) = self.prune_rounds {
                    pai.rounds = r;
                }
                pai.validate(hp)?;
                Ok(Some(pai))
            }
        }
    }
}
