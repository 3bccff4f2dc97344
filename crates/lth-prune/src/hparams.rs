//! Pruning hyperparameters: strategy, fractions per level, excluded layers.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::{Count, Criterion, Keep, Mask, PruneError, Result, select_global, select_layerwise};

/// How one level of pruning picks the weights to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each layer loses its own fraction of its remaining weights.
    #[default]
    Layerwise,
    /// One magnitude threshold across all included layers.
    Global,
}

impl Strategy {
    /// The command line's name: `layerwise`, `global`.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Layerwise => "layerwise",
            Strategy::Global => "global",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "layerwise" => Ok(Strategy::Layerwise),
            "global" => Ok(Strategy::Global),
            _ => Err(format!(
                "unknown strategy `{s}`: expected layerwise or global"
            )),
        }
    }
}

/// How each level of iterative magnitude pruning prunes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PruningHparams {
    pub strategy: Strategy,
    /// Fraction of the remaining weights removed per level (global; layerwise for linear layers).
    pub rate: f64,
    /// Layerwise: fraction for convolution kernels (default: `rate`).
    pub conv_rate: Option<f64>,
    /// Layerwise: fraction for the output layer (default: `rate`).
    pub output_rate: Option<f64>,
    /// Layers never pruned, by parameter name.
    pub exclude: Vec<String>,
    /// Which weights a level keeps (IMP's `large_final` by default; "Deconstructing Lottery
    /// Tickets" compares the others).
    pub criterion: Criterion,
}

impl PruningHparams {
    /// Checks fractions and names against the model's prunable layers. Errors name the flag:
    /// `--rate`, `--conv-rate`, `--output-rate`, `--exclude`.
    pub fn validate(&self, prunable: &[String]) -> Result<()> {
        for (what, f) in [
            ("--rate", Some(self.rate)),
            ("--conv-rate", self.conv_rate),
            ("--output-rate", self.output_rate),
        ] {
            if let Some(f) = f
                && !(0.0..1.0).contains(&f)
            {
                return Err(PruneError::Invalid(format!(
                    "{what} must be a fraction in [0, 1), got {f}"
                )));
            }
        }
        if self.strategy == Strategy::Global {
            for (what, f) in [
                ("--conv-rate", self.conv_rate),
                ("--output-rate", self.output_rate),
            ] {
                if f.is_some() {
                    return Err(PruneError::Invalid(format!(
                        "{what} applies to layerwise pruning only; --strategy global prunes \
                         every layer by one threshold at --rate (drop {what}, or use --strategy \
                         layerwise)"
                    )));
                }
            }
        }
        if let Some(x) = self.exclude.iter().find(|x| !prunable.contains(x)) {
            return Err(PruneError::Invalid(format!(
                "--exclude `{x}`: not a prunable layer of this model ({})",
                prunable.join(", ")
            )));
        }
        if !prunable.is_empty() && prunable.iter().all(|p| self.exclude.contains(p)) {
            return Err(PruneError::Invalid(format!(
                "--exclude: every prunable layer of this model is excluded ({}), so every level \
                 would train the same dense network; keep at least one",
                prunable.join(", ")
            )));
        }
        Ok(())
    }

    /// The fraction a layer loses per level under the layerwise strategy.
    pub fn layer_rate(&self, name: &str, weight: &Tensor, output: &str) -> f64 {
        if self.exclude.iter().any(|x| x == name) {
            0.0
        } else if name == output {
            self.output_rate.unwrap_or(self.rate)
        } else if weight.dim() == 4 {
            self.conv_rate.unwrap_or(self.rate)
        } else {
            self.rate
        }
    }

    /// How many of each layer's weights a layerwise level keeps: each layer (named in `weights`,
    /// the network's kernels) loses [`Self::layer_rate`] of what it has left.
    pub fn layerwise_counts<'a>(
        &'a self,
        weights: &'a [(String, Tensor)],
        output: &'a str,
    ) -> impl Fn(&str) -> Count + 'a {
        move |name| {
            let rate = weights
                .iter()
                .find(|(n, _)| n == name)
                .map_or(self.rate, |(n, w)| self.layer_rate(n, w, output));
            Count::PruneFraction(rate)
        }
    }

    /// One level of pruning by magnitude (`large_final`): the mask after removing this level's
    /// weights from `mask`, judged by `weights` (the trained weights, in network order). `output`
    /// names the output layer. A criterion that reads the starting weights needs [`Self::prune_from`].
    pub fn prune(&self, weights: &[(String, Tensor)], mask: &Mask, output: &str) -> Result<Mask> {
        self.prune_from(weights, &[], mask, output)
    }

    /// One level of pruning by the criterion, from the weights training ended with (`last`, in
    /// network order) and started from (`first`: the weights the level rewound to).
    pub fn prune_from(
        &self,
        last: &[(String, Tensor)],
        first: &[(String, Tensor)],
        mask: &Mask,
        output: &str,
    ) -> Result<Mask> {
        let scores = self.criterion.score(last, first)?;
        match self.strategy {
            Strategy::Layerwise => select_layerwise(
                &scores,
                mask,
                Keep::Largest,
                self.layerwise_counts(last, output),
            ),
            Strategy::Global => {
                let included: Vec<String> = last
                    .iter()
                    .map(|(n, _)| n.clone())
                    .filter(|n| !self.exclude.contains(n))
                    .collect();
                select_global(
                    &scores,
                    mask,
                    &included,
                    Keep::Largest,
                    Count::PruneFraction(self.rate),
                )
            }
        }
    }
}
