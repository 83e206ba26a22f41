// matmul (every NumPy case), concat, stack, index_select and cast against a
// float64 reference computed here, across dtypes and operand layouts.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <ember/ember.h>

#include "support/reference.h"

namespace em = ember;

namespace {

using Vec = std::vector<double>;
using Tol = em::test::Tolerance;
using em::test::cast_value;
using em::test::from_values;
using em::test::Layout;
using em::test::mismatch;
using em::test::numel_of;
using em::test::ravel;
using em::test::unravel;

Vec sample(em::DType dt, int64_t n, int seed) {
  return em::test::pattern_values(dt, n, seed, {29, 13, 4, 7, 2.0, 0.61, 0.3});
}

// `v` (logical shape `s`) in several layouts: contiguous; last two dims
// transposed (a .transpose(-1, -2) view of a contiguous buffer); a step-2 slice of
// the last dim; a step-2 slice of dim -2.
std::vector<Layout> layouts(const Vec& v, const em::Shape& s, em::DType dt) {
  const int64_t r = static_cast<int64_t>(s.size());
  std::vector<Layout> out;
  out.push_back({"contiguous", from_values(v, s, dt)});
  if (r >= 2) {
    em::Shape ts = s;
    std::swap(ts[r - 1], ts[r - 2]);
    Vec tv(v.size());
    for (int64_t i = 0; i < numel_of(s); ++i) {
      auto idx = unravel(i, s);
      std::swap(idx[r - 1], idx[r - 2]);
      tv[static_cast<std::size_t>(ravel(idx, ts))] = v[static_cast<std::size_t>(i)];
    }
    out.push_back({"transposed", from_values(tv, ts, dt).transpose(-1, -2)});
  }
  for (int64_t d : {r - 1, r - 2}) {
    if (d < 0) continue;
    em::Shape bs = s;
    bs[d] = 2 * s[d];
    Vec bv(static_cast<std::size_t>(numel_of(bs)), cast_value(5, dt));
    for (int64_t i = 0; i < numel_of(s); ++i) {
      auto idx = unravel(i, s);
      idx[d] *= 2;
      bv[static_cast<std::size_t>(ravel(idx, bs))] = v[static_cast<std::size_t>(i)];
    }
    out.push_back({fmt::format("step-2 slice of dim {}", d - r),
                   from_values(bv, bs, dt).slice(d, 0, 2 * s[d], 2)});
  }
  return out;
}

struct Ref {
  em::Shape shape;
  Vec v;
};

// NumPy matmul on the host.
Ref ref_matmul(const Vec& a, em::Shape as, const Vec& b, em::Shape bs) {
  const bool av = as.size() == 1, bv = bs.size() == 1;
  if (av) as = {1, as[0]};
  if (bv) bs = {bs[0], 1};
  const int64_t M = as[as.size() - 2], K = as[as.size() - 1], N = bs[bs.size() - 1];
  em::Shape ba(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const std::size_t nb = std::max(ba.size(), bb.size());
  em::Shape batch(nb, 1);
  for (std::size_t i = 0; i < nb; ++i) {
    const int64_t x = i + ba.size() >= nb ? ba[i + ba.size() - nb] : 1;
    const int64_t y = i + bb.size() >= nb ? bb[i + bb.size() - nb] : 1;
    batch[i] = x == 1 ? y : x;
  }
  em::Shape os = batch;
  if (!av) os.push_back(M);
  if (!bv) os.push_back(N);
  Ref out{os, Vec(static_cast<std::size_t>(numel_of(batch) * M * N), 0.0)};
  for (int64_t bi = 0; bi < numel_of(batch); ++bi) {
    const auto idx = unravel(bi, batch);
    auto src = [&](const em::Shape& own) {
      std::vector<int64_t> k(own.size());
      for (std::size_t i = 0; i < own.size(); ++i)
        k[i] = own[i] == 1 ? 0 : idx[nb - own.size() + i];
      return ravel(k, own);
    };
    const int64_t oa = src(ba) * M * K, ob = src(bb) * K * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < K; ++p)
          acc += a[static_cast<std::size_t>(oa + i * K + p)] * b[static_cast<std::size_t>(ob + p * N + j)];
        out.v[static_cast<std::size_t>(bi * M * N + i * N + j)] = acc;
      }
  }
  return out;
}

Tol matmul_tol(em::DType dt) {
  if (dt == em::float32) return {1e-4, 1e-4};
  if (dt == em::float64) return {1e-12, 1e-12};
  return {0, 0};
}

Vec stored_all(Vec v, em::DType dt) {
  for (double& x : v) x = cast_value(x, dt);
  return v;
}

}  // namespace

// ---- matmul --------------------------------------------------------------------

