// compat::v1 graph mode: scopes, symbolic tensors, names, the TF1 surface
// and the errors of building a graph (after TF1's ops_test / graph tests).
#include <algorithm>
#include <cmath>
#include <thread>

#include <catch2/catch.hpp>

#include <ember/compat/v1.h>
#include <ember/ember.h>

namespace em = ember;
namespace tf = ember::compat::v1;
using em::Tensor;

TEST_CASE("graph mode builds nodes and runs nothing", "[compat][graph]") {
  tf::Graph g;
  auto scope = g.as_default();
  const auto before = em::memory_stats().allocations;
  auto a = tf::placeholder(em::float32, {2, 3}, "a");
  auto b = em::relu(a * 2.f) + a;  // plain ember ops build nodes too
  CHECK(em::memory_stats().allocations - before <= 2);  // only the wrapped scalar
  CHECK(b.shape() == em::Shape{2, 3});
  CHECK(b.dtype() == em::float32);
  CHECK(tf::tensor_name(b) == "add:0");
  CHECK(g.node_names() == std::vector<std::string>{"a", "const", "mul", "relu", "add"});
  CHECK_THROWS_WITH(b.to_vector<float>(), Catch::Contains("cannot read the values of graph tensor \"add:0\""));
  CHECK(b.str() == "<graph tensor \"add:0\" (float32 [2,3])>");
}

TEST_CASE("unique names follow TF: add, add_1, and a name given twice", "[compat][graph]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::constant(1.f), b = tf::constant(2.f);
  auto c1 = tf::add(a, b), c2 = tf::add(a, b), c3 = tf::add(a, b, "sum"), c4 = tf::add(a, b, "sum");
  CHECK(tf::tensor_name(c1) == "add:0");
  CHECK(tf::tensor_name(c2) == "add_1:0");
  CHECK(tf::tensor_name(c3) == "sum:0");
  CHECK(tf::tensor_name(c4) == "sum_1:0");
  // A given name does not use up the default one (TF: the next add is "add_2" only if taken).
  auto named3 = tf::multiply(a, b, "mul_7");
  CHECK(tf::tensor_name(named3) == "mul_7:0");
  CHECK(tf::tensor_name(tf::multiply(a, b)) == "mul:0");
  CHECK(tf::tensor_name(tf::add(a, b, "add_2")) == "add_2:0");
  CHECK(tf::tensor_name(tf::add(a, b)) == "add_3:0");  // add_2 is taken
  CHECK(tf::tensor_name(a) == "const:0");
  CHECK(tf::tensor_name(b) == "const_1:0");
  // A name on a call that returns an existing tensor gets an identity.
  auto same = tf::reshape(c1, {}, "r");
  CHECK(tf::tensor_name(same) == "r:0");
  CHECK(tf::tensor_name(c1) == "add:0");
  // get_tensor_by_name
  Tensor t = g.get_tensor_by_name("add_1:0");
  CHECK(tf::tensor_name(t) == "add_1:0");
  CHECK_THROWS_WITH(g.get_tensor_by_name("nope:0"), "get_tensor_by_name: the graph has no node \"nope\"");
  CHECK_THROWS_WITH(g.get_tensor_by_name("add"), Catch::Contains("names an operation"));
  CHECK_THROWS_WITH(g.get_tensor_by_name("add:1"),
                    "get_tensor_by_name: node \"add\" has 1 output, so \"add:1\" does not exist");
  auto op = tf::no_op();
  CHECK(op.name() == "no_op");
  CHECK(g.get_operation_by_name("no_op").node() == op.node());
  CHECK_THROWS_WITH(g.get_tensor_by_name("no_op:0"), Catch::Contains("is an operation without outputs"));
}

