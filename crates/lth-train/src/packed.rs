//! Packed training: N replicates of one run (same architecture, recipe and batch size), each with
//! its own W0, data order, augmentation draws and optimiser state, trained in one step of one
//! [`PackedModel`] (HFTA, Wang et al., MLSys 2021; docs/METHODS.md §8).
//!
//! The loss of a step is the sum over copies of each copy's mean cross-entropy, so copy i's
//! gradient is exactly the gradient it gets alone; one [`Optimizer`] over the packed variables
//! (one flat buffer for all copies) applies element-wise updates, the same per element as alone.
//! What differs from N separate runs is only the order of floating-point operations inside the
//! batched matrix products and grouped convolutions: results agree to float tolerance
//! (`tests/packed.rs` states and checks it), not bit for bit.

use tch::{Kind, Tensor};

use lth_data::{Loader, Source};
use lth_models::{Named, PackedModel, load_tensors, save_tensors};
use lth_store::{CsvLog, RunDir};

use crate::evaluation::EVAL_BATCH;
use crate::run::{replicate_loader, resume_checkpoint, resume_checkpoints};
use crate::{
    Data, EvalSets, Evaluation, FINAL, METRICS, MetricsRow, Optimizer, Progress, Result, RunPlan,
    RunSummary, Schedule, TrainError, TrainHparams, step_checkpoint,
};

/// N replicates of a run, packed, ready to train.
#[derive(Debug)]
pub struct PackedSetup {
    pub model: PackedModel,
    /// Copy i's training data in its own replicate's order.
    pub loaders: Vec<Loader>,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub eval: EvalSets,
    /// The replicate of each copy.
    pub replicates: Vec<u64>,
    /// Run the forward pass under bfloat16 autocast (`--precision bf16`), as `Session` does.
    pub bf16: bool,
}

impl PackedSetup {
    /// Replicates `replicates` of `hp` on `data`, packed: copy i starts from the W0 and data
    /// order that `Setup::new(hp, replicates[i], data)` would give it.
    pub fn new(hp: &TrainHparams, replicates: &[u64], data: &Data) -> Result<PackedSetup> {
        let seeds: Vec<u64> = replicates.iter().map(|&r| hp.init_seed(r)).collect();
        PackedSetup::with_init_seeds(hp, replicates, &seeds, data)
    }

    /// [`PackedSetup::new`] with copy i's W0 drawn from initialisation seed `init_seeds[i]` (as
    /// `--init-seed` would draw it) in place of its replicate's.
    pub fn with_init_seeds(
        hp: &TrainHparams,
        replicates: &[u64],
        init_seeds: &[u64],
        data: &Data,
    ) -> Result<PackedSetup> {
        hp.validate()?;
        hp.check_data(data.train.len() as u64)?;
        if hp.training.adversarial.is_some() {
            return Err(TrainError::Invalid(
                "adversarial training does not pack: each copy needs its own attack (use --pack 1)"
                    .into(),
            ));
        }
        if replicates.len() < 2 {
            return Err(TrainError::Invalid(format!(
                "packing needs at least 2 replicates, not {}",
                replicates.len()
            )));
        }
        if init_seeds.len() != replicates.len() {
            return Err(TrainError::Invalid(format!(
                "{} initialisation seeds for {} copies",
                init_seeds.len(),
                replicates.len()
            )));
        }
        let model = lth_models::PackedModel::new(
            &hp.model.model,
            data.info.shape,
            data.info.num_classes,
            hp.model.init,
            init_seeds,
            data.train.device(),
        )?;
        crate::run::bn_init(hp, model.batchnorm_scales())?;
        let loaders = replicates
            .iter()
            .map(|&r| replicate_loader(hp, data, hp.data_order_seed(r), r))
            .collect::<Result<Vec<_>>>()?;
        let schedule = Schedule::new(&hp.training, loaders[0].steps_per_epoch());
        let optimizer = Optimizer::over(&hp.training, model.parameters(), model.device());
        Ok(PackedSetup {
            model,
            loaders,
            optimizer,
            schedule,
            eval: data.eval.clone(),
            replicates: replicates.to_vec(),
            bf16: hp.training.precision == crate::Precision::Bf16,
        })
    }

