#pragma once
// Host-side 16-bit floating point element types: ember::Half (IEEE 754
// binary16, dtype float16) and ember::BFloat16 (the top half of a float32,
// dtype bfloat16). They store 16 bits and convert to and from float exactly
// as CUDA's __half / __nv_bfloat16 do (round to nearest even; NaN stays NaN),
// so a tensor moved between CPU and GPU keeps its bits.
#include <bit>
#include <cstdint>

#include <ember/dtype.h>

namespace ember {

namespace detail {

constexpr uint16_t float_to_half_bits(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // inf or NaN (a NaN keeps a set mantissa bit)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u));
  if (abs >= 0x477ff000u)  // rounds to >= 65520: overflow to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // < half of the smallest subnormal
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exp;  // value = mant * 2^(exp - 150) = m * 2^-24
    const uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    const uint32_t r = h + ((rem > half || (rem == half && (h & 1u))) ? 1u : 0u);
    return static_cast<uint16_t>(sign | r);
  }
  // Normal: rebias the exponent (127 -> 15) and round 23 -> 10 mantissa bits.
  const uint32_t base = abs - 0x38000000u;  // exponent rebased, still 23-bit mantissa
  const uint32_t h = base >> 13;
  const uint32_t rem = base & 0x1fffu;
  const uint32_t r = h + ((rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ? 1u : 0u);
  return static_cast<uint16_t>(sign | r);
}

constexpr float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return std::bit_cast<float>(sign);
    // Subnormal: normalize.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    return std::bit_cast<float>(sign | ((112u - static_cast<uint32_t>(e)) << 23) | ((mant & 0x3ffu) << 13));
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

constexpr uint16_t float_to_bfloat16_bits(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  const uint32_t r = x + 0x7fffu + ((x >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(r >> 16);
}

constexpr float bfloat16_bits_to_float(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

}  // namespace detail

/// IEEE binary16 (dtype float16): 1 sign, 5 exponent, 10 mantissa bits.
struct Half {
  uint16_t bits = 0;
  Half() = default;
  constexpr Half(float f) : bits(detail::float_to_half_bits(f)) {}  // NOLINT: implicit like float
  constexpr operator float() const { return detail::half_bits_to_float(bits); }
  static constexpr Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
};

/// bfloat16 (dtype bfloat16): float32's sign and exponent, 7 mantissa bits.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  constexpr BFloat16(float f) : bits(detail::float_to_bfloat16_bits(f)) {}  // NOLINT
  constexpr operator float() const { return detail::bfloat16_bits_to_float(bits); }
  static constexpr BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

template <> constexpr DType dtype_of<Half>() { return DType::float16; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::bfloat16; }

}  // namespace ember
