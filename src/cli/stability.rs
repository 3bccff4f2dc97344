//! `lth stability` and `lth interpolate`: measurements on a lottery level, training what is missing.

use clap::Args;

use lth_stability::{BnStats, Split, Subnetwork, interpolation, stability, summarize};

use super::lottery::{GridArg, LotteryArgs, RewindGrid, load, open, train_levels};
use super::progress::Bar;

#[derive(Args, Debug)]
pub struct StabilityArgs {
    #[command(flatten)]
    lottery: LotteryArgs,
    /// The lottery level whose subnetworks are measured (levels up to it are trained if missing).
    #[arg(long)]
    level: u64,
    /// Samples per measurement: each trains two IMP copies, two random copies and one full copy.
    #[arg(long, default_value_t = 3, value_parser = super::at_least::<1, u64>)]
    samples: u64,
    /// Train up to N copies at once, packed into one network (default 1 on the CPU, where
    /// packing does not pay, 8 on CUDA). Results equal unpacked copies' to float tolerance.
    #[arg(long, value_name = "N", value_parser = super::at_least::<1, usize>)]
    pack: Option<usize>,
    #[command(flatten)]
    grid: GridArg,
}

#[derive(Args, Debug)]
pub struct InterpolateArgs {
    #[command(flatten)]
    lottery: LotteryArgs,
    /// The lottery level (level 0 with --subnetwork imp or dense: the dense network).
    #[arg(long)]
    level: u64,
    /// imp, random, or dense (the full network from the rewind point).
    #[arg(long, default_value = "imp")]
    subnetwork: Subnetwork,
    /// Evenly spaced values of α from 0 to 1 (at least 2: the two ends).
    #[arg(long, default_value_t = 30, value_parser = super::at_least::<2, usize>)]
    points: usize,
    /// Evaluate on the test or the training split.
    #[arg(long, default_value = "test")]
    split: Split,
    /// BatchNorm statistics of interpolated networks: recompute (from training data) or
    /// interpolate. Networks without BatchNorm are unaffected.
    #[arg(long, default_value = "recompute", value_parser = parse_bn)]
    bn: BnStats,
    #[command(flatten)]
    grid: GridArg,
}

fn parse_bn(s: &str) -> Result<BnStats, String> {
    match s {
        "recompute" => Ok(BnStats::Recompute),
        "interpolate" => Ok(BnStats::Interpolate),
        _ => Err(format!(
            "unknown BatchNorm policy `{s}`: expected recompute or interpolate"
        )),
    }
}

/// The stability copies `args` asks for on `lottery`, its levels up to the measured one trained
/// first if missing.
fn measure(
    args: &StabilityArgs,
    lottery: &lth_lottery::Lottery,
    bar: &mut Bar,
) -> anyhow::Result<Vec<lth_stability::StabilityRow>> {
    train_levels(lottery, &(0..=args.level).collect::<Vec<_>>(), bar)?;
    eprintln!(
        "level {}: stability copies ({} samples)",
        args.level, args.samples
    );
    let pack = args
        .pack
        .unwrap_or_else(|| lth_train::packed::default_pack(lottery.data().train.device()));
    Ok(stability(lottery, args.level, args.samples, pack, bar)?)
}

pub fn run_stability(args: &StabilityArgs) -> anyhow::Result<()> {
    if !args.grid.rewind_grid.is_empty() {
        return stability_grid(args);
    }
    let (hp, data) = load(&args.lottery)?;
    let lottery = open(&args.lottery, hp, &data)?;
    let mut bar = Bar::new(args.lottery.common.quiet);
    let rows = measure(args, &lottery, &mut bar)?;
    let remaining = rows.first().map_or(1.0, |r| r.weights_remaining);
    println!(
        "level {} ({:.2}% of weights remaining), {} samples",
        args.level,
        100.0 * remaining,
        args.samples
    );
    println!(
        "{:<11} {:<10} {:>20} {:>22} {:>9} {:>9} {:>6}",
        "analysis", "subnetwork", "L2 distance", "[min, max]", "angle", "accuracy", "comp"
    );
    for s in summarize(&rows) {
        println!(
            "{:<11} {:<10} {:>20} {:>22} {:>8.2}° {:>8.2}% {:>6}",
            s.analysis,
            s.subnetwork,
            format!("{:.3} ± {:.3}", s.mean_l2, s.std_l2),
            format!("[{:.3}, {:.3}]", s.min_l2, s.max_l2),
            s.mean_angle,
            100.0 * s.mean_accuracy,
            s.comp.map_or(String::new(), |c| format!("{c:.2}x"))
        );
    }
    println!(
        "rows: {}",
        lottery
            .dir()
            .level(args.level)
            .join("stability.csv")
            .display()
    );
    Ok(())
}

/// The interpolation `args` asks for on `lottery`, its levels up to the measured one trained
/// first if missing.
fn curve(
    args: &InterpolateArgs,
    lottery: &lth_lottery::Lottery,
    bar: &mut Bar,
) -> anyhow::Result<lth_stability::InterpolationSummary> {
    train_levels(lottery, &(0..=args.level).collect::<Vec<_>>(), bar)?;
    Ok(interpolation(
        lottery,
        args.level,
        args.subnetwork,
        args.points,
        args.split,
        args.bn,
        bar,
    )?)
}

