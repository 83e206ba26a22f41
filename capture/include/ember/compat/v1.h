#pragma once
// ember::compat::v1: TensorFlow-1-style graphs and sessions, run on the
// capture layer's graph executor. Ported code aliases the namespace:
//
//   namespace tf = ember::compat::v1;
//   tf::Graph g;
//   auto scope = g.as_default();            // ops now build nodes and run nothing
//   auto x = tf::placeholder(em::float32, {-1, 3}, "x");
//   tf::Variable w(em::randn({3, 2}), "w");
//   auto y = tf::matmul(x, w);
//   tf::Session sess(g);
//   sess.run(tf::global_variables_initializer());
//   em::Tensor r = sess.run(y, {{x, batch}});
//
// In graph mode every ember op (em::relu, a + b, ...) that touches a graph
// tensor appends a node; the tensors it returns are symbolic (a shape and a
// dtype, no values; see Note [Symbolic tensors] in ember/tensor_impl.h). Ops
// on eager tensors still run (so feed values can be made inside a scope);
// an eager tensor used by a node becomes a constant. tf::zeros, tf::ones and
// tf::random_normal always build nodes (random_normal draws on every run). Dims that a placeholder leaves
// unknown (-1) are shown as -1 by `static_shape`; `Tensor::shape()` of a
// symbolic tensor holds a stand-in size there.
#include <cstdint>
#include <functional>
#include <memory>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ember/capture.h>
#include <ember/creation.h>
#include <ember/ops.h>
#include <ember/tensor.h>
#include <ember/variable.h>

namespace ember::compat::v1 {

using ember::DType;
using ember::Shape;
using ember::Tensor;

namespace detail {
struct GraphState;
struct SessionState;
class ScopeRecorder;
}  // namespace detail

/// A graph node that is run for its effect, not fetched (initializers, no_op, group, assign ops).
class Operation {
 public:
  Operation() = default;
  bool defined() const { return static_cast<bool>(g_); }
  /// The node's unique name ("init", "w/assign", "no_op_1").
  std::string name() const;

  Operation(std::shared_ptr<detail::GraphState> g, int node) : g_(std::move(g)), node_(node) {}
  const std::shared_ptr<detail::GraphState>& graph_state() const { return g_; }
  int node() const { return node_; }

 private:
  std::shared_ptr<detail::GraphState> g_;
  int node_ = -1;
};

/// Installs a graph as this thread's default (graph mode); restores the previous one when destroyed.
class GraphScope {
 public:
  explicit GraphScope(std::shared_ptr<detail::GraphState> g);
  ~GraphScope();
  GraphScope(const GraphScope&) = delete;
  GraphScope& operator=(const GraphScope&) = delete;

 private:
  std::unique_ptr<detail::ScopeRecorder> rec_;
  void* prev_ = nullptr;
};

/// A TF1 graph: nodes with unique names, built in graph mode. Copies share the graph.
class Graph {
 public:
  Graph();
  /// Graph mode for the calling thread until the returned scope ends (scopes nest).
  [[nodiscard]] GraphScope as_default() const { return GraphScope(s_); }
  /// The tensor named "node:0"; ValueError when there is no such tensor.
  Tensor get_tensor_by_name(const std::string& name) const;
  /// The node named `name`, as an Operation.
  Operation get_operation_by_name(const std::string& name) const;
  /// Names of all nodes, in creation order.
  std::vector<std::string> node_names() const;
  /// Number of nodes.
  int num_nodes() const;
  /// Makes the graph read-only: adding a node afterwards raises ValueError.
  void finalize();
  bool finalized() const;
  /// One line per node: `add = add(a, b) : int32 []` (control inputs after `^`).
  std::string str() const;

  /// A graph holding a traced capture graph: its inputs become placeholders named
  /// as the trace named them (see `inputs()`), its outputs identity nodes
  /// "output", "output_1", ... (see `outputs()`), its Variables are read by reference.
  static Graph from_capture(const capture::Graph& traced);
  /// The placeholders made by from_capture, in input order.
  std::vector<Tensor> inputs() const;
  /// The outputs made by from_capture, in output order.
  std::vector<Tensor> outputs() const;

  const std::shared_ptr<detail::GraphState>& state() const { return s_; }
  friend bool operator==(const Graph& a, const Graph& b) { return a.s_ == b.s_; }

