// NumPy .npy files (format spec: numpy/lib/format.py, NEP 1). A file is the
// magic "\x93NUMPY", a version, a header length, a Python dict literal with
// 'descr', 'fortran_order' and 'shape', then the raw elements.
//
// Note [npy inputs are untrusted]: every number in a file is checked before
// it sizes anything. The header length is capped, each dim and the products
// of dims are checked for overflow, and the data byte count the header
// declares must equal what the file holds before the tensor is allocated, so
// a corrupt or hostile file gives a one-line ValueError, never a crash or a
// huge allocation.
#include <ember/io.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>

namespace ember {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
// NumPy itself refuses headers over 10000 bytes by default; a megabyte leaves
// room for any real writer while keeping a corrupt length from sizing memory.
constexpr uint64_t kMaxHeaderLen = uint64_t(1) << 20;
// NumPy's own limit on the number of dims (NPY_MAXDIMS in NumPy 2).
constexpr std::size_t kMaxDims = 64;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

std::string errno_text(int err) { return std::generic_category().message(err); }

// ---- saving ----------------------------------------------------------------

const char* descr_of(DType dt) {
  switch (dt) {
    case DType::bool_:
      return "|b1";
    case DType::uint8:
      return "|u1";
    case DType::int32:
      return "<i4";
    case DType::int64:
      return "<i8";
    case DType::float16:
      return "<f2";
    case DType::float32:
      return "<f4";
    case DType::float64:
      return "<f8";
    default:
      return nullptr;
  }
}

// Python's repr of a tuple of ints: "()", "(3,)", "(2, 3)".
std::string shape_repr(const Shape& s) {
  if (s.empty()) return "()";
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + (s.size() == 1 ? ",)" : ")");
}

template <class T>
void byteswap_in_place(void* data, std::size_t n) {
  auto* p = static_cast<unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    if constexpr (sizeof(T) == 2)
      v = __builtin_bswap16(v);
    else if constexpr (sizeof(T) == 4)
      v = __builtin_bswap32(v);
    else
      v = __builtin_bswap64(v);
    std::memcpy(p + i * sizeof(T), &v, sizeof(T));
  }
}

void swap_bytes(void* data, std::size_t n, std::size_t itemsize) {
  if (itemsize == 2) byteswap_in_place<uint16_t>(data, n);
  if (itemsize == 4) byteswap_in_place<uint32_t>(data, n);
  if (itemsize == 8) byteswap_in_place<uint64_t>(data, n);
}

// ---- loading ---------------------------------------------------------------

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ValueError(fmt::format("load_npy: {}: {}", path, what));
}
[[noreturn]] void malformed(const std::string& path, const std::string& what) {
  fail(path, "malformed header (" + what + ")");
}

// The header is a Python dict literal. Only what NumPy writes is accepted:
// string keys, and values that are strings, True/False or tuples of ints.
struct HeaderValue {
  enum class Kind { string, boolean, tuple, other } kind = Kind::other;
  std::string str;
  bool boolean = false;
  std::vector<int64_t> ints;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : s_(text), path_(path) {}

  // Calls on_item(key, value) for each entry of the dict; keys other than NumPy's three are errors.
  template <class F>
  void parse_dict(F&& on_item) {
    skip_ws();
    expect('{', "expected '{' at the start");
    skip_ws();
    while (!at('}')) {
      std::string key = parse_string("a dict key");
      // Named before its value is parsed, so the message points at the key.
      if (key != "descr" && key != "fortran_order" && key != "shape")
        bad(fmt::format("unexpected key '{}'", key));
      skip_ws();
      expect(':', fmt::format("expected ':' after key '{}'", key));
      skip_ws();
      on_item(key, parse_value(key));
      skip_ws();
      if (at(',')) {
        ++i_;
        skip_ws();
      } else if (!at('}')) {
        bad(fmt::format("expected ',' or '}}' after the value of '{}'", key));
      }
    }
    ++i_;
    skip_ws();
    if (i_ != s_.size()) bad("unexpected text after the closing '}'");
  }

