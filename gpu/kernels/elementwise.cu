// Elementwise kernels: the unary/binary families of elementwise.def, where,
// clamp and casts. Two shapes of launch: a dense one (every tensor operand
// contiguous in the output's order) that moves 16 bytes per load when the
// pointers allow, and a strided one for broadcasting and views.
#include <limits>
#include <string>
#include <type_traits>

#include <ember/error.h>

#include "dispatch/dtype_visit.h"
#include "kernels/functors.cuh"

namespace ember::gpu {

using dispatch::OpId;

namespace {

template <class T>
constexpr DType dt_of() {
  if constexpr (std::is_same_v<T, bool>) return DType::bool_;
  else if constexpr (std::is_same_v<T, uint8_t>) return DType::uint8;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::int32;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::int64;
  else if constexpr (std::is_same_v<T, half>) return DType::float16;
  else if constexpr (std::is_same_v<T, bf16>) return DType::bfloat16;
  else if constexpr (std::is_same_v<T, float>) return DType::float32;
  else return DType::float64;
}

// The 16-bit floats go wherever float32 goes (the .def sets name them too;
// this keeps the rule when a set is written without them).
template <class T>
constexpr bool allowed(dispatch::DTypeSet set) {
  if constexpr (kHalfLike<T>) return dispatch::contains(set, DType::float32);
  else return dispatch::contains(set, dt_of<T>());
}

template <class T>
struct DevOperand {
  const T* p = nullptr;
  T val{};
  bool byval = false;
  int64_t stride[kMaxDims] = {};
};

template <class T>
DevOperand<T> dev_operand(const Operand& o, int ndim) {
  DevOperand<T> d;
  d.p = static_cast<const T*>(o.ptr);
  d.byval = o.scalar;
  if (o.scalar) {
    if constexpr (std::is_same_v<T, half>) d.val = __double2half(o.fval);
    else if constexpr (std::is_same_v<T, bf16>) d.val = __double2bfloat16(o.fval);
    else if constexpr (std::is_floating_point_v<T>) d.val = static_cast<T>(o.fval);
    else if constexpr (std::is_same_v<T, bool>) d.val = o.ival != 0;
    else d.val = static_cast<T>(o.ival);
  }
  for (int i = 0; i < ndim; ++i) d.stride[i] = o.stride[i];
  return d;
}

template <int NIN, class T, class Out>
struct Params {
  Out* out;
  int ndim;
  int64_t n;
  int64_t size[kMaxDims];
  int64_t ostride[kMaxDims];
  DevOperand<T> in[NIN];
};

template <class T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

// ---- the per-element functions ---------------------------------------------

template <class F, class Out>
struct Unary {
  template <class A>
  __device__ __forceinline__ Out operator()(A x, A, A) const { return convert<Out>(F()(x)); }
};
template <class F, class Out>
struct Binary {
  template <class A>
  __device__ __forceinline__ Out operator()(A x, A y, A) const { return convert<Out>(F()(x, y)); }
};
template <class Out>
struct Where {
  template <class A>
  __device__ __forceinline__ Out operator()(A c, A x, A y) const { return convert<Out>(c != A(0) ? x : y); }
};
template <class T>
struct Clamp {
  acc_t<T> lo, hi;
  bool has_lo, has_hi;
  template <class A>
  __device__ __forceinline__ T operator()(A x, A, A) const {
    if constexpr (std::is_floating_point_v<A>)
      if (isnan(x)) return convert<T>(x);
    if (has_lo && x < lo) x = lo;
    if (has_hi && x > hi) x = hi;
    return convert<T>(x);
  }
};
template <class Out>
struct Cast {
  template <class A>
  __device__ __forceinline__ Out operator()(A x, A, A) const { return convert<Out>(x); }
};

template <int NIN, class T, class Out, class G>
__device__ __forceinline__ Out apply(const G& g, const T (&v)[3]) {
  using A = acc_t<T>;
  return g(convert<A>(v[0]), NIN > 1 ? convert<A>(v[1]) : A{}, NIN > 2 ? convert<A>(v[2]) : A{});
}

// ---- kernels ---------------------------------------------------------------

template <int NIN, class T, class Out, class G, int V>
__global__ void __launch_bounds__(kThreads) k_dense(Params<NIN, T, Out> p, G g) {
  const int64_t n = p.n;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t nvec = n / V;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < nvec; i += step) {
    Vec<T, V> in[NIN];
#pragma unroll
    for (int j = 0; j < NIN; ++j) {
      if (p.in[j].byval) {
#pragma unroll
        for (int k = 0; k < V; ++k) in[j].v[k] = p.in[j].val;
      } else {
        in[j] = reinterpret_cast<const Vec<T, V>*>(p.in[j].p)[i];
      }
    }
    Vec<Out, V> o;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      T v[3];
#pragma unroll
      for (int j = 0; j < NIN; ++j) v[j] = in[j].v[k];
      o.v[k] = apply<NIN, T, Out>(g, v);
    }
    reinterpret_cast<Vec<Out, V>*>(p.out)[i] = o;
  }
  for (int64_t i = nvec * V + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    T v[3];
#pragma unroll
    for (int j = 0; j < NIN; ++j) v[j] = p.in[j].byval ? p.in[j].val : p.in[j].p[i];
    p.out[i] = apply<NIN, T, Out>(g, v);
  }
}

