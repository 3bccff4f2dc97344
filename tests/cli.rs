//! End-to-end tests of the `lth` binary on generated data (and on Fashion-MNIST, which set-up fetches).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{SMALL, SMALL_SEARCH, err, fashion_root, lth, lth_env, ok};

/// A temporary folder holding generated MNIST-format data under `data/mnist`.
fn workspace() -> tempfile::TempDir {
    workspace_of(300)
}

fn workspace_of(train: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    lth_data::testutil::write_mnist_like(&dir.path().join("data/mnist"), train, 100, true).unwrap();
    dir
}

/// Every file under `dir` whose path ends with `suffix`, relative to `dir`, sorted. Tolerates
/// files that vanish while it looks (a running process renames its temporary files).
fn paths_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// [`paths_ending`] with each file's contents (for folders no process is writing).
fn files_ending(dir: &Path, suffix: &str) -> Vec<(PathBuf, Vec<u8>)> {
    paths_ending(dir, suffix)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(dir.join(&p))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join(&p).display()));
            (p, bytes)
        })
        .collect()
}

/// `args` fail with an error that says `expected`, on one `error:` line (clap may add its pointer
/// to --help), never a panic or a backtrace, and nothing is written into the run store.
fn assert_refused(args: &[&str], cwd: &Path, expected: &str) {
    let e = err(&lth(args, cwd));
    assert!(e.contains(expected), "{args:?}: {e}");
    assert!(e.starts_with("error: "), "{args:?}: {e}");
    assert!(
        !e.contains("panicked") && !e.contains("backtrace"),
        "{args:?}: {e}"
    );
    assert!(
        !cwd.join("runs").exists(),
        "{args:?} trained or wrote something"
    );
}

/// [`SMALL`] with its argument at `i` replaced by `value`.
fn small_with(i: usize, value: &'static str) -> Vec<&'static str> {
    let mut v = SMALL.to_vec();
    v[i] = value;
    v
}

fn run_folder(root: &Path) -> PathBuf {
    let runs: Vec<_> = std::fs::read_dir(root.join("runs")).unwrap().collect();
    assert_eq!(runs.len(), 1);
    runs[0].as_ref().unwrap().path().join("replicate_1")
}

#[test]
fn train_writes_a_run_folder_and_same_seeds_give_identical_metrics() {
    let (a, b) = (workspace(), workspace());
    let out = ok(&lth(SMALL, a.path()));
    assert!(out.contains("test accuracy: final"), "{out}");
    ok(&lth(SMALL, b.path()));
    let (ra, rb) = (run_folder(a.path()), run_folder(b.path()));
    assert_eq!(ra.file_name(), rb.file_name());
    let metrics = std::fs::read_to_string(ra.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics,
        std::fs::read_to_string(rb.join("metrics.csv")).unwrap()
    );
    // 250 examples / 25 = 10 steps per epoch: rows at steps 0, 4, 8, 12, 16 and 20.
    assert_eq!(metrics.lines().count(), 1 + 6, "{metrics}");
    for f in ["final.safetensors", "done.json"] {
        assert!(ra.join(f).is_file(), "{f} missing");
    }
    assert!(ra.parent().unwrap().join("hparams.json").is_file());
    // Running it again trains nothing and says where the results are.
    let again = ok(&lth(SMALL, a.path()));
    assert!(again.contains("already finished"), "{again}");
    assert!(again.contains("run folder: runs/train_"), "{again}");
}

#[test]
fn bad_flags_name_the_flag_and_the_expected_form() {
    let w = workspace();
    let mut args = SMALL.to_vec();
    args[6] = "4e";
    let e = err(&lth(&args, w.path()));
    assert!(
        e.contains("--steps") && e.contains("expected a form like 160ep"),
        "{e}"
    );
    let mut args = SMALL.to_vec();
    args[14] = "gpu";
    let e = err(&lth(&args, w.path()));
    assert!(
        e.contains("--device") && e.contains("auto, cpu, cuda"),
        "{e}"
    );
    let e = err(&lth(&["train", "--model", "resnet_9000"], w.path()));
    assert!(e.contains("unknown model `resnet_9000`"), "{e}");
    let e = err(&lth(
        &[
            "train",
            "--model",
            "lenet_300_100",
            "--optimizer",
            "adam",
            "--momentum",
            "0.9",
        ],
        w.path(),
    ));
    assert!(e.contains("not adam"), "{e}");
}

/// Inputs that no training can use are refused before any data is trained on or any run folder
/// written, with the flag named and the reason (each once failed differently: see the hardening
/// table in the README).
#[test]
fn refused_commands_say_why_and_write_nothing() {
    let w = workspace();
    let lottery = |extra: &[&'static str]| {
        let mut v = vec![
            "lottery",
            "--model",
            "lenet_300_100",
            "--dataset",
            "mnist",
            "--levels",
            "1",
            "--steps",
            "2it",
            "--validation",
            "50",
            "--device",
            "cpu",
        ];
        v.extend_from_slice(extra);
        v
    };
    let train = |extra: &[&'static str]| {
        let mut v = SMALL.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let no_cuda = !tch::Cuda::is_available();
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (
            lottery(&["--rate", "1.5"]),
            "--rate must be a fraction in [0, 1), got 1.5",
        ),
        (
            lottery(&["--exclude", "no_such_layer"]),
            "--exclude `no_such_layer`: not a prunable layer of this model",
        ),
        // Flags that would change nothing but the run's hash.
        (
            lottery(&[
                "--exclude",
                "fc_layers.0.weight,fc_layers.1.weight,fc.weight",
            ]),
            "--exclude: every prunable layer of this model is excluded",
        ),
        (
            lottery(&["--strategy", "layerwise", "--conv-rate", "0.1"]),
            "--conv-rate 0.1: lenet_300_100 has no convolutions to prune",
        ),
        (
            lottery(&["--strategy", "global", "--conv-rate", "0.1"]),
            "--conv-rate applies to layerwise pruning only",
        ),
        (
            lottery(&["--rewind", "5it"]),
            "the rewind point 5it (5 iterations) must come before the end of training",
        ),
        (
            lottery(&["--criterion", "largest"]),
            "unknown criterion `largest`: expected one of large_final,",
        ),
        (
            train(&["--bn-init", "0.5"]),
            "--bn-init 0.5: lenet_300_100 has no BatchNorm layers",
        ),
        (
            train(&["--replicates", "1,2", "--pack", "0"]),
            "'--pack <N>': must be at least 1, got 0",
        ),
        (
            vec![
                "stability",
                "--model",
                "lenet_300_100",
                "--dataset",
                "mnist",
                "--level",
                "1",
                "--samples",
                "0",
            ],
            "'--samples <SAMPLES>': must be at least 1, got 0",
        ),
        (
            vec![
                "interpolate",
                "--model",
                "lenet_300_100",
                "--dataset",
                "mnist",
                "--level",
                "1",
                "--points",
                "1",
            ],
            "must be at least 2, got 1",
        ),
        (
            vec![
                "train",
                "--model",
                "cifar_resnet_20",
                "--dataset",
                "mnist",
                "--device",
                "cpu",
            ],
            "--augment: mnist has no standard augmentation",
        ),
        (
            train(&["--lr", "-1"]),
            "--lr must be a non-negative number, got -1",
        ),
        (
            small_with(10, "1000"),
            "--batch-size 1000 is larger than the 250 training examples of mnist",
        ),
        (
            train(&["--warmup", "3ep"]),
            "--warmup 3ep is longer than training, --steps 2ep: the learning rate would never",
        ),
        (
            train(&["--milestones", "1ep,2ep"]),
            "--milestones 2ep is not before the end of training, --steps 2ep: it would never apply",
        ),
        // Units that need the epoch length are compared once the data is read.
        (
            train(&["--milestones", "20it"]),
            "--milestones 20it is not before the end of training, --steps 2ep (20 iterations)",
        ),
        (
            small_with(6, "18446744073709551615ep"),
            "--steps 18446744073709551615ep is too long",
        ),
        (
            train(&[
                "--prune-at-init",
                "snip",
                "--sparsity",
                "0.5",
                "--prune-batch",
                "100000",
            ]),
            "--prune-batch 100000 is larger than the 250 training examples",
        ),
        // Zero means zero, or is refused; never "all".
        (
            train(&["--subset", "0"]),
            "--subset 0: at least one example (leave --subset out to train on all of them)",
        ),
        (small_with(12, "0it"), "--eval-every 0: at least one step"),
        (
            vec![
                "early-bird",
                "--model",
                "cifar_vgg_11",
                "--speed",
                "0",
                "--device",
                "cpu",
            ],
            "--speed 0: at least one step per round",
        ),
        // A negative count gets our message, not clap's "unexpected argument".
        (
            small_with(6, "-5it"),
            "bad step count `-5it`: a number of steps cannot be negative",
        ),
        (
            lottery(&["--rewind", "-1ep"]),
            "bad step count `-1ep`: a number of steps cannot be negative",
        ),
    ];
    if no_cuda {
        cases.push((small_with(14, "cuda:1"), "(--device cuda:1)"));
    } else {
        eprintln!("SKIPPED: --device cuda:1 refused for want of CUDA: this machine has CUDA");
    }
    let repro_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("repro");
    let grid = |extra: &[&'static str]| {
        let mut v = vec![
            "grid",
            "submit",
            "fig3",
            "--scale",
            "smoke",
            "--device",
            "cpu",
            "--repro-dir",
            repro_dir.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        v
    };
    cases.push((
        grid(&["--time", "garbage"]),
        "`garbage` is not a Slurm time limit",
    ));
    // Without Slurm's client, nothing is written.
    let e = err(&lth_env(&grid(&[]), w.path(), &[("PATH", "/nonexistent")]));
    assert!(
        e.contains("`lth grid submit` needs Slurm's client on PATH; nothing was written"),
        "{e}"
    );
    assert!(
        !w.path().join("runs").exists(),
        "grid submit wrote a folder"
    );
    for (args, expected) in cases {
        assert_refused(&args, w.path(), expected);
    }
    // A file where the run store's folder belongs is named once, with what to do.
    std::fs::write(w.path().join("store"), b"").unwrap();
    let mut v = train(&[]);
    v.extend(["--runs-dir", "store"]);
    let e = err(&lth(&v, w.path()));
    assert_eq!(
        e.trim(),
        "error: store: a file is where a run folder belongs (move it away, or choose another \
         --runs-dir)"
    );
    // An I/O error's cause is said once.
    let e = err(&lth(&lottery(&["--runs-dir", "store/sub"]), w.path()));
    assert_eq!(e.matches("a file is where").count(), 1, "{e}");
    std::fs::remove_file(w.path().join("store")).unwrap();
    // `--milestones none` clears the recipe's.
    let out = ok(&lth(&train(&["--milestones", "none", "--quiet"]), w.path()));
    assert!(out.contains("20 steps (2ep)"), "{out}");
}

/// A finished run whose result file was deleted, truncated or garbled is never trusted: the
/// re-run names the file and what to do, `lth verify` lists it, and `--retrain-damaged` trains it
/// again.
#[test]
fn damaged_finished_runs_are_named_and_can_be_retrained() {
    let w = workspace();
    let mut args = SMALL.to_vec();
    args.push("--quiet");
    let first = ok(&lth(&args, w.path()));
    let run = run_folder(w.path());
    let done = std::fs::read_to_string(run.join("done.json")).unwrap();
    assert!(done.contains("\"final.safetensors\": \""), "{done}");
    let weights = std::fs::read(run.join("final.safetensors")).unwrap();
    for damage in ["delete", "truncate", "garble"] {
        match damage {
            "delete" => std::fs::remove_file(run.join("final.safetensors")).unwrap(),
            "truncate" => {
                std::fs::write(run.join("final.safetensors"), &weights[..weights.len() / 2])
                    .unwrap()
            }
            _ => {
                let mut bad = weights.clone();
                let i = bad.len() - 9;
                bad[i] ^= 0x40;
                std::fs::write(run.join("final.safetensors"), &bad).unwrap()
            }
        }
        let e = err(&lth(&args, w.path()));
        assert!(
            e.contains("finished, but final.safetensors")
                && e.contains("--retrain-damaged")
                && e.lines().count() == 1,
            "{damage}: {e}"
        );
        let out = lth(&["verify", "runs"], w.path());
        assert!(!out.status.success(), "{damage}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("DAMAGED") && text.contains("1 damaged"),
            "{text}"
        );
        let mut again = args.clone();
        again.push("--retrain-damaged");
        let out = ok(&lth(&again, w.path()));
        // Retrained bit-identically on this machine: the same metrics as the first time.
        assert_eq!(
            out.lines()
                .filter(|l| l.contains("test accuracy"))
                .collect::<Vec<_>>(),
            first
                .lines()
                .filter(|l| l.contains("test accuracy"))
                .collect::<Vec<_>>()
        );
        let text = ok(&lth(&["verify", "runs"], w.path()));
        assert!(text.contains("1 finished units, 0 damaged"), "{text}");
    }
    // A second finished run (another seed), then damage that verify used to miss or stop at: an
    // edited accuracy (still valid JSON) in one done.json, a garbled done.json in the other, a
    // garbled hparams.json. Every one is listed; verify does not stop at the first.
    let mut second = args.clone();
    second.extend(["--replicate", "2"]);
    ok(&lth(&second, w.path()));
    let other = run.parent().unwrap().join("replicate_2");
    let done = std::fs::read_to_string(run.join("done.json")).unwrap();
    let accuracy = done
        .lines()
        .find(|l| l.contains("\"final_test_accuracy\""))
        .unwrap()
        .to_owned();
    std::fs::write(
        run.join("done.json"),
        done.replace(&accuracy, "  \"final_test_accuracy\": 0.9918,"),
    )
    .unwrap();
    std::fs::write(other.join("done.json"), b"{\"final_test_acc").unwrap();
    std::fs::write(run.parent().unwrap().join("hparams.json"), b"not json").unwrap();
    let out = lth(&["verify", "--runs-dir", "runs"], w.path());
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("replicate_1: done.json does not match its own digest")
            && text.contains("replicate_2: ")
            && text.contains("hparams.json is not readable JSON")
            && text.contains("2 finished units, 3 damaged"),
        "{text}"
    );
}

/// A lottery level whose mask was damaged in place (zeros written inside it: still a readable
/// file) is never trusted; `--retrain-damaged` removes the damaged file and makes the mask again
/// from the verified level before, so the level ends with the very files of the undamaged run.
#[test]
fn a_level_with_a_damaged_mask_is_made_again_from_the_level_before() {
    let w = workspace();
    // SMALL's flags as a lottery of two levels.
    let mut args = vec!["lottery", "--levels", "2", "--quiet"];
    args.extend(&SMALL[1..]);
    ok(&lth(&args, w.path()));
    let runs = w.path().join("runs");
    let mask = runs.join(
        paths_ending(&runs, "level_1/main/mask.safetensors")
            .pop()
            .unwrap(),
    );
    let level = mask.parent().unwrap().to_owned();
    let files = |dir: &Path| -> serde_json::Value {
        let done: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("done.json")).unwrap()).unwrap();
        done["files"].clone()
    };
    let before = files(&level);
    let mut bytes = std::fs::read(&mask).unwrap();
    let n = bytes.len();
    bytes[n - n / 4..].fill(0);
    std::fs::write(&mask, &bytes).unwrap();
    let e = err(&lth(&args, w.path()));
    assert!(
        e.contains("mask.safetensors does not match its digest") && e.contains("--retrain-damaged"),
        "{e}"
    );
    let mut again = args.clone();
    again.push("--retrain-damaged");
    ok(&lth(&again, w.path()));
    assert_eq!(
        files(&level),
        before,
        "the level's files are those of the undamaged run"
    );
    let text = ok(&lth(&["verify"], w.path()));
    assert!(text.contains(" 0 damaged"), "{text}");
}

