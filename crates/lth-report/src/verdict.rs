//! Judging snapshot cells and claims against a run's measurements.
//!
//! Every cell yields a [`Finding`] first, what the data say: a snapshot or the paper's range
//! holds or not; a claim has two one-sided p-values, one for the claim and one for its opposite.
//! [`decide`] then turns findings into outcomes. The claims judged together (a target's, at one
//! scale) are one family: their p-values are Holm-adjusted, each way, so the chance of any false
//! support and the chance of any false contradiction are each at most α over the family. A claim is
//! *supported* when its adjusted p is below α, *contradicted* when its opposite's is, and
//! *inconclusive* otherwise, with the effect the run could have detected. The cell's `expect`
//! says which outcome is expected:
//!
//! | finding | expect `holds` | expect `deviates` |
//! | --- | --- | --- |
//! | holds, supported | PASS | XPASS (unexpected) |
//! | does not hold, contradicted | FAIL (unexpected) | XFAIL |
//! | inconclusive | INCONCLUSIVE | INCONCLUSIVE |
//! | nothing to judge (a metric not measured) | FAIL | FAIL |

use std::collections::BTreeMap;

use crate::{Cell, Check, Difference, Expect, Measurement, Source, Summary, holm};

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Holds, as expected.
    Pass,
    /// Does not hold, although it was expected to: a regression or a contradicted claim.
    Fail,
    /// Deviates, as declared.
    XFail,
    /// Declared to deviate, and holds now: the declaration is stale.
    XPass,
    /// A claim the run is too small to decide either way.
    Inconclusive,
    /// Not judged: the data, the model or the scale was not there, or the cell is shown only.
    Skipped,
}

impl Outcome {
    /// Whether the outcome is not what the table expects (FAIL or XPASS): what `--check` exits 1
    /// on.
    pub fn unexpected(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::XPass)
    }

    /// Every outcome, in the order reports count them.
    pub const ALL: [Outcome; 6] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::XFail,
        Outcome::XPass,
        Outcome::Inconclusive,
        Outcome::Skipped,
    ];
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::XFail => "XFAIL",
            Outcome::XPass => "XPASS",
            Outcome::Inconclusive => "INCONCLUSIVE",
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

/// What the data say about one cell, before expectations and multiplicity.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// A snapshot's equivalence or the paper's range: holds or not.
    Decided { holds: bool, detail: String },
    /// A claim: the one-sided p-value of the claim and of its opposite, and the difference the
    /// test rests on (for the effect it could detect).
    Claim {
        p_support: f64,
        p_contra: f64,
        difference: Difference,
        /// The claim's own effect is `difference.diff` measured from this point (0 for greater
        /// and the bounds, −margin for not_less; for within, the margin, which |diff| is
        /// measured against).
        from: f64,
        /// Replicates per arm.
        n: u64,
        detail: String,
    },
    /// Nothing could be judged (a metric the run did not measure, too few replicates).
    Broken(String),
    /// Not judged, and why.
    Skipped(String),
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

/// The replicate values of both sides, paired by replicate number, when both have the same
/// replicates (at least 2); otherwise why they cannot be paired.
fn pairs(
    ours: &[(u64, f64)],
    theirs: &[(u64, f64)],
) -> std::result::Result<Vec<(f64, f64)>, String> {
    if theirs.is_empty() {
        return Err("the snapshot keeps no replicate values".into());
    }
    let list = |v: &[(u64, f64)]| {
        let mut r: Vec<u64> = v.iter().map(|x| x.0).collect();
        r.sort_unstable();
        r
    };
    let (a, b) = (list(ours), list(theirs));
    if a != b {
        let show = |r: &[u64]| r.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        return Err(format!(
            "the replicate sets differ (ours {}, snapshot {})",
            show(&a),
            show(&b)
        ));
    }
    let mut out = Vec::new();
    for (r, x) in ours {
        if let Some((_, y)) = theirs.iter().find(|t| t.0 == *r) {
            out.push((*x, *y));
        }
    }
    Ok(out)
}

