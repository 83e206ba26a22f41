// The schema table: one row per op, built from the .def lists, and the
// shape/dtype rules (infer) of every op. All user errors are thrown here.
#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

#include "dispatch/dtype_visit.h"
#include "dispatch/schema.h"
#include "ops/infer.h"

namespace ember::ops {

using dispatch::Attrs;
using dispatch::Inputs;
using dispatch::OpId;
using dispatch::TensorMeta;

namespace {

int dtype_category(DType dt) { return dt == DType::bool_ ? 0 : (is_floating(dt) ? 2 : 1); }

void check_arity(OpId op, Inputs in, int arity) {
  if (arity >= 0 && static_cast<int>(in.size()) != arity)
    throw ValueError(fmt::format("{}: expects {} tensor inputs, got {}", dispatch::op_name(op),
                                 arity, in.size()));
  for (std::size_t i = 0; i < in.size(); ++i)
    if (!in[i].defined())
      throw ValueError(fmt::format("{}: input {} is an undefined tensor", dispatch::op_name(op), i));
}

// The elementwise iteration handles up to 64 dims (NumPy's limit).
void check_rank(const char* op, const Shape& s) {
  if (s.size() > 64)
    throw ShapeError(fmt::format("{}: tensors of more than 64 dims are not supported (got {})", op, s.size()));
}

enum class Rule { same, to_float, compare, logical };

DType apply_rule(Rule r, DType dt) {
  switch (r) {
    case Rule::same: return dt;
    case Rule::to_float: return is_floating(dt) ? dt : DType::float32;
    case Rule::compare:
    case Rule::logical: return DType::bool_;
  }
  return dt;
}

template <Rule R, dispatch::DTypeSet Set>
TensorMeta infer_unary(OpId op, Inputs in, const Attrs&) {
  check_arity(op, in, 1);
  const char* name = dispatch::op_name(op);
  dispatch::check_dtype(name, "the input", in[0].dtype(), Set);
  check_rank(name, in[0].shape());
  return {in[0].shape(), apply_rule(R, in[0].dtype()), in[0].device()};
}

template <Rule R, dispatch::DTypeSet Set>
TensorMeta infer_binary(OpId op, Inputs in, const Attrs&) {
  check_arity(op, in, 2);
  const char* name = dispatch::op_name(op);
  Device dev = common_device(name, in);
  DType dt = result_type(in);
  if (!dispatch::contains(Set, dt)) {
    // Name the operand whose dtype is at fault.
    const char* which = in[0].dtype() == dt ? "a" : "b";
    dispatch::throw_dtype(name, which, dt, Set);
  }
  Shape shape = in[0].shape() == in[1].shape()
                    ? in[0].shape()
                    : broadcast_shapes(in[0].shape(), in[1].shape(), name);
  check_rank(name, shape);
  return {std::move(shape), apply_rule(R, dt), dev};
}

// ---- reductions ----------------------------------------------------------

enum class RRule { sum, same, to_float, index, boolean };

template <RRule R, dispatch::DTypeSet Set>
TensorMeta infer_reduce(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  const char* name = dispatch::op_name(op);
  const Tensor& x = in[0];
  dispatch::check_dtype(name, "the input", x.dtype(), Set);
  const int64_t rank = x.dim();
  Axes axes = normalize_axes(name, a.ints, rank);
  const bool keep = a.flags & dispatch::kKeepDims;
  Shape out;
  for (int64_t d = 0; d < rank; ++d) {
    const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (reduced && x.shape()[d] == 0 &&
        (R == RRule::index || op == OpId::max || op == OpId::min))
      throw ValueError(fmt::format(
          "{}: cannot reduce over axis {} of size 0 (shape {}); {} has no identity", name, d,
          shape_str(x.shape()), name));
    if (!reduced)
      out.push_back(x.shape()[d]);
    else if (keep)
      out.push_back(1);
  }
  if (rank == 0 && x.numel() == 0) throw InternalError("0-d tensor with no element");
  DType dt = x.dtype();
  switch (R) {
    case RRule::sum: dt = is_floating(dt) ? dt : DType::int64; break;
    case RRule::same: break;
    case RRule::to_float: dt = is_floating(dt) ? dt : DType::float32; break;
    case RRule::index: dt = DType::int64; break;
    case RRule::boolean: dt = DType::bool_; break;
  }
  return {std::move(out), dt, x.device()};
}

// ---- structural ----------------------------------------------------------

TensorMeta infer_reshape(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  Shape s(a.ints.begin(), a.ints.end());
  if (shape_numel(s) != in[0].numel())
    throw ShapeError(fmt::format("reshape: shape {} is invalid for a tensor of {} elements ({})",
                                 shape_str(s), in[0].numel(), shape_str(in[0].shape())));
  return {std::move(s), in[0].dtype(), in[0].device()};
}

TensorMeta infer_permute(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  const int64_t rank = in[0].dim();
  if (static_cast<int64_t>(a.ints.size()) != rank)
    throw ShapeError(fmt::format("permute: {} dims given for a {}-d tensor", a.ints.size(), rank));
  Shape s(static_cast<std::size_t>(rank));
  SmallVector<int64_t, 6> seen(static_cast<std::size_t>(rank), 0);
  for (int64_t i = 0; i < rank; ++i) {
    int64_t d = wrap_dim(a.ints[i], rank, "permute");
    if (seen[d]++) throw ValueError(fmt::format("permute: dim {} appears twice", d));
    s[i] = in[0].shape()[d];
  }
  return {std::move(s), in[0].dtype(), in[0].device()};
}

TensorMeta infer_slice(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  Shape s = in[0].shape();
  const int64_t d = wrap_dim(a.i0, in[0].dim(), "slice");
  if (a.i3 <= 0) throw ValueError(fmt::format("slice: step must be positive (got {})", a.i3));
  const int64_t start = a.i1, stop = a.i2;
  if (start < 0 || stop > s[d] || start > stop)
    throw IndexError(fmt::format("slice: range {}..{} is invalid for dim {} of size {}", start,
                                 stop, d, s[d]));
  s[d] = stop > start ? 1 + (stop - start - 1) / a.i3 : 0;  // no overflow for a huge step
  return {std::move(s), in[0].dtype(), in[0].device()};
}

TensorMeta infer_select(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  if (in[0].dim() == 0) throw IndexError("select: cannot index a 0-d tensor");
  const int64_t d = wrap_dim(a.i0, in[0].dim(), "select");
  const int64_t size = in[0].shape()[d];
  if (a.i1 < 0 || a.i1 >= size)
    throw IndexError(fmt::format("select: index {} is out of range for dim {} of size {}", a.i1,
                                 d, size));
  Shape s = in[0].shape();
  s.erase(s.begin() + d);
  return {std::move(s), in[0].dtype(), in[0].device()};
}

TensorMeta infer_expand(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  Shape target(a.ints.begin(), a.ints.end());
  const Shape& s = in[0].shape();
  if (target.size() < s.size())
    throw ShapeError(fmt::format("expand: cannot expand {} to fewer dims {}", shape_str(s),
                                 shape_str(target)));
  const std::size_t lead = target.size() - s.size();
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] != target[lead + i] && s[i] != 1)
      throw ShapeError(fmt::format(
          "expand: shape {} cannot be expanded to {} (dim {}: {} vs {}; only size-1 dims expand)",
          shape_str(s), shape_str(target), i, s[i], target[lead + i]));
  return {std::move(target), in[0].dtype(), in[0].device()};
}

