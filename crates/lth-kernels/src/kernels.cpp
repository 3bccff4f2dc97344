// Fused CPU kernels of the learned-supermask step (see lib.rs): each replaces a chain of ATen
// element-wise operations by one pass, computing the same IEEE operations in the same order, so its
// results equal the chain's bit for bit. Loops run on libtorch's intra-op threads (at::parallel_for).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace {

thread_local std::string last_error;

// Elements per task of the parallel loops: below it, one thread does the work.
constexpr int64_t kGrain = 32768;

// Calls f with one std::true_type or std::false_type per run-time switch, in order, so that each
// combination of the switches is its own instantiation: a loop without branches, which the compiler
// vectorises.
template <typename F>
void with_switches(F&& f) {
  f();
}
template <typename F, typename... Rest>
void with_switches(F&& f, bool first, Rest... rest) {
  if (first) {
    with_switches([&](auto... t) { f(std::true_type{}, t...); }, rest...);
  } else {
    with_switches([&](auto... t) { f(std::false_type{}, t...); }, rest...);
  }
}

// SGD's direction from the step's gradient d, as torch.optim.SGD (dampening 0): with momentum,
// buf = buf·μ + d and then buf·μ + d (Nesterov) or buf; without, d.
template <bool Momentum, bool Nesterov>
inline float sgd_direction(float* buf, int64_t i, float momentum, float d) {
  if constexpr (Momentum) {
    const float v = buf[i] * momentum + d;
    buf[i] = v;
    return Nesterov ? v * momentum + d : v;
  } else {
    return d;
  }
}

// Wellons' lowbias32 in signed 32-bit arithmetic with wrapping products and arithmetic shifts:
// lth_train::supermask::hash32.
inline int32_t hash32(int32_t x) {
  x ^= x >> 16;
  x = static_cast<int32_t>(static_cast<uint32_t>(x) * 0x7feb352du);
  x ^= x >> 15;
  x = static_cast<int32_t>(static_cast<uint32_t>(x) * 0x846ca68bu);
  x ^= x >> 16;
  return x;
}

const float* in(const void* t) { return static_cast<const at::Tensor*>(t)->data_ptr<float>(); }
float* out(const void* t) { return static_cast<const at::Tensor*>(t)->data_ptr<float>(); }

template <typename F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return 1;
}

// Bernoulli draws: m[i] = [y[i] > u], u = (hash32((first + i) ^ key) & (2^24 - 1)) / 2^24.
void bernoulli_range(const float* y, float* m, int32_t key, int64_t first, int64_t begin,
                     int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const int32_t u = hash32(static_cast<int32_t>(first + i) ^ key) & 0xffffff;
    m[i] = y[i] > static_cast<float>(u) * (1.0f / 16777216.0f) ? 1.0f : 0.0f;
  }
}

// The masked kernel: k = w ⊙ m (ATen's product: w·0 is a zero with w's sign).
void apply_range(const float* w, const float* m, float* k, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) k[i] = w[i] * m[i];
}

// ∂L/∂s of a Bernoulli mask: ((g ⊙ w) ⊙ (1 − y)) ⊙ y, ATen's sigmoid_backward of g ⊙ w.
void bernoulli_grad_range(const float* g, const float* w, const float* y, float* gs, int64_t begin,
                          int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float gw = g[i] * w[i];
    gs[i] = gw * (1.0f - y[i]) * y[i];
  }
}

// One pass over positions [b, e) of a layer: writes the mask m = [|s| ≥ tp] (and k = w ⊙ m when k
// is not null) for the previous threshold tp, counts the |s| above h, and appends the positions of
// those in [l, h] to `out`. With l ≤ tp ≤ h and the new threshold t in [l, h], only the appended
// positions can have a different mask under t. With SSE2 (every x86-64), four values at a time:
// |s| by clearing the sign bit (what fabs does), the tests as bit masks, and the scalar gather only
// where the window's mask is not empty (for a narrow window, rarely).
// The number of bits set in each 4-bit value (a table: without -mpopcnt, __builtin_popcount is a
// call into libgcc, which cost edge-popup's step as much as the scan's own arithmetic).
constexpr int8_t kBitsOf4[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};

