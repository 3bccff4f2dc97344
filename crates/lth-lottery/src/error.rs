//! Errors of the IMP driver.

/// What can go wrong running a lottery.
#[derive(Debug, thiserror::Error)]
pub enum LotteryError {
    #[error(transparent)]
    Train(#[from] lth_train::TrainError),
    #[error(transparent)]
    Prune(#[from] lth_prune::PruneError),
    #[error(transparent)]
    Model(#[from] lth_models::ModelError),
    #[error(transparent)]
    Store(#[from] lth_store::StoreError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// A request that the lottery cannot serve (a branch off a level not yet trained...).
    #[error("{0}")]
    Invalid(String),
}
