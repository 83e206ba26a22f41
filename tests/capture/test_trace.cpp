// Tracing and capture::function: the cache and its retraces, non-tensor
// arguments, returned structures, failed traces, constants, Variables,
// guards, aliasing, nesting and in-place ops.
#include <cstdio>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>

#include <ember/capture.h>
#include <ember/ember.h>

#include "dispatch/recorder.h"
#include "support/reference.h"
#include "support/stderr.h"

namespace em = ember;
namespace cap = ember::capture;
using em::Tensor;

namespace {

Tensor vals(std::vector<float> v) { return em::tensor(v); }

using em::test::capture_stderr;

int occurrences(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

enum class Mode { scale, shift };

}  // namespace

TEST_CASE("trace returns a graph whose outputs match the eager run", "[capture][trace]") {
  auto fn = [](Tensor x, Tensor y) { return em::tanh(em::matmul(x, y)) * 0.5f + 0.5f; };
  auto x = em::test::random_tensor({3, 4}, em::float32, {}, 1);
  auto y = em::test::random_tensor({4, 2}, em::float32, {}, 2);
  cap::Graph g = cap::trace(fn, x, y);
  REQUIRE(g.defined());
  CHECK(g.num_inputs() == 2);
  auto out = g.run({x, y});
  REQUIRE(out.size() == 1);
  CHECK(em::equal(out[0], fn(x, y)));
  CHECK(out[0].dtype() == em::float32);
  // Fresh inputs of the traced signature give the eager result too.
  auto x2 = em::test::random_tensor({3, 4}, em::float32, {}, 3);
  auto y2 = em::test::random_tensor({4, 2}, em::float32, {}, 4);
  EMBER_CHECK_CLOSE(g.run({x2, y2})[0], fn(x2, y2));
  // The text form lists the inputs with their types and one line per node.
  const std::string s = g.str();
  CHECK_THAT(s, Catch::StartsWith("graph(%arg0: float32[3,4], %arg1: float32[4,2]):\n"));
  CHECK_THAT(s, Catch::Contains("matmul(%"));
  CHECK_THAT(s, Catch::Contains("return (%"));
  CHECK_THAT(g.traced_str(), Catch::Contains("tanh(%"));
  CHECK_THAT(g.dot(), Catch::StartsWith("digraph ember {"));
  CHECK_THAT(g.dot(), Catch::Contains("float32[3,2]"));
}

TEST_CASE("trace of a function returning a tuple or a vector", "[capture][trace]") {
  auto x = vals({1, -2, 3});
  auto g1 = cap::trace([](Tensor a) { return std::make_tuple(a + 1, a * a); }, x);
  auto o1 = g1.run({x});
  REQUIRE(o1.size() == 2);
  EMBER_CHECK_VALUES(o1[0], (em::Shape{3}), {2, -1, 4});
  EMBER_CHECK_VALUES(o1[1], (em::Shape{3}), {1, 4, 9});
  auto g2 = cap::trace([](Tensor a) { return std::vector<Tensor>{a - 1, em::relu(a), a.sum()}; }, x);
  auto o2 = g2.run({x});
  REQUIRE(o2.size() == 3);
  EMBER_CHECK_VALUES(o2[0], (em::Shape{3}), {0, -3, 2});
  EMBER_CHECK_VALUES(o2[1], (em::Shape{3}), {1, 0, 3});
  EMBER_CHECK_VALUES(o2[2], (em::Shape{}), {2});
}

TEST_CASE("capture::function replays on a hit and retraces on a new shape or dtype", "[capture][function]") {
  int eager_calls = 0;
  auto f = cap::function([&](Tensor x) {
    ++eager_calls;
    return em::exp(x) * 2.f - x;
  });
  auto a = vals({0.5f});
  auto r = f(a);
  CHECK(f.trace_count() == 1);
  CHECK(eager_calls == 1);
  CHECK(em::equal(r, em::exp(a) * 2.f - a));
  // Same signature, new values: replays (the Python-side function does not run).
  for (float v : {1.f, -2.f, 3.5f}) {
    auto b = vals({v});
    CHECK(em::equal(f(b), em::exp(b) * 2.f - b));
  }
  CHECK(f.trace_count() == 1);
  CHECK(eager_calls == 1);
  CHECK(f.retrace_reasons().empty());

  // New shape: traces again and says why.
  auto c = vals({1.f, 2.f});
  CHECK(em::equal(f(c), em::exp(c) * 2.f - c));
  CHECK(f.trace_count() == 2);
  REQUIRE(f.retrace_reasons().size() == 1);
  CHECK(f.retrace_reasons()[0] == "arg0: float32[1]@cpu -> float32[2]@cpu");

  // New dtype: traces again.
  auto d = em::tensor(std::vector<double>{1.0, 2.0});
  auto rd = f(d);
  CHECK(rd.dtype() == em::float64);
  CHECK(em::equal(rd, em::exp(d) * 2.f - d));
  CHECK(f.trace_count() == 3);
  REQUIRE(f.retrace_reasons().size() == 2);
  CHECK(f.retrace_reasons()[1] == "arg0: float32[2]@cpu -> float64[2]@cpu");

  // Every signature seen before is a hit.
  f(vals({7.f}));
  f(vals({7.f, 8.f}));
  f(em::tensor(std::vector<double>{3.0, 4.0}));
  CHECK(f.trace_count() == 3);
  CHECK(eager_calls == 3);

  // graph_for inspects the cached graph without tracing.
  auto g = f.graph_for(vals({1.f, 2.f}));
  CHECK(g.num_inputs() == 1);
  CHECK_THAT(g.str(), Catch::StartsWith("graph(%arg0: float32[2]):"));
  CHECK_THROWS_AS(f.graph_for(vals({1.f, 2.f, 3.f})), em::ValueError);
  CHECK_THROWS_WITH(f.graph_for(vals({1.f, 2.f, 3.f})),
                    "capture::function: no graph was traced for these arguments yet");
  CHECK(f.trace_count() == 3);
}

TEST_CASE("capture::function names arguments in retrace reasons", "[capture][function]") {
  auto f = cap::function([](Tensor x, Tensor w) { return em::matmul(x, w); }, {}, {"x", "w"});
  f(em::ones({1, 3}), em::ones({3, 2}));
  f(em::ones({2, 3}), em::ones({3, 2}));
  REQUIRE(f.retrace_reasons().size() == 1);
  CHECK(f.retrace_reasons()[0] == "x: float32[1,3]@cpu -> float32[2,3]@cpu");
  f(em::ones({2, 3}), em::ones({3, 4}));
  REQUIRE(f.retrace_reasons().size() == 2);
  CHECK(f.retrace_reasons()[1] == "w: float32[3,2]@cpu -> float32[3,4]@cpu");
  CHECK_THAT(f.graph_for(em::ones({2, 3}), em::ones({3, 4})).str(),
             Catch::StartsWith("graph(%x: float32[2,3], %w: float32[3,4]):"));
}

TEST_CASE("non-tensor arguments are part of the cache key", "[capture][function]") {
  int eager_calls = 0;
  auto f = cap::function([&](Tensor x, int k, bool neg, float s, Mode m) {
    ++eager_calls;
    Tensor y = m == Mode::scale ? x * s : x + s;
    y = y * static_cast<float>(k);
    return neg ? -y : y;
  });
  auto x = vals({1, 2, 3});
  auto expect = [&](int k, bool neg, float s, Mode m) {
    Tensor y = m == Mode::scale ? x * s : x + s;
    y = y * static_cast<float>(k);
    return neg ? -y : y;
  };
  CHECK(em::equal(f(x, 2, false, 0.5f, Mode::scale), expect(2, false, 0.5f, Mode::scale)));
  CHECK(f.trace_count() == 1);
  CHECK(em::equal(f(x, 2, false, 0.5f, Mode::scale), expect(2, false, 0.5f, Mode::scale)));
  CHECK(f.trace_count() == 1);

  CHECK(em::equal(f(x, 3, false, 0.5f, Mode::scale), expect(3, false, 0.5f, Mode::scale)));
  CHECK(f.trace_count() == 2);
  CHECK(em::equal(f(x, 3, true, 0.5f, Mode::scale), expect(3, true, 0.5f, Mode::scale)));
  CHECK(f.trace_count() == 3);
  CHECK(em::equal(f(x, 3, true, 1.5f, Mode::scale), expect(3, true, 1.5f, Mode::scale)));
  CHECK(f.trace_count() == 4);
  CHECK(em::equal(f(x, 3, true, 1.5f, Mode::shift), expect(3, true, 1.5f, Mode::shift)));
  CHECK(f.trace_count() == 5);
  const auto why = f.retrace_reasons();
  REQUIRE(why.size() == 4);
  CHECK(why[0] == "arg1: 2 -> 3");
  CHECK(why[1] == "arg2: false -> true");
  CHECK(why[2] == "arg3: 0.5 -> 1.5");
  CHECK(why[3] == "arg4: enum 0 -> enum 1");
  // Going back to earlier values replays the graph traced for them.
  CHECK(em::equal(f(x, 2, false, 0.5f, Mode::scale), expect(2, false, 0.5f, Mode::scale)));
  CHECK(em::equal(f(vals({4, 5, 6}), 3, true, 0.5f, Mode::scale),
                  -(vals({4, 5, 6}) * 0.5f * 3.f)));
  CHECK(f.trace_count() == 5);
  CHECK(eager_calls == 5);
}

TEST_CASE("capture::function returns a tensor, a tuple or a vector", "[capture][function]") {
  auto x = vals({1, 2, 3});
  auto y = vals({4, 5, 6});
  auto ft = cap::function([](Tensor a, Tensor b) { return std::make_tuple(a + b, a * b); });
  for (int i = 0; i < 2; ++i) {
    auto [s, p] = ft(x, y);
    EMBER_CHECK_VALUES(s, (em::Shape{3}), {5, 7, 9});
    EMBER_CHECK_VALUES(p, (em::Shape{3}), {4, 10, 18});
  }
  CHECK(ft.trace_count() == 1);

  auto fv = cap::function([](Tensor a, int n) {
    std::vector<Tensor> r;
    for (int i = 0; i < n; ++i) r.push_back(a * static_cast<float>(i));
    return r;
  });
  for (int rep = 0; rep < 2; ++rep) {
    auto r = fv(x, 3);
    REQUIRE(r.size() == 3);
    EMBER_CHECK_VALUES(r[2], (em::Shape{3}), {2, 4, 6});
    auto r2 = fv(y, 1);
    REQUIRE(r2.size() == 1);
    EMBER_CHECK_VALUES(r2[0], (em::Shape{3}), {0, 0, 0});
  }
  CHECK(fv.trace_count() == 2);

  auto f1 = cap::function([](Tensor a) { return a.sum(); });
  Tensor s = f1(x);
  f1(y);
  CHECK(s.item<float>() == 6.f);
  CHECK(f1(y).item<float>() == 15.f);
  CHECK(f1.trace_count() == 1);
}

TEST_CASE("a trace that throws leaves no cache entry", "[capture][function]") {
  bool fail = true;
  int eager_calls = 0;
  auto f = cap::function([&](Tensor x) {
    ++eager_calls;
    Tensor y = x * 2.f;
    if (fail) throw em::ValueError("user: failing on purpose");
    return y + 1.f;
  });
  auto x = vals({1, 2});
  CHECK_THROWS_AS(f(x), em::ValueError);
  CHECK_THROWS_WITH(f(x), "user: failing on purpose");
  CHECK(eager_calls == 2);  // no entry: the second call traced again
  CHECK(f.trace_count() == 0);
  CHECK_THROWS_WITH(f.graph_for(x), Catch::Contains("no graph was traced"));
  // The recorder was uninstalled: a fresh trace on this thread works.
  CHECK(em::dispatch::current_recorder() == nullptr);
  CHECK_NOTHROW(cap::trace([](Tensor a) { return a + 1; }, x));

  fail = false;
  EMBER_CHECK_VALUES(f(x), (em::Shape{2}), {3, 5});
  CHECK(f.trace_count() == 1);
  CHECK(f.retrace_reasons().empty());  // failed traces are not retraces
  fail = true;  // a hit replays: the function body does not run
  EMBER_CHECK_VALUES(f(vals({5, 6})), (em::Shape{2}), {11, 13});
  CHECK(eager_calls == 3);
  CHECK(f.trace_count() == 1);

  // An op error inside the trace propagates with its own type and message.
  auto g = cap::function([](Tensor a) { return a + em::zeros({4}); });
  CHECK_THROWS_AS(g(x), em::ShapeError);
  CHECK_THROWS_WITH(g(x), Catch::Contains("add: shapes [2] and [4] cannot be broadcast"));
  CHECK(g.trace_count() == 0);
  EMBER_CHECK_VALUES(g(vals({1, 2, 3, 4})), (em::Shape{4}), {1, 2, 3, 4});
  CHECK(g.trace_count() == 1);
}

TEST_CASE("repeated retracing logs a warning once", "[capture][function]") {
  auto f = cap::function([](Tensor x) { return x + 1.f; });
  const std::string err = capture_stderr([&] {
    for (int n = 1; n <= 12; ++n) {
      auto r = f(em::zeros({n}));
      CHECK(r.shape() == em::Shape{n});
    }
  });
  CHECK(f.trace_count() == 12);
  CHECK(f.retrace_reasons().size() == 11);
  CHECK(occurrences(err, "ember: warning: capture::function traced 5 times in a row") == 1);
  CHECK_THAT(err, Catch::Contains("arg0: float32[5]@cpu -> float32[6]@cpu"));

  // Hits in between reset the streak: no warning.
  auto g = cap::function([](Tensor x) { return x * 2.f; });
  const std::string err2 = capture_stderr([&] {
    for (int n = 1; n <= 8; ++n) {
      g(em::zeros({n}));
      g(em::zeros({1}));
    }
  });
  CHECK(g.trace_count() == 8);
  CHECK(err2.find("warning") == std::string::npos);
}

TEST_CASE("captured tensors become constants baked at trace time", "[capture][constants]") {
  auto c = vals({10, 20, 30});
  auto x = vals({1, 2, 3});
  auto g = cap::trace([&](Tensor a) { return a + c; }, x);
  auto f = cap::function([&](Tensor a) { return a * c; });
  f(x);
  c += 1000.f;  // changes the outside tensor after tracing
  c.fill_(-5.f);
  EMBER_CHECK_VALUES(g.run({x})[0], (em::Shape{3}), {11, 22, 33});
  EMBER_CHECK_VALUES(f(x), (em::Shape{3}), {10, 40, 90});
  CHECK(f.trace_count() == 1);
  CHECK(g.count("constant") >= 1);
  // A returned constant is a copy: changing it does not change the graph.
  auto k = vals({1, 2});
  auto gk = cap::trace([&](Tensor a) { return std::make_tuple(a + 1, k * 3); }, x);
  auto o = gk.run({x});
  o[1].fill_(0.f);
  EMBER_CHECK_VALUES(gk.run({x})[1], (em::Shape{2}), {3, 6});
}

TEST_CASE("Variables are read by reference and their assignments replayed", "[capture][variables]") {
  em::Variable w(vals({1, 2, 3}), "w");
  auto f = cap::function([&](Tensor x) { return x * w.value(); });
  auto x = vals({1, 1, 1});
  EMBER_CHECK_VALUES(f(x), (em::Shape{3}), {1, 2, 3});
  w.assign(vals({5, 6, 7}));
  EMBER_CHECK_VALUES(f(x), (em::Shape{3}), {5, 6, 7});
  w.assign_add(vals({1, 1, 1}));
  EMBER_CHECK_VALUES(f(x), (em::Shape{3}), {6, 7, 8});
  CHECK(f.trace_count() == 1);
  auto g = f.graph_for(x);
  REQUIRE(g.variables().size() == 1);
  CHECK(g.variables()[0] == w);
  CHECK(g.variables()[0].name() == "w");
  CHECK(g.count("read_variable") == 1);

  // Assignments inside the function are replayed, even with no output depending on them.
  em::Variable counter(em::zeros({}), "counter");
  em::Variable total(vals({0, 0}), "total");
  auto step = cap::function([&](Tensor x) {
    counter.assign_add(em::ones({}));
    total.assign(total.value() + x);
    return x * 2.f;
  });
  for (int i = 1; i <= 4; ++i) {
    auto r = step(vals({1.f * i, 10.f * i}));
    EMBER_CHECK_VALUES(r, (em::Shape{2}), {2.0 * i, 20.0 * i});
    CHECK(counter.value().item<float>() == static_cast<float>(i));
  }
  EMBER_CHECK_VALUES(total.value(), (em::Shape{2}), {10, 100});
  CHECK(step.trace_count() == 1);
  CHECK(step.graph_for(vals({0, 0})).count("assign") == 2);
  // Assignments made outside between replays are seen by the next replay.
  counter.assign(em::full({}, 100.f));
  step(vals({0, 0}));
  CHECK(counter.value().item<float>() == 101.f);

  // Read after write inside the function sees the written value, as in eager.
  em::Variable v(vals({1, 1}), "v");
  auto rw = cap::function([&](Tensor x) {
    v.assign_sub(x);
    return v.value() * 10.f;
  });
  EMBER_CHECK_VALUES(rw(vals({1, 2})), (em::Shape{2}), {0, -10});
  EMBER_CHECK_VALUES(rw(vals({1, 2})), (em::Shape{2}), {-10, -30});
  EMBER_CHECK_VALUES(v.value(), (em::Shape{2}), {-1, -3});
  CHECK(rw.trace_count() == 1);

  // A value read before an assignment: same tensor as the variable's storage.
  em::Variable u(vals({1, 2}), "u");
  auto before_after = cap::function([&](Tensor x) {
    Tensor old = u.value() * 1.f;
    u.assign(x);
    return std::make_tuple(old, u.value() + 0.f);
  });
  for (int i = 0; i < 3; ++i) {
    auto prev = u.value().clone();
    auto nx = vals({3.f + i, 4.f + i});
    auto [o, n] = before_after(nx);
    CHECK(em::equal(o, prev));
    CHECK(em::equal(n, nx));
    CHECK(em::equal(u.value(), nx));
  }
  CHECK(before_after.trace_count() == 1);
}

TEST_CASE("an in-place op on a Variable's value inside a trace behaves as in eager", "[capture][variables]") {
  // v.value() shares storage with the variable, so `t += x` on it changes the
  // variable in eager code; a replay must do the same (it is an assignment).
  em::Variable v(em::zeros({2}), "v");
  em::Variable ve(em::zeros({2}), "v_eager");
  auto body = [](em::Variable& var, Tensor x) {
    Tensor t = var.value();
    t += x;
    return t * 1.f;
  };
  auto f = cap::function([&](Tensor x) { return body(v, x); });
  for (int i = 1; i <= 3; ++i) {
    auto x = vals({1.f, 2.f});
    auto re = body(ve, x);
    auto r = f(x);
    INFO("call " << i);
    CHECK(em::equal(r, re));
    CHECK(em::equal(v.value(), ve.value()));
  }
  CHECK(f.trace_count() == 1);
}

TEST_CASE("a host read guards the trace: a data-dependent branch retraces", "[capture][guards]") {
  int eager_calls = 0;
  auto f = cap::function([&](Tensor x) {
    ++eager_calls;
    if (x.sum().item<float>() > 0) return x * 2.f;
    return -x;
  });
  auto pos = vals({1, 2, 3});
  auto neg = vals({-1, -2, -3});
  for (int i = 0; i < 10; ++i) {
    const bool p = i % 2 == 0;
    auto r = f(p ? pos : neg);
    INFO("call " << i);
    if (p)
      EMBER_CHECK_VALUES(r, (em::Shape{3}), {2, 4, 6});
    else
      EMBER_CHECK_VALUES(r, (em::Shape{3}), {1, 2, 3});
  }
  CHECK(f.trace_count() > 1);
  CHECK(f.trace_count() == 2);  // one graph per branch, both kept
  REQUIRE(!f.retrace_reasons().empty());
  CHECK_THAT(f.retrace_reasons()[0], Catch::Contains("guard"));

  // Values that differ every call: still correct every time.
  auto g = cap::function([](Tensor x) {
    if (x.sum().item<float>() > 0) return x + 100.f;
    return x - 100.f;
  });
  const std::string err = capture_stderr([&] {  // 8 retraces in a row: a warning we expect
    for (int i = 0; i < 8; ++i) {
      const float s = (i % 2 ? -1.f : 1.f) * static_cast<float>(i + 1);
      auto r = g(vals({s, s}));
      INFO("call " << i << " s=" << s);
      EMBER_CHECK_VALUES(r, (em::Shape{2}), {s > 0 ? s + 100 : s - 100, s > 0 ? s + 100 : s - 100});
    }
  });
  CHECK(g.trace_count() > 1);
  CHECK(occurrences(err, "ember: warning") == 1);

  // Graph::run of a graph with a guard: a differing value is an error, not the wrong branch.
  auto gr = cap::trace([](Tensor x) { return x.sum().item<float>() > 0 ? x * 2.f : -x; }, pos);
  CHECK(gr.count("guard") == 1);
  EMBER_CHECK_VALUES(gr.run({pos})[0], (em::Shape{3}), {2, 4, 6});
  CHECK_THROWS_AS(gr.run({neg}), em::ValueError);
  CHECK_THROWS_WITH(gr.run({neg}), Catch::StartsWith("Graph::run: guard") &&
                                       Catch::Contains("trace again for these inputs"));

  // to_vector is a host read too.
  auto h = cap::function([](Tensor x) {
    auto v = x.to_vector<float>();
    return v[0] > v[1] ? x * 3.f : x;
  });
  EMBER_CHECK_VALUES(h(vals({2, 1})), (em::Shape{2}), {6, 3});
  EMBER_CHECK_VALUES(h(vals({1, 2})), (em::Shape{2}), {1, 2});
  EMBER_CHECK_VALUES(h(vals({2, 1})), (em::Shape{2}), {6, 3});
  CHECK(h.trace_count() == 2);
}

TEST_CASE("the same tensor passed twice", "[capture][function]") {
  auto f = cap::function([](Tensor a, Tensor b) { return a * 2.f + b; });
  auto x = vals({1, 2});
  auto y = vals({10, 20});
  EMBER_CHECK_VALUES(f(x, x), (em::Shape{2}), {3, 6});
  EMBER_CHECK_VALUES(f(x, y), (em::Shape{2}), {12, 24});
  EMBER_CHECK_VALUES(f(y, y), (em::Shape{2}), {30, 60});
  EMBER_CHECK_VALUES(f(y, x), (em::Shape{2}), {21, 42});
  // Aliasing is part of the key: (x, x) and (x, y) are different graphs.
  CHECK(f.trace_count() == 2);

  // Writing through one argument is seen through the other, as in eager.
  auto g = cap::function([](Tensor a, Tensor b) {
    a += 1.f;
    return b * 1.f;
  });
  for (int i = 0; i < 2; ++i) {
    auto z = vals({1, 2});
    EMBER_CHECK_VALUES(g(z, z), (em::Shape{2}), {2, 3});
    EMBER_CHECK_VALUES(z, (em::Shape{2}), {2, 3});
  }
  CHECK(g.trace_count() == 1);
}

TEST_CASE("a capture::function called inside another traced function is inlined", "[capture][function]") {
  auto inner = cap::function([](Tensor x) { return em::exp(x) + 1.f; });
  auto outer = cap::function([&](Tensor x) { return inner(x) * 2.f; });
  for (float v : {0.f, 1.f, -1.f}) {
    auto x = vals({v, v + 0.5f});
    CHECK(em::equal(outer(x), (em::exp(x) + 1.f) * 2.f));
  }
  CHECK(outer.trace_count() == 1);
  // The inner function still works on its own.
  auto x = vals({0.25f, 2.f});
  CHECK(em::equal(inner(x), em::exp(x) + 1.f));
  CHECK(em::equal(inner(x), em::exp(x) + 1.f));
  CHECK(inner.trace_count() == 1);
  // And inside a plain trace.
  auto g = cap::trace([&](Tensor a) { return inner(a) - 1.f; }, x);
  CHECK(em::equal(g.run({x})[0], em::exp(x) + 1.f - 1.f));
}

TEST_CASE("tracing inside a trace and Graph::run inside a trace are errors", "[capture][errors]") {
  auto x = vals({1, 2});
  auto g = cap::trace([](Tensor a) { return a + 1.f; }, x);
  auto nested_trace = [&] {
    cap::trace(
        [&](Tensor a) {
          cap::trace([](Tensor b) { return b * 2.f; }, a);
          return a;
        },
        x);
  };
  CHECK_THROWS_AS(nested_trace(), em::ValueError);
  CHECK_THROWS_WITH(nested_trace(), "capture: tracing inside another trace or graph is not supported");
  auto run_inside = [&] {
    cap::trace([&](Tensor a) { return g.run({a})[0]; }, x);
  };
  CHECK_THROWS_AS(run_inside(), em::ValueError);
  CHECK_THROWS_WITH(run_inside(), Catch::StartsWith("Graph::run: running a graph inside a trace is not supported"));
  // Also through capture::function.
  auto f = cap::function([&](Tensor a) { return g.run({a})[0]; });
  CHECK_THROWS_AS(f(x), em::ValueError);
  CHECK(f.trace_count() == 0);
  // Nothing leaked: eager code and new traces still work.
  CHECK(em::dispatch::current_recorder() == nullptr);
  EMBER_CHECK_VALUES(g.run({x})[0], (em::Shape{2}), {2, 3});
}

TEST_CASE("in-place ops inside a trace", "[capture][inplace]") {
  // Adds into a view of its input: refused in a trace.
  auto add_into_view = [](Tensor a) {
    Tensor v = a.slice(0, 0, 2);
    v += 1.f;
    return a * 1.f;
  };
  SECTION("on a local tensor") {
    auto f = cap::function([](Tensor x) {
      Tensor t = x * 1.f;
      t += 1.f;
      t *= x;
      t.sub_(0.5f);
      return t;
    });
    for (int i = 0; i < 3; ++i) {
      auto x = vals({1.f + i, 2.f, -3.f});
      auto expect = (x * 1.f + 1.f) * x - 0.5f;
      CHECK(em::equal(f(x), expect));
      EMBER_CHECK_VALUES(x, (em::Shape{3}), {1.0 + i, 2, -3});  // the input is untouched
    }
    CHECK(f.trace_count() == 1);
  }
  SECTION("on an input tensor: the caller's tensor is updated as in eager") {
    auto body = [](Tensor x, Tensor y) {
      x += y;
      x.mul_(2.f);
      return x + 1.f;
    };
    auto f = cap::function(body);
    for (int i = 0; i < 3; ++i) {
      auto x = vals({1.f, 2.f * i, 3.f});
      auto y = vals({10, 20, 30});
      auto xe = x.clone();
      auto re = body(xe, y);
      auto r = f(x, y);
      INFO("call " << i);
      CHECK(em::equal(r, re));
      CHECK(em::equal(x, xe));
      EMBER_CHECK_VALUES(y, (em::Shape{3}), {10, 20, 30});
    }
    CHECK(f.trace_count() == 1);
    // The traced graph, run directly, writes back too.
    auto x = vals({1, 1, 1});
    auto g = f.graph_for(x, x * 1.f);
    auto out = g.run({x, vals({1, 2, 3})});
    EMBER_CHECK_VALUES(x, (em::Shape{3}), {4, 6, 8});
    EMBER_CHECK_VALUES(out[0], (em::Shape{3}), {5, 7, 9});
  }
  SECTION("on a non-contiguous input passed at replay") {
    auto f = cap::function([](Tensor x) {
      x.add_(1.f);
      return x.sum();
    });
    auto a = em::arange(6.f).reshape({2, 3});
    f(a);
    EMBER_CHECK_VALUES(a, (em::Shape{2, 3}), {1, 2, 3, 4, 5, 6});
    auto b = em::arange(6.f).reshape({3, 2}).t();  // [2,3], transposed
    auto s = f(b);
    CHECK(f.trace_count() == 1);
    CHECK(s.item<float>() == 21.f);
    EMBER_CHECK_VALUES(b, (em::Shape{2, 3}), {1, 3, 5, 2, 4, 6});
  }
  SECTION("on a view raises the documented error") {
    auto x = vals({1, 2, 3, 4});
    CHECK_THROWS_AS(cap::trace(add_into_view, x), em::ValueError);
    CHECK_THROWS_WITH(cap::trace(add_into_view, x),
                      "capture: in-place add_ writes into a tensor that shares memory with another traced "
                      "tensor (a view); traces support in-place ops on whole tensors only; use the "
                      "out-of-place op");
    // Writing into the base of a view is refused as well (the view would go stale).
    auto body2 = [](Tensor a) {
      Tensor t = a * 1.f;
      Tensor v = t.reshape({2, 2});
      t.mul_(2.f);
      return v + 0.f;
    };
    CHECK_THROWS_AS(cap::trace(body2, x), em::ValueError);
    CHECK_THROWS_WITH(cap::trace(body2, x), Catch::StartsWith("capture: in-place mul_ writes into a tensor"));
  }
  SECTION("a refused in-place op leaves the caller's tensor unchanged") {
    // STYLE.md: a failed op leaves no half-written tensor.
    auto x = vals({1, 2, 3, 4});
    CHECK_THROWS_AS(cap::trace(add_into_view, x), em::ValueError);
    EMBER_CHECK_VALUES(x, (em::Shape{4}), {1, 2, 3, 4});
  }
}
