//! Tickets moved to another dataset or optimiser (transfer) and another depth (Elastic LTH), on
//! generated MNIST-format data.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use lth_lottery::{
    Lottery, LotteryHparams, OptimizerRecipe, Output, Planted, Transplant, TransplantHparams,
};
use lth_prune::Mask;
use lth_store::Store;
use lth_train::{Data, DatasetHparams, OptimizerKind, Steps};
use tch::{Device, Kind, Tensor};

fn hparams(model: &str, dataset: &str) -> LotteryHparams {
    let mut hp = LotteryHparams::recipe(model).unwrap();
    hp.train.dataset.dataset = dataset.into();
    hp.train.dataset.validation = 50;
    hp.train.dataset.batch_size = 50;
    hp.train.dataset.augment = false;
    hp.train.training.steps = Steps::ep(2);
    hp.train.training.eval_every = Steps::it(5);
    hp.train.training.milestones = Vec::new();
    hp.rewind = Steps::it(4);
    hp
}

fn load(root: &Path, dataset: &str) -> Data {
    if !root.join("mnist").exists() {
        lth_data::testutil::write_mnist_like(&root.join("mnist"), 1000, 200, true).unwrap();
    }
    let hp = DatasetHparams {
        dataset: dataset.into(),
        validation: 50,
        ..hparams("lenet_300_100", dataset).train.dataset
    };
    Data::load(&hp, root, Device::Cpu).unwrap()
}

fn named<'a>(state: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &state.iter().find(|(n, _)| n == name).unwrap().1
}

fn kept(mask: &Mask, name: &str) -> i64 {
    mask.get(name).unwrap().sum(Kind::Int64).int64_value(&[])
}

