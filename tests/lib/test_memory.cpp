// The CPU allocator's statistics (memory.h): current, peak, cached, allocations
// and cache hits. Other tests allocate too, so everything is measured as deltas.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include <ember/ember.h>

namespace em = ember;

namespace {

constexpr std::size_t kMiB = std::size_t(1) << 20;

em::MemoryStats stats() { return em::memory_stats(); }

}  // namespace

TEST_CASE("current grows by at least a tensor's bytes and returns when it dies", "[memory]") {
  em::empty_cache();  // so that no bigger cached block serves the requests below
  const auto s0 = stats();
  {
    auto t = em::empty({1000});  // 4000 bytes
    const auto s1 = stats();
    CHECK(s1.current - s0.current >= t.nbytes());
    CHECK(s1.current - s0.current <= 2 * t.nbytes());  // a size class, not much more
    CHECK(s1.allocations == s0.allocations + 1);
    {
      auto u = em::zeros({1000, 1000});  // 4 MB: a large block
      const auto s2 = stats();
      CHECK(s2.current - s1.current >= u.nbytes());
      CHECK(s2.current - s1.current <= u.nbytes() + 2 * kMiB);
      auto copy = u;  // shares the storage
      auto copy2 = copy;
      CHECK(stats().current == s2.current);
    }
    CHECK(stats().current == s1.current);
    auto d = em::zeros({10}, em::float64);
    CHECK(stats().current - s1.current >= 80);
  }
  CHECK(stats().current == s0.current);
}

TEST_CASE("every dtype and creation function is accounted", "[memory]") {
  const auto s0 = stats();
  {
    std::vector<em::Tensor> ts;
    ts.push_back(em::zeros({100}, em::bool_));
    ts.push_back(em::ones({100}, em::uint8));
    ts.push_back(em::full({100}, 3, em::int32));
    ts.push_back(em::arange(100));
    ts.push_back(em::rand({100}, em::float64));
    ts.push_back(em::eye(10));
    ts.push_back(em::linspace(0, 1, 100));
    ts.push_back(em::tensor(std::vector<float>(100, 1.f)));
    std::size_t bytes = 0;
    for (const auto& t : ts) bytes += t.nbytes();
    CHECK(stats().current - s0.current >= bytes);
    CHECK(stats().allocations - s0.allocations >= ts.size());
  }
  CHECK(stats().current == s0.current);
}

TEST_CASE("empty tensors hold no memory", "[memory]") {
  const auto s0 = stats();
  auto e = em::empty({0, 5});
  auto z = em::zeros({3, 0});
  auto c = em::concat({e, e});
  CHECK(stats().current == s0.current);
  CHECK(e.numel() == 0);
  CHECK(c.shape() == em::Shape{0, 5});
}

TEST_CASE("peak tracks the most memory held since the last reset", "[memory]") {
  em::reset_peak_memory();
  const auto s0 = stats();
  CHECK(s0.peak == s0.current);
  {
    auto a = em::empty({int64_t(1) << 20});  // 4 MiB
    auto b = em::empty({int64_t(1) << 20});
    const auto s1 = stats();
    CHECK(s1.peak == s1.current);
    CHECK(s1.peak - s0.current >= 8 * kMiB);
  }
  const auto s2 = stats();
  CHECK(s2.current == s0.current);
  CHECK(s2.peak - s0.current >= 8 * kMiB);  // the high-water mark stays
  // a smaller allocation afterwards does not move it
  { auto c = em::empty({1000}); }
  CHECK(stats().peak == s2.peak);
  em::reset_peak_memory();
  const auto s3 = stats();
  CHECK(s3.peak == s3.current);
  { auto c = em::empty({int64_t(1) << 18}); }  // 1 MiB
  const auto s4 = stats();
  CHECK(s4.peak - s3.current >= kMiB);
  CHECK(s4.peak - s3.current < 8 * kMiB);
}

