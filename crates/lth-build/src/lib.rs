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
