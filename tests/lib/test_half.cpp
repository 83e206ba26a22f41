// float16 and bfloat16 on the CPU: conversions bit for bit against references
// written from first principles (and the compiler's _Float16 where it has
// one), every dtype pair and layout through to()/copy_, creation, printing,
// .npy, and every computing op against "widen to float32, compute, round once"
// (Note [Half on the CPU]).
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <ember/ember.h>

#include "dispatch/dispatcher.h"

namespace em = ember;
using Catch::Contains;
using em::BFloat16;
using em::DType;
using em::Half;
using em::dispatch::OpId;

namespace {

const DType kHalfTypes[] = {em::float16, em::bfloat16};
const DType kAllTypes[] = {em::bool_,    em::uint8,   em::int32,   em::int64,
                           em::float16, em::bfloat16, em::float32, em::float64};

// The nearest value of a binary float with `mant` stored mantissa bits and
// smallest normal exponent `emin`, ties to even, overflowing to inf past
// `max`: rounding done on doubles with nearbyint, not on bits.
double ref_round(float f, int mant, int emin, double max) {
  if (std::isnan(f) || std::isinf(f) || f == 0) return f;
  const double x = f;
  const int e = std::max(std::ilogb(x), emin);  // subnormals share the smallest exponent
  const double v = std::ldexp(std::nearbyint(std::ldexp(x, mant - e)), e - mant);
  if (std::fabs(v) > max) return std::copysign(INFINITY, x);
  return v == 0 ? std::copysign(0.0, x) : v;
}
double ref_half(float f) { return ref_round(f, 10, -14, 65504.0); }
double ref_bf16(float f) { return ref_round(f, 7, -126, 0x1.fep127); }

// "" when both hold the same value (NaN matches NaN; the sign of zero counts).
std::string same_value(double got, double want) {
  if (std::isnan(got) && std::isnan(want)) return "";
  if (got == want && std::signbit(got) == std::signbit(want)) return "";
  return fmt::format("got {} expected {}", got, want);
}

// Sample floats over every exponent: bit patterns k * 4099 (a prime stride).
std::vector<float> sample_floats() {
  std::vector<float> v;
  for (uint64_t b = 0; b <= 0xffffffffu; b += 4099) v.push_back(std::bit_cast<float>(static_cast<uint32_t>(b)));
  return v;
}

std::vector<uint16_t> bits_of(const em::Tensor& t) {
  std::vector<uint16_t> out;
  if (t.dtype() == em::float16)
    for (Half h : t.to_vector<Half>()) out.push_back(h.bits);
  else
    for (BFloat16 h : t.to_vector<BFloat16>()) out.push_back(h.bits);
  return out;
}

// "" when got and want have one dtype and shape and the same elements (NaN
// matches NaN), else the first mismatch.
std::string mismatch(const em::Tensor& got, const em::Tensor& want) {
  if (got.dtype() != want.dtype())
    return fmt::format("dtype {} vs {}", em::dtype_name(got.dtype()), em::dtype_name(want.dtype()));
  if (got.shape() != want.shape())
    return fmt::format("shape {} vs {}", em::shape_str(got.shape()), em::shape_str(want.shape()));
  if (got.dtype() == em::float16 || got.dtype() == em::bfloat16) {
    const auto g = got.to_vector<float>(), w = want.to_vector<float>();
    const auto gb = bits_of(got), wb = bits_of(want);
    for (std::size_t i = 0; i < g.size(); ++i)
      if (gb[i] != wb[i] && !(std::isnan(g[i]) && std::isnan(w[i])))
        return fmt::format("index {}: got {} (0x{:04x}) expected {} (0x{:04x})", i, g[i], gb[i], w[i], wb[i]);
    return "";
  }
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  for (std::size_t i = 0; i < g.size(); ++i)
    if (auto m = same_value(g[i], w[i]); !m.empty()) return fmt::format("index {}: {}", i, m);
  return "";
}

// Values that exercise rounding: ordinary, huge, tiny, ties and (with
// `specials`) inf and NaN, then seeded ones in [-4, 4).
std::vector<float> mixed_values(int n, uint32_t seed, bool specials = true) {
  std::vector<float> v = {0.f, -0.f, 1.f, -1.f, 0.5f, 1.f / 3.f, 65504.f, 1e-6f, -3e-8f, 2.5f, -7.75f};
  if (specials) v.insert(v.end(), {70000.f, INFINITY, -INFINITY, NAN, 1e30f});
  uint32_t s = seed;
  while (static_cast<int>(v.size()) < n) {
    s = s * 1664525u + 1013904223u;
    const float u = static_cast<float>(s >> 8) * 0x1.0p-24f;
    v.push_back((u - 0.5f) * 8.f);
  }
  v.resize(static_cast<std::size_t>(n));
  return v;
}

em::Tensor half_tensor(DType dt, const em::Shape& shape, uint32_t seed, bool specials = true) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return em::tensor(mixed_values(static_cast<int>(n), seed, specials), shape).to(dt);
}

em::Tensor wide(const em::Tensor& t) { return t.to(em::float32); }

}  // namespace

// ---- the element types --------------------------------------------------------

