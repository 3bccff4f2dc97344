//! Depth morphisms (Elastic LTH): block maps, their errors, and stretching then squeezing back.
#![allow(clippy::unwrap_used)]

use lth_models::Model;
use lth_models::morph::{BlockMap, Depth, check_fits, morph};
use tch::{Device, Kind, Tensor};

fn build(name: &str, seed: u64) -> Model {
    Model::new(name, [3, 32, 32], 10, None, seed, Device::Cpu).unwrap()
}

fn err(spec: &str, n_source: usize, n_target: usize) -> String {
    BlockMap::resolve(spec, n_source, n_target)
        .unwrap_err()
        .to_string()
}

#[test]
fn presets_are_the_papers_orders() {
    let s = |spec, a, b| BlockMap::resolve(spec, a, b).unwrap().to_string();
    // METHODS.md §6: ResNet-20 → ResNet-32.
    assert_eq!(s("interpolation", 3, 5), "0:0;1:1,2;2:3,4");
    assert_eq!(s("appending", 3, 5), "0:0;1:1,3;2:2,4");
    // Uneven stretches give earlier blocks the extra copy.
    assert_eq!(s("interpolation", 3, 6), "0:0;1:1,2,3;2:4,5");
    assert_eq!(s("appending", 3, 6), "0:0;1:1,3,5;2:2,4");
    // Squeezing keeps the first blocks.
    assert_eq!(s("interpolation", 5, 3), "0:0;1:1;2:2");
    assert_eq!(s("0:0;1:1;2:2", 3, 3), "0:0;1:1;2:2");
    // An explicit squeeze may drop any block but the first; written with or without the
    // dropped block.
    assert_eq!(s("0:0;2:1;4:2", 5, 3), "0:0;2:1;4:2");
    assert_eq!(s("0:0;1:;2:1;3:2", 4, 3), "0:0;2:1;3:2");
}

#[test]
fn bad_maps_name_what_is_wrong() {
    assert!(err("0:0;1:1,2;2:3", 3, 5).contains("leaves target block 4 uncovered"));
    assert!(err("0:0,1;1:2;2:3,4", 3, 5).contains("block 0 (the stage's first"));
    assert!(err("0:1;1:0,2;2:3,4", 3, 5).contains("block 0 (the stage's first"));
    assert!(err("0:0;1:1,2;2:2,3,4", 3, 5).contains("both block 1 and block 2 to target block 2"));
    assert!(err("0:0;1:1,2;2:3,5", 3, 5).contains("target has 5 block(s)"));
    assert!(err("0:0;1:1;2:2;3:3", 3, 4).contains("source has 3 block(s)"));
    assert!(err("0:0;1-1", 3, 3).contains("`1-1` is not `source:targets`"));
    assert!(err("0:0;x:1", 3, 3).contains("`x` is not a block index"));
    assert!(err("0:0;1:1;1:2", 3, 3).contains("source block 1 appears twice"));
    assert!(err("stretch", 3, 5).contains("neither a preset"));
    assert!(err("interpolation", 1, 3).contains("cannot stretch 1 block(s)"));
}

#[test]
fn stages_of_different_shapes_are_refused() {
    let (from, to) = (
        Depth::of("cifar_resnet_20").unwrap(),
        Depth::of("cifar_resnet_32_32").unwrap(),
    );
    let map = BlockMap::resolve("interpolation", from.blocks, to.blocks).unwrap();
    let moved = morph(&build("cifar_resnet_20", 1).state(), &from, &to, &map).unwrap();
    let e = check_fits(&moved, &build("cifar_resnet_32_32", 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("stages of different shapes"), "{e}");
    assert!(Depth::of("cifar_vgg_16").is_err());
}

fn random_mask(m: &Model, seed: i64) -> Vec<(String, Tensor)> {
    tch::manual_seed(seed);
    m.prunable_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.rand_like().ge(0.5)))
        .collect()
}

fn same(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((na, ta), (nb, tb))| na == nb && ta.equal(tb))
}

#[test]
fn stretching_then_squeezing_back_returns_the_original_weights_and_mask() {
    let source = build("cifar_resnet_20", 3);
    let mask = random_mask(&source, 7);
    let (from, to) = (
        Depth::of("cifar_resnet_20").unwrap(),
        Depth::of("cifar_resnet_32").unwrap(),
    );
    for preset in ["interpolation", "appending"] {
        let map = BlockMap::resolve(preset, 3, 5).unwrap();
        let stretched = morph(&source.state(), &from, &to, &map).unwrap();
        let mut target = build("cifar_resnet_32", 11);
        check_fits(&stretched, &target).unwrap();
        target.load_state(&stretched).unwrap();
        // Stage 2's block 0 of the target is stage 2's block 0 of the source; the stem and
        // classifier are copied; BatchNorm statistics follow their blocks.
        let var = |m: &Model, n: &str| m.vs().variables()[n].copy();
        for (t, s) in [
            ("blocks.10.conv1.weight", "blocks.6.conv1.weight"),
            ("blocks.10.shortcut.0.weight", "blocks.6.shortcut.0.weight"),
            ("conv.weight", "conv.weight"),
            ("fc.weight", "fc.weight"),
            ("blocks.2.bn1.running_var", "blocks.1.bn1.running_var"),
        ] {
            assert!(var(&target, t).equal(&var(&source, s)), "{preset}: {t}");
        }
        let stretched_mask = morph(&mask, &from, &to, &map).unwrap();
        assert_eq!(stretched_mask.len(), target.prunable().len());
        // Back with the inverse: exactly the original.
        let back = map.inverse();
        back.check(5, 3).unwrap();
        let state = morph(&target.state(), &to, &from, &back).unwrap();
        assert!(same(&state, &source.state()), "{preset}: weights");
        let mask_back = morph(&stretched_mask, &to, &from, &back).unwrap();
        let mut sorted: Vec<(String, Tensor)> =
            mask.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(same(&mask_back, &sorted), "{preset}: mask");
        let kept = |m: &[(String, Tensor)]| {
            m.iter()
                .map(|(_, t)| t.sum(Kind::Int64).int64_value(&[]))
                .sum::<i64>()
        };
        assert!(
            kept(&stretched_mask) > kept(&mask),
            "{preset}: copies keep their weights"
        );
    }
}

#[test]
fn lenet_replicates_square_hidden_layers() {
    let grey = |name: &str| Model::new(name, [1, 28, 28], 10, None, 1, Device::Cpu).unwrap();
    let (from, to) = (
        Depth::of("lenet_300_100_100").unwrap(),
        Depth::of("lenet_300_100_100_100").unwrap(),
    );
    assert_eq!((from.stages, from.blocks, to.blocks), (1, 3, 4));
    let source = grey("lenet_300_100_100");
    let target = grey("lenet_300_100_100_100");
    // The presets would put the 300→100 layer where a 100→100 one belongs.
    let interpolation = BlockMap::resolve("interpolation", 3, 4).unwrap();
    let moved = morph(&source.state(), &from, &to, &interpolation).unwrap();
    assert!(
        check_fits(&moved, &target)
            .unwrap_err()
            .to_string()
            .contains("fc_layers.2.weight would get shape [100, 300]")
    );
    let map = BlockMap::resolve("0:0;1:1;2:2,3", 3, 4).unwrap();
    let moved = morph(&source.state(), &from, &to, &map).unwrap();
    check_fits(&moved, &target).unwrap();
    let by = |n: &str| moved.iter().find(|(m, _)| m == n).unwrap().1.copy();
    assert!(by("fc_layers.3.weight").equal(&by("fc_layers.2.weight")));
}
