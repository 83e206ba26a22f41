// Printing like PyTorch: one format for all elements (integers as "1.", fixed
// with `precision` digits, or scientific when magnitudes span a wide range),
// right-aligned columns, and "..." for summarized dims.
#include <cmath>
#include <sstream>
#include <vector>

#include <ember/format.h>

namespace ember {

PrintOptions& print_options() {
  static PrintOptions o;
  return o;
}

namespace {

struct Formatter {
  bool floating = false, boolean = false, int_mode = false, sci = false;
  int precision = 4;
  std::size_t width = 1;

  std::string one(double v) const {
    if (boolean) return v != 0 ? "True" : "False";
    if (!floating) return fmt::format("{}", static_cast<int64_t>(v));
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (sci) return fmt::format("{:.{}e}", v, precision);
    if (int_mode) return fmt::format("{:.0f}.", v);
    return fmt::format("{:.{}f}", v, precision);
  }
};

// Values that will be shown (the summarized view), as doubles.
void collect(const Tensor& t, int64_t dim, const PrintOptions& o, bool summarize,
             std::vector<double>& out) {
  if (t.dim() == 0) {
    out.push_back(t.item<double>());
    return;
  }
  const int64_t n = t.shape()[0];
  auto visit = [&](int64_t i) {
    Tensor s = t.select(0, i);
    collect(s, dim + 1, o, summarize, out);
  };
  if (summarize && n > 2 * o.edgeitems) {
    for (int64_t i = 0; i < o.edgeitems; ++i) visit(i);
    for (int64_t i = n - o.edgeitems; i < n; ++i) visit(i);
  } else {
    for (int64_t i = 0; i < n; ++i) visit(i);
  }
}

void render(const Tensor& t, const Formatter& f, const PrintOptions& o, bool summarize,
            std::size_t indent, std::string& s) {
  if (t.dim() == 0) {
    std::string v = f.one(t.item<double>());
    s += std::string(f.width - std::min(f.width, v.size()), ' ') + v;
    return;
  }
  const int64_t n = t.shape()[0];
  s += '[';
  const bool skip = summarize && n > 2 * o.edgeitems;
  // Elements per line for 1-d rows.
  const std::size_t per_line =
      std::max<std::size_t>(1, (static_cast<std::size_t>(o.linewidth) - indent) / (f.width + 2));
  std::size_t on_line = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (skip && i == o.edgeitems) {
      if (t.dim() == 1) {
        s += "..., ";
      } else {
        s += "...,\n" + std::string(t.dim() > 2 ? 1 : 0, '\n') + std::string(indent + 1, ' ');
      }
      i = n - o.edgeitems;
    }
    if (t.dim() == 1 && on_line == per_line) {
      s += '\n' + std::string(indent + 1, ' ');
      on_line = 0;
    }
    render(t.select(0, i), f, o, summarize, indent + 1, s);
    ++on_line;
    if (i + 1 < n) {
      if (t.dim() == 1) {
        s += ", ";
      } else {
        s += ",\n" + std::string(t.dim() - 1 > 1 ? t.dim() - 2 : 0, '\n') +
             std::string(indent + 1, ' ');
      }
    }
  }
  s += ']';
}

}  // namespace

std::string to_string(const Tensor& t, const PrintOptions& o) {
  if (!t.defined()) return "tensor(undefined)";
  const DType dt = t.dtype();
  std::string suffix;
  if (dt != DType::float32 && dt != DType::int64 && dt != DType::bool_)
    suffix = fmt::format(", dtype={}", dtype_name(dt));
  if (!t.device().is_cpu()) suffix += fmt::format(", device='{}'", t.device().str());
  if (t.numel() == 0)
    return fmt::format("tensor([], size={}{})", shape_str(t.shape()), suffix);
  Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  const bool summarize = host.numel() > o.threshold;
  std::vector<double> vals;
  collect(host, 0, o, summarize, vals);
  Formatter f;
  f.boolean = dt == DType::bool_;
  f.floating = is_floating(dt);
  f.precision = o.precision;
  if (f.floating) {
    double mn = INFINITY, mx = 0;
    bool all_int = true;
    for (double v : vals) {
      if (!std::isfinite(v)) continue;
      all_int = all_int && v == std::floor(v);
      const double a = std::fabs(v);
      if (a != 0) mn = std::min(mn, a);
      mx = std::max(mx, a);
    }
    f.int_mode = all_int && mx < 1e8;
    f.sci = !f.int_mode && (mx >= 1e8 || (mn < 1e-4 && mn != INFINITY) || (mn != INFINITY && mx / mn > 1000));
  }
  for (double v : vals) f.width = std::max(f.width, f.one(v).size());
  std::string body;
  render(host, f, o, summarize, 7, body);  // 7 = strlen("tensor(")
  return "tensor(" + body + suffix + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }
std::ostream& operator<<(std::ostream& os, DType dt) { return os << dtype_name(dt); }
std::ostream& operator<<(std::ostream& os, Device d) { return os << d.str(); }

}  // namespace ember
