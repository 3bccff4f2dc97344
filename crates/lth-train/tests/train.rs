//! Training on generated MNIST-format data: learning, determinism, masking, and exact resumption.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Crash, data, hparams};

use lth_store::RunDir;
use lth_train::{
    Data, DeviceChoice, Hooks, OptimizerKind, Progress, RunSummary, Setup, TrainHparams,
    load_tensors, resolve_device, run_resumable,
};
use tch::{Device, Kind, Tensor};

/// The test recipe with `optimizer`; SGD with Nesterov momentum and weight decay.
fn with_optimizer(optimizer: OptimizerKind) -> TrainHparams {
    let mut hp = hparams();
    hp.training.optimizer = optimizer;
    if optimizer == OptimizerKind::Sgd {
        (hp.training.lr, hp.training.momentum, hp.training.nesterov) = (0.05, 0.9, true);
        hp.training.weight_decay = 1e-4;
    }
    hp
}

fn train(dir: &RunDir, data: &Data, hp: &TrainHparams, progress: &mut dyn Progress) -> RunSummary {
    let mut setup = Setup::new(hp, 1, data).unwrap();
    let plan = setup.plan(hp);
    run_resumable(dir, &mut setup, &plan, &mut Hooks::none(), progress).unwrap()
}

#[test]
fn learns_and_same_seeds_give_identical_metrics() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let hp = hparams();
    let (a, b) = (
        RunDir::new(root.path().join("a")),
        RunDir::new(root.path().join("b")),
    );
    let sa = train(&a, &data, &hp, &mut ());
    let sb = train(&b, &data, &hp, &mut ());
    assert!(sa.final_test_accuracy > 0.5, "{sa:?}");
    assert_eq!(sa.steps, 30, "500 examples / 50 = 10 steps per epoch");
    assert_eq!(sa, sb);
    let read = |d: &RunDir| std::fs::read(d.join("metrics.csv")).unwrap();
    assert_eq!(read(&a), read(&b));
    assert!(sa.min_val_loss_step.is_some());
    // A finished run is not retrained: the second call returns the stored summary at once.
    let again = train(&a, &data, &hp, &mut ());
    assert_eq!(again, sa);
}

/// Panics at a chosen step, as a kill would stop the process there.

#[test]
fn an_interrupted_run_resumes_to_the_same_numbers() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    for optimizer in [OptimizerKind::Adam, OptimizerKind::Sgd] {
        let hp = with_optimizer(optimizer);
        let whole = RunDir::new(root.path().join(format!("whole-{optimizer:?}")));
        let cut = RunDir::new(root.path().join(format!("cut-{optimizer:?}")));
        let expected = train(&whole, &data, &hp, &mut ());
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            train(&cut, &data, &hp, &mut Crash(13));
        }));
        assert!(crashed.is_err());
        assert!(!cut.is_done().unwrap());
        let resumed = train(&cut, &data, &hp, &mut ());
        assert_eq!(resumed, expected, "{optimizer:?}");
        let read = |d: &RunDir| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
        assert_eq!(read(&cut), read(&whole));
        let w = |d: &RunDir| load_tensors(&d.join("final.safetensors")).unwrap();
        for ((n1, t1), (n2, t2)) in w(&whole).iter().zip(w(&cut).iter()) {
            assert_eq!(n1, n2);
            assert!(t1.equal(t2), "{n1} differs after resuming");
        }
    }
}

#[test]
fn pruned_weights_and_their_optimizer_state_stay_zero() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    for optimizer in [OptimizerKind::Adam, OptimizerKind::Sgd] {
        let hp = with_optimizer(optimizer);
        let mut setup = Setup::new(&hp, 1, &data).unwrap();
        let masks: Vec<(String, Tensor)> = setup
            .model
            .prunable_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.rand_like().ge(0.5)))
            .collect();
        let mask = lth_prune::Mask::from_named(
            masks
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone()))
                .collect(),
        )
        .unwrap();
        setup.optimizer.set_mask(&mask).unwrap();
        let mut session = setup.session();
        for step in 0..20 {
            let _ = session.step(step).unwrap();
        }
        let params = setup.model.state();
        let state = setup.optimizer.state();
        for (name, mask) in &masks {
            let pruned = mask.logical_not();
            let p = &params.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(
                p.masked_select(&pruned)
                    .abs()
                    .sum(Kind::Float)
                    .double_value(&[]),
                0.0
            );
            let buffers = state
                .iter()
                .filter(|(k, _)| k.contains(name.as_str()) && !k.starts_with("optimizer.mask."));
            for (key, buf) in buffers {
                let revived = buf
                    .masked_select(&pruned)
                    .abs()
                    .sum(Kind::Float)
                    .double_value(&[]);
                assert_eq!(revived, 0.0, "{key} revived pruned entries");
            }
            let kept = p
                .masked_select(mask)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]);
            assert!(kept > 0.0);
        }
    }
}

