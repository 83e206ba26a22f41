// tf.cond for TF1 graphs.
//
// Note [Lazy cond]: as in TF, a session run computes only the branch its
// pred takes. cond() marks the nodes each branch function makes with the
// branch (Node::branch, nested branches point to their parent) and makes
// each output a where(pred, t, f) node marked as the cond's merge
// (Node::merge_of). A run whose fetches reach a merge first decides the
// conds: a pred that is fed or a constant is read at once; the others are
// computed by a smaller plan of their own (a phase), whose values the rest
// of the run is fed, so nothing computes twice (a random draw or an
// assign_add that the pred depends on happens once). Each decided cond's
// merge then lowers to its taken branch's output and the other branch is not
// in the plan: its ops do not run, its placeholders need no feed, its errors
// cannot fail the run. Plans are cached per decision, so a loop that feeds a
// `training` flag builds two plans once. See SessionState::run_plan.
//
// A branch is skipped only when nothing but its cond's merges needs it. When
// a run needs a node of the untaken branch by another path (tf::gradients'
// nodes read the forward values of both branches; a fetch of a tensor made
// inside the branch), that cond runs both branches and the where() selects.
// So a gradient through a cond computes both branches (an inf or NaN in the
// untaken one gives NaN, as any where() does), and fetching a tensor of the
// untaken branch gives its value where TF raises. Session::to_capture lowers
// every cond this way too (a capture::Graph has no control flow).
//
// Note [Assigns in a cond branch]: an assign made inside a branch carries
// the branch's guard (pred, or !pred, and'ed with the enclosing branch's
// guard) as an input. Where its branch is skipped or surely taken the guard
// is not read; where both branches run, the write keeps the value the
// variable had where the guard is false (the session lowers it as
// where(guard, new, old)), so it writes only when its branch is taken.
#include <fmt/format.h>

#include <ember/compat/v1.h>
#include <ember/ember.h>

#include "compat/v1/state.h"

namespace ember::compat::v1 {

using detail::ScopeRecorder;

namespace {

// Builds one branch (`branch`, into GraphState::branches) with `guard` as
// the guard of the assigns it makes.
template <class F>
auto in_branch(ScopeRecorder& sc, int branch, const Tensor& guard, F&& fn) {
  struct Restore {
    ScopeRecorder& sc;
    int guard, branch;
    ~Restore() {
      sc.guard = guard;
      sc.branch = branch;
    }
  } restore{sc, sc.guard, sc.branch};
  {
    std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
    sc.guard = sc.node_of(guard, "cond");
  }
  sc.branch = branch;
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
  const auto& g = sc->graph();
  int cond_id = 0;
  {
    std::lock_guard<std::recursive_mutex> lk(g->mu);
    cond_id = static_cast<int>(g->conds.size());
    g->conds.push_back({sc->node_of(pred, "cond"), scope.name()});
    g->branches.push_back({cond_id, true, sc->branch});
    g->branches.push_back({cond_id, false, sc->branch});
  }
  const std::vector<Tensor> t = in_branch(*sc, 2 * cond_id, guard_t, true_fn);
  const std::vector<Tensor> f = in_branch(*sc, 2 * cond_id + 1, guard_f, false_fn);
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
    // The where is the cond's merge when it selects between the branches'
    // outputs as they are; else (a node between) the cond runs both branches.
    std::lock_guard<std::recursive_mutex> lk(g->mu);
    const int m = sc->node_of(out.back(), "cond");
    detail::Node& mn = g->nodes[static_cast<std::size_t>(m)];
    if (mn.kind == detail::Kind::op && mn.op == dispatch::OpId::where &&
        mn.inputs == std::vector<int>{g->conds[static_cast<std::size_t>(cond_id)].pred, sc->node_of(t[i], "cond"),
                                      sc->node_of(f[i], "cond")})
      mn.merge_of = cond_id;
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
