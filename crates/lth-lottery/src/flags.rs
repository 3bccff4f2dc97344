//! Command-line flags of a lottery (feature `clap`): the training flags, the pruning and rewinding
//! flags, and the replicate. `lth lottery`, `lth stability` and the rows of a reproduction spec all
//! parse these, so one name means one hyperparameter everywhere.

use clap::Args;

use lth_prune::Strategy;
use lth_train::Steps;
use lth_train::flags::{PaiFlags, TrainFlags};

use crate::{
    LotteryError, LotteryHparams, OptimizerRecipe, Output, Result, Retrain, TransplantHparams,
};

/// Flags that determine a lottery; unset flags keep the model's recipe.
#[derive(Args, Debug, Clone, Default)]
pub struct LotteryFlags {
    #[command(flatten)]
    pub train: TrainFlags,
    /// layerwise (each layer loses its own fraction) or global (one threshold).
    #[arg(long)]
    pub strategy: Option<Strategy>,
    /// Fraction of the remaining weights pruned per level.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Layerwise: fraction for convolution kernels.
    #[arg(long)]
    pub conv_rate: Option<f64>,
    /// Layerwise: fraction for the output layer.
    #[arg(long)]
    pub output_rate: Option<f64>,
    /// Layers never pruned (parameter names, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Option<Vec<String>>,
    /// Which weights a level keeps: large_final (IMP's |w_f|), small_final, large_init,
    /// small_init, magnitude_increase, movement, each also with _same_sign or _diff_sign
    /// ("Deconstructing Lottery Tickets"; w_i is the rewind point W_k).
    #[arg(long)]
    pub criterion: Option<lth_prune::Criterion>,
    /// Rewind point k: 0 (the original LTH), 500it, 2ep. Every level retrains T − k steps: from
    /// W_k (weight rewinding), from W_T with the schedule replayed from k (lr rewinding), or from
    /// W_T at the final rate (fine-tuning, which k shortens as Renda et al. compare them).
    #[arg(long, allow_hyphen_values = true)]
    pub rewind: Option<Steps>,
    /// weight-rewinding, lr-rewinding or fine-tuning.
    #[arg(long)]
    pub retrain: Option<Retrain>,
    /// Level 1 pruned at initialisation instead of by IMP.
    #[command(flatten)]
    pub level1: PaiFlags,
    /// Replicate number; seeds that are not given default to it.
    #[arg(long, default_value_t = 1)]
    pub replicate: u64,
}

impl LotteryFlags {
    /// The model's lottery recipe with these flags applied.
    pub fn resolve(&self) -> Result<LotteryHparams> {
        let mut hp = LotteryHparams::recipe(self.train.model_name()?)?;
        hp.train = self.train.resolve()?;
        let p = &mut hp.pruning;
        if let Some(s) = self.strategy {
            p.strategy = s;
            if s == Strategy::Global {
                // The recipe's layerwise rates mean nothing to a global threshold (given ones
                // are refused by `validate`).
                p.output_rate = None;
                p.conv_rate = None;
            }
        }
        p.rate = self.rate.unwrap_or(p.rate);
        p.conv_rate = self.conv_rate.or(p.conv_rate);
        p.output_rate = self.output_rate.or(p.output_rate);
        p.criterion = self.criterion.unwrap_or(p.criterion);
        if let Some(x) = &self.exclude {
            p.exclude.clone_from(x);
        }
        hp.rewind = self.rewind.unwrap_or(hp.rewind);
        hp.retrain = self.retrain.unwrap_or(hp.retrain);
        hp.level1 = self.level1.resolve(&hp.train)?;
        hp.validate()?;
        Ok(hp)
    }
}

