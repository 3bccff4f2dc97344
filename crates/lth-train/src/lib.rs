//! Training: hyperparameters and per-model recipes, learning-rate schedules, optimisers whose state
//! is saved and restored exactly, the step loop, evaluation, and resumable runs in the run store.
//!
//! The loop never synchronises with the device inside a step: the learning rate is computed on the
//! host from the step number, the loss is accumulated on the device and read only when a row of
//! metrics is written. Everything a step depends on (weights, optimiser state, step number, and the
//! data order, which is a pure function of seed and step) is in a checkpoint, so a resumed run ends
//! with the same numbers as an uninterrupted one.

mod device;
mod error;
#[cfg(feature = "clap")]
pub mod flags;
mod hooks;
pub mod hparams;
mod optim;
mod pai;
mod run;
mod schedule;
mod session;
mod steps;

pub use device::{DeviceChoice, resolve_device};
pub use error::TrainError;
pub use hooks::{Control, Hook, Hooks, StepContext};
pub use hparams::{
    DatasetHparams, ModelHparams, OptimizerKind, Precision, TrainHparams, TrainingHparams,
};
pub use lth_models::{load_tensors, save_tensors};
pub use optim::Optimizer;
pub use pai::{PaiHparams, PrunedRun, train_pruned};
pub use run::{
    Data, FINAL, METRICS, Progress, RunPlan, RunSummary, Setup, run_resumable, step_checkpoint,
};
pub use schedule::Schedule;
pub use session::{EvalSets, Evaluation, MetricsRow, Observer, STOPPED, Session, evaluate};
pub use steps::Steps;

/// Result alias for this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
