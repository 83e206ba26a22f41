// Creation functions (tensor, scalar_tensor, zeros/ones/full/empty, arange,
// linspace, eye, *_like) and seeded random numbers (rand, randn, randint,
// manual_seed, Generator), including independence from the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#include <catch2/catch.hpp>
#include <ember/ember.h>

#include "support/reference.h"

namespace em = ember;
using em::DType;
using em::Shape;
using em::Tensor;
using namespace ember::test;

namespace {

struct Moments {
  double mean = 0, var = 0, min = 0, max = 0;
};

Moments moments(const Tensor& t) {
  const auto v = values_of(t);
  Moments m;
  m.min = *std::min_element(v.begin(), v.end());
  m.max = *std::max_element(v.begin(), v.end());
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= static_cast<double>(v.size() - 1);
  return m;
}

// Restores the thread count when a test ends, even when it fails.
struct ThreadGuard {
  int saved = em::get_num_threads();
  ~ThreadGuard() { em::set_num_threads(saved); }
};

}  // namespace

TEST_CASE("tensor from initializer lists takes its dtype from the element type", "[creation]") {
  Tensor f = em::tensor({1.5f, -2.f, 3.f});
  CHECK(f.dtype() == em::float32);
  EMBER_CHECK_VALUES(f, Shape{3}, {1.5, -2, 3});
  Tensor d = em::tensor({0.1, 0.2});
  CHECK(d.dtype() == em::float64);
  CHECK(d.to_vector<double>() == std::vector<double>{0.1, 0.2});
  CHECK(em::tensor({1, 2}).dtype() == em::int32);
  CHECK(em::tensor({int64_t{1}, int64_t{2}}).dtype() == em::int64);
  CHECK(em::tensor({uint8_t{1}, uint8_t{255}}).dtype() == em::uint8);
  Tensor b = em::tensor({true, false, true});
  CHECK(b.dtype() == em::bool_);
  EMBER_CHECK_VALUES(b, Shape{3}, {1, 0, 1});
  CHECK(em::tensor({7}).shape() == Shape{1});

  Tensor m = em::tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK(m.dtype() == em::int32);
  CHECK(m.is_contiguous());
  EMBER_CHECK_VALUES(m, (Shape{2, 3}), {1, 2, 3, 4, 5, 6});
  Tensor md = em::tensor({{1.0}, {2.0}});
  CHECK(md.shape() == Shape{2, 1});
  CHECK(md.dtype() == em::float64);

  CHECK_THROWS_AS(em::tensor({{1, 2, 3}, {4, 5}}), em::ValueError);
  CHECK_THROWS_WITH(em::tensor({{1, 2, 3}, {4, 5}}),
                    Catch::Contains("tensor: rows have different lengths (3 and 2)"));
}

TEST_CASE("tensor from a vector and a shape", "[creation]") {
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  Tensor t = em::tensor(v, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.dtype() == em::float32);
  EMBER_CHECK_VALUES(t, (Shape{2, 3}), {1, 2, 3, 4, 5, 6});
  // The tensor owns a copy.
  v[0] = 100;
  CHECK(t[0][0].item<float>() == 1.f);
  EMBER_CHECK_VALUES(em::tensor(v, {3, 1, 2}), (Shape{3, 1, 2}), {100, 2, 3, 4, 5, 6});
  EMBER_CHECK_VALUES(em::tensor(v), Shape{6}, {100, 2, 3, 4, 5, 6});
  Tensor s = em::tensor(std::vector<double>{4.25}, Shape{});
  CHECK(s.dim() == 0);
  CHECK(s.item<double>() == 4.25);
  Tensor e = em::tensor(std::vector<int64_t>{}, {0, 3});
  CHECK(e.shape() == Shape{0, 3});
  CHECK(e.dtype() == em::int64);
  Tensor bv = em::tensor(std::vector<bool>{true, false, false, true}, {2, 2});
  CHECK(bv.dtype() == em::bool_);
  EMBER_CHECK_VALUES(bv, (Shape{2, 2}), {1, 0, 0, 1});
  Tensor u8 = em::tensor(std::vector<uint8_t>{0, 128, 255}, {3});
  CHECK(u8.dtype() == em::uint8);
  EMBER_CHECK_VALUES(u8, Shape{3}, {0, 128, 255});

  CHECK_THROWS_AS(em::tensor(std::vector<float>(5), {2, 3}), em::ValueError);
  CHECK_THROWS_WITH(em::tensor(std::vector<float>(5), {2, 3}),
                    Catch::Contains("tensor: 5 values do not fill shape [2,3] (6 elements)"));
  CHECK_THROWS_AS(em::tensor(std::vector<int32_t>{1, 2}, Shape{}), em::ValueError);
  CHECK_THROWS_WITH(em::tensor(std::vector<int32_t>{1, 2}, Shape{}),
                    Catch::Contains("tensor: 2 values do not fill shape [] (1 elements)"));
  CHECK_THROWS_AS(em::tensor(std::vector<bool>{true}, {2}), em::ValueError);
  CHECK_THROWS_WITH(em::tensor(std::vector<bool>{true}, {2}),
                    Catch::Contains("tensor: 1 values do not fill shape [2]"));
}

