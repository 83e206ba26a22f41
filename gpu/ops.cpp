// The CUDA kernels as the dispatcher sees them: each turns Tensors into the
// plain launch arguments of gpu/kernels/launch.h and launches on the current
// stream of the output's device. Registered for DeviceType::cuda by
// register_kernels (called from the registry when ember is built with CUDA).
#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include <ember/error.h>

#include "api.h"
#include "cpu/kernels.h"
#include "dispatch/registry.h"
#include "dispatch/schema.h"
#include "kernels/launch.h"
#include "ops/infer.h"
#include "runtime/runtime.h"

namespace ember::gpu {

using dispatch::Attrs;
using dispatch::Inputs;
using dispatch::OpId;

namespace {

void* data_of(const Tensor& t) { return t.impl().data(); }

// A CPU 0-d tensor (a wrapped C++ number, or any 0-d CPU tensor, as in
// PyTorch) may join a GPU op: its value is passed by value.
bool is_host_scalar(const Tensor& t) { return t.device().is_cpu() && t.dim() == 0; }

Operand host_scalar(const Tensor& t, DType compute) {
  Operand o;
  o.scalar = true;
  o.dtype = compute;
  if (is_floating(compute))
    o.fval = host_value<double>(t);
  else
    o.ival = host_value<int64_t>(t);
  return o;
}

/// Strides of `t` over `shape` (t broadcast to it, right-aligned): 0 where broadcast.
Strides broadcast_strides(const Tensor& t, const Shape& shape) {
  Strides s(shape.size(), 0);
  const std::size_t lead = shape.size() - static_cast<std::size_t>(t.dim());
  for (std::size_t i = 0; i < static_cast<std::size_t>(t.dim()); ++i)
    s[lead + i] = t.shape()[i] == 1 && shape[lead + i] != 1 ? 0 : t.strides()[i];
  return s;
}

/// Fills the geometry of `a`: out's shape with size-1 dims dropped and
/// adjacent dims merged where every operand allows it.
void set_geometry(ElementwiseArgs& a, const Tensor& out, const std::vector<Strides>& in_strides, const char* op) {
  const Shape& shape = out.shape();
  const int n_in = static_cast<int>(in_strides.size());
  Shape sz;
  std::vector<Strides> st(static_cast<std::size_t>(n_in + 1));
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const bool merge = !sz.empty() && [&] {
      if (st[0].back() != out.strides()[d] * shape[d]) return false;
      for (int j = 0; j < n_in; ++j)
        if (st[j + 1].back() != in_strides[j][d] * shape[d]) return false;
      return true;
    }();
    if (merge) {
      sz.back() *= shape[d];
      st[0].back() = out.strides()[d];
      for (int j = 0; j < n_in; ++j) st[j + 1].back() = in_strides[j][d];
    } else {
      sz.push_back(shape[d]);
      st[0].push_back(out.strides()[d]);
      for (int j = 0; j < n_in; ++j) st[j + 1].push_back(in_strides[j][d]);
    }
  }
  if (sz.size() > static_cast<std::size_t>(kMaxDims))
    throw ValueError(fmt::format("{}: on CUDA, at most {} non-mergeable dims are supported (the layout of shape {} "
                                 "needs {}); make the inputs contiguous first",
                                 op, kMaxDims, shape_str(shape), sz.size()));
  a.ndim = static_cast<int>(sz.size());
  a.numel = out.numel();
  bool dense = true;
  int64_t expect = 1;
  for (int d = a.ndim - 1; d >= 0; --d) {
    a.size[d] = sz[d];
    a.out_stride[d] = st[0][d];
    dense = dense && st[0][d] == expect;
    expect *= sz[d];
  }
  for (int j = 0; j < n_in; ++j) {
    for (int d = 0; d < a.ndim; ++d) {
      a.in[j].stride[d] = st[j + 1][d];
      if (!a.in[j].scalar) dense = dense && st[j + 1][d] == st[0][d];
    }
  }
  a.contiguous = dense;
}

}  // namespace

