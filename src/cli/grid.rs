//! `lth grid submit|status <target>`: a reproduction's independent units as Slurm job arrays.
//!
//! A target's work at a scale splits into units ([`lth_repro::plan`]): per row and replicate, a
//! *lottery unit* (`row/replicate`: its levels, one after another) and the *parts* of its
//! measurement (`row/replicate/part`: e.g. a stability sample's five copies), which need the levels.
//! `submit` writes a submission folder under `<runs>/grid/<target>_<scale>/` (the unit list and one
//! job script) and submits:
//! - one array of the lottery units not done, one task each;
//! - per part number, an array of the parts not done, ordered after their own lottery task with
//!   `--dependency=aftercorr` (array index i waits for index i of the lottery array only), or with
//!   no dependency when that lottery was done before;
//! - a collect job after all of them (`afterok`), which runs the ordinary `lth repro` and writes
//!   the report, training nothing.
//!
//! Every task writes into the one run store given by `--runs-dir` (on a filesystem the nodes
//! share): its locks make concurrent units safe and its hashes make a repeated unit free. A task
//! that succeeds leaves a mark in `done/`; a later `submit` submits only the units without one
//! (a unit cut short resumes from its last checkpoint), and refuses while earlier jobs of the grid
//! are still queued. Jobs are submitted with `--kill-on-invalid-dep=yes`, so the dependents of a
//! failed or cancelled task leave the queue instead of waiting forever.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use lth_repro::{GridUnit, Plan};

use super::CommonArgs;

#[derive(Subcommand, Debug)]
pub enum GridCmd {
    /// Submit a target's units not done yet as Slurm job arrays (sbatch).
    Submit(SubmitArgs),
    /// The state of each unit of a target's grid: from its marks and squeue/sacct.
    Status(StatusArgs),
}

/// The grid `lth grid status` reports on: no training flags, since it trains nothing.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// A folder of the repro directory (e.g. fig3), or the path of your own target folder.
    pub target: String,
    #[command(flatten)]
    pub at: super::repro::ScaleArgs,
    #[command(flatten)]
    pub data: super::DataArgs,
    /// Root of the run store.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
}

/// The target and scale of a grid, and what its tasks run with.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// A folder of the repro directory (e.g. fig3), or the path of your own target folder.
    pub target: String,
    #[command(flatten)]
    pub at: super::repro::ScaleArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The Slurm partition (default: the cluster's).
    #[arg(long)]
    pub partition: Option<String>,
    /// GPUs per task (default: none asked for).
    #[arg(long, value_name = "N")]
    pub gpus_per_task: Option<u32>,
    /// CPUs per task; the tasks' libtorch threads unless --threads says otherwise.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpus_per_task: u32,
    /// A time limit per task, in sbatch's format: minutes, minutes:seconds, hours:minutes:seconds,
    /// days-hours, days-hours:minutes, days-hours:minutes:seconds, or UNLIMITED (e.g. 2:00:00).
    #[arg(long, value_parser = slurm_time)]
    pub time: Option<String>,
    /// Train up to N compatible runs of a task at once, packed into one network (a part's
    /// stability copies); passed to every task's `lth repro` (default: the device's, 1 on the CPU,
    /// 8 on CUDA).
    #[arg(long, value_name = "N", value_parser = super::at_least::<1, usize>)]
    pub pack: Option<usize>,
    /// Another sbatch option for every job (e.g. --sbatch-arg=--account=lab); repeatable.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_arg: Vec<String>,
}

/// A time limit in one of sbatch's formats, checked before anything is written.
fn slurm_time(s: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "`{s}` is not a Slurm time limit: expected minutes, minutes:seconds, \
             hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds or \
             UNLIMITED (e.g. 2:00:00)"
        )
    };
    if ["unlimited", "infinite"].contains(&s.to_ascii_lowercase().as_str()) {
        return Ok(s.to_owned());
    }
    let numbers = |t: &str| -> Option<Vec<u64>> {
        t.split(':')
            .map(|n| {
                (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse().ok())
                    .flatten()
            })
            .collect()
    };
    // (days, the colon-separated fields after them); a limit of zero is no limit sbatch takes.
    let (days, fields) = match s.split_once('-') {
        Some((days, rest)) => (
            numbers(days).filter(|d| d.len() == 1).map(|d| d[0]),
            numbers(rest),
        ),
        None => (Some(0), numbers(s)),
    };
    match (days, fields) {
        (Some(d), Some(f)) if f.len() <= 3 && (d > 0 || f.iter().any(|&x| x > 0)) => {
            Ok(s.to_owned())
        }
        _ => Err(bad()),
    }
}

