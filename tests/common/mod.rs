//! Helpers shared by the end-to-end tests: running the `lth` binary, and finding Fashion-MNIST.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `lth` binary with `args` in `cwd`.
pub fn lth(args: &[&str], cwd: &Path) -> Output {
    lth_env(args, cwd, &[])
}

/// The `lth` binary as the end-to-end tests run it: without the user's LTH_DATA, and at one
/// libtorch thread unless a test's `--threads` says otherwise (`OMP_NUM_THREADS=1` makes
/// libtorch's own count 1). These tests demand bit-identical reruns, resumes and repairs, and at
/// two threads on an AVX-512 Xeon a few processes in 100 compute a weight gradient (in MKL's
/// AVX-512 GEMM) with other last bits; ARCHITECTURE.md has the counts.
pub fn lth_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lth"));
    c.env_remove("LTH_DATA").env("OMP_NUM_THREADS", "1");
    c
}

/// Runs the `lth` binary with `args` in `cwd` and extra environment variables.
pub fn lth_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    lth_command()
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .output()
        .expect("the lth binary runs")
}

/// Standard output of a run that must succeed.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "lth failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error of a run that must fail.
pub fn err(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "lth should have failed:\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Real Fashion-MNIST, which `cargo xtask setup` fetches; fails (rather than passing quietly) when
/// it is absent, unless LTH_ALLOW_MISSING_DATA says a missing dataset may skip.
pub fn fashion_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = std::env::var_os("LTH_DATA").map_or_else(|| root.join("data"), PathBuf::from);
    if !data.join("fashion-mnist").is_dir() && std::env::var_os("LTH_ALLOW_MISSING_DATA").is_some()
    {
        eprintln!("SKIPPED: Fashion-MNIST absent and LTH_ALLOW_MISSING_DATA set");
        return None;
    }
    assert!(
        data.join("fashion-mnist").is_dir(),
        "Fashion-MNIST is not in {}: run `cargo xtask setup` (or set LTH_ALLOW_MISSING_DATA=1 to skip this test)",
        data.display()
    );
    Some(data)
}

/// A small LeNet-300-100 training on generated MNIST-format data (`train` and its flags).
pub const SMALL: &[&str] = &[
    "train",
    "--model",
    "lenet_300_100",
    "--dataset",
    "mnist",
    "--steps",
    "2ep",
    "--validation",
    "50",
    "--batch-size",
    "25",
    "--eval-every",
    "4it",
    "--device",
    "cpu",
];

/// A small Early-Bird search on generated MNIST (a VGG-11 of 4-8 channels, 3 epochs, one ratio,
/// ε = 1 so its ticket emerges as soon as the FIFO fills), without `--eb-window`: the flags that
/// `lth early-bird` and `lth train --early-bird` share in the tests.
#[allow(dead_code, reason = "not every test binary runs an Early-Bird search")]
pub const SMALL_SEARCH: &[&str] = &[
    "--model",
    "cifar_vgg_11:channels=4,4,8,8,8,8,8,8",
    "--dataset",
    "mnist",
    "--augment",
    "false",
    "--steps",
    "3ep",
    "--eb-epsilon",
    "1",
    "--eb-ratios",
    "0.5",
    "--validation",
    "50",
    "--batch-size",
    "50",
];
