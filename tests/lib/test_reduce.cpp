// Reductions (reduce.def) and softmax/log_softmax against a float64 reference
// computed here, over every dtype, axis set and layout.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <ember/ember.h>

#include "support/reference.h"

namespace em = ember;

namespace {

using Vec = std::vector<double>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

const em::DType kDTypes[] = {em::bool_, em::uint8, em::int32, em::int64, em::float32, em::float64};

// ---- small layout helpers ---------------------------------------------------

using Tol = em::test::Tolerance;
using em::test::from_values;
using em::test::mismatch;
using em::test::numel_of;
using em::test::ravel;
using em::test::unravel;

// Deterministic sample values that fit dtype `dt` (ints small enough that
// products over 24 elements stay exact in double).
Vec sample(em::DType dt, int64_t n, int seed) {
  return em::test::pattern_values(dt, n, seed, {37, 11, 5, 9, 3.0, 0.37, 0.1, 7});
}

struct Layout {
  std::string name;
  em::Tensor t;
  Vec v;  // logical values, row-major over t.shape()
};

// The same logical values in several memory layouts: contiguous, every dim
// reversed (permute), a step-2 slice of the last dim at an odd offset, and one
// dim expanded from size 1 (stride 0; its values repeat along that dim).
std::vector<Layout> layouts(const em::Shape& s, em::DType dt, int seed) {
  const int64_t n = numel_of(s);
  const int64_t r = static_cast<int64_t>(s.size());
  const Vec v = sample(dt, n, seed);
  std::vector<Layout> out;
  out.push_back({"contiguous", from_values(v, s, dt), v});
  if (r >= 2) {
    em::Shape rs = s;
    std::reverse(rs.begin(), rs.end());
    Vec rv(v.size());
    for (int64_t i = 0; i < n; ++i) {
      auto idx = unravel(i, s);
      std::reverse(idx.begin(), idx.end());
      rv[static_cast<std::size_t>(ravel(idx, rs))] = v[static_cast<std::size_t>(i)];
    }
    em::Axes p;
    for (int64_t d = r - 1; d >= 0; --d) p.push_back(d);
    em::Tensor t = from_values(rv, rs, dt).permute(p);
    out.push_back({"permuted", t, v});
  }
  if (r >= 1) {
    em::Shape bs = s;
    const int64_t last = s[r - 1];
    bs[r - 1] = 2 * last + 1;
    Vec bv(static_cast<std::size_t>(numel_of(bs)), em::test::cast_value(1, dt));
    for (int64_t i = 0; i < n; ++i) {
      auto idx = unravel(i, s);
      idx[r - 1] = 2 * idx[r - 1] + 1;
      bv[static_cast<std::size_t>(ravel(idx, bs))] = v[static_cast<std::size_t>(i)];
    }
    out.push_back({"step-2 slice", from_values(bv, bs, dt).slice(-1, 1, 2 * last + 1, 2), v});
  }
  for (int64_t e = 0; e < r; ++e) {
    if (s[e] <= 1) continue;
    em::Shape bs = s;
    bs[e] = 1;
    const Vec bv = sample(dt, numel_of(bs), seed + 1);
    Vec ev(v.size());
    for (int64_t i = 0; i < n; ++i) {
      auto idx = unravel(i, s);
      idx[e] = 0;
      ev[static_cast<std::size_t>(i)] = bv[static_cast<std::size_t>(ravel(idx, bs))];
    }
    out.push_back({fmt::format("expanded dim {}", e), from_values(bv, bs, dt).expand(s), ev});
    break;
  }
  return out;
}

// ---- float64 reference -------------------------------------------------------

struct Ref {
  em::Shape shape;
  Vec v;
};

using Fold = std::function<double(const Vec&)>;

// Reduces `v` (logical shape `s`) over `axes` ({} = all; negative allowed),
// applying `f` to each group of reduced elements taken in row-major order.
Ref ref_reduce(const Vec& v, const em::Shape& s, const em::Axes& axes, bool keep, const Fold& f) {
  const int64_t r = static_cast<int64_t>(s.size());
  std::vector<bool> red(static_cast<std::size_t>(r), axes.empty());
  for (int64_t a : axes) red[static_cast<std::size_t>(a < 0 ? a + r : a)] = true;
  em::Shape os, kept;
  for (int64_t d = 0; d < r; ++d) {
    if (!red[d]) {
      os.push_back(s[d]);
      kept.push_back(s[d]);
    } else if (keep) {
      os.push_back(1);
    }
  }
  std::vector<Vec> groups(static_cast<std::size_t>(numel_of(kept)));
  for (int64_t i = 0; i < numel_of(s); ++i) {
    auto idx = unravel(i, s);
    std::vector<int64_t> k;
    for (int64_t d = 0; d < r; ++d)
      if (!red[d]) k.push_back(idx[d]);
    groups[static_cast<std::size_t>(ravel(k, kept))].push_back(v[static_cast<std::size_t>(i)]);
  }
  Ref out{os, {}};
  for (const Vec& g : groups) out.v.push_back(f(g));
  return out;
}

double r_sum(const Vec& g) {
  double s = 0;
  for (double x : g) s += x;
  return s;
}
double r_prod(const Vec& g) {
  double s = 1;
  for (double x : g) s *= x;
  return s;
}
// Integer products wrap like int64 arithmetic (two's complement), as in PyTorch.
double r_prod_wrap(const Vec& g) {
  uint64_t s = 1;
  for (double x : g) s *= static_cast<uint64_t>(static_cast<int64_t>(x));
  return static_cast<double>(static_cast<int64_t>(s));
}
double r_mean(const Vec& g) { return g.empty() ? kNaN : r_sum(g) / static_cast<double>(g.size()); }
double r_extreme(const Vec& g, bool is_max) {
  double r = g.at(0);
  for (double x : g) {
    if (std::isnan(x)) return x;
    r = is_max ? std::max(r, x) : std::min(r, x);
  }
  return r;
}
double r_arg(const Vec& g, bool is_max) {
  std::size_t best = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i])) return static_cast<double>(i);
    if (is_max ? g[i] > g[best] : g[i] < g[best]) best = i;
  }
  return static_cast<double>(best);
}
double r_var(const Vec& g, double corr) {
  const double n = static_cast<double>(g.size());
  if (n - corr <= 0) return kNaN;
  const double m = r_sum(g) / n;
  double ss = 0;
  for (double x : g) ss += (x - m) * (x - m);
  return ss / (n - corr);
}
double r_all(const Vec& g) {
  for (double x : g)
    if (x == 0) return 0;
  return 1;
}
double r_any(const Vec& g) {
  for (double x : g)
    if (x != 0) return 1;
  return 0;
}

// ---- comparison --------------------------------------------------------------

Tol tol_for(em::DType dt) {
  if (dt == em::float32) return {2e-5, 2e-5};
  if (dt == em::float64) return {1e-11, 1e-11};
  return {0, 0};
}

// ---- the op table ------------------------------------------------------------

enum class Out { sum, to_float, same, index, boolean };

struct ReduceOp {
  std::string name;
  Out rule;
  std::function<em::Tensor(const em::Tensor&, const em::Axes&, bool)> call;
  Fold fold;
  bool needs_nonempty = false;
};