/// Where a reproduction row moves its ticket (`elastic` and `transfer` rows): `lth elastic --to
/// MODEL --map M`, `lth transfer --dataset D --output P` and `lth transfer --optimizer O --lr R`
/// as flags of a row, whose own `--model`, `--dataset`, `--optimizer` and `--lr` are the source
/// lottery's.
#[derive(Args, Debug, Clone, Default)]
pub struct TransplantFlags {
    /// Elastic: the target depth of the source's family.
    #[arg(long, value_name = "MODEL")]
    pub target_model: Option<String>,
    /// Elastic: interpolation, appending or an explicit block map (`0:0;1:1,2;2:3,4`).
    #[arg(long)]
    pub map: Option<String>,
    /// Transfer: the target dataset.
    #[arg(long, value_name = "DATASET")]
    pub target_dataset: Option<String>,
    /// Transfer: the classifier's policy (reinit, keep-mask, copy).
    #[arg(long)]
    pub output: Option<Output>,
    /// Transfer to another optimiser (sgd, adam) on the same network and data.
    #[arg(long, value_name = "OPTIMIZER")]
    pub target_optimizer: Option<lth_train::OptimizerKind>,
    /// The target optimiser's learning rate (required with --target-optimizer).
    #[arg(long, value_name = "LR")]
    pub target_lr: Option<f64>,
    /// The target SGD's momentum (default 0).
    #[arg(long, value_name = "MOMENTUM")]
    pub target_momentum: Option<f64>,
    /// Nesterov momentum for the target SGD (default false).
    #[arg(long, value_name = "BOOL")]
    pub target_nesterov: Option<bool>,
    /// The target optimiser's weight decay (default 0).
    #[arg(long, value_name = "DECAY")]
    pub target_weight_decay: Option<f64>,
}

impl TransplantFlags {
    /// The transplant of `source`'s level `level` these flags describe, if any.
    pub fn resolve(
        &self,
        source: &LotteryHparams,
        level: u64,
    ) -> Result<Option<TransplantHparams>> {
        let invalid = |m: &str| Err(LotteryError::Invalid(m.to_owned()));
        let recipe_flags = self.target_lr.is_some()
            || self.target_momentum.is_some()
            || self.target_nesterov.is_some()
            || self.target_weight_decay.is_some();
        if let Some(optimizer) = self.target_optimizer {
            if self.target_model.is_some() || self.target_dataset.is_some() {
                return invalid(
                    "--target-optimizer moves a ticket to another optimiser on its own network \
                     and data: leave out --target-model and --target-dataset",
                );
            }
            if self.map.is_some() || self.output.is_some() {
                return invalid("--map and --output belong to --target-model and --target-dataset");
            }
            let recipe = OptimizerRecipe::from_flags(
                optimizer,
                self.target_lr,
                self.target_momentum,
                self.target_nesterov,
                self.target_weight_decay,
                "--target-",
            )?;
            return TransplantHparams::optimizer(source.clone(), level, recipe).map(Some);
        }
        if recipe_flags {
            return invalid(
                "--target-lr, --target-momentum, --target-nesterov and --target-weight-decay \
                 need --target-optimizer",
            );
        }
        match (&self.target_model, &self.target_dataset) {
            (Some(_), Some(_)) => invalid(
                "--target-model (elastic) and --target-dataset (transfer) exclude each other",
            ),
            (Some(model), None) => {
                if self.output.is_some() {
                    return invalid("--output belongs to a transfer (--target-dataset)");
                }
                let map = self.map.as_deref().unwrap_or("interpolation");
                TransplantHparams::elastic(source.clone(), level, model, map).map(Some)
            }
            (None, Some(dataset)) => {
                if self.map.is_some() {
                    return invalid("--map belongs to an elastic move (--target-model)");
                }
                TransplantHparams::transfer(source.clone(), level, dataset, self.output).map(Some)
            }
            (None, None) if self.map.is_some() || self.output.is_some() => {
                invalid("--map and --output need a destination: --target-model or --target-dataset")
            }
            (None, None) => Ok(None),
        }
    }
}
