//! `repro/<target>/expected.csv`: the snapshot table, one cell per line.
//!
//! Columns: `row` (the spec row's id), `dataset` (the data the numbers are on), `metric`, `source`
//! (`paper`, `measured` or `claim`), `scale` (`paper` for the paper's cells; the scale a snapshot
//! was measured at, or a claim applies at), `device` and `command` (for measured cells: where and
//! how they were produced), `mean`, `spread` (the paper's ± for paper cells; for measured cells the
//! standard deviation over independent replicates), `n` (replicates, for measured cells),
//! `replicates` (for measured cells: every replicate's value by its number, `1=0.8812;2=0.8790`;
//! replicate r's seeds are all drawn from r, so a check pairs each of its replicates with the
//! snapshot's replicate of the same number), `check`, `alpha` (the significance level), `margin`
//! (for `equivalent` and `within` checks: how far our mean may lie from the other; for
//! `not_less`, how far below it may lie), `expect` (`holds`, the default, or `deviates`: a
//! documented finding that this cell or claim does not hold on this stand-in, with its evidence in
//! the rationale) and `rationale` (why the margin is that wide, why a deviation is expected).
//!
//! Checks: `equivalent` (a measured snapshot: our mean and the snapshot's agree within ±margin,
//! shown by two one-sided tests at α: the (1 − 2α) interval of the difference lies inside
//! ±margin; a margin is absolute, `0.01`, or relative to the snapshot's mean, `5%`), `range`
//! (our mean within the cell's mean ± spread, widened by our (1 − α) confidence interval: for the
//! paper's min/max ranges), `greater:<metric>` (claim: our `metric` exceeds our `<metric>`,
//! one-sided Welch), `not_less:<metric>` (claim: our `metric` is not below `<metric>` by more than
//! the margin: a non-inferiority test), `within:<metric>`, `below:<number>`, `above:<number>`,
//! `decreasing` and `increasing` (claim: the metric falls or rises along several rows, which the
//! cell's `row` names in order, `a>b>c`: a one-sample test of each replicate's slope over them),
//! `none` (shown, not checked). How claims become outcomes is [`crate::verdict`]'s.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Measurement, ReportError, Result, Summary};

/// Where a cell's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Paper,
    Measured,
    Claim,
}

/// How a cell is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Equivalent,
    Range,
    Greater(String),
    NotLess(String),
    /// Two metrics of the same row equivalent within the cell's margin (two one-sided Welch
    /// tests at α: the 1 − 2α interval of the difference inside ±margin).
    Within(String),
    /// A claim that the metric's mean is below a constant: a one-sample one-sided t-test over
    /// replicates at α (`below:0.5`).
    Below(f64),
    /// A claim that the metric's mean is above a constant (`above:0.86`), the same test the other
    /// way.
    Above(f64),
    /// A trend claim over several rows (the cell's `row` lists them in order, `a>b>c`): the
    /// metric falls along them. Per replicate, the least-squares slope of the metric on the rows'
    /// positions 0, 1, …; a one-sample one-sided t-test over replicates that the mean slope is
    /// below 0 (the replicates are the blocks: replicate r of every row shares r's seeds).
    Decreasing,
    /// The same trend test, rising.
    Increasing,
    None,
}

impl Check {
    /// The metric a claim compares with.
    pub fn other(&self) -> Option<&str> {
        match self {
            Check::Greater(m) | Check::NotLess(m) | Check::Within(m) => Some(m),
            _ => None,
        }
    }

    /// Whether the check is a trend over several rows.
    pub fn is_trend(&self) -> bool {
        matches!(self, Check::Decreasing | Check::Increasing)
    }

    /// Whether the check needs a margin.
    pub fn needs_margin(&self) -> bool {
        matches!(
            self,
            Check::Equivalent | Check::Within(_) | Check::NotLess(_)
        )
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Equivalent => f.write_str("equivalent"),
            Check::Range => f.write_str("range"),
            Check::Greater(m) => write!(f, "greater:{m}"),
            Check::NotLess(m) => write!(f, "not_less:{m}"),
            Check::Within(m) => write!(f, "within:{m}"),
            Check::Below(b) => write!(f, "below:{b}"),
            Check::Above(b) => write!(f, "above:{b}"),
            Check::Decreasing => f.write_str("decreasing"),
            Check::Increasing => f.write_str("increasing"),
            Check::None => f.write_str("none"),
        }
    }
}

