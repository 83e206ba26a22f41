#pragma once
#include <cstddef>
#include <cstdint>

#include <ember/device.h>

namespace ember {

/// What a device allocator holds, in bytes.
struct MemoryStats {
  std::size_t current = 0;    ///< bytes in live tensors' storages
  std::size_t peak = 0;       ///< the most `current` has been since the last reset_peak
  std::size_t cached = 0;     ///< bytes freed by tensors but kept for reuse
  std::size_t allocations = 0;   ///< blocks handed out
  std::size_t cache_hits = 0;    ///< of those, served from the cache
};

/// Statistics of the allocator of `device` (CPU by default).
MemoryStats memory_stats(Device device = Device::cpu());
/// Sets `peak` to `current`.
void reset_peak_memory(Device device = Device::cpu());
/// Returns every cached (unused) block to the system; live tensors are untouched.
void empty_cache(Device device = Device::cpu());

namespace detail {

/// A block of device memory handed out by an allocator.
struct Block {
  void* ptr = nullptr;
  std::size_t size = 0;      // usable bytes (the rounded request)
  uint32_t bin = 0;          // allocator-private
};

/// A device allocator: a table of plain function pointers (ggml-style).
struct Allocator {
  Block (*allocate)(std::size_t nbytes);
  void (*deallocate)(const Block& b);
};

Allocator& cpu_allocator();

}  // namespace detail
}  // namespace ember
