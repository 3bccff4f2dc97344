//! The table in the paper's layout, with the paper's numbers beside ours, and the verdict lines.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::spec::{Format, Spec};
use crate::{Cell, Outcome, Source, Summary, Verdict};

/// What happened to one row of a spec in a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RowStatus {
    /// Measured: summaries by metric.
    Ran { metrics: BTreeMap<String, Summary> },
    /// Not run, and why (with how to get what is missing).
    Skipped { reason: String },
}

/// One row of a run: the spec row, the dataset it ran on (or would have), and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct RowResult {
    pub row: String,
    pub label: String,
    pub dataset: String,
    /// Why the paper's dataset was not used, when `dataset` is a labelled variant.
    pub variant_of: Option<String>,
    pub status: RowStatus,
}

impl RowResult {
    /// Whether the row ran on a labelled variant rather than the paper's dataset.
    pub fn is_variant(&self) -> bool {
        self.variant_of.is_some()
    }
}

fn number(format: Format, mean: f64, sd: Option<f64>) -> String {
    match (format, sd) {
        (Format::Percent, Some(sd)) => format!("{:.2}% ± {:.2}", 100.0 * mean, 100.0 * sd),
        (Format::Percent, None) => format!("{:.2}%", 100.0 * mean),
        (Format::Ratio, _) => format!("{mean:.2}×"),
        (Format::Number, Some(sd)) => format!("{mean:.3} ± {sd:.3}"),
        (Format::Number, None) => format!("{mean:.3}"),
    }
}

fn ours(format: Format, s: &Summary) -> String {
    number(format, s.mean, (s.n > 1).then_some(s.sd))
}

/// The reference beside our number: the paper's cell on the paper's dataset, the measured
/// snapshot at this scale on a variant.
fn reference(
    cells: &[Cell],
    row: &str,
    dataset: &str,
    scale: &str,
    metric: &str,
    format: Format,
    variant: bool,
) -> Option<String> {
    let (source, scale) = if variant {
        (Source::Measured, scale)
    } else {
        (Source::Paper, "paper")
    };
    cells
        .iter()
        .find(|c| c.source == source && c.applies(row, dataset, scale) && c.metric == metric)
        .and_then(|c| {
            let spread = c
                .spread
                .filter(|_| format != Format::Ratio && c.n.unwrap_or(0) > 1);
            let text = number(format, c.mean?, spread);
            Some(if variant {
                format!("snapshot {text}")
            } else {
                format!("paper {text}")
            })
        })
}

/// The Markdown table of a run: one line per spec row as the paper has it (the paper's numbers
/// beside ours), and one more per labelled variant that ran, beside its measured snapshot; with
/// `notes`, a line under the table per row that was skipped or ran on a variant.
pub fn render_table(
    spec: &Spec,
    scale: &str,
    device: &str,
    results: &[RowResult],
    cells: &[Cell],
    show_notes: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {} — `{scale}` scale on {device}\n", spec.title);
    let _ = writeln!(out, "{}\n", spec.paper);
    let mut header = "| Network | Dataset |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for c in &spec.columns {
        let _ = write!(header, " {} |", c.header);
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let mut notes = Vec::new();
    for row in &spec.rows {
        let result = results.iter().find(|r| r.row == row.id);
        let lines: Vec<(&str, &str, bool, Option<&RowResult>)> = match result {
            Some(r) if r.is_variant() => vec![
                (row.label.as_str(), row.dataset.as_str(), false, None),
                (r.label.as_str(), r.dataset.as_str(), true, Some(r)),
            ],
            Some(r) => vec![(row.label.as_str(), row.dataset.as_str(), false, Some(r))],
            None => vec![(row.label.as_str(), row.dataset.as_str(), false, None)],
        };
        for (label, dataset, variant, r) in lines {
            let mut line = format!("| {label} | {dataset} |");
            for col in &spec.columns {
                let mine = match r.map(|r| &r.status) {
                    Some(RowStatus::Ran { metrics }) => {
                        metrics.get(&col.metric).map(|s| ours(col.format, s))
                    }
                    _ => None,
                };
                let theirs = if let (true, false, Some(w)) = (
                    col.metric == "weights_remaining",
                    variant,
                    row.weights_remaining,
                ) {
                    // The paper's sparsity is part of the row's definition, in the spec.
                    Some(format!("paper {}", number(col.format, w, None)))
                } else {
                    reference(
                        cells,
                        &row.id,
                        dataset,
                        scale,
                        &col.metric,
                        col.format,
                        variant,
                    )
                };
                let text = match (mine, theirs) {
                    (Some(m), Some(t)) => format!("{m} ({t})"),
                    (Some(m), None) => m,
                    (None, Some(t)) => format!("— ({t})"),
                    (None, None) => "—".to_owned(),
                };
                let _ = write!(line, " {text} |");
            }
            let _ = writeln!(out, "{line}");
        }
        if let Some(RowResult {
            status: RowStatus::Skipped { reason },
            ..
        }) = result
        {
            notes.push(format!("- {}: not run at this scale: {reason}", row.label));
        } else if let Some(r) = result.filter(|r| r.is_variant()) {
            notes.push(format!(
                "- {}: ran on {} as a labelled variant, compared with its own measured snapshot and \
                 the paper's claims, never with the paper's {} numbers. Why: {}",
                row.label,
                r.dataset,
                row.dataset,
                r.variant_of.as_deref().unwrap_or_default()
            ));
        }
    }
    if show_notes && !notes.is_empty() {
        let _ = writeln!(out, "\n{}", notes.join("\n"));
    }
    out
}

