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

fn count(name: &str, input: [i64; 3], classes: i64) -> (i64, i64, Model) {
    let m = Model::new(name, input, classes, None, 0, Device::Cpu).unwrap();
    (m.num_parameters(), m.num_prunable(), m)
}

/// Parameter counts (total / prunable) of docs/PAPERS.md section 9 and the LTH paper.
#[test]
fn the_zoo_has_the_papers_parameter_counts() {
    let cifar = [3, 32, 32];
    for (name, total, prunable) in [
        ("cifar_resnet_20", Some(272_474), Some(270_896)),
        ("cifar_resnet_56", Some(855_770), Some(851_504)),
        ("cifar_resnet_110", Some(1_730_714), Some(1_722_416)),
        ("cifar_vgg_11", Some(9_231_114), None),
        ("cifar_vgg_16", Some(14_728_266), None),
        ("cifar_vgg_19", Some(20_040_522), Some(20_024_000)),
        // The LTH paper's weight counts (4.3M, 2.4M; its 1.7M for Conv-6 matches no reading of
        // the architecture: see conv.rs).
        ("conv_2", None, Some(4_300_992)),
        ("conv_4", None, Some(2_425_024)),
        ("conv_6", None, Some(2_261_184)),
    ] {
        let (t, p, _) = count(name, cifar, 10);
        if let Some(total) = total {
            assert_eq!(t, total, "{name} parameters");
        }
        if let Some(prunable) = prunable {
            assert_eq!(p, prunable, "{name} prunable");
        }
    }
    let (t, _, _) = count("imagenet_resnet_18", [3, 224, 224], 1000);
    assert_eq!(t, 11_689_512);
    let (t, p, _) = count("imagenet_resnet_50", [3, 224, 224], 1000);
    assert_eq!((t, p), (25_557_032, 25_502_912));
}

#[test]
fn zoo_names_follow_pytorch_and_forward_shapes_are_right() {
    let x = |c, s| tch::Tensor::zeros([2, c, s, s], tch::kind::FLOAT_CPU);
    let (_, _, r20) = count("cifar_resnet_20", [3, 32, 32], 10);
    let names: Vec<String> = r20.state().into_iter().map(|(n, _)| n).collect();
    for n in [
        "conv.weight",
        "bn.running_var",
        "blocks.3.shortcut.0.weight",
        "blocks.3.shortcut.1.weight",
        "blocks.8.conv2.weight",
        "fc.bias",
    ] {
        assert!(names.iter().any(|m| m == n), "{n} missing from {names:?}");
    }
    assert!(
        !names.iter().any(|m| m == "blocks.1.shortcut.0.weight"),
        "identity shortcuts have no parameters"
    );
    assert_eq!(r20.forward_t(&x(3, 32), true).size(), [2, 10]);
    assert!(r20.has_batchnorm());
    let (_, _, vgg) = count("cifar_vgg_11", [3, 32, 32], 100);
    assert_eq!(
        vgg.prunable()[..2],
        ["layers.0.conv.weight", "layers.2.conv.weight"]
    );
    assert_eq!(vgg.forward_t(&x(3, 32), false).size(), [2, 100]);
    let (_, _, r18) = count("imagenet_resnet_18", [3, 224, 224], 1000);
    let names: Vec<String> = r18.state().into_iter().map(|(n, _)| n).collect();
    for n in [
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer4.1.bn2.bias",
    ] {
        assert!(names.iter().any(|m| m == n), "{n} missing");
    }
    assert_eq!(r18.forward_t(&x(3, 64), false).size(), [2, 1000]);
    let (_, _, c6) = count("conv_6", [3, 32, 32], 10);
    assert_eq!(c6.init(), Init::GlorotNormal);
    assert_eq!(c6.forward_t(&x(3, 32), false).size(), [2, 10]);
    // BatchNorm starts as OpenLTH's: γ ~ U(0, 1), β = 0.
    let gamma = r20
        .state()
        .into_iter()
        .find(|(n, _)| n == "bn.weight")
        .unwrap()
        .1;
    assert!(gamma.min().double_value(&[]) >= 0.0 && gamma.max().double_value(&[]) < 1.0);
    let bad = Model::new("cifar_resnet_21", [3, 32, 32], 10, None, 0, Device::Cpu).unwrap_err();
    assert!(bad.to_string().contains("D = 6n + 2"), "{bad}");
}

