// .npy save/load and the xtensor adaptors. Files are written by hand where the
// test needs a layout ember does not write (Fortran order, v2/v3 headers, big
// endian), so nothing here depends on Python or NumPy being installed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include <ember/ember.h>
#include <ember/xtensor.h>

namespace em = ember;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

// A fresh directory under the system temp dir, removed with its files.
struct TempDir {
  fs::path dir;
  TempDir() {
    static std::atomic<int> counter{0};
    dir = fs::temp_directory_path() /
          ("ember_test_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

template <class T>
std::string raw(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

template <class T>
std::string raw_big_endian(const std::vector<T>& v) {
  std::string s = raw(v);
  for (std::size_t i = 0; i < s.size(); i += sizeof(T))
    std::reverse(s.begin() + static_cast<std::ptrdiff_t>(i),
                 s.begin() + static_cast<std::ptrdiff_t>(i + sizeof(T)));
  return s;
}

// A .npy file with the given version and header dict text, padded the way
// NumPy pads it, followed by `data`.
std::string npy_bytes(int major, const std::string& dict, const std::string& data) {
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = 8 + len_bytes;
  std::string header = dict;
  const std::size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';
  std::string s = "\x93NUMPY";
  s += static_cast<char>(major);
  s += '\0';
  for (std::size_t i = 0; i < len_bytes; ++i)
    s += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return s + header + data;
}

std::string dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + shape + ", }";
}

template <class T>
void check_round_trip(const TempDir& tmp, const std::vector<T>& values, const em::Shape& shape) {
  em::Tensor t = em::tensor(values, shape);
  const std::string path = tmp.file("rt.npy");
  em::save_npy(path, t);
  em::Tensor u = em::load_npy(path);
  CHECK(u.dtype() == t.dtype());
  CHECK(u.shape() == shape);
  CHECK(u.is_contiguous());
  CHECK(u.to_vector<T>() == values);
}

template <class T>
void check_all_shapes(const std::vector<T>& six) {
  TempDir tmp;
  check_round_trip(tmp, six, {2, 3});
  check_round_trip(tmp, six, {6});
  check_round_trip(tmp, six, {1, 2, 1, 3});
  check_round_trip(tmp, std::vector<T>{six[1]}, {});
  check_round_trip(tmp, std::vector<T>{}, {0});
  check_round_trip(tmp, std::vector<T>{}, {0, 3});
  check_round_trip(tmp, std::vector<T>{}, {3, 0, 2});
}

void check_load_error(const std::string& path, const std::string& message) {
  CHECK_THROWS_AS(em::load_npy(path), em::ValueError);
  CHECK_THROWS_WITH(em::load_npy(path), "load_npy: " + path + ": " + message);
}

}  // namespace

// ---- save / load round trips -----------------------------------------------

TEST_CASE("npy round trip for every dtype and shape", "[io][npy]") {
  SECTION("bool") { check_all_shapes<bool>({true, false, false, true, true, false}); }
  SECTION("uint8") { check_all_shapes<uint8_t>({0, 1, 127, 128, 254, 255}); }
  SECTION("int32") {
    check_all_shapes<int32_t>(
        {0, -1, 7, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), 42});
  }
  SECTION("int64") {
    // Values above 2^53 would not survive a trip through double.
    check_all_shapes<int64_t>({0, -1, (int64_t(1) << 53) + 1, std::numeric_limits<int64_t>::min(),
                               std::numeric_limits<int64_t>::max(), 42});
  }
  SECTION("float32") { check_all_shapes<float>({0.f, -1.5f, 1e-30f, 3.25f, 1e30f, -0.f}); }
  SECTION("float64") { check_all_shapes<double>({0., -1.5, 1e-300, 0.1, 1e300, -2.}); }
}

TEST_CASE("npy round trip keeps nan and inf", "[io][npy]") {
  TempDir tmp;
  const double inf = std::numeric_limits<double>::infinity();
  em::Tensor t = em::tensor<double>({std::nan(""), inf, -inf});
  em::save_npy(tmp.file("x.npy"), t);
  auto v = em::load_npy(tmp.file("x.npy")).to_vector<double>();
  CHECK(std::isnan(v[0]));
  CHECK(v[1] == inf);
  CHECK(v[2] == -inf);
}

TEST_CASE("save_npy writes the exact NumPy v1.0 layout", "[io][npy]") {
  TempDir tmp;
  auto header_of = [&](const em::Tensor& t) {
    const std::string path = tmp.file("h.npy");
    em::save_npy(path, t);
    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() >= 10);
    CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
    const std::size_t hlen = static_cast<unsigned char>(bytes[8]) |
                             (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    CHECK((10 + hlen) % 64 == 0);
    REQUIRE(bytes.size() == 10 + hlen + t.nbytes());
    std::string header = bytes.substr(10, hlen);
    CHECK(header.back() == '\n');
    header.pop_back();
    while (!header.empty() && header.back() == ' ') header.pop_back();
    return header;
  };
  CHECK(header_of(em::zeros({2, 3})) ==
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  CHECK(header_of(em::zeros({5}, em::float64)) ==
        "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }");
  CHECK(header_of(em::scalar_tensor(7, em::int64)) ==
        "{'descr': '<i8', 'fortran_order': False, 'shape': (), }");
  CHECK(header_of(em::zeros({0}, em::int32)) ==
        "{'descr': '<i4', 'fortran_order': False, 'shape': (0,), }");
  CHECK(header_of(em::zeros({1}, em::bool_)) ==
        "{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }");
  CHECK(header_of(em::zeros({2, 1, 4}, em::uint8)) ==
        "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 4), }");

  // The data follow the header as raw little-endian elements.
  em::save_npy(tmp.file("d.npy"), em::tensor<int32_t>({1, -2, 300}));
  const std::string bytes = read_bytes(tmp.file("d.npy"));
  CHECK(bytes.substr(bytes.size() - 12) == raw<int32_t>({1, -2, 300}));
}

TEST_CASE("save_npy writes non-contiguous tensors in logical C order", "[io][npy]") {
  TempDir tmp;
  em::Tensor base = em::arange(6, em::float64).reshape({2, 3});
  SECTION("transposed") {
    em::Tensor t = base.t();
    REQUIRE_FALSE(t.is_contiguous());
    em::save_npy(tmp.file("t.npy"), t);
    em::Tensor u = em::load_npy(tmp.file("t.npy"));
    CHECK(u.shape() == em::Shape{3, 2});
    CHECK(u.to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
  }
  SECTION("step-2 slice") {
    em::Tensor t = em::arange(10, em::int32).slice(0, 1, 10, 2);
    em::save_npy(tmp.file("s.npy"), t);
    CHECK(em::load_npy(tmp.file("s.npy")).to_vector<int32_t>() ==
          std::vector<int32_t>{1, 3, 5, 7, 9});
  }
  SECTION("broadcast (stride 0)") {
    em::Tensor t = em::tensor<int64_t>({1, 2}).unsqueeze(0).expand({3, 2});
    em::save_npy(tmp.file("b.npy"), t);
    em::Tensor u = em::load_npy(tmp.file("b.npy"));
    CHECK(u.shape() == em::Shape{3, 2});
    CHECK(u.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 1, 2, 1, 2});
  }
  SECTION("the source is left untouched") {
    em::Tensor t = base.t();
    em::save_npy(tmp.file("t.npy"), t);
    CHECK(t.strides() == em::Strides{1, 3});
    CHECK(base.to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4, 5});
  }
}

// ---- hand-made files ---------------------------------------------------------

TEST_CASE("load_npy reads Fortran-order files as their logical values", "[io][npy]") {
  TempDir tmp;
  SECTION("2-d") {
    // [[1, 2, 3], [4, 5, 6]] stored column by column.
    const std::string path = tmp.file("f2.npy");
    write_bytes(path, npy_bytes(1, dict("<f8", "(2, 3)", true), raw<double>({1, 4, 2, 5, 3, 6})));
    em::Tensor t = em::load_npy(path);
    CHECK(t.shape() == em::Shape{2, 3});
    CHECK(t.is_contiguous());
    CHECK(t.to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 6});
  }
  SECTION("3-d") {
    // Element (i, j, k) = 100i + 10j + k lives at i + 2j + 6k in Fortran order.
    std::vector<int32_t> stored(24), logical;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) {
          stored[static_cast<std::size_t>(i + 2 * j + 6 * k)] = 100 * i + 10 * j + k;
          logical.push_back(100 * i + 10 * j + k);
        }
    const std::string path = tmp.file("f3.npy");
    write_bytes(path, npy_bytes(1, dict("<i4", "(2, 3, 4)", true), raw(stored)));
    em::Tensor t = em::load_npy(path);
    CHECK(t.shape() == em::Shape{2, 3, 4});
    CHECK(t.is_contiguous());
    CHECK(t.to_vector<int32_t>() == logical);
  }
  SECTION("1-d, 0-d and empty are the same in either order") {
    write_bytes(tmp.file("a.npy"),
                npy_bytes(1, dict("<i8", "(3,)", true), raw<int64_t>({7, 8, 9})));
    CHECK(em::load_npy(tmp.file("a.npy")).to_vector<int64_t>() == std::vector<int64_t>{7, 8, 9});
    write_bytes(tmp.file("b.npy"), npy_bytes(1, dict("<f4", "()", true), raw<float>({2.5f})));
    em::Tensor s = em::load_npy(tmp.file("b.npy"));
    CHECK(s.dim() == 0);
    CHECK(s.item<float>() == 2.5f);
    write_bytes(tmp.file("c.npy"), npy_bytes(1, dict("<f4", "(0, 2)", true), ""));
    CHECK(em::load_npy(tmp.file("c.npy")).shape() == em::Shape{0, 2});
  }
}

