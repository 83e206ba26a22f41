// Reductions over any set of axes. The host side describes the input as
// outputs x reduced elements (each with its own strides); three launch shapes:
//  - a warp per output, lanes striding over the reduced elements (reduced
//    dims innermost in memory: coalesced);
//  - a thread per output (outputs adjacent in memory, e.g. a sum over dim 0);
//  - a split reduction for few outputs over many elements: blocks reduce
//    chunks into a workspace of partial accumulators, a second pass combines.
// Accumulators: float for float16/bfloat16/float32, double for float64,
// int64 for integers and bool; var/std use Welford's update.
#include <cfloat>
#include <limits>
#include <type_traits>

#include <ember/error.h>

#include "kernels/common.cuh"

namespace ember::gpu {

using dispatch::OpId;

namespace {

template <class T>
using racc_t = std::conditional_t<kFloatLike<T>, std::conditional_t<std::is_same_v<T, double>, double, float>, int64_t>;

struct Geometry {
  int out_ndim, red_ndim;
  int64_t n_out, n_red;
  int64_t out_size[kMaxDims], in_ostride[kMaxDims];
  int64_t red_size[kMaxDims], red_stride[kMaxDims];
  __device__ __forceinline__ int64_t out_base(int64_t o) const {
    int64_t off = 0;
    for (int d = out_ndim - 1; d >= 0; --d) {
      off += (o % out_size[d]) * in_ostride[d];
      o /= out_size[d];
    }
    return off;
  }
  __device__ __forceinline__ int64_t red_off(int64_t r) const {
    if (red_ndim == 1) return r * red_stride[0];
    int64_t off = 0;
    for (int d = red_ndim - 1; d >= 0; --d) {
      off += (r % red_size[d]) * red_stride[d];
      r /= red_size[d];
    }
    return off;
  }
};

// ---- accumulators ------------------------------------------------------------

template <class A>
struct ValAcc {
  A v;
  int64_t pad;  // keeps the size a multiple of 8 for the word-wise shuffle
};
template <class A>
struct IdxAcc {
  A v;
  int64_t i;
};
template <class A>
struct WelfordAcc {
  A mean, m2;
  int64_t n;
};

template <class T, int kKind>
struct SumLike {  // kKind: 0 sum, 1 prod, 2 mean
  using A = racc_t<T>;
  using Acc = ValAcc<A>;
  __device__ static Acc init() { return {kKind == 1 ? A(1) : A(0), 0}; }
  __device__ static Acc step(Acc a, T x, int64_t) {
    const A v = convert<A>(x);
    if constexpr (kKind == 1) {
      if constexpr (std::is_integral_v<A>)
        a.v = static_cast<A>(static_cast<uint64_t>(a.v) * static_cast<uint64_t>(v));
      else
        a.v *= v;
    } else {
      if constexpr (std::is_integral_v<A>)
        a.v = static_cast<A>(static_cast<uint64_t>(a.v) + static_cast<uint64_t>(v));
      else
        a.v += v;
    }
    return a;
  }
  __device__ static Acc combine(Acc a, Acc b) {
    Acc r = a;
    if constexpr (kKind == 1) {
      if constexpr (std::is_integral_v<A>)
        r.v = static_cast<A>(static_cast<uint64_t>(a.v) * static_cast<uint64_t>(b.v));
      else
        r.v = a.v * b.v;
    } else {
      if constexpr (std::is_integral_v<A>)
        r.v = static_cast<A>(static_cast<uint64_t>(a.v) + static_cast<uint64_t>(b.v));
      else
        r.v = a.v + b.v;
    }
    return r;
  }
  template <class Out>
  __device__ static Out finish(Acc a, int64_t n, double) {
    if constexpr (kKind == 2) {
      using F = std::conditional_t<std::is_same_v<A, double>, double, float>;
      return convert<Out>(static_cast<F>(a.v) / static_cast<F>(n));
    } else {
      return convert<Out>(a.v);
    }
  }
};

template <class T, bool kMax>
struct MinMax {  // NaN wins, as in PyTorch
  using A = acc_t<T>;
  using Acc = ValAcc<A>;
  __device__ static Acc init() {
    if constexpr (std::is_floating_point_v<A>)
      return {kMax ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity(), 0};
    else
      return {kMax ? std::numeric_limits<A>::lowest() : std::numeric_limits<A>::max(), 0};
  }
  __device__ static A pick(A a, A b) {
    if constexpr (std::is_floating_point_v<A>) {
      if (isnan(a)) return a;
      if (isnan(b)) return b;
    }
    return kMax ? (b > a ? b : a) : (b < a ? b : a);
  }
  __device__ static Acc step(Acc a, T x, int64_t) { return {pick(a.v, convert<A>(x)), 0}; }
  __device__ static Acc combine(Acc a, Acc b) { return {pick(a.v, b.v), 0}; }
  template <class Out>
  __device__ static Out finish(Acc a, int64_t, double) { return convert<Out>(a.v); }
};

template <class T, bool kMax>
struct ArgMinMax {  // first position on ties; the first NaN wins
  using A = acc_t<T>;
  using Acc = IdxAcc<A>;
  __device__ static Acc init() { return {MinMax<T, kMax>::init().v, -1}; }
  __device__ static bool better(A x, int64_t i, A y, int64_t j) {  // is (x, i) before (y, j)?
    if (j < 0) return i >= 0;
    if (i < 0) return false;
    if constexpr (std::is_floating_point_v<A>) {
      const bool nx = isnan(x), ny = isnan(y);
      if (nx || ny) return nx && (!ny || i < j);
    }
    if (x == y) return i < j;
    return kMax ? x > y : x < y;
  }
  __device__ static Acc step(Acc a, T x, int64_t i) {
    const A v = convert<A>(x);
    return better(v, i, a.v, a.i) ? Acc{v, i} : a;
  }
  __device__ static Acc combine(Acc a, Acc b) { return better(b.v, b.i, a.v, a.i) ? b : a; }
  template <class Out>
  __device__ static Out finish(Acc a, int64_t, double) { return static_cast<Out>(a.i); }
};

template <class T, bool kStd>
struct VarStd {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  using Acc = WelfordAcc<A>;
  __device__ static Acc init() { return {A(0), A(0), 0}; }
  __device__ static Acc step(Acc a, T x, int64_t) {
    const A v = convert<A>(x);
    a.n += 1;
    const A d = v - a.mean;
    a.mean += d / static_cast<A>(a.n);
    a.m2 += d * (v - a.mean);
    return a;
  }
  __device__ static Acc combine(Acc a, Acc b) {
    if (a.n == 0) return b;
    if (b.n == 0) return a;
    const int64_t n = a.n + b.n;
    const A d = b.mean - a.mean;
    const A fb = static_cast<A>(b.n) / static_cast<A>(n);
    return {a.mean + d * fb, a.m2 + b.m2 + d * d * static_cast<A>(a.n) * fb, n};
  }
  template <class Out>
  __device__ static Out finish(Acc a, int64_t, double correction) {
    const A denom = static_cast<A>(static_cast<double>(a.n) - correction);
    A v = denom > A(0) ? a.m2 / denom : A(NAN);
    if constexpr (kStd) v = sqrt(v);
    return convert<Out>(v);
  }
};

template <class T, bool kAll>
struct AllAny {
  using Acc = ValAcc<int32_t>;
  __device__ static Acc init() { return {kAll ? 1 : 0, 0}; }
  __device__ static Acc step(Acc a, T x, int64_t) {
    const bool b = convert<bool>(x);
    return {kAll ? (a.v && b) : (a.v || b), 0};
  }
  __device__ static Acc combine(Acc a, Acc b) { return {kAll ? (a.v && b.v) : (a.v || b.v), 0}; }
  template <class Out>
  __device__ static Out finish(Acc a, int64_t, double) { return a.v != 0; }
};

template <class Acc>
__device__ __forceinline__ Acc shfl_down(Acc a, int off) {
  static_assert(sizeof(Acc) % 4 == 0);
  constexpr int W = sizeof(Acc) / 4;
  int w[W];
  memcpy(w, &a, sizeof(Acc));
#pragma unroll
  for (int k = 0; k < W; ++k) w[k] = __shfl_down_sync(0xffffffffu, w[k], off);
  memcpy(&a, w, sizeof(Acc));
  return a;
}

template <class Op, class Acc>
__device__ __forceinline__ Acc warp_combine(Acc a) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) a = Op::combine(a, shfl_down(a, off));
  return a;
}

