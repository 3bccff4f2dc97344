//! What a data-driven scorer needs of a network: a forward pass and its named variables.

use tch::{Tensor, nn};

use lth_models::{Model, Named};

/// A network scorers can run: lth's [`Model`], or any `tch::nn` network through [`Plain`].
pub trait Network {
    /// Runs the network; `train` selects batch statistics in BatchNorm.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// Every variable, parameters and buffers, sharing storage with the network.
    fn variables(&self) -> Named;
    /// The prunable kernels in network order (the order of the tie rule), sharing storage.
    fn prunable(&self) -> Named;
}

impl Network for Model {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        Model::forward_t(self, xs, train)
    }
    fn variables(&self) -> Named {
        self.state().into()
    }
    fn prunable(&self) -> Named {
        self.prunable_tensors().into()
    }
}

/// A plain `tch` network: a variable store and a forward function, built outside lth's zoo.
///
/// ```no_run
/// use tch::{nn, nn::ModuleT, Device};
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = nn::seq_t()
///     .add(nn::linear(vs.root() / "fc1", 784, 300, Default::default()))
///     .add_fn(|x| x.relu())
///     .add(nn::linear(vs.root() / "fc2", 300, 10, Default::default()));
/// let plain = lth_prune::Plain::new(&vs, |x, train| net.forward_t(x, train));
/// assert_eq!(lth_prune::Network::prunable(&plain).len(), 2);
/// ```
pub struct Plain<'a, F> {
    vs: &'a nn::VarStore,
    forward: F,
    prunable: Vec<String>,
}

impl<F> std::fmt::Debug for Plain<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plain")
            .field("prunable", &self.prunable)
            .finish_non_exhaustive()
    }
}

impl<'a, F: Fn(&Tensor, bool) -> Tensor> Plain<'a, F> {
    /// `vs` with `forward`; the prunable kernels are its trainable variables of two or more
    /// dimensions (linear and convolution weights), sorted by name.
    pub fn new(vs: &'a nn::VarStore, forward: F) -> Self {
        let mut prunable: Vec<String> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad() && t.dim() >= 2)
            .map(|(n, _)| n)
            .collect();
        prunable.sort();
        Plain {
            vs,
            forward,
            prunable,
        }
    }

    /// Names the prunable kernels explicitly, in the order ties are broken.
    pub fn with_prunable(mut self, names: &[&str]) -> Self {
        self.prunable = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }
}

impl<F: Fn(&Tensor, bool) -> Tensor> Network for Plain<'_, F> {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        (self.forward)(xs, train)
    }
    fn variables(&self) -> Named {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into()
    }
    fn prunable(&self) -> Named {
        let vars = self.vs.variables();
        self.prunable
            .iter()
            .filter_map(|n| Some((n.clone(), vars.get(n)?.shallow_clone())))
            .collect()
    }
}
