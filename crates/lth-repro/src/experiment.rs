//! What a target's rows measure: the [`Experiment`] trait and the registry of kinds.

use std::collections::BTreeMap;

use lth_data::DatasetInfo;
use lth_lottery::{Lottery, LotteryHparams, TransplantHparams};
use lth_report::Summary;
use lth_store::Store;
use lth_train::{
    AdversarialHparams, Data, EarlyBirdHparams, GmpHparams, Progress, SparseHparams,
    SupermaskHparams,
};

use crate::{
    EarlyBirdTickets, FastTickets, Generalized, GreedySelection, LayerCollapse, LearnedSupermask,
    LinearModeConnectivity, LotteryCurve, PruneAtInit, Result, Rewinding, SparseTraining,
    Stability, StateOfSparsity, Supermask, Transplanted, Tropical,
};

/// What one replicate of a row measured: values by metric, one per sample of the replicate.
pub type Measured = BTreeMap<String, Vec<f64>>;

/// A group of row flags beyond `lth lottery`'s, which one kind of experiment takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagGroup {
    /// `lth train --sparse` flags: sparse training from scratch.
    Sparse,
    /// A ticket's destination: another depth or another dataset.
    Transplant,
    /// The Early-Bird search.
    EarlyBird,
    /// A learned supermask.
    Supermask,
    /// `lth train --gmp` flags: gradual magnitude pruning.
    Gmp,
    /// `lth train --adversarial` flags: the attack of adversarial training.
    Adversarial,
    /// `--basis`: the basis a generalized ticket is sparse in.
    Basis,
}

impl FlagGroup {
    /// The group's flags, as an error names them.
    pub fn flags(self) -> &'static str {
        match self {
            FlagGroup::Sparse => "--sparse flags",
            FlagGroup::Transplant => {
                "--target-model, --target-dataset, --target-optimizer (and its --target-*), --map \
                 and --output"
            }
            FlagGroup::EarlyBird => {
                "--eb-ratios, --eb-window, --eb-epsilon, --slimming and --eb-stop"
            }
            FlagGroup::Supermask => "--supermask, --keep and --supermask-weights",
            FlagGroup::Gmp => "--gmp flags",
            FlagGroup::Adversarial => "--adversarial and --adv-* flags",
            FlagGroup::Basis => "--basis",
        }
    }

    /// The kinds whose rows take the group.
    pub fn kinds(self) -> &'static str {
        match self {
            FlagGroup::Sparse => "sparse_training",
            FlagGroup::Transplant => "elastic and transfer",
            FlagGroup::EarlyBird => "early_bird",
            FlagGroup::Supermask => "learned_supermask",
            FlagGroup::Gmp => "state_of_sparsity",
            FlagGroup::Adversarial => "fast_tickets",
            FlagGroup::Basis => "generalized",
        }
    }
}

/// A row's flags beyond `lth lottery`'s, resolved: each group is `Some` only where the row gives
/// one of its flags.
#[derive(Debug, Clone, Default)]
pub struct MethodFlags {
    pub sparse: Option<SparseHparams>,
    pub transplant: Option<TransplantHparams>,
    pub early_bird: Option<EarlyBirdHparams>,
    pub supermask: Option<SupermaskHparams>,
    pub gmp: Option<GmpHparams>,
    pub adversarial: Option<AdversarialHparams>,
    pub basis: Option<lth_train::flags::BasisKind>,
}

impl MethodFlags {
    /// The groups the row gives.
    pub fn given(&self) -> Vec<FlagGroup> {
        [
            (self.sparse.is_some(), FlagGroup::Sparse),
            (self.transplant.is_some(), FlagGroup::Transplant),
            (self.early_bird.is_some(), FlagGroup::EarlyBird),
            (self.supermask.is_some(), FlagGroup::Supermask),
            (self.gmp.is_some(), FlagGroup::Gmp),
            (self.adversarial.is_some(), FlagGroup::Adversarial),
            (self.basis.is_some(), FlagGroup::Basis),
        ]
        .into_iter()
        .filter_map(|(given, g)| given.then_some(g))
        .collect()
    }

    /// Whether these flags fit `exp`: no group but its own, and its own check.
    pub fn check(&self, exp: &dyn Experiment) -> std::result::Result<(), String> {
        if let Some(g) = self
            .given()
            .into_iter()
            .find(|&g| Some(g) != exp.flag_group())
        {
            return Err(format!(
                "{} belong to {} rows, not {}",
                g.flags(),
                g.kinds(),
                exp.kind()
            ));
        }
        exp.check_methods(self)
    }
}

