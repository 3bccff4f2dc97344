//! The run store: where every training run, lottery level and branch keeps its files.
//!
//! Layout: `<root>/<kind>_<hash>/replicate_<n>/…`, where the hash covers only the hyperparameters
//! that differ from their (neutral) defaults, so adding a hyperparameter with a neutral default never
//! renames old runs. Every write is atomic (a temporary file, then a rename), a run folder is bound to
//! its hyperparameters by `hparams.json`, and a finished unit of work is marked by `done.json`.
//!
//! This crate knows nothing of tensors: it hands out paths, and the crates that own a format (masks,
//! checkpoints) write their files there through [`write_atomic`] or their own atomic rename.
//!
//! ```
//! use lth_store::{RunKind, Store};
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Hparams { lr: f64, steps: u64 }
//! let root = std::env::temp_dir().join(format!("lth-store-doc-{}", std::process::id()));
//! let store = Store::new(&root);
//! // The folder is named by a hash of the fields that differ from their defaults.
//! let hp = Hparams { lr: 0.1, steps: 10 };
//! let run = store.run(RunKind::Train, &hp);
//! run.create()?;
//! run.bind_hparams(&hp)?;
//! // Another set of hyperparameters never takes over a bound folder.
//! assert!(run.bind_hparams(&Hparams { lr: 0.2, steps: 10 }).is_err());
//! assert!(!run.is_done()?);
//! run.mark_done(&"finished")?;
//! assert_eq!(run.done_summary::<String>()?, Some("finished".to_owned()));
//! std::fs::remove_dir_all(&root).ok();
//! # Ok::<(), lth_store::StoreError>(())
//! ```

mod atomic;
mod error;
mod files;
mod hash;
pub mod layout;
pub mod ledger;
mod log;
mod nearest;
mod run;
pub mod verify;

pub use atomic::{tmp_path, write_atomic, write_json_atomic};
pub use error::{StoreError, io_message};
pub use files::{DONE_FILE, HPARAMS_FILE};
pub use hash::{hparams_hash, non_default};
pub use layout::RunKind;
pub use log::{CsvLog, CsvProblem, read_csv};
pub use nearest::{did_you_mean, nearest};
pub use run::{RunDir, RunLock, Store};

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
