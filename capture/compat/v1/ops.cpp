// TF1 names beyond the core list (math, shapes, one_hot, nn activations and
// losses, tf.losses): compositions of ember's ops, so they run eagerly outside
// a graph scope, build nodes inside one, and get gradients from the ops' rules.
// TF's checks (same shapes for the cross-entropy pairs, known class counts)
// are made here, while building, with messages naming the op.
#include <ember/compat/v1.h>
#include <ember/ember.h>
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "compat/v1/state.h"

namespace ember::compat::v1 {

using detail::built;
using detail::named;
using detail::scoped;

namespace {

// TF's pairs (labels, logits) have one shape; dims unknown until the run (-1)
// match anything.
void check_same_shape(const Tensor& a, const char* a_name, const Tensor& b, const char* b_name, const char* who) {
  const Shape as = static_shape(a), bs = static_shape(b);
  if (!detail::shapes_compatible(as, bs))
    throw ShapeError(fmt::format("{}: {} and {} must have the same shape, got {} and {}", who, a_name, b_name,
                                 shape_str(as), shape_str(bs)));
}

void check_floating(const Tensor& t, const char* what, const char* who) {
  if (!is_floating(t.dtype()))
    throw DTypeError(fmt::format("{}: {} has dtype {}; expected a floating dtype", who, what, dtype_name(t.dtype())));
}

void check_bool(const Tensor& t, const char* who) {
  if (t.dtype() != DType::bool_)
    throw DTypeError(fmt::format("{}: expected a bool tensor, got dtype {}", who, dtype_name(t.dtype())));
}

void check_indices(const Tensor& t, const char* what, const char* who) {
  if (t.dtype() != DType::int32 && t.dtype() != DType::int64)
    throw DTypeError(fmt::format("{}: {} has dtype {}; expected int32 or int64", who, what, dtype_name(t.dtype())));
}

// -sum(labels * log_softmax(logits)) along axis.
Tensor softmax_xent(const Tensor& labels, const Tensor& logits, int64_t axis, const char* who) {
  check_floating(logits, "logits", who);
  check_same_shape(labels, "labels", logits, "logits", who);
  if (labels.dtype() != logits.dtype())
    throw DTypeError(fmt::format("{}: labels have dtype {} but logits {}; they must match", who,
                                 dtype_name(labels.dtype()), dtype_name(logits.dtype())));
  const int64_t a = wrap_dim(axis, logits.dim(), who);
  return ember::neg(ember::sum(ember::mul(labels, ember::log_softmax(logits, a)), {a}));
}

}  // namespace

// ---- math --------------------------------------------------------------------

Tensor abs(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::abs(x); });
}
Tensor negative(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::neg(x); });
}
Tensor sign(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::sign(x); });
}
Tensor floor(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::floor(x); });
}
Tensor ceil(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::ceil(x); });
}
Tensor round(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::round(x); });
}
Tensor rsqrt(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::rsqrt(x); });
}
Tensor sin(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::sin(x); });
}
Tensor cos(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::cos(x); });
}
Tensor log1p(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::log1p(x); });
}
Tensor pow(const Value& x, const Value& y, const std::string& n) {
  return named(n, [&] { return ember::pow(x.operand(), y.operand()); });
}
Tensor squared_difference(const Value& x, const Value& y, const std::string& n) {
  return named(n, [&] {
    const Tensor d = ember::sub(x.operand(), y.operand());
    return ember::mul(d, d);
  });
}
Tensor not_equal(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::ne(a.operand(), b.operand()); });
}
Tensor less_equal(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::le(a.operand(), b.operand()); });
}
Tensor greater_equal(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::ge(a.operand(), b.operand()); });
}
Tensor logical_and(const Tensor& a, const Tensor& b, const std::string& n) {
  check_bool(a, "logical_and");
  check_bool(b, "logical_and");
  return named(n, [&] { return ember::logical_and(a, b); });
}
Tensor logical_or(const Tensor& a, const Tensor& b, const std::string& n) {
  check_bool(a, "logical_or");
  check_bool(b, "logical_or");
  return named(n, [&] { return ember::logical_or(a, b); });
}
Tensor logical_not(const Tensor& x, const std::string& n) {
  check_bool(x, "logical_not");
  return named(n, [&] { return ember::logical_not(x); });
}

