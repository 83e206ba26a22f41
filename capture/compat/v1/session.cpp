// Sessions: each distinct (fetches, feeds, feed shapes) gets a plan, built
// once: the pruned subgraph, placed, its shapes inferred from the concrete
// feeds, lowered to a capture GraphIR (the IR a trace makes) and compiled by
// the capture layer (passes, executor with memory plan). A run then costs a
// cache lookup, the feed checks and one executor replay.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <unordered_map>

#include <fmt/format.h>

#include <ember/compat/v1.h>
#include <ember/ember.h>

#include "compat/v1/state.h"
#include "compiled.h"
#include "dispatch/dispatcher.h"
#include "dispatch/schema.h"

namespace ember::compat::v1 {

using dispatch::OpId;

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

// The one place that says whether a GPU can take nodes.
bool gpu_present() { return ember::cuda_available(); }

// TF's name of a device: "/cpu:0", "/gpu:1".
std::string tf_device_name(Device d) { return d.is_cpu() ? "/cpu:0" : fmt::format("/gpu:{}", d.index); }

// The device a normalized name ("/cpu:0", "/gpu:N") stands for, when this
// machine has it.
std::optional<Device> device_named(const std::string& dev) {
  if (dev == "/cpu:0") return Device::cpu();
  int index = 0;  // "/gpu:99999999999" is a GPU this machine lacks, not a parse error
  const auto [end, ec] = std::from_chars(dev.data() + 5, dev.data() + dev.size(), index);
  if (ec != std::errc() || end != dev.data() + dev.size()) return std::nullopt;
  if (!gpu_present() || index >= ember::cuda_device_count()) return std::nullopt;
  return Device::cuda(index);
}

// Re-throws the current ember error with `prefix` in front, keeping its type.
[[noreturn]] void rethrow_with(const std::string& prefix) {
  rethrow_edited([&](const std::string& what) { return prefix + what; });
}

Tensor stand_in(const Shape& shape, DType dtype) {
  auto* impl = new ember::detail::TensorImpl;
  ember::detail::Ref<ember::detail::TensorImpl> ref(impl);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = Device::cpu();
  impl->refresh();
  return Tensor(std::move(ref));
}

std::string quoted_tensor(const Node& n) { return fmt::format("\"{}:0\" ({})", n.name, GraphState::type_str(n)); }

}  // namespace

/// What a run needs to know about one feed without touching the graph.
struct FeedInfo {
  std::string name;
  Shape shape;  // static, -1 unknown
  DType dtype;
  std::string type;
};

struct FetchRef {
  int node;
  bool is_op;
};

struct Plan {
  std::shared_ptr<const capture::detail::Compiled> compiled;
  std::vector<int> out_pos;  // per fetch: index into the executor's outputs, -1 for an operation
  std::vector<FeedInfo> feeds;
  std::vector<std::pair<std::shared_ptr<SessVar>, std::string>> reads;  // (var, reading node's name)
  std::vector<std::shared_ptr<SessVar>> writes;
  // For traced runs: per lowered node, the shim node it came from.
  std::vector<std::string> origin_name, origin_op, origin_device;
  // Note [Lazy cond]. A dispatcher (the fetches reach a tf.cond; nothing is
  // compiled): the conds to decide, each one's pred as a feed index or a
  // constant (-1 when neither), and the run it stands for.
  std::vector<int> conds, cond_feed, loops;  // loops: the tf.while_loops the fetches reach (Note [While loops])
  std::vector<int8_t> cond_const;
  std::vector<FetchRef> fetch_refs;
  std::vector<int> feed_nodes;
  // A phase: its first outputs are the preds of `decides`, the next the
  // values of `forwards` (later steps are fed them), then per loop of `runs`
  // its inits and captured values; `ran`: its nodes without an output (later
  // steps skip them).
  std::vector<int> decides, forwards, runs, ran;
  bool dispatcher() const { return !conds.empty() || !loops.empty(); }
};

struct KeyHash {
  std::size_t operator()(const std::vector<int64_t>& k) const {
    uint64_t h = 1469598103934665603ull;
    for (int64_t v : k) h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull;
    return static_cast<std::size_t>(h);
  }
};

struct SessionState {
  std::shared_ptr<GraphState> g;
  SessionOptions opts;
  std::string default_device;
  std::mutex mu;
  std::atomic<bool> closed{false};
  std::vector<std::shared_ptr<SessVar>> vars;  // by graph variable index
  std::unordered_map<std::vector<int64_t>, std::shared_ptr<Plan>, KeyHash> plans;
  std::vector<std::shared_ptr<Plan>> single;  // one tensor fetched, nothing fed: by node id

  void check_open(const char* who) const {
    if (closed.load(std::memory_order_acquire))
      throw ValueError(fmt::format("{}: the session is closed", who));
  }
  /// Session value of graph variable `index` (made on first use, on the
  /// variable's device). Caller holds mu.
  std::shared_ptr<SessVar> var(int index);
  /// The device name node `n` asks for: its device scope's, else the session's.
  const std::string& device_of(const Node& n) const { return n.device.empty() ? default_device : n.device; }
  /// Where node `n` of the graph runs (Note [Placement]); DeviceError when it
  /// asks for a GPU this machine lacks and soft placement is off.
  Device placement(const Node& n) const;
  /// The node id of a fetch or feed key; ValueError when it is not a tensor of
  /// this graph, or one inside a while_loop (Note [While loops]).
  int node_of(const Tensor& t, const char* who, const char* what) const;
  [[noreturn]] void throw_in_loop(int node, const char* who, const char* what) const;
  FetchRef fetch_of(const Fetch& f, const char* who = "Session::run") const;
  /// The plan of fetching node `node`'s tensor with nothing fed (plan_for's, cached by node).
  std::shared_ptr<Plan> single_plan(int node);
  std::shared_ptr<Plan> plan_for(const std::vector<FetchRef>& fetches, const std::vector<int>& feed_nodes,
                                 const std::vector<Tensor>& feeds);
  /// How build() treats tf.conds (Note [Lazy cond]): `dispatch` returns a
  /// dispatcher when the fetches reach one; `step` lowers the decided conds
  /// (`taken`) to their taken branch and returns a phase plan while a reached
  /// cond is undecided; `fixed` lowers the decided ones and runs both
  /// branches of the others.
  enum class Mode { dispatch, step, fixed };
  std::shared_ptr<Plan> build(const std::vector<FetchRef>& fetches, const std::vector<int>& feed_nodes,
                              const std::vector<Tensor>& feeds, Mode mode = Mode::fixed,
                              const std::vector<int8_t>* taken = nullptr, const std::vector<int>* done = nullptr);
  /// Runs plan_for's plan: a dispatcher decides its conds and runs its loops first.
  /// A traced run times its nodes from `t0` (default: now), as execute does.
  std::vector<Tensor> run_plan(const Plan& p, const std::vector<Tensor>& feeds, bool trace, RunMetadata* md,
                               Clock::time_point t0 = {});
  /// Runs a while_loop from `inputs` (its inits, then its captured values); its last variables.
  std::vector<Tensor> run_loop(const detail::LoopInfo& li, std::span<const Tensor> inputs, bool trace,
                               RunMetadata* md, Clock::time_point t0);
  /// Runs a plan (not a dispatcher). A traced run times its nodes from `t0`
  /// (the run's start; default: now).
  std::vector<Tensor> execute(const Plan& p, const std::vector<Tensor>& feeds, bool trace, RunMetadata* md,
                              Clock::time_point t0 = {});
};

std::shared_ptr<SessVar> SessionState::var(int index) {
  if (static_cast<std::size_t>(index) >= vars.size()) vars.resize(static_cast<std::size_t>(index) + 1);
  auto& sv = vars[static_cast<std::size_t>(index)];
  if (!sv) {
    std::lock_guard<std::recursive_mutex> lk(g->mu);
    const VarInfo& vi = g->vars.at(static_cast<std::size_t>(index));
    sv = std::make_shared<SessVar>();
    sv->name = vi.name;
    if (vi.external) {
      sv->state = vi.external;
      sv->initialized = true;
    } else {
      // A variable lives where its node is placed; without that GPU (soft
      // placement, or a run that will refuse the node) on the CPU.
      const Node& vn = g->nodes.at(static_cast<std::size_t>(vi.node));
      const Device d = device_named(device_of(vn)).value_or(Device::cpu());
      sv->state = ember::Variable(ember::empty(vi.shape, vi.dtype, d), vi.name).state();
    }
  }
  return sv;
}

