//! Training on generated MNIST-format data: learning, determinism, masking, and exact resumption.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use lth_store::RunDir;
use lth_train::{
    Data, DeviceChoice, Masking, OptimizerKind, Progress, RunSummary, Setup, Steps, TrainHparams,
    load_tensors, resolve_device, run_resumable,
};
use tch::{Device, Kind, Tensor};

fn data(root: &Path) -> Data {
    lth_data::testutil::write_mnist_like(&root.join("mnist"), 600, 200, true).unwrap();
    Data::load(&hparams().dataset, root, Device::Cpu).unwrap()
}

fn hparams() -> TrainHparams {
    let mut hp = TrainHparams::recipe("lenet_300_100").unwrap();
    hp.dataset.validation = 100;
    hp.dataset.batch_size = 50;
    hp.training.steps = Steps::ep(3);
    hp.training.eval_every = Steps::it(5);
    hp
}

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
    run_resumable(dir, &mut setup, &plan, progress).unwrap()
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
struct Crash(u64);

impl Progress for Crash {
    fn step(&mut self, step: u64) {
        assert!(step != self.0, "simulated crash at step {step}");
    }
}

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
        assert!(!cut.is_done());
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
        let masking = Masking::new(&setup.model, &masks).unwrap();
        setup.optimizer.set_masking(&masking).unwrap();
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
            for (key, buf) in state.iter().filter(|(k, _)| k.contains(name.as_str())) {
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