TEST_CASE("Half and BFloat16 round known values like CUDA", "[half][convert]") {
  auto h = [](float f) { return Half(f).bits; };
  CHECK(h(1.f / 3.f) == 0x3555);
  CHECK(h(1.f) == 0x3c00);
  CHECK(h(-2.f) == 0xc000);
  CHECK(h(65504.f) == 0x7bff);                 // the largest half
  CHECK(h(65519.99f) == 0x7bff);               // just below the overflow boundary
  CHECK(h(65520.f) == 0x7c00);                 // the boundary itself rounds (to even) to inf
  CHECK(h(-65520.f) == 0xfc00);
  CHECK(h(INFINITY) == 0x7c00);
  CHECK(h(std::ldexp(1.f, -14)) == 0x0400);    // the smallest normal
  CHECK(h(std::ldexp(1.f, -24)) == 0x0001);    // the smallest subnormal
  CHECK(h(std::ldexp(1.f, -25)) == 0x0000);    // half of it: a tie, to even (zero)
  CHECK(h(std::nextafter(std::ldexp(1.f, -25), 1.f)) == 0x0001);
  CHECK(h(std::ldexp(3.f, -25)) == 0x0002);    // 1.5 subnormal steps: a tie, to even
  CHECK(h(-std::ldexp(1.f, -25)) == 0x8000);   // underflow keeps the sign
  CHECK(h(-0.f) == 0x8000);
  CHECK(h(1.f + std::ldexp(1.f, -11)) == 0x3c00);      // tie between 1 and 1+2^-10: even
  CHECK(h(1.f + 3 * std::ldexp(1.f, -11)) == 0x3c02);  // tie: even is up
  const uint16_t nan = h(NAN);
  CHECK((nan & 0x7c00) == 0x7c00);
  CHECK((nan & 0x03ff) != 0);
  CHECK(std::isnan(static_cast<float>(Half::from_bits(0x7e00))));
  CHECK(static_cast<float>(Half::from_bits(0x0001)) == std::ldexp(1.f, -24));
  CHECK(static_cast<float>(Half::from_bits(0x03ff)) == std::ldexp(1023.f, -24));
  CHECK(static_cast<float>(Half::from_bits(0x7bff)) == 65504.f);
  CHECK(std::signbit(static_cast<float>(Half::from_bits(0x8000))));

  auto b = [](float f) { return BFloat16(f).bits; };
  CHECK(b(1.f / 3.f) == 0x3eab);
  CHECK(b(1.f) == 0x3f80);
  CHECK(b(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie: even (down)
  CHECK(b(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie: even (up)
  CHECK(b(std::bit_cast<float>(0x3f808001u)) == 0x3f81);  // above the tie
  CHECK(b(std::numeric_limits<float>::max()) == 0x7f80);  // rounds to inf
  CHECK(b(-0.f) == 0x8000);
  CHECK(b(std::bit_cast<float>(0x00000001u)) == 0x0000);  // float subnormals round too
  CHECK(std::isnan(static_cast<float>(BFloat16(NAN))));
  CHECK(std::isnan(static_cast<float>(BFloat16(std::bit_cast<float>(0x7f800001u)))));  // no inf
  CHECK(static_cast<float>(BFloat16::from_bits(0x3f81)) == 1.0078125f);
}

TEST_CASE("every float16 and bfloat16 value widens exactly and rounds back to itself", "[half][convert]") {
  std::vector<Half> hs;
  std::vector<BFloat16> bs;
  for (uint32_t i = 0; i <= 0xffff; ++i) {
    hs.push_back(Half::from_bits(static_cast<uint16_t>(i)));
    bs.push_back(BFloat16::from_bits(static_cast<uint16_t>(i)));
  }
  const auto hf = em::tensor(hs).to(em::float32).to_vector<float>();
  const auto bf = em::tensor(bs).to(em::float32).to_vector<float>();
  int bad = 0;
  for (uint32_t i = 0; i <= 0xffff && bad < 5; ++i) {
    // float16 from its fields: (-1)^s * 2^(e-15) * 1.m, or 2^-14 * 0.m when e == 0.
    const uint32_t s = i >> 15, e = (i >> 10) & 0x1f, m = i & 0x3ff;
    double want = e == 0 ? std::ldexp(static_cast<double>(m), -24)
                         : (e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024.0 + m, static_cast<int>(e) - 25));
    if (s) want = -want;
    if (!same_value(hf[i], want).empty()) {
      ++bad;
      FAIL_CHECK(fmt::format("float16 0x{:04x}: {}", i, same_value(hf[i], want)));
    }
    if (std::bit_cast<uint32_t>(bf[i]) != i << 16) {
      ++bad;
      FAIL_CHECK(fmt::format("bfloat16 0x{:04x} widened to 0x{:08x}", i, std::bit_cast<uint32_t>(bf[i])));
    }
    if (!std::isnan(hf[i]) && Half(hf[i]).bits != i) {
      ++bad;
      FAIL_CHECK(fmt::format("float16 0x{:04x} does not round back", i));
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("float32 rounds to float16/bfloat16 to nearest even over all exponents", "[half][convert]") {
  const std::vector<float> xs = sample_floats();
  const em::Tensor src = em::tensor(xs);
  const auto h = src.to(em::float16).to(em::float32).to_vector<float>();
  const auto b = src.to(em::bfloat16).to(em::float32).to_vector<float>();
  int bad = 0;
  for (std::size_t i = 0; i < xs.size() && bad < 5; ++i) {
    if (auto m = same_value(h[i], ref_half(xs[i])); !m.empty()) {
      ++bad;
      FAIL_CHECK(fmt::format("float16 of {:a}: {}", xs[i], m));
    }
    if (auto m = same_value(b[i], ref_bf16(xs[i])); !m.empty()) {
      ++bad;
      FAIL_CHECK(fmt::format("bfloat16 of {:a}: {}", xs[i], m));
    }
#ifdef __FLT16_MAX__
    // The compiler's own IEEE binary16 conversion: a third opinion.
    if (!std::isnan(xs[i]) && Half(xs[i]).bits != std::bit_cast<uint16_t>(static_cast<_Float16>(xs[i]))) {
      ++bad;
      FAIL_CHECK(fmt::format("float16 of {:a} differs from _Float16", xs[i]));
    }
#endif
  }
  CHECK(bad == 0);
}


// ---- tensors: conversion ------------------------------------------------------

TEST_CASE("to() converts between every pair of dtypes, half ones included", "[half][convert]") {
  // Values each source dtype holds exactly, so each conversion has one right answer.
  auto values_for = [](DType dt) -> std::vector<double> {
    switch (dt) {
      case DType::bool_: return {0, 1, 1, 0};
      case DType::uint8: return {0, 1, 200, 255};
      case DType::int32:
      case DType::int64: return {0, -3, 2049, 70000};
      case DType::float16: return {0.5, -2.75, 65504, 1.0 / 1024};
      case DType::bfloat16: return {0.5, -2.75, static_cast<float>(BFloat16(3.0e38f)), 1.0 / 1024};
      default: return {0.1, -2.75, 1e10, 1.0 / 3};
    }
  };
  for (DType from : kAllTypes) {
    for (DType to : kAllTypes) {
      INFO(em::dtype_name(from) << " -> " << em::dtype_name(to));
      const em::Tensor src = em::tensor(values_for(from)).to(from);
      const std::vector<double> held = src.to_vector<double>();
      const em::Tensor got = src.to(to);
      CHECK(got.dtype() == to);
      // The held value converted as C++ converts it (through float for the
      // 16-bit types); NaN marks a value the target cannot hold (undefined in C++).
      std::vector<double> want;
      for (double v : held) {
        double w = v;
        switch (to) {
          case DType::bool_: w = v != 0; break;
          case DType::uint8: w = (v >= 0 && v < 256) ? std::trunc(v) : NAN; break;
          case DType::int32: w = std::fabs(v) < 2147483648.0 ? std::trunc(v) : NAN; break;
          case DType::int64: w = std::fabs(v) < 9.2e18 ? std::trunc(v) : NAN; break;
          case DType::float16: w = ref_half(static_cast<float>(v)); break;
          case DType::bfloat16: w = ref_bf16(static_cast<float>(v)); break;
          case DType::float32: w = static_cast<float>(v); break;
          case DType::float64: break;
        }
        want.push_back(w);
      }
      const std::vector<double> g = got.to_vector<double>();
      for (std::size_t i = 0; i < want.size(); ++i) {
        if (std::isnan(want[i])) continue;
        INFO("element " << i << " (" << held[i] << ")");
        CHECK(same_value(g[i], want[i]) == "");
      }
      // Widening is exact both ways.
      if (to == em::float64 || (to == em::float32 && from != em::float64))
        CHECK(mismatch(got.to(from), src) == "");
    }
  }
  // float64 -> float16 goes through float32, as PyTorch's c10::Half(float(x))
  // does (Note [Half conversions]): a value just above a float16 tie, closer
  // to it than float32 resolves, lands on the tie and rounds to even.
  const double above_tie = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  CHECK(em::tensor({above_tie}).to(em::float16).item<float>() == 1.0f);
  CHECK(em::tensor({above_tie}).to(em::bfloat16).item<float>() == 1.0f);
  // int64 beyond float16's range overflows to inf; bool reads nonzero (NaN too) as true.
  CHECK(std::isinf(em::tensor({int64_t{1} << 40}).to(em::float16).item<float>()));
  CHECK(em::tensor({NAN, 0.f, -0.f, 1e-30f}).to(em::float16).to(em::bool_).to_vector<bool>() ==
        std::vector<bool>{true, false, false, false});
  // float16 <-> bfloat16 goes through float32 (exact), then rounds once.
  const float third16 = static_cast<float>(Half(1.f / 3.f));
  CHECK(em::tensor({1.f / 3.f}).to(em::float16).to(em::bfloat16).item<float>() ==
        static_cast<float>(BFloat16(third16)));
  CHECK(em::tensor({70000.f}).to(em::bfloat16).to(em::float16).item<float>() == INFINITY);
  CHECK(em::tensor({1e-10f}).to(em::bfloat16).to(em::float16).item<float>() == 0.f);
}

TEST_CASE("conversions read non-contiguous and broadcast sources", "[half][convert]") {
  const em::Tensor base = em::tensor(mixed_values(48, 7), {6, 8});
  for (DType dt : kHalfTypes) {
    INFO(em::dtype_name(dt));
    const std::vector<em::Tensor> sources = {
        base.t(),                                        // transposed
        base.slice(1, 1, 8, 2),                          // step-2 slice with an offset
        base.select(0, 3),                               // one row
        base.select(1, 2).unsqueeze(1).expand({6, 5}),   // stride 0
        base.to(dt).t(),                                 // half sources
        base.to(dt).slice(0, 1, 6, 3),
        base.to(dt).select(1, 5).unsqueeze(0).expand({3, 6}),
    };
    for (const em::Tensor& s : sources) {
      for (DType to : kAllTypes) {
        INFO(em::dtype_name(s.dtype()) << " " << em::shape_str(s.shape()) << " to "
                                       << em::dtype_name(to));
        CHECK(mismatch(s.to(dt).to(to), s.contiguous().to(dt).to(to)) == "");
        CHECK(mismatch(s.to(to), s.contiguous().to(to)) == "");
        CHECK(mismatch(s.clone(), s.contiguous()) == "");
      }
    }
  }
}

TEST_CASE("copy_ and fill_ convert into half views and out of them", "[half][convert]") {
  const em::Tensor src = em::tensor(mixed_values(12, 3), {3, 4});
  for (DType dt : kHalfTypes) {
    INFO(em::dtype_name(dt));
    // Into a transposed half view.
    em::Tensor dst = em::zeros({4, 3}, dt);
    em::Tensor view = dst.t();
    view.copy_(src);
    CHECK(mismatch(dst.t(), src.to(dt)) == "");
    // Into every other column, from a broadcast row.
    em::Tensor grid = em::zeros({3, 8}, dt);
    em::Tensor cols = grid.slice(1, 0, 8, 2);
    const std::vector<float> row = {1.5f, -2.f, 3.25f, 1e9f};
    cols.copy_(em::tensor(row));
    std::vector<float> want;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 8; ++c)
        want.push_back(c % 2 ? 0.f : (dt == em::float16 ? static_cast<float>(Half(row[c / 2]))
                                                         : static_cast<float>(BFloat16(row[c / 2]))));
    CHECK(grid.to_vector<float>() == want);
    // Out of half views into other dtypes.
    em::Tensor ints = em::zeros({3}, em::int32);
    ints.copy_(grid.select(0, 1).slice(0, 0, 6, 2));
    CHECK(ints.to_vector<int32_t>() == std::vector<int32_t>{1, -2, 3});
    em::Tensor dbl = em::zeros({3}, em::float64);
    dbl.copy_(grid.select(1, 0));
    CHECK(dbl.to_vector<double>() == std::vector<double>{1.5, 1.5, 1.5});
    // Between the two 16-bit dtypes, and fill_ with an unrepresentable number.
    const DType other = dt == em::float16 ? em::bfloat16 : em::float16;
    em::Tensor o = em::zeros({3, 4}, other);
    o.copy_(src.to(dt));
    CHECK(mismatch(o, src.to(dt).to(other)) == "");
    em::Tensor f = em::empty({2, 2}, dt);
    f.fill_(0.1);
    CHECK(mismatch(f, em::full({2, 2}, 0.1f).to(dt)) == "");
  }
}

TEST_CASE("item, to_vector, data and tensor() speak Half and BFloat16", "[half][tensor]") {
  em::Tensor h = em::tensor({Half(1.5f), Half(-2.f), Half(65504.f)});
  CHECK(h.dtype() == em::float16);
  CHECK(h.to_vector<float>() == std::vector<float>{1.5f, -2.f, 65504.f});
  CHECK(h[1].item<Half>().bits == 0xc000);
  CHECK(h[2].item<int32_t>() == 65504);
  CHECK(h[0].item<double>() == 1.5);
  CHECK(h[0].item<BFloat16>().bits == BFloat16(1.5f).bits);
  CHECK(h[1].item<bool>());
  std::vector<BFloat16> bv = {BFloat16(1.f), BFloat16(2.f), BFloat16(3.f), BFloat16(4.f)};
  em::Tensor b = em::tensor(bv, {2, 2});
  CHECK(b.dtype() == em::bfloat16);
  CHECK(b.shape() == em::Shape{2, 2});
  CHECK(b.t().to_vector<float>() == std::vector<float>{1.f, 3.f, 2.f, 4.f});
  CHECK(b.t().to_vector<BFloat16>()[1].bits == BFloat16(3.f).bits);
  // data<T>() is the storage itself.
  Half* p = h.data<Half>();
  p[0] = Half(0.25f);
  CHECK(h[0].item<float>() == 0.25f);
  const em::Tensor& cb = b;
  CHECK(cb.data<BFloat16>()[3].bits == BFloat16(4.f).bits);
  CHECK(em::tensor({1.f, 2.f}).to_vector<Half>()[1].bits == 0x4000);
  CHECK(em::tensor({1, 300}).to_vector<BFloat16>()[1].bits == BFloat16(300.f).bits);
  CHECK(em::tensor({{Half(1.f), Half(2.f)}, {Half(3.f), Half(4.f)}}).shape() == em::Shape{2, 2});
  CHECK(em::scalar_tensor(0.1, em::bfloat16).item<float>() == static_cast<float>(BFloat16(0.1f)));
}

// ---- creation -------------------------------------------------------------------

TEST_CASE("creation functions make float16 and bfloat16 tensors", "[half][creation]") {
  for (DType dt : kHalfTypes) {
    INFO(em::dtype_name(dt));
    auto round = [&](float v) {
      return dt == em::float16 ? static_cast<float>(Half(v)) : static_cast<float>(BFloat16(v));
    };
    CHECK(em::empty({2, 3}, dt).dtype() == dt);
    CHECK(em::zeros({2, 3}, dt).to_vector<float>() == std::vector<float>(6, 0.f));
    CHECK(em::ones({4}, dt).to_vector<float>() == std::vector<float>(4, 1.f));
    CHECK(em::full({3}, 0.1, dt).to_vector<float>() == std::vector<float>(3, round(0.1f)));
    CHECK(std::isinf(em::full({1}, 1e6, em::float16).item<float>()));
    CHECK(em::arange(5, dt).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
    CHECK(em::arange(0, 1, 0.25, dt).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
    CHECK(em::arange(0, 3, 1, dt).dtype() == dt);
    CHECK(em::linspace(0, 1, 4, dt).to_vector<float>() ==
          std::vector<float>{0, round(1.f / 3), round(2.f / 3), 1});
    CHECK(em::eye(2, 3, dt).to_vector<float>() == std::vector<float>{1, 0, 0, 0, 1, 0});
    CHECK(em::scalar_tensor(2.5, dt).item<float>() == 2.5f);
    const em::Tensor f = em::ones({2}, em::float32);
    CHECK(em::zeros_like(f, dt).dtype() == dt);
    CHECK(em::ones_like(em::zeros({3}, dt)).dtype() == dt);
    CHECK(em::full_like(em::zeros({2}, dt), 3).to_vector<float>() == std::vector<float>{3, 3});
    CHECK(em::empty_like(em::zeros({2}, dt)).dtype() == dt);
  }
}

TEST_CASE("rand and randn draw float16 and bfloat16 values", "[half][creation][random]") {
  for (DType dt : kHalfTypes) {
    INFO(em::dtype_name(dt));
    const int bits = dt == em::float16 ? 11 : 8;
    em::manual_seed(7);
    const em::Tensor u = em::rand({20000}, dt);
    CHECK(u.dtype() == dt);
    const auto v = u.to_vector<float>();
    float lo = 1, hi = 0;
    double mean = 0;
    bool on_grid = true;
    for (float x : v) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      mean += x / static_cast<double>(v.size());
      on_grid = on_grid && std::ldexp(x, bits) == std::floor(std::ldexp(x, bits));
    }
    CHECK(lo >= 0.f);
    CHECK(hi < 1.f);  // a rounded float draw could reach 1.0; these cannot
    CHECK(on_grid);
    CHECK(std::fabs(mean - 0.5) < 0.02);
    // The same stream as float32: each value is the float32 draw cut to `bits` bits.
    em::manual_seed(7);
    const auto f = em::rand({20000}).to_vector<float>();
    bool cut = true;
    for (std::size_t i = 0; i < f.size(); ++i)
      cut = cut && v[i] == std::ldexp(std::floor(std::ldexp(f[i], bits)), -bits);
    CHECK(cut);
    em::manual_seed(7);
    CHECK(mismatch(em::rand({20000}, dt), u) == "");
    // randn: the float64 draw rounded.
    em::manual_seed(11);
    const em::Tensor n = em::randn({20000}, dt);
    em::manual_seed(11);
    CHECK(mismatch(n, em::randn({20000}, em::float64).to(em::float32).to(dt)) == "");
    const em::Tensor nf = n.to(em::float32);
    CHECK(std::fabs(nf.mean().item<float>()) < 0.05f);
    CHECK(std::fabs(nf.std().item<float>() - 1.f) < 0.05f);
  }
}

// ---- printing ---------------------------------------------------------------------

TEST_CASE("float16 and bfloat16 tensors print like PyTorch", "[half][format]") {
  CHECK(em::tensor({1.5f, 2.f}).to(em::float16).str() == "tensor([1.5000, 2.0000], dtype=float16)");
  CHECK(em::tensor({1.f, 2.f, 3.f}).to(em::bfloat16).str() == "tensor([1., 2., 3.], dtype=bfloat16)");
  CHECK(em::scalar_tensor(1.0 / 3, em::float16).str() == "tensor(0.3333, dtype=float16)");
  CHECK(em::tensor({0.1f}).to(em::bfloat16).str() == "tensor([0.1001], dtype=bfloat16)");
  CHECK(em::tensor({INFINITY, -INFINITY, NAN, 1.f}).to(em::float16).str() ==
        "tensor([inf, -inf, nan, 1.], dtype=float16)");
  CHECK(em::tensor({70000.f, 1.f}).to(em::float16).str() == "tensor([inf, 1.], dtype=float16)");
  CHECK(em::tensor({1e-4f, 1000.f}).to(em::float16).str() ==
        "tensor([1.0002e-04, 1.0000e+03], dtype=float16)");
  CHECK(em::tensor({{1.f, 2.5f}, {-3.f, 4.f}}).to(em::bfloat16).t().str() ==
        "tensor([[ 1.0000, -3.0000],\n        [ 2.5000,  4.0000]], dtype=bfloat16)");
  CHECK(em::zeros({0}, em::float16).str() == "tensor([], dtype=float16)");
  CHECK(em::arange(1001, em::float16).str() ==
        "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.], dtype=float16)");
  CHECK(em::arange(2000, em::bfloat16).str() ==  // bfloat16 holds integers only to 256
        "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 2.0000e+03, 2.0000e+03,\n"
        "        2.0000e+03], dtype=bfloat16)");
  const em::Tensor h = em::tensor({0.5f}).to(em::float16);
  CHECK(fmt::format("{}", h) == h.str());
  std::ostringstream os;
  os << h;
  CHECK(os.str() == "tensor([0.5000], dtype=float16)");
}

// ---- .npy ---------------------------------------------------------------------------

namespace {

struct TempDir {
  std::filesystem::path dir;
  TempDir() {
    static int counter = 0;
    dir = std::filesystem::temp_directory_path() /
          fmt::format("ember_test_half_{}_{}", ::getpid(), counter++);
    std::filesystem::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE(".npy stores float16 as '<f2' and refuses bfloat16", "[half][io][npy]") {
  TempDir tmp;
  const std::string path = tmp.file("h.npy");
  std::vector<Half> vals;
  for (uint16_t b : {0x0000, 0x8000, 0x0001, 0x03ff, 0x3555, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0xc000})
    vals.push_back(Half::from_bits(b));
  const em::Tensor h = em::tensor(vals, {2, 5});
  em::save_npy(path, h);
  const std::string bytes = read_file(path);
  CHECK(bytes.find("'descr': '<f2'") != std::string::npos);
  CHECK(bytes.find("'shape': (2, 5)") != std::string::npos);
  REQUIRE(bytes.size() == 128 + 20);  // a 64-byte aligned header, then the elements
  CHECK(static_cast<unsigned char>(bytes[128 + 8]) == 0x55);  // 0x3555, little endian
  CHECK(static_cast<unsigned char>(bytes[128 + 9]) == 0x35);
  em::Tensor back = em::load_npy(path);
  CHECK(back.dtype() == em::float16);
  CHECK(back.shape() == em::Shape{2, 5});
  CHECK(bits_of(back) == bits_of(h));
  // A transposed tensor is written in logical order.
  em::save_npy(path, h.t());
  CHECK(bits_of(em::load_npy(path)) == bits_of(h.t().contiguous()));
  // A big-endian file written elsewhere.
  std::string header = "{'descr': '>f2', 'fortran_order': False, 'shape': (2,), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size());
  file += '\0';
  file += header;
  file += std::string("\x3c\x00\xc0\x00", 4);  // 1.0, -2.0 big endian
  {
    std::ofstream f(tmp.file("be.npy"), std::ios::binary);
    f.write(file.data(), static_cast<std::streamsize>(file.size()));
  }
  CHECK(em::load_npy(tmp.file("be.npy")).to_vector<float>() == std::vector<float>{1.f, -2.f});
  // bfloat16: NumPy has no such dtype.
  const std::string bpath = tmp.file("b.npy");
  CHECK_THROWS_AS(em::save_npy(bpath, em::ones({2}, em::bfloat16)), em::DTypeError);
  CHECK_THROWS_WITH(em::save_npy(bpath, em::ones({2}, em::bfloat16)),
                    "save_npy: " + bpath +
                        ": dtype bfloat16 cannot be saved (NumPy has no bfloat16); save "
                        "t.to(float32), which holds every bfloat16 value exactly");
  CHECK_FALSE(std::filesystem::exists(bpath));
  em::save_npy(bpath, em::ones({2}, em::bfloat16).to(em::float32));
  CHECK(em::load_npy(bpath).to(em::bfloat16).to_vector<float>() == std::vector<float>{1.f, 1.f});
}

TEST_CASE("from_csv reads float16 and bfloat16 columns", "[half][data]") {
  TempDir tmp;
  const std::string path = tmp.file("h.csv");
  {
    std::ofstream f(path);
    f << "a,b\n0.1,1\n70000,2.5\n";
  }
  em::data::CsvOptions o;
  o.columns = {{"a", em::float16}, {"b", em::bfloat16}};
  std::vector<float> a, b;
  for (const em::data::Element& row : em::data::Dataset::from_csv(path, o)) {
    REQUIRE(row.size() == 2);
    CHECK(row[0].dtype() == em::float16);
    CHECK(row[1].dtype() == em::bfloat16);
    a.push_back(row[0].item<float>());
    b.push_back(row[1].item<float>());
  }
  CHECK(a == std::vector<float>{static_cast<float>(Half(0.1f)), INFINITY});
  CHECK(b == std::vector<float>{1.f, 2.5f});
  {
    std::ofstream f(path);
    f << "a\n1\nx\n";
  }
  em::data::CsvOptions h;
  h.columns = {{"a", em::float16}};
  CHECK_THROWS_WITH(em::data::Dataset::from_csv(path, h),
                    "from_csv: bad value \"x\" for float16 column \"a\" (" + path + " line 3, column 1)");
}

// ---- compute: widen to float32, compute, round once -----------------------------

TEST_CASE("every elementwise op on float16/bfloat16 is float32 math rounded once", "[half][ops]") {
  struct Row {
    OpId op;
    bool binary;
  };
  std::vector<Row> rows;
#define EMBER_UNARY(name, F, rule, dtypes) rows.push_back({OpId::name, false});
#define EMBER_BINARY(name, F, rule, dtypes) rows.push_back({OpId::name, true});
#include "ops/elementwise.def"
  auto call = [](OpId op, std::initializer_list<em::Tensor> in) { return em::dispatch::call(op, in); };
  for (DType dt : kHalfTypes) {
    const em::Tensor x = half_tensor(dt, {4, 6}, 11);
    const em::Tensor y = half_tensor(dt, {4, 6}, 12);
    const em::Tensor row = half_tensor(dt, {6}, 13, false);
    for (const Row& r : rows) {
      INFO(em::dispatch::op_name(r.op) << " on " << em::dtype_name(dt));
      REQUIRE(em::dispatch::contains(em::dispatch::schema(r.op).dtypes, dt));
      if (!r.binary) {
        const em::Tensor got = call(r.op, {x});
        CHECK((got.dtype() == dt || got.dtype() == em::bool_));
        CHECK(mismatch(got, call(r.op, {wide(x)}).to(got.dtype())) == "");
        const em::Tensor gt = call(r.op, {x.t()});
        CHECK(mismatch(gt, call(r.op, {wide(x).t()}).to(gt.dtype())) == "");
        continue;
      }
      const std::pair<em::Tensor, em::Tensor> pairs[] = {
          {x, y}, {x, row}, {row, x}, {x.t(), y.t()}, {x.slice(0, 0, 4, 2), y.select(0, 1)}};
      for (const auto& [a, b] : pairs) {
        INFO("shapes " << em::shape_str(a.shape()) << " and " << em::shape_str(b.shape()));
        const em::Tensor got = call(r.op, {a, b});
        CHECK((got.dtype() == dt || got.dtype() == em::bool_));
        CHECK(mismatch(got, call(r.op, {wide(a), wide(b)}).to(got.dtype())) == "");
      }
    }
  }
}

TEST_CASE("half dtypes promote like PyTorch and keep C++ numbers unrounded", "[half][ops]") {
  const em::Tensor h = em::tensor({1.5f, -2.f, 3.f}).to(em::float16);
  const em::Tensor b = em::tensor({0.5f, 4.f, -1.f}).to(em::bfloat16);
  const em::Tensor f = em::tensor({0.25f, 0.5f, 1.f});
  const em::Tensor i = em::tensor({1, 2, 3});
  CHECK((h + f).dtype() == em::float32);
  CHECK(mismatch(h + f, wide(h) + f) == "");
  CHECK((h + b).dtype() == em::float32);  // neither holds the other
  CHECK(mismatch(h * b, wide(h) * wide(b)) == "");
  CHECK((h + i).dtype() == em::float16);
  CHECK(mismatch(h + i, (wide(h) + i).to(em::float16)) == "");
  CHECK((i * b).dtype() == em::bfloat16);
  CHECK((h + em::tensor({1.0}).to(em::float64).reshape({})).dtype() == em::float16);  // 0-d
  CHECK((i + em::scalar_tensor(1, em::float16)).dtype() == em::float16);
  CHECK((h > 1).dtype() == em::bool_);
  CHECK(em::div(i, i.to(em::bfloat16)).dtype() == em::bfloat16);
  // A C++ number keeps the tensor's dtype and is not rounded to it first:
  // 3 * 0.1f = 0.3000000119 rounds to 0.30004883 in float16, while
  // 3 * float16(0.1) = 0.29992676 would round to 0.29980469.
  const em::Tensor three = em::full({1}, 3, em::float16);
  CHECK((three * 0.1).dtype() == em::float16);
  CHECK((three * 0.1).item<float>() == 0.300048828125f);
  CHECK(((three * 0.1) == (wide(three) * 0.1f).to(em::float16)).all().item<bool>());
  CHECK((2.5 - h).dtype() == em::float16);
  CHECK(mismatch(2.5 - h, (2.5f - wide(h)).to(em::float16)) == "");
  CHECK(mismatch(em::pow(b, 2), em::pow(wide(b), 2).to(em::bfloat16)) == "");
  // Half and BFloat16 values are numbers too (a Scalar holding their exact value).
  CHECK((h * Half(2.f)).dtype() == em::float16);
  CHECK((h * Half(2.f)).to_vector<float>() == std::vector<float>{3.f, -4.f, 6.f});
  CHECK((BFloat16(1.f) - b).to_vector<float>() == std::vector<float>{0.5f, -3.f, 2.f});
  CHECK(em::full({1}, BFloat16(0.1f), em::bfloat16).item<float>() == static_cast<float>(BFloat16(0.1f)));
  CHECK(em::full({2}, Half(1.5f)).dtype() == em::float32);  // like a C++ float
  CHECK(em::clamp(h, Half(-1.f), Half(2.f)).to_vector<float>() == std::vector<float>{1.5f, -1.f, 2.f});
  em::Scalar third = Half(1.f / 3.f);
  CHECK(third.is_floating());
  CHECK(third.to_double() == 0.333251953125);
}

TEST_CASE("reductions over float16/bfloat16 accumulate in float32", "[half][ops][reduce]") {
  std::vector<OpId> ops;
#define EMBER_REDUCE(name, rule, dtypes) ops.push_back(OpId::name);
#include "ops/reduce.def"
  for (DType dt : kHalfTypes) {
    for (bool specials : {false, true}) {
      const em::Tensor x = half_tensor(dt, {5, 7}, 21, specials);
      for (OpId op : ops) {
        const bool arg = op == OpId::argmax || op == OpId::argmin;
        const std::vector<em::Axes> axes_list =
            arg ? std::vector<em::Axes>{{}, {1}, {0}} : std::vector<em::Axes>{{}, {0}, {1}, {0, 1}};
        for (const em::Axes& axes : axes_list) {
          for (bool keep : {false, true}) {
            for (const em::Tensor& src : {x, x.t()}) {
              INFO(em::dispatch::op_name(op) << " on " << em::dtype_name(dt) << " "
                                             << em::shape_str(src.shape()) << " axes "
                                             << axes.size() << " keepdims " << keep
                                             << " specials " << specials);
              em::dispatch::Attrs a;
              a.ints = axes;
              a.flags = keep ? em::dispatch::kKeepDims : 0;
              a.f0 = 1;  // var/std correction
              const em::Tensor got = em::dispatch::call(op, {src}, a);
              const em::Tensor want = em::dispatch::call(op, {wide(src)}, a);
              if (want.dtype() == em::float32)
                CHECK(got.dtype() == dt);
              CHECK(mismatch(got, want.to(got.dtype())) == "");
            }
          }
        }
      }
    }
  }
  // float32 accumulation: a float16 accumulator would stop at 2048.
  CHECK(em::ones({4096}, em::float16).sum().item<float>() == 4096.f);
  CHECK(em::ones({3000}, em::bfloat16).mean().item<float>() == 1.f);
  CHECK(std::isinf(em::ones({70000}, em::float16).sum().item<float>()));  // rounds past 65504
  CHECK(em::ones({70000}, em::bfloat16).sum().item<float>() == static_cast<float>(BFloat16(70000.f)));
  CHECK(em::argmax(em::tensor({1.f, 5.f, 5.f}).to(em::float16)).item<int64_t>() == 1);
  CHECK(em::tensor({0.f, 1.f}).to(em::float16).any().item<bool>());
}

TEST_CASE("softmax, matmul, where, clamp, concat and index_select on half dtypes", "[half][ops]") {
  for (DType dt : kHalfTypes) {
    INFO(em::dtype_name(dt));
    const em::Tensor x = half_tensor(dt, {3, 4}, 31, false);
    const em::Tensor y = half_tensor(dt, {4, 5}, 32, false);
    for (int64_t axis : {0, 1, -1}) {
      CHECK(mismatch(em::softmax(x, axis), em::softmax(wide(x), axis).to(dt)) == "");
      CHECK(mismatch(em::log_softmax(x.t(), axis), em::log_softmax(wide(x).t(), axis).to(dt)) == "");
    }
    CHECK(em::matmul(x, y).dtype() == dt);
    CHECK(mismatch(em::matmul(x, y), em::matmul(wide(x), wide(y)).to(dt)) == "");
    CHECK(mismatch(em::matmul(y.t(), x.t()), em::matmul(wide(y).t(), wide(x).t()).to(dt)) == "");
    const em::Tensor batch = half_tensor(dt, {2, 3, 4}, 33, false);
    CHECK(mismatch(em::matmul(batch, y), em::matmul(wide(batch), wide(y)).to(dt)) == "");
    CHECK(mismatch(em::matmul(x.select(0, 1), y), em::matmul(wide(x).select(0, 1), wide(y)).to(dt)) == "");
    CHECK(em::matmul(x, em::ones({4, 2})).dtype() == em::float32);
    const em::Tensor cond = em::tensor({true, false, true, false});
    CHECK(em::where(cond, x, y.t().slice(0, 0, 3)).dtype() == dt);
    CHECK(mismatch(em::where(cond, x, y.t().slice(0, 0, 3)),
                   em::where(cond, wide(x), wide(y).t().slice(0, 0, 3)).to(dt)) == "");
    CHECK(mismatch(em::where(cond, x, 0.1), em::where(cond, wide(x), 0.1f).to(dt)) == "");
    CHECK(mismatch(em::clamp(x, -0.3, 0.7), em::clamp(wide(x), -0.3, 0.7).to(dt)) == "");
    CHECK(mismatch(em::clamp(x.t(), {}, 1.1), em::clamp(wide(x).t(), {}, 1.1).to(dt)) == "");
    CHECK(mismatch(em::concat({x, x.slice(0, 1, 3)}, 0), em::concat({wide(x), wide(x).slice(0, 1, 3)}, 0).to(dt)) == "");
    CHECK(em::concat({x, em::zeros({1, 4})}).dtype() == em::float32);
    CHECK(mismatch(em::stack({x, x}), em::stack({wide(x), wide(x)}).to(dt)) == "");
    const em::Tensor idx = em::tensor({2, 0, 2});
    CHECK(mismatch(em::index_select(x, 1, idx), em::index_select(wide(x), 1, idx).to(dt)) == "");
    CHECK(mismatch(em::index_select(x.t(), 0, idx), em::index_select(wide(x).t(), 0, idx).to(dt)) == "");
    // A reshape that cannot be a view copies the 16-bit elements as they are.
    CHECK(mismatch(x.t().reshape({12}), x.t().contiguous().reshape({12})) == "");
  }
}

TEST_CASE("in-place ops on half tensors round into the destination", "[half][ops][inplace]") {
  for (DType dt : kHalfTypes) {
    INFO(em::dtype_name(dt));
    const em::Tensor x0 = half_tensor(dt, {3, 4}, 41, false);
    em::Tensor x = x0.clone();
    x += 1.5;
    CHECK(mismatch(x, (wide(x0) + 1.5f).to(dt)) == "");
    x = x0.clone();
    const em::Tensor f = em::tensor(mixed_values(4, 42, false));
    x.mul_(f);  // float32 result rounded into the half destination
    CHECK(mismatch(x, (wide(x0) * f).to(dt)) == "");
    x = x0.clone();
    x.mul_(x);  // aliasing
    CHECK(mismatch(x, (wide(x0) * wide(x0)).to(dt)) == "");
    x = x0.clone();
    em::Tensor xt = x.t();
    xt.sub_(em::ones({4, 1}));
    CHECK(mismatch(x, (wide(x0) - 1.f).to(dt)) == "");
    em::Tensor g = em::zeros({3, 4}, em::float32);
    g.add_(x0);  // half into float32
    CHECK(mismatch(g, em::zeros({3, 4}) + wide(x0)) == "");
    x = x0.clone();
    x.div_(em::tensor({2, 4, 8, 16}));
    CHECK(mismatch(x, (wide(x0) / em::tensor({2.f, 4.f, 8.f, 16.f})).to(dt)) == "");
  }
}

// ---- errors and devices ---------------------------------------------------------

TEST_CASE("half dtype errors name the op and the dtypes", "[half][errors]") {
  const em::Tensor h = em::ones({2}, em::float16);
  em::Tensor i = em::zeros({2}, em::int32);
  CHECK_THROWS_AS(i.add_(h), em::DTypeError);
  CHECK_THROWS_WITH(i.add_(h), "add_: the result dtype float16 cannot be stored in the destination's int32");
  CHECK_THROWS_AS(em::ones({2}).data<Half>(), em::DTypeError);
  CHECK_THROWS_WITH(em::ones({2}).data<Half>(), "data: the tensor has dtype float32, not float16");
  CHECK_THROWS_WITH(h.data<BFloat16>(), "data: the tensor has dtype float16, not bfloat16");
  CHECK_THROWS_AS(em::randint(0, 5, {2}, em::float16), em::DTypeError);
  CHECK_THROWS_WITH(em::randint(0, 5, {2}, em::bfloat16),
                    "randint: dtype bfloat16 is not supported; use an integer dtype");
  CHECK_THROWS_AS(em::index_select(em::ones({3}), 0, h), em::DTypeError);
  CHECK_THROWS_WITH(em::index_select(em::ones({3}), 0, h),
                    "index_select: index has dtype float16; expected int64 or int32");
  CHECK_THROWS_WITH(h.item<float>(),
                    "item: a tensor with 2 elements cannot be converted to a scalar (shape [2])");
  em::Tensor flags = em::zeros({2}, em::bool_);
  CHECK_THROWS_WITH(flags.mul_(h), "mul_: the result dtype float16 cannot be stored in the destination's bool");
}

namespace {

// Metadata of a tensor on `device` (over a CPU buffer that is never read):
// enough for an op's shape/dtype rule, which must not look at the data.
em::Tensor meta_tensor(const em::Shape& shape, DType dt, em::Device device) {
  em::Tensor t = em::detail::make_tensor(shape, dt, em::Device::cpu());
  auto* impl = new em::detail::TensorImpl;
  em::detail::Ref<em::detail::TensorImpl> ref(impl);
  impl->storage = t.impl().storage;
  impl->shape = shape;
  impl->strides = em::contiguous_strides(shape);
  impl->dtype = dt;
  impl->device = device;
  impl->refresh();
  return em::Tensor(std::move(ref));
}

}  // namespace

TEST_CASE("shape/dtype rules accept float16/bfloat16 on CUDA tensors too", "[half][device]") {
  // The rules are device-independent: the CPU widens to float32, the CUDA
  // kernels compute half dtypes themselves; nothing is refused by device.
  for (DType dt : kHalfTypes) {
    for (em::Device dev : {em::Device::cpu(), em::Device::cuda(0)}) {
      INFO(em::dtype_name(dt) << " on " << dev.str());
      const em::Tensor a = meta_tensor({2, 3}, dt, dev);
      const em::Tensor b = meta_tensor({3}, dt, dev);
      auto infer = [](OpId op, std::initializer_list<em::Tensor> in, const em::dispatch::Attrs& at = {}) {
        return em::dispatch::schema(op).infer(op, em::dispatch::Inputs(in.begin(), in.size()), at);
      };
      auto m = infer(OpId::add, {a, b});
      CHECK(m.dtype == dt);
      CHECK(m.device == dev);
      CHECK(infer(OpId::exp, {a}).dtype == dt);
      CHECK(infer(OpId::gelu, {a}).dtype == dt);
      CHECK(infer(OpId::lt, {a, b}).dtype == em::bool_);
      CHECK(infer(OpId::sum, {a}).dtype == dt);
      CHECK(infer(OpId::argmax, {a}).dtype == em::int64);
      em::dispatch::Attrs to;
      to.dtype = em::float32;
      CHECK(infer(OpId::copy, {a}, to).dtype == em::float32);
      em::dispatch::Attrs mk;
      mk.ints = {4};
      mk.dtype = dt;
      mk.device = dev;
      CHECK(infer(OpId::fill, {}, mk).dtype == dt);
      CHECK(infer(OpId::randn, {}, mk).dtype == dt);
      CHECK(infer(OpId::matmul, {a, meta_tensor({3, 2}, dt, dev)}).shape == em::Shape{2, 2});
      em::dispatch::Attrs clamp;
      clamp.flags = em::dispatch::kHasMin;
      CHECK(infer(OpId::clamp, {a}, clamp).dtype == dt);
      CHECK(infer(OpId::softmax, {a}).dtype == dt);
    }
  }
}
