// The GPU test program: every op on CUDA against the CPU result on random
// inputs (broadcasting, views, every dtype), the caching allocator (reuse,
// statistics, OOM recovery), copies, streams, and CUDA-graph replay against
// eager. Exits 77 (meson: skipped) when no GPU answers.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <ember/autograd.h>
#include <ember/capture.h>
#include <ember/compat/v1.h>
#include <ember/compat/v1/train.h>
#include <ember/cuda.h>
#include <ember/ember.h>
#include <ember/half.h>

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "dispatch/dispatcher.h"
#include "dispatch/schema.h"

namespace em = ember;
using em::Device;
using em::DType;
using em::Tensor;
using em::dispatch::OpId;

namespace {

const Device kGpu = Device::cuda(0);
std::mt19937_64 rng(1234);

// Random CPU values in a range that every op accepts (positive floats keep
// log/sqrt/pow defined; small integers keep products exact).
Tensor random_cpu(const em::Shape& shape, DType dt, bool positive = true) {
  const int64_t n = em::shape_numel(shape);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v) {
    if (em::is_floating(dt)) {
      x = std::uniform_real_distribution<double>(positive ? 0.1 : -2.0, 2.0)(rng);
      // 16-bit floats: start from values they hold exactly.
      if (dt == DType::float16) x = static_cast<float>(em::Half(static_cast<float>(x)));
      if (dt == DType::bfloat16) x = static_cast<float>(em::BFloat16(static_cast<float>(x)));
    } else if (dt == DType::bool_) {
      x = static_cast<double>(rng() & 1);
    } else if (dt == DType::uint8) {
      x = static_cast<double>(rng() % 8);
    } else {
      x = static_cast<double>(static_cast<int64_t>(rng() % 11) - 5);
    }
  }
  Tensor t = em::tensor(v, shape);
  // 16-bit floats live on the CPU as float32 references.
  const DType host = dt == DType::float16 || dt == DType::bfloat16 ? DType::float32 : dt;
  return t.to(host);
}

// The CPU tensor `ref` on the GPU in dtype `dt` (16-bit floats are cast there).
Tensor upload(const Tensor& ref, DType dt) { return ref.to(kGpu).to(dt); }

// GPU result back as float64 values (16-bit floats through float32 on the GPU).
std::vector<double> download(const Tensor& t) {
  Tensor x = t;
  if (x.dtype() == DType::float16 || x.dtype() == DType::bfloat16) x = x.to(DType::float32);
  return x.to(Device::cpu()).to_vector<double>();
}

double tolerance(DType dt) {
  switch (dt) {
    case DType::float16: return 2e-2;
    case DType::bfloat16: return 6e-2;
    case DType::float32: return 2e-5;
    case DType::float64: return 1e-11;
    default: return 0;
  }
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    const bool ok = (std::isnan(g) && std::isnan(w)) || g == w || std::fabs(g - w) <= tol * (1 + std::fabs(w));
    if (!ok && bad++ < 3) FAIL_CHECK("element " << i << ": gpu " << g << " cpu " << w);
  }
  CHECK(bad == 0);
}

std::vector<DType> gpu_dtypes(em::dispatch::DTypeSet set) {
  std::vector<DType> out;
  for (int i = 0; i < em::kNumDTypes; ++i) {
    const auto dt = static_cast<DType>(i);
    if (em::dispatch::contains(set, dt)) out.push_back(dt);  // the sets include float16/bfloat16
  }
  return out;
}

// Runs op on CPU (16-bit floats computed in float32, then rounded like the
// GPU's output) and on the GPU, with the same inputs; compares.
void compare_op(OpId op, const std::vector<Tensor>& cpu_in, DType dt, const em::dispatch::Attrs& attrs,
                const std::string& what) {
  std::vector<Tensor> gpu_in;
  for (const Tensor& t : cpu_in) gpu_in.push_back(t.dim() == 0 ? t : upload(t, t.dtype() == DType::float32 ? dt : t.dtype()));
  Tensor want = em::dispatch::call(op, em::dispatch::Inputs(cpu_in.data(), cpu_in.size()), attrs);
  Tensor got = em::dispatch::call(op, em::dispatch::Inputs(gpu_in.data(), gpu_in.size()), attrs);
  CHECK(got.device() == kGpu);
  CHECK(got.shape() == want.shape());
  std::vector<double> w = want.to_vector<double>();
  if (dt == DType::float16 || dt == DType::bfloat16) {
    if (em::is_floating(got.dtype())) {
      for (double& x : w)
        x = dt == DType::float16 ? static_cast<float>(em::Half(static_cast<float>(x)))
                                 : static_cast<float>(em::BFloat16(static_cast<float>(x)));
    }
  }
  // Integer inputs of a floating op (exp, sin, ... of int32) give float32 results.
  const double tol = em::is_floating(dt) ? tolerance(dt) : tolerance(got.dtype());
  check_close(download(got), w, tol, what);
}

}  // namespace

TEST_CASE("elementwise ops match the CPU for every dtype and layout", "[gpu][elementwise]") {
  using namespace em::dispatch;
  for (int i = 0; i < kNumOps; ++i) {
    const auto op = static_cast<OpId>(i);
    const OpSchema& s = schema(op);
    if (!(s.flags & (kUnary | kBinary))) continue;
    for (DType dt : gpu_dtypes(s.dtypes)) {
      const DType host = dt == DType::float16 || dt == DType::bfloat16 ? DType::float32 : dt;
      const std::string what = std::string(s.name) + " " + em::dtype_name(dt);
      const bool positive = op != OpId::sign && op != OpId::abs && op != OpId::neg && op != OpId::relu &&
                            op != OpId::round && op != OpId::floor;
      if (s.flags & kUnary) {
        Tensor x = random_cpu({3, 5}, dt, positive);
        compare_op(op, {x}, dt, {}, what + " contiguous");
        compare_op(op, {x.t()}, dt, {}, what + " transposed");
        compare_op(op, {random_cpu({0, 4}, dt)}, dt, {}, what + " empty");
      } else {
        Tensor a = random_cpu({4, 6}, dt, positive), b = random_cpu({4, 6}, dt, positive);
        compare_op(op, {a, b}, dt, {}, what + " contiguous");
        compare_op(op, {a.t(), b.t()}, dt, {}, what + " transposed");
        compare_op(op, {a, random_cpu({1, 6}, dt, positive)}, dt, {}, what + " broadcast row");
        compare_op(op, {random_cpu({4, 1}, dt, positive), b.slice(1, 0, 6, 2)}, dt, {}, what + " column x step-2");
        compare_op(op, {a, em::detail::wrap_scalar(em::Scalar(2), host, Device::cpu())}, dt, {}, what + " scalar");
      }
    }
  }
}

