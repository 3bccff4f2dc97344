//! Pruning at initialisation of a training run: score the initial weights W0 once, keep the mask,
//! train the subnetwork.

use serde::{Deserialize, Serialize};

use lth_prune::{LAYERS_FILE, LayerCount, MASK_FILE, Mask, Method, PaiOptions};
use lth_store::{CsvLog, RunDir, RunKind};

use crate::{
    Data, Hooks, Progress, Result, RunSummary, Setup, TrainError, TrainHparams, run_resumable,
};

/// A training run pruned at initialisation: what `lth train --prune-at-init` stores (folder
/// `pai_<hash>`), and the unit the pruning-at-initialisation reproductions train.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrunedRun {
    pub train: TrainHparams,
    pub prune_at_init: Option<PaiHparams>,
}

/// Trains replicate `replicate` of `run` in `dir`: the mask is computed from W0 and saved
/// (`mask.safetensors`, with the per-layer kept counts in `layers.csv`) before the first step, and
/// read back when an interrupted run resumes. Without pruning, trains the dense network.
pub fn train_pruned(
    dir: &RunDir,
    run: &PrunedRun,
    replicate: u64,
    data: &Data,
    progress: &mut dyn Progress,
) -> Result<(RunSummary, Option<Mask>)> {
    let hp = &run.train;
    let mut setup = Setup::new(hp, replicate, data)?;
    let mask = match &run.prune_at_init {
        None => None,
        Some(pai) => {
            let path = dir.join(MASK_FILE);
            let order = setup.model.prunable().to_vec();
            // The mask of an interrupted run is reused only when it is readable and keeps the
            // counts its layers.csv recorded; otherwise it is made again (pruning is seeded, so
            // it is the same mask).
            let kept = path
                .exists()
                .then(|| Mask::load(&path).ok())
                .flatten()
                .filter(|m| {
                    CsvLog::<LayerCount>::new(dir.join(LAYERS_FILE))
                        .load()
                        .is_ok_and(|mut rows| {
                            rows.sort_by(|a, b| a.name.cmp(&b.name));
                            rows == m.counts()
                        })
                });
            let mask = match kept {
                Some(mask) => mask,
                None => {
                    let mask = pai.prune(&setup, data, hp, replicate)?;
                    std::fs::create_dir_all(dir.path()).map_err(|e| {
                        TrainError::Invalid(format!("{}: {e}", dir.path().display()))
                    })?;
                    CsvLog::<LayerCount>::new(dir.join(LAYERS_FILE))
                        .save(&mask.counts_in(&order))?;
                    mask.save(&path)?;
                    mask
                }
            };
            setup.optimizer.set_mask(&mask)?;
            Some(mask)
        }
    };
    let plan = setup.plan(hp);
    let summary = run_resumable(dir, &mut setup, &plan, &mut Hooks::none(), progress)?;
    Ok((summary, mask))
}

/// How a run is pruned before its first step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaiHparams {
    pub method: Method,
    /// Fraction of the prunable weights removed, in [0, 1).
    pub sparsity: f64,
    /// Examples in the scoring batch of SNIP and GraSP (default: SNIP the run's batch size,
    /// GraSP 10 per class). GraSP's batch is class-balanced: this many divided by the classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u64>,
    /// SynFlow's rounds.
    #[serde(default = "default_rounds")]
    pub rounds: u32,
}

fn default_rounds() -> u32 {
    100
}

impl PaiHparams {
    /// `method` to `sparsity` with the papers' settings.
    pub fn new(method: Method, sparsity: f64) -> PaiHparams {
        PaiHparams {
            method,
            sparsity,
            batch: None,
            rounds: default_rounds(),
        }
    }

