#pragma once
#include <cstdint>

namespace ember::dispatch {

/// Every op ember knows, from the family lists in lib/ops/*.def.
enum class OpId : uint16_t {
#define EMBER_UNARY(name, F, rule, dtypes) name,
#define EMBER_BINARY(name, F, rule, dtypes) name,
#include "ops/elementwise.def"
#define EMBER_REDUCE(name, rule, dtypes) name,
#include "ops/reduce.def"
#define EMBER_OP(name, flags, arity) name,
#include "ops/structural.def"
  count_
};
inline constexpr int kNumOps = static_cast<int>(OpId::count_);
inline constexpr int op_index(OpId op) { return static_cast<int>(op); }

}  // namespace ember::dispatch
