//! Packed training: N replicates of one run (same architecture, recipe and batch size), each with
//! its own W0, data order, augmentation draws and optimiser state, trained in one step of one
//! [`PackedModel`] (HFTA, Wang et al., MLSys 2021; ../shared/METHODS.md §8).
//!
//! The loss of a step is the sum over copies of each copy's mean cross-entropy, so copy i's
//! gradient is exactly the gradient it gets alone; one [`Optimizer`] over the packed variables
//! (one flat buffer for all copies) applies element-wise updates, the same per element as alone.
//! What differs from N separate runs is only the order of floating-point operations inside the
//! batched matrix products and grouped convolutions: results agree to float tolerance
//! (`tests/packed.rs` states and checks it), not bit for bit.

use tch::{Kind, Tensor};

use lth_data::{Loader, Source};
use lth_models::{Named, PackedModel};

use crate::{Data, EvalSets, Evaluation, Optimizer, Result, Schedule, TrainError, TrainHparams};

/// Batch size of evaluation passes.
const EVAL_BATCH: i64 = 1000;

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
}

impl PackedSetup {
    /// Replicates `replicates` of `hp` on `data`, packed: copy i starts from the W0 and data
    /// order that `Setup::new(hp, replicates[i], data)` would give it.
    pub fn new(hp: &TrainHparams, replicates: &[u64], data: &Data) -> Result<PackedSetup> {
        hp.validate()?;
        hp.check_data(data.train.len() as u64)?;
        if replicates.len() < 2 {
            return Err(TrainError::Invalid(format!(
                "packing needs at least 2 replicates, not {}",
                replicates.len()
            )));
        }
        if hp.training.precision == crate::Precision::Bf16 {
            return Err(TrainError::Invalid(
                "packed training runs in f32; --precision bf16 is for unpacked runs".into(),
            ));
        }
        let seeds: Vec<u64> = replicates.iter().map(|&r| hp.init_seed(r)).collect();
        let model = lth_models::PackedModel::new(
            &hp.model.model,
            data.info.shape,
            data.info.num_classes,
            hp.model.init,
            &seeds,
            data.train.device(),
        )?;
        if let Some(gamma) = hp.model.bn_init {
            let scales: Vec<Tensor> = model
                .state()
                .into_iter()
                .filter(|(n, _)| n.ends_with(".weight"))
                .filter(|(n, _)| {
                    let owner = n.trim_end_matches(".weight");
                    model
                        .state()
                        .iter()
                        .any(|(m, _)| *m == format!("{owner}.running_mean"))
                })
                .map(|(_, t)| t)
                .collect();
            if scales.is_empty() {
                return Err(TrainError::Invalid(format!(
                    "--bn-init {gamma}: {} has no BatchNorm layers",
                    hp.model.model
                )));
            }
            tch::no_grad(|| {
                for mut t in scales {
                    let _ = t.fill_(gamma);
                }
            });
        }
        let mut loaders = Vec::new();
        for &r in replicates {
            let mut loader = Loader::new(
                data.train.clone(),
                hp.dataset.batch_size as i64,
                hp.data_order_seed(r),
            )?;
            if hp.dataset.augment {
                let augment = data.info.augment.ok_or_else(|| {
                    TrainError::Invalid(format!(
                        "augment was asked for, but {} has no standard augmentation",
                        data.info.name
                    ))
                })?;
                loader = loader.with_augmentation(augment, hp.augment_seed(r))?;
            }
            loaders.push(loader);
        }
        let schedule = Schedule::new(&hp.training, loaders[0].steps_per_epoch());
        let optimizer = Optimizer::over(&hp.training, model.parameters(), model.device());
        Ok(PackedSetup {
            model,
            loaders,
            optimizer,
            schedule,
            eval: data.eval.clone(),
            replicates: replicates.to_vec(),
        })
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
        let logits = self.model.forward_t(&x, true);
        let per_copy = per_copy_loss(&logits, &y);
        self.optimizer.zero_grad();
        per_copy.sum(Kind::Float).backward();
        self.optimizer.step(self.schedule.lr_at(step));
        Ok(per_copy.detach())
    }

    /// Trains steps `from..to` of every copy.
    pub fn train(&mut self, from: u64, to: u64) -> Result<()> {
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

/// Each copy's mean cross-entropy, `[N]`, of logits `[N, B, K]` against labels `[N, B]`.
fn per_copy_loss(logits: &Tensor, y: &Tensor) -> Tensor {
    let s = logits.size();
    let (n, b, k) = (s[0], s[1], s[2]);
    logits
        .reshape([n * b, k])
        .cross_entropy_loss::<Tensor>(&y.reshape([n * b]), None, tch::Reduction::None, -100, 0.0)
        .view([n, b])
        .mean_dim(1, false, Kind::Float)
}

/// Every copy of `model` evaluated on `data`, reading the device once.
pub fn evaluate_packed(model: &PackedModel, data: &Source) -> Result<Vec<Evaluation>> {
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
