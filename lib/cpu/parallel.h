#pragma once
#include <cstdint>
#include <utility>

namespace ember::cpu {

/// Elements below which an op stays on the calling thread. Note [Small ops stay
/// on the calling thread]: waking a sleeping worker costs ~100 us here, more
/// than a whole 64K-element op.
inline constexpr int64_t kParallelMinElements = int64_t(1) << 17;

/// Threads the pool uses (the caller included); EMBER_NUM_THREADS overrides.
int num_threads();
/// Sets the thread count for later calls (1 = no pool).
void set_num_threads(int n);

using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end);
/// Runs fn over [begin, end) in chunks of at least `grain`, on the pool when the
/// range is big enough; chunks are claimed dynamically so a late worker never
/// delays the caller. Runs inline when nested or when the pool is busy.
void parallel_for_raw(int64_t begin, int64_t end, int64_t grain, RangeFn fn, void* ctx);

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& f) {
  if (end - begin < 2 * grain || num_threads() <= 1) {
    if (end > begin) f(begin, end);
    return;
  }
  parallel_for_raw(
      begin, end, grain,
      [](void* ctx, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace ember::cpu
