// Tensor basics: metadata, every view (and views of views), copies, casts,
// copy_/fill_, in-place arithmetic with its dtype rules and aliasing, host access
// (item/to_vector/data) and the undefined tensor.
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <ember/ember.h>

#include "support/reference.h"

namespace em = ember;
using em::DType;
using em::Shape;
using em::Strides;
using em::Tensor;
using namespace ember::test;

namespace {

std::vector<double> iota(int64_t n, double start = 0) {
  std::vector<double> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// 0, 1, ..., numel-1 as float32 in `shape` (contiguous).
Tensor iota_tensor(const Shape& shape, DType dt = em::float32) {
  return from_values(iota(numel_of(shape)), shape, dt);
}

bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.impl().storage.get() == b.impl().storage.get();
}

}  // namespace

TEST_CASE("tensor metadata", "[tensor]") {
  Tensor x = iota_tensor({2, 3, 4});
  CHECK(x.defined());
  CHECK(x.dim() == 3);
  CHECK(x.numel() == 24);
  CHECK(x.shape() == Shape{2, 3, 4});
  CHECK(x.strides() == Strides{12, 4, 1});
  CHECK(x.shape(0) == 2);
  CHECK(x.shape(-1) == 4);
  CHECK(x.size(-2) == 3);
  CHECK(x.dtype() == em::float32);
  CHECK(x.device().is_cpu());
  CHECK(x.is_contiguous());
  CHECK(x.storage_offset() == 0);
  CHECK(x.nbytes() == 24 * 4);
  CHECK_THROWS_AS(x.shape(3), em::IndexError);
  CHECK_THROWS_WITH(x.shape(3),
                    Catch::Contains("shape: dim 3 is out of range for a 3-d tensor (valid: -3..2)"));
  CHECK_THROWS_AS(x.shape(-4), em::IndexError);

  Tensor s = em::scalar_tensor(2.5);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.shape() == Shape{});
  CHECK(s.is_contiguous());

  Tensor z = em::zeros({3, 0, 2}, em::int64);
  CHECK(z.numel() == 0);
  CHECK(z.nbytes() == 0);
  CHECK(z.to_vector<int64_t>().empty());

  // Copies of a Tensor share everything.
  Tensor y = x;
  CHECK(y.is_same(x));
  CHECK(y.data_ptr() == x.data_ptr());
}

