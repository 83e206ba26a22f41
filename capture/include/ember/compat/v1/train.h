#pragma once
// Gradients and optimizers for TF1 graphs (included by ember/compat/v1.h):
//
//   auto train_op = tf::train::GradientDescentOptimizer(0.1).minimize(loss);
//   sess.run(tf::global_variables_initializer());   // after minimize: it made slots
//   for (...) sess.run(train_op, {{x, xb}, {y, yb}});
//
// With a global step and a schedule, the rate follows the step run by run:
//
//   auto step = tf::train::get_or_create_global_step();
//   auto lr = tf::train::exponential_decay(0.1, step, 1000, 0.96, true);
//   auto train_op = tf::train::RMSPropOptimizer(lr).minimize(loss, step);
//
// The gradient nodes come from the same derivative rules as em::GradientTape
// (lib/autograd/), built in graph mode.
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ember/compat/v1.h>

namespace ember::compat::v1 {

/// d sum(ys) / d xs as new nodes of the default graph (tf.gradients). `grad_ys`
/// (one per y, optional) weights each y instead of ones. An x that no y depends
/// on gets zeros (TF gives None); integer or bool xs raise DTypeError.
std::vector<Tensor> gradients(const std::vector<Tensor>& ys, const std::vector<Tensor>& xs,
                              const std::vector<Tensor>& grad_ys = {});
/// One y, several xs.
inline std::vector<Tensor> gradients(const Tensor& y, const std::vector<Tensor>& xs) {
  return gradients(std::vector<Tensor>{y}, xs);
}
/// One y, one x (a tf::Variable stands for its value). A template, so that a
/// braced list, `gradients({y}, {x})`, means a list as in TF (and gives a
/// vector, not one gradient indexed by [0]).
template <class Y, class X>
  requires((std::is_same_v<Y, Tensor> || std::is_same_v<Y, Variable>) &&
           (std::is_same_v<X, Tensor> || std::is_same_v<X, Variable>))
Tensor gradients(const Y& y, const X& x) {
  return gradients(std::vector<Tensor>{Tensor(y)}, std::vector<Tensor>{Tensor(x)}).at(0);
}

namespace train {

/// A gradient and the variable it belongs to.
using GradAndVar = std::pair<Tensor, Variable>;

/// An optimizer's learning rate: a number, or a 0-d floating-point tensor (a
/// placeholder, a tf::Variable, a schedule such as exponential_decay) whose
/// value is read on every run. A tensor rate is cast to each variable's dtype,
/// as TF1 casts it; the optimizer refuses one that is not 0-d or not floating.
class LearningRate {
 public:
  template <class T>
    requires std::is_arithmetic_v<T>
  LearningRate(T v) : number_(static_cast<double>(v)) {}                      // NOLINT: a number is a rate
  LearningRate(const Tensor& t) : tensor_(t), is_tensor_(true) {}            // NOLINT: so is a tensor
  LearningRate(const Variable& v) : tensor_(v.value()), is_tensor_(true) {}  // NOLINT: and a variable
  bool is_tensor() const { return is_tensor_; }
  double number() const { return number_; }
  const Tensor& tensor() const { return tensor_; }

 private:
  double number_ = 0;
  Tensor tensor_;
  bool is_tensor_ = false;
};

/// The TF1 optimizer interface: compute_gradients, apply_gradients, minimize.
/// Slot variables (momentum, Adam moments) are non-trainable global variables
/// named "<var>/<Optimizer>", "<var>/<Optimizer>_1", so `Saver` saves them and
/// `global_variables_initializer()` (created after minimize) initializes them.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// d loss / d v for each v of `var_list` (default: every trainable variable);
  /// an undefined gradient (TF's None) for a v the loss does not depend on.
  std::vector<GradAndVar> compute_gradients(const Tensor& loss, const std::vector<Variable>& var_list = {});
  /// One op that applies every update (the variables change when a Session runs it).
  Operation apply_gradients(const std::vector<GradAndVar>& grads_and_vars, const std::string& name = "");
  /// As above, then adds 1 to `global_step` (a 0-d integer variable) once every
  /// update has run; returns that increment, named `name` (TF's global_step
  /// argument). An undefined Variable (get_global_step() found none) adds nothing.
  /// A template so that `apply_gradients(gv, {})` keeps meaning the overload above.
  template <class S>
    requires std::is_same_v<S, Variable>
  Operation apply_gradients(const std::vector<GradAndVar>& grads_and_vars, const S& global_step,
                            const std::string& name = "") {
    return apply(grads_and_vars, global_step, name);
  }
  /// compute_gradients then apply_gradients.
  Operation minimize(const Tensor& loss, const std::vector<Variable>& var_list = {},
                     const std::string& name = "");
  /// compute_gradients then apply_gradients with a global step (TF's
  /// minimize(loss, global_step=step)). A template so that a braced var_list,
  /// `minimize(loss, {w})`, still means the overload above.
  template <class S>
    requires std::is_same_v<S, Variable>
  Operation minimize(const Tensor& loss, const S& global_step, const std::vector<Variable>& var_list = {},
                     const std::string& name = "") {
    return apply(compute_gradients(loss, var_list), global_step, name);
  }
  /// The slot variable `slot` ("m", "v", "momentum", "rms", "accumulator") made
  /// for `var`; ValueError when none.
  Variable get_slot(const Variable& var, const std::string& slot) const;
  /// Names of this optimizer's slots.
  std::vector<std::string> get_slot_names() const;

