//! Early-Bird tickets (You et al., "Drawing Early-Bird Tickets", ICLR 2020; docs/METHODS.md
//! §5): during training, a channel mask per pruning ratio from the BatchNorm scales at the start of
//! every epoch, and the ticket is drawn when the newest mask is within ε of each of the masks of the
//! epochs before it.
//!
//! - **Network slimming** (optional): s·sign(γ) is added to the gradient of every BatchNorm scale
//!   after backward, before the update (the reference's `updateBN`), s = 1e-4 in the paper.
//! - **Channel masks**: [`lth_prune::channels::channel_mask`] at each ratio (a global threshold on
//!   |γ| over the slimmable layers), tracked together; the mask of epoch e is taken from the weights
//!   after e epochs (epoch 0: the initial weights), at the epochs 0..E−1 the reference checks.
//! - **Distance**: [`lth_prune::Mask::hamming`], the normalised Hamming distance.
//! - **Emergence**: a FIFO of the last `window` (5) masks per ratio; once full, the ticket emerges
//!   at the first epoch whose mask is within ε (0.1, strictly below) of each of the others. Its
//!   weights (the whole state, BatchNorm statistics included) and channel mask are saved then.
//! - `stop` ends training at the first evaluation after every ratio's ticket emerged; by default
//!   training goes on to the end, as the reference does.
//!
//! Host synchronisation: once per epoch, to read the distances (the masks themselves stay on the
//! device); never inside other steps.
//!
//! The search is a [`Method`] (`lth train --early-bird`, folder `earlybird_<hash>`): its run is
//! the dense training with the hook, and `lth early-bird` trains the same run in the same folder
//! before it retrains the tickets ([`retrain`]), which are runs of their own inside it.

use std::collections::VecDeque;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use lth_models::{Model, Named, load_tensors};
use lth_prune::Mask;
use lth_store::{CsvLog, RunDir};

#[cfg(feature = "clap")]
use crate::method::set;
use crate::method::Method;
use crate::{
    Control, Data, Hook, Hooks, MetricsRow, Progress, Result, RunSummary, Setup, StepContext,
    TrainError, TrainHparams, Update, run_resumable,
};
use lth_store::RunKind;

/// Every epoch's largest distance per ratio, once its FIFO is full.
pub const DISTANCES_FILE: &str = "early_bird.csv";
/// Per ratio, the epoch its ticket emerged at (empty if it did not) and the channels it keeps.
pub const EMERGENCE_FILE: &str = "emergence.csv";

/// How Early-Bird tickets are drawn (defaults: the paper's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyBirdHparams {
    /// The channel pruning ratios tracked together, each with its own FIFO and emergence.
    pub ratios: Vec<f64>,
    /// How many masks the FIFO holds: the newest is compared with the `window − 1` before it.
    pub window: u64,
    /// The distance every comparison must stay strictly below.
    pub epsilon: f64,
    /// Network slimming's L1 coefficient s on BatchNorm scales (0: none).
    pub slimming: f64,
    /// End training once every ratio's ticket has emerged.
    pub stop: bool,
}

impl Default for EarlyBirdHparams {
    fn default() -> Self {
        EarlyBirdHparams {
            ratios: vec![0.3, 0.5, 0.7],
            window: 5,
            epsilon: 0.1,
            slimming: 1e-4,
            stop: false,
        }
    }
}

