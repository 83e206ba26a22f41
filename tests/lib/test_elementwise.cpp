// Table-driven tests of the elementwise family (OpInfo-style): one reference row per
// line of lib/ops/elementwise.def, run over every accepted dtype, several layouts and
// shapes (size 0, size 1, broadcasting, 0-d, scalar operands) against a float64
// reference; then the promotion rules, the integer and NaN edge cases of
// lib/ops/functors.h, where and clamp.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
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

enum class Rule { same, to_float, compare, logical };

const std::vector<DType> kAllD = {em::bool_, em::uint8, em::int32, em::int64, em::float32,
                                  em::float64};
const std::vector<DType> kNumericD = {em::uint8, em::int32, em::int64, em::float32, em::float64};
const std::vector<DType> kFloatingD = {em::float32, em::float64};

bool contains(const std::vector<DType>& set, DType dt) {
  return std::find(set.begin(), set.end(), dt) != set.end();
}

// The expected promotion of two tensor dtypes (the CPU dtypes form a chain).
int rank_of(DType dt) {
  switch (dt) {
    case DType::bool_: return 0;
    case DType::uint8: return 1;
    case DType::int32: return 2;
    case DType::int64: return 3;
    case DType::float32: return 4;
    default: return 5;
  }
}
DType promote(DType a, DType b) { return rank_of(a) >= rank_of(b) ? a : b; }
int category(DType dt) { return dt == em::bool_ ? 0 : (em::is_floating(dt) ? 2 : 1); }

// The dtype a tensor of `t` and a C++ number of kind `k` compute in (a number
// never widens a tensor of the same or higher kind).
DType with_scalar(DType t, em::Scalar::Kind k) {
  const int c = k == em::Scalar::Kind::floating ? 2 : (k == em::Scalar::Kind::integer ? 1 : 0);
  if (c <= category(t)) return t;
  return c == 2 ? em::float32 : em::int64;
}

// The dtype the functor runs in, and the dtype of the result.
DType compute_dtype(Rule r, DType promoted) {
  if (r == Rule::to_float) return em::is_floating(promoted) ? promoted : em::float32;
  return promoted;
}
DType result_dtype(Rule r, DType promoted) {
  if (r == Rule::compare || r == Rule::logical) return em::bool_;
  return compute_dtype(r, promoted);
}

bool integral(DType dt) { return !em::is_floating(dt); }

// ---- reference functions (inputs already cast to the compute dtype) --------

double int_pow(double a, double b, DType ct) {
  const auto ia = static_cast<int64_t>(a);
  const auto ib = static_cast<int64_t>(b);
  if (ib < 0) return ia == 1 ? 1.0 : (ia == -1 ? ((ib & 1) ? -1.0 : 1.0) : 0.0);
  uint64_t base = static_cast<uint64_t>(ia), r = 1;
  for (auto e = static_cast<uint64_t>(ib); e; e >>= 1) {
    if (e & 1) r *= base;
    base *= base;
  }
  if (ct == em::uint8) return static_cast<double>(static_cast<uint8_t>(r));
  if (ct == em::int32) return static_cast<double>(static_cast<int32_t>(static_cast<uint32_t>(r)));
  return static_cast<double>(static_cast<int64_t>(r));
}

double py_fmod(double a, double b, DType ct) {
  if (ct == em::float32) {
    float r = std::fmod(static_cast<float>(a), static_cast<float>(b));
    if (r != 0 && ((r < 0) != (b < 0))) r += static_cast<float>(b);
    return r;
  }
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double ref_floor_divide(double a, double b, DType ct) {
  if (integral(ct)) return b == 0 ? 0.0 : std::floor(a / b);
  if (ct == em::float32) return std::floor(static_cast<float>(a) / static_cast<float>(b));
  return std::floor(a / b);
}

double ref_remainder(double a, double b, DType ct) {
  if (integral(ct) && b == 0) return 0.0;
  return py_fmod(a, b, ct);
}

double nan_max(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  return std::max(a, b);
}
double nan_min(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  return std::min(a, b);
}

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// ---- the table ---------------------------------------------------------------

struct UnaryRow {
  const char* name;
  Tensor (*fn)(const Tensor&);
  double (*ref)(double x, DType compute);
  Rule rule;
  std::vector<DType> dtypes;
  Domain domain;
};

struct BinaryRow {
  const char* name;
  Tensor (*fn)(const em::Operand&, const em::Operand&);
  double (*ref)(double a, double b, DType compute);
  Rule rule;
  std::vector<DType> dtypes;
  Domain a_domain;
  Domain b_domain;
};

const Domain kAny = Domain::any();
const Domain kPos = Domain::positive();
const Domain kNonzero = Domain::nonzero_any();
// Whole numbers in [-3, 3] for every dtype, so comparisons see ties.
const Domain kTies = {-3.0, 3.0, -3, 3, false, true};

const std::vector<UnaryRow>& unary_table() {
  static const std::vector<UnaryRow> rows = {
      {"neg", [](const Tensor& x) { return em::neg(x); }, [](double x, DType) { return -x; },
       Rule::same, kNumericD, kAny},
      {"abs", [](const Tensor& x) { return em::abs(x); },
       [](double x, DType) { return std::abs(x); }, Rule::same, kNumericD, kAny},
      {"sign", [](const Tensor& x) { return em::sign(x); },
       [](double x, DType) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : x); }, Rule::same, kNumericD,
       kAny},
      {"exp", [](const Tensor& x) { return em::exp(x); },
       [](double x, DType) { return std::exp(x); }, Rule::to_float, kAllD,
       Domain::range(-8, 8, -5, 5)},
      {"log", [](const Tensor& x) { return em::log(x); },
       [](double x, DType) { return std::log(x); }, Rule::to_float, kAllD, kPos},
      {"log1p", [](const Tensor& x) { return em::log1p(x); },
       [](double x, DType) { return std::log1p(x); }, Rule::to_float, kAllD,
       Domain::range(-0.9, 4, 0, 10)},
      {"expm1", [](const Tensor& x) { return em::expm1(x); },
       [](double x, DType) { return std::expm1(x); }, Rule::to_float, kAllD,
       Domain::range(-3, 3, -5, 5)},
      {"sqrt", [](const Tensor& x) { return em::sqrt(x); },
       [](double x, DType) { return std::sqrt(x); }, Rule::to_float, kAllD, Domain::nonneg()},
      {"rsqrt", [](const Tensor& x) { return em::rsqrt(x); },
       [](double x, DType) { return 1.0 / std::sqrt(x); }, Rule::to_float, kAllD, kPos},
      {"sin", [](const Tensor& x) { return em::sin(x); },
       [](double x, DType) { return std::sin(x); }, Rule::to_float, kAllD,
       Domain::range(-6, 6, -10, 10)},
      {"cos", [](const Tensor& x) { return em::cos(x); },
       [](double x, DType) { return std::cos(x); }, Rule::to_float, kAllD,
       Domain::range(-6, 6, -10, 10)},
      {"tan", [](const Tensor& x) { return em::tan(x); },
       [](double x, DType) { return std::tan(x); }, Rule::to_float, kAllD,
       Domain::range(-1.2, 1.2, -1, 1)},
      {"tanh", [](const Tensor& x) { return em::tanh(x); },
       [](double x, DType) { return std::tanh(x); }, Rule::to_float, kAllD,
       Domain::range(-5, 5, -10, 10)},
      {"sigmoid", [](const Tensor& x) { return em::sigmoid(x); },
       [](double x, DType) { return 1.0 / (1.0 + std::exp(-x)); }, Rule::to_float, kAllD,
       Domain::range(-8, 8, -10, 10)},
      {"erf", [](const Tensor& x) { return em::erf(x); },
       [](double x, DType) { return std::erf(x); }, Rule::to_float, kAllD,
       Domain::range(-3, 3, -3, 3)},
      {"floor", [](const Tensor& x) { return em::floor(x); },
       [](double x, DType) { return std::floor(x); }, Rule::same, kNumericD,
       Domain::range(-5, 5, -10, 10)},
      {"ceil", [](const Tensor& x) { return em::ceil(x); },
       [](double x, DType) { return std::ceil(x); }, Rule::same, kNumericD,
       Domain::range(-5, 5, -10, 10)},
      {"round", [](const Tensor& x) { return em::round(x); },
       [](double x, DType) { return std::nearbyint(x); }, Rule::same, kNumericD,
       Domain::range(-5, 5, -10, 10)},
      {"relu", [](const Tensor& x) { return em::relu(x); },
       [](double x, DType) { return x < 0 ? 0.0 : x; }, Rule::same, kNumericD, kAny},
      {"gelu", [](const Tensor& x) { return em::gelu(x); },
       [](double x, DType) { return gelu_ref(x); }, Rule::same, kFloatingD,
       Domain::range(-5, 5, -5, 5)},
      {"silu", [](const Tensor& x) { return em::silu(x); },
       [](double x, DType) { return x / (1.0 + std::exp(-x)); }, Rule::same, kFloatingD,
       Domain::range(-8, 8, -8, 8)},
      {"softplus", [](const Tensor& x) { return em::softplus(x); },
       [](double x, DType) { return x > 20 ? x : std::log1p(std::exp(x)); }, Rule::same,
       kFloatingD, Domain::range(-30, 30, -30, 30)},
      {"logical_not", [](const Tensor& x) { return em::logical_not(x); },
       [](double x, DType) { return x == 0 ? 1.0 : 0.0; }, Rule::logical, kAllD,
       Domain::range(-1, 1, -1, 1)},
  };
  return rows;
}

