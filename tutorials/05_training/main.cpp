// Tutorial 05: training. A small classifier for two interleaved moons, three ways:
//
//   1. a TF1 script ported line by line through the session shim
//      (placeholders, tf::Variable, GradientDescentOptimizer.minimize, sess.run);
//   2. the same model trained eagerly with em::GradientTape and em::Variable;
//   3. the eager step wrapped in capture::function, which traces it once
//      (forward, gradients and variable updates) and replays it.
//
// All three start from the same weights and must print the same losses.
// Timings go to stderr so that stdout (compared with expected_output.txt by
// the test suite) is the same on every machine.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <vector>

#include <ember/capture.h>
#include <ember/compat/v1.h>
#include <ember/ember.h>

namespace em = ember;
namespace tf = ember::compat::v1;

namespace {

constexpr int kSteps = 300;
constexpr double kLearningRate = 0.5;

struct Moons {
  em::Tensor x;  // [n, 2] float32
  em::Tensor y;  // [n, 1] float32, 0 or 1
};

// Two interleaved half circles with Gaussian noise (scikit-learn's make_moons).
Moons make_moons(int64_t n_per_moon, float noise) {
  em::Tensor t = em::linspace(0.0, std::numbers::pi, n_per_moon);
  em::Tensor upper = em::stack({em::cos(t), em::sin(t)}, 1);
  em::Tensor lower = em::stack({1.f - em::cos(t), 0.5f - em::sin(t)}, 1);
  em::Tensor x = em::concat({upper, lower}) + em::randn({2 * n_per_moon, 2}) * noise;
  em::Tensor y = em::concat({em::zeros({n_per_moon, 1}), em::ones({n_per_moon, 1})});
  return {x, y};
}

struct Init {
  em::Tensor w1, b1, w2, b2;
};

// The model: 2 -> 16 (tanh) -> 1 logit. Loss: mean sigmoid cross-entropy,
// written stably as softplus(z) - y * z.
em::Tensor logits_of(const em::Tensor& x, const em::Tensor& w1, const em::Tensor& b1,
                     const em::Tensor& w2, const em::Tensor& b2) {
  return em::matmul(em::tanh(em::matmul(x, w1) + b1), w2) + b2;
}
em::Tensor loss_of(const em::Tensor& z, const em::Tensor& y) { return em::mean(em::softplus(z) - y * z); }
float accuracy(const em::Tensor& z, const em::Tensor& y) {
  return em::mean(((z > 0).to(em::float32) == y).to(em::float32)).item<float>();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- 1. the TF1 script, ported through the shim -----------------------------
std::vector<float> train_tf1(const Moons& data, const Init& init, float* acc) {
  tf::Graph g;
  tf::Tensor x, y, loss, logits;
  tf::Operation train_op, init_op;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 2}, "x");
    y = tf::placeholder(em::float32, {-1, 1}, "y");
    tf::Variable w1(init.w1, "w1"), b1(init.b1, "b1"), w2(init.w2, "w2"), b2(init.b2, "b2");
    logits = tf::add(tf::matmul(tf::nn::tanh(tf::nn::bias_add(tf::matmul(x, w1), b1)), w2), b2.value(), "logits");
    loss = tf::reduce_mean(em::softplus(logits) - y * logits, {}, false, "loss");
    train_op = tf::train::GradientDescentOptimizer(kLearningRate).minimize(loss);
    init_op = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init_op);
  std::vector<float> losses;
  const auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step < kSteps; ++step) {
    auto r = sess.run({loss, train_op}, {{x, data.x}, {y, data.y}});
    losses.push_back(r[0].item<float>());
  }
  std::fprintf(stderr, "TF1 shim:        %.1f us per step\n", 1e6 * seconds_since(t0) / kSteps);
  *acc = accuracy(sess.run(logits, {{x, data.x}}), data.y);
  return losses;
}

// ---- 2. eager, with GradientTape ----------------------------------------------
struct Model {
  em::Variable w1, b1, w2, b2;
  explicit Model(const Init& i) : w1(i.w1, "w1"), b1(i.b1, "b1"), w2(i.w2, "w2"), b2(i.b2, "b2") {}
  em::Tensor logits(const em::Tensor& x) const {
    return logits_of(x, w1.value(), b1.value(), w2.value(), b2.value());
  }
};