/// What the data say about `cell` given the run's measurements by metric.
pub fn assess(cell: &Cell, ours: &BTreeMap<String, Measurement>) -> Finding {
    if cell.check == Check::None {
        return Finding::Skipped(if cell.rationale.is_empty() {
            "shown, not checked".to_owned()
        } else {
            format!("shown, not checked: {}", cell.rationale)
        });
    }
    let Some(mine) = ours.get(&cell.metric) else {
        return Finding::Broken(format!("the run measured no `{}`", cell.metric));
    };
    let a = cell.alpha;
    let other = |m: &str| {
        ours.get(m)
            .map(|t| &t.summary)
            .ok_or_else(|| Finding::Broken(format!("the run measured no `{m}`")))
    };
    let margin_of = |reference: f64| cell.margin.map(|m| m.width(reference));
    match &cell.check {
        Check::None => unreachable!("handled above"),
        Check::Decreasing | Check::Increasing => assess_trend(cell, &[ours]),
        Check::Equivalent => {
            // `load_cells` refuses such cells; a cell built by hand gets a broken finding.
            let (Some(theirs), Some(margin)) =
                (cell.summary(), margin_of(cell.mean.unwrap_or(0.0)))
            else {
                return Finding::Broken(
                    "an `equivalent` cell needs mean, spread, n and a margin".into(),
                );
            };
            let label = format!("snapshot {} {}", cell.scale, cell.device);
            let (d, how) = match pairs(&mine.replicates, &cell.replicates) {
                Ok(p) => (
                    Difference::paired(&p),
                    format!("paired over {} replicates", p.len()),
                ),
                Err(why) => (
                    Difference::welch(&mine.summary, &theirs),
                    format!("unpaired (Welch): {why}"),
                ),
            };
            let Some(d) = d else {
                return Finding::Broken(format!(
                    "ours {} vs {label} {}: equivalence needs n ≥ 2 replicates on both sides",
                    show(&mine.summary),
                    show(&theirs)
                ));
            };
            let e = d.equivalence(margin, a);
            let ok = e.equivalent();
            Finding::Decided {
                holds: ok,
                detail: format!(
                    "ours {} vs {label} {}: difference {:+.4}, {how}, {:.0}% CI [{:+.4}, {:+.4}] {} ±{margin:.4} (margin {})",
                    show(&mine.summary),
                    show(&theirs),
                    e.diff,
                    100.0 * (1.0 - 2.0 * a),
                    e.lo,
                    e.hi,
                    if ok { "inside" } else { "not inside" },
                    cell.margin.map_or(String::new(), |m| m.to_string()),
                ),
            }
        }
        Check::Range => {
            let mine = &mine.summary;
            let (m, spread) = (
                cell.mean.unwrap_or(f64::NAN),
                cell.spread.unwrap_or(f64::NAN),
            );
            let ci = mine.ci_half_width(a);
            let gap = (mine.mean - m).abs();
            let ok = gap <= spread + ci;
            Finding::Decided {
                holds: ok,
                detail: format!(
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
            }
        }
        Check::Within(o) | Check::Greater(o) | Check::NotLess(o) => {
            let theirs = match other(o) {
                Ok(t) => t,
                Err(f) => return f,
            };
            let Some(d) = Difference::welch(&mine.summary, theirs) else {
                return Finding::Broken("a Welch test needs n ≥ 2 on both sides".into());
            };
            let both = format!("{} vs {}", show(&mine.summary), show(theirs));
            match &cell.check {
                Check::Greater(_) => Finding::Claim {
                    p_support: d.p_above(0.0),
                    p_contra: d.p_below(0.0),
                    difference: d,
                    from: 0.0,
                    n: mine.summary.n,
                    detail: format!(
                        "{} > {o}: {both}: difference {:+.4}, one-sided Welch df = {:.1}",
                        cell.metric, d.diff, d.df
                    ),
                },
                Check::NotLess(_) => {
                    let Some(margin) = margin_of(theirs.mean) else {
                        return Finding::Broken("a `not_less` claim needs a margin".into());
                    };
                    Finding::Claim {
                        p_support: d.p_above(-margin),
                        p_contra: d.p_below(-margin),
                        difference: d,
                        from: -margin,
                        n: mine.summary.n,
                        detail: format!(
                            "{} not below {o} by more than {margin:.4} (non-inferiority): {both}: \
                             difference {:+.4}, one-sided Welch df = {:.1}",
                            cell.metric, d.diff, d.df
                        ),
                    }
                }
                _ => {
                    let Some(margin) = margin_of(theirs.mean) else {
                        return Finding::Broken("a `within` claim needs a margin".into());
                    };
                    let e = d.equivalence(margin, a);
                    Finding::Claim {
                        // Two one-sided tests: both must reject, so the larger p decides.
                        p_support: d.p_above(-margin).max(d.p_below(margin)),
                        // Outside the margin on either side.
                        p_contra: d.p_above(margin).min(d.p_below(-margin)),
                        difference: d,
                        from: margin,
                        n: mine.summary.n,
                        detail: format!(
                            "{} within ±{margin:.4} of {o}: {both}: difference {:+.4}, {:.0}% CI \
                             [{:+.4}, {:+.4}]",
                            cell.metric,
                            e.diff,
                            100.0 * (1.0 - 2.0 * a),
                            e.lo,
                            e.hi
                        ),
                    }
                }
            }
        }
        Check::Below(bound) | Check::Above(bound) => {
            let below = matches!(cell.check, Check::Below(_));
            let Some(d) = Difference::one_sample(&mine.summary, *bound) else {
                return Finding::Broken("a one-sample t-test needs n ≥ 2 replicates".into());
            };
            let detail = format!(
                "{} {} {bound}: {}: one-sample t, df = {:.0}",
                cell.metric,
                if below { "below" } else { "above" },
                show(&mine.summary),
                d.df
            );
            one_sided(d, below, mine.summary.n, detail)
        }
    }
}

/// What the data say about a trend claim (`decreasing`, `increasing`) given the measurements of
/// its rows, in the order the cell names them. Replicate r of every row shares r's seeds, so each
/// replicate is a block: its least-squares slope of the metric on the rows' positions 0, 1, … is
/// one observation, and the claim is a one-sample one-sided t-test of the slopes against 0 over
/// the replicates measured on every row. Two rows make it the paired test of their difference.
pub fn assess_trend(cell: &Cell, rows: &[&BTreeMap<String, Measurement>]) -> Finding {
    let mut series: Vec<&[(u64, f64)]> = Vec::new();
    for (name, ours) in cell.rows().iter().zip(rows) {
        match ours.get(&cell.metric) {
            Some(m) => series.push(&m.replicates),
            None => {
                return Finding::Broken(format!("row `{name}` measured no `{}`", cell.metric));
            }
        }
    }
    if series.len() < 2 {
        return Finding::Broken(format!(
            "a trend needs the measurements of at least two rows, got {}",
            series.len()
        ));
    }
    let mut slopes = Vec::new();
    for &(r, _) in series[0] {
        let ys: Option<Vec<f64>> = series
            .iter()
            .map(|s| s.iter().find(|x| x.0 == r).map(|x| x.1))
            .collect();
        if let Some(ys) = ys {
            slopes.push(slope(&ys));
        }
    }
    let s = Summary::of(&slopes);
    let Some(d) = Difference::one_sample(&s, 0.0) else {
        return Finding::Broken(format!(
            "a trend test needs n ≥ 2 replicates measured on every row, got {}",
            slopes.len()
        ));
    };
    let falls = cell.check == Check::Decreasing;
    let detail = format!(
        "{} {} along {}: per-replicate slope per row {} ({} rows), one-sample t over \
             replicates, df = {:.0}",
        cell.metric,
        if falls { "falls" } else { "rises" },
        cell.rows().join(" → "),
        show(&s),
        series.len(),
        d.df
    );
    one_sided(d, falls, s.n, detail)
}

/// A one-sample claim on `d` against 0: that it lies below (`below`) or above, with the opposite
/// as its contradiction.
fn one_sided(d: Difference, below: bool, n: u64, detail: String) -> Finding {
    let (p_support, p_contra) = if below {
        (d.p_below(0.0), d.p_above(0.0))
    } else {
        (d.p_above(0.0), d.p_below(0.0))
    };
    Finding::Claim {
        p_support,
        p_contra,
        difference: d,
        from: 0.0,
        n,
        detail,
    }
}

/// The least-squares slope of `ys` on their positions 0, 1, … (at least two values).
fn slope(ys: &[f64]) -> f64 {
    let n = ys.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    sxy / sxx
}

fn p_text(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// Outcomes of cells judged together. The claims among them are one family, Holm-adjusted each
/// way (module docs); snapshots and ranges are decided alone.
pub fn decide(found: Vec<(Cell, Finding)>) -> Vec<Verdict> {
    let claims: Vec<usize> = found
        .iter()
        .enumerate()
        .filter(|(_, (_, f))| matches!(f, Finding::Claim { .. }))
        .map(|(i, _)| i)
        .collect();
    let m = claims.len();
    let (mut support, mut contra) = (Vec::new(), Vec::new());
    for &i in &claims {
        if let Finding::Claim {
            p_support,
            p_contra,
            ..
        } = &found[i].1
        {
            support.push(*p_support);
            contra.push(*p_contra);
        }
    }
    let (support, contra) = (holm(&support), holm(&contra));
    found
        .into_iter()
        .enumerate()
        .map(|(i, (cell, finding))| {
            let deviates = cell.expect == Expect::Deviates;
            let (outcome, detail) = match finding {
                Finding::Skipped(why) => (Outcome::Skipped, why),
                Finding::Broken(why) => (Outcome::Fail, why),
                Finding::Decided { holds, detail } => (
                    match (holds, deviates) {
                        (true, false) => Outcome::Pass,
                        (true, true) => Outcome::XPass,
                        (false, false) => Outcome::Fail,
                        (false, true) => Outcome::XFail,
                    },
                    detail,
                ),
                Finding::Claim {
                    p_support,
                    p_contra,
                    difference,
                    from,
                    n,
                    detail,
                } => {
                    let k = claims.iter().position(|&c| c == i).unwrap_or(0);
                    let (ps, pc) = (support[k], contra[k]);
                    let a = cell.alpha;
                    let tests = format!(
                        "p = {} for, {} against; Holm-adjusted over {}: {}, {} (α = {a})",
                        p_text(p_support),
                        p_text(p_contra),
                        crate::count(m, "claim"),
                        p_text(ps),
                        p_text(pc)
                    );
                    if ps < a {
                        (
                            if deviates {
                                Outcome::XPass
                            } else {
                                Outcome::Pass
                            },
                            format!("{detail}; supported: {tests}"),
                        )
                    } else if pc < a {
                        (
                            if deviates {
                                Outcome::XFail
                            } else {
                                Outcome::Fail
                            },
                            format!("{detail}; contradicted: {tests}"),
                        )
                    } else {
                        // Holm's strictest step tests at α/m: what the run could surely have seen.
                        let level = a / m.max(1) as f64;
                        let could = difference.detectable(level, 0.8);
                        // A `within` claim's distance to decide is that of the difference to
                        // its margin; the others' that of the difference to the claim's point.
                        let effect = if matches!(cell.check, Check::Within(_)) {
                            (from - difference.diff.abs()).abs()
                        } else {
                            (difference.diff - from).abs()
                        };
                        let need = if effect > 0.0 && could.is_finite() && could > 0.0 {
                            let needed = (n as f64 * (could / effect).powi(2)).ceil();
                            if needed > 10_000.0 {
                                format!(
                                    "; the observed effect {effect:.4} would need more than \
                                     10,000 replicates per arm"
                                )
                            } else {
                                format!(
                                    "; the observed effect {effect:.4} would need about \
                                     {needed:.0} replicates per arm"
                                )
                            }
                        } else {
                            String::new()
                        };
                        (
                            Outcome::Inconclusive,
                            format!(
                                "{detail}; inconclusive: {tests}; detectable at 80% power \
                                 (one-sided, α/{m}): an effect of {could:.4}{need}{}",
                                if deviates {
                                    " (declared to deviate)"
                                } else {
                                    ""
                                }
                            ),
                        )
                    }
                }
            };
            Verdict {
                cell,
                outcome,
                detail,
            }
        })
        .collect()
}

/// Judges one cell alone (a family of one claim).
pub fn judge(cell: &Cell, ours: &BTreeMap<String, Measurement>) -> Verdict {
    let finding = assess(cell, ours);
    decide(vec![(cell.clone(), finding)])
        .pop()
        .unwrap_or_else(|| skipped(cell, "not judged"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(metric: &str, source: Source, check: &str, numbers: Option<(f64, f64, u64)>) -> Cell {
        let margin = if check == "equivalent" {
            Some(crate::Margin::Absolute(0.1))
        } else if check.starts_with("not_less") {
            Some(crate::Margin::Absolute(0.005))
        } else {
            None
        };
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
            replicates: Vec::new(),
            check: check.parse().unwrap(),
            alpha: 0.01,
            margin,
            expect: Expect::Holds,
            rationale: String::new(),
        }
    }

    fn values(v: &[f64]) -> Measurement {
        Measurement::of(
            v.iter()
                .enumerate()
                .map(|(i, &x)| (i as u64 + 1, x))
                .collect(),
        )
    }

    fn ours() -> BTreeMap<String, Measurement> {
        [
            ("data_order_imp", vec![3.3, 3.4, 3.35, 3.42, 3.38]),
            ("data_order_random", vec![8.1, 7.1, 8.7, 8.4, 8.2]),
            ("accuracy_imp", vec![0.883, 0.884, 0.882, 0.885, 0.884]),
            ("accuracy_random", vec![0.854, 0.856, 0.853, 0.857, 0.855]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), values(&v)))
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
        assert!(within(0.02).detail.contains("contradicted"));
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
            replicates: Vec::new(),
            check: "below:0.5".parse().unwrap(),
            alpha: 0.01,
            margin: None,
            expect: Expect::Holds,
            rationale: String::new(),
        };
        let ours = |v: &[f64]| -> BTreeMap<String, Measurement> {
            let m = Measurement::of(v.iter().enumerate().map(|(i, &x)| (i as u64, x)).collect());
            [("eb50_epoch_fraction".to_owned(), m)].into()
        };
        assert_eq!(
            judge(&c, &ours(&[0.3, 0.35, 0.25, 0.4, 0.3])).outcome,
            Outcome::Pass
        );
        // Below on average but not significantly so over three replicates: the run cannot decide,
        // and says what it could have detected.
        let v = judge(&c, &ours(&[0.3, 0.6, 0.45]));
        assert_eq!(v.outcome, Outcome::Inconclusive, "{}", v.detail);
        assert!(v.detail.contains("detectable at 80% power"), "{}", v.detail);
        assert_eq!(
            judge(&c, &ours(&[0.55, 0.6, 0.7])).outcome,
            Outcome::Inconclusive
        );
        // Significantly above: the opposite one-sided test rejects, the claim is contradicted.
        assert_eq!(judge(&c, &ours(&[0.7, 0.72, 0.71])).outcome, Outcome::Fail);
        c.check = "below:1".parse().unwrap();
        assert_eq!(c.check.to_string(), "below:1");
        assert!("below:x".parse::<Check>().is_err());
        // The other way: above 0.5, significantly, over replicates.
        c.check = "above:0.5".parse().unwrap();
        assert_eq!(c.check.to_string(), "above:0.5");
        assert_eq!(judge(&c, &ours(&[0.7, 0.75, 0.8])).outcome, Outcome::Pass);
        assert_eq!(
            judge(&c, &ours(&[0.7, 0.4, 0.55])).outcome,
            Outcome::Inconclusive
        );
        assert_eq!(judge(&c, &ours(&[0.3, 0.31, 0.29])).outcome, Outcome::Fail);
        assert!("above:inf".parse::<Check>().is_err());
    }
}

#[cfg(test)]
mod outcome_tests {
    use super::*;

    fn claim(check: &str, expect: Expect) -> Cell {
        Cell {
            row: "r".into(),
            dataset: "d".into(),
            metric: "a".into(),
            source: Source::Claim,
            scale: "quick".into(),
            device: String::new(),
            command: String::new(),
            mean: None,
            spread: None,
            n: None,
            replicates: Vec::new(),
            check: check.parse().unwrap(),
            alpha: 0.01,
            margin: check
                .starts_with("not_less")
                .then_some(crate::Margin::Absolute(0.01)),
            expect,
            rationale: "SET ahead of RigL here: +0.4 points, p = 0.005, n = 5".into(),
        }
    }

    fn run(a: &[f64], b: &[f64]) -> BTreeMap<String, Measurement> {
        let m = |v: &[f64]| {
            Measurement::of(
                v.iter()
                    .enumerate()
                    .map(|(i, &x)| (i as u64 + 1, x))
                    .collect(),
            )
        };
        [("a".to_owned(), m(a)), ("b".to_owned(), m(b))].into()
    }

    #[test]
    fn expectations_turn_findings_into_outcomes() {
        let higher = run(&[0.90, 0.91, 0.905, 0.908], &[0.80, 0.81, 0.805, 0.802]);
        let lower = run(&[0.80, 0.81, 0.805, 0.802], &[0.90, 0.91, 0.905, 0.908]);
        let noisy = run(&[0.80, 0.91, 0.85, 0.83], &[0.82, 0.90, 0.84, 0.86]);
        let outcome = |expect, ours: &BTreeMap<String, Measurement>| {
            judge(&claim("greater:b", expect), ours).outcome
        };
        assert_eq!(outcome(Expect::Holds, &higher), Outcome::Pass);
        assert_eq!(outcome(Expect::Holds, &lower), Outcome::Fail);
        assert_eq!(outcome(Expect::Holds, &noisy), Outcome::Inconclusive);
        assert_eq!(outcome(Expect::Deviates, &lower), Outcome::XFail);
        assert_eq!(outcome(Expect::Deviates, &higher), Outcome::XPass);
        assert_eq!(outcome(Expect::Deviates, &noisy), Outcome::Inconclusive);
        assert!(Outcome::XPass.unexpected() && Outcome::Fail.unexpected());
        assert!(!Outcome::XFail.unexpected() && !Outcome::Inconclusive.unexpected());
        // A metric the run did not measure is a failure whatever the expectation.
        let mut c = claim("greater:b", Expect::Deviates);
        c.metric = "c".into();
        assert_eq!(judge(&c, &higher).outcome, Outcome::Fail);
        // A snapshot declared to deviate: XFAIL while it does, XPASS once it matches.
        let mut snap = claim("equivalent", Expect::Deviates);
        snap.source = Source::Measured;
        snap.margin = Some(crate::Margin::Absolute(0.01));
        snap.replicates = vec![(1, 0.90), (2, 0.91), (3, 0.905), (4, 0.908)];
        let s = Measurement::of(snap.replicates.clone()).summary;
        (snap.mean, snap.spread, snap.n) = (Some(s.mean), Some(s.sd), Some(s.n));
        assert_eq!(judge(&snap, &higher).outcome, Outcome::XPass);
        assert_eq!(judge(&snap, &lower).outcome, Outcome::XFail);
    }

    #[test]
    fn not_less_is_a_non_inferiority_test_with_its_margin() {
        // 0.3 points below, margin 1 point: shown not inferior.
        let slightly_lower = run(
            &[0.9021, 0.9019, 0.9022, 0.9018],
            &[0.9050, 0.9052, 0.9049, 0.9051],
        );
        let v = judge(&claim("not_less:b", Expect::Holds), &slightly_lower);
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.detail);
        // 10 points below: inferior beyond the margin.
        let lower = run(&[0.80, 0.81, 0.805, 0.802], &[0.90, 0.91, 0.905, 0.908]);
        assert_eq!(
            judge(&claim("not_less:b", Expect::Holds), &lower).outcome,
            Outcome::Fail
        );
        // Noisy: a noisier run can no longer pass it for lack of power.
        let noisy = run(&[0.80, 0.91, 0.85, 0.83], &[0.82, 0.90, 0.84, 0.86]);
        assert_eq!(
            judge(&claim("not_less:b", Expect::Holds), &noisy).outcome,
            Outcome::Inconclusive
        );
    }

    #[test]
    fn claims_judged_together_are_holm_adjusted() {
        // Three claims with one-sided p of about 0.006, 0.008 and 0.23: alone, the first two pass
        // at α = 0.01; together, Holm tests the smallest at 0.01/3 and stops there.
        let ours: BTreeMap<String, Measurement> = [
            ("a", vec![1.0, 1.9, 1.5, 1.2, 2.4]),
            ("b", vec![0.0, 0.1, 0.2, 0.3, 0.4]),
        ]
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_owned(),
                Measurement::of(
                    v.iter()
                        .enumerate()
                        .map(|(i, &x)| (i as u64 + 1, x))
                        .collect(),
                ),
            )
        })
        .collect();
        let bounds = [0.5, 0.6, 1.4];
        let cells: Vec<Cell> = bounds
            .iter()
            .map(|b| claim(&format!("above:{b}"), Expect::Holds))
            .collect();
        let alone: Vec<f64> = cells
            .iter()
            .map(|c| match assess(c, &ours) {
                Finding::Claim { p_support, .. } => p_support,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(
            alone[0] < 0.01 && alone[1] < 0.01 && alone[2] > 0.1,
            "{alone:?}"
        );
        let together = decide(
            cells
                .iter()
                .map(|c| (c.clone(), assess(c, &ours)))
                .collect(),
        );
        let adjusted = holm(&alone);
        for (v, p) in together.iter().zip(&adjusted) {
            let expected = if *p < 0.01 {
                Outcome::Pass
            } else {
                Outcome::Inconclusive
            };
            assert_eq!(v.outcome, expected, "{}", v.detail);
            assert!(v.detail.contains("over 3 claims"), "{}", v.detail);
        }
        assert!(
            adjusted.iter().filter(|p| **p < 0.01).count() < 2,
            "{adjusted:?}"
        );
    }

    #[test]
    fn a_snapshot_pairs_replicates_when_it_can_and_says_when_it_cannot() {
        let mut snap = claim("equivalent", Expect::Holds);
        snap.source = Source::Measured;
        snap.margin = Some(crate::Margin::Absolute(0.02));
        snap.replicates = vec![(1, 0.80), (2, 0.85), (3, 0.90), (4, 0.82), (5, 0.88)];
        let s = Measurement::of(snap.replicates.clone()).summary;
        (snap.mean, snap.spread, snap.n) = (Some(s.mean), Some(s.sd), Some(s.n));
        let shifted = |by: f64, from: u64| -> BTreeMap<String, Measurement> {
            let v: Vec<(u64, f64)> = snap
                .replicates
                .iter()
                .map(|(r, x)| (r + from, x + by + 0.001 * (*r as f64 % 2.0)))
                .collect();
            [("a".to_owned(), Measurement::of(v))].into()
        };
        // The same replicates moved by 0.01: paired, inside ±0.02.
        let v = judge(&snap, &shifted(0.01, 0));
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.detail);
        assert!(
            v.detail.contains("paired over 5 replicates"),
            "{}",
            v.detail
        );
        // Moved by 0.03: outside, and the paired test sees it.
        assert_eq!(judge(&snap, &shifted(0.03, 0)).outcome, Outcome::Fail);
        // Other replicate numbers: unpaired, said so; the seeds' spread hides the 0.01.
        let v = judge(&snap, &shifted(0.01, 5));
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.detail);
        assert!(
            v.detail
                .contains("unpaired (Welch): the replicate sets differ"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn a_trend_is_tested_on_each_replicates_slope_over_the_rows() {
        let row = |v: &[(u64, f64)]| -> BTreeMap<String, Measurement> {
            [("a".to_owned(), Measurement::of(v.to_vec()))].into()
        };
        // Three rows; the replicates differ by far more than the trend (a shared offset per
        // replicate, as shared seeds give), which the blocks cancel: an unpaired comparison of
        // the ends would not see it.
        let k0 = row(&[(1, 0.10), (2, 0.30), (3, 0.50), (4, 0.70)]);
        let k1 = row(&[(1, 0.09), (2, 0.29), (3, 0.495), (4, 0.69)]);
        let k2 = row(&[(1, 0.08), (2, 0.27), (3, 0.49), (4, 0.68)]);
        let mut c = claim("decreasing", Expect::Holds);
        c.row = "k0>k1>k2".into();
        let outcome = |c: &Cell, rows: &[&BTreeMap<String, Measurement>]| {
            decide(vec![(c.clone(), assess_trend(c, rows))])
                .pop()
                .unwrap()
        };
        let v = outcome(&c, &[&k0, &k1, &k2]);
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.detail);
        assert!(v.detail.contains("k0 → k1 → k2"), "{}", v.detail);
        // The same rows in the other order rise: contradicted.
        let v = outcome(&c, &[&k2, &k1, &k0]);
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.detail);
        c.check = Check::Increasing;
        assert_eq!(outcome(&c, &[&k2, &k1, &k0]).outcome, Outcome::Pass);
        // The slope is the least-squares one: (1, 0, 2) on positions 0, 1, 2 has slope 0.5.
        assert!((slope(&[1.0, 0.0, 2.0]) - 0.5).abs() < 1e-12);
        assert!((slope(&[3.0, 1.0]) + 2.0).abs() < 1e-12);
        // Only replicates measured on every row count; fewer than two is nothing to judge.
        let lone = row(&[(1, 0.1), (9, 0.2)]);
        let v = outcome(&c, &[&k0, &lone]);
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.detail);
        assert!(v.detail.contains("n ≥ 2 replicates"), "{}", v.detail);
        // A metric a row did not measure names the row.
        let other: BTreeMap<String, Measurement> = BTreeMap::new();
        let v = outcome(&c, &[&k0, &other, &k2]);
        assert!(
            v.detail.contains("row `k1` measured no `a`"),
            "{}",
            v.detail
        );
    }
}
