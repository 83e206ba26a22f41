// Every user error of the core, by type and message (STYLE.md "Errors"): one
// line, `<op>: <what is wrong> (<the numbers>)`, the op named as the user spelled it.
// Also: a failed op leaves its operands unchanged, and every error is an ember::Error.
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <ember/ember.h>

namespace em = ember;
using Catch::Contains;
using Catch::StartsWith;

TEST_CASE("every error type derives from ember::Error", "[errors]") {
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, em::Error>);
  STATIC_REQUIRE(std::is_base_of_v<em::Error, em::ShapeError>);
  STATIC_REQUIRE(std::is_base_of_v<em::Error, em::DTypeError>);
  STATIC_REQUIRE(std::is_base_of_v<em::Error, em::DeviceError>);
  STATIC_REQUIRE(std::is_base_of_v<em::Error, em::IndexError>);
  STATIC_REQUIRE(std::is_base_of_v<em::Error, em::ValueError>);
  STATIC_REQUIRE(std::is_base_of_v<em::Error, em::OutOfMemoryError>);
  STATIC_REQUIRE(std::is_base_of_v<em::Error, em::InternalError>);
  auto a = em::zeros({2, 3}), b = em::zeros({4});
  CHECK_THROWS_AS(a + b, em::Error);
  CHECK_THROWS_AS(em::sum(a, {5}), em::Error);
  CHECK_THROWS_AS(em::neg(em::zeros({2}, em::bool_)), em::Error);
  CHECK_THROWS_AS(a.select(0, 9), em::Error);
  CHECK_THROWS_AS(em::zeros({-1}), em::Error);
}

// ---- broadcasting ------------------------------------------------------------------

TEST_CASE("binary ops reject non-broadcastable shapes", "[errors]") {
  auto a = em::zeros({2, 3}), b = em::zeros({4});
  CHECK_THROWS_AS(a + b, em::ShapeError);
  CHECK_THROWS_WITH(a + b, "add: shapes [2,3] and [4] cannot be broadcast (dim -1: 3 vs 4)");
  CHECK_THROWS_WITH(em::mul(b, a), "mul: shapes [4] and [2,3] cannot be broadcast (dim -1: 4 vs 3)");
  CHECK_THROWS_WITH(em::zeros({5, 2, 3}) - em::zeros({4, 1, 3}),
                    "sub: shapes [5,2,3] and [4,1,3] cannot be broadcast (dim -3: 5 vs 4)");
  CHECK_THROWS_AS(em::eq(a, b), em::ShapeError);
  CHECK_THROWS_WITH(em::lt(a, b), Contains("lt: shapes [2,3] and [4] cannot be broadcast"));
  CHECK_THROWS_WITH(em::logical_and(a, b), Contains("logical_and: shapes [2,3] and [4]"));
  CHECK_THROWS_WITH(em::maximum(a, b), Contains("maximum: shapes [2,3] and [4]"));
  CHECK_THROWS_WITH(a / b, Contains("div: shapes [2,3] and [4]"));
  CHECK_THROWS_WITH(a % b, Contains("remainder: shapes [2,3] and [4]"));
  CHECK_THROWS_WITH(em::pow(a, b), Contains("pow: shapes [2,3] and [4]"));
}

// ---- dtypes -------------------------------------------------------------------------

TEST_CASE("ops reject dtypes they do not accept", "[errors]") {
  auto bt = em::ones({2}, em::bool_);
  CHECK_THROWS_AS(bt - bt, em::DTypeError);
  CHECK_THROWS_WITH(bt - bt, "sub: a has dtype bool, which is not supported (accepted: uint8, int32, "
                             "int64, float16, bfloat16, float32, float64)");
  CHECK_THROWS_WITH(em::sub(bt, true), Contains("sub: a has dtype bool"));
  CHECK_THROWS_AS(em::neg(bt), em::DTypeError);
  CHECK_THROWS_WITH(em::neg(bt), "neg: the input has dtype bool, which is not supported (accepted: "
                                 "uint8, int32, int64, float16, bfloat16, float32, float64)");
  CHECK_THROWS_WITH(-bt, Contains("neg: the input has dtype bool"));
  CHECK_THROWS_WITH(em::abs(bt), Contains("abs: the input has dtype bool"));
  CHECK_THROWS_WITH(em::floor(bt), Contains("floor: the input has dtype bool"));
  CHECK_THROWS_WITH(em::pow(bt, bt), Contains("pow: a has dtype bool"));
  auto it = em::ones({2}, em::int32);
  CHECK_THROWS_AS(em::gelu(it), em::DTypeError);
  CHECK_THROWS_WITH(em::gelu(it),
                    "gelu: the input has dtype int32, which is not supported (accepted: float16, "
                    "bfloat16, float32, float64)");
  CHECK_THROWS_WITH(em::silu(it), Contains("silu: the input has dtype int32"));
  CHECK_THROWS_WITH(em::softplus(em::ones({2}, em::uint8)), Contains("softplus: the input has dtype uint8"));
  CHECK_THROWS_AS(em::matmul(bt.reshape({1, 2}), bt), em::DTypeError);
  CHECK_THROWS_WITH(em::matmul(bt.reshape({1, 2}), bt), Contains("matmul:"));
  CHECK_THROWS_WITH(em::matmul(bt.reshape({1, 2}), bt), Contains("bool"));
  CHECK_THROWS_AS(em::clamp(bt, 0, 1), em::DTypeError);
  CHECK_THROWS_WITH(em::clamp(bt, 0, 1), Contains("clamp: the input has dtype bool"));
}

// ---- reductions -------------------------------------------------------------------------