int64_t scan(const float* sp, const float* wp, float* mp, float* kp, int64_t b, int64_t e, float l,
             float h, float tp, std::vector<int64_t>& out) {
  int64_t count = 0, i = b;
#if defined(__SSE2__)
  const __m128 magnitude = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
  const __m128 vl = _mm_set1_ps(l), vh = _mm_set1_ps(h), vt = _mm_set1_ps(tp);
  const __m128 one = _mm_set1_ps(1.0f);
  for (; i + 4 <= e; i += 4) {
    const __m128 a = _mm_and_ps(_mm_loadu_ps(sp + i), magnitude);
    const __m128 m = _mm_and_ps(_mm_cmpge_ps(a, vt), one);
    _mm_storeu_ps(mp + i, m);
    if (kp) _mm_storeu_ps(kp + i, _mm_mul_ps(_mm_loadu_ps(wp + i), m));
    count += kBitsOf4[_mm_movemask_ps(_mm_cmpgt_ps(a, vh))];
    int inside = _mm_movemask_ps(_mm_and_ps(_mm_cmpge_ps(a, vl), _mm_cmple_ps(a, vh)));
    for (int j = 0; inside != 0; ++j, inside >>= 1) {
      if (inside & 1) out.push_back(i + j);
    }
  }
#endif
  for (; i < e; ++i) {
    const float a = std::fabs(sp[i]);
    mp[i] = a >= tp ? 1.0f : 0.0f;
    if (kp) kp[i] = wp[i] * mp[i];
    count += a > h;
    if (a >= l && a <= h) out.push_back(i);
  }
  return count;
}

// The value at position `p` of `v` sorted in decreasing order, with [0, p) ≥ it ≥ (p, end).
float place(std::vector<float>& v, size_t p) {
  std::nth_element(v.begin(), v.begin() + p, v.end(), std::greater<float>());
  return v[p];
}

// The window of the next step's search from `v` (just placed at `p`, decreasing): the values
// `margin` ranks above and below position p where `v` has them, else `hi`/`lo` unchanged.
void recentre(std::vector<float>& v, size_t p, size_t margin, float* lo, float* hi) {
  if (p >= margin) {
    std::nth_element(v.begin(), v.begin() + (p - margin), v.begin() + p, std::greater<float>());
    *hi = v[p - margin];
  }
  if (p + margin < v.size()) {
    std::nth_element(v.begin() + p + 1, v.begin() + p + margin, v.end(), std::greater<float>());
    *lo = v[p + margin];
  }
}

// The operands of lth_score_sgd.
struct ScoreSgd {
  const float *g, *w, *y;
  float *p, *buf;
  float lr, momentum, weight_decay;
};

// lth_score_sgd over positions [b, e), one loop per combination of the switches. ATen's sign (+0 at
// ±0 and NaN) without a branch: (s > 0) − (s < 0).
template <bool EdgePopup, bool Momentum, bool Decay, bool Nesterov>
void score_sgd_range(const ScoreSgd& k, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    const float s = k.p[i];
    float d;
    if constexpr (EdgePopup) {
      const float sign = static_cast<float>(s > 0.0f) - static_cast<float>(s < 0.0f);
      d = k.g[i] * (sign * k.w[i]);
    } else {
      const float gw = k.g[i] * k.w[i];
      d = gw * (1.0f - k.y[i]) * k.y[i];
    }
    if constexpr (Decay) d = d + s * k.weight_decay;
    k.p[i] = s - sgd_direction<Momentum, Nesterov>(k.buf, i, k.momentum, d) * k.lr;
  }
}


// The operands of lth_sgd_step and lth_adam_step: a model's flat parameters p and gradients g, the
// flat mask (null without one), and the optimiser's flat buffers (b1: SGD's momentum or Adam's
// exp_avg; b2: Adam's exp_avg_sq). The scalars are float, as ATen's CPU kernels convert a scalar
// operand of a float tensor.
struct Step {
  float *p, *g, *b1, *b2;
  const float* mask;
  float weight_decay, lr, momentum;
  float lerp_weight, beta2, one_minus_beta2, bias2_sqrt, eps, step_size;
};

