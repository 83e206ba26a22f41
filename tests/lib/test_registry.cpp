// The registry is complete: every op in the .def lists has a schema row, an
// infer function and a CPU kernel, and every elementwise op has a reference row
// in the table-driven test (so a new op cannot skip its test).
#include <algorithm>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include <ember/ember.h>

#include "cpu/arch/arch.h"
#include "dispatch/registry.h"
#include "support/reference.h"

namespace em = ember;
using em::dispatch::OpId;

TEST_CASE("every op has a schema row, an infer function and a CPU kernel", "[registry]") {
  std::set<std::string> names;
  for (int i = 0; i < em::dispatch::kNumOps; ++i) {
    const auto op = static_cast<OpId>(i);
    const auto& s = em::dispatch::schema(op);
    INFO("op #" << i);
    REQUIRE(s.name != nullptr);
    CHECK(s.infer != nullptr);
    CHECK(em::dispatch::registry().get(em::DeviceType::cpu, op) != nullptr);
    CHECK(names.insert(s.name).second);  // names are unique
  }
  CHECK(std::string(em::dispatch::op_name(OpId::add)) == "add");
  CHECK(std::string(em::dispatch::op_name(OpId::log_softmax)) == "log_softmax");
}

TEST_CASE("every elementwise op has a reference row in the table-driven test", "[registry]") {
  std::set<std::string> rows(em::test::elementwise_reference_ops().begin(),
                             em::test::elementwise_reference_ops().end());
  std::vector<std::string> missing;
#define EMBER_UNARY(name, F, rule, dtypes) \
  if (!rows.count(#name)) missing.push_back(#name);
#define EMBER_BINARY(name, F, rule, dtypes) EMBER_UNARY(name, F, rule, dtypes)
#include "ops/elementwise.def"
  INFO("ops without a reference row: " << missing.size());
  for (const auto& m : missing) UNSCOPED_INFO(m);
  CHECK(missing.empty());
}

TEST_CASE("op flags are data the passes can ask", "[registry]") {
  using namespace em::dispatch;
  CHECK((schema(OpId::exp).flags & kElementwise) != 0);
  CHECK((schema(OpId::add).flags & kBinary) != 0);
  CHECK((schema(OpId::permute).flags & kView) != 0);
  CHECK((schema(OpId::randn).flags & kRandom) != 0);
  CHECK((schema(OpId::sum).flags & kReduction) != 0);
  CHECK((schema(OpId::matmul).flags & kElementwise) == 0);
}

TEST_CASE("every SIMD table this CPU runs agrees with the baseline", "[registry][simd]") {
  // Each instruction-set copy of the inner loops must compute the same values
  // as the baseline (up to float rounding in transcendental functions).
  int n = 0;
  const em::cpu::ArchKernels* const* tables = em::cpu::runnable_archs(&n);
  REQUIRE(n >= 1);
  INFO("selected: " << em::cpu_arch_name());
  std::vector<float> x(37), y(37);
  for (int i = 0; i < 37; ++i) {
    x[i] = -3.0f + 0.17f * static_cast<float>(i);
    y[i] = 0.5f + 0.05f * static_cast<float>(i);
  }
  for (int t = 0; t < n; ++t) {
    INFO("table " << tables[t]->name);
    for (OpId op : {OpId::add, OpId::mul, OpId::exp, OpId::tanh, OpId::sigmoid, OpId::gelu}) {
      const bool unary = op != OpId::add && op != OpId::mul;
      std::vector<float> out(37), ref(37);
      for (auto [tab, dst] : {std::pair{tables[0], &ref}, std::pair{tables[t], &out}}) {
        char* ptrs[3] = {reinterpret_cast<char*>(dst->data()), reinterpret_cast<char*>(x.data()),
                         reinterpret_cast<char*>(y.data())};
        const int64_t strides[3] = {1, 1, 1};
        tab->elementwise[em::dispatch::op_index(op)][static_cast<int>(em::float32)](ptrs, strides,
                                                                                    37, nullptr);
      }
      for (int i = 0; i < 37; ++i) {
        INFO(em::dispatch::op_name(op) << " at " << i << (unary ? " (unary)" : ""));
        CHECK(out[i] == Approx(ref[i]).epsilon(1e-6).margin(1e-7));
      }
    }
  }
}
