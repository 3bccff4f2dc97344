//! Writers of tiny dataset files for tests, in every crate (feature `test-util`).

use std::io::Write;
use std::path::Path;

/// The bytes of an IDX file of unsigned bytes with dimensions `dims`.
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Gzip-compresses `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// Writes an MNIST-format dataset of `n_train` and `n_test` 28×28 images to `dir`.
///
/// The task is learnable: the label is the quadrant-and-brightness class of a bright square drawn
/// into a noisy image, so a small network gets well above chance in a few hundred steps. Pixels and
/// labels are fixed functions of the example index, so the files are the same on every run.
pub fn write_mnist_like(dir: &Path, n_train: u32, n_test: u32, gz: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, bytes: Vec<u8>| {
        let (name, bytes) = if gz {
            (format!("{name}.gz"), gzip(&bytes))
        } else {
            (name.to_owned(), bytes)
        };
        std::fs::write(dir.join(name), bytes)
    };
    for (prefix, n, offset) in [("train", n_train, 0u32), ("t10k", n_test, 1_000_000)] {
        let mut images = Vec::with_capacity(n as usize * 784);
        let mut labels = Vec::with_capacity(n as usize);
        for i in 0..n {
            let (image, label) = example(i + offset);
            images.extend_from_slice(&image);
            labels.push(label);
        }
        write(
            &format!("{prefix}-images-idx3-ubyte"),
            idx_bytes(&[n, 28, 28], &images),
        )?;
        write(
            &format!("{prefix}-labels-idx1-ubyte"),
            idx_bytes(&[n], &labels),
        )?;
    }
    Ok(())
}

/// Example `i` of the generated task: 10 classes = 5 square positions × 2 brightness levels.
fn example(i: u32) -> ([u8; 784], u8) {
    let mut h = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    let mut next = move || {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
        h
    };
    let label = (next() % 10) as u8;
    let mut image = [0u8; 784];
    for px in image.iter_mut() {
        *px = (next() % 64) as u8;
    }
    let (pos, bright) = (u32::from(label) % 5, label / 5);
    let (r0, c0) = [(2, 2), (2, 16), (16, 2), (16, 16), (9, 9)][pos as usize];
    let value = if bright == 1 { 255 } else { 150 };
    for r in r0..r0 + 10 {
        for c in c0..c0 + 10 {
            image[r * 28 + c] = value;
        }
    }
    (image, label)
}