impl EarlyBirdHparams {
    /// Checks every field, naming the flag that is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        if self.ratios.is_empty() {
            return bad("--eb-ratios: at least one ratio".into());
        }
        if let Some(r) = self
            .ratios
            .iter()
            .find(|r| !(0.0..1.0).contains(*r) || **r <= 0.0)
        {
            return bad(format!("--eb-ratios {r}: a ratio is a fraction in (0, 1)"));
        }
        let mut sorted = self.ratios.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        if sorted.len() != self.ratios.len() {
            return bad("--eb-ratios: a ratio is listed twice".into());
        }
        if self.window < 2 {
            return bad(format!(
                "--eb-window {}: at least 2 masks are compared",
                self.window
            ));
        }
        if !(self.epsilon > 0.0 && self.epsilon <= 1.0) {
            return bad(format!(
                "--eb-epsilon {}: a distance in (0, 1]",
                self.epsilon
            ));
        }
        if !(self.slimming >= 0.0 && self.slimming.is_finite()) {
            return bad(format!("--slimming {}: a coefficient ≥ 0", self.slimming));
        }
        Ok(())
    }

    /// Checks the FIFO against a run of `epochs` epochs, which gives one mask per epoch: a window
    /// longer than that could never fill, and no ticket could emerge.
    pub fn check_epochs(&self, epochs: u64) -> Result<()> {
        if self.window > epochs {
            return Err(TrainError::Invalid(format!(
                "--eb-window {}: longer than the run, whose {epochs} epoch(s) give {epochs} \
                 mask(s); no ticket could emerge (train longer or shorten the window)",
                self.window
            )));
        }
        Ok(())
    }
}

/// The FIFO of one ratio: the emergence test on a sequence of masks, one per epoch.
#[derive(Debug)]
pub struct Emergence {
    window: usize,
    epsilon: f64,
    masks: VecDeque<Mask>,
    emerged: Option<u64>,
    /// The fraction of channels the ticket keeps, once it emerged.
    kept: Option<f64>,
}

impl Emergence {
    pub fn new(window: u64, epsilon: f64) -> Emergence {
        Emergence {
            window: window as usize,
            epsilon,
            masks: VecDeque::new(),
            emerged: None,
            kept: None,
        }
    }

    /// Adds the mask of `epoch`; once the FIFO is full, returns the largest distance between the
    /// newest mask and the others, and records the emergence the first time it is below ε.
    pub fn push(&mut self, epoch: u64, mask: Mask) -> Result<Option<f64>> {
        if self.masks.len() == self.window {
            self.masks.pop_front();
        }
        self.masks.push_back(mask);
        if self.masks.len() < self.window {
            return Ok(None);
        }
        let newest = &self.masks[self.window - 1];
        let mut largest: f64 = 0.0;
        for m in self.masks.iter().take(self.window - 1) {
            largest = largest.max(newest.hamming(m)?);
        }
        if self.emerged.is_none() && largest < self.epsilon {
            self.emerged = Some(epoch);
            self.kept = Some(newest.density());
        }
        Ok(Some(largest))
    }

    /// The epoch the ticket emerged at, if it has.
    pub fn emerged(&self) -> Option<u64> {
        self.emerged
    }
}

/// One epoch's measurement of one ratio: the largest distance between its newest mask and the
/// masks before it in the FIFO (`early_bird.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistanceRow {
    pub epoch: u64,
    pub ratio: f64,
    pub max_distance: f64,
    /// Whether the ticket of this ratio has emerged by this epoch.
    pub emerged: bool,
}

/// When one ratio's ticket emerged (`emergence.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergenceRow {
    pub ratio: f64,
    /// The epoch whose starting weights are the ticket; empty when it never emerged.
    pub epoch: Option<u64>,
    /// The fraction of slimmable channels its mask keeps.
    pub channels_kept: Option<f64>,
}

/// The saved ticket of one ratio: `eb_<ratio>.safetensors` (the whole state at the emergence
/// epoch) and `eb_<ratio>_channels.safetensors` (its channel mask).
pub fn ticket_files(ratio: f64) -> (String, String) {
    (
        format!("eb_{ratio}.safetensors"),
        format!("eb_{ratio}_channels.safetensors"),
    )
}

/// Network slimming's L1 penalty on BatchNorm scales: s·sign(γ) added to the gradient of every
/// BatchNorm scale after backward, before the update (the reference's `updateBN`). Used by the
/// search and by the retraining, as the reference's retraining scripts keep it.
#[derive(Debug, Clone, Copy)]
pub struct Slimming(pub f64);

