// GradientTape, grad/value_and_grad, errors, and gradients inside capture.
#include <catch2/catch.hpp>

#include <ember/capture.h>
#include <ember/ember.h>

#include "dispatch/recorder.h"

namespace em = ember;
using em::Tensor;

namespace {
std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }
}  // namespace

TEST_CASE("GradientTape differentiates watched tensors", "[autograd][tape]") {
  Tensor x = em::tensor({1.0, 2.0, 3.0});
  em::GradientTape tape;
  tape.watch(x);
  Tensor y = (x * x).sum();
  Tensor g = tape.gradient(y, x);
  CHECK(vals(g) == std::vector<double>{2, 4, 6});
}

TEST_CASE("detach stops gradients under a tape and in a traced replay", "[autograd][tape]") {
  Tensor x = em::tensor({1.f, 2.f, 3.f});
  Tensor d = em::detach(x);
  CHECK(d.storage_offset() == x.storage_offset());
  CHECK(d.data_ptr() == x.data_ptr());  // a view, no copy
  em::GradientTape tape(true);
  tape.watch(x);
  Tensor y = em::sum(x * em::detach(x * x));
  // d/dx sum(x * stop(x^2)) = x^2: the stopped factor contributes nothing.
  CHECK(tape.gradient(y, x).to_vector<float>() == std::vector<float>{1, 4, 9});
  CHECK(tape.gradient(em::sum(em::detach(x)), x).to_vector<float>() == std::vector<float>{0, 0, 0});
  // A trace records it: the replay reads the new input, not the traced value.
  auto f = em::capture::function([](const Tensor& a) { return em::detach(a) * 2.f; });
  CHECK(f(x).to_vector<float>() == std::vector<float>{2, 4, 6});
  CHECK(f(em::tensor({5.f, 6.f, 7.f})).to_vector<float>() == std::vector<float>{10, 12, 14});
}

TEST_CASE("prod's gradient is the product of the other elements, zeros included", "[autograd][tape]") {
  Tensor x = em::tensor(std::vector<double>{2, 0, 3, 0, 0, 5, 1, 2, 4}, {3, 3});
  em::GradientTape tape(true);
  tape.watch(x);
  // Row 0 has one zero, row 1 two, row 2 none.
  CHECK(tape.gradient(em::prod(x, {1}), x).to_vector<double>() ==
        std::vector<double>{0, 6, 0, 0, 0, 0, 8, 4, 2});
  // All elements: two zeros overall, so every gradient is 0; a keepdims column product.
  CHECK(tape.gradient(em::prod(x), x).to_vector<double>() == std::vector<double>(9, 0.0));
  CHECK(tape.gradient(em::prod(x, {0}, true), x).to_vector<double>() ==
        std::vector<double>{0, 0, 20, 2, 0, 12, 0, 0, 15});
}

TEST_CASE("a braced list of sources is a list, as in TF's tape.gradient(loss, [x])", "[autograd][tape]") {
  Tensor x = em::tensor({1.0f, 2.0f, 3.0f, 4.0f});
  em::Variable w(em::tensor({2.0f, 5.0f}), "w");
  em::GradientTape tape(true);
  tape.watch(x);
  Tensor loss = em::sum(x * 3.0f) + em::sum(w.value() * w.value());
  // `{x}` picks the vector overload: [0] is the whole gradient, not its first element.
  const std::vector<Tensor> gx = tape.gradient(loss, {x});
  REQUIRE(gx.size() == 1);
  CHECK(gx[0].shape() == em::Shape{4});
  CHECK(tape.gradient(loss, {x})[0].to_vector<float>() == std::vector<float>(4, 3.0f));
  CHECK(tape.gradient(loss, {w})[0].to_vector<float>() == std::vector<float>{4.0f, 10.0f});
  // One source without braces is still one gradient.
  CHECK(tape.gradient(loss, x).to_vector<float>() == std::vector<float>(4, 3.0f));
  CHECK(tape.gradient(loss, w).to_vector<float>() == std::vector<float>{4.0f, 10.0f});
}

