//! The laws of stability metrics, and stability experiments on a small lottery of generated data.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use lth_lottery::{Lottery, LotteryHparams};
use lth_models::Model;
use lth_prune::{Mask, magnitude_layerwise};
use lth_stability::{
    BnStats, Split, Subnetwork, angle, barrier, interpolate, interpolation, interpolation_curve,
    l2_distance, stability, summarize,
};
use lth_store::{RunDir, Store};
use lth_train::testutil::{mnist_like, small_lenet};
use lth_train::{Data, Steps};
use proptest::prelude::*;
use tch::{Device, Tensor};

fn net(seed: u64) -> Vec<(String, Tensor)> {
    Model::new("lenet_20_10", [1, 28, 28], 10, None, seed, Device::Cpu)
        .unwrap()
        .state()
}

fn half_mask(w: &[(String, Tensor)]) -> Mask {
    let kernels: Vec<(String, Tensor)> = w
        .iter()
        .filter(|(n, _)| n.ends_with("weight"))
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    magnitude_layerwise(&kernels, &Mask::ones(&kernels), |_, _| 0.5).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// d(W, W) = 0 and the angle of W with itself is 0; d is symmetric and positive otherwise.
    #[test]
    fn distances_of_a_network_to_itself_vanish(a in 0u64..1000, b in 1000u64..2000) {
        let (wa, wb) = (net(a), net(b));
        let m = half_mask(&wa);
        prop_assert_eq!(l2_distance(&wa, &wa, &m).unwrap(), 0.0);
        prop_assert!(angle(&wa, &wa, &m).unwrap().abs() < 1e-5);
        let d = l2_distance(&wa, &wb, &m).unwrap();
        prop_assert!(d > 0.0);
        prop_assert_eq!(d, l2_distance(&wb, &wa, &m).unwrap());
        // Interpolation at α = 1 and α = 0 gives the end points exactly.
        let at1 = interpolate(&wa, &wb, 1.0).unwrap();
        let at0 = interpolate(&wa, &wb, 0.0).unwrap();
        prop_assert_eq!(l2_distance(&at1, &wa, &m).unwrap(), 0.0);
        prop_assert_eq!(l2_distance(&at0, &wb, &m).unwrap(), 0.0);
    }
}

#[test]
fn barrier_is_the_bump_above_the_mean_of_the_ends() {
    assert_eq!(barrier(&[0.1, 0.1, 0.1]), 0.0);
    assert!((barrier(&[0.1, 0.5, 0.3]) - 0.3).abs() < 1e-12);
    assert!((barrier(&[0.2, 0.1, 0.2]) - 0.0).abs() < 1e-12);
}

fn data(root: &Path) -> Data {
    mnist_like(root, &hparams().train.dataset).unwrap()
}

/// LeNet-300-100's lottery recipe on [`small_lenet`]'s data, 2 epochs evaluated once per epoch,
/// rewinding to step 4.
fn hparams() -> LotteryHparams {
    let mut hp = LotteryHparams::recipe("lenet_300_100").unwrap();
    hp.train = small_lenet().unwrap();
    hp.train.training.steps = Steps::ep(2);
    hp.train.training.eval_every = Steps::ep(1);
    hp.rewind = Steps::it(4);
    hp
}

#[test]
fn the_barrier_of_a_network_with_itself_is_zero_and_the_ends_are_the_endpoint_errors() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut vessel = Model::new("lenet_300_100", [1, 28, 28], 10, None, 0, Device::Cpu).unwrap();
    let (a, b) = (
        Model::new("lenet_300_100", [1, 28, 28], 10, None, 1, Device::Cpu).unwrap(),
        Model::new("lenet_300_100", [1, 28, 28], 10, None, 2, Device::Cpu).unwrap(),
    );
    let same = interpolation_curve(
        &mut vessel,
        &a.state(),
        &a.state(),
        5,
        &data.eval.test,
        BnStats::Recompute,
        &data.train,
    )
    .unwrap();
    let errors: Vec<f64> = same.iter().map(|p| p.1).collect();
    assert_eq!(barrier(&errors), 0.0, "{errors:?}");
    let curve = interpolation_curve(
        &mut vessel,
        &a.state(),
        &b.state(),
        4,
        &data.eval.test,
        BnStats::Interpolate,
        &data.train,
    )
    .unwrap();
    let ends = |m: &Model| 1.0 - lth_train::evaluate(m, &data.eval.test).unwrap().accuracy;
    assert_eq!((curve[0].0, curve[0].1), (0.0, ends(&b)));
    assert_eq!((curve[3].0, curve[3].1), (1.0, ends(&a)));
}

