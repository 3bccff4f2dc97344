//! Tickets that travel: a lottery level's mask and rewind weights moved to a network of another
//! depth (the Elastic Lottery Ticket Hypothesis, Chen et al., NeurIPS 2021), to another dataset or
//! to another optimiser (Morcos et al., "One ticket to win them all", NeurIPS 2019), then trained
//! there from the rewind step.
//!
//! A transplant is a unit of the run store keyed by the *source* lottery's hyperparameters, the
//! level, and where the ticket goes: `runs/transplant_<hash>/replicate_<n>/{ticket,random_<seed>}`,
//! where replicate `n` moves the ticket of the source's replicate `n`. `ticket` trains the moved
//! mask; `random_<seed>` the same moved weights under a random mask with the moved mask's per-layer
//! counts (the random-pruning baseline on the target).
//!
//! What moves: every variable at the rewind point W_k (weights and BatchNorm statistics) and the
//! level's mask; masks cover prunable kernels only, so BatchNorm's γ is never masked. A depth move
//! maps blocks by a [`BlockMap`] (stem and classifier copied); a data move copies everything but
//! the classifier, which follows an explicit [`Output`] policy whenever it cannot simply be copied;
//! an optimiser move copies everything and trains it with another optimiser's recipe
//! ([`OptimizerRecipe`]), its state fresh at the rewind step: the ticket's optimiser state is the
//! source optimiser's and has no meaning to another one.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use lth_models::morph::{self, BlockMap, Depth};
use lth_prune::{Mask, random_like};
use lth_store::{RunDir, Store};
use lth_train::{
    Data, Hooks, OptimizerKind, Progress, RunPlan, RunSummary, Setup, TrainHparams,
    TrainingHparams, run_resumable,
};

use crate::{Lottery, LotteryError, LotteryHparams, Result};

/// What happens to the classifier (the output layer's weight and bias) on a data move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Copied with its mask, like every other layer: only when the class counts agree.
    #[default]
    Copy,
    /// Re-initialised (the target's own initialisation) and dense.
    Reinit,
    /// Re-initialised, under the ticket's output-layer mask (same class count only).
    KeepMask,
}

impl Output {
    /// The name on the command line (`keep-mask`).
    pub fn name(self) -> &'static str {
        match self {
            Output::Copy => "copy",
            Output::Reinit => "reinit",
            Output::KeepMask => "keep-mask",
        }
    }
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [Output::Copy, Output::Reinit, Output::KeepMask]
            .into_iter()
            .find(|o| o.name() == s.replace('_', "-"))
            .ok_or_else(|| {
                format!("unknown output policy `{s}`: expected reinit, keep-mask or copy")
            })
    }
}

/// The optimiser a ticket is trained with on an optimiser move: the parts of a recipe that belong
/// to the optimiser. The schedule (length, warmup, milestones, evaluation) stays the source's, so
/// the ticket trains the same steps k..T under another update rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerRecipe {
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl OptimizerRecipe {
    /// The recipe the flags give: `lr` is required (a rate tuned for one optimiser means nothing
    /// to another), the rest default to the plain optimiser (no momentum, no weight decay).
    pub fn from_flags(
        optimizer: OptimizerKind,
        lr: Option<f64>,
        momentum: Option<f64>,
        nesterov: Option<bool>,
        weight_decay: Option<f64>,
        flag: &str,
    ) -> Result<Self> {
        let Some(lr) = lr else {
            return Err(LotteryError::Invalid(format!(
                "{flag}lr is required with {flag}optimizer: the ticket's rate was tuned for its own \
                 optimiser"
            )));
        };
        let recipe = OptimizerRecipe {
            optimizer,
            lr,
            momentum: momentum.unwrap_or(0.0),
            nesterov: nesterov.unwrap_or(false),
            weight_decay: weight_decay.unwrap_or(0.0),
        };
        // The checks of every training's optimiser, named with this recipe's flags.
        let mut training = TrainingHparams::default();
        recipe.apply(&mut training);
        training
            .check_optimizer(flag)
            .map_err(LotteryError::Invalid)?;
        Ok(recipe)
    }

    /// The recipe's own part of `training`.
    pub fn of(training: &TrainingHparams) -> Self {
        OptimizerRecipe {
            optimizer: training.optimizer,
            lr: training.lr,
            momentum: training.momentum,
            nesterov: training.nesterov,
            weight_decay: training.weight_decay,
        }
    }

    /// `training` with this optimiser in place of its own.
    pub fn apply(&self, training: &mut TrainingHparams) {
        training.optimizer = self.optimizer;
        training.lr = self.lr;
        training.momentum = self.momentum;
        training.nesterov = self.nesterov;
        training.weight_decay = self.weight_decay;
    }
}

