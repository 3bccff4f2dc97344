//! Errors of the data crate; each names the file or dataset it concerns and what was expected.

use std::path::PathBuf;

/// What can go wrong finding, reading or batching a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An operating-system error on a dataset file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that exists but is not what its name promises.
    #[error("{}: {problem}", path.display())]
    Malformed { path: PathBuf, problem: String },
    /// A dataset whose files are not under the data root.
    #[error("dataset `{name}` not found under {}: {problem}\n{how_to_get}", root.display())]
    Missing {
        name: String,
        root: PathBuf,
        problem: String,
        /// How to get it, and the datasets of the same input shape that are present instead.
        how_to_get: String,
    },
    /// A dataset name the registry does not know.
    #[error("unknown dataset `{name}`; known datasets: {known}")]
    Unknown { name: String, known: String },
    /// A request that cannot be met by this dataset (a validation split larger than the data...).
    #[error("{0}")]
    Invalid(String),
    /// An error raised by libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl DataError {
    pub(crate) fn malformed(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        DataError::Malformed {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
