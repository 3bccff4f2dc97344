//! `experiment = "state_of_sparsity"`: gradual magnitude pruning against its own mask trained from
//! scratch (Gale, Elsen & Hooker, "The State of Sparsity in Deep Neural Networks", 2019), beside
//! the sparse-training methods at the same sparsity and IMP.
//!
//! Per replicate, from the replicate's W0 and data order:
//! - `gmp_*`: the dense network pruned gradually to the row's sparsity (`lth train --gmp`);
//! - `ticket_*`: GMP's final mask trained from the run's own W0 (the paper's "lottery ticket",
//!   at k = 0), for the same steps;
//! - `scratch_*`: the same mask from a fresh initialisation ("scratch-e": same steps);
//! - `scratch_b_*`: the same fresh start for twice the steps, the learning-rate schedule
//!   (milestones, warm-up) stretched to match ("scratch-b", the State of Sparsity CSVs' time
//!   multiplier 2);
//! - `rigl_*`, `set_*`, `static_*`: sparse training from scratch at GMP's sparsity and
//!   distribution, in the same folders the `sparse_training` experiment uses, so a row whose
//!   lottery flags are another target's shares those runs through the run store;
//! - `dense_*` (level 0) and, from level 1, `imp_*` (the row's IMP level).
//!
//! `weights_remaining` is GMP's final density; `gmp_train_flops` and `inference_flops` are
//! relative to dense, as the RigL paper counts them (dense until the first pruning step).

use lth_prune::Mask;
use lth_store::RunDir;
use lth_train::{
    GmpHparams, GmpRun, Hooks, Method, Progress, RunSummary, Setup, SparseHparams, SparseMode,
    TrainHparams, run_resumable, train_gmp,
};

use crate::curve::{metric_names, summary};
use crate::{Experiment, Measured, Result, Unit};

#[derive(Debug, Clone, Copy)]
pub struct StateOfSparsity;

/// How GMP's mask is trained again from scratch.
#[derive(Debug, Clone, Copy)]
enum Scratch {
    /// From the run's own W0, same steps.
    Ticket,
    /// From a fresh initialisation, same steps (scratch-e).
    Fresh,
    /// From a fresh initialisation, twice the steps with the schedule stretched (scratch-b).
    FreshTwice,
}

impl Scratch {
    const ALL: [Scratch; 3] = [Scratch::Ticket, Scratch::Fresh, Scratch::FreshTwice];

    fn name(self) -> &'static str {
        match self {
            Scratch::Ticket => "ticket",
            Scratch::Fresh => "scratch",
            Scratch::FreshTwice => "scratch_b",
        }
    }

    /// The run's hyperparameters for replicate `replicate` of `hp`.
    fn hparams(self, hp: &TrainHparams, replicate: u64) -> TrainHparams {
        let mut hp = hp.clone();
        if !matches!(self, Scratch::Ticket) {
            hp.model.init_seed = Some(lth_lottery::reinit_seed(hp.init_seed(replicate)));
        }
        if matches!(self, Scratch::FreshTwice) {
            let t = &mut hp.training;
            t.steps = t.steps.times(2);
            t.warmup = t.warmup.times(2);
            t.milestones = t.milestones.iter().map(|m| m.times(2)).collect();
        }
        hp
    }
}

/// Trains `hp` (replicate `replicate`) under the fixed `mask` in `dir`, unless it is done.
fn train_masked(
    dir: &RunDir,
    hp: &TrainHparams,
    replicate: u64,
    mask: &Mask,
    data: &lth_train::Data,
    progress: &mut dyn Progress,
) -> Result<RunSummary> {
    let mut setup = Setup::new(hp, replicate, data)?;
    let plan = setup.plan(hp);
    if !dir.is_done()? {
        dir.create()?;
        mask.save(&dir.join(lth_prune::MASK_FILE))
            .map_err(lth_train::TrainError::from)?;
    }
    setup.optimizer.set_mask(mask)?;
    Ok(run_resumable(
        dir,
        &mut setup,
        &plan,
        &mut Hooks::none(),
        progress,
    )?)
}