/// A derived dataset (some classes of another, relabelled) trains like any dataset: the network
/// gets one output per kept class, and the run's identity holds the class list.
#[test]
fn a_derived_dataset_trains_with_its_own_classes() {
    let w = workspace();
    let mut args = small_with(4, "mnist:classes=5-9");
    args.push("--quiet");
    let out = ok(&lth(&args, w.path()));
    assert!(out.contains("lenet_300_100 on mnist:classes=5-9"), "{out}");
    let run = run_folder(w.path());
    let hp = std::fs::read_to_string(run.parent().unwrap().join("hparams.json")).unwrap();
    assert!(hp.contains("\"dataset\": \"mnist:classes=5-9\""), "{hp}");
    let weights = lth_models::load_tensors(&run.join("final.safetensors")).unwrap();
    let fc = weights.iter().find(|(n, _)| n == "fc.weight").unwrap();
    assert_eq!(fc.1.size(), [5, 100]);
}

#[test]
fn cuda_asked_for_on_a_machine_without_it_is_a_clear_error() {
    if tch::Cuda::is_available() {
        eprintln!("SKIPPED: this machine has CUDA, so asking for it is not an error");
        return;
    }
    let w = workspace();
    let mut args = SMALL.to_vec();
    args[14] = "cuda";
    let e = err(&lth(&args, w.path()));
    assert!(e.contains("libtorch sees no CUDA device"), "{e}");
}

#[test]
fn missing_and_truncated_datasets_are_named() {
    let w = workspace();
    let e = err(&lth(
        &[
            "train",
            "--model",
            "lenet_300_100",
            "--dataset",
            "fashion-mnist",
            "--device",
            "cpu",
        ],
        w.path(),
    ));
    assert!(
        e.contains("dataset `fashion-mnist` not found under data"),
        "{e}"
    );
    assert!(e.contains("cargo xtask setup"), "{e}");
    // Cut the test images short.
    let images = w.path().join("data/mnist/t10k-images-idx3-ubyte.gz");
    let raw = {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&images).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    std::fs::remove_file(&images).unwrap();
    std::fs::write(images.with_extension(""), &raw[..raw.len() - 100]).unwrap();
    let e = err(&lth(SMALL, w.path()));
    assert!(e.contains("t10k-images-idx3-ubyte: truncated"), "{e}");
}

