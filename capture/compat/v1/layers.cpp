// tf.variable_scope, tf.get_variable, the initializers, the regularizers and
// tf.layers (dense, dropout, batch_normalization).
// A variable scope is per graph scope (thread), like the name scope it opens;
// get_variable's variables are ordinary tf::Variables, recorded by full name
// in the graph (GraphState::shared_vars) so that reuse finds them.
#include <ember/compat/v1.h>
#include <ember/ember.h>
#include <fmt/format.h>

#include <cmath>

#include "compat/v1/state.h"

namespace ember::compat::v1 {

using detail::ScopeRecorder;

namespace {

struct Fans {
  double in = 1, out = 1;
};

// TF's _compute_fans.
Fans fans_of(const Shape& s) {
  if (s.empty()) return {};
  if (s.size() == 1) return {static_cast<double>(s[0]), static_cast<double>(s[0])};
  double receptive = 1;
  for (std::size_t i = 0; i + 2 < s.size(); ++i) receptive *= static_cast<double>(s[i]);
  return {static_cast<double>(s[s.size() - 2]) * receptive, static_cast<double>(s.back()) * receptive};
}

void check_float(DType dt, const char* who) {
  if (dt != DType::float32 && dt != DType::float64)
    throw DTypeError(fmt::format("{}: draws float32 or float64 values, not {}", who, dtype_name(dt)));
}

// The standard deviation of a standard normal cut at +-2 (truncated_normal).
constexpr double kTruncatedStddev = 0.87962566103423978;

}  // namespace

// ---- initializers ----------------------------------------------------------------

Initializer zeros_initializer() {
  return [](const Shape& s, DType dt) { return ember::zeros(s, dt); };
}
Initializer ones_initializer() {
  return [](const Shape& s, DType dt) { return ember::ones(s, dt); };
}
Initializer constant_initializer(double value) {
  return [value](const Shape& s, DType dt) {
    if (!detail::holds_exactly(Scalar(value), dt))
      throw ValueError(
          fmt::format("constant_initializer: {} cannot be stored exactly in dtype {}", value, dtype_name(dt)));
    return ember::full(s, value, dt);
  };
}
Initializer random_normal_initializer(double mean, double stddev) {
  return [=](const Shape& s, DType dt) {
    check_float(dt, "random_normal_initializer");
    return random_normal(s, mean, stddev, dt);
  };
}
Initializer truncated_normal_initializer(double mean, double stddev) {
  return [=](const Shape& s, DType dt) {
    check_float(dt, "truncated_normal_initializer");
    return truncated_normal(s, mean, stddev, dt);
  };
}
Initializer random_uniform_initializer(double minval, double maxval) {
  return [=](const Shape& s, DType dt) {
    check_float(dt, "random_uniform_initializer");
    return random_uniform(s, minval, maxval, dt);
  };
}

Initializer variance_scaling_initializer(double scale, const std::string& mode, const std::string& distribution) {
  const char* who = "variance_scaling_initializer";
  if (!(scale > 0)) throw ValueError(fmt::format("{}: scale must be positive (got {})", who, scale));
  if (mode != "fan_in" && mode != "fan_out" && mode != "fan_avg")
    throw ValueError(fmt::format("{}: mode \"{}\" is not one of fan_in, fan_out, fan_avg", who, mode));
  if (distribution != "truncated_normal" && distribution != "untruncated_normal" && distribution != "uniform" &&
      distribution != "normal")
    throw ValueError(
        fmt::format("{}: distribution \"{}\" is not one of truncated_normal, untruncated_normal, "
                    "uniform",
                    who, distribution));
  return [=](const Shape& s, DType dt) {
    check_float(dt, who);
    const Fans f = fans_of(s);
    const double n = mode == "fan_in" ? f.in : mode == "fan_out" ? f.out : (f.in + f.out) / 2;
    const double variance = scale / std::max(1.0, n);
    if (distribution == "uniform") {
      const double limit = std::sqrt(3 * variance);
      return random_uniform(s, -limit, limit, dt);
    }
    if (distribution == "untruncated_normal") return random_normal(s, 0.0, std::sqrt(variance), dt);
    // "truncated_normal" (TF1's "normal" is the same): the cut narrows the spread, so it is widened back.
    return truncated_normal(s, 0.0, std::sqrt(variance) / kTruncatedStddev, dt);
  };
}
Initializer glorot_uniform_initializer() { return variance_scaling_initializer(1.0, "fan_avg", "uniform"); }
Initializer glorot_normal_initializer() { return variance_scaling_initializer(1.0, "fan_avg", "truncated_normal"); }

// ---- variable scopes ---------------------------------------------------------------

VariableScope::VariableScope(const std::string& name, Reuse reuse) {
  ScopeRecorder& sc = detail::require_scope("variable_scope");
  if (name.empty() || name.find('/') != std::string::npos)
    throw ValueError(fmt::format("variable_scope: \"{}\" is not a scope name (one non-empty name without '/')", name));
  scope_ = &sc;
  saved_prefix_ = sc.var_prefix;
  saved_reuse_ = sc.reuse;
  saved_names_ = sc.name_prefix;
  // The name scope checks the name (TF's rule) and gets a suffix when reopened.
  std::string opened;
  {
    NameScope ops(name);  // claims "<name>" or "<name>_k"
    opened = ops.name();
  }
  full_ = saved_prefix_ + name;
  sc.var_prefix = full_ + "/";
  if (reuse != Reuse::inherit) sc.reuse = reuse;
  sc.name_prefix = opened;
}

VariableScope::~VariableScope() {
  if (detail::current_scope() != scope_) return;
  auto* sc = static_cast<ScopeRecorder*>(scope_);
  {
    // As TF1: the default names counted inside (dense, dense_1) start again
    // the next time the scope opens, so a second pass with reuse finds the
    // first pass's layers.
    auto& g = *sc->graph();
    std::lock_guard<std::recursive_mutex> lk(g.mu);
    const std::string inside = full_ + "/";
    std::erase_if(g.layer_counts, [&](const auto& e) { return e.first.rfind(inside, 0) == 0; });
  }
  sc->var_prefix = saved_prefix_;
  sc->reuse = saved_reuse_;
  sc->name_prefix = saved_names_;
}

std::string VariableScope::name() const { return full_; }

CurrentVariableScope get_variable_scope() {
  detail::require_scope("get_variable_scope");
  return {};
}
std::string CurrentVariableScope::name() const {
  const std::string& p = detail::require_scope("get_variable_scope").var_prefix;
  return p.empty() ? p : p.substr(0, p.size() - 1);
}
bool CurrentVariableScope::reuse() const { return detail::require_scope("get_variable_scope").reuse != Reuse::inherit; }
void CurrentVariableScope::reuse_variables() const { detail::require_scope("reuse_variables").reuse = Reuse::reuse; }

Variable get_variable(const std::string& name, const Shape& shape, DType dtype, const Initializer& initializer,
                      const Regularizer& regularizer, bool trainable) {
  ScopeRecorder& sc = detail::require_scope("get_variable");
  auto& g = sc.graph();
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  if (name.empty() || name.back() == '/')
    throw ValueError(fmt::format("get_variable: \"{}\" is not a variable name", name));
  const std::string full = sc.var_prefix + name;
  if (auto it = g->shared_vars.find(full); it != g->shared_vars.end()) {
    if (sc.reuse == Reuse::inherit)
      throw ValueError(
          fmt::format("get_variable: Variable {} already exists, disallowed. Did you mean to set "
                      "reuse=True or reuse=tf.AUTO_REUSE in VarScope?",
                      full));
    Variable v(g, it->second);
    if (v.shape() != shape)
      throw ValueError(
          fmt::format("get_variable: Trying to share variable {}, but specified shape {} and found "
                      "shape {}.",
                      full, shape_str(shape), shape_str(v.shape())));
    if (v.dtype() != dtype)
      throw ValueError(
          fmt::format("get_variable: Trying to share variable {}, but specified dtype {} and found "
                      "dtype {}.",
                      full, dtype_name(dtype), dtype_name(v.dtype())));
    return v;
  }
  if (sc.reuse == Reuse::reuse)
    throw ValueError(
        fmt::format("get_variable: Variable {} does not exist, or was not created with "
                    "tf.get_variable(). Did you mean to set reuse=tf.AUTO_REUSE in VarScope?",
                    full));
  for (int64_t d : shape)
    if (d < 0)
      throw ValueError(
          fmt::format("get_variable: Shape of a new variable ({}) must be fully defined, but instead "
                      "was {}.",
                      full, shape_str(shape)));
  if (g->by_name.count(full) || g->name_counts.count(full))
    throw ValueError(fmt::format("get_variable: the name \"{}\" is taken by another node of the graph", full));
  // As TF's init_scope: the initial value and a regularizer's loss wait for
  // no control dependency around get_variable and are no cond branch's.
  detail::InitScope init_scope(sc);
  Initializer init = initializer;
  if (!init) init = is_floating(dtype) ? glorot_uniform_initializer() : zeros_initializer();
  Tensor value;
  {
    auto ops = NameScope(full + "/Initializer/");  // TF's place for the initializer's ops
    value = init(shape, dtype);
  }
  const Shape got = static_shape(value);
  if (got != shape || value.dtype() != dtype)
    throw ValueError(fmt::format("get_variable: the initializer of {} gave {} {} for a variable of {} {}", full,
                                 dtype_name(value.dtype()), shape_str(got), dtype_name(dtype), shape_str(shape)));
  Variable v = [&] {
    auto top = NameScope("");  // the variable's name is `full` as it is
    return Variable(value, full, trainable);
  }();
  g->shared_vars[full] = v.index();
  if (regularizer) {
    Tensor loss;
    {
      auto ops = NameScope(full + "/Regularizer/");  // TF's place for the loss
      loss = regularizer(v.value());
    }
    if (loss.defined()) add_to_collection(GraphKeys::REGULARIZATION_LOSSES, loss);
  }
  return v;
}

// ---- regularizers -------------------------------------------------------------------

namespace contrib::layers {

namespace {
void check_scale(double scale, const char* who) {
  if (std::isnan(scale)) throw ValueError(fmt::format("{}: the scale is NaN", who));
  if (scale < 0) throw ValueError(fmt::format("{}: Setting a scale less than 0 on a regularizer: {}.", who, scale));
}

void check_weights(const Tensor& w, const char* who) {
  if (!is_floating(w.dtype()))
    throw DTypeError(fmt::format("{}: weights have dtype {}; a regularizer needs a floating dtype", who,
                                 dtype_name(w.dtype())));
}
}  // namespace

Regularizer l1_regularizer(double scale) {
  check_scale(scale, "l1_regularizer");
  if (scale == 0) return [](const Tensor&) { return Tensor(); };
  return [scale](const Tensor& w) {
    check_weights(w, "l1_regularizer");
    return detail::scoped("", "l1_regularizer", [&] { return ember::mul(ember::sum(ember::abs(w)), scale); });
  };
}

Regularizer l2_regularizer(double scale) {
  check_scale(scale, "l2_regularizer");
  if (scale == 0) return [](const Tensor&) { return Tensor(); };
  return [scale](const Tensor& w) {
    check_weights(w, "l2_regularizer");
    return detail::scoped("", "l2_regularizer", [&] { return ember::mul(nn::l2_loss(w), scale); });
  };
}

Regularizer l1_l2_regularizer(double scale_l1, double scale_l2) {
  check_scale(scale_l1, "l1_l2_regularizer");
  check_scale(scale_l2, "l1_l2_regularizer");
  const Regularizer l1 = l1_regularizer(scale_l1), l2 = l2_regularizer(scale_l2);
  return [l1, l2](const Tensor& w) {
    return detail::scoped("", "l1_l2_regularizer", [&] {
      const Tensor a = l1(w), b = l2(w);
      if (!a.defined()) return b;
      return b.defined() ? ember::add(a, b) : a;
    });
  };
}

Tensor apply_regularization(const Regularizer& regularizer, const std::vector<Tensor>& weights_list,
                            const std::string& name) {
  if (weights_list.empty()) throw ValueError("apply_regularization: No weights to regularize.");
  if (!regularizer) throw ValueError("apply_regularization: the regularizer is empty");
  const Tensor total = detail::scoped(name, "get_regularization_penalty", [&] {
    Tensor sum;
    for (const Tensor& w : weights_list) {
      Tensor p = regularizer(w);
      if (!p.defined()) p = ember::zeros({}, w.dtype());
      if (p.dim() != 0)
        throw ValueError(fmt::format("apply_regularization: regularizer must return a scalar Tensor instead of a "
                                     "Tensor with rank {}.",
                                     p.dim()));
      sum = sum.defined() ? ember::add(sum, p) : p;
    }
    return sum;
  });
  if (detail::current_scope()) add_to_collection(GraphKeys::REGULARIZATION_LOSSES, total);
  return total;
}

}  // namespace contrib::layers

// ---- tf.layers ----------------------------------------------------------------------

namespace layers {

namespace {
Tensor tf_scalar(double v, DType dt) { return ember::full({}, v, dt); }

// `name`, or the layer kind's next default name in the current variable scope ("dense", "dense_1").
std::string layer_name(ScopeRecorder& sc, const std::string& name, const char* kind) {
  if (!name.empty()) return name;
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  const int k = sc.graph()->layer_counts[sc.var_prefix + kind]++;
  return k == 0 ? std::string(kind) : fmt::format("{}_{}", kind, k);
}

void check_training(const Training& training, const char* who) {
  if (!training.is_tensor()) return;
  const Shape ts = static_shape(training.tensor());
  if (training.tensor().dtype() != DType::bool_ || !ts.empty())
    throw ValueError(fmt::format("{}: training must be a bool or a 0-d bool tensor, got {} {}", who,
                                 dtype_name(training.tensor().dtype()), shape_str(ts)));
}
}  // namespace

Tensor dense(const Tensor& inputs, int64_t units, const Activation& activation, bool use_bias,
             const Initializer& kernel_initializer, const Initializer& bias_initializer,
             const Regularizer& kernel_regularizer, const Regularizer& bias_regularizer, bool trainable,
             const std::string& name, bool reuse) {
  ScopeRecorder& sc = detail::require_scope("dense");
  const Shape s = static_shape(inputs);
  if (s.size() < 2 || s.back() < 0)
    throw ShapeError(fmt::format("dense: inputs must have rank >= 2 and a known last dim, got {}", shape_str(s)));
  if (units <= 0) throw ValueError(fmt::format("dense: units must be positive (got {})", units));
  if (!is_floating(inputs.dtype()))
    throw DTypeError(
        fmt::format("dense: inputs have dtype {}; a dense layer needs a floating dtype", dtype_name(inputs.dtype())));
  auto vs = variable_scope(layer_name(sc, name, "dense"), reuse);
  const DType dt = inputs.dtype();
  const Variable kernel =
      get_variable("kernel", {s.back(), units}, dt, kernel_initializer, kernel_regularizer, trainable);
  Tensor out;
  if (use_bias) {
    const Variable bias = get_variable("bias", {units}, dt, bias_initializer, bias_regularizer, trainable);
    out = s.size() == 2 ? nn::xw_plus_b(inputs, kernel, bias) : nn::bias_add(v1::matmul(inputs, kernel.value()), bias);
  } else {
    out = v1::matmul(inputs, kernel.value());
  }
  return activation ? activation(out) : out;
}

Tensor dropout(const Tensor& inputs, double rate, const Training& training, const std::string& name) {
  if (!(rate >= 0 && rate < 1)) throw ValueError(fmt::format("dropout: rate must be in [0, 1) (got {})", rate));
  if (!is_floating(inputs.dtype()))
    throw DTypeError(fmt::format("dropout: inputs have dtype {}; dropout needs a floating tensor",
                                 dtype_name(inputs.dtype())));
  check_training(training, "dropout");
  return detail::scoped(name, "dropout", [&] {
    if (!training.is_tensor()) return training.fixed() ? nn::dropout(inputs, 1 - rate) : v1::identity(inputs);
    return v1::cond(
        training.tensor(), [&] { return nn::dropout(inputs, 1 - rate); }, [&] { return v1::identity(inputs); });
  });
}

Tensor batch_normalization(const Tensor& inputs, int64_t axis, double momentum, double epsilon, bool center,
                           bool scale, const Training& training, bool trainable, const std::string& name, bool reuse) {
  const char* who = "batch_normalization";
  ScopeRecorder& sc = detail::require_scope(who);
  const Shape s = static_shape(inputs);
  const auto rank = static_cast<int64_t>(s.size());
  if (rank < 1) throw ShapeError(fmt::format("{}: inputs must have at least 1 dim, got {}", who, shape_str(s)));
  const int64_t a = wrap_dim(axis, rank, who);
  const int64_t channels = s[static_cast<std::size_t>(a)];
  if (channels < 0)
    throw ShapeError(fmt::format("{}: dim {} of inputs {} (the axis normalized) must be known", who, a, shape_str(s)));
  if (!is_floating(inputs.dtype()))
    throw DTypeError(fmt::format("{}: inputs have dtype {}; batch normalization needs a floating dtype", who,
                                 dtype_name(inputs.dtype())));
  if (!(momentum >= 0 && momentum <= 1))
    throw ValueError(fmt::format("{}: momentum must be in [0, 1] (got {})", who, momentum));
  check_training(training, who);
  auto vs = variable_scope(layer_name(sc, name, who), reuse);
  const DType dt = inputs.dtype();
  const Shape c{channels};
  // TF's order: gamma, beta, moving_mean, moving_variance.
  const Variable gamma = scale ? get_variable("gamma", c, dt, ones_initializer(), {}, trainable) : Variable();
  const Variable beta = center ? get_variable("beta", c, dt, zeros_initializer(), {}, trainable) : Variable();
  const Variable moving_mean = get_variable("moving_mean", c, dt, zeros_initializer(), {}, false);
  const Variable moving_var = get_variable("moving_variance", c, dt, ones_initializer(), {}, false);
  Axes reduce;
  for (int64_t d = 0; d < rank; ++d)
    if (d != a) reduce.push_back(d);
  // A [C] vector placed along `axis` to broadcast against inputs.
  auto along = [&](const Tensor& v) {
    if (a == rank - 1) return v;
    Shape bs(static_cast<std::size_t>(rank), 1);
    bs[static_cast<std::size_t>(a)] = channels;
    return v.reshape(bs);
  };
  Tensor mean = moving_mean.value(), var = moving_var.value();
  if (training.is_tensor() || training.fixed()) {
    const auto [batch_mean, batch_var] = nn::moments(inputs, reduce);
    // TF's _assign_moving_average: x -= (x - value) * decay, decay = 1 - momentum (0 when not training).
    const Tensor decay = training.is_tensor()
                             ? v1::where(training.tensor(), tf_scalar(1 - momentum, dt), tf_scalar(0.0, dt))
                             : tf_scalar(1 - momentum, dt);
    add_to_collection(GraphKeys::UPDATE_OPS,
                      moving_mean.assign_sub((moving_mean.value() - batch_mean) * decay, "AssignMovingAvg"));
    add_to_collection(GraphKeys::UPDATE_OPS,
                      moving_var.assign_sub((moving_var.value() - batch_var) * decay, "AssignMovingAvg_1"));
    if (training.is_tensor()) {
      mean = v1::where(training.tensor(), batch_mean, moving_mean.value());
      var = v1::where(training.tensor(), batch_var, moving_var.value());
    } else {
      mean = batch_mean;
      var = batch_var;
    }
  }
  Tensor inv = ember::rsqrt(var + epsilon);
  if (scale) inv = inv * gamma.value();
  Tensor shift = ember::neg(mean * inv);
  if (center) shift = shift + beta.value();
  return inputs * along(inv) + along(shift);
}

}  // namespace layers

}  // namespace ember::compat::v1
