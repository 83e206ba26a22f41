#include "cpu/loops.h"

#include <algorithm>

#include <fmt/format.h>

#include "cpu/parallel.h"

namespace ember::cpu {
namespace {

struct Iter {
  int nops = 0;  // out + inputs
  int ndim = 0;
  int64_t shape[64];
  int64_t strides[kMaxOperands][64];  // in elements, per operand, per dim (outer first)
  char* base[kMaxOperands];
  int64_t esize[kMaxOperands];
};

// Builds the iteration with broadcasting and dim coalescing. Returns false when
// the rank exceeds the fixed-size arrays (the caller falls back to a slow loop).
bool build(Iter& it, Tensor& out, const Tensor* in, int nin) {
  const auto& oshape = out.shape();
  const int rank = static_cast<int>(oshape.size());
  if (rank > 64) return false;
  it.nops = nin + 1;
  const Tensor* ops[kMaxOperands];
  ops[0] = &out;
  for (int j = 0; j < nin; ++j) ops[j + 1] = &in[j];
  for (int j = 0; j < it.nops; ++j) {
    const auto& impl = ops[j]->impl();
    it.base[j] = static_cast<char*>(impl.data());
    it.esize[j] = static_cast<int64_t>(itemsize(impl.dtype));
  }
  // Drop size-1 dims, broadcast strides, then merge neighbours that are contiguous
  // for every operand.
  int nd = 0;
  for (int d = 0; d < rank; ++d) {
    if (oshape[d] == 1) continue;
    it.shape[nd] = oshape[d];
    for (int j = 0; j < it.nops; ++j) {
      const auto& s = ops[j]->shape();
      const int off = rank - static_cast<int>(s.size());
      int64_t st = 0;
      if (d >= off && s[d - off] != 1) st = ops[j]->strides()[d - off];
      it.strides[j][nd] = st;
    }
    if (nd > 0) {
      bool merge = true;
      for (int j = 0; j < it.nops && merge; ++j)
        merge = it.strides[j][nd - 1] == it.strides[j][nd] * it.shape[nd];
      if (merge) {
        it.shape[nd - 1] *= it.shape[nd];
        for (int j = 0; j < it.nops; ++j) it.strides[j][nd - 1] = it.strides[j][nd];
        continue;
      }
    }
    ++nd;
  }
  if (nd == 0) {
    it.shape[0] = 1;
    for (int j = 0; j < it.nops; ++j) it.strides[j][0] = 1;
    nd = 1;
  }
  it.ndim = nd;
  return true;
}

// Runs linear element range [begin, end) of the iteration.
void run_range(const Iter& it, Loop loop, const void* extra, int64_t begin, int64_t end) {
  const int nd = it.ndim;
  const int64_t inner = it.shape[nd - 1];
  int64_t idx[64];
  int64_t rem = begin;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rem % it.shape[d];
    rem /= it.shape[d];
  }
  int64_t s_inner[kMaxOperands];
  for (int j = 0; j < it.nops; ++j) s_inner[j] = it.strides[j][nd - 1];
  char* ptr[kMaxOperands];
  int64_t pos = begin;
  while (pos < end) {
    for (int j = 0; j < it.nops; ++j) {
      int64_t off = 0;
      for (int d = 0; d < nd; ++d) off += idx[d] * it.strides[j][d];
      ptr[j] = it.base[j] + off * it.esize[j];
    }
    const int64_t n = std::min(inner - idx[nd - 1], end - pos);
    loop(ptr, s_inner, n, extra);
    pos += n;
    idx[nd - 1] += n;
    for (int d = nd - 1; d > 0 && idx[d] >= it.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

}  // namespace

void run_elementwise(Loop loop, Tensor& out, const Tensor* inputs, int n_inputs,
                     const void* extra) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Iter it;
  if (!build(it, out, inputs, n_inputs))
    throw ShapeError(fmt::format("elementwise: tensors of more than 64 dims are not supported (got {})", out.dim()));
  if (n < kParallelMinElements) {
    run_range(it, loop, extra, 0, n);
    return;
  }
  parallel_for(0, n, kParallelMinElements / 4,
               [&](int64_t b, int64_t e) { run_range(it, loop, extra, b, e); });
}

}  // namespace ember::cpu