    /// Gives copy i the data order of seed `seeds[i]` (in place of its replicate's), as a run
    /// with `--data-order-seed` would have; augmentation draws stay the replicate's.
    pub fn with_data_orders(
        mut self,
        hp: &TrainHparams,
        data: &Data,
        seeds: &[u64],
    ) -> Result<PackedSetup> {
        if seeds.len() != self.loaders.len() {
            return Err(TrainError::Invalid(format!(
                "{} data orders for {} copies",
                seeds.len(),
                self.loaders.len()
            )));
        }
        for (i, &seed) in seeds.iter().enumerate() {
            self.loaders[i] = replicate_loader(hp, data, seed, self.replicates[i])?;
        }
        Ok(self)
    }

    /// Keeps copy i's pruned weights at zero from now on (`None`: the copy is dense), as
    /// [`Optimizer::set_mask`] does for one network.
    pub fn set_masks(&mut self, masks: &[Option<&lth_prune::Mask>]) -> Result<()> {
        if masks.iter().all(Option::is_none) {
            return Ok(());
        }
        let state = self.model.copy_state(0);
        let mut packed = Vec::new();
        for name in self.model.prunable() {
            let like = state.get(name).ok_or_else(|| {
                TrainError::Invalid(format!("the packed model lost its kernel `{name}`"))
            })?;
            let parts: Vec<Tensor> = masks
                .iter()
                .map(|m| match m.and_then(|m| m.get(name)) {
                    Some(t) => t.to_device(like.device()),
                    None => like.ones_like().to_kind(Kind::Bool),
                })
                .collect();
            packed.push((name.clone(), Tensor::stack(&parts, 0)));
        }
        let mask = lth_prune::Mask::from_named(packed)
            .map_err(|e| TrainError::Invalid(format!("packed masks: {e}")))?;
        self.optimizer.set_mask(&mask)
    }

    /// Takes step `step` (from 0) of every copy; returns each copy's loss `[N]`, on the device.
    pub fn step(&mut self, step: u64) -> Result<Tensor> {
        let mut xs = Vec::with_capacity(self.loaders.len());
        let mut ys = Vec::with_capacity(self.loaders.len());
        for l in &mut self.loaders {
            let b = l.batch(step)?;
            xs.push(b.x);
            ys.push(b.y);
        }
        let x = Tensor::stack(&xs, 0);
        let y = Tensor::stack(&ys, 0);
        let forward = || per_copy_loss(&self.model.forward_t(&x, true), &y);
        let per_copy = if self.bf16 {
            lth_amp::autocast_bf16(self.model.device(), forward)
        } else {
            forward()
        };
        self.optimizer.zero_grad();
        per_copy.sum(Kind::Float).backward();
        self.optimizer.step(self.schedule.lr_at(step));
        Ok(per_copy.detach())
    }

    /// Trains steps `from..to` of every copy.
    pub fn train(&mut self, from: u64, to: u64) -> Result<()> {
        let _training = lth_store::ledger::span(lth_store::ledger::Activity::Training);
        for step in from..to {
            let _ = self.step(step)?;
        }
        Ok(())
    }

    /// Copy `i`'s variables as an ordinary model's (PyTorch names and shapes; views).
    pub fn copy_state(&self, i: usize) -> Named {
        self.model.copy_state(i as i64)
    }

    /// Every copy's loss and accuracy on `data` (evaluation mode; the same examples for all).
    pub fn evaluate(&self, data: &Source) -> Result<Vec<Evaluation>> {
        evaluate_packed(&self.model, data)
    }
}

