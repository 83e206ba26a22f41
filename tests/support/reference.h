#pragma once
// Test support: a float64 reference, layouts and seeded test data.
//
// - `from_values(values, shape, dtype)` builds a tensor from doubles without going
//   through ember's casts; `values_of(t)` reads it back as doubles.
// - `layouts(t)` gives the same logical values in several memory layouts
//   (contiguous, transposed, step-2 slice with an offset, stride-0 broadcast)
//   so an op can be checked on non-contiguous inputs.
// - `ref_unary` / `ref_binary` evaluate a double function with NumPy
//   broadcasting and cast the result to the result dtype (ints wrap, bool is != 0).
// - `compare_values` / `compare_tensors` return "" when equal within the dtype's
//   tolerance, else a message naming the first mismatching index and both values;
//   `EMBER_CHECK_CLOSE` / `EMBER_CHECK_VALUES` wrap them in a Catch CHECK.
// - `random_values` / `random_tensor` draw seeded data (std::mt19937) per dtype
//   within a `Domain` (e.g. positives for log and sqrt); `pattern_values` gives
//   deterministic, formula-made values instead.
// - `mismatch(got, shape, dtype, want, tol)` is "" or a short message (e.g.
//   "index 3: got 1, expected 2"), checking dtype too; for CHECK(mismatch(...) == "").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <ember/ember.h>
#include <fmt/format.h>

namespace ember::test {

/// The dtypes CPU kernels compute in (float16/bfloat16 are widened to float32 and
/// checked against float32 in test_half.cpp).
inline const std::vector<DType>& cpu_dtypes() {
  static const std::vector<DType> v = {bool_, uint8, int32, int64, float32, float64};
  return v;
}

/// The op names that have a row in the table-driven elementwise test
/// (every EMBER_UNARY and EMBER_BINARY line of lib/ops/elementwise.def);
/// defined in tests/lib/test_elementwise.cpp.
const std::vector<std::string>& elementwise_reference_ops();

// ---- shapes -----------------------------------------------------------------

inline int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline std::string str(const Shape& s) { return shape_str(s); }

/// NumPy broadcasting on the host (no error checks: the caller knows the shapes fit).
inline Shape broadcast_shape(const Shape& a, const Shape& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// Multi-index of flat (row-major) position `flat` in `shape`, e.g. "[1,0,2]".
inline std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size(), 0);
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 0) return idx;
    idx[i] = flat % shape[i];
    flat /= shape[i];
  }
  return idx;
}
/// Flat (row-major) position of multi-index `idx` in `shape`: the inverse of `unravel`.
inline int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t flat = 0;
  for (std::size_t i = 0; i < shape.size(); ++i) flat = flat * shape[i] + idx[i];
  return flat;
}

inline std::string index_str(const std::vector<int64_t>& idx) {
  std::string s = "[";
  for (std::size_t i = 0; i < idx.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(idx[i]);
  }
  return s + "]";
}

/// Flat position in `from` (broadcast to `to`) of the element at multi-index `idx` of `to`.
inline int64_t broadcast_source(const std::vector<int64_t>& idx, const Shape& from,
                                const Shape& to) {
  int64_t flat = 0;
  const std::size_t lead = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i) {
    const int64_t k = from[i] == 1 ? 0 : idx[lead + i];
    flat = flat * from[i] + k;
  }
  return flat;
}