TEST_CASE("reductions reject bad axes", "[errors]") {
  auto x = em::zeros({2, 3});
  CHECK_THROWS_AS(em::sum(x, {2}), em::IndexError);
  CHECK_THROWS_WITH(em::sum(x, {2}), "sum: axis 2 is out of range for a 2-d tensor (valid: -2..1)");
  CHECK_THROWS_WITH(em::mean(x, {-3}), "mean: axis -3 is out of range for a 2-d tensor (valid: -2..1)");
  CHECK_THROWS_WITH(x.max({0, 7}), Contains("max: axis 7 is out of range for a 2-d tensor"));
  CHECK_THROWS_AS(em::argmax(x, 2), em::IndexError);
  CHECK_THROWS_WITH(em::argmax(x, 2), "argmax: axis 2 is out of range for a 2-d tensor (valid: -2..1)");
  CHECK_THROWS_WITH(em::argmin(x, -3), Contains("argmin: axis -3 is out of range"));
  CHECK_THROWS_WITH(em::var(x, {3}), Contains("var: axis 3 is out of range"));
  CHECK_THROWS_WITH(em::std(x, {3}), Contains("std: axis 3 is out of range"));
  CHECK_THROWS_WITH(em::all(x, {3}), Contains("all: axis 3 is out of range"));
  CHECK_THROWS_WITH(em::any(x, {3}), Contains("any: axis 3 is out of range"));
  CHECK_THROWS_WITH(em::prod(x, {3}), Contains("prod: axis 3 is out of range"));
  CHECK_THROWS_WITH(em::min(x, {3}), Contains("min: axis 3 is out of range"));
  // 0-d tensors accept axis 0 / -1 only
  CHECK_THROWS_AS(em::sum(em::scalar_tensor(1.0), {1}), em::IndexError);
  CHECK_THROWS_WITH(em::sum(em::scalar_tensor(1.0), {1}),
                    "sum: axis 1 is out of range for a 0-d tensor (valid: -1..0)");
  // duplicates, also when spelled differently
  CHECK_THROWS_AS(em::sum(x, {1, 1}), em::ValueError);
  CHECK_THROWS_WITH(em::sum(x, {1, 1}), "sum: axis 1 appears twice");
  CHECK_THROWS_WITH(em::mean(x, {0, -2}), "mean: axis 0 appears twice");
  CHECK_THROWS_WITH(em::max(x, {-1, 1}), Contains("max: axis 1 appears twice"));
  // softmax
  CHECK_THROWS_AS(em::softmax(x, 2), em::IndexError);
  CHECK_THROWS_WITH(em::softmax(x, 2), "softmax: axis 2 is out of range for a 2-d tensor (valid: -2..1)");
  CHECK_THROWS_WITH(em::log_softmax(x, -3), Contains("log_softmax: axis -3 is out of range"));
}

TEST_CASE("max, min, argmax and argmin reject empty reductions", "[errors]") {
  auto e = em::zeros({2, 0});
  CHECK_THROWS_AS(em::max(e, {1}), em::ValueError);
  CHECK_THROWS_WITH(em::max(e, {1}),
                    "max: cannot reduce over axis 1 of size 0 (shape [2,0]); max has no identity");
  CHECK_THROWS_WITH(em::min(e), Contains("min: cannot reduce over axis 1 of size 0 (shape [2,0])"));
  CHECK_THROWS_WITH(em::argmax(e), Contains("argmax: cannot reduce over axis 1 of size 0"));
  CHECK_THROWS_WITH(em::argmin(e, 1), Contains("argmin: cannot reduce over axis 1 of size 0"));
}

// ---- matmul -------------------------------------------------------------------------------

TEST_CASE("matmul rejects shapes that do not line up and 0-d operands", "[errors]") {
  auto a = em::zeros({2, 3}), b = em::zeros({4, 5});
  CHECK_THROWS_AS(em::matmul(a, b), em::ShapeError);
  CHECK_THROWS_WITH(em::matmul(a, b),
                    "matmul: a [2,3] and b [4,5] do not line up (a dim -1 is 3, b dim -2 is 4)");
  CHECK_THROWS_WITH(em::matmul(a, em::zeros({4})),
                    "matmul: a [2,3] and b [4] do not line up (a dim -1 is 3, b dim -1 is 4)");
  CHECK_THROWS_WITH(em::matmul(em::zeros({4}), a),
                    "matmul: a [4] and b [2,3] do not line up (a dim -1 is 4, b dim -2 is 2)");
  CHECK_THROWS_WITH(em::matmul(em::zeros({3}), em::zeros({4})), Contains("matmul: a [3] and b [4] do not line up"));
  CHECK_THROWS_AS(em::matmul(em::scalar_tensor(1.0), a), em::ShapeError);
  CHECK_THROWS_WITH(em::matmul(em::scalar_tensor(1.0), a),
                    "matmul: a is 0-d; both arguments need at least 1 dim");
  CHECK_THROWS_WITH(em::matmul(a, em::scalar_tensor(1.0)),
                    "matmul: b is 0-d; both arguments need at least 1 dim");
  // batch dims that do not broadcast
  CHECK_THROWS_AS(em::matmul(em::zeros({2, 2, 3}), em::zeros({3, 3, 4})), em::ShapeError);
  CHECK_THROWS_WITH(em::matmul(em::zeros({2, 2, 3}), em::zeros({3, 3, 4})),
                    Contains("matmul: shapes [2] and [3] cannot be broadcast (dim -1: 2 vs 3)"));
}

// ---- indexing and views ---------------------------------------------------------------------

