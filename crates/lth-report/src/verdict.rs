//! Judging snapshot cells against a run's measurements.

use std::collections::BTreeMap;

use crate::{Cell, Check, Source, Summary, equivalence, one_sample, welch};

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// Not judged: the data, the model or the scale was not there, or the cell is shown only.
    Skipped,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "SKIPPED",
        })
    }
}

/// A judged cell: the outcome and what it rests on (the statistic, or why it was skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub cell: Cell,
    pub outcome: Outcome,
    pub detail: String,
}

fn show(s: &Summary) -> String {
    format!("{:.4} ± {:.4} (n={})", s.mean, s.sd, s.n)
}

/// A verdict of SKIPPED with a reason.
pub fn skipped(cell: &Cell, reason: impl Into<String>) -> Verdict {
    Verdict {
        cell: cell.clone(),
        outcome: Outcome::Skipped,
        detail: reason.into(),
    }
}

/// Judges `cell` against `ours` (the run's summaries by metric).
pub fn judge(cell: &Cell, ours: &BTreeMap<String, Summary>) -> Verdict {
    let verdict = |outcome, detail: String| Verdict {
        cell: cell.clone(),
        outcome,
        detail,
    };
    if cell.check == Check::None {
        return skipped(
            cell,
            if cell.rationale.is_empty() {
                "shown, not checked".to_owned()
            } else {
                format!("shown, not checked: {}", cell.rationale)
            },
        );
    }
    let Some(mine) = ours.get(&cell.metric) else {
        return verdict(
            Outcome::Fail,
            format!("the run measured no `{}`", cell.metric),
        );
    };
    let a = cell.alpha;
    match &cell.check {
        Check::None => unreachable!("handled above"),
        Check::Equivalent => {
            // `load_cells` refuses such cells; a cell built by hand gets a failing verdict.
            let (Some(theirs), Some(margin)) = (cell.summary(), cell.margin) else {
                return verdict(
                    Outcome::Fail,
                    "an `equivalent` cell needs mean, spread, n and a margin".into(),
                );
            };
            let margin = margin.width(theirs.mean);
            let label = format!("snapshot {} {}", cell.scale, cell.device);
            match equivalence(mine, &theirs, margin, a) {
                None => verdict(
                    Outcome::Fail,
                    format!(
                        "ours {} vs {label} {}: equivalence needs n ≥ 2 replicates on both sides",
                        show(mine),
                        show(&theirs)
                    ),
                ),
                Some(e) => {
                    let ok = e.equivalent();
                    verdict(
                        if ok { Outcome::Pass } else { Outcome::Fail },
                        format!(
                            "ours {} vs {label} {}: difference {:+.4}, {:.0}% CI [{:+.4}, {:+.4}] {} ±{margin:.4} (margin {})",
                            show(mine),
                            show(&theirs),
                            e.diff,
                            100.0 * (1.0 - 2.0 * a),
                            e.lo,
                            e.hi,
                            if ok { "inside" } else { "not inside" },
                            cell.margin.map_or(String::new(), |m| m.to_string()),
                        ),
                    )
                }
            }
        }
        Check::Range => {
            let (m, spread) = (
                cell.mean.unwrap_or(f64::NAN),
                cell.spread.unwrap_or(f64::NAN),
            );
            let ci = mine.ci_half_width(a);
            let gap = (mine.mean - m).abs();
            let ok = gap <= spread + ci;
            verdict(
                if ok { Outcome::Pass } else { Outcome::Fail },
                format!(
                    "ours {} vs {} {m} ± {spread}: |Δ| = {gap:.4} {} {spread} + {ci:.4} (our {:.0}% CI)",
                    show(mine),
                    if cell.source == Source::Paper {
                        "paper"
                    } else {
                        "snapshot"
                    },
                    if ok { "≤" } else { ">" },
                    100.0 * (1.0 - a)
                ),
            )
        }
        Check::Within(other) => {
            let Some(theirs) = ours.get(other) else {
                return verdict(Outcome::Fail, format!("the run measured no `{other}`"));
            };
            let Some(margin) = cell.margin else {
                return verdict(Outcome::Fail, "a `within` cell needs a margin".into());
            };
            let margin = margin.width(theirs.mean);
            match equivalence(mine, theirs, margin, a) {
                None => verdict(
                    Outcome::Fail,
                    "equivalence needs n ≥ 2 replicates on both sides".into(),
                ),
                Some(e) => {
                    let ok = e.equivalent();
                    verdict(
                        if ok { Outcome::Pass } else { Outcome::Fail },
                        format!(
                            "{} within ±{margin:.4} of {other}: {} vs {}: difference {:+.4}, {:.0}% CI [{:+.4}, {:+.4}] {}",
                            cell.metric,
                            show(mine),
                            show(theirs),
                            e.diff,
                            100.0 * (1.0 - 2.0 * a),
                            e.lo,
                            e.hi,
                            if ok { "inside" } else { "not inside" },
                        ),
                    )
                }
            }
        }
        Check::Below(bound) | Check::Above(bound) => {
            let below = matches!(cell.check, Check::Below(_));
            let Some(t) = one_sample(mine, *bound) else {
                return verdict(
                    Outcome::Fail,
                    "a one-sample t-test needs n ≥ 2 replicates".into(),
                );
            };
            let p = if below { t.p_less() } else { t.p_greater() };
            let ok = p < a;
            verdict(
                if ok { Outcome::Pass } else { Outcome::Fail },
                format!(
                    "{} {} {bound}: {}: one-sided t = {:.2}, df = {:.0}, p = {:.2e} {} {a}",
                    cell.metric,
                    if below { "below" } else { "above" },
                    show(mine),
                    t.t,
                    t.df,
                    p,
                    if ok { "<" } else { "≥" }
                ),
            )
        }
        Check::Greater(other) | Check::NotLess(other) => {
            let Some(theirs) = ours.get(other) else {
                return verdict(Outcome::Fail, format!("the run measured no `{other}`"));
            };
            let Some(t) = welch(mine, theirs) else {
                return verdict(
                    Outcome::Fail,
                    "a Welch test needs n ≥ 2 on both sides".into(),
                );
            };
            let (ok, p, relation) = match &cell.check {
                Check::Greater(_) => {
                    let p = t.p_greater();
                    (p < a, p, if p < a { "<" } else { "≥" })
                }
                _ => {
                    let p = t.p_less();
                    (p >= a, p, if p >= a { "≥" } else { "<" })
                }
            };
            let claim = match &cell.check {
                Check::Greater(_) => format!("{} > {other}", cell.metric),
                _ => format!("{} not below {other}", cell.metric),
            };
            verdict(
                if ok { Outcome::Pass } else { Outcome::Fail },
                format!(
                    "{claim}: {} vs {}: one-sided Welch t = {:.2}, df = {:.1}, p = {:.2e} {relation} {a}",
                    show(mine),
                    show(theirs),
                    t.t,
                    t.df,
                    p
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(metric: &str, source: Source, check: &str, numbers: Option<(f64, f64, u64)>) -> Cell {
        let margin = (check == "equivalent").then_some(crate::Margin::Absolute(0.1));
        Cell {
            row: "lenet".into(),
            dataset: "fashion-mnist".into(),
            metric: metric.into(),
            source,
            scale: "quick".into(),
            device: "cpu".into(),
            command: String::new(),
            mean: numbers.map(|n| n.0),
            spread: numbers.map(|n| n.1),
            n: numbers.map(|n| n.2),
            check: check.parse().unwrap(),
            alpha: 0.01,
            margin,
            rationale: String::new(),
        }
    }

    fn ours() -> BTreeMap<String, Summary> {
        [
            ("data_order_imp", vec![3.3, 3.4, 3.35, 3.42, 3.38]),
            ("data_order_random", vec![8.1, 7.1, 8.7, 8.4, 8.2]),
            ("accuracy_imp", vec![0.883, 0.884, 0.882, 0.885, 0.884]),
            ("accuracy_random", vec![0.854, 0.856, 0.853, 0.857, 0.855]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Summary::of(&v)))
        .collect()
    }

    #[test]
    fn within_is_an_equivalence_of_two_metrics() {
        let o = ours();
        let within = |margin: f64| {
            let mut c = cell(
                "accuracy_imp",
                Source::Claim,
                "within:accuracy_random",
                None,
            );
            c.margin = Some(crate::Margin::Absolute(margin));
            judge(&c, &o)
        };
        // The difference is 0.029 ± about 0.0015: inside ±0.04, not inside ±0.02.
        assert_eq!(
            within(0.04).outcome,
            Outcome::Pass,
            "{}",
            within(0.04).detail
        );
        assert_eq!(
            within(0.02).outcome,
            Outcome::Fail,
            "{}",
            within(0.02).detail
        );
        assert!(within(0.02).detail.contains("not inside"));
    }

    #[test]
    fn each_check_passes_and_fails_where_it_should() {
        let o = ours();
        let judge_ = |c: Cell| judge(&c, &o).outcome;
        assert_eq!(
            judge_(cell(
                "data_order_imp",
                Source::Measured,
                "equivalent",
                Some((3.37, 0.04, 5))
            )),
            Outcome::Pass
        );
        assert_eq!(
            judge_(cell(
                "data_order_imp",
                Source::Measured,
                "equivalent",
                Some((4.0, 0.04, 5))
            )),
            Outcome::Fail
        );
        assert_eq!(
            judge_(cell(
                "data_order_imp",
                Source::Paper,
                "range",
                Some((3.0, 0.3, 18))
            )),
            Outcome::Pass
        );
        assert_eq!(
            judge_(cell(
                "data_order_imp",
                Source::Paper,
                "range",
                Some((20.7, 0.6, 18))
            )),
            Outcome::Fail
        );
        assert_eq!(
            judge_(cell(
                "data_order_random",
                Source::Claim,
                "greater:data_order_imp",
                None
            )),
            Outcome::Pass
        );
        assert_eq!(
            judge_(cell(
                "data_order_imp",
                Source::Claim,
                "greater:data_order_random",
                None
            )),
            Outcome::Fail
        );
        assert_eq!(
            judge_(cell(
                "accuracy_imp",
                Source::Claim,
                "not_less:accuracy_random",
                None
            )),
            Outcome::Pass
        );
        assert_eq!(
            judge_(cell(
                "accuracy_random",
                Source::Claim,
                "not_less:accuracy_imp",
                None
            )),
            Outcome::Fail
        );
        assert_eq!(
            judge_(cell("comp_data_order", Source::Paper, "none", None)),
            Outcome::Skipped
        );
        assert_eq!(
            judge_(cell(
                "pruning_imp",
                Source::Measured,
                "equivalent",
                Some((1.0, 0.1, 5))
            )),
            Outcome::Fail
        );
        assert_eq!(
            judge_(cell("data_order_imp", Source::Paper, "none", None)),
            Outcome::Skipped
        );
        // Within the margin but too noisy to show it: equivalence is not shown.
        assert_eq!(
            judge_(cell(
                "data_order_random",
                Source::Measured,
                "equivalent",
                Some((8.1, 0.6, 5))
            )),
            Outcome::Fail
        );
    }
}

#[cfg(test)]
mod below_tests {
    use super::*;

    #[test]
    fn below_is_a_one_sided_test_against_a_constant() {
        let mut c = Cell {
            row: "r".into(),
            dataset: "d".into(),
            metric: "eb50_epoch_fraction".into(),
            source: Source::Claim,
            scale: "quick".into(),
            device: "cpu".into(),
            command: String::new(),
            mean: None,
            spread: None,
            n: None,
            check: "below:0.5".parse().unwrap(),
            alpha: 0.01,
            margin: None,
            rationale: String::new(),
        };
        let ours = |v: &[f64]| -> BTreeMap<String, Summary> {
            [("eb50_epoch_fraction".to_owned(), Summary::of(v))].into()
        };
        assert_eq!(
            judge(&c, &ours(&[0.3, 0.35, 0.25, 0.4, 0.3])).outcome,
            Outcome::Pass
        );
        // Below on average but not significantly so over three replicates.
        assert_eq!(judge(&c, &ours(&[0.3, 0.6, 0.45])).outcome, Outcome::Fail);
        assert_eq!(judge(&c, &ours(&[0.55, 0.6, 0.7])).outcome, Outcome::Fail);
        c.check = "below:1".parse().unwrap();
        assert_eq!(c.check.to_string(), "below:1");
        assert!("below:x".parse::<Check>().is_err());
        // The other way: above 0.5, significantly, over replicates.
        c.check = "above:0.5".parse().unwrap();
        assert_eq!(c.check.to_string(), "above:0.5");
        assert_eq!(judge(&c, &ours(&[0.7, 0.75, 0.8])).outcome, Outcome::Pass);
        assert_eq!(judge(&c, &ours(&[0.7, 0.4, 0.55])).outcome, Outcome::Fail);
        assert_eq!(judge(&c, &ours(&[0.3, 0.35, 0.25])).outcome, Outcome::Fail);
        assert!("above:inf".parse::<Check>().is_err());
    }
}