TEST_CASE("a freed block is reused from the cache", "[memory]") {
  SECTION("small blocks") {
    void* first = nullptr;
    {
      auto t = em::empty({1000});
      first = t.data_ptr();
    }
    const auto s0 = stats();
    auto u = em::empty({1000});
    const auto s1 = stats();
    CHECK(s1.allocations == s0.allocations + 1);
    CHECK(s1.cache_hits == s0.cache_hits + 1);
    CHECK(u.data_ptr() == first);
    CHECK(s0.cached - s1.cached == s1.current - s0.current);
    CHECK(s1.current - s0.current >= u.nbytes());
    // a slightly different size of the same size class also hits
    u = em::Tensor();
    const auto s2 = stats();
    auto v = em::empty({999});
    CHECK(stats().cache_hits == s2.cache_hits + 1);
  }
  SECTION("large blocks") {
    { auto t = em::empty({int64_t(1) << 20}); }
    const auto s0 = stats();
    auto u = em::empty({int64_t(1) << 20});
    const auto s1 = stats();
    CHECK(s1.cache_hits == s0.cache_hits + 1);
    CHECK(s1.current - s0.current >= u.nbytes());
    CHECK(s0.cached - s1.cached == s1.current - s0.current);
  }
  SECTION("an op's result reuses its predecessor's block") {
    auto a = em::ones({4096});
    { auto r = a * 2.f; }
    const auto s0 = stats();
    auto r = a * 3.f;
    CHECK(stats().cache_hits > s0.cache_hits);
    CHECK(r.to_vector<float>()[4095] == 3.f);
  }
}

TEST_CASE("a freed block of any size class is reused for the same size", "[memory]") {
  // byte sizes around the size classes, incl. the largest small class (512 KiB..1 MiB)
  for (int64_t bytes : {int64_t(8), int64_t(100), int64_t(4096), int64_t(65537), int64_t(300000),
                        int64_t(600000), int64_t(800000), int64_t(1) << 20, int64_t(3) << 20}) {
    INFO(bytes << " bytes");
    { auto t = em::empty({bytes}, em::uint8); }
    const auto s0 = stats();
    auto u = em::empty({bytes}, em::uint8);
    const auto s1 = stats();
    CHECK(s1.cache_hits == s0.cache_hits + 1);
    CHECK(s1.current - s0.current >= static_cast<std::size_t>(bytes));
    CHECK(s0.cached - s1.cached == s1.current - s0.current);
  }
  // and empty_cache returns all of them: cached drops to 0, current is unchanged
  const auto cur = stats().current;
  em::empty_cache();
  CHECK(stats().cached == 0);
  CHECK(stats().current == cur);
}

TEST_CASE("cached bytes are visible and empty_cache releases them", "[memory]") {
  em::empty_cache();
  CHECK(stats().cached == 0);
  std::size_t block = 0;
  const auto cur0 = stats().current;
  {
    auto t = em::empty({int64_t(1) << 20});
    block = stats().current - cur0;
    CHECK(stats().cached == 0);
  }
  const auto s1 = stats();
  CHECK(s1.cached >= std::size_t(4) * kMiB);
  CHECK(s1.cached == block);
  CHECK(s1.current == cur0);
  {
    auto small = em::empty({100});
    CHECK(stats().cached == s1.cached);  // a different size class: no hit
  }
  CHECK(stats().cached > s1.cached);
  // live tensors are untouched by empty_cache
  auto live = em::full({1000}, 5.f);
  const auto cur = stats().current;
  em::empty_cache();
  const auto s2 = stats();
  CHECK(s2.cached == 0);
  CHECK(s2.current == cur);
  CHECK(live.to_vector<float>()[999] == 5.f);
  // after empty_cache a new allocation cannot be a cache hit
  auto fresh = em::empty({int64_t(1) << 20});
  CHECK(stats().cache_hits == s2.cache_hits);
}

TEST_CASE("eager c = a + b in a loop does not leak and peaks at inputs + 2 results", "[memory]") {
  const int64_t n = int64_t(1) << 20;  // 1M floats
  em::empty_cache();  // every block below is then exactly 4 MiB
  const auto base = stats().current;
  auto a = em::rand({n});
  const std::size_t block = stats().current - base;
  CHECK(block >= a.nbytes());
  auto b = em::rand({n});
  auto c = a + b;
  const auto s1 = stats();
  CHECK(s1.current - base == 3 * block);
  em::reset_peak_memory();
  for (int i = 0; i < 100; ++i) c = a + b;
  const auto s2 = stats();
  CHECK(s2.current == s1.current);
  CHECK(s2.peak - base <= 4 * block);  // a, b, the old c and the new one
  CHECK(s2.cache_hits - s1.cache_hits >= 99);
  CHECK(s2.allocations - s1.allocations == 100);
  CHECK(em::allclose(c, em::add(a, b)));
  // in place: no allocation at all
  em::reset_peak_memory();
  const auto s3 = stats();
  for (int i = 0; i < 10; ++i) c += a;
  const auto s4 = stats();
  CHECK(s4.current == s3.current);
  CHECK(s4.peak == s3.current);
  CHECK(s4.allocations == s3.allocations);
}