impl Hook for Slimming {
    fn name(&self) -> &str {
        "slimming"
    }

    fn after_backward(&mut self, _step: u64, ctx: &mut StepContext<'_>) -> Result<Update> {
        tch::no_grad(|| {
            for (name, gamma) in ctx.model.batchnorm_scales() {
                if let Some(mut g) = ctx.optimizer.grad(&name) {
                    let _ = g.g_add_(&(gamma.sign() * self.0));
                }
            }
        });
        Ok(Update::Apply)
    }
}

/// The hooks of a training with slimming coefficient `s`: none when it is 0.
fn slimming_hooks(slimming: &mut Slimming) -> Result<Hooks<'_>> {
    if slimming.0 > 0.0 {
        Hooks::new(vec![slimming])
    } else {
        Ok(Hooks::none())
    }
}

/// The Early-Bird hook ([module docs](self)): channel masks, FIFO and emergence (slimming is
/// [`Slimming`], a hook of its own).
#[derive(Debug)]
pub struct EarlyBird {
    hp: EarlyBirdHparams,
    per_epoch: u64,
    /// Epochs trained: masks are taken at the starts of epochs `0..epochs`.
    epochs: u64,
    fifos: Vec<Emergence>,
    rows: Vec<DistanceRow>,
    /// Where the tickets are saved when they emerge, and the distances at each evaluation.
    out: Option<PathBuf>,
}

const EMERGED: &str = "emerged";
const ROWS: &str = "rows";

impl EarlyBird {
    /// A hook for a run of `total` steps of `per_epoch` steps per epoch, saving tickets into `out`.
    pub fn new(
        hp: &EarlyBirdHparams,
        per_epoch: u64,
        total: u64,
        out: Option<PathBuf>,
    ) -> Result<EarlyBird> {
        hp.validate()?;
        if per_epoch == 0 {
            return Err(TrainError::Invalid(
                "Early-Bird needs at least one step per epoch".into(),
            ));
        }
        Ok(EarlyBird {
            fifos: hp
                .ratios
                .iter()
                .map(|_| Emergence::new(hp.window, hp.epsilon))
                .collect(),
            hp: hp.clone(),
            per_epoch,
            epochs: total.div_ceil(per_epoch),
            rows: Vec::new(),
            out,
        })
    }

    /// Per ratio, the epoch its ticket emerged at.
    pub fn emerged(&self) -> Vec<(f64, Option<u64>)> {
        self.hp
            .ratios
            .iter()
            .zip(&self.fifos)
            .map(|(r, f)| (*r, f.emerged()))
            .collect()
    }

    /// Every epoch's distances so far.
    pub fn rows(&self) -> &[DistanceRow] {
        &self.rows
    }

    /// Takes the channel masks of epoch `epoch` from the current weights.
    fn observe(&mut self, epoch: u64, ctx: &StepContext<'_>) -> Result<()> {
        if epoch >= self.epochs {
            return Ok(());
        }
        for (i, &ratio) in self.hp.ratios.iter().enumerate() {
            let mask = lth_prune::channels::channel_mask(ctx.model, ratio)?;
            let before = self.fifos[i].emerged();
            let distance = self.fifos[i].push(epoch, mask.clone())?;
            let emerged = self.fifos[i].emerged();
            if let Some(d) = distance {
                self.rows.push(DistanceRow {
                    epoch,
                    ratio,
                    max_distance: d,
                    emerged: emerged.is_some(),
                });
            }
            if before.is_none()
                && emerged.is_some()
                && let Some(out) = &self.out
            {
                let (weights, channels) = ticket_files(ratio);
                lth_models::save_tensors(&out.join(weights), &ctx.model.state())?;
                mask.save(&out.join(channels))?;
            }
        }
        Ok(())
    }
}

impl Hook for EarlyBird {
    fn name(&self) -> &str {
        "early_bird"
    }