template <int NIN, class T, class Out, class G>
__global__ void __launch_bounds__(kThreads) k_strided(Params<NIN, T, Out> p, G g) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n; i += step) {
    int64_t rem = i, ooff = 0, off[NIN] = {};
    for (int d = p.ndim - 1; d >= 0; --d) {
      const int64_t idx = rem % p.size[d];
      rem /= p.size[d];
      ooff += idx * p.ostride[d];
#pragma unroll
      for (int j = 0; j < NIN; ++j) off[j] += idx * p.in[j].stride[d];
    }
    T v[3];
#pragma unroll
    for (int j = 0; j < NIN; ++j) v[j] = p.in[j].byval ? p.in[j].val : p.in[j].p[off[j]];
    p.out[ooff] = apply<NIN, T, Out>(g, v);
  }
}

bool aligned(const void* p, std::size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <int NIN, class T, class Out, class G>
void run(const ElementwiseArgs& a, const G& g, cudaStream_t s) {
  if (a.numel == 0) return;
  Params<NIN, T, Out> p;
  p.out = static_cast<Out*>(a.out);
  p.ndim = a.ndim;
  p.n = a.numel;
  for (int d = 0; d < a.ndim; ++d) {
    p.size[d] = a.size[d];
    p.ostride[d] = a.out_stride[d];
  }
  for (int j = 0; j < NIN; ++j) p.in[j] = dev_operand<T>(a.in[j], a.ndim);
  if (a.contiguous) {
    constexpr int kBig = sizeof(T) > sizeof(Out) ? sizeof(T) : sizeof(Out);
    constexpr int V = 16 / kBig > 8 ? 8 : 16 / kBig;
    bool vec = aligned(a.out, sizeof(Out) * V);
    for (int j = 0; j < NIN; ++j) vec = vec && (a.in[j].scalar || aligned(a.in[j].ptr, sizeof(T) * V));
    if (vec && V > 1) {
      k_dense<NIN, T, Out, G, V><<<grid_for(a.numel, V * 2), kThreads, 0, s>>>(p, g);
    } else {
      k_dense<NIN, T, Out, G, 1><<<grid_for(a.numel, 2), kThreads, 0, s>>>(p, g);
    }
  } else {
    k_strided<NIN, T, Out, G><<<grid_for(a.numel, 2), kThreads, 0, s>>>(p, g);
  }
  check_launch("elementwise kernel");
}

namespace rules {
struct same {};
struct to_float {};
struct compare {};
struct logical {};
}  // namespace rules

[[noreturn]] void bad_dtype(OpId op, DType dt) {
  throw DTypeError(std::string("cuda: no kernel for this op with compute dtype ") + dtype_name(dt) +
                   " (op #" + std::to_string(static_cast<int>(op)) + ")");
}

template <class F, class R, int NIN, dispatch::DTypeSet kSet>
void run_op(OpId op, const ElementwiseArgs& a, cudaStream_t s) {
  bool done = false;
  visit(a.compute, [&]<class T>() {
    if constexpr (std::is_same_v<R, rules::logical>) {
      if constexpr (std::is_same_v<T, bool>) {
        if constexpr (NIN == 1) run<1, T, bool>(a, Unary<F, bool>{}, s);
        else run<2, T, bool>(a, Binary<F, bool>{}, s);
        done = true;
      }
    } else if constexpr (std::is_same_v<R, rules::compare>) {
      if constexpr (allowed<T>(kSet)) {
        run<2, T, bool>(a, Binary<F, bool>{}, s);
        done = true;
      }
    } else if constexpr (std::is_same_v<R, rules::to_float>) {
      if constexpr (kFloatLike<T>) {
        if constexpr (NIN == 1) run<1, T, T>(a, Unary<F, T>{}, s);
        else run<2, T, T>(a, Binary<F, T>{}, s);
        done = true;
      }
    } else {
      // "same": only the dtypes the op's row accepts are instantiated.
      if constexpr (allowed<T>(kSet)) {
        if constexpr (NIN == 1) run<1, T, T>(a, Unary<F, T>{}, s);
        else run<2, T, T>(a, Binary<F, T>{}, s);
        done = true;
      }
    }
  });
  if (!done) bad_dtype(op, a.compute);
}

}  // namespace

