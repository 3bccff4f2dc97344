//! Gradual magnitude pruning (Zhu & Gupta, "To prune, or not to prune", 2017), as a [`Hook`]: the
//! pruning method of "The State of Sparsity in Deep Neural Networks" (Gale, Elsen & Hooker, 2019)
//! and RigL's "Pruning" baseline.
//!
//! The network starts dense. From step `t0` to `t0 + nΔt`, every `Δt` steps, the weights of
//! smallest magnitude leave until the sparsity is Zhu & Gupta's cubic
//! `s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³`, so `s_i` at `t0` and `s_f` from `t0 + nΔt` on
//! (`n = ⌊(t_end − t0)/Δt⌋`). Pruning is layerwise or global:
//! - **layerwise**: each layer's final sparsity `s_f^l` comes from a [`Distribution`] (uniform, ER,
//!   ERK, first layer dense) at `s_f`, and at step `t` the layer is at `s_f^l · s_t / s_f`: every
//!   layer follows the cubic scaled to its share (with `s_i = 0` this is `model_pruning`'s
//!   per-layer cubic from 0 to each layer's target, as rigl's pruning baseline runs it). The final
//!   mask keeps exactly the distribution's per-layer counts.
//! - **global**: one magnitude threshold over the prunable layers (the first left out with
//!   `first_layer_dense`), the network at `s_t`.
//!
//! Counts follow [`Count::SparsityFloor`] (`N − ⌊s·N⌋` kept, rigl's rule). By default a selection
//! ranks only the weights still kept, so pruned weights stay pruned (tfmot's rule: it writes
//! W ← W⊙M); they are zeroed (the optimiser's mask) and their optimiser state (momentum, Adam's
//! moments) is reset.
//!
//! With `regrow`, pruned weights may come back, as in TF's `model_pruning` (the State of Sparsity
//! code), which keeps each weight's value behind its mask and ranks every weight at each pruning
//! step: here a pruned weight's value is held as it was when pruned (no gradient reaches it behind
//! the mask, so it would not have moved), every weight is ranked (a kept one by its magnitude, a
//! pruned one by its held magnitude), and a weight that ranks in again returns with its held
//! value and a fresh optimiser state. The held values are in the resume state.
//!
//! Pruning at step `t` happens after that step's update, as State of Sparsity chains the mask
//! update onto the train op, so the mask in force after step `t` is at `s_t` and step `t + 1`
//! trains under it. The threshold is the exact k-th magnitude (tfmot's, not contrib's 255-bin
//! histogram), with no moving average (State of Sparsity's `threshold_decay = 0`); ties at the
//! threshold leave in position order.
//!
//! **Host synchronisation.** None on the steps between pruning steps. A pruning step reads each
//! layer's threshold (a k-th value) and kept count.
//!
//! **Resume.** The mask in force is in the optimiser's resume state; the hook keeps its step
//! count (and, with `regrow`, the held values), and its log (`gmp.csv`) is cut back to the
//! checkpoint on resume, so a killed run resumes bit-identically.
//!
//! **FLOPs** as the RigL paper counts them: dense until `t0`, then each step at the density in
//! force (three forward passes' worth per example), from the log of the counts each pruning step
//! left.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use lth_models::Named;
use lth_prune::{
    Count, Distribution, Flops, Keep, LayerSparsity, MASK_FILE, Mask, Spread, Strategy,
    select_global, select_layerwise,
};
use lth_store::{CsvLog, RunDir, RunKind};

#[cfg(feature = "clap")]
use crate::method::{DistributionFlags, set};
use crate::method::Method;
use crate::{
    Data, Hook, Hooks, Progress, Result, RunSummary, Setup, StepContext, Steps, TrainError,
    TrainHparams, UpdateEnd, run_resumable,
};

/// The per-pruning-step log of a GMP run: each layer's target and kept count.
pub const GMP_FILE: &str = "gmp.csv";

