//! Depth morphisms: a network's blocks copied into a network of another depth of the same family,
//! as the Elastic Lottery Ticket Hypothesis moves a ticket (Chen et al., NeurIPS 2021;
//! VITA-Group/ElasticLTH, `lottery/branch/morphism.py`).
//!
//! A [`BlockMap`] sends each source block of a stage to zero or more target blocks of the same
//! stage, and the same map serves every stage. The unit is a residual block of a CIFAR ResNet
//! (`blocks.<stage·n + i>.*`, three stages of n blocks) or a hidden layer of LeNet
//! (`fc_layers.<i>.*`, one stage). Everything outside the blocks (the stem, the classifier) is
//! copied unchanged. [`morph`] renames any set of named tensors this way, so weights, BatchNorm
//! statistics and masks all follow one map.
//!
//! ```
//! use lth_models::morph::BlockMap;
//! let map = BlockMap::resolve("interpolation", 3, 5)?;
//! assert_eq!(map.to_string(), "0:0;1:1,2;2:3,4");
//! // Squeezing back with the inverse map keeps the first copy of each block.
//! assert_eq!(map.inverse().to_string(), "0:0;1:1;3:2");
//! # Ok::<(), lth_models::ModelError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use tch::Tensor;

use crate::{Model, ModelError, Result, lenet, resnet};

/// Source block → target blocks within a stage; the same map for every stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMap {
    /// `targets[i]`: the target blocks of source block `i` (empty: dropped).
    targets: Vec<Vec<usize>>,
}

fn bad(problem: impl Into<String>) -> ModelError {
    ModelError::BadMap(problem.into())
}

impl BlockMap {
    /// Parses `0:0;1:1,2;2:3,4` (source block, colon, comma-separated target blocks; a source
    /// block absent or with nothing after its colon is dropped).
    pub fn parse(s: &str) -> Result<BlockMap> {
        let mut targets: Vec<Vec<usize>> = Vec::new();
        for entry in s.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (from, to) = entry.split_once(':').ok_or_else(|| {
                bad(format!(
                    "`{entry}` is not `source:targets` (e.g. `1:1,2`) in block map `{s}`"
                ))
            })?;
            let index = |v: &str| {
                v.trim().parse::<usize>().map_err(|_| {
                    bad(format!(
                        "`{v}` is not a block index (0, 1, ...) in block map `{s}`"
                    ))
                })
            };
            let from = index(from)?;
            if from >= targets.len() {
                targets.resize(from + 1, Vec::new());
            } else if !targets[from].is_empty() {
                return Err(bad(format!(
                    "source block {from} appears twice in block map `{s}`"
                )));
            }
            targets[from] = to
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(index)
                .collect::<Result<_>>()?;
        }
        Ok(BlockMap { targets })
    }

    /// The named presets, from `n_source` to `n_target` blocks per stage. Stretching:
    /// `interpolation` repeats each block in place (B0 B1 B1 B2 B2), `appending` appends the
    /// blocks after the first again in order (B0 B1 B2 B1 B2); the blocks after the first are
    /// spread as evenly as possible, earlier ones first. Squeezing (either name): the first
    /// `n_target` blocks are kept and the later ones dropped (the paper: avoid dropping early
    /// blocks).
    pub fn preset(name: &str, n_source: usize, n_target: usize) -> Option<BlockMap> {
        if n_source == 0 || n_target == 0 {
            return None;
        }
        let mut targets = vec![Vec::new(); n_source];
        if n_target <= n_source {
            if !matches!(name, "interpolation" | "appending") {
                return None;
            }
            for (i, t) in targets.iter_mut().enumerate().take(n_target) {
                t.push(i);
            }
            return Some(BlockMap { targets });
        }
        targets[0].push(0);
        let (m, slots) = (n_source - 1, n_target - 1);
        if m == 0 {
            return None;
        }
        match name {
            "interpolation" => {
                let mut next = 1;
                for (i, t) in targets.iter_mut().skip(1).enumerate() {
                    let copies = slots / m + usize::from(i < slots % m);
                    t.extend(next..next + copies);
                    next += copies;
                }
            }
            "appending" => {
                for j in 0..slots {
                    targets[1 + j % m].push(1 + j);
                }
            }
            _ => return None,
        }
        Some(BlockMap { targets })
    }

    /// A preset name or an explicit map, checked against the blocks per stage.
    pub fn resolve(spec: &str, n_source: usize, n_target: usize) -> Result<BlockMap> {
        let map = match spec {
            "interpolation" | "appending" => BlockMap::preset(spec, n_source, n_target)
                .ok_or_else(|| {
                    bad(format!(
                        "the `{spec}` map cannot stretch {n_source} block(s) per stage to \
                         {n_target}: give the map explicitly"
                    ))
                })?,
            _ if spec.contains(':') => BlockMap::parse(spec)?,
            _ => {
                return Err(bad(format!(
                    "`{spec}` is neither a preset (interpolation, appending) nor a map like \
                     `0:0;1:1,2;2:3,4`"
                )));
            }
        };
        map.check(n_source, n_target)?;
        Ok(map)
    }

    /// Every target block covered exactly once, by a source block that exists; block 0 (the
    /// stage's downsampling block) mapped to block 0 and to nothing else, and nothing else to it.
    pub fn check(&self, n_source: usize, n_target: usize) -> Result<()> {
        if self.targets.len() > n_source {
            return Err(bad(format!(
                "block map `{self}` names source block {}, but the source has {n_source} \
                 block(s) per stage",
                self.targets.len() - 1
            )));
        }
        if self.targets.first().map(Vec::as_slice) != Some(&[0][..]) {
            return Err(bad(format!(
                "block map `{self}` must map block 0 (the stage's first, downsampling block) to \
                 block 0 only"
            )));
        }
        let mut from: Vec<Option<usize>> = vec![None; n_target];
        for (s, ts) in self.targets.iter().enumerate() {
            for &t in ts {
                let slot = from.get_mut(t).ok_or_else(|| {
                    bad(format!(
                        "block map `{self}` sends block {s} to block {t}, but the target has \
                         {n_target} block(s) per stage"
                    ))
                })?;
                if let Some(other) = slot {
                    return Err(bad(format!(
                        "block map `{self}` sends both block {other} and block {s} to target \
                         block {t}"
                    )));
                }
                *slot = Some(s);
            }
        }
        if let Some(t) = from.iter().position(Option::is_none) {
            return Err(bad(format!(
                "block map `{self}` leaves target block {t} uncovered (every target block needs \
                 a source block)"
            )));
        }
        Ok(())
    }

    /// The map back: each source block from the first of its copies; blocks that were dropped
    /// cannot come back, so the inverse of a squeeze does not cover the original depth.
    pub fn inverse(&self) -> BlockMap {
        let mut targets = Vec::new();
        for (s, ts) in self.targets.iter().enumerate() {
            if let Some(&t) = ts.iter().min() {
                if t >= targets.len() {
                    targets.resize(t + 1, Vec::new());
                }
                targets[t].push(s);
            }
        }
        BlockMap { targets }
    }
}

