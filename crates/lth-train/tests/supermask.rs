//! Learned supermasks (Bernoulli with a straight-through estimator, edge-popup) on generated
//! MNIST-format data: the scores' gradient against autograd through a layer that multiplies its
//! kernel by a differentiable mask, frozen weights, edge-popup's per-layer counts, the
//! device-side draws against the host's, and exact resumption.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Crash, data, hparams};

use lth_models::Model;
use lth_store::RunDir;
use lth_train::Hook;
use lth_train::supermask::{hash_tensor, hash32, uniform_draw, uniform_draws};
use lth_train::{
    FrozenWeights, LearnedMask, Setup, StepContext, SupermaskHparams, SupermaskMethod,
    SupermaskRun, Update, load_tensors, train_supermask,
};
use tch::{Device, Kind, Tensor};

#[test]
fn device_draws_match_the_host_hash_and_are_uniform() {
    // 100,003: not a multiple of any vector width, so the scalar tails are compared too.
    let counters = Tensor::arange(100_003, (Kind::Int, Device::Cpu));
    let h = hash_tensor(&counters.bitwise_xor(0x1234_5678));
    for i in [0i32, 1, 2, 77, 65_535, 65_536, 100_000, 100_002] {
        assert_eq!(
            h.int64_value(&[i64::from(i)]),
            i64::from(hash32(i ^ 0x1234_5678)),
            "hash of {i}"
        );
    }
    for (seed, step) in [
        (1u64, 0u64),
        (7, 123_456),
        (u64::MAX, u64::from(u32::MAX) + 5),
    ] {
        let d = uniform_draws(seed, step, &counters);
        for i in [0i32, 3, 4_096, 100_002] {
            assert_eq!(
                d.int64_value(&[i64::from(i)]),
                i64::from(uniform_draw(seed, step, i))
            );
        }
        // 100,003 uniform draws: mean 1/2 ± 0.0009 (σ/√n), a quarter below 1/4.
        let u = d.to_kind(Kind::Double) / 16_777_216.0;
        let mean = u.mean(Kind::Double).double_value(&[]);
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        let below = u
            .lt(0.25)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        assert!((below - 0.25).abs() < 0.006, "P(u < 1/4) = {below}");
    }
    // Different steps draw differently.
    let a = uniform_draws(1, 0, &counters);
    let b = uniform_draws(1, 1, &counters);
    assert!(
        a.ne_tensor(&b)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
            > 0.99
    );
}

/// A LeNet with one hidden layer of 6 on 2×3 images, and a batch.
fn tiny() -> (Model, Tensor, Tensor) {
    tch::manual_seed(3);
    let model = Model::new("lenet_6", [1, 2, 3], 3, None, 5, Device::Cpu).unwrap();
    let x = Tensor::randn([8, 1, 2, 3], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1]);
    (model, x, y)
}

/// The reference: the network computed by hand with kernels w ⊙ m̃, where m̃ carries the mask's
/// value forward and the estimator's derivative backward (Zhou et al.: m + σ(s) − sg(σ(s));
/// edge-popup: m + |s| − sg(|s|)), and autograd takes ∂L/∂s.
fn reference_grads(
    model: &Model,
    frozen: &[(String, Tensor)],
    scores: &[(String, Tensor)],
    masks: &[(String, Tensor)],
    method: SupermaskMethod,
    x: &Tensor,
    y: &Tensor,
) -> Vec<Tensor> {
    let state = model.state();
    let get = |n: &str| state.iter().find(|(m, _)| m == n).unwrap().1.detach();
    let leaves: Vec<Tensor> = scores
        .iter()
        .map(|(_, s)| s.detach().copy().set_requires_grad(true))
        .collect();
    let kernel = |i: usize| {
        let s = &leaves[i];
        let through = match method {
            SupermaskMethod::Bernoulli => s.sigmoid(),
            SupermaskMethod::EdgePopup => s.abs(),
        };
        let m = &masks[i].1 + &through - through.detach();
        &frozen[i].1 * m
    };
    let h = x
        .flatten(1, -1)
        .linear(&kernel(0), Some(&get("fc_layers.0.bias")))
        .relu();
    let logits = h.linear(&kernel(1), Some(&get("fc.bias")));
    logits.cross_entropy_for_logits(y).backward();
    leaves.iter().map(Tensor::grad).collect()
}

