// matmul on CUDA through cuBLAS, with NumPy's rules (1-d operands promoted,
// batch dims broadcast). Row-major C = A B is computed as column-major
// C^T = B^T A^T, so operands are passed without copies; a transposed view
// becomes a transpose flag. Batches go to one strided-batched call when each
// operand's batch dims collapse to one stride (else the operand is expanded
// and copied first). float16/bfloat16 accumulate in float32; float32 uses
// TF32 tensor cores only after ember::cuda::set_allow_tf32(true). addmm
// copies its input (broadcast) into C and lets cuBLAS accumulate onto it.
#include <algorithm>
#include <limits>

#include <cublas_v2.h>

#include <fmt/format.h>

#include <ember/cuda.h>
#include <ember/error.h>

#include "api.h"
#include "dispatch/schema.h"
#include "ops/infer.h"
#include "runtime/runtime.h"

namespace ember::gpu {

Tensor contiguous(const Tensor& t);              // ops.cpp
Tensor cast(const Tensor& t, DType dt);          // ops.cpp
void copy_into(Tensor& dst, const Tensor& src);  // ops.cpp

namespace {

struct Mat {
  Tensor t;
  bool trans = false;  // column-major in memory (unit row stride)
  int64_t ld = 0;
};

Mat prepare(Tensor t) {
  const int64_t r = t.dim();
  const int64_t rows = t.shape()[r - 2], cols = t.shape()[r - 1];
  const int64_t rs = t.strides()[r - 2], cs = t.strides()[r - 1];
  if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(1, cols)) return {t, false, rs};
  if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(1, rows)) return {t, true, cs};
  Tensor c = contiguous(t);
  return {c, false, std::max<int64_t>(1, cols)};
}

// One stride per operand over the flattened batch, or -1.
int64_t uniform_batch_stride(const Tensor& t, const Shape& batch) {
  const int64_t tb = t.dim() - 2;
  const int64_t lead = static_cast<int64_t>(batch.size()) - tb;
  Strides s(batch.size(), 0);
  for (int64_t i = 0; i < tb; ++i)
    if (t.shape()[i] != 1) s[lead + i] = t.strides()[i];
  bool all_zero = true;
  for (int64_t v : s) all_zero = all_zero && v == 0;
  if (all_zero) return 0;
  int64_t unit = -1, span = 1;
  for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
    if (batch[d] == 1) continue;
    if (unit < 0) unit = s[d];
    if (s[d] != unit * span) return -1;
    span *= batch[d];
  }
  return unit < 0 ? 0 : unit;
}

cudaDataType_t cuda_type(DType dt) {
  switch (dt) {
    case DType::float16: return CUDA_R_16F;
    case DType::bfloat16: return CUDA_R_16BF;
    case DType::float32: return CUDA_R_32F;
    default: return CUDA_R_64F;
  }
}

// C = alpha * (a @ b) + beta * C, in out's dtype (beta = 0 ignores C).
void product(const char* op, const Tensor& a_in, const Tensor& b_in, Tensor& out, double alpha, double beta) {
  const DType dt = out.dtype();
  if (!is_floating(dt))
    throw DTypeError(fmt::format("{}: {} is not supported on {} (cuBLAS multiplies floating types); cast to "
                                 "float32 or float64 first",
                                 op, dtype_name(dt), out.device().str()));
  Tensor a = a_in.dtype() == dt ? a_in : cast(a_in, dt);
  Tensor b = b_in.dtype() == dt ? b_in : cast(b_in, dt);
  const Shape batch = ops::matmul_operands(a, b, out.shape());
  const int64_t M = a.shape()[a.dim() - 2], K = a.shape()[a.dim() - 1], N = b.shape()[b.dim() - 1];
  const int64_t nb = shape_numel(batch);
  if (out.numel() == 0) return;
  const Device dev = out.device();
  cudaStream_t s = enter(dev);
  if (K == 0) {
    if (beta == 0) {
      EMBER_CUDA_CHECK(cudaMemsetAsync(out.impl().data(), 0, static_cast<std::size_t>(out.numel()) * itemsize(dt), s));
    } else if (beta != 1) {  // cublasScalEx counts in int: scale in chunks
      const bool f64 = dt == DType::float64;
      const double bd = beta;
      const float bf = static_cast<float>(beta);
      const void* pbeta = f64 ? static_cast<const void*>(&bd) : static_cast<const void*>(&bf);
      const cudaDataType_t scalar_t = f64 ? CUDA_R_64F : CUDA_R_32F;
      auto* c = static_cast<char*>(out.impl().data());
      constexpr int64_t kChunk = std::numeric_limits<int>::max();
      for (int64_t done = 0; done < out.numel(); done += kChunk) {
        const auto n = static_cast<int>(std::min(kChunk, out.numel() - done));
        EMBER_CUBLAS_CHECK(cublasScalEx(cublas(dev.index), n, pbeta, scalar_t, c + done * itemsize(dt), cuda_type(dt), 1,
                                        scalar_t));
      }
    }
    return;
  }
  Mat ma = prepare(a), mb = prepare(b);
  int64_t sa = uniform_batch_stride(ma.t, batch), sb = uniform_batch_stride(mb.t, batch);
  auto materialize = [&](Mat& m, int64_t rows, int64_t cols) {
    Shape full = batch;
    full.push_back(rows);
    full.push_back(cols);
    m = {contiguous(m.t.expand(full)), false, std::max<int64_t>(1, cols)};
    return rows * cols;
  };
  if (sa < 0) sa = materialize(ma, M, K);
  if (sb < 0) sb = materialize(mb, K, N);
  cublasHandle_t h = cublas(dev.index);
  const cublasOperation_t op_a = ma.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = mb.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const void* pa = ma.t.impl().data();
  const void* pb = mb.t.impl().data();
  void* pc = out.impl().data();
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const int lda = static_cast<int>(mb.ld), ldb = static_cast<int>(ma.ld), ldc = static_cast<int>(N);
  const auto batches = static_cast<int>(nb);
  if (dt == DType::float64) {
    EMBER_CUBLAS_CHECK(cublasDgemmStridedBatched(h, op_b, op_a, m, n, k, &alpha, static_cast<const double*>(pb), lda, sb,
                                                 static_cast<const double*>(pa), ldb, sa, &beta, static_cast<double*>(pc),
                                                 ldc, M * N, batches));
    return;
  }
  const float af = static_cast<float>(alpha), bf = static_cast<float>(beta);
  const cublasComputeType_t compute = dt == DType::float32 && cuda::allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                                 : CUBLAS_COMPUTE_32F;
  const cudaDataType_t t = cuda_type(dt);
  EMBER_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op_b, op_a, m, n, k, &af, pb, t, lda, sb, pa, t, ldb, sa, &bf, pc,
                                                t, ldc, M * N, batches, compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void matmul_kernel(dispatch::OpId, dispatch::Inputs in, const dispatch::Attrs&, Tensor& out) {
  product("matmul", in[0], in[1], out, 1.0, 0.0);
}

void addmm_kernel(dispatch::OpId, dispatch::Inputs in, const dispatch::Attrs& attrs, Tensor& out) {
  if (out.numel() != 0 && attrs.f0 != 0) copy_into(out, in[0]);
  product("addmm", in[1], in[2], out, attrs.f1, attrs.f0);
}

}  // namespace ember::gpu
