//! What tests of this crate and the crates above it train on: a small LeNet-300-100 run on
//! generated MNIST-format data, so a test needs no download and trains in seconds.

use std::path::Path;

use tch::Device;

use crate::{Data, Result, Steps, TrainError, TrainHparams};

/// LeNet-300-100's recipe (Adam), 3 epochs of batch 50 on the 500 examples left after 100 of the
/// generated 600 are held out (30 steps), evaluated every 5.
pub fn small_lenet() -> Result<TrainHparams> {
    let mut hp = TrainHparams::recipe("lenet_300_100")?;
    hp.dataset.validation = 100;
    hp.dataset.batch_size = 50;
    hp.training.steps = Steps::ep(3);
    hp.training.eval_every = Steps::it(5);
    Ok(hp)
}

/// Writes generated MNIST-format data (600 training and 200 test examples) under `root/mnist`
/// and loads it on the CPU as `hp` splits it.
pub fn mnist_like(root: &Path, hp: &crate::DatasetHparams) -> Result<Data> {
    let dir = root.join("mnist");
    lth_data::testutil::write_mnist_like(&dir, 600, 200, true).map_err(|e| {
        TrainError::Invalid(format!("cannot write test data in {}: {e}", dir.display()))
    })?;
    Data::load(hp, root, Device::Cpu)
}
