#pragma once
// Zero-copy interop with xtensor (0.24): an ember Tensor seen as an xtensor
// container, and an xt::xarray seen as an ember Tensor. Both directions share
// memory; nothing is copied. Only contiguous, row-major CPU data qualifies.
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>

#include <ember/tensor.h>

namespace ember {

/// The C++ element types that have an ember dtype (bool, uint8, int32, int64, float, double).
template <class T>
concept XtElement =
    std::is_same_v<T, bool> || std::is_same_v<T, uint8_t> || std::is_same_v<T, int32_t> ||
    std::is_same_v<T, int64_t> || std::is_same_v<T, float> || std::is_same_v<T, double>;

namespace detail {

/// A CPU tensor of `shape` and `dtype` over `ptr` (C order); `release(ctx)` runs when
/// the last tensor sharing it goes away (nullptr: the memory is borrowed).
template <class Dims>
Tensor wrap_host_memory(void* ptr, const Dims& dims, DType dtype, void (*release)(void*),
                        void* ctx) {
  // Build everything that can throw before the Storage takes over `ctx`, so a
  // failure here never runs `release` twice or leaks it.
  Shape shape;
  for (auto d : dims) shape.push_back(static_cast<int64_t>(d));
  Strides strides = contiguous_strides(shape);
  const std::size_t nbytes = static_cast<std::size_t>(shape_numel(shape)) * itemsize(dtype);
  Ref<TensorImpl> impl(new TensorImpl);
  impl->storage = Ref<Storage>(new Storage(ptr, nbytes, Device::cpu(), release, ctx));
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  impl->device = Device::cpu();
  impl->refresh();
  return Tensor(std::move(impl));
}

template <class T, xt::layout_type L>
void check_row_major(const xt::xarray<T, L>& a, const char* op) {
  if (a.layout() != xt::layout_type::row_major && a.dimension() > 1)
    throw ValueError(fmt::format(
        "{}: the xarray is not row-major; only row-major (C order) layout is supported", op));
}

}  // namespace detail

/// A writable xt::xarray_adaptor over `t`'s memory with `t`'s shape (no copy; `t` must outlive
/// it). T must match the dtype; `t` must be contiguous and on the CPU.
template <XtElement T>
auto to_xtensor(Tensor& t) {
  if (!t.device().is_cpu())
    throw DeviceError(
        fmt::format("to_xtensor: the tensor is on {}; move it with .to(Device::cpu()) first",
                    t.device().str()));
  if (t.dtype() != dtype_of<T>())
    throw DTypeError(fmt::format("to_xtensor: the tensor has dtype {}, not {}",
                                 dtype_name(t.dtype()), dtype_name(dtype_of<T>())));
  if (!t.is_contiguous())
    throw ValueError("to_xtensor: the tensor is not contiguous; call contiguous() first");
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  // The pointer goes in as an rvalue: given an lvalue, xt::adapt would keep a
  // reference to this local variable instead of the pointer's value.
  T* ptr = static_cast<T*>(t.data_ptr());
  return xt::adapt(std::move(ptr), static_cast<std::size_t>(t.numel()), xt::no_ownership(), shape);
}

/// A Tensor that takes over `a`'s buffer (no copy: its data pointer is `a.data()`);
/// `a` is moved from. Row-major only.
template <XtElement T, xt::layout_type L>
Tensor from_xtensor(xt::xarray<T, L>&& a) {
  detail::check_row_major(a, "from_xtensor");
  // Moving an xarray moves its buffer, so the heap copy keeps the same data pointer;
  // the Storage deletes it when the last tensor sharing it goes away.
  auto owner = std::make_unique<xt::xarray<T, L>>(std::move(a));
  Tensor t = detail::wrap_host_memory(
      owner->data(), owner->shape(), dtype_of<T>(),
      [](void* p) { delete static_cast<xt::xarray<T, L>*>(p); }, owner.get());
  owner.release();
  return t;
}

/// A Tensor over `a`'s memory (no copy: its data pointer is `a.data()`); the caller keeps
/// `a` alive and unresized while the tensor or its views are used. Row-major only.
template <XtElement T, xt::layout_type L>
Tensor view_of(xt::xarray<T, L>& a) {
  detail::check_row_major(a, "view_of");
  return detail::wrap_host_memory(a.data(), a.shape(), dtype_of<T>(), nullptr, nullptr);
}

}  // namespace ember
