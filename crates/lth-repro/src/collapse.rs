//! `experiment = "layer_collapse"`: the largest compression at which pruning at initialisation
//! leaves every prunable layer at least one weight (Tanaka et al., NeurIPS 2020, Figure 1 and
//! Section 3). No training.

use lth_lottery::LotteryHparams;
use lth_models::Model;
use lth_prune::Method;
use lth_train::{PaiHparams, Progress};

use crate::{Experiment, Measured, ReproError, Result, Unit};

/// The `lth-rng` domain of the seeds of random pruning's draws.
const RANDOM_DRAW: &str = "random_collapse_draw";

/// Compressions are 10^x for x on this grid step.
pub const STEP: f64 = 0.25;

/// A row names one method (its `prune-at-init` flag) and the highest sparsity to examine (its
/// `sparsity` flag: compressions up to 1/(1 − sparsity)). Per replicate (its own W0), it finds for
/// that method and for every data-free method (random, magnitude, SynFlow) the critical
/// compression: the largest x on the grid 0.25, 0.5, … such that pruning W0 to density 10^−x
/// empties no prunable layer (found by bisection, see [`critical`]). A method that never
/// collapses up to the highest sparsity reports that sparsity's x. Metrics: `method_cc` (the row's method), `random_cc`, `magnitude_cc`,
/// `synflow_cc`, all in log10 units. Random pruning draws `samples` masks per replicate and
/// averages their critical compressions. A row whose method needs data (SNIP, GraSP) needs its
/// dataset; the others run without it (the dataset gives the input shape and classes).
#[derive(Debug, Clone, Copy)]
pub struct LayerCollapse;

fn method_of(hp: &LotteryHparams) -> std::result::Result<&PaiHparams, String> {
    hp.level1
        .as_ref()
        .ok_or_else(|| "a layer_collapse row needs the prune-at-init and sparsity flags".into())
}

/// Whether pruning `model` by `pai` leaves every prunable layer a weight.
fn survives(model: &Model, unit: &Unit, pai: &PaiHparams) -> Result<bool> {
    let mask = pai.prune_model(model, unit.info, unit.data, &unit.hp.train, unit.replicate)?;
    Ok(mask.counts().iter().all(|c| c.kept > 0))
}

/// The critical compression (log10) of `method` on `model`, on the grid up to `top`, by
/// bisection: survival is monotone in the compression for one-shot global selection (the kept
/// set at a lower compression contains the kept set at a higher one), and is assumed so for
/// SynFlow's iterations, as in the paper's figure.
fn critical(
    model: &Model,
    unit: &Unit,
    base: &PaiHparams,
    method: Method,
    top: f64,
) -> Result<f64> {
    let steps = (top / STEP + 1e-9).floor() as u32;
    let survives_at = |i: u32| {
        let pai = PaiHparams {
            method,
            sparsity: 1.0 - 10f64.powf(-f64::from(i) * STEP),
            batch: if method.needs_data() {
                base.batch
            } else {
                None
            },
            rounds: base.rounds,
        };
        survives(model, unit, &pai)
    };
    // The top first: a method that never collapses (SynFlow, in the paper) costs one pruning.
    if steps == 0 || survives_at(steps)? {
        return Ok(f64::from(steps) * STEP);
    }
    // Invariant: grid point `lo` survives (x = 0 keeps everything), `hi` collapses.
    let (mut lo, mut hi) = (0u32, steps);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if survives_at(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(f64::from(lo) * STEP)
}

impl Experiment for LayerCollapse {
    fn kind(&self) -> &'static str {
        "layer_collapse"
    }

    fn metrics(&self) -> &'static [&'static str] {
        &["method_cc", "random_cc", "magnitude_cc", "synflow_cc"]
    }

    fn trains(&self) -> bool {
        false
    }

    fn needs_data(&self, hp: &LotteryHparams) -> bool {
        method_of(hp).is_ok_and(|p| p.method.needs_data())
    }

    fn check_row(&self, hp: &LotteryHparams, _level: u64) -> std::result::Result<(), String> {
        let pai = method_of(hp)?;
        if pai.sparsity < 1.0 - 10f64.powf(-STEP) {
            return Err(format!(
                "the sparsity flag is the highest sparsity examined; {} is below the first compression 10^{STEP}",
                pai.sparsity
            ));
        }
        Ok(())
    }

    fn measure(&self, unit: &Unit, _progress: &mut dyn Progress) -> Result<Measured> {
        let pai = method_of(unit.hp).map_err(ReproError::Invalid)?;
        let train = &unit.hp.train;
        let device = unit.data.map_or(tch::Device::Cpu, |d| d.train.device());
        // The replicate's W0 as training builds it (`--bn-init` included).
        let model = lth_train::initial_model(train, unit.replicate, unit.info, device)?;
        let top = -(1.0 - pai.sparsity).log10();
        let mut m = Measured::new();
        for method in [Method::Magnitude, Method::Synflow] {
            let cc = critical(&model, unit, pai, method, top)?;
            m.set(format!("{method}_cc"), cc);
        }
        // Random pruning's collapse depends on the draw, not on W0: each sample is another draw
        // (its own seed from the replicate's stream), averaged into the replicate's value.
        let mut random = Vec::new();
        for j in 0..unit.samples {
            let mut hp = unit.hp.clone();
            hp.train.model.init_seed =
                Some(lth_rng::Stream::new(unit.replicate, RANDOM_DRAW, j).next_u64());
            let draw = Unit { hp: &hp, ..*unit };
            random.push(critical(&model, &draw, pai, Method::Random, top)?);
        }
        m.samples("random_cc", random);
        let own = match m.get(&format!("{}_cc", pai.method)) {
            Some(v) => v.to_vec(),
            None => vec![critical(&model, unit, pai, pai.method, top)?],
        };
        m.samples("method_cc", own);
        Ok(m)
    }
}
