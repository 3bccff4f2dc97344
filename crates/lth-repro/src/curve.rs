//! `experiment = "lottery_curve"`: one point of the lottery ticket hypothesis's curve, test accuracy
//! against weights remaining, for the IMP ticket and its random reinitialisation (Frankle & Carbin,
//! ICLR 2019, Figures 1 and 3).

use lth_lottery::{BranchHparams, BranchKind};
use lth_store::RunDir;
use lth_train::{Progress, RunSummary};

use crate::{Experiment, Measured, ReproError, Result, Unit};

/// A row is a level L of the lottery. Per replicate it measures the IMP subnetwork of level L, the
/// same mask with fresh random weights (the `random-reinit` branch, from level 1) and the dense
/// network (level 0): test accuracy at the end of training (`*_final`) and at the step of minimum
/// validation loss (`*_early_stop`, the paper's early-stopping criterion), and that step
/// (`*_stop_iteration`). Claims such as "the ticket is at least as accurate as the dense network"
/// compare metrics of one row, so each replicate contributes a matched pair.
#[derive(Debug, Clone, Copy)]
pub struct LotteryCurve;

pub(crate) fn summary(dir: &RunDir) -> Result<RunSummary> {
    dir.done_summary::<RunSummary>()?.ok_or_else(|| {
        ReproError::Invalid(format!(
            "{}: expected a finished run (done.json)",
            dir.path().display()
        ))
    })
}

/// A kind's metric names: its own, then the three that [`record`] writes for each run prefix
/// (`<run>_final`, `<run>_early_stop`, `<run>_stop_iteration`), then its own that follow:
/// `metric_names!(["weights_remaining"], ["imp", "dense"], ["inference_flops"])`.
macro_rules! metric_names {
    ([$($own:literal),* $(,)?], [$($run:literal),+ $(,)?] $(, [$($after:literal),* $(,)?])? $(,)?) => {
        &[
            $($own,)*
            $(
                concat!($run, "_final"),
                concat!($run, "_early_stop"),
                concat!($run, "_stop_iteration"),
            )+
            $($($after,)*)?
        ]
    };
}
pub(crate) use metric_names;

impl Experiment for LotteryCurve {
    fn kind(&self) -> &'static str {
        "lottery_curve"
    }

    fn metrics(&self) -> &'static [&'static str] {
        metric_names!(["weights_remaining"], ["imp", "reinit", "dense"])
    }

    fn jobs(&self, unit: &Unit) -> Result<Vec<lth_train::Job>> {
        reinit_jobs(unit)
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let mut m = Measured::new();
        m.set("weights_remaining", lottery.mask(unit.level)?.density());
        m.run("imp", &summary(&lottery.level_dir(unit.level))?);
        m.run("dense", &summary(&lottery.level_dir(0))?);
        if unit.level >= 1 {
            let branch = reinit();
            if !lottery.branch_dir(unit.level, &branch).is_done()? {
                lottery.run_branch(unit.level, &branch, progress)?;
            }
            m.run(
                "reinit",
                &summary(&lottery.branch_dir(unit.level, &branch))?,
            );
        }
        Ok(m)
    }
}

/// The random reinitialisation of the row's level, if it is pruned and not done: a job the
/// harness packs across replicates.
pub(crate) fn reinit_jobs(unit: &Unit) -> Result<Vec<lth_train::Job>> {
    let lottery = unit.lottery()?;
    let branch = reinit();
    if unit.level == 0 || lottery.branch_dir(unit.level, &branch).is_done()? {
        return Ok(Vec::new());
    }
    Ok(vec![lottery.branch_job(unit.level, &branch)?])
}

/// The random reinitialisation branch of a row's level.
pub(crate) fn reinit() -> BranchHparams {
    BranchHparams {
        kind: BranchKind::RandomReinit,
        seed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `metric_names!` declares exactly the names `record` writes for each run, between the
    /// kind's own names.
    #[test]
    fn record_writes_the_names_metric_names_declares() {
        let names: &[&str] = metric_names!(["own"], ["a", "b"], ["after"]);
        assert_eq!(
            names,
            [
                "own",
                "a_final",
                "a_early_stop",
                "a_stop_iteration",
                "b_final",
                "b_early_stop",
                "b_stop_iteration",
                "after",
            ]
        );
        let s = RunSummary {
            steps: 10,
            final_test_accuracy: 0.5,
            final_test_loss: 1.0,
            best_test_accuracy: 0.6,
            best_test_step: 5,
            min_val_loss_step: Some(5),
            min_val_loss: Some(0.9),
            test_accuracy_at_min_val_loss: Some(0.6),
            flops: None,
        };
        let mut m = Measured::new();
        m.run("a", &s);
        m.run("b", &s);
        let mut written: Vec<&str> = m.iter().map(|(k, _)| k).collect();
        let mut declared: Vec<&str> = names[1..7].to_vec();
        written.sort_unstable();
        declared.sort_unstable();
        assert_eq!(written, declared);
    }
}
