//! Packed training against training each copy alone: every copy's gradients, weights, BatchNorm
//! statistics and evaluations after the same steps, for LeNet, Conv-2, VGG with BatchNorm and
//! ResNet-20.
//!
//! Tolerances come from `lth_models::rounding`, derived from each network's reductions (fan-ins,
//! fan-outs, batch × positions), not from one machine's observation: packed and unpacked
//! products are summed in other orders, and which orders depends on the processor, the thread
//! count and the device.
//! - One step computes the same gradient, to the rounding bound of its reductions.
//! - The weights after it follow from the gradient by the optimiser's law: SGD moves them by
//!   `lr` times the gradient's difference; Adam's first step `lr·g/(|g|+ε)` is not Lipschitz at
//!   g = 0 (slope `lr/ε`), so a gradient within rounding of zero may move its weight by up to
//!   `2·lr` (on an AVX-512 Xeon, 6.6e-5 for LeNet-300-100, where this test once compared weights
//!   at 1e-5).
//! - Five steps: a rounding difference that flips a ReLU, a max-pool choice or an Adam sign then
//!   grows with the dynamics, so the trajectories are compared against the distance trained
//!   (below).
//! - Evaluation of the packed copies equals evaluation of each copy's weights alone, except on
//!   examples whose two best logits are within rounding of each other.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_same_trajectory, data, hparams};

use lth_models::rounding::{self, Reductions, relative};
use lth_models::{Model, Named};

use lth_train::packed::PackedSetup;
use lth_train::{OptimizerKind, Setup, Steps, evaluate};
use tch::{Kind, Tensor};