#[test]
fn score_gradients_equal_autograd_through_a_masked_forward_pass() {
    for hp in [
        SupermaskHparams::new(SupermaskMethod::Bernoulli),
        SupermaskHparams::new(SupermaskMethod::EdgePopup),
        SupermaskHparams {
            weights: FrozenWeights::SignedConstant,
            ..SupermaskHparams::new(SupermaskMethod::Bernoulli)
        },
    ] {
        let (model, x, y) = tiny();
        let mut training = hparams().training;
        training.optimizer = lth_train::OptimizerKind::Sgd;
        training.momentum = 0.0;
        training.weight_decay = 0.0;
        // A large step, so that (s − s')/lr recovers the gradient well above f32 rounding of s.
        training.lr = 10.0;
        let schedule = lth_train::Schedule::new(&training, 10);
        let mut opt = lth_train::Optimizer::new(&training, &model);
        let mut hook = LearnedMask::new(&hp, &training, &model, schedule, 9).unwrap();
        // Bernoulli scores start at 0 (every p = 1/2); move them so σ' differs per weight.
        if hp.method == SupermaskMethod::Bernoulli {
            for (_, s) in hook.scores().iter() {
                tch::no_grad(|| s.shallow_clone().copy_(&Tensor::randn_like(s)));
            }
        }
        let frozen: Vec<_> = hook.frozen().into_vec();
        let scores: Vec<_> = hook.scores().copy().into_vec();
        let masks = hook.masks(4).unwrap();
        hook.apply(4, &opt.weights()).unwrap();
        let expected = reference_grads(&model, &frozen, &scores, &masks, hp.method, &x, &y);
        opt.zero_grad();
        model
            .forward_t(&x, true)
            .cross_entropy_for_logits(&y)
            .backward();
        opt.bind_grads();
        let before: Vec<Tensor> = model.parameters().iter().map(|(_, t)| t.copy()).collect();
        let mut ctx = StepContext {
            model: &model,
            optimizer: &mut opt,
        };
        // Plain SGD: s' = s − lr·∂L/∂s.
        let update = hook.after_backward(4, &mut ctx).unwrap();
        assert_eq!(
            update,
            Update::Skip,
            "the model's own update must be skipped"
        );
        let lr = lth_train::Schedule::new(&training, 10).lr_at(4);
        // Two orders of the same gradient's sums (`lth_models::rounding`), and the step's own
        // rounding of s on its scale, which (s − s')/lr divides by lr.
        let bound = lth_models::rounding::Reductions::of(&model, 8, 3).gradient_bound();
        for (i, (name, s_after)) in hook.scores().iter().enumerate() {
            let got = (&scores[i].1 - s_after) / lr;
            let diff = (&got - &expected[i]).abs().max().double_value(&[]);
            let scale = expected[i].abs().max().double_value(&[]);
            let step = 2.0 * lth_models::rounding::F32 * s_after.abs().max().double_value(&[]) / lr;
            assert!(scale > 0.0, "{name}: no gradient reached the scores");
            assert!(
                diff <= bound * scale + step,
                "{} {name}: |Δ| {diff} against max {scale} (bound {bound:e}, step {step:e})",
                hp.method
            );
        }
        for ((n, a), b) in model.parameters().iter().zip(&before) {
            assert!(a.equal(b), "{n} changed in after_backward");
        }
    }
}

#[test]
fn edge_popup_keeps_its_count_per_layer_and_every_weight_stays_frozen() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut hp = SupermaskHparams::new(SupermaskMethod::EdgePopup);
    hp.keep = Some(0.3);
    let run = SupermaskRun {
        train: hparams(),
        supermask: hp,
    };
    let dir = RunDir::new(root.path().join("ep"));
    let (summary, mask) = train_supermask(&dir, &run, 1, &data, &mut ()).unwrap();
    assert!(summary.steps > 0);
    let setup = Setup::new(&run.train, 1, &data).unwrap();
    let w0 = setup.model.state();
    let last = lth_models::Named::from(load_tensors(&dir.join("final.safetensors")).unwrap());
    let init = setup.model.init();
    for (name, m) in mask.iter() {
        let n = m.numel() as i64;
        let keep = n - ((1.0 - 0.3) * n as f64).floor() as i64;
        assert_eq!(m.sum(Kind::Int64).int64_value(&[]), keep, "{name}");
        let w = &w0.iter().find(|(k, _)| k == name).unwrap().1;
        let signed = init.signed_constant(w);
        let f = last.get(name).unwrap();
        let expected = signed * m.to_kind(Kind::Float);
        assert!(
            f.equal(&expected),
            "{name}: not signed constants under the mask"
        );
    }
    for (name, t) in &w0 {
        if !mask.iter().any(|(n, _)| n == name) {
            assert!(last.get(name).unwrap().equal(t), "{name} trained");
        }
    }
    // The learned mask is not the initial one: the scores moved.
    let mut hook = LearnedMask::new(
        &run.supermask,
        &run.train.training,
        &setup.model,
        setup.schedule.clone(),
        run.train.init_seed(1),
    )
    .unwrap();
    let first = hook.masks(0).unwrap();
    let changed: i64 = first
        .iter()
        .map(|(n, m)| {
            m.ne_tensor(&mask.get(n).unwrap().to_kind(Kind::Float))
                .sum(Kind::Int64)
                .int64_value(&[])
        })
        .sum();
    assert!(changed > 0, "training changed no mask entry");
}

