// tf.cond and tf.while_loop for TF1 graphs.
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
// What differs from TF: an op made outside the cond that only the untaken
// branch reads does not run either (TF runs it, as it feeds the cond's
// Switch). A phase applies its writes before the rest of the run, so a read
// later in the run sees the assign_add a pred made (Note [Variables within a
// run] would give the value the run started with; TF leaves the order of
// such reads open), and a run that fails after a phase keeps that phase's
// writes (TF also applies writes as its ops run). Values passed between
// phases go through the host.
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
//
// Note [While loops]: tf.while_loop(cond, body, loop_vars) builds cond and
// body once, on loop_var nodes standing for the variables (Node::loop marks
// what they make), and returns one loop_exit node per variable. A run that
// needs an exit runs the loop as a phase does a pred (Note [Lazy cond]):
// first what the loop reads from outside it (the variables' first values,
// and the values its nodes read from outside, LoopInfo::captured) is computed
// once; then, on the host, each iteration runs cond's plan and, while it
// gives true, body's plan, both fed the variables and the captured values
// (constants and variables are read in each iteration, so an assign in the
// body is seen by the next one); the exits' values are fed to the rest of
// the run. The control_dependencies around the while_loop, and operations
// outside the loop that its body waits for, run once, before the loop (TF's
// Enter). Iteration plans are cached like any plan, one per shape the
// variables take, until the session closes (a variable that grows by one
// each iteration leaves a plan per length). A variable keeps its shape
// unless shape_invariants has -1 there; each iteration's values are checked.
// Fetching or feeding a tensor made inside the loop is refused (TF raises
// too). Not supported: gradients through a loop (tf::gradients raises), a
// loop in a capture::Graph (to_capture raises), parallel_iterations
// (iterations run one after another).
//
// What differs from TF: with maximum_iterations, TF evaluates cond once
// more than the iterations it allows (its limit is and'ed with cond); here
// cond is not evaluated once the limit is reached, which shows only when
// cond has side effects. A random op made inside cond and read by body
// draws again in body's plan (TF: one value per iteration). Each iteration
// applies its writes when it ends, so a run that fails or whose session
// closes in a later iteration keeps them.

#include <algorithm>
#include <utility>

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

