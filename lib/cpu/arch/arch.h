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
/// Deviations d = x - c of a run about a center c near its mean: c as the
/// kernel used it (rounded to the element type), sum(d) and sum(d*d).
struct Deviations {
  double center = 0, sum = 0, sum_sq = 0;
};
using SqDevFn = Deviations (*)(const char* in, int64_t n, int64_t stride, double center);
/// Reduces `rows` contiguous rows of `cols` elements (row i at in + i*row_stride
/// elements) into out[cols], which holds the accumulator dtype and is overwritten.
using RowsFn = void (*)(const char* in, int64_t rows, int64_t row_stride, int64_t cols, char* out);
/// softmax (log = false) or log_softmax of `rows` contiguous rows of length n.
using SoftmaxFn = void (*)(const char* in, char* out, int64_t rows, int64_t n, bool log);
/// C[m,n] (+)= A[m,k] B[k,n] for contiguous row-major blocks with leading dims.
using GemmFn = void (*)(int64_t m, int64_t n, int64_t k, const char* a, int64_t lda,
                        const char* b, int64_t ldb, char* c, int64_t ldc);

/// One instruction of a fused elementwise program, in accumulator form: the
/// fused loop keeps the running value of a block of elements in registers
/// (the accumulator) and each instruction updates it in place. Operands are
/// numbered inputs first (0..n_in-1), then spill slots (n_in..).
/// Note [Accumulator-form fused programs]: capture's fusion builds trees in
/// which each intermediate has one reader, so most instructions take the
/// previous result from the accumulator and at most one operand from memory;
/// only a binary op whose both sides are intermediates spills one side.
struct FusedInstr {
  enum Form : uint8_t {
    kLoad,     // acc = operand
    kSpill,    // operand (a slot) = acc
    kUnary,    // acc = op(acc)
    kAccLeft,  // acc = op(acc, operand)
    kAccRight, // acc = op(operand, acc)
    kSelf,     // acc = op(acc, acc)
  };
  uint16_t code = 0;    // fused_code(op, form), or kLoad / kSpill
  int8_t operand = -1;  // -1 when the form takes none
};
inline constexpr int kMaxFusedSlots = 32;  // inputs + spill slots
/// The switch label of (op, form) in the fused loop: loads and spills first,
/// then four forms per op.
constexpr uint16_t fused_code(dispatch::OpId op, FusedInstr::Form form) {
  return static_cast<uint16_t>(2 + dispatch::op_index(op) * 4 + (form - FusedInstr::kUnary));
}
/// Runs a fused program over n elements: operand i < n_in is input i (stride 1,
/// or 0 for one broadcast element); the accumulator after the last instruction
/// goes to out.
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
/// The tables compiled into this build that this CPU can run, baseline first.
const ArchKernels* const* runnable_archs(int* count);

}  // namespace ember::cpu
