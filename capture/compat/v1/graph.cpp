// Graph mode: the scope recorder that turns op calls into named nodes, the
// Graph and Variable classes and the TF1 construction functions.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <limits>
#include <typeinfo>
#include <utility>

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
std::atomic<uint64_t> g_next_graph{1};

bool has_unknown(const Shape& s) {
  return std::any_of(s.begin(), s.end(), [](int64_t d) { return d < 0; });
}

// A tensor with a shape and no storage, for running shape rules.
Tensor stand_in(const Shape& shape, DType dtype, int64_t unknown_size) {
  auto* impl = new ember::detail::TensorImpl;
  ember::detail::Ref<ember::detail::TensorImpl> ref(impl);
  impl->shape = shape;
  for (auto& d : impl->shape)
    if (d < 0) d = unknown_size;
  impl->strides = contiguous_strides(impl->shape);
  impl->dtype = dtype;
  impl->device = Device::cpu();
  impl->refresh();
  return Tensor(std::move(ref));
}

// Note [Unknown dims]: gives unknown dims of `s` (the inputs' static shapes)
// the known sizes `op`'s shape rule ties them to. Conflicting known sizes are
// left for the rule to report.
std::vector<Shape> refine_unknown(OpId op, const dispatch::Attrs& a, std::vector<Shape> s) {
  // Right-aligned dims broadcast: an unknown dim next to a known size other
  // than 1 must be that size (or 1, which broadcasts to the same result).
  auto broadcast = [](const std::vector<Shape*>& shapes) {
    std::size_t rank = 0;
    for (const Shape* p : shapes) rank = std::max(rank, p->size());
    for (std::size_t k = 1; k <= rank; ++k) {
      int64_t known = -1;
      for (const Shape* p : shapes)
        if (p->size() >= k && (*p)[p->size() - k] >= 0 && (*p)[p->size() - k] != 1) known = (*p)[p->size() - k];
      if (known < 0) continue;
      for (Shape* p : shapes)
        if (p->size() >= k && (*p)[p->size() - k] < 0) (*p)[p->size() - k] = known;
    }
  };
  auto unify = [](int64_t& x, int64_t& y) {
    if (x < 0) x = y;
    if (y < 0) y = x;
  };
  const uint32_t flags = dispatch::schema(op).flags;
  if (flags & dispatch::kElementwise) {
    std::vector<Shape*> ps;
    for (Shape& x : s) ps.push_back(&x);
    broadcast(ps);
  } else if (op == OpId::matmul && s.size() == 2 && !s[0].empty() && !s[1].empty()) {
    Shape& A = s[0];
    Shape& B = s[1];
    unify(A.back(), B.size() == 1 ? B[0] : B[B.size() - 2]);
    if (A.size() > 2 && B.size() > 2) {  // batch dims broadcast
      Shape ba(A.begin(), A.end() - 2), bb(B.begin(), B.end() - 2);
      broadcast({&ba, &bb});
      std::copy(ba.begin(), ba.end(), A.begin());
      std::copy(bb.begin(), bb.end(), B.begin());
    }
  } else if (op == OpId::addmm && s.size() == 3 && s[1].size() == 2 && s[2].size() == 2) {
    unify(s[1][1], s[2][0]);
    Shape product{s[1][0], s[2][1]};
    broadcast({&s[0], &product});
    s[1][0] = product[0];
    s[2][1] = product[1];
  } else if (op == OpId::reshape && s.size() == 1) {
    // A fully known target fixes a single unknown dim (a target dim inferred
    // from the stand-in's element count is a multiple of the stand-in: left).
    int64_t known = 1, target = 1;
    int unknown = 0;
    for (int64_t d : s[0]) d < 0 ? ++unknown : known *= d;
    for (int64_t d : a.ints) target *= d;
    if (unknown == 1 && known > 0 && target % known == 0 && (target / known) % kStandIn != 0)
      for (int64_t& d : s[0])
        if (d < 0) d = target / known;
  } else if (op == OpId::expand && s.size() == 1 && s[0].size() <= a.ints.size()) {
    // An unknown dim expanded to a known size must be that size (or 1).
    const std::size_t off = a.ints.size() - s[0].size();
    for (std::size_t i = 0; i < s[0].size(); ++i)
      if (s[0][i] < 0 && a.ints[off + i] >= 0 && a.ints[off + i] != kStandIn) s[0][i] = a.ints[off + i];
  } else if (op == OpId::concat && !s.empty()) {
    const auto rank = static_cast<int64_t>(s[0].size());
    const int64_t axis = a.i0 < 0 ? a.i0 + rank : a.i0;
    for (int64_t d = 0; d < rank; ++d) {
      if (d == axis) continue;
      int64_t known = -1;
      for (const Shape& x : s)
        if (static_cast<int64_t>(x.size()) == rank && x[static_cast<std::size_t>(d)] >= 0)
          known = x[static_cast<std::size_t>(d)];
      for (Shape& x : s)
        if (static_cast<int64_t>(x.size()) == rank && x[static_cast<std::size_t>(d)] < 0)
          x[static_cast<std::size_t>(d)] = known;
    }
  }
  return s;
}

// A reshape to a shape read from graph tensors (sum_to in a gradient rule,
// x.reshape(y.shape())) has stand-ins in its target. In the same position of
// an input of the same rank, a known size replaces one (the two must agree at
// run time), and an unknown one is carried by plan_reshape.
// `free`: the target's -1, which resolve_free_dim sized from the element
// count (not a size read from a shape): never tied.
dispatch::Attrs tie_reshape_target(OpId op, const Shape& input, dispatch::Attrs a, int64_t free) {
  if (op != OpId::reshape || a.ints.size() != input.size()) return a;
  for (std::size_t i = 0; i < input.size(); ++i)
    if (a.ints[i] == kStandIn && input[i] >= 0 && static_cast<int64_t>(i) != free) a.ints[i] = input[i];
  return a;
}

// A target size made from stand-ins (x.shape(0), a product of them): a
// nonzero multiple of the stand-in.
bool read_size(int64_t d) { return d != 0 && d % kStandIn == 0; }

// Note [Unknown dims]: a reshape target's -1 over an input with unknown dims
// is sized only when the graph runs: the node keeps the -1 and the session
// sizes it from the real element count (its static dim is -1). The other
// target dims must be known sizes (not read from unknown dims: multiples of
// the stand-in). Returns the -1's position, or -1 when this does not apply.
int64_t free_dim_at_run(OpId op, const Shape& input, const dispatch::Attrs& a) {
  if (op != OpId::reshape || !has_unknown(input)) return -1;
  int64_t free = -1, known = 1;
  for (std::size_t i = 0; i < a.ints.size(); ++i) {
    if (a.ints[i] == -1) {
      free = static_cast<int64_t>(i);
      continue;
    }
    if (read_size(a.ints[i])) return -1;
    known *= a.ints[i];
  }
  if (free >= 0 && known == 0)
    throw ShapeError(fmt::format("reshape: shape {} is invalid for a tensor of shape {} (a -1 next to a 0 has no size)",
                                 shape_str(a.ints), shape_str(input)));
  return free;
}

// A reshape target's -1 (Tensor::reshape passes it on in graph mode), sized
// from the element count of `input` (stand-in sizes for unknown dims; the
// dims derived from them are remade by plan_reshape). Returns its position, or -1.
int64_t resolve_free_dim(OpId op, const Shape& input, dispatch::Attrs& a) {
  if (op != OpId::reshape) return -1;
  const auto at = std::find(a.ints.begin(), a.ints.end(), -1);
  if (at == a.ints.end()) return -1;
  const int64_t free = at - a.ints.begin();
  if (!size_free_dim(a.ints, shape_numel(input)))
    throw ShapeError(fmt::format("reshape: shape {} is invalid for a tensor of shape {}", shape_str(a.ints),
                                 shape_str(input)));
  return free;
}

// `msg` with the stand-in size written as -1 (a whole number only).
std::string show_unknown(const std::string& msg) {
  const std::string stand = std::to_string(kStandIn);
  std::string out;
  std::size_t i = 0;
  while (i < msg.size()) {
    const std::size_t at = msg.find(stand, i);
    if (at == std::string::npos) break;
    const bool left = at == 0 || !std::isdigit(static_cast<unsigned char>(msg[at - 1]));
    const std::size_t end = at + stand.size();
    const bool right = end == msg.size() || !std::isdigit(static_cast<unsigned char>(msg[end]));
    out += msg.substr(i, at - i);
    out += left && right ? "-1" : stand;
    i = end;
  }
  return out + msg.substr(i);
}

}  // namespace

[[noreturn]] void rethrow_edited(const std::function<std::string(const std::string&)>& edit) {
  try {
    throw;
  } catch (const ShapeError& e) {
    throw ShapeError(edit(e.what()));
  } catch (const DTypeError& e) {
    throw DTypeError(edit(e.what()));
  } catch (const DeviceError& e) {
    throw DeviceError(edit(e.what()));
  } catch (const IndexError& e) {
    throw IndexError(edit(e.what()));
  } catch (const OutOfMemoryError& e) {
    throw OutOfMemoryError(edit(e.what()));
  } catch (const InternalError& e) {
    throw InternalError(edit(e.what()));
  } catch (const Error& e) {
    throw ValueError(edit(e.what()));
  }
}

std::vector<ReshapeDerived> plan_reshape(const Shape& input, const std::vector<bool>& unknown, const Shape& target) {
  const int n_in = static_cast<int>(input.size()), n_out = static_cast<int>(target.size());
  bool any_unknown = false, zero = false;
  for (int i = 0; i < n_in; ++i) {
    any_unknown = any_unknown || unknown[static_cast<std::size_t>(i)];
    zero = zero || input[static_cast<std::size_t>(i)] == 0;
  }
  for (int64_t d : target) zero = zero || d == 0;
  if (!any_unknown) return {};
  // The largest target dim of a group is the one derived from its unknown input dims.
  auto derive = [&](int a, int b, int c, int d) {
    int at = c;
    for (int j = c; j < d; ++j)
      if (target[static_cast<std::size_t>(j)] > target[static_cast<std::size_t>(at)]) at = j;
    return ReshapeDerived{at, a, b, c, d};
  };
  std::vector<ReshapeDerived> plan;
  // Group dims whose running products agree (stand-in sizes keep the products
  // apart); a group holding an unknown input dim derives one target dim.
  using Wide = unsigned __int128;  // products of several stand-ins
  int i = 0, j = 0;
  bool grouped = !zero;
  while (grouped && (i < n_in || j < n_out)) {
    const int a = i, c = j;
    Wide pi = 1, pj = 1;
    if (i < n_in) pi *= static_cast<Wide>(input[static_cast<std::size_t>(i++)]);
    if (j < n_out) pj *= static_cast<Wide>(target[static_cast<std::size_t>(j++)]);
    while (pi != pj) {
      if (pi < pj && i < n_in) {
        pi *= static_cast<Wide>(input[static_cast<std::size_t>(i++)]);
      } else if (pj < pi && j < n_out) {
        pj *= static_cast<Wide>(target[static_cast<std::size_t>(j++)]);
      } else {
        grouped = false;
        break;
      }
    }
    bool has_unknown = false;
    for (int k = a; k < i; ++k) has_unknown = has_unknown || unknown[static_cast<std::size_t>(k)];
    if (grouped && has_unknown) {
      if (c == j) grouped = false;  // unknown dims that map to no target dim
      else plan.push_back(derive(a, i, c, j));
    }
  }
  if (!grouped) return {derive(0, n_in, 0, n_out)};
  return plan;
}

