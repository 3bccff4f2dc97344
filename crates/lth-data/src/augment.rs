//! Seeded data augmentation applied on the training device.
//!
//! Per epoch, every example's random choices (crop offsets, flip) are drawn on the host from the
//! `lth-rng` stream of (augmentation seed, epoch) and uploaded once; each batch then gathers its
//! examples' choices and transforms the `u8` images on the device. The augmentation of step t is a
//! function of the seed and t alone: resumable, and the same on every device.

use tch::{Device, Kind, Tensor};

/// The `lth-rng` domain of augmentation draws.
pub const AUGMENT: &str = "augment";

/// An augmentation a dataset supports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Augment {
    /// Zero-pad by `pad` pixels, take a random crop of the original size, flip horizontally with
    /// probability ½ (torchvision's `RandomCrop(32, 4)` + `RandomHorizontalFlip()`), on the device.
    CropFlip { pad: i64 },
    /// torchvision's `RandomResizedCrop(size, scale, ratio)` + `RandomHorizontalFlip()`, applied
    /// while decoding image files (see [`crate::folder`]).
    ResizedCropFlip {
        size: u32,
        scale: (f64, f64),
        ratio: (f64, f64),
    },
}

/// One epoch's draws for every example, on the device.
#[derive(Debug)]
pub struct EpochDraws {
    /// Crop offsets in 0..=2·pad.
    dx: Tensor,
    dy: Tensor,
    flip: Tensor,
}

impl Augment {
    /// Draws every example's choices for `epoch`.
    pub fn draw(self, n: usize, seed: u64, epoch: u64, device: Device) -> EpochDraws {
        let Augment::CropFlip { pad } = self else {
            unreachable!("Loader::with_augmentation admits only CropFlip for device splits")
        };
        let mut s = lth_rng::Stream::new(seed, AUGMENT, epoch);
        let span = 2 * pad as u64 + 1;
        let (mut dx, mut dy, mut flip) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for _ in 0..n {
            dx.push(s.below(span) as i64);
            dy.push(s.below(span) as i64);
            flip.push(s.below(2) == 1);
        }
        EpochDraws {
            dx: Tensor::from_slice(&dx).to_device(device),
            dy: Tensor::from_slice(&dy).to_device(device),
            flip: Tensor::from_slice(&flip).to_device(device),
        }
    }

    /// Applies the draws of the examples at `indices` to their `u8` images (B×C×H×W).
    pub fn apply(self, images: &Tensor, draws: &EpochDraws, indices: &Tensor) -> Tensor {
        let Augment::CropFlip { pad } = self else {
            unreachable!("Loader::with_augmentation admits only CropFlip for device splits")
        };
        #[allow(clippy::expect_used, reason = "the loader hands 4-D image batches")]
        let (b, c, h, w) = images.size4().expect("images are B×C×H×W");
        let device = images.device();
        let padded = images.constant_pad_nd([pad, pad, pad, pad]);
        let dx = draws.dx.index_select(0, indices).unsqueeze(1);
        let dy = draws.dy.index_select(0, indices).unsqueeze(1);
        let flip = draws.flip.index_select(0, indices).unsqueeze(1);
        let ar_h = Tensor::arange(h, (Kind::Int64, device)).unsqueeze(0);
        let ar_w = Tensor::arange(w, (Kind::Int64, device));
        let cols = ar_w
            .flip([0])
            .unsqueeze(0)
            .where_self(&flip, &ar_w.unsqueeze(0))
            + dx;
        let rows = ar_h + dy;
        let rows = rows
            .view([b, 1, h, 1])
            .expand([b, c, h, w + 2 * pad], false);
        let cols = cols.view([b, 1, 1, w]).expand([b, c, h, w], false);
        padded.gather(2, &rows, false).gather(3, &cols, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_and_flips_are_the_drawn_ones() {
        // One 1×4×4 image with pixel value = 10·row + col + 1 (so padding zeros stand out).
        let img = Tensor::from_slice(
            &(0..16u8)
                .map(|v| (v / 4) * 10 + v % 4 + 1)
                .collect::<Vec<u8>>(),
        )
        .view([1, 1, 4, 4]);
        let draws = EpochDraws {
            dx: Tensor::from_slice(&[2i64]),
            dy: Tensor::from_slice(&[0i64]),
            flip: Tensor::from_slice(&[false]),
        };
        let idx = Tensor::from_slice(&[0i64]);
        let a = Augment::CropFlip { pad: 1 };
        let out = a.apply(&img, &draws, &idx);
        // dy = 0 starts one row above the image (zeros); dx = 2 shifts one column right.
        let rows: Vec<u8> = Vec::try_from(&out.flatten(0, -1)).unwrap();
        assert_eq!(rows, [0, 0, 0, 0, 2, 3, 4, 0, 12, 13, 14, 0, 22, 23, 24, 0]);
        let flipped = EpochDraws {
            dx: Tensor::from_slice(&[1i64]),
            dy: Tensor::from_slice(&[1i64]),
            flip: Tensor::from_slice(&[true]),
        };
        let out = a.apply(&img, &flipped, &idx);
        let rows: Vec<u8> = Vec::try_from(&out.flatten(0, -1)).unwrap();
        assert_eq!(rows[..4], [4, 3, 2, 1]);
    }

    #[test]
    fn draws_are_seeded_per_epoch() {
        let a = Augment::CropFlip { pad: 4 };
        let d =
            |seed, epoch| Vec::<i64>::try_from(&a.draw(100, seed, epoch, Device::Cpu).dx).unwrap();
        assert_eq!(d(1, 0), d(1, 0));
        assert_ne!(d(1, 0), d(1, 1));
        assert_ne!(d(1, 0), d(2, 0));
        assert!(d(3, 5).iter().all(|&x| (0..=8).contains(&x)));
    }
}
