// compat::v1 variable scopes, get_variable, initializers, regularizers and
// tf.layers (capture/compat/v1/layers.cpp), after TF1's variable_scope_test
// and core_layers_test: names, sharing, TF's error messages, the
// initializers' distributions, dense layers computing x @ kernel + bias,
// dropout and batch normalization.
#include <ember/compat/v1.h>
#include <ember/ember.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

namespace em = ember;
namespace tf = ember::compat::v1;
using em::Tensor;

namespace {

struct Stats {
  double mean = 0, sd = 0, lo = 0, hi = 0;
};

Stats stats_of(const std::vector<double>& v) {
  Stats s;
  s.lo = *std::min_element(v.begin(), v.end());
  s.hi = *std::max_element(v.begin(), v.end());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double sq = 0;
  for (double x : v) sq += (x - s.mean) * (x - s.mean);
  s.sd = std::sqrt(sq / static_cast<double>(v.size()));
  return s;
}

}  // namespace

TEST_CASE("get_variable names variables by variable scope and shares them under reuse", "[compat][layers]") {
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable w, w_again, w_auto, b_auto, inner;
  Tensor op_in_first, op_in_second;
  {
    auto vs = tf::variable_scope("layer");
    CHECK(vs.name() == "layer");
    CHECK(tf::get_variable_scope().name() == "layer");
    CHECK_FALSE(tf::get_variable_scope().reuse());
    w = tf::get_variable("w", {3, 2});
    CHECK(w.name() == "layer/w");
    CHECK(w.trainable());
    op_in_first = tf::add(w, 1.f);
    {
      auto nested = tf::variable_scope("inner");
      inner = tf::get_variable("v", {2}, em::int32);
      CHECK(inner.name() == "layer/inner/v");
    }
    CHECK_THROWS_WITH(tf::get_variable("w", {3, 2}),
                      "get_variable: Variable layer/w already exists, disallowed. Did you mean to set reuse=True or "
                      "reuse=tf.AUTO_REUSE in VarScope?");
  }
  {
    // Reopened with reuse: the same variable; the ops get a new name scope, the variables do not.
    auto vs = tf::variable_scope("layer", true);
    CHECK(tf::get_variable_scope().reuse());
    w_again = tf::get_variable("w", {3, 2});
    CHECK(w_again.index() == w.index());
    op_in_second = tf::add(w_again, 1.f);
    {
      auto nested = tf::variable_scope("inner");  // reuse is inherited
      CHECK(tf::get_variable("v", {2}, em::int32).index() == inner.index());
    }
    CHECK_THROWS_WITH(tf::get_variable("nope", {1}),
                      "get_variable: Variable layer/nope does not exist, or was not created with tf.get_variable(). "
                      "Did you mean to set reuse=tf.AUTO_REUSE in VarScope?");
    CHECK_THROWS_WITH(tf::get_variable("w", {2, 3}),
                      "get_variable: Trying to share variable layer/w, but specified shape [2,3] and found shape "
                      "[3,2].");
    CHECK_THROWS_WITH(tf::get_variable("w", {3, 2}, em::float64),
                      "get_variable: Trying to share variable layer/w, but specified dtype float64 and found dtype "
                      "float32.");
  }
  CHECK(tf::tensor_name(op_in_first) == "layer/add:0");
  CHECK(tf::tensor_name(op_in_second) == "layer_1/add:0");
  {
    auto vs = tf::variable_scope("shared", tf::AUTO_REUSE);
    w_auto = tf::get_variable("w", {2});
    b_auto = tf::get_variable("w", {2});  // found now
    CHECK(w_auto.index() == b_auto.index());
  }
  {
    // tf.get_variable_scope().reuse_variables() until the scope ends.
    auto vs = tf::variable_scope("layer");
    tf::get_variable_scope().reuse_variables();
    CHECK(tf::get_variable("w", {3, 2}).index() == w.index());
  }
  {
    auto vs = tf::variable_scope("layer");
    CHECK_FALSE(tf::get_variable_scope().reuse());  // reuse ended with its scope
  }
  CHECK(tf::get_variable_scope().name().empty());
  CHECK(tf::get_variable("top", {1}).name() == "top");
  CHECK_THROWS_WITH(tf::get_variable("free", {-1, 2}),
                    "get_variable: Shape of a new variable (free) must be fully defined, but instead was [-1,2].");
  tf::placeholder(em::float32, {1}, "taken");
  CHECK_THROWS_WITH(tf::get_variable("taken", {1}),
                    "get_variable: the name \"taken\" is taken by another node of the graph");
  CHECK_THROWS_WITH(tf::get_variable("", {1}), "get_variable: \"\" is not a variable name");
  CHECK_THROWS_WITH(tf::get_variable("w/", {1}), "get_variable: \"w/\" is not a variable name");
  CHECK_THROWS_WITH(tf::variable_scope("a/b"),
                    "variable_scope: \"a/b\" is not a scope name (one non-empty name without '/')");
  CHECK_THROWS_WITH(tf::variable_scope("bad name"), "name_scope: \"bad name\" is not a valid scope name");
  CHECK_THROWS_WITH(tf::get_variable("x", {2}, em::float32, [](const em::Shape&, em::DType) { return em::zeros({3}); }),
                    "get_variable: the initializer of x gave float32 [3] for a variable of float32 [2]");
}

