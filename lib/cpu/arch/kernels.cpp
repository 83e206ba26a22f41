// SIMD inner loops, compiled once per instruction set; see Note [Runtime SIMD
// dispatch] in arch.h. EMBER_ARCH names this copy's namespace (sse2, avx2, avx512);
// xsimd::default_arch is the best set the compile flags of this copy allow.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "cpu/arch/arch.h"
#include "dispatch/dtype_visit.h"
#include "ops/functors.h"

#ifndef EMBER_ARCH
#error "EMBER_ARCH must name the instruction set of this copy"
#endif

namespace ember::cpu::EMBER_ARCH {
namespace {  // Note [Functors have internal linkage]

using Arch = xsimd::default_arch;
using dispatch::OpId;

template <class T>
constexpr bool kFloat = std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
using B = xsimd::batch<T, Arch>;

template <class T>
constexpr int64_t kLanes = static_cast<int64_t>(B<T>::size);

// Runs `body(batch...)` over full batches and the tail through a padded buffer,
// so every element goes through the same SIMD code whatever its position.
template <class T, class O, int N, class F>
inline void simd_apply(O* out, const T* const* in, const bool* bcast, int64_t n, F&& f) {
  constexpr int64_t L = kLanes<T>;
  int64_t i = 0;
  // One loop per broadcast pattern: no per-batch test (the flags are read
  // through a pointer that the stores could alias, so the compiler would not
  // hoist the test itself).
  auto full = [&]<bool B0, bool B1>() {
    const B<T> s0 = B0 ? B<T>(in[0][0]) : B<T>(T(0));
    const B<T> s1 = (N == 2 && B1) ? B<T>(in[N - 1][0]) : B<T>(T(0));
    for (; i + L <= n; i += L) {
      const B<T> x = B0 ? s0 : B<T>::load_unaligned(in[0] + i);
      if constexpr (N == 1) {
        f(x).store_unaligned(out + i);
      } else {
        const B<T> y = B1 ? s1 : B<T>::load_unaligned(in[1] + i);
        f(x, y).store_unaligned(out + i);
      }
    }
  };
  if constexpr (N == 1) {
    if (bcast[0])
      full.template operator()<true, false>();
    else
      full.template operator()<false, false>();
  } else {
    if (bcast[0] && bcast[1])
      full.template operator()<true, true>();
    else if (bcast[0])
      full.template operator()<true, false>();
    else if (bcast[1])
      full.template operator()<false, true>();
    else
      full.template operator()<false, false>();
  }
  if (i < n) {
    alignas(64) T buf[N > 0 ? N : 1][L];
    alignas(64) T res[L];
    const int64_t rem = n - i;
    for (int j = 0; j < N; ++j) {
      std::fill(buf[j], buf[j] + L, bcast[j] ? in[j][0] : T(1));
      if (!bcast[j]) std::memcpy(buf[j], in[j] + i, static_cast<std::size_t>(rem) * sizeof(T));
    }
    if constexpr (N == 1)
      f(B<T>::load_aligned(buf[0])).store_aligned(res);
    else
      f(B<T>::load_aligned(buf[0]), B<T>::load_aligned(buf[1])).store_aligned(res);
    std::memcpy(out + i, res, static_cast<std::size_t>(rem) * sizeof(T));
  }
}

// Strided operands of a SIMD op are gathered into small contiguous chunks, so
// every element goes through the same SIMD code whatever the layout (eager on
// a transposed view, eager on a contiguous copy and fused replay all agree bit
// for bit).
constexpr int64_t kChunk = 256;

template <class T, int N, class F>
void simd_strided(T* out, int64_t so, const T* const* in, const int64_t* si, int64_t n, F&& f) {
  alignas(64) T buf[N][kChunk];
  alignas(64) T res[kChunk];
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t len = std::min(kChunk, n - c0);
    const T* ptrs[N];
    bool bc[N];
    for (int j = 0; j < N; ++j) {
      bc[j] = si[j] == 0;
      if (si[j] == 1 || si[j] == 0) {
        ptrs[j] = in[j] + c0 * si[j];
      } else {
        for (int64_t i = 0; i < len; ++i) buf[j][i] = in[j][(c0 + i) * si[j]];
        ptrs[j] = buf[j];
      }
    }
    T* dst = so == 1 ? out + c0 : res;
    simd_apply<T, T, N>(dst, ptrs, bc, len, f);
    if (so != 1)
      for (int64_t i = 0; i < len; ++i) out[(c0 + i) * so] = res[i];
  }
}

template <class F, class T, class O>
void unary_loop(char* const* p, const int64_t* s, int64_t n, const void*) {
  O* out = reinterpret_cast<O*>(p[0]);
  const T* in = reinterpret_cast<const T*>(p[1]);
  if constexpr (kFloat<T> && std::is_same_v<T, O> && F::kSimd) {
    const T* ins[1] = {in};
    if (s[0] == 1 && (s[1] == 1 || s[1] == 0)) {
      const bool bc[1] = {s[1] == 0};
      simd_apply<T, O, 1>(out, ins, bc, n, [](auto x) { return F::apply(x); });
    } else {
      simd_strided<T, 1>(out, s[0], ins, s + 1, n, [](auto x) { return F::apply(x); });
    }
    return;
  }
  if (s[0] == 1 && s[1] == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<O>(F::apply(in[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i * s[0]] = static_cast<O>(F::apply(in[i * s[1]]));
  }
}

template <class F, class T, class O>
void binary_loop(char* const* p, const int64_t* s, int64_t n, const void*) {
  O* out = reinterpret_cast<O*>(p[0]);
  const T* a = reinterpret_cast<const T*>(p[1]);
  const T* b = reinterpret_cast<const T*>(p[2]);
  if constexpr (kFloat<T> && std::is_same_v<T, O> && F::kSimd) {
    const T* ins[2] = {a, b};
    if (s[0] == 1 && s[1] <= 1 && s[2] <= 1 && s[1] >= 0 && s[2] >= 0) {
      const bool bc[2] = {s[1] == 0, s[2] == 0};
      simd_apply<T, O, 2>(out, ins, bc, n, [](auto x, auto y) { return F::apply(x, y); });
    } else {
      simd_strided<T, 2>(out, s[0], ins, s + 1, n, [](auto x, auto y) { return F::apply(x, y); });
    }
    return;
  }
  if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<O>(F::apply(a[i], b[i]));
  } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
    const T bv = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<O>(F::apply(a[i], bv));
  } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
    const T av = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<O>(F::apply(av, b[i]));
  } else {
    for (int64_t i = 0; i < n; ++i)
      out[i * s[0]] = static_cast<O>(F::apply(a[i * s[1]], b[i * s[2]]));
  }
}

