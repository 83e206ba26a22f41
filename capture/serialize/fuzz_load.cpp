// libFuzzer target for Graph::load (meson -Dfuzz=true with clang): any input
// must either load or raise ember::Error, never crash, hang or leak.
#include <cstdint>
#include <string_view>

#include <ember/capture.h>

namespace ember::capture::detail {
Graph load_bytes(std::string_view bytes, const std::string& what, const Options& options);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto g = ember::capture::detail::load_bytes(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", {});
    (void)g.str();
  } catch (const ember::Error&) {
  }
  return 0;
}
