// compat::v1's TF1 names beyond the core list (capture/compat/v1/ops.cpp):
// math, shapes, one_hot, stop_gradient, truncated_normal, nn activations,
// cross-entropies and tf.losses, run in a Session and checked against
// hand-computed values or a float64 reference; their gradients through
// tf::gradients; and every build-time error with its message.
#include <ember/autograd.h>
#include <ember/capture.h>
#include <ember/compat/v1.h>
#include <ember/ember.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

namespace em = ember;
namespace tf = ember::compat::v1;
using em::Tensor;

namespace {

std::vector<double> run_values(tf::Session& sess, const Tensor& t, const tf::FeedDict& feeds = {}) {
  return sess.run(t, feeds).to(em::float64).to_vector<double>();
}

void check_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}

// log_softmax of one row, in float64.
std::vector<double> log_softmax_row(const std::vector<double>& z) {
  const double m = *std::max_element(z.begin(), z.end());
  double s = 0;
  for (double v : z) s += std::exp(v - m);
  std::vector<double> out;
  for (double v : z) out.push_back(v - m - std::log(s));
  return out;
}

}  // namespace

TEST_CASE("TF1 math names compute TF's values in graph mode", "[compat][ops]") {
  tf::Graph g;
  Tensor x, outs[14], bools[6], xi;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1}, "x");
    xi = tf::placeholder(em::int32, {3}, "xi");
    outs[0] = tf::abs(x);
    outs[1] = tf::negative(x);
    outs[2] = tf::sign(x);
    outs[3] = tf::floor(x);
    outs[4] = tf::ceil(x);
    outs[5] = tf::round(x);
    outs[6] = tf::rsqrt(tf::abs(x) + 1.f);
    outs[7] = tf::sin(x);
    outs[8] = tf::cos(x);
    outs[9] = tf::log1p(tf::abs(x));
    outs[10] = tf::pow(x, 2);
    outs[11] = tf::squared_difference(x, 1.f);
    outs[12] = tf::clip_by_value(x, -1.f, 1.f);
    outs[13] = tf::add_n({x, x, x});
    bools[0] = tf::not_equal(x, 2.5f);
    bools[1] = tf::less_equal(x, 0.5f);
    bools[2] = tf::greater_equal(x, 0.5f);
    bools[3] = tf::logical_and(bools[1], bools[2]);
    bools[4] = tf::logical_or(tf::less(x, -1.f), tf::greater(x, 2.f));
    bools[5] = tf::logical_not(bools[0]);
    CHECK(tf::tensor_name(outs[0]) == "abs:0");
    CHECK(tf::tensor_name(tf::abs(x, "magnitude")) == "magnitude:0");
  }
  tf::Session sess(g);
  const std::vector<double> xv{-1.5, 0.5, 2.5, -0.25, 0.0};
  const tf::FeedDict feed{{x, em::tensor(std::vector<float>{-1.5f, 0.5f, 2.5f, -0.25f, 0.f}, {5})}};
  std::vector<std::vector<double>> want(14);
  for (double v : xv) {
    want[0].push_back(std::abs(v));
    want[1].push_back(-v);
    want[2].push_back(v > 0 ? 1 : v < 0 ? -1 : 0);
    want[3].push_back(std::floor(v));
    want[4].push_back(std::ceil(v));
    want[5].push_back(std::nearbyint(v));  // half to even: 0.5 -> 0, 2.5 -> 2, -1.5 -> -2
    want[6].push_back(1 / std::sqrt(std::abs(v) + 1));
    want[7].push_back(std::sin(v));
    want[8].push_back(std::cos(v));
    want[9].push_back(std::log1p(std::abs(v)));
    want[10].push_back(v * v);
    want[11].push_back((v - 1) * (v - 1));
    want[12].push_back(std::clamp(v, -1.0, 1.0));
    want[13].push_back(3 * v);
  }
  CHECK(want[5] == std::vector<double>{-2, 0, 2, -0, 0});
  for (int i = 0; i < 14; ++i) {
    INFO("output " << i);
    check_near(run_values(sess, outs[i], feed), want[i], 1e-6);
  }
  const auto bool_values = [&](int i) { return sess.run(bools[i], feed).to_vector<bool>(); };
  CHECK(bool_values(0) == std::vector<bool>{true, true, false, true, true});
  CHECK(bool_values(1) == std::vector<bool>{true, true, false, true, true});
  CHECK(bool_values(2) == std::vector<bool>{false, true, true, false, false});
  CHECK(bool_values(3) == std::vector<bool>{false, true, false, false, false});
  CHECK(bool_values(4) == std::vector<bool>{true, false, true, false, false});
  CHECK(bool_values(5) == std::vector<bool>{false, false, true, false, false});
  // Integers keep their dtype as in TF.
  {
    auto scope = g.as_default();
    Tensor p = tf::pow(xi, 3), c = tf::clip_by_value(xi, 0, 5), s = tf::add_n({xi, xi});
    Tensor sums = tf::reduce_sum(xi), prod = tf::reduce_prod(xi);
    CHECK(p.dtype() == em::int32);
    CHECK(sums.dtype() == em::int32);
    CHECK(prod.dtype() == em::int32);
    const tf::FeedDict fi{{xi, em::tensor(std::vector<int32_t>{-2, 3, 7}, {3})}};
    auto r = sess.run({p, c, s, sums, prod}, fi);
    CHECK(r[0].to_vector<int32_t>() == std::vector<int32_t>{-8, 27, 343});
    CHECK(r[1].to_vector<int32_t>() == std::vector<int32_t>{0, 3, 5});
    CHECK(r[2].to_vector<int32_t>() == std::vector<int32_t>{-4, 6, 14});
    CHECK(r[3].item<int32_t>() == 8);
    CHECK(r[4].item<int32_t>() == -42);
  }
}

TEST_CASE("reductions, argmin and their TF dtypes", "[compat][ops]") {
  tf::Graph g;
  Tensor m, b, prod, all0, any1, amin, sum_i8;
  {
    auto scope = g.as_default();
    m = tf::placeholder(em::float64, {-1, 3}, "m");
    b = tf::placeholder(em::bool_, {2, 3}, "b");
    prod = tf::reduce_prod(m, {1});
    all0 = tf::reduce_all(b, {0});
    any1 = tf::reduce_any(b, {1}, true);
    amin = tf::argmin(m, 1);
    // A uint8 sum wraps in uint8 (TF), where ember's sum would widen to int64.
    sum_i8 = tf::reduce_sum(tf::constant(std::vector<uint8_t>{200, 100, 60}, {3}));
    CHECK(sum_i8.dtype() == em::uint8);
  }
  tf::Session sess(g);
  const Tensor mv = em::tensor(std::vector<double>{1, -2, 3, 0.5, 4, -1}, {2, 3});
  const Tensor bv = em::tensor(std::vector<bool>{true, false, true, true, false, false}, {2, 3});
  auto r = sess.run({prod, all0, any1, amin, sum_i8}, {{m, mv}, {b, bv}});
  CHECK(r[0].to_vector<double>() == std::vector<double>{-6, -2});
  CHECK(r[1].to_vector<bool>() == std::vector<bool>{true, false, false});
  CHECK(r[2].shape() == em::Shape{2, 1});
  CHECK(r[2].to_vector<bool>() == std::vector<bool>{true, true});
  CHECK(r[3].to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(r[4].item<uint8_t>() == 360 - 256);
}

TEST_CASE("expand_dims, squeeze and tile follow TF's shapes, unknown dims included", "[compat][ops]") {
  tf::Graph g;
  Tensor x, xk, e0, e_last, e_neg, sq_all, sq1, t_known, t_unknown, t_grad, unknown_grad;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 1, 2}, "x");
    e0 = tf::expand_dims(x, 0);
    e_last = tf::expand_dims(x, 3);
    e_neg = tf::expand_dims(x, -1);
    sq_all = tf::squeeze(x);  // dim 1 only: dim 0 is unknown
    sq1 = tf::squeeze(e_last, {1, -1});
    CHECK(tf::static_shape(e0) == em::Shape{1, -1, 1, 2});
    CHECK(tf::static_shape(e_last) == em::Shape{-1, 1, 2, 1});
    CHECK(tf::static_shape(e_neg) == em::Shape{-1, 1, 2, 1});
    CHECK(tf::static_shape(sq_all) == em::Shape{-1, 2});
    CHECK(tf::static_shape(sq1) == em::Shape{-1, 2});
    Tensor c = tf::constant(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    t_known = tf::tile(c, {2, 1});
    CHECK(tf::static_shape(t_known) == em::Shape{4, 3});
    t_unknown = tf::tile(x, {2, 3, 1});
    CHECK(tf::static_shape(t_unknown) == em::Shape{-1, 3, 2});
    // d sum(tile(x) * w) / dx adds the weights of every copy.
    Tensor w = tf::constant(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 3, 2});
    xk = tf::placeholder(em::float32, {1, 1, 2}, "xk");
    t_grad = tf::gradients(tf::reduce_sum(tf::tile(xk, {2, 3, 1}) * w), xk);
    // Copies along known dims of a tensor with unknown dims have gradients; the
    // copies of an unknown dim are concatenated, and slicing an unknown dim back is refused.
    unknown_grad = tf::gradients(tf::reduce_sum(tf::tile(x, {1, 3, 2})), x);
    CHECK_THROWS_WITH(tf::gradients(tf::reduce_sum(t_unknown), x),
                      Catch::Contains("slice: dim 0 has unknown size (-1) in graph mode"));
    CHECK_THROWS_WITH(tf::squeeze(x, {0}), Catch::Contains("squeeze: dim 0 of [-1,1,2] is unknown until the graph "
                                                           "runs; only dims known to be 1 can be squeezed"));
    CHECK_THROWS_WITH(tf::squeeze(x, {2}), "squeeze: cannot squeeze dim 2 of [-1,1,2]: its size is 2, not 1");
    CHECK_THROWS_WITH(tf::squeeze(x, {3}), Catch::Contains("squeeze"));
    CHECK_THROWS_WITH(tf::expand_dims(x, 4), "expand_dims: axis 4 is out of range for a tensor of rank 3 (use -4..3)");
    CHECK_THROWS_WITH(tf::expand_dims(x, -5), Catch::Contains("axis -5 is out of range"));
    CHECK_THROWS_WITH(tf::tile(x, {2, 2}),
                      "tile: 2 multiples given for a tensor of rank 3 (shape [-1,1,2]); give one per dim");
    CHECK_THROWS_WITH(tf::tile(x, {1, -1, 1}), "tile: multiples[1] is -1; multiples must be >= 0");
  }
  {
    tf::Session sess(g);
    const Tensor xv = em::tensor(std::vector<float>{1, 2, 3, 4}, {2, 1, 2});
    auto r = sess.run({e0, sq_all, sq1, t_known, t_unknown, unknown_grad}, {{x, xv}});
    CHECK(r[0].shape() == em::Shape{1, 2, 1, 2});
    CHECK(r[1].shape() == em::Shape{2, 2});
    CHECK(r[1].to_vector<float>() == std::vector<float>{1, 2, 3, 4});
    CHECK(r[2].shape() == em::Shape{2, 2});
    CHECK(r[3].to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
    CHECK(r[4].shape() == em::Shape{4, 3, 2});
    CHECK(r[4].to_vector<float>() ==
          std::vector<float>{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4});
    CHECK(r[5].to_vector<float>() == std::vector<float>{6, 6, 6, 6});  // 2 x 3 copies each
    const Tensor gk = sess.run(t_grad, {{xk, em::ones({1, 1, 2})}});
    // Element 0 sits at w's even positions (sum 1+3+...+11 = 36), element 1 at the odd (42).
    CHECK(gk.to_vector<float>() == std::vector<float>{36, 42});
  }
  // A multiple of 0 gives an empty dim.
  CHECK(tf::tile(em::ones({2, 3}), {0, 2}).shape() == em::Shape{0, 6});
}

