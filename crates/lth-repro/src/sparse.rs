//! `experiment = "sparse_training"`: networks trained sparse from scratch (static, SET and RigL,
//! Evci et al., ICML 2020), against the dense network and, for context, IMP at the row's level.

use lth_train::{Method, Progress, SparseHparams, SparseMode, SparseRun};

use crate::curve::{metric_names, summary};
use crate::{Experiment, Measured, Result, Unit};

/// A row gives `sparse = "rigl"`, a `distribution` and a `sparsity` (and any mask-update flags);
/// per replicate it trains the three modes with that distribution and those flags, static, SET
/// and RigL, each from the replicate's W0 and data order (`rigl_*`, `set_*`, `static_*`: final
/// accuracy, accuracy at the minimum validation loss and its step). It also reports the dense
/// network (level 0 of the row's lottery, the same W0) and, when the row's level is 1 or more,
/// the IMP ticket of that level (`imp_*`, `imp_weights_remaining`), whose rate a row chooses so
/// that the level's sparsity is the row's. `rigl_reactivated` is the fraction of the weights RigL
/// grew that had been active before (the churn researchers plot). `*_train_flops` and
/// `inference_flops` are FLOPs relative to dense training and inference, as the RigL paper counts
/// them (`lth_prune::flops`).
#[derive(Debug, Clone, Copy)]
pub struct SparseTraining;

/// Trains `sp` from the W0 and data order of `unit`'s replicate, in the run store's
/// `sparse_<hash>/replicate_<r>`, the folder `lth train --sparse` writes for the same flags (so a
/// run trained by hand is found done here, and the reverse), unless it is done; the folder,
/// summary and final mask. A run that an older version kept inside the lottery's replicate folder
/// is moved there first.
pub(crate) fn train_mode(
    unit: &Unit,
    sp: SparseHparams,
    progress: &mut dyn Progress,
) -> Result<(
    lth_store::RunDir,
    lth_train::RunSummary,
    Option<lth_prune::Mask>,
)> {
    let lottery = unit.lottery()?;
    let run = SparseRun {
        train: unit.hp.train.clone(),
        sparse: Some(sp),
    };
    let dir = unit.run_home(run.kind(), &run)?;
    let (s, mask) = run.train(&dir, unit.replicate, lottery.data(), progress)?;
    Ok((dir, s, mask))
}

/// A sparse_training row's own flags: `lth train --sparse`'s, with the layerwise spread.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SparseGroup {
    #[command(flatten)]
    sparse: lth_train::flags::SparseFlags,
    #[command(flatten)]
    spread: lth_train::flags::DistributionFlags,
}

impl crate::experiment::RowGroup for SparseGroup {
    fn resolve(
        &self,
        lottery: &lth_lottery::flags::LotteryFlags,
        _level: u64,
    ) -> Result<crate::experiment::Resolved> {
        let sparse = self.sparse.resolve(lottery.level1.sparsity, &self.spread)?;
        self.spread.refuse_unused(sparse.is_some())?;
        Ok(crate::experiment::Resolved {
            hp: crate::experiment::lottery_without_sparsity(lottery, sparse.is_some())?,
            methods: crate::MethodFlags {
                sparse,
                ..crate::MethodFlags::default()
            },
        })
    }
}

impl Experiment for SparseTraining {
    fn kind(&self) -> &'static str {
        "sparse_training"
    }

    fn metrics(&self) -> &'static [&'static str] {
        metric_names!(
            ["weights_remaining", "rigl_reactivated"],
            ["rigl", "set", "static", "dense", "imp"],
            [
                "imp_weights_remaining",
                "inference_flops",
                "rigl_train_flops",
                "set_train_flops",
                "static_train_flops",
            ]
        )
    }

    fn rows(&self) -> crate::experiment::Rows {
        crate::experiment::Rows::of::<SparseGroup>("lth lottery's flags and lth train --sparse's")
    }

    fn check_methods(&self, m: &crate::MethodFlags) -> std::result::Result<(), String> {
        match &m.sparse {
            Some(sp) if sp.mode == SparseMode::Rigl => Ok(()),
            Some(sp) => Err(format!(
                "a sparse_training row gives sparse = \"rigl\" (it trains static and SET beside \
                 it), not {}",
                sp.mode
            )),
            None => Err("a sparse_training row needs the sparse and sparsity flags".into()),
        }
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let sp = unit.methods.sparse.as_ref().ok_or_else(|| {
            crate::ReproError::Invalid("a sparse_training row without sparse flags".into())
        })?;
        let mut m = Measured::new();
        for mode in SparseMode::ALL {
            let (dir, s, mask) = train_mode(unit, SparseHparams { mode, ..sp.clone() }, progress)?;
            m.run(mode.name(), &s);
            if let Some(f) = &s.flops {
                m.set(format!("{}_train_flops", mode.name()), f.training_relative);
                m.set("inference_flops", f.inference_relative);
            }
            if mode == SparseMode::Rigl {
                if let Some(mask) = mask {
                    m.set("weights_remaining", mask.density());
                }
                let rows = lth_store::CsvLog::<lth_train::UpdateRow>::new(
                    dir.join(lth_train::UPDATES_FILE),
                )
                .load()?;
                let grown: i64 = rows.iter().map(|r| r.grown).sum();
                let again: i64 = rows.iter().map(|r| r.reactivated).sum();
                if grown > 0 {
                    m.set("rigl_reactivated", again as f64 / grown as f64);
                }
            }
        }
        m.run("dense", &summary(&lottery.level_dir(0))?);
        if unit.level >= 1 {
            m.run("imp", &summary(&lottery.level_dir(unit.level))?);
            m.set("imp_weights_remaining", lottery.mask(unit.level)?.density());
        }
        Ok(m)
    }
}
