//! `lth lottery` and `lth lottery branch`: IMP levels and the baselines run off them.

use anyhow::Context;
use clap::{Args, Subcommand};

use lth_lottery::flags::LotteryFlags;
use lth_lottery::{
    BranchHparams, BranchKind, GridHparams, GridRow, Lottery, LotteryHparams, ResultRow,
    rewind_points,
};
use lth_store::{CsvLog, Store};
use lth_train::{Data, Steps};

use super::CommonArgs;
use super::progress::Bar;

/// Flags that determine a lottery (unset flags keep the model's recipe), and where it runs.
#[derive(Args, Debug, Clone)]
pub struct LotteryArgs {
    #[command(flatten)]
    pub flags: LotteryFlags,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl LotteryArgs {
    /// The model's lottery recipe with these flags applied.
    pub fn resolve(&self) -> anyhow::Result<LotteryHparams> {
        Ok(self.flags.resolve()?)
    }
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct LotteryCmd {
    #[command(subcommand)]
    sub: Option<LotterySub>,
    #[command(flatten)]
    args: LotteryRun,
}

#[derive(Args, Debug)]
struct LotteryRun {
    #[command(flatten)]
    lottery: LotteryArgs,
    /// Pruning levels after the dense level 0 (levels 0..=N are trained).
    #[arg(long, required = true)]
    levels: Option<u64>,
    /// Also train these branches off every level from 1 (comma-separated:
    /// random-reinit, random-prune, sign-preserving, reshuffle, supermask, supermask-signed).
    #[arg(long, value_delimiter = ',')]
    branch: Vec<BranchKind>,
    /// Seed of the branches' randomness (default: the replicate number).
    #[arg(long)]
    branch_seed: Option<u64>,
    /// Train up to N branches at once, packed into one network (default 1 on the CPU, where
    /// packing does not pay, 8 on CUDA). Results equal unpacked runs' to float tolerance.
    #[arg(long, value_name = "N", value_parser = super::at_least::<1, usize>)]
    pack: Option<usize>,
    #[command(flatten)]
    grid: GridArg,
}

/// `--rewind-grid`, as `lottery`, `stability` and `interpolate` take it.
#[derive(Args, Debug)]
pub struct GridArg {
    /// One lottery per rewind point instead of --rewind (comma-separated, increasing:
    /// 0,50it,100it,1ep), each rewinding to its own W_k at every level; prints one line per point
    /// and writes the points' table to the grid's folder (rewind_grid_<hash>/replicate_<r>/).
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "rewind",
        value_name = "K,K,..."
    )]
    pub rewind_grid: Vec<Steps>,
}

#[derive(Subcommand, Debug)]
enum LotterySub {
    /// Train a baseline off finished levels of a lottery (the same lottery flags select it).
    Branch(BranchRun),
}

#[derive(Args, Debug)]
struct BranchRun {
    #[command(flatten)]
    lottery: LotteryArgs,
    /// random-reinit, random-prune, sign-preserving (signed-constant), random-uniform, reshuffle,
    /// or, evaluated on the untrained W0 without training, supermask or supermask-signed.
    #[arg(long)]
    kind: BranchKind,
    /// Run the branch off levels 1..=N.
    #[arg(long, conflicts_with = "level")]
    levels: Option<u64>,
    /// Run the branch off this level (repeatable).
    #[arg(long)]
    level: Vec<u64>,
    /// Seed of the branch's randomness (default: the replicate number).
    #[arg(long)]
    seed: Option<u64>,
    /// Train up to N of the branches at once, packed into one network (default 1 on the CPU,
    /// where packing does not pay, 8 on CUDA).
    #[arg(long, value_name = "N", value_parser = super::at_least::<1, usize>)]
    pack: Option<usize>,
}

pub fn run(cmd: &LotteryCmd) -> anyhow::Result<()> {
    match (&cmd.sub, &cmd.args) {
        (Some(LotterySub::Branch(b)), _) => {
            let levels: Vec<u64> = match b.levels {
                Some(n) => (1..=n).collect(),
                None if b.level.is_empty() => anyhow::bail!("give --levels N or --level L"),
                None => b.level.clone(),
            };
            let branch = BranchHparams {
                kind: b.kind,
                seed: b.seed,
            };
            drive(&b.lottery, &[], &levels, &[branch], b.pack)
        }
        (None, r) => {
            let n = r
                .levels
                .ok_or_else(|| anyhow::anyhow!("--levels is required"))?;
            let levels: Vec<u64> = (0..=n).collect();
            let branches: Vec<BranchHparams> = r
                .branch
                .iter()
                .map(|&kind| BranchHparams {
                    kind,
                    seed: r.branch_seed,
                })
                .collect();
            let branch_levels: Vec<u64> = (1..=n).collect();
            if !r.grid.rewind_grid.is_empty() {
                return grid(r, &levels, &branch_levels, &branches);
            }
            drive(&r.lottery, &levels, &branch_levels, &branches, r.pack)
        }
    }
}