// Branch-free select: a branch on random conditions mispredicts half the
// time (where() on 1M random floats was 35x slower than a multiply).
template <class T>
inline T select_bits(bool c, T a, T b) {
  using U = std::conditional_t<sizeof(T) == 1, uint8_t,
                               std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>;
  static_assert(sizeof(U) == sizeof(T));
  U ua, ub;
  std::memcpy(&ua, &a, sizeof(T));
  std::memcpy(&ub, &b, sizeof(T));
  const U m = static_cast<U>(U(0) - static_cast<U>(c));
  const U r = static_cast<U>((ua & m) | (ub & static_cast<U>(~m)));
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

// Contiguous operands (AOne/BOne: one element, broadcast): written so the
// compiler vectorizes it into blends, which copy the chosen bits exactly. Not
// inlined: inlining drops the __restrict that lets it skip alias checks (out
// is always a fresh result: there is no in-place where).
template <class T, bool AOne, bool BOne>
[[gnu::noinline]] void where_contig(T* __restrict out, const uint8_t* __restrict c, const T* __restrict a, const T* __restrict b,
                  int64_t n) {
  if (n <= 0) return;
  const T a0 = a[0], b0 = b[0];
  for (int64_t i = 0; i < n; ++i) {
    const T x = AOne ? a0 : a[i], y = BOne ? b0 : b[i];  // both read: no conditional loads
    out[i] = c[i] != 0 ? x : y;
  }
}

template <class T>
void where_loop(char* const* p, const int64_t* s, int64_t n, const void*) {
  T* out = reinterpret_cast<T*>(p[0]);
  const bool* c = reinterpret_cast<const bool*>(p[1]);
  const T* a = reinterpret_cast<const T*>(p[2]);
  const T* b = reinterpret_cast<const T*>(p[3]);
  if (s[0] == 1 && s[1] == 1 && (s[2] == 1 || s[2] == 0) && (s[3] == 1 || s[3] == 0)) {
    const auto* cb = reinterpret_cast<const uint8_t*>(c);
    if (s[2] == 1 && s[3] == 1)
      where_contig<T, false, false>(out, cb, a, b, n);
    else if (s[2] == 1)
      where_contig<T, false, true>(out, cb, a, b, n);
    else if (s[3] == 1)
      where_contig<T, true, false>(out, cb, a, b, n);
    else
      where_contig<T, true, true>(out, cb, a, b, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i * s[0]] = select_bits(c[i * s[1]], a[i * s[2]], b[i * s[3]]);
}

// extra points to {min, max, flags} as doubles.
template <class T>
void clamp_loop(char* const* p, const int64_t* s, int64_t n, const void* extra) {
  const double* e = static_cast<const double*>(extra);
  const bool has_lo = static_cast<int>(e[2]) & 2, has_hi = static_cast<int>(e[2]) & 4;
  // Bounds outside the dtype's range saturate (a cast would be undefined).
  auto sat = [](double v) -> T {
    if constexpr (kFloat<T>) {
      return static_cast<T>(v);
    } else {
      if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
      if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
      return static_cast<T>(v);
    }
  };
  const T lo = has_lo ? sat(e[0]) : std::numeric_limits<T>::lowest();
  const T hi = has_hi ? sat(e[1]) : std::numeric_limits<T>::max();
  T* out = reinterpret_cast<T*>(p[0]);
  const T* in = reinterpret_cast<const T*>(p[1]);
  for (int64_t i = 0; i < n; ++i) {
    T x = in[i * s[1]];
    if constexpr (kFloat<T>) {
      if (std::isnan(x)) {
        out[i * s[0]] = x;
        continue;
      }
    }
    out[i * s[0]] = x < lo ? lo : (x > hi ? hi : x);
  }
}

// Note [Half conversions]: a float16/bfloat16 element converts through float
// (Half and BFloat16 convert only to and from float), so float64 -> float16
// rounds twice, exactly as PyTorch's c10::Half(float(x)) does; the float ->
// half step is half.h's round-to-nearest-even, the same bits CUDA gives.
template <class From, class To>
void cast_loop(char* const* p, const int64_t* s, int64_t n, const void*) {
  To* out = reinterpret_cast<To*>(p[0]);
  const From* in = reinterpret_cast<const From*>(p[1]);
  auto conv = [](From v) -> To {
    if constexpr (std::is_same_v<To, bool>)
      return v != From(0);
    else
      return static_cast<To>(v);
  };
  if (s[0] == 1 && s[1] == 1) {
    if constexpr (std::is_same_v<From, To>)
      std::memcpy(out, in, static_cast<std::size_t>(n) * sizeof(To));
    else
      for (int64_t i = 0; i < n; ++i) out[i] = conv(in[i]);
  } else if (s[0] == 1 && s[1] == 0) {
    std::fill(out, out + n, conv(in[0]));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i * s[0]] = conv(in[i * s[1]]);
  }
}

// ---- reductions -------------------------------------------------------------

template <class T>
using SumT = std::conditional_t<kFloat<T>, T, int64_t>;

template <class T>
inline bool nan_of(T v) {
  if constexpr (kFloat<T>)
    return std::isnan(v);
  else
    return false;
}

// Float sums of f(x[i]) for each f (each takes batches and scalars alike),
// in one pass: per f, blocks of 4 SIMD accumulators in T, blocks combined in
// double (a blocked/pairwise scheme: error grows with log(n), not n).
template <class T, class... F>
std::array<double, sizeof...(F)> simd_sums_of(const T* x, int64_t n, const F&... f) {
  constexpr std::size_t K = sizeof...(F);
  constexpr int64_t L = kLanes<T>;
  constexpr int64_t kBlock = 2048;
  std::array<double, K> total{};
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t bn = std::min(kBlock, n - b0);
    const T* p = x + b0;
    std::array<B<T>, K> a0, a1, a2, a3;
    for (std::size_t k = 0; k < K; ++k) a0[k] = a1[k] = a2[k] = a3[k] = B<T>(T(0));
    int64_t i = 0;
    for (; i + 4 * L <= bn; i += 4 * L) {
      const B<T> v0 = B<T>::load_unaligned(p + i), v1 = B<T>::load_unaligned(p + i + L);
      const B<T> v2 = B<T>::load_unaligned(p + i + 2 * L), v3 = B<T>::load_unaligned(p + i + 3 * L);
      std::size_t k = 0;
      ((a0[k] += f(v0), a1[k] += f(v1), a2[k] += f(v2), a3[k] += f(v3), ++k), ...);
    }
    for (; i + L <= bn; i += L) {
      const B<T> v = B<T>::load_unaligned(p + i);
      std::size_t k = 0;
      ((a0[k] += f(v), ++k), ...);
    }
    std::array<T, K> s{};  // +0: what the accumulators add up to when no batch was loaded
    if (i > 0)
      for (std::size_t k = 0; k < K; ++k) s[k] = xsimd::hadd((a0[k] + a1[k]) + (a2[k] + a3[k]));
    for (; i < bn; ++i) {
      std::size_t k = 0;
      ((s[k] += f(p[i]), ++k), ...);
    }
    for (std::size_t k = 0; k < K; ++k) total[k] += static_cast<double>(s[k]);
  }
  return total;
}