Tensor clip_by_value(const Tensor& x, const Value& lo, const Value& hi, const std::string& n) {
  return named(n, [&] {
    // TF's order and masks: min(x, hi) then max(., lo), a value on a bound
    // keeping its gradient (lo > hi gives lo); the bounds broadcast to x, not the other way.
    const Tensor capped = ember::where(ember::le(x, hi.operand()), x, hi.operand());
    const Tensor r = ember::where(ember::ge(capped, lo.operand()), capped, lo.operand());
    const Shape xs = static_shape(x), rs = static_shape(r);
    if (!detail::shapes_compatible(xs, rs))
      throw ShapeError(
          fmt::format("clip_by_value: the bounds change the shape of x {} to {}", shape_str(xs), shape_str(rs)));
    return r.dtype() == x.dtype() ? r : r.to(x.dtype());
  });
}

Tensor add_n(const std::vector<Tensor>& inputs, const std::string& n) {
  if (inputs.empty()) throw ValueError("add_n: inputs must not be empty");
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    if (inputs[i].dtype() != inputs[0].dtype())
      throw DTypeError(fmt::format("add_n: inputs[{}] has dtype {} but inputs[0] {}", i, dtype_name(inputs[i].dtype()),
                                   dtype_name(inputs[0].dtype())));
    check_same_shape(inputs[0], "inputs[0]", inputs[i], fmt::format("inputs[{}]", i).c_str(), "add_n");
  }
  return named(n, [&] {
    Tensor s = inputs[0];
    for (std::size_t i = 1; i < inputs.size(); ++i) s = ember::add(s, inputs[i]);
    return inputs.size() == 1 ? identity(s) : s;
  });
}

Tensor argmin(const Tensor& x, int64_t axis, const std::string& n) {
  return named(n, [&] { return ember::argmin(x, axis); });
}

Tensor reduce_prod(const Tensor& x, const Axes& axis, bool k, const std::string& n) {
  return named(n, [&] {
    const Tensor p = ember::prod(x, axis, k);
    return p.dtype() == x.dtype() ? p : p.to(x.dtype());
  });
}
Tensor reduce_all(const Tensor& x, const Axes& axis, bool k, const std::string& n) {
  check_bool(x, "reduce_all");
  return named(n, [&] { return ember::all(x, axis, k); });
}
Tensor reduce_any(const Tensor& x, const Axes& axis, bool k, const std::string& n) {
  check_bool(x, "reduce_any");
  return named(n, [&] { return ember::any(x, axis, k); });
}

Tensor tanh(const Tensor& x, const std::string& n) { return nn::tanh(x, n); }
Tensor sigmoid(const Tensor& x, const std::string& n) { return nn::sigmoid(x, n); }

Tensor reduce_logsumexp(const Tensor& x, const Axes& axis, bool k, const std::string& n) {
  check_floating(x, "x", "reduce_logsumexp");
  return named(n, [&] {
    // About the max (no gradient through it, as TF's), 0 where the max is not finite.
    const Tensor m = ember::detach(ember::max(x, axis, true));
    const Tensor shift = ember::where(ember::eq(ember::abs(m), INFINITY), ember::zeros_like(m), m);
    const Tensor r = ember::add(ember::log(ember::sum(ember::exp(ember::sub(x, shift)), axis, true)), shift);
    if (k) return r;
    return axis.empty() ? r.reshape({}) : squeeze(r, axis);
  });
}

Tensor clip_by_norm(const Tensor& t, double clip_norm, const Axes& axes, const std::string& n) {
  check_floating(t, "t", "clip_by_norm");
  if (!(clip_norm > 0)) throw ValueError(fmt::format("clip_by_norm: clip_norm must be positive (got {})", clip_norm));
  return named(n, [&] {
    // TF's form: the norm's gradient stays finite where t is all zeros.
    const Tensor l2sum = ember::sum(ember::mul(t, t), axes, true);
    const Tensor pos = ember::gt(l2sum, 0);
    const Tensor norm = ember::where(pos, ember::sqrt(ember::where(pos, l2sum, ember::ones_like(l2sum))), l2sum);
    return ember::div(ember::mul(t, clip_norm), ember::maximum(norm, clip_norm));
  });
}

