//! Sparse training from scratch: static sparse, SET and RigL (Evci et al., 2020), as a [`Hook`].
//!
//! The network starts sparse, with a random mask drawn per layer from a [`Distribution`] (uniform,
//! ER, ERK), and is never dense. Static sparse training keeps that mask. SET and RigL rewire it every
//! `update_every` steps until `update_end`: per layer, the ⌊f·a⌋ of its `a` active weights with the
//! smallest magnitude leave, and as many join from the rest (a weight that just left may rejoin):
//! SET chooses them at random, RigL by the largest magnitude of the dense gradient of the step's
//! batch. `f` follows the drop schedule: `α/2 · (1 + cos(π t / T_end))` (cosine) or `α` (constant).
//! Joining weights start at zero, with their optimiser state (momentum, Adam's moments) reset; as
//! in rigl's code, the update step applies no optimiser update (unless `keep_update_step`).
//! Updates happen at the steps `t` (counting from 0) with `t % update_every == 0` and
//! `t ≤ T_end`, step 0 included (rigl's `maskupdate_begin_step` is 0).
//!
//! **Host synchronisation.** None on the steps between updates: the hook returns at once. On an
//! update step the selection reads a threshold per layer (a k-th value) and the churn counts, so
//! it synchronises there; the per-layer active counts are kept on the host and need no read.
//!
//! **Resume.** The mask in force is in the resume checkpoint (the optimiser's), the hook's state
//! holds which weights were ever active and how many steps were done, and the churn log is cut
//! back to the checkpoint on resume: a run killed between updates ends bit-identical.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use lth_models::Named;
use lth_prune::{Distribution, Flops, LayerSparsity, MASK_FILE, Mask, Spread};
use lth_store::{CsvLog, RunDir};

use lth_store::RunKind;

#[cfg(feature = "clap")]
use crate::method::{DistributionFlags, set};
use crate::method::Method;
use crate::{
    Data, Hook, Hooks, Progress, Result, RunPlan, RunSummary, Setup, StepContext, Steps,
    TrainError, TrainHparams, Update, run_resumable,
};

/// The per-update churn log of a sparse run.
pub const UPDATES_FILE: &str = "updates.csv";
/// The per-layer sparsities of a sparse run's distribution.
pub const DISTRIBUTION_FILE: &str = "distribution.csv";
/// The `lth-rng` domain of SET's random growth.
pub const SET_GROW: &str = "set_grow";

/// How the mask evolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparseMode {
    /// The initial random mask, kept.
    Static,
    /// Drop the smallest magnitudes, grow at random (Mocanu et al., 2018).
    Set,
    /// Drop the smallest magnitudes, grow the largest dense gradients (Evci et al., 2020).
    Rigl,
}

impl SparseMode {
    pub const ALL: [SparseMode; 3] = [SparseMode::Static, SparseMode::Set, SparseMode::Rigl];

    pub fn name(self) -> &'static str {
        match self {
            SparseMode::Static => "static",
            SparseMode::Set => "set",
            SparseMode::Rigl => "rigl",
        }
    }
}

impl std::fmt::Display for SparseMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for SparseMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        SparseMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown sparse training mode `{s}` (known: static, set, rigl)"))
    }
}

/// How the drop fraction decays over the updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropSchedule {
    /// `α/2 · (1 + cos(π t / T_end))` (RigL's).
    #[default]
    Cosine,
    /// `α` at every update.
    Constant,
}

impl std::str::FromStr for DropSchedule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cosine" => Ok(DropSchedule::Cosine),
            "constant" => Ok(DropSchedule::Constant),
            _ => Err(format!(
                "unknown drop schedule `{s}` (known: cosine, constant)"
            )),
        }
    }
}

/// The last step of the updates: a fraction of training (`75%`) or a step count (`3ep`, `500it`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpdateEnd {
    Fraction(f64),
    At(Steps),
}

impl UpdateEnd {
    /// In steps, for a run of `total` steps of `per_epoch` each.
    pub fn steps(self, total: u64, per_epoch: u64) -> u64 {
        match self {
            UpdateEnd::Fraction(f) => (f * total as f64).floor() as u64,
            UpdateEnd::At(s) => s.iterations(per_epoch),
        }
    }
}