TEST_CASE("load_npy reads version 2.0 and 3.0 headers", "[io][npy]") {
  TempDir tmp;
  for (int major : {2, 3}) {
    const std::string path = tmp.file(fmt::format("v{}.npy", major));
    write_bytes(path, npy_bytes(major, dict("<i8", "(2, 2)"), raw<int64_t>({1, 2, 3, 4})));
    em::Tensor t = em::load_npy(path);
    CHECK(t.dtype() == em::int64);
    CHECK(t.shape() == em::Shape{2, 2});
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4});
  }
}

TEST_CASE("load_npy byte-swaps big-endian files", "[io][npy]") {
  TempDir tmp;
  write_bytes(tmp.file("f8.npy"),
              npy_bytes(1, dict(">f8", "(3,)"), raw_big_endian<double>({1.5, -2.0, 1e300})));
  em::Tensor a = em::load_npy(tmp.file("f8.npy"));
  CHECK(a.dtype() == em::float64);
  CHECK(a.to_vector<double>() == std::vector<double>{1.5, -2.0, 1e300});

  write_bytes(tmp.file("i4.npy"),
              npy_bytes(1, dict(">i4", "(2,)"), raw_big_endian<int32_t>({1, -70000})));
  CHECK(em::load_npy(tmp.file("i4.npy")).to_vector<int32_t>() == std::vector<int32_t>{1, -70000});

  write_bytes(tmp.file("f4.npy"),
              npy_bytes(1, dict(">f4", "(2, 1)", true), raw_big_endian<float>({0.25f, 8.f})));
  CHECK(em::load_npy(tmp.file("f4.npy")).to_vector<float>() == std::vector<float>{0.25f, 8.f});

  // Byte order means nothing for one-byte types.
  write_bytes(tmp.file("u1.npy"), npy_bytes(1, dict(">u1", "(2,)"), std::string("\x01\xff", 2)));
  CHECK(em::load_npy(tmp.file("u1.npy")).to_vector<int>() == std::vector<int>{1, 255});
}