TEST_CASE("where, clamp and casts match the CPU", "[gpu][elementwise]") {
  Tensor c = random_cpu({5, 4}, DType::bool_), a = random_cpu({5, 4}, DType::float32), b = random_cpu({1, 4}, DType::float32);
  compare_op(OpId::where, {c, a, b}, DType::float32, {}, "where");
  em::dispatch::Attrs ca;
  ca.f0 = 0.5;
  ca.f1 = 1.5;
  ca.flags = em::dispatch::kHasMin | em::dispatch::kHasMax;
  for (DType dt : {DType::float32, DType::float64, DType::int32, DType::float16})
    compare_op(OpId::clamp, {random_cpu({6, 3}, dt, false)}, dt, ca, std::string("clamp ") + em::dtype_name(dt));
  // Every pair of dtypes, through the GPU cast and back.
  for (int i = 0; i < em::kNumDTypes; ++i) {
    for (int j = 0; j < em::kNumDTypes; ++j) {
      const auto from = static_cast<DType>(i), to = static_cast<DType>(j);
      // Negative floats have no uint8 value (C++ leaves the cast undefined; the GPU saturates).
      Tensor x = random_cpu({7}, from, to == DType::uint8 || to == DType::bool_);
      Tensor g = upload(x, from).to(to);
      CHECK(g.dtype() == to);
      std::vector<double> want = x.to_vector<double>();
      for (double& w : want) {
        if (from == DType::float16) w = static_cast<float>(em::Half(static_cast<float>(w)));
        if (to == DType::bool_) w = w != 0;
        else if (to == DType::float16) w = static_cast<float>(em::Half(static_cast<float>(w)));
        else if (to == DType::bfloat16) w = static_cast<float>(em::BFloat16(static_cast<float>(w)));
        else if (to == DType::float32) w = static_cast<float>(w);
        else if (em::is_integral(to)) w = std::trunc(w);
        if (to == DType::uint8 && w < 0) w += 256;
      }
      check_close(download(g), want, 0, std::string("cast ") + em::dtype_name(from) + " -> " + em::dtype_name(to));
    }
  }
}

TEST_CASE("reductions match the CPU over any axes", "[gpu][reduce]") {
  const std::vector<std::pair<OpId, em::dispatch::DTypeSet>> ops = {
      {OpId::sum, em::dispatch::kAll},    {OpId::prod, em::dispatch::kNumeric}, {OpId::mean, em::dispatch::kFloating},
      {OpId::max, em::dispatch::kNumeric}, {OpId::min, em::dispatch::kNumeric}, {OpId::argmax, em::dispatch::kNumeric},
      {OpId::argmin, em::dispatch::kNumeric}, {OpId::var, em::dispatch::kFloating}, {OpId::std, em::dispatch::kFloating},
      {OpId::all, em::dispatch::kAll},    {OpId::any, em::dispatch::kAll}};
  const std::vector<em::Axes> axes_list = {{}, {0}, {1}, {2}, {0, 2}, {1, 2}};
  for (auto [op, set] : ops) {
    for (DType dt : gpu_dtypes(set)) {
      Tensor x = random_cpu({3, 4, 5}, dt, false);
      for (const auto& axes : axes_list) {
        for (bool keep : {false, true}) {
          em::dispatch::Attrs a;
          a.ints.assign(axes.begin(), axes.end());
          a.flags = keep ? em::dispatch::kKeepDims : 0;
          a.f0 = 1;
          const std::string what = std::string(em::dispatch::op_name(op)) + " " + em::dtype_name(dt) + " axes " +
                                   std::to_string(axes.size()) + (keep ? " keep" : "");
          compare_op(op, {x}, dt, a, what);
          compare_op(op, {x.permute({2, 0, 1})}, dt, a, what + " permuted");
        }
      }
    }
  }
  // Large reductions take the split path; a sum over dim 0 the thread-per-output one.
  Tensor big = random_cpu({1 << 20}, DType::float64);
  compare_op(OpId::sum, {big}, DType::float64, {}, "split sum");
  compare_op(OpId::argmax, {big}, DType::float64, {}, "split argmax");
  em::dispatch::Attrs a0;
  a0.ints = {0};
  compare_op(OpId::sum, {random_cpu({300, 700}, DType::float64)}, DType::float64, a0, "sum over dim 0");
}

