//! Running a target at a scale: check every input, run each row's replicates through the run
//! store, summarise over replicates, judge the cells, write the reports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use lth_lottery::Lottery;
use lth_report::spec::Row;
use lth_report::{
    Cell, Finding, Measurement, Outcome, RowResult, RowStatus, Source, Spec, Summary, Verdict,
    assess, assess_trend, decide, load_cells, plot_svg, record_measured, render_skipped,
    render_table, render_verdicts, save_cells, summary_line,
};
use lth_store::{CsvLog, Store};
use lth_train::{Data, Progress};

use crate::experiment::{Measured, Resolved, RowFlags, replicate_means};
use crate::provenance;
use crate::{Experiment, Provenance, ReproError, Result, Unit, experiment};

/// What to run and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target's folder (holding `spec.toml` and `expected.csv`).
    pub target: PathBuf,
    /// `smoke`, `quick`, `paper`, or another scale the spec declares.
    pub scale: String,
    /// Replicates per row (default: the scale's).
    pub replicates: Option<u64>,
    /// Samples per replicate (default: the scale's).
    pub samples: Option<u64>,
    /// Train only these replicates and stop without judging: several processes (or machines
    /// sharing the run store) can each take some, and a last run without it judges them all.
    pub only_replicates: Option<Vec<u64>>,
    /// Train only this unit of a grid (a replicate's levels, or one part of its measurement) and
    /// stop without judging: what one Slurm array task runs.
    pub unit: Option<GridUnit>,
    pub device: Device,
    /// Root of the run store.
    pub runs_dir: PathBuf,
    /// Dataset root (default: `$LTH_DATA`, else `data/`).
    pub data_dir: Option<PathBuf>,
    /// Reports go to `<out>/<target>/<scale>/`.
    pub out: PathBuf,
    /// Write the measurements into `expected.csv` as the scale's snapshot.
    pub record: bool,
    /// No status lines on standard error.
    pub quiet: bool,
    /// Lay convolutions out channels-last.
    pub channels_last: bool,
    /// Judge against the snapshots of this device class (`cpu`, `cuda`) instead of the device's
    /// own; claims and the paper's numbers are judged the same on every device.
    pub device_class: Option<String>,
    /// Train up to this many compatible runs at once, packed into one network: a row's levels
    /// across replicates, then the plain runs of its measurement across replicates
    /// ([`crate::Experiment::jobs`]) (`None`: the device's default,
    /// `lth_train::packed::default_pack`: 1 on the CPU).
    pub pack: Option<usize>,
    /// The folder through which a pool of processes (`lth repro --jobs`) hands its measurements
    /// to the run that judges them, `<dir>/<row>/replicate_<r>.txt`: a run with
    /// `only_replicates` writes each replicate's measurement there, and a judging run reads a
    /// replicate's from there instead of measuring it again (its runs are the pool's, found done
    /// in the store, but measuring evaluates again: lmc's interpolation lines are 40% of lmc).
    /// Only the pool sets it, on a folder it emptied before its processes started.
    pub handoff: Option<PathBuf>,
}

impl Options {
    /// A target folder at a scale, on the CPU, with the default store and report folders.
    pub fn new(target: impl Into<PathBuf>, scale: &str) -> Options {
        Options {
            target: target.into(),
            scale: scale.to_owned(),
            replicates: None,
            samples: None,
            only_replicates: None,
            unit: None,
            device: Device::Cpu,
            runs_dir: "runs".into(),
            data_dir: None,
            out: "target/repro".into(),
            record: false,
            quiet: true,
            channels_last: false,
            device_class: None,
            pack: None,
            handoff: None,
        }
    }
}

/// One independent unit of a target's work, as a grid schedules it: `row/replicate` trains the
/// replicate's lottery (levels `0..=level`, one after another), `row/replicate/part` one part of
/// its measurement ([`Experiment::parts`]), which needs the levels done.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GridUnit {
    pub row: String,
    pub replicate: u64,
    pub part: Option<u64>,
}

impl std::str::FromStr for GridUnit {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<GridUnit, String> {
        let bad = || format!("`{s}`: expected ROW/REPLICATE or ROW/REPLICATE/PART");
        let fields: Vec<&str> = s.split('/').collect();
        let (row, replicate, part) = match fields[..] {
            [row, r] => (row, r, None),
            [row, r, p] => (row, r, Some(p.parse::<u64>().map_err(|_| bad())?)),
            _ => return Err(bad()),
        };
        if row.is_empty() {
            return Err(bad());
        }
        Ok(GridUnit {
            row: row.to_owned(),
            replicate: replicate.parse().map_err(|_| bad())?,
            part,
        })
    }
}

impl std::fmt::Display for GridUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.row, self.replicate)?;
        if let Some(p) = self.part {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// A target's independent units at a scale, for a grid: per row that can run here, its
/// replicates and the parts of each replicate's measurement; the rows that cannot, with why.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: String,
    pub replicates: u64,
    /// `(row, parts per replicate)` for each row that runs here.
    pub rows: Vec<(String, u64)>,
    /// `(row, reason)` for each row skipped here.
    pub skipped: Vec<(String, String)>,
}

impl Plan {
    /// Every lottery unit (`row/replicate`), rows in spec order.
    pub fn lotteries(&self) -> Vec<GridUnit> {
        self.rows
            .iter()
            .flat_map(|(row, _)| {
                (1..=self.replicates).map(|r| GridUnit {
                    row: row.clone(),
                    replicate: r,
                    part: None,
                })
            })
            .collect()
    }

    /// The parts of a lottery unit's replicate.
    pub fn parts(&self, lottery: &GridUnit) -> u64 {
        self.rows
            .iter()
            .find(|(row, _)| *row == lottery.row)
            .map_or(0, |(_, p)| *p)
    }
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    /// The table (Markdown, without the notes under it; `table.md` has them).
    pub table: String,
    /// One line per judged cell (PASS or FAIL).
    pub verdict_lines: String,
    /// One line per reason rows did not run, and one per reason a ran row's snapshot cells are
    /// shown but not checked.
    pub skipped_lines: String,
    /// `fig3 quick: 9 PASS, 0 FAIL, 78 SKIPPED (absent: cifar10, mnist)`.
    pub summary: String,
    /// Every cell's verdict.
    pub verdicts: Vec<Verdict>,
    /// Where the reports are.
    pub out: PathBuf,
    /// The provenance of the snapshot this run was compared with, when there is one.
    pub snapshot: Option<Provenance>,
    /// How long the target took, start to report.
    pub wall: std::time::Duration,
    /// What that time was spent on, as the training, evaluation and I/O spans counted it
    /// ([`lth_store::ledger`]).
    pub spent: lth_store::ledger::Spent,
    /// Why `--record` wrote nothing (margins the recorded spread cannot hold): the verdicts
    /// stand, and the command prints them before this and exits 2.
    pub record_refused: Option<String>,
}

impl Report {
    /// The number of unexpected outcomes (FAIL or XPASS).
    pub fn unexpected(&self) -> usize {
        self.verdicts
            .iter()
            .filter(|v| v.outcome.unexpected())
            .count()
    }

    /// `time: 7m43s (training 71%, evaluation 18%, I/O 3%, other 8%)`.
    pub fn time_line(&self) -> String {
        format!(
            "time: {} ({})",
            crate::pace::duration(self.wall),
            self.spent.shares(self.wall)
        )
    }

