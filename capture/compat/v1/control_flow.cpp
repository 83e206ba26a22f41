// tf.cond for TF1 graphs.
//
// Note [Assigns in a cond branch]: a cond here runs both branches and selects
// the taken one's outputs (where(pred, t, f)), so the graph stays one
// dataflow plan that the executor replays and fuses. What TF's lazy branches
// give beyond values is kept: an assign made inside a branch (the batch-norm
// pattern, a moving mean updated only in training) is guarded by the
// branch's condition (pred, or !pred, and'ed with the enclosing branch's
// guard) and writes the value the variable had before where the guard is
// false (the session lowers it as where(guard, new, old)). What differs from
// TF: the untaken branch's ops run too (their cost, their random draws, and an
// error raised there fails the run; a placeholder made inside a branch must
// be fed even in runs that do not take it), and a gradient through an
// untaken branch that computes inf or NaN (log of 0) gives NaN, as any
// where() does.
#include <fmt/format.h>

#include <ember/compat/v1.h>
#include <ember/ember.h>

#include "compat/v1/state.h"

namespace ember::compat::v1 {

using detail::ScopeRecorder;

namespace {

// Builds one branch with `guard` as the guard of the assigns it makes.
template <class F>
auto in_branch(ScopeRecorder& sc, const Tensor& guard, F&& fn) {
  struct Restore {
    ScopeRecorder& sc;
    int saved;
    ~Restore() { sc.guard = saved; }
  } restore{sc, sc.guard};
  {
    std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
    sc.guard = sc.node_of(guard, "cond");
  }
  return fn();
}

void check_pred(const Tensor& pred) {
  if (!pred.defined()) throw ValueError("cond: pred is an undefined tensor");
  const Shape s = static_shape(pred);
  if (pred.dtype() != DType::bool_ || !s.empty())
    throw ValueError(fmt::format("cond: pred must be a 0-d bool tensor, got {} {}", dtype_name(pred.dtype()),
                                 shape_str(s)));
}

}  // namespace

std::vector<Tensor> cond(const Tensor& pred, const std::function<std::vector<Tensor>()>& true_fn,
                         const std::function<std::vector<Tensor>()>& false_fn, const std::string& name) {
  check_pred(pred);
  ScopeRecorder* sc = detail::current_scope();
  if (!sc) return pred.item<bool>() ? true_fn() : false_fn();  // eager: only the taken branch runs
  auto scope = NameScope(name.empty() ? "cond" : name);
  // The guards of this cond's branches, within the enclosing branch's (nested conds).
  Tensor outer;
  if (sc->guard >= 0) outer = detail::symbolic(sc->graph(), sc->guard);
  const Tensor not_pred = v1::logical_not(pred);
  const Tensor guard_t = outer.defined() ? v1::logical_and(outer, pred) : pred;
  const Tensor guard_f = outer.defined() ? v1::logical_and(outer, not_pred) : not_pred;
  const std::vector<Tensor> t = in_branch(*sc, guard_t, true_fn);
  const std::vector<Tensor> f = in_branch(*sc, guard_f, false_fn);
  if (t.size() != f.size())
    throw ValueError(fmt::format("cond: true_fn returned {} tensors and false_fn {}; they must return as many",
                                 t.size(), f.size()));
  std::vector<Tensor> out;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (!t[i].defined() || !f[i].defined())
      throw ValueError(fmt::format("cond: output {} of {} is an undefined tensor", i,
                                   t[i].defined() ? "false_fn" : "true_fn"));
    const Shape ts = static_shape(t[i]), fs = static_shape(f[i]);
    if (t[i].dtype() != f[i].dtype() || !detail::shapes_compatible(ts, fs))
      throw ValueError(fmt::format("cond: output {} is {} {} from true_fn but {} {} from false_fn; the branches "
                                   "must agree in dtype and shape",
                                   i, dtype_name(t[i].dtype()), shape_str(ts), dtype_name(f[i].dtype()),
                                   shape_str(fs)));
    out.push_back(v1::where(pred, t[i], f[i]));
  }
  return out;
}

Tensor cond(const Tensor& pred, const std::function<Tensor()>& true_fn, const std::function<Tensor()>& false_fn,
            const std::string& name) {
  return cond(
      pred, [&] { return std::vector<Tensor>{true_fn()}; }, [&] { return std::vector<Tensor>{false_fn()}; }, name)
      .at(0);
}

}  // namespace ember::compat::v1