/// How a run prunes gradually.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GmpHparams {
    /// The final sparsity `s_f` over the prunable weights, in [0, 1).
    pub sparsity: f64,
    /// The sparsity `s_i` of the first pruning step, in [0, s_f].
    #[serde(default)]
    pub initial: f64,
    /// The first pruning step `t0`: a fraction of training or a step count.
    #[serde(default = "default_start")]
    pub start: UpdateEnd,
    /// The last point of the schedule `t_end` (the last pruning step is `t0 + nΔt ≤ t_end`).
    #[serde(default)]
    pub end: UpdateEnd,
    /// Steps between pruning steps, `Δt`.
    #[serde(default = "default_every")]
    pub every: Steps,
    /// Layerwise (each layer to its share of the distribution) or global (one threshold).
    #[serde(default)]
    pub scope: Strategy,
    /// How a layerwise schedule spreads `s_f` over the layers.
    #[serde(default = "default_spread")]
    pub distribution: Spread,
    /// ERK's power on the raw density.
    #[serde(default = "one")]
    pub erk_power: f64,
    /// Leave the first prunable layer dense (outside the budget).
    #[serde(default)]
    pub first_layer_dense: bool,
    /// Let pruned weights come back at later pruning steps (ranked by their held magnitude);
    /// by default they stay pruned. Left out of the identity when off, so runs from before it
    /// existed keep their folders.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regrow: bool,
}

fn default_start() -> UpdateEnd {
    UpdateEnd::Fraction(0.1)
}
fn default_every() -> Steps {
    Steps::it(100)
}
fn default_spread() -> Spread {
    Spread::Uniform
}
fn one() -> f64 {
    1.0
}

impl GmpHparams {
    /// GMP to `sparsity`, layerwise and uniform, from 10% to 75% of training every 100 steps,
    /// starting from dense (`s_i = 0`).
    pub fn new(sparsity: f64) -> GmpHparams {
        GmpHparams {
            sparsity,
            initial: 0.0,
            start: default_start(),
            end: UpdateEnd::default(),
            every: default_every(),
            scope: Strategy::Layerwise,
            distribution: Spread::Uniform,
            erk_power: 1.0,
            first_layer_dense: false,
            regrow: false,
        }
    }

    /// Checks what does not depend on the run's length, naming the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        if !(0.0..1.0).contains(&self.sparsity) {
            return bad(format!(
                "--sparsity must be in [0, 1) (the final fraction of prunable weights removed), \
                 got {}",
                self.sparsity
            ));
        }
        if !(0.0..=self.sparsity).contains(&self.initial) {
            return bad(format!(
                "--gmp-initial must be in [0, --sparsity] = [0, {}], got {}",
                self.sparsity, self.initial
            ));
        }
        if self.every.is_zero() {
            return bad("--gmp-every must be at least one step".into());
        }
        if self.scope == Strategy::Global
            && (self.distribution != Spread::Uniform || self.erk_power != 1.0)
        {
            return bad(
                "--distribution and --erk-power spread a layerwise schedule; --gmp-scope global \
                 ranks all layers at once"
                    .into(),
            );
        }
        Ok(())
    }

    /// The schedule of a run of `total` steps of `per_epoch` each, or a one-line error naming the
    /// flag (an end before the start, an interval longer than the window).
    pub fn schedule(&self, total: u64, per_epoch: u64) -> Result<GmpSchedule> {
        self.validate()?;
        let t0 = self.start.steps(total, per_epoch);
        let end = self.end.steps(total, per_epoch);
        let dt = self.every.iterations(per_epoch);
        let bad = |m: String| Err(TrainError::Invalid(m));
        if t0 >= total {
            return bad(format!(
                "--gmp-start {} is step {t0}, not before the end of training (step {total})",
                self.start
            ));
        }
        if end <= t0 {
            return bad(format!(
                "--gmp-end {} (step {end}) must come after --gmp-start {} (step {t0})",
                self.end, self.start
            ));
        }
        if dt > end - t0 {
            return bad(format!(
                "--gmp-every {} ({dt} steps) is longer than the pruning window from --gmp-start \
                 to --gmp-end ({} steps)",
                self.every,
                end - t0
            ));
        }
        Ok(GmpSchedule {
            t0,
            dt,
            n: (end - t0) / dt,
            initial: self.initial,
            last: self.sparsity,
        })
    }

    /// The distribution of `s_f` over `layers` (layerwise scope).
    pub fn distribution(&self, layers: &[(String, Vec<i64>)]) -> Distribution {
        let mut d = Distribution::new(self.distribution, self.sparsity);
        d.power = self.erk_power;
        if self.first_layer_dense
            && let Some((first, _)) = layers.first()
        {
            d.custom.insert(first.clone(), 0.0);
        }
        d
    }
}

