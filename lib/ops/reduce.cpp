// Public definitions of the reductions (reduce.def).
#include <ember/ops.h>

#include "dispatch/dispatcher.h"

namespace ember {

using dispatch::OpId;

namespace {
Tensor reduce(OpId op, const Tensor& x, const Axes& axes, bool keepdims, double correction = 0) {
  dispatch::Attrs a;
  a.ints = axes;
  a.flags = keepdims ? dispatch::kKeepDims : 0;
  a.f0 = correction;
  return dispatch::call(op, dispatch::Inputs(&x, 1), a);
}
Tensor arg_reduce(OpId op, const Tensor& x, std::optional<int64_t> axis, bool keepdims) {
  if (!axis) {
    // Over the flattened tensor, like PyTorch's dim=None.
    Tensor r = reduce(op, x, {}, false);
    if (keepdims) r = r.reshape(Shape(static_cast<std::size_t>(x.dim()), 1));
    return r;
  }
  return reduce(op, x, Axes{*axis}, keepdims);
}
}  // namespace

Tensor sum(const Tensor& x, const Axes& axes, bool k) { return reduce(OpId::sum, x, axes, k); }
Tensor mean(const Tensor& x, const Axes& axes, bool k) { return reduce(OpId::mean, x, axes, k); }
Tensor prod(const Tensor& x, const Axes& axes, bool k) { return reduce(OpId::prod, x, axes, k); }
Tensor max(const Tensor& x, const Axes& axes, bool k) { return reduce(OpId::max, x, axes, k); }
Tensor min(const Tensor& x, const Axes& axes, bool k) { return reduce(OpId::min, x, axes, k); }
Tensor argmax(const Tensor& x, std::optional<int64_t> axis, bool k) {
  return arg_reduce(OpId::argmax, x, axis, k);
}
Tensor argmin(const Tensor& x, std::optional<int64_t> axis, bool k) {
  return arg_reduce(OpId::argmin, x, axis, k);
}
Tensor var(const Tensor& x, const Axes& axes, bool k, double c) {
  return reduce(OpId::var, x, axes, k, c);
}
Tensor std(const Tensor& x, const Axes& axes, bool k, double c) {
  return reduce(OpId::std, x, axes, k, c);
}
Tensor all(const Tensor& x, const Axes& axes, bool k) { return reduce(OpId::all, x, axes, k); }
Tensor any(const Tensor& x, const Axes& axes, bool k) { return reduce(OpId::any, x, axes, k); }

Tensor Tensor::sum(const Axes& a, bool k) const { return ember::sum(*this, a, k); }
Tensor Tensor::mean(const Axes& a, bool k) const { return ember::mean(*this, a, k); }
Tensor Tensor::prod(const Axes& a, bool k) const { return ember::prod(*this, a, k); }
Tensor Tensor::max(const Axes& a, bool k) const { return ember::max(*this, a, k); }
Tensor Tensor::min(const Axes& a, bool k) const { return ember::min(*this, a, k); }
Tensor Tensor::argmax(int64_t axis, bool k) const { return ember::argmax(*this, axis, k); }
Tensor Tensor::argmin(int64_t axis, bool k) const { return ember::argmin(*this, axis, k); }
Tensor Tensor::var(const Axes& a, bool k, double c) const { return ember::var(*this, a, k, c); }
Tensor Tensor::std(const Axes& a, bool k, double c) const { return ember::std(*this, a, k, c); }
Tensor Tensor::all(const Axes& a, bool k) const { return ember::all(*this, a, k); }
Tensor Tensor::any(const Axes& a, bool k) const { return ember::any(*this, a, k); }

}  // namespace ember