TEST_CASE("matmul matches the reference for every NumPy case, dtype and layout", "[linalg][matmul]") {
  struct Case {
    em::Shape a, b, out;
  };
  const std::vector<Case> cases = {
      {{4}, {4}, {}},                         // 1-d x 1-d: 0-d
      {{3}, {3, 5}, {5}},                     // 1-d x 2-d
      {{2, 3}, {3}, {2}},                     // 2-d x 1-d
      {{2, 3}, {3, 4}, {2, 4}},               // 2-d x 2-d
      {{1, 3}, {3, 1}, {1, 1}},               // single row/col
      {{7, 1}, {1, 6}, {7, 6}},               // K = 1 (outer product)
      {{17, 33}, {33, 9}, {17, 9}},           // bigger than a SIMD width
      {{5, 2, 3}, {5, 3, 4}, {5, 2, 4}},      // batched
      {{2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2}},  // broadcast batch dims
      {{1, 2, 3}, {4, 3, 2}, {4, 2, 2}},      // size-1 batch broadcast
      {{3}, {2, 3, 4}, {2, 4}},               // 1-d x batched
      {{2, 3, 4}, {4}, {2, 3}},               // batched x 1-d
      {{2, 3, 4}, {4, 5}, {2, 3, 5}},         // batched x 2-d
  };
  const em::DType dts[] = {em::float32, em::float64, em::int32, em::int64, em::uint8};
  for (em::DType dt : dts) {
    for (const Case& c : cases) {
      const Vec av = sample(dt, numel_of(c.a), 1), bv = sample(dt, numel_of(c.b), 2);
      Ref want = ref_matmul(av, c.a, bv, c.b);
      want.v = stored_all(want.v, dt);  // uint8 wraps like its arithmetic
      REQUIRE(want.shape == c.out);
      for (const Layout& la : layouts(av, c.a, dt)) {
        for (const Layout& lb : layouts(bv, c.b, dt)) {
          INFO(em::dtype_name(dt) << " a " << em::shape_str(c.a) << " " << la.name << ", b "
                                  << em::shape_str(c.b) << " " << lb.name);
          CHECK(mismatch(em::matmul(la.t, lb.t), c.out, dt, want.v, matmul_tol(dt)) == "");
        }
      }
    }
  }
}

TEST_CASE("matmul with transposed operands (BLAS transpose flags)", "[linalg][matmul]") {
  for (em::DType dt : {em::float32, em::float64, em::int32}) {
    INFO(em::dtype_name(dt));
    const Vec av = sample(dt, 48 * 64, 3), bv = sample(dt, 40 * 48, 4);
    em::Tensor a = from_values(av, {48, 64}, dt);  // a.t(): [64, 48]
    em::Tensor b = from_values(bv, {40, 48}, dt);  // b.t(): [48, 40]
    const Vec at = a.t().contiguous().to_vector<double>();
    const Vec bt = b.t().contiguous().to_vector<double>();
    const Ref ab = ref_matmul(at, {64, 48}, bt, {48, 40});
    CHECK(mismatch(em::matmul(a.t(), b.t()), {64, 40}, dt, ab.v, matmul_tol(dt)) == "");
    CHECK(mismatch(em::matmul(a.t().contiguous(), b.t()), {64, 40}, dt, ab.v, matmul_tol(dt)) == "");
    CHECK(mismatch(em::matmul(a.t(), b.t().contiguous()), {64, 40}, dt, ab.v, matmul_tol(dt)) == "");
    // x @ x.t() is symmetric
    em::Tensor g = em::matmul(a, a.t());
    CHECK(mismatch(g, {48, 48}, dt, g.t().contiguous().to_vector<double>(), matmul_tol(dt)) == "");
    // batched transposes
    em::Tensor x = from_values(sample(dt, 3 * 4 * 5, 5), {3, 4, 5}, dt);
    const Ref xx = ref_matmul(x.transpose(1, 2).contiguous().to_vector<double>(), {3, 5, 4},
                              x.to_vector<double>(), {3, 4, 5});
    CHECK(mismatch(em::matmul(x.transpose(-1, -2), x), {3, 5, 5}, dt, xx.v, matmul_tol(dt)) == "");
  }
}

TEST_CASE("matmul with stride-0 (expanded) operands", "[linalg][matmul]") {
  em::Tensor row = em::tensor({1.f, 2.f, 3.f});
  em::Tensor a = row.expand({4, 3});  // every row the same, row stride 0
  em::Tensor b = em::arange(6, em::float32).reshape({3, 2});
  const Ref want = ref_matmul(a.to_vector<double>(), {4, 3}, b.to_vector<double>(), {3, 2});
  CHECK(mismatch(em::matmul(a, b), {4, 2}, em::float32, want.v, matmul_tol(em::float32)) == "");
  em::Tensor bb = b.unsqueeze(0).expand({5, 3, 2});  // batch stride 0
  em::Tensor x = em::arange(5 * 4 * 3, em::float32).reshape({5, 4, 3});
  const Ref w2 = ref_matmul(x.to_vector<double>(), {5, 4, 3}, bb.to_vector<double>(), {5, 3, 2});
  CHECK(mismatch(em::matmul(x, bb), {5, 4, 2}, em::float32, w2.v, matmul_tol(em::float32)) == "");
  em::Tensor xi = x.to(em::int64);
  CHECK(mismatch(em::matmul(xi, bb.to(em::int64)), {5, 4, 2}, em::int64, w2.v, {0, 0}) == "");
}

