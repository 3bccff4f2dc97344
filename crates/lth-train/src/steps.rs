//! Training lengths and step positions written as the papers write them: `160ep`, `500it`, `2ep100it`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of epochs plus a number of iterations; resolved to iterations once the number of
/// iterations per epoch is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Steps {
    pub epochs: u64,
    pub iterations: u64,
}

impl Steps {
    /// `n` iterations.
    pub const fn it(n: u64) -> Steps {
        Steps {
            epochs: 0,
            iterations: n,
        }
    }

    /// `n` epochs.
    pub const fn ep(n: u64) -> Steps {
        Steps {
            epochs: n,
            iterations: 0,
        }
    }

    /// The step count in iterations, given the iterations per epoch (saturating at `u64::MAX`;
    /// [`Steps::checked_iterations`] says when it would not fit).
    pub fn iterations(self, per_epoch: u64) -> u64 {
        self.checked_iterations(per_epoch).unwrap_or(u64::MAX)
    }

    /// The step count in iterations, or `None` when it does not fit in a `u64`.
    pub fn checked_iterations(self, per_epoch: u64) -> Option<u64> {
        self.epochs
            .checked_mul(per_epoch)?
            .checked_add(self.iterations)
    }

    /// This many steps `k` times over (epochs and iterations alike, saturating).
    pub fn times(self, k: u64) -> Steps {
        Steps {
            epochs: self.epochs.saturating_mul(k),
            iterations: self.iterations.saturating_mul(k),
        }
    }

    /// Whether this is zero steps.
    pub fn is_zero(self) -> bool {
        self.epochs == 0 && self.iterations == 0
    }
}

impl fmt::Display for Steps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.epochs, self.iterations) {
            (0, it) => write!(f, "{it}it"),
            (ep, 0) => write!(f, "{ep}ep"),
            (ep, it) => write!(f, "{ep}ep{it}it"),
        }
    }
}

impl FromStr for Steps {
    type Err = String;

    fn from_str(s: &str) -> Result<Steps, String> {
        let bad = || format!("bad step count `{s}`: expected a form like 160ep, 500it or 2ep100it");
        let number = |t: &str| t.parse::<u64>().map_err(|_| bad());
        let t = s.trim();
        if t.starts_with('-') {
            return Err(format!(
                "bad step count `{s}`: a number of steps cannot be negative"
            ));
        }
        if t == "0" {
            return Ok(Steps::default());
        }
        let (epochs, rest) = match t.split_once("ep") {
            Some((e, rest)) => (number(e)?, rest),
            None => (0, t),
        };
        let iterations = match rest {
            "" if t.ends_with("ep") => 0,
            r => number(r.strip_suffix("it").ok_or_else(bad)?)?,
        };
        Ok(Steps { epochs, iterations })
    }
}

/// A comma-separated list of step counts (`80ep,120ep`), or `none` (an empty list): what
/// `--milestones` takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepList(pub Vec<Steps>);

impl FromStr for StepList {
    type Err = String;

    fn from_str(s: &str) -> Result<StepList, String> {
        let t = s.trim();
        if t.is_empty() || t == "none" {
            return Ok(StepList::default());
        }
        t.split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(StepList)
    }
}

impl Serialize for Steps {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Steps, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(u64, u64), &str>) {
        let got = input.parse::<Steps>().map(|s| (s.epochs, s.iterations));
        match (got, expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "{input}"),
            (Err(g), Err(e)) => assert!(g.contains(e), "{g}"),
            (g, e) => panic!("{input}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn parses_the_papers_forms() {
        check("160ep", Ok((160, 0)));
        check("500it", Ok((0, 500)));
        check("2ep100it", Ok((2, 100)));
        check("0", Ok((0, 0)));
        check("0it", Ok((0, 0)));
        check("40", Err("bad step count `40`"));
        check("ep", Err("bad step count"));
        check("2ep3", Err("bad step count"));
        check("-1it", Err("bad step count"));
        check("1.5ep", Err("bad step count"));
    }

    #[test]
    fn displays_round_trip_and_resolve() {
        for s in ["160ep", "500it", "2ep100it", "0it"] {
            assert_eq!(s.parse::<Steps>().unwrap().to_string(), s);
        }
        assert_eq!("2ep100it".parse::<Steps>().unwrap().iterations(469), 1038);
    }
}
