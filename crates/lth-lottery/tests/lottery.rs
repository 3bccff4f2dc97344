//! A small lottery on generated MNIST-format data: levels, rewinding, retraining variants, branches.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use lth_lottery::{BranchHparams, BranchKind, Lottery, LotteryHparams, Retrain};
use lth_models::rounding::Trajectory;
use lth_models::{Named, load_tensors};
use lth_prune::{Mask, prune_count};
use lth_store::{CsvLog, Store};
use lth_train::testutil::{mnist_like, small_lenet};
use lth_train::{Data, MetricsRow, Steps, evaluate};
use tch::Kind;

/// LeNet-300-100's lottery recipe on [`small_lenet`]'s training (30 steps, evaluated every 5).
fn hparams() -> LotteryHparams {
    let mut hp = LotteryHparams::recipe("lenet_300_100").unwrap();
    hp.train = small_lenet().unwrap();
    hp
}

fn data(root: &Path) -> Data {
    mnist_like(root, &hparams().train.dataset).unwrap()
}

fn rows(dir: &lth_store::RunDir) -> Vec<MetricsRow> {
    CsvLog::<MetricsRow>::new(dir.join("metrics.csv"))
        .load()
        .unwrap()
}

fn zeros_where_pruned(weights: &[(String, tch::Tensor)], mask: &Mask) -> bool {
    mask.iter().all(|(name, m)| {
        let (_, w) = weights.iter().find(|(n, _)| n == name).unwrap();
        w.masked_select(&m.logical_not())
            .abs()
            .sum(Kind::Float)
            .double_value(&[])
            == 0.0
    })
}

#[test]
fn imp_levels_prune_the_recipe_fractions_and_rewind_to_k() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let store = Store::new(root.path().join("runs"));
    let mut hp = hparams();
    hp.rewind = Steps::it(10);
    let lottery = Lottery::new(&store, hp, 1, &data).unwrap();
    assert_eq!(lottery.steps(), (10, 30));
    for level in 0..=2 {
        lottery.run_level(level, &mut ()).unwrap();
    }
    // Weights remaining follow the recipe: hidden layers lose ⌈20%⌉, the output layer ⌈10%⌉.
    let m2 = lottery.mask(2).unwrap();
    for c in m2.counts() {
        let rate = if c.name == "fc.weight" { 0.1 } else { 0.2 };
        let after1 = c.total - prune_count(c.total, rate);
        assert_eq!(c.kept, after1 - prune_count(after1, rate), "{}", c.name);
    }
    // Level 1 starts from W_k (the rewind point of level 0) with its mask applied: its first row
    // is at step k and measures exactly that network.
    let l1 = lottery.level_dir(1);
    let first = &rows(&l1)[0];
    assert_eq!(first.step, 10);
    let mut probe = lth_train::Setup::new(&lottery.hparams().train, 1, &data).unwrap();
    probe
        .model
        .load_state(&lottery.dense_weights_at(10).unwrap())
        .unwrap();
    lottery
        .mask(1)
        .unwrap()
        .apply(&probe.model.prunable_tensors())
        .unwrap();
    let e = evaluate(&probe.model, &data.eval.test).unwrap();
    assert_eq!((first.test_accuracy, first.test_loss), (e.accuracy, e.loss));
    // Training continued to T with the pruned weights held at zero.
    assert_eq!(rows(&l1).last().unwrap().step, 30);
    let trained = load_tensors(&l1.join("final.safetensors")).unwrap();
    assert!(zeros_where_pruned(&trained, &lottery.mask(1).unwrap()));
    // Running a finished level again trains nothing.
    let before = std::fs::read(l1.join("metrics.csv")).unwrap();
    let again = lottery.run_level(1, &mut ()).unwrap();
    assert_eq!(again.steps, 30);
    assert_eq!(before, std::fs::read(l1.join("metrics.csv")).unwrap());
    // The tidy tables list every level.
    let (results, layers) = lottery.results().unwrap();
    assert_eq!(
        results.iter().map(|r| r.level).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(layers.len(), 3 * 3);
    assert!(lottery.dir().join("results.csv").is_file());
    // The per-layer table has its own name, and the old name (which a unit's `layers.csv` of
    // kept counts also has, in another schema) is removed from a store an older version wrote.
    let old = lottery.dir().join("layers.csv");
    std::fs::write(&old, "level,branch,seed,layer,kept,total,density\n").unwrap();
    let (_, table) = lottery.write_tables().unwrap();
    assert_eq!(table, lottery.dir().join(lth_lottery::LAYER_TABLE));
    let written = std::fs::read_to_string(&table).unwrap();
    assert_eq!(written.lines().count(), 1 + 3 * 3, "{written}");
    assert!(!old.exists(), "the old table is left beside the new one");
}

