// ember::data pipeline throughput. The targets:
//   BM_range_batch/1048576: range(N).batch(1024) over int64 under 50 ns per element
//     (the ns_per_elem counter);
//   BM_parallel_map/2 vs BM_parallel_map/1: range(N).map(f, p).batch(64).prefetch(2) with a
//     ~20 us map function, at least 1.7x the elements per second on a 2-core machine
//     (compare items_per_second).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include <ember/data/dataset.h>
#include <ember/ember.h>

namespace em = ember;
namespace ed = ember::data;

namespace {

// Pure arithmetic (no clock reads, no sleeping), so that a worker that is
// descheduled does not count as working.
double spin(int64_t iters) {
  double acc = 1.0;
  for (int64_t i = 0; i < iters; ++i) acc = acc * 1.0000001 + 1e-9;
  return acc;
}

// The number of spin iterations that take about `us` microseconds on one core.
int64_t iters_for(double us) {
  static const double ns_per_iter = [] {
    const int64_t n = 2'000'000;
    auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(spin(n));
    auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n);
  }();
  return static_cast<int64_t>(us * 1000.0 / ns_per_iter);
}

// items_per_second from the wall time, and the same as nanoseconds per element.
void set_per_element(benchmark::State& st, int64_t n, double seconds) {
  const double elements = static_cast<double>(st.iterations() * n);
  st.SetItemsProcessed(st.iterations() * n);
  st.counters["ns_per_elem"] = seconds * 1e9 / elements;
}

// Runs one full pass over `ds` per benchmark iteration; returns the wall time of all passes.
template <class Count>
double time_passes(benchmark::State& st, const ed::Dataset& ds, Count count) {
  double seconds = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t total = 0;
    for (const ed::Element& e : ds) total += count(e);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(total);
  }
  return seconds;
}

void BM_range_batch(benchmark::State& st) {
  const int64_t n = st.range(0);
  auto ds = ed::Dataset::range(n).batch(1024);
  set_per_element(st, n, time_passes(st, ds, [](const ed::Element& b) { return b[0].numel(); }));
}
BENCHMARK(BM_range_batch)->Arg(1 << 20)->UseRealTime();

void BM_slices_batch(benchmark::State& st) {
  const int64_t n = st.range(0);
  auto ds = ed::Dataset::from_tensor_slices({em::rand({n, 8}), em::arange(n)}).batch(1024);
  set_per_element(st, n, time_passes(st, ds, [](const ed::Element& b) { return b[1].numel(); }));
}
BENCHMARK(BM_slices_batch)->Arg(1 << 20)->UseRealTime();

// One 0-d tensor per element: the cost of the element-at-a-time path.
void BM_range_elements(benchmark::State& st) {
  const int64_t n = st.range(0);
  auto ds = ed::Dataset::range(n);
  set_per_element(st, n,
                  time_passes(st, ds, [](const ed::Element& v) { return *v[0].data<int64_t>(); }));
}
BENCHMARK(BM_range_elements)->Arg(1 << 16)->UseRealTime();

// The element-at-a-time path through map and batch (stack).
void BM_range_map_batch(benchmark::State& st) {
  const int64_t n = st.range(0);
  auto ds = ed::Dataset::range(n).map([](em::Tensor x) { return x; }).batch(64);
  set_per_element(st, n, time_passes(st, ds, [](const ed::Element& b) { return b[0].numel(); }));
}
BENCHMARK(BM_range_map_batch)->Arg(1 << 16)->UseRealTime();

void BM_parallel_map(benchmark::State& st) {
  const int workers = static_cast<int>(st.range(0));
  const int64_t n = 4000;
  const int64_t iters = iters_for(20.0);
  auto ds = ed::Dataset::range(n)
                .map(
                    [iters](em::Tensor x) {
                      benchmark::DoNotOptimize(spin(iters));
                      return x + 1;
                    },
                    workers)
                .batch(64)
                .prefetch(2);
  set_per_element(st, n, time_passes(st, ds, [](const ed::Element& b) { return b[0].numel(); }));
  st.counters["spin_us"] = static_cast<double>(iters) / static_cast<double>(iters_for(1.0));
}
BENCHMARK(BM_parallel_map)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