TEST_CASE("scalar_tensor", "[creation]") {
  Tensor i = em::scalar_tensor(3);
  CHECK(i.dim() == 0);
  CHECK(i.dtype() == em::int64);
  CHECK(i.item<int64_t>() == 3);
  Tensor f = em::scalar_tensor(2.5);
  CHECK(f.dtype() == em::float32);
  CHECK(f.item<float>() == 2.5f);
  Tensor b = em::scalar_tensor(true);
  CHECK(b.dtype() == em::bool_);
  CHECK(b.item<bool>());
  Tensor d = em::scalar_tensor(0.1, em::float64);
  CHECK(d.dtype() == em::float64);
  CHECK(d.item<double>() == 0.1);
  CHECK(em::scalar_tensor(2.7, em::int32).item<int32_t>() == 2);
  CHECK(em::scalar_tensor(-2.7, em::int64).item<int64_t>() == -2);
  CHECK(em::scalar_tensor(0.5, em::bool_).item<bool>());
  CHECK(em::scalar_tensor(9007199254740993LL).item<int64_t>() == 9007199254740993LL);
  // A 0-d tensor made by scalar_tensor is a tensor, not a C++ number: it keeps its dtype
  // where a 1-d tensor of the same kind is absent.
  CHECK((em::scalar_tensor(1.0, em::float64) + em::scalar_tensor(1.0)).dtype() == em::float64);
}