TEST_CASE("one_hot puts on_value at each index, off_value elsewhere and for out-of-range indices", "[compat][ops]") {
  tf::Graph g;
  Tensor ids, last, first, custom, wide;
  {
    auto scope = g.as_default();
    ids = tf::placeholder(em::int64, {-1}, "ids");
    last = tf::one_hot(ids, 3);
    first = tf::one_hot(ids, 3, 1.0, 0.0, 0);
    custom = tf::one_hot(ids, 3, 5.0, -1.0, -1, em::int32);
    Tensor ids2 = tf::constant(std::vector<int32_t>{0, 2, 1, 1}, {2, 2});
    wide = tf::one_hot(ids2, 2, 1.0, 0.0, 1, em::float64);
    CHECK(tf::static_shape(last) == em::Shape{-1, 3});
    CHECK(tf::static_shape(first) == em::Shape{3, -1});
    CHECK(tf::static_shape(wide) == em::Shape{2, 2, 2});
    CHECK(custom.dtype() == em::int32);
    CHECK_THROWS_WITH(tf::one_hot(tf::constant(1.5f), 3),
                      "one_hot: indices has dtype float32; expected int32 or int64");
    CHECK_THROWS_WITH(tf::one_hot(ids, -1), "one_hot: depth must be >= 0 (got -1)");
    CHECK_THROWS_WITH(tf::one_hot(ids, 3, 1, 0, 2),
                      "one_hot: axis 2 is out of range for indices of rank 1 (use -1..1)");
  }
  tf::Session sess(g);
  auto r = sess.run({last, first, custom, wide}, {{ids, em::tensor(std::vector<int64_t>{2, -1, 0, 3}, {4})}});
  CHECK(r[0].to_vector<float>() == std::vector<float>{0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0});
  CHECK(r[1].to_vector<float>() == std::vector<float>{0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  CHECK(r[2].to_vector<int32_t>() == std::vector<int32_t>{-1, -1, 5, -1, -1, -1, 5, -1, -1, -1, -1, -1});
  // ids2 [[0, 2], [1, 1]], depth 2 at axis 1: out[i][k][j] = ids2[i][j] == k.
  CHECK(r[3].to_vector<double>() == std::vector<double>{1, 0, 0, 0, 0, 0, 1, 1});
}

TEST_CASE("stop_gradient blocks gradients in graphs and under an eager GradientTape", "[compat][ops][autograd]") {
  tf::Graph g;
  Tensor x, gx, gx_through;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {3}, "x");
    Tensor frozen = tf::stop_gradient(x * x);
    CHECK(tf::tensor_name(frozen) == "stop_gradient:0");
    // d/dx (x * stop(x^2)) = stop(x^2): the product rule loses the stopped factor's term.
    gx = tf::gradients(tf::reduce_sum(x * frozen), x);
    gx_through = tf::gradients(tf::reduce_sum(x * tf::identity(x * x)), x);
  }
  tf::Session sess(g);
  const tf::FeedDict feed{{x, em::tensor(std::vector<float>{1, 2, 3}, {3})}};
  CHECK(sess.run(gx, feed).to_vector<float>() == std::vector<float>{1, 4, 9});
  CHECK(sess.run(gx_through, feed).to_vector<float>() == std::vector<float>{3, 12, 27});
  // Eager: the tape sees an untracked alias, a constant.
  Tensor v = em::tensor(std::vector<float>{1, 2, 3}, {3});
  em::GradientTape tape;
  tape.watch(v);
  Tensor y = em::sum(v * tf::stop_gradient(v * v));
  CHECK(tape.gradient(y, v).to_vector<float>() == std::vector<float>{1, 4, 9});
}

TEST_CASE("truncated_normal keeps samples within 2 stddev and draws anew each run", "[compat][ops][random]") {
  tf::Graph g;
  Tensor w, linked, x;
  {
    auto scope = g.as_default();
    w = tf::truncated_normal({300, 200}, 1.0, 0.1);
    x = tf::placeholder(em::float32, {-1, 4}, "x");
    linked = tf::truncated_normal({tf::shape(x)[0], 2}, 0.0, 1.0, em::float64);
    CHECK(tf::static_shape(linked) == em::Shape{-1, 2});
    CHECK(linked.dtype() == em::float64);
    CHECK_THROWS_WITH(tf::truncated_normal({2}, 0.0, -1.0), "truncated_normal: stddev must be >= 0 (got -1)");
    CHECK_THROWS_AS(tf::truncated_normal({2}, 0.0, 1.0, em::int32), em::DTypeError);
  }
  tf::Session sess(g);
  const auto a = sess.run(w).to_vector<float>();
  const auto b = sess.run(w).to_vector<float>();
  CHECK(a != b);
  double sum = 0, sq = 0;
  for (float v : a) {
    sum += v;
    sq += (v - 1.0) * (v - 1.0);
  }
  CHECK(*std::min_element(a.begin(), a.end()) >= 0.8f - 1e-6f);
  CHECK(*std::max_element(a.begin(), a.end()) <= 1.2f + 1e-6f);
  const double n = static_cast<double>(a.size());
  CHECK(sum / n == Approx(1.0).margin(0.001));
  CHECK(std::sqrt(sq / n) == Approx(0.1 * 0.87962).margin(0.001));  // a normal cut at +-2 sd
  const Tensor l = sess.run(linked, {{x, em::zeros({5, 4})}});
  CHECK(l.shape() == em::Shape{5, 2});
  for (double v : l.to_vector<double>()) CHECK(std::abs(v) <= 2.0);
}

TEST_CASE("nn activations, l2_loss and moments", "[compat][ops]") {
  tf::Graph g;
  Tensor x, r6, leaky, leaky2, elu, sp, l2, mean, var, gelu_grad;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float64, {-1, 2}, "x");
    r6 = tf::nn::relu6(x);
    leaky = tf::nn::leaky_relu(x);
    leaky2 = tf::nn::leaky_relu(x, 2.0);
    elu = tf::nn::elu(x);
    sp = tf::nn::softplus(x);
    l2 = tf::nn::l2_loss(x);
    std::tie(mean, var) = tf::nn::moments(x, {0});
    // elu's gradient stays finite where exp(x) would overflow.
    gelu_grad = tf::gradients(tf::reduce_sum(elu), x);
    CHECK(tf::static_shape(mean) == em::Shape{2});
    auto [mk, vk] = tf::nn::moments(x, {0}, true, "m");
    CHECK(tf::static_shape(vk) == em::Shape{1, 2});
    CHECK(tf::tensor_name(vk) == "m/variance:0");
    CHECK(tf::tensor_name(mk) == "m/mean:0");
    CHECK_THROWS_WITH(tf::nn::l2_loss(tf::constant(3)), "l2_loss: t has dtype int32; expected a floating dtype");
    CHECK_THROWS_WITH(tf::nn::leaky_relu(tf::constant(3)), "leaky_relu: x has dtype int32; expected a floating dtype");
  }
  tf::Session sess(g);
  const std::vector<double> xv{-3, 7, 0.5, 1000, -1, 2};
  const tf::FeedDict feed{{x, em::tensor(xv, {3, 2})}};
  std::vector<double> w6, wl, wl2, we, wsp, wg;
  double wl2loss = 0;
  for (double v : xv) {
    w6.push_back(std::clamp(v, 0.0, 6.0));
    wl.push_back(v > 0 ? v : 0.2 * v);
    wl2.push_back(v > 0 ? v : 2 * v);
    we.push_back(v > 0 ? v : std::expm1(v));
    wsp.push_back(v > 30 ? v : std::log1p(std::exp(v)));
    wg.push_back(v > 0 ? 1 : std::exp(v));
    wl2loss += v * v / 2;
  }
  check_near(run_values(sess, r6, feed), w6, 1e-12);
  check_near(run_values(sess, leaky, feed), wl, 1e-12);
  check_near(run_values(sess, leaky2, feed), wl2, 1e-12);
  check_near(run_values(sess, elu, feed), we, 1e-12);
  check_near(run_values(sess, sp, feed), wsp, 1e-12);
  check_near(run_values(sess, gelu_grad, feed), wg, 1e-12);
  CHECK(sess.run(l2, feed).item<double>() == Approx(wl2loss));
  // Columns {-3, 0.5, -1} and {7, 1000, 2}: population variance, as TF.
  const double m0 = (-3 + 0.5 - 1) / 3.0, m1 = (7 + 1000 + 2) / 3.0;
  const double v0 = ((-3 - m0) * (-3 - m0) + (0.5 - m0) * (0.5 - m0) + (-1 - m0) * (-1 - m0)) / 3;
  const double v1 = ((7 - m1) * (7 - m1) + (1000 - m1) * (1000 - m1) + (2 - m1) * (2 - m1)) / 3;
  check_near(run_values(sess, mean, feed), {m0, m1}, 1e-12);
  check_near(run_values(sess, var, feed), {v0, v1}, 1e-12);
}

