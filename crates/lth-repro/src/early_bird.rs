//! `experiment = "early_bird"`: Early-Bird tickets (You et al., ICLR 2020): when the channel masks
//! of a network trained with slimming settle, and how the narrow network retrained from that
//! point compares with the dense one.

use lth_train::early_bird::{Footprint, Retrain, narrow_ticket, retrain, search};
use lth_train::{EarlyBirdRun, Progress};

use crate::curve::summary;
use crate::{Experiment, Measured, ReproError, Result, Unit};

/// The ratios a row may track, with the prefix of their metrics.
const RATIOS: [(f64, &str); 3] = [(0.3, "eb30"), (0.5, "eb50"), (0.7, "eb70")];

/// Per replicate: the dense network (level 0 of the row's lottery, trained without slimming:
/// `dense_final`), the Early-Bird search from the same W0 and data order (the dense network with
/// slimming, `slimmed_final`, in `earlybird_<hash>/replicate_<r>`, as `lth early-bird` writes it),
/// and per tracked ratio
/// p ∈ {0.3, 0.5, 0.7} (`eb30_*`, `eb50_*`, `eb70_*`): the emergence epoch as a fraction of
/// training (`*_epoch_fraction`; a ticket that never emerged counts as 1), the fraction of
/// slimmable channels kept (`*_channels`), the narrow network's parameter and FLOP reductions
/// (`*_params_reduction`, `*_flops_reduction`: dense ÷ narrow), and its test accuracy after EB
/// Train (retrained from the ticket's weights for the row's whole schedule: `*_final`). In
/// replicate 1 only, the narrow networks' measured training and inference speed-ups against the
/// dense one on this machine (`*_train_speedup`, `*_infer_speedup`; medians of 5 paired rounds on
/// synthetic batches of the row's batch size): a measurement of the machine, shown and not checked.
#[derive(Debug, Clone, Copy)]
pub struct EarlyBirdTickets;

const METRICS: [&str; 23] = [
    "dense_final",
    "slimmed_final",
    "eb30_epoch_fraction",
    "eb30_channels",
    "eb30_params_reduction",
    "eb30_flops_reduction",
    "eb30_final",
    "eb30_train_speedup",
    "eb30_infer_speedup",
    "eb50_epoch_fraction",
    "eb50_channels",
    "eb50_params_reduction",
    "eb50_flops_reduction",
    "eb50_final",
    "eb50_train_speedup",
    "eb50_infer_speedup",
    "eb70_epoch_fraction",
    "eb70_channels",
    "eb70_params_reduction",
    "eb70_flops_reduction",
    "eb70_final",
    "eb70_train_speedup",
    "eb70_infer_speedup",
];

fn prefix(ratio: f64) -> Option<&'static str> {
    RATIOS
        .iter()
        .find(|(r, _)| (r - ratio).abs() < 1e-9)
        .map(|(_, p)| *p)
}

/// Synthetic steps per round of the speed measurement.
const SPEED_STEPS: u64 = 5;
const SPEED_ROUNDS: usize = 5;

impl crate::experiment::RowGroup for lth_train::flags::EarlyBirdFlags {
    fn resolve(
        &self,
        lottery: &lth_lottery::flags::LotteryFlags,
        _level: u64,
    ) -> Result<crate::experiment::Resolved> {
        let early_bird = lth_train::flags::EarlyBirdFlags::resolve(self)?;
        crate::experiment::Resolved::of(
            lottery,
            crate::MethodFlags {
                early_bird: self.given().then_some(early_bird),
                ..crate::MethodFlags::default()
            },
        )
    }
}

impl Experiment for EarlyBirdTickets {
    fn kind(&self) -> &'static str {
        "early_bird"
    }

    fn metrics(&self) -> &'static [&'static str] {
        &METRICS
    }

    fn check_row(
        &self,
        _hp: &lth_lottery::LotteryHparams,
        level: u64,
    ) -> std::result::Result<(), String> {
        if level != 0 {
            return Err(format!(
                "an early_bird row trains the dense network only (level = 0), not level {level}"
            ));
        }
        Ok(())
    }

    fn rows(&self) -> crate::experiment::Rows {
        crate::experiment::Rows::of::<lth_train::flags::EarlyBirdFlags>(
            "lth lottery's flags and lth early-bird's search flags",
        )
    }

    /// Any search the row's flags ask for (the paper's defaults where none is given) tracks the
    /// ratios of the metrics.
    fn check_methods(&self, m: &crate::MethodFlags) -> std::result::Result<(), String> {
        let eb = m.early_bird.clone().unwrap_or_default();
        match eb.ratios.iter().find(|r| prefix(**r).is_none()) {
            Some(r) => Err(format!(
                "--eb-ratios {r}: an early_bird row tracks ratios among 0.3, 0.5 and 0.7 (its \
                 metrics are eb30_*, eb50_*, eb70_*)"
            )),
            None => Ok(()),
        }
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let data = lottery.data();
        let run = EarlyBirdRun {
            train: unit.hp.train.clone(),
            early_bird: unit.methods.early_bird.clone().unwrap_or_default(),
        };
        // The folder `lth early-bird` writes for the same flags (its one home); a search that an
        // older version kept inside the lottery's replicate folder is moved there first.
        let dir = unit.run_home(lth_store::RunKind::EarlyBird, &run)?;
        let (searched, emerged) = search(&dir, &run, unit.replicate, data, progress)?;
        let mut m = Measured::new();
        m.set(
            "dense_final",
            summary(&lottery.level_dir(0))?.final_test_accuracy,
        );
        m.set("slimmed_final", searched.final_test_accuracy);
        let (_, total) = lottery.steps();
        let per_epoch = data.iterations_per_epoch(run.train.dataset.batch_size);
        let epochs = total.div_ceil(per_epoch) as f64;
        let dense = Footprint::dense(&run, data)?;
        let mut narrow_names = Vec::new();
        for e in &emerged {
            let p = prefix(e.ratio)
                .ok_or_else(|| ReproError::Invalid(format!("ratio {} has no metrics", e.ratio)))?;
            let Some(epoch) = e.epoch else {
                m.set(format!("{p}_epoch_fraction"), 1.0);
                continue;
            };
            m.set(format!("{p}_epoch_fraction"), epoch as f64 / epochs);
            if let Some(kept) = e.channels_kept {
                m.set(format!("{p}_channels"), kept);
            }
            let narrow = narrow_ticket(&dir, &run, e.ratio, unit.replicate, data)?;
            let (params, flops) = dense.reduction(&Footprint::of(&narrow));
            m.set(format!("{p}_params_reduction"), params);
            m.set(format!("{p}_flops_reduction"), flops);
            let (s, name) = retrain(
                &dir,
                &run,
                e.ratio,
                Retrain::EarlyBird,
                unit.replicate,
                data,
                progress,
            )?;
            m.set(format!("{p}_final"), s.final_test_accuracy);
            narrow_names.push((p, name));
        }
        if unit.replicate == 1 && !narrow_names.is_empty() {
            let mut names = vec![run.train.model.model.clone()];
            names.extend(narrow_names.iter().map(|(_, n)| n.clone()));
            let speeds = lth_train::speed::compare(
                &run.train,
                &names,
                data.info,
                data.train.device(),
                SPEED_STEPS,
                SPEED_ROUNDS,
            )?;
            for ((p, _), (_, ratio)) in narrow_names.iter().zip(speeds.iter().skip(1)) {
                m.set(format!("{p}_train_speedup"), ratio.train);
                m.set(format!("{p}_infer_speedup"), ratio.infer);
            }
        }
        Ok(m)
    }
}