em::DType out_dtype(Out rule, em::DType in) {
  const bool fl = em::is_floating(in);
  switch (rule) {
    case Out::sum: return fl ? in : em::int64;
    case Out::to_float: return fl ? in : em::float32;
    case Out::same: return in;
    case Out::index: return em::int64;
    case Out::boolean: return em::bool_;
  }
  return in;
}

std::vector<ReduceOp> reduce_ops() {
  return {
      {"sum", Out::sum, [](auto& x, auto& a, bool k) { return em::sum(x, a, k); }, r_sum},
      {"prod", Out::sum, [](auto& x, auto& a, bool k) { return em::prod(x, a, k); }, r_prod},
      {"mean", Out::to_float, [](auto& x, auto& a, bool k) { return em::mean(x, a, k); }, r_mean},
      {"max", Out::same, [](auto& x, auto& a, bool k) { return em::max(x, a, k); },
       [](const Vec& g) { return r_extreme(g, true); }, true},
      {"min", Out::same, [](auto& x, auto& a, bool k) { return em::min(x, a, k); },
       [](const Vec& g) { return r_extreme(g, false); }, true},
      {"var", Out::to_float, [](auto& x, auto& a, bool k) { return em::var(x, a, k); },
       [](const Vec& g) { return r_var(g, 1); }},
      {"var(correction=0)", Out::to_float,
       [](auto& x, auto& a, bool k) { return em::var(x, a, k, 0); },
       [](const Vec& g) { return r_var(g, 0); }},
      {"std", Out::to_float, [](auto& x, auto& a, bool k) { return em::std(x, a, k); },
       [](const Vec& g) { return std::sqrt(r_var(g, 1)); }},
      {"std(correction=0)", Out::to_float,
       [](auto& x, auto& a, bool k) { return em::std(x, a, k, 0); },
       [](const Vec& g) { return std::sqrt(r_var(g, 0)); }},
      {"all", Out::boolean, [](auto& x, auto& a, bool k) { return em::all(x, a, k); }, r_all},
      {"any", Out::boolean, [](auto& x, auto& a, bool k) { return em::any(x, a, k); }, r_any},
  };
}

// Runs every reduction of the table over `s` in every layout, dtype, axis set
// and keepdims; returns one failure line per mismatch, per op.
void check_table(const em::Shape& s, const std::vector<em::Axes>& axis_sets, int seed) {
  for (const ReduceOp& op : reduce_ops()) {
    std::vector<std::string> fails;
    int checked = 0;
    for (em::DType dt : kDTypes) {
      for (const Layout& L : layouts(s, dt, seed)) {
        for (const em::Axes& axes : axis_sets) {
          for (bool keep : {false, true}) {
            const std::string where =
                fmt::format("{} {} {} [{}] keepdims={}", op.name, em::dtype_name(dt), L.name,
                            fmt::join(axes, ","), keep);
            const em::DType odt = out_dtype(op.rule, dt);
            const bool wrap = op.name == "prod" && !em::is_floating(dt);
            const Ref want = ref_reduce(L.v, s, axes, keep, wrap ? Fold(r_prod_wrap) : op.fold);
            try {
              em::Tensor got = op.call(L.t, axes, keep);
              std::string m = mismatch(got, want.shape, odt, want.v, tol_for(odt));
              if (!m.empty()) fails.push_back(where + ": " + m);
            } catch (const std::exception& e) {
              fails.push_back(where + ": threw " + e.what());
            }
            ++checked;
          }
        }
      }
    }
    INFO(op.name << ": " << fails.size() << " of " << checked << " cases fail; first: "
                 << (fails.empty() ? "" : fails[0])
                 << (fails.size() > 1 ? "\n  next: " + fails[1] : "")
                 << (fails.size() > 2 ? "\n  next: " + fails[2] : ""));
    CHECK(fails.empty());
  }
}

// Sets the thread count for a scope and restores the previous one.
struct Threads {
  int saved;
  explicit Threads(int n) : saved(em::get_num_threads()) { em::set_num_threads(n); }
  ~Threads() { em::set_num_threads(saved); }
};

// Calls `run` (which appends results to its argument) with 1 and then 2 threads
// and CHECKs that each 2-thread result matches the 1-thread one within `tol(result)`.
template <class Run, class TolOf>
void check_threads_agree(Run run, TolOf tol) {
  std::vector<em::Tensor> one, two;
  {
    Threads th(1);
    run(one);
  }
  {
    Threads th(2);
    run(two);
  }
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    INFO("result " << i);
    CHECK(mismatch(two[i], one[i], tol(one[i])) == "");
  }
}

}  // namespace

// ---- reductions: the table ---------------------------------------------------

TEST_CASE("reductions match the float64 reference on a 3-d tensor in every layout", "[reduce]") {
  check_table({2, 3, 4},
              {{}, {0}, {1}, {2}, {-1}, {-3}, {0, 2}, {2, 0}, {0, 1}, {1, 2}, {-1, 0, 1}}, 1);
}

TEST_CASE("reductions match the reference with size-1 dims", "[reduce]") {
  check_table({3, 1, 5, 1}, {{}, {1}, {3}, {1, 3}, {0, 1}, {2}, {-2}, {0, 2}, {0, 3}}, 2);
}

TEST_CASE("reductions match the reference on 1-d and 2-d tensors (inner and row-mode paths)",
          "[reduce]") {
  check_table({37}, {{}, {0}, {-1}}, 3);
  // [R, C] contiguous: axis 0 is the row-mode (outer) path, axis 1 the inner path.
  check_table({9, 70}, {{}, {0}, {1}, {-2}}, 4);
}

TEST_CASE("row-mode and inner reductions agree with each other", "[reduce]") {
  for (em::DType dt : kDTypes) {
    const Vec v = sample(dt, 33 * 70, 5);
    em::Tensor x = from_values(v, {33, 70}, dt);        // sum over 0: row mode
    em::Tensor xt = x.t().contiguous();           // [70, 33]: sum over 1: inner
    INFO(em::dtype_name(dt));
    const Tol tol = dt == em::float32 ? Tol{1e-4, 1e-4} : tol_for(em::float64);
    CHECK(mismatch(em::sum(x, {0}), em::sum(xt, {1}), tol) == "");
    CHECK(mismatch(em::prod(from_values(sample(dt, 4 * 70, 6), {4, 70}, dt), {0}),
                   em::prod(from_values(sample(dt, 4 * 70, 6), {4, 70}, dt).t().contiguous(), {1}),
                   tol) == "");
    CHECK(mismatch(em::max(x, {0}), em::max(xt, {1}), tol) == "");
    CHECK(mismatch(em::min(x, {0}), em::min(xt, {1}), tol) == "");
    CHECK(mismatch(em::mean(x, {0}), em::mean(xt, {1}), tol_for(em::float32)) == "");
  }
}

// ---- result dtypes -----------------------------------------------------------

TEST_CASE("reduction result dtypes", "[reduce]") {
  for (em::DType dt : kDTypes) {
    em::Tensor x = from_values(sample(dt, 6, 7), {2, 3}, dt);
    INFO(em::dtype_name(dt));
    const bool fl = em::is_floating(dt);
    CHECK(em::sum(x).dtype() == (fl ? dt : em::int64));
    CHECK(em::prod(x).dtype() == (fl ? dt : em::int64));
    CHECK(em::mean(x).dtype() == (fl ? dt : em::float32));
    CHECK(em::var(x).dtype() == (fl ? dt : em::float32));
    CHECK(em::std(x).dtype() == (fl ? dt : em::float32));
    CHECK(em::max(x).dtype() == dt);
    CHECK(em::min(x).dtype() == dt);
    CHECK(em::argmax(x).dtype() == em::int64);
    CHECK(em::argmin(x, 1).dtype() == em::int64);
    CHECK(em::all(x).dtype() == em::bool_);
    CHECK(em::any(x, {0}).dtype() == em::bool_);
  }
}