impl std::fmt::Display for OptimizerRecipe {
    /// `sgd (lr 0.05, momentum 0.9)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (lr {}", self.optimizer.name(), self.lr)?;
        if self.momentum != 0.0 {
            write!(f, ", momentum {}", self.momentum)?;
        }
        if self.nesterov {
            f.write_str(", nesterov")?;
        }
        if self.weight_decay != 0.0 {
            write!(f, ", weight decay {}", self.weight_decay)?;
        }
        f.write_str(")")
    }
}

/// Where a ticket goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Destination {
    /// Another depth of the same family; `map` is the block map written out (`0:0;1:1,2;2:3,4`),
    /// so a preset and the map it stands for are one run.
    Elastic { model: String, map: String },
    /// Another dataset, with the classifier's policy.
    Transfer { dataset: String, output: Output },
    /// Another optimiser on the same network and data (Morcos et al., section 4.3).
    Optimizer(OptimizerRecipe),
}

impl Default for Destination {
    fn default() -> Self {
        Destination::Elastic {
            model: String::new(),
            map: String::new(),
        }
    }
}

/// Everything that determines a transplant: the source lottery (its identity), the level whose
/// ticket moves, and where it goes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransplantHparams {
    pub source: LotteryHparams,
    pub level: u64,
    pub to: Destination,
}

impl TransplantHparams {
    /// A depth move of `source`'s level `level` to `model` by `map` (a preset or an explicit
    /// map), resolved and checked against both depths.
    pub fn elastic(source: LotteryHparams, level: u64, model: &str, map: &str) -> Result<Self> {
        let from = Depth::of(&source.train.model.model)?;
        let to = Depth::of(model)?;
        let map = BlockMap::resolve(map, from.blocks, to.blocks)?;
        let hp = TransplantHparams {
            source,
            level,
            to: Destination::Elastic {
                model: model.to_owned(),
                map: map.to_string(),
            },
        };
        hp.validate()?;
        Ok(hp)
    }

    /// A data move of `source`'s level `level` to `dataset`; `output` `None` copies the
    /// classifier, which needs the same class count.
    pub fn transfer(
        source: LotteryHparams,
        level: u64,
        dataset: &str,
        output: Option<Output>,
    ) -> Result<Self> {
        let hp = TransplantHparams {
            source,
            level,
            to: Destination::Transfer {
                dataset: dataset.to_owned(),
                output: output.unwrap_or_default(),
            },
        };
        hp.validate()?;
        // The classifier's rows are classes: copied onto other classes, row i of the source
        // classifies class i of the target. Done only when asked for by name.
        if output.is_none() && dataset != hp.source.train.dataset.dataset {
            return Err(LotteryError::Invalid(format!(
                "`{dataset}` does not have the classes of the ticket's `{}`, so copying its \
                 classifier would map each class onto another: say --output copy to do it \
                 anyway, or --output reinit (a dense, re-initialised classifier) or keep-mask",
                hp.source.train.dataset.dataset
            )));
        }
        Ok(hp)
    }

    /// An optimiser move of `source`'s level `level`: the same network and data, trained with
    /// `recipe` from the rewind step.
    pub fn optimizer(source: LotteryHparams, level: u64, recipe: OptimizerRecipe) -> Result<Self> {
        if OptimizerRecipe::of(&source.train.training) == recipe {
            return Err(LotteryError::Invalid(format!(
                "the ticket was found with {recipe} already: an optimiser move trains it with \
                 another optimiser or rate"
            )));
        }
        let hp = TransplantHparams {
            source,
            level,
            to: Destination::Optimizer(recipe),
        };
        hp.validate()?;
        Ok(hp)
    }