TEST_CASE("load_npy accepts '=' and '|' byte orders and lenient headers", "[io][npy]") {
  TempDir tmp;
  write_bytes(tmp.file("a.npy"), npy_bytes(1, dict("=i8", "(2,)"), raw<int64_t>({5, 6})));
  CHECK(em::load_npy(tmp.file("a.npy")).to_vector<int64_t>() == std::vector<int64_t>{5, 6});
  write_bytes(tmp.file("b.npy"), npy_bytes(1, dict("<b1", "(2,)"), std::string("\x01\x00", 2)));
  CHECK(em::load_npy(tmp.file("b.npy")).dtype() == em::bool_);
  // Key order, quotes, spacing and the trailing comma vary between writers.
  write_bytes(tmp.file("c.npy"),
              npy_bytes(1, "{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"|u1\"}",
                        std::string(6, '\x02')));
  em::Tensor c = em::load_npy(tmp.file("c.npy"));
  CHECK(c.shape() == em::Shape{2, 3});
  CHECK(c.dtype() == em::uint8);
  // Python 2 NumPy wrote long literals.
  write_bytes(tmp.file("d.npy"), npy_bytes(1, dict("<f4", "(1L, 2L)"), raw<float>({1, 2})));
  CHECK(em::load_npy(tmp.file("d.npy")).shape() == em::Shape{1, 2});
}

