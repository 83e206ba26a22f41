// matmul with NumPy's rules: 1-d operands are promoted and the added dim
// removed, batch dims broadcast. float32/float64 go to OpenBLAS (cblas), with
// transposed operands passed as flags instead of copied; other dtypes use a loop.
// addmm hands its input to BLAS as the accumulator C (beta * C + alpha * A B),
// so a bias costs no pass of its own.
#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "cpu/arch/arch.h"
#include "cpu/kernels.h"
#include "cpu/loops.h"
#include "ops/infer.h"

namespace ember::cpu {

using dispatch::OpId;

namespace {

// A matrix operand: how to hand it to BLAS without copying, if possible.
struct Mat {
  Tensor t;          // batch dims + [rows, cols]
  bool trans = false;
  int64_t ld = 0;
};

// Makes the last two dims BLAS-compatible: row-major (unit col stride) or
// column-major (unit row stride); copies otherwise.
Mat prepare(Tensor t, DType dt) {
  if (t.dtype() != dt) t = cast_to(t, dt);
  const int64_t r = t.dim();
  auto ok = [&](const Tensor& u, Mat* m) {
    const int64_t rows = u.shape()[r - 2], cols = u.shape()[r - 1];
    const int64_t rs = u.strides()[r - 2], cs = u.strides()[r - 1];
    if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(1, cols)) {
      *m = {u, false, rs};
      return true;
    }
    if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(1, rows)) {
      *m = {u, true, cs};
      return true;
    }
    return false;
  };
  Mat m;
  if (ok(t, &m)) return m;
  Tensor c = cast_to(t, dt);
  ok(c, &m);
  return m;
}

// A product with one row or one column (vector @ matrix, matrix @ vector):
// BLAS's matrix-vector kernel, which sgemm/dgemm would reach only after
// packing panels meant for many rows and columns.
void gemv(DType dt, const Mat& ma, const Mat& mb, int64_t M, int64_t N, int64_t K, const char* A, const char* B,
          char* C, double alpha, double beta) {
  CBLAS_TRANSPOSE t;
  int64_t rows, cols, ld, inc;
  const char *mat, *vec;
  if (M == 1) {  // c[1, N] = a[1, K] b[K, N], i.e. c = b^T a
    mat = B;
    vec = A;
    inc = ma.trans ? ma.ld : 1;  // a's K elements (Mat::ld is the step of a transposed row)
    ld = mb.ld;
    t = mb.trans ? CblasNoTrans : CblasTrans;
    rows = mb.trans ? N : K;
    cols = mb.trans ? K : N;
  } else {  // c[M, 1] = a[M, K] b[K, 1]
    mat = A;
    vec = B;
    inc = mb.trans ? 1 : mb.ld;
    ld = ma.ld;
    t = ma.trans ? CblasTrans : CblasNoTrans;
    rows = ma.trans ? K : M;
    cols = ma.trans ? M : K;
  }
  const int r = static_cast<int>(rows), c = static_cast<int>(cols), l = static_cast<int>(std::max<int64_t>(ld, 1)),
            i = static_cast<int>(std::max<int64_t>(inc, 1));
  if (dt == DType::float32)
    cblas_sgemv(CblasRowMajor, t, r, c, static_cast<float>(alpha), reinterpret_cast<const float*>(mat), l,
                reinterpret_cast<const float*>(vec), i, static_cast<float>(beta), reinterpret_cast<float*>(C), 1);
  else
    cblas_dgemv(CblasRowMajor, t, r, c, alpha, reinterpret_cast<const double*>(mat), l,
                reinterpret_cast<const double*>(vec), i, beta, reinterpret_cast<double*>(C), 1);
}

bool is_blas(DType dt) { return dt == DType::float32 || dt == DType::float64; }