TEST_CASE("initializers give TF's values and distributions, drawn anew at each initialization", "[compat][layers]") {
  tf::Graph g;
  tf::Variable zeros, ones, seven, idx, glorot_u, glorot_n, he, trunc, uniform, normal64;
  tf::Operation init;
  {
    auto scope = g.as_default();
    zeros = tf::get_variable("zeros", {2, 2}, em::float32, tf::zeros_initializer());
    ones = tf::get_variable("ones", {3}, em::float64, tf::ones_initializer());
    seven = tf::get_variable("seven", {2}, em::int64, tf::constant_initializer(7));
    idx = tf::get_variable("idx", {2}, em::int32);        // integers default to zeros
    glorot_u = tf::get_variable("glorot_u", {200, 300});  // the default for floats
    glorot_n = tf::get_variable("glorot_n", {200, 300}, em::float32, tf::glorot_normal_initializer());
    he = tf::get_variable("he", {10, 10, 40, 50}, em::float32, tf::variance_scaling_initializer(2.0));
    trunc = tf::get_variable("trunc", {300, 200}, em::float32, tf::truncated_normal_initializer(0.5, 0.1));
    uniform = tf::get_variable("uniform", {60000}, em::float32, tf::random_uniform_initializer(-3, -1));
    normal64 = tf::get_variable("normal64", {60000}, em::float64, tf::random_normal_initializer(2, 0.5));
    init = tf::global_variables_initializer();
    CHECK_THROWS_WITH(tf::get_variable("frac", {2}, em::int32, tf::constant_initializer(1.5)),
                      "constant_initializer: 1.5 cannot be stored exactly in dtype int32");
    CHECK_THROWS_WITH(tf::get_variable("ti", {2}, em::int32, tf::truncated_normal_initializer()),
                      "truncated_normal_initializer: draws float32 or float64 values, not int32");
    CHECK_THROWS_WITH(tf::variance_scaling_initializer(0),
                      "variance_scaling_initializer: scale must be positive (got 0)");
    CHECK_THROWS_WITH(tf::variance_scaling_initializer(1, "fan"),
                      "variance_scaling_initializer: mode \"fan\" is not one of fan_in, fan_out, fan_avg");
    CHECK_THROWS_WITH(tf::variance_scaling_initializer(1, "fan_in", "cauchy"),
                      Catch::Contains("distribution \"cauchy\""));
  }
  auto values = [](tf::Session& s, const tf::Variable& v) {
    return s.run(v.value()).to(em::float64).to_vector<double>();
  };
  tf::Session sess(g);
  sess.run(init);
  CHECK(values(sess, zeros) == std::vector<double>(4, 0.0));
  CHECK(values(sess, ones) == std::vector<double>(3, 1.0));
  CHECK(sess.run(seven.value()).to_vector<int64_t>() == std::vector<int64_t>{7, 7});
  CHECK(sess.run(idx.value()).to_vector<int32_t>() == std::vector<int32_t>{0, 0});
  // Glorot uniform: +-sqrt(6 / (200 + 300)), variance limit^2 / 3 = 2 / 500.
  const double limit = std::sqrt(6.0 / 500);
  const Stats gu = stats_of(values(sess, glorot_u));
  CHECK(gu.lo >= -limit);
  CHECK(gu.hi <= limit);
  CHECK(gu.sd == Approx(std::sqrt(2.0 / 500)).epsilon(0.02));
  // Glorot normal: variance 2 / 500 after the cut at 2 (widened) stddev.
  const Stats gn = stats_of(values(sess, glorot_n));
  CHECK(gn.sd == Approx(std::sqrt(2.0 / 500)).epsilon(0.02));
  CHECK(gn.hi <= 2 * std::sqrt(2.0 / 500) / 0.87962566103423978 + 1e-6);
  // He (scale 2, fan_in = 40 * 10 * 10): variance 2 / 4000.
  const Stats hs = stats_of(values(sess, he));
  CHECK(hs.sd == Approx(std::sqrt(2.0 / 4000)).epsilon(0.02));
  CHECK(std::abs(hs.mean) < 0.001);
  const Stats tr = stats_of(values(sess, trunc));
  CHECK(tr.lo >= 0.3 - 1e-6);
  CHECK(tr.hi <= 0.7 + 1e-6);
  CHECK(tr.mean == Approx(0.5).margin(0.001));
  CHECK(tr.sd == Approx(0.1 * 0.87962566103423978).epsilon(0.02));
  const Stats un = stats_of(values(sess, uniform));
  CHECK(un.lo >= -3);
  CHECK(un.hi < -1);
  CHECK(un.mean == Approx(-2).margin(0.02));
  const Stats n64 = stats_of(values(sess, normal64));
  CHECK(n64.mean == Approx(2).margin(0.01));
  CHECK(n64.sd == Approx(0.5).epsilon(0.02));
  CHECK(sess.run(normal64.value()).dtype() == em::float64);
  // Initializing again draws again (TF runs the initializer's random op).
  const auto before = values(sess, glorot_u);
  sess.run(init);
  CHECK(values(sess, glorot_u) != before);
}