#[test]
fn recomputed_batchnorm_statistics_are_the_average_over_batches() {
    let (_, _, mut m) = count("cifar_resnet_20", [3, 32, 32], 10);
    let split = lth_data::Split {
        images: tch::Tensor::randint(256, [1000, 3, 32, 32], (tch::Kind::Uint8, Device::Cpu)),
        labels: tch::Tensor::zeros([1000], (tch::Kind::Int64, Device::Cpu)),
    };
    let info = lth_data::info("mnist").unwrap();
    let mut info3 = info.clone();
    info3.shape = [3, 32, 32];
    info3.mean = &[0.5, 0.5, 0.5];
    info3.std = &[0.25, 0.25, 0.25];
    let info3: &'static lth_data::DatasetInfo = Box::leak(Box::new(info3));
    let data = lth_data::DeviceSplit::new(&split, info3, Device::Cpu).unwrap();
    let source = lth_data::Source::Device(data.clone());
    m.recompute_batchnorm(&source).unwrap();
    // The stem's BatchNorm sees the stem convolution's output; its running mean must be the mean
    // over the 1,000 examples (two batches of 500, averaged with equal weights).
    let conv = m
        .state()
        .into_iter()
        .find(|(n, _)| n == "conv.weight")
        .unwrap()
        .1;
    let x = data.sequential(1000).next().unwrap().x;
    let want = x
        .conv2d(&conv, None::<tch::Tensor>, [1, 1], [1, 1], [1, 1], 1)
        .mean_dim(&[0i64, 2, 3][..], false, tch::Kind::Float);
    let got = m
        .state()
        .into_iter()
        .find(|(n, _)| n == "bn.running_mean")
        .unwrap()
        .1;
    // Two orders of the same sums: the convolution's 27 terms, then 500 × 32 × 32 positions per
    // batch and the two batches' average, on the scale of the convolution's outputs (the mean
    // cancels them).
    let bound = lth_models::rounding::Reductions::bound(
        &[27, 500 * 32 * 32, 2],
        lth_models::rounding::F32,
        lth_models::rounding::F32,
    );
    let scale = x
        .conv2d(&conv, None::<tch::Tensor>, [1, 1], [1, 1], [1, 1], 1)
        .abs()
        .max()
        .double_value(&[]);
    let gap = (&got - &want).abs().max().double_value(&[]);
    assert!(
        gap <= bound * scale,
        "running mean off by {gap} (bound {bound} of {scale})"
    );
}

#[test]
fn channels_last_changes_the_layout_not_the_numbers() {
    let (_, _, a) = count("cifar_resnet_20", [3, 32, 32], 10);
    let (_, _, mut b) = count("cifar_resnet_20", [3, 32, 32], 10);
    b.use_channels_last();
    let w = b
        .state()
        .into_iter()
        .find(|(n, _)| n == "conv.weight")
        .unwrap()
        .1;
    assert_eq!(w.stride()[1], 1, "channels are innermost in memory");
    let x = tch::Tensor::randn([4, 3, 32, 32], tch::kind::FLOAT_CPU);
    // Channels-last convolutions sum in another order: the forward pass's rounding bound.
    let bound = lth_models::rounding::Reductions::of(&a, 4, 10).forward_bound();
    let gap = lth_models::rounding::relative(
        &b.forward_t(&x, false),
        &a.forward_t(&x, false),
        f64::MIN_POSITIVE,
    );
    assert!(gap <= bound, "{gap} > {bound}");
    // Checkpoints are written contiguous, with the same values.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    lth_models::save_tensors(&p, &b.state()).unwrap();
    let back = lth_models::load_tensors(&p).unwrap();
    assert!(
        back.iter()
            .zip(a.state())
            .all(|((n1, t1), (n2, t2))| n1 == &n2 && t1.equal(&t2))
    );
}