TEST_CASE("name_scope prefixes node and variable names as TF's does", "[compat][graph]") {
  tf::Graph g;
  Tensor x, y, z, scaled;
  tf::Operation init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 2}, "x");
    {
      auto layer = tf::name_scope("layer");
      CHECK(layer.name() == "layer/");
      tf::Variable w(em::ones({2, 2}), "w");
      CHECK(w.name() == "layer/w");
      y = tf::matmul(x, w);
      CHECK(tf::tensor_name(y) == "layer/matmul:0");
      {
        auto inner = tf::name_scope("act");
        z = tf::nn::relu(y, "out");
        CHECK(tf::tensor_name(z) == "layer/act/out:0");
        CHECK(tf::tensor_name(tf::multiply(z, 2.f)) == "layer/act/mul:0");  // the scalar's node too
      }
      // A given name and an identity made for it are in the scope too.
      CHECK(tf::tensor_name(tf::reshape(y, {-1, 2}, "flat")) == "layer/flat:0");
      // An assign op's default name follows its variable, wherever it is made.
      {
        auto other = tf::name_scope("train");
        CHECK(tf::tensor_name(w.assign_add(em::ones({2, 2}))) == "layer/w/assign_add:0");
        CHECK(tf::tensor_name(w.assign(em::ones({2, 2}), "reset")) == "layer/train/reset:0");
      }
    }
    {
      // A second "layer" scope is "layer_1/"; "layer/" re-enters the first; "" is the top level.
      auto again = tf::name_scope("layer");
      CHECK(again.name() == "layer_1/");
      CHECK(tf::tensor_name(tf::add(x, 1.f)) == "layer_1/add:0");
      auto back = tf::name_scope("layer/");
      CHECK(tf::tensor_name(tf::add(x, 1.f)) == "layer/add:0");
      auto top = tf::name_scope("");
      CHECK(tf::tensor_name(tf::add(x, 1.f)) == "add:0");
    }
    // The scope restored: names are top-level again, and "layer" as a node name is taken.
    scaled = tf::multiply(x, 3.f, "layer");
    CHECK(tf::tensor_name(scaled) == "layer_2:0");
    CHECK(tf::tensor_name(tf::add(x, 1.f)) == "add_1:0");
    init = tf::global_variables_initializer();
    CHECK_THROWS_WITH(tf::name_scope("bad name"), "name_scope: \"bad name\" is not a valid scope name");
    CHECK_THROWS_WITH(tf::name_scope("_x"), "name_scope: \"_x\" is not a valid scope name");
    CHECK_THROWS_WITH(tf::name_scope("a//b"), "name_scope: \"a//b\" is not a valid scope name");
  }
  CHECK_THROWS_WITH(tf::name_scope("a"), Catch::Contains("name_scope: needs a graph"));
  const std::vector<std::string> names = g.node_names();
  for (const char* n : {"layer/w", "layer/w/initial_value", "layer/w/assign", "layer/matmul", "layer/act/out"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  tf::Session sess(g);
  sess.run(init);
  const Tensor out = sess.run(g.get_tensor_by_name("layer/act/out:0"),
                              {{x, em::tensor(std::vector<float>{1, -3, 2, 2}, {2, 2})}});
  CHECK(out.to_vector<float>() == std::vector<float>{0, 0, 4, 4});
}

TEST_CASE("tf::gather and embedding_lookup refuse negative ids as TF does", "[compat][graph]") {
  // Eagerly at the call, in a graph when it runs (naming the node).
  const Tensor table = em::arange(10, em::float32).reshape({5, 2});
  CHECK_THROWS_WITH(tf::gather(table, em::tensor<int64_t>({-1})),
                    "index_select: index -1 is out of range for dim 0 of size 5");
  tf::Graph g;
  Tensor ids, rows, emb;
  {
    auto scope = g.as_default();
    ids = tf::placeholder(em::int64, {-1, 2}, "ids");
    rows = tf::gather(tf::constant(table), ids, 0, "rows");
    emb = tf::nn::embedding_lookup(tf::constant(table), tf::reshape(ids, {-1}), "emb");
  }
  tf::Session sess(g);
  CHECK(sess.run(rows, {{ids, em::tensor(std::vector<int64_t>{4, 0}, {1, 2})}}).to_vector<float>() ==
        std::vector<float>{8, 9, 0, 1});
  CHECK_THROWS_WITH(sess.run(rows, {{ids, em::tensor(std::vector<int64_t>{1, -5}, {1, 2})}}),
                    "Session::run: node \"rows/index_select\": index_select: index -5 is out of range for dim 0 of "
                    "size 5");
  CHECK_THROWS_WITH(sess.run(emb, {{ids, em::tensor(std::vector<int64_t>{-1, 0}, {1, 2})}}),
                    Catch::Contains("index -1 is out of range for dim 0 of size 5"));
}

TEST_CASE("unknown dims: static shapes keep -1 through ops", "[compat][graph]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto x = tf::placeholder(em::float32, {-1, 3}, "x");
  auto w = tf::constant(em::ones({3, 4}));
  auto y = tf::matmul(x, w);
  CHECK(tf::static_shape(y) == em::Shape{-1, 4});
  CHECK(tf::static_shape(tf::reduce_sum(y, {1})) == em::Shape{-1});
  CHECK(tf::static_shape(tf::reduce_sum(y, {0})) == em::Shape{4});
  CHECK(tf::static_shape(tf::reshape(y, {-1, 2})) == em::Shape{-1, 2});
  CHECK(tf::static_shape(tf::reshape(y, {-1})) == em::Shape{-1});
  CHECK(tf::static_shape(tf::transpose(y)) == em::Shape{4, -1});
  CHECK(tf::static_shape(tf::concat({y, y}, 1)) == em::Shape{-1, 8});
  CHECK(tf::static_shape(tf::stack({y, y})) == em::Shape{2, -1, 4});
  CHECK(tf::static_shape(tf::argmax(y, 1)) == em::Shape{-1});
  CHECK(tf::static_shape(x) == em::Shape{-1, 3});
  // Known shape errors are raised while building, as in TF.
  CHECK_THROWS_AS(tf::matmul(x, tf::constant(em::ones({4, 2}))), em::ShapeError);
  CHECK_THROWS_WITH(x.slice(0, 0, 2), Catch::Contains("slice: dim 0 has unknown size (-1) in graph mode"));
  CHECK_THROWS_WITH(tf::placeholder(em::float32, {-2}), Catch::Contains("placeholder: invalid size -2"));
}

TEST_CASE("unknown dims take the sizes a shape rule ties them to, as TF unifies them", "[compat][graph]") {
  tf::Graph g;
  Tensor x, mm, sum, joined, picked, lin, col, stacked, lifted, loss, grad, rows, merged, grad_x, swapped, images;
  tf::Operation init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, -1}, "x");
    const Tensor w = em::ones({5, 3});  // an eager tensor becomes a constant
    mm = tf::matmul(x, w, false, false, "mm");
    CHECK(tf::static_shape(mm) == em::Shape{-1, 3});
    CHECK(tf::static_shape(tf::matmul(tf::constant(em::ones({2, 4})), x)) == em::Shape{2, -1});
    sum = tf::add(x, em::ones({5}), "sum");
    CHECK(tf::static_shape(sum) == em::Shape{-1, 5});
    CHECK(tf::static_shape(tf::add(x, em::ones({1}))) == em::Shape{-1, -1});     // 1 says nothing
    CHECK(tf::static_shape(tf::add(x, em::ones({4, 1}))) == em::Shape{4, -1});
    CHECK(tf::static_shape(tf::add(x, em::ones({0, 1}))) == em::Shape{0, -1});  // 0 unifies too
    CHECK(tf::static_shape(tf::multiply(x, tf::placeholder(em::float32, {-1}))) == em::Shape{-1, -1});
    joined = tf::concat({x, tf::constant(em::ones({2, 5}))}, 0, "joined");
    CHECK(tf::static_shape(joined) == em::Shape{-1, 5});
    CHECK(tf::static_shape(tf::concat({x, tf::constant(em::ones({2, 5}))}, 1)) == em::Shape{2, -1});
    picked = tf::where(tf::greater(x, 0.f), x, em::zeros({5}), "picked");
    CHECK(tf::static_shape(picked) == em::Shape{-1, 5});
    lin = tf::nn::xw_plus_b(x, tf::constant(em::ones({5, 2})), tf::constant(em::ones({2})), "lin");
    CHECK(tf::static_shape(lin) == em::Shape{-1, 2});
    auto b3 = tf::placeholder(em::float32, {-1, 2, 5}, "b3");
    CHECK(tf::static_shape(tf::matmul(b3, tf::placeholder(em::float32, {4, -1, 3}))) == em::Shape{4, 2, 3});
    col = tf::reduce_sum(x, {1}, false, "col");
    CHECK(tf::static_shape(col) == em::Shape{-1});
    // Reshapes carry each unknown dim to where it lands (unsqueeze, stack),
    // and a reshape to a known shape fixes the one unknown dim.
    stacked = tf::stack({x, tf::constant(em::ones({2, 5}))}, 0, "stacked");
    CHECK(tf::static_shape(stacked) == em::Shape{2, 2, 5});
    lifted = x.unsqueeze(0);
    CHECK(tf::static_shape(lifted) == em::Shape{1, -1, -1});
    CHECK(tf::static_shape(tf::reshape(tf::placeholder(em::float32, {-1, 3}), {5, 3})) == em::Shape{5, 3});
    // A small inferred dim (40 / 20) and a flatten of two unknown dims: each
    // target dim is remade from the input dims it covers.
    rows = tf::reshape(tf::placeholder(em::float32, {-1}, "flat_in"), {-1, 20}, "rows");
    CHECK(tf::static_shape(rows) == em::Shape{-1, 20});
    // A -1 in the target is sized from the element count: never taken for a size read from a shape.
    swapped = tf::reshape(tf::placeholder(em::float32, {-1, 3}, "by3"), {3, -1}, "swapped");
    CHECK(tf::static_shape(swapped) == em::Shape{3, -1});
    CHECK(tf::static_shape(tf::reshape(tf::placeholder(em::float32, {-1, 2, 5}), {2, -1, 5})) == em::Shape{2, -1, 5});
    CHECK_THROWS_WITH(tf::reshape(tf::placeholder(em::float32, {4, 3}), {-1, 5}),
                      "reshape: shape [-1,5] is invalid for a tensor of shape [4,3]");
    CHECK_THROWS_WITH(tf::reshape(tf::placeholder(em::float32, {-1, 3}), {5, 7}),
                      "reshape: shape [5,7] is invalid for a tensor of shape [-1,3]");  // no stand-in count
    // Over unknown dims the -1 is sized when the graph runs, whatever the other sizes.
    images = tf::reshape(tf::placeholder(em::float32, {-1}, "pixels"), {-1, 28, 28});
    CHECK(tf::static_shape(images) == em::Shape{-1, 28, 28});
    CHECK(tf::static_shape(tf::reshape(tf::placeholder(em::float32, {-1}), {-1, 10010})) == em::Shape{-1, 10010});
    CHECK(tf::static_shape(tf::reshape(tf::placeholder(em::float32, {-1, 2}), {-1, 64})) == em::Shape{-1, 64});
    CHECK_THROWS_WITH(tf::reshape(tf::placeholder(em::float32, {-1}), {0, -1}),
                      "reshape: shape [0,-1] is invalid for a tensor of shape [-1] (a -1 next to a 0 has no size)");
    auto cube = tf::placeholder(em::float32, {2, -1, -1}, "cube");
    merged = cube.flatten(0, 1);
    CHECK(tf::static_shape(merged) == em::Shape{-1, -1});
    CHECK_THROWS_AS(x.reshape({-2, 5}), em::ShapeError);
    CHECK_THROWS_WITH(x.reshape({-2, 5}), "reshape: invalid size -2 in shape [-2,5]");
    // Gradients through a product with an unknown inner dim, to the weights and to x itself.
    tf::Variable w2(em::ones({5, 3}), "w2");
    loss = tf::reduce_mean(tf::square(tf::add(tf::matmul(x, w2), em::zeros({3}))));
    grad = tf::gradients(loss, w2.value());
    CHECK(tf::static_shape(grad) == em::Shape{5, 3});
    grad_x = tf::gradients(tf::reduce_sum(tf::add(tf::matmul(x, w2), em::ones({3}))), x);
    CHECK(tf::static_shape(grad_x) == em::Shape{-1, 5});  // x's dim 1 meets w2's 5, as in TF
    init = tf::global_variables_initializer();
    // A known conflict is still an error while building; the message shows -1, not the stand-in size.
    auto x4 = tf::placeholder(em::float32, {-1, 4}, "x4");
    CHECK_THROWS_AS(tf::matmul(x4, w), em::ShapeError);
    CHECK_THROWS_WITH(tf::matmul(x4, w),
                      "matmul: a [-1,4] and b [5,3] do not line up (a dim -1 is 4, b dim -2 is 5)");
    CHECK_THROWS_WITH(tf::add(x4, em::ones({5})), "add: shapes [-1,4] and [5] cannot be broadcast (dim -1: 4 vs 5)");
  }
  // The session checks the real sizes.
  tf::Session sess(g);
  sess.run(init);
  const Tensor feed = em::arange(10, em::float32).reshape({2, 5});
  const auto outs = sess.run({mm, sum, joined, picked, lin}, {{x, feed}});
  CHECK(outs[0].to_vector<float>() == std::vector<float>{10, 10, 10, 35, 35, 35});
  CHECK(outs[1].shape() == em::Shape{2, 5});
  CHECK(outs[1].to_vector<float>()[9] == 10.f);
  CHECK(outs[2].shape() == em::Shape{4, 5});
  CHECK(outs[3].to_vector<float>()[0] == 0.f);
  CHECK(outs[4].to_vector<float>() == std::vector<float>{11, 11, 36, 36});
  CHECK(sess.run(col, {{x, em::ones({3, 7})}}).to_vector<float>() == std::vector<float>{7, 7, 7});
  CHECK(sess.run(stacked, {{x, feed}}).shape() == em::Shape{2, 2, 5});
  CHECK(sess.run(lifted, {{x, em::ones({3, 4})}}).shape() == em::Shape{1, 3, 4});
  // Row sums 15 and 2 (logits [[15]*3, [2]*3]); d mean(logits^2) / dw[k, j] = (15 x0k + 2 x1k) / 3.
  const Tensor xg = em::tensor({{1.f, 2.f, 3.f, 4.f, 5.f}, {0.f, 1.f, 0.f, 1.f, 0.f}});
  const std::vector<float> dw = sess.run(grad, {{x, xg}}).to_vector<float>();
  const float want_rows[5] = {5.f, 32.f / 3, 15.f, 62.f / 3, 25.f};
  REQUIRE(dw.size() == 15);
  for (int k = 0; k < 5; ++k)
    for (int j = 0; j < 3; ++j) CHECK(dw[static_cast<std::size_t>(k * 3 + j)] == Approx(want_rows[k]));
  // d sum(x @ w2 + 1) / dx = ones @ w2^T: every element 3.
  CHECK(sess.run(grad_x, {{x, xg}}).to_vector<float>() == std::vector<float>(10, 3.f));
  CHECK(sess.run(rows, {{g.get_tensor_by_name("flat_in:0"), em::arange(40, em::float32)}}).shape() ==
        em::Shape{2, 20});
  CHECK_THROWS_AS(sess.run(rows, {{g.get_tensor_by_name("flat_in:0"), em::arange(30, em::float32)}}), em::ShapeError);
  CHECK_THROWS_WITH(sess.run(rows, {{g.get_tensor_by_name("flat_in:0"), em::arange(30, em::float32)}}),
                    Catch::Contains("reshape: a tensor of shape [30] cannot be reshaped to [-1,20]"));
  CHECK(sess.run(images, {{g.get_tensor_by_name("pixels:0"), em::ones({2 * 784})}}).shape() == em::Shape{2, 28, 28});
  CHECK_THROWS_WITH(sess.run(images, {{g.get_tensor_by_name("pixels:0"), em::ones({785})}}),
                    "Session::run: node \"reshape_5\": reshape: a tensor of shape [785] cannot be reshaped to "
                    "[-1,28,28]");
  const Tensor by3 = em::arange(12, em::float32).reshape({4, 3});
  CHECK(em::equal(sess.run(swapped, {{g.get_tensor_by_name("by3:0"), by3}}), by3.reshape({3, 4})));
  const Tensor c = em::arange(24, em::float32).reshape({2, 3, 4});
  const Tensor got = sess.run(merged, {{g.get_tensor_by_name("cube:0"), c}});
  CHECK(got.shape() == em::Shape{6, 4});
  CHECK(em::equal(got, c.reshape({6, 4})));
  const Tensor wrong = em::ones({2, 4});
  CHECK_THROWS_AS(sess.run(mm, {{x, wrong}}), em::ShapeError);
  CHECK_THROWS_WITH(sess.run(mm, {{x, wrong}}), Catch::Contains("\"mm\""));
  CHECK_THROWS_WITH(sess.run(mm, {{x, wrong}}), Catch::Contains("do not line up"));
  CHECK_THROWS_WITH(sess.run(sum, {{x, wrong}}), Catch::Contains("cannot be broadcast"));
}