#[test]
fn a_run_folder_bound_to_other_hyperparameters_is_left_alone() {
    let w = workspace();
    ok(&lth(SMALL, w.path()));
    let folder = run_folder(w.path()).parent().unwrap().to_owned();
    let hp = folder.join("hparams.json");
    let text = std::fs::read_to_string(&hp)
        .unwrap()
        .replace("\"lr\": 0.0012", "\"lr\": 0.5");
    std::fs::write(&hp, &text).unwrap();
    let before = std::fs::read(run_folder(w.path()).join("metrics.csv")).unwrap();
    let e = err(&lth(SMALL, w.path()));
    assert!(
        e.contains("describes a different run (training.lr: stored 0.5, asked for 0.0012)"),
        "{e}"
    );
    assert_eq!(
        before,
        std::fs::read(run_folder(w.path()).join("metrics.csv")).unwrap()
    );
}

/// The acceptance run of the foundation: LeNet-300-100 on real Fashion-MNIST for two epochs.
/// `cargo xtask test` fetches the data first; without it this test fails and says how to get it.
#[test]
fn lenet_reaches_85_percent_on_fashion_mnist_in_two_epochs() {
    let Some(data) = fashion_root() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runs = tempfile::tempdir().unwrap();
    let out = ok(&lth(
        &[
            "train",
            "--model",
            "lenet_300_100",
            "--dataset",
            "fashion-mnist",
            "--steps",
            "2ep",
            "--device",
            "cpu",
            "--data-dir",
            data.to_str().unwrap(),
            "--runs-dir",
            runs.path().to_str().unwrap(),
        ],
        root,
    ));
    let line = out
        .lines()
        .find(|l| l.contains("test accuracy: final"))
        .unwrap();
    let acc: f64 = line
        .split("final ")
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(acc >= 85.0, "{line}");
}

#[test]
fn help_lists_the_commands() {
    let w = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(ok(&lth(&["--help"], w.path())));
    // A flag shows only on the commands that use it.
    for (command, has) in [
        ("models", false),
        ("info", false),
        ("datasets", false),
        ("sparsity", false),
        ("verify", false),
        ("train", true),
        ("repro", true),
    ] {
        let help = ok(&lth(&[command, "--help"], w.path()));
        assert_eq!(help.contains("--retrain-damaged"), has, "{command}: {help}");
    }
    // Every flag of every command says what it does (on its line, or on the lines below it).
    let commands: &[&[&str]] = &[
        &["train"],
        &["lottery"],
        &["stability"],
        &["interpolate"],
        &["elastic"],
        &["transfer"],
        &["early-bird"],
        &["repro"],
        &["grid", "submit"],
        &["grid", "status"],
        &["bench"],
        &["tropical"],
        &["sparsity"],
        &["models"],
        &["datasets"],
        &["verify"],
    ];
    for command in commands {
        let help = ok(&lth(&[*command, &["--help"]].concat(), w.path()));
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if !(trimmed.starts_with("--") || trimmed.starts_with("-h"))
                || line.len() == trimmed.len()
            {
                continue;
            }
            // `--flag <V>   what it does`, or `--flag <V>` over an indented description; clap's
            // own `[default: …]` or `[possible values: …]` is not a description.
            let said = |d: &str| !d.trim().is_empty() && !d.trim().starts_with('[');
            let inline = trimmed.split_once("  ").is_some_and(|(_, d)| said(d));
            let below = lines.get(i + 1).is_some_and(|next| {
                let next_trimmed = next.trim_start();
                said(next_trimmed)
                    && !next_trimmed.starts_with('-')
                    && next.len() - next_trimmed.len() > line.len() - trimmed.len()
            });
            assert!(
                inline || below,
                "{command:?}: `{}` has no description",
                trimmed
            );
        }
        // The recipe's defaults are said to come from the recipe, with where to read them
        // (`transfer --optimizer` names the target's optimiser, with no recipe behind it).
        if help.contains("--optimizer") && help.contains("--batch-size") {
            assert!(help.contains("default: the model's recipe; `lth models <model>` shows it"));
        }
    }
    // grid status trains nothing: no training flags.
    let status = ok(&lth(&["grid", "status", "--help"], w.path()));
    for flag in [
        "--device",
        "--quiet",
        "--threads",
        "--no-wait",
        "--cudnn-benchmark",
    ] {
        assert!(
            !status.contains(flag),
            "grid status offers {flag}: {status}"
        );
    }
    // `lth models` aligns its columns; with a name, it prints that model's recipe.
    let models = ok(&lth(&["models"], w.path()));
    // (In characters: the pattern column holds a `…`.)
    let column = |l: &str| {
        l.find(" lenet_300_100 ")
            .or_else(|| l.find(" example "))
            .map(|b| l[..b].chars().count())
    };
    let rows: Vec<&str> = models.lines().filter(|l| column(l).is_some()).collect();
    assert_eq!(rows.len(), 2, "{models}");
    assert_eq!(column(rows[0]), column(rows[1]), "{models}");
    let recipe = ok(&lth(&["models", "lenet_300_100"], w.path()));
    for (flag, value) in [
        ("--optimizer", "adam"),
        ("--batch-size", "60"),
        ("--steps", "50000it"),
    ] {
        assert!(
            recipe
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [flag, value]),
            "{recipe}"
        );
    }
    let e = err(&lth(&["models", "lenet_bogus"], w.path()));
    assert!(e.contains("bad model name `lenet_bogus`"), "{e}");
    // verify takes --runs-dir like the rest (and the folder as its argument).
    std::fs::create_dir(w.path().join("store")).unwrap();
    for args in [
        &["verify", "--runs-dir", "store"][..],
        &["verify", "store"][..],
    ] {
        let out = ok(&lth(args, w.path()));
        assert!(out.contains("0 damaged"), "{out}");
    }
}

const LOTTERY: &[&str] = &[
    "lottery",
    "--model",
    "lenet_300_100",
    "--dataset",
    "mnist",
    "--levels",
    "2",
    "--steps",
    "4ep",
    "--batch-size",
    "10",
    "--validation",
    "100",
    "--eval-every",
    "20it",
    "--rewind",
    "30it",
    "--branch",
    "random-reinit",
    "--device",
    "cpu",
    "--quiet",
];

/// The foundation of every later experiment: a lottery killed with SIGKILL at an arbitrary moment
/// of level 1's training, run again, ends with exactly the numbers of an uninterrupted one.
#[test]
fn a_lottery_killed_during_training_resumes_to_the_same_results() {
    let (whole, cut) = (workspace_of(1000), workspace_of(1000));
    let out = ok(&lth(LOTTERY, whole.path()));
    assert!(out.contains("random_reinit"), "{out}");

    let mut child = common::lth_command()
        .args(LOTTERY)
        .current_dir(cut.path())
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        // Names only: the child is writing and renaming files under this folder.
        let resumable = paths_ending(&cut.path().join("runs"), ".safetensors")
            .iter()
            .any(|p| {
                p.to_string_lossy()
                    .contains("level_1/main/checkpoints/resume_")
            });
        if resumable {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the lottery finished before it could be killed"
        );
        assert!(started.elapsed().as_secs() < 120, "level 1 never started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let level1 = paths_ending(&cut.path().join("runs"), "level_1/main/done.json");
    assert!(level1.is_empty(), "killed too late: level 1 had finished");

    let again = lth(LOTTERY, cut.path());
    assert!(String::from_utf8_lossy(&again.stderr).contains("resuming an interrupted run"));
    ok(&again);
    for suffix in [
        "results.csv",
        "layers_by_level.csv",
        "metrics.csv",
        "mask.safetensors",
        "final.safetensors",
    ] {
        let (a, b) = (
            files_ending(&whole.path().join("runs"), suffix),
            files_ending(&cut.path().join("runs"), suffix),
        );
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len(), "{suffix}");
        for ((pa, ca), (pb, cb)) in a.iter().zip(&b) {
            assert_eq!(pa, pb);
            assert!(
                ca == cb,
                "{} differs after the kill and resume",
                pa.display()
            );
        }
    }
    // A finished lottery run again trains nothing.
    let done = ok(&lth(LOTTERY, cut.path()));
    assert!(done.contains("already finished"), "{done}");
}

#[test]
fn stability_and_interpolate_train_what_is_missing_and_write_csvs() {
    let w = workspace();
    // SMALL's lottery flags, without the command and the evaluation interval.
    let lottery: Vec<&str> = SMALL[1..11]
        .iter()
        .chain(&SMALL[13..])
        .copied()
        .chain(["--quiet"])
        .collect();
    let mut args = vec!["stability", "--level", "1", "--samples", "2"];
    args.extend_from_slice(&lottery);
    let out = ok(&lth(&args, w.path()));
    assert!(
        out.contains("data_order") && out.contains("pruning"),
        "{out}"
    );
    let csv = paths_ending(&w.path().join("runs"), "level_1/stability.csv");
    assert_eq!(csv.len(), 1);
    let rows = std::fs::read_to_string(w.path().join("runs").join(&csv[0])).unwrap();
    assert_eq!(rows.lines().count(), 1 + 2 * 4, "{rows}");

    let mut args = vec![
        "interpolate",
        "--level",
        "0",
        "--subnetwork",
        "dense",
        "--points",
        "4",
    ];
    args.extend_from_slice(&lottery);
    let out = ok(&lth(&args, w.path()));
    assert!(out.contains("error barrier"), "{out}");
    assert_eq!(
        paths_ending(
            &w.path().join("runs"),
            "level_0/interpolation_dense_test.csv"
        )
        .len(),
        1
    );
    let mut bad = args.clone();
    bad[6] = "1";
    let e = err(&lth(&bad, w.path()));
    assert!(
        e.contains("--points <POINTS>': must be at least 2, got 1"),
        "{e}"
    );
}

