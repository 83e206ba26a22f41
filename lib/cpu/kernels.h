#pragma once
// The CPU kernels, one per op family; register.cpp puts them in the registry.
#include "dispatch/schema.h"

namespace ember::cpu {

#define EMBER_CPU_KERNEL(name) \
  void name(dispatch::OpId op, dispatch::Inputs in, const dispatch::Attrs& a, Tensor& out)
EMBER_CPU_KERNEL(elementwise_kernel);
EMBER_CPU_KERNEL(where_kernel);
EMBER_CPU_KERNEL(clamp_kernel);
EMBER_CPU_KERNEL(copy_kernel);
EMBER_CPU_KERNEL(reduce_kernel);
EMBER_CPU_KERNEL(view_kernel);
EMBER_CPU_KERNEL(to_device_kernel);  // serves the CUDA backend too
EMBER_CPU_KERNEL(concat_kernel);
EMBER_CPU_KERNEL(index_select_kernel);
EMBER_CPU_KERNEL(softmax_kernel);
EMBER_CPU_KERNEL(matmul_kernel);
EMBER_CPU_KERNEL(addmm_kernel);
EMBER_CPU_KERNEL(creation_kernel);
#undef EMBER_CPU_KERNEL

/// Strides for viewing a tensor of (shape, strides) as `target`, or an empty
/// result when no view exists (PyTorch's computeStride).
bool view_strides(const Shape& shape, const Strides& strides, const Shape& target, Strides* out);

}  // namespace ember::cpu
