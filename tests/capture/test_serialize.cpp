// Graph::save / Graph::load: round trips (results, text form, variables) and
// corrupt, truncated or hostile files, each a ValueError naming the file and
// the problem (format: capture/serialize/format.md).
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <ember/capture.h>
#include <ember/ember.h>

#include "support/reference.h"

namespace em = ember;
namespace cap = ember::capture;
using em::Tensor;

namespace {

std::string tmp_path(const std::string& name) {
  return "/tmp/ember_capture_test_" + std::to_string(::getpid()) + "_" + name;
}

/// Removes the file when it goes out of scope.
struct TmpFile {
  std::string path;
  explicit TmpFile(const std::string& name) : path(tmp_path(name)) {}
  ~TmpFile() { std::remove(path.c_str()); }
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// `text` with the first occurrence of `from` replaced by `to` (REQUIREs that it occurs).
std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const std::size_t p = text.find(from);
  INFO("looking for: " << from);
  REQUIRE(p != std::string::npos);
  return text.replace(p, from.size(), to);
}

/// The graph used by most tests: inputs with a name that needs escaping, a
/// variable with an assignment, a constant, clamp attributes as exact floats,
/// a reduction and a fusible chain.
struct Sample {
  em::Variable w{em::tensor({1.f, 2.f, 3.f}), "w eights"};
  Tensor c = em::tensor({0.5f, 0.25f, 2.f});
  cap::Graph g;
  Sample() {
    auto f = cap::function(
        [this](Tensor x, Tensor y) {
          w.assign_add(x);
          Tensor s = em::tanh(x * y + c) + w.value();
          return std::make_tuple(s, em::clamp(s, 0.1, 0.7).sum());
        },
        {}, {"x in", "y"});
    f(em::tensor({1.f, 2.f, 3.f}), em::tensor({1.f, 1.f, 1.f}));
    g = f.graph_for(em::zeros({3}), em::zeros({3}));
  }
};

/// Expects loading `bytes` (written to a file) to raise ValueError whose message
/// names the file and contains `problem`.
void check_load_fails(const std::string& bytes, const std::string& problem) {
  TmpFile f("bad.emg");
  write_file(f.path, bytes);
  INFO("expected problem: " << problem);
  CHECK_THROWS_AS(cap::Graph::load(f.path), em::ValueError);
  CHECK_THROWS_WITH(cap::Graph::load(f.path),
                    Catch::StartsWith("Graph::load: " + f.path + ": ") && Catch::Contains(problem));
}

/// One corruption of a good file: its first `from` replaced by `to`, and the
/// problem the load error must name.
struct Edit {
  std::string from, to, problem;
};

/// check_load_fails for each edit of `good`, in order.
void check_edits_fail(const std::string& good, const std::vector<Edit>& edits) {
  for (const Edit& e : edits) check_load_fails(replace_once(good, e.from, e.to), e.problem);
}

}  // namespace

TEST_CASE("save/load round trip: results, text form and variables", "[capture][serialize]") {
  Sample s;
  TmpFile f("sample.emg");
  s.g.save(f.path);
  const std::string bytes = read_file(f.path);
  CHECK_THAT(bytes, Catch::StartsWith("ember-graph 1\ninputs 2\ninput 0 x%20in float32 1 3 cpu\n"));
  CHECK_THAT(bytes, Catch::Contains("\nvariable 0 w%20eights float32 1 3 cpu "));
  CHECK_THAT(bytes, Catch::Contains(" 0x1.999999999999ap-4 0x1.6666666666666p-1 "));  // 0.1, 0.7 exact

  // Mutate the original variable after saving: the file holds the value at save time.
  const Tensor saved_w = s.w.value().clone();
  s.w.assign(em::full({3}, 100.f));

  cap::Graph l = cap::Graph::load(f.path);
  CHECK(l.traced_str() == s.g.traced_str());
  CHECK(l.str() == s.g.str());
  CHECK(l.dot() == s.g.dot());
  CHECK(l.num_inputs() == 2);
  CHECK(l.num_nodes() == s.g.num_nodes());
  CHECK(l.count("fused") == s.g.count("fused"));
  REQUIRE(l.variables().size() == 1);
  em::Variable lw = l.variables()[0];
  CHECK(lw.name() == "w eights");
  CHECK(em::equal(lw.value(), saved_w));
  CHECK(!(lw == s.w));  // a loaded graph gets its own Variables

  for (uint32_t seed = 1; seed < 4; ++seed) {
    auto x = em::test::random_tensor({3}, em::float32, {}, seed);
    auto y = em::test::random_tensor({3}, em::float32, {}, seed + 10);
    const Tensor w0 = em::test::random_tensor({3}, em::float32, {}, seed + 20);
    s.w.assign(w0);
    lw.assign(w0);
    auto a = s.g.run({x, y});
    auto b = l.run({x, y});
    REQUIRE(a.size() == 2);
    REQUIRE(b.size() == 2);
    CHECK(em::equal(a[0], b[0]));
    CHECK(em::equal(a[1], b[1]));
    CHECK(em::equal(s.w.value(), lw.value()));  // both applied the assignment
    CHECK(em::equal(lw.value(), w0 + x));
  }
  // Running the loaded graph does not touch the original variable.
  s.w.assign(em::zeros({3}));
  l.run({em::ones({3}), em::ones({3})});
  CHECK(em::equal(s.w.value(), em::zeros({3})));

  // Save of a loaded graph writes the same file (given the same variable value).
  lw.assign(saved_w);
  TmpFile f2("sample2.emg");
  l.save(f2.path);
  CHECK(read_file(f2.path) == bytes);

  // Load with passes switched off: the same traced graph, no fusion.
  cap::Options nofuse;
  nofuse.fuse = false;
  cap::Graph l2 = cap::Graph::load(f.path, nofuse);
  CHECK(l2.count("fused") == 0);
  CHECK(l2.traced_str() == s.g.traced_str());
}