/// A CIFAR ResNet trains for an epoch on generated CIFAR-10 binary batches, with the standard
/// augmentation, on the CPU, and keeps its BatchNorm statistics in its checkpoint.
#[test]
fn resnet20_trains_one_epoch_on_generated_cifar10() {
    let w = tempfile::tempdir().unwrap();
    lth_data::testutil::write_cifar_like(
        &w.path().join("data/cifar10"),
        lth_data::cifar::Variant::Cifar10,
        500,
        100,
    )
    .unwrap();
    let out = ok(&lth(
        &[
            "train",
            "--model",
            "cifar_resnet_20",
            "--dataset",
            "cifar10",
            "--steps",
            "1ep",
            "--batch-size",
            "50",
            "--eval-every",
            "5it",
            "--device",
            "cpu",
            "--quiet",
        ],
        w.path(),
    ));
    assert!(out.contains("10 steps (1ep)"), "{out}");
    let run = run_folder(w.path());
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 1 + 3, "{metrics}");
    let last: Vec<&str> = metrics.lines().last().unwrap().split(',').collect();
    let loss: f64 = last[4].parse().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "{metrics}");
    let hp = std::fs::read_to_string(run.parent().unwrap().join("hparams.json")).unwrap();
    assert!(hp.contains("\"augment\": true"), "{hp}");
    let weights = lth_models::load_tensors(&run.join("final.safetensors")).unwrap();
    let var = weights
        .iter()
        .find(|(n, _)| n == "blocks.0.bn1.running_var")
        .unwrap();
    assert!(
        var.1.ne(1.0).any().int64_value(&[]) == 1,
        "BatchNorm statistics moved"
    );
}

/// ImageNet's layout, streamed: an ImageNet ResNet-18 trains two steps on generated JPEG class
/// folders with random resized crops, and is evaluated on the resized, centre-cropped val split.
#[test]
fn imagenet_resnet18_trains_from_generated_jpeg_folders() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path().join("data/imagenet");
    lth_data::testutil::write_image_folder(&dir.join("train"), 3, 3, (120, 90)).unwrap();
    lth_data::testutil::write_image_folder(&dir.join("val"), 3, 1, (90, 120)).unwrap();
    let out = ok(&lth(
        &[
            "train",
            "--model",
            "imagenet_resnet_18",
            "--dataset",
            "imagenet",
            "--steps",
            "2it",
            "--batch-size",
            "4",
            "--warmup",
            "0",
            "--milestones",
            "none",
            "--device",
            "cpu",
            "--quiet",
        ],
        w.path(),
    ));
    assert!(out.contains("2 steps (2it)"), "{out}");
    let metrics = std::fs::read_to_string(run_folder(w.path()).join("metrics.csv")).unwrap();
    let last: Vec<&str> = metrics.lines().last().unwrap().split(',').collect();
    assert_eq!(last[0], "2");
    assert!(last[4].parse::<f64>().unwrap().is_finite(), "{metrics}");
}

#[test]
fn pruning_at_initialisation_checks_its_flags_then_saves_the_mask_and_counts() {
    let w = workspace();
    let with = |extra: &[&'static str]| {
        let mut v = SMALL.to_vec();
        v.extend_from_slice(extra);
        v
    };
    for (extra, expected) in [
        (
            &["--prune-at-init", "snip"][..],
            "--prune-at-init snip needs --sparsity",
        ),
        (
            &["--prune-at-init", "snip", "--sparsity", "1"][..],
            "--sparsity must be in [0, 1)",
        ),
        (
            &["--sparsity", "0.5"][..],
            "--sparsity needs --prune-at-init or --sparse",
        ),
        (
            &[
                "--prune-at-init",
                "synflow",
                "--sparsity",
                "0.5",
                "--prune-batch",
                "10",
            ][..],
            "--prune-batch was given, but synflow scores without data",
        ),
        (
            &["--prune-at-init", "snipp", "--sparsity", "0.5"][..],
            "unknown pruning method `snipp`",
        ),
    ] {
        assert_refused(&with(extra), w.path(), expected);
    }
    let out = ok(&lth(
        &with(&["--prune-at-init", "snip", "--sparsity", "0.9"]),
        w.path(),
    ));
    assert!(
        out.contains("pruned at initialisation: 26620 of 266200"),
        "{out}"
    );
    let folder = paths_ending(&w.path().join("runs"), "mask.safetensors");
    assert_eq!(folder.len(), 1, "{folder:?}");
    let dir = w.path().join("runs").join(folder[0].parent().unwrap());
    assert!(
        folder[0].to_string_lossy().starts_with("pai_"),
        "{folder:?}"
    );
    let layers = std::fs::read_to_string(dir.join("layers.csv")).unwrap();
    assert_eq!(layers.lines().count(), 1 + 3, "{layers}");
    let kept: i64 = layers
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(kept, 26_620);
    // The dense run of the same flags is another folder.
    ok(&lth(SMALL, w.path()));
    let finals = paths_ending(&w.path().join("runs"), "final.safetensors");
    assert_eq!(finals.len(), 2, "{finals:?}");
    assert!(
        finals[1].to_string_lossy().starts_with("train_"),
        "{finals:?}"
    );
}

#[test]
fn sparse_training_checks_its_flags_then_logs_the_distribution_and_the_churn() {
    let w = workspace();
    let with = |extra: &[&'static str]| {
        let mut v = SMALL.to_vec();
        v.extend_from_slice(extra);
        v
    };
    for (extra, expected) in [
        (&["--sparse", "rigl"][..], "--sparse rigl needs --sparsity"),
        (
            &["--sparse", "rigl", "--sparsity", "1"][..],
            "--sparsity must be in [0, 1)",
        ),
        (
            &["--distribution", "erk"][..],
            "--distribution and the mask-update flags need --sparse",
        ),
        (
            &[
                "--sparse",
                "rigl",
                "--sparsity",
                "0.9",
                "--dense-layers",
                "fc3",
            ][..],
            "no prunable layer is called `fc3`",
        ),
        (
            &[
                "--sparse",
                "rigl",
                "--sparsity",
                "0.9",
                "--update-end",
                "75",
            ][..],
            "or a percentage of training like 75%",
        ),
        (
            &[
                "--sparse",
                "rigl",
                "--sparsity",
                "0.9",
                "--prune-at-init",
                "snip",
            ][..],
            "exclude each other",
        ),
        (
            &["--sparse", "rig", "--sparsity", "0.9"][..],
            "unknown sparse training mode `rig`",
        ),
        (
            &[
                "--sparse",
                "rigl",
                "--sparsity",
                "0.9",
                "--layer-sparsity",
                "fc_layers.0.weight=0.5,fc_layers.1.weight=0.5,fc.weight=0.5",
            ][..],
            "so the overall sparsity 0.9 would apply to none of them",
        ),
    ] {
        assert_refused(&with(extra), w.path(), expected);
    }
    let out = ok(&lth(
        &with(&[
            "--sparse",
            "rigl",
            "--sparsity",
            "0.9",
            "--update-every",
            "5",
        ]),
        w.path(),
    ));
    assert!(out.contains("sparse from scratch: 26"), "{out}");
    assert!(!out.contains("pruned at initialisation"), "{out}");
    assert!(out.contains("FLOPs against dense"), "{out}");
    let folder = paths_ending(&w.path().join("runs"), "updates.csv");
    assert_eq!(folder.len(), 1, "{folder:?}");
    assert!(
        folder[0].to_string_lossy().starts_with("sparse_"),
        "{folder:?}"
    );
    let dir = w.path().join("runs").join(folder[0].parent().unwrap());
    let updates = std::fs::read_to_string(dir.join("updates.csv")).unwrap();
    assert!(
        updates.starts_with("step,layer,drop_fraction,active,dropped,grown,reactivated"),
        "{updates}"
    );
    assert!(updates.lines().count() > 3, "{updates}");
    let dist = std::fs::read_to_string(dir.join("distribution.csv")).unwrap();
    assert_eq!(dist.lines().count(), 1 + 3, "{dist}");
    assert!(dir.join("mask.safetensors").exists());

    // The table of a distribution, without training.
    let table = ok(&lth(
        &[
            "sparsity",
            "--model",
            "lenet_300_100",
            "--distribution",
            "erk",
            "--sparsity",
            "0.9",
        ],
        w.path(),
    ));
    assert!(table.contains("fc_layers.0.weight"), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[lines.len() - 2].starts_with("total"), "{table}");
    assert!(
        lines[lines.len() - 1].starts_with("inference FLOPs per example: "),
        "{table}"
    );
}