 protected:
  /// An optimizer without a learning rate (scale_by_lr then raises InternalError).
  explicit Optimizer(std::string name) : name_(std::move(name)) {}
  /// Keeps `learning_rate`; ValueError for an undefined tensor, ShapeError for
  /// one that is not 0-d, DTypeError for one that is not floating-point.
  Optimizer(std::string name, LearningRate learning_rate);
  /// Builds the update of one variable; returns the nodes to run (assign ops).
  virtual std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) = 0;
  /// Builds updates that run once per step after all variables (Adam's beta powers).
  virtual std::vector<Tensor> finish() { return {}; }
  /// A slot for `var` (created once) whose every element starts at `initial_value`.
  Variable slot(const Variable& var, const std::string& slot_name, double initial_value = 0);
  /// x * learning_rate, the rate taken in `var`'s dtype.
  Tensor scale_by_lr(const Tensor& x, const Variable& var) const;
  std::string name_;

 private:
  Operation apply(const std::vector<GradAndVar>& grads_and_vars, const Variable& global_step,
                  const std::string& name);
  struct Slot {
    Variable var;
    std::string name;
    Variable slot;
  };
  std::vector<Slot> slots_;
  std::optional<LearningRate> lr_;
};

/// var -= learning_rate * grad.
class GradientDescentOptimizer : public Optimizer {
 public:
  explicit GradientDescentOptimizer(LearningRate learning_rate, const std::string& name = "GradientDescent");

 private:
  std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) override;
};

/// accum = momentum * accum + grad; var -= learning_rate * accum
/// (Nesterov: var -= learning_rate * (grad + momentum * accum)).
class MomentumOptimizer : public Optimizer {
 public:
  MomentumOptimizer(LearningRate learning_rate, double momentum, const std::string& name = "Momentum",
                    bool use_nesterov = false);

 private:
  std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) override;
  double momentum_;
  bool nesterov_;
};

/// Adam (Kingma & Ba) as TF1 computes it: m, v slots per variable and
/// beta1_power / beta2_power variables; lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t).
class AdamOptimizer : public Optimizer {
 public:
  explicit AdamOptimizer(LearningRate learning_rate = 0.001, double beta1 = 0.9, double beta2 = 0.999,
                         double epsilon = 1e-8, const std::string& name = "Adam");

 private:
  std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) override;
  std::vector<Tensor> finish() override;
  void make_powers(const Variable& first);
  double beta1_, beta2_, eps_;
  Variable beta1_power_, beta2_power_;
};

/// RMSProp as TF1's ApplyRMSProp computes it: ms += (grad^2 - ms) * (1 - decay);
/// mom = momentum * mom + learning_rate * grad / sqrt(ms + epsilon); var -= mom.
/// Centered (ApplyCenteredRMSProp): also mg += (grad - mg) * (1 - decay), and the
/// root is sqrt(ms - mg^2 + epsilon). Slots, created in this order: "rms"
/// (starts at ones, as TF's), "mg" (centered only), "momentum" (zeros), named
/// "w/RMSProp", "w/RMSProp_1", ...
class RMSPropOptimizer : public Optimizer {
 public:
  explicit RMSPropOptimizer(LearningRate learning_rate, double decay = 0.9, double momentum = 0.0,
                            double epsilon = 1e-10, bool centered = false, const std::string& name = "RMSProp");
  /// A name where `centered` goes would convert to true: refused at compile time.
  RMSPropOptimizer(LearningRate, double, double, double, const char*, const std::string& = "") = delete;

 private:
  std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) override;
  double decay_, momentum_, eps_;
  bool centered_;
};

/// Adagrad as TF1's ApplyAdagrad computes it: accum += grad^2;
/// var -= learning_rate * grad / sqrt(accum). One slot, "accumulator"
/// ("w/Adagrad"), starting at initial_accumulator_value, which must be positive
/// (ValueError otherwise, as TF).
class AdagradOptimizer : public Optimizer {
 public:
  explicit AdagradOptimizer(LearningRate learning_rate, double initial_accumulator_value = 0.1,
                            const std::string& name = "Adagrad");

 private:
  std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) override;
  double init_;
};

// ---- moving averages --------------------------------------------------------