TEST_CASE("select, slice and operator[] reject bad indices", "[errors]") {
  auto x = em::zeros({3, 4});
  CHECK_THROWS_AS(x.select(0, 3), em::IndexError);
  CHECK_THROWS_WITH(x.select(0, 3), "select: index 3 is out of range for dim 0 of size 3");
  CHECK_THROWS_WITH(x.select(1, -5), "select: index -5 is out of range for dim 1 of size 4");
  CHECK_THROWS_WITH(x[7], "select: index 7 is out of range for dim 0 of size 3");
  CHECK_THROWS_AS(x.select(2, 0), em::IndexError);
  CHECK_THROWS_WITH(x.select(2, 0), "select: dim 2 is out of range for a 2-d tensor (valid: -2..1)");
  auto s = em::scalar_tensor(1.0);
  CHECK_THROWS_AS(s.select(0, 0), em::IndexError);
  CHECK_THROWS_WITH(s.select(0, 0), "select: cannot index a 0-d tensor");
  CHECK_THROWS_WITH(s[0], "select: cannot index a 0-d tensor");
  CHECK_THROWS_AS(s.slice(0, 0, 1), em::IndexError);
  CHECK_THROWS_WITH(s.slice(0, 0, 1), "slice: cannot slice a 0-d tensor");
  CHECK_THROWS_AS(x.slice(0, 0, 2, 0), em::ValueError);
  CHECK_THROWS_WITH(x.slice(0, 0, 2, 0), "slice: step must be positive (got 0)");
  CHECK_THROWS_WITH(x.slice(0, 0, 2, -1), "slice: step must be positive (got -1)");
  CHECK_THROWS_AS(x.slice(-3, 0, 1), em::IndexError);
  CHECK_THROWS_WITH(x.slice(-3, 0, 1), "slice: dim -3 is out of range for a 2-d tensor (valid: -2..1)");
  // Out-of-range slice bounds clamp like Python; they are not errors.
  CHECK(x.slice(0, 2, 100).shape() == em::Shape{1, 4});
  CHECK(x.slice(0, 5, 9).shape() == em::Shape{0, 4});
  CHECK(x.slice(1, -100, 2).shape() == em::Shape{3, 2});
}

TEST_CASE("index_select rejects bad indices and index tensors", "[errors]") {
  auto x = em::zeros({3, 4});
  CHECK_THROWS_AS(em::index_select(x, 0, em::tensor({0, 3})), em::IndexError);
  CHECK_THROWS_WITH(em::index_select(x, 0, em::tensor({0, 3})),
                    "index_select: index 3 is out of range for dim 0 of size 3");
  CHECK_THROWS_WITH(em::index_select(x, 1, em::tensor(std::vector<int64_t>{-5})),
                    "index_select: index -5 is out of range for dim 1 of size 4");
  CHECK_THROWS_AS(em::index_select(x, 0, em::tensor({0.f})), em::DTypeError);
  CHECK_THROWS_WITH(em::index_select(x, 0, em::tensor({0.f})),
                    "index_select: index has dtype float32; expected int64 or int32");
  CHECK_THROWS_WITH(em::index_select(x, 0, em::tensor(std::vector<uint8_t>{0})),
                    Contains("index has dtype uint8"));
  CHECK_THROWS_AS(em::index_select(x, 0, em::zeros({2, 2}, em::int64)), em::ShapeError);
  CHECK_THROWS_WITH(em::index_select(x, 0, em::zeros({2, 2}, em::int64)),
                    "index_select: index must be 1-d (got shape [2,2])");
  CHECK_THROWS_AS(em::index_select(x, 2, em::tensor({0})), em::IndexError);
  CHECK_THROWS_WITH(em::index_select(x, 2, em::tensor({0})),
                    "index_select: dim 2 is out of range for a 2-d tensor (valid: -2..1)");
}

TEST_CASE("reshape and view reject impossible shapes", "[errors]") {
  auto x = em::zeros({2, 3});
  CHECK_THROWS_AS(x.reshape({4, 2}), em::ShapeError);
  CHECK_THROWS_WITH(x.reshape({4, 2}), "reshape: shape [4,2] is invalid for a tensor of 6 elements");
  CHECK_THROWS_WITH(x.reshape({-1, 4}), "reshape: shape [-1,4] is invalid for a tensor of 6 elements");
  CHECK_THROWS_WITH(x.reshape({-1, -1}), "reshape: only one dim can be -1 (shape [-1,-1])");
  CHECK_THROWS_WITH(x.reshape({-2, -3}), "reshape: invalid size -2 in shape [-2,-3]");
  CHECK_THROWS_WITH(em::zeros({0, 3}).reshape({0, -1}),
                    "reshape: shape [0,-1] is invalid for a tensor of 0 elements");
  CHECK_THROWS_AS(x.view({5}), em::ShapeError);
  CHECK_THROWS_WITH(x.view({5}), "view: shape [5] is invalid for a tensor of 6 elements");
  CHECK_THROWS_WITH(x.view({-1, -1}), "view: only one dim can be -1 (shape [-1,-1])");
  // a transposed tensor cannot be viewed flat; reshape copies instead
  CHECK_THROWS_AS(x.t().view({6}), em::ShapeError);
  CHECK_THROWS_WITH(x.t().view({6}),
                    "view: shape [6] is not compatible with the input's shape [3,2] and strides "
                    "[1,3]; use reshape() (which copies when it must)");
  CHECK_NOTHROW(x.t().reshape({6}));
  CHECK_THROWS_AS(x.flatten(1, 0), em::ValueError);
  CHECK_THROWS_WITH(x.flatten(1, 0), "flatten: start_dim 1 comes after end_dim 0");
  CHECK_THROWS_WITH(x.flatten(0, 2), "flatten: dim 2 is out of range for a 2-d tensor (valid: -2..1)");
}

