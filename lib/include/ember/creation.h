#pragma once
#include <cstring>
#include <initializer_list>
#include <optional>
#include <vector>

#include <ember/tensor.h>

namespace ember {

/// A 1-d tensor of the values; the dtype follows T (float -> float32, int -> int32, ...).
template <class T>
Tensor tensor(std::initializer_list<T> values, Device device = Device::cpu());
/// A 2-d tensor from nested lists (rows must have one length).
template <class T>
Tensor tensor(std::initializer_list<std::initializer_list<T>> rows, Device device = Device::cpu());
/// A tensor of `shape` holding `values` in row-major order.
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
/// A 1-d tensor holding `values`.
template <class T>
Tensor tensor(const std::vector<T>& values, Device device = Device::cpu()) {
  return tensor(values, Shape{static_cast<int64_t>(values.size())}, device);
}
/// A 0-d tensor; its dtype is `dtype` or the scalar's own (bool, int64, float32).
Tensor scalar_tensor(Scalar value, std::optional<DType> dtype = {}, Device device = Device::cpu());

/// Uninitialized memory (from the caching allocator).
Tensor empty(const Shape& shape, DType dtype = float32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = float32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = float32, Device device = Device::cpu());
/// Every element `value`; the dtype defaults to the value's kind (bool, int64, float32).
Tensor full(const Shape& shape, Scalar value, std::optional<DType> dtype = {},
            Device device = Device::cpu());
/// 0, 1, ..., end-1 (int64 for integer arguments, float32 otherwise).
Tensor arange(Scalar end, std::optional<DType> dtype = {}, Device device = Device::cpu());
/// start, start+step, ... < end (or > end for a negative step).
Tensor arange(Scalar start, Scalar end, Scalar step = 1, std::optional<DType> dtype = {},
              Device device = Device::cpu());
/// `steps` evenly spaced values from start to end, both included.
Tensor linspace(double start, double end, int64_t steps, DType dtype = float32,
                Device device = Device::cpu());
/// n x m identity (m = n when omitted).
Tensor eye(int64_t n, std::optional<int64_t> m = {}, DType dtype = float32,
           Device device = Device::cpu());

Tensor empty_like(const Tensor& t, std::optional<DType> dtype = {});
Tensor zeros_like(const Tensor& t, std::optional<DType> dtype = {});
Tensor ones_like(const Tensor& t, std::optional<DType> dtype = {});
Tensor full_like(const Tensor& t, Scalar value, std::optional<DType> dtype = {});

// ---- definitions of the templates ----------------------------------------

namespace detail {
template <class T>
Tensor tensor_from(const T* values, std::size_t n, const Shape& shape, Device device) {
  if (static_cast<int64_t>(n) != shape_numel(shape))
    throw_value_count(n, shape);
  Tensor t = make_tensor(shape, dtype_of<T>(), Device::cpu());
  if (n) std::memcpy(t.impl().data(), values, n * sizeof(T));
  return device.is_cpu() ? t : t.to(device);
}
}  // namespace detail

template <class T>
Tensor tensor(std::initializer_list<T> values, Device device) {
  return detail::tensor_from(values.begin(), values.size(),
                             Shape{static_cast<int64_t>(values.size())}, device);
}

template <class T>
Tensor tensor(std::initializer_list<std::initializer_list<T>> rows, Device device) {
  std::vector<T> flat;
  const std::size_t cols = rows.size() ? rows.begin()->size() : 0;
  for (const auto& r : rows) {
    if (r.size() != cols) detail::throw_ragged(cols, r.size());
    flat.insert(flat.end(), r.begin(), r.end());
  }
  return tensor(flat, Shape{static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols)}, device);
}

template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, Device device) {
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<uint8_t> bytes(values.begin(), values.end());
    Tensor t = detail::tensor_from(bytes.data(), bytes.size(), shape, Device::cpu());
    return t.to(DType::bool_).to(device);
  } else {
    return detail::tensor_from(values.data(), values.size(), shape, device);
  }
}

}  // namespace ember