// Note [Placement]: constants and fed values are data on the host; a node
// runs on its device scope's device, else the session's. A GPU node goes to
// that GPU when it exists, else to the CPU under allow_soft_placement, else
// the run fails naming it. Values cross devices through to_device nodes (a
// 0-d host value joins an elementwise op by value beside a GPU input);
// creation ops (zeros, ones, random_normal) make their value on their node's
// device; fetches come back to the host, as TF1 returns host arrays.
Device SessionState::placement(const Node& n) const {
  if (n.kind == Kind::constant || n.kind == Kind::placeholder) return Device::cpu();
  const std::string& dev = device_of(n);
  if (auto d = device_named(dev)) return *d;
  if (opts.allow_soft_placement) return Device::cpu();
  if (!gpu_present())
    throw DeviceError(fmt::format("Session::run: node \"{}\" is placed on {} but no GPU is available; "
                                  "set SessionOptions::allow_soft_placement to run it on the CPU",
                                  n.name, dev));
  throw DeviceError(fmt::format("Session::run: node \"{}\" is placed on {} but this machine has {} GPU(s); "
                                "set SessionOptions::allow_soft_placement to run it on the CPU",
                                n.name, dev, ember::cuda_device_count()));
}

int SessionState::node_of(const Tensor& t, const char* who, const char* what) const {
  if (!t.defined()) throw ValueError(fmt::format("{}: a {} is an undefined tensor", who, what));
  const NodeSymbol* s = symbol_of(t);
  if (!s) throw ValueError(fmt::format("{}: a {} is an eager tensor, not a tensor of the session's graph", who, what));
  if (s->graph_id != g->id)
    throw ValueError(fmt::format("{}: {} {} is from another graph than the session's", who, what, s->describe()));
  if (s->loop >= 0) throw_in_loop(s->node, who, what);
  return s->node;
}

void SessionState::throw_in_loop(int node, const char* who, const char* what) const {
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  const Node& n = g->nodes[static_cast<std::size_t>(node)];
  throw ValueError(fmt::format("{}: {} \"{}\" is inside while_loop \"{}\"; only the loop's outputs can be used "
                               "outside it",
                               who, what, n.name, g->loops[static_cast<std::size_t>(n.loop)].name));
}

FetchRef SessionState::fetch_of(const Fetch& f, const char* who) const {
  if (f.op.defined()) {
    if (f.op.graph_state() != g)
      throw ValueError(fmt::format("{}: fetch \"{}\" is an operation of another graph than the session's", who,
                                   f.op.name()));
    bool in_loop = false;
    {
      std::lock_guard<std::recursive_mutex> lk(g->mu);
      in_loop = g->nodes[static_cast<std::size_t>(f.op.node())].loop >= 0;
    }
    if (in_loop) throw_in_loop(f.op.node(), who, "fetch");
    return {f.op.node(), true};
  }
  return {node_of(f.tensor, who, "fetch"), false};
}

bool holds_exactly(Scalar v, DType to) {
  const double d = v.to_double();
  const int64_t i = v.is_floating() ? 0 : v.to_int();
  if (!is_floating(to)) {
    double lo = -9223372036854775808.0, hi = 9223372036854775807.0;  // int64
    if (to == DType::int32) {
      lo = std::numeric_limits<int32_t>::min();
      hi = std::numeric_limits<int32_t>::max();
    } else if (to == DType::uint8) {
      lo = 0;
      hi = 255;
    }
    if (v.is_floating()) return std::isfinite(d) && d == std::trunc(d) && d >= lo && d < hi + 1;
    return to == DType::int64 || (static_cast<double>(i) >= lo && static_cast<double>(i) <= hi);
  }
  if (to == DType::float32) {
    // Range checks first: an out-of-range conversion is undefined behaviour.
    if (v.is_floating())
      return std::isnan(d) || std::isinf(d) ||
             (std::abs(d) <= std::numeric_limits<float>::max() && static_cast<double>(static_cast<float>(d)) == d);
    return std::abs(static_cast<double>(i)) < 9.2e18 && static_cast<int64_t>(static_cast<float>(i)) == i;
  }
  // float64 from an integer
  return v.is_floating() ||
         (std::abs(static_cast<double>(i)) < 9.2e18 && static_cast<int64_t>(static_cast<double>(i)) == i);
}

namespace {

// Converts a feed to the node's dtype when no value changes; else DTypeError.
Tensor convert_feed(const FeedInfo& fi, const Tensor& v) {
  const DType from = v.dtype(), to = fi.dtype;
  auto fail = [&](const std::string& what) {
    throw DTypeError(fmt::format("Session::run: feed for {}: {}", fi.type, what));
  };
  if (from == DType::bool_ || to == DType::bool_ || itemsize(to) == 2 || itemsize(from) == 2)
    fail(fmt::format("a {} value cannot be fed for a {} tensor", dtype_name(from), dtype_name(to)));
  const std::vector<double> vals = v.to_vector<double>();
  std::vector<int64_t> ivals;
  if (!is_floating(from)) ivals = v.to_vector<int64_t>();
  for (std::size_t i = 0; i < vals.size(); ++i) {
    if (!holds_exactly(is_floating(from) ? Scalar(vals[i]) : Scalar(ivals[i]), to))
      fail(fmt::format("the {} value {} (at flat index {}) cannot be represented exactly as {}", dtype_name(from),
                       is_floating(from) ? fmt::format("{}", vals[i]) : fmt::format("{}", ivals[i]), i,
                       dtype_name(to)));
  }
  return ember::cast(v, to);
}

Tensor check_feed(const FeedInfo& fi, const Tensor& v) {
  if (!v.defined()) throw ValueError(fmt::format("Session::run: the value fed for {} is undefined", fi.type));
  if (!v.impl().storage)
    throw ValueError(fmt::format("Session::run: the value fed for {} is a graph tensor; feed an eager tensor",
                                 fi.type));
  if (!v.device().is_cpu())
    throw DeviceError(fmt::format("Session::run: the value fed for {} is on {}; feed CPU tensors", fi.type,
                                  v.device().str()));
  bool ok = v.dim() == static_cast<int64_t>(fi.shape.size());
  for (std::size_t i = 0; ok && i < fi.shape.size(); ++i) ok = fi.shape[i] < 0 || fi.shape[i] == v.shape()[i];
  if (!ok)
    throw ShapeError(fmt::format("Session::run: cannot feed a value of shape {} for {}", shape_str(v.shape()),
                                 fi.type));
  return v.dtype() == fi.dtype ? v : convert_feed(fi, v);
}

// `extra`: entries the caller appends after (reserved with the rest).
void push_key(std::vector<int64_t>& key, const std::vector<FetchRef>& fetches, const std::vector<int>& feed_nodes,
              const std::vector<Tensor>& feeds, std::size_t extra = 0) {
  std::size_t n = key.size() + 2 + fetches.size() + 3 * feed_nodes.size() + extra;
  for (const Tensor& t : feeds)
    if (t.defined()) n += t.shape().size();
  key.reserve(n);  // one allocation: this runs on every run with feeds
  key.push_back(static_cast<int64_t>(fetches.size()));
  for (const FetchRef& f : fetches) key.push_back(2 * static_cast<int64_t>(f.node) + f.is_op);
  key.push_back(static_cast<int64_t>(feed_nodes.size()));
  for (std::size_t i = 0; i < feed_nodes.size(); ++i) {
    const Tensor& t = feeds[i];
    key.push_back(feed_nodes[i]);
    key.push_back(t.defined() ? static_cast<int64_t>(t.dtype()) : -1);
    key.push_back(t.defined() ? t.dim() : -1);
    if (t.defined())
      for (int64_t d : t.shape()) key.push_back(d);
  }
}

}  // namespace

std::shared_ptr<Plan> SessionState::single_plan(int node) {
  {
    std::lock_guard<std::mutex> lk(mu);
    check_open("Session::run");
    const auto id = static_cast<std::size_t>(node);
    if (id < single.size() && single[id]) return single[id];
  }
  return plan_for({FetchRef{node, false}}, {}, {});
}

