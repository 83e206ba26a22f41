#pragma once
// The umbrella header: everything a user of the eager core needs.
#include <ember/autograd.h>
#include <ember/creation.h>
#include <ember/cuda.h>
#include <ember/data/dataset.h>
#include <ember/device.h>
#include <ember/dtype.h>
#include <ember/error.h>
#include <ember/format.h>
#include <ember/half.h>
#include <ember/io.h>
#include <ember/memory.h>
#include <ember/ops.h>
#include <ember/random.h>
#include <ember/shape.h>
#include <ember/tensor.h>
#include <ember/variable.h>

namespace ember {
/// The CPU instruction set ember's kernels use on this machine ("avx512bw", "fma3+avx2", "sse2").
const char* cpu_arch_name();
/// Threads used by large CPU ops (the calling thread included).
int get_num_threads();
/// Sets the thread count for large CPU ops; 1 keeps everything on the calling thread.
void set_num_threads(int n);
}  // namespace ember
