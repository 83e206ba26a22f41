#pragma once
// Every op, declared once. Elementwise ops broadcast (NumPy rules) and promote
// dtypes (PyTorch rules: int32 + float32 -> float32; a C++ number never widens
// a tensor of the same kind: float32 * 2.0 -> float32, int32 + 1 -> int32).
#include <optional>
#include <vector>

#include <ember/tensor.h>

namespace ember {

/// A tensor or a C++ number: binary ops accept either on each side.
class Operand {
 public:
  Operand(const Tensor& t) : t_(&t) {}  // NOLINT: implicit on purpose
  template <class T>
    requires std::is_arithmetic_v<T>
  Operand(T v) : s_(v) {}  // NOLINT
  Operand(Scalar s) : s_(s) {}  // NOLINT
  Operand(Half v) : s_(v) {}    // NOLINT
  Operand(BFloat16 v) : s_(v) {}  // NOLINT
  bool is_tensor() const { return t_ != nullptr; }
  const Tensor& tensor() const { return *t_; }
  Scalar scalar() const { return s_; }

 private:
  const Tensor* t_ = nullptr;
  Scalar s_;
};

// ---- unary (ints/bool -> float32 for the math functions) -------------------
Tensor neg(const Tensor& x);          ///< -x (numeric dtypes; uint8 wraps)
Tensor abs(const Tensor& x);          ///< |x|
Tensor sign(const Tensor& x);         ///< -1, 0 or 1 (NaN stays NaN)
Tensor exp(const Tensor& x);          ///< e^x
Tensor log(const Tensor& x);          ///< natural log
Tensor log1p(const Tensor& x);        ///< log(1 + x), accurate near 0
Tensor expm1(const Tensor& x);        ///< e^x - 1, accurate near 0
Tensor sqrt(const Tensor& x);         ///< square root
Tensor rsqrt(const Tensor& x);        ///< 1 / sqrt(x)
Tensor sin(const Tensor& x);          ///< sine
Tensor cos(const Tensor& x);          ///< cosine
Tensor tan(const Tensor& x);          ///< tangent
Tensor tanh(const Tensor& x);         ///< hyperbolic tangent
Tensor sigmoid(const Tensor& x);      ///< 1 / (1 + e^-x)
Tensor erf(const Tensor& x);          ///< error function
Tensor floor(const Tensor& x);        ///< round down (ints unchanged)
Tensor ceil(const Tensor& x);         ///< round up (ints unchanged)
Tensor round(const Tensor& x);        ///< round half to even (ints unchanged)
Tensor relu(const Tensor& x);         ///< max(x, 0); NaN stays NaN
Tensor gelu(const Tensor& x);         ///< x * Phi(x), exact erf form (floating dtypes)
Tensor silu(const Tensor& x);         ///< x * sigmoid(x) (floating dtypes)
Tensor softplus(const Tensor& x);     ///< log(1 + e^x), x itself above 20 (floating dtypes)
Tensor logical_not(const Tensor& x);  ///< x == 0, as bool

// ---- binary -------------------------------------------------------------
Tensor add(const Operand& a, const Operand& b);           ///< a + b (bool: or)
Tensor sub(const Operand& a, const Operand& b);           ///< a - b (not bool)
Tensor mul(const Operand& a, const Operand& b);           ///< a * b (bool: and)
Tensor div(const Operand& a, const Operand& b);           ///< true division; ints -> float32
Tensor pow(const Operand& a, const Operand& b);           ///< a^b (ints: exact; negative exponent truncates)
Tensor floor_divide(const Operand& a, const Operand& b);  ///< floor(a / b); int / 0 gives 0
Tensor remainder(const Operand& a, const Operand& b);     ///< a mod b with the divisor's sign
Tensor maximum(const Operand& a, const Operand& b);       ///< elementwise max; NaN propagates
Tensor minimum(const Operand& a, const Operand& b);       ///< elementwise min; NaN propagates
Tensor eq(const Operand& a, const Operand& b);            ///< a == b, as bool
Tensor ne(const Operand& a, const Operand& b);            ///< a != b, as bool
Tensor lt(const Operand& a, const Operand& b);            ///< a < b, as bool
Tensor le(const Operand& a, const Operand& b);            ///< a <= b, as bool
Tensor gt(const Operand& a, const Operand& b);            ///< a > b, as bool
Tensor ge(const Operand& a, const Operand& b);            ///< a >= b, as bool
Tensor logical_and(const Operand& a, const Operand& b);   ///< a && b, as bool
Tensor logical_or(const Operand& a, const Operand& b);    ///< a || b, as bool
Tensor logical_xor(const Operand& a, const Operand& b);   ///< a != b as truth values, as bool

// Derivative kernels: the gradient of tanh, sigmoid (floating point) and relu
// (any numeric dtype) given the output gradient `grad` and the forward output
// `out`, in one pass.
Tensor tanh_backward(const Operand& grad, const Operand& out);     ///< grad * (1 - out^2)
Tensor sigmoid_backward(const Operand& grad, const Operand& out);  ///< grad * out * (1 - out)
Tensor relu_backward(const Operand& grad, const Operand& out);     ///< out > 0 ? grad : 0

Tensor operator+(const Operand& a, const Operand& b);
Tensor operator-(const Operand& a, const Operand& b);
Tensor operator*(const Operand& a, const Operand& b);
Tensor operator/(const Operand& a, const Operand& b);
Tensor operator%(const Operand& a, const Operand& b);  ///< remainder
Tensor operator-(const Tensor& x);
Tensor operator==(const Operand& a, const Operand& b);
Tensor operator!=(const Operand& a, const Operand& b);
Tensor operator<(const Operand& a, const Operand& b);
Tensor operator<=(const Operand& a, const Operand& b);
Tensor operator>(const Operand& a, const Operand& b);
Tensor operator>=(const Operand& a, const Operand& b);
Tensor operator!(const Tensor& x);  ///< logical_not

/// x itself (sharing its storage), through which no gradient flows: tapes,
/// graph gradients and traces treat it as a constant (PyTorch's detach,
/// TF's stop_gradient).
Tensor detach(const Tensor& x);

/// cond ? a : b elementwise (cond is read as bool); a and b promote like add.
Tensor where(const Tensor& cond, const Operand& a, const Operand& b);
/// Limits x to [min, max]; either bound may be absent. NaN stays NaN.
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);
/// Elementwise bounds given as tensors (broadcast): minimum(maximum(x, min), max).
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max);

