#pragma once
// Internal hooks of the CUDA caching allocator (see allocator.cpp).
#include <vector>

#include <ember/memory.h>

namespace ember::gpu {

struct ParkedBlock {
  detail::Block block;
};

/// While set on a thread, device blocks freed there are appended to `into`
/// instead of returning to the cache. Returns the previous parking list.
std::vector<ParkedBlock>* park_frees(std::vector<ParkedBlock>* into);
/// Returns parked blocks to the cache.
void release_parked(std::vector<ParkedBlock>& blocks);

detail::Allocator& pinned_allocator();

}  // namespace ember::gpu
