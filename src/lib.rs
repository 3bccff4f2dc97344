//! `lth`: lottery-ticket and sparse-training research on libtorch.
//!
//! This facade re-exports the workspace's crates, so a project can depend on `lth` alone, or on the
//! single crates it needs:
//!
//! - [`rng`]: seeded, pinned random streams (data orders, initial weights, random masks);
//! - [`data`]: datasets and the on-device seeded loader;
//! - [`models`]: the papers' networks with PyTorch parameter names;
//! - [`train`]: the training loop, optimisers, schedules, resumable runs;
//! - [`prune`]: masks and pruning criteria;
//! - [`report`]: reproduction specs, snapshot tables, statistical checks, tables and plots;
//! - [`repro`]: the reproduction harness (targets, experiments, replicates, verdicts);
//! - [`rewind`]: iterative magnitude pruning with rewinding, and its baseline branches;
//! - [`stability`]: distances, angles, interpolation barriers, mask distances, and the
//!   stability experiments;
//! - [`store`]: the run store (hashed run folders, atomic writes).

pub use lth_data as data;
pub use lth_lottery as rewind;
pub use lth_models as models;
pub use lth_prune as prune;
pub use lth_report as report;
pub use lth_repro as repro;
pub use lth_rng as rng;
pub use lth_stability as stability;
pub use lth_store as store;
pub use lth_train as train;
