// tf::gradients and the TF1 optimizers against eager GradientTape and
// hand-written eager updates; slots saved by Saver; learning rates as tensors,
// the global step and the schedules that read it, RMSProp and Adagrad against
// float64 loops of TF1's formulas; checkpoints kept, listed and resumed.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <ember/compat/v1.h>
#include <ember/ember.h>

namespace em = ember;
namespace tf = ember::compat::v1;
using em::Tensor;

namespace {

std::string read_head(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string head(64, '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(f.gcount()));
  return head;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A fresh directory for checkpoint files, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int n = 0;
    path = std::filesystem::temp_directory_path() /
           ("ember_test_train_" + std::to_string(static_cast<long>(getpid())) + "_" + std::to_string(n++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  // The names of the files in it, sorted.
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

// Every value of `got` within `rel` (relative) of the float64 reference `want`.
void check_close(const std::vector<float>& got, const std::vector<double>& want, double rel) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("index " << i << ": " << got[i] << " vs " << want[i]);
    CHECK(std::abs(static_cast<double>(got[i]) - want[i]) <= rel * std::abs(want[i]) + 1e-12);
  }
}

struct Data {
  Tensor x, y, w0, b0;
};

Data make_data() {
  em::manual_seed(11);
  return {em::randn({8, 3}), em::randn({8, 2}), em::randn({3, 2}) * 0.5f, em::randn({2}) * 0.1f};
}

// The model both ways: loss = mean((tanh(x w + b) - y)^2).
Tensor model_loss(const Tensor& x, const Tensor& y, const Tensor& w, const Tensor& b) {
  Tensor d = em::tanh(em::matmul(x, w) + b) - y;
  return em::mean(d * d);
}

// Eager reference gradients with GradientTape.
std::pair<Tensor, Tensor> eager_grads(const Data& d, const Tensor& w, const Tensor& b) {
  em::GradientTape tape;
  tape.watch(w);
  tape.watch(b);
  auto g = tape.gradient(model_loss(d.x, d.y, w, b), {w, b});
  return {g[0], g[1]};
}

}  // namespace

TEST_CASE("tf::gradients equals the eager tape, with an unknown batch dim", "[autograd][compat]") {
  const Data d = make_data();
  tf::Graph g;
  Tensor loss, gw, gb, gx;
  tf::Operation init;
  tf::Variable w, b;
  Tensor x, y;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 3}, "x");
    y = tf::placeholder(em::float32, {-1, 2}, "y");
    w = tf::Variable(d.w0, "w");
    b = tf::Variable(d.b0, "b");
    loss = model_loss(x, y, w, b);
    auto gs = tf::gradients({loss}, {w.value(), b.value(), x});
    gw = gs[0];
    gb = gs[1];
    gx = gs[2];
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  for (int64_t n : {8, 5}) {
    INFO("batch " << n);
    Data dn = d;
    dn.x = d.x.slice(0, 0, n).contiguous();
    dn.y = d.y.slice(0, 0, n).contiguous();
    auto r = sess.run({gw, gb, gx, loss}, {{x, dn.x}, {y, dn.y}});
    auto [ew, eb] = eager_grads(dn, d.w0, d.b0);
    CHECK(em::allclose(r[0], ew, 1e-5, 1e-6));
    CHECK(em::allclose(r[1], eb, 1e-5, 1e-6));
    CHECK(r[2].shape() == em::Shape{n, 3});
    CHECK(r[3].item<float>() == Approx(model_loss(dn.x, dn.y, d.w0, d.b0).item<float>()));
  }
}

TEST_CASE("a GradientTape inside graph mode builds gradient nodes, unknown dims and x += b included",
          "[autograd][compat]") {
  const Data d = make_data();
  tf::Graph g;
  Tensor x, y, w, b, gw, gb;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, -1}, "x");  // both dims meet w's only at the product
    y = tf::placeholder(em::float32, {-1, 2}, "y");
    w = tf::constant(d.w0, "w");
    b = tf::constant(d.b0, "b");
    em::GradientTape tape;
    tape.watch(w);
    tape.watch(b);
    Tensor z = em::matmul(x, w);
    z += b;  // a new node, recorded as the tape records an eager in-place add
    Tensor e = em::tanh(z) - y;
    auto gs = tape.gradient(em::mean(e * e), {w, b});
    gw = gs[0];
    gb = gs[1];
    CHECK(tf::static_shape(gw) == em::Shape{3, 2});
    CHECK(tf::static_shape(gb) == em::Shape{2});
  }
  tf::Session sess(g);
  auto r = sess.run({gw, gb}, {{x, d.x}, {y, d.y}});
  auto [ew, eb] = eager_grads(d, d.w0, d.b0);
  CHECK(em::allclose(r[0], ew, 1e-5, 1e-6));
  CHECK(em::allclose(r[1], eb, 1e-5, 1e-6));
}

TEST_CASE("variables and slots made under control_dependencies do not wait for them (TF's init_scope)",
          "[autograd][compat]") {
  // The batch-norm training pattern: the train op runs after the moving-mean update.
  tf::Graph g;
  Tensor x, update;
  tf::Variable mean, w, made_here;
  tf::Operation train, init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 2}, "x");
    mean = tf::Variable(em::zeros({2}), "moving_mean", false);
    w = tf::Variable(em::tensor({1.f, 2.f}), "w");
    update = mean.assign_sub((mean.value() - tf::reduce_mean(x, {0})) * 0.5f);
    const Tensor loss = tf::reduce_sum(tf::square(x * w.value()));
    {
      auto cd = tf::control_dependencies({update});
      train = tf::train::AdamOptimizer(0.01).minimize(loss);  // makes slots and beta powers here
      made_here = tf::Variable(em::ones({1}), "made_here");
    }
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);  // no feed: nothing it runs waits for the update, which needs x
  CHECK(tf::report_uninitialized_variables(sess).empty());
  CHECK(sess.run(made_here.value()).to_vector<float>() == std::vector<float>{1});
  CHECK(sess.run(mean.value()).to_vector<float>() == std::vector<float>{0, 0});
  sess.run(train, {{x, em::tensor({{2.f, 4.f}, {4.f, 8.f}})}});
  CHECK(sess.run(mean.value()).to_vector<float>() == std::vector<float>{1.5f, 3.f});  // the update ran first
  CHECK(sess.run(w.value()).to_vector<float>()[0] == Approx(0.99f));                 // Adam's first step is lr
}

TEST_CASE("tf::gradients of braced lists gives a list, as in TF", "[autograd][compat]") {
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable w(em::ones({3, 2}), "w");
  tf::Variable b(em::zeros({2}), "b");
  const Tensor loss = tf::reduce_sum(tf::add(tf::matmul(tf::constant(em::ones({4, 3})), w), b));
  const std::vector<Tensor> listed = tf::gradients({loss}, {w});  // a vector, not one gradient's row 0
  REQUIRE(listed.size() == 1);
  CHECK(tf::static_shape(listed[0]) == em::Shape{3, 2});
  const std::vector<Tensor> two = tf::gradients(loss, {w, b});
  CHECK(tf::static_shape(two[1]) == em::Shape{2});
  const Tensor one = tf::gradients(loss, w);  // one y, one x (a Variable) gives one tensor
  CHECK(tf::static_shape(one) == em::Shape{3, 2});
  tf::Session sess(g);
  sess.run(tf::global_variables_initializer());
  CHECK(sess.run(listed[0]).to_vector<float>() == std::vector<float>(6, 4.f));
  CHECK(sess.run(two[1]).to_vector<float>() == std::vector<float>(2, 4.f));
}

