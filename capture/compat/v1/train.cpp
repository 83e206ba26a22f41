// tf::gradients and the TF1 optimizers. The graph's nodes become the records
// of lib/autograd's engine; its rules, run inside the graph's scope, build the
// gradient nodes (Note [Shapes in graph mode] in lib/autograd/rule.h).
#include <ember/compat/v1/train.h>

#include <algorithm>

#include <fmt/format.h>

#include <ember/creation.h>

#include "autograd/engine.h"
#include "autograd/rule.h"
#include "compat/v1/state.h"

namespace ember::compat::v1 {

using detail::Kind;
using detail::Node;

namespace {

int node_in(const std::shared_ptr<detail::GraphState>& g, const Tensor& t, const char* what, std::size_t i) {
  const detail::NodeSymbol* s = detail::symbol_of(t);
  if (!s) throw ValueError(fmt::format("gradients: {} {} is not a graph tensor", what, i));
  if (s->graph_id != g->id)
    throw ValueError(fmt::format("gradients: {} {} ({}) is from another graph than the default graph", what,
                                 i, s->describe()));
  return s->node;
}

}  // namespace

std::vector<Tensor> gradients(const std::vector<Tensor>& ys, const std::vector<Tensor>& xs,
                              const std::vector<Tensor>& grad_ys) {
  detail::ScopeRecorder& sc = detail::require_scope("gradients");
  const auto& g = sc.graph();
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  if (!grad_ys.empty() && grad_ys.size() != ys.size())
    throw ValueError(fmt::format("gradients: {} grad_ys given for {} ys", grad_ys.size(), ys.size()));
  // The graph as it is now; gradient nodes are appended after it.
  const int n0 = static_cast<int>(g->nodes.size());
  autograd::Program prog;
  prog.num_ids = n0;
  for (int id = 0; id < n0; ++id) {
    const Node& n = g->nodes[static_cast<std::size_t>(id)];
    // An identity passes gradients through, unless it is a stop_gradient.
    const bool pass = (n.kind == Kind::identity && !n.stop_gradient) || (n.kind == Kind::placeholder && n.with_default);
    if (n.kind != Kind::op && !pass) continue;
    autograd::Record r;
    if (pass) {
      r.op = dispatch::OpId::copy;  // an identity: the gradient passes through
      r.attrs.dtype = n.dtype;
    } else {
      r.op = n.op;
      r.attrs = n.attrs;
    }
    for (int in : n.inputs) {
      r.in.push_back(detail::symbolic(g, in));
      r.in_ids.push_back(in);
    }
    r.out = detail::symbolic(g, id);
    r.out_id = id;
    r.out_shape = r.out.shape();
    r.out_dtype = r.out.dtype();
    prog.records.push_back(std::move(r));
  }
  std::vector<autograd::Target> targets;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    autograd::Target t;
    t.id = node_in(g, ys[i], "y", i);
    t.value = ys[i];
    if (!grad_ys.empty() && grad_ys[i].defined()) {
      t.seed = grad_ys[i];
    } else {
      t.seed = ember::ones_like(ys[i]);
    }
    targets.push_back(std::move(t));
  }
  std::vector<std::vector<int>> sources;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const int id = node_in(g, xs[i], "x", i);
    if (!is_floating(xs[i].dtype()))
      throw DTypeError(fmt::format("gradients: x {} ({}) has dtype {}; only floating-point tensors have "
                                   "gradients",
                                   i, detail::symbol_of(xs[i])->describe(), dtype_name(xs[i].dtype())));
    sources.push_back({id});
  }
  std::vector<Tensor> out = autograd::backward(prog, targets, sources, xs, "gradients");
  // A gradient made of known-shape constants (zeros_like) is still a node of the graph.
  for (Tensor& t : out)
    if (!detail::symbol_of(t)) t = detail::symbolic(g, sc.node_of(t, "gradients"));
  return out;
}


