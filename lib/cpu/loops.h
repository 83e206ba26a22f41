#pragma once
// N-d strided iteration for elementwise kernels (TensorIterator-style): the
// operands are broadcast to the output's shape, dims that are contiguous for
// every operand are coalesced, and an inner Loop runs over the innermost dim.
#include <ember/tensor.h>

#include "cpu/arch/arch.h"

namespace ember::cpu {

inline constexpr int kMaxOperands = 4;

/// Runs `loop` for out = f(inputs...) with inputs broadcast to out's shape.
/// Splits large iterations across the thread pool.
void run_elementwise(Loop loop, Tensor& out, const Tensor* inputs, int n_inputs,
                     const void* extra = nullptr);

/// A contiguous copy of `t` cast to `dt` (no recording): for kernels that need
/// their operands in one dtype or layout.
Tensor cast_to(const Tensor& t, DType dt);
/// Copies src (broadcast, cast) into dst's memory.
void copy_into(Tensor& dst, const Tensor& src);

}  // namespace ember::cpu
