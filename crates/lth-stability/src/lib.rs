//! Stability of lottery tickets, as "Stabilizing the Lottery Ticket Hypothesis" (Frankle et al.,
//! arXiv 1903.01611) and "Linear Mode Connectivity and the LTH" (Frankle et al., ICML 2020) define it.
//!
//! - [`metrics`]: pure functions over named tensors and masks: the L2 distance and the angle
//!   between two networks' masked prunable weights, linear interpolation and its error barrier
//!   (the normalised Hamming distance between masks is `lth_prune::Mask::hamming`).
//! - [`experiment`]: the measurements. Data-order stability of a ticket (W_k, m) trains copies of
//!   m⊙W_k with different data orders and measures their distance; pruning stability trains the
//!   full network from W_k and the subnetwork from m⊙W_k with the same data order. Both run for IMP
//!   subnetworks and for random subnetworks with the same per-layer sparsity, so the paper's "Comp"
//!   ratio (random distance / IMP distance) comes out directly. Copies are units of the run store.
//!
//! ```
//! use lth_prune::Mask;
//! use lth_stability::{barrier, l2_distance};
//! use tch::Tensor;
//! // Two networks' weights (from any source: a VarStore, a checkpoint) and a mask.
//! let a = vec![("fc.weight".to_owned(), Tensor::from_slice(&[1.0f32, 2.0, 3.0]))];
//! let b = vec![("fc.weight".to_owned(), Tensor::from_slice(&[1.0f32, 2.0, 7.0]))];
//! let keep_all = Mask::ones(&a);
//! assert_eq!(l2_distance(&a, &b, &keep_all)?, 4.0);
//! // The error barrier of an interpolation: the worst error minus the mean of the ends.
//! assert!((barrier(&[0.10, 0.30, 0.12]) - 0.19).abs() < 1e-12);
//! # Ok::<(), lth_stability::StabilityError>(())
//! ```

pub mod experiment;
pub mod metrics;

pub use experiment::{
    CopySpec, CurvePoint, InterpolationSummary, Split, StabilityRow, StabilitySummary, Subnetwork,
    comp, copy_jobs, interpolation, level_copies, sample_copies, stability, summarize,
    train_copies, train_sample,
};
pub use metrics::{
    BnStats, angle, barrier, interpolate, interpolation_curve, interpolation_curve_with,
    l2_distance,
};

/// What can go wrong measuring stability.
#[derive(Debug, thiserror::Error)]
pub enum StabilityError {
    #[error(transparent)]
    Lottery(#[from] lth_lottery::LotteryError),
    #[error(transparent)]
    Prune(#[from] lth_prune::PruneError),
    #[error(transparent)]
    Model(#[from] lth_models::ModelError),
    #[error(transparent)]
    Store(#[from] lth_store::StoreError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Train(#[from] lth_train::TrainError),
    /// Networks or masks that cannot be compared, or an impossible request.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T, E = StabilityError> = std::result::Result<T, E>;
