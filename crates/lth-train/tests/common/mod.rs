//! What the training tests share: generated MNIST-format data, a small LeNet recipe, and a
//! progress observer that simulates a crash.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;

use lth_train::{Data, Progress, Steps, TrainHparams};
use tch::Device;

/// 600 training and 200 test examples of the generated task, under `root/mnist`.
pub fn data(root: &Path) -> Data {
    lth_data::testutil::write_mnist_like(&root.join("mnist"), 600, 200, true).unwrap();
    Data::load(&hparams().dataset, root, Device::Cpu).unwrap()
}

/// LeNet-300-100's recipe (Adam), 3 epochs of batch 50 on the 500 examples left after 100 are
/// held out (30 steps), evaluated every 5.
pub fn hparams() -> TrainHparams {
    let mut hp = TrainHparams::recipe("lenet_300_100").unwrap();
    hp.dataset.validation = 100;
    hp.dataset.batch_size = 50;
    hp.training.steps = Steps::ep(3);
    hp.training.eval_every = Steps::it(5);
    hp
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