TEST_CASE("zeros, ones, full and empty in every dtype", "[creation]") {
  for (DType dt : cpu_dtypes()) {
    INFO(em::dtype_name(dt));
    Tensor z = em::zeros({2, 3}, dt);
    CHECK(z.dtype() == dt);
    CHECK(z.is_contiguous());
    EMBER_CHECK_VALUES(z, (Shape{2, 3}), std::vector<double>(6, 0.0));
    Tensor o = em::ones({4}, dt);
    CHECK(o.dtype() == dt);
    EMBER_CHECK_VALUES(o, Shape{4}, {1, 1, 1, 1});
    Tensor f = em::full({3, 1}, 1, dt);
    CHECK(f.dtype() == dt);
    EMBER_CHECK_VALUES(f, (Shape{3, 1}), {1, 1, 1});
    Tensor e = em::empty({5, 2}, dt);
    CHECK(e.dtype() == dt);
    CHECK(e.shape() == Shape{5, 2});
    CHECK(e.numel() == 10);
    CHECK(e.is_contiguous());
    CHECK(em::zeros({0, 4}, dt).numel() == 0);
    CHECK(em::ones({}, dt).item<double>() == 1.0);
  }
  CHECK(em::zeros({2}).dtype() == em::float32);
  CHECK(em::empty({2}).dtype() == em::float32);
  // full's dtype follows the value unless given.
  Tensor fi = em::full({2}, 7);
  CHECK(fi.dtype() == em::int64);
  EMBER_CHECK_VALUES(fi, Shape{2}, {7, 7});
  Tensor ff = em::full({2}, 2.5);
  CHECK(ff.dtype() == em::float32);
  EMBER_CHECK_VALUES(ff, Shape{2}, {2.5, 2.5});
  Tensor fb = em::full({2}, true);
  CHECK(fb.dtype() == em::bool_);
  EMBER_CHECK_VALUES(fb, Shape{2}, {1, 1});
  EMBER_CHECK_VALUES(em::full({2}, 2.5, em::int32), Shape{2}, {2, 2});
  EMBER_CHECK_VALUES(em::full({2}, -3, em::float64), Shape{2}, {-3, -3});
  EMBER_CHECK_VALUES(em::full({3}, 0.25, em::bool_), Shape{3}, {1, 1, 1});
  // int64 values beyond 2^53 are exact.
  CHECK(em::full({1}, int64_t{9007199254740993}).to_vector<int64_t>() ==
        std::vector<int64_t>{9007199254740993});
  CHECK(em::full({1}, std::numeric_limits<int64_t>::min()).item<int64_t>() ==
        std::numeric_limits<int64_t>::min());
  Tensor nan = em::full({2}, std::numeric_limits<double>::quiet_NaN(), em::float64);
  CHECK(std::isnan(nan.to_vector<double>()[1]));

  CHECK_THROWS_AS(em::zeros({2, -1}), em::ValueError);
  CHECK_THROWS_WITH(em::zeros({2, -1}), Catch::Contains("negative size in shape [2,-1]"));
  CHECK_THROWS_AS(em::ones({-3}), em::ValueError);
  CHECK_THROWS_WITH(em::ones({-3}), Catch::Contains("negative size in shape [-3]"));
  CHECK_THROWS_AS(em::full({-1}, 1.0), em::ValueError);
  CHECK_THROWS_WITH(em::full({-1}, 1.0), Catch::Contains("negative size in shape [-1]"));
  CHECK_THROWS_AS(em::empty({-1, 2}), em::ValueError);
  CHECK_THROWS_WITH(em::empty({-1, 2}), Catch::Contains("empty: negative size in shape [-1,2]"));
}

TEST_CASE("arange", "[creation]") {
  Tensor a = em::arange(5);
  CHECK(a.dtype() == em::int64);
  EMBER_CHECK_VALUES(a, Shape{5}, {0, 1, 2, 3, 4});
  EMBER_CHECK_VALUES(em::arange(2, 11, 3), Shape{3}, {2, 5, 8});
  EMBER_CHECK_VALUES(em::arange(0, 10, 4), Shape{3}, {0, 4, 8});
  EMBER_CHECK_VALUES(em::arange(-3, 3), Shape{6}, {-3, -2, -1, 0, 1, 2});
  Tensor neg = em::arange(5, 0, -2);
  CHECK(neg.dtype() == em::int64);
  EMBER_CHECK_VALUES(neg, Shape{3}, {5, 3, 1});
  EMBER_CHECK_VALUES(em::arange(10, 0, -4), Shape{3}, {10, 6, 2});
  EMBER_CHECK_VALUES(em::arange(0, 0), Shape{0}, {});
  EMBER_CHECK_VALUES(em::arange(0), Shape{0}, {});

  Tensor f = em::arange(1.0, 2.0, 0.25);
  CHECK(f.dtype() == em::float32);
  EMBER_CHECK_VALUES(f, Shape{4}, {1, 1.25, 1.5, 1.75});
  CHECK(em::arange(3.0).dtype() == em::float32);
  CHECK(em::arange(0, 3, 0.5).dtype() == em::float32);
  EMBER_CHECK_VALUES(em::arange(0, 3, 0.5), Shape{6}, {0, 0.5, 1, 1.5, 2, 2.5});
  EMBER_CHECK_VALUES(em::arange(0.0, -1.0, -0.25), Shape{4}, {0, -0.25, -0.5, -0.75});
  Tensor tenth = em::arange(0.0, 1.0, 0.1, em::float64);
  CHECK(tenth.dtype() == em::float64);
  CHECK(tenth.numel() == 10);
  const auto tv = tenth.to_vector<double>();
  for (int i = 0; i < 10; ++i) CHECK(tv[i] == Approx(0.1 * i).margin(1e-15));
  // Explicit dtypes.
  Tensor af = em::arange(4, em::float64);
  CHECK(af.dtype() == em::float64);
  EMBER_CHECK_VALUES(af, Shape{4}, {0, 1, 2, 3});
  Tensor ai = em::arange(1, 7, 2, em::int32);
  CHECK(ai.dtype() == em::int32);
  EMBER_CHECK_VALUES(ai, Shape{3}, {1, 3, 5});
  Tensor au = em::arange(2.0, 5.0, 1.0, em::uint8);
  CHECK(au.dtype() == em::uint8);
  EMBER_CHECK_VALUES(au, Shape{3}, {2, 3, 4});
  // Large int64 starts are exact.
  Tensor big = em::arange(int64_t{9007199254740992}, int64_t{9007199254740995});
  CHECK(big.to_vector<int64_t>() ==
        std::vector<int64_t>{9007199254740992, 9007199254740993, 9007199254740994});

  CHECK_THROWS_AS(em::arange(0, 5, -1), em::ValueError);
  CHECK_THROWS_WITH(em::arange(0, 5, -1),
                    Catch::Contains("arange: the range 0..5 with step -1 is empty in the wrong "
                                    "direction"));
  CHECK_THROWS_AS(em::arange(5.0, 0.0, 0.5), em::ValueError);
  CHECK_THROWS_WITH(em::arange(5.0, 0.0, 0.5), Catch::Contains("is empty in the wrong direction"));
  CHECK_THROWS_AS(em::arange(-3), em::ValueError);
  CHECK_THROWS_WITH(em::arange(-3), Catch::Contains("arange: the range 0..-3 with step 1"));
  CHECK_THROWS_AS(em::arange(0, 5, 0), em::ValueError);
  CHECK_THROWS_WITH(em::arange(0, 5, 0), Catch::Contains("arange: step must be nonzero"));
  CHECK_THROWS_AS(em::arange(0.0, 2.0, 0.5, em::int32), em::DTypeError);
  CHECK_THROWS_WITH(em::arange(0.0, 2.0, 0.5, em::int32),
                    Catch::Contains("arange: fractional start/step cannot produce dtype int32"));
}