#[test]
fn cpu_device_resolves() {
    assert_eq!(resolve_device(DeviceChoice::Cpu).unwrap(), Device::Cpu);
}

/// A hook that rewires the mask during training, RigL-like: every `every` steps each layer drops
/// its 10% smallest kept weights and regrows as many pruned ones, those of largest gradient
/// magnitude accumulated since the start (state that must survive a resume). It stops training
/// at `stop_at` steps.
struct Rewire {
    every: u64,
    stop_at: u64,
    acc: lth_models::Named,
    updates: i64,
}

impl Rewire {
    fn new() -> Rewire {
        Rewire {
            every: 7,
            stop_at: 25,
            acc: lth_models::Named::new(),
            updates: 0,
        }
    }
}

impl lth_train::Hook for Rewire {
    fn name(&self) -> &str {
        "rewire"
    }

    fn after_backward(
        &mut self,
        _step: u64,
        ctx: &mut lth_train::StepContext<'_>,
    ) -> lth_train::Result<lth_train::Update> {
        let opt = &ctx.optimizer;
        let names: Vec<String> = opt.mask().unwrap().names().map(str::to_owned).collect();
        for name in names {
            let g = opt.grad(&name).unwrap().abs();
            let sum = match self.acc.get(&name) {
                Some(a) => a + g,
                None => g,
            };
            self.acc.insert(name, sum);
        }
        Ok(lth_train::Update::Apply)
    }

    fn after_step(
        &mut self,
        step: u64,
        ctx: &mut lth_train::StepContext<'_>,
    ) -> lth_train::Result<()> {
        if !(step + 1).is_multiple_of(self.every) {
            return Ok(());
        }
        let mask = ctx.optimizer.mask().unwrap().clone();
        let weights = ctx.optimizer.weights();
        let dropped = lth_prune::magnitude_layerwise(&weights, &mask, |_, _| 0.1).unwrap();
        let mut grown = Vec::new();
        let mut next = Vec::new();
        for (name, m) in dropped.iter() {
            let k = mask.get(name).unwrap().sum(Kind::Int64).int64_value(&[])
                - m.sum(Kind::Int64).int64_value(&[]);
            let cand = self
                .acc
                .get(name)
                .unwrap()
                .masked_fill(m, f64::NEG_INFINITY);
            let (_, idx) = cand.flatten(0, -1).topk(k, 0, true, true);
            let mut g = Tensor::zeros([m.numel() as i64], (Kind::Bool, m.device()));
            let _ = g.index_fill_(0, &idx, 1);
            let g = g.view(m.size().as_slice());
            next.push((name.to_owned(), m.logical_or(&g)));
            grown.push((name.to_owned(), g));
        }
        let next = lth_prune::Mask::from_named(next).unwrap();
        ctx.optimizer.set_mask(&next)?;
        ctx.optimizer
            .reset_state(&lth_prune::Mask::from_named(grown).unwrap())?;
        self.updates += 1;
        Ok(())
    }

    fn on_eval(
        &mut self,
        row: &lth_train::MetricsRow,
        _ctx: &mut lth_train::StepContext<'_>,
    ) -> lth_train::Result<lth_train::Control> {
        Ok(if row.step >= self.stop_at {
            lth_train::Control::Stop
        } else {
            lth_train::Control::Continue
        })
    }

    fn state(&self) -> lth_models::Named {
        let mut s = self.acc.prefixed("acc.");
        s.insert("updates", Tensor::from_slice(&[self.updates]));
        s
    }

    fn load_state(&mut self, state: &lth_models::Named) -> lth_train::Result<()> {
        self.acc = state.strip_prefix("acc.").copy();
        self.updates = state.get("updates").unwrap().int64_value(&[0]);
        Ok(())
    }
}

