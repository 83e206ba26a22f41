// Gradients: every differentiable op's rule against central finite differences
// in float64 (table-driven, with broadcasting, views and size-1 dims); the
// registry is complete (a rule or a non-differentiable mark per op, a row per
// differentiable op); the tape's API and its errors.
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <ember/compat/v1.h>
#include <ember/ember.h>

#include "autograd/rule.h"
#include "dispatch/dispatcher.h"
#include "dispatch/recorder.h"
#include "dispatch/schema.h"

namespace em = ember;
using em::Tensor;
using em::dispatch::OpId;

namespace {

enum class Domain { any, positive, away_from_zero, unit };

struct GradCase {
  std::string op;                 // the op whose rule this row checks
  std::string label;              // what the row varies (shapes, layout)
  std::vector<em::Shape> shapes;  // float64 inputs
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  Domain domain = Domain::any;
  double eps = 1e-6;  // finite-difference step (larger where float32 rounding is in the path)
};

std::vector<double> draw(int64_t n, Domain d, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-2.0, 2.0), p(0.5, 2.0), unit(-0.9, 0.9);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v) {
    switch (d) {
      case Domain::any: x = u(rng); break;
      case Domain::positive: x = p(rng); break;
      case Domain::away_from_zero: x = p(rng) * (u(rng) < 0 ? -1 : 1); break;
      case Domain::unit: x = unit(rng); break;
    }
  }
  return v;
}

Tensor make(const std::vector<double>& v, const em::Shape& s) { return em::tensor(v, s); }

/// One random float64 input per shape of the case, drawn from its domain.
std::vector<Tensor> random_inputs(const GradCase& c, std::mt19937& rng) {
  std::vector<Tensor> in;
  for (const auto& s : c.shapes) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    in.push_back(make(draw(n, c.domain, rng), s));
  }
  return in;
}

// L(inputs) = sum(fn(inputs) * w) for fixed random weights w (no cancellation by symmetry).
double loss_of(const GradCase& c, const std::vector<Tensor>& in, const Tensor& w) {
  return em::sum(c.fn(in) * w).item<double>();
}