 private:
  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  [[noreturn]] void bad(const std::string& what) const { malformed(path_, what); }
  void expect(char c, const std::string& what) {
    if (!at(c)) bad(what);
    ++i_;
  }

  std::string parse_string(const char* what) {
    if (!at('\'') && !at('"')) bad(fmt::format("expected a quoted string as {}", what));
    const char quote = s_[i_++];
    std::string out;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\') bad("escape sequences in strings are not supported");
      out += s_[i_++];
    }
    if (i_ == s_.size()) bad("unterminated string");
    ++i_;
    return out;
  }

  bool starts_with(std::string_view word) const { return s_.substr(i_, word.size()) == word; }

  int64_t parse_int(const std::string& key) {
    if (at('-')) bad(fmt::format("negative dimension in '{}'", key));
    if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9')
      bad(fmt::format("'{}' must be a tuple of ints", key));
    int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (__builtin_mul_overflow(v, int64_t(10), &v) ||
          __builtin_add_overflow(v, int64_t(s_[i_] - '0'), &v))
        bad(fmt::format("dimension in '{}' is too large", key));
      ++i_;
    }
    if (at('L')) ++i_;  // Python 2 long literal, as old NumPy wrote it
    return v;
  }

  HeaderValue parse_value(const std::string& key) {
    HeaderValue v;
    if (at('\'') || at('"')) {
      v.kind = HeaderValue::Kind::string;
      v.str = parse_string("a value");
    } else if (starts_with("True")) {
      v.kind = HeaderValue::Kind::boolean;
      v.boolean = true;
      i_ += 4;
    } else if (starts_with("False")) {
      v.kind = HeaderValue::Kind::boolean;
      i_ += 5;
    } else if (at('(')) {
      v.kind = HeaderValue::Kind::tuple;
      ++i_;
      skip_ws();
      while (!at(')')) {
        if (v.ints.size() == kMaxDims)
          bad(fmt::format("'{}' has more than {} dims", key, kMaxDims));
        v.ints.push_back(parse_int(key));
        skip_ws();
        if (at(',')) {
          ++i_;
          skip_ws();
        } else if (!at(')')) {
          bad(fmt::format("expected ',' or ')' in '{}'", key));
        }
      }
      ++i_;
    } else if (at('[') && key == "descr") {
      // A list descr is a structured dtype: well-formed, but not one of ours.
      throw DTypeError(fmt::format("load_npy: {}: unsupported dtype (structured arrays)", path_));
    } else {
      bad(fmt::format("cannot parse the value of '{}'", key));
    }
    return v;
  }

  std::string_view s_;
  const std::string& path_;
  std::size_t i_ = 0;
};

struct Descr {
  DType dtype;
  bool swap;  // stored in the other byte order than this machine's
};

Descr parse_descr(const std::string& d, const std::string& path) {
  auto unsupported = [&]() -> Descr {
    throw DTypeError(fmt::format(
        "load_npy: {}: unsupported dtype '{}' (supported: |b1, |u1, <i4, <i8, <f2, <f4, <f8)", path, d));
  };
  if (d.size() < 2) unsupported();
  char order = '=';
  std::string_view code = d;
  if (d[0] == '<' || d[0] == '>' || d[0] == '=' || d[0] == '|') {
    order = d[0];
    code.remove_prefix(1);
  }
  DType dt;
  if (code == "b1")
    dt = DType::bool_;
  else if (code == "u1")
    dt = DType::uint8;
  else if (code == "i4")
    dt = DType::int32;
  else if (code == "i8")
    dt = DType::int64;
  else if (code == "f2")
    dt = DType::float16;
  else if (code == "f4")
    dt = DType::float32;
  else if (code == "f8")
    dt = DType::float64;
  else
    return unsupported();
  constexpr bool little = std::endian::native == std::endian::little;
  const bool swap = itemsize(dt) > 1 && ((order == '<' && !little) || (order == '>' && little));
  return {dt, swap};
}

