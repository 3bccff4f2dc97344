//! Packed copies compute what their networks compute alone: every family, in training mode
//! (BatchNorm from the batch, running statistics updated per copy) and evaluation mode.
#![allow(clippy::unwrap_used)]

use lth_models::{Model, PackedModel};
use tch::{Device, Kind, Tensor};

/// Largest |a − b| over the largest |b|.
fn relative(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a - b).abs().max().double_value(&[]);
    diff / b.abs().max().double_value(&[]).max(1e-12)
}

#[test]
fn every_family_packs_to_the_same_function() {
    let seeds = [3u64, 11, 7];
    for (name, input) in [
        ("lenet_300_100", [1, 28, 28]),
        ("conv_2", [3, 32, 32]),
        ("cifar_vgg_11", [3, 32, 32]),
        ("cifar_resnet_8", [3, 32, 32]),
        ("cifar_wrn_10_1", [3, 32, 32]),
        ("imagenet_resnet_18", [3, 64, 64]),
    ] {
        let packed = PackedModel::new(name, input, 10, None, &seeds, Device::Cpu).unwrap();
        let singles: Vec<Model> = seeds
            .iter()
            .map(|&s| Model::new(name, input, 10, None, s, Device::Cpu).unwrap())
            .collect();
        // Copy i's variables are exactly its own model's W0, under the same names and shapes.
        for (i, m) in singles.iter().enumerate() {
            let view = packed.copy_state(i as i64);
            for (n, t) in m.state() {
                assert!(view.get(&n).unwrap().equal(&t), "{name}: copy {i} {n}");
            }
        }
        tch::manual_seed(1);
        let [c, h, w] = input;
        let xs = Tensor::randn([3, 4, c, h, w], (Kind::Float, Device::Cpu));
        for train in [true, false, true] {
            let out = packed.forward_t(&xs, train);
            assert_eq!(out.size(), [3, 4, 10]);
            for (i, m) in singles.iter().enumerate() {
                let alone = m.forward_t(&xs.get(i as i64), train);
                let r = relative(&out.get(i as i64), &alone);
                assert!(
                    r < 1e-5,
                    "{name} (train {train}): copy {i} differs by {r:e}"
                );
            }
        }
        // Training-mode passes updated each copy's running statistics as its own model's.
        for (i, m) in singles.iter().enumerate() {
            let view = packed.copy_state(i as i64);
            for (n, t) in m.state().iter().filter(|(n, _)| n.contains("running")) {
                let r = relative(view.get(n).unwrap(), t);
                assert!(r < 1e-5, "{name}: copy {i} {n} differs by {r:e}");
            }
        }
    }
}
