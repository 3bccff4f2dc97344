//! Tidy CSV files of typed rows, rewritten atomically, read back with errors that name the line.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Result, StoreError, write_atomic};

/// A CSV file whose rows are values of `R` (one struct field per column).
///
/// Files are small (one row per evaluation or per cell), so every save rewrites the whole file
/// atomically; a kill mid-write leaves the previous version intact.
#[derive(Debug, Clone)]
pub struct CsvLog<R> {
    path: PathBuf,
    _row: PhantomData<fn() -> R>,
}

impl<R: Serialize + DeserializeOwned> CsvLog<R> {
    /// A log at `path`; nothing is read or written yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLog {
            path: path.into(),
            _row: PhantomData,
        }
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All rows; an absent file has none.
    pub fn load(&self) -> Result<Vec<R>> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        read_csv(&self.path).map_err(|p| StoreError::Csv {
            path: self.path.clone(),
            line: p.line,
            problem: p.problem,
        })
    }

    /// Replaces the file with `rows`.
    pub fn save(&self, rows: &[R]) -> Result<()> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        for row in rows {
            writer.serialize(row).map_err(|e| self.csv_err(e))?;
        }
        let bytes = writer.into_inner().map_err(|e| StoreError::Foreign {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)
    }

    fn csv_err(&self, e: csv::Error) -> StoreError {
        StoreError::Csv {
            path: self.path.clone(),
            line: e.position().map(csv::Position::line),
            problem: e.to_string(),
        }
    }
}

/// What is wrong with a CSV file: the line (1 is the header) and the problem, which names the
/// column and the value it could not read.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvProblem {
    pub line: Option<u64>,
    pub problem: String,
}

/// Reads every row of the CSV file at `path` (with a header line) as an `R`. An error names the
/// line, the column (by its header) and the value: `line 3: column \`lr\` = \`fast\`: invalid
/// float literal`, rather than a 0-based field index.
pub fn read_csv<R: DeserializeOwned>(path: &Path) -> std::result::Result<Vec<R>, CsvProblem> {
    let _io = crate::ledger::span(crate::ledger::Activity::Io);
    let whole = |e: csv::Error| CsvProblem {
        line: e.position().map(csv::Position::line),
        problem: match e.kind() {
            csv::ErrorKind::Io(io) => io.to_string(),
            _ => e.to_string(),
        },
    };
    let mut reader = csv::Reader::from_path(path).map_err(whole)?;
    let headers = reader.headers().map_err(whole)?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(whole)?;
        let row = record.deserialize::<R>(Some(&headers)).map_err(|e| {
            let line = record.position().map(csv::Position::line);
            let problem = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => match err.field() {
                    Some(i) => format!(
                        "column `{}` = `{}`: {}",
                        headers.get(i as usize).unwrap_or("?"),
                        record.get(i as usize).unwrap_or(""),
                        err.kind()
                    ),
                    None => err.kind().to_string(),
                },
                _ => e.to_string(),
            };
            CsvProblem { line, problem }
        })?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Row {
        step: u64,
        loss: f64,
    }

    #[test]
    fn round_trips_rows_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let log = CsvLog::<Row>::new(dir.path().join("m.csv"));
        assert!(log.load().unwrap().is_empty());
        let rows = vec![
            Row {
                step: 0,
                loss: 0.1 + 0.2,
            },
            Row {
                step: 10,
                loss: 1e-300,
            },
        ];
        log.save(&rows).unwrap();
        assert_eq!(log.load().unwrap(), rows);
    }

    #[test]
    fn a_bad_row_is_an_error_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "step,loss\n0,0.5\nten,0.1\n").unwrap();
        let err = CsvLog::<Row>::new(&path).load().unwrap_err().to_string();
        // The column by its header and the value, not a 0-based field index; said once.
        assert!(
            err.ends_with("m.csv, line 3: column `step` = `ten`: invalid digit found in string"),
            "{err}"
        );
        std::fs::write(&path, "step,loss\n0,0.5\n1\n").unwrap();
        let err = CsvLog::<Row>::new(&path).load().unwrap_err().to_string();
        assert!(err.contains("m.csv, line 3: "), "{err}");
    }
}