impl Default for UpdateEnd {
    fn default() -> Self {
        UpdateEnd::Fraction(0.75)
    }
}

impl std::fmt::Display for UpdateEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateEnd::Fraction(x) => write!(f, "{}%", x * 100.0),
            UpdateEnd::At(s) => write!(f, "{s}"),
        }
    }
}

impl std::str::FromStr for UpdateEnd {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(p) = s.trim().strip_suffix('%') {
            let x: f64 = p
                .parse()
                .map_err(|_| format!("bad update end `{s}`: expected a percentage like 75%"))?;
            if !(0.0..=100.0).contains(&x) {
                return Err(format!("update end `{s}` must be between 0% and 100%"));
            }
            return Ok(UpdateEnd::Fraction(x / 100.0));
        }
        s.parse::<Steps>()
            .map(UpdateEnd::At)
            .map_err(|e| format!("{e}, or a percentage of training like 75%"))
    }
}

impl Serialize for UpdateEnd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for UpdateEnd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How a run trains sparse from scratch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseHparams {
    pub mode: SparseMode,
    pub distribution: Spread,
    /// The network's target sparsity over its prunable weights, in [0, 1).
    pub sparsity: f64,
    /// ERK's power on the raw density.
    #[serde(default = "one")]
    pub erk_power: f64,
    /// Leave the first prunable layer dense, outside the budget (rigl's uniform variant).
    #[serde(default)]
    pub first_layer_dense: bool,
    /// Layers left dense, inside the budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dense_layers: Vec<String>,
    /// Layers at their own sparsity, outside the budget.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layer_sparsity: BTreeMap<String, f64>,
    /// Steps between mask updates (ΔT).
    #[serde(default = "hundred")]
    pub update_every: u64,
    /// The drop fraction α at the first update.
    #[serde(default = "point_three")]
    pub drop_fraction: f64,
    /// No updates after this step (T_end).
    #[serde(default)]
    pub update_end: UpdateEnd,
    #[serde(default)]
    pub drop_schedule: DropSchedule,
    /// Apply the optimiser's update on update steps too (the reference skips it).
    #[serde(default)]
    pub keep_update_step: bool,
}

fn one() -> f64 {
    1.0
}
fn hundred() -> u64 {
    100
}
fn point_three() -> f64 {
    0.3
}

impl SparseHparams {
    /// `mode` with `distribution` at `sparsity`, and RigL's defaults: ΔT = 100, α = 0.3, cosine
    /// decay, T_end at 75% of training.
    pub fn new(mode: SparseMode, distribution: Spread, sparsity: f64) -> SparseHparams {
        SparseHparams {
            mode,
            distribution,
            sparsity,
            erk_power: 1.0,
            first_layer_dense: false,
            dense_layers: Vec::new(),
            layer_sparsity: BTreeMap::new(),
            update_every: 100,
            drop_fraction: 0.3,
            update_end: UpdateEnd::default(),
            drop_schedule: DropSchedule::Cosine,
            keep_update_step: false,
        }
    }

    /// Checks the settings, naming the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        if !(0.0..1.0).contains(&self.sparsity) {
            return bad(format!(
                "--sparsity must be in [0, 1) (the fraction of prunable weights removed), got {}",
                self.sparsity
            ));
        }
        if self.update_every == 0 {
            return bad("--update-every must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.drop_fraction) {
            return bad(format!(
                "--drop-fraction must be in [0, 1], got {}",
                self.drop_fraction
            ));
        }
        Ok(())
    }

    /// The distribution over the prunable layers of a model.
    pub fn distribution(&self, layers: &[(String, Vec<i64>)]) -> Result<Distribution> {
        let mut d = Distribution::new(self.distribution, self.sparsity);
        d.power = self.erk_power;
        d.dense = self.dense_layers.clone();
        d.custom = self.layer_sparsity.clone();
        if self.first_layer_dense
            && let Some((first, _)) = layers.first()
        {
            d.custom.insert(first.clone(), 0.0);
        }
        Ok(d)
    }

    /// Each prunable layer's sparsity for `weights`.
    pub fn layer_sparsities(&self, weights: &[(String, Tensor)]) -> Result<Vec<LayerSparsity>> {
        let layers = lth_prune::distribution::shapes(weights);
        Ok(self.distribution(&layers)?.sparsities(&layers)?)
    }

    /// The drop fraction at step `t` of updates ending at `end`.
    pub fn drop_fraction_at(&self, t: u64, end: u64) -> f64 {
        match self.drop_schedule {
            DropSchedule::Constant => self.drop_fraction,
            DropSchedule::Cosine => {
                let x = if end == 0 { 0.0 } else { t as f64 / end as f64 };
                self.drop_fraction / 2.0 * (1.0 + (std::f64::consts::PI * x).cos())
            }
        }
    }
}