std::shared_ptr<Plan> SessionState::plan_for(const std::vector<FetchRef>& fetches, const std::vector<int>& feed_nodes,
                                             const std::vector<Tensor>& feeds) {
  const bool single_fetch = feed_nodes.empty() && fetches.size() == 1 && !fetches[0].is_op;
  std::vector<int64_t> key;
  std::lock_guard<std::mutex> lk(mu);
  check_open("Session::run");
  if (single_fetch) {
    const auto id = static_cast<std::size_t>(fetches[0].node);
    if (id < single.size() && single[id]) return single[id];
  } else {
    push_key(key, fetches, feed_nodes, feeds);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
  }
  auto p = build(fetches, feed_nodes, feeds, Mode::dispatch);
  if (single_fetch) {
    const auto id = static_cast<std::size_t>(fetches[0].node);
    if (id >= single.size()) single.resize(id + 1);
    single[id] = p;
  } else {
    plans.emplace(std::move(key), p);
  }
  return p;
}

std::vector<Tensor> SessionState::run_plan(const Plan& p, const std::vector<Tensor>& feeds, bool trace,
                                           RunMetadata* md, Clock::time_point t0) {
  if (!p.dispatcher()) return execute(p, feeds, trace, md, t0);
  // Note [Lazy cond]: decide the conds and run the loops, a phase at a time, then run the rest.
  std::vector<int8_t> taken(p.cond_const);
  for (std::size_t k = 0; k < p.conds.size(); ++k)
    if (p.cond_feed[k] >= 0) {
      const Tensor& v = feeds[static_cast<std::size_t>(p.cond_feed[k])];
      taken[static_cast<std::size_t>(p.conds[k])] =
          check_feed(p.feeds[static_cast<std::size_t>(p.cond_feed[k])], v).item<bool>() ? 1 : 0;
    }
  std::vector<int> nodes = p.feed_nodes, done;
  std::vector<Tensor> values = feeds;
  if (trace && t0 == Clock::time_point{}) t0 = Clock::now();  // the phases' traces share one clock
  for (;;) {
    std::vector<int64_t> key;
    push_key(key, p.fetch_refs, nodes, values, 2 + taken.size() + done.size());
    key.push_back(-2);
    key.insert(key.end(), taken.begin(), taken.end());
    // What earlier phases ran: a step fed the same values by the caller has not run it.
    key.push_back(-3);
    key.insert(key.end(), done.begin(), done.end());
    std::shared_ptr<Plan> step;
    {
      std::lock_guard<std::mutex> lk(mu);
      check_open("Session::run");
      if (auto it = plans.find(key); it != plans.end()) {
        step = it->second;
      } else {
        step = build(p.fetch_refs, nodes, values, Mode::step, &taken, &done);
        plans.emplace(std::move(key), step);
      }
    }
    std::vector<Tensor> outs = execute(*step, values, trace, md, t0);
    if (step->decides.empty() && step->runs.empty()) return outs;
    for (std::size_t k = 0; k < step->decides.size(); ++k)
      taken[static_cast<std::size_t>(step->decides[k])] = outs[k].item<bool>() ? 1 : 0;
    std::size_t k = step->decides.size();
    for (int id : step->forwards) {
      nodes.push_back(id);
      values.push_back(std::move(outs[k++]));
    }
    done.insert(done.end(), step->ran.begin(), step->ran.end());
    for (int loop : step->runs) {
      detail::LoopInfo li;
      {
        std::lock_guard<std::recursive_mutex> lk(g->mu);
        li = g->loops[static_cast<std::size_t>(loop)];
      }
      const std::size_t n_in = li.inits.size() + li.captured.size();
      std::vector<Tensor> last = run_loop(li, std::span<const Tensor>(outs).subspan(k, n_in), trace, md, t0);
      k += n_in;
      nodes.insert(nodes.end(), li.exits.begin(), li.exits.end());
      values.insert(values.end(), std::make_move_iterator(last.begin()), std::make_move_iterator(last.end()));
    }
  }
}

std::vector<Tensor> SessionState::run_loop(const detail::LoopInfo& li, std::span<const Tensor> inputs, bool trace,
                                           RunMetadata* md, Clock::time_point t0) {
  // Note [While loops]: cond's plan, then body's while cond gives true.
  std::vector<Tensor> vars(inputs.begin(), inputs.begin() + static_cast<std::ptrdiff_t>(li.inits.size()));
  const std::span<const Tensor> captured = inputs.subspan(li.inits.size());
  std::vector<int> feed_nodes = li.vars;
  feed_nodes.insert(feed_nodes.end(), li.captured.begin(), li.captured.end());
  const std::vector<FetchRef> cond_fetch{{li.pred, false}};
  std::vector<FetchRef> body_fetch;
  for (int o : li.outs) body_fetch.push_back({o, false});
  // The plans are looked up again only when a variable's dtype or shape changes.
  std::shared_ptr<Plan> cond_plan, body_plan;
  auto same_types = [](const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i].dtype() != b[i].dtype() || a[i].shape() != b[i].shape()) return false;
    return true;
  };
  std::vector<Tensor> planned_for;
  for (int64_t it = 0; li.maximum_iterations < 0 || it < li.maximum_iterations; ++it) {
    check_open("Session::run");  // close() ends a loop between iterations
    std::vector<Tensor> values = vars;
    values.insert(values.end(), captured.begin(), captured.end());
    if (!cond_plan || !same_types(vars, planned_for)) {
      cond_plan = plan_for(cond_fetch, feed_nodes, values);
      body_plan.reset();
      planned_for = vars;
    }
    if (!run_plan(*cond_plan, values, trace, md, t0)[0].item<bool>()) break;
    if (!body_plan) body_plan = plan_for(body_fetch, feed_nodes, values);
    std::vector<Tensor> next = run_plan(*body_plan, values, trace, md, t0);
    for (std::size_t i = 0; i < next.size(); ++i)
      if (!detail::shapes_compatible(next[i].shape(), li.shapes[i]))
        throw ValueError(fmt::format("Session::run: while_loop \"{}\": body output {} has shape {} in iteration {}, "
                                     "which loop variable {} of shape {} does not admit; give shape_invariants (-1 "
                                     "for the dims that change) to let it change",
                                     li.name, i, shape_str(next[i].shape()), it, i, shape_str(li.shapes[i])));
    vars = std::move(next);
  }
  return vars;
}