TEST_CASE("linspace", "[creation]") {
  Tensor l = em::linspace(0, 1, 5);
  CHECK(l.dtype() == em::float32);
  EMBER_CHECK_VALUES(l, Shape{5}, {0, 0.25, 0.5, 0.75, 1});
  // Both endpoints are exact, whatever the rounding in between.
  for (int64_t steps : {2, 3, 7, 10, 11, 100, 1001}) {
    INFO("steps " << steps);
    for (DType dt : {em::float32, em::float64}) {
      Tensor t = em::linspace(0.1, 0.7, steps, dt);
      const auto v = t.to_vector<double>();
      CHECK(v.front() == cast_value(0.1, dt));
      CHECK(v.back() == cast_value(0.7, dt));
      std::vector<double> e;
      for (int64_t i = 0; i < steps; ++i) e.push_back(0.1 + 0.6 * double(i) / double(steps - 1));
      EMBER_CHECK_VALUES(t, Shape{steps}, e);
      // Evenly spaced: all gaps equal within rounding.
      for (int64_t i = 1; i < steps; ++i)
        CHECK(v[i] - v[i - 1] == Approx(0.6 / double(steps - 1)).epsilon(dt == em::float32 ? 1e-3 : 1e-9));
    }
  }
  EMBER_CHECK_VALUES(em::linspace(1, -1, 5, em::float64), Shape{5}, {1, 0.5, 0, -0.5, -1});
  EMBER_CHECK_VALUES(em::linspace(3, 3, 4), Shape{4}, {3, 3, 3, 3});
  EMBER_CHECK_VALUES(em::linspace(2.5, 9, 1), Shape{1}, {2.5});
  EMBER_CHECK_VALUES(em::linspace(2.5, 9, 0), Shape{0}, {});
  CHECK(em::linspace(0, 1, 3, em::float64).dtype() == em::float64);

  CHECK_THROWS_AS(em::linspace(0, 1, -1), em::ValueError);
  CHECK_THROWS_WITH(em::linspace(0, 1, -1),
                    Catch::Contains("linspace: steps must be non-negative (got -1)"));
  CHECK_THROWS_AS(em::linspace(0, 1, 3, em::int32), em::DTypeError);
  CHECK_THROWS_WITH(em::linspace(0, 1, 3, em::int32),
                    Catch::Contains("linspace: dtype int32 is not supported"));
}

