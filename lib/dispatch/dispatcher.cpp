#include "dispatch/dispatcher.h"

#include <fmt/format.h>

#include "dispatch/registry.h"
#ifdef EMBER_WITH_CUDA
#include "gpu/api.h"
#endif

namespace ember::dispatch {

namespace detail {
thread_local Recorder* tls_recorder = nullptr;
}

Recorder* current_recorder() { return detail::tls_recorder; }
Recorder* set_recorder(Recorder* r) { return std::exchange(detail::tls_recorder, r); }

Tensor Recorder::build(OpId op, Inputs, const Attrs&, const TensorMeta&) {
  throw InternalError(fmt::format("{}: this recorder has no graph mode", op_name(op)));
}

Tensor Recorder::build_inplace(OpId op, Inputs, const Attrs&, const Tensor&) {
  throw InternalError(fmt::format("{}_: this recorder has no graph mode", op_name(op)));
}

Tensor Recorder::reshape_like(const Tensor& t, const Tensor& like) { return t.reshape(like.shape()); }

[[noreturn]] [[gnu::cold]] static void throw_symbolic(OpId op, std::size_t i, const Tensor& t) {
  const std::string what =
      t.impl().symbol ? t.impl().symbol->describe() : std::string("a tensor without storage");
  throw ValueError(fmt::format(
      "{}: input {} is {}, which has no value here; ops on graph tensors must run inside the graph's scope "
      "(g.as_default()) on this thread, and Session::run gives their values",
      op_name(op), i, what));
}

const Registry& registry() {
  static const Registry* r = [] {
    auto* reg = new Registry;
    cpu::register_cpu_kernels(*reg);
#ifdef EMBER_WITH_CUDA
    gpu::register_kernels(*reg);
#endif
    return reg;
  }();
  return *r;
}

KernelFn kernel_for(OpId op, Device device) {
  KernelFn k = registry().get(device.type, op);
  if (!k) [[unlikely]]
    throw DeviceError(fmt::format("{}: no kernel for {} in this build", op_name(op), device.str()));
  return k;
}

Tensor call(OpId op, Inputs inputs, const Attrs& attrs) {
  const OpSchema& s = schema(op);
  Recorder* rec = detail::tls_recorder;
  // Note [Symbolic tensors]: a rule that reads values (index bounds) leaves a
  // graph tensor's values to the run; outside graph mode it cannot take one.
  if (rec && rec->graph_mode() && rec->builds(inputs)) [[unlikely]]
    return rec->build(op, inputs, attrs, rec->infer(op, inputs, attrs));
  if (s.flags & kReadsHost) [[unlikely]]
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (!inputs[i].impl().storage) throw_symbolic(op, i, inputs[i]);
  TensorMeta meta = s.infer(op, inputs, attrs);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].impl().storage) [[unlikely]]
      throw_symbolic(op, i, inputs[i]);
  KernelFn k = kernel_for(op, meta.device);
  Tensor out;
  if (!(s.flags & kView)) out = ember::detail::make_tensor(meta.shape, meta.dtype, meta.device);
  k(op, inputs, attrs, out);
  if (rec) [[unlikely]]
    rec->record(op, inputs, attrs, out, false);
  return out;
}

namespace {

// True when writing `out` element by element while reading `in` at the same
// positions could read an element that was already overwritten.
bool unsafe_overlap(const Tensor& in, const Tensor& out) {
  const auto& a = in.impl();
  const auto& b = out.impl();
  if (a.storage.get() != b.storage.get() || a.numel == 0 || b.numel == 0) return false;
  // Identical layouts are safe elementwise; so are disjoint byte ranges.
  if (a.offset == b.offset && a.shape == b.shape && a.strides == b.strides && a.dtype == b.dtype)
    return false;
  auto range = [](const ember::detail::TensorImpl& t) {
    int64_t lo = t.offset, hi = t.offset;
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      int64_t ext = (t.shape[i] - 1) * t.strides[i];
      (ext < 0 ? lo : hi) += ext;
    }
    const auto sz = static_cast<int64_t>(itemsize(t.dtype));
    return std::pair<int64_t, int64_t>{lo * sz, (hi + 1) * sz};
  };
  auto [alo, ahi] = range(a);
  auto [blo, bhi] = range(b);
  return alo < bhi && blo < ahi;
}

bool has_internal_overlap(const Tensor& t) {
  const auto& s = t.shape();
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] > 1 && t.strides()[i] == 0) return true;
  return false;
}

}  // namespace

void check_inplace_type(OpId op, const TensorMeta& result, const Tensor& out) {
  const char* name = op_name(op);
  if (result.device != out.device())
    throw DeviceError(fmt::format("{}_: the result is on {} but the destination is on {}", name,
                                  result.device.str(), out.device().str()));
  const DType od = out.dtype();
  if (op != OpId::copy && ((is_floating(result.dtype) && !is_floating(od)) ||
                           (result.dtype != DType::bool_ && od == DType::bool_)))
    throw DTypeError(fmt::format("{}_: the result dtype {} cannot be stored in the destination's {}",
                                 name, dtype_name(result.dtype), dtype_name(od)));
}

void call_inplace(OpId op, Inputs inputs, const Attrs& attrs, Tensor& out) {
  const OpSchema& s = schema(op);
  const char* name = s.name;
  Recorder* rec = detail::tls_recorder;
  // Graph tensors are values: `out` becomes a new node (the recorder checks the types).
  if (rec && rec->graph_mode() && (!out.impl().storage || rec->builds(inputs))) [[unlikely]] {
    out = rec->build_inplace(op, inputs, attrs, out);
    return;
  }
  TensorMeta meta = s.infer(op, inputs, attrs);
  check_inplace_type(op, meta, out);
  // The "<op>_" name is built only when the shapes differ (not per call).
  if (meta.shape != out.shape() &&
      broadcast_shapes(meta.shape, out.shape(), (std::string(name) + "_").c_str()) != out.shape())
    throw ShapeError(fmt::format("{}_: the result shape {} does not broadcast to the destination's {}",
                                 name, shape_str(meta.shape), shape_str(out.shape())));
  const DType od = out.dtype();
  if (has_internal_overlap(out))
    throw ValueError(fmt::format(
        "{}_: the destination has elements that share memory (an expanded view); clone() it first",
        name));
  if (!out.impl().storage) [[unlikely]]
    throw_symbolic(op, inputs.size(), out);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].impl().storage) [[unlikely]]
      throw_symbolic(op, i, inputs[i]);
  if (rec) [[unlikely]]
    rec->before_inplace(op, inputs, out);
  KernelFn k = kernel_for(op, out.device());
  bool direct = (s.flags & kElementwise) && (meta.dtype == od || op == OpId::copy);
  for (const Tensor& in : inputs) direct = direct && !unsafe_overlap(in, out);
  if (direct) {
    k(op, inputs, attrs, out);
  } else {
    // Compute into a temporary, then cast/broadcast-copy into the destination.
    Tensor tmp;
    if (!(s.flags & kView)) tmp = ember::detail::make_tensor(meta.shape, meta.dtype, meta.device);
    k(op, inputs, attrs, tmp);
    Attrs ca;
    ca.dtype = od;
    const Tensor src[1] = {tmp};
    kernel_for(OpId::copy, out.device())(OpId::copy, Inputs(src, 1), ca, out);
  }
  // Note [Version counter]: saved tensors of a gradient tape see this write.
  out.impl().storage->bump_version();
  if (rec) [[unlikely]]
    rec->record(op, inputs, attrs, out, true);
}

}  // namespace ember::dispatch
