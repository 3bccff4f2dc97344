//! The bundle's launcher runs the binary against the libtorch of the machine's PyTorch.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// Lays the binary and the launcher out as the bundle does, makes a PyTorch importable from a
/// path other than the one the binary was built against, and checks with the loader's trace
/// that libtorch is loaded from there.
#[test]
fn the_launcher_loads_libtorch_from_the_machines_pytorch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = root.join(".libtorch");
    assert!(
        site.join("torch/lib/libtorch_cpu.so").is_file(),
        "no torch installation at {}: run `cargo xtask setup`",
        site.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_lth"), bundle.join("lth")).unwrap();
    std::fs::copy(root.join("bundle/lth.sh"), bundle.join("lth.sh")).unwrap();
    // "The machine's PyTorch": torch reached through another folder, its dependencies beside.
    let machine = tmp.path().join("machine-site");
    std::fs::create_dir_all(&machine).unwrap();
    std::os::unix::fs::symlink(site.join("torch"), machine.join("torch")).unwrap();
    let pythonpath = format!("{}:{}", machine.display(), site.display());
    let out = Command::new("sh")
        .arg(bundle.join("lth.sh"))
        .arg("info")
        .env("PYTHONPATH", &pythonpath)
        .env("LD_DEBUG", "libs")
        .env_remove("LIBTORCH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert!(stdout.contains("CUDA available:"), "{stdout}");
    let wanted = format!("{}/torch/lib/libtorch_cpu.so", machine.display());
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("calling init") && l.contains(&wanted)),
        "libtorch_cpu.so was not loaded from {wanted}"
    );
    // A PyTorch of another version is refused with a clear message.
    let fake = tmp.path().join("old-site/torch");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("__init__.py"), "__version__ = '2.3.1'\n").unwrap();
    let out = Command::new("sh")
        .arg(bundle.join("lth.sh"))
        .arg("info")
        .env("PYTHONPATH", tmp.path().join("old-site"))
        .env_remove("LIBTORCH")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has torch 2.3.1, but this lth was built for 2.11"),
        "{err}"
    );
}
