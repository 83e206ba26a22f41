#pragma once
// The shim's graph: a list of named nodes built in graph mode. A Session
// lowers the part of it that a run needs to a capture GraphIR (the same IR a
// trace makes) and runs it on the capture executor.
#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ember/compat/v1.h>

#include "dispatch/attrs.h"
#include "dispatch/op_id.h"
#include "dispatch/recorder.h"

namespace ember::compat::v1::detail {

enum class Kind : uint8_t {
  placeholder,  // fed; with_default: its input unless fed
  constant,
  variable,     // a variable's value (session-owned, or an ember::Variable read by reference)
  op,           // a registered op
  identity,     // its input's value
  assign,       // writes input 0 (conformed to the variable's type) into variable `var`
  no_op,        // nothing (control inputs only)
  loop_var,     // a tf.while_loop variable inside the loop: fed each iteration (Note [While loops])
  loop_exit,    // a tf.while_loop output: inputs are the loop's inits then what it reads from outside
};

/// Note [Unknown dims]: a -1 dim is given a stand-in size while the graph is
/// built, so that the ops' own shape rules run unchanged. The rule runs again
/// with a second stand-in; output dims that differ are unknown (-1). A Session
/// infers every shape again from the concrete feeds. Where a rule ties an
/// unknown dim to a known size of another input (broadcasting against a size
/// other than 1, matmul's shared dim, concat's other dims, a reshape to a
/// known shape), the unknown dim takes that size while the rule runs, as TF's
/// shape inference unifies them: [-1, -1] @ [5, 3] is [-1, 3], and
/// [-1, -1] + [5] is [-1, 5]. The run checks the real size. Messages of a rule
/// that fails show the stand-in as -1. A reshape's target dims made from
/// stand-ins are remade from the real input shape, one per group of dims whose
/// running products agree (plan_reshape), so unsqueeze, flatten and stack of
/// tensors with several unknown dims keep each in place. A target's -1 over
/// unknown dims is kept and sized by the session (free_dim_at_run). A target
/// that is another tensor's shape in the run (a gradient's reshape back, an
/// in-place write into unknown dims) is read by the session from that node's
/// lowered shape (Node::dims_of). A size read from an unknown dim as a number
/// (x.shape() as a target) has no such link and is refused (check_no_stand_in).
inline constexpr int64_t kStandIn = 720720;       // divisible by 1..16, so reshapes of it work
inline constexpr int64_t kStandIn2 = 2 * 720720;

/// A reshape target dim made from stand-in sizes: the product of input dims
/// [in_begin, in_end) divided by the other target dims in [out_begin, out_end)
/// (a group whose running products agree, as in a view). Remade from the real
/// input shape when a Session lowers the node.
struct ReshapeDerived {
  int dim = 0;
  int in_begin = 0, in_end = 0, out_begin = 0, out_end = 0;
};
/// Which target dims of a reshape of `input` (stand-in sizes where
/// `unknown[i]`) to `target` derive from unknown input dims.
std::vector<ReshapeDerived> plan_reshape(const Shape& input, const std::vector<bool>& unknown, const Shape& target);
/// Sizes a reshape target's -1 from the input's element count: false (the
/// target untouched) when the other sizes cannot fill `numel`; true without a -1.
bool size_free_dim(Shape& target, int64_t numel);
/// Remakes the derived dims of `target` for an input of shape `input`;
/// ShapeError when an element count does not divide.
void remake_reshape(const std::vector<ReshapeDerived>& plan, const Shape& input, Shape& target);

struct Node {
  Kind kind = Kind::op;
  std::string name;
  dispatch::OpId op = dispatch::OpId::copy;
  dispatch::Attrs attrs;
  std::vector<int> inputs;
  std::vector<int> control;
  Shape shape;  // static shape, -1 for unknown dims
  DType dtype = DType::float32;
  bool has_output = true;
  Tensor value;                                       // constant
  int var = -1;                                       // variable / assign: index into vars
  dispatch::OpId assign_kind = dispatch::OpId::copy;  // assign: copy, add or sub
  bool with_default = false;                          // placeholder_with_default
  bool guarded = false;  // assign made in a cond branch: inputs[1] is the bool guard (Note [Assigns in a cond branch])
  std::vector<ReshapeDerived> reshape_derived;  // reshape of an input with unknown dims
  // Shape attribute entries known only in the run: entry i of attrs.ints is
  // dim `second` of node `first` as lowered (first < 0: attrs.ints[i] as it is).
  std::vector<std::pair<int, int>> dims_of;
  std::string device;         // "" (session default), "/cpu:0", "/gpu:0"
  int branch = -1;    // the innermost tf.cond branch it was made in: index into GraphState::branches
  int merge_of = -1;  // an output of tf.cond (where(pred, t, f) over its branches' outputs): index into conds
  int loop = -1;        // the innermost tf.while_loop it was made in: index into GraphState::loops
  int exit_of = -1;     // loop_exit: its loop
};

/// A tf.cond branch (Note [Lazy cond] in capture/compat/v1/control_flow.cpp).
struct CondBranch {
  int cond = -1;     // index into GraphState::conds
  bool side = true;  // true_fn's branch or false_fn's
  int parent = -1;   // the enclosing branch, -1 at the top
};
struct CondInfo {
  int pred = -1;  // the 0-d bool node
  std::string name;
};
/// A tf.while_loop (Note [While loops] in capture/compat/v1/control_flow.cpp).
struct LoopInfo {
  std::string name;
  int parent = -1;              // the enclosing loop, -1 at the top
  std::vector<int> inits;       // the loop variables' first values (outside the loop)
  std::vector<int> vars;        // the loop_var nodes cond and body read
  int pred = -1;                // cond's 0-d bool output
  std::vector<int> outs;        // body's outputs, the variables' next values
  std::vector<int> captured;    // nodes outside the loop that it reads, computed once before it
  std::vector<int> exits;       // its loop_exit nodes, one per variable
  std::vector<Shape> shapes;    // the variables' shape invariants (-1: may change)
  int64_t maximum_iterations = -1;
};

struct VarInfo {
  std::string name;
  Shape shape;
  DType dtype = DType::float32;
  int node = -1;         // the variable node
  int initializer = -1;  // its assign node
  bool trainable = true;
  std::shared_ptr<ember::Variable::State> external;  // an ember::Variable read by reference
};

struct GraphState {
  mutable std::recursive_mutex mu;  // recursive: error messages describe nodes while it is held
  uint64_t id = 0;
  std::deque<Node> nodes;  // deque: references stay valid while nodes are added
  std::vector<VarInfo> vars;
  std::unordered_map<std::string, int> by_name;
  std::unordered_map<std::string, int> name_counts;
  bool finalized = false;
  std::vector<int> inputs, outputs;  // from_capture
  std::unordered_map<std::string, int> shared_vars;   // get_variable's: full name -> index into vars
  // tf.add_to_collection: (node, is an operation) pairs, not Fetches, whose
  // Operations would own this graph (a cycle that leaks it).
  std::unordered_map<std::string, std::vector<std::pair<int, bool>>> collections;
  std::unordered_map<std::string, int> layer_counts;  // default layer names per variable scope: "a/dense" -> count
  std::vector<CondInfo> conds;         // tf.cond calls
  std::vector<CondBranch> branches;    // two per cond
  std::vector<LoopInfo> loops;         // tf.while_loop calls

