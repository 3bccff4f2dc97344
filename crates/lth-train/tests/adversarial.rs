//! Adversarial training on generated MNIST-format data: every row of an adversarial run carries its
//! robust accuracy and a clean run's metrics keep their columns; the attack changes what is
//! trained; a run killed mid-way resumes bit-identically (the random starts are a function of
//! seed and step); and the evaluation attack finds adversarial examples of a trained network.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Crash, data, hparams};

use lth_store::{CsvLog, RunDir};
use lth_train::{
    AdversarialHparams, Adversary, Hooks, MetricsRow, RunPlan, Setup, TrainHparams, evaluate,
    load_tensors, run_resumable,
};

/// PGD-2 at ε = 0.3 with a random start, evaluated by PGD-3 on the first 50 test examples.
fn adversarial() -> TrainHparams {
    let mut hp = hparams();
    hp.training.adversarial = Some(AdversarialHparams::pgd(0.3, 2, 3, 50));
    hp
}

fn train(
    hp: &TrainHparams,
    dir: &RunDir,
    data: &lth_train::Data,
    progress: &mut dyn lth_train::Progress,
) {
    let mut setup = Setup::new(hp, 1, data).unwrap();
    let plan = RunPlan::whole(hp, data.iterations_per_epoch(hp.dataset.batch_size));
    run_resumable(dir, &mut setup, &plan, &mut Hooks::none(), progress).unwrap();
}

fn rows(dir: &RunDir) -> Vec<MetricsRow> {
    CsvLog::<MetricsRow>::new(dir.join(lth_train::METRICS))
        .load()
        .unwrap()
}

#[test]
fn an_adversarial_run_logs_robust_accuracy_changes_training_and_resumes_bit_identically() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let hp = adversarial();
    assert!(hp.training.adversarial.unwrap().random_start);
    let whole = RunDir::new(root.path().join("whole"));
    train(&hp, &whole, &data, &mut ());
    let log = rows(&whole);
    assert_eq!(log.len(), 7, "rows at 0, 5, …, 30");
    for r in &log {
        let a = r.robust_accuracy.unwrap();
        assert!((0.0..=1.0).contains(&a), "{r:?}");
    }
    // Killed at step 13 (checkpoint at 10): the random starts of steps 10-12 are drawn again, the
    // same, on resume.
    let cut = RunDir::new(root.path().join("cut"));
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train(&hp, &cut, &data, &mut Crash(13));
    }));
    assert!(crashed.is_err());
    train(&hp, &cut, &data, &mut ());
    assert_eq!(rows(&cut), log);
    let w = |d: &RunDir| load_tensors(&d.join(lth_train::FINAL)).unwrap();
    for ((n, a), (_, b)) in w(&whole).iter().zip(w(&cut).iter()) {
        assert!(a.equal(b), "{n} differs after resuming");
    }
    // The same recipe without the attack trains other weights, and its metrics file has the
    // columns it always had.
    let clean = RunDir::new(root.path().join("clean"));
    train(&hparams(), &clean, &data, &mut ());
    let header = std::fs::read_to_string(clean.join(lth_train::METRICS)).unwrap();
    assert_eq!(
        header.lines().next().unwrap(),
        "step,epoch,lr,train_loss,test_loss,test_accuracy,val_loss,val_accuracy"
    );
    assert!(rows(&clean).iter().all(|r| r.robust_accuracy.is_none()));
    let moved = w(&clean)
        .iter()
        .zip(w(&whole).iter())
        .any(|((_, a), (_, b))| !a.equal(b));
    assert!(moved, "the attack changed nothing in training");
}

/// A network trained cleanly is attackable: under PGD at ε = 0.3 (a third of the pixel range) it
/// classifies fewer of the test examples than it does clean, and a smaller ε costs less.
#[test]
fn the_evaluation_attack_lowers_the_accuracy_of_a_trained_network() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let hp = hparams();
    let dir = RunDir::new(root.path().join("clean"));
    train(&hp, &dir, &data, &mut ());
    let mut setup = Setup::new(&hp, 1, &data).unwrap();
    setup
        .model
        .load_state(&load_tensors(&dir.join(lth_train::FINAL)).unwrap())
        .unwrap();
    let test = &data.eval.test;
    let clean = evaluate(&setup.model, test).unwrap().accuracy;
    let robust = |eps: f64| {
        let adv = Adversary::new(
            AdversarialHparams::fgsm(eps, 10, test.len() as u64),
            data.info,
            tch::Device::Cpu,
            1,
        );
        adv.robust_accuracy(&setup.model, test).unwrap()
    };
    let (strong, weak) = (robust(0.3), robust(0.01));
    assert!(clean > 0.5, "the clean network learned the task: {clean}");
    assert!(strong < clean, "robust {strong} against clean {clean}");
    assert!(strong <= weak, "ε 0.3: {strong}, ε 0.01: {weak}");
}
