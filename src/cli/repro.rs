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
    pub target: String,
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

pub fn run(args: &ReproArgs) -> anyhow::Result<()> {
    let named = args.repro_dir.join(&args.target);
    let own = PathBuf::from(&args.target);
    let target = if !named.join("spec.toml").is_file() && own.join("spec.toml").is_file() {
        own
    } else {
        named
    };
    let options = Options {
        target,
        scale: args.scale.clone(),
        replicates: args.replicates,
        samples: args.samples,
        only_replicates: args.only_replicates.clone(),
        device: args.common.device()?,
        runs_dir: args.common.runs_dir.clone(),
        data_dir: args.common.data.data_dir.clone(),
        out: args.out.clone(),
        record: args.record,
        quiet: args.common.quiet,
        channels_last: args.common.channels_last,
    };
    let mut bar = Bar::new(args.common.quiet);
    let report = run_target(&options, &mut bar)?;
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
    if args.check {
        report.check()?;
    }
    Ok(())
}
