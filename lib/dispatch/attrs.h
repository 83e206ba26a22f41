#pragma once
#include <cstdint>
#include <string>

#include <ember/device.h>
#include <ember/dtype.h>
#include <ember/shape.h>

namespace ember::dispatch {

/// The non-tensor arguments of an op call, in a fixed, flat form: cheap to
/// build, compare, hash and serialize. Each op's row in its .def file says
/// which fields it reads.
struct Attrs {
  SmallVector<int64_t, 6> ints;  // shape, axes, permutation, strides
  int64_t i0 = 0, i1 = 0, i2 = 0, i3 = 0;
  double f0 = 0.0, f1 = 0.0;
  DType dtype = DType::float32;
  uint8_t flags = 0;
  Device device;  // creation ops

  friend bool operator==(const Attrs& a, const Attrs& b) {
    return a.ints == b.ints && a.i0 == b.i0 && a.i1 == b.i1 && a.i2 == b.i2 && a.i3 == b.i3 &&
           a.f0 == b.f0 && a.f1 == b.f1 && a.dtype == b.dtype && a.flags == b.flags &&
           a.device == b.device;
  }
  /// The set fields as "ints=[0,1] i0=2" (for graph listings).
  std::string str() const;
};

/// The attrs of a fill op holding `value` in `dtype` (f0, and i0 exact for
/// integers and bool). ember::full and the TF1 shim's fill with run-time
/// sizes both build them here.
Attrs fill_attrs(Scalar value, DType dtype);

enum AttrFlag : uint8_t {
  kKeepDims = 1,  // reductions
  kHasMin = 2,    // clamp
  kHasMax = 4,    // clamp
};

}  // namespace ember::dispatch
