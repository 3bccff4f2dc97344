//! `lth early-bird`: an Early-Bird search (dense training with network slimming, channel masks at
//! every epoch, tickets drawn when the masks settle), then the narrow networks retrained and
//! compared with the dense one.

use clap::Args;

use lth_store::Store;
use lth_train::early_bird::{Footprint, Retrain, narrow_ticket, retrain, search};
use lth_train::flags::EarlyBirdFlags;
use lth_train::method::Stored;
use lth_train::{EarlyBirdRun, Method, RunSummary};

use super::progress::Bar;
use super::{CommonArgs, TrainFlags};

#[derive(Args, Debug)]
pub struct EarlyBirdArgs {
    #[command(flatten)]
    pub hp: TrainFlags,
    #[command(flatten)]
    pub eb: EarlyBirdFlags,
    /// How each emerged ticket's narrow network is retrained (comma-separated): eb (EB Train:
    /// from the ticket's weights at its emergence epoch) and scratch (its own initial weights).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "eb",
        value_name = "HOW,..."
    )]
    pub retrain: Vec<Retrain>,
    /// Only search: retrain nothing.
    #[arg(long, conflicts_with = "retrain")]
    pub no_retrain: bool,
    /// Also measure each narrow network's training and inference throughput against the dense
    /// one, in this process on synthetic batches (steps per round, 5 rounds).
    #[arg(long, value_name = "STEPS", num_args = 0..=1, default_missing_value = "20")]
    pub speed: Option<u64>,
    /// Replicate number; seeds that are not given default to it.
    #[arg(long, default_value_t = 1)]
    pub replicate: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn accuracy(s: &RunSummary) -> String {
    format!("{:.2}%", 100.0 * s.final_test_accuracy)
}

pub fn run(args: &EarlyBirdArgs) -> anyhow::Result<()> {
    if args.speed == Some(0) {
        anyhow::bail!("--speed 0: at least one step per round (--speed alone measures 20)");
    }
    let hp = args.hp.resolve()?;
    let run = EarlyBirdRun {
        train: hp.clone(),
        early_bird: args.eb.resolve()?,
    };
    // The search is the method `lth train --early-bird` trains, in the same folder: checked the
    // same way (channels to prune, on the model's shapes, before any data is read; the FIFO
    // against the run's epochs before anything is written).
    run.check()?;
    let folder = run.home(&Store::new(&args.common.runs_dir));
    if folder.path().exists() {
        run.bind_to(&folder)?;
    }
    let dir = folder.replicate(args.replicate);
    let data = args.common.data(&hp.dataset)?;
    hp.check_data(data.train.len() as u64)?;
    run.check_data(&data)?;
    let per_epoch = data.iterations_per_epoch(hp.dataset.batch_size);
    let epochs = lth_train::early_bird::epochs(&hp, &data);
    folder.create()?;
    run.bind_to(&folder)?;
    eprintln!(
        "Early-Bird search: {} on {} ({epochs} epochs of {per_epoch} steps), slimming s = {}, \
         ratios {}, FIFO of {}, ε = {}",
        hp.model.model,
        hp.dataset.dataset,
        run.early_bird.slimming,
        run.early_bird
            .ratios
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        run.early_bird.window,
        run.early_bird.epsilon
    );
    eprintln!("run folder: {}", dir.path().display());
    let mut bar = Bar::new(args.common.quiet);
    let (summary, emerged) = search(&dir, &run, args.replicate, &data, &mut bar)?;
    println!(
        "  dense network with slimming: {} steps, test accuracy {}",
        summary.steps,
        accuracy(&summary)
    );
    let dense = Footprint::dense(&run, &data)?;
    let mut narrow_names = Vec::new();
    let missing: Vec<String> = emerged
        .iter()
        .filter(|e| e.epoch.is_none())
        .map(|e| e.ratio.to_string())
        .collect();
    if !missing.is_empty() {
        println!(
            "  no ticket emerged in {epochs} epochs at p = {} (distances in early_bird.csv)",
            missing.join(", ")
        );
    }
    for e in &emerged {
        let Some(epoch) = e.epoch else {
            continue;
        };
        let narrow = narrow_ticket(&dir, &run, e.ratio, args.replicate, &data)?;
        let (fewer_params, fewer_flops) = dense.reduction(&Footprint::of(&narrow));
        println!(
            "  p = {}: ticket emerged at epoch {epoch} of {epochs} ({:.0}% of training), {:.1}% of \
             the slimmable channels kept; narrow network {} parameters ({:.2}× fewer), {:.2}× \
             fewer FLOPs per example",
            e.ratio,
            100.0 * epoch as f64 / epochs as f64,
            100.0 * e.channels_kept.unwrap_or(f64::NAN),
            narrow.num_parameters(),
            fewer_params,
            fewer_flops,
        );
        narrow_names.push((e.ratio, narrow.name().to_owned()));
        if args.no_retrain {
            continue;
        }
        for &how in &args.retrain {
            let (s, _) = retrain(&dir, &run, e.ratio, how, args.replicate, &data, &mut bar)?;
            println!(
                "    retrained ({}): test accuracy {} (dense {})",
                match how {
                    Retrain::EarlyBird => "EB Train, from the ticket's weights",
                    Retrain::Scratch => "from scratch",
                },
                accuracy(&s),
                accuracy(&summary)
            );
        }
    }
    if let Some(steps) = args.speed.filter(|_| !narrow_names.is_empty()) {
        let device = args.common.device()?;
        let mut names = vec![hp.model.model.clone()];
        names.extend(narrow_names.iter().map(|(_, n)| n.clone()));
        let speeds = lth_train::speed::compare(&hp, &names, data.info, device, steps, 5)?;
        println!(
            "  measured on {} (batch {}, synthetic batches; medians of 5 paired rounds of {steps} \
             steps):",
            super::on_device(device),
            hp.dataset.batch_size
        );
        for (k, (speed, ratio)) in speeds.iter().enumerate() {
            let label = match k {
                0 => "dense".to_owned(),
                k => format!("p = {}", narrow_names[k - 1].0),
            };
            println!(
                "    {label:<8} training {:>8.0} images/s ({:.2}×), inference {:>8.0} images/s ({:.2}×)",
                speed.train, ratio.train, speed.infer, ratio.infer
            );
        }
    }
    println!(
        "  files: early_bird.csv (distances per epoch), emergence.csv, eb_<p>.safetensors and \
         eb_<p>_channels.safetensors (each ticket), retrain_<p>_<how>/ (each retraining)"
    );
    Ok(())
}
