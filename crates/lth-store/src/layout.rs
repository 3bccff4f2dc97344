//! The names of the folders that a run's units share across crates: a replicate's folder in its
//! run's folder, and a lottery level's folder in its replicate's folder. Every such name is built
//! and parsed here, so a command and `lth repro` that train the same replicate or level find the
//! same folder (`git grep` finds the `replicate_` and `level_` prefixes in this module alone,
//! tests aside).
//!
//! ```
//! use lth_store::RunDir;
//! let run = RunDir::new("runs/lottery_3f2a");
//! let level = run.replicate(2).level(5);
//! assert!(level.path().ends_with("replicate_2/level_5"));
//! assert_eq!(lth_store::layout::replicate_of("replicate_2"), Some(2));
//! ```

use crate::RunDir;

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

/// The replicate a folder name stands for (`replicate_7` → 7), if it is one.
pub fn replicate_of(name: &str) -> Option<u64> {
    name.strip_prefix(REPLICATE_PREFIX)?.parse().ok()
}

/// How a replicate's folder is written in messages: `replicate_<r>`.
pub const REPLICATE_PATTERN: &str = "replicate_<r>";

impl RunDir {
    /// Replicate `r`'s folder in this run's folder.
    pub fn replicate(&self, r: u64) -> RunDir {
        self.child(replicate(r))
    }

    /// Level `level`'s folder in this replicate's folder.
    pub fn level(&self, level: u64) -> RunDir {
        self.child(self::level(level))
    }
}

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
    }
}
