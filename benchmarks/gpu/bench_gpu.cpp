// GPU benchmark table (issue #6 targets), side by side in one process:
//  1. 256M-element float32 add vs a device-to-device copy (bytes read + written);
//  2. matmul 8192 float32 / bfloat16 vs cuBLAS called directly;
//  3. 100 small elementwise ops: eager launches vs one CUDA-graph replay
//     (capture::function), fused and unfused;
//  4. a TF1 feed/fetch loop (MLP 784-256-256-10, batch 64, host batch in,
//     host probabilities out) on a /gpu:0 session vs the same model eager on
//     the GPU (the shim's target, on the GPU).
// Times are medians of repeated runs, taken with CUDA events on the stream ops use.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <utility>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <ember/capture.h>
#include <ember/compat/v1.h>
#include <ember/cuda.h>
#include <ember/ember.h>

namespace em = ember;
using em::Tensor;

namespace {

const em::Device kGpu = em::Device::cuda(0);

#define CK(x)                                                              \
  do {                                                                     \
    auto e_ = (x);                                                         \
    if (e_ != 0) {                                                         \
      std::fprintf(stderr, "%s failed: %d\n", #x, static_cast<int>(e_)); \
      std::exit(1);                                                        \
    }                                                                      \
  } while (0)

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Median milliseconds of `reps` runs of fn, timed with events on the current stream.
double time_ms(const std::function<void()>& fn, int reps, int warmup = 3) {
  auto s = static_cast<cudaStream_t>(em::cuda::current_stream(kGpu).handle());
  for (int i = 0; i < warmup; ++i) fn();
  CK(cudaStreamSynchronize(s));
  std::vector<double> t;
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(a, s));
    fn();
    CK(cudaEventRecord(b, s));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return median(std::move(t));
}

// Host wall time per call (for launch-bound work): median over batches.
double wall_us(const std::function<void()>& fn, int calls, int batches = 7) {
  for (int i = 0; i < 3; ++i) fn();
  em::cuda::synchronize(kGpu);
  std::vector<double> t;
  for (int b = 0; b < batches; ++b) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) fn();
    em::cuda::synchronize(kGpu);
    auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / calls);
  }
  return median(std::move(t));
}

}  // namespace

