#pragma once
// Device functors of elementwise.def, with the CPU functors' semantics
// (lib/ops/functors.h): integer ops wrap, floor_divide/remainder follow
// Python, maximum/minimum propagate NaN, round is half-to-even. They run on
// acc_t<T> (float for float16/bfloat16).
#include <cmath>
#include <type_traits>

#include "kernels/common.cuh"

namespace ember::gpu::fn {

template <class T>
__device__ __forceinline__ bool isnan_(T x) {
  if constexpr (std::is_floating_point_v<T>) return isnan(x);
  else return false;
}
template <class T>
__device__ __forceinline__ T wrap_neg(T x) {
  if constexpr (std::is_same_v<T, bool>) return x;
  else if constexpr (std::is_integral_v<T>) return static_cast<T>(0 - static_cast<std::make_unsigned_t<T>>(x));
  else return -x;
}

#define EMBER_FN1(Name, expr)                                 \
  struct Name {                                               \
    template <class T>                                        \
    __device__ __forceinline__ T operator()(T x) const { expr; } \
  };

EMBER_FN1(Neg, return wrap_neg(x))
EMBER_FN1(Abs, if constexpr (std::is_unsigned_v<T> || std::is_same_v<T, bool>) return x;
          else if constexpr (std::is_integral_v<T>) return x < 0 ? wrap_neg(x) : x; else return fabs(x))
EMBER_FN1(Sign, if constexpr (std::is_unsigned_v<T> || std::is_same_v<T, bool>) return x > 0 ? T(1) : T(0);
          else return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x))
EMBER_FN1(Exp, return exp(x))
EMBER_FN1(Log, return log(x))
EMBER_FN1(Log1p, return log1p(x))
EMBER_FN1(Expm1, return expm1(x))
EMBER_FN1(Sqrt, return sqrt(x))
EMBER_FN1(Rsqrt, return T(1) / sqrt(x))
EMBER_FN1(Sin, return sin(x))
EMBER_FN1(Cos, return cos(x))
EMBER_FN1(Tan, return tan(x))
EMBER_FN1(Tanh, return tanh(x))
EMBER_FN1(Sigmoid, return T(1) / (T(1) + exp(-x)))
EMBER_FN1(Erf, return erf(x))
EMBER_FN1(Floor, if constexpr (std::is_integral_v<T>) return x; else return floor(x))
EMBER_FN1(Ceil, if constexpr (std::is_integral_v<T>) return x; else return ceil(x))
EMBER_FN1(Round, if constexpr (std::is_integral_v<T>) return x; else return rint(x))
EMBER_FN1(Relu, if constexpr (std::is_unsigned_v<T> || std::is_same_v<T, bool>) return x;
          else return x < T(0) ? T(0) : x)
EMBER_FN1(Gelu, return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440))))
EMBER_FN1(Silu, return x / (T(1) + exp(-x)))
EMBER_FN1(Softplus, return x > T(20) ? x : log1p(exp(x)))
#undef EMBER_FN1

struct LogicalNot {
  template <class T>
  __device__ __forceinline__ bool operator()(T x) const { return !static_cast<bool>(x); }
};

#define EMBER_FN2(Name, expr)                                      \
  struct Name {                                                    \
    template <class T>                                             \
    __device__ __forceinline__ auto operator()(T a, T b) const { expr; } \
  };

template <class T>
using U = std::make_unsigned_t<std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>>;

EMBER_FN2(Add, if constexpr (std::is_same_v<T, bool>) return T(a || b);
          else if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<U<T>>(a) + static_cast<U<T>>(b));
          else return T(a + b))
EMBER_FN2(Sub, if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
            return static_cast<T>(static_cast<U<T>>(a) - static_cast<U<T>>(b));
          else return T(a - b))
EMBER_FN2(Mul, if constexpr (std::is_same_v<T, bool>) return T(a && b);
          else if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<U<T>>(a) * static_cast<U<T>>(b));
          else return T(a * b))
EMBER_FN2(Div, return T(a / b))
EMBER_FN2(Maximum, if constexpr (std::is_same_v<T, bool>) return T(a || b);
          else if constexpr (std::is_integral_v<T>) return b > a ? b : a;
          else return (isnan_(a) || isnan_(b)) ? T(a + b) : (b > a ? b : a))
EMBER_FN2(Minimum, if constexpr (std::is_same_v<T, bool>) return T(a && b);
          else if constexpr (std::is_integral_v<T>) return b < a ? b : a;
          else return (isnan_(a) || isnan_(b)) ? T(a + b) : (b < a ? b : a))
EMBER_FN2(Eq, return a == b)
EMBER_FN2(Ne, return a != b)
EMBER_FN2(Lt, return a < b)
EMBER_FN2(Le, return a <= b)
EMBER_FN2(Gt, return a > b)
EMBER_FN2(Ge, return a >= b)
EMBER_FN2(LogicalAnd, return static_cast<bool>(a) && static_cast<bool>(b))
EMBER_FN2(LogicalOr, return static_cast<bool>(a) || static_cast<bool>(b))
EMBER_FN2(LogicalXor, return static_cast<bool>(a) != static_cast<bool>(b))
EMBER_FN2(TanhBackward, return T(a * (T(1) - b * b)))
EMBER_FN2(SigmoidBackward, return T(a * (b * (T(1) - b))))
EMBER_FN2(ReluBackward, return b > T(0) ? a : T(0))
#undef EMBER_FN2

struct Pow {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if constexpr (std::is_signed_v<T>) {
        if (b < 0) return a == 1 ? T(1) : (a == -1 ? ((b & 1) ? T(-1) : T(1)) : T(0));
      }
      using V = U<T>;
      V base = static_cast<V>(a), r = 1;
      for (auto e = static_cast<V>(b); e; e >>= 1) {
        if (e & 1) r = static_cast<V>(r * base);
        base = static_cast<V>(base * base);
      }
      return static_cast<T>(r);
    } else {
      return pow(a, b);
    }
  }
};

struct FloorDivide {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) return 0;
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) return wrap_neg(a);
        T q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? T(q - 1) : q;
      } else {
        return a / b;
      }
    } else {
      return floor(a / b);
    }
  }
};

struct Remainder {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
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
      T r = fmod(a, b);
      return (r != 0 && ((r < 0) != (b < 0))) ? T(r + b) : r;
    }
  }
};

}  // namespace ember::gpu::fn
