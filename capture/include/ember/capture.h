#pragma once
// Graph capture: record the eager calls of a function into a graph, optimize
// it (dead code, common subexpressions, constant folding, elementwise fusion,
// memory planning) and replay it much faster than the eager calls.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include <ember/tensor.h>
#include <ember/variable.h>

namespace ember::capture {

/// Which passes run on a traced graph; each can be switched off.
struct Options {
  bool dce = true;          ///< drop nodes no output or assignment needs
  bool cse = true;          ///< merge identical nodes
  bool const_fold = true;   ///< evaluate nodes whose inputs are all constants
  bool fuse = true;         ///< one kernel (one pass over memory) per elementwise chain/tree,
                            ///< and a bias add folded into the matmul before it (addmm)
  bool memory_plan = true;  ///< reuse intermediate buffers once their last reader ran
  /// A graph whose work is all on one GPU replays as a CUDA graph: its
  /// kernels are recorded once and then launched with one call per replay.
  bool cuda_graphs = true;
};

namespace detail {
struct Compiled;
}

/// A traced, optimized computation. Cheap to copy (shared); `run` is thread-safe.
class Graph {
 public:
  Graph() = default;
  /// Runs the graph; inputs must match the traced shapes, dtypes and devices.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) const;
  /// The optimized graph, one line per node ("%3 = add(%1, %2) : float32[4]").
  std::string str() const;
  /// The graph as traced, before any pass.
  std::string traced_str() const;
  /// Graphviz DOT of the optimized graph, shapes on the edges.
  std::string dot() const;
  /// Writes the traced graph and its constants (format: capture/serialize/format.md).
  void save(const std::string& path) const;
  /// Reads a graph written by save(); a corrupt or hostile file raises ValueError.
  static Graph load(const std::string& path, const Options& options = {});
  /// Nodes in the optimized graph (inputs and constants included).
  int num_nodes() const;
  /// Optimized-graph nodes whose op is `name` ("add", "fused", "constant", "input", ...).
  int count(std::string_view name) const;
  /// Number of graph inputs.
  int num_inputs() const;
  /// The Variables the graph reads or writes (by reference).
  std::vector<Variable> variables() const;
  bool defined() const { return static_cast<bool>(impl_); }

  explicit Graph(std::shared_ptr<const detail::Compiled> impl) : impl_(std::move(impl)) {}
  const detail::Compiled& impl() const;

 private:
  std::shared_ptr<const detail::Compiled> impl_;
};

namespace detail {

using ListFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
/// Runs fn(inputs) eagerly while recording; returns the graph and fn's eager outputs.
std::pair<Graph, std::vector<Tensor>> trace_list(const ListFn& fn, const std::vector<Tensor>& inputs,
                                                 const std::vector<std::string>& names,
                                                 const Options& options);

/// Thrown by a replay whose guard fails (the traced code branched on a host value).
struct GuardFailed {
  std::string what;
};

template <class R>
struct Result;
template <>
struct Result<Tensor> {
  static std::vector<Tensor> to_list(const Tensor& t) { return {t}; }
  static Tensor from_list(std::vector<Tensor>&& v) { return std::move(v.at(0)); }
  static std::string structure(const Tensor&) { return "tensor"; }
};
template <>
struct Result<std::vector<Tensor>> {
  static std::vector<Tensor> to_list(const std::vector<Tensor>& v) { return v; }
  static std::vector<Tensor> from_list(std::vector<Tensor>&& v) { return std::move(v); }
  static std::string structure(const std::vector<Tensor>& v) { return fmt::format("list[{}]", v.size()); }
};
template <class... Ts>
struct Result<std::tuple<Ts...>> {
  static_assert((std::is_same_v<Ts, Tensor> && ...), "capture: a traced function returns Tensors");
  static std::vector<Tensor> to_list(const std::tuple<Ts...>& t) {
    return std::apply([](const auto&... x) { return std::vector<Tensor>{x...}; }, t);
  }
  static std::tuple<Ts...> from_list(std::vector<Tensor>&& v) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::tuple<Ts...>{std::move(v.at(I))...};
    }(std::index_sequence_for<Ts...>{});
  }
  static std::string structure(const std::tuple<Ts...>&) { return fmt::format("tuple[{}]", sizeof...(Ts)); }
};

/// One argument's part of a cache key, and its text for retrace explanations.
struct ArgSig {
  std::string name;
  std::string text;  // "float32[2,3]@cpu", "3", "true", ...
  bool tensor = false;
};

/// The non-template half of capture::function: the cache, the retrace log.
class FunctionCore {
 public:
  FunctionCore(Options o, std::vector<std::string> names) : opts_(o), names_(std::move(names)) {}
  /// Replays a cached graph for `sig` or traces `eager` (which calls the function).
  std::vector<Tensor> call(std::vector<ArgSig>& sig, const std::vector<Tensor>& tensors,
                           const std::function<std::vector<Tensor>(std::string*)>& eager);
  int trace_count() const;
  std::vector<std::string> retrace_reasons() const;
  Graph graph_for(std::vector<ArgSig>& sig) const;
  std::string arg_name(std::size_t i) const;

