// Printing. The expected strings are what PyTorch prints for the same tensor
// (torch/_tensor_str.py), with ember's dtype names ("dtype=int32" for
// "dtype=torch.int32") and shapes ("size=[0,3]" for "size=(0, 3)").
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <ember/ember.h>

namespace em = ember;

namespace {

std::string str(const em::Tensor& t) { return fmt::format("{}", t); }

// Restores the global print options when a test changes them.
struct OptionsGuard {
  em::PrintOptions saved = em::print_options();
  ~OptionsGuard() { em::print_options() = saved; }
};

const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("float tensors print like PyTorch", "[format]") {
  CHECK(str(em::tensor({1.f, 2.f, 3.f})) == "tensor([1., 2., 3.])");
  CHECK(str(em::tensor({0.5f, 1.25f})) == "tensor([0.5000, 1.2500])");
  CHECK(str(em::tensor({-1.f, 0.f, 10.f})) == "tensor([-1.,  0., 10.])");
  CHECK(str(em::tensor({0.1f, -2.f})) == "tensor([ 0.1000, -2.0000])");
  CHECK(str(em::tensor({0.f, 0.f})) == "tensor([0., 0.])");
  CHECK(str(em::tensor({-0.f})) == "tensor([-0.])");
  // Rounding to 4 digits, of the float32 value seen as a double.
  CHECK(str(em::tensor({0.12345f, 2.f / 3.f})) == "tensor([0.1235, 0.6667])");
}

TEST_CASE("operator<< prints the same as fmt", "[format]") {
  em::Tensor t = em::tensor({{1.5f, 2.f}, {3.f, 4.f}});
  std::ostringstream os;
  os << t;
  CHECK(os.str() == str(t));
  CHECK(t.str() == str(t));
  CHECK(em::to_string(t) == str(t));
}

TEST_CASE("2-d and 3-d tensors align columns and indent rows", "[format]") {
  CHECK(str(em::tensor({{1.f, 2.f}, {3.f, 4.f}})) ==
        "tensor([[1., 2.],\n"
        "        [3., 4.]])");
  CHECK(str(em::tensor({{1.5f, -2.f}, {10.f, 4.f}})) ==
        "tensor([[ 1.5000, -2.0000],\n"
        "        [10.0000,  4.0000]])");
  CHECK(str(em::arange(8, em::float32).reshape({2, 2, 2})) ==
        "tensor([[[0., 1.],\n"
        "         [2., 3.]],\n"
        "\n"
        "        [[4., 5.],\n"
        "         [6., 7.]]])");
  // Each extra dim adds a blank line between blocks.
  CHECK(str(em::arange(4).reshape({2, 1, 1, 2})) ==
        "tensor([[[[0, 1]]],\n"
        "\n"
        "\n"
        "        [[[2, 3]]]])");
  // Views print their logical values.
  CHECK(str(em::arange(6).reshape({2, 3}).t()) ==
        "tensor([[0, 3],\n"
        "        [1, 4],\n"
        "        [2, 5]])");
}

TEST_CASE("integer and bool tensors", "[format]") {
  CHECK(str(em::tensor<int64_t>({1, 2, 3})) == "tensor([1, 2, 3])");
  CHECK(str(em::tensor<int64_t>({-5, 100})) == "tensor([ -5, 100])");
  CHECK(str(em::tensor<int32_t>({1, 2, 3})) == "tensor([1, 2, 3], dtype=int32)");
  CHECK(str(em::tensor<uint8_t>({0, 255})) == "tensor([  0, 255], dtype=uint8)");
  // int64 values print exactly, even past 2^53.
  CHECK(str(em::tensor<int64_t>({9007199254740993})) == "tensor([9007199254740993])");
  // PyTorch pads "True" to the width of "False".
  CHECK(str(em::tensor(std::vector<bool>{true, false})) == "tensor([ True, False])");
  CHECK(str(em::tensor(std::vector<bool>{true, true})) == "tensor([True, True])");
}

TEST_CASE("float64 and other dtypes are named", "[format]") {
  CHECK(str(em::tensor({1.0, 2.0})) == "tensor([1., 2.], dtype=float64)");
  CHECK(str(em::tensor({0.5, 1.25})) == "tensor([0.5000, 1.2500], dtype=float64)");
  CHECK(str(em::scalar_tensor(3, em::int32)) == "tensor(3, dtype=int32)");
}

TEST_CASE("0-d tensors", "[format]") {
  CHECK(str(em::scalar_tensor(3.f)) == "tensor(3.)");
  CHECK(str(em::scalar_tensor(2.5f)) == "tensor(2.5000)");
  CHECK(str(em::scalar_tensor(int64_t(7))) == "tensor(7)");
  CHECK(str(em::scalar_tensor(true)) == "tensor(True)");
  CHECK(str(em::scalar_tensor(1e-7, em::float64)) == "tensor(1.0000e-07, dtype=float64)");
}

TEST_CASE("empty tensors", "[format]") {
  CHECK(str(em::zeros({0})) == "tensor([])");
  CHECK(str(em::zeros({0, 3})) == "tensor([], size=[0,3])");
  CHECK(str(em::zeros({2, 0, 1})) == "tensor([], size=[2,0,1])");
  // With no values to hint at it, every dtype but float32 is named.
  CHECK(str(em::zeros({0}, em::int64)) == "tensor([], dtype=int64)");
  CHECK(str(em::zeros({0, 2}, em::bool_)) == "tensor([], size=[0,2], dtype=bool)");
}

TEST_CASE("scientific notation for widely ranged values", "[format]") {
  CHECK(str(em::tensor({1e-5f, 1.f})) == "tensor([1.0000e-05, 1.0000e+00])");
  CHECK(str(em::tensor({1e10f})) == "tensor([1.0000e+10])");
  CHECK(str(em::tensor({1.f, 2000.f})) == "tensor([1.0000e+00, 2.0000e+03])");
  CHECK(str(em::tensor({0.5f, 1000.f})) == "tensor([5.0000e-01, 1.0000e+03])");
  CHECK(str(em::tensor({1.f, 1000.f})) == "tensor([   1., 1000.])");
  CHECK(str(em::tensor({123456.f, -1.5f})) == "tensor([ 1.2346e+05, -1.5000e+00])");
  CHECK(str(em::tensor({1e100, -1.0})) == "tensor([1.0000e+100, -1.0000e+00], dtype=float64)");
  // Zeros do not count toward the range.
  CHECK(str(em::tensor({0.f, 0.001f})) == "tensor([0.0000, 0.0010])");
}

TEST_CASE("nan and inf", "[format]") {
  CHECK(str(em::tensor<double>({1., kNan, kInf})) == "tensor([1., nan, inf], dtype=float64)");
  CHECK(str(em::tensor<float>({1.5f, NAN})) == "tensor([1.5000,    nan])");
  // Non-finite values do not widen the columns.
  CHECK(str(em::tensor<float>({-INFINITY, 1.f})) == "tensor([-inf, 1.])");
  CHECK(str(em::tensor<float>({NAN})) == "tensor([nan])");
  CHECK(str(em::tensor<float>({-NAN, INFINITY, -INFINITY})) == "tensor([nan, inf, -inf])");
  CHECK(str(em::tensor<float>({1e-5f, INFINITY})) == "tensor([1.0000e-05,        inf])");
}

TEST_CASE("large tensors are summarized like PyTorch", "[format]") {
  CHECK(str(em::arange(2000)) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
  // The " ..." counts as an element when rows wrap.
  CHECK(str(em::arange(2000, em::float32)) ==
        "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
        "        1.9990e+03])");
  CHECK(str(em::zeros({100, 100})) ==
        "tensor([[0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        ...,\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.]])");
  // Only the dims longer than 2 * edgeitems are cut.
  CHECK(str(em::arange(2002).reshape({1001, 2})) ==
        "tensor([[   0,    1],\n"
        "        [   2,    3],\n"
        "        [   4,    5],\n"
        "        ...,\n"
        "        [1996, 1997],\n"
        "        [1998, 1999],\n"
        "        [2000, 2001]])");
  CHECK(str(em::arange(1008).reshape({7, 2, 72})) ==
        "tensor([[[   0,    1,    2,  ...,   69,   70,   71],\n"
        "         [  72,   73,   74,  ...,  141,  142,  143]],\n"
        "\n"
        "        [[ 144,  145,  146,  ...,  213,  214,  215],\n"
        "         [ 216,  217,  218,  ...,  285,  286,  287]],\n"
        "\n"
        "        [[ 288,  289,  290,  ...,  357,  358,  359],\n"
        "         [ 360,  361,  362,  ...,  429,  430,  431]],\n"
        "\n"
        "        ...,\n"
        "\n"
        "        [[ 576,  577,  578,  ...,  645,  646,  647],\n"
        "         [ 648,  649,  650,  ...,  717,  718,  719]],\n"
        "\n"
        "        [[ 720,  721,  722,  ...,  789,  790,  791],\n"
        "         [ 792,  793,  794,  ...,  861,  862,  863]],\n"
        "\n"
        "        [[ 864,  865,  866,  ...,  933,  934,  935],\n"
        "         [ 936,  937,  938,  ..., 1005, 1006, 1007]]])");
  // The threshold counts elements: 1000 still prints in full.
  const std::string full = str(em::arange(1000));
  CHECK(full.find("...") == std::string::npos);
  CHECK(full.substr(full.size() - 10) == "998, 999])");
}

TEST_CASE("long rows wrap at linewidth 80", "[format]") {
  CHECK(str(em::arange(30)) ==
        "tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 16, 17,\n"
        "        18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29])");
  CHECK(str(em::arange(20, em::float32) / 4.f) ==
        "tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000, 1.2500, 1.5000, 1.7500, 2.0000,\n"
        "        2.2500, 2.5000, 2.7500, 3.0000, 3.2500, 3.5000, 3.7500, 4.0000, 4.2500,\n"
        "        4.5000, 4.7500])");
  // Rows of a matrix wrap too, one column further in.
  CHECK(str(em::arange(40).reshape({2, 20}) + 100) ==
        "tensor([[100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113,\n"
        "         114, 115, 116, 117, 118, 119],\n"
        "        [120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133,\n"
        "         134, 135, 136, 137, 138, 139]])");
}

TEST_CASE("print options", "[format]") {
  OptionsGuard guard;
  em::print_options().precision = 2;
  CHECK(str(em::tensor({0.5f, 1.25f})) == "tensor([0.50, 1.25])");
  CHECK(str(em::tensor({1e-5f, 1.f})) == "tensor([1.00e-05, 1.00e+00])");
  em::print_options() = guard.saved;
  em::print_options().threshold = 5;
  em::print_options().edgeitems = 2;
  CHECK(str(em::arange(6)) == "tensor([0, 1,  ..., 4, 5])");
  CHECK(str(em::arange(5)) == "tensor([0, 1, 2, 3, 4])");
  em::print_options().edgeitems = 0;
  CHECK(str(em::arange(6)) == "tensor([...])");
  CHECK(str(em::arange(6).reshape({3, 2})) == "tensor([...])");
  em::print_options() = guard.saved;
  em::print_options().linewidth = 20;
  CHECK(str(em::arange(6)) == "tensor([0, 1, 2, 3,\n        4, 5])");
  em::PrintOptions narrow;
  narrow.linewidth = 1;  // narrower than the indent: one element per line
  CHECK(em::to_string(em::arange(3), narrow) == "tensor([0,\n        1,\n        2])");
}

TEST_CASE("undefined tensors print without throwing", "[format]") {
  CHECK(str(em::Tensor()) == "tensor(undefined)");
}

TEST_CASE("dtypes and devices format by name", "[format]") {
  CHECK(fmt::format("{}", em::float32) == "float32");
  CHECK(fmt::format("{}", em::bool_) == "bool");
  CHECK(fmt::format("{}", em::int64) == "int64");
  CHECK(fmt::format("{:>8}", em::uint8) == "   uint8");
  CHECK(fmt::format("{}", em::Device::cpu()) == "cpu");
  CHECK(fmt::format("{}", em::Device::cuda(1)) == "cuda:1");
  std::ostringstream os;
  os << em::float64 << ' ' << em::Device::cuda(0);
  CHECK(os.str() == "float64 cuda:0");
}
