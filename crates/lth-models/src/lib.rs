//! The networks of the lottery-ticket papers, built on a `tch::nn::VarStore` with PyTorch parameter
//! names (`fc_layers.0.weight`, `layer1.0.conv1.weight`), so checkpoints line up with PyTorch's and
//! OpenLTH's.
//!
//! A [`Model`] owns its variable store and knows which parameters are prunable (conv and linear
//! kernels; never biases or BatchNorm) and which one is the output layer. Models are initialised on
//! the CPU from an initialisation seed and then moved, so `W0` is the same on every device.

pub mod conv;
pub mod init;
mod io;
pub mod lenet;
mod model;
mod named;
pub mod norm;
pub mod registry;
pub mod resnet;
pub mod vgg;

pub use init::Init;
pub use io::{load_tensors, save_tensors};
pub use model::{Built, Model, ModelError, channels_last};
pub use named::Named;
pub use norm::{BatchNorm, BnControl, batch_norm};
pub use registry::{Family, families, family};

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