Tensor global_norm(const std::vector<Tensor>& t_list, const std::string& n) {
  std::vector<Tensor> squares;
  DType dt = DType::float32;  // the first tensor's (TF stacks them, so they share one)
  for (std::size_t i = 0; i < t_list.size(); ++i) {
    if (!t_list[i].defined()) continue;
    check_floating(t_list[i], fmt::format("t_list[{}]", i).c_str(), "global_norm");
    if (squares.empty()) dt = t_list[i].dtype();
    squares.push_back(ember::sum(ember::mul(t_list[i], t_list[i])).to(dt));
  }
  if (squares.empty()) throw ValueError("global_norm: no defined tensors in t_list");
  return named(n.empty() ? "global_norm" : n, [&] {
    Tensor s = squares[0];
    for (std::size_t i = 1; i < squares.size(); ++i) s = ember::add(s, squares[i]);
    return ember::sqrt(s);
  });
}

std::pair<std::vector<Tensor>, Tensor> clip_by_global_norm(const std::vector<Tensor>& t_list, double clip_norm,
                                                           const std::string& n) {
  if (!(clip_norm > 0))
    throw ValueError(fmt::format("clip_by_global_norm: clip_norm must be positive (got {})", clip_norm));
  std::optional<NameScope> scope;
  if (detail::current_scope()) scope.emplace(n.empty() ? "clip_by_global_norm" : n);
  const Tensor norm = global_norm(t_list);
  // TF: clip_norm * min(1 / norm, 1 / clip_norm); a norm of 0 gives inf * 0 nowhere (min picks 1 / clip_norm).
  const Tensor scale = ember::mul(ember::minimum(ember::div(1.0, norm), 1.0 / clip_norm), clip_norm);
  std::vector<Tensor> out;
  for (const Tensor& t : t_list)
    out.push_back(t.defined() ? ember::mul(t, scale.to(t.dtype())) : Tensor());
  return {out, norm};
}

// ---- shapes ------------------------------------------------------------------

Tensor expand_dims(const Tensor& x, int64_t axis, const std::string& n) {
  const int64_t r = x.dim();
  if (axis < -r - 1 || axis > r)
    throw IndexError(
        fmt::format("expand_dims: axis {} is out of range for a tensor of rank {} (use {}..{})", axis, r, -r - 1, r));
  return named(n, [&] { return x.unsqueeze(axis < 0 ? axis + r + 1 : axis); });
}

Tensor squeeze(const Tensor& x, const Axes& axis, const std::string& n) {
  const Shape s = static_shape(x);
  const auto r = static_cast<int64_t>(s.size());
  std::vector<char> drop(s.size(), 0);
  if (axis.empty()) {
    for (std::size_t i = 0; i < s.size(); ++i) drop[i] = s[i] == 1;
  } else {
    for (int64_t a : axis) {
      const int64_t d = wrap_dim(a, r, "squeeze");
      const int64_t size = s[static_cast<std::size_t>(d)];
      if (size < 0)
        throw ShapeError(
            fmt::format("squeeze: dim {} of {} is unknown until the graph runs; only dims known to be "
                        "1 can be squeezed",
                        d, shape_str(s)));
      if (size != 1)
        throw ShapeError(
            fmt::format("squeeze: cannot squeeze dim {} of {}: its size is {}, not 1", d, shape_str(s), size));
      drop[static_cast<std::size_t>(d)] = 1;
    }
  }
  return named(n, [&] {
    Tensor y = x;
    for (int64_t d = r - 1; d >= 0; --d)
      if (drop[static_cast<std::size_t>(d)]) y = y.squeeze(d);
    return y;
  });
}

Tensor tile(const Tensor& x, const std::vector<int64_t>& multiples, const std::string& n) {
  const Shape s = static_shape(x);
  if (multiples.size() != s.size())
    throw ValueError(fmt::format("tile: {} multiples given for a tensor of rank {} (shape {}); give one per dim",
                                 multiples.size(), s.size(), shape_str(s)));
  for (std::size_t i = 0; i < multiples.size(); ++i)
    if (multiples[i] < 0)
      throw ValueError(fmt::format("tile: multiples[{}] is {}; multiples must be >= 0", i, multiples[i]));
  return named(n, [&] {
    const bool known = std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; });
    if (known) {
      // One copy: [d0, d1] -> [1, d0, 1, d1] -> expand [m0, d0, m1, d1] -> [m0 d0, m1 d1].
      Shape spread, wide, out;
      for (std::size_t i = 0; i < s.size(); ++i) {
        spread.push_back(1);
        spread.push_back(s[i]);
        wide.push_back(multiples[i]);
        wide.push_back(s[i]);
        out.push_back(multiples[i] * s[i]);
      }
      return x.reshape(spread).expand(wide).contiguous().reshape(out);
    }
    // Dims unknown until the run: copies concatenated along each dim.
    Tensor y = x;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (multiples[i] == 0)
        throw ValueError(
            fmt::format("tile: multiples[{}] is 0 for a tensor with dims unknown until the graph "
                        "runs ({}); an empty tile needs a known shape",
                        i, shape_str(s)));
      if (multiples[i] == 1) continue;
      y = ember::concat(std::vector<Tensor>(static_cast<std::size_t>(multiples[i]), y), static_cast<int64_t>(i));
    }
    return y;
  });
}