pub fn run(cmd: &GridCmd) -> anyhow::Result<()> {
    match cmd {
        GridCmd::Submit(args) => submit(args),
        GridCmd::Status(args) => status(args),
    }
}

/// The grid's folder, its target's folder, and the plan, every input checked.
struct Grid {
    dir: PathBuf,
    target_dir: PathBuf,
    plan: Plan,
    scale: String,
}

/// Makes a path absolute (tasks run in another working directory, maybe on another node).
fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}: cannot make it absolute", p.display()))
}

fn grid(target: &str, at: &super::repro::ScaleArgs, common: &CommonArgs) -> anyhow::Result<Grid> {
    let target_dir = absolute(&super::repro::target_dir(&at.repro_dir, target))?;
    let o = at.options(target_dir.clone(), tch::Device::Cpu, common);
    let plan = lth_repro::plan(&o)?;
    let dir = absolute(
        &common
            .runs_dir
            .join("grid")
            .join(format!("{}_{}", plan.target, at.scale)),
    )?;
    Ok(Grid {
        dir,
        target_dir,
        plan,
        scale: at.scale.clone(),
    })
}

/// A unit's mark in `done/`: its name with `/` as `%` (row ids may hold `_` and `.`).
fn mark_name(unit: &GridUnit) -> String {
    unit.to_string().replace('/', "%")
}

fn is_done(grid: &Path, unit: &GridUnit) -> bool {
    grid.join("done").join(mark_name(unit)).exists()
}

/// One submitted job: which units its array indices stand for.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    id: String,
    /// `lottery`, `part` or `collect`.
    kind: String,
    part: Option<u64>,
    /// Array indices: lines of `units.txt` (none for the collect job).
    indices: Vec<usize>,
}

/// A submission: its folder (`submit_<n>`) holds `units.txt`, `unit.sh`, `collect.sh`, `logs/`
/// and this, `jobs.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Submission {
    units: Vec<String>,
    jobs: Vec<Job>,
}

/// The submissions so far, oldest first: `(n, folder, submission)`.
fn submissions(grid: &Path) -> anyhow::Result<Vec<(u64, PathBuf, Submission)>> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(grid) else {
        return Ok(found);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix("submit_")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let path = e.path().join("jobs.json");
        if !path.exists() {
            continue;
        }
        let text = fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let s: Submission = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a submission record", path.display()))?;
        found.push((n, e.path(), s));
    }
    found.sort_by_key(|(n, ..)| *n);
    Ok(found)
}

/// Single-quotes a word for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `lth repro` arguments every task and the collect job share.
fn repro_args(args: &SubmitArgs, g: &Grid) -> anyhow::Result<Vec<String>> {
    let t = &args.target;
    let c = &t.common;
    let mut v = vec![
        g.target_dir.display().to_string(),
        "--scale".into(),
        g.scale.clone(),
        "--runs-dir".into(),
        absolute(&c.runs_dir)?.display().to_string(),
        "--data-dir".into(),
        absolute(&lth_data::data_root(c.data.data_dir.as_deref()))?
            .display()
            .to_string(),
        "--out".into(),
        absolute(&t.at.out)?.display().to_string(),
        "--device".into(),
        c.device.to_string(),
        "--threads".into(),
        c.threads
            .map_or(args.cpus_per_task as i32, |n| n)
            .to_string(),
        "--cudnn-benchmark".into(),
        c.cudnn_benchmark.to_string(),
        "--quiet".into(),
    ];
    if c.channels_last {
        v.push("--channels-last".into());
    }
    for (flag, value) in [
        ("--replicates", t.at.replicates),
        ("--samples", t.at.samples),
        ("--pack", args.pack.map(|n| n as u64)),
    ] {
        if let Some(n) = value {
            v.extend([flag.to_owned(), n.to_string()]);
        }
    }
    Ok(v)
}