TEST_CASE("permute, transpose, t, squeeze and unsqueeze reject bad dims", "[errors]") {
  auto x = em::zeros({2, 3, 4});
  CHECK_THROWS_AS(x.permute({0, 1}), em::ShapeError);
  CHECK_THROWS_WITH(x.permute({0, 1}), "permute: 2 dims given for a 3-d tensor");
  CHECK_THROWS_AS(x.permute({0, 0, 1}), em::ValueError);
  CHECK_THROWS_WITH(x.permute({0, 0, 1}), "permute: dim 0 appears twice");
  CHECK_THROWS_WITH(x.permute({2, -1, 0}), "permute: dim 2 appears twice");
  CHECK_THROWS_AS(x.permute({0, 1, 3}), em::IndexError);
  CHECK_THROWS_WITH(x.permute({0, 1, 3}), "permute: dim 3 is out of range for a 3-d tensor (valid: -3..2)");
  CHECK_THROWS_AS(x.transpose(0, 3), em::IndexError);
  CHECK_THROWS_WITH(x.transpose(0, 3), "transpose: dim 3 is out of range for a 3-d tensor (valid: -3..2)");
  CHECK_THROWS_WITH(em::scalar_tensor(1.0).transpose(0, 1), Contains("transpose: dim 1 is out of range"));
  CHECK_THROWS_AS(x.t(), em::ShapeError);
  CHECK_THROWS_WITH(x.t(), "t: expects a tensor with at most 2 dims (got 3-d [2,3,4]); use transpose(d0, d1)");
  CHECK_THROWS_AS(x.squeeze(3), em::IndexError);
  CHECK_THROWS_WITH(x.squeeze(3), "squeeze: dim 3 is out of range for a 3-d tensor (valid: -3..2)");
  CHECK_THROWS_AS(x.unsqueeze(4), em::IndexError);
  CHECK_THROWS_WITH(x.unsqueeze(4), Contains("unsqueeze: dim 4 is out of range"));
  CHECK_THROWS_WITH(x.unsqueeze(-5), Contains("unsqueeze: dim -5 is out of range"));
  CHECK_THROWS_AS(x.shape(3), em::IndexError);
  CHECK_THROWS_WITH(x.shape(3), "shape: dim 3 is out of range for a 3-d tensor (valid: -3..2)");
  CHECK_THROWS_WITH(x.size(-4), Contains("dim -4 is out of range"));
}

TEST_CASE("expand rejects shapes it cannot broadcast to", "[errors]") {
  auto x = em::zeros({2, 3});
  CHECK_THROWS_AS(x.expand({3}), em::ShapeError);
  CHECK_THROWS_WITH(x.expand({3}), "expand: cannot expand [2,3] to fewer dims [3]");
  CHECK_THROWS_AS(x.expand({4, 3}), em::ShapeError);
  CHECK_THROWS_WITH(x.expand({4, 3}),
                    "expand: shape [2,3] cannot be expanded to [4,3] (dim 0: 2 vs 4; only size-1 dims expand)");
  CHECK_THROWS_WITH(x.broadcast_to({2, 6}), Contains("expand: shape [2,3] cannot be expanded to [2,6]"));
  CHECK_THROWS_AS(x.expand({-1, 2, 3}), em::ShapeError);
  CHECK_THROWS_WITH(x.expand({-1, 2, 3}), "expand: -1 is not allowed in a new leading dim (shape [-1,2,3])");
}

TEST_CASE("expand rejects negative sizes other than -1", "[errors]") {
  auto one = em::zeros({1, 3});
  CHECK_THROWS_AS(one.expand({-2, 3}), em::Error);
  CHECK_THROWS_WITH(one.expand({-2, 3}), StartsWith("expand:"));
  CHECK_THROWS_AS(one.expand({5, -3, 3}), em::Error);
}

// ---- concat / stack ----------------------------------------------------------------------------

TEST_CASE("concat and stack reject mismatched or empty lists", "[errors]") {
  auto a = em::zeros({2, 3}), b = em::zeros({2, 4});
  CHECK_THROWS_AS(em::concat({}), em::ValueError);
  CHECK_THROWS_WITH(em::concat({}), "concat: expects a non-empty list of tensors");
  CHECK_THROWS_AS(em::concat({a, b}, 0), em::ShapeError);
  CHECK_THROWS_WITH(em::concat({a, b}, 0),
                    "concat: tensor 1 has shape [2,4], which does not match tensor 0's [2,3] outside dim 0");
  CHECK_NOTHROW(em::concat({a, b}, 1));
  CHECK_THROWS_WITH(em::concat({a, a, em::zeros({2, 3, 1})}, 1),
                    "concat: tensor 2 has shape [2,3,1], which does not match tensor 0's [2,3] outside dim 1");
  CHECK_THROWS_AS(em::concat({em::scalar_tensor(1.0), em::scalar_tensor(2.0)}), em::ShapeError);
  CHECK_THROWS_WITH(em::concat({em::scalar_tensor(1.0), em::scalar_tensor(2.0)}),
                    "concat: zero-dimensional tensor 0 cannot be concatenated");
  CHECK_THROWS_AS(em::concat({a, a}, 2), em::IndexError);
  CHECK_THROWS_WITH(em::concat({a, a}, 2), "concat: dim 2 is out of range for a 2-d tensor (valid: -2..1)");
  CHECK_THROWS_WITH(em::concat({a, a}, -3), Contains("concat: dim -3 is out of range"));
  CHECK_THROWS_AS(em::concat({a, em::Tensor()}), em::ValueError);
  CHECK_THROWS_WITH(em::concat({a, em::Tensor()}), "concat: input 1 is an undefined tensor");

  CHECK_THROWS_AS(em::stack({}), em::ValueError);
  CHECK_THROWS_WITH(em::stack({}), "stack: expects a non-empty list of tensors");
  CHECK_THROWS_AS(em::stack({a, b}), em::ShapeError);
  CHECK_THROWS_WITH(em::stack({a, b}), "stack: tensor 1 has shape [2,4] but tensor 0 has [2,3]; all must match");
  CHECK_THROWS_AS(em::stack({a, a}, 3), em::IndexError);
  CHECK_THROWS_WITH(em::stack({a, a}, 3), Contains("stack: dim 3 is out of range"));
  CHECK_THROWS_WITH(em::stack({a, a}, -4), Contains("stack: dim -4 is out of range"));
  CHECK_NOTHROW(em::stack({a, a}, 2));
  CHECK_NOTHROW(em::stack({a, a}, -3));
}