TEST_CASE("load_npy reads any nonzero bool byte as true", "[io][npy]") {
  TempDir tmp;
  write_bytes(tmp.file("b.npy"), npy_bytes(1, dict("|b1", "(3,)"), std::string("\x00\x02\xff", 3)));
  em::Tensor t = em::load_npy(tmp.file("b.npy"));
  CHECK(t.to_vector<bool>() == std::vector<bool>{false, true, true});
  CHECK(t.sum().item<int64_t>() == 2);
}

// ---- errors -------------------------------------------------------------------

TEST_CASE("load_npy rejects bad files with one-line messages", "[io][npy][errors]") {
  TempDir tmp;
  const std::string p = tmp.file("bad.npy");

  SECTION("missing file") {
    check_load_error(tmp.file("nope.npy"), "cannot open file (No such file or directory)");
  }
  SECTION("a directory") {
    check_load_error(tmp.dir.string(), "cannot open file (Is a directory)");
  }
  SECTION("empty file") {
    write_bytes(p, "");
    check_load_error(p, "not a .npy file (the file is empty)");
  }
  SECTION("bad magic") {
    write_bytes(p, "PK\x03\x04 this is a zip file, not an array");
    check_load_error(p, "not a .npy file (bad magic)");
    write_bytes(p, "\x93NUM");  // a prefix of the magic: a cut-off file
    check_load_error(p, "truncated header (expected at least 10 bytes, found 4)");
    write_bytes(p, "abc");
    check_load_error(p, "not a .npy file (bad magic)");
  }
  SECTION("unsupported version") {
    std::string b = npy_bytes(1, dict("<f8", "(1,)"), raw<double>({1}));
    b[6] = 4;
    write_bytes(p, b);
    check_load_error(p, "unsupported .npy version 4.0 (supported: 1.0, 2.0, 3.0)");
  }
  SECTION("truncated header") {
    write_bytes(p, npy_bytes(1, dict("<f8", "(3,)"), "").substr(0, 9));
    check_load_error(p, "truncated header (expected at least 10 bytes, found 9)");
    write_bytes(p, npy_bytes(1, dict("<f8", "(3,)"), "").substr(0, 40));
    check_load_error(p, "truncated header (expected 118 bytes, found 30)");
  }
  SECTION("absurd header length") {
    std::string b = npy_bytes(2, dict("<f8", "(1,)"), raw<double>({1}));
    b[8] = b[9] = b[10] = b[11] = '\xff';
    write_bytes(p, b);
    check_load_error(
        p, "malformed header (header length 4294967295 exceeds the limit of 1048576 bytes)");
  }
  SECTION("truncated data") {
    write_bytes(p, npy_bytes(1, dict("<f8", "(3,)"), std::string(10, '\0')));
    check_load_error(p, "truncated data (expected 24 bytes, found 10)");
  }
  SECTION("more data than the shape") {
    write_bytes(p, npy_bytes(1, dict("<i4", "(2, 2)"), std::string(20, '\0')));
    check_load_error(p,
                     "file size does not match the shape (shape [2,2] of '<i4' needs 16 bytes, "
                     "found 20)");
  }
  SECTION("a huge shape is checked against the file before allocating") {
    write_bytes(p, npy_bytes(1, dict("<f8", "(1099511627776,)"), raw<double>({1})));
    check_load_error(p, "truncated data (expected 8796093022208 bytes, found 8)");
  }
  SECTION("shape products that overflow") {
    write_bytes(p, npy_bytes(1, dict("<f8", "(4294967296, 4294967296)"), ""));
    check_load_error(p, "malformed header (shape [4294967296,4294967296] has too many elements)");
    write_bytes(p, npy_bytes(1, dict("<f8", "(2305843009213693952,)"), ""));
    check_load_error(p, "malformed header (shape [2305843009213693952] has too many elements)");
    write_bytes(p, npy_bytes(1, dict("<f8", "(99999999999999999999,)"), ""));
    check_load_error(p, "malformed header (dimension in 'shape' is too large)");
  }
  SECTION("negative dims") {
    write_bytes(p, npy_bytes(1, dict("<f8", "(-1, 2)"), ""));
    check_load_error(p, "malformed header (negative dimension in 'shape')");
  }
  SECTION("malformed dicts") {
    auto check = [&](const std::string& header, const std::string& what) {
      write_bytes(p, npy_bytes(1, header, ""));
      check_load_error(p, "malformed header (" + what + ")");
    };
    check("{'descr': '<f8', 'fortran_order': False, 'shape': (0,)",
          "expected ',' or '}' after the value of 'shape'");
    check("'descr': '<f8'", "expected '{' at the start");
    check("{'descr': '<f8', 'fortran_order': False}", "missing key 'shape'");
    check("{'fortran_order': False, 'shape': (0,)}", "missing key 'descr'");
    check("{'descr': '<f8', 'shape': (0,)}", "missing key 'fortran_order'");
    check("{'descr': '<f8', 'fortran_order': False, 'shape': (0,), 'extra': 1}",
          "unexpected key 'extra'");
    check("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (0,)}",
          "duplicate key 'descr'");
    check("{'descr': '<f8', 'fortran_order': 0, 'shape': (0,)}",
          "cannot parse the value of 'fortran_order'");
    check("{'descr': '<f8', 'fortran_order': 'no', 'shape': (0,)}",
          "'fortran_order' is not True or False");
    check("{'descr': 8, 'fortran_order': False, 'shape': (0,)}",
          "cannot parse the value of 'descr'");
    check("{'descr': '<f8', 'fortran_order': False, 'shape': [0]}",
          "cannot parse the value of 'shape'");
    check("{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,)}",
          "expected ',' or ')' in 'shape'");
    check("{'descr': '<f8', 'fortran_order': False, 'shape': ('a',)}",
          "'shape' must be a tuple of ints");
    check("{'descr': '<f8, 'fortran_order': False, 'shape': (0,)}",
          "expected ',' or '}' after the value of 'descr'");
    check("{'descr': '<f8', 'fortran_order': False, 'shape': (0,)} junk",
          "unexpected text after the closing '}'");
    check("{'descr: '<f8'}", "unexpected key 'descr: '");
    check("{'descr' '<f8'}", "expected ':' after key 'descr'");
    check("{'descr", "unterminated string");
  }
  SECTION("too many dims") {
    std::string shape = "(";
    for (int i = 0; i < 65; ++i) shape += "1, ";
    write_bytes(p, npy_bytes(1, dict("<f8", shape + ")"), raw<double>({1})));
    check_load_error(p, "malformed header ('shape' has more than 64 dims)");
  }
}

