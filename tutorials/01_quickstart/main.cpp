// Tutorial 01: eager quickstart. Every line runs now, on the CPU.
#include <ember/ember.h>

namespace em = ember;

int main() {
  // Tensors from values; the dtype follows the C++ type (float -> float32).
  auto a = em::tensor({1.f, 2.f, 3.f});
  auto b = em::full({2, 3}, 2.0f);  // a [2,3] tensor of 2s
  fmt::print("a = {}\nb = {}\n", a, b);

  // Broadcasting: [3] and [2,3] combine like NumPy.
  auto c = em::relu(a * b - 3.f);
  fmt::print("relu(a * b - 3) = {}\n", c);

  // Type promotion: a C++ number never widens a tensor of its own kind.
  auto i = em::arange(6).reshape({2, 3});  // int64
  fmt::print("i = {}\n", i);
  fmt::print("dtypes: i + 1 -> {}, i * 0.5 -> {}, i.to(int32) + a -> {}\n", (i + 1).dtype(),
             (i * 0.5).dtype(), (i.to(em::int32) + a).dtype());

  // Views share storage: a transpose is free, writing through a view shows in the base.
  auto m = em::arange(1.f, 7.f).reshape({2, 3});
  auto mt = m.t();
  mt[0] += 100.f;  // the first column of m
  fmt::print("m = {}\nm.t() shape {}, contiguous: {}\n", m, em::shape_str(mt.shape()),
             mt.is_contiguous());

  // Reductions over any axes, with keepdims.
  fmt::print("sum(m) = {}\n", m.sum());
  fmt::print("mean over axis 0 = {}\n", m.mean({0}));
  fmt::print("max over axis 1, keepdims = {}\n", m.max({1}, true));
  fmt::print("argmax over axis 1 = {}\n", m.argmax(1));

  // Seeded random numbers and matmul (OpenBLAS for float32/float64).
  em::manual_seed(0);
  auto w = em::randn({3, 2});
  auto x = em::ones({4, 3});
  auto y = em::matmul(x, w);
  fmt::print("matmul [4,3] x [3,2] -> {}; rows equal: {}\n", em::shape_str(y.shape()),
             em::allclose(y[0], y[3]));
  fmt::print("softmax = {}\n", em::softmax(em::tensor({1.0, 2.0, 3.0})));

  // Errors name the op, the argument and the shapes.
  try {
    auto bad = em::zeros({2, 3}) + em::zeros({4});
  } catch (const em::ShapeError& e) {
    fmt::print("error: {}\n", e.what());
  }

  // Memory: results come from a caching allocator; statistics are visible.
  {
    auto big = em::zeros({1 << 20});
    for (int k = 0; k < 10; ++k) big = big + 1.f;  // each result reuses a cached block
    fmt::print("big[0] = {}\n", big[0].item<float>());
  }
  // The 4 MiB blocks the loop freed are cached for the next op, not returned.
  em::MemoryStats s = em::memory_stats();
  fmt::print("blocks reused: {}; cached >= 4 MiB: {}\n", s.cache_hits > 0, s.cached >= (4u << 20));
  em::empty_cache();
  fmt::print("after empty_cache(): cached = {}\n", em::memory_stats().cached);
  return 0;
}
