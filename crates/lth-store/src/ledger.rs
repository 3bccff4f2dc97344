//! Where a process's time goes: training, evaluation, pruning and file I/O, each counted once.
//!
//! The crates that do the work open a [`span`] around it (the step loop, an evaluation pass, a
//! file read or write); a span's own time is the time it was open less the spans opened inside it
//! (a checkpoint written during training counts as I/O, not training). [`spent`] reads the totals
//! so far, summed over threads; the difference of two readings is what happened between them, which
//! is how `lth repro` reports a target's shares of its wall time.
//!
//! On CUDA, work is queued and the host waits where it next reads a result, so time moves to
//! whoever synchronises (a step's kernels may be counted in the evaluation that follows); on the
//! CPU every operation finishes before it returns and the split is exact up to the clock.
//!
//! ```
//! use lth_store::ledger::{self, Activity};
//! let before = ledger::spent();
//! {
//!     let _training = ledger::span(Activity::Training);
//!     let _io = ledger::span(Activity::Io); // a checkpoint inside the step loop
//! }
//! let d = ledger::spent() - before;
//! assert!(d.training <= d.total() && d.io <= d.total());
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a span of time was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Optimisation steps (forward, backward, update, and what a method does inside a step).
    Training,
    /// Forward passes without gradients to measure a network (and BatchNorm statistics
    /// re-estimated for it).
    Evaluation,
    /// Scoring weights and selecting the ones that stay: a lottery level's pruning, pruning at
    /// initialisation (SNIP, GraSP, SynFlow's rounds). A sparse method's mask updates inside
    /// training steps (RigL's drop and grow) count as training.
    Pruning,
    /// Reading and writing files: checkpoints, masks, logs, digests, datasets.
    Io,
}

impl Activity {
    const ALL: [Activity; 4] = [
        Activity::Training,
        Activity::Evaluation,
        Activity::Pruning,
        Activity::Io,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

static NANOS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

thread_local! {
    /// For each span open on this thread, innermost last: the time of the spans closed inside it.
    static OPEN: RefCell<Vec<Duration>> = const { RefCell::new(Vec::new()) };
}

/// An open span; its own time is counted when it is dropped.
#[derive(Debug)]
#[must_use = "a span counts the time until it is dropped"]
pub struct Span {
    activity: Activity,
    began: Instant,
}

/// Opens a span of `activity` until the returned guard is dropped.
pub fn span(activity: Activity) -> Span {
    OPEN.with(|open| open.borrow_mut().push(Duration::ZERO));
    Span {
        activity,
        began: Instant::now(),
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        let elapsed = self.began.elapsed();
        let inner = OPEN.with(|open| {
            let mut open = open.borrow_mut();
            let inner = open.pop().unwrap_or_default();
            if let Some(outer) = open.last_mut() {
                *outer += elapsed;
            }
            inner
        });
        let own = elapsed.saturating_sub(inner);
        NANOS[self.activity.index()].fetch_add(
            u64::try_from(own.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Time counted by closed spans, by activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub training: Duration,
    pub evaluation: Duration,
    pub pruning: Duration,
    pub io: Duration,
}

impl Spent {
    /// The four together.
    pub fn total(&self) -> Duration {
        self.training + self.evaluation + self.pruning + self.io
    }

    /// Each activity's time multiplied by `factor` (not below zero): several processes' summed
    /// time brought to one wall time, so that its shares are their average.
    pub fn scaled(&self, factor: f64) -> Spent {
        let f = |d: Duration| d.mul_f64(factor.max(0.0));
        Spent {
            training: f(self.training),
            evaluation: f(self.evaluation),
            pruning: f(self.pruning),
            io: f(self.io),
        }
    }

    /// `training 71%, evaluation 18%, pruning 2%, I/O 3%, other 6%` of `wall` (other: what no span
    /// counted, such as planning, building networks, and measuring distances and angles).
    pub fn shares(&self, wall: Duration) -> String {
        let pct = |d: Duration| percent(d, wall);
        let other = wall.saturating_sub(self.total());
        format!(
            "training {:.0}%, evaluation {:.0}%, pruning {:.0}%, I/O {:.0}%, other {:.0}%",
            pct(self.training),
            pct(self.evaluation),
            pct(self.pruning),
            pct(self.io),
            pct(other)
        )
    }
}

/// `part` as a percentage of `wall` (0 for no wall time).
pub fn percent(part: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        100.0 * part.as_secs_f64() / wall.as_secs_f64()
    }
}

/// What two processes (or two stretches) spent, activity by activity.
impl std::ops::Add for Spent {
    type Output = Spent;
    fn add(self, rhs: Spent) -> Spent {
        Spent {
            training: self.training + rhs.training,
            evaluation: self.evaluation + rhs.evaluation,
            pruning: self.pruning + rhs.pruning,
            io: self.io + rhs.io,
        }
    }
}

impl std::ops::Sub for Spent {
    type Output = Spent;
    fn sub(self, rhs: Spent) -> Spent {
        Spent {
            training: self.training.saturating_sub(rhs.training),
            evaluation: self.evaluation.saturating_sub(rhs.evaluation),
            pruning: self.pruning.saturating_sub(rhs.pruning),
            io: self.io.saturating_sub(rhs.io),
        }
    }
}

/// The time closed spans have counted in this process so far.
pub fn spent() -> Spent {
    let read = |a: Activity| Duration::from_nanos(NANOS[a.index()].load(Ordering::Relaxed));
    let [training, evaluation, pruning, io] = Activity::ALL.map(read);
    Spent {
        training,
        evaluation,
        pruning,
        io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(d: Duration) {
        let t = Instant::now();
        while t.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    // Other tests in this process may count time concurrently, so the checks are on this thread's
    // work with a whole-process reading as an upper bound only where nothing else can add less.
    #[test]
    fn a_span_inside_another_is_counted_once_as_its_own_activity() {
        let before = spent();
        let began = Instant::now();
        {
            let _t = span(Activity::Training);
            busy(Duration::from_millis(20));
            {
                let _io = span(Activity::Io);
                busy(Duration::from_millis(40));
                // The same activity nested: still once.
                let _inner = span(Activity::Io);
                busy(Duration::from_millis(20));
            }
            let _evaluation = span(Activity::Evaluation);
            busy(Duration::from_millis(60));
        }
        let wall = began.elapsed();
        let d = spent() - before;
        // Each activity has at least this thread's own time in it...
        assert!(d.training >= Duration::from_millis(20), "{d:?}");
        assert!(d.io >= Duration::from_millis(60), "{d:?}");
        assert!(d.evaluation >= Duration::from_millis(60), "{d:?}");
        // ...and training holds none of the nested time: had the inner spans been counted in
        // it as well, it would be at least the whole 140 ms (its own 20 ms may stretch on a
        // loaded machine, by far less than the 120 ms this leaves).
        assert!(d.training < Duration::from_millis(140), "{d:?}");
        assert!(wall >= Duration::from_millis(140));
    }

    #[test]
    fn shares_add_up_to_the_wall_time() {
        let s = Spent {
            training: Duration::from_secs(70),
            evaluation: Duration::from_secs(20),
            pruning: Duration::from_secs(2),
            io: Duration::from_secs(5),
        };
        assert_eq!(
            s.shares(Duration::from_secs(100)),
            "training 70%, evaluation 20%, pruning 2%, I/O 5%, other 3%"
        );
    }
}