const std::vector<BinaryRow>& binary_table() {
  using O = const em::Operand&;
  static const std::vector<BinaryRow> rows = {
      {"add", [](O a, O b) { return em::add(a, b); }, [](double a, double b, DType) { return a + b; },
       Rule::same, kAllD, kAny, kAny},
      {"sub", [](O a, O b) { return em::sub(a, b); }, [](double a, double b, DType) { return a - b; },
       Rule::same, kNumericD, kAny, kAny},
      {"mul", [](O a, O b) { return em::mul(a, b); }, [](double a, double b, DType) { return a * b; },
       Rule::same, kAllD, kAny, kAny},
      {"div", [](O a, O b) { return em::div(a, b); }, [](double a, double b, DType) { return a / b; },
       Rule::to_float, kAllD, kAny, kNonzero},
      {"pow", [](O a, O b) { return em::pow(a, b); },
       [](double a, double b, DType ct) { return integral(ct) ? int_pow(a, b, ct) : std::pow(a, b); },
       Rule::same, kNumericD, Domain::range(0.1, 3, -4, 4), Domain::range(-2, 2, 0, 5)},
      {"floor_divide", [](O a, O b) { return em::floor_divide(a, b); }, &ref_floor_divide,
       Rule::same, kNumericD, kAny, kNonzero},
      {"remainder", [](O a, O b) { return em::remainder(a, b); }, &ref_remainder, Rule::same,
       kNumericD, kAny, kNonzero},
      {"maximum", [](O a, O b) { return em::maximum(a, b); },
       [](double a, double b, DType) { return nan_max(a, b); }, Rule::same, kAllD, kTies, kTies},
      {"minimum", [](O a, O b) { return em::minimum(a, b); },
       [](double a, double b, DType) { return nan_min(a, b); }, Rule::same, kAllD, kTies, kTies},
      {"eq", [](O a, O b) { return em::eq(a, b); },
       [](double a, double b, DType) { return a == b ? 1.0 : 0.0; }, Rule::compare, kAllD, kTies,
       kTies},
      {"ne", [](O a, O b) { return em::ne(a, b); },
       [](double a, double b, DType) { return a != b ? 1.0 : 0.0; }, Rule::compare, kAllD, kTies,
       kTies},
      {"lt", [](O a, O b) { return em::lt(a, b); },
       [](double a, double b, DType) { return a < b ? 1.0 : 0.0; }, Rule::compare, kAllD, kTies,
       kTies},
      {"le", [](O a, O b) { return em::le(a, b); },
       [](double a, double b, DType) { return a <= b ? 1.0 : 0.0; }, Rule::compare, kAllD, kTies,
       kTies},
      {"gt", [](O a, O b) { return em::gt(a, b); },
       [](double a, double b, DType) { return a > b ? 1.0 : 0.0; }, Rule::compare, kAllD, kTies,
       kTies},
      {"ge", [](O a, O b) { return em::ge(a, b); },
       [](double a, double b, DType) { return a >= b ? 1.0 : 0.0; }, Rule::compare, kAllD, kTies,
       kTies},
      {"logical_and", [](O a, O b) { return em::logical_and(a, b); },
       [](double a, double b, DType) { return (a != 0 && b != 0) ? 1.0 : 0.0; }, Rule::logical,
       kAllD, Domain::range(-1, 1, -1, 1), Domain::range(-1, 1, -1, 1)},
      {"logical_or", [](O a, O b) { return em::logical_or(a, b); },
       [](double a, double b, DType) { return (a != 0 || b != 0) ? 1.0 : 0.0; }, Rule::logical,
       kAllD, Domain::range(-1, 1, -1, 1), Domain::range(-1, 1, -1, 1)},
      {"logical_xor", [](O a, O b) { return em::logical_xor(a, b); },
       [](double a, double b, DType) { return ((a != 0) != (b != 0)) ? 1.0 : 0.0; },
       Rule::logical, kAllD, Domain::range(-1, 1, -1, 1), Domain::range(-1, 1, -1, 1)},
      {"tanh_backward", [](O a, O b) { return em::tanh_backward(a, b); },
       [](double g, double y, DType) { return g * (1 - y * y); }, Rule::same, kFloatingD, kAny, kAny},
      {"sigmoid_backward", [](O a, O b) { return em::sigmoid_backward(a, b); },
       [](double g, double y, DType) { return g * y * (1 - y); }, Rule::same, kFloatingD, kAny, kAny},
      {"relu_backward", [](O a, O b) { return em::relu_backward(a, b); },
       [](double g, double y, DType) { return y > 0 ? g : 0.0; }, Rule::same, kNumericD, kAny, kTies},
  };
  return rows;
}

// Values of `x` cast to `ct`, then f, then cast to `out`.
std::vector<double> unary_expected(const UnaryRow& row, const std::vector<double>& x, DType ct,
                                   DType out) {
  std::vector<double> r;
  for (double v : x) r.push_back(cast_value(row.ref(cast_value(v, ct), ct), out));
  return r;
}

std::vector<double> binary_expected(const BinaryRow& row, const std::vector<double>& a,
                                    const Shape& as, const std::vector<double>& b, const Shape& bs,
                                    DType ct, DType out) {
  return ref_binary(
      a, as, b, bs,
      [&](double x, double y) { return row.ref(cast_value(x, ct), cast_value(y, ct), ct); }, out);
}

// A shape to test and, optionally, a smaller shape whose values are broadcast to it
// (so that layouts() also yields a stride-0 view).
struct ShapeCase {
  Shape shape;
  std::optional<Shape> from;
};

const std::vector<ShapeCase>& unary_shapes() {
  static const std::vector<ShapeCase> v = {
      {{}, {}},        {{1}, {}},     {{0}, {}},       {{5}, {}},
      {{2, 3}, {}},    {{1, 1}, {}},  {{2, 0, 3}, {}}, {{3, 1, 4}, {}},
      {{3, 37}, {}},   {{4, 5}, Shape{4, 1}}, {{3, 4}, Shape{1, 4}}, {{2, 3, 5}, Shape{2, 1, 5}},
  };
  return v;
}

Tensor make_input(const ShapeCase& sc, DType dt, const Domain& dom, uint32_t seed) {
  if (!sc.from) return random_tensor(sc.shape, dt, dom, seed);
  Tensor small = random_tensor(*sc.from, dt, dom, seed);
  return from_values(broadcast_values(values_of(small), *sc.from, sc.shape), sc.shape, dt);
}

std::string dt_str(DType dt) { return em::dtype_name(dt); }

}  // namespace

namespace ember::test {
const std::vector<std::string>& elementwise_reference_ops() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& r : unary_table()) v.emplace_back(r.name);
    for (const auto& r : binary_table()) v.emplace_back(r.name);
    return v;
  }();
  return names;
}
}  // namespace ember::test

TEST_CASE("the reference table has one row per line of elementwise.def", "[elementwise]") {
  std::vector<std::string> def;
#define EMBER_UNARY(name, F, rule, dtypes) def.emplace_back(#name);
#define EMBER_BINARY(name, F, rule, dtypes) def.emplace_back(#name);
#include "ops/elementwise.def"
  std::vector<std::string> table = elementwise_reference_ops();
  std::sort(def.begin(), def.end());
  std::sort(table.begin(), table.end());
  CHECK(table == def);
  CHECK(std::adjacent_find(table.begin(), table.end()) == table.end());
}

