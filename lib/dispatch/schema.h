#pragma once
#include <cstdint>
#include <span>

#include <ember/tensor.h>

#include "dispatch/attrs.h"
#include "dispatch/dtype_visit.h"
#include "dispatch/op_id.h"

namespace ember::dispatch {

/// Op properties as data: passes and the dispatcher ask flags, never lists of ops.
enum OpFlag : uint32_t {
  kNone = 0,
  kElementwise = 1u << 0,  // output[i] depends only on inputs[i] (after broadcasting)
  kView = 1u << 1,         // output shares the first input's storage
  kCreation = 1u << 2,     // no tensor inputs
  kRandom = 1u << 3,       // reads a generator state (seed, offset in attrs)
  kReduction = 1u << 4,
  kUnary = 1u << 5,
  kBinary = 1u << 6,
  kReadsHost = 1u << 7,    // infer reads input values (index bounds): runs on every replay
};

/// What infer says an op will produce.
struct TensorMeta {
  Shape shape;
  DType dtype = DType::float32;
  Device device;
};

using Inputs = std::span<const Tensor>;
/// Checks the inputs and attrs (every user error is thrown here) and returns the output's meta.
using InferFn = TensorMeta (*)(OpId op, Inputs inputs, const Attrs& attrs);
/// Computes `out` (already allocated from infer's meta, except for view ops, which make it).
using KernelFn = void (*)(OpId op, Inputs inputs, const Attrs& attrs, Tensor& out);

/// An op declared once: its name, its properties and its shape/dtype rule.
struct OpSchema {
  const char* name = nullptr;
  uint32_t flags = 0;
  int arity = 0;  // number of tensor inputs; -1 for a list (concat)
  DTypeSet dtypes = kAll;
  InferFn infer = nullptr;
};

/// The schema row of `op` (the table is built once, from the .def lists).
const OpSchema& schema(OpId op);
inline const char* op_name(OpId op) { return schema(op).name; }

}  // namespace ember::dispatch
