#pragma once
#include <cstdint>
#include <string>

namespace ember {

enum class DeviceType : uint8_t { cpu, cuda };
inline constexpr int kNumDeviceTypes = 2;

/// Where a tensor's memory lives: `Device::cpu()` or `Device::cuda(i)`.
struct Device {
  DeviceType type = DeviceType::cpu;
  int8_t index = 0;

  static constexpr Device cpu() { return {DeviceType::cpu, 0}; }
  static constexpr Device cuda(int index = 0) {
    return {DeviceType::cuda, static_cast<int8_t>(index)};
  }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  /// "cpu" or "cuda:0".
  std::string str() const;
  friend bool operator==(Device a, Device b) { return a.type == b.type && a.index == b.index; }
  friend bool operator!=(Device a, Device b) { return !(a == b); }
};

/// True when a CUDA backend was built and a GPU answers at run time.
bool cuda_available();
/// Number of usable CUDA devices (0 without a GPU or without the CUDA build).
int cuda_device_count();

}  // namespace ember
