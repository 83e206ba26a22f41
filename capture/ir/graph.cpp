#include "ir/graph.h"

#include <fmt/format.h>

#include <ember/format.h>

#include "dispatch/schema.h"

namespace ember::capture {

std::string ValueInfo::str() const {
  return fmt::format("{}{}{}", dtype_name(dtype), shape_str(shape),
                     device.is_cpu() ? "" : "@" + device.str());
}

const ValueInfo& GraphIR::input_info(int i) const {
  for (const Node& n : nodes)
    if (n.kind == NodeKind::input && n.index == i) return n.out;
  throw InternalError(fmt::format("graph has no input {}", i));
}

namespace {

std::string node_label(const Node& n, const GraphIR& g) {
  switch (n.kind) {
    case NodeKind::input: return fmt::format("input {} \"{}\"", n.index, g.input_names.at(n.index));
    case NodeKind::constant:
      return n.value.numel() <= 4 ? fmt::format("constant [{}]", fmt::join(n.value.to_vector<double>(), ", "))
                                  : std::string("constant");
    case NodeKind::variable_read: return fmt::format("read_variable \"{}\"", Variable(n.var).name());
    case NodeKind::op: return dispatch::op_name(n.op);
    case NodeKind::fused: {
      std::string s = "fused[";
      for (std::size_t i = 0; i < n.fused->instrs.size(); ++i)
        s += (i ? "," : "") + std::string(dispatch::op_name(n.fused->instrs[i].op));
      return s + "]";
    }
    case NodeKind::guard: return "guard";
    case NodeKind::assign:
      return fmt::format("{} \"{}\"",
                         n.assign_kind == dispatch::OpId::add   ? "assign_add"
                         : n.assign_kind == dispatch::OpId::sub ? "assign_sub"
                                                                : "assign",
                         Variable(n.var).name());
  }
  return "?";
}

}  // namespace

std::string GraphIR::str() const {
  std::string s = "graph(";
  for (int i = 0; i < num_inputs(); ++i)
    s += fmt::format("{}%{}: {}", i ? ", " : "", input_names[i], input_info(i).str());
  s += "):\n";
  for (std::size_t id = 0; id < nodes.size(); ++id) {
    const Node& n = nodes[id];
    if (n.kind == NodeKind::input) continue;
    std::string args;
    for (std::size_t k = 0; k < n.inputs.size(); ++k) args += fmt::format("{}%{}", k ? ", " : "", n.inputs[k]);
    std::string attrs = n.kind == NodeKind::op ? n.attrs.str() : "";
    if (n.kind == NodeKind::assign || n.kind == NodeKind::guard)
      s += fmt::format("  {}({})\n", node_label(n, *this), args);
    else
      s += fmt::format("  %{} = {}({}){} : {}\n", id, node_label(n, *this), args,
                       attrs.empty() ? "" : " {" + attrs + "}", n.out.str());
  }
  std::string outs;
  for (std::size_t k = 0; k < outputs.size(); ++k) outs += fmt::format("{}%{}", k ? ", " : "", outputs[k]);
  s += fmt::format("  return ({})\n", outs);
  return s;
}

std::string GraphIR::dot() const {
  std::string s = "digraph ember {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n";
  for (std::size_t id = 0; id < nodes.size(); ++id) {
    const Node& n = nodes[id];
    std::string label = node_label(n, *this);
    std::string esc;
    for (char c : label) {
      if (c == '"' || c == '\\') esc += '\\';
      esc += c;
    }
    s += fmt::format("  n{} [label=\"%{} {}\"{}];\n", id, id, esc,
                     n.kind == NodeKind::input ? ", shape=ellipse" : "");
    for (int in : n.inputs)
      s += fmt::format("  n{} -> n{} [label=\"{}\"];\n", in, id, nodes[in].out.str());
  }
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    s += fmt::format("  out{} [label=\"output {}\", shape=ellipse];\n", k, k);
    s += fmt::format("  n{} -> out{} [label=\"{}\"];\n", outputs[k], k, nodes[outputs[k]].out.str());
  }
  return s + "}\n";
}

void GraphIR::verify(const char* who) const {
  auto fail = [&](std::size_t id, const std::string& what) {
    throw ValueError(fmt::format("{}: node {}: {}", who, id, what));
  };
  std::vector<int> seen_inputs(input_names.size(), 0);
  for (std::size_t id = 0; id < nodes.size(); ++id) {
    const Node& n = nodes[id];
    for (int in : n.inputs)
      if (in < 0 || static_cast<std::size_t>(in) >= id) fail(id, fmt::format("input %{} is not an earlier node", in));
    switch (n.kind) {
      case NodeKind::input:
        if (n.index < 0 || n.index >= num_inputs() || seen_inputs[n.index]++)
          fail(id, fmt::format("bad input index {}", n.index));
        break;
      case NodeKind::constant:
        if (!n.value.defined() || n.value.shape() != n.out.shape || n.value.dtype() != n.out.dtype)
          fail(id, "constant does not match its declared type");
        break;
      case NodeKind::variable_read:
      case NodeKind::assign:
        if (!n.var) fail(id, "no variable");
        if (n.kind == NodeKind::assign && n.inputs.size() != 1) fail(id, "assign takes one value");
        break;
      case NodeKind::guard:
        if (n.inputs.size() != 1 || !n.value.defined()) fail(id, "guard takes one value and an expected value");
        break;
      case NodeKind::op: {
        const auto& sch = dispatch::schema(n.op);
        if (sch.arity >= 0 && static_cast<int>(n.inputs.size()) != sch.arity)
          fail(id, fmt::format("{} takes {} inputs, has {}", sch.name, sch.arity, n.inputs.size()));
        break;
      }
      case NodeKind::fused:
        if (!n.fused) fail(id, "no program");
        break;
    }
  }
  for (int i = 0; i < num_inputs(); ++i)
    if (!seen_inputs[i]) throw ValueError(fmt::format("{}: input {} has no node", who, i));
  for (int o : outputs)
    if (o < 0 || static_cast<std::size_t>(o) >= nodes.size()) throw ValueError(fmt::format("{}: output %{} does not exist", who, o));
}

}  // namespace ember::capture
