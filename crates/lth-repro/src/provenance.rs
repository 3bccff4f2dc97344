//! Where a measured snapshot came from: `repro/<target>/provenance.csv`, one line per scale and
//! device, with the command (threads and packing included), the device, the CPU's model and vector
//! extensions, the threads, the commit (and whether the tree had uncommitted changes), the date,
//! the rustc, tch and libtorch versions, and the SHA-256 of every data file read. Each report
//! folder has the same line for its own run. Floating-point results differ in the last bits
//! between CPUs with and without AVX-512 (and between thread counts), so a reader comparing a run
//! with a snapshot knows what differed.

use std::path::Path;

use serde::{Deserialize, Serialize};

use lth_store::CsvLog;

use crate::Result;

/// One recorded snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub scale: String,
    pub device: String,
    pub replicates: u64,
    pub samples: u64,
    pub command: String,
    pub cpu: String,
    /// The vector extensions that change libtorch's kernels (`avx2 fma avx512f ...`).
    pub simd: String,
    /// libtorch's intra-op threads.
    pub threads: i32,
    /// The commit the binary was built from ([`Build::current`]), `unknown` outside a checkout.
    #[serde(default)]
    pub commit: String,
    /// Whether tracked files differed from that commit.
    #[serde(default)]
    pub dirty: bool,
    /// When the run ended (UTC, RFC 3339).
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub rustc: String,
    #[serde(default)]
    pub tch: String,
    #[serde(default)]
    pub libtorch: String,
    /// `<dataset>/<file>=<sha256>` of every data file the run read, `;`-separated.
    #[serde(default)]
    pub data: String,
}

/// What built and runs this code: the commit, rustc, tch and libtorch.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    /// `git rev-parse HEAD` of the checkout the binary was built from, where it still exists; else
    /// the commit the binary was built at; else `unknown`.
    pub commit: String,
    /// Whether tracked files differ from `commit` (`git status`); false when unknown.
    pub dirty: bool,
    pub rustc: String,
    pub tch: String,
    /// The version of the libtorch this process loaded (its `version.py` or `build-version`).
    pub libtorch: String,
}

impl Build {
    /// This process's build.
    pub fn current() -> Build {
        // The checkout this binary was built from, where it still exists (never the working
        // directory, which may be another project's repository).
        let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let git = |args: &[&str]| {
            if !checkout.is_dir() {
                return None;
            }
            std::process::Command::new("git")
                .arg("-C")
                .arg(checkout)
                .args(args)
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        // The commit this binary was built from (the build script reruns when HEAD moves), not
        // the checkout's HEAD now: a checkout may move on while a binary built earlier still runs
        // (a commit made during a long reproduction), and its units are that binary's. Whether
        // the build had uncommitted changes is read from the checkout while it is still at that
        // commit; the build script cannot see it.
        let built = option_env!("LTH_BUILD_COMMIT").filter(|c| !c.is_empty());
        let head = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
        let dirty = || {
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty())
        };
        let (commit, dirty) = match (built, head) {
            (Some(b), Some(h)) if b == h => (h, dirty()),
            (Some(b), _) => (b.to_owned(), false),
            (None, Some(h)) => (h, dirty()),
            (None, None) => ("unknown".to_owned(), false),
        };
        Build {
            commit,
            dirty,
            rustc: env!("LTH_RUSTC").to_owned(),
            tch: env!("LTH_TCH").to_owned(),
            libtorch: loaded_libtorch().unwrap_or_else(|| "unknown".into()),
        }
    }

    /// The commit as `done.json` records it: `<sha>`, or `<sha>-dirty` for uncommitted changes.
    pub fn label(&self) -> String {
        if self.dirty {
            format!("{}-dirty", self.commit)
        } else {
            self.commit.clone()
        }
    }
}

/// The version of the libtorch mapped into this process: `version.py` (a PyTorch wheel) or
/// `build-version` (a libtorch archive) beside the folder `libtorch_cpu.so` was loaded from.
fn loaded_libtorch() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))?;
    let root = Path::new(lib).parent()?.parent()?;
    if let Ok(py) = std::fs::read_to_string(root.join("version.py")) {
        return py
            .lines()
            .find_map(|l| l.strip_prefix("__version__ = "))
            .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_owned());
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|v| v.trim().to_owned())
}

