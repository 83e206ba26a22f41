// Fused elementwise evaluation on the CPU. The program is rewritten into
// accumulator form (prepare) and run by the arch's fused loop
// (lib/cpu/arch/kernels.cpp), which keeps a block of elements in registers
// through all the ops. Inputs are read once and the output written once,
// whatever the number of ops, and every element goes through the same
// per-element SIMD code as in eager mode (bit-identical results). Inputs
// broadcast along some dims are gathered here, tile by tile, into L1 buffers.
#include <algorithm>
#include <cstring>
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

// Copies elements [s, s+len) of the broadcast input (in output order) into dst,
// a run along the innermost dim at a time: a row broadcast (a bias) is one
// memcpy per row, a column broadcast one fill per row.
void gather(const InputPlan& ip, const Shape& oshape, int64_t s, int64_t len, char* dst, int64_t es) {
  const int nd = static_cast<int>(oshape.size());
  int64_t idx[64];
  int64_t rem = s;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rem % oshape[d];
    rem /= oshape[d];
  }
  int64_t off = 0;
  for (int d = 0; d < nd; ++d) off += idx[d] * ip.bstrides[d];
  const int last = nd - 1;
  const int64_t inner = ip.bstrides[last];
  for (int64_t i = 0; i < len;) {
    const int64_t run = std::min(len - i, oshape[last] - idx[last]);
    char* o = dst + i * es;
    const char* src = ip.base + off * es;
    if (inner == 1) {
      std::memcpy(o, src, static_cast<std::size_t>(run * es));
    } else if (inner == 0) {
      for (int64_t k = 0; k < run; ++k) std::memcpy(o + k * es, src, static_cast<std::size_t>(es));
    } else {
      for (int64_t k = 0; k < run; ++k) std::memcpy(o + k * es, src + k * inner * es, static_cast<std::size_t>(es));
    }
    i += run;
    off += inner * run;
    idx[last] += run;
    for (int d = last; d > 0 && idx[d] == oshape[d]; --d) {
      off -= ip.bstrides[d] * oshape[d];
      idx[d] = 0;
      off += ip.bstrides[d - 1];
      ++idx[d - 1];
    }
  }
}

}  // namespace

// Note [Accumulator-form fused programs] (lib/cpu/arch/arch.h): the register
// program becomes a list of accumulator updates. A value the accumulator holds
// that a later instruction still needs (one side of a binary op whose other
// side is computed next) is spilled to a slot first.
bool FusedProgram::prepare() {
  using F = cpu::FusedInstr;
  const int n_instr = static_cast<int>(instrs.size());
  const int n_regs = n_inputs + n_instr;
  std::vector<int> last_use(n_regs, -1);
  for (int i = 0; i < n_instr; ++i) {
    last_use[instrs[i].a] = i;
    if (instrs[i].b >= 0) last_use[instrs[i].b] = i;
  }
  std::vector<int> operand_of(n_regs, -1);  // inputs: themselves; spilled values: their slot
  for (int r = 0; r < n_inputs; ++r) operand_of[r] = r;
  std::vector<int> free_slots;
  int n_operands = n_inputs;
  int acc = -1;  // the register the accumulator holds (none yet)
  code.clear();
  auto emit = [&](uint16_t c, int operand) { code.push_back(F{c, static_cast<int8_t>(operand)}); };
  for (int i = 0; i < n_instr; ++i) {
    const int a = instrs[i].a, b = instrs[i].b;
    if (acc < 0 || (a != acc && b != acc)) {
      // The accumulator is about to be overwritten: keep its value if an
      // intermediate still needs it (inputs stay readable in memory).
      if (acc >= n_inputs && last_use[acc] > i) {
        int s;
        if (!free_slots.empty()) {
          s = free_slots.back();
          free_slots.pop_back();
        } else {
          s = n_operands++;
        }
        if (n_operands > cpu::kMaxFusedSlots) return false;
        operand_of[acc] = s;
        emit(F::kSpill, s);
      }
      emit(F::kLoad, operand_of[a]);
      acc = a;
    }
    const dispatch::OpId op = instrs[i].op;
    if (b < 0)
      emit(cpu::fused_code(op, F::kUnary), -1);
    else if (a == acc && b == acc)
      emit(cpu::fused_code(op, F::kSelf), -1);
    else if (a == acc)
      emit(cpu::fused_code(op, F::kAccLeft), operand_of[b]);
    else
      emit(cpu::fused_code(op, F::kAccRight), operand_of[a]);
    // A spilled value read for the last time frees its slot.
    for (int src : {a, b})
      if (src >= n_inputs && last_use[src] == i && operand_of[src] >= n_inputs &&
          std::find(free_slots.begin(), free_slots.end(), operand_of[src]) == free_slots.end())
        free_slots.push_back(operand_of[src]);
    acc = n_inputs + i;
  }
  return true;
}

void run_fused(const FusedProgram& p, const Tensor* inputs, int n_inputs, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int64_t es = static_cast<int64_t>(itemsize(p.dtype));
  const Shape& oshape = out.shape();
  const cpu::FusedFn fn = cpu::arch().fused[static_cast<int>(p.dtype)];
  const int n_code = static_cast<int>(p.code.size());

  thread_local std::vector<InputPlan> tls_ips;  // reused: no allocation per replay
  // A plain reference: pool threads must read the caller's plans, not their own.
  std::vector<InputPlan>& ips = tls_ips;
  ips.clear();
  ips.resize(static_cast<std::size_t>(n_inputs));
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
  char* obase = static_cast<char*>(out.impl().data());
  // Inputs broadcast along some dims are gathered tile by tile into L1 buffers;
  // the others are read in place.
  const int64_t tile = n_gather ? kTileBytes / es : n;
  auto run_range = [&](int64_t b, int64_t e) {
    thread_local std::vector<char> storage;
    const std::size_t need = static_cast<std::size_t>(n_gather * tile * es) + 64;
    if (n_gather && storage.size() < need) storage.resize(need);
    char* gbase = n_gather ? reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) & ~uintptr_t(63)) : nullptr;
    const char* ptr[cpu::kMaxFusedSlots];
    int64_t stride[cpu::kMaxFusedSlots];
    for (int64_t s = b; s < e; s += tile) {
      const int64_t len = std::min(tile, e - s);
      int g = 0;
      for (int i = 0; i < n_inputs; ++i) {
        const InputPlan& ip = ips[i];
        if (ip.gather) {
          char* dst = gbase + g++ * tile * es;
          gather(ip, oshape, s, len, dst, es);
          ptr[i] = dst;
          stride[i] = 1;
        } else {
          ptr[i] = ip.base + ip.stride * s * es;
          stride[i] = ip.stride;
        }
      }
      fn(p.code.data(), n_code, n_inputs, ptr, stride, obase + s * es, len);
    }
  };
  if (n < cpu::kParallelMinElements) {
    run_range(0, n);
  } else {
    // Chunks aligned to tiles so gathered inputs line up.
    const int64_t grain = std::max<int64_t>(tile == n ? 4096 : tile, cpu::kParallelMinElements / 4);
    const int64_t step = tile == n ? 4096 : tile;
    cpu::parallel_for(0, (n + step - 1) / step, std::max<int64_t>(1, grain / step), [&](int64_t t0, int64_t t1) {
      run_range(t0 * step, std::min(n, t1 * step));
    });
  }
}

}  // namespace ember::capture
