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

bool same_var(const Variable& a, const Variable& b) {
  return a.graph_state() == b.graph_state() && a.index() == b.index();
}

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
    const bool pass = n.kind == Kind::identity || (n.kind == Kind::placeholder && n.with_default);
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
  // No gradient flows through a while_loop (Note [While loops]): refuse, as a
  // gradient that stopped at the loop would read as zero.
  {
    std::vector<char> from_x(static_cast<std::size_t>(n0), 0);
    for (const auto& src : sources) from_x[static_cast<std::size_t>(src[0])] = 1;
    for (int id = 0; id < n0; ++id)
      for (int in : g->nodes[static_cast<std::size_t>(id)].inputs)
        if (from_x[static_cast<std::size_t>(in)]) from_x[static_cast<std::size_t>(id)] = 1;
    std::vector<char> seen(static_cast<std::size_t>(n0), 0);
    std::vector<int> stack;
    for (const autograd::Target& t : targets) stack.push_back(t.id);
    while (!stack.empty()) {
      const int id = stack.back();
      stack.pop_back();
      if (seen[static_cast<std::size_t>(id)] || !from_x[static_cast<std::size_t>(id)]) continue;
      seen[static_cast<std::size_t>(id)] = 1;
      const Node& n = g->nodes[static_cast<std::size_t>(id)];
      if (n.kind == Kind::loop_exit)
        throw ValueError(fmt::format("gradients: \"{}:0\", an output of while_loop \"{}\", lies between the ys and "
                                     "the xs; gradients through a while_loop are not supported",
                                     n.name, g->loops[static_cast<std::size_t>(n.exit_of)].name));
      // No gradient passes stop_gradient or an op without a derivative (a comparison, argmax).
      if (n.kind == Kind::op && (n.op == dispatch::OpId::detach || !autograd::rule(n.op).differentiable())) continue;
      for (int in : n.inputs) stack.push_back(in);
    }
  }
  std::vector<Tensor> out = autograd::backward(prog, targets, sources, xs, "gradients");
  // A gradient made of known-shape constants (zeros_like) is still a node of the graph.
  for (Tensor& t : out)
    if (!detail::symbol_of(t)) t = detail::symbolic(g, sc.node_of(t, "gradients"));
  return out;
}


namespace train {

namespace {

// How messages show a tensor argument.
std::string describe(const Tensor& t) {
  if (const detail::NodeSymbol* s = detail::symbol_of(t)) return s->describe();
  return fmt::format("an eager tensor ({} {})", dtype_name(t.dtype()), shape_str(t.shape()));
}

// A number as TF1 converts a Python number to a tensor: bool, int32 for a
// whole number that fits (int64 for a larger one), float32 for a fraction.
Tensor python_number(Scalar s) {
  DType dt = DType::float32;
  if (s.kind() == Scalar::Kind::boolean) {
    dt = DType::bool_;
  } else if (s.kind() == Scalar::Kind::integer) {
    dt = detail::holds_exactly(s, DType::int32) ? DType::int32 : DType::int64;
  }
  return ember::scalar_tensor(s, dt);
}

Tensor as_tensor(const Value& v) {
  const Operand o = v.operand();
  return o.is_tensor() ? o.tensor() : python_number(o.scalar());
}

// 1 - decay as TF computes it: in the variable's dtype (float32 rounds decay first).
double one_minus(double decay, DType dt) {
  if (dt == DType::float32) return static_cast<double>(1.0f - static_cast<float>(decay));
  return 1.0 - decay;
}

}  // namespace

Optimizer::Optimizer(std::string name, LearningRate learning_rate)
    : name_(std::move(name)), lr_(std::move(learning_rate)) {
  if (!lr_->is_tensor()) return;
  const Tensor& t = lr_->tensor();
  if (!t.defined()) throw ValueError(fmt::format("{}: learning_rate is an undefined tensor", name_));
  if (!static_shape(t).empty())
    throw ShapeError(fmt::format("{}: learning_rate must be a 0-d tensor; it is {}", name_, describe(t)));
  if (!is_floating(t.dtype()))
    throw DTypeError(fmt::format("{}: learning_rate must be a floating-point tensor; it is {}", name_, describe(t)));
}

Tensor Optimizer::scale_by_lr(const Tensor& x, const Variable& var) const {
  if (!lr_)
    throw InternalError(fmt::format("{}: scale_by_lr needs the learning rate given to the Optimizer constructor "
                                    "({}:{})",
                                    name_, __FILE__, __LINE__));
  if (!lr_->is_tensor()) return x * lr_->number();
  const Tensor& lr = lr_->tensor();
  return x * (lr.dtype() == var.dtype() ? lr : ember::cast(lr, var.dtype()));
}

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
      if (n.kind == Kind::op && n.op == dispatch::OpId::detach) continue;  // stop_gradient: not a path
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
  return apply(grads_and_vars, Variable(), name);
}

