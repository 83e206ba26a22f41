#include <ember/tensor.h>

#include <fmt/format.h>

#include "dispatch/dispatcher.h"
#include "dispatch/dtype_visit.h"
#ifdef EMBER_WITH_CUDA
#include "gpu/api.h"
#endif

namespace ember {
namespace detail {

Storage::~Storage() {
  if (alloc_)
    alloc_->deallocate(block_);
  else if (release_)
    release_(ctx_);
}

Ref<Storage> Storage::allocate(std::size_t nbytes, Device device) {
  if (!device.is_cpu()) {
#ifdef EMBER_WITH_CUDA
    gpu::check_device(device, "empty");
    Allocator& a = gpu::allocator(device.index);
    Block b = a.allocate(nbytes);
    return Ref<Storage>(new Storage(b, &a, device));
#else
    throw DeviceError(fmt::format(
        "to: {} requested but no CUDA device is available; check em::cuda_available()",
        device.str()));
#endif
  }
  Allocator& a = cpu_allocator();
  Block b = a.allocate(nbytes);
  return Ref<Storage>(new Storage(b, &a, device));
}

void TensorImpl::refresh() {
  numel = shape_numel(shape);
  contiguous = true;
  int64_t expected = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expected) {
      contiguous = false;
      break;
    }
    expected *= shape[i];
  }
}

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
  auto* impl = new TensorImpl;
  Ref<TensorImpl> ref(impl);
  int64_t n = 1, bytes = 0;
  for (int64_t d : shape) {
    if (d < 0) throw ValueError(fmt::format("empty: negative size in shape {}", shape_str(shape)));
    if (__builtin_mul_overflow(n, d, &n)) n = -1;
  }
  if (n < 0 || __builtin_mul_overflow(n, static_cast<int64_t>(itemsize(dtype)), &bytes))
    throw OutOfMemoryError(fmt::format("empty: shape {} of {} is too large to allocate",
                                       shape_str(shape), dtype_name(dtype)));
  impl->storage = Storage::allocate(static_cast<std::size_t>(bytes), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->numel = n;
  impl->dtype = dtype;
  impl->device = device;
  impl->contiguous = true;
  return Tensor(std::move(ref));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset) {
  const TensorImpl& b = base.impl();
  auto* impl = new TensorImpl;
  Ref<TensorImpl> ref(impl);
  impl->storage = b.storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = b.dtype;
  impl->device = b.device;
  impl->refresh();
  return Tensor(std::move(ref));
}

Tensor wrap_scalar(Scalar s, DType dtype, Device device) {
  // Half-precision tensors are refused by the op's own rule; the scalar only
  // needs to exist until then.
  if (dtype == DType::float16 || dtype == DType::bfloat16) dtype = DType::float32;
  // Always a host number: GPU kernels take a CPU 0-d operand by value.
  (void)device;
  Tensor t = make_tensor({}, dtype, Device::cpu());
  dispatch::visit_dtype(dtype, [&]<class T>() { *static_cast<T*>(t.impl().data()) = s.to<T>(); });
  t.impl().wrapped_scalar = true;
  return t;
}

void note_host_read(const Tensor& t) {
  if (!t.impl().storage) [[unlikely]]
    throw ValueError(fmt::format(
        "tensor: cannot read the values of {}: it has none until Session::run computes it",
        t.impl().symbol ? t.impl().symbol->describe() : std::string("a tensor without storage")));
  if (auto* r = dispatch::detail::tls_recorder) [[unlikely]]
    r->on_host_read(t);
}

namespace {
// Calls f(element_offset) for every element of `t` in row-major order.
template <class F>
void for_each_offset(const TensorImpl& t, F&& f) {
  const int64_t nd = static_cast<int64_t>(t.shape.size());
  if (t.numel == 0) return;
  if (t.contiguous) {
    for (int64_t i = 0; i < t.numel; ++i) f(t.offset + i);
    return;
  }
  SmallVector<int64_t, 6> idx(static_cast<std::size_t>(nd), 0);
  int64_t off = t.offset;
  for (int64_t n = 0; n < t.numel; ++n) {
    f(off);
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < t.shape[d]) {
        off += t.strides[d];
        break;
      }
      off -= t.strides[d] * (t.shape[d] - 1);
      idx[d] = 0;
    }
  }
}

void check_host(const Tensor& t, const char* op) {
  if (!t.device().is_cpu())
    throw DeviceError(fmt::format("{}: the tensor is on {}; move it with .to(Device::cpu()) first",
                                  op, t.device().str()));
}
}  // namespace

}  // namespace detail

void Tensor::throw_undefined() { throw ValueError("tensor: this Tensor is undefined (default-constructed)"); }

int64_t Tensor::shape(int64_t d) const {
  const auto& s = impl().shape;
  return s[static_cast<std::size_t>(wrap_dim(d, dim(), "shape"))];
}

void* Tensor::data_ptr() const {
  if (device().is_cuda()) return impl().data();  // the device address, for interop
  detail::check_host(*this, "data_ptr");
  detail::note_host_read(*this);
  return impl().data();
}

template <class T>
T Tensor::item() const {
  if (device().is_cuda()) {  // synchronizes: waits for the value
    detail::note_host_read(*this);
    return to(Device::cpu()).item<T>();
  }
  detail::check_host(*this, "item");
  if (numel() != 1)
    throw ValueError(fmt::format(
        "item: a tensor with {} elements cannot be converted to a scalar (shape {})", numel(),
        shape_str(shape())));
  detail::note_host_read(*this);
  return dispatch::visit_dtype(dtype(), [&]<class S>() {
    return static_cast<T>(*static_cast<const S*>(impl().data()));
  });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  if (device().is_cuda()) {
    detail::note_host_read(*this);
    return to(Device::cpu()).to_vector<T>();
  }
  detail::check_host(*this, "to_vector");
  detail::note_host_read(*this);
  std::vector<T> out;
  out.reserve(static_cast<std::size_t>(numel()));
  const auto& t = impl();
  dispatch::visit_dtype(dtype(), [&]<class S>() {
    const S* base = static_cast<const S*>(t.storage->data());
    detail::for_each_offset(t, [&](int64_t off) { out.push_back(static_cast<T>(base[off])); });
  });
  return out;
}

template <class T>
T* Tensor::data() {
  detail::check_host(*this, "data");
  if (dtype() != dtype_of<T>())
    throw DTypeError(fmt::format("data: the tensor has dtype {}, not {}", dtype_name(dtype()),
                                 dtype_name(dtype_of<T>())));
  detail::note_host_read(*this);
  return static_cast<T*>(impl().data());
}

template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

#define EMBER_INSTANTIATE(T)                        \
  template T Tensor::item<T>() const;               \
  template std::vector<T> Tensor::to_vector<T>() const; \
  template T* Tensor::data<T>();                    \
  template const T* Tensor::data<T>() const;
EMBER_INSTANTIATE(bool)
EMBER_INSTANTIATE(uint8_t)
EMBER_INSTANTIATE(int32_t)
EMBER_INSTANTIATE(int64_t)
EMBER_INSTANTIATE(float)
EMBER_INSTANTIATE(double)
#undef EMBER_INSTANTIATE

}  // namespace ember
