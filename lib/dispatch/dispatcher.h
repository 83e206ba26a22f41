#pragma once
#include <initializer_list>

#include "dispatch/recorder.h"
#include "dispatch/registry.h"
#include "dispatch/schema.h"

namespace ember::dispatch {

namespace detail {
extern thread_local Recorder* tls_recorder;
}

/// The narrow waist: infer (throws user errors before anything is allocated),
/// allocate, run the device kernel, let a recorder observe.
Tensor call(OpId op, Inputs inputs, const Attrs& attrs = {});
inline Tensor call(OpId op, std::initializer_list<Tensor> inputs, const Attrs& attrs = {}) {
  return call(op, Inputs(inputs.begin(), inputs.size()), attrs);
}

/// In place: computes `op` into `out` (an add_ target, a copy_ destination).
/// The result must broadcast to out's shape and is cast to out's dtype.
/// Overlap between `out` and an input that is not elementwise-safe goes through a temporary.
void call_inplace(OpId op, Inputs inputs, const Attrs& attrs, Tensor& out);

/// The type checks of an in-place write of `result` into `out` (same device;
/// no floating result into an integer destination, nothing but bool into bool).
void check_inplace_type(OpId op, const TensorMeta& result, const Tensor& out);

/// Runs the kernel without inference or recording (for kernels composed of
/// other kernels, and for the graph executor, which resolved everything earlier).
KernelFn kernel_for(OpId op, Device device);

}  // namespace ember::dispatch