TEST_CASE("save/load round trip of many ops, guards and dtypes", "[capture][serialize]") {
  auto fn = [](Tensor x, Tensor idx, Tensor b) {
    Tensor m = em::softmax(em::matmul(x, x.t()), 0) + em::log_softmax(x, 1).sum({1}, true);
    Tensor v = x.permute({1, 0}).reshape({2, 6}).slice(1, 1, 5, 2).select(0, 1).unsqueeze(0).expand({3, 2});
    Tensor i = em::index_select(x, 1, idx);
    Tensor k = em::concat({i, x.to(em::float64).to(em::float32)}, 1);
    Tensor e = em::eye(3) + em::arange(3.f) + em::linspace(0, 1, 3) + em::full({3, 3}, 0.5f);
    Tensor r = em::where(b, m, -m) * e;
    Tensor q = em::clamp(r, std::nullopt, 0.5).max({0}) + em::argmin(x, 1).to(em::float32);
    Tensor u = (x.to(em::int32) + 3) * 2;
    Tensor h = em::var(x, {0}) + em::std(x, {1}, false, 0).sum() + em::prod(em::abs(x) + 1, {1}).mean();
    if ((x.sum() > 0).item<bool>()) h = h * 2.f;  // a guard (on the comparison's value)
    Tensor a = em::addmm(em::arange(4.f), x.t(), x, 0.5, -2);  // float attrs (beta, alpha)
    return std::vector<Tensor>{m, v, k, q, u, h, em::any(b), em::all(x > -10), a};
  };
  auto x = em::test::random_tensor({3, 4}, em::float32, em::test::Domain::positive(), 1);
  auto idx = em::tensor(std::vector<int64_t>{3, 0, -1});
  auto b = em::test::random_tensor({3, 3}, em::bool_, {}, 2);
  for (bool fold : {true, false}) {
    cap::Options o;
    o.const_fold = fold;
    auto g = cap::detail::trace_list([&](const std::vector<Tensor>& in) { return fn(in[0], in[1], in[2]); },
                                     {x, idx, b}, {}, o)
                 .first;
    CHECK(g.count("guard") == 1);
    TmpFile f("many.emg");
    g.save(f.path);
    cap::Graph l = cap::Graph::load(f.path, o);
    CHECK(l.traced_str() == g.traced_str());
    CHECK(l.str() == g.str());
    for (uint32_t seed = 3; seed < 6; ++seed) {
      auto x2 = em::test::random_tensor({3, 4}, em::float32, em::test::Domain::positive(), seed);
      auto b2 = em::test::random_tensor({3, 3}, em::bool_, {}, seed + 1);
      auto ra = g.run({x2, idx, b2});
      auto rb = l.run({x2, idx, b2});
      auto re = fn(x2, idx, b2);
      REQUIRE(ra.size() == re.size());
      REQUIRE(rb.size() == re.size());
      for (std::size_t k = 0; k < re.size(); ++k) {
        INFO("output " << k);
        CHECK(rb[k].dtype() == re[k].dtype());
        CHECK(em::equal(ra[k], rb[k]));
        EMBER_CHECK_CLOSE(rb[k], re[k]);
      }
    }
    // The guard survives the round trip.
    auto neg = -x;
    CHECK_THROWS_AS(l.run({neg, idx, b}), em::ValueError);
    CHECK_THROWS_WITH(l.run({neg, idx, b}), Catch::StartsWith("Graph::run: guard"));
  }
  // Promotion with C++ numbers survives the round trip (the 0-d constants are no longer "wrapped").
  auto fi = [](Tensor a, Tensor c) {
    return std::vector<Tensor>{a * 0.5, a + 300, c + 1, c * 2.5, a.to(em::uint8) + 300, em::where(c, a, 1.5)};
  };
  auto ai = em::tensor(std::vector<int32_t>{1, -2, 3});
  auto ci = em::tensor(std::vector<bool>{true, false, true});
  auto gi = cap::detail::trace_list([&](const std::vector<Tensor>& in) { return fi(in[0], in[1]); }, {ai, ci}, {},
                                    cap::Options{})
                .first;
  TmpFile fi_path("promo.emg");
  gi.save(fi_path.path);
  cap::Graph li;
  REQUIRE_NOTHROW(li = cap::Graph::load(fi_path.path));
  auto ro = li.run({ai, ci});
  auto re = fi(ai, ci);
  for (std::size_t k = 0; k < re.size(); ++k) {
    INFO("output " << k);
    CHECK(ro[k].dtype() == re[k].dtype());
    CHECK(em::equal(ro[k], re[k]));
  }
}

