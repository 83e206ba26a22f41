// Each pass on its own (Options with only that pass on): it keeps the graph's
// meaning on random inputs and changes the graph as it should. Memory planning
// is checked through the allocator statistics.
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <ember/capture.h>
#include <ember/ember.h>

#include "compiled.h"
#include "support/reference.h"

namespace em = ember;
namespace cap = ember::capture;
using em::Tensor;

namespace {

enum class Pass { none, dce, cse, const_fold, fuse, memory_plan };

cap::Options only(Pass p) {
  cap::Options o;
  o.dce = p == Pass::dce;
  o.cse = p == Pass::cse;
  o.const_fold = p == Pass::const_fold;
  o.fuse = p == Pass::fuse;
  o.memory_plan = p == Pass::memory_plan;
  return o;
}

/// A function's result as a list of outputs: a Tensor, or each element of a std::tuple.
template <class R>
std::vector<Tensor> output_list(R&& r) {
  if constexpr (std::is_same_v<std::decay_t<R>, Tensor>) {
    return std::vector<Tensor>{r};
  } else {
    return std::apply([](auto&&... t) { return std::vector<Tensor>{t...}; }, r);
  }
}

/// Traces a one- or two-input function (returning a Tensor or a std::tuple of them)
/// with `opts` and returns its graph.
template <class F>
cap::Graph graph_of(F fn, const cap::Options& opts, const std::vector<Tensor>& inputs) {
  auto lf = [&](const std::vector<Tensor>& in) {
    if constexpr (std::is_invocable_v<F&, Tensor>) {
      return output_list(fn(in[0]));
    } else {
      return output_list(fn(in[0], in[1]));
    }
  };
  return cap::detail::trace_list(lf, inputs, {}, opts).first;
}

Tensor rnd(const em::Shape& s, uint32_t seed, em::test::Domain d = {}) {
  return em::test::random_tensor(s, em::float32, d, seed);
}

/// The 10-op chain of the benchmark target.
Tensor chain10(Tensor x) {
  Tensor t = x * 1.5f;
  t = t + 0.5f;
  t = em::relu(t);
  t = t * x;
  t = t - 0.25f;
  t = em::tanh(t);
  t = t * 0.75f;
  t = t + x;
  t = em::sigmoid(t);
  return t * t;
}

int elementwise_op_nodes(const cap::Graph& g) {
  int n = 0;
  for (const auto& nd : g.impl().optimized.nodes)
    if (nd.kind == cap::NodeKind::op &&
        (em::dispatch::schema(nd.op).flags & (em::dispatch::kUnary | em::dispatch::kBinary)))
      ++n;
  return n;
}

constexpr std::size_t kMB4 = std::size_t(1) << 22;  // 1M float32

}  // namespace

TEST_CASE("dce alone removes unused nodes and keeps side effects", "[capture][passes][dce]") {
  em::Variable v(em::zeros({4}), "v");
  auto fn = [&](Tensor x) {
    Tensor unused = em::exp(x) * 3.f;
    Tensor unused2 = em::matmul(x.reshape({2, 2}), x.reshape({2, 2}));
    (void)unused;
    (void)unused2;
    v.assign(x * 2.f);  // no output depends on it: must stay
    return x + 1.f;
  };
  auto x0 = rnd({4}, 1);
  auto none = graph_of(fn, only(Pass::none), {x0});
  auto dce = graph_of(fn, only(Pass::dce), {x0});
  CHECK(none.count("exp") == 1);
  CHECK(none.count("matmul") == 1);
  CHECK(dce.count("exp") == 0);
  CHECK(dce.count("matmul") == 0);
  CHECK(dce.count("reshape") == 0);
  CHECK(dce.count("assign") == 1);
  CHECK(dce.count("mul") == 1);  // x * 2 feeds the assignment
  CHECK(dce.count("add") == 1);
  CHECK(dce.num_nodes() < none.num_nodes());
  CHECK(none.num_nodes() - dce.num_nodes() == 6);  // exp, its scalar, mul, 2 reshapes, matmul
  for (uint32_t seed = 2; seed < 6; ++seed) {
    auto x = rnd({4}, seed);
    for (const cap::Graph* g : {&none, &dce}) {
      v.assign(em::zeros({4}));
      CHECK(em::equal(g->run({x})[0], x + 1.f));
      CHECK(em::equal(v.value(), x * 2.f));
    }
  }
  // Guards and input write-backs survive too.
  auto fg = [](Tensor x) {
    x += 1.f;
    Tensor dead = x * 5.f;
    (void)dead;
    return x.sum().item<float>() > 0 ? x * 0.f : x;
  };
  auto xg = em::ones({3});
  auto gd = graph_of(fg, only(Pass::dce), {xg});
  CHECK(gd.count("guard") == 1);
  auto xr = em::ones({3});
  gd.run({xr});
  EMBER_CHECK_VALUES(xr, (em::Shape{3}), {2, 2, 2});
}

