#include <cstdlib>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "cpu/arch/arch.h"

namespace ember::cpu {

namespace sse2 { void fill(ArchKernels& k); }
#ifdef EMBER_HAVE_AVX2
namespace avx2 { void fill(ArchKernels& k); }
#endif
#ifdef EMBER_HAVE_AVX512
namespace avx512 { void fill(ArchKernels& k); }
#endif

namespace {

// Only the tables this CPU can run are filled and listed: a table's fill()
// is compiled for its instruction set too (the compiler may use AVX-512
// stores to build it), so even filling the AVX-512 table on an AVX2-only CPU
// dies with SIGILL.
struct Tables {
  ArchKernels all[3];
  const ArchKernels* ptrs[3];
  int count = 0;
  const ArchKernels* best = nullptr;

  Tables() {
    sse2::fill(all[count]);
    ptrs[count] = &all[count];
    ++count;
    [[maybe_unused]] const auto avail = xsimd::available_architectures();
#ifdef EMBER_HAVE_AVX2
    if (avail.fma3_avx2) {
      avx2::fill(all[count]);
      ptrs[count] = &all[count];
      ++count;
    }
#endif
#ifdef EMBER_HAVE_AVX512
    // (xsimd 10 reports no avx512vl; every CPU with BW and DQ has it.)
    if (avail.fma3_avx2 && avail.avx512bw && avail.avx512dq && avail.avx512cd && avail.avx512f) {
      avx512::fill(all[count]);
      ptrs[count] = &all[count];
      ++count;
    }
#endif
    const ArchKernels* pick = &all[count - 1];
    // EMBER_CPU_ARCH=sse2|avx2|avx512 picks a lower table (for testing each).
    if (const char* want = std::getenv("EMBER_CPU_ARCH")) {
      for (int i = 0; i < count; ++i)
        if (std::strstr(all[i].name, want) != nullptr) pick = &all[i];
    }
    best = pick;
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const ArchKernels& arch() {
  static const ArchKernels* best = tables().best;
  return *best;
}

const ArchKernels* const* runnable_archs(int* count) {
  *count = tables().count;
  return tables().ptrs;
}

}  // namespace ember::cpu
