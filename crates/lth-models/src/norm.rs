//! BatchNorm with PyTorch's names and defaults, and a per-model control of its momentum.
//!
//! The control exists for one purpose: re-estimating running statistics as an exact average over a
//! chosen set of batches (PyTorch's `momentum=None`), which linear interpolation between two
//! networks needs (the interpolation of two networks' statistics is not the statistics of the
//! interpolated network). Training always uses PyTorch's momentum of 0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// PyTorch's default BatchNorm momentum.
pub const MOMENTUM: f64 = 0.1;
/// PyTorch's default BatchNorm epsilon.
pub const EPS: f64 = 1e-5;

/// The momentum every BatchNorm layer of one model uses, shared by the layers.
#[derive(Debug, Clone)]
pub struct BnControl(Arc<AtomicU64>);

impl Default for BnControl {
    fn default() -> Self {
        BnControl(Arc::new(AtomicU64::new(MOMENTUM.to_bits())))
    }
}

impl BnControl {
    /// The current momentum.
    pub fn momentum(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Sets the momentum of every layer sharing this control.
    pub fn set_momentum(&self, m: f64) {
        self.0.store(m.to_bits(), Ordering::Relaxed);
    }
}
