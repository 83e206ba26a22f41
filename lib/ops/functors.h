#pragma once
// One functor per elementwise op. Each body serves plain scalars and
// xsimd::batch alike (xsimd overloads exp, log, ... for both), so the eager
// CPU kernels, their SIMD inner loops and fused code all call the same code.
//
// `kSimd` says whether the xsimd batch form exists for floating types; the
// others run a scalar loop (which the compiler vectorizes where it can).
//
// Note [Functors have internal linkage]: this header is compiled once per CPU
// arch (-mavx2, -mavx512f, ...). The functors live in an unnamed namespace so
// each arch's instantiations stay inside its own object file and the linker
// never swaps an AVX-512 copy into the baseline path.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "ops/math.h"

namespace ember::ops {
namespace {

template <class T>
struct IsBatch : std::false_type {};
template <class T, class A>
struct IsBatch<xsimd::batch<T, A>> : std::true_type {};
template <class T>
inline constexpr bool kIsBatch = IsBatch<T>::value;

template <class T>
struct ScalarOf {
  using type = T;
};
template <class T, class A>
struct ScalarOf<xsimd::batch<T, A>> {
  using type = T;
};

// select(): a ? b : c for scalars and batches.
template <class T>
inline T sel(bool c, T a, T b) {
  return c ? a : b;
}
template <class T, class A>
inline xsimd::batch<T, A> sel(const xsimd::batch_bool<T, A>& c, const xsimd::batch<T, A>& a,
                              const xsimd::batch<T, A>& b) {
  return xsimd::select(c, a, b);
}
template <class T>
inline auto is_nan(const T& x) {
  if constexpr (kIsBatch<T>)
    return xsimd::isnan(x);
  else if constexpr (std::is_floating_point_v<T>)
    return std::isnan(x);
  else
    return false;
}

struct Neg {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    if constexpr (std::is_same_v<T, uint8_t>)
      return static_cast<uint8_t>(0u - x);  // wraps like PyTorch
    else if constexpr (std::is_integral_v<T>)
      return static_cast<T>(0 - static_cast<std::make_unsigned_t<T>>(x));
    else
      return -x;
  }
};
struct Abs {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    if constexpr (std::is_unsigned_v<T>)
      return x;
    else if constexpr (std::is_integral_v<T>)
      return x < 0 ? Neg::apply(x) : x;
    else
      return xsimd::abs(x);
  }
};
struct Sign {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    if constexpr (std::is_unsigned_v<T>)
      return x > 0 ? T(1) : T(0);
    else
      return sel(x > T(0), T(1), sel(x < T(0), T(-1), x));  // keeps 0, -0 and NaN
  }
};
struct Exp {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::exp(x); }
};
struct Log {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::log(x); }
};
struct Log1p {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::log1p(x); }
};
struct Expm1 {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::expm1(x); }
};
struct Sqrt {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::sqrt(x); }
};
struct Rsqrt {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return T(1) / xsimd::sqrt(x); }
};
struct Sin {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::sin(x); }
};
struct Cos {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::cos(x); }
};
struct Tan {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::tan(x); }
};
struct Tanh {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    if constexpr (std::is_same_v<typename ScalarOf<T>::type, float>)
      return tanh_f32(x);  // Note [float32 tanh] in math.h
    else
      return xsimd::tanh(x);
  }
};
struct Sigmoid {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return T(1) / (T(1) + xsimd::exp(-x)); }
};
struct Erf {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return xsimd::erf(x); }
};
struct Floor {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    if constexpr (std::is_integral_v<T>)
      return x;
    else
      return xsimd::floor(x);
  }
};
struct Ceil {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    if constexpr (std::is_integral_v<T>)
      return x;
    else
      return xsimd::ceil(x);
  }
};
struct Round {  // half to even, like NumPy and PyTorch
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    if constexpr (std::is_integral_v<T>)
      return x;
    else
      return xsimd::nearbyint(x);
  }
};
struct Relu {  // NaN stays NaN
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    if constexpr (std::is_unsigned_v<T>)
      return x;
    else
      return sel(x < T(0), T(0), x);
  }
};
struct Gelu {  // the exact (erf) form, PyTorch's default
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) {
    using S = typename ScalarOf<T>::type;
    return T(S(0.5)) * x * (T(S(1)) + xsimd::erf(x * T(S(0.70710678118654752440))));
  }
};
struct Silu {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return x / (T(1) + xsimd::exp(-x)); }
};
struct Softplus {  // log(1 + exp(x)), linear above 20 as in PyTorch
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T x) { return sel(x > T(20), x, xsimd::log1p(xsimd::exp(x))); }
};
struct LogicalNot {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T x) { return !x; }
};

