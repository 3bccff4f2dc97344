//! Packed training against training each copy alone: every copy's weights, BatchNorm statistics
//! and evaluations after the same steps, for LeNet, Conv-2, VGG with BatchNorm and ResNet-20.
//!
//! The stated tolerance, relative to the largest magnitude of the same tensor trained alone (or
//! absolute, where that is below 1): after
//! one step every parameter and running statistic is within 1e-5 (the same update, up to the
//! order of floating-point operations inside batched matrix products and grouped convolutions);
//! after five, within 1e-2, and test accuracy within 2 of the 200 test examples. Training is chaotic at these scales:
//! once a rounding difference flips one ReLU or max-pool choice it grows (at SGD 0.05 on this
//! task, to 2e-3 by step 3), so differences after many steps measure the dynamics, not packing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{data, hparams};

use lth_train::packed::PackedSetup;
use lth_train::{OptimizerKind, Setup, Steps, evaluate};
use tch::Tensor;

/// Largest |a − b| over the largest |b|, or over 1 for tensors whose values are all smaller
/// (BatchNorm shifts start at 0: after one step they are sums of nearly cancelling terms, whose
/// rounding is large relative to themselves and tiny absolutely).
fn relative(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a - b).abs().max().double_value(&[]);
    diff / b.abs().max().double_value(&[]).max(1.0)
}

/// Worst relative difference between copy `i` of `packed` and `alone`'s model, over every
/// parameter and running statistic.
fn worst(packed: &PackedSetup, i: usize, alone: &Setup) -> (f64, String) {
    let view = packed.copy_state(i);
    let mut worst = (0.0, String::new());
    for (n, t) in alone.model.state() {
        let d = relative(view.get(&n).unwrap(), &t);
        if d > worst.0 {
            worst = (d, n);
        }
    }
    worst
}

#[test]
fn packed_copies_train_as_they_would_alone() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let replicates = [1u64, 2, 5];
    for (model, optimizer) in [
        ("lenet_300_100", OptimizerKind::Adam),
        ("conv_2", OptimizerKind::Sgd),
        ("cifar_vgg_11", OptimizerKind::Sgd),
        ("cifar_resnet_20", OptimizerKind::Sgd),
    ] {
        let mut hp = hparams();
        hp.model.model = model.into();
        hp.training.optimizer = optimizer;
        hp.training.lr = if optimizer == OptimizerKind::Adam {
            1e-3
        } else {
            0.01
        };
        hp.training.momentum = if optimizer == OptimizerKind::Sgd {
            0.9
        } else {
            0.0
        };
        hp.training.weight_decay = 1e-4;
        hp.training.steps = Steps::it(5);
        hp.training.milestones = Vec::new();
        let mut packed = PackedSetup::new(&hp, &replicates, &data).unwrap();
        let mut alone: Vec<Setup> = replicates
            .iter()
            .map(|&r| Setup::new(&hp, r, &data).unwrap())
            .collect();
        for step in 0..5 {
            let _ = packed.step(step).unwrap();
            for a in &mut alone {
                let _ = a.session().step(step).unwrap();
            }
            for (i, a) in alone.iter().enumerate() {
                let (d, name) = worst(&packed, i, a);
                // One step: the same update to rounding. Five: rounding differences may have
                // flipped a ReLU or max-pool choice and grown, but stay small.
                let bound = if step == 0 { 1e-5 } else { 1e-2 };
                assert!(
                    d < bound,
                    "{model}: copy {i} after step {step}: {name} differs by {d:e}"
                );
            }
        }
        let evals = packed.evaluate(&data.eval.test).unwrap();
        for (i, a) in alone.iter().enumerate() {
            let e = evaluate(&a.model, &data.eval.test).unwrap();
            assert!(
                (evals[i].accuracy - e.accuracy).abs() <= 2.5 / 200.0,
                "{model}: copy {i}: accuracy {} packed, {} alone",
                evals[i].accuracy,
                e.accuracy
            );
            eprintln!(
                "{model} copy {i}: worst relative difference after 5 steps {:e}, accuracy {} vs {}",
                worst(&packed, i, a).0,
                evals[i].accuracy,
                e.accuracy
            );
        }
    }
}

