//! `experiment = "rewinding"`: IMP with late rewinding (Stabilizing the LTH, Figures 4-5). A row is
//! one rewind point k of one network: its lottery is IMP rewound to W_k at every level, and the
//! row reports, at its level L, the IMP subnetwork, its random reinitialisation and the dense
//! network, beside the same lottery rewound to k = 0, with the data-order stability of both.

use lth_lottery::{Lottery, LotteryHparams};
use lth_stability::experiment::copy_seed;
use lth_stability::{CopySpec, Subnetwork, l2_distance, train_copies};
use lth_train::{Progress, Steps};

use crate::curve::{reinit, summary};
use crate::{Experiment, Measured, Result, Unit};

/// Per replicate, at the row's level L of the lottery rewound to its k:
/// - `imp_*`, `reinit_*`, `dense_*`: the IMP subnetwork, the same mask from fresh weights trained
///   over the same steps k..T (the `random-reinit` branch), and the dense network (level 0);
/// - `k0_*`: the IMP subnetwork of the same lottery rewound to k = 0 (the same hyperparameters but
///   the rewind point, hence the same folder as the k = 0 row's, trained once for all rows);
/// - `data_order_imp` and `data_order_k0`: the L2 distance between two copies of each subnetwork
///   trained from its rewind point with two data orders (the copies of `lth stability`, whose
///   folders they share), averaged over the samples.
///
/// Every claim of the paper is a comparison inside one row (late k against k = 0, against
/// reinitialisation, against dense), so each replicate contributes a matched pair.
#[derive(Debug, Clone, Copy)]
pub struct Rewinding;

const METRICS: &[&str] = &[
    "weights_remaining",
    "rewind_iteration",
    "rewind_fraction",
    "imp_final",
    "imp_early_stop",
    "imp_stop_iteration",
    "k0_final",
    "k0_early_stop",
    "k0_stop_iteration",
    "reinit_final",
    "reinit_early_stop",
    "reinit_stop_iteration",
    "dense_final",
    "dense_early_stop",
    "dense_stop_iteration",
    "data_order_imp",
    "data_order_k0",
];

/// Whether a row of a kind whose rows are rewind points (`kind` as its errors name it: "a
/// rewinding") makes sense: a pruned level, weights rewound.
pub(crate) fn check_rewound_row(
    kind: &str,
    hp: &LotteryHparams,
    level: u64,
) -> std::result::Result<(), String> {
    if level == 0 {
        return Err(format!(
            "{kind} row measures a pruned level: give level >= 1"
        ));
    }
    if hp.retrain != lth_lottery::Retrain::WeightRewinding {
        return Err(format!(
            "{kind} row rewinds the weights: drop --retrain (weight rewinding is the default)"
        ));
    }
    Ok(())
}

/// What every row of a rewind point reports of its lottery: the level's weights remaining, the
/// rewind iteration k, and the IMP subnetwork's (`imp_*`) and the dense network's (`dense_*`)
/// accuracies.
pub(crate) fn rewound_level(lottery: &Lottery, level: u64) -> Result<Measured> {
    let mut m = Measured::new();
    m.set("weights_remaining", lottery.mask(level)?.density());
    m.set("rewind_iteration", lottery.steps().0 as f64);
    m.run("imp", &summary(&lottery.level_dir(level))?);
    m.run("dense", &summary(&lottery.level_dir(0))?);
    Ok(m)
}

/// The row's lottery rewound to k = 0 (the same hyperparameters but the rewind point, hence the
/// k = 0 row's folder), its levels up to the row's trained where missing.
pub(crate) fn k0_sibling<'a>(
    unit: &Unit,
    lottery: &'a Lottery,
    progress: &mut dyn Progress,
) -> Result<Lottery<'a>> {
    let hp = LotteryHparams {
        rewind: Steps::default(),
        ..unit.hp.clone()
    };
    let sibling = Lottery::new(unit.store, hp, unit.replicate, lottery.data())?;
    for l in 0..=unit.level {
        if !sibling.level_done(l)? {
            sibling.run_level(l, progress)?;
        }
    }
    Ok(sibling)
}

/// The mean L2 distance between the two data-order copies of level `level`'s IMP subnetwork over
/// `samples` samples, training the copies not done yet.
fn data_order(
    lottery: &Lottery,
    level: u64,
    samples: u64,
    pack: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<f64>> {
    let r = lottery.replicate();
    let copies: Vec<CopySpec> = (0..2 * samples)
        .map(|j| CopySpec {
            level,
            subnetwork: Subnetwork::Imp,
            data_order_seed: copy_seed(r, j),
        })
        .collect();
    let trained = train_copies(lottery, &copies, pack, progress)?;
    let mask = lottery.mask(level)?;
    trained
        .chunks(2)
        .map(|pair| Ok(l2_distance(&pair[0].weights, &pair[1].weights, &mask)?))
        .collect()
}

impl Experiment for Rewinding {
    fn kind(&self) -> &'static str {
        "rewinding"
    }

    fn metrics(&self) -> &'static [&'static str] {
        METRICS
    }

    fn check_row(&self, hp: &LotteryHparams, level: u64) -> std::result::Result<(), String> {
        check_rewound_row("a rewinding", hp, level)
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let level = unit.level;
        let (k, t) = lottery.steps();
        let mut m = rewound_level(lottery, level)?;
        m.set("rewind_fraction", k as f64 / t as f64);
        let branch = reinit();
        if !lottery.branch_dir(level, &branch).is_done()? {
            lottery.run_branch(level, &branch, progress)?;
        }
        m.run("reinit", &summary(&lottery.branch_dir(level, &branch))?);
        m.samples(
            "data_order_imp",
            data_order(lottery, level, unit.samples, unit.pack, progress)?,
        );
        // The k = 0 lottery: this one when the row is k = 0, else its sibling in the store.
        let sibling;
        let k0 = if k == 0 {
            lottery
        } else {
            sibling = k0_sibling(unit, lottery, progress)?;
            &sibling
        };
        m.run("k0", &summary(&k0.level_dir(level))?);
        m.samples(
            "data_order_k0",
            data_order(k0, level, unit.samples, unit.pack, progress)?,
        );
        Ok(m)
    }
}