#[test]
fn gradual_pruning_checks_its_schedule_then_logs_each_pruning_step() {
    let w = workspace();
    let with = |extra: &[&'static str]| {
        let mut v = SMALL.to_vec();
        v.extend_from_slice(extra);
        v
    };
    for (extra, expected) in [
        (&["--gmp"][..], "--gmp needs --sparsity"),
        (&["--gmp-every", "10it"][..], "need --gmp"),
        (&["--gmp-regrow"][..], "--gmp-regrow need --gmp"),
        (
            &["--gmp", "--sparsity", "1"][..],
            "--sparsity must be in [0, 1)",
        ),
        (
            &[
                "--gmp",
                "--sparsity",
                "0.9",
                "--gmp-start",
                "80%",
                "--gmp-end",
                "50%",
            ][..],
            "must come after --gmp-start 80%",
        ),
        (
            &["--gmp", "--sparsity", "0.9", "--gmp-every", "1000it"][..],
            "is longer than the pruning window",
        ),
        (
            &["--gmp", "--sparsity", "0.5", "--gmp-initial", "0.6"][..],
            "--gmp-initial must be in [0, --sparsity]",
        ),
        (
            &["--gmp", "--sparsity", "0.9", "--sparse", "rigl"][..],
            "exclude each other",
        ),
        (
            &[
                "--gmp",
                "--sparsity",
                "0.9",
                "--gmp-scope",
                "global",
                "--distribution",
                "erk",
            ][..],
            "--gmp-scope global ranks all layers at once",
        ),
    ] {
        assert_refused(&with(extra), w.path(), expected);
    }
    let out = ok(&lth(
        &with(&[
            "--gmp",
            "--sparsity",
            "0.9",
            "--gmp-every",
            "2it",
            "--distribution",
            "erk",
        ]),
        w.path(),
    ));
    assert!(out.contains("pruned gradually: "), "{out}");
    assert!(out.contains("FLOPs against dense"), "{out}");
    let log = paths_ending(&w.path().join("runs"), "gmp.csv");
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].to_string_lossy().starts_with("gmp_"), "{log:?}");
    let dir = w.path().join("runs").join(log[0].parent().unwrap());
    let rows = std::fs::read_to_string(dir.join("gmp.csv")).unwrap();
    assert!(
        rows.starts_with("step,layer,target,total,kept,regrown"),
        "{rows}"
    );
    assert!(rows.lines().count() > 3 * 2, "{rows}");
    assert!(dir.join("mask.safetensors").exists());
    // Pruned weights may come back: at a constant 90% from the first pruning step, kept weights
    // that drift below held ones trade places with them. Another run, in its own folder.
    let out = ok(&lth(
        &with(&[
            "--gmp",
            "--sparsity",
            "0.9",
            "--gmp-initial",
            "0.9",
            "--gmp-every",
            "2it",
            "--gmp-regrow",
        ]),
        w.path(),
    ));
    assert!(
        out.contains("pruned weights came back at later pruning steps (--gmp-regrow)"),
        "{out}"
    );
    assert_eq!(
        paths_ending(&w.path().join("runs"), "gmp.csv").len(),
        2,
        "a run of its own"
    );
}

/// A GMP run killed with SIGKILL after its first pruning step resumes to byte-identical files:
/// the mask in force comes back from the resume checkpoint and the pruning log is cut back to it.
#[test]
fn a_gmp_run_killed_between_pruning_steps_resumes_to_the_same_files() {
    const GMP: &[&str] = &[
        "train",
        "--model",
        "lenet_300_100",
        "--dataset",
        "mnist",
        "--steps",
        "4ep",
        "--batch-size",
        "10",
        "--validation",
        "100",
        "--eval-every",
        "20it",
        "--gmp",
        "--sparsity",
        "0.9",
        "--gmp-every",
        "20it",
        "--device",
        "cpu",
        "--quiet",
    ];
    let (whole, cut) = (workspace_of(1000), workspace_of(1000));
    ok(&lth(GMP, whole.path()));
    let mut child = common::lth_command()
        .args(GMP)
        .current_dir(cut.path())
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let runs = cut.path().join("runs");
        let pruned = !paths_ending(&runs, "gmp.csv").is_empty();
        let resumable = paths_ending(&runs, ".safetensors")
            .iter()
            .any(|p| p.to_string_lossy().contains("checkpoints/resume_"));
        if pruned && resumable {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
        assert!(started.elapsed().as_secs() < 120, "pruning never started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        paths_ending(&cut.path().join("runs"), "done.json").is_empty(),
        "killed too late: the run had finished"
    );
    let again = lth(GMP, cut.path());
    assert!(String::from_utf8_lossy(&again.stderr).contains("resuming an interrupted run"));
    ok(&again);
    for suffix in [
        "gmp.csv",
        "metrics.csv",
        "mask.safetensors",
        "final.safetensors",
    ] {
        let (a, b) = (
            files_ending(&whole.path().join("runs"), suffix),
            files_ending(&cut.path().join("runs"), suffix),
        );
        assert_eq!(a.len(), 1, "{suffix}");
        assert_eq!(a.len(), b.len(), "{suffix}");
        assert!(
            a[0].1 == b[0].1,
            "{} differs after the kill and resume",
            a[0].0.display()
        );
    }
}

/// `lth elastic` and `lth transfer`: bad maps and policies are refused before anything trains;
/// a ticket moves by lottery flags or by its folder, with the random baseline beside it.
#[test]
fn elastic_and_transfer_move_tickets_and_refuse_what_cannot_move() {
    let w = workspace_of(400);
    // SMALL's lottery flags with another model and dataset, without the evaluation interval.
    let flags = |model: &'static str, dataset: &'static str| {
        let mut v: Vec<&'static str> = SMALL[1..11].to_vec();
        (v[1], v[3]) = (model, dataset);
        v.extend(&SMALL[13..]);
        v.push("--quiet");
        v
    };
    let with = |head: &[&'static str], tail: Vec<&'static str>| -> Vec<&'static str> {
        head.iter().copied().chain(tail).collect()
    };
    let deeper = ["elastic", "--level", "1", "--to", "lenet_300_100_100_100"];
    for (args, expected) in [
        (
            with(&deeper, flags("lenet_300_100_100", "mnist"))
                .into_iter()
                .chain(["--map", "0:0;1:1;2:2"])
                .collect::<Vec<_>>(),
            "leaves target block 3 uncovered",
        ),
        (
            with(&deeper, flags("lenet_300_100", "mnist")),
            "`lenet_300_100` has hidden layers of unequal widths (300, 100)",
        ),
        (
            with(&deeper, flags("cifar_resnet_20", "mnist"))
                .into_iter()
                .chain(["--augment", "false", "--milestones", "none"])
                .collect(),
            "is not of the family of `cifar_resnet_20`",
        ),
        (
            with(
                &["transfer", "--level", "1", "--dataset", "mnist"],
                Vec::new(),
            ),
            "--from DIR is required",
        ),
        (
            with(
                &["transfer", "--level", "1", "--dataset", "mnist", "--from"],
                vec!["elsewhere"],
            ),
            "--from elsewhere: no such folder",
        ),
        (
            with(
                &["transfer", "--level", "1", "--dataset", "mnist", "--from"],
                vec!["."],
            ),
            "expected a lottery folder",
        ),
    ] {
        assert_refused(&args, w.path(), expected);
    }

    // By lottery flags: levels 0 and 1 of the source, then the moved ticket and a random mask.
    let mut args = with(&deeper, flags("lenet_300_100_100", "mnist"));
    args.extend(["--map", "0:0;1:1;2:2,3", "--random", "7"]);
    let out = ok(&lth(&args, w.path()));
    assert!(
        out.contains("source level 1") && out.contains("ticket") && out.contains("random_7"),
        "{out}"
    );
    let masks = paths_ending(&w.path().join("runs"), "mask.safetensors");
    assert!(
        masks
            .iter()
            .any(|p| p.ends_with("replicate_1/ticket/mask.safetensors"))
            && masks
                .iter()
                .any(|p| p.ends_with("replicate_1/random_7/mask.safetensors")),
        "{masks:?}"
    );
    // Run again: nothing trains.
    let again = lth(&args, w.path());
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .matches("training")
            .count()
            == 0
    );
    // The same move with the source given by its folder (no --model): the same run, found done.
    let source = std::fs::read_dir(w.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("lottery_")
                && std::fs::read_to_string(p.join("hparams.json"))
                    .is_ok_and(|h| h.contains("\"lenet_300_100_100\""))
        })
        .unwrap();
    let mut by_folder = deeper.to_vec();
    by_folder.extend(["--from", source.to_str().unwrap()]);
    by_folder.extend(["--map", "0:0;1:1;2:2,3", "--random", "7", "--device", "cpu"]);
    let again = lth(&by_folder, w.path());
    let said = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(again.status.success(), "{said}");
    assert_eq!(said.matches("training").count(), 0, "{said}");

    // By folder: a ticket of classes 0–4 moved to classes 5–9, and to all ten classes, which
    // needs a classifier policy.
    let mut lottery = vec!["lottery", "--levels", "1"];
    lottery.extend(flags("lenet_300_100", "mnist:classes=0-4"));
    ok(&lth(&lottery, w.path()));
    let folder = std::fs::read_dir(w.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p.join("hparams.json"))
                .is_ok_and(|h| h.contains("classes=0-4") && !h.contains("\"to\""))
        })
        .unwrap();
    let from = folder.join("replicate_1").to_str().unwrap().to_owned();
    let transfer = |dataset: &str, output: &[&str]| {
        let mut v = vec![
            "transfer",
            "--from",
            &from,
            "--level",
            "1",
            "--dataset",
            dataset,
        ];
        v.extend(output);
        v.extend(["--device", "cpu", "--quiet"]);
        lth(&v, w.path())
    };
    let e = err(&transfer("mnist", &[]));
    assert!(e.contains("say --output reinit"), "{e}");
    // A replicate the source does not have is refused, never trained as a new source.
    let before = paths_ending(&w.path().join("runs"), "done.json").len();
    let missing = folder.join("replicate_9").to_str().unwrap().to_owned();
    let refused = |from: &str, extra: &[&str]| {
        let mut v = vec!["transfer", "--from", from];
        v.extend(extra);
        v.extend(["--level", "1", "--dataset", "mnist", "--device", "cpu"]);
        err(&lth(&v, w.path()))
    };
    let e = refused(&missing, &[]);
    assert!(
        e.contains("no such folder (did you mean") && e.contains("replicate_1?)"),
        "{e}"
    );
    let e = refused(folder.to_str().unwrap(), &["--replicate", "9"]);
    assert!(e.contains("has no replicate 9 (it has replicate_1)"), "{e}");
    assert_eq!(
        paths_ending(&w.path().join("runs"), "done.json").len(),
        before,
        "nothing trained"
    );
    let out = ok(&transfer("mnist", &["--output", "reinit"]));
    assert!(
        out.contains("source level 1") && out.contains("ticket"),
        "{out}"
    );
    // Other classes of the same count: the classifier is copied only when asked for by name.
    let e = err(&transfer("mnist:classes=5-9", &[]));
    assert!(e.contains("say --output copy"), "{e}");
    ok(&transfer("mnist:classes=5-9", &["--output", "copy"]));

    // The same ticket (found with the recipe's Adam) trained with SGD on its own data. Recipes
    // that do not fit are one-line errors before anything trains.
    let by_optimizer = |extra: &[&str]| {
        let mut v = vec!["transfer", "--from", &from, "--level", "1"];
        v.extend(extra);
        v.extend(["--device", "cpu", "--quiet"]);
        lth(&v, w.path())
    };
    let before = paths_ending(&w.path().join("runs"), "done.json").len();
    for (extra, expected) in [
        (
            &["--optimizer", "sgd"][..],
            "--lr is required with --optimizer",
        ),
        (
            &["--optimizer", "adam", "--lr", "1e-3", "--momentum", "0.9"],
            "--momentum and --nesterov apply to --optimizer sgd, not adam",
        ),
        (
            &["--optimizer", "adam", "--lr", "0.0012"],
            "the ticket was found with adam (lr 0.0012) already",
        ),
        (
            &["--optimizer", "sgd", "--lr", "0.05", "--dataset", "mnist"],
            "cannot be used with",
        ),
        (
            &["--lr", "0.05"],
            "--dataset <DATASET>|--optimizer <OPTIMIZER>",
        ),
        (
            &["--optimizer", "sgd", "--lr", "-1"],
            "--lr must be a non-negative number",
        ),
    ] {
        let e = err(&by_optimizer(extra));
        assert!(e.contains(expected), "{extra:?}: {e}");
        assert!(e.starts_with("error: ") && !e.contains("panicked"), "{e}");
    }
    assert_eq!(
        paths_ending(&w.path().join("runs"), "done.json").len(),
        before,
        "nothing trained"
    );
    let out = by_optimizer(&["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains("moved to sgd (lr 0.05, momentum 0.9)"),
        "{said}"
    );
    let out = ok(&out);
    assert!(
        out.contains("source level 1") && out.contains("ticket"),
        "{out}"
    );
}

