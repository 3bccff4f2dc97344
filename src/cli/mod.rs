//! Command-line interface: argument structs shared by the subcommands, and dispatch.

mod bench;
mod early_bird;
mod export;
mod grid;
mod info;
mod jobs;
mod lottery;
mod progress;
mod repro;
mod sparsity;
mod stability;
mod train;
mod transplant;
mod tropical;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use lth_train::DeviceChoice;

pub use lth_train::flags::TrainFlags;

#[derive(Parser, Debug)]
#[command(
    name = "lth",
    version,
    about = "Lottery-ticket and sparse-training research on libtorch",
    long_about = "Lottery-ticket and sparse-training research on libtorch.\n\n\
        Datasets are looked up under --data-dir, then $LTH_DATA, then data/. Runs are kept in \
        the run store (--runs-dir, default runs/), keyed by a hash of their non-default \
        hyperparameters; a finished run is never recomputed and an interrupted one resumes."
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Train a network (one replicate) and keep its metrics and checkpoints in the run store.
    Train(train::TrainArgs),
    /// Find lottery tickets: iterative magnitude pruning with rewinding (and baseline branches).
    Lottery(lottery::LotteryCmd),
    /// Data-order and pruning stability of a lottery level, for IMP and random subnetworks.
    Stability(stability::StabilityArgs),
    /// The error along the line between two copies of a lottery level, and its barrier.
    Interpolate(stability::InterpolateArgs),
    /// Move a lottery ticket to another depth of its family (Elastic LTH) and train it there.
    Elastic(transplant::ElasticArgs),
    /// Move a lottery ticket to another dataset or optimiser (ticket transfer) and train it there.
    Transfer(transplant::TransferArgs),
    /// Early-Bird tickets: channel masks from BatchNorm scales settle early in training; the
    /// narrow network is built for real and retrained.
    EarlyBird(early_bird::EarlyBirdArgs),
    /// Reproduce a figure or table of a paper (a folder of repro/) and judge it cell by cell.
    Repro(repro::ReproArgs),
    /// Spread a reproduction's independent units over a Slurm cluster, and follow them.
    #[command(subcommand)]
    Grid(grid::GridCmd),
    /// Benchmarks that print ratios measured in one run (--suite: the training loop, models and
    /// SynFlow against PyTorch, sparse training, Early-Bird, supermasks, packing, sparse inference).
    Bench(bench::BenchArgs),
    /// Write a lottery level's ticket in compressed sparse rows (one per layer) for PyTorch.
    Export(export::ExportArgs),
    /// The tropical-geometry picture of a lottery level of a one-hidden-layer network on 2-D data:
    /// decision boundaries and Newton polygons of the trained network, its ticket and a random
    /// reinitialisation (Alfarra et al.), with their shape distances.
    Tropical(tropical::TropicalArgs),
    /// The per-layer sparsity of a distribution (uniform, ER, ERK) for a model, without training.
    Sparsity(sparsity::SparsityArgs),
    /// List the models of the registry, or print one model's recipe (its default
    /// hyperparameters).
    Models(ModelsArgs),
    /// List the datasets and whether their files are present.
    Datasets(DataArgs),
    /// Show libtorch's build and the devices it sees.
    Info,
    /// Check every finished unit of a run store against the digests in its done.json.
    Verify(VerifyArgs),
}

/// What `lth models` shows.
#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// A model name (e.g. lenet_300_100, cifar_resnet_20): print its recipe, the value each
    /// training flag takes when it is not given, instead of the list of families.
    #[arg(value_name = "MODEL")]
    pub model: Option<String>,
}

/// What `lth verify` checks.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Root of the run store (also accepted as the only argument).
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    #[arg(value_name = "RUNS_DIR", conflicts_with = "runs_dir", hide = true)]
    pub at: Option<PathBuf>,
}

impl VerifyArgs {
    /// The run store to check: the argument, else --runs-dir.
    pub fn store(&self) -> &std::path::Path {
        self.at.as_deref().unwrap_or(&self.runs_dir)
    }
}

/// Where datasets are found.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset root (default: $LTH_DATA, else data/).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Options shared by every command that trains.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Root of the run store.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// auto (CUDA when libtorch sees a GPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Hide the progress bar and the per-evaluation lines.
    #[arg(long)]
    pub quiet: bool,
    /// Train again any finished unit whose files no longer match the digests in its done.json
    /// (deleted, truncated or changed), instead of stopping with an error that names the file.
    #[arg(long)]
    pub retrain_damaged: bool,
    /// Fail at once when another lth process is working in a run folder this command needs
    /// (by default it says so and waits for it, then finds the unit finished or resumes it).
    #[arg(long)]
    pub no_wait: bool,
    /// Lay out convolutions channels-last (NHWC in memory): faster with cuDNN on tensor cores.
    #[arg(long)]
    pub channels_last: bool,
    /// On CUDA, let cuDNN time its algorithms and keep the fastest (true by default; its choice
    /// may vary between runs, so results on a GPU are reproducible only up to it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub cudnn_benchmark: bool,
    /// libtorch's intra-op threads [default: libtorch's count (the cores, or OMP_NUM_THREADS),
    /// lowered when the command starts to the processors other busy work leaves free]. Results are
    /// the same science on any count, but may differ in the last bits between counts.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub threads: Option<i32>,
}

