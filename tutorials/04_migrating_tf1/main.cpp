// Tutorial 04: migrating a TensorFlow 1 program, one step at a time.
//
// The program: inference with a small trained classifier (4 features -> 16
// hidden units -> 3 classes), run over a stream of batches. In TF1 it was:
//
//   import tensorflow.compat.v1 as tf
//   x  = tf.placeholder(tf.float32, [None, 4], name="x")
//   w1 = tf.Variable(W1, name="w1");  b1 = tf.Variable(B1, name="b1")
//   w2 = tf.Variable(W2, name="w2");  b2 = tf.Variable(B2, name="b2")
//   h      = tf.nn.relu(tf.matmul(x, w1) + b1)
//   probs  = tf.nn.softmax(tf.matmul(h, w2) + b2, name="probs")
//   pred   = tf.argmax(probs, 1, name="pred")
//   init   = tf.global_variables_initializer()
//   with tf.Session() as sess:
//       sess.run(init)
//       for batch in batches:
//           p, c = sess.run([probs, pred], feed_dict={x: batch})
//
// Step 1 ports it line by line to ember::compat::v1; step 2 writes the same
// model as eager ember code; step 3 wraps the eager code in capture::function.
// The three give the same numbers. Timings go to stderr, so stdout (compared
// with expected_output.txt by the test suite) is the same on every machine.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include <ember/capture.h>
#include <ember/compat/v1.h>
#include <ember/ember.h>

namespace em = ember;
namespace tf = ember::compat::v1;
namespace cap = ember::capture;