bool size_free_dim(Shape& target, int64_t numel) {
  int64_t known = 1;
  std::size_t free = target.size();
  for (std::size_t i = 0; i < target.size(); ++i) target[i] == -1 ? free = i : known *= target[i];
  if (free == target.size()) return true;
  if (known == 0 || numel % known != 0) return false;
  target[free] = numel / known;
  return true;
}

void remake_reshape(const std::vector<ReshapeDerived>& plan, const Shape& input, Shape& target) {
  for (const ReshapeDerived& r : plan) {
    int64_t numel = 1, rest = 1;
    for (int k = r.in_begin; k < r.in_end; ++k) numel *= input[static_cast<std::size_t>(k)];
    for (int k = r.out_begin; k < r.out_end; ++k)
      if (k != r.dim) rest *= target[static_cast<std::size_t>(k)];
    if (rest == 0 || numel % rest != 0) {
      Shape shown = target;  // the derived dims as the user sees them
      for (const ReshapeDerived& q : plan) shown[static_cast<std::size_t>(q.dim)] = -1;
      throw ShapeError(fmt::format("reshape: a tensor of shape {} cannot be reshaped to {}", shape_str(input),
                                   shape_str(shown)));
    }
    target[static_cast<std::size_t>(r.dim)] = numel / rest;
  }
}

std::string GraphState::type_str(const Node& n) {
  return fmt::format("{} {}", dtype_name(n.dtype), shape_str(n.shape));
}

std::string GraphState::unique_name(const std::string& base) {
  if (!by_name.count(base) && !name_counts.count(base)) {
    name_counts[base] = 1;
    return base;
  }
  for (;;) {
    std::string cand = fmt::format("{}_{}", base, name_counts[base]++);
    if (!by_name.count(cand)) {
      name_counts.emplace(cand, 1);
      return cand;
    }
  }
}

void GraphState::rename(int id, const std::string& base, bool exact) {
  Node& n = nodes[static_cast<std::size_t>(id)];
  by_name.erase(n.name);
  release_name(n.name);
  n.name = exact ? base : unique_name(base);
  by_name[n.name] = id;
}

void GraphState::release_name(const std::string& name) {
  auto it = name_counts.find(name);
  if (it == name_counts.end() || it->second != 1) return;
  name_counts.erase(it);
  // "add_2" was the base's counter: step it back when nothing came after.
  const std::size_t us = name.rfind('_');
  if (us == std::string::npos || us + 1 == name.size() ||
      !std::all_of(name.begin() + static_cast<std::ptrdiff_t>(us) + 1, name.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return;
  auto base = name_counts.find(name.substr(0, us));
  const std::string digits = name.substr(us + 1);
  if (digits.size() < 10 && base != name_counts.end() && base->second == std::stoi(digits) + 1) --base->second;
}

void check_step_variable(const Variable& step, const std::string& who) {
  if (!is_integral(step.dtype()) || !step.shape().empty())
    throw ValueError(fmt::format("{}: global_step \"{}\" must be a 0-d integer variable; it is {} {}", who, step.name(),
                                 dtype_name(step.dtype()), shape_str(step.shape())));
}

bool shapes_compatible(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] >= 0 && b[i] >= 0 && a[i] != b[i]) return false;
  return true;
}

std::string normalize_device(const std::string& d, const char* who) {
  if (d.empty()) return d;
  std::string s;
  for (char c : d) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // TF's full names: "/job:localhost/replica:0/task:0/device:GPU:0"; "/device:CPU:0"; "/gpu:1"; "cpu".
  std::string dev;
  std::size_t at = 0;
  bool ok = true;
  while (ok && at <= s.size()) {
    const std::size_t end = std::min(s.find('/', at), s.size());
    const std::string part = s.substr(at, end - at);
    at = end + 1;
    if (part.empty() || part.rfind("job:", 0) == 0 || part.rfind("replica:", 0) == 0 || part.rfind("task:", 0) == 0)
      continue;
    ok = dev.empty();
    dev = part.rfind("device:", 0) == 0 ? part.substr(7) : part;
  }
  auto index_ok = [](const std::string& n) {
    return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  };
  if (ok && (dev == "cpu" || dev == "cpu:0")) return "/cpu:0";
  if (ok && (dev == "gpu" || dev == "cuda")) return "/gpu:0";
  for (const char* kind : {"gpu:", "cuda:"}) {
    const std::size_t k = std::char_traits<char>::length(kind);
    if (ok && dev.rfind(kind, 0) == 0 && index_ok(dev.substr(k))) {
      const std::string n = dev.substr(k);  // any length: a huge index is a missing GPU
      return "/gpu:" + n.substr(std::min(n.find_first_not_of('0'), n.size() - 1));
    }
  }
  throw ValueError(fmt::format("{}: \"{}\" is not a device name (use \"/cpu:0\" or \"/gpu:N\")", who, d));
}

int GraphState::add(Node n, const char* who) {
  if (finalized)
    throw ValueError(fmt::format("{}: the graph is finalized and cannot be modified", who));
  n.name = unique_name(n.name);
  const int id = static_cast<int>(nodes.size());
  by_name[n.name] = id;
  nodes.push_back(std::move(n));
  return id;
}

// A shape that holds a stand-in size as a known one: a size was read from an
// unknown dim of a graph tensor's shape (x.shape() as an expand target, or
// zeros(x.shape())), which nothing can make again when the graph runs.
void check_no_stand_in(const char* who, const char* what, const Shape& s) {
  for (int64_t d : s)
    if (d == kStandIn || d == kStandIn2)
      throw ValueError(fmt::format("{}: {} {} takes a size from an unknown (-1) dim of a graph tensor's shape, "
                                   "which has no value while the graph is built; take such sizes from the "
                                   "tensor itself (tf::zeros_like(x), broadcasting against x)",
                                   who, what, show_unknown(shape_str(s))));
}

// A reshape target with sizes read from unknown dims as numbers (x.shape(0))
// next to a -1 cannot be sized right: the -1 and the read size would both
// come from stand-ins, and the run could not tell which is which.
void check_read_sizes(const Shape& input, const Shape& target) {
  bool free = false, read = false;
  for (int64_t d : target) {
    free = free || d == -1;
    read = read || read_size(d);
  }
  if (free && read)
    throw ShapeError(fmt::format("reshape: the target {} of a tensor of shape {} has a -1 next to a size read from "
                                 "an unknown (-1) dim of a graph tensor's shape (x.shape()), which has no value "
                                 "while the graph is built; write such sizes as tf::shape(x)[k]",
                                 show_unknown(shape_str(target)), shape_str(input)));
}

std::string NodeSymbol::describe() const {
  auto gs = g.lock();
  if (!gs) return "a tensor of a destroyed graph";
  std::lock_guard<std::recursive_mutex> lk(gs->mu);
  const Node& n = gs->nodes.at(static_cast<std::size_t>(node));
  return fmt::format("graph tensor \"{}:0\" ({})", n.name, GraphState::type_str(n));
}

const NodeSymbol* symbol_of(const Tensor& t) {
  if (!t.defined()) return nullptr;
  // NodeSymbol is final: comparing the dynamic type is the whole check, and
  // far cheaper than a dynamic_cast (this is on every Session::run).
  const ember::detail::Symbol* s = t.impl().symbol.get();
  return s && typeid(*s) == typeid(NodeSymbol) ? static_cast<const NodeSymbol*>(s) : nullptr;
}

Tensor symbolic(const std::shared_ptr<GraphState>& g, int id) {
  const Node& n = g->nodes.at(static_cast<std::size_t>(id));
  if (!n.has_output)
    throw ValueError(fmt::format("\"{}\" is an operation and has no output tensor", n.name));
  Tensor t = stand_in(n.shape, n.dtype, kStandIn);
  auto* sym = new NodeSymbol;
  sym->g = g;
  sym->graph_id = g->id;
  sym->node = id;
  sym->loop = n.loop;
  t.impl().symbol = ember::detail::Ref<ember::detail::Symbol>(sym);
  return t;
}

ScopeRecorder* current_scope() {
  return dynamic_cast<ScopeRecorder*>(dispatch::current_recorder());
}

ScopeRecorder& require_scope(const char* who) {
  ScopeRecorder* s = current_scope();
  if (!s)
    throw ValueError(fmt::format(
        "{}: needs a graph; build it inside a scope (tf::Graph g; auto scope = g.as_default();)", who));
  return *s;
}

int ScopeRecorder::node_of(const Tensor& t, const char* who) {
  if (!t.defined()) throw ValueError(fmt::format("{}: an input is an undefined tensor", who));
  if (const NodeSymbol* s = symbol_of(t)) {
    if (s->graph_id != g_->id)
      throw ValueError(fmt::format("{}: {} is from another graph; tensors of different graphs cannot be mixed",
                                   who, s->describe()));
    return s->node;
  }
  if (!t.impl().storage)
    throw ValueError(fmt::format("{}: an input is {}, not a tensor of this graph", who,
                                 t.impl().symbol ? t.impl().symbol->describe() : "a tensor without storage"));
  // An eager tensor used in graph mode is a constant, copied now (as TF converts a NumPy array).
  check_no_stand_in(who, "the shape of an eager input,", t.shape());
  Node n;
  n.kind = Kind::constant;
  n.name = "const";
  {
    dispatch::RecorderGuard off(nullptr);
    n.value = t.clone();
  }
  n.value.impl().wrapped_scalar = t.impl().wrapped_scalar;
  n.shape = t.shape();
  n.dtype = t.dtype();
  return add(std::move(n), who);
}

int ScopeRecorder::add(Node n, const char* who, bool in_name_scope) {
  if (in_name_scope) n.name = name_prefix + n.name;
  if (n.kind == Kind::assign && guard >= 0) {
    n.inputs.push_back(guard);
    n.guarded = true;
  }
  if (n.device.empty()) n.device = device;
  n.branch = branch;
  n.loop = loop;
  n.control.insert(n.control.end(), control.begin(), control.end());
  return g_->add(std::move(n), who);
}