TEST_CASE("tf::gradients through flattens, slices and selects of tensors with unknown dims", "[autograd][compat]") {
  // The sequence-model flatten: [batch, time, 8] -> [batch * time, 8], with
  // one or two unknown dims; the gradient's reshape back takes the run's shape.
  tf::Graph g;
  Tensor x, xx, x2, g_one, g_two, g_flat, g_select, g_step;
  tf::Variable e;
  tf::Operation init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 5, 8}, "x");
    xx = tf::placeholder(em::float32, {-1, -1, 8}, "xx");
    e = tf::Variable(em::full({8}, 2.f), "e");
    const Tensor w = tf::constant(em::ones({8, 2}));
    g_one = tf::gradients(tf::reduce_sum(tf::matmul(tf::reshape(x * e.value(), {-1, 8}), w)), e);
    g_two = tf::gradients(tf::reduce_sum(tf::matmul(tf::reshape(xx * e.value(), {-1, 8}), w)), e);
    g_flat = tf::gradients(tf::reduce_sum(tf::reshape(xx * e.value(), {-1})), e);
    CHECK(tf::static_shape(g_two) == em::Shape{8});
    // Slices and selects of a known dim pad the gradient with zeros shaped by x at run time.
    x2 = tf::placeholder(em::float32, {-1, 3}, "x2");
    g_select = tf::gradients(tf::reduce_sum(x2.select(1, 0)), x2);
    g_step = tf::gradients(tf::reduce_sum(x2.slice(1, 0, 3, 2) * 3.f), x2);
    CHECK(tf::static_shape(g_select) == em::Shape{-1, 3});
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  const Tensor xs = em::arange(80, em::float32).reshape({2, 5, 8});
  // d/de_k sum(x e w) = 2 * sum of x[..., k] (each row of w sums to 2).
  const std::vector<float> want = (em::sum(xs.reshape({10, 8}), {0}) * 2.f).to_vector<float>();
  CHECK(sess.run(g_one, {{x, xs}}).to_vector<float>() == want);
  CHECK(sess.run(g_two, {{xx, xs.reshape({5, 2, 8})}}).to_vector<float>() == want);
  CHECK(sess.run(g_two, {{xx, em::ones({1, 3, 8})}}).to_vector<float>() == std::vector<float>(8, 6.f));
  CHECK(sess.run(g_flat, {{xx, em::ones({2, 3, 8})}}).to_vector<float>() == std::vector<float>(8, 6.f));
  CHECK(sess.run(g_select, {{x2, em::ones({2, 3})}}).to_vector<float>() == std::vector<float>{1, 0, 0, 1, 0, 0});
  CHECK(sess.run(g_step, {{x2, em::ones({4, 3})}}).to_vector<float>() ==
        std::vector<float>{3, 0, 3, 3, 0, 3, 3, 0, 3, 3, 0, 3});
}

TEST_CASE("compute_gradients gives no gradient for a variable the loss does not read, as TF's None",
          "[autograd][compat][errors]") {
  tf::Graph g;
  auto scope = g.as_default();
  tf::Variable w(em::tensor({1.f, 2.f}), "w");
  tf::Variable unused(em::tensor({3.f}), "unused");
  const Tensor loss = tf::reduce_sum(tf::square(w.value()));
  tf::train::GradientDescentOptimizer opt(0.1);
  const auto gv = opt.compute_gradients(loss);
  REQUIRE(gv.size() == 2);
  CHECK(gv[0].first.defined());
  CHECK_FALSE(gv[1].first.defined());
  CHECK(gv[1].second.name() == "unused");
  CHECK_THROWS_AS(opt.minimize(loss, {unused}), em::ValueError);
  CHECK_THROWS_WITH(opt.minimize(loss, {unused}), "GradientDescent: no gradients provided for any variable");
  // The variables that have one are updated.
  auto step = opt.apply_gradients(gv);
  tf::Session sess(g);
  sess.run(tf::global_variables_initializer());
  sess.run(step);
  CHECK(sess.run(w).to_vector<float>() == std::vector<float>{0.8f, 1.6f});
  CHECK(sess.run(unused).to_vector<float>() == std::vector<float>{3.f});
}

TEST_CASE("tf::gradients rejects integer xs and other graphs' tensors", "[autograd][compat][errors]") {
  tf::Graph g, other;
  Tensor foreign;
  {
    auto scope = other.as_default();
    foreign = tf::placeholder(em::float32, {2}, "f");
  }
  auto scope = g.as_default();
  Tensor i = tf::placeholder(em::int64, {2}, "i");
  Tensor f = tf::placeholder(em::float32, {2}, "x");
  Tensor y = tf::reduce_sum(f * 2.0f);
  CHECK_THROWS_AS(tf::gradients({y}, {i}), em::DTypeError);
  CHECK_THROWS_WITH(tf::gradients({y}, {foreign}), Catch::Contains("is from another graph"));
}

TEST_CASE("GradientDescentOptimizer.minimize trains as the eager update does", "[autograd][compat]") {
  const Data d = make_data();
  tf::Graph g;
  Tensor x, y, loss;
  tf::Operation train, init;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {-1, 3}, "x");
    y = tf::placeholder(em::float32, {-1, 2}, "y");
    tf::Variable w(d.w0, "w"), b(d.b0, "b");
    loss = model_loss(x, y, w, b);
    train = tf::train::GradientDescentOptimizer(0.5).minimize(loss);
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  Tensor w = d.w0.clone(), b = d.b0.clone();
  float first = 0, last = 0;
  for (int step = 0; step < 5; ++step) {
    const float l = sess.run(loss, {{x, d.x}, {y, d.y}}).item<float>();
    sess.run(train, {{x, d.x}, {y, d.y}});
    CHECK(l == Approx(model_loss(d.x, d.y, w, b).item<float>()).epsilon(1e-5));
    auto [gw, gb] = eager_grads(d, w, b);
    w = w - gw * 0.5f;
    b = b - gb * 0.5f;
    (step == 0 ? first : last) = l;
  }
  CHECK(last < first);
  CHECK(em::allclose(sess.run(g.get_tensor_by_name("w:0")), w, 1e-5, 1e-6));
}

TEST_CASE("MomentumOptimizer and AdamOptimizer follow TF1's update rules", "[autograd][compat]") {
  const Data d = make_data();
  for (std::string which : {"momentum", "nesterov", "adam"}) {
    INFO(which);
    tf::Graph g;
    Tensor x, y;
    tf::Operation train, init;
    std::unique_ptr<tf::train::Optimizer> opt;
    tf::Variable w, b;
    {
      auto scope = g.as_default();
      x = tf::placeholder(em::float32, {8, 3}, "x");
      y = tf::placeholder(em::float32, {8, 2}, "y");
      w = tf::Variable(d.w0, "w");
      b = tf::Variable(d.b0, "b");
      Tensor loss = model_loss(x, y, w, b);
      if (which == "adam")
        opt = std::make_unique<tf::train::AdamOptimizer>(0.05);
      else
        opt = std::make_unique<tf::train::MomentumOptimizer>(0.1, 0.9, "Momentum", which == "nesterov");
      // compute/apply split, as ported code often does (e.g. to clip).
      train = opt->apply_gradients(opt->compute_gradients(loss));
      init = tf::global_variables_initializer();
    }
    tf::Session sess(g);
    sess.run(init);
    Tensor ew = d.w0.clone(), eb = d.b0.clone();
    Tensor mw = em::zeros_like(ew), mb = em::zeros_like(eb), vw = em::zeros_like(ew), vb = em::zeros_like(eb);
    for (int t = 1; t <= 3; ++t) {
      sess.run(train, {{x, d.x}, {y, d.y}});
      auto [gw, gb] = eager_grads(d, ew, eb);
      auto update = [&](Tensor& p, Tensor& m, Tensor& v, const Tensor& gr) {
        if (which == "adam") {
          m = m * 0.9f + gr * 0.1f;
          v = v * 0.999f + gr * gr * 0.001f;
          const double lr_t = 0.05 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
          p = p - m * lr_t / (em::sqrt(v) + 1e-8);
        } else {
          m = m * 0.9f + gr;
          p = p - (which == "nesterov" ? (gr + m * 0.9f) : m) * 0.1f;
        }
      };
      update(ew, mw, vw, gw);
      update(eb, mb, vb, gb);
    }
    CHECK(em::allclose(sess.run(w), ew, 1e-4, 1e-5));
    CHECK(em::allclose(sess.run(b), eb, 1e-4, 1e-5));
    const std::string slot = which == "adam" ? "m" : "momentum";
    CHECK(em::allclose(sess.run(opt->get_slot(w, slot)), mw, 1e-4, 1e-5));
  }
}