/// Under `--precision bf16` (autocast, as an unpacked session runs it) each packed copy takes the
/// step it takes alone, to the rounding of bfloat16 products accumulated in another order: after
/// one SGD step every parameter and running statistic is within 1e-3 (relative, as above; bf16's
/// own rounding step is 2⁻⁸ ≈ 4e-3, measured here ≤ 3e-4), and each copy's loss within 1%.
#[test]
fn bf16_packed_copies_train_as_they_would_alone() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let replicates = [1u64, 2, 5];
    for model in ["lenet_300_100", "cifar_resnet_20"] {
        let mut hp = hparams();
        hp.model.model = model.into();
        hp.training.precision = lth_train::Precision::Bf16;
        // SGD: Adam's first update is ±lr wherever the gradient is not zero, so a gradient near
        // zero whose sign the rounding flips moves by 2·lr, whatever the precision.
        hp.training.optimizer = OptimizerKind::Sgd;
        hp.training.lr = 0.01;
        hp.training.momentum = 0.9;
        let mut packed = PackedSetup::new(&hp, &replicates, &data).unwrap();
        assert!(packed.bf16);
        let mut alone: Vec<Setup> = replicates
            .iter()
            .map(|&r| Setup::new(&hp, r, &data).unwrap())
            .collect();
        let losses = packed.step(0).unwrap();
        for (i, a) in alone.iter_mut().enumerate() {
            let loss = a.session().step(0).unwrap();
            let (l, p) = (loss.double_value(&[]), losses.double_value(&[i as i64]));
            assert!(
                (l - p).abs() <= 1e-2 * l.abs(),
                "{model}: copy {i}: loss {p} packed, {l} alone"
            );
            let (d, name) = worst(&packed, i, a);
            eprintln!(
                "{model} bf16 copy {i}: worst relative difference after one step {d:e} ({name})"
            );
            assert!(d < 1e-3, "{model}: copy {i}: {name} differs by {d:e}");
        }
    }
}

/// A packed group in the run store: each copy's folder has an unpacked run's layout and nearly
/// its numbers, and a group killed mid-run resumes to exactly the numbers of an uninterrupted
/// packed run.
#[test]
fn packed_groups_write_normal_run_folders_and_resume_exactly() {
    use lth_store::RunDir;
    use lth_train::packed::run_packed;
    use lth_train::{load_tensors, run_resumable};
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut hp = hparams();
    hp.training.steps = Steps::it(20);
    let replicates = [1u64, 2, 3];
    let group = |name: &str| -> Vec<RunDir> {
        replicates
            .iter()
            .map(|r| RunDir::new(root.path().join(name).join(format!("replicate_{r}"))))
            .collect()
    };
    let (whole, cut) = (group("whole"), group("cut"));
    let mut setup = PackedSetup::new(&hp, &replicates, &data).unwrap();
    let mut plan = Setup::new(&hp, 1, &data).unwrap().plan(&hp);
    plan.keep = vec![5];
    let expected = run_packed(&whole, &mut setup, &plan, &mut ()).unwrap();
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut s = PackedSetup::new(&hp, &replicates, &data).unwrap();
        run_packed(&cut, &mut s, &plan, &mut common::Crash(13)).unwrap();
    }));
    assert!(crashed.is_err());
    let mut s = PackedSetup::new(&hp, &replicates, &data).unwrap();
    let resumed = run_packed(&cut, &mut s, &plan, &mut ()).unwrap();
    assert_eq!(resumed, expected);
    for (a, b) in whole.iter().zip(&cut) {
        let fa = load_tensors(&a.join("final.safetensors")).unwrap();
        let fb = load_tensors(&b.join("final.safetensors")).unwrap();
        for ((n, x), (_, y)) in fa.iter().zip(&fb) {
            assert!(x.equal(y), "{n} differs after resuming");
        }
        assert_eq!(
            std::fs::read_to_string(a.join("metrics.csv")).unwrap(),
            std::fs::read_to_string(b.join("metrics.csv")).unwrap()
        );
    }
    // Done: a second call trains nothing.
    let mut s = PackedSetup::new(&hp, &replicates, &data).unwrap();
    assert_eq!(
        run_packed(&whole, &mut s, &plan, &mut ()).unwrap(),
        expected
    );
    // Each copy against its run alone: the same files, and the same accuracy to an example.
    for (i, &r) in replicates.iter().enumerate() {
        let alone = RunDir::new(root.path().join(format!("alone_{r}")));
        let mut setup = Setup::new(&hp, r, &data).unwrap();
        let summary = run_resumable(
            &alone,
            &mut setup,
            &plan,
            &mut lth_train::Hooks::none(),
            &mut (),
        )
        .unwrap();
        assert_eq!(alone.files().unwrap(), whole[i].files().unwrap());
        assert!(
            (summary.final_test_accuracy - expected[i].final_test_accuracy).abs() <= 1.5 / 200.0,
            "replicate {r}: {} alone, {} packed",
            summary.final_test_accuracy,
            expected[i].final_test_accuracy
        );
    }
}