// ---- where / clamp ------------------------------------------------------------------------------

TEST_CASE("where and clamp reject bad arguments", "[errors]") {
  auto c = em::ones({2}, em::bool_);
  CHECK_THROWS_AS(em::where(c, em::zeros({3}), em::zeros({2})), em::ShapeError);
  CHECK_THROWS_WITH(em::where(c, em::zeros({3}), em::zeros({2})),
                    "where: shapes [2] and [3] cannot be broadcast (dim -1: 2 vs 3)");
  CHECK_THROWS_WITH(em::where(c, 1.0, em::zeros({4})),
                    "where: shapes [2] and [4] cannot be broadcast (dim -1: 2 vs 4)");
  CHECK_THROWS_AS(em::clamp(em::zeros({2}), std::nullopt, std::nullopt), em::ValueError);
  CHECK_THROWS_WITH(em::clamp(em::zeros({2}), std::nullopt, std::nullopt),
                    "clamp: at least one of min and max must be given");
  CHECK_THROWS_AS(em::clamp(em::zeros({2, 3}), em::zeros({4}), em::ones({3})), em::ShapeError);
  CHECK_THROWS_WITH(em::clamp(em::zeros({2, 3}), em::zeros({4}), em::ones({3})),
                    Contains("shapes [2,3] and [4] cannot be broadcast"));
  // The tensor-bounds overload is named like the scalar one.
  CHECK_THROWS_WITH(em::clamp(em::zeros({2, 3}), em::zeros({4}), em::ones({3})), StartsWith("clamp:"));
}

// ---- devices ----------------------------------------------------------------------------------

TEST_CASE("asking for a CUDA tensor without a GPU raises DeviceError", "[errors][device]") {
  if (em::cuda_available()) {
    WARN("a CUDA device is available: the no-GPU error paths are not reachable here");
    return;
  }
  auto x = em::ones({2});
  CHECK_THROWS_AS(x.to(em::Device::cuda()), em::DeviceError);
  CHECK_THROWS_WITH(x.to(em::Device::cuda()),
                    "to: cuda:0 requested but no CUDA device is available; check em::cuda_available()");
  CHECK_THROWS_WITH(x.to(em::Device::cuda(1)), StartsWith("to: cuda:1 requested but no CUDA device"));
  CHECK_THROWS_AS(em::tensor({1.f, 2.f}, em::Device::cuda()), em::DeviceError);
  CHECK_THROWS_WITH(em::tensor({1.f, 2.f}, em::Device::cuda()),
                    Contains("cuda:0 requested but no CUDA device is available"));
  CHECK_THROWS_AS(em::memory_stats(em::Device::cuda()), em::DeviceError);
  CHECK_THROWS_WITH(em::memory_stats(em::Device::cuda()), "memory_stats: cuda:0 is not available");
  CHECK_THROWS_WITH(em::reset_peak_memory(em::Device::cuda()), "reset_peak_memory: cuda:0 is not available");
  CHECK_THROWS_WITH(em::empty_cache(em::Device::cuda()), "empty_cache: cuda:0 is not available");
  CHECK(x.to(em::Device::cpu()).is_same(x));
}

TEST_CASE("creating a tensor on a missing CUDA device raises a clear DeviceError", "[errors][device]") {
  if (em::cuda_available()) {
    WARN("a CUDA device is available: the no-GPU error paths are not reachable here");
    return;
  }
  const auto cuda = em::Device::cuda();
  CHECK_THROWS_AS(em::zeros({2}, em::float32, cuda), em::DeviceError);
  CHECK_THROWS_AS(em::rand({2}, em::float32, cuda), em::DeviceError);
  CHECK_THROWS_AS(em::empty({2}, em::float32, cuda), em::DeviceError);
  CHECK_THROWS_AS(em::arange(0, 4, 1, {}, cuda), em::DeviceError);
  // The same message as Tensor::to, naming the function the user called.
  CHECK_THROWS_WITH(em::zeros({2}, em::float32, cuda),
                    "zeros: cuda:0 requested but no CUDA device is available; check em::cuda_available()");
  CHECK_THROWS_WITH(em::ones({2}, em::float32, cuda), StartsWith("ones: cuda:0 requested"));
  CHECK_THROWS_WITH(em::randn({2}, em::float32, cuda), StartsWith("randn: cuda:0 requested"));
  CHECK_THROWS_WITH(em::empty({2}, em::float32, cuda), StartsWith("empty: cuda:0 requested"));
}

TEST_CASE("a random op that fails leaves its generator untouched", "[errors][device]") {
  em::Generator g(7);
  CHECK_THROWS_AS(em::rand({-1}, em::float32, em::Device::cpu(), &g), em::ValueError);
  CHECK_THROWS_AS(em::randint(3, 1, {4}, em::int64, em::Device::cpu(), &g), em::ValueError);
  CHECK(g.offset() == 0);
  if (!em::cuda_available()) {
    CHECK_THROWS_AS(em::rand({4}, em::float32, em::Device::cuda(), &g), em::DeviceError);
    CHECK_THROWS_AS(em::randn({4}, em::float32, em::Device::cuda(), &g), em::DeviceError);
    CHECK(g.offset() == 0);
  }
  // and the next draw is the one a fresh generator makes
  em::Generator fresh(7);
  CHECK(em::equal(em::rand({8}, em::float32, em::Device::cpu(), &g),
                  em::rand({8}, em::float32, em::Device::cpu(), &fresh)));
}