TEST_CASE("layers::dense makes kernel and bias variables and computes activation(x @ kernel + bias)",
          "[compat][layers]") {
  tf::Graph g;
  Tensor x, h, out, seq_out, shared_out, loss;
  tf::Operation train, init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 4}, "x");
    h = tf::layers::dense(x, 3, tf::nn::relu);
    out = tf::layers::dense(h, 2, nullptr, true, tf::ones_initializer(), tf::constant_initializer(0.5));
    CHECK(tf::static_shape(out) == em::Shape{-1, 2});
    shared_out = tf::layers::dense(
        x, 3, [](const Tensor& t) { return tf::nn::relu(t); }, true, {}, tf::zeros_initializer(), {}, {}, true, "dense",
        true);
    Tensor seq = tf::placeholder(em::float32, {-1, 5, 4}, "seq");
    seq_out = tf::layers::dense(seq, 2, nullptr, false, {}, tf::zeros_initializer(), {}, {}, true, "proj");
    CHECK(tf::static_shape(seq_out) == em::Shape{-1, 5, 2});
    loss = tf::reduce_mean(tf::square(out));
    train = tf::train::GradientDescentOptimizer(0.1).minimize(loss);
    init = tf::global_variables_initializer();
    CHECK_THROWS_WITH(tf::layers::dense(tf::placeholder(em::float32, {4, -1}), 2),
                      "dense: inputs must have rank >= 2 and a known last dim, got [4,-1]");
    CHECK_THROWS_WITH(tf::layers::dense(x, 0), "dense: units must be positive (got 0)");
    CHECK_THROWS_WITH(tf::layers::dense(tf::placeholder(em::int32, {2, 4}), 2),
                      "dense: inputs have dtype int32; a dense layer needs a floating dtype");
    CHECK_THROWS_WITH(tf::layers::dense(x, 3, nullptr, true, {}, tf::zeros_initializer(), {}, {}, true, "dense"),
                      Catch::Contains("Variable dense/kernel already exists"));
  }
  std::vector<std::string> names;
  {
    auto scope = g.as_default();
    for (const tf::Variable& v : tf::trainable_variables()) names.push_back(v.name());
  }
  CHECK(names ==
        std::vector<std::string>{"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias", "proj/kernel"});
  tf::Session sess(g);
  sess.run(init);
  const Tensor xv = em::tensor(std::vector<float>{1, -2, 0.5f, 3, 0, 1, -1, 2}, {2, 4});
  const auto k = sess.run(g.get_tensor_by_name("dense/kernel:0")).to_vector<float>();
  // Reference: relu(x K + 0), then (h) ones + 0.5.
  std::vector<double> hv(6), ov(4);
  const auto xs = xv.to_vector<float>();
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) {
      double acc = 0;
      for (int i = 0; i < 4; ++i) acc += xs[r * 4 + i] * k[i * 3 + c];
      hv[r * 3 + c] = std::max(acc, 0.0);
    }
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) ov[r * 2 + c] = hv[r * 3] + hv[r * 3 + 1] + hv[r * 3 + 2] + 0.5;
  const auto got = sess.run({h, out, shared_out}, {{x, xv}});
  for (int i = 0; i < 6; ++i) CHECK(got[0].to_vector<float>()[i] == Approx(hv[i]).margin(1e-5));
  for (int i = 0; i < 4; ++i) CHECK(got[1].to_vector<float>()[i] == Approx(ov[i]).margin(1e-5));
  CHECK(got[2].to_vector<float>() == got[0].to_vector<float>());  // reuse: the same kernel and bias
  CHECK(sess.run(seq_out, {{g.get_tensor_by_name("seq:0"), em::ones({3, 5, 4})}}).shape() == em::Shape{3, 5, 2});
  // Gradients flow into the layers' variables.
  const float l0 = sess.run(loss, {{x, xv}}).item<float>();
  for (int i = 0; i < 5; ++i) sess.run(train, {{x, xv}});
  CHECK(sess.run(loss, {{x, xv}}).item<float>() < l0);
}

