//! Digests of a finished unit's files, recorded in `done.json` and checked before the unit is
//! trusted.
//!
//! [`crate::RunDir::mark_done`] records the SHA-256 of every file the unit wrote (its own folder
//! and `checkpoints/`, not its child units' folders, not the lock, temporaries or resume
//! checkpoints) under `"files"` in `done.json`. [`crate::RunDir::is_done`] and
//! [`crate::RunDir::done_summary`] check them: a unit whose file is missing or changed is an error
//! that names the file and what to do, or, when [`set_retrain_damaged`] is on, is marked
//! unfinished (its `done.json` is removed) so that it trains again. A unit is checked once per
//! process. `done.json` files written before digests existed have none and are trusted as before.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// The key of the digests in `done.json`.
pub const FILES_KEY: &str = "files";

/// The key of `done.json`'s digest of itself: the SHA-256 of its results (the summary's numbers
/// and the files' digests; not the commit, which says who trained it) as compact JSON with sorted
/// keys.
pub const SUMMARY_KEY: &str = "summary_sha256";

/// The key of the commit that trained a unit in `done.json`.
pub const COMMIT_KEY: &str = "commit";

static RETRAIN_DAMAGED: AtomicBool = AtomicBool::new(false);
static WAIT_FOR_LOCKS: AtomicBool = AtomicBool::new(false);
static RETRAIN_OTHER_COMMITS: AtomicBool = AtomicBool::new(false);
static VERIFIED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static COMMIT: Mutex<Commit> = Mutex::new(Commit::Unset);

/// The commit of the running code: not set, to be found on first use, or known.
enum Commit {
    Unset,
    Pending(Box<dyn FnOnce() -> String + Send>),
    Known(String),
}
static OTHER_COMMITS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The commit of the code running now (`<sha>` or `<sha>-dirty`), recorded in every `done.json`
/// this process writes and compared with that of every finished unit it reuses. Unset (a library
/// user's default), nothing is recorded or compared.
pub fn set_commit(commit: impl Into<String>) {
    if let Ok(mut g) = COMMIT.lock() {
        *g = Commit::Known(commit.into());
    }
}

/// As [`set_commit`], with the commit found by `find` the first time a unit is written or reused,
/// so that a command that touches no unit (`--help`, a refused flag) never pays for it.
pub fn set_commit_with(find: impl FnOnce() -> String + Send + 'static) {
    if let Ok(mut g) = COMMIT.lock() {
        *g = Commit::Pending(Box::new(find));
    }
}

/// The commit set by [`set_commit`] or [`set_commit_with`].
pub fn commit() -> Option<String> {
    let mut g = COMMIT.lock().ok()?;
    if let Commit::Pending(_) = &*g
        && let Commit::Pending(find) = std::mem::replace(&mut *g, Commit::Unset)
    {
        *g = Commit::Known(find());
    }
    match &*g {
        Commit::Known(c) => Some(c.clone()),
        _ => None,
    }
}

/// Whether a finished unit trained by another commit (or before commits were recorded) is
/// trained afresh (`--retrain`) rather than reused and counted.
pub fn set_retrain_other_commits(on: bool) {
    RETRAIN_OTHER_COMMITS.store(on, Ordering::Relaxed);
}

pub(crate) fn retrain_other_commits() -> bool {
    RETRAIN_OTHER_COMMITS.load(Ordering::Relaxed)
}

pub(crate) fn note_other_commit(dir: &Path) {
    if let Ok(mut g) = OTHER_COMMITS.lock() {
        g.push(dir.to_owned());
    }
}

/// The finished units reused since the last call whose `done.json` names another commit than
/// [`commit`] (or none): what a check says it judged without training.
pub fn take_other_commit_units() -> Vec<PathBuf> {
    OTHER_COMMITS
        .lock()
        .map(|mut g| std::mem::take(&mut *g))
        .unwrap_or_default()
}

/// Whether [`crate::RunDir::lock`] waits for a folder another process holds (the `lth` commands'
/// default; `--no-wait` turns it off) rather than failing at once (a library's default).
pub fn set_wait_for_locks(on: bool) {
    WAIT_FOR_LOCKS.store(on, Ordering::Relaxed);
}