impl CommonArgs {
    /// The options of a command that reads the run store but trains nothing (`grid status`):
    /// every training option at its default.
    pub fn store(data: DataArgs, runs_dir: PathBuf) -> CommonArgs {
        CommonArgs {
            data,
            runs_dir,
            device: DeviceChoice::Auto,
            quiet: false,
            retrain_damaged: false,
            no_wait: false,
            channels_last: false,
            cudnn_benchmark: true,
            threads: None,
        }
    }

    /// The device asked for, with cuDNN configured when it is a GPU.
    pub fn device(&self) -> anyhow::Result<tch::Device> {
        // Set also when --threads is not given (to the default count), so that every command runs
        // under the settings `lth repro` uses: PyTorch's set_num_threads also turns off MKL's
        // dynamic choice of fewer threads than asked.
        tch::set_num_threads(self.threads.unwrap_or_else(|| default_threads(self.quiet)));
        let device = lth_train::resolve_device(self.device)?;
        if device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(self.cudnn_benchmark);
        }
        Ok(device)
    }

    /// Loads the dataset of `hp` for this command's device and layout.
    pub fn data(&self, hp: &lth_train::DatasetHparams) -> anyhow::Result<lth_train::Data> {
        let root = lth_data::data_root(self.data.data_dir.as_deref());
        let mut data = lth_train::Data::load(hp, &root, self.device()?)?;
        data.channels_last = self.channels_last;
        Ok(data)
    }
}

/// The intra-op threads of a command without `--threads`, decided once when it first asks:
/// libtorch's count, lowered to the processors that other busy work leaves free (said on stderr
/// unless quiet). With OMP_NUM_THREADS set, the user chose: libtorch's count as it stands.
fn default_threads(quiet: bool) -> i32 {
    static CHOSEN: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let wanted = tch::get_num_threads();
        if std::env::var_os("OMP_NUM_THREADS").is_some() {
            return wanted;
        }
        let Some((cpus, others)) = lth_train::busy_processors() else {
            return wanted;
        };
        let chosen = lth_train::threads_for_load(wanted, cpus, others);
        if chosen < wanted && !quiet {
            eprintln!(
                "threads: {chosen} of {wanted}: {} of other processes ready to run on this \
                 machine's {cpus} processors (--threads N sets the count)",
                lth_report::count(others, "task")
            );
        }
        chosen
    })
}

/// A device as a user names it: `cpu`, `cuda:0`.
pub fn device_word(device: tch::Device) -> String {
    match device {
        tch::Device::Cpu => "cpu".into(),
        tch::Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The device and libtorch's intra-op threads, as a report's header says them: `cpu, 2 libtorch
/// threads`.
pub fn on_device(device: tch::Device) -> String {
    format!(
        "{}, {}",
        device_word(device),
        lth_report::count(tch::get_num_threads(), "libtorch thread")
    )
}

/// The optimiser as its flag names it.
pub fn optimizer_word(o: lth_train::OptimizerKind) -> &'static str {
    match o {
        lth_train::OptimizerKind::Sgd => "sgd",
        lth_train::OptimizerKind::Adam => "adam",
    }
}

/// How a command ends when its exit status says more than "an error" (`lth repro --check`: 1 for
/// unexpected outcomes, 2 for an error).
#[derive(Debug, thiserror::Error)]
pub enum Exit {
    /// The run finished; some outcomes were not the expected ones.
    #[error("{0}")]
    Unexpected(String),
    /// Something could not run.
    #[error("{0}")]
    Error(String),
}

/// The exit status of a command that failed with `e`: 1 when a run finished with unexpected
/// outcomes, 2 for any error.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(Exit::Unexpected(_)) = e.downcast_ref::<Exit>() {
        return 1;
    }
    e.downcast_ref::<lth_repro::ReproError>()
        .map_or(2, lth_repro::ReproError::exit_code)
}

/// Runs the command; `given` says whether a flag of the command's training options
/// (`CommonArgs`: `retrain_damaged`, `no_wait`) was given, read off the parsed command line
/// wherever the command keeps them.
pub fn run(cli: Cli, given: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    lth_store::verify::set_retrain_damaged(given("retrain_damaged"));
    lth_store::verify::set_wait_for_locks(!given("no_wait"));
    // Every finished unit records the commit that trained it (found when a unit first needs it).
    lth_store::verify::set_commit_with(|| lth_repro::Build::current().label());
    match cli.cmd {
        Command::Verify(args) => info::verify(args.store()),
        Command::Train(args) => train::run(&args),
        Command::Lottery(cmd) => lottery::run(&cmd),
        Command::Stability(args) => stability::run_stability(&args),
        Command::Interpolate(args) => stability::run_interpolate(&args),
        Command::Elastic(args) => transplant::run_elastic(&args),
        Command::Transfer(args) => transplant::run_transfer(&args),
        Command::EarlyBird(args) => early_bird::run(&args),
        Command::Repro(args) => repro::run(&args),
        Command::Grid(cmd) => grid::run(&cmd),
        Command::Bench(args) => bench::run(&args),
        Command::Sparsity(args) => sparsity::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Tropical(args) => tropical::run(&args),
        Command::Models(args) => info::models(&args),
        Command::Datasets(args) => {
            info::datasets(&args);
            Ok(())
        }
        Command::Info => {
            info::info();
            Ok(())
        }
    }
}

/// A whole number of at least `N`, refused while the flags are parsed (before any training).
pub(crate) fn at_least<const N: u64, T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let n: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if n < N {
        return Err(format!("must be at least {N}, got {n}"));
    }
    T::try_from(n).map_err(|_| format!("`{s}` is too large"))
}
