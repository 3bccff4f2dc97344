//! The Early-Bird hook in a real training: network slimming's gradient term, emergence with its
//! saved ticket, stopping, and a killed run resuming to the same distances.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Crash, data};
use lth_models::load_tensors;
use lth_store::RunDir;
use lth_train::early_bird::{Slimming, ticket_files};
use lth_train::{
    EarlyBird, EarlyBirdHparams, Hooks, OptimizerKind, Setup, Steps, TrainHparams, run_resumable,
};
use tch::Kind;

/// A CIFAR ResNet-8 (BatchNorm in every block) on the generated 28×28 task, plain SGD so one step
/// is a closed form: 10 steps per epoch, `epochs` epochs, evaluated every epoch.
fn hparams(epochs: u64) -> TrainHparams {
    let mut hp = common::hparams();
    hp.model.model = "cifar_resnet_8".into();
    hp.training.optimizer = OptimizerKind::Sgd;
    hp.training.lr = 0.05;
    hp.training.momentum = 0.0;
    hp.training.weight_decay = 0.0;
    hp.training.steps = Steps::ep(epochs);
    hp.training.eval_every = Steps::ep(1);
    hp
}

fn gammas(setup: &Setup) -> Vec<(String, tch::Tensor)> {
    setup
        .model
        .batchnorm_scales()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect()
}

#[test]
fn slimming_adds_s_sign_gamma_to_the_scales_gradients() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let hp = hparams(1);
    let s = 0.01;
    let mut after = Vec::new();
    for slimming in [0.0, s] {
        let mut setup = Setup::new(&hp, 1, &data).unwrap();
        let before = gammas(&setup);
        let mut plan = setup.plan(&hp);
        plan.to = 1;
        let mut hook = Slimming(slimming);
        let mut hooks = Hooks::new(vec![&mut hook]).unwrap();
        let dir = RunDir::new(root.path().join(format!("one_step_{slimming}")));
        run_resumable(&dir, &mut setup, &plan, &mut hooks, &mut ()).unwrap();
        after.push((before, gammas(&setup)));
    }
    // One SGD step: γ₁ = γ₀ − lr·(g + s·sign γ₀), so the runs differ by lr·s·sign γ₀, up to
    // rounding: both runs compute the same gradient g (the same operations in one process), and
    // each rounds g + s·sign γ₀, the product by lr and the subtraction once, on the scales of g and γ.
    let ((g0, plain), (_, slim)) = (&after[0], &after[1]);
    assert!(!g0.is_empty());
    for (((name, g0), (_, a)), (_, b)) in g0.iter().zip(plain).zip(slim) {
        let expected = g0.sign() * (-0.05 * s);
        let diff = (b - a - expected).abs().max().double_value(&[]);
        let gamma = a
            .abs()
            .max()
            .double_value(&[])
            .max(b.abs().max().double_value(&[]));
        // lr·|g| is the plain run's own move, γ₁ − γ₀.
        let moved = (a - g0).abs().max().double_value(&[]);
        let bound = 4.0 * lth_models::rounding::F32 * (gamma + moved + 0.05 * s);
        assert!(diff <= bound, "{name}: off by {diff} > {bound}");
    }
}