/// WRN-22-2 (the RigL paper's CIFAR-10 network), counted by hand: the stem 432; group 1 (16→32)
/// 14,432 + 2 × 18,560; group 2 (32→64) 57,536 + 2 × 73,984; group 3 (64→128) 229,760 + 2 × 295,424;
/// the final BatchNorm 256 and the classifier 1,290: 1,079,642, of which 2,720 are BatchNorm and 10
/// the classifier's bias.
#[test]
fn wide_resnet_22_2_has_its_counts_pytorch_names_and_shapes() {
    let (t, p, wrn) = count("cifar_wrn_22_2", [3, 32, 32], 10);
    assert_eq!((t, p), (1_079_642, 1_076_912));
    let names: Vec<String> = wrn.state().into_iter().map(|(n, _)| n).collect();
    for n in [
        "conv1.weight",
        "block1.layer.0.bn1.running_mean",
        "block1.layer.0.convShortcut.weight",
        "block2.layer.0.convShortcut.weight",
        "block3.layer.2.conv2.weight",
        "bn1.weight",
        "fc.bias",
    ] {
        assert!(names.iter().any(|m| m == n), "{n} missing from {names:?}");
    }
    assert!(
        !names
            .iter()
            .any(|m| m == "block1.layer.1.convShortcut.weight"),
        "blocks that keep their width have identity shortcuts"
    );
    let x = tch::Tensor::zeros([2, 3, 32, 32], tch::kind::FLOAT_CPU);
    assert_eq!(wrn.forward_t(&x, true).size(), [2, 10]);
    let bad = Model::new("cifar_wrn_20_2", [3, 32, 32], 10, None, 0, Device::Cpu).unwrap_err();
    assert!(bad.to_string().contains("D = 6n + 4"), "{bad}");
}

/// Multiply-adds of one forward pass through the prunable kernels: Σ weights × positions.
fn macs(m: &Model) -> i64 {
    m.prunable_tensors()
        .iter()
        .zip(m.positions())
        .map(|((_, t), p)| t.numel() as i64 * p)
        .sum()
}

#[test]
fn kernel_positions_give_the_published_multiply_add_counts() {
    // torchvision's model documentation lists 1.81, 3.66 and 4.09 GFLOPS (multiply-adds of one
    // 224×224 image) for ResNet-18, -34 and -50; the RigL paper's dense ResNet-50 costs 8.2e9 FLOPs
    // (a multiply and an add each).
    for (name, published) in [
        ("imagenet_resnet_18", 1.81e9),
        ("imagenet_resnet_34", 3.66e9),
        ("imagenet_resnet_50", 4.09e9),
    ] {
        let m = Model::new(name, [3, 224, 224], 1000, None, 0, Device::Cpu).unwrap();
        let got = macs(&m) as f64;
        assert!(
            (got - published).abs() < 0.005e9,
            "{name}: {got:.4e} multiply-adds, published {published:.2e}"
        );
    }
    // Small networks, counted by hand: LeNet's three matrices are applied once per image.
    assert_eq!(
        macs(&build("lenet_300_100", 0)),
        784 * 300 + 300 * 100 + 100 * 10
    );
    // Conv-2: two 3×3 convolutions on 32×32 maps, then 16·16·64 → 256 → 256 → 10.
    let m = Model::new("conv_2", [3, 32, 32], 10, None, 0, Device::Cpu).unwrap();
    assert_eq!(m.positions(), [1024, 1024, 1, 1, 1]);
    assert_eq!(
        macs(&m),
        (3 * 64 * 9 + 64 * 64 * 9) * 1024 + 16 * 16 * 64 * 256 + 256 * 256 + 256 * 10
    );
    // ResNet-20: 16 filters at 32×32, 32 at 16×16, 64 at 8×8; the downsampling convolutions and
    // their 1×1 shortcuts already work at the smaller side.
    let m = Model::new("cifar_resnet_20", [3, 32, 32], 10, None, 0, Device::Cpu).unwrap();
    let by_name: std::collections::HashMap<&str, i64> = m
        .prunable()
        .iter()
        .map(String::as_str)
        .zip(m.positions().iter().copied())
        .collect();
    assert_eq!(by_name["conv.weight"], 1024);
    assert_eq!(by_name["blocks.2.conv2.weight"], 1024);
    assert_eq!(by_name["blocks.3.conv1.weight"], 256);
    assert_eq!(by_name["blocks.3.shortcut.0.weight"], 256);
    assert_eq!(by_name["blocks.6.conv1.weight"], 64);
    assert_eq!(by_name["fc.weight"], 1);
    // He et al.'s ResNet-20 (identity shortcuts) is quoted at 40.55M multiply-adds; OpenLTH's 1×1
    // shortcut convolutions add 16·32 weights at 16×16 and 32·64 at 8×8.
    let shortcuts = 16 * 32 * 256 + 32 * 64 * 64;
    assert!(
        ((macs(&m) - shortcuts) as f64 - 40.55e6).abs() < 0.01e6,
        "{}",
        macs(&m)
    );
}
