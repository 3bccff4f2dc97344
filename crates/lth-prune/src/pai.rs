//! Pruning at initialisation: one score, one selection, before any training.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::score::{self, GRASP_TEMPERATURE};
use crate::{Count, Keep, Mask, Network, PruneError, Result, select_global};

/// A method of pruning at initialisation, with its score, selection and counting rule.
///
/// | method    | score                 | keeps    | count (N prunable weights, sparsity S) |
/// |-----------|-----------------------|----------|----------------------------------------|
/// | magnitude | \|w\|                 | largest  | N − ⌊S·N⌋, global                      |
/// | random    | uniform, seeded       | largest  | N − ⌊S·N⌋, global                      |
/// | snip      | \|g ⊙ w\| / Σ         | largest  | round(N·(1−S)), global (SNIP's code)   |
/// | grasp     | −θ ⊙ Hg / \|Σ\|       | smallest | N − ⌊S·N⌋, global (GraSP's code)       |
/// | synflow   | \|θ ⊙ ∂R/∂θ\|, 100 rounds at density d^(r/n) | largest | N − ⌊S·N⌋ per round, global |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Magnitude,
    Random,
    Snip,
    Grasp,
    Synflow,
}

/// Every method, in the order tables list them.
pub const METHODS: [Method; 5] = [
    Method::Random,
    Method::Magnitude,
    Method::Snip,
    Method::Grasp,
    Method::Synflow,
];

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Magnitude => "magnitude",
            Method::Random => "random",
            Method::Snip => "snip",
            Method::Grasp => "grasp",
            Method::Synflow => "synflow",
        })
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        METHODS
            .into_iter()
            .find(|m| m.to_string() == s)
            .ok_or_else(|| {
                format!("unknown pruning method `{s}`: expected snip, grasp, synflow, magnitude or random")
            })
    }
}

/// The settings of pruning at initialisation besides the method and the sparsity.
#[derive(Debug, Clone, PartialEq)]
pub struct PaiOptions {
    /// Seed of the random method's scores.
    pub seed: u64,
    /// SynFlow's rounds (100 in the paper).
    pub rounds: u32,
    /// GraSP's temperature (200 in the paper).
    pub temperature: f64,
    /// Shape of one input example (C, H, W), for SynFlow's all-ones input.
    pub input: Vec<i64>,
}

impl PaiOptions {
    /// The paper's settings for inputs of shape `input`.
    pub fn new(input: &[i64], seed: u64) -> PaiOptions {
        PaiOptions {
            seed,
            rounds: 100,
            temperature: GRASP_TEMPERATURE,
            input: input.to_vec(),
        }
    }
}

impl Method {
    /// Whether the method scores with a batch of data (SNIP, GraSP).
    pub fn needs_data(self) -> bool {
        matches!(self, Method::Snip | Method::Grasp)
    }

    /// Prunes the layers of `mask` (every prunable kernel of `net`, in network order) to
    /// `sparsity` at once; `batch` is the scoring batch of the methods that need data.
    pub fn prune(
        self,
        net: &dyn Network,
        mask: &Mask,
        sparsity: f64,
        batch: Option<(&Tensor, &Tensor)>,
        opts: &PaiOptions,
    ) -> Result<Mask> {
        let _pruning = lth_store::ledger::span(lth_store::ledger::Activity::Pruning);
        if !(0.0..1.0).contains(&sparsity) {
            return Err(PruneError::Invalid(format!(
                "sparsity must be in [0, 1), got {sparsity}"
            )));
        }
        let included: Vec<String> = net.prunable().names().map(str::to_owned).collect();
        let data = || {
            batch.ok_or_else(|| {
                PruneError::Invalid(format!(
                    "{self} scores with a batch of data, and none was given"
                ))
            })
        };
        let floor = Count::SparsityFloor(sparsity);
        match self {
            Method::Magnitude => {
                let s = score::magnitude(&net.prunable());
                select_global(&s, mask, &included, Keep::Largest, floor)
            }
            Method::Random => {
                let s = score::random(&net.prunable(), opts.seed);
                select_global(&s, mask, &included, Keep::Largest, floor)
            }
            Method::Snip => {
                let (x, y) = data()?;
                let s = score::snip(net, mask, x, y)?;
                select_global(
                    &s,
                    mask,
                    &included,
                    Keep::Largest,
                    Count::SparsityRound(sparsity),
                )
            }
            Method::Grasp => {
                let (x, y) = data()?;
                let s = score::grasp(net, mask, x, y, opts.temperature)?;
                select_global(&s, mask, &included, Keep::Smallest, floor)
            }
            Method::Synflow => {
                let density = 1.0 - sparsity;
                let mut m = mask.clone();
                for round in 1..=opts.rounds.max(1) {
                    let s = score::synflow(net, &m, &opts.input)?;
                    let d = score::synflow_density(density, round, opts.rounds);
                    m = select_global(
                        &s,
                        &m,
                        &included,
                        Keep::Largest,
                        Count::SparsityFloor(1.0 - d),
                    )?;
                }
                Ok(m)
            }
        }
    }
}