TEST_CASE("matmul with K == 0 gives zeros; M or N == 0 gives empty results", "[linalg][matmul]") {
  for (em::DType dt : {em::float32, em::float64, em::int32, em::int64, em::uint8}) {
    INFO(em::dtype_name(dt));
    // Fill the allocator's cache with garbage of the right size first, so a
    // result that is not written shows up.
    { em::Tensor junk = em::full({3, 4}, 7, dt); }
    em::Tensor z = em::matmul(em::ones({3, 0}, dt), em::ones({0, 4}, dt));
    CHECK(mismatch(z, {3, 4}, dt, Vec(12, 0.0), {0, 0}) == "");
    CHECK(mismatch(em::matmul(em::ones({2, 3, 0}, dt), em::ones({2, 0, 5}, dt)), {2, 3, 5}, dt,
                   Vec(30, 0.0), {0, 0}) == "");
    CHECK(mismatch(em::matmul(em::ones({0}, dt), em::ones({0}, dt)), {}, dt, {0.0}, {0, 0}) == "");
    CHECK(mismatch(em::matmul(em::ones({0}, dt), em::ones({0, 3}, dt)), {3}, dt, Vec(3, 0.0), {0, 0}) ==
          "");
    CHECK(em::matmul(em::ones({0, 3}, dt), em::ones({3, 4}, dt)).shape() == em::Shape{0, 4});
    CHECK(em::matmul(em::ones({3, 4}, dt), em::ones({4, 0}, dt)).shape() == em::Shape{3, 0});
    CHECK(em::matmul(em::ones({0, 2, 3}, dt), em::ones({3, 4}, dt)).shape() == em::Shape{0, 2, 4});
    CHECK(mismatch(em::matmul(em::ones({3, 0}, dt), em::ones({0}, dt)), {3}, dt, Vec(3, 0.0), {0, 0}) ==
          "");
  }
}

TEST_CASE("matmul promotes mixed dtypes", "[linalg][matmul]") {
  struct Case {
    em::DType a, b, out;
  };
  const Case cases[] = {
      {em::int32, em::float32, em::float32}, {em::float32, em::int64, em::float32},
      {em::int32, em::int64, em::int64},     {em::uint8, em::int32, em::int32},
      {em::float32, em::float64, em::float64}, {em::uint8, em::float64, em::float64},
  };
  for (const Case& c : cases) {
    INFO(em::dtype_name(c.a) << " x " << em::dtype_name(c.b));
    const Vec av = sample(c.a, 6, 7), bv = sample(c.b, 12, 8);
    const Ref want = ref_matmul(av, {2, 3}, bv, {3, 4});
    CHECK(mismatch(em::matmul(from_values(av, {2, 3}, c.a), from_values(bv, {3, 4}, c.b)), {2, 4},
                   c.out, want.v, matmul_tol(c.out)) == "");
  }
}

TEST_CASE("matmul of integers is exact", "[linalg][matmul]") {
  // Values whose float32 products would round: the loop path must stay exact.
  const int64_t big = (int64_t(1) << 40) + 1;
  em::Tensor a = em::tensor(std::vector<int64_t>{big, 3, 1, big}, {2, 2});
  em::Tensor b = em::tensor(std::vector<int64_t>{1, 2, 3, 1}, {2, 2});
  CHECK(em::matmul(a, b).to_vector<int64_t>() ==
        std::vector<int64_t>{big + 9, 2 * big + 3, 1 + 3 * big, 2 + big});
  em::Tensor i32 = em::tensor({{4097, 1}, {0, 1}});  // 4097^2 > 2^24: not exact in float32
  CHECK(em::matmul(i32, i32).dtype() == em::int32);
  CHECK(em::matmul(i32, i32).to_vector<int32_t>() == std::vector<int32_t>{16785409, 4098, 0, 1});
  CHECK(em::matmul(i32.t(), i32.t()).to_vector<int32_t>() == std::vector<int32_t>{16785409, 0, 4098, 1});
}

// ---- addmm -----------------------------------------------------------------------

