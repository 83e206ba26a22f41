// Printing like PyTorch (torch/_tensor_str.py): one format for all elements
// (integers as "1.", fixed with `precision` digits, or scientific when
// magnitudes span a wide range), right-aligned columns, 1-d rows wrapped at
// `linewidth`, and "..." for summarized dims. Where this file and PyTorch
// disagree on the digits or the layout, PyTorch is right.
#include <ember/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "dispatch/dtype_visit.h"

namespace ember {

PrintOptions& print_options() {
  static PrintOptions o;
  return o;
}

namespace {

// One element as read from memory: floats as double, everything else as
// int64 (so int64 values above 2^53 print exactly).
struct Value {
  double d = 0;
  int64_t i = 0;
};

// Mirrors torch's _Formatter: the mode and the width come from the shown
// values; for floats only the nonzero finite ones count (nan, inf and 0 do
// not widen the columns or change the mode).
struct Formatter {
  bool floating = false, boolean = false, int_mode = true, sci = false;
  int precision = 4;
  std::size_t width = 1;

  Formatter(DType dt, const std::vector<Value>& vals, int prec) {
    boolean = dt == DType::bool_;
    floating = is_floating(dt);
    precision = prec;
    if (!floating) {
      for (const Value& v : vals) width = std::max(width, raw(v).size());
      return;
    }
    double mn = INFINITY, mx = 0;
    bool any = false;
    for (const Value& v : vals) {
      if (!std::isfinite(v.d) || v.d == 0) continue;
      any = true;
      mn = std::min(mn, std::fabs(v.d));
      mx = std::max(mx, std::fabs(v.d));
      if (v.d != std::ceil(v.d)) int_mode = false;
    }
    if (!any) return;
    sci = mx / mn > 1000.0 || mx > 1.0e8 || (!int_mode && mn < 1.0e-4);
    for (const Value& v : vals) {
      if (!std::isfinite(v.d) || v.d == 0) continue;
      width = std::max(width, raw(v).size());
    }
  }

  // The text of one element before padding.
  std::string raw(const Value& v) const {
    if (boolean) return v.i ? "True" : "False";
    if (!floating) return fmt::format("{}", v.i);
    if (std::isnan(v.d)) return "nan";  // Python prints every NaN so, whatever its sign bit
    if (std::isinf(v.d)) return v.d > 0 ? "inf" : "-inf";
    if (sci) return fmt::format("{:.{}e}", v.d, precision);
    if (int_mode) return fmt::format("{:.0f}.", v.d);
    return fmt::format("{:.{}f}", v.d, precision);
  }
  std::string format(const Value& v) const {
    std::string s = raw(v);
    return std::string(width - std::min(width, s.size()), ' ') + s;
  }
};

struct Printer {
  const detail::TensorImpl& t;
  const PrintOptions& o;
  bool summarize;
  const char* base = nullptr;

  Value at(int64_t off) const {
    Value v;
    dispatch::visit_dtype(t.dtype, [&]<class T>() {
      const T x = reinterpret_cast<const T*>(base)[off];
      if constexpr (std::is_floating_point_v<T>)
        v.d = x;
      else
        v.i = static_cast<int64_t>(x);
    });
    return v;
  }

  // Whether dim `d` of size `n` is cut to its edges.
  bool cut(int64_t n) const { return summarize && n > 2 * o.edgeitems; }

  // The shown values in row-major order (torch's get_summarized_data).
  void collect(std::size_t d, int64_t off, std::vector<Value>& out) const {
    if (d == t.shape.size()) {
      out.push_back(at(off));
      return;
    }
    const int64_t n = t.shape[d];
    for (int64_t i = 0; i < n; ++i) {
      if (cut(n) && i == o.edgeitems) i = n - o.edgeitems;
      collect(d + 1, off + i * t.strides[d], out);
    }
  }