/// dst = src (broadcast to dst's shape, cast to dst's dtype), both on the same GPU.
void copy_into(Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  cudaStream_t s = enter(dst.device());
  ElementwiseArgs a;
  a.out = data_of(dst);
  a.out_dtype = dst.dtype();
  a.n_in = 1;
  if (is_host_scalar(src)) {
    a.in[0] = host_scalar(src, src.dtype());
    a.in[0].dtype = src.dtype();
  } else {
    a.in[0].ptr = data_of(src);
    a.in[0].dtype = src.dtype();
  }
  a.compute = src.dtype();
  set_geometry(a, dst, {is_host_scalar(src) ? Strides(dst.shape().size(), 0) : broadcast_strides(src, dst.shape())},
               "copy");
  launch_cast(a, s);
}

Tensor cast(const Tensor& t, DType dt) {
  Tensor out = ember::detail::make_tensor(t.shape(), dt, t.device());
  copy_into(out, t);
  return out;
}

Tensor contiguous(const Tensor& t) { return t.is_contiguous() ? t : cast(t, t.dtype()); }

namespace {

DType compute_dtype(OpId op, Inputs in, const Tensor& out) {
  switch (op) {
#define EMBER_UNARY(name, F, rule, dtypes) \
  case OpId::name:                         \
    return #rule[0] == 'l' ? DType::bool_ : (#rule[0] == 'c' ? ops::result_type(in) : out.dtype());
#define EMBER_BINARY(name, F, rule, dtypes) EMBER_UNARY(name, F, rule, dtypes)
#include "ops/elementwise.def"
    default: return out.dtype();
  }
}

void run_elementwise(OpId op, Inputs in, const Attrs& attrs, Tensor& out, DType ct,
                     std::initializer_list<DType> want) {
  if (out.numel() == 0) return;
  cudaStream_t s = enter(out.device());
  ElementwiseArgs a;
  a.out = data_of(out);
  a.out_dtype = out.dtype();
  a.compute = ct;
  a.n_in = static_cast<int>(in.size());
  a.f0 = attrs.f0;
  a.f1 = attrs.f1;
  a.flags = attrs.flags;
  Tensor keep[3];
  std::vector<Strides> strides;
  auto w = want.begin();
  for (int j = 0; j < a.n_in; ++j, ++w) {
    const DType dt = *w;
    if (is_host_scalar(in[j])) {
      a.in[j] = host_scalar(in[j], dt);
      strides.emplace_back(out.shape().size(), 0);
      continue;
    }
    keep[j] = in[j].dtype() == dt ? in[j] : cast(in[j], dt);
    a.in[j].ptr = data_of(keep[j]);
    a.in[j].dtype = dt;
    strides.push_back(broadcast_strides(keep[j], out.shape()));
  }
  set_geometry(a, out, strides, dispatch::op_name(op));
  launch_elementwise(op, a, s);
}

void elementwise_kernel(OpId op, Inputs in, const Attrs& attrs, Tensor& out) {
  const DType ct = compute_dtype(op, in, out);
  if (in.size() == 1)
    run_elementwise(op, in, attrs, out, ct, {ct});
  else
    run_elementwise(op, in, attrs, out, ct, {ct, ct});
}

void where_kernel(OpId op, Inputs in, const Attrs& attrs, Tensor& out) {
  // The condition is read in the output dtype (nonzero = true).
  const DType dt = out.dtype();
  run_elementwise(op, in, attrs, out, dt, {dt, dt, dt});
}

void clamp_kernel(OpId op, Inputs in, const Attrs& attrs, Tensor& out) {
  run_elementwise(op, in, attrs, out, out.dtype(), {out.dtype()});
}

void copy_kernel(OpId, Inputs in, const Attrs&, Tensor& out) { copy_into(out, in[0]); }

// ---- reductions ----------------------------------------------------------------

void reduce_kernel(OpId op, Inputs in, const Attrs& attrs, Tensor& out) {
  const Tensor& x = in[0];
  if (out.numel() == 0) return;
  cudaStream_t s = enter(out.device());
  const Axes axes = ops::normalize_axes(dispatch::op_name(op), attrs.ints, x.dim());
  auto reduced = [&](int64_t d) { return std::find(axes.begin(), axes.end(), d) != axes.end(); };
  ReduceArgs a;
  a.in = data_of(x);
  a.in_dtype = x.dtype();
  a.out = data_of(out);
  a.out_dtype = out.dtype();
  a.correction = attrs.f0;
  a.n_out = out.numel();
  a.n_red = 1;
  Shape ks, rs;
  Strides kst, rst;
  int last = -1;  // kind of the previous dim kept: 0 kept, 1 reduced
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t n = x.shape()[d];
    const int r = reduced(d) ? 1 : 0;
    if (r) a.n_red *= n;
    if (n == 1) continue;
    Shape& sz = r ? rs : ks;
    Strides& st = r ? rst : kst;
    // Adjacent dims of the same kind merge when memory allows.
    if (last == r && st.back() == x.strides()[d] * n) {
      sz.back() *= n;
      st.back() = x.strides()[d];
    } else {
      sz.push_back(n);
      st.push_back(x.strides()[d]);
    }
    last = r;
  }
  if (rs.size() > static_cast<std::size_t>(kMaxDims) || ks.size() > static_cast<std::size_t>(kMaxDims)) {
    Tensor c = contiguous(x);
    const Tensor ci[1] = {c};
    reduce_kernel(op, Inputs(ci, 1), attrs, out);
    return;
  }
  a.out_ndim = static_cast<int>(ks.size());
  a.red_ndim = static_cast<int>(rs.size());
  for (std::size_t i = 0; i < ks.size(); ++i) {
    a.out_size[i] = ks[i];
    a.in_ostride[i] = kst[i];
  }
  for (std::size_t i = 0; i < rs.size(); ++i) {
    a.red_size[i] = rs[i];
    a.red_stride[i] = rst[i];
  }
  if (a.red_ndim == 0) {  // nothing to reduce over (or one element): still one step per output
    a.red_ndim = 1;
    a.red_size[0] = a.n_red;
    a.red_stride[0] = 1;
  }
  const std::size_t ws = reduce_workspace_bytes(op, a);
  Tensor workspace;
  if (ws) workspace = ember::detail::make_tensor({static_cast<int64_t>(ws)}, DType::uint8, out.device());
  launch_reduce(op, a, ws ? data_of(workspace) : nullptr, ws, s);
}