 private:
  explicit Graph(std::shared_ptr<detail::GraphState> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::GraphState> s_;
  friend Graph get_default_graph();
};

/// The graph of this thread's innermost scope (ValueError outside any scope).
Graph get_default_graph();

/// The static shape of a graph tensor, -1 for unknown dims (TF's `get_shape()`);
/// an eager tensor's shape otherwise.
Shape static_shape(const Tensor& t);
/// The name of a graph tensor ("add:0").
std::string tensor_name(const Tensor& t);
/// The node that computes a graph tensor, as an Operation (to run it for its effect).
Operation op_of(const Tensor& t);

/// A TF1 variable: a graph node whose value lives in each Session (two
/// sessions on one graph hold separate values). Copies refer to the same node.
class Variable {
 public:
  Variable() = default;
  /// A variable initialized (by its initializer) to `initial_value`, whose shape must be fully known.
  explicit Variable(const Tensor& initial_value, const std::string& name = "", bool trainable = true);
  /// A 0-d variable of a C++ number, in its type (tf.Variable(0.0, name="b")):
  /// a float is float32, a double float64, an int int32, an int64_t int64.
  template <class T>
    requires std::is_arithmetic_v<T>
  explicit Variable(T initial_value, const std::string& name = "", bool trainable = true)
      : Variable(ember::tensor(std::vector<T>{initial_value}, Shape{}), name, trainable) {}
  /// The value as a graph tensor ("w:0").
  Tensor value() const;
  operator Tensor() const { return value(); }  // NOLINT: TF code uses a variable as a tensor
  /// The op that sets the initial value.
  Operation initializer() const;
  /// The tensor the initializer writes (TF's initial_value): a random one is
  /// drawn once per run, so variables initialized from it in one run agree.
  Tensor initial_value() const;
  /// An op writing `v` into the variable (cast and broadcast to its type); fetch it for the new value.
  Tensor assign(const Tensor& v, const std::string& name = "") const;
  /// An op adding `v` to the variable; fetch it for the new value.
  Tensor assign_add(const Tensor& v, const std::string& name = "") const;
  /// An op subtracting `v` from the variable; fetch it for the new value.
  Tensor assign_sub(const Tensor& v, const std::string& name = "") const;
  /// The same with a C++ number, taken in the variable's dtype (a fraction
  /// for an integer variable is a ValueError, as TF refuses to convert it).
  Tensor assign(Scalar v, const std::string& name = "") const { return assign(number(v, "assign"), name); }
  Tensor assign_add(Scalar v, const std::string& name = "") const {
    return assign_add(number(v, "assign_add"), name);
  }
  Tensor assign_sub(Scalar v, const std::string& name = "") const {
    return assign_sub(number(v, "assign_sub"), name);
  }
  std::string name() const;
  Shape shape() const;
  DType dtype() const;
  bool trainable() const;
  bool defined() const { return static_cast<bool>(g_); }

  Variable(std::shared_ptr<detail::GraphState> g, int index) : g_(std::move(g)), index_(index) {}
  const std::shared_ptr<detail::GraphState>& graph_state() const { return g_; }
  int index() const { return index_; }

 private:
  Tensor number(Scalar v, const char* who) const;
  std::shared_ptr<detail::GraphState> g_;
  int index_ = -1;
};

/// What the TF1 op names take as an operand: a tensor, a tf::Variable (its value) or a C++ number.
class Value {
 public:
  Value(const Tensor& t) : t_(t), tensor_(true) {}              // NOLINT
  Value(const Variable& v) : t_(v.value()), tensor_(true) {}    // NOLINT
  template <class T>
    requires std::is_arithmetic_v<T>
  Value(T v) : s_(v) {}  // NOLINT
  /// The ember operand it stands for (valid while this Value lives).
  Operand operand() const { return tensor_ ? Operand(t_) : Operand(s_); }

 private:
  Tensor t_;
  Scalar s_;
  bool tensor_ = false;
};

// A tf::Variable in arithmetic stands for its value (TF code writes
// tf.matmul(x, W) + b with b a variable).
#define EMBER_V1_VARIABLE_OPERATOR(op, fn)                                                                     \
  inline Tensor operator op(const Variable& a, const Value& b) { return ember::fn(a.value(), b.operand()); }  \
  inline Tensor operator op(const Value& a, const Variable& b) { return ember::fn(a.operand(), b.value()); }  \
  inline Tensor operator op(const Variable& a, const Variable& b) { return ember::fn(a.value(), b.value()); }
EMBER_V1_VARIABLE_OPERATOR(+, add)
EMBER_V1_VARIABLE_OPERATOR(-, sub)
EMBER_V1_VARIABLE_OPERATOR(*, mul)
EMBER_V1_VARIABLE_OPERATOR(/, div)
#undef EMBER_V1_VARIABLE_OPERATOR
inline Tensor operator-(const Variable& a) { return ember::neg(a.value()); }

/// tf.assign(ref, value) and friends: the Variable's assign ops as free functions.
inline Tensor assign(const Variable& ref, const Tensor& value, const std::string& name = "") {
  return ref.assign(value, name);
}
inline Tensor assign_add(const Variable& ref, const Tensor& value, const std::string& name = "") {
  return ref.assign_add(value, name);
}
inline Tensor assign_sub(const Variable& ref, const Tensor& value, const std::string& name = "") {
  return ref.assign_sub(value, name);
}
inline Tensor assign(const Variable& ref, Scalar value, const std::string& name = "") { return ref.assign(value, name); }
inline Tensor assign_add(const Variable& ref, Scalar value, const std::string& name = "") {
  return ref.assign_add(value, name);
}
inline Tensor assign_sub(const Variable& ref, Scalar value, const std::string& name = "") {
  return ref.assign_sub(value, name);
}

// ---- graph construction (these need a graph scope, except constant/identity on eager tensors) --

/// A constant node holding a copy of `value` (eagerly: `value` itself).
Tensor constant(const Tensor& value, const std::string& name = "");
/// A 0-d constant of the C++ number's own dtype (int -> int32, float -> float32).
template <class T>
  requires std::is_arithmetic_v<T>
Tensor constant(T value, const std::string& name = "") {
  return constant(ember::tensor(std::vector<T>{value}, Shape{}), name);
}
/// A constant from values and a shape.
template <class T>
  requires std::is_arithmetic_v<T>
Tensor constant(const std::vector<T>& values, const Shape& shape, const std::string& name = "") {
  return constant(ember::tensor(values, shape), name);
}
/// A value that must be fed; -1 marks a dim of unknown size.
Tensor placeholder(DType dtype, const Shape& shape, const std::string& name = "");
/// `input` unless fed; a feed must match `shape` (-1: any size).
Tensor placeholder_with_default(const Tensor& input, const Shape& shape, const std::string& name = "");
/// The same value under a new node (also orders it after the control dependencies in scope).
Tensor identity(const Tensor& x, const std::string& name = "");
/// Does nothing; useful with control dependencies.
Operation no_op(const std::string& name = "");

/// Something to fetch or to run: a tensor (fetched) or an operation (run, fetches nothing).
struct Fetch {
  Fetch(const Tensor& t) : tensor(t) {}                        // NOLINT
  Fetch(const Operation& o) : op(o) {}                         // NOLINT
  Fetch(const Variable& v) : tensor(v.value()) {}              // NOLINT
  Tensor tensor;
  Operation op;
};
/// An op that runs all of `inputs` (tensors and operations).
Operation group(const std::vector<Fetch>& inputs, const std::string& name = "");
/// Collections of the default graph (tf.add_to_collection, tf.get_collection):
/// named lists of tensors and operations, in the order they were added.
/// layers::batch_normalization adds its moving-average updates to
/// GraphKeys::UPDATE_OPS, tf::losses::* their values to GraphKeys::LOSSES,
/// regularizers theirs to REGULARIZATION_LOSSES, and
/// train::ExponentialMovingAverage the variables it averages to
/// MOVING_AVERAGE_VARIABLES.
namespace GraphKeys {
inline const std::string UPDATE_OPS = "update_ops";
inline const std::string LOSSES = "losses";
inline const std::string REGULARIZATION_LOSSES = "regularization_losses";
inline const std::string MOVING_AVERAGE_VARIABLES = "moving_average_variables";
}  // namespace GraphKeys
void add_to_collection(const std::string& name, const Fetch& value);
std::vector<Fetch> get_collection(const std::string& name);

/// Initializes every variable of the default graph.
Operation global_variables_initializer();
/// Initializes the given variables.
Operation variables_initializer(const std::vector<Variable>& vars, const std::string& name = "init");
/// Every variable of the default graph, in creation order.
std::vector<Variable> global_variables();
/// The variables created with trainable = true.
std::vector<Variable> trainable_variables();

/// Nodes created while it lives run only after `deps` (tf.control_dependencies).
class ControlDependencies {
 public:
  explicit ControlDependencies(const std::vector<Fetch>& deps);
  ~ControlDependencies();
  ControlDependencies(const ControlDependencies&) = delete;
  ControlDependencies& operator=(const ControlDependencies&) = delete;

