//! Inference FLOPs of sparse networks against the published ratios of the RigL authors and of the
//! RigL reproducibility report: the distributions and the models' kernel positions together.
#![allow(clippy::unwrap_used)]

use lth_models::Model;
use lth_prune::distribution::shapes;
use lth_prune::{Distribution, Spread, flops};
use tch::Device;

/// `f_S / f_D` of `model` under `d`.
fn relative(model: &Model, d: &Distribution) -> f64 {
    let layers = d.sparsities(&shapes(&model.prunable_tensors())).unwrap();
    let (sparse, dense) = flops::inference(&layers, model.positions());
    sparse / dense
}

/// `got` within `tolerance` of a value published to two decimals.
fn assert_near(got: f64, published: f64, tolerance: f64, what: &str) {
    assert!(
        (got - published).abs() <= tolerance + 1e-12,
        "{what}: {got:.4}, published {published:.2}"
    );
}

#[test]
fn resnet_50_inference_flops_match_the_rigl_readme() {
    // rigl's README, "Best sparse models": inference FLOPs relative to dense (8.2e9); ERK over all
    // layers, uniform with the first layer dense. rigl counted Keras's ResNet-50 v1 (stride on a
    // block's first 1×1 convolution), lth's is torchvision's v1.5 (stride on the 3×3), which
    // moves the ratios by less than 0.01; the rounding of the published values adds 0.005.
    let m = Model::new(
        "imagenet_resnet_50",
        [3, 224, 224],
        1000,
        None,
        0,
        Device::Cpu,
    )
    .unwrap();
    let layers = Distribution::new(Spread::Uniform, 0.0)
        .sparsities(&shapes(&m.prunable_tensors()))
        .unwrap();
    let (_, dense) = flops::inference(&layers, m.positions());
    assert_near(dense / 1e10, 0.82, 0.005, "dense FLOPs / 1e10");
    for (s, erk, uniform) in [(0.8, 0.42, 0.23), (0.9, 0.24, 0.13), (0.95, 0.12, 0.08)] {
        let d = Distribution::new(Spread::ErdosRenyiKernel, s);
        assert_near(relative(&m, &d), erk, 0.01, &format!("ERK {s}"));
        let mut d = Distribution::new(Spread::Uniform, s);
        d.dense = vec!["conv1.weight".into()];
        assert_near(relative(&m, &d), uniform, 0.01, &format!("uniform {s}"));
    }
}

#[test]
fn wide_resnet_22_2_inference_flops_match_the_reproducibility_report() {
    // The RigL reproducibility report (ML Reproducibility Challenge 2020), CIFAR-10 WRN-22-2 at
    // 80% sparsity: 0.20× for a uniform (random) distribution, 0.35× for ERK.
    let m = Model::new("cifar_wrn_22_2", [3, 32, 32], 10, None, 0, Device::Cpu).unwrap();
    let uniform = Distribution::new(Spread::Uniform, 0.8);
    assert_near(relative(&m, &uniform), 0.20, 0.005, "uniform 0.8");
    let erk = Distribution::new(Spread::ErdosRenyiKernel, 0.8);
    assert_near(relative(&m, &erk), 0.35, 0.005, "ERK 0.8");
}