void launch_elementwise(OpId op, const ElementwiseArgs& a, cudaStream_t s) {
  using namespace dispatch;
  switch (op) {
#define EMBER_UNARY(name, F, R, D) \
  case OpId::name: return run_op<fn::F, rules::R, 1, D>(op, a, s);
#define EMBER_BINARY(name, F, R, D) \
  case OpId::name: return run_op<fn::F, rules::R, 2, D>(op, a, s);
#include "ops/elementwise.def"
    case OpId::where:
      visit(a.compute, [&]<class T>() { run<3, T, T>(a, Where<T>{}, s); });
      return;
    case OpId::clamp:
      visit(a.compute, [&]<class T>() {
        if constexpr (!std::is_same_v<T, bool>) {
          Clamp<T> c;
          // Bounds outside an integer dtype's range saturate (like the CPU kernel).
          auto sat = [](double v) -> acc_t<T> {
            if constexpr (std::is_integral_v<T>) {
              constexpr double lo = static_cast<double>(std::numeric_limits<T>::lowest());
              constexpr double hi = static_cast<double>(std::numeric_limits<T>::max());
              if (v <= lo) return std::numeric_limits<T>::lowest();
              if (v >= hi) return std::numeric_limits<T>::max();
            }
            return static_cast<acc_t<T>>(v);
          };
          c.has_lo = a.flags & 2;
          c.has_hi = a.flags & 4;
          c.lo = c.has_lo ? sat(a.f0) : acc_t<T>{};
          c.hi = c.has_hi ? sat(a.f1) : acc_t<T>{};
          run<1, T, T>(a, c, s);
        } else {
          bad_dtype(op, a.compute);
        }
      });
      return;
    default:
      bad_dtype(op, a.compute);
  }
}

void launch_cast(const ElementwiseArgs& a, cudaStream_t s) {
  visit(a.in[0].dtype, [&]<class From>() {
    visit(a.out_dtype, [&]<class To>() { run<1, From, To>(a, Cast<To>{}, s); });
  });
}

}  // namespace ember::gpu
