//! `lth train`: one training run through the run store.

use clap::Args;

use lth_store::{RunDir, RunKind, Store};
use lth_train::flags::{AdversarialFlags, PaiFlags, SparseFlags, SupermaskFlags};
use lth_train::{
    PrunedRun, RunSummary, SparseRun, SupermaskHparams, SupermaskRun, TrainHparams, train_pruned,
    train_sparse, train_supermask,
};

use super::progress::Bar;
use super::{CommonArgs, TrainFlags};

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub hp: TrainFlags,
    #[command(flatten)]
    pub pai: PaiFlags,
    #[command(flatten)]
    pub sparse: SparseFlags,
    #[command(flatten)]
    pub supermask: SupermaskFlags,
    #[command(flatten)]
    pub adversarial: AdversarialFlags,
    /// Replicate number; seeds that are not given default to it.
    #[arg(long, default_value_t = 1)]
    pub replicate: u64,
    /// Train several replicates (e.g. 1,2,3), each in the folder --replicate would give it.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "R,...",
        conflicts_with = "replicate"
    )]
    pub replicates: Option<Vec<u64>>,
    /// With --replicates: train up to N of them at once, packed into one network (default 1 on
    /// the CPU, where packing does not pay, 8 on CUDA). Results equal separate runs' to float
    /// tolerance.
    #[arg(long, value_name = "N", requires = "replicates", value_parser = super::at_least::<1, usize>)]
    pub pack: Option<usize>,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let mut hp = args.hp.resolve()?;
    let sparse = args.sparse.resolve(args.pai.sparsity)?;
    if let Some(adv) = args.adversarial.resolve()? {
        if sparse.is_some()
            || args.supermask.supermask.is_some()
            || args.sparse.gmp.gmp.is_some()
            || args.pai.prune_at_init.is_some()
        {
            anyhow::bail!(
                "--adversarial trains a dense network; it does not combine with --sparse, --gmp, \
                 --supermask or --prune-at-init"
            );
        }
        if args.pack.is_some_and(|p| p > 1) {
            anyhow::bail!("--adversarial does not pack: each copy needs its own attack (--pack 1)");
        }
        hp.training.adversarial = Some(adv);
    }
    let hp = hp;
    if args.replicates.is_some() && (sparse.is_some() || args.supermask.supermask.is_some()) {
        anyhow::bail!(
            "--replicates trains dense runs; --sparse and --supermask train one --replicate at a time"
        );
    }
    if let Some(sm) = args.supermask.resolve()? {
        if let Some(sp) = &sparse {
            anyhow::bail!(
                "--supermask {} and --sparse {} exclude each other",
                sm.method,
                sp.mode
            );
        }
        if let Some(m) = args.pai.prune_at_init {
            anyhow::bail!(
                "--supermask {} and --prune-at-init {m} exclude each other",
                sm.method
            );
        }
        return train_supermask_run(args, &hp, &sm);
    }
    if let Some(g) = args
        .sparse
        .gmp
        .resolve(args.pai.sparsity, &args.sparse.spread)?
    {
        if let Some(m) = args.pai.prune_at_init {
            anyhow::bail!("--gmp and --prune-at-init {m} exclude each other");
        }
        if args.supermask.supermask.is_some() || args.replicates.is_some() {
            anyhow::bail!("--gmp trains one --replicate at a time, without --supermask");
        }
        return train_gmp_run(args, &hp, &g);
    }
    if let Some(sp) = &sparse {
        if let Some(m) = args.pai.prune_at_init {
            anyhow::bail!(
                "--sparse {} and --prune-at-init {m} exclude each other",
                sp.mode
            );
        }
        // The distribution's layer names and budget, checked on the model before any data.
        super::sparsity::check(&hp, sp)?;
        return train_sparse_run(args, &hp, sp);
    }
    let pai = args.pai.resolve(&hp)?;
    if let Some(replicates) = &args.replicates {
        if let Some(m) = &pai {
            anyhow::bail!(
                "--replicates trains dense runs; --prune-at-init {} trains one --replicate at a time",
                m.method
            );
        }
        return train_replicates(args, &hp, replicates);
    }
    let store = Store::new(&args.common.runs_dir);
    // Dense runs keep the folders they always had; pruned ones are a kind of their own.
    let pruned = PrunedRun {
        train: hp.clone(),
        prune_at_init: pai.clone(),
    };
    let run = match &pai {
        None => store.run(RunKind::Train, &hp),
        Some(_) => store.run(RunKind::PruneAtInit, &pruned),
    };
    let opened = match &pai {
        None => open_run(args, &hp, None, &run, &hp)?,
        Some(p) => open_run(args, &hp, Some(p), &run, &pruned)?,
    };
    let Some((dir, data)) = opened else {
        return Ok(());
    };
    announce(
        &hp,
        &data,
        &pai.as_ref().map_or(String::new(), |p| {
            format!(
                ", pruned at initialisation by {} to sparsity {}",
                p.method, p.sparsity
            )
        }),
    );
    eprintln!("run folder: {}", dir.path().display());
    let mut bar = Bar::new(args.common.quiet);
    let (summary, _) = train_pruned(&dir, &pruned, args.replicate, &data, &mut bar)?;
    report(&dir, &hp, &summary);
    Ok(())
}