    /// Checks the settings against the run, naming the flag.
    pub fn validate(&self, hp: &TrainHparams) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        if !(0.0..1.0).contains(&self.sparsity) {
            return bad(format!(
                "--sparsity must be in [0, 1) (the fraction of prunable weights removed), got {}",
                self.sparsity
            ));
        }
        if self.batch == Some(0) {
            return bad("--prune-batch must be at least 1".into());
        }
        if self.batch.is_some() && !self.method.needs_data() {
            return bad(format!(
                "--prune-batch was given, but {} scores without data",
                self.method
            ));
        }
        if self.rounds == 0 {
            return bad("SynFlow's rounds must be at least 1".into());
        }
        if self.method.needs_data() && hp.dataset.dataset.is_empty() {
            return bad(format!("{} needs a dataset to score with", self.method));
        }
        Ok(())
    }

    /// Checks the scoring batch against the training split's `examples`.
    pub fn check_data(&self, examples: u64) -> Result<()> {
        match self.batch {
            Some(b) if b > examples => Err(TrainError::Invalid(format!(
                "--prune-batch {b} is larger than the {examples} training examples (after the \
                 validation split and --subset)"
            ))),
            _ => Ok(()),
        }
    }

    /// The mask of `setup`'s model at its current weights (W0 for a fresh setup of replicate
    /// `replicate` of `hp`): see [`PaiHparams::prune_model`].
    pub fn prune(
        &self,
        setup: &Setup,
        data: &Data,
        hp: &TrainHparams,
        replicate: u64,
    ) -> Result<Mask> {
        self.prune_model(&setup.model, data.info, Some(data), hp, replicate)
    }

    /// The mask of `model` (inputs as `info` describes them) at its current weights, scored on
    /// the training split of `data` in the epoch-0 data order of replicate `replicate` of `hp`:
    /// SNIP takes the first examples, GraSP the first of each class (`data` may be `None` for
    /// the data-free methods). Random scores use the replicate's initialisation seed. The model
    /// is left as it was.
    pub fn prune_model(
        &self,
        model: &lth_models::Model,
        info: &lth_data::DatasetInfo,
        data: Option<&Data>,
        hp: &TrainHparams,
        replicate: u64,
    ) -> Result<Mask> {
        let (data_order_seed, seed) = (hp.data_order_seed(replicate), hp.init_seed(replicate));
        let mask = Mask::ones(&model.prunable_tensors());
        let batch = match (self.method.needs_data(), data) {
            (false, _) => None,
            (true, Some(data)) => {
                Some(self.scoring_batch(data, hp.dataset.batch_size, data_order_seed)?)
            }
            (true, None) => {
                return Err(TrainError::Invalid(format!(
                    "{} needs a dataset to score with",
                    self.method
                )));
            }
        };
        let opts = PaiOptions {
            rounds: self.rounds,
            ..PaiOptions::new(&info.shape, seed)
        };
        let batch = batch.as_ref().map(|b| (&b.x, &b.y));
        Ok(self
            .method
            .prune(model, &mask, self.sparsity, batch, &opts)?)
    }

    fn scoring_batch(
        &self,
        data: &Data,
        batch_size: u64,
        data_order_seed: u64,
    ) -> Result<lth_data::Batch> {
        let n = data.train.len() as usize;
        let order = lth_rng::permutation(n, data_order_seed, lth_data::loader::DATA_ORDER, 0);
        let classes = data.info.num_classes;
        let chosen: Vec<i64> = match self.method {
            Method::Grasp => {
                let per_class = self.batch.map_or(10, |b| (b as i64 / classes).max(1));
                let labels = data.train.labels();
                let mut taken = vec![0i64; classes as usize];
                let mut out = Vec::new();
                for &i in &order {
                    let c = labels[i as usize] as usize;
                    if taken[c] < per_class {
                        taken[c] += 1;
                        out.push(i);
                    }
                }
                if let Some(c) = taken.iter().position(|&t| t < per_class) {
                    return Err(TrainError::Invalid(format!(
                        "GraSP needs {per_class} training examples of every class; class {c} has {}",
                        taken[c]
                    )));
                }
                out
            }
            _ => {
                let b = self.batch.unwrap_or(batch_size).min(n as u64) as usize;
                order[..b].to_vec()
            }
        };
        Ok(data.train.examples(&chosen)?)
    }
}

// The method's flags and its place in the registry.

#[cfg(feature = "clap")]
/// Flags of pruning at initialisation (`lth train`, and `lth lottery` for its level 1).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PaiFlags {
    /// Prune once at initialisation: snip, grasp, synflow, magnitude or random.
    #[arg(long)]
    pub prune_at_init: Option<lth_prune::Method>,
    /// Fraction of the prunable weights removed, in [0, 1): by --prune-at-init, by --sparse from
    /// the start, or by --gmp at its end.
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