 private:
  void* scope_ = nullptr;
  std::vector<int> saved_;
};
[[nodiscard]] inline ControlDependencies control_dependencies(const std::vector<Fetch>& deps) {
  return ControlDependencies(deps);
}

/// tf.cond: true_fn's outputs where the 0-d bool `pred` is true, false_fn's
/// otherwise (as many tensors from each, of one dtype and shape). Both
/// branches are built; a session run computes only the taken one (its ops,
/// draws, feeds and errors), as TF does, unless the run needs a tensor of the
/// other branch by another path (tf::gradients through the cond): then both
/// run and the taken one's values are selected. An assign made inside a
/// branch writes only when its branch is taken. Note [Lazy cond] in
/// capture/compat/v1/control_flow.cpp has the details. Eagerly, only the
/// taken branch runs.
Tensor cond(const Tensor& pred, const std::function<Tensor()>& true_fn, const std::function<Tensor()>& false_fn,
            const std::string& name = "");
std::vector<Tensor> cond(const Tensor& pred, const std::function<std::vector<Tensor>()>& true_fn,
                         const std::function<std::vector<Tensor>()>& false_fn, const std::string& name = "");

/// tf.while_loop: while cond(vars) is true, vars = body(vars), from
/// `loop_vars`; returns the last vars. cond returns a 0-d bool tensor, body
/// as many tensors as loop_vars, each of its variable's dtype and shape
/// (`shape_invariants`: per variable, -1 for dims that may change between
/// iterations). At most `maximum_iterations` iterations when >= 0. A session
/// run executes the iterations one after another; an assign in the body is
/// seen by the next iteration. No gradients through the loop. Note [While
/// loops] in capture/compat/v1/control_flow.cpp has the details. Eagerly, a
/// plain loop.
std::vector<Tensor> while_loop(const std::function<Tensor(const std::vector<Tensor>&)>& cond,
                               const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& body,
                               const std::vector<Tensor>& loop_vars, const std::vector<Shape>& shape_invariants = {},
                               int64_t maximum_iterations = -1, const std::string& name = "");

/// Nodes (and tf::Variables) created while it lives are named "<scope>/<name>"
/// (tf.name_scope): `auto ns = tf::name_scope("layer1");` gives "layer1/add",
/// scopes nest ("a/b/add"), and a scope name used before gets a suffix
/// ("layer1_1/") as TF's does. A name ending in '/' re-enters that scope as it
/// is; "" returns to the top level. `name()` is the scope as TF's `as scope`
/// gives it ("layer1/").
class NameScope {
 public:
  explicit NameScope(const std::string& name);
  ~NameScope();
  NameScope(const NameScope&) = delete;
  NameScope& operator=(const NameScope&) = delete;
  const std::string& name() const { return full_; }

