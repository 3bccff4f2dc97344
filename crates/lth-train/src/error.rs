//! Errors of the training crate.

use std::path::PathBuf;

/// What can go wrong setting up or running training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] lth_data::DataError),
    #[error(transparent)]
    Model(#[from] lth_models::ModelError),
    #[error(transparent)]
    Prune(#[from] lth_prune::PruneError),
    #[error(transparent)]
    Store(#[from] lth_store::StoreError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Kernel(#[from] lth_kernels::KernelError),
    /// A hyperparameter or option that cannot work, with what was expected.
    #[error("{0}")]
    Invalid(String),
    /// A checkpoint that does not fit the run it is loaded into.
    #[error("{}: {problem}", path.display())]
    Checkpoint { path: PathBuf, problem: String },
    /// A device that was asked for but is not there.
    #[error("{0}")]
    Device(String),
}