namespace {

// "Trained" weights: fixed numbers, so the output is the same everywhere.
struct Weights {
  em::Tensor w1, b1, w2, b2;
};

// A pattern of exact values in [-1, 1): ((i * step) mod m) / (m / 2) - 1.
em::Tensor pattern(int64_t n, int64_t step, int64_t m) {
  return em::remainder(em::arange(n, em::float32) * static_cast<float>(step), static_cast<float>(m)) /
             (static_cast<float>(m) / 2.f) -
         1.f;
}

// "Trained" weights: fixed numbers, so the output is the same everywhere.
Weights load_weights() {
  return {pattern(64, 7, 17).reshape({4, 16}), pattern(16, 5, 11) * 0.1f, pattern(48, 11, 13).reshape({16, 3}),
          em::tensor({0.05f, -0.02f, 0.01f})};
}

// The stream of batches: 20 batches of 32 samples with 4 features.
std::vector<em::Tensor> load_batches() {
  std::vector<em::Tensor> out;
  em::Tensor all = pattern(20 * 128, 37, 101) * 2.f;
  for (int64_t b = 0; b < 20; ++b) out.push_back(all.slice(0, 128 * b, 128 * (b + 1)).reshape({32, 4}));
  return out;
}

// Step 2: the model as eager ember code.
std::pair<em::Tensor, em::Tensor> classify(const Weights& w, const em::Tensor& x) {
  em::Tensor h = em::relu(em::matmul(x, w.w1) + w.b1);
  em::Tensor probs = em::softmax(em::matmul(h, w.w2) + w.b2);
  return {probs, em::argmax(probs, 1)};
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  const Weights W = load_weights();
  const std::vector<em::Tensor> batches = load_batches();
  using Clock = std::chrono::steady_clock;

  // ---- Step 1: the TF1 program, ported line by line ---------------------------
  tf::Graph g;
  em::Tensor x, probs, pred;
  tf::Operation init;
  {
    auto scope = g.as_default();  // ops on graph tensors now build nodes
    x = tf::placeholder(em::float32, {-1, 4}, "x");
    tf::Variable w1(W.w1, "w1"), b1(W.b1, "b1"), w2(W.w2, "w2"), b2(W.b2, "b2");
    auto h = tf::nn::relu(tf::add(tf::matmul(x, w1), b1));
    probs = tf::nn::softmax(tf::add(tf::matmul(h, w2), b2), -1, "probs");
    pred = tf::argmax(probs, 1, "pred");
    init = tf::global_variables_initializer();
  }
  fmt::print("graph nodes: {}\n", fmt::join(g.node_names(), " "));
  fmt::print("probs: {}, static shape {}\n", tf::tensor_name(probs), em::shape_str(tf::static_shape(probs)));

  std::vector<em::Tensor> shim_probs, shim_pred;
  tf::Session sess(g);
  sess.run(init);
  auto t0 = Clock::now();
  for (const em::Tensor& batch : batches) {
    auto out = sess.run({probs, pred}, {{x, batch}});
    shim_probs.push_back(out[0]);
    shim_pred.push_back(out[1]);
  }
  const double t_shim = ms_since(t0);
  // make_callable: the TF1 fast path for feed loops (the plan is built once).
  auto step = sess.make_callable({probs, pred}, {x});
  t0 = Clock::now();
  std::vector<em::Tensor> callable_probs;
  for (const em::Tensor& batch : batches) callable_probs.push_back(step({batch})[0]);
  const double t_callable = ms_since(t0);

  // ---- Step 2: the same model as eager code -------------------------------------
  std::vector<em::Tensor> eager_probs, eager_pred;
  t0 = Clock::now();
  for (const em::Tensor& batch : batches) {
    auto [p, c] = classify(W, batch);
    eager_probs.push_back(p);
    eager_pred.push_back(c);
  }
  const double t_eager = ms_since(t0);

  // ---- Step 3: the eager code, captured -------------------------------------------
  auto fast = cap::function([&W](const em::Tensor& b) {
    auto [p, c] = classify(W, b);
    return std::make_tuple(p, c);
  });
  std::vector<em::Tensor> captured_probs;
  t0 = Clock::now();
  for (const em::Tensor& batch : batches) captured_probs.push_back(std::get<0>(fast(batch)));
  const double t_captured = ms_since(t0);

  // ---- The three agree ------------------------------------------------------------
  bool probs_equal = true, preds_equal = true;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    probs_equal = probs_equal && em::allclose(shim_probs[i], eager_probs[i], 1e-5, 1e-6) &&
                  em::allclose(callable_probs[i], eager_probs[i], 1e-5, 1e-6) &&
                  em::allclose(captured_probs[i], eager_probs[i], 1e-5, 1e-6);
    preds_equal = preds_equal && em::equal(shim_pred[i], eager_pred[i]);
  }
  fmt::print("batches: {}, samples: {}\n", batches.size(), 32 * batches.size());
  fmt::print("session == eager (probs): {}\n", probs_equal);
  fmt::print("session == eager (classes): {}\n", preds_equal);
  fmt::print("capture::function traces: {}\n", fast.trace_count());
  std::vector<int64_t> counts(3, 0);
  for (const em::Tensor& c : shim_pred)
    for (int64_t k : c.to_vector<int64_t>()) ++counts[static_cast<std::size_t>(k)];
  fmt::print("predicted classes: 0 -> {}, 1 -> {}, 2 -> {}\n", counts[0], counts[1], counts[2]);
  fmt::print("first batch, first 8 classes: {}\n",
             fmt::join(shim_pred[0].slice(0, 0, 8).to_vector<int64_t>(), " "));
  // The smallest gap between the two most likely classes: far from a tie, so
  // the classes above do not depend on the last bits of the arithmetic.
  double gap = 1;
  for (const em::Tensor& p : shim_probs) {
    em::Tensor top2 = p.max({1}) - em::max(em::where(p == p.max({1}, true), -1.f, p), {1});
    gap = std::min(gap, top2.min().item<double>());
  }
  fmt::print("smallest top-2 probability gap > 1e-3: {}\n", gap > 1e-3);

  fmt::print(stderr, "timings for {} batches: session {:.3f} ms, callable {:.3f} ms, eager {:.3f} ms, "
                     "capture::function {:.3f} ms (first call traces)\n",
             batches.size(), t_shim, t_callable, t_eager, t_captured);
  return probs_equal && preds_equal ? 0 : 1;
}