/// The scheduler: jobs group by compatibility (plan and learning rates) up to the pack limit,
/// skipping those done; a job alone is bit-identical to the run built by hand; packed, each job
/// (its own start, data order, mask) ends within the stated tolerance of its run alone, in a
/// folder with the same files; a second call trains nothing.
#[test]
fn jobs_group_by_compatibility_and_train_as_they_would_alone() {
    use lth_prune::{Mask, magnitude_global};
    use lth_store::RunDir;
    use lth_train::jobs::groups;
    use lth_train::{Job, Start, load_tensors, run_resumable, train_jobs};
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut hp = hparams();
    hp.training.steps = Steps::it(10);
    let plan = Setup::new(&hp, 1, &data).unwrap().plan(&hp);
    let other_plan = lth_train::RunPlan {
        eval_every: 2,
        ..plan.clone()
    };
    let w4: lth_models::Named = Setup::new(&hp, 4, &data).unwrap().model.state().into();
    let kernels = Setup::new(&hp, 2, &data).unwrap().model.prunable_tensors();
    let names: Vec<String> = kernels.iter().map(|(n, _)| n.clone()).collect();
    let mask = magnitude_global(&kernels, &Mask::ones(&kernels), &names, 0.5).unwrap();
    let jobs = |store: &str| -> Vec<Job> {
        let dir = |j: u32| RunDir::new(root.path().join(store).join(format!("job_{j}")));
        vec![
            Job::new(dir(0), &hp, 1, plan.clone()),
            Job::new(dir(1), &hp, 2, plan.clone())
                .starting(Start::Init(77))
                .data_order(99)
                .masked(Some(mask.clone())),
            Job::new(dir(2), &hp, 3, plan.clone())
                .starting(Start::Weights(w4.clone()))
                .masked(Some(mask.clone()))
                .constant_lr(2e-4),
            Job::new(dir(3), &hp, 5, plan.clone()).constant_lr(2e-4),
            Job::new(dir(4), &hp, 6, other_plan.clone()),
            Job::new(dir(5), &hp, 7, plan.clone()),
        ]
    };
    let none = [false; 6];
    assert_eq!(
        groups(&jobs("g"), &none, 8),
        vec![vec![0, 1, 5], vec![2, 3], vec![4]]
    );
    assert_eq!(
        groups(&jobs("g"), &none, 2),
        vec![vec![0, 1], vec![2, 3], vec![4], vec![5]]
    );
    assert_eq!(
        groups(&jobs("g"), &[false, true, false, false, false, false], 8),
        vec![vec![0, 5], vec![2, 3], vec![4]]
    );
    assert_eq!(groups(&jobs("g"), &none, 1).len(), 6);

    let (packed, alone) = (jobs("packed"), jobs("alone"));
    let sp = train_jobs(&hp, &data, &packed, 8, &mut ()).unwrap();
    let sa = train_jobs(&hp, &data, &alone, 1, &mut ()).unwrap();
    // Alone, job 1 is the run `--init-seed 77 --data-order-seed 99` with the mask, bit for bit.
    let mut by_hand = hp.clone();
    by_hand.model.init_seed = Some(77);
    by_hand.dataset.data_order_seed = Some(99);
    let mut setup = Setup::new(&by_hand, 2, &data).unwrap();
    setup.optimizer.set_mask(&mask).unwrap();
    let hand = RunDir::new(root.path().join("by_hand"));
    let s = run_resumable(
        &hand,
        &mut setup,
        &plan,
        &mut lth_train::Hooks::none(),
        &mut (),
    )
    .unwrap();
    assert_eq!(s, sa[1]);
    let fin = |d: &RunDir| load_tensors(&d.join("final.safetensors")).unwrap();
    for ((n, x), (_, y)) in fin(&hand).iter().zip(&fin(&alone[1].dir)) {
        assert!(x.equal(y), "{n}: job alone differs from the run by hand");
    }
    for (i, (p, a)) in packed.iter().zip(&alone).enumerate() {
        assert_eq!(p.dir.files().unwrap(), a.dir.files().unwrap(), "job {i}");
        for ((n, x), (_, y)) in fin(&p.dir).iter().zip(&fin(&a.dir)) {
            let d = relative(x, y);
            assert!(d < 1e-2, "job {i}: {n} differs by {d:e} packed");
            if let Some(m) = p.mask.as_ref().and_then(|m| m.get(n)) {
                let pruned = x.masked_select(&m.logical_not());
                assert_eq!(pruned.abs().sum(tch::Kind::Float).double_value(&[]), 0.0);
            }
        }
        assert!(
            (sp[i].final_test_accuracy - sa[i].final_test_accuracy).abs() <= 1.5 / 200.0,
            "job {i}: {} packed, {} alone",
            sp[i].final_test_accuracy,
            sa[i].final_test_accuracy
        );
    }
    // Done: nothing is trained again, the summaries come back.
    assert_eq!(
        train_jobs(&hp, &data, &packed, 8, &mut common::Crash(1)).unwrap(),
        sp
    );
}

