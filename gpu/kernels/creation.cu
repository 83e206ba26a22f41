// Creation kernels. The random ops use the CPU's Philox4x32-10 mapping
// (lib/cpu/creation.cpp, Note [Counter-based random numbers]): element g of a
// call at offset o reads counter block (o + g) / lanes, so the GPU draws the
// same numbers as the CPU for the same seed and offset (randn up to the last
// bit of the device's log/cos); truncated_normal's tries use the CPU's
// counters too (its third word is the try).
#include <ember/error.h>

#include "kernels/common.cuh"

namespace ember::gpu {

using dispatch::OpId;

namespace {

struct Philox {
  uint32_t v[4];
  __device__ Philox(uint64_t seed, uint64_t block, uint32_t round = 0) {
    uint32_t c0 = static_cast<uint32_t>(block), c1 = static_cast<uint32_t>(block >> 32), c2 = round, c3 = 0;
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#pragma unroll
    for (int r = 0; r < 10; ++r) {
      const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
      const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
      const uint32_t n0 = hi1 ^ c1 ^ k0;
      const uint32_t n2 = hi0 ^ c3 ^ k1;
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    v[0] = c0;
    v[1] = c1;
    v[2] = c2;
    v[3] = c3;
  }
};

__device__ double u01_53(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((static_cast<uint64_t>(hi) << 32) | lo) >> 11) * 0x1.0p-53;
}

__device__ double normal_at(uint64_t seed, uint64_t g, uint32_t round) {
  Philox ph(seed, g >> 1, round);
  const int l = static_cast<int>(g & 1) * 2;
  const double u1 = (static_cast<double>(ph.v[l]) + 1.0) * 0x1.0p-32;
  const double u2 = static_cast<double>(ph.v[l + 1]) * 0x1.0p-32;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

template <class T>
__global__ void __launch_bounds__(kThreads) k_create(T* p, CreationArgs a, OpId op) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < a.numel; e += step) {
    T r{};
    switch (op) {
      case OpId::fill:
        if constexpr (kFloatLike<T>) r = convert<T>(a.f0);
        else r = static_cast<T>(a.i0);
        break;
      case OpId::arange:
        if constexpr (kFloatLike<T>) r = convert<T>(a.f0 + static_cast<double>(e) * a.f1);
        else r = static_cast<T>(static_cast<int64_t>(static_cast<uint64_t>(a.i0) +
                                                     static_cast<uint64_t>(e) * static_cast<uint64_t>(a.i1)));
        break;
      case OpId::linspace: {
        const int64_t n = a.numel;
        const double stepv = n > 1 ? (a.f1 - a.f0) / static_cast<double>(n - 1) : 0.0;
        const double v = (n == 1 || e < n / 2) ? a.f0 + stepv * static_cast<double>(e)
                                               : a.f1 - stepv * static_cast<double>(n - 1 - e);
        if constexpr (kFloatLike<T>) r = convert<T>(v);
        else r = static_cast<T>(v);
        break;
      }
      case OpId::eye: r = convert<T>((e / a.cols) == (e % a.cols) ? 1 : 0); break;
      case OpId::rand: {
        const uint64_t g = static_cast<uint64_t>(a.i1 + e);
        const auto seed = static_cast<uint64_t>(a.i0);
        if constexpr (std::is_same_v<T, double>) {
          Philox ph(seed, g >> 1);
          const int l = static_cast<int>(g & 1) * 2;
          r = u01_53(ph.v[l], ph.v[l + 1]);
        } else if constexpr (kFloatLike<T>) {
          // float32 and the 16-bit floats draw 24 bits, as the CPU's float32 does.
          Philox ph(seed, g >> 2);
          r = convert<T>(static_cast<float>(ph.v[g & 3] >> 8) * 0x1.0p-24f);
        }
        break;
      }
      case OpId::randn: {
        const double v = normal_at(static_cast<uint64_t>(a.i0), static_cast<uint64_t>(a.i1 + e), 0);
        if constexpr (kFloatLike<T>) r = convert<T>(v);
        break;
      }
      case OpId::truncated_normal: {  // as lib/cpu/creation.cpp's truncated_at
        const auto seed = static_cast<uint64_t>(a.i0), g = static_cast<uint64_t>(a.i1 + e);
        double v = normal_at(seed, g, 0);
        for (uint32_t round = 1; fabs(v) >= 2.0 && round < 64; ++round) v = normal_at(seed, g, round);
        v = fmin(fmax(v, -2.0), 2.0);
        if constexpr (kFloatLike<T>) r = convert<T>(v);
        break;
      }
      case OpId::randint: {
        const uint64_t g = static_cast<uint64_t>(a.i1 + e);
        Philox ph(static_cast<uint64_t>(a.i0), g >> 1);
        const int l = static_cast<int>(g & 1) * 2;
        const uint64_t x = (static_cast<uint64_t>(ph.v[l]) << 32) | ph.v[l + 1];
        const uint64_t range = static_cast<uint64_t>(a.i3 - a.i2);
        const int64_t v = a.i2 + static_cast<int64_t>(__umul64hi(x, range));
        if constexpr (kFloatLike<T>) r = convert<T>(static_cast<double>(v));
        else r = static_cast<T>(v);
        break;
      }
      default: break;
    }
    p[e] = r;
  }
}

}  // namespace

void launch_creation(OpId op, const CreationArgs& a, cudaStream_t s) {
  if (a.numel == 0) return;
  visit(a.dtype, [&]<class T>() {
    k_create<T><<<grid_for(a.numel), kThreads, 0, s>>>(static_cast<T*>(a.out), a, op);
  });
  check_launch("creation kernel");
}

}  // namespace ember::gpu
