//! `lth grid` against a real Slurm: munged, slurmctld and slurmd (Debian's, which `cargo xtask
//! test` installs) configured for localhost in a temporary folder, started by the test and stopped
//! when it ends, whatever happens. fig3 at the smoke scale through the grid gives the very
//! `results.csv` of the same command run locally; an array task killed mid-run and a second
//! submission finish the grid with nothing recomputed that was done.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{fashion_root, ok};

/// A Slurm cluster of one node on localhost, in a temporary folder.
///
/// Its daemons, and every job they start, live in a PID namespace of their own, whose first
/// process (a shell) reads a pipe from this test until it closes. However the test ends (it
/// returns, panics, or is killed by a signal, SIGKILL included), the pipe closes, the shell exits,
/// and the kernel kills everything left in the namespace: munged, slurmctld, slurmd, slurmstepd
/// and the jobs' `lth` processes. Nothing outlives the test.
struct Slurm {
    dir: tempfile::TempDir,
    /// `unshare` running the shell; its standard input is the pipe.
    supervisor: Child,
}

/// The environment variable that makes `a_killed_test_leaves_no_cluster_behind` the process it
/// kills: a cluster with a job running, announced in the file it names.
const CHILD: &str = "LTH_GRID_TEST_CHILD";

fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

impl Slurm {
    /// Starts the cluster, or says why it cannot: `None` only when LTH_ALLOW_NO_SLURM is set;
    /// otherwise a missing Slurm fails the test.
    fn start() -> Option<Slurm> {
        let missing: Vec<&str> = [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "squeue",
            "scancel",
        ]
        .into_iter()
        .filter(|p| program(p).is_none())
        .collect();
        if !missing.is_empty() {
            if std::env::var_os("LTH_ALLOW_NO_SLURM").is_some() {
                eprintln!(
                    "SKIPPED: Slurm is not installed ({} missing) and LTH_ALLOW_NO_SLURM is set",
                    missing.join(", ")
                );
                return None;
            }
            panic!(
                "Slurm is not installed ({} missing): run `cargo xtask setup --slurm` as root \
                 (Debian's slurmctld, slurmd, slurm-client, munge), or set LTH_ALLOW_NO_SLURM=1 \
                 to skip this test",
                missing.join(", ")
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("lth-slurm")
            .tempdir()
            .unwrap();
        let d = dir.path().to_owned();
        let d = d.as_path();
        for sub in ["state", "spool", "log"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        // munge: a key of its own, a socket in the folder.
        let key = d.join("munge.key");
        let mut bytes = [0u8; 1024];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").unwrap(),
            &mut bytes,
        )
        .unwrap();
        std::fs::write(&key, bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let socket = d.join("munge.sock");
        let host = String::from_utf8(run(Command::new("hostname").arg("-s")).stdout)
            .unwrap()
            .trim()
            .to_owned();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let conf = format!(
            "ClusterName=lthtest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             SlurmctldPort={ctld}\n\
             SlurmdPort={slurmd}\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\n\
             SlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\n\
             SlurmdLogFile={d}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\n\
             SchedulerType=sched/backfill\n\
             SchedulerParameters=sched_interval=1\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             MpiDefault=none\n\
             ReturnToService=2\n\
             MinJobAge=3600\n\
             NodeName=lthnode NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
             PartitionName=test Nodes=lthnode Default=YES MaxTime=INFINITE State=UP\n",
            socket = socket.display(),
            ctld = free_port(),
            slurmd = free_port(),
            d = d.display(),
        );
        std::fs::write(d.join("slurm.conf"), conf).unwrap();
        // The daemons go into the background (inside the namespace) as they start; the shell
        // then waits on its standard input, the test's pipe.
        let q = |p: &Path| format!("'{}'", p.display());
        let conf = d.join("slurm.conf");
        let script = format!(
            "set -e\n\
             {munged} --force --socket={socket} --key-file={key} --log-file={mlog} \
             --pid-file={mpid} --seed-file={seed}\n\
             {slurmctld} -f {conf}\n\
             {slurmd} -N lthnode -f {conf}\n\
             echo started\n\
             cat >/dev/null\n",
            munged = q(&program("munged").unwrap()),
            slurmctld = q(&program("slurmctld").unwrap()),
            slurmd = q(&program("slurmd").unwrap()),
            socket = q(&socket),
            key = q(&key),
            mlog = q(&d.join("log/munged.log")),
            mpid = q(&d.join("munged.pid")),
            seed = q(&d.join("munged.seed")),
            conf = q(&conf),
        );
        let errors = d.join("log/supervisor.log");
        let mut supervisor = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "sh",
                "-c",
            ])
            .arg(&script)
            .env("SLURM_CONF", &conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&errors).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("running unshare (util-linux) for the cluster: {e}"));
        let mut first = String::new();
        std::io::BufReader::new(supervisor.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let slurm = Slurm { dir, supervisor };
        assert!(
            first.trim() == "started",
            "the cluster did not start (it needs root, for a PID namespace and the daemons): {}\n{}",
            std::fs::read_to_string(&errors).unwrap_or_default(),
            slurm.logs()
        );
        let started = Instant::now();
        loop {
            let out = run(slurm.cmd("sinfo").args(["-h", "-o", "%t"]));
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "idle" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the node did not become idle (sinfo says {state:?}): {}",
                slurm.logs()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        Some(slurm)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A Slurm program (or `lth`) talking to this cluster.
    fn cmd(&self, name: &str) -> Command {
        let path = if name == "lth" {
            PathBuf::from(env!("CARGO_BIN_EXE_lth"))
        } else {
            program(name).unwrap()
        };
        let mut c = Command::new(path);
        c.env("SLURM_CONF", self.conf()).env_remove("LTH_DATA");
        c
    }

    fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log", "munged.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.path().join("log").join(f))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- {f}:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `job_task → state` for every job the controller knows.
    fn jobs(&self) -> BTreeMap<String, String> {
        let out = run(self
            .cmd("squeue")
            .args(["-h", "-r", "--states=all", "-o", "%i|%T"]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (a, b) = l.split_once('|')?;
                Some((a.to_owned(), b.to_owned()))
            })
            .collect()
    }

    /// Waits until no job is pending or running.
    fn wait_idle(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            let out = run(self.cmd("squeue").args(["-h", "-o", "%i"]));
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "jobs still queued after {limit:?}: {:?}\n{}",
                self.jobs(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Slurm {
    /// Closes the pipe: the shell exits, and the kernel kills what is left in its namespace.
    fn drop(&mut self) {
        drop(self.supervisor.stdin.take());
        let _ = self.supervisor.wait();
    }
}

/// Every `done.json` under a folder, with its modification time.
fn done_files(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "done.json") {
                found.insert(p.clone(), e.metadata().unwrap().modified().unwrap());
            }
        }
    }
    found
}

fn stdout(out: &Output) -> String {
    ok(out)
}

#[test]
fn fig3_smoke_through_slurm_matches_a_local_run_and_survives_a_killed_task() {
    let Some(data) = fashion_root() else {
        return;
    };
    let Some(slurm) = Slurm::start() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let common = |runs: &str, out: &str| -> Vec<String> {
        [
            "--scale",
            "smoke",
            "--device",
            "cpu",
            "--data-dir",
            data.to_str().unwrap(),
            "--runs-dir",
            t.join(runs).to_str().unwrap(),
            "--out",
            t.join(out).to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    };

    // The same command run locally, one thread as each grid task has.
    ok(&run(slurm
        .cmd("lth")
        .args(["repro", "fig3", "--quiet", "--threads", "1"])
        .args(common("local_runs", "local_out"))
        .current_dir(root)));

    // The grid: submit, then kill a lottery task as soon as one runs.
    let submit = || {
        run(slurm
            .cmd("lth")
            .args(["grid", "submit", "fig3"])
            .args(common("runs", "out"))
            .current_dir(root))
    };
    let status = || {
        stdout(&run(slurm
            .cmd("lth")
            .args(["grid", "status", "fig3"])
            // grid status trains nothing, so it takes no --device.
            .args({
                let mut c = common("runs", "out");
                c.drain(2..4);
                c
            })
            .current_dir(root)))
    };
    let first = stdout(&submit());
    assert!(
        first.contains("3 lottery units, 3 parts"),
        "fig3 smoke has three LeNet replicates of one sample each: {first}"
    );
    // The first job listed is the lottery array.
    let lottery_job = first
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("job ")?
                .strip_suffix(": lottery, 3 tasks")
        })
        .unwrap_or_else(|| panic!("no lottery job in: {first}"))
        .to_owned();
    let started = Instant::now();
    let killed = loop {
        let running = slurm
            .jobs()
            .into_iter()
            .find(|(id, state)| id.starts_with(&format!("{lottery_job}_")) && state == "RUNNING");
        if let Some((id, _)) = running {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no lottery task ran: {:?}",
            slurm.jobs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Let it write something (a checkpoint, maybe a level) before it is killed.
    std::thread::sleep(Duration::from_secs(1));
    let out = run(slurm.cmd("scancel").arg(&killed));
    assert!(out.status.success(), "scancel {killed}");
    slurm.wait_idle(Duration::from_secs(600));
    let index: usize = killed.rsplit('_').next().unwrap().parse().unwrap();
    let unit = format!("lenet/{}", index + 1);
    let after_kill = status();
    let line = |s: &str, u: &str| {
        s.lines()
            .find(|l| l.split_whitespace().next() == Some(u))
            .unwrap_or_else(|| panic!("no line for {u} in:\n{s}"))
            .to_owned()
    };
    assert!(
        line(&after_kill, &unit).contains("failed")
            && line(&after_kill, &unit).contains("CANCELLED"),
        "the killed unit is reported failed:\n{after_kill}"
    );
    assert!(
        !line(&after_kill, &format!("{unit}/0")).contains(" done"),
        "its part could not run:\n{after_kill}"
    );
    assert!(
        !t.join("out/fig3/smoke/results.csv").exists(),
        "the report job waited for every unit"
    );
    let before = done_files(&t.join("runs"));
    assert!(
        !before.is_empty(),
        "the other units finished:\n{after_kill}"
    );

    // A second submission takes only what is not done, and finishes the grid.
    let second = stdout(&submit());
    assert!(
        second.contains("1 lottery unit, 1 part"),
        "only the killed unit and its part are submitted again: {second}"
    );
    slurm.wait_idle(Duration::from_secs(600));
    let done = status();
    assert!(
        done.trim_end().ends_with("fig3 smoke: 6 units: 6 done"),
        "every unit is done:\n{done}"
    );
    let after = done_files(&t.join("runs"));
    for (path, time) in &before {
        assert_eq!(
            after.get(path),
            Some(time),
            "{} was trained again",
            path.display()
        );
    }
    assert!(after.len() > before.len(), "the killed unit was trained");

    // The report the grid wrote is the local run's, byte for byte.
    let grid_results = std::fs::read_to_string(t.join("out/fig3/smoke/results.csv")).unwrap();
    let local_results =
        std::fs::read_to_string(t.join("local_out/fig3/smoke/results.csv")).unwrap();
    assert_eq!(
        grid_results, local_results,
        "the grid's results.csv differs from the local run's"
    );

    // Collecting by hand trains nothing and judges the same.
    let collected = stdout(&run(slurm
        .cmd("lth")
        .args(["repro", "fig3", "--quiet", "--threads", "1", "--check"])
        .args(common("runs", "collect_out"))
        .current_dir(root)));
    assert!(collected.contains(" PASS, 0 FAIL"), "{collected}");
    assert_eq!(
        done_files(&t.join("runs")),
        after,
        "collecting trained something"
    );
    assert_eq!(
        std::fs::read_to_string(t.join("collect_out/fig3/smoke/results.csv")).unwrap(),
        local_results
    );
    // And a third submission has nothing to do.
    let third = stdout(&submit());
    assert!(third.contains("every unit is done"), "{third}");
}

/// Without Slurm: a grid never submitted lists its units, and a submission without sbatch says
/// what is missing in one line.
#[test]
fn grid_status_lists_the_units_and_submit_needs_sbatch() {
    let Some(data) = fashion_root() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let args = |cmd: &str| -> Vec<String> {
        [
            "grid",
            cmd,
            "fig3",
            "--scale",
            "smoke",
            "--data-dir",
            data.to_str().unwrap(),
            "--runs-dir",
            tmp.path().join("runs").to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let out = stdout(&run(Command::new(env!("CARGO_BIN_EXE_lth"))
        .args(args("status"))
        .current_dir(root)));
    assert!(out.contains("fig3 smoke: never submitted"), "{out}");
    assert!(
        out.contains("lenet/3/0")
            && out
                .trim_end()
                .ends_with("fig3 smoke: 6 units: 6 not submitted"),
        "{out}"
    );
    // The CIFAR rows are skipped once, with the reason.
    let skipped: Vec<&str> = out.lines().filter(|l| l.starts_with("SKIPPED")).collect();
    assert_eq!(skipped.len(), 1, "{out}");
    assert!(skipped[0].contains("resnet20_standard") && skipped[0].contains("cifar10 is absent"));

    let grid = tmp.path().join("runs/grid/fig3_smoke");
    let submissions = || {
        std::fs::read_dir(&grid).map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("submit_"))
                .count()
        })
    };
    // Without Slurm's client: refused before a submission folder is written.
    let out = run(Command::new(env!("CARGO_BIN_EXE_lth"))
        .args(args("submit"))
        .args(["--pack", "3"])
        .env("PATH", "")
        .current_dir(root));
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("needs Slurm's client on PATH; nothing was written") && !e.contains("panicked"),
        "{e}"
    );
    assert_eq!(submissions(), 0, "nothing written");
    // An sbatch that runs but refuses the job: the scripts were written first, and every task
    // packs as the submission asked.
    let bin = tmp.path().join("fake-slurm");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("sbatch"),
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'slurm 0 (a stand-in)'; exit 0; }\n\
         echo 'sbatch: error: refused by the stand-in' >&2\nexit 1\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(bin.join("sbatch")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(bin.join("sbatch"), perms).unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_lth"))
        .args(args("submit"))
        .args(["--pack", "3"])
        .env("PATH", &bin)
        .current_dir(root));
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("refused by the stand-in"), "{e}");
    let script = std::fs::read_dir(&grid)
        .unwrap()
        .map(|e| e.unwrap().path().join("unit.sh"))
        .find(|p| p.exists())
        .unwrap();
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("'--pack' '3'"), "{text}");
    assert_eq!(submissions(), 1);
}