/// Writes an executable script.
fn write_script(path: &Path, text: &str) -> anyhow::Result<()> {
    lth_store::write_atomic(path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .with_context(|| path.display().to_string())?;
    }
    Ok(())
}

/// The Slurm states of the tasks of `jobs` that the controller (squeue, every state it still
/// keeps) or the accounting (sacct, where the cluster has it) knows: `"<job>_<index>"` or
/// `"<job>"` → state.
fn slurm_states(jobs: &[&str]) -> BTreeMap<String, String> {
    let mut states = BTreeMap::new();
    if jobs.is_empty() {
        return states;
    }
    let list = jobs.join(",");
    // sacct first, so that the controller's fresher view overrides it.
    if let Ok(out) = Command::new("sacct")
        .args(["-n", "-X", "-P", "-o", "JobID,State", "-j", &list])
        .output()
        && out.status.success()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((id, state)) = line.split_once('|') {
                let state = state.split_whitespace().next().unwrap_or_default();
                states.insert(id.trim().to_owned(), state.to_owned());
            }
        }
    }
    for job in jobs {
        // One job at a time: squeue refuses the whole list when one id has left its memory.
        if let Ok(out) = Command::new("squeue")
            .args(["-h", "-r", "--states=all", "-o", "%i|%T", "-j", job])
            .output()
            && out.status.success()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((id, state)) = line.split_once('|') {
                    states.insert(id.trim().to_owned(), state.trim().to_owned());
                }
            }
        }
    }
    states
}

/// Whether a Slurm state is one of a job still in the queue.
fn queued(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "REQUEUED"
            | "RESIZING"
            | "SUSPENDED"
            | "STOPPED"
            | "SIGNALING"
            | "STAGE_OUT"
    )
}

/// The state of one array task: by its own id, else by its array's pending record (`job_[...]`,
/// which squeue shows for tasks not yet split off).
fn task_state<'a>(
    states: &'a BTreeMap<String, String>,
    job: &str,
    index: Option<usize>,
) -> Option<&'a str> {
    let own = match index {
        Some(i) => format!("{job}_{i}"),
        None => job.to_owned(),
    };
    states.get(&own).map(String::as_str).or_else(|| {
        index?;
        states
            .iter()
            .find(|(id, _)| id.starts_with(&format!("{job}_[")))
            .map(|(_, s)| s.as_str())
    })
}

/// Says the rows that cannot run here, once per reason.
fn say_skipped(plan: &Plan) {
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (row, reason) in &plan.skipped {
        by_reason.entry(reason).or_default().push(row);
    }
    for (reason, rows) in by_reason {
        println!("SKIPPED {}: {reason}", rows.join(", "));
    }
}

