//! Batches on the training device: a split held there as `u8`, indexed and normalised per batch.

use tch::{Device, Kind, Tensor};

use crate::augment::{Augment, EpochDraws};
use crate::folder::{Files, HostBatch, Transform};
use crate::{DataError, DatasetInfo, Result, Split};

/// The `lth-rng` domain of data orders.
pub const DATA_ORDER: &str = "data_order";

/// A batch of normalised images (`f32`, B×C×H×W) and their labels (`i64`, B), on the device.
#[derive(Debug)]
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
}

/// Per-channel normalisation on the device: `x = u8 · scale + shift`, scale = 1 / (255 σ),
/// shift = −μ / σ.
#[derive(Debug)]
struct Normalize {
    scale: Tensor,
    shift: Tensor,
}

impl Normalize {
    fn new(info: &DatasetInfo, device: Device) -> Normalize {
        let c = info.shape[0];
        let std = Tensor::from_slice(info.std).to_kind(Kind::Float);
        let mean = Tensor::from_slice(info.mean).to_kind(Kind::Float);
        Normalize {
            scale: (&std * 255.0)
                .reciprocal()
                .view([1, c, 1, 1])
                .to_device(device),
            shift: (-(mean / &std)).view([1, c, 1, 1]).to_device(device),
        }
    }

    fn apply(&self, images: &Tensor) -> Tensor {
        images.to_kind(Kind::Float) * &self.scale + &self.shift
    }
}

impl Clone for Normalize {
    fn clone(&self) -> Self {
        Normalize {
            scale: self.scale.shallow_clone(),
            shift: self.shift.shallow_clone(),
        }
    }
}

/// A split on the training device, with its normalisation.
#[derive(Debug)]
pub struct DeviceSplit {
    images: Tensor,
    labels: Tensor,
    norm: Normalize,
}

impl Clone for DeviceSplit {
    /// Another handle on the same device memory (no copy).
    fn clone(&self) -> Self {
        DeviceSplit {
            images: self.images.shallow_clone(),
            labels: self.labels.shallow_clone(),
            norm: self.norm.clone(),
        }
    }
}

impl DeviceSplit {
    /// Copies `split` to `device`, keeping the images as `u8` (a quarter of the memory of `f32`).
    pub fn new(split: &Split, info: &DatasetInfo, device: Device) -> Result<Self> {
        Ok(DeviceSplit {
            images: split.images.f_to_device(device)?,
            labels: split.labels.f_to_device(device)?,
            norm: Normalize::new(info, device),
        })
    }

    /// Number of examples.
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The device the split lives on.
    pub fn device(&self) -> Device {
        self.labels.device()
    }

    /// Normalises a `u8` batch already on the device.
    pub fn normalize(&self, images: &Tensor) -> Tensor {
        self.norm.apply(images)
    }

    /// The examples at `indices` (an `i64` tensor on the device), normalised.
    pub fn gather(&self, indices: &Tensor) -> Batch {
        Batch {
            x: self.normalize(&self.images.index_select(0, indices)),
            y: self.labels.index_select(0, indices),
        }
    }

    /// The examples at `indices`, augmented with `draws` before normalisation.
    pub fn gather_augmented(
        &self,
        indices: &Tensor,
        augment: Augment,
        draws: &EpochDraws,
    ) -> Batch {
        let images = augment.apply(&self.images.index_select(0, indices), draws, indices);
        Batch {
            x: self.normalize(&images),
            y: self.labels.index_select(0, indices),
        }
    }

    /// The examples in order, in batches of `batch_size` (the last one may be smaller): for
    /// evaluation, where order does not matter and a slice is cheaper than a gather.
    pub fn sequential(&self, batch_size: i64) -> impl Iterator<Item = Batch> + '_ {
        let n = self.len();
        (0..n)
            .step_by(batch_size.max(1) as usize)
            .map(move |start| {
                let len = batch_size.min(n - start);
                Batch {
                    x: self.normalize(&self.images.narrow(0, start, len)),
                    y: self.labels.narrow(0, start, len),
                }
            })
    }
}

/// A split streamed from image files (see [`crate::folder`]), normalised on `device`.
#[derive(Debug, Clone)]
pub struct FolderSplit {
    files: Files,
    norm: Normalize,
    device: Device,
    /// Shorter side before the centre crop, for evaluation.
    resize: u32,
}