TEST_CASE("eye", "[creation]") {
  EMBER_CHECK_VALUES(em::eye(3), (Shape{3, 3}), {1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(em::eye(3).dtype() == em::float32);
  EMBER_CHECK_VALUES(em::eye(2, 4), (Shape{2, 4}), {1, 0, 0, 0, 0, 1, 0, 0});
  EMBER_CHECK_VALUES(em::eye(4, 2), (Shape{4, 2}), {1, 0, 0, 1, 0, 0, 0, 0});
  EMBER_CHECK_VALUES(em::eye(1), (Shape{1, 1}), {1});
  CHECK(em::eye(0).shape() == Shape{0, 0});
  CHECK(em::eye(3, 0).shape() == Shape{3, 0});
  Tensor ei = em::eye(2, std::nullopt, em::int64);
  CHECK(ei.dtype() == em::int64);
  EMBER_CHECK_VALUES(ei, (Shape{2, 2}), {1, 0, 0, 1});
  Tensor eb = em::eye(2, 3, em::bool_);
  CHECK(eb.dtype() == em::bool_);
  EMBER_CHECK_VALUES(eb, (Shape{2, 3}), {1, 0, 0, 0, 1, 0});
  CHECK_THROWS_AS(em::eye(-1), em::ValueError);
  CHECK_THROWS_WITH(em::eye(-1), Catch::Contains("negative size in shape [-1,-1]"));
}

TEST_CASE("*_like functions copy shape and dtype, not layout", "[creation]") {
  Tensor src = em::tensor({{1, 2, 3}, {4, 5, 6}}).t();  // int32 [3,2], not contiguous
  Tensor z = em::zeros_like(src);
  CHECK(z.shape() == Shape{3, 2});
  CHECK(z.dtype() == em::int32);
  CHECK(z.is_contiguous());
  EMBER_CHECK_VALUES(z, (Shape{3, 2}), std::vector<double>(6, 0.0));
  Tensor o = em::ones_like(src, em::float64);
  CHECK(o.dtype() == em::float64);
  EMBER_CHECK_VALUES(o, (Shape{3, 2}), std::vector<double>(6, 1.0));
  Tensor f = em::full_like(src, 7);
  CHECK(f.dtype() == em::int32);
  EMBER_CHECK_VALUES(f, (Shape{3, 2}), std::vector<double>(6, 7.0));
  Tensor f2 = em::full_like(src, 2.5, em::float32);
  EMBER_CHECK_VALUES(f2, (Shape{3, 2}), std::vector<double>(6, 2.5));
  // The value is cast to the source's dtype.
  EMBER_CHECK_VALUES(em::full_like(src, 2.5), (Shape{3, 2}), std::vector<double>(6, 2.0));
  Tensor e = em::empty_like(src);
  CHECK(e.shape() == Shape{3, 2});
  CHECK(e.dtype() == em::int32);
  CHECK_FALSE(e.impl().storage.get() == src.impl().storage.get());
  Tensor r = em::rand_like(em::zeros({4, 4}, em::float64));
  CHECK(r.dtype() == em::float64);
  CHECK(r.shape() == Shape{4, 4});
  Tensor rn = em::randn_like(em::zeros({0, 4}));
  CHECK(rn.shape() == Shape{0, 4});
  CHECK(em::zeros_like(em::scalar_tensor(true)).dtype() == em::bool_);
  CHECK_THROWS_AS(em::rand_like(src), em::DTypeError);
  CHECK_THROWS_WITH(em::rand_like(src), Catch::Contains("rand: dtype int32 is not supported"));
}

TEST_CASE("manual_seed makes random numbers reproducible", "[creation][random]") {
  em::manual_seed(42);
  const auto a = em::rand({1000}).to_vector<float>();
  const auto a2 = em::rand({1000}).to_vector<float>();  // the stream moves on
  em::manual_seed(42);
  const auto b = em::rand({1000}).to_vector<float>();
  const auto b2 = em::rand({1000}).to_vector<float>();
  CHECK(a == b);
  CHECK(a2 == b2);
  CHECK(a != a2);
  em::manual_seed(43);
  const auto c = em::rand({1000}).to_vector<float>();
  int same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == c[i];
  CHECK(same < 5);

  em::manual_seed(7);
  const auto n1 = em::randn({500}, em::float64).to_vector<double>();
  const auto i1 = em::randint(0, 1000, {500}).to_vector<int64_t>();
  em::manual_seed(7);
  CHECK(em::randn({500}, em::float64).to_vector<double>() == n1);
  CHECK(em::randint(0, 1000, {500}).to_vector<int64_t>() == i1);
  CHECK(em::default_generator().seed() == 7);

  // A failed call does not advance the stream.
  em::manual_seed(11);
  const auto first = em::rand({8}).to_vector<float>();
  em::manual_seed(11);
  CHECK_THROWS_AS(em::rand({8}, em::int32), em::DTypeError);
  CHECK_THROWS_AS(em::randint(3, 3, {8}), em::ValueError);
  CHECK(em::rand({8}).to_vector<float>() == first);
}

TEST_CASE("truncated_normal redraws values outside [-2, 2], reproducibly", "[creation][random]") {
  em::manual_seed(21);
  const auto z = em::truncated_normal({200000}, em::float64).to_vector<double>();
  double lo = 0, hi = 0, sum = 0, sq = 0;
  for (double v : z) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
    sq += v * v;
  }
  CHECK(lo >= -2.0);
  CHECK(hi <= 2.0);
  CHECK(lo < -1.99);  // the whole range is reached
  CHECK(hi > 1.99);
  // A standard normal cut at +-2 has mean 0 and standard deviation 0.87962
  // (1 - 2 * 2 phi(2) / (2 Phi(2) - 1), phi(2) = 0.053991, Phi(2) = 0.97725).
  const double n = static_cast<double>(z.size()), mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  CHECK(std::abs(mean) < 0.01);
  CHECK(sd == Approx(0.87962).margin(0.005));
  // Values inside the range are randn's own draws (try 0 reads randn's counters).
  em::manual_seed(4);
  const auto plain = em::randn({1000}, em::float64).to_vector<double>();
  em::manual_seed(4);
  const auto cut = em::truncated_normal({1000}, em::float64).to_vector<double>();
  int kept = 0, redrawn = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    if (std::abs(plain[i]) < 2.0) kept += cut[i] == plain[i];
    else redrawn += cut[i] != plain[i] && std::abs(cut[i]) < 2.0;
  }
  const auto outside = std::count_if(plain.begin(), plain.end(), [](double v) { return std::abs(v) >= 2.0; });
  CHECK(outside > 20);  // about 4.6% of 1000
  CHECK(kept == 1000 - outside);
  CHECK(redrawn == outside);
  // float32 draws the same values rounded; a seed repeats them.
  em::manual_seed(4);
  const auto f = em::truncated_normal({1000}).to_vector<float>();
  for (std::size_t i = 0; i < f.size(); ++i) CHECK(f[i] == static_cast<float>(cut[i]));
  em::Generator g(77), h(77);
  CHECK(em::truncated_normal({64}, em::float32, em::Device::cpu(), &g).to_vector<float>() ==
        em::truncated_normal({64}, em::float32, em::Device::cpu(), &h).to_vector<float>());
  CHECK(em::truncated_normal({0, 3}).numel() == 0);
  CHECK_THROWS_WITH(em::truncated_normal({3}, em::int32),
                    "truncated_normal: dtype int32 is not supported; use float32 or float64");
}

