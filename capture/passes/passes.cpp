#ifdef EMBER_WITH_CUDA
#include "gpu/api.h"
#endif
#include "passes/passes.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>

#include <ember/ops.h>

#include "cpu/arch/arch.h"
#include "dispatch/dispatcher.h"
#include "dispatch/schema.h"

namespace ember::capture::passes {

using dispatch::OpId;

void compact(GraphIR& g, const std::vector<bool>& keep, const std::vector<int>& replace) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<int> new_id(n, -1);
  auto resolve = [&](int id) {
    while (replace[id] != id) id = replace[id];
    return id;
  };
  std::vector<Node> out;
  for (int id = 0; id < n; ++id) {
    if (!keep[id]) continue;
    Node nd = std::move(g.nodes[id]);
    for (int& in : nd.inputs) in = new_id[resolve(in)];
    new_id[id] = static_cast<int>(out.size());
    out.push_back(std::move(nd));
  }
  for (int& o : g.outputs) o = new_id[resolve(o)];
  for (int& w : g.input_writeback)
    if (w >= 0) w = new_id[resolve(w)];
  g.nodes = std::move(out);
}

static std::vector<int> identity(int n) {
  std::vector<int> r(n);
  for (int i = 0; i < n; ++i) r[i] = i;
  return r;
}

void dce(GraphIR& g) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<bool> live(n, false);
  std::vector<int> stack;
  auto mark = [&](int id) {
    if (id >= 0 && !live[id]) {
      live[id] = true;
      stack.push_back(id);
    }
  };
  for (int o : g.outputs) mark(o);
  for (int w : g.input_writeback) mark(w);
  for (int id = 0; id < n; ++id) {
    const NodeKind k = g.nodes[id].kind;
    if (k == NodeKind::assign || k == NodeKind::guard || k == NodeKind::input) mark(id);
  }
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    for (int in : g.nodes[id].inputs) mark(in);
  }
  compact(g, live, identity(n));
}

// Equal dtype, shape and bytes (so -0.0 and 0.0, or int64 values beyond 2^53, stay apart).
// GPU constants are compared through host copies (at most 16 elements here).
static bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  dispatch::RecorderGuard off(nullptr);  // the pass's own copies are not part of any program
  const Tensor ca = a.to(Device::cpu()).contiguous(), cb = b.to(Device::cpu()).contiguous();
  return std::memcmp(ca.impl().data(), cb.impl().data(), ca.nbytes()) == 0;
}

void cse(GraphIR& g) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<int> repl = identity(n);
  std::vector<bool> keep(n, true);
  std::multimap<std::size_t, int> seen;  // hash -> id
  for (int id = 0; id < n; ++id) {
    Node& nd = g.nodes[id];
    for (int& in : nd.inputs) in = repl[in];
    if (nd.kind == NodeKind::constant && nd.value.numel() <= 16) {
      // Small constants with equal values (scalars of a chain) become one.
      bool merged = false;
      for (int o = 0; o < id && !merged; ++o) {
        const Node& c = g.nodes[o];
        if (keep[o] && c.kind == NodeKind::constant && c.out == nd.out && c.value.numel() <= 16 &&
            same_bytes(c.value, nd.value)) {
          repl[id] = o;
          keep[id] = false;
          merged = true;
        }
      }
      continue;
    }
    const bool candidate =
        (nd.kind == NodeKind::op && !(dispatch::schema(nd.op).flags & dispatch::kRandom)) ||
        nd.kind == NodeKind::variable_read;
    if (!candidate) continue;
    std::size_t h = std::hash<int>()(static_cast<int>(nd.kind)) * 31 + static_cast<std::size_t>(nd.op);
    for (int in : nd.inputs) h = h * 1000003u + static_cast<std::size_t>(in);
    for (int64_t v : nd.attrs.ints) h = h * 31 + static_cast<std::size_t>(v);
    h ^= std::hash<double>()(nd.attrs.f0) + 7 * static_cast<std::size_t>(nd.attrs.i0) +
         static_cast<std::size_t>(nd.var.get() ? reinterpret_cast<uintptr_t>(nd.var.get()) : 0);
    auto range = seen.equal_range(h);
    bool merged = false;
    for (auto it = range.first; it != range.second; ++it) {
      const Node& o = g.nodes[it->second];
      if (o.kind == nd.kind && o.op == nd.op && o.inputs == nd.inputs && o.attrs == nd.attrs &&
          o.var == nd.var && o.out == nd.out) {
        repl[id] = it->second;
        keep[id] = false;
        merged = true;
        break;
      }
    }
    if (!merged) seen.emplace(h, id);
  }
  compact(g, keep, repl);
}