TEST_CASE("in-place ops on graph tensors make new nodes typed like the eager write", "[compat][graph]") {
  tf::Graph g;
  Tensor x, grown, filled, counts, one_row, spread, h;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, -1}, "x");
    grown = tf::identity(x);
    grown += em::tensor({1.f, 2.f, 3.f});  // as Python's x += b: a new node; the unknown dim meets 3
    CHECK(tf::static_shape(grown) == em::Shape{-1, 3});
    // copy_ broadcasts and casts into the destination, as eagerly.
    filled = tf::zeros({2, 3}, em::float64);
    filled.copy_(tf::constant(em::tensor({1.f, 2.f, 3.f})));
    CHECK(tf::static_shape(filled) == em::Shape{2, 3});
    CHECK(filled.dtype() == em::float64);
    counts = tf::constant(em::tensor({1, 2}));
    counts += tf::constant(em::tensor(std::vector<int64_t>{7, 8}));  // int64 result stored as int32
    CHECK(counts.dtype() == em::int32);
    // A destination of one row takes an unknown number of rows only if the run gives one.
    one_row = tf::zeros({1, 3});
    one_row += tf::placeholder(em::float32, {-1, 3}, "rows");
    CHECK(tf::static_shape(one_row) == em::Shape{1, 3});
    auto known = tf::zeros({3});
    CHECK_THROWS_AS(known += tf::constant(em::ones({4})), em::ShapeError);
    CHECK_THROWS_WITH(known += tf::constant(em::ones({2, 3})),
                      "add_: the result shape [2,3] does not broadcast to the destination's [3]");
    // Into unknown dims the result is conformed to the destination's shape in the run.
    spread = tf::placeholder(em::float32, {-1, 3}, "unknown_rows");
    spread.copy_(tf::constant(em::ones({3})));
    CHECK(tf::static_shape(spread) == em::Shape{-1, 3});
    h = tf::identity(x);
    h += tf::constant(em::ones({5, 3}));  // only an x of 5 rows (or 1) and 3 columns fits, as eagerly
    CHECK(tf::static_shape(h) == em::Shape{5, 3});
    auto ints = tf::constant(em::tensor({1, 2}));
    CHECK_THROWS_AS(ints += 0.5f, em::DTypeError);
    CHECK_THROWS_WITH(ints += 0.5f, "add_: the result dtype float32 cannot be stored in the destination's int32");
    CHECK_THROWS_WITH(tf::stack({x, tf::constant(em::ones({2, 3})), tf::constant(em::ones({4, 3}))}),
                      "stack: tensor 2 has shape [4,3] but tensor 1 has [2,3]; all must match");
    CHECK_THROWS_WITH(tf::stack({x, tf::constant(em::ones({2}))}),
                      "stack: tensor 1 has shape [2] but tensor 0 has [-1,-1]; all must match");
  }
  tf::Session sess(g);
  const auto outs = sess.run({grown, filled, counts}, {{x, em::ones({2, 3})}});
  CHECK(outs[0].to_vector<float>() == std::vector<float>{2, 3, 4, 2, 3, 4});
  CHECK(outs[1].dtype() == em::float64);
  CHECK(outs[1].to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  CHECK(outs[2].dtype() == em::int32);
  CHECK(outs[2].to_vector<int32_t>() == std::vector<int32_t>{8, 10});
  const Tensor rows = g.get_tensor_by_name("rows:0");
  CHECK(sess.run(one_row, {{rows, em::full({1, 3}, 2.f)}}).to_vector<float>() == std::vector<float>{2, 2, 2});
  CHECK_THROWS_WITH(sess.run(one_row, {{rows, em::ones({2, 3})}}), Catch::Contains("expand"));
  CHECK_THROWS_WITH(sess.run(grown, {{x, em::ones({2, 4})}}), Catch::Contains("cannot be broadcast"));
  CHECK_THROWS_WITH(sess.run(grown, {{x, em::ones({2, 1})}}),  // the eager write fails too
                    Catch::Contains("expand: shape [2,3] cannot be expanded to [2,1]"));
  CHECK(sess.run(spread, {{g.get_tensor_by_name("unknown_rows:0"), em::zeros({2, 3})}}).to_vector<float>() ==
        std::vector<float>(6, 1.f));
  CHECK(sess.run(h, {{x, em::ones({5, 3})}}).to_vector<float>() == std::vector<float>(15, 2.f));
  CHECK_THROWS_WITH(sess.run(h, {{x, em::ones({1, 3})}}), Catch::Contains("cannot be expanded to [1,3]"));
}

