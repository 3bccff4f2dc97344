//! Build script: compile the autocast shim against the headers of the libtorch tch linked, and let
//! this crate's tests find libtorch at run time.
use std::path::PathBuf;

#[allow(
    clippy::expect_used,
    reason = "a build script: a panic is how it reports"
)]
fn main() {
    let lib = lth_build::libtorch_lib_dir()
        .expect("torch-sys publishes the libtorch folder (DEP_TCH_LIBTORCH_LIB)");
    let root: PathBuf = lib.parent().expect("libtorch/lib has a parent").to_owned();
    println!("cargo:rerun-if-changed=src/amp.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("src/amp.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .warnings(false)
        .compile("lth_amp");
    lth_build::rpath_libtorch();
}