uint64_t read_le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

void save_npy(const std::string& path, const Tensor& t) {
  if (!t.defined()) throw ValueError(fmt::format("save_npy: {}: the tensor is undefined", path));
  const char* descr = descr_of(t.dtype());
  if (t.dtype() == DType::bfloat16)
    throw DTypeError(fmt::format(
        "save_npy: {}: dtype bfloat16 cannot be saved (NumPy has no bfloat16); save "
        "t.to(float32), which holds every bfloat16 value exactly",
        path));
  EMBER_CHECK_INTERNAL(descr != nullptr);
  // NumPy's own limit; it also keeps the header within version 1.0's 64 KiB.
  if (t.shape().size() > kMaxDims)
    throw ValueError(fmt::format("save_npy: {}: a {}-d tensor cannot be saved (at most {} dims)",
                                 path, t.dim(), kMaxDims));
  // Non-contiguous tensors are written in logical C order, like np.save does.
  Tensor host = (t.device().is_cpu() ? t : t.to(Device::cpu())).contiguous();

  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   descr, shape_repr(host.shape()));
  const std::size_t prefix = kMagicLen + 2 + 2;
  // Pad with spaces so that magic + version + length + header + '\n' is a
  // multiple of 64 bytes, which keeps the data aligned for memory mapping.
  const std::size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';
  std::string pre(kMagic, kMagicLen);
  pre += {'\x01', '\x00', static_cast<char>(header.size() & 0xff),
          static_cast<char>(header.size() >> 8)};

  File f(std::fopen(path.c_str(), "wb"));
  if (!f)
    throw ValueError(
        fmt::format("save_npy: {}: cannot open file for writing ({})", path, errno_text(errno)));
  const std::size_t nbytes = host.nbytes();
  bool ok = std::fwrite(pre.data(), 1, prefix, f.get()) == prefix &&
            std::fwrite(header.data(), 1, header.size(), f.get()) == header.size() &&
            (nbytes == 0 || std::fwrite(host.data_ptr(), 1, nbytes, f.get()) == nbytes);
  int err = errno;
  if (std::fclose(f.release()) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    // Leave no half-written file behind, but never remove a device such as /dev/full.
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) std::filesystem::remove(path, ec);
    throw ValueError(fmt::format("save_npy: {}: write failed ({})", path, errno_text(err)));
  }
}