impl std::str::FromStr for Check {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Check, String> {
        match s.split_once(':') {
            None if s == "equivalent" => Ok(Check::Equivalent),
            None if s == "range" => Ok(Check::Range),
            None if s == "none" => Ok(Check::None),
            None if s == "decreasing" => Ok(Check::Decreasing),
            None if s == "increasing" => Ok(Check::Increasing),
            Some(("greater", m)) if !m.is_empty() => Ok(Check::Greater(m.into())),
            Some(("not_less", m)) if !m.is_empty() => Ok(Check::NotLess(m.into())),
            Some(("within", m)) if !m.is_empty() => Ok(Check::Within(m.into())),
            Some(("below", b)) => b
                .parse::<f64>()
                .ok()
                .filter(|b| b.is_finite())
                .map(Check::Below)
                .ok_or_else(|| format!("check `{s}`: below:<number>, a finite bound")),
            Some(("above", b)) => b
                .parse::<f64>()
                .ok()
                .filter(|b| b.is_finite())
                .map(Check::Above)
                .ok_or_else(|| format!("check `{s}`: above:<number>, a finite bound")),
            _ => Err(format!(
                "unknown check `{s}`: expected equivalent, range, none, greater:<metric>, not_less:<metric>, within:<metric>, below:<number>, above:<number>, decreasing or increasing"
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

/// How far a measured mean may lie from its snapshot: absolute (in the metric's units) or
/// relative to the snapshot's mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Margin {
    Absolute(f64),
    /// A fraction of the snapshot's mean (`5%` is 0.05).
    Relative(f64),
}

impl Margin {
    /// The margin in the metric's units, around a snapshot mean of `reference`.
    pub fn width(self, reference: f64) -> f64 {
        match self {
            Margin::Absolute(m) => m,
            Margin::Relative(r) => r * reference.abs(),
        }
    }
}

impl Margin {
    /// The narrowest margin of this kind, rounded up to two significant digits, whose width at
    /// `reference` is at least `width`.
    pub fn at_least(self, width: f64, reference: f64) -> Margin {
        // Two significant digits d·10^k, through the decimal text so that 0.052 stays 0.052; a
        // quotient a rounding error away from a whole number is that number.
        let v = match self {
            Margin::Absolute(_) => width,
            Margin::Relative(_) => 100.0 * width / reference.abs(),
        };
        let k = v.log10().floor() as i32 - 1;
        let x = v / 10f64.powi(k);
        let mut digits = if (x - x.round()).abs() < 1e-9 {
            x.round()
        } else {
            x.ceil()
        };
        loop {
            let d: f64 = format!("{digits}e{k}").parse().unwrap_or(v);
            let m = match self {
                Margin::Absolute(_) => Margin::Absolute(d),
                Margin::Relative(_) => Margin::Relative(d / 100.0),
            };
            if m.width(reference) >= width {
                return m;
            }
            digits += 1.0;
        }
    }
}

impl std::fmt::Display for Margin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Margin::Absolute(m) => write!(f, "{m}"),
            // The shortest percentage that reads back as the same margin (14%, not
            // 14.000000000000002%).
            Margin::Relative(r) => {
                let pct = (0..17)
                    .map(|digits| format!("{:.digits$}", r * 100.0))
                    .find(|p| p.parse::<f64>().is_ok_and(|v| v / 100.0 == *r))
                    .unwrap_or_else(|| (r * 100.0).to_string());
                write!(f, "{pct}%")
            }
        }
    }
}

impl std::str::FromStr for Margin {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Margin, String> {
        let bad = || format!("margin `{s}`: expected a positive number (0.01) or percentage (5%)");
        let (number, relative) = match s.strip_suffix('%') {
            Some(p) => (p, true),
            None => (s, false),
        };
        let v: f64 = number.trim().parse().map_err(|_| bad())?;
        if !(v.is_finite() && v > 0.0) {
            return Err(bad());
        }
        Ok(if relative {
            Margin::Relative(v / 100.0)
        } else {
            Margin::Absolute(v)
        })
    }
}

fn margin_de<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Margin>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

fn margin_ser<S: Serializer>(m: &Option<Margin>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.collect_str(m),
        None => s.serialize_str(""),
    }
}