TEST_CASE("test support: layouts keep the values in other memory layouts", "[elementwise][support]") {
  Tensor src = from_values({1, 2, 3, 1, 2, 3}, {2, 3}, em::int32);  // constant along dim 0
  const auto ls = layouts(src);
  std::vector<std::string> names;
  for (const Layout& l : ls) {
    names.push_back(l.name);
    INFO(l.name);
    CHECK(l.t.dtype() == em::int32);
    EMBER_CHECK_VALUES(l.t, (Shape{2, 3}), {1, 2, 3, 1, 2, 3});
  }
  REQUIRE(names.size() == 4);
  CHECK(names[0] == "contiguous");
  CHECK(ls[0].t.is_contiguous());
  CHECK(names[1] == "transposed");
  CHECK(ls[1].t.strides() == em::Strides{1, 2});
  CHECK(names[2] == "step2_slice");
  CHECK(ls[2].t.strides() == em::Strides{7, 2});
  CHECK(ls[2].t.storage_offset() == 1);
  CHECK(names[3] == "broadcast(dim 0)");
  CHECK(ls[3].t.strides()[0] == 0);
  // Size 0 and 0-d still work.
  CHECK(layouts(em::zeros({0, 3})).size() == 3);
  CHECK(layouts(em::scalar_tensor(1.0)).size() == 1);
  // Reference helpers.
  CHECK(broadcast_shape({4, 1}, {1, 5}) == Shape{4, 5});
  CHECK(broadcast_shape({}, {2, 3}) == Shape{2, 3});
  CHECK(broadcast_values({1, 2}, {2, 1}, {2, 3}) == std::vector<double>{1, 1, 1, 2, 2, 2});
  CHECK(cast_value(-3, em::uint8) == 253);
  CHECK(cast_value(2147483648.0, em::int32) == -2147483648.0);
  CHECK(cast_value(-2.7, em::int64) == -2);
  CHECK(cast_value(0.5, em::bool_) == 1);
  CHECK_FALSE(compare_values(em::tensor({1.f, 2.f}), {2}, {1, 2.5}).empty());
  CHECK(compare_values(em::tensor({1.f, 2.f}), {2}, {1, 2.5}).find("flat index 1 [1]") !=
        std::string::npos);
}

TEST_CASE("unary ops match the float64 reference on every dtype, layout and shape",
          "[elementwise][unary]") {
  const auto& shapes = unary_shapes();
  uint32_t seed = 1;
  for (const UnaryRow& row : unary_table()) {
    for (DType dt : kAllD) {
      INFO("op " << row.name << ", input dtype " << dt_str(dt));
      if (!contains(row.dtypes, dt)) {
        Tensor x = from_values({1, 0, 1}, {3}, dt);
        CHECK_THROWS_AS(row.fn(x), em::DTypeError);
        CHECK_THROWS_WITH(row.fn(x), Catch::Contains(std::string(row.name) +
                                                     ": the input has dtype " + dt_str(dt) +
                                                     ", which is not supported"));
        continue;
      }
      const DType ct = row.rule == Rule::logical ? em::bool_ : compute_dtype(row.rule, dt);
      const DType out_dt = result_dtype(row.rule, dt);
      for (const ShapeCase& sc : shapes) {
        Tensor src = make_input(sc, dt, row.domain, seed++);
        const std::vector<double> expected = unary_expected(row, values_of(src), ct, out_dt);
        for (const Layout& l : layouts(src)) {
          INFO("shape " << str(sc.shape) << ", layout " << l.name);
          Tensor y = row.fn(l.t);
          CHECK(y.dtype() == out_dt);
          const std::string msg = compare_values(y, sc.shape, expected);
          INFO(msg);
          CHECK(msg.empty());
        }
      }
    }
  }
}

TEST_CASE("binary ops match the float64 reference on every dtype, layout and broadcast",
          "[elementwise][binary]") {
  struct Case {
    ShapeCase a, b;
  };
  const std::vector<Case> cases = {
      {{{2, 3}, {}}, {{2, 3}, {}}},      {{{2, 3}, {}}, {{3}, {}}},
      {{{4, 1}, {}}, {{1, 5}, {}}},      {{{}, {}}, {{2, 3}, {}}},
      {{{2, 3}, {}}, {{}, {}}},          {{{}, {}}, {{}, {}}},
      {{{0, 3}, {}}, {{3}, {}}},         {{{1}, {}}, {{0}, {}}},
      {{{2, 0}, {}}, {{1, 1}, {}}},      {{{3, 1, 2}, {}}, {{4, 1}, {}}},
      {{{3, 37}, {}}, {{3, 37}, {}}},    {{{3, 37}, {}}, {{37}, {}}},
      {{{4, 5}, Shape{4, 1}}, {{4, 5}, {}}}, {{{2, 3}, {}}, {{2, 3}, Shape{1, 3}}},
  };
  uint32_t seed = 100000;
  for (const BinaryRow& row : binary_table()) {
    for (DType dt : kAllD) {
      INFO("op " << row.name << ", dtype " << dt_str(dt));
      if (!contains(row.dtypes, dt)) {
        Tensor x = from_values({1, 0, 1}, {3}, dt);
        CHECK_THROWS_AS(row.fn(x, x), em::DTypeError);
        CHECK_THROWS_WITH(row.fn(x, x), Catch::Contains(std::string(row.name) + ": a has dtype " +
                                                        dt_str(dt) + ", which is not supported"));
        continue;
      }
      const DType ct = row.rule == Rule::logical ? em::bool_ : compute_dtype(row.rule, dt);
      const DType out_dt = result_dtype(row.rule, dt);
      for (const Case& c : cases) {
        Tensor a = make_input(c.a, dt, row.a_domain, seed++);
        Tensor b = make_input(c.b, dt, row.b_domain, seed++);
        const Shape os = broadcast_shape(c.a.shape, c.b.shape);
        const std::vector<double> expected =
            binary_expected(row, values_of(a), c.a.shape, values_of(b), c.b.shape, ct, out_dt);
        const auto la = layouts(a), lb = layouts(b);
        auto check = [&](const Layout& x, const Layout& y) {
          INFO("shapes " << str(c.a.shape) << " and " << str(c.b.shape) << ", layouts " << x.name
                         << " and " << y.name);
          Tensor r = row.fn(x.t, y.t);
          CHECK(r.dtype() == out_dt);
          const std::string msg = compare_values(r, os, expected);
          INFO(msg);
          CHECK(msg.empty());
        };
        for (const Layout& x : la) check(x, lb[0]);
        for (std::size_t j = 1; j < lb.size(); ++j) check(la[0], lb[j]);
        if (la.size() > 1 && lb.size() > 1) check(la[1], lb.back());
      }
      // The same tensor on both sides.
      Tensor x = random_tensor({3, 4}, dt, row.a_domain, seed++);
      const std::vector<double> xs = values_of(x);
      const std::string msg = compare_values(
          row.fn(x, x), {3, 4}, binary_expected(row, xs, {3, 4}, xs, {3, 4}, ct, out_dt));
      INFO("x op x: " << msg);
      CHECK(msg.empty());
    }
  }
}

TEST_CASE("binary ops with a C++ number on either side follow the scalar promotion rules",
          "[elementwise][binary][promotion]") {
  const std::vector<em::Scalar> scalars = {em::Scalar(2), em::Scalar(-3), em::Scalar(2.5),
                                           em::Scalar(true)};
  uint32_t seed = 200000;
  for (const BinaryRow& row : binary_table()) {
    for (DType dt : kAllD) {
      Tensor t = random_tensor({2, 3}, dt, row.a_domain, seed++);
      const std::vector<double> tv = values_of(t);
      for (const em::Scalar& s : scalars) {
        INFO("op " << row.name << ", tensor dtype " << dt_str(dt) << ", scalar " << s.str());
        const DType p = with_scalar(dt, s.kind());
        // A negative number compared with a uint8 tensor has no settled meaning; skip it.
        if (row.rule == Rule::compare && p == em::uint8 && s.to_double() < 0) continue;
        // The number as stored in the promoted dtype (e.g. -3 in uint8 is 253).
        const double sv = cast_value(s.to_double(), p);
        if (!contains(row.dtypes, p)) {
          CHECK_THROWS_AS(row.fn(t, s), em::DTypeError);
          CHECK_THROWS_WITH(row.fn(t, s), Catch::Contains(std::string(row.name) + ": ") &&
                                              Catch::Contains("has dtype " + dt_str(p)));
          continue;
        }
        const DType ct = row.rule == Rule::logical ? em::bool_ : compute_dtype(row.rule, p);
        const DType out_dt = result_dtype(row.rule, p);
        {
          Tensor r = row.fn(t, s);
          CHECK(r.dtype() == out_dt);
          const std::string msg =
              compare_values(r, {2, 3}, binary_expected(row, tv, {2, 3}, {sv}, {}, ct, out_dt));
          INFO("tensor op scalar: " << msg);
          CHECK(msg.empty());
        }
        {
          Tensor r = row.fn(s, t.t());
          CHECK(r.dtype() == out_dt);
          const std::vector<double> ttv = permute_values(tv, {2, 3}, {1, 0});
          const std::string msg =
              compare_values(r, {3, 2}, binary_expected(row, {sv}, {}, ttv, {3, 2}, ct, out_dt));
          INFO("scalar op tensor.t(): " << msg);
          CHECK(msg.empty());
        }
      }
    }
  }
}

