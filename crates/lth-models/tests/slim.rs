//! Real channel pruning: the narrow network computes what the wide one computes once the removed
//! channels' BatchNorm scale and shift are zeroed, in training and evaluation mode, and is an
//! ordinary model of its family.
#![allow(clippy::unwrap_used)]

use lth_models::Model;
use lth_models::slim::{narrow, slimmable, zero_channels};
use tch::{Device, Kind, Tensor};

/// Every `step`-th channel dropped from each slimmable layer, offset by the layer, so every layer
/// loses different channels.
fn keep_some(model: &Model) -> Vec<Vec<i64>> {
    let state = model.state();
    slimmable(model)
        .unwrap()
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let c = state.iter().find(|(n, _)| n == name).unwrap().1.size()[0];
            (0..c).filter(|i| (i + j as i64) % 3 != 0).collect()
        })
        .collect()
}

/// Gives running statistics and BatchNorm shifts values far from their defaults, so a wrong copy
/// shows.
fn perturb(model: &Model) {
    tch::manual_seed(7);
    tch::no_grad(|| {
        for (name, mut t) in model.state() {
            if name.ends_with("running_mean") || name.ends_with(".bias") {
                t.copy_(&(Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.3));
            } else if name.ends_with("running_var") {
                t.copy_(&(Tensor::rand(t.size(), (Kind::Float, Device::Cpu)) + 0.5));
            }
        }
    });
}

fn same_function(name: &str, input: [i64; 3], expected_widths: &str) {
    let wide = Model::new(name, input, 10, None, 3, Device::Cpu).unwrap();
    perturb(&wide);
    let keep = keep_some(&wide);
    let small = narrow(&wide, input, &keep).unwrap();
    assert!(
        small
            .name()
            .starts_with(&format!("{name}:channels={expected_widths}")),
        "{}",
        small.name()
    );
    assert!(small.num_parameters() < wide.num_parameters());
    zero_channels(&wide, &keep).unwrap();
    let x = Tensor::randn(
        [4, input[0], input[1], input[2]],
        (Kind::Float, Device::Cpu),
    );
    // The narrow network sums fewer terms (the zeroed ones are gone): the wide network's
    // rounding bound covers both orders.
    let bound = lth_models::rounding::Reductions::of(&wide, 4, 10).forward_bound();
    for train in [false, true] {
        let a = wide.forward_t(&x, train);
        let b = small.forward_t(&x, train);
        let diff = lth_models::rounding::relative(&b, &a, f64::MIN_POSITIVE);
        assert!(
            diff <= bound,
            "{name} (train = {train}): the narrow network differs by {diff:e} of its outputs' scale (bound {bound:e})"
        );
    }
    // An ordinary member of the family: built again from its name, it takes the narrow state.
    let mut again = Model::new(small.name(), input, 10, None, 1, Device::Cpu).unwrap();
    again.load_state(&small.state()).unwrap();
}

#[test]
fn a_narrow_vgg_computes_what_the_zeroed_wide_one_does() {
    same_function("cifar_vgg_11", [3, 32, 32], "42,86,171,170,342,341,341,342");
}

#[test]
fn a_narrow_cifar_resnet_computes_what_the_zeroed_wide_one_does() {
    // Inner widths only: 16 → 11 or 10, 32 → 21 or 22, 64 → 42 or 43, one per block.
    same_function("cifar_resnet_20", [1, 28, 28], "10,11,11,21,22,21,42,43,43");
}

#[test]
fn narrowing_refuses_what_cannot_be_pruned() {
    let lenet = Model::new("lenet_300_100", [1, 28, 28], 10, None, 1, Device::Cpu).unwrap();
    assert!(
        slimmable(&lenet)
            .unwrap_err()
            .to_string()
            .contains("channel pruning")
    );
    let vgg = Model::new("cifar_vgg_11", [3, 32, 32], 10, None, 1, Device::Cpu).unwrap();
    let mut keep = keep_some(&vgg);
    keep[2] = Vec::new();
    let e = narrow(&vgg, [3, 32, 32], &keep).unwrap_err().to_string();
    assert!(
        e.contains("layers.4.bn.weight") && e.contains("at least one"),
        "{e}"
    );
    let e = Model::new(
        "cifar_vgg_11:channels=3,4",
        [3, 32, 32],
        10,
        None,
        1,
        Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("8 widths (one per convolution), not 2"), "{e}");
    let e = Model::new(
        "cifar_resnet_20:channels=3,x",
        [3, 32, 32],
        10,
        None,
        1,
        Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("every width a positive integer"), "{e}");
}
