//! Build-script helpers shared by every lth crate that links libtorch.
//!
//! tch's build script (`torch-sys`, `links = "tch"`) publishes the libtorch library folder it linked
//! against as `DEP_TCH_LIBTORCH_LIB`, but only to build scripts of crates that depend on `torch-sys`
//! directly. A crate that wants its binaries and tests to find libtorch at run time, without anyone
//! exporting `LD_LIBRARY_PATH`, depends on `torch-sys` and calls [`rpath_libtorch`] from its
//! `build.rs`. The search path becomes a `RUNPATH`, which `LD_LIBRARY_PATH` still overrides: that is
//! how one binary finds another machine's libtorch.
//!
//! In the `build.rs` of a crate whose tests or binary link libtorch through tch:
//!
//! ```no_run
//! lth_build::rpath_libtorch();
//! ```

use std::env;
use std::path::{Path, PathBuf};

/// The libtorch library folder tch linked against, canonicalised so that a binary keeps working
/// when the checkout that built it (and its `.libtorch` link) is gone.
pub fn libtorch_lib_dir() -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let dir = env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(PathBuf::from)
        .or_else(|| env::var_os("LIBTORCH").map(|l| Path::new(&l).join("lib")))?;
    Some(dir.canonicalize().unwrap_or(dir))
}

/// Compiles `source` (a C++ file of the calling crate, against libtorch's headers) into the static
/// library `name`, linked into everything that depends on the crate.
///
/// With `openmp`, the file is compiled with `-fopenmp` (so `at::parallel_for` runs on libtorch's
/// intra-op threads) and linked against the OpenMP runtime in libtorch's own folder: the process then
/// has one OpenMP runtime, libtorch's, and one thread count, the one `tch::set_num_threads` sets. When
/// that folder has no OpenMP runtime (a libtorch built without it), the file is compiled without
/// `-fopenmp` and its parallel loops run on the calling thread.
///
/// # Panics
/// When torch-sys did not publish libtorch's folder, or the compiler fails: a build script reports
/// that way.
#[allow(
    clippy::expect_used,
    reason = "a build-script helper: a panic is how a build script reports"
)]
pub fn compile_shim(source: &str, name: &str, openmp: bool) {
    let lib =
        libtorch_lib_dir().expect("torch-sys publishes the libtorch folder (DEP_TCH_LIBTORCH_LIB)");
    let root: PathBuf = lib.parent().expect("libtorch/lib has a parent").to_owned();
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let abi = env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    // libtorch's OpenMP runtime: `libgomp.so.1` in a wheel, `libgomp-<hash>.so.1` in the zip.
    let gomp = if openmp && cfg!(target_os = "linux") {
        std::fs::read_dir(&lib).ok().and_then(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("libgomp") && n.ends_with(".so.1"))
                .min()
        })
    } else {
        None
    };
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file(source)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        // Every product and sum rounded on its own, as ATen's kernels round them (the fused
        // kernels' results must be those of the operations they replace, bit for bit), even where
        // CXXFLAGS enable FMA instructions.
        .flag("-ffp-contract=off")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .opt_level(3)
        .warnings(false);
    if gomp.is_some() {
        build.flag("-fopenmp");
    }
    build.compile(name);
    if let Some(gomp) = &gomp {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=dylib:+verbatim={gomp}");
    }
}

/// Adds libtorch's library folder to the run-time search path of this package's binaries, tests,
/// examples and benchmarks.
pub fn rpath_libtorch() {
    if cfg!(target_os = "windows") {
        return;
    }
    if let Some(dir) = libtorch_lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}

/// Keeps `libtorch_cuda.so` as a needed library of this package's binaries when libtorch has it.
///
/// Nothing in the Rust code refers to a symbol of `libtorch_cuda`, so the linker's default
/// `--as-needed` drops it, and then `tch::Cuda::is_available()` is false even on a GPU machine. The
/// binary still runs on a CPU machine: the library loads, finds no device, and says so.
pub fn link_cuda() {
    if !cfg!(target_os = "linux") {
        return;
    }
    if let Some(dir) = libtorch_lib_dir()
        && dir.join("libtorch_cuda.so").exists()
    {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// Makes what built this crate known to it at compile time, for the provenance of its results:
/// `LTH_RUSTC` (`rustc --version`), `LTH_TCH` (the tch version in the workspace's `Cargo.lock`)
/// and `LTH_BUILD_COMMIT` (the checkout's commit at build time, empty outside a git checkout; the
/// build script reruns when HEAD moves, so it is the commit the binary was built from).
pub fn embed_build_info() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LTH_RUSTC={version}");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let lock = manifest
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file());
    let tch = lock
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| {
            let mut lines = text.lines();
            while let Some(l) = lines.next() {
                if l.trim() == "name = \"tch\"" {
                    return lines.next().and_then(|v| {
                        v.trim()
                            .strip_prefix("version = \"")
                            .and_then(|v| v.strip_suffix('"'))
                            .map(str::to_owned)
                    });
                }
            }
            None
        })
        .unwrap_or_else(|| "unknown".into());
    if let Some(lock) = &lock {
        println!("cargo:rerun-if-changed={}", lock.display());
    }
    println!("cargo:rustc-env=LTH_TCH={tch}");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(&manifest)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = PathBuf::from(dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", dir.join(reference).display());
        }
    }
    println!("cargo:rustc-env=LTH_BUILD_COMMIT={commit}");
}
