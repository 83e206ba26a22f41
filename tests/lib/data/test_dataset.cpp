// ember::data pipelines: every source and transformation with real values,
// orders, remainders, seeds, errors at the right element, and early exit with
// threads running (these also run under ASan/UBSan and once under TSan).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <ember/data/dataset.h>
#include <ember/ember.h>

namespace em = ember;
namespace ed = ember::data;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

// The values of a dataset of 0-d (or one-element) tensors, in order.
std::vector<int64_t> values(const ed::Dataset& ds) {
  std::vector<int64_t> out;
  for (em::Tensor v : ds) out.push_back(v.item<int64_t>());
  return out;
}

// Each element of a dataset of 1-d batches, as a vector.
std::vector<std::vector<int64_t>> batches(const ed::Dataset& ds) {
  std::vector<std::vector<int64_t>> out;
  for (em::Tensor b : ds) out.push_back(b.to_vector<int64_t>());
  return out;
}

std::vector<int64_t> iota(int64_t n, int64_t start = 0) {
  std::vector<int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// A fresh directory under the system temp dir, removed with its files.
struct TempDir {
  fs::path dir;
  TempDir() {
    static std::atomic<int> counter{0};
    dir = fs::temp_directory_path() /
          ("ember_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (dir / name).string();
    std::ofstream f(path, std::ios::binary);
    f << text;
    return path;
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace

static_assert(std::ranges::input_range<ed::Dataset>);
static_assert(std::input_iterator<ed::Dataset::Iterator>);

// ---- Element -------------------------------------------------------------------------

TEST_CASE("Element holds one tensor or a tuple", "[data]") {
  ed::Element one(em::scalar_tensor(int64_t{7}));
  CHECK(one.size() == 1);
  em::Tensor t = one;
  CHECK(t.item<int64_t>() == 7);

  ed::Element pair{em::tensor({1.f, 2.f}), em::scalar_tensor(int64_t{3})};
  CHECK(pair.size() == 2);
  CHECK(pair[1].item<int64_t>() == 3);
  CHECK_THROWS_AS(pair.tensor(), em::ValueError);
  CHECK_THROWS_WITH(pair.tensor(),
                    Contains("Element: holds 2 tensors where one Tensor was expected"));
  CHECK_THROWS_AS(pair.at(2), em::IndexError);

  // More tensors than fit inline, then copies and moves.
  ed::Element many;
  for (int i = 0; i < 6; ++i) many.push_back(em::scalar_tensor(int64_t{i}));
  ed::Element copy = many;
  ed::Element moved = std::move(many);
  CHECK(many.empty());
  REQUIRE(copy.size() == 6);
  REQUIRE(moved.size() == 6);
  for (int i = 0; i < 6; ++i) CHECK(moved[i].item<int64_t>() == i);
  int64_t sum = 0;
  for (const em::Tensor& x : copy) sum += x.item<int64_t>();
  CHECK(sum == 15);

  ed::Element from_tuple(std::make_tuple(em::zeros({2}), em::ones({3})));
  CHECK(from_tuple.size() == 2);
  CHECK(from_tuple[1].numel() == 3);
}

// ---- sources -------------------------------------------------------------------------

TEST_CASE("range yields int64 scalars", "[data]") {
  auto ds = ed::Dataset::range(5);
  CHECK(values(ds) == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(ds.cardinality() == 5);
  for (em::Tensor v : ds) {
    CHECK(v.dim() == 0);
    CHECK(v.dtype() == em::int64);
  }
  CHECK(values(ed::Dataset::range(2, 10, 3)) == std::vector<int64_t>{2, 5, 8});
  CHECK(values(ed::Dataset::range(10, 0, -3)) == std::vector<int64_t>{10, 7, 4, 1});
  CHECK(values(ed::Dataset::range(0)).empty());
  CHECK(values(ed::Dataset::range(5, 2)).empty());
  CHECK(ed::Dataset::range(2, 10, 3).cardinality() == 3);
  CHECK_THROWS_WITH(ed::Dataset::range(0, 5, 0), "range: step must not be 0");
  CHECK(values(ed::Dataset()).empty());
}

TEST_CASE("the DESIGN example: range, map, range-for over Tensor", "[data]") {
  auto ds = ed::Dataset::range(10).map([](em::Tensor x) { return x * 2; });
  std::vector<int64_t> got;
  for (em::Tensor v : ds) got.push_back(v.item<int64_t>());
  CHECK(got == std::vector<int64_t>{0, 2, 4, 6, 8, 10, 12, 14, 16, 18});
  // A Dataset is a value: a second pass gives the same elements.
  CHECK(values(ds) == got);
}

TEST_CASE("from_tensor_slices of a tensor and of a tuple", "[data]") {
  auto x = em::arange(12).reshape({4, 3});
  std::vector<std::vector<int64_t>> rows;
  for (em::Tensor r : ed::Dataset::from_tensor_slices(x)) {
    CHECK(r.shape() == em::Shape{3});
    rows.push_back(r.to_vector<int64_t>());
  }
  CHECK(rows == std::vector<std::vector<int64_t>>{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9, 10, 11}});

  auto y = em::tensor({10.f, 20.f, 30.f, 40.f});
  auto ds = ed::Dataset::from_tensor_slices({x, y});
  CHECK(ds.cardinality() == 4);
  int64_t i = 0;
  for (const ed::Element& e : ds) {
    REQUIRE(e.size() == 2);
    CHECK(e[0].to_vector<int64_t>() == std::vector<int64_t>{3 * i, 3 * i + 1, 3 * i + 2});
    CHECK(e[1].item<float>() == 10.f * static_cast<float>(i + 1));
    ++i;
  }
  CHECK(i == 4);

  CHECK_THROWS_AS(ed::Dataset::from_tensor_slices({x, em::zeros({3})}), em::ShapeError);
  CHECK_THROWS_WITH(
      ed::Dataset::from_tensor_slices({x, em::zeros({3})}),
      "from_tensor_slices: the tensors disagree in dim 0 (tensor 0 has 4, tensor 1 has 3)");
  CHECK_THROWS_WITH(ed::Dataset::from_tensor_slices(em::scalar_tensor(1.f)),
                    "from_tensor_slices: tensor 0 is 0-d; slicing needs at least 1 dim");
}

TEST_CASE("from_generator restarts on each pass", "[data]") {
  auto ds = ed::Dataset::from_generator([i = int64_t{0}]() mutable -> std::optional<em::Tensor> {
    if (i == 4) return std::nullopt;
    return em::scalar_tensor(i++ * 10);
  });
  CHECK(values(ds) == std::vector<int64_t>{0, 10, 20, 30});
  CHECK(values(ds) == std::vector<int64_t>{0, 10, 20, 30});
  CHECK(ds.cardinality() == ed::Dataset::kUnknown);

  auto pairs =
      ed::Dataset::from_generator([i = int64_t{0}]() mutable -> std::optional<ed::Element> {
        if (i == 3) return std::nullopt;
        ++i;
        return ed::Element{em::scalar_tensor(i), em::scalar_tensor(-i)};
      });
  int64_t n = 0;
  for (const ed::Element& e : pairs) {
    ++n;
    CHECK(e[0].item<int64_t>() == n);
    CHECK(e[1].item<int64_t>() == -n);
  }
  CHECK(n == 3);
}

// ---- map and filter --------------------------------------------------------------------

TEST_CASE("map takes a Tensor, an Element or the tuple spread", "[data]") {
  auto xy = ed::Dataset::from_tensor_slices({em::arange(4), em::arange(4) * 10});
  auto sums = xy.map([](em::Tensor x, em::Tensor y) { return x + y; });
  CHECK(values(sums) == std::vector<int64_t>{0, 11, 22, 33});

  auto swapped = xy.map([](const ed::Element& e) { return ed::Element{e[1], e[0]}; });
  std::vector<int64_t> firsts;
  for (const ed::Element& e : swapped) firsts.push_back(e[0].item<int64_t>());
  CHECK(firsts == std::vector<int64_t>{0, 10, 20, 30});

  auto to_pair = ed::Dataset::range(3).map(
      [](em::Tensor x) { return std::make_tuple(x, x.to(em::float32) * 0.5f); });
  std::vector<float> halves;
  for (const ed::Element& e : to_pair) halves.push_back(e[1].item<float>());
  CHECK(halves == std::vector<float>{0.f, 0.5f, 1.f});

  auto wrong = ed::Dataset::range(3).map([](em::Tensor x, em::Tensor y) { return x + y; });
  CHECK_THROWS_WITH(values(wrong), "map: the function takes 2 tensors but the element has 1");
}

TEST_CASE("parallel map keeps the input order", "[data]") {
  auto slow_double = [](em::Tensor x) {
    const int64_t v = x.item<int64_t>();
    // Uneven work, so that workers finish out of order.
    std::this_thread::sleep_for(std::chrono::microseconds((v * 37) % 5 * 40));
    return x * 2;
  };
  for (int workers : {1, 2, 4, ed::Dataset::kAutotune}) {
    auto ds = ed::Dataset::range(300).map(slow_double, workers);
    std::vector<int64_t> want;
    for (int64_t v = 0; v < 300; ++v) want.push_back(2 * v);
    CHECK(values(ds) == want);
  }
  CHECK_THROWS_WITH(ed::Dataset::range(3).map(slow_double, 0),
                    "map: parallel_calls must be >= 1 or Dataset::kAutotune (got 0)");
}

TEST_CASE("parallel map with a consumer that falls behind", "[data]") {
  // The consumer stalls now and then, so the workers fill the ring and wait for room.
  for (int workers : {1, 2, 3}) {
    auto ds = ed::Dataset::range(400).map([](em::Tensor x) { return x * 3; }, workers);
    for (int pass = 0; pass < 5; ++pass) {
      int64_t i = 0;
      for (em::Tensor v : ds) {
        REQUIRE(v.item<int64_t>() == 3 * i);
        if (++i % 97 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      CHECK(i == 400);
    }
  }
}

TEST_CASE("filter keeps elements where the predicate holds", "[data]") {
  auto even =
      ed::Dataset::range(10).filter([](em::Tensor x) { return x.item<int64_t>() % 2 == 0; });
  CHECK(values(even) == std::vector<int64_t>{0, 2, 4, 6, 8});
  CHECK(even.cardinality() == ed::Dataset::kUnknown);
  // A predicate may return a one-element bool tensor.
  auto big = ed::Dataset::range(10).filter([](em::Tensor x) { return x > 6; });
  CHECK(values(big) == std::vector<int64_t>{7, 8, 9});
  auto bad =
      ed::Dataset::from_tensor_slices(em::zeros({2, 3})).filter([](em::Tensor x) { return x > 0; });
  CHECK_THROWS_WITH(values(bad),
                    "filter: the predicate returned a [3] tensor; need a single value");
}

// ---- batch -------------------------------------------------------------------------------

TEST_CASE("batch stacks elements and keeps or drops the remainder", "[data]") {
  using V = std::vector<std::vector<int64_t>>;
  CHECK(batches(ed::Dataset::range(10).batch(4)) == V{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}});
  CHECK(batches(ed::Dataset::range(10).batch(4, true)) == V{{0, 1, 2, 3}, {4, 5, 6, 7}});
  CHECK(batches(ed::Dataset::range(8).batch(4, true)) == V{{0, 1, 2, 3}, {4, 5, 6, 7}});
  CHECK(batches(ed::Dataset::range(3).batch(4, true)).empty());
  CHECK(ed::Dataset::range(10).batch(4).cardinality() == 3);
  CHECK(ed::Dataset::range(10).batch(4, true).cardinality() == 2);

  // The stacked path (after a map) gives the same batches as the direct one.
  auto mapped = ed::Dataset::range(10).map([](em::Tensor x) { return x; }).batch(4);
  CHECK(batches(mapped) == V{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}});
  for (em::Tensor b : ed::Dataset::range(5).batch(2)) CHECK(b.dtype() == em::int64);

  // Batches cross repeat boundaries; take and skip keep the direct path exact.
  CHECK(batches(ed::Dataset::range(5).repeat(2).batch(3)) ==
        V{{0, 1, 2}, {3, 4, 0}, {1, 2, 3}, {4}});
  CHECK(batches(ed::Dataset::range(100).skip(95).take(4).batch(3)) == V{{95, 96, 97}, {98}});

  // Tuples batch per tensor; rows of a matrix become a matrix.
  auto x = em::arange(15).reshape({5, 3}).to(em::float32);
  auto y = em::arange(5);
  int n = 0;
  for (const ed::Element& b : ed::Dataset::from_tensor_slices({x, y}).batch(2)) {
    const int64_t rows = n < 2 ? 2 : 1;
    CHECK(b[0].shape() == em::Shape{rows, 3});
    CHECK(b[0].dtype() == em::float32);
    CHECK(b[1].shape() == em::Shape{rows});
    CHECK(em::equal(b[0], x.slice(0, 2 * n, 2 * n + rows)));
    ++n;
  }
  CHECK(n == 3);

  // A batch owns its memory: writing into it leaves the source alone.
  auto src = em::arange(4);
  for (em::Tensor b : ed::Dataset::from_tensor_slices(src).batch(4)) b.fill_(0);
  CHECK(src.to_vector<int64_t>() == iota(4));

  auto ragged =
      ed::Dataset::range(1, 4).map([](em::Tensor n) { return em::zeros({n.item<int64_t>()}); });
  CHECK_THROWS_AS(values(ragged.batch(2)), em::ShapeError);
  CHECK_THROWS_WITH(ragged.batch(2).begin(),
                    "batch: element 1 of a batch has shape [2] but element 0 has [1] (tensor 0 of "
                    "the tuple)");
  CHECK_THROWS_WITH(ed::Dataset::range(3).batch(0), "batch: the batch size must be >= 1 (got 0)");
}

// ---- shuffle -------------------------------------------------------------------------------

TEST_CASE("shuffle is a seeded permutation, new each pass", "[data]") {
  auto ds = ed::Dataset::range(100).shuffle(100, 42);
  const auto first = values(ds);
  const auto second = values(ds);
  auto sorted = first;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == iota(100));
  CHECK(first != iota(100));
  CHECK(first != second);  // a new order each pass

  // The same seed gives the same sequence of orders.
  auto again = ed::Dataset::range(100).shuffle(100, 42);
  CHECK(values(again) == first);
  CHECK(values(again) == second);
  CHECK(values(ed::Dataset::range(100).shuffle(100, 43)) != first);

  // Without reshuffling, every pass has the first order; repeat also reshuffles.
  auto fixed = ed::Dataset::range(100).shuffle(100, 42, false);
  CHECK(values(fixed) == first);
  CHECK(values(fixed) == first);
  auto twice = values(ed::Dataset::range(100).shuffle(100, 42).repeat(2));
  CHECK(std::vector<int64_t>(twice.begin(), twice.begin() + 100) == first);
  CHECK(std::vector<int64_t>(twice.begin() + 100, twice.end()) == second);

  // A buffer of one keeps the order; a small buffer only moves elements a little.
  CHECK(values(ed::Dataset::range(20).shuffle(1, 7)) == iota(20));
  const auto local = values(ed::Dataset::range(1000).shuffle(10, 7));
  for (std::size_t i = 0; i < local.size(); ++i) CHECK(local[i] <= static_cast<int64_t>(i) + 9);

  // Without a seed, em::manual_seed decides.
  em::manual_seed(5);
  const auto a = values(ed::Dataset::range(50).shuffle(50));
  em::manual_seed(5);
  CHECK(values(ed::Dataset::range(50).shuffle(50)) == a);
  CHECK_THROWS_WITH(ed::Dataset::range(3).shuffle(0), "shuffle: buffer_size must be >= 1 (got 0)");
}

// ---- repeat, take, skip, zip, enumerate --------------------------------------------------

TEST_CASE("repeat counts passes; repeat() goes on forever", "[data]") {
  CHECK(values(ed::Dataset::range(3).repeat(2)) == std::vector<int64_t>{0, 1, 2, 0, 1, 2});
  CHECK(values(ed::Dataset::range(3).repeat(1)) == iota(3));
  CHECK(values(ed::Dataset::range(3).repeat(0)).empty());
  CHECK(values(ed::Dataset::range(3).repeat().take(7)) ==
        std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0});
  // An empty dataset repeated forever ends instead of spinning.
  CHECK(values(ed::Dataset::range(0).repeat()).empty());
  CHECK(ed::Dataset::range(3).repeat(4).cardinality() == 12);
  CHECK(ed::Dataset::range(3).repeat().cardinality() == ed::Dataset::kInfinite);
  CHECK(ed::Dataset::range(3).repeat().take(5).cardinality() == 5);
  CHECK_THROWS_WITH(ed::Dataset::range(3).repeat(-2),
                    "repeat: count must be >= 0, or -1 to repeat forever (got -2)");
}

TEST_CASE("take and skip", "[data]") {
  CHECK(values(ed::Dataset::range(10).take(3)) == std::vector<int64_t>{0, 1, 2});
  CHECK(values(ed::Dataset::range(10).take(0)).empty());
  CHECK(values(ed::Dataset::range(3).take(10)) == iota(3));
  CHECK(values(ed::Dataset::range(10).skip(7)) == std::vector<int64_t>{7, 8, 9});
  CHECK(values(ed::Dataset::range(10).skip(20)).empty());
  CHECK(values(ed::Dataset::range(10).skip(2).take(3)) == std::vector<int64_t>{2, 3, 4});
  CHECK(ed::Dataset::range(10).skip(7).cardinality() == 3);
  CHECK(ed::Dataset::range(10).take(3).cardinality() == 3);

  // take stops pulling from its input once it has enough.
  int calls = 0;
  auto counted = ed::Dataset::from_generator([&calls]() -> std::optional<em::Tensor> {
    ++calls;
    return em::scalar_tensor(int64_t{1});
  });
  CHECK(values(counted.take(4)).size() == 4);
  CHECK(calls == 4);
  CHECK_THROWS_WITH(ed::Dataset::range(3).take(-1), "take: count must be >= 0 (got -1)");
  CHECK_THROWS_WITH(ed::Dataset::range(3).skip(-1), "skip: count must be >= 0 (got -1)");
}

TEST_CASE("zip stops at the shortest and flattens tuples", "[data]") {
  auto a = ed::Dataset::range(5);
  auto b = ed::Dataset::range(100, 103);
  auto c = ed::Dataset::from_tensor_slices({em::arange(10), em::arange(10) * -1});
  std::vector<std::vector<int64_t>> got;
  for (const ed::Element& e : ed::Dataset::zip({a, b, c})) {
    REQUIRE(e.size() == 4);
    got.push_back(
        {e[0].item<int64_t>(), e[1].item<int64_t>(), e[2].item<int64_t>(), e[3].item<int64_t>()});
  }
  CHECK(got == std::vector<std::vector<int64_t>>{{0, 100, 0, 0}, {1, 101, 1, -1}, {2, 102, 2, -2}});
  CHECK(ed::Dataset::zip({a, b, c}).cardinality() == 3);
  CHECK(a.zip(b.repeat()).cardinality() == 5);
  std::vector<int64_t> sums;
  for (const ed::Element& e : b.zip(a)) sums.push_back(e[0].item<int64_t>() + e[1].item<int64_t>());
  CHECK(sums == std::vector<int64_t>{100, 102, 104});
  CHECK_THROWS_WITH(ed::Dataset::zip({}), "zip: needs at least one dataset");
}

TEST_CASE("enumerate pairs an index with each element", "[data]") {
  std::vector<std::pair<int64_t, int64_t>> got;
  for (const ed::Element& e : ed::Dataset::range(10, 13).enumerate(1))
    got.emplace_back(e[0].item<int64_t>(), e[1].item<int64_t>());
  CHECK(got == std::vector<std::pair<int64_t, int64_t>>{{1, 10}, {2, 11}, {3, 12}});
}

// ---- prefetch and cache -----------------------------------------------------------------

TEST_CASE("prefetch passes every element through, in order", "[data]") {
  CHECK(values(ed::Dataset::range(1000).prefetch(1)) == iota(1000));
  CHECK(values(ed::Dataset::range(1000).prefetch(8)) == iota(1000));
  auto deep = ed::Dataset::range(500)
                  .prefetch(2)
                  .map([](em::Tensor x) { return x + 1; }, 3)
                  .prefetch(3)
                  .batch(7)
                  .prefetch(2);
  std::vector<int64_t> flat;
  for (em::Tensor b : deep)
    for (int64_t v : b.to_vector<int64_t>()) flat.push_back(v);
  CHECK(flat == iota(500, 1));
  CHECK(values(ed::Dataset::range(0).prefetch(2)).empty());
  CHECK_THROWS_WITH(ed::Dataset::range(3).prefetch(0),
                    "prefetch: buffer_size must be >= 1 (got 0)");
}

TEST_CASE("cache replays the first complete pass", "[data]") {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto ds = ed::Dataset::range(5).map([calls](em::Tensor x) {
    ++*calls;
    return x * 3;
  });
  auto cached = ds.cache();
  // A pass stopped early does not fill the cache.
  for (em::Tensor v : cached) {
    if (v.item<int64_t>() == 3) break;
  }
  CHECK(*calls == 2);
  CHECK(values(cached) == std::vector<int64_t>{0, 3, 6, 9, 12});
  CHECK(*calls == 7);
  CHECK(values(cached) == std::vector<int64_t>{0, 3, 6, 9, 12});
  CHECK(values(cached.repeat(2)).size() == 10);
  CHECK(*calls == 7);
}

// ---- errors and lifetime ---------------------------------------------------------------

namespace {

// Iterates by hand; returns how many elements arrived before `what` was thrown.
template <class E = std::runtime_error>
int64_t count_until_error(const ed::Dataset& ds, const std::string& what) {
  int64_t n = 0;
  auto it = ds.begin();
  try {
    for (; it != ds.end(); ++it) {
      CHECK((*it).tensor().item<int64_t>() == n);
      ++n;
    }
  } catch (const E& e) {
    CHECK(std::string(e.what()) == what);
    CHECK(it == ds.end());  // the pass is over and its threads are joined
    return n;
  }
  FAIL("no error reached the consumer");
  return -1;
}

em::Tensor fail_at_37(em::Tensor x) {
  if (x.item<int64_t>() == 37) throw std::runtime_error("boom at 37");
  return x;
}

}  // namespace

TEST_CASE("an exception in map, filter or a generator reaches the consumer at its element",
          "[data]") {
  auto src = ed::Dataset::range(100);
  CHECK(count_until_error(src.map(fail_at_37), "boom at 37") == 37);
  CHECK(count_until_error(src.map(fail_at_37, 3), "boom at 37") == 37);
  CHECK(count_until_error(src.map(fail_at_37, 2).prefetch(4), "boom at 37") == 37);
  CHECK(count_until_error(src.prefetch(2).map(fail_at_37, 4).prefetch(1), "boom at 37") == 37);
  CHECK(count_until_error(src.filter([](em::Tensor x) { return fail_at_37(x).defined(); }),
                          "boom at 37") == 37);
  auto gen = ed::Dataset::from_generator([i = int64_t{0}]() mutable -> std::optional<em::Tensor> {
    if (i == 37) throw std::runtime_error("boom at 37");
    return em::scalar_tensor(i++);
  });
  CHECK(count_until_error(gen, "boom at 37") == 37);
  CHECK(count_until_error(gen.prefetch(3), "boom at 37") == 37);
  CHECK(count_until_error(gen.map([](em::Tensor x) { return x; }, 2), "boom at 37") == 37);
  // ember's own errors arrive with their type.
  auto bad_op = src.map([](em::Tensor x) {
    return x.item<int64_t>() == 5 ? x + em::zeros({2, 3}) + em::zeros({4}) : x;
  });
  CHECK(count_until_error<em::ShapeError>(bad_op.prefetch(2),
                                          "add: shapes [2,3] and [4] cannot be broadcast (dim -1: "
                                          "3 vs 4)") == 5);
  // An error in the first element comes out of begin().
  CHECK_THROWS_WITH(ed::Dataset::range(3)
                        .map(fail_at_37, 2)
                        .skip(0)
                        .map([](em::Tensor x) { return fail_at_37(x + 37); })
                        .begin(),
                    "boom at 37");
}

TEST_CASE("stopping early joins every thread (200 passes)", "[data]") {
  auto busy = [](em::Tensor x) {
    // A few microseconds of work, so workers are mid-call when the pass stops.
    volatile double acc = 0;
    for (int i = 0; i < 200; ++i) acc = acc + i * 0.5;
    return x + 1;
  };
  auto pipeline = ed::Dataset::range(1'000'000)
                      .prefetch(2)
                      .map(busy, 3)
                      .prefetch(4)
                      .shuffle(8, 1)
                      .map(busy, 2)
                      .batch(5)
                      .prefetch(2);
  for (int pass = 0; pass < 200; ++pass) {
    int64_t seen = 0;
    for (em::Tensor b : pipeline) {
      CHECK(b.numel() == 5);
      if (++seen > pass % 7) break;
    }
  }
  // Iterators destroyed mid-way, without a loop, and moved around.
  for (int pass = 0; pass < 200; ++pass) {
    auto infinite = ed::Dataset::range(3).repeat().map(busy, 2).prefetch(3);
    auto it = infinite.begin();
    for (int k = 0; k < pass % 5; ++k) ++it;
    CHECK((*it).tensor().item<int64_t>() == pass % 5 % 3 + 1);
    auto moved = std::move(it);
    CHECK(it == infinite.end());
  }
  // No element lost or duplicated across threads: a full pass sees each once.
  std::vector<int64_t> got;
  for (em::Tensor b : ed::Dataset::range(2000).map(busy, 3).prefetch(2).batch(64).prefetch(2))
    for (int64_t v : b.to_vector<int64_t>()) got.push_back(v);
  CHECK(got == iota(2000, 1));
}

// ---- readers ---------------------------------------------------------------------------

TEST_CASE("from_npy reads one file or several, slicing along dim 0", "[data]") {
  TempDir tmp;
  const std::string a = tmp.file("a.npy"), b = tmp.file("b.npy"), c = tmp.file("c.npy");
  em::save_npy(a, em::arange(6).reshape({3, 2}).to(em::float32));
  em::save_npy(b, em::arange(6, 10).reshape({2, 2}).to(em::float32));
  em::save_npy(c, em::arange(6).reshape({2, 3}).to(em::float32));

  std::vector<std::vector<float>> rows;
  for (em::Tensor r : ed::Dataset::from_npy(a)) rows.push_back(r.to_vector<float>());
  CHECK(rows == std::vector<std::vector<float>>{{0, 1}, {2, 3}, {4, 5}});

  std::vector<float> flat;
  for (em::Tensor batch : ed::Dataset::from_npy({a, b}).batch(2)) {
    CHECK(batch.shape(1) == 2);
    for (float v : batch.to_vector<float>()) flat.push_back(v);
  }
  CHECK(flat == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(values(ed::Dataset::from_npy({a, b}).map([](em::Tensor r) {
          return r.sum().to(em::int64);
        })) == std::vector<int64_t>{1, 5, 9, 13, 17});

  CHECK_THROWS_WITH(
      values(ed::Dataset::from_npy({a, c}).map([](em::Tensor r) { return r[0].to(em::int64); })),
      Contains("from_npy: " + c + " holds float32 [2,3] but " + a +
               " holds float32 [3,2]; the files must agree after dim 0"));
  CHECK_THROWS_WITH(ed::Dataset::from_npy(tmp.file("missing.npy")),
                    "from_npy: " + tmp.file("missing.npy") + " is not a readable file");
}

TEST_CASE("from_csv infers or follows column types", "[data]") {
  TempDir tmp;
  const std::string path = tmp.write("data.csv",
                                     "x1,x2,label,flag\r\n"
                                     "0.5,1,3,true\r\n"
                                     "\r\n"
                                     "  -1.25 ,\"2\",-4,false\n"
                                     "3e2,3,5,1\n");
  auto ds = ed::Dataset::from_csv(path);
  CHECK(ds.cardinality() == 3);
  std::vector<float> x1;
  std::vector<int64_t> x2, label;
  std::vector<bool> flag;
  for (const ed::Element& e : ds) {
    REQUIRE(e.size() == 4);
    CHECK(e[0].dtype() == em::float32);
    CHECK(e[1].dtype() == em::int64);
    CHECK(e[2].dtype() == em::int64);
    CHECK(e[3].dtype() == em::bool_);
    x1.push_back(e[0].item<float>());
    x2.push_back(e[1].item<int64_t>());
    label.push_back(e[2].item<int64_t>());
    flag.push_back(e[3].item<bool>());
  }
  CHECK(x1 == std::vector<float>{0.5f, -1.25f, 300.f});
  CHECK(x2 == std::vector<int64_t>{1, 2, 3});
  CHECK(label == std::vector<int64_t>{3, -4, 5});
  CHECK(flag == std::vector<bool>{true, false, true});

  // Chosen columns, in the chosen order and types; batches come out per column.
  ed::CsvOptions opts;
  opts.columns = {{"label", em::int32}, {"x2", em::float64}};
  for (const ed::Element& b : ed::Dataset::from_csv(path, opts).batch(8)) {
    REQUIRE(b.size() == 2);
    CHECK(b[0].dtype() == em::int32);
    CHECK(b[0].to_vector<int32_t>() == std::vector<int32_t>{3, -4, 5});
    CHECK(b[1].dtype() == em::float64);
    CHECK(b[1].to_vector<double>() == std::vector<double>{1, 2, 3});
  }

  const std::string semi = tmp.write("semi.csv", "a;\"b;c\"\n1;2\n");
  ed::CsvOptions semi_opts;
  semi_opts.delimiter = ';';
  semi_opts.columns = {{"b;c", {}}};
  CHECK(values(ed::Dataset::from_csv(semi, semi_opts)) == std::vector<int64_t>{2});
}

TEST_CASE("from_csv errors name the file, line and column", "[data]") {
  TempDir tmp;
  const std::string bad = tmp.write("bad.csv", "a,b\n1,2\n3,x7\n");
  CHECK_THROWS_AS(ed::Dataset::from_csv(bad), em::ValueError);
  CHECK_THROWS_WITH(
      ed::Dataset::from_csv(bad),
      "from_csv: bad value \"x7\" for float32 column \"b\" (" + bad + " line 3, column 2)");
  ed::CsvOptions as_int;
  as_int.columns = {{"a", em::uint8}};
  const std::string big = tmp.write("big.csv", "a\n255\n256\n");
  CHECK_THROWS_WITH(
      ed::Dataset::from_csv(big, as_int),
      "from_csv: bad value \"256\" for uint8 column \"a\" (" + big + " line 3, column 1)");
  const std::string empty_value = tmp.write("empty_value.csv", "a,b\n1,\n");
  CHECK_THROWS_WITH(
      ed::Dataset::from_csv(empty_value),
      "from_csv: bad value \"\" for float32 column \"b\" (" + empty_value + " line 2, column 2)");
  const std::string short_row = tmp.write("short.csv", "a,b,c\n1,2,3\n4,5\n");
  CHECK_THROWS_WITH(ed::Dataset::from_csv(short_row),
                    "from_csv: " + short_row + " line 3 has 2 fields but the header has 3");
  ed::CsvOptions missing;
  missing.columns = {{"z", {}}};
  CHECK_THROWS_WITH(ed::Dataset::from_csv(bad, missing),
                    "from_csv: no column \"z\" in " + bad + " (columns: a, b)");
  const std::string quote = tmp.write("quote.csv", "a\n\"12\n");
  CHECK_THROWS_WITH(ed::Dataset::from_csv(quote),
                    "from_csv: unterminated quote (" + quote + " line 2, column 1)");
  CHECK_THROWS_WITH(ed::Dataset::from_csv(tmp.write("none.csv", "\n\n")),
                    Contains("has no header line"));
  CHECK_THROWS_WITH(ed::Dataset::from_csv(tmp.file("nope.csv")),
                    "from_csv: cannot open " + tmp.file("nope.csv"));
  // A header and no rows: an empty dataset.
  CHECK(values(ed::Dataset::from_csv(tmp.write("header_only.csv", "a\n"))).empty());
}