TEST_CASE("cse alone merges duplicate subexpressions", "[capture][passes][cse]") {
  auto fn = [](Tensor x) {
    Tensor a = em::exp(x) + em::exp(x);
    Tensor b = x.sum({0}) * x.sum({0});
    Tensor c = x.sum({1}, true);  // other attrs: not merged with sum({0})
    return a * b + c + em::exp(x);
  };
  auto x0 = rnd({3, 3}, 1);
  auto none = graph_of(fn, only(Pass::none), {x0});
  auto cse = graph_of(fn, only(Pass::cse), {x0});
  CHECK(none.count("exp") == 3);
  CHECK(cse.count("exp") == 1);
  CHECK(none.count("sum") == 3);
  CHECK(cse.count("sum") == 2);
  CHECK(cse.num_nodes() < none.num_nodes());
  for (uint32_t seed = 2; seed < 6; ++seed) {
    auto x = rnd({3, 3}, seed);
    CHECK(em::equal(cse.run({x})[0], fn(x)));
    CHECK(em::equal(none.run({x})[0], fn(x)));
  }
  // Random ops are never merged: two draws stay two draws.
  auto fr = [](Tensor x) { return em::rand_like(x) - em::rand_like(x); };
  auto gr = graph_of(fr, only(Pass::cse), {x0});
  CHECK(gr.count("rand") == 2);
  CHECK(!em::equal(gr.run({x0})[0], em::zeros({3, 3})));
}

TEST_CASE("cse keeps constants that differ only in ways a double hides", "[capture][passes][cse]") {
  SECTION("signed zeros") {
    // x * 0 and x * -0 differ in sign; 1 / that tells +inf from -inf.
    auto fn = [](Tensor x) { return std::make_tuple(1.f / (x * 0.f), 1.f / (x * -0.f)); };
    auto x = em::tensor({1.f, 2.f});
    auto g = graph_of(fn, only(Pass::cse), {x});
    auto out = g.run({x});
    auto [ea, eb] = fn(x);
    CHECK(em::equal(out[0], ea));
    CHECK(em::equal(out[1], eb));
    CHECK(eb.to_vector<float>()[0] < 0);
  }
  SECTION("int64 values beyond 2^53") {
    const int64_t big = int64_t(1) << 53;
    auto fn = [&](Tensor x) { return std::make_tuple(x + big, x + (big + 1)); };
    auto x = em::tensor(std::vector<int64_t>{0, 1});
    auto g = graph_of(fn, only(Pass::cse), {x});
    auto out = g.run({x});
    CHECK(out[1].to_vector<int64_t>() == std::vector<int64_t>{big + 1, big + 2});
    CHECK(out[0].to_vector<int64_t>() == std::vector<int64_t>{big, big + 1});
  }
}