TEST_CASE("a scope's default layer names start again when it reopens, so towers share layers with reuse",
          "[compat][layers]") {
  tf::Graph g;
  auto scope = g.as_default();
  Tensor real = tf::placeholder(em::float32, {-1, 3}, "real"), fake = tf::placeholder(em::float32, {-1, 3}, "fake");
  // TF1's GAN idiom: one discriminator function, called for both inputs.
  auto discriminator = [](const Tensor& x, bool reuse) {
    auto vs = tf::variable_scope("disc", reuse);
    return tf::layers::dense(tf::layers::dense(x, 4, tf::nn::relu), 1);
  };
  Tensor d_real = discriminator(real, false), d_fake = discriminator(fake, true);
  std::vector<std::string> names;
  for (const tf::Variable& v : tf::trainable_variables()) names.push_back(v.name());
  CHECK(names == std::vector<std::string>{"disc/dense/kernel", "disc/dense/bias", "disc/dense_1/kernel",
                                          "disc/dense_1/bias"});
  // Without reuse the second pass asks for new variables of the same names, as in TF1.
  CHECK_THROWS_WITH(discriminator(fake, false), Catch::Contains("Variable disc/dense/kernel already exists"));
  // Unnamed layers elsewhere keep counting at their own level.
  CHECK(tf::layers::dense(real, 2).shape() == em::Shape{720720, 2});
  names.clear();
  for (const tf::Variable& v : tf::trainable_variables()) names.push_back(v.name());
  CHECK(names.back() == "dense/bias");
  auto init = tf::global_variables_initializer();
  tf::Session sess(g);
  sess.run(init);
  const Tensor xv = em::tensor(std::vector<float>{1, 2, 3, -1, 0, 2}, {2, 3});
  const auto r = sess.run({d_real, d_fake}, {{real, xv}, {fake, xv}});
  CHECK(r[0].to_vector<float>() == r[1].to_vector<float>());  // one set of weights
}