TEST_CASE("reduction methods on Tensor equal the free functions", "[reduce]") {
  em::Tensor x = from_values(sample(em::float32, 24, 8), {2, 3, 4}, em::float32);
  CHECK(em::equal(x.sum({1}), em::sum(x, {1})));
  CHECK(em::equal(x.mean({0, 2}, true), em::mean(x, {0, 2}, true)));
  CHECK(em::equal(x.prod({-1}), em::prod(x, {-1})));
  CHECK(em::equal(x.max({2}), em::max(x, {2})));
  CHECK(em::equal(x.min(), em::min(x)));
  CHECK(em::equal(x.argmax(1), em::argmax(x, 1)));
  CHECK(em::equal(x.argmin(-1, true), em::argmin(x, -1, true)));
  CHECK(em::equal(x.var({1}, false, 0), em::var(x, {1}, false, 0)));
  CHECK(em::equal(x.std({1}), em::std(x, {1})));
  CHECK(em::equal(x.all({0}), em::all(x, {0})));
  CHECK(em::equal(x.any(), em::any(x)));
  CHECK(x.sum().item<float>() == Approx(r_sum(x.to_vector<double>())).epsilon(1e-5));
}

TEST_CASE("int64 reductions are exact beyond 2^53 (inner and row-mode paths)", "[reduce]") {
  const int64_t B = int64_t(1) << 53;
  em::Tensor x = em::tensor(std::vector<int64_t>{B, 1, B + 3, 7}, {2, 2});
  CHECK(em::sum(x, {0}).to_vector<int64_t>() == std::vector<int64_t>{2 * B + 3, 8});
  CHECK(em::sum(x, {1}).to_vector<int64_t>() == std::vector<int64_t>{B + 1, B + 10});
  CHECK(em::sum(x).item<int64_t>() == 2 * B + 11);
  CHECK(em::max(x, {0}).to_vector<int64_t>() == std::vector<int64_t>{B + 3, 7});
  CHECK(em::max(x, {1}).to_vector<int64_t>() == std::vector<int64_t>{B, B + 3});
  CHECK(em::min(x.t(), {1}).to_vector<int64_t>() == std::vector<int64_t>{B, 1});
  CHECK(em::prod(x, {1}).to_vector<int64_t>() == std::vector<int64_t>{B, 7 * (B + 3)});
  em::Tensor y = em::tensor(std::vector<int64_t>{B + 1, B});
  CHECK(em::argmax(y).item<int64_t>() == 0);
  CHECK(em::argmin(y).item<int64_t>() == 1);
  CHECK(em::argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
}

// ---- argmax / argmin -----------------------------------------------------------

TEST_CASE("argmax and argmin match the reference along every axis and flattened", "[reduce]") {
  const em::Shape s{2, 3, 4};
  for (em::DType dt : kDTypes) {
    for (const Layout& L : layouts(s, dt, 9)) {
      for (bool is_max : {true, false}) {
        auto fold = [is_max](const Vec& g) { return r_arg(g, is_max); };
        auto call = [&](std::optional<int64_t> axis, bool keep) {
          return is_max ? em::argmax(L.t, axis, keep) : em::argmin(L.t, axis, keep);
        };
        for (bool keep : {false, true}) {
          INFO((is_max ? "argmax " : "argmin ") << em::dtype_name(dt) << " " << L.name
                                                 << " keepdims=" << keep);
          for (int64_t axis : {0, 1, 2, -1, -3}) {
            INFO("axis " << axis);
            const Ref want = ref_reduce(L.v, s, {axis}, keep, fold);
            CHECK(mismatch(call(axis, keep), want.shape, em::int64, want.v, {0, 0}) == "");
          }
          // No axis: the index into the flattened tensor.
          const Ref flat = ref_reduce(L.v, s, {}, false, fold);
          const em::Shape fs = keep ? em::Shape{1, 1, 1} : em::Shape{};
          CHECK(mismatch(call(std::nullopt, keep), fs, em::int64, flat.v, {0, 0}) == "");
        }
      }
    }
  }
}

TEST_CASE("argmax and argmin take the first index on ties", "[reduce]") {
  CHECK(em::argmax(em::tensor({3.f, 1.f, 3.f, 2.f})).item<int64_t>() == 0);
  CHECK(em::argmin(em::tensor({2, 1, 5, 1})).item<int64_t>() == 1);
  CHECK(em::argmax(em::tensor({1, 7, 7, 7})).item<int64_t>() == 1);
  CHECK(em::argmax(em::ones({5}, em::bool_)).item<int64_t>() == 0);
  CHECK(em::argmin(em::zeros({4}, em::uint8)).item<int64_t>() == 0);
  // Along axis 0 of a 2-d tensor (strided runs).
  em::Tensor x = em::tensor({{1.0, 5.0, 2.0}, {4.0, 5.0, 2.0}, {4.0, 0.0, 9.0}});
  CHECK(em::argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 2});
  CHECK(em::argmin(x, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 2, 0});
  // A long contiguous run (SIMD-sized) with the max repeated.
  std::vector<float> v(100, 0.f);
  v[17] = 8.f;
  v[63] = 8.f;
  v[99] = 8.f;
  CHECK(em::argmax(em::tensor(v)).item<int64_t>() == 17);
  for (auto& f : v) f = -f;
  CHECK(em::argmin(em::tensor(v)).item<int64_t>() == 17);
}

TEST_CASE("argmax and argmin of rows of every length 1..70, the extreme, a tie or a NaN anywhere",
          "[reduce]") {
  // Row r of an [n, n] matrix has its extreme at r and again at a later
  // column; a second matrix has NaNs instead. Covers the SIMD search and its
  // scalar tail at every vector width.
  for (em::DType dt : {em::float32, em::float64}) {
    for (int64_t n = 1; n <= 70; ++n) {
      INFO(em::dtype_name(dt) << " rows of " << n);
      Vec v(static_cast<std::size_t>(n * n)), w;
      for (int64_t i = 0; i < n * n; ++i) v[i] = 0.001 * static_cast<double>((i * 7919) % 1000) - 0.5;
      w = v;
      for (int64_t r = 0; r < n; ++r) {
        v[r * n + r] = 2.0;
        v[r * n + (r + n / 2) % n] = 2.0;  // a tie (or the same column when n is 1)
        w[r * n + r] = kNaN;
        w[r * n + (r + 3) % n] = kNaN;
      }
      Vec vmin = v;
      for (double& x : vmin) x = -x;
      const em::Shape s{n, n};
      for (bool is_max : {true, false}) {
        const Vec& vals = is_max ? v : vmin;
        const em::Tensor x = from_values(vals, s, dt), y = from_values(w, s, dt);
        auto fold = [is_max](const Vec& g) { return r_arg(g, is_max); };
        const Ref want = ref_reduce(vals, s, {1}, false, fold), nan = ref_reduce(w, s, {1}, false, fold);
        CHECK(mismatch(is_max ? em::argmax(x, 1) : em::argmin(x, 1), want.shape, em::int64, want.v, {0, 0}) == "");
        CHECK(mismatch(is_max ? em::argmax(y, 1) : em::argmin(y, 1), nan.shape, em::int64, nan.v, {0, 0}) == "");
      }
    }
  }
  // +0 and -0 tie: the first wins, whichever sign it has.
  std::vector<float> z(40, -1.f);
  z[21] = -0.f;
  z[30] = 0.f;
  CHECK(em::argmax(em::tensor(z)).item<int64_t>() == 21);
  z[21] = 0.f;
  z[30] = -0.f;
  CHECK(em::argmax(em::tensor(z)).item<int64_t>() == 21);
}

