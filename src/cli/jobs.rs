//! `lth repro --jobs N`: the replicates of a target, or of every target under `--all`, trained by
//! up to N `lth repro --only-replicates` processes at once on this machine, each with its share of
//! the intra-op threads, before this process judges each target from the run store exactly as a
//! run without `--jobs` does.
//!
//! Why: on a CPU a LeNet-sized network cannot keep every core busy (its matrix products are too
//! small for libtorch's intra-op threads to pay), so two one-thread processes train more per
//! minute than one two-thread process (`bench/jobs.sh` measures it). The replicates are
//! independent experiments, so dealing them among processes changes no result: a unit's numbers
//! are those of the thread count its process ran at (one-thread processes give a `--threads 1`
//! run's bits), and the run store's locks and hashes train a unit that two rows, or two targets,
//! share once (a process that reaches a unit another is training waits for it and finds it done).
//!
//! The processes come from one queue: each target's replicates cut into processes of one replicate
//! ([`processes`] caps their number), heaviest target first by its scale's `cpu_minutes`; a slot
//! that frees starts the next. Under `--all` the queue holds every target, so the pool stays full
//! until the end of the suite instead of waiting at the end of each target for its last
//! replicate. Each process writes its log (with its progress lines) to
//! `<out>/<target>/<scale>/jobs/process_<k>.log`.

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

/// The processes a pool makes of a target's replicates: one per replicate, at most `8 × jobs`
/// (tropical's 200 one-second replicates would otherwise spend as long starting processes, each
/// checking the spec and reading the data, as training).
fn processes(replicates: u64, jobs: usize) -> usize {
    usize::try_from(replicates)
        .unwrap_or(usize::MAX)
        .min(8 * jobs.max(1))
}

/// One target's share of a pool.
pub(super) struct Work {
    pub plan: lth_repro::Plan,
    pub scale: String,
    /// The report folder's root (`--out`): its processes' logs go to
    /// `<out>/<target>/<scale>/jobs/`.
    pub out: PathBuf,
    /// Its `repro` command for a process, without threads, replicates and hand-off.
    pub args: Vec<String>,
    /// Its scale's estimated CPU minutes: the pool starts the heaviest targets first, so that
    /// the small ones fill in at the end.
    pub weight: f64,
}

/// One process of a pool: some replicates of one target.
struct Item {
    /// Its target, an index into the works.
    work: usize,
    /// Its number among its target's processes, from 1.
    number: usize,
    replicates: Vec<u64>,
    /// Its share of its target's weight.
    weight: f64,
}

