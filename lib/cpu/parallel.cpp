#include "cpu/parallel.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EMBER_PAUSE() _mm_pause()
#else
#define EMBER_PAUSE() ((void)0)
#endif

namespace ember::cpu {
namespace {

thread_local bool tls_in_parallel = false;

// Note [Pool workers spin before sleeping]: after a job a worker polls for the
// next one for a while (kSpin) before it blocks on a futex, so back-to-back ops
// cost a cache-line handoff instead of a ~100 us wake-up.
constexpr auto kSpin = std::chrono::microseconds(100);

class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    stop_.store(true);
    gen_.fetch_add(1);
    gen_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  bool try_run(int64_t begin, int64_t end, int64_t grain, RangeFn fn, void* ctx) {
    std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    const int64_t n = end - begin;
    // About 4 chunks per thread, none smaller than grain.
    const int64_t chunk = std::max(grain, n / (4 * size()));
    fn_ = fn;
    ctx_ = ctx;
    end_ = end;
    chunk_ = chunk;
    next_.store(begin, std::memory_order_relaxed);
    const uint64_t g = gen_.fetch_add(1, std::memory_order_seq_cst) + 1;
    gen_.notify_all();
    work();
    // Note [The caller waits only for workers that joined]: a worker that has
    // not woken by now finds the job closed and leaves it alone, so a slow
    // wake-up (or a worker sharing the caller's core) never delays the caller.
    closed_.store(g, std::memory_order_seq_cst);
    int spins = 0;
    while (running_.load(std::memory_order_seq_cst) != 0)
      if (++spins % 64 == 0) std::this_thread::yield(); else EMBER_PAUSE();
    return true;
  }

 private:
  void work() {
    tls_in_parallel = true;
    for (;;) {
      int64_t b = next_.fetch_add(chunk_, std::memory_order_relaxed);
      if (b >= end_) break;
      fn_(ctx_, b, std::min(end_, b + chunk_));
    }
    tls_in_parallel = false;
  }
  void loop() {
    uint64_t seen = 0;  // the generation at construction: a job posted before this thread ran is still seen
    for (;;) {
      auto t0 = std::chrono::steady_clock::now();
      uint64_t g;
      int spins = 0;
      while ((g = gen_.load(std::memory_order_acquire)) == seen) {
        EMBER_PAUSE();
        if (++spins % 256 == 0) {
          if (std::chrono::steady_clock::now() - t0 > kSpin)
            gen_.wait(seen, std::memory_order_acquire);
          else
            std::this_thread::yield();  // let a caller on this core run
        }
      }
      seen = g;
      if (stop_.load()) return;
      running_.fetch_add(1, std::memory_order_seq_cst);
      if (closed_.load(std::memory_order_seq_cst) < g) work();
      running_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex busy_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_{0};
  std::atomic<int> running_{0};
  std::atomic<uint64_t> closed_{0};  // the last generation whose caller stopped waiting
  RangeFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t end_ = 0, chunk_ = 1;
};

std::atomic<int> g_threads{0};
std::mutex g_pool_mu;
Pool* g_pool = nullptr;

int default_threads() {
  if (const char* e = std::getenv("EMBER_NUM_THREADS")) {
    int n = std::atoi(e);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

Pool* pool() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  const int want = num_threads();
  if (!g_pool || g_pool->size() != want) {
    // The old pool is left running idle (never freed): a thread may still hold it.
    g_pool = want > 1 ? new Pool(want) : nullptr;
  }
  return g_pool;
}

}  // namespace

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_threads();
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(std::max(1, n)); }

void parallel_for_raw(int64_t begin, int64_t end, int64_t grain, RangeFn fn, void* ctx) {
  if (!tls_in_parallel) {
    static thread_local Pool* cached = nullptr;
    static thread_local int cached_threads = 0;
    if (cached_threads != num_threads()) {
      cached = pool();
      cached_threads = num_threads();
    }
    if (cached && cached->try_run(begin, end, grain, fn, ctx)) return;
  }
  fn(ctx, begin, end);
}

}  // namespace ember::cpu
