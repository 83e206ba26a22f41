#pragma once
// The graph IR: one value per node (SSA), nodes in execution order.
#include <memory>
#include <string>
#include <vector>

#include <ember/tensor.h>
#include <ember/variable.h>

#include "cpu/arch/arch.h"
#include "dispatch/attrs.h"
#include "dispatch/op_id.h"

namespace ember::capture {

struct ValueInfo {
  Shape shape;
  DType dtype = DType::float32;
  Device device;
  friend bool operator==(const ValueInfo& a, const ValueInfo& b) {
    return a.shape == b.shape && a.dtype == b.dtype && a.device == b.device;
  }
  std::string str() const;  // "float32[2,3]"
};

enum class NodeKind : uint8_t {
  input,          // graph input #index
  constant,       // a tensor baked into the graph
  variable_read,  // the current value of a Variable (read by reference at replay)
  op,             // a registered op
  fused,          // a fused elementwise program (made by the fusion pass)
  guard,          // checks that a value equals the one the trace saw on the host
  assign,         // writes a value into a Variable (applied at the end of a replay)
};

/// A fused chain/tree of elementwise ops: registers 0..n_inputs-1 are the
/// inputs; instruction i writes register n_inputs + i.
struct FusedProgram {
  struct Instr {
    dispatch::OpId op;
    int a = -1, b = -1;
  };
  int n_inputs = 0;
  std::vector<Instr> instrs;
  DType dtype = DType::float32;
  // Filled by prepare(): the program with registers mapped to the fused
  // loop's slots (a dead register's slot is reused).
  std::vector<cpu::FusedInstr> code;
  /// False when the program needs more live slots than the fused loop has.
  bool prepare();
};

struct Node {
  NodeKind kind = NodeKind::op;
  dispatch::OpId op = dispatch::OpId::copy;
  dispatch::Attrs attrs;
  std::vector<int> inputs;  // ids of the nodes whose values this node reads
  ValueInfo out;
  int index = 0;            // input: position among the graph inputs
  Tensor value;             // constant: its value; guard: the expected value
  std::shared_ptr<Variable::State> var;   // variable_read / assign
  dispatch::OpId assign_kind = dispatch::OpId::copy;  // assign: copy, add or sub
  std::shared_ptr<FusedProgram> fused;    // fused
};

/// A traced computation.
struct GraphIR {
  std::vector<Node> nodes;
  std::vector<int> outputs;
  std::vector<std::string> input_names;
  /// For each graph input, whether the traced function mutated it in place
  /// (its final value id is written back after a replay).
  std::vector<int> input_writeback;  // -1 or the id of the final value

  int num_inputs() const { return static_cast<int>(input_names.size()); }
  const ValueInfo& input_info(int i) const;
  /// One line per node, like an SSA listing.
  std::string str() const;
  /// Graphviz DOT with shapes on the edges.
  std::string dot() const;
  /// Checks structural invariants (ids in range and earlier, infer agrees); throws ValueError.
  void verify(const char* who) const;
};

}  // namespace ember::capture