// ---- in place ------------------------------------------------------------------------------------

TEST_CASE("in-place ops reject results that do not fit the destination", "[errors][inplace]") {
  auto a = em::ones({3});
  CHECK_THROWS_AS(a.add_(em::ones({2, 3})), em::ShapeError);
  CHECK_THROWS_WITH(a.add_(em::ones({2, 3})),
                    "add_: the result shape [2,3] does not broadcast to the destination's [3]");
  CHECK_THROWS_WITH(a += em::ones({2, 3}), Contains("add_: the result shape [2,3]"));
  CHECK_THROWS_WITH(a.mul_(em::ones({4})), "mul: shapes [3] and [4] cannot be broadcast (dim -1: 3 vs 4)");
  CHECK_THROWS_WITH(a.copy_(em::ones({2})), Contains("shapes [2] and [3] cannot be broadcast"));
  CHECK_THROWS_WITH(a.copy_(em::ones({2, 3})), Contains("the result shape [2,3] does not broadcast"));

  auto i = em::ones({3}, em::int32);
  CHECK_THROWS_AS(i.add_(em::ones({3})), em::DTypeError);
  CHECK_THROWS_WITH(i.add_(em::ones({3})),
                    "add_: the result dtype float32 cannot be stored in the destination's int32");
  CHECK_THROWS_WITH(i.mul_(2.5), "mul_: the result dtype float32 cannot be stored in the destination's int32");
  CHECK_THROWS_WITH(i /= 2, "div_: the result dtype float32 cannot be stored in the destination's int32");
  CHECK_THROWS_WITH(i -= 0.5, Contains("sub_: the result dtype float32"));
  auto b = em::ones({3}, em::bool_);
  CHECK_THROWS_AS(b.add_(i), em::DTypeError);
  CHECK_THROWS_WITH(b.add_(i), "add_: the result dtype int32 cannot be stored in the destination's bool");
  CHECK_THROWS_WITH(b.sub_(b), Contains("sub: a has dtype bool"));
  CHECK_NOTHROW(em::ones({3}).add_(i));  // int into float is fine
  CHECK_NOTHROW(i.copy_(em::ones({3})));  // copy_ casts

  auto row = em::ones({1, 3});
  auto expanded = row.expand({4, 3});
  CHECK_THROWS_AS(expanded.add_(1.f), em::ValueError);
  CHECK_THROWS_WITH(expanded.add_(1.f),
                    "add_: the destination has elements that share memory (an expanded view); clone() it first");
  CHECK_THROWS_AS(expanded.fill_(2.f), em::ValueError);
  CHECK_THROWS_AS(expanded.copy_(em::zeros({4, 3})), em::ValueError);
  CHECK(row.to_vector<float>() == std::vector<float>{1, 1, 1});

  em::Tensor undefined;
  CHECK_THROWS_AS(undefined.add_(a), em::ValueError);
  CHECK_THROWS_AS(a.add_(undefined), em::ValueError);
  CHECK_THROWS_WITH(a.add_(undefined), "add: input 1 is an undefined tensor");
}