Operation Optimizer::minimize(const Tensor& loss, const std::vector<Variable>& var_list, const std::string& name) {
  return apply(compute_gradients(loss, var_list), Variable(), name);
}

Operation Optimizer::apply(const std::vector<GradAndVar>& grads_and_vars, const Variable& global_step,
                           const std::string& name) {
  // Everything is checked before the first node is built.
  const Variable* first = nullptr;
  for (const auto& [grad, var] : grads_and_vars)
    if (grad.defined()) {
      first = &var;
      break;
    }
  if (!first) throw ValueError(fmt::format("{}: no gradients provided for any variable", name_));
  if (lr_ && lr_->is_tensor())
    if (const detail::NodeSymbol* s = detail::symbol_of(lr_->tensor()); s && s->graph_id != first->graph_state()->id)
      throw ValueError(fmt::format("{}: learning_rate ({}) is from another graph than variable \"{}\"", name_,
                                   s->describe(), first->name()));
  if (global_step.defined()) {
    if (global_step.graph_state() != first->graph_state())
      throw ValueError(fmt::format("{}: global_step \"{}\" is from another graph than variable \"{}\"", name_,
                                   global_step.name(), first->name()));
    detail::check_step_variable(global_step, name_);
  }
  const std::string op_name = name.empty() ? name_ : name;
  std::vector<Fetch> updates;
  for (const auto& [grad, var] : grads_and_vars) {
    if (!grad.defined()) continue;
    for (const Tensor& t : apply_dense(grad, var)) updates.emplace_back(t);
  }
  for (const Tensor& t : finish()) updates.emplace_back(t);
  if (!global_step.defined()) return group(updates, op_name);
  // As TF: the step advances once every update has run, and that increment is the op.
  const Operation done = group(updates, op_name + "/update");
  auto after = control_dependencies({done});
  return op_of(global_step.assign_add(1, op_name));
}

Variable Optimizer::slot(const Variable& var, const std::string& slot_name, double initial_value) {
  for (const Slot& s : slots_)
    if (same_var(s.var, var) && s.name == slot_name)
      return s.slot;
  // TF's names: "w/Adam" for the first slot of an optimizer, "w/Adam_1" for the next.
  int k = 0;
  for (const Slot& s : slots_)
    if (same_var(s.var, var)) ++k;
  const std::string vname = var.name() + "/" + name_ + (k ? fmt::format("_{}", k) : "");
  NameScope top("");  // var.name() is already scoped: "layer/w/Adam" wherever minimize runs
  Variable v(ember::full(var.shape(), initial_value, var.dtype()), vname, false);
  slots_.push_back({var, slot_name, v});
  return v;
}

Variable Optimizer::get_slot(const Variable& var, const std::string& slot_name) const {
  for (const Slot& s : slots_)
    if (same_var(s.var, var) && s.name == slot_name)
      return s.slot;
  throw ValueError(fmt::format("{}: no slot \"{}\" for variable \"{}\"", name_, slot_name, var.name()));
}