#[test]
fn transfer_moves_every_layer_but_the_classifier_by_its_policy() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path().join("runs"));
    let (src, dst) = ("mnist:classes=0-4", "mnist:classes=5-9");
    let source_data = load(root.path(), src);
    let target_data = load(root.path(), dst);
    let lottery = Lottery::new(&store, hparams("lenet_300_100", src), 1, &source_data).unwrap();
    for level in 0..=1 {
        lottery.run_level(level, &mut ()).unwrap();
    }
    let wk = lottery.dense_weights_at(4).unwrap();
    let ticket = lottery.mask(1).unwrap();
    let transplant = |output| {
        let hp = TransplantHparams::transfer(lottery.hparams().clone(), 1, dst, output).unwrap();
        Transplant::new(&store, hp, &lottery, &target_data).unwrap()
    };

    // Same class count, other classes: copying the classifier is refused unless asked for by
    // name; asked for, everything moves, the classifier too.
    let e = TransplantHparams::transfer(lottery.hparams().clone(), 1, dst, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("say --output copy"), "{e}");
    let copy = transplant(Some(Output::Copy));
    let fresh = lth_train::Setup::new(&copy.hparams().target(), 1, &target_data).unwrap();
    let (state, mask) = copy.moved(&fresh).unwrap();
    assert!(named(&state, "fc.weight").equal(named(&wk, "fc.weight")));
    assert!(named(&state, "fc_layers.0.weight").equal(named(&wk, "fc_layers.0.weight")));
    assert_eq!(kept(&mask, "fc.weight"), kept(&ticket, "fc.weight"));

    // reinit: the target's own initial classifier, dense; the rest is the ticket's.
    let reinit = transplant(Some(Output::Reinit));
    let (state, mask) = reinit.moved(&fresh).unwrap();
    let w0 = fresh.model.state();
    for n in ["fc.weight", "fc.bias"] {
        assert!(named(&state, n).equal(named(&w0, n)), "{n}");
        assert!(!named(&state, n).equal(named(&wk, n)), "{n}");
    }
    assert!(named(&state, "fc_layers.1.bias").equal(named(&wk, "fc_layers.1.bias")));
    assert_eq!(kept(&mask, "fc.weight"), 5 * 100);
    assert!(
        mask.get("fc_layers.0.weight")
            .unwrap()
            .equal(ticket.get("fc_layers.0.weight").unwrap())
    );

    // reinit to all ten classes: a dense classifier of the target's shape.
    let all = load(root.path(), "mnist");
    let hp =
        TransplantHparams::transfer(lottery.hparams().clone(), 1, "mnist", Some(Output::Reinit))
            .unwrap();
    let ten = Transplant::new(&store, hp, &lottery, &all).unwrap();
    let fresh10 = lth_train::Setup::new(&ten.hparams().target(), 1, &all).unwrap();
    let (state, mask) = ten.moved(&fresh10).unwrap();
    assert_eq!(named(&state, "fc.weight").size(), [10, 100]);
    assert_eq!(mask.get("fc.weight").unwrap().size(), [10, 100]);
    assert_eq!(kept(&mask, "fc.weight"), 10 * 100);

    // keep-mask: re-initialised under the ticket's output mask.
    let (state, mask) = transplant(Some(Output::KeepMask)).moved(&fresh).unwrap();
    assert!(named(&state, "fc.weight").equal(named(&w0, "fc.weight")));
    assert!(
        mask.get("fc.weight")
            .unwrap()
            .equal(ticket.get("fc.weight").unwrap())
    );

    // Training starts at the rewind step on the target data, the mask held; the random
    // baseline keeps each layer's count at other positions.
    let s = reinit.run(Planted::Ticket, &mut ()).unwrap();
    let per_epoch = (target_data.train.len() as u64).div_ceil(50);
    assert_eq!(s.steps, 2 * per_epoch);
    let r = reinit.run(Planted::Random { seed: 3 }, &mut ()).unwrap();
    assert_eq!(r.steps, s.steps);
    let t = Mask::load(&reinit.unit_dir(Planted::Ticket).join(lth_prune::MASK_FILE)).unwrap();
    let rnd = Mask::load(
        &reinit
            .unit_dir(Planted::Random { seed: 3 })
            .join(lth_prune::MASK_FILE),
    )
    .unwrap();
    for c in t.counts() {
        assert_eq!(kept(&rnd, &c.name), c.kept, "{}", c.name);
    }
    assert!(
        !rnd.get("fc_layers.0.weight")
            .unwrap()
            .equal(t.get("fc_layers.0.weight").unwrap())
    );
    // The folder is the source's identity plus the destination: another level is another run.
    let other =
        TransplantHparams::transfer(lottery.hparams().clone(), 2, dst, Some(Output::Reinit))
            .unwrap();
    assert_ne!(
        lth_store::hparams_hash(&other),
        lth_store::hparams_hash(reinit.hparams())
    );
    assert!(reinit.dir().path().starts_with(root.path().join("runs")));
}