/// `--replicates` with `--pack`: the replicates train packed, each in the folder `--replicate`
/// gives it, which then finds it finished; duplicates and unpacked kinds are refused.
#[test]
fn train_replicates_packed_fill_the_replicates_folders() {
    let w = workspace();
    let mut args = SMALL.to_vec();
    args.extend(["--replicates", "1,2", "--pack", "2"]);
    let out = ok(&lth(&args, w.path()));
    assert_eq!(out.matches("test accuracy: final").count(), 2, "{out}");
    let mut one = SMALL.to_vec();
    one.extend(["--replicate", "2"]);
    let again = ok(&lth(&one, w.path()));
    assert!(again.contains("already finished"), "{again}");
    let mut twice = SMALL.to_vec();
    twice.extend(["--replicates", "3,3"]);
    assert!(err(&lth(&twice, w.path())).contains("listed twice"));
    let mut sparse = SMALL.to_vec();
    sparse.extend([
        "--replicates",
        "1,2",
        "--sparse",
        "static",
        "--sparsity",
        "0.5",
    ]);
    assert!(err(&lth(&sparse, w.path())).contains("--replicates trains dense runs"));
}

/// `lth lottery --branch ... --pack 4`: the branches off every level train packed, into the units
/// unpacked ones fill: the levels (trained one after another either way) are identical, and each
/// branch's accuracy agrees to float tolerance.
#[test]
fn lottery_branches_pack_into_the_units_unpacked_ones_fill() {
    let (alone, packed) = (workspace_of(300), workspace_of(300));
    let mut args = LOTTERY.to_vec();
    args.extend(["--branch", "random-prune"]);
    ok(&lth(&args, alone.path()));
    args.extend(["--pack", "4"]);
    ok(&lth(&args, packed.path()));
    let results = |w: &Path| -> Vec<Vec<String>> {
        let (_, text) = files_ending(&w.join("runs"), "results.csv").remove(0);
        String::from_utf8(text)
            .unwrap()
            .lines()
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect()
    };
    let (a, p) = (results(alone.path()), results(packed.path()));
    assert_eq!(a.len(), p.len());
    // Levels 0..=2, and two branches off levels 1 and 2.
    assert_eq!(a.len(), 1 + 3 + 4);
    let col = |name: &str| a[0].iter().position(|c| c == name).unwrap();
    let branch = col("branch");
    for (ra, rp) in a.iter().zip(&p).skip(1) {
        assert_eq!(ra[branch], rp[branch]);
        if ra[branch] == "imp" {
            assert_eq!(ra, rp);
        }
    }
    // Each branch trained packed repeats its trajectory alone (`lth_models::rounding::
    // Trajectory`): from the rewind point W_30 under the branch's random mask.
    let branches: Vec<PathBuf> = paths_ending(&alone.path().join("runs"), "final.safetensors")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("branch_random_prune"))
        .collect();
    assert_eq!(branches.len(), 2, "{branches:?}");
    for path in branches {
        let branch = path.parent().unwrap();
        let replicate = branch.parent().unwrap().parent().unwrap();
        let load = |w: &Path, p: &Path| -> lth_models::Named {
            lth_models::load_tensors(&w.join("runs").join(p))
                .unwrap()
                .into()
        };
        let rewind = replicate.join("level_0/main/checkpoints/step_30.safetensors");
        let mask = lth_prune::Mask::load(
            &alone
                .path()
                .join("runs")
                .join(branch)
                .join("mask.safetensors"),
        )
        .unwrap();
        let start = load(alone.path(), &rewind);
        mask.apply(&start).unwrap();
        let names: Vec<String> = start.names().map(str::to_owned).collect();
        let t = lth_models::rounding::Trajectory::of(
            &names,
            &start,
            &load(alone.path(), &path),
            &load(packed.path(), &path),
        )
        .unwrap();
        assert!(t.repeated(), "{}: {t:?}", path.display());
    }
}

/// `lth export --sparse` writes a level's ticket in compressed sparse rows that PyTorch loads
/// (`bench/load_sparse_ticket.py`, torch alone): the same kept weights per layer as the level's
/// mask, and the same logits as lth's masked dense network, to the rounding bound of the
/// reordered sums. A folder that is not a lottery, or a level not trained, is one line.
#[test]
fn a_ticket_exported_sparse_loads_in_pytorch_and_computes_the_same_logits() {
    let w = workspace();
    let mut args = vec!["lottery", "--levels", "2", "--quiet"];
    args.extend(&SMALL[1..]);
    ok(&lth(&args, w.path()));
    let runs = w.path().join("runs");
    let lottery = runs.join(paths_ending(&runs, "hparams.json")[0].parent().unwrap());
    let lottery_arg = lottery.to_str().unwrap();
    let out = ok(&lth(
        &[
            "export",
            "--sparse",
            lottery_arg,
            "--level",
            "2",
            "--out",
            "t.safetensors",
        ],
        w.path(),
    ));
    assert!(
        out.starts_with("wrote t.safetensors: lenet_300_100, level 2, "),
        "{out}"
    );
    let ticket = w.path().join("t.safetensors");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = Command::new("python3")
        .arg(root.join("bench/load_sparse_ticket.py"))
        .arg(&ticket)
        .env("PYTHONPATH", root.join(".libtorch"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&py.stdout);
    assert!(
        py.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&py.stderr)
    );

    // Kept weights per layer: the level's mask.
    let level = lottery.join("replicate_1/level_2/main");
    let mask = lth_models::load_tensors(&level.join("mask.safetensors")).unwrap();
    for (name, m) in &mask {
        let kept = m.sum(tch::Kind::Int64).int64_value(&[]);
        let size = m.size();
        let line = format!("{name}: {}x{}, {kept} kept", size[0], size[1]);
        assert!(stdout.contains(&line), "{line} not in\n{stdout}");
    }
    // Logits of the script's fixed input: lth's network with the level's weights under its mask.
    let weights = lth_models::load_tensors(&level.join("final.safetensors")).unwrap();
    let mut model =
        lth_models::Model::new("lenet_300_100", [1, 28, 28], 10, None, 0, tch::Device::Cpu)
            .unwrap();
    let masked: Vec<(String, tch::Tensor)> = weights
        .iter()
        .map(|(n, t)| {
            let t = match mask.iter().find(|(m, _)| m == n) {
                Some((_, m)) => t * m,
                None => t.shallow_clone(),
            };
            (n.clone(), t)
        })
        .collect();
    model.load_state(&masked).unwrap();
    let x = tch::Tensor::linspace(-1.0, 1.0, 2 * 784, (tch::Kind::Float, tch::Device::Cpu))
        .view([2, 1, 28, 28]);
    let ours = Vec::<f32>::try_from(tch::no_grad(|| model.forward_t(&x, false)).get(0)).unwrap();
    let theirs: Vec<f32> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("logits of a fixed input: "))
        .unwrap()
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    let scale = ours.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    let bound = lth_models::rounding::Reductions::of(&model, 2, 10).forward_bound() * scale + 1e-6;
    for (a, b) in ours.iter().zip(&theirs) {
        assert!(
            ((a - b).abs() as f64) <= bound,
            "{ours:?} against {theirs:?} (bound {bound:e})"
        );
    }

    // Refusals, one line each.
    let e = err(&lth(
        &["export", "--sparse", "runs/nope", "--level", "1"],
        w.path(),
    ));
    assert!(
        e.starts_with("error: --sparse runs/nope: no such folder"),
        "{e}"
    );
    let e = err(&lth(
        &["export", "--sparse", lottery_arg, "--level", "7"],
        w.path(),
    ));
    assert!(
        e.contains("level 7 of ") && e.contains("is not finished"),
        "{e}"
    );
}

