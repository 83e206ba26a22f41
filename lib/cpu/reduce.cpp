// Reductions over any set of axes (sum, mean, prod, max, min, argmax, argmin,
// var, std, all, any).
//
// The reduced dims are coalesced into one strided run when their strides allow
// (else the input is copied so that they do); each output element then reduces
// one run. When the reduced run is "outer" (the kept dims form one contiguous
// row), whole rows are accumulated with SIMD instead. A full reduction of a
// large tensor is split across threads and the partial results combined.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/arch/arch.h"
#include "cpu/kernels.h"
#include "cpu/loops.h"
#include "cpu/parallel.h"
#include "dispatch/dtype_visit.h"
#include "ops/functors.h"
#include "ops/infer.h"

namespace ember::cpu {

using dispatch::OpId;

namespace {

ReduceKind kind_of(OpId op) {
  switch (op) {
    case OpId::sum:
    case OpId::mean:
    case OpId::var:
    case OpId::std: return kSum;
    case OpId::prod: return kProd;
    case OpId::max: return kMax;
    case OpId::min: return kMin;
    case OpId::argmax: return kArgMax;
    case OpId::argmin: return kArgMin;
    case OpId::all: return kAll;
    default: return kAny;
  }
}

void store(char* p, DType dt, double f, int64_t i, bool use_f) {
  dispatch::visit_dtype<dispatch::kCpuCompute>(dt, [&]<class T>() {
    *reinterpret_cast<T*>(p) = use_f ? static_cast<T>(f) : static_cast<T>(i);
  });
}

Acc combine(ReduceKind k, bool fl, const Acc& a, const Acc& b, int64_t b_offset) {
  Acc r = a;
  auto nan = [&](const Acc& x) { return fl && std::isnan(x.f); };
  switch (k) {
    case kSum: r.f = a.f + b.f; r.i = static_cast<int64_t>(static_cast<uint64_t>(a.i) + static_cast<uint64_t>(b.i)); break;
    case kProd: r.f = a.f * b.f; r.i = static_cast<int64_t>(static_cast<uint64_t>(a.i) * static_cast<uint64_t>(b.i)); break;
    case kMax:
    case kMin: {
      if (nan(a)) break;
      if (nan(b)) return b;
      const bool bigger = fl ? b.f > a.f : b.i > a.i;
      const bool smaller = fl ? b.f < a.f : b.i < a.i;
      if (k == kMax ? bigger : smaller) r = b;
      break;
    }
    case kArgMax:
    case kArgMin: {
      if (nan(a)) break;
      const bool bigger = fl ? b.f > a.f : b.i > a.i;
      const bool smaller = fl ? b.f < a.f : b.i < a.i;
      if (nan(b) || (k == kArgMax ? bigger : smaller)) {
        r = b;
        r.idx = b.idx + b_offset;
      }
      break;
    }
    case kAll: r.i = a.i && b.i; break;
    default: r.i = a.i || b.i; break;
  }
  return r;
}

// Reduces one strided run, splitting it across threads when it is long.
Acc reduce_run(ReduceKind k, DType dt, const char* p, int64_t n, int64_t s, bool allow_parallel) {
  PartialFn fn = arch().partial[k][static_cast<int>(dt)];
  const int64_t es = static_cast<int64_t>(itemsize(dt));
  if (!allow_parallel || n < 2 * kParallelMinElements || num_threads() <= 1) return fn(p, n, s);
  const int64_t nt = num_threads();
  const int64_t chunks = nt * 4;
  const int64_t per = (n + chunks - 1) / chunks;
  std::vector<Acc> parts(static_cast<std::size_t>(chunks));
  parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const int64_t lo = c * per, hi = std::min(n, lo + per);
      if (lo < hi) parts[c] = fn(p + lo * s * es, hi - lo, s);
    }
  });
  const bool fl = is_floating(dt);
  Acc r = parts[0];
  for (int64_t c = 1; c < chunks && c * per < n; ++c) r = combine(k, fl, r, parts[c], c * per);
  return r;
}