TEST_CASE("load_npy rejects dtypes ember does not have", "[io][npy][errors]") {
  TempDir tmp;
  const std::string p = tmp.file("dt.npy");
  for (std::string d : {"<c8", "<f16", "|i1", "<u4", "|O", "|S10", "<M8[ns]", "x"}) {
    write_bytes(p, npy_bytes(1, dict(d, "(0,)"), ""));
    CHECK_THROWS_AS(em::load_npy(p), em::DTypeError);
    CHECK_THROWS_WITH(em::load_npy(p), "load_npy: " + p + ": unsupported dtype '" + d +
                                           "' (supported: |b1, |u1, <i4, <i8, <f2, <f4, <f8)");
  }
  write_bytes(p,
              npy_bytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (0,)}", ""));
  CHECK_THROWS_AS(em::load_npy(p), em::DTypeError);
  CHECK_THROWS_WITH(em::load_npy(p), "load_npy: " + p + ": unsupported dtype (structured arrays)");
}

TEST_CASE("save_npy errors", "[io][npy][errors]") {
  TempDir tmp;
  const std::string p = tmp.file("missing_dir/x.npy");
  CHECK_THROWS_AS(em::save_npy(p, em::zeros({2})), em::ValueError);
  CHECK_THROWS_WITH(
      em::save_npy(p, em::zeros({2})),
      "save_npy: " + p + ": cannot open file for writing (No such file or directory)");
  CHECK_THROWS_WITH(
      em::save_npy(tmp.dir.string(), em::zeros({2})),
      "save_npy: " + tmp.dir.string() + ": cannot open file for writing (Is a directory)");
  CHECK_THROWS_AS(em::save_npy(tmp.file("u.npy"), em::Tensor()), em::ValueError);
  CHECK_THROWS_WITH(em::save_npy(tmp.file("u.npy"), em::Tensor()),
                    "save_npy: " + tmp.file("u.npy") + ": the tensor is undefined");
  if (fs::exists("/dev/full")) {
    // The data fit the stdio buffer, so the failure shows only when the file is closed.
    CHECK_THROWS_WITH(em::save_npy("/dev/full", em::zeros({4})),
                      "save_npy: /dev/full: write failed (No space left on device)");
    CHECK_THROWS_WITH(em::save_npy("/dev/full", em::zeros({100000})),
                      "save_npy: /dev/full: write failed (No space left on device)");
    CHECK(fs::exists("/dev/full"));
  }
  em::Shape deep(std::size_t{65}, int64_t{1});
  CHECK_THROWS_WITH(
      em::save_npy(tmp.file("d.npy"), em::zeros(deep)),
      "save_npy: " + tmp.file("d.npy") + ": a 65-d tensor cannot be saved (at most 64 dims)");
  // NumPy has no bfloat16 (float16 saves as '<f2'; see test_half.cpp).
  em::Tensor bf = em::ones({2}, em::bfloat16);
  CHECK_THROWS_AS(em::save_npy(tmp.file("h.npy"), bf), em::DTypeError);
  CHECK_THROWS_WITH(em::save_npy(tmp.file("h.npy"), bf),
                    "save_npy: " + tmp.file("h.npy") +
                        ": dtype bfloat16 cannot be saved (NumPy has no bfloat16); save "
                        "t.to(float32), which holds every bfloat16 value exactly");
  CHECK_FALSE(fs::exists(tmp.file("h.npy")));
}

