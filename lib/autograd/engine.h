#pragma once
// The reverse-mode engine: a list of recorded op calls in execution order, and
// backward(), which walks it in reverse calling each op's rule. The eager tape
// (tape.cpp) and the TF1 shim's tf::gradients both fill a Program and call it.
#include <cstdint>
#include <vector>

#include <ember/tensor.h>

#include "dispatch/attrs.h"
#include "dispatch/op_id.h"

namespace ember::autograd {

/// One op call. Values are identified by small ints (ids); -1 = not differentiated.
struct Record {
  dispatch::OpId op;
  dispatch::Attrs attrs;
  std::vector<Tensor> in;       // saved inputs (all of them: rules read shapes)
  SmallVector<int, 3> in_ids;
  Tensor out;
  int out_id = -1;
  Shape out_shape;                  // the op's own result (an in-place write may broadcast/cast it)
  DType out_dtype = DType::float32;
  // Storage versions when saved (Note [Version counter]); empty = not checked (graph mode).
  SmallVector<uint32_t, 3> in_versions;
  uint32_t out_version = 0;
};

struct Program {
  std::vector<Record> records;
  int num_ids = 0;
};

/// A value to differentiate and d(loss)/d(value) (`seed`, shaped like it).
struct Target {
  int id = -1;  // -1: not recorded (it depends on no source)
  Tensor value;
  Tensor seed;
};

/// d(sum of targets weighted by their seeds) / d sources. `sources[i]` lists the
/// ids whose gradients are summed for source i (a Variable read twice in graph
/// mode has two); `source_like[i]` gives shape/dtype for a zero gradient.
/// `who` heads error messages ("GradientTape::gradient", "gradients").
std::vector<Tensor> backward(const Program& p, const std::vector<Target>& targets,
                             const std::vector<std::vector<int>>& sources,
                             const std::vector<Tensor>& source_like, const char* who);

}  // namespace ember::autograd