TEST_CASE("zeros_like and friends of graph tensors take the run's shape; sizes read from unknown dims are refused",
          "[compat][graph]") {
  tf::Graph g;
  Tensor x, shifted, ones_i, halves, zl;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 3}, "x");
    shifted = x + em::zeros_like(x);
    ones_i = em::ones_like(x, em::int32);
    halves = em::full_like(x, 2.5);
    zl = tf::zeros_like(x, em::float64, "zl");
    CHECK(tf::static_shape(shifted) == em::Shape{-1, 3});
    CHECK(tf::static_shape(ones_i) == em::Shape{-1, 3});
    CHECK(ones_i.dtype() == em::int32);
    CHECK(tf::tensor_name(zl) == "zl:0");
    CHECK(tf::static_shape(tf::ones_like(tf::constant(em::ones({2})))) == em::Shape{2});
    // x.shape() holds no value for the unknown dim: refused, not a tensor of the stand-in size.
    CHECK_THROWS_AS(tf::constant(em::ones({1, 3})).expand(x.shape()), em::ValueError);
    CHECK_THROWS_WITH(tf::constant(em::ones({1, 3})).expand(x.shape()),
                      "expand: the result shape [-1,3] takes a size from an unknown (-1) dim of a graph tensor's "
                      "shape, which has no value while the graph is built; take such sizes from the tensor itself "
                      "(tf::zeros_like(x), broadcasting against x)");
    CHECK_THROWS_WITH(tf::zeros(x.shape()), Catch::StartsWith("fill: the result shape [-1,3] takes a size"));
    // A real dim of the stand-in's size, known on an input, is just a size.
    CHECK(tf::static_shape(tf::placeholder(em::float32, {720720}) * 2.f) == em::Shape{720720});
    CHECK_THROWS_WITH(em::randn_like(x), "randn_like: graph tensor \"x:0\" (float32 [-1,3]) may have dims known "
                                         "only when the graph runs; draw with a known shape (tf::random_normal(shape))");
  }
  CHECK_THROWS_WITH(em::zeros_like(x), Catch::StartsWith("zeros_like: graph tensor \"x:0\" (float32 [-1,3]) has no "
                                                         "value here; ops on graph tensors must run inside"));
  tf::Session sess(g);
  const auto r = sess.run({shifted, ones_i, halves, zl}, {{x, em::ones({2, 3})}});
  CHECK(r[0].to_vector<float>() == std::vector<float>(6, 1.f));
  CHECK(r[1].to_vector<int32_t>() == std::vector<int32_t>(6, 1));
  CHECK(r[2].to_vector<float>() == std::vector<float>(6, 2.5f));
  CHECK(r[3].dtype() == em::float64);
  CHECK(r[3].shape() == em::Shape{2, 3});
  // A fully known shape gives constants, as in TF: w need not be initialized, nor k fed.
  tf::Graph g2;
  tf::Variable w, acc, acc2;
  Tensor k, kz;
  tf::Operation init_acc;
  {
    auto scope = g2.as_default();
    w = tf::Variable(em::tensor({1.f, 2.f}), "w");
    acc = tf::Variable(tf::zeros_like(w), "acc");
    acc2 = tf::Variable(em::ones_like(w.value()), "acc2");
    k = tf::placeholder(em::float32, {2}, "k");
    kz = tf::zeros_like(k);
    init_acc = tf::variables_initializer({acc, acc2});
  }
  tf::Session s2(g2);
  s2.run(init_acc);
  CHECK(s2.run(acc).to_vector<float>() == std::vector<float>{0.f, 0.f});
  CHECK(s2.run(acc2).to_vector<float>() == std::vector<float>{1.f, 1.f});
  CHECK(s2.run(kz).to_vector<float>() == std::vector<float>{0.f, 0.f});
}

