//! Sample summaries, Welch's t-test, and the equivalence test (two one-sided tests) built on it.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean, sample standard deviation, extremes and size of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator; 0 for n = 1).
    pub sd: f64,
    pub n: u64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// The summary of `values` (at least one).
    pub fn of(values: &[f64]) -> Summary {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Summary {
            mean,
            sd: var.sqrt(),
            n: values.len() as u64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// A summary known only by its moments (a snapshot cell).
    pub fn from_moments(mean: f64, sd: f64, n: u64) -> Summary {
        Summary {
            mean,
            sd,
            n,
            min: mean,
            max: mean,
        }
    }

    /// The half-width of the two-sided (1 − α) confidence interval of the mean.
    pub fn ci_half_width(&self, alpha: f64) -> f64 {
        if self.n < 2 {
            return f64::INFINITY;
        }
        let df = (self.n - 1) as f64;
        t_quantile(1.0 - alpha / 2.0, df) * self.sd / (self.n as f64).sqrt()
    }
}

/// One metric of a run: its summary over replicates and each replicate's value by number (empty
/// for a metric derived from other metrics' means, which has no replicates of its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub summary: Summary,
    pub replicates: Vec<(u64, f64)>,
}

impl Measurement {
    /// Replicate values by number.
    pub fn of(replicates: Vec<(u64, f64)>) -> Measurement {
        let values: Vec<f64> = replicates.iter().map(|r| r.1).collect();
        Measurement {
            summary: Summary::of(&values),
            replicates,
        }
    }

    /// A single value derived from other metrics.
    pub fn derived(value: f64) -> Measurement {
        Measurement {
            summary: Summary::of(&[value]),
            replicates: Vec::new(),
        }
    }
}

/// The t statistic and degrees of freedom of a test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    pub t: f64,
    pub df: f64,
}

/// Welch's unequal-variance t-test of a against b: t = (m_a − m_b) / √(s_a²/n_a + s_b²/n_b), with
/// Welch–Satterthwaite degrees of freedom. `None` when either sample has fewer than 2 values.
/// Two samples without spread give t = 0 for equal means and ±∞ otherwise.
pub fn welch(a: &Summary, b: &Summary) -> Option<TTest> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (a.sd.powi(2) / a.n as f64, b.sd.powi(2) / b.n as f64);
    let se2 = va + vb;
    let diff = a.mean - b.mean;
    if se2 == 0.0 {
        let t = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return Some(TTest {
            t,
            df: (a.n + b.n - 2) as f64,
        });
    }
    let df = se2.powi(2) / (va.powi(2) / (a.n - 1) as f64 + vb.powi(2) / (b.n - 1) as f64);
    Some(TTest {
        t: diff / se2.sqrt(),
        df,
    })
}

/// The one-sample t-test of a against a constant: t = (m_a − bound) / (s_a/√n_a), n_a − 1 degrees
/// of freedom. `None` with fewer than 2 values; a sample without spread gives t = 0 at the bound
/// and ±∞ elsewhere.
pub fn one_sample(a: &Summary, bound: f64) -> Option<TTest> {
    if a.n < 2 {
        return None;
    }
    let se = a.sd / (a.n as f64).sqrt();
    let diff = a.mean - bound;
    let t = if se == 0.0 {
        if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        }
    } else {
        diff / se
    };
    Some(TTest {
        t,
        df: (a.n - 1) as f64,
    })
}

/// The outcome of an equivalence test of two means within ±`margin`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Equivalence {
    /// mean(a) − mean(b).
    pub diff: f64,
    /// The (1 − 2α) confidence interval of the difference (Welch's standard error and degrees of
    /// freedom).
    pub lo: f64,
    pub hi: f64,
    pub df: f64,
    /// The margin, in the units of the means.
    pub margin: f64,
}

impl Equivalence {
    /// Whether the interval lies inside (−margin, margin): both one-sided tests reject at α.
    pub fn equivalent(&self) -> bool {
        self.lo > -self.margin && self.hi < self.margin
    }
}

/// Schuirmann's two one-sided tests (TOST) of |mean(a) − mean(b)| < `margin` at level `alpha`,
/// in its confidence-interval form: equivalence is shown when the (1 − 2α) interval of the
/// difference lies inside ±margin. `None` when either sample has fewer than 2 values. Two samples
/// without spread give the degenerate interval [diff, diff].
pub fn equivalence(a: &Summary, b: &Summary, margin: f64, alpha: f64) -> Option<Equivalence> {
    let t = welch(a, b)?;
    let diff = a.mean - b.mean;
    let se = (a.sd.powi(2) / a.n as f64 + b.sd.powi(2) / b.n as f64).sqrt();
    let half = if se == 0.0 {
        0.0
    } else {
        t_quantile(1.0 - alpha, t.df) * se
    };
    Some(Equivalence {
        diff,
        lo: diff - half,
        hi: diff + half,
        df: t.df,
        margin,
    })
}