std::shared_ptr<Plan> SessionState::build(const std::vector<FetchRef>& fetches, const std::vector<int>& feed_nodes,
                                          const std::vector<Tensor>& raw_feeds, Mode mode,
                                          const std::vector<int8_t>* taken, const std::vector<int>* done) {
  std::lock_guard<std::recursive_mutex> glk(g->mu);
  const std::size_t n_nodes = g->nodes.size();
  auto plan = std::make_shared<Plan>();
  std::vector<int> fed(n_nodes, -1);
  std::vector<Tensor> feeds(raw_feeds.size());
  for (std::size_t i = 0; i < feed_nodes.size(); ++i) {
    const Node& n = g->nodes[static_cast<std::size_t>(feed_nodes[i])];
    if (fed[static_cast<std::size_t>(feed_nodes[i])] >= 0)
      throw ValueError(fmt::format("Session::run: \"{}:0\" is fed twice", n.name));
    fed[static_cast<std::size_t>(feed_nodes[i])] = static_cast<int>(i);
    FeedInfo fi{n.name, n.shape, n.dtype, quoted_tensor(n)};
    feeds[i] = check_feed(fi, raw_feeds[i]);
    plan->feeds.push_back(std::move(fi));
  }
  // Prune: what the fetches need, stopping at fed tensors. Note [Lazy cond]:
  // a decided cond's merge needs only its taken branch's output; a guarded
  // assign in branches all taken needs no guard; nodes an earlier phase ran
  // without an output are skipped.
  const std::size_t n_conds = g->conds.size();
  std::vector<int8_t> lazy(n_conds, -1);  // per cond: the side taken, where the other branch is skipped
  if (taken)
    for (std::size_t c = 0; c < std::min(n_conds, taken->size()); ++c) lazy[c] = (*taken)[c];
  std::vector<char> skip(n_nodes, 0);
  if (done)
    for (int id : *done) skip[static_cast<std::size_t>(id)] = 1;
  auto taken_branch = [&](int b) {  // every branch from b out is one the run takes
    return !g->find_branch(
        b, [&](const detail::CondBranch& br) { return lazy[static_cast<std::size_t>(br.cond)] != (br.side ? 1 : 0); });
  };
  int blocked = -1;  // a cond whose merges the walk does not pass
  auto walk = [&](const std::vector<int>& roots, std::vector<char>& need) {
    need.assign(n_nodes, 0);
    std::vector<int> stack(roots);
    while (!stack.empty()) {
      const int id = stack.back();
      stack.pop_back();
      if (need[static_cast<std::size_t>(id)] || (skip[static_cast<std::size_t>(id)] && fed[static_cast<std::size_t>(id)] < 0))
        continue;
      need[static_cast<std::size_t>(id)] = 1;
      if (fed[static_cast<std::size_t>(id)] >= 0) continue;
      const Node& n = g->nodes[static_cast<std::size_t>(id)];
      const int8_t side = n.merge_of >= 0 ? lazy[static_cast<std::size_t>(n.merge_of)] : -1;
      if (n.merge_of >= 0 && n.merge_of == blocked) {
        // neither branch
      } else if (side >= 0) {
        stack.push_back(n.inputs[side ? 1 : 2]);
      } else if (n.guarded && taken_branch(n.branch)) {
        stack.push_back(n.inputs[0]);
      } else {
        for (int in : n.inputs) stack.push_back(in);
      }
      for (int c : n.control) stack.push_back(c);
      for (const auto& d : n.dims_of)
        if (d.first >= 0) stack.push_back(d.first);  // its shape is read when lowering
    }
  };
  // The lazy cond whose skipped branch holds branch b, or -1.
  auto skipped_by = [&](int b) {
    const detail::CondBranch* br = g->find_branch(b, [&](const detail::CondBranch& x) {
      const int8_t side = lazy[static_cast<std::size_t>(x.cond)];
      return side >= 0 && side != (x.side ? 1 : 0);
    });
    return br ? br->cond : -1;
  };
  std::vector<int> roots;
  for (const FetchRef& f : fetches) roots.push_back(f.node);
  std::vector<char> need;
  for (;;) {
    walk(roots, need);
    // A branch needed by another path than its cond's merges runs: its cond runs both.
    bool again = false;
    if (n_conds)
      for (std::size_t id = 0; id < n_nodes; ++id)
        if (need[id] && fed[id] < 0)
          if (const int c = skipped_by(g->nodes[id].branch); c >= 0) {
            lazy[static_cast<std::size_t>(c)] = -1;
            again = true;
          }
    if (!again) break;
  }
  // The conds the run reaches that are not decided yet, and the loops whose outputs it needs.
  std::vector<int> open, open_loops;
  if (mode != Mode::fixed && (n_conds || !g->loops.empty()))
    for (std::size_t id = 0; id < n_nodes; ++id) {
      if (!need[id] || fed[id] >= 0) continue;
      const int c = g->nodes[id].merge_of;
      if (c >= 0 && (!taken || (*taken)[static_cast<std::size_t>(c)] < 0) &&
          std::find(open.begin(), open.end(), c) == open.end())
        open.push_back(c);
      const int l = g->nodes[id].exit_of;
      if (l >= 0 && std::find(open_loops.begin(), open_loops.end(), l) == open_loops.end()) open_loops.push_back(l);
    }
  if (mode == Mode::dispatch && !open.empty()) {
    // A cond both of whose branches the run needs by other paths (the
    // nodes of tf::gradients through it) runs both whatever its pred: no
    // phase decides it.
    std::vector<int> deciding;
    std::vector<char> other;
    for (int c : open) {
      blocked = c;
      walk(roots, other);
      bool side_needed[2] = {false, false};
      for (std::size_t id = 0; id < n_nodes; ++id)
        if (other[id] && fed[id] < 0)
          if (const detail::CondBranch* br =
                  g->find_branch(g->nodes[id].branch, [&](const detail::CondBranch& x) { return x.cond == c; }))
            side_needed[br->side] = true;
      if (!side_needed[0] || !side_needed[1]) deciding.push_back(c);
    }
    blocked = -1;
    open = std::move(deciding);
  }
  if (mode == Mode::dispatch && (!open.empty() || !open_loops.empty())) {
    plan->loops = open_loops;
    plan->conds = open;
    plan->cond_const.assign(n_conds, -1);
    for (int c : open) {
      const int pred = g->conds[static_cast<std::size_t>(c)].pred;
      const Node& pn = g->nodes[static_cast<std::size_t>(pred)];
      plan->cond_feed.push_back(fed[static_cast<std::size_t>(pred)]);
      // A constant pred, or a placeholder_with_default of a constant not fed, is known now.
      const Node* known = &pn;
      if (pn.kind == Kind::placeholder && pn.with_default && fed[static_cast<std::size_t>(pn.inputs[0])] < 0)
        known = &g->nodes[static_cast<std::size_t>(pn.inputs[0])];
      if (fed[static_cast<std::size_t>(pred)] < 0 && known->kind == Kind::constant)
        plan->cond_const[static_cast<std::size_t>(c)] = known->value.item<bool>() ? 1 : 0;
    }
    plan->fetch_refs = fetches;
    plan->feed_nodes = feed_nodes;
    return plan;
  }
  if (mode == Mode::step && (!open.empty() || !open_loops.empty())) {
    // A phase: the preds of the open conds, and the inputs of the loops,
    // that need no other open cond or loop (nested ones are decided from the
    // outside in), and the values of the nodes it runs that later steps
    // read, so that those run once.
    auto is_open = [&](int c) { return std::find(open.begin(), open.end(), c) != open.end(); };
    auto in_open = [&](int b) {
      return g->find_branch(b, [&](const detail::CondBranch& br) { return is_open(br.cond); }) != nullptr;
    };
    auto pred_of = [&](int c) { return g->conds[static_cast<std::size_t>(c)].pred; };
    auto loop_inputs = [&](int l) {
      const detail::LoopInfo& li = g->loops[static_cast<std::size_t>(l)];
      std::vector<int> ins = li.inits;
      ins.insert(ins.end(), li.captured.begin(), li.captured.end());
      return ins;
    };
    // What must run before a loop: its inputs and what its outputs wait for
    // (control_dependencies around the while_loop, operations its body waits for).
    auto loop_roots = [&](int l) {
      std::vector<int> r = loop_inputs(l);
      const Node& exit0 = g->nodes[static_cast<std::size_t>(g->loops[static_cast<std::size_t>(l)].exits.front())];
      r.insert(r.end(), exit0.control.begin(), exit0.control.end());
      return r;
    };
    std::vector<char> mine;
    auto free_of_open = [&](const std::vector<int>& roots) {
      walk(roots, mine);
      for (std::size_t id = 0; id < n_nodes; ++id) {
        if (!mine[id] || fed[id] >= 0) continue;
        const Node& n = g->nodes[id];
        if ((n.merge_of >= 0 && is_open(n.merge_of)) || n.exit_of >= 0 || in_open(n.branch)) return false;
      }
      return true;
    };
    std::vector<int> decides, runs;
    for (int c : open)
      if (free_of_open({pred_of(c)})) decides.push_back(c);
    for (int l : open_loops) {
      const int exit0 = g->loops[static_cast<std::size_t>(l)].exits.front();
      if (!in_open(g->nodes[static_cast<std::size_t>(exit0)].branch) && free_of_open(loop_roots(l)))
        runs.push_back(l);
    }
    // None free (a branch's tensor read by another cond's pred): decide all
    // the conds, running both branches of those in the way.
    if (decides.empty() && runs.empty()) {
      if (!open.empty())
        decides = open;
      else
        runs = open_loops;
    }
    std::vector<int> pred_roots, roots;
    for (int c : decides) pred_roots.push_back(pred_of(c));
    roots = pred_roots;
    for (int l : runs) {
      const std::vector<int> r = loop_roots(l);
      roots.insert(roots.end(), r.begin(), r.end());
    }
    walk(roots, mine);
    std::vector<char> read_later(n_nodes, 0);
    for (const FetchRef& f : fetches) read_later[static_cast<std::size_t>(f.node)] = 1;  // an op's too: it ran
    for (std::size_t id = 0; id < n_nodes; ++id) {
      if (!need[id] || mine[id] || fed[id] >= 0) continue;
      const Node& n = g->nodes[id];
      for (int in : n.inputs) read_later[static_cast<std::size_t>(in)] = 1;
      for (int c : n.control) read_later[static_cast<std::size_t>(c)] = 1;
      for (const auto& d : n.dims_of)
        if (d.first >= 0) read_later[static_cast<std::size_t>(d.first)] = 1;
    }
    std::vector<int> forwards, ran;
    for (std::size_t id = 0; id < n_nodes; ++id) {
      if (!mine[id] || fed[id] >= 0) continue;
      const Node& n = g->nodes[id];
      if (!n.has_output)
        ran.push_back(static_cast<int>(id));
      else if (read_later[id] && n.kind != Kind::constant && n.kind != Kind::variable)
        forwards.push_back(static_cast<int>(id));
    }
    std::vector<FetchRef> phase_fetches;
    for (int pred : pred_roots) phase_fetches.push_back({pred, false});
    for (int id : forwards) phase_fetches.push_back({id, false});
    for (int l : runs)
      for (int id : loop_inputs(l)) phase_fetches.push_back({id, false});
    for (int l : runs)  // last: an operation's place holds no value
      for (int id : loop_roots(l)) phase_fetches.push_back({id, true});
    auto ph = build(phase_fetches, feed_nodes, raw_feeds, Mode::fixed, taken, done);
    ph->decides = std::move(decides);
    ph->forwards = std::move(forwards);
    ph->runs = std::move(runs);
    ph->ran = std::move(ran);
    return ph;
  }
  // Check and place.
  std::vector<Device> place(n_nodes, Device::cpu());
  for (std::size_t id = 0; id < n_nodes; ++id) {
    if (!need[id]) continue;
    const Node& n = g->nodes[id];
    if (n.kind == Kind::placeholder && !n.with_default && fed[id] < 0)
      throw ValueError(fmt::format("Session::run: placeholder \"{}\" ({}) was not fed", n.name,
                                   GraphState::type_str(n)));
    if (n.kind == Kind::loop_var && fed[id] < 0)  // a fetch built from a tensor of a loop
      throw_in_loop(static_cast<int>(id), "Session::run", "node");
    if (n.kind == Kind::loop_exit && fed[id] < 0) {  // to_capture's plan; a run's loops ran before
      if (taken) throw InternalError(fmt::format("Session::run: while_loop output \"{}\" left unfed", n.name));
      throw ValueError(fmt::format("Session::to_capture: \"{}:0\" is an output of while_loop \"{}\"; a "
                                   "capture::Graph has no loops",
                                   n.name, g->loops[static_cast<std::size_t>(n.exit_of)].name));
    }
    place[id] = placement(n);
    if (opts.log_device_placement) fmt::print(stderr, "{}: {}\n", n.name, tf_device_name(place[id]));
  }
  // Concrete shapes and the lowered graph.
  capture::GraphIR ir;
  ir.input_names.resize(feeds.size());
  ir.input_writeback.assign(feeds.size(), -1);
  std::vector<int> low(n_nodes, -1);
  struct Read {
    int lowered;
    std::shared_ptr<SessVar> var;
    std::string name;
  };
  std::vector<Read> reads;
  std::vector<std::string> dev_of(n_nodes);
  auto emit = [&](capture::Node cn, int origin) {
    ir.nodes.push_back(std::move(cn));
    const Node* o = origin >= 0 ? &g->nodes[static_cast<std::size_t>(origin)] : nullptr;
    plan->origin_name.push_back(o ? o->name : "");
    std::string op;
    if (o) {
      switch (o->kind) {
        case Kind::placeholder: op = "placeholder"; break;
        case Kind::constant: op = "const"; break;
        case Kind::variable: op = "variable"; break;
        case Kind::op: op = dispatch::op_name(o->op); break;
        case Kind::identity: op = "identity"; break;
        case Kind::assign: op = "assign"; break;
        case Kind::no_op: op = "no_op"; break;
        case Kind::loop_var: op = "loop_var"; break;
        case Kind::loop_exit: op = "loop_exit"; break;
      }
    }
    plan->origin_op.push_back(op);
    plan->origin_device.push_back(tf_device_name(ir.nodes.back().out.device));
    return static_cast<int>(ir.nodes.size()) - 1;
  };
  auto info = [&](int lid) -> const capture::ValueInfo& { return ir.nodes[static_cast<std::size_t>(lid)].out; };
  // Lowered value `lid` on device `d`: a to_device node (one per value and
  // device). A 0-d host value joins an elementwise GPU op as it is, by value,
  // when another input of the op is already on the GPU (see the op case).
  std::map<std::pair<int, int>, int> moved;
  auto on = [&](int lid, Device d, int origin, bool scalar_by_value = false) {
    const capture::ValueInfo& vi = info(lid);
    if (vi.device == d || (scalar_by_value && vi.device.is_cpu() && vi.shape.empty())) return lid;
    const std::pair<int, int> key{lid, d.is_cpu() ? -1 : d.index};
    if (auto it = moved.find(key); it != moved.end()) return it->second;
    capture::Node t;
    t.op = OpId::to_device;
    t.attrs.device = d;
    t.inputs = {lid};
    t.out = {vi.shape, vi.dtype, d};
    const int r = emit(std::move(t), origin);
    moved.emplace(key, r);
    return r;
  };
  // Casts/broadcasts lowered value `id` to `want` (an assignment's conversion).
  auto conform = [&](int id, const capture::ValueInfo& want, int origin) {
    if (info(id).shape != want.shape) {
      capture::Node e;
      e.op = OpId::expand;
      e.attrs.ints = want.shape;
      e.inputs = {id};
      e.out = {want.shape, info(id).dtype, want.device};
      id = emit(std::move(e), origin);
    }
    if (info(id).dtype != want.dtype) {
      capture::Node c;
      c.op = OpId::copy;
      c.attrs.dtype = want.dtype;
      c.inputs = {id};
      c.out = want;
      id = emit(std::move(c), origin);
    }
    return id;
  };
  // Note [Variables within a run]: as with TF1's variables, an op that runs
  // after an assign (the assign is an ancestor: an input or a control input,
  // at any depth) and reads the variable sees the new value; other reads see
  // the value the run started with. The assigns of one variable in a run form
  // a chain in graph order, so assign_add and assign_sub build on the ones
  // before them (two updates of one variable in a group both count). The
  // executor applies the writes at the end of the run: such reads take the
  // assigned value instead. after[id]: per variable, the last assign (by node
  // id, i.e. in chain order) that node id runs after.
  std::vector<std::vector<std::pair<int, int>>> after(n_nodes);
  std::vector<int> chain_prev(n_nodes, -1);
  std::vector<int> own_prev(n_nodes, -1);  // an assign: the assign of its variable its inputs run after
  // An initial value that reads another variable whose initializer is in the
  // same run reads the value it initializes to (as TF guards such reads with
  // initialized_value), so global_variables_initializer() can set both.
  std::vector<char> seen(n_nodes, 0);
  for (const detail::VarInfo& vi : g->vars) {
    if (vi.initializer < 0 || !need[static_cast<std::size_t>(vi.initializer)]) continue;
    std::vector<int> todo{vi.initializer};
    while (!todo.empty()) {
      const int id = todo.back();
      todo.pop_back();
      if (seen[static_cast<std::size_t>(id)] || fed[static_cast<std::size_t>(id)] >= 0) continue;
      seen[static_cast<std::size_t>(id)] = 1;
      for (int in : g->nodes[static_cast<std::size_t>(id)].inputs) {
        const Node& src = g->nodes[static_cast<std::size_t>(in)];
        if (src.kind == Kind::variable && fed[static_cast<std::size_t>(in)] < 0 && src.var >= 0) {
          const int other = g->vars[static_cast<std::size_t>(src.var)].initializer;
          if (other >= 0 && other < id && need[static_cast<std::size_t>(other)])
            after[static_cast<std::size_t>(id)].emplace_back(src.var, other);
        }
        todo.push_back(in);
      }
    }
  }
  {
    std::vector<int> last(g->vars.size(), -1);
    auto merge = [&](std::vector<std::pair<int, int>>& into, int src) {
      for (const auto& [v, a] : after[static_cast<std::size_t>(src)]) {
        auto it = std::find_if(into.begin(), into.end(), [v = v](const auto& e) { return e.first == v; });
        if (it == into.end())
          into.emplace_back(v, a);
        else
          it->second = std::max(it->second, a);
      }
    };
    for (std::size_t id = 0; id < n_nodes; ++id) {
      if (!need[id] || fed[id] >= 0) continue;
      const Node& n = g->nodes[id];
      for (int in : n.inputs) merge(after[id], in);
      for (int c : n.control) merge(after[id], c);
      if (n.kind != Kind::assign) continue;
      const auto v = static_cast<std::size_t>(n.var);
      chain_prev[id] = last[v];
      last[v] = static_cast<int>(id);
      auto& mine = after[id];
      auto it = std::find_if(mine.begin(), mine.end(), [&](const auto& e) { return e.first == n.var; });
      if (it == mine.end()) {
        mine.emplace_back(n.var, static_cast<int>(id));
      } else {
        own_prev[id] = it->second;
        it->second = static_cast<int>(id);
      }
    }
  }
  auto input_of = [&](std::size_t id, std::size_t k) {
    const int in = g->nodes[id].inputs[k];
    const Node& src = g->nodes[static_cast<std::size_t>(in)];
    if (src.kind == Kind::variable && fed[static_cast<std::size_t>(in)] < 0)
      for (const auto& [v, a] : after[id]) {
        if (v != src.var) continue;
        // v.assign_add(v): the assign's own inputs run before it.
        const int before = a == static_cast<int>(id) ? own_prev[id] : a;
        return low[static_cast<std::size_t>(before >= 0 ? before : in)];
      }
    return low[static_cast<std::size_t>(in)];
  };
  for (std::size_t id = 0; id < n_nodes; ++id) {
    // A feed no fetch needs is still an input of the plan (TF1 accepts it and
    // checks its value); nothing reads it.
    if (!need[id] && fed[id] < 0) continue;
    const Node& n = g->nodes[id];
    const int self = static_cast<int>(id);
    if (fed[id] >= 0) {
      capture::Node cn;
      cn.kind = capture::NodeKind::input;
      cn.index = fed[id];
      const Tensor& f = feeds[static_cast<std::size_t>(fed[id])];
      cn.out = {f.shape(), f.dtype(), Device::cpu()};
      ir.input_names[static_cast<std::size_t>(fed[id])] = n.name;
      low[id] = emit(std::move(cn), self);
      continue;
    }
    try {
      switch (n.kind) {
        case Kind::placeholder:  // with a default (an unfed plain one was refused above)
        case Kind::identity: low[id] = input_of(id, 0); break;
        case Kind::no_op: break;
        case Kind::loop_var:
        case Kind::loop_exit: throw InternalError("Session::run: a loop node left unfed");
        case Kind::constant: {
          capture::Node cn;
          cn.kind = capture::NodeKind::constant;
          cn.value = n.value;
          cn.out = {n.value.shape(), n.value.dtype(), Device::cpu()};
          low[id] = emit(std::move(cn), self);
          break;
        }
        case Kind::variable: {
          auto sv = var(n.var);
          capture::Node cn;
          cn.kind = capture::NodeKind::variable_read;
          cn.var = sv->state;
          cn.out = {n.shape, n.dtype, sv->state->value.device()};
          low[id] = emit(std::move(cn), self);
          reads.push_back({low[id], sv, n.name});
          break;
        }
        case Kind::op: {
          if (n.merge_of >= 0 && lazy[static_cast<std::size_t>(n.merge_of)] >= 0) {
            low[id] = input_of(id, lazy[static_cast<std::size_t>(n.merge_of)] ? 1 : 2);  // Note [Lazy cond]
            break;
          }
          std::vector<Tensor> ins;
          capture::Node cn;
          cn.op = n.op;
          cn.attrs = n.attrs;
          // A creation op (zeros, ones, random_normal) makes its value on its node's device.
          if (dispatch::schema(n.op).flags & dispatch::kCreation) cn.attrs.device = place[id];
          // 0-d host values join an elementwise op by value, when another input
          // already lives on the op's device (else the op would run on the host).
          std::vector<int> lowered(n.inputs.size());
          for (std::size_t k = 0; k < n.inputs.size(); ++k) lowered[k] = input_of(id, k);
          const bool by_value = (dispatch::schema(n.op).flags & dispatch::kElementwise) &&
                                std::any_of(lowered.begin(), lowered.end(),
                                            [&](int l) { return info(l).device == place[id]; });
          for (std::size_t k = 0; k < n.inputs.size(); ++k) {
            const int l = lowered[k];
            cn.inputs.push_back(on(l, place[id], self, by_value));
            // Shapes are inferred on host stand-ins (constants as they are).
            const capture::Node& ln = ir.nodes[static_cast<std::size_t>(l)];
            ins.push_back(ln.kind == capture::NodeKind::constant ? ln.value : stand_in(ln.out.shape, ln.out.dtype));
          }
          // Note [Unknown dims]: shape attributes made from stand-in sizes are made again.
          if (!n.reshape_derived.empty()) remake_reshape(n.reshape_derived, ins[0].shape(), cn.attrs.ints);
          for (std::size_t i = 0; i < n.dims_of.size(); ++i)
            if (n.dims_of[i].first >= 0)
              cn.attrs.ints[i] = info(low[static_cast<std::size_t>(n.dims_of[i].first)])
                                     .shape[static_cast<std::size_t>(n.dims_of[i].second)];
          // Note [Unknown dims]: a -1 kept for the run is sized from the real input.
          if (n.op == OpId::reshape && !size_free_dim(cn.attrs.ints, ins[0].numel()))
            throw ShapeError(fmt::format("reshape: a tensor of shape {} cannot be reshaped to {}",
                                         shape_str(ins[0].shape()), shape_str(cn.attrs.ints)));
          if (n.op == OpId::expand) {
            const Shape& in0 = ins[0].shape();
            const std::size_t off = cn.attrs.ints.size() - in0.size();
            for (std::size_t i = 0; i < in0.size(); ++i)
              if (cn.attrs.ints[off + i] == kStandIn) cn.attrs.ints[off + i] = in0[i];
          }
          const auto m = dispatch::schema(n.op).infer(n.op, dispatch::Inputs(ins.data(), ins.size()), cn.attrs);
          cn.out = {m.shape, m.dtype, place[id]};
          low[id] = emit(std::move(cn), self);
          break;
        }
        case Kind::assign: {
          auto sv = var(n.var);
          const Device vd = sv->state->value.device();
          const capture::ValueInfo want{n.shape, n.dtype, vd};
          int src = on(input_of(id, 0), vd, self);
          // The previous assign of the variable in this run, else its value.
          auto before = [&] {
            int rid = chain_prev[id] >= 0 ? low[static_cast<std::size_t>(chain_prev[id])] : -1;
            if (rid < 0) {
              capture::Node r;
              r.kind = capture::NodeKind::variable_read;
              r.var = sv->state;
              r.out = want;
              rid = emit(std::move(r), self);
              reads.push_back({rid, sv, n.name});
            }
            return rid;
          };
          if (n.assign_kind != OpId::copy) {
            const int rid = before();
            const Tensor pair[2] = {stand_in(want.shape, want.dtype), stand_in(info(src).shape, info(src).dtype)};
            const auto m = dispatch::schema(n.assign_kind).infer(n.assign_kind, dispatch::Inputs(pair, 2), {});
            capture::Node op;
            op.op = n.assign_kind;
            op.inputs = {rid, src};
            op.out = {m.shape, m.dtype, vd};
            src = emit(std::move(op), self);
          }
          if (broadcast_shapes(info(src).shape, want.shape, "assign") != want.shape)
            throw ShapeError(fmt::format("assign: a value of shape {} does not fit variable \"{}\" of shape {}",
                                         shape_str(info(src).shape), sv->name, shape_str(want.shape)));
          src = conform(src, want, self);
          if (n.guarded && !taken_branch(n.branch)) {
            // Note [Assigns in a cond branch]: the write keeps the value the
            // variable had before it where the branch's guard is false.
            capture::Node w;
            w.op = OpId::where;
            w.inputs = {on(input_of(id, 1), vd, self), src, before()};
            w.out = want;
            src = emit(std::move(w), self);
          }
          capture::Node a;
          a.kind = capture::NodeKind::assign;
          a.var = sv->state;
          a.inputs = {src};
          a.out = want;
          emit(std::move(a), self);
          plan->writes.push_back(sv);
          low[id] = src;
          break;
        }
      }
    } catch (const Error&) {
      rethrow_with(fmt::format("Session::run: node \"{}\": ", n.name));
    }
  }
  for (const FetchRef& f : fetches) {
    if (f.is_op) {
      plan->out_pos.push_back(-1);
      continue;
    }
    plan->out_pos.push_back(static_cast<int>(ir.outputs.size()));
    ir.outputs.push_back(on(low[static_cast<std::size_t>(f.node)], Device::cpu(), f.node));
  }
  // Only reads whose value the run uses must find the variable initialized
  // (a read that every reader took from an assign in the run is not one).
  std::vector<char> used(ir.nodes.size(), 0);
  for (int o : ir.outputs) used[static_cast<std::size_t>(o)] = 1;
  for (std::size_t i = ir.nodes.size(); i-- > 0;) {
    const capture::Node& cn = ir.nodes[i];
    if (cn.kind == capture::NodeKind::assign) used[i] = 1;
    if (used[i])
      for (int in : cn.inputs) used[static_cast<std::size_t>(in)] = 1;
  }
  for (const Read& r : reads)
    if (used[static_cast<std::size_t>(r.lowered)]) plan->reads.emplace_back(r.var, r.name);
  ir.verify("Session::run");
  plan->compiled = capture::detail::compile(std::move(ir), opts.optimizer);
  return plan;
}

