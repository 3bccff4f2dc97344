//! What a target's rows measure: the [`Experiment`] trait and the registry of kinds.

use std::collections::BTreeMap;

use lth_data::DatasetInfo;
use lth_report::Summary;
use lth_rewind::{Lottery, LotteryHparams, TransplantHparams};
use lth_store::Store;
use lth_train::{Data, EarlyBirdHparams, Progress, SparseHparams, SupermaskHparams};

use crate::{
    EarlyBirdTickets, LayerCollapse, LearnedSupermask, LotteryCurve, PruneAtInit, Result,
    SparseTraining, Stability, Supermask, Transplanted,
};

/// What one replicate of a row measured: values by metric, one per sample of the replicate.
pub type Measured = BTreeMap<String, Vec<f64>>;

/// One replicate of a row: its hyperparameters and lottery (levels `0..=level` are trained
/// before `measure` is called, for experiments that train), the level the row reports, and the
/// samples to take in it.
#[derive(Debug)]
pub struct Unit<'a, 'd> {
    /// `None` for experiments that do not train ([`Experiment::trains`]).
    pub lottery: Option<&'a Lottery<'d>>,
    pub hp: &'a LotteryHparams,
    /// How the row trains sparse from scratch (`--sparse` flags), for the experiments that do.
    pub sparse: Option<&'a SparseHparams>,
    /// Where the row moves its ticket, for the experiments that do.
    pub transplant: Option<&'a TransplantHparams>,
    /// The row's Early-Bird search (the paper's defaults unless its flags say otherwise).
    pub early_bird: &'a EarlyBirdHparams,
    /// The row's learned supermask (`--supermask` flags), for the experiments that learn one.
    pub supermask: Option<&'a SupermaskHparams>,
    /// How many compatible runs of the measurement may train at once, packed into one network.
    pub pack: usize,
    /// The data the ticket moves to (the row's own for a depth move).
    pub target_data: Option<&'d Data>,
    /// The run store the row trains in.
    pub store: &'a Store,
    pub replicate: u64,
    /// The row's data; `None` when the experiment said the row needs none
    /// ([`Experiment::needs_data`]).
    pub data: Option<&'d Data>,
    /// The row's dataset (shapes and classes, also without its files).
    pub info: &'static DatasetInfo,
    pub level: u64,
    pub samples: u64,
}

impl Unit<'_, '_> {
    /// The lottery of an experiment that trains.
    pub fn lottery(&self) -> Result<&Lottery<'_>> {
        self.lottery.ok_or_else(|| {
            crate::ReproError::Invalid("this experiment was given no lottery".into())
        })
    }
}

/// A kind of measurement (`experiment = "..."` in a spec). Rows are lotteries: a row's flags are
/// `lth lottery` flags, and the harness trains the levels a row needs before it measures.
pub trait Experiment {
    /// The name a spec gives it.
    fn kind(&self) -> &'static str;
    /// Every metric it measures or derives, for checking specs and snapshot tables.
    fn metrics(&self) -> &'static [&'static str];
    /// Whether rows are lotteries whose levels `0..=level` the harness trains first (default);
    /// `false` for measurements at initialisation.
    fn trains(&self) -> bool {
        true
    }
    /// Whether a row needs its dataset's files (default); a row that does not runs without them.
    fn needs_data(&self, _hp: &LotteryHparams) -> bool {
        true
    }
    /// Whether a row's hyperparameters and level make sense for this kind (checked for every row
    /// at every scale before anything trains); the reason if not.
    fn check_row(&self, _hp: &LotteryHparams, _level: u64) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Whether a row's sparse-training flags fit this kind; by default a row has none.
    fn check_sparse(&self, sparse: Option<&SparseHparams>) -> std::result::Result<(), String> {
        match sparse {
            None => Ok(()),
            Some(_) => Err(format!(
                "--sparse flags belong to sparse_training rows, not {}",
                self.kind()
            )),
        }
    }
    /// Whether a row's destination flags fit this kind; by default a row has none.
    fn check_transplant(
        &self,
        transplant: Option<&TransplantHparams>,
    ) -> std::result::Result<(), String> {
        match transplant {
            None => Ok(()),
            Some(_) => Err(format!(
                "--target-model, --target-dataset, --map and --output belong to elastic and \
                 transfer rows, not {}",
                self.kind()
            )),
        }
    }
    /// Whether a row's Early-Bird flags fit this kind; by default a row gives none.
    fn check_early_bird(
        &self,
        _early_bird: &EarlyBirdHparams,
        given: bool,
    ) -> std::result::Result<(), String> {
        if given {
            Err(format!(
                "--eb-ratios, --eb-window, --eb-epsilon, --slimming and --eb-stop belong to \
                 early_bird rows, not {}",
                self.kind()
            ))
        } else {
            Ok(())
        }
    }
    /// Whether a row's learned-supermask flags fit this kind; by default a row has none.
    fn check_supermask(
        &self,
        supermask: Option<&SupermaskHparams>,
    ) -> std::result::Result<(), String> {
        match supermask {
            None => Ok(()),
            Some(_) => Err(format!(
                "--supermask, --keep and --supermask-weights belong to learned_supermask rows, \
                 not {}",
                self.kind()
            )),
        }
    }
    /// Measures one replicate, training (through the run store) whatever else it needs.
    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured>;
    /// The plain runs (no hooks: a folder, weights, mask, data order, plan) of one replicate's
    /// measurement that are not done, for the harness to train across the row's replicates, up
    /// to `--pack` compatible ones in one packed network, before it measures. They are runs of
    /// `unit.hp.train` on `unit.data`. By default none: `measure` trains what it needs.
    fn jobs(&self, _unit: &Unit) -> Result<Vec<lth_train::Job>> {
        Ok(Vec::new())
    }
    /// How many independent parts the training of one replicate's measurement splits into once
    /// its levels are trained (a Slurm grid runs each part as its own task): one by default.
    fn parts(&self, _samples: u64) -> u64 {
        1
    }
    /// Trains part `part` (from 0) of a replicate's measurement through the run store, so that
    /// [`Experiment::measure`] later finds it done; by default the whole measurement.
    fn train_part(&self, unit: &Unit, _part: u64, progress: &mut dyn Progress) -> Result<()> {
        self.measure(unit, progress).map(drop)
    }
    /// Metrics computed from the row's summaries over replicates (ratios of means), shown with
    /// n = 1. None by default.
    fn derived(&self, _summaries: &BTreeMap<String, Summary>) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// Every kind of experiment: the one list a spec's `experiment` is looked up in.
fn all() -> Vec<Box<dyn Experiment>> {
    vec![
        Box::new(Stability),
        Box::new(LotteryCurve),
        Box::new(PruneAtInit),
        Box::new(LayerCollapse),
        Box::new(SparseTraining),
        Box::new(Transplanted::ELASTIC),
        Box::new(Transplanted::TRANSFER),
        Box::new(Supermask),
        Box::new(EarlyBirdTickets),
        Box::new(LearnedSupermask),
    ]
}

/// The names of every kind.
pub fn kinds() -> Vec<&'static str> {
    all().iter().map(|e| e.kind()).collect()
}

/// The experiment of a kind.
pub fn experiment(kind: &str) -> Option<Box<dyn Experiment>> {
    all().into_iter().find(|e| e.kind() == kind)
}

/// The mean of each metric's samples: one value per metric for the replicate.
pub(crate) fn replicate_means(m: &Measured) -> BTreeMap<String, f64> {
    m.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}
