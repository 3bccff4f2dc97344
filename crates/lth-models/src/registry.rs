//! The model registry: families of networks, each matching names of a pattern (`lenet_300_100`).

use tch::nn;

use crate::{Built, ModelError, Result, lenet};

/// A family of networks sharing a builder; a name selects one member.
#[derive(Debug)]
pub struct Family {
    /// What names of the family look like.
    pub pattern: &'static str,
    /// The member the papers use.
    pub example: &'static str,
    /// Where the network comes from.
    pub paper: &'static str,
    pub(crate) matches: fn(&str) -> bool,
    pub(crate) build: fn(&str, &nn::Path, [i64; 3], i64) -> Result<Built>,
}

static FAMILIES: [Family; 1] = [Family {
    pattern: "lenet_<width>_<width>…",
    example: "lenet_300_100",
    paper: "LeCun et al. 1998; the LTH paper's MNIST network",
    matches: |n| n.starts_with("lenet_"),
    build: lenet::build,
}];

/// Every family of the registry.
pub fn families() -> &'static [Family] {
    &FAMILIES
}

/// The family a model name belongs to.
pub fn family(name: &str) -> Result<&'static Family> {
    FAMILIES
        .iter()
        .find(|f| (f.matches)(name))
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_owned(),
            known: FAMILIES
                .iter()
                .map(|f| f.pattern)
                .collect::<Vec<_>>()
                .join(", "),
        })
}