/// One ticket, another optimiser: every variable of W_k and the whole mask move unchanged, the
/// target's recipe (and nothing of the source's) trains them, and recipes that cannot be are
/// refused, naming the flag.
#[test]
fn an_optimizer_move_trains_the_whole_ticket_with_the_target_recipe() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path().join("runs"));
    let data = load(root.path(), "mnist");
    // The LeNet recipe is Adam at 1.2e-3.
    let source = hparams("lenet_300_100", "mnist");
    assert_eq!(source.train.training.optimizer, OptimizerKind::Adam);
    let lottery = Lottery::new(&store, source.clone(), 1, &data).unwrap();
    for level in 0..=1 {
        lottery.run_level(level, &mut ()).unwrap();
    }
    let sgd = |lr: f64, momentum: Option<f64>| {
        OptimizerRecipe::from_flags(OptimizerKind::Sgd, Some(lr), momentum, None, None, "--")
            .unwrap()
    };

    // Refused: no rate, a momentum for Adam, the ticket's own recipe, a rate out of range.
    let e = |r: lth_lottery::Result<OptimizerRecipe>| r.unwrap_err().to_string();
    assert!(
        e(OptimizerRecipe::from_flags(
            OptimizerKind::Sgd,
            None,
            None,
            None,
            None,
            "--"
        ))
        .contains("--lr is required with --optimizer")
    );
    assert!(
        e(OptimizerRecipe::from_flags(
            OptimizerKind::Adam,
            Some(1e-3),
            Some(0.9),
            None,
            None,
            "--target-"
        ))
        .contains("--target-momentum and --target-nesterov apply to --target-optimizer sgd")
    );
    let own = OptimizerRecipe::of(&source.train.training);
    let e = TransplantHparams::optimizer(source.clone(), 1, own)
        .unwrap_err()
        .to_string();
    assert!(e.contains("was found with adam (lr 0.0012) already"), "{e}");
    // The checks of every training's optimiser, named with the recipe's own flags.
    let e = OptimizerRecipe::from_flags(
        OptimizerKind::Sgd,
        Some(-1.0),
        None,
        None,
        None,
        "--target-",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("--target-lr must be a non-negative number"),
        "{e}"
    );

    // The move: the target is the source with SGD's recipe in place of Adam's, all else kept.
    let hp = TransplantHparams::optimizer(source.clone(), 1, sgd(0.0, Some(0.9))).unwrap();
    let target = hp.target();
    assert_eq!(target.training.optimizer, OptimizerKind::Sgd);
    assert_eq!((target.training.lr, target.training.momentum), (0.0, 0.9));
    assert_eq!(target.training.steps, source.train.training.steps);
    assert_eq!(
        (&target.model, &target.dataset),
        (&source.train.model, &source.train.dataset)
    );
    assert_eq!(hp.destination(), "sgd (lr 0, momentum 0.9)");
    let frozen = Transplant::new(&store, hp, &lottery, &data).unwrap();
    let setup = lth_train::Setup::new(&frozen.hparams().target(), 1, &data).unwrap();
    let (state, mask) = frozen.moved(&setup).unwrap();
    let wk = lottery.dense_weights_at(4).unwrap();
    let ticket = lottery.mask(1).unwrap();
    assert_eq!(state.len(), wk.len());
    for (name, t) in &wk {
        assert!(named(&state, name).equal(t), "{name}");
    }
    for c in ticket.counts() {
        assert!(
            mask.get(&c.name)
                .unwrap()
                .equal(ticket.get(&c.name).unwrap()),
            "{}",
            c.name
        );
    }
    // At rate 0 the target's SGD moves nothing: the ticket ends exactly at W_k under its mask. The
    // source's Adam (rate 1.2e-3) would have moved every kept weight.
    let s = frozen.run(Planted::Ticket, &mut ()).unwrap();
    let per_epoch = (data.train.len() as u64).div_ceil(50);
    assert_eq!(s.steps, 2 * per_epoch);
    let end =
        lth_train::load_tensors(&frozen.unit_dir(Planted::Ticket).join(lth_train::FINAL)).unwrap();
    for (name, t) in &wk {
        let expected = match ticket.get(name) {
            Some(m) => t * m.to_kind(t.kind()),
            None => t.shallow_clone(),
        };
        assert!(named(&end, name).equal(&expected), "{name}");
    }
    // At a positive rate it trains, from the same moved weights; another recipe is another run.
    let hp = TransplantHparams::optimizer(source, 1, sgd(0.05, Some(0.9))).unwrap();
    let moving = Transplant::new(&store, hp, &lottery, &data).unwrap();
    assert_ne!(moving.dir().path(), frozen.dir().path());
    moving.run(Planted::Ticket, &mut ()).unwrap();
    let end =
        lth_train::load_tensors(&moving.unit_dir(Planted::Ticket).join(lth_train::FINAL)).unwrap();
    let w = "fc_layers.0.weight";
    let kept = ticket.get(w).unwrap().to_kind(Kind::Bool);
    let moved = (named(&end, w) - named(&wk, w))
        .abs()
        .masked_select(&kept)
        .gt(0.0)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(moved > 0.99, "{moved} of the kept weights moved");
}