namespace train {

std::vector<GradAndVar> Optimizer::compute_gradients(const Tensor& loss, const std::vector<Variable>& var_list) {
  std::vector<Variable> vars = var_list.empty() ? trainable_variables() : var_list;
  if (vars.empty())
    throw ValueError(fmt::format("{}: no variables to optimize (the graph has no trainable variables)", name_));
  // Which variables the loss reads, through data edges (TF gives the others None).
  std::vector<char> reads;
  if (const detail::NodeSymbol* s = detail::symbol_of(loss); s && s->graph_id == vars[0].graph_state()->id) {
    const auto& g = vars[0].graph_state();
    std::lock_guard<std::recursive_mutex> lk(g->mu);
    std::vector<char> seen(g->nodes.size(), 0);
    reads.assign(g->vars.size(), 0);
    std::vector<int> todo{s->node};
    while (!todo.empty()) {
      const int id = todo.back();
      todo.pop_back();
      if (seen[static_cast<std::size_t>(id)]) continue;
      seen[static_cast<std::size_t>(id)] = 1;
      const Node& n = g->nodes[static_cast<std::size_t>(id)];
      if (n.kind == Kind::variable) reads[static_cast<std::size_t>(n.var)] = 1;
      for (int in : n.inputs) todo.push_back(in);
    }
  }
  std::vector<Tensor> xs;
  std::vector<std::size_t> at;
  for (std::size_t i = 0; i < vars.size(); ++i) {
    const auto k = static_cast<std::size_t>(vars[i].index());
    if (!reads.empty() && vars[i].graph_state() == vars[0].graph_state() && (k >= reads.size() || !reads[k])) continue;
    xs.push_back(vars[i].value());
    at.push_back(i);
  }
  std::vector<GradAndVar> out;
  for (const Variable& v : vars) out.emplace_back(Tensor(), v);
  if (xs.empty()) return out;
  const std::vector<Tensor> gs = gradients(std::vector<Tensor>{loss}, xs);
  for (std::size_t j = 0; j < at.size(); ++j) out[at[j]].first = gs[j];
  return out;
}

Operation Optimizer::apply_gradients(const std::vector<GradAndVar>& grads_and_vars, const std::string& name) {
  std::vector<Fetch> updates;
  for (const auto& [grad, var] : grads_and_vars) {
    if (!grad.defined()) continue;
    for (const Tensor& t : apply_dense(grad, var)) updates.emplace_back(t);
  }
  if (updates.empty())
    throw ValueError(fmt::format("{}: no gradients provided for any variable", name_));
  for (const Tensor& t : finish()) updates.emplace_back(t);
  return group(updates, name.empty() ? name_ : name);
}

Operation Optimizer::minimize(const Tensor& loss, const std::vector<Variable>& var_list, const std::string& name) {
  return apply_gradients(compute_gradients(loss, var_list), name);
}

Variable Optimizer::slot(const Variable& var, const std::string& slot_name) {
  for (const Slot& s : slots_)
    if (s.var.graph_state() == var.graph_state() && s.var.index() == var.index() && s.name == slot_name)
      return s.slot;
  // TF's names: "w/Adam" for the first slot of an optimizer, "w/Adam_1" for the next.
  int k = 0;
  for (const Slot& s : slots_)
    if (s.var.graph_state() == var.graph_state() && s.var.index() == var.index()) ++k;
  const std::string vname = var.name() + "/" + name_ + (k ? fmt::format("_{}", k) : "");
  Variable v(ember::zeros(var.shape(), var.dtype()), vname, false);
  slots_.push_back({var, slot_name, v});
  return v;
}

Variable Optimizer::get_slot(const Variable& var, const std::string& slot_name) const {
  for (const Slot& s : slots_)
    if (s.var.graph_state() == var.graph_state() && s.var.index() == var.index() && s.name == slot_name)
      return s.slot;
  throw ValueError(fmt::format("{}: no slot \"{}\" for variable \"{}\"", name_, slot_name, var.name()));
}

std::vector<std::string> Optimizer::get_slot_names() const {
  std::vector<std::string> names;
  for (const Slot& s : slots_)
    if (std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
  return names;
}

GradientDescentOptimizer::GradientDescentOptimizer(double learning_rate, const std::string& name)
    : Optimizer(name), lr_(learning_rate) {}

std::vector<Tensor> GradientDescentOptimizer::apply_dense(const Tensor& grad, const Variable& var) {
  return {var.assign_sub(grad * lr_, var.name() + "/" + name_)};
}

MomentumOptimizer::MomentumOptimizer(double learning_rate, double momentum, const std::string& name,
                                     bool use_nesterov)
    : Optimizer(name), lr_(learning_rate), momentum_(momentum), nesterov_(use_nesterov) {}

std::vector<Tensor> MomentumOptimizer::apply_dense(const Tensor& grad, const Variable& var) {
  Variable accum = slot(var, "momentum");
  // Assignments apply at the end of a run: the new accumulator is used as a value.
  const Tensor acc = accum.value() * momentum_ + grad;
  const Tensor step = nesterov_ ? (grad + acc * momentum_) * lr_ : acc * lr_;
  return {accum.assign(acc), var.assign_sub(step, var.name() + "/" + name_)};
}

AdamOptimizer::AdamOptimizer(double learning_rate, double beta1, double beta2, double epsilon,
                             const std::string& name)
    : Optimizer(name), lr_(learning_rate), beta1_(beta1), beta2_(beta2), eps_(epsilon) {}

void AdamOptimizer::make_powers(const Variable& first) {
  if (beta1_power_.defined()) return;
  beta1_power_ = Variable(ember::full({}, beta1_, first.dtype()), "beta1_power", false);
  beta2_power_ = Variable(ember::full({}, beta2_, first.dtype()), "beta2_power", false);
}

std::vector<Tensor> AdamOptimizer::apply_dense(const Tensor& grad, const Variable& var) {
  make_powers(var);
  Variable m = slot(var, "m");
  Variable v = slot(var, "v");
  const Tensor m_t = m.value() * beta1_ + grad * (1 - beta1_);
  const Tensor v_t = v.value() * beta2_ + grad * grad * (1 - beta2_);
  const Tensor b1p = beta1_power_.value(), b2p = beta2_power_.value();
  const Tensor lr_t = ember::sqrt(1 - b2p) * lr_ / (1 - b1p);
  const Tensor step = lr_t * m_t / (ember::sqrt(v_t) + eps_);
  return {m.assign(m_t), v.assign(v_t), var.assign_sub(step, var.name() + "/" + name_)};
}

std::vector<Tensor> AdamOptimizer::finish() {
  if (!beta1_power_.defined()) return {};
  return {beta1_power_.assign(beta1_power_.value() * beta1_, name_ + "/update_beta1_power"),
          beta2_power_.assign(beta2_power_.value() * beta2_, name_ + "/update_beta2_power")};
}

}  // namespace train
}  // namespace ember::compat::v1