const std::vector<GradCase>& cases() {
  using V = const std::vector<Tensor>&;
  static const std::vector<GradCase> table = [] {
    std::vector<GradCase> t;
    // Every differentiable elementwise op gets its rows from elementwise.def, so a
    // new op is checked without a row here; only a restricted domain is listed.
    auto domain_of = [](const std::string& op) {
      static const std::map<std::string, Domain> d = {
          {"log", Domain::positive},         {"log1p", Domain::positive},
          {"sqrt", Domain::positive},        {"rsqrt", Domain::positive},
          {"pow", Domain::positive},         {"remainder", Domain::positive},
          {"abs", Domain::away_from_zero},   {"sign", Domain::away_from_zero},
          {"relu", Domain::away_from_zero},  {"div", Domain::away_from_zero},
          {"tan", Domain::unit},             {"floor", Domain::unit},
          {"ceil", Domain::unit},            {"round", Domain::unit}};
      auto it = d.find(op);
      return it == d.end() ? Domain::any : it->second;
    };
    auto call = [](OpId op, std::vector<Tensor> in) {
      return em::dispatch::call(op, em::dispatch::Inputs(in.data(), in.size()));
    };
    auto unary = [&](OpId op) {
      const std::string name = em::dispatch::op_name(op);
      if (!em::autograd::rule(op).differentiable()) return;
      const Domain d = domain_of(name);
      t.push_back({name, "[2,3]", {{2, 3}}, [=](V x) { return call(op, {x[0]}); }, d});
      t.push_back({name, "transposed [3,2]", {{2, 3}}, [=](V x) { return call(op, {x[0].t()}); }, d});
    };
    auto binary = [&](OpId op) {
      const std::string name = em::dispatch::op_name(op);
      if (!em::autograd::rule(op).differentiable()) return;
      const Domain d = domain_of(name);
      auto fn = [=](V x) { return call(op, {x[0], x[1]}); };
      t.push_back({name, "[2,3] [2,3]", {{2, 3}, {2, 3}}, fn, d});
      t.push_back({name, "[2,3] [3] (broadcast)", {{2, 3}, {3}}, fn, d});
      t.push_back({name, "[2,1] [1,3] (size-1 dims)", {{2, 1}, {1, 3}}, fn, d});
      t.push_back({name, "[] [2,2] (0-d)", {{}, {2, 2}}, fn, d});
      t.push_back({name, "with a C++ number", {{2, 3}},
                   [=](V x) { return call(op, {x[0], em::detail::wrap_scalar(1.5, em::float64, em::Device::cpu())}); }, d});
    };
#define EMBER_UNARY(name, F, rule, dtypes) unary(OpId::name);
#define EMBER_BINARY(name, F, rule, dtypes) binary(OpId::name);
#include "ops/elementwise.def"
    // reductions
    auto reduce = [&](std::string op, Tensor (*f)(const Tensor&, const em::Axes&, bool), Domain d) {
      t.push_back({op, "all", {{2, 3}}, [f](V x) { return f(x[0], {}, false); }, d});
      t.push_back({op, "axis 1", {{2, 3}}, [f](V x) { return f(x[0], {1}, false); }, d});
      t.push_back({op, "axes 0,2 keepdims", {{2, 3, 2}}, [f](V x) { return f(x[0], {0, 2}, true); }, d});
      t.push_back({op, "axis -1 of a transposed view", {{3, 2}},
                   [f](V x) { return f(x[0].t(), {-1}, false); }, d});
      t.push_back({op, "size-1 dim", {{2, 1, 3}}, [f](V x) { return f(x[0], {1}, false); }, d});
    };
    reduce("sum", &em::sum, Domain::any);
    reduce("mean", &em::mean, Domain::any);
    reduce("prod", &em::prod, Domain::away_from_zero);
    reduce("max", &em::max, Domain::any);
    reduce("min", &em::min, Domain::any);
    for (double corr : {1.0, 0.0}) {
      t.push_back({"var", fmt::format("axis 1 correction {}", corr), {{3, 4}},
                   [corr](V x) { return em::var(x[0], {1}, false, corr); }});
      t.push_back({"std", fmt::format("all correction {}", corr), {{3, 4}},
                   [corr](V x) { return em::std(x[0], {}, false, corr); }});
    }
    t.push_back({"var", "keepdims", {{2, 3, 2}}, [](V x) { return em::var(x[0], {0, 2}, true); }});
    t.push_back({"std", "keepdims", {{2, 3, 2}}, [](V x) { return em::std(x[0], {0}, true); }});
    // views
    t.push_back({"reshape", "[2,3] -> [3,2]", {{2, 3}}, [](V x) { return x[0].reshape({3, 2}) * 2; }});
    t.push_back({"reshape", "of a transposed view (copies)", {{2, 3}},
                 [](V x) { return x[0].t().reshape({6}); }});
    t.push_back({"reshape", "unsqueeze/squeeze/flatten", {{2, 1, 3}},
                 [](V x) { return x[0].squeeze(1).unsqueeze(0).flatten(); }});
    t.push_back({"permute", "[2,3,4] (2,0,1)", {{2, 3, 4}}, [](V x) { return x[0].permute({2, 0, 1}); }});
    t.push_back({"permute", "negative dims", {{2, 3}}, [](V x) { return x[0].permute({-1, -2}); }});
    t.push_back({"slice", "step 1", {{5, 3}}, [](V x) { return x[0].slice(0, 1, 4); }});
    t.push_back({"slice", "step 2 with offset", {{7, 3}}, [](V x) { return x[0].slice(0, 1, 6, 2); }});
    t.push_back({"slice", "step 3, last dim", {{2, 8}}, [](V x) { return x[0].slice(1, 0, 8, 3); }});
    t.push_back({"slice", "empty", {{2, 4}}, [](V x) { return x[0].slice(1, 2, 2); }});
    t.push_back({"select", "dim 0", {{3, 4}}, [](V x) { return x[0].select(0, 1); }});
    t.push_back({"select", "negative index, dim 1", {{3, 4}}, [](V x) { return x[0][2].select(0, -1); }});
    t.push_back({"expand", "[3,1] -> [2,3,4]", {{3, 1}}, [](V x) { return x[0].expand({2, 3, 4}); }});
    t.push_back({"copy", "clone and contiguous", {{2, 3}}, [](V x) { return x[0].t().contiguous().clone(); }});
    // On one device to_device is a copy (tests/gpu moves between devices).
    t.push_back({"to_device", "cpu -> cpu", {{2, 3}}, [](V x) {
                   em::dispatch::Attrs a;
                   a.device = em::Device::cpu();
                   const Tensor t = x[0].t();
                   return em::dispatch::call(OpId::to_device, em::dispatch::Inputs(&t, 1), a) * 2.0;
                 }});
    t.push_back({"copy", "float64 -> float32 -> float64", {{2, 3}},
                 [](V x) { return em::cast(em::cast(x[0], em::float32) * 3, em::float64); },
                 Domain::any, 1e-2});
    t.push_back({"where", "broadcast", {{2, 3}, {3}},
                 [](V x) { return em::where(x[0] > 0, x[0], x[1]); }});
    t.push_back({"where", "a C++ number", {{2, 3}}, [](V x) { return em::where(x[0] > 0, 0.5, x[0]); }});
    t.push_back({"clamp", "both bounds", {{3, 4}}, [](V x) { return em::clamp(x[0], -0.7, 0.9); }});
    t.push_back({"clamp", "min only", {{3, 4}}, [](V x) { return em::clamp(x[0], -0.3, std::nullopt); }});
    t.push_back({"softmax", "axis -1", {{3, 4}}, [](V x) { return em::softmax(x[0], -1); }});
    t.push_back({"softmax", "axis 0", {{3, 4}}, [](V x) { return em::softmax(x[0], 0); }});
    t.push_back({"log_softmax", "axis -1", {{3, 4}}, [](V x) { return em::log_softmax(x[0], -1); }});
    t.push_back({"log_softmax", "axis 0", {{3, 4}}, [](V x) { return em::log_softmax(x[0], 0); }});
    auto mm = [](V x) { return em::matmul(x[0], x[1]); };
    t.push_back({"matmul", "[2,3] [3,4]", {{2, 3}, {3, 4}}, mm});
    t.push_back({"matmul", "batched broadcast [2,2,3] [3,4]", {{2, 2, 3}, {3, 4}}, mm});
    t.push_back({"matmul", "[3] [3,4]", {{3}, {3, 4}}, mm});
    t.push_back({"matmul", "[2,3] [3]", {{2, 3}, {3}}, mm});
    t.push_back({"matmul", "[3] [3]", {{3}, {3}}, mm});
    t.push_back({"matmul", "transposed operand", {{3, 2}, {3, 4}},
                 [](V x) { return em::matmul(x[0].t(), x[1]); }});
    t.push_back({"addmm", "bias [4], [2,3] [3,4]", {{4}, {2, 3}, {3, 4}},
                 [](V x) { return em::addmm(x[0], x[1], x[2]); }});
    t.push_back({"addmm", "input [2,4], beta 0.5 alpha -2", {{2, 4}, {2, 3}, {3, 4}},
                 [](V x) { return em::addmm(x[0], x[1], x[2], 0.5, -2); }});
    t.push_back({"addmm", "column input [2,1], one output column", {{2, 1}, {2, 3}, {3, 1}},
                 [](V x) { return em::addmm(x[0], x[1], x[2], 2, 1); }});
    t.push_back({"addmm", "0-d input, transposed mat2", {{}, {1, 3}, {4, 3}},
                 [](V x) { return em::addmm(x[0], x[1], x[2].t()); }});
    t.push_back({"concat", "dim 1", {{2, 3}, {2, 1}}, [](V x) { return em::concat({x[0], x[1]}, 1); }});
    t.push_back({"concat", "stack", {{2, 3}, {2, 3}}, [](V x) { return em::stack({x[0], x[1]}, 1); }});
    t.push_back({"index_select", "repeated and negative indices", {{4, 3}},
                 [](V x) { return em::index_select(x[0], 0, em::tensor<int64_t>({2, 0, -1, 2})); }});
    t.push_back({"index_select", "dim 1", {{2, 4}},
                 [](V x) { return em::index_select(x[0], 1, em::tensor<int32_t>({3, 1})); }});
    return t;
  }();
  return table;
}

}  // namespace

