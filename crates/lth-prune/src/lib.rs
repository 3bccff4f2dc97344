//! Masks and the criteria that make them.
//!
//! A [`Mask`] is one boolean tensor per prunable parameter, keyed by the parameter's PyTorch name.
//! Criteria are pure functions: they take weights (named tensors) and the current mask and return a
//! new mask; nothing here trains or touches a model's variables except [`Mask::apply`].
//!
//! - [`magnitude_layerwise`]: each layer loses its own fraction of its *remaining* weights, those
//!   of smallest magnitude (the LeNet and Conv-2/4/6 recipes of the LTH paper);
//! - [`magnitude_global`]: one magnitude threshold across the included layers (ResNets, VGG);
//! - [`random_like`]: a random mask with the same number of weights kept in each layer as a given
//!   mask (the random-pruning baseline).
//!
//! Pruning `p` of `r` remaining weights removes exactly ⌈p·r⌉ of them (OpenLTH's rule); ties in
//! magnitude are broken by position (earlier layers, then lower flat indices, go first), so the
//! result is deterministic.

mod criteria;
mod error;
mod hparams;
mod mask;

pub use criteria::{magnitude_global, magnitude_layerwise, prune_count, random_like};
pub use error::PruneError;
pub use hparams::{PruningHparams, Strategy};
pub use mask::{LayerCount, Mask};

/// Result alias for this crate.
pub type Result<T, E = PruneError> = std::result::Result<T, E>;
