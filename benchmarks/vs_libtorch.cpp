// ember vs LibTorch (and plain reference loops, and OpenBLAS called directly),
// measured in one process, printed as one markdown table.
//
// Method: every contender of a row is warmed up, then timed in batches of
// calls (a batch lasts ~5 ms for tiny ops, ~30 ms for large ones, one call for
// a large matmul); the contenders' batches are interleaved rep by rep, so a
// burst of load from elsewhere on the machine hits all of them alike; the
// median of the per-call times over the reps is reported. Results are kept
// alive through benchmark::DoNotOptimize so no work is optimized away.
//
// LibTorch runs under c10::InferenceMode (what eager inference code uses) with
// torch::set_num_threads equal to ember's thread count in every row.
//
// Usage: vs_libtorch [--reps=N]   (N: repetitions per row, default 21)
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <ember/ember.h>

#include "harness.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace em = ember;

namespace {

using namespace bench;


int g_reps = 21;
#ifdef __OPTIMIZE__
constexpr bool kOptimized = true;
#else
constexpr bool kOptimized = false;
#endif

void set_threads(int n) {
  em::set_num_threads(n);
  torch::set_num_threads(n);
}


// ---- reference loops --------------------------------------------------------
// Compiled at -O3 (meson's release build type) for the widest ISA the CPU has
// (function multiversioning), checked with -fopt-info-vec to vectorize:
// the add loop as plain vector loads/adds/stores, the sum loop's 64 independent
// accumulators as 4 zmm (8 ymm) registers, so no -ffast-math is needed.

REF_CLONES void stream_add(
    const float* __restrict a, const float* __restrict b, float* __restrict c, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
}

REF_CLONES float simd_sum(const float* __restrict a,
                                                                         std::size_t n) {
  constexpr std::size_t K = 64;
  float acc[K] = {};
  std::size_t i = 0;
  for (; i + K <= n; i += K)
    for (std::size_t j = 0; j < K; ++j) acc[j] += a[i + j];
  float s = 0;
  for (; i < n; ++i) s += a[i];
  for (std::size_t j = 0; j < K; ++j) s += acc[j];
  return s;
}

// A minimal persistent thread team for the reference loops (what an OpenMP
// `parallel for schedule(static)` does): workers spin briefly, then sleep,
// between jobs; run() splits [0, n) into one static part per thread, the
// calling thread taking part 0, and returns when all parts are done.

// ---- the table ----------------------------------------------------------------

struct Row {
  std::string name, threads, ember, torch, ref, ratio, target, verdict;
};
std::vector<Row> g_rows;

std::string fmtv(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string ratio_str(double r) { return fmtv("%.2fx", r); }
std::string verdict(bool ok, double r) { return std::string(ok ? "MET " : "MISSED ") + ratio_str(r); }

const char* env_or(const char* name, const char* dflt = "(unset)") {
  const char* v = std::getenv(name);
  return v ? v : dflt;
}

int avx512_flag() {
#if REF_HAVE_CPU_CHECK
  return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
  return 0;
#endif
}

double loadavg1() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

torch::Tensor to_torch(const em::Tensor& t) {
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  return torch::from_blob(const_cast<float*>(t.data<float>()), shape, torch::kFloat32).clone();
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--reps=", 7) == 0) g_reps = std::max(3, std::atoi(argv[i] + 7));

  start_watchdog();
  c10::InferenceMode inference_mode;
  const int torch_default_threads = torch::get_num_threads();
  const int N = em::get_num_threads();  // ember's default: EMBER_NUM_THREADS or the core count
  const std::string Nt = std::to_string(N);
  const double load_start = loadavg1();
  const auto t_start = Clock::now();

  std::printf("# ember vs LibTorch %s, same process\n\n", TORCH_VERSION);
  std::printf("- ember cpu arch: %s; ember threads: %d (its default); LibTorch threads: %d by default, "
              "set with torch::set_num_threads to ember's count in every row (%d except the 1-thread rows)\n",
              em::cpu_arch_name(), N, torch_default_threads, N);
  std::printf("- OpenBLAS: %s; core %s; threads %d (used by ember's matmul and the direct sgemm)\n",
              openblas_get_config(), openblas_get_corename(), openblas_get_num_threads());
  std::printf("- env: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s OPENBLAS_NUM_THREADS=%s "
              "OMP_NUM_THREADS=%s EMBER_NUM_THREADS=%s\n",
              env_or("OPENBLAS_CORETYPE"), env_or("OPENBLAS_L2_SIZE"), env_or("OPENBLAS_NUM_THREADS"),
              env_or("OMP_NUM_THREADS"), env_or("EMBER_NUM_THREADS"));
  std::printf("- reference loops: %s build, vectorized (target_clones avx512f/avx2/default; this CPU: "
              "avx512f=%d)\n",
              kOptimized ? "optimized" : "unoptimized", avx512_flag());
  std::printf("- medians of %d interleaved reps per row (31 for latency, 15 for matmul); each rep times a "
              "batch of calls\n\n",
              g_reps);
  std::fflush(stdout);

  set_threads(N);
  em::manual_seed(0);
  const int64_t big = int64_t{1} << 24, mid = int64_t{1} << 20;
  em::Tensor A = em::rand({big}), B = em::rand({big});
  torch::Tensor tA = to_torch(A), tB = to_torch(B);
  em::Tensor M1 = em::rand({mid}), M2 = em::rand({mid});
  torch::Tensor tM1 = to_torch(M1), tM2 = to_torch(M2);
  std::vector<float> Cbuf(static_cast<std::size_t>(big));
  std::memset(Cbuf.data(), 0, Cbuf.size() * sizeof(float));  // fault the pages in
  const float* pa = A.data<float>();
  const float* pb = B.data<float>();
  float* pc = Cbuf.data();
  volatile float sink = 0;

  // ---- bandwidth at 1 and N threads: 16M add, 16M sum, 1M add -----------------------
  // The thread count alternates in rounds (1, N, 1, N, 1, N); samples pool
  // across rounds, so drifts in machine load hit both counts alike.
  struct PerThreads {
    int threads;
    Group add, sum, mid_add;
  };
  std::vector<std::unique_ptr<RefTeam>> teams;
  auto make_per = [&](int t) {
    teams.push_back(std::make_unique<RefTeam>(t));
    RefTeam* team = teams.back().get();
    return PerThreads{
        t,
        Group({[&] {
                 em::Tensor c = A + B;
                 benchmark::DoNotOptimize(c.data_ptr());
               },
               [&] {
                 torch::Tensor c = tA + tB;
                 benchmark::DoNotOptimize(c.data_ptr());
               },
               [&, team] {
                 team->run(static_cast<std::size_t>(big),
                           [&](int, std::size_t b, std::size_t e) { stream_add(pa + b, pb + b, pc + b, e - b); });
                 benchmark::DoNotOptimize(pc);
                 benchmark::ClobberMemory();
               }}),
        Group({[&] {
                 em::Tensor s = em::sum(A);
                 benchmark::DoNotOptimize(s.data_ptr());
               },
               [&] {
                 torch::Tensor s = tA.sum();
                 benchmark::DoNotOptimize(s.data_ptr());
               },
               [&, team] {
                 float part[64] = {};
                 team->run(static_cast<std::size_t>(big),
                           [&](int k, std::size_t b, std::size_t e) { part[k] = simd_sum(pa + b, e - b); });
                 float s = 0;
                 for (float p : part) s += p;
                 sink = s;
               }}),
        Group({[&] {
                 em::Tensor c = M1 + M2;
                 benchmark::DoNotOptimize(c.data_ptr());
               },
               [&] {
                 torch::Tensor c = tM1 + tM2;
                 benchmark::DoNotOptimize(c.data_ptr());
               }},
              0.01)};
  };
  std::vector<PerThreads> per;
  per.push_back(make_per(1));
  if (N > 1) per.push_back(make_per(N));
  const int rounds = 3, reps_per_round = std::max(1, (g_reps + rounds - 1) / rounds);
  for (int round = 0; round < rounds; ++round)
    for (auto& p : per) {
      set_threads(p.threads);
      if (p.threads > 1) {
        stage(kPoolStage, 30);
        em::Tensor w = M1 + M2;  // 1M elements: goes parallel
        benchmark::DoNotOptimize(w.data_ptr());
      }
      stage("bandwidth rows");
      p.mid_add.run_all(reps_per_round);
      p.add.run_all(reps_per_round);
      p.sum.run_all(reps_per_round);
    }
  set_threads(N);
  stage("main rows");

  // ---- eager a + b latency ------------------------------------------------------
  for (int64_t n : {1, 64, 4096}) {
    em::Tensor a = em::rand({n}), b = em::rand({n});
    torch::Tensor ta = to_torch(a), tb = to_torch(b);
    Group g({[&] {
               em::Tensor c = a + b;
               benchmark::DoNotOptimize(c.data_ptr());
             },
             [&] {
               torch::Tensor c = ta + tb;
               benchmark::DoNotOptimize(c.data_ptr());
             }},
            0.005);
    g.run_all(std::max(g_reps, 31));
    const double r = g.med(0) / g.med(1);
    Row row{"a+b eager latency, " + std::to_string(n) + " f32", Nt, fmt_time(g.med(0)),
            fmt_time(g.med(1)), "", ratio_str(r), "", ""};
    if (n == 64) {
      row.target = "ember/torch time <= 0.30x";
      row.verdict = verdict(r <= 0.30, r);
    }
    g_rows.push_back(row);
  }

  // ---- 16M elementwise / reductions, softmax -----------------------------------------
  // One row of ember vs LibTorch: fe and ft return the result tensor.
  auto versus = [&](const std::string& name, auto fe, auto ft) {
    Group g({[&] {
               em::Tensor r = fe();
               benchmark::DoNotOptimize(r.data_ptr());
             },
             [&] {
               torch::Tensor r = ft();
               benchmark::DoNotOptimize(r.data_ptr());
             }});
    g.run_all(g_reps);
    g_rows.push_back({name, Nt, fmt_time(g.med(0)), fmt_time(g.med(1)), "", ratio_str(g.med(0) / g.med(1)), "", ""});
  };
  versus("add 16M f32 (c = a + b, fresh c)", [&] { return A + B; }, [&] { return tA + tB; });
  versus("exp 16M f32", [&] { return em::exp(A); }, [&] { return torch::exp(tA); });
  versus("sum 16M f32 (all)", [&] { return em::sum(A); }, [&] { return tA.sum(); });
  {
    em::Tensor X = em::randn({4096, 1024});
    torch::Tensor tX = to_torch(X);
    versus("softmax [4096,1024] dim -1", [&] { return em::softmax(X, -1); }, [&] { return torch::softmax(tX, -1); });
    versus("argmax [4096,1024] dim -1", [&] { return em::argmax(X, -1); }, [&] { return tX.argmax(-1); });
  }
  {
    em::Tensor X = A.reshape({4096, 4096});
    torch::Tensor tX = tA.reshape({4096, 4096});
    versus("sum [4096,4096] dim 0", [&] { return em::sum(X, {0}); }, [&] { return tX.sum(0); });
    versus("var 1M f32 (all)", [&] { return em::var(M1); }, [&] { return tM1.var(); });
  }
  {
    em::Tensor X = em::rand({1024, 1024}), Y = em::rand({1024, 1024});
    torch::Tensor tX = to_torch(X), tY = to_torch(Y);
    versus("x.t().contiguous() [1024,1024] f32", [&] { return X.t().contiguous(); },
           [&] { return tX.t().contiguous(); });
    versus("x + y.t() [1024,1024] f32", [&] { return X + Y.t(); }, [&] { return tX + tY.t(); });
  }
  {  // small ops of a classifier head and of plain numeric code
    em::Tensor logits = em::randn({64, 10}), h = em::randn({64, 256}), bias = em::randn({256});
    em::Tensor v = em::randn({256}), W = em::randn({256, 64});
    torch::Tensor tl = to_torch(logits), th = to_torch(h), tb = to_torch(bias), tv = to_torch(v), tW = to_torch(W);
    em::Tensor pos = h > 0.f;
    torch::Tensor tpos = th > 0;
    const torch::Tensor tzero = torch::zeros({}, th.options());
    versus("softmax [64,10] dim -1", [&] { return em::softmax(logits, -1); }, [&] { return torch::softmax(tl, -1); });
    versus("h + bias [64,256] + [256]", [&] { return h + bias; }, [&] { return th + tb; });
    versus("where(h > 0, h, 0) [64,256]", [&] { return em::where(pos, h, 0.f); },
           [&] { return torch::where(tpos, th, tzero); });
    versus("matvec [256] @ [256,64]", [&] { return em::matmul(v, W); }, [&] { return torch::matmul(tv, tW); });
    // A dense layer: the bias as BLAS's accumulator in both libraries.
    em::Tensor x = em::randn({64, 784}), W1 = em::randn({784, 256});
    torch::Tensor tx = to_torch(x), tW1 = to_torch(W1);
    versus("addmm(bias, x, W) [64,784] @ [784,256]", [&] { return em::addmm(bias, x, W1); },
           [&] { return torch::addmm(tb, tx, tW1); });
  }

  // ---- matmul ---------------------------------------------------------------------
  for (int n : {1024, 2048}) {
    em::Tensor a = em::rand({n, n}), b = em::rand({n, n});
    torch::Tensor ta = to_torch(a), tb = to_torch(b);
    std::vector<float> c(static_cast<std::size_t>(n) * n);
    Group g({[&] {
               em::Tensor r = em::matmul(a, b);
               benchmark::DoNotOptimize(r.data_ptr());
             },
             [&] {
               torch::Tensor r = torch::matmul(ta, tb);
               benchmark::DoNotOptimize(r.data_ptr());
             },
             [&] {
               cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data<float>(), n,
                           b.data<float>(), n, 0.0f, c.data(), n);
               benchmark::DoNotOptimize(c.data());
               benchmark::ClobberMemory();
             }},
            n >= 2048 ? 0.0 : 0.05);
    g.run_all(std::min(g_reps, 15));
    const double flop = 2.0 * n * n * n;
    auto gf = [&](double s) { return fmt_time(s) + fmtv(" (%.0f GFLOP/s)", flop / s / 1e9); };
    const double vs_blas = g.med(2) / g.med(0);  // ember speed relative to direct sgemm
    Row row{"matmul " + std::to_string(n) + "x" + std::to_string(n) + " f32", Nt, gf(g.med(0)), gf(g.med(1)),
            "cblas_sgemm " + gf(g.med(2)), ratio_str(g.med(0) / g.med(1)), "", ""};
    if (n == 2048) {
      row.target = "ember speed >= 0.95x sgemm";
      row.verdict = verdict(vs_blas >= 0.95, vs_blas);
    } else {
      row.target = "(ember speed / sgemm)";
      row.verdict = ratio_str(vs_blas);
    }
    g_rows.push_back(row);
  }

  // Sanity: the contenders compute the same thing.
  stage("checks");
  {
    em::Tensor c = A + B;
    stream_add(pa, pb, pc, static_cast<std::size_t>(big));
    if (std::memcmp(c.data<float>(), pc, static_cast<std::size_t>(big) * sizeof(float)) != 0)
      std::printf("WARNING: ember add differs from the reference loop\n");
    const double es = em::sum(A).item<double>(), rs = simd_sum(pa, static_cast<std::size_t>(big)),
                 ts = tA.sum().item<double>();
    if (std::abs(es - rs) > 1e-3 * std::abs(rs) || std::abs(ts - rs) > 1e-3 * std::abs(rs))
      std::printf("WARNING: sums differ: ember %.6g, loop %.6g, torch %.6g\n", es, rs, ts);
  }

  const double add_bytes = 3.0 * 4.0 * static_cast<double>(big), sum_bytes = 4.0 * static_cast<double>(big);
  auto gbs = [](double bytes, double s) { return fmtv("%.1f GB/s", bytes / s / 1e9); };
  for (auto& p : per) {
    const std::string ts = std::to_string(p.threads);
    const double r = p.add.med(2) / p.add.med(0);  // ember GB/s / loop GB/s
    g_rows.push_back({"add 16M f32 bandwidth (3*4B*16M/t)", ts, gbs(add_bytes, p.add.med(0)),
                      gbs(add_bytes, p.add.med(1)), "STREAM loop " + gbs(add_bytes, p.add.med(2)),
                      ratio_str(p.add.med(0) / p.add.med(1)), "ember >= 0.80x loop GB/s", verdict(r >= 0.80, r)});
  }
  for (auto& p : per) {
    const std::string ts = std::to_string(p.threads);
    const double r = p.sum.med(2) / p.sum.med(0);
    const bool ok = r >= 0.90 && p.sum.med(0) < p.sum.med(1);
    g_rows.push_back({"sum 16M f32 bandwidth (4B*16M/t)", ts, gbs(sum_bytes, p.sum.med(0)),
                      gbs(sum_bytes, p.sum.med(1)), "SIMD sum loop " + gbs(sum_bytes, p.sum.med(2)),
                      ratio_str(p.sum.med(0) / p.sum.med(1)), ">= 0.90x loop GB/s and < torch time",
                      std::string(ok ? "MET " : "MISSED ") + ratio_str(r) + " of loop GB/s"});
  }
  if (per.size() == 2) {
    const double e1 = per[0].mid_add.med(0), e2 = per[1].mid_add.med(0);
    const double t1 = per[0].mid_add.med(1), t2 = per[1].mid_add.med(1);
    const double r = e2 / e1;
    g_rows.push_back({"add 1M f32, 1 vs " + Nt + " threads", "1 / " + Nt,
                      fmt_time(e1) + " / " + fmt_time(e2), fmt_time(t1) + " / " + fmt_time(t2), "",
                      ratio_str(e2 / t2) + " (at " + Nt + ")", "ember " + Nt + "-thr time <= 1-thr",
                      verdict(r <= 1.0, r)});
  } else {
    g_rows.push_back({"add 1M f32", "1", fmt_time(per[0].mid_add.med(0)), fmt_time(per[0].mid_add.med(1)), "",
                      ratio_str(per[0].mid_add.med(0) / per[0].mid_add.med(1)), "(only 1 thread available)", ""});
  }

  std::printf("| case | threads | ember | LibTorch | reference | ember/torch time | target | result |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : g_rows)
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name.c_str(), r.threads.c_str(), r.ember.c_str(),
                r.torch.c_str(), r.ref.c_str(), r.ratio.c_str(), r.target.c_str(), r.verdict.c_str());
  std::printf("\nember/torch time < 1: ember is faster. Load average (1 min): %.2f at start, %.2f at end; "
              "%.0f s in all.\n",
              load_start, loadavg1(), seconds_since(t_start));
  std::fflush(stdout);
  std::_Exit(0);  // skip teardown: ember keeps its (possibly leaked) pool threads alive
}
