// Tensor's view and copy methods: argument rules (negative dims, -1 sizes,
// Python slice clamping) are resolved here, then one semantic op is called.
#include <algorithm>

#include <fmt/format.h>

#include <ember/ops.h>

#ifdef EMBER_WITH_CUDA
#include "gpu/api.h"
#endif
#include "cpu/kernels.h"
#include "dispatch/dispatcher.h"

namespace ember {

using dispatch::Attrs;
using dispatch::OpId;

namespace {

Tensor view_op(OpId op, const Tensor& x, const Attrs& a) {
  return dispatch::call(op, dispatch::Inputs(&x, 1), a);
}

// The position of the one -1 in `shape` (-1 when there is none); any other
// negative size, or a second -1, is refused.
int64_t free_dim(const char* op, const Shape& shape) {
  int64_t infer_at = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer_at >= 0) throw ShapeError(fmt::format("{}: only one dim can be -1 (shape {})", op, shape_str(shape)));
      infer_at = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      throw ShapeError(fmt::format("{}: invalid size {} in shape {}", op, shape[i], shape_str(shape)));
    }
  }
  return infer_at;
}

Shape infer_size(const char* op, const Shape& shape, int64_t numel) {
  Shape s = shape;
  const int64_t infer_at = free_dim(op, shape);
  int64_t known = 1;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (static_cast<int64_t>(i) != infer_at) known *= s[i];
  if (infer_at >= 0) {
    if (known == 0 || numel % known != 0)
      throw ShapeError(fmt::format("{}: shape {} is invalid for a tensor of {} elements", op,
                                   shape_str(shape), numel));
    s[infer_at] = numel / known;
  }
  if (shape_numel(s) != numel)
    throw ShapeError(fmt::format("{}: shape {} is invalid for a tensor of {} elements", op,
                                 shape_str(shape), numel));
  return s;
}

Tensor reshape_to(const Tensor& x, const Shape& s) {
  if (s == x.shape()) return x;
  Attrs a;
  a.ints = s;
  return view_op(OpId::reshape, x, a);
}

}  // namespace

Tensor Tensor::reshape(const Shape& shape) const {
  // A graph tensor (no storage) may have unknown dims: its graph's shape rule
  // takes the target as given, -1 included (in graph mode), and matches it.
  if (!impl().storage && (free_dim("reshape", shape) < 0 || [] {
        const dispatch::Recorder* rec = dispatch::current_recorder();
        return rec && rec->graph_mode();
      }())) {
    Attrs a;
    a.ints = shape;
    return view_op(OpId::reshape, *this, a);
  }
  return reshape_to(*this, infer_size("reshape", shape, numel()));
}

Tensor Tensor::view(const Shape& shape) const {
  Shape s = infer_size("view", shape, numel());
  Strides st;
  if (!cpu::view_strides(this->shape(), strides(), s, &st))
    throw ShapeError(fmt::format(
        "view: shape {} is not compatible with the input's shape {} and strides {}; use reshape() "
        "(which copies when it must)",
        shape_str(s), shape_str(this->shape()), shape_str(strides())));
  return reshape_to(*this, s);
}

Tensor Tensor::permute(const Axes& dims) const {
  Attrs a;
  a.ints = dims;
  return view_op(OpId::permute, *this, a);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  const int64_t r = dim();
  if (r == 0) {
    wrap_dim(d0, 0, "transpose");
    wrap_dim(d1, 0, "transpose");
    return *this;
  }
  d0 = wrap_dim(d0, r, "transpose");
  d1 = wrap_dim(d1, r, "transpose");
  Axes p;
  for (int64_t i = 0; i < r; ++i) p.push_back(i);
  std::swap(p[d0], p[d1]);
  return permute(p);
}