Tensor load_npy(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail(path, fmt::format("cannot open file ({})", errno_text(EISDIR)));
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path, fmt::format("cannot open file ({})", errno_text(errno)));
  if (std::fseek(f.get(), 0, SEEK_END) != 0) fail(path, "cannot determine the file size");
  const long end = std::ftell(f.get());
  if (end < 0) fail(path, "cannot determine the file size");
  std::rewind(f.get());
  const uint64_t file_size = static_cast<uint64_t>(end);

  unsigned char pre[12] = {};
  const std::size_t got = std::fread(pre, 1, sizeof(pre), f.get());
  if (file_size == 0) fail(path, "not a .npy file (the file is empty)");
  if (std::memcmp(pre, kMagic, std::min(got, kMagicLen)) != 0)
    fail(path, "not a .npy file (bad magic)");
  if (got < 8)
    fail(path, fmt::format("truncated header (expected at least 10 bytes, found {})", got));
  const int major = pre[6], minor = pre[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail(path,
         fmt::format("unsupported .npy version {}.{} (supported: 1.0, 2.0, 3.0)", major, minor));
  const int len_bytes = major == 1 ? 2 : 4;
  const uint64_t header_start = 8 + static_cast<uint64_t>(len_bytes);
  if (got < header_start)
    fail(path,
         fmt::format("truncated header (expected at least {} bytes, found {})", header_start, got));
  const uint64_t header_len = read_le(pre + 8, len_bytes);
  if (header_len > kMaxHeaderLen)
    malformed(path, fmt::format("header length {} exceeds the limit of {} bytes", header_len,
                                kMaxHeaderLen));
  if (header_start + header_len > file_size)
    fail(path, fmt::format("truncated header (expected {} bytes, found {})", header_len,
                           file_size - header_start));

  std::string header(static_cast<std::size_t>(header_len), '\0');
  if (std::fseek(f.get(), static_cast<long>(header_start), SEEK_SET) != 0 ||
      std::fread(header.data(), 1, header.size(), f.get()) != header.size())
    fail(path, "read error in the header");
  if (header.find('\0') != std::string::npos) malformed(path, "NUL byte in the header");

  std::optional<std::string> descr;
  std::optional<bool> fortran;
  std::optional<std::vector<int64_t>> dims;
  HeaderParser(header, path).parse_dict([&](const std::string& key, HeaderValue v) {
    auto want = [&](HeaderValue::Kind k, const char* kind) {
      if (v.kind != k) malformed(path, fmt::format("'{}' is not {}", key, kind));
    };
    if (key == "descr") {
      if (descr) malformed(path, "duplicate key 'descr'");
      want(HeaderValue::Kind::string, "a string");
      descr = v.str;
    } else if (key == "fortran_order") {
      if (fortran) malformed(path, "duplicate key 'fortran_order'");
      want(HeaderValue::Kind::boolean, "True or False");
      fortran = v.boolean;
    } else {
      EMBER_CHECK_INTERNAL(key == "shape");
      if (dims) malformed(path, "duplicate key 'shape'");
      want(HeaderValue::Kind::tuple, "a tuple of ints");
      dims = std::move(v.ints);
    }
  });
  if (!descr) malformed(path, "missing key 'descr'");
  if (!fortran) malformed(path, "missing key 'fortran_order'");
  if (!dims) malformed(path, "missing key 'shape'");
  const Descr d = parse_descr(*descr, path);

  const Shape shape(dims->begin(), dims->end());
  int64_t numel = 1;
  bool overflow = false;
  for (int64_t n : shape) overflow = overflow || __builtin_mul_overflow(numel, n, &numel);
  const std::size_t isz = itemsize(d.dtype);
  uint64_t nbytes = 0;
  if (overflow || __builtin_mul_overflow(static_cast<uint64_t>(numel), isz, &nbytes))
    malformed(path, fmt::format("shape {} has too many elements", shape_str(shape)));
  const uint64_t data_start = header_start + header_len;
  const uint64_t available = file_size - data_start;
  if (available < nbytes)
    fail(path, fmt::format("truncated data (expected {} bytes, found {})", nbytes, available));
  if (available > nbytes)
    fail(path, fmt::format("file size does not match the shape (shape {} of '{}' needs {} bytes, "
                           "found {})",
                           shape_str(shape), *descr, nbytes, available));

  // Fortran order stores the transpose in C order: read it as the reversed
  // shape, then permute back and copy to get a C-contiguous result.
  const bool reverse = *fortran && shape.size() > 1;
  Shape stored = shape;
  if (reverse) std::reverse(stored.begin(), stored.end());
  Tensor out = detail::make_tensor(stored, d.dtype, Device::cpu());
  void* data = out.impl().data();
  if (nbytes > 0 && std::fread(data, 1, nbytes, f.get()) != nbytes)
    fail(path, "read error in the data");
  if (d.swap) swap_bytes(data, static_cast<std::size_t>(numel), isz);
  if (d.dtype == DType::bool_) {
    // Any byte other than 0 or 1 is not a valid C++ bool; NumPy reads nonzero as True.
    auto* p = static_cast<unsigned char*>(data);
    for (uint64_t i = 0; i < nbytes; ++i) p[i] = p[i] != 0;
  }
  if (reverse) {
    Axes perm;
    for (std::size_t i = shape.size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
    out = out.permute(perm).contiguous();
  }
  return out;
}

}  // namespace ember