/// A state_of_sparsity row's own flags: `lth train --gmp`'s, with the layerwise spread.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GmpGroup {
    #[command(flatten)]
    gmp: lth_train::flags::GmpFlags,
    #[command(flatten)]
    spread: lth_train::flags::DistributionFlags,
}

impl crate::experiment::RowGroup for GmpGroup {
    fn resolve(
        &self,
        lottery: &lth_lottery::flags::LotteryFlags,
        _level: u64,
    ) -> Result<crate::experiment::Resolved> {
        let gmp = self.gmp.resolve(lottery.level1.sparsity, &self.spread)?;
        self.spread.refuse_unused(gmp.is_some())?;
        Ok(crate::experiment::Resolved {
            hp: crate::experiment::lottery_without_sparsity(lottery, gmp.is_some())?,
            methods: crate::MethodFlags {
                gmp,
                ..crate::MethodFlags::default()
            },
        })
    }
}

impl Experiment for StateOfSparsity {
    fn kind(&self) -> &'static str {
        "state_of_sparsity"
    }

    fn metrics(&self) -> &'static [&'static str] {
        metric_names!(
            ["weights_remaining"],
            [
                "gmp",
                "ticket",
                "scratch",
                "scratch_b",
                "rigl",
                "set",
                "static",
                "dense",
                "imp"
            ],
            [
                "imp_weights_remaining",
                "gmp_train_flops",
                "inference_flops"
            ]
        )
    }

    fn rows(&self) -> crate::experiment::Rows {
        crate::experiment::Rows::of::<GmpGroup>("lth lottery's flags and lth train --gmp's")
    }

    fn check_methods(&self, m: &crate::MethodFlags) -> std::result::Result<(), String> {
        match &m.gmp {
            Some(_) => Ok(()),
            None => Err("a state_of_sparsity row needs the gmp and sparsity flags".into()),
        }
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let g: &GmpHparams = unit.methods.gmp.as_ref().ok_or_else(|| {
            crate::ReproError::Invalid("a state_of_sparsity row without gmp flags".into())
        })?;
        let data = lottery.data();
        let mut m = Measured::new();
        let run = GmpRun {
            train: unit.hp.train.clone(),
            gmp: g.clone(),
        };
        // The folder `lth train --gmp` writes for the same flags (its one home), with the masks
        // trained from scratch inside it; runs that an older version kept inside the lottery's
        // replicate folder are moved there first.
        let gmp = unit.run_home(run.kind(), &run)?;
        let name = lth_store::RunKind::Gmp.folder(&run);
        for how in Scratch::ALL {
            let old = lottery.dir().child(format!("{name}_{}", how.name()));
            gmp.child(how.name()).take_over(&old)?;
        }
        let (s, mask) = train_gmp(&gmp, &run, unit.replicate, data, progress)?;
        m.run("gmp", &s);
        m.set("weights_remaining", mask.density());
        if let Some(f) = &s.flops {
            m.set("gmp_train_flops", f.training_relative);
            m.set("inference_flops", f.inference_relative);
        }
        for how in Scratch::ALL {
            let hp = how.hparams(&unit.hp.train, unit.replicate);
            let dir = gmp.child(how.name());
            let s = train_masked(&dir, &hp, unit.replicate, &mask, data, progress)?;
            m.run(how.name(), &s);
        }
        for mode in SparseMode::ALL {
            let mut sp = SparseHparams::new(mode, g.distribution, g.sparsity);
            sp.erk_power = g.erk_power;
            sp.first_layer_dense = g.first_layer_dense;
            let (_, s, _) = crate::sparse::train_mode(unit, sp, progress)?;
            m.run(mode.name(), &s);
        }
        m.run("dense", &summary(&lottery.level_dir(0))?);
        if unit.level >= 1 {
            m.run("imp", &summary(&lottery.level_dir(unit.level))?);
            m.set("imp_weights_remaining", lottery.mask(unit.level)?.density());
        }
        Ok(m)
    }
}
