//! The dataset registry: what each dataset is, where its files live, and loading it into memory.

use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::{DataError, Result, mnist};

/// How a dataset is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Four MNIST-format IDX files (raw or gzip).
    Idx,
}

/// A dataset the registry knows.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// The name used on the command line and in hyperparameters (`fashion-mnist`).
    pub name: &'static str,
    /// Its folder under the data root.
    pub dir: &'static str,
    pub format: Format,
    /// Image shape as channels, height, width.
    pub shape: [i64; 3],
    pub num_classes: i64,
    /// Per-channel mean and standard deviation of pixel values scaled to [0, 1], as the reference
    /// implementations normalise them.
    pub mean: &'static [f64],
    pub std: &'static [f64],
    /// Where the data comes from and how to put it in place.
    pub how_to_get: &'static str,
}

const MNIST_LIKE_HELP: &str = "Put the four files train-images-idx3-ubyte, train-labels-idx1-ubyte, \
t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may end in .gz) in that folder.";

static REGISTRY: [DatasetInfo; 2] = [
    DatasetInfo {
        name: "mnist",
        dir: "mnist",
        format: Format::Idx,
        shape: [1, 28, 28],
        num_classes: 10,
        mean: &[0.1307],
        std: &[0.3081],
        how_to_get: "MNIST (LeCun, Cortes, Burges) is not fetched by lth; download it from a mirror \
you trust into <data root>/mnist/. See data/README.md.",
    },
    DatasetInfo {
        name: "fashion-mnist",
        dir: "fashion-mnist",
        format: Format::Idx,
        shape: [1, 28, 28],
        num_classes: 10,
        mean: &[0.2860],
        std: &[0.3530],
        how_to_get: "`cargo xtask setup` fetches Fashion-MNIST from Debian's dataset-fashion-mnist \
package where apt is available; otherwise download the files of the Fashion-MNIST project \
(zalandoresearch/fashion-mnist, folder data/fashion) into <data root>/fashion-mnist/. See data/README.md.",
    },
];

impl DatasetInfo {
    /// Why the dataset cannot be loaded from `root` (which files are missing, and how to get
    /// them), or `None` when its files are there. Cheap: nothing is read.
    pub fn absent(&self, root: &Path) -> Option<String> {
        let dir = root.join(self.dir);
        match self.format {
            Format::Idx => {
                let absent = mnist::missing(&dir);
                (!absent.is_empty()).then(|| {
                    format!(
                        "{} lacks {} (each may end in .gz). {MNIST_LIKE_HELP}",
                        dir.display(),
                        absent.join(", ")
                    )
                })
            }
        }
    }
}

/// Every dataset the registry knows.
pub fn registry() -> &'static [DatasetInfo] {
    &REGISTRY
}

