// Dataset readers: .npy files (loaded one at a time during a pass) and CSV
// files with a header (parsed into one tensor per column when read).
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include <ember/creation.h>
#include <ember/io.h>

#include "data/stream.h"

namespace ember::data {
namespace detail {
namespace {

// ---- .npy -------------------------------------------------------------------------

using Paths = std::shared_ptr<const std::vector<std::string>>;

class NpyStream : public Stream {
 public:
  explicit NpyStream(Paths paths) : paths_(std::move(paths)) {}
  bool next(Element& out) override {
    while (cursor_.done())
      if (!load_next()) return false;
    return cursor_.next(out);
  }
  bool has_blocks() const override { return true; }
  int64_t next_block(int64_t max, Element& out) override {
    while (cursor_.done())
      if (!load_next()) return 0;
    return cursor_.next_block(max, out);
  }

 private:
  bool load_next() {
    if (file_ >= paths_->size()) return false;
    const std::string& path = (*paths_)[file_];
    Tensor t = load_npy(path);
    if (t.dim() == 0)
      throw ShapeError(
          fmt::format("from_npy: {} holds a 0-d array; slicing needs at least 1 dim", path));
    if (file_ == 0) {
      first_ = t;
    } else {
      const Shape a(first_.shape().begin() + 1, first_.shape().end());
      const Shape b(t.shape().begin() + 1, t.shape().end());
      if (a != b || t.dtype() != first_.dtype())
        throw ShapeError(fmt::format(
            "from_npy: {} holds {} {} but {} holds {} {}; the files must agree after dim 0", path,
            dtype_name(t.dtype()), shape_str(t.shape()), (*paths_)[0], dtype_name(first_.dtype()),
            shape_str(first_.shape())));
    }
    cursor_ = SliceCursor({t});
    ++file_;
    return true;
  }

  Paths paths_;
  std::size_t file_ = 0;
  Tensor first_;
  SliceCursor cursor_;
};

class NpyNode : public Node {
 public:
  explicit NpyNode(Paths paths) : paths_(std::move(paths)) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<NpyStream>(paths_);
  }

 private:
  Paths paths_;
};

// ---- CSV ----------------------------------------------------------------------------

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Splits one line into fields. A field may be double-quoted (then it may hold the
// delimiter; "" inside stands for one quote and stays doubled in the view).
void split_fields(std::string_view line, char delim, std::vector<std::string_view>& out,
                  const std::string& path, int64_t line_no) {
  out.clear();
  std::size_t i = 0;
  for (;;) {
    while (i < line.size() && is_space(line[i]) && line[i] != delim) ++i;
    if (i < line.size() && line[i] == '"') {
      const std::size_t start = ++i;
      for (;;) {
        if (i >= line.size())
          throw ValueError(fmt::format("from_csv: unterminated quote ({} line {}, column {})",
                                       path, line_no, out.size() + 1));
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            i += 2;
            continue;
          }
          break;
        }
        ++i;
      }
      out.push_back(line.substr(start, i - start));
      ++i;
      while (i < line.size() && line[i] != delim) ++i;
    } else {
      const std::size_t start = i;
      while (i < line.size() && line[i] != delim) ++i;
      out.push_back(trim(line.substr(start, i - start)));
    }
    if (i >= line.size()) return;
    ++i;  // the delimiter
  }
}

std::string unquote(std::string_view s) {
  std::string r;
  for (std::size_t i = 0; i < s.size(); ++i) {
    r.push_back(s[i]);
    if (s[i] == '"' && i + 1 < s.size() && s[i + 1] == '"') ++i;
  }
  return r;
}

template <class T>
bool parse_number(std::string_view s, T& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  if constexpr (std::is_floating_point_v<T>) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
  } else {
    int64_t x = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (ec != std::errc() || p != s.data() + s.size()) return false;
    if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        x > static_cast<int64_t>(std::numeric_limits<T>::max()))
      return false;
    v = static_cast<T>(x);
    return true;
  }
}

bool parse_bool(std::string_view s, bool& v) {
  if (s == "true" || s == "True" || s == "TRUE" || s == "1") {
    v = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE" || s == "0") {
    v = false;
    return true;
  }
  return false;
}

struct Column {
  std::string name;
  std::size_t index = 0;  // position in the file, from 0
  std::optional<DType> dtype;
  std::vector<std::string_view> values;
};

struct CsvFile {
  const std::string& path;
  std::vector<int64_t> row_lines;  // the line number of each data row

