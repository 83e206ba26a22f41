// The 10-op chain of bench_capture written by hand as one pass with xsimd.
// Compiled once per instruction set (HAND_ARCH names the function). It calls
// the math ember's kernels call (xsimd's exp, ember's float32 tanh of
// lib/ops/math.h), so the comparison measures the loop, not the math library.
#include <xsimd/xsimd.hpp>

#include "ops/math.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

void HAND_ARCH(const float* x, float* out, int64_t b, int64_t e) {
  using B = xsimd::batch<float, xsimd::default_arch>;
  constexpr int64_t L = B::size;
  auto step = [](B v) {
    B t = v * B(1.5f) + B(0.5f);
    t = xsimd::max(t, B(0.f));
    t = ember::ops::tanh_f32(t * v - B(0.25f));
    t = t * B(0.75f) + v;
    t = B(1.f) / (B(1.f) + xsimd::exp(-t));
    return t * t;
  };
  int64_t i = b;
  // Four independent vectors per iteration: their long exp/tanh dependency
  // chains overlap (the fused loop of ember does the same).
  for (; i + 4 * L <= e; i += 4 * L) {
    const B r0 = step(B::load_unaligned(x + i));
    const B r1 = step(B::load_unaligned(x + i + L));
    const B r2 = step(B::load_unaligned(x + i + 2 * L));
    const B r3 = step(B::load_unaligned(x + i + 3 * L));
    r0.store_unaligned(out + i);
    r1.store_unaligned(out + i + L);
    r2.store_unaligned(out + i + 2 * L);
    r3.store_unaligned(out + i + 3 * L);
  }
  for (; i + L <= e; i += L) step(B::load_unaligned(x + i)).store_unaligned(out + i);
  for (; i < e; ++i) {
    float t = std::max(x[i] * 1.5f + 0.5f, 0.f);
    t = ember::ops::tanh_f32(t * x[i] - 0.25f) * 0.75f + x[i];
    t = 1.f / (1.f + std::exp(-t));
    out[i] = t * t;
  }
}