#[cfg(feature = "clap")]
impl PaiFlags {
    /// The pruning these flags ask for (`None`: no pruning at initialisation), checked against
    /// the run.
    pub fn resolve(&self, hp: &TrainHparams) -> Result<Option<PaiHparams>> {
        match (self.prune_at_init, self.sparsity) {
            (None, None) if self.prune_batch.is_none() && self.prune_rounds.is_none() => Ok(None),
            (None, _) => Err(TrainError::Invalid(
                "--sparsity needs --prune-at-init or --sparse; --prune-batch and --prune-rounds \
                 need --prune-at-init"
                    .into(),
            )),
            (Some(m), None) => Err(TrainError::Invalid(format!(
                "--prune-at-init {m} needs --sparsity (the fraction of weights removed)"
            ))),
            (Some(m), Some(s)) => {
                let mut pai = PaiHparams {
                    batch: self.prune_batch,
                    ..PaiHparams::new(m, s)
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

#[cfg(feature = "clap")]
impl crate::method::MethodFlags for PaiFlags {
    fn asked(&self) -> Option<String> {
        self.prune_at_init.map(|m| format!("--prune-at-init {m}"))
    }

    fn takes(&self) -> crate::method::Takes {
        crate::method::Takes::Sparsity
    }

    /// `--sparsity` alone is judged by the registry, which knows whether another method took it.
    fn method(
        &self,
        _shared: crate::method::Shared,
        hp: &TrainHparams,
    ) -> Result<Option<Box<dyn crate::Method>>> {
        if self.prune_at_init.is_none() {
            if self.prune_batch.is_some() || self.prune_rounds.is_some() {
                return Err(TrainError::Invalid(
                    "--prune-batch and --prune-rounds need --prune-at-init".into(),
                ));
            }
            return Ok(None);
        }
        Ok(self.resolve(hp)?.map(|pai| {
            Box::new(PrunedRun {
                train: hp.clone(),
                prune_at_init: Some(pai),
            }) as Box<dyn crate::Method>
        }))
    }
}

impl crate::Method for PrunedRun {
    fn flag(&self) -> String {
        self.prune_at_init
            .as_ref()
            .map_or_else(String::new, |p| format!("--prune-at-init {}", p.method))
    }

    fn kind(&self) -> RunKind {
        RunKind::PruneAtInit
    }

    fn train_hparams(&self) -> &TrainHparams {
        &self.train
    }

    fn describe(&self) -> String {
        self.prune_at_init.as_ref().map_or_else(String::new, |p| {
            format!(
                ", pruned at initialisation by {} to sparsity {}",
                p.method, p.sparsity
            )
        })
    }

    /// The scoring batch against the training examples.
    fn check_data(&self, data: &Data) -> Result<()> {
        match &self.prune_at_init {
            Some(p) => p.check_data(data.train.len() as u64),
            None => Ok(()),
        }
    }

    fn train(
        &self,
        dir: &RunDir,
        replicate: u64,
        data: &Data,
        progress: &mut dyn Progress,
    ) -> Result<(RunSummary, Option<Mask>)> {
        train_pruned(dir, self, replicate, data, progress)
    }

    fn report(&self, dir: &RunDir, _summary: &RunSummary) -> Vec<String> {
        let counts = match CsvLog::<LayerCount>::new(dir.join(LAYERS_FILE)).load() {
            Ok(c) if !c.is_empty() => c,
            _ => return Vec::new(),
        };
        let (kept, total) = counts
            .iter()
            .fold((0, 0), |(k, t), c| (k + c.kept, t + c.total));
        let mut lines = vec![format!(
            "  pruned at initialisation: {kept} of {total} prunable weights kept ({:.2}%)",
            100.0 * kept as f64 / total.max(1) as f64
        )];
        lines.extend(
            counts
                .iter()
                .map(|c| crate::method::layer_line(&c.name, c.kept, c.total)),
        );
        lines.push("  files: mask.safetensors, layers.csv (kept per layer)".into());
        lines
    }
}