template <class T>
double simd_sum_contig(const T* x, int64_t n) {
  return simd_sums_of(x, n, [](auto v) { return v; })[0];
}

template <class T, bool IsMax>
T simd_extreme_contig(const T* x, int64_t n, bool* saw_nan) {
  constexpr int64_t L = kLanes<T>;
  int64_t i = 0;
  T r = x[0];
  if (n >= L) {
    B<T> acc = B<T>::load_unaligned(x);
    auto nan_acc = xsimd::isnan(acc);
    for (i = L; i + L <= n; i += L) {
      B<T> v = B<T>::load_unaligned(x + i);
      nan_acc = nan_acc | xsimd::isnan(v);
      acc = IsMax ? xsimd::max(acc, v) : xsimd::min(acc, v);
    }
    if (xsimd::any(nan_acc)) {
      *saw_nan = true;
      return std::numeric_limits<T>::quiet_NaN();
    }
    alignas(64) T buf[L];
    acc.store_aligned(buf);
    r = buf[0];
    for (int64_t j = 1; j < L; ++j) r = IsMax ? std::max(r, buf[j]) : std::min(r, buf[j]);
  }
  for (; i < n; ++i) {
    if (std::isnan(x[i])) {
      *saw_nan = true;
      return x[i];
    }
    r = IsMax ? std::max(r, x[i]) : std::min(r, x[i]);
  }
  return r;
}