std::vector<std::string> Optimizer::get_slot_names() const {
  std::vector<std::string> names;
  for (const Slot& s : slots_)
    if (std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
  return names;
}

GradientDescentOptimizer::GradientDescentOptimizer(LearningRate learning_rate, const std::string& name)
    : Optimizer(name, std::move(learning_rate)) {}

std::vector<Tensor> GradientDescentOptimizer::apply_dense(const Tensor& grad, const Variable& var) {
  return {var.assign_sub(scale_by_lr(grad, var), var.name() + "/" + name_)};
}

MomentumOptimizer::MomentumOptimizer(LearningRate learning_rate, double momentum, const std::string& name,
                                     bool use_nesterov)
    : Optimizer(name, std::move(learning_rate)), momentum_(momentum), nesterov_(use_nesterov) {}

std::vector<Tensor> MomentumOptimizer::apply_dense(const Tensor& grad, const Variable& var) {
  Variable accum = slot(var, "momentum");
  // Assignments apply at the end of a run: the new accumulator is used as a value.
  const Tensor acc = accum.value() * momentum_ + grad;
  const Tensor step = scale_by_lr(nesterov_ ? grad + acc * momentum_ : acc, var);
  return {accum.assign(acc), var.assign_sub(step, var.name() + "/" + name_)};
}

AdamOptimizer::AdamOptimizer(LearningRate learning_rate, double beta1, double beta2, double epsilon,
                             const std::string& name)
    : Optimizer(name, std::move(learning_rate)), beta1_(beta1), beta2_(beta2), eps_(epsilon) {}

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
  const Tensor lr_t = scale_by_lr(ember::sqrt(1 - b2p), var) / (1 - b1p);
  const Tensor step = lr_t * m_t / (ember::sqrt(v_t) + eps_);
  return {m.assign(m_t), v.assign(v_t), var.assign_sub(step, var.name() + "/" + name_)};
}

std::vector<Tensor> AdamOptimizer::finish() {
  if (!beta1_power_.defined()) return {};
  return {beta1_power_.assign(beta1_power_.value() * beta1_, name_ + "/update_beta1_power"),
          beta2_power_.assign(beta2_power_.value() * beta2_, name_ + "/update_beta2_power")};
}

RMSPropOptimizer::RMSPropOptimizer(LearningRate learning_rate, double decay, double momentum, double epsilon,
                                   bool centered, const std::string& name)
    : Optimizer(name, std::move(learning_rate)),
      decay_(decay),
      momentum_(momentum),
      eps_(epsilon),
      centered_(centered) {}

std::vector<Tensor> RMSPropOptimizer::apply_dense(const Tensor& grad, const Variable& var) {
  // TF's slot order and initial values: rms at ones, mg (centered), momentum at zeros.
  Variable rms = slot(var, "rms", 1.0);
  Variable mg = centered_ ? slot(var, "mg") : Variable();
  Variable mom = slot(var, "momentum");
  const double rho1 = one_minus(decay_, var.dtype());
  // The kernel's own form of ms = decay * ms + (1 - decay) * grad^2.
  const Tensor ms_t = rms.value() + (grad * grad - rms.value()) * rho1;
  std::vector<Tensor> out{rms.assign(ms_t)};
  Tensor denom;
  if (centered_) {
    const Tensor mg_t = mg.value() + (grad - mg.value()) * rho1;
    out.push_back(mg.assign(mg_t));
    denom = (ms_t - mg_t * mg_t) + eps_;
  } else {
    denom = ms_t + eps_;
  }
  const Tensor mom_t = mom.value() * momentum_ + scale_by_lr(grad, var) / ember::sqrt(denom);
  out.push_back(mom.assign(mom_t));
  out.push_back(var.assign_sub(mom_t, var.name() + "/" + name_));
  return out;
}

AdagradOptimizer::AdagradOptimizer(LearningRate learning_rate, double initial_accumulator_value,
                                   const std::string& name)
    : Optimizer(name, std::move(learning_rate)), init_(initial_accumulator_value) {
  if (!(initial_accumulator_value > 0))
    throw ValueError(fmt::format("{}: initial_accumulator_value must be positive (got {})", name_,
                                 initial_accumulator_value));
}

std::vector<Tensor> AdagradOptimizer::apply_dense(const Tensor& grad, const Variable& var) {
  Variable acc = slot(var, "accumulator", init_);
  const Tensor acc_t = acc.value() + grad * grad;
  return {acc.assign(acc_t), var.assign_sub(scale_by_lr(grad, var) * ember::rsqrt(acc_t), var.name() + "/" + name_)};
}

// ---- global step -------------------------------------------------------------

