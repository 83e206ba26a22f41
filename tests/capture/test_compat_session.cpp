// compat::v1 sessions, after TF1's session_test.py: fetch structures, feeds,
// pruning, errors naming the node, close, concurrent runs, two sessions on
// one graph, callables, the Saver, run metadata, placement, and the bridge to
// capture graphs.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include <ember/compat/v1.h>
#include <ember/ember.h>

#include "support/stderr.h"

namespace em = ember;
namespace tf = ember::compat::v1;
using em::Tensor;

namespace {

std::vector<float> vec(const Tensor& t) { return t.to_vector<float>(); }

std::string temp_path(const char* stem) {
  return fmt::format("/tmp/ember_compat_{}_{}", stem, static_cast<long>(getpid()));
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("run of the a + b constant example", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::constant(5), b = tf::constant(3);
  auto c = tf::add(a, b);
  tf::Session sess(g);
  Tensor r = sess.run(c);
  CHECK(r.dtype() == em::int32);
  CHECK(r.item<int32_t>() == 8);
  // Each run returns a fresh tensor: changing it changes nothing in the session.
  r.fill_(0);
  CHECK(sess.run(c).item<int32_t>() == 8);
  CHECK(sess.run(a).item<int32_t>() == 5);
}

TEST_CASE("fetch structures: lists, duplicates, operations", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::constant(2.f, "a");
  auto b = tf::multiply(a, 3.f, "b");
  auto op = tf::no_op();
  tf::Session sess(g);
  auto r = sess.run({a, b, a, op, b});
  REQUIRE(r.size() == 5);
  CHECK(r[0].item<float>() == 2.f);
  CHECK(r[1].item<float>() == 6.f);
  CHECK(r[2].item<float>() == 2.f);
  CHECK_FALSE(r[3].defined());
  CHECK(r[4].item<float>() == 6.f);
  sess.run(op);  // an operation returns nothing
  CHECK(sess.run(std::vector<tf::Fetch>{}).empty());
  // By name.
  CHECK(sess.run(g.get_tensor_by_name("b:0")).item<float>() == 6.f);
}

TEST_CASE("feeds: placeholders, any tensor, intermediates cut off their producers", "[compat][session]") {
  const Tensor batch = em::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).reshape({2, 3});
  const Tensor three = em::tensor({10.f, 20.f, 30.f});
  tf::Graph g;
  auto scope = g.as_default();
  auto x = tf::placeholder(em::float32, {-1, 3}, "x");
  auto y = tf::multiply(x, 2.f, "y");
  auto z = tf::reduce_sum(y, {1}, false, "z");
  auto k = tf::constant(7.f, "k");
  auto kk = tf::add(k, 1.f, "kk");
  tf::Session sess(g);
  CHECK(vec(sess.run(z, {{x, batch}})) == std::vector<float>{12.f, 30.f});
  // Feeding y: x is not needed any more.
  CHECK(vec(sess.run(z, {{y, batch}})) == std::vector<float>{6.f, 15.f});
  // Feeding a constant.
  CHECK(sess.run(kk, {{k, em::scalar_tensor(1.f)}}).item<float>() == 2.f);
  CHECK(sess.run(kk).item<float>() == 8.f);
  // A fetched feed is the fed value.
  CHECK(vec(sess.run(x, {{x, batch}})) == vec(batch));
  // Unknown dims take any size, run after run.
  CHECK(vec(sess.run(z, {{x, three.reshape({1, 3})}})) == std::vector<float>{120.f});
  CHECK(sess.run(y, {{x, em::zeros({5, 3})}}).shape() == em::Shape{5, 3});
  // A reshape with -1 over an unknown batch is resolved per run.
  auto flat = tf::reshape(y, {-1}, "flat");
  auto pairs = tf::reshape(x, {-1, 1, 3}, "pairs");
  CHECK(sess.run(flat, {{x, batch}}).shape() == em::Shape{6});
  CHECK(sess.run(pairs, {{x, em::zeros({4, 3})}}).shape() == em::Shape{4, 1, 3});
  // A feed that no fetch needs is accepted (as in TF1), and still checked.
  CHECK(sess.run(kk, {{x, batch}}).item<float>() == 8.f);
  CHECK(vec(sess.run(std::vector<tf::Fetch>{kk, z}, {{x, batch}, {k, em::scalar_tensor(2.f)}})[1]) ==
        std::vector<float>{12.f, 30.f});
  CHECK(sess.run(std::vector<tf::Fetch>{kk}, {{x, batch}, {k, em::scalar_tensor(2.f)}})[0].item<float>() == 3.f);
  CHECK_THROWS_WITH(sess.run(kk, {{x, em::zeros({2, 4})}}),
                    Catch::Contains("cannot feed a value of shape [2,4] for \"x:0\""));
}

TEST_CASE("only the subgraph the fetches need runs", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto unfed = tf::placeholder(em::float32, {2}, "unfed");
  tf::Variable never(em::tensor({1.f}), "never_initialized");
  Tensor pinned;
  {
    auto d = tf::device("/gpu:0");
    pinned = tf::add(unfed, never, "pinned");
  }
  auto a = tf::constant(1.f, "a");
  auto b = tf::add(a, 1.f, "b");
  tf::Session sess(g);
  CHECK(sess.run(b).item<float>() == 2.f);
  (void)pinned;
}

TEST_CASE("a fetch list sharing a subexpression computes it once", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto r = tf::random_normal({64}, 0.0, 1.0, "r");
  auto p = tf::add(r, 0.f, "p");
  auto q = tf::multiply(r, 1.f, "q");
  tf::Session sess(g);
  for (int i = 0; i < 3; ++i) {
    auto out = sess.run({p, q, r});
    CHECK(em::equal(out[0], out[1]));
    CHECK(em::equal(out[0], out[2]));
  }
  // Two runs draw new numbers (the random op runs each time).
  CHECK_FALSE(em::equal(sess.run(r), sess.run(r)));
  tf::RunMetadata md;
  sess.run({p, q}, {}, tf::RunOptions{true}, &md);
  int r_count = 0;
  for (const auto& s : md.step_stats) r_count += s.name == "r";
  CHECK(r_count == 1);
}

TEST_CASE("session errors name the node", "[compat][session][errors]") {
  tf::Graph g, other;
  Tensor foreign;
  {
    auto s = other.as_default();
    foreign = tf::constant(1.f, "foreign");
  }
  auto scope = g.as_default();
  auto x = tf::placeholder(em::float32, {-1, 3}, "x");
  auto i = tf::placeholder(em::int32, {2}, "i");
  auto flag = tf::placeholder(em::bool_, {1}, "flag");
  auto y = tf::reduce_sum(x, {}, false, "y");
  auto j = tf::add(i, 1, "j");
  auto f = tf::identity(flag, "f");
  tf::Variable w(em::ones({3}), "w");
  auto wx = tf::multiply(x, w, "wx");
  tf::Session sess(g);
  CHECK_THROWS_AS(sess.run(y), em::ValueError);
  CHECK_THROWS_WITH(sess.run(y), "Session::run: placeholder \"x\" (float32 [-1,3]) was not fed");
  CHECK_THROWS_AS(sess.run(y, {{x, em::zeros({2, 4})}}), em::ShapeError);
  CHECK_THROWS_WITH(sess.run(y, {{x, em::zeros({2, 4})}}),
                    "Session::run: cannot feed a value of shape [2,4] for \"x:0\" (float32 [-1,3])");
  CHECK_THROWS_WITH(sess.run(y, {{x, em::zeros({3})}}),
                    "Session::run: cannot feed a value of shape [3] for \"x:0\" (float32 [-1,3])");
  CHECK_THROWS_AS(sess.run(f, {{flag, em::zeros({1})}}), em::DTypeError);
  CHECK_THROWS_WITH(sess.run(f, {{flag, em::zeros({1})}}),
                    "Session::run: feed for \"flag:0\" (bool [1]): a float32 value cannot be fed for a bool tensor");
  // Lossy feeds are errors; lossless ones are converted.
  CHECK_THROWS_AS(sess.run(j, {{i, em::tensor({1.7f, 2.f})}}), em::DTypeError);
  CHECK_THROWS_WITH(sess.run(j, {{i, em::tensor({1.7, 2.0})}}),
                    "Session::run: feed for \"i:0\" (int32 [2]): the float64 value 1.7 (at flat index 0) cannot be "
                    "represented exactly as int32");
  CHECK_THROWS_WITH(sess.run(j, {{i, em::tensor<int64_t>({1, int64_t(1) << 40})}}),
                    "Session::run: feed for \"i:0\" (int32 [2]): the int64 value 1099511627776 (at flat index 1) "
                    "cannot be represented exactly as int32");
  CHECK(sess.run(j, {{i, em::tensor<int64_t>({1, 2})}}).to_vector<int32_t>() == std::vector<int32_t>{2, 3});
  CHECK(sess.run(j, {{i, em::tensor({4.f, -2.f})}}).to_vector<int32_t>() == std::vector<int32_t>{5, -1});
  CHECK_THROWS_WITH(sess.run(y, {{x, em::tensor({0.1, 0.2, 0.3}).reshape({1, 3})}}),
                    Catch::Contains("the float64 value 0.1 (at flat index 0) cannot be represented exactly as float32"));
  CHECK(sess.run(y, {{x, em::tensor({0.5, 0.25, 1.0}).reshape({1, 3})}}).item<float>() == 1.75f);
  // Uninitialized variable.
  CHECK_THROWS_WITH(sess.run(wx, {{x, em::ones({1, 3})}}),
                    "Session::run: variable \"w\" is not initialized (read by node \"w\"); run its initializer first");
  // Fetches and feeds from elsewhere.
  CHECK_THROWS_WITH(sess.run(foreign), Catch::Contains("Session::run: fetch graph tensor \"foreign:0\" (float32 []) "
                                                       "is from another graph than the session's"));
  CHECK_THROWS_WITH(sess.run(em::ones({1})),
                    "Session::run: a fetch is an eager tensor, not a tensor of the session's graph");
  CHECK_THROWS_WITH(sess.run(y, {{foreign, em::ones({1})}}), Catch::Contains("feed key graph tensor \"foreign:0\""));
  CHECK_THROWS_WITH(sess.run(y, {{x, em::ones({1, 3})}, {x, em::ones({1, 3})}}),
                    "Session::run: \"x:0\" is fed twice");
  // Shapes that only meet at run time.
  auto x2 = tf::placeholder(em::float32, {-1}, "x2");
  auto s2 = tf::add(x2, tf::placeholder(em::float32, {-1}, "x3"), "s2");
  CHECK_THROWS_AS(sess.run(s2, {{x2, em::ones({2})}, {g.get_tensor_by_name("x3:0"), em::ones({3})}}),
                  em::ShapeError);
  CHECK_THROWS_WITH(sess.run(s2, {{x2, em::ones({2})}, {g.get_tensor_by_name("x3:0"), em::ones({3})}}),
                    Catch::StartsWith("Session::run: node \"s2\": add: shapes [2] and [3] cannot be broadcast"));
  // After close.
  sess.close();
  CHECK_THROWS_WITH(sess.run(y, {{x, em::ones({1, 3})}}), "Session::run: the session is closed");
  CHECK_THROWS_WITH(sess.make_callable({y}, {x}), "Session::make_callable: the session is closed");
}

TEST_CASE("variables: initializers, assign ops, values live in the session", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable v(em::tensor({1.f, 2.f}), "v");
  tf::Variable n(em::tensor<int64_t>({0}), "counter");
  auto set = v.assign(em::tensor({10.f, 20.f}));
  auto inc = v.assign_add(tf::constant(1.f));
  auto dec = v.assign_sub(em::tensor({0.5f, 0.5f}));
  auto bump = n.assign_add(tf::constant(int64_t{1}));
  auto init = tf::global_variables_initializer();
  tf::Session s1(g), s2(g);
  CHECK(tf::report_uninitialized_variables(s1) == std::vector<std::string>{"v", "counter"});
  s1.run(init);
  CHECK(tf::report_uninitialized_variables(s1).empty());
  CHECK(tf::report_uninitialized_variables(s2).size() == 2);
  Tensor before = s1.run(v);
  CHECK(vec(s1.run(inc)) == std::vector<float>{2.f, 3.f});
  CHECK(vec(before) == std::vector<float>{1.f, 2.f});  // a fetched value is a copy
  CHECK(vec(s1.run(v)) == std::vector<float>{2.f, 3.f});
  CHECK(vec(s1.run(dec)) == std::vector<float>{1.5f, 2.5f});
  s1.run(tf::op_of(set));  // run for the effect only
  CHECK(vec(s1.run(v)) == std::vector<float>{10.f, 20.f});
  for (int i = 0; i < 3; ++i) s1.run(bump);
  CHECK(s1.run(n).item<int64_t>() == 3);
  tf::RunMetadata md;  // a traced run applies assignments too
  CHECK(s1.run({bump}, {}, tf::RunOptions{true}, &md)[0].item<int64_t>() == 4);
  CHECK(s1.run(n).item<int64_t>() == 4);
  CHECK_FALSE(md.step_stats.empty());
  // The second session has its own values.
  s2.run(v.initializer());
  CHECK(vec(s2.run(v)) == std::vector<float>{1.f, 2.f});
  CHECK(vec(s1.run(v)) == std::vector<float>{10.f, 20.f});
  CHECK(tf::report_uninitialized_variables(s2, {n, v}) == std::vector<std::string>{"counter"});
  // A variable can be fed like any tensor.
  CHECK(vec(s2.run(tf::add(v, 0.f), {{v.value(), em::tensor({5.f, 5.f})}})) == std::vector<float>{5.f, 5.f});
}

TEST_CASE("control dependencies run first", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable c(em::tensor({0.f}), "c");
  auto inc = c.assign_add(tf::constant(1.f));
  Tensor out;
  {
    auto deps = tf::control_dependencies({tf::op_of(inc)});
    out = tf::constant(42.f, "out");
  }
  auto grouped = tf::group({inc, tf::no_op()});
  Tensor seen, seen_via_group, doubled;
  {
    auto deps = tf::control_dependencies({tf::op_of(inc)});
    seen = tf::identity(c, "seen");  // reads c after the increment, as in TF1
  }
  {
    auto deps = tf::control_dependencies({grouped});
    seen_via_group = tf::identity(c);
    doubled = tf::multiply(c, 2.f);
  }
  tf::Session sess(g);
  sess.run(c.initializer());
  CHECK(sess.run(out).item<float>() == 42.f);
  CHECK(sess.run(c).item<float>() == 1.f);
  sess.run(grouped);
  CHECK(sess.run(c).item<float>() == 2.f);
  CHECK(sess.run(seen).item<float>() == 3.f);
  CHECK(sess.run(c).item<float>() == 3.f);
  auto both = sess.run({seen_via_group, doubled});
  CHECK(both[0].item<float>() == 4.f);
  CHECK(both[1].item<float>() == 8.f);
  CHECK(sess.run(c).item<float>() == 4.f);
}

TEST_CASE("reads and updates of a variable within one run follow the graph's order", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable v(em::tensor({1.f}), "v");
  const Tensor one = tf::constant(1.f);
  // Chained updates: the second runs after the first and builds on it.
  auto a1 = v.assign_add(one, "a1");
  Tensor a2;
  {
    auto deps = tf::control_dependencies({a1});
    a2 = v.assign_add(one, "a2");
  }
  // Two updates in one group both count, as two minimize ops on one variable do.
  auto both = tf::group({v.assign_add(one), v.assign_sub(tf::constant(3.f))});
  tf::Variable w(em::tensor({1.f}), "w");
  auto loss = tf::reduce_sum(tf::multiply(w, 2.f));  // d loss / dw = 2
  auto steps = tf::group({tf::train::GradientDescentOptimizer(0.1).minimize(loss),
                          tf::train::GradientDescentOptimizer(0.1, "GD2").minimize(loss)});
  // A read after an assign, through a data edge and through a node that only
  // has the assign as a control input, sees the new value.
  auto set = v.assign(tf::constant(10.f), "set");
  Tensor via_data, via_chain, unordered = tf::multiply(v, 1.f, "unordered");
  {
    auto deps = tf::control_dependencies({tf::add(set, 0.f)});
    via_data = tf::multiply(v, 2.f, "via_data");
  }
  Tensor mid;
  {
    auto deps = tf::control_dependencies({set});
    mid = tf::add(tf::constant(0.f), 0.f, "mid");
  }
  {
    auto deps = tf::control_dependencies({mid});
    via_chain = tf::multiply(v, 3.f, "via_chain");
  }
  tf::Session sess(g);
  sess.run(tf::global_variables_initializer());
  CHECK(sess.run(a2).item<float>() == 3.f);
  CHECK(sess.run(v).item<float>() == 3.f);
  sess.run(both);
  CHECK(sess.run(v).item<float>() == 1.f);
  sess.run(steps);
  CHECK(sess.run(w).item<float>() == Approx(0.6f));
  CHECK(sess.run(via_data).item<float>() == 20.f);
  sess.run(v.initializer());
  CHECK(sess.run(via_chain).item<float>() == 30.f);
  sess.run(v.initializer());
  // A read the assign is not ordered with sees the value the run started with.
  auto r = sess.run({unordered, set});
  CHECK(r[0].item<float>() == 1.f);
  CHECK(r[1].item<float>() == 10.f);
  // An update of a variable first assigned in the same run needs no initialized value.
  tf::Variable fresh(em::tensor({0.f}), "fresh");
  Tensor bumped;
  {
    auto set5 = fresh.assign(tf::constant(5.f));
    auto deps = tf::control_dependencies({set5});
    bumped = fresh.assign_add(one);
  }
  CHECK(sess.run(bumped).item<float>() == 6.f);
  // An assign reading its own variable reads it before it writes.
  tf::Variable own(em::tensor({1.f, 2.f}), "own");
  auto doubled_own = own.assign_add(own);
  auto reset = own.assign(tf::constant(std::vector<float>{3.f, 3.f}, {2}));
  Tensor after_reset;
  {
    auto deps = tf::control_dependencies({reset});
    after_reset = own.assign_add(own);  // 3 + 3: both the chain and the read see the reset
  }
  sess.run(own.initializer());
  CHECK(sess.run(doubled_own).to_vector<float>() == std::vector<float>{2.f, 4.f});
  CHECK(sess.run(after_reset).to_vector<float>() == std::vector<float>{6.f, 6.f});
  // C++ numbers assign in the variable's dtype.
  tf::Variable count(em::tensor(std::vector<int64_t>{0}), "count");
  tf::Variable precise(em::tensor(std::vector<double>{0.0}), "precise");
  auto set_ten = v.assign(10.f);
  auto plus_two = count.assign_add(2);
  auto tenth = precise.assign(0.1);
  CHECK(sess.run(set_ten).item<float>() == 10.f);
  sess.run(tf::variables_initializer({count, precise}));
  CHECK(sess.run(plus_two).item<int64_t>() == 2);
  CHECK(sess.run(tenth).item<double>() == 0.1);  // not rounded through float32
  CHECK_THROWS_WITH(count.assign(1.7), "assign: 1.7 is not a whole number and cannot be stored in variable "
                                       "\"count\" of dtype int64");
  CHECK(sess.run(count.assign_sub(4.0)).item<int64_t>() == -2);
  tf::Variable small(em::tensor({1}), "small");  // int32
  tf::Variable bytes(em::tensor(std::vector<uint8_t>{1}), "bytes");
  CHECK_THROWS_WITH(small.assign(3e9), "assign: 3000000000 is out of the range of variable \"small\" of dtype int32");
  CHECK_THROWS_WITH(small.assign_add(int64_t{1} << 40),
                    "assign_add: 1099511627776 is out of the range of variable \"small\" of dtype int32");
  CHECK_THROWS_WITH(bytes.assign(-1), "assign: -1 is out of the range of variable \"bytes\" of dtype uint8");
  CHECK_THROWS_WITH(count.assign(1e19), "assign: 1e+19 is out of the range of variable \"count\" of dtype int64");
  CHECK(sess.run(small.assign(-2147483648.0)).item<int32_t>() == std::numeric_limits<int32_t>::min());
  // An initial value read from another variable: one initializer run sets both.
  tf::Variable base(em::tensor({1.f, 2.f}), "base");
  tf::Variable twice(tf::multiply(base, 2.f), "twice");
  tf::Session fresh_sess(g);
  fresh_sess.run(tf::variables_initializer({base, twice}));
  CHECK(fresh_sess.run(twice).to_vector<float>() == std::vector<float>{2.f, 4.f});
  fresh_sess.run(base.assign(tf::constant(std::vector<float>{5.f, 5.f}, {2})));
  fresh_sess.run(twice.initializer());  // alone: reads base's value now
  CHECK(fresh_sess.run(twice).to_vector<float>() == std::vector<float>{10.f, 10.f});
  tf::Session third(g);
  CHECK_THROWS_WITH(third.run(twice.initializer()),
                    "Session::run: variable \"base\" is not initialized (read by node \"base\"); run its "
                    "initializer first");
}

TEST_CASE("placeholder_with_default", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto d = tf::placeholder_with_default(tf::constant(std::vector<float>{1.f, 2.f}, {2}), {-1}, "d");
  auto y = tf::multiply(d, 2.f);
  tf::Session sess(g);
  CHECK(vec(sess.run(y)) == std::vector<float>{2.f, 4.f});
  CHECK(vec(sess.run(y, {{d, em::tensor({1.f, 1.f, 1.f})}})) == std::vector<float>{2.f, 2.f, 2.f});
  CHECK_THROWS_WITH(sess.run(y, {{d, em::ones({1, 1})}}),
                    "Session::run: cannot feed a value of shape [1,1] for \"d:0\" (float32 [-1])");
  CHECK_THROWS_WITH(tf::placeholder_with_default(tf::constant(1.f), {2}),
                    "placeholder_with_default: the default has shape [], which does not fit [2]");
}

TEST_CASE("nodes added after a run are usable in the next run", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::constant(1.f, "a");
  tf::Session sess(g);
  CHECK(sess.run(a).item<float>() == 1.f);
  auto b = tf::add(a, 1.f, "b");
  tf::Variable late(em::tensor({3.f}), "late");
  CHECK(sess.run(b).item<float>() == 2.f);
  sess.run(late.initializer());
  CHECK(sess.run(tf::add(late, b)).item<float>() == 5.f);
  g.finalize();
  CHECK(sess.run(b).item<float>() == 2.f);  // a finalized graph still runs
}

TEST_CASE("run is safe from several threads", "[compat][session][threads]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto x = tf::placeholder(em::float32, {-1, 4}, "x");
  tf::Variable w(em::ones({4, 2}), "w");
  auto y = tf::nn::relu(tf::matmul(x, w));
  auto s = tf::reduce_sum(y);
  tf::Session sess(g);
  sess.run(tf::global_variables_initializer());
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const int64_t rows = 1 + (t + i) % 3;
        Tensor in = em::full({rows, 4}, static_cast<float>(t + 1));
        auto out = sess.run({y, s}, {{x, in}});
        bad += out[0].shape() != em::Shape{rows, 2};
        bad += out[1].item<float>() != static_cast<float>(8 * rows * (t + 1));
      }
    });
  for (auto& th : ts) th.join();
  CHECK(bad == 0);
}

