// View kernels (reshape, permute, slice, select, expand), copies between
// devices (to_device) and the copying structural ops (concat, index_select).
#include <algorithm>

#include "cpu/kernels.h"
#include "dispatch/dispatcher.h"
#include "cpu/loops.h"
#include "ops/infer.h"
#ifdef EMBER_WITH_CUDA
#include "gpu/api.h"
#endif

namespace ember::cpu {

using dispatch::OpId;

bool view_strides(const Shape& shape, const Strides& strides, const Shape& target, Strides* out) {
  out->resize(target.size());
  if (shape_numel(shape) == 0 || shape.empty()) {
    *out = contiguous_strides(target);
    return true;
  }
  // Walk chunks of the old shape that are contiguous among themselves and match
  // them with runs of target dims of the same element count.
  int64_t view_d = static_cast<int64_t>(target.size()) - 1;
  int64_t chunk_base_stride = strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
        (*out)[view_d] = view_numel * chunk_base_stride;
        view_numel *= target[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

void view_kernel(OpId op, dispatch::Inputs in, const dispatch::Attrs& a, Tensor& out) {
  const Tensor& x = in[0];
  const auto& impl = x.impl();
  Shape shape;
  Strides strides;
  int64_t offset = impl.offset;
  switch (op) {
    case OpId::reshape: {
      shape.assign(a.ints.begin(), a.ints.end());
      if (!view_strides(impl.shape, impl.strides, shape, &strides)) {
        out = ember::detail::make_tensor(shape, x.dtype(), x.device());
        Tensor flat = ember::detail::make_view(out, impl.shape, contiguous_strides(impl.shape), 0);
        if (x.device().is_cpu()) {
          copy_into(flat, x);
        } else {  // this view kernel serves CUDA tensors too
          dispatch::Attrs ca;
          ca.dtype = x.dtype();
          dispatch::kernel_for(OpId::copy, x.device())(OpId::copy, dispatch::Inputs(&x, 1), ca, flat);
        }
        return;
      }
      break;
    }
    case OpId::detach:
      shape = impl.shape;
      strides = impl.strides;
      break;
    case OpId::permute:
      for (int64_t p : a.ints) {
        int64_t d = p < 0 ? p + x.dim() : p;
        shape.push_back(impl.shape[d]);
        strides.push_back(impl.strides[d]);
      }
      break;
    case OpId::slice: {
      shape = impl.shape;
      strides = impl.strides;
      const int64_t d = a.i0 < 0 ? a.i0 + x.dim() : a.i0;
      offset += a.i1 * strides[d];
      shape[d] = a.i2 > a.i1 ? 1 + (a.i2 - a.i1 - 1) / a.i3 : 0;
      if (shape[d] > 1) strides[d] *= a.i3;  // one element: the step never applies (and may be huge)
      break;
    }
    case OpId::select: {
      shape = impl.shape;
      strides = impl.strides;
      const int64_t d = a.i0 < 0 ? a.i0 + x.dim() : a.i0;
      offset += a.i1 * strides[d];
      shape.erase(shape.begin() + d);
      strides.erase(strides.begin() + d);
      break;
    }
    case OpId::expand: {
      shape.assign(a.ints.begin(), a.ints.end());
      strides.resize(shape.size(), 0);
      const std::size_t lead = shape.size() - impl.shape.size();
      for (std::size_t i = 0; i < impl.shape.size(); ++i)
        strides[lead + i] = impl.shape[i] == 1 && shape[lead + i] != 1 ? 0 : impl.strides[i];
      break;
    }
    default:
      EMBER_CHECK_INTERNAL(false);
  }
  out = ember::detail::make_view(x, shape, strides, offset);
}

void concat_kernel(OpId, dispatch::Inputs in, const dispatch::Attrs& a, Tensor& out) {
  ops::concat_slices(in, a, out, &copy_into);
}

void index_select_kernel(OpId, dispatch::Inputs in, const dispatch::Attrs& a, Tensor& out) {
  const Tensor& x = in[0];
  if (x.dim() == 0) {
    copy_into(out, x);
    return;
  }
  const int64_t d = a.i0 < 0 ? a.i0 + x.dim() : a.i0;
  const std::vector<int64_t> idx = ops::index_values(in[1]);
  const int64_t size = x.shape()[d];
  Shape s = x.shape();
  s.erase(s.begin() + d);
  Strides xs = x.strides(), os = out.strides();
  xs.erase(xs.begin() + d);
  os.erase(os.begin() + d);
  for (std::size_t i = 0; i < idx.size(); ++i) {
    const int64_t v = idx[i] < 0 ? idx[i] + size : idx[i];
    Tensor src = ember::detail::make_view(x, s, xs, x.storage_offset() + v * x.strides()[d]);
    Tensor dst = ember::detail::make_view(
        out, s, os, out.storage_offset() + static_cast<int64_t>(i) * out.strides()[d]);
    copy_into(dst, src);
  }
}

// to(Device): the destination's kernel runs, so this one is registered for
// the CPU and for CUDA; `out` is a fresh contiguous tensor on the destination.
void to_device_kernel(OpId, dispatch::Inputs in, const dispatch::Attrs&, Tensor& out) {
  const Tensor& x = in[0];
  // A moved C++ number still promotes like one (float16 * 0.5 stays float16).
  if (x.dim() == 0) out.impl().wrapped_scalar = x.impl().wrapped_scalar;
#ifdef EMBER_WITH_CUDA
  if (!x.device().is_cpu() || !out.device().is_cpu()) {
    gpu::copy_across(out, x);
    return;
  }
#endif
  copy_into(out, x);  // CPU to CPU, the only move a build without CUDA has
}

}  // namespace ember::cpu