/// One replicate of a row: its hyperparameters and lottery (levels `0..=level` are trained
/// before `measure` is called, for experiments that train), the level the row reports, and the
/// samples to take in it.
#[derive(Debug)]
pub struct Unit<'a, 'd> {
    /// `None` for experiments that do not train ([`Experiment::trains`]).
    pub lottery: Option<&'a Lottery<'d>>,
    pub hp: &'a LotteryHparams,
    /// The row's flags beyond `lth lottery`'s (only the group its kind takes can be given).
    pub methods: &'a MethodFlags,
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
    /// Values of α along an interpolation line (the scale's `points`, else the paper's 30).
    pub points: u64,
}

impl Unit<'_, '_> {
    /// The lottery of an experiment that trains.
    pub fn lottery(&self) -> Result<&Lottery<'_>> {
        self.lottery.ok_or_else(|| {
            crate::ReproError::Invalid("this experiment was given no lottery".into())
        })
    }

    /// The replicate's folder of the run `run` of `kind` (a method's run, an Early-Bird search):
    /// the store's `<kind>_<hash>/replicate_<r>`, the folder the CLI writes for the same flags,
    /// with the hyperparameters bound one level up as the CLI binds them. A run that an older
    /// version kept inside the lottery's replicate folder is moved there first.
    pub fn run_home(
        &self,
        kind: lth_store::RunKind,
        run: &dyn lth_train::method::Stored,
    ) -> Result<lth_store::RunDir> {
        let home = run.home_in(kind, self.store);
        let dir = home.replicate(self.replicate);
        if let (Some(lottery), Some(name)) = (self.lottery, home.path().file_name()) {
            dir.take_over(&lottery.dir().child(name))?;
        }
        home.create()?;
        run.bind_to(&home)?;
        Ok(dir)
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
    /// The group of row flags beyond `lth lottery`'s that this kind takes, if any: a row that
    /// gives another group is refused, naming its flags and the kinds that take them.
    fn flag_group(&self) -> Option<FlagGroup> {
        None
    }
    /// Whether a row's flags of its group make sense for this kind (a kind that needs them says
    /// so here); checked for every row at every scale, after the groups.
    fn check_methods(&self, _methods: &MethodFlags) -> std::result::Result<(), String> {
        Ok(())
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
        Box::new(StateOfSparsity),
        Box::new(Rewinding),
        Box::new(LinearModeConnectivity),
        Box::new(Tropical),
        Box::new(GreedySelection),
        Box::new(FastTickets),
        Box::new(Generalized),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A group of method flags is refused by every kind but its own, naming its flags and the
    /// kinds that take it; the kind that takes it checks it itself.
    #[test]
    fn method_flags_belong_to_their_kinds_only() {
        let supermask = MethodFlags {
            supermask: Some(SupermaskHparams::default()),
            ..MethodFlags::default()
        };
        assert_eq!(supermask.given(), vec![FlagGroup::Supermask]);
        let e = supermask.check(experiment("stability").unwrap().as_ref());
        assert_eq!(
            e.unwrap_err(),
            "--supermask, --keep and --supermask-weights belong to learned_supermask rows, not \
             stability"
        );
        supermask
            .check(experiment("learned_supermask").unwrap().as_ref())
            .unwrap();
        let early_bird = MethodFlags {
            early_bird: Some(EarlyBirdHparams::default()),
            ..MethodFlags::default()
        };
        assert!(
            early_bird
                .check(experiment("learned_supermask").unwrap().as_ref())
                .unwrap_err()
                .contains("belong to early_bird rows, not learned_supermask")
        );
        early_bird
            .check(experiment("early_bird").unwrap().as_ref())
            .unwrap();
        // No flags: fine where none are needed, refused where the kind needs its own.
        let none = MethodFlags::default();
        assert!(none.given().is_empty());
        none.check(experiment("stability").unwrap().as_ref())
            .unwrap();
        assert!(
            none.check(experiment("sparse_training").unwrap().as_ref())
                .unwrap_err()
                .contains("needs the sparse and sparsity flags")
        );
        assert!(
            none.check(experiment("learned_supermask").unwrap().as_ref())
                .unwrap_err()
                .contains("needs --supermask")
        );
        none.check(experiment("early_bird").unwrap().as_ref())
            .unwrap();
        assert!(
            none.check(experiment("state_of_sparsity").unwrap().as_ref())
                .unwrap_err()
                .contains("needs the gmp and sparsity flags")
        );
        let gmp = MethodFlags {
            gmp: Some(GmpHparams::new(0.9)),
            ..MethodFlags::default()
        };
        assert!(
            gmp.check(experiment("sparse_training").unwrap().as_ref())
                .unwrap_err()
                .contains("--gmp flags belong to state_of_sparsity rows, not sparse_training")
        );
    }
}