#[test]
fn bernoulli_runs_learn_above_chance_and_resume_bit_identically() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut train = hparams();
    train.training.optimizer = lth_train::OptimizerKind::Sgd;
    train.training.lr = 100.0;
    train.training.momentum = 0.9;
    let run = SupermaskRun {
        train,
        supermask: SupermaskHparams::new(SupermaskMethod::Bernoulli),
    };
    let whole = RunDir::new(root.path().join("whole"));
    let cut = RunDir::new(root.path().join("cut"));
    let (expected, mask) = train_supermask(&whole, &run, 1, &data, &mut ()).unwrap();
    // Ten classes of a separable generated task: chance is 10%.
    assert!(
        expected.final_test_accuracy > 0.3,
        "accuracy {}",
        expected.final_test_accuracy
    );
    let density = mask.density();
    assert!(density > 0.05 && density < 0.95, "density {density}");
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train_supermask(&cut, &run, 1, &data, &mut Crash(13)).unwrap();
    }));
    assert!(crashed.is_err());
    let (resumed, resumed_mask) = train_supermask(&cut, &run, 1, &data, &mut ()).unwrap();
    assert_eq!(resumed, expected);
    for ((n, a), (_, b)) in mask.iter().zip(resumed_mask.iter()) {
        assert!(a.equal(b), "mask of {n} differs after resuming");
    }
    let w = |d: &RunDir| load_tensors(&d.join("final.safetensors")).unwrap();
    for ((n1, t1), (_, t2)) in w(&whole).iter().zip(w(&cut).iter()) {
        assert!(t1.equal(t2), "{n1} differs after resuming");
    }
    let saved = lth_prune::Mask::load(&whole.join("mask.safetensors")).unwrap();
    assert_eq!(saved.kept(), mask.kept());
}

/// Every family shares the mechanism: on convolutional networks with and without BatchNorm, a
/// step trains the scores only, the kernels hold the frozen values under the next step's mask,
/// and biases and BatchNorm's affine parameters keep their values.
/// One training step of the scores on the batch (x, y), as the session runs it: backward, the
/// hook's update of the scores, and the next step's mask into the kernels.
fn train_step(
    model: &Model,
    opt: &mut lth_train::Optimizer,
    hook: &mut LearnedMask,
    step: u64,
    x: &Tensor,
    y: &Tensor,
) -> Update {
    opt.zero_grad();
    model
        .forward_t(x, true)
        .cross_entropy_for_logits(y)
        .backward();
    opt.bind_grads();
    let mut ctx = StepContext {
        model,
        optimizer: opt,
    };
    let update = hook.after_backward(step, &mut ctx).unwrap();
    hook.after_step(step, &mut ctx).unwrap();
    update
}

#[test]
fn convolutional_families_train_scores_and_nothing_else() {
    for (name, method) in [
        ("conv_2", SupermaskMethod::EdgePopup),
        ("cifar_resnet_8", SupermaskMethod::Bernoulli),
        ("cifar_vgg_11", SupermaskMethod::EdgePopup),
    ] {
        tch::manual_seed(1);
        let model = Model::new(name, [3, 32, 32], 10, None, 2, Device::Cpu).unwrap();
        let mut training = hparams().training;
        training.optimizer = lth_train::OptimizerKind::Sgd;
        training.momentum = 0.9;
        training.lr = 0.1;
        let mut opt = lth_train::Optimizer::new(&training, &model);
        let schedule = lth_train::Schedule::new(&training, 10);
        let hp = SupermaskHparams::new(method);
        let mut hook = LearnedMask::new(&hp, &training, &model, schedule, 4).unwrap();
        hook.apply(0, &opt.weights()).unwrap();
        let frozen = hook.frozen();
        let scores0 = hook.scores().copy();
        let others: Vec<(String, Tensor)> = model
            .parameters()
            .into_iter()
            .filter(|(n, _)| frozen.get(n).is_none())
            .map(|(n, t)| (n, t.copy()))
            .collect();
        assert!(
            !others.is_empty(),
            "{name}: no biases or BatchNorm parameters"
        );
        let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[1i64, 2, 3, 4]);
        for step in 0..2 {
            assert_eq!(
                train_step(&model, &mut opt, &mut hook, step, &x, &y),
                Update::Skip
            );
        }
        let masks = hook.masks(2).unwrap();
        for (n, w) in model.prunable_tensors() {
            let m = masks
                .iter()
                .find(|(k, _)| *k == n)
                .unwrap()
                .1
                .shallow_clone();
            assert!(
                w.equal(&(frozen.get(&n).unwrap() * m)),
                "{name}: {n} is not w ⊙ m"
            );
        }
        for (n, before) in &others {
            let now = model
                .parameters()
                .into_iter()
                .find(|(k, _)| k == n)
                .unwrap()
                .1;
            assert!(now.equal(before), "{name}: {n} trained");
        }
        let moved = hook
            .scores()
            .iter()
            .filter(|(n, s)| !s.equal(scores0.get(n).unwrap()))
            .count();
        assert_eq!(
            moved,
            frozen.len(),
            "{name}: not every layer's scores moved"
        );
    }
}