    /// The target's training hyperparameters: the source's, with the model, the dataset or the
    /// optimiser replaced.
    pub fn target(&self) -> TrainHparams {
        let mut t = self.source.train.clone();
        match &self.to {
            Destination::Elastic { model, .. } => t.model.model.clone_from(model),
            Destination::Transfer { dataset, .. } => t.dataset.dataset.clone_from(dataset),
            Destination::Optimizer(recipe) => recipe.apply(&mut t.training),
        }
        t
    }

    /// Where the ticket goes, in words: `cifar_resnet_32 (blocks 0:0;1:1,2;2:3,4)`,
    /// `mnist (classifier reinit)`, `sgd (lr 0.05, momentum 0.9)`.
    pub fn destination(&self) -> String {
        match &self.to {
            Destination::Elastic { model, map } => format!("{model} (blocks {map})"),
            Destination::Transfer { dataset, output } => {
                format!("{dataset} (classifier {})", output.name())
            }
            Destination::Optimizer(recipe) => recipe.to_string(),
        }
    }

    /// Checks, without data: both networks build, the map fits both depths, and the classifier
    /// has a policy that fits the class counts.
    pub fn validate(&self) -> Result<()> {
        self.source.validate()?;
        if self.level == 0 {
            return Err(LotteryError::Invalid(
                "--level must be 1 or more: level 0 is the dense network, not a ticket".into(),
            ));
        }
        let target = self.target();
        target.validate()?;
        let info =
            |name: &str| lth_data::info(name).map_err(|e| LotteryError::Invalid(e.to_string()));
        // The shapes, before any data is read: both networks built at their W0.
        let build = |model: &str, info: &lth_data::DatasetInfo| {
            lth_models::Model::new(
                model,
                info.shape,
                info.num_classes,
                None,
                0,
                tch::Device::Cpu,
            )
        };
        match &self.to {
            Destination::Elastic { model, map } => {
                let from = Depth::of(&self.source.train.model.model)?;
                let to = Depth::of(model)?;
                if !from.same_family(&to) {
                    return Err(LotteryError::Invalid(format!(
                        "`{model}` is not of the family of `{}`: a ticket moves between depths \
                         of one family",
                        self.source.train.model.model
                    )));
                }
                let map = BlockMap::parse(map)?;
                map.check(from.blocks, to.blocks)?;
                let data = info(&target.dataset.dataset)?;
                let moved = morph::morph(
                    &build(&self.source.train.model.model, data)?.state(),
                    &from,
                    &to,
                    &map,
                )?;
                if let Err(e) = morph::check_fits(&moved, &build(model, data)?) {
                    // A LeNet's hidden layers are its blocks: copied ones must share a width.
                    if let Some(widths) = lth_models::lenet::parse(&self.source.train.model.model)
                        .filter(|w| w.windows(2).any(|p| p[0] != p[1]))
                    {
                        let widths: Vec<String> = widths.iter().map(i64::to_string).collect();
                        return Err(LotteryError::Invalid(format!(
                            "`{}` has hidden layers of unequal widths ({}), and a deeper LeNet \
                             copies a hidden layer where another of the same shape must go: \
                             deepen a LeNet whose copied layers share one width (e.g. \
                             lenet_300_100_100 → lenet_300_100_100_100) ({e})",
                            self.source.train.model.model,
                            widths.join(", ")
                        )));
                    }
                    return Err(e.into());
                }
            }
            Destination::Transfer { dataset, output } => {
                let source = info(&self.source.train.dataset.dataset)?;
                let target = info(dataset)?;
                let model = &self.source.train.model.model;
                let built = build(model, target)?;
                let state: Vec<(String, Tensor)> = build(model, source)?
                    .state()
                    .into_iter()
                    .filter(|(n, _)| !is_classifier(&built, n))
                    .collect();
                check_shapes(&state, &built)?;
                if source.num_classes != target.num_classes && *output != Output::Reinit {
                    return Err(LotteryError::Invalid(format!(
                        "`{dataset}` has {} classes and the ticket's `{}` {}: its classifier \
                         cannot be {}; say --output reinit (a dense, re-initialised classifier)",
                        target.num_classes,
                        self.source.train.dataset.dataset,
                        source.num_classes,
                        match output {
                            Output::Copy => "copied",
                            _ => "kept under the ticket's mask",
                        }
                    )));
                }
            }
            // The network and data are the source's; `target.validate()` above has judged the
            // recipe (a momentum with Adam, a rate out of range), naming the flag.
            Destination::Optimizer(_) => {}
        }
        Ok(())
    }