// Outer reductions split their rows into at most kRowSplitParts blocks while
// a partial row stays this small (Note [Row split]).
constexpr int64_t kRowSplitBytes = int64_t(1) << 16;
constexpr int64_t kRowSplitParts = 8;

// out[j] = out[j] (op) part[j]: partial rows of kSum, kProd, kMax, kMin.
void combine_rows(ReduceKind k, DType dt, char* out, const char* part, int64_t cols) {
  dispatch::visit_dtype<dispatch::kCpuCompute>(dt, [&]<class T>() {
    T* o = reinterpret_cast<T*>(out);
    const T* p = reinterpret_cast<const T*>(part);
    for (int64_t j = 0; j < cols; ++j) {
      switch (k) {
        case kSum: o[j] = ops::Add::apply(o[j], p[j]); break;
        case kProd: o[j] = ops::Mul::apply(o[j], p[j]); break;
        case kMax: o[j] = ops::Maximum::apply(o[j], p[j]); break;
        default: o[j] = ops::Minimum::apply(o[j], p[j]); break;
      }
    }
  });
}

// Count, mean and sum of squared deviations (M2) of a run of values.
struct Moments {
  double n = 0, mean = 0, m2 = 0;
};

// Chan, Golub and LeVeque's pairwise update: the moments of two parts combined.
Moments merge(const Moments& a, const Moments& b) {
  if (a.n == 0) return b;
  const double n = a.n + b.n, d = b.mean - a.mean;
  return {n, a.mean + d * (b.n / n), a.m2 + b.m2 + d * d * (a.n * b.n / n)};
}

// var/std of one strided run. Chunks small enough to stay in L1 take two
// passes each (their sum, then squares about their own mean), and the chunks
// are merged: memory is read once, and each deviation is taken about a nearby
// mean, so there is no cancellation of a large mean. Long runs split the
// chunks across threads.
Moments moments_run(DType dt, const char* p, int64_t n, int64_t s, bool allow_parallel) {
  constexpr int64_t kChunk = 4096;
  const int64_t es = static_cast<int64_t>(itemsize(dt));
  const bool fl = is_floating(dt);
  PartialFn sum = arch().partial[kSum][static_cast<int>(dt)];
  SqDevFn sqdev = arch().sqdev[static_cast<int>(dt)];
  // Note [Moments of a chunk]: the deviations are taken about c, the chunk's
  // mean as first computed (in T for floats, then rounded to T). With
  // d = x - c, the chunk's mean is c + sum(d)/m and its M2 is
  // sum(d^2) - sum(d)^2/m: exact in c, so neither the rounding of c nor the
  // error of the first sum inflates the variance.
  auto chunk = [&](int64_t lo, int64_t hi) {
    const char* q = p + lo * s * es;
    const double m = static_cast<double>(hi - lo);
    const Acc t = sum(q, hi - lo, s);
    const Deviations d = sqdev(q, hi - lo, s, (fl ? t.f : static_cast<double>(t.i)) / m);
    const double m2 = d.sum_sq - d.sum * d.sum / m;  // may round below 0 for equal values; NaN stays NaN
    return Moments{m, d.center + d.sum / m, m2 < 0.0 ? 0.0 : m2};
  };
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (chunks == 1) return chunk(0, n);
  std::vector<Moments> parts(static_cast<std::size_t>(chunks));
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) parts[c] = chunk(c * kChunk, std::min(n, (c + 1) * kChunk));
  };
  if (allow_parallel && n >= 2 * kParallelMinElements && num_threads() > 1)
    parallel_for(0, chunks, 1, body);
  else
    body(0, chunks);
  Moments r = parts[0];
  for (int64_t c = 1; c < chunks; ++c) r = merge(r, parts[c]);
  return r;
}

}  // namespace