namespace {

// beta * input (broadcast to [M, N]) + alpha * product, in float64; an
// integer result wraps like its dtype's arithmetic (stored_all).
Vec ref_addmm(const Vec& in, const em::Shape& is, const Vec& prod, int64_t M, int64_t N, double beta,
              double alpha) {
  Vec out(static_cast<std::size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      int64_t k = 0;  // the input element that broadcasts to (i, j)
      if (is.size() == 2) k = (is[0] == 1 ? 0 : i) * is[1] + (is[1] == 1 ? 0 : j);
      if (is.size() == 1) k = is[0] == 1 ? 0 : j;
      const double p = alpha * prod[static_cast<std::size_t>(i * N + j)];
      out[static_cast<std::size_t>(i * N + j)] = beta == 0 ? p : beta * in[static_cast<std::size_t>(k)] + p;
    }
  return out;
}

Tol addmm_tol(em::DType dt) {
  if (dt == em::float16 || dt == em::bfloat16) return {2e-2, 2e-2};
  return matmul_tol(dt);
}

}  // namespace

TEST_CASE("addmm matches beta * input + alpha * mat1 @ mat2 for every dtype, layout and broadcast",
          "[linalg][addmm]") {
  struct Dims {
    int64_t M, K, N;
  };
  // 1 x K and M x 1 go through BLAS's matrix-vector kernel.
  const Dims dims[] = {{2, 3, 4}, {1, 5, 3}, {4, 5, 1}, {17, 33, 9}};
  const em::DType dts[] = {em::float32, em::float64, em::int32, em::int64, em::uint8, em::float16, em::bfloat16};
  for (em::DType dt : dts) {
    const bool fl = em::is_floating(dt);
    const std::vector<std::pair<double, double>> coefs =
        fl ? std::vector<std::pair<double, double>>{{1, 1}, {0.5, 2}, {0, 1}, {2, -1}}
           : std::vector<std::pair<double, double>>{{1, 1}, {0, 1}, {2, -1}, {3, 2}};
    for (const Dims& d : dims) {
      const Vec av = sample(dt, d.M * d.K, 1), bv = sample(dt, d.K * d.N, 2);
      const Vec prod = ref_matmul(av, {d.M, d.K}, bv, {d.K, d.N}).v;
      for (const em::Shape& is : {em::Shape{d.N}, em::Shape{1, d.N}, em::Shape{d.M, 1}, em::Shape{d.M, d.N},
                                  em::Shape{}, em::Shape{1}}) {
        const Vec iv = sample(dt, numel_of(is), 3);
        const em::Tensor input = from_values(iv, is, dt);
        for (const auto& [beta, alpha] : coefs) {
          const Vec want = stored_all(ref_addmm(iv, is, prod, d.M, d.N, beta, alpha), dt);
          for (const Layout& la : layouts(av, {d.M, d.K}, dt))
            for (const Layout& lb : layouts(bv, {d.K, d.N}, dt)) {
              INFO(em::dtype_name(dt) << " [" << d.M << "," << d.K << "] @ [" << d.K << "," << d.N << "], input "
                                      << em::shape_str(is) << ", beta " << beta << " alpha " << alpha << ", mat1 "
                                      << la.name << ", mat2 " << lb.name);
              CHECK(mismatch(em::addmm(input, la.t, lb.t, beta, alpha), {d.M, d.N}, dt, want, addmm_tol(dt)) ==
                    "");
            }
        }
      }
      // The input itself strided: a transposed [M, N] and a step-2 slice.
      const Vec iv = sample(dt, d.M * d.N, 4);
      const Vec want = stored_all(ref_addmm(iv, {d.M, d.N}, prod, d.M, d.N, 1, 1), dt);
      for (const Layout& li : layouts(iv, {d.M, d.N}, dt)) {
        INFO(em::dtype_name(dt) << " input " << li.name);
        CHECK(mismatch(em::addmm(li.t, from_values(av, {d.M, d.K}, dt), from_values(bv, {d.K, d.N}, dt)),
                       {d.M, d.N}, dt, want, addmm_tol(dt)) == "");
      }
    }
  }
}