/// `<dataset>/<file>=<sha256>` of every file of these datasets' folders under `root`, sorted,
/// `;`-separated (a folder-of-images dataset is named with its file count, not hashed).
pub fn data_checksums(root: &Path, datasets: &[String]) -> String {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for name in datasets {
        let Ok(info) = lth_data::info(name) else {
            continue;
        };
        if !seen.insert(info.dir) {
            continue;
        }
        if let lth_data::Format::Generated(g) = info.format {
            out.push(format!(
                "{} (drawn by lth: {g:?}, fixed seed; no files)",
                info.name
            ));
            continue;
        }
        let dir = root.join(info.dir);
        let mut files = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.is_file() {
                    files.push(p);
                }
            }
        }
        files.sort();
        if info.format == lth_data::Format::Folder {
            out.push(format!("{}/ ({} files, not hashed)", info.dir, files.len()));
            continue;
        }
        for f in files {
            let rel = f.strip_prefix(root).unwrap_or(&f).display().to_string();
            let digest =
                lth_store::verify::sha256_file(&f).unwrap_or_else(|e| format!("unreadable: {e}"));
            out.push(format!("{rel}={digest}"));
        }
    }
    out.join(";")
}

impl Provenance {
    /// The provenance of a run ending now on this machine.
    pub fn of_run(
        scale: &str,
        device: &str,
        replicates: u64,
        samples: u64,
        command: &str,
        data: String,
    ) -> Provenance {
        let (cpu, simd) = cpu_description();
        let build = Build::current();
        Provenance {
            scale: scale.into(),
            device: device.into(),
            replicates,
            samples,
            command: command.into(),
            cpu,
            simd,
            threads: tch::get_num_threads(),
            commit: build.commit,
            dirty: build.dirty,
            date: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            rustc: build.rustc,
            tch: build.tch,
            libtorch: build.libtorch,
            data,
        }
    }

    /// Reads the file (none yet: no lines).
    pub fn load(path: &Path) -> Result<Vec<Provenance>> {
        Ok(CsvLog::new(path).load()?)
    }

    /// Replaces the line of `self.scale` and `self.device` in the file at `path`.
    pub fn record(&self, path: &Path) -> Result<()> {
        let mut all = Provenance::load(path)?;
        all.retain(|p| (&p.scale, &p.device) != (&self.scale, &self.device));
        all.push(self.clone());
        all.sort_by(|a, b| (&a.scale, &a.device).cmp(&(&b.scale, &b.device)));
        Ok(CsvLog::new(path).save(&all)?)
    }
}

/// This machine's CPU model and the vector extensions that matter to libtorch's kernels.
pub fn cpu_description() -> (String, String) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let mut simd: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, on) in [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            (
                "avx512vnni",
                std::arch::is_x86_feature_detected!("avx512vnni"),
            ),
            (
                "avx512bf16",
                std::arch::is_x86_feature_detected!("avx512bf16"),
            ),
        ] {
            if on {
                simd.push(name);
            }
        }
    }
    (model, simd.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_a_scale_replaces_its_line_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("provenance.csv");
        let (cpu, simd) = cpu_description();
        assert!(!cpu.is_empty());
        let p = |scale: &str, replicates| Provenance {
            scale: scale.into(),
            device: "cpu".into(),
            replicates,
            samples: 2,
            command: "cargo xtask repro fig3, with a comma".into(),
            cpu: cpu.clone(),
            simd: simd.clone(),
            threads: 2,
            commit: "abc".into(),
            dirty: false,
            date: String::new(),
            rustc: String::new(),
            tch: String::new(),
            libtorch: String::new(),
            data: String::new(),
        };
        p("quick", 6)
            .record(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        p("smoke", 3)
            .record(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        p("quick", 8)
            .record(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        let all = Provenance::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all, vec![p("quick", 8), p("smoke", 3)]);
    }
}
