#pragma once
// Variable scopes, get_variable, initializers and tf.layers.dense for TF1
// graphs (included by ember/compat/v1.h):
//
//   {
//     auto vs = tf::variable_scope("hidden");
//     auto w = tf::get_variable("w", {784, 256});     // "hidden/w", Glorot-uniform
//     auto b = tf::get_variable("b", {256}, em::float32, tf::zeros_initializer());
//   }
//   auto logits = tf::layers::dense(h, 10, nullptr, true, {}, tf::zeros_initializer(), {}, {}, true, "out");
//
// get_variable shares variables by name across scopes opened with reuse, as
// TF1's does; its messages are TF's.
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ember::compat::v1 {

/// Makes a variable's initial value from its shape and dtype (a graph tensor
/// for the random ones: drawn each time the initializer runs).
using Initializer = std::function<Tensor(const Shape& shape, DType dtype)>;

Initializer zeros_initializer();
Initializer ones_initializer();
Initializer constant_initializer(double value);
Initializer random_normal_initializer(double mean = 0.0, double stddev = 1.0);
/// Normal samples redrawn beyond 2 stddev (tf.truncated_normal_initializer).
Initializer truncated_normal_initializer(double mean = 0.0, double stddev = 1.0);
Initializer random_uniform_initializer(double minval = 0.0, double maxval = 1.0);
/// TF's fans: fan_in = shape[-2] * r, fan_out = shape[-1] * r with r the
/// product of the leading dims (a 1-d shape: both its size; 0-d: 1).
/// scale / n (n: fan_in, fan_out or their mean, per `mode`) is the variance of
/// samples from `distribution`: "truncated_normal" (the TF1 default),
/// "untruncated_normal" or "uniform" (tf.variance_scaling_initializer).
Initializer variance_scaling_initializer(double scale = 1.0, const std::string& mode = "fan_in",
                                         const std::string& distribution = "truncated_normal");
/// Uniform in +-sqrt(6 / (fan_in + fan_out)): get_variable's default for floats.
Initializer glorot_uniform_initializer();
/// Truncated normal with variance 2 / (fan_in + fan_out).
Initializer glorot_normal_initializer();

/// Maps weights to a 0-d loss for GraphKeys::REGULARIZATION_LOSSES
/// (get_variable's `regularizer`, dense's kernel_regularizer). An undefined
/// Tensor means no loss (TF's regularizers of scale 0 return None).
using Regularizer = std::function<Tensor(const Tensor& weights)>;

namespace contrib::layers {
/// scale * sum(|w|) (tf.contrib.layers.l1_regularizer), in w's dtype, named
/// "l1_regularizer" in the caller's name scope. scale 0: no loss; ValueError
/// for a negative scale (TF's message).
Regularizer l1_regularizer(double scale);
/// scale * sum(w^2) / 2, TF1's l2_loss (tf.contrib.layers.l2_regularizer;
/// Keras' l2 has no / 2). As l1_regularizer otherwise.
Regularizer l2_regularizer(double scale);
/// l1_regularizer(scale_l1)(w) + l2_regularizer(scale_l2)(w); a scale of 0 drops its part.
Regularizer l1_l2_regularizer(double scale_l1 = 1.0, double scale_l2 = 1.0);
/// The sum of regularizer(w) over `weights_list` (tf.contrib.layers.
/// apply_regularization), added to GraphKeys::REGULARIZATION_LOSSES; ValueError
/// for an empty list. Named "get_regularization_penalty" by default.
Tensor apply_regularization(const Regularizer& regularizer, const std::vector<Tensor>& weights_list,
                            const std::string& name = "");
}  // namespace contrib::layers

/// get_variable's sharing mode within a variable scope.
enum class Reuse {
  inherit,     ///< as the enclosing scope (the top level: create only)
  reuse,       ///< TF's reuse=True: only existing variables
  auto_reuse,  ///< TF's tf.AUTO_REUSE: existing ones, else new ones
};
inline constexpr Reuse AUTO_REUSE = Reuse::auto_reuse;

/// A variable scope (tf.variable_scope): get_variable names start with
/// "<scope>/" and it opens a name scope of the same name for the ops made
/// inside (which gets a suffix when reopened, "layer_1/", while variable
/// names do not). Nested scopes inherit reuse; `reuse = true` and AUTO_REUSE
/// let get_variable return the variables made before under the same names.
class VariableScope {
 public:
  VariableScope(const std::string& name, Reuse reuse);
  ~VariableScope();
  VariableScope(const VariableScope&) = delete;
  VariableScope& operator=(const VariableScope&) = delete;
  /// "layer1" (without the trailing '/').
  std::string name() const;

 private:
  void* scope_ = nullptr;
  std::string saved_prefix_, saved_names_, full_;
  Reuse saved_reuse_ = Reuse::inherit;
};
[[nodiscard]] inline VariableScope variable_scope(const std::string& name, bool reuse = false) {
  return VariableScope(name, reuse ? Reuse::reuse : Reuse::inherit);
}
[[nodiscard]] inline VariableScope variable_scope(const std::string& name, Reuse reuse) {
  return VariableScope(name, reuse);
}

/// The current variable scope of this thread's graph scope
/// (tf.get_variable_scope()); `reuse_variables()` turns reuse on until the
/// enclosing variable_scope ends (for the whole graph scope at the top level).
class CurrentVariableScope {
 public:
  std::string name() const;
  bool reuse() const;
  void reuse_variables() const;
};
CurrentVariableScope get_variable_scope();

/// The variable `<scope>/<name>` (tf.get_variable). A new one needs a fully
/// known shape; its initial value comes from `initializer` (default: Glorot
/// uniform for floats, zeros for integers and bool). An existing one (under
/// reuse) must have the shape and dtype asked for. Errors are TF1's
/// ("Variable a/w already exists, disallowed. Did you mean to set reuse=True
/// ..."). A new variable's `regularizer` loss, made in name scope
/// "<scope>/<name>/Regularizer/", goes to GraphKeys::REGULARIZATION_LOSSES.
Variable get_variable(const std::string& name, const Shape& shape, DType dtype = DType::float32,
                      const Initializer& initializer = {}, const Regularizer& regularizer = {},
                      bool trainable = true);

namespace layers {

/// An activation: any of tf::nn's (`tf::nn::relu`), a callable taking a
/// Tensor, or nullptr for none (linear).
class Activation {
 public:
  Activation() = default;
  Activation(std::nullptr_t) {}                                                      // NOLINT
  Activation(Tensor (*f)(const Tensor&, const std::string&)) : f_([f](const Tensor& t) { return f(t, ""); }) {}  // NOLINT
  template <class F>
    requires std::is_invocable_r_v<Tensor, F, const Tensor&>
  Activation(F f) : f_(std::move(f)) {}  // NOLINT
  explicit operator bool() const { return static_cast<bool>(f_); }
  Tensor operator()(const Tensor& t) const { return f_(t); }

 private:
  std::function<Tensor(const Tensor&)> f_;
};

/// activation(inputs @ kernel + bias) (tf.layers.dense): the variables
/// "<name>/kernel" [in, units] and "<name>/bias" [units] come from
/// get_variable in variable scope `name` (default "dense", "dense_1", ... per
/// graph); `reuse` shares them with an earlier layer of that name. inputs
/// have rank >= 2 and a known last dim; leading dims broadcast as in matmul.
/// The regularizers' losses go to GraphKeys::REGULARIZATION_LOSSES. The
/// arguments are TF's, in TF's order, without activity_regularizer and the
/// constraints.
Tensor dense(const Tensor& inputs, int64_t units, const Activation& activation = nullptr, bool use_bias = true,
             const Initializer& kernel_initializer = {}, const Initializer& bias_initializer = zeros_initializer(),
             const Regularizer& kernel_regularizer = {}, const Regularizer& bias_regularizer = {},
             bool trainable = true, const std::string& name = "", bool reuse = false);

/// Whether a layer runs in training mode: a C++ bool, fixed when the graph is
/// built, or a 0-d bool tensor (a placeholder_with_default), read in each run.
class Training {
 public:
  Training(bool on) : fixed_(on) {}                  // NOLINT
  Training(const Tensor& on) : tensor_(on) {}        // NOLINT
  bool is_tensor() const { return tensor_.defined(); }
  bool fixed() const { return fixed_; }
  const Tensor& tensor() const { return tensor_; }

 private:
  bool fixed_ = false;
  Tensor tensor_;
};

/// Zeroes each element with probability `rate` and scales the rest by
/// 1 / (1 - rate) when training, passes inputs through otherwise
/// (tf.layers.dropout; TF's noise_shape and seed are not taken). A training
/// tensor picks per run. 0 <= rate < 1.
Tensor dropout(const Tensor& inputs, double rate = 0.5, const Training& training = false,
               const std::string& name = "");

/// tf.layers.batch_normalization: (x - mean) / sqrt(variance + epsilon) *
/// gamma + beta along `axis`, with variables "<name>/gamma", "beta",
/// "moving_mean", "moving_variance" (default name "batch_normalization",
/// counted per variable scope). In training the batch's mean and (population)
/// variance normalize, and two ops moving_x -= (moving_x - batch_x) * (1 -
/// momentum) go to the GraphKeys::UPDATE_OPS collection, for the train op to
/// run after (`tf::control_dependencies(tf::get_collection(...))`); they
/// change nothing in runs where a training tensor is false. Otherwise the
/// moving statistics normalize. (TF's fused kernel for 4-d inputs keeps the
/// moving variance with Bessel's correction; this is TF's non-fused rule.)
Tensor batch_normalization(const Tensor& inputs, int64_t axis = -1, double momentum = 0.99, double epsilon = 1e-3,
                           bool center = true, bool scale = true, const Training& training = false,
                           bool trainable = true, const std::string& name = "", bool reuse = false);

}  // namespace layers

}  // namespace ember::compat::v1
