#pragma once
// Math functions ember computes itself rather than through xsimd, for
// scalars and xsimd batches alike (the functors in functors.h call them).
// Internal linkage for the reason of Note [Functors have internal linkage].
//
// Note [float32 tanh]
// ~~~~~~~~~~~~~~~~~~~
// xsimd's tanh computes a polynomial for |x| < 0.625 and 1 - 2/(1 + exp(2x))
// above, both for a batch that straddles 0.625, behind two branches: about 40
// instructions and a division per vector. Ours is one rational function,
//     tanh(x) = x P(x²) / Q(x²),   deg P = deg Q = 4,
// with |x| >= 9.02 mapped to ±1 (tanh(x) rounds to 1 in float32 from 9.011 on):
// 15 instructions and the same one division, 2.1x faster in a loop that stays
// in L1, and the transcendental work of a fused elementwise chain is what
// bounds its speed (benchmarks/README.md).
// The coefficients are a relative minimax fit of tanh(x)/x on [0, 9.02]
// (Lawson's iteratively reweighted least squares on the linearised error, in
// 40-digit arithmetic): approximation error 3.0e-8, half an ulp of float32.
// Measured over every float32 in [1e-6, 9.1] against double tanh: mean error
// 0.35 ulp, 99.2% of results within 2 ulp, at most 5.3 ulp (xsimd: 1.35 ulp;
// the rational tanh of Eigen/XLA that TF uses has errors of the same order).
// The function is odd by construction (P and Q take x²), tanh(±0) = ±0,
// tanh(±inf) = ±1 and NaN stays NaN. tests/lib/test_elementwise.cpp checks the
// bound on a sweep of floats. float64 keeps xsimd's tanh.
#include <cmath>
#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace ember::ops {
namespace {

template <class T>
inline T tanh_f32(T x) {
  const T s = x * x;
  T p = xsimd::fma(T(1.3495843748106652e-8f), s, T(2.0721265101738928e-5f));
  p = xsimd::fma(p, s, T(3.5028183434863238e-3f));
  p = xsimd::fma(p, s, T(1.3387243735303989e-1f));
  p = xsimd::fma(p, s, T(1.0f));
  T q = xsimd::fma(T(7.8374428572511932e-7f), s, T(3.2971746836020185e-4f));
  q = xsimd::fma(q, s, T(2.5904894170890979e-2f));
  q = xsimd::fma(q, s, T(4.6720566472893998e-1f));
  q = xsimd::fma(q, s, T(1.0f));
  const T r = (x * p) / q;
  constexpr float kSaturate = 9.02f;
  if constexpr (std::is_same_v<T, float>)
    return std::fabs(x) >= kSaturate ? std::copysign(1.0f, x) : r;
  else
    return xsimd::select(xsimd::abs(x) >= T(kSaturate), xsimd::copysign(T(1.0f), x), r);
}

}  // namespace
}  // namespace ember::ops