// ---- NaN -------------------------------------------------------------------------

TEST_CASE("max, min, argmax and argmin propagate NaN (first NaN index)", "[reduce]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  em::Tensor x = em::tensor({1.f, nan, 5.f, nan, -2.f});
  CHECK(std::isnan(em::max(x).item<float>()));
  CHECK(std::isnan(em::min(x).item<float>()));
  CHECK(em::argmax(x).item<int64_t>() == 1);
  CHECK(em::argmin(x).item<int64_t>() == 1);

  // Long contiguous runs (SIMD paths), NaN at different positions, both dtypes.
  for (int64_t n : {7, 16, 40, 1000}) {
    for (int64_t at : {int64_t(0), n / 2, n - 1}) {
      INFO("n=" << n << " NaN at " << at);
      std::vector<double> v(static_cast<std::size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[i] = std::cos(0.3 * static_cast<double>(i)) * 10;
      v[at] = kNaN;
      if (at + 1 < n) v[at + 1] = kNaN;
      for (em::DType dt : {em::float32, em::float64}) {
        em::Tensor t = from_values(v, {n}, dt);
        CHECK(std::isnan(em::max(t).item<double>()));
        CHECK(std::isnan(em::min(t).item<double>()));
        CHECK(em::argmax(t).item<int64_t>() == at);
        CHECK(em::argmin(t).item<int64_t>() == at);
      }
    }
  }

  // Per column of a 2-d tensor: row mode (axis 0) and strided runs.
  em::Tensor m = em::tensor({{1.f, 2.f, 3.f}, {4.f, nan, 6.f}, {7.f, 8.f, nan}});
  auto mx = em::max(m, {0}).to_vector<float>();
  CHECK(mx[0] == 7.f);
  CHECK(std::isnan(mx[1]));
  CHECK(std::isnan(mx[2]));
  auto mn = em::min(m, {0}).to_vector<float>();
  CHECK(mn[0] == 1.f);
  CHECK(std::isnan(mn[1]));
  CHECK(std::isnan(mn[2]));
  CHECK(em::argmax(m, 0).to_vector<int64_t>() == std::vector<int64_t>{2, 1, 2});
  CHECK(em::argmin(m, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2});
  auto mx1 = em::max(m, {1}).to_vector<float>();
  CHECK(mx1[0] == 3.f);
  CHECK(std::isnan(mx1[1]));
  CHECK(std::isnan(mx1[2]));
  // Transposed input (strided runs).
  auto mxt = em::max(m.t(), {1}).to_vector<float>();
  CHECK(mxt[0] == 7.f);
  CHECK(std::isnan(mxt[1]));
  // NaN in the first element of a row-mode column.
  em::Tensor first = em::tensor({{nan, 1.f}, {2.f, 3.f}});
  CHECK(std::isnan(em::max(first, {0}).to_vector<float>()[0]));
  CHECK(std::isnan(em::min(first, {0}).to_vector<float>()[0]));
  // sum and mean propagate NaN too.
  CHECK(std::isnan(em::sum(x).item<float>()));
  CHECK(std::isnan(em::mean(x).item<float>()));
}

// ---- var / std ------------------------------------------------------------------

TEST_CASE("var and std with correction 0 and 1", "[reduce]") {
  em::Tensor x = em::tensor({2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0});
  CHECK(em::var(x, {}, false, 0).item<double>() == Approx(4.0));
  CHECK(em::std(x, {}, false, 0).item<double>() == Approx(2.0));
  CHECK(em::var(x).item<double>() == Approx(32.0 / 7.0));
  CHECK(em::std(x).item<double>() == Approx(std::sqrt(32.0 / 7.0)));
  // ints compute in double and return float32
  em::Tensor xi = em::tensor({1, 2, 3, 4});
  CHECK(em::var(xi).dtype() == em::float32);
  CHECK(em::var(xi).item<float>() == Approx(5.0 / 3.0));
  CHECK(em::var(xi, {}, false, 0).item<float>() == Approx(1.25));
  // per row
  em::Tensor m = em::tensor({{1.f, 3.f}, {2.f, 2.f}, {0.f, 10.f}});
  auto v1 = em::var(m, {1}).to_vector<float>();
  CHECK(v1[0] == Approx(2.0));
  CHECK(v1[1] == Approx(0.0));
  CHECK(v1[2] == Approx(50.0));
  auto s0 = em::std(m, {0}, true, 0);
  CHECK(s0.shape() == em::Shape{1, 2});
  CHECK(s0.to_vector<float>()[0] == Approx(std::sqrt(2.0 / 3.0)));
  // Large offsets do not lose precision (two-pass in double).
  em::Tensor big = em::tensor({1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0});
  CHECK(em::var(big).item<double>() == Approx(1.0));
}

TEST_CASE("var of long runs: chunks merged exactly, a large offset, strided runs, inf", "[reduce]") {
  // Many 4096-element chunks, a ragged tail, the threaded path; values near
  // 1000 whose deviations are below 1 (float32 keeps ~4 digits of them).
  const int64_t n = 4096 * 70 + 123;
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = 1000.f + static_cast<float>((i * 7919) % 1000) / 1000.f;
  auto reference = [](const std::vector<float>& a, std::size_t first, std::size_t step, double corr) {
    double mean = 0, m2 = 0;
    std::size_t cnt = 0;
    for (std::size_t i = first; i < a.size(); i += step, ++cnt) mean += a[i];
    mean /= static_cast<double>(cnt);
    for (std::size_t i = first; i < a.size(); i += step) m2 += (a[i] - mean) * (a[i] - mean);
    return m2 / (static_cast<double>(cnt) - corr);
  };
  const em::Tensor x = em::tensor(v, {n});
  CHECK(em::var(x).item<float>() == Approx(reference(v, 0, 1, 1)).epsilon(1e-5));
  CHECK(em::var(x.to(em::float64), {}, false, 0).item<double>() == Approx(reference(v, 0, 1, 0)).epsilon(1e-12));
  // Strided runs (columns of a [rows, 3] matrix), several chunks each.
  const int64_t rows = n / 3;
  std::vector<float> w(v.begin(), v.begin() + rows * 3);
  const auto cols = em::var(em::tensor(w, {rows, 3}), {0}).to_vector<float>();
  for (std::size_t c = 0; c < 3; ++c) CHECK(cols[c] == Approx(reference(w, c, 3, 1)).epsilon(1e-5));
  // Per-row runs (contiguous, M > 1), several chunks each.
  const auto rowv = em::var(em::tensor(w, {3, rows}), {1}).to_vector<float>();
  for (std::size_t r = 0; r < 3; ++r) {
    std::vector<float> part(w.begin() + static_cast<std::ptrdiff_t>(r * rows),
                            w.begin() + static_cast<std::ptrdiff_t>((r + 1) * rows));
    CHECK(rowv[r] == Approx(reference(part, 0, 1, 1)).epsilon(1e-5));
  }
  // Deviations of one ulp: the chunk mean's own rounding must not inflate the
  // result (Note [Moments of a chunk]). Exact: 4096 values, half 1 and half
  // 1 + 2^-23: M2 = 4096 * 2^-48, var = M2 / 4095.
  std::vector<float> ulp(4096);
  for (std::size_t i = 0; i < ulp.size(); ++i) ulp[i] = i % 2 ? std::nextafter(1.0f, 2.0f) : 1.0f;
  const double exact = 4096.0 * std::ldexp(1.0, -48) / 4095.0;
  CHECK(em::var(em::tensor(ulp, {4096})).item<float>() == Approx(exact).epsilon(1e-3));
  CHECK(em::var(em::tensor(ulp, {4096}).to(em::float64)).item<double>() == Approx(exact).epsilon(1e-9));
  // A constant run has no variance at all.
  CHECK(em::var(em::full({5000}, 1234.5f)).item<float>() == 0.0f);
  // An infinity anywhere gives NaN, as in PyTorch: in a run of many chunks
  // and in a run of one.
  v[static_cast<std::size_t>(n / 2)] = std::numeric_limits<float>::infinity();
  CHECK(std::isnan(em::var(em::tensor(v, {n})).item<float>()));
  CHECK(std::isnan(em::var(em::tensor(std::vector<float>(v.begin() + n / 2 - 50, v.begin() + n / 2 + 50), {100}))
                       .item<float>()));
}

TEST_CASE("var and std give NaN when n <= correction", "[reduce]") {
  CHECK(std::isnan(em::var(em::tensor({5.0})).item<double>()));
  CHECK(std::isnan(em::std(em::tensor({5.0})).item<double>()));
  CHECK(em::var(em::tensor({5.0}), {}, false, 0).item<double>() == 0.0);
  CHECK(std::isnan(em::var(em::tensor({1.0, 2.0}), {}, false, 2).item<double>()));
  CHECK(std::isnan(em::std(em::tensor({1.f, 2.f}), {}, false, 3).item<float>()));
  // per row: a size-1 reduced dim with correction 1
  auto r = em::var(em::tensor({{1.f}, {2.f}}), {1}).to_vector<float>();
  REQUIRE(r.size() == 2);
  CHECK(std::isnan(r[0]));
  CHECK(std::isnan(r[1]));
  // 0-d input: n = 1
  CHECK(std::isnan(em::var(em::scalar_tensor(3.0)).item<double>()));
  CHECK(em::var(em::scalar_tensor(3.0), {}, false, 0).item<double>() == 0.0);
}

// ---- all / any -------------------------------------------------------------------

TEST_CASE("all and any over rows with and without zeros, every dtype", "[reduce]") {
  const Vec v = {0, 0, 0, 1, 2, 3, 0, 5, 1, 0, 0, 0};
  for (em::DType dt : kDTypes) {
    INFO(em::dtype_name(dt));
    em::Tensor x = from_values(v, {3, 4}, dt);  // rows [0,0,0,1], [2,3,0,5], [1,0,0,0]
    em::Tensor z = em::zeros({3, 4}, dt);
    em::Tensor o = em::ones({3, 4}, dt);
    CHECK(em::all(x, {1}).to_vector<bool>() == std::vector<bool>{false, false, false});
    CHECK(em::any(x, {1}).to_vector<bool>() == std::vector<bool>{true, true, true});
    CHECK(em::any(x, {0}).to_vector<bool>() == std::vector<bool>{true, true, false, true});
    CHECK(em::all(o).item<bool>());
    CHECK_FALSE(em::all(x).item<bool>());
    CHECK_FALSE(em::any(z).item<bool>());
    CHECK(em::any(x).item<bool>());
    CHECK(em::all(o, {0}, true).shape() == em::Shape{1, 4});
    CHECK(em::any(z.t(), {1}).to_vector<bool>() == std::vector<bool>{false, false, false, false});
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(em::all(em::tensor({nan, 1.f})).item<bool>());  // NaN is truthy
  CHECK(em::all(em::tensor({-0.0, 1.0})).item<bool>() == false);
}

// ---- 0-d and empty inputs --------------------------------------------------------

TEST_CASE("reductions of a 0-d tensor", "[reduce]") {
  for (em::DType dt : kDTypes) {
    INFO(em::dtype_name(dt));
    const double val = dt == em::bool_ ? 1 : 3;
    em::Tensor x = from_values({val}, {}, dt);
    for (const em::Axes& axes : {em::Axes{}, em::Axes{0}, em::Axes{-1}}) {
      for (bool keep : {false, true}) {
        INFO("axes size " << axes.size() << " keepdims " << keep);
        CHECK(em::sum(x, axes, keep).shape() == em::Shape{});
        CHECK(em::sum(x, axes, keep).item<double>() == val);
        CHECK(em::prod(x, axes, keep).item<double>() == val);
        CHECK(em::mean(x, axes, keep).item<double>() == val);
        CHECK(em::max(x, axes, keep).item<double>() == val);
        CHECK(em::min(x, axes, keep).item<double>() == val);
        CHECK(em::var(x, axes, keep, 0).item<double>() == 0.0);
        CHECK(em::all(x, axes, keep).item<bool>());
        CHECK(em::any(x, axes, keep).item<bool>());
      }
    }
    CHECK(em::argmax(x).item<int64_t>() == 0);
    CHECK(em::argmax(x).shape() == em::Shape{});
    CHECK(em::argmin(x, 0).item<int64_t>() == 0);
    CHECK(em::argmax(x, -1, true).shape() == em::Shape{});
  }
}

TEST_CASE("reductions over a size-0 dim give the identity", "[reduce]") {
  for (em::DType dt : kDTypes) {
    INFO(em::dtype_name(dt));
    em::Tensor x = em::zeros({2, 0, 3}, dt);
    const bool fl = em::is_floating(dt);
    em::Tensor s = em::sum(x, {1});
    CHECK(s.shape() == em::Shape{2, 3});
    CHECK(s.dtype() == (fl ? dt : em::int64));
    CHECK(s.to_vector<double>() == Vec(6, 0.0));
    CHECK(em::sum(x).item<double>() == 0.0);
    CHECK(em::sum(x, {1}, true).shape() == em::Shape{2, 1, 3});
    CHECK(em::prod(x, {1}).to_vector<double>() == Vec(6, 1.0));
    CHECK(em::prod(x).item<double>() == 1.0);
    CHECK(em::all(x, {1}).to_vector<bool>() == std::vector<bool>(6, true));
    CHECK(em::all(x).item<bool>());
    CHECK(em::any(x, {1}).to_vector<bool>() == std::vector<bool>(6, false));
    CHECK_FALSE(em::any(x).item<bool>());
    for (double m : em::mean(x, {1}).to_vector<double>()) CHECK(std::isnan(m));
    CHECK(std::isnan(em::mean(x).item<double>()));
    CHECK(em::mean(x).dtype() == (fl ? dt : em::float32));
    CHECK(std::isnan(em::var(x).item<double>()));
    CHECK(std::isnan(em::std(x, {1}).to_vector<double>().at(0)));
    // Reducing a non-empty dim of an empty tensor: an empty result, no error.
    CHECK(em::sum(x, {0}).shape() == em::Shape{0, 3});
    CHECK(em::max(x, {0}).shape() == em::Shape{0, 3});
    CHECK(em::argmax(x, 2).shape() == em::Shape{2, 0});
    CHECK(em::min(x, {2}, true).shape() == em::Shape{2, 0, 1});
  }
  CHECK(em::sum(em::zeros({0})).item<float>() == 0.f);
  CHECK(em::prod(em::zeros({0}, em::int32)).item<int64_t>() == 1);
}

TEST_CASE("max, min, argmax and argmin of an empty axis raise ValueError", "[reduce][errors]") {
  em::Tensor x = em::zeros({2, 0, 3});
  CHECK_THROWS_AS(em::max(x, {1}), em::ValueError);
  CHECK_THROWS_WITH(em::max(x, {1}),
                    Catch::Contains("max: cannot reduce over axis 1 of size 0 (shape [2,0,3])"));
  CHECK_THROWS_AS(em::min(x), em::ValueError);
  CHECK_THROWS_WITH(em::min(x), Catch::Contains("min: cannot reduce over axis 1 of size 0"));
  CHECK_THROWS_AS(em::argmax(x, 1), em::ValueError);
  CHECK_THROWS_WITH(em::argmax(x, -2), Catch::Contains("argmax: cannot reduce over axis 1"));
  CHECK_THROWS_AS(em::argmin(x), em::ValueError);
  CHECK_THROWS_WITH(em::argmin(em::zeros({0})), Catch::Contains("argmin: cannot reduce over axis 0"));
}

// ---- accuracy and threads -----------------------------------------------------------

TEST_CASE("float32 sum of 10M elements is accurate (blocked accumulation)", "[reduce][accuracy]") {
  const int64_t n = 10'000'000;
  em::Tensor x = em::full({n}, 0.1f);
  const double exact = static_cast<double>(n) * static_cast<double>(0.1f);
  for (int threads : {1, 2}) {
    Threads th(threads);
    INFO("threads " << threads);
    CHECK(std::abs(static_cast<double>(em::sum(x).item<float>()) - exact) <= 1e-6 * exact);
    CHECK(std::abs(static_cast<double>(em::mean(x).item<float>()) - 0.1f) <= 1e-6 * 0.1);
  }
}

TEST_CASE("float32 sum over the outer axis (row mode) is accurate", "[reduce][accuracy]") {
  // The same sums as above, but over axis 0 of a [n, 2] tensor: sum(x, 0) should be
  // as accurate as sum(x.t(), 1).
  const int64_t n = 1 << 20;
  em::Tensor x = em::full({n, 2}, 0.1f);
  const double exact = static_cast<double>(n) * static_cast<double>(0.1f);
  auto outer = em::sum(x, {0}).to_vector<float>();
  auto inner = em::sum(x.t().contiguous(), {1}).to_vector<float>();
  REQUIRE(outer.size() == 2);
  CHECK(std::abs(static_cast<double>(inner[0]) - exact) <= 1e-6 * exact);
  CHECK(std::abs(static_cast<double>(outer[0]) - exact) <= 1e-5 * exact);
  CHECK(std::abs(static_cast<double>(outer[1]) - exact) <= 1e-5 * exact);
  CHECK(std::abs(static_cast<double>(em::mean(x, {0}).to_vector<float>()[0]) - 0.1f) <= 1e-5 * 0.1);
}

TEST_CASE("multithreaded full reductions equal the single-thread result", "[reduce][threads]") {
  const int64_t n = (int64_t(1) << 19) + 77;  // >= 2 * 2^17: split across threads
  std::vector<int64_t> iv(static_cast<std::size_t>(n));
  Vec fv(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    iv[i] = (i * 7919) % 1001 - 500;
    fv[i] = std::sin(0.001 * static_cast<double>(i)) * 100.0;
  }
  iv[400000] = 100000;  // a unique max in a later chunk
  iv[123] = -100000;
  iv[450000] = -100000;  // tie for the min: the first wins
  em::Tensor xi = em::tensor(iv, {n});
  em::Tensor xl = xi.to(em::int64);
  em::Tensor x32 = from_values(fv, {n}, em::float32);
  em::Tensor x64 = from_values(fv, {n}, em::float64);
  em::Tensor xb = xi > 0;

  auto run = [&](std::vector<em::Tensor>& out) {
    for (const em::Tensor& t : {xi.to(em::int32), xl, xb}) {
      out.push_back(em::sum(t));
      out.push_back(em::max(t));
      out.push_back(em::min(t));
      out.push_back(em::argmax(t));
      out.push_back(em::argmin(t));
      out.push_back(em::all(t));
      out.push_back(em::any(t));
      out.push_back(em::prod(t > -1000));
    }
    for (const em::Tensor& t : {x32, x64}) {
      out.push_back(em::sum(t));
      out.push_back(em::mean(t));
      out.push_back(em::var(t));
      out.push_back(em::std(t, {}, false, 0));
      out.push_back(em::max(t));
      out.push_back(em::min(t));
      out.push_back(em::argmax(t));
      out.push_back(em::argmin(t));
      out.push_back(em::sum(t.slice(0, 0, n, 2)));  // strided run
    }
  };
  check_threads_agree(run, [](const em::Tensor& r) {
    return em::is_floating(r.dtype()) ? Tol{1e-6, 1e-6} : Tol{0, 0};
  });
  // And against the reference.
  CHECK(em::argmax(xi).item<int64_t>() == 400000);
  CHECK(em::argmin(xi).item<int64_t>() == 123);
  double isum = 0;
  for (int64_t v : iv) isum += static_cast<double>(v);
  CHECK(em::sum(xi).item<int64_t>() == static_cast<int64_t>(isum));
  CHECK(em::sum(x64).item<double>() == Approx(r_sum(fv)).epsilon(1e-12));
  CHECK(em::sum(x32).item<float>() ==
        Approx(r_sum(x32.to_vector<double>())).epsilon(1e-6).margin(1e-2));
  CHECK(em::var(x64).item<double>() == Approx(r_var(fv, 1)).epsilon(1e-10));
}

TEST_CASE("multithreaded argmax/max keep the first NaN and first tie across chunks",
          "[reduce][threads]") {
  const int64_t n = int64_t(1) << 19;
  Vec v(static_cast<std::size_t>(n), 1.0);
  v[300000] = 5.0;
  v[310000] = 5.0;
  for (em::DType dt : {em::float32, em::float64}) {
    INFO(em::dtype_name(dt));
    Threads th(2);
    em::Tensor x = from_values(v, {n}, dt);
    CHECK(em::argmax(x).item<int64_t>() == 300000);
    CHECK(em::max(x).item<double>() == 5.0);
    Vec w = v;
    w[500000] = kNaN;
    w[200000] = kNaN;
    em::Tensor y = from_values(w, {n}, dt);
    CHECK(em::argmax(y).item<int64_t>() == 200000);
    CHECK(em::argmin(y).item<int64_t>() == 200000);
    CHECK(std::isnan(em::max(y).item<double>()));
    CHECK(std::isnan(em::min(y).item<double>()));
  }
}

TEST_CASE("multithreaded per-row reductions equal the single-thread result", "[reduce][threads]") {
  // Inner path parallel over rows, row mode parallel over columns.
  std::vector<em::Tensor> inputs;
  inputs.push_back(em::randn({8, 1 << 16}, em::float32));
  inputs.push_back(em::randn({2048, 256}, em::float64));
  inputs.push_back(em::randint(-50, 50, {2048, 256}, em::int32));
  inputs.push_back(em::randint(-50, 50, {8, 1 << 16}, em::int64));
  auto run = [&](std::vector<em::Tensor>& out) {
    for (const em::Tensor& t : inputs) {
      for (int64_t ax : {0, 1}) {
        out.push_back(em::sum(t, {ax}));
        out.push_back(em::mean(t, {ax}));
        out.push_back(em::max(t, {ax}));
        out.push_back(em::min(t, {ax}));
        out.push_back(em::argmax(t, ax));
        out.push_back(em::var(t, {ax}));
        out.push_back(em::any(t, {ax}));
      }
      out.push_back(em::sum(t.t(), {1}));
    }
  };
  check_threads_agree(run, [](const em::Tensor&) { return Tol{0, 0}; });
  // The per-row results are right, too.
  Threads th(2);
  for (const em::Tensor& t : {inputs[2], inputs[3]}) {
    const Vec tv = t.to_vector<double>();
    for (int64_t ax : {0, 1}) {
      INFO("axis " << ax);
      const Ref s = ref_reduce(tv, t.shape(), {ax}, false, r_sum);
      CHECK(mismatch(em::sum(t, {ax}), s.shape, em::int64, s.v, {0, 0}) == "");
      const Ref m = ref_reduce(tv, t.shape(), {ax}, false, [](const Vec& g) { return r_extreme(g, true); });
      CHECK(mismatch(em::max(t, {ax}), m.shape, t.dtype(), m.v, {0, 0}) == "");
    }
  }
}

TEST_CASE("outer reductions split into row blocks match the reference, NaN in a late block",
          "[reduce][threads]") {
  // [2000, 67]: enough rows and small enough rows that blocks of rows are
  // reduced separately and combined (Note [Row split] in lib/cpu/reduce.cpp).
  const em::Shape s{2000, 67};
  const int64_t n = numel_of(s);
  Vec v(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = 1.0 + 0.001 * static_cast<double>((i * 37) % 23 - 11);
  Vec w = v;
  w[static_cast<std::size_t>(1900 * 67 + 5)] = kNaN;  // row 1900: the last block
  for (em::DType dt : {em::float32, em::float64}) {
    INFO(em::dtype_name(dt));
    const em::Tensor x = from_values(w, s, dt);
    const Vec xv = x.to_vector<double>();  // the values as dt holds them
    const double rel = dt == em::float32 ? 1e-5 : 1e-12;
    for (int threads : {1, 2}) {
      INFO(threads << " threads");
      Threads th(threads);
      const Ref sum = ref_reduce(xv, s, {0}, false, r_sum);
      CHECK(mismatch(em::sum(x, {0}), sum.shape, dt, sum.v, {rel, rel}) == "");
      const Ref mean = ref_reduce(xv, s, {0}, false, r_mean);
      CHECK(mismatch(em::mean(x, {0}), mean.shape, dt, mean.v, {rel, rel}) == "");
      const Ref prod = ref_reduce(xv, s, {0}, false, r_prod);
      CHECK(mismatch(em::prod(x, {0}), prod.shape, dt, prod.v, {rel * 10, rel * 10}) == "");
      for (bool is_max : {true, false}) {
        const Ref ext = ref_reduce(xv, s, {0}, false, [&](const Vec& g) { return r_extreme(g, is_max); });
        CHECK(mismatch(is_max ? em::max(x, {0}) : em::min(x, {0}), ext.shape, dt, ext.v, {0, 0}) == "");
      }
    }
  }
  // Integers: exact int64 sums and wrapping products.
  const em::Tensor xi = (from_values(v, s, em::float64) * 1000.0).to(em::int32);
  const Vec iv = xi.to_vector<double>();
  const Ref isum = ref_reduce(iv, s, {0}, false, r_sum);
  CHECK(mismatch(em::sum(xi, {0}), isum.shape, em::int64, isum.v, {0, 0}) == "");
  const Ref iprod = ref_reduce(iv, s, {0}, false, r_prod_wrap);
  CHECK(mismatch(em::prod(xi, {0}), iprod.shape, em::int64, iprod.v, {0, 0}) == "");
}

// ---- softmax / log_softmax -------------------------------------------------------------

namespace {

Ref ref_softmax(const Vec& v, const em::Shape& s, int64_t axis, bool log) {
  const int64_t r = static_cast<int64_t>(s.size());
  const int64_t a = axis < 0 ? axis + r : axis;
  Vec out(v.size());
  for (int64_t i = 0; i < numel_of(s); ++i) {
    auto idx = unravel(i, s);
    if (idx[a] != 0) continue;
    double mx = -kInf;
    for (int64_t k = 0; k < s[a]; ++k) {
      idx[a] = k;
      mx = std::max(mx, v[static_cast<std::size_t>(ravel(idx, s))]);
    }
    double sum = 0;
    for (int64_t k = 0; k < s[a]; ++k) {
      idx[a] = k;
      sum += std::exp(v[static_cast<std::size_t>(ravel(idx, s))] - mx);
    }
    for (int64_t k = 0; k < s[a]; ++k) {
      idx[a] = k;
      const double x = v[static_cast<std::size_t>(ravel(idx, s))];
      out[static_cast<std::size_t>(ravel(idx, s))] =
          log ? x - mx - std::log(sum) : std::exp(x - mx) / sum;
    }
  }
  return {s, out};
}

}  // namespace

TEST_CASE("softmax and log_softmax match the reference along every axis and layout",
          "[reduce][softmax]") {
  const em::Shape s{2, 3, 4};
  for (em::DType dt : kDTypes) {
    const em::DType odt = em::is_floating(dt) ? dt : em::float32;
    for (const Layout& L : layouts(s, dt, 11)) {
      for (int64_t axis : {0, 1, 2, -1, -2, -3}) {
        for (bool log : {false, true}) {
          INFO((log ? "log_softmax " : "softmax ") << em::dtype_name(dt) << " " << L.name
                                                    << " axis " << axis);
          const Ref want = ref_softmax(L.v, s, axis, log);
          em::Tensor got = log ? em::log_softmax(L.t, axis) : em::softmax(L.t, axis);
          CHECK(mismatch(got, want.shape, odt, want.v, tol_for(odt)) == "");
        }
      }
    }
  }
}

// Rows shorter than one SIMD vector take a one-register path; longer ones the
// general passes. Every row length around the vector widths (4 to 16 lanes).
TEST_CASE("softmax and log_softmax on rows of every length from 1 to 40", "[reduce][softmax]") {
  // 37 rows: short rows go one row per vector lane, whole blocks of rows at a
  // time, and the rest one by one (Note [Short softmax rows]); both must give
  // the bits a single row gets. Row 20 holds a NaN, row 22 only -inf, row 24
  // a negative NaN.
  const double inf = std::numeric_limits<double>::infinity();
  for (em::DType dt : {em::float32, em::float64}) {
    for (int64_t n = 1; n <= 40; ++n) {
      const int64_t rows = 37;
      const em::Shape s{rows, n};
      std::vector<double> v(static_cast<std::size_t>(rows * n));
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.7 * static_cast<double>(i)) * 4.0;
      v[static_cast<std::size_t>(20 * n + n / 2)] = kNaN;
      v[static_cast<std::size_t>(24 * n + n / 3)] = -kNaN;  // a NaN with the sign bit set (as 0 * inf gives on x86)
      for (int64_t j = 0; j < n; ++j) v[static_cast<std::size_t>(22 * n + j)] = -inf;
      em::Tensor x = from_values(v, s, dt);
      for (bool log : {false, true}) {
        INFO((log ? "log_softmax " : "softmax ") << em::dtype_name(dt) << " row length " << n);
        const Ref want = ref_softmax(v, s, 1, log);
        const em::Tensor got = log ? em::log_softmax(x) : em::softmax(x);
        CHECK(mismatch(got, want.shape, dt, want.v, tol_for(dt)) == "");
        for (int64_t r = 0; r < rows; ++r) {
          const em::Tensor row = x.slice(0, r, r + 1);
          const em::Tensor alone = log ? em::log_softmax(row) : em::softmax(row);
          INFO("row " << r);
          const Vec a = alone.to_vector<double>(), b = got.slice(0, r, r + 1).to_vector<double>();
          bool same = a.size() == b.size();
          for (std::size_t i = 0; same && i < a.size(); ++i)
            same = a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]) && std::signbit(a[i]) == std::signbit(b[i]));
          CHECK(same);
        }
      }
    }
  }
}