/// Loads the data of the lottery `args` selects (on the chosen device).
pub fn load(args: &LotteryArgs) -> anyhow::Result<(LotteryHparams, Data)> {
    let hp = args.resolve()?;
    let data = args.common.data(&hp.train.dataset)?;
    Ok((hp, data))
}

/// The lottery of `hp` on `data`, announced on standard error.
pub fn open<'a>(
    args: &LotteryArgs,
    hp: LotteryHparams,
    data: &'a Data,
) -> anyhow::Result<Lottery<'a>> {
    let lottery = Lottery::new(
        &Store::new(&args.common.runs_dir),
        hp,
        args.flags.replicate,
        data,
    )?;
    let (k, t) = lottery.steps();
    eprintln!(
        "lottery: {} on {}, {} pruning, rewind to step {k} of {t}, {}; folder {}",
        lottery.hparams().train.model.model,
        lottery.hparams().train.dataset.dataset,
        lottery.hparams().pruning.strategy,
        match lottery.hparams().retrain {
            lth_lottery::Retrain::WeightRewinding => "weight rewinding",
            lth_lottery::Retrain::LrRewinding => "learning-rate rewinding",
            lth_lottery::Retrain::FineTuning => "fine-tuning",
        },
        lottery.dir().path().display()
    );
    Ok(lottery)
}

/// Trains the levels of `levels` that are not done, in order; returns how many it trained.
pub fn train_levels(lottery: &Lottery, levels: &[u64], bar: &mut Bar) -> anyhow::Result<usize> {
    let mut trained = 0;
    for &level in levels {
        if lottery.level_done(level)? {
            continue;
        }
        // The bar names the unit (`training level_<n>/main`) as it starts.
        lottery
            .run_level(level, bar)
            .with_context(|| format!("level {level}"))?;
        trained += 1;
    }
    Ok(trained)
}

/// Trains `levels` in order, then each branch off each of `branch_levels`, skipping what is done:
/// up to `pack` branches at once in one packed network.
fn drive(
    args: &LotteryArgs,
    levels: &[u64],
    branch_levels: &[u64],
    branches: &[BranchHparams],
    pack: Option<usize>,
) -> anyhow::Result<()> {
    let (hp, data) = load(args)?;
    let lottery = open(args, hp, &data)?;
    let trained = train_all(args, &lottery, levels, branch_levels, branches, pack)?;
    let (results, layers) = lottery.write_tables()?;
    if trained == 0 {
        println!("already finished; nothing to train.");
    }
    let (rows, _) = lottery.results()?;
    print!("{}", table(&rows));
    println!("results: {}", results.display());
    println!("per layer: {}", layers.display());
    Ok(())
}

/// Trains what is not done of `levels` and of each branch off each of `branch_levels` (up to
/// `pack` branches at once in one packed network); returns how many units it trained.
fn train_all(
    args: &LotteryArgs,
    lottery: &Lottery,
    levels: &[u64],
    branch_levels: &[u64],
    branches: &[BranchHparams],
    pack: Option<usize>,
) -> anyhow::Result<usize> {
    let mut bar = Bar::new(args.common.quiet);
    let mut trained = train_levels(lottery, levels, &mut bar)?;
    let mut todo = Vec::new();
    for &level in branch_levels {
        for b in branches {
            if !lottery.branch_dir(level, b).is_done()? {
                eprintln!("level {level}: branch {}", b.kind.name());
                todo.push((level, b.clone()));
            }
        }
    }
    if !todo.is_empty() {
        let pack =
            pack.unwrap_or_else(|| lth_train::packed::default_pack(lottery.data().train.device()));
        if pack > 1 && todo.len() > 1 {
            eprintln!("branches: up to {pack} in one packed network");
        }
        lottery
            .run_branches(&todo, pack, &mut bar)
            .context("branches")?;
        trained += todo.len();
    }
    Ok(trained)
}

/// A grid of rewind points over the lottery that `args` selects (`--rewind-grid`): the points
/// checked before anything trains, one lottery per point, and the grid's own folder of the store
/// for its tables (`rewind_grid_<hash>/replicate_<r>/`), shared by `lottery`, `stability` and
/// `interpolate` over the same grid.
pub struct RewindGrid {
    hparams: GridHparams,
    /// Each point as given, with its iteration.
    pub points: Vec<(Steps, u64)>,
    /// Iterations of the whole training.
    pub total: u64,
}

