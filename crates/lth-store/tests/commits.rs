//! The commit that trained a unit: recorded in `done.json`, compared when the unit is reused, and
//! trained afresh on request. Its own test binary: the commit and the retrain switch are
//! process-wide.
#![allow(clippy::unwrap_used)]

use lth_store::{DONE_FILE, RunDir, verify};

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Summary {
    steps: u64,
}

#[test]
fn units_of_another_commit_are_counted_or_trained_again() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("level_0"));
    std::fs::create_dir_all(run.path()).unwrap();
    std::fs::write(run.join("final.safetensors"), b"weights").unwrap();
    // The commit is found once, when a unit first needs it.
    static FOUND: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    verify::set_commit_with(|| {
        FOUND.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        "aaaa".into()
    });
    assert_eq!(FOUND.load(std::sync::atomic::Ordering::SeqCst), 0);
    run.mark_done(&Summary { steps: 3 }).unwrap();
    let done: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join(DONE_FILE)).unwrap()).unwrap();
    assert_eq!(done["commit"], "aaaa");
    // The same commit reuses it without a word.
    let fresh = RunDir::new(run.path());
    assert!(take_and_check(&fresh, true).is_empty());
    assert_eq!(FOUND.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Another commit reuses it too, and counts it once.
    verify::set_commit("bbbb-dirty");
    // (Each look goes through another path, a link: a unit is verified once per process and path.)
    let other = RunDir::new(alias(dir.path(), "a"));
    let counted = take_and_check(&other, true);
    assert_eq!(counted.len(), 1, "{counted:?}");

    // With --retrain it is unfinished again: done.json goes, the files stay for the new run.
    verify::set_retrain_other_commits(true);
    let again = RunDir::new(alias(dir.path(), "b"));
    assert!(take_and_check(&again, false).is_empty());
    assert!(!run.join(DONE_FILE).exists());
    assert!(run.join("final.safetensors").exists());
    verify::set_retrain_other_commits(false);
}

/// Whether the unit is done (asserted equal to `done`) and the units counted meanwhile.
fn take_and_check(run: &RunDir, done: bool) -> Vec<std::path::PathBuf> {
    assert_eq!(run.is_done().unwrap(), done);
    verify::take_other_commit_units()
}

/// A link to the unit's folder under another name.
fn alias(root: &std::path::Path, name: &str) -> std::path::PathBuf {
    let link = root.join(name);
    std::os::unix::fs::symlink(root.join("level_0"), &link).unwrap();
    link
}