/// Host broadcast of row-major `values` of shape `from` to shape `to`.
inline std::vector<double> broadcast_values(const std::vector<double>& values, const Shape& from,
                                            const Shape& to) {
  const int64_t n = numel_of(to);
  std::vector<double> out(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[static_cast<std::size_t>(i)] =
        values[static_cast<std::size_t>(broadcast_source(unravel(i, to), from, to))];
  return out;
}

/// Host permutation: out has shape `perm`-applied, out[i0..] = values[...] like Tensor::permute.
inline std::vector<double> permute_values(const std::vector<double>& values, const Shape& shape,
                                          const std::vector<int64_t>& perm) {
  Shape out_shape(perm.size(), 0);
  for (std::size_t i = 0; i < perm.size(); ++i) out_shape[i] = shape[perm[i]];
  const Strides in_strides = contiguous_strides(shape);
  const int64_t n = numel_of(shape);
  std::vector<double> out(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const auto idx = unravel(i, out_shape);
    int64_t src = 0;
    for (std::size_t d = 0; d < perm.size(); ++d) src += idx[d] * in_strides[perm[d]];
    out[static_cast<std::size_t>(i)] = values[static_cast<std::size_t>(src)];
  }
  return out;
}

// ---- values -----------------------------------------------------------------

/// `v` as stored in `dt`: ints wrap (two's complement), bool is v != 0, float32 rounds.
/// Floating values bound for an integer dtype truncate toward zero first (C++/PyTorch casts).
inline double cast_value(double v, DType dt) {
  if (dt == bool_) return v != 0.0 || std::isnan(v) ? 1.0 : 0.0;
  if (dt == float32) return static_cast<double>(static_cast<float>(v));
  if (dt == float16) return static_cast<float>(Half(static_cast<float>(v)));
  if (dt == bfloat16) return static_cast<float>(BFloat16(static_cast<float>(v)));
  if (dt == float64 || std::isnan(v) || std::isinf(v)) return v;
  const double t = std::trunc(v);
  const auto i = static_cast<int64_t>(t);
  if (dt == uint8) return static_cast<double>(static_cast<uint8_t>(static_cast<uint64_t>(i)));
  if (dt == int32) return static_cast<double>(static_cast<int32_t>(static_cast<uint32_t>(i)));
  return static_cast<double>(i);
}

/// A tensor of `shape` and `dt` holding `values` (row-major), built without ember's casts.
inline Tensor from_values(const std::vector<double>& values, const Shape& shape, DType dt) {
  switch (dt) {
    case DType::bool_: {
      std::vector<bool> v;
      for (double x : values) v.push_back(x != 0.0);
      return tensor(v, shape);
    }
    case DType::uint8: {
      std::vector<uint8_t> v;
      for (double x : values) v.push_back(static_cast<uint8_t>(cast_value(x, uint8)));
      return tensor(v, shape);
    }
    case DType::int32: {
      std::vector<int32_t> v;
      for (double x : values) v.push_back(static_cast<int32_t>(cast_value(x, int32)));
      return tensor(v, shape);
    }
    case DType::int64: {
      std::vector<int64_t> v;
      for (double x : values) v.push_back(static_cast<int64_t>(x));
      return tensor(v, shape);
    }
    case DType::float32: {
      std::vector<float> v;
      for (double x : values) v.push_back(static_cast<float>(x));
      return tensor(v, shape);
    }
    case DType::float64:
      return tensor(values, shape);
    case DType::float16: {
      std::vector<Half> v;
      for (double x : values) v.push_back(Half(static_cast<float>(x)));
      return tensor(v, shape);
    }
    case DType::bfloat16: {
      std::vector<BFloat16> v;
      for (double x : values) v.push_back(BFloat16(static_cast<float>(x)));
      return tensor(v, shape);
    }
  }
  FAIL("from_values: unsupported dtype " << dtype_name(dt));
  return {};
}

/// All values of `t` (any layout) as doubles, row-major.
inline std::vector<double> values_of(const Tensor& t) { return t.to_vector<double>(); }

// ---- tolerances and comparison ----------------------------------------------

struct Tolerance {
  double rtol = 0.0;
  double atol = 0.0;
};

/// Exact for bool/ints; a few ulps for float32 (SIMD math functions); tight for float64;
/// about one rounding for float16/bfloat16.
inline Tolerance tolerance_for(DType dt) {
  switch (dt) {
    case DType::float32:
      return {2e-5, 2e-6};
    case DType::float64:
      return {1e-11, 1e-13};
    case DType::float16:  // a float32 result rounded once: half an ulp (2^-11 relative)
      return {1e-3, 1e-7};
    case DType::bfloat16:  // 2^-8 relative
      return {8e-3, 1e-30};
    default:
      return {0.0, 0.0};
  }
}

inline std::string fmt_double(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

inline bool close_enough(double actual, double expected, Tolerance tol, bool equal_nan = true) {
  if (std::isnan(actual) || std::isnan(expected))
    return equal_nan && std::isnan(actual) && std::isnan(expected);
  if (std::isinf(expected) || std::isinf(actual)) return actual == expected;
  return std::abs(actual - expected) <= tol.atol + tol.rtol * std::abs(expected);
}

/// "" when `actual` has `shape` and matches `expected` within `tol` (NaN equals NaN when
/// `equal_nan`), else a message with the first mismatching flat and multi-index.
inline std::string compare_values(const Tensor& actual, const Shape& shape,
                                  const std::vector<double>& expected,
                                  std::optional<Tolerance> tol = {}, bool equal_nan = true) {
  if (!actual.defined()) return "actual tensor is undefined";
  if (actual.shape() != shape)
    return "shape mismatch: actual " + str(actual.shape()) + ", expected " + str(shape);
  if (static_cast<int64_t>(expected.size()) != numel_of(shape))
    return "bad test: " + std::to_string(expected.size()) + " expected values for shape " +
           str(shape);
  const std::vector<double> got = values_of(actual);
  const Tolerance t = tol ? *tol : tolerance_for(actual.dtype());
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!close_enough(got[i], expected[i], t, equal_nan)) {
      return "first mismatch at flat index " + std::to_string(i) + " " +
             index_str(unravel(static_cast<int64_t>(i), shape)) + " of " + str(shape) + " (" +
             dtype_name(actual.dtype()) + "): actual " + fmt_double(got[i]) + ", expected " +
             fmt_double(expected[i]) + " (rtol " + fmt_double(t.rtol) + ", atol " +
             fmt_double(t.atol) + ")";
    }
  }
  return "";
}

