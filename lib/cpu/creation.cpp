// Creation kernels: fill, arange, linspace, eye and the random ops.
//
// Note [Counter-based random numbers]: rand/randn/randint use Philox4x32-10,
// keyed by the generator's seed. Element g of a call at generator offset o
// reads counter block (o + g) / lanes, so a value depends only on (seed,
// offset, position): chunks run on any thread in any order, and a replay of a
// recorded call with the same attrs gives the same numbers.
//
// truncated_normal redraws a value outside (-2, 2) (TF's truncated_normal):
// try r of element g reads the same counter block with its third word set to
// r, so a value still depends only on (seed, offset, position), and try 0 is
// randn's draw.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "dispatch/dtype_visit.h"

namespace ember::cpu {

using dispatch::OpId;

namespace {

struct Philox {
  uint32_t v[4];
  Philox(uint64_t seed, uint64_t block, uint32_t round = 0) {
    uint32_t ctr[4] = {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), round, 0};
    uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
    for (int r = 0; r < 10; ++r) {
      const uint64_t p0 = uint64_t(0xD2511F53) * ctr[0];
      const uint64_t p1 = uint64_t(0xCD9E8D57) * ctr[2];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0];
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1];
      ctr[0] = n0;
      ctr[1] = static_cast<uint32_t>(p1);
      ctr[2] = n2;
      ctr[3] = static_cast<uint32_t>(p0);
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
    for (int i = 0; i < 4; ++i) v[i] = ctr[i];
  }
};

inline double u01_53(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((uint64_t(hi) << 32) | lo) >> 11) * 0x1.0p-53;
}

// Box-Muller on lanes l, l + 1 of element g's block (try `round`).
inline double normal_at(uint64_t seed, uint64_t g, uint32_t round) {
  Philox r(seed, g >> 1, round);
  const int l = static_cast<int>(g & 1) * 2;
  const double u1 = (static_cast<double>(r.v[l]) + 1.0) * 0x1.0p-32;  // (0, 1]
  const double u2 = static_cast<double>(r.v[l + 1]) * 0x1.0p-32;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// A try lands outside [-2, 2] with probability 0.0455; 64 misses in a row
// (p ~ 1e-86) never happen, and the clamp keeps the bound even then.
inline double truncated_at(uint64_t seed, uint64_t g) {
  double z = normal_at(seed, g, 0);
  for (uint32_t round = 1; std::abs(z) >= 2.0 && round < 64; ++round) z = normal_at(seed, g, round);
  return std::clamp(z, -2.0, 2.0);
}

template <class T>
void fill_range(T* p, int64_t n, int64_t g0, uint64_t seed, OpId op, int64_t low, int64_t high) {
  for (int64_t e = 0; e < n; ++e) {
    const uint64_t g = static_cast<uint64_t>(g0 + e);
    if (op == OpId::rand) {
      if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
        // As many random bits as the type has mantissa bits (11 or 8), so every
        // value is exact and below 1; rounding a float draw could give 1.0.
        constexpr int kBits = std::is_same_v<T, Half> ? 11 : 8;
        Philox r(seed, g >> 2);
        p[e] = static_cast<T>(static_cast<float>(r.v[g & 3] >> (32 - kBits)) * (1.0f / (1 << kBits)));
      } else if constexpr (std::is_same_v<T, float>) {
        Philox r(seed, g >> 2);
        p[e] = static_cast<float>(r.v[g & 3] >> 8) * 0x1.0p-24f;
      } else {
        Philox r(seed, g >> 1);
        const int l = static_cast<int>(g & 1) * 2;
        p[e] = static_cast<T>(u01_53(r.v[l], r.v[l + 1]));
      }
    } else if (op == OpId::randn) {
      p[e] = static_cast<T>(normal_at(seed, g, 0));
    } else if (op == OpId::truncated_normal) {
      p[e] = static_cast<T>(truncated_at(seed, g));
    } else {  // randint in [low, high)
      Philox r(seed, g >> 1);
      const int l = static_cast<int>(g & 1) * 2;
      const uint64_t x = (uint64_t(r.v[l]) << 32) | r.v[l + 1];
      const auto range = static_cast<unsigned __int128>(static_cast<uint64_t>(high - low));
      p[e] = static_cast<T>(low + static_cast<int64_t>((x * range) >> 64));
    }
  }
}

}  // namespace

void creation_kernel(OpId op, dispatch::Inputs, const dispatch::Attrs& a, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch::visit_dtype(out.dtype(), [&]<class T>() {
    T* p = static_cast<T*>(out.impl().data());
    switch (op) {
      case OpId::fill: {
        const T v = is_floating(out.dtype()) ? static_cast<T>(a.f0) : static_cast<T>(a.i0);
        std::fill(p, p + n, v);
        break;
      }
      case OpId::arange:
        for (int64_t i = 0; i < n; ++i)
          p[i] = is_floating(out.dtype()) ? static_cast<T>(a.f0 + static_cast<double>(i) * a.f1)
                                          : static_cast<T>(static_cast<int64_t>(
                                                static_cast<uint64_t>(a.i0) +
                                                static_cast<uint64_t>(i) * static_cast<uint64_t>(a.i1)));
        break;
      case OpId::linspace: {
        // Computed from both ends so that the last value is exactly `end`.
        const double step = n > 1 ? (a.f1 - a.f0) / static_cast<double>(n - 1) : 0.0;
        for (int64_t i = 0; i < n; ++i)
          p[i] = static_cast<T>(n == 1 || i < n / 2 ? a.f0 + step * static_cast<double>(i)
                                          : a.f1 - step * static_cast<double>(n - 1 - i));
        break;
      }
      case OpId::eye: {
        std::fill(p, p + n, T(0));
        const int64_t rows = out.shape()[0], cols = out.shape()[1];
        for (int64_t i = 0; i < std::min(rows, cols); ++i) p[i * cols + i] = T(1);
        break;
      }
      default: {
        if constexpr (std::is_same_v<T, bool>) {
          EMBER_CHECK_INTERNAL(false);
        } else {
          const auto seed = static_cast<uint64_t>(a.i0);
          parallel_for(0, n, kParallelMinElements / 8, [&](int64_t b, int64_t e) {
            fill_range<T>(p + b, e - b, a.i1 + b, seed, op, a.i2, a.i3);
          });
        }
      }
    }
  });
}

}  // namespace ember::cpu
