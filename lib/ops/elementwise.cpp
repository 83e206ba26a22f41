// Public definitions of the elementwise ops, generated from elementwise.def.
#include <fmt/format.h>

#include <ember/ops.h>

#include "dispatch/dispatcher.h"
#include "ops/infer.h"

namespace ember {

using dispatch::OpId;

namespace detail {

Tensor unary(OpId op, const Tensor& x) { return dispatch::call(op, dispatch::Inputs(&x, 1)); }

Tensor binary(OpId op, const Operand& a, const Operand& b) {
  if (a.is_tensor() && b.is_tensor()) {
    const Tensor in[2] = {a.tensor(), b.tensor()};
    return dispatch::call(op, in);
  }
  if (a.is_tensor()) {
    const Tensor& t = a.tensor();
    const Tensor in[2] = {t, wrap_scalar(b.scalar(), ops::scalar_dtype(b.scalar(), t.dtype()), t.device())};
    return dispatch::call(op, in);
  }
  if (b.is_tensor()) {
    const Tensor& t = b.tensor();
    const Tensor in[2] = {wrap_scalar(a.scalar(), ops::scalar_dtype(a.scalar(), t.dtype()), t.device()), t};
    return dispatch::call(op, in);
  }
  const Tensor in[2] = {wrap_scalar(a.scalar(), a.scalar().default_dtype(), Device::cpu()),
                        wrap_scalar(b.scalar(), b.scalar().default_dtype(), Device::cpu())};
  return dispatch::call(op, in);
}

Tensor& inplace(OpId op, Tensor& self, const Tensor& other) {
  const Tensor in[2] = {self, other};
  dispatch::call_inplace(op, in, {}, self);
  return self;
}

Tensor& inplace(OpId op, Tensor& self, Scalar other) {
  const Tensor in[2] = {self, wrap_scalar(other, ops::scalar_dtype(other, self.dtype()), self.device())};
  dispatch::call_inplace(op, in, {}, self);
  return self;
}

}  // namespace detail

#define EMBER_UNARY(name, F, rule, dtypes) \
  Tensor name(const Tensor& x) { return detail::unary(OpId::name, x); }
#define EMBER_BINARY(name, F, rule, dtypes) \
  Tensor name(const Operand& a, const Operand& b) { return detail::binary(OpId::name, a, b); }
#include "ops/elementwise.def"

Tensor operator+(const Operand& a, const Operand& b) { return add(a, b); }
Tensor operator-(const Operand& a, const Operand& b) { return sub(a, b); }
Tensor operator*(const Operand& a, const Operand& b) { return mul(a, b); }
Tensor operator/(const Operand& a, const Operand& b) { return div(a, b); }
Tensor operator%(const Operand& a, const Operand& b) { return remainder(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator==(const Operand& a, const Operand& b) { return eq(a, b); }
Tensor operator!=(const Operand& a, const Operand& b) { return ne(a, b); }
Tensor operator<(const Operand& a, const Operand& b) { return lt(a, b); }
Tensor operator<=(const Operand& a, const Operand& b) { return le(a, b); }
Tensor operator>(const Operand& a, const Operand& b) { return gt(a, b); }
Tensor operator>=(const Operand& a, const Operand& b) { return ge(a, b); }
Tensor operator!(const Tensor& x) { return logical_not(x); }

Tensor& Tensor::add_(const Tensor& o) { return detail::inplace(OpId::add, *this, o); }
Tensor& Tensor::add_(Scalar o) { return detail::inplace(OpId::add, *this, o); }
Tensor& Tensor::sub_(const Tensor& o) { return detail::inplace(OpId::sub, *this, o); }
Tensor& Tensor::sub_(Scalar o) { return detail::inplace(OpId::sub, *this, o); }
Tensor& Tensor::mul_(const Tensor& o) { return detail::inplace(OpId::mul, *this, o); }
Tensor& Tensor::mul_(Scalar o) { return detail::inplace(OpId::mul, *this, o); }
Tensor& Tensor::div_(const Tensor& o) { return detail::inplace(OpId::div, *this, o); }
Tensor& Tensor::div_(Scalar o) { return detail::inplace(OpId::div, *this, o); }

Tensor where(const Tensor& cond, const Operand& a, const Operand& b) {
  auto as_tensor = [&](const Operand& o, const Operand& other) {
    if (o.is_tensor()) return o.tensor();
    DType dt = other.is_tensor() ? ops::scalar_dtype(o.scalar(), other.tensor().dtype())
                                 : o.scalar().default_dtype();
    return detail::wrap_scalar(o.scalar(), dt, cond.device());
  };
  const Tensor in[3] = {cond, as_tensor(a, b), as_tensor(b, a)};
  return dispatch::call(OpId::where, in);
}

Tensor clamp(const Tensor& x, std::optional<Scalar> lo, std::optional<Scalar> hi) {
  dispatch::Attrs a;
  if (lo) {
    a.f0 = lo->to_double();
    a.flags |= dispatch::kHasMin;
  }
  if (hi) {
    a.f1 = hi->to_double();
    a.flags |= dispatch::kHasMax;
  }
  if (lo && hi && a.f0 > a.f1) {
    // PyTorch's rule: every element becomes max.
    a.f0 = a.f1;
  }
  // A floating bound lifts an integer tensor to float32, as in PyTorch.
  if (!is_floating(x.dtype()) && ((lo && lo->is_floating()) || (hi && hi->is_floating()))) {
    const Tensor xf = x.to(DType::float32);
    return dispatch::call(OpId::clamp, dispatch::Inputs(&xf, 1), a);
  }
  return dispatch::call(OpId::clamp, dispatch::Inputs(&x, 1), a);
}

Tensor clamp(const Tensor& x, const Tensor& lo, const Tensor& hi) {
  const Shape s = broadcast_shapes(broadcast_shapes(x.shape(), lo.shape(), "clamp"), hi.shape(), "clamp");
  if (s.size() > 64)
    throw ShapeError(fmt::format("clamp: tensors of more than 64 dims are not supported (got {})", s.size()));
  return minimum(maximum(x, lo), hi);
}

}  // namespace ember