TEST_CASE("every op has a derivative rule or a non-differentiable mark", "[autograd][registry]") {
  std::vector<std::string> missing;
  for (int i = 0; i < em::dispatch::kNumOps; ++i) {
    const auto op = static_cast<OpId>(i);
    if (!em::autograd::rule(op).declared) missing.push_back(em::dispatch::op_name(op));
  }
  INFO("ops without a rule or mark: " << missing.size());
  for (const auto& m : missing) UNSCOPED_INFO(m);
  CHECK(missing.empty());
}

TEST_CASE("every differentiable op has a finite-difference row", "[autograd][registry]") {
  std::set<std::string> rows;
  for (const auto& c : cases()) rows.insert(c.op);
  std::vector<std::string> missing;
  for (int i = 0; i < em::dispatch::kNumOps; ++i) {
    const auto op = static_cast<OpId>(i);
    // detach's rule stops the gradient on purpose: its own test is in test_tape.cpp.
    if (op == OpId::detach) continue;
    if (em::autograd::rule(op).differentiable() && !rows.count(em::dispatch::op_name(op)))
      missing.push_back(em::dispatch::op_name(op));
  }
  for (const auto& m : missing) UNSCOPED_INFO(m);
  CHECK(missing.empty());
}

TEST_CASE("gradients match central finite differences in float64", "[autograd][fd]") {
  std::mt19937 rng(7);
  for (const GradCase& c : cases()) {
    INFO(c.op << " (" << c.label << ")");
    std::vector<Tensor> in = random_inputs(c, rng);
    Tensor probe = c.fn(in);
    const Tensor w = make(draw(probe.numel(), Domain::any, rng), probe.shape());
    std::vector<Tensor> grads;
    {
      em::GradientTape tape;
      for (const Tensor& x : in) tape.watch(x);
      Tensor loss = em::sum(c.fn(in) * w);
      grads = tape.gradient(loss, in);
    }
    REQUIRE(grads.size() == in.size());
    const double eps = c.eps;
    for (std::size_t i = 0; i < in.size(); ++i) {
      REQUIRE(grads[i].shape() == in[i].shape());
      REQUIRE(grads[i].dtype() == em::float64);
      const std::vector<double> got = grads[i].to_vector<double>();
      std::vector<double> base = in[i].to_vector<double>();
      for (std::size_t j = 0; j < base.size(); ++j) {
        auto at = [&](double delta) {
          std::vector<double> v = base;
          v[j] += delta;
          std::vector<Tensor> moved = in;
          moved[i] = make(v, in[i].shape());
          return loss_of(c, moved, w);
        };
        const double fd = (at(eps) - at(-eps)) / (2 * eps);
        INFO("input " << i << " element " << j << ": rule " << got[j] << ", finite difference " << fd);
        CHECK(got[j] == Approx(fd).epsilon(c.eps > 1e-6 ? 1e-4 : 1e-5).margin(1e-6));
      }
    }
  }
}