impl Default for GmpHparams {
    /// The defaults of every field, at sparsity 0.
    fn default() -> GmpHparams {
        GmpHparams::new(0.0)
    }
}

/// When a GMP run prunes and to what sparsity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GmpSchedule {
    /// The first pruning step.
    pub t0: u64,
    /// Steps between pruning steps.
    pub dt: u64,
    /// Pruning steps after the first (the last is `t0 + n·dt`).
    pub n: u64,
    pub initial: f64,
    pub last: f64,
}

impl GmpSchedule {
    /// Whether step `t` (counting from 0) prunes.
    pub fn prunes_at(&self, t: u64) -> bool {
        t >= self.t0 && (t - self.t0).is_multiple_of(self.dt) && (t - self.t0) / self.dt <= self.n
    }

    /// The pruning steps, in order.
    pub fn steps(&self) -> impl Iterator<Item = u64> + '_ {
        (0..=self.n).map(|j| self.t0 + j * self.dt)
    }

    /// The network's sparsity in force after step `t`: 0 before `t0`, the cubic from the last
    /// pruning step at or before `t`.
    pub fn sparsity_at(&self, t: u64) -> f64 {
        if t < self.t0 {
            return 0.0;
        }
        let j = ((t - self.t0) / self.dt).min(self.n);
        let left = 1.0 - j as f64 / self.n as f64;
        self.last + (self.initial - self.last) * left.powi(3)
    }
}

/// One layer at one pruning step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GmpRow {
    /// The pruning step (counting from 0).
    pub step: u64,
    pub layer: String,
    /// The network's sparsity of the schedule at this step.
    pub target: f64,
    /// Weights of the layer.
    pub total: i64,
    /// Weights it keeps after the step.
    pub kept: i64,
    /// Of those, weights that were pruned before the step and came back (`regrow` only).
    #[serde(default)]
    pub regrown: i64,
}

/// The pruning hook.
#[derive(Debug)]
pub struct Gmp {
    hp: GmpHparams,
    schedule: GmpSchedule,
    /// Each prunable layer at its final sparsity (layerwise: the distribution's; global: `s_f`,
    /// only the names, shapes and totals are used).
    layers: Vec<LayerSparsity>,
    /// Where each prunable kernel is applied per example (for the FLOPs).
    positions: Vec<i64>,
    steps: u64,
    batch: u64,
    done: u64,
    log: Option<CsvLog<GmpRow>>,
    rows: Vec<GmpRow>,
    /// With `regrow`: each layer's pruned weights at the values they had when pruned (zero where
    /// kept); a layer is absent until its first weight leaves.
    held: Named,
}

const DONE: &str = "steps";
const HELD: &str = "held.";