    fn after_backward(&mut self, step: u64, ctx: &mut StepContext<'_>) -> Result<Update> {
        if step == 0 {
            self.observe(0, ctx)?;
        }
        Ok(Update::Apply)
    }

    fn after_step(&mut self, step: u64, ctx: &mut StepContext<'_>) -> Result<()> {
        if (step + 1).is_multiple_of(self.per_epoch) {
            self.observe((step + 1) / self.per_epoch, ctx)?;
        }
        Ok(())
    }

    fn on_eval(&mut self, _row: &MetricsRow, _ctx: &mut StepContext<'_>) -> Result<Control> {
        if let Some(out) = &self.out {
            CsvLog::new(out.join(DISTANCES_FILE)).save(&self.rows)?;
            let emergence: Vec<EmergenceRow> = self
                .emerged()
                .into_iter()
                .zip(&self.fifos)
                .map(|((ratio, epoch), f)| EmergenceRow {
                    ratio,
                    epoch,
                    channels_kept: f.kept,
                })
                .collect();
            CsvLog::new(out.join(EMERGENCE_FILE)).save(&emergence)?;
        }
        let all = self.fifos.iter().all(|f| f.emerged().is_some());
        Ok(if self.hp.stop && all {
            Control::Stop
        } else {
            Control::Continue
        })
    }

    fn state(&self) -> Named {
        let mut out = Named::new();
        for (i, f) in self.fifos.iter().enumerate() {
            out.insert(
                format!("{i}.{EMERGED}"),
                Tensor::from_slice(&[f.emerged.map_or(-1, |e| e as i64)]),
            );
            out.insert(
                format!("{i}.kept"),
                Tensor::from_slice(&[f.kept.unwrap_or(-1.0)]),
            );
            for (k, m) in f.masks.iter().enumerate() {
                for (name, t) in m.iter() {
                    out.insert(format!("{i}.fifo{k}.{name}"), t.shallow_clone());
                }
            }
        }
        let flat: Vec<f64> = self
            .rows
            .iter()
            .flat_map(|r| {
                [
                    r.epoch as f64,
                    r.ratio,
                    r.max_distance,
                    f64::from(u8::from(r.emerged)),
                ]
            })
            .collect();
        out.insert(
            ROWS,
            Tensor::from_slice(&flat)
                .to_kind(Kind::Double)
                .view([-1, 4]),
        );
        out
    }

    fn load_state(&mut self, state: &Named) -> Result<()> {
        let missing = |what: &str| {
            TrainError::Invalid(format!("the checkpoint lacks the Early-Bird hook's {what}"))
        };
        for (i, f) in self.fifos.iter_mut().enumerate() {
            let e = state
                .get(&format!("{i}.{EMERGED}"))
                .ok_or_else(|| missing("emergence"))?
                .int64_value(&[0]);
            f.emerged = (e >= 0).then_some(e as u64);
            let kept = state
                .get(&format!("{i}.kept"))
                .ok_or_else(|| missing("kept channels"))?
                .double_value(&[0]);
            f.kept = (kept >= 0.0).then_some(kept);
            f.masks.clear();
            for k in 0..f.window {
                let layers = state.strip_prefix(&format!("{i}.fifo{k}."));
                if layers.names().next().is_none() {
                    break;
                }
                let named: Vec<(String, Tensor)> = layers
                    .names()
                    .map(|n| {
                        Ok((
                            n.to_owned(),
                            layers.get(n).ok_or_else(|| missing(n))?.copy(),
                        ))
                    })
                    .collect::<Result<_>>()?;
                f.masks.push_back(Mask::from_named(named)?);
            }
        }
        let rows = state.get(ROWS).ok_or_else(|| missing("distances"))?;
        let flat: Vec<f64> = Vec::try_from(rows.to_kind(Kind::Double).view([-1]))
            .map_err(|e| TrainError::Invalid(format!("Early-Bird distances: {e}")))?;
        self.rows = flat
            .chunks_exact(4)
            .map(|c| DistanceRow {
                epoch: c[0] as u64,
                ratio: c[1],
                max_distance: c[2],
                emerged: c[3] != 0.0,
            })
            .collect();
        Ok(())
    }
}

