// The rule table and the reverse-mode engine.
#include "autograd/engine.h"

#include <fmt/format.h>

#include "autograd/rule.h"
#include "dispatch/recorder.h"
#include "dispatch/schema.h"

namespace ember::autograd {

using dispatch::OpId;

void RuleTable::set(OpId op, uint8_t uses, RuleFn fn) {
  Rule& r = rules_[dispatch::op_index(op)];
  EMBER_CHECK_INTERNAL(!r.declared);
  r.fn = fn;
  r.uses = uses;
  r.declared = true;
}

void RuleTable::not_differentiable(OpId op, const char* why) {
  Rule& r = rules_[dispatch::op_index(op)];
  EMBER_CHECK_INTERNAL(!r.declared);
  r.why_not = why;
  r.declared = true;
}

const Rule& rule(OpId op) {
  static const RuleTable* table = [] {
    auto* t = new RuleTable;
    register_elementwise_rules(*t);
    register_reduce_rules(*t);
    register_structural_rules(*t);
    return t;
  }();
  return table->get(op);
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  Axes axes;
  for (int64_t d = 0; d < g.dim(); ++d)
    if (d < lead || (shape[static_cast<std::size_t>(d - lead)] == 1 && g.shape()[d] != 1))
      axes.push_back(d);
  if (axes.empty()) return g.reshape(shape);
  return sum(g, axes, true).reshape(shape);
}

bool graph_mode() {
  const dispatch::Recorder* r = dispatch::current_recorder();
  return r && r->graph_mode();
}

Tensor broadcast_like(const Tensor& g, const Tensor& x) {
  if (!graph_mode()) return g.shape() == x.shape() ? g : g.expand(x.shape());
  return where(x == x, g, g);  // shaped by x at run time (NaN-safe: both sides are g)
}

Tensor zeros_along(const Tensor& like, int64_t d, int64_t k, DType dtype) {
  Shape s = like.shape();
  s[static_cast<std::size_t>(d)] = k;
  if (!graph_mode()) return zeros(s, dtype, like.device());
  // One zero slice of `like` expanded along d: the expand keeps its other dims, known or not.
  return zeros_like(like.slice(d, 0, 1)).to(dtype).expand(s);
}

Tensor reshape_like(const Tensor& g, const Tensor& x) {
  if (!graph_mode()) return g.reshape(x.shape());
  return dispatch::current_recorder()->reshape_like(g, x);
}

Tensor reduced_count(const Tensor& x, const Axes& axes) {
  if (graph_mode()) return sum(ones_like(x), axes, true);
  int64_t n = 1;
  for (int64_t d : axes) n *= x.shape()[static_cast<std::size_t>(d)];
  return scalar_tensor(static_cast<double>(n), x.dtype(), x.device());
}

namespace {

// Makes a rule's gradient fit the value it belongs to: summed over broadcast
// dims, cast to its dtype.
Tensor conform(Tensor g, const Shape& shape, DType dtype) {
  if (g.shape() != shape) g = sum_to(g, shape);
  if (g.dtype() != dtype) g = g.to(dtype);
  return g;
}

[[noreturn]] void throw_modified(const char* who, const Record& r, const char* what) {
  throw ValueError(fmt::format(
      "{}: {} of {} was modified by an in-place operation after it was saved for the gradient; "
      "use the out-of-place op or clone() before modifying it",
      who, what, dispatch::op_name(r.op)));
}

void check_versions(const char* who, const Record& r, uint8_t uses) {
  if (r.in_versions.empty()) return;
  for (std::size_t i = 0; i < r.in.size(); ++i) {
    const bool used =
        (uses & kUsesInputs) == kUsesInputs || (i < 7 && ((uses >> i) & 1u) != 0);
    if (used && r.in[i].impl().storage->version() != r.in_versions[i])
      throw_modified(who, r, fmt::format("input {}", i).c_str());
  }
  if ((uses & kUsesOut) && r.out.impl().storage->version() != r.out_version)
    throw_modified(who, r, "the result");
}

}  // namespace

std::vector<Tensor> backward(const Program& p, const std::vector<Target>& targets,
                             const std::vector<std::vector<int>>& sources,
                             const std::vector<Tensor>& source_like, const char* who) {
  const int n = p.num_ids;
  // Which values depend on a source: only those records are differentiated.
  std::vector<char> reach(static_cast<std::size_t>(n), 0), is_source(static_cast<std::size_t>(n), 0);
  for (const auto& ids : sources)
    for (int id : ids) reach[id] = is_source[id] = 1;
  for (const Record& r : p.records) {
    bool any = false;
    for (int id : r.in_ids) any = any || (id >= 0 && reach[id]);
    if (any && r.out_id >= 0) reach[r.out_id] = 1;
  }
  std::vector<Tensor> grads(static_cast<std::size_t>(n));
  bool any_target = false;
  for (const Target& t : targets) {
    if (t.id < 0 || !reach[t.id]) continue;
    if (!is_floating(t.value.dtype())) {
      for (const Record& r : p.records)
        if (r.out_id == t.id && !rule(r.op).differentiable())
          throw ValueError(fmt::format("{}: the target was computed by {}, which is not differentiable ({})",
                                       who, dispatch::op_name(r.op), rule(r.op).why_not));
      throw ValueError(fmt::format("{}: the target has dtype {}; only floating-point targets have gradients",
                                   who, dtype_name(t.value.dtype())));
    }
    Tensor& acc = grads[t.id];
    acc = acc.defined() ? acc + t.seed : t.seed;
    any_target = true;
  }
  if (any_target) {
    for (std::size_t k = p.records.size(); k-- > 0;) {
      const Record& r = p.records[k];
      if (r.out_id < 0 || !reach[r.out_id] || !grads[r.out_id].defined()) continue;
      // A source keeps its gradient; other intermediate gradients are freed as we go.
      Tensor g = is_source[r.out_id] ? grads[r.out_id] : std::move(grads[r.out_id]);
      if (!is_source[r.out_id]) grads[r.out_id] = Tensor();
      const Rule& rl = rule(r.op);
      if (!rl.differentiable())
        throw ValueError(fmt::format(
            "{}: {} is not differentiable ({}), but the target depends on a source through it",
            who, dispatch::op_name(r.op), rl.why_not ? rl.why_not : "no derivative rule"));
      uint64_t needs = 0;
      for (std::size_t i = 0; i < r.in_ids.size() && i < 64; ++i) {
        const int id = r.in_ids[i];
        if (id >= 0 && reach[id] && is_floating(r.in[i].dtype())) needs |= uint64_t{1} << i;
      }
      if (!needs) continue;
      check_versions(who, r, rl.uses);
      g = conform(std::move(g), r.out_shape, r.out_dtype);
      const GradCtx ctx{r.op, r.attrs, dispatch::Inputs(r.in.data(), r.in.size()), r.out, needs};
      std::vector<Tensor> gx(r.in.size());
      rl.fn(ctx, g, gx.data());
      for (std::size_t i = 0; i < gx.size(); ++i) {
        if (!ctx.need(i) || !gx[i].defined()) continue;
        Tensor gi = conform(std::move(gx[i]), r.in[i].shape(), r.in[i].dtype());
        Tensor& acc = grads[r.in_ids[i]];
        acc = acc.defined() ? acc + gi : std::move(gi);
      }
    }
  }
  std::vector<Tensor> out;
  out.reserve(sources.size());
  for (std::size_t i = 0; i < sources.size(); ++i) {
    Tensor total;
    for (int id : sources[i]) {
      const Tensor& g = grads[id];
      if (!g.defined()) continue;
      total = total.defined() ? total + g : g;
    }
    const Tensor& like = source_like[i];
    if (!total.defined()) total = zeros_like(like);
    // Users get plain tensors (a rule may return an expanded view).
    else if (!total.is_contiguous()) total = total.contiguous();
    out.push_back(std::move(total));
  }
  return out;
}

}  // namespace ember::autograd
