#include <cstdio>
#include <fstream>

#include <fmt/format.h>

#include <ember/capture.h>

#include "compiled.h"
#include "dispatch/recorder.h"
#include "dispatch/schema.h"

namespace ember::capture {

namespace {

std::string encode(const std::string& s) {
  if (s.empty()) return "-";
  std::string r;
  for (unsigned char c : s) {
    if (c <= ' ' || c == '%' || c >= 0x7f)
      r += fmt::format("%{:02X}", c);
    else
      r += static_cast<char>(c);
  }
  return r;
}

std::string info_str(const ValueInfo& v) {
  std::string s = fmt::format("{} {}", dtype_name(v.dtype), v.shape.size());
  for (int64_t d : v.shape) s += fmt::format(" {}", d);
  return s + " " + v.device.str();
}

struct Blob {
  std::string bytes;
  std::string add(const Tensor& t) {
    dispatch::RecorderGuard no_recording(nullptr);  // saving is not part of a traced program
    Tensor c = t.to(Device::cpu()).contiguous();  // GPU data is saved through the host
    const std::size_t off = bytes.size();
    const std::size_t n = c.nbytes();
    if (n) bytes.append(static_cast<const char*>(c.impl().data()), n);
    return fmt::format("{} {}", off, n);
  }
};

}  // namespace

void Graph::save(const std::string& path) const {
  const GraphIR& g = impl().traced;
  std::string text = "ember-graph 1\n";
  Blob blob;
  text += fmt::format("inputs {}\n", g.num_inputs());
  for (int i = 0; i < g.num_inputs(); ++i)
    text += fmt::format("input {} {} {}\n", i, encode(g.input_names[i]), info_str(g.input_info(i)));
  std::vector<std::shared_ptr<Variable::State>> vars;
  for (const Node& n : g.nodes)
    if (n.var && std::find(vars.begin(), vars.end(), n.var) == vars.end()) vars.push_back(n.var);
  auto var_index = [&](const std::shared_ptr<Variable::State>& v) {
    return std::find(vars.begin(), vars.end(), v) - vars.begin();
  };
  text += fmt::format("variables {}\n", vars.size());
  for (std::size_t k = 0; k < vars.size(); ++k) {
    const Tensor& v = vars[k]->value;
    text += fmt::format("variable {} {} {} {}\n", k, encode(vars[k]->name),
                        info_str({v.shape(), v.dtype(), v.device()}), blob.add(v));
  }
  text += fmt::format("nodes {}\n", g.nodes.size());
  for (std::size_t id = 0; id < g.nodes.size(); ++id) {
    const Node& n = g.nodes[id];
    switch (n.kind) {
      case NodeKind::input: text += fmt::format("node {} input {} {}\n", id, n.index, info_str(n.out)); break;
      case NodeKind::constant:
        text += fmt::format("node {} constant {} {}\n", id, info_str(n.out), blob.add(n.value));
        break;
      case NodeKind::variable_read:
        text += fmt::format("node {} read_variable {} {}\n", id, var_index(n.var), info_str(n.out));
        break;
      case NodeKind::guard:
        text += fmt::format("node {} guard {} {} {}\n", id, n.inputs.at(0), info_str(n.out), blob.add(n.value));
        break;
      case NodeKind::assign:
        text += fmt::format("node {} assign {} {} {}\n", id, var_index(n.var), n.inputs.at(0), info_str(n.out));
        break;
      case NodeKind::op: {
        const auto& a = n.attrs;
        std::string s = fmt::format("node {} op {} {} in {}", id, dispatch::op_name(n.op), info_str(n.out),
                                    n.inputs.size());
        for (int in : n.inputs) s += fmt::format(" {}", in);
        s += fmt::format(" attrs {}", a.ints.size());
        for (int64_t v : a.ints) s += fmt::format(" {}", v);
        s += fmt::format(" {} {} {} {} {:a} {:a} {} {} {}\n", a.i0, a.i1, a.i2, a.i3, a.f0, a.f1,
                         dtype_name(a.dtype), static_cast<int>(a.flags), a.device.str());
        text += s;
        break;
      }
      case NodeKind::fused:
        throw InternalError("Graph::save: the traced graph has a fused node");
    }
  }
  text += fmt::format("outputs {}", g.outputs.size());
  for (int o : g.outputs) text += fmt::format(" {}", o);
  text += fmt::format("\nwriteback {}", g.input_writeback.size());
  for (int w : g.input_writeback) text += fmt::format(" {}", w);
  text += fmt::format("\ndata {}\n", blob.bytes.size());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw ValueError(fmt::format("Graph::save: {}: cannot open the file for writing", path));
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  f.write(blob.bytes.data(), static_cast<std::streamsize>(blob.bytes.size()));
  f.flush();
  if (!f) {
    f.close();
    std::remove(path.c_str());
    throw ValueError(fmt::format("Graph::save: {}: write failed", path));
  }
}

}  // namespace ember::capture