/// The processes whose command line or environment names `dir` (the daemons are started with
/// their configuration there, and pass `SLURM_CONF` on to slurmstepd and the jobs).
fn processes_of(dir: &Path) -> Vec<String> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let read = |f: &str| std::fs::read(e.path().join(f)).unwrap_or_default();
        let (cmdline, environ) = (read("cmdline"), read("environ"));
        let names = |b: &[u8]| b.windows(needle.len()).any(|w| w == needle);
        if names(&cmdline) || names(&environ) {
            let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("{} {}", name.to_string_lossy(), cmd.trim()));
        }
    }
    found
}

/// A child process killed (SIGKILL) when this handle is dropped, however the test ends: a failed
/// assertion must not leave the child, and with it a cluster, running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test killed by a signal (as a time limit or Ctrl-C kills it), mid-run, with a job running,
/// leaves no daemon and no job behind: it runs itself again as the process to kill (`CHILD`).
#[test]
fn a_killed_test_leaves_no_cluster_behind() {
    if let Some(announce) = std::env::var_os(CHILD) {
        // The child: a cluster, a job running on it, and then a wait to be killed.
        let Some(slurm) = Slurm::start() else {
            return;
        };
        let out = run(slurm
            .cmd("sbatch")
            .args(["--output=/dev/null", "--wrap", "sleep 600"])
            .arg(format!("--chdir={}", slurm.dir.path().display())));
        assert!(out.status.success(), "sbatch: {}", stdout(&out));
        std::fs::write(&announce, slurm.dir.path().as_os_str().as_encoded_bytes()).unwrap();
        std::thread::sleep(Duration::from_secs(600));
        panic!("not killed within ten minutes");
    }
    let tmp = tempfile::tempdir().unwrap();
    let announce = tmp.path().join("cluster");
    let log = tmp.path().join("child.log");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "a_killed_test_leaves_no_cluster_behind",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, &announce)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let dir = loop {
        if let Ok(text) = std::fs::read_to_string(&announce)
            && !text.is_empty()
        {
            break PathBuf::from(text);
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if status.success() && std::env::var_os("LTH_ALLOW_NO_SLURM").is_some() {
                eprintln!(
                    "SKIPPED: {}",
                    text.lines()
                        .find(|l| l.starts_with("SKIPPED"))
                        .unwrap_or("no Slurm")
                );
                return;
            }
            panic!("the child ended before its cluster started ({status}):\n{text}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no cluster after two minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Its job is running: the scan sees the daemons and the job's own process (squeue says
    // RUNNING a moment before slurmstepd has started it).
    let started = Instant::now();
    let before = loop {
        let found = processes_of(&dir);
        if found.iter().any(|p| p.contains("slurmd")) && found.iter().any(|p| p.contains("sleep")) {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the scan does not see the cluster and its job: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    // SIGTERM, as `timeout` or a CI runner sends it: the test process ends without unwinding.
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let ended = child.0.wait().unwrap();
    assert!(!ended.success(), "the child was killed");
    let started = Instant::now();
    let left = loop {
        let left = processes_of(&dir);
        if left.is_empty() || started.elapsed() > Duration::from_secs(15) {
            break left;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        left.is_empty(),
        "left running after the test was killed (of {} before): {left:?}",
        before.len()
    );
}