namespace {

constexpr const char* kGlobalStep = "global_step";

Variable find_global_step(const std::shared_ptr<detail::GraphState>& g, const char* who) {
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  // TF looks the step up by its tensor name, "global_step:0": a variable the
  // user made with that name counts (often an int32 tf.Variable(0)).
  auto it = g->by_name.find(kGlobalStep);
  if (it == g->by_name.end()) return Variable();
  const Node& n = g->nodes[static_cast<std::size_t>(it->second)];
  if (n.kind != Kind::variable || n.var < 0)
    throw ValueError(fmt::format("{}: the node named \"global_step\" is not a variable", who));
  const detail::VarInfo& vi = g->vars[static_cast<std::size_t>(n.var)];
  if (!is_integral(vi.dtype))
    throw DTypeError(fmt::format("{}: the existing \"global_step\" does not have an integer type ({})", who,
                                 dtype_name(vi.dtype)));
  if (!vi.shape.empty())
    throw ShapeError(fmt::format("{}: the existing \"global_step\" is not 0-d ({})", who, shape_str(vi.shape)));
  return Variable(g, n.var);
}

Variable create_global_step(const char* who) {
  const auto& g = detail::require_scope(who).graph();
  // A name scope called "global_step" holds the name; the step would be "global_step_1", which no lookup finds.
  if (g->name_counts.count(kGlobalStep))
    throw ValueError(fmt::format("{}: the name \"global_step\" is taken (by a name scope?); the global step "
                                 "needs it",
                                 who));
  NameScope top("");  // at the top level whatever name scope is open, as TF's
  return Variable(ember::zeros({}, DType::int64), kGlobalStep, false);
}

}  // namespace

// ---- ExponentialMovingAverage ----------------------------------------------------

ExponentialMovingAverage::ExponentialMovingAverage(double decay, const std::string& name)
    : decay_(decay), name_(name) {
  if (name_.empty()) throw ValueError("ExponentialMovingAverage: the name must not be empty");
}

ExponentialMovingAverage::ExponentialMovingAverage(double decay, const Tensor& num_updates, const std::string& name)
    : ExponentialMovingAverage(decay, name) {
  if (!num_updates.defined()) throw ValueError("ExponentialMovingAverage: num_updates is an undefined tensor");
  const Shape s = static_shape(num_updates);
  if (!s.empty() || num_updates.dtype() == DType::bool_)
    throw ValueError(fmt::format("ExponentialMovingAverage: num_updates must be a 0-d number, got {} {}",
                                 dtype_name(num_updates.dtype()), shape_str(s)));
  num_updates_ = num_updates;
}

Operation ExponentialMovingAverage::apply(const std::vector<Variable>& var_list) {
  const char* who = "ExponentialMovingAverage::apply";
  detail::require_scope(who);
  const std::vector<Variable> vars = var_list.empty() ? trainable_variables() : var_list;
  // Everything is checked before the first shadow is made.
  std::vector<Tensor> initial;
  for (std::size_t i = 0; i < vars.size(); ++i) {
    const Variable& v = vars[i];
    if (!v.defined()) throw ValueError(fmt::format("{}: an undefined Variable", who));
    if (!is_floating(v.dtype()))
      throw DTypeError(fmt::format("{}: The variables must be half, float, or double: {} is {}", who, v.name(),
                                   dtype_name(v.dtype())));
    const bool twice =
        std::any_of(averages_.begin(), averages_.end(), [&](const auto& a) { return same_var(a.first, v); }) ||
        std::any_of(vars.begin(), vars.begin() + static_cast<std::ptrdiff_t>(i),
                    [&](const Variable& u) { return same_var(u, v); });
    if (twice) throw ValueError(fmt::format("{}: Moving average already computed for: {}", who, v.name()));
    initial.push_back(v.initial_value());  // ValueError for an ember::Variable read by reference
  }
  for (std::size_t i = 0; i < vars.size(); ++i) {
    // As TF's slot: at the top level whatever name scope is open; it starts
    // at the variable's initial value (tf's initialized_value()).
    NameScope top("");
    averages_.emplace_back(vars[i], Variable(initial[i], average_name(vars[i]), false));
    add_to_collection(GraphKeys::MOVING_AVERAGE_VARIABLES, vars[i]);
  }
  std::vector<Fetch> updates;
  Tensor decay = constant(static_cast<float>(decay_), "decay");
  if (num_updates_.defined()) {
    const Tensor n = v1::cast(num_updates_, DType::float32);
    decay = v1::minimum(decay, (n + 1.f) / (n + 10.f));
  }
  const Tensor keep = 1.f - decay;
  std::map<DType, Tensor> keep_in;  // one cast per dtype of the variables, as TF's decay is cast per variable
  for (const Variable& v : vars) {
    const Variable shadow = average(v);
    Tensor& k = keep_in[v.dtype()];
    if (!k.defined()) k = v.dtype() == DType::float32 ? keep : v1::cast(keep, v.dtype());
    updates.emplace_back(shadow.assign_sub((shadow.value() - v.value()) * k, "AssignMovingAvg"));
  }
  return group(updates, name_);
}

