//! Hyperparameters of a lottery and of the branches run off its levels.

use serde::{Deserialize, Serialize};

use lth_prune::{PruningHparams, Strategy};
use lth_train::{PaiHparams, Steps, TrainHparams};

use crate::{LotteryError, Result};

/// How a pruned network is retrained at each level after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retrain {
    /// Rewind the surviving weights to W_k and train steps k..T (Frankle et al.).
    #[default]
    WeightRewinding,
    /// Keep the trained weights W_T and train steps k..T with the schedule replayed from step k
    /// (Renda et al., learning-rate rewinding).
    LrRewinding,
    /// Keep the trained weights W_T and train T − k steps at the schedule's final rate.
    FineTuning,
}

impl std::str::FromStr for Retrain {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.replace('-', "_").as_str() {
            "weight_rewinding" => Ok(Retrain::WeightRewinding),
            "lr_rewinding" => Ok(Retrain::LrRewinding),
            "fine_tuning" => Ok(Retrain::FineTuning),
            _ => Err(format!(
                "unknown retraining `{s}`: expected weight-rewinding, lr-rewinding or fine-tuning"
            )),
        }
    }
}

/// Everything that determines a lottery (the number of levels does not: more levels extend the
/// same lottery).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LotteryHparams {
    pub train: TrainHparams,
    pub pruning: PruningHparams,
    /// The rewind point k.
    pub rewind: Steps,
    pub retrain: Retrain,
    /// Level 1 pruned at initialisation by this method (from W0, every prunable layer) instead
    /// of by the magnitudes of level 0's trained weights; later levels are IMP as usual. Lets IMP
    /// and one-shot pruning at initialisation be compared on the same seeds.
    pub level1: Option<PaiHparams>,
}

impl LotteryHparams {
    /// Checks everything that needs no data: the training hyperparameters, the pruning fractions
    /// and excluded layers against the model's prunable kernels, and level 1's method. Commands
    /// call it before they read data or write anything.
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        let info = lth_data::info(&self.train.dataset.dataset)
            .map_err(|e| LotteryError::Invalid(e.to_string()))?;
        let kernels = lth_models::kernels(&self.train.model.model, info.shape, info.num_classes)?;
        self.pruning.validate(kernels.names())?;
        // A flag that changes nothing would still change the run's hash: refused.
        if let Some(r) = self.pruning.conv_rate
            && !kernels.has_convolutions()
        {
            return Err(LotteryError::Invalid(format!(
                "--conv-rate {r}: {} has no convolutions to prune (drop --conv-rate)",
                self.train.model.model
            )));
        }
        if let Some(l1) = &self.level1 {
            l1.validate(&self.train)?;
        }
        Ok(())
    }

    /// The papers' recipe for `model`: its training recipe, and its pruning: layerwise for LeNet
    /// (20% of the hidden layers' remaining weights per level, 10% of the output layer's) and
    /// Conv-2/4/6 (convolutions 10%, or 15% for Conv-6; linear layers 20%; output 10%); global 20%
    /// for ResNets and VGGs (VGG's output layer is not pruned, as in OpenLTH).
    pub fn recipe(model: &str) -> Result<LotteryHparams> {
        let train = TrainHparams::recipe(model)?;
        let layerwise = |rate, conv_rate, output_rate| PruningHparams {
            strategy: Strategy::Layerwise,
            rate,
            conv_rate,
            output_rate: Some(output_rate),
            ..Default::default()
        };
        let global = |exclude: &[&str]| PruningHparams {
            strategy: Strategy::Global,
            rate: 0.2,
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let pruning = if model.starts_with("lenet_") {
            layerwise(0.2, None, 0.1)
        } else if model.starts_with("conv_") {
            layerwise(0.2, Some(if model == "conv_6" { 0.15 } else { 0.1 }), 0.1)
        } else if model.starts_with("cifar_vgg_") {
            global(&["fc.weight"])
        } else if model.starts_with("cifar_resnet_")
            || model.starts_with("cifar_wrn_")
            || model.starts_with("imagenet_resnet_")
        {
            global(&[])
        } else {
            return Err(LotteryError::Invalid(format!(
                "no pruning recipe for model `{model}`"
            )));
        };
        Ok(LotteryHparams {
            train,
            pruning,
            ..Default::default()
        })
    }
}

/// A baseline trained off a lottery level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchKind {
    /// The level's mask, fresh random weights (a new W0), trained steps k..T.
    RandomReinit,
    /// A random mask with the level's per-layer fractions, the rewind weights W_k.
    RandomPrune,
    /// The level's mask; kept kernel weights set to sign(W0) × the layer's init std (Zhou et al.'s
    /// "signed constant"; also accepted as `signed-constant`); the other parameters from W_k;
    /// trained steps k..T.
    SignPreserving,
    /// A random mask keeping as many weights as the level's, spread uniformly over every
    /// prunable weight (global random pruning, no per-layer matching), the rewind weights W_k:
    /// the random-pruning baseline of the pruning-at-initialisation papers.
    RandomUniform,
    /// The level's mask; within each layer the kept weights of W_k trade places at random
    /// (Zhou et al.'s "reshuffle"); trained steps k..T.
    Reshuffle,
    /// Not trained: the level's mask on the untrained W0, evaluated (a supermask, Zhou et al.).
    Supermask,
    /// Not trained: the level's mask on W0 with the kept weights set to sign(W0) × the layer's
    /// init std (the signed-constant supermask).
    SupermaskSigned,
}

impl BranchKind {
    /// Every kind.
    pub const ALL: [BranchKind; 7] = [
        BranchKind::RandomReinit,
        BranchKind::RandomPrune,
        BranchKind::SignPreserving,
        BranchKind::RandomUniform,
        BranchKind::Reshuffle,
        BranchKind::Supermask,
        BranchKind::SupermaskSigned,
    ];

    /// The name used in folders and CSV files (`random_reinit`).
    pub fn name(self) -> &'static str {
        match self {
            BranchKind::RandomReinit => "random_reinit",
            BranchKind::RandomPrune => "random_prune",
            BranchKind::SignPreserving => "sign_preserving",
            BranchKind::RandomUniform => "random_uniform",
            BranchKind::Reshuffle => "reshuffle",
            BranchKind::Supermask => "supermask",
            BranchKind::SupermaskSigned => "supermask_signed",
        }
    }

    /// Whether the branch trains (supermasks are only evaluated, at step 0).
    pub fn trains(self) -> bool {
        !matches!(self, BranchKind::Supermask | BranchKind::SupermaskSigned)
    }
}

impl std::str::FromStr for BranchKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s2 = s.replace('-', "_");
        if s2 == "signed_constant" {
            return Ok(BranchKind::SignPreserving);
        }
        BranchKind::ALL
            .into_iter()
            .find(|k| k.name() == s2)
            .ok_or_else(|| {
                format!(
                    "unknown branch `{s}`: expected random-reinit, random-prune, sign-preserving (or signed-constant), random-uniform, reshuffle, supermask or supermask-signed"
                )
            })
    }
}

/// A branch: its kind and the seed of its randomness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchHparams {
    pub kind: BranchKind,
    /// Seed of the new weights or mask; `None` uses the replicate number.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl Default for BranchHparams {
    fn default() -> Self {
        BranchHparams {
            kind: BranchKind::RandomReinit,
            seed: None,
        }
    }
}

/// The initialisation seed of a random reinitialisation with branch seed `seed`: separated from
/// every ordinary initialisation seed, so the reinitialised network never equals W0.
pub fn reinit_seed(seed: u64) -> u64 {
    seed ^ lth_rng::fnv1a("random_reinit")
}