TEST_CASE("binary ops promote mixed tensor dtypes like PyTorch", "[elementwise][binary][promotion]") {
  uint32_t seed = 300000;
  for (const BinaryRow& row : binary_table()) {
    for (DType da : kAllD) {
      for (DType db : kAllD) {
        INFO("op " << row.name << ", dtypes " << dt_str(da) << " and " << dt_str(db));
        const DType p = promote(da, db);
        Tensor a = random_tensor({3, 4}, da, row.a_domain, seed++);
        Tensor b = random_tensor({4}, db, row.b_domain, seed++);
        if (!contains(row.dtypes, p)) {
          CHECK_THROWS_AS(row.fn(a, b), em::DTypeError);
          CHECK_THROWS_WITH(row.fn(a, b), Catch::Contains(std::string(row.name) + ": ") &&
                                              Catch::Contains("has dtype " + dt_str(p) +
                                                              ", which is not supported"));
          continue;
        }
        const DType ct = row.rule == Rule::logical ? em::bool_ : compute_dtype(row.rule, p);
        const DType out_dt = result_dtype(row.rule, p);
        Tensor r = row.fn(a, b);
        CHECK(r.dtype() == out_dt);
        const std::string msg = compare_values(
            r, {3, 4}, binary_expected(row, values_of(a), {3, 4}, values_of(b), {4}, ct, out_dt));
        INFO(msg);
        CHECK(msg.empty());
      }
    }
  }
}

TEST_CASE("scalar promotion rules from the design", "[elementwise][promotion]") {
  Tensor i32 = em::tensor({1, 2, 3});
  REQUIRE(i32.dtype() == em::int32);

  Tensor r = i32 * 2.5;
  CHECK(r.dtype() == em::float32);
  EMBER_CHECK_VALUES(r, Shape{3}, {2.5, 5.0, 7.5});

  Tensor f32 = em::tensor({1.5f, -2.0f});
  r = f32 * 2.0;
  CHECK(r.dtype() == em::float32);
  EMBER_CHECK_VALUES(r, Shape{2}, {3.0, -4.0});

  r = i32 + 1;
  CHECK(r.dtype() == em::int32);
  EMBER_CHECK_VALUES(r, Shape{3}, {2, 3, 4});

  r = 10 - i32;
  CHECK(r.dtype() == em::int32);
  EMBER_CHECK_VALUES(r, Shape{3}, {9, 8, 7});

  Tensor u8 = from_values({250, 7}, {2}, em::uint8);
  r = u8 + em::tensor({10, -20});
  CHECK(r.dtype() == em::int32);
  EMBER_CHECK_VALUES(r, Shape{2}, {260, -13});

  Tensor f64_0d = em::scalar_tensor(0.25, em::float64);
  REQUIRE(f64_0d.dim() == 0);
  r = f64_0d + em::tensor({1.0f, 2.0f});
  CHECK(r.dtype() == em::float32);
  EMBER_CHECK_VALUES(r, Shape{2}, {1.25, 2.25});

  // A 0-d tensor of a higher kind does promote.
  r = em::tensor({1, 2}) + f64_0d;
  CHECK(r.dtype() == em::float64);
  EMBER_CHECK_VALUES(r, Shape{2}, {1.25, 2.25});
  // One of the same kind does not widen.
  r = em::tensor({1, 2}) + em::scalar_tensor(int64_t{5}, em::int64);
  CHECK(r.dtype() == em::int32);
  EMBER_CHECK_VALUES(r, Shape{2}, {6, 7});

  Tensor bt = from_values({1, 0, 1, 0}, {4}, em::bool_);
  Tensor bu = from_values({1, 1, 0, 0}, {4}, em::bool_);
  r = bt + bu;
  CHECK(r.dtype() == em::bool_);
  EMBER_CHECK_VALUES(r, Shape{4}, {1, 1, 1, 0});
  r = bt * bu;
  CHECK(r.dtype() == em::bool_);
  EMBER_CHECK_VALUES(r, Shape{4}, {1, 0, 0, 0});

  r = bt + 1;
  CHECK(r.dtype() == em::int64);
  EMBER_CHECK_VALUES(r, Shape{4}, {2, 1, 2, 1});
  r = bt * 2.5;
  CHECK(r.dtype() == em::float32);
  EMBER_CHECK_VALUES(r, Shape{4}, {2.5, 0, 2.5, 0});

  r = em::tensor({1.0, 2.0}) * 2.5f;
  CHECK(r.dtype() == em::float64);
  r = em::tensor({int64_t{3}}) * 0.5;
  CHECK(r.dtype() == em::float32);
  r = em::tensor({1.0f}) + em::tensor({1.0});
  CHECK(r.dtype() == em::float64);

  // Comparisons run in the promoted dtype: 2.5 is not truncated to 2.
  r = i32 < 2.5;
  CHECK(r.dtype() == em::bool_);
  EMBER_CHECK_VALUES(r, Shape{3}, {1, 1, 0});
  EMBER_CHECK_VALUES(i32 == 2.0, Shape{3}, {0, 1, 0});
  EMBER_CHECK_VALUES(i32 == 2.5, Shape{3}, {0, 0, 0});
  // Division of ints is true division in float32.
  r = i32 / 2;
  CHECK(r.dtype() == em::float32);
  EMBER_CHECK_VALUES(r, Shape{3}, {0.5, 1.0, 1.5});
  // uint8 arithmetic wraps like PyTorch.
  r = from_values({3, 0}, {2}, em::uint8) - 5;
  CHECK(r.dtype() == em::uint8);
  EMBER_CHECK_VALUES(r, Shape{2}, {254, 251});
  r = -from_values({3, 0}, {2}, em::uint8);
  EMBER_CHECK_VALUES(r, Shape{2}, {253, 0});
}

TEST_CASE("operators map to their ops", "[elementwise]") {
  Tensor a = em::tensor({5, -7, 9});
  Tensor b = em::tensor({2, 3, -4});
  EMBER_CHECK_VALUES(a + b, Shape{3}, {7, -4, 5});
  EMBER_CHECK_VALUES(a - b, Shape{3}, {3, -10, 13});
  EMBER_CHECK_VALUES(a * b, Shape{3}, {10, -21, -36});
  EMBER_CHECK_VALUES(a / b, Shape{3}, {2.5, -7.0 / 3.0, -2.25});
  EMBER_CHECK_VALUES(a % b, Shape{3}, {1, 2, -3});
  EMBER_CHECK_VALUES(-a, Shape{3}, {-5, 7, -9});
  EMBER_CHECK_VALUES(a == 5, Shape{3}, {1, 0, 0});
  EMBER_CHECK_VALUES(a != 5, Shape{3}, {0, 1, 1});
  EMBER_CHECK_VALUES(a < b, Shape{3}, {0, 1, 0});
  EMBER_CHECK_VALUES(a <= 9, Shape{3}, {1, 1, 1});
  EMBER_CHECK_VALUES(a > b, Shape{3}, {1, 0, 1});
  EMBER_CHECK_VALUES(a >= 9, Shape{3}, {0, 0, 1});
  EMBER_CHECK_VALUES(!(a > 0), Shape{3}, {0, 1, 0});
  CHECK((!(a > 0)).dtype() == em::bool_);
}