/// Like compare_values with `expected`'s shape and values; also checks the dtypes match
/// unless `check_dtype` is false. The tolerance defaults to the coarser of the two dtypes.
inline std::string compare_tensors(const Tensor& actual, const Tensor& expected,
                                   std::optional<Tolerance> tol = {}, bool check_dtype = true,
                                   bool equal_nan = true) {
  if (!actual.defined() || !expected.defined()) return "undefined tensor";
  if (check_dtype && actual.dtype() != expected.dtype())
    return std::string("dtype mismatch: actual ") + dtype_name(actual.dtype()) + ", expected " +
           dtype_name(expected.dtype());
  if (!tol) {
    const Tolerance a = tolerance_for(actual.dtype()), b = tolerance_for(expected.dtype());
    tol = Tolerance{std::max(a.rtol, b.rtol), std::max(a.atol, b.atol)};
  }
  return compare_values(actual, expected.shape(), values_of(expected), tol, equal_nan);
}

/// "" when `got` has `shape` and `dtype` and each value is within `tol` of `want`
/// (NaN matches NaN), else the first difference, e.g. "index 3: got 1, expected 2".
inline std::string mismatch(const Tensor& got, const Shape& shape, DType dtype,
                            const std::vector<double>& want, Tolerance tol) {
  if (got.shape() != shape)
    return fmt::format("shape {} != expected {}", shape_str(got.shape()), shape_str(shape));
  if (got.dtype() != dtype)
    return fmt::format("dtype {} != expected {}", dtype_name(got.dtype()), dtype_name(dtype));
  const std::vector<double> g = got.to_vector<double>();
  if (g.size() != want.size()) return fmt::format("{} values != expected {}", g.size(), want.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double x = g[i], y = want[i];
    const bool ok = (std::isnan(x) && std::isnan(y)) || x == y ||
                    std::abs(x - y) <= tol.atol + tol.rtol * std::abs(y);
    if (!ok) return fmt::format("index {}: got {}, expected {}", i, x, y);
  }
  return "";
}

/// mismatch against `want`'s shape, dtype and values.
inline std::string mismatch(const Tensor& got, const Tensor& want, Tolerance tol) {
  return mismatch(got, want.shape(), want.dtype(), want.to_vector<double>(), tol);
}

}  // namespace ember::test

/// CHECKs that tensor `actual` equals tensor `expected` (dtype, shape, values within tolerance).
#define EMBER_CHECK_CLOSE(actual, expected)                                           \
  do {                                                                                \
    const std::string ember_msg_ = ::ember::test::compare_tensors((actual), (expected)); \
    INFO(ember_msg_);                                                                 \
    CHECK(ember_msg_.empty());                                                        \
  } while (0)

/// CHECKs that tensor `actual` has `shape` and the given values, e.g.
/// EMBER_CHECK_VALUES(t, (ember::Shape{2, 2}), {1, 2, 3, 4}).
#define EMBER_CHECK_VALUES(actual, shape, ...)                                             \
  do {                                                                                     \
    const std::string ember_msg_ =                                                         \
        ::ember::test::compare_values((actual), (shape), std::vector<double>(__VA_ARGS__)); \
    INFO(ember_msg_);                                                                      \
    CHECK(ember_msg_.empty());                                                             \
  } while (0)