fn train_sparse_run(
    args: &TrainArgs,
    hp: &TrainHparams,
    sp: &lth_train::SparseHparams,
) -> anyhow::Result<()> {
    let store = Store::new(&args.common.runs_dir);
    let sparse = SparseRun {
        train: hp.clone(),
        sparse: Some(sp.clone()),
    };
    let run = store.run(RunKind::Sparse, &sparse);
    let Some((dir, data)) = open_run(args, hp, None, &run, &sparse)? else {
        return Ok(());
    };
    announce(
        hp,
        &data,
        &format!(
            ", sparse from scratch ({}, {} at sparsity {})",
            sp.mode, sp.distribution, sp.sparsity
        ),
    );
    eprintln!("run folder: {}", dir.path().display());
    let mut bar = Bar::new(args.common.quiet);
    let (summary, _) = train_sparse(&dir, &sparse, args.replicate, &data, &mut bar)?;
    report(&dir, hp, &summary);
    Ok(())
}

fn train_gmp_run(
    args: &TrainArgs,
    hp: &TrainHparams,
    g: &lth_train::GmpHparams,
) -> anyhow::Result<()> {
    let run = lth_train::GmpRun {
        train: hp.clone(),
        gmp: g.clone(),
    };
    // The distribution's layers and budget, checked on the model before any data.
    let model = super::sparsity::outline(hp)?;
    let shapes = lth_prune::distribution::shapes(&model.prunable_tensors());
    g.distribution(&shapes).sparsities(&shapes)?;
    let store = Store::new(&args.common.runs_dir);
    let unit = store.run(RunKind::Gmp, &run);
    // The schedule against the run's length (start, end, interval), before anything is written.
    let check = |data: &lth_train::Data| -> anyhow::Result<()> {
        let per_epoch = data.iterations_per_epoch(hp.dataset.batch_size);
        g.schedule(hp.training.steps.iterations(per_epoch), per_epoch)?;
        Ok(())
    };
    let Some((dir, data)) = open_run_checked(args, hp, None, &unit, &run, check)? else {
        return Ok(());
    };
    announce(
        hp,
        &data,
        &format!(
            ", pruned gradually ({}, {} to sparsity {} from {} to {} every {})",
            g.scope, g.distribution, g.sparsity, g.start, g.end, g.every
        ),
    );
    eprintln!("run folder: {}", dir.path().display());
    let mut bar = Bar::new(args.common.quiet);
    let (summary, _) = lth_train::train_gmp(&dir, &run, args.replicate, &data, &mut bar)?;
    report(&dir, hp, &summary);
    Ok(())
}

