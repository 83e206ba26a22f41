#pragma once
// Graph passes. Each works on its own and keeps the graph's meaning; the
// fusion pass may reorder nothing but evaluates a whole elementwise tree per tile.
#include "ir/graph.h"

namespace ember::capture::passes {

/// Drops nodes that no output, assignment, guard or input write-back needs; renumbers.
void dce(GraphIR& g);
/// Merges nodes with the same op, inputs and attrs (random ops excepted).
void cse(GraphIR& g);
/// Evaluates op nodes whose inputs are all constants (random ops excepted).
void const_fold(GraphIR& g);
/// Folds a bias add into the matmul before it: add(matmul(a, w), b) -> addmm(b, a, w)
/// (2-d float32/float64 operands, the product read by nothing else).
void fuse_matmul_bias(GraphIR& g);
/// Turns trees of same-shape floating elementwise ops (with broadcast operands)
/// whose intermediate values have one reader into one fused node.
void fuse_elementwise(GraphIR& g);

/// Keeps nodes where keep[id] is true, remapping ids (inputs, outputs, write-backs).
void compact(GraphIR& g, const std::vector<bool>& keep, const std::vector<int>& replace);

}  // namespace ember::capture::passes
