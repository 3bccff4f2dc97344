//! `lth repro <target>`: run a reproduction target's rows at a scale, judge its snapshot cells,
//! and write `results.csv`, `samples.csv`, `table.md` and a plot under `target/repro/<target>/<scale>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser};
use serde::Serialize;

use lth_data::data_root;
use lth_report::spec::{Experiment, Row};
use lth_report::{
    Outcome, RowResult, RowStatus, Source, Spec, Summary, Verdict, judge, load_cells, plot_svg,
    record_measured, render_table, render_verdicts, save_cells, skipped,
};
use lth_stability::{StabilityRow, stability};

use super::CommonArgs;
use super::lottery::{LotteryArgs, load, open, train_levels};
use super::progress::Bar;

#[derive(Args, Debug)]
pub struct ReproArgs {
    /// The target: a folder of the repro directory holding spec.toml (e.g. fig3).
    pub target: String,
    /// smoke (seconds), quick (minutes on a CPU) or paper (the paper's settings).
    #[arg(long, default_value = "quick")]
    pub scale: String,
    /// Samples per cell (default: the scale's).
    #[arg(long)]
    pub samples: Option<u64>,
    /// Exit with failure when any checked cell fails.
    #[arg(long)]
    pub check: bool,
    /// Write this run's measurements into expected.csv as the measured snapshot of its scale.
    #[arg(long)]
    pub record: bool,
    /// Where the targets live.
    #[arg(long, default_value = "repro", value_name = "DIR")]
    pub repro_dir: PathBuf,
    /// Where reports are written (<out>/<target>/<scale>/).
    #[arg(long, default_value = "target/repro", value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `lth lottery` flags, parsed on their own (to validate a spec row's flags).
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct Flags {
    #[command(flatten)]
    lottery: LotteryArgs,
}

/// The argument vector of a row's flags.
fn argv(row: &Row, flags: &[(String, String, usize)]) -> Vec<String> {
    let mut v = vec!["--model".to_owned(), row.model.clone()];
    for (k, value, _) in flags {
        v.push(format!("--{}", k.replace('_', "-")));
        v.push(value.clone());
    }
    v
}

/// Checks each flag of a row on its own, so an error points at its line of the spec.
fn validate(spec: &Spec, row: &Row, flags: &[(String, String, usize)]) -> anyhow::Result<()> {
    for flag in flags {
        if let Err(e) = Flags::try_parse_from(argv(row, std::slice::from_ref(flag))) {
            let first = e.to_string();
            let first = first
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            return Err(spec
                .error_at(
                    flag.2,
                    format!("row `{}`: flag `{}`: {first}", row.id, flag.0),
                )
                .into());
        }
    }
    Ok(())
}

/// The dataset a row runs on here (and, for a labelled variant, why the paper's dataset was not
/// used), or why it cannot run.
fn choose(row: &Row, root: &Path) -> Result<(String, Option<String>), String> {
    if let Err(e) = lth_models::family(&row.model) {
        return Err(format!("{e}"));
    }
    let mut reasons = Vec::new();
    for (i, name) in std::iter::once(&row.dataset)
        .chain(&row.variants)
        .enumerate()
    {
        match lth_data::info(name) {
            Err(_) => reasons.push(format!("dataset `{name}` is not supported by lth yet")),
            Ok(info) => match info.absent(root) {
                None => return Ok((name.clone(), (i > 0).then(|| reasons.join("; ")))),
                Some(problem) => {
                    reasons.push(format!("{name} is absent: {problem} {}", info.how_to_get))
                }
            },
        }
    }
    Err(reasons.join("; "))
}

/// One measured value: metric, sample number, value.
type Sample = (String, u64, f64);

/// Summaries by metric of a stability measurement, and its samples.
fn summarize(rows: &[StabilityRow]) -> (BTreeMap<String, Summary>, Vec<Sample>) {
    let pick = |analysis: &str, sub: &str, f: fn(&StabilityRow) -> f64| -> Vec<(u64, f64)> {
        rows.iter()
            .filter(|r| r.analysis == analysis && r.subnetwork == sub)
            .map(|r| (r.sample, f(r)))
            .collect()
    };
    let series: Vec<(&str, Vec<(u64, f64)>)> = vec![
        ("data_order_imp", pick("data_order", "imp", |r| r.l2)),
        ("data_order_random", pick("data_order", "random", |r| r.l2)),
        ("pruning_imp", pick("pruning", "imp", |r| r.l2)),
        ("pruning_random", pick("pruning", "random", |r| r.l2)),
        (
            "accuracy_imp",
            pick("data_order", "imp", |r| r.test_accuracy_a),
        ),
        (
            "accuracy_random",
            pick("data_order", "random", |r| r.test_accuracy_a),
        ),
    ];
    let mut metrics = BTreeMap::new();
    let mut samples = Vec::new();
    for (name, values) in &series {
        let v: Vec<f64> = values.iter().map(|x| x.1).collect();
        metrics.insert((*name).to_owned(), Summary::of(&v));
        samples.extend(values.iter().map(|(i, x)| ((*name).to_owned(), *i, *x)));
    }
    let ratio = |a: &str, b: &str| metrics[a].mean / metrics[b].mean;
    let comps = [
        (
            "comp_data_order",
            ratio("data_order_random", "data_order_imp"),
        ),
        ("comp_pruning", ratio("pruning_random", "pruning_imp")),
        (
            "weights_remaining",
            rows.first().map_or(f64::NAN, |r| r.weights_remaining),
        ),
    ];
    for (name, value) in comps {
        metrics.insert(name.to_owned(), Summary::of(&[value]));
        samples.push((name.to_owned(), 0, value));
    }
    (metrics, samples)
}

#[derive(Serialize)]
struct SampleRow<'a> {
    row: &'a str,
    dataset: &'a str,
    scale: &'a str,
    metric: &'a str,
    sample: u64,
    value: f64,
}