TEST_CASE("closing or destroying a session frees what it held", "[compat][session][memory]") {
  const Tensor batch = em::ones({64, 32});
  tf::Graph g;
  auto scope = g.as_default();
  auto x = tf::placeholder(em::float32, {-1, 32}, "x");
  tf::Variable w(em::ones({32, 32}), "w");
  auto y = tf::reduce_sum(tf::nn::relu(tf::matmul(tf::nn::tanh(tf::matmul(x, w)), w)), {1});
  const auto before = em::memory_stats().current;
  {
    tf::Session sess(g);
    sess.run(tf::global_variables_initializer());
    auto call = sess.make_callable({y}, {x});
    for (int i = 0; i < 3; ++i) {
      CHECK(sess.run(y, {{x, batch}}).shape() == em::Shape{64});
      CHECK(call({batch})[0].shape() == em::Shape{64});
    }
    CHECK(em::memory_stats().current > before);
  }
  CHECK(em::memory_stats().current == before);
  tf::Session sess(g);
  sess.run(w.initializer());
  (void)sess.run(y, {{x, batch}});
  sess.close();
  CHECK(em::memory_stats().current == before);
}

TEST_CASE("make_callable builds the plan once and runs like run()", "[compat][session]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto x = tf::placeholder(em::float32, {-1, 2}, "x");
  auto k = tf::placeholder(em::float32, {}, "k");
  auto y = tf::multiply(x, k, "y");
  auto op = tf::no_op();
  tf::Session sess(g);
  auto f = sess.make_callable({y, op, y}, {x, k});
  const Tensor in = em::tensor({1.f, 2.f, 3.f, 4.f}).reshape({2, 2});
  auto r = f({in, em::scalar_tensor(2.f)});
  REQUIRE(r.size() == 3);
  CHECK(vec(r[0]) == std::vector<float>{2.f, 4.f, 6.f, 8.f});
  CHECK_FALSE(r[1].defined());
  CHECK(em::equal(r[0], sess.run(y, {{x, in}, {k, em::scalar_tensor(2.f)}})));
  CHECK(f({em::ones({3, 2}), em::scalar_tensor(1.f)})[0].shape() == em::Shape{3, 2});  // another batch size
  CHECK_THROWS_WITH(f({in}), "Callable: expects 2 feed values, got 1");
  CHECK_THROWS_WITH(f({em::ones({3, 3}), em::scalar_tensor(1.f)}),
                    "Session::run: cannot feed a value of shape [3,3] for \"x:0\" (float32 [-1,2])");
  CHECK_THROWS_WITH(f({in, em::tensor({0.1})}), Catch::Contains("cannot feed a value of shape [1]"));
  sess.close();
  CHECK_THROWS_WITH(f({in, em::scalar_tensor(2.f)}), "Callable: the session is closed");
}