TEST_CASE("softmax defaults to the last axis; rows sum to 1", "[reduce][softmax]") {
  em::Tensor x = em::randn({16, 100}, em::float32) * 5.f;
  CHECK(em::equal(em::softmax(x), em::softmax(x, 1)));
  CHECK(em::equal(em::log_softmax(x), em::log_softmax(x, -1)));
  for (float r : em::sum(em::softmax(x), {1}).to_vector<float>()) CHECK(r == Approx(1.f).epsilon(1e-5));
  for (float r : em::sum(em::softmax(x, 0), {0}).to_vector<float>())
    CHECK(r == Approx(1.f).epsilon(1e-5));
  for (double r : em::sum(em::softmax(x.to(em::float64).t(), 1), {1}).to_vector<double>())
    CHECK(r == Approx(1.0).epsilon(1e-12));
  // exp(log_softmax) == softmax
  CHECK(em::allclose(em::exp(em::log_softmax(x, 0)), em::softmax(x, 0), 1e-5, 1e-7));
}

TEST_CASE("softmax is numerically stable for large inputs", "[reduce][softmax]") {
  for (em::DType dt : {em::float32, em::float64}) {
    INFO(em::dtype_name(dt));
    em::Tensor x = from_values({1000, 1001, 1002}, {3}, dt);
    const Ref sm = ref_softmax({1000, 1001, 1002}, {3}, 0, false);
    const Ref lsm = ref_softmax({1000, 1001, 1002}, {3}, 0, true);
    CHECK(mismatch(em::softmax(x), {3}, dt, sm.v, {1e-5, 1e-7}) == "");
    // x - max is exact here; float32 rounding of values near 1000 allows ~1e-4.
    CHECK(mismatch(em::log_softmax(x), {3}, dt, lsm.v, {1e-5, dt == em::float32 ? 1e-4 : 1e-9}) ==
          "");
    CHECK(sm.v[0] == Approx(0.0900306).epsilon(1e-5));
    em::Tensor neg = from_values({-1000, -1001, -1002}, {3}, dt);
    CHECK(mismatch(em::softmax(neg), {3}, dt, {sm.v[2], sm.v[1], sm.v[0]}, {1e-5, 1e-7}) == "");
    // Equal large entries: exactly uniform, whatever their magnitude
    // (log_softmax = (x - max) - log(sum), not x - (max + log(sum))).
    for (double big : {1e8, 1e17, 3e38}) {
      INFO("value " << big);
      em::Tensor huge = from_values({big, big}, {2}, dt);
      CHECK(mismatch(em::softmax(huge), {2}, dt, {0.5, 0.5}, {1e-6, 1e-7}) == "");
      CHECK(mismatch(em::log_softmax(huge), {2}, dt, {-std::log(2.0), -std::log(2.0)},
                     {1e-6, 1e-7}) == "");
    }
  }
}