/// What a cell or claim is expected to do on the run that judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// It holds (the default, an empty field).
    #[default]
    Holds,
    /// It does not hold here: a documented finding about the stand-in, with its evidence (effect,
    /// p, n) in the rationale. Judged XFAIL while it deviates, XPASS (unexpected) once it holds.
    Deviates,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expect::Holds => "holds",
            Expect::Deviates => "deviates",
        })
    }
}

impl std::str::FromStr for Expect {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Expect, String> {
        match s.trim() {
            "" | "holds" => Ok(Expect::Holds),
            "deviates" => Ok(Expect::Deviates),
            other => Err(format!("expect `{other}`: expected holds or deviates")),
        }
    }
}

impl Serialize for Expect {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Expect, D::Error> {
        Option::<String>::deserialize(d)?
            .unwrap_or_default()
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn replicates_de<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<(u64, f64)>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    parse_replicates(&s).map_err(serde::de::Error::custom)
}

/// Reads `1=0.8812;2=0.8790` (empty: none).
pub fn parse_replicates(s: &str) -> std::result::Result<Vec<(u64, f64)>, String> {
    let mut out: Vec<(u64, f64)> = Vec::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("replicates `{part}`: expected <replicate>=<value>, e.g. 1=0.8812");
        let (r, v) = part.split_once('=').ok_or_else(bad)?;
        let r: u64 = r.trim().parse().map_err(|_| bad())?;
        let v: f64 = v.trim().parse().map_err(|_| bad())?;
        if out.iter().any(|(q, _)| *q == r) {
            return Err(format!("replicates: replicate {r} is listed twice"));
        }
        out.push((r, v));
    }
    Ok(out)
}

fn replicates_ser<S: Serializer>(v: &[(u64, f64)], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(
        &v.iter()
            .map(|(r, x)| format!("{r}={x}"))
            .collect::<Vec<_>>()
            .join(";"),
    )
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
    /// A measured cell's value per replicate, by replicate number (empty for the paper's cells,
    /// claims, and snapshots recorded before values were kept).
    #[serde(
        default,
        deserialize_with = "replicates_de",
        serialize_with = "replicates_ser"
    )]
    pub replicates: Vec<(u64, f64)>,
    pub check: Check,
    pub alpha: f64,
    /// For `equivalent` and `within` checks: how far our mean may lie from the other; for
    /// `not_less`, how far below.
    #[serde(default, deserialize_with = "margin_de", serialize_with = "margin_ser")]
    pub margin: Option<Margin>,
    /// Whether the cell is expected to hold on the run that judges it.
    #[serde(default)]
    pub expect: Expect,
    /// Why the margin is that wide (or why a cell is shown and not checked, or deviates), in one
    /// line.
    #[serde(default)]
    pub rationale: String,
}

impl Cell {
    /// The cell's numbers as a summary, when it has them.
    pub fn summary(&self) -> Option<Summary> {
        Some(Summary::from_moments(self.mean?, self.spread?, self.n?))
    }

    /// For a measured `equivalent` cell of n ≥ 2 replicates: its margin's width and 2·t·SE of its
    /// spread (t at 1 − α with n − 1 degrees of freedom, SE = sd/√n). A margin narrower than
    /// 2·t·SE is one that even an unshifted rerun would fail about as often as not.
    pub fn margin_and_least(&self) -> Option<(f64, f64)> {
        let (Some(mean), Some(sd), Some(n), Some(margin)) =
            (self.mean, self.spread, self.n, self.margin)
        else {
            return None;
        };
        if self.source != Source::Measured || self.check != Check::Equivalent || n < 2 {
            return None;
        }
        let se = sd / (n as f64).sqrt();
        let t = crate::stats::t_quantile(1.0 - self.alpha, (n - 1) as f64);
        Some((margin.width(mean), 2.0 * t * se))
    }

