//! Seeded random streams for everything lth draws: data orders, augmentations, initial weights,
//! random masks.
//!
//! Each draw is addressed by a seed and a stream number (an epoch, a hash of a parameter name), so
//! it is a pure function of them: the same on every device and thread, and computable without the
//! draws before it. The generator is ChaCha8, whose output is fixed by its specification; the
//! shuffle and the distributions are written out here rather than taken from a general-purpose
//! library, so that a dependency upgrade can never change a stored run's data order or weights.
//! Tests pin their outputs.
//!
//! ```
//! use lth_rng::{Stream, permutation};
//! // The data order of epoch 3 under seed 7, computed directly (epochs 0-2 are not replayed).
//! let order = permutation(10, 7, "data_order", 3);
//! assert_eq!(order, permutation(10, 7, "data_order", 3));
//! let mut sorted = order.clone();
//! sorted.sort_unstable();
//! assert_eq!(sorted, (0..10).collect::<Vec<i64>>());
//! // A parameter's initial values depend on the seed and its name only.
//! let w = Stream::named(1, "init", "fc.weight").normal(4, 0.1);
//! assert_eq!(w, Stream::named(1, "init", "fc.weight").normal(4, 0.1));
//! assert_ne!(w, Stream::named(1, "init", "fc.bias").normal(4, 0.1));
//! ```

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A generator: one stream of one seed within one domain.
///
/// The domain (`"data_order"`, `"init"`, …) separates uses, so that an initialisation seed and a
/// data-order seed that happen to be equal never share random numbers.
#[derive(Debug, Clone)]
pub struct Stream(ChaCha8Rng);

impl Stream {
    /// The generator of stream `index` of `seed` in `domain`.
    pub fn new(seed: u64, domain: &str, index: u64) -> Stream {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(domain));
        rng.set_stream(index);
        Stream(rng)
    }

    /// The generator of the stream named `name` (hashed with FNV-1a) of `seed` in `domain`.
    pub fn named(seed: u64, domain: &str, name: &str) -> Stream {
        Stream::new(seed, domain, fnv1a(name))
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform draw from `0..n` (n ≥ 1). The multiply-shift bias is below n / 2^64.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform draw from [0, 1) with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `n` draws from U(lo, hi), as `f32`.
    pub fn uniform(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n)
            .map(|_| (lo + (hi - lo) * self.unit()) as f32)
            .collect()
    }

    /// `n` draws from N(0, std²), as `f32`, by the Box–Muller transform (two draws per pair of
    /// uniforms).
    pub fn normal(&mut self, n: usize, std: f64) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            // 1 − unit() lies in (0, 1], so the logarithm is finite.
            let r = (-2.0 * (1.0 - self.unit()).ln()).sqrt() * std;
            let theta = std::f64::consts::TAU * self.unit();
            out.push((r * theta.cos()) as f32);
            out.push((r * theta.sin()) as f32);
        }
        out.truncate(n);
        out
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<i64> {
        let mut p: Vec<i64> = (0..n as i64).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// A uniformly random permutation of `0..n` from stream `index` of `seed` in `domain`.
pub fn permutation(n: usize, seed: u64, domain: &str, index: u64) -> Vec<i64> {
    Stream::new(seed, domain, index).permutation(n)
}

/// 64-bit FNV-1a: a stable hash of a name into a stream number.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn outputs_are_pinned() {
        // A change here renames nothing but silently changes every stored run's data order and
        // initial weights: it must never happen by accident.
        assert_eq!(
            permutation(8, 1, "data_order", 0),
            vec![6, 7, 4, 2, 3, 5, 1, 0]
        );
        assert_eq!(fnv1a("fc.weight"), 0x79fb_28a7_5603_c7a0);
        let n = Stream::named(7, "init", "fc.weight").normal(3, 1.0);
        assert_eq!(n, vec![0.135_335_46, 0.500_769_56, 0.287_230_97]);
    }

    #[test]
    fn streams_differ() {
        let p = |seed, domain, index| permutation(100, seed, domain, index);
        assert_ne!(p(1, "a", 0), p(1, "a", 1));
        assert_ne!(p(1, "a", 0), p(2, "a", 0));
        assert_ne!(p(1, "a", 0), p(1, "b", 0));
        assert_eq!(p(3, "a", 7), p(3, "a", 7));
    }

    #[test]
    fn normal_draws_have_the_asked_moments() {
        let x = Stream::new(3, "t", 0).normal(200_001, 2.0);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.02, "std {}", var.sqrt());
        let u = Stream::new(3, "t", 1).uniform(10_000, -1.0, 3.0);
        assert!(u.iter().all(|&v| (-1.0..3.0).contains(&v)));
    }

    proptest! {
        #[test]
        fn is_a_permutation(n in 0usize..500, seed: u64, stream in 0u64..1000) {
            let mut p = permutation(n, seed, "t", stream);
            p.sort_unstable();
            prop_assert_eq!(p, (0..n as i64).collect::<Vec<_>>());
        }
    }
}