#[test]
fn branches_share_the_level_mask_or_its_fractions() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let store = Store::new(root.path().join("runs"));
    let lottery = Lottery::new(&store, hparams(), 1, &data).unwrap();
    let reinit = BranchHparams {
        kind: BranchKind::RandomReinit,
        seed: None,
    };
    let err = lottery
        .run_branch(1, &reinit, &mut ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("level 1 is not finished"), "{err}");
    lottery.run_level(0, &mut ()).unwrap();
    lottery.run_level(1, &mut ()).unwrap();
    let level_mask = lottery.mask(1).unwrap();
    for kind in BranchKind::ALL {
        let b = BranchHparams { kind, seed: None };
        lottery.run_branch(1, &b, &mut ()).unwrap();
        let dir = lottery.branch_dir(1, &b);
        let mask = Mask::load(&dir.join(lth_prune::MASK_FILE)).unwrap();
        if kind == BranchKind::RandomUniform {
            // The same total, spread over the layers at random: not the recipe's fractions.
            assert_eq!(mask.kept(), level_mask.kept());
            assert_ne!(mask.counts(), level_mask.counts());
            continue;
        }
        assert_eq!(mask.counts(), level_mask.counts(), "{kind:?}");
        let same_positions = mask
            .iter()
            .all(|(n, m)| m.equal(level_mask.get(n).unwrap()));
        assert_eq!(same_positions, kind != BranchKind::RandomPrune, "{kind:?}");
        let trained = load_tensors(&dir.join("final.safetensors")).unwrap();
        assert!(zeros_where_pruned(&trained, &mask), "{kind:?}");
    }
    let (results, _) = lottery.results().unwrap();
    let names: Vec<&str> = results.iter().map(|r| r.branch.as_str()).collect();
    assert_eq!(
        names,
        [
            "imp",
            "imp",
            "random_prune",
            "random_reinit",
            "random_uniform",
            "reshuffle",
            "sign_preserving",
            "supermask",
            "supermask_signed"
        ]
    );
}

#[test]
fn supermasks_are_evaluated_on_w0_without_training() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let store = Store::new(root.path().join("runs"));
    let lottery = Lottery::new(&store, hparams(), 1, &data).unwrap();
    lottery.run_level(0, &mut ()).unwrap();
    lottery.run_level(1, &mut ()).unwrap();
    let mask = lottery.mask(1).unwrap();
    for (kind, signed) in [
        (BranchKind::Supermask, false),
        (BranchKind::SupermaskSigned, true),
    ] {
        let b = BranchHparams { kind, seed: None };
        let s = lottery.run_branch(1, &b, &mut ()).unwrap();
        let dir = lottery.branch_dir(1, &b);
        let logged = rows(&dir);
        assert_eq!(
            (logged.len(), logged[0].step, s.steps),
            (1, 0, 0),
            "{kind:?}"
        );
        let e = lottery.evaluate_at_init(&mask, signed).unwrap();
        assert_eq!(s.final_test_accuracy, e.accuracy, "{kind:?}");
        // What it evaluated is W0 under the mask (or its signed constants): nothing trained.
        let w = load_tensors(&dir.join("final.safetensors")).unwrap();
        let w0 = lottery.dense_weights_at(0).unwrap();
        let (_, a) = w.iter().find(|(n, _)| n == "fc_layers.0.weight").unwrap();
        let (_, b0) = w0.iter().find(|(n, _)| n == "fc_layers.0.weight").unwrap();
        let m = mask.get("fc_layers.0.weight").unwrap();
        if signed {
            let std = lth_models::Init::KaimingNormal.std(&a.size());
            let expected = b0.sign() * std * m.to_kind(Kind::Float);
            // The same product of the same factors, each side rounded once or twice: 4u.
            let bound = 4.0 * lth_models::rounding::F32;
            assert!(a.allclose(&expected, bound, 0.0, false));
        } else {
            assert!(a.equal(&(b0 * m.to_kind(Kind::Float))));
        }
    }
    // A random mask with the ticket's per-layer counts, measured the same way.
    let random = lth_prune::random_like(&mask, 9);
    let r = lottery.evaluate_at_init(&random, false).unwrap();
    assert!((0.0..=1.0).contains(&r.accuracy));
}