/// `lth bench --suite sparse-inference` times every level at batch 1, 32 and 256, checks the
/// sparse forward against the dense one before timing it, says where sparse becomes faster and
/// how the 95% targets fare, and draws the plot. (The times themselves are not asserted.)
#[test]
fn the_sparse_inference_benchmark_reports_targets_and_draws_its_plot() {
    let w = tempfile::tempdir().unwrap();
    let out = ok(&lth(
        &[
            "bench",
            "--suite",
            "sparse-inference",
            "--repeats",
            "1",
            "--plot",
            "p/s.svg",
        ],
        w.path(),
    ));
    for batch in [1, 32, 256] {
        assert!(out.contains(&format!("batch {batch}: sparse is ")), "{out}");
    }
    assert!(
        out.contains("targets at the level nearest 95% (95.5%): batch 1 at least 3× dense: "),
        "{out}"
    );
    let svg = std::fs::read_to_string(w.path().join("p/s.svg")).unwrap();
    assert!(svg.contains("batch 256 ("), "{svg}");
    let e = err(&lth(
        &[
            "bench",
            "--suite",
            "sparse-inference",
            "--model",
            "cifar_resnet_20",
        ],
        w.path(),
    ));
    assert!(
        e.starts_with(
            "error: --model cifar_resnet_20: the sparse-inference suite times the LeNet family"
        ),
        "{e}"
    );
}

/// `lth bench --suite synflow` runs SynFlow and the plain PyTorch version of the same algorithm
/// (`bench/synflow_pytorch.py`) in one command: both prune to the same number of weights by the
/// same schedule, and the ratio of their times is printed (not asserted).
#[test]
fn the_synflow_benchmark_runs_lth_and_plain_pytorch_to_the_same_count() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let w = tempfile::tempdir().unwrap();
    let script = root.join("bench/synflow_pytorch.py");
    let pythonpath = root.join(".libtorch");
    let out = ok(&lth_env(
        &[
            "bench",
            "--suite",
            "synflow",
            "--rounds",
            "2",
            "--density",
            "0.5",
            "--pytorch-script",
            script.to_str().unwrap(),
        ],
        w.path(),
        &[("PYTHONPATH", pythonpath.to_str().unwrap())],
    ));
    let kept = |who: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("  {who} ")))
            .and_then(|l| l.split("s   ").nth(1))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {who} line in\n{out}"))
    };
    // VGG-16 (100 classes) has 14,761,664 prunable weights: half of them stay.
    assert_eq!(kept("lth"), "7380832 of 14761664 weights kept", "{out}");
    assert_eq!(kept("PyTorch"), kept("lth"), "{out}");
    assert!(out.contains("ratio lth / PyTorch "), "{out}");
}

/// `lth lottery --rewind-grid` checks every point before anything trains (order, duplicates, the
/// end of training, and --rewind beside it), then trains one lottery per point, each rewinding to
/// its own W_k, prints one line per point and writes the grid's table in its own folder.
#[test]
fn a_rewind_grid_checks_its_points_then_trains_one_lottery_per_point() {
    let w = workspace();
    // SMALL's lottery flags (2 epochs of 10 steps: T = 20), without the command.
    let lottery: Vec<&str> = SMALL[1..].iter().copied().chain(["--quiet"]).collect();
    let with = |grid: &'static str| {
        let mut a = vec!["lottery", "--levels", "1", "--rewind-grid", grid];
        a.extend_from_slice(&lottery);
        a
    };
    for (grid, expected) in [
        (
            "0,6it,3it",
            "--rewind-grid: 3it (3 iterations) comes after 6it (6 iterations): give the points \
             in increasing order",
        ),
        (
            "0,1ep,10it",
            "--rewind-grid: 10it and 1ep are the same point (10 iterations): give each point once",
        ),
        (
            "0,2ep",
            "--rewind-grid: 2ep (20 iterations) is not before the end of training (20 iterations)",
        ),
        ("0,soon", "bad step count `soon`"),
    ] {
        assert_refused(&with(grid), w.path(), expected);
    }
    let mut both = with("0,3it");
    both.extend(["--rewind", "3it"]);
    assert_refused(&both, w.path(), "cannot be used with");

    let mut args = with("0,3it");
    args.extend(["--branch", "random-reinit"]);
    let out = ok(&lth(&args, w.path()));
    assert!(
        out.contains("k = 0it (0 iterations, 0.0% of training): imp "),
        "{out}"
    );
    assert!(
        out.contains("k = 3it (3 iterations, 15.0% of training): imp "),
        "{out}"
    );
    assert!(out.contains("random_reinit"), "{out}");
    let runs = w.path().join("runs");
    // Two lotteries (k = 0 and k = 3) and the grid's folder.
    assert_eq!(paths_ending(&runs, "level_1/main/done.json").len(), 2);
    let csv = paths_ending(&runs, "rewind_grid.csv");
    assert_eq!(csv.len(), 1, "{csv:?}");
    let table = std::fs::read_to_string(runs.join(&csv[0])).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1 + 2 * 2, "{table}");
    assert!(lines[1].starts_with("0it,0,0.0,1,imp,"), "{table}");
    assert!(lines[3].starts_with("3it,3,0.15,1,imp,"), "{table}");
    // The two points are two lotteries: the same mask fraction, their own folders.
    assert_ne!(
        lines[1].rsplit(',').next(),
        lines[3].rsplit(',').next(),
        "{table}"
    );
    // Asked again, nothing trains and the same table comes back.
    let again = ok(&lth(&args, w.path()));
    assert!(again.contains("already finished"), "{again}");
    assert_eq!(std::fs::read_to_string(runs.join(&csv[0])).unwrap(), table);
}

/// `stability` and `interpolate` take the same grid: its points are checked before anything
/// trains, each point's lottery is the one `lottery --rewind-grid` trained (no level is trained
/// again), and each command's table lands in the grid's folder beside `rewind_grid.csv`.
#[test]
fn stability_and_interpolate_measure_the_lotteries_of_a_rewind_grid() {
    let w = workspace();
    let lottery: Vec<&str> = SMALL[1..].iter().copied().chain(["--quiet"]).collect();
    let with = |command: &'static str, grid: &'static str, extra: &[&'static str]| {
        let mut a = vec![command, "--level", "1", "--rewind-grid", grid];
        a.extend_from_slice(extra);
        a.extend_from_slice(&lottery);
        a
    };
    assert_refused(
        &with("stability", "0,6it,3it", &["--samples", "1"]),
        w.path(),
        "--rewind-grid: 3it (3 iterations) comes after 6it (6 iterations)",
    );
    assert_refused(
        &with("interpolate", "0,2ep", &["--points", "3"]),
        w.path(),
        "--rewind-grid: 2ep (20 iterations) is not before the end of training",
    );
    let mut levels = vec!["lottery", "--levels", "1", "--rewind-grid", "0,3it"];
    levels.extend_from_slice(&lottery);
    ok(&lth(&levels, w.path()));
    let runs = w.path().join("runs");
    let trained = |runs: &Path| -> Vec<String> {
        paths_ending(runs, "main/done.json")
            .iter()
            .map(|p| std::fs::read_to_string(runs.join(p)).unwrap())
            .collect()
    };
    let levels_before = trained(&runs);
    assert_eq!(levels_before.len(), 4, "two lotteries of two levels");

    let out = ok(&lth(
        &with("stability", "0,3it", &["--samples", "1"]),
        w.path(),
    ));
    for point in [
        "k = 0it (0 iterations, 0.0% of training): data_order imp ",
        "k = 3it (3 iterations, 15.0% of training): data_order imp ",
    ] {
        assert!(out.contains(point), "{out}");
    }
    let out = ok(&lth(
        &with("interpolate", "0,3it", &["--points", "3"]),
        w.path(),
    ));
    assert!(
        out.contains("k = 3it (3 iterations, 15.0% of training): imp error barrier "),
        "{out}"
    );
    // The levels are the lottery command's, untouched.
    assert_eq!(trained(&runs), levels_before);

    let grid = paths_ending(&runs, "rewind_grid.csv");
    assert_eq!(grid.len(), 1, "{grid:?}");
    let folder = runs.join(grid[0].parent().unwrap());
    let stability = std::fs::read_to_string(folder.join("stability_level_1.csv")).unwrap();
    let rows: Vec<&str> = stability.lines().collect();
    // Two points × (data order, pruning) × (imp, random).
    assert_eq!(rows.len(), 1 + 2 * 4, "{stability}");
    assert!(rows[1].starts_with("0it,0,0.0,1,"), "{stability}");
    assert!(rows[5].starts_with("3it,3,0.15,1,"), "{stability}");
    let curve = std::fs::read_to_string(folder.join("interpolation_level_1_imp_test.csv")).unwrap();
    let rows: Vec<&str> = curve.lines().collect();
    assert_eq!(rows.len(), 1 + 2, "{curve}");
    assert!(rows[2].starts_with("3it,3,0.15,1,imp,test,3,"), "{curve}");
    // Each point's row names its own lottery.
    assert_ne!(
        rows[1].rsplit(',').next(),
        rows[2].rsplit(',').next(),
        "{curve}"
    );
}