/// A random half of every layer.
fn start_mask(setup: &Setup) -> lth_prune::Mask {
    let w = setup.model.prunable_tensors();
    let half = lth_prune::magnitude_layerwise(&w, &lth_prune::Mask::ones(&w), |_, _| 0.5).unwrap();
    lth_prune::random_like(&half, 9)
}

/// Trains with the rewiring hook from a fixed random half mask; returns the summary, the final
/// mask and the number of rewirings.
fn train_rewired(
    dir: &RunDir,
    data: &Data,
    hp: &TrainHparams,
    progress: &mut dyn Progress,
) -> (RunSummary, lth_prune::Mask, i64) {
    let mut setup = Setup::new(hp, 1, data).unwrap();
    setup.optimizer.set_mask(&start_mask(&setup)).unwrap();
    let plan = setup.plan(hp);
    let mut hook = Rewire::new();
    let mut hooks = Hooks::new(vec![&mut hook]).unwrap();
    let summary = run_resumable(dir, &mut setup, &plan, &mut hooks, progress).unwrap();
    drop(hooks);
    (
        summary,
        setup.optimizer.mask().unwrap().clone(),
        hook.updates,
    )
}

#[test]
fn a_run_whose_mask_changes_resumes_bit_identically() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let hp = with_optimizer(OptimizerKind::Sgd);
    let whole = RunDir::new(root.path().join("whole"));
    let cut = RunDir::new(root.path().join("cut"));
    let (expected, mask, updates) = train_rewired(&whole, &data, &hp, &mut ());
    // The hook stopped the run at 25 of 30 steps, after rewiring at steps 7, 14 and 21.
    assert_eq!(expected.steps, 25);
    assert_eq!(updates, 3);
    assert_eq!(mask.kept(), mask.total() / 2, "rewiring keeps the count");
    let start = start_mask(&Setup::new(&hp, 1, &data).unwrap());
    let moved: i64 = mask
        .iter()
        .map(|(n, m)| {
            m.logical_xor(start.get(n).unwrap())
                .sum(Kind::Int64)
                .int64_value(&[])
        })
        .sum();
    assert!(moved > 0, "the hook rewired nothing");
    // Killed after step 19: the checkpoint of step 15 holds the mask of step 14's rewiring and
    // the accumulated gradients.
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train_rewired(&cut, &data, &hp, &mut Crash(19));
    }));
    assert!(crashed.is_err());
    assert!(!cut.is_done().unwrap());
    let (resumed, resumed_mask, _) = train_rewired(&cut, &data, &hp, &mut ());
    assert_eq!(resumed, expected);
    for ((n, a), (_, b)) in mask.iter().zip(resumed_mask.iter()) {
        assert!(a.equal(b), "mask of {n} differs after resuming");
    }
    let read = |d: &RunDir| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    assert_eq!(read(&cut), read(&whole));
    let w = |d: &RunDir| load_tensors(&d.join("final.safetensors")).unwrap();
    for ((n1, t1), (n2, t2)) in w(&whole).iter().zip(w(&cut).iter()) {
        assert_eq!(n1, n2);
        assert!(t1.equal(t2), "{n1} differs after resuming");
    }
}

/// The W0 that measurements without training use is the one training starts from: `--bn-init`
/// included (SynFlow's collapse measured a W0 without it before `initial_model` was shared).
#[test]
fn the_initial_model_is_the_one_training_starts_from() {
    let mut hp = TrainHparams::recipe("cifar_vgg_11:channels=4,4,8,8,8,8,8,8").unwrap();
    hp.dataset.dataset = "fashion-mnist".into();
    hp.dataset.augment = false;
    hp.model.bn_init = Some(0.5);
    let info = lth_data::info("fashion-mnist").unwrap();
    let model = lth_train::initial_model(&hp, 3, info, Device::Cpu).unwrap();
    let scales = model.batchnorm_scales();
    assert!(!scales.is_empty());
    for (name, t) in &scales {
        assert!(
            t.eq(0.5).all().int64_value(&[]) == 1,
            "{name} is not at --bn-init"
        );
    }
    // Without --bn-init, the family's draw: not all one value.
    hp.model.bn_init = None;
    let drawn = lth_train::initial_model(&hp, 3, info, Device::Cpu).unwrap();
    let (_, first) = &drawn.batchnorm_scales()[0];
    assert!(first.std(false).double_value(&[]) > 0.0);
}
