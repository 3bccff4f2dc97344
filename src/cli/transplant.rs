//! `lth elastic` and `lth transfer`: a lottery level's ticket moved to another depth, dataset or
//! optimiser, and trained there from the rewind step.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use lth_lottery::{
    Lottery, LotteryHparams, OptimizerRecipe, Output, Planted, Transplant, TransplantHparams,
};
use lth_store::{RunDir, RunKind, Store, layout};
use lth_train::RunSummary;

use super::CommonArgs;
use super::lottery::{LotteryArgs, train_levels};
use super::progress::Bar;

/// The ticket a command moves.
#[derive(Args, Debug)]
struct TicketArgs {
    /// The source lottery's folder (`runs/lottery_<hash>`, or one of its `replicate_<n>`).
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// The level whose ticket moves (the source's levels up to it are trained if missing).
    #[arg(long)]
    level: u64,
    /// Also train the random baseline: the moved weights under a random mask with the ticket's
    /// per-layer counts, drawn with this seed.
    #[arg(long, value_name = "SEED")]
    random: Option<u64>,
}

#[derive(Args, Debug)]
pub struct ElasticArgs {
    #[command(flatten)]
    ticket: TicketArgs,
    /// The target depth, of the source's family (cifar_resnet_32, lenet_300_100_100_100).
    #[arg(long, value_name = "MODEL")]
    to: String,
    /// interpolation, appending, or a block map such as `0:0;1:1,2;2:3,4` (source block: target
    /// blocks, the same for every stage; a source block left out is dropped).
    #[arg(long, default_value = "interpolation")]
    map: String,
    /// The source lottery's flags, when it is not given by --from.
    #[command(flatten)]
    lottery: LotteryArgs,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["dataset", "optimizer"])))]
pub struct TransferArgs {
    #[command(flatten)]
    ticket: TicketArgs,
    /// The target dataset (any registry name, e.g. fashion-mnist:classes=5-9).
    #[arg(long)]
    dataset: Option<String>,
    /// The classifier: reinit (re-initialised, dense), keep-mask (re-initialised under the
    /// ticket's mask) or copy; required when the class counts differ (then only reinit fits).
    #[arg(long, requires = "dataset")]
    output: Option<Output>,
    /// Train the ticket with another optimiser (sgd or adam) on its own network and data, from
    /// the rewind step with a fresh optimiser state; the schedule stays the ticket's.
    #[arg(long, conflicts_with = "dataset")]
    optimizer: Option<lth_train::OptimizerKind>,
    /// The target optimiser's learning rate (required with --optimizer).
    #[arg(long, requires = "optimizer")]
    lr: Option<f64>,
    /// The target SGD's momentum [default: 0].
    #[arg(long, requires = "optimizer")]
    momentum: Option<f64>,
    /// Nesterov momentum for the target SGD [default: false].
    #[arg(long, requires = "optimizer", num_args = 0..=1, default_missing_value = "true")]
    nesterov: Option<bool>,
    /// The target optimiser's weight decay [default: 0].
    #[arg(long, requires = "optimizer")]
    weight_decay: Option<f64>,
    #[command(flatten)]
    common: CommonArgs,
    /// The replicate of a lottery folder given by --from (default: 1, or the folder's own).
    #[arg(long)]
    replicate: Option<u64>,
}

/// The lottery in `dir`, given by `flag` (a lottery folder or one of its replicates): its
/// hyperparameters, its replicate and its store.
pub(crate) fn from_folder(
    flag: &str,
    dir: &Path,
    replicate: Option<u64>,
) -> anyhow::Result<(LotteryHparams, u64, Store)> {
    // A source that does not exist is a typo, never a new lottery to train.
    if !dir.is_dir() {
        bail!(
            "{flag} {}: no such folder{}",
            dir.display(),
            lth_store::did_you_mean(dir)
        );
    }
    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let (folder, replicate) = match name(dir)
        .as_deref()
        .filter(|n| n.starts_with(layout::REPLICATE_PREFIX))
    {
        Some(n) => {
            let n = layout::replicate_of(n)
                .with_context(|| format!("{flag} {}: bad replicate folder", dir.display()))?;
            if replicate.is_some_and(|r| r != n) {
                bail!(
                    "{flag} {} is replicate {n}, but --replicate says otherwise",
                    dir.display()
                );
            }
            (dir.parent().unwrap_or(dir).to_owned(), n)
        }
        None => (dir.to_owned(), replicate.unwrap_or(1)),
    };
    if !name(&folder).is_some_and(|n| RunKind::Lottery.holds(&n)) {
        bail!(
            "{flag} {}: expected a lottery folder (runs/lottery_<hash>, or its replicate_<n>)",
            dir.display()
        );
    }
    let hp: LotteryHparams = RunDir::new(&folder).hparams()?.with_context(|| {
        format!(
            "{flag} {}: no hparams.json in {}",
            dir.display(),
            folder.display()
        )
    })?;
    let chosen = folder.join(layout::replicate(replicate));
    if !chosen.is_dir() {
        let mut have: Vec<String> = std::fs::read_dir(&folder)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                    .filter(|n| n.starts_with(layout::REPLICATE_PREFIX))
                    .collect()
            })
            .unwrap_or_default();
        have.sort();
        bail!(
            "{flag} {}: {} has no replicate {replicate} (it has {}); train it with `lth lottery` \
             first",
            dir.display(),
            folder.display(),
            if have.is_empty() {
                "none".to_owned()
            } else {
                have.join(", ")
            }
        );
    }
    let root = folder
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
    Ok((hp, replicate, Store::new(root)))
}

