// Without a GPU (this machine, CI) the CUDA API answers with clear errors, in
// builds with and without the CUDA backend. tests/gpu covers the GPU itself.
#include <catch2/catch.hpp>

#include <ember/ember.h>

namespace em = ember;
using Catch::Matchers::Contains;

TEST_CASE("without a GPU, CUDA requests are DeviceErrors that say what to check", "[device]") {
  if (em::cuda_available()) SUCCEED("a GPU is present: see tests/gpu");
  if (em::cuda_available()) return;
  CHECK(em::cuda_device_count() == 0);
  CHECK_THROWS_AS(em::ones({2}).to(em::Device::cuda()), em::DeviceError);
  CHECK_THROWS_WITH(em::ones({2}).to(em::Device::cuda()), Contains("em::cuda_available()"));
  CHECK_THROWS_WITH(em::cuda::synchronize(), Contains("cuda_available()"));
  CHECK_THROWS_WITH(em::cuda::current_stream(), Contains("cuda_available()"));
  CHECK_THROWS_WITH(em::cuda::Stream::create(), Contains("cuda_available()"));
  CHECK_THROWS_WITH(em::cuda::pin_memory(em::ones({2})), Contains("cuda_available()"));
  CHECK_FALSE(em::cuda::is_pinned(em::ones({2})));
  CHECK_FALSE(em::cuda::allow_tf32());
  em::cuda::set_allow_tf32(true);
  CHECK(em::cuda::allow_tf32());
  em::cuda::set_allow_tf32(false);
}
