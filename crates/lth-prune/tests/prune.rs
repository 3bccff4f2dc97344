//! Laws of masks and pruning criteria, on tiny tensors.
#![allow(clippy::unwrap_used)]

use lth_prune::{
    Mask, PruningHparams, Strategy, magnitude_global, magnitude_layerwise, prune_count, random_like,
};
use proptest::prelude::*;
use tch::{Kind, Tensor};

fn named(layers: &[(&str, &[f32], &[i64])]) -> Vec<(String, Tensor)> {
    layers
        .iter()
        .map(|(n, v, s)| ((*n).to_owned(), Tensor::from_slice(v).view(*s)))
        .collect()
}

fn bits(mask: &Mask, name: &str) -> Vec<bool> {
    Vec::<bool>::try_from(&mask.get(name).unwrap().flatten(0, -1)).unwrap()
}

#[test]
fn layerwise_removes_the_smallest_of_the_remaining() {
    let w = named(&[
        ("a", &[0.5, -0.1, 0.3, -0.9, 0.2], &[5]),
        ("b", &[1.0, -2.0, 0.5, 0.1], &[2, 2]),
    ]);
    let m = Mask::ones(&w);
    let m1 = magnitude_layerwise(&w, &m, |n, _| if n == "a" { 0.4 } else { 0.25 }).unwrap();
    // a: ⌈0.4·5⌉ = 2 smallest of |w| (0.1, 0.2); b: ⌈0.25·4⌉ = 1 (0.1).
    assert_eq!(bits(&m1, "a"), [true, false, true, true, false]);
    assert_eq!(bits(&m1, "b"), [true, true, true, false]);
    // The next level ranks only the survivors, whatever their values.
    let m2 = magnitude_layerwise(&w, &m1, |_, _| 0.3).unwrap();
    assert_eq!(bits(&m2, "a"), [true, false, false, true, false]);
    assert_eq!(m2.kept(), 2 + 2);
}

#[test]
fn ties_go_in_order_of_position() {
    let w = named(&[("a", &[0.1, 0.1, 0.1, 0.1], &[4]), ("b", &[0.1, 0.1], &[2])]);
    let m = magnitude_layerwise(&w, &Mask::ones(&w), |_, _| 0.5).unwrap();
    assert_eq!(bits(&m, "a"), [false, false, true, true]);
    let g = magnitude_global(&w, &Mask::ones(&w), &["b".into(), "a".into()], 0.5).unwrap();
    // Global order follows `included`: b's positions come first.
    assert_eq!(bits(&g, "b"), [false, false]);
    assert_eq!(bits(&g, "a"), [false, true, true, true]);
}

#[test]
fn global_uses_one_threshold_and_keeps_excluded_layers() {
    let w = named(&[
        ("a", &[0.1, 0.2, 0.3, 0.4], &[4]),
        ("b", &[0.05, 0.9], &[2]),
        ("out", &[0.01, 0.02], &[2]),
    ]);
    let hp = PruningHparams {
        strategy: Strategy::Global,
        rate: 0.5,
        exclude: vec!["out".into()],
        ..Default::default()
    };
    let m = hp.prune(&w, &Mask::ones(&w), "out").unwrap();
    // ⌈0.5·6⌉ = 3 smallest among a and b: 0.05, 0.1, 0.2.
    assert_eq!(bits(&m, "a"), [false, false, true, true]);
    assert_eq!(bits(&m, "b"), [false, true]);
    assert_eq!(bits(&m, "out"), [true, true]);
}

#[test]
fn layerwise_rates_follow_the_lenet_recipe() {
    let w = named(&[
        ("fc_layers.0.weight", &[1.0; 10], &[2, 5]),
        ("fc.weight", &[1.0; 10], &[10, 1]),
    ]);
    let hp = PruningHparams {
        rate: 0.2,
        output_rate: Some(0.1),
        ..Default::default()
    };
    let mut m = Mask::ones(&w);
    for _ in 0..3 {
        m = hp.prune(&w, &m, "fc.weight").unwrap();
    }
    let c = m.counts();
    // 10 → 8 → 6 (⌈1.6⌉ = 2) → 4 (⌈1.2⌉ = 2) at 20%; 10 → 9 → 8 → 7 at 10%.
    assert_eq!((c[0].name.as_str(), c[0].kept), ("fc.weight", 7));
    assert_eq!((c[1].name.as_str(), c[1].kept), ("fc_layers.0.weight", 4));
}

