//! Progress over long work: units done out of the total, time elapsed, and an estimate of the time
//! left at the pace of the units that needed work. One plain line per finished unit, so that it
//! reads the same in a terminal, a CI log and a Slurm output file.

use std::time::{Duration, Instant};

/// A count of units with their pace. Units found finished (reused from the run store) count as
/// done at once and do not enter the pace.
#[derive(Debug)]
pub struct Pace {
    what: &'static str,
    total: f64,
    done: f64,
    start: Instant,
    /// Time spent and weight done on units that needed work.
    worked: Duration,
    worked_weight: f64,
}

impl Pace {
    /// `total` units (or, with weights, their summed weight) of `what` (`stages`, `targets`).
    pub fn new(what: &'static str, total: f64) -> Pace {
        Pace {
            what,
            total,
            done: 0.0,
            start: Instant::now(),
            worked: Duration::ZERO,
            worked_weight: 0.0,
        }
    }

    /// A unit of `weight` found already finished: done, and out of the pace.
    pub fn reused(&mut self, weight: f64) {
        self.done += weight;
    }

    /// A unit of `weight` that worked since `began` is finished.
    pub fn worked(&mut self, weight: f64, began: Instant) {
        self.worked_for(weight, began.elapsed());
    }

    /// A unit of `weight` that took `spent` of the machine is finished: with `n` units side by
    /// side, each is charged its time divided by `n`, so that the estimate is of wall time.
    pub fn worked_for(&mut self, weight: f64, spent: Duration) {
        self.done += weight;
        self.worked += spent;
        self.worked_weight += weight;
    }

    /// `3/14 stages, 2m10s elapsed, about 6m left`, or without the estimate until a unit worked.
    pub fn line(&self) -> String {
        self.line_at(self.start.elapsed())
    }

    fn line_at(&self, elapsed: Duration) -> String {
        let mut s = format!(
            "{}/{} {}, {} elapsed",
            number(self.done),
            number(self.total),
            self.what,
            duration(elapsed)
        );
        if self.worked_weight > 0.0 && self.done < self.total {
            let left = self.worked.as_secs_f64() / self.worked_weight * (self.total - self.done);
            s.push_str(&format!(
                ", about {} left",
                duration(Duration::from_secs_f64(left))
            ));
        }
        s
    }
}

/// A count as an integer when it is one, else with one decimal.
fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// `45s`, `4m10s`, `1h02m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The estimate extrapolates the pace of the units that worked; reused units are done but do
    /// not speed it up.
    #[test]
    fn the_estimate_follows_the_pace_of_the_units_that_worked() {
        let mut p = Pace::new("stages", 10.0);
        assert_eq!(p.line_at(Duration::from_secs(5)), "0/10 stages, 5s elapsed");
        p.reused(4.0);
        assert_eq!(p.line_at(Duration::from_secs(5)), "4/10 stages, 5s elapsed");
        // Two units in 120 s: 60 s each, 4 left.
        p.done += 2.0;
        p.worked = Duration::from_secs(120);
        p.worked_weight = 2.0;
        assert_eq!(
            p.line_at(Duration::from_secs(125)),
            "6/10 stages, 2m05s elapsed, about 4m00s left"
        );
        p.done = 10.0;
        assert_eq!(
            p.line_at(Duration::from_secs(4000)),
            "10/10 stages, 1h06m elapsed"
        );
        let mut w = Pace::new("minutes of targets", 2.5);
        w.reused(0.5);
        assert_eq!(
            w.line_at(Duration::ZERO),
            "0.5/2.5 minutes of targets, 0s elapsed"
        );
    }
}