/// Records where runs resumed.
#[derive(Default)]
struct Resumes(Vec<u64>);

impl lth_train::Progress for Resumes {
    fn resumed(&mut self, step: u64) {
        self.0.push(step);
    }
}

/// Interrupted work resumes whatever `--pack` the rerun uses: a packed group of masked jobs killed
/// at step 13 and run again one job at a time resumes each job from its own resume checkpoint
/// (weights, its slice of the optimiser state, its mask), and ends within the stated tolerance of
/// the uninterrupted packed run, pruned weights still zero.
#[test]
fn a_packed_group_killed_resumes_one_job_at_a_time() {
    use lth_prune::{Mask, magnitude_global};
    use lth_store::RunDir;
    use lth_train::{Job, load_tensors, train_jobs};
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut hp = hparams();
    hp.training.steps = Steps::it(20);
    let plan = Setup::new(&hp, 1, &data).unwrap().plan(&hp);
    let kernels = Setup::new(&hp, 1, &data).unwrap().model.prunable_tensors();
    let names: Vec<String> = kernels.iter().map(|(n, _)| n.clone()).collect();
    let mask = magnitude_global(&kernels, &Mask::ones(&kernels), &names, 0.7).unwrap();
    let jobs = |store: &str| -> Vec<Job> {
        (1..=3u64)
            .map(|r| {
                let dir = RunDir::new(root.path().join(store).join(format!("replicate_{r}")));
                Job::new(dir, &hp, r, plan.clone()).masked(Some(mask.clone()))
            })
            .collect()
    };
    let (whole, cut) = (jobs("whole"), jobs("cut"));
    let expected = train_jobs(&hp, &data, &whole, 3, &mut ()).unwrap();
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train_jobs(&hp, &data, &cut, 3, &mut common::Crash(13)).unwrap();
    }));
    assert!(crashed.is_err());
    let mut resumes = Resumes::default();
    let resumed = train_jobs(&hp, &data, &cut, 1, &mut resumes).unwrap();
    // Evaluations every 5 steps: each job resumes from step 10.
    assert_eq!(resumes.0, vec![10, 10, 10]);
    let fin = |d: &RunDir| load_tensors(&d.join("final.safetensors")).unwrap();
    for (i, (a, b)) in whole.iter().zip(&cut).enumerate() {
        for ((n, x), (_, y)) in fin(&a.dir).iter().zip(&fin(&b.dir)) {
            let d = relative(y, x);
            assert!(d < 1e-2, "job {i}: {n} differs by {d:e}");
            if let Some(m) = mask.get(n) {
                let pruned = y.masked_select(&m.logical_not());
                assert_eq!(pruned.abs().sum(tch::Kind::Float).double_value(&[]), 0.0);
            }
        }
        assert!(
            (resumed[i].final_test_accuracy - expected[i].final_test_accuracy).abs() <= 1.5 / 200.0
        );
        assert_eq!(a.dir.files().unwrap(), b.dir.files().unwrap());
    }
}
