// tf::train::Saver: variable values to and from a checkpoint file
// (format: capture/compat/v1/checkpoint.md).
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include <ember/compat/v1.h>
#include <ember/ember.h>

#include "compat/v1/state.h"
#include "dispatch/recorder.h"

namespace ember::compat::v1 {

namespace train {

namespace {

std::string encode(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == '%' || c >= 0x7f)
      o += fmt::format("%{:02X}", c);
    else
      o += static_cast<char>(c);
  }
  return o;
}

std::string decode(const std::string& s, const std::string& path) {
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      o += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      throw ValueError(fmt::format("Saver::restore: {}: bad name encoding \"{}\"", path, s));
    o += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  return o;
}

std::vector<Variable> resolve(const std::vector<Variable>& given, Session& sess) {
  if (!given.empty()) {
    for (const Variable& v : given)
      if (v.graph_state() != sess.graph().state())
        throw ValueError(fmt::format("Saver: variable \"{}\" is not in the session's graph", v.name()));
    return given;
  }
  const auto& g = sess.graph().state();
  std::lock_guard<std::recursive_mutex> lk(g->mu);
  std::vector<Variable> vs;
  for (std::size_t i = 0; i < g->vars.size(); ++i)
    if (!g->vars[i].external) vs.emplace_back(g, static_cast<int>(i));
  return vs;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  int64_t offset, nbytes;
};

}  // namespace

Saver::Saver(std::vector<Variable> vars) : vars_(std::move(vars)) {
  if (!vars_.empty() || !detail::current_scope()) return;
  vars_ = global_variables();
  if (vars_.empty()) throw ValueError("Saver: the default graph has no variables to save");
}

std::string Saver::save(Session& sess, const std::string& path) const {
  auto& st = *sess.state();
  detail::check_session_open(st, "Saver::save");
  dispatch::RecorderGuard off(nullptr);
  const auto vars = resolve(vars_, sess);
  std::string head = fmt::format("ember-checkpoint 1\nvariables {}\n", vars.size());
  std::vector<Tensor> values;
  int64_t offset = 0;
  for (const Variable& v : vars) {
    auto sv = detail::session_var(st, v.index());
    if (!sv->initialized.load())
      throw ValueError(fmt::format("Saver::save: variable \"{}\" is not initialized in this session", sv->name));
    Tensor t = sv->state->value.to(Device::cpu()).contiguous();  // GPU variables too
    head += fmt::format("variable {} {} {}", encode(sv->name), dtype_name(t.dtype()), t.dim());
    for (int64_t d : t.shape()) head += fmt::format(" {}", d);
    head += fmt::format(" {} {}\n", offset, t.nbytes());
    offset += static_cast<int64_t>(t.nbytes());
    values.push_back(t);
  }
  head += fmt::format("data {}\n", offset);
  std::ofstream f(path, std::ios::binary);
  if (!f) throw ValueError(fmt::format("Saver::save: {}: cannot open the file for writing", path));
  f.write(head.data(), static_cast<std::streamsize>(head.size()));
  for (const Tensor& t : values)
    f.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!f) throw ValueError(fmt::format("Saver::save: {}: write failed", path));
  return path;
}

