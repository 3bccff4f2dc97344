//! No input file makes lth panic: the readers of IDX, CIFAR, safetensors, `spec.toml` and
//! `expected.csv` files are fed random truncations, bit flips and garbage derived from valid
//! files, and must return (an error, or a value) rather than panic.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;

/// A way to damage a valid file.
#[derive(Debug, Clone)]
enum Damage {
    /// Keep this fraction of the bytes.
    Truncate(f64),
    /// Flip these bits (positions taken modulo the file's length).
    Flip(Vec<(usize, u8)>),
    /// Replace everything with these bytes.
    Garbage(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0.0..1.0f64).prop_map(Damage::Truncate),
        proptest::collection::vec((any::<usize>(), 0u8..8), 1..8).prop_map(Damage::Flip),
        proptest::collection::vec(any::<u8>(), 0..256).prop_map(Damage::Garbage),
    ]
}

fn apply(valid: &[u8], d: &Damage) -> Vec<u8> {
    match d {
        Damage::Truncate(f) => valid[..(valid.len() as f64 * f) as usize].to_vec(),
        Damage::Flip(bits) => {
            let mut v = valid.to_vec();
            for &(i, b) in bits {
                let n = v.len();
                v[i % n] ^= 1 << b;
            }
            v
        }
        Damage::Garbage(g) => g.clone(),
    }
}

/// Writes the damaged bytes at `dir/name` and hands the path to `read`.
fn feed(dir: &Path, name: &str, bytes: &[u8], read: impl FnOnce(&Path)) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    read(&path);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_files_never_panic(d in damage(), gz in any::<bool>()) {
        let images: Vec<u8> = (0..3 * 28 * 28).map(|i| (i % 251) as u8).collect();
        let mut valid = lth_data::testutil::idx_bytes(&[3, 28, 28], &images);
        if gz {
            valid = lth_data::testutil::gzip(&valid);
        }
        let dir = tempfile::tempdir().unwrap();
        let name = if gz { "x-images-idx3-ubyte.gz" } else { "x-images-idx3-ubyte" };
        feed(dir.path(), name, &apply(&valid, &d), |p| {
            let _ = lth_data::idx::read(p, 3);
        });
    }

    #[test]
    fn cifar_batches_never_panic(d in damage()) {
        let valid: Vec<u8> = (0..4 * 3073).map(|i| (i % 10) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        feed(dir.path(), "data_batch_1.bin", &apply(&valid, &d), |p| {
            let _ = lth_data::cifar::read(p, lth_data::cifar::Variant::Cifar10);
        });
    }

    #[test]
    fn safetensors_files_never_panic(d in damage()) {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.safetensors");
        let t = vec![
            ("fc.weight".to_owned(), tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2])),
            ("fc.bias".to_owned(), tch::Tensor::from_slice(&[0.5f32, -0.5])),
        ];
        lth_models::save_tensors(&good, &t).unwrap();
        let valid = std::fs::read(&good).unwrap();
        feed(dir.path(), "final.safetensors", &apply(&valid, &d), |p| {
            let _ = lth_models::load_tensors(p);
            let _ = lth_prune::Mask::load(p);
        });
    }

    #[test]
    fn spec_files_never_panic(d in damage()) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let valid = std::fs::read(root.join("repro/fig3/spec.toml")).unwrap();
        let text = String::from_utf8_lossy(&apply(&valid, &d)).into_owned();
        let _ = lth_report::Spec::parse(&text, Path::new("spec.toml"));
    }

    #[test]
    fn expected_tables_never_panic(d in damage()) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let valid = std::fs::read(root.join("repro/fig3/expected.csv")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        feed(dir.path(), "expected.csv", &apply(&valid, &d), |p| {
            let _ = lth_report::load_cells(p);
        });
    }
}
