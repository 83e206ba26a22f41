#pragma once
// Internal CUDA runtime helpers of the backend: checked calls, the current
// device and stream, the cuBLAS handle. Host code only.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <ember/device.h>

namespace ember::gpu {

/// Throws ember::Error (OutOfMemoryError for allocation failures) naming `call`.
[[noreturn]] void throw_cuda(cudaError_t err, const char* call);
[[noreturn]] void throw_cublas(cublasStatus_t st, const char* call);

#define EMBER_CUDA_CHECK(call)                                      \
  do {                                                              \
    const cudaError_t ember_err_ = (call);                          \
    if (ember_err_ != cudaSuccess) ::ember::gpu::throw_cuda(ember_err_, #call); \
  } while (0)
#define EMBER_CUBLAS_CHECK(call)                                    \
  do {                                                              \
    const cublasStatus_t ember_st_ = (call);                        \
    if (ember_st_ != CUBLAS_STATUS_SUCCESS) ::ember::gpu::throw_cublas(ember_st_, #call); \
  } while (0)

/// Makes `index` the calling thread's CUDA device (a no-op when it already is).
void set_device(int index);

/// The current stream of `index` on this thread (the device's own stream by default).
cudaStream_t stream(int index);
/// Sets this thread's current stream of `index` (nullptr: the device's own);
/// returns the previous setting.
cudaStream_t set_current_stream(int index, cudaStream_t s);
/// Makes `index` current and returns its current stream: the prologue of every launch.
inline cudaStream_t enter(Device d) {
  set_device(d.index);
  return stream(d.index);
}

/// This thread's cuBLAS handle for the device, bound to its current stream.
cublasHandle_t cublas(int index);

}  // namespace ember::gpu
