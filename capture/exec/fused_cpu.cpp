// Fused elementwise evaluation on the CPU: the output is produced in tiles
// small enough to stay in L1; each instruction of the program runs the same
// SIMD inner loop eager code uses, over the tile. Inputs are read once and the
// output written once, whatever the number of ops, and every element goes
// through the same per-element code as in eager mode (bit-identical results).
#include <algorithm>
#include <vector>

#include "cpu/arch/arch.h"
#include "cpu/parallel.h"
#include "exec/executor.h"

namespace ember::capture {

namespace {

constexpr int64_t kTileBytes = 2048;

struct InputPlan {
  const char* base = nullptr;
  int64_t stride = 1;      // 1: contiguous full-size, 0: one element
  bool gather = false;     // broadcast in some dims: gathered per tile
  Strides bstrides;        // element strides over the output shape (0 where broadcast)
};

// Copies elements [s, s+len) of the broadcast input (in output order) into dst.
void gather(const InputPlan& ip, const Shape& oshape, int64_t s, int64_t len, char* dst, int64_t es) {
  const int nd = static_cast<int>(oshape.size());
  int64_t idx[16];
  int64_t rem = s;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rem % oshape[d];
    rem /= oshape[d];
  }
  int64_t off = 0;
  for (int d = 0; d < nd; ++d) off += idx[d] * ip.bstrides[d];
  for (int64_t i = 0; i < len; ++i) {
    std::memcpy(dst + i * es, ip.base + off * es, static_cast<std::size_t>(es));
    for (int d = nd - 1; d >= 0; --d) {
      off += ip.bstrides[d];
      if (++idx[d] < oshape[d]) break;
      off -= ip.bstrides[d] * oshape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

void run_fused(const FusedProgram& p, const Tensor* inputs, int n_inputs, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const DType dt = p.dtype;
  const int64_t es = static_cast<int64_t>(itemsize(dt));
  const int64_t tile = kTileBytes / es;
  const Shape& oshape = out.shape();
  const int n_instr = static_cast<int>(p.instrs.size());
  const int n_regs = n_inputs + n_instr;

  std::vector<InputPlan> ips(n_inputs);
  int n_gather = 0;
  for (int i = 0; i < n_inputs; ++i) {
    const Tensor& t = inputs[i];
    InputPlan& ip = ips[i];
    ip.base = static_cast<const char*>(t.impl().data());
    if (t.numel() == 1) {
      ip.stride = 0;
    } else if (t.shape() == oshape && t.is_contiguous()) {
      ip.stride = 1;
    } else {
      ip.gather = true;
      ++n_gather;
      ip.bstrides.resize(oshape.size(), 0);
      const std::size_t lead = oshape.size() - t.shape().size();
      for (std::size_t d = 0; d < t.shape().size(); ++d)
        ip.bstrides[lead + d] = t.shape()[d] == 1 ? 0 : t.strides()[d];
    }
  }
  // Tile buffers for instruction results: reuse a buffer once its register is dead.
  std::vector<int> last_use(n_regs, -1);
  for (int i = 0; i < n_instr; ++i) {
    last_use[p.instrs[i].a] = i;
    if (p.instrs[i].b >= 0) last_use[p.instrs[i].b] = i;
  }
  std::vector<int> buf_of(n_regs, -1);
  std::vector<int> free_bufs;
  int n_bufs = 0;
  for (int i = 0; i < n_inputs; ++i)
    if (ips[i].gather) buf_of[i] = n_bufs++;
  for (int i = 0; i < n_instr; ++i) {
    const int r = n_inputs + i;
    if (i + 1 < n_instr) {
      if (!free_bufs.empty()) {
        buf_of[r] = free_bufs.back();
        free_bufs.pop_back();
      } else {
        buf_of[r] = n_bufs++;
      }
    }
    for (int src : {p.instrs[i].a, p.instrs[i].b})
      if (src >= n_inputs && last_use[src] == i && buf_of[src] >= 0 &&
          std::find(free_bufs.begin(), free_bufs.end(), buf_of[src]) == free_bufs.end())
        free_bufs.push_back(buf_of[src]);
  }
  // The loops write out before reading a freed buffer again only after this
  // instruction, so a source buffer may be reused by the destination of a
  // later instruction but never by its own (freed after assignment above).
  std::vector<cpu::Loop> loops(n_instr);
  for (int i = 0; i < n_instr; ++i)
    loops[i] = cpu::arch().elementwise[dispatch::op_index(p.instrs[i].op)][static_cast<int>(dt)];
  char* obase = static_cast<char*>(out.impl().data());

  auto run_tiles = [&](int64_t t0, int64_t t1) {
    std::vector<char> bufs(static_cast<std::size_t>(std::max(n_bufs, 1) * tile * es) + 64);
    char* buf0 = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(bufs.data()) + 63) & ~uintptr_t(63));
    auto buf = [&](int b) { return buf0 + static_cast<int64_t>(b) * tile * es; };
    for (int64_t tix = t0; tix < t1; ++tix) {
      const int64_t s = tix * tile;
      const int64_t len = std::min(tile, n - s);
      auto reg_ptr = [&](int r, int64_t* stride) -> char* {
        if (r < n_inputs) {
          const InputPlan& ip = ips[r];
          if (ip.gather) {
            *stride = 1;
            return buf(buf_of[r]);
          }
          *stride = ip.stride;
          return const_cast<char*>(ip.base) + ip.stride * s * es;
        }
        *stride = 1;
        return buf(buf_of[r]);
      };
      for (int i = 0; i < n_inputs; ++i)
        if (ips[i].gather) gather(ips[i], oshape, s, len, buf(buf_of[i]), es);
      for (int i = 0; i < n_instr; ++i) {
        const auto& ins = p.instrs[i];
        char* ptrs[3];
        int64_t strides[3] = {1, 0, 0};
        ptrs[0] = i + 1 == n_instr ? obase + s * es : buf(buf_of[n_inputs + i]);
        ptrs[1] = reg_ptr(ins.a, &strides[1]);
        ptrs[2] = ins.b >= 0 ? reg_ptr(ins.b, &strides[2]) : nullptr;
        loops[i](ptrs, strides, len, nullptr);
      }
    }
  };
  const int64_t n_tiles = (n + tile - 1) / tile;
  if (n < cpu::kParallelMinElements)
    run_tiles(0, n_tiles);
  else
    cpu::parallel_for(0, n_tiles, std::max<int64_t>(1, cpu::kParallelMinElements / (4 * tile)), run_tiles);
}

}  // namespace ember::capture
