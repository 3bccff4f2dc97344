//! Errors of the run store; each names the file it concerns.

use std::path::{Path, PathBuf};

/// An I/O problem with `path`, as a person reads it: `no space left on device: <path>` for a full
/// disk (the one such error a user fixes by freeing space), else `<path>: <problem>`.
pub fn io_message(path: &Path, problem: &str) -> String {
    if problem.contains("No space left on device") || problem.contains("os error 28") {
        format!("no space left on device: {}", path.display())
    } else {
        format!("{}: {problem}", path.display())
    }
}

/// What can go wrong reading or writing the run store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operating-system error on a file or folder.
    #[error("{}", io_message(path, &source.to_string()))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON file that does not parse as what it should hold.
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A CSV file that does not parse as what it should hold; the problem names the column and
    /// the value.
    #[error("{}{}: {problem}", path.display(), line.map_or(String::new(), |l| format!(", line {l}")))]
    Csv {
        path: PathBuf,
        line: Option<u64>,
        problem: String,
    },
    /// A file that exists but belongs to something else; it is never overwritten.
    #[error("{}: {reason}", path.display())]
    Foreign { path: PathBuf, reason: String },
    /// A unit asked for as another's input that has not finished.
    #[error("{}: {reason}", path.display())]
    NotFinished { path: PathBuf, reason: String },
    /// A finished unit whose file is missing or changed since it finished.
    #[error(
        "{}: finished, but {file} {problem}; re-run with --retrain-damaged to train it again, \
         or delete the folder",
        path.display()
    )]
    Damaged {
        path: PathBuf,
        file: String,
        problem: String,
    },
    /// Another process holds the run folder's lock.
    #[error("{}: another lth process is working in this run folder (lock held)", path.display())]
    Locked { path: PathBuf },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_said_in_a_users_words() {
        let full = StoreError::io(
            "runs/x/final.safetensors",
            std::io::Error::from_raw_os_error(28),
        );
        assert_eq!(
            full.to_string(),
            "no space left on device: runs/x/final.safetensors"
        );
        let other = StoreError::io("runs/x", std::io::Error::other("Permission denied"));
        assert_eq!(other.to_string(), "runs/x: Permission denied");
    }
}
