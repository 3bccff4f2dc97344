//! The networks of the lottery-ticket papers, built on a `tch::nn::VarStore` with PyTorch parameter
//! names (`fc_layers.0.weight`, `layer1.0.conv1.weight`), so checkpoints line up with PyTorch's and
//! OpenLTH's.
//!
//! A [`Model`] owns its variable store and knows which parameters are prunable (conv and linear
//! kernels; never biases or BatchNorm) and which one is the output layer. Models are initialised on
//! the CPU from an initialisation seed and then moved, so `W0` is the same on every device.
//!
//! ```
//! use lth_models::Model;
//! use tch::{Device, Kind, Tensor};
//! let m = Model::new("lenet_300_100", [1, 28, 28], 10, None, 1, Device::Cpu)?;
//! assert_eq!(m.prunable(), ["fc_layers.0.weight", "fc_layers.1.weight", "fc.weight"]);
//! let logits = m.forward_t(&Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu)), false);
//! assert_eq!(logits.size(), [2, 10]);
//! // The same seed gives the same W0 (on every device: it is drawn on the host).
//! let again = Model::new("lenet_300_100", [1, 28, 28], 10, None, 1, Device::Cpu)?;
//! assert!(m.state().iter().zip(again.state()).all(|((_, a), (_, b))| a.equal(&b)));
//! # Ok::<(), lth_models::ModelError>(())
//! ```

mod built;
pub mod conv;
pub mod init;
mod io;
pub mod layers;
pub mod lenet;
mod model;
pub mod morph;
mod named;
mod network;
pub mod norm;
mod packed;
pub mod registry;
pub mod resnet;
pub mod rounding;
pub mod slim;
pub mod sparse;
pub mod vgg;
pub mod wrn;

pub use built::{Built, Kernels, ModelError, conv_output};
pub use init::Init;
pub use io::{load_tensors, save_tensors};
pub use layers::{BatchNorm, Conv2d, Linear, Pack, Window, batch_norm, conv2d, linear};
pub use model::{Model, Outline, channels_last, kernels, outline};
pub use named::Named;
pub use network::Network;
pub use norm::BnControl;
pub use packed::PackedModel;
pub use registry::{Family, families, family};

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