TEST_CASE("optimizer slots are variables that Saver saves and restores", "[autograd][compat]") {
  const Data d = make_data();
  tf::Graph g;
  Tensor x, y;
  tf::Operation train, init;
  tf::train::AdamOptimizer adam(0.01);
  tf::Variable w;
  std::unique_ptr<tf::train::Saver> saver;
  std::vector<std::string> names;
  {
    auto scope = g.as_default();
    x = tf::placeholder(em::float32, {8, 3}, "x");
    y = tf::placeholder(em::float32, {8, 2}, "y");
    w = tf::Variable(d.w0, "w");
    tf::Variable b(d.b0, "b");
    train = adam.minimize(model_loss(x, y, w, b));
    saver = std::make_unique<tf::train::Saver>();
    init = tf::global_variables_initializer();
    for (const auto& v : tf::global_variables()) names.push_back(v.name());
    CHECK(tf::trainable_variables().size() == 2);
  }
  CHECK(std::find(names.begin(), names.end(), "w/Adam") != names.end());
  CHECK(std::find(names.begin(), names.end(), "w/Adam_1") != names.end());
  CHECK(std::find(names.begin(), names.end(), "beta1_power") != names.end());
  const TempDir dir;
  const std::string path = dir / "slots.ckpt";
  Tensor m_before;
  {
    tf::Session sess(g);
    sess.run(init);
    for (int i = 0; i < 3; ++i) sess.run(train, {{x, d.x}, {y, d.y}});
    m_before = sess.run(adam.get_slot(w, "m"));
    saver->save(sess, path);
  }
  tf::Session fresh(g);
  saver->restore(fresh, path);
  CHECK(em::equal(fresh.run(adam.get_slot(w, "m")), m_before));
}

TEST_CASE("a Saver made before minimize keeps to the variables of that moment, as TF's", "[autograd][compat]") {
  const TempDir dir;
  const std::string path = dir / "model_only.ckpt";
  tf::Graph g;
  tf::Variable w;
  std::unique_ptr<tf::train::Saver> model_saver;
  tf::Operation init;
  {
    auto scope = g.as_default();
    w = tf::Variable(em::tensor({1.f, 2.f}), "w");
    model_saver = std::make_unique<tf::train::Saver>();
    (void)tf::train::AdamOptimizer(0.1).minimize(tf::reduce_sum(tf::square(w.value())));  // slots come later
    init = tf::global_variables_initializer();
  }
  {
    tf::Session sess(g);
    sess.run(init);
    model_saver->save(sess, path);
  }
  CHECK(read_head(path).find("variables 1\n") != std::string::npos);
  tf::Session fresh(g);
  model_saver->restore(fresh, path);  // the slots are neither saved nor looked for
  CHECK(fresh.run(w).to_vector<float>() == std::vector<float>{1.f, 2.f});
  tf::Graph empty;
  auto scope = empty.as_default();
  CHECK_THROWS_WITH(tf::train::Saver(), "Saver: the default graph has no variables to save");
}

// ---- learning rates as tensors ----------------------------------------------------