/// On the CPU the masks and the scores' gradients come from `lth_kernels`' fused passes; CUDA runs
/// the chains of libtorch operations they replace. The two must give the same bits: the same
/// masks, kernels and scores after every step of a LeNet-300-100 (whose 235,200-weight first layer
/// makes edge-popup's threshold search run in its window as well as over every score).
#[test]
fn fused_kernels_give_the_bits_of_the_chained_operations() {
    let mut edge = SupermaskHparams::new(SupermaskMethod::EdgePopup);
    edge.keep = Some(0.3);
    // The scores' optimisers: SGD with momentum (both references'), where the gradient is fused
    // into the update; with weight decay and Nesterov; without momentum; and Adam, which takes
    // the unfused update after the fused gradient. The learning rates are large enough that
    // every layer's mask changes within the six steps.
    use lth_train::OptimizerKind::{Adam, Sgd};
    let optimisers = [
        (Sgd, 0.9, 0.0, false, 5.0),
        (Sgd, 0.9, 5e-4, true, 5.0),
        (Sgd, 0.0, 1e-4, false, 20.0),
        (Adam, 0.0, 0.0, false, 0.05),
    ];
    let hps = [SupermaskHparams::new(SupermaskMethod::Bernoulli), edge];
    for (hp, (optimizer, momentum, weight_decay, nesterov, lr)) in hps
        .iter()
        .flat_map(|hp| optimisers.iter().map(move |o| (hp, *o)))
    {
        let mut training = hparams().training;
        training.optimizer = optimizer;
        training.momentum = momentum;
        training.weight_decay = weight_decay;
        training.nesterov = nesterov;
        training.lr = lr;
        let build = |fused: bool| {
            let model = Model::new("lenet_300_100", [1, 28, 28], 10, None, 7, Device::Cpu).unwrap();
            let opt = lth_train::Optimizer::new(&training, &model);
            let schedule = lth_train::Schedule::new(&training, 10);
            let mut hook = LearnedMask::new(hp, &training, &model, schedule, 5).unwrap();
            hook.set_fused(fused).unwrap();
            hook.apply(0, &opt.weights()).unwrap();
            (model, opt, hook)
        };
        let (mut a, mut b) = (build(true), build(false));
        let first = a.2.masks(1).unwrap();
        tch::manual_seed(8);
        let x = Tensor::randn([32, 1, 28, 28], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [32], (Kind::Int64, Device::Cpu));
        for step in 0..6 {
            for (model, opt, hook) in [&mut a, &mut b] {
                train_step(model, opt, hook, step, &x, &y);
            }
            let what = format!("{} under {optimizer:?} step {step}", hp.method);
            // The scores and the optimiser's buffers.
            let (sa, sb) = (a.2.state(), b.2.state());
            assert_eq!(sa.len(), sb.len());
            for ((n, s), (_, t)) in sa.iter().zip(sb.iter()) {
                assert!(s.equal(t), "{what}: {n} differs");
            }
            for ((n, s), (_, t)) in a.0.prunable_tensors().iter().zip(b.0.prunable_tensors()) {
                assert!(s.equal(&t), "{what}: kernel {n} differs");
            }
            let (ma, mb) = (a.2.masks(step + 1).unwrap(), b.2.masks(step + 1).unwrap());
            for ((n, s), (_, t)) in ma.iter().zip(&mb) {
                assert!(s.equal(t), "{what}: mask of {n} differs");
            }
            // The scores moved and the masks with them (the comparison is not of frozen states).
            if step == 5 {
                for ((n, now), (_, then)) in ma.iter().zip(&first) {
                    let changed = now.ne_tensor(then).sum(Kind::Int64).int64_value(&[]);
                    assert!(changed > 0, "{what}: the mask of {n} never changed");
                }
            }
        }
    }
}