// ---- reductions (axes: {} = all; keepdims keeps reduced dims as size 1) ---
Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdims = false);   ///< ints/bool -> int64
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdims = false);  ///< ints -> float32; empty -> NaN
Tensor prod(const Tensor& x, const Axes& axes = {}, bool keepdims = false);  ///< ints/bool -> int64
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdims = false);   ///< NaN propagates
Tensor min(const Tensor& x, const Axes& axes = {}, bool keepdims = false);   ///< NaN propagates
/// Index of the largest value along `axis` (first one on ties; NaN counts as largest), int64.
Tensor argmax(const Tensor& x, std::optional<int64_t> axis = {}, bool keepdims = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> axis = {}, bool keepdims = false);
/// Variance with `correction` (1 = unbiased, PyTorch's default; 0 = NumPy's), in double internally.
Tensor var(const Tensor& x, const Axes& axes = {}, bool keepdims = false, double correction = 1);
Tensor std(const Tensor& x, const Axes& axes = {}, bool keepdims = false, double correction = 1);
Tensor all(const Tensor& x, const Axes& axes = {}, bool keepdims = false);  ///< bool
Tensor any(const Tensor& x, const Axes& axes = {}, bool keepdims = false);  ///< bool

/// exp(x) / sum(exp(x)) along axis, computed stably; ints -> float32.
Tensor softmax(const Tensor& x, int64_t axis = -1);
/// x - log(sum(exp(x))) along axis, computed stably.
Tensor log_softmax(const Tensor& x, int64_t axis = -1);

/// NumPy matmul: 1-d operands are promoted then squeezed, batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
/// beta * input + alpha * (mat1 @ mat2), as torch.addmm: mat1 [M, K] and
/// mat2 [K, N] are matrices, input broadcasts to [M, N]. One BLAS call with the
/// input as its accumulator (no separate add pass). beta = 0 ignores input
/// (NaN there does not propagate); integer results need integral beta and alpha.
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, double beta = 1, double alpha = 1);

/// Joins tensors along an existing dim (dtypes promote).
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Joins tensors along a new dim.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Picks entries along `dim` at the positions in a 1-d int32/int64 `index`. A
/// negative index counts from the end, or (wrap_negative = false, as TF's
/// gather and PyTorch's index_select) is an IndexError like any out of range.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index, bool wrap_negative = true);
/// Converts the element type (always a new tensor).
Tensor cast(const Tensor& x, DType dtype);

/// True when shapes and all values are equal (dtypes may differ).
bool equal(const Tensor& a, const Tensor& b);
/// |a - b| <= atol + rtol * |b| everywhere (broadcast), compared in float64.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
              bool equal_nan = false);

}  // namespace ember