impl Gmp {
    /// Pruning the prunable `weights` (applied at `positions`) of a run of `steps` steps of
    /// `batch` examples on `schedule`; logs to `log` when given.
    pub fn new(
        hp: &GmpHparams,
        schedule: GmpSchedule,
        weights: &[(String, Tensor)],
        positions: &[i64],
        steps: u64,
        batch: u64,
        log: Option<CsvLog<GmpRow>>,
    ) -> Result<Gmp> {
        let shapes = lth_prune::distribution::shapes(weights);
        let layers = match hp.scope {
            Strategy::Layerwise => hp.distribution(&shapes).sparsities(&shapes)?,
            Strategy::Global => {
                Distribution::new(Spread::Uniform, hp.sparsity).sparsities(&shapes)?
            }
        };
        Ok(Gmp {
            hp: hp.clone(),
            schedule,
            layers,
            positions: positions.to_vec(),
            steps,
            batch,
            done: 0,
            log,
            rows: Vec::new(),
            held: Named::new(),
        })
    }

    /// The per-layer final sparsities of a layerwise schedule.
    pub fn layers(&self) -> &[LayerSparsity] {
        &self.layers
    }

    /// The log so far.
    pub fn rows(&self) -> &[GmpRow] {
        &self.rows
    }

    /// The layer's sparsity at step `t` of a layerwise schedule: its final share scaled by the
    /// cubic.
    pub fn layer_sparsity_at(&self, layer: &LayerSparsity, t: u64) -> f64 {
        if self.hp.sparsity == 0.0 {
            return 0.0;
        }
        (layer.sparsity * self.schedule.sparsity_at(t) / self.hp.sparsity).clamp(0.0, 1.0)
    }

    /// The held values of pruned weights (`regrow`), by layer.
    pub fn held(&self) -> &Named {
        &self.held
    }

    /// The mask step `t` leaves: `mask` with the smallest magnitudes of `weights` removed; with
    /// `regrow`, chosen among every weight, the pruned ones at their held magnitudes.
    pub fn prune(&self, t: u64, weights: &Named, mask: &Mask) -> Result<Mask> {
        let scores: Vec<(String, Tensor)> = self
            .layers
            .iter()
            .map(|l| {
                let w = weights.get(&l.name).ok_or_else(|| {
                    TrainError::Invalid(format!("no weights for prunable layer `{}`", l.name))
                })?;
                // A pruned weight is zero in storage, and its held value is zero where kept.
                let score = match self.held.get(&l.name).filter(|_| self.hp.regrow) {
                    Some(h) => (w + h.to_device(w.device())).abs(),
                    None => w.abs(),
                };
                Ok((l.name.clone(), score))
            })
            .collect::<Result<_>>()?;
        let everything;
        let mask = if self.hp.regrow {
            everything = Mask::from_named(
                mask.iter()
                    .map(|(n, m)| (n.to_owned(), m.ones_like()))
                    .collect(),
            )?;
            &everything
        } else {
            mask
        };
        Ok(match self.hp.scope {
            Strategy::Layerwise => select_layerwise(&scores, mask, Keep::Largest, |name| {
                let s = self
                    .layers
                    .iter()
                    .find(|l| l.name == name)
                    .map_or(0.0, |l| self.layer_sparsity_at(l, t));
                Count::SparsityFloor(s)
            })?,
            Strategy::Global => {
                let skip = usize::from(self.hp.first_layer_dense);
                let included: Vec<String> = self
                    .layers
                    .iter()
                    .skip(skip)
                    .map(|l| l.name.clone())
                    .collect();
                select_global(
                    &scores,
                    mask,
                    &included,
                    Keep::Largest,
                    Count::SparsityFloor(self.schedule.sparsity_at(t)),
                )?
            }
        })
    }