pub(crate) fn wait_for_locks() -> bool {
    WAIT_FOR_LOCKS.load(Ordering::Relaxed)
}

/// Whether a finished unit whose files fail their digests is trained again (`--retrain-damaged`)
/// rather than reported as an error.
pub fn set_retrain_damaged(on: bool) {
    RETRAIN_DAMAGED.store(on, Ordering::Relaxed);
}

pub(crate) fn retrain_damaged() -> bool {
    RETRAIN_DAMAGED.load(Ordering::Relaxed)
}

/// The SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Whether a file of a unit's folder is one of its results (digested when it finishes).
fn is_result(name: &str) -> bool {
    !(name == crate::files::DONE_FILE
        || name == crate::files::LOCK_FILE
        || name.ends_with(".tmp")
        || name.starts_with("resume_"))
}

/// Every file of the unit in `dir` (its folder and `checkpoints/`, not its child units'
/// folders), by path relative to it, with its file name.
fn unit_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (sub, prefix) in [
        (dir.to_owned(), ""),
        (dir.join("checkpoints"), "checkpoints/"),
    ] {
        let Ok(entries) = fs::read_dir(&sub) else {
            continue;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && path.is_file()
            {
                out.push((format!("{prefix}{name}"), path.clone()));
            }
        }
    }
    out
}

/// The file name of a path relative to a unit (`checkpoints/step_0.safetensors`).
fn name_of(relative: &str) -> &str {
    relative.rsplit('/').next().unwrap_or(relative)
}

/// The digests of the result files of the unit in `dir`, by path relative to it.
pub(crate) fn digests(dir: &Path) -> Result<BTreeMap<String, String>> {
    let _io = crate::ledger::span(crate::ledger::Activity::Io);
    let mut out = BTreeMap::new();
    for (relative, path) in unit_files(dir) {
        if is_result(name_of(&relative)) {
            let digest = sha256_file(&path).map_err(|e| StoreError::io(&path, e))?;
            out.insert(relative, digest);
        }
    }
    Ok(out)
}

/// What is wrong with one file of a finished unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub file: String,
    pub problem: String,
    /// The unit was made from another unit whose results changed (or vanished) since: every file
    /// it wrote derives from the old results, so `--retrain-damaged` removes them all, not only
    /// the damaged ones.
    pub stale: bool,
}

impl Damage {
    fn of(file: impl Into<String>, problem: impl Into<String>) -> Damage {
        Damage {
            file: file.into(),
            problem: problem.into(),
            stale: false,
        }
    }
}

/// The file in which a unit names the finished units it was made from, with each one's results
/// digest ([`SUMMARY_KEY`]) when it started (see [`crate::RunDir::record_inputs`]).
pub const INPUTS_FILE: &str = "inputs.json";

/// The digest a finished unit's results have now: its recorded [`SUMMARY_KEY`], else (written
/// before `done.json` digested itself) the digest computed from it. `None`: not finished.
pub(crate) fn results_digest(dir: &Path) -> Result<Option<String>> {
    let path = dir.join(crate::files::DONE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let value: serde_json::Value = crate::files::read_json(&path)?;
    Ok(Some(
        value
            .get(SUMMARY_KEY)
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| summary_digest(&value), str::to_owned),
    ))
}