TEST_CASE("softmax with -inf entries and rows of -inf", "[reduce][softmax]") {
  for (em::DType dt : {em::float32, em::float64}) {
    INFO(em::dtype_name(dt));
    em::Tensor x = from_values({-kInf, 0, 0, -kInf, -kInf, -kInf}, {2, 3}, dt);
    auto sm = em::softmax(x).to_vector<double>();
    CHECK(sm[0] == 0.0);
    CHECK(sm[1] == Approx(0.5));
    CHECK(sm[2] == Approx(0.5));
    // A row of only -inf has no defined distribution: NaN, like PyTorch.
    CHECK(std::isnan(sm[3]));
    CHECK(std::isnan(sm[5]));
    auto lsm = em::log_softmax(x).to_vector<double>();
    CHECK(lsm[0] == -kInf);
    CHECK(lsm[1] == Approx(-std::log(2.0)));
    CHECK(std::isnan(lsm[4]));
    // NaN in a row poisons that row only.
    em::Tensor y = from_values({1, kNaN, 2, 1, 2, 3}, {2, 3}, dt);
    auto sy = em::softmax(y).to_vector<double>();
    CHECK(std::isnan(sy[0]));
    CHECK(sy[3] + sy[4] + sy[5] == Approx(1.0));
  }
}

