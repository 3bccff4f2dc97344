// The part of ATen's autocast API that tch does not bind: enabling autocast for a chosen device type
// with a chosen reduced-precision dtype, and restoring the previous state afterwards.
#include <ATen/autocast_mode.h>

namespace {
at::DeviceType device_of(int device) { return device == 1 ? at::kCUDA : at::kCPU; }
at::ScalarType dtype_of(int dtype) { return dtype == 1 ? at::kHalf : at::kBFloat16; }
int code_of(at::ScalarType t) { return t == at::kHalf ? 1 : (t == at::kBFloat16 ? 0 : 2); }
}  // namespace

extern "C" {

// Enters autocast on `device` (0 CPU, 1 CUDA) with `dtype` (0 bfloat16, 1 float16), writing the
// previous state to the two out-parameters. Returns 0, or 1 if ATen threw.
int lth_amp_enter(int device, int dtype, int* prev_enabled, int* prev_dtype) {
  try {
    const auto d = device_of(device);
    *prev_enabled = at::autocast::is_autocast_enabled(d) ? 1 : 0;
    *prev_dtype = code_of(at::autocast::get_autocast_dtype(d));
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::set_autocast_dtype(d, dtype_of(dtype));
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return 1;
  }
}

// Leaves autocast, restoring the state `lth_amp_enter` reported. Returns 0, or 1 if ATen threw.
int lth_amp_exit(int device, int prev_enabled, int prev_dtype) {
  try {
    const auto d = device_of(device);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(d, prev_enabled != 0);
    if (prev_dtype != 2) {
      at::autocast::set_autocast_dtype(d, dtype_of(prev_dtype));
    }
    return 0;
  } catch (...) {
    return 1;
  }
}

}  // extern "C"
