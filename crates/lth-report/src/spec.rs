//! `repro/<target>/spec.toml`: what a reproduction target runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::{ReportError, Result};

/// The kind of measurement a target's rows make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Experiment {
    /// Data-order and pruning stability of IMP and random subnetworks at one lottery level
    /// (Stabilizing the LTH, Figure 3).
    Stability,
}

impl Experiment {
    /// The metrics a row of this experiment measures.
    pub fn metrics(self) -> &'static [&'static str] {
        match self {
            Experiment::Stability => &[
                "weights_remaining",
                "data_order_imp",
                "data_order_random",
                "comp_data_order",
                "pruning_imp",
                "pruning_random",
                "comp_pruning",
                "accuracy_imp",
                "accuracy_random",
            ],
        }
    }
}

/// A scale: how big the runs are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub description: String,
    /// Samples per cell.
    pub samples: u64,
    /// Rough wall-clock minutes on a 2-core CPU, when that is a sensible place to run it.
    pub cpu_minutes: Option<f64>,
    /// The device the scale is meant for (`cpu`, `cuda`).
    #[serde(default = "cpu")]
    pub device: String,
}

fn cpu() -> String {
    "cpu".into()
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

/// A panel of the plot: bars for these metrics, per row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub title: String,
    pub metrics: Vec<String>,
    pub y_label: String,
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
    /// The paper's weights remaining at that level (a fraction), for the table.
    pub weights_remaining: f64,
    /// `lth lottery` flags at the paper's settings.
    pub flags: BTreeMap<String, Spanned<toml::Value>>,
    /// Overrides per scale (`smoke`, `quick`); the `paper` scale uses the row as it is.
    #[serde(default)]
    pub scales: BTreeMap<String, Spanned<RowScale>>,
}

/// A parsed `spec.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub title: String,
    pub paper: String,
    pub experiment: Experiment,
    pub scales: BTreeMap<String, Scale>,
    pub columns: Vec<Column>,
    #[serde(default)]
    pub plot: Vec<Panel>,
    pub rows: Vec<Row>,
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
        let whole = |problem: String| ReportError::Malformed {
            path: self.path.clone(),
            line: None,
            problem,
        };
        for needed in ["smoke", "quick", "paper"] {
            if !self.scales.contains_key(needed) {
                return Err(whole(format!(
                    "no [scales.{needed}]; every target has smoke, quick and paper"
                )));
            }
        }
        for (name, s) in &self.scales {
            if s.samples < 2 {
                return Err(whole(format!(
                    "[scales.{name}] samples = {}: at least 2 are needed for a t-test",
                    s.samples
                )));
            }
        }
        let metrics = self.experiment.metrics();
        for m in self
            .columns
            .iter()
            .map(|c| &c.metric)
            .chain(self.plot.iter().flat_map(|p| &p.metrics))
        {
            if !metrics.contains(&m.as_str()) {
                return Err(whole(format!(
                    "unknown metric `{m}` for a {:?} experiment; expected one of {}",
                    self.experiment,
                    metrics.join(", ")
                )));
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for row in &self.rows {
            if !ids.insert(&row.id) {
                return Err(whole(format!("two rows have the id `{}`", row.id)));
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

    /// The row's level and `lth lottery` flags at `scale` (the row's own, with the scale's
    /// overrides), each flag with the byte offset it was written at.
    pub fn resolve(&self, row: &Row, scale: &str) -> (u64, Vec<(String, String, usize)>) {
        let mut flags: BTreeMap<String, (String, usize)> = row
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), (flag_value(v.get_ref()), v.span().start)))
            .collect();
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

/// The 1-based line of a byte offset.
fn line_of(source: &str, offset: usize) -> u64 {
    source[..offset.min(source.len())].matches('\n').count() as u64 + 1
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
samples = 2
[scales.quick]
description = "q"
samples = 3
[scales.paper]
description = "p"
samples = 5
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
            "line 22: unknown field `levle`",
        );
        check(
            &GOOD.replace("samples = 3", "samples = \"3\""),
            "line 11: invalid type: string \"3\", expected u64",
        );
        check(
            &GOOD.replace("[rows.scales.smoke]", "[rows.scales.smok]"),
            "line 25: row `lenet` overrides unknown scale `smok`",
        );
        check(
            &GOOD.replace("metric = \"data_order_imp\"", "metric = \"barrier\""),
            "unknown metric `barrier`",
        );
        check(
            &GOOD.replace("[scales.quick]", "[scales.quik]"),
            "no [scales.quick]",
        );
        check(
            &GOOD.replace("samples = 2", "samples = 1"),
            "at least 2 are needed",
        );
        check(
            &GOOD.replace("experiment = \"stability\"", "experiment = \"curves\""),
            "unknown variant `curves`",
        );
    }
}
