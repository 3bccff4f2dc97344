//! What a target's rows measure: the [`Experiment`] trait and the registry of kinds.

use std::collections::BTreeMap;

use lth_data::DatasetInfo;
use lth_lottery::flags::LotteryFlags;
use lth_lottery::{Lottery, LotteryHparams, TransplantHparams};
use lth_report::Summary;
use lth_store::Store;
use lth_train::{
    AdversarialHparams, Data, EarlyBirdHparams, GmpHparams, Progress, SparseHparams,
    SupermaskHparams,
};

use crate::Result;

/// What one replicate of a row measured: each metric's values, one per sample of the replicate,
/// under the names its kind declares ([`Experiment::metrics`]); the harness refuses a replicate
/// that measured a name its kind does not declare, so a misspelt metric is an error, never a cell
/// that silently never runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured(BTreeMap<String, Vec<f64>>);

impl Measured {
    pub fn new() -> Measured {
        Measured::default()
    }

    /// The one value of `metric` in this replicate.
    pub fn set(&mut self, metric: impl Into<String>, value: f64) {
        self.0.insert(metric.into(), vec![value]);
    }

    /// Every sample's value of `metric` in this replicate.
    pub fn samples(&mut self, metric: impl Into<String>, values: Vec<f64>) {
        self.0.insert(metric.into(), values);
    }

    /// A finished run's accuracies under `prefix`: `<prefix>_final`, and where the run kept a
    /// validation split `<prefix>_early_stop` (the test accuracy at the minimum validation loss)
    /// and `<prefix>_stop_iteration` (its step): the names `metric_names!` declares.
    pub fn run(&mut self, prefix: &str, s: &lth_train::RunSummary) {
        self.set(format!("{prefix}_final"), s.final_test_accuracy);
        if let (Some(acc), Some(step)) = (s.test_accuracy_at_min_val_loss, s.min_val_loss_step) {
            self.set(format!("{prefix}_early_stop"), acc);
            self.set(format!("{prefix}_stop_iteration"), step as f64);
        }
    }

    /// The values of `metric`, if measured.
    pub fn get(&self, metric: &str) -> Option<&[f64]> {
        self.0.get(metric).map(Vec::as_slice)
    }

    /// Every metric with its values, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[f64])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The first metric not among `declared`, if any.
    pub fn undeclared(&self, declared: &[&str]) -> Option<&str> {
        self.0
            .keys()
            .map(String::as_str)
            .find(|k| !declared.contains(k))
    }

    /// One line per metric, its name and its values separated by tabs, each value in the
    /// shortest form that reads back to the same bits (`NaN` and `inf` included).
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| {
                std::iter::once(k.clone())
                    .chain(v.iter().map(|x| format!("{x:?}")))
                    .collect::<Vec<_>>()
                    .join("\t")
                    + "\n"
            })
            .collect()
    }

    /// Reads what [`Measured::to_text`] wrote; a line that is not a name and numbers is an error
    /// naming it.
    pub fn from_text(text: &str) -> std::result::Result<Measured, String> {
        let mut m = Measured::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let mut fields = line.split('\t');
            let name = fields.next().unwrap_or_default();
            let values = fields
                .map(|f| {
                    f.parse::<f64>()
                        .map_err(|_| format!("line {}: `{f}` is not a number", i + 1))
                })
                .collect::<std::result::Result<Vec<f64>, String>>()?;
            if name.is_empty() {
                return Err(format!("line {}: no metric name", i + 1));
            }
            m.samples(name, values);
        }
        Ok(m)
    }
}