TEST_CASE("softmax, index_select, concat, stack match the CPU", "[gpu][structural]") {
  for (DType dt : {DType::float32, DType::float64, DType::float16}) {
    for (int64_t axis : {0, 1, -1}) {
      em::dispatch::Attrs a;
      a.i0 = axis;
      Tensor x = random_cpu({4, 300, 3}, dt, false);
      compare_op(OpId::softmax, {x}, dt, a, "softmax");
      compare_op(OpId::log_softmax, {x}, dt, a, "log_softmax");
    }
  }
  Tensor x = random_cpu({5, 6, 3}, DType::float32, false);
  Tensor idx = em::tensor(std::vector<int64_t>{4, 0, -1, 2}, {4});
  Tensor gx = x.to(kGpu), gidx = idx.to(kGpu);
  for (int64_t d : {0, 1, 2}) {
    Tensor i2 = em::tensor(std::vector<int64_t>{2, 0, -1}, {3});
    check_close(download(em::index_select(gx, d, i2.to(kGpu))), em::index_select(x, d, i2).to_vector<double>(), 0,
                "index_select dim " + std::to_string(d));
    check_close(download(em::index_select(gx.permute({2, 0, 1}), d, i2.to(kGpu))),
                em::index_select(x.permute({2, 0, 1}), d, i2).to_vector<double>(), 0, "index_select permuted");
  }
  CHECK_THROWS_WITH(em::index_select(gx, 0, em::tensor(std::vector<int64_t>{1, 9}, {2}).to(kGpu)),
                    "index_select: index 9 is out of range for dim 0 of size 5");
  // Without wrapping (TF's gather) a negative index is an error on the GPU too.
  CHECK_THROWS_WITH(em::index_select(gx, 0, em::tensor(std::vector<int64_t>{1, -1}, {2}).to(kGpu), false),
                    "index_select: index -1 is out of range for dim 0 of size 5");
  check_close(download(em::index_select(gx, 0, em::tensor(std::vector<int64_t>{4, 0}, {2}).to(kGpu), false)),
              em::index_select(x, 0, em::tensor(std::vector<int64_t>{4, 0}, {2})).to_vector<double>(), 0,
              "index_select without wrapping");
  Tensor y = random_cpu({5, 2, 3}, DType::float32, false);
  check_close(download(em::concat({gx, y.to(kGpu)}, 1)), em::concat({x, y}, 1).to_vector<double>(), 0, "concat");
  check_close(download(em::stack({gx, gx}, 0)), em::stack({x, x}, 0).to_vector<double>(), 0, "stack");
}

TEST_CASE("matmul through cuBLAS matches a float64 reference", "[gpu][matmul]") {
  struct Case {
    em::Shape a, b;
  };
  const std::vector<Case> cases = {{{33, 17}, {17, 9}},     {{17}, {17, 5}},         {{4, 17}, {17}},
                                   {{2, 3, 8, 5}, {5, 7}},  {{3, 1, 6, 5}, {4, 5, 2}}, {{8, 0}, {0, 3}}};
  for (DType dt : {DType::float32, DType::float64, DType::float16, DType::bfloat16}) {
    for (const Case& c : cases) {
      Tensor a = random_cpu(c.a, dt, false), b = random_cpu(c.b, dt, false);
      Tensor want = em::matmul(a.to(DType::float64), b.to(DType::float64));
      Tensor got = em::matmul(upload(a, dt), upload(b, dt));
      CHECK(got.dtype() == dt);
      std::vector<double> w = want.to_vector<double>();
      const double tol = dt == DType::float64 ? 1e-12 : (dt == DType::float32 ? 1e-5 : 2e-2);
      check_close(download(got), w, tol * 20, std::string("matmul ") + em::dtype_name(dt) + " " + em::shape_str(c.a));
    }
    // Transposed operands go to cuBLAS as flags.
    Tensor a = random_cpu({9, 13}, dt, false), b = random_cpu({11, 9}, dt, false);
    Tensor want = em::matmul(a.to(DType::float64).t(), b.to(DType::float64).t());
    Tensor got = em::matmul(upload(a, dt).t(), upload(b, dt).t());
    check_close(download(got), want.to_vector<double>(), dt == DType::float64 ? 1e-12 : 4e-2, "matmul transposed");
  }
  CHECK_THROWS_AS(em::matmul(em::ones({2, 2}, DType::int32, kGpu), em::ones({2, 2}, DType::int32, kGpu)),
                  em::DTypeError);
  CHECK_THROWS_WITH(em::matmul(em::ones({2, 2}, DType::int32, kGpu), em::ones({2, 2}, DType::int32, kGpu)),
                    Catch::StartsWith("matmul: int32 is not supported on cuda:0 (cuBLAS multiplies floating types)"));
}

TEST_CASE("addmm through cuBLAS (input as the accumulator) matches the CPU", "[gpu][matmul][addmm]") {
  for (DType dt : {DType::float32, DType::float64, DType::float16, DType::bfloat16}) {
    // Inputs, alpha and beta are exact in every dtype and cuBLAS accumulates in
    // float32 (float64): the result's own rounding is the error (a wrong
    // layout is off by far more).
    const double tol = dt == DType::float64   ? 1e-12
                       : dt == DType::float32 ? 2e-5
                       : dt == DType::float16 ? 2e-3
                                              : 1.6e-2;
    Tensor a = random_cpu({33, 17}, dt, false), b = random_cpu({17, 9}, dt, false);
    for (const em::Shape& is : {em::Shape{9}, em::Shape{1, 9}, em::Shape{33, 1}, em::Shape{33, 9}, em::Shape{}}) {
      Tensor in = random_cpu(is, dt, false);
      for (auto [beta, alpha] : {std::pair{1.0, 1.0}, std::pair{0.5, -2.0}, std::pair{0.0, 1.0}}) {
        const std::string what = std::string("addmm ") + em::dtype_name(dt) + " input " + em::shape_str(is) +
                                 " beta " + std::to_string(beta);
        Tensor want = em::addmm(in.to(DType::float64), a.to(DType::float64), b.to(DType::float64), beta, alpha);
        Tensor got = em::addmm(upload(in, dt), upload(a, dt), upload(b, dt), beta, alpha);
        CHECK(got.dtype() == dt);
        check_close(download(got), want.to_vector<double>(), tol, what);
        // A transposed operand goes to cuBLAS as a flag.
        got = em::addmm(upload(in, dt), upload(a.t().contiguous(), dt).t(), upload(b, dt), beta, alpha);
        check_close(download(got), want.to_vector<double>(), tol, what + " transposed mat1");
      }
    }
    // beta = 0 ignores NaN; K = 0 leaves beta * input.
    Tensor nan = em::full({33, 9}, std::nan(""), dt, kGpu);
    check_close(download(em::addmm(nan, upload(a, dt), upload(b, dt), 0.0, 1.0)),
                em::matmul(a.to(DType::float64), b.to(DType::float64)).to_vector<double>(), tol, "beta 0");
    Tensor bias = random_cpu({4}, dt, false);
    check_close(download(em::addmm(upload(bias, dt), em::ones({3, 0}, dt, kGpu), em::ones({0, 4}, dt, kGpu), 2.0, 1.0)),
                (bias.to(DType::float64) * 2.0).expand({3, 4}).contiguous().to_vector<double>(), tol, "K = 0");
    // A 0-d host input (a wrapped number) joins GPU matrices.
    check_close(download(em::addmm(em::scalar_tensor(0.5), upload(a, dt), upload(b, dt))),
                (em::matmul(a.to(DType::float64), b.to(DType::float64)) + 0.5).to_vector<double>(), tol,
                "0-d host input");
  }
  // The fusion pass folds a bias add into the GPU matmul; replay equals eager.
  auto layer = [](const Tensor& x, const Tensor& w, const Tensor& b) { return em::relu(em::matmul(x, w) + b); };
  auto f = em::capture::function(layer);
  for (int rep = 0; rep < 3; ++rep) {
    Tensor x = random_cpu({64, 96}, DType::float32, false).to(kGpu), w = random_cpu({96, 32}, DType::float32, false).to(kGpu);
    Tensor b = random_cpu({32}, DType::float32, false).to(kGpu);
    check_close(download(f(x, w, b)), download(layer(x, w, b)), 1e-5, "captured matmul + bias");
  }
  {
    Tensor x = em::zeros({64, 96}, DType::float32, kGpu), w = em::zeros({96, 32}, DType::float32, kGpu);
    Tensor b = em::zeros({32}, DType::float32, kGpu);
    CHECK(f.graph_for(x, w, b).count("addmm") == 1);
  }
  CHECK_THROWS_WITH(em::addmm(em::ones({2}, DType::int32, kGpu), em::ones({2, 2}, DType::int32, kGpu),
                              em::ones({2, 2}, DType::int32, kGpu)),
                    Catch::StartsWith("addmm: int32 is not supported on cuda:0"));
}

