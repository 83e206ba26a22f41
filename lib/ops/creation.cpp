// Public creation functions (creation.h, random.h).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <ember/creation.h>
#include <ember/ops.h>
#include <ember/random.h>

#include "dispatch/dispatcher.h"

namespace ember {

using dispatch::Attrs;
using dispatch::OpId;

namespace detail {
void throw_value_count(std::size_t n, const Shape& shape) {
  throw ValueError(fmt::format("tensor: {} values do not fill shape {} ({} elements)", n,
                               shape_str(shape), shape_numel(shape)));
}
void throw_ragged(std::size_t expected, std::size_t got) {
  throw ValueError(fmt::format("tensor: rows have different lengths ({} and {})", expected, got));
}
}  // namespace detail

namespace {

Tensor create(OpId op, const Shape& shape, DType dt, Device device, Attrs a = {}) {
  a.ints = shape;
  a.dtype = dt;
  a.device = device;
  return dispatch::call(op, {}, a);
}

void check_shape(const char* op, const Shape& shape) {
  for (int64_t d : shape)
    if (d < 0) throw ValueError(fmt::format("{}: negative size in shape {}", op, shape_str(shape)));
}

// The checks every creation function makes first, so errors carry its own name.
void check_args(const char* op, const Shape& shape, Device device) {
  check_shape(op, shape);
  if (device.is_cuda() && !cuda_available())
    throw DeviceError(fmt::format(
        "{}: {} requested but no CUDA device is available; check em::cuda_available()", op,
        device.str()));
}

Tensor fill(const Shape& shape, Scalar v, DType dt, Device device) {
  return create(OpId::fill, shape, dt, device, dispatch::fill_attrs(v, dt));
}

}  // namespace

Tensor scalar_tensor(Scalar value, std::optional<DType> dtype, Device device) {
  check_args("scalar_tensor", {}, device);
  return fill({}, value, dtype.value_or(value.default_dtype()), device);
}

Tensor empty(const Shape& shape, DType dtype, Device device) {
  check_args("empty", shape, device);
  return detail::make_tensor(shape, dtype, device);
}
Tensor zeros(const Shape& shape, DType dtype, Device device) {
  check_args("zeros", shape, device);
  return fill(shape, 0, dtype, device);
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  check_args("ones", shape, device);
  return fill(shape, 1, dtype, device);
}
Tensor full(const Shape& shape, Scalar value, std::optional<DType> dtype, Device device) {
  check_args("full", shape, device);
  return fill(shape, value, dtype.value_or(value.default_dtype()), device);
}

Tensor arange(Scalar end, std::optional<DType> dtype, Device device) {
  return arange(0, end, 1, dtype, device);
}

Tensor arange(Scalar start, Scalar end, Scalar step, std::optional<DType> dtype, Device device) {
  const bool fl = start.is_floating() || end.is_floating() || step.is_floating();
  const DType dt = dtype.value_or(fl ? DType::float32 : DType::int64);
  check_args("arange", {}, device);
  const double s = step.to_double();
  if (s == 0) throw ValueError("arange: step must be nonzero");
  const double span = end.to_double() - start.to_double();
  if ((s > 0 && span < 0) || (s < 0 && span > 0))
    throw ValueError(fmt::format("arange: the range {}..{} with step {} is empty in the wrong direction",
                                 start.str(), end.str(), step.str()));
  int64_t n;
  if (!fl)
    n = (end.to_int() - start.to_int() + step.to_int() + (step.to_int() > 0 ? -1 : 1)) / step.to_int();
  else
    n = static_cast<int64_t>(std::ceil(span / s));
  Attrs a;
  a.f0 = start.to_double();
  a.f1 = s;
  a.i0 = start.to_int();
  a.i1 = step.to_int();
  if (!is_floating(dt) && fl && (a.f0 != std::floor(a.f0) || a.f1 != std::floor(a.f1)))
    throw DTypeError(fmt::format("arange: fractional start/step cannot produce dtype {}", dtype_name(dt)));
  return create(OpId::arange, {std::max<int64_t>(n, 0)}, dt, device, a);
}

Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device) {
  if (steps < 0) throw ValueError(fmt::format("linspace: steps must be non-negative (got {})", steps));
  check_args("linspace", {steps}, device);
  Attrs a;
  a.f0 = start;
  a.f1 = end;
  return create(OpId::linspace, {steps}, dtype, device, a);
}

Tensor eye(int64_t n, std::optional<int64_t> m, DType dtype, Device device) {
  check_args("eye", {n, m.value_or(n)}, device);
  return create(OpId::eye, {n, m.value_or(n)}, dtype, device);
}

