//! Image datasets in class folders (`<split>/<class>/*.JPEG`, ImageNet's layout), streamed from disk.
//!
//! Nothing is held in memory beyond the list of files: each batch is decoded on a thread pool
//! (rayon), transformed on the host, uploaded as `u8` and normalised on the device. Training uses
//! torchvision's `RandomResizedCrop(224, scale, ratio)` + `RandomHorizontalFlip()` with OpenLTH's
//! scale (0.1, 1) and ratio (0.8, 1.25); evaluation (and training without augmentation) uses
//! `Resize(256)` + `CenterCrop(224)`. Every example's random choices come from its own `lth-rng`
//! stream (augmentation seed, epoch and example index), so batches do not depend on the number of
//! threads or on which batch an example lands in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::U8x3;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use rayon::prelude::*;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::augment::AUGMENT;
use crate::{DataError, Result};

/// The image files of one split and their class indices (classes are the sorted folder names).
#[derive(Debug)]
pub struct ImageFolder {
    pub classes: Vec<String>,
    pub samples: Vec<(PathBuf, i64)>,
}

impl ImageFolder {
    /// Lists `dir/<class>/*.{jpeg,jpg}` (any case), classes and files sorted by name. A class
    /// folder without images is an error: it would take a label and shift the classes after it.
    pub fn scan(dir: &Path) -> Result<ImageFolder> {
        let io = |path: &Path, source| DataError::Io {
            path: path.to_owned(),
            source,
        };
        let mut classes: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        classes.sort();
        if classes.is_empty() {
            return Err(DataError::malformed(
                dir,
                "no class folders (expected <class>/*.JPEG)",
            ));
        }
        let mut samples = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let folder = dir.join(class);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map_err(|e| io(&folder, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                        x.eq_ignore_ascii_case("jpeg") || x.eq_ignore_ascii_case("jpg")
                    })
                })
                .collect();
            if files.is_empty() {
                // An empty folder would still take a label and shift every later class.
                return Err(DataError::malformed(
                    &folder,
                    "a class folder with no .JPEG files (remove it or fill it)",
                ));
            }
            files.sort();
            samples.extend(files.into_iter().map(|f| (f, label as i64)));
        }
        Ok(ImageFolder { classes, samples })
    }
}

/// How an example is turned into a `size`×`size` image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    /// Resize the shorter side to `resize`, crop the centre.
    Eval { resize: u32 },
    /// Random resized crop and flip, drawn from (seed, epoch).
    Train {
        seed: u64,
        epoch: u64,
        scale: (f64, f64),
        ratio: (f64, f64),
    },
}

/// The part of a folder split that decoding threads need: the files and the output size.
#[derive(Debug, Clone)]
pub struct Files {
    samples: Arc<Vec<(PathBuf, i64)>>,
    size: u32,
}

/// A decoded batch in host memory: `B × 3 × size × size` bytes and the labels.
#[derive(Debug)]
pub struct HostBatch {
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    pub size: u32,
}

