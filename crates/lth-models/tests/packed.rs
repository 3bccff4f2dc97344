//! Packed copies compute what their networks compute alone: every family, in training mode
//! (BatchNorm from the batch, running statistics updated per copy) and evaluation mode, to the
//! rounding bound of the network's reductions (`lth_models::rounding`): batched products and
//! grouped convolutions sum in other orders than the plain ones, which orders depending on the
//! processor and the device.
#![allow(clippy::unwrap_used)]

use lth_models::rounding::{Reductions, relative};
use lth_models::{Model, Network, PackedModel};
use tch::{Device, Kind, Tensor};

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
        // Copy i's variables are exactly its own model's W0, under the same names and shapes,
        // and the two answer the API they share alike.
        for (i, m) in singles.iter().enumerate() {
            same_network(&packed, i as i64, m);
        }
        tch::manual_seed(1);
        let [c, h, w] = input;
        let xs = Tensor::randn([3, 4, c, h, w], (Kind::Float, Device::Cpu));
        let bound = Reductions::of(&singles[0], 4, 10).forward_bound();
        for train in [true, false, true] {
            let out = packed.forward_t(&xs, train);
            assert_eq!(out.size(), [3, 4, 10]);
            for (i, m) in singles.iter().enumerate() {
                let alone = m.forward_t(&xs.get(i as i64), train);
                let r = relative(&out.get(i as i64), &alone, f64::MIN_POSITIVE);
                assert!(
                    r <= bound,
                    "{name} (train {train}): copy {i} differs by {r:e} > {bound:e}"
                );
            }
        }
        // Training-mode passes updated each copy's running statistics as its own model's.
        for (i, m) in singles.iter().enumerate() {
            let view = packed.copy_state(i as i64);
            for (n, t) in m.state().iter().filter(|(n, _)| n.contains("running")) {
                // On BatchNorm's scale of 1 (running means start at 0).
                let r = relative(view.get(n).unwrap(), t, 1.0);
                assert!(
                    r <= bound,
                    "{name}: copy {i} {n} differs by {r:e} > {bound:e}"
                );
            }
        }
    }
}

/// Copy `i` of `pack` is `single` as far as [`Network`] tells: name, prunable kernels, BatchNorm,
/// device, and every variable (exactly); the pack has one variable per copy's, with the copies
/// first.
fn same_network(pack: &impl Network, i: i64, single: &impl Network) {
    let name = single.name();
    assert_eq!(single.copies(), 1);
    assert!(i < pack.copies());
    assert_eq!(pack.name(), name);
    assert_eq!(pack.prunable(), single.prunable(), "{name}");
    assert_eq!(pack.has_batchnorm(), single.has_batchnorm(), "{name}");
    assert_eq!(pack.device(), single.device(), "{name}");
    assert_eq!(
        pack.batchnorm_scales().len(),
        single.batchnorm_scales().len(),
        "{name}"
    );
    assert_eq!(pack.parameters().len(), single.parameters().len(), "{name}");
    let (view, own) = (pack.copy_state(i), single.copy_state(0));
    assert_eq!(view.len(), own.len(), "{name}");
    for ((n, t), (p, packed)) in own.iter().zip(pack.state().iter()) {
        assert_eq!(
            n, p,
            "{name}: the pack's variables are the copy's, in order"
        );
        assert_eq!(packed.size()[0], pack.copies(), "{name}: {p}");
        assert!(view.get(n).unwrap().equal(t), "{name}: copy {i} {n}");
    }
}