// out = alpha * (a @ b) + beta * out for float32/float64 (BLAS's own
// accumulation: beta = 0 ignores out, NaN included); out = a @ b otherwise.
void product(Tensor a, Tensor b, Tensor& out, double alpha, double beta) {
  const DType dt = out.dtype();
  const Shape batch = ops::matmul_operands(a, b, out.shape());
  const int64_t M = a.shape()[a.dim() - 2], K = a.shape()[a.dim() - 1], N = b.shape()[b.dim() - 1];
  const int64_t nb = shape_numel(batch);
  if (out.numel() == 0) return;
  const int64_t es = static_cast<int64_t>(itemsize(dt));
  char* c = static_cast<char*>(out.impl().data());
  if (K == 0) {
    if (beta == 0) {
      std::memset(c, 0, static_cast<std::size_t>(out.numel() * es));
    } else if (beta != 1) {  // C = beta * C through the mul loop, beta in C's dtype as BLAS has it
      float f = static_cast<float>(beta);
      char* ptrs[3] = {c, c, dt == DType::float32 ? reinterpret_cast<char*>(&f) : reinterpret_cast<char*>(&beta)};
      const int64_t st[3] = {1, 1, 0};
      arch().elementwise[dispatch::op_index(OpId::mul)][static_cast<int>(dt)](ptrs, st, out.numel(), nullptr);
    }
    return;
  }
  Mat ma = prepare(a, dt), mb = prepare(b, dt);
  // Broadcast batch strides of each operand (0 where it is broadcast).
  auto batch_strides = [&](const Tensor& t) {
    Strides s(batch.size(), 0);
    const int64_t tb = t.dim() - 2;
    const int64_t lead = static_cast<int64_t>(batch.size()) - tb;
    for (int64_t i = 0; i < tb; ++i)
      if (t.shape()[i] != 1) s[lead + i] = t.strides()[i];
    return s;
  };
  const Strides sa = batch_strides(ma.t), sb = batch_strides(mb.t);
  const char* pa = static_cast<const char*>(ma.t.impl().data());
  const char* pb = static_cast<const char*>(mb.t.impl().data());
  const bool blas = is_blas(dt);
  if (!blas) {  // the loop wants row-major operands
    if (ma.trans) {
      ma = {cast_to(ma.t, dt), false, K};
      pa = static_cast<const char*>(ma.t.impl().data());
    }
    if (mb.trans) {
      mb = {cast_to(mb.t, dt), false, N};
      pb = static_cast<const char*>(mb.t.impl().data());
    }
  }
  const Strides sa2 = batch_strides(ma.t), sb2 = batch_strides(mb.t);
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t oa = 0, ob = 0, rem = bi;
    for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      oa += idx * (blas ? sa : sa2)[d];
      ob += idx * (blas ? sb : sb2)[d];
    }
    const char* A = pa + oa * es;
    const char* B = pb + ob * es;
    char* C = c + bi * M * N * es;
    if (blas && (M == 1 || N == 1)) {
      gemv(dt, ma, mb, M, N, K, A, B, C, alpha, beta);
    } else if (dt == DType::float32) {
      cblas_sgemm(CblasRowMajor, ma.trans ? CblasTrans : CblasNoTrans,
                  mb.trans ? CblasTrans : CblasNoTrans, static_cast<int>(M), static_cast<int>(N),
                  static_cast<int>(K), static_cast<float>(alpha), reinterpret_cast<const float*>(A),
                  static_cast<int>(ma.ld), reinterpret_cast<const float*>(B),
                  static_cast<int>(mb.ld), static_cast<float>(beta), reinterpret_cast<float*>(C), static_cast<int>(N));
    } else if (dt == DType::float64) {
      cblas_dgemm(CblasRowMajor, ma.trans ? CblasTrans : CblasNoTrans,
                  mb.trans ? CblasTrans : CblasNoTrans, static_cast<int>(M), static_cast<int>(N),
                  static_cast<int>(K), alpha, reinterpret_cast<const double*>(A),
                  static_cast<int>(ma.ld), reinterpret_cast<const double*>(B),
                  static_cast<int>(mb.ld), beta, reinterpret_cast<double*>(C), static_cast<int>(N));
    } else {
      arch().gemm[static_cast<int>(dt)](M, N, K, A, ma.ld, B, mb.ld, C, N);
    }
  }
}

}  // namespace

void matmul_kernel(OpId, dispatch::Inputs in, const dispatch::Attrs&, Tensor& out) {
  product(in[0], in[1], out, 1.0, 0.0);
}

void addmm_kernel(OpId, dispatch::Inputs in, const dispatch::Attrs& attrs, Tensor& out) {
  const double beta = attrs.f0, alpha = attrs.f1;
  if (out.numel() == 0) return;
  if (beta != 0) copy_into(out, in[0]);  // the input, broadcast and cast, becomes C
  if (is_blas(out.dtype())) {
    product(in[1], in[2], out, alpha, beta);
    return;
  }
  // The integer loop computes a plain product: combine after, with the
  // wrap-around arithmetic of the dtype.
  Tensor p = ember::detail::make_tensor(out.shape(), out.dtype(), out.device());
  product(in[1], in[2], p, 1.0, 0.0);
  dispatch::visit_dtype<dispatch::kIntegral>(out.dtype(), [&]<class T>() {
    using U = std::make_unsigned_t<T>;
    const U b = static_cast<U>(static_cast<int64_t>(beta)), a = static_cast<U>(static_cast<int64_t>(alpha));
    T* o = out.data<T>();
    const T* q = p.data<T>();
    const int64_t n = out.numel();
    if (beta == 0)
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(static_cast<U>(a * static_cast<U>(q[i])));
    else
      for (int64_t i = 0; i < n; ++i)
        o[i] = static_cast<T>(static_cast<U>(b * static_cast<U>(o[i]) + a * static_cast<U>(q[i])));
  });
}

}  // namespace ember::cpu