TEST_CASE("const_fold alone turns ops on constants into constants", "[capture][passes][const_fold]") {
  auto c = em::tensor({1.f, 2.f, 3.f});
  auto fn = [&](Tensor x) {
    Tensor k = em::exp(c * 2.f) + em::ones({3});  // constants only: folds
    Tensor r = em::arange(3.f);                   // a small creation op: folds
    return x * k + r;
  };
  auto x0 = rnd({3}, 1);
  auto none = graph_of(fn, only(Pass::none), {x0});
  auto cf = graph_of(fn, only(Pass::const_fold), {x0});
  CHECK(none.count("exp") == 1);
  CHECK(none.count("fill") == 1);
  CHECK(none.count("arange") == 1);
  CHECK(cf.count("exp") == 0);
  CHECK(cf.count("fill") == 0);
  CHECK(cf.count("arange") == 0);
  CHECK(cf.count("mul") == 1);  // x * k: x is an input
  CHECK(cf.count("add") == 1);
  CHECK(cf.count("constant") > 0);
  for (uint32_t seed = 2; seed < 6; ++seed) {
    auto x = rnd({3}, seed);
    CHECK(em::equal(cf.run({x})[0], fn(x)));
  }
  // Random ops and big creation ops are not folded.
  auto fr = [](Tensor x) { return x + em::rand({3}) + em::zeros({300, 300}).sum(); };
  auto gr = graph_of(fr, only(Pass::const_fold), {x0});
  CHECK(gr.count("rand") == 1);
  CHECK(gr.count("fill") == 1);
  auto r1 = gr.run({x0})[0], r2 = gr.run({x0})[0];
  CHECK(!em::equal(r1, r2));
  // A folded graph that returns a constant returns a fresh copy each run.
  auto gc = graph_of([&](Tensor) { return c * 10.f; }, only(Pass::const_fold), {x0});
  CHECK(gc.count("mul") == 0);
  auto o = gc.run({x0})[0];
  o.fill_(0.f);
  EMBER_CHECK_VALUES(gc.run({x0})[0], (em::Shape{3}), {10, 20, 30});
}

TEST_CASE("fusion alone turns an elementwise chain into one fused node", "[capture][passes][fuse]") {
  auto x0 = rnd({1000}, 1);
  auto none = graph_of(chain10, only(Pass::none), {x0});
  auto fused = graph_of(chain10, only(Pass::fuse), {x0});
  CHECK(elementwise_op_nodes(none) == 10);
  CHECK(fused.count("fused") == 1);
  CHECK(elementwise_op_nodes(fused) == 0);
  CHECK_THAT(fused.str(), Catch::Contains("fused[mul,add,relu,mul,sub,tanh,mul,add,sigmoid,mul]"));
  for (uint32_t seed = 2; seed < 6; ++seed) {
    auto x = rnd({1000}, seed);
    auto eager = chain10(x);
    auto got = fused.run({x})[0];
    EMBER_CHECK_CLOSE(got, eager);
    INFO("fusion is designed to be bit-identical to eager");
    CHECK(em::equal(got, eager));
  }
  // Odd sizes (tile tails) and a size that takes the parallel path.
  for (int64_t n : {1, 7, 513, 300001}) {
    auto x = rnd({n}, static_cast<uint32_t>(n));
    auto g = graph_of(chain10, only(Pass::fuse), {x});
    CHECK(g.count("fused") == 1);
    auto x2 = rnd({n}, static_cast<uint32_t>(n + 1));
    INFO("n = " << n);
    CHECK(em::equal(g.run({x2})[0], chain10(x2)));
  }
}

