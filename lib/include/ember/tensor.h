#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <ember/device.h>
#include <ember/dtype.h>
#include <ember/error.h>
#include <ember/half.h>
#include <ember/shape.h>
#include <ember/tensor_impl.h>

namespace ember {

/// An n-d array. Copies are cheap and share storage (like torch::Tensor);
/// views (reshape, transpose, slice, ...) share storage too; `clone()` copies.
class Tensor {
 public:
  /// An undefined tensor; `defined()` is false and most calls throw ValueError.
  Tensor() = default;
  explicit Tensor(detail::Ref<detail::TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return static_cast<bool>(impl_); }
  const Shape& shape() const { return impl().shape; }
  /// Size of dim `d` (negative counts from the end).
  int64_t shape(int64_t d) const;
  int64_t size(int64_t d) const { return shape(d); }
  const Strides& strides() const { return impl().strides; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t numel() const { return impl().numel; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  int64_t storage_offset() const { return impl().offset; }
  bool is_contiguous() const { return impl().contiguous; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * itemsize(dtype()); }

  /// The single value of a one-element tensor, converted to T.
  template <class T>
  T item() const;
  /// All values in row-major order, converted to T.
  template <class T>
  std::vector<T> to_vector() const;
  /// Pointer to the first element; T must be the tensor's dtype (CPU only).
  template <class T>
  T* data();
  template <class T>
  const T* data() const;
  void* data_ptr() const;

  // Views: share storage with *this.
  /// Same data with a new shape; one dim may be -1. Copies only when strides forbid a view.
  Tensor reshape(const Shape& shape) const;
  /// Like reshape but never copies; throws ShapeError when strides forbid a view.
  Tensor view(const Shape& shape) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor permute(const Axes& dims) const;
  /// Transpose of a 0-, 1- or 2-d tensor.
  Tensor t() const;
  /// Elements start, start+step, ... < stop along `dim` (Python slice rules, clamped).
  Tensor slice(int64_t dim, int64_t start, int64_t stop, int64_t step = 1) const;
  /// Drops `dim`, keeping index `index` of it.
  Tensor select(int64_t dim, int64_t index) const;
  Tensor operator[](int64_t index) const { return select(0, index); }
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  /// Broadcasts size-1 dims to `shape` without copying (stride 0); -1 keeps a size.
  Tensor expand(const Shape& shape) const;
  Tensor broadcast_to(const Shape& shape) const { return expand(shape); }
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // Copies.
  /// *this when already C-contiguous, else a contiguous copy.
  Tensor contiguous() const;
  /// A contiguous copy that owns its storage.
  Tensor clone() const;
  /// Converts the element type (a copy; *this when already `dt`).
  Tensor to(DType dt) const;
  /// Moves to a device (a copy; *this when already there).
  Tensor to(Device device) const;

  // Reductions as methods (see ops.h for the rules).
  Tensor sum(const Axes& axes = {}, bool keepdims = false) const;
  Tensor mean(const Axes& axes = {}, bool keepdims = false) const;
  Tensor prod(const Axes& axes = {}, bool keepdims = false) const;
  Tensor max(const Axes& axes = {}, bool keepdims = false) const;
  Tensor min(const Axes& axes = {}, bool keepdims = false) const;
  Tensor argmax(int64_t axis, bool keepdims = false) const;
  Tensor argmin(int64_t axis, bool keepdims = false) const;
  Tensor var(const Axes& axes = {}, bool keepdims = false, double correction = 1) const;
  Tensor std(const Axes& axes = {}, bool keepdims = false, double correction = 1) const;
  Tensor all(const Axes& axes = {}, bool keepdims = false) const;
  Tensor any(const Axes& axes = {}, bool keepdims = false) const;

  // In place: the result is cast to this tensor's dtype and must have its shape.
  Tensor& add_(const Tensor& other);
  Tensor& add_(Scalar other);
  Tensor& sub_(const Tensor& other);
  Tensor& sub_(Scalar other);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(Scalar other);
  Tensor& div_(const Tensor& other);
  Tensor& div_(Scalar other);
  Tensor& operator+=(const Tensor& o) { return add_(o); }
  Tensor& operator+=(Scalar o) { return add_(o); }
  Tensor& operator-=(const Tensor& o) { return sub_(o); }
  Tensor& operator-=(Scalar o) { return sub_(o); }
  Tensor& operator*=(const Tensor& o) { return mul_(o); }
  Tensor& operator*=(Scalar o) { return mul_(o); }
  Tensor& operator/=(const Tensor& o) { return div_(o); }
  Tensor& operator/=(Scalar o) { return div_(o); }
  /// Copies `src` (broadcast, cast) into this tensor's memory.
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(Scalar value);
  Tensor& zero_() { return fill_(0); }

  /// "tensor([1., 2.])"-style text (see format.h).
  std::string str() const;
  /// True when both refer to the same TensorImpl.
  bool is_same(const Tensor& o) const { return impl_.get() == o.impl_.get(); }

  detail::TensorImpl& impl() const {
    if (!impl_) [[unlikely]]
      throw_undefined();
    return *impl_;
  }
  detail::TensorImpl* impl_ptr() const { return impl_.get(); }

 private:
  [[noreturn]] static void throw_undefined();
  detail::Ref<detail::TensorImpl> impl_;
};

namespace detail {
/// A fresh tensor of `shape` and `dtype` on `device` (uninitialized, from the caching allocator).
Tensor make_tensor(const Shape& shape, DType dtype, Device device);
/// A view of `base`'s storage with the given layout.
Tensor make_view(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset);
/// A 0-d tensor holding a C++ number, marked so promotion treats it as a scalar.
Tensor wrap_scalar(Scalar s, DType dtype, Device device);
/// Called by item/to_vector/data so that a recorder can guard host reads.
void note_host_read(const Tensor& t);
[[noreturn]] void throw_value_count(std::size_t n, const Shape& shape);
[[noreturn]] void throw_ragged(std::size_t expected, std::size_t got);
}  // namespace detail

}  // namespace ember
