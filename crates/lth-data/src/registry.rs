//! The dataset registry: what each dataset is and where its files live (loading one is
//! [`crate::dataset`]'s).

use std::path::{Path, PathBuf};

use crate::augment::Augment;
use crate::cifar::{self, Variant};
use crate::generated::{self, Generator};
use crate::{DataError, Result, mnist};

/// How a dataset is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Four MNIST-format IDX files (raw or gzip).
    Idx,
    /// CIFAR binary batches.
    Cifar(Variant),
    /// `train/<class>/*.JPEG` and `val/<class>/*.JPEG`, streamed from disk.
    Folder,
    /// Drawn by lth from a fixed seed ([`crate::generated`]): no files.
    Generated(Generator),
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
    /// The standard training augmentation of this dataset (applied when asked for).
    pub augment: Option<Augment>,
    /// Where the data comes from and how to put it in place.
    pub how_to_get: &'static str,
    /// For a derived dataset (`fashion-mnist:classes=0-4`): the dataset it is taken from and the
    /// classes it keeps. `None` for the registry's own.
    pub derived: Option<Derived>,
}

/// A dataset made of some classes of another: the examples of `classes` (the base's labels, in
/// this order), relabelled `0..classes.len()`. Files, shape and normalisation are the base's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Derived {
    pub base: &'static DatasetInfo,
    pub classes: &'static [i64],
}

const MNIST_LIKE_HELP: &str = "Put the four files train-images-idx3-ubyte, train-labels-idx1-ubyte, \
t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may end in .gz) in that folder.";

const CIFAR_HELP: &str = "CIFAR is not fetched by lth; download the binary version of the \
dataset (cifar-10-binary.tar.gz or cifar-100-binary.tar.gz from the CIFAR page of the University \
of Toronto) and unpack it into <data root>/cifar10/ or <data root>/cifar100/. See data/README.md.";

static REGISTRY: [DatasetInfo; 6] = [
    DatasetInfo {
        name: "mnist",
        dir: "mnist",
        format: Format::Idx,
        shape: [1, 28, 28],
        num_classes: 10,
        mean: &[0.1307],
        std: &[0.3081],
        augment: None,
        how_to_get: "MNIST (LeCun, Cortes, Burges) is not fetched by lth; download it from a mirror \
you trust into <data root>/mnist/. See data/README.md.",
        derived: None,
    },
    DatasetInfo {
        name: "fashion-mnist",
        dir: "fashion-mnist",
        format: Format::Idx,
        shape: [1, 28, 28],
        num_classes: 10,
        mean: &[0.2860],
        std: &[0.3530],
        augment: None,
        how_to_get: "`cargo xtask setup` fetches Fashion-MNIST from Debian's dataset-fashion-mnist \
package where apt is available; otherwise download the files of the Fashion-MNIST project \
(zalandoresearch/fashion-mnist, folder data/fashion) into <data root>/fashion-mnist/. See data/README.md.",
        derived: None,
    },
    DatasetInfo {
        name: "cifar10",
        dir: "cifar10",
        format: Format::Cifar(Variant::Cifar10),
        shape: [3, 32, 32],
        num_classes: 10,
        // OpenLTH normalises CIFAR-10 with ImageNet's statistics; so do we.
        mean: &[0.485, 0.456, 0.406],
        std: &[0.229, 0.224, 0.225],
        augment: Some(Augment::CropFlip { pad: 4 }),
        how_to_get: CIFAR_HELP,
        derived: None,
    },
    DatasetInfo {
        name: "cifar100",
        dir: "cifar100",
        format: Format::Cifar(Variant::Cifar100),
        shape: [3, 32, 32],
        num_classes: 100,
        // The CIFAR-100 training set's own statistics, as most reference implementations use.
        mean: &[0.5071, 0.4865, 0.4409],
        std: &[0.2673, 0.2564, 0.2762],
        augment: Some(Augment::CropFlip { pad: 4 }),
        how_to_get: CIFAR_HELP,
        derived: None,
    },
    DatasetInfo {
        name: "imagenet",
        dir: "imagenet",
        format: Format::Folder,
        shape: [3, 224, 224],
        num_classes: 1000,
        mean: &[0.485, 0.456, 0.406],
        std: &[0.229, 0.224, 0.225],
        augment: Some(Augment::ResizedCropFlip {
            size: 224,
            scale: (0.1, 1.0),
            ratio: (0.8, 1.25),
        }),
        how_to_get: "ImageNet (ILSVRC 2012) is not fetched by lth; after accepting its terms, put the \
training images in <data root>/imagenet/train/<wnid>/*.JPEG and the validation images, sorted into \
class folders, in <data root>/imagenet/val/<wnid>/*.JPEG. See data/README.md.",
        derived: None,
    },
    DatasetInfo {
        name: "two-moons",
        dir: "two-moons",
        format: Format::Generated(Generator::TwoMoons),
        // A point of the plane, stored as a 1×1×2 image whose normalisation gives back its
        // coordinates (lth_data::generated).
        shape: [1, 1, 2],
        num_classes: 2,
        mean: &[generated::MEAN],
        std: &[generated::STD],
        augment: None,
        how_to_get: "two-moons is drawn by lth from a fixed seed (2,000 training and 1,000 test \
points, noise 0.1); it needs no files.",
        derived: None,
    },
];