/// One layer at one update: the mask churn researchers plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRow {
    /// The step of the update (counting from 0).
    pub step: u64,
    pub layer: String,
    pub drop_fraction: f64,
    /// Active weights of the layer (unchanged by the update).
    pub active: i64,
    pub dropped: i64,
    /// Weights that joined (newly active; a weight dropped and regrown in the same update counts
    /// in neither).
    pub grown: i64,
    /// Of those that joined, how many had been active at some earlier point of training.
    pub reactivated: i64,
}

/// The rewiring hook of SET and RigL (static sparse training needs no hook).
#[derive(Debug)]
pub struct Rewiring {
    hp: SparseHparams,
    end: u64,
    seed: u64,
    /// Active weights per layer, on the host (constant: every update drops as many as it grows).
    active: Vec<(String, i64)>,
    /// Which weights were ever active, per layer.
    ever: Named,
    done: u64,
    log: Option<CsvLog<UpdateRow>>,
    rows: Vec<UpdateRow>,
}

const EVER: &str = "ever.";
const DONE: &str = "steps";

impl Rewiring {
    /// Rewiring of a run whose current mask is `mask`, ending updates at step `end`, SET drawing
    /// from `seed`; logs to `log` when given.
    pub fn new(
        hp: &SparseHparams,
        mask: &Mask,
        end: u64,
        seed: u64,
        log: Option<CsvLog<UpdateRow>>,
    ) -> Rewiring {
        let active = mask
            .counts()
            .into_iter()
            .map(|c| (c.name, c.kept))
            .collect();
        Rewiring {
            hp: hp.clone(),
            end,
            seed,
            active,
            ever: mask.iter().map(|(n, m)| (n.to_owned(), m.copy())).collect(),
            done: 0,
            log,
            rows: Vec::new(),
        }
    }

    /// Whether step `t` rewires.
    pub fn is_update(&self, t: u64) -> bool {
        self.hp.mode != SparseMode::Static
            && t <= self.end
            && t.is_multiple_of(self.hp.update_every)
    }

    /// The FLOPs of training `plan` with batches of `hp`'s size from a mask of the per-layer
    /// counts `layers` (which rewiring keeps), the kernels applied at `positions`: every RigL
    /// update step computes the dense weight gradient; SET's and static training's steps are all
    /// sparse ([`lth_prune::flops`]).
    pub fn flops(
        &self,
        layers: &[LayerSparsity],
        positions: &[i64],
        plan: &RunPlan,
        hp: &TrainHparams,
    ) -> Flops {
        let (f_s, f_d) = lth_prune::flops::inference(layers, positions);
        let dense_gradient_steps = match self.hp.mode {
            SparseMode::Rigl => (plan.from..plan.to).filter(|&t| self.is_update(t)).count() as u64,
            SparseMode::Static | SparseMode::Set => 0,
        };
        Flops::training(
            f_s,
            f_d,
            plan.to.saturating_sub(plan.from),
            dense_gradient_steps,
            hp.dataset.batch_size,
        )
    }

    /// The churn rows so far.
    pub fn rows(&self) -> &[UpdateRow] {
        &self.rows
    }

    fn grow_scores(
        &self,
        name: &str,
        t: u64,
        ctx: &StepContext<'_>,
        like: &Tensor,
    ) -> Result<Tensor> {
        Ok(match self.hp.mode {
            SparseMode::Rigl => ctx
                .optimizer
                .grad(name)
                .ok_or_else(|| TrainError::Invalid(format!("no gradient for `{name}`")))?
                .abs(),
            _ => {
                let key = format!("{name}@{t}");
                let v = lth_rng::Stream::named(self.seed, SET_GROW, &key).uniform(
                    like.numel(),
                    0.0,
                    1.0,
                );
                Tensor::from_slice(&v)
                    .view(like.size().as_slice())
                    .to_device(like.device())
            }
        })
    }
}