TEST_CASE("TF1 spellings: Variable of a number, free assign ops, names starting with '_' inside a scope",
          "[compat][layers]") {
  tf::Graph g;
  tf::Variable b, step, flag;
  Tensor set_b, bump, back;
  {
    auto scope = g.as_default();
    b = tf::Variable(0.5f, "b");
    step = tf::Variable(int64_t{3}, "step", false);
    flag = tf::Variable(true, "flag");
    CHECK(b.dtype() == em::float32);
    CHECK(b.shape() == em::Shape{});
    CHECK(step.dtype() == em::int64);
    CHECK(flag.dtype() == em::bool_);
    CHECK(tf::Variable(2.0, "d").dtype() == em::float64);
    set_b = tf::assign(b, tf::constant(1.5f));
    bump = tf::assign_add(step, 2);
    back = tf::assign_sub(b, 0.25);
    auto outer = tf::name_scope("outer");
    auto inner = tf::name_scope("_private");  // TF allows a leading '_' below the top level
    CHECK(inner.name() == "outer/_private/");
    CHECK(tf::train::get_or_create_global_step().name() == "global_step");  // at the top level
  }
  {
    tf::Graph g2;
    auto scope = g2.as_default();
    { auto taken = tf::name_scope("global_step"); }
    CHECK_THROWS_WITH(tf::train::get_or_create_global_step(),
                      "get_or_create_global_step: the name \"global_step\" is taken (by a name scope?); the "
                      "global step needs it");
  }
  auto init = [&] {
    auto scope = g.as_default();
    return tf::variables_initializer({b, step, flag});
  }();
  tf::Session sess(g);
  sess.run(init);
  CHECK(sess.run(set_b).item<float>() == 1.5f);
  CHECK(sess.run(bump).item<int64_t>() == 5);
  CHECK(sess.run(back).item<float>() == 1.25f);
  CHECK(sess.run(flag.value()).item<bool>());
}

TEST_CASE("layers::batch_normalization normalizes with batch or moving statistics and updates through UPDATE_OPS",
          "[compat][layers]") {
  tf::Graph g;
  Tensor x, training, y, y_fixed, y_eval, loss;
  tf::Operation train, init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float64, {-1, 2}, "x");
    training = tf::placeholder_with_default(tf::constant(false), {}, "training");
    y = tf::layers::batch_normalization(x, -1, 0.9, 1e-3, true, true, training);
    CHECK(tf::static_shape(y) == em::Shape{-1, 2});
    // Fixed modes share the variables through reuse.
    y_fixed = tf::layers::batch_normalization(x, -1, 0.9, 1e-3, true, true, true, true, "batch_normalization", true);
    y_eval = tf::layers::batch_normalization(x, -1, 0.9, 1e-3, true, true, false, true, "batch_normalization", true);
    std::vector<std::string> names;
    for (const tf::Variable& v : tf::global_variables()) names.push_back(v.name());
    CHECK(names == std::vector<std::string>{"batch_normalization/gamma", "batch_normalization/beta",
                                            "batch_normalization/moving_mean", "batch_normalization/moving_variance"});
    CHECK(tf::trainable_variables().size() == 2);
    CHECK(tf::get_collection(tf::GraphKeys::UPDATE_OPS).size() == 4);  // two per training-capable call
    loss = tf::losses::mean_squared_error(tf::zeros_like(y), y);
    {
      // TF1's idiom: the train op runs the moving-average updates first.
      auto deps = tf::control_dependencies({tf::get_collection(tf::GraphKeys::UPDATE_OPS)[0],
                                            tf::get_collection(tf::GraphKeys::UPDATE_OPS)[1]});
      train = tf::train::GradientDescentOptimizer(0.1).minimize(loss);
    }
    init = tf::global_variables_initializer();
    CHECK_THROWS_WITH(tf::layers::batch_normalization(tf::placeholder(em::float32, {2, -1})),
                      "batch_normalization: dim 1 of inputs [2,-1] (the axis normalized) must be known");
    CHECK_THROWS_WITH(tf::layers::batch_normalization(x, -1, 0.9, 1e-3, true, true, x),
                      "batch_normalization: training must be a bool or a 0-d bool tensor, got float64 [-1,2]");
    CHECK_THROWS_WITH(tf::layers::batch_normalization(x, -1, 1.5),
                      "batch_normalization: momentum must be in [0, 1] (got 1.5)");
    CHECK_THROWS_WITH(tf::layers::batch_normalization(tf::constant(1.f)),
                      "batch_normalization: inputs must have at least 1 dim, got []");
    CHECK_THROWS_WITH(tf::layers::batch_normalization(tf::placeholder(em::int32, {2, 3})),
                      "batch_normalization: inputs have dtype int32; batch normalization needs a floating dtype");
  }
  tf::Session sess(g);
  sess.run(init);
  const std::vector<double> xs{1, 10, 3, 20, 8, 60};  // columns {1, 3, 8} and {10, 20, 60}
  const tf::FeedDict eval{{x, em::tensor(xs, {3, 2})}};
  const tf::FeedDict train_feed{{x, em::tensor(xs, {3, 2})}, {training, em::tensor(std::vector<bool>{true}, em::Shape{})}};
  const double m0 = 4, m1 = 30;
  const double v0 = (9 + 1 + 16) / 3.0, v1 = (400 + 100 + 900) / 3.0;
  // Not training, fresh variables: (x - 0) / sqrt(1 + eps).
  std::vector<double> want_eval, want_train;
  for (int i = 0; i < 6; ++i) {
    want_eval.push_back(xs[i] / std::sqrt(1 + 1e-3));
    want_train.push_back((xs[i] - (i % 2 ? m1 : m0)) / std::sqrt((i % 2 ? v1 : v0) + 1e-3));
  }
  auto values = [&](const Tensor& t, const tf::FeedDict& f) { return sess.run(t, f).to_vector<double>(); };
  auto near = [](const std::vector<double>& a, const std::vector<double>& b) {
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-12));
  };
  near(values(y, eval), want_eval);
  near(values(y_eval, eval), want_eval);
  near(values(y, train_feed), want_train);
  near(values(y_fixed, eval), want_train);
  // Running an update while not training changes nothing; training moves 10% toward the batch.
  auto mm = g.get_tensor_by_name("batch_normalization/moving_mean:0");
  auto mv = g.get_tensor_by_name("batch_normalization/moving_variance:0");
  const auto ups = [&] {
    auto scope = g.as_default();
    return tf::get_collection(tf::GraphKeys::UPDATE_OPS);
  }();
  // The first two are the training-tensor layer's (the fixed-training call's always move).
  sess.run({ups[0], ups[1]}, eval);
  CHECK(values(mm, {}) == std::vector<double>{0, 0});
  sess.run(train, train_feed);
  near(values(mm, {}), {0.1 * m0, 0.1 * m1});
  near(values(mv, {}), {0.9 + 0.1 * v0, 0.9 + 0.1 * v1});
}