namespace {

// The parts of one op (split, unstack): in graph mode named "<name>/part_<i>",
// where TF names its one op's outputs name:0, name:1, ...
template <class F>
std::vector<Tensor> parts(const std::string& name, const char* default_name, int64_t count, F&& part) {
  std::vector<Tensor> out;
  if (!detail::current_scope()) {
    for (int64_t i = 0; i < count; ++i) out.push_back(part(i));
    return out;
  }
  NameScope ns(name.empty() ? default_name : name);
  for (int64_t i = 0; i < count; ++i) out.push_back(named(fmt::format("part_{}", i), [&] { return part(i); }));
  return out;
}

// The size of dim `axis` of x, which split and unstack need known.
int64_t known_dim(const Shape& s, int64_t axis, const char* who) {
  const int64_t size = s[static_cast<std::size_t>(axis)];
  if (size < 0)
    throw ValueError(fmt::format("{}: dim {} of {} is unknown until the graph runs; {} needs its size", who, axis,
                                 shape_str(s), who));
  return size;
}

}  // namespace

Tensor slice(const Tensor& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& size,
             const std::string& n) {
  const Shape s = static_shape(x);
  if (begin.size() != s.size() || size.size() != s.size())
    throw ValueError(fmt::format("slice: begin has {} entries and size {} for a tensor of rank {} (shape {}); give "
                                 "one of each per dim",
                                 begin.size(), size.size(), s.size(), shape_str(s)));
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] < 0) {
      if (begin[i] == 0 && size[i] == -1) continue;
      throw ValueError(fmt::format("slice: dim {} of {} is unknown until the graph runs; it can only be taken "
                                   "whole (begin 0, size -1)",
                                   i, shape_str(s)));
    }
    if (begin[i] < 0 || begin[i] > s[i])
      throw IndexError(
          fmt::format("slice: begin[{}] = {} is outside [0, {}] (dim {} of {})", i, begin[i], s[i], i, shape_str(s)));
    if (size[i] < -1 || (size[i] >= 0 && begin[i] + size[i] > s[i]))
      throw IndexError(fmt::format("slice: size[{}] = {} from begin {} does not fit dim {} of {} (use 0..{}, or -1 "
                                   "for the rest)",
                                   i, size[i], begin[i], i, shape_str(s), s[i] - begin[i]));
  }
  return scoped(n, "slice", [&] {
    Tensor y = x;
    bool cut = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto d = static_cast<int64_t>(i);
      const int64_t stop = size[i] == -1 ? s[i] : begin[i] + size[i];
      if (s[i] >= 0 && (begin[i] != 0 || stop != s[i])) {
        y = y.slice(d, begin[i], stop);
        cut = true;
      }
    }
    return cut ? y : v1::identity(x);  // a node of its own, as TF's Slice of everything
  });
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis, const std::string& n) {
  const Shape s = static_shape(x);
  auto listed = [&] { return shape_str(Shape(sizes.begin(), sizes.end())); };  // for messages only
  const int64_t a = wrap_dim(axis, static_cast<int64_t>(s.size()), "split", "axis");
  const int64_t dim = known_dim(s, a, "split");
  if (sizes.empty()) throw ValueError("split: no sizes given");
  int64_t known = 0, free = 0;
  for (int64_t k : sizes) {
    if (k < -1) throw ValueError(fmt::format("split: size {} in {} is negative", k, listed()));
    k == -1 ? ++free : known += k;
  }
  if (free > 1) throw ValueError(fmt::format("split: only one size can be -1 (sizes {})", listed()));
  if (free == 0 ? known != dim : known > dim)
    throw ValueError(fmt::format("split: sizes {} add up to {}, but dim {} of {} has size {}", listed(), known, a,
                                 shape_str(s), dim));
  std::vector<int64_t> starts{0};
  for (int64_t k : sizes) starts.push_back(starts.back() + (k == -1 ? dim - known : k));
  return parts(n, "split", static_cast<int64_t>(sizes.size()), [&](int64_t i) {
    const auto k = static_cast<std::size_t>(i);
    return x.slice(a, starts[k], starts[k + 1]);
  });
}

