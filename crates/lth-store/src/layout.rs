//! The names of the folders that a run's units share across crates: a run's folder by its kind
//! ([`RunKind`]), a replicate's folder in its run's folder, and a lottery level's folder in its
//! replicate's folder. Every such name is built and parsed here, so a command and `lth repro` that
//! train the same replicate or level find the same folder (`git grep` finds the `replicate_` and
//! `level_` prefixes and the kinds' names in this module alone, tests aside).
//!
//! ```
//! use lth_store::RunDir;
//! let run = RunDir::new("runs/lottery_3f2a");
//! let level = run.replicate(2).level(5);
//! assert!(level.path().ends_with("replicate_2/level_5"));
//! assert_eq!(lth_store::layout::replicate_of("replicate_2"), Some(2));
//! ```

use serde::Serialize;

use crate::hparams_hash;

/// The kinds of run a store holds. A run's folder is `<kind>_<hash>`, the hash of its
/// hyperparameters' non-default fields ([`crate::Store::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `lth train`: dense training.
    Train,
    /// `lth train --prune-at-init`: a network pruned at initialisation, then trained.
    PruneAtInit,
    /// `lth train --sparse`: sparse training from scratch (static, SET, RigL).
    Sparse,
    /// `lth train --gmp`: gradual magnitude pruning.
    Gmp,
    /// `lth train --supermask`: a learned supermask.
    Supermask,
    /// `lth early-bird`: an Early-Bird ticket search.
    EarlyBird,
    /// `lth lottery`: iterative magnitude pruning with its levels and branches.
    Lottery,
    /// `lth elastic`, `lth transfer`: a ticket moved to another network or dataset.
    Transplant,
    /// `lth lottery --rewind-grid`: the tables of a grid of rewind points.
    RewindGrid,
}

impl RunKind {
    /// The kind's name, the first part of its runs' folder names.
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Train => "train",
            RunKind::PruneAtInit => "pai",
            RunKind::Sparse => "sparse",
            RunKind::Gmp => "gmp",
            RunKind::Supermask => "supermask",
            RunKind::EarlyBird => "earlybird",
            RunKind::Lottery => "lottery",
            RunKind::Transplant => "transplant",
            RunKind::RewindGrid => "rewind_grid",
        }
    }

    /// The folder name of this kind's run with `hparams`: `<kind>_<hash>`.
    pub fn folder<T: Serialize + Default>(self, hparams: &T) -> String {
        format!("{}_{}", self.name(), hparams_hash(hparams))
    }

    /// Whether `name` is the folder name of a run of this kind (`<kind>_` and a hexadecimal hash).
    pub fn holds(self, name: &str) -> bool {
        name.strip_prefix(self.name())
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}

/// What every replicate folder's name starts with.
pub const REPLICATE_PREFIX: &str = "replicate_";
const LEVEL: &str = "level_";

/// The name of replicate `r`'s folder.
pub fn replicate(r: u64) -> String {
    format!("{REPLICATE_PREFIX}{r}")
}

/// The name of level `level`'s folder.
pub fn level(level: u64) -> String {
    format!("{LEVEL}{level}")
}

/// The name of something of level `level` (a run, a file's stem): `<stem>_level_<level>`.
pub fn at_level(stem: &str, level: u64) -> String {
    format!("{stem}_{}", self::level(level))
}

/// The replicate a folder name stands for (`replicate_7` → 7), if it is one.
pub fn replicate_of(name: &str) -> Option<u64> {
    name.strip_prefix(REPLICATE_PREFIX)?.parse().ok()
}

/// How a replicate's folder is written in messages: `replicate_<r>`.
pub const REPLICATE_PATTERN: &str = "replicate_<r>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        for r in [0, 1, 42, u64::MAX] {
            assert_eq!(replicate_of(&replicate(r)), Some(r));
        }
        for name in [
            "replicate_",
            "replicate_x",
            "level_1",
            "replicate_-1",
            "Replicate_1",
        ] {
            assert_eq!(replicate_of(name), None, "{name}");
        }
        assert_eq!(level(3), "level_3");
        assert_eq!(at_level("ticket", 3), "ticket_level_3");
    }

    #[test]
    fn a_kind_holds_its_own_folders_only() {
        #[derive(serde::Serialize, Default)]
        struct Hp {
            lr: f64,
        }
        let name = RunKind::Lottery.folder(&Hp { lr: 0.1 });
        assert!(RunKind::Lottery.holds(&name), "{name}");
        assert!(!RunKind::Transplant.holds(&name));
        assert!(!RunKind::Train.holds("train_"));
        assert!(!RunKind::Train.holds("train_xyz"));
        // `rewind_grid_…` is not a run of a kind called `rewind`.
        assert!(RunKind::RewindGrid.holds("rewind_grid_0a1b"));
        assert!(!RunKind::Lottery.holds("lottery_curve"));
    }
}
