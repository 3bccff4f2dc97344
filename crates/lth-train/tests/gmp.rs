//! Gradual magnitude pruning on generated MNIST-format data: the cubic schedule, the final
//! per-layer counts, a hand-checked mask, the optimiser state of pruned weights, and exact
//! resumption of a run killed between two pruning steps.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Crash, data, hparams};

use lth_models::Named;
use lth_prune::{Distribution, Mask, Spread, Strategy};
use lth_store::{CsvLog, RunDir};
use lth_train::gmp::{GMP_FILE, Gmp, GmpRow, GmpSchedule};
use lth_train::{GmpHparams, GmpRun, Hook, Setup, StepContext, UpdateEnd, load_tensors, train_gmp};
use tch::{Device, Kind, Tensor};

/// GMP to `sparsity` from step 3 (10% of 30) to 75% (step 22) every 4 steps: pruning steps 3, 7,
/// 11, 15, 19 (n = 4).
fn run(sparsity: f64, scope: Strategy, spread: Spread) -> GmpRun {
    let mut g = GmpHparams::new(sparsity);
    g.every = lth_train::Steps::it(4);
    g.scope = scope;
    g.distribution = spread;
    GmpRun {
        train: hparams(),
        gmp: g,
    }
}

fn rows(dir: &RunDir) -> Vec<GmpRow> {
    CsvLog::<GmpRow>::new(dir.join(GMP_FILE)).load().unwrap()
}

/// Zhu & Gupta's cubic, written out here: the sparsity after pruning step `j` of `n`.
fn cubic(s_i: f64, s_f: f64, j: u64, n: u64) -> f64 {
    s_f + (s_i - s_f) * (1.0 - j as f64 / n as f64).powi(3)
}

#[test]
fn each_pruning_step_follows_the_cubic_to_one_weight_per_layer_and_ends_at_the_requested_counts() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    for (scope, spread) in [
        (Strategy::Layerwise, Spread::Uniform),
        (Strategy::Layerwise, Spread::ErdosRenyiKernel),
        (Strategy::Global, Spread::Uniform),
    ] {
        let what = format!("{scope} {spread}");
        let r = run(0.9, scope, spread);
        let dir = RunDir::new(root.path().join(format!("{scope}-{spread}")));
        let (summary, mask) = train_gmp(&dir, &r, 1, &data, &mut ()).unwrap();
        let log = rows(&dir);
        let mut steps: Vec<u64> = log.iter().map(|r| r.step).collect();
        steps.dedup();
        assert_eq!(steps, vec![3, 7, 11, 15, 19], "{what}: pruning steps");
        // The prunable layers in the network's order (the log's), with their shapes.
        let shapes: Vec<(String, Vec<i64>)> = log
            .iter()
            .filter(|r| r.step == 3)
            .map(|r| (r.layer.clone(), mask.get(&r.layer).unwrap().size()))
            .collect();
        let finals = Distribution::new(spread, 0.9).sparsities(&shapes).unwrap();
        for (j, &t) in steps.iter().enumerate() {
            let s = cubic(0.0, 0.9, j as u64, 4);
            let at: Vec<&GmpRow> = log.iter().filter(|r| r.step == t).collect();
            match scope {
                Strategy::Layerwise => {
                    for (row, layer) in at.iter().zip(&finals) {
                        assert_eq!(row.layer, layer.name);
                        let n = layer.total as f64;
                        let want = n - (layer.sparsity * s / 0.9 * n).floor();
                        assert!(
                            (row.kept as f64 - want).abs() <= 1.0,
                            "{what}: {} at step {t} keeps {}, the cubic {want}",
                            row.layer,
                            row.kept
                        );
                    }
                }
                Strategy::Global => {
                    let total: i64 = at.iter().map(|r| r.total).sum();
                    let kept: i64 = at.iter().map(|r| r.kept).sum();
                    let want = total as f64 - (s * total as f64).floor();
                    assert!(
                        (kept as f64 - want).abs() <= 1.0,
                        "{what}: step {t} keeps {kept}, the cubic {want}"
                    );
                }
            }
        }
        // The final mask has the requested counts: the distribution's per layer, or the network's.
        match scope {
            Strategy::Layerwise => {
                for l in &finals {
                    let kept = mask.get(&l.name).unwrap().sum(Kind::Int64).int64_value(&[]);
                    assert_eq!(kept, l.kept, "{what}: final count of {}", l.name);
                }
            }
            Strategy::Global => {
                let total = mask.total();
                assert_eq!(mask.kept(), total - (0.9 * total as f64).floor() as i64);
            }
        }
        // Pruned weights are zero at the end, and the FLOPs count the dense steps before t0.
        let w = load_tensors(&dir.join("final.safetensors")).unwrap();
        for (name, m) in mask.iter() {
            let (_, t) = w.iter().find(|(n, _)| n == name).unwrap();
            let off = t
                .masked_select(&m.logical_not())
                .abs()
                .sum(Kind::Double)
                .double_value(&[]);
            assert_eq!(off, 0.0, "{what}: pruned weights of {name} are not zero");
        }
        let flops = summary.flops.unwrap();
        assert!(
            flops.training_relative > flops.inference_relative && flops.training_relative < 1.0
        );
        assert!(
            (flops.inference_relative - mask.density()).abs() < 0.05,
            "{what}: {flops:?}"
        );
    }
}