    /// The FLOPs of the run from its log: dense through the first pruning step, then each step
    /// at the counts the last pruning step before it left.
    pub fn run_flops(&self) -> Flops {
        let at = |kept: &dyn Fn(&LayerSparsity) -> i64| {
            let layers: Vec<LayerSparsity> = self
                .layers
                .iter()
                .map(|l| LayerSparsity {
                    kept: kept(l),
                    ..l.clone()
                })
                .collect();
            lth_prune::flops::inference(&layers, &self.positions)
        };
        let (_, f_d) = at(&|l| l.total);
        let mut steps: Vec<u64> = self.rows.iter().map(|r| r.step).collect();
        steps.dedup();
        let phases: Vec<(u64, f64)> = steps
            .into_iter()
            .map(|s| {
                let (f_s, _) = at(&|l| {
                    self.rows
                        .iter()
                        .find(|r| r.step == s && r.layer == l.name)
                        .map_or(l.total, |r| r.kept)
                });
                // Step `s` trained under the mask before it; the new one holds from `s + 1`.
                (s + 1, f_s)
            })
            .collect();
        Flops::phased(f_d, &phases, self.steps, self.batch)
    }
}

impl Hook for Gmp {
    fn name(&self) -> &str {
        "gmp"
    }

    fn after_step(&mut self, t: u64, ctx: &mut StepContext<'_>) -> Result<()> {
        self.done = t + 1;
        if !self.schedule.prunes_at(t) {
            return Ok(());
        }
        let mask = ctx
            .optimizer
            .mask()
            .ok_or_else(|| TrainError::Invalid("gradual pruning without a mask".into()))?
            .clone();
        let weights = ctx.optimizer.weights();
        let new = self.prune(t, &weights, &mask)?;
        // Per layer: the weights leaving (`gone`) and those coming back (`back`, regrow only).
        let mut changed = Vec::new();
        let mut regrown = Named::new();
        for (n, old) in mask.iter() {
            let kept = new.get(n).map_or_else(|| old.copy(), Tensor::shallow_clone);
            let gone = old.logical_and(&kept.logical_not());
            let back = kept.logical_and(&old.logical_not());
            if self.hp.regrow
                && let Some(w) = weights.get(n)
            {
                let held = self
                    .held
                    .get(n)
                    .map_or_else(|| w.zeros_like(), |h| h.to_device(w.device()));
                let stay = gone.logical_not().to_device(w.device());
                let away = back.logical_not().to_device(w.device());
                tch::no_grad(|| {
                    // Hold the leaving weights' values before the mask zeroes them; give the
                    // returning ones theirs back (the mask set below keeps them).
                    let holding = held.where_self(&stay, w);
                    w.shallow_clone().copy_(&w.where_self(&away, &held));
                    self.held
                        .insert(n, holding.where_self(&away, &holding.zeros_like()));
                });
                regrown.insert(n, back.sum(Kind::Int64));
            }
            changed.push((n.to_owned(), gone.logical_or(&back)));
        }
        ctx.optimizer.reset_state(&Mask::from_named(changed)?)?;
        ctx.optimizer.set_mask(&new)?;
        let target = self.schedule.sparsity_at(t);
        for l in &self.layers {
            let kept = new
                .get(&l.name)
                .map_or(l.total, |m| m.sum(Kind::Int64).int64_value(&[]));
            self.rows.push(GmpRow {
                step: t,
                layer: l.name.clone(),
                target,
                total: l.total,
                kept,
                regrown: regrown.get(&l.name).map_or(0, |b| b.int64_value(&[])),
            });
        }
        if let Some(log) = &self.log {
            log.save(&self.rows)?;
        }
        Ok(())
    }

    fn flops(&self) -> Option<Flops> {
        Some(self.run_flops())
    }

    fn state(&self) -> Named {
        let mut out = Named::new();
        out.insert(DONE.to_owned(), Tensor::from_slice(&[self.done as i64]));
        for (n, h) in self.held.iter() {
            out.insert(format!("{HELD}{n}"), h.copy());
        }
        out
    }