 private:
  void* scope_ = nullptr;
  std::string saved_, full_;
};
[[nodiscard]] inline NameScope name_scope(const std::string& name) { return NameScope(name); }

/// Nodes created while it lives are pinned to `device` ("/cpu:0", "/gpu:0", "" to clear).
class DeviceScope {
 public:
  explicit DeviceScope(const std::string& device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  void* scope_ = nullptr;
  std::string saved_;
};
[[nodiscard]] inline DeviceScope device(const std::string& name) { return DeviceScope(name); }

// ---- TF1 names of the core ops (graph mode: nodes; eager: they run) ----------

Tensor add(const Value& a, const Value& b, const std::string& name = "");       ///< a + b
Tensor subtract(const Value& a, const Value& b, const std::string& name = "");  ///< a - b
Tensor multiply(const Value& a, const Value& b, const std::string& name = "");  ///< a * b
/// True division; integers divide in float64 (float32 for uint8), as TF's truediv.
Tensor divide(const Value& a, const Value& b, const std::string& name = "");
Tensor maximum(const Value& a, const Value& b, const std::string& name = "");   ///< elementwise max
Tensor minimum(const Value& a, const Value& b, const std::string& name = "");   ///< elementwise min
Tensor equal(const Value& a, const Value& b, const std::string& name = "");     ///< a == b (bool)
Tensor less(const Value& a, const Value& b, const std::string& name = "");      ///< a < b (bool)
Tensor greater(const Value& a, const Value& b, const std::string& name = "");   ///< a > b (bool)
/// cond ? x : y elementwise.
Tensor where(const Tensor& cond, const Value& x, const Value& y, const std::string& name = "");
/// a @ b, optionally transposing the last two dims of either first.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false,
              const std::string& name = "");
/// The sum; integers stay in their dtype (and wrap), as in TF.
Tensor reduce_sum(const Tensor& x, const Axes& axis = {}, bool keepdims = false, const std::string& name = "");
/// The mean; of integers an integer (rounded toward zero), as in TF.
Tensor reduce_mean(const Tensor& x, const Axes& axis = {}, bool keepdims = false, const std::string& name = "");
Tensor reduce_max(const Tensor& x, const Axes& axis = {}, bool keepdims = false, const std::string& name = "");
Tensor reduce_min(const Tensor& x, const Axes& axis = {}, bool keepdims = false, const std::string& name = "");
/// Index of the largest value along `axis` (int64).
Tensor argmax(const Tensor& x, int64_t axis, const std::string& name = "");
/// A size in a shape argument: a number, or dim `axis` of a tensor as it is
/// when the graph runs (`tf::shape(x)[axis]`, TF's tf.shape(x)[axis]).
class Dim {
 public:
  template <class T>
    requires std::is_integral_v<T>
  Dim(T size) : size_(static_cast<int64_t>(size)) {}  // NOLINT: a number is a size
  Dim(const Tensor& of, int64_t axis) : of_(of), axis_(axis) {}
  bool is_size() const { return !of_.defined(); }
  int64_t size() const { return size_; }
  /// The size as a 0-d int32 tensor (int64 beyond int32), as TF's
  /// tf.shape(x)[k]: a constant when known, else computed in each run, so
  /// that `tf::cast(tf::shape(x)[0], em::float32)` ports as it is.
  operator Tensor() const;  // NOLINT: TF code uses a size as a tensor
  const Tensor& of() const { return of_; }
  int64_t axis() const { return axis_; }

 private:
  int64_t size_ = -1;
  Tensor of_;
  int64_t axis_ = 0;
};
/// A tensor's shape as it is when the graph runs (tf.shape): statically known
/// dims are numbers, the others refer to the tensor. Sizes read this way stay
/// right for every run; x.shape() holds stand-in numbers for unknown dims.
class DynamicShape {
 public:
  explicit DynamicShape(const Tensor& t);
  /// Dim `axis` (negative counts from the end).
  Dim operator[](int64_t axis) const;
  int64_t rank() const { return static_cast<int64_t>(static_.size()); }
  std::vector<Dim> dims() const;
  /// The shape as a 1-d int32 tensor (tf.shape(x) itself), sizes unknown
  /// until the graph runs computed in each run.
  operator Tensor() const;  // NOLINT: TF code uses a shape as a tensor

 private:
  Tensor t_;
  Shape static_;
};
DynamicShape shape(const Tensor& x);
/// The number of elements of x as a 0-d int32 tensor (tf.size), computed in
/// each run when x has dims unknown until then.
Tensor size(const Tensor& x, const std::string& name = "");
/// The rank of x as a 0-d int32 constant (tf.rank).
Tensor rank(const Tensor& x, const std::string& name = "");
/// A shape argument: numbers ({-1, 3}, a Shape), or sizes some of which are
/// dims of tensors in the run ({tf::shape(ids)[0], -1, 3}, tf::shape(x)).
class Dims {
 public:
  Dims(std::initializer_list<Dim> dims) : dims_(dims) {}  // NOLINT
  Dims(const Shape& s) : dims_(s.begin(), s.end()) {}      // NOLINT
  Dims(const std::vector<Dim>& dims) : dims_(dims) {}      // NOLINT
  Dims(const DynamicShape& s) : dims_(s.dims()) {}         // NOLINT
  const std::vector<Dim>& list() const { return dims_; }

