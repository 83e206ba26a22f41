// The caching CUDA allocator and the pinned host allocator.
//
// Note [CUDA caching allocator]: cudaMalloc/cudaFree synchronize the device
// and cost tens of microseconds, so freed blocks are kept per device in size
// classes (powers of two from 512 B below 1 MiB, multiples of 2 MiB above)
// and handed out again. A block is reused only on the stream it was last
// used on, so stream order makes the reuse safe without events. When
// cudaMalloc fails, the cache is returned to the driver and the call retried
// once; a second failure is OutOfMemoryError and the program keeps working.
//
// While a CUDA graph is being recorded on a thread (GraphRecording), blocks
// freed there are parked in the recording instead: the recorded kernels still
// point at them.
#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include <ember/cuda.h>
#include <ember/error.h>

#include "api.h"
#include "runtime/allocator.h"
#include "runtime/runtime.h"

namespace ember::gpu {

namespace {

constexpr int kMaxDevices = 16;
constexpr std::size_t kMinBlock = 512;
constexpr std::size_t kLargeThreshold = std::size_t(1) << 20;
constexpr std::size_t kLargeRound = std::size_t(2) << 20;

struct Key {
  cudaStream_t stream;
  std::size_t size;
  friend bool operator<(const Key& a, const Key& b) {
    return a.stream != b.stream ? a.stream < b.stream : a.size < b.size;
  }
};

struct DeviceCache {
  std::mutex mu;
  std::multimap<Key, void*> free;
  std::map<void*, cudaStream_t> stream_of;  // live and cached blocks -> stream
  MemoryStats stats;
};

std::array<DeviceCache, kMaxDevices>& caches() {
  static auto* c = new std::array<DeviceCache, kMaxDevices>;  // leaked: tensors may outlive statics
  return *c;
}

thread_local std::vector<ParkedBlock>* tls_parking = nullptr;

std::size_t round_size(std::size_t n) {
  if (n >= kLargeThreshold) return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
  std::size_t s = kMinBlock;
  while (s < n) s <<= 1;
  return s;
}

void release_cached_locked(DeviceCache& c) {
  for (auto& [key, p] : c.free) {
    cudaFree(p);
    c.stream_of.erase(p);
  }
  c.free.clear();
  c.stats.cached = 0;
}

detail::Block allocate(int dev, std::size_t nbytes) {
  if (nbytes == 0) return {nullptr, 0, static_cast<uint32_t>(dev)};
  const std::size_t size = round_size(nbytes);
  DeviceCache& c = caches()[dev];
  set_device(dev);
  cudaStream_t s = stream(dev);
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.allocations++;
    // The smallest cached block of this stream that fits, at most 2x larger.
    auto it = c.free.lower_bound(Key{s, size});
    if (it != c.free.end() && it->first.stream == s && it->first.size <= 2 * size) {
      const std::size_t got = it->first.size;
      void* p = it->second;
      c.free.erase(it);
      c.stats.cache_hits++;
      c.stats.cached -= got;
      c.stats.current += got;
      c.stats.peak = std::max(c.stats.peak, c.stats.current);
      return {p, got, static_cast<uint32_t>(dev)};
    }
  }
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    {
      std::lock_guard<std::mutex> lock(c.mu);
      release_cached_locked(c);
    }
    err = cudaMalloc(&p, size);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    std::size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    MemoryStats st = memory_stats(dev);
    const std::string msg = fmt::format(
        "cuda:{}: out of memory allocating {} bytes ({} bytes in use by ember, {} cached, {} free of {} on the "
        "device): {}",
        dev, nbytes, st.current, st.cached, free_b, total_b, cudaGetErrorString(err));
    if (err == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
    throw DeviceError(msg);
  }
  std::lock_guard<std::mutex> lock(c.mu);
  c.stream_of[p] = s;
  c.stats.current += size;
  c.stats.peak = std::max(c.stats.peak, c.stats.current);
  return {p, size, static_cast<uint32_t>(dev)};
}

void deallocate(const detail::Block& b) {
  if (b.size == 0) return;
  if (tls_parking) {
    tls_parking->push_back({b});
    return;
  }
  DeviceCache& c = caches()[b.bin];
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.current -= b.size;
  c.stats.cached += b.size;
  c.free.emplace(Key{c.stream_of[b.ptr], b.size}, b.ptr);
}

template <int D>
detail::Block allocate_on(std::size_t n) {
  return allocate(D, n);
}

template <std::size_t... I>
std::array<detail::Allocator, sizeof...(I)> make_allocators(std::index_sequence<I...>) {
  return {detail::Allocator{&allocate_on<static_cast<int>(I)>, &deallocate}...};
}

// ---- pinned host memory ------------------------------------------------------

struct PinnedCache {
  std::mutex mu;
  std::multimap<std::size_t, void*> free;
};
PinnedCache& pinned() {
  static auto* p = new PinnedCache;
  return *p;
}

detail::Block pinned_allocate(std::size_t nbytes) {
  if (nbytes == 0) return {nullptr, 0, 0};
  const std::size_t size = round_size(nbytes);
  {
    std::lock_guard<std::mutex> lock(pinned().mu);
    auto it = pinned().free.lower_bound(size);
    if (it != pinned().free.end() && it->first <= 2 * size) {
      detail::Block b{it->second, it->first, 0};
      pinned().free.erase(it);
      return b;
    }
  }
  void* p = nullptr;
  EMBER_CUDA_CHECK(cudaHostAlloc(&p, size, cudaHostAllocDefault));
  return {p, size, 0};
}

void pinned_deallocate(const detail::Block& b) {
  if (b.size == 0) return;
  std::lock_guard<std::mutex> lock(pinned().mu);
  pinned().free.emplace(b.size, b.ptr);
}

}  // namespace