// The first index i with x[i] == v (v occurs in x[0, n)).
template <class T>
int64_t simd_find_first(const T* x, int64_t n, T v) {
  constexpr int64_t L = kLanes<T>;
  const B<T> vv(v);
  int64_t i = 0;
  for (; i + L <= n; i += L)
    if (xsimd::any(B<T>::load_unaligned(x + i) == vv)) break;
  for (; i < n; ++i)
    if (x[i] == v) return i;
  return 0;
}

// The first index of a NaN (one occurs in x[0, n)).
template <class T>
int64_t simd_find_first_nan(const T* x, int64_t n) {
  constexpr int64_t L = kLanes<T>;
  int64_t i = 0;
  for (; i + L <= n; i += L)
    if (xsimd::any(xsimd::isnan(B<T>::load_unaligned(x + i)))) break;
  for (; i < n; ++i)
    if (std::isnan(x[i])) return i;
  return 0;
}

template <class T>
void put(Acc& a, T v) {
  if constexpr (kFloat<T>)
    a.f = static_cast<double>(v);
  else
    a.i = static_cast<int64_t>(v);
}

template <int K, class T>
Acc partial(const char* in, int64_t n, int64_t stride) {
  const T* x = reinterpret_cast<const T*>(in);
  Acc a;
  if constexpr (K == kSum) {
    if constexpr (kFloat<T>) {
      if (stride == 1) {
        a.f = simd_sum_contig(x, n);
        return a;
      }
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i * stride]);
      a.f = s;
    } else {
      uint64_t s = 0;  // wraps like int64 arithmetic instead of UB
      for (int64_t i = 0; i < n; ++i) s += static_cast<uint64_t>(static_cast<int64_t>(x[i * stride]));
      a.i = static_cast<int64_t>(s);
    }
  } else if constexpr (K == kProd) {
    if constexpr (kFloat<T>) {
      double s = 1;
      for (int64_t i = 0; i < n; ++i) s *= static_cast<double>(x[i * stride]);
      a.f = s;
    } else {
      uint64_t s = 1;
      for (int64_t i = 0; i < n; ++i) s *= static_cast<uint64_t>(static_cast<int64_t>(x[i * stride]));
      a.i = static_cast<int64_t>(s);
    }
  } else if constexpr (K == kMax || K == kMin) {
    constexpr bool kIsMax = K == kMax;
    if constexpr (kFloat<T>) {
      if (stride == 1 && n > 0) {
        bool nan = false;
        a.f = static_cast<double>(simd_extreme_contig<T, kIsMax>(x, n, &nan));
        return a;
      }
    }
    T r = x[0];
    for (int64_t i = 0; i < n; ++i) {
      T v = x[i * stride];
      if (nan_of(v)) {
        r = v;
        break;
      }
      if constexpr (std::is_same_v<T, bool>)
        r = kIsMax ? (r || v) : (r && v);
      else
        r = kIsMax ? (v > r ? v : r) : (v < r ? v : r);
    }
    put(a, r);
  } else if constexpr (K == kArgMax || K == kArgMin) {
    constexpr bool kIsMax = K == kArgMax;
    if constexpr (kFloat<T>) {
      if (stride == 1 && n >= kLanes<T>) {
        // The extreme value by SIMD, then its first index (a second pass over
        // what is still in cache). Ties of +0 and -0 compare equal, as in the
        // scalar loop, which keeps the first index whose value is not beaten.
        bool nan = false;
        const T best = simd_extreme_contig<T, kIsMax>(x, n, &nan);
        a.idx = nan ? simd_find_first_nan(x, n) : simd_find_first(x, n, best);
        put(a, x[a.idx]);
        return a;
      }
    }
    T r = x[0];
    int64_t best = 0;
    for (int64_t i = 0; i < n; ++i) {
      T v = x[i * stride];
      if (nan_of(v)) {  // the first NaN wins, as in PyTorch
        best = i;
        r = v;
        break;
      }
      if (kIsMax ? v > r : v < r) {
        r = v;
        best = i;
      }
    }
    a.idx = best;
    put(a, r);
  } else if constexpr (K == kAll) {
    int64_t r = 1;
    for (int64_t i = 0; i < n && r; ++i) r = x[i * stride] != T(0);
    a.i = r;
  } else {
    int64_t r = 0;
    for (int64_t i = 0; i < n && !r; ++i) r = x[i * stride] != T(0);
    a.i = r;
  }
  return a;
}

