// Integer ops of the plan executor (ops.def, "integer ops"): validation + load-time parameter
// derivation (packed weights, LayerNorm/softmax/add parameters, GELU tables) and the run path,
// which is integer only and calls the qkernels. executor.cc delegates every op kind for which
// is_int_op() is true to the two functions below.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "swinq/cpu.h"
#include "swinq/plan.h"

namespace swinq {

class ThreadPool;
struct IntOpState;  // executor_int.cc

bool is_int_op(OpKind k);

// Validates integer op `op_index` of `d` (tensors must already be validated) and derives its state
// from d.constants. Throws std::runtime_error "plan op #i name (node 'n'): <field> ...".
// sparse_a: PlanOptions::sparse_a.
std::shared_ptr<IntOpState> prepare_int_op(const PlanDesc& d, size_t op_index, bool sparse_a);

// Runs a prepared integer op. ptr[t] is the address of tensor t for this run. Never throws for a
// plan that prepare_int_op accepted.
void run_int_op(const PlanDesc& d, size_t op_index, const IntOpState& st, void* const* ptr, Isa isa, ThreadPool& pool);

}  // namespace swinq