/// The largest gradient magnitude of a network: the scale against which a tensor whose own
/// gradients are smaller is compared. A gradient that is zero in exact arithmetic (a convolution's
/// bias before BatchNorm, which removes any shift) is computed as a sum of cancelling terms of the
/// network's gradient scale, so its rounding is of that scale, not of its own.
fn gradient_scale(grads: &Named) -> f64 {
    grads
        .iter()
        .map(|(_, g)| g.abs().max().double_value(&[]))
        .fold(f64::MIN_POSITIVE, f64::max)
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
        let lr = if optimizer == OptimizerKind::Adam {
            1e-3
        } else {
            0.01
        };
        hp.training.lr = lr;
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
        let start: Vec<Named> = alone
            .iter()
            .map(|a| {
                a.model
                    .state()
                    .into_iter()
                    .map(|(n, t)| (n, t.copy()))
                    .collect()
            })
            .collect();
        let classes = data.info.num_classes as usize;
        let reductions = Reductions::of(&alone[0].model, hp.dataset.batch_size as usize, classes);
        let (forward, gradient) = (reductions.forward_bound(), reductions.gradient_bound());

        // Step 0: the same gradient (with weight decay, as the optimiser adds it in place), and
        // the weights the optimiser's law gives from it.
        let _ = packed.step(0).unwrap();
        for a in &mut alone {
            let _ = a.session().step(0).unwrap();
        }
        let grads = packed.optimizer.grads();
        for (i, a) in alone.iter().enumerate() {
            let view = packed.copy_state(i);
            let own = a.optimizer.grads();
            let scale = gradient_scale(&own);
            let mut measured = 0.0f64;
            for (n, t) in a.model.state() {
                let p = view.get(&n).unwrap();
                let Some(g) = own.get(&n) else {
                    // Running statistics: the forward pass's reductions, on a scale of 1
                    // (BatchNorm normalises to it; running means start at 0).
                    let d = relative(p, &t, 1.0);
                    assert!(
                        d <= forward,
                        "{model} copy {i}: {n} differs by {d:e} > {forward:e}"
                    );
                    continue;
                };
                let gp = grads.get(&n).unwrap().select(0, i as i64);
                let d = relative(&gp, g, scale);
                assert!(
                    d <= gradient,
                    "{model} copy {i}: gradient of {n} differs by {d:e} > {gradient:e}"
                );
                measured = measured.max(d);
                // A gradient's elements may differ by up to `delta`; the update rounds once
                // more on the weight's own scale.
                let delta = gradient * g.abs().max().double_value(&[]).max(scale);
                // The update's own arithmetic (a few operations, each rounding on the scale of
                // the weight or of the update: at most lr for Adam's first step, lr·|g| for SGD).
                let own_rounding = match optimizer {
                    OptimizerKind::Sgd => t.abs() + g.abs() * lr,
                    OptimizerKind::Adam => t.abs() + lr,
                } * (4.0 * rounding::F32);
                let allowed = match optimizer {
                    OptimizerKind::Sgd => Tensor::full_like(g, lr * delta),
                    OptimizerKind::Adam => rounding::adam_first_step(g, delta, lr, 1e-8),
                } + own_rounding;
                let over = (p - &t).abs() - allowed;
                let worst = over.max().double_value(&[]);
                assert!(
                    worst <= 0.0,
                    "{model} copy {i}: {n} after step 0 exceeds its bound by {worst:e}"
                );
            }
            // The bound tells the copies apart: against another copy's gradients it fails by an
            // order of magnitude.
            let other = alone[(i + 1) % alone.len()].optimizer.grads();
            let apart = other
                .iter()
                .map(|(n, g)| relative(&grads.get(n).unwrap().select(0, i as i64), g, scale))
                .fold(0.0, f64::max);
            eprintln!(
                "{model} copy {i}: gradient difference {measured:e}, bound {gradient:e}, against another copy {apart:e}"
            );
            assert!(apart > 10.0 * gradient, "{model} copy {i}: {apart:e}");
        }

        for step in 1..5 {
            let _ = packed.step(step).unwrap();
            for a in &mut alone {
                let _ = a.session().step(step).unwrap();
            }
        }
        let evals = packed.evaluate(&data.eval.test).unwrap();
        for (i, a) in alone.iter().enumerate() {
            let view = packed.copy_state(i);
            let names: Vec<String> = a.model.parameters().into_iter().map(|(n, _)| n).collect();
            assert_same_trajectory(
                &format!("{model} copy {i} after 5 steps"),
                &names,
                &start[i],
                &a.model.state().into(),
                &view,
            );

            // Evaluation: the packed copy against its own weights evaluated alone.
            let mut own = Model::new(
                model,
                data.info.shape,
                data.info.num_classes,
                None,
                1,
                tch::Device::Cpu,
            )
            .unwrap();
            own.load_state(
                &view
                    .iter()
                    .map(|(n, t)| (n.clone(), t.copy()))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            let e = evaluate(&own, &data.eval.test).unwrap();
            let (mut close, mut largest, mut n) = (0i64, 0.0f64, 0i64);
            for b in data.eval.test.sequential(1000) {
                let logits = tch::no_grad(|| own.forward_t(&b.unwrap().x, false));
                largest = largest.max(logits.abs().max().double_value(&[]));
                let top = logits.topk(2, -1, true, true).0;
                let margin = top.select(1, 0) - top.select(1, 1);
                close += margin
                    .le(2.0 * forward * largest)
                    .sum(Kind::Int64)
                    .int64_value(&[]);
                n += margin.size()[0];
            }
            assert!(
                ((evals[i].accuracy - e.accuracy) * n as f64).abs() <= close as f64 + 1e-9,
                "{model} copy {i}: accuracy {} packed, {} alone, with {close} of {n} examples within rounding of a tie",
                evals[i].accuracy,
                e.accuracy
            );
            // Cross-entropy moves by at most twice its logits' largest change.
            assert!(
                (evals[i].loss - e.loss).abs() <= 2.0 * forward * largest,
                "{model} copy {i}: loss {} packed, {} alone",
                evals[i].loss,
                e.loss
            );
        }
    }
}