impl FolderSplit {
    /// The split of `files` for a dataset described by `info`, on `device`.
    pub fn new(files: Files, info: &DatasetInfo, device: Device, resize: u32) -> FolderSplit {
        FolderSplit {
            files,
            norm: Normalize::new(info, device),
            device,
            resize,
        }
    }

    /// The examples at `indices` (positions), in that order.
    pub fn select(&self, indices: &[i64]) -> FolderSplit {
        FolderSplit {
            files: self.files.select(indices),
            ..self.clone()
        }
    }

    /// Number of examples.
    pub fn len(&self) -> i64 {
        self.files.len() as i64
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Uploads a decoded batch and normalises it.
    pub fn upload(&self, host: HostBatch) -> Batch {
        let b = host.labels.len() as i64;
        let s = i64::from(host.size);
        let images = Tensor::from_slice(&host.pixels)
            .view([b, 3, s, s])
            .to_device(self.device);
        Batch {
            x: self.norm.apply(&images),
            y: Tensor::from_slice(&host.labels).to_device(self.device),
        }
    }

    /// The evaluation transform of every example, in order, in batches.
    pub fn sequential(&self, batch_size: i64) -> impl Iterator<Item = Result<Batch>> + '_ {
        let n = self.len();
        (0..n)
            .step_by(batch_size.max(1) as usize)
            .map(move |start| {
                let idx: Vec<i64> = (start..(start + batch_size).min(n)).collect();
                let t = Transform::Eval {
                    resize: self.resize,
                };
                Ok(self.upload(self.files.batch(&idx, t)?))
            })
    }
}

/// Where a split's examples come from: device memory or files.
#[derive(Debug, Clone)]
pub enum Source {
    Device(DeviceSplit),
    Folder(FolderSplit),
}

impl Source {
    /// Number of examples.
    pub fn len(&self) -> i64 {
        match self {
            Source::Device(d) => d.len(),
            Source::Folder(f) => f.len(),
        }
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The device batches are delivered on.
    pub fn device(&self) -> Device {
        match self {
            Source::Device(d) => d.device(),
            Source::Folder(f) => f.device,
        }
    }

    /// The label of every example, in order (read from the device once).
    pub fn labels(&self) -> Vec<i64> {
        match self {
            #[allow(
                clippy::expect_used,
                reason = "a device split holds its labels as a 1-D int64 tensor, built by this crate"
            )]
            Source::Device(d) => Vec::<i64>::try_from(&d.labels.to_device(Device::Cpu))
                .expect("labels are a vector of i64"),
            Source::Folder(f) => f.files.labels(),
        }
    }

    /// The examples at `indices` (positions), in that order, without augmentation: for one-off
    /// batches such as the one pruning at initialisation scores with.
    pub fn examples(&self, indices: &[i64]) -> Result<Batch> {
        if let Some(bad) = indices.iter().find(|&&i| i < 0 || i >= self.len()) {
            return Err(DataError::Invalid(format!(
                "example {bad} asked for, but the split has {}",
                self.len()
            )));
        }
        match self {
            Source::Device(d) => Ok(d.gather(&Tensor::from_slice(indices).to_device(d.device()))),
            Source::Folder(f) => {
                let t = Transform::Eval { resize: f.resize };
                Ok(f.upload(f.files.batch(indices, t)?))
            }
        }
    }

    /// Every example once, in order, without augmentation, in batches of `batch_size`.
    pub fn sequential(&self, batch_size: i64) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        match self {
            Source::Device(d) => Box::new(d.sequential(batch_size).map(Ok)),
            Source::Folder(f) => Box::new(f.sequential(batch_size)),
        }
    }
}

/// An augmentation, its seed, and the draws of the epoch served last (device splits).
#[derive(Debug)]
struct Augmentation {
    kind: Augment,
    seed: u64,
    draws: Option<(u64, EpochDraws)>,
}