TensorMeta infer_detach(OpId op, Inputs in, const Attrs&) {
  check_arity(op, in, 1);
  return {in[0].shape(), in[0].dtype(), in[0].device()};
}

TensorMeta infer_copy(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  check_rank("to", in[0].shape());
  return {in[0].shape(), a.dtype, in[0].device()};
}

// A copy to another device; the kernel of the destination's device runs it.
TensorMeta infer_to_device(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  return {in[0].shape(), in[0].dtype(), a.device};
}

TensorMeta infer_where(OpId op, Inputs in, const Attrs&) {
  check_arity(op, in, 3);
  Device dev = common_device("where", in);
  DType dt = result_type(in.subspan(1));
  Shape s = broadcast_shapes(broadcast_shapes(in[0].shape(), in[1].shape(), "where"),
                             in[2].shape(), "where");
  check_rank("where", s);
  return {std::move(s), dt, dev};
}

TensorMeta infer_clamp(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  dispatch::check_dtype("clamp", "the input", in[0].dtype(), dispatch::kNumeric);
  if (!(a.flags & (dispatch::kHasMin | dispatch::kHasMax)))
    throw ValueError("clamp: at least one of min and max must be given");
  check_rank("clamp", in[0].shape());
  return {in[0].shape(), in[0].dtype(), in[0].device()};
}

