#include <ember/device.h>

#include <fmt/format.h>

namespace ember {

std::string Device::str() const {
  return type == DeviceType::cpu ? std::string("cpu") : fmt::format("cuda:{}", index);
}

#ifndef EMBER_WITH_CUDA
bool cuda_available() { return false; }
int cuda_device_count() { return 0; }
#endif

}  // namespace ember
