//! `lth repro --jobs N`: a target's replicates trained by up to N `lth repro --only-replicates`
//! processes at once on this machine, each with its share of the intra-op threads, before this
//! process judges the target from the run store exactly as a run without `--jobs` does.
//!
//! Why: on a CPU a LeNet-sized network cannot keep every core busy (its matrix products are too
//! small for libtorch's intra-op threads to pay), so two one-thread processes train more per
//! minute than one two-thread process (`lth bench --suite loop` at `--threads 1` and 2 measures
//! it). The replicates are independent experiments, so dealing them among processes changes no
//! result: a unit's numbers are those of the thread count its process ran at (one-thread
//! processes give a `--threads 1` run's bits), and the run store's locks and hashes train a unit
//! that two rows, or two targets, share once. Each process writes its log (with its progress
//! lines) to `<out>/<target>/<scale>/jobs/process_<k>.log`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use lth_store::ledger::Spent;
use serde::{Deserialize, Serialize};

/// What one process of a pool took, as it writes it to its `--spent-to` file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// The process's target run, start to end.
    pub wall: Duration,
    /// That time by activity ([`lth_store::ledger`]).
    pub spent: Spent,
}

/// [`Timing`] as its file holds it: seconds.
#[derive(Serialize, Deserialize)]
struct TimingFile {
    wall: f64,
    training: f64,
    evaluation: f64,
    pruning: f64,
    io: f64,
}

/// What a pool did for one target: its time, and the folder of its measurements for the
/// judging run (`lth_repro::Options::handoff`).
pub(super) struct Pooled {
    pub timing: Timing,
    pub handoff: PathBuf,
}

impl Timing {
    /// Writes the timing where a pool's process was told to (`--spent-to`).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let s = &self.spent;
        let file = TimingFile {
            wall: self.wall.as_secs_f64(),
            training: s.training.as_secs_f64(),
            evaluation: s.evaluation.as_secs_f64(),
            pruning: s.pruning.as_secs_f64(),
            io: s.io.as_secs_f64(),
        };
        lth_store::write_atomic(path, serde_json::to_string(&file)?.as_bytes())?;
        Ok(())
    }

    /// Reads what [`Timing::write`] wrote.
    fn read(path: &Path) -> anyhow::Result<Timing> {
        let text = fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let f: TimingFile =
            serde_json::from_str(&text).with_context(|| path.display().to_string())?;
        let d = |x: f64| Duration::from_secs_f64(x.max(0.0));
        Ok(Timing {
            wall: d(f.wall),
            spent: Spent {
                training: d(f.training),
                evaluation: d(f.evaluation),
                pruning: d(f.pruning),
                io: d(f.io),
            },
        })
    }
}

/// Replicates `1..=replicates` dealt to at most `jobs` processes in turn: the first process gets
/// 1, 1 + n, 1 + 2n, …, so that each process has replicates of every size and the pool ends
/// together. Empty processes are not made.
pub(super) fn deal(replicates: u64, jobs: usize) -> Vec<Vec<u64>> {
    let n = usize::try_from(replicates)
        .unwrap_or(usize::MAX)
        .min(jobs.max(1));
    let mut chunks = vec![Vec::new(); n];
    for r in 1..=replicates {
        chunks[usize::try_from(r - 1).unwrap_or(0) % n.max(1)].push(r);
    }
    chunks.retain(|c| !c.is_empty());
    chunks
}

/// One process of the pool while it runs.
struct Running {
    number: usize,
    replicates: Vec<u64>,
    log: PathBuf,
    timing: PathBuf,
    child: Child,
    /// Bytes of its log read so far (whole lines only).
    read: u64,
}

/// The last line starting with `progress: ` (without that word) among the whole lines `log` has
/// gained since byte `*read`, which it moves past them: each poll reads only what is new.
fn new_progress(log: &Path, read: &mut u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(log).ok()?;
    file.seek(SeekFrom::Start(*read)).ok()?;
    let mut new = Vec::new();
    file.read_to_end(&mut new).ok()?;
    let whole = new.iter().rposition(|&b| b == b'\n')? + 1;
    *read += whole as u64;
    String::from_utf8_lossy(&new[..whole])
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("progress: "))
        .map(str::to_owned)
}

/// The last line of `log` that is not blank: what a process that failed said last.
fn last_line(log: &Path) -> String {
    fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "(its log is empty)".into())
}

/// `1, 3, 5` (or `1, 3, …, 199` for a long list).
fn list(replicates: &[u64]) -> String {
    if replicates.len() <= 8 {
        replicates
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        format!(
            "{}, {}, …, {} ({} replicates)",
            replicates[0],
            replicates[1],
            replicates[replicates.len() - 1],
            replicates.len()
        )
    }
}