dispatch::TensorMeta ScopeRecorder::infer(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& given) {
  const dispatch::OpSchema& sch = dispatch::schema(op);
  std::vector<Shape> shapes;
  bool unknown = false;
  {
    std::lock_guard<std::recursive_mutex> lk(g_->mu);
    for (const Tensor& t : inputs) {
      const NodeSymbol* sym = t.defined() ? symbol_of(t) : nullptr;
      // Another graph's tensor: build() reports it.
      if (sym && sym->graph_id != g_->id) return sch.infer(op, inputs, given);
      shapes.push_back(sym ? g_->nodes[static_cast<std::size_t>(sym->node)].shape
                           : (t.defined() ? t.shape() : Shape{}));
      unknown = unknown || has_unknown(shapes.back());
    }
  }
  if (op == OpId::reshape && !shapes.empty()) check_read_sizes(shapes[0], given.ints);
  if (!shapes.empty()) {
    const int64_t later = free_dim_at_run(op, shapes[0], given);
    if (later >= 0) {
      Shape s(given.ints.begin(), given.ints.end());
      s[static_cast<std::size_t>(later)] = kStandIn;
      return {std::move(s), inputs[0].dtype(), inputs[0].device()};
    }
  }
  dispatch::Attrs attrs = given;
  int64_t free = -1;
  try {
    free = inputs.empty() ? -1 : resolve_free_dim(op, inputs[0].shape(), attrs);
  } catch (const Error&) {
    rethrow_edited(&show_unknown);
  }
  if (!unknown) return sch.infer(op, inputs, attrs);
  const dispatch::Attrs tied = tie_reshape_target(op, shapes[0], attrs, free);
  if (op == OpId::reshape && free < 0) {
    // A known target must be a multiple of the input's known dims (the rule
    // itself would name the stand-in's element count).
    int64_t known = 1, target = 1;
    bool derived = false;
    for (int64_t d : shapes[0]) known *= d < 0 ? 1 : d;
    for (int64_t d : tied.ints) {
      derived = derived || d >= kStandIn / 16;
      target *= d;
    }
    if (!derived && (known == 0 ? target != 0 : target % known != 0))
      throw ShapeError(fmt::format("reshape: shape {} is invalid for a tensor of shape {}", shape_str(tied.ints),
                                   shape_str(shapes[0])));
  }
  const std::vector<Shape> refined = refine_unknown(op, tied, shapes);
  std::vector<Tensor> ins(inputs.begin(), inputs.end());
  for (std::size_t i = 0; i < ins.size(); ++i)
    if (has_unknown(shapes[i])) ins[i] = stand_in(refined[i], ins[i].dtype(), kStandIn);
  try {
    return sch.infer(op, dispatch::Inputs(ins.data(), ins.size()), tied);
  } catch (const Error&) {
    if (op == OpId::reshape && std::any_of(tied.ints.begin(), tied.ints.end(), &read_size))
      throw ShapeError(fmt::format("reshape: a tensor of shape {} cannot be reshaped to {}: sizes read from unknown "
                                   "(-1) dims of a graph tensor's shape (x.shape()) have no value while the graph is "
                                   "built; write such sizes as tf::shape(x)[k]",
                                   shape_str(shapes[0]), show_unknown(shape_str(tied.ints))));
    rethrow_edited(&show_unknown);
  }
}

Tensor ScopeRecorder::build(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& given,
                            const dispatch::TensorMeta& meta) {
  const char* who = dispatch::op_name(op);
  std::lock_guard<std::recursive_mutex> lk(g_->mu);
  Node n;
  n.kind = Kind::op;
  n.name = who;
  n.op = op;
  bool unknown_in = false;
  for (const Tensor& t : inputs) {
    const int id = node_of(t, who);
    n.inputs.push_back(id);
    unknown_in = unknown_in || has_unknown(g_->nodes[id].shape);
  }
  if (!meta.device.is_cpu())
    throw DeviceError(fmt::format("{}: graph nodes are placed by device scopes (tf::device), not by "
                                  "tensor devices ({} given)", who, meta.device.str()));
  n.dtype = meta.dtype;
  const int64_t later = n.inputs.empty() ? -1 : free_dim_at_run(op, g_->nodes[n.inputs[0]].shape, given);
  if (later >= 0) {  // the session sizes the -1
    n.attrs = given;
    n.shape = Shape(given.ints.begin(), given.ints.end());
    return symbolic(g_, add(std::move(n), who));
  }
  dispatch::Attrs attrs = given;
  const int64_t free = inputs.empty() ? -1 : resolve_free_dim(op, inputs[0].shape(), attrs);
  n.attrs = attrs;
  if (unknown_in) n.attrs = tie_reshape_target(op, g_->nodes[n.inputs[0]].shape, attrs, free);
  n.shape = meta.shape;
  if (unknown_in) {
    // Note [Unknown dims]: run the rule again with the second stand-in size.
    std::vector<Shape> shapes;
    for (int id : n.inputs) shapes.push_back(g_->nodes[id].shape);
    const std::vector<Shape> refined = refine_unknown(op, n.attrs, shapes);
    std::vector<Tensor> ins2;
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
      const Node& in = g_->nodes[n.inputs[i]];
      ins2.push_back(in.kind == Kind::constant ? in.value : stand_in(refined[i], in.dtype, kStandIn2));
    }
    dispatch::Attrs a2 = n.attrs;
    const Shape& in0 = g_->nodes[n.inputs[0]].shape;
    if (op == OpId::slice || op == OpId::select) {
      const auto d = static_cast<std::size_t>(attrs.i0);
      if (d < in0.size() && in0[d] < 0)
        throw ValueError(fmt::format("{}: dim {} has unknown size (-1) in graph mode; only dims of "
                                     "known size can be sliced or indexed", who, attrs.i0));
    }
    if (op == OpId::reshape) {
      // The first pass's input shape: unknown dims at the stand-in size.
      Shape first = refined[0];
      std::vector<bool> unknown(first.size());
      for (std::size_t i = 0; i < first.size(); ++i) {
        unknown[i] = first[i] < 0;
        if (unknown[i]) first[i] = kStandIn;
      }
      n.reshape_derived = plan_reshape(first, unknown, a2.ints);
    }
    if (op == OpId::expand) {
      const std::size_t off = a2.ints.size() - in0.size();
      for (std::size_t i = 0; i < in0.size(); ++i)
        if (in0[i] < 0 && a2.ints[off + i] == kStandIn) a2.ints[off + i] = kStandIn2;
    }
    try {
      if (op == OpId::reshape) remake_reshape(n.reshape_derived, ins2[0].shape(), a2.ints);
      const auto m2 = dispatch::schema(op).infer(op, dispatch::Inputs(ins2.data(), ins2.size()), a2);
      for (std::size_t i = 0; i < n.shape.size(); ++i)
        if (i >= m2.shape.size() || m2.shape[i] != n.shape[i]) n.shape[i] = -1;
    } catch (const Error&) {
      for (auto& d : n.shape)
        if (d >= kStandIn / 16) d = -1;
    }
  }
  // (Unless an input has such a size as a known dim: a real 720720.)
  bool real_size = false;
  for (int id : n.inputs)
    for (int64_t d : g_->nodes[static_cast<std::size_t>(id)].shape) real_size = real_size || d == kStandIn || d == kStandIn2;
  if (!real_size) check_no_stand_in(who, "the result shape", n.shape);
  return symbolic(g_, add(std::move(n), who));
}

// Note [In-place ops in graph mode]: a graph tensor is a value, so x += y
// makes x a new node, as `x += y` does to a tf.Tensor in Python. The node is
// the op's result conformed to x's type as the eager write would be: cast to
// x's dtype, and expanded to x's shape: to its known sizes, or, where x has
// unknown dims, to the shape x has in the run (the run then fails as the
// eager write would when the result does not fit).
Tensor ScopeRecorder::build_inplace(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs,
                                    const Tensor& out) {
  const char* who = dispatch::op_name(op);
  Shape dest;
  int dest_node = -1;
  {
    std::lock_guard<std::recursive_mutex> lk(g_->mu);
    const NodeSymbol* sym = symbol_of(out);
    if (sym && sym->graph_id != g_->id) node_of(out, who);  // throws: another graph
    dest = sym ? g_->nodes[static_cast<std::size_t>(sym->node)].shape : out.shape();
    if (sym) dest_node = sym->node;
  }
  const dispatch::TensorMeta meta = infer(op, inputs, attrs);
  dispatch::check_inplace_type(op, meta, out);
  Tensor value = build(op, inputs, attrs, meta);
  const Shape have = static_shape(value);
  bool fits = have.size() <= dest.size();
  for (std::size_t i = 0; fits && i < have.size(); ++i) {
    const int64_t h = have[i], d = dest[dest.size() - have.size() + i];
    fits = d < 0 || h < 0 || h == d || h == 1;  // unknown sizes are checked by the run
  }
  if (!fits)
    throw ShapeError(fmt::format("{}_: the result shape {} does not broadcast to the destination's {}", who,
                                 shape_str(have), shape_str(dest)));
  if (has_unknown(dest)) {
    // Static shape: x's sizes, and the result's where x's are unknown (the run checks they agree).
    Shape merged = dest;
    const std::size_t lead = dest.size() - have.size();
    for (std::size_t i = lead; i < dest.size(); ++i)
      if (merged[i] < 0 && have[i - lead] > 1) merged[i] = have[i - lead];
    std::lock_guard<std::recursive_mutex> lk(g_->mu);
    value = symbolic(g_, shaped_like(OpId::expand, node_of(value, who), dest_node, merged));
  } else if (have != dest) {
    dispatch::Attrs a;
    a.ints = dest;
    const Tensor in[1] = {value};
    value = build(OpId::expand, in, a, infer(OpId::expand, in, a));
  }
  if (value.dtype() != out.dtype()) {
    dispatch::Attrs a;
    a.dtype = out.dtype();
    const Tensor in[1] = {value};
    value = build(OpId::copy, in, a, infer(OpId::copy, in, a));
  }
  return value;
}

int ScopeRecorder::shaped_by(OpId op, std::vector<int> inputs, dispatch::Attrs attrs,
                             std::vector<std::pair<int, int>> dims_of, const Shape& static_shape, DType dtype) {
  Node n;
  n.kind = Kind::op;
  n.name = dispatch::op_name(op);
  n.op = op;
  n.attrs = std::move(attrs);
  n.inputs = std::move(inputs);
  n.shape = static_shape;
  n.dtype = dtype;
  n.dims_of = std::move(dims_of);
  return add(std::move(n), dispatch::op_name(op));
}

