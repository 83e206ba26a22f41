#include <vector>

#include "cpu/kernels.h"
#include "cpu/loops.h"
#include "dispatch/registry.h"
#include "dispatch/schema.h"

namespace ember::cpu {

namespace {

constexpr bool is_half(DType dt) { return dispatch::contains(dispatch::kHalf, dt); }

// Note [Half on the CPU]: CPU kernels compute in bool..float64 only. A kernel
// that computes (elementwise, reductions, softmax, matmul) is registered
// through widened<>: float16/bfloat16 inputs are widened to float32 (exactly),
// the kernel runs in float32 and a float16/bfloat16 result is rounded once on
// the way out. That is PyTorch's "opmath" and what the CUDA kernels do in
// registers, so the two devices give the same bits wherever the float32 math
// does. Kernels that only move elements (copy/cast, views, concat,
// index_select, creation) handle the 16-bit dtypes directly.
template <dispatch::KernelFn K>
void widened(dispatch::OpId op, dispatch::Inputs in, const dispatch::Attrs& a, Tensor& out) {
  bool any = is_half(out.dtype());
  for (const Tensor& t : in) any = any || is_half(t.dtype());
  if (!any) [[likely]] {
    K(op, in, a, out);
    return;
  }
  std::vector<Tensor> wide;
  wide.reserve(in.size());
  for (const Tensor& t : in) wide.push_back(is_half(t.dtype()) ? cast_to(t, DType::float32) : t);
  Tensor result = is_half(out.dtype())
                      ? ember::detail::make_tensor(out.shape(), DType::float32, out.device())
                      : out;
  K(op, dispatch::Inputs(wide.data(), wide.size()), a, result);
  if (!result.is_same(out)) copy_into(out, result);
}

}  // namespace

void register_cpu_kernels(dispatch::Registry& r) {
  using dispatch::OpId;
  constexpr DeviceType cpu = DeviceType::cpu;
#define EMBER_UNARY(name, F, rule, dtypes) r.set(cpu, OpId::name, &widened<&elementwise_kernel>);
#define EMBER_BINARY(name, F, rule, dtypes) r.set(cpu, OpId::name, &widened<&elementwise_kernel>);
#include "ops/elementwise.def"
#define EMBER_REDUCE(name, rule, dtypes) r.set(cpu, OpId::name, &widened<&reduce_kernel>);
#include "ops/reduce.def"
  // Views and creation ops by their schema flags (structural.def), so a new one cannot be missed.
  for (int i = 0; i < dispatch::kNumOps; ++i) {
    const auto op = static_cast<OpId>(i);
    const uint32_t flags = dispatch::schema(op).flags;
    if (flags & dispatch::kView) r.set(cpu, op, &view_kernel);
    if (flags & dispatch::kCreation) r.set(cpu, op, &creation_kernel);
  }
  r.set(cpu, OpId::copy, &copy_kernel);
  r.set(cpu, OpId::to_device, &to_device_kernel);
  r.set(cpu, OpId::where, &widened<&where_kernel>);
  r.set(cpu, OpId::clamp, &widened<&clamp_kernel>);
  r.set(cpu, OpId::softmax, &widened<&softmax_kernel>);
  r.set(cpu, OpId::log_softmax, &widened<&softmax_kernel>);
  r.set(cpu, OpId::matmul, &widened<&matmul_kernel>);
  r.set(cpu, OpId::addmm, &widened<&addmm_kernel>);
  r.set(cpu, OpId::concat, &concat_kernel);
  r.set(cpu, OpId::index_select, &index_select_kernel);
}

}  // namespace ember::cpu