/// The registry entry of `name`.
pub fn info(name: &str) -> Result<&'static DatasetInfo> {
    REGISTRY
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| DataError::Unknown {
            name: name.to_owned(),
            known: REGISTRY
                .iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The data root: the explicit folder if given, else `$LTH_DATA`, else `data/`.
pub fn data_root(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_owned)
        .or_else(|| std::env::var_os("LTH_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Images (`u8`, N×C×H×W) and labels (`i64`, N) of one split, in host or device memory.
#[derive(Debug)]
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples at `indices` (a list of positions), in that order.
    pub fn select(&self, indices: &[i64]) -> Split {
        let idx = Tensor::from_slice(indices).to_device(self.labels.device());
        Split {
            images: self.images.index_select(0, &idx),
            labels: self.labels.index_select(0, &idx),
        }
    }
}

/// A dataset loaded into host memory.
#[derive(Debug)]
pub struct Dataset {
    pub info: &'static DatasetInfo,
    pub train: Split,
    pub test: Split,
    /// Examples held out of `train` for validation (empty unless asked for).
    pub validation: Split,
}

/// Seed of the fixed permutation that picks the validation examples; never changes.
const VALIDATION_SEED: u64 = 0x5eed_0001;
/// Seed of the fixed permutation that picks a training subset; never changes.
const SUBSET_SEED: u64 = 0x5eed_0002;

impl Dataset {
    /// Loads `info` from its folder under `root`.
    pub fn load(info: &'static DatasetInfo, root: &Path) -> Result<Dataset> {
        let dir = root.join(info.dir);
        if let Some(problem) = info.absent(root) {
            return Err(DataError::Missing {
                name: info.name.to_owned(),
                root: root.to_owned(),
                problem,
                how_to_get: info.how_to_get.to_owned(),
            });
        }
        match info.format {
            Format::Idx => {
                let (train, test) = mnist::load(&dir, info.num_classes as u8)?;
                let shape = train.images.size();
                if shape[1..] != info.shape {
                    return Err(DataError::malformed(
                        &dir,
                        format!(
                            "images of shape {:?} expected for {}, found {:?}",
                            info.shape,
                            info.name,
                            &shape[1..]
                        ),
                    ));
                }
                Ok(Dataset {
                    info,
                    train,
                    test,
                    validation: empty_like(&shape),
                })
            }
        }
    }

    /// Moves `n` examples, chosen by a fixed seeded permutation, from `train` to `validation`.
    pub fn hold_out(self, n: i64) -> Result<Dataset> {
        if n == 0 {
            return Ok(self);
        }
        let total = self.train.len();
        if n >= total {
            return Err(DataError::Invalid(format!(
                "a validation split of {n} examples leaves none of the {total} training examples of {}",
                self.info.name
            )));
        }
        let p = lth_rng::permutation(total as usize, VALIDATION_SEED, "validation", 0);
        let (val, train) = p.split_at(n as usize);
        Ok(Dataset {
            validation: self.train.select(val),
            train: self.train.select(train),
            ..self
        })
    }

    /// Keeps `n` training examples, chosen by a fixed seeded permutation (for fast smoke runs).
    pub fn subset(self, n: i64) -> Result<Dataset> {
        let total = self.train.len();
        if n == 0 || n == total {
            return Ok(self);
        }
        if n > total {
            return Err(DataError::Invalid(format!(
                "a training subset of {n} examples asked for, but {} has {total}",
                self.info.name
            )));
        }
        let mut p = lth_rng::permutation(total as usize, SUBSET_SEED, "subset", 0);
        p.truncate(n as usize);
        Ok(Dataset {
            train: self.train.select(&p),
            ..self
        })
    }
}

fn empty_like(shape: &[i64]) -> Split {
    let mut s = shape.to_vec();
    s[0] = 0;
    Split {
        images: Tensor::zeros(s.as_slice(), (Kind::Uint8, tch::Device::Cpu)),
        labels: Tensor::zeros([0], (Kind::Int64, tch::Device::Cpu)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;

    #[test]
    fn loads_generated_files_and_holds_out_validation() {
        let root = tempfile::tempdir().unwrap();
        testutil::write_mnist_like(&root.path().join("fashion-mnist"), 50, 20, true).unwrap();
        let ds = Dataset::load(info("fashion-mnist").unwrap(), root.path()).unwrap();
        assert_eq!(ds.train.images.size(), [50, 1, 28, 28]);
        assert_eq!(ds.test.len(), 20);
        let ds = ds.hold_out(10).unwrap().subset(30).unwrap();
        assert_eq!((ds.train.len(), ds.validation.len()), (30, 10));
        assert!(ds.hold_out(30).is_err());
    }

    #[test]
    fn a_missing_dataset_says_what_is_missing_and_how_to_get_it() {
        let root = tempfile::tempdir().unwrap();
        let err = Dataset::load(info("mnist").unwrap(), root.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("dataset `mnist` not found"), "{err}");
        assert!(err.contains("train-images-idx3-ubyte"), "{err}");
        assert!(err.contains("data/README.md"), "{err}");
    }

    #[test]
    fn count_mismatch_and_bad_labels_name_the_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mnist");
        testutil::write_mnist_like(&dir, 5, 5, false).unwrap();
        std::fs::write(
            dir.join("train-labels-idx1-ubyte"),
            testutil::idx_bytes(&[4], &[0, 1, 2, 3]),
        )
        .unwrap();
        let err = Dataset::load(info("mnist").unwrap(), root.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train-labels-idx1-ubyte: 4 labels, but"),
            "{err}"
        );
        std::fs::write(
            dir.join("train-labels-idx1-ubyte"),
            testutil::idx_bytes(&[5], &[0, 1, 12, 3, 4]),
        )
        .unwrap();
        let err = Dataset::load(info("mnist").unwrap(), root.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("label 12 at index 2 is outside 0..10"),
            "{err}"
        );
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = info("cifar-11").unwrap_err().to_string();
        assert!(err.contains("fashion-mnist"), "{err}");
    }
}