TEST_CASE("collections and tf.losses.get_total_loss", "[compat][layers]") {
  tf::Graph g;
  auto scope = g.as_default();
  Tensor p = tf::placeholder(em::float32, {2}, "p");
  CHECK(tf::get_collection("mine").empty());
  CHECK_THROWS_WITH(tf::losses::get_total_loss(),
                    "get_total_loss: no losses in the graph (tf::losses::* add theirs to GraphKeys::LOSSES)");
  Tensor a = tf::losses::mean_squared_error(tf::zeros_like(p), p);
  Tensor b = tf::losses::absolute_difference(tf::zeros_like(p), p);
  tf::add_to_collection(tf::GraphKeys::REGULARIZATION_LOSSES, tf::nn::l2_loss(p) * 0.5f);
  tf::add_to_collection("mine", tf::no_op("marker"));
  CHECK(tf::get_collection("mine").size() == 1);
  CHECK(tf::losses::get_losses().size() == 2);
  Tensor total = tf::losses::get_total_loss(), data_only = tf::losses::get_total_loss(false),
         reg = tf::losses::get_regularization_loss();
  CHECK(tf::tensor_name(total) == "total_loss:0");
  tf::Graph other;
  auto other_scope = other.as_default();
  CHECK_THROWS_WITH(tf::add_to_collection("x", p), Catch::Contains("from another graph"));
  CHECK(tf::tensor_name(tf::losses::get_regularization_loss()) == "total_regularization_loss:0");  // a 0 constant
  auto back = g.as_default();
  tf::Session sess(g);
  const tf::FeedDict f{{p, em::tensor({1.f, -3.f})}};
  // mse 5, mean |p| 2, l2 (1 + 9) / 2 * 0.5 = 2.5
  CHECK(sess.run(total, f).item<float>() == 9.5f);
  CHECK(sess.run(data_only, f).item<float>() == 7.f);
  CHECK(sess.run(reg, f).item<float>() == 2.5f);
}

