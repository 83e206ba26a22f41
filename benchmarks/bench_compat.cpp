// The legacy session shim (ember::compat::v1) against eager ember and the
// capture layer, for the targets of the shim issue:
//   - sess.run(c) of the `a + b` constant example under 1 us per run;
//   - a feed/fetch loop running a 3-layer MLP on a batch of 64 at least as
//     fast as the same model written as eager ember code.
// Prints one markdown table; medians of interleaved reps (harness.h).
//
// Usage: bench_compat [--reps=N]
#include <ember/capture.h>
#include <ember/compat/v1.h>
#include <ember/ember.h>

#include "harness.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace em = ember;
namespace tf = ember::compat::v1;
namespace cap = ember::capture;

namespace {

struct Mlp {
  em::Tensor w1, b1, w2, b2, w3, b3;
};

Mlp make_mlp(int64_t in, int64_t hidden, int64_t out) {
  return {em::randn({in, hidden}) * 0.1f, em::randn({hidden}) * 0.1f, em::randn({hidden, hidden}) * 0.1f,
          em::randn({hidden}) * 0.1f,     em::randn({hidden, out}) * 0.1f, em::randn({out}) * 0.1f};
}

em::Tensor mlp_eager(const Mlp& m, const em::Tensor& x) {
  em::Tensor h = em::relu(em::matmul(x, m.w1) + m.b1);
  h = em::relu(em::matmul(h, m.w2) + m.b2);
  return em::softmax(em::matmul(h, m.w3) + m.b3);
}

void row(const char* label, const std::vector<std::string>& names, bench::Group& g, const char* target,
         int target_of, int baseline, double limit_s, bool ratio_target) {
  const double base = g.med(baseline);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double t = g.med(static_cast<int>(i));
    std::string verdict;
    if (static_cast<int>(i) == target_of) {
      const bool met = ratio_target ? t <= base : t < limit_s;
      verdict = fmt::format("{} {}", met ? "MET" : "MISSED", target);
    }
    std::printf("| %s | %s | %s | %.2fx | %s |\n", label, names[i].c_str(), bench::fmt_time(t).c_str(), t / base,
                verdict.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 21;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--reps=", 7) == 0) reps = std::atoi(argv[i] + 7);
  bench::start_watchdog();
  std::printf("ember %s, %d threads\n\n", em::cpu_arch_name(), em::get_num_threads());
  std::printf("| case | contender | median | vs first row | target |\n|---|---|---|---|---|\n");

  // 1. The constant example: c = a + b.
  {
    bench::stage("a + b");
    tf::Graph g;
    em::Tensor c;
    {
      auto scope = g.as_default();
      auto a = tf::constant(5), b = tf::constant(3);
      c = tf::add(a, b);
    }
    tf::Session sess(g);
    cap::Graph replay = sess.to_capture({c});
    const em::Tensor a = em::scalar_tensor(5, em::int32), b = em::scalar_tensor(3, em::int32);
    std::vector<bench::Fn> fns = {
        [&] { bench::keep(a + b); },
        [&] { bench::keep(replay.run({})); },
        [&] { bench::keep(sess.run(c)); },
    };
    bench::Group grp(fns, 0.005);
    grp.run_all(reps);
    row("a + b, int32 constants", {"eager a + b", "capture Graph::run (same plan)", "sess.run(c)"}, grp,
        "< 1 us", 2, 0, 1e-6, false);
  }

  // 2. The MLP feed loop: batch 64, two model sizes.
  struct Size {
    int64_t in, hidden, out;
    const char* label;
  };
  for (const Size& sz : {Size{32, 64, 10, "MLP 32-64-64-10, batch 64"}, Size{784, 256, 10, "MLP 784-256-256-10, batch 64"}}) {
    bench::stage(sz.label);
    em::manual_seed(3);
    const Mlp m = make_mlp(sz.in, sz.hidden, sz.out);
    std::vector<em::Tensor> batches;
    for (int i = 0; i < 8; ++i) batches.push_back(em::randn({64, sz.in}));
    tf::Graph g;
    em::Tensor x, probs;
    tf::Operation init;
    {
      auto scope = g.as_default();
      x = tf::placeholder(em::float32, {-1, sz.in}, "x");
      tf::Variable w1(m.w1, "w1"), b1(m.b1, "b1"), w2(m.w2, "w2"), b2(m.b2, "b2"), w3(m.w3, "w3"), b3(m.b3, "b3");
      auto h1 = tf::nn::relu(tf::nn::bias_add(tf::matmul(x, w1), b1));
      auto h2 = tf::nn::relu(tf::nn::bias_add(tf::matmul(h1, w2), b2));
      probs = tf::nn::softmax(tf::nn::bias_add(tf::matmul(h2, w3), b3));
      init = tf::global_variables_initializer();
    }
    tf::Session sess(g);
    sess.run(init);
    auto call = sess.make_callable({probs}, {x});
    auto fn = cap::function([&m](const em::Tensor& in) { return mlp_eager(m, in); });
    std::size_t k = 0;
    auto next = [&]() -> const em::Tensor& { return batches[k++ % batches.size()]; };
    // Same results from every contender.
    const em::Tensor ref = mlp_eager(m, batches[0]);
    if (!em::allclose(sess.run(probs, {{x, batches[0]}}), ref, 1e-4, 1e-6) ||
        !em::allclose(call({batches[0]})[0], ref, 1e-4, 1e-6) || !em::allclose(fn(batches[0]), ref, 1e-4, 1e-6)) {
      std::fprintf(stderr, "bench_compat: results differ\n");
      return 1;
    }
    std::vector<bench::Fn> fns = {
        [&] { bench::keep(mlp_eager(m, next())); },
        [&] { bench::keep(sess.run(probs, {{x, next()}})); },
        [&] { bench::keep(call({next()})); },
        [&] { bench::keep(fn(next())); },
    };
    bench::Group grp(fns, 0.01);
    grp.run_all(reps);
    row(sz.label, {"eager ember", "sess.run(probs, {{x, batch}})", "make_callable", "capture::function"}, grp,
        "<= eager time", 1, 0, 0, true);
  }

  // 3. What control flow costs a run (Note [Lazy cond], Note [While loops]).
  {
    bench::stage("cond");
    em::manual_seed(3);
    const Mlp m = make_mlp(32, 64, 10);
    const em::Tensor batch = em::randn({64, 32});
    tf::Graph g;
    em::Tensor x, flag, plain, fed, dflt, computed;
    tf::Operation init;
    {
      auto scope = g.as_default();
      x = tf::placeholder(em::float32, {-1, 32}, "x");
      flag = tf::placeholder(em::bool_, {}, "flag");
      const em::Tensor by_default = tf::placeholder_with_default(tf::constant(false), {}, "training");
      const em::Tensor positive = tf::greater(tf::reduce_sum(x), -1e30f);  // computed in the run: true
      tf::Variable w1(m.w1, "w1"), b1(m.b1, "b1"), w2(m.w2, "w2"), b2(m.b2, "b2"), w3(m.w3, "w3"), b3(m.b3, "b3");
      auto h1 = tf::nn::relu(tf::nn::bias_add(tf::matmul(x, w1), b1));
      auto h2 = tf::nn::relu(tf::nn::bias_add(tf::matmul(h1, w2), b2));
      auto head = [&](const em::Tensor& h) { return tf::nn::softmax(tf::nn::bias_add(tf::matmul(h, w3), b3)); };
      plain = head(h2);
      // The untaken branch is the expensive one (a dropout draw).
      fed = head(tf::layers::dropout(h2, 0.5, flag));
      dflt = head(tf::layers::dropout(h2, 0.5, by_default));
      computed = head(tf::cond(
          positive, [&] { return tf::identity(h2); }, [&] { return tf::nn::dropout(h2, 0.5); }));
      init = tf::global_variables_initializer();
    }
    tf::Session sess(g);
    sess.run(init);
    const em::Tensor no = em::scalar_tensor(false, em::bool_);
    const em::Tensor ref = sess.run(plain, {{x, batch}});
    if (!em::allclose(sess.run(fed, {{x, batch}, {flag, no}}), ref) || !em::allclose(sess.run(dflt, {{x, batch}}), ref) ||
        !em::allclose(sess.run(computed, {{x, batch}}), ref)) {
      std::fprintf(stderr, "bench_compat: cond results differ\n");
      return 1;
    }
    std::vector<bench::Fn> fns = {
        [&] { bench::keep(sess.run(plain, {{x, batch}})); },
        [&] { bench::keep(sess.run(fed, {{x, batch}, {flag, no}})); },
        [&] { bench::keep(sess.run(dflt, {{x, batch}})); },
        [&] { bench::keep(sess.run(computed, {{x, batch}})); },
    };
    bench::Group grp(fns, 0.01);
    grp.run_all(reps);
    row("MLP 32-64-64-10 + tf.cond, batch 64",
        {"no cond", "cond, pred fed", "cond, placeholder_with_default pred", "cond, pred computed (a phase)"}, grp, "",
        -1, 0, 0, true);
  }
  {
    bench::stage("while_loop");
    tf::Graph g;
    em::Tensor n, total;
    {
      auto scope = g.as_default();
      n = tf::placeholder(em::int32, {}, "n");
      total = tf::while_loop([&](const std::vector<em::Tensor>& v) { return tf::less(v[0], n); },
                             [&](const std::vector<em::Tensor>& v) {
                               return std::vector<em::Tensor>{v[0] + 1, v[1] + v[0]};
                             },
                             {tf::constant(0), tf::constant(0)})[1];
    }
    tf::Session sess(g);
    const em::Tensor hundred = em::scalar_tensor(100, em::int32);
    if (sess.run(total, {{n, hundred}}).item<int>() != 4950) {
      std::fprintf(stderr, "bench_compat: while_loop result differs\n");
      return 1;
    }
    std::vector<bench::Fn> fns = {
        [&] {
          em::Tensor i = em::scalar_tensor(0, em::int32), acc = em::scalar_tensor(0, em::int32);
          while ((i < hundred).item<bool>()) {
            acc = acc + i;
            i = i + 1;
          }
          bench::keep(acc);
        },
        [&] { bench::keep(sess.run(total, {{n, hundred}})); },
    };
    bench::Group grp(fns, 0.01);
    grp.run_all(reps);
    row("sum of 0..99 by a loop (100 iterations)", {"eager ember loop", "tf::while_loop, sess.run"}, grp, "", -1, 0, 0,
        true);
  }
  return 0;
}
