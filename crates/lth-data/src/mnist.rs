//! MNIST and Fashion-MNIST: four IDX files per dataset folder, each raw or gzip.

use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::{DataError, Result, Split, idx};

/// The four files of an MNIST-format dataset, by their standard names (without `.gz`).
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds `name` or `name.gz` in `dir`.
pub fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// The files of `dir` that are missing, by their standard names.
pub fn missing(dir: &Path) -> Vec<&'static str> {
    FILES
        .iter()
        .copied()
        .filter(|f| find(dir, f).is_none())
        .collect()
}

/// Loads the training and test splits from `dir` (the caller has checked that the files exist),
/// checking that every split's images have the `side` (height, width) the dataset declares.
pub fn load(dir: &Path, num_classes: u8, side: [i64; 2]) -> Result<(Split, Split)> {
    let split = |images: &str, labels: &str| -> Result<Split> {
        let path_of = |name: &str| {
            find(dir, name).ok_or_else(|| DataError::Io {
                path: dir.join(name),
                source: std::io::ErrorKind::NotFound.into(),
            })
        };
        let (ipath, lpath) = (path_of(images)?, path_of(labels)?);
        let imgs = idx::read(&ipath, 3)?;
        let labs = idx::read(&lpath, 1)?;
        let n = imgs.dims[0];
        if labs.dims[0] != n {
            return Err(DataError::malformed(
                &lpath,
                format!(
                    "{} labels, but {} holds {n} images",
                    labs.dims[0],
                    ipath.display()
                ),
            ));
        }
        if let Some((i, &l)) = labs
            .data
            .iter()
            .enumerate()
            .find(|(_, l)| **l >= num_classes)
        {
            return Err(DataError::malformed(
                &lpath,
                format!("label {l} at index {i} is outside 0..{num_classes}"),
            ));
        }
        let (h, w) = (imgs.dims[1] as i64, imgs.dims[2] as i64);
        if [h, w] != side {
            return Err(DataError::malformed(
                &ipath,
                format!(
                    "images of {h}×{w} pixels, but this dataset's are {}×{}",
                    side[0], side[1]
                ),
            ));
        }
        Ok(Split {
            images: Tensor::from_slice(&imgs.data).view([n as i64, 1, h, w]),
            labels: Tensor::from_slice(&labs.data).to_kind(tch::Kind::Int64),
        })
    };
    Ok((split(FILES[0], FILES[1])?, split(FILES[2], FILES[3])?))
}
