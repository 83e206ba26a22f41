#pragma once
// The timing harness shared by the side-by-side benchmark programs.
//
// Method: every contender of a row is warmed up, then timed in batches of
// calls; the contenders' batches are interleaved rep by rep, so a burst of
// load from elsewhere on the machine hits all of them alike; the median of the
// per-call times over the reps is reported. A watchdog exits with status 75 if
// no batch finishes within a stage's limit.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <ember/ember.h>
#include <vector>

namespace bench {

/// The 10-op elementwise chain of bench_capture and bench_autograd (x read three times).
inline ember::Tensor chain(const ember::Tensor& x) {
  namespace em = ember;
  auto t = x * 1.5f;
  t = t + 0.5f;
  t = em::relu(t);
  t = t * x;
  t = t - 0.25f;
  t = em::tanh(t);
  t = t * 0.75f;
  t = t + x;
  t = em::sigmoid(t);
  return t * t;
}

using Clock = std::chrono::steady_clock;
using Fn = std::function<void()>;


inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---- watchdog ---------------------------------------------------------------
// A benchmark must not hang silently: if no batch finishes for the stage's
// limit, say where it stuck and exit with status 75. (Seen: ember's pool can
// deadlock when it is created under load, see kPoolStage below.)
inline std::atomic<int64_t> g_last_progress{0};  // steady_clock ns
inline std::atomic<const char*> g_stage{"start"};
inline std::atomic<int> g_stage_limit_s{180};

inline void progress() { g_last_progress.store(Clock::now().time_since_epoch().count()); }
inline void stage(const char* name, int limit_s = 180) {
  g_stage.store(name);
  g_stage_limit_s.store(limit_s);
  progress();
}
inline void start_watchdog() {
  progress();
  std::thread([] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      const double idle = 1e-9 * static_cast<double>(Clock::now().time_since_epoch().count() -
                                                     g_last_progress.load());
      if (idle > g_stage_limit_s.load()) {
        std::fprintf(stderr, "vs_libtorch: no progress for %.0f s in stage '%s'; giving up (exit 75)\n",
                     idle, g_stage.load());
        std::fflush(stderr);
        std::_Exit(75);
      }
    }
  }).detach();
}

constexpr const char* kPoolStage =
    "first multi-threaded ember op after a thread-count change (starts a new ember thread pool; "
    "a hang here was the pool start-up race in lib/cpu/parallel.cpp fixed in commit cdfd981)";

// Per-call seconds of a batch of `iters` calls.
inline double time_batch(const Fn& fn, int64_t iters) {
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < iters; ++i) fn();
  const double s = seconds_since(t0) / static_cast<double>(iters);
  progress();
  return s;
}

// Warms fn up (>= 3 calls and >= 20 ms) and returns how many calls fill batch_s.
inline int64_t calibrate(const Fn& fn, double batch_s) {
  int64_t calls = 0;
  const auto t0 = Clock::now();
  while (calls < 3 || seconds_since(t0) < 0.02) {
    fn();
    ++calls;
  }
  std::vector<double> t;
  for (int i = 0; i < 5; ++i) t.push_back(time_batch(fn, 1));
  const double per = std::max(median(t), 1e-9);
  return std::max<int64_t>(1, static_cast<int64_t>(batch_s / per));
}

// A group of contenders timed rep by rep, interleaved. add() may be called in
// several rounds (e.g. between thread-count switches); samples accumulate.
struct Group {
  std::vector<Fn> fns;
  std::vector<int64_t> iters;
  std::vector<std::vector<double>> samples;
  double batch_s;

  explicit Group(std::vector<Fn> f, double batch = 0.03) : fns(std::move(f)), batch_s(batch) {
    iters.assign(fns.size(), 0);
    samples.resize(fns.size());
  }
  // Runs `reps` interleaved reps of the contenders listed in `which`.
  void run(const std::vector<int>& which, int reps) {
    for (int i : which)
      if (iters[i] == 0) iters[i] = calibrate(fns[i], batch_s);
      else time_batch(fns[i], 1);  // re-warm after a thread switch
    for (int r = 0; r < reps; ++r)
      for (int i : which) samples[i].push_back(time_batch(fns[i], iters[i]));
  }
  void run_all(int reps) {
    std::vector<int> all(fns.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    run(all, reps);
  }
  double med(int i) const { return median(samples[i]); }
};

#if defined(__x86_64__) && defined(__GNUC__)
#define REF_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define REF_PAUSE() __builtin_ia32_pause()
#define REF_HAVE_CPU_CHECK 1
#else
#define REF_CLONES
#define REF_PAUSE() ((void)0)
#define REF_HAVE_CPU_CHECK 0
#endif

class RefTeam {
 public:
  explicit RefTeam(int threads) : threads_(threads) {
    for (int k = 1; k < threads; ++k) workers_.emplace_back([this, k] { loop(k); });
  }
  ~RefTeam() {
    stop_.store(true);
    gen_.fetch_add(1);
    gen_.notify_all();
    for (auto& t : workers_) t.join();
  }
  // body(part, begin, end)
  void run(std::size_t n, const std::function<void(int, std::size_t, std::size_t)>& body) {
    n_ = n;
    body_ = &body;
    pending_.store(threads_ - 1);
    gen_.fetch_add(1, std::memory_order_release);
    gen_.notify_all();
    part(0);
    while (pending_.load(std::memory_order_acquire) != 0) REF_PAUSE();
  }

 private:
  void part(int k) {
    const std::size_t per = (n_ / threads_ + 15) / 16 * 16;
    const std::size_t b = std::min(n_, per * k);
    const std::size_t e = k + 1 == threads_ ? n_ : std::min(n_, per * (k + 1));
    (*body_)(k, b, e);
  }
  void loop(int k) {
    uint64_t seen = 0;
    for (;;) {
      const auto t0 = Clock::now();
      uint64_t g;
      int spins = 0;
      while ((g = gen_.load(std::memory_order_acquire)) == seen) {
        REF_PAUSE();
        if (++spins % 256 == 0 && Clock::now() - t0 > std::chrono::microseconds(300)) gen_.wait(seen);
      }
      seen = g;
      if (stop_.load()) return;
      part(k);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  int threads_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::size_t n_ = 0;
  const std::function<void(int, std::size_t, std::size_t)>* body_ = nullptr;
};

inline std::string fmt_time(double s) {
  char buf[64];
  if (s < 1e-6) std::snprintf(buf, sizeof buf, "%.0f ns", s * 1e9);
  else if (s < 1e-3) std::snprintf(buf, sizeof buf, "%.2f us", s * 1e6);
  else std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  return buf;
}

/// Keeps a result alive so the work producing it is not optimized away.
template <class T>
inline void keep(T&& v) {
  benchmark::DoNotOptimize(v);
}

/// Runs body(begin, end) over [0, n) split across `threads` threads (a
/// persistent team, created once per thread count).
template <class F>
inline void parallel_parts(int64_t n, int threads, F&& body) {
  if (threads <= 1) {
    body(0, n);
    return;
  }
  static std::unique_ptr<RefTeam> team;
  static int team_threads = 0;
  if (team_threads != threads) {
    team = std::make_unique<RefTeam>(threads);
    team_threads = threads;
  }
  std::function<void(int, std::size_t, std::size_t)> f = [&](int, std::size_t b, std::size_t e) {
    body(static_cast<int64_t>(b), static_cast<int64_t>(e));
  };
  team->run(static_cast<std::size_t>(n), f);
}

}  // namespace bench
