//! [`Split`]: one split's images and labels, what every format's reader gives.

use tch::Tensor;

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
