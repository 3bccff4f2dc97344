//! `lth repro <target>`: a thin front-end over `lth-repro`, which runs a reproduction target's rows
//! at a scale, judges its snapshot cells, and writes `results.csv`, `replicates.csv`,
//! `samples.csv`, `table.md` and a plot under `target/repro/<target>/<scale>/`.

use std::path::PathBuf;

use clap::Args;

use lth_repro::{Options, run_target};

use super::CommonArgs;
use super::progress::Bar;

#[derive(Args, Debug)]
pub struct ReproArgs {
    /// The target: a folder of the repro directory (e.g. fig3), or the path of any folder holding
    /// a spec.toml and an expected.csv (your own target).
    #[arg(required_unless_present = "all")]
    pub target: Option<String>,
    /// Every target of the repro directory, one after the other, with one combined report
    /// (<out>/summary.md) and one closing line of counts. What this machine cannot run (absent
    /// data, CUDA asked for and not seen) is skipped, said once per target; a broken target fails
    /// alone.
    #[arg(long, conflicts_with_all = ["target", "record", "only_replicates"])]
    pub all: bool,
    /// smoke (seconds), quick (minutes on a CPU) or paper (the paper's settings).
    #[arg(long, default_value = "quick")]
    pub scale: String,
    /// Independent replicates per row (default: the scale's).
    #[arg(long)]
    pub replicates: Option<u64>,
    /// Samples per replicate (default: the scale's).
    #[arg(long)]
    pub samples: Option<u64>,
    /// Train only these replicates (comma-separated) and stop without judging, so that several
    /// processes or machines sharing --runs-dir can split a scale; a run without it judges.
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub only_replicates: Option<Vec<u64>>,
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

/// The options of a run of `target` on `device`.
fn options(args: &ReproArgs, target: PathBuf, device: tch::Device) -> Options {
    Options {
        target,
        scale: args.scale.clone(),
        replicates: args.replicates,
        samples: args.samples,
        only_replicates: args.only_replicates.clone(),
        device,
        runs_dir: args.common.runs_dir.clone(),
        data_dir: args.common.data.data_dir.clone(),
        out: args.out.clone(),
        record: args.record,
        quiet: args.common.quiet,
        channels_last: args.common.channels_last,
    }
}

pub fn run(args: &ReproArgs) -> anyhow::Result<()> {
    let Some(name) = &args.target else {
        return run_all(args);
    };
    let named = args.repro_dir.join(name);
    let own = PathBuf::from(name);
    let target = if !named.join("spec.toml").is_file() && own.join("spec.toml").is_file() {
        own
    } else {
        named
    };
    let options = options(args, target, args.common.device()?);
    let mut bar = Bar::new(args.common.quiet);
    let report = run_target(&options, &mut bar)?;
    print_report(&report);
    if args.check {
        report.check()?;
    }
    Ok(())
}

fn print_report(report: &lth_repro::Report) {
    println!("{}", report.table);
    print!("{}", report.verdict_lines);
    print!("{}", report.skipped_lines);
    if let Some(p) = &report.snapshot {
        println!(
            "snapshot of this scale: {} replicates on {} ({}; {}; {} threads)",
            p.replicates, p.device, p.cpu, p.simd, p.threads
        );
    }
    println!("reports: {}", report.out.display());
    println!("{}", report.summary);
}

/// What became of one target in `repro --all`.
struct Outcome {
    name: String,
    pass: usize,
    fail: usize,
    skipped: usize,
    /// The target's closing line, or why it did not run.
    line: String,
    /// Its failed cells, one line each.
    failures: Vec<String>,
    ran: bool,
}

/// `lth repro --all`: every target of the repro directory at one scale.
fn run_all(args: &ReproArgs) -> anyhow::Result<()> {
    let specs = lth_report::targets(&args.repro_dir)?;
    if specs.is_empty() {
        anyhow::bail!(
            "{}: no targets (folders with a spec.toml)",
            args.repro_dir.display()
        );
    }
    // A device this machine does not have skips every target, with the reason once each.
    let device = args.common.device().map_err(|e| e.to_string());
    let mut outcomes = Vec::new();
    for spec_path in specs {
        let folder = spec_path.parent().unwrap_or(&args.repro_dir).to_owned();
        let name = folder
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let skip = |why: String| Outcome {
            name: name.clone(),
            pass: 0,
            fail: 0,
            skipped: 0,
            line: format!("SKIPPED {name}: {why}"),
            failures: Vec::new(),
            ran: false,
        };
        // Every spec has the three scales; a broken one fails alone, the others still run.
        if let Err(e) = lth_report::Spec::load(&spec_path) {
            outcomes.push(Outcome {
                fail: 1,
                line: format!("FAIL {name}: {e}"),
                ..skip(String::new())
            });
            continue;
        }
        let device = match &device {
            Ok(d) => *d,
            Err(why) => {
                outcomes.push(skip(why.clone()));
                continue;
            }
        };
        eprintln!("== {name} ({} scale)", args.scale);
        let mut bar = Bar::new(args.common.quiet);
        match run_target(&options(args, folder, device), &mut bar) {
            Ok(report) => {
                print_report(&report);
                let count = |o: lth_report::Outcome| {
                    report.verdicts.iter().filter(|v| v.outcome == o).count()
                };
                outcomes.push(Outcome {
                    name: name.clone(),
                    pass: count(lth_report::Outcome::Pass),
                    fail: count(lth_report::Outcome::Fail),
                    skipped: count(lth_report::Outcome::Skipped),
                    line: report.summary.clone(),
                    failures: report
                        .verdict_lines
                        .lines()
                        .filter(|l| l.starts_with("FAIL"))
                        .map(str::to_owned)
                        .collect(),
                    ran: true,
                });
            }
            Err(e) => outcomes.push(Outcome {
                fail: 1,
                line: format!("FAIL {name}: {e}"),
                ..skip(String::new())
            }),
        }
    }
    let total = |f: fn(&Outcome) -> usize| outcomes.iter().map(f).sum::<usize>();
    let (pass, fail, skipped) = (total(|o| o.pass), total(|o| o.fail), total(|o| o.skipped));
    let targets_skipped = outcomes.iter().filter(|o| !o.ran && o.fail == 0).count();
    let closing = format!(
        "repro --all {}: {pass} PASS, {fail} FAIL, {skipped} SKIPPED cells over {} targets ({} \
         skipped whole)",
        args.scale,
        outcomes.len(),
        targets_skipped
    );
    let summary = summary_markdown(args, &outcomes, &closing);
    let path = args.out.join("summary.md");
    lth_store::write_atomic(&path, summary.as_bytes())?;
    for o in outcomes.iter().filter(|o| !o.ran) {
        println!("{}", o.line);
    }
    println!("combined report: {}", path.display());
    println!("{closing}");
    if args.check && fail > 0 {
        anyhow::bail!("{fail} cell(s) or target(s) failed");
    }
    Ok(())
}

/// The combined report of `repro --all`: a table of targets, then each target's failures.
fn summary_markdown(args: &ReproArgs, outcomes: &[Outcome], closing: &str) -> String {
    let mut s = format!(
        "# Reproductions at the {} scale\n\n| Target | PASS | FAIL | SKIPPED | Result |\n\
         | --- | ---: | ---: | ---: | --- |\n",
        args.scale
    );
    for o in outcomes {
        let report = if o.ran {
            format!("[{0}]({0}/{1}/table.md): {2}", o.name, args.scale, o.line)
        } else {
            o.line.clone()
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            o.name,
            o.pass,
            o.fail,
            o.skipped,
            report.replace('|', "\\|")
        ));
    }
    for o in outcomes.iter().filter(|o| !o.failures.is_empty()) {
        s.push_str(&format!("\n## {}: failed cells\n\n", o.name));
        for f in &o.failures {
            s.push_str(&format!("- {f}\n"));
        }
    }
    s.push_str(&format!("\n{closing}\n"));
    s
}