TEST_CASE("fusion folds a bias add into the matmul before it (addmm)", "[capture][passes][fuse][addmm]") {
  // Note [Bias in the GEMM]: add(matmul(a, w), b) -> addmm(b, a, w).
  auto layer = [](Tensor x, Tensor w) { return em::relu(em::matmul(x, w) + w.slice(0, 0, 1).reshape({-1})); };
  const Tensor x0 = rnd({8, 300}, 1), w0 = rnd({300, 16}, 2);
  auto none = graph_of(layer, only(Pass::none), {x0, w0});
  auto fused = graph_of(layer, only(Pass::fuse), {x0, w0});
  CHECK(none.count("matmul") == 1);
  CHECK(none.count("addmm") == 0);
  CHECK(fused.count("addmm") == 1);
  CHECK(fused.count("matmul") == 0);
  CHECK(fused.count("add") == 0);
  CHECK(fused.count("relu") == 1);
  CHECK_THAT(fused.str(), Catch::Contains("addmm("));
  for (uint32_t seed = 3; seed < 7; ++seed) {
    const Tensor x = rnd({8, 300}, seed), w = rnd({300, 16}, seed + 10);
    EMBER_CHECK_CLOSE(fused.run({x, w})[0], layer(x, w));
  }
  // Every bias shape that broadcasts to the product without growing it, on
  // either side of the add, in float32 and float64.
  for (em::DType dt : {em::float32, em::float64}) {
    for (const em::Shape& bs : {em::Shape{5}, em::Shape{1, 5}, em::Shape{4, 1}, em::Shape{4, 5}, em::Shape{}}) {
      INFO(em::dtype_name(dt) << " bias " << em::shape_str(bs));
      const Tensor a = rnd({4, 3}, 5).to(dt), w = rnd({3, 5}, 6).to(dt), b = rnd(bs, 7).to(dt);
      for (bool bias_first : {false, true}) {
        auto f = [&](Tensor u, Tensor v) { return bias_first ? b + em::matmul(u, v) : em::matmul(u, v) + b; };
        auto g = graph_of(f, only(Pass::fuse), {a, w});
        CHECK(g.count("addmm") == 1);
        CHECK(g.count("matmul") == 0);
        const Tensor a2 = rnd({4, 3}, 8).to(dt), w2 = rnd({3, 5}, 9).to(dt);
        // K = 3: one block, so the bias joins the sum where eager adds it.
        CHECK(em::equal(g.run({a2, w2})[0], f(a2, w2)));
      }
    }
  }
  // Left alone: fusion off, a product read elsewhere, a bias that grows the
  // result or changes its dtype, integer and 16-bit floats, batched and 1-d operands.
  struct Keep {
    const char* what;
    std::function<std::vector<Tensor>(Tensor, Tensor)> fn;
    em::DType dt;
  };
  const std::vector<Keep> keeps = {
      {"product also an output", [](Tensor a, Tensor w) {
         Tensor p = em::matmul(a, w);
         return std::vector<Tensor>{p + 1.0f, p};
       }, em::float32},
      {"product read twice", [](Tensor a, Tensor w) {
         Tensor p = em::matmul(a, w);
         return std::vector<Tensor>{(p + w.slice(0, 0, 1)) * p};
       }, em::float32},
      {"bias grows the result", [](Tensor a, Tensor w) {
         return std::vector<Tensor>{em::matmul(a, w) + em::zeros({2, 4, 5})};
       }, em::float32},
      {"bias promotes the dtype", [](Tensor a, Tensor w) {
         return std::vector<Tensor>{em::matmul(a, w) + em::ones({5}, em::float64)};
       }, em::float32},
      {"int32", [](Tensor a, Tensor w) { return std::vector<Tensor>{em::matmul(a, w) + w.slice(0, 0, 1)}; }, em::int32},
      {"float16", [](Tensor a, Tensor w) { return std::vector<Tensor>{em::matmul(a, w) + w.slice(0, 0, 1)}; },
       em::float16},
      {"batched", [](Tensor a, Tensor w) {
         return std::vector<Tensor>{em::matmul(a.unsqueeze(0).expand({2, 4, 3}), w) + w.slice(0, 0, 1)};
       }, em::float32},
      {"vector operand", [](Tensor a, Tensor w) {
         return std::vector<Tensor>{em::matmul(a.select(0, 0), w) + w.select(0, 1)};
       }, em::float32},
  };
  for (const Keep& k : keeps) {
    INFO(k.what);
    const Tensor a = rnd({4, 3}, 11).to(k.dt), w = rnd({3, 5}, 12).to(k.dt);
    auto lf = [&](const std::vector<Tensor>& in) { return k.fn(in[0], in[1]); };
    const cap::Graph g = cap::detail::trace_list(lf, {a, w}, {}, only(Pass::fuse)).first;
    CHECK(g.count("addmm") == 0);
    CHECK(g.count("matmul") == 1);
    const std::vector<Tensor> got = g.run({a, w}), want = k.fn(a, w);
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(em::equal(got[i], want[i]));
  }
}

