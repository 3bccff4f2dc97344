//! `lth repro <target>`: a thin front-end over `lth-repro`, which runs a reproduction target's rows
//! at a scale, judges its snapshot cells, and writes `results.csv`, `replicates.csv`,
//! `samples.csv`, `table.md` and a plot under `target/repro/<target>/<scale>/`.

use std::path::PathBuf;

use clap::Args;

use lth_repro::{Options, run_target};

use super::CommonArgs;
use super::progress::Bar;

/// The scale of a target to run, its replicates and samples, and where targets and reports live:
/// what `lth repro` and `lth grid` share.
#[derive(Args, Debug, Clone)]
pub struct ScaleArgs {
    /// smoke (seconds), quick (minutes on a CPU) or paper (the paper's settings).
    #[arg(long, default_value = "quick")]
    pub scale: String,
    /// Independent replicates per row (default: the scale's).
    #[arg(long)]
    pub replicates: Option<u64>,
    /// Samples per replicate (default: the scale's).
    #[arg(long)]
    pub samples: Option<u64>,
    /// Where the targets live.
    #[arg(long, default_value = "repro", value_name = "DIR")]
    pub repro_dir: PathBuf,
    /// Where reports are written (<out>/<target>/<scale>/).
    #[arg(long, default_value = "target/repro", value_name = "DIR")]
    pub out: PathBuf,
}

impl ScaleArgs {
    /// The options of a run of the target in folder `target` at this scale, on `device`, with the
    /// run store, data and output settings of `common`.
    pub fn options(&self, target: PathBuf, device: tch::Device, common: &CommonArgs) -> Options {
        Options {
            replicates: self.replicates,
            samples: self.samples,
            device,
            runs_dir: common.runs_dir.clone(),
            data_dir: common.data.data_dir.clone(),
            out: self.out.clone(),
            quiet: common.quiet,
            channels_last: common.channels_last,
            ..Options::new(target, &self.scale)
        }
    }
}

