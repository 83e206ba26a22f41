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

struct Tables {
  ArchKernels all[3];
  const ArchKernels* ptrs[3];
  int count = 0;
  const ArchKernels* best = nullptr;

  Tables() {
    sse2::fill(all[count]);
    ptrs[count] = &all[count];
    ++count;
    const auto avail = xsimd::available_architectures();
    const ArchKernels* pick = &all[0];
#ifdef EMBER_HAVE_AVX2
    avx2::fill(all[count]);
    ptrs[count] = &all[count];
    if (avail.fma3_avx2) pick = &all[count];
    ++count;
#endif
#ifdef EMBER_HAVE_AVX512
    avx512::fill(all[count]);
    ptrs[count] = &all[count];
    if (avail.avx512bw && avail.avx512dq && avail.avx512cd && avail.avx512f) pick = &all[count];
    ++count;
#endif
    // EMBER_CPU_ARCH=sse2|avx2|avx512 picks a lower table (for testing each).
    if (const char* want = std::getenv("EMBER_CPU_ARCH")) {
      for (int i = 0; i < count; ++i) {
        const char* n = all[i].name;
        const bool match = std::strstr(n, want) != nullptr;
        if (match && (i == 0 || pick == &all[i] || all + i < pick)) pick = &all[i];
      }
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

const ArchKernels* const* compiled_archs(int* count) {
  *count = tables().count;
  return tables().ptrs;
}

}  // namespace ember::cpu