// Deviations about `center`. Contiguous floats: simd_sums_of in T, about
// center rounded to T (the caller corrects for that rounding and for the
// center's distance from the mean with sum(d): Note [Moments of a chunk]).
template <class T>
Deviations sqdev(const char* in, int64_t n, int64_t stride, double center) {
  const T* x = reinterpret_cast<const T*>(in);
  Deviations r;
  if constexpr (kFloat<T>) {
    if (stride == 1) {
      const T c = static_cast<T>(center);
      r.center = static_cast<double>(c);
      const auto sums = simd_sums_of(
          x, n, [c](auto v) { return v - c; },
          [c](auto v) {
            const auto d = v - c;
            return d * d;
          });
      r.sum = sums[0];
      r.sum_sq = sums[1];
      return r;
    }
  }
  r.center = center;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i * stride]) - center;
    r.sum += d;
    r.sum_sq += d * d;
  }
  return r;
}

// Row reductions: out has the accumulator dtype (SumT<T> for sum/prod, T for max/min).
template <int K, class T>
void rows(const char* in, int64_t nrows, int64_t row_stride, int64_t cols, char* out_raw) {
  const T* x = reinterpret_cast<const T*>(in);
  using O = std::conditional_t<K == kSum || K == kProd, SumT<T>, T>;
  O* out = reinterpret_cast<O*>(out_raw);
  if constexpr (K == kSum && kFloat<T>) {
    // Blocks of rows are summed in T with SIMD, the blocks in double: the
    // error grows with the number of blocks, not of rows.
    constexpr int64_t kBlock = 64;
    std::vector<double> acc(static_cast<std::size_t>(cols), 0.0);
    for (int64_t r0 = 0; r0 < nrows; r0 += kBlock) {
      const int64_t r1 = std::min(nrows, r0 + kBlock);
      std::memcpy(out, x + r0 * row_stride, static_cast<std::size_t>(cols) * sizeof(T));
      for (int64_t r = r0 + 1; r < r1; ++r) {
        const T* ins[2] = {out, x + r * row_stride};
        const bool bc[2] = {false, false};
        simd_apply<T, T, 2>(out, ins, bc, cols, [](auto p, auto q) { return p + q; });
      }
      for (int64_t j = 0; j < cols; ++j) acc[j] += static_cast<double>(out[j]);
    }
    for (int64_t j = 0; j < cols; ++j) out[j] = static_cast<T>(acc[j]);
    return;
  }
  for (int64_t j = 0; j < cols; ++j) out[j] = static_cast<O>(x[j]);
  for (int64_t r = 1; r < nrows; ++r) {
    const T* row = x + r * row_stride;
    if constexpr (K == kSum && kFloat<T>) {
      const T* ins[2] = {out, row};
      const bool bc[2] = {false, false};
      simd_apply<T, T, 2>(out, ins, bc, cols, [](auto p, auto q) { return p + q; });
    } else {
      for (int64_t j = 0; j < cols; ++j) {
        if constexpr (K == kSum)
          out[j] = ops::Add::apply(out[j], static_cast<O>(row[j]));
        else if constexpr (K == kProd)
          out[j] = ops::Mul::apply(out[j], static_cast<O>(row[j]));
        else if constexpr (K == kMax)
          out[j] = ops::Maximum::apply(out[j], row[j]);
        else
          out[j] = ops::Minimum::apply(out[j], row[j]);
      }
    }
  }
}

template <class T>
void softmax_one_row(const char* in_raw, char* out_raw, int64_t n, bool log) {
  const T* in = reinterpret_cast<const T*>(in_raw);
  T* out = reinterpret_cast<T*>(out_raw);
  if (n == 0) return;
  bool nan = false;
  const T mx = simd_extreme_contig<T, true>(in, n, &nan);
  const T shift = std::isinf(mx) ? T(0) : mx;  // all -inf rows give NaN like PyTorch
  constexpr int64_t L = kLanes<T>;
  if (n < L) {
    // A row shorter than one vector (class scores: softmax over 10 logits)
    // stays in one register: the same exp, sum order and scaling as the
    // general path below, without its three padded tail passes. Kept beside
    // softmax_row_block for the rows left over after whole blocks (one row
    // here costs one vector exp, a lane block costs n of them).
    alignas(64) T buf[L];
    std::fill(buf + n, buf + L, T(0));
    std::memcpy(buf, in, static_cast<std::size_t>(n) * sizeof(T));
    const B<T> x = B<T>::load_aligned(buf);
    alignas(64) T e[L];
    xsimd::exp(x - B<T>(shift)).store_aligned(e);
    T s = T(0);
    for (int64_t i = 0; i < n; ++i) s += e[i];
    const double sum = static_cast<double>(s);
    if (log)
      ((x - B<T>(shift)) - B<T>(static_cast<T>(std::log(sum)))).store_aligned(buf);
    else
      (B<T>::load_aligned(e) * B<T>(static_cast<T>(1.0 / sum))).store_aligned(buf);
    std::memcpy(out, buf, static_cast<std::size_t>(n) * sizeof(T));
    return;
  }
  {
    const T* ins[1] = {in};
    const bool bc[1] = {false};
    simd_apply<T, T, 1>(out, ins, bc, n, [shift](auto x) { return xsimd::exp(x - shift); });
  }
  const double sum = simd_sum_contig(out, n);
  const T* ins[1] = {log ? in : out};
  const bool bc[1] = {false};
  if (log) {
    // (x - shift) - log(sum), not x - (shift + log(sum)): the latter rounds
    // log(sum) away next to a large shift.
    const T lse = static_cast<T>(std::log(sum));
    simd_apply<T, T, 1>(out, ins, bc, n, [shift, lse](auto x) { return (x - shift) - lse; });
  } else {
    const T inv = static_cast<T>(1.0 / sum);
    simd_apply<T, T, 1>(out, ins, bc, n, [inv](auto x) { return x * inv; });
  }
}

