//! Errors of the pruning crate.

/// What can go wrong building, reading or applying a mask.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// Masks and weights that do not correspond (a missing name, another shape, another dtype).
    #[error("{0}")]
    Mismatch(String),
    /// An impossible request (a fraction outside [0, 1], weights that are not finite...).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Model(#[from] lth_models::ModelError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
