// The tracer: a Recorder that turns the dispatcher's op calls during one eager
// run into a GraphIR. Tensors are identified by their TensorImpl; every traced
// tensor is kept alive until the trace ends so that an address is never reused.
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include <ember/capture.h>

#include "compiled.h"
#include "dispatch/dispatcher.h"
#include "dispatch/recorder.h"

namespace ember::capture {

using dispatch::OpId;

namespace {

ValueInfo info_of(const Tensor& t) { return {t.shape(), t.dtype(), t.device()}; }

class Tracer final : public dispatch::Recorder {
 public:
  GraphIR g;

  int add(Node n) {
    g.nodes.push_back(std::move(n));
    return static_cast<int>(g.nodes.size()) - 1;
  }

  void bind(const Tensor& t, int id) {
    ids_[t.impl_ptr()] = id;
    keep_.push_back(t);
    storages_[t.impl().storage.get()].insert(t.impl_ptr());
  }

  int add_input(const Tensor& t, const std::string& name) {
    const int index = g.num_inputs();
    g.input_names.push_back(name);
    g.input_writeback.push_back(-1);
    auto it = ids_.find(t.impl_ptr());
    if (it != ids_.end()) {
      // The same tensor passed twice: the second input is a separate graph
      // input that the function never reads (the cache key records the aliasing).
      Node n;
      n.kind = NodeKind::input;
      n.index = index;
      n.out = info_of(t);
      add(std::move(n));
      return it->second;
    }
    Node n;
    n.kind = NodeKind::input;
    n.index = index;
    n.out = info_of(t);
    const int id = add(std::move(n));
    bind(t, id);
    inputs_[t.impl_ptr()] = index;
    return id;
  }

  int value_of(const Tensor& t) {
    auto it = ids_.find(t.impl_ptr());
    if (it != ids_.end()) return it->second;
    // A tensor the function did not receive: it becomes a constant, frozen now.
    Node n;
    n.kind = NodeKind::constant;
    {
      dispatch::RecorderGuard off(nullptr);
      n.value = t.clone();
    }
    n.out = info_of(t);
    const int id = add(std::move(n));
    bind(t, id);
    return id;
  }

  // Casts/broadcasts value `id` (of info `have`) to `want`, as an in-place write would.
  int conform(int id, const ValueInfo& have, const ValueInfo& want) {
    ValueInfo cur = have;
    if (cur.shape != want.shape) {
      Node n;
      n.op = OpId::expand;
      n.attrs.ints = want.shape;
      n.inputs = {id};
      n.out = {want.shape, cur.dtype, cur.device};
      id = add(std::move(n));
      cur = g.nodes[id].out;
    }
    if (cur.dtype != want.dtype) {
      Node n;
      n.op = OpId::copy;
      n.attrs.dtype = want.dtype;
      n.inputs = {id};
      n.out = want;
      id = add(std::move(n));
    }
    return id;
  }

  void record(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs, const Tensor& out,
              bool inplace) override {
    Node n;
    n.op = op;
    n.attrs = attrs;
    for (const Tensor& t : inputs) n.inputs.push_back(value_of(t));
    if (!inplace) {
      n.out = info_of(out);
      bind(out, add(std::move(n)));
      return;
    }
    // An in-place op becomes its functional form; later readers of the
    // destination see the new value.
    const dispatch::TensorMeta meta = dispatch::schema(op).infer(op, inputs, attrs);
    n.out = {meta.shape, meta.dtype, meta.device};
    const ValueInfo have = n.out;
    const int id = conform(add(std::move(n)), have, info_of(out));
    ids_[out.impl_ptr()] = id;
    auto in = inputs_.find(out.impl_ptr());
    if (in != inputs_.end()) g.input_writeback[in->second] = id;
    // Writing into a Variable's value is an assignment to the Variable.
    auto var = vars_.find(out.impl_ptr());
    if (var != vars_.end()) {
      Node a;
      a.kind = NodeKind::assign;
      a.var = var->second;
      a.assign_kind = OpId::copy;
      a.inputs = {id};
      a.out = info_of(out);
      add(std::move(a));
    }
  }