impl Hook for Rewiring {
    fn name(&self) -> &str {
        "sparse"
    }

    fn after_backward(&mut self, t: u64, ctx: &mut StepContext<'_>) -> Result<Update> {
        if !self.is_update(t) {
            return Ok(Update::Apply);
        }
        let f = self.hp.drop_fraction_at(t, self.end);
        let mask = ctx
            .optimizer
            .mask()
            .ok_or_else(|| TrainError::Invalid("sparse training without a mask".into()))?
            .clone();
        let weights = ctx.optimizer.weights();
        let (mut new, mut grown) = (Vec::new(), Vec::new());
        for (name, active) in &self.active {
            let old = mask
                .get(name)
                .ok_or_else(|| TrainError::Invalid(format!("no mask for `{name}`")))?;
            let w = weights
                .get(name)
                .ok_or_else(|| TrainError::Invalid(format!("no weights for `{name}`")))?;
            let n = (f * *active as f64).floor() as i64;
            let grow = self.grow_scores(name, t, ctx, w)?;
            let m = lth_prune::drop_and_grow(name, old, &w.abs(), &grow, n)?;
            let joined = m.logical_and(&old.logical_not());
            #[allow(
                clippy::expect_used,
                reason = "built with one entry per layer of the mask"
            )]
            let ever = self.ever.get(name).expect("one per layer");
            let count = |x: &Tensor| x.sum(Kind::Int64).int64_value(&[]);
            self.rows.push(UpdateRow {
                step: t,
                layer: name.clone(),
                drop_fraction: f,
                active: *active,
                dropped: count(&old.logical_and(&m.logical_not())),
                grown: count(&joined),
                reactivated: count(&joined.logical_and(ever)),
            });
            self.ever.insert(name.clone(), ever.logical_or(&m));
            new.push((name.clone(), m));
            grown.push((name.clone(), joined));
        }
        ctx.optimizer.set_mask(&Mask::from_named(new)?)?;
        ctx.optimizer.reset_state(&Mask::from_named(grown)?)?;
        if let Some(log) = &self.log {
            log.save(&self.rows)?;
        }
        Ok(if self.hp.keep_update_step {
            Update::Apply
        } else {
            Update::Skip
        })
    }

    fn after_step(&mut self, t: u64, _ctx: &mut StepContext<'_>) -> Result<()> {
        self.done = t + 1;
        Ok(())
    }

    fn state(&self) -> Named {
        let mut out: Named = self
            .ever
            .iter()
            .map(|(n, t)| (format!("{EVER}{n}"), t.shallow_clone()))
            .collect();
        out.insert(DONE.to_owned(), Tensor::from_slice(&[self.done as i64]));
        out
    }

    fn load_state(&mut self, state: &Named) -> Result<()> {
        let done = state
            .get(DONE)
            .ok_or_else(|| {
                TrainError::Invalid("the checkpoint lacks the sparse hook's steps".into())
            })?
            .int64_value(&[0]) as u64;
        let ever = state.strip_prefix(EVER);
        for (name, _) in &self.active {
            let t = ever.get(name).ok_or_else(|| {
                TrainError::Invalid(format!("the checkpoint lacks the history of `{name}`"))
            })?;
            self.ever.insert(name.clone(), t.to_device(t.device()));
        }
        self.done = done;
        if let Some(log) = &self.log {
            self.rows = log.load()?;
            self.rows.retain(|r| r.step < done);
            log.save(&self.rows)?;
        }
        Ok(())
    }
}

/// A run trained sparse from scratch: what `lth train --sparse` stores (folder `sparse_<hash>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseRun {
    pub train: TrainHparams,
    pub sparse: Option<SparseHparams>,
}

/// One row of `distribution.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionRow {
    pub layer: String,
    pub shape: String,
    pub total: i64,
    pub sparsity: f64,
    pub kept: i64,
}

impl From<&LayerSparsity> for DistributionRow {
    fn from(l: &LayerSparsity) -> Self {
        DistributionRow {
            layer: l.name.clone(),
            shape: l
                .shape
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join("x"),
            total: l.total,
            sparsity: l.sparsity,
            kept: l.kept,
        }
    }
}

