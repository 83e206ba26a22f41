#pragma once
#include <ostream>
#include <string>

#include <fmt/format.h>

#include <ember/tensor.h>

namespace ember {

/// How tensors print (NumPy/PyTorch style).
struct PrintOptions {
  int precision = 4;          ///< digits after the point in fixed/scientific form
  int64_t threshold = 1000;   ///< more elements than this are summarized with "..."
  int64_t edgeitems = 3;      ///< elements kept at each end of a summarized dim
  int linewidth = 80;
};
/// The options used by operator<< and fmt.
PrintOptions& print_options();

/// "tensor([[1., 2.],\n        [3., 4.]])"; the dtype is shown unless float32, int64 or bool.
std::string to_string(const Tensor& t, const PrintOptions& opts = print_options());
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::ostream& operator<<(std::ostream& os, DType dt);
std::ostream& operator<<(std::ostream& os, Device d);

}  // namespace ember

template <>
struct fmt::formatter<ember::Tensor> : fmt::formatter<std::string> {
  template <class Ctx>
  auto format(const ember::Tensor& t, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(ember::to_string(t), ctx);
  }
};
template <>
struct fmt::formatter<ember::DType> : fmt::formatter<const char*> {
  template <class Ctx>
  auto format(ember::DType d, Ctx& ctx) const {
    return fmt::formatter<const char*>::format(ember::dtype_name(d), ctx);
  }
};
template <>
struct fmt::formatter<ember::Device> : fmt::formatter<std::string> {
  template <class Ctx>
  auto format(ember::Device d, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(d.str(), ctx);
  }
};
