//! Mixed-precision autocast with a chosen dtype: `autocast(device, || forward())` runs the closure
//! with ATen's autocast enabled for that device type in bfloat16, so matrix products and
//! convolutions run in bf16 while reductions and losses stay in f32 (PyTorch's
//! `torch.autocast(device_type, dtype=torch.bfloat16)`).
//!
//! tch's own `tch::autocast` only switches CUDA autocast on, in its default float16; this crate
//! binds the rest of `at::autocast` through a small C++ shim (`src/amp.cpp`). It is the only crate
//! of the workspace with `unsafe` code: two foreign calls whose arguments are plain integers.
//!
//! ```
//! use tch::{Device, Kind, Tensor};
//! let a = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
//! // Inside, matrix products run in bfloat16; outside, nothing changes.
//! let c = lth_amp::autocast_bf16(Device::Cpu, || a.matmul(&a));
//! assert_eq!(c.kind(), Kind::BFloat16);
//! assert_eq!(a.matmul(&a).kind(), Kind::Float);
//! ```
#![allow(unsafe_code)]

use std::os::raw::c_int;

use tch::Device;

unsafe extern "C" {
    fn lth_amp_enter(
        device: c_int,
        dtype: c_int,
        prev_enabled: *mut c_int,
        prev_dtype: *mut c_int,
    ) -> c_int;
    fn lth_amp_exit(device: c_int, prev_enabled: c_int, prev_dtype: c_int) -> c_int;
}

/// Runs `f` under bfloat16 autocast for `device`'s type (CPU or CUDA), restoring the previous
/// autocast state afterwards, also if `f` panics.
pub fn autocast_bf16<T>(device: Device, f: impl FnOnce() -> T) -> T {
    let d: c_int = if device.is_cuda() { 1 } else { 0 };
    let (mut enabled, mut dtype): (c_int, c_int) = (0, 0);
    // SAFETY: the shim takes integers and writes two integers through valid pointers.
    let entered = unsafe { lth_amp_enter(d, 0, &mut enabled, &mut dtype) };
    assert_eq!(entered, 0, "ATen refused to enter autocast");
    struct Exit(c_int, c_int, c_int);
    impl Drop for Exit {
        fn drop(&mut self) {
            // SAFETY: plain integers; restores the state read on entry.
            let _ = unsafe { lth_amp_exit(self.0, self.1, self.2) };
        }
    }
    let _exit = Exit(d, enabled, dtype);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn matmuls_run_in_bf16_inside_and_f32_outside() {
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
        let inside = autocast_bf16(Device::Cpu, || a.matmul(&b));
        assert_eq!(inside.kind(), Kind::BFloat16);
        // Nested use restores the enclosing state.
        let nested = autocast_bf16(Device::Cpu, || {
            let _ = autocast_bf16(Device::Cpu, || a.matmul(&b));
            a.matmul(&b)
        });
        assert_eq!(nested.kind(), Kind::BFloat16);
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
        let close = (inside.to_kind(Kind::Float) - a.matmul(&b))
            .abs()
            .max()
            .double_value(&[]);
        assert!(close < 0.1, "bf16 result far from f32: {close}");
    }
}
