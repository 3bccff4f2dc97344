//! Run folders: binding a folder to its hyperparameters, locking it, and marking work done.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::files::{DONE_FILE, HPARAMS_FILE, LOCK_FILE, read_json};
use crate::{Result, RunKind, StoreError, verify, write_json_atomic};

/// The root of a run store (`runs/` by default).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A store rooted at `root`; nothing is created until a run writes.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of the run of `kind` with these hyperparameters: `<root>/<kind>_<hash>`.
    pub fn run<T: Serialize + Default>(&self, kind: RunKind, hparams: &T) -> RunDir {
        RunDir::new(self.root.join(kind.folder(hparams)))
    }
}

/// One folder of the run store. Creating the value touches nothing on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Replicate `r`'s folder in this run's folder (its name: [`crate::layout::replicate`]).
    pub fn replicate(&self, r: u64) -> RunDir {
        self.child(crate::layout::replicate(r))
    }

    /// Level `level`'s folder in this replicate's folder (its name: [`crate::layout::level`]).
    pub fn level(&self, level: u64) -> RunDir {
        self.child(crate::layout::level(level))
    }

    /// The run folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file or folder inside the run folder.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Every file under the folder and its nested folders, by `/`-separated path relative to it,
    /// sorted: how tests compare the layout of two folders (a packed copy's and an unpacked
    /// run's). An absent folder has none.
    pub fn files(&self) -> Result<Vec<String>> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(StoreError::io(dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::io(dir, e))?;
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.path().is_dir() {
                    walk(&entry.path(), &format!("{name}/"), out)?;
                } else {
                    out.push(name);
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(&self.path, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    /// Moves `old`, the same run in an older layout of the store, here, when `old` exists and
    /// this folder does not (creating the parents), and says so on one line; returns whether it
    /// moved. Both existing, `old` is left where it is (this folder is the run's home).
    pub fn take_over(&self, old: &RunDir) -> Result<bool> {
        if !old.path.is_dir() || self.path.exists() {
            return Ok(false);
        }
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        fs::rename(&old.path, &self.path).map_err(|e| StoreError::io(&old.path, e))?;
        eprintln!(
            "moved {} to {}: the run's one home in this version of the store",
            old.path.display(),
            self.path.display()
        );
        Ok(true)
    }

    /// A nested run folder (`replicate_1`, `level_3`, `branch_random_reinit_<hash>`).
    pub fn child(&self, name: impl AsRef<Path>) -> RunDir {
        RunDir::new(self.path.join(name))
    }

    /// Creates the folder and its parents. A file where the folder (or a parent) belongs is
    /// named as such.
    pub fn create(&self) -> Result<()> {
        fs::create_dir_all(&self.path).map_err(|e| {
            match self.path.ancestors().find(|p| p.exists() && !p.is_dir()) {
                Some(file) => StoreError::Foreign {
                    path: file.to_owned(),
                    reason:
                        "a file is where a run folder belongs (move it away, or choose another \
                             --runs-dir)"
                            .into(),
                },
                None => StoreError::io(&self.path, e),
            }
        })
    }

    /// Takes the folder's lock for as long as the returned guard lives, so two processes never
    /// write the same run. The lock is advisory and released by the OS if the process dies. When
    /// another process holds it: with [`crate::verify::set_wait_for_locks`], says so once and
    /// waits for it (the caller then finds the unit finished, or resumes it); otherwise, as
    /// [`RunDir::try_lock`], an error.
    pub fn lock(&self) -> Result<RunLock> {
        self.take_lock(crate::verify::wait_for_locks())
    }

    /// Takes the folder's lock, or fails at once (`Locked`) when another process holds it.
    pub fn try_lock(&self) -> Result<RunLock> {
        self.take_lock(false)
    }

    /// Opens the lock file once and takes its lock: at once, or (`wait`) after saying so and
    /// waiting for the process that holds it.
    fn take_lock(&self, wait: bool) -> Result<RunLock> {
        self.create()?;
        let path = self.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) if wait => {
                eprintln!(
                    "{}: another lth process is working in this run folder; waiting for it to \
                     finish (--no-wait stops instead)",
                    self.path.display()
                );
                file.lock().map_err(|e| StoreError::io(&path, e))?;
            }
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path }),
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(&path, e)),
        }
        self.remove_stale_temporaries();
        Ok(RunLock { _file: file })
    }

    /// Removes the temporary files (`<name>.<pid>.tmp`, see [`crate::tmp_path`]) that processes
    /// which no longer exist left in the folder and its `checkpoints/` (a write cut short by a
    /// kill or a full disk), so that they do not keep the disk full. Called under the lock; a
    /// file of a live process is never touched. Where the system has no `/proc` to tell which
    /// processes live, nothing is removed.
    fn remove_stale_temporaries(&self) {
        if !Path::new("/proc/self").exists() {
            return;
        }
        for dir in [self.path.clone(), self.join("checkpoints")] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                let Some(pid) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".tmp"))
                    .and_then(|n| n.rsplit_once('.'))
                    .and_then(|(_, pid)| pid.parse::<u32>().ok())
                else {
                    continue;
                };
                let alive = Path::new("/proc").join(pid.to_string()).exists();
                if !alive && pid != std::process::id() {
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }

    /// Writes `hparams.json` if the folder has none, or checks that the one there describes the
    /// same run. A folder that holds another run's (or a foreign) `hparams.json` is an error, and
    /// nothing in it is touched.
    pub fn bind_hparams<T: Serialize + DeserializeOwned>(&self, hparams: &T) -> Result<()> {
        let path = self.join(HPARAMS_FILE);
        let wanted = serde_json::to_value(hparams).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        // A finished unit's hyperparameters are among its digested files: checked (and, with
        // --retrain-damaged, removed when damaged) before they are compared.
        if self.join(DONE_FILE).exists() {
            self.verified_done()?;
        }
        if !path.exists() {
            return write_json_atomic(&path, &wanted);
        }
        let stored: Value = read_json(&path)?;
        // Parse as `T`, so that a file of another kind is reported as such, and compare what it
        // parses to: a field added to `T` after the folder was written takes its default there,
        // exactly as it does in the run's hash, so upgrading `lth` does not orphan finished runs.
        let parsed = serde_json::from_value::<T>(stored).map_err(|e| StoreError::Foreign {
            path: path.clone(),
            reason: format!(
                "not the hyperparameters of this kind of run ({e}); refusing to touch this folder"
            ),
        })?;
        let stored = serde_json::to_value(&parsed).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        if let Some(field) = first_difference(&stored, &wanted, "") {
            return Err(StoreError::Foreign {
                path,
                reason: format!(
                    "describes a different run ({field}); refusing to touch this folder"
                ),
            });
        }
        Ok(())
    }

    /// The hyperparameters bound to this folder, if any.
    pub fn hparams<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let path = self.join(HPARAMS_FILE);
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Whether the folder's work is finished, its files checked against the digests in
    /// `done.json` (see [`crate::verify`]): a damaged unit is an error naming the file, or, with
    /// `set_retrain_damaged(true)`, unfinished again.
    pub fn is_done(&self) -> Result<bool> {
        Ok(self.verified_done()?.is_some())
    }

    /// Marks the work finished, with a summary (written last, atomically). When the summary is a
    /// JSON object, the digests of the unit's files are recorded in it under `"files"`.
    pub fn mark_done<S: Serialize>(&self, summary: &S) -> Result<()> {
        let path = self.join(DONE_FILE);
        let mut value = serde_json::to_value(summary).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        if let Value::Object(map) = &mut value {
            let files = verify::digests(&self.path)?;
            map.insert(
                verify::FILES_KEY.into(),
                serde_json::to_value(files).unwrap_or_default(),
            );
            if let Some(commit) = verify::commit() {
                map.insert(verify::COMMIT_KEY.into(), Value::String(commit));
            }
        }
        if value.is_object() {
            let digest = verify::summary_digest(&value);
            if let Value::Object(map) = &mut value {
                map.insert(verify::SUMMARY_KEY.into(), Value::String(digest));
            }
        }
        write_json_atomic(&path, &value)?;
        verify::finished(&self.path);
        verify::remember_verified(&self.path);
        Ok(())
    }

    /// Records the finished units this unit is made from (a level's parent level, the level a
    /// branch or a copy starts from) with their results' digests, in `inputs.json`, before it
    /// trains. The file is one of the unit's results, so it is digested with them; when an input
    /// is later trained again with other results (or is no longer finished), this unit counts as
    /// damaged, and `--retrain-damaged` makes it again from the new input.
    pub fn record_inputs(&self, inputs: &[&RunDir]) -> Result<()> {
        let mut map = std::collections::BTreeMap::new();
        for input in inputs {
            let relative = relative_path(&self.path, &input.path);
            let digest =
                verify::results_digest(&input.path)?.ok_or_else(|| StoreError::NotFinished {
                    path: input.path.clone(),
                    reason: format!(
                        "not finished, so {} cannot be made from it",
                        self.path.display()
                    ),
                })?;
            map.insert(relative, digest);
        }
        fs::create_dir_all(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        write_json_atomic(&self.join(verify::INPUTS_FILE), &map)
    }

    /// The summary written by [`RunDir::mark_done`], if the work is finished (checked as
    /// [`RunDir::is_done`] checks it).
    pub fn done_summary<S: DeserializeOwned>(&self) -> Result<Option<S>> {
        let path = self.join(DONE_FILE);
        match self.verified_done()? {
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|source| StoreError::Json { path, source }),
            None => Ok(None),
        }
    }

    /// The digests of the files the unit finished with, if it recorded them.
    pub fn recorded_files(&self) -> Result<Option<std::collections::BTreeMap<String, String>>> {
        let path = self.join(DONE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let value: Value = read_json(&path)?;
        Ok(value
            .get(verify::FILES_KEY)
            .and_then(|f| serde_json::from_value(f.clone()).ok()))
    }

    /// Checks a finished unit's files against its digests, without the once-per-process memory
    /// and whatever `set_retrain_damaged` says: what `lth verify` reports.
    pub fn verify(&self) -> Result<Option<verify::Damage>> {
        let path = self.join(DONE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let value: Value = read_json(&path)?;
        verify::check_done(&self.path, &value)
    }

    /// Makes a damaged finished unit unfinished, to be trained again (`--retrain-damaged`): its
    /// files in `remove` go first, then `done.json`; what this process verified is then
    /// verified again once the unit finishes anew (units made from it may change with it).
    fn unfinish(&self, remove: Vec<PathBuf>) -> Result<()> {
        for file in remove {
            fs::remove_file(&file).map_err(|e| StoreError::io(&file, e))?;
        }
        let done = self.join(DONE_FILE);
        fs::remove_file(&done).map_err(|e| StoreError::io(&done, e))?;
        verify::forget_verified(&self.path);
        verify::note_repairing(&self.path);
        Ok(())
    }

    /// `done.json`'s contents if the unit is finished and its files pass their digests.
    fn verified_done(&self) -> Result<Option<Value>> {
        let path = self.join(DONE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let value: Value = match read_json(&path) {
            Ok(v) => v,
            Err(e) => {
                let problem = format!("is not readable JSON ({e})");
                if !verify::retrain_damaged() {
                    return Err(StoreError::Damaged {
                        path: self.path.clone(),
                        file: DONE_FILE.into(),
                        problem,
                    });
                }
                // Its digests are lost with it, so nothing the unit wrote can be trusted: all of
                // it is made again.
                eprintln!(
                    "note: {}: {DONE_FILE} {problem}; training it again (--retrain-damaged)",
                    self.path.display()
                );
                self.unfinish(verify::damaged_files(&self.path, &Default::default(), true))?;
                return Ok(None);
            }
        };
        if verify::already_verified(&self.path) {
            return Ok(Some(value));
        }
        match verify::check_done(&self.path, &value)? {
            None => {
                if let Some(now) = verify::commit() {
                    let theirs = value.get(verify::COMMIT_KEY).and_then(Value::as_str);
                    if theirs != Some(now.as_str()) {
                        if verify::retrain_other_commits() {
                            eprintln!(
                                "note: {}: trained by {}; training it again with {now} (--retrain)",
                                self.path.display(),
                                theirs.map_or("an unrecorded commit".to_owned(), |c| {
                                    format!("commit {c}")
                                })
                            );
                            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                            return Ok(None);
                        }
                        verify::note_other_commit(&self.path);
                    }
                }
                verify::remember_verified(&self.path);
                Ok(Some(value))
            }
            Some(d) if verify::retrain_damaged() => {
                eprintln!(
                    "note: {}: {} {}; training it again (--retrain-damaged)",
                    self.path.display(),
                    d.file,
                    d.problem
                );
                // The damaged files go first: what a unit wrote before it trained (its mask,
                // pruned from the level before or at initialisation) is then made again from its
                // verified inputs, never read back damaged.
                let recorded: std::collections::BTreeMap<String, String> = value
                    .get(verify::FILES_KEY)
                    .and_then(|f| serde_json::from_value(f.clone()).ok())
                    .unwrap_or_default();
                self.unfinish(verify::damaged_files(&self.path, &recorded, d.stale))?;
                Ok(None)
            }
            Some(d) => Err(StoreError::Damaged {
                path: self.path.clone(),
                file: d.file,
                problem: d.problem,
            }),
        }
    }
}

/// Holds a run folder's lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: fs::File,
}

/// `to` as a `/`-separated path relative to the folder `from` (`../../level_0/main`).
fn relative_path(from: &Path, to: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let (from, to) = (absolute(from), absolute(to));
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = from.components().count() - common;
    let mut parts: Vec<String> = vec!["..".to_owned(); ups];
    parts.extend(
        to.components()
            .skip(common)
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// The first field (as a dotted path) where two JSON values differ, with both values.
fn first_difference(stored: &Value, wanted: &Value, at: &str) -> Option<String> {
    match (stored, wanted) {
        (Value::Object(s), Value::Object(w)) => {
            let mut keys: Vec<&String> = s.keys().chain(w.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (s.get(k), w.get(k)) {
                    (Some(a), Some(b)) => first_difference(a, b, &path),
                    (a, b) => Some(format!("{path}: stored {}, asked for {}", show(a), show(b))),
                }
            })
        }
        _ if stored == wanted => None,
        _ => Some(format!("{at}: stored {stored}, asked for {wanted}")),
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "nothing".to_owned(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
    struct Hp {
        lr: f64,
        steps: String,
    }

    #[test]
    fn locking_removes_the_temporaries_of_dead_processes_only() {
        if !Path::new("/proc/self").exists() {
            eprintln!("SKIPPED: no /proc to tell live processes from dead ones");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("train_x"));
        fs::create_dir_all(run.join("checkpoints")).unwrap();
        // No process has pid 4294967294 (above every kernel's pid_max); this one lives.
        let dead = [
            run.join("final.safetensors.4294967294.tmp"),
            run.join("checkpoints/resume_10.safetensors.4294967294.tmp"),
        ];
        let live = run.join(format!("metrics.csv.{}.tmp", std::process::id()));
        let other = run.join("notes.tmp");
        for p in dead.iter().chain([&live, &other]) {
            fs::write(p, b"partial").unwrap();
        }
        let _lock = run.lock().unwrap();
        for p in &dead {
            assert!(!p.exists(), "{} stayed", p.display());
        }
        assert!(live.exists() && other.exists());
    }

    /// A run of an older layout moves to its one home once (with what it holds), and never over
    /// a home that exists.
    #[test]
    fn a_run_moves_to_its_home_once_and_never_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let hp = Hp {
            lr: 0.1,
            steps: "1ep".into(),
        };
        let home = store.run(RunKind::Sparse, &hp).replicate(1);
        let old = store
            .run(RunKind::Lottery, &hp)
            .replicate(1)
            .child(RunKind::Sparse.folder(&hp));
        // Nothing to move.
        assert!(!home.take_over(&old).unwrap());
        fs::create_dir_all(old.join("checkpoints")).unwrap();
        fs::write(old.join("metrics.csv"), b"step\n").unwrap();
        assert!(home.take_over(&old).unwrap());
        assert!(!old.path().exists());
        assert_eq!(home.files().unwrap(), vec!["metrics.csv".to_owned()]);
        assert!(home.join("checkpoints").is_dir());
        // Both present: the home stays as it is and the old folder where it was.
        fs::create_dir_all(old.path()).unwrap();
        fs::write(old.join("metrics.csv"), b"other\n").unwrap();
        assert!(!home.take_over(&old).unwrap());
        assert_eq!(fs::read(home.join("metrics.csv")).unwrap(), b"step\n");
        assert!(old.join("metrics.csv").exists());
    }

    #[test]
    fn binding_is_idempotent_and_refuses_another_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let hp = Hp {
            lr: 0.1,
            steps: "2ep".into(),
        };
        let run = store.run(RunKind::Train, &hp);
        assert!(
            run.path()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("train_")
        );
        run.bind_hparams(&hp).unwrap();
        run.bind_hparams(&hp).unwrap();
        let other = Hp {
            lr: 0.2,
            steps: "2ep".into(),
        };
        let err = run.bind_hparams(&other).unwrap_err().to_string();
        assert!(
            err.contains("lr: stored 0.1, asked for 0.2"),
            "unexpected message: {err}"
        );
    }

    #[test]
    fn a_field_added_later_with_its_default_matches_a_folder_written_before() {
        #[derive(Serialize, Deserialize, Default)]
        struct Newer {
            lr: f64,
            steps: String,
            #[serde(default)]
            augment: bool,
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let old = Hp {
            lr: 0.1,
            steps: "2ep".into(),
        };
        let new = Newer {
            lr: 0.1,
            steps: "2ep".into(),
            augment: false,
        };
        let run = store.run(RunKind::Train, &old);
        assert_eq!(
            run,
            store.run(RunKind::Train, &new),
            "defaults are not hashed"
        );
        run.bind_hparams(&old).unwrap();
        let before = fs::read_to_string(run.join(HPARAMS_FILE)).unwrap();
        run.bind_hparams(&new).unwrap();
        assert_eq!(fs::read_to_string(run.join(HPARAMS_FILE)).unwrap(), before);
        let err = run
            .bind_hparams(&Newer {
                augment: true,
                ..new
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("augment: stored false, asked for true"),
            "{err}"
        );
    }

    #[test]
    fn a_foreign_hparams_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        fs::write(run.join(HPARAMS_FILE), "{\"something\": \"else\"}").unwrap();
        #[derive(Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Strict {
            lr: f64,
        }
        let err = run.bind_hparams(&Strict { lr: 1.0 }).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
        assert_eq!(
            fs::read_to_string(run.join(HPARAMS_FILE)).unwrap(),
            "{\"something\": \"else\"}"
        );
    }

    #[test]
    fn a_corrupt_hparams_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        fs::write(run.join(HPARAMS_FILE), "{not json").unwrap();
        let err = run.bind_hparams(&Hp::default()).unwrap_err().to_string();
        assert!(err.contains("hparams.json"), "{err}");
    }

    #[test]
    fn the_lock_is_exclusive_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("r"));
        let held = run.try_lock().unwrap();
        assert!(matches!(run.try_lock(), Err(StoreError::Locked { .. })));
        drop(held);
        run.lock().unwrap();
    }

    #[test]
    fn done_marks_and_summaries() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert!(!run.is_done().unwrap());
        assert!(run.done_summary::<Hp>().unwrap().is_none());
        run.mark_done(&Hp {
            lr: 1.0,
            steps: "1it".into(),
        })
        .unwrap();
        assert!(run.is_done().unwrap());
        assert_eq!(run.done_summary::<Hp>().unwrap().unwrap().lr, 1.0);
    }

    /// Each damage in its own folder: a unit is checked once per process.
    #[test]
    fn a_finished_unit_whose_files_changed_is_never_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let forget = |run: &RunDir| verify::forget_verified(run.path());
        let finished = |name: &str| {
            let run = RunDir::new(dir.path().join(name));
            fs::create_dir_all(run.join("checkpoints")).unwrap();
            fs::write(run.join("final.safetensors"), b"weights").unwrap();
            fs::write(run.join("checkpoints/step_0.safetensors"), b"w0").unwrap();
            fs::write(run.join("checkpoints/resume_9.safetensors"), b"gone soon").unwrap();
            run.mark_done(&Hp::default()).unwrap();
            fs::remove_file(run.join("checkpoints/resume_9.safetensors")).unwrap();
            forget(&run);
            run
        };
        let intact = finished("intact");
        assert!(intact.is_done().unwrap());
        let files = intact.recorded_files().unwrap().unwrap();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["checkpoints/step_0.safetensors", "final.safetensors"]
        );
        for (name, damage, problem) in [
            ("deleted", None, "final.safetensors is missing"),
            (
                "truncated",
                Some(&b"weig"[..]),
                "final.safetensors does not match its digest in done.json",
            ),
            (
                "garbled",
                Some(&b"wEights"[..]),
                "final.safetensors does not match its digest in done.json",
            ),
        ] {
            let run = finished(name);
            match damage {
                None => fs::remove_file(run.join("final.safetensors")).unwrap(),
                Some(bytes) => fs::write(run.join("final.safetensors"), bytes).unwrap(),
            }
            let err = run.is_done().unwrap_err().to_string();
            assert!(err.contains(problem), "{name}: {err}");
            assert!(err.contains("--retrain-damaged"), "{err}");
            forget(&run);
            assert!(run.done_summary::<Hp>().is_err(), "{name}");
            assert!(run.verify().unwrap().is_some(), "{name}");
        }
        // A number of done.json edited, still valid JSON: its own digest no longer matches.
        let edited = finished("edited");
        let text = fs::read_to_string(edited.join(DONE_FILE)).unwrap();
        let mut value: Value = serde_json::from_str(&text).unwrap();
        assert!(value.get(verify::SUMMARY_KEY).is_some(), "{text}");
        value["files"]["final.safetensors"] = Value::String("0".repeat(64));
        fs::write(edited.join(DONE_FILE), value.to_string()).unwrap();
        let err = edited.is_done().unwrap_err().to_string();
        assert!(
            err.contains("done.json does not match its own digest (its numbers were changed)"),
            "{err}"
        );
        forget(&edited);
        assert!(edited.verify().unwrap().is_some());
        // With --retrain-damaged the unit is unfinished again, and done.json goes.
        let run = finished("retrain");
        fs::write(run.join("final.safetensors"), b"x").unwrap();
        verify::set_retrain_damaged(true);
        let again = run.is_done();
        verify::set_retrain_damaged(false);
        assert!(!again.unwrap());
        assert!(!run.join(DONE_FILE).exists());
    }
}
