#pragma once
#include <atomic>
#include <cstdint>
#include <optional>

#include <ember/tensor.h>

namespace ember {

/// A seeded source of random numbers (Philox4x32-10, counter-based): the same
/// seed gives the same numbers on every run, thread count and machine.
class Generator {
 public:
  static constexpr uint64_t kDefaultSeed = 67280421310721ull;  // PyTorch's default
  explicit Generator(uint64_t seed = kDefaultSeed) : seed_(seed) {}
  Generator(const Generator& o) : seed_(o.seed_), offset_(o.offset_.load()) {}
  /// Restarts the stream from `seed`.
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  /// Numbers drawn so far (rounded up per call).
  uint64_t offset() const { return offset_.load(); }
  /// Reserves `n` numbers; returns the offset of the first.
  uint64_t advance(uint64_t n) { return offset_.fetch_add((n + 3) / 4 * 4); }

 private:
  uint64_t seed_;
  std::atomic<uint64_t> offset_{0};
};

/// The generator used when none is passed.
Generator& default_generator();
/// Reseeds the default generator.
void manual_seed(uint64_t seed);

/// Uniform in [0, 1).
Tensor rand(const Shape& shape, DType dtype = float32, Device device = Device::cpu(),
            Generator* gen = nullptr);
/// Standard normal (Box-Muller).
Tensor randn(const Shape& shape, DType dtype = float32, Device device = Device::cpu(),
             Generator* gen = nullptr);
/// Standard normal restricted to (-2, 2): a draw outside is drawn again
/// (TF's truncated_normal; PyTorch's trunc_normal_ with a = -2, b = 2).
Tensor truncated_normal(const Shape& shape, DType dtype = float32, Device device = Device::cpu(),
                        Generator* gen = nullptr);
/// Uniform integers in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = int64,
               Device device = Device::cpu(), Generator* gen = nullptr);
Tensor rand_like(const Tensor& t, Generator* gen = nullptr);
Tensor randn_like(const Tensor& t, Generator* gen = nullptr);

}  // namespace ember