/// Trains replicate `replicate` of `run` in `dir`. The initial mask is drawn from the distribution
/// with the replicate's initialisation seed (`distribution.csv` lists the per-layer sparsities) and
/// the run rewires as its mode says, logging the churn to `updates.csv`; the final mask is saved
/// as `mask.safetensors`. Without `sparse`, trains dense.
pub fn train_sparse(
    dir: &RunDir,
    run: &SparseRun,
    replicate: u64,
    data: &Data,
    progress: &mut dyn Progress,
) -> Result<(RunSummary, Option<Mask>)> {
    let hp = &run.train;
    let mut setup = Setup::new(hp, replicate, data)?;
    let plan = setup.plan(hp);
    let Some(sp) = &run.sparse else {
        let summary = run_resumable(dir, &mut setup, &plan, &mut Hooks::none(), progress)?;
        return Ok((summary, None));
    };
    sp.validate()?;
    let mask_path = dir.join(MASK_FILE);
    if dir.is_done()? {
        let summary = run_resumable(dir, &mut setup, &plan, &mut Hooks::none(), progress)?;
        return Ok((summary, Some(Mask::load(&mask_path)?)));
    }
    let layers = sp.layer_sparsities(&setup.model.prunable_tensors())?;
    let seed = hp.init_seed(replicate);
    let mask = lth_prune::distribution::random_mask(&layers, seed, setup.model.device());
    dir.create()?;
    CsvLog::<DistributionRow>::new(dir.join(DISTRIBUTION_FILE))
        .save(&layers.iter().map(DistributionRow::from).collect::<Vec<_>>())?;
    setup.optimizer.set_mask(&mask)?;
    let end = sp.update_end.steps(plan.to, setup.loader.steps_per_epoch());
    let log = CsvLog::new(dir.join(UPDATES_FILE));
    let mut rewiring = Rewiring::new(sp, &mask, end, seed, Some(log));
    let mut plan = plan;
    plan.flops = Some(rewiring.flops(&layers, setup.model.positions(), &plan, hp));
    plan.save_final_mask = true;
    let summary = {
        let mut hooks = if sp.mode == SparseMode::Static {
            Hooks::none()
        } else {
            Hooks::new(vec![&mut rewiring])?
        };
        run_resumable(dir, &mut setup, &plan, &mut hooks, progress)?
    };
    let final_mask = setup
        .optimizer
        .mask()
        .cloned()
        .ok_or_else(|| TrainError::Invalid("sparse training lost its mask".into()))?;
    Ok((summary, Some(final_mask)))
}

// The method's flags and its place in the registry.

#[cfg(feature = "clap")]
/// Flags of sparse training from scratch (`lth train --sparse`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SparseFlags {
    /// Train sparse from scratch: static (a fixed random mask), set or rigl; with --sparsity.
    #[arg(long)]
    pub sparse: Option<SparseMode>,
    /// Steps between mask updates (default 100).
    #[arg(long)]
    pub update_every: Option<u64>,
    /// The fraction of each layer's active weights the first update drops (default 0.3).
    #[arg(long)]
    pub drop_fraction: Option<f64>,
    /// No mask updates after this point: a percentage of training (default 75%) or a step count.
    #[arg(long)]
    pub update_end: Option<UpdateEnd>,
    /// How the drop fraction decays: cosine (default) or constant.
    #[arg(long)]
    pub drop_schedule: Option<DropSchedule>,
    /// Apply the optimiser's update on mask-update steps too (rigl skips it).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub keep_update_step: Option<bool>,
}