// One step: forward, gradients of the trainable variables it read, SGD update.
em::Tensor train_step(Model& m, const em::Tensor& x, const em::Tensor& y) {
  em::GradientTape tape;  // records while it lives; Variables are watched when read
  em::Tensor loss = loss_of(m.logits(x), y);
  std::vector<em::Tensor> g = tape.gradient(loss, std::vector<em::Variable>{m.w1, m.b1, m.w2, m.b2});
  m.w1.assign_sub(g[0] * kLearningRate);
  m.b1.assign_sub(g[1] * kLearningRate);
  m.w2.assign_sub(g[2] * kLearningRate);
  m.b2.assign_sub(g[3] * kLearningRate);
  return loss;
}

std::vector<float> train_eager(const Moons& data, const Init& init, float* acc) {
  Model m(init);
  std::vector<float> losses;
  const auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step < kSteps; ++step) losses.push_back(train_step(m, data.x, data.y).item<float>());
  std::fprintf(stderr, "eager tape:      %.1f us per step\n", 1e6 * seconds_since(t0) / kSteps);
  *acc = accuracy(m.logits(data.x), data.y);
  return losses;
}

// ---- 3. the eager step, captured --------------------------------------------
std::vector<float> train_captured(const Moons& data, const Init& init, float* acc, int* traces) {
  Model m(init);
  auto step = em::capture::function(
      [&m](const em::Tensor& x, const em::Tensor& y) { return train_step(m, x, y); }, {}, {"x", "y"});
  std::vector<float> losses;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kSteps; ++i) losses.push_back(step(data.x, data.y).item<float>());
  std::fprintf(stderr, "captured step:   %.1f us per step\n", 1e6 * seconds_since(t0) / kSteps);
  *acc = accuracy(m.logits(data.x), data.y);
  *traces = step.trace_count();
  return losses;
}

}  // namespace

int main() {
  em::manual_seed(5);
  const Moons data = make_moons(100, 0.1f);
  const Init init{em::randn({2, 16}) * 0.5f, em::zeros({16}), em::randn({16, 1}) * 0.5f, em::zeros({1})};
  std::printf("two moons: %lld points, %s\n", static_cast<long long>(data.x.shape(0)),
              em::shape_str(data.x.shape()).c_str());

  float acc_tf = 0, acc_eager = 0, acc_cap = 0;
  int traces = 0;
  const std::vector<float> tf1 = train_tf1(data, init, &acc_tf);
  const std::vector<float> eager = train_eager(data, init, &acc_eager);
  const std::vector<float> cap = train_captured(data, init, &acc_cap, &traces);

  std::printf("\n| step | TF1 shim | eager tape | captured |\n|---|---|---|---|\n");
  for (int s = 0; s < kSteps; s += 50)
    std::printf("| %d | %.3f | %.3f | %.3f |\n", s, tf1[s], eager[s], cap[s]);
  std::printf("| %d | %.3f | %.3f | %.3f |\n", kSteps - 1, tf1.back(), eager.back(), cap.back());

  auto decreases = [](const std::vector<float>& l) { return l.back() < 0.5f * l.front(); };
  float max_diff = 0;
  for (int s = 0; s < kSteps; ++s)
    max_diff = std::max({max_diff, std::abs(tf1[s] - eager[s]), std::abs(cap[s] - eager[s])});
  std::printf("\nloss more than halves: TF1 %s, eager %s, captured %s\n", decreases(tf1) ? "yes" : "NO",
              decreases(eager) ? "yes" : "NO", decreases(cap) ? "yes" : "NO");
  std::printf("the three agree at every step (max difference < 1e-4): %s\n", max_diff < 1e-4f ? "yes" : "NO");
  std::printf("captured step traced %d time(s)\n", traces);
  std::printf("training accuracy above 95%%: %s\n",
              std::min({acc_tf, acc_eager, acc_cap}) > 0.95f ? "yes" : "NO");
  std::fprintf(stderr, "max loss difference %.3g; accuracy %.3f / %.3f / %.3f\n", max_diff, acc_tf,
               acc_eager, acc_cap);
  return 0;
}
