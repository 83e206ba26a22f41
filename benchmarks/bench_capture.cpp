// Graph capture vs eager ember vs a hand-written single-pass xsimd loop (and
// LibTorch eager / TorchScript when built with LibTorch), for the targets of
// the capture issue. Prints one markdown table; medians of interleaved reps.
//
// Usage: bench_capture [--reps=N]
#include <ember/capture.h>
#include <ember/ember.h>

#include "harness.h"

#ifdef EMBER_BENCH_TORCH
#include <torch/script.h>
#include <torch/torch.h>
#endif

#include <cstdio>
#include <cstring>
#include <string>

namespace em = ember;
namespace cap = ember::capture;

namespace {

using bench::chain;

// The same chain written by hand as one pass with xsimd (hand_chain.cpp,
// compiled for AVX-512 and for the baseline): the reference a fused kernel is
// held against.
}  // namespace

void hand_chain_avx512(const float* x, float* out, int64_t b, int64_t e);
void hand_chain_baseline(const float* x, float* out, int64_t b, int64_t e);

namespace {

void hand_chain(const float* x, float* out, int64_t n, int threads) {
  static const bool avx512 = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  bench::parallel_parts(n, threads, [&](int64_t b, int64_t e) {
    if (avx512)
      hand_chain_avx512(x, out, b, e);
    else
      hand_chain_baseline(x, out, b, e);
  });
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 15;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--reps=", 7) == 0) reps = std::atoi(argv[i] + 7);
  const int threads = em::get_num_threads();
  std::printf("ember %s, %d threads, EMBER_CPU_ARCH=%s\n\n", em::cpu_arch_name(), threads,
              std::getenv("EMBER_CPU_ARCH") ? std::getenv("EMBER_CPU_ARCH") : "(auto)");
  std::printf("| case | contender | median | ratio |\n|---|---|---|---|\n");
  auto fn = cap::function([](em::Tensor x) { return chain(x); });

  for (int64_t n : {int64_t(1) << 20, int64_t(1) << 24}) {
    const std::string label = n == (1 << 20) ? "10-op chain, 1M f32" : "10-op chain, 16M f32";
    em::manual_seed(1);
    em::Tensor x = em::randn({n});
    em::Tensor out = em::empty({n});
    fn(x);  // trace
    std::vector<bench::Fn> fns = {
        [&] { bench::keep(chain(x)); },
        [&] { bench::keep(fn(x)); },
        [&] { hand_chain(x.data<float>(), out.data<float>(), n, threads); },
    };
    std::vector<std::string> names = {"ember eager", "ember fused replay", "hand-written xsimd loop"};
#ifdef EMBER_BENCH_TORCH
    c10::InferenceMode guard;
    torch::set_num_threads(threads);
    torch::Tensor tx = torch::randn({n});
    auto tchain = [](const torch::Tensor& x) {
      auto t = x * 1.5f;
      t = t + 0.5f;
      t = torch::relu(t);
      t = t * x;
      t = t - 0.25f;
      t = torch::tanh(t);
      t = t * 0.75f;
      t = t + x;
      t = torch::sigmoid(t);
      return t * t;
    };
    auto cu = torch::jit::compile(R"JIT(
def f(x):
    t = x * 1.5
    t = t + 0.5
    t = torch.relu(t)
    t = t * x
    t = t - 0.25
    t = torch.tanh(t)
    t = t * 0.75
    t = t + x
    t = torch.sigmoid(t)
    return t * t
)JIT");
    fns.push_back([&] { bench::keep(tchain(tx)); });
    fns.push_back([&] { bench::keep(cu->run_method("f", tx)); });
    names.push_back("LibTorch eager");
    names.push_back("TorchScript");
#endif
    bench::Group g(fns);
    g.run_all(reps);
    const double eager = g.med(0);
    for (std::size_t i = 0; i < fns.size(); ++i)
      std::printf("| %s | %s | %s | %.2fx eager time |\n", label.c_str(), names[i].c_str(),
                  bench::fmt_time(g.med(static_cast<int>(i))).c_str(), g.med(static_cast<int>(i)) / eager);
    std::printf("| %s | fused vs hand loop | | %.2fx the hand loop's speed |\n", label.c_str(),
                g.med(2) / g.med(1));
    if (n == (int64_t(1) << 24)) {
      // Peak memory of one replay: inputs + outputs + at most one temporary.
      em::Tensor warm = fn(x);
      warm = em::Tensor();
      em::reset_peak_memory();
      const std::size_t before = em::memory_stats().current;
      { em::Tensor r = fn(x); }
      const double peak_extra = static_cast<double>(em::memory_stats().peak - before) / (n * 4.0);
      std::printf("| %s | replay peak memory above inputs | %.2f x 64 MiB | target <= 2 (output + 1 temp) |\n",
                  label.c_str(), peak_extra);
    }
  }

  // Replay overhead: 100 elementwise ops on 16 elements.
  auto hundred = [](em::Tensor x) {
    em::Tensor t = x;
    for (int i = 0; i < 100; ++i) t = (i % 2) ? t * 1.0001f : t + 0.001f;
    return t;
  };
  em::Tensor small = em::rand({16});
  cap::Options nofuse;
  nofuse.fuse = false;
  cap::Graph g_plain = cap::trace(hundred, small);
  auto f_nofuse = cap::function(hundred, nofuse);
  f_nofuse(small);
  cap::Graph g_nofuse = f_nofuse.graph_for(small);
  std::vector<bench::Fn> fns = {
      [&] { bench::keep(hundred(small)); },
      [&] { bench::keep(g_nofuse.run({small})); },
      [&] { bench::keep(g_plain.run({small})); },
  };
  bench::Group g(fns, 0.005);
  g.run_all(reps);
  const char* names[] = {"ember eager", "Graph::run, fusion off", "Graph::run, fused"};
  for (int i = 0; i < 3; ++i)
    std::printf("| 100 ops on 16 f32 | %s | %s | %.1f ns per traced op |\n", names[i],
                bench::fmt_time(g.med(i)).c_str(), g.med(i) * 1e9 / 100);
  return 0;
}