  void before_inplace(OpId op, dispatch::Inputs, const Tensor& out) override {
    auto users = storages_.find(out.impl().storage.get());
    if (users != storages_.end() && (users->second.size() > 1 || !users->second.count(out.impl_ptr())))
      throw ValueError(fmt::format(
          "capture: in-place {}_ writes into a tensor that shares memory with another traced "
          "tensor (a view); traces support in-place ops on whole tensors only; use the "
          "out-of-place op",
          dispatch::op_name(op)));
  }

  void on_host_read(const Tensor& t) override {
    auto it = ids_.find(t.impl_ptr());
    if (it == ids_.end()) return;  // an untraced tensor: its value is a constant anyway
    const NodeKind k = g.nodes[it->second].kind;
    if (k == NodeKind::constant) return;
    Node n;
    n.kind = NodeKind::guard;
    n.inputs = {it->second};
    {
      dispatch::RecorderGuard off(nullptr);
      n.value = t.clone();
    }
    n.out = info_of(t);
    add(std::move(n));
  }

  Tensor on_variable_read(const Variable& v, const Tensor& value) override {
    vars_[value.impl_ptr()] = v.state();
    if (!ids_.count(value.impl_ptr())) {
      Node n;
      n.kind = NodeKind::variable_read;
      n.var = v.state();
      n.out = info_of(value);
      const int id = add(std::move(n));
      bind(value, id);
    }
    return value;
  }

  void on_variable_assign(const Variable& v, const Tensor& src, OpId kind) override {
    const Tensor& target = v.state()->value;
    const ValueInfo want = info_of(target);
    int src_id = value_of(src);
    int cur = -1;
    if (kind != OpId::copy) {
      auto it = ids_.find(target.impl_ptr());
      if (it != ids_.end()) {
        cur = it->second;
      } else {
        Node r;
        r.kind = NodeKind::variable_read;
        r.var = v.state();
        r.out = want;
        cur = add(std::move(r));
      }
      Node n;
      n.op = kind;
      n.inputs = {cur, src_id};
      const Tensor pair[2] = {target, src};
      const auto meta = dispatch::schema(kind).infer(kind, dispatch::Inputs(pair, 2), {});
      n.out = ValueInfo{meta.shape, meta.dtype, meta.device};
      const ValueInfo have = n.out;
      src_id = conform(add(std::move(n)), have, want);
    } else {
      src_id = conform(src_id, g.nodes[src_id].out, want);
    }
    Node a;
    a.kind = NodeKind::assign;
    a.var = v.state();
    a.assign_kind = OpId::copy;
    a.inputs = {src_id};
    a.out = want;
    add(std::move(a));
    ids_[target.impl_ptr()] = src_id;
    keep_.push_back(target);
  }

 private:
  std::unordered_map<const void*, int> ids_;
  std::unordered_map<const void*, int> inputs_;
  std::unordered_map<const void*, std::shared_ptr<Variable::State>> vars_;
  std::unordered_map<const void*, std::unordered_set<const void*>> storages_;
  std::vector<Tensor> keep_;
};

}  // namespace

namespace detail {

std::pair<Graph, std::vector<Tensor>> trace_list(const ListFn& fn, const std::vector<Tensor>& inputs,
                                                 const std::vector<std::string>& names,
                                                 const Options& options) {
  if (dispatch::current_recorder())
    throw ValueError("capture: tracing inside another trace or graph is not supported");
  Tracer tr;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw ValueError(fmt::format("capture: input {} is an undefined tensor", i));
    tr.add_input(inputs[i], i < names.size() && !names[i].empty() ? names[i] : fmt::format("arg{}", i));
  }
  std::vector<Tensor> outs;
  {
    dispatch::RecorderGuard on(&tr);
    outs = fn(inputs);
  }
  for (const Tensor& o : outs) {
    if (!o.defined()) throw ValueError("capture: the traced function returned an undefined tensor");
    tr.g.outputs.push_back(tr.value_of(o));
  }
  tr.g.verify("capture");
  return {Graph(compile(std::move(tr.g), options)), std::move(outs)};
}

}  // namespace detail
}  // namespace ember::capture