/// An Early-Bird search: a dense training with the Early-Bird hook (what `lth early-bird` stores,
/// folder `earlybird_<hash>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyBirdRun {
    pub train: TrainHparams,
    pub early_bird: EarlyBirdHparams,
}

/// The epochs of `hp`'s run on `data`: one channel mask each.
pub fn epochs(hp: &TrainHparams, data: &Data) -> u64 {
    let per_epoch = data.iterations_per_epoch(hp.dataset.batch_size);
    hp.training.steps.iterations(per_epoch).div_ceil(per_epoch)
}

impl Method for EarlyBirdRun {
    fn flag(&self) -> String {
        "--early-bird".into()
    }

    fn kind(&self) -> RunKind {
        RunKind::EarlyBird
    }

    fn train_hparams(&self) -> &TrainHparams {
        &self.train
    }

    fn describe(&self) -> String {
        let e = &self.early_bird;
        format!(
            ", an Early-Bird search (slimming s = {}, ratios {}, FIFO of {}, ε = {}{})",
            e.slimming,
            e.ratios
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            e.window,
            e.epsilon,
            if e.stop {
                ", stopping once every ticket emerged"
            } else {
                ""
            }
        )
    }

    /// What needs no data: the run's and the hook's settings, and channels to prune in the model
    /// (its outline at W0, before anything is read or written).
    fn check(&self) -> Result<()> {
        self.train.validate()?;
        self.early_bird.validate()?;
        lth_models::slim::slimmable(&crate::method::outline(&self.train)?)?;
        Ok(())
    }

    /// The FIFO against the run's epochs: a window longer than the run could never fill.
    fn check_data(&self, data: &Data) -> Result<()> {
        self.early_bird.check_epochs(epochs(&self.train, data))
    }

    fn train(
        &self,
        dir: &RunDir,
        replicate: u64,
        data: &Data,
        progress: &mut dyn Progress,
    ) -> Result<(RunSummary, Option<Mask>)> {
        search(dir, self, replicate, data, progress).map(|(s, _)| (s, None))
    }

    fn report(&self, dir: &RunDir, _summary: &RunSummary) -> Vec<String> {
        let Ok(emerged) = CsvLog::<EmergenceRow>::new(dir.join(EMERGENCE_FILE)).load() else {
            return Vec::new();
        };
        let mut lines: Vec<String> = emerged
            .iter()
            .map(|e| match (e.epoch, e.channels_kept) {
                (Some(epoch), Some(kept)) => format!(
                    "  p = {}: ticket emerged at epoch {epoch}, {:.1}% of the slimmable channels \
                     kept",
                    e.ratio,
                    100.0 * kept
                ),
                _ => format!(
                    "  p = {}: no ticket emerged (distances in {DISTANCES_FILE})",
                    e.ratio
                ),
            })
            .collect();
        lines.push(format!(
            "  files: {DISTANCES_FILE}, {EMERGENCE_FILE}, eb_<p>.safetensors and \
             eb_<p>_channels.safetensors (each ticket); `lth early-bird` with the same flags \
             retrains the tickets from this run"
        ));
        lines
    }
}

