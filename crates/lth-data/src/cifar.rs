//! CIFAR-10 and CIFAR-100 in their binary format.
//!
//! CIFAR-10 (`cifar-10-batches-bin`): `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`,
//! 10,000 records each of one label byte and 3,072 pixel bytes (the red, green and blue 32×32
//! planes, row-major). CIFAR-100 (`cifar-100-binary`): `train.bin` (50,000) and `test.bin`
//! (10,000), records of a coarse label byte, a fine label byte and 3,072 pixel bytes; the fine label
//! (100 classes) is used. The files may sit directly in the dataset folder or in the folder the
//! official archive unpacks to.

use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::{DataError, Result, Split};

const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

impl Variant {
    fn files(
        self,
    ) -> (
        &'static [&'static str],
        &'static [&'static str],
        &'static str,
    ) {
        match self {
            Variant::Cifar10 => (
                &[
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                &["test_batch.bin"],
                "cifar-10-batches-bin",
            ),
            Variant::Cifar100 => (&["train.bin"], &["test.bin"], "cifar-100-binary"),
        }
    }

    /// Bytes before the pixels of a record, and which of them is the label.
    fn header(self) -> (usize, usize) {
        match self {
            Variant::Cifar10 => (1, 0),
            Variant::Cifar100 => (2, 1),
        }
    }

    fn classes(self) -> u8 {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }
}

/// The folder holding the files: `dir` itself, or the archive's folder inside it.
fn folder(dir: &Path, v: Variant) -> PathBuf {
    let (train, _, inner) = v.files();
    if dir.join(train[0]).is_file() {
        dir.to_owned()
    } else {
        dir.join(inner)
    }
}

/// The files of `dir` that are missing.
pub fn missing(dir: &Path, v: Variant) -> Vec<&'static str> {
    let (train, test, _) = v.files();
    let f = folder(dir, v);
    train
        .iter()
        .chain(test)
        .copied()
        .filter(|n| !f.join(n).is_file())
        .collect()
}

/// Reads one binary batch file into images (N×3×32×32 `u8`) and labels.
pub fn read(path: &Path, v: Variant) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let (header, label_at) = v.header();
    let record = header + PIXELS;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(DataError::malformed(
            path,
            format!(
                "truncated or not a CIFAR binary batch: {} bytes is not a whole number of {record}-byte records",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / record;
    let mut images = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let label = r[label_at];
        if label >= v.classes() {
            return Err(DataError::malformed(
                path,
                format!("label {label} of record {i} is outside 0..{}", v.classes()),
            ));
        }
        labels.push(label);
        images.extend_from_slice(&r[header..]);
    }
    Ok((images, labels))
}

/// Loads the training and test splits from `dir`.
pub fn load(dir: &Path, v: Variant) -> Result<(Split, Split)> {
    let (train, test, _) = v.files();
    let f = folder(dir, v);
    let split = |names: &[&str]| -> Result<Split> {
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for name in names {
            let (i, l) = read(&f.join(name), v)?;
            images.extend(i);
            labels.extend(l);
        }
        let n = labels.len() as i64;
        Ok(Split {
            images: Tensor::from_slice(&images).view([n, 3, 32, 32]),
            labels: Tensor::from_slice(&labels).to_kind(Kind::Int64),
        })
    };
    Ok((split(train)?, split(test)?))
}
