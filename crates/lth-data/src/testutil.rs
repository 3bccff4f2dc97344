//! Writers of tiny dataset files for tests, in every crate (feature `test-util`).
#![allow(clippy::expect_used, reason = "test helpers, never on a user's path")]

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

/// Writes a CIFAR-format dataset (`variant`) of `n_train` and `n_test` learnable 32×32 images to
/// `dir`: the class is the colour channel and quadrant of a bright square on a noisy background.
pub fn write_cifar_like(
    dir: &Path,
    variant: crate::cifar::Variant,
    n_train: u32,
    n_test: u32,
) -> std::io::Result<()> {
    use crate::cifar::Variant;
    std::fs::create_dir_all(dir)?;
    let record = |i: u32| -> Vec<u8> {
        let (image, label) = cifar_example(i);
        let mut r = match variant {
            Variant::Cifar10 => vec![label],
            Variant::Cifar100 => vec![label / 2, label * 7 % 100],
        };
        r.extend_from_slice(&image);
        r
    };
    let write = |name: &str, from: u32, n: u32| {
        let bytes: Vec<u8> = (from..from + n).flat_map(record).collect();
        std::fs::write(dir.join(name), bytes)
    };
    match variant {
        Variant::Cifar10 => {
            let per = n_train.div_ceil(5);
            for b in 0..5 {
                let from = b * per;
                write(
                    &format!("data_batch_{}.bin", b + 1),
                    from,
                    per.min(n_train.saturating_sub(from)),
                )?;
            }
            write("test_batch.bin", 1_000_000, n_test)
        }
        Variant::Cifar100 => {
            write("train.bin", 0, n_train)?;
            write("test.bin", 1_000_000, n_test)
        }
    }
}

fn cifar_example(i: u32) -> ([u8; 3072], u8) {
    let (mnist, label) = example(i);
    let mut image = [0u8; 3072];
    // Channel = label % 3 carries the square of the MNIST-like example; the others are its noise.
    for (p, &v) in mnist.iter().enumerate().take(784) {
        let (r, c) = (p / 28 + 2, p % 28 + 2);
        for ch in 0..3 {
            let bright = ch == usize::from(label % 3) || v < 100;
            image[ch * 1024 + r * 32 + c] = if bright { v } else { v / 4 };
        }
    }
    (image, label)
}

/// Writes `classes` class folders of `per_class` JPEG images of `size` (width, height) into
/// `dir`: `class_<c>/image_<i>.JPEG`, each a gradient tinted by its class.
pub fn write_image_folder(
    dir: &Path,
    classes: u32,
    per_class: u32,
    size: (u16, u16),
) -> std::io::Result<()> {
    for c in 0..classes {
        let folder = dir.join(format!("class_{c:03}"));
        std::fs::create_dir_all(&folder)?;
        for i in 0..per_class {
            let (w, h) = (usize::from(size.0), usize::from(size.1));
            let mut rgb = vec![0u8; w * h * 3];
            for y in 0..h {
                for x in 0..w {
                    let p = (y * w + x) * 3;
                    rgb[p] = (x * 255 / w) as u8;
                    rgb[p + 1] = (y * 255 / h) as u8;
                    rgb[p + 2] = ((c * 80 + i * 7) % 256) as u8;
                }
            }
            let path = folder.join(format!("image_{i:03}.JPEG"));
            jpeg_encoder::Encoder::new_file(&path, 90)
                .and_then(|e| e.encode(&rgb, size.0, size.1, jpeg_encoder::ColorType::Rgb))
                .map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}