/// Under `--precision bf16` (autocast, as an unpacked session runs it) each packed copy takes the
/// step it takes alone, to the rounding of bfloat16 autocast in another order
/// (`Reductions::gradient_bound_bf16`: float32 sums whose results, stored in bfloat16, may round to
/// neighbouring values): the same gradient, the weights SGD gives from it, the running statistics,
/// and each copy's loss within twice its logits' largest change.
#[test]
fn bf16_packed_copies_train_as_they_would_alone() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let replicates = [1u64, 2, 5];
    for model in ["lenet_300_100", "cifar_resnet_20"] {
        let mut hp = hparams();
        hp.model.model = model.into();
        hp.training.precision = lth_train::Precision::Bf16;
        // SGD: Adam's first step is not Lipschitz at a zero gradient (see the test above).
        hp.training.optimizer = OptimizerKind::Sgd;
        let lr = 0.01;
        hp.training.lr = lr;
        hp.training.momentum = 0.9;
        let mut packed = PackedSetup::new(&hp, &replicates, &data).unwrap();
        assert!(packed.bf16);
        let mut alone: Vec<Setup> = replicates
            .iter()
            .map(|&r| Setup::new(&hp, r, &data).unwrap())
            .collect();
        let classes = data.info.num_classes as usize;
        let reductions = Reductions::of(&alone[0].model, hp.dataset.batch_size as usize, classes);
        let (forward, gradient) = (
            reductions.forward_bound_bf16(),
            reductions.gradient_bound_bf16(),
        );
        // The logits' scale at step 0, from a fresh copy of each W0 (its running statistics are
        // its own to change).
        let scales: Vec<f64> = alone
            .iter_mut()
            .zip(replicates)
            .map(|(a, r)| {
                let x = a.loader.batch(0).unwrap().x;
                let probe = Model::new(
                    model,
                    data.info.shape,
                    data.info.num_classes,
                    hp.model.init,
                    hp.init_seed(r),
                    tch::Device::Cpu,
                )
                .unwrap();
                let logits = tch::no_grad(|| {
                    lth_amp::autocast_bf16(tch::Device::Cpu, || probe.forward_t(&x, true))
                });
                logits.abs().max().double_value(&[])
            })
            .collect();
        let losses = packed.step(0).unwrap();
        let grads = packed.optimizer.grads();
        for (i, a) in alone.iter_mut().enumerate() {
            let loss = a.session().step(0).unwrap();
            let (l, p) = (loss.double_value(&[]), losses.double_value(&[i as i64]));
            assert!(
                (l - p).abs() <= 2.0 * forward * scales[i],
                "{model}: copy {i}: loss {p} packed, {l} alone"
            );
            let view = packed.copy_state(i);
            let own = a.optimizer.grads();
            let scale = gradient_scale(&own);
            let mut worst = (0.0f64, String::new());
            for (n, t) in a.model.state() {
                let w = view.get(&n).unwrap();
                let Some(g) = own.get(&n) else {
                    let d = relative(w, &t, 1.0);
                    assert!(d <= forward, "{model} bf16 copy {i}: {n} differs by {d:e}");
                    continue;
                };
                let gp = grads.get(&n).unwrap().select(0, i as i64);
                let d = relative(&gp, g, scale);
                assert!(
                    d <= gradient,
                    "{model} bf16 copy {i}: gradient of {n} differs by {d:e} > {gradient:e}"
                );
                if d > worst.0 {
                    worst = (d, n.clone());
                }
                let delta = lr * gradient * g.abs().max().double_value(&[]).max(scale);
                let over = ((w - &t).abs() - (t.abs() + g.abs() * lr) * (4.0 * rounding::F32))
                    .max()
                    .double_value(&[]);
                assert!(
                    over <= delta,
                    "{model} bf16 copy {i}: {n} moved {over:e} > {delta:e}"
                );
            }
            eprintln!(
                "{model} bf16 copy {i}: worst gradient difference {:e} ({}), bound {gradient:e}",
                worst.0, worst.1
            );
        }
    }
}

