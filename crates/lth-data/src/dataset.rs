//! Loading a dataset the registry knows into memory, or preparing it to stream ([`prepare`]).

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::cifar;
use crate::folder::{Files, ImageFolder};
use crate::generated;
use crate::registry::present_instead;
use crate::{
    DataError, DatasetInfo, DeviceSplit, FolderSplit, Format, Result, Source, Split, mnist,
};

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
    /// Loads `info` from its folder under `root` (a derived dataset: its base, keeping its
    /// classes).
    pub fn load(info: &'static DatasetInfo, root: &Path) -> Result<Dataset> {
        let _io = lth_store::ledger::span(lth_store::ledger::Activity::Io);
        if let Some(d) = info.derived {
            let base = Dataset::load(d.base, root)?;
            let keep = |split: &Split| -> Split {
                // Old label → new label, or −1 for the classes left out.
                let mut map = vec![-1i64; d.base.num_classes as usize];
                for (new, &old) in d.classes.iter().enumerate() {
                    map[old as usize] = new as i64;
                }
                let map = Tensor::from_slice(&map).to_device(split.labels.device());
                let relabelled = map.index_select(0, &split.labels);
                let kept = relabelled.ge(0).nonzero().squeeze_dim(1);
                Split {
                    images: split.images.index_select(0, &kept),
                    labels: relabelled.index_select(0, &kept),
                }
            };
            return Ok(Dataset {
                info,
                train: keep(&base.train),
                test: keep(&base.test),
                validation: base.validation,
            });
        }
        let dir = root.join(info.dir);
        if let Some(problem) = info.absent(root) {
            return Err(DataError::Missing {
                name: info.name.to_owned(),
                root: root.to_owned(),
                problem,
                how_to_get: info.how_to_get.to_owned() + &present_instead(info, root),
            });
        }
        let (train, test) = match info.format {
            Format::Idx => {
                mnist::load(&dir, info.num_classes as u8, [info.shape[1], info.shape[2]])?
            }
            Format::Cifar(v) => cifar::load(&dir, v)?,
            Format::Generated(g) => generated::load(g),
            Format::Folder => {
                return Err(DataError::Invalid(format!(
                    "{} is streamed from files and never loaded into memory; use lth_data::prepare",
                    info.name
                )));
            }
        };
        for (split, which) in [(&train, "training"), (&test, "test")] {
            let shape = split.images.size();
            if shape[1..] != info.shape {
                return Err(DataError::malformed(
                    &dir,
                    format!(
                        "{which} images of shape {:?} expected for {}, found {:?}",
                        info.shape,
                        info.name,
                        &shape[1..]
                    ),
                ));
            }
        }
        let shape = train.images.size();
        Ok(Dataset {
            info,
            train,
            test,
            validation: empty_like(&shape),
        })
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
        let (val, train) = validation_indices(total, n);
        Ok(Dataset {
            validation: self.train.select(&val),
            train: self.train.select(&train),
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
        Ok(Dataset {
            train: self.train.select(&subset_indices(total, n)),
            ..self
        })
    }
}

/// The fixed seeded choice of `n` validation examples out of `total` training examples:
/// (validation positions, remaining training positions).
fn validation_indices(total: i64, n: i64) -> (Vec<i64>, Vec<i64>) {
    let mut p = lth_rng::permutation(total as usize, VALIDATION_SEED, "validation", 0);
    let train = p.split_off(n as usize);
    (p, train)
}

/// The fixed seeded choice of a training subset of `n` out of `total` examples.
fn subset_indices(total: i64, n: i64) -> Vec<i64> {
    let mut p = lth_rng::permutation(total as usize, SUBSET_SEED, "subset", 0);
    p.truncate(n as usize);
    p
}

/// A dataset ready for training on a device: every split in device memory, or streamed from files.
#[derive(Debug)]
pub struct Prepared {
    pub info: &'static DatasetInfo,
    pub train: Source,
    pub test: Source,
    /// Training examples held out for validation (`None` when none were asked for).
    pub validation: Option<Source>,
}

/// Opens `info` under `root`, holds out `validation` training examples, keeps a training subset of
/// `subset` (0: all), and puts each split on `device` (or streams it from files to `device`).
pub fn prepare(
    info: &'static DatasetInfo,
    root: &Path,
    validation: i64,
    subset: i64,
    device: Device,
) -> Result<Prepared> {
    if info.format != Format::Folder {
        let ds = Dataset::load(info, root)?
            .hold_out(validation)?
            .subset(subset)?;
        let validation = if ds.validation.is_empty() {
            None
        } else {
            Some(DeviceSplit::new(&ds.validation, info, device)?.into())
        };
        return Ok(Prepared {
            info,
            train: DeviceSplit::new(&ds.train, info, device)?.into(),
            test: DeviceSplit::new(&ds.test, info, device)?.into(),
            validation,
        });
    }
    if let Some(problem) = info.absent(root) {
        return Err(DataError::Missing {
            name: info.name.to_owned(),
            root: root.to_owned(),
            problem,
            how_to_get: info.how_to_get.to_owned() + &present_instead(info, root),
        });
    }
    let size = info.shape[1] as u32;
    let resize = (size as f64 * 256.0 / 224.0).round() as u32;
    let scan = |split: &str| -> Result<(PathBuf, ImageFolder)> {
        let dir = root.join(info.dir).join(split);
        let folder = ImageFolder::scan(&dir)?;
        if folder.classes.len() as i64 > info.num_classes {
            return Err(DataError::malformed(
                &dir,
                format!(
                    "{} class folders, but {} has {} classes",
                    folder.classes.len(),
                    info.name,
                    info.num_classes
                ),
            ));
        }
        Ok((dir, folder))
    };
    let ((_, train), (val_dir, test)) = (scan("train")?, scan("val")?);
    // Labels are the positions of the sorted class names: both splits must list the same classes,
    // or every label after the first difference would silently mean another class.
    if train.classes != test.classes {
        let only = |a: &ImageFolder, b: &ImageFolder| {
            a.classes.iter().find(|c| !b.classes.contains(c)).cloned()
        };
        let problem = match (only(&test, &train), only(&train, &test)) {
            (Some(c), _) => format!("class folder `{c}` is not among train/'s"),
            (None, Some(c)) => format!("lacks train/'s class folder `{c}`"),
            (None, None) => "lists other class folders than train/".into(),
        };
        return Err(DataError::malformed(
            &val_dir,
            format!("{problem}; both splits need the same class folders"),
        ));
    }
    let open =
        |folder: ImageFolder| FolderSplit::new(Files::new(folder, size), info, device, resize);
    let (train, test) = (open(train), open(test));
    let total = train.len();
    if validation >= total {
        return Err(DataError::Invalid(format!(
            "a validation split of {validation} examples leaves none of the {total} training examples of {}",
            info.name
        )));
    }
    let (val_idx, train_idx) = validation_indices(total, validation);
    let validation = (!val_idx.is_empty()).then(|| train.select(&val_idx).into());
    let mut train = train.select(&train_idx);
    if subset > 0 && subset < train.len() {
        train = train.select(&subset_indices(train.len(), subset));
    } else if subset > train.len() {
        return Err(DataError::Invalid(format!(
            "a training subset of {subset} examples asked for, but {} has {}",
            info.name,
            train.len()
        )));
    }
    Ok(Prepared {
        info,
        train: train.into(),
        test: test.into(),
        validation,
    })
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
    use crate::info;
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
        assert!(!err.contains("Present here"), "{err}");
        // With Fashion-MNIST present, the message names it: same shape, one flag away.
        testutil::write_mnist_like(&root.path().join("fashion-mnist"), 10, 10, true).unwrap();
        let err = Dataset::load(info("mnist").unwrap(), root.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "Present here with the same input shape: fashion-mnist (pass --dataset \
                 fashion-mnist)."
            ),
            "{err}"
        );
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
        // Test images of another size (a valid header) are refused by name, not left to fail
        // inside the network.
        testutil::write_mnist_like(&dir, 5, 5, false).unwrap();
        std::fs::write(
            dir.join("t10k-images-idx3-ubyte"),
            testutil::idx_bytes(&[5, 32, 32], &[0; 5 * 32 * 32]),
        )
        .unwrap();
        let err = Dataset::load(info("mnist").unwrap(), root.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "t10k-images-idx3-ubyte: images of 32×32 pixels, but this dataset's are 28×28"
            ),
            "{err}"
        );
    }

    #[test]
    fn loads_cifar_in_both_layouts_and_names_broken_files() {
        use crate::cifar::Variant;
        let root = tempfile::tempdir().unwrap();
        testutil::write_cifar_like(&root.path().join("cifar10"), Variant::Cifar10, 23, 7).unwrap();
        let nested = root.path().join("cifar100/cifar-100-binary");
        testutil::write_cifar_like(&nested, Variant::Cifar100, 11, 5).unwrap();
        let c10 = Dataset::load(info("cifar10").unwrap(), root.path()).unwrap();
        assert_eq!(c10.train.images.size(), [23, 3, 32, 32]);
        assert_eq!(c10.test.len(), 7);
        let c100 = Dataset::load(info("cifar100").unwrap(), root.path()).unwrap();
        assert_eq!(c100.train.len(), 11);
        assert!(c100.train.labels.max().int64_value(&[]) < 100);
        let batch = root.path().join("cifar10/data_batch_3.bin");
        let bytes = std::fs::read(&batch).unwrap();
        std::fs::write(&batch, &bytes[..bytes.len() - 10]).unwrap();
        let err = Dataset::load(info("cifar10").unwrap(), root.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("data_batch_3.bin: truncated"), "{err}");
        let mut bad = bytes.clone();
        bad[0] = 10;
        std::fs::write(&batch, &bad).unwrap();
        let err = Dataset::load(info("cifar10").unwrap(), root.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("label 10 of record 0 is outside 0..10"),
            "{err}"
        );
        std::fs::remove_file(root.path().join("cifar10/test_batch.bin")).unwrap();
        let err = Dataset::load(info("cifar10").unwrap(), root.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lacks test_batch.bin") && err.contains("binary version"),
            "{err}"
        );
    }

    #[test]
    fn streams_an_image_folder_with_both_transforms() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("imagenet");
        testutil::write_image_folder(&dir.join("train"), 3, 4, (80, 60)).unwrap();
        testutil::write_image_folder(&dir.join("val"), 3, 2, (64, 96)).unwrap();
        let p = prepare(info("imagenet").unwrap(), root.path(), 2, 0, Device::Cpu).unwrap();
        assert_eq!((p.train.len(), p.test.len()), (10, 6));
        assert_eq!(p.validation.as_ref().unwrap().len(), 2);
        let b: Vec<_> = p.test.sequential(4).collect::<Result<_>>().unwrap();
        assert_eq!(b[0].x.size(), [4, 3, 224, 224]);
        assert_eq!(Vec::<i64>::try_from(&b[0].y).unwrap(), [0, 0, 1, 1]);
        let augment = info("imagenet").unwrap().augment.unwrap();
        let mk = || {
            crate::Loader::new(p.train.clone(), 4, 1)
                .unwrap()
                .with_augmentation(augment, 5)
                .unwrap()
        };
        let mut a = mk();
        let xs: Vec<_> = (0..6).map(|s| a.batch(s).unwrap()).collect();
        assert_eq!(
            xs[2].x.size(),
            [2, 3, 224, 224],
            "10 examples: the third batch has 2"
        );
        // A step served directly equals the same step served in sequence (with prefetching).
        assert!(mk().batch(4).unwrap().x.equal(&xs[4].x));
        assert!(!xs[0].x.equal(&xs[3].x));
        // A corrupt file is named.
        let victim = dir.join("val/class_001/image_000.JPEG");
        std::fs::write(&victim, b"not a jpeg").unwrap();
        let p = prepare(info("imagenet").unwrap(), root.path(), 0, 0, Device::Cpu).unwrap();
        let err = p
            .test
            .sequential(6)
            .find_map(|b| b.err())
            .unwrap()
            .to_string();
        assert!(
            err.contains("class_001/image_000.JPEG: not a decodable JPEG"),
            "{err}"
        );
    }

    #[test]
    fn image_folders_refuse_class_sets_that_would_shift_labels() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("imagenet");
        testutil::write_image_folder(&dir.join("train"), 3, 2, (40, 40)).unwrap();
        testutil::write_image_folder(&dir.join("val"), 3, 1, (40, 40)).unwrap();
        let load = || {
            prepare(info("imagenet").unwrap(), root.path(), 0, 0, Device::Cpu)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        // val/ without class_001: its class_002 would be read as label 1.
        std::fs::remove_dir_all(dir.join("val/class_001")).unwrap();
        let err = load();
        assert!(
            err.contains("val: lacks train/'s class folder `class_001`"),
            "{err}"
        );
        // A class train/ does not have.
        testutil::write_image_folder(&dir.join("val"), 2, 1, (40, 40)).unwrap();
        std::fs::create_dir_all(dir.join("val/class_xyz")).unwrap();
        std::fs::copy(
            dir.join("val/class_000/image_000.JPEG"),
            dir.join("val/class_xyz/image_000.JPEG"),
        )
        .unwrap();
        let err = load();
        assert!(
            err.contains("class folder `class_xyz` is not among train/'s"),
            "{err}"
        );
        // An empty class folder counts as a class no more.
        std::fs::remove_dir_all(dir.join("val/class_xyz")).unwrap();
        std::fs::create_dir_all(dir.join("train/class_empty")).unwrap();
        let err = load();
        assert!(
            err.contains("class_empty: a class folder with no .JPEG files"),
            "{err}"
        );
    }

    #[test]
    fn derived_datasets_keep_their_classes_relabelled_from_zero() {
        let root = tempfile::tempdir().unwrap();
        testutil::write_mnist_like(&root.path().join("mnist"), 300, 100, false).unwrap();
        let full = Dataset::load(info("mnist").unwrap(), root.path()).unwrap();
        let labels = |s: &Split| Vec::<i64>::try_from(&s.labels).unwrap();
        let (all_train, all_test) = (labels(&full.train), labels(&full.test));
        let last = info("mnist:classes=5-9").unwrap();
        assert_eq!((last.num_classes, last.name), (5, "mnist:classes=5-9"));
        // Asked for again, the same entry.
        assert!(std::ptr::eq(last, info("mnist:classes=5-9").unwrap()));
        let ds = Dataset::load(last, root.path()).unwrap();
        for (split, all) in [(&ds.train, &all_train), (&ds.test, &all_test)] {
            let got = labels(split);
            let want: Vec<i64> = all.iter().filter(|&&l| l >= 5).map(|l| l - 5).collect();
            assert_eq!(got, want);
            assert!(!got.is_empty());
        }
        // The images are those of the kept examples, in order.
        let kept: Vec<i64> = all_train
            .iter()
            .enumerate()
            .filter(|(_, l)| **l >= 5)
            .map(|(i, _)| i as i64)
            .collect();
        assert!(ds.train.images.equal(&full.train.select(&kept).images));
        // A list keeps its order: 7 becomes 0, 2 becomes 1.
        let ds = Dataset::load(info("mnist:classes=7,2").unwrap(), root.path()).unwrap();
        let want: Vec<i64> = all_test
            .iter()
            .filter_map(|&l| match l {
                7 => Some(0),
                2 => Some(1),
                _ => None,
            })
            .collect();
        assert_eq!(labels(&ds.test), want);
        // Validation and subsets work on the derived training split.
        let n = ds.train.len();
        let ds = ds.hold_out(10).unwrap();
        assert_eq!((ds.train.len(), ds.validation.len()), (n - 10, 10));
        for (name, why) in [
            ("mnist:classes=9-5", "the range `9-5` runs backwards"),
            (
                "mnist:classes=3-12",
                "class 12 is not one of mnist's (0 to 9)",
            ),
            ("mnist:classes=4", "at least two classes"),
            ("mnist:classes=1,1", "listed twice"),
            ("mnist:labels=0-4", "expected `mnist:classes=<list>`"),
            (
                "mnist:classes=0-4:classes=0-1",
                "`4:classes=0-1` is not a class number",
            ),
            ("imagenet:classes=0-9", "not supported yet"),
        ] {
            let err = info(name).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
            assert!(err.starts_with(&format!("dataset `{name}`")), "{err}");
        }
        assert!(
            info("mnst:classes=0-4")
                .unwrap_err()
                .to_string()
                .contains("fashion-mnist")
        );
    }
}