/// One process of the pool while it runs.
struct Running {
    item: Item,
    log: PathBuf,
    timing: PathBuf,
    child: Child,
    began: Instant,
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

/// `replicate 4`, `replicates 1, 3, 5` (or `replicates 1, 3, …, 199` for a long list).
fn list(replicates: &[u64]) -> String {
    if let [one] = replicates {
        format!("replicate {one}")
    } else if replicates.len() <= 8 {
        "replicates ".to_owned()
            + &replicates
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
    } else {
        format!(
            "replicates {}, {}, …, {} ({} replicates)",
            replicates[0],
            replicates[1],
            replicates[replicates.len() - 1],
            replicates.len()
        )
    }
}

/// The pool's processes in the order they start: the works' targets heaviest first (ties in the
/// given order), each target's replicates cut into [`processes`] dealt in turn; none for a
/// target with no row that runs here.
fn queue(works: &[Work], jobs: usize) -> std::collections::VecDeque<Item> {
    let mut order: Vec<usize> = (0..works.len()).collect();
    order.sort_by(|&a, &b| works[b].weight.total_cmp(&works[a].weight));
    let mut queue = std::collections::VecDeque::new();
    for &w in &order {
        let work = &works[w];
        if work.plan.rows.is_empty() {
            continue;
        }
        let chunks = deal(work.plan.replicates, processes(work.plan.replicates, jobs));
        let share = work.weight / chunks.len().max(1) as f64;
        for (i, replicates) in chunks.into_iter().enumerate() {
            queue.push_back(Item {
                work: w,
                number: i + 1,
                replicates,
                weight: share,
            });
        }
    }
    queue
}

/// What became of one target of a pool: what its processes took (`None` when none of its rows
/// runs here), or why one of them failed.
pub(super) type Trained = Result<Option<Pooled>, String>;

/// Trains the replicates of every work's target in up to `jobs` processes at once (module docs),
/// each running `lth` with its work's `args` and `threads` intra-op threads (default: this
/// command's divided among the processes, at least one). The processes are taken from one queue,
/// heaviest target first, and each free slot starts the next, so that a pool over several targets
/// keeps every slot busy until the queue runs dry. Returns `None` when fewer than two processes
/// would run (one replicate, or no row that runs here), and the caller trains as it would without
/// `--jobs`; else what became of each work's target, in the order given. A process that fails
/// makes its target's result an error naming its replicates, its exit status, its log and the
/// log's last line; every other process still runs, so that their units are kept and the other
/// targets are judged.
pub(super) fn train(
    works: &[Work],
    jobs: usize,
    threads: Option<i32>,
    quiet: bool,
) -> anyhow::Result<Option<Vec<Trained>>> {
    let mut queue = queue(works, jobs);
    if queue.len() < 2 {
        return Ok(None);
    }
    let slots = jobs.max(1).min(queue.len());
    let count = i32::try_from(slots).unwrap_or(i32::MAX);
    let threads = threads.unwrap_or_else(|| (super::default_threads(quiet) / count).max(1));
    let lth = std::env::current_exe().context("finding the lth binary")?;
    let folder = |w: &Work| w.out.join(&w.plan.target).join(&w.scale).join("jobs");
    let mut per_target = vec![0usize; works.len()];
    for item in &queue {
        per_target[item.work] += 1;
    }
    for (w, work) in works.iter().enumerate().filter(|&(w, _)| per_target[w] > 0) {
        let logs = folder(work);
        fs::create_dir_all(&logs).with_context(|| logs.display().to_string())?;
        // Measurements of an earlier pool must not be read as this one's.
        let handoff = logs.join("measured");
        if handoff.exists() {
            fs::remove_dir_all(&handoff).with_context(|| handoff.display().to_string())?;
        }
        if !quiet && works.len() == 1 {
            eprintln!(
                "{} {}: its replicates in {} processes, {slots} at once ({} each; --jobs {jobs}), \
                 logs in {}",
                work.plan.target,
                work.scale,
                per_target[w],
                lth_report::count(threads, "thread"),
                logs.display()
            );
        }
    }
    if !quiet && works.len() > 1 {
        eprintln!(
            "the targets' replicates in {} processes, {slots} at once ({} each; --jobs {jobs}), \
             heaviest target first; logs in <out>/<target>/{}/jobs/",
            queue.len(),
            lth_report::count(threads, "thread"),
            works[0].scale
        );
    }
    let total: f64 = queue.iter().map(|i| i.weight).sum();
    let mut pace = lth_repro::Pace::new(
        "estimated minutes of work (the targets' cpu_minutes)",
        total,
    );
    let began = Instant::now();
    let mut running: Vec<Running> = Vec::new();
    // Per work: its processes' timings, and its failures.
    let mut finished: Vec<Vec<Timing>> = (0..works.len()).map(|_| Vec::new()).collect();
    let mut failures: Vec<Vec<String>> = (0..works.len()).map(|_| Vec::new()).collect();
    while !running.is_empty() || !queue.is_empty() {
        while running.len() < slots
            && let Some(item) = queue.pop_front()
        {
            let work = &works[item.work];
            let logs = folder(work);
            let log = logs.join(format!("process_{}.log", item.number));
            let timing = logs.join(format!("process_{}.timing.json", item.number));
            let _ = fs::remove_file(&timing);
            let file = fs::File::create(&log).with_context(|| log.display().to_string())?;
            let only: Vec<String> = item.replicates.iter().map(u64::to_string).collect();
            let child = Command::new(&lth)
                .args(&work.args)
                .args(["--threads", &threads.to_string(), "--handoff"])
                .arg(logs.join("measured"))
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
                item,
                log,
                timing,
                child,
                began: Instant::now(),
                read: 0,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
        let mut still = Vec::new();
        for mut r in running {
            let target = &works[r.item.work].plan.target;
            let status = match r.child.try_wait()? {
                None => {
                    if let Some(p) = new_progress(&r.log, &mut r.read)
                        && !quiet
                    {
                        eprintln!("progress: {target} process {}: {p}", r.item.number);
                    }
                    still.push(r);
                    continue;
                }
                Some(status) => status,
            };
            // Each of `slots` processes had a share of the machine while it ran.
            pace.worked_for(
                r.item.weight,
                r.began.elapsed() / u32::try_from(slots).unwrap_or(1),
            );
            if status.success() {
                finished[r.item.work].push(Timing::read(&r.timing)?);
                if !quiet {
                    eprintln!(
                        "{target} process {} ({}): trained; pool {}",
                        r.item.number,
                        list(&r.item.replicates),
                        pace.line()
                    );
                }
            } else {
                failures[r.item.work].push(format!(
                    "training {} of {target} failed ({status}); its log {} ends: {}",
                    list(&r.item.replicates),
                    r.log.display(),
                    last_line(&r.log)
                ));
            }
        }
        running = still;
    }
    // Each target is charged its share of the pool's time, in proportion to its processes' time.
    let wall = began.elapsed();
    let process_time: f64 = finished
        .iter()
        .flatten()
        .map(|t| t.wall.as_secs_f64())
        .sum();
    let factor = if process_time > 0.0 {
        wall.as_secs_f64() / process_time
    } else {
        0.0
    };
    let results = works
        .iter()
        .enumerate()
        .map(|(w, work)| {
            if !failures[w].is_empty() {
                return Err(failures[w].join("; "));
            }
            if per_target[w] == 0 {
                return Ok(None);
            }
            let own: f64 = finished[w].iter().map(|t| t.wall.as_secs_f64()).sum();
            let summed = finished[w]
                .iter()
                .fold(Spent::default(), |acc, t| acc + t.spent);
            Ok(Some(Pooled {
                timing: Timing {
                    wall: Duration::from_secs_f64(own * factor),
                    spent: summed.scaled(factor),
                },
                handoff: folder(work).join("measured"),
            }))
        })
        .collect();
    Ok(Some(results))
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

    fn work(target: &str, replicates: u64, weight: f64, runs: bool) -> Work {
        Work {
            plan: lth_repro::Plan {
                target: target.into(),
                replicates,
                rows: if runs {
                    vec![("row".into(), 1)]
                } else {
                    Vec::new()
                },
                skipped: Vec::new(),
            },
            scale: "quick".into(),
            out: "out".into(),
            args: Vec::new(),
            weight,
        }
    }

    #[test]
    fn the_queue_starts_with_the_heaviest_target_and_caps_small_replicates() {
        let works = [
            work("light", 3, 2.0, true),
            work("absent", 5, 50.0, false),
            work("heavy", 2, 15.0, true),
            work("many", 200, 3.0, true),
        ];
        let q: Vec<(usize, usize, Vec<u64>)> = queue(&works, 2)
            .into_iter()
            .map(|i| (i.work, i.number, i.replicates))
            .collect();
        assert_eq!(q[0], (2, 1, vec![1]));
        assert_eq!(q[1], (2, 2, vec![2]));
        // `many`: 200 replicates in 16 processes of 12 or 13, dealt in turn.
        let many: Vec<_> = q.iter().filter(|(w, _, _)| *w == 3).collect();
        assert_eq!(many.len(), 16);
        assert_eq!(many[0].2[..3], [1, 17, 33]);
        assert_eq!(many.iter().map(|m| m.2.len()).sum::<usize>(), 200);
        assert_eq!(q[2].0, 3, "3 cpu minutes before 2");
        assert_eq!(
            q[18..].iter().map(|m| m.2.clone()).collect::<Vec<_>>(),
            vec![vec![1], vec![2], vec![3]]
        );
        assert_eq!(
            q.len(),
            2 + 16 + 3,
            "no process for a target that does not run here"
        );
        let weights: f64 = queue(&works, 2)
            .iter()
            .filter(|i| i.work == 3)
            .map(|i| i.weight)
            .sum();
        assert!((weights - 3.0).abs() < 1e-9, "a target's weight is shared");
        assert_eq!(processes(5, 1), 5);
        assert_eq!(processes(200, 4), 32);
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
        assert_eq!(list(&[4]), "replicate 4");
        assert_eq!(list(&[1, 3, 5]), "replicates 1, 3, 5");
        let long: Vec<u64> = (1..=199).step_by(2).collect();
        assert_eq!(list(&long), "replicates 1, 3, …, 199 (100 replicates)");
    }
}