 private:
  struct Entry {
    Graph graph;
    std::string structure;
  };
  std::string key_of(const std::vector<ArgSig>& sig) const;
  mutable std::mutex mu_;
  Options opts_;
  std::vector<std::string> names_;
  std::vector<std::pair<std::string, std::vector<Entry>>> cache_;  // key -> graphs (newest last)
  std::vector<ArgSig> last_sig_;
  std::vector<std::string> reasons_;
  int traces_ = 0;
  std::atomic<int> retrace_streak_{0};
  bool warned_ = false;
};

template <class T>
void add_arg(const T& a, std::size_t i, FunctionCore& core, std::vector<ArgSig>& sig,
             std::vector<Tensor>& tensors) {
  using D = std::decay_t<T>;
  std::string text;
  if constexpr (std::is_same_v<D, Tensor>) {
    text = fmt::format("{}{}@{}", dtype_name(a.dtype()), shape_str(a.shape()), a.device().str());
    for (std::size_t k = 0; k < tensors.size(); ++k)
      if (tensors[k].is_same(a)) text += fmt::format(" (same tensor as tensor arg {})", k);
    tensors.push_back(a);
  } else if constexpr (std::is_same_v<D, bool>) {
    text = a ? "true" : "false";
  } else if constexpr (std::is_enum_v<D>) {
    text = fmt::format("enum {}", static_cast<long long>(a));
  } else if constexpr (std::is_arithmetic_v<D>) {
    text = fmt::format("{}", a);
  } else {
    static_assert(std::is_same_v<D, Tensor> || std::is_arithmetic_v<D> || std::is_enum_v<D>,
                  "capture::function: arguments must be Tensors, numbers, bools or enums");
  }
  sig.push_back({core.arg_name(i), std::move(text), std::is_same_v<D, Tensor>});
}

}  // namespace detail

/// Traces `fn` once on `example_inputs` (Tensors) and returns the optimized graph.
template <class F, class... Ts>
Graph trace(F&& fn, const Ts&... example_inputs) {
  static_assert((std::is_same_v<Ts, Tensor> && ...), "capture::trace: example inputs are Tensors");
  using R = std::invoke_result_t<F&, const Ts&...>;
  detail::ListFn lf = [&](const std::vector<Tensor>& in) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return detail::Result<R>::to_list(fn(in[I]...));
    }(std::index_sequence_for<Ts...>{});
  };
  return detail::trace_list(lf, {example_inputs...}, {}, Options{}).first;
}

/// tf.function / mlx.compile for ember: a cache of traced graphs keyed by the
/// inputs' shapes, dtypes and devices and the values of non-tensor arguments.
template <class F>
class Function {
 public:
  explicit Function(F fn, Options options = {}, std::vector<std::string> arg_names = {})
      : fn_(std::move(fn)),
        core_(std::make_shared<detail::FunctionCore>(options, std::move(arg_names))) {}

  /// Replays the graph for these arguments, tracing first on a cache miss.
  template <class... Args>
  auto operator()(const Args&... args) {
    using R = std::decay_t<std::invoke_result_t<F&, const Args&...>>;
    std::vector<detail::ArgSig> sig;
    std::vector<Tensor> tensors;
    std::size_t i = 0;
    (detail::add_arg(args, i++, *core_, sig, tensors), ...);
    std::vector<Tensor> out = core_->call(sig, tensors, [&](std::string* structure) {
      R r = fn_(args...);
      *structure = detail::Result<R>::structure(r);
      return detail::Result<R>::to_list(r);
    });
    return detail::Result<R>::from_list(std::move(out));
  }
  /// How many times the function was traced.
  int trace_count() const { return core_->trace_count(); }
  /// Why each trace after the first happened ("x: float32[1] -> float32[2]").
  std::vector<std::string> retrace_reasons() const { return core_->retrace_reasons(); }
  /// The graph used for these arguments (tracing if needed is not done: throws if absent).
  template <class... Args>
  Graph graph_for(const Args&... args) const {
    std::vector<detail::ArgSig> sig;
    std::vector<Tensor> tensors;
    std::size_t i = 0;
    (detail::add_arg(args, i++, *core_, sig, tensors), ...);
    return core_->graph_for(sig);
  }

 private:
  F fn_;
  std::shared_ptr<detail::FunctionCore> core_;
};

/// Wraps `fn` (taking Tensors and numbers, returning a Tensor, a tuple or a vector of Tensors).
template <class F>
Function<std::decay_t<F>> function(F&& fn, Options options = {},
                                   std::vector<std::string> arg_names = {}) {
  return Function<std::decay_t<F>>(std::forward<F>(fn), options, std::move(arg_names));
}

}  // namespace ember::capture