std::vector<Tensor> SessionState::execute(const Plan& p, const std::vector<Tensor>& raw_feeds, bool trace,
                                          RunMetadata* md, Clock::time_point run_start) {
  std::vector<Tensor> feeds;
  const std::vector<Tensor>* in = &raw_feeds;
  for (std::size_t i = 0; i < raw_feeds.size(); ++i) {
    const FeedInfo& fi = p.feeds[i];
    const Tensor& v = raw_feeds[i];
    // The plan was chosen by the feeds' dtypes and shapes, so only a value
    // of another dtype needs work here.
    if (v.dtype() != fi.dtype || !v.impl().storage || !v.device().is_cpu()) {
      if (feeds.empty()) feeds = raw_feeds;
      feeds[i] = check_feed(fi, v);
      in = &feeds;
    }
  }
  for (const auto& [sv, reader] : p.reads)
    if (!sv->initialized.load(std::memory_order_acquire))
      throw ValueError(fmt::format("Session::run: variable \"{}\" is not initialized (read by node \"{}\"); "
                                   "run its initializer first", sv->name, reader));
  const capture::detail::Compiled& c = *p.compiled;
  std::vector<Tensor> outs;
  // Node by node through the dispatcher (the unoptimized plan), timing each
  // into `md` when given; returns the values and the assigns to apply. A
  // failing node is named in the error.
  const capture::GraphIR& ir = c.traced;
  auto node_by_node = [&](RunMetadata* stats, std::vector<const capture::Node*>& assigns) {
    std::vector<Tensor> v(ir.nodes.size());
    const auto t0 = run_start == Clock::time_point{} ? Clock::now() : run_start;
    auto us = [&](Clock::time_point t) { return std::chrono::duration<double, std::micro>(t - t0).count(); };
    for (std::size_t id = 0; id < ir.nodes.size(); ++id) {
      const capture::Node& n = ir.nodes[id];
      const auto start = Clock::now();
      try {
        switch (n.kind) {
          case capture::NodeKind::input: v[id] = (*in)[static_cast<std::size_t>(n.index)]; break;
          case capture::NodeKind::constant: v[id] = n.value; break;
          case capture::NodeKind::variable_read: v[id] = n.var->value; break;
          case capture::NodeKind::assign: assigns.push_back(&n); break;
          case capture::NodeKind::op: {
            std::vector<Tensor> args;
            for (int i : n.inputs) args.push_back(v[static_cast<std::size_t>(i)]);
            dispatch::Attrs a = n.attrs;
            if (dispatch::schema(n.op).flags & dispatch::kRandom) {
              Generator& gen = default_generator();
              a.i0 = static_cast<int64_t>(gen.seed());
              a.i1 = static_cast<int64_t>(gen.advance(static_cast<uint64_t>(shape_numel(n.out.shape))));
            }
            v[id] = dispatch::call(n.op, dispatch::Inputs(args.data(), args.size()), a);
            break;
          }
          case capture::NodeKind::guard:
          case capture::NodeKind::fused: throw InternalError("Session::run: unexpected node in a session plan");
        }
      } catch (const Error&) {
        rethrow_with(fmt::format("Session::run: node \"{}\": ", p.origin_name[id]));
      }
      const auto end = Clock::now();
      if (stats) {
        NodeStats st;
        st.name = p.origin_name[id];
        st.op = n.kind == capture::NodeKind::op ? dispatch::op_name(n.op) : p.origin_op[id];
        st.device = p.origin_device[id];
        if (n.kind != capture::NodeKind::assign) {
          st.shape = n.out.shape;
          st.dtype = n.out.dtype;
        }
        st.start_us = us(start);
        st.wall_us = std::chrono::duration<double, std::micro>(end - start).count();
        stats->step_stats.push_back(std::move(st));
      }
    }
    return v;
  };
  if (!trace) {
    try {
      outs = c.exec->run(c.optimized, *in);
    } catch (const Error&) {
      // The replay cannot say which node failed (fused, reordered): run the
      // plan node by node to name it, writing nothing (assigns are applied
      // only after a run succeeds). Only failing runs pay for this.
      std::vector<const capture::Node*> ignored;
      node_by_node(nullptr, ignored);
      throw;  // the node-by-node run passed: the replay's own error stands
    }
  } else {
    std::vector<const capture::Node*> assigns;
    std::vector<Tensor> v = node_by_node(md, assigns);
    for (const capture::Node* a : assigns) {
      Tensor dst = a->var->value;
      const Tensor& src = v[static_cast<std::size_t>(a->inputs[0])];
      if (src.impl_ptr() != dst.impl_ptr()) dst.copy_(src);
    }
    for (int o : ir.outputs) {
      const Tensor& t = v[static_cast<std::size_t>(o)];
      outs.push_back(ir.nodes[static_cast<std::size_t>(o)].kind == capture::NodeKind::constant ? t.clone() : t);
    }
  }
  for (const auto& sv : p.writes) sv->initialized.store(true, std::memory_order_release);
  // A fetched variable value is a copy, as in TF (later assignments must not change it).
  if (!p.reads.empty())
    for (Tensor& o : outs)
      for (const auto& r : p.reads)
        if (o.impl().storage.get() == r.first->state->value.impl().storage.get()) {
          o = o.clone();
          break;
        }
  if (p.out_pos.size() == outs.size()) return outs;  // no operation fetched: out_pos is 0, 1, ...
  std::vector<Tensor> result;
  result.reserve(p.out_pos.size());
  for (int k : p.out_pos) result.push_back(k >= 0 ? outs[static_cast<std::size_t>(k)] : Tensor());
  return result;
}

