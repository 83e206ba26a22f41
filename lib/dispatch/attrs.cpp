#include "dispatch/attrs.h"
#include "dispatch/dtype_visit.h"

#include <fmt/format.h>

namespace ember::dispatch {

Attrs fill_attrs(Scalar value, DType dtype) {
  Attrs a;
  a.f0 = value.to_double();
  a.i0 = dtype == DType::bool_ ? value.to<bool>() : value.to<int64_t>();
  return a;
}

std::string Attrs::str() const {
  std::string s;
  auto add = [&](std::string part) {
    if (!s.empty()) s += ' ';
    s += part;
  };
  if (!ints.empty()) add(fmt::format("ints=[{}]", fmt::join(ints, ",")));
  if (i0) add(fmt::format("i0={}", i0));
  if (i1) add(fmt::format("i1={}", i1));
  if (i2) add(fmt::format("i2={}", i2));
  if (i3) add(fmt::format("i3={}", i3));
  if (f0 != 0.0) add(fmt::format("f0={}", f0));
  if (f1 != 0.0) add(fmt::format("f1={}", f1));
  if (flags) add(fmt::format("flags={}", flags));
  return s;
}

std::string dtype_set_str(DTypeSet set) {
  std::string s;
  for (int i = 0; i < kNumDTypes; ++i) {
    if (!(set & (1u << i))) continue;
    if (!s.empty()) s += ", ";
    s += dtype_name(static_cast<DType>(i));
  }
  return s;
}

void throw_dtype(const char* op, const char* what, DType dt, DTypeSet accepted) {
  throw DTypeError(fmt::format("{}: {} has dtype {}, which is not supported (accepted: {})", op,
                               what, dtype_name(dt), dtype_set_str(accepted)));
}

}  // namespace ember::dispatch
