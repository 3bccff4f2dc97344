//! `repro/<target>/expected.csv`: the snapshot table, one cell per line.
//!
//! Columns: `row` (the spec row's id), `dataset` (the data the numbers are on), `metric`, `source`
//! (`paper`, `measured` or `claim`), `scale` (`paper` for the paper's cells; the scale a snapshot
//! was measured at, or a claim applies at), `device` and `command` (for measured cells: where and
//! how they were produced), `mean`, `spread` (the paper's ± for paper cells; the sample standard
//! deviation for measured cells), `n`, `check` and `alpha` (the significance level).
//!
//! Checks: `welch` (our sample against the cell's, two-sided Welch test; PASS when p ≥ α), `range`
//! (our mean within the cell's mean ± spread, widened by our (1 − α) confidence interval: for the
//! paper's min/max ranges), `greater:<metric>` (claim: our `metric` exceeds our `<metric>`,
//! one-sided Welch; PASS when p < α), `not_less:<metric>` (claim: our `metric` is not below
//! `<metric>`; FAIL only when the one-sided test finds it lower, p < α), `none` (shown, not checked).

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ReportError, Result, Summary};

/// Where a cell's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Paper,
    Measured,
    Claim,
}

/// How a cell is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Welch,
    Range,
    Greater(String),
    NotLess(String),
    None,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Welch => f.write_str("welch"),
            Check::Range => f.write_str("range"),
            Check::Greater(m) => write!(f, "greater:{m}"),
            Check::NotLess(m) => write!(f, "not_less:{m}"),
            Check::None => f.write_str("none"),
        }
    }
}

impl std::str::FromStr for Check {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Check, String> {
        match s.split_once(':') {
            None if s == "welch" => Ok(Check::Welch),
            None if s == "range" => Ok(Check::Range),
            None if s == "none" => Ok(Check::None),
            Some(("greater", m)) if !m.is_empty() => Ok(Check::Greater(m.into())),
            Some(("not_less", m)) if !m.is_empty() => Ok(Check::NotLess(m.into())),
            _ => Err(format!(
                "unknown check `{s}`: expected welch, range, none, greater:<metric> or not_less:<metric>"
            )),
        }
    }
}

impl Serialize for Check {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Check, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One cell of the snapshot table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub row: String,
    pub dataset: String,
    pub metric: String,
    pub source: Source,
    pub scale: String,
    pub device: String,
    pub command: String,
    pub mean: Option<f64>,
    pub spread: Option<f64>,
    pub n: Option<u64>,
    pub check: Check,
    pub alpha: f64,
}

impl Cell {
    /// The cell's numbers as a summary, when it has them.
    pub fn summary(&self) -> Option<Summary> {
        Some(Summary::from_moments(self.mean?, self.spread?, self.n?))
    }

    /// Whether the cell applies to a run of `row` on `dataset` at `scale`.
    pub fn applies(&self, row: &str, dataset: &str, scale: &str) -> bool {
        self.row == row && self.dataset == dataset && self.scale == scale
    }
}

/// Reads and checks `expected.csv`; errors name the file and line.
pub fn load_cells(path: &Path) -> Result<Vec<Cell>> {
    let bad = |line: Option<u64>, problem: String| ReportError::Malformed {
        path: path.to_owned(),
        line,
        problem,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(None, e.to_string()))?;
    let mut cells = Vec::new();
    for record in reader.deserialize::<Cell>() {
        let cell = record.map_err(|e| {
            let line = e.position().map(|p| p.line());
            let problem = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
                _ => e.to_string(),
            };
            bad(line, problem)
        })?;
        let line = Some(cells.len() as u64 + 2);
        if cell.source == Source::Claim
            && !matches!(cell.check, Check::Greater(_) | Check::NotLess(_))
        {
            return Err(bad(
                line,
                "a claim needs a greater:<metric> or not_less:<metric> check".into(),
            ));
        }
        let needs_numbers = matches!(cell.check, Check::Welch | Check::Range);
        if needs_numbers && cell.summary().is_none() {
            return Err(bad(
                line,
                format!("a `{}` check needs mean, spread and n", cell.check),
            ));
        }
        if !(cell.alpha > 0.0 && cell.alpha < 0.5) {
            return Err(bad(
                line,
                format!("alpha must be in (0, 0.5), got {}", cell.alpha),
            ));
        }
        cells.push(cell);
    }
    Ok(cells)
}

