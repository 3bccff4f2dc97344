//! What the training tests share: generated MNIST-format data, a small LeNet recipe, and a
//! progress observer that simulates a crash.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;

use lth_train::testutil::{mnist_like, small_lenet};
use lth_train::{Data, Progress, TrainHparams};

/// 600 training and 200 test examples of the generated task, under `root/mnist`.
pub fn data(root: &Path) -> Data {
    mnist_like(root, &hparams().dataset).unwrap()
}

/// [`small_lenet`]: LeNet-300-100's recipe, 30 steps evaluated every 5.
pub fn hparams() -> TrainHparams {
    small_lenet().unwrap()
}

/// Panics at step `self.0`, as a killed process stops there.
pub struct Crash(pub u64);

impl Progress for Crash {
    fn step(&mut self, step: u64) {
        assert!(step != self.0, "simulated crash at step {step}");
    }
}

/// Asserts that `b` repeats `a`'s trajectory from `start` over the parameters `names`
/// (`lth_models::rounding::Trajectory`); `what` names the pair in the message.
pub fn assert_same_trajectory(
    what: &str,
    names: &[String],
    start: &lth_models::Named,
    a: &lth_models::Named,
    b: &lth_models::Named,
) {
    let t = lth_models::rounding::Trajectory::of(names, start, a, b).unwrap();
    eprintln!(
        "{what}: {:e} apart, {:e} trained ({:e} of it)",
        t.apart,
        t.trained,
        t.apart / t.trained
    );
    assert!(t.repeated(), "{what}: {t:?}");
}
