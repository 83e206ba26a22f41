// Device discovery, streams, the cuBLAS handle and error reporting.
//
// Note [No GPU is not an error]: without a driver, cudaGetDeviceCount returns
// an error ("CUDA driver version is insufficient ...") rather than 0 devices.
// Any error there means "no GPU": cuda_available() is false and tensors on
// cuda raise DeviceError when made.
#include "runtime/runtime.h"

#include <array>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include <ember/cuda.h>
#include <ember/error.h>

#include "api.h"

namespace ember::gpu {

namespace {

constexpr int kMaxDevices = 16;

int probe_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear it: later calls must not see a stale error
    return 0;
  }
  return std::min(n, kMaxDevices);
}

int cached_count() {
  static const int n = probe_count();
  return n;
}

struct DeviceStreams {
  std::once_flag once;
  cudaStream_t own = nullptr;
};
std::array<DeviceStreams, kMaxDevices>& own_streams() {
  static auto* s = new std::array<DeviceStreams, kMaxDevices>;  // leaked: outlives static destruction
  return *s;
}

thread_local int tls_device = -1;
thread_local std::array<cudaStream_t, kMaxDevices> tls_stream{};
bool g_allow_tf32 = false;

cudaStream_t own_stream(int index) {
  auto& d = own_streams()[index];
  std::call_once(d.once, [&] {
    set_device(index);
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&d.own, cudaStreamNonBlocking));
  });
  return d.own;
}

}  // namespace

[[noreturn]] void throw_cuda(cudaError_t err, const char* call) {
  cudaGetLastError();
  const std::string msg = fmt::format("cuda: {} failed: {} ({})", call, cudaGetErrorString(err), cudaGetErrorName(err));
  if (err == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
  throw DeviceError(msg);
}

[[noreturn]] void throw_cublas(cublasStatus_t st, const char* call) {
  const std::string msg = fmt::format("cuBLAS: {} failed: {} ({})", call, cublasGetStatusString(st),
                                      cublasGetStatusName(st));
  if (st == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemoryError(msg);
  throw DeviceError(msg);
}

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(e, what);
}

bool available() { return cached_count() > 0; }
int device_count() { return cached_count(); }

void check_device(Device d, const char* op) {
  if (!d.is_cuda()) return;
  if (!available())
    throw DeviceError(fmt::format("{}: {} requested but no CUDA device is available; check em::cuda_available()",
                                  op, d.str()));
  if (d.index < 0 || d.index >= device_count())
    throw DeviceError(fmt::format("{}: {} requested but this machine has {} CUDA device(s)", op, d.str(),
                                  device_count()));
}

void set_device(int index) {
  if (tls_device != index) {
    EMBER_CUDA_CHECK(cudaSetDevice(index));
    tls_device = index;
  }
}

cudaStream_t stream(int index) {
  cudaStream_t s = tls_stream[index];
  return s ? s : own_stream(index);
}

cudaStream_t set_current_stream(int index, cudaStream_t s) { return std::exchange(tls_stream[index], s); }

// Note [cuBLAS workspace]: cuBLAS takes its workspace from its default pool.
// cublasSetStream resets any workspace set with cublasSetWorkspace to that
// pool, so a fixed one would have to be set again per stream (and kept per
// stream: two streams must not share one). Since CUDA 12.2 the pool allocates
// stream-ordered (cudaMallocAsync), which CUDA-graph capture records, so we
// keep to it, as PyTorch does for 12.2 and later.
cublasHandle_t cublas(int index) {
  struct Handles {
    std::array<cublasHandle_t, kMaxDevices> h{};
    ~Handles() {
      for (auto& x : h)
        if (x) cublasDestroy(x);
    }
  };
  thread_local Handles handles;
  set_device(index);
  cublasHandle_t& h = handles.h[index];
  if (!h) EMBER_CUBLAS_CHECK(cublasCreate(&h));
  EMBER_CUBLAS_CHECK(cublasSetStream(h, stream(index)));
  EMBER_CUBLAS_CHECK(cublasSetMathMode(h, g_allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return h;
}

void synchronize(Device d) {
  check_device(d, "synchronize");
  set_device(d.index);
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream(d.index)));
}

// ---- StreamOrder ------------------------------------------------------------
// Note [Frames across streams]: a use on the device's own stream records
// nothing; its hand-over to any other stream records an event on the own
// stream at acquire time, which covers the last use (the own stream is never
// destroyed, so it may be named later). A use on any other stream records its
// event at release, while that stream surely exists, and the next use always
// waits on it: equal handles prove nothing (a destroyed stream's handle comes
// back from the next create; cudaStreamPerThread is one handle for many
// streams), and waiting on an event of one's own stream is free. Uses inside a
// stream capture (a user's CUDA graph) are not ordered: the capture's work
// runs only when the user launches the graph. The destructor waits for the
// last use, because the buffers it guarded go back to the allocator filed
// under the stream that allocated them, not the one that used them last.

namespace {

bool capturing(cudaStream_t s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &st) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return st != cudaStreamCaptureStatusNone;
}

}  // namespace