TEST_CASE("gather and embedding_lookup take ids of any shape, unknown dims included", "[compat][graph]") {
  tf::Graph g;
  Tensor ids, ids2, rows, grid, cols, one, grad, from_unknown;
  tf::Variable table;
  tf::Operation init;
  {
    auto scope = g.as_default();
    table = tf::Variable(em::arange(12, em::float32).reshape({4, 3}), "table");
    ids = tf::placeholder(em::int64, {-1}, "ids");
    ids2 = tf::placeholder(em::int32, {-1, -1}, "ids2");
    rows = tf::nn::embedding_lookup(table, ids);
    grid = tf::nn::embedding_lookup(table, ids2, "grid");
    cols = tf::gather(table, tf::constant(em::tensor(std::vector<int64_t>{2, 0})), 1);
    one = tf::gather(table, tf::constant(int64_t{3}));
    CHECK(tf::static_shape(rows) == em::Shape{-1, 3});
    CHECK(tf::static_shape(grid) == em::Shape{-1, -1, 3});
    CHECK(tf::tensor_name(grid) == "grid:0");
    CHECK(tf::static_shape(cols) == em::Shape{4, 2});
    CHECK(tf::static_shape(one) == em::Shape{3});
    // Params with unknown dims, and ids with several.
    from_unknown = tf::gather(tf::placeholder(em::float32, {-1, 3}, "P"), ids2);
    CHECK(tf::static_shape(from_unknown) == em::Shape{-1, -1, 3});
    // Sequence ids of any length (the flattened lookup splits at run time).
    CHECK(tf::static_shape(tf::nn::embedding_lookup(table, tf::placeholder(em::int64, {-1, 50}))) ==
          em::Shape{-1, 50, 3});
    // d sum(rows) / d table counts how often each row was picked.
    grad = tf::gradients(tf::reduce_sum(grid), table);
    CHECK_THROWS_WITH(tf::gather(tf::constant(1.f), ids), "gather: params must have at least 1 dim (got a 0-d tensor)");
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  CHECK(sess.run(rows, {{ids, em::tensor(std::vector<int64_t>{3, 1})}}).to_vector<float>() ==
        std::vector<float>{9, 10, 11, 3, 4, 5});
  const auto r = sess.run({grid, grad}, {{ids2, em::tensor({{1, 1, 2}, {0, 3, 3}}).to(em::int32)}});
  CHECK(r[0].shape() == em::Shape{2, 3, 3});
  CHECK(em::equal(r[0][1][2], em::tensor({9.f, 10.f, 11.f})));
  CHECK(r[1].to_vector<float>() == std::vector<float>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2});
  CHECK(sess.run(cols).to_vector<float>() == std::vector<float>{2, 0, 5, 3, 8, 6, 11, 9});
  CHECK(sess.run(one).to_vector<float>() == std::vector<float>{9, 10, 11});
  const Tensor picked = sess.run(from_unknown, {{g.get_tensor_by_name("P:0"), em::arange(6, em::float32).reshape({2, 3})},
                                                {ids2, em::tensor({{1}, {0}, {1}}).to(em::int32)}});
  CHECK(picked.shape() == em::Shape{3, 1, 3});
  CHECK(picked.to_vector<float>() == std::vector<float>{3, 4, 5, 0, 1, 2, 3, 4, 5});
  // Indices are checked when the graph runs.
  CHECK_THROWS_AS(sess.run(rows, {{ids, em::tensor(std::vector<int64_t>{7})}}), em::IndexError);
  CHECK_THROWS_WITH(sess.run(rows, {{ids, em::tensor(std::vector<int64_t>{7})}}),
                    Catch::Contains("index_select: index 7 is out of range for dim 0 of size 4"));
  // Eagerly the same calls are plain ops.
  CHECK(em::equal(tf::gather(em::arange(6).reshape({3, 2}), em::tensor({{2, 0}}), 0),
                  em::tensor(std::vector<int64_t>{4, 5, 0, 1}).reshape({1, 2, 2})));
}