// ---- softmax, index_select, concat, creation ----------------------------------

void softmax_kernel(OpId op, Inputs in, const Attrs& attrs, Tensor& out) {
  Tensor x = in[0].dtype() == out.dtype() ? contiguous(in[0]) : cast(in[0], out.dtype());
  if (out.numel() == 0) return;
  cudaStream_t s = enter(out.device());
  const int64_t nd = x.dim();
  const int64_t axis = nd == 0 ? 0 : (attrs.i0 < 0 ? attrs.i0 + nd : attrs.i0);
  int64_t outer = 1, inner = 1;
  const int64_t n = nd == 0 ? 1 : x.shape()[axis];
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape()[d];
  for (int64_t d = axis + 1; d < nd; ++d) inner *= x.shape()[d];
  launch_softmax(op == OpId::log_softmax, out.dtype(), data_of(x), data_of(out), outer, n, inner, s);
}

void index_select_kernel(OpId, Inputs in, const Attrs& attrs, Tensor& out) {
  const Tensor& x = in[0];
  const Tensor& idx = in[1];
  if (x.dim() == 0) {
    copy_into(out, x);
    return;
  }
  cudaStream_t s = enter(out.device());
  const int64_t d = attrs.i0 < 0 ? attrs.i0 + x.dim() : attrs.i0;
  const int64_t size = x.shape()[d];
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= x.shape()[k];
  for (int64_t k = d + 1; k < x.dim(); ++k) inner *= x.shape()[k];
  // Outer and inner dims must each be one stride apart; otherwise copy first.
  Tensor src = x;
  auto uniform = [&](int64_t lo, int64_t hi) {
    int64_t expect = -1;
    for (int64_t k = hi - 1; k >= lo; --k) {
      if (x.shape()[k] == 1) continue;
      if (expect >= 0 && x.strides()[k] != expect) return false;
      expect = x.strides()[k] * x.shape()[k];
    }
    return true;
  };
  if (!uniform(0, d) || !uniform(d + 1, x.dim())) src = contiguous(x);
  auto inner_stride = [&](int64_t lo, int64_t hi) {
    for (int64_t k = hi - 1; k >= lo; --k)
      if (src.shape()[k] != 1) return src.strides()[k];
    return int64_t(1);
  };
  const int64_t s_outer = inner_stride(0, d), s_inner = inner_stride(d + 1, src.dim());
  const int64_t n_idx = idx.numel();
  if (out.numel() == 0) return;
  if (attrs.i1) {  // negative indices are errors here: the kernel would wrap them (one more host read)
    for (int64_t v : idx.to(Device::cpu()).to_vector<int64_t>())
      if (v < 0)
        throw IndexError(fmt::format("index_select: index {} is out of range for dim {} of size {}", v, d, size));
  }
  Tensor flag = ember::detail::make_tensor({1}, DType::int32, out.device());
  EMBER_CUDA_CHECK(cudaMemsetAsync(data_of(flag), 0, sizeof(int), s));
  launch_index_select(x.dtype(), data_of(src), outer, size, inner, s_outer, src.strides()[d], s_inner, data_of(idx),
                      idx.dtype(), idx.dim() == 0 ? 0 : idx.strides()[0], n_idx, data_of(out),
                      static_cast<int*>(data_of(flag)), s);
  // A bad index is reported as on the CPU, except inside CUDA-graph recording
  // (no host reads there; the kernel wrote 0 for it).
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  EMBER_CUDA_CHECK(cudaStreamIsCapturing(s, &cap));
  if (cap != cudaStreamCaptureStatusNone) return;
  int bad = 0;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(&bad, data_of(flag), sizeof(int), cudaMemcpyDeviceToHost, s));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
  if (bad) {
    for (int64_t v : idx.to(Device::cpu()).to_vector<int64_t>())
      if (v < -size || v >= size)
        throw IndexError(fmt::format("index_select: index {} is out of range for dim {} of size {}", v, d, size));
  }
}