namespace {
// Note [Shapes in graph mode]: a graph tensor's shape holds stand-in sizes for
// its unknown dims, so *_like of one is built from the tensor itself (in graph
// mode: its shape in the run); outside graph mode it has no shape to copy.
bool is_graph_tensor(const Tensor& t) { return t.defined() && !t.impl().storage; }

Tensor graph_like(const char* who, const Tensor& t, Scalar v, DType dt) {
  dispatch::Recorder* rec = dispatch::current_recorder();
  if (!rec || !rec->graph_mode())
    throw ValueError(fmt::format("{}: {} has no value here; ops on graph tensors must run inside the graph's "
                                 "scope (g.as_default()) on this thread", who,
                                 t.impl().symbol ? t.impl().symbol->describe() : "a tensor without storage"));
  // A fully known shape makes a constant, as TF (t need not be computed or fed).
  const Shape s = rec->static_shape(t);
  if (std::none_of(s.begin(), s.end(), [](int64_t d) { return d < 0; })) return full(s, v, dt, t.device());
  return where(eq(t, t), v, v).to(dt);  // shaped by t when the graph runs (NaN-safe: both sides are v)
}
}  // namespace

Tensor empty_like(const Tensor& t, std::optional<DType> dt) {
  if (is_graph_tensor(t)) return graph_like("empty_like", t, 0, dt.value_or(t.dtype()));
  return empty(t.shape(), dt.value_or(t.dtype()), t.device());
}
Tensor zeros_like(const Tensor& t, std::optional<DType> dt) {
  if (is_graph_tensor(t)) return graph_like("zeros_like", t, 0, dt.value_or(t.dtype()));
  return zeros(t.shape(), dt.value_or(t.dtype()), t.device());
}
Tensor ones_like(const Tensor& t, std::optional<DType> dt) {
  if (is_graph_tensor(t)) return graph_like("ones_like", t, 1, dt.value_or(t.dtype()));
  return ones(t.shape(), dt.value_or(t.dtype()), t.device());
}
Tensor full_like(const Tensor& t, Scalar v, std::optional<DType> dt) {
  if (is_graph_tensor(t)) return graph_like("full_like", t, v, dt.value_or(t.dtype()));
  return full(t.shape(), v, dt.value_or(t.dtype()), t.device());
}

// ---- random ---------------------------------------------------------------

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
[[noreturn]] void throw_random_like(const char* who, const Tensor& t) {
  throw ValueError(fmt::format("{}: {} may have dims known only when the graph runs; draw with a known shape "
                               "(tf::random_normal(shape))", who,
                               t.impl().symbol ? t.impl().symbol->describe() : "a tensor without storage"));
}

Tensor random(OpId op, const Shape& shape, DType dt, Device device, Generator* gen, int64_t lo = 0,
              int64_t hi = 0) {
  check_args(dispatch::op_name(op), shape, device);
  Generator& g = gen ? *gen : default_generator();
  Attrs a;
  a.i0 = static_cast<int64_t>(g.seed());
  a.i2 = lo;
  a.i3 = hi;
  a.ints = shape;
  a.dtype = dt;
  a.device = device;
  // Check before drawing so that a failed call leaves the stream untouched.
  dispatch::schema(op).infer(op, {}, a);
  a.i1 = static_cast<int64_t>(g.advance(static_cast<uint64_t>(shape_numel(shape))));
  return dispatch::call(op, {}, a);
}
}  // namespace

Tensor rand(const Shape& shape, DType dt, Device device, Generator* gen) {
  return random(OpId::rand, shape, dt, device, gen);
}
Tensor randn(const Shape& shape, DType dt, Device device, Generator* gen) {
  return random(OpId::randn, shape, dt, device, gen);
}
Tensor truncated_normal(const Shape& shape, DType dt, Device device, Generator* gen) {
  return random(OpId::truncated_normal, shape, dt, device, gen);
}
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dt, Device device, Generator* gen) {
  return random(OpId::randint, shape, dt, device, gen, low, high);
}
Tensor rand_like(const Tensor& t, Generator* gen) {
  if (is_graph_tensor(t)) throw_random_like("rand_like", t);
  return rand(t.shape(), t.dtype(), t.device(), gen);
}
Tensor randn_like(const Tensor& t, Generator* gen) {
  if (is_graph_tensor(t)) throw_random_like("randn_like", t);
  return randn(t.shape(), t.dtype(), t.device(), gen);
}

}  // namespace ember
