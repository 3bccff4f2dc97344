//! `repro/<target>/spec.toml`: what a reproduction target runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::{Margin, ReportError, Result};

/// The most replicates a scale or `--replicates` may ask for: each is a whole independent
/// experiment, and a claim's power comes long before this many.
pub const MAX_REPLICATES: u64 = 1000;

/// The most samples per replicate a scale or `--samples` may ask for.
pub const MAX_SAMPLES: u64 = 1000;

/// A scale: how big the runs are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub description: String,
    /// Independent replicates per row: each its own lottery (W0, data order, IMP run, mask). The
    /// unit of replication of every summary and test.
    pub replicates: u64,
    /// Samples per replicate (stability: pairs of copies; curves: 1). Averaged within a replicate.
    #[serde(default = "one")]
    pub samples: u64,
    /// Values of α along an interpolation line (`lmc` rows): the paper's 30 unless a scale that
    /// cannot afford them declares fewer (a coarser line can only miss the barrier's peak).
    pub points: Option<u64>,
    /// Rough wall-clock minutes on a 2-core CPU, when that is a sensible place to run it.
    pub cpu_minutes: Option<f64>,
    /// The device the scale is meant for (`cpu`, `cuda`).
    #[serde(default = "cpu")]
    pub device: String,
    /// Flags of every row at this scale (a row's own flags and overrides win).
    #[serde(default)]
    pub flags: BTreeMap<String, Spanned<toml::Value>>,
}

fn cpu() -> String {
    "cpu".into()
}

fn one() -> u64 {
    1
}

/// A column of the rendered table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub header: String,
    pub metric: String,
    /// `number` (default), `percent` (a fraction shown ×100), or `ratio` (shown with an ×).
    #[serde(default)]
    pub format: Format,
}

/// How a column's numbers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Number,
    Percent,
    Ratio,
}

/// A panel of the plot: bars for these metrics, per row; or lines, one per metric, through the
/// rows placed at their value of the `x` metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub title: String,
    pub metrics: Vec<String>,
    pub y_label: String,
    #[serde(default)]
    pub kind: PanelKind,
    /// Lines: the metric on the horizontal axis (e.g. `weights_remaining`).
    pub x: Option<String>,
    /// Lines: a logarithmic horizontal axis.
    #[serde(default)]
    pub x_log: bool,
    /// Lines: the label of the horizontal axis.
    #[serde(default)]
    pub x_label: String,
    /// Only these rows (by id); every row when empty. Rows of different families (bases,
    /// networks) that share an `x` get a panel each rather than one line through all of them.
    #[serde(default)]
    pub rows: Vec<String>,
}

/// How a panel draws its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    #[default]
    Bars,
    Lines,
}

/// Per-scale overrides of a row.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowScale {
    /// The lottery level measured at this scale.
    pub level: Option<u64>,
    /// `lth lottery` flags replacing or adding to the row's.
    #[serde(default)]
    pub flags: BTreeMap<String, Spanned<toml::Value>>,
}

/// A row of the figure or table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// Identifier used in `expected.csv` (`lenet`, `resnet20_warmup`).
    pub id: String,
    /// The paper's label (`LeNet (MNIST)`).
    pub label: String,
    pub model: String,
    /// The paper's dataset.
    pub dataset: String,
    /// Other datasets the row may run on when the paper's is absent, as its own labelled variant
    /// (checked against that dataset's snapshot, never the paper's numbers).
    #[serde(default)]
    pub variants: Vec<String>,
    /// The lottery level whose subnetworks are measured at the paper's scale.
    pub level: u64,
    /// The paper's weights remaining at that level (a fraction), for the table; absent for
    /// experiments whose rows are not a sparsity.
    #[serde(default)]
    pub weights_remaining: Option<f64>,
    /// `lth lottery` flags at the paper's settings (added to the spec's).
    #[serde(default)]
    pub flags: BTreeMap<String, Spanned<toml::Value>>,
    /// Overrides per scale (`smoke`, `quick`); the `paper` scale uses the row as it is.
    #[serde(default)]
    pub scales: BTreeMap<String, Spanned<RowScale>>,
    /// The smallest regression of a metric this row's snapshot must catch, by metric (`0.01`, or
    /// `5%` of the snapshot's mean); replaces the spec's for that metric.
    #[serde(default)]
    pub regression: BTreeMap<String, Spanned<toml::Value>>,
}

