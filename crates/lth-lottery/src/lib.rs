//! Iterative magnitude pruning (IMP) with rewinding, and the baselines run off its levels.
//!
//! Frankle et al., "Stabilizing the Lottery Ticket Hypothesis" (arXiv 1903.01611), after Frankle &
//! Carbin (ICLR 2019):
//!
//! 1. level 0 trains the dense network from W0 for T steps and keeps the rewind point W_k;
//! 2. level L prunes a fraction of the remaining weights of level L−1's trained weights W_T (by
//!    magnitude), rewinds the survivors to W_k and trains steps k..T, with the learning-rate schedule
//!    and the data order continuing from step k as if training had never stopped.
//!
//! Retraining variants ([`Retrain`]): weight rewinding (above), learning-rate rewinding (Renda et
//! al. 2020: keep W_T, replay the schedule from k), fine-tuning (keep W_T, train at the final rate).
//! Branches ([`BranchKind`]) share a level's mask (or its per-layer sparsity) and train steps k..T:
//! random reinitialisation, random pruning (per layer, or uniform over the network as the
//! pruning-at-initialisation papers draw it), sign-preserving reinitialisation and reshuffling
//! (Zhou et al. 2019); two more, the supermasks, evaluate the mask on the untrained W0 (its own
//! values or signed constants) without training. Transplants ([`Transplant`]) move a level's ticket
//! to another depth, dataset or optimiser.
//!
//! Every level and branch is a unit of the run store, resumable and never recomputed once done:
//! `runs/lottery_<hash>/replicate_<n>/level_<L>/{main,branch_<kind>_<hash>}/`.
//!
//! ```
//! use lth_lottery::{LotteryHparams, Retrain};
//! // The LTH paper's LeNet recipe: layerwise IMP, 20% of the hidden layers' remaining weights per
//! // level and 10% of the output layer's, rewinding to initialisation.
//! let hp = LotteryHparams::recipe("lenet_300_100")?;
//! assert_eq!((hp.pruning.rate, hp.pruning.output_rate), (0.2, Some(0.1)));
//! assert!(hp.rewind.is_zero());
//! assert_eq!(hp.retrain, Retrain::WeightRewinding);
//! # Ok::<(), lth_lottery::LotteryError>(())
//! ```

mod error;
#[cfg(feature = "clap")]
pub mod flags;
mod grid;
mod hparams;
mod lottery;
mod results;
mod transplant;

pub use error::LotteryError;
pub use grid::{GridHparams, GridRow, rewind_points};
pub use hparams::{BranchHparams, BranchKind, LotteryHparams, Retrain, reinit_seed};
pub use lottery::{LAYER_TABLE, Lottery, level_ticket};
pub use results::{LayerRow, ResultRow};
pub use transplant::{
    Destination, OptimizerRecipe, Output, Planted, Transplant, TransplantHparams,
};

/// Result alias for this crate.
pub type Result<T, E = LotteryError> = std::result::Result<T, E>;
