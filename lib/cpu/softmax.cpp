// softmax / log_softmax: numerically stable (the row max is subtracted), one
// contiguous row at a time; other axes go through a transposed copy.
#include "cpu/arch/arch.h"
#include "cpu/kernels.h"
#include "cpu/loops.h"
#include "cpu/parallel.h"

namespace ember::cpu {

using dispatch::OpId;

void softmax_kernel(OpId op, dispatch::Inputs in, const dispatch::Attrs& a, Tensor& out) {
  const DType dt = out.dtype();
  Tensor x = in[0];
  if (out.numel() == 0) return;
  const int64_t rank = x.dim();
  const int64_t axis = rank == 0 ? 0 : (a.i0 < 0 ? a.i0 + rank : a.i0);
  // Move `axis` last and make the rows contiguous in the compute dtype.
  Axes perm;
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis) perm.push_back(d);
  if (rank > 0) perm.push_back(axis);
  Shape ps;
  Strides xst, ost;
  for (int64_t d : perm) {
    ps.push_back(x.shape()[d]);
    xst.push_back(x.strides()[d]);
    ost.push_back(out.strides()[d]);
  }
  Tensor xp = ember::detail::make_view(x, ps, xst, x.storage_offset());
  if (!xp.is_contiguous() || xp.dtype() != dt) xp = cast_to(xp, dt);
  Tensor op_view = ember::detail::make_view(out, ps, ost, out.storage_offset());
  Tensor dst = op_view.is_contiguous() ? op_view : ember::detail::make_tensor(ps, dt, out.device());
  const int64_t n = rank == 0 ? 1 : ps.back();
  const int64_t rows = n == 0 ? 0 : xp.numel() / n;
  const int64_t es = static_cast<int64_t>(itemsize(dt));
  SoftmaxFn fn = arch().softmax[static_cast<int>(dt)];
  const char* src = static_cast<const char*>(xp.impl().data());
  char* d = static_cast<char*>(dst.impl().data());
  const bool log = op == OpId::log_softmax;
  auto run = [&](int64_t r0, int64_t r1) {
    fn(src + r0 * n * es, d + r0 * n * es, r1 - r0, n, log);
  };
  if (rows * n >= kParallelMinElements && rows > 1)
    parallel_for(0, rows, std::max<int64_t>(1, kParallelMinElements / (4 * n)), run);
  else
    run(0, rows);
  if (!dst.is_same(op_view)) copy_into(op_view, dst);
}

}  // namespace ember::cpu