TEST_CASE("softmax cross-entropies match a float64 reference, with TF1's gradient rules", "[compat][ops][autograd]") {
  tf::Graph g;
  Tensor labels, logits, sparse, xent_v2, xent_v1, sparse_loss, dense_of_sparse, g_logits, g_labels_v2, g_labels_v1,
      g_sparse, mean_loss, mean_sparse;
  {
    auto scope = g.as_default();
    labels = tf::placeholder(em::float64, {-1, 3}, "labels");
    logits = tf::placeholder(em::float64, {-1, 3}, "logits");
    sparse = tf::placeholder(em::int32, {-1}, "sparse");
    xent_v2 = tf::nn::softmax_cross_entropy_with_logits_v2(labels, logits);
    xent_v1 = tf::nn::softmax_cross_entropy_with_logits(labels, logits);
    sparse_loss = tf::nn::sparse_softmax_cross_entropy_with_logits(sparse, logits);
    dense_of_sparse =
        tf::nn::softmax_cross_entropy_with_logits_v2(tf::one_hot(sparse, 3, 1, 0, -1, em::float64), logits);
    CHECK(tf::static_shape(xent_v2) == em::Shape{-1});
    CHECK(tf::static_shape(sparse_loss) == em::Shape{-1});
    g_logits = tf::gradients(tf::reduce_sum(xent_v2), logits);
    g_labels_v2 = tf::gradients(tf::reduce_sum(xent_v2), labels);
    g_labels_v1 = tf::gradients(tf::reduce_sum(xent_v1), labels);
    g_sparse = tf::gradients(tf::reduce_sum(sparse_loss), logits);
    mean_loss = tf::losses::softmax_cross_entropy(labels, logits);
    mean_sparse = tf::losses::sparse_softmax_cross_entropy(sparse, logits);
  }
  tf::Session sess(g);
  const std::vector<double> z{1, 2, 3, -1, 0, 4};       // two rows of logits
  const std::vector<double> y{0.2, 0.3, 0.5, 0, 1, 0};  // soft labels
  const std::vector<int32_t> k{2, 0};
  const tf::FeedDict feed{
      {labels, em::tensor(y, {2, 3})}, {logits, em::tensor(z, {2, 3})}, {sparse, em::tensor(k, {2})}};
  std::vector<double> want, want_sparse, want_g, want_gy, want_gs;
  for (int r = 0; r < 2; ++r) {
    const auto ls = log_softmax_row({z[3 * r], z[3 * r + 1], z[3 * r + 2]});
    double loss = 0;
    for (int c = 0; c < 3; ++c) {
      loss -= y[3 * r + c] * ls[c];
      want_g.push_back(std::exp(ls[c]) - y[3 * r + c]);  // softmax - labels
      want_gy.push_back(-ls[c]);
      want_gs.push_back(std::exp(ls[c]) - (c == k[r] ? 1 : 0));
    }
    want.push_back(loss);
    want_sparse.push_back(-ls[k[r]]);
  }
  check_near(run_values(sess, xent_v2, feed), want, 1e-12);
  check_near(run_values(sess, xent_v1, feed), want, 1e-12);
  check_near(run_values(sess, sparse_loss, feed), want_sparse, 1e-12);
  check_near(run_values(sess, dense_of_sparse, feed), want_sparse, 1e-12);
  check_near(run_values(sess, g_logits, feed), want_g, 1e-12);
  check_near(run_values(sess, g_labels_v2, feed), want_gy, 1e-12);
  check_near(run_values(sess, g_labels_v1, feed), std::vector<double>(6, 0.0), 0);
  check_near(run_values(sess, g_sparse, feed), want_gs, 1e-12);
  CHECK(sess.run(mean_loss, feed).item<double>() == Approx((want[0] + want[1]) / 2).epsilon(1e-12));
  CHECK(sess.run(mean_sparse, feed).item<double>() == Approx((want_sparse[0] + want_sparse[1]) / 2).epsilon(1e-12));
  // A label outside [0, classes) fails when the graph runs, as TF's does.
  CHECK_THROWS_WITH(
      sess.run(sparse_loss, {{logits, em::tensor(z, {2, 3})}, {sparse, em::tensor(std::vector<int32_t>{3, 0}, {2})}}),
      "Session::run: node \"sparse_softmax_cross_entropy_with_logits/labels_in_range\": index_select: index 3 is "
      "out of range for dim 0 of size 3");
  // A gather's bad index names the gather; the failed runs wrote nothing.
  {
    auto scope = g.as_default();
    const Tensor picked = tf::gather(logits, sparse, 0, "picked");
    CHECK_THROWS_WITH(sess.run(picked, {{logits, em::tensor(z, {2, 3})}, {sparse, em::tensor(std::vector<int32_t>{0, 5}, {2})}}),
                      "Session::run: node \"picked\": index_select: index 5 is out of range for dim 0 of size 2");
  }
}

TEST_CASE("cross-entropy and loss errors name the op and the shapes", "[compat][ops][errors]") {
  tf::Graph g;
  auto scope = g.as_default();
  Tensor logits = tf::placeholder(em::float32, {-1, 3}, "logits");
  Tensor lab4 = tf::placeholder(em::float32, {-1, 4}, "lab4");
  Tensor ids = tf::placeholder(em::int64, {-1}, "ids");
  CHECK_THROWS_WITH(tf::nn::softmax_cross_entropy_with_logits_v2(lab4, logits),
                    "softmax_cross_entropy_with_logits_v2: labels and logits must have the same shape, got [-1,4] "
                    "and [-1,3]");
  CHECK_THROWS_WITH(tf::nn::softmax_cross_entropy_with_logits(tf::cast(logits, em::float64), logits),
                    "softmax_cross_entropy_with_logits: labels have dtype float64 but logits float32; they must match");
  CHECK_THROWS_WITH(tf::nn::sparse_softmax_cross_entropy_with_logits(tf::cast(ids, em::float32), logits),
                    "sparse_softmax_cross_entropy_with_logits: labels has dtype float32; expected int32 or int64");
  CHECK_THROWS_WITH(tf::nn::sparse_softmax_cross_entropy_with_logits(logits, logits),
                    Catch::Contains("labels has dtype float32"));
  CHECK_THROWS_WITH(tf::nn::sparse_softmax_cross_entropy_with_logits(tf::cast(logits, em::int64), logits),
                    "sparse_softmax_cross_entropy_with_logits: labels must have the shape of logits without its "
                    "last dim, got labels [-1,3] and logits [-1,3]");
  CHECK_THROWS_WITH(tf::nn::sparse_softmax_cross_entropy_with_logits(tf::placeholder(em::int64, {4}),
                                                                     tf::placeholder(em::float32, {5, 3})),
                    "sparse_softmax_cross_entropy_with_logits: labels [4] do not match logits [5,3] in dim 0");
  CHECK_THROWS_WITH(
      tf::nn::sparse_softmax_cross_entropy_with_logits(ids, tf::placeholder(em::float32, {-1, -1})),
      "sparse_softmax_cross_entropy_with_logits: the class count (last dim of logits [-1,-1]) must be known when "
      "the graph is built");
  CHECK_THROWS_WITH(tf::nn::sparse_softmax_cross_entropy_with_logits(ids, tf::cast(logits, em::int32)),
                    "sparse_softmax_cross_entropy_with_logits: logits has dtype int32; expected a floating dtype");
  CHECK_THROWS_WITH(tf::nn::sigmoid_cross_entropy_with_logits(lab4, logits),
                    Catch::Contains("sigmoid_cross_entropy_with_logits: labels and logits must have the same shape"));
  CHECK_THROWS_WITH(tf::losses::mean_squared_error(lab4, logits),
                    "mean_squared_error: labels and predictions must have the same shape, got [-1,4] and [-1,3]");
  // TF1 takes any numbers here, computing in float32.
  CHECK(tf::losses::absolute_difference(ids, ids).dtype() == em::float32);
  CHECK_THROWS_WITH(tf::add_n({}), "add_n: inputs must not be empty");
  CHECK_THROWS_WITH(tf::reduce_logsumexp(ids), "reduce_logsumexp: x has dtype int64; expected a floating dtype");
  CHECK_THROWS_WITH(tf::nn::elu(ids), "elu: x has dtype int64; expected a floating dtype");
  CHECK_THROWS_WITH(tf::clip_by_global_norm({logits}, -1.0), "clip_by_global_norm: clip_norm must be positive (got -1)");
  CHECK_THROWS_WITH(tf::tile(logits, {0, 1}),
                    "tile: multiples[0] is 0 for a tensor with dims unknown until the graph runs ([-1,3]); an empty "
                    "tile needs a known shape");
  CHECK_THROWS_WITH(tf::cond(Tensor(), [&] { return logits; }, [&] { return logits; }),
                    "cond: pred is an undefined tensor");
  CHECK_THROWS_WITH(tf::cond(tf::constant(true), [&] { return Tensor(); }, [&] { return logits; }),
                    "cond: output 0 of true_fn is an undefined tensor");
  CHECK_THROWS_WITH(tf::add_n({logits, lab4}),
                    "add_n: inputs[0] and inputs[1] must have the same shape, got [-1,3] and [-1,4]");
  CHECK_THROWS_WITH(tf::add_n({logits, tf::cast(logits, em::float64)}),
                    "add_n: inputs[1] has dtype float64 but inputs[0] float32");
  CHECK_THROWS_WITH(tf::logical_and(logits, logits), "logical_and: expected a bool tensor, got dtype float32");
  CHECK_THROWS_WITH(tf::reduce_any(ids), "reduce_any: expected a bool tensor, got dtype int64");
  CHECK_THROWS_WITH(tf::clip_by_value(tf::placeholder(em::float32, {3}), tf::placeholder(em::float32, {2, 3}), 1.f),
                    "clip_by_value: the bounds change the shape of x [3] to [2,3]");
}

TEST_CASE("sigmoid cross-entropy is stable for large logits; tf.losses take means", "[compat][ops]") {
  tf::Graph g;
  Tensor z, x, xent, sig_loss, mse, mad;
  {
    auto scope = g.as_default();
    z = tf::placeholder(em::float32, {-1}, "z");
    x = tf::placeholder(em::float32, {-1}, "x");
    xent = tf::nn::sigmoid_cross_entropy_with_logits(z, x);
    sig_loss = tf::losses::sigmoid_cross_entropy(z, x);
    mse = tf::losses::mean_squared_error(z, x);
    mad = tf::losses::absolute_difference(z, x);
  }
  tf::Session sess(g);
  const std::vector<double> xv{100, -100, 0, 2, -3}, zv{1, 1, 0, 0.25, 0};
  const tf::FeedDict feed{{x, em::tensor(std::vector<float>{100, -100, 0, 2, -3}, {5})},
                          {z, em::tensor(std::vector<float>{1, 1, 0, 0.25f, 0}, {5})}};
  std::vector<double> want;
  double mean_xent = 0, mean_sq = 0, mean_abs = 0;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    // -z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x)), from the stable identity in float64.
    const double v = std::max(xv[i], 0.0) - xv[i] * zv[i] + std::log1p(std::exp(-std::abs(xv[i])));
    want.push_back(v);
    mean_xent += v / 5;
    mean_sq += (xv[i] - zv[i]) * (xv[i] - zv[i]) / 5;
    mean_abs += std::abs(xv[i] - zv[i]) / 5;
  }
  CHECK(want[0] == Approx(0.0).margin(1e-40));  // x = 100, z = 1: no overflow, no log(0)
  CHECK(want[1] == Approx(100.0));
  check_near(run_values(sess, xent, feed), want, 1e-6);
  CHECK(sess.run(sig_loss, feed).item<float>() == Approx(mean_xent).epsilon(1e-6));
  CHECK(sess.run(mse, feed).item<float>() == Approx(mean_sq).epsilon(1e-6));
  CHECK(sess.run(mad, feed).item<float>() == Approx(mean_abs).epsilon(1e-6));
}

TEST_CASE("a TF1 softmax classifier trains with sparse_softmax_cross_entropy as the float64 update does",
          "[compat][ops][autograd]") {
  em::manual_seed(5);
  const Tensor xb = em::randn({6, 4}, em::float64), w0 = em::randn({4, 3}, em::float64) * 0.1;
  const std::vector<int64_t> yb{0, 2, 1, 1, 0, 2};
  tf::Graph g;
  Tensor x, y, loss;
  tf::Operation train, init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float64, {-1, 4}, "x");
    y = tf::placeholder(em::int64, {-1}, "y");
    tf::Variable w(w0, "w");
    loss = tf::reduce_mean(tf::nn::sparse_softmax_cross_entropy_with_logits(y, tf::matmul(x, w)));
    train = tf::train::GradientDescentOptimizer(0.5).minimize(loss);
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  const tf::FeedDict feed{{x, xb}, {y, em::tensor(yb, {6})}};
  // float64 reference: W -= lr * X^T (softmax(X W) - onehot(y)) / batch.
  std::vector<double> W = w0.to_vector<double>();
  const std::vector<double> X = xb.to_vector<double>();
  double first = 0, last = 0;
  for (int step = 0; step < 4; ++step) {
    std::vector<double> grad(12, 0.0);
    double l = 0;
    for (int r = 0; r < 6; ++r) {
      std::vector<double> z(3, 0.0);
      for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 4; ++i) z[c] += X[r * 4 + i] * W[i * 3 + c];
      const auto ls = log_softmax_row(z);
      l -= ls[yb[r]] / 6;
      for (int c = 0; c < 3; ++c) {
        const double d = (std::exp(ls[c]) - (c == yb[r] ? 1 : 0)) / 6;
        for (int i = 0; i < 4; ++i) grad[i * 3 + c] += X[r * 4 + i] * d;
      }
    }
    CHECK(sess.run(loss, feed).item<double>() == Approx(l).epsilon(1e-12));
    sess.run(train, feed);
    for (int i = 0; i < 12; ++i) W[i] -= 0.5 * grad[i];
    (step == 0 ? first : last) = l;
  }
  CHECK(last < first);
  check_near(sess.run(g.get_tensor_by_name("w:0")).to_vector<double>(), W, 1e-12);
}

