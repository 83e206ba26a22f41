#pragma once
#include <memory>

#include <ember/capture.h>

#include "exec/executor.h"
#include "ir/graph.h"

namespace ember::capture::detail {

/// A traced graph, its optimized form and the executor built for it.
struct Compiled {
  GraphIR traced;
  GraphIR optimized;
  Options options;
  std::unique_ptr<Executor> exec;
};

/// Runs the enabled passes on `traced` and builds the executor.
std::shared_ptr<const Compiled> compile(GraphIR traced, const Options& options);

}  // namespace ember::capture::detail
