//! [`Network`]: the API that [`Model`] and [`PackedModel`] mirror, one trait over both, so that
//! code measuring or inspecting networks is written once for a network and for a pack of copies,
//! and the two cannot drift apart.

use tch::{Device, Tensor};

use crate::{Model, Named, PackedModel};

/// A network, or `copies()` copies of one packed together: what both answer alike.
pub trait Network {
    /// The registry name (of every copy).
    fn name(&self) -> &str;
    /// The device the weights live on.
    fn device(&self) -> Device;
    /// How many networks run at once: 1 for a [`Model`].
    fn copies(&self) -> i64;
    /// Names of the prunable kernels (of one copy).
    fn prunable(&self) -> &[String];
    /// Whether the network has BatchNorm layers.
    fn has_batchnorm(&self) -> bool;
    /// Logits: a [`Model`] maps `[B, …]` to `[B, classes]`; a pack maps `[N, B, …]` (copy i's
    /// batch at index i) to `[N, B, classes]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// Every variable, sorted by name (a pack's with the copies first, `[N, …]`).
    fn state(&self) -> Vec<(String, Tensor)>;
    /// The trainable variables: what one optimiser updates.
    fn parameters(&self) -> Vec<(String, Tensor)>;
    /// The BatchNorm scales γ, sorted by name.
    fn batchnorm_scales(&self) -> Vec<(String, Tensor)>;
    /// Copy `i`'s variables under PyTorch's names and the plain network's shapes (views: writing
    /// them writes the copy). A [`Model`] is copy 0.
    fn copy_state(&self, i: i64) -> Named;
}

impl Network for Model {
    fn name(&self) -> &str {
        Model::name(self)
    }
    fn device(&self) -> Device {
        Model::device(self)
    }
    fn copies(&self) -> i64 {
        1
    }
    fn prunable(&self) -> &[String] {
        Model::prunable(self)
    }
    fn has_batchnorm(&self) -> bool {
        Model::has_batchnorm(self)
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        Model::forward_t(self, xs, train)
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        Model::state(self)
    }
    fn parameters(&self) -> Vec<(String, Tensor)> {
        Model::parameters(self)
    }
    fn batchnorm_scales(&self) -> Vec<(String, Tensor)> {
        Model::batchnorm_scales(self)
    }
    /// # Panics
    /// When `i` is not 0: a model is one copy.
    fn copy_state(&self, i: i64) -> Named {
        assert_eq!(i, 0, "a model has one copy, 0; asked for copy {i}");
        Model::state(self).into_iter().collect()
    }
}

impl Network for PackedModel {
    fn name(&self) -> &str {
        PackedModel::name(self)
    }
    fn device(&self) -> Device {
        PackedModel::device(self)
    }
    fn copies(&self) -> i64 {
        PackedModel::copies(self)
    }
    fn prunable(&self) -> &[String] {
        PackedModel::prunable(self)
    }
    fn has_batchnorm(&self) -> bool {
        PackedModel::has_batchnorm(self)
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        PackedModel::forward_t(self, xs, train)
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        PackedModel::state(self)
    }
    fn parameters(&self) -> Vec<(String, Tensor)> {
        PackedModel::parameters(self)
    }
    fn batchnorm_scales(&self) -> Vec<(String, Tensor)> {
        PackedModel::batchnorm_scales(self)
    }
    fn copy_state(&self, i: i64) -> Named {
        PackedModel::copy_state(self, i)
    }
}