TEST_CASE("a failed op leaves its operands unchanged", "[errors][inplace]") {
  auto a = em::tensor({1.f, 2.f, 3.f});
  auto before = a.to_vector<float>();
  CHECK_THROWS(a.add_(em::ones({2, 3})));
  CHECK_THROWS(a.add_(em::ones({4})));
  CHECK_THROWS(a.mul_(em::ones({2, 2})));
  CHECK_THROWS(a.copy_(em::ones({5})));
  CHECK(a.to_vector<float>() == before);
  CHECK(a.shape() == em::Shape{3});
  CHECK(a.dtype() == em::float32);

  auto i = em::tensor({4, 5, 6});
  CHECK_THROWS(i.add_(0.5));
  CHECK_THROWS(i.div_(em::tensor({2, 2, 2})));
  CHECK_THROWS(i.sub_(em::ones({3}, em::float64)));
  CHECK(i.to_vector<int32_t>() == std::vector<int32_t>{4, 5, 6});
  CHECK(i.dtype() == em::int32);

  // operands of failed out-of-place ops too
  auto m = em::tensor({{1.f, 2.f}, {3.f, 4.f}});
  CHECK_THROWS(em::matmul(m, em::ones({3, 2})));
  CHECK_THROWS(em::concat({m, em::ones({2, 3})}, 0));
  CHECK_THROWS(em::index_select(m, 0, em::tensor({0, 5})));
  CHECK_THROWS(em::sum(m, {0, 0}));
  CHECK(m.to_vector<float>() == std::vector<float>{1, 2, 3, 4});
  // a view of a tensor: the failed write leaves the base alone
  auto base = em::arange(6, em::float32).reshape({2, 3});
  auto col = base.slice(1, 1, 2);
  CHECK_THROWS(col.add_(em::ones({2, 2})));
  CHECK(base.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
}

// ---- creation ---------------------------------------------------------------------------------------

TEST_CASE("creation functions reject bad arguments", "[errors][creation]") {
  CHECK_THROWS_AS(em::empty({2, -1}), em::ValueError);
  CHECK_THROWS_WITH(em::empty({2, -1}), "empty: negative size in shape [2,-1]");
  CHECK_THROWS_AS(em::zeros({-1}), em::ValueError);
  CHECK_THROWS_WITH(em::zeros({-1}), Contains("negative size in shape [-1]"));
  CHECK_THROWS_AS(em::ones({3, -2}), em::ValueError);
  CHECK_THROWS_AS(em::full({-1}, 2.0), em::ValueError);
  CHECK_THROWS_AS(em::rand({-1}), em::ValueError);
  CHECK_THROWS_WITH(em::rand({-1}), "rand: negative size in shape [-1]");
  CHECK_THROWS_WITH(em::randn({2, -3}), "randn: negative size in shape [2,-3]");
  CHECK_THROWS_AS(em::eye(-1), em::ValueError);
  CHECK_THROWS_WITH(em::eye(-1), Contains("negative size"));
  CHECK_THROWS_AS(em::eye(2, -3), em::ValueError);

  CHECK_THROWS_AS(em::rand({2}, em::int32), em::DTypeError);
  CHECK_THROWS_WITH(em::rand({2}, em::int32), "rand: dtype int32 is not supported; use float32 or float64");
  CHECK_THROWS_WITH(em::randn({2}, em::bool_), "randn: dtype bool is not supported; use float32 or float64");
  CHECK_THROWS_AS(em::randint(0, 5, {2}, em::float32), em::DTypeError);
  CHECK_THROWS_WITH(em::randint(0, 5, {2}, em::float32),
                    "randint: dtype float32 is not supported; use an integer dtype");
  CHECK_THROWS_WITH(em::randint(0, 2, {2}, em::bool_), "randint: dtype bool is not supported; use an integer dtype");
  CHECK_THROWS_AS(em::randint(5, 5, {2}), em::ValueError);
  CHECK_THROWS_WITH(em::randint(5, 5, {2}), "randint: low (5) must be less than high (5)");
  CHECK_THROWS_WITH(em::randint(7, 3, {2}), "randint: low (7) must be less than high (3)");
  CHECK_THROWS_AS(em::linspace(0, 1, -1), em::ValueError);
  CHECK_THROWS_WITH(em::linspace(0, 1, -1), "linspace: steps must be non-negative (got -1)");
  CHECK_THROWS_AS(em::linspace(0, 1, 5, em::int32), em::DTypeError);
  CHECK_THROWS_WITH(em::linspace(0, 1, 5, em::int32),
                    "linspace: dtype int32 is not supported; use float32 or float64");

  CHECK_THROWS_AS(em::arange(0, 5, 0), em::ValueError);
  CHECK_THROWS_WITH(em::arange(0, 5, 0), "arange: step must be nonzero");
  CHECK_THROWS_AS(em::arange(0, 5, -1), em::ValueError);
  CHECK_THROWS_WITH(em::arange(0, 5, -1),
                    "arange: the range 0..5 with step -1 is empty in the wrong direction");
  CHECK_THROWS_WITH(em::arange(5, 0, 1), Contains("arange: the range 5..0 with step 1"));
  CHECK_THROWS_AS(em::arange(0.0, 2.0, 0.5, em::int64), em::DTypeError);
  CHECK_THROWS_WITH(em::arange(0.0, 2.0, 0.5, em::int64),
                    "arange: fractional start/step cannot produce dtype int64");

  CHECK_THROWS_AS(em::tensor(std::vector<float>{1, 2, 3}, {2, 2}), em::ValueError);
  CHECK_THROWS_WITH(em::tensor(std::vector<float>{1, 2, 3}, {2, 2}),
                    "tensor: 3 values do not fill shape [2,2] (4 elements)");
  CHECK_THROWS_AS(em::tensor({{1, 2}, {3}}), em::ValueError);
  CHECK_THROWS_WITH(em::tensor({{1, 2}, {3}}), "tensor: rows have different lengths (2 and 1)");
  CHECK_THROWS_WITH(em::tensor(std::vector<bool>{true}, {2}), Contains("tensor: 1 values do not fill shape [2]"));
}

TEST_CASE("the zeros/ones/full family names itself on a negative size", "[errors][creation]") {
  CHECK_THROWS_WITH(em::zeros({-1}), "zeros: negative size in shape [-1]");
  CHECK_THROWS_WITH(em::ones({3, -2}), "ones: negative size in shape [3,-2]");
  CHECK_THROWS_WITH(em::full({-1}, 2.0), "full: negative size in shape [-1]");
  CHECK_THROWS_WITH(em::eye(-1), StartsWith("eye:"));
}

// ---- host access, undefined tensors, memory ---------------------------------------------------------

TEST_CASE("item, data and undefined tensors raise clear errors", "[errors]") {
  auto x = em::zeros({3});
  CHECK_THROWS_AS(x.item<float>(), em::ValueError);
  CHECK_THROWS_WITH(x.item<float>(), "item: a tensor with 3 elements cannot be converted to a scalar (shape [3])");
  CHECK_THROWS_WITH(em::zeros({0}).item<float>(), Contains("item: a tensor with 0 elements"));
  CHECK_NOTHROW(em::zeros({1, 1}).item<float>());
  CHECK_THROWS_AS(x.data<int32_t>(), em::DTypeError);
  CHECK_THROWS_WITH(x.data<int32_t>(), "data: the tensor has dtype float32, not int32");
  em::Tensor u;
  CHECK_FALSE(u.defined());
  CHECK_THROWS_AS(u.shape(), em::ValueError);
  CHECK_THROWS_WITH(u.numel(), "tensor: this Tensor is undefined (default-constructed)");
  CHECK_THROWS_AS(u + x, em::ValueError);
  CHECK_THROWS_WITH(em::add(u, x), "add: input 0 is an undefined tensor");
  CHECK_THROWS_WITH(em::sum(u), "sum: input 0 is an undefined tensor");
  CHECK_THROWS_WITH(em::matmul(x, u), "matmul: input 1 is an undefined tensor");
  CHECK_THROWS_AS(u.reshape({1}), em::ValueError);
  CHECK_THROWS_AS(u + 1, em::ValueError);
}

TEST_CASE("an allocation that cannot be satisfied raises OutOfMemoryError", "[errors][memory]") {
  const auto before = em::memory_stats().current;
  // 2^48 float32 = 1 PiB: larger than any address space.
  CHECK_THROWS_AS(em::zeros({int64_t(1) << 48}), em::OutOfMemoryError);
  CHECK_THROWS_WITH(em::empty({int64_t(1) << 48}), Contains("out of memory"));
  CHECK_THROWS_WITH(em::empty({int64_t(1) << 48}), Contains("1125899906842624 bytes"));
  CHECK(em::memory_stats().current == before);
  // sizes whose element or byte count overflows 64 bits
  CHECK_THROWS_AS(em::zeros({int64_t(1) << 32, int64_t(1) << 32}), em::OutOfMemoryError);
  CHECK_THROWS_WITH(em::zeros({int64_t(1) << 32, int64_t(1) << 32}),
                    Contains("shape [4294967296,4294967296] is too large to allocate"));
  CHECK_THROWS_AS(em::empty({int64_t(1) << 62}), em::OutOfMemoryError);
  CHECK_THROWS_AS(em::rand({int64_t(1) << 62}), em::OutOfMemoryError);
  // a huge broadcast view is fine until it is materialized
  {
    auto huge = em::ones({1, 1}).expand({int64_t(1) << 31, int64_t(1) << 31});
    CHECK(huge.numel() == int64_t(1) << 62);
    CHECK_THROWS_AS(huge.contiguous(), em::OutOfMemoryError);
    CHECK_THROWS_WITH(huge.clone(), Contains("too large to allocate"));
  }
  CHECK(em::memory_stats().current == before);
}

TEST_CASE("tensors of many dims: up to 64 work, beyond that a clear error naming the op",
          "[errors]") {
  // 17 dims of size 2, reversed so that no dims coalesce
  auto y = em::ones(em::Shape(17, 2));
  em::Axes rev;
  for (int64_t d = 16; d >= 0; --d) rev.push_back(d);
  auto z = y.permute(rev) + 1.f;
  CHECK(z.dim() == 17);
  CHECK(em::sum(z).item<float>() == 2.f * 131072.f);

  auto x = em::ones(em::Shape(65, 1));
  auto c = em::ones(em::Shape(65, 1), em::bool_);
  CHECK(x.dim() == 65);
  CHECK_THROWS_AS(x + x, em::ShapeError);
  CHECK_THROWS_WITH(x + x, "add: tensors of more than 64 dims are not supported (got 65)");
  CHECK_THROWS_WITH(em::exp(x), StartsWith("exp: tensors of more than 64 dims"));
  CHECK_THROWS_AS(em::where(c, x, x), em::ShapeError);
  CHECK_THROWS_WITH(em::where(c, x, x), StartsWith("where:"));
  CHECK_THROWS_AS(em::clamp(x, 0, 1), em::ShapeError);
  CHECK_THROWS_WITH(em::clamp(x, 0, 1), StartsWith("clamp:"));
  CHECK_THROWS_AS(em::concat({x, x}), em::ShapeError);
  CHECK_THROWS_WITH(em::concat({x, x}), StartsWith("concat:"));
  CHECK_THROWS_WITH(em::stack({x, x}), StartsWith("stack:"));
  CHECK_THROWS_AS(x.to(em::int32), em::ShapeError);
  CHECK_THROWS_WITH(x.to(em::int32), StartsWith("to:"));
  CHECK_THROWS_WITH(x.clone(), Contains("more than 64 dims are not supported (got 65)"));
}

TEST_CASE("Variable rejects undefined and ill-fitting values", "[errors]") {
  CHECK_THROWS_AS(em::Variable(em::Tensor()), em::ValueError);
  CHECK_THROWS_WITH(em::Variable(em::Tensor()), "Variable: the initial value is an undefined tensor");
  em::Variable undefined;
  CHECK_FALSE(undefined.defined());
  CHECK_THROWS_AS(undefined.value(), em::ValueError);
  CHECK_THROWS_WITH(undefined.value(), "Variable::value: the variable is undefined");
  CHECK_THROWS_WITH(undefined.assign(em::ones({2})), "Variable::assign: the variable is undefined");
  CHECK_THROWS_WITH(undefined.assign_add(em::ones({2})), "Variable::assign_add: the variable is undefined");
  CHECK_THROWS_WITH(undefined.shape(), "Variable::shape: the variable is undefined");

  em::Variable w(em::tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}}), "w");
  CHECK_THROWS_AS(w.assign(em::Tensor()), em::ValueError);
  CHECK_THROWS_WITH(w.assign(em::Tensor()), "Variable::assign: the value is an undefined tensor");
  CHECK_THROWS_AS(w.assign(em::ones({2, 2, 3})), em::ShapeError);
  CHECK_THROWS_WITH(w.assign(em::ones({2, 2, 3})),
                    "Variable::assign: a value of shape [2,2,3] does not fit variable \"w\" of shape [2,3]");
  CHECK_THROWS_AS(w.assign_sub(em::ones({4})), em::ShapeError);
  CHECK_THROWS_WITH(w.assign_sub(em::ones({4})), Contains("shapes [4] and [2,3] cannot be broadcast"));
  em::Variable n(em::tensor({1, 2}), "n");
  CHECK_THROWS_AS(n.assign_add(em::tensor({0.5f, 0.5f})), em::DTypeError);
  CHECK_THROWS_WITH(n.assign_add(em::tensor({0.5f, 0.5f})),
                    Contains("the result dtype float32 cannot be stored in the destination's int32"));
  // nothing was written
  CHECK(w.value().to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(n.value().to_vector<int32_t>() == std::vector<int32_t>{1, 2});
}
