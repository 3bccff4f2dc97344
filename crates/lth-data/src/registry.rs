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

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = info("cifar-11").unwrap_err().to_string();
        assert!(err.contains("fashion-mnist"), "{err}");
    }
}