int ScopeRecorder::shaped_like(OpId op, int src, int like, const Shape& static_shape) {
  dispatch::Attrs a;
  a.ints = static_shape;
  std::vector<std::pair<int, int>> dims(static_shape.size());
  for (std::size_t i = 0; i < dims.size(); ++i) {
    dims[i] = {like, static_cast<int>(i)};
    if (a.ints[i] < 0) a.ints[i] = kStandIn;
  }
  return shaped_by(op, {src}, std::move(a), std::move(dims), static_shape,
                   g_->nodes[static_cast<std::size_t>(src)].dtype);
}

Shape ScopeRecorder::static_shape(const Tensor& t) { return v1::static_shape(t); }

// A target with unknown dims is the shape `like` has in the run: the node
// keeps `like` (shape_of) and the session reads its lowered shape (TF's
// reshape(g, tf.shape(x))). The element counts are checked then.
Tensor ScopeRecorder::reshape_like(const Tensor& t, const Tensor& like) {
  std::unique_lock<std::recursive_mutex> lk(g_->mu);
  const int src = node_of(t, "reshape"), ref = node_of(like, "reshape");
  const Shape target = g_->nodes[static_cast<std::size_t>(ref)].shape;
  if (!has_unknown(target)) {
    lk.unlock();
    return t.reshape(target);
  }
  return symbolic(g_, shaped_like(OpId::reshape, src, ref, target));
}

Tensor ScopeRecorder::on_variable_read(const ember::Variable& v, const Tensor& value) {
  std::lock_guard<std::recursive_mutex> lk(g_->mu);
  for (const VarInfo& vi : g_->vars)
    if (vi.external == v.state()) return symbolic(g_, vi.node);
  VarInfo vi;
  vi.external = v.state();
  vi.shape = value.shape();
  vi.dtype = value.dtype();
  vi.trainable = false;
  Node n;
  n.kind = Kind::variable;
  n.name = v.name();
  n.shape = vi.shape;
  n.dtype = vi.dtype;
  n.var = static_cast<int>(g_->vars.size());
  const int id = add(std::move(n), "Variable::value");
  vi.node = id;
  vi.name = g_->nodes[id].name;
  g_->vars.push_back(std::move(vi));
  return symbolic(g_, id);
}

void ScopeRecorder::on_variable_assign(const ember::Variable& v, const Tensor&, OpId) {
  throw ValueError(fmt::format(
      "Variable::assign: ember::Variable \"{}\" cannot be written in graph mode; use a tf::Variable "
      "and its assign op, which Session::run runs", v.name()));
}

// Renames the node a TF-named call made, or adds an identity of that name
// when the call returned an existing tensor.
Tensor apply_name(const Tensor& r, std::size_t before, const std::string& name) {
  ScopeRecorder* sc = current_scope();
  if (!sc || name.empty()) return r;
  const NodeSymbol* s = symbol_of(r);
  if (!s) return r;
  auto& g = *sc->graph();
  std::lock_guard<std::recursive_mutex> lk(g.mu);
  if (static_cast<std::size_t>(s->node) < before) return identity(r, name);
  g.rename(s->node, sc->name_prefix + name, false);
  return r;
}

Tensor name_after_scope(const Tensor& r, std::size_t before, const std::string& scope) {
  ScopeRecorder* sc = current_scope();
  const NodeSymbol* s = symbol_of(r);
  if (!sc || !s) return r;
  auto& g = *sc->graph();
  std::lock_guard<std::recursive_mutex> lk(g.mu);
  const std::string name = scope.substr(0, scope.size() - 1);
  // The scope holds the name for this node (TF names a composite's own op so).
  if (static_cast<std::size_t>(s->node) >= before && !g.by_name.count(name)) g.rename(s->node, name, true);
  return r;
}

namespace {

int id_of(ScopeRecorder& sc, const Fetch& f, const char* who) {
  if (f.op.defined()) {
    if (f.op.graph_state() != sc.graph())
      throw ValueError(fmt::format("{}: operation \"{}\" is from another graph", who, f.op.name()));
    return f.op.node();
  }
  return sc.node_of(f.tensor, who);
}

}  // namespace

}  // namespace detail

using detail::GraphState;
using detail::Kind;
using detail::Node;
using detail::ScopeRecorder;

// ---- Operation, scopes, Graph ------------------------------------------------

std::string Operation::name() const {
  if (!g_) throw ValueError("Operation: undefined operation");
  std::lock_guard<std::recursive_mutex> lk(g_->mu);
  return g_->nodes.at(static_cast<std::size_t>(node_)).name;
}

GraphScope::GraphScope(std::shared_ptr<GraphState> g) : rec_(std::make_unique<ScopeRecorder>(g)) {
  if (auto* outer = detail::current_scope(); outer && outer->graph() == g) {
    rec_->device = outer->device;
    rec_->control = outer->control;
    rec_->name_prefix = outer->name_prefix;
    rec_->var_prefix = outer->var_prefix;
    rec_->guard = outer->guard;
    rec_->branch = outer->branch;
    rec_->loop = outer->loop;
    rec_->reuse = outer->reuse;
  }
  prev_ = dispatch::set_recorder(rec_.get());
}

GraphScope::~GraphScope() { dispatch::set_recorder(static_cast<dispatch::Recorder*>(prev_)); }

Graph::Graph() : s_(std::make_shared<GraphState>()) { s_->id = detail::g_next_graph.fetch_add(1); }

Graph get_default_graph() { return Graph(detail::require_scope("get_default_graph").graph()); }

Tensor Graph::get_tensor_by_name(const std::string& name) const {
  std::lock_guard<std::recursive_mutex> lk(s_->mu);
  const auto colon = name.rfind(':');
  if (colon == std::string::npos)
    throw ValueError(fmt::format("get_tensor_by_name: \"{}\" names an operation; a tensor name is "
                                 "\"<node>:<output>\", e.g. \"{}:0\"", name, name));
  const std::string node = name.substr(0, colon), out = name.substr(colon + 1);
  auto it = s_->by_name.find(node);
  if (it == s_->by_name.end())
    throw ValueError(fmt::format("get_tensor_by_name: the graph has no node \"{}\"", node));
  const Node& n = s_->nodes[static_cast<std::size_t>(it->second)];
  if (!n.has_output)
    throw ValueError(fmt::format("get_tensor_by_name: \"{}\" is an operation without outputs", node));
  if (out != "0")
    throw ValueError(fmt::format("get_tensor_by_name: node \"{}\" has 1 output, so \"{}\" does not exist",
                                 node, name));
  return detail::symbolic(s_, it->second);
}

Operation Graph::get_operation_by_name(const std::string& name) const {
  std::lock_guard<std::recursive_mutex> lk(s_->mu);
  auto it = s_->by_name.find(name);
  if (it == s_->by_name.end())
    throw ValueError(fmt::format("get_operation_by_name: the graph has no node \"{}\"", name));
  return Operation(s_, it->second);
}

std::vector<std::string> Graph::node_names() const {
  std::lock_guard<std::recursive_mutex> lk(s_->mu);
  std::vector<std::string> v;
  for (const Node& n : s_->nodes) v.push_back(n.name);
  return v;
}

int Graph::num_nodes() const {
  std::lock_guard<std::recursive_mutex> lk(s_->mu);
  return static_cast<int>(s_->nodes.size());
}

void Graph::finalize() {
  std::lock_guard<std::recursive_mutex> lk(s_->mu);
  s_->finalized = true;
}

bool Graph::finalized() const {
  std::lock_guard<std::recursive_mutex> lk(s_->mu);
  return s_->finalized;
}

std::string Graph::str() const {
  std::lock_guard<std::recursive_mutex> lk(s_->mu);
  std::string out;
  for (const Node& n : s_->nodes) {
    std::string op;
    switch (n.kind) {
      case Kind::placeholder: op = n.with_default ? "placeholder_with_default" : "placeholder"; break;
      case Kind::constant: op = "const"; break;
      case Kind::variable: op = "variable"; break;
      case Kind::op: op = dispatch::op_name(n.op); break;
      case Kind::identity: op = "identity"; break;
      case Kind::assign:
        op = n.assign_kind == OpId::add ? "assign_add" : n.assign_kind == OpId::sub ? "assign_sub" : "assign";
        break;
      case Kind::no_op: op = "no_op"; break;
      case Kind::loop_var: op = "loop_var"; break;
      case Kind::loop_exit: op = "loop_exit"; break;
    }
    std::string args;
    for (int in : n.inputs) args += (args.empty() ? "" : ", ") + s_->nodes[static_cast<std::size_t>(in)].name;
    for (int c : n.control) args += (args.empty() ? "^" : ", ^") + s_->nodes[static_cast<std::size_t>(c)].name;
    out += fmt::format("{} = {}({}){}{}\n", n.name, op, args,
                       n.has_output ? " : " + GraphState::type_str(n) : "",
                       n.device.empty() ? "" : " @" + n.device);
  }
  return out;
}

std::vector<Tensor> Graph::inputs() const {
  std::vector<Tensor> v;
  for (int id : s_->inputs) v.push_back(detail::symbolic(s_, id));
  return v;
}

std::vector<Tensor> Graph::outputs() const {
  std::vector<Tensor> v;
  for (int id : s_->outputs) v.push_back(detail::symbolic(s_, id));
  return v;
}