/// Training batches in a seeded order: epoch `e` visits the examples in the permutation
/// [`lth_rng::permutation`]`(n, seed, "data_order", e)`, in batches of `batch_size`; the last batch
/// of an epoch may be smaller (no example is dropped). Step `t` is served directly, without
/// replaying earlier steps. For files, the next step's batch is decoded on a thread while the
/// current one trains.
#[derive(Debug)]
pub struct Loader {
    data: Source,
    batch_size: i64,
    seed: u64,
    /// The permutation of the epoch served last, on the host and on the device.
    current: Option<(u64, Vec<i64>, Tensor)>,
    augment: Option<Augmentation>,
    /// A folder batch being decoded ahead: its step and the thread decoding it.
    pending: Option<(u64, std::thread::JoinHandle<Result<HostBatch>>)>,
}

impl Loader {
    /// A loader over `data` with a data-order seed.
    pub fn new(data: impl Into<Source>, batch_size: i64, seed: u64) -> Result<Self> {
        let data = data.into();
        if batch_size < 1 {
            return Err(DataError::Invalid(format!(
                "batch size must be at least 1, got {batch_size}"
            )));
        }
        if data.is_empty() {
            return Err(DataError::Invalid("cannot train on an empty split".into()));
        }
        Ok(Loader {
            data,
            batch_size,
            seed,
            current: None,
            augment: None,
            pending: None,
        })
    }

    /// Augments every training batch with `augment`, drawn from `seed`. Folder datasets take the
    /// resized-crop augmentation, in-memory ones the pad-crop-flip one.
    pub fn with_augmentation(mut self, augment: Augment, seed: u64) -> Result<Self> {
        let fits = matches!(
            (&self.data, augment),
            (Source::Device(_), Augment::CropFlip { .. })
                | (Source::Folder(_), Augment::ResizedCropFlip { .. })
        );
        if !fits {
            return Err(DataError::Invalid(format!(
                "augmentation {augment:?} does not apply to this kind of dataset"
            )));
        }
        self.augment = Some(Augmentation {
            kind: augment,
            seed,
            draws: None,
        });
        Ok(self)
    }

    /// Batches per epoch: ⌈N / batch size⌉.
    pub fn steps_per_epoch(&self) -> u64 {
        (self.data.len() as u64).div_ceil(self.batch_size as u64)
    }

    /// The split this loader serves.
    pub fn data(&self) -> &Source {
        &self.data
    }

    /// The positions of step `step`'s examples (host) and the same on the device.
    fn indices(&mut self, step: u64) -> (Vec<i64>, Tensor) {
        let spe = self.steps_per_epoch();
        let (epoch, within) = (step / spe, step % spe);
        if self.current.as_ref().is_none_or(|(e, _, _)| *e != epoch) {
            let perm = lth_rng::permutation(self.data.len() as usize, self.seed, DATA_ORDER, epoch);
            let on_device = Tensor::from_slice(&perm).to_device(self.data.device());
            self.current = Some((epoch, perm, on_device));
        }
        #[allow(clippy::expect_used, reason = "assigned just above")]
        let (_, perm, on_device) = self.current.as_ref().expect("set above");
        let start = within as i64 * self.batch_size;
        let len = self.batch_size.min(self.data.len() - start);
        let host = perm[start as usize..(start + len) as usize].to_vec();
        (host, on_device.narrow(0, start, len))
    }

    /// The transform of the folder examples of step `step`.
    fn transform(&self, step: u64, folder: &FolderSplit) -> Transform {
        match &self.augment {
            Some(Augmentation {
                kind: Augment::ResizedCropFlip { scale, ratio, .. },
                seed,
                ..
            }) => Transform::Train {
                seed: *seed,
                epoch: step / self.steps_per_epoch(),
                scale: *scale,
                ratio: *ratio,
            },
            _ => Transform::Eval {
                resize: folder.resize,
            },
        }
    }