#[test]
fn gmp_runs_resume_bit_identically_after_a_kill_between_pruning_steps() {
    for regrow in [false, true] {
        resumes_bit_identically(regrow);
    }
}

fn resumes_bit_identically(regrow: bool) {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut r = run(0.8, Strategy::Layerwise, Spread::ErdosRenyiKernel);
    if regrow {
        // At a rising sparsity a held weight rarely outranks a kept one (it ranked below every
        // kept one when it left, and the threshold climbs); at a constant one, kept weights that
        // drift below held ones trade places with them at every pruning step.
        r.gmp.regrow = true;
        r.gmp.initial = r.gmp.sparsity;
    }
    let whole = RunDir::new(root.path().join("whole"));
    let cut = RunDir::new(root.path().join("cut"));
    let (expected, mask) = train_gmp(&whole, &r, 1, &data, &mut ()).unwrap();
    let log = rows(&whole);
    // Killed at step 13: the checkpoint is at 10, and the pruning of step 11 was logged and must
    // be dropped on resume.
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train_gmp(&cut, &r, 1, &data, &mut Crash(13)).unwrap();
    }));
    assert!(crashed.is_err());
    assert!(rows(&cut).iter().any(|r| r.step == 11));
    let (resumed, resumed_mask) = train_gmp(&cut, &r, 1, &data, &mut ()).unwrap();
    assert_eq!(resumed, expected);
    assert_eq!(rows(&cut), log, "pruning log after resuming");
    // With regrow, weights came back after the checkpoint, from values held in it.
    let regrown: i64 = log.iter().filter(|r| r.step > 10).map(|r| r.regrown).sum();
    assert_eq!(
        regrown > 0,
        regrow,
        "{regrown} weights came back after step 10"
    );
    for ((n, a), (_, b)) in mask.iter().zip(resumed_mask.iter()) {
        assert!(a.equal(b), "mask of {n} differs after resuming");
    }
    let w = |d: &RunDir| load_tensors(&d.join("final.safetensors")).unwrap();
    for ((n1, t1), (_, t2)) in w(&whole).iter().zip(w(&cut).iter()) {
        assert!(t1.equal(t2), "{n1} differs after resuming");
    }
    // A finished run is not trained again and gives back its mask.
    let (again, again_mask) = train_gmp(&whole, &r, 1, &data, &mut ()).unwrap();
    assert_eq!(again, expected);
    assert_eq!(again_mask.kept(), mask.kept());
}

/// Three layers of distinct magnitudes, pruned to 50% at the schedule's last step.
fn three_layers() -> Vec<(String, Tensor)> {
    let t = |v: &[f32], shape: &[i64]| Tensor::from_slice(v).view(shape);
    vec![
        ("a".into(), t(&[0.9, -0.1, 0.5, -0.7, 0.2, 0.05], &[2, 3])),
        ("b".into(), t(&[-0.3, 0.8, 0.15, -0.6], &[2, 2])),
        ("c".into(), t(&[0.01, -0.4, 0.02, 0.35], &[1, 4])),
    ]
}

fn mask_of(gmp: &Gmp, t: u64, weights: &[(String, Tensor)]) -> Vec<Vec<bool>> {
    let named: Named = weights
        .iter()
        .map(|(n, w)| (n.clone(), w.shallow_clone()))
        .collect();
    let m = gmp.prune(t, &named, &Mask::ones(weights)).unwrap();
    m.iter()
        .map(|(_, t)| Vec::<bool>::try_from(&t.flatten(0, -1)).unwrap())
        .collect()
}

