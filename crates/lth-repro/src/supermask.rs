//! `experiment = "supermask"`: "Deconstructing Lottery Tickets" (Zhou, Lan, Liu & Yosinski,
//! NeurIPS 2019): a lottery level's mask applied to the *untrained* network W0 already classifies
//! far above chance, and more so with the kept weights set to signed constants.

use lth_lottery::{BranchHparams, BranchKind};
use lth_train::Progress;

use crate::curve::{metric_names, summary};
use crate::{Experiment, Measured, Result, Unit};

/// A row is a level L of a lottery whose `--criterion` chose the masks. Per replicate it measures,
/// without training: the level's mask on W0 (`supermask`), the same with the kept weights at
/// sign(W0) × the layer's init std (`supermask_signed`), and a random mask with the level's
/// per-layer counts, drawn from the replicate's seed, both ways (`random_supermask`,
/// `random_supermask_signed`); for context, the level trained (`ticket_*`) and its weights
/// remaining. The first two are the `supermask` and `supermask-signed` branches of the lottery.
#[derive(Debug, Clone, Copy)]
pub struct Supermask;

impl Experiment for Supermask {
    fn kind(&self) -> &'static str {
        "supermask"
    }

    fn metrics(&self) -> &'static [&'static str] {
        metric_names!(
            [
                "weights_remaining",
                "supermask",
                "supermask_signed",
                "random_supermask",
                "random_supermask_signed",
            ],
            ["ticket"]
        )
    }

    fn check_row(
        &self,
        _hp: &lth_lottery::LotteryHparams,
        level: u64,
    ) -> std::result::Result<(), String> {
        if level == 0 {
            return Err("level 0 keeps every weight: a supermask row needs level 1 or more".into());
        }
        Ok(())
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let level = unit.level;
        let mut m = Measured::new();
        for (kind, metric) in [
            (BranchKind::Supermask, "supermask"),
            (BranchKind::SupermaskSigned, "supermask_signed"),
        ] {
            let b = BranchHparams { kind, seed: None };
            let s = lottery.run_branch(level, &b, progress)?;
            m.set(metric, s.final_test_accuracy);
        }
        let mask = lottery.mask(level)?;
        let random = lth_prune::random_like(&mask, unit.replicate);
        for (signed, metric) in [
            (false, "random_supermask"),
            (true, "random_supermask_signed"),
        ] {
            let e = lottery.evaluate_at_init(&random, signed)?;
            m.set(metric, e.accuracy);
        }
        m.set("weights_remaining", mask.density());
        m.run("ticket", &summary(&lottery.level_dir(level))?);
        Ok(m)
    }
}
