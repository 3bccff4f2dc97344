//! Resumable runs: a training run bound to a folder of the run store.
//!
//! Files of a run folder: `metrics.csv` (one [`MetricsRow`] per evaluation), `checkpoints/step_<N>.safetensors`
//! (weights kept at named steps), `checkpoints/resume_<N>.safetensors` (weights and optimiser state
//! at the last evaluation, replaced as training goes), `final.safetensors` (weights at the end) and
//! `done.json` (the [`RunSummary`], written last). A killed run resumes from its resume checkpoint
//! and ends with the same numbers as an uninterrupted run; a finished run is never retrained.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use lth_data::{DatasetInfo, Loader, Source};
use lth_models::Model;
use lth_prune::Flops;
use lth_store::{CsvLog, RunDir};

use crate::{
    DatasetHparams, EvalSets, Hooks, MetricsRow, Observer, Optimizer, Result, STOPPED, Schedule,
    Session, TrainError, TrainHparams, load_tensors, save_tensors,
};
use lth_models::Named;

/// Weights at the end of a run.
pub const FINAL: &str = "final.safetensors";
/// Rows of metrics.
pub const METRICS: &str = "metrics.csv";
const CHECKPOINTS: &str = "checkpoints";

/// A dataset prepared for the training device, shared by every run that uses it.
#[derive(Debug)]
pub struct Data {
    pub info: &'static DatasetInfo,
    pub train: Source,
    pub eval: EvalSets,
    /// Lay out convolution weights and inputs channels-last (NHWC in memory), which cuDNN runs
    /// faster on tensor cores. A layout, not a hyperparameter: the arithmetic is the same.
    pub channels_last: bool,
}

impl Data {
    /// Opens the dataset of `hp` under `root`, holds out the validation split, keeps the subset,
    /// and puts it on `device` (or streams it there from files).
    pub fn load(hp: &DatasetHparams, root: &Path, device: Device) -> Result<Data> {
        let info = lth_data::info(&hp.dataset)?;
        let p = lth_data::prepare(info, root, hp.validation as i64, hp.subset as i64, device)?;
        Ok(Data {
            info,
            train: p.train,
            eval: EvalSets {
                test: p.test,
                validation: p.validation,
            },
            channels_last: false,
        })
    }

    /// Iterations per epoch at `batch_size`: ⌈N / batch size⌉ over the training split, the last
    /// batch short. What `160ep` in a step count means on this data.
    pub fn iterations_per_epoch(&self, batch_size: u64) -> u64 {
        (self.train.len() as u64).div_ceil(batch_size)
    }
}

/// A model, its data, optimiser and schedule, ready to train.
#[derive(Debug)]
pub struct Setup {
    pub model: Model,
    pub loader: Loader,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub eval: EvalSets,
    pub bf16: bool,
    /// Adversarial training's attacker, when the recipe asks for it.
    pub adversary: Option<crate::adversarial::Adversary>,
}

impl Setup {
    /// Builds replicate `replicate` of the run `hp` on `data` (initial weights W0, a fresh
    /// optimiser, the data order of the replicate's seed).
    pub fn new(hp: &TrainHparams, replicate: u64, data: &Data) -> Result<Setup> {
        hp.validate()?;
        hp.check_data(data.train.len() as u64)?;
        let mut model = initial_model(hp, replicate, data.info, data.train.device())?;
        let loader = replicate_loader(hp, data, hp.data_order_seed(replicate), replicate)?;
        if data.channels_last {
            model.use_channels_last();
        }
        let schedule = Schedule::new(&hp.training, loader.steps_per_epoch());
        let optimizer = Optimizer::new(&hp.training, &model);
        Ok(Setup {
            model,
            loader,
            optimizer,
            schedule,
            eval: data.eval.clone(),
            bf16: hp.training.precision == crate::Precision::Bf16,
            adversary: hp.training.adversarial.map(|a| {
                crate::adversarial::Adversary::new(
                    a,
                    data.info,
                    data.train.device(),
                    hp.data_order_seed(replicate),
                )
            }),
        })
    }

    /// A session borrowing this setup.
    pub fn session(&mut self) -> Session<'_> {
        Session {
            model: &self.model,
            loader: &mut self.loader,
            optimizer: &mut self.optimizer,
            schedule: &self.schedule,
            eval: &self.eval,
            bf16: self.bf16,
            adversary: self.adversary.as_ref(),
        }
    }

    /// The plan of a whole run of `hp` from step 0.
    pub fn plan(&self, hp: &TrainHparams) -> RunPlan {
        RunPlan::whole(hp, self.loader.steps_per_epoch())
    }
}

