//! `experiment = "fast_tickets"`: the boosting tickets of Li, Wang, Jia, Lu, Zhong, Carin & Jana,
//! "Towards Practical Lottery Ticket Hypothesis for Adversarial Training" (arXiv:2003.05733,
//! 2020): a ticket found by ordinary (clean) IMP and rewound to the original initialisation
//! converges faster under PGD adversarial training than the dense network does, and is as robust
//! at the end.

use lth_lottery::{Lottery, reinit_seed};
use lth_store::{CsvLog, RunDir};
use lth_train::{
    AdversarialHparams, Job, MetricsRow, Progress, RunPlan, Start, TrainHparams, train_jobs,
};

use crate::{Experiment, Measured, MethodFlags, ReproError, Result, Unit};

/// A robust accuracy counts as reached at the first evaluation where it is at least this fraction
/// of the dense network's final robust accuracy in the same replicate: a target every dense run
/// reaches, set relative so that it means the same on any machine and at any scale. Chosen before
/// any run, with the paper's "converges faster" in mind: near the end of the dense curve, where
/// the number of steps saved is the training time saved.
pub const TARGET_FRACTION: f64 = 0.95;

/// A row is a level L ≥ 1 of a lottery trained cleanly (the row's `lth lottery` flags, rewound to
/// step 0) and an attack (`adversarial = "pgd"` and the `adv-*` flags). Per replicate it trains,
/// adversarially with the row's recipe plus the attack, each from its initialisation:
/// - `dense`: the full network from W0;
/// - `ticket`: W0 under level L's mask (the boosting-ticket candidate);
/// - `reinit`: a random reinitialisation under the same mask (is it the ticket or the sparsity?).
///
/// evaluated [`EVALUATIONS`] times, and measures, for each, the final robust and clean accuracy (`*_robust`, `*_clean`) and the
/// steps to reach [`TARGET_FRACTION`] of the dense network's final robust accuracy
/// (`*_steps_to_target`; a run that never reaches it counts its whole length, which can only
/// understate how much slower it is). `time_saved` is 1 − ticket steps / dense steps.
///
/// The runs live in the replicate's folder: `adversarial_<hash of their recipe>/{dense,
/// ticket_level_<L>, reinit_level_<L>}`; the dense run is shared by every row of the lottery.
#[derive(Debug, Clone, Copy)]
pub struct FastTickets;

/// The row's attack, or why there is none.
fn attack(methods: &MethodFlags) -> Result<AdversarialHparams> {
    methods.adversarial.ok_or_else(|| {
        ReproError::Invalid("a fast_tickets row needs --adversarial pgd or fgsm".into())
    })
}

/// Evaluations along each adversarial run: the resolution of the steps to the target.
pub const EVALUATIONS: u64 = 20;

/// The recipe the adversarial runs train with: the lottery's under the attack, evaluated
/// [`EVALUATIONS`] times (every ⌈T / 20⌉ iterations) whatever the lottery's interval.
fn recipe(unit: &Unit) -> Result<TrainHparams> {
    let mut hp = unit.hp.train.clone();
    hp.training.adversarial = Some(attack(unit.methods)?);
    let data = unit.lottery()?.data();
    let total = hp
        .training
        .steps
        .iterations(data.iterations_per_epoch(hp.dataset.batch_size));
    hp.training.eval_every = lth_train::Steps::it(total.div_ceil(EVALUATIONS).max(1));
    Ok(hp)
}

/// The folder of a replicate's adversarial runs of `recipe`, which it is keyed by and bound to
/// (the lottery's recipe, the attack and the evaluation interval).
fn folder(lottery: &Lottery, recipe: &TrainHparams) -> Result<RunDir> {
    let dir = lottery
        .dir()
        .child(format!("adversarial_{}", lth_store::hparams_hash(recipe)));
    dir.create()?;
    dir.bind_hparams(recipe)?;
    Ok(dir)
}

/// The three runs of a unit, as jobs of its recipe `hp` ([`recipe`]), and their folders:
/// dense, ticket, reinit.
fn jobs(unit: &Unit, hp: &TrainHparams) -> Result<Vec<Job>> {
    let lottery = unit.lottery()?;
    let dir = folder(lottery, hp)?;
    let data = lottery.data();
    let plan = RunPlan::whole(hp, data.iterations_per_epoch(hp.dataset.batch_size));
    let mask = lottery.mask(unit.level)?;
    let level = unit.level;
    let job = |name: String| Job::new(dir.child(name), hp, unit.replicate, plan.clone());
    Ok(vec![
        job("dense".into()),
        job(lth_store::layout::at_level("ticket", level)).masked(Some(mask.clone())),
        job(lth_store::layout::at_level("reinit", level))
            .starting(Start::Init(reinit_seed(unit.replicate)))
            .masked(Some(mask)),
    ])
}

/// The first step at which `rows` reach `target` robust accuracy, or the last step if none does.
pub fn steps_to(rows: &[MetricsRow], target: f64) -> Option<u64> {
    let reached = rows
        .iter()
        .find(|r| r.robust_accuracy.is_some_and(|a| a >= target));
    reached.or(rows.last()).map(|r| r.step)
}