  /// A unique name from `base` (TF style: add, add_1, ...). Caller holds mu.
  std::string unique_name(const std::string& base);
  /// Gives back `name`, claimed by unique_name for a node renamed at once
  /// (a default name replaced by the user's), unless names were derived from it.
  void release_name(const std::string& name);
  /// Renames node `id` to `base` (made unique unless `exact`), giving back its old name. Caller holds mu.
  void rename(int id, const std::string& base, bool exact);
  /// Appends a node, naming it; throws when finalized. Caller holds mu.
  int add(Node n, const char* who);
  /// "float32 [-1,3]"
  static std::string type_str(const Node& n);
  /// The first of branch `b` and its enclosing branches, inner to outer, for
  /// which `pred` holds; null when none does (or b < 0). Caller holds mu.
  template <class F>
  const CondBranch* find_branch(int b, F&& pred) const {
    for (; b >= 0; b = branches[static_cast<std::size_t>(b)].parent)
      if (pred(branches[static_cast<std::size_t>(b)])) return &branches[static_cast<std::size_t>(b)];
    return nullptr;
  }
};

/// A variable's value in one session.
struct SessVar {
  std::shared_ptr<ember::Variable::State> state;
  std::atomic<bool> initialized{false};
  std::string name;
};
struct SessionState;
/// Session value of graph variable `index` (made on first use).
std::shared_ptr<SessVar> session_var(SessionState& s, int index);
void check_session_open(const SessionState& s, const char* who);

/// The symbol of a graph tensor (Note [Symbolic tensors]).
struct NodeSymbol final : ember::detail::Symbol {
  std::weak_ptr<GraphState> g;
  uint64_t graph_id = 0;
  int node = -1;
  int loop = -1;  // the node's Node::loop (a session refuses to fetch or feed it)
  std::string describe() const override;
};

/// The (graph, node) behind a tensor, or null when it is not a graph tensor.
const NodeSymbol* symbol_of(const Tensor& t);
/// A symbolic tensor for node `id` of `g`.
Tensor symbolic(const std::shared_ptr<GraphState>& g, int id);

/// The graph-mode recorder one scope installs on its thread.
class ScopeRecorder final : public dispatch::Recorder {
 public:
  explicit ScopeRecorder(std::shared_ptr<GraphState> g) : g_(std::move(g)) {}
  bool graph_mode() const override { return true; }
  /// Only ops that touch a graph tensor build nodes (or all, while `force` is set:
  /// tf::zeros, tf::random_normal, ...); ops on eager tensors run as usual.
  bool builds(dispatch::Inputs inputs) const override {
    if (force) return true;
    for (const Tensor& t : inputs)
      if (!t.impl().storage) return true;
    return false;
  }
  void record(dispatch::OpId, dispatch::Inputs, const dispatch::Attrs&, const Tensor&, bool) override {}
  dispatch::TensorMeta infer(dispatch::OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs) override;
  Tensor build(dispatch::OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs,
               const dispatch::TensorMeta& meta) override;
  Tensor build_inplace(dispatch::OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs,
                       const Tensor& out) override;
  Tensor reshape_like(const Tensor& t, const Tensor& like) override;
  Shape static_shape(const Tensor& t) override;
  Tensor on_variable_read(const ember::Variable& v, const Tensor& value) override;
  void on_variable_assign(const ember::Variable& v, const Tensor& src, dispatch::OpId kind) override;

