#pragma once
// The seam between arch-independent CPU code and the SIMD inner loops.
//
// Note [Runtime SIMD dispatch]: lib/cpu/arch/kernels.cpp is compiled once per
// instruction set (baseline x86-64 SSE2, AVX2+FMA, AVX-512), each copy in its
// own namespace and filling its own ArchKernels table. At first use we ask
// xsimd which instruction sets this CPU has and take the best table, so speed
// does not depend on -march=native and one binary runs everywhere.
#include <cstdint>

#include <ember/dtype.h>

#include "dispatch/op_id.h"

namespace ember::cpu {

/// An elementwise inner loop over `n` elements: ptrs[0] is the output,
/// ptrs[1..] the inputs; strides are in elements (0 = broadcast).
using Loop = void (*)(char* const* ptrs, const int64_t* strides, int64_t n, const void* extra);

/// Partial result of a reduction over a strided run of elements.
struct Acc {
  double f = 0.0;     // floating sums/products/extrema
  int64_t i = 0;      // integral sums/products/extrema, all/any
  int64_t idx = -1;   // argmax/argmin: position within the run
};

enum ReduceKind : int { kSum, kProd, kMax, kMin, kArgMax, kArgMin, kAll, kAny, kNumReduceKinds };

/// Reduces `n` elements at `stride` (elements) starting at `in`.
using PartialFn = Acc (*)(const char* in, int64_t n, int64_t stride);
/// Sum of (x - mean)^2 over a strided run, in double.
using SqDevFn = double (*)(const char* in, int64_t n, int64_t stride, double mean);
/// Reduces `rows` contiguous rows of `cols` elements (row i at in + i*row_stride
/// elements) into out[cols], which holds the accumulator dtype and is overwritten.
using RowsFn = void (*)(const char* in, int64_t rows, int64_t row_stride, int64_t cols, char* out);
/// softmax (log = false) or log_softmax of one contiguous row of n elements.
using SoftmaxFn = void (*)(const char* in, char* out, int64_t n, bool log);
/// C[m,n] (+)= A[m,k] B[k,n] for contiguous row-major blocks with leading dims.
using GemmFn = void (*)(int64_t m, int64_t n, int64_t k, const char* a, int64_t lda,
                        const char* b, int64_t ldb, char* c, int64_t ldc);

/// One instruction of a fused elementwise program: slots[dst] = op(slots[a], slots[b]).
struct FusedInstr {
  dispatch::OpId op;
  int8_t a = -1, b = -1, dst = -1;
};
inline constexpr int kMaxFusedSlots = 32;
/// Runs a fused program over n elements: slots 0..n_in-1 are the inputs (stride 1
/// or 0 for one broadcast element); the last instruction's result goes to out.
using FusedFn = void (*)(const FusedInstr* code, int n_instr, int n_in, const char* const* in,
                         const int64_t* in_stride, char* out, int64_t n);

struct ArchKernels {
  const char* name = nullptr;
  Loop elementwise[dispatch::kNumOps][kNumDTypes] = {};  // by compute dtype
  Loop cast[kNumDTypes][kNumDTypes] = {};                // [from][to]
  PartialFn partial[kNumReduceKinds][kNumDTypes] = {};
  SqDevFn sqdev[kNumDTypes] = {};
  RowsFn rows[kNumReduceKinds][kNumDTypes] = {};         // kSum, kProd, kMax, kMin only
  SoftmaxFn softmax[kNumDTypes] = {};                    // float32, float64
  GemmFn gemm[kNumDTypes] = {};                          // the non-BLAS dtypes
  FusedFn fused[kNumDTypes] = {};                        // float32, float64
  bool fusable[dispatch::kNumOps] = {};                  // ops the fused loop can run
};

/// The best table for this CPU (chosen once); EMBER_CPU_ARCH=sse2|avx2|avx512 overrides.
const ArchKernels& arch();
/// Tables compiled into this build, baseline first.
const ArchKernels* const* compiled_archs(int* count);

}  // namespace ember::cpu