TensorMeta infer_softmax(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 1);
  const char* name = dispatch::op_name(op);
  wrap_dim(a.i0, in[0].dim(), name, "axis");
  DType dt = in[0].dtype();
  return {in[0].shape(), is_floating(dt) ? dt : DType::float32, in[0].device()};
}

TensorMeta infer_matmul(OpId op, Inputs in, const Attrs&) {
  check_arity(op, in, 2);
  Device dev = common_device("matmul", in);
  const Tensor &a = in[0], &b = in[1];
  if (a.dim() == 0 || b.dim() == 0)
    throw ShapeError(fmt::format("matmul: {} is 0-d; both arguments need at least 1 dim",
                                 a.dim() == 0 ? "a" : "b"));
  DType dt = result_type(in);
  dispatch::check_dtype("matmul", "the inputs", dt, dispatch::kNumeric);
  const int64_t k_a = a.shape()[a.dim() - 1];
  const int64_t k_b = b.dim() == 1 ? b.shape()[0] : b.shape()[b.dim() - 2];
  if (k_a != k_b)
    throw ShapeError(fmt::format("matmul: a {} and b {} do not line up (a dim -1 is {}, b dim {} is {})",
                                 shape_str(a.shape()), shape_str(b.shape()), k_a,
                                 b.dim() == 1 ? -1 : -2, k_b));
  Shape batch_a(a.shape().begin(), a.shape().end() - std::min<int64_t>(a.dim(), 2));
  Shape batch_b(b.shape().begin(), b.shape().end() - std::min<int64_t>(b.dim(), 2));
  Shape out = broadcast_shapes(batch_a, batch_b, "matmul");
  if (a.dim() >= 2) out.push_back(a.shape()[a.dim() - 2]);
  if (b.dim() >= 2) out.push_back(b.shape()[b.dim() - 1]);
  return {std::move(out), dt, dev};
}

// torch.addmm: two matrices and an input that broadcasts to their product.
TensorMeta infer_addmm(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 3);
  Device dev = common_device("addmm", in);
  const Tensor &m1 = in[1], &m2 = in[2];
  for (int i : {1, 2})
    if (in[i].dim() != 2)
      throw ShapeError(fmt::format("addmm: mat{} must be a matrix (2-d), got {}-d {}", i, in[i].dim(),
                                   shape_str(in[i].shape())));
  if (m1.shape()[1] != m2.shape()[0])
    throw ShapeError(fmt::format("addmm: mat1 {} and mat2 {} do not line up ({} != {})", shape_str(m1.shape()),
                                 shape_str(m2.shape()), m1.shape()[1], m2.shape()[0]));
  Shape out{m1.shape()[0], m2.shape()[1]};
  const Shape& s = in[0].shape();
  bool fits = s.size() <= 2;
  for (std::size_t i = 0; fits && i < s.size(); ++i) fits = s[i] == 1 || s[i] == out[out.size() - s.size() + i];
  if (!fits)
    throw ShapeError(fmt::format("addmm: input {} does not broadcast to the product's {}", shape_str(s),
                                 shape_str(out)));
  DType dt = result_type(in);
  dispatch::check_dtype("addmm", "the inputs", dt, dispatch::kNumeric);
  if (!is_floating(dt))
    for (double v : {a.f0, a.f1})
      if (!(std::trunc(v) == v && std::abs(v) < 0x1p63))
        throw ValueError(fmt::format("addmm: beta and alpha must be integers for a {} result, got beta={} alpha={}",
                                     dtype_name(dt), a.f0, a.f1));
  return {std::move(out), dt, dev};
}