struct Add {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_same_v<T, bool>)
      return a || b;
    else if constexpr (std::is_integral_v<T>)  // wraps instead of signed-overflow UB
      return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) +
                            static_cast<std::make_unsigned_t<T>>(b));
    else
      return a + b;
  }
};
struct Sub {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) -
                            static_cast<std::make_unsigned_t<T>>(b));
    else
      return a - b;
  }
};
struct Mul {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_same_v<T, bool>)
      return a && b;
    else if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) *
                            static_cast<std::make_unsigned_t<T>>(b));
    else
      return a * b;
  }
};
struct Div {  // true division; integer inputs arrive here already as float
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T a, T b) { return a / b; }
};
struct Pow {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      // Integer power by squaring; a negative exponent gives the truncated
      // result (0 unless |a| == 1), never a crash.
      if constexpr (std::is_signed_v<T>) {
        if (b < 0) return a == 1 ? T(1) : (a == -1 ? ((b & 1) ? T(-1) : T(1)) : T(0));
      }
      using U = std::make_unsigned_t<T>;
      U base = static_cast<U>(a), r = 1;
      for (auto e = static_cast<U>(b); e; e >>= 1) {
        if (e & 1) r = static_cast<U>(r * base);
        base = static_cast<U>(base * base);
      }
      return static_cast<T>(r);
    } else if constexpr (!kIsBatch<T>) {
      return std::pow(a, b);
    } else {
      // xsimd 8's pow mishandles a zero base and odd exponents beyond 2^24, so
      // the C99 special cases are applied here: pow(|a|, b), then the sign for
      // odd integer b, NaN for a negative base and a fractional b.
      using S = typename ScalarOf<T>::type;
      const T zero(S(0)), one(S(1)), half(S(0.5));
      const T inf(std::numeric_limits<S>::infinity()), nan(std::numeric_limits<S>::quiet_NaN());
      const auto is_int = xsimd::trunc(b) == b;
      const auto odd = is_int & (xsimd::trunc(b * half) != b * half);
      const T mag = xsimd::pow(xsimd::abs(a), b);
      T r = sel(a < zero, sel(is_int, sel(odd, -mag, mag), nan), mag);
      // Zero base: 1, +-0 or +-inf (the sign kept for odd b).
      const T z = sel(b < zero, inf, zero);
      r = sel(a == zero, sel(odd, xsimd::copysign(z, a), z), r);
      r = sel((a == T(S(-1))) & xsimd::isinf(b), one, r);
      return sel((b == zero) | (a == one), one, r);
    }
  }
};
struct FloorDivide {
  static constexpr bool kSimd = false;
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) return 0;  // NumPy's answer; no SIGFPE
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) return Neg::apply(a);  // INT_MIN / -1 would trap
        T q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? T(q - 1) : q;
      } else {
        return a / b;
      }
    } else {
      return std::floor(a / b);
    }
  }
};
struct Remainder {  // the sign of the divisor, like Python and PyTorch
  static constexpr bool kSimd = false;
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) return 0;
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) return 0;
        T r = a % b;
        return (r != 0 && ((r < 0) != (b < 0))) ? T(r + b) : r;
      } else {
        return a % b;
      }
    } else {
      T r = std::fmod(a, b);
      return (r != 0 && ((r < 0) != (b < 0))) ? T(r + b) : r;
    }
  }
};
struct Maximum {  // NaN propagates
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_same_v<T, bool>)
      return a || b;
    else if constexpr (std::is_integral_v<T>)
      return b > a ? b : a;
    else
      return sel(is_nan(a) | is_nan(b), a + b, sel(b > a, b, a));
  }
};
struct Minimum {
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_same_v<T, bool>)
      return a && b;
    else if constexpr (std::is_integral_v<T>)
      return b < a ? b : a;
    else
      return sel(is_nan(a) | is_nan(b), a + b, sel(b < a, b, a));
  }
};
struct Eq {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a == b; }
};
struct Ne {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a != b; }
};
struct Lt {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a < b; }
};
struct Le {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a <= b; }
};
struct Gt {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a > b; }
};
struct Ge {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a >= b; }
};
struct LogicalAnd {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a && b; }
};
struct LogicalOr {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a || b; }
};
struct LogicalXor {
  static constexpr bool kSimd = false;
  template <class T>
  static bool apply(T a, T b) { return a != b; }
};
// Derivative kernels: a = the output gradient, b = the forward op's output y.
struct TanhBackward {  // g (1 - y^2)
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T g, T y) { return g * (T(1) - y * y); }
};
struct SigmoidBackward {  // g y (1 - y)
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T g, T y) { return g * (y * (T(1) - y)); }
};
struct ReluBackward {  // g where y > 0, else 0 (NaN y gives 0)
  static constexpr bool kSimd = true;
  template <class T>
  static T apply(T g, T y) { return sel(y > T(0), g, T(0)); }
};

}  // namespace
}  // namespace ember::ops