#[cfg(feature = "clap")]
impl SparseFlags {
    /// The sparse training these flags ask for at `--sparsity`, spread by `spread` (`None`: not
    /// asked for), checked.
    pub fn resolve(
        &self,
        sparsity: Option<f64>,
        spread: &DistributionFlags,
    ) -> Result<Option<SparseHparams>> {
        let Some(mode) = self.sparse else {
            if self.update_every.is_some()
                || self.drop_fraction.is_some()
                || self.update_end.is_some()
                || self.drop_schedule.is_some()
                || self.keep_update_step.is_some()
            {
                return Err(TrainError::Invalid(
                    "--distribution and the mask-update flags need --sparse static|set|rigl \
                     (--distribution also fits --gmp)"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let sparsity = sparsity.ok_or_else(|| {
            TrainError::Invalid(format!(
                "--sparse {mode} needs --sparsity (the fraction of prunable weights removed)"
            ))
        })?;
        let mut sp = spread.hparams(mode, sparsity)?;
        set(&mut sp.update_every, self.update_every);
        set(&mut sp.drop_fraction, self.drop_fraction);
        set(&mut sp.update_end, self.update_end);
        set(&mut sp.drop_schedule, self.drop_schedule);
        sp.keep_update_step = self.keep_update_step.unwrap_or(false);
        sp.validate()?;
        Ok(Some(sp))
    }
}

#[cfg(feature = "clap")]
impl crate::method::MethodFlags for SparseFlags {
    fn asked(&self) -> Option<String> {
        self.sparse.map(|m| format!("--sparse {m}"))
    }

    fn takes(&self) -> crate::method::Takes {
        crate::method::Takes::SparsityAndSpread
    }

    fn method(
        &self,
        shared: crate::method::Shared,
        hp: &TrainHparams,
    ) -> Result<Option<Box<dyn Method>>> {
        Ok(self.resolve(shared.sparsity, shared.spread)?.map(|sp| {
            Box::new(SparseRun {
                train: hp.clone(),
                sparse: Some(sp),
            }) as Box<dyn Method>
        }))
    }
}

impl Method for SparseRun {
    fn flag(&self) -> String {
        self.sparse
            .as_ref()
            .map_or_else(String::new, |sp| format!("--sparse {}", sp.mode))
    }

    fn kind(&self) -> RunKind {
        RunKind::Sparse
    }

    fn train_hparams(&self) -> &TrainHparams {
        &self.train
    }

    fn describe(&self) -> String {
        self.sparse.as_ref().map_or_else(String::new, |sp| {
            format!(
                ", sparse from scratch ({}, {} at sparsity {})",
                sp.mode, sp.distribution, sp.sparsity
            )
        })
    }

    /// The distribution's layer names and budget.
    fn check(&self) -> Result<()> {
        if let Some(sp) = &self.sparse {
            sp.layer_sparsities(&crate::method::outline(&self.train)?.prunable_tensors())?;
        }
        Ok(())
    }

    fn train(
        &self,
        dir: &RunDir,
        replicate: u64,
        data: &Data,
        progress: &mut dyn Progress,
    ) -> Result<(RunSummary, Option<Mask>)> {
        train_sparse(dir, self, replicate, data, progress)
    }

    fn report(&self, dir: &RunDir, summary: &RunSummary) -> Vec<String> {
        let Ok(layers) = CsvLog::<DistributionRow>::new(dir.join(DISTRIBUTION_FILE)).load() else {
            return Vec::new();
        };
        let (kept, total) = layers
            .iter()
            .fold((0, 0), |(k, t), l| (k + l.kept, t + l.total));
        let updates = CsvLog::<UpdateRow>::new(dir.join(UPDATES_FILE))
            .load()
            .unwrap_or_default();
        let mut steps: Vec<u64> = updates.iter().map(|u| u.step).collect();
        steps.dedup();
        let grown: i64 = updates.iter().map(|u| u.grown).sum();
        let reactivated: i64 = updates.iter().map(|u| u.reactivated).sum();
        let mut lines = vec![format!(
            "  sparse from scratch: {kept} of {total} prunable weights active ({:.2}%); {} mask \
             updates moved {grown} weights ({reactivated} of them active before)",
            100.0 * kept as f64 / total.max(1) as f64,
            steps.len()
        )];
        if let Some(f) = &summary.flops {
            lines.push(format!(
                "  FLOPs against dense (as the RigL paper counts them): training {:.3}× ({:.3e} \
                 of {:.3e}; {} of {} steps with a dense gradient), inference {:.3}×",
                f.training_relative,
                f.training,
                f.dense_training,
                f.dense_gradient_steps,
                f.steps,
                f.inference_relative
            ));
        }
        lines.push(
            "  files: distribution.csv (sparsity per layer), updates.csv (churn per update and \
             layer), mask.safetensors (the final mask)"
                .into(),
        );
        lines
    }
}