TEST_CASE("reshape shares storage when it can and copies when it must", "[tensor][views]") {
  Tensor x = iota_tensor({2, 3, 4});
  Tensor r = x.reshape({4, -1});
  CHECK(r.shape() == Shape{4, 6});
  EMBER_CHECK_VALUES(r, (Shape{4, 6}), iota(24));
  CHECK(shares_storage(r, x));
  CHECK(r.data_ptr() == x.data_ptr());
  // Writing through the view is seen by the base.
  r.select(0, 1).fill_(-1);
  auto xv = values_of(x);
  for (int i = 0; i < 24; ++i) CHECK(xv[i] == ((i >= 6 && i < 12) ? -1.0 : double(i)));

  CHECK(x.reshape({-1}).shape() == Shape{24});
  CHECK(x.reshape({2, -1, 2}).shape() == Shape{2, 6, 2});
  CHECK(x.reshape({1, 24, 1}).shape() == Shape{1, 24, 1});
  CHECK(em::scalar_tensor(3.0).reshape({1, 1}).shape() == Shape{1, 1});
  CHECK(iota_tensor({1}).reshape({}).shape() == Shape{});
  CHECK(em::zeros({0, 3}).reshape({3, 0, 5}).shape() == Shape{3, 0, 5});

  // A transposed tensor cannot be flattened without a copy.
  Tensor m = iota_tensor({3, 4});
  Tensor mt = m.t();
  Tensor flat = mt.reshape({12});
  EMBER_CHECK_VALUES(flat, Shape{12}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK_FALSE(shares_storage(flat, m));
  flat.fill_(100);
  EMBER_CHECK_VALUES(m, (Shape{3, 4}), iota(12));
  // ... but splitting a dim of the transposed tensor is a view.
  Tensor split = mt.reshape({2, 2, 3});
  CHECK(shares_storage(split, m));
  CHECK(split.strides() == Strides{2, 1, 4});
  EMBER_CHECK_VALUES(split, (Shape{2, 2, 3}), {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});

  // A step-2 slice reshaped.
  Tensor sl = iota_tensor({4, 6}).slice(1, 0, 6, 2);  // [4,3] strides [6,2]
  Tensor sv = sl.reshape({2, 2, 3});
  CHECK(shares_storage(sv, sl));
  EMBER_CHECK_VALUES(sv, (Shape{2, 2, 3}), {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22});
  // Rows of 3 with step 2 in rows of 6 line up: flattening is a stride-2 view.
  Tensor sf = sl.reshape({12});
  CHECK(shares_storage(sf, sl));
  CHECK(sf.strides() == Strides{2});
  EMBER_CHECK_VALUES(sf, Shape{12}, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22});
  // In rows of 5 they do not: flattening copies.
  Tensor sl5 = iota_tensor({4, 5}).slice(1, 0, 5, 2);  // [4,3] strides [5,2]
  Tensor sc = sl5.reshape({12});
  CHECK_FALSE(shares_storage(sc, sl5));
  CHECK(sc.is_contiguous());
  EMBER_CHECK_VALUES(sc, Shape{12}, {0, 2, 4, 5, 7, 9, 10, 12, 14, 15, 17, 19});

  // An expanded (stride-0) tensor: splitting the broadcast dim is a view, flattening copies.
  Tensor ex = iota_tensor({3, 1}).expand({3, 4});
  Tensor exs = ex.reshape({3, 2, 2});
  CHECK(shares_storage(exs, ex));
  CHECK(exs.strides() == Strides{1, 0, 0});
  EMBER_CHECK_VALUES(exs, (Shape{3, 2, 2}), {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  Tensor exf = ex.reshape({12});
  CHECK_FALSE(shares_storage(exf, ex));
  EMBER_CHECK_VALUES(exf, Shape{12}, {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  exf += 1;  // the copy is writable
  EMBER_CHECK_VALUES(ex, (Shape{3, 4}), {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});

  // Errors.
  CHECK_THROWS_AS(x.reshape({5, 5}), em::ShapeError);
  CHECK_THROWS_WITH(x.reshape({5, 5}),
                    Catch::Contains("reshape: shape [5,5] is invalid for a tensor of 24 elements"));
  CHECK_THROWS_AS(x.reshape({-1, -1}), em::ShapeError);
  CHECK_THROWS_WITH(x.reshape({-1, -1}), Catch::Contains("reshape: only one dim can be -1"));
  CHECK_THROWS_AS(x.reshape({5, -1}), em::ShapeError);
  CHECK_THROWS_WITH(x.reshape({5, -1}),
                    Catch::Contains("reshape: shape [5,-1] is invalid for a tensor of 24 elements"));
  CHECK_THROWS_AS(x.reshape({-2, -12}), em::ShapeError);
  CHECK_THROWS_WITH(x.reshape({-2, -12}), Catch::Contains("reshape: invalid size -2"));
}

TEST_CASE("view never copies and says why it cannot", "[tensor][views]") {
  Tensor x = iota_tensor({3, 4});
  Tensor v = x.view({2, 6});
  CHECK(v.data_ptr() == x.data_ptr());
  v.fill_(7);
  EMBER_CHECK_VALUES(x, (Shape{3, 4}), std::vector<double>(12, 7.0));

  Tensor y = iota_tensor({3, 2}).t();  // [2,3] strides [1,2]
  CHECK_THROWS_AS(y.view({6}), em::ShapeError);
  CHECK_THROWS_WITH(y.view({6}),
                    Catch::Contains("view: shape [6] is not compatible with the input's shape "
                                    "[2,3] and strides [1,2]") &&
                        Catch::Contains("use reshape()"));
  CHECK_THROWS_WITH(x.view({5}),
                    Catch::Contains("view: shape [5] is invalid for a tensor of 12 elements"));
  // Adding size-1 dims to a non-contiguous tensor is still a view.
  Tensor y1 = y.view({2, 1, 3});
  CHECK(shares_storage(y1, y));
  EMBER_CHECK_VALUES(y1, (Shape{2, 1, 3}), {0, 2, 4, 1, 3, 5});
}

TEST_CASE("transpose, permute and t", "[tensor][views]") {
  Tensor x = iota_tensor({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Strides{1, 12, 4});
  CHECK_FALSE(p.is_contiguous());
  CHECK(shares_storage(p, x));
  std::vector<double> e;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) e.push_back(i * 12 + j * 4 + k);
  EMBER_CHECK_VALUES(p, (Shape{4, 2, 3}), e);
  EMBER_CHECK_VALUES(x.permute({-1, 0, 1}), (Shape{4, 2, 3}), e);

  Tensor t = x.transpose(0, -1);
  CHECK(t.shape() == Shape{4, 3, 2});
  e.clear();
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) e.push_back(i * 12 + j * 4 + k);
  EMBER_CHECK_VALUES(t, (Shape{4, 3, 2}), e);
  CHECK(x.transpose(1, 1).strides() == x.strides());

  Tensor m = iota_tensor({2, 3});
  EMBER_CHECK_VALUES(m.t(), (Shape{3, 2}), {0, 3, 1, 4, 2, 5});
  EMBER_CHECK_VALUES(m.t().t(), (Shape{2, 3}), iota(6));
  CHECK(m.t().t().is_contiguous());
  Tensor v = iota_tensor({3});
  CHECK(v.t().shape() == Shape{3});
  CHECK(em::scalar_tensor(1.0).t().shape() == Shape{});
  // Writing through a transpose.
  m.t().select(0, 2).fill_(-5);  // column 2 of m
  EMBER_CHECK_VALUES(m, (Shape{2, 3}), {0, 1, -5, 3, 4, -5});

  CHECK_THROWS_AS(x.t(), em::ShapeError);
  CHECK_THROWS_WITH(x.t(), Catch::Contains("t: expects a tensor with at most 2 dims (got 3-d [2,3,4])"));
  CHECK_THROWS_AS(x.permute({0, 1}), em::ShapeError);
  CHECK_THROWS_WITH(x.permute({0, 1}), Catch::Contains("permute: 2 dims given for a 3-d tensor"));
  CHECK_THROWS_AS(x.permute({0, 1, 1}), em::ValueError);
  CHECK_THROWS_WITH(x.permute({0, 1, 1}), Catch::Contains("permute: dim 1 appears twice"));
  CHECK_THROWS_AS(x.permute({0, 1, 3}), em::IndexError);
  CHECK_THROWS_WITH(x.permute({0, 1, 3}),
                    Catch::Contains("permute: dim 3 is out of range for a 3-d tensor"));
  CHECK_THROWS_AS(x.transpose(0, 3), em::IndexError);
  CHECK_THROWS_WITH(x.transpose(0, 3),
                    Catch::Contains("transpose: dim 3 is out of range for a 3-d tensor (valid: -3..2)"));
}

TEST_CASE("slice with steps, negative and clamped bounds", "[tensor][views]") {
  Tensor x = iota_tensor({10});
  EMBER_CHECK_VALUES(x.slice(0, 2, 8), Shape{6}, {2, 3, 4, 5, 6, 7});
  EMBER_CHECK_VALUES(x.slice(0, 1, 10, 3), Shape{3}, {1, 4, 7});
  EMBER_CHECK_VALUES(x.slice(0, 0, 10, 4), Shape{3}, {0, 4, 8});
  EMBER_CHECK_VALUES(x.slice(0, -3, 10), Shape{3}, {7, 8, 9});
  EMBER_CHECK_VALUES(x.slice(0, 2, -2, 2), Shape{3}, {2, 4, 6});
  EMBER_CHECK_VALUES(x.slice(0, -100, 3), Shape{3}, {0, 1, 2});
  EMBER_CHECK_VALUES(x.slice(0, 7, 100), Shape{3}, {7, 8, 9});
  EMBER_CHECK_VALUES(x.slice(0, 6, 2), Shape{0}, {});
  EMBER_CHECK_VALUES(x.slice(0, 20, 30), Shape{0}, {});
  EMBER_CHECK_VALUES(x.slice(0, 9, 10, 5), Shape{1}, {9});

  Tensor s = x.slice(0, 3, 9, 2);
  CHECK(s.storage_offset() == 3);
  CHECK(s.strides() == Strides{2});
  CHECK_FALSE(s.is_contiguous());
  CHECK(shares_storage(s, x));
  s += 100;
  EMBER_CHECK_VALUES(x, Shape{10}, {0, 1, 2, 103, 4, 105, 6, 107, 8, 9});

  Tensor m = iota_tensor({4, 5});
  EMBER_CHECK_VALUES(m.slice(1, 1, 5, 2), (Shape{4, 2}), {1, 3, 6, 8, 11, 13, 16, 18});
  EMBER_CHECK_VALUES(m.slice(-2, -2, 4), (Shape{2, 5}), {10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
  CHECK(m.slice(0, 1, 3).is_contiguous());

  CHECK_THROWS_AS(x.slice(0, 0, 5, 0), em::ValueError);
  CHECK_THROWS_WITH(x.slice(0, 0, 5, 0), Catch::Contains("slice: step must be positive (got 0)"));
  CHECK_THROWS_AS(x.slice(0, 5, 0, -1), em::ValueError);
  CHECK_THROWS_WITH(x.slice(0, 5, 0, -1), Catch::Contains("slice: step must be positive (got -1)"));
  CHECK_THROWS_AS(m.slice(2, 0, 1), em::IndexError);
  CHECK_THROWS_WITH(m.slice(2, 0, 1),
                    Catch::Contains("slice: dim 2 is out of range for a 2-d tensor (valid: -2..1)"));
  CHECK_THROWS_AS(em::scalar_tensor(1.0).slice(0, 0, 1), em::IndexError);
  CHECK_THROWS_WITH(em::scalar_tensor(1.0).slice(0, 0, 1),
                    Catch::Contains("slice: cannot slice a 0-d tensor"));
}

TEST_CASE("select and operator[]", "[tensor][views]") {
  Tensor x = iota_tensor({3, 4});
  EMBER_CHECK_VALUES(x[1], Shape{4}, {4, 5, 6, 7});
  EMBER_CHECK_VALUES(x[-1], Shape{4}, {8, 9, 10, 11});
  EMBER_CHECK_VALUES(x.select(1, 2), Shape{3}, {2, 6, 10});
  EMBER_CHECK_VALUES(x.select(-1, -1), Shape{3}, {3, 7, 11});
  Tensor e = x[2][1];
  CHECK(e.dim() == 0);
  CHECK(e.item<float>() == 9.0f);
  CHECK(x.select(1, 2).strides() == Strides{4});
  CHECK(x[2].storage_offset() == 8);
  x[0][3].fill_(-1);
  CHECK(values_of(x)[3] == -1.0);

  CHECK_THROWS_AS(x[3], em::IndexError);
  CHECK_THROWS_WITH(x[3], Catch::Contains("select: index 3 is out of range for dim 0 of size 3"));
  CHECK_THROWS_AS(x[-4], em::IndexError);
  CHECK_THROWS_WITH(x[-4], Catch::Contains("select: index -4 is out of range for dim 0 of size 3"));
  CHECK_THROWS_AS(x.select(2, 0), em::IndexError);
  CHECK_THROWS_WITH(x.select(2, 0),
                    Catch::Contains("select: dim 2 is out of range for a 2-d tensor"));
  CHECK_THROWS_AS(e[0], em::IndexError);
  CHECK_THROWS_WITH(e[0], Catch::Contains("select: cannot index a 0-d tensor"));
  CHECK_THROWS_AS(em::zeros({0, 2})[0], em::IndexError);
}

TEST_CASE("squeeze and unsqueeze", "[tensor][views]") {
  Tensor x = iota_tensor({1, 3, 1, 2});
  CHECK(x.squeeze().shape() == Shape{3, 2});
  CHECK(x.squeeze(0).shape() == Shape{3, 1, 2});
  CHECK(x.squeeze(-2).shape() == Shape{1, 3, 2});
  CHECK(x.squeeze(1).shape() == Shape{1, 3, 1, 2});  // not size 1: unchanged
  CHECK(shares_storage(x.squeeze(), x));
  EMBER_CHECK_VALUES(x.squeeze(), (Shape{3, 2}), iota(6));
  CHECK(iota_tensor({1, 1}).squeeze().shape() == Shape{});
  CHECK(em::scalar_tensor(1.0).squeeze().shape() == Shape{});

  Tensor v = iota_tensor({3});
  CHECK(v.unsqueeze(0).shape() == Shape{1, 3});
  CHECK(v.unsqueeze(1).shape() == Shape{3, 1});
  CHECK(v.unsqueeze(-1).shape() == Shape{3, 1});
  CHECK(v.unsqueeze(-2).shape() == Shape{1, 3});
  CHECK(em::scalar_tensor(1.0).unsqueeze(0).shape() == Shape{1});
  EMBER_CHECK_VALUES(v.unsqueeze(1), (Shape{3, 1}), {0, 1, 2});
  // On a non-contiguous tensor it is still a view.
  Tensor t = iota_tensor({2, 3}).t();
  Tensor tu = t.unsqueeze(1);
  CHECK(shares_storage(tu, t));
  EMBER_CHECK_VALUES(tu, (Shape{3, 1, 2}), {0, 3, 1, 4, 2, 5});
  EMBER_CHECK_VALUES(tu.squeeze(1), (Shape{3, 2}), {0, 3, 1, 4, 2, 5});

  CHECK_THROWS_AS(v.unsqueeze(2), em::IndexError);
  CHECK_THROWS_WITH(v.unsqueeze(2),
                    Catch::Contains("unsqueeze: dim 2 is out of range for a 2-d tensor (valid: -2..1)"));
  CHECK_THROWS_AS(x.squeeze(4), em::IndexError);
  CHECK_THROWS_WITH(x.squeeze(4), Catch::Contains("squeeze: dim 4 is out of range for a 4-d tensor"));
}

TEST_CASE("expand and broadcast_to use stride 0", "[tensor][views]") {
  Tensor col = iota_tensor({3, 1});
  Tensor e = col.expand({3, 4});
  CHECK(e.shape() == Shape{3, 4});
  CHECK(e.strides() == Strides{1, 0});
  CHECK(shares_storage(e, col));
  EMBER_CHECK_VALUES(e, (Shape{3, 4}), {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  Tensor b = iota_tensor({3}).broadcast_to({2, 3});
  CHECK(b.strides() == Strides{0, 1});
  EMBER_CHECK_VALUES(b, (Shape{2, 3}), {0, 1, 2, 0, 1, 2});
  EMBER_CHECK_VALUES(col.expand({2, -1, 2}), (Shape{2, 3, 2}), {0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2});
  EMBER_CHECK_VALUES(em::scalar_tensor(5.0).expand({2, 2}), (Shape{2, 2}), {5, 5, 5, 5});
  CHECK(col.expand({3, 0}).numel() == 0);
  CHECK(col.expand({3, 1}).is_same(col));
  // The base changes show through.
  col.fill_(9);
  EMBER_CHECK_VALUES(e, (Shape{3, 4}), std::vector<double>(12, 9.0));
  // Ops read an expanded tensor correctly.
  EMBER_CHECK_VALUES(b + 1, (Shape{2, 3}), {1, 2, 3, 1, 2, 3});
  EMBER_CHECK_VALUES(b.contiguous(), (Shape{2, 3}), {0, 1, 2, 0, 1, 2});
  CHECK(b.contiguous().strides() == Strides{3, 1});

  CHECK_THROWS_AS(iota_tensor({3}).expand({2, 4}), em::ShapeError);
  CHECK_THROWS_WITH(iota_tensor({3}).expand({2, 4}),
                    Catch::Contains("expand: shape [3] cannot be expanded to [2,4] (dim 0: 3 vs 4"));
  CHECK_THROWS_AS(iota_tensor({2, 3}).expand({3}), em::ShapeError);
  CHECK_THROWS_WITH(iota_tensor({2, 3}).expand({3}),
                    Catch::Contains("expand: cannot expand [2,3] to fewer dims [3]"));
  CHECK_THROWS_AS(iota_tensor({3}).expand({-1, 3}), em::ShapeError);
  CHECK_THROWS_WITH(iota_tensor({3}).expand({-1, 3}),
                    Catch::Contains("expand: -1 is not allowed in a new leading dim"));
}

TEST_CASE("flatten", "[tensor][views]") {
  Tensor x = iota_tensor({2, 3, 4});
  CHECK(x.flatten().shape() == Shape{24});
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  CHECK(x.flatten(0, 1).shape() == Shape{6, 4});
  CHECK(x.flatten(-2, -1).shape() == Shape{2, 12});
  CHECK(x.flatten(1, 1).shape() == Shape{2, 3, 4});
  CHECK(shares_storage(x.flatten(), x));
  CHECK(em::scalar_tensor(4.0).flatten().shape() == Shape{1});
  // Flattening a permuted tensor copies, in the permuted order.
  EMBER_CHECK_VALUES(iota_tensor({2, 3}).t().flatten(), Shape{6}, {0, 3, 1, 4, 2, 5});
  CHECK_THROWS_AS(x.flatten(2, 1), em::ValueError);
  CHECK_THROWS_WITH(x.flatten(2, 1), Catch::Contains("flatten: start_dim 2 comes after end_dim 1"));
  CHECK_THROWS_AS(x.flatten(0, 3), em::IndexError);
  CHECK_THROWS_WITH(x.flatten(0, 3), Catch::Contains("flatten: dim 3 is out of range"));
}

TEST_CASE("views of views match hand-computed values", "[tensor][views]") {
  // x[i][j][k] = 12i + 4j + k
  Tensor x = iota_tensor({24}).reshape({2, 3, 4});
  Tensor y = x.transpose(0, 2);      // [4,3,2]: y[k][j][i] = x[i][j][k]
  Tensor z = y.slice(0, 1, 4, 2);    // [2,3,2]: z[a][j][i] = x[i][j][1+2a]
  CHECK(z.shape() == Shape{2, 3, 2});
  std::vector<double> e;
  for (int a = 0; a < 2; ++a)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) e.push_back(12 * i + 4 * j + 1 + 2 * a);
  EMBER_CHECK_VALUES(z, (Shape{2, 3, 2}), e);
  Tensor w = z.select(1, -1);        // [2,2]: w[a][i] = x[i][2][1+2a]
  EMBER_CHECK_VALUES(w, (Shape{2, 2}), {9, 21, 11, 23});
  EMBER_CHECK_VALUES(w.t(), (Shape{2, 2}), {9, 11, 21, 23});
  EMBER_CHECK_VALUES(w.unsqueeze(0).expand({3, 2, 2})[2], (Shape{2, 2}), {9, 21, 11, 23});
  EMBER_CHECK_VALUES(z.reshape({12}), Shape{12}, e);
  EMBER_CHECK_VALUES(z.flatten(1), (Shape{2, 6}), e);
  EMBER_CHECK_VALUES(z.contiguous(), (Shape{2, 3, 2}), e);
  // Views of a reshaped step-slice.
  Tensor q = iota_tensor({4, 6}).slice(1, 1, 6, 2).reshape({2, 2, 3}).permute({2, 0, 1});
  // q[c][a][b] = row (2a+b), column 1+2c = 6(2a+b) + 1 + 2c
  e.clear();
  for (int c = 0; c < 3; ++c)
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) e.push_back(6 * (2 * a + b) + 1 + 2 * c);
  EMBER_CHECK_VALUES(q, (Shape{3, 2, 2}), e);
  // Writes through the chain land in the base.
  w.fill_(-1);
  auto xv = values_of(x);
  for (int i = 0; i < 24; ++i) {
    const bool hit = i == 9 || i == 11 || i == 21 || i == 23;
    CHECK(xv[i] == (hit ? -1.0 : double(i)));
  }
  // An op on the chain of views.
  EMBER_CHECK_VALUES(z * 2 + z.select(0, 0).unsqueeze(0), (Shape{2, 3, 2}),
                     [&] {
                       std::vector<double> r;
                       auto zv = values_of(z);
                       for (int k = 0; k < 12; ++k) r.push_back(2 * zv[k] + zv[k % 6]);
                       return r;
                     }());
}

TEST_CASE("contiguous and clone", "[tensor][copies]") {
  Tensor x = iota_tensor({3, 4});
  CHECK(x.contiguous().is_same(x));
  Tensor t = x.t();
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Strides{3, 1});
  CHECK_FALSE(shares_storage(c, x));
  EMBER_CHECK_VALUES(c, (Shape{4, 3}), {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});

  Tensor k = x.clone();
  CHECK_FALSE(k.is_same(x));
  CHECK_FALSE(shares_storage(k, x));
  CHECK(k.dtype() == x.dtype());
  k.fill_(0);
  EMBER_CHECK_VALUES(x, (Shape{3, 4}), iota(12));
  x.fill_(1);
  EMBER_CHECK_VALUES(k, (Shape{3, 4}), std::vector<double>(12, 0.0));
  // Clone of a view is contiguous and owns only the view's elements.
  Tensor s = iota_tensor({10}, em::int64).slice(0, 1, 10, 3).clone();
  CHECK(s.is_contiguous());
  CHECK(s.storage_offset() == 0);
  CHECK(s.impl().storage->nbytes() >= 3 * sizeof(int64_t));
  EMBER_CHECK_VALUES(s, Shape{3}, {1, 4, 7});
  CHECK(s.dtype() == em::int64);
  // Clone of 0-d, size-0 and bool.
  CHECK(em::scalar_tensor(2.5).clone().item<float>() == 2.5f);
  CHECK(em::zeros({0, 4}).clone().shape() == Shape{0, 4});
  EMBER_CHECK_VALUES(from_values({1, 0, 1}, {3}, em::bool_).clone(), Shape{3}, {1, 0, 1});
}

TEST_CASE("to(DType) converts between every pair of dtypes", "[tensor][copies]") {
  const std::vector<DType> dts = cpu_dtypes();
  for (DType from : dts) {
    // Values every source can hold; negatives only where the source is signed.
    std::vector<double> vals;
    if (from == em::bool_)
      vals = {0, 1, 1, 0};
    else if (from == em::uint8)
      vals = {0, 1, 200, 7};
    else if (em::is_floating(from))
      vals = {0, 1, 2.75, -2.75, 0.5, -0.5, 100.25, 255};
    else
      vals = {0, 1, -1, 7, -128, 255};
    const auto n = static_cast<int64_t>(vals.size());
    Tensor src = from_values(vals, {n}, from);
    for (DType to : dts) {
      INFO("from " << em::dtype_name(from) << " to " << em::dtype_name(to));
      // Float -> uint8 of a negative value is undefined in C++ and PyTorch; skip those.
      if (em::is_floating(from) && to == em::uint8) {
        std::vector<double> nonneg;
        for (double v : vals)
          if (v >= 0) nonneg.push_back(v);
        Tensor s2 = from_values(nonneg, {static_cast<int64_t>(nonneg.size())}, from);
        Tensor r = s2.to(to);
        CHECK(r.dtype() == to);
        EMBER_CHECK_VALUES(r, Shape{static_cast<int64_t>(nonneg.size())},
                           ref_unary(nonneg, [](double v) { return v; }, to));
        continue;
      }
      Tensor r = src.to(to);
      CHECK(r.dtype() == to);
      // Truncation toward zero, two's-complement wrap, bool is "!= 0".
      const auto expected = ref_unary(vals, [](double v) { return v; }, to);
      EMBER_CHECK_VALUES(r, Shape{n}, expected);
      if (from == to) {
        CHECK(r.is_same(src));
      } else {
        CHECK_FALSE(shares_storage(r, src));
      }
      // Casting a non-contiguous view.
      Tensor view = from_values(vals, {n}, from).unsqueeze(0).expand({2, n}).t();
      std::vector<double> e2;
      for (double v : expected) e2.insert(e2.end(), {v, v});
      EMBER_CHECK_VALUES(view.to(to), (Shape{n, 2}), e2);
      CHECK(em::cast(src, to).dtype() == to);
    }
  }
  // A few hand-checked conversions.
  EMBER_CHECK_VALUES(em::tensor({0.5f, -0.0f, 0.0f, -3.7f}).to(em::bool_), Shape{4}, {1, 0, 0, 1});
  EMBER_CHECK_VALUES(em::tensor({2.9, -2.9}).to(em::int32), Shape{2}, {2, -2});
  EMBER_CHECK_VALUES(em::tensor({-1, 256, 257}).to(em::uint8), Shape{3}, {255, 0, 1});
  EMBER_CHECK_VALUES(em::tensor({int64_t{1} << 40}).to(em::float64), Shape{1},
                     {1099511627776.0});
  auto nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(em::tensor({nan}).to(em::bool_).item<bool>());
  CHECK(std::isnan(em::tensor({nan}).to(em::float64).item<double>()));
  // float16/bfloat16 round (test_half.cpp checks every pair bit by bit).
  CHECK(em::tensor({1.1f}).to(em::float16).item<float>() == 1.099609375f);
  CHECK(em::tensor({1.1f}).to(em::bfloat16).item<float>() == 1.1015625f);
}

TEST_CASE("copy_ broadcasts and casts into the destination", "[tensor][copies]") {
  Tensor dst = em::zeros({2, 3});
  Tensor& ret = dst.copy_(em::tensor({1, 2, 3}));
  CHECK(&ret == &dst);
  CHECK(dst.dtype() == em::float32);
  EMBER_CHECK_VALUES(dst, (Shape{2, 3}), {1, 2, 3, 1, 2, 3});
  dst.copy_(em::tensor({{7.9}, {-7.9}}));
  EMBER_CHECK_VALUES(dst, (Shape{2, 3}), {7.9, 7.9, 7.9, -7.9, -7.9, -7.9});
  dst.copy_(em::scalar_tensor(true));
  EMBER_CHECK_VALUES(dst, (Shape{2, 3}), std::vector<double>(6, 1.0));

  Tensor idst = em::zeros({3}, em::int32);
  idst.copy_(em::tensor({2.9f, -2.9f, 0.5f}));
  EMBER_CHECK_VALUES(idst, Shape{3}, {2, -2, 0});
  Tensor bdst = em::zeros({3}, em::bool_);
  bdst.copy_(em::tensor({0.0, 0.1, -3.0}));
  EMBER_CHECK_VALUES(bdst, Shape{3}, {0, 1, 1});

  // Into a non-contiguous view: only the view's elements change.
  Tensor base = em::zeros({3, 4}, em::int64);
  base.slice(1, 1, 4, 2).copy_(em::tensor({{1, 2}, {3, 4}, {5, 6}}));
  EMBER_CHECK_VALUES(base, (Shape{3, 4}), {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6});
  base.t().copy_(iota_tensor({4, 3}, em::int64));
  EMBER_CHECK_VALUES(base, (Shape{3, 4}), {0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});

  // Overlapping source and destination behave like a copy through a temporary.
  Tensor v = iota_tensor({6});
  v.slice(0, 1, 6).copy_(v.slice(0, 0, 5));
  EMBER_CHECK_VALUES(v, Shape{6}, {0, 0, 1, 2, 3, 4});
  v = iota_tensor({6});
  v.slice(0, 0, 5).copy_(v.slice(0, 1, 6));
  EMBER_CHECK_VALUES(v, Shape{6}, {1, 2, 3, 4, 5, 5});
  Tensor sq = iota_tensor({3, 3});
  sq.copy_(sq.t());
  EMBER_CHECK_VALUES(sq, (Shape{3, 3}), {0, 3, 6, 1, 4, 7, 2, 5, 8});

  // Errors leave the destination untouched.
  Tensor d2 = iota_tensor({2, 3});
  CHECK_THROWS_AS(d2.copy_(iota_tensor({2, 2, 3})), em::ShapeError);
  CHECK_THROWS_WITH(d2.copy_(iota_tensor({2, 2, 3})),
                    Catch::Contains("copy_: the result shape [2,2,3] does not broadcast to the "
                                    "destination's [2,3]"));
  CHECK_THROWS_AS(d2.copy_(iota_tensor({4})), em::ShapeError);
  CHECK_THROWS_WITH(d2.copy_(iota_tensor({4})), Catch::Contains("copy_: ") &&
                                                    Catch::Contains("[4]") &&
                                                    Catch::Contains("[2,3]"));
  EMBER_CHECK_VALUES(d2, (Shape{2, 3}), iota(6));
  Tensor ex = em::zeros({3}).expand({2, 3});
  CHECK_THROWS_AS(ex.copy_(iota_tensor({2, 3})), em::ValueError);
  CHECK_THROWS_WITH(ex.copy_(iota_tensor({2, 3})),
                    Catch::Contains("copy_: the destination has elements that share memory"));
}

TEST_CASE("fill_ and zero_", "[tensor][copies]") {
  Tensor x = iota_tensor({2, 3});
  Tensor& r = x.fill_(2.5);
  CHECK(&r == &x);
  EMBER_CHECK_VALUES(x, (Shape{2, 3}), std::vector<double>(6, 2.5));
  x.zero_();
  EMBER_CHECK_VALUES(x, (Shape{2, 3}), std::vector<double>(6, 0.0));
  Tensor i = em::zeros({4}, em::int32);
  i.fill_(2.7);
  EMBER_CHECK_VALUES(i, Shape{4}, {2, 2, 2, 2});
  i.fill_(-7);
  EMBER_CHECK_VALUES(i, Shape{4}, {-7, -7, -7, -7});
  Tensor big = em::zeros({2}, em::int64);
  big.fill_(int64_t{9007199254740993});  // 2^53 + 1: not a double
  CHECK(big.to_vector<int64_t>() == std::vector<int64_t>{9007199254740993, 9007199254740993});
  Tensor b = em::zeros({3}, em::bool_);
  b.fill_(true);
  EMBER_CHECK_VALUES(b, Shape{3}, {1, 1, 1});
  b.fill_(0.0);
  EMBER_CHECK_VALUES(b, Shape{3}, {0, 0, 0});
  // On a strided view only the view's elements change.
  Tensor m = iota_tensor({3, 4});
  m.slice(1, 0, 4, 2).fill_(-1);
  EMBER_CHECK_VALUES(m, (Shape{3, 4}), {-1, 1, -1, 3, -1, 5, -1, 7, -1, 9, -1, 11});
  m.t()[3].zero_();
  EMBER_CHECK_VALUES(m, (Shape{3, 4}), {-1, 1, -1, 0, -1, 5, -1, 0, -1, 9, -1, 0});
  Tensor z0 = em::zeros({0, 3});
  z0.fill_(1);
  CHECK(z0.numel() == 0);
  Tensor s = em::scalar_tensor(1.0, em::float64);
  s.fill_(-3.25);
  CHECK(s.item<double>() == -3.25);
  Tensor ex = em::zeros({1, 3}).expand({2, 3});
  CHECK_THROWS_AS(ex.fill_(1), em::ValueError);
  CHECK_THROWS_WITH(ex.fill_(1), Catch::Contains("the destination has elements that share memory"));
}

TEST_CASE("in-place arithmetic with numbers and tensors", "[tensor][inplace]") {
  Tensor x = em::tensor({1.f, 2.f, 3.f, 4.f});
  Tensor& r = (x += 1);
  CHECK(&r == &x);
  EMBER_CHECK_VALUES(x, Shape{4}, {2, 3, 4, 5});
  x -= 0.5;
  EMBER_CHECK_VALUES(x, Shape{4}, {1.5, 2.5, 3.5, 4.5});
  x *= 2;
  EMBER_CHECK_VALUES(x, Shape{4}, {3, 5, 7, 9});
  x /= 4;
  EMBER_CHECK_VALUES(x, Shape{4}, {0.75, 1.25, 1.75, 2.25});
  x.add_(em::tensor({1.f, 1.f, 1.f, 1.f}));
  x.sub_(em::tensor({0.75f, 0.25f, 0.75f, 0.25f}));
  x.mul_(em::tensor({2.f, 2.f, 4.f, 4.f}));
  x.div_(em::tensor({1.f, 2.f, 4.f, 3.f}));
  EMBER_CHECK_VALUES(x, Shape{4}, {2, 2, 2, 4});
  CHECK(x.dtype() == em::float32);

  // The other operand broadcasts.
  Tensor m = iota_tensor({2, 3});
  m += em::tensor({10.f, 20.f, 30.f});
  EMBER_CHECK_VALUES(m, (Shape{2, 3}), {10, 21, 32, 13, 24, 35});
  m *= em::tensor({{1.f}, {-1.f}});
  EMBER_CHECK_VALUES(m, (Shape{2, 3}), {10, 21, 32, -13, -24, -35});
  m -= em::scalar_tensor(1.0, em::float64);  // float64 0-d into float32: same kind, allowed
  EMBER_CHECK_VALUES(m, (Shape{2, 3}), {9, 20, 31, -14, -25, -36});
  CHECK(m.dtype() == em::float32);

  // Ints stay ints; results of the same kind are narrowed like PyTorch.
  Tensor i = em::tensor({1, 2, 3});
  i += 2;
  i *= em::tensor({int64_t{2}, int64_t{3}, int64_t{4}});
  i -= from_values({1, 0, 1}, {3}, em::bool_);
  CHECK(i.dtype() == em::int32);
  EMBER_CHECK_VALUES(i, Shape{3}, {5, 12, 19});
  Tensor f = em::tensor({1.5, 2.5});
  f += em::tensor({1, 2});
  CHECK(f.dtype() == em::float64);
  EMBER_CHECK_VALUES(f, Shape{2}, {2.5, 4.5});
  Tensor bb = from_values({1, 0, 0}, {3}, em::bool_);
  bb += from_values({0, 0, 1}, {3}, em::bool_);
  EMBER_CHECK_VALUES(bb, Shape{3}, {1, 0, 1});

  // In place on a view writes through to the base.
  Tensor base = iota_tensor({2, 4});
  base.slice(1, 0, 4, 2) += 100;
  EMBER_CHECK_VALUES(base, (Shape{2, 4}), {100, 1, 102, 3, 104, 5, 106, 7});
  base.t()[1] *= -1;
  EMBER_CHECK_VALUES(base, (Shape{2, 4}), {100, -1, 102, 3, 104, -5, 106, 7});
}

TEST_CASE("in-place dtype and shape rules", "[tensor][inplace][errors]") {
  Tensor i = em::tensor({1, 2, 3});
  CHECK_THROWS_AS(i += em::tensor({0.5f, 0.5f, 0.5f}), em::DTypeError);
  CHECK_THROWS_WITH(i += em::tensor({0.5f, 0.5f, 0.5f}),
                    Catch::Contains("add_: the result dtype float32 cannot be stored in the "
                                    "destination's int32"));
  CHECK_THROWS_AS(i += 0.5, em::DTypeError);
  CHECK_THROWS_WITH(i += 0.5, Catch::Contains("add_: the result dtype float32 cannot be stored "
                                              "in the destination's int32"));
  CHECK_THROWS_AS(i /= 2, em::DTypeError);
  CHECK_THROWS_WITH(i /= 2, Catch::Contains("div_: the result dtype float32 cannot be stored in "
                                            "the destination's int32"));
  CHECK_THROWS_AS(i.mul_(em::tensor({1.0, 1.0, 1.0})), em::DTypeError);
  CHECK_THROWS_WITH(i.mul_(em::tensor({1.0, 1.0, 1.0})),
                    Catch::Contains("mul_: the result dtype float64 cannot be stored in the "
                                    "destination's int32"));
  Tensor b = from_values({1, 0}, {2}, em::bool_);
  CHECK_THROWS_AS(b += 1, em::DTypeError);
  CHECK_THROWS_WITH(b += 1, Catch::Contains("add_: the result dtype int64 cannot be stored in the "
                                            "destination's bool"));
  CHECK_THROWS_AS(b -= b, em::DTypeError);
  CHECK_THROWS_WITH(b -= b, Catch::Contains("sub: a has dtype bool, which is not supported"));
  // The failed calls left the tensors alone.
  EMBER_CHECK_VALUES(i, Shape{3}, {1, 2, 3});
  EMBER_CHECK_VALUES(b, Shape{2}, {1, 0});

  // The result must fit the destination's shape.
  Tensor row = iota_tensor({1, 3});
  CHECK_THROWS_AS(row += iota_tensor({2, 3}), em::ShapeError);
  CHECK_THROWS_WITH(row += iota_tensor({2, 3}),
                    Catch::Contains("add_: the result shape [2,3] does not broadcast to the "
                                    "destination's [1,3]"));
  CHECK_THROWS_AS(row += iota_tensor({4}), em::ShapeError);
  CHECK_THROWS_WITH(row += iota_tensor({4}),
                    Catch::Contains("add: shapes [1,3] and [4] cannot be broadcast (dim -1: 3 vs 4)"));
  EMBER_CHECK_VALUES(row, (Shape{1, 3}), {0, 1, 2});

  // A 0-d destination cannot take a [3] result.
  Tensor s0 = em::scalar_tensor(1.0);
  CHECK_THROWS_AS(s0 += iota_tensor({3}), em::ShapeError);
  CHECK_THROWS_WITH(s0 += iota_tensor({3}),
                    Catch::Contains("add_: the result shape [3] does not broadcast to the "
                                    "destination's []"));
  // Nor a [1] result (PyTorch refuses it too); a [] result into [1] is fine.
  CHECK_THROWS_AS(s0 += em::tensor({2.f}), em::ShapeError);
  CHECK_THROWS_WITH(s0 += em::tensor({2.f}),
                    Catch::Contains("add_: the result shape [1] does not broadcast to the "
                                    "destination's []"));
  CHECK(s0.item<float>() == 1.f);
  Tensor s1 = iota_tensor({1});
  s1 += em::scalar_tensor(4.0);
  EMBER_CHECK_VALUES(s1, Shape{1}, {4});

  // Writing into an expanded view would write one element several times.
  Tensor small = iota_tensor({3});
  Tensor ex = small.expand({2, 3});
  CHECK_THROWS_AS(ex += 1, em::ValueError);
  CHECK_THROWS_WITH(ex += 1, Catch::Contains("add_: the destination has elements that share memory "
                                             "(an expanded view); clone() it first"));
  CHECK_THROWS_AS(ex.mul_(iota_tensor({2, 3})), em::ValueError);
  EMBER_CHECK_VALUES(small, Shape{3}, {0, 1, 2});
  // A size-1 expand (stride 0 on a dim of size 1) is fine.
  Tensor one = iota_tensor({1});
  Tensor e1 = one.expand({1, 1});
  e1 += 5;
  EMBER_CHECK_VALUES(one, Shape{1}, {5});
}

TEST_CASE("in-place ops on aliased operands equal the out-of-place result", "[tensor][inplace]") {
  SECTION("a += a") {
    Tensor a = random_tensor({5, 7}, em::float32, Domain::any(), 11);
    Tensor expected = a + a;
    a += a;
    EMBER_CHECK_CLOSE(a, expected);
    Tensor ai = random_tensor({3, 3}, em::int64, Domain::any(), 12);
    Tensor ei = ai * ai;
    ai *= ai;
    EMBER_CHECK_CLOSE(ai, ei);
  }
  SECTION("a += a.t() for square matrices") {
    for (int64_t n : {2, 5, 33}) {
      INFO("n = " << n);
      Tensor a = random_tensor({n, n}, em::float32, Domain::any(), 13);
      const auto av = values_of(a);
      std::vector<double> e;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j)
          e.push_back(cast_value(av[i * n + j] + av[j * n + i], em::float32));
      Tensor out_of_place = a + a.t();
      EMBER_CHECK_VALUES(out_of_place, (Shape{n, n}), e);
      a += a.t();
      EMBER_CHECK_VALUES(a, (Shape{n, n}), e);
      // The other way round.
      Tensor b = random_tensor({n, n}, em::int32, Domain::any(), 14);
      Tensor eb = b.t() - b;
      Tensor bt = b.t();
      bt -= b;
      EMBER_CHECK_CLOSE(bt, eb);
      EMBER_CHECK_CLOSE(b, eb.t());
    }
  }
  SECTION("overlapping slices") {
    const int64_t n = 40;
    Tensor a = random_tensor({n}, em::float64, Domain::any(), 15);
    Tensor expected = a.slice(0, 1, n) + a.slice(0, 0, n - 1);
    Tensor head = a.slice(0, 0, 1).clone();
    a.slice(0, 1, n) += a.slice(0, 0, n - 1);
    EMBER_CHECK_CLOSE(a.slice(0, 1, n), expected);
    EMBER_CHECK_CLOSE(a.slice(0, 0, 1), head);

    Tensor c = random_tensor({n}, em::int32, Domain::any(), 16);
    Tensor ec = c.slice(0, 0, n - 1) * c.slice(0, 1, n);
    c.slice(0, 0, n - 1) *= c.slice(0, 1, n);
    EMBER_CHECK_CLOSE(c.slice(0, 0, n - 1), ec);

    // 2-d: rows shifted by one, with a broadcast operand too.
    Tensor m = random_tensor({6, 5}, em::float32, Domain::any(), 17);
    Tensor em2 = m.slice(0, 1, 6) - m.slice(0, 0, 5) * 2;
    m.slice(0, 1, 6) -= m.slice(0, 0, 5) * 2;
    EMBER_CHECK_CLOSE(m.slice(0, 1, 6), em2);
    Tensor m2 = random_tensor({6, 5}, em::float32, Domain::any(), 18);
    Tensor em3 = m2.slice(0, 1, 6) + m2[0];
    m2.slice(0, 1, 6) += m2[0];
    EMBER_CHECK_CLOSE(m2.slice(0, 1, 6), em3);
  }
  SECTION("a strided view into its own base") {
    Tensor a = iota_tensor({8});
    a.slice(0, 0, 8, 2) += a.slice(0, 1, 8, 2);  // disjoint, same storage
    EMBER_CHECK_VALUES(a, Shape{8}, {1, 1, 5, 3, 9, 5, 13, 7});
    Tensor b = iota_tensor({8});
    b.slice(0, 2, 8) += b.slice(0, 0, 6);  // overlapping, shifted by 2
    EMBER_CHECK_VALUES(b, Shape{8}, {0, 1, 2, 4, 6, 8, 10, 12});
  }
}

TEST_CASE("item, to_vector and data", "[tensor][host]") {
  Tensor x = em::tensor({{1.5f, 2.5f, 3.5f}, {4.5f, 5.5f, 6.5f}});
  CHECK(x[1][2].item<float>() == 6.5f);
  CHECK(x[0][1].item<double>() == 2.5);
  CHECK(x[0][1].item<int>() == 2);
  CHECK(x[0][0].item<bool>());
  CHECK(x.slice(1, 2, 3).slice(0, 0, 1).item<float>() == 3.5f);
  CHECK(em::scalar_tensor(int64_t{1} << 60).item<int64_t>() == (int64_t{1} << 60));
  CHECK(em::scalar_tensor(true).item<int>() == 1);

  CHECK_THROWS_AS(x.item<float>(), em::ValueError);
  CHECK_THROWS_WITH(x.item<float>(),
                    Catch::Contains("item: a tensor with 6 elements cannot be converted to a "
                                    "scalar (shape [2,3])"));
  CHECK_THROWS_AS(em::zeros({0}).item<float>(), em::ValueError);
  CHECK_THROWS_WITH(em::zeros({0}).item<float>(),
                    Catch::Contains("item: a tensor with 0 elements cannot be converted"));

  CHECK(x.to_vector<float>() == std::vector<float>{1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f});
  CHECK(x.t().to_vector<float>() == std::vector<float>{1.5f, 4.5f, 2.5f, 5.5f, 3.5f, 6.5f});
  CHECK(x.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  CHECK(x.slice(1, 0, 3, 2).to_vector<double>() == std::vector<double>{1.5, 3.5, 4.5, 6.5});
  CHECK(em::tensor({0, 3, 0}).to_vector<bool>() == std::vector<bool>{false, true, false});
  CHECK(em::zeros({2, 0}).to_vector<float>().empty());
  CHECK(em::tensor({1.f}).expand({3}).to_vector<float>() == std::vector<float>{1.f, 1.f, 1.f});

  float* p = x.data<float>();
  CHECK(p[4] == 5.5f);
  p[4] = -1.f;
  CHECK(x[1][1].item<float>() == -1.f);
  // data() of a view points at its first element.
  Tensor row = x[1];
  CHECK(row.data<float>()[0] == 4.5f);
  CHECK(row.data<float>() == p + 3);
  CHECK(static_cast<void*>(row.data<float>()) == row.data_ptr());
  const Tensor cx = x;
  CHECK(cx.data<float>()[0] == 1.5f);
  Tensor i = em::tensor({int64_t{7}});
  CHECK(*i.data<int64_t>() == 7);

  CHECK_THROWS_AS(x.data<int64_t>(), em::DTypeError);
  CHECK_THROWS_WITH(x.data<int64_t>(),
                    Catch::Contains("data: the tensor has dtype float32, not int64"));
  CHECK_THROWS_AS(i.data<int32_t>(), em::DTypeError);
  CHECK_THROWS_WITH(i.data<int32_t>(), Catch::Contains("data: the tensor has dtype int64, not int32"));
  CHECK_THROWS_AS(from_values({1}, {1}, em::bool_).data<uint8_t>(), em::DTypeError);
  CHECK_THROWS_WITH(from_values({1}, {1}, em::bool_).data<uint8_t>(),
                    Catch::Contains("data: the tensor has dtype bool, not uint8"));
}

TEST_CASE("an undefined tensor throws ValueError", "[tensor][errors]") {
  Tensor u;
  CHECK_FALSE(u.defined());
  const std::string msg = "tensor: this Tensor is undefined";
  CHECK_THROWS_AS(u.shape(), em::ValueError);
  CHECK_THROWS_WITH(u.shape(), Catch::Contains(msg));
  CHECK_THROWS_AS(u.numel(), em::ValueError);
  CHECK_THROWS_WITH(u.numel(), Catch::Contains(msg));
  CHECK_THROWS_AS(u.dtype(), em::ValueError);
  CHECK_THROWS_AS(u.item<float>(), em::ValueError);
  CHECK_THROWS_WITH(u.item<float>(), Catch::Contains(msg));
  CHECK_THROWS_AS(u.to_vector<float>(), em::ValueError);
  CHECK_THROWS_WITH(u.to_vector<float>(), Catch::Contains(msg));
  CHECK_THROWS_AS(u.data<float>(), em::ValueError);
  CHECK_THROWS_AS(u.reshape({1}), em::ValueError);
  CHECK_THROWS_WITH(u.reshape({1}), Catch::Contains(msg));
  CHECK_THROWS_AS(u.t(), em::ValueError);
  CHECK_THROWS_AS(u.clone(), em::ValueError);
  CHECK_THROWS_WITH(u.clone(), Catch::Contains("undefined"));
  CHECK_THROWS_AS(u.to(em::float64), em::ValueError);
  CHECK_THROWS_AS(u.fill_(1), em::ValueError);
  CHECK_THROWS_AS(u += 1, em::ValueError);
  CHECK_THROWS_WITH(u += 1, Catch::Contains("undefined"));
  CHECK_THROWS_AS(u + 1, em::ValueError);
  CHECK_THROWS_WITH(u + 1, Catch::Contains("undefined"));
  Tensor d = em::zeros({2});
  CHECK_THROWS_AS(d.copy_(u), em::ValueError);
  CHECK_THROWS_WITH(d.copy_(u), Catch::Contains("undefined"));
  CHECK_THROWS_AS(d += u, em::ValueError);
  // Assigning a defined tensor makes it usable.
  u = em::ones({2});
  CHECK(u.defined());
  EMBER_CHECK_VALUES(u, Shape{2}, {1, 1});
}