 private:
  std::vector<Dim> dims_;
};
/// New shape with the same elements; one dim may be -1.
Tensor reshape(const Tensor& x, const Dims& shape, const std::string& name = "");
/// Permutes dims (default: reverses them).
Tensor transpose(const Tensor& x, const Axes& perm = {}, const std::string& name = "");
Tensor concat(const std::vector<Tensor>& values, int64_t axis, const std::string& name = "");
Tensor stack(const std::vector<Tensor>& values, int64_t axis = 0, const std::string& name = "");
/// x[begin[i] : begin[i] + size[i]] in every dim i (tf.slice); a size of -1
/// takes the rest of the dim. One entry per dim. A dim unknown until the
/// graph runs can only be taken whole (begin 0, size -1).
Tensor slice(const Tensor& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& size,
             const std::string& name = "");
/// `num` equal parts of x along `axis` (tf.split with a number; the dim must be
/// known and divisible by num). The parts are views named "<name>/part_<i>"
/// ("split" by default): TF's one op with outputs split:0, split:1, ...
std::vector<Tensor> split(const Tensor& x, int64_t num, int64_t axis = 0, const std::string& name = "");
/// Parts of the given sizes along `axis` (tf.split with a list); one size may
/// be -1, the rest of the dim. The sizes must add up to the dim.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis = 0,
                          const std::string& name = "");
/// The same for a braced list: `split(x, {3}, 1)` is one part of size 3, as
/// TF's split(x, [3], 1), not 3 parts.
inline std::vector<Tensor> split(const Tensor& x, std::initializer_list<int64_t> sizes, int64_t axis = 0,
                                 const std::string& name = "") {
  return split(x, std::vector<int64_t>(sizes), axis, name);
}
/// The slices of x along `axis`, that dim removed (tf.unstack); the dim must be
/// known. Named "<name>/part_<i>" ("unstack" by default).
std::vector<Tensor> unstack(const Tensor& x, int64_t axis = 0, const std::string& name = "");
/// start, start + delta, ... up to (not including) limit (tf.range), in
/// `dtype` or as TF infers it from the numbers: int32 when all are integers
/// (int64 when one needs it), float32 otherwise. delta must not be 0, nor point
/// away from limit (TF's errors); an integer dtype takes whole numbers only.
Tensor range(Scalar start, Scalar limit, Scalar delta = 1, std::optional<DType> dtype = {},
             const std::string& name = "");
/// 0, 1, ..., limit - 1 (tf.range(limit)).
Tensor range(Scalar limit, std::optional<DType> dtype = {}, const std::string& name = "");
namespace detail {
Tensor range_of_size(const Dim& limit, std::optional<DType> dtype, const std::string& name);
}
/// 0, 1, ..., n - 1 for a size read in the run, TF1's usual tensor limit:
/// `tf::range(tf::shape(x)[0])` (int32 unless `dtype`). A template, so that a
/// number keeps meaning the overload above. Other limits computed in the run
/// (a fed 0-d tensor) would give a shape that only values decide, which a
/// shim graph does not have.
template <class D>
  requires std::is_same_v<D, Dim>
Tensor range(const D& limit, std::optional<DType> dtype = {}, const std::string& name = "") {
  return detail::range_of_size(limit, dtype, name);
}
/// A tensor of shape `dims` holding `value` everywhere (tf.fill), in `dtype` or
/// as TF converts the number: int32 (int64 when it needs it), float32 or bool;
/// ValueError for a value the dtype cannot hold. Sizes may be dims of tensors
/// in the run (tf::fill(tf::shape(x), 0.5)).
Tensor fill(const Dims& dims, Scalar value, std::optional<DType> dtype = {}, const std::string& name = "");
/// Slices of `params` along `axis` at `indices` (int32/int64, any rank): the
/// result is params.shape[:axis] + indices.shape + params.shape[axis+1:] (tf.gather).
Tensor gather(const Tensor& params, const Tensor& indices, int64_t axis = 0, const std::string& name = "");
Tensor cast(const Tensor& x, DType dtype, const std::string& name = "");
Tensor square(const Tensor& x, const std::string& name = "");  ///< x * x
Tensor sqrt(const Tensor& x, const std::string& name = "");
Tensor exp(const Tensor& x, const std::string& name = "");
Tensor log(const Tensor& x, const std::string& name = "");
Tensor zeros(const Shape& shape, DType dtype = DType::float32, const std::string& name = "");
Tensor ones(const Shape& shape, DType dtype = DType::float32, const std::string& name = "");
/// Zeros (ones) shaped like x when the graph runs, unknown dims included; x's dtype unless given.
Tensor zeros_like(const Tensor& x, std::optional<DType> dtype = {}, const std::string& name = "");
Tensor ones_like(const Tensor& x, std::optional<DType> dtype = {}, const std::string& name = "");
/// Normal samples, drawn again on every run (a random initializer; sizes may
/// be dims of tensors in the run, e.g. tf::shape(x)).
Tensor random_normal(const Dims& shape, double mean = 0.0, double stddev = 1.0, const std::string& name = "");
/// The same in `dtype` (float32 or float64).
Tensor random_normal(const Dims& shape, double mean, double stddev, DType dtype, const std::string& name = "");
/// Uniform samples in [minval, maxval), drawn again on every run (float32 or float64).
Tensor random_uniform(const Dims& shape, double minval = 0.0, double maxval = 1.0, DType dtype = DType::float32,
                      const std::string& name = "");

/// Like random_normal, but a sample more than 2 stddev from the mean is drawn
/// again (TF's truncated_normal, the usual weight initializer of TF1 code).
Tensor truncated_normal(const Dims& shape, double mean = 0.0, double stddev = 1.0, DType dtype = DType::float32,
                        const std::string& name = "");

// ---- more TF1 names (graph mode: nodes; eager: they run) ----------------------

Tensor abs(const Tensor& x, const std::string& name = "");
Tensor negative(const Tensor& x, const std::string& name = "");  ///< -x
Tensor sign(const Tensor& x, const std::string& name = "");      ///< -1, 0 or 1
Tensor floor(const Tensor& x, const std::string& name = "");
Tensor ceil(const Tensor& x, const std::string& name = "");
Tensor round(const Tensor& x, const std::string& name = "");  ///< half to even, as TF
Tensor rsqrt(const Tensor& x, const std::string& name = "");  ///< 1 / sqrt(x)
Tensor sin(const Tensor& x, const std::string& name = "");
Tensor cos(const Tensor& x, const std::string& name = "");
Tensor log1p(const Tensor& x, const std::string& name = "");  ///< log(1 + x)
Tensor pow(const Value& x, const Value& y, const std::string& name = "");
Tensor squared_difference(const Value& x, const Value& y, const std::string& name = "");  ///< (x - y)^2
Tensor not_equal(const Value& a, const Value& b, const std::string& name = "");      ///< a != b (bool)
Tensor less_equal(const Value& a, const Value& b, const std::string& name = "");     ///< a <= b (bool)
Tensor greater_equal(const Value& a, const Value& b, const std::string& name = "");  ///< a >= b (bool)
/// Elementwise and/or/not of bool tensors (TF accepts only bool here).
Tensor logical_and(const Tensor& a, const Tensor& b, const std::string& name = "");
Tensor logical_or(const Tensor& a, const Tensor& b, const std::string& name = "");
Tensor logical_not(const Tensor& x, const std::string& name = "");
/// x limited to [clip_value_min, clip_value_max] (numbers or tensors that broadcast to x).
Tensor clip_by_value(const Tensor& x, const Value& clip_value_min, const Value& clip_value_max,
                     const std::string& name = "");
/// Sum of tensors of one shape and dtype (tf.add_n).
Tensor add_n(const std::vector<Tensor>& inputs, const std::string& name = "");
/// Index of the smallest value along `axis` (int64).
Tensor argmin(const Tensor& x, int64_t axis, const std::string& name = "");
/// The product; x's dtype, as TF (integers wrap).
Tensor reduce_prod(const Tensor& x, const Axes& axis = {}, bool keepdims = false, const std::string& name = "");
/// Logical and/or over bool x.
Tensor reduce_all(const Tensor& x, const Axes& axis = {}, bool keepdims = false, const std::string& name = "");
Tensor reduce_any(const Tensor& x, const Axes& axis = {}, bool keepdims = false, const std::string& name = "");
/// x with a new dim of size 1 at `axis` (-rank-1 <= axis <= rank).
Tensor expand_dims(const Tensor& x, int64_t axis, const std::string& name = "");
/// x without the size-1 dims `axis` (default: every dim known to be 1; a dim
/// unknown until the graph runs is kept). A named dim must be known to be 1.
Tensor squeeze(const Tensor& x, const Axes& axis = {}, const std::string& name = "");
/// x repeated `multiples[i]` times along dim i (one multiple per dim, >= 0).
/// Copies along a dim unknown until the graph runs are concatenated: they run,
/// but tf::gradients cannot slice that dim back (an error names it).
Tensor tile(const Tensor& x, const std::vector<int64_t>& multiples, const std::string& name = "");
/// on_value where indices equals k at position k of a new dim of size `depth`
/// (at `axis`, default last), off_value elsewhere; an index outside [0, depth)
/// gives a row of off_value, as TF. indices are int32 or int64.
Tensor one_hot(const Tensor& indices, int64_t depth, double on_value = 1.0, double off_value = 0.0,
               int64_t axis = -1, DType dtype = DType::float32, const std::string& name = "");
Tensor tanh(const Tensor& x, const std::string& name = "");     ///< tf.tanh (tf.nn.tanh too)
Tensor sigmoid(const Tensor& x, const std::string& name = "");  ///< tf.sigmoid (tf.nn.sigmoid too)
/// log(sum(exp(x))) over `axis`, computed about the max (which takes no gradient), as TF's.
Tensor reduce_logsumexp(const Tensor& x, const Axes& axis = {}, bool keepdims = false, const std::string& name = "");
/// t scaled so that its L2 norm over `axes` (default all) is at most clip_norm (tf.clip_by_norm).
Tensor clip_by_norm(const Tensor& t, double clip_norm, const Axes& axes = {}, const std::string& name = "");
/// The tensors scaled by clip_norm / max(global_norm, clip_norm), with
/// global_norm the L2 norm of all of them together; undefined tensors (TF's
/// None gradients) are skipped and stay undefined. Returns (clipped, global_norm).
std::pair<std::vector<Tensor>, Tensor> clip_by_global_norm(const std::vector<Tensor>& t_list, double clip_norm,
                                                           const std::string& name = "");
/// The L2 norm of the tensors together (tf.global_norm; undefined ones skipped).
Tensor global_norm(const std::vector<Tensor>& t_list, const std::string& name = "");
/// x, through which no gradient flows (tf::gradients, optimizers and
/// GradientTape treat it as a constant).
Tensor stop_gradient(const Tensor& x, const std::string& name = "");

namespace nn {
Tensor relu(const Tensor& x, const std::string& name = "");
Tensor relu6(const Tensor& x, const std::string& name = "");  ///< min(max(x, 0), 6)
/// max(x, alpha * x) for alpha <= 1 (x where x > 0, alpha * x elsewhere otherwise).
Tensor leaky_relu(const Tensor& x, double alpha = 0.2, const std::string& name = "");
Tensor elu(const Tensor& x, const std::string& name = "");       ///< x > 0 ? x : exp(x) - 1
Tensor softplus(const Tensor& x, const std::string& name = "");  ///< log(1 + exp(x))
/// x / sqrt(max(sum(x^2 over axis), epsilon)) (tf.nn.l2_normalize).
Tensor l2_normalize(const Tensor& x, const Axes& axis, double epsilon = 1e-12, const std::string& name = "");
/// sum(t^2) / 2, a 0-d tensor (weight decay terms).
Tensor l2_loss(const Tensor& t, const std::string& name = "");
/// Mean and variance of x over `axes` (tf.nn.moments): `auto [mean, var] = tf::nn::moments(x, {0});`.
std::pair<Tensor, Tensor> moments(const Tensor& x, const Axes& axes, bool keepdims = false,
                                  const std::string& name = "");
/// -sum(labels * log_softmax(logits)) along `axis`, one loss per example;
/// labels and logits have one shape. The v2 form lets gradients reach labels,
/// the TF1 form does not (labels pass through stop_gradient).
Tensor softmax_cross_entropy_with_logits_v2(const Tensor& labels, const Tensor& logits, int64_t axis = -1,
                                            const std::string& name = "");
Tensor softmax_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits, int64_t axis = -1,
                                         const std::string& name = "");
/// The same with class indices: labels (int32/int64) has logits' shape
/// without the last dim, whose size (the class count) must be known; a label
/// outside [0, classes) is an error when the graph runs.
Tensor sparse_softmax_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits,
                                                const std::string& name = "");
