// Eager elementwise ops at several sizes: what one `auto c = op(a, b);` costs,
// result allocation included (the caching allocator serves it). Small sizes
// show dispatch overhead, large ones memory bandwidth (bytes/s counts the
// inputs read and the output written).
#include <benchmark/benchmark.h>

#include <ember/ember.h>

namespace em = ember;

namespace {

void set_sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1, 64, 4096, 1 << 16, 1 << 20, 1 << 24}) b->Arg(n);
}

void finish(benchmark::State& st, int64_t n, int tensors) {
  st.SetItemsProcessed(st.iterations() * n);
  st.SetBytesProcessed(st.iterations() * n * tensors * static_cast<int64_t>(sizeof(float)));
}

void BM_add(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n}), b = em::rand({n});
  { em::Tensor warm = a + b; benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = a + b;
    benchmark::DoNotOptimize(c.data_ptr());
  }
  finish(st, n, 3);
}
BENCHMARK(BM_add)->Apply(set_sizes);

void BM_mul_scalar(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n});
  { em::Tensor warm = a * 2.0f; benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = a * 2.0f;
    benchmark::DoNotOptimize(c.data_ptr());
  }
  finish(st, n, 2);
}
BENCHMARK(BM_mul_scalar)->Apply(set_sizes);

void BM_add_inplace(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n}), b = em::rand({n});
  for (auto _ : st) {
    a += b;
    benchmark::DoNotOptimize(a.data_ptr());
    benchmark::ClobberMemory();
  }
  finish(st, n, 3);
}
BENCHMARK(BM_add_inplace)->Apply(set_sizes);

void BM_exp(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n});
  { em::Tensor warm = em::exp(a); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::exp(a);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  finish(st, n, 2);
}
BENCHMARK(BM_exp)->Apply(set_sizes);

void BM_tanh(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::randn({n});
  { em::Tensor warm = em::tanh(a); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::tanh(a);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  finish(st, n, 2);
}
BENCHMARK(BM_tanh)->Apply(set_sizes);

void BM_relu(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::randn({n});
  { em::Tensor warm = em::relu(a); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::relu(a);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  finish(st, n, 2);
}
BENCHMARK(BM_relu)->Apply(set_sizes);

// Row-vector broadcast: [rows, 1024] + [1024].
void BM_add_broadcast_row(benchmark::State& st) {
  const int64_t rows = st.range(0);
  em::Tensor a = em::rand({rows, 1024}), b = em::rand({1024});
  { em::Tensor warm = a + b; benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = a + b;
    benchmark::DoNotOptimize(c.data_ptr());
  }
  finish(st, rows * 1024, 2);
}
BENCHMARK(BM_add_broadcast_row)->Arg(1)->Arg(64)->Arg(4096);

// Non-contiguous input: a transposed view goes through the strided loops.
void BM_add_transposed(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n, n}), b = em::rand({n, n});
  em::Tensor at = a.t();
  { em::Tensor warm = at + b; benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = at + b;
    benchmark::DoNotOptimize(c.data_ptr());
  }
  finish(st, n * n, 3);
}
BENCHMARK(BM_add_transposed)->Arg(64)->Arg(1024);

// A chain users write: relu(a * b - 1).
void BM_chain(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n}), b = em::rand({n});
  { em::Tensor warm = em::relu(a * b - 1.0f); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::relu(a * b - 1.0f);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  st.SetItemsProcessed(st.iterations() * n);
}
BENCHMARK(BM_chain)->Arg(64)->Arg(1 << 16)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