std::shared_ptr<SessVar> session_var(SessionState& s, int index) {
  std::lock_guard<std::mutex> lk(s.mu);
  s.check_open("Saver");
  return s.var(index);
}
void check_session_open(const SessionState& s, const char* who) { s.check_open(who); }

}  // namespace detail

using detail::SessionState;

// ---- Session -----------------------------------------------------------------------

Session::Session(const Graph& g, const SessionOptions& options)
    : graph_(g), s_(std::make_shared<SessionState>()) {
  s_->g = g.state();
  s_->opts = options;
  s_->default_device = detail::normalize_device(options.device, "Session");
  if (s_->default_device.empty()) s_->default_device = "/cpu:0";
  if (options.intra_op_parallelism_threads < 0)
    throw ValueError(fmt::format("Session: intra_op_parallelism_threads must be >= 0 (got {})",
                                 options.intra_op_parallelism_threads));
  if (options.intra_op_parallelism_threads > 0) ember::set_num_threads(options.intra_op_parallelism_threads);
}

Session::~Session() { close(); }

void Session::close() {
  std::lock_guard<std::mutex> lk(s_->mu);
  s_->closed.store(true, std::memory_order_release);
  // Plans and values are shared with runs still in flight; the last one frees them.
  s_->plans.clear();
  s_->single.clear();
  s_->vars.clear();
}

