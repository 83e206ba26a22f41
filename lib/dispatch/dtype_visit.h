#pragma once
#include <cstdint>
#include <string>

#include <ember/dtype.h>
#include <ember/error.h>

namespace ember::dispatch {

/// A set of dtypes as a bit mask over DType.
using DTypeSet = uint32_t;
constexpr DTypeSet bit(DType dt) { return 1u << static_cast<int>(dt); }
inline constexpr DTypeSet kFloating = bit(DType::float32) | bit(DType::float64);
inline constexpr DTypeSet kIntegral = bit(DType::uint8) | bit(DType::int32) | bit(DType::int64);
inline constexpr DTypeSet kNumeric = kFloating | kIntegral;
inline constexpr DTypeSet kAll = kNumeric | bit(DType::bool_);
constexpr bool contains(DTypeSet set, DType dt) { return (set & bit(dt)) != 0; }
/// `set` plus float16/bfloat16 where it holds float32: the 16-bit floats go
/// wherever float32 goes (on the GPU; CPU inference refuses them first).
constexpr DTypeSet with_half(DTypeSet set) {
  return contains(set, DType::float32) ? set | bit(DType::float16) | bit(DType::bfloat16) : set;
}

/// "bool, uint8, int32" — the members of a set, for messages.
std::string dtype_set_str(DTypeSet set);
/// Throws DTypeError `<op>: <what> has dtype X, which is not supported (accepted: ...)`.
[[noreturn]] void throw_dtype(const char* op, const char* what, DType dt, DTypeSet accepted);
inline void check_dtype(const char* op, const char* what, DType dt, DTypeSet accepted) {
  if (!contains(with_half(accepted), dt)) [[unlikely]]
    throw_dtype(op, what, dt, accepted);
}

/// Calls `f.template operator()<T>()` with the C++ type of `dt`, bounded by `Set`.
template <DTypeSet Set = kAll, class F>
decltype(auto) visit_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::bool_:
      if constexpr (contains(Set, DType::bool_)) return f.template operator()<bool>();
      break;
    case DType::uint8:
      if constexpr (contains(Set, DType::uint8)) return f.template operator()<uint8_t>();
      break;
    case DType::int32:
      if constexpr (contains(Set, DType::int32)) return f.template operator()<int32_t>();
      break;
    case DType::int64:
      if constexpr (contains(Set, DType::int64)) return f.template operator()<int64_t>();
      break;
    case DType::float32:
      if constexpr (contains(Set, DType::float32)) return f.template operator()<float>();
      break;
    case DType::float64:
      if constexpr (contains(Set, DType::float64)) return f.template operator()<double>();
      break;
    default:
      break;
  }
  throw_dtype("visit_dtype", "input", dt, Set);
}

}  // namespace ember::dispatch