TEST_CASE("addmm: beta 0 ignores the input, K == 0 scales it, empty results, mixed dtypes", "[linalg][addmm]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (em::DType dt : {em::float32, em::float64}) {
    INFO(em::dtype_name(dt));
    const em::Tensor a = em::tensor({{1., 2.}, {3., 4.}}).to(dt), b = em::tensor({{1., 0.}, {1., 1.}}).to(dt);
    const em::Tensor bad = em::full({2, 2}, nan, dt);
    // beta = 0: NaN in the input does not reach the result (torch.addmm's rule).
    CHECK(mismatch(em::addmm(bad, a, b, 0, 1), {2, 2}, dt, {3, 2, 7, 4}, {0, 0}) == "");
    CHECK(mismatch(em::addmm(bad, a, b, 0, 2), {2, 2}, dt, {6, 4, 14, 8}, {0, 0}) == "");
    // beta = 1 keeps it.
    CHECK(std::isnan(em::addmm(bad, a, b).to_vector<double>()[3]));
  }
  for (em::DType dt : {em::float32, em::float64, em::int32, em::int64, em::uint8}) {
    INFO(em::dtype_name(dt));
    { em::Tensor junk = em::full({3, 4}, 7, dt); }  // garbage in the allocator's cache
    const em::Tensor bias = em::arange(4, dt);
    const em::Tensor e1 = em::ones({3, 0}, dt), e2 = em::ones({0, 4}, dt);
    CHECK(mismatch(em::addmm(bias, e1, e2), {3, 4}, dt, {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}, {0, 0}) == "");
    CHECK(mismatch(em::addmm(bias, e1, e2, 3, 1), {3, 4}, dt, {0, 3, 6, 9, 0, 3, 6, 9, 0, 3, 6, 9}, {0, 0}) == "");
    CHECK(mismatch(em::addmm(bias, e1, e2, 0, 1), {3, 4}, dt, Vec(12, 0.0), {0, 0}) == "");
    CHECK(em::addmm(bias, em::ones({0, 2}, dt), em::ones({2, 4}, dt)).shape() == em::Shape{0, 4});
    CHECK(em::addmm(em::ones({3, 1}, dt), em::ones({3, 2}, dt), em::ones({2, 0}, dt)).shape() == em::Shape{3, 0});
  }
  // dtypes promote as in matmul + add; a float64 input makes a float64 result.
  const em::Tensor a = em::tensor({{1, 2}, {3, 4}}), b = em::tensor({{1.f, 0.f}, {1.f, 1.f}});
  CHECK(mismatch(em::addmm(em::tensor({0.5, 0.25}), a, b), {2, 2}, em::float64, {3.5, 2.25, 7.5, 4.25}, {0, 0}) == "");
  CHECK(mismatch(em::addmm(em::tensor({1, 2}), a, a), {2, 2}, em::int32, {8, 12, 16, 24}, {0, 0}) == "");
  // Integer arithmetic is exact where float32 would round.
  const int64_t big = (int64_t(1) << 40) + 1;
  const em::Tensor x = em::tensor(std::vector<int64_t>{big, 3, 1, big}, {2, 2});
  const em::Tensor y = em::tensor(std::vector<int64_t>{1, 2, 3, 1}, {2, 2});
  CHECK(em::addmm(em::tensor(std::vector<int64_t>{1, -1}, {2}), x, y, 1, 2).to_vector<int64_t>() ==
        std::vector<int64_t>{2 * big + 19, 4 * big + 5, 3 + 6 * big, 3 + 2 * big});
}

TEST_CASE("addmm rejects what torch.addmm rejects, naming the operand", "[linalg][addmm][errors]") {
  using Catch::Contains;
  const em::Tensor a = em::ones({2, 3}), b = em::ones({3, 4});
  CHECK_THROWS_AS(em::addmm(em::ones({4}), em::ones({2, 2, 3}), b), em::ShapeError);
  CHECK_THROWS_WITH(em::addmm(em::ones({4}), em::ones({2, 2, 3}), b),
                    "addmm: mat1 must be a matrix (2-d), got 3-d [2,2,3]");
  CHECK_THROWS_WITH(em::addmm(em::ones({4}), a, em::ones({3})), "addmm: mat2 must be a matrix (2-d), got 1-d [3]");
  CHECK_THROWS_WITH(em::addmm(em::ones({4}), a, em::ones({2, 4})),
                    "addmm: mat1 [2,3] and mat2 [2,4] do not line up (3 != 2)");
  for (const em::Shape& s : {em::Shape{3}, em::Shape{3, 4}, em::Shape{2, 2}, em::Shape{1, 2, 4}}) {
    INFO(em::shape_str(s));
    CHECK_THROWS_AS(em::addmm(em::ones(s), a, b), em::ShapeError);
    CHECK_THROWS_WITH(em::addmm(em::ones(s), a, b),
                      fmt::format("addmm: input {} does not broadcast to the product's [2,4]", em::shape_str(s)));
  }
  const em::Tensor ai = em::ones({2, 3}, em::int32), bi = em::ones({3, 4}, em::int32);
  CHECK_THROWS_AS(em::addmm(em::ones({4}, em::int32), ai, bi, 0.5), em::ValueError);
  CHECK_THROWS_WITH(em::addmm(em::ones({4}, em::int32), ai, bi, 0.5, 1),
                    "addmm: beta and alpha must be integers for a int32 result, got beta=0.5 alpha=1");
  CHECK_THROWS_WITH(em::addmm(em::ones({4}, em::int32), ai, bi, 1, std::numeric_limits<double>::infinity()),
                    Contains("beta and alpha must be integers"));
  const em::Tensor bt = em::ones({2, 2}, em::bool_);
  CHECK_THROWS_AS(em::addmm(bt, bt, bt), em::DTypeError);
  CHECK_THROWS_WITH(em::addmm(bt, bt, bt), Contains("addmm: the inputs has dtype bool"));
}