// "a/while" for the name scope "a/while/", as TF names the cond or loop.
std::string scope_name(const NameScope& scope) {
  std::string n = scope.name();
  if (!n.empty() && n.back() == '/') n.pop_back();
  return n;
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
  const auto& g = sc->graph();
  // Graph tensors once, so that an eager pred or output is one constant node
  // (the merge check below compares node ids).
  auto node = [&](const Tensor& t) {
    std::lock_guard<std::recursive_mutex> lk(g->mu);
    return detail::symbolic(g, sc->node_of(t, "cond"));
  };
  const Tensor p = node(pred);
  // The guards of this cond's branches, within the enclosing branch's (nested conds).
  Tensor outer;
  if (sc->guard >= 0) outer = detail::symbolic(g, sc->guard);
  const Tensor not_pred = v1::logical_not(p);
  const Tensor guard_t = outer.defined() ? v1::logical_and(outer, p) : p;
  const Tensor guard_f = outer.defined() ? v1::logical_and(outer, not_pred) : not_pred;
  int cond_id = 0;
  {
    std::lock_guard<std::recursive_mutex> lk(g->mu);
    cond_id = static_cast<int>(g->conds.size());
    g->conds.push_back({sc->node_of(p, "cond"), scope_name(scope)});
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
    const Tensor ti = node(t[i]), fi = node(f[i]);
    out.push_back(v1::where(p, ti, fi));
    // The where is the cond's merge when it selects between the branches'
    // outputs as they are; else (a node between) the cond runs both branches.
    std::lock_guard<std::recursive_mutex> lk(g->mu);
    const int m = sc->node_of(out.back(), "cond");
    detail::Node& mn = g->nodes[static_cast<std::size_t>(m)];
    if (mn.kind == detail::Kind::op && mn.op == dispatch::OpId::where &&
        mn.inputs == std::vector<int>{g->conds[static_cast<std::size_t>(cond_id)].pred, sc->node_of(ti, "cond"),
                                      sc->node_of(fi, "cond")})
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

namespace {

// Whether node `id` was made inside loop `loop` (at any depth).
bool in_loop(const detail::GraphState& g, int id, int loop) {
  for (int l = g.nodes[static_cast<std::size_t>(id)].loop; l >= 0; l = g.loops[static_cast<std::size_t>(l)].parent)
    if (l == loop) return true;
  return false;
}

}  // namespace

std::vector<Tensor> while_loop(const std::function<Tensor(const std::vector<Tensor>&)>& cond,
                               const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& body,
                               const std::vector<Tensor>& loop_vars, const std::vector<Shape>& shape_invariants,
                               int64_t maximum_iterations, const std::string& name) {
  const char* who = "while_loop";
  if (loop_vars.empty()) throw ValueError("while_loop: loop_vars is empty");
  for (std::size_t i = 0; i < loop_vars.size(); ++i)
    if (!loop_vars[i].defined()) throw ValueError(fmt::format("while_loop: loop variable {} is an undefined tensor", i));
  if (!shape_invariants.empty() && shape_invariants.size() != loop_vars.size())
    throw ValueError(fmt::format("while_loop: {} shape_invariants given for {} loop variables", shape_invariants.size(),
                                 loop_vars.size()));
  if (maximum_iterations < -1)
    throw ValueError(fmt::format("while_loop: maximum_iterations must be >= 0, or -1 for no limit (got {})",
                                 maximum_iterations));
  // The loop's outputs are checked against what came in: the count, dtypes and shapes.
  auto check_body = [&](const std::vector<Tensor>& out, const std::vector<Shape>& want) {
    if (out.size() != loop_vars.size())
      throw ValueError(fmt::format("while_loop: body returned {} tensors for {} loop variables", out.size(),
                                   loop_vars.size()));
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (!out[i].defined()) throw ValueError(fmt::format("while_loop: body output {} is an undefined tensor", i));
      const Shape s = static_shape(out[i]);
      if (out[i].dtype() != loop_vars[i].dtype() || !detail::shapes_compatible(s, want[i]))
        throw ValueError(fmt::format("while_loop: body output {} is {} {} but loop variable {} is {} {}{}", i,
                                     dtype_name(out[i].dtype()), shape_str(s), i, dtype_name(loop_vars[i].dtype()),
                                     shape_str(want[i]),
                                     out[i].dtype() == loop_vars[i].dtype()
                                         ? "; give shape_invariants (-1 for the dims that change) to let it change"
                                         : ""));
    }
  };
  auto check_pred = [&](const Tensor& pred) {
    if (!pred.defined()) throw ValueError("while_loop: cond returned an undefined tensor");
    const Shape s = static_shape(pred);
    if (pred.dtype() != DType::bool_ || !s.empty())
      throw ValueError(fmt::format("while_loop: cond must return a 0-d bool tensor, got {} {}",
                                   dtype_name(pred.dtype()), shape_str(s)));
  };
  std::vector<Shape> want;
  for (std::size_t i = 0; i < loop_vars.size(); ++i) {
    const Shape s = static_shape(loop_vars[i]);
    if (shape_invariants.empty()) {
      want.push_back(s);
      continue;
    }
    if (!detail::shapes_compatible(s, shape_invariants[i]))
      throw ValueError(fmt::format("while_loop: loop variable {} has shape {}, which shape_invariants[{}] {} does not "
                                   "admit",
                                   i, shape_str(s), i, shape_str(shape_invariants[i])));
    want.push_back(shape_invariants[i]);
  }
  ScopeRecorder* sc = detail::current_scope();
  if (!sc) {  // eager: a plain loop
    std::vector<Tensor> vars = loop_vars;
    for (int64_t it = 0; maximum_iterations < 0 || it < maximum_iterations; ++it) {
      const Tensor pred = cond(vars);
      check_pred(pred);
      if (!pred.item<bool>()) break;
      std::vector<Tensor> next = body(vars);
      check_body(next, want);  // an eager tensor's static shape is its shape
      vars = std::move(next);
    }
    return vars;
  }
  auto scope = NameScope(name.empty() ? "while" : name);
  const auto& g = sc->graph();
  int loop = 0;
  std::size_t first = 0;
  detail::LoopInfo info;
  {
    std::lock_guard<std::recursive_mutex> lk(g->mu);
    for (const Tensor& t : loop_vars) info.inits.push_back(sc->node_of(t, who));
    loop = static_cast<int>(g->loops.size());
    info.name = scope_name(scope);
    info.parent = sc->loop;
    info.shapes = want;
    info.maximum_iterations = maximum_iterations;
    g->loops.push_back(info);
    first = g->nodes.size();
  }
  // The body: its nodes belong to the loop; the scope's control inputs go to
  // the loop's outputs (as TF's apply to its Enter nodes), not to every
  // iteration's nodes.
  std::vector<Tensor> vars, out;
  Tensor pred;
  {
    struct Restore {
      ScopeRecorder& sc;
      int loop;
      std::vector<int> control;
      ~Restore() {
        sc.loop = loop;
        sc.control = std::move(control);
      }
    } restore{*sc, sc->loop, std::exchange(sc->control, {})};
    sc->loop = loop;
    {
      std::lock_guard<std::recursive_mutex> lk(g->mu);
      for (std::size_t i = 0; i < loop_vars.size(); ++i) {
        detail::Node n;
        n.kind = detail::Kind::loop_var;
        n.name = "loop_var";
        n.shape = want[i];
        n.dtype = loop_vars[i].dtype();
        vars.push_back(detail::symbolic(g, sc->add(std::move(n), who)));
      }
    }
    pred = cond(vars);
    check_pred(pred);
    out = body(vars);
    check_body(out, want);
  }
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  detail::LoopInfo& li = g->loops[static_cast<std::size_t>(loop)];
  for (const Tensor& v : vars) li.vars.push_back(sc->node_of(v, who));
  li.pred = sc->node_of(pred, who);
  for (const Tensor& t : out) li.outs.push_back(sc->node_of(t, who));
  // What the loop reads from outside: computed once, before it, and fed to
  // every iteration (constants and variables are read in each iteration).
  auto read_outside = [&](int id) {
    const detail::Node& n = g->nodes[static_cast<std::size_t>(id)];
    if (in_loop(*g, id, loop) || n.kind == detail::Kind::constant || n.kind == detail::Kind::variable ||
        !n.has_output)
      return;
    if (std::find(li.captured.begin(), li.captured.end(), id) == li.captured.end()) li.captured.push_back(id);
  };
  // An operation outside the loop that a node of the loop waits for runs
  // once, before the loop (as TF's Enter does): its edge moves to the exits.
  std::vector<int> before_loop;
  for (std::size_t id = first; id < g->nodes.size(); ++id) {
    if (!in_loop(*g, static_cast<int>(id), loop)) continue;
    detail::Node& n = g->nodes[id];
    std::erase_if(n.control, [&](int c) {
      if (in_loop(*g, c, loop) || g->nodes[static_cast<std::size_t>(c)].has_output) return false;
      if (std::find(before_loop.begin(), before_loop.end(), c) == before_loop.end()) before_loop.push_back(c);
      return true;
    });
    for (int in : n.inputs) read_outside(in);
    for (int c : n.control) read_outside(c);
    for (const auto& d : n.dims_of)
      if (d.first >= 0) read_outside(d.first);
  }
  read_outside(li.pred);
  for (int o : li.outs) read_outside(o);
  // The outputs: one node per loop variable, reading what the loop starts from.
  std::vector<int> ins = li.inits;
  ins.insert(ins.end(), li.captured.begin(), li.captured.end());
  std::vector<Tensor> exits;
  for (std::size_t i = 0; i < loop_vars.size(); ++i) {
    detail::Node e;
    e.kind = detail::Kind::loop_exit;
    e.name = "Exit";
    e.inputs = ins;
    e.shape = want[i];
    e.dtype = loop_vars[i].dtype();
    e.exit_of = loop;
    e.control = before_loop;  // sc.add appends the scope's control inputs
    const int id = sc->add(std::move(e), who);
    g->loops[static_cast<std::size_t>(loop)].exits.push_back(id);
    exits.push_back(detail::symbolic(g, id));
  }
  return exits;
}

}  // namespace ember::compat::v1