TEST_CASE("tf::shape gives sizes known only when the graph runs: reshape, random draws, dropout", "[compat][graph]") {
  tf::Graph g;
  Tensor ids, ids2, back, back2, whole, x, noise, uniform, dropped, kp;
  tf::Variable table;
  tf::Operation init;
  {
    auto scope = g.as_default();
    table = tf::Variable(em::arange(30, em::float32).reshape({10, 3}), "table");
    ids = tf::placeholder(em::int32, {-1, 5}, "ids");
    ids2 = tf::placeholder(em::int32, {-1, -1}, "ids2");
    // The flatten-and-restore idiom: tf.reshape(out, [tf.shape(ids)[0], -1, 3]).
    const Tensor flat = tf::reshape(tf::nn::embedding_lookup(table, ids), {-1, 3});
    back = tf::reshape(flat, {tf::shape(ids)[0], -1, 3});
    CHECK(tf::static_shape(back) == em::Shape{-1, -1, 3});
    CHECK(tf::static_shape(tf::reshape(flat, {tf::shape(ids)[1], -1})) == em::Shape{5, -1});  // a known dim is a number
    const Tensor flat2 = tf::reshape(tf::nn::embedding_lookup(table, ids2), {-1, 3});
    back2 = tf::reshape(flat2, {tf::shape(ids2)[0], tf::shape(ids2)[-1], 3});
    whole = tf::reshape(flat2, tf::shape(tf::nn::embedding_lookup(table, ids2)));
    CHECK(tf::static_shape(whole) == em::Shape{-1, -1, 3});
    // x.shape() holds stand-in numbers for unknown dims: refused, never a silently wrong shape.
    CHECK_THROWS_AS(tf::reshape(flat, {ids.shape(0), -1, 3}), em::ShapeError);
    CHECK_THROWS_WITH(tf::reshape(flat, {ids.shape(0), -1, 3}),
                      "reshape: the target [-1,-1,3] of a tensor of shape [-1,3] has a -1 next to a size read from "
                      "an unknown (-1) dim of a graph tensor's shape (x.shape()), which has no value while the graph "
                      "is built; write such sizes as tf::shape(x)[k]");
    CHECK_THROWS_WITH(tf::reshape(flat, {ids.shape(0), 5, 3}),
                      "reshape: a tensor of shape [-1,3] cannot be reshaped to [-1,5,3]: sizes read from unknown (-1) "
                      "dims of a graph tensor's shape (x.shape()) have no value while the graph is built; write such "
                      "sizes as tf::shape(x)[k]");
    CHECK_THROWS_WITH(tf::reshape(flat, {tf::shape(ids)[0], -1, -1}),
                      "reshape: only one dim can be -1 (shape [-1,-1,-1])");
    // Draws shaped by a tensor in the run; dropout.
    x = tf::placeholder(em::float32, {-1, 4}, "x");
    noise = tf::random_normal({tf::shape(x)[0], 2}, 0.0, 1.0, "noise");
    uniform = tf::random_uniform(tf::shape(x), 2.0, 3.0, em::float64);
    CHECK(tf::static_shape(noise) == em::Shape{-1, 2});
    CHECK(uniform.dtype() == em::float64);
    kp = tf::placeholder_with_default(tf::constant(1.0f), {}, "keep_prob");
    dropped = tf::nn::dropout(x, kp);
    CHECK(tf::static_shape(dropped) == em::Shape{-1, 4});
    CHECK_THROWS_WITH(tf::random_uniform({tf::shape(x)[0], -1}),
                      "random_uniform: -1 is not a size here (shape [-1,-1]); read unknown sizes from a tensor, e.g. "
                      "tf::shape(x)[0]");
    CHECK_THROWS_WITH(tf::random_uniform({2}, 3.0, 2.0), "random_uniform: minval 3 must be below maxval 2");
    CHECK_THROWS_WITH(tf::random_uniform({tf::shape(x)[0]}, 0.0, 1.0, em::float16),
                      "random_uniform: samples are float32 or float64 (got float16)");
    CHECK_THROWS_WITH(tf::reshape(x, {tf::shape(x)[0], -2}), "reshape: invalid size -2 in a shape");
    CHECK_THROWS_WITH(tf::reshape(x, {tf::Dim(x, 2)}), "reshape: dim 2 of a tensor of rank 2");
    CHECK_THROWS_WITH(tf::nn::dropout(x, 1.5), "dropout: keep_prob must be in (0, 1] (got 1.5)");
    CHECK_THROWS_WITH(tf::nn::dropout(tf::placeholder(em::int32, {2}), 0.5),
                      "dropout: x has dtype int32; dropout needs a floating tensor");
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  const auto r = sess.run({back, back2, whole},
                          {{ids, em::tensor({{1, 2, 3, 4, 5}, {0, 0, 0, 0, 9}}).to(em::int32)},
                           {ids2, em::tensor({{9}, {1}, {2}}).to(em::int32)}});
  CHECK(r[0].shape() == em::Shape{2, 5, 3});
  CHECK(em::equal(r[0][1][4], em::tensor({27.f, 28.f, 29.f})));
  CHECK(r[1].shape() == em::Shape{3, 1, 3});
  CHECK(em::equal(r[1][2][0], em::tensor({6.f, 7.f, 8.f})));
  CHECK(r[2].shape() == em::Shape{3, 1, 3});
  const Tensor ones = em::ones({2000, 4});
  const Tensor n1 = sess.run(noise, {{x, ones}}), n2 = sess.run(noise, {{x, ones}});
  CHECK(n1.shape() == em::Shape{2000, 2});
  CHECK_FALSE(em::equal(n1, n2));  // drawn again on every run
  CHECK(std::abs(em::mean(n1).item<float>()) < 0.1f);
  const Tensor u = sess.run(uniform, {{x, em::ones({5, 4})}});
  CHECK(u.shape() == em::Shape{5, 4});
  CHECK(em::min(u).item<double>() >= 2.0);
  CHECK(em::max(u).item<double>() < 3.0);
  CHECK(em::equal(sess.run(dropped, {{x, ones}}), ones));  // keep_prob 1: the identity
  const Tensor half = em::scalar_tensor(0.5f);
  const Tensor d1 = sess.run(dropped, {{x, ones}, {kp, half}}), d2 = sess.run(dropped, {{x, ones}, {kp, half}});
  const std::vector<float> v = d1.to_vector<float>();
  CHECK(std::all_of(v.begin(), v.end(), [](float e) { return e == 0.f || e == 2.f; }));  // kept ones scaled by 2
  const double kept = static_cast<double>(std::count(v.begin(), v.end(), 2.f)) / static_cast<double>(v.size());
  CHECK(kept == Approx(0.5).margin(0.03));  // 8000 draws: 6 sigma
  CHECK_FALSE(em::equal(d1, d2));
  CHECK_THROWS_WITH(tf::reshape(em::ones({4}), {tf::Dim(x, 0)}),
                    "reshape: a size read from a graph tensor needs the graph's scope");
  // Sizes linked to a tensor need their feeds.
  CHECK_THROWS_WITH(sess.run(noise), Catch::Contains("placeholder \"x\" (float32 [-1,4]) was not fed"));
}

TEST_CASE("a tf::Variable in arithmetic stands for its value", "[compat][graph]") {
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable w(em::ones({3, 2}), "w"), b(em::tensor({1.f, 2.f}), "b");
  const Tensor x = tf::placeholder(em::float32, {-1, 3}, "x");
  const Tensor y = tf::matmul(x, w) + b;                          // Tensor + Variable
  const Tensor z = b * 2.f - b / b + (-b) + b * b + 1.f + b;       // 2b + b^2
  const Tensor r = 10.f - b;
  tf::Session sess(g);
  sess.run(tf::global_variables_initializer());
  CHECK(sess.run(y, {{x, em::ones({1, 3})}}).to_vector<float>() == std::vector<float>{4.f, 5.f});
  CHECK(sess.run(z).to_vector<float>() == std::vector<float>{3.f, 8.f});
  CHECK(sess.run(r).to_vector<float>() == std::vector<float>{9.f, 8.f});
}

TEST_CASE("divide and reduce_mean of integers follow TF: truediv in float64, an integer mean", "[compat][graph]") {
  tf::Graph g;
  Tensor q32, q8, qf, qs, m_rows, m_all, m_unknown, x;
  {
    auto scope = g.as_default();
    const Tensor a = tf::constant(em::tensor({7, -7, 1})), b = tf::constant(em::tensor({2, 2, 3}));
    q32 = tf::divide(a, b);
    CHECK(q32.dtype() == em::float64);
    q8 = tf::divide(tf::constant(em::tensor(std::vector<uint8_t>{7})), 2);
    CHECK(q8.dtype() == em::float32);
    qf = tf::divide(tf::constant(em::tensor({7.f})), 2);
    CHECK(qf.dtype() == em::float32);
    qs = tf::divide(tf::constant(int64_t{1}), 3);
    const Tensor m = tf::constant(em::tensor({{1, 2}, {3, 6}, {-7, 0}}));
    m_rows = tf::reduce_mean(m, {1});
    m_all = tf::reduce_mean(m);
    CHECK(m_rows.dtype() == em::int32);
    x = tf::placeholder(em::int64, {-1, 2}, "x");
    m_unknown = tf::reduce_mean(x, {0}, true);
    CHECK(tf::static_shape(m_unknown) == em::Shape{1, 2});
  }
  tf::Session sess(g);
  CHECK(sess.run(q32).to_vector<double>() == std::vector<double>{3.5, -3.5, 1.0 / 3.0});
  CHECK(sess.run(q8).item<float>() == 3.5f);
  CHECK(sess.run(qs).item<double>() == 1.0 / 3.0);
  CHECK(sess.run(m_rows).to_vector<int32_t>() == std::vector<int32_t>{1, 4, -3});  // -3.5 rounds toward zero
  CHECK(sess.run(m_all).item<int32_t>() == 0);                                       // 5 / 6
  CHECK(sess.run(m_unknown, {{x, em::tensor({{1, 10}, {2, 11}, {4, 12}}).to(em::int64)}}).to_vector<int64_t>() ==
        std::vector<int64_t>{2, 11});
  // Eagerly the same.
  CHECK(tf::reduce_mean(em::tensor({-3, -4})).item<int32_t>() == -3);
}

TEST_CASE("scopes nest and restore; ops outside a scope run eagerly", "[compat][graph]") {
  tf::Graph g1, g2;
  {
    auto s1 = g1.as_default();
    auto a = tf::constant(1.f, "a");
    CHECK(tf::get_default_graph() == g1);
    {
      auto s2 = g2.as_default();
      auto b = tf::constant(2.f, "b");
      CHECK(tf::get_default_graph() == g2);
      CHECK(g2.num_nodes() == 1);
      // Tensors of different graphs cannot be mixed.
      CHECK_THROWS_WITH(tf::add(a, b), Catch::Contains("add: graph tensor \"a:0\" (float32 []) is from another "
                                                       "graph; tensors of different graphs cannot be mixed"));
    }
    CHECK(tf::get_default_graph() == g1);
    auto c = a + 1.f;
    CHECK(g1.num_nodes() == 3);
    (void)c;
  }
  CHECK_THROWS_WITH(tf::get_default_graph(), Catch::Contains("get_default_graph: needs a graph"));
  CHECK_THROWS_WITH(tf::placeholder(em::float32, {1}), Catch::Contains("placeholder: needs a graph"));
  // Outside a scope the TF names are eager ops.
  Tensor r = tf::add(em::tensor({1.f, 2.f}), 1.f);
  CHECK(r.to_vector<float>() == std::vector<float>{2.f, 3.f});
  CHECK(tf::nn::relu(em::tensor({-1.f, 2.f})).to_vector<float>() == std::vector<float>{0.f, 2.f});
}

TEST_CASE("a graph tensor used without its scope is an error, not an eager run", "[compat][graph]") {
  tf::Graph g;
  Tensor a;
  {
    auto scope = g.as_default();
    a = tf::placeholder(em::float32, {2}, "a");
  }
  CHECK_THROWS_WITH(a + 1.f, Catch::Contains("add: input 0 is graph tensor \"a:0\" (float32 [2]), which has no "
                                             "value here; ops on graph tensors must run inside the graph's scope"));
  std::string err;
  std::thread t([&] {
    try {
      (void)em::exp(a);
    } catch (const em::ValueError& e) {
      err = e.what();
    }
  });
  t.join();
  CHECK_THAT(err, Catch::Contains("exp: input 0 is graph tensor \"a:0\""));
  Tensor dst = em::zeros({2});
  CHECK_THROWS_WITH(dst.copy_(a), Catch::Contains("copy: input 0 is graph tensor \"a:0\""));
  CHECK_THROWS_WITH(a.to_vector<float>(), Catch::Contains("cannot read the values of graph tensor \"a:0\""));
  // A scope on another thread builds into the same graph.
  std::thread t2([&] {
    auto scope = g.as_default();
    (void)tf::identity(a, "from_thread");
  });
  t2.join();
  CHECK(g.get_operation_by_name("from_thread").defined());
}

TEST_CASE("the TF1 op names build the ops they name", "[compat][graph]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::placeholder(em::float32, {2, 2}, "a");
  auto b = tf::placeholder(em::float32, {2, 2}, "b");
  std::vector<std::pair<Tensor, std::string>> made = {
      {tf::add(a, b), "add"},          {tf::subtract(a, b), "sub"},        {tf::multiply(a, b), "mul"},
      {tf::divide(a, b), "div"},       {tf::matmul(a, b), "matmul"},       {tf::reduce_sum(a), "sum"},
      {tf::reduce_mean(a), "mean"},    {tf::reduce_max(a), "max"},         {tf::reduce_min(a), "min"},
      {tf::argmax(a, 0), "argmax"},    {tf::cast(a, em::int32), "copy"},   {tf::square(a), "mul"},
      {tf::sqrt(a), "sqrt"},           {tf::exp(a), "exp"},                {tf::log(a), "log"},
      {tf::maximum(a, b), "maximum"},  {tf::minimum(a, b), "minimum"},     {tf::equal(a, b), "eq"},
      {tf::less(a, b), "lt"},          {tf::greater(a, b), "gt"},          {tf::nn::relu(a), "relu"},
      {tf::nn::sigmoid(a), "sigmoid"}, {tf::nn::tanh(a), "tanh"},          {tf::nn::softmax(a), "softmax"},
      {tf::nn::log_softmax(a), "log_softmax"},
  };
  for (const auto& [t, op] : made) {
    INFO(op);
    CHECK(tf::tensor_name(t).rfind(op, 0) == 0);
  }
  CHECK(tf::static_shape(tf::where(tf::less(a, b), a, b)) == em::Shape{2, 2});
  CHECK(tf::static_shape(tf::transpose(a)) == em::Shape{2, 2});
  CHECK(tf::static_shape(tf::concat({a, b}, 0)) == em::Shape{4, 2});
  CHECK(tf::static_shape(tf::stack({a, b}, 0)) == em::Shape{2, 2, 2});
  CHECK(tf::static_shape(tf::nn::bias_add(a, tf::constant(em::ones({2})))) == em::Shape{2, 2});
  CHECK(tf::matmul(a, b, true, false, "mt").dtype() == em::float32);
}

TEST_CASE("nn::bias_add and nn::xw_plus_b check shapes as TF does; xw_plus_b is one addmm", "[compat][graph]") {
  tf::Graph g;
  Tensor x, y, y2, h;
  tf::Operation init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 3}, "x");
    tf::Variable w(em::tensor({{1.f, 0.f, 2.f, 0.f}, {0.f, 1.f, 0.f, 3.f}, {1.f, 1.f, 1.f, 1.f}}), "w");
    tf::Variable b(em::tensor({0.5f, -1.f, 0.f, 2.f}), "b");
    y = tf::nn::xw_plus_b(x, w, b);
    y2 = tf::nn::xw_plus_b(x, w, b, "logits");
    h = tf::nn::bias_add(tf::matmul(x, w), b);
    init = tf::global_variables_initializer();
    CHECK(tf::tensor_name(y) == "xw_plus_b:0");
    CHECK(tf::tensor_name(y2) == "logits:0");
    CHECK(tf::tensor_name(tf::nn::xw_plus_b(x, w, b)) == "xw_plus_b_1:0");
    CHECK(tf::static_shape(y) == em::Shape{-1, 4});
    // TF's shape errors, with the shapes in the message.
    auto a = tf::placeholder(em::float32, {2, 2}, "a");
    CHECK_THROWS_AS(tf::nn::bias_add(a, tf::constant(em::ones({3}))), em::ShapeError);
    CHECK_THROWS_WITH(tf::nn::bias_add(a, tf::constant(em::ones({3}))),
                      "bias_add: bias has 3 elements but the last dim of [2,2] has 2");
    CHECK_THROWS_WITH(tf::nn::bias_add(tf::constant(em::ones({2})), tf::constant(em::ones({2}))),
                      "bias_add: value must have at least 2 dims, got shape [2]");
    CHECK_THROWS_WITH(tf::nn::bias_add(a, tf::constant(em::ones({1, 2}))), "bias_add: bias must be 1-d, got shape [1,2]");
    CHECK_THROWS_WITH(tf::nn::xw_plus_b(x, w, tf::constant(em::ones({3}))),
                      "xw_plus_b: biases has 3 elements but weights [3,4] has 4 columns");
    CHECK_THROWS_WITH(tf::nn::xw_plus_b(x, w, tf::constant(em::ones({1, 4}))),
                      "xw_plus_b: biases must be 1-d, got shape [1,4]");
    CHECK_THROWS_WITH(tf::nn::xw_plus_b(tf::constant(em::ones({1, 2, 3})), w, b),
                      "xw_plus_b: x and weights must be matrices (2-d), got [1,2,3] and [3,4]");
    CHECK(tf::static_shape(h) == em::Shape{-1, 4});
  }
  tf::Session sess(g);
  sess.run(init);
  const Tensor batch = em::tensor({{1.f, 2.f, 3.f}, {0.f, -1.f, 0.5f}});
  // [1,2,3] @ w = [4, 5, 5, 9]; [0,-1,0.5] @ w = [0.5, -0.5, 0.5, -2.5]; plus b.
  const std::vector<float> want = {4.5f, 4.f, 5.f, 11.f, 1.f, -1.5f, 0.5f, -0.5f};
  const auto outs = sess.run({y, y2, h}, {{x, batch}});
  for (const Tensor& t : outs) CHECK(t.to_vector<float>() == want);
}