/// Replicate `replicate`'s initial network W0 of the run `hp`, for inputs of dataset `info`, on
/// `device`: its initialiser and seed, and `--bn-init` applied. What every W0 training sees, and
/// what measurements of W0 without training (SynFlow's collapse) must measure.
pub fn initial_model(
    hp: &TrainHparams,
    replicate: u64,
    info: &DatasetInfo,
    device: Device,
) -> Result<Model> {
    let model = Model::new(
        &hp.model.model,
        info.shape,
        info.num_classes,
        hp.model.init,
        hp.init_seed(replicate),
        device,
    )?;
    bn_init(hp, model.batchnorm_scales())?;
    Ok(model)
}

/// Sets every BatchNorm scale in `scales` to `--bn-init`'s value, if given (`validate` has refused
/// it for a model without BatchNorm).
pub(crate) fn bn_init(hp: &TrainHparams, scales: Vec<(String, tch::Tensor)>) -> Result<()> {
    let Some(gamma) = hp.model.bn_init else {
        return Ok(());
    };
    tch::no_grad(|| {
        for (_, mut t) in scales {
            let _ = t.fill_(gamma);
        }
    });
    Ok(())
}

/// The training data of replicate `replicate` of `hp` in the order of `data_order_seed`, with the
/// replicate's augmentation draws when `hp` asks for augmentation.
pub(crate) fn replicate_loader(
    hp: &TrainHparams,
    data: &Data,
    data_order_seed: u64,
    replicate: u64,
) -> Result<Loader> {
    let loader = Loader::new(
        data.train.clone(),
        hp.dataset.batch_size as i64,
        data_order_seed,
    )?;
    if !hp.dataset.augment {
        return Ok(loader);
    }
    let augment = data.info.augment.ok_or_else(|| {
        TrainError::Invalid(format!(
            "augment was asked for, but {} has no standard augmentation",
            data.info.name
        ))
    })?;
    Ok(loader.with_augmentation(augment, hp.augment_seed(replicate))?)
}

/// Which steps a run covers and what it records.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// First step (a rewind point k, or 0); the model holds the weights of this step.
    pub from: u64,
    /// Step count at the end.
    pub to: u64,
    /// Evaluate when the step count is a multiple of this, and at `to`.
    pub eval_every: u64,
    /// Keep the weights at these step counts (`checkpoints/step_<N>.safetensors`).
    pub keep: Vec<u64>,
    /// The FLOPs of the planned run, when its caller counts them (sparse training): copied into
    /// the summary.
    pub flops: Option<Flops>,
    /// Save the mask in force at the end as `mask.safetensors` before the run is marked done
    /// (sparse training, whose mask changes), so a finished run always has it.
    pub save_final_mask: bool,
}

impl RunPlan {
    /// A whole run of `hp` from step 0 at `per_epoch` steps per epoch: to the end of training,
    /// evaluated every `--eval-every` (every epoch when it is 0), keeping no checkpoint.
    pub fn whole(hp: &TrainHparams, per_epoch: u64) -> RunPlan {
        let every = hp.training.eval_every.iterations(per_epoch);
        RunPlan {
            from: 0,
            to: hp.training.steps.iterations(per_epoch),
            eval_every: if every == 0 { per_epoch } else { every },
            keep: Vec::new(),
            flops: None,
            save_final_mask: false,
        }
    }
}

/// What a finished run reports (`done.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub steps: u64,
    pub final_test_accuracy: f64,
    pub final_test_loss: f64,
    pub best_test_accuracy: f64,
    pub best_test_step: u64,
    /// The early-stopping criterion of the LTH paper: the step of minimum validation loss.
    pub min_val_loss_step: Option<u64>,
    pub min_val_loss: Option<f64>,
    pub test_accuracy_at_min_val_loss: Option<f64>,
    /// Training and inference FLOPs against the dense network's (sparse training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops: Option<Flops>,
}

