#pragma once
#include <string>

#include <ember/tensor.h>

namespace ember {

/// Writes `t` as a NumPy .npy file (version 1.0, C order, little endian); float16 is '<f2'.
/// bfloat16 raises DTypeError: NumPy has no such dtype (save `t.to(float32)`, which is exact).
void save_npy(const std::string& path, const Tensor& t);
/// Reads a .npy file of any of ember's dtypes, C or Fortran order.
/// A missing, truncated or malformed file raises ValueError naming the path and the problem.
Tensor load_npy(const std::string& path);

}  // namespace ember