pub fn run_interpolate(args: &InterpolateArgs) -> anyhow::Result<()> {
    if !args.grid.rewind_grid.is_empty() {
        return interpolate_grid(args);
    }
    let (hp, data) = load(&args.lottery)?;
    let lottery = open(&args.lottery, hp, &data)?;
    let mut bar = Bar::new(args.lottery.common.quiet);
    let curve = curve(args, &lottery, &mut bar)?;
    println!(
        "level {}, {} subnetwork, {} split: {:>6} {:>8} {:>8}",
        args.level,
        curve.subnetwork,
        args.split.label(),
        "alpha",
        "error",
        "loss"
    );
    for p in &curve.points {
        println!(
            "{:>44.3} {:>7.2}% {:>8.4}",
            p.alpha,
            100.0 * p.error,
            p.loss
        );
    }
    let verdict = if curve.barrier < 0.02 {
        "stable (< 2 points)"
    } else {
        "unstable (≥ 2 points)"
    };
    println!(
        "error barrier: {:.2} percentage points: {verdict}",
        100.0 * curve.barrier
    );
    Ok(())
}

/// One row of `stability_level_<L>.csv`: an analysis of one subnetwork at one rewind point.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StabilityGridRow {
    rewind: String,
    rewind_iteration: u64,
    rewind_fraction: f64,
    level: u64,
    weights_remaining: f64,
    analysis: String,
    subnetwork: String,
    samples: u64,
    mean_l2: f64,
    std_l2: f64,
    mean_angle: f64,
    mean_accuracy: f64,
    comp: Option<f64>,
    lottery: String,
}

/// `stability --rewind-grid`: the stability analyses of one lottery per rewind point.
fn stability_grid(args: &StabilityArgs) -> anyhow::Result<()> {
    let (_, data) = load(&args.lottery)?;
    let g = RewindGrid::new(&args.lottery, &args.grid.rewind_grid, &data)?;
    let lotteries = g.lotteries(&args.lottery, &data)?;
    let mut bar = Bar::new(args.lottery.common.quiet);
    let mut rows = Vec::new();
    for (lottery, &(k, it)) in lotteries.iter().zip(&g.points) {
        let measured = measure(args, lottery, &mut bar)?;
        let remaining = measured.first().map_or(1.0, |r| r.weights_remaining);
        let mut line = g.label(k, it);
        for s in summarize(&measured) {
            line.push_str(&format!(
                " {} {} {:.3};",
                s.analysis, s.subnetwork, s.mean_l2
            ));
            rows.push(StabilityGridRow {
                rewind: k.to_string(),
                rewind_iteration: it,
                rewind_fraction: g.fraction(it),
                level: args.level,
                weights_remaining: remaining,
                analysis: s.analysis,
                subnetwork: s.subnetwork,
                samples: s.n,
                mean_l2: s.mean_l2,
                std_l2: s.std_l2,
                mean_angle: s.mean_angle,
                mean_accuracy: s.mean_accuracy,
                comp: s.comp,
                lottery: lottery.dir().path().display().to_string(),
            });
        }
        println!(
            "{} (L2 distances, level {})",
            line.trim_end_matches(';'),
            args.level
        );
    }
    let csv = g.save(
        &args.lottery,
        &format!(
            "{}.csv",
            lth_store::layout::at_level("stability", args.level)
        ),
        &rows,
    )?;
    println!("rewind grid: {}", csv.display());
    Ok(())
}

/// One row of `interpolation_level_<L>_<subnetwork>_<split>.csv`: the interpolation of one
/// subnetwork at one rewind point.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct InterpolationGridRow {
    rewind: String,
    rewind_iteration: u64,
    rewind_fraction: f64,
    level: u64,
    subnetwork: String,
    split: String,
    points: usize,
    /// Errors of the two trained copies (α = 0 and α = 1).
    error_start: f64,
    error_end: f64,
    barrier: f64,
    lottery: String,
}

/// `interpolate --rewind-grid`: the error barrier of one lottery per rewind point.
fn interpolate_grid(args: &InterpolateArgs) -> anyhow::Result<()> {
    let (_, data) = load(&args.lottery)?;
    let g = RewindGrid::new(&args.lottery, &args.grid.rewind_grid, &data)?;
    let lotteries = g.lotteries(&args.lottery, &data)?;
    let mut bar = Bar::new(args.lottery.common.quiet);
    let split = args.split.label();
    let mut rows = Vec::new();
    for (lottery, &(k, it)) in lotteries.iter().zip(&g.points) {
        let curve = curve(args, lottery, &mut bar)?;
        let error = |i: usize| curve.points.get(i).map_or(f64::NAN, |p| p.error);
        println!(
            "{} {} error barrier {:.2} percentage points",
            g.label(k, it),
            curve.subnetwork,
            100.0 * curve.barrier
        );
        rows.push(InterpolationGridRow {
            rewind: k.to_string(),
            rewind_iteration: it,
            rewind_fraction: g.fraction(it),
            level: args.level,
            subnetwork: curve.subnetwork.clone(),
            split: split.into(),
            points: curve.points.len(),
            error_start: error(0),
            error_end: error(curve.points.len().saturating_sub(1)),
            barrier: curve.barrier,
            lottery: lottery.dir().path().display().to_string(),
        });
    }
    let csv = g.save(
        &args.lottery,
        &format!(
            "{}_{}_{split}.csv",
            lth_store::layout::at_level("interpolation", args.level),
            args.subnetwork.label()
        ),
        &rows,
    )?;
    println!("rewind grid: {}", csv.display());
    Ok(())
}