    /// The move's name in messages (`elastic`, `transfer`: to another dataset or optimiser).
    pub fn kind(&self) -> &'static str {
        match self.to {
            Destination::Elastic { .. } => "elastic",
            Destination::Transfer { .. } | Destination::Optimizer(_) => "transfer",
        }
    }
}

/// Which mask a transplant unit trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planted {
    /// The moved ticket.
    Ticket,
    /// A random mask with the moved mask's per-layer counts (seeded), on the same moved weights.
    Random { seed: u64 },
}

impl Planted {
    /// The unit's folder name (`ticket`, `random_<seed>`).
    pub fn name(self) -> String {
        match self {
            Planted::Ticket => "ticket".into(),
            Planted::Random { seed } => format!("random_{seed}"),
        }
    }
}

/// One replicate of a transplant: the source lottery's ticket, moved, trained on the target data.
#[derive(Debug)]
pub struct Transplant<'a> {
    hp: TransplantHparams,
    source: &'a Lottery<'a>,
    data: &'a Data,
    dir: RunDir,
    per_epoch: u64,
    total: u64,
}

impl<'a> Transplant<'a> {
    /// Binds the transplant's folder in `store` for the ticket of `source`'s level `hp.level`
    /// (`hp.source` must be `source`'s hyperparameters) on the target's `data`.
    pub fn new(
        store: &Store,
        hp: TransplantHparams,
        source: &'a Lottery<'a>,
        data: &'a Data,
    ) -> Result<Self> {
        hp.validate()?;
        if hp.source != *source.hparams() {
            return Err(LotteryError::Invalid(
                "the transplant's source is not the lottery given".into(),
            ));
        }
        let target = hp.target();
        target.check_data(data.train.len() as u64)?;
        let per_epoch = data.iterations_per_epoch(target.dataset.batch_size);
        let total = target.training.steps.iterations(per_epoch);
        let (rewind, _) = source.steps();
        if rewind >= total {
            return Err(LotteryError::Invalid(format!(
                "the ticket's rewind step {rewind} is not before the end of the target's training \
                 ({total} iterations)"
            )));
        }
        let run = store.run(lth_store::RunKind::Transplant, &hp);
        run.create()?;
        run.bind_hparams(&hp)?;
        Ok(Transplant {
            dir: run.replicate(source.replicate()),
            hp,
            source,
            data,
            per_epoch,
            total,
        })
    }

    /// The hyperparameters.
    pub fn hparams(&self) -> &TransplantHparams {
        &self.hp
    }

    /// The replicate's folder.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// The folder of a unit.
    pub fn unit_dir(&self, planted: Planted) -> RunDir {
        self.dir.child(planted.name())
    }

    /// The target network at its initialisation W0 (the replicate's seeds), ready to train.
    fn setup(&self) -> Result<Setup> {
        Ok(Setup::new(
            &self.hp.target(),
            self.source.replicate(),
            self.data,
        )?)
    }

