//! Initialisers of prunable kernels, as the papers and OpenLTH use them.

use lth_rng::Stream;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The `lth-rng` domain of initial weights.
pub const INIT: &str = "init";

/// How prunable kernels are initialised. Biases keep PyTorch's default
/// (U(−1/√fan_in, 1/√fan_in)); BatchNorm weights are drawn from U(0, 1) and biases set to 0, as in
/// OpenLTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// He et al.: N(0, 2 / fan_in). OpenLTH's default for every model.
    KaimingNormal,
    /// Glorot & Bengio: N(0, 2 / (fan_in + fan_out)). The LTH paper's "Gaussian Glorot".
    GlorotNormal,
}

impl Init {
    /// The standard deviation this initialiser draws a kernel of `shape` with
    /// (`[out, in]` or `[out, in, kh, kw]`). Sign-preserving reinitialisation uses it as the
    /// layer's "init std".
    pub fn std(self, shape: &[i64]) -> f64 {
        let receptive: i64 = shape.iter().skip(2).product();
        let fan_in = (shape.get(1).copied().unwrap_or(1) * receptive) as f64;
        let fan_out = (shape[0] * receptive) as f64;
        match self {
            Init::KaimingNormal => (2.0 / fan_in).sqrt(),
            Init::GlorotNormal => (2.0 / (fan_in + fan_out)).sqrt(),
        }
    }

    /// The signed constant of a kernel (Zhou et al.; edge-popup's "signed Kaiming constant" when
    /// this is [`Init::KaimingNormal`]): sign(w) × the layer's init std, on `w`'s device. The one
    /// home of the treatment, used by lottery branches and learned supermasks alike.
    pub fn signed_constant(self, w: &Tensor) -> Tensor {
        w.sign() * self.std(&w.size())
    }

    /// A kernel of `shape` drawn from the stream of `name` under `seed` (a CPU `f32` tensor).
    pub fn draw(self, shape: &[i64], seed: u64, name: &str) -> Tensor {
        let n = shape.iter().product::<i64>() as usize;
        let values = Stream::named(seed, INIT, name).normal(n, self.std(shape));
        Tensor::from_slice(&values).view(shape)
    }
}

impl std::fmt::Display for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Init::KaimingNormal => "kaiming_normal",
            Init::GlorotNormal => "glorot_normal",
        })
    }
}

impl std::str::FromStr for Init {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kaiming_normal" => Ok(Init::KaimingNormal),
            "glorot_normal" => Ok(Init::GlorotNormal),
            _ => Err(format!(
                "unknown initialiser `{s}`; expected kaiming_normal or glorot_normal"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stds_follow_the_fans() {
        assert!((Init::KaimingNormal.std(&[300, 784]) - (2.0f64 / 784.0).sqrt()).abs() < 1e-12);
        let conv = [64, 3, 3, 3];
        assert!((Init::KaimingNormal.std(&conv) - (2.0f64 / 27.0).sqrt()).abs() < 1e-12);
        assert!((Init::GlorotNormal.std(&conv) - (2.0f64 / (27.0 + 576.0)).sqrt()).abs() < 1e-12);
    }
}