Graph Graph::from_capture(const capture::Graph& traced) {
  const capture::GraphIR& ir = traced.impl().traced;
  Graph g;
  GraphState& s = *g.s_;
  std::lock_guard<std::recursive_mutex> lk(s.mu);
  std::vector<int> map(ir.nodes.size(), -1);
  std::vector<int> assigns;
  for (std::size_t id = 0; id < ir.nodes.size(); ++id) {
    const capture::Node& cn = ir.nodes[id];
    Node n;
    n.shape = cn.out.shape;
    n.dtype = cn.out.dtype;
    for (int in : cn.inputs) n.inputs.push_back(map[static_cast<std::size_t>(in)]);
    switch (cn.kind) {
      case capture::NodeKind::input:
        n.kind = Kind::placeholder;
        n.name = ir.input_names.at(static_cast<std::size_t>(cn.index));
        break;
      case capture::NodeKind::constant:
        n.kind = Kind::constant;
        n.name = "const";
        n.value = cn.value;
        break;
      case capture::NodeKind::variable_read: {
        int found = -1;
        for (std::size_t k = 0; k < s.vars.size(); ++k)
          if (s.vars[k].external == cn.var) found = static_cast<int>(k);
        if (found >= 0) {
          map[id] = s.vars[static_cast<std::size_t>(found)].node;
          continue;
        }
        detail::VarInfo vi;
        vi.external = cn.var;
        vi.shape = n.shape;
        vi.dtype = n.dtype;
        vi.trainable = false;
        n.kind = Kind::variable;
        n.name = cn.var->name;
        n.var = static_cast<int>(s.vars.size());
        vi.node = s.add(std::move(n), "Graph::from_capture");
        vi.name = s.nodes.back().name;
        s.vars.push_back(std::move(vi));
        map[id] = s.vars.back().node;
        continue;
      }
      case capture::NodeKind::op:
        n.kind = Kind::op;
        n.name = dispatch::op_name(cn.op);
        n.op = cn.op;
        n.attrs = cn.attrs;
        break;
      case capture::NodeKind::assign: {
        int var = -1;
        for (std::size_t k = 0; k < s.vars.size(); ++k)
          if (s.vars[k].external == cn.var) var = static_cast<int>(k);
        if (var < 0) {
          detail::VarInfo vi;
          vi.external = cn.var;
          vi.shape = n.shape;
          vi.dtype = n.dtype;
          vi.trainable = false;
          Node vn;
          vn.kind = Kind::variable;
          vn.name = cn.var->name;
          vn.shape = n.shape;
          vn.dtype = n.dtype;
          vn.var = var = static_cast<int>(s.vars.size());
          vi.node = s.add(std::move(vn), "Graph::from_capture");
          vi.name = s.nodes.back().name;
          s.vars.push_back(std::move(vi));
        }
        n.kind = Kind::assign;
        n.name = s.vars[static_cast<std::size_t>(var)].name + "/assign";
        n.var = var;
        map[id] = s.add(std::move(n), "Graph::from_capture");
        assigns.push_back(map[id]);
        continue;
      }
      case capture::NodeKind::guard:
        throw ValueError("Graph::from_capture: the trace has guards (it read values on the host); "
                         "such a graph cannot run as a session graph");
      case capture::NodeKind::fused:
        throw InternalError("Graph::from_capture: a traced graph has no fused nodes");
    }
    map[id] = s.add(std::move(n), "Graph::from_capture");
    if (cn.kind == capture::NodeKind::input) s.inputs.push_back(map[id]);
  }
  // Outputs: identities that also run the trace's assignments (they are
  // part of calling the traced function).
  for (int o : ir.outputs) {
    Node n;
    n.kind = Kind::identity;
    n.name = "output";
    n.inputs = {map[static_cast<std::size_t>(o)]};
    const Node& src = s.nodes[static_cast<std::size_t>(n.inputs[0])];
    n.shape = src.shape;
    n.dtype = src.dtype;
    n.control = assigns;
    s.outputs.push_back(s.add(std::move(n), "Graph::from_capture"));
  }
  return g;
}

Shape static_shape(const Tensor& t) {
  const detail::NodeSymbol* s = detail::symbol_of(t);
  if (!s) return t.shape();
  auto g = s->g.lock();
  if (!g) throw ValueError("static_shape: the tensor's graph was destroyed");
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  return g->nodes[static_cast<std::size_t>(s->node)].shape;
}

std::string tensor_name(const Tensor& t) {
  const detail::NodeSymbol* s = detail::symbol_of(t);
  if (!s) throw ValueError("tensor_name: not a graph tensor (an eager tensor has no name)");
  auto g = s->g.lock();
  if (!g) throw ValueError("tensor_name: the tensor's graph was destroyed");
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  return g->nodes[static_cast<std::size_t>(s->node)].name + ":0";
}

Operation op_of(const Tensor& t) {
  const detail::NodeSymbol* s = detail::symbol_of(t);
  if (!s) throw ValueError("op_of: not a graph tensor");
  auto g = s->g.lock();
  if (!g) throw ValueError("op_of: the tensor's graph was destroyed");
  return Operation(g, s->node);
}

// ---- Variable ------------------------------------------------------------------

Variable::Variable(const Tensor& initial_value, const std::string& name, bool trainable) {
  ScopeRecorder& sc = detail::require_scope("Variable");
  detail::InitScope init_scope(sc);  // its initializer is no branch's write, waits for nothing
  auto& g = sc.graph();
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  if (!initial_value.defined()) throw ValueError("Variable: the initial value is an undefined tensor");
  if (g->finalized) throw ValueError("Variable: the graph is finalized and cannot be modified");
  const std::string base = sc.name_prefix + (name.empty() ? "variable" : name);
  const std::string vname = g->unique_name(base);
  g->name_counts.erase(vname);  // reserved below by add()
  int init;
  if (detail::symbol_of(initial_value)) {
    init = sc.node_of(initial_value, "Variable");
  } else {
    Node c;
    c.kind = Kind::constant;
    c.name = vname + "/initial_value";
    {
      dispatch::RecorderGuard off(nullptr);
      c.value = initial_value.clone();
    }
    c.shape = c.value.shape();
    c.dtype = c.value.dtype();
    init = sc.add(std::move(c), "Variable", false);
  }
  const Node& in = g->nodes[static_cast<std::size_t>(init)];
  if (detail::has_unknown(in.shape))
    throw ShapeError(fmt::format("Variable: the initial value of \"{}\" has shape {}; a variable needs a "
                                 "fully known shape", vname, shape_str(in.shape)));
  detail::VarInfo vi;
  vi.shape = in.shape;
  vi.dtype = in.dtype;
  vi.trainable = trainable;
  index_ = static_cast<int>(g->vars.size());
  Node v;
  v.kind = Kind::variable;
  v.name = vname;
  v.shape = vi.shape;
  v.dtype = vi.dtype;
  v.var = index_;
  vi.node = sc.add(std::move(v), "Variable", false);
  vi.name = g->nodes[static_cast<std::size_t>(vi.node)].name;
  Node a;
  a.kind = Kind::assign;
  a.name = vi.name + "/assign";
  a.inputs = {init};
  a.var = index_;
  a.shape = vi.shape;
  a.dtype = vi.dtype;
  vi.initializer = sc.add(std::move(a), "Variable", false);
  g->vars.push_back(std::move(vi));
  g_ = g;
}

Tensor Variable::number(Scalar v, const char* who) const {
  const DType dt = dtype();
  if (!is_floating(dt) && dt != DType::bool_) {
    // An integer variable takes whole numbers in its range (TF refuses to convert others).
    const double d = v.to_double();
    const std::string shown = v.is_floating() ? fmt::format("{}", d) : fmt::format("{}", v.to_int());
    if (v.is_floating() && (!std::isfinite(d) || d != std::trunc(d)))
      throw ValueError(fmt::format("{}: {} is not a whole number and cannot be stored in variable \"{}\" of dtype {}",
                                   who, shown, name(), dtype_name(dt)));
    if (!detail::holds_exactly(v, dt))
      throw ValueError(fmt::format("{}: {} is out of the range of variable \"{}\" of dtype {}", who, shown, name(),
                                   dtype_name(dt)));
  }
  return scalar_tensor(v, dt);
}

namespace {
// The graph's lock, taken before reading g->vars (another thread's new
// variable can reallocate it); ValueError for an undefined Variable.
std::unique_lock<std::recursive_mutex> lock_vars(const std::shared_ptr<GraphState>& g) {
  if (!g) throw ValueError("Variable: undefined variable");
  return std::unique_lock<std::recursive_mutex>(g->mu);
}

// Variable `index` of g; the caller holds lock_vars(g).
const detail::VarInfo& info(const std::shared_ptr<GraphState>& g, int index) {
  return g->vars.at(static_cast<std::size_t>(index));
}

Tensor make_assign(const std::shared_ptr<GraphState>& g, int index, const Tensor& v, OpId kind,
                   const std::string& name, const char* who) {
  ScopeRecorder& sc = detail::require_scope(who);
  if (sc.graph() != g)
    throw ValueError(fmt::format("{}: the variable belongs to another graph than the scope's", who));
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  const detail::VarInfo& vi = info(g, index);
  const int src = sc.node_of(v, who);
  const Node& s = g->nodes[static_cast<std::size_t>(src)];
  if (!s.has_output) throw ValueError(fmt::format("{}: \"{}\" is an operation, not a value", who, s.name));
  Shape a = s.shape, b = vi.shape;
  for (auto& d : a)
    if (d < 0) d = 1;
  bool fits = a.size() <= b.size();
  for (std::size_t i = 0; fits && i < a.size(); ++i) {
    const int64_t da = a[a.size() - 1 - i], db = b[b.size() - 1 - i];
    fits = da == db || da == 1;
  }
  if (!fits)
    throw ShapeError(fmt::format("{}: a value of shape {} does not fit variable \"{}\" of shape {}", who,
                                 shape_str(s.shape), vi.name, shape_str(vi.shape)));
  if (is_floating(s.dtype) && !is_floating(vi.dtype))
    throw DTypeError(fmt::format("{}: a {} value cannot be stored in variable \"{}\" of dtype {}", who,
                                 dtype_name(s.dtype), vi.name, dtype_name(vi.dtype)));
  Node n;
  n.kind = Kind::assign;
  n.name = name.empty() ? vi.name + "/" + who : name;
  n.inputs = {src};
  n.var = index;
  n.assign_kind = kind;
  n.shape = vi.shape;
  n.dtype = vi.dtype;
  // The default name is the variable's (already scoped); a given one is in the name scope.
  return detail::symbolic(g, sc.add(std::move(n), who, !name.empty()));
}
}  // namespace

Tensor Variable::value() const {
  auto lk = lock_vars(g_);
  const auto& vi = info(g_, index_);
  return detail::symbolic(g_, vi.node);
}
Operation Variable::initializer() const {
  auto lk = lock_vars(g_);
  const auto& vi = info(g_, index_);
  if (vi.initializer < 0)
    throw ValueError(fmt::format("Variable::initializer: \"{}\" is an ember::Variable read by reference; "
                                 "it has no initializer", vi.name));
  return Operation(g_, vi.initializer);
}
Tensor Variable::initial_value() const {
  auto lk = lock_vars(g_);
  const auto& vi = info(g_, index_);
  if (vi.initializer < 0)
    throw ValueError(fmt::format("Variable::initial_value: \"{}\" is an ember::Variable read by reference; "
                                 "it has no initial value",
                                 vi.name));
  return detail::symbolic(g_, g_->nodes[static_cast<std::size_t>(vi.initializer)].inputs.at(0));
}
Tensor Variable::assign(const Tensor& v, const std::string& name) const {
  return make_assign(g_, index_, v, OpId::copy, name, "assign");
}
Tensor Variable::assign_add(const Tensor& v, const std::string& name) const {
  return make_assign(g_, index_, v, OpId::add, name, "assign_add");
}
Tensor Variable::assign_sub(const Tensor& v, const std::string& name) const {
  return make_assign(g_, index_, v, OpId::sub, name, "assign_sub");
}
std::string Variable::name() const {
  auto lk = lock_vars(g_);
  return info(g_, index_).name;
}
Shape Variable::shape() const {
  auto lk = lock_vars(g_);
  return info(g_, index_).shape;
}
DType Variable::dtype() const {
  auto lk = lock_vars(g_);
  return info(g_, index_).dtype;
}
bool Variable::trainable() const {
  auto lk = lock_vars(g_);
  return info(g_, index_).trainable;
}

