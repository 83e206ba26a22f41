// A fused elementwise program in one kernel: each thread evaluates the whole
// program for its elements, keeping intermediates in registers (local memory
// when the program is long), so inputs are read once and the output written
// once whatever the number of ops. The program is a kernel parameter.
#include <ember/error.h>

#include "dispatch/dtype_visit.h"
#include "kernels/functors.cuh"

namespace ember::gpu {

using dispatch::OpId;

namespace {

template <class T>
__device__ __forceinline__ acc_t<T> eval(uint16_t op, acc_t<T> x, acc_t<T> y) {
  using A = acc_t<T>;
  switch (static_cast<OpId>(op)) {
#define EMBER_UNARY(name, F, R, D) \
  case OpId::name: return convert<A>(fn::F()(x));
#define EMBER_BINARY(name, F, R, D) \
  case OpId::name: return convert<A>(fn::F()(x, y));
#include "ops/elementwise.def"
    default: return A{};
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) k_fused(FusedArgs p) {
  using A = acc_t<T>;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  A regs[kMaxFusedInputs + kMaxFusedInstrs];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.numel; i += step) {
    for (int j = 0; j < p.n_inputs; ++j) {
      if (p.in_host[j]) {
        regs[j] = static_cast<A>(p.in_val[j]);
        continue;
      }
      const T* src = static_cast<const T*>(p.in[j]);
      int64_t off = 0;
      if (p.in_dense[j]) {
        off = i;
      } else if (!p.in_scalar[j]) {
        int64_t rem = i;
        for (int d = p.ndim - 1; d >= 0; --d) {
          off += (rem % p.size[d]) * p.in_stride[j][d];
          rem /= p.size[d];
        }
      }
      regs[j] = convert<A>(src[off]);
    }
    for (int k = 0; k < p.n_instrs; ++k) {
      const A x = regs[p.a[k]];
      const A y = p.b[k] >= 0 ? regs[p.b[k]] : A{};
      regs[p.n_inputs + k] = eval<T>(p.op[k], x, y);
    }
    static_cast<T*>(p.out)[i] = convert<T>(regs[p.n_inputs + p.n_instrs - 1]);
  }
}

}  // namespace

bool fused_supported(OpId op) {
  switch (op) {
#define EMBER_UNARY(name, F, R, D) case OpId::name:
#define EMBER_BINARY(name, F, R, D) case OpId::name:
#include "ops/elementwise.def"
      return true;
    default:
      return false;
  }
}

void launch_fused(const FusedArgs& a, cudaStream_t s) {
  if (a.numel == 0) return;
  visit(a.dtype, [&]<class T>() {
    if constexpr (kFloatLike<T>) {
      k_fused<T><<<grid_for(a.numel), kThreads, 0, s>>>(a);
      check_launch("fused elementwise kernel");
    } else {
      throw DTypeError(std::string("cuda: fused programs run on floating dtypes, not ") + dtype_name(a.dtype));
    }
  });
}

}  // namespace ember::gpu