/// Each copy's mean cross-entropy, `[N]`, of logits `[N, B, K]` against labels `[N, B]`: the loss
/// of a packed step is its sum. The mean keeps the cross-entropy's own type (float32 in training,
/// autocast included, which computes cross-entropy in float32; float64 for a network in float64).
pub fn per_copy_loss(logits: &Tensor, y: &Tensor) -> Tensor {
    let s = logits.size();
    let (n, b, k) = (s[0], s[1], s[2]);
    let each = logits
        .reshape([n * b, k])
        .cross_entropy_loss::<Tensor>(&y.reshape([n * b]), None, tch::Reduction::None, -100, 0.0)
        .view([n, b]);
    let kind = each.kind();
    each.mean_dim(1, false, kind)
}

/// Every copy of `model` evaluated on `data`, reading the device once.
pub fn evaluate_packed(model: &PackedModel, data: &Source) -> Result<Vec<Evaluation>> {
    let _eval = lth_store::ledger::span(lth_store::ledger::Activity::Evaluation);
    let n = model.copies();
    tch::no_grad(|| {
        let device = data.device();
        let mut loss = Tensor::zeros([n], (Kind::Double, device));
        let mut correct = Tensor::zeros([n], (Kind::Int64, device));
        for b in data.sequential(EVAL_BATCH) {
            let b = b?;
            let mut shape = vec![n];
            shape.extend(b.x.size());
            let x = b.x.unsqueeze(0).expand(shape.as_slice(), false);
            let logits = model.forward_t(&x, false);
            let y = b.y.unsqueeze(0).expand([n, b.y.size()[0]], false);
            let s = logits.size();
            let summed = logits
                .reshape([s[0] * s[1], s[2]])
                .cross_entropy_loss::<Tensor>(
                    &y.reshape([-1]),
                    None,
                    tch::Reduction::None,
                    -100,
                    0.0,
                )
                .view([s[0], s[1]])
                .sum_dim_intlist(1, false, Kind::Double);
            loss += summed;
            correct +=
                logits
                    .argmax(-1, false)
                    .eq_tensor(&y)
                    .sum_dim_intlist(1, false, Kind::Int64);
        }
        let total = data.len().max(1) as f64;
        let both = Tensor::cat(&[loss, correct.to_kind(Kind::Double)], 0);
        let v = Vec::<f64>::try_from(&both)
            .map_err(|e| TrainError::Invalid(format!("reading evaluations: {e}")))?;
        Ok((0..n as usize)
            .map(|i| Evaluation {
                loss: v[i] / total,
                accuracy: v[n as usize + i] / total,
            })
            .collect())
    })
}

