//! Parameter counts, names and initialisation of the registry's models.
#![allow(clippy::unwrap_used)]

use lth_models::{Init, Model};
use tch::Device;

fn build(name: &str, seed: u64) -> Model {
    Model::new(name, [1, 28, 28], 10, None, seed, Device::Cpu).unwrap()
}

#[test]
fn lenet_300_100_has_the_papers_counts_and_pytorch_names() {
    let m = build("lenet_300_100", 0);
    assert_eq!(m.num_parameters(), 266_610);
    assert_eq!(m.num_prunable(), 266_200);
    assert_eq!(
        m.prunable(),
        ["fc_layers.0.weight", "fc_layers.1.weight", "fc.weight"]
    );
    assert_eq!(m.output_layer(), "fc.weight");
    let names: Vec<String> = m.state().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "fc.bias",
            "fc.weight",
            "fc_layers.0.bias",
            "fc_layers.0.weight",
            "fc_layers.1.bias",
            "fc_layers.1.weight"
        ]
    );
    let y = m.forward_t(
        &tch::Tensor::zeros([5, 1, 28, 28], tch::kind::FLOAT_CPU),
        false,
    );
    assert_eq!(y.size(), [5, 10]);
}

#[test]
fn initialisation_is_seeded_and_kaiming_scaled() {
    let (a, b, c) = (
        build("lenet_300_100", 1),
        build("lenet_300_100", 1),
        build("lenet_300_100", 2),
    );
    let w = |m: &Model| {
        m.state()
            .into_iter()
            .find(|(n, _)| n == "fc_layers.0.weight")
            .unwrap()
            .1
    };
    assert!(w(&a).equal(&w(&b)));
    assert!(!w(&a).equal(&w(&c)));
    let std = w(&a).std(true).double_value(&[]);
    let want = Init::KaimingNormal.std(&[300, 784]);
    assert!((std / want - 1.0).abs() < 0.01, "std {std} vs {want}");
}

#[test]
fn load_state_checks_names_and_shapes() {
    let mut a = build("lenet_300_100", 1);
    let b = build("lenet_300_100", 2);
    a.copy_from(&b).unwrap();
    assert!(a.state()[1].1.equal(&b.state()[1].1));
    let mut partial = b.state();
    partial.pop();
    let err = a.load_state(&partial).unwrap_err().to_string();
    assert!(err.contains("missing fc_layers.1.weight"), "{err}");
    let small = build("lenet_300_50", 1);
    let err = a.load_state(&small.state()).unwrap_err().to_string();
    assert!(err.contains("fc.weight has shape [10, 50]"), "{err}");
}

#[test]
fn bad_names_are_explained() {
    let err = Model::new("lenet_300_x", [1, 28, 28], 10, None, 0, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("expected lenet_<width>"), "{err}");
    let err = Model::new("resnet_9000", [1, 28, 28], 10, None, 0, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("known models: lenet_"), "{err}");
}