void reduce_kernel(OpId op, dispatch::Inputs in, const dispatch::Attrs& a, Tensor& out) {
  Tensor x = in[0];
  const char* name = dispatch::op_name(op);
  const DType dt = x.dtype();
  const bool fl = is_floating(dt);
  const ReduceKind k = kind_of(op);
  const DType odt = out.dtype();
  const int64_t osz = static_cast<int64_t>(itemsize(odt));
  char* obase = static_cast<char*>(out.impl().data());
  const int64_t M = out.numel();
  if (M == 0) return;
  const Axes axes = ops::normalize_axes(name, a.ints, x.dim());
  auto reduced = [&](int64_t d) { return std::find(axes.begin(), axes.end(), d) != axes.end(); };

  // Sizes and strides of the kept and reduced dims (size-1 dims dropped).
  auto split = [&](const Tensor& t, Shape& ks, Strides& kst, Shape& rs, Strides& rst) {
    for (int64_t d = 0; d < t.dim(); ++d) {
      if (t.shape()[d] == 1) continue;
      (reduced(d) ? rs : ks).push_back(t.shape()[d]);
      (reduced(d) ? rst : kst).push_back(t.strides()[d]);
    }
  };
  Shape ks, rs;
  Strides kst, rst;
  split(x, ks, kst, rs, rst);
  int64_t n = shape_numel(rs);

  if (n == 0) {  // empty reduction: the identity (or NaN for mean/var/std)
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int64_t m = 0; m < M; ++m) {
      char* o = obase + m * osz;
      switch (op) {
        case OpId::sum: store(o, odt, 0, 0, false); break;
        case OpId::prod: store(o, odt, 1, 1, false); break;
        case OpId::all: store(o, odt, 1, 1, false); break;
        case OpId::any: store(o, odt, 0, 0, false); break;
        default: store(o, odt, nan, 0, true); break;
      }
    }
    return;
  }

  // Coalesce the reduced dims into one run; copy when they do not line up.
  bool run_ok = true;
  for (std::size_t i = 0; i + 1 < rs.size(); ++i) run_ok = run_ok && rst[i] == rst[i + 1] * rs[i + 1];
  if (!run_ok) {
    Axes perm;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (!reduced(d)) perm.push_back(d);
    for (int64_t d : axes) perm.push_back(d);
    Shape ps;
    Strides pst;
    for (int64_t d : perm) {
      ps.push_back(x.shape()[d]);
      pst.push_back(x.strides()[d]);
    }
    Tensor permuted = ember::detail::make_view(x, ps, pst, x.storage_offset());
    x = cast_to(permuted, dt);
    ks.clear(); kst.clear(); rs.clear(); rst.clear();
    // After the copy the reduced dims are the trailing ones: one contiguous run.
    const int64_t nk = x.dim() - static_cast<int64_t>(axes.size());
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (x.shape()[d] == 1) continue;
      (d >= nk ? rs : ks).push_back(x.shape()[d]);
      (d >= nk ? rst : kst).push_back(x.strides()[d]);
    }
  }
  const int64_t rstride = rst.empty() ? 1 : rst.back();
  const char* xbase = static_cast<const char*>(x.impl().data());
  const int64_t es = static_cast<int64_t>(itemsize(dt));

  // Row mode: kept dims form one contiguous row, reduced run is outer.
  bool kept_contig = !ks.empty();
  for (std::size_t i = 0; kept_contig && i < ks.size(); ++i)
    kept_contig = kst[i] == shape_numel(Shape(ks.begin() + i + 1, ks.end()));
  const bool rows_op = (op == OpId::sum || op == OpId::prod || op == OpId::max ||
                        op == OpId::min || (op == OpId::mean && fl));
  if (kept_contig && rows_op && n > 1 && (op != OpId::sum || odt == (fl ? dt : DType::int64)) &&
      (op != OpId::prod || odt == (fl ? dt : DType::int64))) {
    RowsFn rf = arch().rows[k][static_cast<int>(dt)];
    const int64_t cols = M;
    const bool big = cols * n >= kParallelMinElements;
    if (big && n >= 256 && cols * osz <= kRowSplitBytes) {
      // Note [Row split]: blocks of whole rows (each one long sequential read)
      // are reduced into partial rows, in parallel, then combined in order.
      // Splitting the columns instead gives each thread short row segments,
      // which hardware prefetchers follow badly. The blocks depend on the
      // shape only, so every thread count gives the same bits.
      const int64_t parts = std::min<int64_t>(kRowSplitParts, n / 128);
      const int64_t per = (n + parts - 1) / parts;
      Tensor partial = ember::detail::make_tensor({parts - 1, cols}, odt, Device::cpu());
      char* pbase = static_cast<char*>(partial.impl().data());
      parallel_for(0, parts, 1, [&](int64_t b, int64_t e) {
        for (int64_t q = b; q < e; ++q) {
          const int64_t r0 = q * per, r1 = std::min(n, r0 + per);
          rf(xbase + r0 * rstride * es, r1 - r0, rstride, cols, q == 0 ? obase : pbase + (q - 1) * cols * osz);
        }
      });
      for (int64_t q = 1; q < parts; ++q) combine_rows(k, odt, obase, pbase + (q - 1) * cols * osz, cols);
    } else {
      auto run_cols = [&](int64_t c0, int64_t c1) {
        rf(xbase + c0 * es, n, rstride, c1 - c0, obase + c0 * osz);
      };
      if (big && cols >= 64)
        parallel_for(0, cols, std::max<int64_t>(64, kParallelMinElements / n), run_cols);
      else
        run_cols(0, cols);
    }
    if (op == OpId::mean) {
      dispatch::visit_dtype<dispatch::kFloating & dispatch::kCpuCompute>(odt, [&]<class T>() {
        T* o = reinterpret_cast<T*>(obase);
        const T inv = T(1) / static_cast<T>(n);
        for (int64_t c = 0; c < cols; ++c) o[c] *= inv;
      });
    }
    return;
  }

  // One run per output element.
  const double corr = a.f0;
  auto finish = [&](int64_t m, const char* p) {
    char* o = obase + m * osz;
    if (op == OpId::var || op == OpId::std) {
      const double ss = moments_run(dt, p, n, rstride, M == 1).m2;
      const double denom = static_cast<double>(n) - corr;
      double v = denom > 0 ? ss / denom : std::numeric_limits<double>::quiet_NaN();
      if (op == OpId::std) v = std::sqrt(v);
      store(o, odt, v, 0, true);
      return;
    }
    const Acc r = reduce_run(k, dt, p, n, rstride, M == 1);
    switch (op) {
      case OpId::mean:
        store(o, odt, (fl ? r.f : static_cast<double>(r.i)) / static_cast<double>(n), 0, true);
        break;
      case OpId::argmax:
      case OpId::argmin: store(o, odt, 0, r.idx, false); break;
      case OpId::all:
      case OpId::any: store(o, odt, 0, r.i, false); break;
      default: store(o, odt, r.f, r.i, fl); break;
    }
  };
  auto offset_of = [&](int64_t m) {
    if (ks.size() == 1) return m * kst[0];  // one kept dim (rows of a matrix): no division
    int64_t off = 0;
    for (int64_t d = static_cast<int64_t>(ks.size()) - 1; d >= 0; --d) {
      off += (m % ks[d]) * kst[d];
      m /= ks[d];
    }
    return off;
  };
  auto run = [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) finish(m, xbase + offset_of(m) * es);
  };
  if (M > 1 && M * n >= kParallelMinElements)
    parallel_for(0, M, std::max<int64_t>(1, kParallelMinElements / n), run);
  else
    run(0, M);
}

}  // namespace ember::cpu
