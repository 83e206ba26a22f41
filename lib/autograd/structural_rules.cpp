// Derivative rules of the structural ops (lib/ops/structural.def): views,
// copies, where/clamp, softmax, matmul, addmm, concat, index_select. Every rule is
// functional (no in-place writes into views), so traces and graphs can hold it.
#include <vector>

#include "autograd/rule.h"
#include "dispatch/attrs.h"

namespace ember::autograd {

using dispatch::OpId;

namespace {

// `g` placed at positions [start, start + g.size(d)) of a zero tensor whose dim d has `size`.
// g placed at [start, start + g's size) of dim d of a zero tensor shaped like x.
Tensor pad_dim(const Tensor& g, const Tensor& x, int64_t d, int64_t start) {
  const int64_t n = g.shape()[static_cast<std::size_t>(d)];
  const int64_t size = x.shape()[static_cast<std::size_t>(d)];
  std::vector<Tensor> parts;
  if (start > 0) parts.push_back(zeros_along(x, d, start, g.dtype()));
  parts.push_back(g);
  if (size - start - n > 0) parts.push_back(zeros_along(x, d, size - start - n, g.dtype()));
  return parts.size() == 1 ? g : concat(parts, d);
}

void slice_rule(const GradCtx& c, const Tensor& g, Tensor* gx) {
  const int64_t d = wrap_dim(c.attrs.i0, c.in[0].dim(), "slice");
  const int64_t start = c.attrs.i1, step = c.attrs.i3;
  const int64_t size = c.in[0].shape()[static_cast<std::size_t>(d)];
  const int64_t n = g.shape()[static_cast<std::size_t>(d)];
  Tensor spread = g;
  if (step > 1 && n > 0) {
    // Interleave step-1 zeros after every element: [n, 1] ++ [n, step-1] -> [n * step].
    const Tensor lifted = g.unsqueeze(d + 1);
    const Tensor tiled = concat({lifted, zeros_along(lifted, d + 1, step - 1, g.dtype())}, d + 1);
    Shape flat = g.shape();
    flat[static_cast<std::size_t>(d)] = n * step;
    spread = tiled.reshape(flat);
    // The last element's trailing zeros may run past the end of the dim.
    const int64_t keep = std::min(n * step, size - start);
    if (keep < n * step) spread = spread.slice(d, 0, keep);
  }
  gx[0] = pad_dim(spread, c.in[0], d, start);
}

void matmul_rule(const GradCtx& c, const Tensor& g, Tensor* gx) {
  const Tensor& a = c.in[0];
  const Tensor& b = c.in[1];
  // 1-d operands as NumPy promotes them: a [k] -> [1,k], b [k] -> [k,1].
  const Tensor A = a.dim() == 1 ? a.unsqueeze(0) : a;
  const Tensor B = b.dim() == 1 ? b.unsqueeze(1) : b;
  Tensor G = g;
  if (a.dim() == 1 && b.dim() == 1)
    G = g.reshape({1, 1});
  else if (a.dim() == 1)
    G = g.unsqueeze(-2);
  else if (b.dim() == 1)
    G = g.unsqueeze(-1);
  if (c.need(0)) gx[0] = sum_to(matmul(G, B.transpose(-1, -2)), A.shape()).reshape(a.shape());
  if (c.need(1)) gx[1] = sum_to(matmul(A.transpose(-1, -2), G), B.shape()).reshape(b.shape());
}

// beta * input + alpha * mat1 @ mat2: the input's gradient is summed over
// the dims it was broadcast along.
void addmm_rule(const GradCtx& c, const Tensor& g, Tensor* gx) {
  const double beta = c.attrs.f0, alpha = c.attrs.f1;
  const Tensor ga = alpha == 1 ? g : g * alpha;
  if (c.need(0)) gx[0] = sum_to(beta == 1 ? g : g * beta, c.in[0].shape());
  if (c.need(1)) gx[1] = matmul(ga, c.in[2].t());
  if (c.need(2)) gx[2] = matmul(c.in[1].t(), ga);
}

void index_select_rule(const GradCtx& c, const Tensor& g, Tensor* gx) {
  const Tensor& x = c.in[0];
  if (!c.need(0)) return;
  if (x.dim() == 0) {
    gx[0] = g.reshape({});
    return;
  }
  const int64_t d = wrap_dim(c.attrs.i0, x.dim(), "index_select");
  const int64_t size = x.shape()[static_cast<std::size_t>(d)];
  // Scatter-add written as a product with a one-hot [n, size] matrix, so that
  // repeated indices accumulate and the rule stays one functional op.
  const Tensor idx = c.in[1].reshape({-1}).to(int64);
  const Tensor wrapped = where(idx < 0, idx + size, idx);
  const Tensor onehot =
      (wrapped.unsqueeze(1) == arange(size, int64, x.device()).unsqueeze(0)).to(g.dtype());
  gx[0] = matmul(g.transpose(d, -1), onehot).transpose(d, -1);
}

}  // namespace

void register_structural_rules(RuleTable& t) {
  t.set(OpId::reshape, kUsesNothing,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = reshape_like(g, c.in[0]); });
  t.set(OpId::permute, kUsesNothing, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const int64_t r = c.in[0].dim();
    Axes inv(static_cast<std::size_t>(r), 0);
    for (int64_t i = 0; i < r; ++i) inv[wrap_dim(c.attrs.ints[i], r, "permute")] = i;
    gx[0] = g.permute(inv);
  });
  t.set(OpId::slice, kUsesNothing, &slice_rule);
  t.set(OpId::select, kUsesNothing, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const int64_t d = wrap_dim(c.attrs.i0, c.in[0].dim(), "select");
    gx[0] = pad_dim(g.unsqueeze(d), c.in[0], d, c.attrs.i1);
  });
  t.set(OpId::expand, kUsesNothing,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = sum_to(g, c.in[0].shape()); });
  // A dtype conversion: the engine casts the gradient back to the input's dtype.
  t.set(OpId::copy, kUsesNothing, [](const GradCtx&, const Tensor& g, Tensor* gx) { gx[0] = g; });
  // A move between devices: the gradient moves back.
  t.set(OpId::to_device, kUsesNothing,
        [](const GradCtx& c, const Tensor& g, Tensor* gx) { gx[0] = g.to(c.in[0].device()); });
  t.set(OpId::where, kUsesIn0, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& cond = c.in[0];
    if (c.need(1)) gx[1] = where(cond, g, 0);
    if (c.need(2)) gx[2] = where(cond, 0, g);
  });
  t.set(OpId::clamp, kUsesIn0, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& x = c.in[0];
    Tensor inside;
    if (c.attrs.flags & dispatch::kHasMin) inside = x >= c.attrs.f0;
    if (c.attrs.flags & dispatch::kHasMax)
      inside = inside.defined() ? logical_and(inside, x <= c.attrs.f1) : (x <= c.attrs.f1);
    gx[0] = where(inside, g, 0);
  });
  t.set(OpId::softmax, kUsesOut, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const Tensor& y = c.out;
    gx[0] = y * (g - sum(g * y, {c.attrs.i0}, true));
  });
  t.set(OpId::log_softmax, kUsesOut, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    gx[0] = g - exp(c.out) * sum(g, {c.attrs.i0}, true);
  });
  t.set(OpId::matmul, kUsesIn0 | kUsesIn1, &matmul_rule);
  t.set(OpId::addmm, kUsesIn1 | kUsesIn2, &addmm_rule);
  t.set(OpId::concat, kUsesNothing, [](const GradCtx& c, const Tensor& g, Tensor* gx) {
    const int64_t d = wrap_dim(c.attrs.i0, c.in[0].dim(), "concat");
    int64_t off = 0;
    for (std::size_t i = 0; i < c.in.size(); ++i) {
      const int64_t n = c.in[i].shape()[static_cast<std::size_t>(d)];
      if (c.need(i)) gx[i] = g.slice(d, off, off + n);
      off += n;
    }
  });
  t.set(OpId::index_select, kUsesIn1, &index_select_rule);
  // detach: the gradient stops here (no contribution to its input).
  t.set(OpId::detach, kUsesNothing, [](const GradCtx&, const Tensor&, Tensor*) {});
  for (int i = 0; i < dispatch::kNumOps; ++i)
    if (dispatch::schema(static_cast<OpId>(i)).flags & dispatch::kCreation)
      t.not_differentiable(static_cast<OpId>(i), "it has no tensor inputs");
}

}  // namespace ember::autograd
