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

#ifndef EMBER_WITH_CUDA
// A build without the CUDA backend: the CUDA runtime API exists and says so.
#include <ember/cuda.h>
#include <ember/error.h>

namespace ember::cuda {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw DeviceError(fmt::format("{}: ember was built without CUDA (Meson option cuda); check em::cuda_available()",
                                what));
}
bool g_allow_tf32 = false;
}  // namespace

Stream Stream::create(Device) { no_cuda("Stream::create"); }
Stream Stream::borrow(Device device, void* handle) {
  Stream s;
  s.device_ = device;
  s.handle_ = std::shared_ptr<void>(handle, [](void*) {});
  return s;
}
void Stream::synchronize() const { no_cuda("Stream::synchronize"); }
Stream current_stream(Device) { no_cuda("current_stream"); }
Stream default_stream(Device) { no_cuda("default_stream"); }
StreamGuard::StreamGuard(const Stream&) { no_cuda("StreamGuard"); }
StreamGuard::~StreamGuard() = default;
void synchronize(Device) { no_cuda("synchronize"); }
void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }
Tensor pin_memory(const Tensor&) { no_cuda("pin_memory"); }
bool is_pinned(const Tensor&) { return false; }

}  // namespace ember::cuda
#endif