// ---- concat ----------------------------------------------------------------------

namespace {

Ref ref_concat(const std::vector<std::pair<Vec, em::Shape>>& parts, int64_t dim) {
  const int64_t r = static_cast<int64_t>(parts[0].second.size());
  const int64_t d = dim < 0 ? dim + r : dim;
  em::Shape os = parts[0].second;
  os[d] = 0;
  for (const auto& p : parts) os[d] += p.second[d];
  Vec out(static_cast<std::size_t>(numel_of(os)));
  int64_t at = 0;
  for (const auto& [v, s] : parts) {
    for (int64_t i = 0; i < numel_of(s); ++i) {
      auto idx = unravel(i, s);
      idx[d] += at;
      out[static_cast<std::size_t>(ravel(idx, os))] = v[static_cast<std::size_t>(i)];
    }
    at += s[d];
  }
  return {os, out};
}

}  // namespace

TEST_CASE("concat along every dim, negative dims, every dtype and layout", "[linalg][concat]") {
  const em::DType dts[] = {em::bool_, em::uint8, em::int32, em::int64, em::float32, em::float64};
  for (em::DType dt : dts) {
    for (int64_t dim : {0, 1, 2, -1, -2, -3}) {
      const int64_t d = dim < 0 ? dim + 3 : dim;
      em::Shape s0{2, 3, 4}, s1{2, 3, 4}, s2{2, 3, 4};
      s1[d] = 1;
      s2[d] = 3;
      const Vec v0 = sample(dt, numel_of(s0), 1), v1 = sample(dt, numel_of(s1), 2),
                v2 = sample(dt, numel_of(s2), 3);
      const Ref want = ref_concat({{v0, s0}, {v1, s1}, {v2, s2}}, dim);
      auto l0 = layouts(v0, s0, dt), l1 = layouts(v1, s1, dt), l2 = layouts(v2, s2, dt);
      for (std::size_t k = 0; k < l0.size(); ++k) {
        INFO(em::dtype_name(dt) << " dim " << dim << " " << l0[k].name);
        em::Tensor got = em::concat({l0[k].t, l1[k % l1.size()].t, l2[(k + 1) % l2.size()].t}, dim);
        CHECK(mismatch(got, want.shape, dt, want.v, {0, 0}) == "");
      }
    }
  }
}

TEST_CASE("concat promotes dtypes, accepts size-0 parts and single tensors", "[linalg][concat]") {
  em::Tensor i = em::tensor({1, 2});
  em::Tensor f = em::tensor({0.5f});
  em::Tensor c = em::concat({i, f});
  CHECK(mismatch(c, {3}, em::float32, {1, 2, 0.5}, {0, 0}) == "");
  CHECK(em::concat({em::tensor(std::vector<bool>{true}), em::tensor(std::vector<int64_t>{7})}).dtype() ==
        em::int64);
  CHECK(mismatch(em::concat({em::tensor(std::vector<uint8_t>{200}), em::tensor({-1})}), {2}, em::int32,
                 {200, -1}, {0, 0}) == "");
  CHECK(em::concat({em::ones({2, 2}, em::float32), em::ones({2, 1}, em::float64)}, 1).dtype() ==
        em::float64);

  // size-0 parts anywhere
  em::Tensor a = em::arange(6, em::float32).reshape({2, 3});
  em::Tensor e = em::zeros({2, 0});
  CHECK(mismatch(em::concat({e, a, e, a, e}, 1), {2, 6}, em::float32, {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5},
                 {0, 0}) == "");
  CHECK(mismatch(em::concat({em::zeros({0, 3}), a}, 0), {2, 3}, em::float32, {0, 1, 2, 3, 4, 5}, {0, 0}) ==
        "");
  CHECK(em::concat({e, e}, 1).shape() == em::Shape{2, 0});
  CHECK(em::concat({em::zeros({0, 3}), em::zeros({0, 3})}, 1).shape() == em::Shape{0, 6});

  // one tensor: a copy with the same values, not the same storage
  em::Tensor one = em::concat({a});
  CHECK(em::equal(one, a));
  CHECK(one.data_ptr() != a.data_ptr());
  // a non-contiguous part and a 1-d concat
  CHECK(mismatch(em::concat({a.t(), a.t()}, 1), {3, 4}, em::float32, {0, 3, 0, 3, 1, 4, 1, 4, 2, 5, 2, 5},
                 {0, 0}) == "");
}