// Note [Short softmax rows]: rows shorter than one vector (class scores) go
// L rows at a time, one row per lane: the block is transposed into columns,
// then the max, exp, sum and scaling run on whole vectors. Each lane does
// what softmax_one_row's one-register path does for its row (max as
// `r < x ? x : r` from the left, the same exp, the same left-to-right float
// sum, the same double log or reciprocal), so both give the same bits.
template <class T>
void softmax_row_block(const T* in, T* out, int64_t n, bool log) {
  constexpr int64_t L = kLanes<T>;
  alignas(64) T col[L][L];  // col[j][r]: element j of row r (n < L)
  for (int64_t r = 0; r < L; ++r)
    for (int64_t j = 0; j < n; ++j) col[j][r] = in[r * n + j];
  B<T> mx = B<T>::load_aligned(col[0]);
  B<T> first_nan = mx;  // per lane: the row's first NaN, whose sign and payload the shift passes on
  auto nan = xsimd::isnan(mx);
  for (int64_t j = 1; j < n; ++j) {
    const B<T> x = B<T>::load_aligned(col[j]);
    const auto is = xsimd::isnan(x);
    first_nan = xsimd::select(is && !nan, x, first_nan);
    nan = nan || is;
    mx = xsimd::select(mx < x, x, mx);
  }
  mx = xsimd::select(nan, first_nan, mx);
  const B<T> shift = xsimd::select(xsimd::isinf(mx), B<T>(T(0)), mx);  // all -inf rows give NaN
  B<T> s(T(0));
  for (int64_t j = 0; j < n; ++j) {
    const B<T> e = xsimd::exp(B<T>::load_aligned(col[j]) - shift);
    s = s + e;
    if (!log) e.store_aligned(col[j]);
  }
  alignas(64) T sums[L], scale[L];
  s.store_aligned(sums);
  for (int64_t r = 0; r < L; ++r) {
    const double sum = static_cast<double>(sums[r]);
    scale[r] = log ? static_cast<T>(std::log(sum)) : static_cast<T>(1.0 / sum);
  }
  const B<T> k = B<T>::load_aligned(scale);
  for (int64_t j = 0; j < n; ++j) {
    const B<T> v = B<T>::load_aligned(col[j]);
    (log ? (v - shift) - k : v * k).store_aligned(col[j]);
  }
  for (int64_t r = 0; r < L; ++r)
    for (int64_t j = 0; j < n; ++j) out[r * n + j] = col[j][r];
}

template <class T>
void softmax_rows(const char* in_raw, char* out_raw, int64_t rows, int64_t n, bool log) {
  const T* in = reinterpret_cast<const T*>(in_raw);
  T* out = reinterpret_cast<T*>(out_raw);
  int64_t r = 0;
  if (n > 1 && n < kLanes<T>)  // Note [Short softmax rows]
    for (; r + kLanes<T> <= rows; r += kLanes<T>) softmax_row_block(in + r * n, out + r * n, n, log);
  for (; r < rows; ++r)
    softmax_one_row<T>(reinterpret_cast<const char*>(in + r * n), reinterpret_cast<char*>(out + r * n), n, log);
}

template <class T>
void gemm_loop(int64_t m, int64_t n, int64_t k, const char* a_raw, int64_t lda,
               const char* b_raw, int64_t ldb, char* c_raw, int64_t ldc) {
  const T* a = reinterpret_cast<const T*>(a_raw);
  const T* b = reinterpret_cast<const T*>(b_raw);
  T* c = reinterpret_cast<T*>(c_raw);
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) ci[j] = T(0);
    for (int64_t p = 0; p < k; ++p) {
      const T av = a[i * lda + p];
      const T* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] = ops::Add::apply(ci[j], ops::Mul::apply(av, bp[j]));
    }
  }
}

// ---- fused elementwise programs ---------------------------------------------

enum class Rule { same, to_float, compare, logical };
constexpr Rule same = Rule::same, to_float = Rule::to_float, compare = Rule::compare,
               logical = Rule::logical;

// Ops the fused loop runs (for float32/float64): SIMD functors whose result
// keeps the operands' dtype (comparisons and logical ops give bool).
template <class F, Rule r>
constexpr bool kFusedOp = F::kSimd && r != Rule::compare && r != Rule::logical;