/// A parsed `spec.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub title: String,
    pub paper: String,
    /// The kind of experiment every row runs (`stability`, `lottery_curve`); the harness that runs
    /// the spec knows what each measures.
    pub experiment: String,
    /// Flags of every row at every scale (rows and scales override them).
    #[serde(default)]
    pub flags: BTreeMap<String, Spanned<toml::Value>>,
    pub scales: BTreeMap<String, Scale>,
    pub columns: Vec<Column>,
    #[serde(default)]
    pub plot: Vec<Panel>,
    pub rows: Vec<Row>,
    /// The smallest regression of a metric that every row's snapshot must catch, by metric (`0.01`
    /// or `5%`): `--record` names each cell whose margin lets a change of that size pass.
    #[serde(default)]
    pub regression: BTreeMap<String, Spanned<toml::Value>>,
    /// The file it came from (not in the TOML).
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    source: String,
}

impl Spec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<Spec> {
        let source = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.to_owned(),
            source,
        })?;
        Spec::parse(&source, path)
    }

    /// Parses and checks spec text; `path` names it in errors.
    pub fn parse(source: &str, path: &Path) -> Result<Spec> {
        let mut spec: Spec = toml::from_str(source).map_err(|e| ReportError::Malformed {
            path: path.to_owned(),
            line: e.span().map(|s| line_of(source, s.start)),
            problem: e.message().to_owned(),
        })?;
        spec.path = path.to_owned();
        spec.source = source.to_owned();
        spec.check()?;
        Ok(spec)
    }

    /// The spec's name (its folder's name: `fig3`).
    pub fn target(&self) -> String {
        self.path
            .parent()
            .and_then(|p| p.file_name())
            .map_or_else(|| "target".into(), |n| n.to_string_lossy().into_owned())
    }

    /// An error at a byte offset of the spec.
    pub fn error_at(&self, offset: usize, problem: impl Into<String>) -> ReportError {
        ReportError::Malformed {
            path: self.path.clone(),
            line: Some(line_of(&self.source, offset)),
            problem: problem.into(),
        }
    }

    fn check(&self) -> Result<()> {
        for needed in ["smoke", "quick", "paper"] {
            if !self.scales.contains_key(needed) {
                return Err(self.error(format!(
                    "no [scales.{needed}]; every target has smoke, quick and paper"
                )));
            }
        }
        for (name, s) in &self.scales {
            if s.replicates > MAX_REPLICATES {
                return Err(self.error(format!(
                    "[scales.{name}] replicates = {}: at most {MAX_REPLICATES} (each is a whole \
                     independent experiment)",
                    s.replicates
                )));
            }
            if s.samples > MAX_SAMPLES {
                return Err(self.error(format!(
                    "[scales.{name}] samples = {}: at most {MAX_SAMPLES} per replicate",
                    s.samples
                )));
            }
            if s.replicates < 2 {
                return Err(self.error(format!(
                    "[scales.{name}] replicates = {}: at least 2 independent replicates are \
                     needed for a test over replicates",
                    s.replicates
                )));
            }
            if s.points.is_some_and(|p| p < 2) {
                return Err(self.error(format!(
                    "[scales.{name}] points = {}: a line needs at least its two ends",
                    s.points.unwrap_or(0)
                )));
            }
            if s.samples < 1 {
                return Err(self.error(format!(
                    "[scales.{name}] samples = 0: at least one sample per replicate"
                )));
            }
        }
        for p in &self.plot {
            if let Some(r) = p
                .rows
                .iter()
                .find(|r| !self.rows.iter().any(|row| &row.id == *r))
            {
                return Err(self.error(format!(
                    "plot panel `{}` names row `{r}`, which the spec does not have",
                    p.title
                )));
            }
            if p.kind == PanelKind::Lines && p.x.is_none() {
                return Err(self.error(format!(
                    "plot panel `{}` draws lines and needs `x`, the metric of its horizontal axis",
                    p.title
                )));
            }
        }
        for (metric, v) in self
            .regression
            .iter()
            .chain(self.rows.iter().flat_map(|r| &r.regression))
        {
            regression_size(v.get_ref()).map_err(|problem| {
                self.error_at(
                    v.span().start,
                    format!("regression of `{metric}`: {problem}"),
                )
            })?;
        }
        let mut ids = std::collections::BTreeSet::new();
        for row in &self.rows {
            if !ids.insert(&row.id) {
                return Err(self.error(format!("two rows have the id `{}`", row.id)));
            }
            for (scale, overrides) in &row.scales {
                if !self.scales.contains_key(scale) {
                    return Err(self.error_at(
                        overrides.span().start,
                        format!("row `{}` overrides unknown scale `{scale}`", row.id),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every metric the columns, the plot and the regression sizes name, for the harness to check
    /// against what its experiment measures.
    pub fn named_metrics(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .map(|c| &c.metric)
            .chain(
                self.plot
                    .iter()
                    .flat_map(|p| p.metrics.iter().chain(p.x.as_ref())),
            )
            .chain(self.regression.keys())
            .chain(self.rows.iter().flat_map(|r| r.regression.keys()))
            .map(String::as_str)
    }

    /// The smallest regression of `metric` that row `row`'s snapshot must catch: the row's
    /// declaration, else the spec's, else none.
    pub fn regression(&self, row: &str, metric: &str) -> Option<Margin> {
        let of_row = self
            .rows
            .iter()
            .find(|r| r.id == row)
            .and_then(|r| r.regression.get(metric));
        of_row
            .or_else(|| self.regression.get(metric))
            .and_then(|v| regression_size(v.get_ref()).ok())
    }

    /// An error at the first place the spec's text holds `needle` (about the whole spec when it
    /// holds none): for values read without their position, such as a row's datasets.
    pub fn error_near(&self, needle: &str, problem: impl Into<String>) -> ReportError {
        match self.source.find(needle) {
            Some(offset) => self.error_at(offset, problem),
            None => self.error(problem),
        }
    }

    /// An error about the whole spec (no line).
    pub fn error(&self, problem: impl Into<String>) -> ReportError {
        ReportError::Malformed {
            path: self.path.clone(),
            line: None,
            problem: problem.into(),
        }
    }

    /// The header of the column showing `metric` (the metric's id when no column shows it).
    pub fn header_of<'a>(&'a self, metric: &'a str) -> &'a str {
        self.columns
            .iter()
            .find(|c| c.metric == metric)
            .map_or(metric, |c| c.header.as_str())
    }

    /// The row's level and flags at `scale`: the spec's flags, then the scale's, the row's, and
    /// the row's overrides at the scale (the most specific wins), each flag with the byte offset
    /// it was written at.
    pub fn resolve(&self, row: &Row, scale: &str) -> (u64, Vec<(String, String, usize)>) {
        let mut flags: BTreeMap<String, (String, usize)> = BTreeMap::new();
        let scale_flags = self.scales.get(scale).map(|s| &s.flags);
        for layer in [Some(&self.flags), scale_flags, Some(&row.flags)]
            .into_iter()
            .flatten()
        {
            for (k, v) in layer {
                flags.insert(k.clone(), (flag_value(v.get_ref()), v.span().start));
            }
        }
        let mut level = row.level;
        if let Some(o) = row.scales.get(scale) {
            let o = o.get_ref();
            level = o.level.unwrap_or(level);
            for (k, v) in &o.flags {
                flags.insert(k.clone(), (flag_value(v.get_ref()), v.span().start));
            }
        }
        (
            level,
            flags.into_iter().map(|(k, (v, at))| (k, v, at)).collect(),
        )
    }
}

/// A TOML value as a command-line flag value (arrays comma-joined).
fn flag_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(flag_value).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A declared regression size: a positive number, or a string such as `5%` (checked at load).
fn regression_size(v: &toml::Value) -> std::result::Result<Margin, String> {
    match v {
        toml::Value::String(s) => s.parse(),
        toml::Value::Float(_) | toml::Value::Integer(_) => v.to_string().parse(),
        other => Err(format!(
            "expected a positive number (0.01) or percentage (\"5%\"), not {other}"
        )),
    }
}

/// The 1-based line of a byte offset.
fn line_of(source: &str, offset: usize) -> u64 {
    source[..offset.min(source.len())].matches('\n').count() as u64 + 1
}

/// What `repro --list` prints: each target under `repro_dir` with its title, rows, models, the
/// datasets it uses (present or absent, as `present` says of a dataset's name) and its scales.
pub fn describe_targets(repro_dir: &Path, present: &dyn Fn(&str) -> bool) -> Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    for path in targets(repro_dir)? {
        let spec = Spec::load(&path)?;
        let _ = writeln!(out, "{}: {}", spec.target(), spec.title);
        let mut datasets: Vec<&str> = spec
            .rows
            .iter()
            .flat_map(|r| {
                std::iter::once(r.dataset.as_str()).chain(r.variants.iter().map(String::as_str))
            })
            .collect();
        datasets.sort_unstable();
        datasets.dedup();
        let present: Vec<String> = datasets
            .iter()
            .map(|d| format!("{d} ({})", if present(d) { "present" } else { "absent" }))
            .collect();
        let mut models: Vec<&str> = spec.rows.iter().map(|r| r.model.as_str()).collect();
        models.dedup();
        let rows: Vec<&str> = spec.rows.iter().map(|r| r.id.as_str()).collect();
        let _ = writeln!(out, "  rows: {}", rows.join(", "));
        let _ = writeln!(out, "  models: {}", models.join(", "));
        let _ = writeln!(out, "  data: {}", present.join(", "));
        for (name, s) in &spec.scales {
            let time = s.cpu_minutes.map_or(String::new(), |m| {
                format!(", about {m} min on a 2-core CPU for the rows that run here")
            });
            let _ = writeln!(
                out,
                "  --scale {name}: {} × {}, meant for {}{time}: {}",
                crate::count(s.replicates, "replicate"),
                crate::count(s.samples, "sample"),
                s.device,
                s.description
            );
        }
    }
    Ok(out)
}

/// The targets under `repro_dir` (folders holding a `spec.toml`), sorted.
pub fn targets(repro_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(repro_dir).map_err(|source| ReportError::Io {
        path: repro_dir.to_owned(),
        source,
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path().join("spec.toml")))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
title = "t"
paper = "p"
experiment = "stability"
columns = [{ header = "Data-order IMP", metric = "data_order_imp" }]
[scales.smoke]
description = "s"
replicates = 2
[scales.quick]
description = "q"
replicates = 3
samples = 3
flags = { validation = 100 }
[scales.paper]
description = "p"
replicates = 5
device = "cuda"
[[rows]]
id = "lenet"
label = "LeNet (MNIST)"
model = "lenet_300_100"
dataset = "mnist"
variants = ["fashion-mnist"]
level = 10
weights_remaining = 0.107
flags = { steps = "50000it", milestones = ["10ep", "20ep"], lr = 0.0012 }
[rows.scales.smoke]
level = 2
flags = { steps = "200it", subset = 3000 }
"#;

    fn parse(text: &str) -> Result<Spec> {
        Spec::parse(text, Path::new("repro/fig3/spec.toml"))
    }

    #[test]
    fn resolves_flags_and_levels_per_scale() {
        let spec = parse(GOOD).unwrap();
        assert_eq!(spec.target(), "fig3");
        let (level, flags) = spec.resolve(&spec.rows[0], "smoke");
        assert_eq!(level, 2);
        let f: Vec<(&str, &str)> = flags
            .iter()
            .map(|(k, v, _)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            f,
            [
                ("lr", "0.0012"),
                ("milestones", "10ep,20ep"),
                ("steps", "200it"),
                ("subset", "3000")
            ]
        );
        assert_eq!(spec.resolve(&spec.rows[0], "paper").0, 10);
        let quick = spec.resolve(&spec.rows[0], "quick").1;
        assert!(
            quick
                .iter()
                .any(|(k, v, _)| k == "validation" && v == "100")
        );
        assert_eq!(spec.header_of("data_order_imp"), "Data-order IMP");
        assert_eq!(spec.header_of("barrier"), "barrier");
    }

    /// A row's declared regression size replaces the spec's for its metric; a bad size is refused
    /// at its line.
    #[test]
    fn regression_sizes_resolve_per_row_and_bad_ones_are_refused() {
        let text = GOOD
            .replace(
                "columns = [",
                "regression = { data_order_imp = \"5%\", accuracy = 0.01 }\ncolumns = [",
            )
            .replace(
                "weights_remaining = 0.107\n",
                "weights_remaining = 0.107\nregression = { accuracy = 0.02 }\n",
            );
        let spec = parse(&text).unwrap();
        assert_eq!(
            spec.regression("lenet", "accuracy"),
            Some(Margin::Absolute(0.02))
        );
        assert_eq!(
            spec.regression("lenet", "data_order_imp"),
            Some(Margin::Relative(0.05))
        );
        assert_eq!(
            spec.regression("other", "accuracy"),
            Some(Margin::Absolute(0.01))
        );
        assert_eq!(spec.regression("lenet", "barrier"), None);
        check(
            &text.replace("accuracy = 0.02", "accuracy = -1"),
            "regression of `accuracy`: margin `-1`",
        );
        check(
            &text.replace("accuracy = 0.02", "accuracy = true"),
            "regression of `accuracy`: expected a positive number",
        );
    }

    fn check(text: &str, fragment: &str) {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(fragment), "{err:?} lacks {fragment:?}");
    }

    #[test]
    fn malformed_specs_name_the_file_the_line_and_the_expectation() {
        check("title = ", "repro/fig3/spec.toml, line 1");
        check(
            &GOOD.replace("level = 10", "levle = 10"),
            "line 24: unknown field `levle`",
        );
        check(
            &GOOD.replace("samples = 3", "samples = \"3\""),
            "line 12: invalid type: string \"3\", expected u64",
        );
        check(
            &GOOD.replace("[rows.scales.smoke]", "[rows.scales.smok]"),
            "line 27: row `lenet` overrides unknown scale `smok`",
        );
        check(
            &GOOD.replace("[scales.quick]", "[scales.quik]"),
            "no [scales.quick]",
        );
        check(
            &GOOD.replace("replicates = 2", "replicates = 1"),
            "at least 2 independent replicates",
        );
        check(
            &GOOD.replace("replicates = 2", "replicates = 99999999999999"),
            "[scales.smoke] replicates = 99999999999999: at most 1000",
        );
        check(
            &GOOD.replace("samples = 3", "samples = 5000"),
            "[scales.quick] samples = 5000: at most 1000 per replicate",
        );
        check(
            &GOOD.replace(
                "columns = [",
                "plot = [{ title = \"t\", metrics = [], y_label = \"y\", kind = \"lines\" }]\ncolumns = [",
            ),
            "needs `x`",
        );
        check(
            &GOOD.replace(
                "columns = [",
                "plot = [{ title = \"t\", metrics = [], y_label = \"y\", rows = [\"lenet\", \"vgg\"] }]\ncolumns = [",
            ),
            "plot panel `t` names row `vgg`, which the spec does not have",
        );
    }
}