impl Files {
    /// The files of `folder`, producing `size`×`size` images.
    pub fn new(folder: ImageFolder, size: u32) -> Files {
        Files {
            samples: Arc::new(folder.samples),
            size,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The label of every example, in order.
    pub fn labels(&self) -> Vec<i64> {
        self.samples.iter().map(|(_, l)| *l).collect()
    }

    /// The examples at `indices`, in that order.
    pub fn select(&self, indices: &[i64]) -> Files {
        Files {
            samples: Arc::new(
                indices
                    .iter()
                    .map(|&i| self.samples[i as usize].clone())
                    .collect(),
            ),
            size: self.size,
        }
    }

    /// Decodes and transforms the examples at `indices` on the thread pool.
    pub fn batch(&self, indices: &[i64], t: Transform) -> Result<HostBatch> {
        let images: Vec<Vec<u8>> = indices
            .par_iter()
            .map(|&i| self.example(i as usize, t))
            .collect::<Result<_>>()?;
        Ok(HostBatch {
            pixels: images.concat(),
            labels: indices
                .iter()
                .map(|&i| self.samples[i as usize].1)
                .collect(),
            size: self.size,
        })
    }

    /// Example `i` as 3×size×size bytes (channel planes).
    fn example(&self, i: usize, t: Transform) -> Result<Vec<u8>> {
        let (path, _) = &self.samples[i];
        let (rgb, w, h) = decode(path)?;
        let size = self.size;
        let (crop, out, flip) = match t {
            Transform::Eval { resize } => {
                // Resize(resize): the shorter side becomes `resize`; CenterCrop(size) of that,
                // expressed as a crop of the original.
                let short = w.min(h) as f64;
                let k = resize as f64 / short;
                let (rw, rh) = ((w as f64 * k).floor(), (h as f64 * k).floor());
                let (rw, rh) = if w <= h {
                    (resize as f64, rh)
                } else {
                    (rw, resize as f64)
                };
                let top = ((rh - size as f64) / 2.0).round_ties_even().max(0.0);
                let left = ((rw - size as f64) / 2.0).round_ties_even().max(0.0);
                let crop = (
                    left / rw * w as f64,
                    top / rh * h as f64,
                    size as f64 / rw * w as f64,
                    size as f64 / rh * h as f64,
                );
                (crop, size, false)
            }
            Transform::Train {
                seed,
                epoch,
                scale,
                ratio,
            } => {
                let mut s = lth_rng::Stream::new(seed, AUGMENT, (epoch << 32) | i as u64);
                let (top, left, ch, cw) = resized_crop(&mut s, w, h, scale, ratio);
                let flip = s.below(2) == 1;
                ((left as f64, top as f64, cw as f64, ch as f64), size, flip)
            }
        };
        // The typed entry point: `Resizer::resize` is generic over the image and instantiates
        // every pixel type's kernels here (a 65 MB library and a minute and a half of compiling
        // for this crate), where only RGB bytes are ever resized.
        let src = TypedImageRef::<U8x3>::from_buffer(w, h, &rgb).map_err(|e| {
            DataError::malformed(path, format!("decoded image does not fit its size ({e})"))
        })?;
        let mut dst = TypedImage::<U8x3>::new(out, out);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
            .crop(crop.0, crop.1, crop.2, crop.3);
        Resizer::new()
            .resize_typed(&src, &mut dst, &options)
            .map_err(|e| DataError::malformed(path, format!("cannot resize ({e})")))?;
        let hwc = dst.pixels();
        let n = (out * out) as usize;
        let mut chw = vec![0u8; 3 * n];
        for y in 0..out as usize {
            for x in 0..out as usize {
                let from = if flip { out as usize - 1 - x } else { x };
                let p = hwc[y * out as usize + from].0;
                for (c, v) in p.into_iter().enumerate() {
                    chw[c * n + y * out as usize + x] = v;
                }
            }
        }
        Ok(chw)
    }
}

/// Decodes a JPEG to interleaved RGB, whatever its colour space.
fn decode(path: &Path) -> Result<(Vec<u8>, u32, u32)> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut d = JpegDecoder::new_with_options(ZCursor::new(&bytes), options);
    let pixels = d
        .decode()
        .map_err(|e| DataError::malformed(path, format!("not a decodable JPEG ({e:?})")))?;
    let (w, h) = d
        .dimensions()
        .ok_or_else(|| DataError::malformed(path, "JPEG without dimensions"))?;
    Ok((pixels, w as u32, h as u32))
}

/// torchvision's `RandomResizedCrop.get_params`: (top, left, height, width) of the crop.
pub fn resized_crop(
    s: &mut lth_rng::Stream,
    w: u32,
    h: u32,
    scale: (f64, f64),
    ratio: (f64, f64),
) -> (u32, u32, u32, u32) {
    let area = (w * h) as f64;
    let (lo, hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * (scale.0 + (scale.1 - scale.0) * s.unit());
        let aspect = (lo + (hi - lo) * s.unit()).exp();
        // Python's round (half to even), as torchvision uses it.
        let cw = (target * aspect).sqrt().round_ties_even() as u32;
        let ch = (target / aspect).sqrt().round_ties_even() as u32;
        if cw > 0 && cw <= w && ch > 0 && ch <= h {
            let top = s.below(u64::from(h - ch + 1)) as u32;
            let left = s.below(u64::from(w - cw + 1)) as u32;
            return (top, left, ch, cw);
        }
    }
    // Fall back to a central crop of the closest allowed aspect ratio.
    let in_ratio = w as f64 / h as f64;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, (w as f64 / ratio.0).round_ties_even() as u32)
    } else if in_ratio > ratio.1 {
        ((h as f64 * ratio.1).round_ties_even() as u32, h)
    } else {
        (w, h)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_crops_stay_inside_and_follow_the_bounds() {
        let mut s = lth_rng::Stream::new(1, "t", 0);
        for _ in 0..2000 {
            let (top, left, ch, cw) = resized_crop(&mut s, 500, 375, (0.1, 1.0), (0.8, 1.25));
            assert!(top + ch <= 375 && left + cw <= 500);
            let area = (ch * cw) as f64 / (500.0 * 375.0);
            assert!((0.09..=1.0).contains(&area), "area fraction {area}");
        }
        // A very wide image never fits a square-ish crop of its whole area: it falls back to a
        // central crop of the widest allowed ratio, 10 × round(12.5) = 12 (Python rounds half to
        // even), at left (4000 − 12) / 2.
        let mut s = lth_rng::Stream::new(2, "t", 0);
        assert_eq!(
            resized_crop(&mut s, 4000, 10, (0.99, 1.0), (0.8, 1.25)),
            (0, 1994, 10, 12)
        );
    }
}