TEST_CASE("creation and random ops on the GPU", "[gpu][creation]") {
  check_close(download(em::arange(0, 10, 3, DType::int64, kGpu)), {0, 3, 6, 9}, 0, "arange");
  check_close(download(em::linspace(0, 1, 5, DType::float32, kGpu)), {0, 0.25, 0.5, 0.75, 1}, 0, "linspace");
  check_close(download(em::eye(2, 3, DType::float32, kGpu)), {1, 0, 0, 0, 1, 0}, 0, "eye");
  check_close(download(em::full({2, 2}, 7, DType::float16, kGpu)), {7, 7, 7, 7}, 0, "full float16");
  // The same Philox stream as the CPU.
  em::manual_seed(42);
  Tensor c = em::rand({1000});
  em::manual_seed(42);
  Tensor g = em::rand({1000}, DType::float32, kGpu);
  check_close(download(g), c.to_vector<double>(), 0, "rand");
  em::manual_seed(7);
  Tensor ci = em::randint(-5, 9, {777});
  em::manual_seed(7);
  Tensor gi = em::randint(-5, 9, {777}, DType::int64, kGpu);
  check_close(download(gi), ci.to_vector<double>(), 0, "randint");
  em::manual_seed(3);
  Tensor cn = em::randn({513});
  em::manual_seed(3);
  Tensor gn = em::randn({513}, DType::float32, kGpu);
  check_close(download(gn), cn.to_vector<double>(), 1e-6, "randn");
  // truncated_normal redraws with the CPU's counters: the same values, all in [-2, 2].
  em::manual_seed(9);
  Tensor ct = em::truncated_normal({4099}, DType::float64);
  em::manual_seed(9);
  Tensor gt = em::truncated_normal({4099}, DType::float64, kGpu);
  const std::vector<double> gtv = download(gt);
  check_close(gtv, ct.to_vector<double>(), 1e-12, "truncated_normal");
  CHECK(*std::max_element(gtv.begin(), gtv.end()) <= 2.0);
  CHECK(*std::min_element(gtv.begin(), gtv.end()) >= -2.0);
}

TEST_CASE("copies, item, printing, pinned memory and streams", "[gpu][runtime]") {
  REQUIRE(em::cuda_available());
  REQUIRE(em::cuda_device_count() >= 1);
  Tensor x = em::arange(0, 6, 1, DType::float32).reshape({2, 3});
  Tensor g = x.to(kGpu);
  CHECK(g.device() == kGpu);
  CHECK(g.to(Device::cpu()).to_vector<float>() == x.to_vector<float>());
  CHECK(g.t().to(Device::cpu()).to_vector<float>() == x.t().to_vector<float>());
  CHECK(g.sum().item<float>() == 15.0f);
  CHECK(g.str() == "tensor([[0., 1., 2.],\n        [3., 4., 5.]], device='cuda:0')");
  Tensor back = em::zeros({2, 3});
  back.copy_(g * 2);  // copy_ between devices
  CHECK(back.to_vector<float>() == (x * 2).to_vector<float>());
  Tensor onto = em::zeros({2, 3}, DType::float64, kGpu);
  onto.copy_(x);
  CHECK(onto.to(Device::cpu()).to_vector<double>() == x.to_vector<double>());
  Tensor p = em::cuda::pin_memory(x);
  CHECK(em::cuda::is_pinned(p));
  CHECK_FALSE(em::cuda::is_pinned(x));
  CHECK(p.to(kGpu).to(Device::cpu()).to_vector<float>() == x.to_vector<float>());
  // Ops follow the current stream.
  em::cuda::Stream s = em::cuda::Stream::create(kGpu);
  {
    em::cuda::StreamGuard guard(s);
    CHECK(em::cuda::current_stream(kGpu) == s);
    Tensor y = (g * 2 + 1).sum();
    CHECK(y.item<float>() == 36.0f);
  }
  CHECK(em::cuda::current_stream(kGpu) == em::cuda::default_stream(kGpu));
  CHECK_THROWS_WITH(em::add(x, g), "add: expected all tensors on one device, but input 0 is on cpu and input 1 is on cuda:0");
  CHECK_THROWS_AS(em::ones({2}, DType::float32, Device::cuda(em::cuda_device_count())), em::DeviceError);
}