#[derive(Args, Debug)]
pub struct ReproArgs {
    /// The target: a folder of the repro directory (e.g. fig3), or the path of any folder holding
    /// a spec.toml and an expected.csv (your own target).
    /// Without one (and without --all), the targets are listed.
    pub target: Option<String>,
    /// List the targets of the repro directory: their rows, models, data (present or absent
    /// here) and scales.
    #[arg(long, conflicts_with_all = ["target", "all"])]
    pub list: bool,
    /// Every target of the repro directory, one after the other, with one combined report
    /// (<out>/summary.md) and one closing line of counts. What this machine cannot run (absent
    /// data, CUDA asked for and not seen) is skipped, said once per target; a broken target fails
    /// alone.
    #[arg(long, conflicts_with_all = ["target", "record", "only_replicates", "unit"])]
    pub all: bool,
    #[command(flatten)]
    pub at: ScaleArgs,
    /// Train only these replicates (comma-separated) and stop without judging, so that several
    /// processes or machines sharing --runs-dir can split a scale; a run without it judges.
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub only_replicates: Option<Vec<u64>>,
    /// Train one unit of the target and stop without judging: ROW/REPLICATE (the replicate's
    /// levels) or ROW/REPLICATE/PART (one part of its measurement, after its levels). What each
    /// task of `lth grid submit` runs.
    #[arg(long, value_name = "UNIT", conflicts_with_all = ["only_replicates", "record"])]
    pub unit: Option<lth_repro::GridUnit>,
    /// Exit 1 when any outcome is unexpected (FAIL: a regression or a contradicted claim; XPASS:
    /// a declared deviation that holds now), 2 on an error (a bad spec, a crashed target, data or
    /// a device asked for and absent), 0 otherwise (PASS, XFAIL, INCONCLUSIVE, SKIPPED).
    #[arg(long)]
    pub check: bool,
    /// Judge against the snapshots of this device class (cpu or cuda) rather than the device's
    /// own [default: the device's]. Without one, the measured cells are not checked, said once.
    #[arg(long, value_name = "CLASS")]
    pub device_class: Option<String>,
    /// Train afresh every finished unit of the run store that another commit trained (by default
    /// they are reused, and counted on one line).
    #[arg(long)]
    pub retrain: bool,
    /// Write this run's measurements into expected.csv as the measured snapshot of its scale.
    #[arg(long)]
    pub record: bool,
    /// A previous run's report folder (its <out>, e.g. last night's artifact): each cell's change
    /// since then is reported, and a cell that moved by more than its snapshot margin is flagged
    /// (MOVED) even if it still passes.
    #[arg(long, value_name = "DIR")]
    pub previous: Option<PathBuf>,
    /// Train up to N compatible runs at once, packed into one network: a row's levels across its
    /// replicates, then its measurement's plain runs (stability copies, random reinitialisations
    /// and branches) across replicates. Default 1 on the CPU, where packing does not pay, 8 on
    /// CUDA. Results equal unpacked runs' to float tolerance.
    #[arg(long, value_name = "N", value_parser = super::at_least::<1, usize>)]
    pub pack: Option<usize>,
    /// Train the replicates in up to N processes at once on this machine, each with the intra-op
    /// threads divided among them (at least one; with --threads, that many each), then judge as
    /// without it. A process trains one replicate (at most 8·N processes per target); under --all
    /// one queue holds every target's, heaviest first, so no slot idles between targets. On a
    /// CPU where one small network cannot keep every core busy (LeNet on 2 cores), N = the cores
    /// trains more per minute; each unit's numbers are those of its process's thread count. Logs
    /// go to <out>/<target>/<scale>/jobs/ [default: 1, one process]
    #[arg(long, value_name = "N", value_parser = super::at_least::<1, usize>, conflicts_with_all = ["only_replicates", "unit"])]
    pub jobs: Option<usize>,
    /// Where a process of a `--jobs` pool writes its wall time and its shares (JSON).
    #[arg(long, value_name = "FILE", hide = true)]
    pub spent_to: Option<PathBuf>,
    /// The folder through which a `--jobs` pool hands its measurements to the judging run.
    #[arg(long, value_name = "DIR", hide = true)]
    pub handoff: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The `lth` arguments every process of a `--jobs` pool of `target` runs with (before its threads,
/// `--only-replicates` and hand-off): this command's scale, store, data, device and training
/// options, and `--quiet` off, so that its log has its progress.
fn child_args(args: &ReproArgs, target: &std::path::Path) -> Vec<String> {
    let c = &args.common;
    let mut v = vec![
        "repro".to_owned(),
        target.display().to_string(),
        "--repro-dir".into(),
        args.at.repro_dir.display().to_string(),
        "--scale".into(),
        args.at.scale.clone(),
        "--out".into(),
        args.at.out.display().to_string(),
        "--runs-dir".into(),
        c.runs_dir.display().to_string(),
        "--device".into(),
        c.device.to_string(),
        "--cudnn-benchmark".into(),
        c.cudnn_benchmark.to_string(),
    ];
    if let Some(dir) = &c.data.data_dir {
        v.extend(["--data-dir".into(), dir.display().to_string()]);
    }
    for (flag, value) in [
        ("--replicates", args.at.replicates),
        ("--samples", args.at.samples),
        ("--pack", args.pack.map(|n| n as u64)),
    ] {
        if let Some(n) = value {
            v.extend([flag.to_owned(), n.to_string()]);
        }
    }
    for (flag, on) in [
        ("--channels-last", c.channels_last),
        ("--retrain", args.retrain),
        ("--retrain-damaged", c.retrain_damaged),
        ("--no-wait", c.no_wait),
    ] {
        if on {
            v.push(flag.to_owned());
        }
    }
    v
}

/// `--jobs N`: the target's replicates trained by a pool of processes ([`super::jobs`]) before
/// it is judged; `None` without `--jobs`, or when the pool would have one process.
fn pool(
    args: &ReproArgs,
    target: &std::path::Path,
    device: tch::Device,
) -> anyhow::Result<Option<super::jobs::Pooled>> {
    let Some(jobs) = args.jobs.filter(|&j| j > 1) else {
        return Ok(None);
    };
    let work = work(args, target, device)?;
    match super::jobs::train(&[work], jobs, args.common.threads, args.common.quiet)? {
        None => Ok(None),
        Some(mut results) => results.remove(0).map_err(|e| anyhow::anyhow!(e)),
    }
}

/// A target's share of a `--jobs` pool: its plan (every input checked) and its processes' command.
fn work(
    args: &ReproArgs,
    target: &std::path::Path,
    device: tch::Device,
) -> anyhow::Result<super::jobs::Work> {
    let plan = lth_repro::plan(&options(args, target.to_owned(), device))?;
    Ok(super::jobs::Work {
        plan,
        scale: args.at.scale.clone(),
        out: args.at.out.clone(),
        args: child_args(args, target),
        weight: cpu_minutes(args, &target.join("spec.toml")),
    })
}

/// A target's estimated CPU minutes at this command's scale (its spec's `cpu_minutes`; 1 when it
/// declares none or does not load).
fn cpu_minutes(args: &ReproArgs, spec_path: &std::path::Path) -> f64 {
    lth_report::Spec::load(spec_path)
        .ok()
        .and_then(|s| s.scales.get(&args.at.scale).and_then(|s| s.cpu_minutes))
        .unwrap_or(1.0)
}

/// `repro --all --jobs N`: every target's replicates trained by one pool ([`super::jobs`]) before
/// the targets are judged one by one; per target folder, what its processes took or why one
/// failed (a target whose spec or plan fails is not in it: judging it says why). Empty without
/// `--jobs`, or when the pool would have one process.
fn pool_all(
    args: &ReproArgs,
    specs: &[std::path::PathBuf],
    device: tch::Device,
) -> anyhow::Result<std::collections::BTreeMap<PathBuf, super::jobs::Trained>> {
    let mut pooled = std::collections::BTreeMap::new();
    let Some(jobs) = args.jobs.filter(|&j| j > 1) else {
        return Ok(pooled);
    };
    let mut folders = Vec::new();
    let mut works = Vec::new();
    for spec_path in specs {
        let folder = spec_path.parent().unwrap_or(&args.at.repro_dir).to_owned();
        // A spec that does not load fails its plan too.
        if let Ok(w) = work(args, &folder, device) {
            works.push(w);
            folders.push(folder);
        }
    }
    if let Some(results) = super::jobs::train(&works, jobs, args.common.threads, args.common.quiet)?
    {
        pooled.extend(folders.into_iter().zip(results));
    }
    Ok(pooled)
}

/// The run of `target` that judges it: after a pool, from the pool's measurements
/// (`Options::handoff`), its time counting the pool's.
fn judge(
    args: &ReproArgs,
    target: PathBuf,
    device: tch::Device,
    pooled: Option<super::jobs::Pooled>,
    progress: &mut Bar,
) -> lth_repro::Result<lth_repro::Report> {
    let mut options = options(args, target, device);
    if let Some(p) = &pooled {
        options.handoff = Some(p.handoff.clone());
    }
    let mut report = run_target(&options, progress)?;
    if let Some(p) = pooled {
        report.wall += p.timing.wall;
        report.spent = report.spent + p.timing.spent;
    }
    Ok(report)
}

/// The options of a run of `target` on `device`.
pub(super) fn options(args: &ReproArgs, target: PathBuf, device: tch::Device) -> Options {
    Options {
        only_replicates: args.only_replicates.clone(),
        unit: args.unit.clone(),
        record: args.record,
        pack: args.pack,
        device_class: args.device_class.clone(),
        handoff: args.handoff.clone(),
        ..args.at.options(target, device, &args.common)
    }
}

pub fn run(args: &ReproArgs) -> anyhow::Result<()> {
    lth_store::verify::set_retrain_other_commits(args.retrain);
    if let Some(dir) = &args.common.data.data_dir
        && !dir.is_dir()
    {
        anyhow::bail!(
            "--data-dir {}: no such folder{} (see data/README.md for what goes there)",
            dir.display(),
            lth_store::did_you_mean(dir)
        );
    }
    if let Some(prev) = &args.previous
        && !prev.is_dir()
    {
        anyhow::bail!(
            "--previous {}: no such folder (a previous run's report folder, its --out){}",
            prev.display(),
            lth_store::did_you_mean(prev)
        );
    }
    if args.list || (args.target.is_none() && !args.all) {
        return list(args);
    }
    let Some(name) = &args.target else {
        return run_all(args);
    };
    let target = target_dir(&args.at.repro_dir, name);
    let device = args.common.device()?;
    let pooled = pool(args, &target, device)?;
    let mut bar = Bar::new(args.common.quiet);
    let report = judge(args, target, device, pooled, &mut bar)?;
    if let Some(path) = &args.spent_to {
        super::jobs::Timing {
            wall: report.wall,
            spent: report.spent,
        }
        .write(path)?;
    }
    print_report(&report);
    if let Some(prev) = &args.previous {
        let name = report_name(&report.out);
        for c in changes(prev, &args.at.out, &name, &args.at.scale)? {
            if c.moved {
                println!("{}", c.line(&name));
            }
        }
    }
    if let Some(why) = report.record_refused {
        return Err(lth_repro::ReproError::Refused(why).into());
    }
    if args.check {
        report.check()?;
    }
    Ok(())
}

/// A target's folder: `<repro_dir>/<name>`, or `name` itself when that is a target folder and the
/// first is not.
pub(super) fn target_dir(repro_dir: &std::path::Path, name: &str) -> PathBuf {
    let named = repro_dir.join(name);
    let own = PathBuf::from(name);
    if !named.join("spec.toml").is_file() && own.join("spec.toml").is_file() {
        own
    } else {
        named
    }
}

fn print_report(report: &lth_repro::Report) {
    println!("{}", report.table);
    print!("{}", report.verdict_lines);
    print!("{}", report.skipped_lines);
    if let Some(p) = &report.snapshot {
        println!(
            "snapshot of this scale: {} replicates on {} ({}; {}; {} threads; commit {}{})",
            p.replicates,
            p.device,
            p.cpu,
            p.simd,
            p.threads,
            if p.commit.is_empty() {
                "not recorded"
            } else {
                &p.commit
            },
            if p.dirty { ", uncommitted changes" } else { "" }
        );
    }
    println!("reports: {}", report.out.display());
    println!("{}", report.time_line());
    println!("{}", report.summary);
}

/// What became of one target in `repro --all`.
struct Outcome {
    name: String,
    /// Cells by outcome, in [`lth_report::Outcome::ALL`]'s order.
    counts: [usize; 6],
    /// The target's closing line, or why it did not run.
    line: String,
    /// Its unexpected outcomes and declared deviations, one line each.
    notable: Vec<String>,
    ran: bool,
    /// The target could not run: a bad spec, a crash.
    error: bool,
    /// Its wall time and what the time was spent on.
    wall: std::time::Duration,
    spent: lth_store::ledger::Spent,
}

impl Outcome {
    fn count(&self, o: lth_report::Outcome) -> usize {
        lth_report::Outcome::ALL
            .iter()
            .position(|&x| x == o)
            .map_or(0, |i| self.counts[i])
    }
}

/// `progress: repro --all quick: 3/10 targets; ...` on stderr, unless quiet.
fn progress_line(args: &ReproArgs, done: usize, targets: usize, pace: &lth_repro::Pace) {
    if !args.common.quiet {
        eprintln!(
            "progress: repro --all {}: {done}/{targets} targets; {}",
            args.at.scale,
            pace.line()
        );
    }
}

/// `lth repro --all`: every target of the repro directory at one scale.
fn run_all(args: &ReproArgs) -> anyhow::Result<()> {
    let specs = lth_report::targets(&args.at.repro_dir)?;
    if specs.is_empty() {
        anyhow::bail!(
            "{}: no targets (folders with a spec.toml)",
            args.at.repro_dir.display()
        );
    }
    // A device asked for and absent is an error, said before anything runs.
    let device = args.common.device()?;
    let mut outcomes = Vec::new();
    let mut since: Vec<(String, Change)> = Vec::new();
    // The whole run's progress, each target weighted by its scale's estimated CPU minutes.
    let weights: Vec<f64> = specs.iter().map(|p| cpu_minutes(args, p)).collect();
    let mut pace = lth_repro::Pace::new(
        "estimated minutes of work (the targets' cpu_minutes)",
        weights.iter().sum(),
    );
    let targets = specs.len();
    let suite_began = std::time::Instant::now();
    let suite_before = lth_store::ledger::spent();
    // What `--jobs` processes spent, which this process's ledger does not see.
    let mut pooled_spent = lth_store::ledger::Spent::default();
    let mut pools = pool_all(args, &specs, device)?;
    for (i, (spec_path, weight)) in specs.into_iter().zip(weights).enumerate() {
        let began = std::time::Instant::now();
        let before = lth_store::ledger::spent();
        let folder = spec_path.parent().unwrap_or(&args.at.repro_dir).to_owned();
        let name = folder
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let broken = |why: String| Outcome {
            name: name.clone(),
            counts: [0; 6],
            line: format!("ERROR {name}: {why}"),
            notable: Vec::new(),
            ran: false,
            error: true,
            wall: began.elapsed(),
            spent: lth_store::ledger::Spent::default(),
        };
        // Every spec has the three scales; a broken one is an error of its own, the others still
        // run.
        if let Err(e) = lth_report::Spec::load(&spec_path) {
            outcomes.push(broken(e.to_string()));
            pace.reused(weight);
            progress_line(args, i + 1, targets, &pace);
            continue;
        }
        eprintln!("== {name} ({} scale)", args.at.scale);
        let pooled = match pools.remove(&folder).unwrap_or(Ok(None)) {
            Ok(p) => p,
            Err(e) => {
                outcomes.push(broken(e));
                pace.worked(weight, began);
                progress_line(args, i + 1, targets, &pace);
                continue;
            }
        };
        if let Some(p) = &pooled {
            pooled_spent = pooled_spent + p.timing.spent;
        }
        let mut bar = Bar::new(args.common.quiet);
        match judge(args, folder, device, pooled, &mut bar) {
            Ok(report) => {
                print_report(&report);
                if let Some(prev) = &args.previous {
                    let found = changes(prev, &args.at.out, &name, &args.at.scale)?;
                    for c in found.iter().filter(|c| c.moved) {
                        println!("{}", c.line(&name));
                    }
                    since.extend(found.into_iter().map(|c| (name.clone(), c)));
                }
                let mut counts = [0; 6];
                for (i, o) in lth_report::Outcome::ALL.iter().enumerate() {
                    counts[i] = report.verdicts.iter().filter(|v| v.outcome == *o).count();
                }
                outcomes.push(Outcome {
                    name: name.clone(),
                    counts,
                    line: report.summary.clone(),
                    notable: report
                        .verdict_lines
                        .lines()
                        .filter(|l| ["FAIL", "XPASS", "XFAIL"].iter().any(|o| l.starts_with(o)))
                        .map(str::to_owned)
                        .collect(),
                    ran: true,
                    error: false,
                    wall: report.wall,
                    spent: report.spent,
                });
            }
            Err(e) => outcomes.push(Outcome {
                spent: lth_store::ledger::spent() - before,
                ..broken(e.to_string())
            }),
        }
        pace.worked(weight, began);
        progress_line(args, i + 1, targets, &pace);
    }
    let mut totals = [0usize; 6];
    for o in &outcomes {
        for (t, c) in totals.iter_mut().zip(o.counts) {
            *t += c;
        }
    }
    let errors = outcomes.iter().filter(|o| o.error).count();
    let counted = lth_report::Outcome::ALL
        .iter()
        .zip(totals)
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ");
    let wall = suite_began.elapsed();
    let closing = format!(
        "repro --all {}: {counted} cells over {} targets ({errors} could not run) in {} ({})",
        args.at.scale,
        outcomes.len(),
        lth_repro::duration(wall),
        (lth_store::ledger::spent() - suite_before + pooled_spent).shares(wall),
    );
    let mut summary = summary_markdown(args, &outcomes, &closing);
    if args.previous.is_some() {
        summary.push_str(&since_markdown(&since));
    }
    let moved = since.iter().filter(|(_, c)| c.moved).count();
    let path = args.at.out.join("summary.md");
    lth_store::write_atomic(&path, summary.as_bytes())?;
    for o in outcomes.iter().filter(|o| !o.ran) {
        println!("{}", o.line);
    }
    println!("combined report: {}", path.display());
    if args.previous.is_some() {
        println!(
            "{} moved by more than their margin since the previous run",
            lth_report::count(moved, "cell")
        );
    }
    println!("{closing}");
    if args.check {
        let unexpected = totals[1] + totals[3];
        if errors > 0 {
            return Err(super::Exit::Error(format!(
                "{} could not run (see the ERROR lines above)",
                lth_report::count(errors, "target")
            ))
            .into());
        }
        if unexpected > 0 {
            return Err(super::Exit::Unexpected(format!(
                "{} (FAIL or XPASS; see {})",
                lth_report::count(unexpected, "unexpected outcome"),
                path.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// The combined report of `repro --all`: a table of targets with their outcomes, then each
/// target's unexpected outcomes and declared deviations (with their reasons).
fn summary_markdown(args: &ReproArgs, outcomes: &[Outcome], closing: &str) -> String {
    use lth_report::Outcome as O;
    let mut s = format!(
        "# Reproductions at the {} scale\n\n| Target | PASS | FAIL | XFAIL | XPASS | INCONCLUSIVE | \
         SKIPPED | Time | Training | Evaluation | Pruning | I/O | Result |\n| --- | ---: | ---: | ---: \
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
        args.at.scale
    );
    for o in outcomes {
        let report = if o.ran {
            format!(
                "[{0}]({0}/{1}/table.md): {2}",
                o.name, args.at.scale, o.line
            )
        } else {
            o.line.clone()
        };
        let share =
            |d: std::time::Duration| format!("{:.0}%", lth_store::ledger::percent(d, o.wall));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            o.name,
            o.count(O::Pass),
            o.count(O::Fail),
            o.count(O::XFail),
            o.count(O::XPass),
            o.count(O::Inconclusive),
            o.count(O::Skipped),
            lth_repro::duration(o.wall),
            share(o.spent.training),
            share(o.spent.evaluation),
            share(o.spent.pruning),
            share(o.spent.io),
            report.replace('|', "\\|")
        ));
    }
    for o in outcomes.iter().filter(|o| !o.notable.is_empty()) {
        s.push_str(&format!(
            "\n## {}: unexpected outcomes and declared deviations\n\n",
            o.name
        ));
        for f in &o.notable {
            s.push_str(&format!("- {f}\n"));
        }
    }
    s.push_str(&format!("\n{closing}\n"));
    s
}

/// One cell's change since a previous run.
#[derive(Debug)]
struct Change {
    cell: String,
    before: f64,
    now: f64,
    /// The snapshot margin in the metric's units, when the cell has one.
    margin: Option<f64>,
    moved: bool,
}

impl Change {
    fn line(&self, target: &str) -> String {
        format!(
            "MOVED   {target} · {}: {:.4} → {:.4} (change {:+.4}, margin {})",
            self.cell,
            self.before,
            self.now,
            self.now - self.before,
            self.margin.map_or("none".into(), |m| format!("{m:.4}"))
        )
    }
}

/// The columns of `results.csv` a comparison reads.
#[derive(Debug, serde::Deserialize)]
struct ResultCell {
    row: String,
    dataset: String,
    metric: String,
    ours_mean: Option<f64>,
    reference_mean: Option<f64>,
    margin: String,
}

/// `lth repro --list` (and `lth repro` alone): the targets, or how to find them.
fn list(args: &ReproArgs) -> anyhow::Result<()> {
    let dir = &args.at.repro_dir;
    if !dir.is_dir() {
        anyhow::bail!(
            "--repro-dir {}: no such folder; the targets are the repro/ folder of a checkout of \
             lth: run from the checkout, or point --repro-dir at its repro folder",
            dir.display()
        );
    }
    let root = lth_data::data_root(args.common.data.data_dir.as_deref());
    // A dataset is present when the registry finds its files (a derived one: its base's; a
    // generated one always); a name the registry does not know is absent.
    let present = |d: &str| lth_data::info(d).is_ok_and(|info| info.absent(&root).is_none());
    let text = lth_report::describe_targets(dir, &present)?;
    if text.is_empty() {
        anyhow::bail!("{}: no targets (folders with a spec.toml)", dir.display());
    }
    print!("{text}");
    println!(
        "run one with `lth repro <target> [--scale smoke|quick|paper] [--check]`, or all with \
         `lth repro --all`"
    );
    Ok(())
}

/// The target's name of a report folder `<out>/<target>/<scale>`.
fn report_name(out: &std::path::Path) -> String {
    out.parent()
        .and_then(|p| p.file_name())
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Each measured cell of `target` at `scale` in both `previous` and `out` (report folders), with
/// its change; a cell whose change exceeds its snapshot margin is `moved`. A target the previous
/// run did not report has no changes.
fn changes(
    previous: &std::path::Path,
    out: &std::path::Path,
    target: &str,
    scale: &str,
) -> anyhow::Result<Vec<Change>> {
    let path = |root: &std::path::Path| root.join(target).join(scale).join("results.csv");
    let before_path = path(previous);
    if !before_path.is_file() {
        println!(
            "NOT COMPARED {target} {scale}: the previous run ({}) holds no report of it",
            previous.display()
        );
        return Ok(Vec::new());
    }
    let read = |p: &std::path::Path| -> anyhow::Result<Vec<ResultCell>> {
        lth_store::read_csv(p).map_err(|e| {
            anyhow::anyhow!(
                "{}{}: {}",
                p.display(),
                e.line.map_or(String::new(), |l| format!(", line {l}")),
                e.problem
            )
        })
    };
    let before = read(&before_path)?;
    let now = read(&path(out))?;
    // One change per measured cell (row, dataset, metric), whatever number of reference cells
    // (snapshot, paper) judged it; its margin is the snapshot's.
    type Measured = (String, String, String);
    let measured =
        |c: &ResultCell| -> Measured { (c.row.clone(), c.dataset.clone(), c.metric.clone()) };
    let mut then: std::collections::BTreeMap<Measured, f64> = std::collections::BTreeMap::new();
    for b in &before {
        if let Some(m) = b.ours_mean {
            then.entry(measured(b)).or_insert(m);
        }
    }
    let mut current: std::collections::BTreeMap<Measured, (f64, Option<f64>)> =
        std::collections::BTreeMap::new();
    for c in &now {
        let Some(mean) = c.ours_mean else { continue };
        let margin = c
            .margin
            .parse::<lth_report::Margin>()
            .ok()
            .map(|m| m.width(c.reference_mean.unwrap_or(mean)));
        let e = current.entry(measured(c)).or_insert((mean, None));
        if e.1.is_none() {
            e.1 = margin;
        }
    }
    let mut out_changes = Vec::new();
    for (cell, (mean, margin)) in current {
        let Some(&before_mean) = then.get(&cell) else {
            continue;
        };
        out_changes.push(Change {
            cell: format!("{} · {} · {}", cell.0, cell.1, cell.2),
            before: before_mean,
            now: mean,
            margin,
            moved: margin.is_some_and(|m| (mean - before_mean).abs() > m),
        });
    }
    Ok(out_changes)
}

/// The section of `summary.md` on changes since the previous run.
fn since_markdown(since: &[(String, Change)]) -> String {
    let mut s = String::from(
        "\n## Since the previous run\n\n| Target | Cell | Before | Now | Change | Margin | |\n\
         | --- | --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for (t, c) in since {
        s.push_str(&format!(
            "| {t} | {} | {:.4} | {:.4} | {:+.4} | {} | {} |\n",
            c.cell,
            c.before,
            c.now,
            c.now - c.before,
            c.margin.map_or("—".into(), |m| format!("{m:.4}")),
            if c.moved { "MOVED" } else { "" }
        ));
    }
    if since.is_empty() {
        s.push_str("| — | no cell of this run was in the previous one | | | | | |\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "row,dataset,metric,source,scale,check,outcome,ours_mean,ours_sd,ours_n,\
                          reference_mean,reference_spread,reference_n,margin,detail\n";

    fn write(root: &std::path::Path, lines: &[&str]) {
        let dir = root.join("t/quick");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("results.csv"),
            HEADER.to_owned() + &lines.join("\n"),
        )
        .unwrap();
    }

    #[test]
    fn a_cell_that_moved_past_its_margin_is_flagged_even_if_it_passes() {
        let (before, now) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(
            before.path(),
            &[
                "a,mnist,acc,measured,quick,equivalent,PASS,0.900,0.01,5,0.90,0.01,5,0.05,",
                "a,mnist,acc,paper,paper,range,SKIPPED,0.900,0.01,5,0.98,0.01,1,,",
                "b,mnist,acc,measured,quick,equivalent,PASS,0.800,0.01,5,0.80,0.01,5,0.05,",
                "c,mnist,acc,paper,paper,range,SKIPPED,0.500,0.01,5,0.98,0.01,1,,",
            ],
        );
        write(
            now.path(),
            &[
                // Moved by 0.06 against a margin of 0.05: flagged, though the cell passes.
                "a,mnist,acc,measured,quick,equivalent,PASS,0.960,0.01,5,0.90,0.01,5,0.05,",
                "a,mnist,acc,paper,paper,range,SKIPPED,0.960,0.01,5,0.98,0.01,1,,",
                "b,mnist,acc,measured,quick,equivalent,PASS,0.820,0.01,5,0.80,0.01,5,0.05,",
                // No margin: reported, never flagged.
                "c,mnist,acc,paper,paper,range,SKIPPED,0.900,0.01,5,0.98,0.01,1,,",
            ],
        );
        let got = changes(before.path(), now.path(), "t", "quick").unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        let moved: Vec<&str> = got
            .iter()
            .filter(|c| c.moved)
            .map(|c| c.cell.as_str())
            .collect();
        assert_eq!(moved, ["a · mnist · acc"]);
        assert!((got[0].now - got[0].before - 0.06).abs() < 1e-12);
        assert_eq!(got[2].margin, None);
        let md = since_markdown(
            &got.into_iter()
                .map(|c| ("t".to_owned(), c))
                .collect::<Vec<_>>(),
        );
        assert_eq!(md.matches("| MOVED |").count(), 1, "{md}");
        // A target the previous run did not report has no changes.
        assert!(
            changes(before.path(), now.path(), "u", "quick")
                .unwrap()
                .is_empty()
        );
    }
}