fn metrics(dir: &RunDir) -> Result<Vec<MetricsRow>> {
    let rows = CsvLog::<MetricsRow>::new(dir.join(lth_train::METRICS)).load()?;
    if rows.last().and_then(|r| r.robust_accuracy).is_none() {
        return Err(ReproError::Invalid(format!(
            "{}: no robust accuracy in its metrics (not an adversarial run?)",
            dir.path().display()
        )));
    }
    Ok(rows)
}

impl crate::experiment::RowGroup for lth_train::flags::AdversarialFlags {
    fn resolve(
        &self,
        lottery: &lth_lottery::flags::LotteryFlags,
        _level: u64,
    ) -> Result<crate::experiment::Resolved> {
        crate::experiment::Resolved::of(
            lottery,
            crate::MethodFlags {
                adversarial: lth_train::flags::AdversarialFlags::resolve(self)?,
                ..crate::MethodFlags::default()
            },
        )
    }
}

impl Experiment for FastTickets {
    fn kind(&self) -> &'static str {
        "fast_tickets"
    }

    fn metrics(&self) -> &'static [&'static str] {
        &[
            "weights_remaining",
            "dense_robust",
            "ticket_robust",
            "reinit_robust",
            "dense_clean",
            "ticket_clean",
            "reinit_clean",
            "dense_steps_to_target",
            "ticket_steps_to_target",
            "reinit_steps_to_target",
            "target_robust",
            "time_saved",
        ]
    }

    fn check_row(
        &self,
        hp: &lth_lottery::LotteryHparams,
        level: u64,
    ) -> std::result::Result<(), String> {
        if level == 0 {
            return Err(
                "level 0 keeps every weight: a fast_tickets row trains a ticket, level 1 or \
                        more"
                    .into(),
            );
        }
        if !hp.rewind.is_zero() {
            return Err(format!(
                "boosting tickets are rewound to the original initialisation (--rewind 0), not \
                 {}",
                hp.rewind
            ));
        }
        Ok(())
    }

    fn rows(&self) -> crate::experiment::Rows {
        crate::experiment::Rows::of::<lth_train::flags::AdversarialFlags>(
            "lth lottery's flags and lth train --adversarial's",
        )
    }

    fn check_methods(&self, methods: &MethodFlags) -> std::result::Result<(), String> {
        attack(methods).map(drop).map_err(|e| e.to_string())
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let hp = recipe(unit)?;
        let jobs = jobs(unit, &hp)?;
        // One at a time: adversarial runs do not pack.
        train_jobs(&hp, lottery.data(), &jobs, 1, progress)?;
        let runs: Vec<Vec<MetricsRow>> = jobs
            .iter()
            .map(|j| metrics(&j.dir))
            .collect::<Result<_>>()?;
        let last = |rows: &[MetricsRow]| {
            let r = rows.last().map(|r| (r.robust_accuracy, r.test_accuracy));
            (r.and_then(|r| r.0).unwrap_or(0.0), r.map_or(0.0, |r| r.1))
        };
        let target = TARGET_FRACTION * last(&runs[0]).0;
        let mut m = Measured::new();
        let mut steps = Vec::new();
        for (name, rows) in ["dense", "ticket", "reinit"].iter().zip(&runs) {
            let (robust, clean) = last(rows);
            m.set(format!("{name}_robust"), robust);
            m.set(format!("{name}_clean"), clean);
            let s = steps_to(rows, target).unwrap_or(0) as f64;
            m.set(format!("{name}_steps_to_target"), s);
            steps.push(s);
        }
        m.set("target_robust", target);
        m.set("time_saved", 1.0 - steps[1] / steps[0].max(1.0));
        m.set("weights_remaining", lottery.mask(unit.level)?.density());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64, robust: f64) -> MetricsRow {
        MetricsRow {
            step,
            epoch: 0.0,
            lr: 0.0,
            train_loss: None,
            test_loss: 0.0,
            test_accuracy: 0.0,
            val_loss: None,
            val_accuracy: None,
            robust_accuracy: Some(robust),
        }
    }

    /// The first evaluation at or above the target counts, not a later higher one; a run that
    /// never reaches it counts its whole length; an empty log has no answer.
    #[test]
    fn steps_to_target_is_the_first_crossing() {
        let rows = [
            row(0, 0.0),
            row(100, 0.4),
            row(200, 0.6),
            row(300, 0.55),
            row(400, 0.7),
        ];
        assert_eq!(steps_to(&rows, 0.5), Some(200));
        assert_eq!(steps_to(&rows, 0.6), Some(200));
        assert_eq!(steps_to(&rows, 0.65), Some(400));
        assert_eq!(steps_to(&rows, 0.9), Some(400));
        assert_eq!(steps_to(&rows, 0.0), Some(0));
        assert_eq!(steps_to(&[], 0.5), None);
    }
}