/// Trains the packed copies of `setup` through `plan`, copy i in run folder `dirs[i]`, each
/// folder laid out as an unpacked run's (`metrics.csv`, `checkpoints/step_<N>` for `plan.keep`,
/// `checkpoints/resume_<N>`, `final.safetensors`, `done.json`): the run store sees N normal runs.
/// Resume checkpoints are written for every copy at each evaluation and removed only once every
/// copy is marked done, so a group killed at any point resumes from the newest step all copies
/// hold, with the same numbers as an uninterrupted packed run. A group whose copies are all done
/// trains nothing and loads their final weights. Returns each copy's summary.
pub fn run_packed(
    dirs: &[RunDir],
    setup: &mut PackedSetup,
    plan: &RunPlan,
    progress: &mut dyn Progress,
) -> Result<Vec<RunSummary>> {
    let n = setup.model.copies() as usize;
    if dirs.len() != n {
        return Err(TrainError::Invalid(format!(
            "{} run folders for {n} packed copies",
            dirs.len()
        )));
    }
    let _locks = dirs
        .iter()
        .map(RunDir::lock)
        .collect::<Result<Vec<_>, _>>()?;
    let done: Vec<Option<RunSummary>> = dirs
        .iter()
        .map(RunDir::done_summary::<RunSummary>)
        .collect::<Result<_, _>>()?;
    if done.iter().all(Option::is_some) {
        for (i, d) in dirs.iter().enumerate() {
            let state = lth_models::Named::from(load_tensors(&d.join(FINAL))?);
            setup.model.load_copy_state(i as i64, &state)?;
        }
        return Ok(done.into_iter().flatten().collect());
    }
    for d in dirs {
        d.create()?;
    }
    let logs: Vec<CsvLog<MetricsRow>> = dirs.iter().map(|d| CsvLog::new(d.join(METRICS))).collect();
    // The newest step at which every copy holds a resume checkpoint.
    let mut common: Option<Vec<u64>> = None;
    for d in dirs {
        let steps: Vec<u64> = resume_checkpoints(d)?.into_iter().map(|(s, _)| s).collect();
        common = Some(match common {
            None => steps,
            Some(c) => c.into_iter().filter(|s| steps.contains(s)).collect(),
        });
    }
    let resume = common.and_then(|c| c.into_iter().max());
    let mut rows: Vec<Vec<MetricsRow>> = Vec::with_capacity(n);
    let start = match resume {
        Some(step) => {
            let mut optimizer: Vec<Vec<(String, Tensor)>> = Vec::new();
            for (i, d) in dirs.iter().enumerate() {
                let path = resume_checkpoint(d, step);
                let (opt, weights): (Vec<_>, Vec<_>) = load_tensors(&path)?
                    .into_iter()
                    .partition(|(name, _)| name.starts_with("optimizer."));
                setup
                    .model
                    .load_copy_state(i as i64, &lth_models::Named::from(weights))
                    .map_err(|e| checkpoint_error(&path, e))?;
                optimizer.push(opt);
                let mut r = logs[i].load()?;
                r.retain(|row| row.step <= step);
                rows.push(r);
            }
            setup.optimizer.load_state(&stack_optimizer(optimizer)?)?;
            progress.resumed(step);
            step
        }
        None => {
            let first = setup.measure(plan.from, None)?;
            for (i, row) in first.into_iter().enumerate() {
                if plan.keep.contains(&plan.from) {
                    save_tensors(
                        &step_checkpoint(&dirs[i], plan.from),
                        &setup.copy_state(i).into_vec(),
                    )?;
                }
                logs[i].save(std::slice::from_ref(&row))?;
                rows.push(vec![row]);
            }
            plan.from
        }
    };
    progress.begin(start, plan.to);
    let _training = lth_store::ledger::span(lth_store::ledger::Activity::Training);
    let device = setup.model.device();
    let mut loss_sum = Tensor::zeros([n as i64], (Kind::Float, device));
    let mut since = 0u64;
    for step in start..plan.to {
        loss_sum += setup.step(step)?;
        since += 1;
        let reached = step + 1;
        progress.step(reached);
        if plan.keep.contains(&reached) {
            for (i, d) in dirs.iter().enumerate() {
                save_tensors(
                    &step_checkpoint(d, reached),
                    &setup.copy_state(i).into_vec(),
                )?;
            }
        }
        if plan.eval_every > 0 && (reached % plan.eval_every == 0 || reached == plan.to) {
            let losses = Vec::<f64>::try_from(&(loss_sum.to_kind(Kind::Double) / since as f64))
                .map_err(|e| TrainError::Invalid(format!("reading losses: {e}")))?;
            let measured = setup.measure(reached, Some(&losses))?;
            let optimizer = split_optimizer(&setup.optimizer, n);
            for (i, row) in measured.into_iter().enumerate() {
                rows[i].push(row.clone());
                logs[i].save(&rows[i])?;
                let old = resume_checkpoints(&dirs[i])?;
                let mut state = setup.copy_state(i).into_vec();
                state.extend(
                    optimizer[i]
                        .iter()
                        .map(|(k, t)| (k.clone(), t.shallow_clone())),
                );
                save_tensors(&resume_checkpoint(&dirs[i], reached), &state)?;
                for (s, path) in old {
                    if s != reached {
                        let _ = std::fs::remove_file(path);
                    }
                }
                progress.row(&row);
            }
            let _ = loss_sum.zero_();
            since = 0;
        }
    }
    progress.finish();
    let mut summaries = Vec::with_capacity(n);
    for (i, d) in dirs.iter().enumerate() {
        // A copy marked done before a kill keeps its files (the same weights).
        if done[i].is_none() {
            save_tensors(&d.join(FINAL), &setup.copy_state(i).into_vec())?;
        }
        summaries.push(RunSummary::from_rows(&rows[i]));
    }
    for (d, s) in dirs.iter().zip(&summaries) {
        if d.done_summary::<RunSummary>()?.is_none() {
            d.mark_done(s)?;
        }
    }
    // Only now: a group killed before every copy was marked done still finds its checkpoints.
    for d in dirs {
        for (_, path) in resume_checkpoints(d)? {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(summaries)
}

/// The optimiser's state, per copy: `optimizer.<param>.<buffer>` of copy i under its plain shape,
/// and the shared step count.
fn split_optimizer(opt: &Optimizer, n: usize) -> Vec<Vec<(String, Tensor)>> {
    let state = opt.state();
    (0..n)
        .map(|i| {
            state
                .iter()
                .map(|(k, t)| {
                    let t = if k == "optimizer.steps" {
                        t.shallow_clone()
                    } else {
                        t.select(0, i as i64)
                    };
                    (k.clone(), t)
                })
                .collect()
        })
        .collect()
}

/// The packed optimiser state from the copies' states ([`split_optimizer`]'s inverse).
fn stack_optimizer(
    copies: Vec<Vec<(String, Tensor)>>,
) -> Result<std::collections::HashMap<String, Tensor>> {
    let mut by_name: std::collections::BTreeMap<String, Vec<Tensor>> = Default::default();
    for copy in copies {
        for (k, t) in copy {
            by_name.entry(k).or_default().push(t);
        }
    }
    by_name
        .into_iter()
        .map(|(k, ts)| {
            let t = if k == "optimizer.steps" {
                ts.into_iter().next().ok_or_else(|| {
                    TrainError::Invalid("resume checkpoint lacks optimizer.steps".into())
                })?
            } else {
                Tensor::stack(&ts, 0)
            };
            Ok((k, t))
        })
        .collect()
}

impl PackedSetup {
    /// Every copy's row of metrics after `step` steps (`train_loss`: each copy's mean since the
    /// last row).
    pub fn measure(&self, step: u64, train_loss: Option<&[f64]>) -> Result<Vec<MetricsRow>> {
        let test = evaluate_packed(&self.model, &self.eval.test)?;
        let val = match &self.eval.validation {
            Some(v) => Some(evaluate_packed(&self.model, v)?),
            None => None,
        };
        let per_epoch = self.loaders[0].steps_per_epoch();
        Ok((0..test.len())
            .map(|i| MetricsRow {
                step,
                epoch: step as f64 / per_epoch as f64,
                lr: self.schedule.lr_at(step.saturating_sub(1)),
                train_loss: train_loss.map(|l| l[i]),
                test_loss: test[i].loss,
                test_accuracy: test[i].accuracy,
                val_loss: val.as_ref().map(|v| v[i].loss),
                val_accuracy: val.as_ref().map(|v| v[i].accuracy),
                robust_accuracy: None,
            })
            .collect())
    }
}

fn checkpoint_error(path: &std::path::Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Invalid(format!("{}: {e}", path.display()))
}

/// How many copies to pack by default on `device`: 1 on the CPU, where packing does not pay
/// (`lth bench --suite packed`: grouped convolutions there are slower than separate ones, and
/// two cores are already busy with one network), 8 on CUDA, where a small network's step leaves
/// the device idle between kernel launches.
pub fn default_pack(device: tch::Device) -> usize {
    match device {
        tch::Device::Cuda(_) => 8,
        _ => 1,
    }
}