/// Elementwise logistic loss, computed stably as TF does:
/// max(x, 0) - x * z + log(1 + exp(-|x|)) for logits x and labels z of one shape.
Tensor sigmoid_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits, const std::string& name = "");
Tensor sigmoid(const Tensor& x, const std::string& name = "");
Tensor tanh(const Tensor& x, const std::string& name = "");
Tensor softmax(const Tensor& logits, int64_t axis = -1, const std::string& name = "");
Tensor log_softmax(const Tensor& logits, int64_t axis = -1, const std::string& name = "");
/// value + bias along the last dim (value has >= 2 dims, bias is 1-d).
Tensor bias_add(const Tensor& value, const Tensor& bias, const std::string& name = "");
/// matmul(x, weights) + biases as one op (addmm): x [batch, in], weights
/// [in, out], biases [out]. Named "xw_plus_b" unless `name` says otherwise.
Tensor xw_plus_b(const Tensor& x, const Tensor& weights, const Tensor& biases, const std::string& name = "");
/// Rows of `params` for `ids` of any shape: gather(params, ids, 0).
Tensor embedding_lookup(const Tensor& params, const Tensor& ids, const std::string& name = "");
/// Each element kept with probability keep_prob (a number in (0, 1] or a 0-d
/// tensor, e.g. a placeholder_with_default) and scaled by 1 / keep_prob, else
/// 0; a new mask on every run (TF1's dropout).
Tensor dropout(const Tensor& x, const Value& keep_prob, const std::string& name = "");
}  // namespace nn