pub fn run_elastic(args: &ElasticArgs) -> anyhow::Result<()> {
    let common = &args.lottery.common;
    let (source_hp, replicate, source_store) = match &args.ticket.from {
        Some(dir) => {
            if args.lottery.flags.train.model.is_some() {
                bail!("give the source as --from DIR or as lottery flags (--model ...), not both");
            }
            from_folder(
                "--from",
                dir,
                Some(args.lottery.flags.replicate).filter(|&r| r != 1),
            )?
        }
        None => (
            args.lottery.resolve()?,
            args.lottery.flags.replicate,
            Store::new(&common.runs_dir),
        ),
    };
    let hp = TransplantHparams::elastic(source_hp, args.ticket.level, &args.to, &args.map)?;
    let data = common.data(&hp.source.train.dataset)?;
    drive(
        hp,
        replicate,
        &source_store,
        common,
        &data,
        &data,
        args.ticket.random,
    )
}

pub fn run_transfer(args: &TransferArgs) -> anyhow::Result<()> {
    let Some(dir) = &args.ticket.from else {
        bail!("--from DIR is required: the source lottery's folder (runs/lottery_<hash>)");
    };
    let (source_hp, replicate, source_store) = from_folder("--from", dir, args.replicate)?;
    let hp = match (&args.dataset, args.optimizer) {
        (Some(dataset), _) => {
            TransplantHparams::transfer(source_hp, args.ticket.level, dataset, args.output)?
        }
        (None, Some(optimizer)) => {
            let recipe = OptimizerRecipe::from_flags(
                optimizer,
                args.lr,
                args.momentum,
                args.nesterov,
                args.weight_decay,
                "--",
            )?;
            TransplantHparams::optimizer(source_hp, args.ticket.level, recipe)?
        }
        (None, None) => bail!("give the destination: --dataset or --optimizer"),
    };
    let source_data = args.common.data(&hp.source.train.dataset)?;
    let target_data = args.common.data(&hp.target().dataset)?;
    drive(
        hp,
        replicate,
        &source_store,
        &args.common,
        &source_data,
        &target_data,
        args.ticket.random,
    )
}

fn drive(
    hp: TransplantHparams,
    replicate: u64,
    source_store: &Store,
    common: &CommonArgs,
    source_data: &lth_train::Data,
    target_data: &lth_train::Data,
    random: Option<u64>,
) -> anyhow::Result<()> {
    let level = hp.level;
    let source = Lottery::new(source_store, hp.source.clone(), replicate, source_data)?;
    let mut bar = Bar::new(common.quiet);
    train_levels(&source, &(0..=level).collect::<Vec<_>>(), &mut bar)?;
    let kind = hp.kind();
    let transplant = Transplant::new(&Store::new(&common.runs_dir), hp, &source, target_data)?;
    eprintln!(
        "{kind}: level {level} of {} moved to {}; folder {}",
        source.dir().path().display(),
        transplant.hparams().destination(),
        transplant.dir().path().display()
    );
    let mut units = vec![Planted::Ticket];
    units.extend(random.map(|seed| Planted::Random { seed }));
    let mut rows: Vec<(String, f64, RunSummary)> = Vec::new();
    let source_summary = source.level_dir(level).done_summary::<RunSummary>()?;
    for planted in units {
        if !transplant.unit_dir(planted).is_done()? {
            eprintln!("{kind}: training {}", planted.name());
        }
        let summary = transplant
            .run(planted, &mut bar)
            .with_context(|| format!("{kind} {}", planted.name()))?;
        let mask = lth_prune::Mask::load(&transplant.unit_dir(planted).join(lth_prune::MASK_FILE))?;
        rows.push((planted.name(), mask.density(), summary));
    }
    let pct = |x: f64| format!("{:.2}%", 100.0 * x);
    println!(
        "{:<16} {:>10} {:>10} {:>10}",
        "unit", "remaining", "final acc", "best acc"
    );
    if let Some(s) = source_summary {
        let m = source.mask(level)?;
        println!(
            "{:<16} {:>10} {:>10} {:>10}",
            format!("source level {level}"),
            pct(m.density()),
            pct(s.final_test_accuracy),
            pct(s.best_test_accuracy)
        );
    }
    for (name, density, s) in rows {
        println!(
            "{:<16} {:>10} {:>10} {:>10}",
            name,
            pct(density),
            pct(s.final_test_accuracy),
            pct(s.best_test_accuracy)
        );
    }
    println!("folder: {}", transplant.dir().path().display());
    Ok(())
}