// A fused program runs block by block (kBlock vectors): the block's running
// value stays in registers while the instructions update it (Note
// [Accumulator-form fused programs] in arch.h). Each op applies the same
// F::apply to the same SIMD batches as eager code, so every element is
// computed exactly as in eager mode; only the inputs are read from memory and
// only the result is written to it.
// Four vectors: enough independent work to hide exp/tanh latency, few enough
// to stay in registers (8 spills with AVX-512; 2 leaves the loop slower).
constexpr int kBlock = 4;

// gnu::flatten inlines the functors (xsimd's exp and friends included) so the
// block stays in registers across ops: an out-of-line call would force it to
// memory. See lib/meson.build for the sanitizer builds.
#ifdef EMBER_FUSED_NO_FLATTEN
#define EMBER_FUSED_INLINE
#else
#define EMBER_FUSED_INLINE [[gnu::flatten]]
#endif

template <class T>
EMBER_FUSED_INLINE void fused_loop(const FusedInstr* code, int n_instr, int n_in, const char* const* in,
                const int64_t* in_stride, char* out_bytes, int64_t n) {
  constexpr int64_t L = kLanes<T>;
  constexpr int64_t kB = kBlock * L;
  alignas(64) T slots[kMaxFusedSlots][kB];      // spill slots, and splat inputs
  alignas(64) T tail_in[kMaxFusedSlots][kB];    // stride-1 inputs of a short last block
  alignas(64) T tail_out[kB];
  T* base[kMaxFusedSlots];
  T* ptr[kMaxFusedSlots];
  for (int i = 0; i < n_in; ++i) {
    base[i] = reinterpret_cast<T*>(const_cast<char*>(in[i]));
    if (in_stride[i] == 0) {
      std::fill(slots[i], slots[i] + kB, base[i][0]);
      ptr[i] = slots[i];
    }
  }
  for (int s = n_in; s < kMaxFusedSlots; ++s) ptr[s] = slots[s];
  T* out = reinterpret_cast<T*>(out_bytes);
  for (int64_t t0 = 0; t0 < n; t0 += kB) {
    const int64_t len = std::min(kB, n - t0);
    T* dst = out + t0;
    for (int i = 0; i < n_in; ++i) {
      if (in_stride[i] == 0) continue;
      ptr[i] = base[i] + t0;
      if (len < kB) {  // pad like simd_apply's tail: lanes past n hold 1
        std::fill(tail_in[i], tail_in[i] + kB, T(1));
        std::memcpy(tail_in[i], ptr[i], static_cast<std::size_t>(len) * sizeof(T));
        ptr[i] = tail_in[i];
      }
    }
    if (len < kB) dst = tail_out;
    // Four named registers, not an array: GCC keeps them out of memory.
    B<T> a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    auto each = [&](auto&& f) {
      a0 = f(a0, 0);
      a1 = f(a1, 1);
      a2 = f(a2, 2);
      a3 = f(a3, 3);
    };
    for (int k = 0; k < n_instr; ++k) {
      const FusedInstr c = code[k];
      T* o = c.operand >= 0 ? ptr[c.operand] : nullptr;
      auto opnd = [o](int j) { return B<T>::load_unaligned(o + j * L); };
      switch (c.code) {
        case FusedInstr::kLoad:
          each([&](B<T>, int j) { return opnd(j); });
          break;
        case FusedInstr::kSpill:
          each([&](B<T> x, int j) { x.store_unaligned(o + j * L); return x; });
          break;
#define EMBER_UNARY(name, F, rule, dtypes)                                                    \
  case fused_code(OpId::name, FusedInstr::kUnary):                                            \
    if constexpr (kFloat<T> && kFusedOp<ops::F, rule>)                                       \
      each([](B<T> x, int) { return ops::F::apply(x); });                                    \
    break;
#define EMBER_BINARY(name, F, rule, dtypes)                                                   \
  case fused_code(OpId::name, FusedInstr::kAccLeft):                                          \
    if constexpr (kFloat<T> && kFusedOp<ops::F, rule>)                                       \
      each([&](B<T> x, int j) { return ops::F::apply(x, opnd(j)); });                         \
    break;                                                                                    \
  case fused_code(OpId::name, FusedInstr::kAccRight):                                         \
    if constexpr (kFloat<T> && kFusedOp<ops::F, rule>)                                       \
      each([&](B<T> x, int j) { return ops::F::apply(opnd(j), x); });                         \
    break;                                                                                    \
  case fused_code(OpId::name, FusedInstr::kSelf):                                             \
    if constexpr (kFloat<T> && kFusedOp<ops::F, rule>)                                       \
      each([](B<T> x, int) { return ops::F::apply(x, x); });                                 \
    break;
#include "ops/elementwise.def"
        default:
          break;
      }
    }
    each([&](B<T> x, int j) { x.store_unaligned(dst + j * L); return x; });
    if (len < kB) std::memcpy(out + t0, tail_out, static_cast<std::size_t>(len) * sizeof(T));
  }
}