TEST_CASE("cond selects the taken branch; assigns made in a branch write only when it is taken",
          "[compat][ops][cond]") {
  tf::Graph g;
  Tensor training, x, y, pair_sum, nested, moving_read, gx;
  tf::Operation init;
  {
    auto scope = g.as_default();
    training = tf::placeholder_with_default(tf::constant(true), {}, "training");
    x = tf::placeholder(em::float32, {-1}, "x");
    tf::Variable moving(tf::constant(0.f), "moving", false);
    tf::Variable count(tf::constant(int64_t{0}), "count", false);
    // The batch-norm pattern: the training branch updates a moving statistic.
    y = tf::cond(
        training,
        [&] {
          const Tensor mean = tf::reduce_mean(x);
          auto upd = moving.assign(moving * 0.5f + mean * 0.5f);
          auto deps = tf::control_dependencies({upd, count.assign_add(int64_t{1})});
          return tf::identity(x - mean);
        },
        [&] { return x - moving; });
    CHECK(tf::tensor_name(y) == "cond/where:0");
    CHECK(tf::static_shape(y) == em::Shape{-1});
    const auto two = tf::cond(
        training, [&] { return std::vector<Tensor>{x * 2.f, tf::reduce_sum(x)}; },
        [&] { return std::vector<Tensor>{x * 3.f, tf::reduce_max(x)}; }, "pair");
    pair_sum = two[0] + two[1];
    // Nested: the inner branch's assign writes only when both conds take it.
    nested = tf::cond(training, [&] {
      return tf::cond(tf::greater(tf::reduce_sum(x), 0.f), [&] { return count.assign_add(int64_t{10}); },
                      [&] { return tf::identity(count.value()); });
    }, [&] { return tf::identity(count.value()); });
    moving_read = tf::identity(moving.value());
    gx = tf::gradients(tf::reduce_sum(tf::cond(training, [&] { return x * x; }, [&] { return x * 3.f; })), x);
    init = tf::global_variables_initializer();
    CHECK_THROWS_WITH(tf::cond(x, [&] { return x; }, [&] { return x; }),
                      "cond: pred must be a 0-d bool tensor, got float32 [-1]");
    CHECK_THROWS_WITH(tf::cond(training, [&] { return x; }, [&] { return tf::cast(x, em::int32); }),
                      "cond: output 0 is float32 [-1] from true_fn but int32 [-1] from false_fn; the branches must "
                      "agree in dtype and shape");
    CHECK_THROWS_WITH(tf::cond(
                          training, [&] { return std::vector<Tensor>{x}; }, [&] { return std::vector<Tensor>{x, x}; }),
                      "cond: true_fn returned 1 tensors and false_fn 2; they must return as many");
  }
  tf::Session sess(g);
  sess.run(init);
  const Tensor xv = em::tensor(std::vector<float>{1, 2, 6}, {3});  // mean 3, sum 9, max 6
  const Tensor no = em::tensor(std::vector<bool>{false}, em::Shape{});
  Tensor count = g.get_tensor_by_name("count:0");
  // Training: centred by the batch mean; the moving mean and the count update.
  CHECK(sess.run(y, {{x, xv}}).to_vector<float>() == std::vector<float>{-2, -1, 3});
  CHECK(sess.run(moving_read).item<float>() == 1.5f);
  CHECK(sess.run(count).item<int64_t>() == 1);
  // Not training: centred by the moving mean; nothing is written.
  CHECK(sess.run(y, {{x, xv}, {training, no}}).to_vector<float>() == std::vector<float>{-0.5f, 0.5f, 4.5f});
  CHECK(sess.run(moving_read).item<float>() == 1.5f);
  CHECK(sess.run(count).item<int64_t>() == 1);
  CHECK(sess.run(pair_sum, {{x, xv}}).to_vector<float>() == std::vector<float>{11, 13, 21});
  CHECK(sess.run(pair_sum, {{x, xv}, {training, no}}).to_vector<float>() == std::vector<float>{9, 12, 24});
  // Nested: only training with a positive sum adds 10.
  CHECK(sess.run(nested, {{x, xv}}).item<int64_t>() == 11);
  CHECK(sess.run(nested, {{x, xv * -1.f}}).item<int64_t>() == 11);
  CHECK(sess.run(nested, {{x, xv}, {training, no}}).item<int64_t>() == 11);
  CHECK(sess.run(count).item<int64_t>() == 11);
  // The gradient follows the taken branch.
  CHECK(sess.run(gx, {{x, xv}}).to_vector<float>() == std::vector<float>{2, 4, 12});
  CHECK(sess.run(gx, {{x, xv}, {training, no}}).to_vector<float>() == std::vector<float>{3, 3, 3});
  // Eagerly only the taken branch runs.
  int calls = 0;
  const Tensor e = tf::cond(
      em::tensor(std::vector<bool>{true}, em::Shape{}), [&] { return em::ones({2}); },
      [&] {
        ++calls;
        return em::zeros({2});
      });
  CHECK(e.to_vector<float>() == std::vector<float>{1, 1});
  CHECK(calls == 0);
}

TEST_CASE("a session run computes only the branch a cond takes", "[compat][ops][cond]") {
  tf::Graph g;
  Tensor flag, x, scaled, shaped, drawn, inner, inner_out, peak, maxed, r, big, twice, count, counted, inc, eager_out,
      ticked, ticks, ticks_pred;
  tf::Operation init, ticks_init;
  {
    auto scope = g.as_default();
    flag = tf::placeholder(em::bool_, {}, "flag");
    x = tf::placeholder(em::float32, {-1}, "x");
    // A placeholder made inside a branch needs a feed only when the branch runs.
    scaled = tf::cond(flag, [&] { return x * tf::placeholder(em::float32, {}, "scale"); }, [&] { return x; });
    // An op that fails in the run (3 elements into rows of 2) fails only when taken.
    shaped = tf::cond(flag, [&] { return tf::reduce_sum(tf::reshape(x, {-1, 2}), {1}); }, [&] { return x; });
    // A draw in the untaken branch leaves the generator where it was.
    drawn = tf::cond(flag, [&] { return tf::random_uniform({3}); }, [&] { return tf::zeros({3}); });
    // A tensor made inside a branch, used outside the cond (not by a merge): both branches run.
    inner_out = tf::cond(flag, [&] { return inner = x + 1.f; }, [&] { return x; });
    // A pred computed in the run: reduce_max of an empty x fails, the cond skips it.
    peak = tf::cond(tf::greater(tf::size(x), 0), [&] { return tf::reduce_max(x); }, [&] { return tf::constant(0.f); });
    maxed = tf::reduce_max(x);
    // The pred's own inputs run once: the draw the pred reads is the one the branches read.
    r = tf::random_uniform({4});
    big = tf::greater(tf::reduce_sum(r), 2.f);
    twice = tf::cond(big, [&] { return r * 2.f; }, [&] { return r * 3.f; });
    // A pred that assigns: one increment per run.
    tf::Variable counter(tf::constant(0), "counter");
    count = counter.value();
    init = counter.initializer();
    inc = counter.assign_add(1);
    counted = tf::cond(tf::less(inc, 3), [&] { return tf::constant(1); }, [&] { return tf::constant(0); });
    // An eager output is a constant of the graph; the cond stays lazy.
    eager_out = tf::cond(
        flag, [&] { return tf::reduce_sum(x) * tf::placeholder(em::float32, {}, "weight"); },
        [&] { return em::scalar_tensor(7.f); });
    // A group that the pred and the taken branch both wait for runs once, whether the pred is computed or fed.
    tf::Variable tick_count(tf::constant(0), "ticks");
    ticks = tick_count.value();
    ticks_init = tick_count.initializer();
    const tf::Operation tick = tf::group({tick_count.assign_add(1)});
    {
      auto deps = tf::control_dependencies({tick});
      ticks_pred = tf::identity(tf::greater(tf::size(x), 0));
    }
    ticked = tf::cond(ticks_pred, [&] {
      auto deps = tf::control_dependencies({tick});
      return tf::identity(x);
    }, [&] { return x; });
  }
  tf::Session sess(g);
  const Tensor xv = em::tensor(std::vector<float>{1, 2, 6}, {3});
  const Tensor yes = em::tensor(std::vector<bool>{true}, em::Shape{}), no = em::tensor(std::vector<bool>{false}, em::Shape{});
  const Tensor scale = g.get_tensor_by_name("cond/scale:0");
  CHECK(sess.run(scaled, {{flag, no}, {x, xv}}).to_vector<float>() == std::vector<float>{1, 2, 6});
  CHECK(sess.run(scaled, {{flag, yes}, {x, xv}, {scale, em::scalar_tensor(2.f)}}).to_vector<float>() ==
        std::vector<float>{2, 4, 12});
  CHECK_THROWS_WITH(sess.run(scaled, {{flag, yes}, {x, xv}}),
                    "Session::run: placeholder \"cond/scale\" (float32 []) was not fed");
  CHECK(sess.run(shaped, {{flag, no}, {x, xv}}).to_vector<float>() == std::vector<float>{1, 2, 6});
  CHECK_THROWS_WITH(sess.run(shaped, {{flag, yes}, {x, xv}}),
                    "Session::run: node \"cond_1/reshape\": reshape: a tensor of shape [3] cannot be reshaped to [-1,2]");
  // A prepared run decides per call.
  const tf::Callable call = sess.make_callable({shaped}, {flag, x});
  const Tensor four = em::tensor(std::vector<float>{1, 2, 3, 4}, {4});
  CHECK(call({no, xv})[0].to_vector<float>() == std::vector<float>{1, 2, 6});
  CHECK(call({yes, four})[0].to_vector<float>() == std::vector<float>{3, 7});
  CHECK(call({no, four})[0].to_vector<float>() == std::vector<float>{1, 2, 3, 4});
  // The untaken draw: the generator is where a run that never drew leaves it.
  em::manual_seed(11);
  CHECK(sess.run(drawn, {{flag, no}}).to_vector<float>() == std::vector<float>{0, 0, 0});
  const std::vector<float> after_skip = sess.run(drawn, {{flag, yes}}).to_vector<float>();
  em::manual_seed(11);
  CHECK(sess.run(drawn, {{flag, yes}}).to_vector<float>() == after_skip);
  // A traced run lists the taken branch's nodes only.
  auto ran_random = [&](const Tensor& f) {
    tf::RunOptions opts;
    opts.trace = true;
    tf::RunMetadata md;
    sess.run({drawn}, {{flag, f}}, opts, &md);
    return std::count_if(md.step_stats.begin(), md.step_stats.end(),
                         [](const tf::NodeStats& st) { return st.op == "rand"; });
  };
  CHECK(ran_random(no) == 0);
  CHECK(ran_random(yes) == 1);
  // Read outside its cond, a branch's tensor is computed: that cond runs both branches.
  CHECK(sess.run(inner, {{flag, no}, {x, xv}}).to_vector<float>() == std::vector<float>{2, 3, 7});
  const std::vector<Tensor> both = sess.run({inner_out, inner}, {{flag, no}, {x, xv}});
  CHECK(both[0].to_vector<float>() == std::vector<float>{1, 2, 6});
  CHECK(both[1].to_vector<float>() == std::vector<float>{2, 3, 7});
  // A pred computed in the run.
  const Tensor empty = em::zeros({0});
  CHECK_THROWS_WITH(sess.run(maxed, {{x, empty}}), "Session::run: node \"max\": max: cannot reduce over axis 0 of "
                                                  "size 0 (shape [0]); max has no identity");
  CHECK(sess.run(peak, {{x, empty}}).item<float>() == 0.f);
  CHECK(sess.run(peak, {{x, xv}}).item<float>() == 6.f);
  int sides[2] = {0, 0};
  for (int i = 0; i < 16; ++i) {
    const std::vector<Tensor> v = sess.run({r, twice, big});
    const bool b = v[2].item<bool>();
    ++sides[b];
    const std::vector<float> rv = v[0].to_vector<float>(), tv = v[1].to_vector<float>();
    for (std::size_t k = 0; k < 4; ++k) CHECK(tv[k] == rv[k] * (b ? 2.f : 3.f));
  }
  CHECK(sides[0] > 0);
  CHECK(sides[1] > 0);
  sess.run(init);
  std::vector<int> seen;
  for (int i = 0; i < 5; ++i) seen.push_back(sess.run(counted).item<int>());
  CHECK(seen == std::vector<int>{1, 1, 0, 0, 0});
  CHECK(sess.run(count).item<int>() == 5);
  // The pred's assign fetched as an operation too: it still runs once.
  const std::vector<Tensor> with_op = sess.run({tf::op_of(inc), counted});
  CHECK_FALSE(with_op[0].defined());
  CHECK(with_op[1].item<int>() == 0);
  CHECK(sess.run(count).item<int>() == 6);
  CHECK(sess.run(eager_out, {{flag, no}, {x, xv}}).item<float>() == 7.f);
  sess.run(ticks_init);
  CHECK(sess.run(ticked, {{x, xv}}).to_vector<float>() == std::vector<float>{1, 2, 6});
  CHECK(sess.run(ticks).item<int>() == 1);
  CHECK(sess.run(ticked, {{x, xv}, {ticks_pred, yes}}).to_vector<float>() == std::vector<float>{1, 2, 6});
  CHECK(sess.run(ticks).item<int>() == 2);
  CHECK(sess.run(ticked, {{x, xv}}).to_vector<float>() == std::vector<float>{1, 2, 6});
  CHECK(sess.run(ticks).item<int>() == 3);
  // A capture::Graph has no control flow: it runs both branches and selects.
  ember::capture::Graph cg = sess.to_capture({drawn}, {{flag, no}});
  CHECK(cg.run({no})[0].to_vector<float>() == std::vector<float>{0, 0, 0});
  const std::vector<float> cg_drawn = cg.run({yes})[0].to_vector<float>();
  CHECK(std::all_of(cg_drawn.begin(), cg_drawn.end(), [](float v) { return v > 0.f && v < 1.f; }));
}

