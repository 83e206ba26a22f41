#pragma once
// Derivative rules: one per op, keyed by OpId, written with ember ops so that
// the same rule runs eagerly (GradientTape), is recorded by a trace (capture)
// and builds nodes in graph mode (the TF1 shim's tf::gradients).
//
// The rules live next to the op families they differentiate:
//   lib/ops/elementwise.def -> lib/autograd/elementwise_rules.cpp
//   lib/ops/reduce.def      -> lib/autograd/reduce_rules.cpp
//   lib/ops/structural.def  -> lib/autograd/structural_rules.cpp
// A registry test fails when an op has neither a rule nor a non-differentiable mark.
#include <cstdint>

#include <ember/creation.h>
#include <ember/ops.h>

#include "dispatch/schema.h"

namespace ember::autograd {

/// What a rule sees of one op call.
struct GradCtx {
  dispatch::OpId op;
  const dispatch::Attrs& attrs;
  dispatch::Inputs in;  ///< the inputs as the op got them (wrapped C++ numbers included)
  const Tensor& out;    ///< the op's result
  uint64_t needs = 0;   ///< bit i: input i wants a gradient
  bool need(std::size_t i) const { return i < 64 && ((needs >> i) & 1u); }
};

/// Writes d(loss)/d(input i) into gx[i] for each needed input, given g = d(loss)/d(out).
/// A rule may leave the gradient in the broadcast shape or the result dtype:
/// the engine sums it over broadcast dims and casts it to the input's dtype.
/// An undefined gx[i] means "no contribution".
using RuleFn = void (*)(const GradCtx& c, const Tensor& g, Tensor* gx);

/// Which saved values a rule reads (shapes and dtypes are always available):
/// an in-place write into one of them before the gradient is taken is an error.
enum Uses : uint8_t {
  kUsesNothing = 0,
  kUsesIn0 = 1,
  kUsesIn1 = 2,
  kUsesIn2 = 4,
  kUsesInputs = 0x7f,
  kUsesOut = 0x80,
};

struct Rule {
  RuleFn fn = nullptr;
  uint8_t uses = kUsesNothing;
  bool declared = false;         ///< a rule or a non-differentiable mark was given
  const char* why_not = nullptr; ///< set for ops without a derivative
  bool differentiable() const { return fn != nullptr; }
};

class RuleTable {
 public:
  void set(dispatch::OpId op, uint8_t uses, RuleFn fn);
  /// Marks an op as having no derivative (comparisons, argmax, integer ops, creation).
  void not_differentiable(dispatch::OpId op, const char* why);
  const Rule& get(dispatch::OpId op) const { return rules_[dispatch::op_index(op)]; }

 private:
  Rule rules_[dispatch::kNumOps];
};

/// The rule of `op` (the table is built once, by the register_* functions below).
const Rule& rule(dispatch::OpId op);

void register_elementwise_rules(RuleTable& t);
void register_reduce_rules(RuleTable& t);
void register_structural_rules(RuleTable& t);

/// Sums `g` over the dims that broadcasting added or expanded to reach g's shape from `shape`.
Tensor sum_to(const Tensor& g, const Shape& shape);

// Note [Shapes in graph mode]: while ops build graph nodes (the TF1 shim), a
// dim the graph does not know (-1) holds a stand-in size, so a rule must not
// turn a shape into a value (a count, a fill, an expand target). These helpers
// (and zeros_like, ones_like, full_like, which build from a graph tensor
// itself) take what they need from the tensors in graph mode and stay free
// views/numbers eagerly.
/// True while ops build graph nodes instead of running.
bool graph_mode();
/// `g` (broadcastable to x) broadcast to x's shape.
Tensor broadcast_like(const Tensor& g, const Tensor& x);
/// Zeros of g's dtype shaped like `like` but for dim d, which has size k.
Tensor zeros_along(const Tensor& like, int64_t d, int64_t k, DType dtype);
/// `g` reshaped to x's shape (in graph mode the shape the run gives x, unknown
/// dims included; Recorder::reshape_like).
Tensor reshape_like(const Tensor& g, const Tensor& x);
/// How many elements of x each reduction result over `axes` combines, as a
/// tensor that broadcasts against x (a 0-d number eagerly).
Tensor reduced_count(const Tensor& x, const Axes& axes);

}  // namespace ember::autograd