#[test]
fn a_hand_checked_three_layer_example_gives_the_exact_mask() {
    let weights = three_layers();
    let schedule = GmpSchedule {
        t0: 0,
        dt: 1,
        n: 1,
        initial: 0.0,
        last: 0.5,
    };
    let positions = [1, 1, 1];
    let mut g = GmpHparams::new(0.5);
    g.start = UpdateEnd::At(lth_train::Steps::it(0));
    // Layerwise uniform: each layer keeps N − ⌊N/2⌋ of its largest magnitudes.
    let gmp = Gmp::new(&g, schedule, &weights, &positions, 2, 1, None).unwrap();
    let (y, n) = (true, false);
    assert_eq!(
        mask_of(&gmp, 1, &weights),
        vec![
            vec![y, n, y, y, n, n], // 0.9, 0.7, 0.5 stay
            vec![n, y, n, y],       // 0.8, 0.6
            vec![n, y, n, y],       // 0.4, 0.35
        ]
    );
    // Step 0 is at s_i = 0: nothing leaves.
    assert!(mask_of(&gmp, 0, &weights).iter().flatten().all(|&k| k));
    // Global: the 7 largest of all 14 magnitudes (0.9 0.8 0.7 0.6 0.5 0.4 0.35) stay.
    g.scope = Strategy::Global;
    let gmp = Gmp::new(&g, schedule, &weights, &positions, 2, 1, None).unwrap();
    assert_eq!(
        mask_of(&gmp, 1, &weights),
        vec![vec![y, n, y, y, n, n], vec![n, y, n, y], vec![n, y, n, y],]
    );
    // Global with the first layer dense: the 4 largest of the other 8 (0.8 0.6 0.4 0.35) stay,
    // every weight of the first layer too.
    g.first_layer_dense = true;
    let gmp = Gmp::new(&g, schedule, &weights, &positions, 2, 1, None).unwrap();
    assert_eq!(
        mask_of(&gmp, 1, &weights),
        vec![vec![y; 6], vec![n, y, n, y], vec![n, y, n, y]]
    );
    // Layerwise at 75% with the first layer dense: b and c keep one weight each.
    let mut g = GmpHparams::new(0.75);
    g.first_layer_dense = true;
    let schedule = GmpSchedule {
        last: 0.75,
        ..schedule
    };
    let gmp = Gmp::new(&g, schedule, &weights, &positions, 2, 1, None).unwrap();
    assert_eq!(
        mask_of(&gmp, 1, &weights),
        vec![vec![y; 6], vec![n, y, n, n], vec![n, y, n, n]]
    );
}

/// A network trained 3 steps with Adam (its moments non-zero everywhere) under an all-ones mask,
/// and a GMP hook that prunes to 50% at steps 3 and 4.
fn adam_after_three_steps(data: &lth_train::Data, regrow: bool) -> (Setup, Gmp) {
    let hp = hparams();
    let mut setup = Setup::new(&hp, 1, data).unwrap();
    let weights = setup.model.prunable_tensors();
    setup.optimizer.set_mask(&Mask::ones(&weights)).unwrap();
    setup
        .session()
        .train(0, 3, 0, &[], &mut lth_train::Hooks::none(), &mut ())
        .unwrap();
    let mut g = GmpHparams::new(0.5);
    g.regrow = regrow;
    let schedule = GmpSchedule {
        t0: 3,
        dt: 1,
        n: 1,
        initial: 0.5,
        last: 0.5,
    };
    let gmp = Gmp::new(
        &g,
        schedule,
        &weights,
        setup.model.positions(),
        10,
        hp.dataset.batch_size,
        None,
    )
    .unwrap();
    (setup, gmp)
}