TEST_CASE("fusion fuses trees with broadcasting operands and scalars", "[capture][passes][fuse]") {
  auto fn = [](Tensor a, Tensor b) {
    // a [4,5], b [4,1]: a tree (tanh(a) and a*b are separate branches).
    return (a * b + 2.f) * em::tanh(a) - b + em::maximum(a, b);
  };
  auto a0 = rnd({4, 5}, 1), b0 = rnd({4, 1}, 2);
  auto none = graph_of(fn, only(Pass::none), {a0, b0});
  auto fused = graph_of(fn, only(Pass::fuse), {a0, b0});
  CHECK(none.count("fused") == 0);
  CHECK(fused.count("fused") == 1);
  CHECK(elementwise_op_nodes(fused) == 0);
  for (uint32_t seed = 3; seed < 7; ++seed) {
    auto a = rnd({4, 5}, seed), b = rnd({4, 1}, seed + 10);
    auto got = fused.run({a, b})[0];
    EMBER_CHECK_CLOSE(got, fn(a, b));
    CHECK(em::equal(got, fn(a, b)));
    // Non-contiguous inputs at replay: a transposed [4,5], b a stride-0 expand of [1] or a slice.
    auto at = a.t().contiguous().t();
    auto bs = em::concat({b, b}, 1).slice(1, 1, 2);
    REQUIRE(!at.is_contiguous());
    REQUIRE(!bs.is_contiguous());
    CHECK(em::equal(fused.run({at, bs})[0], fn(a, b)));
  }
  // An operand computed at its own (smaller) shape stays a separate node, and is right.
  auto fn1 = [](Tensor a, Tensor b) { return (a * b + 2.f) * em::tanh(a) - b / 3.f; };
  auto g1 = graph_of(fn1, only(Pass::fuse), {a0, b0});
  CHECK(g1.count("fused") == 1);
  CHECK(g1.count("div") == 1);
  CHECK(em::equal(g1.run({a0, b0})[0], fn1(a0, b0)));
  // Row broadcast ([5]) and a 0-d operand.
  auto fn2 = [](Tensor a, Tensor r) { return em::sigmoid(a - r) * (r + 1.f) + a.sum() * 0.f; };
  auto r0 = rnd({5}, 3);
  auto g2 = graph_of(fn2, only(Pass::fuse), {a0, r0});
  CHECK(g2.count("fused") == 1);
  CHECK(em::equal(g2.run({a0, r0})[0], fn2(a0, r0)));
  // float64 fuses too.
  auto a64 = a0.to(em::float64), b64 = b0.to(em::float64);
  auto g64 = graph_of(fn, only(Pass::fuse), {a64, b64});
  CHECK(g64.count("fused") == 1);
  CHECK(em::equal(g64.run({a64, b64})[0], fn(a64, b64)));
  // A value with two readers outside one tree is materialized, and still right.
  auto fn3 = [](Tensor a) {
    Tensor s = em::exp(a) * 2.f;  // read by both branches
    return std::make_tuple(em::tanh(s) + 1.f, s.sum());
  };
  auto g3 = graph_of(fn3, only(Pass::fuse), {a0});
  auto o3 = g3.run({a0});
  auto [e1, e2] = fn3(a0);
  CHECK(em::equal(o3[0], e1));
  CHECK(em::equal(o3[1], e2));
}

/// The accumulator-form code of the graph's only fused node, as a count of
/// loads and spills (Note [Accumulator-form fused programs]).
std::pair<int, int> loads_and_spills(const cap::Graph& g) {
  int loads = 0, spills = 0, fused = 0;
  for (const auto& nd : g.impl().optimized.nodes) {
    if (nd.kind != cap::NodeKind::fused) continue;
    ++fused;
    for (const auto& c : nd.fused->code) {
      loads += c.code == em::cpu::FusedInstr::kLoad;
      spills += c.code == em::cpu::FusedInstr::kSpill;
    }
  }
  REQUIRE(fused == 1);
  return {loads, spills};
}