// ---- kernels ---------------------------------------------------------------

template <class Op, class T, class Out>
__global__ void __launch_bounds__(kThreads) k_warp_per_output(Geometry g, const T* in, Out* out, double correction) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32; o < g.n_out; o += warps) {
    const T* base = in + g.out_base(o);
    auto acc = Op::init();
    for (int64_t r = lane; r < g.n_red; r += 32) acc = Op::step(acc, base[g.red_off(r)], r);
    acc = warp_combine<Op>(acc);
    if (lane == 0) out[o] = Op::template finish<Out>(acc, g.n_red, correction);
  }
}

template <class Op, class T, class Out>
__global__ void __launch_bounds__(kThreads) k_thread_per_output(Geometry g, const T* in, Out* out, double correction) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < g.n_out; o += step) {
    const T* base = in + g.out_base(o);
    auto acc = Op::init();
    for (int64_t r = 0; r < g.n_red; ++r) acc = Op::step(acc, base[g.red_off(r)], r);
    out[o] = Op::template finish<Out>(acc, g.n_red, correction);
  }
}

// Block (o, c) reduces chunk c of output o into partial[o * chunks + c].
template <class Op, class T>
__global__ void __launch_bounds__(kThreads) k_split(Geometry g, const T* in, typename Op::Acc* partial, int64_t chunks,
                                                    int64_t chunk) {
  const int64_t o = blockIdx.y;
  const int64_t c = blockIdx.x;
  const T* base = in + g.out_base(o);
  const int64_t lo = c * chunk, hi = min(g.n_red, lo + chunk);
  auto acc = Op::init();
  for (int64_t r = lo + threadIdx.x; r < hi; r += blockDim.x) acc = Op::step(acc, base[g.red_off(r)], r);
  acc = warp_combine<Op>(acc);
  __shared__ typename Op::Acc warp_acc[kThreads / 32];
  if ((threadIdx.x & 31) == 0) warp_acc[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    acc = threadIdx.x < blockDim.x / 32 ? warp_acc[threadIdx.x] : Op::init();
    acc = warp_combine<Op>(acc);
    if (threadIdx.x == 0) partial[o * chunks + c] = acc;
  }
}