Tensor Tensor::t() const {
  if (dim() > 2)
    throw ShapeError(fmt::format("t: expects a tensor with at most 2 dims (got {}-d {}); use transpose(d0, d1)",
                                 dim(), shape_str(shape())));
  return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t stop, int64_t step) const {
  if (dim() == 0) throw IndexError("slice: cannot slice a 0-d tensor");
  d = wrap_dim(d, dim(), "slice");
  if (step <= 0) throw ValueError(fmt::format("slice: step must be positive (got {})", step));
  const int64_t size = shape()[d];
  auto clampi = [&](int64_t v) {
    if (v < 0) v += size;
    return std::clamp<int64_t>(v, 0, size);
  };
  start = clampi(start);
  stop = std::max(start, clampi(stop));
  Attrs a;
  a.i0 = d;
  a.i1 = start;
  a.i2 = stop;
  a.i3 = step;
  return view_op(OpId::slice, *this, a);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  if (dim() == 0) throw IndexError("select: cannot index a 0-d tensor");
  d = wrap_dim(d, dim(), "select");
  const int64_t size = shape()[d];
  if (index < -size || index >= size)
    throw IndexError(fmt::format("select: index {} is out of range for dim {} of size {}", index, d, size));
  Attrs a;
  a.i0 = d;
  a.i1 = index < 0 ? index + size : index;
  return view_op(OpId::select, *this, a);
}

Tensor Tensor::squeeze() const {
  Shape s;
  for (int64_t v : shape())
    if (v != 1) s.push_back(v);
  return reshape_to(*this, s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (dim() == 0 || shape()[d] != 1) return *this;
  Shape s = shape();
  s.erase(s.begin() + d);
  return reshape_to(*this, s);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  Attrs a;
  a.ints = s;
  return view_op(OpId::reshape, *this, a);
}

Tensor Tensor::expand(const Shape& shape) const {
  Shape s = shape;
  const int64_t lead = static_cast<int64_t>(s.size()) - dim();
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != -1) continue;
    if (static_cast<int64_t>(i) < lead)
      throw ShapeError(fmt::format("expand: -1 is not allowed in a new leading dim (shape {})", shape_str(shape)));
    s[i] = this->shape()[i - lead];
  }
  for (int64_t d : s)
    if (d < 0) throw ShapeError(fmt::format("expand: invalid size {} in shape {}", d, shape_str(shape)));
  if (s == this->shape()) return *this;
  Attrs a;
  a.ints = s;
  return view_op(OpId::expand, *this, a);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape_to(*this, {1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  if (start > end)
    throw ValueError(fmt::format("flatten: start_dim {} comes after end_dim {}", start, end));
  Shape s(shape().begin(), shape().begin() + start);
  int64_t n = 1;
  for (int64_t i = start; i <= end; ++i) n *= shape()[i];
  s.push_back(n);
  for (int64_t i = end + 1; i < dim(); ++i) s.push_back(shape()[i]);
  return reshape_to(*this, s);
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Attrs a;
  a.dtype = dtype();
  return dispatch::call(OpId::copy, dispatch::Inputs(this, 1), a);
}

Tensor Tensor::to(DType dt) const { return dt == dtype() ? *this : cast(*this, dt); }

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
#ifdef EMBER_WITH_CUDA
  gpu::check_device(device, "to");  // before the result is allocated there
#else
  if (device.is_cuda())
    throw DeviceError(fmt::format(
        "to: {} requested but no CUDA device is available; check em::cuda_available()",
        device.str()));
#endif
  // An op, so that traces record the move (and replay it with new inputs).
  Attrs a;
  a.device = device;
  return dispatch::call(OpId::to_device, dispatch::Inputs(this, 1), a);
}

Tensor& Tensor::copy_(const Tensor& src) {
  Attrs a;
  a.dtype = dtype();
  // Between devices (as in PyTorch): move src here first, then copy in place.
  if (src.defined() && defined() && src.device() != device() && !(src.device().is_cpu() && src.dim() == 0)) {
    const Tensor moved = src.to(device());
    dispatch::call_inplace(OpId::copy, dispatch::Inputs(&moved, 1), a, *this);
    return *this;
  }
  dispatch::call_inplace(OpId::copy, dispatch::Inputs(&src, 1), a, *this);
  return *this;
}

Tensor& Tensor::fill_(Scalar value) {
  Tensor v = detail::wrap_scalar(value, dtype(), device());
  return copy_(v);
}

Tensor cast(const Tensor& x, DType dt) {
  Attrs a;
  a.dtype = dt;
  return dispatch::call(OpId::copy, dispatch::Inputs(&x, 1), a);
}

Tensor detach(const Tensor& x) { return view_op(OpId::detach, x, {}); }

}  // namespace ember