Tensor Session::run_one(const Fetch& fetch, const FeedDict& feeds) {
  if (!feeds.empty() || fetch.op.defined()) return std::move(run(std::vector<Fetch>{fetch}, feeds).front());
  // `sess.run(c)`: one tensor, nothing fed, the plan cached by node; no lists built.
  s_->check_open("Session::run");
  dispatch::RecorderGuard off(nullptr);
  const int node = s_->node_of(fetch.tensor, "Session::run", "fetch");
  auto plan = s_->single_plan(node);
  return std::move(s_->run_plan(*plan, {}, false, nullptr).front());
}

std::vector<Tensor> Session::run(const std::vector<Fetch>& fetches, const FeedDict& feeds) {
  return run(fetches, feeds, RunOptions{}, nullptr);
}

std::vector<Tensor> Session::run(const std::vector<Fetch>& fetches, const FeedDict& feeds, const RunOptions& options,
                                 RunMetadata* metadata) {
  s_->check_open("Session::run");
  // Ops the session runs are never graph-building calls, even inside a scope.
  dispatch::RecorderGuard off(nullptr);
  std::vector<detail::FetchRef> refs;
  refs.reserve(fetches.size());
  for (const Fetch& f : fetches) refs.push_back(s_->fetch_of(f));
  std::vector<int> feed_nodes;
  std::vector<Tensor> values;
  feed_nodes.reserve(feeds.size());
  values.reserve(feeds.size());
  for (const auto& [k, v] : feeds) {
    feed_nodes.push_back(s_->node_of(k, "Session::run", "feed key"));
    values.push_back(v);
  }
  auto plan = s_->plan_for(refs, feed_nodes, values);
  if (metadata) metadata->step_stats.clear();
  return s_->run_plan(*plan, values, options.trace, metadata);
}