/// A difference of means with its standard error and degrees of freedom: what every test of
/// [`crate::verdict`] rests on. Built from two independent samples (Welch), from paired
/// differences, or from one sample against a constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    /// The estimated difference (mean(a) − mean(b), the mean paired difference, or mean − bound).
    pub diff: f64,
    /// Its standard error (0 for samples without spread).
    pub se: f64,
    pub df: f64,
}

impl Difference {
    /// Two independent samples: Welch's standard error and Welch–Satterthwaite degrees of
    /// freedom. `None` when either has fewer than 2 values.
    pub fn welch(a: &Summary, b: &Summary) -> Option<Difference> {
        let t = welch(a, b)?;
        let se = (a.sd.powi(2) / a.n as f64 + b.sd.powi(2) / b.n as f64).sqrt();
        Some(Difference {
            diff: a.mean - b.mean,
            se,
            df: t.df,
        })
    }

    /// Paired samples, `pairs` = (a_i, b_i) of the same replicate: the one-sample test of the
    /// differences a_i − b_i, n − 1 degrees of freedom. Whatever the replicates share (seeds,
    /// data order, W0) cancels, so the standard error is that of the differences alone. `None`
    /// with fewer than 2 pairs.
    pub fn paired(pairs: &[(f64, f64)]) -> Option<Difference> {
        if pairs.len() < 2 {
            return None;
        }
        let d: Vec<f64> = pairs.iter().map(|(a, b)| a - b).collect();
        let s = Summary::of(&d);
        Some(Difference {
            diff: s.mean,
            se: s.sd / (s.n as f64).sqrt(),
            df: (s.n - 1) as f64,
        })
    }

    /// One sample against a constant: mean − bound, s/√n, n − 1 degrees of freedom.
    pub fn one_sample(a: &Summary, bound: f64) -> Option<Difference> {
        (a.n >= 2).then(|| Difference {
            diff: a.mean - bound,
            se: a.sd / (a.n as f64).sqrt(),
            df: (a.n - 1) as f64,
        })
    }

    /// The t statistic of H0: difference = `x` (±∞ or 0 without spread).
    fn t(&self, x: f64) -> f64 {
        let d = self.diff - x;
        if self.se == 0.0 {
            if d == 0.0 {
                0.0
            } else {
                d.signum() * f64::INFINITY
            }
        } else {
            d / self.se
        }
    }

    /// p-value of H1: difference > `x`.
    pub fn p_above(&self, x: f64) -> f64 {
        1.0 - cdf(self.t(x), self.df)
    }

    /// p-value of H1: difference < `x`.
    pub fn p_below(&self, x: f64) -> f64 {
        cdf(self.t(x), self.df)
    }

    /// The (1 − 2α) interval's half-width: t(1 − α, df)·se.
    pub fn half_width(&self, alpha: f64) -> f64 {
        if self.se == 0.0 {
            0.0
        } else {
            t_quantile(1.0 - alpha, self.df) * self.se
        }
    }

    /// Schuirmann's two one-sided tests of |difference| < `margin` in interval form.
    pub fn equivalence(&self, margin: f64, alpha: f64) -> Equivalence {
        let half = self.half_width(alpha);
        Equivalence {
            diff: self.diff,
            lo: self.diff - half,
            hi: self.diff + half,
            df: self.df,
            margin,
        }
    }

    /// The smallest true difference a one-sided test at level `alpha` detects with probability
    /// `power` at this standard error: (t(1 − α) + t(power))·se, degrees of freedom as measured.
    pub fn detectable(&self, alpha: f64, power: f64) -> f64 {
        (t_quantile(1.0 - alpha, self.df) + t_quantile(power, self.df)) * self.se
    }
}

/// Holm's step-down adjustment of `p` (any order): the i-th smallest becomes
/// max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎). Rejecting every hypothesis whose adjusted p-value is
/// below α controls the family-wise error rate at α (Holm 1979), under any dependence.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let adjusted = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adjusted);
        out[i] = running;
    }
    out
}

fn cdf(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    StudentsT::new(0.0, 1.0, df)
        .map(|d| d.cdf(t))
        .unwrap_or(f64::NAN)
}

/// The t quantile of probability `p` with `df` degrees of freedom.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .map(|d| d.inverse_cdf(p))
        .unwrap_or(f64::NAN)
}

