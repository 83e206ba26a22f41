// tf::gradients and the TF1 optimizers against eager GradientTape and
// hand-written eager updates; slots saved by Saver.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

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
  const std::string path = "/tmp/ember_test_train_slots.ckpt";
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
  std::remove(path.c_str());
}

TEST_CASE("a Saver made before minimize keeps to the variables of that moment, as TF's", "[autograd][compat]") {
  const std::string path = "/tmp/ember_test_model_only.ckpt";
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
  std::remove(path.c_str());
  tf::Graph empty;
  auto scope = empty.as_default();
  CHECK_THROWS_WITH(tf::train::Saver(), "Saver: the default graph has no variables to save");
}