    fn load_state(&mut self, state: &Named) -> Result<()> {
        self.done = state
            .get(DONE)
            .ok_or_else(|| TrainError::Invalid("the checkpoint lacks the gmp hook's steps".into()))?
            .int64_value(&[0]) as u64;
        self.held = Named::new();
        for (n, h) in state.iter() {
            if let Some(layer) = n.strip_prefix(HELD) {
                self.held.insert(layer, h.copy());
            }
        }
        if let Some(log) = &self.log {
            self.rows = log.load()?;
            self.rows.retain(|r| r.step < self.done);
            log.save(&self.rows)?;
        }
        Ok(())
    }
}

/// A run pruned gradually: what `lth train --gmp` stores (folder `gmp_<hash>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GmpRun {
    pub train: TrainHparams,
    pub gmp: GmpHparams,
}

/// Trains replicate `replicate` of `run` in `dir`, dense until the schedule's first pruning step,
/// logging each pruning step to `gmp.csv`; the final mask is saved as `mask.safetensors` and the
/// FLOPs go into `done.json`.
pub fn train_gmp(
    dir: &RunDir,
    run: &GmpRun,
    replicate: u64,
    data: &Data,
    progress: &mut dyn Progress,
) -> Result<(RunSummary, Mask)> {
    let hp = &run.train;
    let mut setup = Setup::new(hp, replicate, data)?;
    let mut plan = setup.plan(hp);
    let schedule = run.gmp.schedule(plan.to, setup.loader.steps_per_epoch())?;
    if dir.is_done()? {
        let summary = run_resumable(dir, &mut setup, &plan, &mut Hooks::none(), progress)?;
        return Ok((summary, Mask::load(&dir.join(MASK_FILE))?));
    }
    let weights = setup.model.prunable_tensors();
    let mut gmp = Gmp::new(
        &run.gmp,
        schedule,
        &weights,
        setup.model.positions(),
        plan.to,
        hp.dataset.batch_size,
        Some(CsvLog::new(dir.join(GMP_FILE))),
    )?;
    dir.create()?;
    setup.optimizer.set_mask(&Mask::ones(&weights))?;
    plan.save_final_mask = true;
    let summary = {
        let mut hooks = Hooks::new(vec![&mut gmp])?;
        run_resumable(dir, &mut setup, &plan, &mut hooks, progress)?
    };
    let mask = setup
        .optimizer
        .mask()
        .cloned()
        .ok_or_else(|| TrainError::Invalid("gradual pruning lost its mask".into()))?;
    Ok((summary, mask))
}

// The method's flags and its place in the registry.

#[cfg(feature = "clap")]
/// Flags of gradual magnitude pruning (`lth train --gmp`); the layerwise spread comes from
/// --distribution, --erk-power and --first-layer-dense.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GmpFlags {
    /// Prune gradually by magnitude during training (Zhu & Gupta), to --sparsity; the layerwise
    /// spread is --distribution (default uniform).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub gmp: Option<bool>,
    /// The first pruning step: a percentage of training or a step count (default 10%).
    #[arg(long, value_name = "WHEN")]
    pub gmp_start: Option<UpdateEnd>,
    /// The end of the pruning window (default 75%).
    #[arg(long, value_name = "WHEN")]
    pub gmp_end: Option<UpdateEnd>,
    /// Steps between pruning steps, e.g. 100it or 1ep (default 100it).
    #[arg(long, value_name = "STEPS")]
    pub gmp_every: Option<Steps>,
    /// The sparsity of the first pruning step, in [0, --sparsity] (default 0).
    #[arg(long, value_name = "S")]
    pub gmp_initial: Option<f64>,
    /// layerwise (each layer to its share; default) or global (one threshold).
    #[arg(long, value_name = "SCOPE")]
    pub gmp_scope: Option<lth_prune::Strategy>,
    /// Let pruned weights come back at later pruning steps, ranked by the magnitude they had when
    /// pruned (TF model_pruning's behaviour) [default: false: pruned weights stay pruned].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub gmp_regrow: Option<bool>,
}