/// Trains the replicates of `plan`'s target in up to `jobs` processes at once (module docs), each
/// running `lth` with `args` (its `repro` command without `--threads`) and `threads` intra-op
/// threads (default: this command's divided among the processes, at least one), and returns what
/// they took; `None` when fewer than two processes would run (one replicate, or no row that runs
/// here), and the caller trains as it would without `--jobs`. A process that fails is an error
/// naming its replicates, its exit status, its log and the log's last line; the others are let
/// finish first, so that their units are kept.
pub(super) fn train(
    plan: &lth_repro::Plan,
    scale: &str,
    out: &Path,
    args: Vec<String>,
    jobs: usize,
    threads: Option<i32>,
    quiet: bool,
) -> anyhow::Result<Option<Pooled>> {
    let chunks = deal(plan.replicates, jobs);
    if plan.rows.is_empty() || chunks.len() < 2 {
        return Ok(None);
    }
    let count = i32::try_from(chunks.len()).unwrap_or(i32::MAX);
    let threads = threads.unwrap_or_else(|| (super::default_threads(quiet) / count).max(1));
    let logs = out.join(&plan.target).join(scale).join("jobs");
    fs::create_dir_all(&logs).with_context(|| logs.display().to_string())?;
    // Measurements of an earlier pool must not be read as this one's.
    let handoff = logs.join("measured");
    if handoff.exists() {
        fs::remove_dir_all(&handoff).with_context(|| handoff.display().to_string())?;
    }
    let lth = std::env::current_exe().context("finding the lth binary")?;
    let mut common = args;
    common.extend([
        "--threads".to_owned(),
        threads.to_string(),
        "--handoff".to_owned(),
        handoff.display().to_string(),
    ]);
    if !quiet {
        eprintln!(
            "{} {scale}: its replicates in {} processes at once ({} each; --jobs {jobs}), logs in {}",
            plan.target,
            chunks.len(),
            lth_report::count(threads, "thread"),
            logs.display()
        );
    }
    let began = Instant::now();
    let mut running = Vec::new();
    for (i, replicates) in chunks.into_iter().enumerate() {
        let number = i + 1;
        let log = logs.join(format!("process_{number}.log"));
        let timing = logs.join(format!("process_{number}.timing.json"));
        let _ = fs::remove_file(&timing);
        let file = fs::File::create(&log).with_context(|| log.display().to_string())?;
        let only: Vec<String> = replicates.iter().map(u64::to_string).collect();
        let child = Command::new(&lth)
            .args(&common)
            .arg("--only-replicates")
            .arg(only.join(","))
            .arg("--spent-to")
            .arg(&timing)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", lth.display()))?;
        running.push(Running {
            number,
            replicates,
            log,
            timing,
            child,
            read: 0,
        });
    }
    let mut finished = Vec::new();
    let mut failures = Vec::new();
    while !running.is_empty() {
        std::thread::sleep(Duration::from_millis(250));
        let mut still = Vec::new();
        for mut r in running {
            match r.child.try_wait()? {
                None => {
                    if let Some(p) = new_progress(&r.log, &mut r.read)
                        && !quiet
                    {
                        eprintln!("progress: process {} of {}: {p}", r.number, plan.target);
                    }
                    still.push(r);
                }
                Some(status) if status.success() => {
                    if !quiet {
                        eprintln!(
                            "{} process {} (replicates {}): trained, {} elapsed",
                            plan.target,
                            r.number,
                            list(&r.replicates),
                            lth_repro::duration(began.elapsed())
                        );
                    }
                    finished.push(Timing::read(&r.timing)?);
                }
                Some(status) => failures.push(format!(
                    "training replicates {} of {} failed ({status}); its log {} ends: {}",
                    list(&r.replicates),
                    plan.target,
                    r.log.display(),
                    last_line(&r.log)
                )),
            }
        }
        running = still;
    }
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("; "));
    }
    let wall = began.elapsed();
    let summed = finished
        .iter()
        .fold(Spent::default(), |acc, t| acc + t.spent);
    let process_time: f64 = finished.iter().map(|t| t.wall.as_secs_f64()).sum();
    let factor = if process_time > 0.0 {
        wall.as_secs_f64() / process_time
    } else {
        0.0
    };
    Ok(Some(Pooled {
        timing: Timing {
            wall,
            spent: summed.scaled(factor),
        },
        handoff,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicates_are_dealt_in_turn_and_no_process_is_empty() {
        assert_eq!(deal(6, 2), vec![vec![1, 3, 5], vec![2, 4, 6]]);
        assert_eq!(deal(5, 3), vec![vec![1, 4], vec![2, 5], vec![3]]);
        assert_eq!(deal(1, 4), vec![vec![1]]);
        assert_eq!(deal(3, 1), vec![vec![1, 2, 3]]);
        assert!(deal(0, 2).is_empty());
        for (r, j) in [(200, 2), (7, 7), (4, 16)] {
            let d = deal(r, j);
            let mut all: Vec<u64> = d.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, (1..=r).collect::<Vec<_>>());
            assert!(d.len() <= j && d.iter().all(|c| !c.is_empty()));
            let sizes: Vec<usize> = d.iter().map(Vec::len).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn progress_is_read_from_whole_new_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("process_1.log");
        let mut read = 0;
        assert_eq!(new_progress(&log, &mut read), None, "no log yet");
        fs::write(
            &log,
            "step 1\nprogress: fig3 1/5 stages\nstep 2\nprogress: fig3 2/5",
        )
        .unwrap();
        assert_eq!(
            new_progress(&log, &mut read).as_deref(),
            Some("fig3 1/5 stages"),
            "the unfinished last line waits"
        );
        assert_eq!(new_progress(&log, &mut read), None, "nothing new");
        let mut text = fs::read_to_string(&log).unwrap();
        text.push_str(" stages\nstep 3\n");
        fs::write(&log, text).unwrap();
        assert_eq!(
            new_progress(&log, &mut read).as_deref(),
            Some("fig3 2/5 stages")
        );
        assert_eq!(new_progress(&log, &mut read), None);
    }

    #[test]
    fn a_long_replicate_list_is_shortened() {
        assert_eq!(list(&[1, 3, 5]), "1, 3, 5");
        let long: Vec<u64> = (1..=199).step_by(2).collect();
        assert_eq!(list(&long), "1, 3, …, 199 (100 replicates)");
    }
}