/// The weights a job starts from (its replicate's W0, another seed's, or given ones), masked as
/// its training keeps them.
fn start_of(hp: &lth_train::TrainHparams, data: &lth_train::Data, job: &lth_train::Job) -> Named {
    use lth_train::Start;
    let mut h = hp.clone();
    if let Start::Init(seed) = job.start {
        h.model.init_seed = Some(seed);
    }
    let mut w: Named = Setup::new(&h, job.replicate, data)
        .unwrap()
        .model
        .state()
        .into();
    match &job.start {
        Start::Weights(given) => w = given.copy(),
        Start::File(path) => w = lth_train::load_tensors(path).unwrap().into(),
        Start::W0 | Start::Init(_) => {}
    }
    match &job.mask {
        Some(m) => w.map(|n, t| match m.get(n) {
            Some(keep) => t * keep.to_kind(Kind::Float),
            None => t.copy(),
        }),
        None => w,
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
    // Each copy against its run alone: the same files, and the same trajectory.
    for (i, &r) in replicates.iter().enumerate() {
        let alone = RunDir::new(root.path().join(format!("alone_{r}")));
        let mut setup = Setup::new(&hp, r, &data).unwrap();
        let w0: Named = setup
            .model
            .state()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
        let names: Vec<String> = setup
            .model
            .parameters()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let summary = run_resumable(
            &alone,
            &mut setup,
            &plan,
            &mut lth_train::Hooks::none(),
            &mut (),
        )
        .unwrap();
        assert_eq!(alone.files().unwrap(), whole[i].files().unwrap());
        assert_eq!(summary.steps, expected[i].steps);
        let fin =
            |d: &RunDir| -> Named { load_tensors(&d.join("final.safetensors")).unwrap().into() };
        assert_same_trajectory(
            &format!("replicate {r} packed"),
            &names,
            &w0,
            &fin(&alone),
            &fin(&whole[i]),
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
    let names: Vec<String> = setup
        .model
        .parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for (i, (p, a)) in packed.iter().zip(&alone).enumerate() {
        assert_eq!(p.dir.files().unwrap(), a.dir.files().unwrap(), "job {i}");
        let (x, y): (Named, Named) = (fin(&p.dir).into(), fin(&a.dir).into());
        assert_same_trajectory(
            &format!("job {i} packed"),
            &names,
            &start_of(&hp, &data, a),
            &y,
            &x,
        );
        if let Some(m) = &p.mask {
            for (n, keep) in m.iter() {
                let pruned = x.get(n).unwrap().masked_select(&keep.logical_not());
                assert_eq!(pruned.abs().sum(tch::Kind::Float).double_value(&[]), 0.0);
            }
        }
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
    let names: Vec<String> = Setup::new(&hp, 1, &data)
        .unwrap()
        .model
        .parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for (i, (a, b)) in whole.iter().zip(&cut).enumerate() {
        let (x, y): (Named, Named) = (fin(&a.dir).into(), fin(&b.dir).into());
        // Steps 10–13 were trained packed and then again alone: the same steps in another
        // order of floating-point operations.
        assert_same_trajectory(
            &format!("job {i} resumed alone"),
            &names,
            &start_of(&hp, &data, a),
            &x,
            &y,
        );
        for (n, keep) in mask.iter() {
            let pruned = y.get(n).unwrap().masked_select(&keep.logical_not());
            assert_eq!(pruned.abs().sum(tch::Kind::Float).double_value(&[]), 0.0);
        }
        assert_eq!(
            (resumed[i].steps, resumed[i].final_test_accuracy.is_finite()),
            (expected[i].steps, true)
        );
        assert_eq!(a.dir.files().unwrap(), b.dir.files().unwrap());
    }
}
