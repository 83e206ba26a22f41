// compile() and the public Graph methods.
#include <fmt/format.h>

#include <ember/capture.h>

#include "compiled.h"
#include "dispatch/recorder.h"
#include "dispatch/schema.h"
#include "passes/passes.h"

namespace ember::capture {

namespace detail {

std::shared_ptr<const Compiled> compile(GraphIR traced, const Options& options) {
  auto c = std::make_shared<Compiled>();
  c->options = options;
  GraphIR g = traced;
  if (options.const_fold) passes::const_fold(g);
  if (options.cse) passes::cse(g);
  if (options.dce) passes::dce(g);
  if (options.fuse) {
    passes::fuse_matmul_bias(g);
    passes::fuse_elementwise(g);
    passes::dce(g);
  }
  g.verify("capture");
  c->traced = std::move(traced);
  c->optimized = std::move(g);
  c->exec = std::make_unique<Executor>(c->optimized, options.memory_plan, options.cuda_graphs);
  return c;
}

}  // namespace detail

const detail::Compiled& Graph::impl() const {
  if (!impl_) throw ValueError("Graph: this graph is empty (default-constructed)");
  return *impl_;
}

std::vector<Tensor> Graph::run(const std::vector<Tensor>& inputs) const {
  const auto& c = impl();
  if (dispatch::current_recorder())
    throw ValueError("Graph::run: running a graph inside a trace is not supported; call the traced function instead");
  try {
    return c.exec->run(c.optimized, inputs);
  } catch (const detail::GuardFailed& e) {
    throw ValueError("Graph::run: " + e.what + "; trace again for these inputs");
  }
}

std::string Graph::str() const { return impl().optimized.str(); }
std::string Graph::traced_str() const { return impl().traced.str(); }
std::string Graph::dot() const { return impl().optimized.dot(); }
int Graph::num_nodes() const { return static_cast<int>(impl().optimized.nodes.size()); }
int Graph::num_inputs() const { return impl().optimized.num_inputs(); }

int Graph::count(std::string_view name) const {
  int k = 0;
  for (const Node& n : impl().optimized.nodes) {
    switch (n.kind) {
      case NodeKind::input: k += name == "input"; break;
      case NodeKind::constant: k += name == "constant"; break;
      case NodeKind::variable_read: k += name == "read_variable"; break;
      case NodeKind::fused: k += name == "fused"; break;
      case NodeKind::guard: k += name == "guard"; break;
      case NodeKind::assign: k += name == "assign"; break;
      case NodeKind::op: k += name == dispatch::op_name(n.op); break;
    }
  }
  return k;
}

std::vector<Variable> Graph::variables() const {
  std::vector<Variable> vs;
  for (const Node& n : impl().traced.nodes) {
    if (!n.var) continue;
    bool seen = false;
    for (const Variable& v : vs) seen = seen || v.state() == n.var;
    if (!seen) vs.emplace_back(n.var);
  }
  return vs;
}

}  // namespace ember::capture
