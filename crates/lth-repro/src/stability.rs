//! `experiment = "stability"`: data-order and pruning stability of IMP and random subnetworks at
//! one lottery level (Stabilizing the LTH, Figure 3).

use std::collections::BTreeMap;

use lth_report::Summary;
use lth_train::Progress;

use crate::{Experiment, Measured, Result, Unit};

/// Figure 3 of "Stabilizing the Lottery Ticket Hypothesis": per sample, the L2 distance between
/// two copies of the IMP (and of a random) subnetwork trained with different data orders, the
/// distance between each subnetwork and the full network trained with the same order, and the
/// subnetworks' test accuracies. Every seed is the replicate's own (`lth_stability`).
#[derive(Debug, Clone, Copy)]
pub struct Stability;

const MEASURED: [(&str, &str, &str); 6] = [
    ("data_order_imp", "data_order", "imp"),
    ("data_order_random", "data_order", "random"),
    ("pruning_imp", "pruning", "imp"),
    ("pruning_random", "pruning", "random"),
    ("accuracy_imp", "data_order", "imp"),
    ("accuracy_random", "data_order", "random"),
];

impl Experiment for Stability {
    fn kind(&self) -> &'static str {
        "stability"
    }

    fn metrics(&self) -> &'static [&'static str] {
        &[
            "weights_remaining",
            "data_order_imp",
            "data_order_random",
            "comp_data_order",
            "pruning_imp",
            "pruning_random",
            "comp_pruning",
            "accuracy_imp",
            "accuracy_random",
        ]
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let rows = lth_stability::stability(
            unit.lottery()?,
            unit.level,
            unit.samples,
            unit.pack,
            progress,
        )?;
        let mut m = Measured::new();
        for (metric, analysis, sub) in MEASURED {
            let values = rows
                .iter()
                .filter(|r| r.analysis == analysis && r.subnetwork == sub)
                .map(|r| {
                    if metric.starts_with("accuracy") {
                        r.test_accuracy_a
                    } else {
                        r.l2
                    }
                })
                .collect();
            m.samples(metric.to_owned(), values);
        }
        if let Some(r) = rows.first() {
            m.set("weights_remaining", r.weights_remaining);
        }
        Ok(m)
    }

    /// Every sample's copies, which the harness packs across replicates.
    fn jobs(&self, unit: &Unit) -> Result<Vec<lth_train::Job>> {
        let lottery = unit.lottery()?;
        let copies = lth_stability::level_copies(lottery.replicate(), unit.level, unit.samples);
        Ok(lth_stability::copy_jobs(lottery, &copies)?)
    }

    /// Each sample's five copies are one part: they need only the level's mask.
    fn parts(&self, samples: u64) -> u64 {
        samples
    }

    fn train_part(&self, unit: &Unit, part: u64, progress: &mut dyn Progress) -> Result<()> {
        lth_stability::train_sample(unit.lottery()?, unit.level, part, unit.pack, progress)?;
        Ok(())
    }

    /// The paper's Comp: the random subnetworks' mean distance over the IMP subnetworks'.
    fn derived(&self, s: &BTreeMap<String, Summary>) -> Vec<(String, f64)> {
        let ratio = |a: &str, b: &str| lth_stability::comp(s.get(a)?.mean, s.get(b)?.mean);
        [
            (
                "comp_data_order",
                ratio("data_order_random", "data_order_imp"),
            ),
            ("comp_pruning", ratio("pruning_random", "pruning_imp")),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
        .collect()
    }
}