/// Several replicates of a dense run, each in its own folder, packed in groups of up to `--pack`.
fn train_replicates(args: &TrainArgs, hp: &TrainHparams, replicates: &[u64]) -> anyhow::Result<()> {
    use lth_train::packed::default_pack;
    let mut seen = std::collections::BTreeSet::new();
    if let Some(r) = replicates.iter().find(|&&r| r == 0 || !seen.insert(r)) {
        anyhow::bail!("--replicates: replicate {r} is 0 or listed twice");
    }
    let store = Store::new(&args.common.runs_dir);
    let run = store.run(RunKind::Train, hp);
    if run.path().exists() {
        run.bind_hparams(hp)?;
    }
    let dir = |r: u64| run.replicate(r);
    let mut todo = Vec::new();
    for &r in replicates {
        match dir(r).done_summary::<RunSummary>()? {
            Some(s) => {
                println!("replicate {r}: already finished");
                report(&dir(r), hp, &s);
            }
            None => todo.push(r),
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    let data = load_checked(args, hp, None)?;
    let pack = args
        .pack
        .unwrap_or_else(|| default_pack(data.train.device()));
    run.create()?;
    run.bind_hparams(hp)?;
    announce(
        hp,
        &data,
        &format!(", replicates {todo:?} in groups of up to {pack}"),
    );
    eprintln!(
        "run folders: {}/{}",
        run.path().display(),
        lth_store::layout::REPLICATE_PATTERN
    );
    let per_epoch = data.iterations_per_epoch(hp.dataset.batch_size);
    let plan = lth_train::RunPlan::whole(hp, per_epoch);
    let jobs: Vec<lth_train::Job> = todo
        .iter()
        .map(|&r| lth_train::Job::new(dir(r), hp, r, plan.clone()))
        .collect();
    let mut bar = Bar::new(args.common.quiet);
    let summaries = lth_train::train_jobs(hp, &data, &jobs, pack, &mut bar)?;
    for (job, s) in jobs.iter().zip(&summaries) {
        report(&job.dir, hp, s);
    }
    Ok(())
}

fn train_supermask_run(
    args: &TrainArgs,
    hp: &TrainHparams,
    sm: &SupermaskHparams,
) -> anyhow::Result<()> {
    let store = Store::new(&args.common.runs_dir);
    let run_hp = SupermaskRun {
        train: hp.clone(),
        supermask: sm.clone(),
    };
    let run = store.run(RunKind::Supermask, &run_hp);
    let Some((dir, data)) = open_run(args, hp, None, &run, &run_hp)? else {
        return Ok(());
    };
    let keep = sm
        .keep
        .map_or(String::new(), |k| format!(", keeping {k} of each layer"));
    announce(
        hp,
        &data,
        &format!(
            ", learning a {} supermask over frozen {} weights{keep}",
            sm.method, sm.weights
        ),
    );
    eprintln!("run folder: {}", dir.path().display());
    let mut bar = Bar::new(args.common.quiet);
    let (summary, mask) = train_supermask(&dir, &run_hp, args.replicate, &data, &mut bar)?;
    report(&dir, hp, &summary);
    println!(
        "  learned supermask: {} of {} prunable weights kept ({:.2}%); the weights never trained",
        mask.kept(),
        mask.total(),
        100.0 * mask.density()
    );
    println!("  files: mask.safetensors (the final mask; final.safetensors holds w ⊙ m)");
    Ok(())
}

/// Opens replicate `--replicate` of the run folder `run`, which holds `run_hp`. A folder already
/// there must hold this run (its `hparams.json` is checked) before its results are trusted. A
/// finished replicate is reported and gives `None`; otherwise the data are loaded and checked,
/// and only then does the run get its folder.
fn open_run<H: serde::Serialize + serde::de::DeserializeOwned>(
    args: &TrainArgs,
    hp: &TrainHparams,
    pai: Option<&lth_train::PaiHparams>,
    run: &RunDir,
    run_hp: &H,
) -> anyhow::Result<Option<(RunDir, lth_train::Data)>> {
    open_run_checked(args, hp, pai, run, run_hp, |_| Ok(()))
}

/// [`open_run`], with `check` run on the data before anything is written.
fn open_run_checked<H: serde::Serialize + serde::de::DeserializeOwned>(
    args: &TrainArgs,
    hp: &TrainHparams,
    pai: Option<&lth_train::PaiHparams>,
    run: &RunDir,
    run_hp: &H,
    check: impl FnOnce(&lth_train::Data) -> anyhow::Result<()>,
) -> anyhow::Result<Option<(RunDir, lth_train::Data)>> {
    let dir = run.replicate(args.replicate);
    if run.path().exists() {
        run.bind_hparams(run_hp)?;
    }
    if let Some(summary) = dir.done_summary::<RunSummary>()? {
        println!("already finished; nothing to train.");
        report(&dir, hp, &summary);
        return Ok(None);
    }
    let data = load_checked(args, hp, pai)?;
    check(&data)?;
    run.create()?;
    run.bind_hparams(run_hp)?;
    Ok(Some((dir, data)))
}

/// The data of `hp`, checked against it (batch size, schedule) and against the pruning at
/// initialisation `pai` (its scoring batch) before anything is written.
fn load_checked(
    args: &TrainArgs,
    hp: &TrainHparams,
    pai: Option<&lth_train::PaiHparams>,
) -> anyhow::Result<lth_train::Data> {
    let data = args.common.data(&hp.dataset)?;
    hp.check_data(data.train.len() as u64)?;
    if let Some(pai) = pai {
        pai.check_data(data.train.len() as u64)?;
    }
    Ok(data)
}

fn announce(hp: &TrainHparams, data: &lth_train::Data, how: &str) {
    let device = data.train.device();
    let per_epoch = data.iterations_per_epoch(hp.dataset.batch_size);
    eprintln!(
        "training {} on {} ({} training examples, {} steps of batch {}, {} per epoch) on {}{how}",
        hp.model.model,
        hp.dataset.dataset,
        data.train.len(),
        hp.training.steps.iterations(per_epoch),
        hp.dataset.batch_size,
        per_epoch,
        super::device_word(device),
    );
}

fn report(dir: &RunDir, hp: &TrainHparams, s: &RunSummary) {
    println!("run folder: {}", dir.path().display());
    println!(
        "  {} on {}: {} steps ({})",
        hp.model.model, hp.dataset.dataset, s.steps, hp.training.steps
    );
    println!(
        "  test accuracy: final {:.2}%, best {:.2}% at step {}",
        100.0 * s.final_test_accuracy,
        100.0 * s.best_test_accuracy,
        s.best_test_step
    );
    if let (Some(step), Some(loss), Some(acc)) = (
        s.min_val_loss_step,
        s.min_val_loss,
        s.test_accuracy_at_min_val_loss,
    ) {
        println!(
            "  validation loss: minimum {loss:.4} at step {step} (test accuracy there {:.2}%)",
            100.0 * acc
        );
    }
    if let Some(a) = &hp.training.adversarial
        && let Ok(rows) =
            lth_store::CsvLog::<lth_train::MetricsRow>::new(dir.join(lth_train::METRICS)).load()
        && let Some(last) = rows.last().and_then(|r| r.robust_accuracy)
    {
        let best = rows
            .iter()
            .filter_map(|r| r.robust_accuracy.map(|a| (a, r.step)))
            .fold((f64::MIN, 0), |b, x| if x.0 > b.0 { x } else { b });
        println!(
            "  robust accuracy (PGD-{}, ε {} pixel units, first {} test examples): final {:.2}%, \
             best {:.2}% at step {}",
            a.eval_steps,
            a.epsilon,
            a.eval_examples,
            100.0 * last,
            100.0 * best.0,
            best.1
        );
    }
    if let Ok(counts) =
        lth_store::CsvLog::<lth_prune::LayerCount>::new(dir.join(lth_prune::LAYERS_FILE)).load()
        && !counts.is_empty()
    {
        let (kept, total) = counts
            .iter()
            .fold((0, 0), |(k, t), c| (k + c.kept, t + c.total));
        println!(
            "  pruned at initialisation: {kept} of {total} prunable weights kept ({:.2}%)",
            100.0 * kept as f64 / total.max(1) as f64
        );
        for c in &counts {
            println!(
                "    {:<28} {:>9} of {:>9} ({:6.2}%)",
                c.name,
                c.kept,
                c.total,
                100.0 * c.density()
            );
        }
        println!("  files: mask.safetensors, layers.csv (kept per layer)");
    }
    if let Ok(layers) =
        lth_store::CsvLog::<lth_train::DistributionRow>::new(dir.join(lth_train::DISTRIBUTION_FILE))
            .load()
        && !layers.is_empty()
    {
        let (kept, total) = layers
            .iter()
            .fold((0, 0), |(k, t), l| (k + l.kept, t + l.total));
        let updates =
            lth_store::CsvLog::<lth_train::UpdateRow>::new(dir.join(lth_train::UPDATES_FILE))
                .load()
                .unwrap_or_default();
        let mut steps: Vec<u64> = updates.iter().map(|u| u.step).collect();
        steps.dedup();
        let grown: i64 = updates.iter().map(|u| u.grown).sum();
        let reactivated: i64 = updates.iter().map(|u| u.reactivated).sum();
        println!(
            "  sparse from scratch: {kept} of {total} prunable weights active ({:.2}%); {} mask \
             updates moved {grown} weights ({reactivated} of them active before)",
            100.0 * kept as f64 / total.max(1) as f64,
            steps.len()
        );
        if let Some(f) = &s.flops {
            println!(
                "  FLOPs against dense (as the RigL paper counts them): training {:.3}× ({:.3e} \
                 of {:.3e}; {} of {} steps with a dense gradient), inference {:.3}×",
                f.training_relative,
                f.training,
                f.dense_training,
                f.dense_gradient_steps,
                f.steps,
                f.inference_relative
            );
        }
        println!(
            "  files: distribution.csv (sparsity per layer), updates.csv (churn per update and \
             layer), mask.safetensors (the final mask)"
        );
    }
    if let Ok(rows) =
        lth_store::CsvLog::<lth_train::gmp::GmpRow>::new(dir.join(lth_train::gmp::GMP_FILE)).load()
        && let Some(last) = rows.last().map(|r| r.step)
    {
        let at_end: Vec<_> = rows.iter().filter(|r| r.step == last).collect();
        let (kept, total) = at_end
            .iter()
            .fold((0, 0), |(k, t), r| (k + r.kept, t + r.total));
        let mut steps: Vec<u64> = rows.iter().map(|r| r.step).collect();
        steps.dedup();
        println!(
            "  pruned gradually: {kept} of {total} prunable weights kept ({:.2}%) after {} \
             pruning steps (the last at step {last})",
            100.0 * kept as f64 / total.max(1) as f64,
            steps.len()
        );
        let regrown: i64 = rows.iter().map(|r| r.regrown).sum();
        if regrown > 0 {
            println!("  {regrown} pruned weights came back at later pruning steps (--gmp-regrow)");
        }
        for r in &at_end {
            println!(
                "    {:<28} {:>9} of {:>9} ({:6.2}%)",
                r.layer,
                r.kept,
                r.total,
                100.0 * r.kept as f64 / r.total.max(1) as f64
            );
        }
        if let Some(f) = &s.flops {
            println!(
                "  FLOPs against dense (as the RigL paper counts them: dense until the first \
                 pruning step): training {:.3}×, inference {:.3}×",
                f.training_relative, f.inference_relative
            );
        }
        println!(
            "  files: gmp.csv (each pruning step's target, kept and regrown counts per layer), \
             mask.safetensors (the final mask)"
        );
    }
    println!("  files: hparams.json (one folder up), metrics.csv, final.safetensors, done.json");
}