/// tf.losses (TF1): the mean over every element (or example) of the loss above,
/// a 0-d tensor (TF's default reduction with unit weights).
namespace losses {
Tensor mean_squared_error(const Tensor& labels, const Tensor& predictions, const std::string& name = "");
Tensor absolute_difference(const Tensor& labels, const Tensor& predictions, const std::string& name = "");
Tensor softmax_cross_entropy(const Tensor& onehot_labels, const Tensor& logits, const std::string& name = "");
Tensor sparse_softmax_cross_entropy(const Tensor& labels, const Tensor& logits, const std::string& name = "");
Tensor sigmoid_cross_entropy(const Tensor& multi_class_labels, const Tensor& logits, const std::string& name = "");
/// Adds a loss of the program's own to GraphKeys::LOSSES (tf.losses.add_loss).
void add_loss(const Tensor& loss);
/// The losses above made in the default graph (GraphKeys::LOSSES).
std::vector<Tensor> get_losses();
/// The sum of GraphKeys::REGULARIZATION_LOSSES (0 when there are none).
Tensor get_regularization_loss(const std::string& name = "");
/// The sum of the losses, with the regularization losses unless told otherwise
/// (tf.losses.get_total_loss); ValueError when the graph has none.
Tensor get_total_loss(bool add_regularization_losses = true, const std::string& name = "");
}  // namespace losses

// ---- sessions -------------------------------------------------------------

/// How a Session places and runs nodes. A node runs on the GPU its device
/// scope (or this default) names; its variables live there, values move
/// between devices where a graph crosses them, and fetched values come back
/// to the host (TF1 returns host arrays). Constants and feeds are host data.
struct SessionOptions {
  /// Where nodes without a device scope run: "/cpu:0" or "/gpu:N" (TF's longer
  /// names such as "/job:localhost/replica:0/task:0/device:GPU:0" too).
  std::string device = "/cpu:0";
  /// Nodes asking for a missing GPU run on the CPU instead of failing.
  bool allow_soft_placement = false;
  /// Threads for one op (sets ember's process-wide count when > 0, like torch.set_num_threads).
  int intra_op_parallelism_threads = 0;
  /// Prints each node's device to stderr when a run's plan is built.
  bool log_device_placement = false;
  /// Graph optimizations applied to each pruned plan.
  capture::Options optimizer = {};
};

/// Options for one run.
struct RunOptions {
  /// Record per-node wall time and output shapes into RunMetadata (runs node by node, slower).
  bool trace = false;
};

/// One node's part of a traced run.
struct NodeStats {
  std::string name;    ///< node name
  std::string op;      ///< op name ("add", "const", "variable", ...)
  std::string device;  ///< "/cpu:0", "/gpu:0"
  Shape shape;         ///< output shape (empty for operations)
  DType dtype = DType::float32;
  double start_us = 0;  ///< from the start of the run
  double wall_us = 0;
};

/// What a traced run recorded.
struct RunMetadata {
  std::vector<NodeStats> step_stats;
  /// Chrome trace JSON ("traceEvents"), opened by chrome://tracing and Perfetto.
  std::string chrome_trace() const;
  /// Writes chrome_trace() to `path`.
  void write_chrome_trace(const std::string& path) const;
};

/// Feeds: pairs of (graph tensor to replace, value).
using FeedDict = std::vector<std::pair<Tensor, Tensor>>;