TEST_CASE("save/load round trip of float16 and bfloat16 graphs", "[capture][serialize][half]") {
  for (em::DType dt : {em::float16, em::bfloat16}) {
    INFO(em::dtype_name(dt));
    const Tensor k = em::tensor({0.1f, -3.f, 65504.f}).to(dt);  // a captured constant
    auto fn = [&](const std::vector<Tensor>& in) {
      Tensor y = em::exp(in[0] * 0.1) + k + em::full({3}, 1.0 / 3, dt);
      return std::vector<Tensor>{y, y.sum(), y.to(em::float32) * in[1]};
    };
    auto x = em::test::random_tensor({2, 3}, dt, {}, 7);
    auto f = em::test::random_tensor({2, 3}, em::float32, {}, 8);
    auto g = cap::detail::trace_list(fn, {x, f}, {}, cap::Options{}).first;
    TmpFile path("half.emg");
    g.save(path.path);
    cap::Graph l = cap::Graph::load(path.path);
    CHECK(l.traced_str() == g.traced_str());
    auto x2 = em::test::random_tensor({2, 3}, dt, {}, 9);
    auto ro = l.run({x2, f});
    auto re = fn({x2, f});
    REQUIRE(ro.size() == re.size());
    for (std::size_t i = 0; i < re.size(); ++i) {
      INFO("output " << i);
      CHECK(ro[i].dtype() == re[i].dtype());
      CHECK(em::equal(ro[i], re[i]));
    }
  }
}

TEST_CASE("Graph::load of a missing file and Graph::save to a bad path", "[capture][serialize][errors]") {
  const std::string missing = tmp_path("does_not_exist.emg");
  CHECK_THROWS_AS(cap::Graph::load(missing), em::ValueError);
  CHECK_THROWS_WITH(cap::Graph::load(missing), "Graph::load: " + missing + ": cannot open the file");
  Sample s;
  CHECK_THROWS_AS(s.g.save("/nonexistent_dir_ember/g.emg"), em::ValueError);
  CHECK_THROWS_WITH(s.g.save("/nonexistent_dir_ember/g.emg"),
                    "Graph::save: /nonexistent_dir_ember/g.emg: cannot open the file for writing");
  CHECK_THROWS_AS(cap::Graph().save(tmp_path("empty.emg")), em::ValueError);
}