TEST_CASE("Generator objects are independent of the default generator", "[creation][random]") {
  em::manual_seed(5);
  const auto expected = em::rand({16}).to_vector<float>();
  em::manual_seed(5);
  em::Generator g(123);
  const auto g1 = em::rand({64}, em::float32, em::Device::cpu(), &g).to_vector<float>();
  em::randn({10}, em::float32, em::Device::cpu(), &g);
  // The default stream was not touched by g.
  CHECK(em::rand({16}).to_vector<float>() == expected);

  // Two generators with one seed give one stream; reseeding restarts it.
  em::Generator h(123);
  CHECK(em::rand({64}, em::float32, em::Device::cpu(), &h).to_vector<float>() == g1);
  h.manual_seed(123);
  CHECK(h.offset() == 0);
  CHECK(em::rand({64}, em::float32, em::Device::cpu(), &h).to_vector<float>() == g1);
  // A copy continues from the same point.
  em::Generator k = h;
  CHECK(k.offset() == h.offset());
  CHECK(em::rand({4}, em::float32, em::Device::cpu(), &k).to_vector<float>() ==
        em::rand({4}, em::float32, em::Device::cpu(), &h).to_vector<float>());
  // The offset counts drawn numbers, rounded up per call.
  em::Generator o(1);
  em::rand({5}, em::float32, em::Device::cpu(), &o);
  CHECK(o.offset() == 8);
  em::rand({0}, em::float32, em::Device::cpu(), &o);
  CHECK(o.offset() == 8);
  // The same seed as the default's gives the same numbers.
  em::manual_seed(99);
  em::Generator same(99);
  CHECK(em::randn({32}).to_vector<float>() ==
        em::randn({32}, em::float32, em::Device::cpu(), &same).to_vector<float>());
  // A default-constructed generator uses PyTorch's default seed.
  CHECK(em::Generator().seed() == em::Generator::kDefaultSeed);
}

