#pragma once
#include <cstdint>
#include <string>

#include <ember/small_vector.h>

namespace ember {

/// Sizes of a tensor, outermost first; `{2, 3}` is a 2x3 matrix.
using Shape = SmallVector<int64_t, 6>;
/// Element strides of a tensor (not bytes), one per dim.
using Strides = SmallVector<int64_t, 6>;

/// A set of axes to reduce over; negative axes count from the end.
/// Default-constructed (or `{}`) means every axis.
using Axes = SmallVector<int64_t, 6>;

/// Product of the sizes (1 for a 0-d shape).
int64_t shape_numel(const Shape& s);
/// Row-major (C order) strides for `s`.
Strides contiguous_strides(const Shape& s);
/// `[2,3]` — how shapes appear in messages and printing.
std::string shape_str(const Shape& s);
/// NumPy broadcasting of two shapes; `op` names the caller in the error message.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// Maps a possibly negative `dim` into [0, rank); throws IndexError naming `op`.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* op, const char* what = "dim");

}  // namespace ember
