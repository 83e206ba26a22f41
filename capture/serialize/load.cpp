// Graph::load: a strict parser for format.md. Every count, id, shape and byte
// range is checked before it is used, so a corrupt or hostile file raises
// ValueError and never allocates by a size it has not checked.
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include <ember/capture.h>

#include "compiled.h"
#include "dispatch/dispatcher.h"
#include "dispatch/schema.h"

namespace ember::capture {

namespace detail {
Graph load_bytes(std::string_view bytes, const std::string& what, const Options& options);
}

namespace {

constexpr int64_t kMaxCount = int64_t(1) << 22;
constexpr int64_t kMaxRank = 64;

struct Parser {
  std::string_view text;
  std::string what;
  std::size_t pos = 0;
  std::vector<std::string_view> toks;
  std::size_t ti = 0;
  int line = 0;

  [[noreturn]] void fail(const std::string& msg) const {
    throw ValueError(fmt::format("Graph::load: {}: line {}: {}", what, line, msg));
  }
  void next_line() {
    if (pos >= text.size()) fail("unexpected end of file");
    const std::size_t e = text.find('\n', pos);
    if (e == std::string_view::npos) fail("unterminated line");
    std::string_view l = text.substr(pos, e - pos);
    pos = e + 1;
    ++line;
    toks.clear();
    ti = 0;
    std::size_t s = 0;
    while (s <= l.size()) {
      std::size_t sp = l.find(' ', s);
      if (sp == std::string_view::npos) sp = l.size();
      if (sp == s) fail("empty token");
      toks.push_back(l.substr(s, sp - s));
      s = sp + 1;
    }
  }
  std::string_view tok() {
    if (ti >= toks.size()) fail("missing field");
    return toks[ti++];
  }
  void expect(std::string_view w) {
    std::string_view t = tok();
    if (t != w) fail(fmt::format("expected '{}', found '{}'", w, std::string(t.substr(0, 40))));
  }
  void end() {
    if (ti != toks.size()) fail("unexpected extra fields");
  }
  int64_t integer(int64_t lo, int64_t hi) {
    std::string_view t = tok();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size()) fail(fmt::format("'{}' is not an integer", std::string(t.substr(0, 40))));
    if (v < lo || v > hi) fail(fmt::format("{} is out of range ({}..{})", v, lo, hi));
    return v;
  }
  double real() {
    std::string s(tok());
    if (s.size() > 64) fail("number too long");
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) fail(fmt::format("'{}' is not a number", s));
    return v;
  }
  DType dtype() {
    std::string_view t = tok();
    for (int i = 0; i < kNumDTypes; ++i)
      if (t == dtype_name(static_cast<DType>(i))) return static_cast<DType>(i);
    fail(fmt::format("unknown dtype '{}'", std::string(t.substr(0, 40))));
  }
  Device device() {
    std::string_view t = tok();
    if (t == "cpu") return Device::cpu();
    if (t.substr(0, 5) == "cuda:" && t.size() == 6 && t[5] >= '0' && t[5] <= '7') return Device::cuda(t[5] - '0');
    fail(fmt::format("unknown device '{}'", std::string(t.substr(0, 40))));
  }
  ValueInfo info() {
    ValueInfo v;
    v.dtype = dtype();
    const int64_t rank = integer(0, kMaxRank);
    int64_t n = 1;
    for (int64_t i = 0; i < rank; ++i) {
      const int64_t d = integer(0, int64_t(1) << 40);
      if (__builtin_mul_overflow(n, d, &n) || n > (int64_t(1) << 40)) fail("shape too large");
      v.shape.push_back(d);
    }
    v.device = device();
    return v;
  }
  std::string name() {
    std::string_view t = tok();
    if (t == "-") return "";
    std::string r;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i] == '%') {
        if (i + 2 >= t.size()) fail("bad escape in name");
        int v = 0;
        auto [p, ec] = std::from_chars(t.data() + i + 1, t.data() + i + 3, v, 16);
        if (ec != std::errc() || p != t.data() + i + 3) fail("bad escape in name");
        r += static_cast<char>(v);
        i += 2;
      } else {
        r += t[i];
      }
    }
    return r;
  }
};

