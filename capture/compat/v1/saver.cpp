// tf::train::Saver: variable values to and from a checkpoint file
// (format: capture/compat/v1/checkpoint.md).
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
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

namespace fs = std::filesystem;

// The state file's name, as TF's (its latest_filename default).
constexpr const char* kStateName = "checkpoint";

// A name next to `path` that no other writer in this process or another picks.
std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}.tmp{}_{}", path, static_cast<long>(getpid()), counter++);
}

// Writes `bytes` to `path` through a temporary file renamed over it, so that a
// reader (or a resume after a crash) sees the old file or the new one, never half of one.
void write_replacing(const std::string& path, const std::string& head, const std::vector<Tensor>& values,
                     const char* who) {
  const std::string tmp = temp_name(path);
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw ValueError(fmt::format("{}: {}: cannot open the file for writing", who, path));
    f.write(head.data(), static_cast<std::streamsize>(head.size()));
    for (const Tensor& t : values)
      f.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    f.close();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw ValueError(fmt::format("{}: {}: write failed", who, path));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw ValueError(fmt::format("{}: {}: cannot replace the file ({})", who, path, ec.message()));
  }
}

// A path as a text-format string: quotes, backslashes and bytes outside
// printable ASCII escaped (\ooo), as protobuf's text format writes them.
std::string quote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      o += fmt::format("\\{:03o}", c);
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + '"';
}

// How the state file in `dir` names checkpoint `p`: by its file name when it
// lies in `dir` (so the directory can move), else by its absolute path.
std::string state_entry(const fs::path& dir, const std::string& p) {
  const fs::path pp(p);
  if (pp.parent_path().lexically_normal() == dir.lexically_normal()) return pp.filename().string();
  return fs::absolute(pp).lexically_normal().string();
}

}  // namespace

namespace {
int checked_max_to_keep(std::optional<int> max_to_keep) {
  const int m = max_to_keep.value_or(0);
  if (m < 0)
    throw ValueError(
        fmt::format("Saver: max_to_keep must be >= 0 (got {}); 0 or std::nullopt keeps every checkpoint", m));
  return m;
}
}  // namespace

Saver::Saver(std::vector<Variable> vars, std::optional<int> max_to_keep)
    : vars_(std::move(vars)), max_to_keep_(checked_max_to_keep(max_to_keep)) {
  if (!vars_.empty() || !detail::current_scope()) return;
  vars_ = global_variables();
  if (vars_.empty()) throw ValueError("Saver: the default graph has no variables to save");
}

Saver::Saver(const std::map<std::string, Variable>& var_list, std::optional<int> max_to_keep, int)
    : max_to_keep_(checked_max_to_keep(max_to_keep)) {
  if (var_list.empty()) throw ValueError("Saver: No variables to save");
  for (const auto& [key, var] : var_list) {
    if (key.empty()) throw ValueError("Saver: a name in the variable map is empty");
    if (!var.defined()) throw ValueError(fmt::format("Saver: the variable for \"{}\" is undefined", key));
    names_.push_back(key);
    vars_.push_back(var);
  }
}

std::string Saver::save(Session& sess, const std::string& path) { return write(sess, path); }

std::string Saver::save(Session& sess, const std::string& path, int64_t global_step) {
  return write(sess, fmt::format("{}-{}", path, global_step));
}

std::string Saver::save(Session& sess, const std::string& path, const Variable& global_step) {
  if (!global_step.defined()) return write(sess, path);
  auto& st = *sess.state();
  detail::check_session_open(st, "Saver::save");
  if (global_step.graph_state() != sess.graph().state())
    throw ValueError(fmt::format("Saver::save: global_step \"{}\" is not in the session's graph", global_step.name()));
  detail::check_step_variable(global_step, "Saver::save");
  auto sv = detail::session_var(st, global_step.index());
  if (!sv->initialized.load())
    throw ValueError(
        fmt::format("Saver::save: global_step \"{}\" is not initialized in this session", global_step.name()));
  int64_t step = 0;
  {
    dispatch::RecorderGuard off(nullptr);
    step = sv->state->value.to(Device::cpu()).item<int64_t>();  // a GPU variable too
  }
  return write(sess, fmt::format("{}-{}", path, step));
}

