// Eager matmul (float32 goes to OpenBLAS), next to cblas_sgemm called directly
// into a preallocated result, so the difference is ember's own overhead.
// Counter "FLOP/s" = 2*M*N*K per call.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <ember/ember.h>

#include <vector>

namespace em = ember;

namespace {

void flops(benchmark::State& st, double m, double n, double k, double batch = 1) {
  st.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k * batch * static_cast<double>(st.iterations()),
                                             benchmark::Counter::kIsRate);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {16, 64, 256, 1024, 2048}) b->Arg(n);
  b->Unit(benchmark::kMicrosecond);
}

void BM_matmul(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n, n}), b = em::rand({n, n});
  { em::Tensor warm = em::matmul(a, b); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  flops(st, n, n, n);
}
BENCHMARK(BM_matmul)->Apply(sizes);

// Transposed operand: passed to BLAS as a flag, not copied.
void BM_matmul_bt(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n, n}), b = em::rand({n, n});
  em::Tensor bt = b.t();
  { em::Tensor warm = em::matmul(a, bt); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::matmul(a, bt);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  flops(st, n, n, n);
}
BENCHMARK(BM_matmul_bt)->Arg(256)->Arg(1024)->Unit(benchmark::kMicrosecond);

void BM_sgemm_direct(benchmark::State& st) {
  const int n = static_cast<int>(st.range(0));
  em::Tensor a = em::rand({n, n}), b = em::rand({n, n});
  std::vector<float> c(static_cast<std::size_t>(n) * n);
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data<float>(), n,
                b.data<float>(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  flops(st, n, n, n);
}
BENCHMARK(BM_sgemm_direct)->Apply(sizes);

// Batched: [batch, 64, 64] @ [batch, 64, 64], and a broadcast weight [64, 64].
void BM_matmul_batched(benchmark::State& st) {
  const int64_t batch = st.range(0);
  em::Tensor a = em::rand({batch, 64, 64}), b = em::rand({batch, 64, 64});
  { em::Tensor warm = em::matmul(a, b); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  flops(st, 64, 64, 64, static_cast<double>(batch));
}
BENCHMARK(BM_matmul_batched)->Arg(8)->Arg(128)->Unit(benchmark::kMicrosecond);

void BM_matmul_broadcast_weight(benchmark::State& st) {
  const int64_t batch = st.range(0);
  em::Tensor a = em::rand({batch, 64, 64}), w = em::rand({64, 64});
  { em::Tensor warm = em::matmul(a, w); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::matmul(a, w);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  flops(st, 64, 64, 64, static_cast<double>(batch));
}
BENCHMARK(BM_matmul_broadcast_weight)->Arg(128)->Unit(benchmark::kMicrosecond);

// matrix @ vector
void BM_matvec(benchmark::State& st) {
  const int64_t n = st.range(0);
  em::Tensor a = em::rand({n, n}), v = em::rand({n});
  { em::Tensor warm = em::matmul(a, v); benchmark::DoNotOptimize(warm.data_ptr()); }  // warm-up
  for (auto _ : st) {
    em::Tensor c = em::matmul(a, v);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  flops(st, n, 1, n);
}
BENCHMARK(BM_matvec)->Arg(1024)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
