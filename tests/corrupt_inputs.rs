//! No input file makes lth panic or pass damage off as data: the readers of IDX, CIFAR,
//! safetensors, `spec.toml` and `expected.csv` files are fed random truncations, bit flips and
//! garbage derived from valid files, and must return an error that names the file, or a value.
//! A value must be what the undamaged file holds wherever the format can tell (a gzip stream's
//! checksum; a truncated IDX or safetensors file, whose header declares more bytes than are
//! left), and consistent with its own header elsewhere (a flipped pixel or weight is data to a
//! format without a checksum; the run store's digests catch those in its own files).
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
fn feed<T>(dir: &Path, name: &str, bytes: &[u8], read: impl FnOnce(&Path) -> T) -> T {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    read(&path)
}

/// An error must name the file `name`; a value must pass `ok`.
fn judged<T, E: std::fmt::Display>(
    name: &str,
    read: Result<T, E>,
    ok: impl FnOnce(&T) -> bool,
) -> Result<(), TestCaseError> {
    match read {
        Err(e) => {
            let e = e.to_string();
            prop_assert!(e.contains(name), "the error does not name {name}: {e}");
        }
        Ok(v) => prop_assert!(
            ok(&v),
            "{name}: a damaged file read as an inconsistent value"
        ),
    }
    Ok(())
}

fn truncated(d: &Damage) -> bool {
    matches!(d, Damage::Truncate(_))
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
        let read = feed(dir.path(), name, &apply(&valid, &d), |p| lth_data::idx::read(p, 3));
        // gzip's checksum tells any damage to the stream; a truncated raw file lacks the bytes
        // its header declares. Elsewhere a value holds what its header says.
        let detectable = gz || truncated(&d);
        judged(name, read, |a| {
            if detectable {
                a.dims == [3, 28, 28] && a.data == images
            } else {
                a.dims.len() == 3 && a.dims.iter().product::<usize>() == a.data.len()
            }
        })?;
    }

    #[test]
    fn cifar_batches_never_panic(d in damage()) {
        let valid: Vec<u8> = (0..4 * 3073).map(|i| (i % 10) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let read = feed(dir.path(), "data_batch_1.bin", &apply(&valid, &d), |p| {
            lth_data::cifar::read(p, lth_data::cifar::Variant::Cifar10)
        });
        // The format has no header: whole records with labels in 0..10 are all it can check.
        judged("data_batch_1.bin", read, |(images, labels)| {
            images.len() == labels.len() * 3072 && labels.iter().all(|&l| l < 10)
        })?;
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
        let damaged = apply(&valid, &d);
        let read = feed(dir.path(), "final.safetensors", &damaged, lth_models::load_tensors);
        // A truncated file lacks bytes its header declares; any value holds tensors whose sizes
        // fit the file.
        let cut = truncated(&d);
        judged("final.safetensors", read, |tensors| {
            !cut && tensors.iter().map(|(_, t)| t.numel() * t.kind().elt_size_in_bytes()).sum::<usize>()
                <= damaged.len()
        })?;
        // Not a mask (its values are 1–4), damaged or not: refused, naming the file.
        let mask = feed(dir.path(), "mask.safetensors", &damaged, lth_prune::Mask::load);
        judged("mask.safetensors", mask, |_| false)?;
    }

    #[test]
    fn spec_files_never_panic(d in damage()) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let valid = std::fs::read(root.join("repro/fig3/spec.toml")).unwrap();
        let text = String::from_utf8_lossy(&apply(&valid, &d)).into_owned();
        // A damaged spec may still be a valid one (a flip inside a comment or a number); a value
        // must then have the rows a spec needs.
        judged("spec.toml", lth_report::Spec::parse(&text, Path::new("spec.toml")), |s| {
            !s.rows.is_empty()
        })?;
    }

    #[test]
    fn expected_tables_never_panic(d in damage()) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let valid = std::fs::read(root.join("repro/fig3/expected.csv")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let read = feed(dir.path(), "expected.csv", &apply(&valid, &d), lth_report::load_cells);
        // Damage may leave valid cells (a flip in a rationale, a truncation at a line's end);
        // every cell read must then come from a line of the file.
        judged("expected.csv", read, |cells| cells.len() <= valid.iter().filter(|&&b| b == b'\n').count())?;
    }
}