#[test]
fn a_criterion_other_than_large_final_reads_the_rewind_point() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let store = Store::new(root.path().join("runs"));
    let mut hp = hparams();
    hp.rewind = Steps::it(10);
    hp.pruning.criterion = "magnitude_increase".parse().unwrap();
    let lottery = Lottery::new(&store, hp.clone(), 1, &data).unwrap();
    lottery.run_level(0, &mut ()).unwrap();
    lottery.run_level(1, &mut ()).unwrap();
    let last = lottery
        .final_weights(&lottery.level_dir(0))
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n.ends_with("weight") && (n.starts_with("fc")))
        .collect::<Vec<_>>();
    let first = lottery.dense_weights_at(10).unwrap();
    let ones = Mask::ones(&last);
    let expected = hp
        .pruning
        .prune_from(&last, &first, &ones, "fc.weight")
        .unwrap();
    let got = lottery.mask(1).unwrap();
    for (n, m) in expected.iter() {
        assert!(got.get(n).unwrap().equal(m), "{n}");
    }
    // Without the starting weights it is refused.
    let imp = hp.pruning.prune(&last, &ones, "fc.weight");
    assert!(imp.is_err(), "magnitude_increase without W_k is refused");
}

#[test]
fn retraining_variants_start_where_they_should() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let store = Store::new(root.path().join("runs"));
    for retrain in [Retrain::LrRewinding, Retrain::FineTuning] {
        let mut hp = hparams();
        hp.retrain = retrain;
        hp.train.training.milestones = vec![Steps::it(20)];
        let lottery = Lottery::new(&store, hp, 1, &data).unwrap();
        lottery.run_level(0, &mut ()).unwrap();
        lottery.run_level(1, &mut ()).unwrap();
        // Both keep level 0's trained weights (masked) rather than rewinding them.
        let mut probe = lth_train::Setup::new(&lottery.hparams().train, 1, &data).unwrap();
        let trained = load_tensors(&lottery.level_dir(0).join("final.safetensors")).unwrap();
        probe.model.load_state(&trained).unwrap();
        lottery
            .mask(1)
            .unwrap()
            .apply(&probe.model.prunable_tensors())
            .unwrap();
        let first = &rows(&lottery.level_dir(1))[0];
        assert_eq!(
            first.test_loss,
            evaluate(&probe.model, &data.eval.test).unwrap().loss,
            "{retrain:?}"
        );
        let lrs: Vec<f64> = rows(&lottery.level_dir(1))
            .iter()
            .skip(1)
            .map(|r| r.lr)
            .collect();
        let near = |lr: f64, want: f64| (lr - want).abs() < 1e-12;
        match retrain {
            // The schedule replays: the decay at step 20 happens again.
            Retrain::LrRewinding => assert!(
                lrs.iter().any(|&l| near(l, 1.2e-3)) && lrs.iter().any(|&l| near(l, 1.2e-4)),
                "{lrs:?}"
            ),
            // Fine-tuning runs at the schedule's final rate throughout.
            _ => assert!(lrs.iter().all(|&l| near(l, 1.2e-4)), "{lrs:?}"),
        }
    }
}

#[test]
fn a_rewind_point_at_or_after_the_end_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut hp = hparams();
    hp.rewind = Steps::ep(3);
    let err = Lottery::new(&Store::new(root.path().join("runs")), hp, 1, &data)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("must come before the end of training"),
        "{err}"
    );
}

#[test]
fn level_one_can_be_pruned_at_initialisation_on_the_same_seeds() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let store = Store::new(root.path().join("runs"));
    let mut hp = hparams();
    hp.level1 = Some(lth_train::PaiHparams::new(lth_prune::Method::Snip, 0.9));
    let pai = Lottery::new(&store, hp.clone(), 1, &data).unwrap();
    let imp = Lottery::new(&store, hparams(), 1, &data).unwrap();
    assert_ne!(
        pai.dir().path(),
        imp.dir().path(),
        "the method is a hyperparameter"
    );
    for level in 0..=2 {
        pai.run_level(level, &mut ()).unwrap();
    }
    imp.run_level(0, &mut ()).unwrap();
    // The same dense network (same seeds), then one-shot SNIP: SNIP's count, round(N·0.1).
    let dense = |l: &Lottery| load_tensors(&l.level_dir(0).join("final.safetensors")).unwrap();
    for ((n, a), (_, b)) in dense(&pai).iter().zip(dense(&imp).iter()) {
        assert!(a.equal(b), "{n}: level 0 differs");
    }
    let m1 = pai.mask(1).unwrap();
    assert_eq!(m1.kept(), (m1.total() as f64 * 0.1).round() as i64);
    // Level 1 trained from W0 (k = 0) under that mask; level 2 is IMP from level 1.
    let w1 = load_tensors(&pai.level_dir(1).join("final.safetensors")).unwrap();
    assert!(zeros_where_pruned(&w1, &m1));
    let m2 = pai.mask(2).unwrap();
    for (c1, c2) in m1.counts().iter().zip(m2.counts()) {
        let rate = if c1.name == "fc.weight" { 0.1 } else { 0.2 };
        assert_eq!(c2.kept, c1.kept - prune_count(c1.kept, rate), "{}", c1.name);
    }
}