/// `\nPresent here with the same input shape: fashion-mnist (pass --dataset fashion-mnist).`, or
/// nothing: what a user whose default dataset is absent can train on instead.
pub(crate) fn present_instead(info: &DatasetInfo, root: &Path) -> String {
    let here: Vec<&str> = REGISTRY
        .iter()
        .filter(|d| d.name != info.name && d.shape == info.shape && d.absent(root).is_none())
        .map(|d| d.name)
        .collect();
    match here.first() {
        Some(first) => format!(
            "\nPresent here with the same input shape: {} (pass --dataset {first}).",
            here.join(", ")
        ),
        None => String::new(),
    }
}

impl DatasetInfo {
    /// Why the dataset cannot be loaded from `root` (which files are missing, and how to get
    /// them), or `None` when its files are there. Cheap: nothing is read.
    pub fn absent(&self, root: &Path) -> Option<String> {
        let dir = root.join(self.dir);
        match self.format {
            Format::Generated(_) => None,
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
            Format::Folder => {
                let absent: Vec<&str> = ["train", "val"]
                    .into_iter()
                    .filter(|s| !dir.join(s).is_dir())
                    .collect();
                (!absent.is_empty()).then(|| {
                    format!(
                        "{} lacks the folder(s) {} (each holding one folder of .JPEG files per class)",
                        dir.display(),
                        absent.join(" and ")
                    )
                })
            }
            Format::Cifar(v) => {
                let absent = cifar::missing(&dir, v);
                (!absent.is_empty()).then(|| {
                    format!(
                        "{} lacks {} (directly or in the folder the archive unpacks to)",
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

/// The registry entry of `name`, or a dataset derived from one: `<dataset>:classes=<list>`, where
/// the list holds classes and ranges of the base's labels (`0-4`, `5,7,9`, `0-2,8`), kept in that
/// order and relabelled from 0. Example: `fashion-mnist:classes=5-9` is Fashion-MNIST's last five
/// classes as a 5-class dataset. Usable wherever a dataset name is.
pub fn info(name: &str) -> Result<&'static DatasetInfo> {
    if name.contains(':') {
        return derived(name);
    }
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

/// The derived datasets asked for so far in this process (each built once, kept for its life).
static DERIVED: std::sync::Mutex<Vec<&'static DatasetInfo>> = std::sync::Mutex::new(Vec::new());

fn derived(name: &str) -> Result<&'static DatasetInfo> {
    if let Some(found) = DERIVED
        .lock()
        .ok()
        .and_then(|d| d.iter().find(|i| i.name == name).copied())
    {
        return Ok(found);
    }
    let bad = |why: String| DataError::Invalid(format!("dataset `{name}`: {why}"));
    let (base_name, option) = name.split_once(':').unwrap_or((name, ""));
    let base = info(base_name)?;
    if base.derived.is_some() {
        return Err(bad("a derived dataset cannot be derived again".into()));
    }
    let list = option.strip_prefix("classes=").ok_or_else(|| {
        bad(format!(
            "expected `{base_name}:classes=<list>` (for example {base_name}:classes=0-4), got \
             `:{option}`"
        ))
    })?;
    let number = |t: &str| -> Result<i64> {
        let n: i64 = t
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{t}` is not a class number")))?;
        if !(0..base.num_classes).contains(&n) {
            return Err(bad(format!(
                "class {n} is not one of {base_name}'s (0 to {})",
                base.num_classes - 1
            )));
        }
        Ok(n)
    };
    let mut classes = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(bad(format!("the range `{part}` runs backwards")));
                }
                classes.extend(a..=b);
            }
            None => classes.push(number(part)?),
        }
    }
    let mut sorted = classes.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != classes.len() {
        return Err(bad("a class is listed twice".into()));
    }
    if classes.len() < 2 {
        return Err(bad("a classifier needs at least two classes".into()));
    }
    if base.format == Format::Folder {
        return Err(bad(format!(
            "{base_name} is streamed from class folders; derived datasets of it are not supported \
             yet (make a folder with the classes you want instead)"
        )));
    }
    let leaked: &'static DatasetInfo = Box::leak(Box::new(DatasetInfo {
        name: Box::leak(name.to_owned().into_boxed_str()),
        num_classes: classes.len() as i64,
        derived: Some(Derived {
            base,
            classes: Box::leak(classes.into_boxed_slice()),
        }),
        ..base.clone()
    }));
    if let Ok(mut d) = DERIVED.lock() {
        d.push(leaked);
    }
    Ok(leaked)
}

/// The data root: the explicit folder if given, else `$LTH_DATA`, else `data/`.
pub fn data_root(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_owned)
        .or_else(|| std::env::var_os("LTH_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use crate::{Dataset, Split, prepare};
    use tch::Device;

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

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = info("cifar-11").unwrap_err().to_string();
        assert!(err.contains("fashion-mnist"), "{err}");
    }
}
