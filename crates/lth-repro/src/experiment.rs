//! What a target's rows measure: the [`Experiment`] trait and the registry of kinds.

use std::collections::BTreeMap;

use lth_report::Summary;
use lth_rewind::Lottery;
use lth_train::Progress;

use crate::{LotteryCurve, Result, Stability};

/// What one replicate of a row measured: values by metric, one per sample of the replicate.
pub type Measured = BTreeMap<String, Vec<f64>>;

/// One replicate of a row: its lottery (levels `0..=level` are trained before `measure` is
/// called), the level the row reports, and the samples to take in it.
#[derive(Debug)]
pub struct Unit<'a, 'd> {
    pub lottery: &'a Lottery<'d>,
    pub level: u64,
    pub samples: u64,
}

/// A kind of measurement (`experiment = "..."` in a spec). Rows are lotteries: a row's flags are
/// `lth lottery` flags, and the harness trains the levels a row needs before it measures.
pub trait Experiment {
    /// The name a spec gives it.
    fn kind(&self) -> &'static str;
    /// Every metric it measures or derives, for checking specs and snapshot tables.
    fn metrics(&self) -> &'static [&'static str];
    /// Measures one replicate, training (through the run store) whatever else it needs.
    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured>;
    /// Metrics computed from the row's summaries over replicates (ratios of means), shown with
    /// n = 1. None by default.
    fn derived(&self, _summaries: &BTreeMap<String, Summary>) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// Every kind of experiment: the one list a spec's `experiment` is looked up in.
fn all() -> Vec<Box<dyn Experiment>> {
    vec![Box::new(Stability), Box::new(LotteryCurve)]
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