TEST_CASE("the caching allocator reuses blocks, counts, and recovers from OOM", "[gpu][memory]") {
  em::empty_cache(kGpu);
  const em::MemoryStats s0 = em::memory_stats(kGpu);
  CHECK(s0.cached == 0);
  {
    Tensor a = em::empty({1 << 20}, DType::float32, kGpu);  // 4 MiB
    const em::MemoryStats s1 = em::memory_stats(kGpu);
    CHECK(s1.current == s0.current + (std::size_t(4) << 20));
    CHECK(s1.peak >= s1.current);
  }
  const em::MemoryStats s2 = em::memory_stats(kGpu);
  CHECK(s2.current == s0.current);
  CHECK(s2.cached == std::size_t(4) << 20);
  {
    Tensor b = em::empty({1 << 20}, DType::float32, kGpu);
    CHECK(em::memory_stats(kGpu).cache_hits == s2.cache_hits + 1);
    CHECK(em::memory_stats(kGpu).cached == 0);
  }
  // A request no GPU can satisfy: OutOfMemoryError, after the cache was freed; then work goes on.
  CHECK_THROWS_AS(em::empty({int64_t(1) << 45}, DType::float32, kGpu), em::OutOfMemoryError);
  CHECK(em::memory_stats(kGpu).cached == 0);
  Tensor c = em::ones({1000}, DType::float32, kGpu);
  CHECK(c.sum().item<float>() == 1000.0f);
  em::reset_peak_memory(kGpu);
  CHECK(em::memory_stats(kGpu).peak == em::memory_stats(kGpu).current);
}

TEST_CASE("captured graphs replay on the GPU through a CUDA graph, equal to eager", "[gpu][capture]") {
  auto chain = [](const Tensor& x, const Tensor& y) {
    Tensor t = x;
    for (int i = 0; i < 100; ++i) t = (i % 3 == 0) ? t * 0.999f : (i % 3 == 1 ? t + y : em::tanh(t));
    return t.sum({1});
  };
  for (bool fuse : {true, false}) {
    em::capture::Options o;
    o.fuse = fuse;
    auto f = em::capture::function(chain, o);
    for (int rep = 0; rep < 4; ++rep) {
      Tensor x = random_cpu({8, 64}, DType::float32, false).to(kGpu);
      Tensor y = random_cpu({1, 64}, DType::float32, false).to(kGpu);
      Tensor want = chain(x, y);
      Tensor got = f(x, y);
      check_close(download(got), download(want), 1e-5, fuse ? "fused replay" : "replay");
    }
    CHECK(f.trace_count() == 1);
  }
  // Variables are read and assigned by a replay.
  em::Variable v(em::zeros({4}, DType::float32, kGpu));
  auto step = em::capture::function([&](const Tensor& x) {
    v.assign_add(x * 2);
    return v.value() + 1;
  });
  Tensor one = em::ones({4}, DType::float32, kGpu);
  for (int i = 1; i <= 3; ++i) {
    Tensor r = step(one);
    check_close(download(r), std::vector<double>(4, 2.0 * i + 1), 0, "variable step " + std::to_string(i));
  }
  check_close(download(v.value()), std::vector<double>(4, 6.0), 0, "variable value");
}

TEST_CASE("replays on different streams take turns with a graph's buffers", "[gpu][capture]") {
  // One thread, one pooled frame of planned buffers, runs queued on three
  // streams in turn: each run's kernels must wait for the previous run's before
  // they overwrite its buffers (Note [Frames across streams]). Large inputs and
  // unfused ops keep the GPU busy long after a run returns.
  auto chain = [](const Tensor& x) {
    Tensor t = x;
    for (int i = 0; i < 24; ++i) t = em::tanh(t * 1.01f) + 0.01f;
    return t.sum();
  };
  const em::Shape shape{1 << 22};
  std::vector<Tensor> xs;
  for (int i = 0; i < 6; ++i) xs.push_back(random_cpu(shape, DType::float32, false).to(kGpu));
  const em::cuda::Stream streams[3] = {em::cuda::default_stream(kGpu), em::cuda::Stream::create(kGpu),
                                       em::cuda::Stream::create(kGpu)};
  for (bool cuda_graph : {false, true}) {
    em::capture::Options o;
    o.fuse = false;
    o.cuda_graphs = cuda_graph;
    auto f = em::capture::function(chain, o);
    f(xs[0]);  // traces
    std::vector<Tensor> got;
    for (int i = 0; i < 6; ++i) {
      em::cuda::StreamGuard guard(streams[i % 3]);
      got.push_back(f(xs[i]));
    }
    for (const auto& s : streams) s.synchronize();
    for (int i = 0; i < 6; ++i)
      check_close(download(got[i]), download(chain(xs[i])), 1e-5,
                  fmt::format("{} run {} on stream {}", cuda_graph ? "CUDA-graph" : "planned", i, i % 3));
    CHECK(f.trace_count() == 1);
    // A stream made and destroyed per run: a new stream may get the old one's
    // handle, which must not pass for "the same stream".
    got.clear();
    for (int i = 0; i < 6; ++i) {
      const em::cuda::Stream once = em::cuda::Stream::create(kGpu);
      em::cuda::StreamGuard guard(once);
      got.push_back(f(xs[i]));
    }
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // the destroyed streams' work too
    for (int i = 0; i < 6; ++i)
      check_close(download(got[i]), download(chain(xs[i])), 1e-5,
                  fmt::format("{} run {} on a stream of its own", cuda_graph ? "CUDA-graph" : "planned", i));
  }
  // A function destroyed right after a replay on a user stream: its buffers
  // go back to the allocator only once that replay is done, so work queued
  // next on the own stream cannot overwrite them under it.
  for (bool cuda_graph : {false, true}) {
    em::capture::Options o;
    o.fuse = false;
    o.cuda_graphs = cuda_graph;
    Tensor r;
    {
      auto g = em::capture::function(chain, o);
      g(xs[0]);
      em::cuda::StreamGuard guard(streams[1]);
      r = g(xs[1]);
    }
    for (int i = 0; i < 4; ++i) {
      Tensor junk = em::full(shape, 7.f, DType::float32, kGpu) * 3.f;
      (void)junk;
    }
    streams[1].synchronize();
    check_close(download(r), download(chain(xs[1])), 1e-5, cuda_graph ? "destroyed after a CUDA-graph replay" : "destroyed after a replay");
  }
}