TEST_CASE("a learning rate may be a placeholder or a tf::Variable, read on every run", "[autograd][compat]") {
  tf::Graph g;
  tf::Variable w, w2, rate;
  Tensor lr, lr64;
  tf::Operation train, train2, init;
  Tensor set_rate, reset_w2;
  {
    auto scope = g.as_default();
    w = tf::Variable(em::tensor({1.f, 2.f}), "w");
    lr = tf::placeholder(em::float32, {}, "lr");
    train = tf::train::GradientDescentOptimizer(lr).minimize(tf::reduce_sum(tf::square(w.value())), {w});
    // A float64 rate for a float32 variable is cast, as TF1 casts it.
    w2 = tf::Variable(em::tensor({4.f}), "w2");
    rate = tf::Variable(em::scalar_tensor(0.5, em::float64), "rate", false);
    train2 = tf::train::MomentumOptimizer(rate, 0.0).minimize(tf::reduce_sum(tf::square(w2.value())), {w2});
    lr64 = tf::placeholder(em::float64, {}, "lr64");
    set_rate = rate.assign(lr64);
    reset_w2 = w2.assign(em::tensor({4.f}));
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  // d/dw sum(w^2) = 2w: a rate of 0.1 scales w by 0.8, then 0.25 by 0.5.
  sess.run(train, {{lr, em::scalar_tensor(0.1f)}});
  CHECK(sess.run(w).to_vector<float>() == std::vector<float>{0.8f, 1.6f});
  sess.run(train, {{lr, em::scalar_tensor(0.25f)}});
  const auto after = sess.run(w).to_vector<float>();
  CHECK(after[0] == Approx(0.4f));
  CHECK(after[1] == Approx(0.8f));
  CHECK_THROWS_WITH(sess.run(train), Catch::Contains("\"lr\""));  // an unfed rate is an unfed placeholder
  sess.run(train2);                                                // 4 - 0.5 * 8
  CHECK(sess.run(w2).to_vector<float>() == std::vector<float>{0.f});
  sess.run(set_rate, {{lr64, em::scalar_tensor(0.25, em::float64)}});
  sess.run(reset_w2);
  sess.run(train2);  // 4 - 0.25 * 8: the variable's new value is the rate
  CHECK(sess.run(w2).to_vector<float>() == std::vector<float>{2.f});
}

TEST_CASE("optimizers refuse learning rates that are not 0-d floating tensors", "[autograd][compat][errors]") {
  tf::Graph g, other;
  Tensor foreign;
  {
    auto scope = other.as_default();
    foreign = tf::placeholder(em::float32, {}, "lr");
  }
  auto scope = g.as_default();
  tf::Variable w(em::tensor({1.f}), "w");
  const Tensor loss = tf::reduce_sum(tf::square(w.value()));
  const Tensor vec = tf::placeholder(em::float32, {2}, "lr_vec");
  const Tensor unknown = tf::placeholder(em::float32, {-1}, "lr_any");
  const Tensor whole = tf::placeholder(em::int32, {}, "lr_int");
  CHECK_THROWS_AS(tf::train::GradientDescentOptimizer(vec), em::ShapeError);
  CHECK_THROWS_WITH(tf::train::GradientDescentOptimizer(vec),
                    "GradientDescent: learning_rate must be a 0-d tensor; it is graph tensor \"lr_vec:0\" "
                    "(float32 [2])");
  CHECK_THROWS_WITH(tf::train::AdamOptimizer(unknown),
                    "Adam: learning_rate must be a 0-d tensor; it is graph tensor \"lr_any:0\" (float32 [-1])");
  CHECK_THROWS_AS(tf::train::RMSPropOptimizer(whole), em::DTypeError);
  CHECK_THROWS_WITH(tf::train::RMSPropOptimizer(whole),
                    "RMSProp: learning_rate must be a floating-point tensor; it is graph tensor \"lr_int:0\" "
                    "(int32 [])");
  CHECK_THROWS_WITH(tf::train::AdagradOptimizer(em::tensor({1.f, 2.f})),
                    "Adagrad: learning_rate must be a 0-d tensor; it is an eager tensor (float32 [2])");
  CHECK_THROWS_WITH(tf::train::MomentumOptimizer(Tensor(), 0.9, "Mom"), "Mom: learning_rate is an undefined tensor");
  tf::train::GradientDescentOptimizer from_other(foreign);
  CHECK_THROWS_WITH(from_other.minimize(loss),
                    "GradientDescent: learning_rate (graph tensor \"lr:0\" (float32 [])) is from another graph than "
                    "variable \"w\"");
  // An eager 0-d rate is a constant of the graph.
  tf::Operation step = tf::train::GradientDescentOptimizer(em::scalar_tensor(0.25f)).minimize(loss);
  tf::Session sess(g);
  sess.run(tf::global_variables_initializer());
  sess.run(step);
  CHECK(sess.run(w).to_vector<float>() == std::vector<float>{0.5f});
}

// ---- global step ----------------------------------------------------------------

TEST_CASE("get_or_create_global_step makes one int64 step per graph, and minimize advances it",
          "[autograd][compat]") {
  tf::Graph g;
  tf::Variable w, step;
  tf::Operation train, named, plain, init;
  Tensor w_after;
  {
    auto scope = g.as_default();
    CHECK_FALSE(tf::train::get_global_step().defined());
    step = tf::train::get_or_create_global_step();
    CHECK(step.name() == "global_step");
    CHECK(step.dtype() == em::int64);
    CHECK(step.shape() == em::Shape{});
    CHECK_FALSE(step.trainable());
    CHECK(tf::train::get_or_create_global_step().index() == step.index());
    CHECK(tf::train::get_global_step().index() == step.index());
    CHECK(tf::train::get_global_step(g).index() == step.index());
    w = tf::Variable(em::tensor({1.f, 2.f}), "w");
    const Tensor loss = tf::reduce_sum(tf::square(w.value()));
    tf::train::GradientDescentOptimizer opt(0.1);
    train = opt.minimize(loss, step);
    CHECK(train.name() == "GradientDescent");
    named = opt.apply_gradients(opt.compute_gradients(loss), step, "train");
    CHECK(named.name() == "train");
    // A graph without a step passes get_global_step()'s undefined Variable: no step to advance.
    plain = opt.minimize(loss, tf::Variable());
    // A read ordered after the returned op sees the updated w: the updates run before the increment.
    auto after = tf::control_dependencies({train});
    w_after = tf::identity(w.value(), "w_after");
  }
  // The trainable variables are still just w (the step is not trainable).
  {
    auto scope = g.as_default();
    CHECK(tf::trainable_variables().size() == 1);
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  CHECK(sess.run(step).item<int64_t>() == 0);
  for (int i = 0; i < 3; ++i) sess.run(train);
  CHECK(sess.run(step).item<int64_t>() == 3);
  const auto w3 = sess.run(w).to_vector<float>();
  CHECK(w3[0] == Approx(0.512f));  // 0.8^3
  CHECK(w3[1] == Approx(1.024f));
  const auto r = sess.run({w_after, step});  // runs the train op once more, then reads
  CHECK(r[0].to_vector<float>()[0] == Approx(0.4096f));
  CHECK(sess.run(step).item<int64_t>() == 4);
  sess.run(named);
  sess.run(plain);
  CHECK(sess.run(step).item<int64_t>() == 5);
  CHECK(sess.run(w).to_vector<float>()[0] == Approx(0.4096f * 0.64f));
}

TEST_CASE("under name scopes, slots follow their variable, the global step stays at the top, Adam's powers in scope",
          "[autograd][compat]") {
  tf::Graph g;
  auto scope = g.as_default();
  Tensor loss;
  tf::Variable w;
  {
    auto model = tf::name_scope("model");
    w = tf::Variable(em::tensor({1.f, 2.f}), "w");
    loss = tf::reduce_sum(tf::square(w.value()));
  }
  auto train_scope = tf::name_scope("train");
  tf::train::AdamOptimizer adam(0.1);
  auto step = tf::train::get_or_create_global_step();
  CHECK(step.name() == "global_step");
  adam.minimize(loss, step);
  CHECK(w.name() == "model/w");
  CHECK(adam.get_slot(w, "m").name() == "model/w/Adam");
  CHECK(adam.get_slot(w, "v").name() == "model/w/Adam_1");
  std::vector<std::string> names;
  for (const tf::Variable& v : tf::global_variables()) names.push_back(v.name());
  // TF1 makes the beta powers in the name scope minimize runs in (init_scope keeps it).
  CHECK(names == std::vector<std::string>{"model/w", "global_step", "train/beta1_power", "train/beta2_power",
                                          "model/w/Adam", "model/w/Adam_1"});
  // The name scope is back after each of them (the gradient nodes took "train/add" to "train/add_3").
  CHECK_THAT(tf::tensor_name(tf::add(loss, 1.f)), Catch::StartsWith("train/add_"));
}

TEST_CASE("get_global_step finds a variable the program named global_step, as TF finds global_step:0",
          "[autograd][compat]") {
  tf::Graph g, other;
  tf::Variable mine, w;
  tf::Operation train, init;
  {
    auto scope = g.as_default();
    mine = tf::Variable(tf::constant(10), "global_step", false);  // TF1 code's tf.Variable(0, ...): int32
    CHECK(tf::train::get_or_create_global_step().index() == mine.index());
    w = tf::Variable(em::tensor({1.f}), "w");
    train = tf::train::AdagradOptimizer(0.1).minimize(tf::reduce_sum(tf::square(w.value())), mine);
    init = tf::global_variables_initializer();
  }
  // Outside a scope, the graph names where to look and where to make it.
  CHECK(tf::train::get_global_step(g).index() == mine.index());
  CHECK_FALSE(tf::train::get_global_step(other).defined());
  const tf::Variable made = tf::train::get_or_create_global_step(other);
  CHECK(made.graph_state() == other.state());
  CHECK(made.name() == "global_step");
  CHECK(tf::train::get_global_step(other).index() == made.index());
  tf::Session sess(g);
  sess.run(init);
  sess.run(train);
  sess.run(train);
  CHECK(sess.run(mine).item<int32_t>() == 12);
}

TEST_CASE("global step misuse is refused with TF's reasons", "[autograd][compat][errors]") {
  CHECK_THROWS_WITH(tf::train::get_global_step(), Catch::Contains("get_global_step: needs a graph"));
  CHECK_THROWS_WITH(tf::train::get_or_create_global_step(),
                    Catch::Contains("get_or_create_global_step: needs a graph"));
  {
    tf::Graph g;
    auto scope = g.as_default();
    tf::Variable(em::scalar_tensor(0.f), "global_step", false);
    CHECK_THROWS_AS(tf::train::get_global_step(), em::DTypeError);
    CHECK_THROWS_WITH(tf::train::get_or_create_global_step(),
                      "get_or_create_global_step: the existing \"global_step\" does not have an integer type "
                      "(float32)");
  }
  {
    tf::Graph g;
    auto scope = g.as_default();
    tf::Variable(em::zeros({2}, em::int64), "global_step", false);
    CHECK_THROWS_AS(tf::train::get_global_step(), em::ShapeError);
    CHECK_THROWS_WITH(tf::train::get_global_step(), "get_global_step: the existing \"global_step\" is not 0-d ([2])");
  }
  {
    tf::Graph g;
    auto scope = g.as_default();
    tf::placeholder(em::int64, {}, "global_step");
    CHECK_THROWS_WITH(tf::train::get_global_step(),
                      "get_global_step: the node named \"global_step\" is not a variable");
  }
  tf::Graph g, other;
  tf::Variable foreign;
  {
    auto scope = other.as_default();
    foreign = tf::train::get_or_create_global_step();
  }
  auto scope = g.as_default();
  tf::Variable w(em::tensor({1.f}), "w");
  tf::Variable fstep(em::scalar_tensor(0.f), "fstep", false);
  const Tensor loss = tf::reduce_sum(tf::square(w.value()));
  tf::train::GradientDescentOptimizer opt(0.1);
  const int nodes = g.num_nodes();
  CHECK_THROWS_WITH(opt.minimize(loss, fstep),
                    "GradientDescent: global_step \"fstep\" must be a 0-d integer variable; it is float32 []");
  CHECK_THROWS_WITH(opt.apply_gradients(opt.compute_gradients(loss), foreign),
                    "GradientDescent: global_step \"global_step\" is from another graph than variable \"w\"");
  CHECK(g.num_nodes() > nodes);  // the gradients were built; no update node was
  const auto names = g.node_names();
  CHECK(std::find(names.begin(), names.end(), "w/GradientDescent") == names.end());
}

// ---- schedules ------------------------------------------------------------------

TEST_CASE("exponential_decay follows the global step across runs, in float32 as TF1", "[autograd][compat]") {
  tf::Graph g;
  tf::Variable w, step;
  Tensor lr, stair, lr64, lr_in_run;
  tf::Operation train, init;
  Tensor base64;
  {
    auto scope = g.as_default();
    step = tf::train::get_or_create_global_step();
    lr = tf::train::exponential_decay(0.1, step, 2, 0.5);
    stair = tf::train::exponential_decay(0.1, step, 2, 0.5, true, "stair");
    CHECK(lr.dtype() == em::float32);  // a number rate converts as a Python float: float32
    CHECK(tf::static_shape(lr) == em::Shape{});
    CHECK(tf::tensor_name(lr) == "ExponentialDecay:0");
    CHECK(tf::tensor_name(stair) == "stair:0");
    base64 = tf::placeholder(em::float64, {}, "base64");
    lr64 = tf::train::exponential_decay(base64, step, 3, 0.9);
    CHECK(lr64.dtype() == em::float64);
    w = tf::Variable(em::tensor({1.f, -2.f}), "w");
    train = tf::train::GradientDescentOptimizer(lr).minimize(tf::reduce_sum(tf::square(w.value())), step);
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  std::vector<double> ref{1.0, -2.0};
  for (int k = 0; k < 5; ++k) {
    INFO("step " << k);
    // TF1: 0.1f * pow(0.5f, float(k) / 2.0f), floored exponent for the staircase.
    const float want = 0.1f * std::pow(0.5f, static_cast<float>(k) / 2.0f);
    const float want_stair = 0.1f * std::pow(0.5f, std::floor(static_cast<float>(k) / 2.0f));
    const auto r = sess.run({lr, stair, step, lr64}, {{base64, em::scalar_tensor(1.0, em::float64)}});
    CHECK(r[0].item<float>() == Approx(want).epsilon(1e-6));
    CHECK(r[1].item<float>() == Approx(want_stair).epsilon(1e-6));
    CHECK(r[2].item<int64_t>() == k);
    CHECK(r[3].item<double>() == Approx(std::pow(0.9, k / 3.0)).epsilon(1e-12));
    // The rate a run uses is the one of the step it starts at: the increment comes last.
    const auto t = sess.run({train, lr});
    CHECK(t[1].item<float>() == Approx(want).epsilon(1e-6));
    for (double& v : ref) v -= static_cast<double>(want) * 2 * v;
  }
  CHECK(sess.run(step).item<int64_t>() == 5);
  check_close(sess.run(w).to_vector<float>(), ref, 1e-6);
  // Eagerly (numbers only) it is a number.
  CHECK(tf::train::exponential_decay(0.1, 4, 2, 0.5).item<float>() == Approx(0.025f));
}

TEST_CASE("exponential_decay refuses a missing step and bad arguments", "[autograd][compat][errors]") {
  tf::Graph g;
  auto scope = g.as_default();
  const tf::Variable step = tf::train::get_or_create_global_step();
  CHECK_THROWS_AS(tf::train::exponential_decay(0.1, tf::train::get_global_step(tf::Graph()), 10, 0.5),
                  em::ValueError);
  CHECK_THROWS_WITH(tf::train::exponential_decay(0.1, tf::Variable(), 10, 0.5),
                    Catch::StartsWith("exponential_decay: global_step is required"));
  CHECK_THROWS_WITH(tf::train::exponential_decay(0.1, step, 0, 0.5),
                    "exponential_decay: decay_steps must be positive (got 0)");
  CHECK_THROWS_AS(tf::train::exponential_decay(tf::placeholder(em::int32, {}, "r"), step, 10, 0.5), em::DTypeError);
  CHECK_THROWS_WITH(tf::train::exponential_decay(tf::placeholder(em::float32, {3}, "r3"), step, 10, 0.5),
                    "exponential_decay: learning_rate must be 0-d; it is graph tensor \"r3:0\" (float32 [3])");
  CHECK_THROWS_WITH(tf::train::exponential_decay(0.1, tf::placeholder(em::int64, {2}, "s2"), 10, 0.5),
                    "exponential_decay: global_step must be 0-d; it is graph tensor \"s2:0\" (int64 [2])");
}

TEST_CASE("piecewise_constant picks the value of the step's interval, as TF1's case", "[autograd][compat]") {
  tf::Graph g;
  tf::Variable step, w;
  Tensor lr, ints, x, by_x;
  tf::Operation train, init;
  {
    auto scope = g.as_default();
    step = tf::train::get_or_create_global_step();
    lr = tf::train::piecewise_constant(step, {2, 4}, {1.0, 0.5, 0.1});  // int32 boundaries widen to int64
    CHECK(lr.dtype() == em::float32);
    CHECK(tf::tensor_name(lr) == "PiecewiseConstant:0");
    ints = tf::train::piecewise_constant(step, std::vector<int64_t>{1}, std::vector<int>{10, 20}, "ints");
    CHECK(ints.dtype() == em::int32);
    x = tf::placeholder(em::float32, {}, "x");
    by_x = tf::train::piecewise_constant(x, {0.5, 1.5}, {tf::constant(em::scalar_tensor(3.0, em::float64)),
                                                       tf::constant(em::scalar_tensor(2.0, em::float64)),
                                                       tf::constant(em::scalar_tensor(1.0, em::float64))});
    CHECK(by_x.dtype() == em::float64);
    w = tf::Variable(em::tensor({1.f}), "w");
    train = tf::train::GradientDescentOptimizer(tf::train::piecewise_constant(step, {1}, {0.25, 0.125}))
                .minimize(tf::reduce_sum(tf::square(w.value())), step);
    init = tf::global_variables_initializer();
  }
  tf::Session sess(g);
  sess.run(init);
  const std::vector<float> want{1.0f, 1.0f, 1.0f, 0.5f, 0.5f, 0.1f, 0.1f};
  for (int64_t k = 0; k < 7; ++k) {
    INFO("step " << k);
    const auto r = sess.run({lr, ints}, {{step.value(), em::scalar_tensor(k, em::int64)}});
    CHECK(r[0].item<float>() == want[static_cast<std::size_t>(k)]);
    CHECK(r[1].item<int32_t>() == (k <= 1 ? 10 : 20));
  }
  const std::vector<std::pair<float, double>> at{{-1.f, 3}, {0.5f, 3}, {0.6f, 2}, {1.5f, 2}, {1.6f, 1}};
  for (const auto& [xv, v] : at) CHECK(sess.run(by_x, {{x, em::scalar_tensor(xv)}}).item<double>() == v);
  // As a rate: step 0 and 1 use 0.25 (w *= 0.5), then 0.125 (w *= 0.75).
  for (int i = 0; i < 3; ++i) sess.run(train);
  CHECK(sess.run(w).item<float>() == Approx(0.5f * 0.5f * 0.75f));
  CHECK(sess.run(step).item<int64_t>() == 3);
}

TEST_CASE("piecewise_constant refuses what TF refuses, and unordered boundaries", "[autograd][compat][errors]") {
  tf::Graph g;
  auto scope = g.as_default();
  const tf::Variable step = tf::train::get_or_create_global_step();
  const Tensor x = tf::placeholder(em::float32, {}, "x");
  CHECK_THROWS_WITH(tf::train::piecewise_constant(step, {1, 2}, {1.0, 0.5}),
                    "piecewise_constant: boundaries must have one element less than values (2 boundaries, 2 values)");
  CHECK_THROWS_WITH(tf::train::piecewise_constant(x, {1, 2}, {1.0, 0.5, 0.1}),
                    "piecewise_constant: boundaries[0] (int32) must have the same dtype as x (float32)");
  CHECK_THROWS_WITH(tf::train::piecewise_constant(step, {1.5}, {1.0, 0.5}),
                    "piecewise_constant: boundaries[0] (float32) must have the same dtype as x (int64)");
  CHECK_THROWS_WITH(tf::train::piecewise_constant(step, {1, 2}, {1.0, 0.5, 1}),
                    "piecewise_constant: values must all have one dtype (values[0] is float32, values[2] is int32)");
  CHECK_THROWS_WITH(tf::train::piecewise_constant(step, {4, 2}, {1.0, 0.5, 0.1}),
                    "piecewise_constant: boundaries must increase strictly (boundaries[1] = 2 follows 4)");
  CHECK_THROWS_AS(tf::train::piecewise_constant(tf::placeholder(em::int64, {2}, "v"), {1}, {1.0, 0.5}),
                  em::ShapeError);
  CHECK_THROWS_WITH(tf::train::piecewise_constant(step, std::vector<int>{}, std::vector<double>{1.0}),
                    "piecewise_constant: needs at least one boundary");
}

// ---- RMSProp and Adagrad ----------------------------------------------------------

namespace {

// loss = sum(a * w^2 + b * w), so d loss / d w = 2 a w + b.
const std::vector<double> kA{0.5, 1.5, 2.0}, kB{0.3, -0.1, 1.0}, kW0{1.0, -2.0, 0.25};

Tensor quadratic(const tf::Variable& w) {
  const Tensor a = tf::constant(em::tensor({0.5f, 1.5f, 2.0f}));
  const Tensor b = tf::constant(em::tensor({0.3f, -0.1f, 1.0f}));
  return tf::reduce_sum(a * tf::square(w.value()) + b * w.value());
}

}  // namespace

TEST_CASE("RMSPropOptimizer: three steps equal a float64 loop of TF1's ApplyRMSProp", "[autograd][compat]") {
  for (bool centered : {false, true}) {
    INFO((centered ? "centered" : "plain"));
    const double lr = 0.01, decay = 0.9, momentum = 0.5, eps = 1e-10;
    tf::Graph g;
    tf::Variable w;
    Tensor rate;
    tf::Operation train, init;
    std::unique_ptr<tf::train::RMSPropOptimizer> opt;
    std::vector<std::string> names;
    {
      auto scope = g.as_default();
      w = tf::Variable(em::tensor({1.f, -2.f, 0.25f}), "w");
      rate = tf::placeholder(em::float64, {}, "rate");  // cast to float32 for w
      opt = std::make_unique<tf::train::RMSPropOptimizer>(rate, decay, momentum, eps, centered);
      train = opt->minimize(quadratic(w));
      init = tf::global_variables_initializer();
      for (const auto& v : tf::global_variables()) names.push_back(v.name());
    }
    // TF's slots and names: rms ("w/RMSProp", at ones), mg when centered, momentum.
    const std::vector<std::string> want_names =
        centered ? std::vector<std::string>{"w", "w/RMSProp", "w/RMSProp_1", "w/RMSProp_2"}
                 : std::vector<std::string>{"w", "w/RMSProp", "w/RMSProp_1"};
    CHECK(names == want_names);
    CHECK(opt->get_slot(w, "rms").name() == "w/RMSProp");
    CHECK(opt->get_slot(w, "momentum").name() == (centered ? "w/RMSProp_2" : "w/RMSProp_1"));
    CHECK(opt->get_slot_names() == (centered ? std::vector<std::string>{"rms", "mg", "momentum"}
                                             : std::vector<std::string>{"rms", "momentum"}));
    tf::Session sess(g);
    sess.run(init);
    CHECK(sess.run(opt->get_slot(w, "rms")).to_vector<float>() == std::vector<float>{1, 1, 1});
    CHECK(sess.run(opt->get_slot(w, "momentum")).to_vector<float>() == std::vector<float>{0, 0, 0});
    std::vector<double> ww = kW0, ms(3, 1.0), mg(3, 0.0), mom(3, 0.0);
    for (int t = 0; t < 3; ++t) {
      sess.run(train, {{rate, em::scalar_tensor(lr, em::float64)}});
      for (std::size_t i = 0; i < 3; ++i) {
        const double gr = 2 * kA[i] * ww[i] + kB[i];
        ms[i] = decay * ms[i] + (1 - decay) * gr * gr;
        mg[i] = decay * mg[i] + (1 - decay) * gr;
        const double denom = centered ? ms[i] - mg[i] * mg[i] + eps : ms[i] + eps;
        mom[i] = momentum * mom[i] + lr * gr / std::sqrt(denom);
        ww[i] -= mom[i];
      }
    }
    check_close(sess.run(w).to_vector<float>(), ww, 1e-5);
    check_close(sess.run(opt->get_slot(w, "rms")).to_vector<float>(), ms, 1e-5);
    check_close(sess.run(opt->get_slot(w, "momentum")).to_vector<float>(), mom, 1e-5);
    if (centered) check_close(sess.run(opt->get_slot(w, "mg")).to_vector<float>(), mg, 1e-5);
    // The step moved w by more than the tolerance: the comparison says something.
    CHECK(std::abs(ww[0] - kW0[0]) > 1e-2);
  }
}

TEST_CASE("AdagradOptimizer: three steps equal a float64 loop of TF1's ApplyAdagrad", "[autograd][compat]") {
  const double lr = 0.1, init_acc = 0.1;
  tf::Graph g;
  tf::Variable w;
  tf::Operation train, init;
  tf::train::AdagradOptimizer opt(lr, init_acc);
  {
    auto scope = g.as_default();
    w = tf::Variable(em::tensor({1.f, -2.f, 0.25f}), "w");
    train = opt.minimize(quadratic(w));
    init = tf::global_variables_initializer();
  }
  CHECK(opt.get_slot(w, "accumulator").name() == "w/Adagrad");
  CHECK(opt.get_slot_names() == std::vector<std::string>{"accumulator"});
  tf::Session sess(g);
  sess.run(init);
  CHECK(sess.run(opt.get_slot(w, "accumulator")).to_vector<float>() == std::vector<float>(3, 0.1f));
  std::vector<double> ww = kW0, acc(3, init_acc);
  for (int t = 0; t < 3; ++t) {
    sess.run(train);
    for (std::size_t i = 0; i < 3; ++i) {
      const double gr = 2 * kA[i] * ww[i] + kB[i];
      acc[i] += gr * gr;
      ww[i] -= lr * gr / std::sqrt(acc[i]);
    }
  }
  check_close(sess.run(w).to_vector<float>(), ww, 1e-5);
  check_close(sess.run(opt.get_slot(w, "accumulator")).to_vector<float>(), acc, 1e-5);
  CHECK(std::abs(ww[0] - kW0[0]) > 1e-2);
  CHECK_THROWS_AS(tf::train::AdagradOptimizer(0.1, 0.0), em::ValueError);
  CHECK_THROWS_WITH(tf::train::AdagradOptimizer(0.1, -1.0, "Ada"),
                    "Ada: initial_accumulator_value must be positive (got -1)");
}

// ---- checkpoints: global step, max_to_keep, state file, resume -------------------------

namespace {

struct StepModel {
  tf::Graph g;
  tf::Variable w, step;
  tf::Operation train, init;
  StepModel() {
    auto scope = g.as_default();
    step = tf::train::get_or_create_global_step();
    w = tf::Variable(em::tensor({1.f, 2.f}), "w");
    train = tf::train::GradientDescentOptimizer(0.1).minimize(tf::reduce_sum(tf::square(w.value())), step);
    init = tf::global_variables_initializer();
  }
};

}  // namespace

TEST_CASE("Saver with a global step keeps max_to_keep checkpoints and a state file; resume from the latest",
          "[compat][saver]") {
  const TempDir dir;
  StepModel m;
  std::unique_ptr<tf::train::Saver> saver;
  {
    auto scope = m.g.as_default();
    saver = std::make_unique<tf::train::Saver>(std::vector<tf::Variable>{}, 2);
  }
  CHECK(tf::train::latest_checkpoint(dir.path.string()).empty());
  std::vector<float> w_saved;
  {
    tf::Session sess(m.g);
    sess.run(m.init);
    for (int i = 1; i <= 4; ++i) {
      INFO("save " << i);
      sess.run(m.train);
      const std::string p = saver->save(sess, dir / "model", m.step);
      CHECK(p == dir / ("model-" + std::to_string(i)));
      CHECK(tf::train::latest_checkpoint(dir.path.string()) == p);
    }
    w_saved = sess.run(m.w).to_vector<float>();
  }
  // The two oldest were deleted; the state file names the rest, newest last, by file name.
  CHECK(dir.files() == std::vector<std::string>{"checkpoint", "model-3", "model-4"});
  CHECK(saver->last_checkpoints() == std::vector<std::string>{dir / "model-3", dir / "model-4"});
  CHECK(read_all(dir / "checkpoint") ==
        "model_checkpoint_path: \"model-4\"\n"
        "all_model_checkpoint_paths: \"model-3\"\n"
        "all_model_checkpoint_paths: \"model-4\"\n");
  // Resume: a new session and a new Saver, as a restarted program has.
  tf::Session resumed(m.g);
  std::unique_ptr<tf::train::Saver> again;
  {
    auto scope = m.g.as_default();
    again = std::make_unique<tf::train::Saver>(std::vector<tf::Variable>{}, 2);
  }
  const std::string latest = tf::train::latest_checkpoint(dir.path.string());
  REQUIRE(latest == dir / "model-4");
  again->restore(resumed, latest);
  CHECK(resumed.run(m.step).item<int64_t>() == 4);
  CHECK(resumed.run(m.w).to_vector<float>() == w_saved);
  resumed.run(m.train);
  CHECK(again->save(resumed, dir / "model", m.step) == dir / "model-5");
  CHECK(tf::train::latest_checkpoint(dir.path.string()) == dir / "model-5");
  // As TF's, a new Saver knows only its own checkpoints: model-3 stays on disk, unlisted.
  CHECK(again->last_checkpoints() == std::vector<std::string>{dir / "model-5"});
  CHECK(dir.files() == std::vector<std::string>{"checkpoint", "model-3", "model-4", "model-5"});
  CHECK(read_all(dir / "checkpoint") ==
        "model_checkpoint_path: \"model-5\"\nall_model_checkpoint_paths: \"model-5\"\n");
  // A number as the step; the same path saved again moves to the end instead of counting twice.
  CHECK(again->save(resumed, dir / "model", 5) == dir / "model-5");
  CHECK(again->save(resumed, dir / "other", int64_t{7}) == dir / "other-7");
  CHECK(again->save(resumed, dir / "model", 5) == dir / "model-5");
  CHECK(again->last_checkpoints() == std::vector<std::string>{dir / "other-7", dir / "model-5"});
  // When the checkpoint the state file names is gone, there is no latest one (as TF).
  std::filesystem::remove(dir / "model-5");
  CHECK(tf::train::latest_checkpoint(dir.path.string()).empty());
}

TEST_CASE("Saver: max_to_keep 0 keeps every file; paths outside the state file's directory are absolute; "
          "names are quoted",
          "[compat][saver]") {
  const TempDir dir;
  std::filesystem::create_directories(dir.path / "a");
  std::filesystem::create_directories(dir.path / "b");
  StepModel m;
  std::unique_ptr<tf::train::Saver> keep_all;
  {
    auto scope = m.g.as_default();
    keep_all = std::make_unique<tf::train::Saver>(std::vector<tf::Variable>{}, 0);
  }
  tf::Session sess(m.g);
  sess.run(m.init);
  for (int i = 0; i < 7; ++i) {
    sess.run(m.train);
    keep_all->save(sess, dir / "all", m.step);
  }
  CHECK(dir.files() == std::vector<std::string>{"a", "all-1", "all-2", "all-3", "all-4", "all-5", "all-6", "all-7",
                                                "b", "checkpoint"});
  CHECK(keep_all->last_checkpoints().empty());
  CHECK(read_all(dir / "checkpoint") == "model_checkpoint_path: \"all-7\"\nall_model_checkpoint_paths: \"all-7\"\n");
  tf::train::Saver unlimited({m.w}, std::nullopt);  // TF's max_to_keep=None
  for (int i = 0; i < 6; ++i) unlimited.save(sess, dir / "a/n", i);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path / "a"), {}) == 7);  // six and the state file
  CHECK(unlimited.last_checkpoints().empty());
  // A Saver with a fixed list keeps the other's list; a quote, a space, a backslash and UTF-8 round-trip.
  tf::train::Saver kept({m.w, m.step}, 3);
  kept.save(sess, dir / "a/x", 1);
  const std::string odd = "we\"ird n\\ame \xc3\xa9";
  const std::string p = kept.save(sess, dir / ("b/" + odd), 2);
  CHECK(p == dir / ("b/" + odd + "-2"));
  const std::string abs_a = std::filesystem::absolute(dir.path / "a/x-1").lexically_normal().string();
  CHECK(read_all(dir / "b/checkpoint") ==
        "model_checkpoint_path: \"we\\\"ird n\\\\ame \\303\\251-2\"\n"
        "all_model_checkpoint_paths: \"" + abs_a + "\"\n"
        "all_model_checkpoint_paths: \"we\\\"ird n\\\\ame \\303\\251-2\"\n");
  CHECK(tf::train::latest_checkpoint((dir.path / "b").string()) == p);
  CHECK(tf::train::latest_checkpoint((dir.path / "a").string()) == dir / "a/x-1");
  tf::Session back(m.g);
  tf::train::Saver({m.w, m.step}).restore(back, tf::train::latest_checkpoint((dir.path / "b").string()));
  CHECK(back.run(m.step).item<int64_t>() == 7);
}