impl RewindGrid {
    /// Checks `grid` (named `--rewind-grid` in errors) against the lottery of `args` on `data`.
    pub fn new(args: &LotteryArgs, grid: &[Steps], data: &Data) -> anyhow::Result<RewindGrid> {
        let base = args.resolve()?;
        base.validate()?;
        let per_epoch = data.iterations_per_epoch(base.train.dataset.batch_size);
        let total = base.train.training.steps.iterations(per_epoch);
        let its = rewind_points("--rewind-grid", grid, per_epoch, total)?;
        Ok(RewindGrid {
            hparams: GridHparams::new(&base, grid),
            points: grid.iter().copied().zip(its).collect(),
            total,
        })
    }

    /// The lottery of every point, each checked and announced, in the grid's order.
    pub fn lotteries<'a>(
        &self,
        args: &LotteryArgs,
        data: &'a Data,
    ) -> anyhow::Result<Vec<Lottery<'a>>> {
        self.points
            .iter()
            .map(|&(k, _)| open(args, self.hparams.at(k), data))
            .collect()
    }

    /// The fraction of training before iteration `it`.
    pub fn fraction(&self, it: u64) -> f64 {
        it as f64 / self.total as f64
    }

    /// How a point is said on its line: `k = 50it (50 iterations, 8.3% of training):`.
    pub fn label(&self, k: Steps, it: u64) -> String {
        format!(
            "k = {k} ({it} iterations, {:.1}% of training):",
            100.0 * self.fraction(it)
        )
    }

    /// Writes `rows` to `file` in the grid's folder of the store; returns its path.
    pub fn save<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        args: &LotteryArgs,
        file: &str,
        rows: &[T],
    ) -> anyhow::Result<std::path::PathBuf> {
        let run =
            Store::new(&args.common.runs_dir).run(lth_store::RunKind::RewindGrid, &self.hparams);
        run.create()?;
        run.bind_hparams(&self.hparams)?;
        let dir = run.replicate(args.flags.replicate);
        dir.create()?;
        let path = dir.join(file);
        CsvLog::new(&path).save(rows)?;
        Ok(path)
    }
}

/// `--rewind-grid`: one lottery per rewind point, every point checked (and every lottery's
/// hyperparameters) before anything trains; one line per point at the last level, and
/// `rewind_grid.csv` in the grid's own folder of the store.
fn grid(
    r: &LotteryRun,
    levels: &[u64],
    branch_levels: &[u64],
    branches: &[BranchHparams],
) -> anyhow::Result<()> {
    let args = &r.lottery;
    let base = args.resolve()?;
    base.validate()?;
    let data = args.common.data(&base.train.dataset)?;
    let g = RewindGrid::new(args, &r.grid.rewind_grid, &data)?;
    let lotteries = g.lotteries(args, &data)?;
    let last = levels.last().copied().unwrap_or(0);
    let mut rows = Vec::new();
    let mut trained = 0;
    for (lottery, &(k, it)) in lotteries.iter().zip(&g.points) {
        trained += train_all(args, lottery, levels, branch_levels, branches, r.pack)
            .with_context(|| format!("rewind point {k}"))?;
        lottery.write_tables()?;
        let (results, _) = lottery.results()?;
        let mut line = g.label(k, it);
        for row in results.iter().filter(|x| x.level == last) {
            line.push_str(&format!(
                " {} {:.2}%",
                row.branch,
                100.0 * row.final_test_accuracy
            ));
            rows.push(GridRow {
                rewind: k.to_string(),
                rewind_iteration: it,
                rewind_fraction: g.fraction(it),
                level: row.level,
                branch: row.branch.clone(),
                weights_remaining: row.weights_remaining,
                final_test_accuracy: row.final_test_accuracy,
                best_test_accuracy: row.best_test_accuracy,
                lottery: lottery.dir().path().display().to_string(),
            });
        }
        println!("{line} at level {last}");
    }
    if trained == 0 {
        println!("already finished; nothing to train.");
    }
    let csv = g.save(args, "rewind_grid.csv", &rows)?;
    println!("rewind grid: {}", csv.display());
    Ok(())
}

/// The results as an aligned text table.
fn table(rows: &[ResultRow]) -> String {
    let pct = |x: f64| format!("{:.2}%", 100.0 * x);
    let mut out = format!(
        "{:>5}  {:<16} {:>10} {:>10} {:>10} {:>14} {:>14}\n",
        "level", "branch", "remaining", "final acc", "best acc", "min val step", "acc there"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>5}  {:<16} {:>10} {:>10} {:>10} {:>14} {:>14}\n",
            r.level,
            r.branch,
            pct(r.weights_remaining),
            pct(r.final_test_accuracy),
            pct(r.best_test_accuracy),
            r.min_val_loss_step.map_or("-".into(), |s| s.to_string()),
            r.test_accuracy_at_min_val_loss.map_or("-".into(), pct),
        ));
    }
    out
}
