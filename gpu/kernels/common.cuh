#pragma once
// Shared device-side helpers: the C++ type of each dtype, conversions through
// a compute type (float for float16/bfloat16), offset calculators and launch
// sizes.
#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/launch.h"

namespace ember::gpu {

using half = __half;
using bf16 = __nv_bfloat16;

template <class T>
inline constexpr bool kHalfLike = std::is_same_v<T, half> || std::is_same_v<T, bf16>;
template <class T>
inline constexpr bool kFloatLike = std::is_floating_point_v<T> || kHalfLike<T>;

/// The type arithmetic on T runs in: float for the 16-bit floats, else T.
template <class T>
struct AccOf { using type = T; };
template <> struct AccOf<half> { using type = float; };
template <> struct AccOf<bf16> { using type = float; };
template <class T>
using acc_t = typename AccOf<T>::type;

template <class To, class From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (kHalfLike<From>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, half>) {
    if constexpr (std::is_same_v<From, double>) return __double2half(v);
    else return __float2half_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bf16>) {
    if constexpr (std::is_same_v<From, double>) return __double2bfloat16(v);
    else return __float2bfloat16_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else {
    return static_cast<To>(v);
  }
}

/// Calls f.template operator()<T>() with the device type of `dt`.
template <class F>
void visit(DType dt, F&& f) {
  switch (dt) {
    case DType::bool_: f.template operator()<bool>(); break;
    case DType::uint8: f.template operator()<uint8_t>(); break;
    case DType::int32: f.template operator()<int32_t>(); break;
    case DType::int64: f.template operator()<int64_t>(); break;
    case DType::float16: f.template operator()<half>(); break;
    case DType::bfloat16: f.template operator()<bf16>(); break;
    case DType::float32: f.template operator()<float>(); break;
    case DType::float64: f.template operator()<double>(); break;
  }
}

inline constexpr int kThreads = 256;

inline unsigned grid_for(int64_t n, int64_t per_thread = 1) {
  int64_t blocks = (n + kThreads * per_thread - 1) / (kThreads * per_thread);
  if (blocks < 1) blocks = 1;
  // A grid-stride loop covers the rest: 132 SMs x 16 blocks keeps the chip busy.
  if (blocks > 65535 * 4) blocks = 65535 * 4;
  return static_cast<unsigned>(blocks);
}

}  // namespace ember::gpu