TEST_CASE("every truncation of a saved graph is a ValueError", "[capture][serialize][errors]") {
  Sample s;
  TmpFile f("full.emg");
  s.g.save(f.path);
  const std::string bytes = read_file(f.path);
  REQUIRE(bytes.size() > 100);
  TmpFile cut("cut.emg");
  int failures = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    write_file(cut.path, bytes.substr(0, n));
    try {
      cap::Graph::load(cut.path);
      ++failures;
      UNSCOPED_INFO("a prefix of " << n << " bytes loaded");
    } catch (const em::ValueError& e) {
      const std::string what = e.what();
      if (what.rfind("Graph::load: " + cut.path + ": ", 0) != 0) {
        ++failures;
        UNSCOPED_INFO("prefix " << n << ": message does not name the file: " << what);
      }
    } catch (const std::exception& e) {
      ++failures;
      UNSCOPED_INFO("prefix " << n << ": not a ValueError: " << e.what());
    }
  }
  CHECK(failures == 0);
  CHECK_NOTHROW(cap::Graph::load(f.path));
  // Specific messages at a few cuts.
  const std::size_t data_at = bytes.find("\ndata ");
  REQUIRE(data_at != std::string::npos);
  check_load_fails("", "line 0: unexpected end of file");
  check_load_fails(bytes.substr(0, 5), "unterminated line");
  check_load_fails(bytes.substr(0, bytes.size() - 3), "the data section has 21 bytes, the header says 24");
  check_load_fails(bytes + "xy", "the data section has 26 bytes, the header says 24");
}

