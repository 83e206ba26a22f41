#pragma once
// Shape/dtype rules shared by the op families (the "meta" functions).
#include <vector>

#include "dispatch/schema.h"

namespace ember::ops {

/// PyTorch's result_type: dimensioned tensors outrank 0-d tensors, which outrank
/// wrapped C++ numbers; a lower level only counts when it is of a higher category.
DType result_type(dispatch::Inputs inputs);
/// The dtype a C++ number takes next to a tensor of dtype `other` (no widening within a kind).
DType scalar_dtype(Scalar s, DType other);
/// Throws DeviceError unless every input is on the same device; returns it.
Device common_device(const char* op, dispatch::Inputs inputs);
/// The values of a 0-d or 1-d int32/int64 index tensor (CPU), read directly:
/// bounds checks and kernels reading indices are not host reads a trace guards.
std::vector<int64_t> index_values(const Tensor& idx);
/// matmul's NumPy rule for 1-d operands, shared by every device's kernel:
/// a [K] becomes a [1, K] view, b [K] a [K, 1] view. Returns the batch shape
/// (out's shape without the matrix dims that exist).
Shape matmul_operands(Tensor& a, Tensor& b, const Shape& out_shape);
/// concat's kernel on every device: each input is copied by `copy` (the
/// device's strided copy) into its slice of `out` along attrs.i0.
void concat_slices(dispatch::Inputs in, const dispatch::Attrs& attrs, Tensor& out,
                   void (*copy)(Tensor& dst, const Tensor& src));
/// Sorted, wrapped, de-duplicated axes (empty = all dims).
Axes normalize_axes(const char* op, const Axes& axes, int64_t rank);

}  // namespace ember::ops
