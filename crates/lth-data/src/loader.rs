//! Batches on the training device: a split held there as `u8`, indexed and normalised per batch.

use tch::{Device, Kind, Tensor};

use crate::{DataError, DatasetInfo, Result, Split};

/// The `lth-rng` domain of data orders.
pub const DATA_ORDER: &str = "data_order";

/// A batch of normalised images (`f32`, B×C×H×W) and their labels (`i64`, B), on the device.
#[derive(Debug)]
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
}

/// A split on the training device, with its normalisation.
#[derive(Debug)]
pub struct DeviceSplit {
    images: Tensor,
    labels: Tensor,
    /// `x = u8 · scale + shift` per channel: scale = 1 / (255 σ), shift = −μ / σ.
    scale: Tensor,
    shift: Tensor,
}

impl Clone for DeviceSplit {
    /// Another handle on the same device memory (no copy).
    fn clone(&self) -> Self {
        DeviceSplit {
            images: self.images.shallow_clone(),
            labels: self.labels.shallow_clone(),
            scale: self.scale.shallow_clone(),
            shift: self.shift.shallow_clone(),
        }
    }
}

impl DeviceSplit {
    /// Copies `split` to `device`, keeping the images as `u8` (a quarter of the memory of `f32`).
    pub fn new(split: &Split, info: &DatasetInfo, device: Device) -> Result<Self> {
        let c = info.shape[0];
        let std = Tensor::from_slice(info.std).to_kind(Kind::Float);
        let mean = Tensor::from_slice(info.mean).to_kind(Kind::Float);
        let scale = (&std * 255.0).reciprocal();
        let shift = -(mean / &std);
        Ok(DeviceSplit {
            images: split.images.f_to_device(device)?,
            labels: split.labels.f_to_device(device)?,
            scale: scale.view([1, c, 1, 1]).to_device(device),
            shift: shift.view([1, c, 1, 1]).to_device(device),
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
        images.to_kind(Kind::Float) * &self.scale + &self.shift
    }

    /// The examples at `indices` (an `i64` tensor on the device), normalised.
    pub fn gather(&self, indices: &Tensor) -> Batch {
        Batch {
            x: self.normalize(&self.images.index_select(0, indices)),
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

/// Training batches in a seeded order: epoch `e` visits the examples in the permutation
/// [`lth_rng::permutation`]`(n, seed, "data_order", e)`, in batches of `batch_size`; the last batch of an epoch may
/// be smaller (no example is dropped). Step `t` is served directly, without replaying earlier steps.
#[derive(Debug)]
pub struct Loader {
    data: DeviceSplit,
    batch_size: i64,
    seed: u64,
    /// The permutation of the epoch served last, on the device.
    current: Option<(u64, Tensor)>,
}

impl Loader {
    /// A loader over `data` with a data-order seed.
    pub fn new(data: DeviceSplit, batch_size: i64, seed: u64) -> Result<Self> {
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
        })
    }

    /// Batches per epoch: ⌈N / batch size⌉.
    pub fn steps_per_epoch(&self) -> u64 {
        (self.data.len() as u64).div_ceil(self.batch_size as u64)
    }

    /// The split this loader serves.
    pub fn data(&self) -> &DeviceSplit {
        &self.data
    }

    /// The batch of training step `step` (counting from 0 across epochs).
    pub fn batch(&mut self, step: u64) -> Batch {
        let spe = self.steps_per_epoch();
        let (epoch, within) = (step / spe, step % spe);
        if self.current.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let perm = lth_rng::permutation(self.data.len() as usize, self.seed, DATA_ORDER, epoch);
            let perm = Tensor::from_slice(&perm).to_device(self.data.device());
            self.current = Some((epoch, perm));
        }
        let (_, perm) = self.current.as_ref().expect("set above");
        let start = within as i64 * self.batch_size;
        let len = self.batch_size.min(self.data.len() - start);
        self.data.gather(&perm.narrow(0, start, len))
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
        let seen: Vec<Vec<i64>> = (0..6).map(|s| labels_of(&a.batch(s))).collect();
        assert_eq!(seen[2].len(), 2);
        for epoch in seen.chunks(3) {
            let mut all: Vec<i64> = epoch.concat();
            all.sort_unstable();
            assert_eq!(all, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(seen[0..3], seen[3..6], "a fresh permutation per epoch");
        // A new loader asked for step 4 directly serves what the first served at step 4.
        assert_eq!(labels_of(&mk().batch(4)), seen[4]);
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