TEST_CASE("variables, assign ops, initializers and collections", "[compat][graph]") {
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable w(em::ones({2, 2}), "w");
  tf::Variable b(tf::zeros({2}), "b", /*trainable=*/false);
  CHECK(w.name() == "w");
  CHECK(w.shape() == em::Shape{2, 2});
  CHECK(tf::tensor_name(w.value()) == "w:0");
  CHECK(w.initializer().name() == "w/assign");
  CHECK(tf::tensor_name(w.assign(em::zeros({2, 2}))) == "w/assign_1:0");
  CHECK(tf::tensor_name(w.assign_add(tf::constant(1.f))) == "w/assign_add:0");
  CHECK(tf::tensor_name(w.assign_sub(tf::constant(1.f), "dec")) == "dec:0");
  CHECK(tf::global_variables().size() == 2);
  CHECK(tf::trainable_variables().size() == 1);
  CHECK(tf::global_variables_initializer().name() == "init");
  CHECK(tf::variables_initializer({w}).name() == "init_1");
  tf::Variable w2(em::ones({1}), "w");
  CHECK(w2.name() == "w_1");
  CHECK_THROWS_WITH(w.assign(em::zeros({3})),
                    Catch::Contains("assign: a value of shape [3] does not fit variable \"w\" of shape [2,2]"));
  auto x = tf::placeholder(em::float32, {-1}, "x");
  CHECK_THROWS_WITH(tf::Variable(x, "v"), "Variable: the initial value of \"v\" has shape [-1]; a variable needs "
                                          "a fully known shape");
  tf::Variable ints(em::zeros({2}, em::int32), "i");
  CHECK_THROWS_WITH(ints.assign(tf::constant(1.5f)),
                    "assign: a float32 value cannot be stored in variable \"i\" of dtype int32");
}