#[test]
fn a_ticket_emerges_is_saved_stops_training_and_a_killed_run_resumes_to_the_same_distances() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let hp = hparams(12);
    // ε = 1 accepts any window: every ratio's ticket emerges as soon as its FIFO is full, at the
    // start of epoch window − 1 = 4, i.e. after 40 steps; training stops at that evaluation.
    let eb = EarlyBirdHparams {
        epsilon: 1.0,
        stop: true,
        ..Default::default()
    };
    let run = |name: &str, crash: Option<u64>| {
        let mut setup = Setup::new(&hp, 1, &data).unwrap();
        let plan = setup.plan(&hp);
        let out = root.path().join(name);
        std::fs::create_dir_all(&out).unwrap();
        let dir = RunDir::new(out.join("run"));
        let mut hook = EarlyBird::new(&eb, 10, plan.to, Some(out.clone())).unwrap();
        let result = {
            let mut hooks = Hooks::new(vec![&mut hook]).unwrap();
            match crash {
                Some(at) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_resumable(&dir, &mut setup, &plan, &mut hooks, &mut Crash(at))
                }))
                .ok()
                .map(|r| r.unwrap()),
                None => Some(run_resumable(&dir, &mut setup, &plan, &mut hooks, &mut ()).unwrap()),
            }
        };
        (hook, result, out)
    };
    let (hook, summary, out) = run("whole", None);
    assert_eq!(
        hook.emerged(),
        vec![(0.3, Some(4)), (0.5, Some(4)), (0.7, Some(4))]
    );
    assert_eq!(
        summary.unwrap().steps,
        40,
        "training stops at the emergence"
    );
    // Distances from epoch 4 (the first full window), one per ratio.
    assert_eq!(hook.rows().len(), 3);
    let (weights, channels) = ticket_files(0.5);
    let saved = load_tensors(&out.join(weights)).unwrap();
    assert!(saved.iter().any(|(n, _)| n == "blocks.0.bn1.running_mean"));
    let mask = lth_prune::Mask::load(&out.join(channels)).unwrap();
    let kept = mask.kept() as f64 / mask.total() as f64;
    assert!(
        (0.45..=0.5).contains(&kept),
        "p = 0.5 keeps about half: {kept}"
    );

    // Killed at step 25 (a checkpoint at 20 holds the FIFO of epochs 0–2), then resumed.
    let (_, crashed, killed) = run("killed", Some(25));
    assert!(crashed.is_none());
    let checkpoints: Vec<String> = std::fs::read_dir(killed.join("run/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        checkpoints.iter().any(|c| c.starts_with("resume_20")),
        "the resumed run starts from a checkpoint: {checkpoints:?}"
    );
    let (resumed, _, out2) = run("killed", None);
    assert_eq!(resumed.rows(), hook.rows());
    assert_eq!(resumed.emerged(), hook.emerged());
    let a = load_tensors(&out.join(ticket_files(0.3).0)).unwrap();
    let b = load_tensors(&out2.join(ticket_files(0.3).0)).unwrap();
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x.to_kind(Kind::Double).equal(&y.to_kind(Kind::Double)),
            "{n}"
        );
    }
}

#[test]
fn a_search_writes_its_emergence_and_its_tickets_retrain_narrow() {
    use lth_train::early_bird::{EMERGENCE_FILE, EmergenceRow, Retrain, retrain, search};
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let run = lth_train::EarlyBirdRun {
        train: hparams(5),
        early_bird: EarlyBirdHparams {
            ratios: vec![0.5],
            epsilon: 1.0,
            ..Default::default()
        },
    };
    let dir = RunDir::new(root.path().join("search"));
    let (summary, emerged) = search(&dir, &run, 1, &data, &mut ()).unwrap();
    assert_eq!(
        summary.steps, 50,
        "without --eb-stop training goes on to the end"
    );
    assert_eq!(emerged.len(), 1);
    assert_eq!(emerged[0].epoch, Some(4));
    let kept = emerged[0].channels_kept.unwrap();
    assert!((0.45..=0.55).contains(&kept), "{kept}");
    // Done: a second call trains nothing and reads the same file.
    let again = search(&dir, &run, 1, &data, &mut ()).unwrap().1;
    assert_eq!(again, emerged);
    let on_disk = lth_store::CsvLog::<EmergenceRow>::new(dir.join(EMERGENCE_FILE))
        .load()
        .unwrap();
    assert_eq!(on_disk, emerged);
    let mut names = Vec::new();
    for how in Retrain::ALL {
        let (s, name) = retrain(&dir, &run, 0.5, how, 1, &data, &mut ()).unwrap();
        assert_eq!(s.steps, 50, "both end where the schedule ends");
        assert!(name.starts_with("cifar_resnet_8:channels="), "{name}");
        names.push(name);
    }
    assert_eq!(
        names[0], names[1],
        "both retrain the same narrow architecture"
    );
    let first_step = |how: &str| {
        lth_store::CsvLog::<lth_train::MetricsRow>::new(
            dir.child(format!("retrain_0.5_{how}"))
                .join(lth_train::METRICS),
        )
        .load()
        .unwrap()[0]
            .step
    };
    assert_eq!(
        first_step("eb"),
        40,
        "EB Train continues from the emergence epoch"
    );
    assert_eq!(first_step("scratch"), 0);
    let e = retrain(&dir, &run, 0.7, Retrain::EarlyBird, 1, &data, &mut ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no Early-Bird ticket at ratio 0.7"), "{e}");
    // A network without BatchNorm is refused before it trains.
    let mut lenet = run.clone();
    lenet.train.model.model = "lenet_300_100".into();
    let e = search(
        &RunDir::new(root.path().join("lenet")),
        &lenet,
        1,
        &data,
        &mut (),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("channel pruning"), "{e}");
    assert!(!root.path().join("lenet").exists());
}