TEST_CASE("hostile or corrupt graph files give a ValueError naming the file and the problem",
          "[capture][serialize][errors]") {
  Sample s;
  TmpFile f("good.emg");
  s.g.save(f.path);
  const std::string good = read_file(f.path);
  // The lines these cases edit (see the round-trip test for the whole file).
  REQUIRE(good.find("node 5 op mul float32 1 3 cpu in 2 0 1 attrs 0 ") != std::string::npos);
  REQUIRE(good.find("node 6 constant float32 1 3 cpu 12 12\n") != std::string::npos);

  SECTION("bad magic and version") {
    check_edits_fail(good, {
        {"ember-graph 1", "ember-grapf 1", "line 1: expected 'ember-graph', found 'ember-grapf'"},
        {"ember-graph 1", "ember-graph 2", "line 1: unsupported version 2 (this build reads version 1)"},
        {"ember-graph 1", "ember-graph x", "line 1: 'x' is not an integer"},
    });
    check_load_fails("\x89PNG\r\n\x1a\n" + good, "line 1: expected 'ember-graph'");
  }
  SECTION("unknown op, node kind, dtype, device") {
    check_edits_fail(good, {
        {" op mul ", " op frobnicate ", "line 13: unknown op 'frobnicate'"},
        {"node 6 constant", "node 6 konstant", "unknown node kind 'konstant'"},
        {"node 6 constant float32", "node 6 constant float128", "unknown dtype 'float128'"},
        {"node 6 constant float32 1 3 cpu", "node 6 constant float32 1 3 tpu", "unknown device 'tpu'"},
    });
  }
  SECTION("out-of-range ids and counts") {
    check_edits_fail(good, {
        {"in 2 0 1 attrs", "in 2 0 9 attrs", "line 13: 9 is out of range (0..4)"},
        {"in 2 0 1 attrs", "in 2 0 5 attrs", "5 is out of range (0..4)"},  // itself
        {"in 2 0 1 attrs", "in 2 0 -1 attrs", "-1 is out of range (0..4)"},
        {"outputs 2 9 11", "outputs 2 9 12", "12 is out of range (0..11)"},
        {"writeback 2 -1 -1", "writeback 2 -1 40", "40 is out of range"},
        {"writeback 2 -1 -1", "writeback 1 -1", "writeback needs one entry per input"},
        {"node 2 read_variable 0", "node 2 read_variable 3", "3 is out of range (0..0)"},
        {"node 0 input 0", "node 0 input 2", "2 is out of range (0..1)"},
        {"nodes 12", "nodes 99999999999", "99999999999 is out of range"},
        {"nodes 12", "nodes 13", "line 20: expected 'node', found 'outputs'"},
        {"nodes 12", "nodes 11", "expected 'outputs', found 'node'"},
        {"node 5 op", "node 7 op", "nodes out of order"},
        {"inputs 2", "inputs 9999999999999999999999", "is not an integer"},
        {"in 2 0 1 attrs", "in 1 0 attrs", "node 5: mul takes 2 inputs, has 1"},
    });
  }
  SECTION("wrong data sizes and ranges") {
    check_edits_fail(good, {
        {"cpu 12 12\n", "cpu 12 8\n", "8 data bytes for a float32[3] tensor"},
        {"cpu 12 12\n", "cpu 20 12\n", "data range 20+12 is outside the data section"},
        {"cpu 12 12\n", "cpu 1125899906842624 12\n", "is outside the data section"},
        {"w%20eights float32 1 3 cpu 0 12", "w%20eights float32 1 3 cpu 0 16",
         "16 data bytes for a float32[3] tensor"},
        {"\ndata 24\n", "\ndata 2400\n", "the data section has 24 bytes, the header says 2400"},
        {"node 6 constant float32 1 3 cpu 12 12",
         "node 6 constant float32 2 1099511627776 1099511627776 cpu 12 12",
         "shape too large"},
        {"node 6 constant float32 1 3 cpu", "node 6 constant float32 1 -3 cpu", "-3 is out of range"},
        {"node 6 constant float32 1 3 cpu", "node 6 constant float32 99 3 cpu", "99 is out of range (0..64)"},
    });
  }
  SECTION("a node whose recorded type disagrees with the op's rule") {
    check_edits_fail(good, {
        {"node 5 op mul float32 1 3 cpu", "node 5 op mul float32 1 4 cpu",
         "node 5 (mul): recorded as float32[4] but the op gives float32[3]"},
        {"node 5 op mul float32 1 3 cpu", "node 5 op mul float64 1 3 cpu",
         "node 5 (mul): recorded as float64[3] but the op gives float32[3]"},
        {"node 11 op sum float32 0 cpu", "node 11 op sum float32 1 1 cpu",
         "node 11 (sum): recorded as float32[1] but the op gives float32[]"},
        // An op whose own rule rejects its inputs: the op's error is in the message.
        {"node 5 op mul float32 1 3 cpu in 2 0 1 attrs 0 0 0 0 0",
         "node 5 op permute float32 1 3 cpu in 1 0 attrs 1 7 0 0 0 0",
         "node 5 (permute): "},
        {"node 2 read_variable 0 float32 1 3 cpu", "node 2 read_variable 0 float32 1 4 cpu",
         "node 2: does not match its variable's type"},
        {"node 0 input 0 float32 1 3 cpu", "node 0 input 0 float64 1 3 cpu",
         "input node does not match its declaration"},
        {"node 4 assign 0 3 float32 1 3 cpu", "node 4 assign 0 3 float32 1 2 cpu", "node 4:"},
    });
  }
  SECTION("malformed lines") {
    check_edits_fail(good, {
        {"inputs 2\n", "inputs  2\n", "line 2: empty token"},
        {"inputs 2\n", "inputs 2 3\n", "line 2: unexpected extra fields"},
        {"input 0 x%20in", "input 0 x%2", "bad escape in name"},
        {"input 0 x%20in", "input 0 x%zzin", "bad escape in name"},
        {"0x1.999999999999ap-4", "0x1.99zz", "'0x1.99zz' is not a number"},
        {"inputs 2\n", "inputs 2\r\n", "line 2:"},
    });
  }
  SECTION("random garbage") {
    std::mt19937 rng(42);
    for (int k = 0; k < 50; ++k) {
      std::string junk(static_cast<std::size_t>(rng() % 300), '\0');
      for (char& ch : junk) ch = static_cast<char>(rng() % 256);
      if (k % 2) junk = "ember-graph 1\n" + junk;
      INFO("garbage #" << k);
      check_load_fails(junk, "");
    }
    // Bytes flipped inside a good file: a ValueError or a graph that loads, never a crash.
    for (int k = 0; k < 200; ++k) {
      std::string bad = good;
      bad[rng() % bad.size()] = static_cast<char>(rng() % 256);
      TmpFile t("flip.emg");
      write_file(t.path, bad);
      try {
        cap::Graph::load(t.path);
      } catch (const em::ValueError&) {
      } catch (const em::Error& e) {
        INFO("a byte flip gave a non-ValueError: " << e.what());
        CHECK(false);
      }
    }
  }
}

TEST_CASE("extreme but valid attribute values load and run", "[capture][serialize]") {
  // slice(0, 0, 3, step = INT64_MAX) of a [3] tensor is its first element. The
  // size rule must not overflow computing it (found by hand while fuzzing:
  // (stop - start + step - 1) / step in lib/ops/schema_table.cpp infer_slice).
  const std::string text =
      "ember-graph 1\ninputs 1\ninput 0 x float32 1 3 cpu\nvariables 0\nnodes 2\n"
      "node 0 input 0 float32 1 3 cpu\n"
      "node 1 op slice float32 1 1 cpu in 1 0 attrs 0 0 0 3 9223372036854775807 0x0p+0 0x0p+0 float32 0 cpu\n"
      "outputs 1 1\nwriteback 1 -1\ndata 0\n";
  TmpFile f("slice_step.emg");
  write_file(f.path, text);
  cap::Graph g;
  REQUIRE_NOTHROW(g = cap::Graph::load(f.path));
  EMBER_CHECK_VALUES(g.run({em::tensor({4.f, 5.f, 6.f})})[0], (em::Shape{1}), {4});
}