TEST_CASE("integer division and remainder edge cases", "[elementwise][edge]") {
  for (DType dt : {em::int32, em::int64}) {
    INFO(dt_str(dt));
    Tensor a = from_values({7, -7, 7, -7, 6, 0, 5}, {7}, dt);
    Tensor b = from_values({2, 2, -2, -2, 3, 3, 0}, {7}, dt);
    Tensor q = em::floor_divide(a, b);
    CHECK(q.dtype() == dt);
    EMBER_CHECK_VALUES(q, Shape{7}, {3, -4, -4, 3, 2, 0, 0});
    Tensor r = em::remainder(a, b);
    CHECK(r.dtype() == dt);
    // The sign follows the divisor (Python semantics); by 0 gives 0.
    EMBER_CHECK_VALUES(r, Shape{7}, {1, 1, -1, -1, 0, 0, 0});
    EMBER_CHECK_VALUES(a % 3, Shape{7}, {1, 2, 1, 2, 0, 0, 2});
    EMBER_CHECK_VALUES(a % -3, Shape{7}, {-2, -1, -2, -1, 0, 0, -1});
    // Every value divided by 0.
    EMBER_CHECK_VALUES(em::floor_divide(a, 0), Shape{7}, {0, 0, 0, 0, 0, 0, 0});
    EMBER_CHECK_VALUES(em::remainder(a, 0), Shape{7}, {0, 0, 0, 0, 0, 0, 0});
    // True division by 0 is IEEE.
    Tensor d = em::div(from_values({1, -1, 0}, {3}, dt), 0);
    CHECK(d.dtype() == em::float32);
    auto dv = values_of(d);
    CHECK(dv[0] == std::numeric_limits<double>::infinity());
    CHECK(dv[1] == -std::numeric_limits<double>::infinity());
    CHECK(std::isnan(dv[2]));
  }
  {
    Tensor a = from_values({7, 0, 255}, {3}, em::uint8);
    EMBER_CHECK_VALUES(em::floor_divide(a, from_values({2, 0, 0}, {3}, em::uint8)), Shape{3},
                       {3, 0, 0});
    EMBER_CHECK_VALUES(em::remainder(a, from_values({4, 0, 0}, {3}, em::uint8)), Shape{3},
                       {3, 0, 0});
  }
  // INT_MIN / -1 overflows: it must not trap (SIGFPE); the result wraps.
  {
    const int32_t mn = std::numeric_limits<int32_t>::min();
    Tensor a = em::tensor({mn, mn, 9});
    Tensor b = em::tensor({-1, 1, -1});
    EMBER_CHECK_VALUES(em::floor_divide(a, b), Shape{3}, {double(mn), double(mn), -9});
    EMBER_CHECK_VALUES(em::remainder(a, b), Shape{3}, {0, 0, 0});
    EMBER_CHECK_VALUES(em::div(a, b), Shape{3}, {2147483648.0, double(mn), -9});
    const int64_t mn64 = std::numeric_limits<int64_t>::min();
    Tensor a64 = em::tensor({mn64});
    EMBER_CHECK_VALUES(em::floor_divide(a64, int64_t{-1}), Shape{1}, {double(mn64)});
    EMBER_CHECK_VALUES(em::remainder(a64, int64_t{-1}), Shape{1}, {0});
  }
  // Floating remainder and floor_divide follow the same sign rules.
  for (DType dt : kFloatingD) {
    INFO(dt_str(dt));
    Tensor a = from_values({-7.5, 7.5, 7.5, -7.5, 6.0}, {5}, dt);
    Tensor b = from_values({2, -2, 2, -2, 3}, {5}, dt);
    EMBER_CHECK_VALUES(em::remainder(a, b), Shape{5}, {0.5, -0.5, 1.5, -1.5, 0});
    EMBER_CHECK_VALUES(em::floor_divide(a, b), Shape{5}, {-4, -4, 3, 3, 2});
    auto r0 = values_of(em::remainder(a, 0.0));
    for (double v : r0) CHECK(std::isnan(v));
  }
}

TEST_CASE("integer pow is exact and truncates negative exponents", "[elementwise][edge]") {
  for (DType dt : {em::int32, em::int64}) {
    INFO(dt_str(dt));
    Tensor base = from_values({2, 2, 1, -1, -1, 3, -2, 0, 0}, {9}, dt);
    Tensor ex = from_values({-1, 10, -5, -3, -2, 0, 3, 0, 5}, {9}, dt);
    Tensor r = em::pow(base, ex);
    CHECK(r.dtype() == dt);
    EMBER_CHECK_VALUES(r, Shape{9}, {0, 1024, 1, -1, 1, 1, -8, 1, 0});
  }
  // Large exact powers (no detour through float).
  Tensor big = em::pow(em::tensor({int64_t{3}}), int64_t{39});
  CHECK(big.item<int64_t>() == 4052555153018976267LL);
  Tensor r = em::pow(em::tensor({2, 3}), 2);
  CHECK(r.dtype() == em::int32);
  EMBER_CHECK_VALUES(r, Shape{2}, {4, 9});
  // A float exponent on an int tensor computes in float32.
  r = em::pow(em::tensor({4, 9}), 0.5);
  CHECK(r.dtype() == em::float32);
  EMBER_CHECK_VALUES(r, Shape{2}, {2, 3});
  // uint8 wraps.
  r = em::pow(from_values({2, 3}, {2}, em::uint8), 8);
  CHECK(r.dtype() == em::uint8);
  EMBER_CHECK_VALUES(r, Shape{2}, {0, double(6561 % 256)});
}

TEST_CASE("floating pow at special values matches std::pow on every path", "[elementwise][edge]") {
  const std::vector<double> a0 = {0, 0, 0, -2, -2, -8, 1, 2, -0.0, 3, 0.5, -1, 0, 4, -3, 10};
  const std::vector<double> b0 = {0, -1, 2, 2, 3, 1.0 / 3, 1e9, -1, -1, 0, -1, 1e9, 0.5, 0.5, -2, 3};
  // Repeated so that the SIMD body (not only the padded tail) sees each case.
  std::vector<double> a, b;
  for (int r = 0; r < 3; ++r) {
    a.insert(a.end(), a0.begin(), a0.end());
    b.insert(b.end(), b0.begin(), b0.end());
  }
  const auto n = static_cast<int64_t>(a.size());
  for (DType dt : kFloatingD) {
    INFO(dt_str(dt));
    std::vector<double> e;
    for (std::size_t i = 0; i < a.size(); ++i)
      e.push_back(dt == em::float32 ? std::pow(static_cast<float>(a[i]), static_cast<float>(b[i]))
                                    : std::pow(a[i], b[i]));
    Tensor ta = from_values(a, {n}, dt), tb = from_values(b, {n}, dt);
    for (const Layout& la : layouts(ta)) {
      INFO("layout " << la.name);
      EMBER_CHECK_VALUES(em::pow(la.t, tb), Shape{n}, e);
    }
    // pow(0, y) with a scalar exponent.
    Tensor z = em::zeros({40}, dt);
    EMBER_CHECK_VALUES(em::pow(z, 0.0), Shape{40}, std::vector<double>(40, 1.0));
    EMBER_CHECK_VALUES(em::pow(z, -1.0), Shape{40},
                       std::vector<double>(40, std::numeric_limits<double>::infinity()));
  }
}

TEST_CASE("round is half to even, floor and ceil on floats and ints", "[elementwise][edge]") {
  for (DType dt : kFloatingD) {
    INFO(dt_str(dt));
    Tensor x = from_values({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 3.5000001, -0.0}, {9}, dt);
    EMBER_CHECK_VALUES(em::round(x), Shape{9}, {0, 2, 2, -0.0, -2, -2, 2, 4, 0});
    EMBER_CHECK_VALUES(em::floor(x), Shape{9}, {0, 1, 2, -1, -2, -3, 2, 3, 0});
    EMBER_CHECK_VALUES(em::ceil(x), Shape{9}, {1, 2, 3, -0.0, -1, -2, 3, 4, 0});
    // On a tensor long enough for the SIMD body and its tail.
    std::vector<double> v, e;
    for (int i = -20; i < 20; ++i) {
      v.push_back(i + 0.5);
      e.push_back(std::nearbyint(i + 0.5));
    }
    EMBER_CHECK_VALUES(em::round(from_values(v, {40}, dt)), Shape{40}, e);
  }
  Tensor i = em::tensor({-3, 0, 7});
  for (Tensor r : {em::round(i), em::floor(i), em::ceil(i)}) {
    CHECK(r.dtype() == em::int32);
    EMBER_CHECK_VALUES(r, Shape{3}, {-3, 0, 7});
  }
}

