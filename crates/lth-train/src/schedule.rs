//! The learning rate as a pure function of the step: linear warmup, then milestone decay.
//!
//! Being a function of the step alone, the schedule continues from any step k exactly as if training
//! had never stopped, which is what rewinding to iteration k and resuming from a checkpoint need.

use crate::{Steps, TrainingHparams};

/// A resolved schedule, in iterations.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub lr: f64,
    pub warmup: u64,
    /// Sorted milestone iterations.
    pub milestones: Vec<u64>,
    pub gamma: f64,
}

impl Schedule {
    /// The schedule of `hp` with `per_epoch` iterations per epoch.
    pub fn new(hp: &TrainingHparams, per_epoch: u64) -> Schedule {
        let mut milestones: Vec<u64> = hp
            .milestones
            .iter()
            .map(|m: &Steps| m.iterations(per_epoch))
            .collect();
        milestones.sort_unstable();
        Schedule {
            lr: hp.lr,
            warmup: hp.warmup.iterations(per_epoch),
            milestones,
            gamma: hp.gamma,
        }
    }

    /// A constant rate.
    pub fn constant(lr: f64) -> Schedule {
        Schedule {
            lr,
            warmup: 0,
            milestones: Vec::new(),
            gamma: 1.0,
        }
    }

    /// The rate of step `t` (counting from 0): `lr · min(1, t / warmup) · gamma^#{m ≤ t}`, as
    /// OpenLTH computes it (so step 0 of a warmup has rate 0).
    pub fn lr_at(&self, t: u64) -> f64 {
        let warm = if self.warmup == 0 {
            1.0
        } else {
            (t as f64 / self.warmup as f64).min(1.0)
        };
        let decays = self.milestones.partition_point(|&m| m <= t);
        self.lr * warm * self.gamma.powi(decays as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_milestones() {
        let s = Schedule {
            lr: 0.1,
            warmup: 10,
            milestones: vec![20, 30],
            gamma: 0.1,
        };
        let check = |t: u64, want: f64| {
            let got = s.lr_at(t);
            assert!((got - want).abs() < 1e-15, "step {t}: {got} vs {want}");
        };
        check(0, 0.0);
        check(5, 0.05);
        check(10, 0.1);
        check(19, 0.1);
        check(20, 0.01);
        check(29, 0.01);
        check(30, 0.001);
    }

    #[test]
    fn a_schedule_resumed_at_k_continues_unchanged() {
        let hp = TrainingHparams {
            lr: 0.1,
            gamma: 0.1,
            warmup: Steps::it(3),
            milestones: vec![Steps::ep(2), Steps::it(7)],
            ..Default::default()
        };
        let full = Schedule::new(&hp, 5);
        assert_eq!(full.milestones, vec![7, 10]);
        // Rewinding to k = 4 restarts at step 4 with the same function: the tail is the same.
        let from_k: Vec<f64> = (4..15).map(|t| Schedule::new(&hp, 5).lr_at(t)).collect();
        let tail: Vec<f64> = (0..15).map(|t| full.lr_at(t)).skip(4).collect();
        assert_eq!(from_k, tail);
    }
}