  /// Node id of `t` in this graph (a concrete tensor becomes a constant). Caller holds mu.
  int node_of(const Tensor& t, const char* who);
  /// Adds `n` with this scope's device and control dependencies, its name in
  /// the current name scope (unless `in_name_scope` is false: a name built
  /// from one already scoped, a variable's parts). Caller holds mu.
  int add(Node n, const char* who, bool in_name_scope = true);
  /// A node of `op` whose shape attribute (attrs.ints) takes entries from other
  /// nodes' dims in the run (Node::dims_of); `static_shape` is its static shape. Caller holds mu.
  int shaped_by(dispatch::OpId op, std::vector<int> inputs, dispatch::Attrs attrs,
                std::vector<std::pair<int, int>> dims_of, const Shape& static_shape, DType dtype);
  /// A reshape or expand of node `src` to the shape node `like` has in the run. Caller holds mu.
  int shaped_like(dispatch::OpId op, int src, int like, const Shape& static_shape);

  const std::shared_ptr<GraphState>& graph() const { return g_; }
  std::string device;
  std::vector<int> control;
  std::string name_prefix;  // "" or the current name scope, "a/b/"
  std::string var_prefix;   // "" or the current variable scope, "a/b/"
  int guard = -1;           // in a cond branch: the bool node under which its assigns write
  int branch = -1;          // in a cond branch: its index into GraphState::branches
  int loop = -1;            // in a while_loop's cond or body: its index into GraphState::loops
  Reuse reuse = Reuse::inherit;
  int force = 0;