/// Trains replicate `replicate` of the search in `dir` (resumably), writing `early_bird.csv`,
/// `emergence.csv` and each emerged ticket; returns the summary and the emergence per ratio.
pub fn search(
    dir: &RunDir,
    run: &EarlyBirdRun,
    replicate: u64,
    data: &Data,
    progress: &mut dyn Progress,
) -> Result<(RunSummary, Vec<EmergenceRow>)> {
    run.check()?;
    let hp = &run.train;
    let mut setup = Setup::new(hp, replicate, data)?;
    let plan = setup.plan(hp);
    dir.create()?;
    let mut hook = EarlyBird::new(
        &run.early_bird,
        setup.loader.steps_per_epoch(),
        plan.to,
        Some(dir.path().to_owned()),
    )?;
    let mut slimming = Slimming(run.early_bird.slimming);
    let summary = {
        let mut hooks = if slimming.0 > 0.0 {
            Hooks::new(vec![&mut slimming, &mut hook])?
        } else {
            Hooks::new(vec![&mut hook])?
        };
        run_resumable(dir, &mut setup, &plan, &mut hooks, progress)?
    };
    let emerged = CsvLog::<EmergenceRow>::new(dir.join(EMERGENCE_FILE)).load()?;
    Ok((summary, emerged))
}

/// How a narrow network is retrained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retrain {
    /// EB Train: from the ticket's weights at its emergence epoch, narrowed.
    EarlyBird,
    /// The narrow architecture from its own initial weights (the replicate's seed).
    Scratch,
}

impl Retrain {
    pub const ALL: [Retrain; 2] = [Retrain::EarlyBird, Retrain::Scratch];

    pub fn name(self) -> &'static str {
        match self {
            Retrain::EarlyBird => "eb",
            Retrain::Scratch => "scratch",
        }
    }
}

impl std::str::FromStr for Retrain {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Retrain, String> {
        Retrain::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("`{s}`: expected eb or scratch"))
    }
}

/// A network's size: trainable parameters and forward FLOPs per example (`lth_prune::flops`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Footprint {
    pub params: f64,
    pub flops: f64,
}

impl Footprint {
    /// The footprint of `model`.
    pub fn of(model: &Model) -> Footprint {
        Footprint {
            params: model.num_parameters() as f64,
            flops: lth_prune::flops::network(model),
        }
    }

    /// The footprint of the dense network `run` searches, for `data`'s shape and classes.
    pub fn dense(run: &EarlyBirdRun, data: &Data) -> Result<Footprint> {
        let dense = Model::new(
            &run.train.model.model,
            data.info.shape,
            data.info.num_classes,
            None,
            0,
            tch::Device::Cpu,
        )?;
        Ok(Footprint::of(&dense))
    }

    /// How many times fewer parameters and FLOPs `smaller` has than this: `(params, flops)`.
    pub fn reduction(&self, smaller: &Footprint) -> (f64, f64) {
        (self.params / smaller.params, self.flops / smaller.flops)
    }
}

/// The narrow network of a search's ticket at `ratio`, with the ticket's weights: the wide state
/// saved at emergence, pruned to the channels of its mask (`lth_prune::channels::narrow`).
pub fn narrow_ticket(
    search_dir: &RunDir,
    run: &EarlyBirdRun,
    ratio: f64,
    replicate: u64,
    data: &Data,
) -> Result<Model> {
    let (weights, channels) = ticket_files(ratio);
    let (weights, channels) = (search_dir.join(weights), search_dir.join(channels));
    if !weights.exists() || !channels.exists() {
        return Err(TrainError::Invalid(format!(
            "no Early-Bird ticket at ratio {ratio} in {} (its ticket did not emerge, or the \
             search did not track that ratio)",
            search_dir.path().display()
        )));
    }
    let hp = &run.train;
    let mut wide = Model::new(
        &hp.model.model,
        data.info.shape,
        data.info.num_classes,
        hp.model.init,
        hp.init_seed(replicate),
        data.train.device(),
    )?;
    wide.load_state(&load_tensors(&weights)?)?;
    let mask = Mask::load(&channels)?;
    Ok(lth_prune::channels::narrow(&wide, data.info.shape, &mask)?)
}