detail::Allocator& allocator(int device) {
  static auto table = make_allocators(std::make_index_sequence<kMaxDevices>{});
  return table[static_cast<std::size_t>(device)];
}

detail::Allocator& pinned_allocator() {
  static detail::Allocator a{&pinned_allocate, &pinned_deallocate};
  return a;
}

MemoryStats memory_stats(int device) {
  DeviceCache& c = caches()[device];
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void reset_peak_memory(int device) {
  DeviceCache& c = caches()[device];
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.peak = c.stats.current;
}

void empty_cache(int device) {
  DeviceCache& c = caches()[device];
  set_device(device);
  std::lock_guard<std::mutex> lock(c.mu);
  release_cached_locked(c);
}

std::vector<ParkedBlock>* park_frees(std::vector<ParkedBlock>* into) { return std::exchange(tls_parking, into); }

void release_parked(std::vector<ParkedBlock>& blocks) {
  // The caller synchronized: the blocks may go to any stream's bins, so they
  // are filed under the device's current stream (the recording's is gone).
  for (const ParkedBlock& p : blocks) {
    DeviceCache& c = caches()[p.block.bin];
    {
      std::lock_guard<std::mutex> lock(c.mu);
      c.stream_of[p.block.ptr] = stream(static_cast<int>(p.block.bin));
    }
    deallocate(p.block);
  }
  blocks.clear();
}

}  // namespace ember::gpu

namespace ember::cuda {

Tensor pin_memory(const Tensor& t) {
  if (!t.device().is_cpu())
    throw DeviceError(fmt::format("pin_memory: the tensor is on {}; only CPU tensors can be pinned", t.device().str()));
  if (!gpu::available()) throw DeviceError("pin_memory: no CUDA device is available; check em::cuda_available()");
  if (is_pinned(t) && t.is_contiguous()) return t;
  detail::Allocator& a = gpu::pinned_allocator();
  const std::size_t bytes = static_cast<std::size_t>(t.numel()) * itemsize(t.dtype());
  detail::Ref<detail::Storage> st(new detail::Storage(a.allocate(bytes), &a, Device::cpu()));
  auto* impl = new detail::TensorImpl;
  detail::Ref<detail::TensorImpl> ref(impl);
  impl->storage = st;
  impl->shape = t.shape();
  impl->strides = contiguous_strides(t.shape());
  impl->dtype = t.dtype();
  impl->device = Device::cpu();
  impl->refresh();
  Tensor out(std::move(ref));
  out.copy_(t);
  return out;
}

bool is_pinned(const Tensor& t) {
  return t.defined() && t.impl().storage && t.impl().storage->allocator() == &gpu::pinned_allocator();
}

}  // namespace ember::cuda