 private:
  std::shared_ptr<GraphState> g_;
};

/// Re-throws the current ember error with its message edited, keeping its type.
[[noreturn]] void rethrow_edited(const std::function<std::string(const std::string&)>& edit);

/// Whether `v` converts to `to` with its value unchanged (a whole number in
/// range for integers; the same number in float32/float64). Feeds and
/// Variable::assign of numbers check with it.
bool holds_exactly(Scalar v, DType to);

/// "/cpu:0" or "/gpu:N" for a TF device name ("" stays ""); ValueError naming `who` otherwise.
std::string normalize_device(const std::string& name, const char* who);

/// ValueError naming `who` unless `step` is a 0-d integer variable (a global step).
void check_step_variable(const Variable& step, const std::string& who);

/// Whether static shapes a and b can be one shape in a run: the same rank,
/// and equal dims where both are known (-1 matches anything).
bool shapes_compatible(const Shape& a, const Shape& b);

/// The innermost scope's recorder on this thread, or null.
ScopeRecorder* current_scope();
/// The innermost scope's recorder; ValueError naming `who` outside any scope.
ScopeRecorder& require_scope(const char* who);

/// The node for `r`, made by a call that began when the graph had `before`
/// nodes, renamed `name` (an identity of that name when r is older).
Tensor apply_name(const Tensor& r, std::size_t before, const std::string& name);

/// TF's init_scope around what a variable's creation builds (its initial
/// value and initializer, a regularizer's loss): the enclosing
/// control_dependencies and cond guard do not apply, or an optimizer's slots
/// made under them would run those ops at every read and initialization.
class InitScope {
 public:
  explicit InitScope(ScopeRecorder& sc)
      : sc_(sc),
        control_(std::exchange(sc.control, {})),
        guard_(std::exchange(sc.guard, -1)),
        branch_(std::exchange(sc.branch, -1)),
        loop_(std::exchange(sc.loop, -1)) {}
  ~InitScope() {
    sc_.control = std::move(control_);
    sc_.guard = guard_;
    sc_.branch = branch_;
    sc_.loop = loop_;
  }
  InitScope(const InitScope&) = delete;
  InitScope& operator=(const InitScope&) = delete;

 private:
  ScopeRecorder& sc_;
  std::vector<int> control_;
  int guard_;
  int branch_;
  int loop_;
};

/// How many nodes the scope's graph has (a call's first node id).
inline std::size_t node_count(ScopeRecorder& sc) {
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  return sc.graph()->nodes.size();
}

/// f() with the node it makes named `name` (TF's name= argument; "" keeps the default).
template <class F>
Tensor named(const std::string& name, F&& f) {
  ScopeRecorder* sc = name.empty() ? nullptr : current_scope();
  if (!sc) return f();
  const std::size_t before = node_count(*sc);
  return apply_name(f(), before, name);
}

/// Renames the node for `r` (made after `before` nodes) to `scope` without
/// its trailing '/': a composite op named after the name scope of its parts.
Tensor name_after_scope(const Tensor& r, std::size_t before, const std::string& scope);

/// f() built in a name scope `name` (default `default_name`), its result
/// named after the scope, as TF's composite ops: "rows" made of "rows/...".
template <class F>
Tensor scoped(const std::string& name, const char* default_name, F&& f) {
  ScopeRecorder* sc = current_scope();
  if (!sc) return f();
  const std::size_t before = node_count(*sc);
  std::string full;
  Tensor r;
  {
    NameScope ns(name.empty() ? default_name : name);
    full = ns.name();
    r = f();
  }
  return name_after_scope(r, before, full);
}

/// f() with creation ops (no graph input) building nodes in graph mode too.
template <class F>
Tensor built(F&& f) {
  ScopeRecorder* sc = current_scope();
  if (!sc) return f();
  ++sc->force;
  try {
    Tensor r = f();
    --sc->force;
    return r;
  } catch (...) {
    --sc->force;
    throw;
  }
}

}  // namespace ember::compat::v1::detail