    /// `Err(Unexpected)` when any outcome is not the expected one.
    pub fn check(&self) -> Result<()> {
        match self.unexpected() {
            0 => Ok(()),
            count => Err(ReproError::Unexpected {
                count,
                results: self.out.join("results.csv"),
            }),
        }
    }
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

/// Parses a row's flags at a scale on `dataset`, once, as its kind's rows take them (`lth
/// lottery`'s and the kind's own group); only when that fails is each flag tried on its own, so
/// the error points at its line of the spec. [`resolve_at`] then checks the values that only make
/// sense together.
fn parse(
    spec: &Spec,
    exp: &dyn Experiment,
    row: &Row,
    scale: &str,
    dataset: &str,
) -> Result<Box<dyn RowFlags>> {
    let (_, flags) = spec.resolve(row, scale);
    let mut v = argv(row, &flags);
    v.extend(["--dataset".into(), dataset.to_owned()]);
    let parsed = match exp.rows().parse(&v) {
        Ok(parsed) => parsed,
        Err(whole) => {
            for flag in &flags {
                if let Err(e) = exp.rows().parse(&argv(row, std::slice::from_ref(flag))) {
                    let text = e.to_string();
                    let first = text
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("error: ");
                    return Err(spec
                        .error_at(
                            flag.2,
                            format!(
                                "row `{}`: flag `{}`: {first} (a `{}` row takes {})",
                                row.id,
                                flag.0,
                                exp.kind(),
                                exp.rows().takes
                            ),
                        )
                        .into());
                }
            }
            return Err(spec
                .error(format!("row `{}` at scale `{scale}`: {whole}", row.id))
                .into());
        }
    };
    Ok(parsed)
}

/// A parsed row's hyperparameters at a scale, with an error that names the row and the scale.
fn resolve_at(
    spec: &Spec,
    row: &Row,
    scale: &str,
    flags: &dyn RowFlags,
    level: u64,
) -> Result<Resolved> {
    flags.resolve(level).map_err(|e| {
        spec.error(format!(
            "row `{}` at scale `{scale}`: {}",
            row.id,
            e.to_string().trim_start_matches("error: ")
        ))
        .into()
    })
}

/// The dataset a row runs on here (and, for a labelled variant, why the paper's dataset was not
/// used), or why it cannot run; `absent` collects the datasets that were not found.
fn choose(
    row: &Row,
    root: &Path,
    absent: &mut BTreeSet<String>,
) -> Result<(String, Option<String>), String> {
    if let Err(e) = lth_models::family(&row.model) {
        return Err(format!("{e}"));
    }
    let mut reasons = Vec::new();
    for (i, name) in std::iter::once(&row.dataset)
        .chain(&row.variants)
        .enumerate()
    {
        // Every name is known: `run_target` refused the spec otherwise.
        match lth_data::info(name) {
            Err(e) => reasons.push(e.to_string()),
            Ok(info) => match info.absent(root) {
                None => return Ok((name.clone(), (i > 0).then(|| reasons.join("; ")))),
                Some(problem) => {
                    absent.insert(name.clone());
                    reasons.push(format!("{name} is absent: {problem} {}", info.how_to_get));
                }
            },
        }
    }
    Err(reasons.join("; "))
}

/// Checks the snapshot table against the spec and the experiment, so a typo in a row id or a
/// metric is an error, not a cell that silently never runs.
fn check_cells(path: &Path, spec: &Spec, exp: &dyn Experiment, cells: &[Cell]) -> Result<()> {
    let bad = |i: usize, problem: String| {
        ReproError::Report(lth_report::ReportError::Malformed {
            path: path.to_owned(),
            line: Some(i as u64 + 2),
            problem,
        })
    };
    if cells.is_empty() {
        return Err(ReproError::Report(lth_report::ReportError::Malformed {
            path: path.to_owned(),
            line: None,
            problem: "no cells: a target needs at least its claims or a snapshot".into(),
        }));
    }
    let metrics = exp.metrics();
    for (i, c) in cells.iter().enumerate() {
        if let Some(row) = c
            .rows()
            .into_iter()
            .find(|&row| !spec.rows.iter().any(|r| r.id == row))
        {
            return Err(bad(
                i,
                format!(
                    "row `{}` is not a row of {} (rows: {})",
                    row,
                    spec.path.display(),
                    spec.rows
                        .iter()
                        .map(|r| r.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for m in std::iter::once(c.metric.as_str()).chain(c.check.other()) {
            if !metrics.contains(&m) {
                return Err(bad(
                    i,
                    format!(
                        "metric `{m}` is not measured by a `{}` experiment (metrics: {})",
                        exp.kind(),
                        metrics.join(", ")
                    ),
                ));
            }
        }
        if !spec.scales.contains_key(&c.scale) {
            return Err(bad(
                i,
                format!(
                    "scale `{}` is not a scale of {}",
                    c.scale,
                    spec.path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// One line per reason the measured cells of this scale are shown and not checked, naming the
/// rows and counting the cells.
fn unchecked_lines(verdicts: &[Verdict]) -> String {
    let mut groups: Vec<(&str, Vec<&str>, usize)> = Vec::new();
    for v in verdicts {
        if v.cell.source == Source::Measured
            && v.cell.check == lth_report::Check::None
            && v.outcome == Outcome::Skipped
        {
            let row = v.cell.row.as_str();
            match groups.iter_mut().find(|g| g.0 == v.detail) {
                Some(g) => {
                    g.2 += 1;
                    if !g.1.contains(&row) {
                        g.1.push(row);
                    }
                }
                None => groups.push((&v.detail, vec![row], 1)),
            }
        }
    }
    groups
        .iter()
        .map(|(why, rows, n)| {
            format!(
                "NOT CHECKED {} ({n} snapshot cells): {why}\n",
                rows.join(", ")
            )
        })
        .collect()
}

/// A line of `samples.csv`: one value of one sample of one replicate.
#[derive(Debug, Serialize, Deserialize)]
struct SampleLine {
    row: String,
    dataset: String,
    scale: String,
    replicate: u64,
    sample: usize,
    metric: String,
    value: f64,
}

/// A line of `replicates.csv`: a replicate's mean of a metric (the unit of every test).
#[derive(Debug, Serialize, Deserialize)]
struct ReplicateLine {
    row: String,
    dataset: String,
    scale: String,
    replicate: u64,
    metric: String,
    value: f64,
}

/// A line of `results.csv`: a cell's verdict with the numbers it rests on.
#[derive(Debug, Serialize, Deserialize)]
struct ResultLine {
    row: String,
    dataset: String,
    metric: String,
    source: Source,
    scale: String,
    check: String,
    outcome: String,
    ours_mean: Option<f64>,
    ours_sd: Option<f64>,
    ours_n: Option<u64>,
    reference_mean: Option<f64>,
    reference_spread: Option<f64>,
    reference_n: Option<u64>,
    margin: String,
    detail: String,
}

/// Replicate numbers as `1, 2, 3`.
fn list(replicates: &[u64]) -> String {
    replicates
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What each checked snapshot cell of (`scale`, `device`) can detect, one line per cell: the
/// smallest shift of the mean that fails it on a rerun that behaves as an independent draw
/// (another CPU, a GPU: margin − t·√2·SE, the paired difference's interval), and beyond the margin
/// on an identical one. And the cells whose margin is narrower than 2·t·SE of their recorded
/// spread (t at 1 − α with n − 1 degrees of freedom, SE = sd/√n), which even an unshifted rerun
/// would fail about as often as not. And, as `UNDETECTABLE` lines, the cells whose check lets a
/// regression of their row's declared size (`regression` in the spec) pass even on an identical
/// rerun, where it fails only beyond the margin.
fn snapshot_power(
    cells: &[Cell],
    scale: &str,
    device: &str,
    regression: impl Fn(&str, &str) -> Option<lth_report::Margin>,
) -> (String, Vec<String>) {
    let (mut lines, mut refused) = (String::new(), Vec::new());
    let mut undetectable = String::new();
    for c in cells {
        let Some((width, least)) = c.margin_and_least() else {
            continue;
        };
        let (Some(mean), Some(sd), Some(n), Some(margin)) = (c.mean, c.spread, c.n, c.margin)
        else {
            continue;
        };
        if c.scale != scale || c.device != device {
            continue;
        }
        let se = sd / (n as f64).sqrt();
        let t = lth_report::stats::t_quantile(1.0 - c.alpha, (n - 1) as f64);
        let name = format!("{} · {} · {}", c.row, c.dataset, c.metric);
        if width < least {
            refused.push(format!(
                "{name}: margin {margin} = {width:.4} < 2·t·SE = {least:.4}"
            ));
        }
        let _ = writeln!(
            lines,
            "RECORDED {name}: {mean:.4} ± {sd:.4} (n={n}), margin ±{width:.4}: fails beyond a \
             shift of {:.4} on an independent rerun, {width:.4} on an identical one",
            (width - t * std::f64::consts::SQRT_2 * se).max(0.0)
        );
        if let Some(size) = regression(&c.row, &c.metric) {
            let r = size.width(mean);
            if r <= width {
                let _ = writeln!(
                    undetectable,
                    "UNDETECTABLE {name}: a regression of {size} ({r:.4}), the row's declared \
                     size, passes its check, which fails only beyond ±{width:.4}; narrow the \
                     margin (with more replicates to hold it) or declare why this size suffices"
                );
            }
        }
    }
    (lines + &undetectable, refused)
}

/// This process's command line, with the threads and packing in effect when it did not say them.
fn full_command(pack: usize) -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut line = args.join(" ");
    if !args
        .iter()
        .any(|a| a == "--threads" || a.starts_with("--threads="))
    {
        line.push_str(&format!(" --threads {}", tch::get_num_threads()));
    }
    if !args
        .iter()
        .any(|a| a == "--pack" || a.starts_with("--pack="))
    {
        line.push_str(&format!(" --pack {pack}"));
    }
    line
}

/// The runs trained at once in one packed network: `--pack`, else the device's default.
fn pack_of(o: &Options) -> usize {
    o.pack
        .unwrap_or_else(|| lth_train::packed::default_pack(o.device))
        .max(1)
}

/// The command that records a target's snapshot at this scale on `device` as this run would: its
/// replicates, samples, threads and packing.
fn record_command(
    target: &str,
    o: &Options,
    replicates: u64,
    samples: u64,
    device: &str,
    pack: usize,
) -> String {
    format!(
        "cargo xtask repro {target} --scale {} --replicates {replicates} --samples {samples} \
         --device {device} --threads {} --pack {pack} --record",
        o.scale,
        tch::get_num_threads()
    )
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    lth_store::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// The measurements of one row that ran: per replicate, values by metric; and by metric, each
/// replicate's value (what the cells are judged on).
struct RowRun {
    dataset: String,
    replicates: Vec<(u64, Measured)>,
    measured: BTreeMap<String, Measurement>,
}

/// A target whose every input was checked: the spec, its experiment, the scale's replicates and
/// samples, the snapshot table.
struct Prepared {
    spec: Spec,
    target: String,
    exp: Box<dyn Experiment>,
    scale: lth_report::spec::Scale,
    replicates: u64,
    samples: u64,
    expected_path: PathBuf,
    cells: Vec<Cell>,
    /// Every row's flags at every scale, parsed once on the row's own dataset: by row id and
    /// scale, with the row's level there.
    flags: BTreeMap<(String, String), (u64, Box<dyn RowFlags>)>,
}

/// Checks every input of a run before anything trains: the spec, every row's flags at every
/// scale, the snapshot table, and the options.
fn prepare(o: &Options) -> Result<Prepared> {
    let spec_path = o.target.join("spec.toml");
    if !spec_path.is_file() {
        let parent = o.target.parent().unwrap_or(Path::new("."));
        let known: Vec<String> = lth_report::targets(parent)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                p.parent()?
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect();
        return Err(ReproError::Invalid(format!(
            "no reproduction target at {}: {} does not exist (targets in {}: {})",
            o.target.display(),
            spec_path.display(),
            parent.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    let spec = Spec::load(&spec_path)?;
    let target = spec.target();
    let exp = experiment(&spec.experiment).ok_or_else(|| {
        spec.error(format!(
            "experiment `{}` is not known; expected one of {}",
            spec.experiment,
            crate::kinds().join(", ")
        ))
    })?;
    for m in spec.named_metrics() {
        if !exp.metrics().contains(&m) {
            return Err(spec
                .error(format!(
                    "metric `{m}` is not measured by a `{}` experiment; expected one of {}",
                    exp.kind(),
                    exp.metrics().join(", ")
                ))
                .into());
        }
    }
    // A dataset name lth does not know is a typo in the spec, never a reason to skip a row.
    for row in &spec.rows {
        for name in std::iter::once(&row.dataset).chain(&row.variants) {
            if let Err(e) = lth_data::info(name) {
                return Err(spec
                    .error_near(&format!("\"{name}\""), format!("row `{}`: {e}", row.id))
                    .into());
            }
        }
    }
    let Some(scale) = spec.scales.get(&o.scale).cloned() else {
        return Err(ReproError::Invalid(format!(
            "--scale {}: not a scale of {target}; expected one of {}",
            o.scale,
            spec.scales.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    };
    let replicates = o.replicates.unwrap_or(scale.replicates);
    if replicates < 2 {
        return Err(ReproError::Invalid(format!(
            "--replicates {replicates}: at least 2 independent replicates are needed for the tests"
        )));
    }
    if replicates > lth_report::spec::MAX_REPLICATES {
        return Err(ReproError::Invalid(format!(
            "--replicates {replicates}: at most {} (each is a whole independent experiment)",
            lth_report::spec::MAX_REPLICATES
        )));
    }
    if let Some(class) = &o.device_class {
        if !["cpu", "cuda"].contains(&class.as_str()) {
            return Err(ReproError::Invalid(format!(
                "--device-class {class}: expected cpu or cuda"
            )));
        }
        if o.record {
            return Err(ReproError::Invalid(
                "--record with --device-class: a snapshot is recorded for the device it ran on"
                    .into(),
            ));
        }
    }
    if o.record && o.only_replicates.is_some() {
        return Err(ReproError::Invalid(
            "--record with --only-replicates: a snapshot is recorded from every replicate".into(),
        ));
    }
    if let Some(bad) = o
        .only_replicates
        .iter()
        .flatten()
        .find(|&&r| r == 0 || r > replicates)
    {
        return Err(ReproError::Invalid(format!(
            "--only-replicates {bad}: replicates are numbered 1 to {replicates}"
        )));
    }
    let samples = o.samples.unwrap_or(scale.samples);
    if samples < 1 {
        return Err(ReproError::Invalid(
            "--samples 0: at least one sample per replicate".into(),
        ));
    }
    if samples > lth_report::spec::MAX_SAMPLES {
        return Err(ReproError::Invalid(format!(
            "--samples {samples}: at most {} per replicate",
            lth_report::spec::MAX_SAMPLES
        )));
    }
    if let Some(u) = &o.unit {
        if o.record || o.only_replicates.is_some() {
            return Err(ReproError::Invalid(
                "--unit trains one unit: it takes neither --record nor --only-replicates".into(),
            ));
        }
        if !spec.rows.iter().any(|r| r.id == u.row) {
            return Err(ReproError::Invalid(format!(
                "--unit {u}: `{}` is not a row of {target} (rows: {})",
                u.row,
                spec.rows
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if u.replicate == 0 || u.replicate > replicates {
            return Err(ReproError::Invalid(format!(
                "--unit {u}: replicates are numbered 1 to {replicates}"
            )));
        }
        let parts = exp.parts(samples);
        if let Some(p) = u.part.filter(|&p| p >= parts) {
            return Err(ReproError::Invalid(format!(
                "--unit {u}: part {p} does not exist; a replicate of a `{}` row has {parts} \
                 part(s), numbered from 0",
                exp.kind()
            )));
        }
    }
    let expected_path = o.target.join("expected.csv");
    let cells = load_cells(&expected_path)?;
    check_cells(&expected_path, &spec, exp.as_ref(), &cells)?;
    // Every row's flags at every scale, so a bad flag of the paper scale is found by a smoke run.
    let mut flags = BTreeMap::new();
    for row in &spec.rows {
        for s in spec.scales.keys() {
            let (level, _) = spec.resolve(row, s);
            let parsed = parse(&spec, exp.as_ref(), row, s, &row.dataset)?;
            let r = resolve_at(&spec, row, s, parsed.as_ref(), level)?;
            exp.check_row(&r.hp, level)
                .and_then(|()| exp.check_methods(&r.methods))
                .map_err(|e| spec.error(format!("row `{}` at scale `{s}`: {e}", row.id)))?;
            flags.insert((row.id.clone(), s.clone()), (level, parsed));
        }
    }
    Ok(Prepared {
        spec,
        target,
        exp,
        scale,
        replicates,
        samples,
        expected_path,
        cells,
        flags,
    })
}

/// The independent units of a target at a scale (what `lth grid submit` schedules), with every
/// input checked as [`run_target`] checks it and the rows that cannot run here said with why.
pub fn plan(o: &Options) -> Result<Plan> {
    let p = prepare(o)?;
    let root = lth_data::data_root(o.data_dir.as_deref());
    let mut absent = BTreeSet::new();
    let mut plan = Plan {
        target: p.target.clone(),
        replicates: p.replicates,
        rows: Vec::new(),
        skipped: Vec::new(),
    };
    for row in &p.spec.rows {
        match place(&p, o, row, &root, &mut absent)? {
            Ok(_) => plan.rows.push((row.id.clone(), p.exp.parts(p.samples))),
            Err(reason) => plan.skipped.push((row.id.clone(), reason)),
        }
    }
    Ok(plan)
}

/// Where a row runs here: its dataset (or labelled variant, with why), flags, level, and whether
/// it reads its data; or why it cannot run.
struct Placed {
    dataset: String,
    variant: Option<String>,
    flags: Box<dyn RowFlags>,
    level: u64,
    needs_data: bool,
}

/// Places a row ([`Placed`]), or says why it cannot run here (`Ok(Err(reason))`); `absent`
/// collects the datasets not found.
fn place(
    p: &Prepared,
    o: &Options,
    row: &Row,
    root: &Path,
    absent: &mut BTreeSet<String>,
) -> Result<std::result::Result<Placed, String>> {
    let Some((level, parsed)) = p.flags.get(&(row.id.clone(), o.scale.clone())) else {
        return Err(ReproError::Invalid(format!(
            "row `{}` has no flags at scale `{}`",
            row.id, o.scale
        )));
    };
    let level = *level;
    let needs_data = p
        .exp
        .needs_data(&resolve_at(&p.spec, row, &o.scale, parsed.as_ref(), level)?.hp);
    let chosen = if needs_data {
        choose(row, root, absent)
    } else {
        // The dataset only gives shapes and classes; its files are not read.
        Ok((row.dataset.clone(), None))
    };
    let (dataset, variant) = match chosen {
        Ok(choice) => choice,
        Err(reason) => return Ok(Err(reason)),
    };
    // The flags parsed on the row's dataset, moved to the one it runs on.
    let flags = parsed.on(&dataset);
    let Resolved { hp, methods } = resolve_at(&p.spec, row, &o.scale, flags.as_ref(), level)?;
    // A ticket moved to another dataset needs that one's files too.
    if let Some(t) = methods
        .transplant
        .as_ref()
        .map(|t| t.target().dataset)
        .filter(|t| needs_data && t.dataset != hp.train.dataset.dataset)
    {
        let info = lth_data::info(&t.dataset).map_err(lth_train::TrainError::from)?;
        if let Some(problem) = info.absent(root) {
            absent.insert(t.dataset.clone());
            return Ok(Err(format!(
                "{} (the target) is absent: {problem} {}",
                t.dataset, info.how_to_get
            )));
        }
    }
    Ok(Ok(Placed {
        dataset,
        variant,
        flags,
        level,
        needs_data,
    }))
}

/// Row `r`'s measurements, for judging `cell` at `scale`; or, where they cannot judge it, the
/// finding that says why: the row skipped, run on other data than the cell's, measured nothing, or
/// the cell is the paper's, checked at the paper scale only.
fn measured_for<'a>(
    r: &RowResult,
    cell: &Cell,
    runs: &'a BTreeMap<String, RowRun>,
    scale: &str,
) -> std::result::Result<&'a BTreeMap<String, Measurement>, Finding> {
    match &r.status {
        RowStatus::Skipped { reason } => Err(Finding::Skipped(reason.clone())),
        RowStatus::Ran { .. } if cell.dataset == r.dataset && cell.scale == scale => runs
            .get(&r.row)
            .map(|run| &run.measured)
            .ok_or_else(|| Finding::Broken(format!("row `{}` measured nothing", r.row))),
        RowStatus::Ran { .. } if cell.dataset != r.dataset => {
            Err(Finding::Skipped(match &r.variant_of {
                Some(why) => format!("ran on {}, a labelled variant ({why})", r.dataset),
                None => format!(
                    "this run is on {}; the cell is for {}",
                    r.dataset, cell.dataset
                ),
            }))
        }
        RowStatus::Ran { .. } => Err(Finding::Skipped(format!(
            "the paper's numbers are checked at the paper scale, not {scale}"
        ))),
    }
}

/// Runs a target at a scale. Every input is checked first (the spec, every row's flags at every
/// scale, the snapshot table); then each row runs on its dataset, or on a labelled variant, or is
/// skipped with the reason. Returns the report; [`Report::check`] turns failed cells into an error.
pub fn run_target(o: &Options, progress: &mut dyn Progress) -> Result<Report> {
    let began = std::time::Instant::now();
    let before = lth_store::ledger::spent();
    let mut report = run_target_timed(o, progress)?;
    report.wall = began.elapsed();
    report.spent = lth_store::ledger::spent() - before;
    Ok(report)
}

/// [`run_target`] without its time.
fn run_target_timed(o: &Options, progress: &mut dyn Progress) -> Result<Report> {
    let p = prepare(o)?;
    let Prepared {
        spec,
        target,
        exp,
        scale,
        replicates,
        samples,
        expected_path,
        cells,
        flags: _,
    } = &p;
    let (replicates, samples) = (*replicates, *samples);
    let device_label = if o.device.is_cuda() { "cuda" } else { "cpu" };
    let root = lth_data::data_root(o.data_dir.as_deref());
    let store = Store::new(&o.runs_dir);
    let say = |line: String| {
        if !o.quiet {
            eprintln!("{line}");
        }
    };
    say(format!(
        "{target}: {} ({} scale: {}; {replicates} replicates × {samples} samples per row; {device_label})",
        spec.title, o.scale, scale.description
    ));

    let mut absent = BTreeSet::new();
    let mut results: Vec<RowResult> = Vec::new();
    let mut runs: BTreeMap<String, RowRun> = BTreeMap::new();
    let mut datasets: BTreeMap<String, Data> = BTreeMap::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    // Every row placed first, so that the progress lines know the whole: a row that trains has
    // its levels (each across replicates), its measurement's runs and its measuring as stages.
    let mut rows = Vec::new();
    for row in &spec.rows {
        if o.unit.as_ref().is_none_or(|u| u.row == row.id) {
            rows.push((row, place(&p, o, row, &root, &mut absent)?));
        }
    }
    let stages: u64 = rows
        .iter()
        .map(|(_, placed)| match placed {
            Ok(pl) if pl.needs_data && exp.trains() => pl.level + 3,
            Ok(pl) if pl.needs_data => 2,
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum();
    let pace = crate::pace::Pace::new("stages", stages as f64);
    let mut stages = Stages {
        o,
        exp: exp.as_ref(),
        store: &store,
        pack: pack_of(o),
        replicates,
        points: scale.points.unwrap_or(30),
        target: target.clone(),
        pace,
    };
    for (row, placed) in rows {
        let placed = match placed {
            Ok(placed) => placed,
            Err(reason) => {
                if let Some(u) = &o.unit {
                    return Err(ReproError::Invalid(format!(
                        "unit {u}: row `{}` cannot run here: {reason}",
                        row.id
                    )));
                }
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
        let Resolved { hp, methods } = placed.flags.resolve(placed.level)?;
        let d = &hp.train.dataset;
        let info = lth_data::info(&d.dataset).map_err(lth_train::TrainError::from)?;
        let target = methods.transplant.as_ref().map(|t| t.target().dataset);
        let key =
            |d: &lth_train::DatasetHparams| format!("{}|{}|{}", d.dataset, d.validation, d.subset);
        for d in std::iter::once(d).chain(&target) {
            if placed.needs_data {
                used.insert(d.dataset.clone());
            }
            if placed.needs_data && !datasets.contains_key(&key(d)) {
                let mut data = Data::load(d, &root, o.device)?;
                data.channels_last = o.channels_last;
                datasets.insert(key(d), data);
            }
        }
        let data = datasets.get(&key(d)).filter(|_| placed.needs_data);
        let target_data = target
            .as_ref()
            .and_then(|t| datasets.get(&key(t)))
            .filter(|_| placed.needs_data);
        stages.say(format!(
            "{}: {} on {}{} at level {}",
            row.id,
            row.model,
            placed.dataset,
            if placed.variant.is_some() {
                " (a labelled variant: the paper's dataset is absent)"
            } else {
                ""
            },
            placed.level
        ));
        let reps = stages.replicates_of(&placed, data)?;
        stages.levels(&row.id, &reps, placed.level, progress)?;
        let units: Vec<Unit> = reps
            .iter()
            .map(|(r, res, lottery)| Unit {
                lottery: lottery.as_ref(),
                hp: &res.hp,
                methods: &res.methods,
                pack: stages.pack,
                target_data,
                store: &store,
                replicate: *r,
                data,
                info,
                level: placed.level,
                samples,
                points: stages.points,
            })
            .collect();
        let measured = match (&o.unit, o.unit.as_ref().and_then(|u| u.part)) {
            (None, _) => {
                if let Some(data) = data {
                    stages.jobs(&row.id, &units, data, progress)?;
                }
                stages.measure(&row.id, &units, progress)?
            }
            (Some(_), Some(part)) => {
                for unit in &units {
                    exp.train_part(unit, part, progress)?;
                }
                Vec::new()
            }
            // A lottery unit trains the levels only.
            (Some(_), None) => Vec::new(),
        };
        let (result, run) = summarise(exp.as_ref(), row, placed, measured);
        results.push(result);
        runs.insert(row.id.clone(), run);
    }

    if let Some(u) = &o.unit {
        return Ok(Report {
            table: String::new(),
            verdict_lines: String::new(),
            skipped_lines: String::new(),
            summary: format!(
                "{target} {}: unit {u} done ({}); nothing judged",
                o.scale,
                match u.part {
                    None => "the replicate's levels".to_owned(),
                    Some(p) => format!("part {p} of its measurement"),
                }
            ),
            verdicts: Vec::new(),
            out: o.out.join(target).join(&o.scale),
            snapshot: None,
            wall: std::time::Duration::ZERO,
            spent: lth_store::ledger::Spent::default(),
            record_refused: None,
        });
    }
    if let Some(only) = &o.only_replicates {
        let list: Vec<String> = only.iter().map(u64::to_string).collect();
        return Ok(Report {
            table: String::new(),
            verdict_lines: String::new(),
            skipped_lines: render_skipped(&results, &[]),
            summary: format!(
                "{target} {}: trained {} {} of {replicates}; nothing judged (run again without --only-replicates to judge every replicate)",
                o.scale,
                if list.len() == 1 {
                    "replicate"
                } else {
                    "replicates"
                },
                list.join(", ")
            ),
            verdicts: Vec::new(),
            out: o.out.join(target).join(&o.scale),
            snapshot: None,
            wall: std::time::Duration::ZERO,
            spent: lth_store::ledger::Spent::default(),
            record_refused: None,
        });
    }

    let class = o
        .device_class
        .clone()
        .unwrap_or_else(|| device_label.to_owned());
    let verdicts = judge(cells, &results, &runs, &o.scale, &class);
    // A scale with measured snapshots, none of them for this device class: said once.
    let ran_any = results
        .iter()
        .any(|r| matches!(r.status, RowStatus::Ran { .. }));
    let has_snapshot = cells
        .iter()
        .any(|c| c.source == Source::Measured && c.scale == o.scale && c.device == class);
    let not_checked = (ran_any && !has_snapshot).then(|| {
        format!(
            "NOT CHECKED {target} {}: no {class} snapshot of this scale, so the measured cells \
             are not checked on {class} (the claims are); record it with `{}`\n",
            o.scale,
            record_command(target, o, replicates, samples, &class, pack_of(o))
        )
    });

    let out = o.out.join(target).join(&o.scale);
    Reports {
        spec,
        scale: &o.scale,
        device_label,
        results: &results,
        runs: &runs,
        verdicts: &verdicts,
        cells,
    }
    .write(&out)?;

    let provenance_path = o.target.join("provenance.csv");
    let data_sums = provenance::data_checksums(&root, &used.iter().cloned().collect::<Vec<_>>());
    // This run's own provenance, beside its reports.
    let this_run = Provenance::of_run(
        &o.scale,
        &class,
        replicates,
        samples,
        &full_command(pack_of(o)),
        data_sums,
    );
    CsvLog::new(out.join("provenance.csv")).save(std::slice::from_ref(&this_run))?;
    // Finished units this check reused that another commit trained.
    let reused = lth_store::verify::take_other_commit_units().len();
    let reused_line = (reused > 0).then(|| {
        format!(
            "REUSED {target} {}: {} of the run store trained by another commit than {} (or \
             before commits were recorded), judged as they are; --retrain trains them afresh\n",
            o.scale,
            lth_report::count(reused, "finished unit"),
            lth_store::verify::commit().unwrap_or_else(|| this_run.commit.clone())
        )
    });
    let mut record_refused = None;
    let record_lines = if o.record {
        let command = record_command(target, o, replicates, samples, &class, pack_of(o));
        match record(
            spec,
            expected_path,
            &o.scale,
            &class,
            &command,
            &results,
            &runs,
        ) {
            Ok(lines) => {
                // This run's provenance, with the command that records it (git, the CPU and
                // the data's digests are read once).
                Provenance {
                    command,
                    ..this_run.clone()
                }
                .record(&provenance_path)?;
                say(format!(
                    "recorded the measured cells of this run in {}",
                    expected_path.display()
                ));
                lines
            }
            // Refused: nothing written, and the verdicts of the run still reported.
            Err(ReproError::Refused(why)) => {
                record_refused = Some(why);
                String::new()
            }
            Err(e) => return Err(e),
        }
    } else {
        String::new()
    };
    let snapshot = Provenance::load(&provenance_path)?
        .into_iter()
        .find(|p| p.scale == o.scale && p.device == class);
    let absent: Vec<String> = absent.into_iter().collect();
    Ok(Report {
        table: render_table(spec, &o.scale, device_label, &results, cells, false),
        verdict_lines: render_verdicts(&verdicts),
        skipped_lines: render_skipped(&results, &verdicts)
            + &unchecked_lines(&verdicts)
            + not_checked.as_deref().unwrap_or_default()
            + reused_line.as_deref().unwrap_or_default()
            + &record_lines,
        summary: summary_line(target, &o.scale, &verdicts, &absent),
        verdicts,
        out,
        snapshot,
        wall: std::time::Duration::ZERO,
        spent: lth_store::ledger::Spent::default(),
        record_refused,
    })
}

/// What the training stages of one run of a target share: the options, the experiment, the
/// store, how many runs pack into one network, the scale's sizes, and the progress line.
struct Stages<'a> {
    o: &'a Options,
    exp: &'a dyn Experiment,
    store: &'a Store,
    pack: usize,
    replicates: u64,
    points: u64,
    target: String,
    pace: crate::pace::Pace,
}

/// One replicate of a row this process trains: its number, its flags, and its lottery (for
/// experiments that train).
type Replicate<'d> = (u64, Resolved, Option<Lottery<'d>>);

impl<'a> Stages<'a> {
    fn say(&self, line: String) {
        if !self.o.quiet {
            eprintln!("{line}");
        }
    }

    /// A stage done: the progress line with its estimate of the time left.
    fn worked(&mut self, began: std::time::Instant) {
        self.pace.worked(1.0, began);
        self.say(format!("progress: {} {}", self.target, self.pace.line()));
    }

    /// Stage "plan": the replicates of a placed row this process trains (all, or those
    /// `--only-replicates` or `--unit` name), each with its flags and lottery.
    fn replicates_of<'d>(
        &self,
        placed: &Placed,
        data: Option<&'d Data>,
    ) -> Result<Vec<Replicate<'d>>> {
        let mut reps = Vec::new();
        for r in 1..=self.replicates {
            if self
                .o
                .only_replicates
                .as_ref()
                .is_some_and(|only| !only.contains(&r))
                || self.o.unit.as_ref().is_some_and(|u| u.replicate != r)
            {
                continue;
            }
            let res = placed.flags.for_replicate(r).resolve(placed.level)?;
            let lottery = match data {
                Some(data) if self.exp.trains() => {
                    Some(Lottery::new(self.store, res.hp.clone(), r, data)?)
                }
                _ => None,
            };
            reps.push((r, res, lottery));
        }
        Ok(reps)
    }

    /// Stage "levels": levels `0..=level` of the replicates' lotteries, level by level across
    /// replicates, up to `pack` of them in one network. A `--unit` part refuses to train a
    /// level: its lottery unit must finish first.
    fn levels(
        &mut self,
        row: &str,
        reps: &[Replicate],
        level: u64,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let lotteries: Vec<&Lottery> = reps.iter().filter_map(|(_, _, l)| l.as_ref()).collect();
        let part = self.o.unit.as_ref().and_then(|u| u.part);
        let (pack, replicates) = (self.pack, self.replicates);
        for l in 0..=level {
            let mut todo: Vec<&Lottery> = Vec::new();
            for &lottery in &lotteries {
                if !lottery.level_done(l)? {
                    todo.push(lottery);
                }
            }
            let Some(first) = todo.first() else {
                if !lotteries.is_empty() {
                    self.pace.reused(1.0);
                }
                continue;
            };
            if let Some(p) = part {
                return Err(ReproError::Invalid(format!(
                    "unit {row}/{r}/{p}: level {l} of replicate {r} is not trained (in {}); the \
                     unit {row}/{r} must finish first",
                    first.level_dir(l).path().display(),
                    r = first.replicate(),
                )));
            }
            let which: Vec<u64> = todo.iter().map(|t| t.replicate()).collect();
            self.say(format!(
                "{row}: level {l} of {} {} of {replicates}{}",
                if which.len() == 1 {
                    "replicate"
                } else {
                    "replicates"
                },
                list(&which),
                if pack > 1 && todo.len() > 1 {
                    format!(", up to {pack} in one packed network")
                } else {
                    String::new()
                }
            ));
            let began = std::time::Instant::now();
            Lottery::run_levels(&todo, l, pack, progress)?;
            self.worked(began);
        }
        Ok(())
    }

    /// Stage "jobs": the measurement's plain runs across replicates, up to `pack` in one
    /// network, before anything is measured.
    fn jobs(
        &mut self,
        row: &str,
        units: &[Unit],
        data: &Data,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let mut jobs = Vec::new();
        for unit in units {
            jobs.extend(self.exp.jobs(unit)?);
        }
        let Some(first) = units.first().filter(|_| !jobs.is_empty()) else {
            self.pace.reused(1.0);
            return Ok(());
        };
        let pack = self.pack;
        self.say(format!(
            "{row}: {} of the measurement{}",
            lth_report::count(jobs.len(), "run"),
            if pack > 1 && jobs.len() > 1 {
                format!(", up to {pack} in one packed network")
            } else {
                String::new()
            }
        ));
        let began = std::time::Instant::now();
        lth_train::train_jobs(&first.hp.train, data, &jobs, pack, progress)?;
        self.worked(began);
        Ok(())
    }

    /// Stage "measure": each replicate's measurement (training through the store whatever else
    /// it needs).
    fn measure(
        &mut self,
        row: &str,
        units: &[Unit],
        progress: &mut dyn Progress,
    ) -> Result<Vec<(u64, Measured)>> {
        let began = std::time::Instant::now();
        let mut measured = Vec::new();
        for unit in units {
            self.say(format!(
                "{row}: replicate {}/{}",
                unit.replicate, self.replicates
            ));
            let handed = self.o.handoff.as_ref().map(|d| {
                d.join(row)
                    .join(format!("replicate_{}.txt", unit.replicate))
            });
            let judging = self.o.only_replicates.is_none();
            let m = match handed.as_ref().filter(|p| judging && p.is_file()) {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|source| ReproError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    Measured::from_text(&text)
                        .map_err(|e| ReproError::Invalid(format!("{}: {e}", path.display())))?
                }
                None => {
                    let m = self.exp.measure(unit, progress)?;
                    if let Some(path) = handed.as_ref().filter(|_| !judging) {
                        if let Some(dir) = path.parent() {
                            std::fs::create_dir_all(dir).map_err(|source| ReproError::Io {
                                path: dir.to_owned(),
                                source,
                            })?;
                        }
                        lth_store::write_atomic(path, m.to_text().as_bytes())?;
                    }
                    m
                }
            };
            if let Some(name) = m.undeclared(self.exp.metrics()) {
                return Err(ReproError::Invalid(format!(
                    "a `{}` experiment measured `{name}`, which is not among the metrics it \
                     declares ({})",
                    self.exp.kind(),
                    self.exp.metrics().join(", ")
                )));
            }
            measured.push((unit.replicate, m));
        }
        self.worked(began);
        Ok(measured)
    }
}

/// Stage "summarise": a row's replicates' measurements by metric (each replicate's mean over
/// its samples, summarised over replicates, then the experiment's derived metrics), as the row's
/// result and its run.
fn summarise(
    exp: &dyn Experiment,
    row: &Row,
    placed: Placed,
    replicates: Vec<(u64, Measured)>,
) -> (RowResult, RowRun) {
    let mut per_metric: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for (r, m) in &replicates {
        for (k, v) in replicate_means(m) {
            per_metric.entry(k).or_default().push((*r, v));
        }
    }
    let mut measured: BTreeMap<String, Measurement> = per_metric
        .into_iter()
        .map(|(k, v)| (k, Measurement::of(v)))
        .collect();
    let summaries: BTreeMap<String, Summary> = measured
        .iter()
        .map(|(k, m)| (k.clone(), m.summary))
        .collect();
    for (k, v) in exp.derived(&summaries) {
        measured.insert(k, Measurement::derived(v));
    }
    let metrics: BTreeMap<String, Summary> = measured
        .iter()
        .map(|(k, m)| (k.clone(), m.summary))
        .collect();
    let result = RowResult {
        row: row.id.clone(),
        label: if placed.variant.is_some() {
            format!("{} · {} variant", row.label, placed.dataset)
        } else {
            row.label.clone()
        },
        dataset: placed.dataset.clone(),
        variant_of: placed.variant,
        status: RowStatus::Ran { metrics },
    };
    let run = RowRun {
        dataset: placed.dataset,
        replicates,
        measured,
    };
    (result, run)
}

/// Stage "judge": every cell of `scale` (and every paper cell) of every row, the measured
/// snapshots of device class `class` only, claims and the paper's numbers on every device; then
/// the trend claims over several rows, judged where every row ran on the cell's data.
fn judge(
    cells: &[Cell],
    results: &[RowResult],
    runs: &BTreeMap<String, RowRun>,
    scale: &str,
    class: &str,
) -> Vec<Verdict> {
    let snapshot_here = |c: &Cell| c.source != Source::Measured || c.device == class;
    let mut found: Vec<(Cell, Finding)> = Vec::new();
    for r in results {
        for cell in cells.iter().filter(|c| c.row == r.row) {
            if !(cell.scale == scale || cell.source == Source::Paper) || !snapshot_here(cell) {
                continue;
            }
            let finding = match measured_for(r, cell, runs, scale) {
                Ok(measured) => assess(cell, measured),
                Err(not_judged) => not_judged,
            };
            found.push((cell.clone(), finding));
        }
    }
    for cell in cells
        .iter()
        .filter(|c| c.check.is_trend() && c.scale == scale)
    {
        let rows: std::result::Result<Vec<_>, Finding> = cell
            .rows()
            .into_iter()
            .map(|name| {
                let r = results
                    .iter()
                    .find(|r| r.row == name)
                    .ok_or_else(|| Finding::Broken(format!("row `{name}` did not run")))?;
                measured_for(r, cell, runs, scale).map_err(|f| match f {
                    Finding::Skipped(why) => Finding::Skipped(format!("row `{name}`: {why}")),
                    other => other,
                })
            })
            .collect();
        let finding = match rows {
            Ok(rows) => assess_trend(cell, &rows),
            Err(not_judged) => not_judged,
        };
        found.push((cell.clone(), finding));
    }
    decide(found)
}

/// Stage "record" (`--record`): the rows' measured cells of `scale` on device class `class`
/// written into the snapshot table at `expected_path` (read again first: another run may have
/// recorded another scale meanwhile), refused where a margin is narrower than its recorded
/// spread can hold. Returns the lines that say what each recorded cell can detect.
fn record(
    spec: &Spec,
    expected_path: &Path,
    scale: &str,
    class: &str,
    command: &str,
    results: &[RowResult],
    runs: &BTreeMap<String, RowRun>,
) -> Result<String> {
    let mut latest = load_cells(expected_path)?;
    let mut widened = String::new();
    for r in results {
        if let (RowStatus::Ran { .. }, Some(run)) = (&r.status, runs.get(&r.row)) {
            let measured: Vec<(String, Measurement)> = run
                .measured
                .iter()
                .map(|(k, m)| (k.clone(), m.clone()))
                .collect();
            let new = record_measured(
                &mut latest,
                &r.row,
                &r.dataset,
                scale,
                class,
                command,
                &measured,
            );
            for i in new {
                if let Some(line) = latest[i].widen_first_record() {
                    widened.push_str(&line);
                    widened.push('\n');
                }
            }
        }
    }
    let (lines, refused) = snapshot_power(&latest, scale, class, |row, metric| {
        spec.regression(row, metric)
    });
    if !refused.is_empty() {
        return Err(ReproError::Refused(format!(
            "{}: not recorded: {} margin(s) narrower than 2·t·SE of the recorded spread, \
             which a rerun could not pass: {}; widen them (with the reason in the rationale) \
             or add replicates",
            expected_path.display(),
            refused.len(),
            refused.join("; ")
        )));
    }
    save_cells(expected_path, &latest)?;
    Ok(widened + &lines)
}

/// What a judged target's reports are written from: its spec, the scale and device it ran at,
/// each row's summary and replicates, and the verdicts on its cells.
struct Reports<'a> {
    spec: &'a Spec,
    scale: &'a str,
    device_label: &'a str,
    results: &'a [RowResult],
    runs: &'a BTreeMap<String, RowRun>,
    verdicts: &'a [Verdict],
    cells: &'a [Cell],
}

impl Reports<'_> {
    /// Stage "write": `table.md`, `samples.csv` and `replicates.csv` (every value the rows
    /// measured), `results.csv` (every verdict with our summary beside the reference) and the
    /// plot, in `out`.
    fn write(&self, out: &Path) -> Result<()> {
        let Reports {
            spec,
            scale,
            device_label,
            results,
            runs,
            verdicts,
            cells,
        } = *self;
        std::fs::create_dir_all(out).map_err(|e| ReproError::Io {
            path: out.to_owned(),
            source: e,
        })?;
        write_text(
            &out.join("table.md"),
            &render_table(spec, scale, device_label, results, cells, true),
        )?;
        let mut sample_lines = Vec::new();
        let mut replicate_lines = Vec::new();
        for (row, run) in runs {
            for (r, m) in &run.replicates {
                for (metric, values) in m.iter() {
                    sample_lines.extend(values.iter().enumerate().map(|(i, &value)| SampleLine {
                        row: row.clone(),
                        dataset: run.dataset.clone(),
                        scale: scale.to_owned(),
                        replicate: *r,
                        sample: i,
                        metric: metric.to_owned(),
                        value,
                    }));
                }
                replicate_lines.extend(replicate_means(m).into_iter().map(|(metric, value)| {
                    ReplicateLine {
                        row: row.clone(),
                        dataset: run.dataset.clone(),
                        scale: scale.to_owned(),
                        replicate: *r,
                        metric,
                        value,
                    }
                }));
            }
        }
        CsvLog::new(out.join("samples.csv")).save(&sample_lines)?;
        CsvLog::new(out.join("replicates.csv")).save(&replicate_lines)?;
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
                    row: v.cell.row.clone(),
                    dataset: v.cell.dataset.clone(),
                    metric: v.cell.metric.clone(),
                    source: v.cell.source,
                    scale: v.cell.scale.clone(),
                    check: v.cell.check.to_string(),
                    outcome: v.outcome.to_string(),
                    ours_mean: ours.map(|s| s.mean),
                    ours_sd: ours.map(|s| s.sd),
                    ours_n: ours.map(|s| s.n),
                    reference_mean: v.cell.mean,
                    reference_spread: v.cell.spread,
                    reference_n: v.cell.n,
                    margin: v.cell.margin.map_or(String::new(), |m| m.to_string()),
                    detail: v.detail.clone(),
                }
            })
            .collect();
        CsvLog::new(out.join("results.csv")).save(&lines)?;
        plot_svg(
            spec,
            results,
            cells,
            &out.join(format!("{}.svg", spec.target())),
        )?;
        Ok(())
    }
}

/// The stages after training, on a synthetic kind of experiment that needs no data: a row's
/// replicates summarised with its derived metric, every kind of cell judged (or left out for
/// another device), and the reports written, without training anything.
#[cfg(test)]
mod stages {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A kind that measures `acc` and `base` and derives their ratio; it never trains, and reads
    /// its rows' data only when `data` says so.
    struct Synthetic {
        data: bool,
    }

    impl Experiment for Synthetic {
        fn kind(&self) -> &'static str {
            "synthetic"
        }
        fn metrics(&self) -> &'static [&'static str] {
            &["acc", "base", "ratio"]
        }
        fn trains(&self) -> bool {
            false
        }
        fn needs_data(&self, _hp: &lth_lottery::LotteryHparams) -> bool {
            self.data
        }
        fn measure(&self, _unit: &Unit, _progress: &mut dyn Progress) -> Result<Measured> {
            Err(ReproError::Invalid(
                "the synthetic kind measures nothing".into(),
            ))
        }
        fn derived(&self, s: &BTreeMap<String, Summary>) -> Vec<(String, f64)> {
            vec![("ratio".into(), s["acc"].mean / s["base"].mean)]
        }
    }

    const SPEC: &str = r#"
title = "synthetic"
paper = "none"
experiment = "synthetic"
columns = [{ header = "Accuracy", metric = "acc" }, { header = "Base", metric = "base" }]
plot = [{ title = "acc", metrics = ["acc"], y_label = "accuracy" }]

[scales.smoke]
description = "a test"
replicates = 2
cpu_minutes = 1

[scales.quick]
description = "a test"
replicates = 2
cpu_minutes = 1

[scales.paper]
description = "a test"
replicates = 2
cpu_minutes = 1

[[rows]]
id = "a"
label = "A"
model = "lenet_300_100"
dataset = "fashion-mnist"
level = 0

[[rows]]
id = "b"
label = "B"
model = "lenet_300_100"
dataset = "mnist"
level = 0

[[rows]]
id = "c"
label = "C"
model = "lenet_300_100"
dataset = "mnist"
variants = ["fashion-mnist"]
level = 0
"#;

    const CELLS: &str = "row,dataset,metric,source,scale,device,command,mean,spread,n,replicates,check,alpha,margin,expect,rationale
a,fashion-mnist,acc,measured,smoke,cpu,c,0.925,0.001,2,,equivalent,0.05,0.05,,as recorded
a,fashion-mnist,base,measured,smoke,cpu,c,0.7,0.01,2,,equivalent,0.05,0.05,,a regression
a,fashion-mnist,acc,measured,smoke,cuda,c,0.1,0.01,2,,equivalent,0.05,0.05,,another device
a,fashion-mnist,acc,claim,smoke,,,,,,,greater:base,0.05,,holds,acc above base
b,mnist,acc,measured,smoke,cpu,c,0.9,0.01,2,,equivalent,0.05,0.05,,a skipped row
";

    fn setup() -> (tempfile::TempDir, Spec, Vec<Cell>) {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec::parse(SPEC, &dir.path().join("spec.toml")).unwrap();
        let path = dir.path().join("expected.csv");
        std::fs::write(&path, CELLS).unwrap();
        let cells = load_cells(&path).unwrap();
        (dir, spec, cells)
    }

    fn measured(pairs: &[(&str, &[f64])]) -> Measured {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect()
    }

    /// Row `a` ran (two replicates, one with two samples), row `b` was skipped.
    fn ran(spec: &Spec) -> (Vec<RowResult>, BTreeMap<String, RowRun>) {
        let row = &spec.rows[0];
        let placed = Placed {
            dataset: row.dataset.clone(),
            variant: None,
            flags: parse(spec, &Synthetic { data: false }, row, "smoke", &row.dataset).unwrap(),
            level: 0,
            needs_data: false,
        };
        let replicates = vec![
            (1, measured(&[("acc", &[0.923, 0.925]), ("base", &[0.5])])),
            (2, measured(&[("acc", &[0.926]), ("base", &[0.5])])),
        ];
        let (result, run) = summarise(&Synthetic { data: false }, row, placed, replicates);
        let skipped = RowResult {
            row: "b".into(),
            label: "B".into(),
            dataset: "mnist".into(),
            variant_of: None,
            status: RowStatus::Skipped {
                reason: "mnist is absent".into(),
            },
        };
        (
            vec![result, skipped],
            BTreeMap::from([("a".to_owned(), run)]),
        )
    }

    /// Placing: a row runs on its dataset where the files are, on a declared variant (labelled,
    /// with why) where only the variant's are, and is skipped with the reason where neither is;
    /// a kind that reads no data places every row on its own dataset.
    #[test]
    fn place_runs_a_row_where_its_data_is_and_says_why_not_elsewhere() {
        let (dir, spec, cells) = setup();
        let root = dir.path().join("data");
        let fashion = lth_data::info("fashion-mnist").unwrap();
        lth_data::testutil::write_mnist_like(&root.join(fashion.dir), 20, 10, false).unwrap();
        let prepared = |data: bool| {
            let mut flags = BTreeMap::new();
            for row in &spec.rows {
                for s in spec.scales.keys() {
                    let level = spec.resolve(row, s).0;
                    let parsed = parse(&spec, &Synthetic { data }, row, s, &row.dataset).unwrap();
                    flags.insert((row.id.clone(), s.clone()), (level, parsed));
                }
            }
            Prepared {
                spec: spec.clone(),
                target: spec.target(),
                exp: Box::new(Synthetic { data }),
                scale: spec.scales["smoke"].clone(),
                replicates: 2,
                samples: 1,
                expected_path: dir.path().join("expected.csv"),
                cells: cells.clone(),
                flags,
            }
        };
        let o = Options::new(dir.path(), "smoke");
        let p = prepared(true);
        let mut absent = BTreeSet::new();
        let mut at = |id: &str| {
            let row = spec.rows.iter().find(|r| r.id == id).unwrap();
            place(&p, &o, row, &root, &mut absent).unwrap()
        };
        let a = at("a").unwrap();
        assert_eq!(
            (a.dataset.as_str(), a.variant.is_none()),
            ("fashion-mnist", true)
        );
        assert!(a.needs_data);
        let skipped = at("b").map(|_| ()).unwrap_err();
        assert!(skipped.contains("mnist is absent"), "{skipped}");
        let c = at("c").unwrap();
        assert_eq!(c.dataset, "fashion-mnist");
        assert!(c.variant.unwrap().contains("mnist is absent"));
        assert_eq!(c.flags.dataset(), Some("fashion-mnist"));
        assert_eq!(absent, BTreeSet::from(["mnist".to_owned()]));
        // Without data, every row is placed on its own dataset, files or not.
        let p = prepared(false);
        let mut none = BTreeSet::new();
        for row in &spec.rows {
            let placed = place(&p, &o, row, &root, &mut none).unwrap().unwrap();
            assert_eq!(placed.dataset, row.dataset);
            assert!(!placed.needs_data && placed.variant.is_none());
        }
        assert!(none.is_empty());
    }

    /// Each replicate counts once, as the mean of its samples; the derived metric comes from
    /// the summaries over replicates.
    #[test]
    fn summarise_takes_one_value_per_replicate_and_derives_from_the_means() {
        let (_dir, spec, _) = setup();
        let (results, runs) = ran(&spec);
        let m = &runs["a"].measured;
        assert!((m["acc"].summary.mean - 0.925).abs() < 1e-12);
        assert_eq!(m["acc"].summary.n, 2);
        assert!((m["ratio"].summary.mean - 1.85).abs() < 1e-12);
        let RowStatus::Ran { metrics } = &results[0].status else {
            panic!("row a ran")
        };
        assert_eq!(metrics.len(), 3);
    }

    /// This device's snapshot is judged (a pass and a regression), another device's is not, a
    /// claim is a test over replicates, and a skipped row's cell says why.
    #[test]
    fn judge_decides_each_cell_once_for_this_device() {
        let (_dir, spec, cells) = setup();
        let (results, runs) = ran(&spec);
        let verdicts = judge(&cells, &results, &runs, "smoke", "cpu");
        let outcome = |row: &str, metric: &str, source: Source| {
            verdicts
                .iter()
                .find(|v| v.cell.row == row && v.cell.metric == metric && v.cell.source == source)
                .map(|v| (v.outcome, v.detail.clone()))
        };
        assert_eq!(
            outcome("a", "acc", Source::Measured).unwrap().0,
            Outcome::Pass
        );
        assert_eq!(
            outcome("a", "base", Source::Measured).unwrap().0,
            Outcome::Fail
        );
        assert_eq!(outcome("a", "acc", Source::Claim).unwrap().0, Outcome::Pass);
        let (b, why) = outcome("b", "acc", Source::Measured).unwrap();
        assert_eq!(b, Outcome::Skipped);
        assert!(why.contains("mnist is absent"), "{why}");
        // The cuda snapshot is not this device's: not judged, not listed.
        assert_eq!(verdicts.len(), 4, "{verdicts:?}");
        assert!(verdicts.iter().all(|v| v.cell.device != "cuda"));
        // On cuda, that snapshot (a regression there) and the claim are judged for row a, and
        // the cpu snapshots are not.
        let on_cuda = judge(&cells, &results, &runs, "smoke", "cuda");
        assert_eq!(on_cuda.iter().filter(|v| v.cell.row == "a").count(), 2);
        assert_eq!(
            on_cuda
                .iter()
                .filter(|v| v.cell.row == "a" && v.outcome == Outcome::Fail)
                .count(),
            1
        );
    }

    /// The reports hold every sample, one mean per replicate, and one line per verdict.
    #[test]
    fn write_reports_every_sample_replicate_and_verdict() {
        let (dir, spec, cells) = setup();
        let (results, runs) = ran(&spec);
        let verdicts = judge(&cells, &results, &runs, "smoke", "cpu");
        let out = dir.path().join("out");
        Reports {
            spec: &spec,
            scale: "smoke",
            device_label: "cpu",
            results: &results,
            runs: &runs,
            verdicts: &verdicts,
            cells: &cells,
        }
        .write(&out)
        .unwrap();
        let lines = |f: &str| {
            std::fs::read_to_string(out.join(f))
                .unwrap()
                .lines()
                .count()
                - 1
        };
        assert_eq!(lines("samples.csv"), 5);
        assert_eq!(lines("replicates.csv"), 4);
        assert_eq!(lines("results.csv"), verdicts.len());
        let table = std::fs::read_to_string(out.join("table.md")).unwrap();
        assert!(
            table.contains("| A | fashion-mnist | 0.925 ± 0.001 | 0.500 ± 0.000 |"),
            "{table}"
        );
        assert!(
            table.contains("B: not run at this scale: mnist is absent"),
            "{table}"
        );
        assert!(out.join(format!("{}.svg", spec.target())).is_file());
    }
}

#[cfg(test)]
mod tests {
    use super::{GridUnit, snapshot_power};

    /// `--record` says what each cell can detect and refuses a margin its spread cannot hold.
    #[test]
    fn record_refuses_margins_below_twice_the_interval_and_prints_the_failing_shift() {
        let table = "row,dataset,metric,source,scale,device,command,mean,spread,n,replicates,check,alpha,margin,expect,rationale\n\
            a,d,acc,measured,quick,cpu,c,0.9,0.01,4,,equivalent,0.05,0.05,,why\n\
            a,d,loss,measured,quick,cpu,c,0.3,0.05,4,,equivalent,0.05,0.05,,why\n\
            a,d,acc,measured,quick,cuda,c,0.9,0.5,4,,equivalent,0.05,0.05,,another device\n\
            a,d,acc,measured,smoke,cpu,c,0.9,0.5,4,,equivalent,0.05,0.05,,another scale\n";
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("expected.csv");
        std::fs::write(&path, table).unwrap_or_else(|e| panic!("{e}"));
        let cells = lth_report::load_cells(&path).unwrap_or_else(|e| panic!("{e}"));
        let (lines, refused) = snapshot_power(&cells, "quick", "cpu", |_, metric| {
            (metric == "acc").then_some(lth_report::Margin::Absolute(0.04))
        });
        // acc: SE = 0.005, t(0.95, 3) = 2.3534: 2·t·SE = 0.0235 ≤ 0.05, and an independent rerun
        // fails beyond 0.05 − 2.3534·√2·0.005 = 0.0334. loss: 2·t·SE = 0.1177 > 0.05: refused.
        assert!(
            lines.contains("RECORDED a · d · acc: 0.9000 ± 0.0100 (n=4), margin ±0.0500: fails beyond a shift of 0.0334 on an independent rerun, 0.0500 on an identical one"),
            "{lines}"
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with("a · d · loss: margin 0.05 = 0.0500 < 2·t·SE = 0.1177"),
            "{refused:?}"
        );
        // A regression of 0.04 in acc passes a ±0.05 check even on an identical rerun.
        assert!(
            lines.contains("UNDETECTABLE a · d · acc: a regression of 0.04 (0.0400), the row's declared size, passes its check, which fails only beyond ±0.0500"),
            "{lines}"
        );
        assert_eq!(lines.lines().count(), 3, "{lines}");
    }

    #[test]
    fn grid_units_read_and_print_the_same() {
        for text in ["lenet/2", "resnet20_low/3/1"] {
            let u: GridUnit = text.parse().unwrap();
            assert_eq!(u.to_string(), text);
        }
        let u: GridUnit = "lenet/2/0".parse().unwrap();
        assert_eq!((u.row.as_str(), u.replicate, u.part), ("lenet", 2, Some(0)));
        for bad in ["lenet", "/1", "lenet/x", "lenet/1/y", "a/1/2/3"] {
            assert!(bad.parse::<GridUnit>().is_err(), "{bad}");
        }
    }
}