StreamOrder::~StreamOrder() {
  if (recorded_)
    cudaEventSynchronize(static_cast<cudaEvent_t>(event_));
  else if (stream_)
    cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));  // the own stream: it outlives every frame
  if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
  cudaGetLastError();
}

StreamOrder::StreamOrder(StreamOrder&& o) noexcept
    : stream_(std::exchange(o.stream_, nullptr)),
      event_(std::exchange(o.event_, nullptr)),
      recorded_(std::exchange(o.recorded_, false)) {}

StreamOrder& StreamOrder::operator=(StreamOrder&& o) noexcept {
  std::swap(stream_, o.stream_);
  std::swap(event_, o.event_);
  std::swap(recorded_, o.recorded_);
  return *this;
}

void* StreamOrder::event() {
  if (!event_) {
    cudaEvent_t ev = nullptr;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    event_ = ev;
  }
  return event_;
}

void StreamOrder::acquire(Device d) {
  cudaStream_t s = enter(d);
  if (!stream_ || capturing(s)) return;
  cudaStream_t own = own_stream(d.index);
  if (stream_ == own && s == own) return;
  auto* ev = static_cast<cudaEvent_t>(event());
  if (stream_ == own) {
    EMBER_CUDA_CHECK(cudaEventRecord(ev, own));
    recorded_ = true;
  }
  if (recorded_) EMBER_CUDA_CHECK(cudaStreamWaitEvent(s, ev, 0));
}

void StreamOrder::release(Device d) noexcept {
  try {
    cudaStream_t s = enter(d);
    if (capturing(s)) return;
    stream_ = nullptr;
    recorded_ = false;
    if (s != own_stream(d.index)) {
      EMBER_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event()), s));
      recorded_ = true;
    }
    stream_ = s;
  } catch (...) {
    // No event to hand over: wait here instead, so the next use starts after this one.
    stream_ = nullptr;
    recorded_ = false;
    if (cudaSetDevice(d.index) == cudaSuccess) cudaDeviceSynchronize();
    cudaGetLastError();
  }
}

}  // namespace ember::gpu

namespace ember {

bool cuda_available() { return gpu::available(); }
int cuda_device_count() { return gpu::device_count(); }

namespace cuda {

Stream Stream::create(Device device) {
  gpu::check_device(device, "Stream::create");
  gpu::set_device(device.index);
  cudaStream_t s = nullptr;
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  Stream r;
  r.device_ = device;
  r.handle_ = std::shared_ptr<void>(s, [](void* p) { cudaStreamDestroy(static_cast<cudaStream_t>(p)); });
  return r;
}

void Stream::synchronize() const {
  gpu::set_device(device_.index);
  EMBER_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle())));
}

Stream Stream::borrow(Device device, void* handle) {
  Stream r;
  r.device_ = device;
  r.handle_ = std::shared_ptr<void>(handle, [](void*) {});
  return r;
}

Stream default_stream(Device device) {
  gpu::check_device(device, "default_stream");
  return Stream::borrow(device, gpu::own_stream(device.index));
}

Stream current_stream(Device device) {
  gpu::check_device(device, "current_stream");
  return Stream::borrow(device, gpu::stream(device.index));
}

StreamGuard::StreamGuard(const Stream& s) : prev_(current_stream(s.device())), cur_(s) {
  gpu::tls_stream[s.device().index] = static_cast<cudaStream_t>(s.handle());
}

StreamGuard::~StreamGuard() { gpu::tls_stream[prev_.device().index] = static_cast<cudaStream_t>(prev_.handle()); }

void synchronize(Device device) { gpu::synchronize(device); }

void set_allow_tf32(bool allow) { gpu::g_allow_tf32 = allow; }
bool allow_tf32() { return gpu::g_allow_tf32; }

}  // namespace cuda
}  // namespace ember
