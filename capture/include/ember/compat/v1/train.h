#pragma once
// Gradients and optimizers for TF1 graphs (included by ember/compat/v1.h):
//
//   auto train_op = tf::train::GradientDescentOptimizer(0.1).minimize(loss);
//   sess.run(tf::global_variables_initializer());   // after minimize: it made slots
//   for (...) sess.run(train_op, {{x, xb}, {y, yb}});
//
// The gradient nodes come from the same derivative rules as em::GradientTape
// (lib/autograd/), built in graph mode.
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
  /// compute_gradients then apply_gradients.
  Operation minimize(const Tensor& loss, const std::vector<Variable>& var_list = {},
                     const std::string& name = "");
  /// The slot variable `slot` ("m", "v", "momentum") made for `var`; ValueError when none.
  Variable get_slot(const Variable& var, const std::string& slot) const;
  /// Names of this optimizer's slots.
  std::vector<std::string> get_slot_names() const;

 protected:
  explicit Optimizer(std::string name) : name_(std::move(name)) {}
  /// Builds the update of one variable; returns the nodes to run (assign ops).
  virtual std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) = 0;
  /// Builds updates that run once per step after all variables (Adam's beta powers).
  virtual std::vector<Tensor> finish() { return {}; }
  /// A zero-initialized slot for `var` (created once).
  Variable slot(const Variable& var, const std::string& slot_name);
  std::string name_;

 private:
  struct Slot {
    Variable var;
    std::string name;
    Variable slot;
  };
  std::vector<Slot> slots_;
};

/// var -= learning_rate * grad.
class GradientDescentOptimizer : public Optimizer {
 public:
  explicit GradientDescentOptimizer(double learning_rate, const std::string& name = "GradientDescent");

 private:
  std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) override;
  double lr_;
};

/// accum = momentum * accum + grad; var -= learning_rate * accum
/// (Nesterov: var -= learning_rate * (grad + momentum * accum)).
class MomentumOptimizer : public Optimizer {
 public:
  MomentumOptimizer(double learning_rate, double momentum, const std::string& name = "Momentum",
                    bool use_nesterov = false);

 private:
  std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) override;
  double lr_, momentum_;
  bool nesterov_;
};

/// Adam (Kingma & Ba) as TF1 computes it: m, v slots per variable and
/// beta1_power / beta2_power variables; lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t).
class AdamOptimizer : public Optimizer {
 public:
  explicit AdamOptimizer(double learning_rate = 0.001, double beta1 = 0.9, double beta2 = 0.999,
                         double epsilon = 1e-8, const std::string& name = "Adam");

 private:
  std::vector<Tensor> apply_dense(const Tensor& grad, const Variable& var) override;
  std::vector<Tensor> finish() override;
  void make_powers(const Variable& first);
  double lr_, beta1_, beta2_, eps_;
  Variable beta1_power_, beta2_power_;
};

}  // namespace train
}  // namespace ember::compat::v1