TEST_CASE("softmax of ints, bool, 0-d and empty tensors", "[reduce][softmax]") {
  em::Tensor xi = em::tensor({1, 2, 3});
  CHECK(em::softmax(xi).dtype() == em::float32);
  CHECK(em::log_softmax(xi.to(em::uint8)).dtype() == em::float32);
  CHECK(mismatch(em::softmax(xi), {3}, em::float32, ref_softmax({1, 2, 3}, {3}, 0, false).v,
                 tol_for(em::float32)) == "");
  em::Tensor xb = em::tensor(std::vector<bool>{true, false});
  const double e = std::exp(1.0);
  CHECK(mismatch(em::softmax(xb), {2}, em::float32, {e / (e + 1), 1 / (e + 1)},
                 tol_for(em::float32)) == "");
  CHECK(em::softmax(em::scalar_tensor(4.0)).item<float>() == 1.f);
  CHECK(em::log_softmax(em::scalar_tensor(4.0)).item<float>() == 0.f);
  CHECK(em::softmax(em::scalar_tensor(4.0), -1).shape() == em::Shape{});
  CHECK(em::softmax(em::zeros({0, 3}), 1).shape() == em::Shape{0, 3});
  CHECK(em::softmax(em::zeros({3, 0}), 0).shape() == em::Shape{3, 0});
}

TEST_CASE("large softmax (multithreaded rows) equals the single-thread result", "[reduce][softmax][threads]") {
  em::Tensor x = em::randn({512, 1024}, em::float32);
  em::Tensor a, b, c, d;
  {
    Threads th(1);
    a = em::softmax(x);
    c = em::log_softmax(x, 0);
  }
  {
    Threads th(2);
    b = em::softmax(x);
    d = em::log_softmax(x, 0);
  }
  CHECK(mismatch(b, a, {0, 0}) == "");
  CHECK(mismatch(d, c, {0, 0}) == "");
  for (float r : em::sum(b, {1}).to_vector<float>()) CHECK(r == Approx(1.f).epsilon(1e-5));
}
