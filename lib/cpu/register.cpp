#include "cpu/kernels.h"
#include "dispatch/registry.h"

namespace ember::cpu {

void register_cpu_kernels(dispatch::Registry& r) {
  using dispatch::OpId;
  constexpr DeviceType cpu = DeviceType::cpu;
#define EMBER_UNARY(name, F, rule, dtypes) r.set(cpu, OpId::name, &elementwise_kernel);
#define EMBER_BINARY(name, F, rule, dtypes) r.set(cpu, OpId::name, &elementwise_kernel);
#include "ops/elementwise.def"
#define EMBER_REDUCE(name, rule, dtypes) r.set(cpu, OpId::name, &reduce_kernel);
#include "ops/reduce.def"
  for (OpId op : {OpId::reshape, OpId::permute, OpId::slice, OpId::select, OpId::expand})
    r.set(cpu, op, &view_kernel);
  r.set(cpu, OpId::copy, &copy_kernel);
  r.set(cpu, OpId::where, &where_kernel);
  r.set(cpu, OpId::clamp, &clamp_kernel);
  r.set(cpu, OpId::softmax, &softmax_kernel);
  r.set(cpu, OpId::log_softmax, &softmax_kernel);
  r.set(cpu, OpId::matmul, &matmul_kernel);
  r.set(cpu, OpId::concat, &concat_kernel);
  r.set(cpu, OpId::index_select, &index_select_kernel);
  for (OpId op : {OpId::fill, OpId::arange, OpId::linspace, OpId::eye, OpId::rand, OpId::randn,
                  OpId::randint})
    r.set(cpu, op, &creation_kernel);
}

}  // namespace ember::cpu