template <class Op, class Out>
__global__ void __launch_bounds__(kThreads) k_finish(const typename Op::Acc* partial, int64_t chunks, int64_t n_out,
                                                     Out* out, int64_t n_red, double correction) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32; o < n_out; o += warps) {
    auto acc = Op::init();
    for (int64_t c = lane; c < chunks; c += 32) acc = Op::combine(acc, partial[o * chunks + c]);
    acc = warp_combine<Op>(acc);
    if (lane == 0) out[o] = Op::template finish<Out>(acc, n_red, correction);
  }
}

constexpr int64_t kSplitMinPerOutput = 1 << 16;  // reduced elements per output worth splitting
constexpr int64_t kChunk = 1 << 14;              // elements per block in a split reduction

int64_t split_chunks(const ReduceArgs& a) {
  if (a.n_out > 1024 || a.n_red < kSplitMinPerOutput) return 0;
  return (a.n_red + kChunk - 1) / kChunk;
}

template <class Op, class T, class Out>
void run(const ReduceArgs& a, void* ws, cudaStream_t s) {
  Geometry g;
  g.out_ndim = a.out_ndim;
  g.red_ndim = a.red_ndim;
  g.n_out = a.n_out;
  g.n_red = a.n_red;
  for (int d = 0; d < kMaxDims; ++d) {
    g.out_size[d] = a.out_size[d];
    g.in_ostride[d] = a.in_ostride[d];
    g.red_size[d] = a.red_size[d];
    g.red_stride[d] = a.red_stride[d];
  }
  const T* in = static_cast<const T*>(a.in);
  Out* out = static_cast<Out*>(a.out);
  if (a.n_out == 0) return;
  if (const int64_t chunks = split_chunks(a)) {
    using Acc = typename Op::Acc;
    auto* partial = static_cast<Acc*>(ws);
    k_split<Op, T><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(a.n_out)), kThreads, 0, s>>>(
        g, in, partial, chunks, kChunk);
    check_launch("reduction (split)");
    k_finish<Op, Out><<<grid_for(a.n_out * 32), kThreads, 0, s>>>(partial, chunks, a.n_out, out, a.n_red,
                                                                   a.correction);
    check_launch("reduction (finish)");
    return;
  }
  // Reduced elements adjacent in memory: a warp per output. Otherwise, when
  // outputs are adjacent, a thread per output reads coalesced across the warp.
  const bool inner_red = a.red_ndim > 0 && a.red_stride[a.red_ndim - 1] == 1;
  const bool inner_out = a.out_ndim > 0 && a.in_ostride[a.out_ndim - 1] == 1;
  if (!inner_red && inner_out && a.n_out >= 256) {
    k_thread_per_output<Op, T, Out><<<grid_for(a.n_out), kThreads, 0, s>>>(g, in, out, a.correction);
  } else {
    k_warp_per_output<Op, T, Out><<<grid_for(a.n_out * 32), kThreads, 0, s>>>(g, in, out, a.correction);
  }
  check_launch("reduction");
}

