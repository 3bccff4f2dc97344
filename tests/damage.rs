//! The damage matrix of the run store: each file of a finished unit of every kind (a lottery
//! level, a run pruned at initialisation, sparse training, a learned supermask, a transferred
//! ticket, an Early-Bird search and its retraining) is zero-filled, bit-flipped, truncated or
//! deleted. The next run refuses it on one line naming the file, `lth verify` lists it, and
//! `--retrain-damaged` ends with every unit's `done.json` (its numbers and the digests of all its
//! files) equal to the undamaged run's, bit for bit.
//!
//! Each file gets one of the four damages, in turn, so that every kind meets all four while the
//! test stays within seconds per case.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;

use common::{SMALL_SEARCH, err, lth, ok};

#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Zeros written over the last quarter: the length is kept, and a safetensors file often
    /// still reads.
    ZeroFill,
    /// One bit flipped in the middle.
    BitFlip,
    /// Cut to half its length.
    Truncate,
    Delete,
}

const DAMAGES: [Damage; 4] = [
    Damage::ZeroFill,
    Damage::BitFlip,
    Damage::Truncate,
    Damage::Delete,
];

fn apply(path: &Path, damage: Damage) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    match damage {
        Damage::ZeroFill => bytes[n - n.div_ceil(4)..].fill(0),
        Damage::BitFlip => bytes[n / 2] ^= 0x10,
        Damage::Truncate => bytes.truncate(n / 2),
        Damage::Delete => return std::fs::remove_file(path).unwrap(),
    }
    std::fs::write(path, bytes).unwrap();
}

/// Every finished unit under `runs`, by path relative to it, with its `done.json` less the
/// commit that trained it.
fn finished(runs: &Path) -> BTreeMap<PathBuf, serde_json::Value> {
    let mut out = BTreeMap::new();
    let mut stack = vec![runs.to_owned()];
    while let Some(d) = stack.pop() {
        for p in std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()) {
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() == "done.json" {
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                v.as_object_mut().unwrap().remove("commit");
                out.insert(
                    p.parent().unwrap().strip_prefix(runs).unwrap().to_owned(),
                    v,
                );
            }
        }
    }
    out
}

/// The training flags every case shares: LeNet-300-100 on 300 generated MNIST-format images (the
/// end-to-end tests' small run, without its command).
fn small() -> &'static [&'static str] {
    &common::SMALL[1..]
}

const QUIET: &[&str] = &["--quiet"];
const CPU: &[&str] = &["--device", "cpu", "--quiet"];

fn args<'a>(parts: &[&[&'a str]]) -> Vec<&'a str> {
    parts.concat()
}

/// Trains `before` (commands whose units are not damaged) and `command`, then damages, one at a
/// time, the files of each finished unit whose path ends with one of `units` (only files whose
/// name passes `file`), and checks the refusal, `lth verify` and the repair.
fn matrix(
    before: &[Vec<&str>],
    command: &[&str],
    units: &[&str],
    file: fn(&str) -> bool,
    first: usize,
) {
    let command: Vec<String> = command.iter().map(|s| (*s).to_owned()).collect();
    matrix_after(before, &|_| command.clone(), units, file, first);
}

/// [`matrix`] with the command made once `before` has run (from the run store it left).
fn matrix_after(
    before: &[Vec<&str>],
    make: &dyn Fn(&Path) -> Vec<String>,
    units: &[&str],
    file: fn(&str) -> bool,
    first: usize,
) {
    let w = tempfile::tempdir().unwrap();
    lth_data::testutil::write_mnist_like(&w.path().join("data/mnist"), 300, 100, true).unwrap();
    let runs = w.path().join("runs");
    for c in before {
        ok(&lth(c, w.path()));
    }
    let owned = make(&runs);
    let command: Vec<&str> = owned.iter().map(String::as_str).collect();
    let command = &command[..];
    ok(&lth(command, w.path()));
    let undamaged = finished(&runs);
    let targets: Vec<&PathBuf> = undamaged
        .keys()
        .filter(|p| units.iter().any(|u| p.ends_with(u)))
        .collect();
    assert_eq!(targets.len(), units.len(), "{:?}", undamaged.keys());
    let mut repair = command.to_vec();
    repair.push("--retrain-damaged");
    let mut case = first;
    for unit in targets {
        let done = &undamaged[unit];
        let mut files: Vec<String> = done["files"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|f| file(f))
            .cloned()
            .collect();
        files.push("done.json".into());
        for name in files {
            let damage = DAMAGES[case % DAMAGES.len()];
            case += 1;
            let what = format!("{} of {} {damage:?}", name, unit.display());
            apply(&runs.join(unit).join(&name), damage);
            // A deleted done.json leaves an unfinished unit, which the next run simply trains
            // (from its files it cannot trust, never: it starts again or resumes its own
            // checkpoint); every other damage is refused on one line naming the file.
            if !(name == "done.json" && matches!(damage, Damage::Delete)) {
                let e = err(&lth(command, w.path()));
                let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error")).collect();
                assert!(
                    errors.len() == 1
                        && errors[0].contains(&name)
                        && errors[0].contains("--retrain-damaged")
                        && !e.contains("panicked"),
                    "{what}: {e}"
                );
                let out = lth(&["verify"], w.path());
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    !out.status.success() && text.contains("DAMAGED"),
                    "{what}: {text}"
                );
            }
            ok(&lth(&repair, w.path()));
            let now = finished(&runs);
            for (u, v) in &undamaged {
                assert_eq!(now.get(u), Some(v), "{what}: unit {} differs", u.display());
            }
            let text = ok(&lth(&["verify"], w.path()));
            assert!(text.contains(" 0 damaged"), "{what}: {text}");
        }
    }
}

