#pragma once
#include <span>

#include <ember/tensor.h>
#include <ember/variable.h>

#include "dispatch/attrs.h"
#include "dispatch/op_id.h"
#include "dispatch/schema.h"

namespace ember::dispatch {

/// Observes (eager tracing) or replaces (graph mode) every op the dispatcher runs.
///
/// Note [Recorder is thread-local]: the active recorder is per thread, so a
/// trace on one thread never sees another thread's eager ops, and the eager
/// path pays one predictable branch on a thread-local pointer.
class Recorder {
 public:
  virtual ~Recorder() = default;
  /// In graph mode, ops build nodes instead of running: `build` replaces the kernel.
  virtual bool graph_mode() const { return false; }
  /// Graph mode: whether this call builds a node (true) or runs as usual (false),
  /// e.g. the shim builds only ops that touch a graph tensor.
  virtual bool builds(std::span<const Tensor> inputs) const {
    (void)inputs;
    return true;
  }
  /// Called before an in-place kernel writes `out`: a recorder that cannot
  /// represent the write throws here, while nothing has changed yet.
  virtual void before_inplace(OpId op, Inputs inputs, const Tensor& out) {
    (void)op;
    (void)inputs;
    (void)out;
  }
  /// Called after a kernel ran. `inplace` is true for add_, copy_, ... (out is inputs' target).
  virtual void record(OpId op, Inputs inputs, const Attrs& attrs, const Tensor& out,
                      bool inplace) = 0;
  /// Graph mode: the shape rule of a call that builds a node. The TF1 shim
  /// overrides it to give unknown (-1) dims the sizes the rule ties them to.
  virtual TensorMeta infer(OpId op, Inputs inputs, const Attrs& attrs) { return schema(op).infer(op, inputs, attrs); }
  /// Graph mode: makes the symbolic result of `op` (called after infer succeeded).
  virtual Tensor build(OpId op, Inputs inputs, const Attrs& attrs, const TensorMeta& meta);
  /// Graph mode: the new value of `out` after an in-place op (add_, copy_): the
  /// op's result, broadcast and cast to out's type as the write would be.
  virtual Tensor build_inplace(OpId op, Inputs inputs, const Attrs& attrs, const Tensor& out);
  /// Graph mode: t's shape with -1 for the dims the graph knows only when it runs.
  virtual Shape static_shape(const Tensor& t) { return t.shape(); }
  /// Graph mode: `t` reshaped to the shape `like` has when the graph runs
  /// (a gradient rule's reshape back to its input's shape, unknown dims included).
  virtual Tensor reshape_like(const Tensor& t, const Tensor& like);
  /// A traced function read `t`'s values on the host (item, to_vector, data).
  virtual void on_host_read(const Tensor& t) { (void)t; }
  /// `v.value()` was called; returns the tensor the caller gets (graph mode may
  /// return a symbolic one).
  virtual Tensor on_variable_read(const Variable& v, const Tensor& value) {
    (void)v;
    return value;
  }
  /// `v` was assigned `src` (kind: copy = assign, add = assign_add, sub = assign_sub),
  /// after the eager write (or instead of it in graph mode).
  virtual void on_variable_assign(const Variable& v, const Tensor& src, OpId kind) {
    (void)v;
    (void)src;
    (void)kind;
  }
};

/// The current thread's recorder (nullptr when none).
Recorder* current_recorder();
/// Installs `r` for this thread; returns the previous one.
Recorder* set_recorder(Recorder* r);

/// Installs a recorder for a scope.
class RecorderGuard {
 public:
  explicit RecorderGuard(Recorder* r) : prev_(set_recorder(r)) {}
  ~RecorderGuard() { set_recorder(prev_); }
  RecorderGuard(const RecorderGuard&) = delete;
  RecorderGuard& operator=(const RecorderGuard&) = delete;

 private:
  Recorder* prev_;
};

}  // namespace ember::dispatch