/// Shadow copies that follow variables by an exponential moving average
/// (tf.train.ExponentialMovingAverage). apply() makes for each variable a
/// non-trainable shadow "<var>/<name>" starting at the variable's initial
/// value (drawn once in the run that initializes both) and returns one op,
/// named `name`, that runs shadow -= (shadow - var) * (1 - decay) for each.
/// With num_updates (a 0-d number tensor or variable, e.g. the global step)
/// the decay is min(decay, (1 + n) / (10 + n)), as TF. Build apply() under
/// `control_dependencies({train_op})` to average the updated values.
class ExponentialMovingAverage {
 public:
  explicit ExponentialMovingAverage(double decay, const std::string& name = "ExponentialMovingAverage");
  ExponentialMovingAverage(double decay, const Tensor& num_updates,
                           const std::string& name = "ExponentialMovingAverage");
  /// Averages `var_list` (default: every trainable variable of the default
  /// graph), adding them to GraphKeys::MOVING_AVERAGE_VARIABLES. DTypeError for
  /// a variable that is not floating, ValueError for one already averaged.
  Operation apply(const std::vector<Variable>& var_list = {});
  /// The shadow of `var`, or an undefined Variable when it is not averaged (TF's None).
  Variable average(const Variable& var) const;
  /// "<var>/<name>": the shadow's name, also in a graph built again for evaluation.
  std::string average_name(const Variable& var) const;
  /// For a Saver that loads the averages into the model's variables: each
  /// variable of `moving_avg_variables` (default: the default graph's trainable
  /// variables and MOVING_AVERAGE_VARIABLES) under average_name(var), every
  /// other variable of the graph under its own name (TF's variables_to_restore).
  std::map<std::string, Variable> variables_to_restore(const std::vector<Variable>& moving_avg_variables = {}) const;
  const std::string& name() const { return name_; }

 private:
  double decay_;
  Tensor num_updates_;
  std::string name_;
  std::vector<std::pair<Variable, Variable>> averages_;  // (var, shadow)
};

// ---- global step -----------------------------------------------------------

/// The default graph's global step (tf.train.get_global_step): its variable
/// named "global_step", or an undefined Variable when it has none. DTypeError
/// when that variable is not an integer, ShapeError when it is not 0-d,
/// ValueError when "global_step" names a node that is not a variable.
Variable get_global_step();
/// The same in `graph`.
Variable get_global_step(const Graph& graph);
/// get_global_step(), made when missing: an int64 0-d non-trainable variable
/// "global_step" initialized to 0 (one per graph).
Variable get_or_create_global_step();
/// The same in `graph`.
Variable get_or_create_global_step(const Graph& graph);

// ---- learning rate schedules --------------------------------------------------

/// learning_rate * decay_rate ^ (global_step / decay_steps), the exponent
/// floored when `staircase` (tf.train.exponential_decay). Computed in
/// learning_rate's dtype, float32 for a number (TF converts a Python float so),
/// float32 or float64 for a tensor; global_step (a 0-d tensor or variable,
/// read on every run, or a number) and the constants are cast to it. The node
/// is named `name` ("ExponentialDecay" by default). decay_steps must be positive.
Tensor exponential_decay(const Value& learning_rate, const Value& global_step, double decay_steps,
                         double decay_rate, bool staircase = false, const std::string& name = "");
/// The same with a global step variable; ValueError for an undefined one (TF's
/// "global_step is required").
Tensor exponential_decay(const Value& learning_rate, const Variable& global_step, double decay_steps,
                         double decay_rate, bool staircase = false, const std::string& name = "");

/// values[0] while x <= boundaries[0], values[i] while boundaries[i-1] < x <=
/// boundaries[i], values.back() once x > boundaries.back()
/// (tf.train.piecewise_constant). x is 0-d; one value more than boundaries.
/// Numbers become tensors as TF converts Python numbers (whole numbers int32,
/// fractions float32); boundaries must have x's dtype (int32 widens to int64
/// for an int64 x) and, given as numbers, increase strictly; values share one
/// dtype, the result's. The node is named `name` ("PiecewiseConstant" by default).
Tensor piecewise_constant(const Value& x, const std::vector<Value>& boundaries, const std::vector<Value>& values,
                          const std::string& name = "");
/// The same with C++ vectors of numbers.
template <class B, class V>
  requires(std::is_arithmetic_v<B> && std::is_arithmetic_v<V>)
Tensor piecewise_constant(const Value& x, const std::vector<B>& boundaries, const std::vector<V>& values,
                          const std::string& name = "") {
  return piecewise_constant(x, std::vector<Value>(boundaries.begin(), boundaries.end()),
                            std::vector<Value>(values.begin(), values.end()), name);
}

// ---- checkpoints ----------------------------------------------------------------

/// The path of the newest checkpoint that the state file "checkpoint" in
/// `checkpoint_dir` names (written by Saver::save; format in
/// capture/compat/v1/checkpoint.md), or "" when there is no state file or the
/// checkpoint it names is gone (tf.train.latest_checkpoint). A malformed state
/// file raises ValueError naming it.
std::string latest_checkpoint(const std::string& checkpoint_dir);

}  // namespace train
}  // namespace ember::compat::v1
