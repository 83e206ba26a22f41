#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace ember {

/// Element types. float16/bfloat16 (ember::Half, ember::BFloat16 in half.h) are computed in
/// float32 and stored rounded, on the CPU as on the GPU.
enum class DType : uint8_t { bool_, uint8, int32, int64, float16, bfloat16, float32, float64 };

inline constexpr DType bool_ = DType::bool_;
inline constexpr DType uint8 = DType::uint8;
inline constexpr DType int32 = DType::int32;
inline constexpr DType int64 = DType::int64;
inline constexpr DType float16 = DType::float16;
inline constexpr DType bfloat16 = DType::bfloat16;
inline constexpr DType float32 = DType::float32;
inline constexpr DType float64 = DType::float64;
inline constexpr int kNumDTypes = 8;

/// "float32", "int64", ... as printed in messages.
const char* dtype_name(DType dt);
/// Bytes per element.
constexpr std::size_t itemsize(DType dt) {
  constexpr std::size_t sizes[] = {1, 1, 4, 8, 2, 2, 4, 8};
  return sizes[static_cast<int>(dt)];
}
/// float16, bfloat16, float32, float64.
constexpr bool is_floating(DType dt) {
  return dt == DType::float16 || dt == DType::bfloat16 || dt == DType::float32 ||
         dt == DType::float64;
}
/// uint8, int32, int64 (bool is not integral here).
constexpr bool is_integral(DType dt) {
  return dt == DType::uint8 || dt == DType::int32 || dt == DType::int64;
}
/// NumPy/PyTorch promotion of two tensor dtypes (`int32, float32 -> float32`).
DType promote_types(DType a, DType b);

/// The DType of a C++ element type.
template <class T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<bool>() { return DType::bool_; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::uint8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::int32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::int64; }
template <> constexpr DType dtype_of<float>() { return DType::float32; }
template <> constexpr DType dtype_of<double>() { return DType::float64; }

struct Half;
struct BFloat16;

/// A number not yet typed: how `t * 2` and `t * 2.5` keep the tensor's dtype
/// where they can (a scalar does not widen a tensor of the same kind).
class Scalar {
 public:
  enum class Kind : uint8_t { boolean, integer, floating };
  Scalar() = default;
  template <class T>
    requires std::is_arithmetic_v<T>
  Scalar(T v) {  // NOLINT: implicit on purpose, like PyTorch's Scalar
    if constexpr (std::is_same_v<T, bool>) {
      kind_ = Kind::boolean;
      i_ = v;
    } else if constexpr (std::is_integral_v<T>) {
      kind_ = Kind::integer;
      i_ = static_cast<int64_t>(v);
    } else {
      kind_ = Kind::floating;
      d_ = static_cast<double>(v);
    }
  }
  /// The exact value of a 16-bit float (half.h), as a floating number.
  Scalar(Half v);      // NOLINT: implicit like the arithmetic types
  Scalar(BFloat16 v);  // NOLINT
  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::floating; }
  double to_double() const { return kind_ == Kind::floating ? d_ : static_cast<double>(i_); }
  int64_t to_int() const { return kind_ == Kind::floating ? static_cast<int64_t>(d_) : i_; }
  template <class T>
  T to() const {
    if constexpr (std::is_same_v<T, bool>)
      return kind_ == Kind::floating ? d_ != 0.0 : i_ != 0;
    else if constexpr (std::is_floating_point_v<T>)
      return static_cast<T>(to_double());
    else
      return kind_ == Kind::floating ? static_cast<T>(d_) : static_cast<T>(i_);
  }
  /// The dtype a lone scalar of this kind becomes: bool, int64 or float32.
  DType default_dtype() const {
    return kind_ == Kind::boolean ? DType::bool_
                                  : (kind_ == Kind::integer ? DType::int64 : DType::float32);
  }
  std::string str() const;

 private:
  Kind kind_ = Kind::integer;
  int64_t i_ = 0;
  double d_ = 0.0;
};

}  // namespace ember