// The gradient as lth_train::Optimizer::step leaves it in its buffer: g ⊙ mask, then + p·wd.
template <bool Mask, bool Decay>
inline float masked_decayed(const Step& k, int64_t i) {
  float g = k.g[i];
  if constexpr (Mask) g = g * k.mask[i];
  if constexpr (Decay) g = g + k.p[i] * k.weight_decay;
  k.g[i] = g;
  return g;
}

// lth_sgd_step over positions [b, e), one loop per combination of the switches (vectorised by the
// compiler, no contraction): buf = buf·μ + g; u = buf·μ + g (Nesterov), buf, or g without
// momentum; p = (p − u·lr) ⊙ mask.
template <bool Mask, bool Decay, bool Momentum, bool Nesterov>
void sgd_range(const Step& k, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    const float g = masked_decayed<Mask, Decay>(k, i);
    float p = k.p[i] - sgd_direction<Momentum, Nesterov>(k.b1, i, k.momentum, g) * k.lr;
    if constexpr (Mask) p = p * k.mask[i];
    k.p[i] = p;
  }
}

#if defined(__x86_64__)
// One element of lth_adam_step's first pass: ATen's lerp with a weight below 0.5 is one fused
// multiply-add in its AVX2 and AVX-512 kernels, fma(w, g − m, m); the rest rounds operation by
// operation.
template <bool Mask, bool Decay>
__attribute__((target("avx2,fma"))) inline void moments_one(const Step& k, int64_t i) {
  const float g = masked_decayed<Mask, Decay>(k, i);
  const float m = __builtin_fmaf(k.lerp_weight, g - k.b1[i], k.b1[i]);
  k.b1[i] = m;
  k.b2[i] = k.b2[i] * k.beta2 + (g * g) * k.one_minus_beta2;
}

// lth_adam_step's first pass over positions [b, e): the gradient, m and v; eight at a time with
// AVX2 and FMA, the rest one by one, every element the same operations.
template <bool Mask, bool Decay>
__attribute__((target("avx2,fma"))) void moments_range(const Step& k, int64_t b, int64_t e) {
  int64_t i = b;
  const __m256 w = _mm256_set1_ps(k.lerp_weight), b2 = _mm256_set1_ps(k.beta2),
               c2 = _mm256_set1_ps(k.one_minus_beta2), wd = _mm256_set1_ps(k.weight_decay);
  for (; i + 8 <= e; i += 8) {
    __m256 g = _mm256_loadu_ps(k.g + i);
    if constexpr (Mask) g = _mm256_mul_ps(g, _mm256_loadu_ps(k.mask + i));
    if constexpr (Decay) g = _mm256_add_ps(g, _mm256_mul_ps(_mm256_loadu_ps(k.p + i), wd));
    _mm256_storeu_ps(k.g + i, g);
    const __m256 m0 = _mm256_loadu_ps(k.b1 + i);
    _mm256_storeu_ps(k.b1 + i, _mm256_fmadd_ps(w, _mm256_sub_ps(g, m0), m0));
    _mm256_storeu_ps(k.b2 + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(k.b2 + i), b2),
                                             _mm256_mul_ps(_mm256_mul_ps(g, g), c2)));
  }
  for (; i < e; ++i) moments_one<Mask, Decay>(k, i);
}
#endif

#if defined(__x86_64__)
// lth_adam_step's last pass over [b, e), given r = √v (ATen's): d = r / √(1 − β2^t) + ε;
// p = (p − (m / d)·step_size) ⊙ mask; eight at a time with AVX2 (its divisions correctly rounded,
// as ATen's), the rest one by one.
template <bool Mask>
__attribute__((target("avx2,fma"))) void adam_update_range(const Step& k, const float* r,
                                                           int64_t b, int64_t e) {
  int64_t i = b;
  const __m256 s2 = _mm256_set1_ps(k.bias2_sqrt), eps = _mm256_set1_ps(k.eps),
               ss = _mm256_set1_ps(k.step_size);
  for (; i + 8 <= e; i += 8) {
    const __m256 d = _mm256_add_ps(_mm256_div_ps(_mm256_loadu_ps(r + i), s2), eps);
    __m256 p = _mm256_sub_ps(_mm256_loadu_ps(k.p + i),
                             _mm256_mul_ps(_mm256_div_ps(_mm256_loadu_ps(k.b1 + i), d), ss));
    if constexpr (Mask) p = _mm256_mul_ps(p, _mm256_loadu_ps(k.mask + i));
    _mm256_storeu_ps(k.p + i, p);
  }
  for (; i < e; ++i) {
    const float d = r[i] / k.bias2_sqrt + k.eps;
    float p = k.p[i] - (k.b1[i] / d) * k.step_size;
    if constexpr (Mask) p = p * k.mask[i];
    k.p[i] = p;
  }
}