TEST_CASE("to(Device) is recorded: traces replay the move with new inputs; its gradient moves back",
          "[gpu][capture]") {
  auto fn = [](const Tensor& x) { return (x.to(kGpu) * 2.f + 1.f).to(Device::cpu()) - x; };
  Tensor x0 = random_cpu({3, 5}, DType::float32, false);
  auto g = em::capture::trace(fn, x0);
  CHECK(g.count("to_device") == 2);
  for (int rep = 0; rep < 3; ++rep) {
    Tensor x = random_cpu({3, 5}, DType::float32, false);
    Tensor got = g.run({x})[0];
    CHECK(got.device() == Device::cpu());
    check_close(got.to_vector<double>(), fn(x).to_vector<double>(), 0, "traced to(Device)");
  }
  auto f = em::capture::function(fn);
  Tensor x1 = random_cpu({3, 5}, DType::float32, false), x2 = random_cpu({3, 5}, DType::float32, false);
  f(x1);
  check_close(f(x2).to_vector<double>(), fn(x2).to_vector<double>(), 0, "capture::function replay");
  CHECK(f.trace_count() == 1);
  // A GPU constant captured from outside is baked on the GPU.
  Tensor w = random_cpu({5}, DType::float32, false).to(kGpu);
  auto g2 = em::capture::trace([&](const Tensor& x) { return (x.to(kGpu) * w).sum(); }, x0);
  check_close(download(g2.run({x1})[0]), download((x1.to(kGpu) * w).sum()), 1e-6, "GPU constant");
  // Gradient through the move: d/dx sum(3 * x on the GPU) = 3 on the CPU.
  Tensor xs = random_cpu({4}, DType::float32, false);
  em::GradientTape tape;
  tape.watch(xs);
  Tensor loss = (xs.to(kGpu) * 3.f).sum();
  Tensor gx = tape.gradient(loss, {xs})[0];
  CHECK(gx.device() == Device::cpu());
  check_close(gx.to_vector<double>(), std::vector<double>(4, 3.0), 0, "gradient of to(Device)");
}

TEST_CASE("GPU kernels take 0-d host values by value, without trace guards", "[gpu][capture]") {
  // The number is read by the kernel, not by the program: one trace serves every value.
  auto f = em::capture::function([](const Tensor& x, const Tensor& s) { return x * (s + 1.f); });
  const Tensor xg = upload(random_cpu({5}, DType::float32, false), DType::float32);
  for (float sv : {1.f, 2.f, 3.f}) {
    const Tensor s = em::scalar_tensor(sv, DType::float32);
    check_close(download(f(xg, s)), download(xg * (sv + 1.f)), 0, "s = " + std::to_string(sv));
  }
  CHECK(f.trace_count() == 1);
  // Without constant folding a 0-d host constant reaches the GPU through a
  // to_device node, which keeps the graph out of CUDA-graph capture (a copy
  // from pageable host memory cannot be captured).
  em::capture::Options no_fold;
  no_fold.const_fold = false;
  const Tensor two = em::scalar_tensor(2.0, DType::float32);
  auto g = em::capture::function([two](const Tensor& x) { return x * two.to(kGpu); }, no_fold);
  for (int i = 0; i < 3; ++i) check_close(download(g(xg)), download(xg * 2.f), 0, "unfolded host constant");
}