Variable ExponentialMovingAverage::average(const Variable& var) const {
  for (const auto& [v, shadow] : averages_)
    if (same_var(v, var)) return shadow;
  return Variable();
}

std::string ExponentialMovingAverage::average_name(const Variable& var) const {
  if (!var.defined()) throw ValueError("ExponentialMovingAverage::average_name: an undefined Variable");
  return var.name() + "/" + name_;
}

std::map<std::string, Variable> ExponentialMovingAverage::variables_to_restore(
    const std::vector<Variable>& moving_avg_variables) const {
  detail::require_scope("ExponentialMovingAverage::variables_to_restore");
  const std::vector<Variable> all = global_variables();
  std::vector<Variable> averaged = moving_avg_variables;
  if (averaged.empty()) {
    averaged = trainable_variables();
    std::vector<int> listed;  // the nodes of the variables in the collection
    for (const Fetch& f : get_collection(GraphKeys::MOVING_AVERAGE_VARIABLES))
      if (const detail::NodeSymbol* sym = detail::symbol_of(f.tensor)) listed.push_back(sym->node);
    for (const Variable& v : all)
      if (std::find(listed.begin(), listed.end(), detail::symbol_of(v.value())->node) != listed.end())
        averaged.push_back(v);
  }
  std::map<std::string, Variable> names;
  for (const Variable& v : averaged) names[average_name(v)] = v;
  for (const Variable& v : all) {
    const bool is_averaged =
        std::any_of(averaged.begin(), averaged.end(), [&](const Variable& a) { return same_var(a, v); });
    if (!is_averaged && !names.count(v.name())) names[v.name()] = v;
  }
  return names;
}

Variable get_global_step() {
  return find_global_step(detail::require_scope("get_global_step").graph(), "get_global_step");
}

Variable get_global_step(const Graph& graph) { return find_global_step(graph.state(), "get_global_step"); }

Variable get_or_create_global_step() {
  const char* who = "get_or_create_global_step";
  detail::ScopeRecorder& sc = detail::require_scope(who);
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  Variable step = find_global_step(sc.graph(), who);
  return step.defined() ? step : create_global_step(who);
}

Variable get_or_create_global_step(const Graph& graph) {
  const char* who = "get_or_create_global_step";
  std::lock_guard<std::recursive_mutex> lk(graph.state()->mu);
  Variable step = find_global_step(graph.state(), who);
  if (step.defined()) return step;
  // In the graph's own scope when it is the default one (its device scope applies).
  const detail::ScopeRecorder* sc = detail::current_scope();
  if (sc && sc->graph() == graph.state()) return create_global_step(who);
  auto scope = graph.as_default();
  return create_global_step(who);
}

// ---- learning rate schedules -----------------------------------------------------

Tensor exponential_decay(const Value& learning_rate, const Value& global_step, double decay_steps,
                         double decay_rate, bool staircase, const std::string& name) {
  const char* who = "exponential_decay";
  const Tensor lr = as_tensor(learning_rate);
  const Tensor step = as_tensor(global_step);
  if (!lr.defined()) throw ValueError(fmt::format("{}: learning_rate is an undefined tensor", who));
  if (!step.defined())
    throw ValueError(fmt::format("{}: global_step is required (an undefined tensor was given)", who));
  if (!static_shape(lr).empty())
    throw ShapeError(fmt::format("{}: learning_rate must be 0-d; it is {}", who, describe(lr)));
  if (!is_floating(lr.dtype()))
    throw DTypeError(fmt::format("{}: learning_rate must be floating-point (float32 or float64); it is {}", who,
                                 describe(lr)));
  if (!static_shape(step).empty())
    throw ShapeError(fmt::format("{}: global_step must be 0-d; it is {}", who, describe(step)));
  if (step.dtype() == DType::bool_)
    throw DTypeError(fmt::format("{}: global_step must be a number; it is {}", who, describe(step)));
  if (!(decay_steps > 0))
    throw ValueError(fmt::format("{}: decay_steps must be positive (got {})", who, decay_steps));
  // As TF: the step and both constants are cast to the rate's dtype first.
  const DType dt = lr.dtype();
  const Tensor steps = ember::scalar_tensor(decay_steps, dt);
  const Tensor rate = ember::scalar_tensor(decay_rate, dt);
  Tensor p = ember::div(step.dtype() == dt ? step : ember::cast(step, dt), steps);
  if (staircase) p = ember::floor(p);
  return multiply(lr, ember::pow(rate, p), name.empty() ? "ExponentialDecay" : name);
}