// Whether lth_adam_step gives ATen's bits here: this CPU has AVX2 and FMA, and ATen dispatches its
// element-wise kernels to AVX2 or AVX-512 (whose lerp is the fused multiply-add above; with
// ATEN_CPU_CAPABILITY=default it rounds twice).
bool adam_exact() {
  static const bool exact = [] {
    const std::string cap = at::get_cpu_capability();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           (cap == "AVX2" || cap == "AVX512");
  }();
  return exact;
}
#endif


}  // namespace

extern "C" {

// The message of this thread's last failed call.
const char* lth_kernels_last_error() { return last_error.c_str(); }

// m = [y > u] for the flat float tensors y (σ of the scores) and m, u drawn for counters
// first, first + 1, … under `key`; with w and k (both or neither null), also k = w ⊙ m in the same
// pass. Returns 0, or 1 with the message in lth_kernels_last_error.
int lth_bernoulli_mask(const void* y, int32_t key, int64_t first, const void* m, const void* w,
                       const void* k) {
  return guarded([&] {
    const float* yp = in(y);
    float* mp = out(m);
    const float* wp = w ? in(w) : nullptr;
    float* kp = k ? out(k) : nullptr;
    const int64_t n = static_cast<const at::Tensor*>(y)->numel();
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      bernoulli_range(yp, mp, key, first, b, e);
      if (kp) apply_range(wp, mp, kp, b, e);
    });
  });
}

// gs = ((g ⊙ w) ⊙ (1 − y)) ⊙ y over flat float tensors of one size.
int lth_bernoulli_grad(const void* g, const void* w, const void* y, const void* gs) {
  return guarded([&] {
    const float *gp = in(g), *wp = in(w), *yp = in(y);
    float* op = out(gs);
    const int64_t n = static_cast<const at::Tensor*>(g)->numel();
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      bernoulli_grad_range(gp, wp, yp, op, b, e);
    });
  });
}

