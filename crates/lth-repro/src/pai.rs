//! `experiment = "prune_at_init"`: a network pruned once at initialisation (SNIP, GraSP, SynFlow,
//! magnitude or random) and trained, against the dense network and uniform random pruning at the
//! same sparsity, all from the same W0 and data order.

use lth_lottery::{BranchHparams, BranchKind, LotteryHparams};
use lth_train::Progress;

use crate::curve::{metric_names, summary};
use crate::{Experiment, Measured, Result, Unit};

/// A row is a lottery whose level 1 is pruned at initialisation (`prune-at-init` and `sparsity`
/// flags, `level = 1`, `rewind = "0"`). Per replicate it measures the pruned network (level 1),
/// the dense network (level 0) and a uniformly random mask keeping as many weights (the
/// `random-uniform` branch of level 1): test accuracy at the end of training (`*_final`) and at the
/// step of minimum validation loss (`*_early_stop`). Each replicate contributes a matched triple.
#[derive(Debug, Clone, Copy)]
pub struct PruneAtInit;

impl Experiment for PruneAtInit {
    fn kind(&self) -> &'static str {
        "prune_at_init"
    }

    fn metrics(&self) -> &'static [&'static str] {
        metric_names!(["weights_remaining"], ["pruned", "random", "dense"])
    }

    fn check_row(&self, hp: &LotteryHparams, level: u64) -> std::result::Result<(), String> {
        if hp.level1.is_none() {
            return Err("a prune_at_init row needs the prune-at-init and sparsity flags".into());
        }
        if level != 1 {
            return Err(format!(
                "a prune_at_init row measures level 1 (the pruned network), not level {level}"
            ));
        }
        if !hp.rewind.is_zero() {
            return Err(format!(
                "pruning at initialisation trains from W0: rewind must be 0, got {}",
                hp.rewind
            ));
        }
        Ok(())
    }

    /// The uniform random branch of level 1, which the harness packs across replicates.
    fn jobs(&self, unit: &Unit) -> Result<Vec<lth_train::Job>> {
        let lottery = unit.lottery()?;
        if lottery.branch_dir(1, &uniform()).is_done()? {
            return Ok(Vec::new());
        }
        Ok(vec![lottery.branch_job(1, &uniform())?])
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let mut m = Measured::new();
        m.set("weights_remaining", lottery.mask(1)?.density());
        m.run("pruned", &summary(&lottery.level_dir(1))?);
        m.run("dense", &summary(&lottery.level_dir(0))?);
        let branch = uniform();
        if !lottery.branch_dir(1, &branch).is_done()? {
            lottery.run_branch(1, &branch, progress)?;
        }
        m.run("random", &summary(&lottery.branch_dir(1, &branch))?);
        Ok(m)
    }
}

/// The uniform random branch of level 1: the level's total count, spread uniformly.
fn uniform() -> BranchHparams {
    BranchHparams {
        kind: BranchKind::RandomUniform,
        seed: None,
    }
}
