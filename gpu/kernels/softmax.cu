// softmax / log_softmax along one axis of a contiguous [outer, n, inner]
// tensor, computed in float (double for float64) with the max subtracted.
//  inner == 1: a block per row (block reductions for the max and the sum);
//  inner > 1:  a thread per (outer, inner) column, reading across the warp.
#include <ember/error.h>

#include "kernels/common.cuh"

namespace ember::gpu {
namespace {

template <class A>
__device__ A block_reduce(A v, bool is_max, A* smem) {
  for (int off = 16; off > 0; off >>= 1) {
    const A o = __shfl_down_sync(0xffffffffu, v, off);
    v = is_max ? (o > v ? o : v) : v + o;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < blockDim.x / 32 ? smem[lane] : (is_max ? -INFINITY : A(0));
    for (int off = 16; off > 0; off >>= 1) {
      const A o = __shfl_down_sync(0xffffffffu, v, off);
      v = is_max ? (o > v ? o : v) : v + o;
    }
    if (lane == 0) smem[0] = v;
  }
  __syncthreads();
  const A r = smem[0];
  __syncthreads();
  return r;
}

template <class T, bool kLog>
__global__ void __launch_bounds__(kThreads) k_rows(const T* in, T* out, int64_t n) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  __shared__ A smem[kThreads / 32];
  const T* x = in + blockIdx.x * n;
  T* y = out + blockIdx.x * n;
  A m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const A v = convert<A>(x[i]);
    m = (v > m || isnan(v)) ? v : m;
  }
  m = block_reduce(m, true, smem);
  A s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += exp(convert<A>(x[i]) - m);
  s = block_reduce(s, false, smem);
  const A ls = log(s);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const A v = convert<A>(x[i]) - m;
    y[i] = convert<T>(kLog ? v - ls : exp(v) / s);
  }
}

template <class T, bool kLog>
__global__ void __launch_bounds__(kThreads) k_cols(const T* in, T* out, int64_t outer, int64_t n, int64_t inner) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < outer * inner; c += step) {
    const int64_t o = c / inner, i = c % inner;
    const T* x = in + o * n * inner + i;
    T* y = out + o * n * inner + i;
    A m = -INFINITY;
    for (int64_t k = 0; k < n; ++k) {
      const A v = convert<A>(x[k * inner]);
      m = (v > m || isnan(v)) ? v : m;
    }
    A s = 0;
    for (int64_t k = 0; k < n; ++k) s += exp(convert<A>(x[k * inner]) - m);
    const A ls = log(s);
    for (int64_t k = 0; k < n; ++k) {
      const A v = convert<A>(x[k * inner]) - m;
      y[k * inner] = convert<T>(kLog ? v - ls : exp(v) / s);
    }
  }
}

}  // namespace

void launch_softmax(bool log, DType dt, const void* in, void* out, int64_t outer, int64_t n, int64_t inner,
                    cudaStream_t s) {
  if (outer * n * inner == 0) return;
  visit(dt, [&]<class T>() {
    if constexpr (kFloatLike<T>) {
      const T* x = static_cast<const T*>(in);
      T* y = static_cast<T*>(out);
      if (inner == 1) {
        int threads = 32;
        while (threads < kThreads && threads < n) threads *= 2;
        if (log) k_rows<T, true><<<static_cast<unsigned>(outer), threads, 0, s>>>(x, y, n);
        else k_rows<T, false><<<static_cast<unsigned>(outer), threads, 0, s>>>(x, y, n);
      } else {
        if (log) k_cols<T, true><<<grid_for(outer * inner), kThreads, 0, s>>>(x, y, outer, n, inner);
        else k_cols<T, false><<<grid_for(outer * inner), kThreads, 0, s>>>(x, y, outer, n, inner);
      }
      check_launch(log ? "log_softmax kernel" : "softmax kernel");
    } else {
      throw InternalError("launch_softmax: not a floating dtype");
    }
  });
}

}  // namespace ember::gpu
