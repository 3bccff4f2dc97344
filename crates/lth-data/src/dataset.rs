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
