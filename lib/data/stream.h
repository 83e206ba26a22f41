#pragma once
// The machinery behind Dataset: a Node is the immutable description of one
// stage; a Stream is one running pass of it (made by Node::make_stream).
//
// Note [Stream contract]: next() and next_block() are called by one consumer
// thread at a time. cancel() may be called from any thread, at any time, also
// while next() runs on another thread, and more than once: it only sets flags
// and wakes waiters, here and upstream, so that a stage blocked on a queue
// returns soon. After cancel() a stream may end early; nobody reads its output.
// A stream that throws is not used again.
#include <cstdint>
#include <memory>
#include <vector>

#include <ember/data/dataset.h>

namespace ember::data::detail {

class Stream {
 public:
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  virtual ~Stream() = default;

  // Writes the next element into `out`; false at the end.
  virtual bool next(Element& out) = 0;
  // True when next_block() is supported (for the whole pass).
  virtual bool has_blocks() const { return false; }
  // Note [Blocks]: up to `max` (> 0) next elements at once, each of `out`'s
  // tensors holding them stacked along a new dim 0, in fresh memory; returns
  // how many (0 at the end). This is how batch() avoids a 0-d tensor per
  // element over range and tensor slices.
  virtual int64_t next_block(int64_t max, Element& out);
  // See Note [Stream contract].
  virtual void cancel() {}
};

class Node {
 public:
  virtual ~Node() = default;
  virtual std::unique_ptr<Stream> make_stream() const = 0;
  virtual int64_t cardinality() const { return Dataset::kUnknown; }
};

// Walks the dim-0 slices of a tuple of tensors that agree in dim 0.
class SliceCursor {
 public:
  SliceCursor() = default;
  explicit SliceCursor(std::vector<Tensor> parts);
  bool next(Element& out);
  int64_t next_block(int64_t max, Element& out);
  bool done() const { return pos_ >= rows_; }

 private:
  std::vector<Tensor> parts_;
  int64_t rows_ = 0;
  int64_t pos_ = 0;
};

// Checks a tuple for from_tensor_slices-style slicing; `op` names the caller.
void check_sliceable(const std::vector<Tensor>& ts, const char* op);

}  // namespace ember::data::detail
