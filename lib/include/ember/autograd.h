#pragma once
// Automatic differentiation (reverse mode). Every differentiable op has one
// derivative rule written with ember ops (lib/autograd/), so gradients run
// eagerly here, are recorded by capture::trace, and build graph nodes in the
// TF1 shim (tf::gradients). Recording costs nothing when no tape is active.
//
//   em::Variable w(em::randn({3, 1}));
//   em::GradientTape tape;                     // records from here on
//   em::Tensor d = em::matmul(x, w.value()) - y;
//   em::Tensor loss = em::mean(d * d);
//   auto g = tape.gradient(loss, {w});         // d loss / d w (a list, as in TF)
//   w.assign_sub(g[0] * 0.1f);
#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <ember/tensor.h>
#include <ember/variable.h>

namespace ember {

namespace detail {
class Tape;
}

/// Records the ops run on this thread while it is alive (TF2's tf.GradientTape).
/// Watched tensors and every trainable Variable read while it records are
/// sources; `gradient` differentiates a recorded target with respect to them.
/// Tapes nest: a tape records the gradient computation of an inner tape, which
/// gives second derivatives.
class GradientTape {
 public:
  /// Starts recording on this thread. A persistent tape allows several `gradient`
  /// calls; a non-persistent one frees what it saved at the first and stops recording.
  /// With `watch_accessed_variables`, trainable Variables are watched when read.
  explicit GradientTape(bool persistent = false, bool watch_accessed_variables = true);
  /// Stops recording. Tapes must end in the reverse order of their creation (C++ scopes do).
  ~GradientTape();
  GradientTape(const GradientTape&) = delete;
  GradientTape& operator=(const GradientTape&) = delete;

  /// Makes `t` (a floating-point tensor) a source: gradients can be taken with respect to it.
  void watch(const Tensor& t);
  /// Watches the variable's current value (also when it is not trainable).
  void watch(const Variable& v);

  /// d target / d source (target is summed first when it has several elements,
  /// i.e. the gradient of sum(target)). A source the target does not depend on gets zeros.
  /// A template, so that a braced list, `gradient(loss, {x})`, means a list as
  /// TF's `tape.gradient(loss, [x])` does and gives a vector (as a Tensor
  /// overload it won, and `[0]` then indexed the gradient's first element).
  template <class S>
    requires(std::is_same_v<S, Tensor> || std::is_same_v<S, Variable>)
  Tensor gradient(const Tensor& target, const S& source) {
    return gradient(target, std::vector<S>{source}).at(0);
  }
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<Tensor>& sources);
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<Variable>& sources);
  /// Vector-Jacobian product: `output_gradient` (shaped like target) instead of ones.
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<Tensor>& sources,
                               const Tensor& output_gradient);
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<Variable>& sources,
                               const Tensor& output_gradient);

  /// The variables this tape watched, in the order it first saw them.
  std::vector<Variable> watched_variables() const;
  /// Stops (or resumes) recording without ending the tape (tf's stop_recording).
  void pause();
  void resume();
  bool persistent() const;

 private:
  std::unique_ptr<detail::Tape> tape_;
};

namespace detail {
template <class R>
Tensor value_of_result(const R& r) {
  if constexpr (std::is_same_v<std::decay_t<R>, Tensor>)
    return r;
  else
    return std::get<0>(r);  // (loss, aux...) tuples: the first element is differentiated
}
}  // namespace detail

/// JAX/MLX-style transform: grad(f)(x, rest...) is d f(x, rest...) / d x, where
/// f returns a Tensor (summed if it has several elements). Variables read by f
/// are not sources here (use GradientTape for those).
template <class F>
auto grad(F fn) {
  return [fn = std::move(fn)](const Tensor& x, const auto&... rest) -> Tensor {
    GradientTape tape(false, false);
    tape.watch(x);
    Tensor y = detail::value_of_result(fn(x, rest...));
    return tape.gradient(y, x);
  };
}

/// grad with respect to several positional Tensor arguments: argnums {0, 2} gives
/// the gradients for the 1st and 3rd arguments, in that order.
template <class F>
auto grad(F fn, std::vector<int> argnums) {
  return [fn = std::move(fn), argnums](const auto&... args) -> std::vector<Tensor> {
    GradientTape tape(false, false);
    std::vector<Tensor> sources;
    std::size_t i = 0;
    auto pick = [&](const auto& a) {
      if constexpr (std::is_same_v<std::decay_t<decltype(a)>, Tensor>) {
        for (int n : argnums)
          if (static_cast<std::size_t>(n) == i) sources.push_back(a);
      }
      ++i;
    };
    (pick(args), ...);
    if (sources.size() != argnums.size())
      throw ValueError("grad: every argnum must name a Tensor argument");
    for (const Tensor& s : sources) tape.watch(s);
    Tensor y = detail::value_of_result(fn(args...));
    return tape.gradient(y, sources);
  };
}

/// value_and_grad(f)(x, rest...) returns {f(x, rest...), d f / d x} from one forward pass.
template <class F>
auto value_and_grad(F fn) {
  return [fn = std::move(fn)](const Tensor& x, const auto&... rest) {
    GradientTape tape(false, false);
    tape.watch(x);
    auto r = fn(x, rest...);
    Tensor g = tape.gradient(detail::value_of_result(r), x);
    return std::pair<decltype(r), Tensor>(std::move(r), std::move(g));
  };
}

/// value_and_grad with respect to the trainable Variables `vars` (a model's parameters):
/// value_and_grad(f, vars)(args...) returns {f(args...), [d f / d v for v in vars]}.
template <class F>
auto value_and_grad(F fn, std::vector<Variable> vars) {
  return [fn = std::move(fn), vars = std::move(vars)](const auto&... args) {
    GradientTape tape(false, false);
    for (const Variable& v : vars) tape.watch(v);
    auto r = fn(args...);
    std::vector<Tensor> g = tape.gradient(detail::value_of_result(r), vars);
    return std::pair<decltype(r), std::vector<Tensor>>(std::move(r), std::move(g));
  };
}

}  // namespace ember
