//! Masks, scores and selections: everything that decides which weights a sparse network keeps.
//!
//! Three things are kept apart, as in ../METHODS (jaxpruner and sparsimony do the same):
//! - a **score** per weight ([`score`]: magnitude, random, SNIP, GraSP, SynFlow), as named tensors;
//! - a **selection** ([`select_global`], [`select_layerwise`]): keep the highest (or lowest)
//!   scores among the weights the current mask keeps, with each method's counting rule
//!   ([`Count`]) and one tie rule: among equal scores the earlier position goes first (earlier
//!   layer, then lower flat index);
//! - the [`Mask`]: one boolean tensor per prunable parameter, the one mask type of lth.
//!
//! IMP is magnitude + selection ([`magnitude_layerwise`], [`magnitude_global`],
//! [`PruningHparams`]); pruning at initialisation is a [`Method`]. Scorers take any [`Network`]:
//! lth's models, or a plain `tch::nn` network through [`Plain`].
//!
//! ```
//! use lth_prune::{Keep, Mask, Count, score, select_global};
//! use tch::Tensor;
//! let w = vec![
//!     ("fc1.weight".to_owned(), Tensor::from_slice(&[0.5f32, -0.1, 0.3, -0.9]).view([2, 2])),
//!     ("fc2.weight".to_owned(), Tensor::from_slice(&[0.2f32, 0.05]).view([1, 2])),
//! ];
//! let mask = Mask::ones(&w);
//! let names: Vec<String> = w.iter().map(|(n, _)| n.clone()).collect();
//! // Keep the 3 largest magnitudes of 6 (sparsity 0.5, RigL's counting rule).
//! let kept = select_global(&score::magnitude(&w), &mask, &names, Keep::Largest,
//!                          Count::SparsityFloor(0.5)).unwrap();
//! assert_eq!(kept.kept(), 3);
//! assert_eq!(kept.counts()[1].kept, 0); // fc2's weights were all smaller
//! ```

pub mod basis;
pub mod channels;
mod criteria;
pub mod criterion;
pub mod distribution;
mod error;
pub mod flops;
pub mod greedy;
mod hparams;
mod mask;
mod network;
mod pai;
pub mod score;
mod select;

pub use criteria::{
    RESHUFFLE, magnitude_global, magnitude_layerwise, random_layer, random_like, reshuffle,
};
pub use criterion::Criterion;
pub use distribution::{Distribution, LayerSparsity, Spread};
pub use error::PruneError;
pub use flops::Flops;
pub use hparams::{PruningHparams, Strategy};
pub use mask::{LAYERS_FILE, LayerCount, MASK_FILE, Mask};
pub use network::{Network, Plain};
pub use pai::{METHODS, Method, PaiOptions};
pub use select::{Count, Keep, drop_and_grow, prune_count, select_global, select_layerwise};

/// Result alias for this crate.
pub type Result<T, E = PruneError> = std::result::Result<T, E>;
