// CUDA-graph recording for the capture executor, fused elementwise groups,
// and copies between devices.
#include <vector>

#include <fmt/format.h>

#include <ember/error.h>

#include "api.h"
#include "dispatch/recorder.h"
#include "kernels/launch.h"
#include "runtime/allocator.h"
#include "runtime/runtime.h"

namespace ember::gpu {

Tensor contiguous(const Tensor& t);  // ops.cpp

// ---- copies between devices --------------------------------------------------

void copy_across(Tensor& dst, const Tensor& src) {
  check_device(dst.device(), "to");
  check_device(src.device(), "to");
  // The contiguous copy below is this kernel's own work, not an op of the
  // traced program that called to().
  dispatch::RecorderGuard quiet(nullptr);
  const std::size_t bytes = static_cast<std::size_t>(src.numel()) * itemsize(src.dtype());
  if (src.device().is_cpu()) {  // host -> device
    const Tensor host = src.contiguous();
    cudaStream_t s = enter(dst.device());
    if (bytes) {
      EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.impl().data(), host.impl().data(), bytes, cudaMemcpyHostToDevice, s));
      EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
    }
    return;
  }
  const Tensor dev = contiguous(src);
  cudaStream_t s = enter(src.device());
  if (bytes) {
    if (dst.device().is_cpu())
      EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.impl().data(), dev.impl().data(), bytes, cudaMemcpyDeviceToHost, s));
    else
      EMBER_CUDA_CHECK(cudaMemcpyPeerAsync(dst.impl().data(), dst.device().index, dev.impl().data(),
                                           src.device().index, bytes, s));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
  }
}

// ---- fused elementwise groups ------------------------------------------------

bool fusable(dispatch::OpId op, DType dt) { return is_floating(dt) && fused_supported(op); }
int max_fused_inputs() { return kMaxFusedInputs; }
int max_fused_ops() { return kMaxFusedInstrs; }

void run_fused(DType dt, int n_inputs, const FusedOp* ops, int n_ops, const Tensor* inputs, Tensor& out) {
  if (n_inputs > kMaxFusedInputs || n_ops > kMaxFusedInstrs || n_ops < 1)
    throw InternalError("run_fused: program too large for the GPU kernel");
  FusedArgs a;
  a.dtype = dt;
  a.n_inputs = n_inputs;
  a.n_instrs = n_ops;
  for (int k = 0; k < n_ops; ++k) {
    a.op[k] = static_cast<uint16_t>(ops[k].op);
    a.a[k] = static_cast<int16_t>(ops[k].a);
    a.b[k] = static_cast<int16_t>(ops[k].b);
  }
  const Shape& shape = out.shape();
  if (shape.size() > static_cast<std::size_t>(kMaxDims))
    throw ValueError(fmt::format("fused kernel: at most {} dims on CUDA (shape {})", kMaxDims, shape_str(shape)));
  a.ndim = static_cast<int>(shape.size());
  for (int d = 0; d < a.ndim; ++d) a.size[d] = shape[d];
  a.numel = out.numel();
  for (int j = 0; j < n_inputs; ++j) {
    const Tensor& t = inputs[j];
    if (t.device().is_cpu()) {  // a wrapped number (0-d): passed by value
      a.in_host[j] = true;
      a.in_val[j] = host_value<double>(t);
      continue;
    }
    a.in[j] = t.impl().data();
    a.in_scalar[j] = t.numel() == 1;
    a.in_dense[j] = t.shape() == shape && t.is_contiguous();
    const std::size_t lead = shape.size() - static_cast<std::size_t>(t.dim());
    for (std::size_t d = 0; d < static_cast<std::size_t>(t.dim()); ++d)
      a.in_stride[j][lead + d] = t.shape()[d] == 1 ? 0 : t.strides()[d];
  }
  a.out = out.impl().data();
  launch_fused(a, enter(out.device()));
}

// ---- CUDA-graph recording ----------------------------------------------------

struct GraphRecording::Impl {
  Device device;
  cudaStream_t capture = nullptr;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::vector<ParkedBlock> parked;
  std::vector<ParkedBlock>* prev_parking = nullptr;
  cudaStream_t prev_stream = nullptr;
  bool capturing = false;
};

GraphRecording::GraphRecording(Device device) : impl_(new Impl) { impl_->device = device; }

GraphRecording::~GraphRecording() {
  if (impl_->capturing) abort();
  if (impl_->exec) cudaGraphExecDestroy(impl_->exec);
  if (impl_->graph) cudaGraphDestroy(impl_->graph);
  if (impl_->capture) cudaStreamDestroy(impl_->capture);
  // The graph is gone: what its kernels used can be reused. The launches
  // already queued finish first (blocks are reused only in stream order on
  // the stream that last used them, and the graph ran on the current stream).
  if (!impl_->parked.empty()) {
    cudaStreamSynchronize(stream(impl_->device.index));
    release_parked(impl_->parked);
  }
  delete impl_;
}

// Note [Recording on a private stream]: the kernels of one replay are captured
// from a stream of the recording's own, made current for the capture, so
// that other threads' work on the device's stream is not swept into the graph
// (the current stream is per thread). Frees during the capture are parked.
void GraphRecording::begin() {
  Impl& r = *impl_;
  set_device(r.device.index);
  if (!r.capture) EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&r.capture, cudaStreamNonBlocking));
  // The capture stream may read memory the current stream is still writing.
  cudaEvent_t ev = nullptr;
  EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  EMBER_CUDA_CHECK(cudaEventRecord(ev, stream(r.device.index)));
  EMBER_CUDA_CHECK(cudaStreamWaitEvent(r.capture, ev, 0));
  cudaEventDestroy(ev);
  EMBER_CUDA_CHECK(cudaStreamSynchronize(r.capture));
  EMBER_CUDA_CHECK(cudaStreamBeginCapture(r.capture, cudaStreamCaptureModeRelaxed));
  r.capturing = true;
  r.prev_parking = park_frees(&r.parked);
  r.prev_stream = set_current_stream(r.device.index, r.capture);
}

void GraphRecording::end() {
  Impl& r = *impl_;
  set_current_stream(r.device.index, r.prev_stream);
  park_frees(r.prev_parking);
  r.capturing = false;
  EMBER_CUDA_CHECK(cudaStreamEndCapture(r.capture, &r.graph));
  EMBER_CUDA_CHECK(cudaGraphInstantiate(&r.exec, r.graph, 0));
}

void GraphRecording::abort() {
  Impl& r = *impl_;
  if (!r.capturing) return;
  set_current_stream(r.device.index, r.prev_stream);
  park_frees(r.prev_parking);
  r.capturing = false;
  cudaGraph_t g = nullptr;
  cudaStreamEndCapture(r.capture, &g);
  if (g) cudaGraphDestroy(g);
  cudaGetLastError();
}

bool GraphRecording::ready() const { return impl_->exec != nullptr; }

void GraphRecording::replay() {
  EMBER_CUDA_CHECK(cudaGraphLaunch(impl_->exec, enter(impl_->device)));
}

}  // namespace ember::gpu
