//! The names of a unit's own files, and reading them: what [`crate::RunDir`] writes and
//! [`crate::verify`] checks both come from here, so neither imports the other for them.

use std::fs;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::{Result, StoreError};

/// The file that binds a run folder to its hyperparameters.
pub const HPARAMS_FILE: &str = "hparams.json";
/// The file whose presence says the folder's work is finished; it holds a summary.
pub const DONE_FILE: &str = "done.json";
/// The file a process holds while it works in a folder.
pub(crate) const LOCK_FILE: &str = "lock";

/// Reads and parses a JSON file, naming it in any error.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let _io = crate::ledger::span(crate::ledger::Activity::Io);
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
        path: path.to_owned(),
        source,
    })
}
