// Derivative rules of the elementwise family (lib/ops/elementwise.def).
// x = c.in[0], y = c.out; binary ops: a = c.in[0], b = c.in[1].
#include <cmath>
#include <numbers>

#include "autograd/rule.h"

namespace ember::autograd {

using dispatch::OpId;

namespace {

Tensor zero_grad(const GradCtx&, const Tensor& g) { return zeros_like(g); }

}  // namespace

void register_elementwise_rules(RuleTable& t) {
  // ---- unary ----
  t.set(OpId::neg, kUsesNothing, [](const GradCtx&, const Tensor& g, Tensor* gx) { gx[0] = -g; });
  t.set(OpId::abs, kUsesIn0,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g * sign(c.in[0]); });
  // Piecewise constant: zero almost everywhere (as in PyTorch).
  for (OpId op : {OpId::sign, OpId::floor, OpId::ceil, OpId::round})
    t.set(op, kUsesNothing,
          [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = zero_grad(c, g); });
  t.set(OpId::exp, kUsesOut, [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g * c.out; });
  t.set(OpId::log, kUsesIn0, [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g / c.in[0]; });
  t.set(OpId::log1p, kUsesIn0,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g / (c.in[0] + 1); });
  t.set(OpId::expm1, kUsesOut,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g * (c.out + 1); });
  t.set(OpId::sqrt, kUsesOut,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g * 0.5 / c.out; });
  t.set(OpId::rsqrt, kUsesOut, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& y = c.out;  // d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
    gx[0] = g * (y * y * y * -0.5);
  });
  t.set(OpId::sin, kUsesIn0,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g * cos(c.in[0]); });
  t.set(OpId::cos, kUsesIn0,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g * -sin(c.in[0]); });
  t.set(OpId::tan, kUsesOut,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g * (c.out * c.out + 1); });
  // tanh, sigmoid and relu have one-pass derivative kernels (rules below).
  t.set(OpId::tanh, kUsesOut,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = tanh_backward(g, c.out); });
  t.set(OpId::sigmoid, kUsesOut,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = sigmoid_backward(g, c.out); });
  t.set(OpId::erf, kUsesIn0, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& x = c.in[0];
    gx[0] = g * (exp(-(x * x)) * (2 / std::sqrt(std::numbers::pi)));
  });
  t.set(OpId::relu, kUsesOut,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = relu_backward(g, c.out); });
  t.set(OpId::gelu, kUsesIn0, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& x = c.in[0];  // Phi(x) + x phi(x)
    const Tensor cdf = (erf(x * std::numbers::sqrt2 / 2) + 1) * 0.5;
    const Tensor pdf = exp(x * x * -0.5) * (1 / std::sqrt(2 * std::numbers::pi));
    gx[0] = g * (cdf + x * pdf);
  });
  t.set(OpId::silu, kUsesIn0, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& x = c.in[0];
    const Tensor s = sigmoid(x);
    gx[0] = g * (s * (x * (1 - s) + 1));
  });
  t.set(OpId::softplus, kUsesIn0,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g * sigmoid(c.in[0]); });
  t.not_differentiable(OpId::logical_not, "it returns bool");

  // ---- binary ----
  t.set(OpId::add, kUsesNothing, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    if (c.need(0)) gx[0] = g;
    if (c.need(1)) gx[1] = g;
  });
  t.set(OpId::sub, kUsesNothing, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    if (c.need(0)) gx[0] = g;
    if (c.need(1)) gx[1] = -g;
  });
  t.set(OpId::mul, kUsesIn0 | kUsesIn1, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    if (c.need(0) && c.need(1) && c.in[0].is_same(c.in[1])) {  // x * x: one product, doubled
      const Tensor gt = g * c.in[0];
      gx[0] = gt + gt;
      return;
    }
    if (c.need(0)) gx[0] = g * c.in[1];
    if (c.need(1)) gx[1] = g * c.in[0];
  });
  t.set(OpId::div, kUsesIn0 | kUsesIn1, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& a = c.in[0];
    const Tensor& b = c.in[1];
    if (c.need(0)) gx[0] = g / b;
    if (c.need(1)) gx[1] = -g * a / (b * b);
  });
  t.set(OpId::pow, kUsesIn0 | kUsesIn1 | kUsesOut,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) {
          const Tensor& a = c.in[0];
          const Tensor& b = c.in[1];
          if (c.need(0)) gx[0] = g * b * pow(a, b - 1);
          // d a^b / db = a^b log a; 0 at a == 0 (the limit for b > 0), as PyTorch.
          if (c.need(1)) gx[1] = where(a == 0, 0, g * c.out * log(a));
        });
  t.set(OpId::remainder, kUsesIn0 | kUsesIn1, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    // a mod b = a - b floor(a / b)
    if (c.need(0)) gx[0] = g;
    if (c.need(1)) gx[1] = -g * floor(c.in[0] / c.in[1]);
  });
  // Ties send half the gradient to each side (PyTorch's rule).
  t.set(OpId::maximum, kUsesIn0 | kUsesIn1, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& a = c.in[0];
    const Tensor& b = c.in[1];
    const Tensor half = where(a == b, g * 0.5, 0);
    if (c.need(0)) gx[0] = where(a > b, g, half);
    if (c.need(1)) gx[1] = where(b > a, g, half);
  });
  t.set(OpId::minimum, kUsesIn0 | kUsesIn1, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& a = c.in[0];
    const Tensor& b = c.in[1];
    const Tensor half = where(a == b, g * 0.5, 0);
    if (c.need(0)) gx[0] = where(a < b, g, half);
    if (c.need(1)) gx[1] = where(b < a, g, half);
  });
  // The derivative kernels (second derivatives): d/dg is the kernel itself,
  // d/dy is differentiated by hand; relu_backward is piecewise constant in y.
  t.set(OpId::tanh_backward, kUsesIn0 | kUsesIn1, [](const GradCtx& c, const Tensor& gg, Tensor* gx) {
    const Tensor& g = c.in[0];
    const Tensor& y = c.in[1];
    if (c.need(0)) gx[0] = tanh_backward(gg, y);
    if (c.need(1)) gx[1] = gg * g * (y * -2);
  });
  t.set(OpId::sigmoid_backward, kUsesIn0 | kUsesIn1, [](const GradCtx& c, const Tensor& gg, Tensor* gx) {
    const Tensor& g = c.in[0];
    const Tensor& y = c.in[1];
    if (c.need(0)) gx[0] = sigmoid_backward(gg, y);
    if (c.need(1)) gx[1] = gg * g * (1 - y * 2);
  });
  t.set(OpId::relu_backward, kUsesIn1, [](const GradCtx& c, const Tensor& gg, Tensor* gx) {
    if (c.need(0)) gx[0] = relu_backward(gg, c.in[1]);
    if (c.need(1)) gx[1] = zero_grad(c, gg);
  });
  t.not_differentiable(OpId::floor_divide, "it is an integer division (piecewise constant)");
  for (OpId op : {OpId::eq, OpId::ne, OpId::lt, OpId::le, OpId::gt, OpId::ge, OpId::logical_and,
                  OpId::logical_or, OpId::logical_xor})
    t.not_differentiable(op, "it returns bool");
}

}  // namespace ember::autograd
