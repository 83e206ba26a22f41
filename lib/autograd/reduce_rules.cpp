// Derivative rules of the reduction family (lib/ops/reduce.def).
#include "autograd/rule.h"
#include "dispatch/attrs.h"
#include "ops/infer.h"

namespace ember::autograd {

using dispatch::OpId;

namespace {

// The reduced axes of the call (sorted, wrapped; all dims when none were given).
Axes reduced_axes(const GradCtx& c) {
  return ops::normalize_axes(dispatch::op_name(c.op), c.attrs.ints, c.in[0].dim());
}

// `t` (shaped like the op's result) with the reduced dims back as size 1, so it
// broadcasts against the input.
Tensor keep_dims(const GradCtx& c, const Tensor& t) {
  if (c.attrs.flags & dispatch::kKeepDims) return t;
  Shape s = c.in[0].shape();
  for (int64_t d : reduced_axes(c)) s[static_cast<std::size_t>(d)] = 1;
  return t.reshape(s);
}

// max/min: the gradient goes to the extreme elements, shared evenly on ties.
void extreme_rule(const GradCtx& c, const Tensor& g, Tensor* gx) {
  const Tensor& x = c.in[0];
  const Tensor hit = (x == keep_dims(c, c.out)).to(g.dtype());
  gx[0] = hit * (keep_dims(c, g) / sum(hit, reduced_axes(c), true));
}

}  // namespace

void register_reduce_rules(RuleTable& t) {
  t.set(OpId::sum, kUsesNothing, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    gx[0] = broadcast_like(keep_dims(c, g), c.in[0]);
  });
  // Uses the input only for its shape, which an in-place write cannot change.
  t.set(OpId::mean, kUsesNothing, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& x = c.in[0];
    gx[0] = broadcast_like(keep_dims(c, g) / reduced_count(x, reduced_axes(c)), x);
  });
  // d prod / dx_i is the product of the other elements. prod / x_i is that
  // only where no element is 0; so, per reduced slice: no zero, P / x_i with P
  // the product of the nonzero elements; one zero, P at the zero and 0
  // elsewhere; more, 0 (as TF's and PyTorch's prod gradients, never NaN).
  t.set(OpId::prod, kUsesIn0, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& x = c.in[0];
    const Axes axes = reduced_axes(c);
    const Tensor zero = eq(x, 0);
    const Tensor zeros_in = sum(zero, axes, true);
    const Tensor safe = where(zero, 1, x);
    const Tensor nonzero_prod = prod(safe, axes, true);
    const Tensor others =
        where(eq(zeros_in, 0), nonzero_prod / safe, where(logical_and(eq(zeros_in, 1), zero), nonzero_prod, 0));
    gx[0] = keep_dims(c, g) * others;
  });
  t.set(OpId::max, kUsesIn0 | kUsesOut, &extreme_rule);
  t.set(OpId::min, kUsesIn0 | kUsesOut, &extreme_rule);
  t.set(OpId::var, kUsesIn0, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& x = c.in[0];
    const Axes axes = reduced_axes(c);
    const Tensor dof = reduced_count(x, axes) - c.attrs.f0;
    gx[0] = keep_dims(c, g) * ((x - mean(x, axes, true)) * 2.0 / dof);
  });
  t.set(OpId::std, kUsesIn0 | kUsesOut, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& x = c.in[0];
    const Axes axes = reduced_axes(c);
    const Tensor dof = reduced_count(x, axes) - c.attrs.f0;
    gx[0] = keep_dims(c, g / c.out) * ((x - mean(x, axes, true)) / dof);
  });
  t.not_differentiable(OpId::argmax, "it returns int64 positions");
  t.not_differentiable(OpId::argmin, "it returns int64 positions");
  t.not_differentiable(OpId::all, "it returns bool");
  t.not_differentiable(OpId::any, "it returns bool");
}

}  // namespace ember::autograd