TEST_CASE("Saver saves and restores into a new session", "[compat][session][saver]") {
  // A directory of its own: a save also writes the state file "checkpoint" beside the file.
  const std::filesystem::path dir = temp_path("saver");
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "ckpt").string();
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable w(em::tensor({1.f, 2.f, 3.f}), "w");
  tf::Variable step(em::tensor<int64_t>({0}), "global step");
  auto upd = w.assign(tf::multiply(w, 10.f));
  auto inc = step.assign_add(tf::constant(int64_t{5}));
  tf::train::Saver saver;
  {
    tf::Session sess(g);
    CHECK_THROWS_WITH(saver.save(sess, path), "Saver::save: variable \"w\" is not initialized in this session");
    sess.run(tf::global_variables_initializer());
    sess.run({upd, inc});
    CHECK(saver.save(sess, path) == path);
  }
  const std::string text = read_file(path);
  CHECK(text.rfind("ember-checkpoint 1\nvariables 2\nvariable w float32 1 3 0 12\nvariable global%20step int64 1 1 "
                   "12 8\ndata 20\n", 0) == 0);
  {
    tf::Session sess(g);
    saver.restore(sess, path);
    CHECK(tf::report_uninitialized_variables(sess).empty());
    CHECK(vec(sess.run(w)) == std::vector<float>{10.f, 20.f, 30.f});
    CHECK(sess.run(step).item<int64_t>() == 5);
  }
  // Another graph: a missing and a mismatched variable are named.
  {
    tf::Graph g2;
    auto s2 = g2.as_default();
    tf::Variable w2(em::tensor({1.f, 2.f}), "w");
    tf::Variable other(em::tensor({1.f}), "other");
    tf::Session sess(g2);
    CHECK_THROWS_WITH(tf::train::Saver({other}).restore(sess, path),
                      "Saver::restore: variable \"other\" is not in checkpoint " + path);
    CHECK_THROWS_WITH(tf::train::Saver({w2}).restore(sess, path),
                      "Saver::restore: variable \"w\" is float32 [2] in the graph but float32 [3] in checkpoint " +
                          path);
    CHECK(tf::report_uninitialized_variables(sess).size() == 2);
  }
  // Corrupt files.
  {
    tf::Session sess(g);
    std::ofstream(path, std::ios::binary) << text.substr(0, text.size() - 1);
    CHECK_THROWS_WITH(saver.restore(sess, path),
                      "Saver::restore: " + path + ": the data section has 19 bytes, the header says 20");
    std::ofstream(path, std::ios::binary) << "ember-checkpoint 2\n";
    CHECK_THROWS_WITH(saver.restore(sess, path), Catch::Contains("version 2 is not supported"));
    std::ofstream(path, std::ios::binary) << "hello";
    CHECK_THROWS_WITH(saver.restore(sess, path), Catch::Contains("truncated header"));
    CHECK_THROWS_WITH(saver.restore(sess, path + ".missing"), Catch::Contains("cannot open the file"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("placement per pruned subgraph; soft placement; session device", "[compat][session][device]") {
  if (em::cuda_available()) return;  // these check the behaviour without a GPU
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::constant(1.f, "a");
  Tensor on_gpu;
  {
    auto d = tf::device("/gpu:0");
    on_gpu = tf::add(a, 1.f, "on_gpu");
  }
  auto on_cpu = tf::add(a, 2.f, "on_cpu");
  Tensor far;
  {
    auto d = tf::device("/gpu:99999999999");  // too big for an int: still just a missing GPU
    far = tf::add(a, 3.f, "far");
  }
  tf::Session sess(g);
  CHECK(sess.run(on_cpu).item<float>() == 3.f);
  CHECK_THROWS_WITH(sess.run(far), "Session::run: node \"far\" is placed on /gpu:99999999999 but no GPU is "
                                   "available; set SessionOptions::allow_soft_placement to run it on the CPU");
  CHECK_THROWS_AS(sess.run(on_gpu), em::DeviceError);
  CHECK_THROWS_WITH(sess.run(on_gpu), "Session::run: node \"on_gpu\" is placed on /gpu:0 but no GPU is available; "
                                      "set SessionOptions::allow_soft_placement to run it on the CPU");
  tf::SessionOptions soft;
  soft.allow_soft_placement = true;
  tf::Session s2(g, soft);
  CHECK(s2.run(on_gpu).item<float>() == 2.f);
  CHECK(s2.run(far).item<float>() == 4.f);
  tf::SessionOptions gpu;
  gpu.device = "/gpu:0";
  tf::Session s3(g, gpu);
  CHECK_THROWS_WITH(s3.run(on_cpu), Catch::Contains("node \"on_cpu\" is placed on /gpu:0 but no GPU is available"));
  gpu.allow_soft_placement = true;
  tf::Session s4(g, gpu);
  CHECK(s4.run(on_cpu).item<float>() == 3.f);
  tf::SessionOptions bad;
  bad.device = "/tpu:0";
  CHECK_THROWS_WITH(tf::Session(g, bad), "Session: \"/tpu:0\" is not a device name (use \"/cpu:0\" or \"/gpu:N\")");
  // Any GPU index and TF's full names are devices, as in tf::device.
  tf::SessionOptions second;
  second.device = "/job:localhost/replica:0/task:0/device:GPU:1";
  tf::Session s5(g, second);
  CHECK_THROWS_WITH(s5.run(on_cpu), Catch::Contains("node \"on_cpu\" is placed on /gpu:1 but no GPU is available"));
}

TEST_CASE("session options: threads and device placement log", "[compat][session]") {
  const int threads = em::get_num_threads();
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::add(tf::constant(1.f, "a"), 1.f, "b");
  tf::SessionOptions o;
  o.intra_op_parallelism_threads = 1;
  o.log_device_placement = true;
  tf::Session sess(g, o);
  CHECK(em::get_num_threads() == 1);
  const std::string log = em::test::capture_stderr([&] { (void)sess.run(a); });
  CHECK_THAT(log, Catch::Contains("a: /cpu:0\n") && Catch::Contains("b: /cpu:0\n"));
  em::set_num_threads(threads);
  o.intra_op_parallelism_threads = -1;
  CHECK_THROWS_WITH(tf::Session(g, o), "Session: intra_op_parallelism_threads must be >= 0 (got -1)");
}

TEST_CASE("run metadata: per-node times and shapes, Chrome trace", "[compat][session][metadata]") {
  const Tensor batch = em::ones({8, 3});
  tf::Graph g;
  auto scope = g.as_default();
  auto x = tf::placeholder(em::float32, {-1, 3}, "x");
  tf::Variable w(em::ones({3, 2}), "w");
  auto y = tf::nn::relu(tf::matmul(x, w, false, false, "mm"), "act");
  tf::Session sess(g);
  sess.run(w.initializer());
  tf::RunMetadata md;
  auto plain = sess.run({y}, {{x, batch}});
  auto traced = sess.run({y}, {{x, batch}}, tf::RunOptions{true}, &md);
  CHECK(em::equal(plain[0], traced[0]));
  bool saw_mm = false, saw_act = false;
  for (const auto& s : md.step_stats) {
    CHECK(s.wall_us >= 0);
    CHECK(s.device == "/cpu:0");
    if (s.name == "mm") {
      saw_mm = true;
      CHECK(s.op == "matmul");
      CHECK(s.shape == em::Shape{8, 2});
    }
    if (s.name == "act") saw_act = s.op == "relu";
  }
  CHECK(saw_mm);
  CHECK(saw_act);
  const std::string json = md.chrome_trace();
  CHECK(json.rfind("{\"traceEvents\":[", 0) == 0);
  CHECK_THAT(json, Catch::Contains("\"name\":\"mm\",\"cat\":\"matmul\",\"ph\":\"X\""));
  CHECK_THAT(json, Catch::Contains("\"shape\":\"[8,2]\""));
  const std::string path = temp_path("trace.json");
  md.write_chrome_trace(path);
  CHECK(read_file(path) == json);
  std::remove(path.c_str());
  // Without trace, metadata stays empty.
  tf::RunMetadata none;
  sess.run({y}, {{x, batch}}, tf::RunOptions{}, &none);
  CHECK(none.step_stats.empty());
}

TEST_CASE("bridge: a traced graph runs in a session; a session plan saves as a capture graph", "[compat][bridge]") {
  namespace cap = ember::capture;
  em::Variable scale(em::tensor({2.f, 3.f}), "scale");
  const Tensor ex = em::tensor({1.f, 1.f});
  cap::Graph traced = cap::trace([&](const Tensor& x) { return em::relu(x * scale.value()) + 1.f; }, ex);
  tf::Graph g = tf::Graph::from_capture(traced);
  REQUIRE(g.inputs().size() == 1);
  REQUIRE(g.outputs().size() == 1);
  CHECK(tf::tensor_name(g.inputs()[0]) == "arg0:0");
  tf::Session sess(g);
  const Tensor in = em::tensor({-1.f, 4.f});
  CHECK(em::equal(sess.run(g.outputs()[0], {{g.inputs()[0], in}}), traced.run({in})[0]));
  scale.assign(em::tensor({1.f, 1.f}));  // read by reference, as the traced graph does
  CHECK(vec(sess.run(g.outputs()[0], {{g.inputs()[0], in}})) == std::vector<float>{1.f, 5.f});

  // The other way: a shim graph's plan as a capture graph, saved and loaded.
  const std::string path = temp_path("graph");
  tf::Graph h;
  tf::Session* hs = nullptr;
  Tensor x, y;
  {
    auto scope = h.as_default();
    x = tf::placeholder(em::float32, {-1, 2}, "x");
    tf::Variable w(em::tensor({1.f, 2.f, 3.f, 4.f}).reshape({2, 2}), "w");
    y = tf::nn::relu(tf::matmul(x, w)) * 2.f;
    hs = new tf::Session(h);
    hs->run(tf::global_variables_initializer());
  }
  const Tensor batch = em::tensor({1.f, -1.f, 2.f, 0.f}).reshape({2, 2});
  cap::Graph cg = hs->to_capture({y}, {{x, batch}});
  CHECK(em::equal(cg.run({batch})[0], hs->run(y, {{x, batch}})));
  cg.save(path);
  cap::Graph loaded = cap::Graph::load(path);
  CHECK(em::equal(loaded.run({batch})[0], hs->run(y, {{x, batch}})));
  CHECK(loaded.variables().size() == 1);
  delete hs;
  std::remove(path.c_str());
}

TEST_CASE("an MLP feed loop: session, callable and eager agree", "[compat][session]") {
  em::manual_seed(7);
  const Tensor w1v = em::randn({16, 32}), w2v = em::randn({32, 32}), w3v = em::randn({32, 4});
  std::vector<Tensor> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(em::randn({8, 16}));
  tf::Graph g;
  auto scope = g.as_default();
  auto x = tf::placeholder(em::float32, {-1, 16}, "x");
  tf::Variable w1(w1v, "w1"), w2(w2v, "w2"), w3(w3v, "w3");
  auto h1 = tf::nn::relu(tf::matmul(x, w1));
  auto h2 = tf::nn::relu(tf::matmul(h1, w2));
  auto probs = tf::nn::softmax(tf::matmul(h2, w3));
  tf::Session sess(g);
  sess.run(tf::global_variables_initializer());
  auto call = sess.make_callable({probs}, {x});
  for (const Tensor& b : batches) {
    Tensor eager;
    {
      // Eager code inside a scope needs the recorder off; outside it simply runs.
      std::thread t([&] { eager = em::softmax(em::matmul(em::relu(em::matmul(em::relu(em::matmul(b, w1v)), w2v)), w3v)); });
      t.join();
    }
    CHECK(em::allclose(sess.run(probs, {{x, b}}), eager, 1e-5, 1e-6));
    CHECK(em::allclose(call({b})[0], eager, 1e-5, 1e-6));
  }
}

TEST_CASE("a run-time error names the failing node, traced or not",
          "[compat][session][errors]") {
  tf::Graph g;
  Tensor ids, out;
  tf::Operation init;
  {
    auto scope = g.as_default();
    ids = tf::placeholder(em::int64, {-1}, "ids");
    tf::Variable v(tf::constant(std::vector<float>{1, 2, 3}, {3}), "v");
    auto upd = v.assign_add(tf::constant(std::vector<float>{1, 1, 1}, {3}));
    auto deps = tf::control_dependencies({upd});
    out = tf::gather(v.value(), ids, 0, "pick");  // reads v after the update
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  const std::string msg = "Session::run: node \"pick\": index_select: index 7 is out of range for dim 0 of size 3";
  CHECK_THROWS_WITH(sess.run(out, {{ids, em::tensor<int64_t>({7})}}), msg);
  tf::RunMetadata md;
  CHECK_THROWS_WITH(sess.run({out}, {{ids, em::tensor<int64_t>({0, 7})}}, tf::RunOptions{true}, &md), msg);
  // A good run after them works as before (what a failed run wrote is, as in TF1, not rolled back).
  const float before = vec(sess.run(g.get_tensor_by_name("v:0")))[2];
  CHECK(vec(sess.run(out, {{ids, em::tensor<int64_t>({2})}})) == std::vector<float>{before + 1});
}
