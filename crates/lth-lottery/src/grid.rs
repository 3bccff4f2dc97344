//! A grid of rewind points (`--rewind-grid 0,50it,100it`): one lottery per point k, each rewinding
//! to its own W_k at every level (IMP with late resetting, as the Stabilizing paper runs it), and
//! the per-point table of their results.

use serde::{Deserialize, Serialize};

use lth_train::Steps;

use crate::{LotteryError, LotteryHparams, Result};

/// The iterations of each point of `grid` for a training of `total` iterations of `per_epoch`
/// each, checked before anything trains: the points must increase strictly (no duplicates, in
/// order) and come before the end of training. Errors name `flag`.
pub fn rewind_points(flag: &str, grid: &[Steps], per_epoch: u64, total: u64) -> Result<Vec<u64>> {
    let bad = |m: String| Err(LotteryError::Invalid(format!("{flag}: {m}")));
    if grid.is_empty() {
        return bad("give at least one rewind point (0,50it,100it)".into());
    }
    let mut points: Vec<u64> = Vec::with_capacity(grid.len());
    for (i, k) in grid.iter().enumerate() {
        let it = k.iterations(per_epoch);
        if it >= total {
            return bad(format!(
                "{k} ({it} iterations) is not before the end of training ({total} iterations)"
            ));
        }
        if let Some(&prev) = points.last() {
            if it == prev {
                return bad(format!(
                    "{k} and {} are the same point ({it} iterations): give each point once",
                    grid[i - 1]
                ));
            }
            if it < prev {
                return bad(format!(
                    "{k} ({it} iterations) comes after {} ({prev} iterations): give the points \
                     in increasing order",
                    grid[i - 1]
                ));
            }
        }
        points.push(it);
    }
    Ok(points)
}

/// What names a grid's table in the run store: the lottery with its rewind point cleared, and the
/// grid.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridHparams {
    pub lottery: LotteryHparams,
    pub grid: Vec<Steps>,
}

impl GridHparams {
    /// The grid of `grid` over the lottery `hp` (whose own rewind point is ignored).
    pub fn new(hp: &LotteryHparams, grid: &[Steps]) -> GridHparams {
        GridHparams {
            lottery: LotteryHparams {
                rewind: Steps::default(),
                ..hp.clone()
            },
            grid: grid.to_vec(),
        }
    }

    /// The lottery of point `k`.
    pub fn at(&self, k: Steps) -> LotteryHparams {
        LotteryHparams {
            rewind: k,
            ..self.lottery.clone()
        }
    }
}

/// One row of `rewind_grid.csv`: a level's IMP subnetwork or a branch of the lottery rewound to one
/// point of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridRow {
    /// The rewind point as given (`50it`, `1ep`).
    pub rewind: String,
    pub rewind_iteration: u64,
    /// k / T.
    pub rewind_fraction: f64,
    pub level: u64,
    /// `imp`, or the branch's kind.
    pub branch: String,
    pub weights_remaining: f64,
    pub final_test_accuracy: f64,
    pub best_test_accuracy: f64,
    /// The lottery's folder.
    pub lottery: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn grid(s: &str) -> Vec<Steps> {
        s.split(',').map(|p| p.parse().unwrap()).collect()
    }

    /// Points resolve to iterations; bad grids are refused naming the flag and the points.
    #[test]
    fn rewind_grids_are_checked_before_training() {
        let f = "--rewind-grid";
        assert_eq!(
            rewind_points(f, &grid("0,50it,1ep,1ep10it"), 100, 300).unwrap(),
            vec![0, 50, 100, 110]
        );
        let err = |g: &str| {
            rewind_points(f, &grid(g), 100, 300)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("0,100it,50it"),
            "--rewind-grid: 50it (50 iterations) comes after 100it (100 iterations): give the \
             points in increasing order"
        );
        assert_eq!(
            err("0,1ep,100it"),
            "--rewind-grid: 100it and 1ep are the same point (100 iterations): give each point once"
        );
        assert_eq!(
            err("0,3ep"),
            "--rewind-grid: 3ep (300 iterations) is not before the end of training (300 \
             iterations)"
        );
        assert!(
            rewind_points(f, &[], 100, 300)
                .unwrap_err()
                .to_string()
                .contains("at least one")
        );
    }

    /// Every point of a grid is the same lottery but for its rewind point, and the grid's name
    /// does not depend on the rewind point of the lottery it was made from.
    #[test]
    fn a_grid_varies_only_the_rewind_point() {
        let hp = LotteryHparams::recipe("lenet_300_100").unwrap();
        let late = LotteryHparams {
            rewind: Steps::it(7),
            ..hp.clone()
        };
        let g = GridHparams::new(&late, &grid("0,50it"));
        assert_eq!(g, GridHparams::new(&hp, &grid("0,50it")));
        assert_eq!(g.at(Steps::default()), hp);
        assert_eq!(g.at(Steps::it(50)).rewind, Steps::it(50));
        assert_eq!(g.at(Steps::it(50)).train, hp.train);
    }
}