/// The judged verdicts as lines (`PASS    row · dataset · metric [check]: detail`, and FAIL,
/// XFAIL, XPASS, INCONCLUSIVE), a declared deviation with its reason. Skipped cells are not
/// listed: [`render_skipped`] gives one line per row that did not run, and `results.csv` has
/// every cell.
pub fn render_verdicts(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts.iter().filter(|v| v.outcome != Outcome::Skipped) {
        let _ = writeln!(
            out,
            "{:<7} {} · {} · {} [{} {}]: {}{}",
            v.outcome.to_string(),
            v.cell.row,
            v.cell.dataset,
            v.cell.metric,
            match v.cell.source {
                Source::Paper => "paper",
                Source::Measured => "snapshot",
                Source::Claim => "claim",
            },
            v.cell.check,
            v.detail,
            if matches!(v.outcome, Outcome::XFail | Outcome::XPass) {
                format!(" — declared to deviate: {}", v.cell.rationale)
            } else {
                String::new()
            }
        );
    }
    out
}

/// The counts of each outcome, `9 PASS, 0 FAIL, 2 XFAIL, 0 XPASS, 1 INCONCLUSIVE, 78 SKIPPED`.
pub fn counts(verdicts: &[Verdict]) -> String {
    Outcome::ALL
        .iter()
        .map(|&o| format!("{} {o}", verdicts.iter().filter(|v| v.outcome == o).count()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per reason rows did not run (rows skipped for the same reason share it), with the
/// reason (and how to get what is missing) and how many cells were skipped with them.
pub fn render_skipped(results: &[RowResult], verdicts: &[Verdict]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in results {
        if let RowStatus::Skipped { reason } = &r.status {
            match groups.iter_mut().find(|(why, _)| *why == reason.as_str()) {
                Some((_, rows)) => rows.push(&r.row),
                None => groups.push((reason, vec![&r.row])),
            }
        }
    }
    let mut out = String::new();
    for (reason, rows) in groups {
        let n = verdicts
            .iter()
            .filter(|v| rows.contains(&v.cell.row.as_str()))
            .count();
        let _ = writeln!(out, "SKIPPED {} ({n} cells): {reason}", rows.join(", "));
    }
    out
}

/// The closing line of a run: `fig3 quick: 9 PASS, 0 FAIL, 0 XFAIL, 0 XPASS, 0 INCONCLUSIVE,
/// 78 SKIPPED; 3 claims, family-wise error ≤ 0.01 each way (Holm) (absent: cifar10, mnist)`, where
/// `absent` are the datasets that kept rows or cells from running.
pub fn summary_line(target: &str, scale: &str, verdicts: &[Verdict], absent: &[String]) -> String {
    let mut line = format!("{target} {scale}: {}", counts(verdicts));
    let claims: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| v.cell.source == Source::Claim && v.outcome != Outcome::Skipped)
        .collect();
    if !claims.is_empty() {
        let alpha = claims.iter().map(|v| v.cell.alpha).fold(0.0, f64::max);
        let _ = write!(
            line,
            "; {}, family-wise error ≤ {alpha} each way (Holm)",
            crate::count(claims.len(), "claim")
        );
    }
    if !absent.is_empty() {
        let _ = write!(line, " (absent: {})", absent.join(", "));
    }
    line
}
