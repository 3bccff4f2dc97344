//! What a family's builder gives ([`Built`]: the network, its prunable kernels ([`Kernels`]), its
//! output layer, initialisation and BatchNorm), the crate's error ([`ModelError`]), and the
//! `:channels=` part of a narrow member's name. The families, the registry and [`crate::Model`]
//! all import these, and this module imports none of them.

use tch::nn;

use crate::{BnControl, Init, Result};

/// What can go wrong building a model or moving weights in and out of it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A name no family of the registry matches.
    #[error("unknown model `{name}`; known models: {known}")]
    Unknown { name: String, known: String },
    /// A name of a known family with malformed arguments.
    #[error("bad model name `{name}`: expected {expected}")]
    BadName { name: String, expected: String },
    /// Input that the network cannot take (a 3-channel image for LeNet...).
    #[error("model `{name}` cannot take {what}")]
    Incompatible { name: String, what: String },
    /// A set of tensors that does not match the model's variables.
    #[error("weights do not fit model `{name}`: {problem}")]
    StateMismatch { name: String, problem: String },
    /// A block map that does not fit the source and target depths (`morph`).
    #[error("{0}")]
    BadMap(String),
    /// Data that could not be read while re-estimating statistics.
    #[error("{0}")]
    Data(String),
    /// A tensor file that cannot be written or read.
    #[error("{}", lth_store::io_message(path, problem))]
    File {
        path: std::path::PathBuf,
        problem: String,
    },
    /// An error raised by libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// The prunable kernels of a network, in the network's order, each with the number of output
/// positions per example at which it is applied: H_out × W_out for a convolution, 1 for a linear
/// layer. A kernel of n weights applied at P positions costs n·P multiply-adds per example, which is
/// what FLOPs are counted from (`lth_prune::flops`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kernels {
    names: Vec<String>,
    positions: Vec<i64>,
    convolutions: usize,
}

impl Kernels {
    /// Records a linear layer's kernel.
    pub fn linear(&mut self, name: impl Into<String>) {
        self.names.push(name.into());
        self.positions.push(1);
    }

    /// Records a convolution's kernel, whose output maps are `out` (H, W).
    pub fn conv(&mut self, name: impl Into<String>, out: [i64; 2]) {
        self.names.push(name.into());
        self.positions.push(out[0] * out[1]);
        self.convolutions += 1;
    }

    /// Whether any kernel is a convolution's.
    pub fn has_convolutions(&self) -> bool {
        self.convolutions > 0
    }

    /// The kernels' names, in the network's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The output positions per example of each kernel, in the same order.
    pub fn positions(&self) -> &[i64] {
        &self.positions
    }
}

/// The output side (H, W) of a convolution or pooling of kernel `k`, `stride` and `padding` over
/// maps of side `side`, as PyTorch computes it (rounding down).
pub fn conv_output(side: [i64; 2], k: i64, stride: i64, padding: i64) -> [i64; 2] {
    side.map(|s| (s + 2 * padding - k) / stride + 1)
}

/// What a model family's builder returns.
#[derive(Debug)]
pub struct Built {
    pub net: Box<dyn nn::ModuleT>,
    /// The prunable kernels, in the network's order, with their output positions.
    pub kernels: Kernels,
    /// Name of the output layer's kernel.
    pub output: String,
    /// The family's default initialiser of prunable kernels.
    pub init: Init,
    /// The momentum control shared by the network's BatchNorm layers (`None`: it has none).
    pub batchnorm: Option<BnControl>,
}

/// What separates a narrow member's widths from its family's name.
pub(crate) const SUFFIX: &str = ":channels=";

/// Splits `<base>:channels=<w>,<w>,…` into the base name and the widths (`None` without the
/// suffix).
pub(crate) fn split_channels(name: &str) -> Result<(&str, Option<Vec<i64>>)> {
    let Some((base, list)) = name.split_once(SUFFIX) else {
        return Ok((name, None));
    };
    let widths: Option<Vec<i64>> = list
        .split(',')
        .map(|w| w.trim().parse::<i64>().ok().filter(|&w| w > 0))
        .collect();
    match widths {
        Some(w) if !w.is_empty() => Ok((base, Some(w))),
        _ => Err(ModelError::BadName {
            name: name.into(),
            expected: format!("{base}{SUFFIX}<w>,<w>,… with every width a positive integer"),
        }),
    }
}

/// Checks that a narrow member gives one width per slimmable layer.
pub(crate) fn check_count(name: &str, widths: &[i64], expected: usize, what: &str) -> Result<()> {
    if widths.len() != expected {
        return Err(ModelError::BadName {
            name: name.into(),
            expected: format!("{expected} widths (one per {what}), not {}", widths.len()),
        });
    }
    Ok(())
}
