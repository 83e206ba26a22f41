#pragma once
#include <ember/device.h>

#include "dispatch/schema.h"

namespace ember::dispatch {

/// Kernels per device type and op: a table of plain function pointers.
class Registry {
 public:
  void set(DeviceType dev, OpId op, KernelFn fn) {
    kernels_[static_cast<int>(dev)][op_index(op)] = fn;
  }
  KernelFn get(DeviceType dev, OpId op) const {
    return kernels_[static_cast<int>(dev)][op_index(op)];
  }

 private:
  KernelFn kernels_[kNumDeviceTypes][kNumOps] = {};
};

/// The process-wide registry, filled on first use by register_cpu_kernels (and
/// register_cuda_kernels when built): no static initializers.
const Registry& registry();

}  // namespace ember::dispatch

namespace ember::cpu {
void register_cpu_kernels(dispatch::Registry& r);
}