#[test]
fn a_damaged_lottery_level_is_made_again_from_the_level_before() {
    // The middle level: made from level 1 and level 0, and level 3 is made from it.
    matrix(
        &[],
        &args(&[&["lottery", "--levels", "3"], small(), QUIET]),
        &["level_2/main"],
        |_| true,
        0,
    );
}

#[test]
fn a_damaged_run_pruned_at_initialisation_is_pruned_again() {
    matrix(
        &[],
        &args(&[
            &["train", "--prune-at-init", "snip", "--sparsity", "0.9"],
            small(),
            QUIET,
        ]),
        &["replicate_1"],
        |_| true,
        1,
    );
}

#[test]
fn a_damaged_sparse_run_is_trained_again() {
    matrix(
        &[],
        &args(&[
            &["train", "--sparse", "rigl", "--sparsity", "0.9"],
            small(),
            QUIET,
        ]),
        &["replicate_1"],
        |_| true,
        2,
    );
}

#[test]
fn a_damaged_supermask_is_learned_again() {
    matrix(
        &[],
        &args(&[&["train", "--supermask", "edge-popup"], small(), QUIET]),
        &["replicate_1"],
        |_| true,
        3,
    );
}

#[test]
fn a_damaged_transferred_ticket_is_moved_and_trained_again() {
    let source = args(&[
        &["lottery", "--levels", "1"],
        &small()[..3],
        &["mnist:classes=0-4"],
        &small()[4..],
        QUIET,
    ]);
    // The source's folder, named by the hash of its flags, is known once it exists.
    let command = |runs: &Path| -> Vec<String> {
        let folder = std::fs::read_dir(runs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name();
        let from = format!("runs/{}/replicate_1", folder.to_string_lossy());
        args(&[
            &[
                "transfer",
                "--from",
                &from,
                "--level",
                "1",
                "--dataset",
                "mnist:classes=5-9",
                "--output",
                "copy",
            ],
            CPU,
        ])
        .into_iter()
        .map(str::to_owned)
        .collect()
    };
    matrix_after(
        std::slice::from_ref(&source),
        &command,
        &["replicate_1/ticket"],
        |_| true,
        0,
    );
}

#[test]
fn a_damaged_early_bird_search_and_retraining_are_made_again() {
    let command = args(&[&["early-bird"], SMALL_SEARCH, &["--eb-window", "2"], CPU]);
    // The search (its ticket's files and the shared ones) and the ticket's retraining.
    matrix(
        &[],
        &command,
        &["replicate_1", "retrain_0.5_eb"],
        |_| true,
        1,
    );
}

/// A `done.json` whose numbers were changed and whose own digest was made again to match (so
/// that the digests alone pass) is still caught: `lth verify` cross-checks it against the unit's
/// `metrics.csv`.
#[test]
fn verify_cross_checks_done_json_against_metrics_csv() {
    let w = tempfile::tempdir().unwrap();
    lth_data::testutil::write_mnist_like(&w.path().join("data/mnist"), 300, 100, true).unwrap();
    ok(&lth(&args(&[&["train"], small(), QUIET]), w.path()));
    let runs = w.path().join("runs");
    let unit = finished(&runs).into_keys().next().unwrap();
    let path = runs.join(unit).join("done.json");
    let mut done: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    done["final_test_accuracy"] = serde_json::json!(0.9918);
    let digest = lth_store::verify::summary_digest(&done);
    done["summary_sha256"] = serde_json::Value::String(digest);
    std::fs::write(&path, serde_json::to_vec_pretty(&done).unwrap()).unwrap();
    let out = lth(&["verify"], w.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success()
            && text.contains("done.json's numbers are not those of metrics.csv")
            && text.contains("0.9918 recorded"),
        "{text}"
    );
}