namespace ember::test {

// ---- reference evaluation ---------------------------------------------------

/// f applied to every value of `x`, cast to `out` dtype.
template <class F>
std::vector<double> ref_unary(const std::vector<double>& x, F f, DType out) {
  std::vector<double> r;
  r.reserve(x.size());
  for (double v : x) r.push_back(cast_value(f(v), out));
  return r;
}

/// f(a, b) with NumPy broadcasting of `as` and `bs`, cast to `out` dtype.
template <class F>
std::vector<double> ref_binary(const std::vector<double>& a, const Shape& as,
                               const std::vector<double>& b, const Shape& bs, F f, DType out) {
  const Shape os = broadcast_shape(as, bs);
  const int64_t n = numel_of(os);
  std::vector<double> r(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const auto idx = unravel(i, os);
    const double x = a[static_cast<std::size_t>(broadcast_source(idx, as, os))];
    const double y = b[static_cast<std::size_t>(broadcast_source(idx, bs, os))];
    r[static_cast<std::size_t>(i)] = cast_value(f(x, y), out);
  }
  return r;
}

// ---- layouts ----------------------------------------------------------------

struct Layout {
  std::string name;
  Tensor t;
};

/// The values of `src` in several layouts, each a fresh tensor (never `src` itself):
/// "contiguous"; "transposed" (dim >= 2: permute of a contiguous buffer of the reversed
/// shape); "step2_slice" (dim >= 1: every other element of a bigger buffer along the last
/// dim, starting at offset 1, the gaps holding 77); "broadcast" (a stride-0 expand of a
/// size-1 dim, when the values are constant along some dim of size > 1).
inline std::vector<Layout> layouts(const Tensor& src) {
  const Shape shape = src.shape();
  const DType dt = src.dtype();
  const std::vector<double> vals = values_of(src);
  const std::size_t rank = shape.size();
  std::vector<Layout> out;
  out.push_back({"contiguous", from_values(vals, shape, dt)});

  if (rank >= 2) {
    std::vector<int64_t> rev(rank);
    for (std::size_t i = 0; i < rank; ++i) rev[i] = static_cast<int64_t>(rank - 1 - i);
    Shape rshape(rank, 0);
    for (std::size_t i = 0; i < rank; ++i) rshape[i] = shape[rank - 1 - i];
    Tensor buf = from_values(permute_values(vals, shape, rev), rshape, dt);
    out.push_back({"transposed", buf.permute(Axes(rev.begin(), rev.end()))});
  }

  if (rank >= 1) {
    const int64_t n = shape[rank - 1];
    Shape big = shape;
    big[rank - 1] = 2 * n + 1;
    std::vector<double> bvals(static_cast<std::size_t>(numel_of(big)), 77.0);
    const int64_t outer = n == 0 ? 0 : numel_of(shape) / n;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < n; ++j)
        bvals[static_cast<std::size_t>(o * (2 * n + 1) + 1 + 2 * j)] =
            vals[static_cast<std::size_t>(o * n + j)];
    Tensor buf = from_values(bvals, big, dt);
    out.push_back({"step2_slice", buf.slice(static_cast<int64_t>(rank) - 1, 1, 2 * n + 1, 2)});
  }

  // A dim of size > 1 along which every value repeats can be a stride-0 broadcast.
  if (numel_of(shape) > 0) {
    for (std::size_t d = 0; d < rank; ++d) {
      if (shape[d] <= 1) continue;
      Shape one = shape;
      one[d] = 1;
      std::vector<double> reduced(static_cast<std::size_t>(numel_of(one)));
      for (int64_t i = 0; i < numel_of(one); ++i)
        reduced[static_cast<std::size_t>(i)] = vals[static_cast<std::size_t>(
            broadcast_source(unravel(i, one), shape, one))];
      if (broadcast_values(reduced, one, shape) != vals) continue;
      out.push_back({"broadcast(dim " + std::to_string(d) + ")",
                     from_values(reduced, one, dt).expand(shape)});
      break;
    }
  }
  return out;
}

// ---- seeded test data -------------------------------------------------------