TEST_CASE("a non-scalar target is summed; output_gradient weights it", "[autograd][tape]") {
  Tensor x = em::tensor({1.0f, 2.0f});
  {
    em::GradientTape tape;
    tape.watch(x);
    Tensor y = x * 3.0f;
    CHECK(vals(tape.gradient(y, x)) == std::vector<double>{3, 3});
  }
  em::GradientTape tape;
  tape.watch(x);
  Tensor y = x * x;
  auto g = tape.gradient(y, {x}, em::tensor({1.0f, 10.0f}));
  CHECK(vals(g[0]) == std::vector<double>{2, 40});
  CHECK(g[0].dtype() == em::float32);
}

TEST_CASE("trainable Variables are watched when read; others are not", "[autograd][tape]") {
  em::Variable w(em::tensor({2.0f, -1.0f}), "w");
  em::Variable frozen(em::tensor({5.0f, 5.0f}), "frozen", false);
  em::GradientTape tape;
  Tensor loss = (w.value() * frozen.value()).sum();
  auto g = tape.gradient(loss, std::vector<em::Variable>{w, frozen});
  CHECK(vals(g[0]) == std::vector<double>{5, 5});
  CHECK(vals(g[1]) == std::vector<double>{0, 0});  // not watched: zeros
  REQUIRE(tape.watched_variables().size() == 1);
  CHECK(tape.watched_variables()[0] == w);
}

TEST_CASE("an unconnected source gets zeros; the target itself gets ones", "[autograd][tape]") {
  Tensor x = em::tensor({1.0, 2.0}), z = em::zeros({3}, em::float64);
  em::GradientTape tape(true);
  tape.watch(x);
  tape.watch(z);
  Tensor y = x * 2;
  CHECK(vals(tape.gradient(y, z)) == std::vector<double>{0, 0, 0});
  CHECK(vals(tape.gradient(x, x)) == std::vector<double>{1, 1});
}

TEST_CASE("a persistent tape gives several gradients; a plain one only one", "[autograd][tape][errors]") {
  Tensor x = em::tensor({3.0});
  {
    em::GradientTape tape(true);
    tape.watch(x);
    Tensor y = x * x, z = x * x * x;
    CHECK(tape.gradient(y, x).item<double>() == 6);
    CHECK(tape.gradient(z, x).item<double>() == 27);
  }
  em::GradientTape tape;
  tape.watch(x);
  Tensor y = x * x;
  tape.gradient(y, x);
  CHECK_THROWS_WITH(tape.gradient(y, x),
                    Catch::Contains("a non-persistent tape can compute one gradient only"));
}

TEST_CASE("nested tapes give second derivatives", "[autograd][tape]") {
  Tensor x = em::tensor({0.5, 2.0});
  em::GradientTape outer;
  outer.watch(x);
  Tensor dy;
  {
    em::GradientTape inner;
    inner.watch(x);
    Tensor y = x * x * x;  // y' = 3x^2, y'' = 6x
    dy = inner.gradient(y, x);
  }
  Tensor d2 = outer.gradient(dy, x);
  CHECK(vals(dy) == std::vector<double>{0.75, 12});
  CHECK(vals(d2) == std::vector<double>{3, 12});
}