  [[noreturn]] void bad_value(const Column& c, std::size_t row, DType dt) const {
    throw ValueError(
        fmt::format("from_csv: bad value \"{}\" for {} column \"{}\" ({} line {}, column {})",
                    c.values[row], dtype_name(dt), c.name, path, row_lines[row], c.index + 1));
  }

  template <class T>
  Tensor parse_as(const Column& c, DType dt) const {
    std::vector<T> out(c.values.size());
    for (std::size_t r = 0; r < c.values.size(); ++r) {
      bool ok;
      if constexpr (std::is_same_v<T, bool>) {
        bool b = false;
        ok = parse_bool(c.values[r], b);
        out[r] = b;
      } else {
        ok = parse_number(c.values[r], out[r]);
      }
      if (!ok) bad_value(c, r, dt);
    }
    return tensor(out);
  }

  Tensor parse(const Column& c, DType dt) const {
    switch (dt) {
      case DType::bool_: return parse_as<bool>(c, dt);
      case DType::uint8: return parse_as<uint8_t>(c, dt);
      case DType::int32: return parse_as<int32_t>(c, dt);
      case DType::int64: return parse_as<int64_t>(c, dt);
      case DType::float32: return parse_as<float>(c, dt);
      case DType::float64: return parse_as<double>(c, dt);
      // The text is parsed to float, then rounded once, like t.to(float16).
      case DType::float16:
      case DType::bfloat16: return parse_as<float>(c, dt).to(dt);
    }
    throw InternalError(fmt::format("from_csv: unknown dtype {}", static_cast<int>(dt)));
  }

  DType infer(const Column& c) const {
    auto all = [&](auto ok) {
      for (std::string_view v : c.values)
        if (!ok(v)) return false;
      return !c.values.empty();
    };
    if (all([](std::string_view v) {
          int64_t x;
          return parse_number(v, x);
        }))
      return DType::int64;
    if (all([](std::string_view v) {
          bool b;
          return parse_bool(v, b);
        }))
      return DType::bool_;
    return DType::float32;
  }
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ValueError(fmt::format("from_csv: cannot open {}", path));
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace
}  // namespace detail

Dataset Dataset::from_npy(const std::string& path) {
  return from_npy(std::vector<std::string>{path});
}

Dataset Dataset::from_npy(const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec))
      throw ValueError(fmt::format("from_npy: {} is not a readable file", p));
  }
  return detail::make_dataset(std::make_shared<detail::NpyNode>(
      std::make_shared<const std::vector<std::string>>(paths)));
}

Dataset Dataset::from_csv(const std::string& path, const CsvOptions& options) {
  using detail::Column;
  const std::string text = detail::read_file(path);
  std::string_view rest = text;
  int64_t line_no = 0;
  auto next_line = [&](std::string_view& line) {
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!detail::trim(line).empty()) return true;  // blank lines are skipped
    }
    return false;
  };

  std::string_view line;
  if (!next_line(line)) throw ValueError(fmt::format("from_csv: {} has no header line", path));
  std::vector<std::string_view> fields;
  detail::split_fields(line, options.delimiter, fields, path, line_no);
  std::vector<std::string> header;
  for (std::string_view f : fields) header.push_back(detail::unquote(f));

  std::vector<Column> columns;
  if (options.columns.empty()) {
    for (std::size_t i = 0; i < header.size(); ++i) columns.push_back({header[i], i, {}, {}});
  } else {
    for (const CsvColumn& want : options.columns) {
      auto it = std::find(header.begin(), header.end(), want.name);
      if (it == header.end()) {
        std::string names;
        for (const std::string& h : header) names += (names.empty() ? "" : ", ") + h;
        throw ValueError(fmt::format("from_csv: no column \"{}\" in {} (columns: {})", want.name,
                                     path, names));
      }
      columns.push_back({want.name, static_cast<std::size_t>(it - header.begin()), want.dtype, {}});
    }
  }

  detail::CsvFile file{path, {}};
  while (next_line(line)) {
    detail::split_fields(line, options.delimiter, fields, path, line_no);
    if (fields.size() != header.size())
      throw ValueError(fmt::format("from_csv: {} line {} has {} fields but the header has {}",
                                   path, line_no, fields.size(), header.size()));
    for (Column& c : columns) c.values.push_back(fields[c.index]);
    file.row_lines.push_back(line_no);
  }

  std::vector<Tensor> tensors;
  for (const Column& c : columns)
    tensors.push_back(file.parse(c, c.dtype ? *c.dtype : file.infer(c)));
  if (tensors.empty()) return Dataset();
  return from_tensor_slices(tensors);
}

}  // namespace ember::data