TEST_CASE("rand is uniform in [0, 1)", "[creation][random]") {
  em::manual_seed(2024);
  for (DType dt : {em::float32, em::float64}) {
    INFO(em::dtype_name(dt));
    Tensor r = em::rand({100000}, dt);
    CHECK(r.dtype() == dt);
    const Moments m = moments(r);
    CHECK(m.min >= 0.0);
    CHECK(m.max < 1.0);
    CHECK(m.mean == Approx(0.5).margin(0.005));
    CHECK(m.var == Approx(1.0 / 12).margin(0.002));
    // Each tenth of [0, 1) gets about a tenth of the values.
    std::vector<int> bins(10, 0);
    for (double v : values_of(r)) ++bins[static_cast<int>(v * 10)];
    for (int b : bins) CHECK(std::abs(b - 10000) < 500);
  }
  // float64 draws use more than float32's 24 bits.
  const auto d = em::rand({1000}, em::float64).to_vector<double>();
  int fine = 0;
  for (double v : d) fine += std::ldexp(v, 24) != std::floor(std::ldexp(v, 24));
  CHECK(fine > 900);
  // Shapes, 0-d and size 0.
  CHECK(em::rand({2, 3, 4}).shape() == Shape{2, 3, 4});
  const float s = em::rand({}).item<float>();
  CHECK(s >= 0.f);
  CHECK(s < 1.f);
  CHECK(em::rand({0, 5}).numel() == 0);
}

TEST_CASE("randn is standard normal", "[creation][random]") {
  em::manual_seed(77);
  for (DType dt : {em::float32, em::float64}) {
    INFO(em::dtype_name(dt));
    Tensor r = em::randn({100000}, dt);
    CHECK(r.dtype() == dt);
    const Moments m = moments(r);
    CHECK(m.mean == Approx(0.0).margin(0.015));
    CHECK(std::sqrt(m.var) == Approx(1.0).margin(0.015));
    CHECK(m.min < -3.5);
    CHECK(m.max > 3.5);
    // About 68.3% within one standard deviation.
    int within = 0;
    for (double v : values_of(r)) within += std::abs(v) < 1.0;
    CHECK(within / 100000.0 == Approx(0.6827).margin(0.01));
    for (double v : values_of(r)) {
      if (!std::isfinite(v)) {
        FAIL("randn produced " << v);
      }
    }
  }
}