TEST_CASE("stack along every new dim, including the last", "[linalg][stack]") {
  const em::DType dts[] = {em::bool_, em::int32, em::float32, em::float64};
  for (em::DType dt : dts) {
    const Vec v0 = sample(dt, 6, 1), v1 = sample(dt, 6, 2), v2 = sample(dt, 6, 3);
    std::vector<em::Tensor> parts = {from_values(v0, {2, 3}, dt),
                                     from_values(v1, {2, 3}, dt).t().contiguous().t(),
                                     from_values(v2, {2, 3}, dt)};
    const Vec* vs[3] = {&v0, &v1, &v2};
    for (int64_t dim : {0, 1, 2, -1, -2, -3}) {
      const int64_t d = dim < 0 ? dim + 3 : dim;
      em::Shape os{2, 3};
      os.insert(os.begin() + d, 3);
      Vec want(18);
      for (int64_t k = 0; k < 3; ++k)
        for (int64_t i = 0; i < 6; ++i) {
          auto idx = unravel(i, {2, 3});
          idx.insert(idx.begin() + d, k);
          want[static_cast<std::size_t>(ravel(idx, os))] = (*vs[k])[static_cast<std::size_t>(i)];
        }
      INFO(em::dtype_name(dt) << " dim " << dim);
      CHECK(mismatch(em::stack(parts, dim), os, dt, want, {0, 0}) == "");
    }
  }
  // 0-d parts make a 1-d tensor; 1-d parts along dim 1 become columns.
  CHECK(mismatch(em::stack({em::scalar_tensor(1.0), em::scalar_tensor(2.0)}), {2}, em::float32, {1, 2},
                 {0, 0}) == "");
  CHECK(mismatch(em::stack({em::tensor({1, 2}), em::tensor({3, 4})}, 1), {2, 2}, em::int32, {1, 3, 2, 4},
                 {0, 0}) == "");
  CHECK(mismatch(em::stack({em::tensor({1, 2}), em::tensor({0.5f, 1.5f})}, -1), {2, 2}, em::float32,
                 {1, 0.5, 2, 1.5}, {0, 0}) == "");
  CHECK(em::stack({em::zeros({0, 2}), em::zeros({0, 2})}, 1).shape() == em::Shape{0, 2, 2});
}

// ---- index_select ------------------------------------------------------------------

TEST_CASE("index_select with int64/int32, negative and repeated indices", "[linalg][index]") {
  const em::DType dts[] = {em::bool_, em::uint8, em::int32, em::int64, em::float32, em::float64};
  const std::vector<int64_t> idx = {2, 0, -1, 2, -4};
  for (em::DType dt : dts) {
    const em::Shape s{4, 5};
    const Vec v = sample(dt, 20, 4);
    for (const Layout& L : layouts(v, s, dt)) {
      for (em::DType it : {em::int64, em::int32}) {
        em::Tensor index = em::tensor(idx).to(it);
        for (int64_t dim : {0, 1, -1, -2}) {
          const int64_t d = dim < 0 ? dim + 2 : dim;
          em::Shape os = s;
          os[d] = static_cast<int64_t>(idx.size());
          Vec want(static_cast<std::size_t>(numel_of(os)));
          for (int64_t i = 0; i < numel_of(os); ++i) {
            auto o = unravel(i, os);
            int64_t k = idx[static_cast<std::size_t>(o[d])];
            o[d] = k < 0 ? k + s[d] : k;
            want[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(ravel(o, s))];
          }
          INFO(em::dtype_name(dt) << " " << L.name << " index " << em::dtype_name(it) << " dim "
                                  << dim);
          CHECK(mismatch(em::index_select(L.t, dim, index), os, dt, want, {0, 0}) == "");
        }
      }
    }
  }
}

TEST_CASE("index_select without wrapping refuses negative indices", "[linalg][index]") {
  em::Tensor x = em::arange(6, em::float32).reshape({3, 2});
  CHECK(em::index_select(x, 0, em::tensor({2, 0}), false).to_vector<float>() == std::vector<float>{4, 5, 0, 1});
  CHECK(em::index_select(x, 0, em::tensor({-1}), true).to_vector<float>() == std::vector<float>{4, 5});
  CHECK_THROWS_WITH(em::index_select(x, 0, em::tensor({0, -1}), false),
                    "index_select: index -1 is out of range for dim 0 of size 3");
  CHECK_THROWS_WITH(em::index_select(x, 1, em::tensor(std::vector<int32_t>{-2}, {1}), false),
                    "index_select: index -2 is out of range for dim 1 of size 2");
}