// ---- table ------------------------------------------------------------------

template <class F>
void for_each_type(F&& f) {
  f.template operator()<bool>();
  f.template operator()<uint8_t>();
  f.template operator()<int32_t>();
  f.template operator()<int64_t>();
  f.template operator()<float>();
  f.template operator()<double>();
}

// The cast table also covers the storage-only dtypes.
template <class F>
void for_each_storage_type(F&& f) {
  for_each_type(f);
  f.template operator()<Half>();
  f.template operator()<BFloat16>();
}

template <class T>
constexpr int di() {
  return static_cast<int>(dtype_of<T>());
}

}  // namespace

void fill(ArchKernels& k) {
  k.name = Arch::name();
  // Unary and binary ops: instantiate for every compute dtype the rule can produce.
#define EMBER_UNARY(name, F, rule, dtypes)                                               \
  for_each_type([&]<class T>() {                                                       \
    constexpr Rule r = rule;                                                           \
    if constexpr (r == Rule::logical) {                                                \
      if constexpr (std::is_same_v<T, bool>)                                           \
        k.elementwise[dispatch::op_index(OpId::name)][di<T>()] = &unary_loop<ops::F, T, bool>; \
    } else if constexpr (r == Rule::to_float) {                                        \
      if constexpr (kFloat<T>)                                                         \
        k.elementwise[dispatch::op_index(OpId::name)][di<T>()] = &unary_loop<ops::F, T, T>; \
    } else if constexpr (dispatch::contains(dispatch::dtypes, dtype_of<T>())) {        \
      k.elementwise[dispatch::op_index(OpId::name)][di<T>()] = &unary_loop<ops::F, T, T>; \
    }                                                                                  \
  });
#define EMBER_BINARY(name, F, rule, dtypes)                                              \
  for_each_type([&]<class T>() {                                                       \
    constexpr Rule r = rule;                                                           \
    if constexpr (r == Rule::logical) {                                                \
      if constexpr (std::is_same_v<T, bool>)                                           \
        k.elementwise[dispatch::op_index(OpId::name)][di<T>()] = &binary_loop<ops::F, T, bool>; \
    } else if constexpr (r == Rule::compare) {                                         \
      k.elementwise[dispatch::op_index(OpId::name)][di<T>()] = &binary_loop<ops::F, T, bool>; \
    } else if constexpr (r == Rule::to_float) {                                        \
      if constexpr (kFloat<T>)                                                         \
        k.elementwise[dispatch::op_index(OpId::name)][di<T>()] = &binary_loop<ops::F, T, T>; \
    } else if constexpr (dispatch::contains(dispatch::dtypes, dtype_of<T>())) {        \
      k.elementwise[dispatch::op_index(OpId::name)][di<T>()] = &binary_loop<ops::F, T, T>; \
    }                                                                                  \
  });
#include "ops/elementwise.def"

  for_each_type([&]<class T>() {
    k.elementwise[dispatch::op_index(OpId::where)][di<T>()] = &where_loop<T>;
    if constexpr (!std::is_same_v<T, bool>)
      k.elementwise[dispatch::op_index(OpId::clamp)][di<T>()] = &clamp_loop<T>;
    k.partial[kSum][di<T>()] = &partial<kSum, T>;
    k.partial[kProd][di<T>()] = &partial<kProd, T>;
    k.partial[kMax][di<T>()] = &partial<kMax, T>;
    k.partial[kMin][di<T>()] = &partial<kMin, T>;
    k.partial[kArgMax][di<T>()] = &partial<kArgMax, T>;
    k.partial[kArgMin][di<T>()] = &partial<kArgMin, T>;
    k.partial[kAll][di<T>()] = &partial<kAll, T>;
    k.partial[kAny][di<T>()] = &partial<kAny, T>;
    k.sqdev[di<T>()] = &sqdev<T>;
    k.rows[kSum][di<T>()] = &rows<kSum, T>;
    k.rows[kProd][di<T>()] = &rows<kProd, T>;
    k.rows[kMax][di<T>()] = &rows<kMax, T>;
    k.rows[kMin][di<T>()] = &rows<kMin, T>;
    if constexpr (kFloat<T>) k.softmax[di<T>()] = &softmax_rows<T>;
    if constexpr (!std::is_same_v<T, bool>) k.gemm[di<T>()] = &gemm_loop<T>;
    if constexpr (kFloat<T>) k.fused[di<T>()] = &fused_loop<T>;
  });
  for_each_storage_type([&]<class From>() {
    for_each_storage_type([&]<class To>() { k.cast[di<From>()][di<To>()] = &cast_loop<From, To>; });
  });
#define EMBER_UNARY(name, F, rule, dtypes) \
  k.fusable[dispatch::op_index(OpId::name)] = kFusedOp<ops::F, rule>;
#define EMBER_BINARY(name, F, rule, dtypes) EMBER_UNARY(name, F, rule, dtypes)
#include "ops/elementwise.def"
}

}  // namespace ember::cpu::EMBER_ARCH