std::vector<Tensor> split(const Tensor& x, int64_t num, int64_t axis, const std::string& n) {
  const Shape s = static_shape(x);
  const int64_t a = wrap_dim(axis, static_cast<int64_t>(s.size()), "split", "axis");
  const int64_t dim = known_dim(s, a, "split");
  if (num <= 0) throw ValueError(fmt::format("split: the number of parts must be positive (got {})", num));
  if (dim % num != 0)
    throw ValueError(fmt::format("split: dim {} of {} has size {}, which does not split into {} equal parts", a,
                                 shape_str(s), dim, num));
  return split(x, std::vector<int64_t>(static_cast<std::size_t>(num), dim / num), a, n);
}

std::vector<Tensor> unstack(const Tensor& x, int64_t axis, const std::string& n) {
  const Shape s = static_shape(x);
  const int64_t a = wrap_dim(axis, static_cast<int64_t>(s.size()), "unstack", "axis");
  const int64_t dim = known_dim(s, a, "unstack");
  return parts(n, "unstack", dim, [&](int64_t i) { return x.select(a, i); });
}

Tensor one_hot(const Tensor& indices, int64_t depth, double on_value, double off_value, int64_t axis, DType dtype,
               const std::string& n) {
  check_indices(indices, "indices", "one_hot");
  if (depth < 0) throw ValueError(fmt::format("one_hot: depth must be >= 0 (got {})", depth));
  const int64_t r = indices.dim();
  if (axis < -1 || axis > r)
    throw IndexError(fmt::format("one_hot: axis {} is out of range for indices of rank {} (use -1..{})", axis, r, r));
  const int64_t a = axis == -1 ? r : axis;
  return named(n, [&] {
    // classes [depth, 1, ...] with one 1 per dim after `a`; indices gain a dim at `a`.
    Shape cs{depth};
    for (int64_t k = a; k < r; ++k) cs.push_back(1);
    const Tensor classes = ember::arange(depth, indices.dtype()).reshape(cs);
    const Tensor hit = ember::eq(indices.unsqueeze(a), classes);
    return ember::where(hit, ember::full({}, on_value, dtype), ember::full({}, off_value, dtype));
  });
}

// ---- nn ------------------------------------------------------------------------

namespace nn {

Tensor relu6(const Tensor& x, const std::string& n) {
  // TF's gradient is 1 only for 0 < x < 6 (clamp's would be 1 on both bounds).
  return named(n, [&] { return ember::where(ember::ge(x, 6), ember::full_like(x, 6), ember::relu(x)); });
}

Tensor leaky_relu(const Tensor& x, double alpha, const std::string& n) {
  check_floating(x, "x", "leaky_relu");
  // TF's gradient: 1 for x > 0, alpha elsewhere (x = 0 included).
  return named(n.empty() ? "leaky_relu" : n, [&] { return ember::where(ember::gt(x, 0), x, ember::mul(x, alpha)); });
}

Tensor elu(const Tensor& x, const std::string& n) {
  check_floating(x, "x", "elu");
  // expm1 of where(x > 0, 0, x): the branch where() drops never overflows, so
  // its gradient (exp(x) times a zero) is never inf * 0, and at x = 0 the
  // gradient is exp(0) = 1 as TF's (a minimum would split the tie).
  return named(n.empty() ? "elu" : n, [&] {
    const Tensor pos = ember::gt(x, 0);
    return ember::where(pos, x, ember::expm1(ember::where(pos, 0, x)));
  });
}

Tensor softplus(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::softplus(x); });
}

Tensor l2_normalize(const Tensor& x, const Axes& axis, double epsilon, const std::string& n) {
  check_floating(x, "x", "l2_normalize");
  return named(n, [&] {
    const Tensor sq = ember::sum(ember::mul(x, x), axis, true);
    return ember::mul(x, ember::rsqrt(ember::maximum(sq, epsilon)));
  });
}