impl<K: Into<String>> FromIterator<(K, Vec<f64>)> for Measured {
    fn from_iter<I: IntoIterator<Item = (K, Vec<f64>)>>(iter: I) -> Measured {
        Measured(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// A row's flags beyond `lth lottery`'s, resolved: each is `Some` only where the row's kind takes
/// it and the row gives it.
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

/// A row's hyperparameters: its lottery and its flags beyond `lth lottery`'s.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub hp: LotteryHparams,
    pub methods: MethodFlags,
}

impl Resolved {
    /// The lottery of `lottery`'s flags with `methods`.
    pub fn of(lottery: &LotteryFlags, methods: MethodFlags) -> Result<Resolved> {
        Ok(Resolved {
            hp: lottery.resolve()?,
            methods,
        })
    }
}

/// The group of flags a kind's rows take beyond `lth lottery`'s (one clap group, declared in the
/// kind's file), and how it resolves.
pub trait RowGroup: clap::Args + clap::FromArgMatches + Clone + std::fmt::Debug + 'static {
    /// The row's hyperparameters from `lth lottery`'s flags and this group's, at the level the
    /// row reports (a group may take `--sparsity` from the lottery's level 1).
    fn resolve(&self, lottery: &LotteryFlags, level: u64) -> Result<Resolved>;
}

/// No flags beyond `lth lottery`'s: the rows of most kinds.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LotteryOnly {}

impl RowGroup for LotteryOnly {
    fn resolve(&self, lottery: &LotteryFlags, _level: u64) -> Result<Resolved> {
        Resolved::of(lottery, MethodFlags::default())
    }
}

/// The lottery of a row whose method reads `--sparsity` (when it asked for one): the flag is the
/// method's, not a level 1 pruned at initialisation.
pub(crate) fn lottery_without_sparsity(
    lottery: &LotteryFlags,
    taken: bool,
) -> Result<LotteryHparams> {
    let mut lottery = lottery.clone();
    if taken {
        lottery.level1.sparsity = None;
    }
    Ok(lottery.resolve()?)
}

/// A kind's row command: `lth lottery`'s flags and the kind's own group, parsed at once, so a flag
/// that only another kind takes is refused by the parser, by name.
#[derive(clap::Parser, Debug, Clone)]
#[command(no_binary_name = true)]
pub struct RowCommand<G: RowGroup> {
    #[command(flatten)]
    pub lottery: LotteryFlags,
    #[command(flatten)]
    pub group: G,
}

/// A row's parsed flags, whatever its kind's group.
pub trait RowFlags: std::fmt::Debug {
    /// The row's hyperparameters at `level`.
    fn resolve(&self, level: u64) -> Result<Resolved>;
    /// The same flags on another dataset.
    fn on(&self, dataset: &str) -> Box<dyn RowFlags>;
    /// The same flags for replicate `r` (`--replicate`, which seeds default to).
    fn for_replicate(&self, r: u64) -> Box<dyn RowFlags>;
    /// The dataset the flags name.
    fn dataset(&self) -> Option<&str>;
}

impl<G: RowGroup> RowFlags for RowCommand<G> {
    fn resolve(&self, level: u64) -> Result<Resolved> {
        self.group.resolve(&self.lottery, level)
    }

    fn on(&self, dataset: &str) -> Box<dyn RowFlags> {
        let mut moved = self.clone();
        moved.lottery.train.dataset = Some(dataset.to_owned());
        Box::new(moved)
    }

    fn for_replicate(&self, r: u64) -> Box<dyn RowFlags> {
        let mut moved = self.clone();
        moved.lottery.replicate = r;
        Box::new(moved)
    }

    fn dataset(&self) -> Option<&str> {
        self.lottery.train.dataset.as_deref()
    }
}

/// Parses a row's argument vector as `lth lottery`'s flags and the group `G`.
fn parse_row<G: RowGroup>(argv: &[String]) -> std::result::Result<Box<dyn RowFlags>, clap::Error> {
    use clap::Parser as _;
    RowCommand::<G>::try_parse_from(argv).map(|c| Box::new(c) as Box<dyn RowFlags>)
}

/// A parser of rows' argument vectors.
type ParseRow = fn(&[String]) -> std::result::Result<Box<dyn RowFlags>, clap::Error>;

/// How a kind's rows are parsed: `lth lottery`'s flags and the kind's group, and what they are in
/// words (for an error that refuses another kind's flag).
#[derive(Debug, Clone, Copy)]
pub struct Rows {
    parse: ParseRow,
    /// The flags the rows take, in words.
    pub takes: &'static str,
}

impl Rows {
    /// Rows of `lth lottery`'s flags and the group `G`, which `takes` says in words.
    pub fn of<G: RowGroup>(takes: &'static str) -> Rows {
        Rows {
            parse: parse_row::<G>,
            takes,
        }
    }