template <class F>
void with_op(OpId op, DType in_dt, F&& f) {
  visit(in_dt, [&]<class T>() {
    switch (op) {
      case OpId::sum: f.template operator()<SumLike<T, 0>, T>(); break;
      case OpId::prod: f.template operator()<SumLike<T, 1>, T>(); break;
      case OpId::mean: f.template operator()<SumLike<T, 2>, T>(); break;
      case OpId::max: f.template operator()<MinMax<T, true>, T>(); break;
      case OpId::min: f.template operator()<MinMax<T, false>, T>(); break;
      case OpId::argmax: f.template operator()<ArgMinMax<T, true>, T>(); break;
      case OpId::argmin: f.template operator()<ArgMinMax<T, false>, T>(); break;
      case OpId::var: f.template operator()<VarStd<T, false>, T>(); break;
      case OpId::std: f.template operator()<VarStd<T, true>, T>(); break;
      case OpId::all: f.template operator()<AllAny<T, true>, T>(); break;
      case OpId::any: f.template operator()<AllAny<T, false>, T>(); break;
      default: throw InternalError("launch_reduce: not a reduction");
    }
  });
}

}  // namespace

std::size_t reduce_workspace_bytes(OpId op, const ReduceArgs& a) {
  const int64_t chunks = split_chunks(a);
  if (!chunks) return 0;
  std::size_t bytes = 0;
  with_op(op, a.in_dtype, [&]<class Op, class T>() { bytes = sizeof(typename Op::Acc) * chunks * a.n_out; });
  return bytes;
}

void launch_reduce(OpId op, const ReduceArgs& a, void* ws, std::size_t, cudaStream_t s) {
  with_op(op, a.in_dtype, [&]<class Op, class T>() {
    visit(a.out_dtype, [&]<class Out>() {
      // Only the output dtypes the rules in reduce.def produce are instantiated.
      constexpr bool ok_sum = std::is_same_v<Out, std::conditional_t<kFloatLike<T>, T, int64_t>>;
      constexpr bool ok_float = std::is_same_v<Out, std::conditional_t<kFloatLike<T>, T, float>>;
      (void)ok_sum;
      (void)ok_float;
      if constexpr (std::is_same_v<Op, SumLike<T, 0>> || std::is_same_v<Op, SumLike<T, 1>>) {
        if constexpr (ok_sum) run<Op, T, Out>(a, ws, s);
        else throw InternalError("launch_reduce: output dtype");
      } else if constexpr (std::is_same_v<Op, SumLike<T, 2>> || std::is_same_v<Op, VarStd<T, false>> ||
                           std::is_same_v<Op, VarStd<T, true>>) {
        if constexpr (ok_float) run<Op, T, Out>(a, ws, s);
        else throw InternalError("launch_reduce: output dtype");
      } else if constexpr (std::is_same_v<Op, MinMax<T, true>> || std::is_same_v<Op, MinMax<T, false>>) {
        if constexpr (std::is_same_v<Out, T>) run<Op, T, Out>(a, ws, s);
        else throw InternalError("launch_reduce: output dtype");
      } else if constexpr (std::is_same_v<Op, AllAny<T, true>> || std::is_same_v<Op, AllAny<T, false>>) {
        if constexpr (std::is_same_v<Out, bool>) run<Op, T, Out>(a, ws, s);
        else throw InternalError("launch_reduce: output dtype");
      } else {
        if constexpr (std::is_same_v<Out, int64_t>) run<Op, T, Out>(a, ws, s);
        else throw InternalError("launch_reduce: output dtype");
      }
    });
  });
}

}  // namespace ember::gpu