void Saver::restore(Session& sess, const std::string& path) const {
  auto& st = *sess.state();
  detail::check_session_open(st, "Saver::restore");
  dispatch::RecorderGuard off(nullptr);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ValueError(fmt::format("Saver::restore: {}: cannot open the file", path));
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  auto fail = [&](const std::string& what) -> void {
    throw ValueError(fmt::format("Saver::restore: {}: {}", path, what));
  };
  // The text part ends at the line starting with "data".
  std::size_t pos = 0;
  auto line = [&]() {
    const std::size_t e = bytes.find('\n', pos);
    if (e == std::string::npos) fail("truncated header");
    std::string l = bytes.substr(pos, e - pos);
    pos = e + 1;
    std::istringstream is(l);
    std::vector<std::string> toks;
    for (std::string t; is >> t;) toks.push_back(t);
    return toks;
  };
  auto integer = [&](const std::string& s, int64_t lo, int64_t hi) {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(s, &used);
      if (used != s.size() || v < lo || v > hi) fail(fmt::format("number {} out of range", s));
      return static_cast<int64_t>(v);
    } catch (const std::logic_error&) {
      fail(fmt::format("\"{}\" is not a number", s));
    }
    return int64_t{0};
  };
  auto t = line();
  if (t.size() != 2 || t[0] != "ember-checkpoint") fail("not an ember checkpoint");
  if (t[1] != "1") fail(fmt::format("version {} is not supported (this build reads version 1)", t[1]));
  t = line();
  if (t.size() != 2 || t[0] != "variables") fail("expected \"variables <n>\"");
  const int64_t n = integer(t[1], 0, 1 << 24);
  std::vector<Entry> entries;
  for (int64_t k = 0; k < n; ++k) {
    t = line();
    if (t.size() < 4 || t[0] != "variable") fail("expected \"variable ...\"");
    Entry e;
    e.name = decode(t[1], path);
    bool found = false;
    for (int d = 0; d <= static_cast<int>(DType::float64); ++d)
      if (t[2] == dtype_name(static_cast<DType>(d))) {
        e.dtype = static_cast<DType>(d);
        found = true;
      }
    if (!found) fail(fmt::format("unknown dtype \"{}\"", t[2]));
    const int64_t rank = integer(t[3], 0, 64);
    if (static_cast<int64_t>(t.size()) != 6 + rank) fail(fmt::format("variable \"{}\": wrong token count", e.name));
    for (int64_t d = 0; d < rank; ++d) e.shape.push_back(integer(t[4 + d], 0, int64_t(1) << 40));
    e.offset = integer(t[4 + rank], 0, int64_t(1) << 50);
    e.nbytes = integer(t[5 + rank], 0, int64_t(1) << 50);
    int64_t numel = 1;
    for (int64_t d : e.shape)
      if (__builtin_mul_overflow(numel, d, &numel)) fail(fmt::format("variable \"{}\": shape too large", e.name));
    if (numel > (int64_t(1) << 50) || numel * static_cast<int64_t>(itemsize(e.dtype)) != e.nbytes)
      fail(fmt::format("variable \"{}\": {} bytes do not match {} {}", e.name, e.nbytes, dtype_name(e.dtype),
                       shape_str(e.shape)));
    for (const Entry& o : entries)
      if (o.name == e.name) fail(fmt::format("variable \"{}\" appears twice", e.name));
    entries.push_back(std::move(e));
  }
  t = line();
  if (t.size() != 2 || t[0] != "data") fail("expected \"data <nbytes>\"");
  const int64_t data_bytes = integer(t[1], 0, int64_t(1) << 50);
  if (static_cast<int64_t>(bytes.size() - pos) != data_bytes)
    fail(fmt::format("the data section has {} bytes, the header says {}", bytes.size() - pos, data_bytes));
  for (const Entry& e : entries)
    if (e.offset + e.nbytes > data_bytes) fail(fmt::format("variable \"{}\": bytes out of range", e.name));
  // Check everything before writing anything.
  const auto vars = resolve(vars_, sess);
  std::vector<const Entry*> src;
  for (const Variable& v : vars) {
    const std::string name = v.name();
    const Entry* e = nullptr;
    for (const Entry& x : entries)
      if (x.name == name) e = &x;
    if (!e) throw ValueError(fmt::format("Saver::restore: variable \"{}\" is not in checkpoint {}", name, path));
    if (e->dtype != v.dtype() || e->shape != v.shape())
      throw ValueError(fmt::format("Saver::restore: variable \"{}\" is {} {} in the graph but {} {} in checkpoint {}",
                                   name, dtype_name(v.dtype()), shape_str(v.shape()), dtype_name(e->dtype),
                                   shape_str(e->shape), path));
    src.push_back(e);
  }
  const char* data = bytes.data() + pos;
  for (std::size_t i = 0; i < vars.size(); ++i) {
    auto sv = detail::session_var(st, vars[i].index());
    Tensor dst = sv->state->value;
    Tensor host = dst.device().is_cpu() ? dst : ember::empty(dst.shape(), dst.dtype());
    std::memcpy(host.data_ptr(), data + src[i]->offset, static_cast<std::size_t>(src[i]->nbytes));
    if (!host.is_same(dst)) dst.copy_(host);  // a GPU variable
    sv->initialized.store(true);
  }
}

}  // namespace train
}  // namespace ember::compat::v1