// ---- xtensor ------------------------------------------------------------------

TEST_CASE("to_xtensor is a writable zero-copy view", "[io][xtensor]") {
  em::Tensor t = em::arange(6, em::float32).reshape({2, 3});
  auto v = em::to_xtensor<float>(t);
  CHECK(v.dimension() == 2);
  CHECK(v.shape()[0] == 2);
  CHECK(v.shape()[1] == 3);
  CHECK(v.data() == t.data<float>());
  CHECK(v(1, 2) == 5.f);
  v(0, 1) = 42.f;
  CHECK(t.to_vector<float>() == std::vector<float>{0, 42, 2, 3, 4, 5});
  xt::view(v, 1, xt::all()) *= 2.f;
  CHECK(t.to_vector<float>() == std::vector<float>{0, 42, 2, 6, 8, 10});

  // xtensor and ember agree on the same memory.
  CHECK(xt::sum(v)() == Approx(t.sum().item<float>()));
  xt::xarray<float> row_sums = xt::sum(v, {1});
  CHECK(row_sums(0) == Approx(t.sum({1}).to_vector<float>()[0]));
  CHECK(row_sums(1) == Approx(t.sum({1}).to_vector<float>()[1]));
  CHECK(xt::amax(v)() == t.max().item<float>());

  SECTION("0-d, size 0 and other dtypes") {
    em::Tensor s = em::scalar_tensor(7, em::int64);
    auto sv = em::to_xtensor<int64_t>(s);
    CHECK(sv.dimension() == 0);
    CHECK(sv() == 7);
    em::Tensor e = em::zeros({0, 4}, em::float64);
    auto ev = em::to_xtensor<double>(e);
    CHECK(ev.size() == 0);
    CHECK(ev.shape()[1] == 4);
    em::Tensor b = em::tensor(std::vector<bool>{true, false, true}, {3});
    auto bv = em::to_xtensor<bool>(b);
    bv(1) = true;
    CHECK(b.all().item<bool>());
  }
  SECTION("a contiguous slice starts at its offset") {
    em::Tensor rows = em::arange(12, em::int32).reshape({4, 3}).slice(0, 1, 3);
    REQUIRE(rows.is_contiguous());
    auto rv = em::to_xtensor<int32_t>(rows);
    CHECK(rv(0, 0) == 3);
    CHECK(xt::sum(rv)() == rows.sum().item<int64_t>());
  }
}