struct DataRef {
  int64_t offset, nbytes;
  int line;
};

}  // namespace

namespace detail {

Graph load_bytes(std::string_view bytes, const std::string& what, const Options& options) {
  Parser p;
  p.text = bytes;
  p.what = what;
  p.next_line();
  p.expect("ember-graph");
  const int64_t version = p.integer(0, 1 << 30);
  if (version != 1) p.fail(fmt::format("unsupported version {} (this build reads version 1)", version));
  p.end();

  GraphIR g;
  std::vector<std::pair<ValueInfo, DataRef>> var_data;
  std::vector<std::string> var_names;
  std::vector<std::pair<int, DataRef>> node_data;  // node id -> data for constants/guards
  auto data_ref = [&](const ValueInfo& v) {
    DataRef r{p.integer(0, int64_t(1) << 50), p.integer(0, int64_t(1) << 50), p.line};
    if (r.nbytes != shape_numel(v.shape) * static_cast<int64_t>(itemsize(v.dtype)))
      p.fail(fmt::format("{} data bytes for a {} tensor", r.nbytes, v.str()));
    return r;
  };

  p.next_line();
  p.expect("inputs");
  const int64_t n_inputs = p.integer(0, kMaxCount);
  p.end();
  std::vector<ValueInfo> input_infos;
  for (int64_t i = 0; i < n_inputs; ++i) {
    p.next_line();
    p.expect("input");
    if (p.integer(0, kMaxCount) != i) p.fail("inputs out of order");
    g.input_names.push_back(p.name());
    input_infos.push_back(p.info());
    p.end();
  }
  g.input_writeback.assign(static_cast<std::size_t>(n_inputs), -1);

  p.next_line();
  p.expect("variables");
  const int64_t n_vars = p.integer(0, kMaxCount);
  p.end();
  for (int64_t k = 0; k < n_vars; ++k) {
    p.next_line();
    p.expect("variable");
    if (p.integer(0, kMaxCount) != k) p.fail("variables out of order");
    var_names.push_back(p.name());
    ValueInfo vi = p.info();
    DataRef r = data_ref(vi);
    var_data.push_back({vi, r});
    p.end();
  }

  std::map<std::string_view, dispatch::OpId> ops;
  for (int i = 0; i < dispatch::kNumOps; ++i)
    ops[dispatch::op_name(static_cast<dispatch::OpId>(i))] = static_cast<dispatch::OpId>(i);

  p.next_line();
  p.expect("nodes");
  const int64_t n_nodes = p.integer(0, kMaxCount);
  p.end();
  std::vector<int> var_of_node;
  for (int64_t id = 0; id < n_nodes; ++id) {
    p.next_line();
    p.expect("node");
    if (p.integer(0, kMaxCount) != id) p.fail("nodes out of order");
    std::string_view kind = p.tok();
    Node n;
    int var = -1;
    auto earlier = [&] { return static_cast<int>(p.integer(0, id - 1)); };
    if (kind == "input") {
      n.kind = NodeKind::input;
      n.index = static_cast<int>(p.integer(0, n_inputs - 1));
      n.out = p.info();
      if (!(n.out == input_infos[n.index])) p.fail("input node does not match its declaration");
    } else if (kind == "constant") {
      n.kind = NodeKind::constant;
      n.out = p.info();
      node_data.push_back({static_cast<int>(id), data_ref(n.out)});
    } else if (kind == "read_variable") {
      n.kind = NodeKind::variable_read;
      var = static_cast<int>(p.integer(0, n_vars - 1));
      n.out = p.info();
    } else if (kind == "guard") {
      n.kind = NodeKind::guard;
      if (id == 0) p.fail("a guard needs an earlier node");
      n.inputs = {earlier()};
      n.out = p.info();
      node_data.push_back({static_cast<int>(id), data_ref(n.out)});
    } else if (kind == "assign") {
      n.kind = NodeKind::assign;
      var = static_cast<int>(p.integer(0, n_vars - 1));
      if (id == 0) p.fail("an assignment needs an earlier node");
      n.inputs = {earlier()};
      n.out = p.info();
    } else if (kind == "op") {
      n.kind = NodeKind::op;
      std::string_view name = p.tok();
      auto it = ops.find(name);
      if (it == ops.end()) p.fail(fmt::format("unknown op '{}'", std::string(name.substr(0, 40))));
      n.op = it->second;
      n.out = p.info();
      p.expect("in");
      const int64_t k = p.integer(0, 1 << 16);
      if (k > 0 && id == 0) p.fail("the first node cannot read others");
      for (int64_t j = 0; j < k; ++j) n.inputs.push_back(earlier());
      p.expect("attrs");
      const int64_t ni = p.integer(0, kMaxRank);
      for (int64_t j = 0; j < ni; ++j) n.attrs.ints.push_back(p.integer(INT64_MIN, INT64_MAX));
      n.attrs.i0 = p.integer(INT64_MIN, INT64_MAX);
      n.attrs.i1 = p.integer(INT64_MIN, INT64_MAX);
      n.attrs.i2 = p.integer(INT64_MIN, INT64_MAX);
      n.attrs.i3 = p.integer(INT64_MIN, INT64_MAX);
      n.attrs.f0 = p.real();
      n.attrs.f1 = p.real();
      n.attrs.dtype = p.dtype();
      n.attrs.flags = static_cast<uint8_t>(p.integer(0, 255));
      n.attrs.device = p.device();
    } else {
      p.fail(fmt::format("unknown node kind '{}'", std::string(kind.substr(0, 40))));
    }
    p.end();
    var_of_node.push_back(var);
    g.nodes.push_back(std::move(n));
  }
  auto id_list = [&](const char* word, std::vector<int>& out, int64_t lo) {
    p.next_line();
    p.expect(word);
    const int64_t k = p.integer(0, kMaxCount);
    for (int64_t j = 0; j < k; ++j) out.push_back(static_cast<int>(p.integer(lo, n_nodes - 1)));
    p.end();
  };
  id_list("outputs", g.outputs, 0);
  std::vector<int> wb;
  id_list("writeback", wb, -1);
  if (static_cast<int64_t>(wb.size()) != n_inputs) p.fail("writeback needs one entry per input");
  g.input_writeback = wb;
  p.next_line();
  p.expect("data");
  const int64_t n_data = p.integer(0, int64_t(1) << 50);
  p.end();
  const std::string_view data = bytes.substr(p.pos);
  if (static_cast<int64_t>(data.size()) != n_data)
    throw ValueError(fmt::format("Graph::load: {}: the data section has {} bytes, the header says {}",
                                 what, data.size(), n_data));
  auto tensor_at = [&](const ValueInfo& vi, const DataRef& r) {
    if (r.offset + r.nbytes > n_data)
      throw ValueError(fmt::format("Graph::load: {}: line {}: data range {}+{} is outside the data section", what,
                                   r.line, r.offset, r.nbytes));
    if (!vi.device.is_cpu())
      throw ValueError(fmt::format("Graph::load: {}: line {}: tensor data on {} is not supported", what, r.line,
                                   vi.device.str()));
    Tensor t = ember::detail::make_tensor(vi.shape, vi.dtype, Device::cpu());
    if (r.nbytes) std::memcpy(t.impl().data(), data.data() + r.offset, static_cast<std::size_t>(r.nbytes));
    if (vi.dtype == DType::bool_) {  // any nonzero byte is true; keep bools canonical
      auto* b = static_cast<uint8_t*>(t.impl().data());
      for (int64_t i = 0; i < r.nbytes; ++i) b[i] = b[i] != 0;
    }
    return t;
  };
  std::vector<std::shared_ptr<Variable::State>> vars;
  for (std::size_t k = 0; k < var_data.size(); ++k) {
    Variable v(tensor_at(var_data[k].first, var_data[k].second), var_names[k]);
    vars.push_back(v.state());
  }
  for (auto& [id, r] : node_data) g.nodes[id].value = tensor_at(g.nodes[id].out, r);
  for (std::size_t id = 0; id < g.nodes.size(); ++id) {
    Node& n = g.nodes[id];
    if (var_of_node[id] >= 0) {
      n.var = vars[var_of_node[id]];
      const Tensor& v = n.var->value;
      if (!(n.out == ValueInfo{v.shape(), v.dtype(), v.device()}))
        throw ValueError(fmt::format("Graph::load: {}: node {}: does not match its variable's type", what, id));
    }
  }
  // Each op's recorded output must be what the op's own rule says: shape-only
  // stand-ins (no memory behind them) let infer check it without data.
  std::vector<Tensor> meta(g.nodes.size());
  for (std::size_t id = 0; id < g.nodes.size(); ++id) {
    Node& n = g.nodes[id];
    if (n.kind == NodeKind::constant) {
      meta[id] = n.value;
      continue;
    }
    if (shape_numel(n.out.shape) * static_cast<int64_t>(itemsize(n.out.dtype)) > (int64_t(1) << 50))
      throw ValueError(fmt::format("Graph::load: {}: node {}: value too large", what, id));
    auto* impl = new ember::detail::TensorImpl;
    ember::detail::Ref<ember::detail::TensorImpl> ref(impl);
    impl->storage = ember::detail::Storage::allocate(0, Device::cpu());
    impl->shape = n.out.shape;
    impl->strides = Strides(n.out.shape.size(), 0);
    impl->dtype = n.out.dtype;
    impl->device = n.out.device;
    impl->refresh();
    meta[id] = Tensor(std::move(ref));
    if (n.kind == NodeKind::guard || n.kind == NodeKind::assign) {
      if (!(g.nodes[n.inputs[0]].out == n.out))
        throw ValueError(fmt::format("Graph::load: {}: node {}: type differs from its input's", what, id));
    }
    if (n.kind != NodeKind::op) continue;
    const auto& sch = dispatch::schema(n.op);
    if (sch.arity >= 0 && static_cast<int>(n.inputs.size()) != sch.arity)
      throw ValueError(fmt::format("Graph::load: {}: node {}: {} takes {} inputs, has {}", what, id, sch.name,
                                   sch.arity, n.inputs.size()));
    std::vector<Tensor> ins;
    for (int in : n.inputs) ins.push_back(meta[in]);
    const bool reads_values = (sch.flags & dispatch::kReadsHost) != 0;
    bool data_ok = true;
    for (int in : n.inputs) data_ok = data_ok && (!reads_values || g.nodes[in].kind == NodeKind::constant);
    if (!data_ok) continue;  // checked at run time (kReadsHost ops run their rule on every replay)
    try {
      const auto m = sch.infer(n.op, dispatch::Inputs(ins.data(), ins.size()), n.attrs);
      if (!(ValueInfo{m.shape, m.dtype, m.device} == n.out))
        throw ValueError(fmt::format("recorded as {} but the op gives {}", n.out.str(),
                                     ValueInfo{m.shape, m.dtype, m.device}.str()));
    } catch (const Error& e) {
      throw ValueError(fmt::format("Graph::load: {}: node {} ({}): {}", what, id, sch.name, e.what()));
    }
  }
  g.verify(("Graph::load: " + what).c_str());
  return Graph(compile(std::move(g), options));
}

}  // namespace detail

Graph Graph::load(const std::string& path, const Options& options) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ValueError(fmt::format("Graph::load: {}: cannot open the file", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return detail::load_bytes(ss.str(), path, options);
}

}  // namespace ember::capture