TEST_CASE("NaN propagates through relu, maximum, minimum and sign", "[elementwise][edge]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : kFloatingD) {
    INFO(dt_str(dt));
    // 37 elements: NaNs in the SIMD body and in the tail, on either side.
    std::vector<double> a(37), b(37);
    for (int i = 0; i < 37; ++i) {
      a[i] = i - 18.0;
      b[i] = 18.0 - i;
    }
    a[3] = nan;
    b[5] = nan;
    a[35] = nan;
    b[36] = nan;
    Tensor ta = from_values(a, {37}, dt), tb = from_values(b, {37}, dt);
    std::vector<double> emax, emin, erelu;
    for (int i = 0; i < 37; ++i) {
      emax.push_back(nan_max(a[i], b[i]));
      emin.push_back(nan_min(a[i], b[i]));
      erelu.push_back(std::isnan(a[i]) ? nan : std::max(a[i], 0.0));
    }
    EMBER_CHECK_VALUES(em::maximum(ta, tb), Shape{37}, emax);
    EMBER_CHECK_VALUES(em::minimum(ta, tb), Shape{37}, emin);
    EMBER_CHECK_VALUES(em::maximum(tb, ta), Shape{37}, emax);
    EMBER_CHECK_VALUES(em::minimum(tb, ta), Shape{37}, emin);
    EMBER_CHECK_VALUES(em::relu(ta), Shape{37}, erelu);
    // Strided (non-SIMD) path too.
    EMBER_CHECK_VALUES(em::relu(layouts(ta)[1].t), Shape{37}, erelu);
    // A NaN scalar.
    auto m = values_of(em::maximum(ta, nan));
    CHECK(std::all_of(m.begin(), m.end(), [](double v) { return std::isnan(v); }));
    Tensor s = em::sign(from_values({nan, -0.0, 0.0, -2.0, 3.0}, {5}, dt));
    auto sv = values_of(s);
    CHECK(std::isnan(sv[0]));
    CHECK(sv[1] == 0.0);
    CHECK(std::signbit(sv[1]));
    CHECK(sv[2] == 0.0);
    CHECK(sv[3] == -1.0);
    CHECK(sv[4] == 1.0);
    // Comparisons with NaN are false except ne.
    Tensor n = from_values({nan}, {1}, dt);
    CHECK_FALSE(em::eq(n, n).item<bool>());
    CHECK(em::ne(n, n).item<bool>());
    CHECK_FALSE(em::lt(n, 1.0).item<bool>());
    CHECK_FALSE(em::ge(n, 1.0).item<bool>());
  }
}

TEST_CASE("integer arithmetic wraps instead of overflowing", "[elementwise][edge]") {
  const int32_t mx = std::numeric_limits<int32_t>::max();
  const int32_t mn = std::numeric_limits<int32_t>::min();
  Tensor a = em::tensor({mx, mn});
  EMBER_CHECK_VALUES(a + 1, Shape{2}, {double(mn), double(mn) + 1});
  EMBER_CHECK_VALUES(a - 1, Shape{2}, {double(mx) - 1, double(mx)});
  EMBER_CHECK_VALUES(-a, Shape{2}, {double(-mx), double(mn)});
  EMBER_CHECK_VALUES(em::abs(a), Shape{2}, {double(mx), double(mn)});
  EMBER_CHECK_VALUES(a * 2, Shape{2}, {-2, 0});
  Tensor u = from_values({200, 255}, {2}, em::uint8);
  EMBER_CHECK_VALUES(u + u, Shape{2}, {144, 254});
  EMBER_CHECK_VALUES(em::abs(u), Shape{2}, {200, 255});
  EMBER_CHECK_VALUES(em::sign(from_values({0, 9}, {2}, em::uint8)), Shape{2}, {0, 1});
}

TEST_CASE("math functions at special values", "[elementwise][edge]") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : kFloatingD) {
    INFO(dt_str(dt));
    auto v = values_of(em::log(from_values({0.0, -1.0, inf}, {3}, dt)));
    CHECK(v[0] == -inf);
    CHECK(std::isnan(v[1]));
    CHECK(v[2] == inf);
    v = values_of(em::exp(from_values({-inf, inf, 0.0}, {3}, dt)));
    CHECK(v[0] == 0.0);
    CHECK(v[1] == inf);
    CHECK(v[2] == 1.0);
    v = values_of(em::sigmoid(from_values({-inf, inf, -100.0, 100.0}, {4}, dt)));
    CHECK(v[0] == 0.0);
    CHECK(v[1] == 1.0);
    CHECK(v[2] == Approx(0.0).margin(1e-30));
    CHECK(v[3] == 1.0);
    v = values_of(em::softplus(from_values({100.0, 20.5, -100.0}, {3}, dt)));
    CHECK(v[0] == 100.0);
    CHECK(v[1] == 20.5);
    CHECK(v[2] == Approx(std::exp(-100.0)).epsilon(1e-4).margin(1e-40));
    v = values_of(em::sqrt(from_values({-1.0, 0.0, inf}, {3}, dt)));
    CHECK(std::isnan(v[0]));
    CHECK(v[1] == 0.0);
    CHECK(v[2] == inf);
    v = values_of(em::rsqrt(from_values({0.0, 4.0}, {2}, dt)));
    CHECK(v[0] == inf);
    CHECK(v[1] == 0.5);
    v = values_of(em::expm1(from_values({1e-10}, {1}, dt)));
    CHECK(v[0] == Approx(1e-10).epsilon(1e-5));
    v = values_of(em::log1p(from_values({1e-10, -1.0}, {2}, dt)));
    CHECK(v[0] == Approx(1e-10).epsilon(1e-5));
    CHECK(v[1] == -inf);
    v = values_of(em::tanh(from_values({-inf, inf, 50.0}, {3}, dt)));
    CHECK(v[0] == -1.0);
    CHECK(v[1] == 1.0);
    CHECK(v[2] == 1.0);
    v = values_of(em::erf(from_values({-inf, inf, 0.0}, {3}, dt)));
    CHECK(v[0] == -1.0);
    CHECK(v[1] == 1.0);
    CHECK(v[2] == 0.0);
    v = values_of(em::relu(from_values({-inf, inf}, {2}, dt)));
    CHECK(v[0] == 0.0);
    CHECK(v[1] == inf);
  }
}

// float32 tanh is ember's own rational function (Note [float32 tanh] in
// lib/ops/math.h): at most 5.3 ulp over every float32 (measured exhaustively);
// here a sweep of ~700k floats of both signs across the whole curve.
TEST_CASE("float32 tanh stays within 6 ulp of the float64 tanh", "[elementwise][edge]") {
  std::vector<float> xs;
  auto bits_of = [](float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
  };
  for (uint32_t b = bits_of(1e-40f); b < bits_of(12.0f); b += 1531) {
    float f;
    std::memcpy(&f, &b, 4);
    xs.push_back(f);
    xs.push_back(-f);
  }
  const int64_t n = static_cast<int64_t>(xs.size());
  Tensor x = em::tensor(xs, {n});
  // A transposed view goes through the strided path of the same kernel.
  for (const Tensor& y : {em::tanh(x), em::tanh(x.reshape({2, n / 2}).transpose(0, 1)).transpose(0, 1).reshape({n})}) {
    const std::vector<float> got = y.contiguous().to_vector<float>();
    double worst = 0.0;
    float worst_x = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      const double exact = std::tanh(static_cast<double>(xs[i]));
      const float want = static_cast<float>(exact);
      const double ulp = std::nextafter(std::fabs(want), 2.0f) - std::fabs(want);
      const double err = std::fabs(static_cast<double>(got[i]) - exact) / ulp;
      if (err > worst) worst = err, worst_x = xs[i];
      if (got[i] != -got[i ^ 1]) FAIL("tanh is not odd at " << xs[i]);
    }
    INFO("largest error at x = " << worst_x);
    CHECK(worst <= 6.0);
  }
  const std::vector<float> special =
      em::tanh(em::tensor<float>({0.0f, -0.0f, 9.0f, 9.02f, -1e30f, std::nanf("")})).to_vector<float>();
  CHECK(special[0] == 0.0f);
  CHECK(!std::signbit(special[0]));
  CHECK(std::signbit(special[1]));
  CHECK(special[2] == Approx(std::tanh(9.0)).epsilon(1e-7));
  CHECK(special[3] == 1.0f);
  CHECK(special[4] == -1.0f);
  CHECK(std::isnan(special[5]));
}