TEST_CASE("grad and value_and_grad transform functions", "[autograd][grad]") {
  auto f = [](const Tensor& x) { return em::sum(em::sin(x) * x); };
  Tensor x = em::tensor({0.0, 1.0});
  Tensor g = em::grad(f)(x);  // cos(x) x + sin(x)
  CHECK(vals(g)[0] == Approx(0.0));
  CHECK(vals(g)[1] == Approx(std::cos(1.0) + std::sin(1.0)));
  auto [v, g2] = em::value_and_grad(f)(x);
  CHECK(v.item<double>() == Approx(std::sin(1.0)));
  CHECK(vals(g2) == vals(g));
  // grad of grad: d/dx (d/dx x^3) = 6x
  auto d2 = em::grad([](const Tensor& t) { return em::grad([](const Tensor& u) { return (u * u * u).sum(); })(t).sum(); });
  CHECK(vals(d2(em::tensor({2.0}))) == std::vector<double>{12});
  // several arguments, extra non-tensor arguments
  auto h = [](const Tensor& a, const Tensor& b, double s) { return (a * b * s).sum(); };
  auto gs = em::grad(h, {0, 1})(em::tensor({2.0}), em::tensor({5.0}), 3.0);
  CHECK(vals(gs[0]) == std::vector<double>{15});
  CHECK(vals(gs[1]) == std::vector<double>{6});
  em::Variable w(em::tensor({1.0f, 2.0f}));
  auto [loss, gw] = em::value_and_grad([&](const Tensor& in) { return (w.value() * in).sum(); },
                                       {w})(em::tensor({3.0f, 4.0f}));
  CHECK(loss.item<float>() == 11);
  CHECK(vals(gw[0]) == std::vector<double>{3, 4});
}

TEST_CASE("no tape, no recorder: the eager path is untouched", "[autograd][tape]") {
  CHECK(em::dispatch::current_recorder() == nullptr);
  {
    em::GradientTape tape;
    CHECK(em::dispatch::current_recorder() != nullptr);
  }
  CHECK(em::dispatch::current_recorder() == nullptr);
}

TEST_CASE("gradients flow through views and in-place ops that keep what is needed", "[autograd][tape]") {
  Tensor x = em::tensor(std::vector<double>{1, 2, 3, 4}, {2, 2});
  em::GradientTape tape;
  tape.watch(x);
  Tensor y = x * 2;     // add_ below does not need y's old value
  y.add_(x);            // y = 3x
  Tensor r = y.t()[1];  // a view of a view
  Tensor g = tape.gradient(r.sum(), x);
  CHECK(vals(g) == std::vector<double>{0, 3, 0, 3});
}

TEST_CASE("an in-place write into a value a gradient needs is an error", "[autograd][tape][errors]") {
  Tensor x = em::tensor({1.0, 2.0});
  em::GradientTape tape;
  tape.watch(x);
  Tensor y = em::exp(x);  // exp's gradient reads its result
  Tensor z = y.sum();
  y.mul_(2.0);
  CHECK_THROWS_AS(tape.gradient(z, x), em::ValueError);
  em::GradientTape tape2;
  tape2.watch(x);
  Tensor a = x * 1.0;
  Tensor b = (a * a).sum();  // mul reads a
  a.add_(1.0);
  CHECK_THROWS_WITH(tape2.gradient(b, x),
                    Catch::Contains("GradientTape::gradient: input 0 of mul was modified by an "
                                    "in-place operation after it was saved for the gradient"));
}

TEST_CASE("an in-place write through a view of a recorded tensor is refused", "[autograd][tape][errors]") {
  Tensor x = em::tensor({1.0, 2.0, 3.0});
  em::GradientTape tape;
  tape.watch(x);
  Tensor y = x * 2;
  Tensor v = y.slice(0, 0, 2);
  CHECK_THROWS_WITH(v.mul_(3.0), Catch::Contains("GradientTape: in-place mul_ writes into memory shared "
                                                 "with another tensor the tape recorded"));
  CHECK_THROWS_AS(x.slice(0, 1, 2).add_(1.0), em::ValueError);  // into a watched leaf's memory
  CHECK(vals(x) == std::vector<double>{1, 2, 3});                 // nothing was written
  Tensor buf = em::zeros({3}, em::float64);
  buf.add_(x);  // an untracked tensor becomes a recorded value in place
  CHECK_THROWS_AS(buf.slice(0, 0, 1).mul_(2.0), em::ValueError);
}