#[test]
fn transfer_errors_name_the_policy_or_the_layer() {
    let source = hparams("lenet_300_100", "mnist:classes=0-4");
    let e = |dataset: &str, output| {
        TransplantHparams::transfer(source.clone(), 1, dataset, output)
            .unwrap_err()
            .to_string()
    };
    assert!(e("mnist", None).contains("say --output reinit"));
    assert!(e("mnist", Some(Output::KeepMask)).contains("kept under the ticket's mask"));
    assert!(TransplantHparams::transfer(source.clone(), 1, "mnist", Some(Output::Reinit)).is_ok());
    // An input of another shape: a ResNet's stem sees one channel in the ticket, three here.
    let resnet = hparams("cifar_resnet_14", "mnist");
    let e = TransplantHparams::transfer(resnet, 1, "cifar10", Some(Output::Copy))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("conv.weight is [16, 1, 3, 3] in the ticket and [16, 3, 3, 3]"),
        "{e}"
    );
    assert!(
        TransplantHparams::transfer(source, 0, "mnist:classes=5-9", None)
            .unwrap_err()
            .to_string()
            .contains("--level must be 1 or more")
    );
}

#[test]
fn elastic_stretches_a_resnet_ticket_and_trains_it() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path().join("runs"));
    let data = load(root.path(), "mnist");
    let mut hp = hparams("cifar_resnet_14", "mnist");
    hp.train.training.steps = Steps::it(12);
    let lottery = Lottery::new(&store, hp.clone(), 2, &data).unwrap();
    for level in 0..=1 {
        lottery.run_level(level, &mut ()).unwrap();
    }
    let e = |model: &str, map: &str| {
        TransplantHparams::elastic(hp.clone(), 1, model, map)
            .unwrap_err()
            .to_string()
    };
    assert!(e("cifar_resnet_20", "0:0;1:1").contains("leaves target block 2 uncovered"));
    assert!(e("cifar_resnet_20_32", "interpolation").contains("stages of different shapes"));
    assert!(e("lenet_300_100", "interpolation").contains("not of the family"));
    let ehp = TransplantHparams::elastic(hp.clone(), 1, "cifar_resnet_20", "appending").unwrap();
    assert_eq!(
        ehp.to,
        lth_lottery::Destination::Elastic {
            model: "cifar_resnet_20".into(),
            map: "0:0;1:1,2".into()
        }
    );
    let elastic = Transplant::new(&store, ehp, &lottery, &data).unwrap();
    let fresh = lth_train::Setup::new(&elastic.hparams().target(), 2, &data).unwrap();
    let (state, mask) = elastic.moved(&fresh).unwrap();
    let wk = lottery.dense_weights_at(4).unwrap();
    let ticket = lottery.mask(1).unwrap();
    // Stage 1 (blocks 2–3 of ResNet-14, 3–5 of ResNet-20): block 1 fills target blocks 1 and 2.
    for (t, s) in [
        ("blocks.4.conv2.weight", "blocks.3.conv2.weight"),
        ("blocks.5.conv2.weight", "blocks.3.conv2.weight"),
        ("blocks.3.shortcut.0.weight", "blocks.2.shortcut.0.weight"),
    ] {
        assert!(named(&state, t).equal(named(&wk, s)), "{t}");
        assert!(mask.get(t).unwrap().equal(ticket.get(s).unwrap()), "{t}");
    }
    for n in ["blocks.5.bn1.running_mean", "blocks.5.bn1.weight"] {
        assert!(named(&state, n).equal(named(&wk, &n.replace("blocks.5", "blocks.3"))));
    }
    // The mask covers the target's prunable kernels, nothing else (BatchNorm's γ is never masked).
    let mut names: Vec<&str> = mask.names().collect();
    names.sort_unstable();
    let mut prunable: Vec<&str> = fresh.model.prunable().iter().map(String::as_str).collect();
    prunable.sort_unstable();
    assert_eq!(names, prunable);
    let s = elastic.run(Planted::Ticket, &mut ()).unwrap();
    assert_eq!(s.steps, 12);
    // Training starts at the rewind step, from the moved network.
    let rows = lth_store::CsvLog::<lth_train::MetricsRow>::new(
        elastic.unit_dir(Planted::Ticket).join("metrics.csv"),
    )
    .load()
    .unwrap();
    assert_eq!(rows[0].step, 4);
}