impl fmt::Display for BlockMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(s, t)| {
                let t: Vec<String> = t.iter().map(usize::to_string).collect();
                format!("{s}:{}", t.join(","))
            })
            .collect();
        f.write_str(&entries.join(";"))
    }
}

/// How a family's blocks are named and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth {
    /// The prefix of a block's variables (`blocks.` or `fc_layers.`).
    prefix: &'static str,
    /// Stages and blocks per stage.
    pub stages: usize,
    pub blocks: usize,
}

impl Depth {
    /// The block layout of `model`: CIFAR ResNets (three stages of residual blocks) and LeNet (one
    /// stage of hidden layers). Other families have no depth morphism.
    pub fn of(model: &str) -> Result<Depth> {
        if let Some((n, _)) = resnet::parse_cifar(model) {
            return Ok(Depth {
                prefix: "blocks.",
                stages: 3,
                blocks: n as usize,
            });
        }
        if let Some(widths) = lenet::parse(model) {
            return Ok(Depth {
                prefix: "fc_layers.",
                stages: 1,
                blocks: widths.len(),
            });
        }
        Err(ModelError::Incompatible {
            name: model.to_owned(),
            what: "a depth morphism (only CIFAR ResNets and LeNets have one: blocks or hidden \
                   layers)"
                .into(),
        })
    }

    /// Whether `other` names and stages its blocks the same way (a family with another depth).
    pub fn same_family(&self, other: &Depth) -> bool {
        self.prefix == other.prefix && self.stages == other.stages
    }

    /// `(stage, block)` of a variable inside a block, and the rest of its name.
    fn locate<'a>(&self, name: &'a str) -> Option<(usize, usize, &'a str)> {
        let rest = name.strip_prefix(self.prefix)?;
        let (index, rest) = rest.split_once('.')?;
        let index: usize = index.parse().ok()?;
        Some((index / self.blocks, index % self.blocks, rest))
    }

    fn name(&self, stage: usize, block: usize, rest: &str) -> String {
        format!("{}{}.{rest}", self.prefix, stage * self.blocks + block)
    }
}

/// Renames `named` tensors of a `source`-layout network into the `target` layout by `map`:
/// a block's tensors are copied to each of its target blocks (and dropped if it has none);
/// everything outside the blocks keeps its name. The tensors are shared, not copied.
pub fn morph(
    named: &[(String, Tensor)],
    source: &Depth,
    target: &Depth,
    map: &BlockMap,
) -> Result<Vec<(String, Tensor)>> {
    if !source.same_family(target) {
        return Err(bad("source and target are not of the same family"));
    }
    map.check(source.blocks, target.blocks)?;
    let mut out = Vec::new();
    for (name, t) in named {
        match source.locate(name) {
            None => out.push((name.clone(), t.shallow_clone())),
            Some((stage, block, rest)) => {
                for &b in map.targets.get(block).map_or(&[][..], Vec::as_slice) {
                    out.push((target.name(stage, b, rest), t.shallow_clone()));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Checks that `named` (a morphed state) has every variable of `target` with its shape: the
/// source's stages must have the target's shapes (the same widths, block for block).
pub fn check_fits(named: &[(String, Tensor)], target: &Model) -> Result<()> {
    let given: BTreeMap<&str, &Tensor> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    for (name, var) in target.state() {
        match given.get(name.as_str()) {
            None => {
                return Err(bad(format!(
                    "nothing maps onto {name} of {}",
                    target.name()
                )));
            }
            Some(t) if t.size() != var.size() => {
                return Err(bad(format!(
                    "stages of different shapes: {name} would get shape {:?}, but {} has {:?} \
                     (source and target must have the same widths)",
                    t.size(),
                    target.name(),
                    var.size()
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
