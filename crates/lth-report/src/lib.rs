//! Reproduction reports: what a figure is (a spec), what it should show (a snapshot table), and
//! whether a run shows it (statistical checks), rendered as Markdown tables and SVG plots.
//!
//! - [`spec`]: `repro/<target>/spec.toml`: the rows of a figure or table (network, dataset,
//!   sparsity, the `lth lottery` flags of the paper's settings), and the scales `smoke`, `quick`,
//!   `paper` with their overrides. Errors name the file and line.
//! - [`expected`]: `repro/<target>/expected.csv`: one cell per row, dataset, metric and source —
//!   the paper's numbers, measured snapshots (with the scale, device and command that produced
//!   them), and claims between cells — each with the check that judges it.
//! - [`stats`]: sample summaries, Welch's t-test (one-sided, for claims) and the equivalence test
//!   (two one-sided tests, for measured snapshots), via statrs.
//! - [`verdict`]: PASS, FAIL, XFAIL, XPASS, INCONCLUSIVE (with the statistic) or SKIPPED per
//!   cell; claims Holm-adjusted within a target.
//! - [`render`]: the table in the paper's layout, with the paper's numbers beside ours, and the
//!   verdict lines; [`plot`]: an SVG bar chart.
//!
//! This crate knows nothing of tensors or training: `lth-repro` runs the experiments and hands
//! their measurements here.
//!
//! ```
//! use lth_report::{Summary, equivalence, welch};
//! // Replicate means of two metrics, and the paper's claim that the first is larger.
//! let imp = Summary::of(&[3.30, 3.40, 3.35, 3.42, 3.38]);
//! let random = Summary::of(&[8.1, 7.1, 8.7, 8.4, 8.2]);
//! assert!(welch(&random, &imp).unwrap().p_greater() < 0.01);
//! // A snapshot is matched by equivalence within a margin, not by "no difference".
//! let snapshot = Summary::of(&[3.36, 3.41, 3.33, 3.40, 3.39]);
//! assert!(equivalence(&imp, &snapshot, 0.1, 0.05).unwrap().equivalent());
//! ```

pub mod expected;
pub mod plot;
pub mod render;
pub mod spec;
pub mod stats;
pub mod verdict;

pub use expected::{
    Cell, Check, Expect, Margin, Source, load_cells, parse_replicates, record_measured, save_cells,
};
pub use plot::{lines_svg, plot_svg};
pub use render::{
    RowResult, RowStatus, counts, render_skipped, render_table, render_verdicts, summary_line,
};
pub use spec::{Spec, describe_targets, targets};
pub use stats::{
    Difference, Equivalence, Measurement, Summary, TTest, equivalence, holm, one_sample, welch,
};
pub use verdict::{Finding, Outcome, Verdict, assess, assess_trend, decide, judge, skipped};

use std::path::PathBuf;

/// What can go wrong reading specs and snapshot tables or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that does not parse or says something impossible, with the line when known.
    #[error("{}{}: {problem}", path.display(), line.map_or(String::new(), |l| format!(", line {l}")))]
    Malformed {
        path: PathBuf,
        line: Option<u64>,
        problem: String,
    },
    /// The plot could not be drawn.
    #[error("drawing {}: {problem}", path.display())]
    Plot { path: PathBuf, problem: String },
}

/// Result alias for this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// `n` with a noun in its number, as a report says it: `1 thread`, `2 threads`, `0 samples`.
pub fn count(n: impl std::fmt::Display, noun: &str) -> String {
    let n = n.to_string();
    if n == "1" {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
