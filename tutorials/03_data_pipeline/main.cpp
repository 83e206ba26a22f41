// Tutorial 03: an input pipeline. It writes a small data set (CSV and .npy),
// reads it back with ember::data, shuffles, batches and prefetches it, and
// feeds a traced training step and a traced inference step. Throughput goes to
// stderr, so that stdout is the same on every run.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>

#include <unistd.h>

#include <ember/capture.h>
#include <ember/data/dataset.h>
#include <ember/ember.h>

namespace em = ember;
namespace ed = ember::data;
namespace cap = ember::capture;
namespace fs = std::filesystem;

namespace {

constexpr float kLearningRate = 0.02f;

// One step of gradient descent on the mean squared error of x @ w + b: returns the
// new w and b and the batch's loss. Pure tensor code, so it can be traced.
std::tuple<em::Tensor, em::Tensor, em::Tensor> train_step(em::Tensor x, em::Tensor y, em::Tensor w,
                                                          em::Tensor b) {
  const float n = static_cast<float>(x.shape(0));
  em::Tensor err = em::matmul(x, w) + b - y;
  em::Tensor new_w = w - em::matmul(x.t(), err) * (2.f * kLearningRate / n);
  em::Tensor new_b = b - err.mean() * (2.f * kLearningRate);
  return {new_w, new_b, (err * err).mean()};
}

// The squared error summed over a batch.
em::Tensor inference_step(em::Tensor x, em::Tensor y, em::Tensor w, em::Tensor b) {
  em::Tensor err = em::matmul(x, w) + b - y;
  return (err * err).sum();
}

}  // namespace

int main() {
  // Work in a scratch directory, so that file names in messages are short.
  const fs::path home = fs::current_path();
  const fs::path dir =
      fs::temp_directory_path() / ("ember_tutorial_03_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::current_path(dir);

  // 1. A data set: y = 3 x1 - 2 x2 + 0.5 + noise, 1000 rows, written as CSV.
  em::manual_seed(0);
  const int64_t n = 1000;
  em::Tensor x = em::randn({n, 2});
  em::Tensor y = x.select(1, 0) * 3.f - x.select(1, 1) * 2.f + 0.5f + em::randn({n}) * 0.1f;
  {
    std::ofstream f("train.csv");
    f << "x1,x2,y\n";
    const auto xs = x.to_vector<float>();
    const auto ys = y.to_vector<float>();
    for (int64_t i = 0; i < n; ++i)
      f << fmt::format("{:.6f},{:.6f},{:.6f}\n", xs[2 * i], xs[2 * i + 1], ys[i]);
  }

  // 2. Read it back with typed columns: each element is a tuple of 0-d tensors.
  ed::CsvOptions csv;
  csv.columns = {{"x1", em::float32}, {"x2", em::float32}, {"y", em::float32}};
  const ed::Dataset rows = ed::Dataset::from_csv("train.csv", csv);
  fmt::print("rows: {}\n", rows.cardinality());
  for (const ed::Element& r : rows.take(2))
    fmt::print("x1 = {:.4f}, x2 = {:.4f}, y = {:.4f}\n", r[0].item<float>(), r[1].item<float>(),
               r[2].item<float>());

  // 3. The pipeline: a seeded shuffle (a new order each epoch), batches of 32 (the last
  //    one shorter), features assembled on 2 worker threads (order kept), and a
  //    background thread that keeps 2 batches ready.
  const ed::Dataset train =
      rows.shuffle(1000, /*seed=*/7)
          .batch(32)
          .map([](em::Tensor x1, em::Tensor x2, em::Tensor y) {
                 return ed::Element{em::stack({x1, x2}, 1), y};
               },
               2)
          .prefetch(2);
  fmt::print("batches per epoch: {}\n", train.cardinality());
  for (const ed::Element& batch : train.take(1))
    fmt::print("first batch: x {}, y {}\n", em::shape_str(batch[0].shape()),
               em::shape_str(batch[1].shape()));

  // 4. Train: each range-for is one epoch over the pipeline. The step is traced
  //    on its first call and replayed after; the shorter last batch traces once more.
  auto step = cap::function(train_step);
  em::Tensor w = em::zeros({2});
  em::Tensor b = em::zeros({});
  int64_t seen = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < 5; ++epoch) {
    float loss = 0.f;
    int batches = 0;
    for (const ed::Element& batch : train) {
      em::Tensor batch_loss;
      std::tie(w, b, batch_loss) = step(batch[0], batch[1], w, b);
      loss += batch_loss.item<float>();
      seen += batch[1].shape(0);
      ++batches;
    }
    fmt::print("epoch {}: mean loss {:.3f}\n", epoch, loss / static_cast<float>(batches));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr, "training: {:.0f} rows/s\n", static_cast<double>(seen) / secs);
  const auto wv = w.to_vector<float>();
  fmt::print("w = [{:.2f}, {:.2f}], b = {:.2f}; step traced {} times\n", wv[0], wv[1],
             b.item<float>(), step.trace_count());

  // 5. Inference over .npy files: features and targets side by side with zip.
  em::save_npy("x.npy", x);
  em::save_npy("y.npy", y);
  const ed::Dataset test =
      ed::Dataset::zip({ed::Dataset::from_npy("x.npy"), ed::Dataset::from_npy("y.npy")})
          .batch(256)
          .prefetch(1);
  auto infer = cap::function(inference_step);
  float sse = 0.f;
  for (const ed::Element& batch : test) sse += infer(batch[0], batch[1], w, b).item<float>();
  fmt::print("inference: mean squared error {:.3f} over {} rows\n", sse / static_cast<float>(n), n);

  // 6. A bad value is reported with the file, the line and the column.
  {
    std::ofstream f("bad.csv");
    f << "x1,x2,y\n0.1,0.2,0.3\n0.4,oops,0.6\n";
  }
  try {
    ed::Dataset::from_csv("bad.csv", csv);
  } catch (const em::ValueError& e) {
    fmt::print("error: {}\n", e.what());
  }

  fs::current_path(home);
  fs::remove_all(dir);
  return 0;
}