fn submit(args: &SubmitArgs) -> anyhow::Result<()> {
    let g = grid(&args.target.target, &args.target.at, &args.target.common)?;
    let target = &g.plan.target;
    let scale = &g.scale;
    // A grid is submitted once at a time: a second submission would train the same units twice.
    let earlier = submissions(&g.dir)?;
    if let Some((n, _, last)) = earlier.last() {
        let ids: Vec<&str> = last.jobs.iter().map(|j| j.id.as_str()).collect();
        let states = slurm_states(&ids);
        let waiting: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| {
                states.iter().any(|(task, state)| {
                    (task == id || task.starts_with(&format!("{id}_"))) && queued(state)
                })
            })
            .collect();
        if !waiting.is_empty() {
            bail!(
                "{target} {scale}: jobs {} of submission {n} are still in the queue; wait for \
                 them (lth grid status {target} --scale {scale}) or cancel them (scancel {})",
                waiting.join(", "),
                waiting.join(" ")
            );
        }
    }
    let units = g.plan.lotteries();
    if units.is_empty() {
        say_skipped(&g.plan);
        bail!("{target} {scale}: no row can run here, so there is nothing to submit");
    }
    let lottery_todo: Vec<usize> = (0..units.len())
        .filter(|&i| !is_done(&g.dir, &units[i]))
        .collect();
    let max_parts = units.iter().map(|u| g.plan.parts(u)).max().unwrap_or(0);
    let parts_todo: Vec<(u64, Vec<usize>)> = (0..max_parts)
        .map(|p| {
            let todo = (0..units.len())
                .filter(|&i| {
                    p < g.plan.parts(&units[i])
                        && !is_done(
                            &g.dir,
                            &GridUnit {
                                part: Some(p),
                                ..units[i].clone()
                            },
                        )
                })
                .collect();
            (p, todo)
        })
        .collect();
    if lottery_todo.is_empty() && parts_todo.iter().all(|(_, t)| t.is_empty()) {
        println!(
            "{target} {scale}: every unit is done; collect with: lth repro {target} --scale {scale} --check"
        );
        return Ok(());
    }

    // Slurm's client must be there before anything is written.
    if let Err(e) = Command::new("sbatch").arg("--version").output() {
        bail!(
            "sbatch cannot run ({e}): `lth grid submit` needs Slurm's client on PATH; nothing was \
             written"
        );
    }
    let n = earlier.last().map_or(1, |(n, ..)| n + 1);
    let dir = g.dir.join(format!("submit_{n}"));
    fs::create_dir_all(dir.join("logs")).with_context(|| dir.display().to_string())?;
    fs::create_dir_all(g.dir.join("done")).with_context(|| g.dir.display().to_string())?;
    let lines: Vec<String> = units.iter().map(ToString::to_string).collect();
    lth_store::write_atomic(&dir.join("units.txt"), (lines.join("\n") + "\n").as_bytes())?;
    let lth = std::env::current_exe().context("finding the lth binary")?;
    let common: Vec<String> = repro_args(args, &g)?.iter().map(|a| quote(a)).collect();
    let lth = quote(&lth.display().to_string());
    write_script(
        &dir.join("unit.sh"),
        &format!(
            "#!/usr/bin/env bash\n\
             # lth grid: one unit of {target} at scale {scale}. Line SLURM_ARRAY_TASK_ID (from 0) of\n\
             # units.txt names a replicate (ROW/REPLICATE); with an argument PART, the task trains that\n\
             # part of its measurement instead of its levels.\n\
             set -euo pipefail\n\
             unit=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {units})${{1:+/$1}}\n\
             mark={done}/\"${{unit//\\//%}}\"\n\
             if [ -e \"$mark\" ]; then echo \"$unit: done before\"; exit 0; fi\n\
             {lth} repro {common} --unit \"$unit\"\n\
             touch \"$mark\"\n",
            units = quote(&dir.join("units.txt").display().to_string()),
            done = quote(&g.dir.join("done").display().to_string()),
            common = common.join(" "),
        ),
    )?;
    write_script(
        &dir.join("collect.sh"),
        &format!(
            "#!/usr/bin/env bash\n\
             # lth grid: the report of {target} at scale {scale}, from the units' results.\n\
             set -euo pipefail\n\
             {lth} repro {common}\n",
            common = common.join(" "),
        ),
    )?;

    let sbatch = |name: &str,
                  array: Option<&[usize]>,
                  dependency: Option<String>,
                  script: &[String]|
     -> anyhow::Result<String> {
        let mut cmd = Command::new("sbatch");
        cmd.args([
            "--parsable".to_owned(),
            format!("--job-name=lth-{target}-{scale}-{name}"),
            "--kill-on-invalid-dep=yes".to_owned(),
            format!("--cpus-per-task={}", args.cpus_per_task),
        ]);
        match array {
            Some(indices) => {
                let list: Vec<String> = indices.iter().map(usize::to_string).collect();
                cmd.arg(format!("--array={}", list.join(",")));
                cmd.arg(format!("--output={}/logs/{name}_%A_%a.out", dir.display()));
            }
            None => {
                cmd.arg(format!("--output={}/logs/{name}_%j.out", dir.display()));
            }
        }
        if let Some(p) = &args.partition {
            cmd.arg(format!("--partition={p}"));
        }
        if let Some(n) = args.gpus_per_task {
            cmd.arg(format!("--gpus-per-task={n}"));
        }
        if let Some(t) = &args.time {
            cmd.arg(format!("--time={t}"));
        }
        if let Some(d) = dependency {
            cmd.arg(format!("--dependency={d}"));
        }
        cmd.args(&args.sbatch_arg);
        cmd.args(script);
        let out = cmd
            .output()
            .context("running sbatch (is Slurm's client on PATH?)")?;
        if !out.status.success() {
            bail!(
                "sbatch refused the {name} job: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        // --parsable prints `id` or `id;cluster`.
        let id = text.trim().split(';').next().unwrap_or_default().to_owned();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            bail!("sbatch printed no job id for the {name} job: {text:?}");
        }
        Ok(id)
    };
    let unit_sh = dir.join("unit.sh").display().to_string();
    // The record is written after every job, so that a submission that fails half-way still
    // knows what it submitted.
    let save = |jobs: &[Job]| -> anyhow::Result<()> {
        let record = Submission {
            units: lines.clone(),
            jobs: jobs.to_vec(),
        };
        lth_store::write_atomic(
            &dir.join("jobs.json"),
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )?;
        Ok(())
    };
    let mut jobs = Vec::new();
    let mut lottery_job = None;
    if !lottery_todo.is_empty() {
        let id = sbatch(
            "lottery",
            Some(&lottery_todo),
            None,
            std::slice::from_ref(&unit_sh),
        )?;
        jobs.push(Job {
            id: id.clone(),
            kind: "lottery".into(),
            part: None,
            indices: lottery_todo.clone(),
        });
        save(&jobs)?;
        lottery_job = Some(id);
    }
    for (p, todo) in &parts_todo {
        // Those whose lottery runs in this submission wait for exactly that task.
        let (after, free): (Vec<usize>, Vec<usize>) =
            todo.iter().partition(|i| lottery_todo.contains(i));
        for (indices, dependency) in [
            (
                after,
                lottery_job.as_ref().map(|j| format!("aftercorr:{j}")),
            ),
            (free, None),
        ] {
            if indices.is_empty() {
                continue;
            }
            let id = sbatch(
                &format!("part{p}"),
                Some(&indices),
                dependency,
                &[unit_sh.clone(), p.to_string()],
            )?;
            jobs.push(Job {
                id,
                kind: "part".into(),
                part: Some(*p),
                indices,
            });
            save(&jobs)?;
        }
    }
    let all: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let collect = sbatch(
        "collect",
        None,
        Some(format!("afterok:{}", all.join(":"))),
        &[dir.join("collect.sh").display().to_string()],
    )?;
    jobs.push(Job {
        id: collect.clone(),
        kind: "collect".into(),
        part: None,
        indices: Vec::new(),
    });
    save(&jobs)?;
    say_skipped(&g.plan);
    let parts: usize = parts_todo.iter().map(|(_, t)| t.len()).sum();
    println!(
        "submitted {target} {scale} (submission {n}, {}): {}, {}, then the report (job \
         {collect})",
        dir.display(),
        lth_report::count(lottery_todo.len(), "lottery unit"),
        lth_report::count(parts, "part"),
    );
    for j in &jobs {
        println!(
            "  job {}: {}{}",
            j.id,
            j.kind,
            match (j.part, j.indices.len()) {
                (Some(p), n) => format!(" {p}, {}", lth_report::count(n, "task")),
                (None, 0) => String::new(),
                (None, n) => format!(", {}", lth_report::count(n, "task")),
            }
        );
    }
    println!(
        "status: lth grid status {target} --scale {scale} --runs-dir {}",
        args.target.common.runs_dir.display()
    );
    Ok(())
}

fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let common = CommonArgs::store(args.data.clone(), args.runs_dir.clone());
    let g = grid(&args.target, &args.at, &common)?;
    let target = &g.plan.target;
    let scale = &g.scale;
    let subs = submissions(&g.dir)?;
    let last = subs.last();
    let ids: Vec<&str> = last
        .map(|(_, _, s)| s.jobs.iter().map(|j| j.id.as_str()).collect())
        .unwrap_or_default();
    let states = slurm_states(&ids);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for lottery in g.plan.lotteries() {
        let units =
            std::iter::once(lottery.clone()).chain((0..g.plan.parts(&lottery)).map(|p| GridUnit {
                part: Some(p),
                ..lottery.clone()
            }));
        for unit in units {
            let (state, detail) = if is_done(&g.dir, &unit) {
                ("done".to_owned(), String::new())
            } else {
                // The job and index that last took this unit.
                let taken = last.and_then(|(_, dir, s)| {
                    let index = s.units.iter().position(|u| {
                        *u == GridUnit {
                            part: None,
                            ..unit.clone()
                        }
                        .to_string()
                    })?;
                    let job = s.jobs.iter().find(|j| {
                        j.kind != "collect" && j.part == unit.part && j.indices.contains(&index)
                    })?;
                    Some((dir, job, index))
                });
                match taken {
                    None => ("not submitted".to_owned(), String::new()),
                    Some((dir, job, index)) => {
                        let task = format!("{}_{index}", job.id);
                        let log = dir.join("logs").join(format!(
                            "{}_{}_{index}.out",
                            job.part
                                .map_or("lottery".to_owned(), |p| format!("part{p}")),
                            job.id
                        ));
                        match task_state(&states, &job.id, Some(index)) {
                            Some(s) if queued(s) => (s.to_lowercase(), format!("task {task}")),
                            Some(s) => (
                                "failed".to_owned(),
                                format!("task {task} ended {s}; log {}", log.display()),
                            ),
                            None => (
                                "not done".to_owned(),
                                format!(
                                    "task {task} left the queue without finishing; log {}",
                                    log.display()
                                ),
                            ),
                        }
                    }
                }
            };
            *counts.entry(state.clone()).or_default() += 1;
            lines.push(format!(
                "{:<28} {state}{}",
                unit.to_string(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ));
        }
    }
    match last {
        Some((n, dir, s)) => {
            let collect = s.jobs.iter().find(|j| j.kind == "collect");
            println!(
                "{target} {scale}: submission {n} ({}){}",
                dir.display(),
                collect.map_or(String::new(), |c| format!(
                    "; report job {}: {}",
                    c.id,
                    task_state(&states, &c.id, None)
                        .map_or("left the queue".to_owned(), str::to_lowercase)
                ))
            );
        }
        None => {
            println!("{target} {scale}: never submitted (lth grid submit {target} --scale {scale})")
        }
    }
    for l in &lines {
        println!("{l}");
    }
    say_skipped(&g.plan);
    let total: usize = counts.values().sum();
    let list: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("{target} {scale}: {total} units: {}", list.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_state_is_its_own_or_its_pending_arrays() {
        let states: BTreeMap<String, String> = [
            ("7_0", "COMPLETED"),
            ("7_[1-3]", "PENDING"),
            ("8", "RUNNING"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(task_state(&states, "7", Some(0)), Some("COMPLETED"));
        assert_eq!(task_state(&states, "7", Some(2)), Some("PENDING"));
        assert_eq!(task_state(&states, "8", None), Some("RUNNING"));
        assert_eq!(task_state(&states, "9", Some(0)), None);
        assert!(queued("PENDING") && !queued("COMPLETED") && !queued("CANCELLED"));
    }

    /// sbatch's time formats pass; anything else is refused before a submission is written.
    #[test]
    fn time_limits_are_sbatchs_formats() {
        for good in [
            "30",
            "30:00",
            "2:00:00",
            "1-0",
            "1-12",
            "1-12:30",
            "1-12:30:00",
            "UNLIMITED",
        ] {
            assert_eq!(slurm_time(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "garbage", "", "0", "1:2:3:4", "1-", "-5", "2h", "1-2-3", "1:-2", "0:00",
        ] {
            let e = slurm_time(bad).unwrap_err();
            assert!(e.contains("is not a Slurm time limit"), "{bad}: {e}");
        }
    }

    #[test]
    fn marks_and_quotes_are_unambiguous() {
        let u: GridUnit = "resnet20_low/3/1".parse().unwrap();
        assert_eq!(mark_name(&u), "resnet20_low%3%1");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