/// Checks the inputs a unit recorded in [`INPUTS_FILE`]: each must still be finished with the
/// results it had when the unit started.
fn check_inputs(dir: &Path) -> Result<Option<Damage>> {
    let path = dir.join(INPUTS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let inputs: BTreeMap<String, String> = crate::files::read_json(&path)?;
    for (input, recorded) in inputs {
        let stale = |problem: String| Damage {
            file: INPUTS_FILE.into(),
            problem,
            stale: true,
        };
        match results_digest(&dir.join(&input))? {
            None => {
                return Ok(Some(stale(format!(
                    "names {input}, which is no longer finished (this unit was made from it)"
                ))));
            }
            Some(now) if now != recorded => {
                return Ok(Some(stale(format!(
                    "names {input}, whose results changed since this unit was made from them"
                ))));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// Checks the unit in `dir` against the digests of its `done.json` (`recorded`): the first file
/// that is missing or changed.
pub(crate) fn check(dir: &Path, recorded: &BTreeMap<String, String>) -> Result<Option<Damage>> {
    for (file, digest) in recorded {
        let path = dir.join(file);
        if !path.is_file() {
            return Ok(Some(Damage::of(file.clone(), "is missing")));
        }
        let now = sha256_file(&path).map_err(|e| StoreError::io(&path, e))?;
        if &now != digest {
            return Ok(Some(Damage::of(
                file.clone(),
                "does not match its digest in done.json (changed, truncated or damaged)",
            )));
        }
    }
    Ok(None)
}

/// The digest `done.json` records of itself: the SHA-256 of `value` without [`SUMMARY_KEY`] and
/// [`COMMIT_KEY`].
pub fn summary_digest(value: &serde_json::Value) -> String {
    let mut rest = value.clone();
    if let serde_json::Value::Object(map) = &mut rest {
        map.remove(SUMMARY_KEY);
        map.remove(COMMIT_KEY);
    }
    let bytes = serde_json::to_vec(&rest).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a finished unit: `done.json` (`value`) against its own digest, so that an edited number
/// is never trusted, then the files against theirs. Units written before `done.json` digested
/// itself have no digest to check.
pub(crate) fn check_done(dir: &Path, value: &serde_json::Value) -> Result<Option<Damage>> {
    if let Some(recorded) = value.get(SUMMARY_KEY).and_then(serde_json::Value::as_str)
        && recorded != summary_digest(value)
    {
        return Ok(Some(Damage::of(
            crate::files::DONE_FILE,
            "does not match its own digest (its numbers were changed)",
        )));
    }
    let own = match value
        .get(FILES_KEY)
        .and_then(|f| serde_json::from_value::<BTreeMap<String, String>>(f.clone()).ok())
    {
        Some(files) => check(dir, &files)?,
        None => None,
    };
    match own {
        Some(d) => Ok(Some(d)),
        None => check_inputs(dir),
    }
}

/// Every file of the unit in `dir` that no longer matches its digest in `recorded` (what
/// `--retrain-damaged` removes before the unit trains again); with `stale`, every file the unit
/// wrote, its results and its resume checkpoints, since all of them derive from an input that
/// changed (or from a `done.json` whose digests are lost).
pub(crate) fn damaged_files(
    dir: &Path,
    recorded: &BTreeMap<String, String>,
    stale: bool,
) -> Vec<PathBuf> {
    if stale {
        return unit_files(dir)
            .into_iter()
            .filter(|(relative, _)| {
                let name = name_of(relative);
                is_result(name) || name.starts_with("resume_")
            })
            .map(|(_, path)| path)
            .collect();
    }
    recorded
        .iter()
        .map(|(file, digest)| (dir.join(file), digest))
        .filter(|(path, digest)| {
            path.is_file() && sha256_file(path).map_or(true, |now| &now != *digest)
        })
        .map(|(path, _)| path)
        .collect()
}

/// Units trained again in this process after damage: when one finishes, what was verified before
/// is verified again, since units made from it may now be stale.
static REPAIRED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

pub(crate) fn note_repairing(dir: &Path) {
    if let Ok(mut g) = REPAIRED.lock() {
        g.get_or_insert_with(HashSet::new).insert(dir.to_owned());
    }
}

/// Called when the unit in `dir` finishes: if it was being repaired, forget every verification.
pub(crate) fn finished(dir: &Path) {
    let repaired = REPAIRED
        .lock()
        .map(|mut g| g.as_mut().is_some_and(|s| s.remove(dir)))
        .unwrap_or(false);
    if repaired && let Ok(mut g) = VERIFIED.lock() {
        *g = None;
    }
}

/// Whether `dir` was verified already in this process.
pub(crate) fn already_verified(dir: &Path) -> bool {
    VERIFIED
        .lock()
        .map(|g| g.as_ref().is_some_and(|s| s.contains(dir)))
        .unwrap_or(false)
}

pub(crate) fn remember_verified(dir: &Path) {
    if let Ok(mut g) = VERIFIED.lock() {
        g.get_or_insert_with(HashSet::new).insert(dir.to_owned());
    }
}

pub(crate) fn forget_verified(dir: &Path) {
    if let Ok(mut g) = VERIFIED.lock()
        && let Some(s) = g.as_mut()
    {
        s.remove(dir);
    }
}