TensorMeta infer_concat(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, -1);
  if (in.empty()) throw ValueError("concat: expects a non-empty list of tensors");
  Device dev = common_device("concat", in);
  const Tensor& f = in[0];
  if (f.dim() == 0) throw ShapeError("concat: zero-dimensional tensor 0 cannot be concatenated");
  const int64_t d = wrap_dim(a.i0, f.dim(), "concat");
  Shape s = f.shape();
  s[d] = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const Shape& t = in[i].shape();
    bool ok = t.size() == s.size();
    for (std::size_t j = 0; ok && j < t.size(); ++j)
      ok = static_cast<int64_t>(j) == d || t[j] == f.shape()[j];
    if (!ok)
      throw ShapeError(fmt::format(
          "concat: tensor {} has shape {}, which does not match tensor 0's {} outside dim {}", i,
          shape_str(t), shape_str(f.shape()), d));
    s[d] += t[d];
  }
  DType dt = result_type(in);
  check_rank("concat", s);
  return {std::move(s), dt, dev};
}

TensorMeta infer_index_select(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 2);
  Device dev = common_device("index_select", in);
  const Tensor &x = in[0], &idx = in[1];
  if (idx.dtype() != DType::int64 && idx.dtype() != DType::int32)
    throw DTypeError(fmt::format("index_select: index has dtype {}; expected int64 or int32",
                                 dtype_name(idx.dtype())));
  if (idx.dim() > 1)
    throw ShapeError(fmt::format("index_select: index must be 1-d (got shape {})",
                                 shape_str(idx.shape())));
  const int64_t d = wrap_dim(a.i0, x.dim(), "index_select");
  const int64_t size = x.dim() == 0 ? 1 : x.shape()[d];
  if (dev.is_cpu() && idx.impl().storage) {  // a graph tensor's indices are checked when the graph runs
    const int64_t lowest = a.i1 ? 0 : -size;
    for (int64_t v : index_values(idx)) {
      if (v < lowest || v >= size)
        throw IndexError(fmt::format(
            "index_select: index {} is out of range for dim {} of size {}", v, d, size));
    }
  }
  Shape s = x.shape();
  if (x.dim() > 0) s[d] = idx.numel();
  return {std::move(s), x.dtype(), dev};
}

TensorMeta infer_creation(OpId op, Inputs in, const Attrs& a) {
  check_arity(op, in, 0);
  const char* name = dispatch::op_name(op);
  for (int64_t d : a.ints)
    if (d < 0)
      throw ValueError(fmt::format("{}: negative size in shape {}", name,
                                   shape_str(Shape(a.ints.begin(), a.ints.end()))));
  int64_t n = 1;
  for (int64_t d : a.ints)
    if (__builtin_mul_overflow(n, d, &n) || n > (int64_t(1) << 60))
      throw OutOfMemoryError(fmt::format("{}: shape {} is too large to allocate", name,
                                         shape_str(Shape(a.ints.begin(), a.ints.end()))));
  if ((op == OpId::rand || op == OpId::randn || op == OpId::truncated_normal || op == OpId::linspace) &&
      !is_floating(a.dtype))
    throw DTypeError(fmt::format("{}: dtype {} is not supported; use float32 or float64", name,
                                 dtype_name(a.dtype)));
  if (op == OpId::randint) {
    if (a.dtype == DType::bool_ || is_floating(a.dtype))
      throw DTypeError(fmt::format("randint: dtype {} is not supported; use an integer dtype",
                                   dtype_name(a.dtype)));
    if (a.i2 >= a.i3)
      throw ValueError(fmt::format("randint: low ({}) must be less than high ({})", a.i2, a.i3));
  }
  if (op == OpId::arange && !is_floating(a.dtype) && !a.ints.empty() && a.ints[0] > 0) {
    int64_t span = 0, last = 0;
    if (__builtin_mul_overflow(a.ints[0] - 1, a.i1, &span) || __builtin_add_overflow(a.i0, span, &last))
      throw ValueError(fmt::format("arange: start {} + {} steps of {} overflows int64", a.i0, a.ints[0] - 1, a.i1));
  }
  Shape s(a.ints.begin(), a.ints.end());
  return {std::move(s), a.dtype, a.device};
}

