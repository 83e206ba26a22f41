#pragma once
// The executor: a graph lowered once to steps with resolved kernels and
// planned buffers, replayed with no inference and no allocation for
// intermediates (frames of buffers are pooled, so concurrent runs are safe).
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "cpu/arch/arch.h"
#include "dispatch/schema.h"
#include "ir/graph.h"
#ifdef EMBER_WITH_CUDA
#include "gpu/api.h"
#endif

namespace ember::capture {

struct Frame;

class Executor {
 public:
  Executor(const GraphIR& g, bool plan_memory, bool cuda_graphs = true);
  ~Executor();
  std::vector<Tensor> run(const GraphIR& g, const std::vector<Tensor>& inputs) const;
  /// Bytes of intermediate buffers one run holds (for tests and benchmarks).
  std::size_t planned_bytes() const { return planned_bytes_; }
  /// True when replays go through a CUDA graph (every node on one GPU).
  bool uses_cuda_graph() const { return cuda_graph_; }

  struct Step {
    NodeKind kind;
    dispatch::OpId op;
    dispatch::KernelFn kernel = nullptr;
    cpu::Loop loop = nullptr;  // elementwise fast path (contiguous same-shape inputs)
    const Node* node = nullptr;
    SmallVector<int, 4> in;
    int out = -1;
    bool random = false;
    bool reads_host = false;  // run the op's rule each replay (it checks values)
    int64_t numel = 0;        // output elements (fast path)
    uint8_t bcast = 0;        // fast path: bit i set when input i is one broadcast element
  };

 private:
  std::unique_ptr<Frame> make_frame() const;
  void run_steps(const GraphIR& g, std::vector<Tensor>& v, const std::vector<Tensor>& inputs,
                 std::vector<const Node*>& assigns, const std::vector<Tensor>* vars = nullptr) const;
  std::vector<Tensor> finish(const GraphIR& g, std::vector<Tensor>& v, const std::vector<Tensor>& inputs,
                             const std::vector<const Node*>& assigns) const;
  std::vector<Tensor> run_cuda_graph(const GraphIR& g, Frame& f, const std::vector<Tensor>& inputs) const;
  bool cuda_graph_ = false;
  Device graph_device_;
  std::vector<Step> steps_;
  std::vector<int> slot_of_;          // value id -> buffer slot, -1: allocated per run
  std::vector<std::size_t> slot_bytes_;
  std::vector<Device> slot_device_;
#ifdef EMBER_WITH_CUDA
  std::vector<Device> gpu_devices_;   // GPUs whose memory a frame holds (Note [Frames across streams])
  std::vector<std::vector<gpu::FusedOp>> gpu_fused_;  // per step: a GPU fused node's program
#endif
  std::size_t planned_bytes_ = 0;
  int n_values_ = 0;
  // Pooled frames: one spare taken and returned without the lock (the usual
  // one-thread loop), the others under mu_.
  mutable std::atomic<Frame*> spare_{nullptr};
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<Frame>> free_;
};

/// Evaluates a fused elementwise program into `out` (contiguous) in one pass.
void run_fused(const FusedProgram& p, const Tensor* inputs, int n_inputs, Tensor& out);

}  // namespace ember::capture