TEST_CASE("while_loop runs its body while cond holds", "[compat][ops][while]") {
  tf::Graph g;
  Tensor n, x, flag, sum, power, grown, capped, ticks, nested, evens, chained, skipped, wrong, inside, in_body, waited,
      stopped, built_from_inside;
  tf::Variable* counter_ptr = nullptr;
  tf::Operation init;
  {
    auto scope = g.as_default();
    n = tf::placeholder(em::int32, {}, "n");
    x = tf::placeholder(em::float32, {-1}, "x");
    const Tensor zero = tf::constant(0);
    flag = tf::placeholder(em::bool_, {}, "flag");
    // sum of 0..n-1; the bound n is read from outside the loop.
    const auto s = tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(v[0], n); },
                                  [&](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0] + 1, v[1] + v[0]}; },
                                  {tf::constant(0), tf::constant(0)});
    sum = s[1];
    CHECK(tf::tensor_name(sum) == "while/Exit_1:0");
    // x ** 3 elementwise: a fed tensor of unknown length, read each iteration.
    power = tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(v[0], 3); },
                           [&](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0] + 1, v[1] * x}; },
                           {tf::constant(0), tf::ones_like(x)})[1];
    // A variable that doubles its length: shape_invariants let dim 0 change.
    grown = tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(tf::size(v[0]), 5); },
                           [&](const std::vector<Tensor>& v) { return std::vector<Tensor>{tf::concat({v[0], v[0]}, 0)}; },
                           {tf::constant(std::vector<float>{1, 2}, {2})}, {em::Shape{-1}})[0];
    // maximum_iterations stops a cond that always holds.
    capped = tf::while_loop([&](const std::vector<Tensor>&) { return tf::constant(true); },
                            [&](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0] * 2.f}; },
                            {tf::constant(1.f)}, {}, 4)[0];
    // An assign in the body: each iteration sees the last one's write.
    static tf::Variable counter(tf::constant(0), "counter");
    counter_ptr = &counter;
    init = counter.initializer();
    ticks = tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(v[0], 5); },
                           [&](const std::vector<Tensor>& v) {
                             auto deps = tf::control_dependencies({counter.assign_add(1)});
                             return std::vector<Tensor>{tf::identity(v[0] + 1)};
                           },
                           {tf::constant(0)})[0];
    // Nested: 3 outer iterations of 4 inner ones.
    nested = tf::while_loop(
        [&](const std::vector<Tensor>& v) { return tf::less(v[0], 3); },
        [&](const std::vector<Tensor>& v) {
          const auto inner = tf::while_loop([&](const std::vector<Tensor>& w) { return tf::less(w[0], 4); },
                                            [&](const std::vector<Tensor>& w) {
                                              return std::vector<Tensor>{w[0] + 1, w[1] + 1};
                                            },
                                            {tf::constant(0), v[1]});
          return std::vector<Tensor>{v[0] + 1, inner[1]};
        },
        {tf::constant(0), tf::constant(0)})[1];
    // A cond in the body: only the even numbers below 10 are added.
    evens = tf::while_loop(
        [&](const std::vector<Tensor>& v) { return tf::less(v[0], 10); },
        [&](const std::vector<Tensor>& v) {
          const Tensor even = tf::equal(tf::cast(tf::cast(v[0], em::float32) / 2.f, em::int32) * 2, v[0]);
          return std::vector<Tensor>{v[0] + 1, tf::cond(even, [&] { return v[1] + v[0]; }, [&] { return v[1]; })};
        },
        {tf::constant(0), tf::constant(0)})[1];
    // One loop's output starts another.
    chained = tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(v[0], sum); },
                             [&](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0] + 10}; },
                             {tf::constant(0)})[0];
    // A loop in an untaken branch does not run (its body would fail: 6 elements into rows of 4).
    skipped = tf::cond(
        flag,
        [&] {
          return tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(tf::size(v[0]), 10); },
                                [&](const std::vector<Tensor>& v) {
                                  return std::vector<Tensor>{tf::reshape(tf::reshape(tf::concat({v[0], x}, 0), {-1, 4}), {-1})};
                                },
                                {x}, {em::Shape{-1}})[0];
        },
        [&] { return x; });
    // A variable whose length changes without a shape invariant: caught in the run.
    wrong = tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(tf::size(v[0]), 4); },
                           [&](const std::vector<Tensor>&) { return std::vector<Tensor>{x}; },
                           {tf::constant(std::vector<float>{1, 2}, {2})})[0];
    tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(v[0], 2); },
                   [&](const std::vector<Tensor>& v) {
                     in_body = counter.assign_add(0);
                     return std::vector<Tensor>{inside = v[0] + 1};
                   },
                   {tf::constant(0)}, {}, -1, "loop");
    // The scope's control inputs run once, before the loop; so does an operation outside it that the body waits for.
    {
      auto deps = tf::control_dependencies({tf::op_of(counter.assign_add(100))});
      const tf::Operation bump = tf::group({counter.assign_add(1000)});
      waited = tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(v[0], 3); },
                              [&](const std::vector<Tensor>& v) {
                                auto wait = tf::control_dependencies({bump});
                                return std::vector<Tensor>{tf::identity(v[0] + 1), v[1] + counter.value()};
                              },
                              {zero, zero})[1];
    }
    // A tensor of a loop used to build a node outside it.
    built_from_inside = inside * 2;
    // A loop output behind stop_gradient is no gradient path.
    const Tensor xs = tf::placeholder(em::float32, {}, "xs");
    stopped = tf::gradients(xs * tf::stop_gradient(tf::cast(sum, em::float32)), {xs})[0];
    const auto two = [](const std::vector<Tensor>& v) { return tf::less(tf::size(v[0]), 2); };
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>& v) { return v; }, {}),
                      "while_loop: loop_vars is empty");
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>& v) { return v; }, {zero, Tensor()}),
                      "while_loop: loop variable 1 is an undefined tensor");
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>& v) { return v; }, {zero}, {{}, {}}),
                      "while_loop: 2 shape_invariants given for 1 loop variables");
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>&) { return std::vector<Tensor>{Tensor()}; },
                                     {zero}),
                      "while_loop: body output 0 is an undefined tensor");
    CHECK_THROWS_WITH(tf::while_loop([](const std::vector<Tensor>&) { return Tensor(); },
                                     [](const std::vector<Tensor>& v) { return v; }, {zero}),
                      "while_loop: cond returned an undefined tensor");
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0], v[0]}; },
                                     {tf::constant(0)}),
                      "while_loop: body returned 2 tensors for 1 loop variables");
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>& v) { return std::vector<Tensor>{tf::cast(v[0], em::float32)}; },
                                     {tf::constant(0)}),
                      "while_loop: body output 0 is float32 [] but loop variable 0 is int32 []");
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>& v) { return std::vector<Tensor>{tf::concat({v[0], v[0]}, 0)}; },
                                     {tf::constant(std::vector<int>{1}, {1})}),
                      "while_loop: body output 0 is int32 [2] but loop variable 0 is int32 [1]; give shape_invariants "
                      "(-1 for the dims that change) to let it change");
    CHECK_THROWS_WITH(tf::while_loop([](const std::vector<Tensor>& v) { return v[0]; },
                                     [](const std::vector<Tensor>& v) { return v; }, {tf::constant(0)}),
                      "while_loop: cond must return a 0-d bool tensor, got int32 []");
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>& v) { return v; }, {tf::constant(0)}, {{2}}),
                      "while_loop: loop variable 0 has shape [], which shape_invariants[0] [2] does not admit");
    CHECK_THROWS_WITH(tf::while_loop(two, [](const std::vector<Tensor>& v) { return v; }, {tf::constant(0)}, {}, -2),
                      "while_loop: maximum_iterations must be >= 0, or -1 for no limit (got -2)");
    const Tensor w = tf::placeholder(em::float32, {}, "w");
    const Tensor looped = tf::while_loop([&](const std::vector<Tensor>& v) { return tf::less(v[0], 3.f); },
                                         [&](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0] + w}; },
                                         {w}, {}, -1, "adder")[0];
    CHECK_THROWS_WITH(tf::gradients(looped, {w}),
                      "gradients: \"adder/Exit:0\", an output of while_loop \"adder\", lies between the ys and "
                      "the xs; gradients through a while_loop are not supported");
  }
  tf::Session sess(g);
  auto i32 = [](int v) { return em::scalar_tensor(v, em::int32); };
  const Tensor xv = em::tensor(std::vector<float>{1, 2, 3}, {3});
  const Tensor no = em::tensor(std::vector<bool>{false}, em::Shape{});
  CHECK(sess.run(sum, {{n, i32(5)}}).item<int>() == 10);
  CHECK(sess.run(sum, {{n, i32(0)}}).item<int>() == 0);
  CHECK(sess.run(sum, {{n, i32(100)}}).item<int>() == 4950);
  CHECK(sess.run(power, {{x, xv}}).to_vector<float>() == std::vector<float>{1, 8, 27});
  CHECK(sess.run(power, {{x, em::zeros({0})}}).numel() == 0);
  const Tensor gv = sess.run(grown);
  CHECK(gv.shape() == em::Shape{8});
  CHECK(gv.to_vector<float>() == std::vector<float>{1, 2, 1, 2, 1, 2, 1, 2});
  CHECK(sess.run(capped).item<float>() == 16.f);
  sess.run(init);
  CHECK(sess.run(ticks).item<int>() == 5);
  CHECK(sess.run(counter_ptr->value()).item<int>() == 5);
  // 100 and 1000 once, then three iterations read it: 3 * 1105.
  CHECK(sess.run(waited).item<int>() == 3 * 1105);
  CHECK(sess.run(counter_ptr->value()).item<int>() == 1105);
  CHECK(sess.run(stopped, {{n, i32(3)}, {g.get_tensor_by_name("xs:0"), em::scalar_tensor(2.f)}}).item<float>() == 3.f);
  CHECK(sess.run(nested).item<int>() == 12);
  CHECK(sess.run(evens).item<int>() == 0 + 2 + 4 + 6 + 8);
  const std::vector<Tensor> both = sess.run({sum, chained}, {{n, i32(5)}});
  CHECK(both[0].item<int>() == 10);
  CHECK(both[1].item<int>() == 10);
  CHECK(sess.run(chained, {{n, i32(6)}}).item<int>() == 20);
  CHECK(sess.run(skipped, {{flag, no}, {x, xv}}).to_vector<float>() == std::vector<float>{1, 2, 3});
  CHECK_THROWS_WITH(sess.run(skipped, {{flag, em::tensor(std::vector<bool>{true}, em::Shape{})}, {x, xv}}),
                    Catch::Contains("reshape: a tensor of shape [6] cannot be reshaped to [-1,4]"));
  CHECK_THROWS_WITH(sess.run(wrong, {{x, xv}}),
                    "Session::run: while_loop \"while_8\": body output 0 has shape [3] in iteration 0, which loop "
                    "variable 0 of shape [2] does not admit; give shape_invariants (-1 for the dims that change) to "
                    "let it change");
  CHECK_THROWS_WITH(sess.run(inside), "Session::run: fetch \"loop/add\" is inside while_loop \"loop\"; only the loop's "
                                      "outputs can be used outside it");
  CHECK_THROWS_WITH(sess.run(sum, {{n, i32(2)}, {inside, i32(7)}}),
                    "Session::run: feed key \"loop/add\" is inside while_loop \"loop\"; only the loop's outputs can be "
                    "used outside it");
  CHECK_THROWS_WITH(sess.run(built_from_inside), "Session::run: node \"loop/loop_var\" is inside while_loop \"loop\"; "
                                                 "only the loop's outputs can be used outside it");
  CHECK_THROWS_WITH(sess.run(tf::op_of(in_body)), "Session::run: fetch \"counter/assign_add_1\" is inside while_loop \"loop\"; "
                                                   "only the loop's outputs can be used outside it");
  CHECK_THROWS_WITH(sess.make_callable({inside}), "Session::make_callable: fetch \"loop/add\" is inside while_loop "
                                                  "\"loop\"; only the loop's outputs can be used outside it");
  CHECK_THROWS_WITH(sess.to_capture({sum}, {{n, i32(5)}}),
                    "Session::to_capture: \"while/Exit_1:0\" is an output of while_loop \"while\"; a capture::Graph "
                    "has no loops");
  // A prepared run, and a traced one.
  const tf::Callable call = sess.make_callable({sum}, {n});
  CHECK(call({i32(4)})[0].item<int>() == 6);
  CHECK(call({i32(3)})[0].item<int>() == 3);
  tf::RunOptions opts;
  opts.trace = true;
  tf::RunMetadata md;
  sess.run({sum}, {{n, i32(3)}}, opts, &md);
  CHECK(std::count_if(md.step_stats.begin(), md.step_stats.end(),
                      [](const tf::NodeStats& st) { return st.name == "while/lt"; }) == 4);
  // Eagerly, a plain loop.
  const auto e = tf::while_loop([](const std::vector<Tensor>& v) { return v[0] < 4; },
                                [](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0] + 1}; },
                                {em::scalar_tensor(0, em::int32)});
  CHECK(e[0].item<int>() == 4);
  CHECK_THROWS_WITH(tf::while_loop([](const std::vector<Tensor>& v) { return em::scalar_tensor(v[0].numel() < 3); },
                                   [](const std::vector<Tensor>& v) {
                                     return std::vector<Tensor>{em::concat({v[0], v[0]}, 0)};
                                   },
                                   {em::ones({1})}),
                    "while_loop: body output 0 is float32 [2] but loop variable 0 is float32 [1]; give shape_invariants "
                    "(-1 for the dims that change) to let it change");
}