// ---- construction functions ------------------------------------------------------

Tensor constant(const Tensor& value, const std::string& name) {
  ScopeRecorder* sc = detail::current_scope();
  if (!sc) return value;
  if (!value.defined()) throw ValueError("constant: the value is an undefined tensor");
  // em::ones(...) inside a scope is already a node: its value is computed by the graph.
  if (detail::symbol_of(value)) return identity(value, name);
  std::lock_guard<std::recursive_mutex> lk(sc->graph()->mu);
  Node n;
  n.kind = Kind::constant;
  n.name = name.empty() ? "const" : name;
  {
    dispatch::RecorderGuard off(nullptr);
    n.value = value.clone();
  }
  n.shape = n.value.shape();
  n.dtype = n.value.dtype();
  return detail::symbolic(sc->graph(), sc->add(std::move(n), "constant"));
}

Tensor placeholder(DType dtype, const Shape& shape, const std::string& name) {
  ScopeRecorder& sc = detail::require_scope("placeholder");
  for (int64_t d : shape)
    if (d < -1)
      throw ShapeError(fmt::format("placeholder: invalid size {} in shape {} (-1 marks an unknown size)", d,
                                   shape_str(shape)));
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  Node n;
  n.kind = Kind::placeholder;
  n.name = name.empty() ? "placeholder" : name;
  n.shape = shape;
  n.dtype = dtype;
  return detail::symbolic(sc.graph(), sc.add(std::move(n), "placeholder"));
}

Tensor placeholder_with_default(const Tensor& input, const Shape& shape, const std::string& name) {
  ScopeRecorder& sc = detail::require_scope("placeholder_with_default");
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  const int in = sc.node_of(input, "placeholder_with_default");
  const Node& src = sc.graph()->nodes[static_cast<std::size_t>(in)];
  bool ok = src.shape.size() == shape.size();
  for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || shape[i] == src.shape[i];
  if (!ok)
    throw ShapeError(fmt::format("placeholder_with_default: the default has shape {}, which does not fit {}",
                                 shape_str(src.shape), shape_str(shape)));
  Node n;
  n.kind = Kind::placeholder;
  n.with_default = true;
  n.name = name.empty() ? "placeholder_with_default" : name;
  n.inputs = {in};
  n.shape = shape;
  n.dtype = src.dtype;
  return detail::symbolic(sc.graph(), sc.add(std::move(n), "placeholder_with_default"));
}

Tensor identity(const Tensor& x, const std::string& name) {
  ScopeRecorder* sc = detail::current_scope();
  if (!sc) return x;
  std::lock_guard<std::recursive_mutex> lk(sc->graph()->mu);
  const int in = sc->node_of(x, "identity");
  const Node& src = sc->graph()->nodes[static_cast<std::size_t>(in)];
  Node n;
  n.kind = Kind::identity;
  n.name = name.empty() ? "identity" : name;
  n.inputs = {in};
  n.shape = src.shape;
  n.dtype = src.dtype;
  return detail::symbolic(sc->graph(), sc->add(std::move(n), "identity"));
}

// ember::detach: a node in graph mode, recorded by tapes and traces eagerly.
Tensor stop_gradient(const Tensor& x, const std::string& n) {
  return detail::named(n.empty() ? "stop_gradient" : n, [&] { return ember::detach(x); });
}

Operation no_op(const std::string& name) { return group({}, name.empty() ? "no_op" : name); }

Operation group(const std::vector<Fetch>& inputs, const std::string& name) {
  ScopeRecorder& sc = detail::require_scope("group");
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  Node n;
  n.kind = Kind::no_op;
  n.has_output = false;
  n.name = name.empty() ? "group" : name;
  for (const Fetch& f : inputs) n.control.push_back(detail::id_of(sc, f, "group"));
  return Operation(sc.graph(), sc.add(std::move(n), "group"));
}

void add_to_collection(const std::string& name, const Fetch& value) {
  ScopeRecorder& sc = detail::require_scope("add_to_collection");
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  const int id = detail::id_of(sc, value, "add_to_collection");  // a node of this graph
  sc.graph()->collections[name].emplace_back(id, value.op.defined());
}

std::vector<Fetch> get_collection(const std::string& name) {
  ScopeRecorder& sc = detail::require_scope("get_collection");
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  std::vector<Fetch> out;
  auto it = sc.graph()->collections.find(name);
  if (it == sc.graph()->collections.end()) return out;
  for (const auto& [id, is_op] : it->second)
    out.push_back(is_op ? Fetch(Operation(sc.graph(), id)) : Fetch(detail::symbolic(sc.graph(), id)));
  return out;
}

std::vector<Variable> global_variables() {
  ScopeRecorder& sc = detail::require_scope("global_variables");
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  std::vector<Variable> v;
  for (std::size_t i = 0; i < sc.graph()->vars.size(); ++i)
    if (!sc.graph()->vars[i].external) v.emplace_back(sc.graph(), static_cast<int>(i));
  return v;
}

std::vector<Variable> trainable_variables() {
  std::vector<Variable> v;
  for (const Variable& x : global_variables())
    if (x.trainable()) v.push_back(x);
  return v;
}

Operation variables_initializer(const std::vector<Variable>& vars, const std::string& name) {
  std::vector<Fetch> inits;
  for (const Variable& v : vars) inits.emplace_back(v.initializer());
  return group(inits, name);
}

Operation global_variables_initializer() { return variables_initializer(global_variables(), "init"); }

ControlDependencies::ControlDependencies(const std::vector<Fetch>& deps) {
  ScopeRecorder& sc = detail::require_scope("control_dependencies");
  std::lock_guard<std::recursive_mutex> lk(sc.graph()->mu);
  scope_ = &sc;
  saved_ = sc.control;
  for (const Fetch& f : deps) sc.control.push_back(detail::id_of(sc, f, "control_dependencies"));
}

ControlDependencies::~ControlDependencies() {
  if (detail::current_scope() == scope_) static_cast<ScopeRecorder*>(scope_)->control = saved_;
}

DeviceScope::DeviceScope(const std::string& device) {
  ScopeRecorder& sc = detail::require_scope("device");
  scope_ = &sc;
  saved_ = sc.device;
  sc.device = detail::normalize_device(device, "device");
}

DeviceScope::~DeviceScope() {
  if (detail::current_scope() == scope_) static_cast<ScopeRecorder*>(scope_)->device = saved_;
}

namespace {
// TF's rules for scope names: at the top level a letter, digit or '.', then
// those or '_', '-', '/', '>'; inside another scope any of them first.
bool valid_scope_name(const std::string& s, bool nested) {
  auto ok = [](char c, bool first) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
           (!first && (c == '_' || c == '-' || c == '/' || c == '>'));
  };
  if (s.empty() || !ok(s[0], !nested)) return false;
  return std::all_of(s.begin() + 1, s.end(), [&](char c) { return ok(c, false); });
}
}  // namespace

NameScope::NameScope(const std::string& name) {
  ScopeRecorder& sc = detail::require_scope("name_scope");
  scope_ = &sc;
  saved_ = sc.name_prefix;
  if (name.empty()) {
    full_ = "";  // TF: back to the top level
  } else if (name.back() == '/') {
    if (!valid_scope_name(name, false))
      throw ValueError(fmt::format("name_scope: \"{}\" is not a valid scope name", name));
    full_ = name;  // a name ending in '/' re-enters that scope as it is
  } else {
    if (!valid_scope_name(name, !sc.name_prefix.empty()) || name.find("//") != std::string::npos)
      throw ValueError(fmt::format("name_scope: \"{}\" is not a valid scope name", name));
    // A scope name is a graph name: a second "layer" scope is "layer_1/".
    auto& g = *sc.graph();
    std::lock_guard<std::recursive_mutex> lk(g.mu);
    full_ = g.unique_name(sc.name_prefix + name) + "/";
  }
  sc.name_prefix = full_;
}

NameScope::~NameScope() {
  if (detail::current_scope() == scope_) static_cast<ScopeRecorder*>(scope_)->name_prefix = saved_;
}

// ---- TF1 op names ----------------------------------------------------------------

using detail::named;

Tensor add(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::add(a.operand(), b.operand()); });
}
Tensor subtract(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::sub(a.operand(), b.operand()); });
}
Tensor multiply(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::mul(a.operand(), b.operand()); });
}
namespace {
// TF's truediv of integers: in float64 (32- and 64-bit ints, Python ints) or
// float32 (uint8); 0 when an operand is not an integer.
DType truediv_dtype(const Operand& a, const Operand& b) {
  bool any_tensor = false, wide = false;
  for (const Operand* o : {&a, &b}) {
    if (o->is_tensor()) {
      const DType d = o->tensor().dtype();
      if (is_floating(d) || d == DType::bool_) return DType::bool_;
      any_tensor = true;
      wide = wide || d != DType::uint8;
    } else if (o->scalar().is_floating()) {
      return DType::bool_;
    }
  }
  return !any_tensor || wide ? DType::float64 : DType::float32;
}
Operand as_dtype(const Operand& o, DType dt, Tensor& keep) {
  keep = o.is_tensor() ? ember::cast(o.tensor(), dt) : scalar_tensor(o.scalar(), dt);
  return Operand(keep);
}
}  // namespace

Tensor divide(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] {
    const Operand x = a.operand(), y = b.operand();
    const DType dt = truediv_dtype(x, y);
    if (dt == DType::bool_) return ember::div(x, y);
    Tensor kx, ky;
    return ember::div(as_dtype(x, dt, kx), as_dtype(y, dt, ky)).to(dt);
  });
}
Tensor maximum(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::maximum(a.operand(), b.operand()); });
}
Tensor minimum(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::minimum(a.operand(), b.operand()); });
}
Tensor equal(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::eq(a.operand(), b.operand()); });
}
Tensor less(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::lt(a.operand(), b.operand()); });
}
Tensor greater(const Value& a, const Value& b, const std::string& n) {
  return named(n, [&] { return ember::gt(a.operand(), b.operand()); });
}
Tensor where(const Tensor& cond, const Value& x, const Value& y, const std::string& n) {
  return named(n, [&] { return ember::where(cond, x.operand(), y.operand()); });
}
Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb, const std::string& n) {
  return named(n, [&] {
    return ember::matmul(ta ? a.transpose(-2, -1) : a, tb ? b.transpose(-2, -1) : b);
  });
}
Tensor reduce_sum(const Tensor& x, const Axes& axis, bool k, const std::string& n) {
  return named(n, [&] {
    // TF keeps an integer sum in x's dtype (it wraps); ember's sum widens to int64.
    const Tensor s = ember::sum(x, axis, k);
    return is_floating(x.dtype()) || x.dtype() == DType::bool_ ? s : s.to(x.dtype());
  });
}
Tensor reduce_mean(const Tensor& x, const Axes& axis, bool k, const std::string& n) {
  return named(n, [&] {
    if (is_floating(x.dtype()) || x.dtype() == DType::bool_) return ember::mean(x, axis, k);
    // TF: an integer mean stays an integer, the sum divided by the count rounded toward zero.
    const Tensor s = ember::sum(x, axis, k);
    const Tensor c = ember::sum(ember::ones_like(x, DType::int64), axis, k);
    const Tensor q = ember::floor_divide(s, c), r = ember::remainder(s, c);
    return ember::where(ember::logical_and(ember::lt(s, 0), ember::ne(r, 0)), q + 1, q).to(x.dtype());
  });
}
Tensor reduce_max(const Tensor& x, const Axes& axis, bool k, const std::string& n) {
  return named(n, [&] { return ember::max(x, axis, k); });
}
Tensor reduce_min(const Tensor& x, const Axes& axis, bool k, const std::string& n) {
  return named(n, [&] { return ember::min(x, axis, k); });
}
Tensor argmax(const Tensor& x, int64_t axis, const std::string& n) {
  return named(n, [&] { return ember::argmax(x, axis); });
}
DynamicShape::DynamicShape(const Tensor& t) : t_(t), static_(static_shape(t)) {}