#[test]
fn copies_trained_with_the_same_seeds_are_at_distance_zero() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let lottery = Lottery::new(&Store::new(root.path().join("runs")), hparams(), 1, &data).unwrap();
    lottery.run_level(0, &mut ()).unwrap();
    lottery.run_level(1, &mut ()).unwrap();
    let mask = lottery.mask(1).unwrap();
    let (a, b) = (
        RunDir::new(root.path().join("a")),
        RunDir::new(root.path().join("b")),
    );
    for d in [&a, &b] {
        lottery
            .train_rewind_copy(d, Some(&mask), 42, &mut ())
            .unwrap();
    }
    let (wa, wb) = (
        lottery.final_weights(&a).unwrap(),
        lottery.final_weights(&b).unwrap(),
    );
    assert_eq!(l2_distance(&wa, &wb, &mask).unwrap(), 0.0);
    let c = RunDir::new(root.path().join("c"));
    lottery
        .train_rewind_copy(&c, Some(&mask), 43, &mut ())
        .unwrap();
    assert!(l2_distance(&wa, &lottery.final_weights(&c).unwrap(), &mask).unwrap() > 0.0);
}

#[test]
fn stability_measures_both_analyses_for_imp_and_random_and_reuses_copies() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let lottery = Lottery::new(&Store::new(root.path().join("runs")), hparams(), 1, &data).unwrap();
    for level in 0..=1 {
        lottery.run_level(level, &mut ()).unwrap();
    }
    let rows = stability(&lottery, 1, 2, 1, &mut ()).unwrap();
    assert_eq!(rows.len(), 2 * 4);
    assert!(rows.iter().all(|r| r.l2 > 0.0 && r.angle > 0.0), "{rows:?}");
    let summary = summarize(&rows);
    assert_eq!(summary.len(), 4);
    let imp_data_order = summary
        .iter()
        .find(|s| s.analysis == "data_order" && s.subnetwork == "imp")
        .unwrap();
    assert_eq!(imp_data_order.n, 2);
    // Comp is random's mean distance over IMP's, from the rows themselves.
    let mean_l2 = |analysis: &str, sub: &str| {
        let l2: Vec<f64> = rows
            .iter()
            .filter(|r| r.analysis == analysis && r.subnetwork == sub)
            .map(|r| r.l2)
            .collect();
        l2.iter().sum::<f64>() / l2.len() as f64
    };
    for analysis in ["data_order", "pruning"] {
        let comp = summary
            .iter()
            .find(|s| s.analysis == analysis && s.subnetwork == "imp")
            .unwrap()
            .comp
            .unwrap();
        let expected = mean_l2(analysis, "random") / mean_l2(analysis, "imp");
        assert!(
            (comp - expected).abs() <= 1e-12 * expected,
            "{analysis}: comp {comp}, random/imp {expected}"
        );
    }
    let csv = lottery.dir().child("level_1").join("stability.csv");
    let written = std::fs::read(&csv).unwrap();
    // A second measurement trains nothing new and gives the same numbers.
    let again = stability(&lottery, 1, 2, 1, &mut ()).unwrap();
    assert_eq!(again, rows);
    assert_eq!(std::fs::read(&csv).unwrap(), written);
    // The interpolation of the IMP pair reuses sample 0's copies.
    let curve = interpolation(
        &lottery,
        1,
        Subnetwork::Imp,
        5,
        Split::Test,
        BnStats::Recompute,
        &mut (),
    )
    .unwrap();
    assert_eq!(curve.points.len(), 5);
    // The ends are the two copies of sample 0 themselves (LeNet has no BatchNorm to recompute;
    // α = 1 is the first copy, α = 0 the second): their errors are one minus the test accuracies
    // the data-order row recorded, and the barrier is the worst error over α minus the mean of
    // the ends.
    let pair = rows
        .iter()
        .find(|r| r.analysis == "data_order" && r.subnetwork == "imp" && r.sample == 0)
        .unwrap();
    let (first, last) = (&curve.points[0], &curve.points[4]);
    assert_eq!((first.alpha, last.alpha), (0.0, 1.0));
    // Accuracies are counts over the test split: equal to float rounding of one division.
    assert!(
        (first.error - (1.0 - pair.test_accuracy_b)).abs() < 1e-9,
        "{curve:?} {pair:?}"
    );
    assert!(
        (last.error - (1.0 - pair.test_accuracy_a)).abs() < 1e-9,
        "{curve:?} {pair:?}"
    );
    let worst = curve
        .points
        .iter()
        .map(|p| p.error)
        .fold(f64::MIN, f64::max);
    assert_eq!(curve.barrier, worst - (first.error + last.error) / 2.0);
    assert!(
        lottery
            .dir()
            .child("level_1")
            .join("interpolation_imp_test.csv")
            .is_file()
    );
    // Full-network copies are shared by every level: level 0's dense pair reuses sample 0's.
    let dense = interpolation(
        &lottery,
        0,
        Subnetwork::Dense,
        3,
        Split::Test,
        BnStats::Recompute,
        &mut (),
    )
    .unwrap();
    assert_eq!(dense.points.len(), 3);
}