    /// The batch of training step `step` (counting from 0 across epochs).
    pub fn batch(&mut self, step: u64) -> Result<Batch> {
        let (host, indices) = self.indices(step);
        let epoch = step / self.steps_per_epoch();
        match self.data.clone() {
            Source::Device(d) => Ok(match &mut self.augment {
                None => d.gather(&indices),
                Some(a) => {
                    if a.draws.as_ref().is_none_or(|(e, _)| *e != epoch) {
                        let dr = a.kind.draw(d.len() as usize, a.seed, epoch, d.device());
                        a.draws = Some((epoch, dr));
                    }
                    #[allow(clippy::expect_used, reason = "assigned just above")]
                    let (_, dr) = a.draws.as_ref().expect("set above");
                    d.gather_augmented(&indices, a.kind, dr)
                }
            }),
            Source::Folder(f) => {
                let decoded = match self.pending.take() {
                    Some((s, job)) if s == step => job
                        .join()
                        .map_err(|_| DataError::Invalid("a decoding thread panicked".into()))??,
                    _ => f.files.batch(&host, self.transform(step, &f))?,
                };
                // Decode the next step while this one trains.
                let next = step + 1;
                let (next_host, _) = self.indices(next);
                let (files, t) = (f.files.clone(), self.transform(next, &f));
                self.pending = Some((next, std::thread::spawn(move || files.batch(&next_host, t))));
                Ok(f.upload(decoded))
            }
        }
    }
}

impl From<DeviceSplit> for Source {
    fn from(d: DeviceSplit) -> Source {
        Source::Device(d)
    }
}

impl From<FolderSplit> for Source {
    fn from(f: FolderSplit) -> Source {
        Source::Folder(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::info;

    fn tiny(n: i64) -> (Split, &'static DatasetInfo) {
        let images = Tensor::arange(n, (Kind::Uint8, Device::Cpu))
            .view([n, 1, 1, 1])
            .expand([n, 1, 28, 28], false)
            .contiguous();
        let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu));
        (Split { images, labels }, info("mnist").unwrap())
    }

    fn labels_of(batch: &Batch) -> Vec<i64> {
        Vec::<i64>::try_from(&batch.y).unwrap()
    }

    #[test]
    fn each_epoch_visits_every_example_once_and_resumes_anywhere() {
        let (split, info) = tiny(10);
        let mk =
            || Loader::new(DeviceSplit::new(&split, info, Device::Cpu).unwrap(), 4, 9).unwrap();
        let mut a = mk();
        assert_eq!(a.steps_per_epoch(), 3);
        let seen: Vec<Vec<i64>> = (0..6).map(|s| labels_of(&a.batch(s).unwrap())).collect();
        assert_eq!(seen[2].len(), 2);
        for epoch in seen.chunks(3) {
            let mut all: Vec<i64> = epoch.concat();
            all.sort_unstable();
            assert_eq!(all, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(seen[0..3], seen[3..6], "a fresh permutation per epoch");
        // A new loader asked for step 4 directly serves what the first served at step 4.
        assert_eq!(labels_of(&mk().batch(4).unwrap()), seen[4]);
    }

    #[test]
    fn augmented_batches_change_per_epoch_and_resume_anywhere() {
        let root = tempfile::tempdir().unwrap();
        crate::testutil::write_cifar_like(
            &root.path().join("cifar10"),
            crate::cifar::Variant::Cifar10,
            40,
            5,
        )
        .unwrap();
        let ds = crate::Dataset::load(info("cifar10").unwrap(), root.path()).unwrap();
        let info = ds.info;
        let mk = || {
            Loader::new(
                DeviceSplit::new(&ds.train, info, Device::Cpu).unwrap(),
                8,
                3,
            )
            .unwrap()
            .with_augmentation(info.augment.unwrap(), 11)
            .unwrap()
        };
        let mut a = mk();
        let xs: Vec<Tensor> = (0..10).map(|s| a.batch(s).unwrap().x).collect();
        assert!(
            xs[7].equal(&mk().batch(7).unwrap().x),
            "step 7 served directly equals step 7 in sequence"
        );
        let plain = Loader::new(
            DeviceSplit::new(&ds.train, info, Device::Cpu).unwrap(),
            8,
            3,
        )
        .unwrap()
        .batch(0)
        .unwrap()
        .x;
        assert!(!plain.equal(&xs[0]), "augmentation changed the images");
        assert_eq!(plain.size(), xs[0].size());
    }

    #[test]
    fn normalises_with_the_dataset_statistics() {
        let (split, info) = tiny(3);
        let d = DeviceSplit::new(&split, info, Device::Cpu).unwrap();
        let b = d.gather(&Tensor::from_slice(&[2i64]));
        let got = b.x.double_value(&[0, 0, 0, 0]);
        let want = (2.0 / 255.0 - 0.1307) / 0.3081;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        let total: i64 = d.sequential(2).map(|b| b.y.size()[0]).sum();
        assert_eq!(total, 3);
    }
}