TEST_CASE("gradients at kinks and bounds are TF's", "[compat][ops][autograd]") {
  tf::Graph g;
  Tensor x, z, grads[6], clipped_rev;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float64, {5}, "x");
    z = tf::placeholder(em::float64, {5}, "z");
    grads[0] = tf::gradients(tf::reduce_sum(tf::nn::sigmoid_cross_entropy_with_logits(z, x)), x);
    grads[1] = tf::gradients(tf::reduce_sum(tf::nn::relu6(x)), x);
    grads[2] = tf::gradients(tf::reduce_sum(tf::nn::leaky_relu(x, 0.2)), x);
    grads[3] = tf::gradients(tf::reduce_sum(tf::nn::elu(x)), x);
    grads[4] = tf::gradients(tf::reduce_sum(tf::clip_by_value(x, 0.0, 6.0)), x);
    grads[5] = tf::gradients(tf::reduce_sum(tf::reduce_prod(x)), x);
    clipped_rev = tf::clip_by_value(x, 2.0, 1.0);  // lo > hi: TF gives lo
  }
  tf::Session sess(g);
  const tf::FeedDict feed{{x, em::tensor(std::vector<double>{0, 6, -1, 3, 7}, {5})},
                          {z, em::tensor(std::vector<double>{0, 1, 0.5, 1, 0}, {5})}};
  auto grad = [&](int i) { return sess.run(grads[i], feed).to_vector<double>(); };
  const double s = 1 / (1 + std::exp(-6.0)), s1 = 1 / (1 + std::exp(1.0)), s3 = 1 / (1 + std::exp(-3.0)),
               s7 = 1 / (1 + std::exp(-7.0));
  check_near(grad(0), {0.5, s - 1, s1 - 0.5, s3 - 1, s7}, 1e-12);  // sigmoid(x) - z, 0.5 at x = 0
  CHECK(grad(1) == std::vector<double>{0, 0, 0, 1, 0});             // 1 only for 0 < x < 6
  CHECK(grad(2) == std::vector<double>{0.2, 1, 0.2, 1, 1});         // alpha at 0
  check_near(grad(3), {1, 1, std::exp(-1.0), 1, 1}, 1e-12);         // elu: 1 at 0
  CHECK(grad(4) == std::vector<double>{1, 1, 0, 1, 0});             // a value on a bound keeps its gradient
  CHECK(grad(5) == std::vector<double>{-126, 0, 0, 0, 0});          // one zero: the others' product there
  CHECK(sess.run(clipped_rev, feed).to_vector<double>() == std::vector<double>(5, 2.0));
}

TEST_CASE("tf.losses cast, stop gradients into labels and name their values as TF1", "[compat][ops]") {
  tf::Graph g;
  Tensor logits, soft, ids_col, mse64, names[5], g_soft, sparse_col;
  {
    auto scope = g.as_default();
    logits = tf::placeholder(em::float32, {-1, 3}, "logits");
    soft = tf::placeholder(em::float32, {-1, 3}, "soft");
    ids_col = tf::placeholder(em::int64, {-1, 1}, "ids_col");
    // A distillation target: no gradient may reach the teacher's soft labels.
    g_soft = tf::gradients(tf::losses::softmax_cross_entropy(soft, logits), soft);
    sparse_col = tf::losses::sparse_softmax_cross_entropy(ids_col, logits);  // [N, 1] labels squeeze
    Tensor p64 = tf::placeholder(em::float64, {2}, "p64");
    mse64 = tf::losses::mean_squared_error(p64, p64 * 2.0);
    CHECK(mse64.dtype() == em::float32);  // TF1's to_float
    names[0] = tf::losses::mean_squared_error(soft, logits);
    names[1] = tf::losses::absolute_difference(soft, logits);
    names[2] = tf::losses::softmax_cross_entropy(tf::cast(soft, em::int32), logits);  // integer one-hot cast
    names[3] = sparse_col;
    names[4] = tf::losses::sigmoid_cross_entropy(soft, logits, "bce");
  }
  CHECK(tf::tensor_name(names[0]) == "mean_squared_error_1/value:0");  // mse64 took the first
  CHECK(tf::tensor_name(names[1]) == "absolute_difference/value:0");
  CHECK(tf::tensor_name(names[2]) == "softmax_cross_entropy_loss_1/value:0");
  CHECK(tf::tensor_name(names[3]) == "sparse_softmax_cross_entropy_loss/value:0");
  CHECK(tf::tensor_name(names[4]) == "bce/value:0");
  tf::Session sess(g);
  const Tensor lv = em::tensor(std::vector<float>{1, 2, 3, 0, 0, 1}, {2, 3});
  const tf::FeedDict feed{{logits, lv},
                          {soft, em::tensor(std::vector<float>{0.2f, 0.3f, 0.5f, 1, 0, 0}, {2, 3})},
                          {ids_col, em::tensor(std::vector<int64_t>{2, 0}, {2, 1})}};
  CHECK(sess.run(g_soft, feed).to_vector<float>() == std::vector<float>(6, 0.f));
  const double want = (-log_softmax_row({1, 2, 3})[2] - log_softmax_row({0, 0, 1})[0]) / 2;
  CHECK(sess.run(sparse_col, feed).item<float>() == Approx(want).epsilon(1e-6));
  CHECK(sess.run(mse64, {{g.get_tensor_by_name("p64:0"), em::tensor(std::vector<double>{1, 2}, {2})}})
            .item<float>() == 2.5f);
}