#[cfg(feature = "clap")]
impl GmpFlags {
    /// Whether --gmp is on.
    pub fn given(&self) -> bool {
        self.gmp == Some(true)
    }

    /// The gradual pruning these flags ask for at `--sparsity`, spread by `spread` (`None`: no
    /// --gmp), checked as far as it can be without the run's length.
    pub fn resolve(
        &self,
        sparsity: Option<f64>,
        spread: &DistributionFlags,
    ) -> Result<Option<GmpHparams>> {
        if !self.given() {
            if self.gmp_start.is_some()
                || self.gmp_end.is_some()
                || self.gmp_every.is_some()
                || self.gmp_initial.is_some()
                || self.gmp_scope.is_some()
                || self.gmp_regrow.is_some()
            {
                return Err(TrainError::Invalid(
                    "--gmp-start, --gmp-end, --gmp-every, --gmp-initial, --gmp-scope and \
                     --gmp-regrow need --gmp"
                        .into(),
                ));
            }
            return Ok(None);
        }
        let sparsity = sparsity.ok_or_else(|| {
            TrainError::Invalid(
                "--gmp needs --sparsity (the final fraction of prunable weights removed)".into(),
            )
        })?;
        if !spread.dense_layers.is_empty() || !spread.layer_sparsity.is_empty() {
            return Err(TrainError::Invalid(
                "--dense-layers and --layer-sparsity are not supported with --gmp (use \
                 --first-layer-dense)"
                    .into(),
            ));
        }
        let mut g = GmpHparams::new(sparsity);
        set(&mut g.start, self.gmp_start);
        set(&mut g.end, self.gmp_end);
        set(&mut g.every, self.gmp_every);
        set(&mut g.initial, self.gmp_initial);
        set(&mut g.scope, self.gmp_scope);
        set(&mut g.distribution, spread.distribution);
        set(&mut g.erk_power, spread.erk_power);
        g.first_layer_dense = spread.first_layer_dense.unwrap_or(false);
        g.regrow = self.gmp_regrow.unwrap_or(false);
        g.validate()?;
        Ok(Some(g))
    }
}

#[cfg(feature = "clap")]
impl crate::method::MethodFlags for GmpFlags {
    fn asked(&self) -> Option<String> {
        self.given().then(|| "--gmp".to_owned())
    }

    fn takes(&self) -> crate::method::Takes {
        crate::method::Takes::SparsityAndSpread
    }

    fn method(
        &self,
        shared: crate::method::Shared,
        hp: &TrainHparams,
    ) -> Result<Option<Box<dyn Method>>> {
        Ok(self.resolve(shared.sparsity, shared.spread)?.map(|gmp| {
            Box::new(GmpRun {
                train: hp.clone(),
                gmp,
            }) as Box<dyn Method>
        }))
    }
}

impl Method for GmpRun {
    fn flag(&self) -> String {
        "--gmp".into()
    }

    fn kind(&self) -> RunKind {
        RunKind::Gmp
    }

    fn train_hparams(&self) -> &TrainHparams {
        &self.train
    }

    fn describe(&self) -> String {
        let g = &self.gmp;
        format!(
            ", pruned gradually ({}, {} to sparsity {} from {} to {} every {})",
            g.scope, g.distribution, g.sparsity, g.start, g.end, g.every
        )
    }

    /// The distribution's layers and budget.
    fn check(&self) -> Result<()> {
        let model = crate::method::outline(&self.train)?;
        let shapes = lth_prune::distribution::shapes(&model.prunable_tensors());
        self.gmp.distribution(&shapes).sparsities(&shapes)?;
        Ok(())
    }

    /// The schedule against the run's length (start, end, interval).
    fn check_data(&self, data: &Data) -> Result<()> {
        let hp = &self.train;
        let per_epoch = data.iterations_per_epoch(hp.dataset.batch_size);
        self.gmp
            .schedule(hp.training.steps.iterations(per_epoch), per_epoch)?;
        Ok(())
    }