TEST_CASE("every rule also builds graph nodes: tf::gradients equals the tape", "[autograd][fd][compat]") {
  namespace tf = em::compat::v1;
  std::mt19937 rng(9);
  int built = 0;
  std::set<std::string> graph_ops;
  for (const GradCase& c : cases()) {
    INFO(c.op << " (" << c.label << ")");
    std::vector<Tensor> in = random_inputs(c, rng);
    const Tensor w = make(draw(c.fn(in).numel(), Domain::any, rng), c.fn(in).shape());
    std::vector<Tensor> want;
    {
      em::GradientTape tape;
      for (const Tensor& x : in) tape.watch(x);
      want = tape.gradient(em::sum(c.fn(in) * w), in);
    }
    tf::Graph g;
    std::vector<Tensor> ph, grads;
    {
      auto scope = g.as_default();
      for (std::size_t i = 0; i < in.size(); ++i)
        ph.push_back(tf::placeholder(em::float64, in[i].shape(), fmt::format("x{}", i)));
      const Tensor y = em::sum(c.fn(ph) * w);
      grads = tf::gradients({y}, ph);
    }
    tf::Session sess(g);
    tf::FeedDict feeds;
    for (std::size_t i = 0; i < in.size(); ++i) feeds.push_back({ph[i], in[i]});
    // The placeholders are fetched too: a run that is fed a placeholder it does not
    // need fails in the shim today ("input 0 has no node"; a sign/floor gradient needs none).
    std::vector<tf::Fetch> fetches(grads.begin(), grads.end());
    for (const Tensor& p : ph) fetches.emplace_back(p);
    const auto got = sess.run(fetches, feeds);
    for (std::size_t i = 0; i < in.size(); ++i) CHECK(em::allclose(got[i], want[i], 1e-9, 1e-12));
    ++built;
    graph_ops.insert(c.op);
  }
  CHECK(built > 100);
  // Every op with a row was checked in graph mode, except index_select (above).
  for (const GradCase& c : cases())
    if (c.op != "index_select") CHECK(graph_ops.count(c.op) == 1);
}