impl RunSummary {
    /// Summarises the rows of a run (at least one).
    pub fn from_rows(rows: &[MetricsRow]) -> RunSummary {
        #[allow(
            clippy::expect_used,
            reason = "a run measures step 0 before it trains, so it has a row"
        )]
        let last = rows.last().expect("a finished run has rows");
        let best = rows
            .iter()
            .max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy))
            .unwrap_or(last);
        let min_val = rows.iter().filter(|r| r.val_loss.is_some()).min_by(|a, b| {
            a.val_loss
                .unwrap_or(f64::MAX)
                .total_cmp(&b.val_loss.unwrap_or(f64::MAX))
        });
        RunSummary {
            steps: last.step,
            final_test_accuracy: last.test_accuracy,
            final_test_loss: last.test_loss,
            best_test_accuracy: best.test_accuracy,
            best_test_step: best.step,
            min_val_loss_step: min_val.map(|r| r.step),
            min_val_loss: min_val.and_then(|r| r.val_loss),
            test_accuracy_at_min_val_loss: min_val.map(|r| r.test_accuracy),
            flops: None,
        }
    }
}

/// Cross-checks a finished unit's `done.json` against its `metrics.csv`: the summary must be the
/// one its rows give (what `lth verify` adds to the digests). `None` when they agree, or when
/// the unit keeps no metrics or no training summary (a search's, a report's).
pub fn summary_disagrees(dir: &RunDir) -> Result<Option<String>> {
    let metrics = dir.join(METRICS);
    if !metrics.is_file() {
        return Ok(None);
    }
    // A unit whose summary is not a training run's (or that is not finished) is not checked here;
    // its digests were.
    let Ok(Some(recorded)) = dir.done_summary::<RunSummary>() else {
        return Ok(None);
    };
    let rows = CsvLog::<MetricsRow>::new(&metrics).load()?;
    if rows.is_empty() {
        return Ok(Some(format!("{METRICS} has no rows")));
    }
    let from_rows = RunSummary {
        flops: recorded.flops.clone(),
        ..RunSummary::from_rows(&rows)
    };
    Ok((from_rows != recorded).then(|| {
        format!(
            "done.json's numbers are not those of {METRICS} (final test accuracy {} \
             recorded, {} in its last row)",
            recorded.final_test_accuracy, from_rows.final_test_accuracy
        )
    }))
}

/// Progress reports for a person watching (a progress bar); all methods default to nothing.
pub trait Progress {
    /// Training will run from step `from` to `to`.
    fn begin(&mut self, _from: u64, _to: u64) {}
    /// The unit about to train (`level_2/main`, `stability/imp_data_order_3`; packed units
    /// together), so that copies of one experiment are told apart (called before `begin`).
    fn unit(&mut self, _label: &str) {}
    /// An interrupted run resumes at `step` (called before `begin`).
    fn resumed(&mut self, _step: u64) {}
    fn step(&mut self, _step: u64) {}
    fn row(&mut self, _row: &MetricsRow) {}
    fn finish(&mut self) {}
}

impl Progress for () {}

/// The path of the weights kept at step `step`.
pub fn step_checkpoint(dir: &RunDir, step: u64) -> PathBuf {
    dir.join(CHECKPOINTS)
        .join(format!("step_{step}.safetensors"))
}

pub(crate) fn resume_checkpoint(dir: &RunDir, step: u64) -> PathBuf {
    dir.join(CHECKPOINTS)
        .join(format!("resume_{step}.safetensors"))
}