void const_fold(GraphIR& g) {
  for (Node& nd : g.nodes) {
    if (nd.kind != NodeKind::op) continue;
    const auto& sch = dispatch::schema(nd.op);
    if (sch.flags & dispatch::kRandom) continue;
    // Small creation ops (fill, arange, eye) fold too; big ones stay ops so a
    // graph does not carry megabytes of zeros.
    if (nd.inputs.empty() && shape_numel(nd.out.shape) > 65536) continue;
    bool all_const = true;
    for (int in : nd.inputs) all_const = all_const && g.nodes[in].kind == NodeKind::constant;
    if (!all_const) continue;
    std::vector<Tensor> ins;
    for (int in : nd.inputs) ins.push_back(g.nodes[in].value);
    dispatch::RecorderGuard off(nullptr);
    Tensor r = dispatch::call(nd.op, dispatch::Inputs(ins.data(), ins.size()), nd.attrs);
    // Views of constants are copied so that the constant owns its memory.
    nd.value = r.clone();
    nd.kind = NodeKind::constant;
    nd.inputs.clear();
  }
}

// Distinct readers of each value (x * x reads x once for this purpose); an
// output or a written-back value counts as two, so it is never folded away.
static std::vector<int> readers(const GraphIR& g) {
  std::vector<int> uses(g.nodes.size(), 0);
  for (const Node& nd : g.nodes)
    for (std::size_t k = 0; k < nd.inputs.size(); ++k)
      if (std::find(nd.inputs.begin(), nd.inputs.begin() + k, nd.inputs[k]) == nd.inputs.begin() + k)
        ++uses[nd.inputs[k]];
  for (int o : g.outputs) uses[o] += 2;
  for (int w : g.input_writeback)
    if (w >= 0) uses[w] += 2;
  return uses;
}

// Note [Bias in the GEMM]: matmul(a, w) + b with 2-d operands becomes
// addmm(b, a, w): BLAS starts from C = b (broadcast) and accumulates the
// product onto it, so the separate add pass over the result is gone and so is
// BLAS's own pass that zeroes C for beta = 0. On a batch of 64, a
// 784-256-256-10 MLP runs 3-7% faster and a 32-64-64-10 one ~19%
// (benchmarks/README.md, "Session shim"). The sum is the same in exact
// arithmetic; in floats it equals eager's bits unless BLAS splits K into
// blocks (then the bias joins the first block instead of the total), which
// DESIGN.md's float tolerance for fusion allows. Only float32/float64, where
// BLAS accumulates; the matmul's value must have no other reader.
void fuse_matmul_bias(GraphIR& g) {
  const int n = static_cast<int>(g.nodes.size());
  const std::vector<int> uses = readers(g);
  std::vector<bool> keep(n, true);
  for (int id = 0; id < n; ++id) {
    Node& nd = g.nodes[id];
    if (nd.kind != NodeKind::op || nd.op != OpId::add) continue;
    if (nd.out.dtype != DType::float32 && nd.out.dtype != DType::float64) continue;
    for (int k = 0; k < 2; ++k) {
      const int m = nd.inputs[k], other = nd.inputs[1 - k];
      const Node& mm = g.nodes[m];
      if (m == other || !keep[m] || mm.kind != NodeKind::op || mm.op != OpId::matmul || uses[m] != 1) continue;
      if (g.nodes[mm.inputs[0]].out.shape.size() != 2 || g.nodes[mm.inputs[1]].out.shape.size() != 2) continue;
      const ValueInfo& b = g.nodes[other].out;
      // The bias broadcasts to the product without growing it, in one dtype on one device.
      if (mm.out.shape != nd.out.shape || mm.out.dtype != nd.out.dtype || b.dtype != nd.out.dtype ||
          b.device != nd.out.device || mm.out.device != nd.out.device || b.shape.size() > 2)
        continue;
      nd.op = OpId::addmm;
      nd.inputs = {other, mm.inputs[0], mm.inputs[1]};
      nd.attrs = {};
      nd.attrs.f0 = 1.0;
      nd.attrs.f1 = 1.0;
      keep[m] = false;
      break;
    }
  }
  compact(g, keep, identity(n));
}