TEST_CASE("to_xtensor errors", "[io][xtensor][errors]") {
  em::Tensor t = em::zeros({2, 3});
  CHECK_THROWS_AS(em::to_xtensor<double>(t), em::DTypeError);
  CHECK_THROWS_WITH(em::to_xtensor<double>(t),
                    "to_xtensor: the tensor has dtype float32, not float64");
  em::Tensor tt = t.t();
  CHECK_THROWS_AS(em::to_xtensor<float>(tt), em::ValueError);
  CHECK_THROWS_WITH(em::to_xtensor<float>(tt),
                    "to_xtensor: the tensor is not contiguous; call contiguous() first");
  em::Tensor fixed = tt.contiguous();
  CHECK(em::to_xtensor<float>(fixed).shape()[0] == 3);
  if (em::cuda_available()) {
    em::Tensor g = t.to(em::Device::cuda());
    CHECK_THROWS_AS(em::to_xtensor<float>(g), em::DeviceError);
  }
}

TEST_CASE("from_xtensor takes the buffer without copying", "[io][xtensor]") {
  xt::xarray<double> a = {{1., 2., 3.}, {4., 5., 6.}};
  const double* p = a.data();
  em::Tensor t = em::from_xtensor(std::move(a));
  CHECK(t.dtype() == em::float64);
  CHECK(t.shape() == em::Shape{2, 3});
  CHECK(t.is_contiguous());
  CHECK(t.data<double>() == p);
  CHECK(t.to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 6});
  // Copies and views keep the buffer alive after `t` is gone.
  em::Tensor col = t.select(1, 2);
  t = em::Tensor();
  CHECK(col.to_vector<double>() == std::vector<double>{3, 6});
  CHECK((col * 2.0).to_vector<double>() == std::vector<double>{6, 12});

  SECTION("other dtypes and 0-d") {
    xt::xarray<int32_t> i = {1, 2, 3};
    em::Tensor ti = em::from_xtensor(std::move(i));
    CHECK(ti.dtype() == em::int32);
    CHECK(ti.sum().item<int64_t>() == 6);
    xt::xarray<bool> b = {true, false};
    em::Tensor tb = em::from_xtensor(std::move(b));
    CHECK(tb.dtype() == em::bool_);
    CHECK(tb.to_vector<bool>() == std::vector<bool>{true, false});
    xt::xarray<float> s = 2.5f;
    em::Tensor ts = em::from_xtensor(std::move(s));
    CHECK(ts.dim() == 0);
    CHECK(ts.item<float>() == 2.5f);
    xt::xarray<uint8_t> e = xt::xarray<uint8_t>::from_shape({0, 2});
    em::Tensor te = em::from_xtensor(std::move(e));
    CHECK(te.shape() == em::Shape{0, 2});
  }
}

TEST_CASE("view_of borrows the xarray's memory", "[io][xtensor]") {
  xt::xarray<int64_t> a = {{1, 2}, {3, 4}, {5, 6}};
  em::Tensor t = em::view_of(a);
  CHECK(t.data<int64_t>() == a.data());
  CHECK(t.shape() == em::Shape{3, 2});
  CHECK(t.sum().item<int64_t>() == xt::sum(a)());
  t += 10;  // ember writes, xtensor sees
  CHECK(a(2, 1) == 16);
  a(0, 0) = -1;  // xtensor writes, ember sees
  CHECK(t.to_vector<int64_t>()[0] == -1);
  // A round trip through both adaptors lands on the same memory.
  auto back = em::to_xtensor<int64_t>(t);
  CHECK(back.data() == a.data());
  CHECK(xt::sum(back)() == xt::sum(a)());
}

TEST_CASE("xtensor adaptors reject column-major arrays", "[io][xtensor][errors]") {
  xt::xarray<double, xt::layout_type::column_major> c = {{1., 2.}, {3., 4.}};
  CHECK_THROWS_AS(em::view_of(c), em::ValueError);
  CHECK_THROWS_WITH(em::view_of(c),
                    "view_of: the xarray is not row-major; only row-major (C order) layout is "
                    "supported");
  CHECK_THROWS_WITH(em::from_xtensor(std::move(c)),
                    Contains("from_xtensor: the xarray is not row-major"));
  // Nothing was taken: c still owns its data.
  CHECK(c(1, 0) == 3.);
  // A 1-d array is the same in either order.
  xt::xarray<double, xt::layout_type::column_major> v = {1., 2.};
  CHECK(em::view_of(v).to_vector<double>() == std::vector<double>{1, 2});
}