TEST_CASE("regularizers add TF1's losses for get_variable and dense, once per variable", "[compat][layers]") {
  namespace reg = tf::contrib::layers;
  tf::Graph g;
  Tensor x, out, total, kernel_grad, penalty, w_value;
  tf::Operation init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 4}, "x");
    // kernel all ones (4 x 3): 0.1 * 12 / 2 = 0.6; bias all 0.5: 0.5 * 1.5 = 0.75.
    out = tf::layers::dense(x, 3, nullptr, true, tf::ones_initializer(), tf::constant_initializer(0.5),
                            reg::l2_regularizer(0.1), reg::l1_regularizer(0.5));
    auto losses = tf::get_collection(tf::GraphKeys::REGULARIZATION_LOSSES);
    REQUIRE(losses.size() == 2);
    CHECK(tf::tensor_name(losses[0].tensor) == "dense/kernel/Regularizer/l2_regularizer:0");
    CHECK(tf::tensor_name(losses[1].tensor) == "dense/bias/Regularizer/l1_regularizer:0");
    // Shared again under reuse: no second loss.
    tf::layers::dense(x, 3, nullptr, true, {}, tf::zeros_initializer(), reg::l2_regularizer(0.1), {}, true, "dense",
                      true);
    CHECK(tf::get_collection(tf::GraphKeys::REGULARIZATION_LOSSES).size() == 2);
    // w = [1, -2, 3]: l1 0.25 * 6 = 1.5, l2 2 * 14 / 2 = 14.
    tf::Variable w = tf::get_variable("w", {3}, em::float32, tf::constant_initializer(0), reg::l1_l2_regularizer(0.25, 2));
    CHECK(tf::get_collection(tf::GraphKeys::REGULARIZATION_LOSSES).size() == 3);
    // Scale 0 adds nothing (TF's regularizer returns None).
    tf::get_variable("quiet", {2}, em::float32, {}, reg::l2_regularizer(0));
    CHECK(tf::get_collection(tf::GraphKeys::REGULARIZATION_LOSSES).size() == 3);
    w_value = w.assign(tf::constant(std::vector<float>{1, -2, 3}, {3}));
    total = tf::losses::get_regularization_loss();
    kernel_grad = tf::gradients(total, g.get_tensor_by_name("dense/kernel:0"));
    penalty = reg::apply_regularization(reg::l2_regularizer(1.0), {w.value(), tf::ones({2, 2})});
    CHECK(tf::tensor_name(penalty) == "get_regularization_penalty:0");
    CHECK(tf::get_collection(tf::GraphKeys::REGULARIZATION_LOSSES).size() == 4);
    init = tf::global_variables_initializer();
    CHECK_THROWS_WITH(reg::l2_regularizer(-1), "l2_regularizer: Setting a scale less than 0 on a regularizer: -1.");
    CHECK_THROWS_WITH(reg::l1_l2_regularizer(1, -0.5),
                      "l1_l2_regularizer: Setting a scale less than 0 on a regularizer: -0.5.");
    CHECK_THROWS_WITH(reg::apply_regularization(reg::l1_regularizer(1), {}),
                      "apply_regularization: No weights to regularize.");
    CHECK_THROWS_WITH(reg::apply_regularization([](const Tensor& t) { return t * 2.f; }, {w.value()}),
                      "apply_regularization: regularizer must return a scalar Tensor instead of a Tensor with rank 1.");
    CHECK_THROWS_WITH(reg::l2_regularizer(std::nan("")), "l2_regularizer: the scale is NaN");
    CHECK_THROWS_WITH(reg::apply_regularization(tf::Regularizer(), {w.value()}),
                      "apply_regularization: the regularizer is empty");
    CHECK_THROWS_AS(reg::l1_regularizer(1)(tf::constant(std::vector<int32_t>{1}, {1})), em::DTypeError);
    CHECK_THROWS_WITH(reg::l1_regularizer(1)(tf::constant(std::vector<int32_t>{1}, {1})),
                      "l1_regularizer: weights have dtype int32; a regularizer needs a floating dtype");
  }
  tf::Session sess(g);
  sess.run(init);
  sess.run(w_value);
  CHECK(sess.run(total).item<float>() == Approx(0.6 + 0.75 + 1.5 + 14).epsilon(1e-6));
  const std::vector<float> grad = sess.run(kernel_grad).to_vector<float>();
  CHECK(grad.size() == 12);
  for (float v : grad) CHECK(v == Approx(0.1f));  // d 0.1 * sum(k^2) / 2 / dk = 0.1 k
  CHECK(sess.run(penalty).item<float>() == Approx(7 + 2).epsilon(1e-6));  // (1 + 4 + 9) / 2 + 4 / 2
  // A regularized get_variable under control dependencies: its loss runs without them (TF's init_scope).
  {
    auto scope = g.as_default();
    tf::Variable counter(0, "counter");
    Tensor bump = counter.assign_add(1);
    Tensor loss;
    {
      auto after = tf::control_dependencies({bump});
      tf::get_variable("late", {2}, em::float32, tf::ones_initializer(), reg::l2_regularizer(1));
      auto losses = tf::get_collection(tf::GraphKeys::REGULARIZATION_LOSSES);
      loss = losses.back().tensor;
    }
    auto back = g.as_default();
    tf::Session s2(g);
    s2.run(tf::global_variables_initializer());
    CHECK(s2.run(loss).item<float>() == 1.f);
    CHECK(s2.run(counter).item<int32_t>() == 0);  // the loss did not run the assign
  }
  // Eagerly a regularizer is a plain function of the weights.
  CHECK(reg::l2_regularizer(0.5)(em::tensor({2.f, 2.f})).item<float>() == 2.f);
}