class Session;

/// A prepared run (tf Session.make_callable): fetches and feed keys fixed, the
/// pruned plan built once per feed signature. Call with the feed values in order.
class Callable {
 public:
  std::vector<Tensor> operator()(const std::vector<Tensor>& feed_values) const;
  struct Impl;
  explicit Callable(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<Impl> impl_;
};

/// Runs a graph (tf.Session). Holds the variables' values; `run` is thread-safe.
class Session {
 public:
  explicit Session(const Graph& g, const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The single-fetch overloads are templates so that a braced list,
  // `sess.run({y}, feeds)`, always means the list overload (as `[y]` in TF).

  /// The value of one tensor (or of a tf::Variable).
  template <class T>
    requires(std::is_same_v<T, Tensor> || std::is_same_v<T, Variable>)
  Tensor run(const T& fetch, const FeedDict& feeds = {}) {
    return run_one(Fetch(fetch), feeds);
  }
  /// Runs an operation for its effect.
  template <class T>
    requires std::is_same_v<T, Operation>
  void run(const T& target, const FeedDict& feeds = {}) {
    run_one(Fetch(target), feeds);
  }
  /// Values of the fetches in order; an Operation's place holds an undefined Tensor.
  std::vector<Tensor> run(const std::vector<Fetch>& fetches, const FeedDict& feeds = {});
  /// As above; with `options.trace` it fills `metadata` (when not null).
  std::vector<Tensor> run(const std::vector<Fetch>& fetches, const FeedDict& feeds,
                          const RunOptions& options, RunMetadata* metadata);
  /// A prepared run of `fetches` with `feeds` as its arguments.
  Callable make_callable(const std::vector<Fetch>& fetches, const std::vector<Tensor>& feeds = {});
  /// The pruned plan of `fetches` for these example feeds as a capture::Graph
  /// (its inputs are the feeds; it reads this session's variables by reference),
  /// which saves and loads like any traced graph.
  capture::Graph to_capture(const std::vector<Tensor>& fetches, const FeedDict& example_feeds = {});
  /// Frees the plans and variable values; later runs raise ValueError.
  void close();
  const Graph& graph() const { return graph_; }

  const std::shared_ptr<detail::SessionState>& state() const { return s_; }

 private:
  Tensor run_one(const Fetch& fetch, const FeedDict& feeds);
  Graph graph_;
  std::shared_ptr<detail::SessionState> s_;
};

/// Names of the variables (default: all of the session's graph) not yet initialized in `sess`.
std::vector<std::string> report_uninitialized_variables(Session& sess,
                                                        const std::vector<Variable>& vars = {});

namespace train {
/// Saves and restores variable values (format: capture/compat/v1/checkpoint.md).
/// Each save also rewrites the state file "checkpoint" in the checkpoint's
/// directory, which names the newest checkpoint and the ones this Saver keeps
/// (read by latest_checkpoint). One thread at a time saves through a Saver.
class Saver {
 public:
  /// Saves `vars`. By default, in a graph scope: the graph's variables at
  /// construction (as TF; ValueError when it has none), so variables made later
  /// (an optimizer's slots) are not saved; outside a scope: every variable of
  /// the session's graph at each save and restore. Keeps the `max_to_keep`
  /// newest checkpoints it wrote and deletes older ones (5 as TF; 0 or nullopt
  /// keeps all, and then the state file lists only the newest); ValueError when negative.
  explicit Saver(std::vector<Variable> vars = {}, std::optional<int> max_to_keep = 5);
  /// Saves each variable under its key instead of its own name (TF's var_list
  /// dict), so a restore can load values saved under other names, e.g. an
  /// ExponentialMovingAverage's variables_to_restore(); ValueError when empty.
  /// A template so that `Saver({}, n)` keeps meaning the overload above.
  template <class M>
    requires std::is_same_v<M, std::map<std::string, Variable>>
  explicit Saver(const M& var_list, std::optional<int> max_to_keep = 5) : Saver(var_list, max_to_keep, 0) {}
  /// Writes the values the variables hold in `sess` to `path`; returns `path`.
  /// ValueError when `path` is named "checkpoint" (the state file's name).
  std::string save(Session& sess, const std::string& path);
  /// Writes them to "<path>-<step>", the step being the value `global_step` (a
  /// 0-d integer variable) holds in `sess`; returns that path. An undefined
  /// Variable (get_global_step() found none) saves to `path` itself.
  std::string save(Session& sess, const std::string& path, const Variable& global_step);
  /// Writes them to "<path>-<global_step>"; returns that path.
  std::string save(Session& sess, const std::string& path, int64_t global_step);
  /// Reads the values into `sess` (they count as initialized); a variable missing
  /// from the file or of another dtype/shape raises ValueError naming it.
  void restore(Session& sess, const std::string& path) const;
  /// The checkpoints this Saver keeps, oldest first (TF's last_checkpoints).
  const std::vector<std::string>& last_checkpoints() const { return last_; }

 private:
  Saver(const std::map<std::string, Variable>& var_list, std::optional<int> max_to_keep, int);
  std::string write(Session& sess, const std::string& path);
  std::vector<Variable> vars_;
  std::vector<std::string> names_;  // the checkpoint's names, one per var; empty: the variables' own
  int max_to_keep_ = 5;
  std::vector<std::string> last_;
};
}  // namespace train

}  // namespace ember::compat::v1

// Gradients and optimizers (tf::gradients, tf::train::*Optimizer).
#include <ember/compat/v1/train.h>
// Variable scopes, get_variable, initializers, tf::layers::dense.
#include <ember/compat/v1/layers.h>