#[test]
fn prune_count_is_the_ceiling_without_float_noise() {
    assert_eq!(prune_count(235_200, 0.2), 47_040);
    assert_eq!(prune_count(1000, 0.1), 100);
    assert_eq!(prune_count(3, 0.5), 2);
    assert_eq!(prune_count(0, 0.5), 0);
    assert_eq!(prune_count(7, 1.0), 7);
}

#[test]
fn masks_save_load_complement_and_apply() {
    let w = named(&[("a", &[0.5, -0.1, 0.3], &[3])]);
    let m = magnitude_layerwise(&w, &Mask::ones(&w), |_, _| 0.3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mask.safetensors");
    m.save(&path).unwrap();
    let back = Mask::load(&path).unwrap();
    assert_eq!(bits(&back, "a"), bits(&m, "a"));
    assert_eq!(bits(&m.complement(), "a"), [false, true, false]);
    m.apply(&w).unwrap();
    assert_eq!(Vec::<f32>::try_from(&w[0].1).unwrap(), [0.5, 0.0, 0.3]);
    std::fs::write(&path, b"not safetensors").unwrap();
    let err = Mask::load(&path).unwrap_err().to_string();
    assert!(err.contains("mask.safetensors"), "{err}");
}

#[test]
fn random_pruning_matches_per_layer_counts() {
    let w = named(&[("a", &[1.0; 100], &[10, 10]), ("b", &[1.0; 30], &[30])]);
    let m = magnitude_layerwise(
        &w,
        &Mask::ones(&w),
        |n, _| if n == "a" { 0.37 } else { 0.5 },
    )
    .unwrap();
    let r = random_like(&m, 7);
    assert_eq!(r.counts(), m.counts());
    assert_ne!(bits(&r, "a"), bits(&m, "a"));
    assert_eq!(bits(&random_like(&m, 7), "a"), bits(&r, "a"));
    assert_ne!(bits(&random_like(&m, 8), "a"), bits(&r, "a"));
}

proptest! {
    /// Pruning p of r remaining weights leaves exactly r − ⌈p·r⌉, layerwise and globally.
    #[test]
    fn pruning_p_of_the_remaining_is_exact(
        n in 1usize..400,
        p in 0.0f64..1.0,
        q in 0.0f64..0.99,
        seed in 0u64..1000,
    ) {
        let values: Vec<f32> = lth_rng::Stream::new(seed, "t", 0).normal(n, 1.0);
        let w = vec![("x".to_owned(), Tensor::from_slice(&values))];
        let first = magnitude_layerwise(&w, &Mask::ones(&w), |_, _| q).unwrap();
        let r = first.kept();
        let second = magnitude_layerwise(&w, &first, |_, _| p).unwrap();
        prop_assert_eq!(second.kept(), r - prune_count(r, p));
        let global = magnitude_global(&w, &first, &["x".into()], p).unwrap();
        prop_assert_eq!(global.kept(), r - prune_count(r, p));
        // Nothing pruned before comes back.
        let revived = second.get("x").unwrap().logical_and(&first.get("x").unwrap().logical_not());
        prop_assert_eq!(revived.sum(Kind::Int64).int64_value(&[]), 0);
        // The survivors are the largest: every kept magnitude ≥ every newly pruned one.
        let a = w[0].1.abs();
        let kept = a.masked_select(second.get("x").unwrap());
        let dropped = a.masked_select(&first.get("x").unwrap().logical_and(&second.get("x").unwrap().logical_not()));
        if kept.numel() > 0 && dropped.numel() > 0 {
            prop_assert!(kept.min().double_value(&[]) >= dropped.max().double_value(&[]));
        }
    }
}