void fuse_elementwise(GraphIR& g) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<int> uses = readers(g);

  auto fusible = [&](int id) {
    const Node& nd = g.nodes[id];
    if (nd.kind != NodeKind::op) return false;
    const uint32_t f = dispatch::schema(nd.op).flags;
    if (!(f & (dispatch::kUnary | dispatch::kBinary))) return false;
    if (nd.out.device.is_cpu()) {
      if (!cpu::arch().fusable[dispatch::op_index(nd.op)]) return false;
      if (nd.out.dtype != DType::float32 && nd.out.dtype != DType::float64) return false;
    } else {
#ifdef EMBER_WITH_CUDA
      if (!gpu::fusable(nd.op, nd.out.dtype)) return false;
#else
      return false;
#endif
    }
    for (int in : nd.inputs) {
      const ValueInfo& vi = g.nodes[in].out;
      if (vi.dtype != nd.out.dtype) return false;
      if (vi.shape != nd.out.shape && broadcast_shapes(vi.shape, nd.out.shape, "fuse") != nd.out.shape)
        return false;
    }
    return true;
  };

  // group[id]: the root node whose fused program will compute id (or -1).
  std::vector<int> group(n, -1);
  std::vector<std::vector<int>> members(n);
  for (int id = 0; id < n; ++id) {
    if (!fusible(id)) continue;
    group[id] = id;
    members[id] = {id};
    for (int in : g.nodes[id].inputs) {
      if (group[in] < 0 || group[in] == id || uses[in] != 1 || g.nodes[in].out.shape != g.nodes[id].out.shape) continue;
      const int root = group[in];
      if (root == id) continue;
      for (int m : members[root]) group[m] = id;
      members[id].insert(members[id].end(), members[root].begin(), members[root].end());
      members[root].clear();
    }
  }
  std::vector<bool> keep(n, true);
  for (int root = 0; root < n; ++root) {
    if (members[root].size() < 2 || group[root] != root) continue;
    std::vector<int> ms = members[root];
    std::sort(ms.begin(), ms.end());  // topological: ids follow execution order
    auto prog = std::make_shared<FusedProgram>();
    prog->dtype = g.nodes[root].out.dtype;
    std::vector<int> ext;           // external input node ids
    std::map<int, int> reg_of;      // node id -> register
    auto reg = [&](int node) {
      auto it = reg_of.find(node);
      if (it != reg_of.end()) return it->second;
      const int r = static_cast<int>(ext.size());
      ext.push_back(node);
      reg_of[node] = r;
      return r;
    };
    // First pass assigns input registers, second the instruction registers.
    for (int m : ms)
      for (int in : g.nodes[m].inputs)
        if (group[in] != root) reg(in);
    prog->n_inputs = static_cast<int>(ext.size());
    for (int m : ms) {
      FusedProgram::Instr ins;
      ins.op = g.nodes[m].op;
      const auto& inputs = g.nodes[m].inputs;
      ins.a = reg_of.at(inputs[0]);
      ins.b = inputs.size() > 1 ? reg_of.at(inputs[1]) : -1;
      reg_of[m] = prog->n_inputs + static_cast<int>(prog->instrs.size());
      prog->instrs.push_back(ins);
      if (m != root) keep[m] = false;
    }
    const Device dev = g.nodes[root].out.device;
    bool fits = dev.is_cpu() ? prog->prepare() : false;
#ifdef EMBER_WITH_CUDA
    if (dev.is_cuda())
      fits = prog->n_inputs <= gpu::max_fused_inputs() && static_cast<int>(prog->instrs.size()) <= gpu::max_fused_ops();
#endif
    if (!fits) {  // too many live values for the fused loop: leave unfused
      for (int m : ms) keep[m] = true;
      continue;
    }
    Node& r = g.nodes[root];
    r.kind = NodeKind::fused;
    r.fused = prog;
    r.inputs = ext;
    r.attrs = {};
  }
  std::vector<int> repl(n);
  for (int i = 0; i < n; ++i) repl[i] = i;
  compact(g, keep, repl);
}

}  // namespace ember::capture::passes