Tensor l2_loss(const Tensor& t, const std::string& n) {
  check_floating(t, "t", "l2_loss");
  return named(n.empty() ? "l2_loss" : n, [&] { return ember::mul(ember::sum(ember::mul(t, t)), 0.5); });
}

std::pair<Tensor, Tensor> moments(const Tensor& x, const Axes& axes, bool keepdims, const std::string& n) {
  check_floating(x, "x", "moments");
  // As TF computes them: "moments/mean" and "moments/variance" with kept
  // dims ("moments_1/..." next time), squeezed after when keepdims is false.
  std::optional<NameScope> scope;
  if (detail::current_scope()) scope.emplace(n.empty() ? "moments" : n);
  const Tensor mean = named("mean", [&] { return ember::mean(x, axes, true); });
  const Tensor d = ember::sub(x, mean);
  const Tensor var = named("variance", [&] { return ember::mean(ember::mul(d, d), axes, true); });
  if (keepdims) return {mean, var};
  auto drop = [&](const Tensor& t) { return axes.empty() ? t.reshape({}) : squeeze(t, axes); };
  return {drop(mean), drop(var)};
}

Tensor softmax_cross_entropy_with_logits_v2(const Tensor& labels, const Tensor& logits, int64_t axis,
                                            const std::string& n) {
  const char* who = "softmax_cross_entropy_with_logits_v2";
  return named(n, [&] { return softmax_xent(labels, logits, axis, who); });
}

Tensor softmax_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits, int64_t axis,
                                         const std::string& n) {
  const char* who = "softmax_cross_entropy_with_logits";
  check_same_shape(labels, "labels", logits, "logits", who);
  return named(n, [&] { return softmax_xent(stop_gradient(labels), logits, axis, who); });
}

Tensor sparse_softmax_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits, const std::string& n) {
  const char* who = "sparse_softmax_cross_entropy_with_logits";
  check_indices(labels, "labels", who);
  check_floating(logits, "logits", who);
  const Shape ls = static_shape(labels), gs = static_shape(logits);
  if (gs.empty() || ls.size() + 1 != gs.size())
    throw ShapeError(
        fmt::format("{}: labels must have the shape of logits without its last dim, got labels {} and "
                    "logits {}",
                    who, shape_str(ls), shape_str(gs)));
  for (std::size_t i = 0; i < ls.size(); ++i)
    if (ls[i] >= 0 && gs[i] >= 0 && ls[i] != gs[i])
      throw ShapeError(
          fmt::format("{}: labels {} do not match logits {} in dim {}", who, shape_str(ls), shape_str(gs), i));
  const int64_t classes = gs.back();
  if (classes < 0)
    throw ShapeError(fmt::format("{}: the class count (last dim of logits {}) must be known when the graph is built",
                                 who, shape_str(gs)));
  // Its nodes in a name scope, so that a run-time error names them after it.
  return detail::scoped(n, who, [&] {
    // The label's column by comparison with 0..classes-1. A label outside
    // [0, classes) would match none and give a silent zero loss: a gather of
    // ones, one per label, fails its bound check when the graph runs instead
    // (TF raises there too).
    const Tensor hit = ember::eq(labels.unsqueeze(-1), ember::arange(classes, labels.dtype()));
    const Tensor in_range = gather(ember::ones({classes}, logits.dtype()), labels, 0, "labels_in_range").unsqueeze(-1);
    const Tensor picked = ember::mul(hit.to(logits.dtype()), in_range);
    return ember::neg(ember::sum(ember::mul(picked, ember::log_softmax(logits, -1)), {-1}));
  });
}

Tensor sigmoid_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits, const std::string& n) {
  const char* who = "sigmoid_cross_entropy_with_logits";
  check_floating(logits, "logits", who);
  check_same_shape(labels, "labels", logits, "logits", who);
  if (labels.dtype() != logits.dtype())
    throw DTypeError(fmt::format("{}: labels have dtype {} but logits {}; they must match", who,
                                 dtype_name(labels.dtype()), dtype_name(logits.dtype())));
  return named(n, [&] {
    // max(x, 0) - x z + log(1 + exp(-|x|)), exp never overflowing, written
    // with TF's where(x >= 0) so the gradient at x = 0 is sigmoid(0) - z
    // (relu and abs would each give their one-sided 0 there).
    const Tensor pos = ember::ge(logits, 0);
    const Tensor relu_x = ember::where(pos, logits, 0);
    const Tensor neg_abs = ember::where(pos, ember::neg(logits), logits);
    return ember::add(ember::sub(relu_x, ember::mul(logits, labels)), ember::log1p(ember::exp(neg_abs)));
  });
}

}  // namespace nn