TEST_CASE("TF1 sessions run GPU-placed nodes on the GPU", "[gpu][compat]") {
  namespace tf = em::compat::v1;
  // The thread's cuBLAS handle is made on first use: make it before counting.
  (void)em::matmul(em::ones({2, 2}, DType::float32, kGpu), em::ones({2, 2}, DType::float32, kGpu));
  em::cuda::synchronize();
  const auto mem_before = em::memory_stats(kGpu).current;
  const Tensor batch = random_cpu({16, 8}, DType::float32, false);
  const Tensor labels = random_cpu({16, 4}, DType::float32, false);
  // One model, built twice: all on the GPU through the session default, and
  // on the CPU; layer 1 pinned with a device scope in both.
  struct Model {
    tf::Graph g;
    Tensor x, y, h, out, loss;
    tf::Operation init, train;
    std::vector<tf::Variable> vars;
  };
  auto build = [&](Model& m, const std::string& first_layer_device) {
    auto scope = m.g.as_default();
    m.x = tf::placeholder(DType::float32, {-1, 8}, "x");
    m.y = tf::placeholder(DType::float32, {-1, 4}, "y");
    em::Generator gen(7);
    {
      auto d = tf::device(first_layer_device);
      tf::Variable w1(em::randn({8, 16}, DType::float32, Device::cpu(), &gen) * 0.3f, "w1");
      m.h = tf::nn::relu(tf::matmul(m.x, w1), "h");
      m.vars.push_back(w1);
    }
    tf::Variable w2(em::randn({16, 4}, DType::float32, Device::cpu(), &gen) * 0.3f, "w2");
    m.vars.push_back(w2);
    m.out = tf::nn::tanh(tf::matmul(m.h, w2), "out");
    m.loss = tf::reduce_mean(tf::square(tf::subtract(m.out, m.y)), {}, false, "loss");
    m.train = tf::train::GradientDescentOptimizer(0.1).minimize(m.loss);
    m.init = tf::global_variables_initializer();
  };
  Model gm, cm;
  build(gm, "/gpu:0");
  build(cm, "/cpu:0");
  {
    tf::SessionOptions on_gpu;
    on_gpu.device = "/gpu:0";
    on_gpu.log_device_placement = true;
    tf::Session gs(gm.g, on_gpu);
    tf::Session cs(cm.g);
    gs.run(gm.init);
    cs.run(cm.init);
    CHECK(em::memory_stats(kGpu).current > mem_before);  // the variables live on the GPU
    for (int step = 0; step < 5; ++step) {
      auto gr = gs.run({gm.loss, gm.train}, {{gm.x, batch}, {gm.y, labels}});
      auto cr = cs.run({cm.loss, cm.train}, {{cm.x, batch}, {cm.y, labels}});
      CHECK(gr[0].device() == Device::cpu());  // fetches come back to the host, as in TF1
      check_close({gr[0].item<double>()}, {cr[0].item<double>()}, 1e-5, "loss at step " + std::to_string(step));
    }
    auto go = gs.run(gm.out, {{gm.x, batch}});
    check_close(go.to_vector<double>(), cs.run(cm.out, {{cm.x, batch}}).to_vector<double>(), 1e-5, "outputs");
    // make_callable and a traced run (per-node devices) on the GPU path.
    auto call = gs.make_callable({gm.out}, {gm.x});
    check_close(call({batch})[0].to_vector<double>(), go.to_vector<double>(), 0, "make_callable");
    tf::RunMetadata md;
    auto traced = gs.run({gm.out}, {{gm.x, batch}}, tf::RunOptions{true}, &md);
    check_close(traced[0].to_vector<double>(), go.to_vector<double>(), 1e-6, "traced run");
    bool saw_gpu = false;
    for (const auto& st : md.step_stats) saw_gpu = saw_gpu || st.device == "/gpu:0";
    CHECK(saw_gpu);
    // Saver: GPU variables to a checkpoint and back, into a CPU session too.
    // A directory of its own: a save also writes the state file "checkpoint" beside the file.
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("ember_gpu_saver_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "ckpt").string();
    tf::train::Saver gsaver(gm.vars);
    gsaver.save(gs, path);
    tf::train::Saver csaver(cm.vars);
    tf::Session cs2(cm.g);
    csaver.restore(cs2, path);
    check_close(cs2.run(cm.out, {{cm.x, batch}}).to_vector<double>(), go.to_vector<double>(), 1e-5,
                "restored into a CPU session");
    tf::Session gs2(gm.g, on_gpu);
    gsaver.restore(gs2, path);
    check_close(gs2.run(gm.out, {{gm.x, batch}}).to_vector<double>(), go.to_vector<double>(), 0,
                "restored into a GPU session");
    std::filesystem::remove_all(dir);
    // Small constants and creation ops placed on the GPU: equal zero biases
    // (their initial values merged by CSE, compared through the host; a -0.0
    // one must stay apart), ones() made on the GPU, a product of two host
    // numbers computed for a GPU node, and a float16 number times a C++ number.
    tf::Graph sg;
    Tensor sx, s_out, s_half, s_neg;
    tf::Operation s_init;
    {
      auto sscope = sg.as_default();
      sx = tf::placeholder(DType::float32, {-1, 4}, "sx");
      tf::Variable b1(em::zeros({4}), "b1"), b2(em::zeros({4}), "b2"), b3(em::full({4}, -0.0), "b3");
      auto six = tf::multiply(tf::constant(2.f), 3.f, "six");
      s_out = tf::add(tf::add(tf::add(sx, b1), b2), tf::multiply(tf::ones({4}), six), "s_out");
      s_half = tf::multiply(tf::cast(tf::constant(3.f), DType::float16), 0.5f, "s_half");
      s_neg = tf::identity(b3, "s_neg");
      s_init = tf::global_variables_initializer();
    }
    tf::Session ss(sg, on_gpu);
    ss.run(s_init);
    const Tensor sin = random_cpu({3, 4}, DType::float32, false);
    std::vector<double> want = sin.to_vector<double>();
    for (double& w : want) w = static_cast<float>(w + 6.0);
    check_close(ss.run(s_out, {{sx, sin}}).to_vector<double>(), want, 0, "small GPU constants");
    const Tensor h = ss.run(s_half);
    CHECK(h.dtype() == DType::float16);  // a C++ number does not promote a float16 value
    CHECK(h.to(DType::float32).item<float>() == 1.5f);
    for (float v : ss.run(s_neg).to_vector<float>()) CHECK(std::signbit(v));
    // A trace that bakes a GPU constant saves through the host; loading it back is refused clearly.
    const Tensor gconst = em::full({3}, 2.0, DType::float32, kGpu);
    auto gt = em::capture::trace([&](const Tensor& v) { return (v.to(kGpu) * gconst).to(Device::cpu()); },
                                 random_cpu({3}, DType::float32, false));
    gt.save("/tmp/ember_gpu_const.emg");
    CHECK_THROWS_WITH(em::capture::Graph::load("/tmp/ember_gpu_const.emg"),
                      Catch::Contains("tensor data on cuda:0 is not supported"));
    std::remove("/tmp/ember_gpu_const.emg");
  }
  // Closed sessions gave their GPU memory back.
  CHECK(em::memory_stats(kGpu).current == mem_before);
  // A GPU index this machine lacks: an error naming the node, or the CPU under soft placement.
  tf::Graph g;
  auto scope = g.as_default();
  Tensor far;
  {
    auto d = tf::device("/gpu:64");
    far = tf::add(tf::constant(1.f, "one"), 1.f, "far");
  }
  tf::Session strict(g);
  CHECK_THROWS_AS(strict.run(far), em::DeviceError);
  CHECK_THROWS_WITH(strict.run(far), "Session::run: node \"far\" is placed on /gpu:64 but this machine has " +
                                         std::to_string(em::cuda_device_count()) +
                                         " GPU(s); set SessionOptions::allow_soft_placement to run it on the CPU");
  tf::SessionOptions soft;
  soft.allow_soft_placement = true;
  tf::Session lenient(g, soft);
  CHECK(lenient.run(far).item<float>() == 2.f);
}

TEST_CASE("TF1 control flow on the GPU: a lazy cond and a while_loop equal the CPU session", "[gpu][compat]") {
  namespace tf = em::compat::v1;
  (void)em::matmul(em::ones({2, 2}, DType::float32, kGpu), em::ones({2, 2}, DType::float32, kGpu));
  em::cuda::synchronize();
  const auto mem_before = em::memory_stats(kGpu).current;
  // One model, built twice: run by a GPU session and by a CPU one. The
  // decisions (a fed pred, a pred computed on the GPU, a loop's cond) travel
  // through the host; the values they choose stay on the device.
  struct Model {
    tf::Graph g;
    Tensor x, flag, by_flag, by_sign, looped, steps, taken, rows;
    tf::Operation init;
  };
  auto build = [](Model& m) {
    auto scope = m.g.as_default();
    m.x = tf::placeholder(DType::float32, {-1, 4}, "x");
    m.flag = tf::placeholder(DType::bool_, {}, "flag");
    tf::Variable w(em::arange(0, 16, 1, DType::float32).reshape({4, 4}) * 0.05f - 0.3f, "w");
    tf::Variable steps(em::scalar_tensor(0.0, DType::float32), "steps");
    tf::Variable taken(em::scalar_tensor(0.0, DType::float32), "taken");
    m.by_flag = tf::cond(
        m.flag,
        [&] {
          auto deps = tf::control_dependencies({taken.assign_add(1.f)});
          return tf::identity(tf::matmul(m.x, w));
        },
        [&] { return tf::subtract(m.x, 1.f); }, "by_flag");
    m.by_sign = tf::cond(tf::greater(tf::reduce_sum(m.x), 0.f), [&] { return tf::multiply(tf::nn::relu(m.x), 2.f); },
                         [&] { return tf::square(m.x); }, "by_sign");
    // v <- tanh(v w) + x, six times; the body counts its iterations in a variable.
    m.looped = tf::while_loop([](const std::vector<Tensor>& v) { return tf::less(v[0], 6); },
                              [&](const std::vector<Tensor>& v) {
                                auto deps = tf::control_dependencies({steps.assign_add(1.f)});
                                return std::vector<Tensor>{tf::identity(v[0] + 1),
                                                           tf::identity(tf::nn::tanh(tf::matmul(v[1], w)) + m.x)};
                              },
                              {tf::constant(0), m.x})[1];
    // An arange sized in the run, made on the session's device.
    m.rows = tf::multiply(tf::cast(tf::range(tf::shape(m.x)[0]), DType::float32), 0.5f, "rows");
    m.steps = tf::identity(steps, "read_steps");
    m.taken = tf::identity(taken, "read_taken");
    m.init = tf::global_variables_initializer();
  };
  {
    Model gm, cm;
    build(gm);
    build(cm);
    tf::SessionOptions on_gpu;
    on_gpu.device = "/gpu:0";
    tf::Session gs(gm.g, on_gpu);
    tf::Session cs(cm.g);
    gs.run(gm.init);
    cs.run(cm.init);
    const Tensor pos = em::abs(random_cpu({5, 4}, DType::float32, false)) + 0.1f;
    const Tensor neg = Tensor(pos * -1.f);
    for (const Tensor& in : {pos, neg}) {
      for (bool f : {true, false}) {
        const std::string what = fmt::format("flag {}, sum {}", f, in.sum().item<double>() > 0 ? "> 0" : "< 0");
        auto gr = gs.run({gm.by_flag, gm.by_sign}, {{gm.x, in}, {gm.flag, em::scalar_tensor(f, DType::bool_)}});
        auto cr = cs.run({cm.by_flag, cm.by_sign}, {{cm.x, in}, {cm.flag, em::scalar_tensor(f, DType::bool_)}});
        CHECK(gr[0].device() == Device::cpu());
        check_close(gr[0].to_vector<double>(), cr[0].to_vector<double>(), 1e-6, "cond on a fed pred, " + what);
        check_close(gr[1].to_vector<double>(), cr[1].to_vector<double>(), 1e-6, "cond on a computed pred, " + what);
      }
    }
    // The assign in the true branch ran only when it was taken (twice of four runs).
    CHECK(gs.run(gm.taken).item<float>() == 2.f);
    const Tensor gl = gs.run(gm.looped, {{gm.x, pos}});
    check_close(gl.to_vector<double>(), cs.run(cm.looped, {{cm.x, pos}}).to_vector<double>(), 1e-5, "while_loop");
    CHECK(gs.run(gm.steps).item<float>() == 6.f);
    CHECK(gs.run(gm.rows, {{gm.x, pos}}).to_vector<float>() == std::vector<float>{0, 0.5f, 1, 1.5f, 2});
    // A traced run reports the taken branch's nodes on the GPU.
    tf::RunMetadata md;
    gs.run({gm.by_flag}, {{gm.x, pos}, {gm.flag, em::scalar_tensor(true, DType::bool_)}}, tf::RunOptions{true}, &md);
    bool matmul_on_gpu = false;
    for (const auto& st : md.step_stats) matmul_on_gpu = matmul_on_gpu || (st.op == "matmul" && st.device == "/gpu:0");
    CHECK(matmul_on_gpu);
    tf::RunMetadata md_rows;
    gs.run({gm.rows}, {{gm.x, pos}}, tf::RunOptions{true}, &md_rows);
    bool arange_on_gpu = false;
    for (const auto& st : md_rows.step_stats)
      arange_on_gpu = arange_on_gpu || (st.op == "arange" && st.device == "/gpu:0" && st.shape == em::Shape{5});
    CHECK(arange_on_gpu);
  }
  CHECK(em::memory_stats(kGpu).current == mem_before);
}

int main(int argc, char** argv) {
  if (!em::cuda_available()) {
    std::puts("no CUDA device: GPU tests skipped");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