/// Retrains the narrow network of the ticket at `ratio` in `<search>/retrain_<ratio>_<eb|scratch>`
/// (a resumable unit), with the search's slimming: EB Train continues from the emergence epoch to
/// the end of the schedule (the learning rate where the schedule has it then, a fresh optimiser
/// state), as the reference's `retrain_continue`; from scratch trains the whole schedule. Returns
/// its summary and the narrow network's name.
pub fn retrain(
    search_dir: &RunDir,
    run: &EarlyBirdRun,
    ratio: f64,
    how: Retrain,
    replicate: u64,
    data: &Data,
    progress: &mut dyn Progress,
) -> Result<(RunSummary, String)> {
    let narrow = narrow_ticket(search_dir, run, ratio, replicate, data)?;
    let mut hp = run.train.clone();
    hp.model.model = narrow.name().to_owned();
    let dir = search_dir.child(format!("retrain_{ratio}_{}", how.name()));
    dir.create()?;
    dir.bind_hparams(&hp)?;
    // Made from the search's ticket: trained again with other results, the search makes this
    // retraining damaged.
    dir.record_inputs(&[search_dir])?;
    let mut setup = Setup::new(&hp, replicate, data)?;
    let mut plan = setup.plan(&hp);
    if how == Retrain::EarlyBird {
        setup.model.load_state(&narrow.state())?;
        let emerged = CsvLog::<EmergenceRow>::new(search_dir.join(EMERGENCE_FILE)).load()?;
        let epoch = emerged
            .iter()
            .find(|e| e.ratio == ratio)
            .and_then(|e| e.epoch)
            .ok_or_else(|| {
                TrainError::Invalid(format!(
                    "{} gives no emergence epoch at ratio {ratio}",
                    search_dir.join(EMERGENCE_FILE).display()
                ))
            })?;
        plan.from = epoch * setup.loader.steps_per_epoch();
    }
    let mut slimming = Slimming(run.early_bird.slimming);
    let summary = run_resumable(
        &dir,
        &mut setup,
        &plan,
        &mut slimming_hooks(&mut slimming)?,
        progress,
    )?;
    Ok((summary, hp.model.model))
}

/// Flags of an Early-Bird search (`lth early-bird`, and `lth train --early-bird`); defaults are
/// the paper's.
#[cfg(feature = "clap")]
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EarlyBirdFlags {
    /// Channel pruning ratios tracked together, each with its own FIFO and ticket (default
    /// 0.3,0.5,0.7).
    #[arg(long, value_delimiter = ',', value_name = "P,...")]
    pub eb_ratios: Option<Vec<f64>>,
    /// Masks in the FIFO: the newest is compared with the ones before it (default 5).
    #[arg(long, value_name = "N")]
    pub eb_window: Option<u64>,
    /// The Hamming distance every comparison must stay below (default 0.1).
    #[arg(long, value_name = "EPS")]
    pub eb_epsilon: Option<f64>,
    /// Network slimming's L1 coefficient on BatchNorm scales (default 1e-4; 0 for none).
    #[arg(long, value_name = "S")]
    pub slimming: Option<f64>,
    /// Stop training once every ratio's ticket has emerged (the reference trains on to the end).
    #[arg(long)]
    pub eb_stop: bool,
}

#[cfg(feature = "clap")]
impl EarlyBirdFlags {
    /// Whether any of these flags was given.
    pub fn given(&self) -> bool {
        self.eb_ratios.is_some()
            || self.eb_window.is_some()
            || self.eb_epsilon.is_some()
            || self.slimming.is_some()
            || self.eb_stop
    }

    /// The search these flags ask for, checked.
    pub fn resolve(&self) -> Result<EarlyBirdHparams> {
        let mut hp = EarlyBirdHparams::default();
        set(&mut hp.ratios, self.eb_ratios.clone());
        set(&mut hp.window, self.eb_window);
        set(&mut hp.epsilon, self.eb_epsilon);
        set(&mut hp.slimming, self.slimming);
        hp.stop = self.eb_stop;
        hp.validate()?;
        Ok(hp)
    }
}