// Edge-popup's mask of one layer: m = [|s| ≥ t] with t the `keep`-th largest |s| (all kept when
// keep ≥ n), and with w and k (both or neither null) the masked kernel k = w ⊙ m in the same pass.
// `lo`, `hi` carry a window of |s| values from the previous call that should hold t, and `prev`
// that call's threshold: one pass writes the mask (and kernel) under `prev`, counts the values
// above `hi` and gathers the positions of those in [lo, hi]; t is selected among the gathered
// values, and only their mask entries are rewritten. When t is outside the window (or lo > hi, the
// first call), every |s| is searched and the mask is written again. Either way t is the exact
// keep-th largest value, so the mask is the same; the window is then recentred on t, `margin`
// ranks either side. `full` is set to whether every |s| was searched.
int lth_edge_popup_mask(const void* s, int64_t keep, int64_t margin, const void* m, const void* w,
                        const void* k, float* lo, float* hi, float* prev, int* full) {
  return guarded([&] {
    const float* sp = in(s);
    float* mp = out(m);
    const float* wp = w ? in(w) : nullptr;
    float* kp = k ? out(k) : nullptr;
    const int64_t n = static_cast<const at::Tensor*>(s)->numel();
    TORCH_CHECK(keep >= 1, "edge-popup keeps at least one weight");
    // With every weight kept, the threshold is below every |s|.
    float t = -1.0f;
    bool found = keep >= n, written = false;
    if (!found && *lo <= *hi) {
      const float l = *lo, h = *hi;
      const int threads = at::get_num_threads();
      std::vector<int64_t> above(threads, 0);
      std::vector<std::vector<int64_t>> gathered(threads);
      at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
        const int id = at::get_thread_num();
        above[id] += scan(sp, wp, mp, kp, b, e, l, h, *prev, gathered[id]);
      });
      int64_t over = 0;
      std::vector<int64_t> where;
      for (int id = 0; id < threads; ++id) {
        over += above[id];
        where.insert(where.end(), gathered[id].begin(), gathered[id].end());
      }
      if (over < keep && keep <= over + static_cast<int64_t>(where.size())) {
        std::vector<float> window(where.size());
        for (size_t j = 0; j < where.size(); ++j) window[j] = std::fabs(sp[where[j]]);
        const size_t p = static_cast<size_t>(keep - over - 1);
        t = place(window, p);
        recentre(window, p, static_cast<size_t>(margin), lo, hi);
        // Outside the window the mask is the same under t as under the previous threshold.
        for (const int64_t i : where) {
          mp[i] = std::fabs(sp[i]) >= t ? 1.0f : 0.0f;
          if (kp) kp[i] = wp[i] * mp[i];
        }
        found = written = true;
      }
    }
    *full = found ? 0 : 1;
    if (!found) {
      std::vector<float> all(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) all[i] = std::fabs(sp[i]);
      const size_t p = static_cast<size_t>(keep - 1);
      t = place(all, p);
      // Without `margin` ranks on a side, the window reaches to the end of that side.
      *lo = 0.0f;
      *hi = t;
      if (p < static_cast<size_t>(margin)) {
        for (size_t i = 0; i < p; ++i) *hi = std::max(*hi, all[i]);
      }
      recentre(all, p, static_cast<size_t>(margin), lo, hi);
    }
    // The window and its threshold stay a selection's (every weight kept selects nothing).
    if (keep < n) *prev = t;
    if (written) return;
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) mp[i] = std::fabs(sp[i]) >= t ? 1.0f : 0.0f;
      if (kp) apply_range(wp, mp, kp, b, e);
    });
  });
}

// ∂L/∂s of edge-popup's mask: gs = g ⊙ (sign(s) ⊙ w), with ATen's sign (+0 at ±0; sign(s) ⊙ w is
// exact, so this is the one rounding of g times it).
int lth_edge_popup_grad(const void* g, const void* w, const void* s, const void* gs) {
  return guarded([&] {
    const float *gp = in(g), *wp = in(w), *sp = in(s);
    float* op = out(gs);
    const int64_t n = static_cast<const at::Tensor*>(g)->numel();
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float x = sp[i];
        const float sign = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
        op[i] = gp[i] * (sign * wp[i]);
      }
    });
  });
}

// The scores' gradient of a supermask and their SGD step in one pass, for the flat float tensors
// g (the kernel's gradient), w (the frozen weights), p (the scores, updated in place), y (σ(p) of
// the mask pass, Bernoulli only) and buf (the momentum buffer, or null without momentum). Per
// element: gs = ((g ⊙ w) ⊙ (1 − y)) ⊙ y (Bernoulli) or g ⊙ (sign(p) ⊙ w) (edge-popup); then
// lth_train::Optimizer::step's SGD, operation by operation: d = gs + p·wd (with `decay`);
// buf = buf·μ + d; u = buf·μ + d (Nesterov) or buf; p = p − u·lr. The scalars are float, as ATen's
// CPU kernels convert a scalar operand of a float tensor.
int lth_score_sgd(int edge_popup, const void* g, const void* w, const void* y, const void* p,
                  const void* buf, float lr, float momentum, int decay, float weight_decay,
                  int nesterov) {
  return guarded([&] {
    const float *gp = in(g), *wp = in(w), *yp = y ? in(y) : nullptr;
    float* pp = out(p);
    float* bp = buf ? out(buf) : nullptr;
    const int64_t n = static_cast<const at::Tensor*>(g)->numel();
    TORCH_CHECK(edge_popup || yp, "Bernoulli's gradient needs σ(s)");
    const ScoreSgd k{gp, wp, yp, pp, bp, lr, momentum, weight_decay};
    with_switches(
        [&](auto ep, auto mom, auto dec, auto nes) {
          at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
            score_sgd_range<decltype(ep)::value, decltype(mom)::value, decltype(dec)::value,
                            decltype(nes)::value>(k, b, e);
          });
        },
        edge_popup != 0, bp != nullptr, decay != 0, nesterov != 0);
  });
}