std::string Saver::write(Session& sess, const std::string& path) {
  auto& st = *sess.state();
  detail::check_session_open(st, "Saver::save");
  const fs::path file(path);
  if (file.filename() == kStateName)
    throw ValueError(fmt::format("Saver::save: {}: the path collides with the checkpoint state file \"{}\" of "
                                 "its directory",
                                 path, kStateName));
  const fs::path dir = file.parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw ValueError(fmt::format("Saver::save: the parent directory of {} does not exist, cannot save", path));
  std::string head;
  std::vector<Tensor> values;
  {
    dispatch::RecorderGuard off(nullptr);
    const auto vars = resolve(vars_, sess);
    head = fmt::format("ember-checkpoint 1\nvariables {}\n", vars.size());
    int64_t offset = 0;
    for (std::size_t i = 0; i < vars.size(); ++i) {
      auto sv = detail::session_var(st, vars[i].index());
      if (!sv->initialized.load())
        throw ValueError(fmt::format("Saver::save: variable \"{}\" is not initialized in this session", sv->name));
      Tensor t = sv->state->value.to(Device::cpu()).contiguous();  // GPU variables too
      const std::string& key = names_.empty() ? sv->name : names_[i];
      head += fmt::format("variable {} {} {}", encode(key), dtype_name(t.dtype()), t.dim());
      for (int64_t d : t.shape()) head += fmt::format(" {}", d);
      head += fmt::format(" {} {}\n", offset, t.nbytes());
      offset += static_cast<int64_t>(t.nbytes());
      values.push_back(t);
    }
    head += fmt::format("data {}\n", offset);
  }
  write_replacing(path, head, values, "Saver::save");

  // As TF's Saver: the newest max_to_keep paths, a path saved again moving to
  // the end; the state file lists them (just the newest when none are kept);
  // the one that fell off is deleted after the state file stops naming it.
  std::string dropped;
  if (max_to_keep_ > 0) {
    std::erase(last_, path);
    last_.push_back(path);
    if (static_cast<int>(last_.size()) > max_to_keep_) {
      dropped = last_.front();
      last_.erase(last_.begin());
    }
  }
  std::string state = fmt::format("model_checkpoint_path: {}\n", quote(state_entry(dir, path)));
  for (const std::string& p : max_to_keep_ > 0 ? last_ : std::vector<std::string>{path})
    state += fmt::format("all_model_checkpoint_paths: {}\n", quote(state_entry(dir, p)));
  const std::string state_path = (dir / kStateName).string();
  write_replacing(state_path, state, {}, "Saver::save");
  if (!dropped.empty()) fs::remove(dropped, ec);  // already gone is fine, as in TF
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
  for (std::size_t i = 0; i < vars.size(); ++i) {
    const Variable& v = vars[i];
    const std::string name = names_.empty() ? v.name() : names_[i];
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

std::string latest_checkpoint(const std::string& checkpoint_dir) {
  const fs::path dir(checkpoint_dir);
  const std::string state_path = (dir / kStateName).string();
  std::error_code ec;
  if (!fs::exists(state_path, ec)) return "";
  std::ifstream f(state_path, std::ios::binary);
  if (!f) throw ValueError(fmt::format("latest_checkpoint: {}: cannot open the file", state_path));
  std::string latest;
  std::string l;
  for (int no = 1; std::getline(f, l); ++no) {
    auto fail = [&](const std::string& what) {
      throw ValueError(fmt::format("latest_checkpoint: {}: line {}: {}", state_path, no, what));
    };
    const std::size_t b = l.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    const std::size_t colon = l.find(':', b);
    if (colon == std::string::npos) fail("expected <field>: \"<path>\"");
    std::string key = l.substr(b, colon - b);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    std::string rest = l.substr(colon + 1);
    const std::size_t rb = rest.find_first_not_of(" \t");
    const std::size_t re = rest.find_last_not_of(" \t\r");
    if (rb == std::string::npos || re == rb || rest[rb] != '"' || rest[re] != '"')
      fail("expected <field>: \"<path>\"");
    std::string value;
    for (std::size_t i = rb + 1; i < re; ++i) {
      const char c = rest[i];
      if (c != '\\') {
        if (c == '"') fail("an unescaped quote inside the path");
        value += c;
        continue;
      }
      if (i + 1 >= re) fail("a backslash ends the path");
      const char e = rest[++i];
      if (e == '"' || e == '\\' || e == '\'') {
        value += e;
      } else if (e == 'n') {
        value += '\n';
      } else if (e == 't') {
        value += '\t';
      } else if (e >= '0' && e <= '7' && i + 2 < re && rest[i + 1] >= '0' && rest[i + 1] <= '7' &&
                 rest[i + 2] >= '0' && rest[i + 2] <= '7') {
        const int v = (e - '0') * 64 + (rest[i + 1] - '0') * 8 + (rest[i + 2] - '0');
        if (v > 255) fail(fmt::format("escape \\{} is out of range", rest.substr(i, 3)));
        value += static_cast<char>(v);
        i += 2;
      } else {
        fail(fmt::format("unknown escape \\{}", e));
      }
    }
    if (key == "model_checkpoint_path") {
      latest = value;
    } else if (key != "all_model_checkpoint_paths") {
      fail(fmt::format("unknown field \"{}\"", key));
    }
  }
  if (latest.empty()) return "";
  // A relative entry names a file of the state file's directory, as in TF.
  const fs::path p = fs::path(latest).is_absolute() ? fs::path(latest) : dir / latest;
  // TF also answers None when the named checkpoint is gone.
  if (!fs::is_regular_file(p, ec)) return "";
  return p.string();
}

}  // namespace train
}  // namespace ember::compat::v1
