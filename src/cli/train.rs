//! `lth train`: one training run through the run store.

use clap::Args;

use lth_store::{RunDir, Store};
use lth_train::{RunSummary, Setup, TrainHparams, run_resumable};

use super::progress::Bar;
use super::{CommonArgs, TrainFlags};

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub hp: TrainFlags,
    /// Replicate number; seeds that are not given default to it.
    #[arg(long, default_value_t = 1)]
    pub replicate: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let hp = args.hp.resolve()?;
    let store = Store::new(&args.common.runs_dir);
    let run = store.run("train", &hp);
    run.create()?;
    run.bind_hparams(&hp)?;
    let dir = run.child(format!("replicate_{}", args.replicate));
    if let Some(summary) = dir.done_summary::<RunSummary>()? {
        println!("already finished; nothing to train.");
        report(&dir, &hp, &summary);
        return Ok(());
    }
    let data = args.common.data(&hp.dataset)?;
    let device = data.train.device();
    let mut setup = Setup::new(&hp, args.replicate, &data)?;
    let plan = setup.plan(&hp);
    eprintln!(
        "training {} on {} ({} training examples, {} steps of batch {}, {} per epoch) on {device:?}",
        hp.model.model,
        hp.dataset.dataset,
        data.train.len(),
        plan.to,
        hp.dataset.batch_size,
        setup.loader.steps_per_epoch(),
    );
    eprintln!("run folder: {}", dir.path().display());
    let mut bar = Bar::new(args.common.quiet);
    let summary = run_resumable(&dir, &mut setup, &plan, &mut bar)?;
    report(&dir, &hp, &summary);
    Ok(())
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
    println!("  files: hparams.json (one folder up), metrics.csv, final.safetensors, done.json");
}