    /// A cell recorded for the first time at its (scale, device), whose margin came from another
    /// snapshot's cell and is narrower than 2·t·SE of this one's spread, is widened to that (two
    /// significant digits, the same kind of margin), the rationale saying so. The line it returns
    /// names the cell and both margins. Declared margins of cells recorded before are never
    /// widened here: a re-record refuses them instead.
    pub fn widen_first_record(&mut self) -> Option<String> {
        let (width, least) = self.margin_and_least()?;
        if width >= least {
            return None;
        }
        let old = self.margin?;
        let new = old.at_least(least, self.mean?);
        self.margin = Some(new);
        self.rationale = format!(
            "widened from {old} to {new} at the first {} {} record: 2·t·SE of its spread (n = {}), \
             the least its replicates can hold; {}",
            self.scale, self.device, self.n?, self.rationale
        );
        Some(format!(
            "WIDENED {} · {} · {}: margin {old} = {width:.4} < 2·t·SE = {least:.4} of the first {} \
             {} snapshot, widened to {new}",
            self.row, self.dataset, self.metric, self.scale, self.device
        ))
    }

    /// The rows the cell is about: its one row, or a trend claim's rows in order (`a>b>c`).
    pub fn rows(&self) -> Vec<&str> {
        self.row.split('>').collect()
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
    let rows: Vec<Cell> = lth_store::read_csv(path).map_err(|p| bad(p.line, p.problem))?;
    let mut cells = Vec::new();
    for cell in rows {
        let line = Some(cells.len() as u64 + 2);
        if cell.source == Source::Claim
            && cell.check.other().is_none()
            && !matches!(cell.check, Check::Below(_) | Check::Above(_))
            && !cell.check.is_trend()
        {
            return Err(bad(
                line,
                "a claim needs a greater:<metric>, not_less:<metric>, within:<metric>, \
                 below:<number>, above:<number>, decreasing or increasing check"
                    .into(),
            ));
        }
        let rows = cell.rows();
        if cell.check.is_trend() {
            if cell.source != Source::Claim {
                return Err(bad(
                    line,
                    format!("a `{}` check is a claim (source = claim)", cell.check),
                ));
            }
            if rows.len() < 2 || rows.iter().any(|r| r.trim().is_empty()) {
                return Err(bad(
                    line,
                    format!(
                        "a `{}` claim names its rows in order, at least two, as row = a>b>c; got `{}`",
                        cell.check, cell.row
                    ),
                ));
            }
        } else if rows.len() > 1 {
            return Err(bad(
                line,
                format!(
                    "row `{}` lists several rows, which only a decreasing or increasing claim may",
                    cell.row
                ),
            ));
        }
        if cell.check.needs_margin() && cell.margin.is_none() {
            let article = if cell.check == Check::Equivalent {
                "an"
            } else {
                "a"
            };
            return Err(bad(
                line,
                format!("{article} `{}` check needs a margin", cell.check),
            ));
        }
        if cell.check == Check::Equivalent && cell.n.unwrap_or(0) < 2 {
            return Err(bad(
                line,
                "an `equivalent` check needs a snapshot of n ≥ 2 replicates".into(),
            ));
        }
        let needs_numbers = matches!(cell.check, Check::Equivalent | Check::Range);
        if needs_numbers && cell.summary().is_none() {
            return Err(bad(
                line,
                format!("a `{}` check needs mean, spread and n", cell.check),
            ));
        }
        if !cell.replicates.is_empty() {
            let values: Vec<f64> = cell.replicates.iter().map(|r| r.1).collect();
            let s = Summary::of(&values);
            let agrees = cell.n == Some(s.n)
                && cell
                    .mean
                    .is_some_and(|m| (m - s.mean).abs() <= 1e-9 * (1.0 + m.abs()));
            if !agrees {
                return Err(bad(
                    line,
                    format!(
                        "the {} replicate values (mean {}) disagree with n = {} and mean = {}",
                        s.n,
                        s.mean,
                        cell.n.map_or("none".into(), |n| n.to_string()),
                        cell.mean.map_or("none".into(), |m| m.to_string())
                    ),
                ));
            }
        }
        if cell.expect == Expect::Deviates && cell.rationale.trim().is_empty() {
            return Err(bad(
                line,
                "expect = deviates needs its evidence (effect, p, n) in the rationale".into(),
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
    // A per-process temporary sibling, renamed into place (no fixed `csv.tmp` left behind).
    lth_store::write_atomic(path, &bytes).map_err(|e| io(std::io::Error::other(e.to_string())))
}

/// Replaces the measured cells of (`row`, `dataset`, `scale`, `device`) with `measured` (metric,
/// summary and replicate values). A replaced cell keeps its check, α, margin, expectation and
/// rationale; a new cell takes them from the same metric's measured cell at another scale or
/// device (this scale's first), its rationale then saying where the margin came from, and is
/// otherwise shown only (`none`) until someone declares its margin. Snapshots of other devices
/// are left as they are. Returns the positions of the new cells.
pub fn record_measured(
    cells: &mut Vec<Cell>,
    row: &str,
    dataset: &str,
    scale: &str,
    device: &str,
    command: &str,
    measured: &[(String, Measurement)],
) -> Vec<usize> {
    let mut new = Vec::new();
    for (metric, m) in measured {
        let s = &m.summary;
        let same_metric = |c: &Cell| {
            c.source == Source::Measured
                && c.row == row
                && c.dataset == dataset
                && &c.metric == metric
        };
        let same_place = |c: &Cell| same_metric(c) && c.scale == scale && c.device == device;
        let template = cells
            .iter()
            .find(|c| same_place(c))
            .or_else(|| cells.iter().find(|c| same_metric(c) && c.scale == scale))
            .or_else(|| cells.iter().find(|c| same_metric(c)))
            .cloned();
        let (mut check, alpha, margin, expect, rationale) = template.map_or_else(
            || {
                (
                    Check::None,
                    0.05,
                    None,
                    Expect::Holds,
                    "no margin declared yet: shown, not checked".to_owned(),
                )
            },
            |c| {
                let rationale = if same_place(&c) || c.margin.is_none() {
                    c.rationale
                } else {
                    // The reasons were measured on another snapshot: say which.
                    format!(
                        "margin as the {} {} snapshot's: {}",
                        c.scale, c.device, c.rationale
                    )
                };
                (c.check, c.alpha, c.margin, c.expect, rationale)
            },
        );
        if check == Check::Equivalent && s.n < 2 {
            check = Check::None;
        }
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
            replicates: m.replicates.clone(),
            check,
            alpha,
            margin,
            expect,
            rationale,
        };
        match cells.iter_mut().find(|c| same_place(c)) {
            Some(c) => *c = cell,
            None => {
                new.push(cells.len());
                cells.push(cell);
            }
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "row,dataset,metric,source,scale,device,command,mean,spread,n,check,alpha,margin,rationale\n";

    fn load(body: &str) -> Result<Vec<Cell>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected.csv");
        std::fs::write(&path, format!("{HEADER}{body}")).unwrap();
        load_cells(&path)
    }

    #[test]
    fn reads_cells_and_rejects_malformed_ones_by_line() {
        let cells = load(
            "lenet,mnist,data_order_imp,paper,paper,,,20.7,0.6,18,range,0.05,,\n\
             lenet,mnist,data_order_random,claim,paper,,,,,,greater:data_order_imp,0.01,,\n\
             lenet,f,accuracy_imp,measured,quick,cpu,c,0.88,0.002,5,equivalent,0.05,0.01,why\n\
             lenet,f,data_order_imp,measured,quick,cpu,c,4.4,0.1,5,equivalent,0.05,5%,why\n",
        )
        .unwrap();
        assert_eq!(cells[1].check, Check::Greater("data_order_imp".into()));
        assert_eq!(cells[2].margin, Some(Margin::Absolute(0.01)));
        assert_eq!(cells[3].margin, Some(Margin::Relative(0.05)));
        assert!((cells[3].margin.unwrap().width(4.4) - 0.22).abs() < 1e-12);
        let check = |body: &str, fragment: &str| {
            let err = load(body).unwrap_err().to_string();
            assert!(err.contains(fragment), "{err:?} lacks {fragment:?}");
        };
        check(
            "lenet,mnist,x,paper,paper,,,1,1,1,range,0.05,,\nlenet,mnist,x,paper,paper,,,1,1,1,wlch,0.05,,\n",
            "expected.csv, line 3: unknown check `wlch`",
        );
        check(
            "lenet,mnist,x,paper,paper,,,,,,range,0.05,,\n",
            "line 2: a `range` check needs mean, spread and n",
        );
        check(
            "lenet,mnist,x,claim,quick,,,,,,range,0.05,,\n",
            "a claim needs",
        );
        check(
            "lenet,f,x,measured,quick,cpu,c,1,1,5,equivalent,0.7,0.1,\n",
            "alpha must be in (0, 0.5)",
        );
        check(
            "lenet,f,x,measured,quick,cpu,c,1,1,5,equivalent,0.05,,\n",
            "line 2: an `equivalent` check needs a margin",
        );
        check(
            "lenet,f,x,measured,quick,cpu,c,1,1,5,equivalent,0.05,-3%,\n",
            "margin `-3%`: expected a positive number",
        );
        check(
            "lenet,f,x,measured,quick,cpu,c,1,0,1,equivalent,0.05,0.1,\n",
            "needs a snapshot of n ≥ 2 replicates",
        );
    }

    #[test]
    fn margins_widen_to_two_significant_digits_and_print_as_read() {
        assert_eq!(
            Margin::Absolute(0.05).at_least(0.0518, 0.8),
            Margin::Absolute(0.052)
        );
        assert_eq!(
            Margin::Absolute(0.05).at_least(0.052, 0.8),
            Margin::Absolute(0.052)
        );
        // 0.6782 of 4.944 is 13.7%: 14%, printed as written.
        let m = Margin::Relative(0.1).at_least(0.6782, 4.944);
        assert_eq!(m, Margin::Relative(0.14));
        assert_eq!(m.to_string(), "14%");
        assert!(m.width(4.944) >= 0.6782);
        for text in ["14%", "2.5%", "14.000000000000002%", "0.021", "10%"] {
            let m: Margin = text.parse().unwrap();
            assert_eq!(m.to_string().parse::<Margin>().unwrap(), m, "{text}");
        }
    }

    #[test]
    fn a_first_record_widens_an_inherited_margin_its_spread_cannot_hold() {
        let cells = load(
            "lenet,f,a,measured,smoke,cuda,c,0.8,0.02,3,equivalent,0.05,0.03,rounding\n\
             lenet,f,b,measured,smoke,cuda,c,0.8,0.001,3,equivalent,0.05,0.03,rounding\n",
        )
        .unwrap();
        // a: SE = 0.02/√3, t(0.95, 2) = 2.920, 2·t·SE = 0.0674 > 0.03: widened to 0.068.
        let mut a = cells[0].clone();
        let line = a.widen_first_record().unwrap();
        assert_eq!(a.margin, Some(Margin::Absolute(0.068)));
        assert!(line.starts_with("WIDENED lenet · f · a: margin 0.03 = 0.0300 < 2·t·SE = 0.0674"));
        assert!(
            a.rationale
                .starts_with("widened from 0.03 to 0.068 at the first smoke cuda record")
        );
        assert!(a.rationale.ends_with("; rounding"));
        let (width, least) = a.margin_and_least().unwrap();
        assert!(width >= least);
        // b holds its spread: left alone.
        let mut b = cells[1].clone();
        assert_eq!(b.widen_first_record(), None);
        assert_eq!(b, cells[1]);
    }

    #[test]
    fn recording_replaces_measured_cells_and_keeps_their_checks_and_margins() {
        let mut cells = load(
            "lenet,f,data_order_imp,measured,quick,cpu,old,1,1,5,equivalent,0.05,5%,rounding\n",
        )
        .unwrap();
        let s = Measurement::of(vec![(1, 3.0), (2, 4.0)]);
        record_measured(
            &mut cells,
            "lenet",
            "f",
            "quick",
            "cpu",
            "new",
            &[
                ("data_order_imp".into(), s.clone()),
                ("pruning_imp".into(), s.clone()),
            ],
        );
        record_measured(
            &mut cells,
            "lenet",
            "f",
            "smoke",
            "cpu",
            "new",
            &[("data_order_imp".into(), s.clone())],
        );
        // Another device's snapshot is a cell of its own; this device's is left alone.
        record_measured(
            &mut cells,
            "lenet",
            "f",
            "quick",
            "cuda",
            "gpu",
            &[(
                "data_order_imp".into(),
                Measurement::of(vec![(1, 5.0), (2, 6.0)]),
            )],
        );
        assert_eq!(cells.len(), 4);
        assert_eq!(
            (cells[3].device.as_str(), cells[3].mean),
            ("cuda", Some(5.5))
        );
        assert_eq!(cells[3].margin, Some(Margin::Relative(0.05)));
        assert_eq!(
            cells[3].rationale,
            "margin as the quick cpu snapshot's: rounding"
        );
        assert_eq!(cells[0].rationale, "rounding");
        assert_eq!(cells[0].mean, Some(3.5));
        cells.pop();
        assert_eq!(cells.len(), 3);
        assert_eq!(
            (cells[0].command.as_str(), cells[0].mean, cells[0].margin),
            ("new", Some(3.5), Some(Margin::Relative(0.05)))
        );
        assert_eq!(cells[0].replicates, vec![(1, 3.0), (2, 4.0)]);
        // A metric without a declared margin is shown only; another scale inherits the margin.
        assert_eq!(
            (cells[1].metric.as_str(), &cells[1].check),
            ("pruning_imp", &Check::None)
        );
        assert_eq!(
            (
                cells[2].scale.as_str(),
                &cells[2].check,
                cells[2].rationale.as_str()
            ),
            (
                "smoke",
                &Check::Equivalent,
                "margin as the quick cpu snapshot's: rounding"
            )
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected.csv");
        save_cells(&path, &cells).unwrap();
        assert_eq!(load_cells(&path).unwrap(), cells);
    }

    #[test]
    fn replicate_values_and_expectations_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected.csv");
        let header = "row,dataset,metric,source,scale,device,command,mean,spread,n,replicates,check,alpha,margin,expect,rationale\n";
        let write = |body: &str| {
            std::fs::write(&path, format!("{header}{body}")).unwrap();
            load_cells(&path)
        };
        let cells = write(
            "lenet,f,acc,measured,quick,cpu,c,0.5,0.1414213562373095,2,1=0.4;2=0.6,equivalent,0.05,0.01,,why\n\
             lenet,f,acc,claim,quick,,,,,,,greater:acc_random,0.01,,deviates,\"SET ahead: +0.4, p = 0.005, n = 5\"\n",
        )
        .unwrap();
        assert_eq!(cells[0].replicates, vec![(1, 0.4), (2, 0.6)]);
        assert_eq!(
            (cells[0].expect, cells[1].expect),
            (Expect::Holds, Expect::Deviates)
        );
        save_cells(&path, &cells).unwrap();
        assert_eq!(load_cells(&path).unwrap(), cells);
        let fails = |body: &str, fragment: &str| {
            let err = write(body).unwrap_err().to_string();
            assert!(err.contains(fragment), "{err:?} lacks {fragment:?}");
        };
        fails(
            "lenet,f,acc,measured,quick,cpu,c,0.7,0.1,2,1=0.4;2=0.6,equivalent,0.05,0.01,,why\n",
            "line 2: the 2 replicate values (mean 0.5) disagree with n = 2 and mean = 0.7",
        );
        fails(
            "lenet,f,acc,measured,quick,cpu,c,0.5,0.1,2,1=0.4;x,equivalent,0.05,0.01,,why\n",
            "replicates `x`: expected <replicate>=<value>",
        );
        fails(
            "lenet,f,acc,claim,quick,,,,,,,greater:b,0.01,,deviates,\n",
            "expect = deviates needs its evidence",
        );
        fails(
            "lenet,f,acc,claim,quick,,,,,,,greater:b,0.01,,sometimes,x\n",
            "expect `sometimes`: expected holds or deviates",
        );
        fails(
            "lenet,f,acc,claim,quick,,,,,,,not_less:b,0.01,,,x\n",
            "a `not_less:b` check needs a margin",
        );
        // A trend names its rows in order, at least two; only a trend may name several.
        fails(
            "lenet,f,acc,claim,quick,,,,,,,decreasing,0.01,,,x\n",
            "a `decreasing` claim names its rows in order, at least two, as row = a>b>c; got `lenet`",
        );
        fails(
            "a>>c,f,acc,claim,quick,,,,,,,increasing,0.01,,,x\n",
            "got `a>>c`",
        );
        fails(
            "a>b,f,acc,claim,quick,,,,,,,greater:b,0.01,,,x\n",
            "row `a>b` lists several rows, which only a decreasing or increasing claim may",
        );
        fails(
            "a>b,f,acc,measured,quick,cpu,c,0.5,0.1,2,,decreasing,0.01,,,x\n",
            "a `decreasing` check is a claim (source = claim)",
        );
        let trend = write("k0>k5>k20,f,acc,claim,quick,,,,,,,decreasing,0.01,,,x\n").unwrap();
        assert_eq!(trend[0].rows(), ["k0", "k5", "k20"]);
        assert_eq!(trend[0].check, Check::Decreasing);
    }
}
