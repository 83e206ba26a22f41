// CPU kernels of the elementwise family (unary, binary, where, clamp, copy/cast).
#include <fmt/format.h>

#include "cpu/arch/arch.h"
#include "cpu/kernels.h"
#include "cpu/loops.h"
#include "dispatch/schema.h"
#include "ops/infer.h"

namespace ember::cpu {

using dispatch::Attrs;
using dispatch::Inputs;
using dispatch::OpId;

Tensor cast_to(const Tensor& t, DType dt) {
  Tensor out = ember::detail::make_tensor(t.shape(), dt, t.device());
  copy_into(out, t);
  return out;
}

void copy_into(Tensor& dst, const Tensor& src) {
  Loop loop = arch().cast[static_cast<int>(src.dtype())][static_cast<int>(dst.dtype())];
  EMBER_CHECK_INTERNAL(loop != nullptr);
  run_elementwise(loop, dst, &src, 1);
}

namespace {

// The dtype the functor runs in, from the op's rule.
DType compute_dtype(OpId op, Inputs in, const Tensor& out) {
  switch (op) {
#define EMBER_UNARY(name, F, rule, dtypes) \
  case OpId::name: return #rule[0] == 'l' ? DType::bool_ : (#rule[0] == 'c' ? ops::result_type(in) : out.dtype());
#define EMBER_BINARY(name, F, rule, dtypes) EMBER_UNARY(name, F, rule, dtypes)
#include "ops/elementwise.def"
    default: return out.dtype();
  }
}

// Inputs in the compute dtype (cast copies only where needed).
struct Operands {
  Tensor t[kMaxOperands];
  Operands(Inputs in, std::size_t first, DType dt) {
    for (std::size_t i = first; i < in.size(); ++i)
      t[i - first] = in[i].dtype() == dt ? in[i] : cast_to(in[i], dt);
  }
};

}  // namespace

void elementwise_kernel(OpId op, Inputs in, const Attrs&, Tensor& out) {
  const DType ct = compute_dtype(op, in, out);
  Loop loop = arch().elementwise[dispatch::op_index(op)][static_cast<int>(ct)];
  EMBER_CHECK_INTERNAL(loop != nullptr);
  if (in[0].dtype() == ct && (in.size() < 2 || in[1].dtype() == ct)) {
    run_elementwise(loop, out, in.data(), static_cast<int>(in.size()));
    return;
  }
  Operands ops(in, 0, ct);
  run_elementwise(loop, out, ops.t, static_cast<int>(in.size()));
}

void where_kernel(OpId, Inputs in, const Attrs&, Tensor& out) {
  Loop loop = arch().elementwise[dispatch::op_index(OpId::where)][static_cast<int>(out.dtype())];
  Tensor ops[3] = {in[0].dtype() == DType::bool_ ? in[0] : cast_to(in[0], DType::bool_),
                   in[1].dtype() == out.dtype() ? in[1] : cast_to(in[1], out.dtype()),
                   in[2].dtype() == out.dtype() ? in[2] : cast_to(in[2], out.dtype())};
  run_elementwise(loop, out, ops, 3);
}

void clamp_kernel(OpId, Inputs in, const Attrs& a, Tensor& out) {
  Loop loop = arch().elementwise[dispatch::op_index(OpId::clamp)][static_cast<int>(out.dtype())];
  const double extra[3] = {a.f0, a.f1, static_cast<double>(a.flags)};
  Tensor x = in[0].dtype() == out.dtype() ? in[0] : cast_to(in[0], out.dtype());
  run_elementwise(loop, out, &x, 1, extra);
}

void copy_kernel(OpId, Inputs in, const Attrs&, Tensor& out) { copy_into(out, in[0]); }

}  // namespace ember::cpu