Dim DynamicShape::operator[](int64_t axis) const {
  const int64_t a = wrap_dim(axis, rank(), "shape");
  const int64_t d = static_[static_cast<std::size_t>(a)];
  return d >= 0 ? Dim(d) : Dim(t_, a);
}

std::vector<Dim> DynamicShape::dims() const {
  std::vector<Dim> out;
  for (int64_t i = 0; i < rank(); ++i) out.push_back((*this)[i]);
  return out;
}

DynamicShape shape(const Tensor& x) { return DynamicShape(x); }

namespace {
// A known size as TF's shape tensors hold it: int32, int64 beyond int32.
Tensor size_constant(int64_t size) {
  if (size > std::numeric_limits<int32_t>::max()) return constant(size);
  return constant(static_cast<int32_t>(size));
}
}  // namespace

Dim::operator Tensor() const {
  if (is_size()) return size_constant(size_);
  if (!detail::current_scope())
    throw ValueError("tf::shape: a size known only when the graph runs becomes a tensor inside the graph's scope");
  // Known only in the run: the sum of a run-sized vector of ones (the fill op
  // takes its length from the tensor's dim), O(size) and without gradient.
  return detail::scoped("", "shape", [&] { return reduce_sum(fill({*this}, 1, DType::int32)); });
}

DynamicShape::operator Tensor() const {
  return detail::scoped("", "shape", [&] {
    if (static_.empty()) return constant(std::vector<int32_t>{}, Shape{0});
    if (std::all_of(static_.begin(), static_.end(),
                    [](int64_t d) { return d >= 0 && d <= std::numeric_limits<int32_t>::max(); }))
      return constant(std::vector<int32_t>(static_.begin(), static_.end()), Shape{rank()});
    std::vector<Tensor> sizes;  // int64 where a known size needs it: stack promotes the rest
    for (const Dim& d : dims()) sizes.push_back(Tensor(d));
    return v1::stack(sizes);
  });
}

Tensor size(const Tensor& x, const std::string& n) {
  const Shape s = static_shape(x);
  if (std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; })) {
    int64_t count = 1;
    for (int64_t d : s) count *= d;
    return named(n.empty() ? "size" : n, [&] { return size_constant(count); });
  }
  return detail::scoped(n, "size", [&] { return reduce_prod(Tensor(shape(x))); });
}

Tensor rank(const Tensor& x, const std::string& n) {
  return named(n.empty() ? "rank" : n, [&] { return constant(static_cast<int32_t>(x.dim())); });
}

namespace {

// A shape argument as a node's attribute: numbers, and for each size known
// only in the run the (node, dim) it is read from (Node::dims_of).
struct DimsPlan {
  Shape ints, static_shape;
  std::vector<std::pair<int, int>> dims_of;
  bool linked = false;
};

DimsPlan plan_dims(ScopeRecorder* sc, const Dims& dims, const char* who) {
  DimsPlan p;
  for (const Dim& d : dims.list()) {
    int64_t size = d.size();
    std::pair<int, int> from{-1, -1};
    if (!d.is_size()) {
      if (!sc) throw ValueError(fmt::format("{}: a size read from a graph tensor needs the graph's scope", who));
      const int id = sc->node_of(d.of(), who);
      const Shape& st = sc->graph()->nodes[static_cast<std::size_t>(id)].shape;
      if (d.axis() < 0 || d.axis() >= static_cast<int64_t>(st.size()))
        throw ValueError(fmt::format("{}: dim {} of a tensor of rank {}", who, d.axis(), st.size()));
      size = st[static_cast<std::size_t>(d.axis())];
      if (size < 0) {
        from = {id, static_cast<int>(d.axis())};
        p.linked = true;
      }
    } else if (size < -1) {
      throw ShapeError(fmt::format("{}: invalid size {} in a shape", who, size));
    }
    p.ints.push_back(from.first >= 0 ? detail::kStandIn : size);
    p.static_shape.push_back(size);
    p.dims_of.push_back(from);
  }
  return p;
}

}  // namespace

Tensor reshape(const Tensor& x, const Dims& shape, const std::string& n) {
  return named(n, [&] {
    ScopeRecorder* sc = detail::current_scope();
    std::unique_lock<std::recursive_mutex> lk;
    if (sc) lk = std::unique_lock<std::recursive_mutex>(sc->graph()->mu);
    DimsPlan p = plan_dims(sc, shape, "reshape");
    if (!p.linked) {
      if (lk.owns_lock()) lk.unlock();
      // A graph tensor's unknown dims make its element count unknown: its
      // graph's rule sizes a -1 (Note [Unknown dims]).
      return x.reshape(p.ints);
    }
    if (std::count(p.ints.begin(), p.ints.end(), -1) > 1)
      throw ShapeError(fmt::format("reshape: only one dim can be -1 (shape {})", shape_str(p.static_shape)));
    // The session sizes the -1 and the linked dims (Node::dims_of) from the run.
    dispatch::Attrs a;
    a.ints = p.ints;
    const int src = sc->node_of(x, "reshape");
    return symbolic(sc->graph(), sc->shaped_by(OpId::reshape, {src}, std::move(a), std::move(p.dims_of),
                                               p.static_shape, sc->graph()->nodes[static_cast<std::size_t>(src)].dtype));
  });
}
Tensor transpose(const Tensor& x, const Axes& perm, const std::string& n) {
  return named(n, [&] {
    Axes p = perm;
    if (p.empty())
      for (int64_t i = x.dim(); i-- > 0;) p.push_back(i);
    return x.permute(p);
  });
}
Tensor concat(const std::vector<Tensor>& v, int64_t axis, const std::string& n) {
  return named(n, [&] { return ember::concat(v, axis); });
}
Tensor stack(const std::vector<Tensor>& v, int64_t axis, const std::string& n) {
  // Static shapes must agree where known (ember::stack leaves graph tensors'
  // shapes to concat's rule, whose message would show the unsqueezed shapes).
  std::vector<Shape> shapes;
  for (const Tensor& t : v) shapes.push_back(static_shape(t));
  std::vector<std::size_t> first_known(shapes.empty() ? 0 : shapes[0].size(), 0);
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    std::size_t other = 0;
    bool match = shapes[i].size() == shapes[0].size();
    for (std::size_t d = 0; match && d < shapes[i].size(); ++d) {
      if (shapes[i][d] < 0) continue;
      other = first_known[d];
      match = shapes[other][d] < 0 || shapes[other][d] == shapes[i][d];
      if (shapes[other][d] < 0) first_known[d] = i;
    }
    if (!match)
      throw ShapeError(fmt::format("stack: tensor {} has shape {} but tensor {} has {}; all must match", i,
                                   shape_str(shapes[i]), other, shape_str(shapes[other])));
  }
  return named(n, [&] { return ember::stack(v, axis); });
}
Tensor cast(const Tensor& x, DType dt, const std::string& n) {
  return named(n, [&] { return ember::cast(x, dt); });
}
Tensor square(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::mul(x, x); });
}
Tensor sqrt(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::sqrt(x); });
}
Tensor exp(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::exp(x); });
}
Tensor log(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::log(x); });
}
using detail::built;

Tensor zeros(const Shape& shape, DType dt, const std::string& n) {
  return named(n, [&] { return built([&] { return ember::zeros(shape, dt); }); });
}
Tensor ones(const Shape& shape, DType dt, const std::string& n) {
  return named(n, [&] { return built([&] { return ember::ones(shape, dt); }); });
}
Tensor zeros_like(const Tensor& x, std::optional<DType> dt, const std::string& n) {
  return named(n, [&] { return built([&] { return ember::zeros_like(x, dt); }); });
}
Tensor ones_like(const Tensor& x, std::optional<DType> dt, const std::string& n) {
  return named(n, [&] { return built([&] { return ember::ones_like(x, dt); }); });
}
namespace {
// A creation node of `op` (attrs `a`, without its shape) whose sizes may be
// dims of tensors in the run; `eager` makes it when every size is a number.
template <class Eager>
Tensor create_sized(OpId op, const Dims& shape, DType dt, dispatch::Attrs a, const char* who, Eager&& eager) {
  ScopeRecorder* sc = detail::current_scope();
  std::unique_lock<std::recursive_mutex> lk;
  if (sc) lk = std::unique_lock<std::recursive_mutex>(sc->graph()->mu);
  DimsPlan p = plan_dims(sc, shape, who);
  for (int64_t d : p.ints)
    if (d == -1)
      throw ShapeError(fmt::format("{}: -1 is not a size here (shape {}); read unknown sizes from a tensor, e.g. "
                                   "tf::shape(x)[0]", who, shape_str(p.static_shape)));
  if (!p.linked) {
    if (lk.owns_lock()) lk.unlock();
    return built([&] { return eager(p.ints); });
  }
  a.ints = p.ints;
  a.dtype = dt;
  a.device = Device::cpu();  // the session places it (Note [Placement])
  return symbolic(sc->graph(), sc->shaped_by(op, {}, std::move(a), std::move(p.dims_of), p.static_shape, dt));
}

// Samples of `op` (rand, randn, truncated_normal) drawn again on every run; sizes may be linked to tensors.
Tensor draw(OpId op, const Dims& shape, DType dt, const char* who) {
  if (dt != DType::float32 && dt != DType::float64)
    throw DTypeError(fmt::format("{}: samples are float32 or float64 (got {})", who, dtype_name(dt)));
  return create_sized(op, shape, dt, {}, who, [&](const Shape& s) {
    switch (op) {
      case OpId::randn: return ember::randn(s, dt);
      case OpId::truncated_normal: return ember::truncated_normal(s, dt);
      default: return ember::rand(s, dt);
    }
  });
}

// TF converts a Python number to int32 (int64 when it needs it), float32 or bool.
DType tf_dtype(const Scalar& v) {
  if (v.is_floating()) return DType::float32;
  if (v.kind() == Scalar::Kind::boolean) return DType::bool_;
  return detail::holds_exactly(v, DType::int32) ? DType::int32 : DType::int64;
}

// TF's range makes these dtypes only.
void check_range_dtype(DType dt) {
  if (dt != DType::int32 && dt != DType::int64 && dt != DType::float32 && dt != DType::float64)
    throw DTypeError(fmt::format("range: dtype {} is not one of int32, int64, float32, float64", dtype_name(dt)));
}

// A number an integer dtype cannot hold as it is: ValueError, as TF refuses to convert it.
void check_holds(const Scalar& v, DType dt, const char* who) {
  if (is_floating(dt) || detail::holds_exactly(v, dt)) return;
  throw ValueError(fmt::format("{}: {} cannot be held exactly in dtype {}", who, v.str(), dtype_name(dt)));
}
}  // namespace