TEST_CASE("layers::dropout drops with probability rate when training, passes through otherwise", "[compat][layers]") {
  tf::Graph g;
  Tensor x, off, on, picked, pick_named;
  Tensor training;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1}, "x");
    training = tf::placeholder_with_default(tf::constant(false), {}, "training");
    off = tf::layers::dropout(x, 0.5);
    CHECK(tf::tensor_name(off) == "dropout:0");
    on = tf::layers::dropout(x, 0.25, true);
    CHECK(tf::tensor_name(on) == "dropout_1:0");
    picked = tf::layers::dropout(x, 0.5, training, "drop");
    CHECK(tf::tensor_name(picked) == "drop:0");
    CHECK_THROWS_WITH(tf::layers::dropout(x, 1.0), "dropout: rate must be in [0, 1) (got 1)");
    CHECK_THROWS_WITH(tf::layers::dropout(x, -0.1), "dropout: rate must be in [0, 1) (got -0.1)");
    CHECK_THROWS_WITH(tf::layers::dropout(tf::placeholder(em::int32, {2}), 0.5),
                      "dropout: inputs have dtype int32; dropout needs a floating tensor");
    CHECK_THROWS_WITH(tf::layers::dropout(x, 0.5, tf::constant(1.f)),
                      "dropout: training must be a bool or a 0-d bool tensor, got float32 []");
  }
  tf::Session sess(g);
  const Tensor xv = em::ones({4000});
  const tf::FeedDict feed{{x, xv}};
  CHECK(sess.run(off, feed).to_vector<float>() == xv.to_vector<float>());
  CHECK(sess.run(picked, feed).to_vector<float>() == xv.to_vector<float>());
  auto count = [](const Tensor& t, float kept) {
    int zeros = 0;
    for (float v : t.to_vector<float>()) {
      CHECK((v == 0.f || v == Approx(kept)));
      zeros += v == 0.f;
    }
    return zeros;
  };
  // 4000 draws: the zero count is within 5 sd of its mean (sd ~ 27 at rate 0.25, ~32 at 0.5).
  CHECK(std::abs(count(sess.run(on, feed), 1 / 0.75f) - 1000) < 140);
  CHECK(std::abs(count(sess.run(picked, {{x, xv}, {training, em::scalar_tensor(true)}}), 2.f) - 2000) < 160);
  // Eagerly too.
  CHECK(tf::layers::dropout(em::ones({3}), 0.9).to_vector<float>() == std::vector<float>{1, 1, 1});
  const std::vector<float> eager = tf::layers::dropout(em::ones({2000}), 0.5, true).to_vector<float>();
  const auto eager_zeros = std::count(eager.begin(), eager.end(), 0.f);
  CHECK(std::count(eager.begin(), eager.end(), 2.f) == 2000 - eager_zeros);
  CHECK(std::abs(eager_zeros - 1000) < 115);  // 5 sd
}
