// index_select: out[o, j, i] = in[o, idx[j], i]. An index out of range
// writes 0 and raises a flag the host reads after the launch (device code
// cannot throw; the flag turns into an IndexError).
#include "kernels/common.cuh"

namespace ember::gpu {
namespace {

template <class T, class I>
__global__ void __launch_bounds__(kThreads) k_index_select(const T* in, int64_t size, int64_t inner, int64_t s_outer,
                                                           int64_t s_dim, int64_t s_inner, const I* idx,
                                                           int64_t idx_stride, int64_t n_idx, T* out, int64_t total,
                                                           int* bad) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total; e += step) {
    const int64_t i = e % inner;
    const int64_t j = (e / inner) % n_idx;
    const int64_t o = e / (inner * n_idx);
    int64_t k = static_cast<int64_t>(idx[j * idx_stride]);
    if (k < 0) k += size;
    if (k < 0 || k >= size) {
      *bad = 1;
      out[e] = T{};
      continue;
    }
    out[e] = in[o * s_outer + k * s_dim + i * s_inner];
  }
}

}  // namespace

void launch_index_select(DType dt, const void* in, int64_t outer, int64_t size, int64_t inner, int64_t s_outer,
                         int64_t s_dim, int64_t s_inner, const void* idx, DType idx_dt, int64_t idx_stride,
                         int64_t n_idx, void* out, int* bad_flag, cudaStream_t s) {
  const int64_t total = outer * n_idx * inner;
  if (total == 0) return;
  // Elements are moved as raw bits: one instance per element size.
  auto go = [&]<class T>() {
    if (idx_dt == DType::int64)
      k_index_select<T, int64_t><<<grid_for(total), kThreads, 0, s>>>(
          static_cast<const T*>(in), size, inner, s_outer, s_dim, s_inner, static_cast<const int64_t*>(idx),
          idx_stride, n_idx, static_cast<T*>(out), total, bad_flag);
    else
      k_index_select<T, int32_t><<<grid_for(total), kThreads, 0, s>>>(
          static_cast<const T*>(in), size, inner, s_outer, s_dim, s_inner, static_cast<const int32_t*>(idx),
          idx_stride, n_idx, static_cast<T*>(out), total, bad_flag);
  };
  switch (itemsize(dt)) {
    case 1: go.template operator()<uint8_t>(); break;
    case 2: go.template operator()<uint16_t>(); break;
    case 4: go.template operator()<uint32_t>(); break;
    default: go.template operator()<uint64_t>(); break;
  }
  check_launch("index_select kernel");
}

}  // namespace ember::gpu
