//! The reproduction harness: a figure or table of a paper as a *target* (a folder holding
//! `spec.toml` and `expected.csv`, read by `lth-report`) plus an [`Experiment`] that measures one
//! row in one independent replicate. [`run_target`] plans every row at a scale, checks every input
//! before anything trains, runs the replicates through the run store (so they resume, and several
//! processes may share the work), summarises over replicates, judges the snapshot cells, and writes
//! the reports.
//!
//! Statistics: the unit of replication is the replicate, an independent experiment with its own
//! initial weights, data order, IMP run and mask. Samples inside a replicate (e.g. the pairs of
//! copies of a stability measurement) are averaged into one value per replicate, so a summary's
//! `n` is the number of replicates. Measured snapshots are checked for equivalence within a
//! declared margin (two one-sided tests), the paper's numbers with a range check, and the paper's
//! claims with one-sided Welch tests over replicates.
//!
//! ```no_run
//! use lth_repro::{Options, run_target};
//!
//! let options = Options::new("repro/fig3", "smoke");
//! let report = run_target(&options, &mut ())?;
//! println!("{}", report.summary);
//! # Ok::<(), lth_repro::ReproError>(())
//! ```

mod collapse;
mod curve;
mod early_bird;
mod experiment;
mod fast_tickets;
mod generalized;
mod greedy;
mod harness;
mod kinds;
mod learned_supermask;
mod lmc;
mod pace;
mod pai;
mod provenance;
mod rewinding;
mod sparse;
mod stability;
mod state_of_sparsity;
mod supermask;
mod transplant;
mod tropical;

pub use collapse::LayerCollapse;
pub use curve::LotteryCurve;
pub use early_bird::EarlyBirdTickets;
pub use experiment::{Experiment, Measured, MethodFlags, Resolved, RowFlags, RowGroup, Unit};
pub use fast_tickets::{FastTickets, TARGET_FRACTION, steps_to};
pub use generalized::{Generalized, prune_coefficients};
pub use greedy::{GreedySelection, hinge_changepoint, points};
pub use harness::{GridUnit, Options, Plan, Report, plan, run_target};
pub use kinds::{experiment, kinds};
pub use learned_supermask::LearnedSupermask;
pub use lmc::LinearModeConnectivity;
pub use pace::{Pace, duration};
pub use pai::PruneAtInit;
pub use provenance::{Build, Provenance, cpu_description, data_checksums};
pub use rewinding::Rewinding;
pub use sparse::SparseTraining;
pub use stability::Stability;
pub use state_of_sparsity::StateOfSparsity;
pub use supermask::Supermask;
pub use transplant::Transplanted;
pub use tropical::{Networks, Tropical, networks};

/// What can go wrong running a reproduction.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error(transparent)]
    Report(#[from] lth_report::ReportError),
    #[error(transparent)]
    Lottery(#[from] lth_lottery::LotteryError),
    #[error(transparent)]
    Stability(#[from] lth_stability::StabilityError),
    #[error(transparent)]
    Train(#[from] lth_train::TrainError),
    #[error(transparent)]
    Store(#[from] lth_store::StoreError),
    #[error(transparent)]
    Model(#[from] lth_models::ModelError),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An input that cannot work (a flag, a scale, a target), with what was expected.
    #[error("{0}")]
    Invalid(String),
    /// `--record` wrote nothing: a margin narrower than its recorded spread can hold, named.
    #[error("{0}")]
    Refused(String),
    /// The run finished and some outcomes were not the expected ones (FAIL or XPASS).
    #[error("{} (FAIL or XPASS; see {})", lth_report::count(count, "unexpected outcome"), results.display())]
    Unexpected {
        count: usize,
        results: std::path::PathBuf,
    },
}

impl ReproError {
    /// The exit status of a command that ends with this error: 1 for unexpected outcomes of a
    /// run that finished, 2 for everything else (a bad input, a crash, absent data or device).
    pub fn exit_code(&self) -> u8 {
        match self {
            ReproError::Unexpected { .. } => 1,
            _ => 2,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = ReproError> = std::result::Result<T, E>;