TEST_CASE("sparse cross-entropy with a large class count stays O(classes) in memory", "[compat][ops]") {
  constexpr int64_t kClasses = 200000;  // an identity matrix of this size would take 160 GB
  tf::Graph g;
  Tensor logits, labels, loss;
  {
    auto scope = g.as_default();
    logits = tf::placeholder(em::float32, {-1, kClasses}, "logits");
    labels = tf::placeholder(em::int32, {-1}, "labels");
    loss = tf::nn::sparse_softmax_cross_entropy_with_logits(labels, logits);
  }
  tf::Session sess(g);
  const Tensor out = sess.run(loss, {{logits, em::zeros({2, kClasses})},
                                     {labels, em::tensor(std::vector<int32_t>{7, kClasses - 1}, {2})}});
  for (float v : out.to_vector<float>()) CHECK(v == Approx(std::log(static_cast<double>(kClasses))).epsilon(1e-5));
}

TEST_CASE("norm clipping, logsumexp, l2_normalize and add_loss as TF computes them", "[compat][ops]") {
  tf::Graph g;
  Tensor a, b, lse, lse_k, lse_inf, cn, cn_rows, l2n, gnorm, total;
  std::vector<Tensor> clipped;
  {
    auto scope = g.as_default();
    a = tf::placeholder(em::float64, {2, 2}, "a");
    b = tf::placeholder(em::float64, {3}, "b");
    lse = tf::reduce_logsumexp(a, {1});
    lse_k = tf::reduce_logsumexp(a, {}, true);
    lse_inf = tf::reduce_logsumexp(tf::constant(std::vector<double>{-INFINITY, -INFINITY}, {2}));
    cn = tf::clip_by_norm(a, 1.0);
    cn_rows = tf::clip_by_norm(a, 2.0, {1});
    l2n = tf::nn::l2_normalize(b, {0});
    auto [c, norm] = tf::clip_by_global_norm({a, Tensor(), b}, 5.0);
    clipped = c;
    gnorm = norm;
    CHECK_FALSE(clipped[1].defined());  // a None gradient stays None
    CHECK(tf::tensor_name(tf::tanh(a)) == "tanh:0");
    CHECK(tf::tensor_name(tf::sigmoid(a, "sig")) == "sig:0");
    tf::losses::add_loss(tf::reduce_sum(b));
    total = tf::losses::get_total_loss();
    CHECK_THROWS_WITH(tf::clip_by_norm(a, 0.0), "clip_by_norm: clip_norm must be positive (got 0)");
    CHECK_THROWS_WITH(tf::clip_by_global_norm({Tensor()}, 1.0), "global_norm: no defined tensors in t_list");
  }
  tf::Session sess(g);
  // a = [[3, 4], [0, 0]] (norm 5, rows 5 and 0), b = [1, 2, 2] (norm 3): global norm sqrt(25 + 9).
  const tf::FeedDict f{{a, em::tensor(std::vector<double>{3, 4, 0, 0}, {2, 2})},
                       {b, em::tensor(std::vector<double>{1, 2, 2}, {3})}};
  auto v = [&](const Tensor& t) { return sess.run(t, f).to_vector<double>(); };
  check_near(v(lse), {4 + std::log1p(std::exp(-1.0)), std::log(2.0)}, 1e-12);
  check_near(v(lse_k), {std::log(std::exp(3.0) + std::exp(4.0) + 2)}, 1e-12);
  CHECK(std::isinf(v(lse_inf)[0]));
  check_near(v(cn), {0.6, 0.8, 0, 0}, 1e-12);
  check_near(v(cn_rows), {1.2, 1.6, 0, 0}, 1e-12);  // a zero row stays zero (no 0 / 0)
  check_near(v(l2n), {1 / 3.0, 2 / 3.0, 2 / 3.0}, 1e-12);
  const double gn = std::sqrt(34.0);
  CHECK(v(gnorm)[0] == Approx(gn).epsilon(1e-12));
  check_near(v(clipped[0]), {3 * 5 / gn, 4 * 5 / gn, 0, 0}, 1e-12);
  check_near(v(clipped[2]), {5 / gn, 10 / gn, 10 / gn}, 1e-12);
  CHECK(v(total)[0] == 5.0);
}

TEST_CASE("slice, split and unstack take TF's parts, with gradients back into place", "[compat][ops]") {
  tf::Graph g;
  Tensor x, sl, sl_known, parts_sum, grad_slice, grad_split;
  std::vector<Tensor> halves, sized, cols;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 4, 5}, "x");
    sl = tf::slice(x, {0, 1, 2}, {-1, 2, -1});  // x[:, 1:3, 2:]
    CHECK(tf::static_shape(sl) == em::Shape{-1, 2, 3});
    CHECK(tf::tensor_name(sl) == "slice:0");
    Tensor c = tf::constant(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
    sl_known = tf::slice(c, {1, 0}, {2, 3}, "rows");
    CHECK(tf::tensor_name(sl_known) == "rows:0");
    halves = tf::split(c, 2, 1);
    REQUIRE(halves.size() == 2);
    CHECK(tf::tensor_name(halves[0]) == "split/part_0:0");
    CHECK(tf::tensor_name(halves[1]) == "split/part_1:0");
    CHECK(tf::static_shape(halves[1]) == em::Shape{3, 2});
    sized = tf::split(x, {1, -1, 2}, -1, "cut");  // sizes 1, 2, 2 along the last dim
    REQUIRE(sized.size() == 3);
    CHECK(tf::static_shape(sized[1]) == em::Shape{-1, 4, 2});
    CHECK(tf::tensor_name(sized[2]) == "cut/part_2:0");
    cols = tf::unstack(c, 1);
    REQUIRE(cols.size() == 4);
    CHECK(tf::static_shape(cols[3]) == em::Shape{3});
    CHECK(tf::tensor_name(cols[0]) == "unstack/part_0:0");
    parts_sum = tf::add_n(cols);
    // d sum(slice(x) * 3) / dx: 3 inside the slice, 0 outside; split parts weighted 1, 2, 3 land in place.
    grad_slice = tf::gradients(tf::reduce_sum(sl * 3.f), x);
    grad_split = tf::gradients(tf::reduce_sum(sized[0]) + tf::reduce_sum(sized[1] * 2.f) +
                                   tf::reduce_sum(sized[2] * 3.f),
                               x);
    CHECK(tf::tensor_name(g.get_tensor_by_name("split/part_1:0")) == "split/part_1:0");
  }
  tf::Session sess(g);
  const Tensor xv = em::arange(40, em::float32).reshape({2, 4, 5});
  auto r = sess.run({sl, sl_known, halves[0], halves[1], sized[0], sized[1], sized[2], cols[1], parts_sum, grad_slice,
                     grad_split},
                    {{x, xv}});
  CHECK(r[0].shape() == em::Shape{2, 2, 3});
  CHECK(r[0].to_vector<float>() == std::vector<float>{7, 8, 9, 12, 13, 14, 27, 28, 29, 32, 33, 34});
  CHECK(r[1].to_vector<float>() == std::vector<float>{4, 5, 6, 8, 9, 10});
  CHECK(r[2].to_vector<float>() == std::vector<float>{0, 1, 4, 5, 8, 9});
  CHECK(r[3].to_vector<float>() == std::vector<float>{2, 3, 6, 7, 10, 11});
  CHECK(r[4].shape() == em::Shape{2, 4, 1});
  CHECK(r[4].to_vector<float>() == std::vector<float>{0, 5, 10, 15, 20, 25, 30, 35});
  CHECK(r[5].shape() == em::Shape{2, 4, 2});
  CHECK(r[5].to_vector<float>()[0] == 1.f);
  CHECK(r[6].to_vector<float>()[0] == 3.f);
  CHECK(r[7].to_vector<float>() == std::vector<float>{1, 5, 9});
  CHECK(r[8].to_vector<float>() == std::vector<float>{6, 22, 38});  // row sums
  std::vector<float> want_slice(40, 0.f), want_split(40, 0.f);
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 5; ++j) {
        const int k = b * 20 + i * 5 + j;
        if (i >= 1 && i < 3 && j >= 2) want_slice[static_cast<std::size_t>(k)] = 3.f;
        want_split[static_cast<std::size_t>(k)] = j == 0 ? 1.f : (j < 3 ? 2.f : 3.f);
      }
  CHECK(r[9].to_vector<float>() == want_slice);
  CHECK(r[10].to_vector<float>() == want_split);
  // Eagerly, outside a graph scope, they run at once.
  const Tensor e = em::arange(6, em::int32).reshape({2, 3});
  CHECK(tf::slice(e, {0, 1}, {-1, 1}).to_vector<int32_t>() == std::vector<int32_t>{1, 4});
  auto ep = tf::split(e, std::vector<int64_t>{2, 1}, 1);
  CHECK(ep[1].to_vector<int32_t>() == std::vector<int32_t>{2, 5});
  CHECK(tf::unstack(e)[1].to_vector<int32_t>() == std::vector<int32_t>{3, 4, 5});
  // Size-0 parts and slices.
  CHECK(tf::slice(e, {2, 0}, {0, 3}).shape() == em::Shape{0, 3});
  CHECK(tf::split(e, std::vector<int64_t>{0, 3}, 1)[0].shape() == em::Shape{2, 0});
  CHECK(tf::unstack(em::zeros({0, 2})).empty());
  // A braced list of one size is one part, as TF's split(x, [3], 1).
  auto one = tf::split(e, {3}, 1);
  REQUIRE(one.size() == 1);
  CHECK(one[0].shape() == em::Shape{2, 3});
  CHECK(tf::split(e, {1, 1}).size() == 2);  // axis 0 by default
}