Tensor exponential_decay(const Value& learning_rate, const Variable& global_step, double decay_steps,
                         double decay_rate, bool staircase, const std::string& name) {
  if (!global_step.defined())
    throw ValueError("exponential_decay: global_step is required (an undefined Variable was given; "
                     "get_or_create_global_step() makes one)");
  return exponential_decay(learning_rate, Value(global_step), decay_steps, decay_rate, staircase, name);
}

Tensor piecewise_constant(const Value& x_value, const std::vector<Value>& boundaries,
                          const std::vector<Value>& values, const std::string& name) {
  const char* who = "piecewise_constant";
  if (boundaries.size() + 1 != values.size())
    throw ValueError(fmt::format("{}: boundaries must have one element less than values ({} boundaries, {} values)",
                                 who, boundaries.size(), values.size()));
  if (boundaries.empty()) throw ValueError(fmt::format("{}: needs at least one boundary", who));
  const Tensor x = as_tensor(x_value);
  if (!x.defined()) throw ValueError(fmt::format("{}: x is an undefined tensor", who));
  if (!static_shape(x).empty()) throw ShapeError(fmt::format("{}: x must be 0-d; it is {}", who, describe(x)));
  if (x.dtype() == DType::bool_)
    throw DTypeError(fmt::format("{}: x must be a number; it is {}", who, describe(x)));
  std::vector<Tensor> bs;
  for (std::size_t i = 0; i < boundaries.size(); ++i) {
    Tensor b = as_tensor(boundaries[i]);
    if (!b.defined()) throw ValueError(fmt::format("{}: boundaries[{}] is an undefined tensor", who, i));
    if (b.dtype() == DType::int32 && x.dtype() == DType::int64) {
      // TF widens int32 boundaries (Python ints) for an int64 step; never the other way.
      b = ember::cast(b, DType::int64);
    } else if (b.dtype() != x.dtype()) {
      throw ValueError(fmt::format("{}: boundaries[{}] ({}) must have the same dtype as x ({})", who, i,
                                   dtype_name(b.dtype()), dtype_name(x.dtype())));
    }
    if (!static_shape(b).empty())
      throw ShapeError(fmt::format("{}: boundaries[{}] must be 0-d; it is {}", who, i, describe(b)));
    bs.push_back(b);
  }
  // Number boundaries are checked here; TF's case() would fail in the run.
  for (std::size_t i = 1; i < boundaries.size(); ++i) {
    const Operand a = boundaries[i - 1].operand(), b = boundaries[i].operand();
    if (a.is_tensor() || b.is_tensor()) continue;
    const bool ints = !a.scalar().is_floating() && !b.scalar().is_floating();
    if (ints ? a.scalar().to_int() >= b.scalar().to_int() : a.scalar().to_double() >= b.scalar().to_double())
      throw ValueError(fmt::format("{}: boundaries must increase strictly (boundaries[{}] = {} follows {})", who, i,
                                   b.scalar().str(), a.scalar().str()));
  }
  std::vector<Tensor> vs;
  for (std::size_t i = 0; i < values.size(); ++i) {
    vs.push_back(as_tensor(values[i]));
    if (!vs.back().defined()) throw ValueError(fmt::format("{}: values[{}] is an undefined tensor", who, i));
    if (vs.back().dtype() != vs[0].dtype())
      throw ValueError(fmt::format("{}: values must all have one dtype (values[0] is {}, values[{}] is {})", who,
                                   dtype_name(vs[0].dtype()), i, dtype_name(vs.back().dtype())));
  }
  // Innermost the last interval: each boundary, from the last, picks its value while x is at most it.
  Tensor r = vs.back();
  for (std::size_t k = bs.size(); k-- > 1;) r = ember::where(ember::le(x, bs[k]), vs[k], r);
  return where(ember::le(x, bs[0]), vs[0], r, name.empty() ? "PiecewiseConstant" : name);
}

}  // namespace train
}  // namespace ember::compat::v1