TEST_CASE("Saver and latest_checkpoint errors", "[compat][saver][errors]") {
  const TempDir dir;
  StepModel m;
  tf::Graph other;
  tf::Variable foreign, fstep;
  {
    auto scope = other.as_default();
    foreign = tf::train::get_or_create_global_step();
  }
  {
    auto scope = m.g.as_default();
    CHECK_THROWS_AS(tf::train::Saver({}, -1), em::ValueError);
    CHECK_THROWS_WITH(tf::train::Saver({}, -1),
                      "Saver: max_to_keep must be >= 0 (got -1); 0 or std::nullopt keeps every checkpoint");
    fstep = tf::Variable(em::scalar_tensor(1.f), "fstep", false);
  }
  tf::train::Saver saver({m.w, m.step});
  tf::Session sess(m.g);
  sess.run(m.w.initializer());
  CHECK_THROWS_WITH(saver.save(sess, dir / "model", m.step),
                    "Saver::save: global_step \"global_step\" is not initialized in this session");
  sess.run(m.init);
  sess.run(fstep.initializer());
  CHECK_THROWS_WITH(saver.save(sess, dir / "model", fstep),
                    "Saver::save: global_step \"fstep\" must be a 0-d integer variable; it is float32 []");
  CHECK_THROWS_WITH(saver.save(sess, dir / "model", foreign),
                    "Saver::save: global_step \"global_step\" is not in the session's graph");
  CHECK_THROWS_WITH(saver.save(sess, dir / "checkpoint"),
                    "Saver::save: " + (dir / "checkpoint") +
                        ": the path collides with the checkpoint state file \"checkpoint\" of its directory");
  CHECK_THROWS_WITH(saver.save(sess, dir / "missing/model", 1),
                    "Saver::save: the parent directory of " + (dir / "missing/model-1") +
                        " does not exist, cannot save");
  CHECK(dir.files().empty());  // nothing was written by the failed saves
  // An undefined step (get_global_step() found none) saves to the path itself.
  CHECK(saver.save(sess, dir / "plain", tf::Variable()) == dir / "plain");
  // A state file that is not ours is an error, not "no checkpoint".
  std::ofstream(dir / "checkpoint", std::ios::binary) << "model_checkpoint_path: \"plain\"\nbogus: \"x\"\n";
  CHECK_THROWS_WITH(tf::train::latest_checkpoint(dir.path.string()),
                    "latest_checkpoint: " + (dir / "checkpoint") + ": line 2: unknown field \"bogus\"");
  std::ofstream(dir / "checkpoint", std::ios::binary) << "model_checkpoint_path: plain\n";
  CHECK_THROWS_WITH(tf::train::latest_checkpoint(dir.path.string()),
                    Catch::Contains(": line 1: expected <field>: \"<path>\""));
  std::ofstream(dir / "checkpoint", std::ios::binary) << "model_checkpoint_path: \"pl\\qain\"\n";
  CHECK_THROWS_WITH(tf::train::latest_checkpoint(dir.path.string()), Catch::Contains("unknown escape \\q"));
  std::ofstream(dir / "checkpoint", std::ios::binary) << "\n  model_checkpoint_path:   \"plain\"  \n";
  CHECK(tf::train::latest_checkpoint(dir.path.string()) == dir / "plain");
  CHECK(tf::train::latest_checkpoint(dir / "nowhere").empty());
}