TEST_CASE("a slice that cuts nothing is still a node of its name", "[compat][ops]") {
  tf::Graph g;
  auto scope = g.as_default();
  Tensor c = tf::constant(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor all = tf::slice(c, {0, 0}, {-1, 2}, "all");
  CHECK(tf::tensor_name(all) == "all:0");
  CHECK(tf::tensor_name(g.get_tensor_by_name("all:0")) == "all:0");
  auto back = g.as_default();
  tf::Session sess(g);
  CHECK(sess.run(all).to_vector<float>() == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("slice, split and unstack errors name the op, the dim and the sizes", "[compat][ops][errors]") {
  tf::Graph g;
  auto scope = g.as_default();
  Tensor x = tf::placeholder(em::float32, {-1, 6}, "x");
  CHECK_THROWS_WITH(tf::slice(x, {0}, {-1, 2}),
                    "slice: begin has 1 entries and size 2 for a tensor of rank 2 (shape [-1,6]); give one of each "
                    "per dim");
  CHECK_THROWS_WITH(tf::slice(x, {1, 0}, {-1, 2}),
                    "slice: dim 0 of [-1,6] is unknown until the graph runs; it can only be taken whole (begin 0, "
                    "size -1)");
  CHECK_THROWS_AS(tf::slice(x, {0, 7}, {-1, -1}), em::IndexError);
  CHECK_THROWS_WITH(tf::slice(x, {0, 7}, {-1, -1}), "slice: begin[1] = 7 is outside [0, 6] (dim 1 of [-1,6])");
  CHECK_THROWS_WITH(tf::slice(x, {0, -1}, {-1, 1}), "slice: begin[1] = -1 is outside [0, 6] (dim 1 of [-1,6])");
  CHECK_THROWS_WITH(tf::slice(x, {0, 4}, {-1, 3}),
                    "slice: size[1] = 3 from begin 4 does not fit dim 1 of [-1,6] (use 0..2, or -1 for the rest)");
  CHECK_THROWS_WITH(tf::slice(x, {0, 4}, {-1, -2}), Catch::Contains("size[1] = -2"));
  CHECK_THROWS_WITH(tf::split(x, 4, 1),
                    "split: dim 1 of [-1,6] has size 6, which does not split into 4 equal parts");
  CHECK_THROWS_WITH(tf::split(x, 0, 1), "split: the number of parts must be positive (got 0)");
  CHECK_THROWS_WITH(tf::split(x, 2, 0), "split: dim 0 of [-1,6] is unknown until the graph runs; split needs its size");
  CHECK_THROWS_WITH(tf::split(x, std::vector<int64_t>{2, 3}, 1),
                    "split: sizes [2,3] add up to 5, but dim 1 of [-1,6] has size 6");
  CHECK_THROWS_WITH(tf::split(x, std::vector<int64_t>{4, -1, 3}, 1),
                    "split: sizes [4,-1,3] add up to 7, but dim 1 of [-1,6] has size 6");
  CHECK_THROWS_WITH(tf::split(x, std::vector<int64_t>{-1, -1}, 1), "split: only one size can be -1 (sizes [-1,-1])");
  CHECK_THROWS_WITH(tf::split(x, std::vector<int64_t>{-2, 8}, 1), "split: size -2 in [-2,8] is negative");
  CHECK_THROWS_WITH(tf::split(x, std::vector<int64_t>{}, 1), "split: no sizes given");
  CHECK_THROWS_WITH(tf::split(x, {}, 1), "split: no sizes given");
  CHECK_THROWS_WITH(tf::split(x, 2, 2), Catch::Contains("split") && Catch::Contains("axis 2"));
  CHECK_THROWS_WITH(tf::unstack(x), "unstack: dim 0 of [-1,6] is unknown until the graph runs; unstack needs its size");
  CHECK_THROWS_WITH(tf::unstack(x, -3), Catch::Contains("unstack") && Catch::Contains("axis -3"));
}

TEST_CASE("range and fill make TF's values and dtypes; both take sizes from the run", "[compat][ops]") {
  tf::Graph g;
  Tensor ri, rf, rneg, r64, rlim, f_static, f_dyn, f_bool, f_typed, x, r_rows, r_cols;
  {
    auto scope = g.as_default();
    ri = tf::range(2, 11, 3);
    CHECK(tf::tensor_name(ri) == "range:0");
    CHECK(ri.dtype() == em::int32);
    rf = tf::range(0, 1, 0.25);
    CHECK(rf.dtype() == em::float32);
    CHECK(tf::tensor_name(rf) == "range_1:0");
    rneg = tf::range(5, 0, -2, {}, "down");
    CHECK(tf::tensor_name(rneg) == "down:0");
    r64 = tf::range(3, em::int64);
    CHECK(r64.dtype() == em::int64);
    rlim = tf::range(0);
    CHECK(tf::static_shape(rlim) == em::Shape{0});
    x = tf::placeholder(em::float32, {-1, 3}, "x");
    f_static = tf::fill({2, 2}, 7);
    CHECK(f_static.dtype() == em::int32);
    f_dyn = tf::fill(tf::shape(x), 0.5);
    CHECK(f_dyn.dtype() == em::float32);
    CHECK(tf::static_shape(f_dyn) == em::Shape{-1, 3});
    f_bool = tf::fill({3}, true);
    f_typed = tf::fill({tf::shape(x)[0]}, 2, em::float64, "twos");
    CHECK(tf::tensor_name(f_typed) == "twos:0");
    // tf.range(tf.shape(x)[0]): as long as x has rows in the run.
    r_rows = tf::range(tf::shape(x)[0]);
    CHECK(r_rows.dtype() == em::int32);
    CHECK(tf::static_shape(r_rows) == em::Shape{-1});
    CHECK(tf::tensor_name(r_rows) == "range_4:0");
    r_cols = tf::range(tf::shape(x)[1], em::float64, "cols");  // a known dim: made now
    CHECK(tf::static_shape(r_cols) == em::Shape{3});
    CHECK_THROWS_WITH(tf::range(tf::shape(x)[0], em::bool_),
                      "range: dtype bool is not one of int32, int64, float32, float64");
    CHECK_THROWS_WITH(tf::range(0, 5, 0), "range: requires delta != 0");
    CHECK_THROWS_WITH(tf::range(5, 1), "range: requires start <= limit when delta > 0: 5/1");
    CHECK_THROWS_WITH(tf::range(1, 5, -1), "range: requires start >= limit when delta < 0: 1/5");
    CHECK_THROWS_WITH(tf::range(0, 5, 1, em::bool_), "range: dtype bool is not one of int32, int64, float32, float64");
    CHECK_THROWS_WITH(tf::fill({2}, 1.5, em::int32), "fill: 1.5 cannot be held exactly in dtype int32");
    CHECK_THROWS_WITH(tf::range(0, 2, 0.5, em::int32), "range: 0.5 cannot be held exactly in dtype int32");
    CHECK_THROWS_WITH(tf::fill({-1, 2}, 1.0),
                      "fill: -1 is not a size here (shape [-1,2]); read unknown sizes from a tensor, e.g. "
                      "tf::shape(x)[0]");
  }
  tf::Session sess(g);
  CHECK(sess.run(ri).to_vector<int32_t>() == std::vector<int32_t>{2, 5, 8});
  CHECK(sess.run(rf).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
  CHECK(sess.run(rneg).to_vector<int32_t>() == std::vector<int32_t>{5, 3, 1});
  CHECK(sess.run(r64).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2});
  CHECK(sess.run(rlim).numel() == 0);
  CHECK(sess.run(f_static).to_vector<int32_t>() == std::vector<int32_t>{7, 7, 7, 7});
  CHECK(sess.run(f_bool).to_vector<bool>() == std::vector<bool>{true, true, true});
  CHECK(sess.run(r_cols).to_vector<double>() == std::vector<double>{0, 1, 2});
  for (int64_t rows : {0, 1, 4}) {
    std::vector<int32_t> want(static_cast<std::size_t>(rows));
    for (int32_t i = 0; i < rows; ++i) want[static_cast<std::size_t>(i)] = i;
    CHECK(sess.run(r_rows, {{x, em::zeros({rows, 3})}}).to_vector<int32_t>() == want);
  }
  for (int64_t rows : {1, 4}) {
    auto r = sess.run({f_dyn, f_typed}, {{x, em::zeros({rows, 3})}});
    CHECK(r[0].shape() == em::Shape{rows, 3});
    CHECK(r[0].to_vector<float>() == std::vector<float>(static_cast<std::size_t>(rows * 3), 0.5f));
    CHECK(r[1].dtype() == em::float64);
    CHECK(r[1].to_vector<double>() == std::vector<double>(static_cast<std::size_t>(rows), 2.0));
  }
  // Eagerly too; numbers beyond int32 make int64, as TF's conversion does.
  CHECK(tf::range(4).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(tf::range(tf::shape(em::zeros({2, 5}))[1]).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3, 4});
  CHECK(tf::range(tf::Dim(2), em::int64).to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK_THROWS_WITH(tf::range(tf::Dim(-3)), "range: requires start <= limit when delta > 0: 0/-3");
  const Tensor big = tf::range(0, int64_t{1} << 33, int64_t{1} << 32);
  CHECK(big.dtype() == em::int64);
  CHECK(big.to_vector<int64_t>() == std::vector<int64_t>{0, int64_t{1} << 32});
  CHECK(tf::fill({1}, int64_t{1} << 40).dtype() == em::int64);
  CHECK(tf::range(1.0, 3.0, 1.0, em::int32).to_vector<int32_t>() == std::vector<int32_t>{1, 2});
  CHECK(tf::fill({2}, 1.5).to_vector<float>() == std::vector<float>{1.5f, 1.5f});
}

TEST_CASE("tf::shape(x) and its sizes are int32 tensors when used as tensors; size and rank", "[compat][ops]") {
  tf::Graph g;
  Tensor x, shp, rows, mean, grad, sz, rk, known_shape, known_size;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 3}, "x");
    shp = tf::shape(x);  // as TF: a 1-d int32 tensor
    CHECK(shp.dtype() == em::int32);
    CHECK(tf::static_shape(shp) == em::Shape{2});
    rows = tf::shape(x)[0];
    CHECK(rows.dtype() == em::int32);
    CHECK(tf::static_shape(rows).empty());
    // The TF1 idiom: a sum over the batch divided by the batch size.
    mean = tf::reduce_sum(x) / tf::cast(tf::shape(x)[0], em::float32);
    grad = tf::gradients(mean, x);
    sz = tf::size(x);
    CHECK(sz.dtype() == em::int32);
    rk = tf::rank(x, "r");
    CHECK(tf::tensor_name(rk) == "r:0");
    Tensor c = tf::constant(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    known_shape = tf::shape(c);
    known_size = tf::size(c);
    CHECK(tf::tensor_name(known_size) == "size_1:0");
    // Sizes beyond int32 make int64 tensors (dtypes only: nothing this big runs).
    Tensor wide = tf::placeholder(em::float32, {-1, int64_t{1} << 32}, "wide");
    CHECK(Tensor(tf::shape(wide)).dtype() == em::int64);
    CHECK(Tensor(tf::shape(wide)[1]).dtype() == em::int64);
    CHECK(tf::size(tf::placeholder(em::float32, {1 << 16, 1 << 16})).dtype() == em::int64);
  }
  // Outside the graph's scope a run-time size cannot become a tensor.
  CHECK_THROWS_WITH(Tensor(tf::shape(x)[0]),
                    "tf::shape: a size known only when the graph runs becomes a tensor inside the graph's scope");
  tf::Session sess(g);
  for (int64_t n : {1, 4}) {
    const Tensor xv = em::arange(n * 3, em::float32).reshape({n, 3});
    auto r = sess.run({shp, rows, mean, grad, sz, rk}, {{x, xv}});
    CHECK(r[0].to_vector<int32_t>() == std::vector<int32_t>{static_cast<int32_t>(n), 3});
    CHECK(r[1].item<int32_t>() == n);
    const double total = static_cast<double>(n * 3) * static_cast<double>(n * 3 - 1) / 2;
    CHECK(r[2].item<float>() == Approx(total / static_cast<double>(n)));
    CHECK(r[3].to_vector<float>() == std::vector<float>(static_cast<std::size_t>(n * 3), 1.f / static_cast<float>(n)));
    CHECK(r[4].item<int32_t>() == n * 3);
    CHECK(r[5].item<int32_t>() == 2);
  }
  CHECK(sess.run(known_shape).to_vector<int32_t>() == std::vector<int32_t>{2, 3});
  CHECK(sess.run(known_size).item<int32_t>() == 6);
  // An empty batch has size 0.
  CHECK(sess.run(rows, {{x, em::zeros({0, 3})}}).item<int32_t>() == 0);
  // Eagerly the shape is known: constants.
  const Tensor eager = tf::shape(em::zeros({2, 5}));
  CHECK(eager.to_vector<int32_t>() == std::vector<int32_t>{2, 5});
  CHECK(tf::size(em::zeros({2, 5})).item<int32_t>() == 10);
  CHECK(tf::rank(em::zeros({})).item<int32_t>() == 0);
  const Tensor scalar_shape = tf::shape(em::zeros({}));
  CHECK(scalar_shape.numel() == 0);
}