/// Levels across replicates, packed three to a network (`Lottery::run_levels`), against each
/// replicate trained alone: every level's folder has the same files, every level-1 mask keeps
/// the same counts and nearly the same weights (it is pruned from weights that agree to float
/// tolerance), accuracies agree to an example or two, and the replicates' tables are written.
/// Mixing two lotteries is refused.
#[test]
fn levels_pack_across_replicates_as_they_train_alone() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut hp = hparams();
    hp.rewind = Steps::it(10);
    let (packed, alone) = (
        Store::new(root.path().join("packed")),
        Store::new(root.path().join("alone")),
    );
    let replicates = [1u64, 2, 3];
    let lotteries = |store: &Store| -> Vec<Lottery> {
        replicates
            .iter()
            .map(|&r| Lottery::new(store, hp.clone(), r, &data).unwrap())
            .collect()
    };
    let (p, a) = (lotteries(&packed), lotteries(&alone));
    let named = |w: Vec<(String, tch::Tensor)>| -> Named { w.into() };
    for level in 0..=1 {
        let sp = Lottery::run_levels(&p.iter().collect::<Vec<_>>(), level, 3, &mut ()).unwrap();
        let sa: Vec<_> = a
            .iter()
            .map(|l| l.run_level(level, &mut ()).unwrap())
            .collect();
        for i in 0..3 {
            assert_eq!(sp[i].steps, sa[i].steps);
            assert_eq!(
                p[i].level_dir(level).files().unwrap(),
                a[i].level_dir(level).files().unwrap()
            );
            // The same training in another floating-point order (`rounding::Trajectory`): from
            // W0 at level 0, from the rewind point under the level's mask at level 1.
            let mask = a[i].mask(level).unwrap();
            let from = if level == 0 { 0 } else { 10 };
            let start = named(a[i].dense_weights_at(from).unwrap());
            mask.apply(&start).unwrap();
            let fin = |l: &Lottery| named(l.final_weights(&l.level_dir(level)).unwrap());
            let names: Vec<String> = start.names().map(str::to_owned).collect();
            let t = Trajectory::of(&names, &start, &fin(&a[i]), &fin(&p[i])).unwrap();
            assert!(
                t.repeated(),
                "level {level}, replicate {}: {t:?}",
                replicates[i]
            );
        }
    }
    for i in 0..3 {
        // Level 1 keeps each layer's k largest magnitudes of level 0's trained weights, with
        // the same k packed and alone. Sorted magnitudes move by at most δ = max |w_p − w_a|,
        // so a weight that one keeps and the other prunes lies within 2δ of the layer's
        // threshold: at most 2δ above the smallest magnitude kept, or below the largest pruned.
        let (mp, ma) = (p[i].mask(1).unwrap(), a[i].mask(1).unwrap());
        assert_eq!(mp.counts(), ma.counts());
        let (wp, wa) = (
            named(p[i].final_weights(&p[i].level_dir(0)).unwrap()),
            named(a[i].final_weights(&a[i].level_dir(0)).unwrap()),
        );
        for (n, keep_a) in ma.iter() {
            let keep_p = mp.get(n).unwrap();
            let (x, y) = (wp.get(n).unwrap(), wa.get(n).unwrap());
            let delta = (x - y).abs().max().double_value(&[]);
            let magnitude = y.abs();
            let smallest_kept = magnitude.masked_select(keep_a).min().double_value(&[]);
            let largest_pruned = magnitude
                .masked_select(&keep_a.logical_not())
                .max()
                .double_value(&[]);
            let only_a = keep_a.logical_and(&keep_p.logical_not());
            let only_p = keep_p.logical_and(&keep_a.logical_not());
            let flips = only_a.sum(Kind::Int64).int64_value(&[]);
            if flips > 0 {
                let above = magnitude.masked_select(&only_a).max().double_value(&[]);
                let below = magnitude.masked_select(&only_p).min().double_value(&[]);
                assert!(
                    above <= smallest_kept + 2.0 * delta && below >= largest_pruned - 2.0 * delta,
                    "replicate {}: {n}: {flips} weights differ, up to {above} (kept from \
                     {smallest_kept}) and down to {below} (pruned to {largest_pruned}), δ = {delta}",
                    i + 1
                );
            }
        }
        assert!(p[i].dir().join("results.csv").exists());
    }
    // Replicates of two lotteries do not train together.
    let mut other = hparams();
    other.rewind = Steps::it(5);
    let q = Lottery::new(&packed, other, 1, &data).unwrap();
    let err = Lottery::run_levels(&[&p[0], &q], 2, 3, &mut ()).unwrap_err();
    assert!(err.to_string().contains("not of one lottery"), "{err}");
}