void concat_kernel(OpId, Inputs in, const Attrs& attrs, Tensor& out) {
  ops::concat_slices(in, attrs, out, &copy_into);
}

void creation_kernel(OpId op, Inputs, const Attrs& attrs, Tensor& out) {
  if (out.numel() == 0) return;
  cudaStream_t s = enter(out.device());
  CreationArgs a;
  a.out = data_of(out);
  a.dtype = out.dtype();
  a.numel = out.numel();
  if (op == OpId::eye) {
    a.rows = out.shape()[0];
    a.cols = out.shape()[1];
  }
  a.f0 = attrs.f0;
  a.f1 = attrs.f1;
  a.i0 = attrs.i0;
  a.i1 = attrs.i1;
  a.i2 = attrs.i2;
  a.i3 = attrs.i3;
  launch_creation(op, a, s);
}

}  // namespace

void matmul_kernel(OpId op, Inputs in, const Attrs& attrs, Tensor& out);  // blas/matmul.cpp
void addmm_kernel(OpId op, Inputs in, const Attrs& attrs, Tensor& out);   // blas/matmul.cpp

void register_kernels(dispatch::Registry& r) {
  constexpr DeviceType cuda = DeviceType::cuda;
#define EMBER_UNARY(name, F, rule, dtypes) r.set(cuda, OpId::name, &elementwise_kernel);
#define EMBER_BINARY(name, F, rule, dtypes) r.set(cuda, OpId::name, &elementwise_kernel);
#include "ops/elementwise.def"
#define EMBER_REDUCE(name, rule, dtypes) r.set(cuda, OpId::name, &reduce_kernel);
#include "ops/reduce.def"
  // Views only change metadata: the CPU kernel serves both devices.
  for (int i = 0; i < dispatch::kNumOps; ++i) {
    const auto op = static_cast<OpId>(i);
    const uint32_t flags = dispatch::schema(op).flags;
    if (flags & dispatch::kView) r.set(cuda, op, &cpu::view_kernel);
    if (flags & dispatch::kCreation) r.set(cuda, op, &creation_kernel);
  }
  r.set(cuda, OpId::copy, &copy_kernel);
  r.set(cuda, OpId::to_device, &cpu::to_device_kernel);  // copies from any device
  r.set(cuda, OpId::where, &where_kernel);
  r.set(cuda, OpId::clamp, &clamp_kernel);
  r.set(cuda, OpId::softmax, &softmax_kernel);
  r.set(cuda, OpId::log_softmax, &softmax_kernel);
  r.set(cuda, OpId::matmul, &matmul_kernel);
  r.set(cuda, OpId::addmm, &addmm_kernel);
  r.set(cuda, OpId::concat, &concat_kernel);
  r.set(cuda, OpId::index_select, &index_select_kernel);
}

}  // namespace ember::gpu
