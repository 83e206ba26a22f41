#pragma once
// The CUDA backend as the rest of ember sees it (core, dispatcher, capture).
// Host-only: no CUDA headers, so every file may include it; it exists only in
// builds with EMBER_WITH_CUDA.
#include <cstddef>

#include <ember/memory.h>
#include <ember/tensor.h>

#include "dispatch/op_id.h"
#include "dispatch/recorder.h"

namespace ember::dispatch {
class Registry;
}

namespace ember::gpu {

/// True when a GPU answers (any error from the driver counts as "no GPU").
bool available();
int device_count();
/// Throws DeviceError unless `d` names a GPU that exists.
void check_device(Device d, const char* op);

detail::Allocator& allocator(int device);
MemoryStats memory_stats(int device);
void reset_peak_memory(int device);
void empty_cache(int device);

/// The value of a 0-d host tensor that a GPU kernel takes by value. The
/// kernel's read, not the traced program's: no guard is recorded (a replay
/// passes the new value again).
template <class T>
T host_value(const Tensor& t) {
  dispatch::RecorderGuard off(nullptr);
  return t.item<T>();
}

/// Copies `src` (any device, any layout) into `dst`, a contiguous tensor of the
/// same shape and dtype on another device; synchronous.
void copy_across(Tensor& dst, const Tensor& src);
/// Waits for the work queued on `d`'s current stream.
void synchronize(Device d);

/// Orders the reuse of device memory across streams. One use of a set of
/// buffers (an executor frame) queues its kernels on the calling thread's
/// current stream; the next use may come from a thread with another current
/// stream and must not write the buffers before that work is done. Call
/// release(d) once a use has queued its last work on device d, and acquire(d)
/// before the next use queues any: the new stream then waits on the GPU (no
/// host synchronization). Free while every use runs on the device's own stream.
/// Destroying it waits for the last use (Note [Frames across streams]).
class StreamOrder {
 public:
  StreamOrder() = default;
  ~StreamOrder();
  StreamOrder(StreamOrder&& o) noexcept;
  StreamOrder& operator=(StreamOrder&& o) noexcept;
  void acquire(Device d);
  /// Never throws: it runs while a failed run unwinds (a sticky CUDA error
  /// surfaces at the next call that checks).
  void release(Device d) noexcept;

 private:
  void* event();  // event_, created at first use
  void* stream_ = nullptr;  // the stream of the last use (nullptr: none yet)
  void* event_ = nullptr;   // created at the first cross-stream hand-over
  bool recorded_ = false;   // event_ marks the end of the last use
};

void register_kernels(dispatch::Registry& r);

/// A fused elementwise program (capture/ir/graph.h FusedProgram) on the GPU.
struct FusedOp {
  dispatch::OpId op;
  int a = -1, b = -1;
};
/// Whether a fused group of this shape can run as one GPU kernel.
bool fusable(dispatch::OpId op, DType dt);
int max_fused_inputs();
int max_fused_ops();
void run_fused(DType dt, int n_inputs, const FusedOp* ops, int n_ops, const Tensor* inputs, Tensor& out);

/// Records the kernels one replay of a graph launches on `device` into a CUDA
/// graph, then replays them with one launch. Memory freed while recording is
/// kept alive by the recording (the graph's kernels still point at it).
class GraphRecording {
 public:
  explicit GraphRecording(Device device);
  ~GraphRecording();
  GraphRecording(const GraphRecording&) = delete;
  GraphRecording& operator=(const GraphRecording&) = delete;
  /// Starts capturing this thread's launches on the device (on a private stream).
  void begin();
  /// Ends the capture and instantiates the graph; on error the recording is empty.
  void end();
  /// Abandons a capture begun by begin() (after an exception).
  void abort();
  bool ready() const;
  /// Launches the recorded graph on the device's current stream.
  void replay();

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace ember::gpu