TEST_CASE("large tensors (threaded path) match the reference", "[elementwise]") {
  const int64_t n = (int64_t(1) << 18) + 77;
  Tensor a = random_tensor({n}, em::float32, Domain::range(-3, 3, 0, 0), 7);
  Tensor b = random_tensor({n}, em::float32, Domain::positive(), 8);
  const auto av = values_of(a), bv = values_of(b);
  std::vector<double> e_add, e_exp, e_div;
  for (int64_t i = 0; i < n; ++i) {
    e_add.push_back(cast_value(av[i] + bv[i], em::float32));
    e_exp.push_back(std::exp(av[i]));
    e_div.push_back(av[i] / bv[i]);
  }
  EMBER_CHECK_VALUES(a + b, Shape{n}, e_add);
  EMBER_CHECK_VALUES(em::exp(a), Shape{n}, e_exp);
  EMBER_CHECK_VALUES(a / b, Shape{n}, e_div);
  // Non-contiguous and broadcast operands at the same size.
  Tensor m = a.slice(0, 0, 512 * 512).reshape({512, 512});
  Tensor row = b.slice(0, 0, 512);
  std::vector<double> e_t;
  const auto mv = values_of(m), rv = values_of(row);
  for (int i = 0; i < 512; ++i)
    for (int j = 0; j < 512; ++j)
      e_t.push_back(cast_value(mv[j * 512 + i] * rv[j], em::float32));
  EMBER_CHECK_VALUES(m.t() * row, (Shape{512, 512}), e_t);
}

TEST_CASE("transposed operands and outputs walked in tiles match the reference", "[elementwise][layout]") {
  // Shapes whose last two dims are and are not multiples of the 16 x 64 tiles
  // (Note [Tiled strided loops] in lib/cpu/loops.cpp), with and without outer dims.
  for (const Shape& shape : {Shape{37, 70}, Shape{16, 64}, Shape{3, 21, 130}, Shape{2, 300}}) {
    const int64_t rank = static_cast<int64_t>(shape.size());
    const int64_t rows = shape[rank - 2], cols = shape[rank - 1], outer = numel_of(shape) / (rows * cols);
    // x[o][r][c] = value; x.transpose(-1, -2) is a view of a [.., cols, rows] buffer.
    auto swapped = [&](const std::vector<double>& v) {
      std::vector<double> w(v.size());
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c) w[(o * cols + c) * rows + r] = v[(o * rows + r) * cols + c];
      return w;
    };
    Shape tshape = shape;
    std::swap(tshape[rank - 1], tshape[rank - 2]);
    for (DType dt : kAllD) {
      INFO("shape " << str(shape) << ", " << dt_str(dt));
      const std::vector<double> v = values_of(random_tensor(shape, dt, Domain::range(-3, 3, 0, 9), 11));
      const std::vector<double> u = values_of(random_tensor(shape, dt, Domain::range(-3, 3, 0, 9), 12));
      const Tensor xt = from_values(swapped(v), tshape, dt).transpose(-1, -2);  // values v, transposed layout
      const Tensor y = from_values(u, shape, dt);
      REQUIRE_FALSE(xt.is_contiguous());
      EMBER_CHECK_VALUES(xt.contiguous(), shape, v);
      // A cast reads the transposed layout in one element size and writes another.
      const DType wide = dt == em::float64 ? em::int32 : em::float64;
      std::vector<double> vw;
      for (double a : v) vw.push_back(cast_value(a, wide));
      EMBER_CHECK_VALUES(xt.to(wide), shape, vw);
      if (dt != em::bool_) {
        std::vector<double> sum;
        for (std::size_t i = 0; i < v.size(); ++i) sum.push_back(cast_value(v[i] + u[i], dt));
        EMBER_CHECK_VALUES(xt + y, shape, sum);
        EMBER_CHECK_VALUES(y + xt, shape, sum);
        // Written through a transposed view: the output operand is tiled too.
        Tensor buf = from_values(swapped(u), tshape, dt);
        Tensor out = buf.transpose(-1, -2);
        out += xt;  // out and xt both transposed: read and written in tiles
        EMBER_CHECK_VALUES(out, shape, sum);
        EMBER_CHECK_VALUES(buf, tshape, swapped(sum));
        Tensor dst = from_values(std::vector<double>(v.size(), 0.0), tshape, dt);
        dst.transpose(-1, -2).copy_(y);  // contiguous source, transposed destination
        EMBER_CHECK_VALUES(dst, tshape, swapped(u));
        // In place on a transposed view: the input is the output, read and written in tiles.
        Tensor self = from_values(swapped(v), tshape, dt);
        Tensor view = self.transpose(-1, -2);
        view.mul_(2);
        std::vector<double> twice;
        for (double a : v) twice.push_back(cast_value(a * 2, dt));
        EMBER_CHECK_VALUES(view, shape, twice);
      }
    }
  }
  // A 3-d permute whose two last dims are both strided (no stride-1 dim among them).
  const std::vector<double> v = values_of(random_tensor({5, 40, 33}, em::float32, Domain::range(-3, 3, 0, 9), 13));
  const Tensor base = from_values(v, {5, 40, 33}, em::float32);
  const Tensor p = base.permute({1, 2, 0});  // [40, 33, 5], strides (33, 1, 1320)
  std::vector<double> want;
  for (int64_t i = 0; i < 40; ++i)
    for (int64_t j = 0; j < 33; ++j)
      for (int64_t k = 0; k < 5; ++k) want.push_back(v[(k * 40 + i) * 33 + j]);
  EMBER_CHECK_VALUES(p.contiguous(), (Shape{40, 33, 5}), want);
  const Tensor q = base.permute({2, 0, 1});  // [33, 5, 40], strides (1, 1320, 33): both last dims strided
  std::vector<double> want_q;
  for (int64_t j = 0; j < 33; ++j)
    for (int64_t k = 0; k < 5; ++k)
      for (int64_t i = 0; i < 40; ++i) want_q.push_back(cast_value(v[(k * 40 + i) * 33 + j] + 1.0, em::float32));
  EMBER_CHECK_VALUES(q + 1.f, (Shape{33, 5, 40}), want_q);
}

TEST_CASE("where selects elementwise with broadcasting and promotion", "[elementwise][where]") {
  // (em::tensor({{true, false, true}, ...}) does not compile: creation.h calls
  // std::vector<bool>::data(); see the report.)
  Tensor c = from_values({1, 0, 1, 0, 0, 1}, {2, 3}, em::bool_);
  Tensor a = em::tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  Tensor b = em::tensor({{-1.f, -2.f, -3.f}, {-4.f, -5.f, -6.f}});
  Tensor r = em::where(c, a, b);
  CHECK(r.dtype() == em::float32);
  EMBER_CHECK_VALUES(r, (Shape{2, 3}), {1, -2, 3, -4, -5, 6});
  // Non-contiguous operands.
  for (const Layout& lc : layouts(c))
    for (const Layout& la : layouts(a)) {
      INFO("cond layout " << lc.name << ", a layout " << la.name);
      EMBER_CHECK_VALUES(em::where(lc.t, la.t, b), (Shape{2, 3}), {1, -2, 3, -4, -5, 6});
    }

  // cond [2,1] broadcasts against a [1,3]; b is a number; int32 and 2.5 give float32.
  Tensor c21 = from_values({1, 0}, {2, 1}, em::bool_);
  Tensor a13 = em::tensor({{1, 2, 3}});
  r = em::where(c21, a13, 2.5);
  CHECK(r.dtype() == em::float32);
  EMBER_CHECK_VALUES(r, (Shape{2, 3}), {1, 2, 3, 2.5, 2.5, 2.5});
  r = em::where(c21, 7, a13);
  CHECK(r.dtype() == em::int32);
  EMBER_CHECK_VALUES(r, (Shape{2, 3}), {7, 7, 7, 1, 2, 3});
  // A 0-d condition.
  r = em::where(em::scalar_tensor(false), a13, 0);
  EMBER_CHECK_VALUES(r, (Shape{1, 3}), {0, 0, 0});
  // Both numbers: int64 like torch.where(c, 1, 0).
  r = em::where(c, 1, 0);
  CHECK(r.dtype() == em::int64);
  EMBER_CHECK_VALUES(r, (Shape{2, 3}), {1, 0, 1, 0, 0, 1});
  // Tensor dtypes promote like add.
  r = em::where(c21, a13, em::tensor({int64_t{10}}));
  CHECK(r.dtype() == em::int64);
  EMBER_CHECK_VALUES(r, (Shape{2, 3}), {1, 2, 3, 10, 10, 10});
  r = em::where(c21, from_values({1}, {1}, em::uint8), em::tensor({0.5}));
  CHECK(r.dtype() == em::float64);
  EMBER_CHECK_VALUES(r, (Shape{2, 1}), {1, 0.5});
  // A non-bool condition is read as bool (nonzero is true, NaN is true).
  Tensor cf = em::tensor({0.0f, -0.5f, 2.0f, std::numeric_limits<float>::quiet_NaN()});
  EMBER_CHECK_VALUES(em::where(cf, 1, 0), Shape{4}, {0, 1, 1, 1});
  Tensor ci = em::tensor({0, 3, -1, 0});
  EMBER_CHECK_VALUES(em::where(ci, em::tensor({1, 2, 3, 4}), -1), Shape{4}, {-1, 2, 3, -1});
  // Size 0.
  r = em::where(em::zeros({0, 3}, em::bool_), a13, 1);
  EMBER_CHECK_VALUES(r, (Shape{0, 3}), {});
  // Shapes that do not broadcast.
  Tensor c2 = em::tensor({true, false});
  Tensor a3 = em::tensor({1, 2, 3});
  CHECK_THROWS_AS(em::where(c2, a3, 0), em::ShapeError);
  CHECK_THROWS_WITH(em::where(c2, a3, 0),
                    Catch::Contains("where: shapes [2] and [3] cannot be broadcast"));
}

