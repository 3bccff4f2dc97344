//! `experiment = "elastic"` and `"transfer"`: a lottery ticket moved to another depth (Chen et al.,
//! the Elastic Lottery Ticket Hypothesis, NeurIPS 2021), to another dataset or to another optimiser
//! (Morcos et al., "One ticket to win them all", NeurIPS 2019), against a random mask of the same
//! per-layer counts on the target and against the target's own IMP ticket (on an optimiser move:
//! the ticket IMP finds with the target optimiser).

use lth_lottery::{Destination, Lottery, Planted, Transplant, TransplantHparams};
use lth_train::Progress;

use crate::curve::summary;
use crate::{Experiment, Measured, ReproError, Result, Unit};

/// The measurements both kinds share. A row is a source lottery (its flags) and a level L; per
/// replicate, the source's ticket of level L moves to the target (`ticket_*`, its density on the
/// target `weights_remaining`), the same moved weights train under a random mask with the ticket's
/// per-layer counts (`random_*`, seeded by the replicate), and the target's own lottery, same
/// seeds and flags, is trained to level L (`target_imp_*`; its dense level 0 `target_dense_*`).
/// The source's level L is reported for context (`source_imp_*`). `ticket_drop` and
/// `target_imp_drop` are the accuracies minus the target's dense one, per replicate (Elastic
/// LTH's Table 3 reports drops).
fn measure(unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
    let source = unit.lottery()?;
    let hp: &TransplantHparams = unit.methods.transplant.as_ref().ok_or_else(|| {
        ReproError::Invalid(
            "this row gives no destination (--target-model or --target-dataset)".into(),
        )
    })?;
    let target_data = unit
        .target_data
        .ok_or_else(|| ReproError::Invalid("this row's target data were not loaded".into()))?;
    let level = unit.level;
    let mut m = Measured::new();
    // The target's own lottery, from the same seeds and flags.
    let mut own = hp.source.clone();
    own.train = hp.target();
    let target = Lottery::new(unit.store, own, unit.replicate, target_data)?;
    for l in 0..=level {
        if !target.level_done(l)? {
            target.run_level(l, progress)?;
        }
    }
    let transplant = Transplant::new(unit.store, hp.clone(), source, target_data)?;
    let planted = [
        (Planted::Ticket, "ticket"),
        (
            Planted::Random {
                seed: unit.replicate,
            },
            "random",
        ),
    ];
    for (p, prefix) in planted {
        let s = transplant.run(p, progress)?;
        m.run(prefix, &s);
    }
    let ticket = lth_prune::Mask::load(
        &transplant
            .unit_dir(Planted::Ticket)
            .join(lth_prune::MASK_FILE),
    )
    .map_err(lth_lottery::LotteryError::from)?;
    m.set("weights_remaining", ticket.density());
    m.run("source_imp", &summary(&source.level_dir(level))?);
    m.run("target_imp", &summary(&target.level_dir(level))?);
    m.set(
        "target_imp_weights_remaining",
        target.mask(level)?.density(),
    );
    let dense = summary(&target.level_dir(0))?;
    m.run("target_dense", &dense);
    for prefix in ["ticket", "target_imp"] {
        if let Some(v) = m.get(&format!("{prefix}_final")).and_then(|v| v.first()) {
            let drop = v - dense.final_test_accuracy;
            m.set(format!("{prefix}_drop"), drop);
        }
    }
    Ok(m)
}

const METRICS: &[&str] = &[
    "weights_remaining",
    "ticket_final",
    "ticket_early_stop",
    "ticket_stop_iteration",
    "ticket_drop",
    "random_final",
    "random_early_stop",
    "random_stop_iteration",
    "source_imp_final",
    "source_imp_early_stop",
    "source_imp_stop_iteration",
    "target_imp_final",
    "target_imp_early_stop",
    "target_imp_stop_iteration",
    "target_imp_drop",
    "target_imp_weights_remaining",
    "target_dense_final",
    "target_dense_early_stop",
    "target_dense_stop_iteration",
];

fn check(
    kind: &str,
    transplant: Option<&TransplantHparams>,
    elastic: bool,
) -> std::result::Result<(), String> {
    match transplant.map(|t| &t.to) {
        Some(Destination::Elastic { .. }) if elastic => Ok(()),
        Some(Destination::Transfer { .. } | Destination::Optimizer(_)) if !elastic => Ok(()),
        _ if elastic => Err(format!(
            "an {kind} row needs --target-model (and --map), not --target-dataset or \
             --target-optimizer"
        )),
        _ => Err(format!(
            "a {kind} row needs --target-dataset (and --output) or --target-optimizer (and \
             --target-lr), not --target-model"
        )),
    }
}

fn check_level(level: u64) -> std::result::Result<(), String> {
    if level == 0 {
        return Err(
            "level 0 is the dense network: a row moves the ticket of level 1 or more".into(),
        );
    }
    Ok(())
}

/// A row's ticket moved to another depth of its family (`elastic`: `--target-model`, `--map`) or
/// to another dataset (`transfer`: `--target-dataset`, `--output`); the two kinds measure alike.
#[derive(Debug, Clone, Copy)]
pub struct Transplanted {
    elastic: bool,
}

impl Transplanted {
    /// Elastic LTH: a ticket stretched or squeezed to another depth.
    pub const ELASTIC: Transplanted = Transplanted { elastic: true };
    /// Ticket transfer: a ticket moved to another dataset or optimiser.
    pub const TRANSFER: Transplanted = Transplanted { elastic: false };
}

impl crate::experiment::RowGroup for lth_lottery::flags::TransplantFlags {
    fn resolve(
        &self,
        lottery: &lth_lottery::flags::LotteryFlags,
        level: u64,
    ) -> Result<crate::experiment::Resolved> {
        let hp = lottery.resolve()?;
        let transplant = lth_lottery::flags::TransplantFlags::resolve(self, &hp, level)?;
        Ok(crate::experiment::Resolved {
            hp,
            methods: crate::MethodFlags {
                transplant,
                ..crate::MethodFlags::default()
            },
        })
    }
}

impl Experiment for Transplanted {
    fn kind(&self) -> &'static str {
        if self.elastic { "elastic" } else { "transfer" }
    }
    fn metrics(&self) -> &'static [&'static str] {
        METRICS
    }
    fn check_row(
        &self,
        _hp: &lth_lottery::LotteryHparams,
        level: u64,
    ) -> std::result::Result<(), String> {
        check_level(level)
    }
    fn rows(&self) -> crate::experiment::Rows {
        crate::experiment::Rows::of::<lth_lottery::flags::TransplantFlags>(
            "lth lottery's flags and the destination's (--target-model, --target-dataset, --target-optimizer and its --target-*, --map, --output)",
        )
    }
    fn check_methods(&self, m: &crate::MethodFlags) -> std::result::Result<(), String> {
        check(self.kind(), m.transplant.as_ref(), self.elastic)
    }
    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        measure(unit, progress)
    }
}