// One SGD step of lth_train::Optimizer over flat float tensors of one size, operation by operation
// as its chain of ATen operations (PyTorch's torch.optim.SGD, dampening 0), in one pass: g = g ⊙ mask
// (with a mask), g = g + p·wd (with `decay`), both left in g as the chain leaves them; then
// buf = buf·μ + g and u = buf·μ + g (Nesterov) or buf (with a momentum buffer), else u = g;
// p = p − u·lr, then p ⊙ mask. `mask` and `buf` may be null.
int lth_sgd_step(const void* p, const void* g, const void* mask, const void* buf, float lr,
                 float momentum, int decay, float weight_decay, int nesterov) {
  return guarded([&] {
    const int64_t n = static_cast<const at::Tensor*>(p)->numel();
    const Step k{out(p), out(g), buf ? out(buf) : nullptr, nullptr, mask ? in(mask) : nullptr,
                 weight_decay, lr, momentum, 0, 0, 0, 0, 0, 0};
    with_switches(
        [&](auto ms, auto dec, auto mom, auto nes) {
          at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
            sgd_range<decltype(ms)::value, decltype(dec)::value, decltype(mom)::value,
                      decltype(nes)::value>(k, b, e);
          });
        },
        mask != nullptr, decay != 0, buf != nullptr, nesterov != 0);
  });
}

// Whether lth_adam_step runs here (see adam_exact): 1 or 0.
int lth_adam_available() {
#if defined(__x86_64__)
  return adam_exact() ? 1 : 0;
#else
  return 0;
#endif
}

// One Adam step of lth_train::Optimizer (PyTorch's torch.optim.Adam without amsgrad) over flat float
// tensors of one size, operation by operation as its chain of ATen operations, in three passes
// instead of a dozen: (1) g = g ⊙ mask, g = g + p·wd (left in g); m = lerp(m, g, 1 − β1);
// v = v·β2 + (g·g)·(1 − β2); (2) r = √v by ATen's own sqrt into `scratch` (MKL's, which is not
// always correctly rounded, so it is ATen's call that gives the chain's bits); (3) d = r / √(1 − β2^t)
// + ε; p = (p − (m / d)·(lr / (1 − β1^t))) ⊙ mask. `mask` may be null. Fails where
// lth_adam_available() is 0.
int lth_adam_step(const void* p, const void* g, const void* mask, const void* exp_avg,
                  const void* exp_avg_sq, const void* scratch, int decay, float weight_decay,
                  float lerp_weight, float beta2, float one_minus_beta2, float bias2_sqrt, float eps,
                  float step_size) {
  return guarded([&] {
#if defined(__x86_64__)
    TORCH_CHECK(adam_exact(), "the fused Adam step needs AVX2 and FMA, and ATen's AVX2 kernels");
    const int64_t n = static_cast<const at::Tensor*>(p)->numel();
    const Step k{out(p),       out(g),          out(exp_avg), out(exp_avg_sq),
                 mask ? in(mask) : nullptr,      weight_decay, 0, 0, lerp_weight, beta2,
                 one_minus_beta2, bias2_sqrt,    eps,          step_size};
    with_switches(
        [&](auto ms, auto dec) {
          at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
            moments_range<decltype(ms)::value, decltype(dec)::value>(k, b, e);
          });
        },
        mask != nullptr, decay != 0);
    const at::Tensor& r = *static_cast<const at::Tensor*>(scratch);
    at::sqrt_out(const_cast<at::Tensor&>(r), *static_cast<const at::Tensor*>(exp_avg_sq));
    const float* rp = in(scratch);
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      if (mask) {
        adam_update_range<true>(k, rp, b, e);
      } else {
        adam_update_range<false>(k, rp, b, e);
      }
    });
#else
    TORCH_CHECK(false, "the fused Adam step runs on x86-64 only");
#endif
  });
}

}  // extern "C"