/// The resume checkpoints present, by step, oldest first.
pub(crate) fn resume_checkpoints(dir: &RunDir) -> Result<Vec<(u64, PathBuf)>> {
    let folder = dir.join(CHECKPOINTS);
    let Ok(entries) = fs::read_dir(&folder) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let step = name.strip_prefix("resume_")?.strip_suffix(".safetensors")?;
            Some((step.parse().ok()?, p.clone()))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Trains `setup` through `plan` in the run folder `dir`, calling `hooks`, resuming if the folder
/// holds an interrupted run (weights, optimiser state, mask and the hooks' states) and doing
/// nothing if it holds a finished one. On return the model holds the final weights (at
/// `plan.to`, or where a hook stopped the run).
pub fn run_resumable(
    dir: &RunDir,
    setup: &mut Setup,
    plan: &RunPlan,
    hooks: &mut Hooks<'_>,
    progress: &mut dyn Progress,
) -> Result<RunSummary> {
    let _lock = dir.lock()?;
    if let Some(summary) = dir.done_summary::<RunSummary>()? {
        setup.model.load_state(&load_tensors(&dir.join(FINAL))?)?;
        return Ok(summary);
    }
    let log = CsvLog::<MetricsRow>::new(dir.join(METRICS));
    let resumable = resume_checkpoints(dir)?;
    let (start, rows, stopped) = match resumable.last() {
        Some((step, path)) => {
            let tensors = load_tensors(path)?;
            let (rest, weights): (Vec<_>, Vec<_>) = tensors.into_iter().partition(|(n, _)| {
                n.starts_with("optimizer.") || n.starts_with("hook.") || n == STOPPED
            });
            let rest = Named::from(rest);
            let stopped = rest.contains(STOPPED);
            let opt: Vec<(String, tch::Tensor)> = rest
                .iter()
                .filter(|(n, _)| n.starts_with("optimizer."))
                .map(|(n, t)| (n.clone(), t.shallow_clone()))
                .collect();
            setup
                .model
                .load_state(&weights)
                .map_err(|e| checkpoint_error(path, e))?;
            let opt: HashMap<String, tch::Tensor> = opt.into_iter().collect();
            setup
                .optimizer
                .load_state(&opt)
                .map_err(|e| checkpoint_error(path, e))?;
            setup.optimizer.mask_weights();
            hooks
                .load_state(&rest)
                .map_err(|e| checkpoint_error(path, e))?;
            let mut rows = log.load()?;
            rows.retain(|r| r.step <= *step);
            progress.resumed(*step);
            (*step, rows, stopped)
        }
        None => {
            if plan.keep.contains(&plan.from) {
                save_tensors(&step_checkpoint(dir, plan.from), &setup.model.state())?;
            }
            let rows = vec![setup.session().measure(plan.from, None)?];
            log.save(&rows)?;
            (plan.from, rows, false)
        }
    };
    progress.begin(start, plan.to);
    let mut observer = StoreObserver {
        dir,
        log,
        rows,
        progress,
    };
    if !stopped {
        setup.session().train(
            start,
            plan.to,
            plan.eval_every,
            &plan.keep,
            hooks,
            &mut observer,
        )?;
    }
    let StoreObserver { rows, progress, .. } = observer;
    progress.finish();
    save_tensors(&dir.join(FINAL), &setup.model.state())?;
    if plan.save_final_mask
        && let Some(mask) = setup.optimizer.mask()
    {
        mask.save(&dir.join(lth_prune::MASK_FILE))?;
    }
    hooks.finish(dir.path(), &setup.model)?;
    let summary = RunSummary {
        flops: plan.flops.clone().or_else(|| hooks.flops()),
        ..RunSummary::from_rows(&rows)
    };
    dir.mark_done(&summary)?;
    for (_, path) in resume_checkpoints(dir)? {
        let _ = fs::remove_file(path);
    }
    Ok(summary)
}

fn checkpoint_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_owned(),
        problem: format!("does not fit this run: {e}"),
    }
}

/// Writes rows and checkpoints as the session reports them.
struct StoreObserver<'a> {
    dir: &'a RunDir,
    log: CsvLog<MetricsRow>,
    rows: Vec<MetricsRow>,
    progress: &'a mut dyn Progress,
}

impl Observer for StoreObserver<'_> {
    fn on_step(&mut self, step: u64) {
        self.progress.step(step);
    }

    fn on_keep(&mut self, step: u64, model: &Model) -> Result<()> {
        Ok(save_tensors(
            &step_checkpoint(self.dir, step),
            &model.state(),
        )?)
    }

    fn on_eval(
        &mut self,
        row: &MetricsRow,
        model: &Model,
        opt: &Optimizer,
        extra: &Named,
    ) -> Result<()> {
        self.rows.push(row.clone());
        // Rows first, then the checkpoint: a kill between the two leaves a row newer than the
        // checkpoint, which the resumed run drops and measures again.
        self.log.save(&self.rows)?;
        let old = resume_checkpoints(self.dir)?;
        let mut state = model.state();
        state.extend(opt.state());
        state.extend(extra.iter().map(|(n, t)| (n.clone(), t.shallow_clone())));
        save_tensors(&resume_checkpoint(self.dir, row.step), &state)?;
        for (step, path) in old {
            if step != row.step {
                let _ = fs::remove_file(path);
            }
        }
        self.progress.row(row);
        Ok(())
    }
}