Tensor fill(const Dims& dims, Scalar value, std::optional<DType> dtype, const std::string& n) {
  const DType dt = dtype.value_or(tf_dtype(value));
  check_holds(value, dt, "fill");
  return named(n, [&] {
    return create_sized(OpId::fill, dims, dt, dispatch::fill_attrs(value, dt), "fill",
                        [&](const Shape& s) { return ember::full(s, value, dt); });
  });
}

Tensor range(Scalar start, Scalar limit, Scalar delta, std::optional<DType> dtype, const std::string& n) {
  bool floats = false, wide = false;
  for (const Scalar& v : {start, limit, delta}) {
    floats = floats || v.is_floating();
    wide = wide || tf_dtype(v) == DType::int64;
  }
  const DType dt = dtype.value_or(floats ? DType::float32 : (wide ? DType::int64 : DType::int32));
  check_range_dtype(dt);
  for (const Scalar& v : {start, limit, delta}) check_holds(v, dt, "range");
  const double b = start.to_double(), e = limit.to_double(), d = delta.to_double();
  if (d == 0) throw ValueError("range: requires delta != 0");
  if (d > 0 && b > e)
    throw ValueError(fmt::format("range: requires start <= limit when delta > 0: {}/{}", start.str(), limit.str()));
  if (d < 0 && b < e)
    throw ValueError(fmt::format("range: requires start >= limit when delta < 0: {}/{}", start.str(), limit.str()));
  return named(n.empty() ? "range" : n, [&] { return built([&] { return ember::arange(start, limit, delta, dt); }); });
}

Tensor range(Scalar limit, std::optional<DType> dtype, const std::string& n) { return range(0, limit, 1, dtype, n); }

namespace detail {
Tensor range_of_size(const Dim& limit, std::optional<DType> dtype, const std::string& n) {
  const DType dt = dtype.value_or(DType::int32);  // tf.shape's dtype
  check_range_dtype(dt);
  if (limit.is_size() && limit.size() < 0)
    throw ValueError(fmt::format("range: requires start <= limit when delta > 0: 0/{}", limit.size()));
  dispatch::Attrs a;  // start 0, step 1 (the arange kernel's attrs)
  a.f1 = 1;
  a.i1 = 1;
  // The result's one dim is the size itself: a creation node sized in the run.
  return named(n.empty() ? "range" : n, [&] {
    return create_sized(OpId::arange, Dims{limit}, dt, a, "range",
                        [&](const Shape& s) { return ember::arange(0, s[0], 1, dt); });
  });
}
}  // namespace detail

Tensor random_normal(const Dims& shape, double mean, double stddev, const std::string& n) {
  return named(n, [&] {
    return built([&] { return draw(OpId::randn, shape, DType::float32, "random_normal") * stddev + mean; });
  });
}

Tensor random_normal(const Dims& shape, double mean, double stddev, DType dtype, const std::string& n) {
  return named(n, [&] {
    return built([&] { return draw(OpId::randn, shape, dtype, "random_normal") * stddev + mean; });
  });
}

Tensor truncated_normal(const Dims& shape, double mean, double stddev, DType dtype, const std::string& n) {
  if (!(stddev >= 0.0))
    throw ValueError(fmt::format("truncated_normal: stddev must be >= 0 (got {})", stddev));
  return named(n, [&] {
    return built([&] { return draw(OpId::truncated_normal, shape, dtype, "truncated_normal") * stddev + mean; });
  });
}

Tensor random_uniform(const Dims& shape, double minval, double maxval, DType dtype, const std::string& n) {
  if (!(minval < maxval))
    throw ValueError(fmt::format("random_uniform: minval {} must be below maxval {}", minval, maxval));
  return named(n, [&] {
    return built([&] { return draw(OpId::rand, shape, dtype, "random_uniform") * (maxval - minval) + minval; });
  });
}

namespace {
// gather of indices of rank 0 or >= 2: one index_select of the flat ids, reshaped.
Tensor gather_nd_ids(const Tensor& params, const Tensor& indices, int64_t a) {
  const int64_t r = params.dim();
  const Tensor picked = ember::index_select(params, a, indices.reshape({-1}), false);
  if (indices.dim() == 0) return picked.select(a, 0);
  // The picked dim splits into the indices' dims.
  const Shape ps = static_shape(params), is = static_shape(indices);
  Shape target(ps.begin(), ps.begin() + a);
  for (int64_t d : is) target.push_back(d);
  for (int64_t k = a + 1; k < r; ++k) target.push_back(ps[static_cast<std::size_t>(k)]);
  if (std::count_if(target.begin(), target.end(), [](int64_t d) { return d < 0; }) <= 1)
    return picked.reshape(target);  // a -1 is sized when the graph runs
  // Several unknown dims: the run's shape comes from a tensor shaped like
  // the result (only its shape is read: the executor never computes it).
  // params' dims other than `axis` (any of them unknown), then the ids' dims.
  Tensor like = ember::sum(ember::zeros_like(params, DType::float32), {a}, true);
  for (int64_t k = 1; k < indices.dim(); ++k) like = like.unsqueeze(a);
  Tensor spread = ember::zeros_like(indices, DType::float32);
  for (int64_t k = 0; k < a; ++k) spread = spread.unsqueeze(0);
  for (int64_t k = a + 1; k < r; ++k) spread = spread.unsqueeze(-1);
  return detail::require_scope("gather").reshape_like(picked, like + spread);
}
}  // namespace


Tensor gather(const Tensor& params, const Tensor& indices, int64_t axis, const std::string& n) {
  const int64_t r = params.dim();
  if (r == 0) throw ShapeError("gather: params must have at least 1 dim (got a 0-d tensor)");
  const int64_t a = wrap_dim(axis, r, "gather");
  // TF's gather refuses negative ids (index_select would wrap them).
  if (indices.dim() == 1) return named(n, [&] { return ember::index_select(params, a, indices, false); });
  // Its parts in a name scope, so that an error in the run names them after it.
  return detail::scoped(n, "gather", [&] { return gather_nd_ids(params, indices, a); });
}

namespace nn {
Tensor dropout(const Tensor& x, const Value& keep_prob, const std::string& n) {
  const Operand kp = keep_prob.operand();
  if (!kp.is_tensor() && !(kp.scalar().to_double() > 0.0 && kp.scalar().to_double() <= 1.0))
    throw ValueError(fmt::format("dropout: keep_prob must be in (0, 1] (got {})", kp.scalar().to_double()));
  if (!is_floating(x.dtype()))
    throw DTypeError(fmt::format("dropout: x has dtype {}; dropout needs a floating tensor", dtype_name(x.dtype())));
  return named(n.empty() ? "dropout" : n, [&] {
    // As TF1: keep where floor(keep_prob + U[0, 1)) is 1, scaled by 1 / keep_prob.
    const DType dt = x.dtype() == DType::float64 ? DType::float64 : DType::float32;
    const Tensor keep = ember::floor(ember::add(random_uniform(shape(x), 0.0, 1.0, dt), kp));
    return ember::mul(ember::div(x, kp), keep.to(x.dtype()));
  });
}

Tensor embedding_lookup(const Tensor& params, const Tensor& ids, const std::string& n) {
  return detail::scoped(n, "embedding_lookup", [&] { return gather(params, ids, 0); });
}
Tensor relu(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::relu(x); });
}
Tensor sigmoid(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::sigmoid(x); });
}
Tensor tanh(const Tensor& x, const std::string& n) {
  return named(n, [&] { return ember::tanh(x); });
}
Tensor softmax(const Tensor& x, int64_t axis, const std::string& n) {
  return named(n, [&] { return ember::softmax(x, axis); });
}
Tensor log_softmax(const Tensor& x, int64_t axis, const std::string& n) {
  return named(n, [&] { return ember::log_softmax(x, axis); });
}
// TF's checks: a rank >= 2 value and a 1-d bias as long as its last dim
// (sizes unknown in graph mode (-1) are not compared).
Tensor bias_add(const Tensor& value, const Tensor& bias, const std::string& n) {
  const Shape vs = static_shape(value), bs = static_shape(bias);
  if (vs.size() < 2)
    throw ShapeError(fmt::format("bias_add: value must have at least 2 dims, got shape {}", shape_str(vs)));
  if (bs.size() != 1) throw ShapeError(fmt::format("bias_add: bias must be 1-d, got shape {}", shape_str(bs)));
  if (vs.back() >= 0 && bs[0] >= 0 && vs.back() != bs[0])
    throw ShapeError(fmt::format("bias_add: bias has {} elements but the last dim of {} has {}", bs[0],
                                 shape_str(vs), vs.back()));
  return named(n, [&] { return ember::add(value, bias); });
}
Tensor xw_plus_b(const Tensor& x, const Tensor& weights, const Tensor& biases, const std::string& n) {
  const Shape xs = static_shape(x), ws = static_shape(weights);
  if (xs.size() != 2 || ws.size() != 2)
    throw ShapeError(fmt::format("xw_plus_b: x and weights must be matrices (2-d), got {} and {}", shape_str(xs),
                                 shape_str(ws)));
  const Shape bs = static_shape(biases);
  if (bs.size() != 1) throw ShapeError(fmt::format("xw_plus_b: biases must be 1-d, got shape {}", shape_str(bs)));
  if (ws[1] >= 0 && bs[0] >= 0 && ws[1] != bs[0])
    throw ShapeError(fmt::format("xw_plus_b: biases has {} elements but weights {} has {} columns", bs[0],
                                 shape_str(ws), ws[1]));
  return named(n.empty() ? "xw_plus_b" : n, [&] { return ember::addmm(biases, x, weights); });
}
}  // namespace nn

}  // namespace ember::compat::v1