TEST_CASE("randint draws from [low, high)", "[creation][random]") {
  em::manual_seed(3);
  Tensor r = em::randint(-2, 3, {2000});
  CHECK(r.dtype() == em::int64);
  const auto v = r.to_vector<int64_t>();
  std::set<int64_t> seen(v.begin(), v.end());
  CHECK(seen == std::set<int64_t>{-2, -1, 0, 1, 2});
  // Roughly uniform.
  for (int64_t k = -2; k <= 2; ++k) CHECK(std::abs(std::count(v.begin(), v.end(), k) - 400) < 100);

  for (DType dt : {em::uint8, em::int32, em::int64}) {
    INFO(em::dtype_name(dt));
    Tensor t = em::randint(250, 256, {600}, dt);
    CHECK(t.dtype() == dt);
    const auto tv = values_of(t);
    std::set<double> s(tv.begin(), tv.end());
    CHECK(s == std::set<double>{250, 251, 252, 253, 254, 255});
  }
  // A range of one value, a wide range, 0-d.
  EMBER_CHECK_VALUES(em::randint(7, 8, {3}), Shape{3}, {7, 7, 7});
  const auto wide = em::randint(std::numeric_limits<int64_t>::min() / 2,
                                std::numeric_limits<int64_t>::max() / 2, {1000})
                        .to_vector<int64_t>();
  int negative = 0;
  for (int64_t w : wide) {
    CHECK(w >= std::numeric_limits<int64_t>::min() / 2);
    CHECK(w < std::numeric_limits<int64_t>::max() / 2);
    negative += w < 0;
  }
  CHECK(std::abs(negative - 500) < 100);
  const int64_t one = em::randint(0, 10, {}).item<int64_t>();
  CHECK(one >= 0);
  CHECK(one < 10);
}

TEST_CASE("random functions reject bad arguments", "[creation][random][errors]") {
  CHECK_THROWS_AS(em::rand({3}, em::int32), em::DTypeError);
  CHECK_THROWS_WITH(em::rand({3}, em::int32),
                    Catch::Contains("rand: dtype int32 is not supported; use float32 or float64"));
  CHECK_THROWS_AS(em::randn({3}, em::bool_), em::DTypeError);
  CHECK_THROWS_WITH(em::randn({3}, em::bool_),
                    Catch::Contains("randn: dtype bool is not supported; use float32 or float64"));
  CHECK_THROWS_AS(em::randint(5, 5, {3}), em::ValueError);
  CHECK_THROWS_WITH(em::randint(5, 5, {3}),
                    Catch::Contains("randint: low (5) must be less than high (5)"));
  CHECK_THROWS_AS(em::randint(5, 2, {3}), em::ValueError);
  CHECK_THROWS_WITH(em::randint(5, 2, {3}),
                    Catch::Contains("randint: low (5) must be less than high (2)"));
  CHECK_THROWS_AS(em::randint(0, 5, {3}, em::float32), em::DTypeError);
  CHECK_THROWS_WITH(em::randint(0, 5, {3}, em::float32),
                    Catch::Contains("randint: dtype float32 is not supported; use an integer dtype"));
  CHECK_THROWS_AS(em::randint(0, 2, {3}, em::bool_), em::DTypeError);
  CHECK_THROWS_AS(em::rand({-1}), em::ValueError);
  CHECK_THROWS_WITH(em::rand({-1}), Catch::Contains("rand: negative size in shape [-1]"));
  CHECK_THROWS_AS(em::randn({2, -2}), em::ValueError);
  CHECK_THROWS_WITH(em::randn({2, -2}), Catch::Contains("randn: negative size in shape [2,-2]"));
  CHECK_THROWS_AS(em::randint(0, 3, {-4}), em::ValueError);
  CHECK_THROWS_WITH(em::randint(0, 3, {-4}), Catch::Contains("randint: negative size in shape [-4]"));
}

TEST_CASE("random numbers and ops do not depend on the thread count", "[creation][random][threads]") {
  ThreadGuard guard;
  const Shape big{int64_t(1) << 20};
  auto draw = [&](int threads) {
    em::set_num_threads(threads);
    REQUIRE(em::get_num_threads() == threads);
    em::manual_seed(1234);
    std::vector<std::vector<double>> out;
    out.push_back(values_of(em::rand(big)));
    out.push_back(values_of(em::randn(big, em::float64)));
    out.push_back(values_of(em::randint(-1000, 1000, big, em::int32)));
    Tensor x = em::rand(big);
    out.push_back(values_of(em::exp(x) * 2.0f + x));
    return out;
  };
  const auto one = draw(1);
  const auto two = draw(2);
  const auto three = draw(3);
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    INFO("result " << i);
    CHECK(one[i] == two[i]);
    CHECK(one[i] == three[i]);
  }
  // The values are not all equal (the draw really happened).
  CHECK(std::set<double>(one[0].begin(), one[0].begin() + 100).size() > 90);
}