TEST_CASE("non-differentiable ops are named in the error", "[autograd][errors]") {
  Tensor x = em::tensor({1.5, -2.5});
  {
    em::GradientTape tape;
    tape.watch(x);
    Tensor i = em::argmax(x);
    CHECK_THROWS_WITH(tape.gradient(i, x),
                      Catch::Contains("the target was computed by argmax, which is not differentiable"));
  }
  {
    em::GradientTape tape;
    tape.watch(x);
    Tensor y = em::floor_divide(x, 2.0).sum();
    CHECK_THROWS_WITH(tape.gradient(y, x),
                      Catch::Contains("floor_divide is not differentiable"));
  }
  {
    // A comparison on the way is no error: it is not on the gradient's path.
    em::GradientTape tape;
    tape.watch(x);
    Tensor y = em::where(x > 0, x * 3, x).sum();
    CHECK(vals(tape.gradient(y, x)) == std::vector<double>{3, 1});
  }
  em::GradientTape tape;
  CHECK_THROWS_WITH(tape.watch(em::tensor<int64_t>({1})),
                    Catch::Contains("GradientTape::watch: a tensor of dtype int64 cannot be watched"));
}

TEST_CASE("mixed dtypes: gradients come back in each source's dtype", "[autograd][tape]") {
  Tensor a = em::tensor({1.0f, 2.0f});
  Tensor b = em::tensor({3.0, 4.0});
  em::GradientTape tape;
  tape.watch(a);
  tape.watch(b);
  auto g = tape.gradient((a * b).sum(), {a, b});
  CHECK(g[0].dtype() == em::float32);
  CHECK(g[1].dtype() == em::float64);
  CHECK(vals(g[0]) == std::vector<double>{3, 4});
}

TEST_CASE("a captured training step replays like the eager step", "[autograd][capture]") {
  em::manual_seed(3);
  Tensor x = em::randn({16, 4}), y = em::randn({16, 2});
  const Tensor w0 = em::randn({4, 2}) * 0.5f, b0 = em::zeros({2});
  auto make_step = [](em::Variable w, em::Variable b) {
    return [w, b](const Tensor& xb, const Tensor& yb) mutable {
      em::GradientTape tape;
      Tensor pred = em::tanh(em::matmul(xb, w.value()) + b.value());
      Tensor loss = em::mean((pred - yb) * (pred - yb));
      auto g = tape.gradient(loss, std::vector<em::Variable>{w, b});
      w.assign_sub(g[0] * 0.1f);
      b.assign_sub(g[1] * 0.1f);
      return loss;
    };
  };
  em::Variable we(w0, "w"), be(b0, "b"), wc(w0, "w"), bc(b0, "b");
  auto eager = make_step(we, be);
  auto captured = em::capture::function(make_step(wc, bc));
  for (int i = 0; i < 5; ++i) {
    INFO("step " << i);
    const float le = eager(x, y).item<float>();
    const float lc = captured(x, y).item<float>();
    CHECK(lc == Approx(le).epsilon(1e-5));
  }
  CHECK(captured.trace_count() == 1);
  CHECK(em::allclose(wc.value(), we.value(), 1e-5, 1e-6));
  CHECK(em::allclose(bc.value(), be.value(), 1e-5, 1e-6));
  // The loss went down on the way.
  CHECK(eager(x, y).item<float>() < em::mean((em::tanh(em::matmul(x, w0) + b0) - y) *
                                              (em::tanh(em::matmul(x, w0) + b0) - y))
                                        .item<float>());
}

TEST_CASE("a traced gradient (capture::trace of grad) equals the eager gradient", "[autograd][capture]") {
  auto df = em::grad([](const Tensor& x) { return em::sum(em::softmax(x * 2.0f, -1) * x); });
  Tensor x = em::randn({3, 5});
  em::capture::Graph g = em::capture::trace(df, x);
  Tensor x2 = em::randn({3, 5});
  CHECK(em::allclose(g.run({x2})[0], df(x2), 1e-5, 1e-6));
}