impl TTest {
    /// p-value of H1: the means differ.
    pub fn p_two_sided(&self) -> f64 {
        (2.0 * cdf(-self.t.abs(), self.df)).min(1.0)
    }

    /// p-value of H1: mean(a) > mean(b).
    pub fn p_greater(&self) -> f64 {
        1.0 - cdf(self.t, self.df)
    }

    /// p-value of H1: mean(a) < mean(b).
    pub fn p_less(&self) -> f64 {
        cdf(self.t, self.df)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_sample_test_matches_the_closed_form() {
        // mean 0.32, sd √0.00325, so t = −0.18 / (sd/√5) = −7.0602 with 4 degrees of freedom;
        // Student's t CDF with ν = 4 in closed form, ½ + ⅜·u·(1 − t²/(12(1 + t²/4))) with
        // u = t/√(1 + t²/4), gives p = 0.00106144.
        let s = Summary::of(&[0.30, 0.35, 0.25, 0.40, 0.30]);
        let t = one_sample(&s, 0.5).unwrap();
        assert!((t.t + 7.0602).abs() < 1e-4, "{t:?}");
        assert_eq!(t.df, 4.0);
        assert!((t.p_less() - 0.00106144).abs() < 1e-7, "{}", t.p_less());
        let flat = Summary::of(&[0.4, 0.4, 0.4]);
        assert!(one_sample(&flat, 0.5).unwrap().p_less() < 1e-12);
        assert!(
            one_sample(&Summary::of(&[0.5, 0.5, 0.5]), 0.5)
                .unwrap()
                .p_less()
                > 0.01
        );
        assert!(one_sample(&Summary::of(&[0.4]), 0.5).is_none());
    }

    #[test]
    fn welch_matches_a_textbook_case() {
        // scipy.stats.ttest_ind(a, b, equal_var=False) on these samples (scipy 1.17.1):
        // t = −3.6595635072083517, df = 7.959646181706763, p = 0.006461263160328216;
        // alternative='less': p = 0.003230631580164108. stats.t.ppf(0.975, 4) = 2.7764451051977934.
        let a = Summary::of(&[19.1, 20.3, 20.0, 21.2, 19.8]);
        let b = Summary::of(&[21.9, 22.4, 20.9, 23.0, 21.4]);
        let t = welch(&a, &b).unwrap();
        assert!((t.t + 3.659_563_507_208_351_7).abs() < 1e-12, "{t:?}");
        assert!((t.df - 7.959_646_181_706_763).abs() < 1e-9, "{t:?}");
        assert!(
            (t.p_two_sided() - 0.006_461_263_160_328_216).abs() < 1e-9,
            "{}",
            t.p_two_sided()
        );
        assert!((t.p_less() - 0.003_230_631_580_164_108).abs() < 1e-9);
        assert!((t.p_greater() + t.p_less() - 1.0).abs() < 1e-12);
        assert!((t_quantile(0.975, 4.0) - 2.776_445_105_197_793_4).abs() < 1e-6);
    }

    #[test]
    fn equivalence_matches_the_interval_form_of_tost() {
        // The textbook pair above: diff = −1.84, se = √(0.587/5 + 0.677/5) = 0.50279, df = 7.96;
        // t(0.95, 7.96) = 1.8604 (between 1.8595 at df 8 and 1.8946 at df 7): 90% CI
        // [−2.7754, −0.9046].
        let a = Summary::of(&[19.1, 20.3, 20.0, 21.2, 19.8]);
        let b = Summary::of(&[21.9, 22.4, 20.9, 23.0, 21.4]);
        let e = equivalence(&a, &b, 3.0, 0.05).unwrap();
        assert!((e.diff + 1.84).abs() < 1e-12, "{e:?}");
        assert!(
            (e.lo + 2.7754).abs() < 2e-3 && (e.hi + 0.9046).abs() < 2e-3,
            "{e:?}"
        );
        assert!(e.equivalent());
        // A margin the interval crosses is not shown, however small the difference of means.
        assert!(!equivalence(&a, &b, 2.0, 0.05).unwrap().equivalent());
        // Equal means with a large spread: not shown at a small margin (no power), shown at a
        // wide one: equivalence is never "no significant difference".
        let wide = Summary::from_moments(20.0, 5.0, 3);
        let same = Summary::from_moments(20.0, 5.0, 3);
        assert!(!equivalence(&wide, &same, 1.0, 0.05).unwrap().equivalent());
        assert!(equivalence(&wide, &same, 20.0, 0.05).unwrap().equivalent());
        assert!(equivalence(&Summary::of(&[1.0]), &same, 1.0, 0.05).is_none());
    }

    #[test]
    fn degenerate_samples() {
        let one = Summary::of(&[1.0]);
        assert!(welch(&one, &Summary::of(&[1.0, 2.0])).is_none());
        let flat = Summary::of(&[2.0, 2.0, 2.0]);
        assert_eq!(welch(&flat, &flat).unwrap().p_two_sided(), 1.0);
        let higher = Summary::of(&[3.0, 3.0]);
        assert_eq!(welch(&higher, &flat).unwrap().p_greater(), 0.0);
        assert_eq!(flat.ci_half_width(0.05), 0.0);
    }

    #[test]
    fn holm_matches_hand_computed_adjusted_p_values() {
        // Sorted 0.01, 0.02, 0.03, 0.04 with m = 4: 4·0.01 = 0.04, 3·0.02 = 0.06, 2·0.03 = 0.06,
        // 1·0.04 = 0.04 → running maximum 0.04, 0.06, 0.06, 0.06. Given out of order.
        let got = holm(&[0.03, 0.01, 0.04, 0.02]);
        let want = [0.06, 0.04, 0.06, 0.06];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{got:?}");
        }
        // Capped at 1; one hypothesis is left alone.
        assert_eq!(holm(&[0.5, 0.6]), vec![1.0, 1.0]);
        assert_eq!(holm(&[0.003]), vec![0.003]);
        // 0.001, 0.012, 0.3 (m = 3): 0.003, 0.024, 0.3.
        let got = holm(&[0.3, 0.012, 0.001]);
        for (g, w) in got.iter().zip([0.3, 0.024, 0.003]) {
            assert!((g - w).abs() < 1e-15, "{got:?}");
        }
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn pairing_removes_what_the_replicates_share() {
        // Five replicates whose values spread by sd 0.041 between seeds; a rerun moved each by
        // 0.010 ± 0.001. Welch sees the seeds' spread: difference 0.010, se √(2·0.0017/5) = 0.026,
        // t = 0.38. The paired test sees only the shift's noise: se = sd(d)/√5 = 0.000316,
        // t = 31.6.
        let snapshot = [0.80, 0.85, 0.90, 0.82, 0.88];
        let shift = [0.010, 0.011, 0.009, 0.010, 0.010];
        let ours: Vec<f64> = snapshot.iter().zip(shift).map(|(s, d)| s + d).collect();
        let unpaired = Difference::welch(&Summary::of(&ours), &Summary::of(&snapshot)).unwrap();
        let pairs: Vec<(f64, f64)> = ours.iter().copied().zip(snapshot).collect();
        let paired = Difference::paired(&pairs).unwrap();
        assert!((paired.diff - 0.010).abs() < 1e-12 && (unpaired.diff - 0.010).abs() < 1e-12);
        assert!((paired.se - 0.000_316_2).abs() < 1e-6, "{paired:?}");
        assert!((unpaired.se - 0.026).abs() < 1e-3, "{unpaired:?}");
        assert!(paired.p_above(0.0) < 1e-4);
        assert!(unpaired.p_above(0.0) > 0.3);
        // Equivalence within ±0.02: shown paired (interval [0.0090, 0.0110]), not unpaired.
        assert!(paired.equivalence(0.02, 0.05).equivalent());
        assert!(!unpaired.equivalence(0.02, 0.05).equivalent());
        // A regression of 0.03 against a margin of 0.02: the paired test shows it lies beyond the
        // margin (p < 0.001); the unpaired one cannot tell (p > 0.3).
        let moved: Vec<(f64, f64)> = pairs.iter().map(|(a, b)| (a + 0.02, *b)).collect();
        let paired = Difference::paired(&moved).unwrap();
        let ours: Vec<f64> = moved.iter().map(|p| p.0).collect();
        let unpaired = Difference::welch(&Summary::of(&ours), &Summary::of(&snapshot)).unwrap();
        assert!(paired.p_above(0.02) < 1e-3, "{}", paired.p_above(0.02));
        assert!(unpaired.p_above(0.02) > 0.3, "{}", unpaired.p_above(0.02));
        // What each could detect at 80% power, one-sided at 5%: far less paired.
        let (p, u) = (paired.detectable(0.05, 0.8), unpaired.detectable(0.05, 0.8));
        assert!(p * 20.0 < u, "{p} {u}");
    }

    #[test]
    fn the_detectable_effect_is_the_sum_of_two_quantiles_times_the_error() {
        // se 0.01, df 8: t(0.99, 8) = 2.896459, t(0.8, 8) = 0.888889 → 0.03785.
        let d = Difference {
            diff: 0.0,
            se: 0.01,
            df: 8.0,
        };
        assert!(
            (d.detectable(0.01, 0.8) - 0.037_853).abs() < 1e-5,
            "{}",
            d.detectable(0.01, 0.8)
        );
    }
}