  void render(const Formatter& f, std::size_t d, int64_t off, int64_t indent,
              std::string& s) const {
    const std::size_t rank = t.shape.size();
    if (d == rank) {
      s += f.format(at(off));
      return;
    }
    const int64_t n = t.shape[d];
    if (d + 1 == rank) {
      render_row(f, off, indent, s);
      return;
    }
    // Sub-blocks are separated by "," and one newline per remaining dim.
    std::string sep = ",";
    sep.append(rank - d - 1, '\n');
    sep.append(static_cast<std::size_t>(indent + 1), ' ');
    s += '[';
    if (summarize && o.edgeitems == 0 && n > 0) {
      s += "...]";
      return;
    }
    for (int64_t i = 0; i < n; ++i) {
      if (i) s += sep;
      if (cut(n) && i == o.edgeitems) {
        s += "...";
        s += sep;
        i = n - o.edgeitems;
      }
      render(f, d + 1, off + i * t.strides[d], indent + 1, s);
    }
    s += ']';
  }

  // A 1-d row: elements joined by ", ", wrapped after as many as fit in
  // `linewidth`; " ..." counts as one element.
  void render_row(const Formatter& f, int64_t off, int64_t indent, std::string& s) const {
    const std::size_t d = t.shape.size() - 1;
    const int64_t n = t.shape[d];
    std::vector<std::string> items;
    if (summarize && o.edgeitems == 0) {
      items.push_back("...");
    } else {
      for (int64_t i = 0; i < n; ++i) {
        if (cut(n) && i == o.edgeitems) {
          items.push_back(" ...");
          i = n - o.edgeitems;
        }
        items.push_back(f.format(at(off + i * t.strides[d])));
      }
    }
    const int64_t element = static_cast<int64_t>(f.width) + 2;
    const int64_t room = static_cast<int64_t>(o.linewidth) - indent;
    // Python's floor division, so a row deeper than the line width still gets one per line.
    const std::size_t per_line = static_cast<std::size_t>(
        std::max<int64_t>(1, room >= 0 ? room / element : -((-room + element - 1) / element)));
    s += '[';
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i) {
        if (i % per_line == 0)
          s.append(",\n").append(static_cast<std::size_t>(indent + 1), ' ');
        else
          s += ", ";
      }
      s += items[i];
    }
    s += ']';
  }
};

}  // namespace

std::string to_string(const Tensor& t, const PrintOptions& o) {
  if (!t.defined()) return "tensor(undefined)";
  // Note [Symbolic tensors]: a graph tensor prints what it stands for.
  if (!t.impl().storage)
    return fmt::format("<{}>", t.impl().symbol ? t.impl().symbol->describe() : std::string("no storage"));
  const DType dt = t.dtype();
  // Suffixes in PyTorch's order: device, then size (empty tensors), then dtype.
  std::string suffix;
  if (!t.device().is_cpu()) suffix += fmt::format(", device='{}'", t.device().str());
  if (t.numel() == 0) {
    // An empty tensor has no values to show its dtype, so any but the
    // default float32 is named; its shape is named unless it is 1-d.
    if (t.dim() != 1) suffix += fmt::format(", size={}", shape_str(t.shape()));
    if (dt != DType::float32) suffix += fmt::format(", dtype={}", dtype_name(dt));
    return "tensor([]" + suffix + ")";
  }
  if (dt != DType::float32 && dt != DType::int64 && dt != DType::bool_)
    suffix += fmt::format(", dtype={}", dtype_name(dt));

  Tensor host = t;
  // CPU kernels have no float16/bfloat16, so those print through float32.
  if (dt == DType::float16 || dt == DType::bfloat16) host = host.to(DType::float32);
  if (!host.device().is_cpu()) host = host.to(Device::cpu());
  // One host read for the whole tensor, so a recorder sees the print once.
  detail::note_host_read(host);

  Printer p{host.impl(), o, host.numel() > o.threshold};
  p.base = static_cast<const char*>(host.impl().storage->data());
  std::vector<Value> vals;
  if (!(p.summarize && o.edgeitems == 0)) p.collect(0, host.impl().offset, vals);
  Formatter f(host.dtype(), vals, o.precision);
  std::string body;
  constexpr int64_t kIndent = 7;  // strlen("tensor(")
  p.render(f, 0, host.impl().offset, kIndent, body);
  return "tensor(" + body + suffix + ")";
}

std::string Tensor::str() const { return to_string(*this); }

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }
std::ostream& operator<<(std::ostream& os, DType dt) { return os << dtype_name(dt); }
std::ostream& operator<<(std::ostream& os, Device d) { return os << d.str(); }

}  // namespace ember
