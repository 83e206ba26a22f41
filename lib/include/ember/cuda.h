#pragma once
// The CUDA runtime as users see it: streams, synchronization, TF32 and pinned
// host memory. In a build without CUDA (or on a machine without a GPU) every
// call that needs a GPU throws DeviceError; `cuda_available()` (device.h) says
// which case holds.
#include <memory>

#include <ember/device.h>
#include <ember/tensor.h>

namespace ember::cuda {

/// A CUDA stream of one device. Ops on a device run on that device's current
/// stream (per thread); by default the device's own stream, created at first use.
class Stream {
 public:
  Stream() = default;
  /// A new stream on `device` (destroyed with its last copy).
  static Stream create(Device device = Device::cuda());
  /// A non-owning Stream for a cudaStream_t made elsewhere (interop).
  static Stream borrow(Device device, void* handle);
  Device device() const { return device_; }
  /// The cudaStream_t, for interop with other CUDA code.
  void* handle() const { return handle_.get(); }
  /// Waits until the work queued on this stream is done.
  void synchronize() const;
  friend bool operator==(const Stream& a, const Stream& b) { return a.handle() == b.handle(); }

 private:
  Device device_ = Device::cuda();
  std::shared_ptr<void> handle_;
};

/// The stream ops on `device` use on this thread.
Stream current_stream(Device device = Device::cuda());
/// The device's own stream (the current one unless a StreamGuard says otherwise).
Stream default_stream(Device device = Device::cuda());

/// Makes `s` the current stream of its device on this thread for a scope.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& s);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream prev_, cur_;  // cur_ keeps a created stream alive while it is current
};

/// Waits for all work queued on `device`'s current stream.
void synchronize(Device device = Device::cuda());

/// TensorFloat-32 in float32 matmuls: off by default (full float32 precision),
/// like PyTorch's torch.backends.cuda.matmul.allow_tf32 = False.
void set_allow_tf32(bool allow);
bool allow_tf32();

/// A copy of CPU tensor `t` in page-locked host memory: copies between it and
/// a GPU run at full bus speed. Pinned blocks are cached like other memory.
Tensor pin_memory(const Tensor& t);
/// True when `t`'s memory is page-locked host memory from pin_memory.
bool is_pinned(const Tensor& t);

}  // namespace ember::cuda