/// `lth tropical` draws a two-moons lottery's level: an SVG with the three networks' boundaries
/// and polygons, and a table whose shape distances are the polygons' (the trained network's own
/// is 0). It refuses a level not trained and a folder that does not exist, in one line each.
#[test]
fn tropical_draws_a_two_moons_ticket_and_refuses_what_it_cannot_draw() {
    let w = tempfile::tempdir().unwrap();
    let lottery_args = [
        "lottery",
        "--model",
        "lenet_16",
        "--dataset",
        "two-moons",
        "--levels",
        "1",
        "--rate",
        "0.5",
        "--steps",
        "3ep",
        "--batch-size",
        "64",
        "--validation",
        "100",
        "--quiet",
    ];
    ok(&lth(&lottery_args, w.path()));
    let runs = w.path().join("runs");
    let lottery = runs.join(paths_ending(&runs, "hparams.json")[0].parent().unwrap());
    let from = lottery.to_str().unwrap();
    let out = ok(&lth(
        &["tropical", "--from", from, "--level", "1", "--out", "t.svg"],
        w.path(),
    ));
    assert!(out.starts_with("wrote t.svg\n"), "{out}");
    let svg = std::fs::read_to_string(w.path().join("t.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("Newton polygon"),
        "{}",
        &svg[..200]
    );
    let row = |title: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.starts_with(title))
            .unwrap_or_else(|| panic!("{out}"));
        line[title.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("trained (dense, level 0)")[1], "0.0000");
    // The distances are those of the polygons built from the stored weights.
    let load = |p: &str| lth_models::load_tensors(&lottery.join(p)).unwrap();
    let trained =
        lth_tropical::OneHidden::from_named(&load("replicate_1/level_0/main/final.safetensors"))
            .unwrap();
    let mask =
        lth_prune::Mask::load(&lottery.join("replicate_1/level_1/main/mask.safetensors")).unwrap();
    let w0 = load("replicate_1/level_0/main/checkpoints/step_0.safetensors");
    mask.apply(&w0).unwrap();
    let ticket = lth_tropical::OneHidden::from_named(&w0).unwrap();
    let d = lth_tropical::shape_distance(&ticket.polygon().hull, &trained.polygon().hull).unwrap();
    let ours = row("ticket: W0 under level 1's mask");
    assert_eq!(ours.last().unwrap(), &format!("{d:.4}"), "{out}");
    assert!(d > 0.0);

    let e = err(&lth(
        &["tropical", "--from", from, "--level", "2"],
        w.path(),
    ));
    assert!(e.contains("level 2 of replicate 1 is not finished"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    let e = err(&lth(&["tropical", "--from", "runs/lottery_nope"], w.path()));
    assert!(
        e.contains("--from runs/lottery_nope: no such folder"),
        "{e}"
    );
}

/// `lth train --adversarial` trains on PGD examples and logs robust accuracy in each row of the
/// run's metrics, prints it at the end, and names a run folder of its own (the clean run's is
/// not reused); flags that cannot be an attack, or that do not combine with it, are refused in one
/// line before anything is written.
#[test]
fn adversarial_training_logs_robust_accuracy_and_refuses_bad_attacks() {
    let w = workspace();
    let cwd = w.path();
    for (extra, expected) in [
        (
            vec!["--adversarial", "pgd", "--adv-epsilon", "0"],
            "--adv-epsilon 0: a radius",
        ),
        (
            vec!["--adversarial", "fgsm", "--adv-steps", "3"],
            "fgsm is one step",
        ),
        (
            vec!["--adv-steps", "3"],
            "--adversarial pgd or fgsm, which was not given",
        ),
        (
            vec!["--adversarial", "pgd", "--adv-eval-examples", "0"],
            "--adv-eval-examples 0",
        ),
        (
            vec!["--adversarial", "sgd"],
            "invalid value 'sgd' for '--adversarial <ATTACK>'",
        ),
        (
            vec![
                "--adversarial",
                "pgd",
                "--sparse",
                "rigl",
                "--sparsity",
                "0.5",
            ],
            "does not combine with --sparse",
        ),
    ] {
        let mut args = SMALL.to_vec();
        args.extend(extra);
        assert_refused(&args, cwd, expected);
    }
    let mut args = SMALL.to_vec();
    args.extend([
        "--adversarial",
        "pgd",
        "--adv-steps",
        "2",
        "--adv-eval-examples",
        "40",
    ]);
    let out = ok(&lth(&args, cwd));
    assert!(
        out.contains("robust accuracy (PGD-20, ε 0.1 pixel units, first 40 test examples): final"),
        "{out}"
    );
    let folder = run_folder(cwd);
    let metrics = std::fs::read_to_string(folder.join("metrics.csv")).unwrap();
    let mut lines = metrics.lines();
    assert!(
        lines.next().unwrap().ends_with(",robust_accuracy"),
        "{metrics}"
    );
    for l in lines {
        let robust: f64 = l.rsplit(',').next().unwrap().parse().unwrap();
        // Of 40 examples: a multiple of 1/40.
        assert!(
            (robust * 40.0 - (robust * 40.0).round()).abs() < 1e-9,
            "{l}"
        );
    }
    let hparams = std::fs::read_to_string(folder.parent().unwrap().join("hparams.json")).unwrap();
    assert!(hparams.contains("\"adversarial\""), "{hparams}");
    // The clean run of the same flags is another folder.
    ok(&lth(SMALL, cwd));
    assert_eq!(std::fs::read_dir(cwd.join("runs")).unwrap().count(), 2);
}

/// An Early-Bird search is a method of `lth train` (`--early-bird`): checked before any data is
/// read, and trained into the folder `lth early-bird` uses for the same flags, which then finds
/// it done and only retrains its ticket; the reverse order trains nothing either.
#[test]
fn an_early_bird_search_is_one_run_whether_lth_train_or_lth_early_bird_starts_it() {
    let search = [SMALL_SEARCH, &["--device", "cpu", "--quiet"]].concat();
    let w = workspace();
    let train = |window: &'static str| {
        [
            &["train", "--early-bird"],
            search.as_slice(),
            &["--eb-window", window],
        ]
        .concat()
    };
    // Refused before any data is read or anything written: a network without BatchNorm scales,
    // a FIFO longer than the run, the search's flags without --early-bird.
    assert_refused(
        &[
            "train",
            "--early-bird",
            "--model",
            "lenet_300_100",
            "--dataset",
            "mnist",
        ],
        w.path(),
        "cannot take channel pruning",
    );
    assert_refused(&train("4"), w.path(), "--eb-window 4: longer than the run");
    assert_refused(
        &[&["train"], search.as_slice(), &["--eb-window", "2"]].concat(),
        w.path(),
        "need --early-bird",
    );
    let out = ok(&lth(&train("2"), w.path()));
    assert!(out.contains("p = 0.5: ticket emerged at epoch 1"), "{out}");
    let metrics = files_ending(&w.path().join("runs"), "metrics.csv");
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    assert!(
        metrics[0].0.to_string_lossy().starts_with("earlybird_"),
        "{:?}",
        metrics[0].0
    );
    // `lth early-bird` finds the search done in the same folder and only retrains the ticket.
    let out = ok(&lth(
        &[&["early-bird"], search.as_slice(), &["--eb-window", "2"]].concat(),
        w.path(),
    ));
    assert!(out.contains("retrained (EB Train"), "{out}");
    let after = files_ending(&w.path().join("runs"), "metrics.csv");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.contains(&metrics[0]), "the search was trained again");
    assert!(
        after
            .iter()
            .any(|(p, _)| p.starts_with(metrics[0].0.parent().unwrap()))
    );
    assert_eq!(std::fs::read_dir(w.path().join("runs")).unwrap().count(), 1);
    // And `lth train --early-bird` finds it done too.
    let again = ok(&lth(&train("2"), w.path()));
    assert!(
        again.contains("already finished; nothing to train."),
        "{again}"
    );
}
