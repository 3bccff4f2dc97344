//! Datasets for lottery-ticket experiments: on-disk readers, a registry, and a seeded on-device loader.
//!
//! - [`idx`] reads MNIST-format IDX files (raw or gzip) with errors that name the file and the problem.
//! - [`registry`](mod@registry) knows each dataset: where its files live under the data root, its shape, classes,
//!   normalisation, and how a user obtains it.
//! - [`Loader`] yields normalised batches from a [`Source`]: a whole split kept on the training
//!   device as `u8` ([`DeviceSplit`], the small datasets), or image folders read from disk as each
//!   batch needs them ([`FolderSplit`], ImageNet-sized data). Either way the batches come in an
//!   order fixed by a data-order seed: a fresh permutation per epoch, drawn on the host from an
//!   `lth-rng` stream, so the order is the same on every device and any step can be served without
//!   replaying the ones before it (which is what resuming and rewinding need).
//!
//! ```
//! // What a dataset is, where its files go, and what is missing (with how to get it).
//! let info = lth_data::info("fashion-mnist")?;
//! assert_eq!((info.shape, info.num_classes), ([1, 28, 28], 10));
//! let missing = info.absent(std::path::Path::new("/nonexistent"));
//! assert!(missing.is_some_and(|why| why.contains("train-images")));
//! assert!(lth_data::info("imagenet-22k").is_err());
//! # Ok::<(), lth_data::DataError>(())
//! ```

pub mod augment;
pub mod cifar;
mod dataset;
pub mod error;
pub mod folder;
pub mod generated;
pub mod idx;
pub mod loader;
pub mod mnist;
pub mod registry;
mod split;
#[cfg(any(test, feature = "test-util"))]
pub mod testutil;

pub use augment::Augment;
pub use dataset::{Dataset, Prepared, prepare};
pub use error::DataError;
pub use loader::{Batch, DeviceSplit, FolderSplit, Loader, Source};
pub use registry::{DatasetInfo, Derived, Format, data_root, info, registry};
pub use split::Split;

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
