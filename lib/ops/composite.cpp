// Ops written on top of others, and the thin public wrappers of the
// non-elementwise ops (softmax, matmul, concat, index_select).
#include <cmath>

#include <fmt/format.h>

#include <ember/ops.h>

#include "dispatch/dispatcher.h"

namespace ember {

using dispatch::Attrs;
using dispatch::OpId;

Tensor softmax(const Tensor& x, int64_t axis) {
  Attrs a;
  a.i0 = axis;
  return dispatch::call(OpId::softmax, dispatch::Inputs(&x, 1), a);
}

Tensor log_softmax(const Tensor& x, int64_t axis) {
  Attrs a;
  a.i0 = axis;
  return dispatch::call(OpId::log_softmax, dispatch::Inputs(&x, 1), a);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const Tensor in[2] = {a, b};
  return dispatch::call(OpId::matmul, in);
}

Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, double beta, double alpha) {
  const Tensor in[3] = {input, mat1, mat2};
  Attrs a;
  a.f0 = beta;
  a.f1 = alpha;
  return dispatch::call(OpId::addmm, in, a);
}

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim) {
  Attrs a;
  a.i0 = dim;
  return dispatch::call(OpId::concat, dispatch::Inputs(tensors.data(), tensors.size()), a);
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw ValueError("stack: expects a non-empty list of tensors");
  const Shape& s0 = tensors[0].shape();
  // Graph tensors (no storage) may have unknown dims: concat's rule checks them.
  bool symbolic = false;
  for (const Tensor& t : tensors) symbolic = symbolic || (t.defined() && !t.impl().storage);
  for (std::size_t i = 1; i < tensors.size() && !symbolic; ++i)
    if (tensors[i].shape() != s0)
      throw ShapeError(fmt::format("stack: tensor {} has shape {} but tensor 0 has {}; all must match",
                                   i, shape_str(tensors[i].shape()), shape_str(s0)));
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  if (tensors[0].dim() + 1 > 64)
    throw ShapeError(fmt::format("stack: tensors of more than 64 dims are not supported (got {})",
                                 tensors[0].dim() + 1));
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(d));
  return concat(parts, d);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index, bool wrap_negative) {
  Attrs a;
  a.i0 = dim;
  a.i1 = wrap_negative ? 0 : 1;
  const Tensor in[2] = {x, index};
  return dispatch::call(OpId::index_select, in, a);
}

bool equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  if (a.numel() == 0) return true;
  return all(eq(a, b)).item<bool>();
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  broadcast_shapes(a.shape(), b.shape(), "allclose");
  Tensor x = a.to(float64), y = b.to(float64);
  Tensor close = le(abs(x - y), atol + rtol * abs(y));
  // Equal infinities are close; NaNs only with equal_nan.
  close = logical_or(close, eq(x, y));
  if (equal_nan) close = logical_or(close, logical_and(ne(x, x), ne(y, y)));
  return close.numel() == 0 || all(close).item<bool>();
}

}  // namespace ember
