// Eager reductions and softmax at several sizes (bytes/s counts the input read).
#include <benchmark/benchmark.h>

#include <ember/ember.h>

namespace em = ember;

namespace {

void finish(benchmark::State& st, int64_t n) {
  st.SetItemsProcessed(st.iterations() * n);
  st.SetBytesProcessed(st.iterations() * n * static_cast<int64_t>(sizeof(float)));
}

void BM_sum_all(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n});
  { em::Tensor warm = em::sum(a); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::sum(a);
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, n);
}
BENCHMARK(BM_sum_all)->Arg(1)->Arg(64)->Arg(4096)->Arg(1 << 16)->Arg(1 << 20)->Arg(1 << 24);

void BM_max_all(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n});
  { em::Tensor warm = em::max(a); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::max(a);
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, n);
}
BENCHMARK(BM_max_all)->Arg(64)->Arg(1 << 20)->Arg(1 << 24);

// [n, n] reduced along the last dim (rows) and the first dim (columns).
void BM_sum_last_dim(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n, n});
  { em::Tensor warm = em::sum(a, {-1}); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::sum(a, {-1});
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, n * n);
}
BENCHMARK(BM_sum_last_dim)->Arg(64)->Arg(1024)->Arg(4096);

void BM_sum_first_dim(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n, n});
  { em::Tensor warm = em::sum(a, {0}); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::sum(a, {0});
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, n * n);
}
BENCHMARK(BM_sum_first_dim)->Arg(64)->Arg(1024)->Arg(4096);

void BM_mean_keepdims(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n, n});
  { em::Tensor warm = em::mean(a, {1}, true); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::mean(a, {1}, true);
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, n * n);
}
BENCHMARK(BM_mean_keepdims)->Arg(1024);

void BM_var_all(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n});
  { em::Tensor warm = em::var(a); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::var(a);
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, n);
}
BENCHMARK(BM_var_all)->Arg(1 << 20);

void BM_argmax_rows(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n, 1024});
  { em::Tensor warm = em::argmax(a, -1); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::argmax(a, -1);
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, n * 1024);
}
BENCHMARK(BM_argmax_rows)->Arg(64)->Arg(4096);

// softmax over the last dim of [rows, 1024].
void BM_softmax(benchmark::State& st) {
  const int64_t rows = st.range(0);
  em::Tensor a = em::randn({rows, 1024});
  { em::Tensor warm = em::softmax(a, -1); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::softmax(a, -1);
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, rows * 1024);
}
BENCHMARK(BM_softmax)->Arg(1)->Arg(64)->Arg(4096);

void BM_log_softmax(benchmark::State& st) {
  const int64_t rows = st.range(0);
  em::Tensor a = em::randn({rows, 1024});
  { em::Tensor warm = em::log_softmax(a, -1); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor s = em::log_softmax(a, -1);
    benchmark::DoNotOptimize(s.data_ptr());
  }
  finish(st, rows * 1024);
}
BENCHMARK(BM_log_softmax)->Arg(4096);

}  // namespace

BENCHMARK_MAIN();