/// Stability copies trained packed (five per sample in one network) train as unpacked copies do
/// (each repeats its trajectory, `lth_models::rounding::Trajectory`), so the distances between
/// them agree within what the copies moved, and they fill the same units of the store.
#[test]
fn packed_stability_copies_measure_what_unpacked_ones_do() {
    use lth_models::Named;
    use lth_models::rounding::Trajectory;
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let run = |store: &str, pack: usize| {
        let lottery =
            Lottery::new(&Store::new(root.path().join(store)), hparams(), 1, &data).unwrap();
        for level in 0..=1 {
            lottery.run_level(level, &mut ()).unwrap();
        }
        let rows = stability(&lottery, 1, 1, pack, &mut ()).unwrap();
        (lottery, rows)
    };
    let ((la, alone), (lp, packed)) = (run("alone", 1), run("packed", 5));
    assert_eq!(alone.len(), packed.len());
    // Each copy: from the rewind point under its mask, the same trajectory packed and alone.
    let (rewind, _) = la.steps();
    let fin = |l: &Lottery, dir: &RunDir| -> Named { l.final_weights(dir).unwrap().into() };
    let mut moved = 0.0;
    for spec in lth_stability::sample_copies(1, 1, 0) {
        let spec = spec.canonical();
        let start: Named = la.dense_weights_at(rewind).unwrap().into();
        if let Some(m) = spec.mask(&la).unwrap() {
            m.apply(&start).unwrap();
        }
        let names: Vec<String> = start.names().map(str::to_owned).collect();
        let (a, p) = (fin(&la, &spec.dir(&la)), fin(&lp, &spec.dir(&lp)));
        let t = Trajectory::of(&names, &start, &a, &p).unwrap();
        assert!(t.repeated(), "{spec:?}: {t:?}");
        moved += t.apart;
    }
    for (a, p) in alone.iter().zip(&packed) {
        assert_eq!((&a.analysis, &a.subnetwork), (&p.analysis, &p.subnetwork));
        // ‖x_p − y_p‖ differs from ‖x_a − y_a‖ by at most ‖x_p − x_a‖ + ‖y_p − y_a‖ (masked
        // weights move no more than the whole), and rounding of the norms themselves.
        let bound = moved + 4.0 * lth_models::rounding::F32 * a.l2;
        assert!((a.l2 - p.l2).abs() <= bound, "{a:?} {p:?} (bound {bound})");
        assert!(a.angle > 0.0 && p.angle > 0.0, "{a:?} {p:?}");
    }
    let units = |store: &str| -> usize {
        lth_store::RunDir::new(root.path().join(store))
            .files()
            .unwrap()
            .iter()
            .filter(|p| p.ends_with("done.json"))
            .count()
    };
    assert_eq!(units("alone"), units("packed"));
}