TEST_CASE("fused programs keep the running value in registers and spill only where a tree needs it",
          "[capture][passes][fuse]") {
  auto x0 = rnd({1000}, 1);
  // A chain: one load of x, no spill (x is read again from memory, not kept).
  auto chain = graph_of(chain10, only(Pass::fuse), {x0});
  CHECK(loads_and_spills(chain) == std::make_pair(1, 0));

  // The accumulator on the right of non-commutative ops, and on both sides (t * t).
  auto right = [](Tensor a, Tensor b) {
    Tensor t = em::exp(a * 0.5f);
    t = 2.f - t;
    t = b / t;
    t = em::maximum(b, t * t);
    t = em::pow(em::abs(t) + 0.5f, b);
    return em::remainder(a, t + 0.5f);
  };
  // A tree: both sides of a binary op are intermediates, so one side is spilled.
  // (Every intermediate has one reader, else it would be materialized.)
  auto tree = [](Tensor a, Tensor b) {
    Tensor l = (a + b) * (a - b);  // a + b waits in a slot while a - b is computed
    Tensor r = (em::exp(a * 0.1f) - b * 3.f) * em::tanh(a * b);
    return l / (r * r + 1.f) - em::sigmoid(a - 1.f) * (b + 2.f);
  };
  for (auto fn : {+right, +tree}) {
    auto b0 = rnd({1000}, 2);
    auto g = graph_of(fn, only(Pass::fuse), {x0, b0});
    CHECK(g.count("fused") == 1);
    const auto [loads, spills] = loads_and_spills(g);
    CHECK(loads >= 1);
    if (fn == +right) CHECK(spills == 0);
    if (fn == +tree) CHECK(spills >= 1);
    // Sizes around the register block (64 float32 with AVX-512, 8 with SSE2)
    // and the tile of broadcast inputs; row-broadcast and scalar operands.
    for (int64_t n : {1, 15, 16, 63, 64, 65, 200, 513, 4099}) {
      auto a = rnd({3, n}, static_cast<uint32_t>(n)), b = rnd({3, n}, static_cast<uint32_t>(n + 7));
      auto gn = graph_of(fn, only(Pass::fuse), {a, b});
      INFO("n = " << n);
      CHECK(em::equal(gn.run({a, b})[0], fn(a, b)));
      auto brow = rnd({n}, static_cast<uint32_t>(n + 9));
      auto gr = graph_of(fn, only(Pass::fuse), {a, brow});
      CHECK(em::equal(gr.run({a, brow})[0], fn(a, brow)));
      auto b1 = rnd({1}, static_cast<uint32_t>(n + 11));
      auto g1 = graph_of(fn, only(Pass::fuse), {a, b1});
      CHECK(em::equal(g1.run({a, b1})[0], fn(a, b1)));
      auto a64 = a.to(em::float64), b64 = b.to(em::float64);
      auto g64 = graph_of(fn, only(Pass::fuse), {a64, b64});
      CHECK(em::equal(g64.run({a64, b64})[0], fn(a64, b64)));
    }
  }

  // More values waiting at once than the fused loop has slots: the group is
  // left unfused (and right).
  auto wide = [](Tensor a) {
    std::vector<Tensor> leaves;
    for (int i = 0; i < 40; ++i) leaves.push_back(em::exp(a * (0.01f * static_cast<float>(i))));
    while (leaves.size() > 1) {
      std::vector<Tensor> next;
      for (std::size_t i = 0; i + 1 < leaves.size(); i += 2) next.push_back(leaves[i] + leaves[i + 1]);
      if (leaves.size() % 2) next.push_back(leaves.back());
      leaves = next;
    }
    return leaves[0];
  };
  auto gw = graph_of(wide, only(Pass::fuse), {x0});
  CHECK(gw.count("fused") == 0);
  CHECK(em::equal(gw.run({x0})[0], wide(x0)));
}

TEST_CASE("memory planning: the fused 10-op chain on 1M floats holds inputs + output + one temporary",
          "[capture][passes][memory]") {
  auto x = rnd({1 << 20}, 7);
  auto g = cap::trace(chain10, x);  // all passes on
  CHECK(g.count("fused") == 1);
  auto expect = chain10(x);
  em::empty_cache();  // a cached block may be up to 2x a request: start from exact sizes
  const std::size_t before = em::memory_stats().current;
  em::reset_peak_memory();
  auto out = g.run({x});
  const std::size_t peak = em::memory_stats().peak;
  INFO("peak over the inputs: " << (peak - before) << " bytes");
  CHECK(peak - before <= kMB4 /*output*/ + kMB4 /*one temporary*/);
  CHECK(em::equal(out[0], expect));
  CHECK(out[0].data_ptr() != x.data_ptr());  // outputs never alias inputs
  // A second replay (the frame pool is warm) stays within the same bound.
  out.clear();
  em::reset_peak_memory();
  const std::size_t before2 = em::memory_stats().current;
  auto out2 = g.run({x});
  CHECK(em::memory_stats().peak - before2 <= 2 * kMB4);
  CHECK(em::equal(out2[0], expect));
}

