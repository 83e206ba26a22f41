#include <ember/dtype.h>
#include <ember/half.h>

#include <algorithm>

#include <fmt/format.h>

namespace ember {

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::bool_: return "bool";
    case DType::uint8: return "uint8";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::float32: return "float32";
    case DType::float64: return "float64";
  }
  return "?";
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  // Rank along bool < uint8 < int32 < int64 < (float16, bfloat16) < float32 < float64.
  static constexpr int rank[] = {0, 1, 2, 3, 4, 4, 5, 6};
  if ((a == DType::float16 && b == DType::bfloat16) ||
      (a == DType::bfloat16 && b == DType::float16))
    return DType::float32;
  return rank[static_cast<int>(a)] >= rank[static_cast<int>(b)] ? a : b;
}

Scalar::Scalar(Half v) : kind_(Kind::floating), d_(static_cast<float>(v)) {}
Scalar::Scalar(BFloat16 v) : kind_(Kind::floating), d_(static_cast<float>(v)) {}

std::string Scalar::str() const {
  switch (kind_) {
    case Kind::boolean: return i_ ? "true" : "false";
    case Kind::integer: return fmt::format("{}", i_);
    case Kind::floating: return fmt::format("{}", d_);
  }
  return "?";
}

}  // namespace ember