TEST_CASE("control dependencies and device scopes apply to nodes made inside", "[compat][graph]") {
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::constant(1.f, "a");
  auto op = tf::no_op("first");
  Tensor b, c;
  {
    auto deps = tf::control_dependencies({op, a});
    b = tf::identity(a, "b");
    {
      auto dev = tf::device("/gpu:0");
      c = tf::add(a, 1.f, "c");
    }
  }
  auto d = tf::add(a, 2.f, "d");
  const std::string s = g.str();
  CHECK_THAT(s, Catch::Contains("b = identity(a, ^first, ^a) : float32 []\n"));
  CHECK_THAT(s, Catch::Contains("c = add(a, const, ^first, ^a) : float32 [] @/gpu:0\n"));
  CHECK_THAT(s, Catch::Contains("d = add(a, const_1) : float32 []\n"));
  CHECK_THROWS_WITH(tf::device("/tpu:0"), "device: \"/tpu:0\" is not a device name (use \"/cpu:0\" or \"/gpu:N\")");
  CHECK_THROWS_WITH(tf::device("/cpu:0/gpu:0"), Catch::Contains("is not a device name"));
  CHECK_THROWS_WITH(tf::device("/gpu:x"), Catch::Contains("is not a device name"));
  {
    auto full = tf::device("/job:localhost/replica:0/task:0/device:GPU:01");  // TF's full name
    auto e = tf::add(a, 3.f, "e");
    CHECK_THAT(g.str(), Catch::Contains("e = add(a, const_2) : float32 [] @/gpu:1\n"));
  }
  (void)d;
}

TEST_CASE("a finalized graph refuses new nodes", "[compat][graph]") {
  const Tensor one = em::ones({1});
  tf::Graph g;
  auto scope = g.as_default();
  auto a = tf::constant(1.f);
  g.finalize();
  CHECK(g.finalized());
  CHECK_THROWS_WITH(a + 1.f, Catch::Contains("the graph is finalized and cannot be modified"));
  CHECK_THROWS_WITH(tf::placeholder(em::float32, {1}), "placeholder: the graph is finalized and cannot be modified");
  CHECK_THROWS_WITH(tf::Variable(one), "Variable: the graph is finalized and cannot be modified");
}

TEST_CASE("ember::Variable in graph mode is read by reference and cannot be assigned", "[compat][graph]") {
  em::Variable v(em::tensor({1.f, 2.f}), "ev");
  tf::Graph g;
  auto scope = g.as_default();
  Tensor r = v.value();
  CHECK(tf::tensor_name(r) == "ev:0");
  CHECK_THROWS_WITH(v.assign(em::zeros({2})), Catch::Contains("Variable::assign: ember::Variable \"ev\" cannot be "
                                                              "written in graph mode"));
}