#[derive(Serialize)]
struct ResultLine<'a> {
    row: &'a str,
    dataset: &'a str,
    metric: &'a str,
    source: Source,
    scale: &'a str,
    check: String,
    outcome: String,
    ours_mean: Option<f64>,
    ours_sd: Option<f64>,
    ours_n: Option<u64>,
    reference_mean: Option<f64>,
    reference_spread: Option<f64>,
    reference_n: Option<u64>,
    detail: &'a str,
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| path.display().to_string())?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}

pub fn run(args: &ReproArgs) -> anyhow::Result<()> {
    let folder = args.repro_dir.join(&args.target);
    let spec_path = folder.join("spec.toml");
    if !spec_path.is_file() {
        let known: Vec<String> = lth_report::targets(&args.repro_dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                p.parent()?
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect();
        bail!(
            "no reproduction target `{}`: {} does not exist (targets: {})",
            args.target,
            spec_path.display(),
            known.join(", ")
        );
    }
    let spec = Spec::load(&spec_path)?;
    let Some(scale) = spec.scales.get(&args.scale) else {
        bail!(
            "unknown scale `{}` for {}: expected one of {}",
            args.scale,
            args.target,
            spec.scales.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let samples = args.samples.unwrap_or(scale.samples);
    if samples < 2 {
        bail!("--samples {samples}: at least 2 are needed for the statistical checks");
    }
    let expected_path = folder.join("expected.csv");
    let cells = load_cells(&expected_path)?;
    let device = args.common.device()?;
    let device_label = if device.is_cuda() { "cuda" } else { "cpu" };
    let root = data_root(args.common.data.data_dir.as_deref());
    // Every row's flags are checked before anything trains.
    for row in &spec.rows {
        validate(&spec, row, &spec.resolve(row, &args.scale).1)?;
    }
    eprintln!(
        "{}: {} ({} scale: {}; {samples} samples per cell; {device_label})",
        args.target, spec.title, args.scale, scale.description
    );
    let mut results = Vec::new();
    let mut sample_rows: Vec<(String, String, String, u64, f64)> = Vec::new();
    for row in &spec.rows {
        let (level, flags) = spec.resolve(row, &args.scale);
        let (dataset, variant) = match choose(row, &root) {
            Ok(choice) => choice,
            Err(reason) => {
                eprintln!("{}: skipped: {reason}", row.id);
                results.push(RowResult {
                    row: row.id.clone(),
                    label: row.label.clone(),
                    dataset: row.dataset.clone(),
                    variant_of: None,
                    status: RowStatus::Skipped { reason },
                });
                continue;
            }
        };
        eprintln!(
            "{}: {} on {dataset}{} at level {level}",
            row.id,
            row.model,
            if variant.is_some() {
                " (a labelled variant: the paper's dataset is absent)"
            } else {
                ""
            }
        );
        let mut v = argv(row, &flags);
        v.extend([
            "--dataset".into(),
            dataset.clone(),
            "--device".into(),
            device_label.into(),
        ]);
        v.extend([
            "--runs-dir".into(),
            args.common.runs_dir.display().to_string(),
        ]);
        if let Some(d) = &args.common.data.data_dir {
            v.extend(["--data-dir".into(), d.display().to_string()]);
        }
        if args.common.quiet {
            v.push("--quiet".into());
        }
        if args.common.channels_last {
            v.push("--channels-last".into());
        }
        v.extend([
            "--cudnn-benchmark".into(),
            args.common.cudnn_benchmark.to_string(),
        ]);
        let lottery_args = Flags::try_parse_from(&v)
            .with_context(|| format!("row `{}`", row.id))?
            .lottery;
        let measured = match spec.experiment {
            Experiment::Stability => {
                let (hp, data) = load(&lottery_args)?;
                let lottery = open(&lottery_args, hp, &data)?;
                let mut bar = Bar::new(args.common.quiet);
                train_levels(&lottery, &(0..=level).collect::<Vec<_>>(), &mut bar)?;
                stability(&lottery, level, samples, &mut bar)
                    .with_context(|| format!("row `{}`", row.id))?
            }
        };
        let (metrics, values) = summarize(&measured);
        sample_rows.extend(
            values
                .into_iter()
                .map(|(m, i, x)| (row.id.clone(), dataset.clone(), m, i, x)),
        );
        results.push(RowResult {
            row: row.id.clone(),
            label: if variant.is_some() {
                format!("{} · {dataset} variant", row.label)
            } else {
                row.label.clone()
            },
            dataset,
            variant_of: variant,
            status: RowStatus::Ran { metrics },
        });
    }

    // Judge every cell of the scale (and every paper cell) of every row.
    let mut verdicts: Vec<Verdict> = Vec::new();
    for r in &results {
        for cell in cells.iter().filter(|c| c.row == r.row) {
            if !(cell.scale == args.scale || cell.source == Source::Paper) {
                continue;
            }
            verdicts.push(match &r.status {
                RowStatus::Skipped { reason } => skipped(cell, reason.clone()),
                RowStatus::Ran { metrics }
                    if cell.dataset == r.dataset && cell.scale == args.scale =>
                {
                    judge(cell, metrics)
                }
                RowStatus::Ran { .. } if cell.dataset != r.dataset => skipped(
                    cell,
                    match &r.variant_of {
                        Some(why) => format!("ran on {}, a labelled variant ({why})", r.dataset),
                        None => format!(
                            "this run is on {}; the cell is for {}",
                            r.dataset, cell.dataset
                        ),
                    },
                ),
                RowStatus::Ran { .. } => skipped(
                    cell,
                    format!(
                        "the paper's numbers are checked at the paper scale, not {}",
                        args.scale
                    ),
                ),
            });
        }
    }

    let out = args.out.join(&args.target).join(&args.scale);
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let table = render_table(&spec, &args.scale, device_label, &results, &cells);
    std::fs::write(out.join("table.md"), &table)?;
    let samples_csv: Vec<SampleRow> = sample_rows
        .iter()
        .map(|(row, dataset, metric, sample, value)| SampleRow {
            row,
            dataset,
            scale: &args.scale,
            metric,
            sample: *sample,
            value: *value,
        })
        .collect();
    write_csv(&out.join("samples.csv"), &samples_csv)?;
    let lines: Vec<ResultLine> = verdicts
        .iter()
        .map(|v| {
            let ours = results.iter().find_map(|r| match &r.status {
                RowStatus::Ran { metrics }
                    if r.row == v.cell.row && r.dataset == v.cell.dataset =>
                {
                    metrics.get(&v.cell.metric).copied()
                }
                _ => None,
            });
            ResultLine {
                row: &v.cell.row,
                dataset: &v.cell.dataset,
                metric: &v.cell.metric,
                source: v.cell.source,
                scale: &v.cell.scale,
                check: v.cell.check.to_string(),
                outcome: v.outcome.to_string(),
                ours_mean: ours.map(|s| s.mean),
                ours_sd: ours.map(|s| s.sd),
                ours_n: ours.map(|s| s.n),
                reference_mean: v.cell.mean,
                reference_spread: v.cell.spread,
                reference_n: v.cell.n,
                detail: &v.detail,
            }
        })
        .collect();
    write_csv(&out.join("results.csv"), &lines)?;
    let plot = out.join(format!("{}.svg", args.target));
    plot_svg(&spec, &results, &plot)?;

    println!("{table}");
    // Rows that did not run are one line each; their cells are all in results.csv.
    let ran: Vec<Verdict> = verdicts
        .iter()
        .filter(|v| {
            results
                .iter()
                .any(|r| r.row == v.cell.row && matches!(r.status, RowStatus::Ran { .. }))
        })
        .cloned()
        .collect();
    print!("{}", render_verdicts(&ran));
    for r in &results {
        if let RowStatus::Skipped { reason } = &r.status {
            let n = verdicts.iter().filter(|v| v.cell.row == r.row).count();
            println!("SKIPPED {} ({n} cells): {reason}", r.row);
        }
    }
    println!(
        "wrote {}, {}, {}, {}",
        out.join("table.md").display(),
        out.join("results.csv").display(),
        out.join("samples.csv").display(),
        plot.display()
    );

    if args.record {
        let command = format!(
            "cargo xtask repro {} --scale {} --samples {samples} --device {device_label}",
            args.target, args.scale
        );
        // Read the table again: another run may have recorded another scale meanwhile.
        let mut latest = load_cells(&expected_path)?;
        for r in &results {
            if let RowStatus::Ran { metrics } = &r.status {
                let measured: Vec<(String, Summary)> =
                    metrics.iter().map(|(k, v)| (k.clone(), *v)).collect();
                record_measured(
                    &mut latest,
                    &r.row,
                    &r.dataset,
                    &args.scale,
                    device_label,
                    &command,
                    &measured,
                );
            }
        }
        save_cells(&expected_path, &latest)?;
        println!(
            "recorded the measured cells of this run in {}",
            expected_path.display()
        );
    }
    let failed = verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Fail)
        .count();
    if args.check && failed > 0 {
        bail!(
            "{failed} checked cell(s) failed (see {})",
            out.join("results.csv").display()
        );
    }
    Ok(())
}