    /// The moved state (every variable of the target) and mask, into `setup`'s fresh target
    /// network. The source's level must have its mask and level 0 its rewind point.
    pub fn moved(&self, setup: &Setup) -> Result<(Vec<(String, Tensor)>, Mask)> {
        let (rewind, _) = self.source.steps();
        let state = self.source.dense_weights_at(rewind)?;
        let mask = self.source.mask(self.hp.level)?.to_named();
        let target = &setup.model;
        let (state, mask) = match &self.hp.to {
            Destination::Elastic { model, map } => {
                let from = Depth::of(&self.hp.source.train.model.model)?;
                let to = Depth::of(model)?;
                let map = BlockMap::parse(map)?;
                let state = morph::morph(&state, &from, &to, &map)?;
                morph::check_fits(&state, target)?;
                (state, morph::morph(&mask, &from, &to, &map)?)
            }
            Destination::Transfer { output, .. } => {
                let weight = target.output_layer().to_owned();
                let fresh = target.state();
                let state: Vec<(String, Tensor)> = state
                    .into_iter()
                    .map(|(n, t)| {
                        if is_classifier(target, &n) && *output != Output::Copy {
                            let own = fresh
                                .iter()
                                .find(|(f, _)| *f == n)
                                .map(|(_, t)| t.copy())
                                .unwrap_or(t);
                            (n, own)
                        } else {
                            (n, t)
                        }
                    })
                    .collect();
                check_shapes(&state, target)?;
                let mask = mask
                    .into_iter()
                    .map(|(n, m)| {
                        if n == weight && *output == Output::Reinit {
                            // Dense, in the target's shape (the class counts may differ).
                            let ones = fresh.iter().find(|(f, _)| *f == n).map_or_else(
                                || m.ones_like(),
                                |(_, t)| t.ones_like().to_kind(m.kind()),
                            );
                            (n, ones)
                        } else {
                            (n, m)
                        }
                    })
                    .collect();
                (state, mask)
            }
            // The same network: every variable and the whole mask, as they are.
            Destination::Optimizer(_) => (state, mask),
        };
        Ok((state, Mask::from_named(mask)?))
    }

    /// Trains one unit from the rewind step to the target's end, unless it is done.
    pub fn run(&self, planted: Planted, progress: &mut dyn Progress) -> Result<RunSummary> {
        let dir = self.unit_dir(planted);
        if let Some(s) = dir.done_summary::<RunSummary>()? {
            return Ok(s);
        }
        let mut setup = self.setup()?;
        let (state, ticket) = self.moved(&setup)?;
        let mask = match planted {
            Planted::Ticket => ticket,
            Planted::Random { seed } => random_like(&ticket, seed),
        };
        dir.create()?;
        self.source.record_made_from(&dir, self.hp.level)?;
        setup.model.load_state(&state)?;
        mask.save(&dir.join(lth_prune::MASK_FILE))?;
        setup.optimizer.set_mask(&mask)?;
        let every = self
            .hp
            .target()
            .training
            .eval_every
            .iterations(self.per_epoch);
        let plan = RunPlan {
            from: self.source.steps().0,
            to: self.total,
            eval_every: if every == 0 { self.per_epoch } else { every },
            keep: Vec::new(),
            flops: None,
            save_final_mask: false,
        };
        Ok(run_resumable(
            &dir,
            &mut setup,
            &plan,
            &mut Hooks::none(),
            progress,
        )?)
    }
}

/// Whether `name` is a variable of `model`'s classifier (its output layer's weight or bias).
fn is_classifier(model: &lth_models::Model, name: &str) -> bool {
    let weight = model.output_layer();
    let layer = weight.strip_suffix("weight").unwrap_or(weight);
    name.strip_prefix(layer)
        .is_some_and(|rest| rest == "weight" || rest == "bias")
}

/// Every moved tensor has the target's shape: an input of another size or channel count shows up
/// here, naming the layer.
fn check_shapes(state: &[(String, Tensor)], target: &lth_models::Model) -> Result<()> {
    for (name, var) in target.state() {
        if let Some((_, t)) = state.iter().find(|(n, _)| *n == name)
            && t.size() != var.size()
        {
            return Err(LotteryError::Invalid(format!(
                "the ticket does not fit `{}` on this data: {name} is {:?} in the ticket and \
                 {:?} in the target (an input of another shape?)",
                target.name(),
                t.size(),
                var.size()
            )));
        }
    }
    Ok(())
}