TEST_CASE("memory planning without fusion reuses buffers", "[capture][passes][memory]") {
  auto x = rnd({1 << 20}, 8);
  auto expect = chain10(x);
  cap::Options planned = only(Pass::memory_plan);
  auto gp = graph_of(chain10, planned, {x});
  auto gu = graph_of(chain10, only(Pass::none), {x});
  CHECK(gp.impl().exec->planned_bytes() <= 2 * kMB4);
  CHECK(gu.impl().exec->planned_bytes() == 0);

  em::empty_cache();
  std::size_t before = em::memory_stats().current;
  em::reset_peak_memory();
  auto op = gp.run({x});
  const std::size_t peak_planned = em::memory_stats().peak - before;
  CHECK(em::equal(op[0], expect));
  op.clear();

  em::empty_cache();
  before = em::memory_stats().current;
  em::reset_peak_memory();
  auto ou = gu.run({x});
  const std::size_t peak_unplanned = em::memory_stats().peak - before;
  CHECK(em::equal(ou[0], expect));
  INFO("planned peak " << peak_planned << ", unplanned peak " << peak_unplanned);
  CHECK(peak_planned <= 3 * kMB4);    // output + two alternating buffers
  CHECK(peak_unplanned >= 9 * kMB4);  // every temporary lives to the end of the run
  CHECK(peak_planned < peak_unplanned / 3);
}

TEST_CASE("memory planning keeps semantics with views, branches and reductions", "[capture][passes][memory]") {
  auto fn = [](Tensor x, Tensor y) {
    Tensor t = x * 2.f;
    Tensor v = t.t();                   // a view keeps t's buffer alive
    Tensor u = em::exp(y) + 1.f;        // may reuse a freed buffer, never t's
    Tensor w = em::matmul(v, u);
    Tensor z = (x - 1.f).sum({1}, true);
    return std::make_tuple(w + z.t(), v * 1.f);
  };
  for (Pass p : {Pass::memory_plan, Pass::none}) {
    cap::Options o = only(p);
    auto x0 = rnd({8, 8}, 1), y0 = rnd({8, 8}, 2);
    auto g = graph_of(fn, o, {x0, y0});
    for (uint32_t seed = 3; seed < 6; ++seed) {
      auto x = rnd({8, 8}, seed), y = rnd({8, 8}, seed + 10);
      auto out = g.run({x, y});
      auto [a, b] = fn(x, y);
      CHECK(em::equal(out[0], a));
      CHECK(em::equal(out[1], b));
    }
  }
}

TEST_CASE("memory planning: results of one replay survive the next", "[capture][passes][memory]") {
  // Outputs are the caller's: a later replay must not write into them, also
  // when an output is a view of an intermediate buffer.
  auto fn = [](Tensor x) {
    Tensor t = x * 2.f + 1.f;
    return std::make_tuple(t.t(), t.reshape({-1}).slice(0, 0, 4), em::exp(x));
  };
  auto x1 = rnd({4, 4}, 1), x2 = rnd({4, 4}, 2);
  for (bool fuse : {false, true}) {
    cap::Options o;
    o.fuse = fuse;
    auto g = graph_of(fn, o, {x1});
    auto r1 = g.run({x1});
    auto keep = std::vector<Tensor>{r1[0].clone(), r1[1].clone(), r1[2].clone()};
    auto r2 = g.run({x2});
    INFO("fuse = " << fuse);
    for (int k = 0; k < 3; ++k) {
      INFO("output " << k);
      CHECK(em::equal(r1[k], keep[k]));
    }
    auto [a, b, c] = fn(x2);
    CHECK(em::equal(r2[0], a));
    CHECK(em::equal(r2[1], b));
    CHECK(em::equal(r2[2], c));
  }
}

TEST_CASE("memory planning: a value assigned to a Variable is not overwritten before the assignment",
          "[capture][passes][memory]") {
  // Assignments are applied at the end of a replay; the buffer of the value
  // they write must stay intact until then.
  em::Variable v(em::zeros({64}), "v");
  auto fn = [&](Tensor x) {
    v.assign(x * 2.f);
    Tensor u = em::exp(x);   // same size as x * 2: a candidate for its buffer
    Tensor w = em::sqrt(u);  // and another
    return w.sum();
  };
  for (bool plan : {true, false}) {
    cap::Options o;
    o.memory_plan = plan;
    auto x0 = rnd({64}, 1);
    auto g = graph_of(fn, o, {x0});
    for (uint32_t seed = 2; seed < 4; ++seed) {
      auto x = rnd({64}, seed);
      v.assign(em::zeros({64}));
      auto out = g.run({x});
      INFO("memory_plan = " << plan);
      CHECK(em::equal(v.value(), x * 2.f));
      CHECK(em::equal(out[0], em::sqrt(em::exp(x)).sum()));
    }
  }
}