#[test]
fn pruned_weights_lose_their_optimizer_state_and_the_rest_keep_it() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let (mut setup, mut gmp) = adam_after_three_steps(&data, false);
    let mut ctx = StepContext {
        model: &setup.model,
        optimizer: &mut setup.optimizer,
    };
    gmp.after_step(3, &mut ctx).unwrap();
    let mask = setup.optimizer.mask().unwrap().clone();
    assert!((mask.sparsity() - 0.5).abs() < 1e-3);
    let state = setup.optimizer.state();
    for (name, m) in mask.iter() {
        for buffer in ["exp_avg", "exp_avg_sq"] {
            let key = format!("optimizer.{name}.{buffer}");
            let (_, b) = state.iter().find(|(n, _)| *n == key).unwrap();
            let b = b.to_device(Device::Cpu);
            let gone = b.masked_select(&m.logical_not()).abs().sum(Kind::Double);
            assert_eq!(gone.double_value(&[]), 0.0, "{key} at pruned weights");
            let kept = b.masked_select(m).ne(0.0).sum(Kind::Int64).int64_value(&[]);
            assert!(kept > 0, "{key} lost its state at kept weights");
        }
    }
}

/// With `regrow`, a pruned weight whose held magnitude outranks a kept one comes back with its
/// held value and a fresh optimiser state, and the kept one leaves; without it the mask holds.
#[test]
fn regrow_brings_back_a_held_weight_that_outranks_a_shrunken_one() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    for regrow in [false, true] {
        let (mut setup, mut gmp) = adam_after_three_steps(&data, regrow);
        let name = setup.model.prunable_tensors()[0].0.clone();
        let before = setup.optimizer.weights().get(&name).unwrap().copy();
        let mut ctx = StepContext {
            model: &setup.model,
            optimizer: &mut setup.optimizer,
        };
        gmp.after_step(3, &mut ctx).unwrap();
        let first = setup.optimizer.mask().unwrap().get(&name).unwrap().copy();
        // Pruned: zero in the model, held at their values (regrow), or not held at all.
        let w = setup.optimizer.weights().get(&name).unwrap().copy();
        let pruned = first.logical_not();
        assert_eq!(
            w.masked_select(&pruned)
                .abs()
                .sum(Kind::Double)
                .double_value(&[]),
            0.0
        );
        if regrow {
            let held = gmp.held().get(&name).unwrap();
            assert!(
                held.masked_select(&pruned)
                    .equal(&before.masked_select(&pruned))
            );
            assert_eq!(
                held.masked_select(&first)
                    .abs()
                    .sum(Kind::Double)
                    .double_value(&[]),
                0.0
            );
        } else {
            assert!(gmp.held().get(&name).is_none());
        }
        // The kept weight of least magnitude shrinks to 0; the pruned one of largest held
        // magnitude now outranks it.
        let flat = |t: &Tensor| t.flatten(0, -1);
        let shrunk = flat(&w.abs().where_self(&first, &Tensor::from(f32::INFINITY)))
            .argmin(0, false)
            .int64_value(&[]);
        let back = flat(&before.abs().where_self(&pruned, &Tensor::from(-1.0f32)))
            .argmax(0, false)
            .int64_value(&[]);
        tch::no_grad(|| {
            let _ = setup
                .optimizer
                .weights()
                .get(&name)
                .unwrap()
                .flatten(0, -1)
                .get(shrunk)
                .fill_(0.0);
        });
        let mut ctx = StepContext {
            model: &setup.model,
            optimizer: &mut setup.optimizer,
        };
        gmp.after_step(4, &mut ctx).unwrap();
        let second = setup.optimizer.mask().unwrap().get(&name).unwrap().copy();
        let kept_at = |m: &Tensor, i: i64| flat(m).int64_value(&[i]) != 0;
        let w2 = flat(setup.optimizer.weights().get(&name).unwrap());
        if !regrow {
            assert!(second.equal(&first), "without regrow the mask holds");
            continue;
        }
        assert!(kept_at(&second, back) && !kept_at(&second, shrunk));
        assert_eq!(
            second.logical_xor(&first).sum(Kind::Int64).int64_value(&[]),
            2,
            "one weight back, one gone"
        );
        assert_eq!(
            w2.double_value(&[back]),
            flat(&before).double_value(&[back]),
            "back with its held value"
        );
        let state = setup.optimizer.state();
        for buffer in ["exp_avg", "exp_avg_sq"] {
            let key = format!("optimizer.{name}.{buffer}");
            let (_, b) = state.iter().find(|(n, _)| *n == key).unwrap();
            assert_eq!(flat(b).double_value(&[back]), 0.0, "{key}: fresh state");
        }
        // The one that left is held at the value it had (0), the one back no longer held.
        let held = flat(gmp.held().get(&name).unwrap());
        assert_eq!(held.double_value(&[back]), 0.0);
        assert_eq!(held.double_value(&[shrunk]), 0.0);
    }
}
