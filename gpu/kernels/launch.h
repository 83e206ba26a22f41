#pragma once
// The interface between the host side of the CUDA backend (gpu/*.cpp, which
// knows Tensors) and the kernels (gpu/kernels/*.cu, which see only plain
// arguments). Keeping Tensor out of the .cu files keeps nvcc's work small.
#include <cstdint>

#include <cuda_runtime_api.h>

#include <ember/dtype.h>

#include "dispatch/op_id.h"

namespace ember::gpu {

/// Dims an elementwise launch handles after adjacent dims are merged.
inline constexpr int kMaxDims = 10;

/// One tensor argument of an elementwise launch, with element strides over
/// the output's (merged) shape: 0 where it is broadcast.
struct Operand {
  const void* ptr = nullptr;
  int64_t stride[kMaxDims] = {};
  DType dtype = DType::float32;
  bool scalar = false;   // a host number passed by value (a wrapped CPU scalar)
  double fval = 0.0;     // its value, for floating compute dtypes
  int64_t ival = 0;      // its value, for integral/bool compute dtypes
};

struct ElementwiseArgs {
  int ndim = 0;
  int64_t size[kMaxDims] = {};
  int64_t numel = 0;
  bool contiguous = false;  // out and every tensor operand are dense in the same order
  void* out = nullptr;
  int64_t out_stride[kMaxDims] = {};
  DType out_dtype = DType::float32;
  DType compute = DType::float32;  // the dtype every tensor operand already has
  int n_in = 0;
  Operand in[3];
  double f0 = 0.0, f1 = 0.0;  // clamp bounds
  uint8_t flags = 0;
};

/// Unary/binary ops of elementwise.def, where and clamp.
void launch_elementwise(dispatch::OpId op, const ElementwiseArgs& a, cudaStream_t s);
/// out = cast(in[0]) for any pair of dtypes (in[0].dtype -> out_dtype).
void launch_cast(const ElementwiseArgs& a, cudaStream_t s);

/// A reduction of a tensor viewed as [outer..., reduced...]: for each output
/// element o, its input base offset is computed from `out_size`/`in_ostride`,
/// and the reduced elements from `red_size`/`red_stride`.
struct ReduceArgs {
  const void* in = nullptr;
  DType in_dtype = DType::float32;
  void* out = nullptr;        // contiguous, n_out elements
  DType out_dtype = DType::float32;
  int64_t n_out = 0, n_red = 0;
  int out_ndim = 0, red_ndim = 0;
  int64_t out_size[kMaxDims] = {}, in_ostride[kMaxDims] = {};
  int64_t red_size[kMaxDims] = {}, red_stride[kMaxDims] = {};
  double correction = 1.0;   // var/std
};
void launch_reduce(dispatch::OpId op, const ReduceArgs& a, void* workspace, std::size_t workspace_bytes,
                   cudaStream_t s);
/// Bytes of workspace launch_reduce may use for these arguments.
std::size_t reduce_workspace_bytes(dispatch::OpId op, const ReduceArgs& a);

/// softmax / log_softmax of a contiguous [outer, n, inner] tensor along n.
void launch_softmax(bool log, DType dt, const void* in, void* out, int64_t outer, int64_t n, int64_t inner,
                    cudaStream_t s);

/// out[o, j, i] = in[o, idx[j], i] for contiguous out and strided in ([outer, size, inner]
/// with strides). Out-of-range indices write 0 and set *bad_flag (device memory) to 1.
void launch_index_select(DType dt, const void* in, int64_t outer, int64_t size, int64_t inner,
                         int64_t s_outer, int64_t s_dim, int64_t s_inner, const void* idx, DType idx_dt,
                         int64_t idx_stride, int64_t n_idx, void* out, int* bad_flag, cudaStream_t s);

/// Creation ops: fill, arange, linspace, eye, rand, randn, randint (see structural.def).
struct CreationArgs {
  void* out = nullptr;
  DType dtype = DType::float32;
  int64_t numel = 0;
  int64_t rows = 0, cols = 0;  // eye
  double f0 = 0.0, f1 = 0.0;
  int64_t i0 = 0, i1 = 0, i2 = 0, i3 = 0;
};
void launch_creation(dispatch::OpId op, const CreationArgs& a, cudaStream_t s);

/// One fused elementwise program (see capture/ir/graph.h FusedProgram):
/// register r < n_inputs is input r; instruction i writes register n_inputs + i.
inline constexpr int kMaxFusedInputs = 8;
inline constexpr int kMaxFusedInstrs = 256;
struct FusedArgs {
  DType dtype = DType::float32;  // every register's dtype
  int n_inputs = 0, n_instrs = 0;
  uint16_t op[kMaxFusedInstrs] = {};
  int16_t a[kMaxFusedInstrs] = {}, b[kMaxFusedInstrs] = {};
  int ndim = 0;
  int64_t size[kMaxDims] = {};
  int64_t numel = 0;
  const void* in[kMaxFusedInputs] = {};
  int64_t in_stride[kMaxFusedInputs][kMaxDims] = {};
  bool in_dense[kMaxFusedInputs] = {};   // contiguous over the output: index i
  bool in_scalar[kMaxFusedInputs] = {};  // one element
  bool in_host[kMaxFusedInputs] = {};    // a CPU 0-d tensor: its value is in_val
  double in_val[kMaxFusedInputs] = {};
  void* out = nullptr;                   // contiguous
};
/// False when the program uses an op the fused kernel does not know.
bool fused_supported(dispatch::OpId op);
void launch_fused(const FusedArgs& a, cudaStream_t s);

/// Throws ember::Error naming `what` when the last launch failed.
void check_launch(const char* what);

}  // namespace ember::gpu