TEST_CASE("views do not allocate", "[memory]") {
  auto x = em::rand({4, 6});
  const auto s0 = stats();
  {
    auto r = x.reshape({6, 4});
    auto v = x.view({24});
    auto t = x.t();
    auto tr = x.transpose(0, 1);
    auto p = x.unsqueeze(0).permute({2, 1, 0});
    auto sl = x.slice(1, 0, 6, 2);
    auto sel = x.select(0, 1);
    auto idx = x[2];
    auto e = x.unsqueeze(0).expand({3, 4, 6});
    auto bt = x.broadcast_to({2, 4, 6});
    auto f = x.flatten();
    auto sq = x.unsqueeze(1).squeeze(1);
    auto sq_all = x.reshape({1, 4, 1, 6}).squeeze();
    auto c = x.contiguous();
    auto same = x.to(em::float32);
    auto sv = sl.reshape({12});  // step-2 rows that still line up: a view
    auto sv2 = sl.view({2, 6});
    const auto s1 = stats();
    CHECK(s1.current == s0.current);
    CHECK(s1.allocations == s0.allocations);
    for (const auto& w : {r, v, t, tr, p, sl, e, bt, f, sq, sq_all, c, same, sv, sv2})
      CHECK(w.data_ptr() == x.data_ptr());
    CHECK(sel.data_ptr() != nullptr);
    CHECK(idx.numel() == 6);
  }
  CHECK(stats().current == s0.current);
  // reshaping a transposed tensor must copy: one allocation
  {
    auto flat = x.t().reshape({24});
    CHECK(stats().allocations == s0.allocations + 1);
    CHECK(flat.data_ptr() != x.data_ptr());
  }
}

TEST_CASE("a view keeps its storage alive", "[memory]") {
  const auto s0 = stats();
  em::Tensor view;
  {
    auto base = em::arange(1000, em::float32);
    view = base.slice(0, 10, 20);
  }
  const auto s1 = stats();
  CHECK(s1.current - s0.current >= 4000);
  CHECK(view.to_vector<float>()[0] == 10.f);
  view = em::Tensor();
  CHECK(stats().current == s0.current);
}

TEST_CASE("failed ops allocate nothing and leak nothing", "[memory][errors]") {
  auto a = em::ones({2, 3}), b = em::ones({4});
  auto i = em::ones({3}, em::int32);
  auto e = em::ones({1, 3}).expand({4, 3});
  auto wide = em::ones({2, 2, 3});
  auto bad_index = em::tensor({9});
  const auto s0 = stats();
  CHECK_THROWS(a + b);
  CHECK_THROWS(em::matmul(a, a));
  CHECK_THROWS(em::sum(a, {5}));
  CHECK_THROWS(em::concat({a, b}));
  CHECK_THROWS(a.add_(wide));
  CHECK_THROWS(em::index_select(a, 0, bad_index));
  const auto s1 = stats();
  CHECK(s1.current == s0.current);
  CHECK(s1.allocations == s0.allocations);
  // in place failures with a scalar operand, and a failure inside a kernel
  CHECK_THROWS(i.add_(0.5));
  CHECK_THROWS(e.add_(1.f));
  auto big = em::ones(em::Shape(65, 1));  // a failure after the result is allocated
  const auto s2 = stats();
  CHECK_THROWS(big + big);
  CHECK_THROWS(em::where(big > 0, big, big));
  CHECK_THROWS(em::concat({big, big}));
  CHECK(stats().current == s2.current);
  big = em::Tensor();
  CHECK(stats().current == s0.current);
}

TEST_CASE("a reduction of a contiguous tensor does not copy it", "[memory]") {
  auto x = em::rand({256, 1024});
  em::reset_peak_memory();
  const auto s0 = stats();
  {
    auto s = em::sum(x);
    auto m = em::max(x, {1});
    auto r = em::sum(x, {0});
    CHECK(stats().current - s0.current < 16 * 1024);  // only the small results
  }
  CHECK(stats().peak - s0.current < 16 * 1024);
  CHECK(stats().current == s0.current);
}