TEST_CASE("ExponentialMovingAverage follows the trained variables as TF1's, and a Saver loads the averages",
          "[compat][saver][autograd]") {
  const TempDir dir;
  tf::Graph g;
  tf::Variable w, b, step;
  tf::Operation train, init;
  tf::train::ExponentialMovingAverage ema(0.9);
  {
    auto scope = g.as_default();
    step = tf::train::get_or_create_global_step();
    w = tf::Variable(tf::constant(std::vector<float>{1, 2}, {2}), "w");
    b = tf::Variable(tf::random_normal({3}), "b");  // averaged, not trained
    const Tensor loss = tf::reduce_sum(tf::square(w - tf::constant(std::vector<float>{3, -1}, {2})));
    const tf::Operation opt = tf::train::GradientDescentOptimizer(0.1).minimize(loss, step);
    ema = tf::train::ExponentialMovingAverage(0.9, step);
    {
      auto after = tf::control_dependencies({opt});
      train = ema.apply({w, b});
    }
    CHECK(train.name() == "ExponentialMovingAverage");
    CHECK(ema.average(w).name() == "w/ExponentialMovingAverage");
    CHECK(ema.average_name(b) == "b/ExponentialMovingAverage");
    CHECK_FALSE(ema.average(w).trainable());
    CHECK_FALSE(ema.average(step).defined());  // not averaged: TF's None
    CHECK(tf::get_collection(tf::GraphKeys::MOVING_AVERAGE_VARIABLES).size() == 2);
    CHECK_THROWS_WITH(ema.apply({w}),
                      "ExponentialMovingAverage::apply: Moving average already computed for: w");
    tf::train::ExponentialMovingAverage fresh(0.5, "Fresh");
    CHECK_THROWS_WITH(fresh.apply({w, w}),
                      "ExponentialMovingAverage::apply: Moving average already computed for: w");
    CHECK_FALSE(fresh.average(w).defined());  // nothing was made
    CHECK_THROWS_WITH(ema.average_name(tf::Variable()),
                      "ExponentialMovingAverage::average_name: an undefined Variable");
    CHECK_THROWS_WITH(fresh.apply({tf::Variable()}), "ExponentialMovingAverage::apply: an undefined Variable");
    CHECK_THROWS_WITH(tf::train::ExponentialMovingAverage(0.9, ""),
                      "ExponentialMovingAverage: the name must not be empty");
    CHECK_THROWS_WITH(tf::train::ExponentialMovingAverage(0.9, Tensor()),
                      "ExponentialMovingAverage: num_updates is an undefined tensor");
    // An ember::Variable read in graph mode has no initial value to start a shadow from.
    em::Variable outside(em::tensor({1.f}), "outside");
    (void)outside.value();
    // It is the graph's newest variable, after the five global ones.
    const tf::Variable by_reference(g.state(), static_cast<int>(tf::global_variables().size()));
    CHECK(by_reference.name() == "outside");
    CHECK_THROWS_WITH(fresh.apply({by_reference}),
                      "Variable::initial_value: \"outside\" is an ember::Variable read by reference; it has no "
                      "initial value");
    CHECK_FALSE(fresh.average(by_reference).defined());
    CHECK_THROWS_AS(ema.apply({step}), em::DTypeError);
    CHECK_THROWS_WITH(ema.apply({step}),
                      "ExponentialMovingAverage::apply: The variables must be half, float, or double: global_step "
                      "is int64");
    CHECK_THROWS_WITH(tf::train::ExponentialMovingAverage(0.9, tf::constant(true)),
                      "ExponentialMovingAverage: num_updates must be a 0-d number, got bool []");
    init = tf::global_variables_initializer();
  }
  std::vector<float> w_avg, b_avg;
  {
    tf::Session sess(g);
    sess.run(init);
    // The shadow starts at the variable's initial value, a random one included.
    CHECK(sess.run(ema.average(b)).to_vector<float>() == sess.run(b).to_vector<float>());
    const std::vector<float> b0 = sess.run(b).to_vector<float>();
    std::vector<double> wv{1, 2}, shadow{1, 2};
    const double target[2] = {3, -1};
    for (int k = 1; k <= 3; ++k) {
      sess.run(train);
      // The step is read after minimize advanced it: decay = min(0.9, (1 + k) / (10 + k)).
      const double decay = std::min(0.9, (1.0 + k) / (10.0 + k));
      for (int i = 0; i < 2; ++i) {
        wv[i] -= 0.1 * 2 * (wv[i] - target[i]);
        shadow[i] -= (shadow[i] - wv[i]) * (1 - decay);
      }
      const std::vector<float> got = sess.run(ema.average(w)).to_vector<float>();
      for (int i = 0; i < 2; ++i) CHECK(got[i] == Approx(shadow[i]).epsilon(1e-5));
    }
    CHECK(sess.run(ema.average(b)).to_vector<float>() == b0);  // b did not move, nor its average
    w_avg = sess.run(ema.average(w)).to_vector<float>();
    b_avg = b0;
    tf::train::Saver(std::vector<tf::Variable>{}, 5).save(sess, dir / "model");  // every variable
  }
  // An evaluation program builds the model again and loads the averages into its variables.
  tf::Graph eval;
  std::unique_ptr<tf::train::Saver> loader;
  tf::Variable ew, eb;
  {
    auto scope = eval.as_default();
    ew = tf::Variable(tf::zeros({2}), "w");
    eb = tf::Variable(tf::zeros({3}), "b");
    tf::Variable other(tf::zeros({1}), "global_step_copy", false);
    tf::train::ExponentialMovingAverage reader(0.9);
    const auto names = reader.variables_to_restore();
    REQUIRE(names.size() == 3);
    CHECK(names.at("w/ExponentialMovingAverage").name() == "w");
    CHECK(names.at("b/ExponentialMovingAverage").name() == "b");
    CHECK(names.at("global_step_copy").name() == "global_step_copy");  // not averaged: its own name
    std::map<std::string, tf::Variable> averaged{{"w/ExponentialMovingAverage", ew},
                                                 {"b/ExponentialMovingAverage", eb}};
    loader = std::make_unique<tf::train::Saver>(averaged);
    CHECK_THROWS_WITH(tf::train::Saver(std::map<std::string, tf::Variable>{}), "Saver: No variables to save");
    CHECK_THROWS_WITH(tf::train::Saver(std::map<std::string, tf::Variable>{{"", ew}}),
                      "Saver: a name in the variable map is empty");
    CHECK_THROWS_WITH(tf::train::Saver(std::map<std::string, tf::Variable>{{"w", tf::Variable()}}),
                      "Saver: the variable for \"w\" is undefined");
    CHECK_THROWS_WITH(tf::train::Saver(names).restore(*std::make_unique<tf::Session>(eval), dir / "model"),
                      Catch::Contains("variable \"global_step_copy\" is not in checkpoint"));
  }
  tf::Session es(eval);
  loader->restore(es, dir / "model");
  CHECK(es.run(ew).to_vector<float>() == w_avg);
  CHECK(es.run(eb).to_vector<float>() == b_avg);
  // In the training graph, variables_to_restore also finds averaged variables
  // that are not trainable through MOVING_AVERAGE_VARIABLES.
  {
    auto scope = g.as_default();
    tf::Variable frozen(tf::ones({1}), "frozen", false);
    tf::train::ExponentialMovingAverage more(0.5);
    more.apply({frozen});
    const auto names = more.variables_to_restore();
    CHECK(names.at("frozen/ExponentialMovingAverage").name() == "frozen");
    CHECK(names.at("w/ExponentialMovingAverage").name() == "w");  // trainable
    CHECK(names.at("global_step").name() == "global_step");
    CHECK(names.count("w/ExponentialMovingAverage/ExponentialMovingAverage") == 0);  // shadows are not trainable
  }
  // Saving under the map's names writes those names.
  loader->save(es, dir / "renamed");
  CHECK(read_all(dir / "renamed").find("w/ExponentialMovingAverage") != std::string::npos);
}