/// Where random test values lie. Floating dtypes draw uniformly from [lo, hi];
/// integer dtypes from [ilo, ihi] clipped to the dtype (uint8 from 0); bool from {0, 1}
/// (only 1 when ilo > 0). `nonzero` redraws values with |x| < 0.05 (or == 0 for ints).
/// `integers` makes floating dtypes draw whole numbers from [ilo, ihi] too (ties for
/// comparisons, exact results).
struct Domain {
  double lo = -3.0;
  double hi = 3.0;
  int64_t ilo = -10;
  int64_t ihi = 10;
  bool nonzero = false;
  bool integers = false;

  static Domain any() { return {}; }
  static Domain positive() { return {0.05, 4.0, 1, 10, false}; }
  static Domain nonneg() { return {0.0, 4.0, 0, 10, false}; }
  static Domain nonzero_any() { return {-3.0, 3.0, -10, 10, true}; }
  static Domain range(double lo, double hi, int64_t ilo, int64_t ihi) {
    return {lo, hi, ilo, ihi, false};
  }
};

/// `n` values representable in `dt`, drawn from `dom` with `rng`.
inline std::vector<double> random_values(std::size_t n, DType dt, const Domain& dom,
                                         std::mt19937& rng) {
  std::vector<double> v;
  v.reserve(n);
  if (is_floating(dt) && !dom.integers) {
    std::uniform_real_distribution<double> u(dom.lo, dom.hi);
    while (v.size() < n) {
      const double x = cast_value(u(rng), dt);
      if (dom.nonzero && std::abs(x) < 0.05) continue;
      v.push_back(x);
    }
    return v;
  }
  int64_t lo = dom.ilo, hi = dom.ihi;
  if (dt == bool_) {
    lo = std::clamp<int64_t>(lo, 0, 1);
    hi = std::clamp<int64_t>(hi, 0, 1);
  } else if (dt == uint8) {
    lo = std::clamp<int64_t>(lo, 0, 255);
    hi = std::clamp<int64_t>(hi, 0, 255);
  } else if (dt == int32 || dt == float32) {
    lo = std::clamp<int64_t>(lo, INT32_MIN, INT32_MAX);
    hi = std::clamp<int64_t>(hi, INT32_MIN, INT32_MAX);
  }
  if (hi < lo) hi = lo;
  if (dom.nonzero && lo == 0 && hi == 0) hi = 1;
  std::uniform_int_distribution<int64_t> u(lo, hi);
  while (v.size() < n) {
    const int64_t x = u(rng);
    if (dom.nonzero && x == 0) continue;
    v.push_back(static_cast<double>(x));
  }
  return v;
}

/// A deterministic fill for `pattern_values`: element i of data set `seed` uses
/// k = i * step + seed * seed_step; bool is k % 3 != 0; uint8 is k % uint8_mod; int32 and
/// int64 are k % int_mod - int_mod / 2; floating dtypes are amp * sin(freq * k + phase),
/// or 0 where k % zero_mod == zero_mod / 2 (when zero_mod > 0).
struct Pattern {
  int64_t step;
  int64_t seed_step;
  int64_t uint8_mod;
  int64_t int_mod;
  double amp;
  double freq;
  double phase;
  int64_t zero_mod = 0;
};

/// `n` values of `pattern` for data set `seed` (seed >= 0), as stored in `dt` (cast_value).
inline std::vector<double> pattern_values(DType dt, int64_t n, int seed, const Pattern& p) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i * p.step + seed * p.seed_step;
    double x;
    switch (dt) {
      case DType::bool_: x = (k % 3) != 0; break;
      case DType::uint8: x = static_cast<double>(k % p.uint8_mod); break;
      case DType::int32:
      case DType::int64: x = static_cast<double>(k % p.int_mod - p.int_mod / 2); break;
      default:
        x = p.zero_mod > 0 && k % p.zero_mod == p.zero_mod / 2
                ? 0.0
                : p.amp * std::sin(p.freq * static_cast<double>(k) + p.phase);
        break;
    }
    v[static_cast<std::size_t>(i)] = cast_value(x, dt);
  }
  return v;
}

/// A contiguous tensor of random values (see Domain), reproducible from `seed`.
inline Tensor random_tensor(const Shape& shape, DType dt, const Domain& dom = {},
                            uint32_t seed = 1234) {
  std::mt19937 rng(seed);
  return from_values(random_values(static_cast<std::size_t>(numel_of(shape)), dt, dom, rng),
                     shape, dt);
}

}  // namespace ember::test
