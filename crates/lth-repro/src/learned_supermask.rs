//! `experiment = "learned_supermask"`: supermasks learned with the weights frozen (Zhou et al.'s
//! Bernoulli supermask; Ramanujan et al.'s edge-popup): how far a mask alone, trained, takes an
//! untrained network, against a random mask with the same per-layer counts on the same weights.

use lth_train::supermask::evaluate_supermask;
use lth_train::{Method, Progress, SupermaskRun, train_supermask};

use crate::{Experiment, Measured, ReproError, Result, Unit};

/// A row is a learned-supermask run (`--supermask` flags; the row's training flags are the
/// scores' optimiser and schedule) from the replicate's W0, stored where `lth train --supermask`
/// stores it. Per replicate: the test accuracy with the final mask (`learned_final`; Bernoulli's
/// is one sample, as the reference evaluates), the mask's density (`mask_density`), and, without
/// training, the same frozen weights under a random mask with the learned mask's per-layer counts
/// drawn from the replicate's seed (`random_mask`). Each replicate is an independent experiment:
/// its own W0, data order, scores and random mask.
#[derive(Debug, Clone, Copy)]
pub struct LearnedSupermask;

impl crate::experiment::RowGroup for lth_train::flags::SupermaskFlags {
    fn resolve(
        &self,
        lottery: &lth_lottery::flags::LotteryFlags,
        _level: u64,
    ) -> Result<crate::experiment::Resolved> {
        crate::experiment::Resolved::of(
            lottery,
            crate::MethodFlags {
                supermask: lth_train::flags::SupermaskFlags::resolve(self)?,
                ..crate::MethodFlags::default()
            },
        )
    }
}

impl Experiment for LearnedSupermask {
    fn kind(&self) -> &'static str {
        "learned_supermask"
    }

    fn metrics(&self) -> &'static [&'static str] {
        &["learned_final", "mask_density", "random_mask"]
    }

    /// The harness trains no lottery: the supermask run is the row's training.
    fn trains(&self) -> bool {
        false
    }

    fn check_row(
        &self,
        _hp: &lth_lottery::LotteryHparams,
        level: u64,
    ) -> std::result::Result<(), String> {
        if level != 0 {
            return Err(format!(
                "a learned_supermask row learns a mask on W0: level must be 0, not {level}"
            ));
        }
        Ok(())
    }

    fn rows(&self) -> crate::experiment::Rows {
        crate::experiment::Rows::of::<lth_train::flags::SupermaskFlags>(
            "lth lottery's flags and lth train --supermask's",
        )
    }

    fn check_methods(&self, m: &crate::MethodFlags) -> std::result::Result<(), String> {
        match &m.supermask {
            Some(_) => Ok(()),
            None => Err("a learned_supermask row needs --supermask bernoulli|edge-popup".into()),
        }
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let (Some(supermask), Some(data)) = (unit.methods.supermask.as_ref(), unit.data) else {
            return Err(ReproError::Invalid(
                "a learned_supermask row was given no --supermask or no data".into(),
            ));
        };
        let run = SupermaskRun {
            train: unit.hp.train.clone(),
            supermask: supermask.clone(),
        };
        let dir = unit.run_home(run.kind(), &run)?;
        let (summary, mask) = train_supermask(&dir, &run, unit.replicate, data, progress)?;
        let random = lth_prune::random_like(&mask, unit.replicate);
        let at_random = evaluate_supermask(&run, unit.replicate, data, &random)?;
        let mut m = Measured::new();
        m.set("learned_final", summary.final_test_accuracy);
        m.set("mask_density", mask.density());
        m.set("random_mask", at_random.accuracy);
        Ok(m)
    }
}