TEST_CASE("where over long contiguous runs: every dtype, a number on either side, exact bits",
          "[elementwise][where]") {
  // 300 elements: the vectorized loop and its tail (Note in where_contig).
  const int64_t n = 300;
  std::vector<double> cv(n);
  for (int64_t i = 0; i < n; ++i) cv[i] = (i * 7919) % 3 == 0 ? 1 : 0;
  const Tensor cond = from_values(cv, {n}, em::bool_);
  for (DType dt : kAllD) {
    INFO(dt_str(dt));
    const Tensor a = random_tensor({n}, dt, Domain::range(-3, 3, 0, 9), 21);
    const Tensor b = random_tensor({n}, dt, Domain::range(-3, 3, 0, 9), 22);
    const auto av = values_of(a), bv = values_of(b);
    std::vector<double> both, a_num, b_num, nums;
    const double sa = 1, sb = 0;
    for (int64_t i = 0; i < n; ++i) {
      both.push_back(cv[i] != 0 ? av[i] : bv[i]);
      a_num.push_back(cv[i] != 0 ? sa : bv[i]);
      b_num.push_back(cv[i] != 0 ? av[i] : sb);
      nums.push_back(cv[i] != 0 ? sa : sb);
    }
    EMBER_CHECK_VALUES(em::where(cond, a, b), Shape{n}, both);
    EMBER_CHECK_VALUES(em::where(cond, em::scalar_tensor(1, dt), b), Shape{n}, a_num);
    EMBER_CHECK_VALUES(em::where(cond, a, em::scalar_tensor(0, dt)), Shape{n}, b_num);
    EMBER_CHECK_VALUES(em::where(cond, em::scalar_tensor(1, dt), em::scalar_tensor(0, dt)), Shape{n}, nums);
  }
  // The chosen values' bits are copied: -0.0 and a NaN payload survive.
  std::vector<float> x(n, -0.0f), y(n);
  uint32_t payload = 0x7fc01234u;
  for (auto& v : y) std::memcpy(&v, &payload, 4);
  const Tensor r = em::where(cond, em::tensor(x), em::tensor(y));
  const float* p = r.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &p[i], 4);
    CHECK(bits == (cv[i] != 0 ? 0x80000000u : payload));
  }
}

TEST_CASE("clamp with min only, max only, both; NaN stays NaN; ints", "[elementwise][clamp]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : kFloatingD) {
    INFO(dt_str(dt));
    Tensor x = from_values({-2, -0.5, 0, 0.5, 2, nan}, {6}, dt);
    Tensor r = em::clamp(x, -1.0, std::nullopt);
    CHECK(r.dtype() == dt);
    EMBER_CHECK_VALUES(r, Shape{6}, {-1, -0.5, 0, 0.5, 2, nan});
    EMBER_CHECK_VALUES(em::clamp(x, std::nullopt, 1.0), Shape{6}, {-2, -0.5, 0, 0.5, 1, nan});
    EMBER_CHECK_VALUES(em::clamp(x, -1.0, 1.0), Shape{6}, {-1, -0.5, 0, 0.5, 1, nan});
    EMBER_CHECK_VALUES(em::clamp(x, -0.25, 0.25), Shape{6}, {-0.25, -0.25, 0, 0.25, 0.25, nan});
    // min > max: every element becomes max (PyTorch).
    EMBER_CHECK_VALUES(em::clamp(x, 2.0, 1.0), Shape{6}, {1, 1, 1, 1, 1, nan});
    // Non-contiguous input.
    for (const Layout& l : layouts(from_values({-2, 3, 0.5, -0.5, 9, 1}, {2, 3}, dt))) {
      INFO(l.name);
      EMBER_CHECK_VALUES(em::clamp(l.t, 0, 1), (Shape{2, 3}), {0, 1, 0.5, 0, 1, 1});
    }
  }
  for (DType dt : {em::int32, em::int64}) {
    INFO(dt_str(dt));
    Tensor x = from_values({-5, -2, 0, 3, 5}, {5}, dt);
    Tensor r = em::clamp(x, -2, 3);
    CHECK(r.dtype() == dt);
    EMBER_CHECK_VALUES(r, Shape{5}, {-2, -2, 0, 3, 3});
    EMBER_CHECK_VALUES(em::clamp(x, 0, std::nullopt), Shape{5}, {0, 0, 0, 3, 5});
    EMBER_CHECK_VALUES(em::clamp(x, std::nullopt, -1), Shape{5}, {-5, -2, -1, -1, -1});
  }
  // A bound outside the dtype's range clamps nothing on that side.
  Tensor u = from_values({0, 5, 10}, {3}, em::uint8);
  EMBER_CHECK_VALUES(em::clamp(u, -1, 5), Shape{3}, {0, 5, 5});
  EMBER_CHECK_VALUES(em::clamp(u, 2, 1000), Shape{3}, {2, 5, 10});
  Tensor i32 = em::tensor({-5, 0, 5});
  EMBER_CHECK_VALUES(em::clamp(i32, std::nullopt, 1e10), Shape{3}, {-5, 0, 5});
  EMBER_CHECK_VALUES(em::clamp(i32, -1e10, std::nullopt), Shape{3}, {-5, 0, 5});
  EMBER_CHECK_VALUES(em::clamp(i32, int64_t{-5000000000}, int64_t{5000000000}), Shape{3},
                     {-5, 0, 5});
  // Size 0 and 0-d.
  EMBER_CHECK_VALUES(em::clamp(em::zeros({0}), 0, 1), Shape{0}, {});
  EMBER_CHECK_VALUES(em::clamp(em::scalar_tensor(5.0), 0, 1), Shape{}, {1});
  // Tensor bounds broadcast.
  Tensor x = em::tensor({{-3.f, 0.f, 3.f}, {-3.f, 0.f, 3.f}});
  Tensor lo = em::tensor({-1.f, 1.f, -1.f});
  Tensor hi = em::tensor({{2.f}, {0.5f}});
  EMBER_CHECK_VALUES(em::clamp(x, lo, hi), (Shape{2, 3}), {-1, 1, 2, -1, 0.5, 0.5});
  // Errors.
  CHECK_THROWS_AS(em::clamp(x, std::nullopt, std::nullopt), em::ValueError);
  CHECK_THROWS_WITH(em::clamp(x, std::nullopt, std::nullopt),
                    Catch::Contains("clamp: at least one of min and max must be given"));
  Tensor bx = from_values({1, 0}, {2}, em::bool_);
  CHECK_THROWS_AS(em::clamp(bx, 0, 1), em::DTypeError);
  CHECK_THROWS_WITH(em::clamp(bx, 0, 1),
                    Catch::Contains("clamp: the input has dtype bool, which is not supported"));
}

TEST_CASE("elementwise ops reject bad shapes and undefined tensors", "[elementwise][errors]") {
  Tensor a = em::zeros({2, 3}), b = em::zeros({4});
  CHECK_THROWS_AS(a + b, em::ShapeError);
  CHECK_THROWS_WITH(a + b, Catch::Contains("add: shapes [2,3] and [4] cannot be broadcast (dim -1: 3 vs 4)"));
  CHECK_THROWS_AS(em::maximum(em::zeros({2, 3}), em::zeros({3, 3})), em::ShapeError);
  CHECK_THROWS_WITH(em::maximum(em::zeros({2, 3}), em::zeros({3, 3})),
                    Catch::Contains("maximum: shapes [2,3] and [3,3] cannot be broadcast (dim -2: 2 vs 3)"));
  Tensor u;
  CHECK_THROWS_AS(em::exp(u), em::ValueError);
  CHECK_THROWS_WITH(em::exp(u), Catch::Contains("undefined"));
  CHECK_THROWS_AS(a * u, em::ValueError);
  CHECK_THROWS_WITH(a * u, Catch::Contains("undefined"));
}
