//! `experiment = "lmc"`: linear mode connectivity (Frankle, Dziugaite, Roy & Carbin, ICML 2020).
//! A row is one rewind point k of one network, its lottery rewound to W_k at every level (as in
//! `rewinding`); per replicate it measures the instability (the error barrier along the line
//! between two copies trained from the rewind point with different data orders) of the dense
//! network, the IMP subnetwork and a randomly pruned one at the row's level, beside the IMP
//! subnetwork's barrier when the same lottery is rewound to k = 0.

use lth_lottery::{Lottery, LotteryHparams};
use lth_stability::{BnStats, InterpolationSummary, Split, Subnetwork, interpolation};
use lth_train::Progress;

use crate::rewinding::{check_rewound_row, k0_sibling, rewound_level};
use crate::{Experiment, Measured, Result, Unit};

/// Per replicate, at the row's level L of the lottery rewound to its k:
/// - `barrier_dense`, `barrier_imp`, `barrier_random`: max over α (the scale's `points` values,
///   the paper's 30 by default) of the test error of
///   α·W1 + (1−α)·W2 minus the mean of the two ends' errors, for two copies of the full network,
///   of the IMP subnetwork and of a random mask with its per-layer counts, trained from W_k with
///   data orders u and u' (the copies `lth stability` and `lth interpolate` train, whose folders
///   they share), BatchNorm statistics recomputed for each interpolated network (the sound choice);
/// - `barrier_imp_k0`: the IMP subnetwork's barrier in the same lottery rewound to k = 0 (the k = 0
///   row's folder);
/// - `imp_final`, `dense_final`: the level's and level 0's test accuracy (matching: within 0.2
///   points of dense), and `random_final`: the random copies' accuracy (one minus their mean end
///   error on the line).
#[derive(Debug, Clone, Copy)]
pub struct LinearModeConnectivity;

const METRICS: &[&str] = &[
    "weights_remaining",
    "rewind_iteration",
    "barrier_dense",
    "barrier_imp",
    "barrier_random",
    "barrier_imp_k0",
    "imp_final",
    "imp_early_stop",
    "imp_stop_iteration",
    "dense_final",
    "dense_early_stop",
    "dense_stop_iteration",
    "random_final",
];

/// The interpolation of `subnetwork`'s two data-order copies at `level` at `points` values of α,
/// on the test split.
fn line(
    lottery: &Lottery,
    level: u64,
    subnetwork: Subnetwork,
    points: u64,
    progress: &mut dyn Progress,
) -> Result<InterpolationSummary> {
    Ok(interpolation(
        lottery,
        level,
        subnetwork,
        usize::try_from(points).unwrap_or(usize::MAX),
        Split::Test,
        BnStats::Recompute,
        progress,
    )?)
}

/// One minus the mean error of the line's two ends: the two copies' accuracy.
fn ends_accuracy(s: &InterpolationSummary) -> f64 {
    match (s.points.first(), s.points.last()) {
        (Some(a), Some(b)) => 1.0 - (a.error + b.error) / 2.0,
        _ => f64::NAN,
    }
}

impl Experiment for LinearModeConnectivity {
    fn kind(&self) -> &'static str {
        "lmc"
    }

    fn metrics(&self) -> &'static [&'static str] {
        METRICS
    }

    fn check_row(&self, hp: &LotteryHparams, level: u64) -> std::result::Result<(), String> {
        check_rewound_row("an lmc", hp, level)
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let level = unit.level;
        let (k, _) = lottery.steps();
        let mut m = rewound_level(lottery, level)?;
        let dense = line(lottery, level, Subnetwork::Dense, unit.points, progress)?;
        let imp = line(lottery, level, Subnetwork::Imp, unit.points, progress)?;
        let random = line(lottery, level, Subnetwork::Random(0), unit.points, progress)?;
        m.set("barrier_dense", dense.barrier);
        m.set("barrier_imp", imp.barrier);
        m.set("barrier_random", random.barrier);
        m.set("random_final", ends_accuracy(&random));
        let k0 = if k == 0 {
            imp.barrier
        } else {
            let sibling = k0_sibling(unit, lottery, progress)?;
            line(&sibling, level, Subnetwork::Imp, unit.points, progress)?.barrier
        };
        m.set("barrier_imp_k0", k0);
        Ok(m)
    }
}
