#include "exec/executor.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include <ember/ops.h>
#include <ember/random.h>
#include <ember/capture.h>

#include "dispatch/dispatcher.h"

namespace ember::capture {

using dispatch::OpId;

struct Frame {
  std::vector<Tensor> vals;   // per value id: planned buffers stay, the rest is cleared after a run
#ifdef EMBER_WITH_CUDA
  // CUDA-graph replay (Executor::run_cuda_graph): the recording and the fixed
  // buffers its kernels read; every value stays alive with the frame.
  std::unique_ptr<gpu::GraphRecording> rec;
  std::vector<Tensor> static_in;
  std::vector<Tensor> static_var;  // per value id of a variable_read node (else undefined)
  // Per device of gpu_devices_: the next run's stream waits for this one's
  // kernels before it writes the frame's buffers. Declared last, so it is
  // destroyed first: its destructor waits for the last run before the
  // buffers above go back to the allocator.
  std::vector<gpu::StreamOrder> order;
#endif
};

namespace {

// A tensor of `info` over bytes [0, nbytes) of `storage`.
Tensor view_over(const ember::detail::Ref<ember::detail::Storage>& storage, const ValueInfo& info) {
  auto* impl = new ember::detail::TensorImpl;
  ember::detail::Ref<ember::detail::TensorImpl> ref(impl);
  impl->storage = storage;
  impl->shape = info.shape;
  impl->strides = contiguous_strides(info.shape);
  impl->dtype = info.dtype;
  impl->device = info.device;
  impl->refresh();
  return Tensor(std::move(ref));
}

std::size_t bytes_of(const ValueInfo& v) {
  return static_cast<std::size_t>(shape_numel(v.shape)) * itemsize(v.dtype);
}

}  // namespace

Executor::Executor(const GraphIR& g, bool plan_memory, bool cuda_graphs) {
  const int n = static_cast<int>(g.nodes.size());
  n_values_ = n;
#ifdef EMBER_WITH_CUDA
  // Note [CUDA-graph replay]: a graph whose every computed value lives on one
  // GPU, with no host guard and no random op (whose seed changes per replay),
  // is recorded once per frame into a CUDA graph and then launched whole.
  if (cuda_graphs) {
    bool ok = true, any = false;
    for (const Node& nd : g.nodes) {
      const bool computes = nd.kind == NodeKind::op || nd.kind == NodeKind::fused;
      if (nd.kind == NodeKind::guard) ok = false;
      if (nd.kind == NodeKind::op && (dispatch::schema(nd.op).flags & dispatch::kRandom)) ok = false;
      // A copy from the host (to_device) cannot be recorded into a CUDA graph.
      if (nd.kind == NodeKind::op && nd.op == OpId::to_device) ok = false;
      if (computes || nd.kind == NodeKind::input || nd.kind == NodeKind::variable_read) {
        if (!nd.out.device.is_cuda()) {
          ok = false;
        } else if (!any) {
          graph_device_ = nd.out.device;
          any = true;
        } else if (nd.out.device != graph_device_) {
          ok = false;
        }
      }
      if (nd.kind == NodeKind::constant && nd.out.device.is_cpu() && !nd.out.shape.empty()) ok = false;
    }
    cuda_graph_ = ok && any;
  }
#else
  (void)cuda_graphs;
#endif
  std::vector<bool> is_output(n, false);
  for (int o : g.outputs) is_output[o] = true;
  for (int w : g.input_writeback)
    if (w >= 0) is_output[w] = true;

  // Last reader of each value; a view keeps its base's buffer alive.
  std::vector<int> root(n), last(n, -1);
  for (int id = 0; id < n; ++id) {
    root[id] = id;
    const Node& nd = g.nodes[id];
    if (nd.kind == NodeKind::op && (dispatch::schema(nd.op).flags & dispatch::kView) && !nd.inputs.empty())
      root[id] = root[nd.inputs[0]];
    for (int in : nd.inputs) last[root[in]] = std::max(last[root[in]], id);
  }
  // Outputs and what they view escape the run: fresh memory each run, never a
  // pooled slot. Values written back at the end (assignments) live to the end.
  std::vector<bool> escapes(n, false);
  for (int id = 0; id < n; ++id) {
    if (is_output[id]) {
      last[root[id]] = n;
      escapes[root[id]] = true;
    }
    if (g.nodes[id].kind == NodeKind::assign)
      for (int in : g.nodes[id].inputs) last[root[in]] = n;
  }

#ifdef EMBER_WITH_CUDA
  gpu_fused_.resize(n);
  for (int id = 0; id < n; ++id) {
    const Node& nd = g.nodes[id];
    if (nd.kind == NodeKind::fused && nd.out.device.is_cuda())
      for (const auto& in : nd.fused->instrs) gpu_fused_[id].push_back({in.op, in.a, in.b});
  }
#endif
  slot_of_.assign(n, -1);
  std::vector<std::pair<std::size_t, int>> free_slots;  // (bytes, slot)
  std::vector<std::vector<int>> release_at(n + 1);
  for (int id = 0; id < n; ++id) {
    const Node& nd = g.nodes[id];
    Step s;
    s.kind = nd.kind;
    s.op = nd.op;
    s.node = &nd;
    s.out = id;
    for (int in : nd.inputs) s.in.push_back(in);
    if (nd.kind == NodeKind::op) {
      const auto& sch = dispatch::schema(nd.op);
      s.kernel = dispatch::kernel_for(nd.op, nd.out.device);
      s.random = (sch.flags & dispatch::kRandom) != 0;
      s.reads_host = (sch.flags & dispatch::kReadsHost) != 0;
      // Fast path: a unary/binary elementwise op whose inputs already have the
      // compute dtype calls the SIMD loop directly when layouts are plain.
      if ((sch.flags & (dispatch::kUnary | dispatch::kBinary)) && nd.out.device.is_cpu()) {
        const DType in_dt = g.nodes[nd.inputs[0]].out.dtype;
        bool ok = nd.out.dtype == in_dt || nd.out.dtype == DType::bool_;
        for (int in : nd.inputs) {
          const ValueInfo& vi = g.nodes[in].out;
          ok = ok && vi.dtype == in_dt && (vi.shape == nd.out.shape || shape_numel(vi.shape) == 1);
        }
        if (ok) s.loop = cpu::arch().elementwise[dispatch::op_index(nd.op)][static_cast<int>(in_dt)];
        s.numel = shape_numel(nd.out.shape);
        for (std::size_t i = 0; i < nd.inputs.size(); ++i)
          if (g.nodes[nd.inputs[i]].out.shape != nd.out.shape) s.bcast |= static_cast<uint8_t>(1u << i);
      }
    }
    const bool makes_buffer =
        (nd.kind == NodeKind::op && !(dispatch::schema(nd.op).flags & dispatch::kView)) ||
        nd.kind == NodeKind::fused;
    if (plan_memory && !cuda_graph_ && makes_buffer && !escapes[id] && last[id] >= 0) {
      const std::size_t need = bytes_of(nd.out);
      auto best = free_slots.end();
      for (auto it = free_slots.begin(); it != free_slots.end(); ++it)
        if (it->first >= need && slot_device_[it->second] == nd.out.device &&
            (best == free_slots.end() || it->first < best->first))
          best = it;
      if (best != free_slots.end()) {
        slot_of_[id] = best->second;
        free_slots.erase(best);
      } else {
        slot_of_[id] = static_cast<int>(slot_bytes_.size());
        slot_bytes_.push_back(need);
        slot_device_.push_back(nd.out.device);
      }
      release_at[last[id]].push_back(id);
    }
    // Buffers whose last reader is this step are free for the steps after it.
    for (int v : release_at[id]) free_slots.push_back({slot_bytes_[slot_of_[v]], slot_of_[v]});
    steps_.push_back(std::move(s));
  }
  for (std::size_t b : slot_bytes_) planned_bytes_ += b;
#ifdef EMBER_WITH_CUDA
  if (cuda_graph_) gpu_devices_.push_back(graph_device_);
  for (Device d : slot_device_)
    if (d.is_cuda() && std::find(gpu_devices_.begin(), gpu_devices_.end(), d) == gpu_devices_.end())
      gpu_devices_.push_back(d);
#endif
}

Executor::~Executor() { delete spare_.load(std::memory_order_acquire); }

std::unique_ptr<Frame> Executor::make_frame() const {
  auto f = std::make_unique<Frame>();
  f->vals.resize(n_values_);
  std::vector<ember::detail::Ref<ember::detail::Storage>> slots;
  for (std::size_t i = 0; i < slot_bytes_.size(); ++i)
    slots.push_back(ember::detail::Storage::allocate(slot_bytes_[i], slot_device_[i]));
  for (const Step& s : steps_)
    if (slot_of_[s.out] >= 0) f->vals[s.out] = view_over(slots[slot_of_[s.out]], s.node->out);
#ifdef EMBER_WITH_CUDA
  f->order.resize(gpu_devices_.size());
#endif
  return f;
}

void Executor::run_steps(const GraphIR& g, std::vector<Tensor>& v, const std::vector<Tensor>& inputs,
                         std::vector<const Node*>& assigns, const std::vector<Tensor>* vars) const {
  Tensor ins[8];
  for (const Step& s : steps_) {
    const Node& nd = *s.node;
    switch (s.kind) {
      case NodeKind::input: v[s.out] = inputs[nd.index]; break;
      case NodeKind::constant: v[s.out] = nd.value; break;
      case NodeKind::variable_read: v[s.out] = vars ? (*vars)[s.out] : Variable(nd.var).value(); break;
      case NodeKind::guard: {
        const Tensor& got = v[s.in[0]];
        if (!equal(got, nd.value))
          throw detail::GuardFailed{fmt::format("guard on %{} failed: the traced code read {} on the host, now {}",
                                                s.in[0], nd.value.str(), got.str())};
        break;
      }
      case NodeKind::assign: assigns.push_back(&nd); break;
      case NodeKind::fused: {
        Tensor& out = v[s.out];
        if (!out.defined()) out = ember::detail::make_tensor(nd.out.shape, nd.out.dtype, nd.out.device);
        const std::size_t k = s.in.size();
        std::vector<Tensor> many;
        Tensor* fin = ins;
        if (k > 8) {
          many.resize(k);
          fin = many.data();
        }
        for (std::size_t i = 0; i < k; ++i) fin[i] = v[s.in[i]];
#ifdef EMBER_WITH_CUDA
        if (nd.out.device.is_cuda()) {
          const std::vector<gpu::FusedOp>& gops = gpu_fused_[s.out];
          gpu::run_fused(nd.fused->dtype, static_cast<int>(k), gops.data(), static_cast<int>(gops.size()), fin, out);
        } else {
          run_fused(*nd.fused, fin, static_cast<int>(k), out);
        }
#else
        run_fused(*nd.fused, fin, static_cast<int>(k), out);
#endif
        for (std::size_t i = 0; i < k; ++i) fin[i] = Tensor();
        break;
      }
      case NodeKind::op: {
        const std::size_t k = s.in.size();
        Tensor& out = v[s.out];
        if (s.loop) {
          // Plain layouts: call the SIMD loop directly, no Tensor copies.
          const Tensor& a = v[s.in[0]];
          const Tensor* b = k > 1 ? &v[s.in[1]] : nullptr;
          if (a.is_contiguous() && (!b || b->is_contiguous())) {
            if (!out.defined()) out = ember::detail::make_tensor(nd.out.shape, nd.out.dtype, nd.out.device);
            char* ptrs[3] = {static_cast<char*>(out.impl().data()), static_cast<char*>(a.impl().data()),
                             b ? static_cast<char*>(b->impl().data()) : nullptr};
            const int64_t strides[3] = {1, (s.bcast & 1) ? 0 : 1, (s.bcast & 2) ? 0 : 1};
            s.loop(ptrs, strides, s.numel, nullptr);
            break;
          }
        }
        Tensor* in = ins;
        std::vector<Tensor> many;
        if (k > 8) {
          many.resize(k);
          in = many.data();
        }
        for (std::size_t i = 0; i < k; ++i) in[i] = v[s.in[i]];
        dispatch::Attrs fresh;
        const dispatch::Attrs* attrs = &nd.attrs;
        if (s.reads_host) dispatch::schema(s.op).infer(s.op, dispatch::Inputs(in, k), nd.attrs);
        if (s.random) {
          // A replay draws new numbers from the default generator, as eager code would.
          fresh = nd.attrs;
          Generator& gen = default_generator();
          fresh.i0 = static_cast<int64_t>(gen.seed());
          fresh.i1 = static_cast<int64_t>(gen.advance(static_cast<uint64_t>(shape_numel(nd.out.shape))));
          attrs = &fresh;
        }
        if (dispatch::schema(s.op).flags & dispatch::kView) {
          Tensor r;
          s.kernel(s.op, dispatch::Inputs(in, k), *attrs, r);
          out = std::move(r);
        } else {
          if (!out.defined()) out = ember::detail::make_tensor(nd.out.shape, nd.out.dtype, nd.out.device);
          s.kernel(s.op, dispatch::Inputs(in, k), *attrs, out);
        }
        for (std::size_t i = 0; i < k; ++i) in[i] = Tensor();
        break;
      }
    }
  }
}

std::vector<Tensor> Executor::run(const GraphIR& g, const std::vector<Tensor>& inputs) const {
  if (static_cast<int>(inputs.size()) != g.num_inputs())
    throw ValueError(fmt::format("Graph::run: expects {} inputs, got {}", g.num_inputs(), inputs.size()));
  for (int i = 0; i < g.num_inputs(); ++i) {
    const ValueInfo& want = g.input_info(i);
    const Tensor& t = inputs[i];
    if (!t.defined())
      throw ValueError(fmt::format("Graph::run: input {} ({}) is an undefined tensor", i, g.input_names[i]));
    if (t.shape() != want.shape || t.dtype() != want.dtype || t.device() != want.device) {
      const std::string msg = fmt::format("Graph::run: input {} ({}) expects {}, got {}", i, g.input_names[i],
                                          want.str(), ValueInfo{t.shape(), t.dtype(), t.device()}.str());
      if (t.device() != want.device) throw DeviceError(msg);
      if (t.dtype() != want.dtype) throw DTypeError(msg);
      throw ShapeError(msg);
    }
  }
  std::unique_ptr<Frame> frame(spare_.exchange(nullptr, std::memory_order_acquire));
  if (!frame) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      frame = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (!frame) frame = make_frame();
  std::vector<Tensor>& v = frame->vals;
  struct Release {  // drop per-run references and return the frame, also on error
    const Executor* ex;
    std::unique_ptr<Frame>& f;
    std::size_t acquired = 0;  // devices whose stream waited for the frame's last use
    ~Release() {
#ifdef EMBER_WITH_CUDA
      // Only a device that waited may hand its order on (a failed acquire
      // leaves the others' last use in place for the next run to wait for).
      for (std::size_t i = 0; i < acquired; ++i) f->order[i].release(ex->gpu_devices_[i]);
#endif
      if (!ex->cuda_graph_)
        for (std::size_t i = 0; i < f->vals.size(); ++i)
          if (ex->slot_of_[i] < 0) f->vals[i] = Tensor();
      Frame* none = nullptr;
      if (ex->spare_.compare_exchange_strong(none, f.get(), std::memory_order_release)) {
        f.release();
        return;
      }
      std::lock_guard<std::mutex> lock(ex->mu_);
      ex->free_.push_back(std::move(f));
    }
  } release{this, frame};

#ifdef EMBER_WITH_CUDA
  for (; release.acquired < gpu_devices_.size(); ++release.acquired)
    frame->order[release.acquired].acquire(gpu_devices_[release.acquired]);
  if (cuda_graph_) return run_cuda_graph(g, *frame, inputs);
#endif
  std::vector<const Node*> assigns;
  run_steps(g, v, inputs, assigns);
  return finish(g, v, inputs, assigns);
}

std::vector<Tensor> Executor::finish(const GraphIR& g, std::vector<Tensor>& v, const std::vector<Tensor>& inputs,
                                     const std::vector<const Node*>& assigns) const {
  // Side effects last, so a failed guard leaves every Variable untouched.
  for (const Node* a : assigns) {
    Tensor dst = Variable(a->var).state()->value;
    const Tensor& src = v[a->inputs[0]];
    dispatch::RecorderGuard off(nullptr);
    if (src.impl_ptr() != dst.impl_ptr()) dst.copy_(src);
  }
  for (int i = 0; i < g.num_inputs(); ++i) {
    const int w = g.input_writeback[i];
    if (w >= 0) {
      Tensor dst = inputs[i];
      dst.copy_(v[w]);
    }
  }
  std::vector<Tensor> outs;
  outs.reserve(g.outputs.size());
  for (int o : g.outputs) {
    const NodeKind k = g.nodes[o].kind;
    // Constants are returned as copies so a caller cannot change the graph;
    // CUDA-graph values too (the next replay overwrites them). A contiguous
    // host value is copied directly, as the steps run their kernels directly.
    const Tensor& t = v[o];
    if (k == NodeKind::constant && t.device().is_cpu() && t.is_contiguous()) {
      Tensor c = ember::detail::make_tensor(t.shape(), t.dtype(), t.device());
      if (t.nbytes()) std::memcpy(c.impl().data(), t.impl().data(), t.nbytes());
      outs.push_back(std::move(c));
    } else {
      outs.push_back(k == NodeKind::constant || cuda_graph_ ? t.clone() : t);
    }
  }
  return outs;
}

#ifdef EMBER_WITH_CUDA
std::vector<Tensor> Executor::run_cuda_graph(const GraphIR& g, Frame& f, const std::vector<Tensor>& inputs) const {
  std::vector<Tensor>& v = f.vals;
  std::vector<const Node*> assigns;
  const bool first = !f.rec;
  if (first) {
    f.static_in.clear();
    for (const Tensor& t : inputs) f.static_in.push_back(ember::detail::make_tensor(t.shape(), t.dtype(), t.device()));
    f.static_var.assign(v.size(), Tensor());
    for (const Step& s : steps_)
      if (s.kind == NodeKind::variable_read)
        f.static_var[s.out] = ember::detail::make_tensor(s.node->out.shape, s.node->out.dtype, s.node->out.device);
  }
  // Fresh values into the fixed buffers the recorded kernels read.
  {
    dispatch::RecorderGuard off(nullptr);
    for (std::size_t i = 0; i < inputs.size(); ++i) f.static_in[i].copy_(inputs[i]);
    for (const Step& s : steps_)
      if (s.kind == NodeKind::variable_read) f.static_var[s.out].copy_(Variable(s.node->var).value());
  }
  if (first) {
    auto rec = std::make_unique<gpu::GraphRecording>(graph_device_);
    rec->begin();
    try {
      run_steps(g, v, f.static_in, assigns, &f.static_var);
    } catch (...) {
      rec->abort();
      for (Tensor& t : v) t = Tensor();
      throw;
    }
    rec->end();
    f.rec = std::move(rec);
  } else {
    for (const Step& s : steps_)
      if (s.kind == NodeKind::assign) assigns.push_back(s.node);
  }
  f.rec->replay();
  return finish(g, v, inputs, assigns);
}
#endif

}  // namespace ember::capture