    /// Parses a row's argument vector.
    pub fn parse(&self, argv: &[String]) -> std::result::Result<Box<dyn RowFlags>, clap::Error> {
        (self.parse)(argv)
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
    /// How its rows' flags are parsed: `lth lottery`'s, and the group of its own it declares
    /// ([`RowGroup`]; none by default).
    fn rows(&self) -> Rows {
        Rows::of::<LotteryOnly>("lth lottery's flags")
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

/// The mean of each metric's samples: one value per metric for the replicate.
pub(crate) fn replicate_means(m: &Measured) -> BTreeMap<String, f64> {
    m.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{experiment, kinds};

    fn parse(kind: &str, flags: &[&str]) -> std::result::Result<Box<dyn RowFlags>, String> {
        let argv: Vec<String> = ["--model", "lenet_300_100"]
            .iter()
            .chain(flags)
            .map(|s| (*s).to_owned())
            .collect();
        experiment(kind)
            .unwrap()
            .rows()
            .parse(&argv)
            .map_err(|e| e.to_string())
    }

    fn checked(kind: &str, flags: &[&str]) -> std::result::Result<(), String> {
        let exp = experiment(kind).unwrap();
        let r = parse(kind, flags)?.resolve(1).map_err(|e| e.to_string())?;
        exp.check_methods(&r.methods)
    }

    /// A kind's rows take `lth lottery`'s flags and its own group only: another kind's flags are
    /// refused by the parser, by name; the kind that takes them checks them itself.
    #[test]
    fn method_flags_belong_to_their_kinds_only() {
        let e = parse("stability", &["--supermask", "bernoulli"]).unwrap_err();
        assert!(e.contains("unexpected argument '--supermask'"), "{e}");
        checked("learned_supermask", &["--supermask", "bernoulli"]).unwrap();
        let e = parse("learned_supermask", &["--eb-window", "3"]).unwrap_err();
        assert!(e.contains("unexpected argument '--eb-window'"), "{e}");
        checked("early_bird", &["--eb-window", "3"]).unwrap();
        let e = parse("sparse_training", &["--gmp"]).unwrap_err();
        assert!(e.contains("unexpected argument '--gmp'"), "{e}");
        // The groups resolve to their kind's field and nothing else.
        let r = parse("state_of_sparsity", &["--gmp", "--sparsity", "0.9"])
            .unwrap()
            .resolve(1)
            .unwrap();
        assert!(r.methods.gmp.is_some() && r.methods.sparse.is_none());
        // --sparsity is the method's, not a level 1 pruned at initialisation.
        assert!(r.hp.level1.is_none());
        // No flags: fine where none are needed, refused where the kind needs its own.
        checked("stability", &[]).unwrap();
        assert!(
            checked("sparse_training", &[])
                .unwrap_err()
                .contains("needs the sparse and sparsity flags")
        );
        assert!(
            checked("learned_supermask", &[])
                .unwrap_err()
                .contains("needs --supermask")
        );
        checked("early_bird", &[]).unwrap();
        assert!(
            checked("state_of_sparsity", &[])
                .unwrap_err()
                .contains("needs the gmp and sparsity flags")
        );
        // Every kind's row command is a valid clap command (no two groups share a flag).
        for kind in kinds() {
            parse(kind, &[]).unwrap();
        }
    }

    /// A replicate's measurement holds each metric's samples under its name, and names the
    /// first metric its kind does not declare (what the harness refuses).
    #[test]
    fn a_measurement_names_the_metric_its_kind_does_not_declare() {
        let mut m = Measured::new();
        m.set("imp_final", 0.9);
        m.samples("barrier", vec![0.1, 0.3]);
        assert_eq!(m.get("imp_final"), Some(&[0.9][..]));
        assert_eq!(replicate_means(&m)["barrier"], 0.2);
        assert_eq!(m.undeclared(&["imp_final", "barrier"]), None);
        m.set("imp_finale", 0.9);
        assert_eq!(m.undeclared(&["imp_final", "barrier"]), Some("imp_finale"));
        // Every kind declares the names its rows' cells may use, so the spec checks can refuse
        // the rest.
        for kind in kinds() {
            assert!(!experiment(kind).unwrap().metrics().is_empty(), "{kind}");
        }
    }

    /// A measurement written as text for a `--jobs` pool's judging run reads back to the same
    /// bits, NaN and infinities included; a value that is not a number is named with its line.
    #[test]
    fn a_measurement_reads_back_from_its_text_to_the_bit() {
        let mut m = Measured::new();
        m.samples(
            "barrier",
            vec![
                0.1,
                -0.0,
                1.0 / 3.0,
                f64::MIN_POSITIVE,
                1e300,
                f64::INFINITY,
            ],
        );
        m.set("imp_final", f64::NAN);
        m.samples("none", Vec::new());
        let back = Measured::from_text(&m.to_text()).unwrap();
        let bits = |m: &Measured| -> Vec<(String, Vec<u64>)> {
            m.iter()
                .map(|(k, v)| (k.to_owned(), v.iter().map(|x| x.to_bits()).collect()))
                .collect()
        };
        assert_eq!(bits(&back), bits(&m));
        assert_eq!(
            Measured::from_text("barrier\t0.1\nimp_final\tmost").unwrap_err(),
            "line 2: `most` is not a number"
        );
        assert_eq!(
            Measured::from_text("\t0.5").unwrap_err(),
            "line 1: no metric name"
        );
    }
}
