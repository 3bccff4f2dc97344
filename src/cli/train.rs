//! `lth train`: one training run through the run store.

use clap::Args;

use lth_store::{RunDir, Store};
use lth_train::flags::{AdversarialFlags, MethodArgs};
use lth_train::{Method, RunSummary, TrainHparams};

use super::progress::Bar;
use super::{CommonArgs, TrainFlags};

/// `lth train`'s own options and the run store's first; then the groups, each under its heading
/// (a heading holds for the options after it, so the groups come last).
#[derive(Args, Debug)]
pub struct TrainArgs {
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
    #[command(
        flatten,
        next_help_heading = "Training (unset flags keep the model's recipe: lth models <model>)"
    )]
    pub hp: TrainFlags,
    /// The method's flags: --prune-at-init, --sparse, --gmp or --supermask with theirs (none:
    /// dense training).
    #[command(flatten)]
    pub methods: MethodArgs,
    #[command(
        flatten,
        next_help_heading = "Adversarial training (--adversarial; dense training only)"
    )]
    pub adversarial: AdversarialFlags,
}

/// Resolves the one method the flags ask for (the registry refuses two), checks it against the
/// model before any data is read, and trains it.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let mut hp = args.hp.resolve()?;
    hp.training.adversarial = args.adversarial.resolve()?;
    let method = args.methods.resolve(&hp)?;
    if hp.training.adversarial.is_some() {
        if !method.flag().is_empty() {
            anyhow::bail!(
                "--adversarial trains a dense network; it does not combine with {}",
                method.flag()
            );
        }
        if args.pack.is_some_and(|p| p > 1) {
            anyhow::bail!("--adversarial does not pack: each copy needs its own attack (--pack 1)");
        }
    }
    method.check()?;
    if let Some(replicates) = &args.replicates {
        if !method.packs() {
            anyhow::bail!(
                "--replicates trains dense runs; {} trains one --replicate at a time",
                method.flag()
            );
        }
        return train_replicates(args, method.as_ref(), replicates);
    }
    train_one(args, method.as_ref())
}

/// Trains replicate `--replicate` of `method` in its run folder. A folder already there must hold
/// this run (its `hparams.json` is checked) before its results are trusted. A finished replicate
/// is reported; otherwise the data are loaded and checked against the run and the method, and
/// only then does the run get its folder.
fn train_one(args: &TrainArgs, method: &dyn Method) -> anyhow::Result<()> {
    let hp = method.train_hparams();
    let run = home(args, method)?;
    let dir = run.replicate(args.replicate);
    if let Some(summary) = dir.done_summary::<RunSummary>()? {
        println!("already finished; nothing to train.");
        report(&dir, method, &summary);
        return Ok(());
    }
    let data = load(args, method)?;
    run.create()?;
    method.bind_to(&run)?;
    announce(hp, &data, &method.describe());
    eprintln!("run folder: {}", dir.path().display());
    let mut bar = Bar::new(args.common.quiet);
    let (summary, _) = method.train(&dir, args.replicate, &data, &mut bar)?;
    report(&dir, method, &summary);
    Ok(())
}

/// The folder of `method`'s run. A folder already there must hold this run (its `hparams.json` is
/// checked) before its results are trusted.
fn home(args: &TrainArgs, method: &dyn Method) -> anyhow::Result<RunDir> {
    let run = method.home(&Store::new(&args.common.runs_dir));
    if run.path().exists() {
        method.bind_to(&run)?;
    }
    Ok(run)
}

/// The data of `method`'s run, checked against the run and the method before anything is
/// written.
fn load(args: &TrainArgs, method: &dyn Method) -> anyhow::Result<lth_train::Data> {
    let hp = method.train_hparams();
    let data = args.common.data(&hp.dataset)?;
    hp.check_data(data.train.len() as u64)?;
    method.check_data(&data)?;
    Ok(data)
}

/// Several replicates of a run that packs (dense training), each in its own folder, packed in
/// groups of up to `--pack`.
fn train_replicates(
    args: &TrainArgs,
    dense: &dyn Method,
    replicates: &[u64],
) -> anyhow::Result<()> {
    use lth_train::packed::default_pack;
    let mut seen = std::collections::BTreeSet::new();
    if let Some(r) = replicates.iter().find(|&&r| r == 0 || !seen.insert(r)) {
        anyhow::bail!("--replicates: replicate {r} is 0 or listed twice");
    }
    let hp = dense.train_hparams();
    let run = home(args, dense)?;
    let dir = |r: u64| run.replicate(r);
    let mut todo = Vec::new();
    for &r in replicates {
        match dir(r).done_summary::<RunSummary>()? {
            Some(s) => {
                println!("replicate {r}: already finished");
                report(&dir(r), dense, &s);
            }
            None => todo.push(r),
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    let data = load(args, dense)?;
    let pack = args
        .pack
        .unwrap_or_else(|| default_pack(data.train.device()));
    run.create()?;
    dense.bind_to(&run)?;
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
        report(&job.dir, dense, s);
    }
    Ok(())
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

fn report(dir: &RunDir, method: &dyn Method, s: &RunSummary) {
    let hp = method.train_hparams();
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
    for line in method.report(dir, s) {
        println!("{line}");
    }
    println!("  files: hparams.json (one folder up), metrics.csv, final.safetensors, done.json");
}