    fn train(
        &self,
        dir: &RunDir,
        replicate: u64,
        data: &Data,
        progress: &mut dyn Progress,
    ) -> Result<(RunSummary, Option<Mask>)> {
        train_gmp(dir, self, replicate, data, progress).map(|(s, m)| (s, Some(m)))
    }

    fn report(&self, dir: &RunDir, summary: &RunSummary) -> Vec<String> {
        let Ok(rows) = CsvLog::<GmpRow>::new(dir.join(GMP_FILE)).load() else {
            return Vec::new();
        };
        let Some(last) = rows.last().map(|r| r.step) else {
            return Vec::new();
        };
        let at_end: Vec<_> = rows.iter().filter(|r| r.step == last).collect();
        let (kept, total) = at_end
            .iter()
            .fold((0, 0), |(k, t), r| (k + r.kept, t + r.total));
        let mut steps: Vec<u64> = rows.iter().map(|r| r.step).collect();
        steps.dedup();
        let mut lines = vec![format!(
            "  pruned gradually: {kept} of {total} prunable weights kept ({:.2}%) after {} \
             pruning steps (the last at step {last})",
            100.0 * kept as f64 / total.max(1) as f64,
            steps.len()
        )];
        let regrown: i64 = rows.iter().map(|r| r.regrown).sum();
        if regrown > 0 {
            lines.push(format!(
                "  {regrown} pruned weights came back at later pruning steps (--gmp-regrow)"
            ));
        }
        lines.extend(
            at_end
                .iter()
                .map(|r| crate::method::layer_line(&r.layer, r.kept, r.total)),
        );
        if let Some(f) = &summary.flops {
            lines.push(format!(
                "  FLOPs against dense (as the RigL paper counts them: dense until the first \
                 pruning step): training {:.3}×, inference {:.3}×",
                f.training_relative, f.inference_relative
            ));
        }
        lines.push(
            "  files: gmp.csv (each pruning step's target, kept and regrown counts per layer), \
             mask.safetensors (the final mask)"
                .into(),
        );
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any valid schedule prunes at t0, t0 + Δt, …, t0 + nΔt and nowhere else, starts at
        /// s_i, ends at s_f at or before the window's end, and never lowers the sparsity.
        #[test]
        fn schedules_rise_from_the_initial_to_the_final_sparsity_on_their_steps(
            total in 10u64..5000,
            start in 0.0f64..0.5,
            span in 0.1f64..0.5,
            every in 1u64..400,
            last in 0.0f64..0.99,
            initial_share in 0.0f64..1.0,
        ) {
            let mut g = GmpHparams::new(last);
            g.initial = last * initial_share;
            g.start = UpdateEnd::Fraction(start);
            g.end = UpdateEnd::Fraction(start + span);
            g.every = Steps::it(every);
            let Ok(s) = g.schedule(total, 100) else {
                // Refused only for an interval longer than the window or an empty window.
                let (t0, end) = ((start * total as f64) as u64, ((start + span) * total as f64) as u64);
                prop_assert!(end <= t0 || every > end - t0);
                return Ok(());
            };
            let steps: Vec<u64> = s.steps().collect();
            prop_assert_eq!(steps.len() as u64, s.n + 1);
            prop_assert!(*steps.last().unwrap() <= ((start + span) * total as f64) as u64);
            for t in 0..total {
                prop_assert_eq!(s.prunes_at(t), steps.contains(&t));
            }
            prop_assert!((s.sparsity_at(steps[0]) - g.initial).abs() < 1e-12);
            prop_assert!((s.sparsity_at(*steps.last().unwrap()) - last).abs() < 1e-12);
            let mut before = 0.0;
            for t in 0..total {
                let now = s.sparsity_at(t);
                prop_assert!(now >= before - 1e-12, "step {t}: {now} after {before}");
                before = now;
            }
        }
    }
}