// ---- tf.losses -------------------------------------------------------------------

namespace losses {

namespace {

// tf.losses: the loss in a name scope of TF's default name (or `scope`), its
// mean named "value" (TF's compute_weighted_loss with unit weights).
template <class F>
Tensor loss_in_scope(const std::string& scope, const char* default_scope, F&& f) {
  std::optional<NameScope> ns;
  if (detail::current_scope()) ns.emplace(scope.empty() ? default_scope : scope);
  const Tensor per_element = f();
  Tensor value = named("value", [&] { return ember::mean(per_element); });
  if (detail::current_scope()) add_to_collection(GraphKeys::LOSSES, value);
  return value;
}
}  // namespace

// TF1 computes these two in float32 whatever the inputs (to_float).
Tensor mean_squared_error(const Tensor& labels, const Tensor& predictions, const std::string& n) {
  check_same_shape(labels, "labels", predictions, "predictions", "mean_squared_error");
  return loss_in_scope(n, "mean_squared_error",
                       [&] { return squared_difference(predictions.to(DType::float32), labels.to(DType::float32)); });
}

Tensor absolute_difference(const Tensor& labels, const Tensor& predictions, const std::string& n) {
  check_same_shape(labels, "labels", predictions, "predictions", "absolute_difference");
  return loss_in_scope(n, "absolute_difference", [&] {
    return ember::abs(ember::sub(predictions.to(DType::float32), labels.to(DType::float32)));
  });
}

// The labels are cast to the logits' dtype, and (as TF1's) no gradient reaches them.
Tensor softmax_cross_entropy(const Tensor& onehot_labels, const Tensor& logits, const std::string& n) {
  return loss_in_scope(n, "softmax_cross_entropy_loss", [&] {
    return nn::softmax_cross_entropy_with_logits_v2(stop_gradient(onehot_labels.to(logits.dtype())), logits);
  });
}

// Labels of shape [batch, 1] are squeezed to [batch], as TF1's.
Tensor sparse_softmax_cross_entropy(const Tensor& labels, const Tensor& logits, const std::string& n) {
  const Shape ls = static_shape(labels), gs = static_shape(logits);
  const bool squeezable = !ls.empty() && ls.size() == gs.size() && ls.back() == 1;
  return loss_in_scope(n, "sparse_softmax_cross_entropy_loss", [&] {
    return nn::sparse_softmax_cross_entropy_with_logits(squeezable ? squeeze(labels, {-1}) : labels, logits);
  });
}

Tensor sigmoid_cross_entropy(const Tensor& multi_class_labels, const Tensor& logits, const std::string& n) {
  return loss_in_scope(n, "sigmoid_cross_entropy_loss", [&] {
    return nn::sigmoid_cross_entropy_with_logits(multi_class_labels.to(logits.dtype()), logits);
  });
}

void add_loss(const Tensor& loss) { add_to_collection(GraphKeys::LOSSES, loss); }

std::vector<Tensor> get_losses() {
  std::vector<Tensor> out;
  for (const Fetch& f : get_collection(GraphKeys::LOSSES)) out.push_back(f.tensor);
  return out;
}

Tensor get_regularization_loss(const std::string& n) {
  std::vector<Tensor> terms;
  for (const Fetch& f : get_collection(GraphKeys::REGULARIZATION_LOSSES)) terms.push_back(f.tensor);
  if (terms.empty()) return named(n.empty() ? "total_regularization_loss" : n, [] { return constant(0.f); });
  return add_n(terms, n.empty() ? "total_regularization_loss" : n);
}

Tensor get_total_loss(bool add_regularization_losses, const std::string& n) {
  std::vector<Tensor> terms = get_losses();
  if (add_regularization_losses)
    for (const Fetch& f : get_collection(GraphKeys::REGULARIZATION_LOSSES)) terms.push_back(f.tensor);
  if (terms.empty())
    throw ValueError("get_total_loss: no losses in the graph (tf::losses::* add theirs to GraphKeys::LOSSES)");
  return add_n(terms, n.empty() ? "total_loss" : n);
}

}  // namespace losses

}  // namespace ember::compat::v1
