// Tutorial 02: capture a hot loop into a graph and replay it.
//
// The loop: an explicit finite-difference solver for the 1-D heat equation
// u_t = alpha * u_xx on a rod whose ends are held at 0. Each step is a handful
// of small eager ops; capture::function records ten steps once and replays
// them as one optimized graph. Timings go to stderr so that stdout (compared
// with expected_output.txt by the test suite) is the same on every machine.
#include <chrono>
#include <cstdint>
#include <string>

#include <ember/capture.h>
#include <ember/ember.h>

namespace em = ember;
namespace cap = ember::capture;

namespace {

constexpr float kR = 0.25f;  // alpha * dt / dx^2; the explicit scheme is stable for r <= 0.5

// One step: u[i] += r * (u[i-1] - 2 u[i] + u[i+1]) inside, ends unchanged.
em::Tensor heat_step(const em::Tensor& u) {
  const int64_t n = u.shape(0);
  em::Tensor left = u.slice(0, 0, n - 2), mid = u.slice(0, 1, n - 1), right = u.slice(0, 2, n);
  em::Tensor inner = mid + kR * (left - 2.f * mid + right);
  return em::concat({u.slice(0, 0, 1), inner, u.slice(0, n - 1, n)});
}

// A rod of n points, cold except for a hot band in the middle.
em::Tensor initial_rod(int64_t n) {
  em::Tensor x = em::linspace(0.0, 1.0, n);
  return em::where(em::abs(x - 0.5f) < 0.1f, 1.f, 0.f);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  constexpr int kSteps = 300, kUnroll = 10;
  const int64_t n = 64;
  fmt::print("1-D heat equation: {} points, r = {}, {} steps\n", n, kR, kSteps);

  // 1. Eager: every op runs when it is reached.
  em::Tensor u = initial_rod(n);
  for (int s = 0; s < kSteps; ++s) u = heat_step(u);
  const em::Tensor eager = u;
  // The total in float64 to 3 decimals: a float32 sum's last digits depend on
  // the SIMD width (the order the lanes add up), which varies between CPUs.
  fmt::print("eager:  u[{}] = {:.6f}, total heat = {:.3f}\n", n / 2, eager[n / 2].item<float>(),
             eager.to(em::float64).sum().item<double>());

  // 2. Capture: ten steps become one function; the first call traces (runs
  //    eagerly while recording), later calls with the same shape and dtype replay.
  auto ten_steps = cap::function(
      [](em::Tensor v) {
        for (int k = 0; k < kUnroll; ++k) v = heat_step(v);
        return v;
      },
      {}, {"u"});
  u = initial_rod(n);
  for (int s = 0; s < kSteps; s += kUnroll) u = ten_steps(u);
  fmt::print("replay: u[{}] = {:.6f}, total heat = {:.3f}\n", n / 2, u[n / 2].item<float>(),
             u.to(em::float64).sum().item<double>());
  fmt::print("calls: {}, traces: {}, replay matches eager: {}\n", kSteps / kUnroll,
             ten_steps.trace_count(), em::allclose(u, eager, 1e-5, 1e-6));

  // 3. What was recorded, and what the passes made of it. One step: five
  //    slices (views), five elementwise ops fused into one kernel, a concat.
  cap::Graph one = cap::trace(heat_step, initial_rod(8));
  fmt::print("\none step as traced:\n{}", one.traced_str());
  fmt::print("\none step after the passes:\n{}", one.str());
  cap::Graph ten = ten_steps.graph_for(initial_rod(n));
  fmt::print("\nten steps: {} nodes, {} fused kernels, {} concats\n", ten.num_nodes(), ten.count("fused"),
             ten.count("concat"));

  // 4. A new shape traces again, and says why.
  ten_steps(initial_rod(2 * n));
  fmt::print("\nafter a call with {} points: traces = {}, why: {}\n", 2 * n, ten_steps.trace_count(),
             ten_steps.retrace_reasons().back());

  // 5. Guards. Code that reads a value on the host to branch is recorded with
  //    a guard on that value; a replay whose value differs traces again instead
  //    of silently running the branch the trace took.
  auto damp_if_hot = cap::function(
      [](em::Tensor v) {
        if ((v.max() > 0.5f).item<bool>()) return v * 0.5f;  // too hot: damp
        return v;
      },
      {}, {"u"});
  em::Tensor hot = initial_rod(n), cool = initial_rod(n) * 0.25f;
  fmt::print("\nguards:\n");
  const char* names[] = {"hot", "hot", "cool", "hot", "cool"};
  for (const char* which : names) {
    em::Tensor v = std::string(which) == "hot" ? hot : cool;
    em::Tensor r = damp_if_hot(v);
    fmt::print("  {:4} -> max {:.3f}, traces so far {}\n", which, r.max().item<float>(), damp_if_hot.trace_count());
  }
  fmt::print("  why the second trace: {}\n", damp_if_hot.retrace_reasons().at(0));

  // 6. Speed (timings on stderr only). On a short rod the eager loop pays the
  //    dispatcher's per-op cost; on a long one it makes five passes over
  //    memory per step where the fused kernel makes one.
  fmt::print("\nspeed (eager against replay, timings on stderr):\n");
  for (const auto& [points, steps] : {std::pair<int64_t, int>{256, 300}, std::pair<int64_t, int>{1 << 20, 30}}) {
    em::Tensor ue = initial_rod(points), ur = initial_rod(points);
    ten_steps(ur);  // the first call with this shape traces; time the replays
    auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; ++s) ue = heat_step(ue);
    const double t_eager = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; s += kUnroll) ur = ten_steps(ur);
    const double t_replay = seconds_since(t0);
    fmt::print(stderr, "{:8} points, {} steps: eager {:.2f} ms, replay {:.2f} ms, speed-up {:.1f}x\n", points, steps,
               1e3 * t_eager, 1e3 * t_replay, t_eager / t_replay);
    fmt::print("  {} points, {} steps: replay matches eager: {}\n", points, steps, em::allclose(ur, ue, 1e-5, 1e-6));
  }
  fmt::print("traces in all: {}\n", ten_steps.trace_count());
  return 0;
}
