// Gradients: a 784-256-10 MLP training step (batch 64, float32) eager with
// GradientTape, captured with capture::function, and in LibTorch eager
// autograd (when built with LibTorch); and the eager gradient of a chain of 10
// elementwise ops against its forward time. Prints one markdown table;
// medians of interleaved reps (benchmarks/harness.h).
//
// Usage: bench_autograd [--reps=N]
#include <ember/capture.h>
#include <ember/ember.h>

#include "harness.h"

#ifdef EMBER_BENCH_TORCH
#include <torch/torch.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace em = ember;

namespace {

using bench::chain;

#ifdef EMBER_BENCH_TORCH
torch::Tensor to_torch(const em::Tensor& t) {
  const em::Tensor c = t.contiguous();
  std::vector<int64_t> shape(c.shape().begin(), c.shape().end());
  return torch::from_blob(const_cast<float*>(c.data<float>()), shape, torch::kFloat32).clone();
}
#endif

struct Mlp {
  em::Variable w1, b1, w2, b2;
};

// Softmax cross-entropy of a 784-256-10 MLP with relu; one-hot labels.
em::Tensor mlp_loss(const Mlp& m, const em::Tensor& x, const em::Tensor& onehot) {
  em::Tensor h = em::relu(em::matmul(x, m.w1.value()) + m.b1.value());
  em::Tensor logits = em::matmul(h, m.w2.value()) + m.b2.value();
  return -em::mean(em::sum(em::log_softmax(logits, -1) * onehot, {1}));
}

em::Tensor sgd_step(Mlp& m, const em::Tensor& x, const em::Tensor& onehot) {
  em::GradientTape tape;
  em::Tensor loss = mlp_loss(m, x, onehot);
  auto g = tape.gradient(loss, std::vector<em::Variable>{m.w1, m.b1, m.w2, m.b2});
  m.w1.assign_sub(g[0] * 0.01f);
  m.b1.assign_sub(g[1] * 0.01f);
  m.w2.assign_sub(g[2] * 0.01f);
  m.b2.assign_sub(g[3] * 0.01f);
  return loss;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 21;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--reps=", 7) == 0) reps = std::max(3, std::atoi(argv[i] + 7));
  bench::start_watchdog();
  const int threads = em::get_num_threads();
#ifdef EMBER_BENCH_TORCH
  torch::set_num_threads(threads);
  const char* torch_note = "LibTorch " TORCH_VERSION;
#else
  const char* torch_note = "LibTorch not built";
#endif
  std::printf("ember %s, %d threads (%s), medians of %d interleaved reps\n\n", em::cpu_arch_name(),
              threads, torch_note, reps);
  std::printf("| case | contender | median | ratio | target |\n|---|---|---|---|---|\n");

  // ---- MLP training step -------------------------------------------------
  {
    bench::stage("mlp");
    em::manual_seed(0);
    const em::Tensor x = em::randn({64, 784});
    const em::Tensor labels = em::randint(0, 10, {64});
    const em::Tensor onehot = (labels.unsqueeze(1) == em::arange(10, em::int64).unsqueeze(0)).to(em::float32);
    auto init = [] {
      return Mlp{em::Variable(em::randn({784, 256}) * 0.05f), em::Variable(em::zeros({256})),
                 em::Variable(em::randn({256, 10}) * 0.05f), em::Variable(em::zeros({10}))};
    };
    Mlp eager = init(), cap = init();
    auto captured = em::capture::function(
        [m = cap](const em::Tensor& xb, const em::Tensor& yb) mutable { return sgd_step(m, xb, yb); });
    std::vector<bench::Fn> fns = {
        [&] { bench::keep(sgd_step(eager, x, onehot)); },
        [&] { bench::keep(captured(x, onehot)); },
    };
    std::vector<std::string> names = {"ember eager (GradientTape)", "ember captured step"};
#ifdef EMBER_BENCH_TORCH
    // Same data and initial weights as ember's.
    auto tx = to_torch(x);
    auto tlabels = torch::from_blob(const_cast<int64_t*>(labels.data<int64_t>()), {64}, torch::kLong).clone();
    auto tw1 = to_torch(eager.w1.value()).requires_grad_();
    auto tb1 = to_torch(eager.b1.value()).requires_grad_();
    auto tw2 = to_torch(eager.w2.value()).requires_grad_();
    auto tb2 = to_torch(eager.b2.value()).requires_grad_();
    {
      // Correctness first: ember's gradients against LibTorch autograd's.
      em::GradientTape tape;
      auto eg = tape.gradient(mlp_loss(eager, x, onehot), std::vector<em::Variable>{eager.w1, eager.b1, eager.w2, eager.b2});
      auto h = torch::relu(torch::matmul(tx, tw1) + tb1);
      auto loss = torch::nll_loss(torch::log_softmax(torch::matmul(h, tw2) + tb2, -1), tlabels);
      loss.backward();
      double worst = 0;
      torch::Tensor* tp[4] = {&tw1, &tb1, &tw2, &tb2};
      for (int i = 0; i < 4; ++i) {
        worst = std::max(worst, (to_torch(eg[static_cast<std::size_t>(i)]) - tp[i]->grad()).abs().max().item<double>());
        tp[i]->mutable_grad().zero_();
      }
      std::printf("| MLP step | gradients vs LibTorch autograd | max abs difference %.2g | | %s |\n", worst,
                  worst < 1e-5 ? "agree" : "DIFFER");
    }
    fns.push_back([&] {
      auto h = torch::relu(torch::matmul(tx, tw1) + tb1);
      auto logits = torch::matmul(h, tw2) + tb2;
      auto loss = torch::nll_loss(torch::log_softmax(logits, -1), tlabels);
      loss.backward();
      torch::NoGradGuard ng;
      for (auto* p : {&tw1, &tb1, &tw2, &tb2}) {
        p->sub_(p->grad() * 0.01);
        p->mutable_grad().zero_();
      }
      bench::keep(loss);
    });
    names.push_back("LibTorch eager autograd");
#endif
    // Both libraries at ember's thread count and at 1 thread (on a small,
    // shared machine LibTorch's OpenMP team can lose more to spinning than it gains).
    for (int t : {threads, 1}) {
      em::set_num_threads(t);
#ifdef EMBER_BENCH_TORCH
      torch::set_num_threads(t);
#endif
      bench::Group grp(fns);
      grp.run_all(reps);
      const double base = grp.med(0);
      const std::string label = fmt::format("MLP 784-256-10 step, batch 64, {} thread{}", t, t > 1 ? "s" : "");
      for (std::size_t i = 0; i < fns.size(); ++i)
        std::printf("| %s | %s | %s | %.2fx eager time | |\n", label.c_str(), names[i].c_str(),
                    bench::fmt_time(grp.med(static_cast<int>(i))).c_str(), grp.med(static_cast<int>(i)) / base);
#ifdef EMBER_BENCH_TORCH
      const double r = grp.med(1) / grp.med(2);
      std::printf("| %s | captured / LibTorch | | %.2fx | %s (<= 1.00x) |\n", label.c_str(), r,
                  r <= 1.0 ? "MET" : "MISSED");
#endif
    }
    em::set_num_threads(threads);
    // Same results: a few more steps of each ember variant agree.
    const float le = sgd_step(eager, x, onehot).item<float>();
    const float lc = captured(x, onehot).item<float>();
    std::fprintf(stderr, "mlp: eager loss %.6f captured loss %.6f (each after its own step count)\n", le, lc);
  }

  // ---- gradient of a 10-op elementwise chain ------------------------------
  for (int64_t n : {int64_t{1} << 16, int64_t{1} << 20}) {
    bench::stage("chain");
    em::manual_seed(1);
    const em::Tensor x = em::randn({n});
    const em::Tensor seed = em::ones({n});
    auto forward = [&] { bench::keep(chain(x)); };
    auto recorded = [&] {
      em::GradientTape tape;
      tape.watch(x);
      bench::keep(chain(x));
    };
    auto full = [&] {
      em::GradientTape tape;
      tape.watch(x);
      em::Tensor y = chain(x);
      bench::keep(tape.gradient(y, {x}, seed));
    };
    bench::Group grp({forward, recorded, full});
    grp.run_all(reps);
    const double f = grp.med(0), r = grp.med(1), all = grp.med(2);
    const double back = all - r;
    const std::string label = fmt::format("10-op chain, {} f32", n);
    std::printf("| %s | forward, no tape | %s | 1.00x | |\n", label.c_str(), bench::fmt_time(f).c_str());
    std::printf("| %s | forward under a tape | %s | %.2fx forward | |\n", label.c_str(),
                bench::fmt_time(r).c_str(), r / f);
    std::printf("| %s | forward + gradient | %s | %.2fx forward | |\n", label.c_str(),
                bench::fmt_time(all).c_str(), all / f);
    std::printf("| %s | gradient alone (difference) | %s | %.2fx forward | %s (<= 2.00x) |\n",
                label.c_str(), bench::fmt_time(back).c_str(), back / f,
                back / f <= 2.0 ? "MET" : "MISSED");
  }
  return 0;
}