TEST_CASE("index_select on a 3-d tensor, an empty index and a strided index", "[linalg][index]") {
  em::Tensor x = em::arange(24, em::float32).reshape({2, 3, 4});
  em::Tensor r = em::index_select(x, 1, em::tensor({2, 2, 0}));
  CHECK(mismatch(r, {2, 3, 4}, em::float32,
                 {8, 9, 10, 11, 8, 9, 10, 11, 0, 1, 2, 3, 20, 21, 22, 23, 20, 21, 22, 23, 12, 13, 14, 15},
                 {0, 0}) == "");
  em::Tensor empty_idx = em::zeros({0}, em::int64);
  CHECK(em::index_select(x, 2, empty_idx).shape() == em::Shape{2, 3, 0});
  // The index itself may be a strided view.
  em::Tensor big_idx = em::tensor(std::vector<int64_t>{3, 9, 1, 9, 0});
  CHECK(mismatch(em::index_select(x, 2, big_idx.slice(0, 0, 5, 2)), {2, 3, 3}, em::float32,
                 {3, 1, 0, 7, 5, 4, 11, 9, 8, 15, 13, 12, 19, 17, 16, 23, 21, 20}, {0, 0}) == "");
  // The result owns its memory: writing to it leaves x alone.
  r.fill_(-1.f);
  CHECK(x.to_vector<float>()[8] == 8.f);
}

// ---- cast ----------------------------------------------------------------------------

TEST_CASE("cast between every pair of dtypes", "[linalg][cast]") {
  const em::DType dts[] = {em::bool_, em::uint8, em::int32, em::int64, em::float32, em::float64};
  for (em::DType from : dts) {
    // Values every dtype can hold (bool sources: 0 and 1).
    const Vec v = from == em::bool_ ? Vec{0, 1, 1, 0} : Vec{0, 1, 2, 100};
    em::Tensor x = from_values(v, {2, 2}, from);
    for (em::DType to : dts) {
      INFO(em::dtype_name(from) << " -> " << em::dtype_name(to));
      Vec want = stored_all(v, to);
      em::Tensor y = em::cast(x, to);
      CHECK(mismatch(y, {2, 2}, to, want, {0, 0}) == "");
      CHECK(mismatch(x.to(to), {2, 2}, to, want, {0, 0}) == "");
      CHECK(mismatch(em::cast(x.t(), to), {2, 2}, to, {want[0], want[2], want[1], want[3]}, {0, 0}) ==
            "");
      // cast always makes a new tensor; to() returns the same one for its own dtype
      CHECK(y.data_ptr() != x.data_ptr());
      if (to == from) CHECK(x.to(to).is_same(x));
    }
  }
}

TEST_CASE("cast of negative, fractional and special values", "[linalg][cast]") {
  em::Tensor f = em::tensor({2.7f, -2.7f, 0.5f, -0.f, 0.f});
  CHECK(em::cast(f, em::int32).to_vector<int32_t>() == std::vector<int32_t>{2, -2, 0, 0, 0});
  CHECK(em::cast(f, em::int64).to_vector<int64_t>() == std::vector<int64_t>{2, -2, 0, 0, 0});
  CHECK(em::cast(f, em::bool_).to_vector<bool>() == std::vector<bool>{true, true, true, false, false});
  CHECK(em::cast(em::tensor({std::nan(""), 0.25, -1e-300}), em::bool_).to_vector<bool>() ==
        std::vector<bool>{true, true, true});
  CHECK(em::cast(em::tensor({3.9f, 255.f}), em::uint8).to_vector<uint8_t>() == std::vector<uint8_t>{3, 255});
  em::Tensor i = em::tensor({-3, 0, 7});
  CHECK(em::cast(i, em::bool_).to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK(em::cast(i, em::float32).to_vector<float>() == std::vector<float>{-3.f, 0.f, 7.f});
  CHECK(em::cast(i, em::int64).to_vector<int64_t>() == std::vector<int64_t>{-3, 0, 7});
  CHECK(em::cast(em::tensor(std::vector<uint8_t>{200, 255}), em::int32).to_vector<int32_t>() ==
        std::vector<int32_t>{200, 255});
  const int64_t big = (int64_t(1) << 40) + 1;
  CHECK(em::cast(em::tensor(std::vector<int64_t>{big}), em::float64).item<double>() ==
        static_cast<double>(big));
  CHECK(em::cast(em::tensor({0.1}), em::float32).item<float>() == 0.1f);
  CHECK(std::isinf(em::cast(em::tensor({1e300}), em::float32).item<float>()));
  CHECK(em::cast(em::tensor(std::vector<bool>{true, false}), em::float64).to_vector<double>() ==
        std::vector<double>{1.0, 0.0});
  // 0-d and empty
  CHECK(em::cast(em::scalar_tensor(2.5), em::int64).item<int64_t>() == 2);
  CHECK(em::cast(em::scalar_tensor(2.5), em::int64).shape() == em::Shape{});
  CHECK(em::cast(em::zeros({0, 3}), em::int32).shape() == em::Shape{0, 3});
  // step-2 slice source
  em::Tensor s = em::arange(10, em::float64).slice(0, 1, 10, 2);
  CHECK(em::cast(s, em::uint8).to_vector<uint8_t>() == std::vector<uint8_t>{1, 3, 5, 7, 9});
}