/// Writes the snapshot table.
pub fn save_cells(path: &Path, cells: &[Cell]) -> Result<()> {
    let io = |e: std::io::Error| ReportError::Io {
        path: path.to_owned(),
        source: e,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for c in cells {
        w.serialize(c).map_err(|e| io(std::io::Error::other(e)))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Replaces the measured cells of (`row`, `dataset`, `scale`) with `measured` (metric, summary),
/// keeping each cell's check and level; new cells are checked with `welch` at α = 0.01, or shown
/// only (`none`) when they hold a single value.
pub fn record_measured(
    cells: &mut Vec<Cell>,
    row: &str,
    dataset: &str,
    scale: &str,
    device: &str,
    command: &str,
    measured: &[(String, Summary)],
) {
    for (metric, s) in measured {
        let existing = cells.iter_mut().find(|c| {
            c.source == Source::Measured && c.applies(row, dataset, scale) && &c.metric == metric
        });
        let fresh = if s.n > 1 { Check::Welch } else { Check::None };
        let (check, alpha) = existing
            .as_ref()
            .map_or((fresh, 0.01), |c| (c.check.clone(), c.alpha));
        let cell = Cell {
            row: row.into(),
            dataset: dataset.into(),
            metric: metric.clone(),
            source: Source::Measured,
            scale: scale.into(),
            device: device.into(),
            command: command.into(),
            mean: Some(s.mean),
            spread: Some(s.sd),
            n: Some(s.n),
            check,
            alpha,
        };
        match existing {
            Some(c) => *c = cell,
            None => cells.push(cell),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "row,dataset,metric,source,scale,device,command,mean,spread,n,check,alpha\n";

    fn load(body: &str) -> Result<Vec<Cell>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected.csv");
        std::fs::write(&path, format!("{HEADER}{body}")).unwrap();
        load_cells(&path)
    }

    #[test]
    fn reads_cells_and_rejects_malformed_ones_by_line() {
        let cells = load(
            "lenet,mnist,data_order_imp,paper,paper,,,20.7,0.6,18,range,0.05\n\
             lenet,mnist,data_order_random,claim,paper,,,,,,greater:data_order_imp,0.01\n",
        )
        .unwrap();
        assert_eq!(cells[1].check, Check::Greater("data_order_imp".into()));
        let err = load("lenet,mnist,x,paper,paper,,,1,1,1,range,0.05\nlenet,mnist,x,paper,paper,,,1,1,1,wlch,0.05\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected.csv, line 3: unknown check `wlch`"),
            "{err}"
        );
        let err = load("lenet,mnist,x,paper,paper,,,,,,welch,0.05\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2: a `welch` check needs mean, spread and n"),
            "{err}"
        );
        let err = load("lenet,mnist,x,claim,quick,,,,,,welch,0.05\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a claim needs"), "{err}");
        let err = load("lenet,mnist,x,measured,quick,cpu,c,1,1,5,welch,0.7\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("alpha must be in (0, 0.5)"), "{err}");
    }

    #[test]
    fn recording_replaces_measured_cells_and_keeps_their_checks() {
        let mut cells =
            load("lenet,fashion-mnist,data_order_imp,measured,quick,cpu,old,1,1,5,welch,0.05\n")
                .unwrap();
        let s = Summary::of(&[3.0, 4.0]);
        record_measured(
            &mut cells,
            "lenet",
            "fashion-mnist",
            "quick",
            "cpu",
            "new",
            &[("data_order_imp".into(), s), ("pruning_imp".into(), s)],
        );
        assert_eq!(cells.len(), 2);
        assert_eq!(
            (cells[0].command.as_str(), cells[0].mean, cells[0].alpha),
            ("new", Some(3.5), 0.05)
        );
        assert_eq!(
            (cells[1].metric.as_str(), cells[1].alpha),
            ("pruning_imp", 0.01)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected.csv");
        save_cells(&path, &cells).unwrap();
        assert_eq!(load_cells(&path).unwrap(), cells);
    }
}