struct Callable::Impl {
  std::shared_ptr<SessionState> s;
  std::vector<detail::FetchRef> fetches;
  std::vector<int> feed_nodes;
  std::mutex mu;
  std::shared_ptr<detail::Plan> last;
  std::vector<int64_t> last_sig;  // dtype, rank, dims of each feed
};

Callable Session::make_callable(const std::vector<Fetch>& fetches, const std::vector<Tensor>& feeds) {
  s_->check_open("Session::make_callable");
  auto impl = std::make_shared<Callable::Impl>();
  impl->s = s_;
  for (const Fetch& f : fetches) impl->fetches.push_back(s_->fetch_of(f, "Session::make_callable"));
  for (const Tensor& t : feeds) impl->feed_nodes.push_back(s_->node_of(t, "Session::make_callable", "feed key"));
  return Callable(std::move(impl));
}

std::vector<Tensor> Callable::operator()(const std::vector<Tensor>& feed_values) const {
  Impl& c = *impl_;
  c.s->check_open("Callable");
  if (feed_values.size() != c.feed_nodes.size())
    throw ValueError(fmt::format("Callable: expects {} feed values, got {}", c.feed_nodes.size(), feed_values.size()));
  dispatch::RecorderGuard off(nullptr);
  std::shared_ptr<detail::Plan> plan;
  {
    std::lock_guard<std::mutex> lk(c.mu);
    if (c.last) {
      std::size_t k = 0;
      bool same = true;
      for (const Tensor& t : feed_values) {
        if (!t.defined() || k + 2 + t.shape().size() > c.last_sig.size() ||
            c.last_sig[k] != static_cast<int64_t>(t.dtype()) || c.last_sig[k + 1] != t.dim()) {
          same = false;
          break;
        }
        k += 2;
        for (int64_t d : t.shape()) same = same && c.last_sig[k++] == d;
        if (!same) break;
      }
      if (same) plan = c.last;
    }
  }
  if (!plan) {
    plan = c.s->plan_for(c.fetches, c.feed_nodes, feed_values);
    std::vector<int64_t> sig;
    for (const Tensor& t : feed_values) {
      sig.push_back(static_cast<int64_t>(t.dtype()));
      sig.push_back(t.dim());
      for (int64_t d : t.shape()) sig.push_back(d);
    }
    std::lock_guard<std::mutex> lk(c.mu);
    c.last = plan;
    c.last_sig = std::move(sig);
  }
  return c.s->run_plan(*plan, feed_values, false, nullptr);
}

capture::Graph Session::to_capture(const std::vector<Tensor>& fetches, const FeedDict& example_feeds) {
  s_->check_open("Session::to_capture");
  dispatch::RecorderGuard off(nullptr);
  std::vector<detail::FetchRef> refs;
  for (const Tensor& t : fetches) refs.push_back({s_->node_of(t, "Session::to_capture", "fetch"), false});
  std::vector<int> feed_nodes;
  std::vector<Tensor> values;
  for (const auto& [k, v] : example_feeds) {
    feed_nodes.push_back(s_->node_of(k, "Session::to_capture", "feed key"));
    values.push_back(v);
  }
  // Built anew, not plan_for's (a run's plan of a cond or loop is a dispatcher):
  // every cond runs both branches and selects (Note [Lazy cond]).
  std::shared_ptr<detail::Plan> plan;
  {
    std::lock_guard<std::mutex> lk(s_->mu);
    s_->check_open("Session::to_capture");
    plan = s_->build(refs, feed_nodes, values, SessionState::Mode::fixed);
  }
  for (const auto& [sv, reader] : plan->reads)
    if (!sv->initialized.load())
      throw ValueError(fmt::format("Session::to_capture: variable \"{}\" is not initialized (read by node \"{}\"); "
                                   "run its initializer first", sv->name, reader));
  return capture::Graph(plan->compiled);
}

std::vector<std::string> report_uninitialized_variables(Session& sess, const std::vector<Variable>& vars) {
  auto& s = *sess.state();
  s.check_open("report_uninitialized_variables");
  dispatch::RecorderGuard off(nullptr);
  std::vector<int> idx;
  if (vars.empty()) {
    std::lock_guard<std::recursive_mutex> lk(s.g->mu);
    for (std::size_t i = 0; i < s.g->vars.size(); ++i)
      if (!s.g->vars[i].external) idx.push_back(static_cast<int>(i));
  } else {
    for (const Variable& v : vars) {
      if (v.graph_state() != s.g)
        throw ValueError(fmt::format("report_uninitialized_variables: \"{}\" is a variable of another graph", v.name()));
      idx.push_back(v.index());
    }
  }
  std::vector<std::string> out;
  std::lock_guard<std::mutex> lk(s.mu);
  for (int i : idx) {
    auto sv = s.var(i);
    if (!sv->initialized.load()) out.push_back(sv->name);
  }
  return out;
}

// ---- metadata -----------------------------------------------------------------------

std::string RunMetadata::chrome_trace() const {
  auto esc = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == '"' || c == '\\') o += '\\';
      if (static_cast<unsigned char>(c) < 0x20) {
        o += fmt::format("\\u{:04x}", static_cast<int>(c));
        continue;
      }
      o += c;
    }
    return o;
  };
  std::string s = "{\"traceEvents\":[\n";
  s += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"args\":{\"name\":\"ember session\"}}";
  for (const NodeStats& n : step_stats) {
    s += fmt::format(
        ",\n{{\"name\":\"{}\",\"cat\":\"{}\",\"ph\":\"X\",\"ts\":{:.3f},\"dur\":{:.3f},\"pid\":0,\"tid\":0,"
        "\"args\":{{\"op\":\"{}\",\"device\":\"{}\",\"shape\":\"{}\",\"dtype\":\"{}\"}}}}",
        esc(n.name.empty() ? n.op : n.name), esc(n.op), n.start_us, n.wall_us, esc(n.op), esc(n.device),
        shape_str(n.shape), dtype_name(n.dtype));
  }
  s += "\n],\"displayTimeUnit\":\"ns\"}\n";
  return s;
}

void RunMetadata::write_chrome_trace(const std::string& path) const {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw ValueError(fmt::format("RunMetadata::write_chrome_trace: {}: cannot open the file", path));
  f << chrome_trace();
  if (!f) throw ValueError(fmt::format("RunMetadata::write_chrome_trace: {}: write failed", path));
}

}  // namespace ember::compat::v1
