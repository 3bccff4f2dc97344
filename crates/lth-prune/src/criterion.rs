//! The mask criteria of "Deconstructing Lottery Tickets" (Zhou, Lan, Liu & Yosinski, NeurIPS 2019;
//! uber-research/deconstructing-lottery-tickets, `get_weight_init.py`): which weights a level keeps,
//! scored from the weights a training started from (`w_i`) and ended with (`w_f`), the largest
//! score kept.
//!
//! | criterion | score |
//! |---|---|
//! | `large_final` (IMP's) | \|w_f\| |
//! | `small_final` | −\|w_f\| |
//! | `large_init` | \|w_i\| |
//! | `small_init` | −\|w_i\| |
//! | `magnitude_increase` | \|w_f\| − \|w_i\| |
//! | `movement` | \|w_f − w_i\| |
//!
//! Each has a `_same_sign` variant, which ranks every weight whose sign changed during training
//! below every weight whose sign did not, and a `_diff_sign` variant, the other way round. The
//! reference zeroes the demoted scores; here they are shifted below every other score (which also
//! holds for criteria whose scores can be negative) and keep their order among themselves. Ties
//! are broken by position, as every lth selection (the reference breaks them at random).
//!
//! ```
//! use lth_prune::Criterion;
//! let c: Criterion = "magnitude_increase_same_sign".parse()?;
//! assert!(c.needs_init());
//! assert_eq!(c.to_string(), "magnitude_increase_same_sign");
//! # Ok::<(), String>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use lth_models::Named;

use crate::{PruneError, Result};

/// What a criterion measures of `w_i` and `w_f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Base {
    #[default]
    LargeFinal,
    SmallFinal,
    LargeInit,
    SmallInit,
    MagnitudeIncrease,
    Movement,
}

/// The sign condition of a criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignRule {
    /// Every weight scored as it is.
    #[default]
    Any,
    /// Weights whose sign changed rank below all others.
    Same,
    /// Weights whose sign did not change rank below all others.
    Different,
}

/// A mask criterion: a base score and a sign condition. Serialised as its name
/// (`large_final`, `movement_diff_sign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Criterion {
    pub base: Base,
    pub sign: SignRule,
}

const BASES: [(Base, &str); 6] = [
    (Base::LargeFinal, "large_final"),
    (Base::SmallFinal, "small_final"),
    (Base::LargeInit, "large_init"),
    (Base::SmallInit, "small_init"),
    (Base::MagnitudeIncrease, "magnitude_increase"),
    (Base::Movement, "movement"),
];

impl Criterion {
    /// IMP's criterion, |w_f|.
    pub const LARGE_FINAL: Criterion = Criterion {
        base: Base::LargeFinal,
        sign: SignRule::Any,
    };

    /// Every criterion's name.
    pub fn names() -> Vec<String> {
        BASES
            .iter()
            .flat_map(|(_, b)| {
                ["", "_same_sign", "_diff_sign"]
                    .into_iter()
                    .map(move |s| format!("{b}{s}"))
            })
            .collect()
    }

    /// Whether the score reads the starting weights `w_i` (everything but `large_final` and
    /// `small_final` without a sign condition).
    pub fn needs_init(&self) -> bool {
        !(matches!(self.base, Base::LargeFinal | Base::SmallFinal) && self.sign == SignRule::Any)
    }

    /// One score per weight of `last` (`w_f`), in its order; `first` (`w_i`) must hold every
    /// one of them, with the same shape, when the criterion [needs it](Self::needs_init).
    pub fn score(&self, last: &[(String, Tensor)], first: &[(String, Tensor)]) -> Result<Named> {
        let mut scores = Vec::new();
        for (name, wf) in last {
            let wf = wf.detach().to_kind(Kind::Float);
            if !self.needs_init() {
                scores.push((name.clone(), self.base_score(&wf, &wf), None));
                continue;
            }
            let wi = first
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.detach().to_kind(Kind::Float).to_device(wf.device()))
                .ok_or_else(|| {
                    PruneError::Invalid(format!(
                        "criterion {self} needs the starting weights of {name}"
                    ))
                })?;
            if wi.size() != wf.size() {
                return Err(PruneError::Invalid(format!(
                    "criterion {self}: the starting weights of {name} have shape {:?}, the final \
                     ones {:?}",
                    wi.size(),
                    wf.size()
                )));
            }
            let same = wi.sign().eq_tensor(&wf.sign());
            let demoted = match self.sign {
                SignRule::Any => None,
                SignRule::Same => Some(same.logical_not()),
                SignRule::Different => Some(same),
            };
            scores.push((name.clone(), self.base_score(&wi, &wf), demoted));
        }
        // Demoted weights rank below every other, in every layer (selections need finite
        // scores): shifted down by more than the spread of all scores, keeping their order.
        if self.sign == SignRule::Any {
            return Ok(scores
                .into_iter()
                .map(|(n, s, _)| (n, s))
                .collect::<Vec<_>>()
                .into());
        }
        let spread = scores
            .iter()
            .map(|(_, s, _)| s.abs().max().double_value(&[]))
            .fold(0.0f64, f64::max);
        let shift = 2.0 * spread + 1.0;
        Ok(scores
            .into_iter()
            .map(|(name, s, demoted)| match demoted {
                Some(d) => {
                    let low = &s - shift;
                    (name, low.where_self(&d, &s))
                }
                None => (name, s),
            })
            .collect::<Vec<_>>()
            .into())
    }

    fn base_score(&self, wi: &Tensor, wf: &Tensor) -> Tensor {
        match self.base {
            Base::LargeFinal => wf.abs(),
            Base::SmallFinal => -wf.abs(),
            Base::LargeInit => wi.abs(),
            Base::SmallInit => -wi.abs(),
            Base::MagnitudeIncrease => wf.abs() - wi.abs(),
            Base::Movement => (wf - wi).abs(),
        }
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = BASES
            .iter()
            .find(|(b, _)| *b == self.base)
            .map_or("large_final", |(_, n)| n);
        let sign = match self.sign {
            SignRule::Any => "",
            SignRule::Same => "_same_sign",
            SignRule::Different => "_diff_sign",
        };
        write!(f, "{base}{sign}")
    }
}

impl std::str::FromStr for Criterion {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let name = s.replace('-', "_");
        let (rest, sign) = if let Some(r) = name.strip_suffix("_same_sign") {
            (r, SignRule::Same)
        } else if let Some(r) = name.strip_suffix("_diff_sign") {
            (r, SignRule::Different)
        } else {
            (name.as_str(), SignRule::Any)
        };
        BASES
            .iter()
            .find(|(_, n)| *n == rest)
            .map(|&(base, _)| Criterion { base, sign })
            .ok_or_else(|| {
                format!(
                    "unknown criterion `{s}`: expected one of {}",
                    Criterion::names().join(", ")
                )
            })
    }
}

impl Serialize for Criterion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Criterion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