/// The search as `lth train` asks for it: `--early-bird`, with the search's flags.
#[cfg(feature = "clap")]
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EarlyBirdMethodFlags {
    /// Search for Early-Bird tickets while training (You et al.): channel masks from the
    /// BatchNorm scales each epoch, a ticket where they settle. `lth early-bird` with the same
    /// flags retrains the tickets from this run.
    #[arg(long)]
    pub early_bird: bool,
    #[command(flatten)]
    pub search: EarlyBirdFlags,
}

#[cfg(feature = "clap")]
impl crate::method::MethodFlags for EarlyBirdMethodFlags {
    fn asked(&self) -> Option<String> {
        self.early_bird.then(|| "--early-bird".to_owned())
    }

    fn method(
        &self,
        _shared: crate::method::Shared,
        hp: &TrainHparams,
    ) -> Result<Option<Box<dyn Method>>> {
        if !self.early_bird {
            if self.search.given() {
                return Err(TrainError::Invalid(
                    "--eb-ratios, --eb-window, --eb-epsilon, --slimming and --eb-stop need \
                     --early-bird"
                        .into(),
                ));
            }
            return Ok(None);
        }
        Ok(Some(Box::new(EarlyBirdRun {
            train: hp.clone(),
            early_bird: self.search.resolve()?,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(bits: &[bool]) -> Mask {
        Mask::from_named(vec![("bn.weight".into(), Tensor::from_slice(bits))]).unwrap()
    }

    #[test]
    fn a_ticket_emerges_when_the_newest_mask_is_within_epsilon_of_the_window() {
        let mut f = Emergence::new(5, 0.1);
        // Epochs 0–5 flip a channel each (distance 0.1 or more among 10 channels, never below),
        // then the mask stays: the window 6..=10 is the first of equal masks.
        let mut bits = [true; 10];
        for epoch in 0..=12u64 {
            if epoch <= 6 {
                bits[epoch as usize] = false;
            }
            let d = f.push(epoch, mask(&bits)).unwrap();
            assert_eq!(d.is_some(), epoch >= 4, "epoch {epoch}");
            if epoch < 10 {
                assert_eq!(f.emerged(), None, "epoch {epoch}: distance {d:?}");
            }
        }
        assert_eq!(f.emerged(), Some(10));
        // ε is strict: a distance of exactly ε does not count.
        let mut g = Emergence::new(2, 0.1);
        let mut bits = [true; 10];
        g.push(0, mask(&bits)).unwrap();
        bits[0] = false;
        assert_eq!(g.push(1, mask(&bits)).unwrap(), Some(0.1));
        assert_eq!(g.emerged(), None);
    }

    #[test]
    fn bad_settings_name_their_flag() {
        let e = |hp: EarlyBirdHparams| hp.validate().unwrap_err().to_string();
        let d = EarlyBirdHparams::default;
        assert!(
            e(EarlyBirdHparams {
                ratios: vec![1.0],
                ..d()
            })
            .contains("--eb-ratios 1")
        );
        assert!(
            e(EarlyBirdHparams {
                ratios: vec![0.3, 0.3],
                ..d()
            })
            .contains("twice")
        );
        assert!(e(EarlyBirdHparams { window: 1, ..d() }).contains("--eb-window 1"));
        // One mask per epoch: a window of 5 needs 5 epochs.
        assert!(d().check_epochs(5).is_ok());
        assert!(
            d().check_epochs(4)
                .unwrap_err()
                .to_string()
                .contains("--eb-window 5: longer than the run, whose 4 epoch(s) give 4 mask(s)")
        );
        assert!(
            e(EarlyBirdHparams {
                epsilon: 0.0,
                ..d()
            })
            .contains("--eb-epsilon 0")
        );
        assert!(
            e(EarlyBirdHparams {
                slimming: -1.0,
                ..d()
            })
            .contains("--slimming -1")
        );
        assert!(d().validate().is_ok());
    }
}