int main() {
  if (!em::cuda_available()) {
    std::puts("no CUDA device: GPU benchmarks skipped");
    return 77;
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n\n", prop.name, prop.multiProcessorCount);
  auto stream = static_cast<cudaStream_t>(em::cuda::current_stream(kGpu).handle());

  // ---- 1. bandwidth: add vs device-to-device copy ----
  const int64_t n = int64_t(256) << 20;
  em::manual_seed(1);
  Tensor a = em::rand({n}, em::float32, kGpu), b = em::rand({n}, em::float32, kGpu);
  Tensor c = em::empty({n}, em::float32, kGpu);
  const double bytes = static_cast<double>(n) * 4;
  const double copy_ms = time_ms([&] { CK(cudaMemcpyAsync(c.data_ptr(), a.data_ptr(), n * 4, cudaMemcpyDeviceToDevice, stream)); }, 20);
  const double add_ms = time_ms([&] { Tensor r = a + b; }, 20);
  const double copy_gbs = 2 * bytes / copy_ms / 1e6, add_gbs = 3 * bytes / add_ms / 1e6;
  a = b = c = Tensor();

  // ---- 2. matmul 8192 vs cuBLAS ----
  const int64_t N = 8192;
  double mm[2][2];
  cublasHandle_t h;
  CK(cublasCreate(&h));
  CK(cublasSetStream(h, stream));
  const em::DType dts[2] = {em::float32, em::bfloat16};
  for (int k = 0; k < 2; ++k) {
    const em::DType dt = dts[k];
    Tensor x = em::randn({N, N}, em::float32, kGpu).to(dt), y = em::randn({N, N}, em::float32, kGpu).to(dt);
    Tensor z = em::empty({N, N}, dt, kGpu);
    const cudaDataType_t t = dt == em::float32 ? CUDA_R_32F : CUDA_R_16BF;
    const float one = 1, zero = 0;
    mm[k][0] = time_ms([&] { Tensor r = em::matmul(x, y); }, 10);
    mm[k][1] = time_ms([&] {
      CK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &one, y.data_ptr(), t, N, x.data_ptr(), t, N, &zero,
                      z.data_ptr(), t, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }, 10);
  }
  cublasDestroy(h);

  // ---- 3. 100 small elementwise ops: eager vs CUDA graph ----
  auto chain = [](const Tensor& x, const Tensor& y) {
    Tensor t = x;
    for (int i = 0; i < 100; ++i) t = (i % 2 == 0) ? t * y : t + y;
    return t;
  };
  Tensor x = em::rand({1024}, em::float32, kGpu), y = em::rand({1024}, em::float32, kGpu);
  const double eager_us = wall_us([&] { Tensor r = chain(x, y); }, 50);
  em::capture::Options nofuse;
  nofuse.fuse = false;
  auto graph_unfused = em::capture::function(chain, nofuse);
  auto graph_fused = em::capture::function(chain);
  const double unfused_us = wall_us([&] { Tensor r = graph_unfused(x, y); }, 200);
  const double fused_us = wall_us([&] { Tensor r = graph_fused(x, y); }, 200);

  // ---- 4. TF1 session on the GPU: MLP feed/fetch loop vs eager ----
  namespace tf = em::compat::v1;
  em::manual_seed(3);
  const Tensor w1 = em::randn({784, 256}) * 0.1f, b1 = em::randn({256}) * 0.1f, w2 = em::randn({256, 256}) * 0.1f,
               b2 = em::randn({256}) * 0.1f, w3 = em::randn({256, 10}) * 0.1f, b3 = em::randn({10}) * 0.1f;
  const Tensor gw1 = w1.to(kGpu), gb1 = b1.to(kGpu), gw2 = w2.to(kGpu), gb2 = b2.to(kGpu), gw3 = w3.to(kGpu),
               gb3 = b3.to(kGpu);
  auto mlp = [&](const Tensor& host_batch) {
    const Tensor in = host_batch.to(kGpu);
    Tensor h = em::relu(em::matmul(in, gw1) + gb1);
    h = em::relu(em::matmul(h, gw2) + gb2);
    return em::softmax(em::matmul(h, gw3) + gb3).to(em::Device::cpu());
  };
  std::vector<Tensor> batches;
  for (int i = 0; i < 8; ++i) batches.push_back(em::randn({64, 784}));
  std::size_t k = 0;
  auto next = [&]() -> const Tensor& { return batches[k++ % batches.size()]; };
  tf::Graph g;
  Tensor px, probs;
  tf::Operation init;
  {
    auto scope = g.as_default();
    px = tf::placeholder(em::float32, {-1, 784}, "x");
    tf::Variable v1(w1, "w1"), c1(b1, "b1"), v2(w2, "w2"), c2(b2, "b2"), v3(w3, "w3"), c3(b3, "b3");
    auto h1 = tf::nn::relu(tf::nn::bias_add(tf::matmul(px, v1), c1));
    auto h2 = tf::nn::relu(tf::nn::bias_add(tf::matmul(h1, v2), c2));
    probs = tf::nn::softmax(tf::nn::bias_add(tf::matmul(h2, v3), c3));
    init = tf::global_variables_initializer();
  }
  tf::SessionOptions on_gpu;
  on_gpu.device = "/gpu:0";
  double sess_us = 0, call_us = 0, mlp_eager_us = 0, mlp_fn_us = 0;
  {
    tf::Session sess(g, on_gpu);
    sess.run(init);
    auto call = sess.make_callable({probs}, {px});
    auto fn = em::capture::function(mlp);
    const Tensor ref = mlp(batches[0]);
    if (!em::allclose(sess.run(probs, {{px, batches[0]}}), ref, 1e-4, 1e-6) ||
        !em::allclose(call({batches[0]})[0], ref, 1e-4, 1e-6) || !em::allclose(fn(batches[0]), ref, 1e-4, 1e-6)) {
      std::fprintf(stderr, "bench_gpu: the MLP contenders disagree\n");
      return 1;
    }
    // Interleaved rounds; the median of each contender's round medians.
    std::vector<double> te, ts, tc, tf_;
    for (int round = 0; round < 5; ++round) {
      te.push_back(wall_us([&] { Tensor r = mlp(next()); }, 200, 3));
      ts.push_back(wall_us([&] { Tensor r = sess.run(probs, {{px, next()}}); }, 200, 3));
      tc.push_back(wall_us([&] { auto r = call({next()}); }, 200, 3));
      tf_.push_back(wall_us([&] { Tensor r = fn(next()); }, 200, 3));
    }
    mlp_eager_us = median(te);
    sess_us = median(ts);
    call_us = median(tc);
    mlp_fn_us = median(tf_);
  }

  std::printf("| benchmark | ember | baseline | ratio | target |\n|---|---|---|---|---|\n");
  std::printf("| add 256M float32 vs D2D copy | %.0f GB/s (%.2f ms) | %.0f GB/s (%.2f ms) | %.2f | >= 0.85 |\n",
              add_gbs, add_ms, copy_gbs, copy_ms, add_gbs / copy_gbs);
  for (int k = 0; k < 2; ++k) {
    const double fl = 2.0 * N * N * N;
    std::printf("| matmul 8192 %s vs cublasGemmEx | %.1f TFLOP/s (%.2f ms) | %.1f TFLOP/s (%.2f ms) | %.2f | >= 0.95 |\n",
                k == 0 ? "float32" : "bfloat16", fl / mm[k][0] / 1e9, mm[k][0], fl / mm[k][1] / 1e9, mm[k][1],
                mm[k][1] / mm[k][0]);
  }
  std::printf("| 100 ops on 1024 floats: CUDA graph (unfused) vs eager | %.1f us | %.1f us | %.1fx faster | >= 5x |\n",
              unfused_us, eager_us, eager_us / unfused_us);
  std::printf("| 100 ops on 1024 floats: CUDA graph (fused) vs eager | %.1f us | %.1f us | %.1fx faster | >= 5x |\n",
              fused_us, eager_us, eager_us / fused_us);
  const char* mlp_row = "| MLP 784-256-256-10 batch 64, host in/out: %s vs eager GPU | %.1f us | %.1f us | %.2fx the time | %s |\n";
  std::printf(mlp_row, "sess.run on /gpu:0", sess_us, mlp_eager_us, sess_us / mlp_eager_us, "<= 1x");
  std::printf(mlp_row, "make_callable on /gpu:0", call_us, mlp_eager_us, call_us / mlp_eager_us, "<= 1x");
  std::printf(mlp_row, "capture::function", mlp_fn_us, mlp_eager_us, mlp_fn_us / mlp_eager_us, "-");
  return 0;
}
