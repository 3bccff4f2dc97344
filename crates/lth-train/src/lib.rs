//! Training: hyperparameters and per-model recipes, learning-rate schedules, optimisers whose state
//! is saved and restored exactly, the step loop, evaluation, and resumable runs in the run store.
//!
//! The loop never synchronises with the device inside a step: the learning rate is computed on the
//! host from the step number, the loss is accumulated on the device and read only when a row of
//! metrics is written. Everything a step depends on (weights, optimiser state, step number, and the
//! data order, which is a pure function of seed and step) is in a checkpoint, so a resumed run ends
//! with the same numbers as an uninterrupted one.
//!
//! ```
//! use lth_models::Model;
//! use lth_prune::{Mask, magnitude_global};
//! use lth_train::{Optimizer, TrainingHparams};
//! use tch::{Device, Kind, Tensor};
//! // An optimiser over a model, keeping 10% of the weights (global magnitude) at zero elsewhere.
//! let model = Model::new("lenet_300_100", [1, 28, 28], 10, None, 1, Device::Cpu)?;
//! let mut opt = Optimizer::new(&TrainingHparams::default(), &model);
//! let kernels = model.prunable_tensors();
//! let mask = magnitude_global(&kernels, &Mask::ones(&kernels), model.prunable(), 0.9)?;
//! opt.set_mask(&mask)?;
//! let x = Tensor::randn([8, 1, 28, 28], (Kind::Float, Device::Cpu));
//! let y = Tensor::zeros([8], (Kind::Int64, Device::Cpu));
//! opt.zero_grad();
//! model.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
//! opt.step(0.1);
//! let w = &model.prunable_tensors()[0].1;
//! let pruned = mask.get("fc_layers.0.weight").unwrap().logical_not();
//! assert_eq!(w.masked_select(&pruned).abs().sum(Kind::Float).double_value(&[]), 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod adversarial;
pub mod basis;
mod device;
mod error;
mod evaluation;
#[cfg(feature = "clap")]
pub mod flags;
mod hooks;
pub mod hparams;
pub mod jobs;
pub mod method;
mod optim;
pub mod packed;
mod run;
mod schedule;
mod session;
pub mod speed;
mod steps;
#[cfg(feature = "test-util")]
pub mod testutil;

pub use adversarial::{AdversarialHparams, Adversary};
pub use device::{DeviceChoice, busy_processors, resolve_device, threads_for_load};
pub use early_bird::{EarlyBird, EarlyBirdHparams, EarlyBirdRun, Retrain};
pub use error::TrainError;
pub use evaluation::{EvalSets, Evaluation, MetricsRow, evaluate};
pub use gmp::{GmpHparams, GmpRun, train_gmp};
pub use hooks::{Control, Hook, Hooks, StepContext, Update};
pub use hparams::{
    DatasetHparams, ModelHparams, OptimizerKind, Precision, TrainHparams, TrainingHparams,
};
pub use jobs::{Job, Start, train_jobs};
pub use lth_models::{load_tensors, save_tensors};
pub use method::pai::{PaiHparams, PrunedRun, train_pruned};
pub use method::sparse::{
    DISTRIBUTION_FILE, DistributionRow, DropSchedule, Rewiring, SparseHparams, SparseMode,
    SparseRun, UPDATES_FILE, UpdateEnd, UpdateRow, train_sparse,
};
pub use method::{Dense, Method, early_bird, gmp, supermask};
pub use optim::Optimizer;
pub use run::{
    Data, FINAL, METRICS, Progress, RunPlan, RunSummary, Setup, initial_model, run_resumable,
    step_checkpoint, summary_disagrees,
};
pub use schedule::Schedule;
pub use session::{Observer, STOPPED, Session};
pub use steps::{StepList, Steps};
pub use supermask::{
    FrozenWeights, LearnedMask, SupermaskHparams, SupermaskMethod, SupermaskRun, train_supermask,
};

/// Result alias for this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