struct Table {
  std::array<dispatch::OpSchema, dispatch::kNumOps> rows{};
  Table() {
    using namespace dispatch;
    auto set = [&](OpId op, const char* name, uint32_t flags, int arity, DTypeSet dts, InferFn f) {
      rows[op_index(op)] = OpSchema{name, flags, arity, dts, f};
    };
#define EMBER_UNARY(name, F, rule, dtypes)                                              \
  set(OpId::name, #name, kElementwise | kUnary, 1, dtypes, &infer_unary<Rule::rule, dtypes>);
#define EMBER_BINARY(name, F, rule, dtypes)                                             \
  set(OpId::name, #name, kElementwise | kBinary, 2, dtypes, &infer_binary<Rule::rule, dtypes>);
#include "ops/elementwise.def"
    constexpr RRule sum_rule = RRule::sum, same_rule = RRule::same, float_rule = RRule::to_float,
                    index_rule = RRule::index, bool_rule = RRule::boolean;
#define EMBER_REDUCE(name, rule, dtypes) \
  set(OpId::name, #name, kReduction, 1, dtypes, &infer_reduce<rule##_rule, dtypes>);
#include "ops/reduce.def"
    // In structural.def's order; creation ops (kCreation) all take infer_creation.
    InferFn structural[] = {&infer_reshape, &infer_permute, &infer_slice,   &infer_select,      &infer_expand,
                            &infer_detach,  &infer_copy,    &infer_to_device, &infer_where,     &infer_clamp,
                            &infer_softmax, &infer_softmax, &infer_matmul,  &infer_addmm,       &infer_concat,
                            &infer_index_select};
    int k = 0;
#define EMBER_OP(name, flags, arity) \
  set(OpId::name, #name, flags, arity, kAll, ((flags) & kCreation) ? &infer_creation : structural[k++]);
#include "ops/structural.def"
    EMBER_CHECK_INTERNAL(k == static_cast<int>(std::size(structural)));
    for (auto& r : rows) EMBER_CHECK_INTERNAL(r.name && r.infer);
  }
};

}  // namespace

DType result_type(dispatch::Inputs in) {
  // Levels: 0 = tensors with dims, 1 = 0-d tensors, 2 = wrapped numbers.
  bool has[3] = {false, false, false};
  DType lvl[3] = {DType::bool_, DType::bool_, DType::bool_};
  for (const Tensor& t : in) {
    const auto& impl = t.impl();
    int l = impl.wrapped_scalar ? 2 : (impl.shape.empty() ? 1 : 0);
    DType dt = impl.dtype;
    if (l == 2) dt = dtype_category(dt) == 2 ? (is_floating(dt) ? dt : DType::float32)
                                             : (dt == DType::bool_ ? dt : DType::int64);
    lvl[l] = has[l] ? promote_types(lvl[l], dt) : dt;
    has[l] = true;
  }
  bool any = false;
  DType r = DType::bool_;
  for (int l = 0; l < 3; ++l) {
    if (!has[l]) continue;
    if (!any) {
      r = lvl[l];
      any = true;
    } else if (dtype_category(lvl[l]) > dtype_category(r)) {
      // A lower level only matters when it is of a higher kind; wrapped floats
      // then take the default float dtype (or the level's own when wider).
      r = l == 2 ? (dtype_category(lvl[l]) == 2 ? DType::float32 : DType::int64)
                 : promote_types(r, lvl[l]);
    }
  }
  return r;
}

DType scalar_dtype(Scalar s, DType other) {
  const int cat = s.kind() == Scalar::Kind::floating ? 2 : (s.kind() == Scalar::Kind::integer ? 1 : 0);
  if (cat <= dtype_category(other)) return other;
  return cat == 2 ? DType::float32 : DType::int64;
}

std::vector<int64_t> index_values(const Tensor& idx) {
  const auto& ii = idx.impl();
  const int64_t st = idx.dim() == 0 ? 0 : ii.strides[0];
  std::vector<int64_t> v(static_cast<std::size_t>(idx.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i) * st;
    v[i] = idx.dtype() == DType::int64 ? static_cast<const int64_t*>(ii.data())[k]
                                       : static_cast<const int32_t*>(ii.data())[k];
  }
  return v;
}

Shape matmul_operands(Tensor& a, Tensor& b, const Shape& out_shape) {
  const bool a_vec = a.dim() == 1, b_vec = b.dim() == 1;
  if (a_vec)
    a = ember::detail::make_view(a, {1, a.shape()[0]},
                                 {std::max<int64_t>(1, a.shape()[0] * a.strides()[0]), a.strides()[0]},
                                 a.storage_offset());
  if (b_vec) b = ember::detail::make_view(b, {b.shape()[0], 1}, {b.strides()[0], 1}, b.storage_offset());
  return Shape(out_shape.begin(), out_shape.end() - (a_vec ? 0 : 1) - (b_vec ? 0 : 1));
}

void concat_slices(Inputs in, const Attrs& attrs, Tensor& out, void (*copy)(Tensor& dst, const Tensor& src)) {
  const int64_t d = attrs.i0 < 0 ? attrs.i0 + out.dim() : attrs.i0;
  const Strides st = out.strides();
  int64_t at = 0;
  for (const Tensor& t : in) {
    Shape sh = out.shape();
    sh[d] = t.shape()[d];
    Tensor dst = ember::detail::make_view(out, sh, st, out.storage_offset() + at * st[d]);
    copy(dst, t);
    at += sh[d];
  }
}

Device common_device(const char* op, dispatch::Inputs in) {
  // A CPU 0-d tensor (a wrapped number) joins an op on any device, as in
  // PyTorch: GPU kernels take its value by argument.
  std::size_t first = 0;
  while (first < in.size() && in[first].device().is_cpu() && in[first].dim() == 0) ++first;
  if (first == in.size()) return Device::cpu();
  const Device d = in[first].device();
  for (std::size_t i = 0; i < in.size(); ++i)
    if (in[i].device() != d && !(in[i].device().is_cpu() && in[i].dim() == 0))
      throw DeviceError(fmt::format("{}: expected all tensors on one device, but input {} is on {} "
                                    "and input {} is on {}",
                                    op, first, d.str(), i, in[i].device().str()));
  return d;
}

Axes normalize_axes(const char* op, const Axes& axes, int64_t rank) {
  Axes out;
  if (axes.empty()) {
    for (int64_t d = 0; d < rank; ++d) out.push_back(d);
    return out;
  }
  for (int64_t a : axes) {
    int64_t d = rank == 0 ? wrap_dim(a, 0, op, "axis") : wrap_dim(a, rank, op, "axis");
    if (std::find(out.begin(), out.end(), d) != out.end())
      throw ValueError(fmt::format("{}: axis {} appears twice", op, d));
    out.push_back(d);
  }
  if (rank == 0) out.clear();
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace ember::ops

namespace ember::dispatch {

const OpSchema& schema(OpId op) {
  static const ops::Table table;
  return table.rows[op_index(op)];
}

}  // namespace ember::dispatch
