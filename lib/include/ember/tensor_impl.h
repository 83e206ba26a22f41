#pragma once
// The representation behind Tensor: a refcounted TensorImpl (sizes, strides,
// offset, dtype) over a refcounted Storage (the bytes), as in c10.
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include <ember/device.h>
#include <ember/dtype.h>
#include <ember/memory.h>
#include <ember/shape.h>

namespace ember::detail {

/// An intrusive refcount base: one allocation per object, atomic counts.
class RefCounted {
 public:
  void retain() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  bool release_last() const { return refs_.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  int use_count() const { return refs_.load(std::memory_order_relaxed); }

 protected:
  mutable std::atomic<int> refs_{1};
};

template <class T>
class Ref {
 public:
  Ref() = default;
  explicit Ref(T* adopt) : p_(adopt) {}  // takes over the initial count of 1
  Ref(const Ref& o) : p_(o.p_) {
    if (p_) p_->retain();
  }
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ref& operator=(const Ref& o) {
    Ref(o).swap(*this);
    return *this;
  }
  Ref& operator=(Ref&& o) noexcept {
    Ref(std::move(o)).swap(*this);
    return *this;
  }
  ~Ref() {
    if (p_ && p_->release_last()) delete p_;
  }
  void swap(Ref& o) noexcept { std::swap(p_, o.p_); }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
};

/// Bytes on a device. Owned ones go back to their allocator; borrowed ones
/// (xtensor views, user buffers) call `release` on their keep-alive.
class Storage : public RefCounted {
 public:
  Storage(Block block, Allocator* alloc, Device device)
      : block_(block), alloc_(alloc), device_(device) {}
  Storage(void* ptr, std::size_t nbytes, Device device, void (*release)(void*), void* ctx)
      : block_{ptr, nbytes, 0}, device_(device), release_(release), ctx_(ctx) {}
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  void* data() const { return block_.ptr; }
  std::size_t nbytes() const { return block_.size; }
  Device device() const { return device_; }
  /// Bumped by every in-place write into these bytes (any view): autograd
  /// compares it with the value it saw when it saved a tensor for a gradient.
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }
  /// The allocator that owns the bytes (nullptr for borrowed memory).
  const Allocator* allocator() const { return alloc_; }

  /// Storage of `nbytes` from the allocator of `device`.
  static Ref<Storage> allocate(std::size_t nbytes, Device device);

 private:
  Block block_;
  Allocator* alloc_ = nullptr;
  Device device_;
  void (*release_)(void*) = nullptr;
  void* ctx_ = nullptr;
  std::atomic<uint32_t> version_{0};
};

/// What a symbolic tensor stands for (a graph node's output).
///
/// Note [Symbolic tensors]: in graph mode (the compat::v1 shim) ops return
/// tensors with a shape and a dtype but no storage; `symbol` says which graph
/// node they are. Every path that would touch the bytes (the dispatcher's
/// kernel call, host reads, printing) checks for a missing storage first and
/// throws a ValueError naming the node, so a symbolic tensor never runs
/// eagerly by accident (e.g. on a thread without the graph's scope).
struct Symbol : RefCounted {
  virtual ~Symbol() = default;
  /// How errors and printing name it, e.g. `graph tensor "add:0" (float32 [-1,3])`.
  virtual std::string describe() const = 0;
};

/// Sizes, strides (in elements) and offset over a Storage.
struct TensorImpl : RefCounted {
  Ref<Storage> storage;  // null for a symbolic tensor, see Note [Symbolic tensors]
  Ref<Symbol> symbol;
  Shape shape;
  Strides strides;
  int64_t offset = 0;  // in elements
  int64_t numel = 0;
  DType dtype = DType::float32;
  Device device;
  bool wrapped_scalar = false;  // a 0-d tensor made from a C++ number (promotion rule)
  bool contiguous = true;       // cached: strides are C-order for shape

  void* data() const {
    return static_cast<char*>(storage->data()) + offset * static_cast<int64_t>(itemsize(dtype));
  }
  void refresh();  // recompute numel and contiguous after shape/strides change
};

}  // namespace ember::detail
