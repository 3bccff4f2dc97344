//! The run store: where every training run, lottery level and branch keeps its files.
//!
//! Layout: `<root>/<kind>_<hash>/replicate_<n>/…`, where the hash covers only the hyperparameters
//! that differ from their (neutral) defaults, so adding a hyperparameter with a neutral default never
//! renames old runs. Every write is atomic (a temporary file, then a rename), a run folder is bound to
//! its hyperparameters by `hparams.json`, and a finished unit of work is marked by `done.json`.
//!
//! This crate knows nothing of tensors: it hands out paths, and the crates that own a format (masks,
//! checkpoints) write their files there through [`write_atomic`] or their own atomic rename.

mod atomic;
mod error;
mod hash;
mod log;
mod run;

pub use atomic::{tmp_path, write_atomic, write_json_atomic};
pub use error::StoreError;
pub use hash::{hparams_hash, non_default};
pub use log::CsvLog;
pub use run::{RunDir, RunLock, Store};

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
